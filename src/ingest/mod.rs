//! Getting events in: NDJSON file import (validation per line, routing to the game's configs).

mod file;

pub use file::{import_ndjson, ImportError, ImportReport, LineError};
