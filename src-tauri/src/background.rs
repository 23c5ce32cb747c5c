//! What the app runs besides the window: the sandbox networks (the demo configs' peer) and,
//! when this process holds the data directory's writer lock, the same dispatcher as
//! `postback serve`, until the app exits. The sandbox is always this process's own: when its
//! port is taken it runs on another one, and sandbox configs follow it (`postback::sandbox::resolve`).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use postback::delivery::{Credentials, Dispatcher, DispatcherOptions, LockError, WriterLock};
use postback::model::EngineState;
use postback::sandbox::{LocalSandbox, SandboxState};
use postback::store::Store;
use tokio::sync::watch;

/// Keeps the background work alive; dropping it stops the sandbox and the dispatcher.
pub struct Background {
    /// The app's sandbox, or why none runs.
    sandbox: Result<LocalSandbox, String>,
    _stop: watch::Sender<bool>,
    _writer: Option<WriterLock>,
    /// What the delivery engine is doing, for the window.
    pub engine: watch::Receiver<EngineState>,
}

impl Background {
    /// Where the app's sandbox listens and, when not on the port asked for, why.
    pub fn sandbox(&self) -> Result<(&str, Option<&str>), &str> {
        match &self.sandbox {
            Ok(local) => Ok((&local.running.base_url, local.notice.as_deref())),
            Err(problem) => Err(problem),
        }
    }

    /// What the app's sandbox received (tests).
    pub fn sandbox_state(&self) -> Option<Arc<SandboxState>> {
        self.sandbox.as_ref().ok().map(|local| local.running.state.clone())
    }
}

/// The sandbox's usual address: the one the demo configs name.
pub fn default_sandbox_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], postback::SANDBOX_DEFAULT_PORT))
}

/// Starts the sandbox (on `sandbox_addr`, else on a free port) and, with the writer lock, the
/// dispatcher.
pub async fn start(
    store: Store,
    credentials: Arc<Credentials>,
    data_dir: &Path,
    sandbox_addr: SocketAddr,
) -> Background {
    let sandbox = postback::sandbox::start_local(sandbox_addr).await.map_err(|e| {
        tracing::error!(%sandbox_addr, error = %e, "the sandbox could not start");
        format!("the sandbox could not start on {sandbox_addr} nor on another port: {e}")
    });
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
    Background { sandbox, _stop: stop, _writer: writer, engine }
}
