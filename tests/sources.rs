//! Event sources on a real SQLite file: the loopback REST ingest (per-event answers, every
//! error status, a fuzzed body corpus, loopback-only binding), file import of NDJSON and CSV
//! with bad lines and a cancel mid-file, the demo generator through the real ingest, and the
//! attribution summary built from what they recorded.

#[macro_use]
mod support;
use support::{events, rig_on, x_goals};

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use postback::delivery::now_ms;
use postback::ingest::demo::DemoPlan;
use postback::ingest::server::{self, IngestError, RunningIngest, MAX_BODY};
use postback::ingest::{import, FileFormat, ImportControl, ImportError, LineError};
use postback::secrets::Secret;
use postback::watch::attribution;
use serde_json::{json, Value};

const TOKEN: &str = "pbd_test_token_0123456789";

async fn ingest(store: &postback::store::Store) -> RunningIngest {
    server::start(SocketAddr::from(([127, 0, 0, 1], 0)), store.clone(), Secret::new(TOKEN)).await.unwrap()
}

fn client() -> reqwest::Client {
    // The engine's client: it installs the TLS provider reqwest needs.
    postback::delivery::http_client(Duration::from_secs(30)).expect("HTTP client")
}

/// Posts `body` with the right token and content type unless told otherwise.
async fn post(url: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
    post_with(url, Some(TOKEN), "application/json", body).await
}

async fn post_with(url: &str, token: Option<&str>, content_type: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let mut request = client().post(url).header("content-type", content_type).body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("the ingest answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn event(id: &str, player: &str) -> Value {
    json!({"event_id": id, "name": "purchase", "occurred_at": chrono::Utc::now().to_rfc3339(), "player_id": player,
           "consent": "full", "click_ids": {"ttclid": "tt", "rdt_cid": "rd"}, "value": "4.99", "currency": "USD"})
}

on_both_engines_rig! {
    async fn ingest_answers_each_event_and_accepted_means_queued(engine: Engine) {
        let rig = rig_on(engine, "sandbox", x_goals()).await;
        let ingest = ingest(&rig.store).await;
        let url = format!("{}/v1/events?game={}", ingest.base_url, rig.game_id);
        let organic = json!({"event_id": "organic-1", "name": "purchase", "occurred_at": chrono::Utc::now().to_rfc3339(),
                             "player_id": "p9", "consent": "full", "value": "1.99", "currency": "USD"});
        let body = json!([
            event("a-1", "p1"),
            {"event_id": "bad-1", "name": "purchase", "occurred_at": "yesterday", "player_id": "p1", "consent": "full"},
            event("a-1", "p1"),
            organic,
            event("a-2", "p2"),
        ]);
        let (status, answer) = post(&url, body.to_string()).await;
        assert_eq!(status, 200, "{answer}");
        let results = answer["results"].as_array().unwrap();
        let statuses: Vec<&str> = results.iter().map(|r| r["status"].as_str().unwrap()).collect();
        assert_eq!(statuses, ["accepted", "rejected", "duplicate", "accepted", "accepted"]);
        assert_eq!(results[1]["field"], "occurred_at", "{}", results[1]);
        assert!(results[1]["message"].as_str().unwrap().contains("RFC 3339"), "{}", results[1]);
        // The organic event is accepted and counted, never forwarded, and the answer says why.
        let why = results[3]["not_forwarded"].as_array().unwrap();
        assert_eq!(why.len(), 3, "one reason per network: {why:?}");
        assert_eq!(
            (answer["accepted"].as_u64(), answer["duplicates"].as_u64(), answer["rejected"].as_u64()),
            (Some(3), Some(1), Some(1))
        );
        // Accepted means on disk: two events × TikTok and Reddit (X has no goal for purchases here
        // apart from the other pixel's tag, which still queues).
        let (waiting, _, _) = rig.store.queue_counts().await.unwrap();
        assert!(waiting >= 4, "{waiting} conversions queued");

        // The same events again: duplicates, nothing more queued.
        let (status, again) = post(&url, json!([event("a-1", "p1"), event("a-2", "p2")]).to_string()).await;
        assert_eq!(status, 200);
        assert!(again["results"].as_array().unwrap().iter().all(|r| r["status"] == "duplicate"), "{again}");
        assert_eq!(rig.store.queue_counts().await.unwrap().0, waiting);

        // One object is one event; without ?game= the current game takes it.
        let (status, single) = post(&format!("{}/v1/events", ingest.base_url), event("a-3", "p3").to_string()).await;
        assert_eq!((status, single["accepted"].as_u64()), (200, Some(1)), "{single}");
        assert_eq!(ingest.accepted(), 4);

        let health = client().get(format!("{}/v1/health", ingest.base_url)).send().await.unwrap().text().await.unwrap();
        let health: Value = serde_json::from_str(&health).unwrap();
        assert_eq!(health["status"], "ok");
        assert!(health["queue"]["waiting"].as_u64().unwrap() > waiting);

        // The delivered events reach the sandbox like any other.
        rig.dispatch(support::fast_options()).await;
        assert!(rig.stats(postback::model::Network::TikTok).accepted >= 3);
        ingest.stop().await;
    }
}

on_both_engines_rig! {
    async fn ingest_refuses_bad_requests_as_a_whole_and_queues_nothing(engine: Engine) {
        let rig = rig_on(engine, "sandbox", x_goals()).await;
        let ingest = ingest(&rig.store).await;
        let url = format!("{}/v1/events?game={}", ingest.base_url, rig.game_id);
        let one = event("e-1", "p1").to_string();
        let too_many = Value::Array((0..1001).map(|i| event(&format!("m-{i}"), "p1")).collect()).to_string();
        /// What, token, content type, body, expected status.
        type Case<'a> = (&'a str, Option<&'a str>, &'a str, String, u16);
        let cases: Vec<Case> = vec![
            ("no token", None, "application/json", one.clone(), 401),
            ("wrong token", Some("pbd_wrong"), "application/json", one.clone(), 401),
            ("token prefix", Some(&TOKEN[..10]), "application/json", one.clone(), 401),
            ("text body", Some(TOKEN), "text/plain", one.clone(), 415),
            ("form body", Some(TOKEN), "application/x-www-form-urlencoded", one.clone(), 415),
            ("truncated JSON", Some(TOKEN), "application/json", one[..one.len() / 2].to_owned(), 400),
            ("a number", Some(TOKEN), "application/json", "42".into(), 400),
            ("1,001 events", Some(TOKEN), "application/json", too_many, 413),
            ("over the byte limit", Some(TOKEN), "application/json", format!("[\"{}\"]", "x".repeat(MAX_BODY)), 413),
        ];
        for (what, token, content_type, body, expected) in cases {
            let (status, answer) = post_with(&url, token, content_type, body).await;
            assert_eq!(status, expected, "{what}: {answer}");
            let message = answer["error"]["message"].as_str().unwrap_or_default();
            assert!(!message.is_empty(), "{what}: the error says what to do: {answer}");
            assert!(!message.contains(TOKEN), "{what}: the token is never echoed");
        }
        let (status, answer) = post(&format!("{}/v1/events?game=999999", ingest.base_url), one.clone()).await;
        assert_eq!(status, 404, "{answer}");
        let (status, _) = post(&format!("{}/v1/events?game=abc", ingest.base_url), one.clone()).await;
        assert_eq!(status, 400, "a game id that is not a number");
        assert_eq!(rig.store.queue_counts().await.unwrap(), (0, 0, 0), "nothing partial was queued");
        assert_eq!(ingest.accepted(), 0);
        // A whole-request failure leaves no traffic counts either.
        assert!(rig.store.traffic(rig.game_id, 0, now_ms() + 1).await.unwrap().is_empty());
        ingest.stop().await;
    }
}

