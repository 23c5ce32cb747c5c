//! What every sandbox request must show before a route sees it. The sandbox listens on loopback,
//! but any web page the user visits can still reach it: through a cross-site "simple" POST
//! (`text/plain`, no CORS preflight) or, by DNS rebinding, under a host name of its own.
//!
//! - A loopback `Host` (`127.0.0.1`, `localhost`, `[::1]`, any port) on every request, else 421:
//!   a rebound name (`evil.example`) never reaches a route.
//! - `Content-Type: application/json` on every state-changing control request
//!   (`/__sandbox/…` other than GET / HEAD), else 415: a browser sends that type cross-site only
//!   after a CORS preflight, which the sandbox never grants.

use axum::extract::Request;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

pub async fn check(request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()));
    if !host.is_some_and(is_loopback_host) {
        let message = match host {
            Some(h) => format!(
                "the sandbox answers only requests addressed to 127.0.0.1, localhost or [::1]; Host '{}' refused",
                h.chars().take(100).collect::<String>()
            ),
            None => "the sandbox answers only requests with a loopback Host header (127.0.0.1, localhost or [::1])"
                .to_owned(),
        };
        return (StatusCode::MISDIRECTED_REQUEST, Json(json!({"error": message}))).into_response();
    }
    let changes_state = !matches!(*request.method(), Method::GET | Method::HEAD);
    if changes_state && request.uri().path().starts_with("/__sandbox/") && !is_json(request.headers()) {
        let message = format!(
            "{} {} needs Content-Type: application/json",
            request.method(),
            request.uri().path().chars().take(100).collect::<String>()
        );
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, Json(json!({"error": message}))).into_response();
    }
    next.run(request).await
}

/// `127.0.0.1`, `localhost` or `[::1]`, with or without a port.
pub fn is_loopback_host(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        // `[::1]:8080`, `localhost:8080`; a bare `[::1]` has its last colon inside the brackets.
        Some((name, port)) if !name.is_empty() && port.chars().all(|c| c.is_ascii_digit()) && !host.ends_with(']') => {
            name
        }
        _ => host,
    };
    name == "127.0.0.1" || name == "[::1]" || name.eq_ignore_ascii_case("localhost")
}

/// `application/json`, parameters (`; charset=utf-8`) allowed.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

#[cfg(test)]
mod tests {
    use super::is_loopback_host;

    #[test]
    fn loopback_hosts_with_any_port() {
        for ok in ["127.0.0.1", "127.0.0.1:47811", "localhost", "LocalHost:1", "[::1]", "[::1]:47811"] {
            assert!(is_loopback_host(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:47811",
            "127.0.0.1.evil.example",
            "localhost.evil.example:80",
            "127.0.0.2:47811",
            "[::2]:1",
            "::1",
            "127.0.0.1:x",
            ":47811",
            "",
        ] {
            assert!(!is_loopback_host(bad), "{bad}");
        }
    }
}
