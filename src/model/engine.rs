use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// What the delivery engine of this process is doing, for the window's status bar and the CLI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum EngineState {
    /// Not started yet.
    Starting,
    /// Delivering (or waiting for work).
    Running,
    /// A turn failed (the database was busy or full, a task failed): delivery goes on by itself
    /// after `retry_in_ms`.
    Retrying {
        reason: String,
        /// Epoch ms of the first failure in this run of failures.
        since_ms: i64,
        retry_in_ms: i64,
        failures: u32,
    },
    /// Another process delivers from this data directory; this one only enqueues and reads.
    ReadOnly {
        holder_pid: Option<u32>,
        /// What the other process said it is (`postback serve`, `Postback Desk`).
        holder: String,
    },
    Stopped,
    /// A team workspace: the team's workers deliver; this window sets up and reads.
    Workers {
        /// Workers running now (0: events wait in the queue until one starts).
        live: u32,
    },
}
