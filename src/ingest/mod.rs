//! Getting events in: the loopback REST ingest, file import (NDJSON, CSV), the demo generator
//! — all through one accept path (validation, routing to the game's configs, durable enqueue).

mod accept;
pub mod demo;
mod file;
mod group_commit;
pub mod server;
pub mod tls;
pub mod token;

pub use accept::{accept, Accepted, Source};
pub use file::{
    import, import_ndjson, FileFormat, ImportControl, ImportError, ImportProgress, ImportReport, LineError,
};
