//! X OAuth: OAuth 1.0a 3-legged (the default; tokens do not expire) and OAuth 2.0 Authorization
//! Code + PKCE (2-hour tokens renewed with a refresh token). Both send the user to the system
//! browser and take the answer on a loopback listener; neither follows redirects itself.

mod error;
pub mod loopback;
pub mod oauth1;
pub mod pkce;
pub mod signature;
mod system_browser;

use std::time::Duration;

pub use error::OAuthError;
pub use system_browser::SystemBrowser;

/// Where the authorisation URL is opened: the system browser in the app, a scripted client in
/// tests. Returns an error message when no browser could be started.
pub trait Browser: Send + Sync {
    fn open(&self, url: &str) -> Result<(), String>;
}

/// How long the user has to approve in the browser before the flow gives up.
pub const DEFAULT_BROWSER_TIMEOUT: Duration = Duration::from_secs(300);

/// The X endpoints of both flows; `base_url` points them at the sandbox (the sandbox marker is
/// resolved where a request is made: `crate::sandbox::resolve`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XOAuthEndpoints {
    pub request_token: String,
    pub authorize: String,
    pub access_token: String,
    pub oauth2_authorize: String,
    pub oauth2_token: String,
}

impl XOAuthEndpoints {
    pub fn for_base(base_url: Option<&str>) -> Self {
        match base_url {
            Some(base) => {
                let base = base.trim_end_matches('/');
                XOAuthEndpoints {
                    request_token: format!("{base}/oauth/request_token"),
                    authorize: format!("{base}/oauth/authorize"),
                    access_token: format!("{base}/oauth/access_token"),
                    oauth2_authorize: format!("{base}/i/oauth2/authorize"),
                    oauth2_token: format!("{base}/2/oauth2/token"),
                }
            }
            None => XOAuthEndpoints {
                request_token: "https://api.x.com/oauth/request_token".into(),
                authorize: "https://api.x.com/oauth/authorize".into(),
                access_token: "https://api.x.com/oauth/access_token".into(),
                oauth2_authorize: "https://x.com/i/oauth2/authorize".into(),
                oauth2_token: "https://api.x.com/2/oauth2/token".into(),
            },
        }
    }
}

/// The scopes an X OAuth 2.0 user token needs to send conversions and be refreshed.
pub const X_OAUTH2_SCOPES: [&str; 2] = ["ads_management", "offline.access"];
