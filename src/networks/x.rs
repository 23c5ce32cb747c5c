//! X Ads Conversions API (`/12/measurement/conversions/{pixel_id}`). Facts: `shared/networks/x.md`.

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::classify::{by_status, excerpt, Classification, HttpResponse, ItemOutcome};
use super::money::Money;
use super::request::{json_headers, Header, HeaderValue};
use super::{endpoint, put};
use crate::identity::Identity;
use crate::model::{formats, ConversionEvent, Goal, XConfig};

pub const MAX_CONVERSIONS: usize = 500;
const DEFAULT_BASE: &str = "https://ads-api.x.com";

/// Active goals with an event tag that count this event name, in the config's order; only the
/// goal `goal_key` when it is not empty.
pub fn mapped_goals<'a>(
    config: &'a XConfig,
    event_name: &'a str,
    goal_key: &'a str,
) -> impl Iterator<Item = &'a Goal> + 'a {
    config.goals.iter().filter(move |g| {
        g.active && g.event == event_name && g.event_tag.is_some() && (goal_key.is_empty() || g.id == goal_key)
    })
}

fn identifiers(id: &Identity) -> Vec<Value> {
    let mut list = Vec::new();
    if let Some(v) = &id.twclid {
        list.push(json!({ "twclid": v }));
    }
    if let Some(v) = &id.email_sha256 {
        list.push(json!({ "hashed_email": v }));
    }
    if let Some(v) = &id.phone_sha256 {
        list.push(json!({ "hashed_phone_number": v }));
    }
    // IP address and user agent travel together in one object.
    let mut device = Map::new();
    put(&mut device, "ip_address", id.ip.clone());
    put(&mut device, "user_agent", id.user_agent.clone());
    if !device.is_empty() {
        list.push(Value::Object(device));
    }
    list
}

/// The mapped goals that count this event, value filters applied.
pub fn counting_goals<'a>(
    config: &'a XConfig,
    event_name: &'a str,
    goal_key: &'a str,
    money: Option<&'a Money>,
) -> impl Iterator<Item = &'a Goal> + 'a {
    mapped_goals(config, event_name, goal_key)
        .filter(move |g| g.value_filter.as_ref().is_none_or(|f| super::money::meets(f, money).is_ok()))
}

/// One conversion per counting goal (or only `goal_key`'s), all sharing the event's conversion
/// id, each with the key of the goal it reports.
pub fn conversions(
    config: &XConfig,
    event: &ConversionEvent,
    goal_key: &str,
    id: &Identity,
    money: Option<&Money>,
    warnings: &mut Vec<String>,
) -> Vec<(Value, String)> {
    let identifiers = identifiers(id);
    let time = event.occurred_at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    counting_goals(config, &event.name, goal_key, money)
        .filter_map(|goal| goal.event_tag.as_deref().map(|tag| (goal, tag)))
        .map(|(goal, tag)| {
            if formats::x_event_tag_pixel(tag).is_some_and(|p| p != config.pixel_id) {
                warnings.push(format!(
                    "goal '{}' uses event tag {tag}, which belongs to another pixel than {}; X will likely refuse it",
                    goal.name, config.pixel_id
                ));
            }
            let mut c = Map::new();
            c.insert("conversion_time".into(), time.clone().into());
            c.insert("event_id".into(), tag.into());
            c.insert("identifiers".into(), identifiers.clone().into());
            c.insert("conversion_id".into(), event.event_id.clone().into());
            if let Some(m) = money {
                c.insert("value".into(), m.two_decimals().into());
                c.insert("price_currency".into(), m.currency.clone().into());
            }
            if !event.items.is_empty() {
                let count: u64 = event.items.iter().map(|i| u64::from(i.quantity)).sum();
                c.insert("number_items".into(), count.into());
                let contents: Vec<Value> = event
                    .items
                    .iter()
                    .map(|i| {
                        let mut content = Map::new();
                        content.insert("content_id".into(), i.id.clone().into());
                        put(&mut content, "content_name", i.name.clone());
                        put(&mut content, "content_price", i.price);
                        content.insert("num_items".into(), i.quantity.into());
                        Value::Object(content)
                    })
                    .collect();
                c.insert("contents".into(), contents.into());
            }
            (Value::Object(c), goal.id.clone())
        })
        .collect()
}

