//! Loopback simulators of the TikTok Events API, Reddit Conversions API v3 and X Conversions API,
//! with fault injection. The app's demo configs point here; tests use it as the network peer.
//!
//! Paths are the real APIs' paths under one base URL. Control routes live under `/__sandbox/`.
//! Every request needs a loopback `Host`, and control requests that change state need JSON
//! (`guard.rs`): web pages the user visits must not drive it.

mod control;
mod demo_game;
mod guard;
mod local;
pub mod oauth;
mod reddit;
pub mod state;
mod tiktok;
mod x;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::serving::ServerTask;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;

pub use demo_game::{ensure_demo_game, DEMO_GAME_NAME};
pub use local::{local_base_url, resolve, start_local, LocalSandbox};
pub use state::{Faults, NetworkStats, PixelView, SandboxState};

use crate::model::{Goal, PostbackConfig, RedditConfig, TikTokConfig, XConfig};

/// The sandbox's public demo credentials: the only tokens it accepts.
pub const TIKTOK_TOKEN: &str = "sandbox-tiktok-token";
pub const REDDIT_TOKEN: &str = "sandbox-reddit-token";
pub const X_TOKEN: &str = "sandbox-x-token";

/// The Sandbox page: where the simulated networks listen, what each pixel received, the faults.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, ts_rs::TS)]
pub struct SandboxOverview {
    pub base_url: String,
    /// Why the sandbox does not listen on its usual port (another program holds it), if so.
    pub notice: Option<String>,
    pub pixels: Vec<PixelView>,
    pub faults: Faults,
}

/// The demo token, or a "new" one derived from it (`sandbox-tiktok-token-2`): a demo can revoke
/// the token in use and rotate to another that works.
fn token_accepted(token: &str, demo: &str) -> bool {
    token == demo || token.strip_prefix(demo).is_some_and(|rest| rest.starts_with('-') && rest.len() > 1)
}

/// One config per network pointing at a sandbox: the demo game's, and the tests'.
pub fn demo_configs(base_url: &str, trigger_events: &[&str], x_goals: Vec<Goal>) -> [PostbackConfig; 3] {
    let triggers: Vec<String> = trigger_events.iter().map(|t| (*t).to_owned()).collect();
    let base_url = Some(base_url.to_owned());
    [
        PostbackConfig::TikTok(TikTokConfig {
            pixel_code: "CSANDBOX0000000000001".into(),
            trigger_events: triggers.clone(),
            test_event_code: None,
            base_url: base_url.clone(),
        }),
        PostbackConfig::Reddit(RedditConfig {
            pixel_id: "a2_sandbox01".into(),
            trigger_events: triggers,
            test_id: None,
            base_url: base_url.clone(),
        }),
        PostbackConfig::X(XConfig { pixel_id: "sbx01".into(), goals: x_goals, base_url }),
    ]
}

pub fn router(state: Arc<SandboxState>) -> Router {
    Router::new()
        .route("/open_api/v1.3/event/track/", post(tiktok::track))
        .route("/api/v3/pixels/{pixel_id}/conversion_events", post(reddit::conversion_events))
        .route("/12/measurement/conversions/{pixel_id}", post(x::conversions))
        .route("/12/accounts", get(x::accounts))
        .route("/12/accounts/{account_id}/authenticated_user_access", get(x::user_access))
        .route("/oauth/request_token", post(oauth::request_token))
        .route("/oauth/authorize", get(oauth::authorize))
        .route("/oauth/authorize/decide", get(oauth::authorize_decide))
        .route("/oauth/access_token", post(oauth::access_token))
        .route("/i/oauth2/authorize", get(oauth::oauth2_authorize))
        .route("/i/oauth2/authorize/decide", get(oauth::oauth2_decide))
        .route("/2/oauth2/token", post(oauth::oauth2_token))
        .route("/__sandbox/faults", post(control::set_faults).get(control::get_faults))
        .route("/__sandbox/stats", get(control::stats))
        .route("/__sandbox/pixels", get(control::pixels))
        .route("/__sandbox/reset", post(control::reset))
        .layer(DefaultBodyLimit::max(32 * 1024 * 1024))
        .layer(axum::middleware::from_fn(guard::check))
        .with_state(state)
}

/// A sandbox serving in the background until [`RunningSandbox::stop`] or drop.
pub struct RunningSandbox {
    pub base_url: String,
    pub addr: SocketAddr,
    pub state: Arc<SandboxState>,
    server: crate::serving::ServerTask,
}

impl RunningSandbox {
    pub async fn stop(mut self) {
        self.server.stop().await;
    }
}

/// Binds `addr` (loopback; port 0 picks a free one) and serves in a background task.
pub async fn start(addr: SocketAddr) -> std::io::Result<RunningSandbox> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let state = Arc::new(SandboxState::default());
    let app = router(state.clone());
    Ok(RunningSandbox { base_url: format!("http://{addr}"), addr, state, server: ServerTask::spawn(listener, app) })
}

/// Adds the injected `Retry-After` (and X's reset header) to an injected failure's answer.
fn with_injected_wait(
    mut response: axum::response::Response,
    state: &SandboxState,
    x: bool,
) -> axum::response::Response {
    if let Some(value) = state.faults().retry_after {
        if let Ok(v) = axum::http::HeaderValue::from_str(&value) {
            response.headers_mut().insert("retry-after", v.clone());
            if x {
                response.headers_mut().insert("x-rate-limit-reset", v);
            }
        }
    }
    response
}

/// The common start of every network route: injected latency, the request count, and an
/// injected failure if one is drawn.
async fn before_request(state: &SandboxState, network: crate::model::Network) -> Option<u16> {
    let latency = state.faults().latency_ms;
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    state.count_request(network);
    state.draw_fault()
}
