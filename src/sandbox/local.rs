//! The app's own sandbox, wherever it could listen.
//!
//! Configs that send to the built-in sandbox store `crate::sandbox_base_url()`
//! (`http://127.0.0.1:47811`) as a stable marker. When another program holds that port, the
//! app's sandbox starts on a free port instead and registers here; every place that turns a base
//! URL into a request (delivery and validation in `delivery/send.rs` and `connect/validate.rs`,
//! the X OAuth flows) passes the URL through [`resolve`], so the marker reaches this process's
//! sandbox and never the program on the default port. Nothing stored changes, so the CLI and a
//! later start on the default port see the same configs.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::RwLock;

use super::RunningSandbox;

/// Base URL of the sandbox this process last started with [`start_local`].
static LOCAL: RwLock<Option<String>> = RwLock::new(None);

/// The process's own sandbox. Dropping it stops it, and the marker keeps resolving to its
/// address: a late request then fails instead of reaching the program on the default port.
pub struct LocalSandbox {
    pub running: RunningSandbox,
    /// Why it does not listen where asked (for the window), `None` when it does.
    pub notice: Option<String>,
}

/// Starts this process's sandbox on `preferred` or, when that address is taken, on a free
/// loopback port (said in `notice` and in the log); marker URLs then resolve to it.
pub async fn start_local(preferred: SocketAddr) -> std::io::Result<LocalSandbox> {
    let (running, notice) = match super::start(preferred).await {
        Ok(running) => (running, None),
        Err(taken) => {
            let running = super::start(SocketAddr::new(preferred.ip(), 0)).await?;
            tracing::warn!(
                %preferred, error = %taken, actual = %running.base_url,
                "the sandbox's port is not available (another program?); the sandbox runs on another port"
            );
            let notice = format!(
                "Port {port} is not available ({taken}; usually another program listens there), so this sandbox \
                 runs at {url} instead. Sandbox configs deliver here, not to whatever listens on port {port}.",
                port = preferred.port(),
                url = running.base_url
            );
            (running, Some(notice))
        }
    };
    *LOCAL.write().unwrap_or_else(|p| p.into_inner()) = Some(running.base_url.clone());
    Ok(LocalSandbox { running, notice })
}

/// Where this process's sandbox listens, if it started one.
pub fn local_base_url() -> Option<String> {
    LOCAL.read().unwrap_or_else(|p| p.into_inner()).clone()
}

/// `url` with the sandbox marker replaced by this process's sandbox; any other URL unchanged.
pub fn resolve(url: &str) -> Cow<'_, str> {
    let guard = LOCAL.read().unwrap_or_else(|p| p.into_inner());
    let Some(local) = guard.as_deref() else { return Cow::Borrowed(url) };
    let marker = crate::sandbox_base_url();
    match url.strip_prefix(marker.as_str()) {
        Some(rest) if local != marker && (rest.is_empty() || rest.starts_with(['/', '?'])) => {
            Cow::Owned(format!("{local}{rest}"))
        }
        _ => Cow::Borrowed(url),
    }
}
