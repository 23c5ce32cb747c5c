//! One HTTP exchange: fills the credential slots, sends, and turns the answer into plain data.

use std::time::{Duration, Instant};

use crate::model::Network;
use crate::networks::{self, Classification, HeaderValue, HttpResponse, ItemOutcome, Request};

/// What one request produced.
pub struct Exchange {
    pub classification: Classification,
    pub http_status: Option<u16>,
    pub latency_ms: i64,
}

pub fn client(timeout: Duration) -> reqwest::Client {
    // One process-wide TLS provider (ring); a second install attempt is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(5))
        // A network API never redirects a conversion; following one could leak the token.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("PostbackDesk/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

pub async fn exchange(
    client: &reqwest::Client,
    network: Network,
    request: &Request,
    token: Result<&str, String>,
) -> Exchange {
    let items = request.item_events.len();
    let token = match token {
        Ok(t) => t,
        Err(reason) => {
            return Exchange {
                classification: Classification::all(ItemOutcome::credential(reason), items, None),
                http_status: None,
                latency_ms: 0,
            }
        }
    };
    let mut builder = client.post(&request.url);
    for header in &request.headers {
        let value = match header.value {
            HeaderValue::Plain(v) => v.to_owned(),
            HeaderValue::AccessToken => token.to_owned(),
            HeaderValue::BearerToken | HeaderValue::XAuthorization => format!("Bearer {token}"),
        };
        builder = builder.header(header.name, value);
    }
    let body = match serde_json::to_vec(&request.body) {
        Ok(b) => b,
        Err(e) => {
            return Exchange {
                classification: Classification::all(
                    ItemOutcome::rejected(format!("request could not be encoded: {e}")),
                    items,
                    None,
                ),
                http_status: None,
                latency_ms: 0,
            }
        }
    };
    let started = Instant::now();
    let result = async {
        let response = builder.body(body).send().await?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str().to_owned(), v.to_owned())))
            .collect();
        let text = response.text().await?;
        Ok::<_, reqwest::Error>(HttpResponse { status, headers, body: text })
    }
    .await;
    let latency_ms = started.elapsed().as_millis() as i64;
    match result {
        Ok(response) => Exchange {
            classification: networks::classify(network, request, &response, chrono::Utc::now().timestamp()),
            http_status: Some(response.status),
            latency_ms,
        },
        Err(e) => {
            let what = if e.is_timeout() { "timed out".to_owned() } else { without_url(&e) };
            Exchange { classification: networks::transport_failure(&what, items), http_status: None, latency_ms }
        }
    }
}

/// reqwest errors name the URL; ours carry no secrets, but keep log lines short.
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(&format!(" for url ({url})"), "");
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}
