//! The engine's documented rules beyond the public conformance cases: consent, identifiers,
//! money, time formats, batching and field-level errors.

use chrono::Utc;
use postback::model::{ConversionEvent, PostbackConfig};
use postback::networks::{batch_limit, build_requests, prepare, preview, Preview, SkipReason};
use serde_json::{json, Value};

fn event(extra: Value) -> ConversionEvent {
    let mut doc = json!({"event_id": "evt_1", "name": "purchase", "occurred_at": "2026-11-20T10:15:30.250Z",
                         "player_id": "player_42", "consent": "full"});
    for (k, v) in extra.as_object().expect("object") {
        doc[k] = v.clone();
    }
    ConversionEvent::from_json(&doc).expect("valid event")
}

fn config(doc: Value) -> PostbackConfig {
    PostbackConfig::from_json(&doc).expect("valid config")
}

fn tiktok() -> PostbackConfig {
    config(json!({"network": "tiktok", "pixel_code": "CABCD1234EFGH", "trigger_events": ["game_launch", "purchase"]}))
}
fn reddit() -> PostbackConfig {
    config(json!({"network": "reddit", "pixel_id": "a2_abcd1234", "trigger_events": ["game_launch", "purchase"]}))
}
fn x() -> PostbackConfig {
    config(json!({"network": "x", "pixel_id": "oka17", "goals": [
        {"id": "g1", "name": "Purchase", "event": "purchase", "active": true, "event_tag": "tw-oka17-ol288"},
        {"id": "g2", "name": "Off", "event": "purchase", "active": false, "event_tag": "tw-oka17-off01"},
        {"id": "g3", "name": "Unmapped", "event": "purchase", "active": true, "event_tag": null}]}))
}

fn body(config: &PostbackConfig, event: &ConversionEvent) -> Value {
    match preview(config, event, false, Utc::now()) {
        Preview::Forwarded { requests, .. } => requests[0]["body"].clone(),
        Preview::Skipped { skipped } => panic!("skipped: {skipped:?}"),
    }
}

fn skip_reason(config: &PostbackConfig, event: &ConversionEvent) -> Option<SkipReason> {
    prepare(config, event, false).err().map(|s| s.reason)
}

#[test]
fn anonymous_consent_sends_click_ids_only() {
    let e = event(json!({"consent": "anonymous", "click_ids": {"ttclid": "t", "twclid": "w", "rdt_cid": "r"},
                         "email": "a@b.co", "phone": "+11234567890", "ip": "1.2.3.4", "user_agent": "UA"}));
    let t = body(&tiktok(), &e);
    assert_eq!(t["data"][0]["user"], json!({"ttclid": "t"}));
    let r = body(&reddit(), &e);
    assert_eq!(r["data"]["events"][0]["click_id"], "r");
    assert!(r["data"]["events"][0].get("user").is_none());
    let xb = body(&x(), &e);
    assert_eq!(xb["conversions"][0]["identifiers"], json!([{"twclid": "w"}]));
}

#[test]
fn anonymous_consent_without_click_id_is_not_sent() {
    let e = event(json!({"consent": "anonymous", "email": "a@b.co", "phone": "+11234567890"}));
    assert_eq!(skip_reason(&reddit(), &e), Some(SkipReason::NoIdentifier));
    assert_eq!(skip_reason(&x(), &e), Some(SkipReason::NoIdentifier));
}

#[test]
fn full_consent_adds_hashed_identity_and_device() {
    let e = event(
        json!({"click_ids": {"ttclid": "t"}, "phone": "+1 (123) 456-7890", "ip": " 8.25.197.25 ", "user_agent": "UA"}),
    );
    let user = &body(&tiktok(), &e)["data"][0]["user"];
    assert_eq!(user["phone"], "1fa6b8d986d9b9cd01bf36951815158bbde9f520c0567c835dfe34783d0a4231");
    assert_eq!(user["ip"], "8.25.197.25");
    assert_eq!(user["external_id"], postback::identity::sha256_hex("player_42"));
    let reddit_user =
        &body(&reddit(), &event(json!({"email": "a@b.co", "ip": "8.25.197.25"})))["data"]["events"][0]["user"];
    assert_eq!(reddit_user["ip_address"], postback::identity::sha256_hex("8.25.197.25"));
}

