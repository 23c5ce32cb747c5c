//! Delivery: the dispatcher loop that leases queued events, sends them within the networks'
//! rate limits, classifies the answers and settles each batch; retry policy; rate limiters;
//! the one-writer lock of a data directory.

mod clock;
mod config_turn;
mod credentials;
mod dispatcher;
mod heartbeat;
pub mod limiter;
pub mod retention;
pub mod retry;
pub(crate) mod send;
pub mod writer_lock;

pub use clock::Clock;
pub use credentials::{Credential, CredentialError, Credentials};
pub use dispatcher::{
    BeforeSend, DeliveryError, Dispatcher, DispatcherOptions, Hooks, RateSettings, RunReport, SendContext,
};
pub use send::client as http_client;
pub use writer_lock::{LockError, WriterLock};

/// Milliseconds since the Unix epoch, the engine's storage clock.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
