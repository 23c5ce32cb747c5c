//! A game on a real store (a SQLite file, or a PostgreSQL database on the test cluster) whose
//! three configs send to a sandbox on a free loopback port. `on_both_engines_rig!` runs a test
//! on each engine.
#![allow(dead_code)]

#[path = "../engines/mod.rs"]
pub mod engines;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use postback::delivery::{now_ms, Credentials, Dispatcher, DispatcherOptions, RunReport};
use postback::ingest::{import_ndjson, ImportReport};
use postback::model::{DeliveryStatus, Goal, LogEntry, Network};
use postback::sandbox::{self, Faults, NetworkStats, RunningSandbox};
use postback::store::{LogFilter, Store};
use serde_json::json;

pub struct Rig {
    /// The SQLite data directory (empty on PostgreSQL).
    pub dir: tempfile::TempDir,
    pub engine: engines::Engine,
    pub store: Store,
    pub sandbox: RunningSandbox,
    pub game_id: i64,
    pub tokens: Arc<Credentials>,
    /// TikTok, Reddit, X.
    pub config_ids: Vec<i64>,
}

pub fn x_goals() -> Vec<Goal> {
    vec![
        Goal::mapped("launch", "Launch", "game_launch", "tw-sbx01-launch"),
        // Belongs to another pixel: the sandbox refuses it as X does.
        Goal::mapped("buy", "Purchase", "purchase", "tw-other-buy01"),
    ]
}

pub async fn rig(credential_ref: &str) -> Rig {
    rig_with(credential_ref, x_goals()).await
}

pub async fn rig_with(credential_ref: &str, goals: Vec<Goal>) -> Rig {
    rig_on(engines::Engine::Sqlite, credential_ref, goals).await
}

/// A rig on `engine`; the player key in the (test session's) keychain on both.
pub async fn rig_on(engine: engines::Engine, credential_ref: &str, goals: Vec<Goal>) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let store = match engine {
        engines::Engine::Sqlite => Store::open(dir.path()).await.unwrap(),
        engines::Engine::Postgres => {
            let url = engines::fresh_database().await;
            Store::open_postgres(&url, postback::store::StoreOptions::default()).await.unwrap()
        }
    };
    let sandbox = sandbox::start(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
    let game = store.create_game("Test Game").await.unwrap();
    let configs = sandbox::demo_configs(&sandbox.base_url, &["game_launch", "purchase"], goals);
    let mut config_ids = Vec::new();
    for c in &configs {
        config_ids.push(store.create_config(game.id, c, Some(credential_ref)).await.unwrap());
    }
    Rig { dir, engine, store, sandbox, game_id: game.id, tokens: Arc::new(Credentials::without_keychain()), config_ids }
}

/// `n` full-consent events named `name` of `player`, at `occurred_at` (RFC 3339) or now.
pub fn events_at(n: usize, name: &str, player: &str, occurred_at: Option<&str>) -> String {
    let at = occurred_at.map(str::to_owned).unwrap_or_else(|| chrono::Utc::now().to_rfc3339());
    (0..n)
        .map(|i| {
            json!({"event_id": format!("{name}-{player}-{i}"), "name": name, "occurred_at": at,
                   "player_id": player, "consent": "full",
                   "click_ids": {"ttclid": "tt", "twclid": "tw", "rdt_cid": "rd"}, "email": format!("p{i}@example.com"),
                   "value": "1.99", "currency": "USD"})
            .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn events(n: usize, name: &str, player: &str) -> String {
    events_at(n, name, player, None)
}

pub fn fast_options() -> DispatcherOptions {
    let mut o = DispatcherOptions::default();
    o.retry.base = Duration::from_millis(20);
    o.retry.give_up_after = Duration::from_secs(30);
    o.retry.offline_base = Duration::from_millis(20);
    o.lease = Duration::from_secs(5);
    o
}

impl Rig {
    pub async fn import(&self, text: &str) -> ImportReport {
        import_ndjson(&self.store, self.game_id, text.as_bytes(), now_ms()).await.unwrap()
    }

    pub async fn dispatch(&self, options: DispatcherOptions) -> RunReport {
        let mut d = Dispatcher::new(self.store.clone(), self.tokens.clone(), options);
        tokio::time::timeout(Duration::from_secs(60), d.run_until_idle()).await.expect("dispatcher finishes").unwrap()
    }

    pub fn faults(&self, f: Faults) {
        self.sandbox.state.set_faults(f);
    }

    pub fn stats(&self, network: Network) -> NetworkStats {
        self.sandbox.state.stats().remove(&network).unwrap_or_default()
    }

    /// The log of config `config` (0 TikTok, 1 Reddit, 2 X), newest first.
    pub async fn log(&self, config: usize, status: Option<DeliveryStatus>) -> Vec<LogEntry> {
        let filter = LogFilter {
            config_id: Some(self.config_ids[config]),
            statuses: status.into_iter().collect(),
            limit: 1000,
            ..LogFilter::default()
        };
        self.store.log_page(&filter).await.unwrap()
    }
}

/// Each `async fn name(engine: Engine) { … }` becomes the tests `name::sqlite` and
/// `name::postgres` (multi-threaded runtimes), the same body on each engine.
#[macro_export]
macro_rules! on_both_engines_rig {
    ($(
        $(#[$meta:meta])*
        async fn $name:ident($engine:ident: Engine) $body:block
    )*) => {$(
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($engine: $crate::support::engines::Engine) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run($crate::support::engines::Engine::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                run($crate::support::engines::Engine::Postgres).await;
            }
        }
    )*};
}
