//! The `postback` binary as a user runs it.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

mod engines;

const PURCHASE: &str = r#"{"event_id": "e1", "name": "purchase", "occurred_at": "2026-11-20T10:15:30Z",
    "player_id": "p", "consent": "full", "click_ids": {"ttclid": "t"}}"#;
const TIKTOK: &str = r#"{"network": "tiktok", "pixel_code": "CABCD1234EFGH", "trigger_events": ["purchase"]}"#;

fn postback() -> Command {
    Command::new(env!("CARGO_BIN_EXE_postback"))
}

/// `postback --data-dir DIR/data preview` over the given config and event texts.
fn preview(dir: &Path, config: &str, event: &str) -> Output {
    std::fs::write(dir.join("c.json"), config).unwrap();
    std::fs::write(dir.join("e.json"), event).unwrap();
    postback()
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(["preview", "--config"])
        .arg(dir.join("c.json"))
        .arg("--event")
        .arg(dir.join("e.json"))
        .output()
        .unwrap()
}

fn stdout_json(out: &Output) -> Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn preview_prints_the_request_with_credentials_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let doc = stdout_json(&preview(dir.path(), TIKTOK, PURCHASE));
    let request = &doc["requests"][0];
    assert_eq!(request["method"], "POST");
    assert_eq!(request["headers"]["access-token"], "<redacted>");
    assert_eq!(request["headers"]["content-type"], "application/json");
    assert_eq!(request["body"]["data"][0]["event_id"], "e1");
}

#[test]
fn preview_reports_a_skip_with_reason_and_message() {
    let dir = tempfile::tempdir().unwrap();
    let config = r#"{"network": "reddit", "pixel_id": "a2_abc", "trigger_events": ["game_launch"]}"#;
    let doc = stdout_json(&preview(dir.path(), config, PURCHASE));
    assert_eq!(doc["skipped"]["reason"], "event_not_triggered");
    assert!(doc["skipped"]["message"].as_str().unwrap().contains("purchase"));
}

