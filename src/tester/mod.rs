//! QA's event tester: what one event would send to each of a game's configs, and one event sent
//! in a network's test mode (TikTok's test event code, Reddit's test id), so it shows under Test
//! Events and not in reporting. Nothing here is queued or written to the delivery log, and a
//! test code is used for one request and not kept. X has no test mode: whatever reaches it is a
//! live conversion, so it is refused.

mod check;
mod locate;
mod run;
mod send;

pub use check::{check_event, read_event, ConfigCheck, EventCheck, EventProblem};
pub use locate::field_line;
pub use run::{check_for_game, send_for_config};
pub use send::{send_test, test_request, with_test_code, TestAnswer};

use crate::model::{ApiError, InputError, Network};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum TesterError {
    #[error(
        "{} has no test mode: an event sent to it counts as a live conversion; use preview to see the request instead",
        .0.display_name()
    )]
    NoTestMode(Network),
    #[error("{0}")]
    TestCode(String),
    /// The event would not be sent at all (the skip's words).
    #[error("this event is not sent to {}: {}", .0.display_name(), .1)]
    Skipped(Network, String),
    #[error("{0}")]
    Unreachable(String),
    #[error(transparent)]
    Event(#[from] InputError),
    #[error("there is no config {0}; it may have been disconnected: reload the list of configs")]
    NoConfig(i64),
    #[error("{0}")]
    Credentials(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<TesterError> for ApiError {
    fn from(e: TesterError) -> Self {
        let message = e.to_string();
        match e {
            TesterError::NoTestMode(_) => ApiError::new("no_test_mode", message).on_field("config"),
            TesterError::TestCode(_) => ApiError::new("invalid_input", message).on_field("test_code"),
            TesterError::Skipped(..) => ApiError::new("skipped", message).on_field("event"),
            TesterError::Unreachable(_) => ApiError::new("network_unreachable", message),
            TesterError::Event(e) => e.into(),
            TesterError::NoConfig(_) => ApiError::new("not_found", message).on_field("config"),
            TesterError::Credentials(_) => ApiError::new("credentials", message),
            TesterError::Store(e) => e.into(),
        }
    }
}
