//! The loopback redirect listener of a native app's OAuth flow (RFC 8252 §7.3): the system
//! browser comes back to `http://127.0.0.1:<port>/callback?…`, and we read the query.
//!
//! Any local process can reach a loopback port, so the listener only ends the flow with an
//! answer for *this* sign-in (the caller's `belongs` check on `state` / `oauth_token`); other
//! callbacks get a page saying so and the wait goes on. Each connection is served on its own task
//! with a deadline, so a slow or silent client cannot hold up the real callback.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::Url;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::OAuthError;

pub struct CallbackListener {
    listener: TcpListener,
    redirect_uri: String,
}

const PAGE_OK: &str = "<!doctype html><title>Postback Desk</title><body style=\"font-family:sans-serif\">\
<h1>Done</h1><p>You can close this tab and return to Postback Desk.</p>";
const PAGE_FOREIGN: &str = "<!doctype html><title>Postback Desk</title><body style=\"font-family:sans-serif\">\
<h1>Not for this sign-in</h1><p>This answer belongs to another sign-in attempt. Return to Postback Desk and start again.</p>";

/// How long one connection may take to send its request line and headers.
const REQUEST_DEADLINE: Duration = Duration::from_secs(5);

impl CallbackListener {
    /// Listens on 127.0.0.1 (`port` 0 = any free port; X needs the exact registered URL).
    pub async fn bind(port: u16) -> Result<Self, OAuthError> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.map_err(|e| {
            OAuthError::Listener(format!(
                "cannot listen on 127.0.0.1:{port} ({e}); is another sign-in still waiting? cancel it and try again"
            ))
        })?;
        let port = listener.local_addr().map_err(|e| OAuthError::Listener(e.to_string()))?.port();
        Ok(CallbackListener { listener, redirect_uri: format!("http://127.0.0.1:{port}/callback") })
    }

    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Waits for the browser's visit to `/callback` with an answer that `belongs` to this
    /// sign-in and returns its query parameters. On timeout: [`OAuthError::StateMismatch`] if
    /// only foreign answers came, else [`OAuthError::TimedOut`] (a closed tab).
    pub async fn wait(
        self,
        timeout: Duration,
        belongs: impl Fn(&HashMap<String, String>) -> bool + Send + Sync + 'static,
    ) -> Result<HashMap<String, String>, OAuthError> {
        let belongs = std::sync::Arc::new(belongs);
        let (found_tx, mut found_rx) = mpsc::channel::<HashMap<String, String>>(1);
        let (foreign_tx, mut foreign_rx) = mpsc::channel::<()>(8);
        let accept = async {
            loop {
                let stream = match self.listener.accept().await {
                    Ok((stream, _)) => stream,
                    Err(_) => {
                        // Out of file descriptors or similar: do not spin.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let (found, foreign, belongs) = (found_tx.clone(), foreign_tx.clone(), belongs.clone());
                tokio::spawn(async move {
                    let Ok(Some(params)) =
                        tokio::time::timeout(REQUEST_DEADLINE, read_callback(stream, &*belongs)).await
                    else {
                        return;
                    };
                    match params {
                        Ok(params) => {
                            let _ = found.try_send(params);
                        }
                        Err(()) => {
                            let _ = foreign.try_send(());
                        }
                    }
                });
            }
        };
        let outcome = tokio::time::timeout(timeout, async {
            tokio::select! {
                _ = accept => None,
                params = found_rx.recv() => params,
            }
        })
        .await;
        match outcome {
            Ok(Some(params)) => Ok(params),
            _ if foreign_rx.try_recv().is_ok() => Err(OAuthError::StateMismatch),
            _ => Err(OAuthError::TimedOut(timeout.as_secs())),
        }
    }
}

/// Reads one request and answers it. `Some(Ok(query))` for this sign-in's callback,
/// `Some(Err(()))` for a callback of another one, `None` for anything else.
async fn read_callback(
    mut stream: TcpStream,
    belongs: &(dyn Fn(&HashMap<String, String>) -> bool + Send + Sync),
) -> Option<Result<HashMap<String, String>, ()>> {
    let mut buffer = Vec::with_capacity(2048);
    let mut chunk = [0u8; 2048];
    while !buffer.windows(4).any(|w| w == b"\r\n\r\n") && buffer.len() < 16 * 1024 {
        let read = stream.read(&mut chunk).await.ok()?;
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
    let ours = belongs(&params);
    let page = if ours { PAGE_OK } else { PAGE_FOREIGN };
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
        page.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
    Some(if ours { Ok(params) } else { Err(()) })
}