/// Bodies a broken or hostile client might send; none may crash the server or damage the queue.
fn fuzz_corpus() -> Vec<Vec<u8>> {
    let valid = json!([event("f-1", "p1"), event("f-2", "p2")]).to_string().into_bytes();
    let mut corpus: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"{".to_vec(),
        b"[".to_vec(),
        b"[{\"event_id\": \"x\"".to_vec(),
        b"null".to_vec(),
        b"\"just a string\"".to_vec(),
        b"[1, 2, 3]".to_vec(),
        b"[[], {}, null, true]".to_vec(),
        br#"{"event_id": 1e400, "name": "purchase"}"#.to_vec(),
        br#"[{"event_id": "h-1", "name": "purchase", "occurred_at": "2026-11-30T10:00:00Z", "player_id": "p", "consent": "full", "value": 1e308, "currency": "USD", "click_ids": {"ttclid": "t"}}]"#.to_vec(),
        br#"[{"event_id": "h-2", "name": "purchase", "occurred_at": "2026-11-30T10:00:00Z", "player_id": "p", "consent": "full", "value": 123456789012345678901234567890123456789, "currency": "USD", "click_ids": {"ttclid": "t"}}]"#.to_vec(),
        br#"[{"event_id": "h-3", "name": "purchase", "occurred_at": "2026-11-30T10:00:00Z", "player_id": "p", "consent": "full", "value": "-0.00000000000000000000000000001", "currency": "USD", "click_ids": {"ttclid": "t"}}]"#.to_vec(),
        "[".repeat(100_000).into_bytes(),
        format!("{}{}", "{\"a\":".repeat(50_000), "}".repeat(50_000)).into_bytes(),
        vec![0xff, 0xfe, b'[', 0x80, 0x81, b']'],
        [b"[{\"event_id\": \"".as_slice(), &[0xc3, 0x28], b"\"}]"].concat(),
        b"[{\"event_id\": \"nul\0byte\"}]".to_vec(),
        br#"[{"event_id": "\ud800", "name": "purchase"}]"#.to_vec(),
        // A 3 MB string fits the body limit and must be refused per event, not crash the server.
        format!(r#"[{{"event_id": "big", "name": "purchase", "occurred_at": "2026-11-30T10:00:00Z", "player_id": "{}", "consent": "full"}}]"#, "p".repeat(3_000_000)).into_bytes(),
        // 10 MB: over the limit.
        format!(r#"[{{"event_id": "{}"}}]"#, "x".repeat(10 * 1024 * 1024)).into_bytes(),
        // Many values in little space: refused or rejected as they are read, never all held.
        format!("[{}0]", "0,".repeat(1_500_000)).into_bytes(),
        format!("[{}{{}}]", "{},".repeat(1_000_000)).into_bytes(),
        format!(r#"[{{"event_id": "many-items", "items": [{}0]}}]"#, "{\"id\": 1},".repeat(200_000)).into_bytes(),
        format!(r#"[{{"event_id": "wide-ids", "click_ids": {{{}"ttclid": "t"}}}}]"#, "\"k\": [0, 0],".repeat(200_000)).into_bytes(),
        format!(r#"{{"event_id": "escaped", "user_agent": "{}"}}"#, "\\u00e9".repeat(500_000)).into_bytes(),
    ];
    // Random byte flips and cuts of a valid body (deterministic).
    let mut rng = fastrand::Rng::with_seed(42);
    for _ in 0..300 {
        let mut body = valid.clone();
        for _ in 0..rng.usize(1..6) {
            let i = rng.usize(..body.len());
            body[i] = rng.u8(..);
        }
        if rng.bool() {
            body.truncate(rng.usize(..body.len()));
        }
        corpus.push(body);
    }
    corpus
}

on_both_engines_rig! {
    async fn a_fuzzed_body_corpus_never_crashes_the_ingest_or_corrupts_the_queue(engine: Engine) {
        let rig = rig_on(engine, "sandbox", x_goals()).await;
        let ingest = ingest(&rig.store).await;
        let url = format!("{}/v1/events?game={}", ingest.base_url, rig.game_id);
        let mut accepted = 0;
        for (i, body) in fuzz_corpus().into_iter().enumerate() {
            let (status, answer) = post(&url, body).await;
            assert!([200, 400, 413].contains(&status), "body {i}: HTTP {status} {answer}");
            if status == 200 {
                accepted += answer["accepted"].as_u64().unwrap();
                for r in answer["results"].as_array().unwrap() {
                    if r["status"] == "rejected" {
                        assert!(r["field"].is_string() && r["message"].is_string(), "body {i}: {r}");
                    }
                }
            }
        }
        assert_eq!(ingest.accepted(), accepted);
        // Still serving, and the queue holds exactly what was acknowledged, readable by the dispatcher.
        let (status, answer) = post(&url, json!([event("after-1", "p1")]).to_string()).await;
        assert_eq!((status, answer["accepted"].as_u64()), (200, Some(1)), "{answer}");
        if rig.engine == support::engines::Engine::Sqlite {
            let integrity: String = rig.store.integrity_check().await.unwrap();
            assert_eq!(integrity, "ok");
        }
        let report = rig.dispatch(support::fast_options()).await;
        assert_eq!(report.panics, 0);
        let (waiting, leased, _) = rig.store.queue_counts().await.unwrap();
        assert_eq!((waiting, leased), (0, 0), "every queued event was read and settled");
        ingest.stop().await;
    }
}

#[tokio::test]
async fn the_ingest_listens_on_loopback_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = postback::store::Store::open(dir.path()).await.unwrap();
    for addr in ["0.0.0.0:0", "[::]:0", "192.0.2.10:47820"] {
        let addr: SocketAddr = addr.parse().unwrap();
        match server::start(addr, store.clone(), Secret::new(TOKEN)).await {
            Err(IngestError::NotLoopback(refused)) => assert_eq!(refused, addr),
            Err(e) => panic!("{addr}: {e}"),
            Ok(_) => panic!("{addr}: started on a non-loopback address"),
        }
    }
    let v6 = server::start("[::1]:0".parse().unwrap(), store.clone(), Secret::new(TOKEN)).await;
    // ::1 is loopback too (where the machine has IPv6).
    if let Ok(running) = v6 {
        assert!(running.addr.ip().is_loopback());
        running.stop().await;
    }
    // A port in use is a clear error, not a panic.
    let first = server::start("127.0.0.1:0".parse().unwrap(), store.clone(), Secret::new(TOKEN)).await.unwrap();
    let second = server::start(first.addr, store.clone(), Secret::new(TOKEN)).await;
    assert!(matches!(second, Err(IngestError::Bind { .. })));
    first.stop().await;
}

fn import_control<'a>(
    cancel: &'a AtomicBool,
    on_progress: &'a mut (dyn FnMut(&postback::ingest::ImportReport, u64) + Send),
    on_error: &'a mut (dyn FnMut(&LineError) + Send),
) -> ImportControl<'a> {
    ImportControl { cancel, on_progress, on_error, keep_errors: 100 }
}

on_both_engines_rig! {
    async fn csv_import_reads_nested_headers_and_reports_bad_lines_by_number(engine: Engine) {
        let rig = rig_on(engine, "sandbox", x_goals()).await;
        let now = chrono::Utc::now().to_rfc3339();
        let csv = format!(
            "event_id,name,occurred_at,player_id,consent,click_ids.ttclid,click_ids.rdt_cid,value,currency\n\
             c-1,purchase,{now},p1,full,tt-1,,4.99,USD\n\
             c-2,purchase,{now},p2,full,,rd-2,1.99,EUR\n\
             c-3,purchase,not a time,p3,full,tt-3,,1.99,USD\n\
             \n\
             \r\n\
             c-4,purchase,{now},p4,sometimes,tt-4,,1.99,USD\n\
             c-5,purchase,{now},p5,full,tt-5,,abc,USD\r\n\
             \"c-6\",\"game_launch\",\"{now}\",\"p6\",\"full\",\"tt-6\",,,\"a cell\nover two lines\"\n\
             c-7,purchase,{now},,full,tt-7,,1.99,USD\n"
        );
        let cancel = AtomicBool::new(false);
        let streamed = std::sync::Mutex::new(Vec::new());
        let (mut progress, mut on_error) =
            (|_: &postback::ingest::ImportReport, _| {}, |e: &LineError| streamed.lock().unwrap().push(e.clone()));
        let mut control = import_control(&cancel, &mut progress, &mut on_error);
        let report =
            import(&rig.store, rig.game_id, csv.as_bytes(), FileFormat::Csv, &mut control, now_ms()).await.unwrap();
        assert_eq!((report.lines, report.events, report.error_count), (7, 4, 3), "{report:?}");
        let lines: Vec<(u64, &str)> = report.errors.iter().map(|e| (e.line, e.field.as_str())).collect();
        // Line numbers are the file's: the header is line 1, the blank line and a quoted newline count.
        assert_eq!(lines, [(4, "occurred_at"), (7, "consent"), (11, "player_id")]);
        assert_eq!(*streamed.lock().unwrap(), report.errors, "every error is streamed as it is found");
        // c-1 and c-5 (its value "abc" is dropped, as the contract says) → TikTok; c-2 → Reddit;
        // c-6 (a launch) → TikTok.
        assert_eq!(report.enqueued, 4, "{report:?}");
        assert!(report.skipped.contains_key("no_identifier"), "{report:?}");

        // A CSV with a header that names an unknown column still imports what it can.
        let header_only = "event_id,name\n";
        let report =
            import(&rig.store, rig.game_id, header_only.as_bytes(), FileFormat::Csv, &mut control, now_ms()).await.unwrap();
        assert_eq!(report.lines, 0);
    }
}

on_both_engines_rig! {
    async fn ndjson_import_keeps_the_first_errors_and_counts_them_all(engine: Engine) {
        let rig = rig_on(engine, "sandbox", x_goals()).await;
        let good = events(3, "purchase", "p1");
        let bad: String = (0..150).map(|i| format!("{{\"event_id\": \"bad-{i}\"}}\n")).collect();
        let text = format!("{good}\n{bad}not json at all\n");
        let cancel = AtomicBool::new(false);
        let mut count = 0u64;
        let (mut progress, mut on_error) = (|_: &postback::ingest::ImportReport, _| {}, |_: &LineError| count += 1);
        let mut control = import_control(&cancel, &mut progress, &mut on_error);
        let report =
            import(&rig.store, rig.game_id, text.as_bytes(), FileFormat::Ndjson, &mut control, now_ms()).await.unwrap();
        assert_eq!((report.events, report.error_count, report.errors.len()), (3, 151, 100));
        assert_eq!(report.errors[0].line, 4);
        assert_eq!(count, 151);
        assert_eq!(FileFormat::of_path("a/b/events.CSV".as_ref()), FileFormat::Csv);
        assert_eq!(FileFormat::of_path("events.ndjson".as_ref()), FileFormat::Ndjson);
    }
}

on_both_engines_rig! {
    async fn a_cancelled_import_keeps_whole_chunks_and_a_rerun_completes_it(engine: Engine) {
        let rig = rig_on(engine, "sandbox", x_goals()).await;
        // 12,000 launches of distinct players: chunks of 5,000.
        let now = chrono::Utc::now().to_rfc3339();
        let text: String = (0..12_000)
            .map(|i| {
                json!({"event_id": format!("l-{i}"), "name": "game_launch", "occurred_at": now, "player_id": format!("p{i}"),
                       "consent": "full", "click_ids": {"ttclid": "tt"}})
                .to_string()
                    + "\n"
            })
            .collect();
        let cancel = AtomicBool::new(false);
        let mut progress_calls = Vec::new();
        let mut on_progress = |report: &postback::ingest::ImportReport, bytes: u64| {
            progress_calls.push((report.lines, bytes));
            // The user presses Cancel while the first chunk is being written.
            cancel.store(true, std::sync::atomic::Ordering::Relaxed);
        };
        let mut on_error = |_: &LineError| {};
        let mut control =
            ImportControl { cancel: &cancel, on_progress: &mut on_progress, on_error: &mut on_error, keep_errors: 100 };
        let err =
            import(&rig.store, rig.game_id, text.as_bytes(), FileFormat::Ndjson, &mut control, now_ms()).await.unwrap_err();
        let ImportError::Cancelled { report } = err else { panic!("{err}") };
        assert_eq!(report.lines, 5000);
        assert!(err_message_mentions(&ImportError::Cancelled { report: report.clone() }, "5000"));
        assert_eq!(progress_calls.len(), 1);
        assert!(progress_calls[0].1 > 0 && progress_calls[0].1 < text.len() as u64);
        // What was acknowledged is queued, whole; nothing of the rest.
        let queued = rig.store.queue_counts().await.unwrap().0;
        assert_eq!(queued, report.enqueued);
        assert_eq!(queued, 5000, "TikTok for each acknowledged line (no twclid, no rdt_cid)");

        // Running it again completes the file: the first chunk is recognised as duplicates.
        let cancel = AtomicBool::new(false);
        let (mut progress, mut on_error) = (|_: &postback::ingest::ImportReport, _| {}, |_: &LineError| {});
        let mut control = import_control(&cancel, &mut progress, &mut on_error);
        let rest =
            import(&rig.store, rig.game_id, text.as_bytes(), FileFormat::Ndjson, &mut control, now_ms()).await.unwrap();
        assert_eq!((rest.duplicates, rest.enqueued), (5000, 7000));
        assert_eq!(rig.store.queue_counts().await.unwrap().0, 12_000);
    }
}

fn err_message_mentions(e: &ImportError, needle: &str) -> bool {
    e.to_string().contains(needle)
}

on_both_engines_rig! {
    async fn the_demo_sends_valid_players_through_the_ingest_at_its_rate(engine: Engine) {
        let rig = rig_on(engine, "sandbox", x_goals()).await;
        let ingest = ingest(&rig.store).await;
        let url = format!("{}/v1/events?game={}", ingest.base_url, rig.game_id);
        let (_stop_tx, stop) = tokio::sync::watch::channel(false);
        let mut updates = 0;
        let stats = postback::ingest::demo::run(
            &client(),
            &url,
            &Secret::new(TOKEN),
            DemoPlan { rate: 50.0, duration: Some(Duration::from_millis(2000)), seed: 7 },
            stop,
            |_| updates += 1,
        )
        .await;
        // 50/s for 2 s, sent every 100 ms: the last tick at 2.0 s ends the run.
        assert!((90..=100).contains(&stats.sent), "{stats:?}");
        assert_eq!(stats.accepted + stats.duplicates, stats.sent, "every demo event is valid: {stats:?}");
        assert_eq!((stats.rejected, stats.failed_requests), (0, 0), "{stats:?}");
        assert!(updates >= 10);
        assert_eq!(ingest.accepted(), stats.accepted);
        // The attribution summary counts them as the demo's, not as a game server's.
        let traffic = rig.store.traffic(rig.game_id, 0, now_ms() + 1).await.unwrap();
        let summary = attribution::summarize(&traffic, &rig.store.integrations(rig.game_id).await.unwrap());
        assert_eq!(summary.iter().map(|s| (s.source.as_str(), s.arrived)).collect::<Vec<_>>(), [("demo", stats.sent)]);

        // A wrong token shows up in the stats, not as a panic.
        let (_tx, stop) = tokio::sync::watch::channel(false);
        let failed = postback::ingest::demo::run(
            &client(),
            &url,
            &Secret::new("pbd_wrong"),
            DemoPlan { rate: 20.0, duration: Some(Duration::from_millis(500)), seed: 8 },
            stop,
            |_| {},
        )
        .await;
        assert!(failed.failed_requests > 0 && failed.accepted == 0, "{failed:?}");
        assert!(failed.last_error.as_deref().unwrap_or_default().contains("401"), "{failed:?}");

        // Stopping ends the run at once.
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        let run = tokio::spawn({
            let url = url.clone();
            async move {
                postback::ingest::demo::run(
                    &client(),
                    &url,
                    &Secret::new(TOKEN),
                    DemoPlan { rate: 20.0, duration: None, seed: 9 },
                    stop,
                    |_| {},
                )
                .await
            }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop_tx.send(true).unwrap();
        let stopped = tokio::time::timeout(Duration::from_secs(5), run).await.expect("the demo stops").unwrap();
        assert!(stopped.sent <= 10, "{stopped:?}");
        ingest.stop().await;
    }
}

on_both_engines_rig! {
    async fn attribution_counts_each_source_and_why_events_were_not_forwarded(engine: Engine) {
        let rig = rig_on(engine, "sandbox", x_goals()).await;
        let ingest = ingest(&rig.store).await;
        let url = format!("{}/v1/events?game={}", ingest.base_url, rig.game_id);
        let now = chrono::Utc::now().to_rfc3339();
        // Over the ingest: one TikTok-only purchase, one organic, one without consent.
        let body = json!([
            {"event_id": "i-1", "name": "purchase", "occurred_at": now, "player_id": "p1", "consent": "full", "click_ids": {"ttclid": "tt"}},
            {"event_id": "i-2", "name": "purchase", "occurred_at": now, "player_id": "p2", "consent": "full"},
            {"event_id": "i-3", "name": "purchase", "occurred_at": now, "player_id": "p3", "consent": "none", "click_ids": {"ttclid": "tt"}},
        ]);
        assert_eq!(post(&url, body.to_string()).await.0, 200);
        // From a file: three launches with every click id, and a level_up no config triggers on.
        rig.import(&events(3, "game_launch", "p4")).await;
        rig.import(&events(1, "level_up", "p5")).await;

        let traffic = rig.store.traffic(rig.game_id, 0, now_ms() + 1).await.unwrap();
        let configs = rig.store.integrations(rig.game_id).await.unwrap();
        let summary = attribution::summarize(&traffic, &configs);
        let by_source = |s: &str| summary.iter().find(|t| t.source == s).unwrap_or_else(|| panic!("{s}: {summary:?}"));
        let ingested = by_source("ingest");
        assert_eq!(ingested.arrived, 3);
        let tiktok = ingested.networks.iter().find(|n| n.network == postback::model::Network::TikTok).unwrap();
        assert_eq!(tiktok.queued, 1);
        assert_eq!(tiktok.not_forwarded.values().sum::<u64>(), 2, "{tiktok:?}");
        assert!(tiktok.not_forwarded.contains_key("consent_none"), "{tiktok:?}");
        let imported = by_source("import");
        assert_eq!(imported.arrived, 4);
        for n in &imported.networks {
            assert_eq!(n.queued, 3, "{n:?}");
            assert_eq!(n.not_forwarded.values().sum::<u64>(), 1, "the level_up, for each network: {n:?}");
        }
        // A range before everything is empty.
        let before = rig.store.traffic(rig.game_id, 0, now_ms() - 3 * 3_600_000).await.unwrap();
        assert!(attribution::summarize(&before, &configs).is_empty());
        ingest.stop().await;
    }
}

on_both_engines_rig! {
    async fn concurrent_requests_are_committed_together_and_each_hears_its_own_answer(engine: Engine) {
        let rig = rig_on(engine, "sandbox", x_goals()).await;
        let ingest = ingest(&rig.store).await;
        let url = format!("{}/v1/events?game={}", ingest.base_url, rig.game_id);
        let requests = (0..64).map(|i| {
            let url = url.clone();
            // Every 8th request repeats the previous one's event: a duplicate, whichever commits first.
            let id = if i % 8 == 7 { format!("c-{}", i - 1) } else { format!("c-{i}") };
            tokio::spawn(async move { (id.clone(), post(&url, event(&id, "p1").to_string()).await) })
        });
        let mut accepted = std::collections::HashSet::new();
        for request in requests {
            let (id, (status, answer)) = request.await.unwrap();
            assert_eq!(status, 200, "{answer}");
            let result = &answer["results"][0];
            assert_eq!(result["event_id"], id.as_str());
            assert!(result["status"] == "accepted" || result["status"] == "duplicate", "{answer}");
            accepted.insert(id);
        }
        assert_eq!(accepted.len(), 56);
        // 56 distinct purchases × TikTok and Reddit, each queued once.
        assert_eq!(rig.store.queue_counts().await.unwrap().0, 56 * 2);
        ingest.stop().await;
    }
}

// ---- Bounded memory and clear answers on every input (issue 20, part 4) ----

/// A child process, killed when dropped.
struct ChildProcess(std::process::Child);

impl Drop for ChildProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A field of `/proc/<pid>/status` (`VmRSS:` now, `VmHWM:` the peak), in MB.
fn process_mb(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} for process {pid}"));
    kb / 1024.0
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `postback serve --ingest` in a process of its own, once it takes connections.
fn serve_ingest(data: &std::path::Path) -> (ChildProcess, String) {
    let port = free_port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_postback"))
        .arg("--data-dir")
        .arg(data)
        .args(["serve", "--ingest", &format!("127.0.0.1:{port}")])
        .env("POSTBACK_INGEST_TOKEN", TOKEN)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let child = ChildProcess(child);
    let up = (0..200).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(up, "the ingest did not start");
    (child, format!("http://127.0.0.1:{port}"))
}

/// The issue's body: 4 MiB of `[0,0,…]` once took the ingest from 45 MB to 899 MB before its
/// 413 (each element became an event's worth of parsed fields).
#[tokio::test]
async fn a_4_mib_body_of_zeros_is_refused_without_the_ingest_growing() {
    let dir = tempfile::tempdir().unwrap();
    let (child, base) = serve_ingest(&dir.path().join("data"));
    let pid = child.0.id();
    let url = format!("{base}/v1/events");
    // Warm up what a first request loads (the phone metadata, the writer), then measure.
    let warm = json!({"event_id": "warm-1", "name": "purchase", "occurred_at": chrono::Utc::now().to_rfc3339(),
                      "player_id": "p1", "consent": "none", "phone": "+1 650 555 1212"});
    assert_eq!(post(&url, warm.to_string()).await.0, 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = process_mb(pid, "VmRSS:");

    let zeros = format!("[{}0]", "0,".repeat((MAX_BODY - 3) / 2));
    assert!(zeros.len() <= MAX_BODY);
    let (status, answer) = post(&url, zeros).await;
    let peak = process_mb(pid, "VmHWM:");
    assert_eq!(status, 413, "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("at most 1000"), "{answer}");
    eprintln!("ingest RSS before {before:.1} MB, peak after the 4 MiB [0,0,…] body {peak:.1} MB");
    assert!(peak - before < 50.0, "the ingest grew from {before:.1} MB to a peak of {peak:.1} MB");
    // Still serving.
    let event = json!({"event_id": "after-1", "name": "purchase", "occurred_at": chrono::Utc::now().to_rfc3339(),
                       "player_id": "p1", "consent": "none"});
    assert_eq!(post(&url, event.to_string()).await.0, 200);
}

/// Writes a whole request, head and body, before reading anything, as Python's `http.client`
/// and many SDKs do; the answer as text, or what went wrong.
fn write_all_then_read(addr: SocketAddr, head: &str, body: &[u8]) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

fn request_head(path: &str, token: &str, framing: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nConnection: close\r\n{framing}\r\n"
    )
}

fn chunked(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 1000 + 16);
    for chunk in body.chunks(64 * 1024) {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

on_both_engines_rig! {
    async fn a_client_that_writes_a_whole_refused_body_before_reading_hears_the_refusal(engine: Engine) {
        let rig = rig_on(engine, "sandbox", x_goals()).await;
        let ingest = ingest(&rig.store).await;
        let addr = ingest.addr;
        let path = format!("/v1/events?game={}", rig.game_id);
        // 16 MiB: far more than the kernel's socket buffers hold, so the client is still writing
        // when the server decides.
        let big = format!("[\"{}\"]", "x".repeat(16 * 1024 * 1024)).into_bytes();
        let cases: Vec<(&str, String, Vec<u8>, u16)> = vec![
            (
                "declared over the limit",
                request_head(&path, TOKEN, &format!("Content-Length: {}\r\n", big.len())),
                big.clone(),
                413,
            ),
            (
                "chunked, over the limit as it is read",
                request_head(&path, TOKEN, "Transfer-Encoding: chunked\r\n"),
                chunked(&big),
                413,
            ),
            (
                "wrong token",
                request_head(&path, "pbd_wrong", &format!("Content-Length: {}\r\n", big.len())),
                big.clone(),
                401,
            ),
            (
                "no such path",
                request_head("/v1/event", TOKEN, &format!("Content-Length: {}\r\n", big.len())),
                big.clone(),
                404,
            ),
        ];
        for (what, head, body, expected) in cases {
            let answer = tokio::task::spawn_blocking(move || write_all_then_read(addr, &head, &body)).await.unwrap();
            let answer = answer.unwrap_or_else(|e| panic!("{what}: the client got {e} instead of an answer"));
            assert!(answer.starts_with(&format!("HTTP/1.1 {expected}")), "{what}: {answer}");
            let json = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
            let doc: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{what}: {e}: {answer}"));
            assert!(!doc["error"]["message"].as_str().unwrap_or_default().is_empty(), "{what}: {answer}");
        }
        assert_eq!(rig.store.queue_counts().await.unwrap(), (0, 0, 0));
        ingest.stop().await;
    }
}

/// A request's head and the first bytes of a body it never finishes: it holds its place.
fn hold_open(addr: SocketAddr, path: &str, declared: usize) -> std::net::TcpStream {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let head = request_head(path, TOKEN, &format!("Content-Length: {declared}\r\n"));
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(b"[{\"event_id\": ").unwrap();
    stream
}

/// Posts a small valid event until the answer has `status` and its message contains `says`
/// (bounded); its headers and answer.
async fn post_until(url: &str, status: u16, says: &str) -> (reqwest::header::HeaderMap, Value) {
    // Up to 10 s: under a full suite's load the held connections take a while to count.
    let mut last = (0, Value::Null);
    for _ in 0..200 {
        let response = client()
            .post(url)
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(event("busy-1", "p1").to_string())
            .send()
            .await
            .unwrap();
        let (code, headers) = (response.status().as_u16(), response.headers().clone());
        let answer: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
        if code == status && answer["error"]["message"].as_str().unwrap_or_default().contains(says) {
            return (headers, answer);
        }
        last = (code, answer);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never answered {status} ({says}); the last answer was {} {}", last.0, last.1);
}

/// The caps are the ingest's, refused before the store is touched: one engine is enough (on the
/// single-threaded runtime it was written for).
#[tokio::test]
async fn requests_over_the_caps_in_flight_get_429_with_retry_after() {
    use postback::ingest::server::{BODY_BUDGET, MAX_IN_FLIGHT};
    let rig = rig_on(support::engines::Engine::Sqlite, "sandbox", x_goals()).await;
    let ingest = ingest(&rig.store).await;
    let path = format!("/v1/events?game={}", rig.game_id);
    let url = format!("{}{path}", ingest.base_url);

    // As many requests in flight as allowed, each waiting for the rest of its body.
    let held: Vec<_> = (0..MAX_IN_FLIGHT).map(|_| hold_open(ingest.addr, &path, 1000)).collect();
    let (headers, answer) = post_until(&url, 429, "requests are being handled").await;
    assert_eq!(headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("1"), "{headers:?}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("retry after 1 s"), "{answer}");
    drop(held);
    post_until(&url, 200, "").await;

    // Bodies of the largest size: their bytes are what is capped.
    let held: Vec<_> = (0..BODY_BUDGET / MAX_BODY).map(|_| hold_open(ingest.addr, &path, MAX_BODY)).collect();
    let (headers, _) = post_until(&url, 429, "MiB of request bodies").await;
    assert!(headers.contains_key("retry-after"));
    drop(held);
    let (_, answer) = post_until(&url, 200, "").await;
    assert_eq!(answer["results"][0]["status"], "duplicate", "the event was accepted once: {answer}");
    ingest.stop().await;
}

on_both_engines_rig! {
    async fn every_text_field_has_a_length_limit_answered_by_field(engine: Engine) {
        use postback::model::limits;
        let rig = rig_on(engine, "sandbox", x_goals()).await;
        let ingest = ingest(&rig.store).await;
        let url = format!("{}/v1/events?game={}", ingest.base_url, rig.game_id);
        // (field as the error names it, where it goes, its limit)
        let cases: &[(&str, &str, usize)] = &[
            ("event_id", "/event_id", limits::ID),
            ("name", "/name", limits::ID),
            ("player_id", "/player_id", limits::ID),
            ("email", "/email", limits::EMAIL),
            ("phone", "/phone", limits::PHONE),
            ("ip", "/ip", limits::IP),
            ("user_agent", "/user_agent", limits::USER_AGENT),
            ("currency", "/currency", limits::CURRENCY),
            ("page_url", "/page_url", limits::PAGE_URL),
            ("value", "/value", limits::VALUE),
            ("click_ids.ttclid", "/click_ids/ttclid", limits::CLICK_ID),
            ("click_ids.rdt_cid", "/click_ids/rdt_cid", limits::CLICK_ID),
            ("items.0.id", "/items/0/id", limits::ID),
            ("items.0.name", "/items/0/name", limits::ID),
        ];
        let now = chrono::Utc::now().to_rfc3339();
        let base = |i: usize, suffix: &str| {
            json!({"event_id": format!("len-{i}-{suffix}"), "name": "purchase", "occurred_at": now, "player_id": "p1",
                   "consent": "full", "click_ids": {"ttclid": "t", "rdt_cid": "r"}, "items": [{"id": "gem", "name": "Gem"}]})
        };
        let mut body = Vec::new();
        for (i, (_, pointer, limit)) in cases.iter().enumerate() {
            for (suffix, len) in [("at", *limit), ("over", limit + 1)] {
                let mut e = base(i, suffix);
                // Multi-byte characters: the limit counts characters, not bytes.
                let text = if pointer.ends_with("event_id") {
                    format!("{suffix}-{}", "é".repeat(len - suffix.len() - 1))
                } else {
                    "é".repeat(len)
                };
                match pointer.rfind('/') {
                    Some(0) => e[&pointer[1..]] = Value::String(text),
                    _ => *e.pointer_mut(pointer).unwrap_or_else(|| panic!("{pointer}")) = Value::String(text),
                }
                body.push(e);
            }
        }
        let items: Vec<Value> = (0..=limits::ITEMS).map(|i| json!({"id": format!("i{i}")})).collect();
        let mut many = base(99, "items");
        many["items"] = Value::Array(items[..limits::ITEMS].to_vec());
        let mut too_many = base(99, "items-over");
        too_many["items"] = Value::Array(items);
        body.extend([many, too_many]);
        // A long timestamp or consent is refused by its format and repeated only in part.
        let mut long_time = base(99, "time");
        long_time["occurred_at"] = Value::String("9".repeat(100_000));
        body.push(long_time);

        let (status, answer) = post(&url, Value::Array(body).to_string()).await;
        assert_eq!(status, 200, "{answer}");
        let results = answer["results"].as_array().unwrap();
        for (i, (field, _, limit)) in cases.iter().enumerate() {
            let (at, over) = (&results[2 * i], &results[2 * i + 1]);
            assert_eq!(at["status"], "accepted", "{field} of {limit} characters: {at}");
            assert_eq!(over["status"], "rejected", "{field} over {limit}: {over}");
            assert_eq!(over["field"], *field, "{over}");
            let message = over["message"].as_str().unwrap();
            assert!(message.contains(&limit.to_string()), "the message gives the limit: {message}");
            if *field == "event_id" {
                assert!(over["event_id"].is_null(), "an over-long id is not repeated: {over}");
            }
        }
        let n = 2 * cases.len();
        assert_eq!(results[n]["status"], "accepted", "{} items: {}", limits::ITEMS, results[n]);
        assert_eq!(
            (results[n + 1]["status"].as_str(), results[n + 1]["field"].as_str()),
            (Some("rejected"), Some("items"))
        );
        assert_eq!(results[n + 2]["field"], "occurred_at");
        assert!(results[n + 2]["message"].as_str().unwrap().len() < 200, "{}", results[n + 2]);
        ingest.stop().await;
    }
}

/// `postback import FILE` in a process of its own: its peak memory (MB), stdout and stderr.
/// The peak is the child's `VmHWM` read every few milliseconds until it exits (a child's
/// `ru_maxrss` would start from this test process's own peak, inherited across exec).
fn import_in_child(data: &std::path::Path, file: &std::path::Path) -> (f64, Value, String) {
    let out = tempfile::NamedTempFile::new().unwrap();
    let err = tempfile::NamedTempFile::new().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_postback"))
        .arg("--data-dir")
        .arg(data)
        .arg("import")
        .arg(file)
        .stdout(out.reopen().unwrap())
        .stderr(err.reopen().unwrap())
        .spawn()
        .unwrap();
    let mut peak: f64 = 0.0;
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    while child.try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "the import did not end");
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
        let hwm =
            status.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok());
        peak = peak.max(hwm.unwrap_or(0.0) / 1024.0);
        std::thread::sleep(Duration::from_millis(5));
    }
    let stdout = std::fs::read_to_string(out.path()).unwrap();
    let stderr = std::fs::read_to_string(err.path()).unwrap();
    let report = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout} {stderr}"));
    (peak, report, stderr)
}

/// A 200 MB single line once used 298 MB, a 200 MB CSV field 865 MB (and that event id was
/// accepted). Now an over-long line or record is an error at its line, skipped without being held.
#[test]
fn an_import_with_a_huge_line_or_field_stays_flat_and_names_the_line() {
    use std::io::Write;
    const HUGE: usize = 100 * 1024 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let now = chrono::Utc::now().to_rfc3339();
    let line = |id: &str| {
        json!({"event_id": id, "name": "purchase", "occurred_at": now, "player_id": "p1", "consent": "none"})
            .to_string()
    };
    let small = dir.path().join("small.ndjson");
    std::fs::write(&small, format!("{}\n{}\n", line("s-1"), line("s-2"))).unwrap();
    let (baseline, report, _) = import_in_child(&data, &small);
    assert_eq!(report["events"], 2);

    let ndjson = dir.path().join("huge.ndjson");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&ndjson).unwrap());
    writeln!(file, "{}", line("n-1")).unwrap();
    write!(file, "{{\"event_id\": \"").unwrap();
    let block = vec![b'x'; 1024 * 1024];
    for _ in 0..HUGE / block.len() {
        file.write_all(&block).unwrap();
    }
    writeln!(file, "\", \"name\": \"purchase\"}}").unwrap();
    writeln!(file, "{}", line("n-3")).unwrap();
    drop(file);
    let (peak, report, stderr) = import_in_child(&data, &ndjson);
    eprintln!("import of a {} MB NDJSON line: peak RSS {peak:.1} MB (a two-line file: {baseline:.1} MB)", HUGE >> 20);
    assert!(stderr.contains("line 2: line: is longer than 1 MiB"), "{stderr}");
    assert_eq!((report["lines"].as_u64(), report["events"].as_u64()), (Some(3), Some(2)), "{report}");
    assert!(peak - baseline < 50.0, "peak {peak:.1} MB against {baseline:.1} MB");

    let csv = dir.path().join("huge.csv");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&csv).unwrap());
    writeln!(file, "event_id,name,occurred_at,player_id,consent\nc-1,purchase,{now},p1,none").unwrap();
    write!(file, "\"").unwrap();
    for _ in 0..HUGE / block.len() {
        file.write_all(&block).unwrap();
    }
    writeln!(file, "\",purchase,{now},p1,none\nc-3,purchase,{now},p1,none").unwrap();
    drop(file);
    let (peak, report, stderr) = import_in_child(&data, &csv);
    eprintln!("import of a {} MB CSV field: peak RSS {peak:.1} MB (a two-line file: {baseline:.1} MB)", HUGE >> 20);
    assert!(stderr.contains("line 3: line: is longer than 1 MiB"), "{stderr}");
    assert_eq!((report["lines"].as_u64(), report["events"].as_u64()), (Some(3), Some(2)), "{report}");
    assert!(peak - baseline < 50.0, "peak {peak:.1} MB against {baseline:.1} MB");
}
