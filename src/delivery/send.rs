//! One HTTP exchange: fills the credential slots, sends, and turns the answer into plain data.

use std::time::{Duration, Instant};

use super::Credential;
use crate::model::Network;
use crate::networks::{self, Classification, HeaderValue, HttpResponse, ItemOutcome, Request};
use crate::oauth::signature::Signer;

/// What one request produced.
pub struct Exchange {
    pub classification: Classification,
    pub http_status: Option<u16>,
    pub latency_ms: i64,
    /// The body as sent (empty when nothing went out).
    pub sent_body: bytes::Bytes,
    /// The network's answer, when one came.
    pub answer: Option<HttpResponse>,
}

/// The client every request to a network goes through. Its settings are the safety (no
/// redirects, timeouts), so a client that cannot be built is an error, never a default one.
pub fn client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    // One process-wide TLS provider (ring); a second install attempt is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(5))
        // A network API never redirects a conversion; following one could leak the token.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("PostbackDesk/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// A client held by a constructor that cannot fail: one that could not be built is an error at
/// each use (nothing is sent), never a default client that follows redirects without timeouts.
#[derive(Debug, Clone)]
pub struct HttpClient(Result<reqwest::Client, String>);

impl HttpClient {
    pub fn new(timeout: Duration) -> Self {
        Self(client(timeout).map_err(|e| format!("the HTTP client cannot be built: {e}")))
    }

    pub fn get(&self) -> Result<&reqwest::Client, String> {
        self.0.as_ref().map_err(Clone::clone)
    }
}

pub async fn exchange(
    client: &reqwest::Client,
    network: Network,
    request: &Request,
    credential: Result<&Credential, String>,
) -> Exchange {
    let items = request.item_events.len();
    // Every item gets the same outcome; nothing went over the wire.
    let unsent = |outcome: ItemOutcome| Exchange {
        classification: Classification::all(outcome, items, None),
        http_status: None,
        latency_ms: 0,
        sent_body: bytes::Bytes::new(),
        answer: None,
    };
    let credential = match credential {
        Ok(c) => c,
        Err(reason) => return unsent(ItemOutcome::credential(reason)),
    };
    // A config naming the built-in sandbox reaches this process's own, wherever it listens.
    let url = crate::sandbox::resolve(&request.url);
    let mut builder = client.post(url.as_ref());
    for header in &request.headers {
        match header_value(header.value, credential, "POST", &url) {
            Ok(value) => builder = builder.header(header.name, value),
            Err(reason) => return unsent(ItemOutcome::credential(reason)),
        }
    }
    let body = match serde_json::to_vec(&request.body) {
        Ok(b) => bytes::Bytes::from(b),
        Err(e) => return unsent(ItemOutcome::rejected(format!("request could not be encoded: {e}"))),
    };
    let started = Instant::now();
    let result = async {
        let response = builder.body(body.clone()).send().await?;
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
            sent_body: body,
            answer: Some(response),
        },
        Err(e) => {
            let what = crate::http_errors::describe(&e);
            Exchange {
                classification: networks::transport_failure(&what, items),
                http_status: None,
                latency_ms,
                sent_body: body,
                answer: None,
            }
        }
    }
}

/// A header slot filled from the credential. OAuth 1.0a signs the method, URL and query (a
/// JSON body is not part of the signature).
pub fn header_value(slot: HeaderValue, credential: &Credential, method: &str, url: &str) -> Result<String, String> {
    match (slot, credential) {
        (HeaderValue::Plain(v), _) => Ok(v.to_owned()),
        (HeaderValue::AccessToken, Credential::Token(token)) => Ok(token.expose().to_owned()),
        (HeaderValue::BearerToken | HeaderValue::XAuthorization, Credential::Token(token)) => {
            Ok(format!("Bearer {}", token.expose()))
        }
        (HeaderValue::XAuthorization, Credential::XOAuth1(keys)) => Signer {
            consumer_key: &keys.consumer_key,
            consumer_secret: keys.consumer_secret.expose(),
            token: Some((&keys.token, keys.token_secret.expose())),
        }
        .header_now(method, url, &[], &[])
        .map_err(|e| e.to_string()),
        (_, Credential::XOAuth1(_)) => Err("an X OAuth credential cannot authorise this network; reconnect".into()),
    }
}
