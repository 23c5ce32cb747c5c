//! The `postback` binary as a user runs it.

use std::process::Command;

use serde_json::Value;

fn postback() -> Command {
    Command::new(env!("CARGO_BIN_EXE_postback"))
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn preview_prints_the_request_with_credentials_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "c.json",
        r#"{"network": "tiktok", "pixel_code": "CABCD1234EFGH", "trigger_events": ["purchase"]}"#,
    );
    let event = write(
        dir.path(),
        "e.json",
        r#"{"event_id": "e1", "name": "purchase", "occurred_at": "2026-11-20T10:15:30Z",
        "player_id": "p", "consent": "full", "click_ids": {"ttclid": "t"}}"#,
    );
    let out = postback().args(["preview", "--config"]).arg(&config).arg("--event").arg(&event).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let request = &doc["requests"][0];
    assert_eq!(request["method"], "POST");
    assert_eq!(request["headers"]["access-token"], "<redacted>");
    assert_eq!(request["headers"]["content-type"], "application/json");
    assert_eq!(request["body"]["data"][0]["event_id"], "e1");
}

#[test]
fn preview_reports_a_skip_with_reason_and_message() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "c.json",
        r#"{"network": "reddit", "pixel_id": "a2_abc", "trigger_events": ["game_launch"]}"#,
    );
    let event = write(
        dir.path(),
        "e.json",
        r#"{"event_id": "e1", "name": "purchase", "occurred_at": "2026-11-20T10:15:30Z",
        "player_id": "p", "consent": "full"}"#,
    );
    let out = postback().args(["preview", "--config"]).arg(&config).arg("--event").arg(&event).output().unwrap();
    assert!(out.status.success());
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["skipped"]["reason"], "event_not_triggered");
    assert!(doc["skipped"]["message"].as_str().unwrap().contains("purchase"));
}

#[test]
fn invalid_input_exits_2_with_a_field_error_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let event = write(
        dir.path(),
        "e.json",
        r#"{"event_id": "e1", "name": "purchase", "occurred_at": "2026-11-20T10:15:30Z",
        "player_id": "p", "consent": "full"}"#,
    );
    let cases = [
        (r#"{"network": "reddit", "pixel_id": "abcd", "trigger_events": []}"#, "pixel_id"),
        (r#"{"network": "snapchat"}"#, "network"),
        (
            r#"{"network": "x", "pixel_id": "oka17", "goals": [{"id": "g", "event": "purchase", "event_tag": "tw-x"}]}"#,
            "goals.0.event_tag",
        ),
        ("{not json", "config"),
    ];
    for (config_text, field) in cases {
        let config = write(dir.path(), "c.json", config_text);
        let out = postback().args(["preview", "--config"]).arg(&config).arg("--event").arg(&event).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{config_text}");
        assert!(out.stdout.is_empty());
        let doc: Value = serde_json::from_slice(&out.stderr).unwrap();
        assert_eq!(doc["error"]["field"], field, "{config_text}");
        assert!(!doc["error"]["message"].as_str().unwrap().is_empty());
    }
    let missing =
        postback().args(["preview", "--config", "/nonexistent.json", "--event"]).arg(&event).output().unwrap();
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
    let config = write(
        dir.path(),
        "c.json",
        r#"{"network": "tiktok", "pixel_code": "CABCD1234EFGH", "trigger_events": ["purchase"]}"#,
    );
    let event = write(
        dir.path(),
        "e.json",
        r#"{"event_id": "e1", "name": "purchase", "occurred_at": "2026-11-20T10:15:30Z",
        "player_id": "gone", "consent": "full", "click_ids": {"ttclid": "t"}}"#,
    );
    let data = dir.path().join("data");
    let preview = |data: &std::path::Path| {
        let out = postback()
            .arg("--data-dir")
            .arg(data)
            .args(["preview", "--config"])
            .arg(&config)
            .arg("--event")
            .arg(&event)
            .output()
            .unwrap();
        assert!(out.status.success());
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    assert!(preview(&data)["requests"].is_array());
    assert!(!data.join("postback.db").exists(), "preview never creates a database");
    let erase = postback().arg("--data-dir").arg(&data).args(["erase", "--player", "gone"]).output().unwrap();
    assert!(erase.status.success(), "{}", String::from_utf8_lossy(&erase.stderr));
    assert_eq!(preview(&data)["skipped"]["reason"], "player_erased");
}
