//! The sandbox against what a web page the user visits could send it, over real loopback HTTP:
//! a cross-site `text/plain` POST to its control routes, and requests under a rebound host name.
//! And the app's own sandbox when its port is taken.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use postback::model::Network;
use postback::sandbox::{self, Faults, RunningSandbox};
use serde_json::Value;

/// One HTTP/1.1 exchange over a plain socket (so the `Host` header is exactly ours).
async fn raw(addr: SocketAddr, request: String) -> (u16, Value) {
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        stream.write_all(request.as_bytes()).expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        let status = response.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    })
    .await
    .expect("request thread")
}

fn request(method: &str, path: &str, host: &str, content_type: Option<&str>, body: &str) -> String {
    let content_type = content_type.map(|t| format!("Content-Type: {t}\r\n")).unwrap_or_default();
    format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{content_type}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

async fn sandbox() -> RunningSandbox {
    sandbox::start(SocketAddr::from(([127, 0, 0, 1], 0))).await.expect("sandbox starts")
}

/// What a page can post cross-site without a CORS preflight: 20 s of latency and a revoked token.
const HOSTILE_FAULTS: &str = r#"{"latency_ms": 20000, "revoked_tokens": ["sandbox-tiktok-token"]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_changes_need_json() {
    let sandbox = sandbox().await;
    let host = sandbox.addr.to_string();
    for content_type in [Some("text/plain"), Some("application/x-www-form-urlencoded"), None] {
        let (status, body) =
            raw(sandbox.addr, request("POST", "/__sandbox/faults", &host, content_type, HOSTILE_FAULTS)).await;
        assert_eq!(status, 415, "{content_type:?}: {body}");
        assert!(body["error"].as_str().is_some_and(|e| e.contains("application/json")), "{body}");
    }
    assert_eq!(sandbox.state.faults(), Faults::default(), "nothing a page posted took effect");

    // A reset posted as text keeps the faults set by the tests' own (JSON) call.
    let ours = Faults { latency_ms: 5, ..Faults::default() };
    sandbox.state.set_faults(ours.clone());
    let (status, _) = raw(sandbox.addr, request("POST", "/__sandbox/reset", &host, Some("text/plain"), "{}")).await;
    assert_eq!(status, 415);
    assert_eq!(sandbox.state.faults(), ours);

    // JSON (with parameters, any case) still works: the app, the CLI tests and e2e send it.
    let json = Some("Application/JSON; charset=utf-8");
    let (status, body) = raw(sandbox.addr, request("POST", "/__sandbox/faults", &host, json, HOSTILE_FAULTS)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(sandbox.state.faults().latency_ms, 20000);
    let (status, _) = raw(sandbox.addr, request("POST", "/__sandbox/reset", &host, json, "{}")).await;
    assert_eq!(status, 200);
    assert_eq!(sandbox.state.faults(), Faults::default());
    sandbox.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_loopback_hosts_are_answered() {
    let sandbox = sandbox().await;
    let port = sandbox.addr.port();
    let json = Some("application/json");
    let tiktok = r#"{"event_source": "web", "event_source_id": "CSANDBOX0000000000001", "data": []}"#;
    for host in ["evil.example", &format!("evil.example:{port}"), &format!("127.0.0.1.evil.example:{port}")] {
        for (method, path, content_type, body) in [
            ("GET", "/__sandbox/stats", None, ""),
            ("GET", "/__sandbox/pixels", None, ""),
            ("POST", "/__sandbox/faults", json, HOSTILE_FAULTS),
            ("POST", "/__sandbox/reset", json, "{}"),
            ("POST", "/open_api/v1.3/event/track/", json, tiktok),
            ("GET", "/12/accounts", None, ""),
        ] {
            let (status, answer) = raw(sandbox.addr, request(method, path, host, content_type, body)).await;
            assert_eq!(status, 421, "{method} {path} under {host}: {answer}");
            assert!(answer["error"].as_str().is_some_and(|e| e.contains("127.0.0.1, localhost or [::1]")), "{answer}");
        }
    }
    // HTTP/1.0 without any Host is refused as well.
    let (status, _) = raw(sandbox.addr, "GET /__sandbox/stats HTTP/1.0\r\n\r\n".into()).await;
    assert_eq!(status, 421);
    assert_eq!(sandbox.state.faults(), Faults::default());
    assert_eq!(sandbox.state.stats().get(&Network::TikTok).map_or(0, |s| s.requests), 0, "no route ran");

    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}"), format!("[::1]:{port}"), "localhost".into()]
    {
        let (status, answer) = raw(sandbox.addr, request("GET", "/__sandbox/faults", &host, None, "")).await;
        assert_eq!(status, 200, "{host}: {answer}");
    }
    sandbox.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_marker_resolves_to_the_local_sandbox_when_its_port_is_taken() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("occupy a port");
    let preferred = taken.local_addr().expect("addr");
    let local = sandbox::start_local(preferred).await.expect("starts on another port");
    assert_ne!(local.running.addr, preferred);
    let notice = local.notice.clone().expect("says why");
    assert!(notice.contains(&preferred.port().to_string()) && notice.contains(&local.running.base_url), "{notice}");
    assert_eq!(sandbox::local_base_url().as_deref(), Some(local.running.base_url.as_str()));

    let marker = postback::sandbox_base_url();
    let path = "/open_api/v1.3/event/track/";
    assert_eq!(sandbox::resolve(&format!("{marker}{path}")), format!("{}{path}", local.running.base_url));
    // Only the marker itself: other URLs, and a longer port that starts alike, stay as they are.
    let longer_port = format!("{marker}0/x");
    for other in ["https://business-api.tiktok.com/open_api/v1.3/event/track/", longer_port.as_str()] {
        assert_eq!(sandbox::resolve(other), other);
    }
}
