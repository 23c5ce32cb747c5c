//! Event sources on a real SQLite file: the loopback REST ingest (per-event answers, every
//! error status, a fuzzed body corpus, loopback-only binding), file import of NDJSON and CSV
//! with bad lines and a cancel mid-file, the demo generator through the real ingest, and the
//! attribution summary built from what they recorded.

mod support;
use support::{events, rig};

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
    postback::delivery::http_client(Duration::from_secs(30))
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

#[tokio::test]
async fn ingest_answers_each_event_and_accepted_means_queued() {
    let rig = rig("sandbox").await;
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

#[tokio::test]
async fn ingest_refuses_bad_requests_as_a_whole_and_queues_nothing() {
    let rig = rig("sandbox").await;
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

#[tokio::test]
async fn a_fuzzed_body_corpus_never_crashes_the_ingest_or_corrupts_the_queue() {
    let rig = rig("sandbox").await;
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
    let integrity: String = rig.store.integrity_check().await.unwrap();
    assert_eq!(integrity, "ok");
    let report = rig.dispatch(support::fast_options()).await;
    assert_eq!(report.panics, 0);
    let (waiting, leased, _) = rig.store.queue_counts().await.unwrap();
    assert_eq!((waiting, leased), (0, 0), "every queued event was read and settled");
    ingest.stop().await;
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

#[tokio::test]
async fn csv_import_reads_nested_headers_and_reports_bad_lines_by_number() {
    let rig = rig("sandbox").await;
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

#[tokio::test]
async fn ndjson_import_keeps_the_first_errors_and_counts_them_all() {
    let rig = rig("sandbox").await;
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

#[tokio::test]
async fn a_cancelled_import_keeps_whole_chunks_and_a_rerun_completes_it() {
    let rig = rig("sandbox").await;
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

fn err_message_mentions(e: &ImportError, needle: &str) -> bool {
    e.to_string().contains(needle)
}

#[tokio::test]
async fn the_demo_sends_valid_players_through_the_ingest_at_its_rate() {
    let rig = rig("sandbox").await;
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

#[tokio::test]
async fn attribution_counts_each_source_and_why_events_were_not_forwarded() {
    let rig = rig("sandbox").await;
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

#[tokio::test]
async fn concurrent_requests_are_committed_together_and_each_hears_its_own_answer() {
    let rig = rig("sandbox").await;
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
