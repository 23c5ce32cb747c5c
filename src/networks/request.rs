use serde_json::{Map, Value};

/// The credential that fills a header at send time; a request never holds a secret itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderValue {
    Plain(&'static str),
    /// `Access-Token: <token>` (TikTok, no prefix).
    AccessToken,
    /// `Authorization: Bearer <token>` (Reddit).
    BearerToken,
    /// `Authorization: OAuth …` signed per request, or `Bearer` for OAuth 2.0 (X).
    XAuthorization,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: &'static str,
    pub value: HeaderValue,
}

/// One HTTP request to a network, as pure data.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<Header>,
    pub body: Value,
    /// For each item in the body, in order, the index of the input event it came from.
    pub item_events: Vec<usize>,
}

/// What a credential header shows wherever a request is displayed or stored.
pub const REDACTED: &str = "<redacted>";

impl Request {
    /// The headers as shown and stored: credential headers present, values redacted.
    pub fn redacted_headers(&self) -> Map<String, Value> {
        self.headers
            .iter()
            .map(|h| {
                let value = match h.value {
                    HeaderValue::Plain(v) => v,
                    HeaderValue::AccessToken | HeaderValue::BearerToken | HeaderValue::XAuthorization => REDACTED,
                };
                (h.name.to_owned(), Value::from(value))
            })
            .collect()
    }

    /// The request as `postback preview` shows it: credential headers present, values redacted.
    pub fn redacted_json(&self) -> Value {
        serde_json::json!({"method": self.method, "url": self.url, "headers": self.redacted_headers(), "body": self.body})
    }
}

/// Where a network's request body lists its items (events or conversions).
pub fn items_pointer(network: crate::model::Network) -> &'static str {
    match network {
        crate::model::Network::TikTok => "/data",
        crate::model::Network::Reddit => "/data/events",
        crate::model::Network::X => "/conversions",
    }
}

/// Replaces the items at `indices` of a stored request body with a marker: what an erased
/// player sent leaves the stored request too (the other players' items stay).
pub fn redact_items(network: crate::model::Network, body: &mut Value, indices: &[i64]) -> usize {
    let Some(items) = body.pointer_mut(items_pointer(network)).and_then(Value::as_array_mut) else { return 0 };
    let mut redacted = 0;
    for &i in indices {
        if let Some(item) = usize::try_from(i).ok().and_then(|i| items.get_mut(i)) {
            *item = serde_json::json!({"erased": "this player asked to be forgotten"});
            redacted += 1;
        }
    }
    redacted
}

pub(super) fn json_headers(credential_header: &'static str, credential: HeaderValue) -> Vec<Header> {
    vec![
        Header { name: "content-type", value: HeaderValue::Plain("application/json") },
        Header { name: credential_header, value: credential },
    ]
}
