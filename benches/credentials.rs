//! What credentials cost on the hot path and at save time:
//! - OAuth 1.0a signing of one X conversions request (done per request);
//! - a keychain read on the real Secret Service (done per dispatcher turn per config; needs a
//!   session bus: `bash scripts/with-keyring.sh cargo bench --bench credentials`);
//! - save-time validation against the sandbox over loopback (one test event, end to end).

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use postback::connect::validate;
use postback::delivery::{http_client, Credential, Credentials};
use postback::model::{Network, PostbackConfig, TikTokConfig};
use postback::oauth::signature::Signer;
use postback::secrets::{new_credential_ref, Keychain, Secret, SecretStore, StoredCredential};

fn percentiles(mut ms: Vec<f64>) -> String {
    ms.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q) as usize];
    format!("p50 {:.3} ms, p95 {:.3} ms, max {:.3} ms", at(0.5), at(0.95), at(1.0))
}

fn main() {
    let signer = Signer::X_DOCS_EXAMPLE;
    let url = "https://ads-api.x.com/12/measurement/conversions/oka17";
    let n = 200_000;
    let started = Instant::now();
    for _ in 0..n {
        black_box(signer.header_now("POST", black_box(url), &[], &[]).expect("signs"));
    }
    let per = started.elapsed().as_secs_f64() / n as f64;
    println!("oauth1 sign: {:.2} µs per request ({:.0} requests/s on one core)", per * 1e6, 1.0 / per);

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let keychain = Keychain::system();
        match keychain.check() {
            Err(e) => println!("keychain: skipped ({e}); run under scripts/with-keyring.sh"),
            Ok(()) => {
                let keychain = Arc::new(keychain);
                let reference = new_credential_ref(Network::TikTok, 0);
                let value = StoredCredential::Token(Secret::new("bench-token")).to_keychain_value();
                let mut writes = Vec::new();
                for _ in 0..50 {
                    let t = Instant::now();
                    keychain.set(&reference, &value).expect("set");
                    writes.push(t.elapsed().as_secs_f64() * 1e3);
                }
                let credentials = Credentials::new(keychain.clone());
                let mut reads = Vec::new();
                for _ in 0..500 {
                    let t = Instant::now();
                    black_box(credentials.credential(Network::TikTok, Some(&reference)).await.expect("read"));
                    reads.push(t.elapsed().as_secs_f64() * 1e3);
                }
                keychain.delete(&reference).expect("delete");
                println!("keychain write (Secret Service): {}", percentiles(writes));
                println!("keychain read as the dispatcher does it: {}", percentiles(reads));
            }
        }

        let sandbox = postback::sandbox::start(SocketAddr::from(([127, 0, 0, 1], 0))).await.expect("sandbox");
        let config = PostbackConfig::TikTok(TikTokConfig {
            pixel_code: "CBENCH0001".into(),
            trigger_events: vec!["purchase".into()],
            test_event_code: Some("TEST1".into()),
            base_url: Some(sandbox.base_url.clone()),
        });
        let http = http_client(std::time::Duration::from_secs(10)).expect("HTTP client");
        let credential = Credential::Token(Secret::new(postback::sandbox::TIKTOK_TOKEN));
        let mut checks = Vec::new();
        for _ in 0..200 {
            let t = Instant::now();
            validate(&http, &config, &credential).await.expect("accepted");
            checks.push(t.elapsed().as_secs_f64() * 1e3);
        }
        println!("save-time validation against the sandbox (loopback): {}", percentiles(checks));
        sandbox.stop().await;
    });
}