#[test]
fn invalid_input_exits_2_with_a_field_error_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (r#"{"network": "reddit", "pixel_id": "abcd", "trigger_events": []}"#, PURCHASE, "pixel_id"),
        (r#"{"network": "snapchat"}"#, PURCHASE, "network"),
        (
            r#"{"network": "x", "pixel_id": "oka17", "goals": [{"id": "g", "event": "purchase", "event_tag": "tw-x"}]}"#,
            PURCHASE,
            "goals.0.event_tag",
        ),
        ("{not json", PURCHASE, "config"),
        (TIKTOK, r#"{"event_id": "e1", "name": "purchase"}"#, "occurred_at"),
    ];
    for (config, event, field) in cases {
        let out = preview(dir.path(), config, event);
        assert_eq!(out.status.code(), Some(2), "{config}");
        assert!(out.stdout.is_empty());
        let doc: Value = serde_json::from_slice(&out.stderr).unwrap();
        assert_eq!(doc["error"]["field"], field, "{config}");
        assert!(!doc["error"]["message"].as_str().unwrap().is_empty());
    }
    let missing =
        postback().args(["preview", "--config", "/nonexistent.json", "--event", "/nonexistent.json"]).output().unwrap();
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn integrations_creates_the_demo_game_in_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let out = postback().arg("integrations").env("POSTBACK_DATA_DIR", dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    for name in ["Sandbox Game", "TikTok Ads", "Reddit Ads", "X Ads"] {
        assert!(text.contains(name), "{text}");
    }
    assert!(dir.path().join("postback.db").exists());
}

#[test]
fn preview_knows_players_erased_in_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    assert!(stdout_json(&preview(dir.path(), TIKTOK, PURCHASE))["requests"].is_array());
    assert!(!dir.path().join("data/postback.db").exists(), "preview never creates a database");
    let erase =
        postback().arg("--data-dir").arg(dir.path().join("data")).args(["erase", "--player", "p"]).output().unwrap();
    assert!(erase.status.success(), "{}", String::from_utf8_lossy(&erase.stderr));
    assert_eq!(stdout_json(&preview(dir.path(), TIKTOK, PURCHASE))["skipped"]["reason"], "player_erased");
}

#[test]
fn import_reports_bad_lines_and_serve_delivers_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let lines = format!(
        "{}\nnot json\n{}",
        PURCHASE.replace('\n', " "),
        PURCHASE.replace("\"e1\"", "\"e2\"").replace('\n', " ")
    );
    std::fs::write(dir.path().join("events.ndjson"), lines).unwrap();
    let out =
        postback().arg("--data-dir").arg(&data).arg("import").arg(dir.path().join("events.ndjson")).output().unwrap();
    let report = stdout_json(&out);
    assert_eq!(report["events"], 2);
    // The demo game: TikTok and Reddit trigger on purchase, X has a purchase goal; Reddit needs
    // an rdt_cid or email and X a twclid/email/phone, which these events lack.
    assert_eq!(report["enqueued"], 2);
    assert_eq!(report["skipped"]["no_identifier"], 4);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line 2: event:"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A sandbox served by `postback sandbox` on a free port, stopped on drop.
struct SandboxProcess(std::process::Child, String);

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sandbox_process() -> SandboxProcess {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    // Owned by the guard at once, so the child is reaped whatever happens next.
    let sandbox = SandboxProcess(postback().args(["sandbox", "--port", &port.to_string()]).spawn().unwrap(), base);
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return sandbox;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("the sandbox did not start on {}", sandbox.1);
}

/// `GET /__sandbox/stats` over a plain loopback socket.
fn sandbox_stats(base: &str) -> Value {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "GET /__sandbox/stats HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("stats: {e}: {response}"))
}

fn validate(base: &str, pixel: &str, token: &str, test_code: &str) -> Output {
    postback()
        .args(["validate", "--network", "tiktok", "--pixel", pixel, "--token-env", "QA_TOKEN"])
        .args(["--test-code", test_code, "--base-url", base])
        .env("QA_TOKEN", token)
        .output()
        .unwrap()
}

#[test]
fn validate_sends_one_test_event_and_says_what_to_fix() {
    let sandbox = sandbox_process();
    let ok = stdout_json(&validate(&sandbox.1, "CQA0000001", postback::sandbox::TIKTOK_TOKEN, "TEST77"));
    assert_eq!(ok["ok"], true);
    assert_eq!(ok["http_status"], 200);

    let wrong = validate(&sandbox.1, "CQA0000001", "cut-off-tok", "TEST77");
    assert_eq!(wrong.status.code(), Some(1));
    let err: Value = serde_json::from_slice(&wrong.stderr).unwrap();
    assert_eq!(err["error"]["field"], "access_token");
    assert!(err["error"]["message"].as_str().unwrap().contains("truncated or revoked"), "{err}");

    let bad_pixel = validate(&sandbox.1, "a2_notatiktokpixel", postback::sandbox::TIKTOK_TOKEN, "TEST77");
    assert_eq!(bad_pixel.status.code(), Some(2), "input errors exit 2 before anything is sent");
    let err: Value = serde_json::from_slice(&bad_pixel.stderr).unwrap();
    assert_eq!(err["error"]["field"], "pixel");

    let stats: Value = sandbox_stats(&sandbox.1);
    assert_eq!(stats["tiktok"]["test_events"], 1, "{stats}");
    assert_eq!(stats["tiktok"]["accepted"], 0, "a validation never counts as a live conversion");
}

#[test]
fn connect_without_a_secret_service_refuses_and_saves_nothing() {
    let sandbox = sandbox_process();
    let dir = tempfile::tempdir().unwrap();
    let out = postback()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["connect", "--network", "tiktok", "--pixel", "CQA0000001", "--token-env", "QA_TOKEN"])
        .args(["--test-code", "TEST1", "--base-url", &sandbox.1])
        .env("QA_TOKEN", postback::sandbox::TIKTOK_TOKEN)
        // No session bus: what a desktop without a keyring daemon looks like.
        .env("DBUS_SESSION_BUS_ADDRESS", format!("unix:path={}/no-bus", dir.path().display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["error"]["code"], "keychain_unavailable");
    let message = err["error"]["message"].as_str().unwrap();
    assert!(message.contains("keychain is not available") && message.contains("never stores tokens in plain text"));
    // Nothing was sent and nothing saved.
    let list = postback().arg("--data-dir").arg(dir.path()).arg("integrations").output().unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(list.contains("TikTok Ads") && !list.contains("CQA0000001"), "{list}");
    let stats: Value = sandbox_stats(&sandbox.1);
    assert_eq!(stats["tiktok"]["requests"], 0);
}

/// `postback import` of something that cannot be read ends at once with exit 2, the line and
/// how much was queued before it (it used to repeat the read error forever on a directory).
#[test]
fn import_of_a_directory_is_an_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let out = postback().arg("--data-dir").arg(dir.path().join("data")).arg("import").arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is a directory"), "{err}");
}

