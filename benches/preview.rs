//! Preview throughput: canonical events parsed, prepared (identity + hashing), batched into
//! requests and serialised, per network. Run with `cargo bench --bench preview`.

use std::hint::black_box;
use std::time::Instant;

use postback::model::{ConversionEvent, PostbackConfig};
use postback::networks::{build_requests, prepare, preview};
use serde_json::json;

const EVENTS: usize = 50_000;

fn events() -> Vec<serde_json::Value> {
    (0..EVENTS)
        .map(|i| {
            json!({"event_id": format!("evt_{i}"), "name": if i % 3 == 0 { "game_launch" } else { "purchase" },
                   "occurred_at": "2026-11-20T10:15:30.250Z", "player_id": format!("player_{}", i % 997), "consent": "full",
                   "click_ids": {"ttclid": "E.C.P.abc", "twclid": "23opevjt88psuo13lu8d020qkn", "rdt_cid": "rdt-1"},
                   "email": format!("Player{i}@Example.com"), "phone": "+1 (415) 555-0132", "ip": "8.25.197.25",
                   "user_agent": "Mozilla/5.0", "value": "19.99", "currency": "usd"})
        })
        .collect()
}

fn main() {
    let configs = [
        json!({"network": "tiktok", "pixel_code": "CABCD1234EFGH", "trigger_events": ["game_launch", "purchase"]}),
        json!({"network": "reddit", "pixel_id": "a2_abcd1234", "trigger_events": ["game_launch", "purchase"]}),
        json!({"network": "x", "pixel_id": "oka17", "goals": [
            {"id": "l", "event": "game_launch", "event_tag": "tw-oka17-launch"},
            {"id": "p", "event": "purchase", "event_tag": "tw-oka17-ol288"}]}),
    ];
    let docs = events();
    for doc in &configs {
        let config = PostbackConfig::from_json(doc).expect("config");
        // Batched path (the dispatcher's): parse, prepare, group into requests, serialise bodies.
        let start = Instant::now();
        let prepared: Vec<_> = docs
            .iter()
            .filter_map(|d| ConversionEvent::from_json(d).ok())
            .filter_map(|e| prepare(&config, &e, false).ok())
            .collect();
        let requests = build_requests(&config, &prepared);
        let bytes: usize = requests.iter().map(|r| serde_json::to_vec(&r.body).map(|b| b.len()).unwrap_or(0)).sum();
        let batched = start.elapsed();
        // One-by-one path (`postback preview`): a full preview document per event.
        let start = Instant::now();
        for d in docs.iter().take(EVENTS / 5) {
            let event = ConversionEvent::from_json(d).expect("event");
            black_box(serde_json::to_vec(&preview(&config, &event, false, chrono::Utc::now())).map(|v| v.len()).ok());
        }
        let single = start.elapsed();
        println!(
            "{:<6} batched: {:>9.0} events/s ({} events, {} requests, {:.1} MB)   preview: {:>8.0} events/s",
            config.network().as_str(),
            prepared.len() as f64 / batched.as_secs_f64(),
            prepared.len(),
            requests.len(),
            bytes as f64 / 1e6,
            (EVENTS / 5) as f64 / single.as_secs_f64(),
        );
    }
}
