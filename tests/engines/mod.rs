//! One behavioural suite, two engines: `on_both_engines!` turns each test into
//! `<name>::sqlite` (a real SQLite file in a temporary directory) and `<name>::postgres` (a
//! fresh database on the throwaway cluster that `scripts/with-postgres.sh` starts; its URL in
//! `POSTBACK_TEST_DATABASE_URL`). Without that cluster the PostgreSQL half fails and says so:
//! a suite that skipped it would pass without testing it.
#![allow(dead_code)]

use std::sync::Arc;

use postback::store::{Store, StoreOptions};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A store for one test, and what keeps its data alive.
pub struct TestStore {
    pub store: Store,
    /// The SQLite data directory.
    pub dir: Option<tempfile::TempDir>,
    /// The PostgreSQL database's URL.
    pub url: Option<String>,
}

/// The cluster's URL (the test script's throwaway cluster).
pub fn cluster_url() -> String {
    std::env::var("POSTBACK_TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!(
            "POSTBACK_TEST_DATABASE_URL is not set: run the store suite through scripts/test.sh, or \
             bash scripts/with-postgres.sh cargo test …, which starts a throwaway PostgreSQL"
        )
    })
}

/// A new, empty database on the cluster; returns its URL.
pub async fn fresh_database() -> String {
    use sqlx::Connection;
    let admin = cluster_url();
    let mut conn = sqlx::PgConnection::connect(&admin).await.expect("the test cluster answers");
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).expect("randomness");
    let name = format!("t_{}", hex::encode(bytes));
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create database");
    let _ = conn.close().await;
    let mut url = url::Url::parse(&admin).expect("cluster URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// Options whose player key lives in memory: the keychain has its own tests.
pub fn options() -> StoreOptions {
    StoreOptions { keychain: Some(Arc::new(postback::secrets::MemoryKeychain::default())), ..StoreOptions::default() }
}

pub async fn open(engine: Engine) -> TestStore {
    match engine {
        Engine::Sqlite => {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = Store::open_with(dir.path(), options()).await.expect("SQLite store");
            TestStore { store, dir: Some(dir), url: None }
        }
        Engine::Postgres => {
            let url = fresh_database().await;
            let store = Store::open_postgres(&url, options()).await.expect("PostgreSQL store");
            TestStore { store, dir: None, url: Some(url) }
        }
    }
}

/// Two handles on one database (two processes' worth of connections), sharing the player key
/// as a team's workers do.
pub async fn open_pair(engine: Engine) -> (TestStore, Store) {
    let options = options();
    match engine {
        Engine::Sqlite => {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = Store::open_with(dir.path(), options.clone()).await.expect("SQLite store");
            let second = Store::open_with(dir.path(), options).await.expect("second SQLite handle");
            (TestStore { store, dir: Some(dir), url: None }, second)
        }
        Engine::Postgres => {
            let url = fresh_database().await;
            let store = Store::open_postgres(&url, options.clone()).await.expect("PostgreSQL store");
            let second = Store::open_postgres(&url, options).await.expect("second PostgreSQL handle");
            (TestStore { store, dir: None, url: Some(url) }, second)
        }
    }
}

/// Each `async fn name(store: Store) { … }` becomes the tests `name::sqlite` and
/// `name::postgres`, the same body on each engine.
#[macro_export]
macro_rules! on_both_engines {
    ($(
        $(#[$meta:meta])*
        async fn $name:ident($store:ident: Store) $body:block
    )*) => {$(
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($store: postback::store::Store) $body

            #[tokio::test]
            async fn sqlite() {
                let test = $crate::engines::open($crate::engines::Engine::Sqlite).await;
                run(test.store.clone()).await;
            }

            #[tokio::test]
            async fn postgres() {
                let test = $crate::engines::open($crate::engines::Engine::Postgres).await;
                run(test.store.clone()).await;
            }
        }
    )*};
}
