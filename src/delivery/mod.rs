//! Delivery: the dispatcher loop that leases queued events, sends them within the networks'
//! rate limits, classifies the answers and settles each batch; retry policy; rate limiters.

mod credentials;
mod dispatcher;
pub mod limiter;
pub mod retry;
pub(crate) mod send;

pub use credentials::{Credential, CredentialError, Credentials};
pub use dispatcher::{DeliveryError, Dispatcher, DispatcherOptions, RateSettings, RunReport};
pub use send::client as http_client;

/// Milliseconds since the Unix epoch, the engine's storage clock.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