pub fn request(config: &XConfig, items: Vec<Value>) -> (String, Vec<Header>, Value) {
    let path = format!("/12/measurement/conversions/{}", config.pixel_id);
    (
        endpoint(config.base_url.as_deref(), DEFAULT_BASE, &path),
        json_headers("authorization", HeaderValue::XAuthorization),
        json!({ "conversions": items }),
    )
}

/// `conversions[3].event_id` → 3.
fn parameter_index(parameter: &str) -> Option<usize> {
    let rest = parameter.strip_prefix("conversions[")?;
    rest.split(']').next()?.parse().ok()
}

fn error_messages(body: &Value) -> Vec<(Option<usize>, String)> {
    body.get("errors")
        .and_then(Value::as_array)
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    let message = e.get("message").and_then(Value::as_str).unwrap_or("invalid conversion").to_owned();
                    (e.get("parameter").and_then(Value::as_str).and_then(parameter_index), message)
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn classify(response: &HttpResponse, items_sent: usize, now: i64) -> Classification {
    let body = response.json();
    let debug_id = body.as_ref().and_then(|b| b.pointer("/data/debug_id")).and_then(Value::as_str).map(str::to_owned);
    let errors = body.as_ref().map(error_messages).unwrap_or_default();
    let mut classified = match response.status {
        200..=299 => {
            let processed =
                body.as_ref().and_then(|b| b.pointer("/data/conversions_processed")).and_then(Value::as_u64);
            let named: Vec<(usize, &String)> =
                errors.iter().filter_map(|(i, m)| i.filter(|i| *i < items_sent).map(|i| (i, m))).collect();
            match processed {
                Some(n) if (n as usize) < items_sent && !named.is_empty() => {
                    // The answer names the refused conversions: only those fail.
                    let mut items = vec![ItemOutcome::Success; items_sent];
                    for (i, message) in named {
                        items[i] = ItemOutcome::rejected(format!("X refused the conversion: {message}"));
                    }
                    Classification { items, request_id: None }
                }
                Some(n) if (n as usize) < items_sent => {
                    // X does not say which were refused; re-sending the batch item by item is
                    // safe because X deduplicates on conversion_id.
                    let reason = format!(
                        "X processed {n} of {items_sent} conversions (wrong event tag or unmatched identifiers)"
                    );
                    Classification::refused_batch(reason, items_sent, None)
                }
                _ => Classification::all(ItemOutcome::Success, items_sent, None),
            }
        }
        400 if errors.iter().any(|(i, _)| i.is_some_and(|i| i < items_sent)) => {
            let mut items = vec![ItemOutcome::Resend; items_sent];
            for (index, message) in &errors {
                if let Some(slot) = index.and_then(|i| items.get_mut(i)) {
                    *slot = ItemOutcome::rejected(format!("HTTP 400: {message}"));
                }
            }
            Classification { items, request_id: None }
        }
        status => {
            let message = errors.first().map(|(_, m)| m.clone()).unwrap_or_else(|| excerpt(&response.body));
            let detail = match status {
                401 => format!("{message} — the X authorisation was revoked or is invalid; reconnect X"),
                403 => format!("{message} — the connected X user needs Ads API access and the AD_MANAGER or ACCOUNT_ADMIN role on the ad account"),
                _ => message,
            };
            // `x-rate-limit-reset` is when the rate-limit window resets: a wait for a 429 only.
            // Other errors carry it too (X sends it on every answer), and reading it there made
            // a failing X wait for the window instead of backing off.
            let wait = if status == 429 { reset_wait(response, now) } else { None };
            by_status(response, items_sent, detail, wait.or_else(|| super::classify::retry_after(response, now)))
        }
    };
    classified.request_id = debug_id;
    classified
}

/// The wait until `x-rate-limit-reset` (epoch seconds), at least one second and at most
/// [`MAX_WAIT`](super::classify::MAX_WAIT): a hostile or broken header never parks delivery.
fn reset_wait(response: &HttpResponse, now: i64) -> Option<Duration> {
    let reset: i64 = response.header("x-rate-limit-reset")?.trim().parse().ok()?;
    let seconds = u64::try_from(reset.saturating_sub(now)).unwrap_or(0).max(1);
    Some(Duration::from_secs(seconds).min(super::classify::MAX_WAIT))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(response: HttpResponse) -> ItemOutcome {
        classify(&response, 1, 1_000).items.remove(0)
    }

    #[test]
    fn every_answer_class() {
        let ok = r#"{"request":{"params":{"account_id":"a"}},"data":{"conversions_processed":1,"debug_id":"d1"}}"#;
        let c = classify(&HttpResponse::new(200, ok), 1, 0);
        assert_eq!((c.items[0].clone(), c.request_id.as_deref()), (ItemOutcome::Success, Some("d1")));
        let none = r#"{"data":{"conversions_processed":0,"debug_id":"d2"}}"#;
        assert!(matches!(one(HttpResponse::new(200, none)), ItemOutcome::Rejected { credential: false, .. }));
        assert!(
            matches!(one(HttpResponse::new(400, r#"{"errors":[{"code":"INVALID","message":"At least one user identifier must be provided"}]}"#)), ItemOutcome::Rejected { credential: false, reason } if reason.contains("identifier"))
        );
        assert!(matches!(one(HttpResponse::new(401, "{}")), ItemOutcome::Rejected { credential: true, .. }));
        assert!(matches!(one(HttpResponse::new(403, "{}")), ItemOutcome::Rejected { credential: true, .. }));
        assert!(matches!(one(HttpResponse::new(503, "")), ItemOutcome::Transient { .. }));
        let limited = HttpResponse::new(429, "").with_header("x-rate-limit-reset", "1060");
        assert!(matches!(one(limited), ItemOutcome::Transient { retry_after: Some(d), .. } if d.as_secs() == 60));
        // Any other error: the reset time is not a wait (X sends the header on every answer).
        let failing = HttpResponse::new(503, "").with_header("x-rate-limit-reset", "1060");
        assert!(matches!(one(failing), ItemOutcome::Transient { retry_after: None, .. }));
        let asked =
            HttpResponse::new(503, "").with_header("x-rate-limit-reset", "1060").with_header("Retry-After", "5");
        assert!(matches!(one(asked), ItemOutcome::Transient { retry_after: Some(d), .. } if d.as_secs() == 5));
    }

    #[test]
    fn partial_rejections() {
        let some = r#"{"data":{"conversions_processed":2,"debug_id":"d"}}"#;
        assert_eq!(classify(&HttpResponse::new(200, some), 3, 0).items, vec![ItemOutcome::Resend; 3]);
        let named = r#"{"data":{"conversions_processed":1},"errors":[{"message":"Hashed_email is not a valid SHA-256 hash","parameter":"conversions[0].identifiers"}]}"#;
        let c = classify(&HttpResponse::new(200, named), 2, 0);
        assert!(matches!(&c.items[0], ItemOutcome::Rejected { credential: false, .. }));
        assert_eq!(c.items[1], ItemOutcome::Success);
        let listed = r#"{"errors":[{"code":"INVALID","message":"Event_id (tw-a-b) is not a single event tag (SET)","parameter":"conversions[1].event_id"}]}"#;
        let c = classify(&HttpResponse::new(400, listed), 3, 0);
        assert_eq!(c.items[0], ItemOutcome::Resend);
        assert!(matches!(&c.items[1], ItemOutcome::Rejected { reason, .. } if reason.contains("SET")));
    }
}
