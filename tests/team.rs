//! The team workspace on the throwaway PostgreSQL cluster (scripts/with-postgres.sh): its key
//! pair, credentials sealed by a desktop and opened only by workers, a database dump with no
//! secret in clear, and a worker process serving the ingest over HTTPS.

mod browser;
mod engines;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use browser::{Choice, ScriptedBrowser};
use postback::connect::{Connector, XAuthMethod};
use postback::delivery::{now_ms, Credentials, Dispatcher, DispatcherOptions};
use postback::sandbox::oauth::{X_CONSUMER_KEY, X_CONSUMER_SECRET};
use postback::sandbox::{self, Faults, RunningSandbox};
use postback::secrets::{self, Secret, SecretsError, StoredCredential};
use postback::store::{Store, StoreOptions};
use postback::team::{self, SealedSecrets, TeamError, WorkspaceKey};
use serde_json::{json, Value};

async fn sandbox() -> RunningSandbox {
    sandbox::start(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap()
}

/// A fresh database of the test cluster made a team workspace, its key file in `dir`.
async fn team_workspace(dir: &Path) -> (String, Store, PathBuf) {
    let url = engines::fresh_database().await;
    let store = Store::open_postgres(&url, StoreOptions::default()).await.unwrap();
    let key = dir.join("workspace.key");
    team::init(&store, &key).await.unwrap();
    (url, store, key)
}

fn pg_dump(url: &str) -> Vec<u8> {
    let bin = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's binaries (scripts/setup.sh --test installs them)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin/pg_dump")))
        .filter(|p| p.exists())
        .max()
        .expect("pg_dump");
    let out = Command::new(bin).arg("--dbname").arg(url).output().expect("pg_dump runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workspace_key_is_made_once_and_opens_only_its_own_workspace() {
    let dir = tempfile::tempdir().unwrap();
    let (_, store, key) = team_workspace(dir.path()).await;
    let written = std::fs::read(&key).unwrap();
    match team::init(&store, &dir.path().join("second.key")).await {
        Err(TeamError::AlreadyInitialised(_)) => {}
        other => panic!("a second init must be refused, got {other:?}"),
    }
    assert!(!dir.path().join("second.key").exists(), "a refused init leaves no key file");
    assert_eq!(std::fs::read(&key).unwrap(), written);
    // A key file of another workspace is named as such, before anything is read with it.
    let foreign = dir.path().join("foreign.key");
    WorkspaceKey::generate().write_new_file(&foreign).unwrap();
    match SealedSecrets::open(store.clone(), Some(WorkspaceKey::read_file(&foreign).unwrap())).await {
        Err(TeamError::WrongKey { .. }) => {}
        other => panic!("expected WrongKey, got {:?}", other.map(|_| ())),
    }
    // A local (SQLite) workspace is not a team workspace.
    let local = Store::open_with(dir.path(), engines::options()).await.unwrap();
    assert!(matches!(team::init(&local, &dir.path().join("local.key")).await, Err(TeamError::NotTeam)));
}

/// Connects TikTok and Reddit with tokens and X by OAuth 1.0a from a "desktop" (no key file),
/// rotates the ingest token, then: the desktop cannot read a credential back, a worker with the
/// key file delivers with them, and a dump of the database holds none of them in clear.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_sealed_by_a_desktop_open_only_on_workers_and_never_show_in_a_dump() {
    let sb = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let (url, store, key) = team_workspace(dir.path()).await;
    let game = store.create_game("Team Game").await.unwrap().id;
    let desktop_secrets = Arc::new(SealedSecrets::open(store.clone(), None).await.unwrap());
    assert!(!desktop_secrets.opens());
    let desktop = Connector::new(store.clone(), Arc::new(Credentials::new(desktop_secrets.clone())))
        .with_sandbox_url(&sb.base_url);
    let [tiktok, reddit, _] = sandbox::demo_configs(&sb.base_url, &["purchase"], Vec::new());
    desktop.save_with_token(game, tiktok, &Secret::new(sandbox::TIKTOK_TOKEN)).await.expect("TikTok saved");
    desktop.save_with_token(game, reddit, &Secret::new(sandbox::REDDIT_TOKEN)).await.expect("Reddit saved");
    let method = XAuthMethod::OAuth1 { consumer_key: X_CONSUMER_KEY.into(), consumer_secret: X_CONSUMER_SECRET.into() };
    let browser = ScriptedBrowser::new(Choice::Approve);
    let handle =
        desktop.authorize_x(game, &method, true, &browser, Duration::from_secs(10)).await.expect("X signed in");
    desktop.finish_x(game, &handle, "sbx01").await.expect("X saved");
    let ingest_token = postback::ingest::token::rotate_shared(&store).await.unwrap();

    let configs = store.configs(game).await.unwrap();
    assert_eq!(configs.len(), 3);
    let worker_secrets =
        Arc::new(SealedSecrets::open(store.clone(), Some(WorkspaceKey::read_file(&key).unwrap())).await.unwrap());
    let worker = Arc::new(Credentials::new(worker_secrets));
    let mut secrets_in_use = vec![ingest_token.expose().to_owned()];
    for config in &configs {
        let reference = config.credential_ref.clone().expect("a sealed credential");
        let asked = reference.clone();
        let read_back = secrets::blocking(desktop_secrets.clone(), move |k| k.get(&asked)).await;
        assert_eq!(read_back, Err(SecretsError::SealedForWorkers), "the desktop never reads a credential back");
        match worker.stored(&reference).await.expect("the worker opens it") {
            StoredCredential::Token(token) => secrets_in_use.push(token.expose().to_owned()),
            StoredCredential::XOAuth1(c) => {
                assert_eq!(c.consumer_secret.expose(), X_CONSUMER_SECRET);
                secrets_in_use.extend([c.consumer_secret.expose().to_owned(), c.token_secret.expose().to_owned()]);
            }
            other => panic!("unexpected credential {other:?}"),
        }
    }
    assert!(secrets_in_use.contains(&sandbox::TIKTOK_TOKEN.to_owned()));
    assert!(secrets_in_use.contains(&sandbox::REDDIT_TOKEN.to_owned()));

    let line = json!({"event_id": "team-1", "name": "purchase", "occurred_at": chrono::Utc::now().to_rfc3339(),
                      "player_id": "p1", "consent": "full", "click_ids": {"ttclid": "t", "rdt_cid": "r"}})
    .to_string();
    postback::ingest::import_ndjson(&store, game, line.as_bytes(), now_ms()).await.unwrap();
    let report =
        Dispatcher::new(store.clone(), worker.clone(), DispatcherOptions::default()).run_until_idle().await.unwrap();
    assert_eq!(report.success, 2, "{report:?}");

    let dump = pg_dump(&url);
    assert!(contains(&dump, "sealed_secrets"), "the dump holds the sealed credentials table");
    for secret in &secrets_in_use {
        assert!(!contains(&dump, secret), "a secret is in clear in the dump: {}…", &secret[..4]);
        // pg_dump writes BYTEA columns (the sealed credentials) in hex.
        assert!(!contains(&dump, &hex::encode(secret)), "a secret is in clear in a BYTEA column: {}…", &secret[..4]);
    }
    store.close().await;
}

/// A worker of the team workspace at `url`.
fn worker(url: &str, key: &Path, data: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_postback"));
    command
        .args(["--database", url, "--data-dir"])
        .arg(data)
        .arg("--key-file")
        .arg(key)
        .arg("serve")
        .args(["--retry-base", "100ms"])
        .args(extra)
        .env_remove("POSTBACK_INGEST_TOKEN");
    command
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cli(url: &str, data: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_postback"));
    command.args(["--database", url, "--data-dir"]).arg(data).args(args).env_remove("POSTBACK_WORKSPACE_KEY");
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().unwrap();
    assert!(out.status.success(), "postback {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// A certificate for 127.0.0.1 and its key, as PEM files in `dir`.
fn certificate(dir: &Path) -> (PathBuf, PathBuf, String) {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.join("ingest.crt"), dir.join("ingest.key"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    (cert, key, made.cert.pem())
}

async fn wait_for(what: &str, deadline: Duration, mut done: impl AsyncFnMut() -> bool) {
    let until = Instant::now() + deadline;
    while !done().await {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The production half end to end, in processes: a desktop connects TikTok by CLI (sealed), a
/// worker serves the ingest over HTTPS on all addresses, takes events posted with the
/// workspace's ingest token, delivers them, shows in `workspace status`, and follows a token
/// rotated from the desktop without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_takes_events_over_https_and_follows_a_rotation_without_restart() {
    let sb = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let (url, store, key) = team_workspace(dir.path()).await;
    let (desktop, server) = (dir.path().join("desktop"), dir.path().join("server"));
    let connect = |token: &str| {
        cli(
            &url,
            &desktop,
            &[
                "connect",
                "--network",
                "tiktok",
                "--pixel",
                "CTEAM00000001",
                "--token-env",
                "QA_TOKEN",
                "--trigger",
                "purchase",
                "--base-url",
                &sb.base_url,
            ],
            &[("QA_TOKEN", token)],
        )
    };
    connect(sandbox::TIKTOK_TOKEN);
    let token = String::from_utf8(cli(&url, &desktop, &["workspace", "ingest-token", "--rotate"], &[]).stdout).unwrap();
    let token = token.trim().to_owned();

    // Plain HTTP on a non-loopback address is refused, naming the flags that allow it.
    let port = free_port();
    let addr = format!("0.0.0.0:{port}");
    let plain = worker(&url, &key, &server, &["--ingest", &addr]).output().unwrap();
    assert_eq!(plain.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&plain.stderr).contains("--tls-cert"),
        "{}",
        String::from_utf8_lossy(&plain.stderr)
    );

    let (cert, cert_key, cert_pem) = certificate(dir.path());
    let log = std::fs::File::create(dir.path().join("worker.log")).unwrap();
    let _worker = Running(
        worker(&url, &key, &server, &["--ingest", &addr, "--tls-cert"])
            .arg(&cert)
            .arg("--tls-key")
            .arg(&cert_key)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let _ = rustls::crypto::ring::default_provider().install_default();
    let https = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let endpoint = format!("https://127.0.0.1:{port}/v1/events");
    let post = |id: &str, bearer: &str| {
        let body = json!({"event_id": id, "name": "purchase", "occurred_at": chrono::Utc::now().to_rfc3339(),
                          "player_id": "p1", "consent": "full", "click_ids": {"ttclid": "t"}});
        https
            .post(&endpoint)
            .bearer_auth(bearer)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };
    wait_for("the worker's HTTPS ingest", Duration::from_secs(20), async || {
        post("https-1", &token).await.is_ok_and(|r| r.status().is_success())
    })
    .await;
    assert_eq!(post("https-x", "pbd_wrong").await.unwrap().status(), 401);
    let plain_http = reqwest::Client::new().get(format!("http://127.0.0.1:{port}/v1/health")).send().await;
    assert!(plain_http.is_err() || !plain_http.unwrap().status().is_success(), "no plain HTTP on the TLS port");
    // The desktop's check sent one event of its own (no test code: a live one).
    let delivered = || sb.state.stats().get(&postback::model::Network::TikTok).map_or(0, |s| s.accepted);
    wait_for("the worker's first delivery", Duration::from_secs(20), async || delivered() >= 2).await;

    let status: Value =
        serde_json::from_slice(&cli(&url, &desktop, &["workspace", "status", "--json"], &[]).stdout).unwrap();
    assert_eq!(status["workers"][0]["live"], true, "{status}");
    assert_eq!(status["configs"][0]["network"], "tiktok", "{status}");
    assert!(status["configs"][0]["delivered_by"].as_str().is_some_and(|h| h.contains("pid")), "{status}");

    // The desktop rotates TikTok's token after the old one is revoked: the running worker's
    // next request uses the new one (the revoked one would pause the config).
    sb.state.set_faults(Faults { revoked_tokens: vec![sandbox::TIKTOK_TOKEN.to_owned()], ..Faults::default() });
    connect("sandbox-tiktok-token-2");
    let checked = delivered();
    assert!(post("https-2", &token).await.unwrap().status().is_success());
    wait_for("a delivery with the rotated token", Duration::from_secs(20), async || delivered() > checked).await;
    let config = store.configs(store.games().await.unwrap()[0].id).await.unwrap();
    assert!(config.iter().all(|c| c.paused_reason.is_none()), "{config:?}");

    // A rotated ingest token reaches the worker within its recheck, the old one stops.
    let rotated =
        String::from_utf8(cli(&url, &desktop, &["workspace", "ingest-token", "--rotate"], &[]).stdout).unwrap();
    wait_for("the rotated ingest token", Duration::from_secs(15), async || {
        post("https-3", rotated.trim()).await.is_ok_and(|r| r.status().is_success())
    })
    .await;
    assert_eq!(post("https-4", &token).await.unwrap().status(), 401);
    store.close().await;
}

/// A window on another machine follows the log a worker writes: each delivered batch arrives
/// through PostgreSQL's notification, without re-reading the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_elsewhere_sees_a_workers_deliveries_live() {
    let sb = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let (url, worker_store, _) = team_workspace(dir.path()).await;
    let game = worker_store.create_game("Live").await.unwrap().id;
    let [tiktok, ..] = sandbox::demo_configs(&sb.base_url, &["purchase"], Vec::new());
    worker_store.create_config(game, &tiktok, Some(postback::SANDBOX_CREDENTIAL_REF)).await.unwrap();
    let window_store = Store::open_postgres(&url, StoreOptions::default()).await.unwrap();
    let mut live = window_store.subscribe_log().await.unwrap();

    let mut delays = Vec::new();
    for round in 0..5 {
        let line = json!({"event_id": format!("live-{round}"), "name": "purchase", "occurred_at": chrono::Utc::now().to_rfc3339(),
                          "player_id": "p1", "consent": "full", "click_ids": {"ttclid": "t"}})
        .to_string();
        postback::ingest::import_ndjson(&worker_store, game, line.as_bytes(), now_ms()).await.unwrap();
        let worker = Dispatcher::new(
            worker_store.clone(),
            Arc::new(Credentials::without_keychain()),
            DispatcherOptions::default(),
        );
        let delivering = tokio::spawn(async move {
            let mut worker = worker;
            worker.run_until_idle().await
        });
        let batch = tokio::time::timeout(Duration::from_secs(5), live.recv()).await.expect("live within 5 s").unwrap();
        // From the attempt's time in the log (the network's answer) to this view.
        delays.push(now_ms() - batch[0].at);
        assert_eq!(delivering.await.unwrap().unwrap().success, 1);
        assert_eq!(batch.len(), 1, "only the new row, not the log again");
        assert_eq!(batch[0].event_id, format!("live-{round}"));
    }
    eprintln!("live log across processes: a worker's delivery to another handle's view in {delays:?} ms");
    window_store.close().await;
    worker_store.close().await;
}

/// A database an earlier version opened kept its player key in that computer's keychain: the
/// key moves into the database, so an erasure still finds the rows filed under it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_key_an_earlier_version_kept_in_the_keychain_moves_into_the_database() {
    use postback::secrets::{MemoryKeychain, SecretStore};
    let url = engines::fresh_database().await;
    let store = Store::open_postgres(&url, engines::options()).await.unwrap();
    let filed = store.player_key("p1");
    store.erase_player("p1", now_ms()).await.unwrap();
    store.close().await;
    // As an earlier version left it: the key in the keychain, none in the database.
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await.unwrap();
    let (key, instance): (String, String) = sqlx::query_as(
        "SELECT (SELECT value FROM meta WHERE name = 'player_key'), (SELECT value FROM meta WHERE name = 'instance_id')",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    sqlx::query("DELETE FROM meta WHERE name = 'player_key'").execute(&mut conn).await.unwrap();
    let keychain = Arc::new(MemoryKeychain::default());
    keychain.set(&format!("player-key-{instance}"), &Secret::new(key)).unwrap();
    let options = StoreOptions { keychain: Some(keychain), ..StoreOptions::default() };
    let reopened = Store::open_postgres(&url, options).await.unwrap();
    assert_eq!(reopened.player_key("p1"), filed, "the keychain's key was adopted");
    assert_eq!(reopened.erased_among(&["p1"]).await.unwrap().len(), 1, "the erasure still finds the player");
    reopened.close().await;
    // From now on the database's own key serves every process, keychain or not.
    let elsewhere = Store::open_postgres(&url, engines::options()).await.unwrap();
    assert_eq!(elsewhere.player_key("p1"), filed);
    elsewhere.close().await;
}

/// A worker whose database cannot be read before it ever read the workspace's token answers
/// "cannot be checked now" (503 at the ingest), not "wrong token" (401).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_cannot_be_checked_is_not_called_wrong() {
    use postback::ingest::token::{IngestAuth, Verdict};
    let dir = tempfile::tempdir().unwrap();
    let (_, store, _) = team_workspace(dir.path()).await;
    let token = postback::ingest::token::rotate_shared(&store).await.unwrap();
    let worker = IngestAuth::shared(store.clone());
    assert_eq!(worker.check(token.expose()).await, Verdict::Accepted);
    assert_eq!(worker.check("pbd_wrong").await, Verdict::Refused);
    let unreachable = IngestAuth::shared(store.clone());
    store.close().await;
    assert!(matches!(unreachable.check(token.expose()).await, Verdict::Unknown(_)));
    // One that read the hash before keeps it while the database is away.
    assert_eq!(worker.check(token.expose()).await, Verdict::Accepted);
}
