//! The work behind the `postback` commands, kept out of `main` so tests can call it.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use serde_json::json;

mod connect;
pub use connect::{connect_command, disconnect, validate_command, ConnectArgs, ValidateArgs};

use crate::delivery::{now_ms, Credentials, Dispatcher, DispatcherOptions};
use crate::model::{ConversionEvent, Game, InputError, PostbackConfig};
use crate::networks::{self, Preview};
use crate::store::Store;

/// What a CLI command reports when it fails: a sentence for the terminal.
pub type CliResult = Result<(), String>;

fn read_file(path: &Path, field: &str) -> Result<String, InputError> {
    std::fs::read_to_string(path)
        .map_err(|e| InputError::new(field, format!("cannot read {}: {e}; check the path", path.display())))
}

/// `postback preview --config C --event E`: the request(s) the event would produce.
/// When `data_dir` holds a database, a player erased there previews as `player_erased`;
/// preview never creates a database.
pub fn preview_files(config_path: &Path, event_path: &Path, data_dir: Option<&Path>) -> Result<Preview, InputError> {
    let config = PostbackConfig::from_json_str(&read_file(config_path, "config")?)?;
    let event = ConversionEvent::from_json_str(&read_file(event_path, "event")?)?;
    let erased = data_dir.is_some_and(|dir| is_erased(dir, &event.player_id));
    Ok(networks::preview(&config, &event, erased, chrono::Utc::now()))
}

fn is_erased(data_dir: &Path, player_id: &str) -> bool {
    if !data_dir.join(crate::store::DB_FILE).exists() {
        return false;
    }
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return false };
    runtime.block_on(async {
        let Ok(store) = Store::open(data_dir).await else { return false };
        let erased = store.erased_among(&[player_id]).await.map(|set| !set.is_empty()).unwrap_or(false);
        store.close().await;
        erased
    })
}

/// The document printed on stderr for invalid input.
pub fn error_json(error: &InputError) -> serde_json::Value {
    json!({ "error": { "field": error.field, "message": error.message } })
}

/// Runs `preview` and prints as the contract says: JSON on stdout (exit 0) or a field error on
/// stderr (exit 2).
pub fn preview_command(config: &Path, event: &Path, data_dir: Option<&Path>) -> ExitCode {
    match preview_files(config, event, data_dir) {
        Ok(preview) => match serde_json::to_string_pretty(&preview) {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{}", error_json(&InputError::new("output", e.to_string())));
                ExitCode::FAILURE
            }
        },
        Err(error) => {
            eprintln!("{}", error_json(&error));
            ExitCode::from(2)
        }
    }
}

/// The data dir's database, with the demo game on first use; also returns the first game
/// (the default of commands that take `--game`).
async fn open(data_dir: &Path) -> Result<(Store, Game), String> {
    let store = Store::open(data_dir).await.map_err(|e| e.to_string())?;
    let first_game = store.ensure_demo_game(&crate::sandbox_base_url()).await.map_err(|e| e.to_string())?;
    Ok((store, first_game))
}

pub async fn integrations(data_dir: &Path) -> CliResult {
    let (store, _) = open(data_dir).await?;
    for game in store.games().await.map_err(|e| e.to_string())? {
        println!("{} (game {}, data in {})", game.name, game.id, data_dir.display());
        for r in store.integrations(game.id).await.map_err(|e| e.to_string())? {
            println!(
                "  {:<11} {:<13} enabled={:<5} pixel={:<22} health={:?}",
                r.display_name,
                format!("{:?}", r.status),
                r.enabled,
                r.pixel.as_deref().unwrap_or("-"),
                r.health
            );
        }
    }
    store.close().await;
    Ok(())
}

pub async fn sandbox(addr: SocketAddr) -> CliResult {
    let running =
        crate::sandbox::start(addr).await.map_err(|e| format!("cannot listen on {addr}: {e}; pick another --port"))?;
    println!("sandbox networks at {}", running.base_url);
    println!("  TikTok  POST {}/open_api/v1.3/event/track/", running.base_url);
    println!("  Reddit  POST {}/api/v3/pixels/{{pixel_id}}/conversion_events", running.base_url);
    println!("  X       POST {}/12/measurement/conversions/{{pixel_id}}", running.base_url);
    println!("  faults  POST {0}/__sandbox/faults   stats GET {0}/__sandbox/stats", running.base_url);
    let _ = tokio::signal::ctrl_c().await;
    running.stop().await;
    Ok(())
}