fn write_events(dir: &Path, ids: &[&str]) -> std::path::PathBuf {
    let lines: Vec<String> =
        ids.iter().map(|id| PURCHASE.replace("\"e1\"", &format!("\"{id}\"")).replace('\n', " ")).collect();
    let path = dir.join("events.ndjson");
    std::fs::write(&path, lines.join("\n")).unwrap();
    path
}

/// Exactly one process delivers from a data directory: a second `serve` names the holder's pid
/// and exits; enqueueing and reading go on beside it; once the holder is gone, it can start.
#[test]
fn one_writer_per_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = write_events(dir.path(), &["w1", "w2"]);
    assert!(postback().arg("--data-dir").arg(&data).arg("integrations").output().unwrap().status.success());
    let mut first = serving(&data);
    let second = postback().arg("--data-dir").arg(&data).args(["serve", "--until-idle"]).output().unwrap();
    let _ = first.kill();
    let _ = first.wait();
    assert_eq!(second.status.code(), Some(1), "{}", String::from_utf8_lossy(&second.stderr));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains(&format!("pid {}", first.id())) && err.contains("postback serve"), "{err}");
    // Meanwhile enqueueing and reading worked beside the running one.
    let import = postback().arg("--data-dir").arg(&data).arg("import").arg(&file).output().unwrap();
    assert!(import.status.success(), "{}", String::from_utf8_lossy(&import.stderr));
    // The holder was killed: the OS released its lock and another serve takes it.
    let mut again = serving(&data);
    assert!(again.try_wait().unwrap().is_none(), "the second serve runs");
    let _ = again.kill();
    let _ = again.wait();
}

