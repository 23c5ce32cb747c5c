//! TikTok Events API 2.0 (`/open_api/v1.3/event/track/`). Facts: `shared/networks/tiktok.md`.

use serde_json::{json, Map, Value};

use super::classify::{by_status, excerpt, Classification, HttpResponse, ItemOutcome};
use super::money::Money;
use super::request::{json_headers, Header, HeaderValue};
use super::{endpoint, put};
use crate::identity::Identity;
use crate::model::{ConversionEvent, TikTokConfig};

pub const MAX_EVENTS: usize = 1000;
const DEFAULT_BASE: &str = "https://business-api.tiktok.com";
const PATH: &str = "/open_api/v1.3/event/track/";

/// Canonical event names that TikTok knows under a standard name; others pass as custom events.
fn event_name(name: &str) -> &str {
    match name {
        "game_launch" => "CompleteRegistration",
        "purchase" => "Purchase",
        other => other,
    }
}

pub fn event_item(event: &ConversionEvent, id: &Identity, money: Option<&Money>) -> Value {
    let mut user = Map::new();
    put(&mut user, "ttclid", id.ttclid.clone());
    put(&mut user, "email", id.email_sha256.clone());
    put(&mut user, "phone", id.phone_sha256.clone());
    put(&mut user, "ip", id.ip.clone());
    put(&mut user, "user_agent", id.user_agent.clone());
    put(&mut user, "external_id", id.external_id.clone());

    let mut properties = Map::new();
    if let Some(m) = money {
        properties.insert("value".into(), m.json_number());
        properties.insert("currency".into(), m.currency.clone().into());
    }
    if !event.items.is_empty() {
        let contents: Vec<Value> = event
            .items
            .iter()
            .map(|item| {
                let mut c = Map::new();
                c.insert("content_id".into(), item.id.clone().into());
                c.insert("content_type".into(), "product".into());
                put(&mut c, "content_name", item.name.clone());
                put(&mut c, "price", item.price);
                c.insert("quantity".into(), item.quantity.into());
                Value::Object(c)
            })
            .collect();
        properties.insert("contents".into(), contents.into());
    }

    let mut item = Map::new();
    item.insert("event".into(), event_name(&event.name).into());
    item.insert("event_time".into(), event.occurred_at.timestamp().into());
    item.insert("event_id".into(), event.event_id.clone().into());
    item.insert("user".into(), Value::Object(user));
    if !properties.is_empty() {
        item.insert("properties".into(), Value::Object(properties));
    }
    if let Some(url) = &event.page_url {
        item.insert("page".into(), json!({ "url": url }));
    }
    Value::Object(item)
}

pub fn request(config: &TikTokConfig, items: Vec<Value>) -> (String, Vec<Header>, Value) {
    let mut body = Map::new();
    body.insert("event_source".into(), "web".into());
    body.insert("event_source_id".into(), config.pixel_code.clone().into());
    put(&mut body, "test_event_code", config.test_event_code.clone());
    body.insert("data".into(), items.into());
    (
        endpoint(config.base_url.as_deref(), DEFAULT_BASE, PATH),
        json_headers("access-token", HeaderValue::AccessToken),
        Value::Object(body),
    )
}

/// TikTok answers errors as HTTP 200 with a non-zero `code`: the body decides, not the status.
pub fn classify(response: &HttpResponse, items_sent: usize, now: i64) -> Classification {
    let body = response.json();
    let request_id = body.as_ref().and_then(|b| b.get("request_id")).and_then(Value::as_str).map(str::to_owned);
    let code = body.as_ref().and_then(|b| b.get("code")).and_then(Value::as_i64);
    let message = body.as_ref().and_then(|b| b.get("message")).and_then(Value::as_str).unwrap_or_default().to_owned();
    let mut classified = match (response.status, code) {
        (200, Some(0 | 20001)) => Classification::all(ItemOutcome::Success, items_sent, None),
        (200, Some(code)) => {
            let reason = format!("TikTok code {code}: {message}");
            match code {
                40001 | 40105 => {
                    Classification::all(ItemOutcome::credential(credential_hint(code, reason)), items_sent, None)
                }
                40100 => Classification::all(ItemOutcome::transient(reason, None), items_sent, None),
                40000..=49999 => Classification::refused_batch(reason, items_sent, None),
                50000..=59999 => Classification::all(ItemOutcome::transient(reason, None), items_sent, None),
                _ => Classification::refused_batch(reason, items_sent, None),
            }
        }
        (200, None) => Classification::all(
            ItemOutcome::transient(format!("HTTP 200 without a TikTok result code: {}", excerpt(&response.body)), None),
            items_sent,
            None,
        ),
        _ => by_status(
            response,
            items_sent,
            if message.is_empty() { excerpt(&response.body) } else { message },
            super::classify::retry_after(response, now),
        ),
    };
    classified.request_id = request_id;
    classified
}

fn credential_hint(code: i64, reason: String) -> String {
    match code {
        40001 => format!("{reason} — the access token does not belong to this pixel or lacks admin rights on it; generate a token in Events Manager for this pixel"),
        _ => format!("{reason} — the access token is missing, truncated or revoked; paste the whole token again (no 'Bearer' prefix)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(status: u16, body: &str, n: usize) -> Vec<ItemOutcome> {
        classify(&HttpResponse::new(status, body), n, 0).items
    }

    #[test]
    fn every_answer_class() {
        assert_eq!(outcome(200, r#"{"code":0,"message":"OK","request_id":"r1"}"#, 2), vec![ItemOutcome::Success; 2]);
        assert_eq!(outcome(200, r#"{"code":20001,"message":"partial"}"#, 1), vec![ItemOutcome::Success]);
        assert!(matches!(
            &outcome(200, r#"{"code":40001,"message":"No permission"}"#, 1)[0],
            ItemOutcome::Rejected { credential: true, .. }
        ));
        assert!(matches!(
            &outcome(200, r#"{"code":40105,"message":"bad token"}"#, 1)[0],
            ItemOutcome::Rejected { credential: true, .. }
        ));
        assert!(matches!(
            &outcome(200, r#"{"code":40100,"message":"Too many requests"}"#, 1)[0],
            ItemOutcome::Transient { .. }
        ));
        assert!(matches!(
            &outcome(200, r#"{"code":40002,"message":"invalid"}"#, 1)[0],
            ItemOutcome::Rejected { credential: false, .. }
        ));
        assert_eq!(outcome(200, r#"{"code":40002,"message":"invalid"}"#, 3), vec![ItemOutcome::Resend; 3]);
        assert!(matches!(&outcome(200, r#"{"code":50002,"message":"busy"}"#, 1)[0], ItemOutcome::Transient { .. }));
        assert!(matches!(&outcome(200, "<html>oops</html>", 1)[0], ItemOutcome::Transient { .. }));
        assert!(matches!(&outcome(502, "<html>Bad gateway</html>", 1)[0], ItemOutcome::Transient { .. }));
        assert!(matches!(&outcome(429, "", 1)[0], ItemOutcome::Transient { .. }));
        assert!(matches!(&outcome(401, "", 1)[0], ItemOutcome::Rejected { credential: true, .. }));
        assert!(matches!(&outcome(404, "", 1)[0], ItemOutcome::Rejected { credential: false, .. }));
        let c = classify(&HttpResponse::new(200, r#"{"code":0,"request_id":"abc"}"#), 1, 0);
        assert_eq!(c.request_id.as_deref(), Some("abc"));
    }
}
