//! The sandbox's X authorisation servers: OAuth 1.0a (request token → consent page → access
//! token, HMAC-SHA1 signatures verified) and OAuth 2.0 with PKCE S256 (single-use codes, 2-hour
//! access tokens, refresh tokens). The consent page has an Approve and a Cancel link, so a test
//! can play the browser with plain HTTP.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Form, Json};
use base64::Engine;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::state::{now_secs, SandboxState};
use super::X_TOKEN;
use crate::oauth::signature::{hmac_sha1, parse_authorization_header, signature_base_string, SigningInput};

/// The sandbox X app's keys (OAuth 1.0a) and public client id (OAuth 2.0).
pub const X_CONSUMER_KEY: &str = "sandbox-consumer-key";
pub const X_CONSUMER_SECRET: &str = "sandbox-consumer-secret";
pub const X_CLIENT_ID: &str = "sandbox-client-id";
/// Lifetime of sandbox OAuth 2.0 access tokens, as on X.
pub const X_ACCESS_TOKEN_SECS: u64 = 7200;

struct RequestToken {
    secret: String,
    callback: String,
    verifier: Option<String>,
}

struct Code {
    client_id: String,
    redirect_uri: String,
    challenge: String,
}

#[derive(Default)]
struct Inner {
    request_tokens: HashMap<String, RequestToken>,
    /// OAuth 1.0a access token → token secret.
    access_tokens: HashMap<String, String>,
    codes: HashMap<String, Code>,
    /// OAuth 2.0 access token → expiry (Unix seconds).
    bearer_tokens: HashMap<String, u64>,
    refresh_tokens: HashSet<String>,
    seen_nonces: HashSet<String>,
    /// Lifetime given to new OAuth 2.0 access tokens (tests shorten it to exercise refresh).
    access_token_secs: Option<u64>,
}

#[derive(Default)]
pub struct OAuthServer {
    inner: Mutex<Inner>,
}

fn random(prefix: &str) -> String {
    let text: String = std::iter::repeat_with(fastrand::alphanumeric).take(24).collect();
    format!("{prefix}{text}")
}

impl OAuthServer {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_access_token_lifetime(&self, secs: u64) {
        self.lock().access_token_secs = Some(secs);
    }

    /// Revokes an issued token (what the user does in X's "Connected apps").
    pub fn revoke(&self, token: &str) {
        let mut inner = self.lock();
        inner.access_tokens.remove(token);
        inner.bearer_tokens.remove(token);
        inner.refresh_tokens.remove(token);
    }

    /// Checks an `Authorization` header on an X API request: the demo bearer token, an issued
    /// OAuth 2.0 token, or a correctly signed OAuth 1.0a request.
    pub fn authenticate(&self, authorization: &str, method: &str, url: &str) -> Result<(), &'static str> {
        if let Some(bearer) = authorization.strip_prefix("Bearer ") {
            let bearer = bearer.trim();
            if bearer == X_TOKEN {
                return Ok(());
            }
            return match self.lock().bearer_tokens.get(bearer) {
                Some(&expiry) if expiry > now_secs() => Ok(()),
                _ => Err("Invalid or expired token."),
            };
        }
        let params = parse_authorization_header(authorization).ok_or("This request is not properly authenticated")?;
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        if get("oauth_consumer_key").as_deref() != Some(X_CONSUMER_KEY) {
            return Err("Could not authenticate you.");
        }
        let token = get("oauth_token").ok_or("Could not authenticate you.")?;
        let timestamp: u64 =
            get("oauth_timestamp").and_then(|t| t.parse().ok()).ok_or("Could not authenticate you.")?;
        if timestamp.abs_diff(now_secs()) > 300 {
            return Err("Timestamp out of bounds.");
        }
        let mut inner = self.lock();
        let token_secret = inner.access_tokens.get(&token).cloned().ok_or("Invalid or expired token.")?;
        if !signature_valid(&params, method, url, &token_secret) {
            return Err("Could not authenticate you.");
        }
        let nonce = format!("{token}:{}", get("oauth_nonce").unwrap_or_default());
        if !inner.seen_nonces.insert(nonce) {
            return Err("Could not authenticate you.");
        }
        Ok(())
    }

    /// Verifies a signed OAuth 1.0a flow request (no or a request token); returns its params.
    fn verify_flow(
        &self,
        authorization: &str,
        url: &str,
        token_secret: impl Fn(&Inner, &str) -> Option<String>,
    ) -> Result<HashMap<String, String>, &'static str> {
        let params = parse_authorization_header(authorization).ok_or("missing OAuth header")?;
        let map: HashMap<String, String> = params.iter().cloned().collect();
        if map.get("oauth_consumer_key").map(String::as_str) != Some(X_CONSUMER_KEY) {
            return Err("Could not authenticate you.");
        }
        let inner = self.lock();
        let secret = match map.get("oauth_token") {
            Some(t) => token_secret(&inner, t).ok_or("Invalid or expired token.")?,
            None => String::new(),
        };
        if !signature_valid(&params, "POST", url, &secret) {
            return Err("Could not authenticate you.");
        }
        Ok(map)
    }
}

