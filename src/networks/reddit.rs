//! Reddit Conversions API v3. Facts: `shared/networks/reddit.md`.

use serde_json::{json, Map, Value};

use super::classify::{by_status, excerpt, retry_after, Classification, HttpResponse, ItemOutcome};
use super::money::Money;
use super::request::{json_headers, Header, HeaderValue};
use super::{endpoint, put};
use crate::identity::{sha256_hex, Identity};
use crate::model::{ConversionEvent, RedditConfig};

pub const MAX_EVENTS: usize = 1000;
const DEFAULT_BASE: &str = "https://ads-api.reddit.com";

/// Reddit's standard tracking types, spelled as our canonical (snake_case) event names.
const STANDARD_TYPES: [&str; 8] =
    ["page_visit", "view_content", "search", "add_to_cart", "add_to_wishlist", "purchase", "lead", "sign_up"];

fn tracking_type(name: &str) -> Value {
    if STANDARD_TYPES.contains(&name) {
        json!({ "tracking_type": name.to_ascii_uppercase() })
    } else {
        json!({ "tracking_type": "CUSTOM", "custom_event_name": name })
    }
}

pub fn event_item(event: &ConversionEvent, id: &Identity, money: Option<&Money>) -> Value {
    let mut metadata = Map::new();
    metadata.insert("conversion_id".into(), event.event_id.clone().into());
    if let Some(m) = money {
        metadata.insert("value".into(), m.json_number());
        metadata.insert("currency".into(), m.currency.clone().into());
    }
    if !event.items.is_empty() {
        let count: u64 = event.items.iter().map(|i| u64::from(i.quantity)).sum();
        metadata.insert("item_count".into(), count.into());
        let products: Vec<Value> = event
            .items
            .iter()
            .map(|i| {
                let mut p = Map::new();
                p.insert("id".into(), i.id.clone().into());
                put(&mut p, "name", i.name.clone());
                Value::Object(p)
            })
            .collect();
        metadata.insert("products".into(), products.into());
    }

    let mut user = Map::new();
    put(&mut user, "email", id.email_sha256.clone());
    put(&mut user, "phone_number", id.phone_sha256.clone());
    put(&mut user, "external_id", id.external_id.clone());
    put(&mut user, "ip_address", id.ip.as_deref().map(sha256_hex));
    put(&mut user, "user_agent", id.user_agent.clone());

    let mut item = Map::new();
    item.insert("event_at".into(), event.occurred_at.timestamp_millis().into());
    item.insert("action_source".into(), "WEBSITE".into());
    item.insert("type".into(), tracking_type(&event.name));
    put(&mut item, "click_id", id.rdt_cid.clone());
    item.insert("metadata".into(), Value::Object(metadata));
    if !user.is_empty() {
        item.insert("user".into(), Value::Object(user));
    }
    Value::Object(item)
}

pub fn request(config: &RedditConfig, items: Vec<Value>) -> (String, Vec<Header>, Value) {
    let mut data = Map::new();
    put(&mut data, "test_id", config.test_id.clone());
    data.insert("events".into(), items.into());
    let path = format!("/api/v3/pixels/{}/conversion_events", config.pixel_id);
    (
        endpoint(config.base_url.as_deref(), DEFAULT_BASE, &path),
        json_headers("authorization", HeaderValue::BearerToken),
        json!({ "data": Value::Object(data) }),
    )
}

fn conversion_id(event: &Value) -> Option<&str> {
    event.get("metadata")?.get("conversion_id")?.as_str()
}

/// A 400 lists the invalid events; the others were not processed and go again on their own.
pub fn classify(request_body: &Value, response: &HttpResponse, items_sent: usize, now: i64) -> Classification {
    let body = response.json();
    if response.status == 400 {
        let invalid = body.as_ref().and_then(|b| b.get("invalid_events")).and_then(Value::as_array);
        let sent: Vec<Option<&str>> = request_body
            .pointer("/data/events")
            .and_then(Value::as_array)
            .map(|events| events.iter().map(conversion_id).collect())
            .unwrap_or_default();
        if let Some(invalid) = invalid {
            let mut items = vec![ItemOutcome::Resend; items_sent];
            let mut matched = false;
            for bad in invalid {
                let reason = bad.get("error_message").and_then(Value::as_str).unwrap_or("invalid event");
                if let Some(id) = bad.get("event").and_then(conversion_id) {
                    for (slot, sent_id) in items.iter_mut().zip(&sent) {
                        if *sent_id == Some(id) {
                            *slot = ItemOutcome::rejected(format!("HTTP 400: {reason}"));
                            matched = true;
                        }
                    }
                }
            }
            if matched {
                return Classification { items, request_id: None };
            }
        }
    }
    let message = body
        .as_ref()
        .and_then(|b| b.get("message").or_else(|| b.pointer("/error/message")))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| excerpt(&response.body));
    let detail = match response.status {
        401 => format!("{message} — the conversion access token is wrong or was regenerated; paste the current token from Events Manager"),
        403 => format!("{message} — the token has no access to this pixel; check the pixel id (a2_…) and the token's pixel"),
        _ => message,
    };
    by_status(response, items_sent, detail, retry_after(response, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(ids: &[&str]) -> Value {
        json!({"data": {"events": ids.iter().map(|id| json!({"metadata": {"conversion_id": id}})).collect::<Vec<_>>()}})
    }

    #[test]
    fn every_answer_class() {
        let b = body(&["a"]);
        let one = |status, text: &str| classify(&b, &HttpResponse::new(status, text), 1, 0).items.remove(0);
        assert_eq!(one(200, r#"{"message":"ok"}"#), ItemOutcome::Success);
        assert!(
            matches!(one(400, r#"{"error":{"code":400,"message":"invalid action_source"}}"#), ItemOutcome::Rejected { credential: false, reason } if reason.contains("action_source"))
        );
        assert!(matches!(one(401, "Authorization Required"), ItemOutcome::Rejected { credential: true, .. }));
        assert!(matches!(one(403, "{}"), ItemOutcome::Rejected { credential: true, .. }));
        assert!(matches!(one(500, "{}"), ItemOutcome::Transient { retry_after: None, .. }));
        let limited = classify(&b, &HttpResponse::new(429, "").with_header("Retry-After", "7"), 1, 0);
        assert!(matches!(&limited.items[0], ItemOutcome::Transient { retry_after: Some(d), .. } if d.as_secs() == 7));
    }

    #[test]
    fn a_bad_event_in_a_batch_is_singled_out() {
        let answer = json!({"message": "There were 1 invalid conversion events. None were processed.",
            "invalid_events": [{"error_message": "event_at too old", "event": {"metadata": {"conversion_id": "b"}}}]});
        let c = classify(&body(&["a", "b", "c"]), &HttpResponse::new(400, answer.to_string()), 3, 0);
        assert_eq!(c.items[0], ItemOutcome::Resend);
        assert!(matches!(&c.items[1], ItemOutcome::Rejected { reason, .. } if reason.contains("too old")));
        assert_eq!(c.items[2], ItemOutcome::Resend);
        // Without a list the batch is split and each event tried alone.
        let c = classify(&body(&["a", "b"]), &HttpResponse::new(400, r#"{"message":"bad"}"#), 2, 0);
        assert_eq!(c.items, vec![ItemOutcome::Resend; 2]);
    }
}
