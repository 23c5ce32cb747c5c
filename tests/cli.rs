//! The `postback` binary as a user runs it.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

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