pub async fn import(data_dir: &Path, file: &Path, game: Option<i64>) -> CliResult {
    let (store, first_game) = open(data_dir).await?;
    let game_id = game.unwrap_or(first_game.id);
    let reader = std::fs::File::open(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let report = crate::ingest::import_ndjson(&store, game_id, std::io::BufReader::new(reader), now_ms())
        .await
        .map_err(|e| e.to_string())?;
    for e in &report.errors {
        eprintln!("line {}: {}: {}", e.line, e.field, e.message);
    }
    println!("{}", serde_json::to_string(&report).map_err(|e| e.to_string())?);
    store.close().await;
    Ok(())
}

/// `postback serve` settings.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct ServeOptions {
    /// Stop when nothing is waiting any more (also not after a backoff)
    #[arg(long)]
    pub until_idle: bool,
    /// Also run the sandbox networks in this process (for the demo configs)
    #[arg(long)]
    pub with_sandbox: bool,
    /// Attempts per event before it is marked Failed
    #[arg(long, default_value_t = 8)]
    pub max_attempts: u32,
    /// Seconds a claimed batch stays leased; after a crash it returns to the queue then
    #[arg(long, default_value_t = 120)]
    pub lease_secs: u64,
    /// TikTok and Reddit: requests per second per account
    #[arg(long, default_value_t = 50.0)]
    pub rps: f64,
    /// TikTok and Reddit: burst of requests per account
    #[arg(long, default_value_t = 100)]
    pub burst: u32,
    /// X: events per 15-minute window per account
    #[arg(long, default_value_t = 60_000)]
    pub x_events_per_window: u64,
}

pub async fn serve(data_dir: &Path, opts: ServeOptions) -> CliResult {
    let ServeOptions { until_idle, with_sandbox, max_attempts, lease_secs, .. } = opts;
    if !(opts.rps > 0.0 && opts.rps.is_finite()) || opts.burst == 0 || opts.x_events_per_window == 0 {
        return Err("--rps, --burst and --x-events-per-window must be greater than zero".into());
    }
    let (store, _) = open(data_dir).await?;
    let sandbox = if with_sandbox {
        let addr = SocketAddr::from(([127, 0, 0, 1], crate::SANDBOX_DEFAULT_PORT));
        Some(crate::sandbox::start(addr).await.map_err(|e| format!("cannot start the sandbox on {addr}: {e}"))?)
    } else {
        None
    };
    let mut options = DispatcherOptions::default();
    options.retry.max_attempts = max_attempts.max(1);
    options.lease = std::time::Duration::from_secs(lease_secs.max(1));
    options.rates.requests_per_second = opts.rps;
    options.rates.request_burst = opts.burst;
    options.rates.x_events_per_window = opts.x_events_per_window;
    let credentials = Arc::new(Credentials::with_system_keychain());
    let mut dispatcher = Dispatcher::new(store.clone(), credentials, options);
    let report = if until_idle {
        dispatcher.run_until_idle().await
    } else {
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            let _ = tx.send(true);
        });
        dispatcher.run(rx).await
    }
    .map_err(|e| e.to_string())?;
    println!(
        "{}",
        json!({"success": report.success, "failed": report.failed, "retried": report.retried,
               "dropped_erased": report.dropped_erased, "requests": report.requests})
    );
    if let Some(s) = sandbox {
        s.stop().await;
    }
    store.close().await;
    Ok(())
}

pub async fn erase(data_dir: &Path, player: &str) -> CliResult {
    let (store, _) = open(data_dir).await?;
    let (queued, logged) = store.erase_player(player.trim(), now_ms()).await.map_err(|e| e.to_string())?;
    println!(
        "{}",
        json!({"player_erased": player.trim(), "queued_events_removed": queued, "log_rows_scrubbed": logged})
    );
    store.close().await;
    Ok(())
}
