//! The watch side's queries on a real SQLite file after real deliveries to the sandbox:
//! filters and keyset pages, chart buckets, traffic (skipped per reason), a row's drill-down
//! with credentials redacted, erasure inside stored requests, replay, export, diagnostics.

#[macro_use]
mod support;
use support::{events, fast_options, rig_on, x_goals};

use std::sync::atomic::AtomicBool;

use postback::delivery::now_ms;
use postback::model::{DeliveryStatus, Goal, LogFilter, Network};
use postback::sandbox::Faults;
use postback::watch::diagnose::Level;
use postback::watch::export::{export, ExportError, ExportFormat};
use postback::watch::Watch;
use serde_json::json;

const HOUR: i64 = 3_600_000;

on_both_engines_rig! {
    async fn filters_narrow_the_pages_and_the_chart_adds_up(engine: Engine) {
        let rig = rig_on(engine, "sandbox", x_goals()).await;
        rig.import(&events(3, "game_launch", "p1")).await;
        rig.import(&events(2, "purchase", "p2")).await;
        rig.dispatch(fast_options()).await;
        let store = &rig.store;
        let all = LogFilter { game_id: Some(rig.game_id), limit: 100, ..LogFilter::default() };
        let rows = store.log_page(&all).await.unwrap();
        // 5 events × TikTok and Reddit, X: 3 launches delivered, 2 purchases refused (another pixel's tag).
        assert_eq!(rows.len(), 15);
        let failed = store.log_page(&LogFilter { statuses: vec![DeliveryStatus::Failed], ..all.clone() }).await.unwrap();
        assert_eq!(failed.len(), 2);
        assert!(failed.iter().all(|e| e.network == Network::X && e.goal_key == "buy"));
        let one = store.log_page(&LogFilter { event_id: Some("purchase-p2-1".into()), ..all.clone() }).await.unwrap();
        assert_eq!(one.len(), 3, "one event, three networks");
        let reddit = store.log_page(&LogFilter { config_id: Some(rig.config_ids[1]), ..all.clone() }).await.unwrap();
        assert_eq!(reddit.len(), 5);
        let future = store.log_page(&LogFilter { since_ms: Some(now_ms() + HOUR), ..all.clone() }).await.unwrap();
        assert!(future.is_empty());
        let other_game = store.log_page(&LogFilter { game_id: Some(rig.game_id + 1), ..all.clone() }).await.unwrap();
        assert!(other_game.is_empty());
        // Keyset pages of 4 see every row once, newest first.
        let mut page = LogFilter { limit: 4, ..all.clone() };
        let mut seen = Vec::new();
        loop {
            let rows = store.log_page(&page).await.unwrap();
            let Some(last) = rows.last() else { break };
            page.before = Some((last.at, last.id));
            seen.extend(rows.into_iter().map(|e| e.id));
        }
        assert_eq!(seen.len(), 15);
        assert_eq!(store.log_count(&all).await.unwrap(), 15);

        let summary =
            store.log_summary(&LogFilter { since_ms: Some(now_ms() - 24 * HOUR), ..all.clone() }, now_ms()).await.unwrap();
        assert_eq!((summary.totals.success, summary.totals.failed), (13, 2));
        assert_eq!(summary.bucket_ms, HOUR);
        let bars: u64 = summary.buckets.iter().map(|b| b.success + b.failed + b.retried + b.waiting).sum();
        assert_eq!(bars, 15);
        assert!((summary.success_rate.unwrap() - 13.0 / 15.0).abs() < 1e-9);
        let month =
            store.log_summary(&LogFilter { since_ms: Some(now_ms() - 30 * 24 * HOUR), ..all }, now_ms()).await.unwrap();
        assert_eq!(month.bucket_ms, 24 * HOUR, "per day over 30 days");
        assert!(month.buckets.len() <= 31);
    }
}