/// `postback serve` in the background, once it holds the data directory's writer lock.
fn serving(data: &Path) -> std::process::Child {
    let mut child = postback()
        .arg("--data-dir")
        .arg(data)
        .arg("serve")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let holder = format!("{}\n", child.id());
    for _ in 0..400 {
        if std::fs::read_to_string(data.join("postback.lock")).is_ok_and(|t| t.starts_with(&holder)) {
            return child;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("postback serve did not take the lock");
}

/// A request to the sandbox's control API over a plain loopback socket.
fn sandbox_post(base: &str, path: &str, body: &str) {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

/// Runs `postback` on the data directory `data`, with the sandbox's TikTok token in `QA_TOKEN`.
fn run_on(data: &std::path::Path, args: &[&str]) -> std::process::Output {
    postback().arg("--data-dir").arg(data).args(args).env("QA_TOKEN", postback::sandbox::TIKTOK_TOKEN).output().unwrap()
}

/// Connects TikTok (trigger `purchase`) of the demo game to the sandbox at `base_url`, validated
/// with a test code; returns the config id.
fn connect_tiktok(data: &std::path::Path, base_url: &str, pixel: &str) -> String {
    let connect = run_on(
        data,
        &[
            "connect",
            "--network",
            "tiktok",
            "--pixel",
            pixel,
            "--token-env",
            "QA_TOKEN",
            "--base-url",
            base_url,
            "--trigger",
            "purchase",
            "--game",
            "1",
            "--test-code",
            "TEST9",
        ],
    );
    assert!(connect.status.success(), "{}", String::from_utf8_lossy(&connect.stderr));
    stdout_json(&connect)["config_id"].as_i64().unwrap().to_string()
}

/// Given-up events come back with `postback replay` under their own ids (it prints how many);
/// replaying a delivered event is refused with exit 2; `disconnect` of a config whose events
/// still wait needs `--discard-queued`.
#[test]
fn replay_and_disconnect_say_what_they_do() {
    let sandbox = sandbox_process();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = |args: &[&str]| run_on(&data, args);
    let config_id = connect_tiktok(&data, &sandbox.1, "CQA0000002");
    let file = write_events(dir.path(), &["r1", "r2"]);
    assert_eq!(stdout_json(&run(&["import", file.to_str().unwrap()]))["enqueued"], 2);

    // Waiting events are not dropped silently.
    let refused = run(&["disconnect", "--config", &config_id]);
    assert_eq!(refused.status.code(), Some(2), "{}", String::from_utf8_lossy(&refused.stderr));
    let err: Value = serde_json::from_slice(&refused.stderr).unwrap();
    assert_eq!(err["error"]["code"], "queued_events");
    assert!(err["error"]["message"].as_str().unwrap().contains("2 conversions for TikTok Ads"), "{err}");

    // TikTok answers 503 for longer than the give-up budget: both are given up.
    sandbox_post(&sandbox.1, "/__sandbox/faults", r#"{"error_rate": 1.0, "status": 503}"#);
    let served = run(&["serve", "--until-idle", "--give-up-after", "1s"]);
    assert_eq!(stdout_json(&served)["given_up"], 2, "{}", String::from_utf8_lossy(&served.stderr));
    let pending = run(&["replay", "--config", &config_id, "--event-id", "nope"]);
    assert_eq!(pending.status.code(), Some(2));

    sandbox_post(&sandbox.1, "/__sandbox/faults", "{}");
    let replayed = run(&["replay", "--config", &config_id, "--since", "24h"]);
    assert_eq!(stdout_json(&replayed)["requeued"], 2);
    assert_eq!(stdout_json(&run(&["serve", "--until-idle"]))["success"], 2);
    assert_eq!(sandbox_stats(&sandbox.1)["tiktok"]["distinct_event_ids"], 2);

    let delivered = run(&["replay", "--config", &config_id, "--event-id", "r1"]);
    assert_eq!(delivered.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&delivered.stderr).contains("was delivered"));
    assert_eq!(run(&["replay", "--config", &config_id, "--since", "soon"]).status.code(), Some(2), "a bad span");
    assert!(run(&["disconnect", "--config", &config_id]).status.success(), "nothing waits any more");
}

/// `test-send` puts one event under the network's test code: the sandbox counts it as a test
/// event, not a live one; nothing is queued or logged, and the token never shows. A missing
/// config, a blank code and a skipped event are refused with the field to fix.
#[test]
fn test_send_shows_under_the_test_code_and_is_never_queued_or_logged() {
    let sandbox = sandbox_process();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = |args: &[&str]| run_on(&data, args);
    let config_id = connect_tiktok(&data, &sandbox.1, "CTST0000001");
    let before = sandbox_stats(&sandbox.1);
    let now = chrono::Utc::now().to_rfc3339();
    let event = dir.path().join("event.json");
    std::fs::write(&event, PURCHASE.replace("2026-11-20T10:15:30Z", &now)).unwrap();
    let event = event.to_str().unwrap();

    let sent = run(&["test-send", "--config", &config_id, "--event", event, "--test-code", "TESTQA7"]);
    assert!(sent.status.success(), "{}", String::from_utf8_lossy(&sent.stderr));
    let answer = stdout_json(&sent);
    assert_eq!((answer["accepted"].as_bool(), answer["http_status"].as_u64()), (Some(true), Some(200)), "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("Test Events"), "{answer}");
    assert_eq!(answer["request"]["body"]["test_event_code"], "TESTQA7");
    assert_eq!(answer["request"]["headers"]["access-token"], "<redacted>");
    assert!(!String::from_utf8_lossy(&sent.stdout).contains(postback::sandbox::TIKTOK_TOKEN));

    let after = sandbox_stats(&sandbox.1);
    let count = |stats: &Value, key: &str| stats["tiktok"][key].as_u64().unwrap_or(0);
    assert_eq!(count(&after, "test_events"), count(&before, "test_events") + 1, "{after}");
    assert_eq!(count(&after, "accepted"), count(&before, "accepted"), "a test send is not a live conversion");
    let logged = run(&["log", "--format", "ndjson", "--since", "1h"]);
    assert!(logged.status.success() && logged.stdout.is_empty(), "{}", String::from_utf8_lossy(&logged.stdout));
    assert_eq!(stdout_json(&run(&["serve", "--until-idle"]))["success"], 0, "nothing was queued");

    let refused = |args: &[&str], field: &str| {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        let err: Value = serde_json::from_slice(&out.stderr).unwrap();
        assert_eq!(err["error"]["field"], field, "{err}");
    };
    refused(&["test-send", "--config", "999", "--event", event, "--test-code", "TESTQA7"], "config");
    refused(&["test-send", "--config", &config_id, "--event", event, "--test-code", " "], "test_code");
    let launch = dir.path().join("launch.json");
    std::fs::write(&launch, PURCHASE.replace("\"purchase\"", "\"game_launch\"")).unwrap();
    refused(&["test-send", "--config", &config_id, "--event", launch.to_str().unwrap(), "--test-code", "T1"], "event");
    assert_eq!(count(&sandbox_stats(&sandbox.1), "test_events"), count(&after, "test_events"), "refusals send nothing");
}

/// `quality` scores what was queued, from crafted events with known keys: TikTok weighs click id
/// 4, email 2, phone 2, external id 1, IP + user agent 1 (docs/CONTRACT.md); a re-sent event
/// and an event the config does not take count for nothing. After delivery it scores what the
/// network accepted: the event too old to send is not among them.
#[test]
fn quality_scores_the_keys_of_queued_then_delivered_conversions() {
    let sandbox = sandbox_process();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = |args: &[&str]| run_on(&data, args);
    let config_id: i64 = connect_tiktok(&data, &sandbox.1, "CQUAL000001").parse().unwrap();
    let now = chrono::Utc::now();
    let event = |id: &str, name: &str, consent: &str, extra: &str| {
        // q4 happened 60 days ago: queued, then failed as too old for TikTok (28 days).
        let days = if id == "q4" { 60 } else { 0 };
        let at = (now - chrono::Duration::days(days) - chrono::Duration::minutes(1)).to_rfc3339();
        format!(
            r#"{{"event_id": "{id}", "name": "{name}", "occurred_at": "{at}", "player_id": "p-{id}",
                "consent": "{consent}"{extra}}}"#
        )
        .replace('\n', " ")
    };
    let lines = [
        // click id, email, external id, IP + user agent
        event(
            "q1",
            "purchase",
            "full",
            r#", "click_ids": {"ttclid": "t1"}, "email": "A@x.io", "ip": "203.0.113.9", "user_agent": "UA/1""#,
        ),
        // click id, external id
        event("q2", "purchase", "full", r#", "click_ids": {"ttclid": "t2"}"#),
        // click id only: anonymous consent keeps the rest back
        event("q3", "purchase", "anonymous", r#", "click_ids": {"ttclid": "t3"}, "email": "b@x.io""#),
        // click id, phone, external id (TikTok takes no conversion without its click id)
        event("q4", "purchase", "full", r#", "click_ids": {"ttclid": "t4"}, "phone": "+1 415 555 2671""#),
        // not a trigger event of the config
        event("q5", "game_launch", "full", r#", "click_ids": {"ttclid": "t5"}"#),
    ];
    let file = dir.path().join("quality.ndjson");
    std::fs::write(&file, lines.join("\n")).unwrap();
    // The demo game's Reddit (2) and X (3) configs send to the app's sandbox, not running here:
    // switched off, they queue nothing and delivery can finish.
    for other in ["2", "3"] {
        assert_ne!(other, config_id.to_string());
        assert!(run(&["disable", "--config", other]).status.success());
    }
    assert_eq!(stdout_json(&run(&["import", file.to_str().unwrap()]))["events"], 5);
    std::fs::write(&file, &lines[0]).unwrap();
    assert_eq!(stdout_json(&run(&["import", file.to_str().unwrap()]))["enqueued"], 0, "q1 again: a duplicate");

    let out = run(&["quality", "--since", "1h"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let qualities = stdout_json(&out);
    let tiktok = qualities.as_array().unwrap().iter().find(|q| q["config_id"] == config_id).expect("the config");
    let overall = &tiktok["overall"];
    assert_eq!(overall["conversions"], 4, "{overall}");
    let shares: Vec<(String, f64)> = overall["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["key"].as_str().unwrap().to_owned(), k["share"].as_f64().unwrap()))
        .collect();
    let expected =
        [("click_id", 1.0), ("email", 0.25), ("phone", 0.25), ("external_id", 0.75), ("ip_and_user_agent", 0.25)];
    assert_eq!(shares, expected.map(|(k, s)| (k.to_owned(), s)));
    // (4·1 + 2·0.25 + 2·0.25 + 1·0.75 + 1·0.25) / 10 = 0.6; email and phone would add 1.5 each:
    // email comes first.
    assert_eq!(overall["score"], 6.0);
    assert_eq!(overall["fix"], "75 % of conversions carry no email: send email for players at full consent");
    let by_name = tiktok["by_name"].as_array().unwrap();
    assert_eq!(by_name.len(), 1, "only purchases were queued: {by_name:?}");
    assert_eq!((&by_name[0]["name"], &by_name[0]["quality"]["score"]), (&Value::from("purchase"), &Value::from(6.0)));
    assert_eq!(tiktok["delivered"]["conversions"], 0, "nothing delivered yet");

    run(&["serve", "--until-idle"]);
    let qualities = stdout_json(&run(&["quality", "--since", "1h"]));
    let tiktok = qualities.as_array().unwrap().iter().find(|q| q["config_id"] == config_id).expect("the config");
    assert_eq!(tiktok["overall"]["score"], 6.0, "what was queued stays");
    let delivered = &tiktok["delivered"];
    // q1–q3 accepted: click 3/3, email 1/3, phone 0, external id 2/3, IP + UA 1/3:
    // (4 + 2/3 + 2/3 + 1/3) / 10 = 0.567.
    assert_eq!(delivered["conversions"], 3, "{delivered}");
    assert_eq!(delivered["score"], 5.7);
    assert_eq!(delivered["fix"], "100 % of conversions carry no phone number: send the phone number (with its country code) for players at full consent");
    assert_eq!(tiktok["delivered_by_name"][0]["name"], "purchase");

    let refused = run(&["quality", "--game", "77"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("postback games"), "a missing game names the fix");
}

/// `freshness` reads the delays from event to acceptance of what was delivered: events
/// imported 40 s, 25 min and 2 h after they happened fall in the buckets below 1 min, 30 min and
/// 3 h; one older than TikTok's 28-day window is counted as expired, not delivered.
#[test]
fn freshness_gives_the_delay_quantiles_and_the_expired() {
    let sandbox = sandbox_process();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = |args: &[&str]| run_on(&data, args);
    let config_id: i64 = connect_tiktok(&data, &sandbox.1, "CFRESH00001").parse().unwrap();
    let now = chrono::Utc::now();
    let ago = [40, 40, 40, 40, 40, 25 * 60, 2 * 3600, 2 * 3600, 30 * 86_400];
    let lines: Vec<String> = ago
        .iter()
        .enumerate()
        .map(|(i, secs)| {
            let at = (now - chrono::Duration::seconds(*secs)).to_rfc3339();
            format!(
                r#"{{"event_id": "f{i}", "name": "purchase", "occurred_at": "{at}", "player_id": "p{i}", "consent": "full", "click_ids": {{"ttclid": "t{i}"}}}}"#
            )
        })
        .collect();
    let file = dir.path().join("fresh.ndjson");
    std::fs::write(&file, lines.join("\n")).unwrap();
    assert_eq!(stdout_json(&run(&["import", file.to_str().unwrap()]))["events"], 9);
    run(&["serve", "--until-idle"]);

    let out = run(&["freshness", "--since", "1h"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let all = stdout_json(&out);
    let tiktok = all.as_array().unwrap().iter().find(|f| f["config_id"] == config_id).expect("the config");
    assert_eq!(tiktok["delivered"], 8, "{tiktok}");
    // Sorted delays: five below 60 s, one below 30 min, two below 3 h. The 4th is below 60 s;
    // the 8th (95 % of 8, rounded up) below 3 h.
    assert_eq!((tiktok["p50_within_secs"].as_i64(), tiktok["p95_within_secs"].as_i64()), (Some(60), Some(10_800)));
    assert_eq!(tiktok["expired"], serde_json::json!([["too_old", 1]]));
}

/// `postback log` prints the rows the log page shows (table, CSV, NDJSON) and `--show` a row's
/// drill-down; the tokens never appear.
#[test]
fn log_prints_the_delivery_log() {
    let sandbox = sandbox_process();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = |args: &[&str]| run_on(&data, args);
    connect_tiktok(&data, &sandbox.1, "CLOG0000001");
    let file = write_events(dir.path(), &["l1", "l2"]);
    assert_eq!(stdout_json(&run(&["import", file.to_str().unwrap()]))["enqueued"], 2);
    assert_eq!(stdout_json(&run(&["serve", "--until-idle"]))["success"], 2);

    let table = run(&["log", "--since", "1h"]);
    assert!(table.status.success(), "{}", String::from_utf8_lossy(&table.stderr));
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.starts_with("ID") && text.contains("success") && text.contains("l1") && text.contains("l2"), "{text}");

    let csv = run(&["log", "--format", "csv", "--status", "success"]);
    let csv = String::from_utf8_lossy(&csv.stdout);
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.lines().skip(1).all(|l| l.contains(",success,")));
    let none = run(&["log", "--format", "ndjson", "--status", "failed"]);
    assert!(none.status.success() && none.stdout.is_empty());
    assert_eq!(run(&["log", "--status", "lost"]).status.code(), Some(2), "a bad status is refused");

    let id = text.lines().nth(1).and_then(|l| l.split_whitespace().next()).unwrap().to_owned();
    let shown = run(&["log", "--show", &id]);
    let detail: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(detail["request"]["headers"]["access-token"], "<redacted>");
    assert!(detail["explanation"]["summary"].as_str().unwrap().starts_with("Delivered"));
    assert!(!String::from_utf8_lossy(&shown.stdout).contains(postback::sandbox::TIKTOK_TOKEN));
}

/// `serve --ingest` refuses a non-loopback address without TLS; behind a TLS proxy it takes `postback demo`'s
/// events (token from `POSTBACK_INGEST_TOKEN`), and a CSV file imports from the command line.
#[test]
fn serve_ingest_takes_the_demo_and_import_reads_csv() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let refused = postback()
        .arg("--data-dir")
        .arg(&data)
        .args(["serve", "--ingest", "0.0.0.0:47820"])
        .env("POSTBACK_INGEST_TOKEN", "pbd_cli_token")
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1), "{}", String::from_utf8_lossy(&refused.stderr));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("not a loopback address")
            && String::from_utf8_lossy(&refused.stderr).contains("--tls-cert"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut serve = SandboxProcess(
        postback()
            .arg("--data-dir")
            .arg(&data)
            // All addresses, plain HTTP: as behind a TLS-terminating proxy (the only way
            // without a certificate); the test's requests stay on loopback.
            .args(["serve", "--ingest", &format!("0.0.0.0:{port}"), "--behind-tls-proxy"])
            .env("POSTBACK_INGEST_TOKEN", "pbd_cli_token")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
        String::new(),
    );
    let up = (0..200).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(up, "the ingest did not start");
    let demo = postback()
        .arg("--data-dir")
        .arg(&data)
        .args(["demo", "--rate", "50/s", "--for", "2s", "--seed", "3", "--ingest", &format!("http://127.0.0.1:{port}")])
        .env("POSTBACK_INGEST_TOKEN", "pbd_cli_token")
        .output()
        .unwrap();
    assert!(demo.status.success(), "{}", String::from_utf8_lossy(&demo.stderr));
    let stats = stdout_json(&demo);
    assert!(stats["sent"].as_u64().unwrap() >= 90, "{stats}");
    assert_eq!(stats["accepted"], stats["sent"], "{stats}");
    let wrong = postback()
        .arg("--data-dir")
        .arg(&data)
        .args(["demo", "--for", "1s", "--ingest", &format!("http://127.0.0.1:{port}")])
        .env("POSTBACK_INGEST_TOKEN", "pbd_not_it")
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("401"), "{}", String::from_utf8_lossy(&wrong.stderr));
    let _ = serve.0.kill();
    let _ = serve.0.wait();

    let csv = dir.path().join("events.csv");
    std::fs::write(
        &csv,
        "event_id,name,occurred_at,player_id,consent,click_ids.ttclid\n\
         c1,purchase,2026-11-30T10:00:00Z,p1,full,tt\n\
         c2,purchase,2026-11-30T10:00:00Z,,full,tt\n",
    )
    .unwrap();
    let out = postback().arg("--data-dir").arg(&data).arg("import").arg(&csv).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 3: player_id"), "{stderr}");
    assert_eq!(stdout_json(&out)["events"], 1, "{stderr}");
}

/// `postback games` sets and clears a game's default country for phone numbers (a bad code is
/// exit 2 naming the field), and `postback preview --default-country` stands in for the game.
#[test]
fn games_default_country_and_preview_with_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = |args: &[&str]| postback().arg("--data-dir").arg(&data).args(args).output().unwrap();
    let game = stdout_json(&run(&["games", "create", "Phones", "--default-country", "us"]));
    assert_eq!(game["default_country"], "US");
    let id = game["id"].as_i64().unwrap().to_string();
    let refused = run(&["games", "default-country", &id, "UK"]);
    assert_eq!(refused.status.code(), Some(2), "{}", String::from_utf8_lossy(&refused.stderr));
    let err: Value = serde_json::from_slice(&refused.stderr).unwrap();
    assert_eq!(err["error"]["field"], "default_country", "{err}");
    assert_eq!(stdout_json(&run(&["games", "default-country", &id, "gb"]))["default_country"], "GB");
    let listed = stdout_json(&run(&["games", "list"]));
    let phones = listed.as_array().unwrap().iter().find(|g| g["name"] == "Phones").unwrap().clone();
    assert_eq!(phones["default_country"], "GB");
    assert_eq!(stdout_json(&run(&["games", "default-country", &id, "--clear"]))["default_country"], Value::Null);
    assert_eq!(run(&["games", "default-country", &id]).status.code(), Some(2), "a code or --clear");

    let x = r#"{"network": "x", "pixel_id": "oka17", "goals": [{"id": "g", "name": "Purchase", "event": "purchase",
        "active": true, "event_tag": "tw-oka17-ol288"}]}"#;
    let national = PURCHASE.replace(r#""click_ids": {"ttclid": "t"}"#, r#""phone": "(650) 555-1212 x450""#);
    let skipped = stdout_json(&preview(dir.path(), x, &national));
    assert_eq!(skipped["skipped"]["reason"], "no_identifier", "{skipped}");
    assert!(skipped["skipped"]["message"].as_str().unwrap().contains("no default country"), "{skipped}");
    let with_country = |code: &str| {
        postback()
            .arg("--data-dir")
            .arg(&data)
            .args(["preview", "--default-country", code, "--config"])
            .arg(dir.path().join("c.json"))
            .arg("--event")
            .arg(dir.path().join("e.json"))
            .output()
            .unwrap()
    };
    let sent = stdout_json(&with_country("US"));
    assert_eq!(
        sent["requests"][0]["body"]["conversions"][0]["identifiers"][0]["hashed_phone_number"],
        postback::identity::sha256_hex("+16505551212"),
        "{sent}"
    );
    let bad = with_country("UK");
    assert_eq!(bad.status.code(), Some(2));
    let err: Value = serde_json::from_slice(&bad.stderr).unwrap();
    assert_eq!(err["error"]["field"], "default_country", "{err}");
}

#[test]
fn games_live_in_the_postgresql_database_given_by_flag_or_variable() {
    let url = tokio::runtime::Runtime::new().unwrap().block_on(engines::fresh_database());
    let (data, other) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let created = postback()
        .arg("--data-dir")
        .arg(data.path())
        .args(["--database", &url, "games", "create", "Team Game"])
        .output()
        .unwrap();
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    // Another data directory (another machine) sees it through the variable.
    let listed = postback()
        .arg("--data-dir")
        .arg(other.path())
        .env("POSTBACK_DATABASE_URL", &url)
        .args(["games", "list"])
        .output()
        .unwrap();
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("Team Game"),
        "{}",
        String::from_utf8_lossy(&listed.stdout)
    );
    for dir in [data.path(), other.path()] {
        assert!(!dir.join("postback.db").exists(), "a SQLite file was made beside a PostgreSQL workspace");
    }
    // A worker needs the team workspace's key file, which `workspace init` writes.
    let worker = |key: &Path| {
        postback()
            .arg("--data-dir")
            .arg(data.path())
            .args(["--database", &url, "serve", "--until-idle"])
            .env("POSTBACK_WORKSPACE_KEY", key)
            .output()
            .unwrap()
    };
    let key = data.path().join("workspace.key");
    let refused = postback()
        .args(["--database", &url, "serve", "--until-idle"])
        .arg("--data-dir")
        .arg(data.path())
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("needs its key file"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let uninitialised = worker(&other.path().join("none.key"));
    assert!(
        String::from_utf8_lossy(&uninitialised.stderr).contains("workspace init"),
        "{}",
        String::from_utf8_lossy(&uninitialised.stderr)
    );
    let init = postback().args(["--database", &url, "workspace", "init", "--key-file"]).arg(&key).output().unwrap();
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    // Nothing is queued, so an idle run ends at once.
    let serve = worker(&key);
    assert!(serve.status.success(), "{}", String::from_utf8_lossy(&serve.stderr));
    assert!(!data.path().join("postback.db").exists());
}

/// The flags a deployment file passes to `postback serve`, each one `serve --help` lists.
fn assert_serve_takes(flags: &[&str], source: &str) {
    let help = postback().args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    // The options `serve --help` lists, as whole words (`--tls-cert`, not a prefix of one).
    let taken: Vec<&str> = help
        .split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']' || c == '=')
        .filter(|w| w.starts_with("--"))
        .collect();
    for flag in flags.iter().filter(|f| f.starts_with("--")) {
        assert!(taken.contains(flag), "{source} passes {flag}, which `postback serve` does not take");
    }
}

/// The worker's systemd unit is one systemd accepts, and its command line is this binary's.
#[test]
fn the_deployable_worker_files_match_the_binary() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let unit = std::fs::read_to_string(root.join("deploy/postback-worker.service")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("postback-worker.service");
    std::fs::write(&local, unit.replace("/usr/local/bin/postback", env!("CARGO_BIN_EXE_postback"))).unwrap();
    let verified = Command::new("systemd-analyze").arg("verify").arg(&local).output().expect("systemd-analyze");
    assert!(verified.status.success() && verified.stderr.is_empty(), "{}", String::from_utf8_lossy(&verified.stderr));
    let exec = unit.lines().find_map(|l| l.strip_prefix("ExecStart=")).expect("ExecStart");
    assert_serve_takes(&exec.split_whitespace().collect::<Vec<_>>(), "the systemd unit");

    let dockerfile = std::fs::read_to_string(root.join("deploy/Dockerfile")).unwrap();
    let cmd = dockerfile.lines().find_map(|l| l.strip_prefix("CMD ")).expect("CMD");
    let cmd: Vec<String> = serde_json::from_str(cmd).expect("CMD in JSON form");
    assert_eq!(cmd[0], "serve");
    assert_serve_takes(&cmd.iter().map(String::as_str).collect::<Vec<_>>(), "the Dockerfile");
}
