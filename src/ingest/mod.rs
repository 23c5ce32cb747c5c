//! Getting events in: NDJSON file import (validation per line, routing to the game's configs).

mod accept;
mod file;

pub use accept::{accept, Accepted, Source};

pub use file::{import_ndjson, ImportError, ImportReport, LineError};
