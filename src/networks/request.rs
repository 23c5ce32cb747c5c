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

impl Request {
    /// The request as `postback preview` shows it: credential headers present, values redacted.
    pub fn redacted_json(&self) -> Value {
        let headers: Map<String, Value> = self
            .headers
            .iter()
            .map(|h| {
                let value = match h.value {
                    HeaderValue::Plain(v) => v,
                    HeaderValue::AccessToken | HeaderValue::BearerToken | HeaderValue::XAuthorization => "<redacted>",
                };
                (h.name.to_owned(), Value::from(value))
            })
            .collect();
        serde_json::json!({"method": self.method, "url": self.url, "headers": headers, "body": self.body})
    }
}

pub(super) fn json_headers(credential_header: &'static str, credential: HeaderValue) -> Vec<Header> {
    vec![
        Header { name: "content-type", value: HeaderValue::Plain("application/json") },
        Header { name: credential_header, value: credential },
    ]
}
