use crate::model::ApiError;

/// Why connecting an account failed; each message says what to do next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    #[error("access was denied in the browser; click Connect again and approve Postback Desk")]
    Denied,
    #[error("the browser returned an answer for a different sign-in attempt (state mismatch); nothing was changed — click Connect again")]
    StateMismatch,
    #[error(
        "no answer from the browser within {0} s (was the tab closed?); nothing was changed — click Connect again"
    )]
    TimedOut(u64),
    #[error("sign-in cancelled; nothing was changed")]
    Cancelled,
    #[error("the authorisation code was refused ({0}): it was already used or has expired; click Connect again")]
    InvalidGrant(String),
    #[error("X refused the app credentials ({0}); check the API key / client id and secret of your X developer app")]
    InvalidClient(String),
    #[error("X no longer accepts this account's token ({0}); reconnect X")]
    Revoked(String),
    #[error("the authorisation server refused the request ({0})")]
    Refused(String),
    #[error("could not reach the authorisation server: {0}; check the connection and try again")]
    Unreachable(String),
    #[error("unexpected answer from the authorisation server: {0}")]
    Malformed(String),
    #[error("could not open the browser ({0}); open this address yourself to continue")]
    Browser(String),
    #[error("could not take the browser's answer: {0}")]
    Listener(String),
    #[error("invalid URL {0}")]
    InvalidUrl(String),
}

impl From<OAuthError> for ApiError {
    fn from(e: OAuthError) -> Self {
        let code = match e {
            OAuthError::Denied => "oauth_denied",
            OAuthError::TimedOut(_) => "oauth_timeout",
            OAuthError::Cancelled => "oauth_cancelled",
            _ => "oauth_failed",
        };
        ApiError::new(code, e.to_string())
    }
}
