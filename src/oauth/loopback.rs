//! The loopback redirect listener of a native app's OAuth flow (RFC 8252 §7.3): the system
//! browser comes back to `http://127.0.0.1:<port>/callback?…` once, and we read the query.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::Url;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::OAuthError;

pub struct CallbackListener {
    listener: TcpListener,
    redirect_uri: String,
}

const PAGE_OK: &str = "<!doctype html><title>Postback Desk</title><body style=\"font-family:sans-serif\">\
<h1>Connected</h1><p>You can close this tab and return to Postback Desk.</p>";
const PAGE_FAILED: &str = "<!doctype html><title>Postback Desk</title><body style=\"font-family:sans-serif\">\
<h1>Not connected</h1><p>Return to Postback Desk to see what happened.</p>";

impl CallbackListener {
    /// Listens on 127.0.0.1 (`port` 0 = any free port; X needs the exact registered URL).
    pub async fn bind(port: u16) -> Result<Self, OAuthError> {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|e| OAuthError::Listener(format!("cannot listen on 127.0.0.1:{port}: {e}")))?;
        let port = listener.local_addr().map_err(|e| OAuthError::Listener(e.to_string()))?.port();
        Ok(CallbackListener { listener, redirect_uri: format!("http://127.0.0.1:{port}/callback") })
    }

    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Waits for the browser's visit to `/callback` and returns its query parameters. Other
    /// paths (a favicon request) get a 404 and the wait goes on. `timeout` covers a closed tab.
    pub async fn wait(self, timeout: Duration) -> Result<HashMap<String, String>, OAuthError> {
        let wait = async {
            loop {
                let Ok((stream, _)) = self.listener.accept().await else { continue };
                if let Some(params) = answer(stream).await {
                    return params;
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.map_err(|_| OAuthError::TimedOut(timeout.as_secs()))
    }
}

/// Reads one request; `Some(query)` when it was the callback.
async fn answer(mut stream: TcpStream) -> Option<HashMap<String, String>> {
    let mut buffer = Vec::with_capacity(2048);
    let mut chunk = [0u8; 2048];
    while !buffer.windows(4).any(|w| w == b"\r\n\r\n") && buffer.len() < 16 * 1024 {
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk)).await.ok()?.ok()?;
        if read == 0 {
            break;
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
    let head = String::from_utf8_lossy(&buffer);
    let target = head.lines().next()?.split_whitespace().nth(1)?.to_owned();
    let url = Url::parse(&format!("http://127.0.0.1{target}")).ok()?;
    if url.path() != "/callback" {
        let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
        return None;
    }
    let params: HashMap<String, String> = url.query_pairs().into_owned().collect();
    let page = if params.contains_key("error") || params.contains_key("denied") { PAGE_FAILED } else { PAGE_OK };
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
        page.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
    Some(params)
}