/// Whether the header's `oauth_signature` is the HMAC-SHA1 of this request under the sandbox
/// app's secret and `token_secret` (empty before there is a token).
fn signature_valid(params: &[(String, String)], method: &str, url: &str, token_secret: &str) -> bool {
    let Some((_, signature)) = params.iter().find(|(k, _)| k == "oauth_signature") else { return false };
    let signed: Vec<(String, String)> = params.iter().filter(|(k, _)| k != "oauth_signature").cloned().collect();
    signature_base_string(&SigningInput { method, url, form: &[], oauth: &signed })
        .is_ok_and(|base| &hmac_sha1(&base, X_CONSUMER_SECRET, token_secret) == signature)
}

/// The URL the client signed: the sandbox is plain HTTP on the Host it was called on.
pub fn request_url(headers: &HeaderMap, path_and_query: &str) -> String {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    format!("http://{host}{path_and_query}")
}

fn unauthorized(message: &str) -> Response {
    (StatusCode::UNAUTHORIZED, Json(json!({"errors": [{"code": 32, "message": message}]}))).into_response()
}

pub(super) fn authorization(headers: &HeaderMap) -> &str {
    headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

fn form_body(pairs: &[(&str, &str)]) -> Response {
    let body: String = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
    ([(header::CONTENT_TYPE, "application/x-www-form-urlencoded")], body).into_response()
}

pub async fn request_token(State(state): State<Arc<SandboxState>>, headers: HeaderMap) -> Response {
    let url = request_url(&headers, "/oauth/request_token");
    let params = match state.oauth.verify_flow(authorization(&headers), &url, |_, _| None) {
        Ok(p) => p,
        Err(m) => return unauthorized(m),
    };
    let Some(callback) = params.get("oauth_callback").cloned() else {
        return (StatusCode::BAD_REQUEST, "oauth_callback is required").into_response();
    };
    let (token, secret) = (random("rt-"), random("rts-"));
    state
        .oauth
        .lock()
        .request_tokens
        .insert(token.clone(), RequestToken { secret: secret.clone(), callback, verifier: None });
    form_body(&[("oauth_token", &token), ("oauth_token_secret", &secret), ("oauth_callback_confirmed", "true")])
}

fn consent_page(app: &str, approve: &str, deny: &str) -> Response {
    Html(format!(
        "<!doctype html><title>Sandbox X — authorise</title><body style=\"font-family:sans-serif\">\
         <h1>Authorise {app} to use your sandbox X Ads account?</h1>\
         <p>This is Postback Desk's offline sandbox; no real account is involved.</p>\
         <p><a id=\"approve\" href=\"{approve}\">Authorise app</a> · <a id=\"deny\" href=\"{deny}\">Cancel</a></p>"
    ))
    .into_response()
}

pub async fn authorize(Query(q): Query<HashMap<String, String>>) -> Response {
    let token = q.get("oauth_token").cloned().unwrap_or_default();
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    consent_page(
        "Postback Desk",
        &format!("/oauth/authorize/decide?oauth_token={}&approve=1", enc(&token)),
        &format!("/oauth/authorize/decide?oauth_token={}&approve=0", enc(&token)),
    )
}

fn with_query(base: &str, pairs: &[(&str, &str)]) -> Option<String> {
    let mut url = reqwest::Url::parse(base).ok()?;
    url.query_pairs_mut().extend_pairs(pairs);
    Some(url.into())
}

pub async fn authorize_decide(
    State(state): State<Arc<SandboxState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let token = q.get("oauth_token").cloned().unwrap_or_default();
    let mut inner = state.oauth.lock();
    let Some(pending) = inner.request_tokens.get_mut(&token) else {
        return (StatusCode::BAD_REQUEST, "unknown or used request token").into_response();
    };
    let target = if q.get("approve").map(String::as_str) == Some("1") {
        let verifier = random("v-");
        pending.verifier = Some(verifier.clone());
        with_query(&pending.callback, &[("oauth_token", &token), ("oauth_verifier", &verifier)])
    } else {
        with_query(&pending.callback, &[("denied", &token)])
    };
    match target {
        Some(t) => Redirect::to(&t).into_response(),
        None => (StatusCode::BAD_REQUEST, "bad callback").into_response(),
    }
}

pub async fn access_token(State(state): State<Arc<SandboxState>>, headers: HeaderMap) -> Response {
    let url = request_url(&headers, "/oauth/access_token");
    let params = match state
        .oauth
        .verify_flow(authorization(&headers), &url, |inner, t| inner.request_tokens.get(t).map(|r| r.secret.clone()))
    {
        Ok(p) => p,
        Err(m) => return unauthorized(m),
    };
    let token = params.get("oauth_token").cloned().unwrap_or_default();
    let mut inner = state.oauth.lock();
    // A request token is spent by its first exchange, right or wrong.
    let Some(pending) = inner.request_tokens.remove(&token) else {
        return unauthorized("Invalid request token.");
    };
    if pending.verifier.is_none() || pending.verifier.as_ref() != params.get("oauth_verifier") {
        return unauthorized("Error processing your OAuth request: Invalid oauth_verifier parameter");
    }
    let (access, secret) = (random("1234567890-"), random("ats-"));
    inner.access_tokens.insert(access.clone(), secret.clone());
    form_body(&[
        ("oauth_token", &access),
        ("oauth_token_secret", &secret),
        ("user_id", "1234567890"),
        ("screen_name", "sandbox_studio"),
    ])
}

pub async fn oauth2_authorize(Query(q): Query<HashMap<String, String>>) -> Response {
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    if get("response_type") != "code" || get("code_challenge_method") != "S256" || get("code_challenge").is_empty() {
        return (StatusCode::BAD_REQUEST, "response_type=code and a S256 code_challenge are required").into_response();
    }
    let pairs: Vec<(String, String)> = q.into_iter().collect();
    let query = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&pairs).finish();
    consent_page(
        "Postback Desk",
        &format!("/i/oauth2/authorize/decide?{query}&approve=1"),
        &format!("/i/oauth2/authorize/decide?{query}&approve=0"),
    )
}

