//! What the app runs besides the window: the sandbox networks (the demo configs' peer) and the
//! same dispatcher as `postback serve`, until the app exits.

use std::net::SocketAddr;
use std::sync::Arc;

use postback::delivery::{Credentials, Dispatcher, DispatcherOptions};
use postback::sandbox::RunningSandbox;
use postback::store::Store;
use tokio::sync::watch;

/// Keeps the background work alive; dropping it stops the sandbox and the dispatcher.
pub struct Background {
    _sandbox: Option<RunningSandbox>,
    _stop: watch::Sender<bool>,
}

pub async fn start(store: Store, credentials: Arc<Credentials>) -> Background {
    let addr = SocketAddr::from(([127, 0, 0, 1], postback::SANDBOX_DEFAULT_PORT));
    let sandbox = match postback::sandbox::start(addr).await {
        Ok(s) => Some(s),
        // Another Postback Desk (or `postback sandbox`) already serves it: use that one.
        Err(e) => {
            eprintln!("sandbox not started on {addr}: {e}");
            None
        }
    };
    let (stop, stop_rx) = watch::channel(false);
    let mut dispatcher = Dispatcher::new(store, credentials, DispatcherOptions::default());
    tauri::async_runtime::spawn(async move {
        if let Err(e) = dispatcher.run(stop_rx).await {
            eprintln!("dispatcher stopped: {e}");
        }
    });
    Background { _sandbox: sandbox, _stop: stop }
}