#[test]
fn phone_alone_is_enough_for_x_but_not_reddit() {
    let e = event(json!({"phone": "+44 20 7946 0958"}));
    assert_eq!(skip_reason(&reddit(), &e), Some(SkipReason::NoIdentifier));
    assert_eq!(
        body(&x(), &e)["conversions"][0]["identifiers"][0]["hashed_phone_number"],
        postback::identity::sha256_hex("+442079460958")
    );
}

/// Every spelling of a number hashes the same for every network (E.164 with the `+`), and a
/// number without a country code is read in the game's default country, else not sent: X,
/// which can match on it alone, then says why in the skip.
#[test]
fn phone_spellings_hash_alike_and_national_numbers_need_the_default_country() {
    use postback::identity::{sha256_hex, PhoneCountry};
    use postback::networks::preview_for_game;
    let us = PhoneCountry::parse("US");
    let hashed_phone = |config: &PostbackConfig, phone: &str, country| {
        let e = event(json!({"click_ids": {"ttclid": "t", "rdt_cid": "r"}, "phone": phone}));
        match preview_for_game(config, &e, false, country, Utc::now()) {
            Preview::Forwarded { requests, .. } => {
                let b = &requests[0]["body"];
                let found = match config.network() {
                    postback::model::Network::TikTok => b["data"][0]["user"]["phone"].clone(),
                    postback::model::Network::Reddit => b["data"]["events"][0]["user"]["phone_number"].clone(),
                    postback::model::Network::X => b["conversions"][0]["identifiers"][0]["hashed_phone_number"].clone(),
                };
                found.as_str().map(str::to_owned)
            }
            Preview::Skipped { skipped } => panic!("{phone}: skipped {skipped:?}"),
        }
    };
    let segment = "910a625c4ba147b544e6bd2f267e130ae14c591b6ba9c25cb8573322dedbebd0";
    let sf = sha256_hex("+16505551212");
    for config in [tiktok(), reddit(), x()] {
        assert_eq!(hashed_phone(&config, "+1555-555-5555", None).as_deref(), Some(segment));
        for phone in ["+1650-555-1212", "+1 (650)555-1212", "0016505551212", "+1 650 555 1212 ext. 450"] {
            assert_eq!(hashed_phone(&config, phone, None).as_deref(), Some(sf.as_str()), "{phone}");
        }
        assert_eq!(hashed_phone(&config, "(650) 555-1212 x450", us).as_deref(), Some(sf.as_str()));
    }
    // X with a click id: the national number without a default country is dropped, with the
    // documented warning.
    let e = event(json!({"click_ids": {"twclid": "w"}, "phone": "(650) 555-1212 x450"}));
    match preview(&x(), &e, false, Utc::now()) {
        Preview::Forwarded { requests, warnings } => {
            assert_eq!(requests[0]["body"]["conversions"][0]["identifiers"], json!([{"twclid": "w"}]));
            assert!(
                warnings
                    .iter()
                    .any(|w| w
                        .starts_with("phone: no country code (+ or 00) and the game has no default country; not sent")),
                "{warnings:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    // X on the phone alone: not sent, and the skip says why.
    let e = event(json!({"phone": "(650) 555-1212"}));
    let skipped = prepare(&x(), &e, false).expect_err("no country");
    assert_eq!(skipped.reason, SkipReason::NoIdentifier);
    assert!(skipped.message.contains("the game has no default country"), "{}", skipped.message);
    let sent = postback::networks::prepare_for_game(&x(), &e, false, us).expect("read in the US");
    assert_eq!(sent.items[0]["identifiers"][0]["hashed_phone_number"], sf.as_str());
}

#[test]
fn unreadable_phone_is_dropped_with_a_warning_not_the_event() {
    let e = event(json!({"click_ids": {"twclid": "w"}, "phone": "not a phone"}));
    match preview(&x(), &e, false, Utc::now()) {
        Preview::Forwarded { requests, warnings } => {
            assert_eq!(requests[0]["body"]["conversions"][0]["identifiers"], json!([{"twclid": "w"}]));
            assert!(warnings.iter().any(|w| w.contains("phone")), "{warnings:?}");
            assert!(!warnings.iter().any(|w| w.contains("not a phone")), "warnings must not echo PII");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn prehashed_email_is_sent_lower_cased() {
    let hash = "5806DC6B2F04FB728708A8F7B81C14EDCD4FBA36F77914CF0C9368D9A3A25F76";
    let e = event(json!({"email_sha256": hash}));
    assert_eq!(body(&reddit(), &e)["data"]["events"][0]["user"]["email"], hash.to_ascii_lowercase());
    let bad = json!({"event_id": "e", "name": "purchase", "occurred_at": "2026-11-20T10:15:30Z", "player_id": "p",
                     "consent": "full", "email_sha256": "abc"});
    assert_eq!(ConversionEvent::from_json(&bad).unwrap_err().field, "email_sha256");
}

#[test]
fn money_forwarded_only_together_and_in_each_networks_form() {
    let e = event(json!({"click_ids": {"ttclid": "t", "twclid": "w", "rdt_cid": "r"}, "value": 20, "currency": "usd"}));
    assert_eq!(body(&x(), &e)["conversions"][0]["value"], "20.00");
    assert_eq!(body(&x(), &e)["conversions"][0]["price_currency"], "USD");
    assert_eq!(body(&tiktok(), &e)["data"][0]["properties"]["value"].as_f64(), Some(20.0));
    assert_eq!(body(&reddit(), &e)["data"]["events"][0]["metadata"]["value"].as_f64(), Some(20.0));
    let no_currency = event(json!({"click_ids": {"twclid": "w"}, "value": "5"}));
    assert!(body(&x(), &no_currency)["conversions"][0].get("value").is_none());
    let bad_currency = event(json!({"click_ids": {"ttclid": "t"}, "value": "5", "currency": "BTC"}));
    assert!(body(&tiktok(), &bad_currency)["data"][0].get("properties").is_none());
}

#[test]
fn times_in_each_networks_format() {
    let e = event(
        json!({"occurred_at": "2026-11-20T12:15:30.250123+02:00", "click_ids": {"ttclid": "t", "twclid": "w", "rdt_cid": "r"}}),
    );
    assert_eq!(body(&x(), &e)["conversions"][0]["conversion_time"], "2026-11-20T10:15:30.250Z");
    assert_eq!(body(&tiktok(), &e)["data"][0]["event_time"], 1795169730);
    assert_eq!(body(&reddit(), &e)["data"]["events"][0]["event_at"], 1795169730250_i64);
}

#[test]
fn x_sends_only_active_mapped_goals() {
    let e = event(json!({"click_ids": {"twclid": "w"}}));
    let conversions = body(&x(), &e)["conversions"].as_array().cloned().unwrap_or_default();
    assert_eq!(conversions.len(), 1);
    assert_eq!(conversions[0]["event_id"], "tw-oka17-ol288");
    let launch = event(json!({"name": "game_launch", "click_ids": {"twclid": "w"}}));
    assert_eq!(skip_reason(&x(), &launch), Some(SkipReason::NoMappedGoal));
}

#[test]
fn skip_reasons_and_their_order() {
    let untriggered = event(json!({"name": "level_up", "consent": "none"}));
    assert_eq!(skip_reason(&tiktok(), &untriggered), Some(SkipReason::EventNotTriggered));
    let no_consent = event(json!({"consent": "none", "click_ids": {"ttclid": "t"}}));
    assert_eq!(skip_reason(&tiktok(), &no_consent), Some(SkipReason::ConsentNone));
    let e = event(json!({"click_ids": {"ttclid": "t"}}));
    assert_eq!(prepare(&tiktok(), &e, true).unwrap_err().reason, SkipReason::PlayerErased);
}

#[test]
fn reddit_custom_and_standard_event_types() {
    let e = event(json!({"name": "game_launch", "click_ids": {"rdt_cid": "r"}}));
    assert_eq!(
        body(&reddit(), &e)["data"]["events"][0]["type"],
        json!({"tracking_type": "CUSTOM", "custom_event_name": "game_launch"})
    );
}

fn prepared_many(config: &PostbackConfig, n: usize) -> Vec<postback::networks::PreparedEvent> {
    (0..n)
        .map(|i| {
            let e = event(
                json!({"event_id": format!("e{i}"), "click_ids": {"ttclid": "t", "twclid": "w", "rdt_cid": "r"}}),
            );
            prepare(config, &e, false).expect("prepared")
        })
        .collect()
}

#[test]
fn batching_fills_requests_up_to_each_limit() {
    for config in [tiktok(), reddit(), x()] {
        let limit = batch_limit(config.network());
        for (n, want_requests) in [(1, 1), (limit, 1), (limit + 1, 2), (2 * limit + 1, 3)] {
            let requests = build_requests(&config, &prepared_many(&config, n));
            assert_eq!(requests.len(), want_requests, "{:?} with {n} events", config.network());
            let carried: usize = requests.iter().map(|r| r.item_events.len()).sum();
            assert_eq!(carried, n);
            assert!(requests.iter().all(|r| r.item_events.len() <= limit));
        }
    }
    assert_eq!((batch_limit(postback::model::Network::TikTok), batch_limit(postback::model::Network::X)), (1000, 500));
}

#[test]
fn x_keeps_an_events_conversions_in_one_request() {
    let two_goals = config(json!({"network": "x", "pixel_id": "oka17", "goals": [
        {"id": "a", "event": "purchase", "event_tag": "tw-oka17-aaaa1"},
        {"id": "b", "event": "purchase", "event_tag": "tw-oka17-bbbb2"}]}));
    let requests = build_requests(&two_goals, &prepared_many(&two_goals, 251));
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].item_events.len(), 500);
    assert_eq!(requests[0].item_events[498..], [249, 249]);
}

#[test]
fn a_validation_request_carries_one_event() {
    let with_code = config(
        json!({"network": "tiktok", "pixel_code": "CABCD1234EFGH", "trigger_events": ["purchase"], "test_event_code": "TEST1"}),
    );
    let requests = build_requests(&with_code, &prepared_many(&with_code, 3));
    assert_eq!(requests.len(), 3);
    assert!(requests.iter().all(|r| r.body["test_event_code"] == "TEST1"));
}

#[test]
fn event_errors_name_the_field() {
    let base = json!({"event_id": "e", "name": "purchase", "occurred_at": "2026-11-20T10:15:30Z", "player_id": "p", "consent": "full"});
    let cases = [
        ("event_id", Value::Null),
        ("occurred_at", json!("yesterday")),
        ("consent", json!("maybe")),
        ("player_id", json!("  ")),
        ("click_ids", json!("abc")),
        ("value", json!({"amount": 1})),
    ];
    for (field, bad) in cases {
        let mut doc = base.clone();
        doc[field] = bad;
        let err = ConversionEvent::from_json(&doc).unwrap_err();
        assert_eq!(err.field, field, "{err}");
    }
    let mut doc = base.clone();
    doc["items"] = json!([{"id": "a", "quantity": 0}]);
    assert_eq!(ConversionEvent::from_json(&doc).unwrap_err().field, "items.0.quantity");
}

#[test]
fn reddit_warns_about_events_outside_its_window_without_changing_the_request() {
    let old = event(json!({"occurred_at": "2020-01-01T00:00:00Z", "click_ids": {"rdt_cid": "r"}}));
    match preview(&reddit(), &old, false, Utc::now()) {
        Preview::Forwarded { requests, warnings } => {
            assert_eq!(requests[0]["body"]["data"]["events"][0]["event_at"], 1577836800000_i64);
            assert!(warnings.iter().any(|w| w.contains("7 days")));
        }
        other => panic!("{other:?}"),
    }
}

/// A goal's value filter "value ≥ N in currency C", table-driven through preview: events in
/// another currency, without a value, or below the minimum do not count for that goal.
#[test]
fn goal_value_filters() {
    let x = config(json!({"network": "x", "pixel_id": "oka17", "goals": [
        {"id": "whale", "name": "Whale purchase", "event": "purchase", "event_tag": "tw-oka17-whale",
         "min_value": "10", "currency": "usd"},
        {"id": "any", "name": "Any purchase", "event": "purchase", "event_tag": "tw-oka17-any01", "active": false}]}));
    let cases: [(Value, Option<&str>); 7] = [
        (json!({"value": "10.00", "currency": "USD"}), None),
        (json!({"value": 25, "currency": "usd"}), None),
        (json!({"value": "9.99", "currency": "USD"}), Some("below the goal's 10 USD")),
        (json!({"value": "50", "currency": "EUR"}), Some("value is in EUR")),
        (json!({}), Some("no value")),
        (json!({"value": "50"}), Some("no value")),
        (json!({"value": "abc", "currency": "USD"}), Some("no value")),
    ];
    for (money, skipped) in cases {
        let mut extra = json!({"click_ids": {"twclid": "w"}});
        for (k, v) in money.as_object().unwrap() {
            extra[k] = v.clone();
        }
        let e = event(extra);
        match (preview(&x, &e, false, Utc::now()), skipped) {
            (Preview::Forwarded { requests, .. }, None) => {
                let conversions = requests[0]["body"]["conversions"].as_array().unwrap().clone();
                assert_eq!(conversions.len(), 1, "{money}: the inactive goal never sends");
                assert_eq!(conversions[0]["event_id"], "tw-oka17-whale");
            }
            (Preview::Skipped { skipped: skip }, Some(words)) => {
                assert_eq!(skip.reason, SkipReason::EventNotTriggered, "{money}");
                assert!(
                    skip.message.contains(words) && skip.message.contains("Whale purchase"),
                    "{money}: {}",
                    skip.message
                );
            }
            (other, want) => panic!("{money}: {other:?}, wanted skip {want:?}"),
        }
    }
}

#[test]
fn goal_rules_and_filters_are_checked_in_config_files() {
    let bad = [
        (json!({"id": "g", "event": "purchase", "rule": "sometimes"}), "goals.0.rule"),
        (json!({"id": "g", "event": "purchase", "min_value": "10"}), "goals.0.currency"),
        (json!({"id": "g", "event": "purchase", "currency": "USD"}), "goals.0.min_value"),
        (json!({"id": "g", "event": "purchase", "min_value": "ten", "currency": "USD"}), "goals.0.min_value"),
        (json!({"id": "g", "event": "purchase", "min_value": "10", "currency": "ZZZ"}), "goals.0.currency"),
    ];
    for (goal, field) in bad {
        let doc = json!({"network": "x", "pixel_id": "oka17", "goals": [goal]});
        assert_eq!(PostbackConfig::from_json(&doc).unwrap_err().field, field, "{doc}");
    }
    let ok = json!({"network": "x", "pixel_id": "oka17", "goals": [{"id": "g", "event": "purchase", "rule": "once_per_player"}]});
    let PostbackConfig::X(x) = PostbackConfig::from_json(&ok).unwrap() else { panic!() };
    assert_eq!(x.goals[0].rule, postback::model::TriggerRule::OncePerPlayer);
}
