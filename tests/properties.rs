//! No input panics the parser or the builders: arbitrary strings, huge numbers, odd unicode.

use chrono::Utc;
use postback::delivery::retry::RetryPolicy;
use postback::model::Network;
use postback::model::{ConversionEvent, PostbackConfig};
use postback::networks::{
    admit, build_requests, classify, prepare, prepare_for_game, preview, HttpResponse, ItemOutcome, Matchability,
    MAX_WAIT,
};
use proptest::prelude::*;
use serde_json::{json, Value};

fn configs() -> Vec<PostbackConfig> {
    [
        json!({"network": "tiktok", "pixel_code": "CABCD1234EFGH", "trigger_events": ["purchase", "game_launch"]}),
        json!({"network": "reddit", "pixel_id": "a2_abcd1234", "trigger_events": ["purchase", "game_launch"]}),
        json!({"network": "x", "pixel_id": "oka17", "goals": [{"id": "g", "event": "purchase", "event_tag": "tw-oka17-ol288"}]}),
    ]
    .iter()
    .map(|d| PostbackConfig::from_json(d).expect("config"))
    .collect()
}

fn json_scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<String>().prop_map(Value::from),
        "\\PC{0,40}".prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null)),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        Just(Value::Null),
        Just(json!("9".repeat(400))),
        Just(json!("1e400")),
        Just(json!(["a"])),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn arbitrary_field_values_never_panic(
        field in prop::sample::select(vec!["event_id", "name", "occurred_at", "player_id", "consent", "email", "email_sha256",
            "phone", "phone_sha256", "ip", "user_agent", "value", "currency", "page_url", "click_ids", "items"]),
        value in json_scalar(),
        phone in "\\PC{0,30}",
        email in "\\PC{0,30}",
    ) {
        let mut doc = json!({"event_id": "e", "name": "purchase", "occurred_at": "2026-11-20T10:15:30Z", "player_id": "p",
            "consent": "full", "click_ids": {"ttclid": "t", "twclid": "w", "rdt_cid": "r"}, "phone": phone, "email": email,
            "value": "1", "currency": "USD"});
        doc[field] = value;
        if let Ok(event) = ConversionEvent::from_json(&doc) {
            for config in configs() {
                let _ = preview(&config, &event, false, Utc::now());
                if let Ok(p) = prepare(&config, &event, false) {
                    let requests = build_requests(&config, &[p]);
                    prop_assert_eq!(requests.len(), 1);
                    prop_assert!(serde_json::to_string(&requests[0].body).is_ok());
                }
            }
        }
    }

    /// Accepting an event (admit, once per event for all configs) decides exactly what sending
    /// it (prepare) decides: the same goals, or the same skip (reason and message), with the
    /// game's default country for phone numbers or without one.
    #[test]
    fn admit_agrees_with_prepare(
        consent in prop::sample::select(vec!["none", "anonymous", "full"]),
        name in prop::sample::select(vec!["purchase", "game_launch", "level_up"]),
        clicks in prop::collection::vec(prop::sample::select(vec!["ttclid", "twclid", "rdt_cid"]), 0..3),
        email in prop::option::of(prop::sample::select(vec!["a@example.com", " A.B+x@Gmail.com ", "not-an-email", ""])),
        phone in prop::option::of(prop::sample::select(vec!["+1 555 010 0000", "12", "+44 20 7946 0958", "phone",
            "+1650-555-1212", "(650) 555-1212 x450", "020 7946 0958", "555-1212"])),
        country in prop::option::of(prop::sample::select(vec!["US", "GB"])),
        hashed in prop::collection::vec(prop::sample::select(vec!["email_sha256", "phone_sha256"]), 0..2),
        value in prop::option::of(prop::sample::select(vec!["0.99", "100", "-1", "abc"])),
        erased in any::<bool>(),
        device in 0u8..4,
    ) {
        let mut doc = json!({"event_id": "e", "name": name, "occurred_at": "2026-11-20T10:15:30Z", "player_id": "p",
            "consent": consent, "currency": "USD"});
        for c in &clicks {
            doc["click_ids"][*c] = json!("id");
        }
        if let Some(e) = email { doc["email"] = json!(e); }
        if let Some(p) = phone { doc["phone"] = json!(p); }
        if let Some(v) = value { doc["value"] = json!(v); }
        for h in &hashed {
            doc[*h] = json!("a".repeat(64));
        }
        if device & 1 != 0 { doc["ip"] = json!("203.0.113.7"); }
        if device & 2 != 0 { doc["user_agent"] = json!("Game/1.0"); }
        let event = ConversionEvent::from_json(&doc).expect("event");
        let country = country.and_then(postback::identity::PhoneCountry::parse);
        let mut matchability = Matchability::new(country);
        for config in configs() {
            let admitted = admit(&config, &event, erased, &mut matchability);
            let prepared = prepare_for_game(&config, &event, erased, country);
            prop_assert_eq!(&admitted, &prepared.as_ref().map(|p| p.goals.clone()).map_err(Clone::clone));
            // The match keys counted at enqueue are the ones each item of the request carries.
            if let Ok(prepared) = prepared {
                let counted = matchability.keys(&config, &event);
                for item in &prepared.items {
                    prop_assert_eq!(keys_in(item), counted, "{}", item);
                }
            }
        }
    }

    #[test]
    fn arbitrary_config_text_never_panics(text in "\\PC{0,200}") {
        let _ = PostbackConfig::from_json_str(&text);
        let _ = ConversionEvent::from_json_str(&text);
    }

    #[test]
    fn arbitrary_ids_in_configs_never_panic(pixel in "\\PC{0,30}", tag in "\\PC{0,30}", network in "tiktok|reddit|x") {
        let doc = json!({"network": network, "pixel_code": pixel, "pixel_id": pixel, "trigger_events": [tag.clone()],
            "goals": [{"id": "g", "event": "purchase", "event_tag": tag}]});
        let _ = PostbackConfig::from_json(&doc);
    }
}

fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        Just("18446744073709551615".to_owned()),
        Just("Fri, 31 Dec 9999 23:59:59 GMT".to_owned()),
        Just("Thu, 01 Jan 1970 00:00:00 GMT".to_owned()),
        "\\PC{0,30}",
    ]
}

fn body() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,200}",
        any::<i64>().prop_map(|code| json!({"code": code, "message": "m", "request_id": "r"}).to_string()),
        (any::<u64>(), any::<u64>()).prop_map(|(n, i)| json!({"data": {"conversions_processed": n},
            "errors": [{"message": "bad", "parameter": format!("conversions[{i}].event_id")}]})
        .to_string()),
        any::<String>().prop_map(|id| {
            json!({"invalid_events": [{"error_message": "x", "event": {"metadata": {"conversion_id": id}}}]})
                .to_string()
        }),
        Just("{\"errors\": [{\"parameter\": \"conversions[99999999999999999999].x\"}]}".to_owned()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    /// Whatever a network (or something pretending to be one) answers, no classifier and no
    /// retry computation panics, and no wait exceeds the maximum.
    #[test]
    fn arbitrary_answers_never_panic(
        status in 0u16..1000,
        retry_after in header_value(),
        reset in header_value(),
        body in body(),
        items in 1usize..5,
        now in any::<i64>(),
        attempt in any::<u32>(),
        jitter in any::<f64>(),
    ) {
        let event = ConversionEvent::from_json(&json!({"event_id": "e", "name": "purchase",
            "occurred_at": "2026-11-20T10:15:30Z", "player_id": "p", "consent": "full",
            "click_ids": {"ttclid": "t", "twclid": "w", "rdt_cid": "r"}})).expect("event");
        let response = HttpResponse::new(status, body)
            .with_header("Retry-After", &retry_after)
            .with_header("x-rate-limit-reset", &reset);
        for (network, config) in Network::ALL.into_iter().zip(configs()) {
            let prepared: Vec<_> = (0..items).map(|_| prepare(&config, &event, false).expect("prepared")).collect();
            for request in build_requests(&config, &prepared) {
                let c = classify(network, &request, &response, now);
                prop_assert_eq!(c.items.len(), request.item_events.len());
                for outcome in &c.items {
                    if let ItemOutcome::Transient { retry_after: Some(wait), .. } = outcome {
                        prop_assert!(*wait <= MAX_WAIT);
                        let policy = RetryPolicy::default();
                        prop_assert!(policy.delay(attempt, Some(*wait), jitter) <= MAX_WAIT + std::time::Duration::from_secs(1));
                    }
                }
            }
        }
        let policy = RetryPolicy::default();
        let _ = policy.delay(attempt, None, jitter);
        let _ = policy.offline_delay(attempt, jitter);
        let _ = policy.exhausted(now, now.wrapping_mul(3));
    }
}

/// The match keys a request item carries, read from its field names (all three networks').
fn keys_in(item: &Value) -> postback::quality::KeySet {
    use postback::quality::{KeySet, MatchKey};
    fn names(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    out.push(k.clone());
                    names(v, out);
                }
            }
            Value::Array(list) => list.iter().for_each(|v| names(v, out)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    names(item, &mut found);
    let has = |candidates: &[&str]| found.iter().any(|n| candidates.contains(&n.as_str()));
    let mut keys = KeySet::default();
    for (key, present) in [
        (MatchKey::ClickId, has(&["ttclid", "click_id", "twclid"])),
        (MatchKey::Email, has(&["email", "hashed_email"])),
        (MatchKey::Phone, has(&["phone", "phone_number", "hashed_phone_number"])),
        (MatchKey::ExternalId, has(&["external_id"])),
        (MatchKey::IpAndUserAgent, has(&["ip", "ip_address"]) && has(&["user_agent"])),
    ] {
        if present {
            keys.insert(key);
        }
    }
    keys
}