pub async fn oauth2_decide(
    State(state): State<Arc<SandboxState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    let (redirect_uri, client_state) = (get("redirect_uri"), get("state"));
    let target = if get("approve") == "1" {
        let code = random("code-");
        state.oauth.lock().codes.insert(
            code.clone(),
            Code { client_id: get("client_id"), redirect_uri: redirect_uri.clone(), challenge: get("code_challenge") },
        );
        with_query(&redirect_uri, &[("code", &code), ("state", &client_state)])
    } else {
        with_query(&redirect_uri, &[("error", "access_denied"), ("state", &client_state)])
    };
    match target {
        Some(t) => Redirect::to(&t).into_response(),
        None => (StatusCode::BAD_REQUEST, "bad redirect_uri").into_response(),
    }
}

fn token_error(error: &str, description: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": error, "error_description": description}))).into_response()
}

pub async fn oauth2_token(
    State(state): State<Arc<SandboxState>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| form.get(k).cloned().unwrap_or_default();
    let mut inner = state.oauth.lock();
    match get("grant_type").as_str() {
        "authorization_code" => {
            // Codes are single-use: a replay finds nothing.
            let Some(code) = inner.codes.remove(&get("code")) else {
                return token_error("invalid_grant", "Value passed for the authorization code was invalid.");
            };
            if code.client_id != get("client_id") || code.client_id != X_CLIENT_ID {
                return token_error("invalid_client", "Missing valid authorization header");
            }
            if code.redirect_uri != get("redirect_uri") {
                return token_error("invalid_grant", "redirect_uri does not match the authorization request.");
            }
            let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(Sha256::digest(get("code_verifier").as_bytes()));
            if challenge != code.challenge {
                return token_error("invalid_grant", "code_verifier does not match the code_challenge.");
            }
        }
        "refresh_token" => {
            if !inner.refresh_tokens.remove(&get("refresh_token")) {
                return token_error("invalid_grant", "Value passed for the token was invalid.");
            }
        }
        other => return token_error("unsupported_grant_type", &format!("grant_type '{other}' is not supported")),
    }
    let lifetime = inner.access_token_secs.unwrap_or(X_ACCESS_TOKEN_SECS);
    let (access, refresh) = (random("at2-"), random("rt2-"));
    inner.bearer_tokens.insert(access.clone(), now_secs() + lifetime);
    inner.refresh_tokens.insert(refresh.clone());
    Json(json!({
        "token_type": "bearer", "access_token": access, "refresh_token": refresh,
        "expires_in": lifetime, "scope": "ads_management offline.access",
    }))
    .into_response()
}
