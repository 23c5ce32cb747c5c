//! What the app runs besides the window: the sandbox networks (the demo configs' peer), for
//! as long as the app runs, and the open workspace's delivery. On the local workspace, when
//! this process holds the data directory's writer lock, that is the same dispatcher as
//! `postback serve`; on a team workspace the team's workers deliver and this window follows
//! how many run. The sandbox is always this process's own: when its port is taken it runs on
//! another one, and sandbox configs follow it (`postback::sandbox::resolve`).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use postback::delivery::{Credentials, Dispatcher, DispatcherOptions, LockError, RunReport, WriterLock};
use postback::model::EngineState;
use postback::sandbox::{LocalSandbox, SandboxState};
use postback::store::Store;
use tokio::sync::watch;

/// How often a team workspace's window counts the running workers.
const WORKERS_EVERY: Duration = Duration::from_secs(2);

/// Keeps the background work alive; dropping it stops the sandbox and the delivery.
pub struct Background {
    /// The app's sandbox, or why none runs.
    sandbox: Result<LocalSandbox, String>,
    delivery: Mutex<Delivery>,
}

/// The open workspace's delivery (or, on a team workspace, the watch on its workers).
pub struct Delivery {
    stop: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<RunReport>>,
    _writer: Option<WriterLock>,
    /// What the delivery engine is doing, for the window.
    pub engine: watch::Receiver<EngineState>,
}

impl Delivery {
    /// Stops it and waits (10 s at most) for the dispatcher to let go of its rows. The writer
    /// lock goes only with the dispatcher's thread: one still finishing after the wait keeps it,
    /// so a switch back finds the data directory delivered elsewhere, never two dispatchers.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        let writer = self._writer.take();
        if let Some(thread) = self.thread.take() {
            let joined = tokio::task::spawn_blocking(move || {
                let _ = thread.join();
                drop(writer);
            });
            let _ = tokio::time::timeout(Duration::from_secs(10), joined).await;
        }
    }
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

    /// The delivery engine's state, followed.
    pub fn engine(&self) -> watch::Receiver<EngineState> {
        self.delivery.lock().unwrap_or_else(|p| p.into_inner()).engine.clone()
    }

    /// Puts `next` in place of the running delivery; returns the old one, to be stopped.
    pub fn replace_delivery(&self, next: Delivery) -> Delivery {
        std::mem::replace(&mut *self.delivery.lock().unwrap_or_else(|p| p.into_inner()), next)
    }
}

/// The sandbox's usual address: the one the demo configs name.
pub fn default_sandbox_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], postback::SANDBOX_DEFAULT_PORT))
}

/// Starts the sandbox (on `sandbox_addr`, else on a free port) and the workspace's delivery.
pub async fn start(
    store: Store,
    credentials: Arc<Credentials>,
    data_dir: &Path,
    sandbox_addr: SocketAddr,
    team: bool,
) -> Background {
    let sandbox = postback::sandbox::start_local(sandbox_addr).await.map_err(|e| {
        tracing::error!(%sandbox_addr, error = %e, "the sandbox could not start");
        format!("the sandbox could not start on {sandbox_addr} nor on another port: {e}")
    });
    let delivery = start_delivery(store, credentials, data_dir, team);
    Background { sandbox, delivery: Mutex::new(delivery) }
}

/// The local workspace's dispatcher (with the writer lock), or a team workspace's watch on
/// its workers.
pub fn start_delivery(store: Store, credentials: Arc<Credentials>, data_dir: &Path, team: bool) -> Delivery {
    let (stop, stop_rx) = watch::channel(false);
    if team {
        let (state, engine) = watch::channel(EngineState::Workers { live: 0 });
        tauri::async_runtime::spawn(count_workers(store, state, stop_rx));
        return Delivery { stop, thread: None, _writer: None, engine };
    }
    match WriterLock::acquire(data_dir, "Postback Desk") {
        Ok(lock) => {
            let dispatcher = Dispatcher::new(store, credentials, DispatcherOptions::default());
            let engine = dispatcher.subscribe();
            // Its own thread: the window's commands and the ingest API never wait behind it.
            let thread = match dispatcher.run_on_own_thread(stop_rx) {
                Ok(thread) => Some(thread),
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the delivery thread");
                    None
                }
            };
            Delivery { stop, thread, _writer: Some(lock), engine }
        }
        Err(e) => {
            // Another process delivers: this window still edits, imports and reads.
            tracing::warn!(error = %e, "delivery runs elsewhere; this window is read-only for delivery");
            let state = match e {
                LockError::Held { pid, holder, .. } => EngineState::ReadOnly { holder_pid: pid, holder },
                other => EngineState::ReadOnly { holder_pid: None, holder: other.to_string() },
            };
            Delivery { stop, thread: None, _writer: None, engine: watch::channel(state).1 }
        }
    }
}

/// No delivery: what stands in while a workspace switch stops one and starts the next.
pub fn stopped_delivery() -> Delivery {
    let (stop, _) = watch::channel(true);
    Delivery { stop, thread: None, _writer: None, engine: watch::channel(EngineState::Stopped).1 }
}

/// Counts a team's running workers every few seconds until stopped.
async fn count_workers(store: Store, state: watch::Sender<EngineState>, mut stop: watch::Receiver<bool>) {
    loop {
        match postback::team::running_workers(&store).await {
            Ok(live) => {
                state.send_if_modified(|now| {
                    let next = EngineState::Workers { live };
                    let changed = *now != next;
                    *now = next;
                    changed
                });
            }
            Err(e) => tracing::warn!(error = %e, "the team's workers could not be counted"),
        }
        tokio::select! {
            _ = tokio::time::sleep(WORKERS_EVERY) => {}
            _ = stop.changed() => return,
        }
    }
}