on_both_engines_rig! {
    async fn skipped_events_are_counted_per_reason_and_hour_without_who(engine: Engine) {
        let rig = rig_on(engine, "sandbox", x_goals()).await;
        let line = |id: &str, consent: &str, clicks: serde_json::Value| {
            json!({"event_id": id, "name": "purchase", "occurred_at": chrono::Utc::now().to_rfc3339(), "player_id": "secret-player",
                   "consent": consent, "click_ids": clicks})
            .to_string()
        };
        let text = [
            line("a", "full", json!({"ttclid": "t"})),
            line("b", "none", json!({"ttclid": "t"})),
            line("c", "anonymous", json!({})),
        ]
        .join("\n");
        rig.import(&text).await;
        let traffic = rig.store.traffic(rig.game_id, now_ms() - HOUR, now_ms() + HOUR).await.unwrap();
        let count = |config: i64, kind: &str| {
            traffic.iter().filter(|t| t.config_id == config && t.kind == kind).map(|t| t.count).sum::<u64>()
        };
        assert_eq!(count(0, "arrived"), 3);
        assert_eq!(count(rig.config_ids[0], "queued"), 1);
        assert_eq!(count(rig.config_ids[0], "skipped:consent_none"), 1);
        assert_eq!(count(rig.config_ids[0], "skipped:no_identifier"), 1);
        assert_eq!(count(rig.config_ids[1], "skipped:no_identifier"), 2, "Reddit: no rdt_cid, no email");
        assert!(traffic.iter().all(|t| t.source == "import"));
        assert!(!format!("{traffic:?}").contains("secret-player"));
    }
}

on_both_engines_rig! {
    async fn a_rows_detail_shows_the_request_with_credentials_redacted_and_the_answer(engine: Engine) {
        let rig = rig_on(engine, "sandbox", x_goals()).await;
        rig.import(&events(3, "purchase", "p1")).await;
        rig.dispatch(fast_options()).await;
        let watch = Watch::new(rig.store.clone());
        // A refused X conversion: its request, the 400 answer, what to do.
        let failed = rig.log(2, Some(DeliveryStatus::Failed)).await;
        let detail = watch.detail(failed[0].id).await.unwrap();
        let request = detail.request.as_ref().expect("the request was stored");
        assert_eq!(request.headers["authorization"], "<redacted>");
        assert!(request.url.ends_with("/12/measurement/conversions/sbx01"));
        assert_eq!(request.body["conversions"].as_array().unwrap().len(), 3, "the batch's body, stored once");
        let answer = detail.answer.as_ref().expect("the answer");
        assert_eq!(answer.status, Some(400));
        assert!(answer.body.as_deref().unwrap().contains("single event tag"));
        assert_eq!(detail.explanation.field.as_deref(), Some("event_id"));
        assert!(detail.explanation.action.as_deref().unwrap().contains("Single Event Tag"));
        assert_eq!(detail.batch.len(), 3);
        let curl = detail.curl.unwrap();
        assert!(curl.contains("authorization: <redacted>") && !curl.contains("sandbox-x-token"), "{curl}");
        // A TikTok success: its body is TikTok's, with the event at its item.
        let ok = rig.log(0, Some(DeliveryStatus::Success)).await;
        let detail = watch.detail(ok[0].id).await.unwrap();
        assert_eq!(detail.request.as_ref().unwrap().headers["access-token"], "<redacted>");
        let item = detail.item_index.unwrap() as usize;
        assert_eq!(detail.request.unwrap().body["data"][item]["event_id"], ok[0].event_id);
        // No file of the SQLite database holds a token (PostgreSQL's dump: the team workspace's test).
        rig.store.close().await;
        for file in std::fs::read_dir(rig.dir.path()).unwrap() {
            // The WAL and shm files may vanish while the last connection closes.
            let Ok(bytes) = std::fs::read(file.unwrap().path()) else { continue };
            for token in ["sandbox-tiktok-token", "sandbox-reddit-token", "sandbox-x-token"] {
                assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()), "{token} stored");
            }
        }
    }
}

on_both_engines_rig! {
    async fn an_erasure_removes_the_players_items_from_stored_requests(engine: Engine) {
        let rig = rig_on(engine, "sandbox", vec![Goal::mapped("launch", "Launch", "game_launch", "tw-sbx01-launch")]).await;
        let text = [events(1, "game_launch", "alice"), events(1, "game_launch", "bob")].join("\n");
        rig.import(&text).await;
        rig.dispatch(fast_options()).await;
        let bob_row = rig.log(0, None).await.into_iter().find(|e| e.event_id.contains("bob")).unwrap();
        let watch = Watch::new(rig.store.clone());
        let before = watch.detail(bob_row.id).await.unwrap().request.unwrap().body;
        assert!(before.to_string().contains("game_launch-alice-0"));
        rig.store.erase_player("alice", now_ms()).await.unwrap();
        let after = watch.detail(bob_row.id).await.unwrap().request.unwrap().body;
        assert!(!after.to_string().contains("game_launch-alice-0"), "{after}");
        assert!(after.to_string().contains("game_launch-bob-0"), "the other players stay");
        assert!(after.to_string().contains("forgotten"));
    }
}

