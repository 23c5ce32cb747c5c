//! What the app runs besides the window: the sandbox networks (the demo configs' peer) and,
//! when this process holds the data directory's writer lock, the same dispatcher as
//! `postback serve`, until the app exits.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use postback::delivery::{Credentials, Dispatcher, DispatcherOptions, LockError, WriterLock};
use postback::model::EngineState;
use postback::sandbox::RunningSandbox;
use postback::store::Store;
use tokio::sync::watch;

/// Keeps the background work alive; dropping it stops the sandbox and the dispatcher.
pub struct Background {
    _sandbox: Option<RunningSandbox>,
    _stop: watch::Sender<bool>,
    _writer: Option<WriterLock>,
    /// What the delivery engine is doing, for the window.
    pub engine: watch::Receiver<EngineState>,
}

pub async fn start(store: Store, credentials: Arc<Credentials>, data_dir: &Path) -> Background {
    let addr = SocketAddr::from(([127, 0, 0, 1], postback::SANDBOX_DEFAULT_PORT));
    let sandbox = match postback::sandbox::start(addr).await {
        Ok(s) => Some(s),
        // Another Postback Desk (or `postback sandbox`) already serves it: use that one.
        Err(e) => {
            tracing::warn!(%addr, error = %e, "sandbox not started; using the one already listening");
            None
        }
    };
    let (stop, stop_rx) = watch::channel(false);
    let (writer, engine) = match WriterLock::acquire(data_dir, "Postback Desk") {
        Ok(lock) => {
            let dispatcher = Dispatcher::new(store, credentials, DispatcherOptions::default());
            let engine = dispatcher.subscribe();
            // Its own thread: the window's commands and the ingest API never wait behind it.
            if let Err(e) = dispatcher.run_on_own_thread(stop_rx) {
                tracing::error!(error = %e, "cannot start the delivery thread");
            }
            (Some(lock), engine)
        }
        Err(e) => {
            // Another process delivers: this window still edits, imports and reads.
            tracing::warn!(error = %e, "delivery runs elsewhere; this window is read-only for delivery");
            let state = match e {
                LockError::Held { pid, holder, .. } => EngineState::ReadOnly { holder_pid: pid, holder },
                other => EngineState::ReadOnly { holder_pid: None, holder: other.to_string() },
            };
            (None, watch::channel(state).1)
        }
    };
    Background { _sandbox: sandbox, _stop: stop, _writer: writer, engine }
}
