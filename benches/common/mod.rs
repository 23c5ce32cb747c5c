//! What the benches share: the scale knob, this process's memory, and the sandbox run as a
//! separate `postback sandbox` process on a free loopback port.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `n` times `BENCH_SCALE` (1 unless set), at least `min`.
pub fn scale(n: u64, min: u64) -> u64 {
    let factor: f64 = std::env::var("BENCH_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0);
    ((n as f64) * factor).max(min as f64) as u64
}

/// A field of `/proc/self/status` in MB (`VmRSS:` now, `VmHWM:` the peak).
pub fn memory_mb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .map_or(0.0, |kb: f64| kb / 1024.0)
}

pub fn rss_mb() -> f64 {
    memory_mb("VmRSS:")
}

/// The sandbox process, killed on drop.
pub struct SandboxProcess(Child);

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `postback sandbox` and returns it with its base URL once it accepts connections.
pub fn sandbox_process() -> (SandboxProcess, String) {
    let port =
        std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port");
    let child = Command::new(env!("CARGO_BIN_EXE_postback"))
        .args(["sandbox", "--port", &port.to_string()])
        .stdout(Stdio::null())
        .spawn()
        .expect("sandbox starts");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    for _ in 0..100 {
        if TcpStream::connect(addr).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (SandboxProcess(child), format!("http://{addr}"))
}

/// The PostgreSQL server the bench runs on: `--database URL` after `--` (or
/// `BENCH_DATABASE_URL`); SQLite files in temporary directories otherwise. The bench creates a
/// database of its own there for each store it opens (use a throwaway server, e.g.
/// `POSTBACK_PG_DURABLE=1 bash scripts/with-postgres.sh sh -c 'cargo bench --bench watch -- --database "$POSTBACK_TEST_DATABASE_URL"'`,
/// synced commits as on a real server).
pub fn database_server() -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--database")
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| std::env::var("BENCH_DATABASE_URL").ok())
}

/// Which engine the figures are of, for their lines.
pub fn engine_name() -> &'static str {
    if database_server().is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    }
}

/// A store for one phase: a fresh database on the `--database` server, or a SQLite file in
/// `dir`. Returns the store and, on PostgreSQL, its database's URL (for a second worker).
pub async fn open_store(
    dir: &std::path::Path,
    options: postback::store::StoreOptions,
) -> (postback::store::Store, Option<String>) {
    use sqlx::Connection;
    let Some(server) = database_server() else {
        return (postback::store::Store::open_with(dir, options).await.expect("SQLite store"), None);
    };
    let mut admin = sqlx::PgConnection::connect(&server).await.expect("the --database server answers");
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).expect("randomness");
    let name = format!("postback_bench_{}", hex::encode(bytes));
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("create database");
    let _ = admin.close().await;
    let mut url = url::Url::parse(&server).expect("--database URL");
    url.set_path(&format!("/{name}"));
    let url = url.to_string();
    (postback::store::Store::open_postgres(&url, options).await.expect("PostgreSQL store"), Some(url))
}