on_both_engines_rig! {
    async fn replay_from_the_log_and_export_what_a_filter_shows(engine: Engine) {
        let rig = rig_on(engine, "sandbox", x_goals()).await;
        rig.import(&events(2, "purchase", "p1")).await;
        rig.dispatch(fast_options()).await;
        let failed = LogFilter {
            game_id: Some(rig.game_id),
            statuses: vec![DeliveryStatus::Failed],
            limit: 100,
            ..LogFilter::default()
        };
        assert_eq!(rig.store.replay_filtered(&failed, now_ms()).await.unwrap(), 2);
        assert_eq!(rig.store.replay_filtered(&failed, now_ms()).await.unwrap(), 0, "already queued again");
        let delivered = rig.log(0, Some(DeliveryStatus::Success)).await;
        assert_eq!(
            rig.store.replay_log_rows(&[delivered[0].id], now_ms()).await.unwrap(),
            0,
            "a delivered row stays delivered"
        );

        let everything = LogFilter { game_id: Some(rig.game_id), limit: 100, ..LogFilter::default() };
        let mut csv = Vec::new();
        let mut seen = Vec::new();
        let n =
            export(&rig.store, &everything, ExportFormat::Csv, &mut csv, |w, t| seen.push((w, t)), &AtomicBool::new(false))
                .await
                .unwrap();
        assert_eq!(n, 6);
        let text = String::from_utf8(csv).unwrap();
        assert_eq!(text.lines().count(), 7, "header + rows");
        assert!(text.lines().next().unwrap().starts_with("time_utc,config_id,network,event,event_id"));
        assert_eq!(seen.last(), Some(&(6, 6)));
        let mut ndjson = Vec::new();
        export(&rig.store, &failed, ExportFormat::Ndjson, &mut ndjson, |_, _| {}, &AtomicBool::new(false)).await.unwrap();
        let rows: Vec<serde_json::Value> =
            String::from_utf8(ndjson).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(rows.len(), 2);
        assert!(rows.iter().all(|r| r["status"] == "failed"));
        let cancelled =
            export(&rig.store, &everything, ExportFormat::Csv, &mut Vec::new(), |_, _| {}, &AtomicBool::new(true)).await;
        assert!(matches!(cancelled, Err(ExportError::Cancelled)));
    }
}

on_both_engines_rig! {
    async fn diagnostics_say_what_is_missing_and_why_nothing_was_sent(engine: Engine) {
        let rig = rig_on(engine, "sandbox", vec![]).await;
        rig.faults(Faults::default());
        let anonymous = json!({"event_id": "a1", "name": "purchase", "occurred_at": chrono::Utc::now().to_rfc3339(),
            "player_id": "p", "consent": "anonymous", "click_ids": {}})
        .to_string();
        rig.import(&anonymous).await;
        let watch = Watch::new(rig.store.clone());
        let range = LogFilter { since_ms: Some(now_ms() - HOUR), ..LogFilter::default() };
        let x = watch.diagnostics(rig.config_ids[2], &range, now_ms()).await.unwrap();
        assert_eq!(x[0].level, Level::Problem);
        assert!(x[0].title.contains("No active goal") && x[0].action.as_deref().unwrap().contains("Goals page"), "{x:?}");
        let tiktok = watch.diagnostics(rig.config_ids[0], &range, now_ms()).await.unwrap();
        let skipped = tiktok.iter().find(|i| i.title.contains("no_identifier")).expect("the skip reason is named");
        assert!(skipped.action.as_deref().unwrap().contains("ttclid"));
        assert!(tiktok.iter().any(|i| i.title == "Never delivered"));
        assert!(tiktok.iter().any(|i| i.title == "Events arrive" && i.detail.contains("1 events arrived")));
        rig.store.set_enabled(rig.config_ids[0], false).await.unwrap();
        let off = watch.diagnostics(rig.config_ids[0], &range, now_ms()).await.unwrap();
        assert!(off.iter().any(|i| i.title.contains("disabled")));
    }
}
