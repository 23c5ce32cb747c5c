//! The work behind the `postback` commands, kept out of `main` so tests can call it.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use serde_json::json;

mod connect;
mod log;
mod quality;
mod setup;
mod span;
mod team;
mod tester;
mod workspace;
pub use connect::{connect_command, disconnect, validate_command, ConnectArgs, ValidateArgs};
pub use log::{log, LogArgs, LogFormat};
pub use quality::{deadlines, freshness, quality, QualityArgs};
pub use setup::{games, goals, map_tag, set_enabled, set_triggers, GamesCommand, GoalsArgs, MapTagArgs};
pub use span::parse_span;
pub use team::{workspace_command, WorkspaceCommand};
pub use tester::{test_send, TestSendArgs};
pub use workspace::Workspace;

use crate::delivery::{now_ms, Dispatcher, DispatcherOptions, WriterLock};
use crate::identity::PhoneCountry;
use crate::model::{ConversionEvent, Game, InputError, PostbackConfig};
use crate::networks::{self, Preview};
use crate::store::Store;

/// What a CLI command reports when it fails: a sentence for the terminal.
pub type CliResult = Result<(), String>;

fn read_file(path: &Path, field: &str) -> Result<String, InputError> {
    std::fs::read_to_string(path)
        .map_err(|e| InputError::new(field, format!("cannot read {}: {e}; check the path", path.display())))
}

/// `postback preview --config C --event E [--default-country US]`: the request(s) the event
/// would produce. Preview has no game: `default_country` stands in for the game's setting
/// (phone numbers without a country code are read in it). When `data_dir` holds a database,
/// a player erased there previews as `player_erased`; preview never creates a database.
pub fn preview_files(
    config_path: &Path,
    event_path: &Path,
    data_dir: Option<&Path>,
    default_country: Option<&str>,
) -> Result<Preview, InputError> {
    let country = crate::setup::rules::default_country(default_country.unwrap_or_default())?;
    let country = country.as_deref().and_then(PhoneCountry::parse);
    let config = PostbackConfig::from_json_str(&read_file(config_path, "config")?)?;
    let event = ConversionEvent::from_json_str(&read_file(event_path, "event")?)?;
    let erased = data_dir.is_some_and(|dir| is_erased(dir, &event.player_id));
    Ok(networks::preview_for_game(&config, &event, erased, country, chrono::Utc::now()))
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
pub fn preview_command(
    config: &Path,
    event: &Path,
    data_dir: Option<&Path>,
    default_country: Option<&str>,
) -> ExitCode {
    match preview_files(config, event, data_dir, default_country) {
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
async fn open(workspace: &Workspace) -> Result<(Store, Game), String> {
    let store = workspace.open_store().await.map_err(|e| e.to_string())?;
    let first_game = workspace.first_game(&store).await?;
    Ok((store, first_game))
}

pub async fn integrations(workspace: &Workspace) -> CliResult {
    let (store, _) = open(workspace).await?;
    for game in store.games().await.map_err(|e| e.to_string())? {
        println!("{} (game {}, {workspace})", game.name, game.id);
        for r in store.integrations(game.id).await.map_err(|e| e.to_string())? {
            let config = r.config_id.map_or_else(|| "-".to_owned(), |id| id.to_string());
            println!(
                "  {:<11} config={:<4} {:<13} enabled={:<5} pixel={:<22} health={:?} queued={}",
                r.display_name,
                config,
                format!("{:?}", r.status),
                r.enabled,
                r.pixel.as_deref().unwrap_or("-"),
                r.health,
                r.pending
            );
            if let Some(reason) = &r.paused_reason {
                println!("      Paused: {reason}");
            }
            if let Some(since) = r.offline_since {
                let since = chrono::DateTime::from_timestamp_millis(since).unwrap_or_default();
                println!(
                    "      Offline — waiting for the network since {} ({})",
                    since.format("%Y-%m-%d %H:%M:%S UTC"),
                    r.offline_reason.as_deref().unwrap_or("no answer")
                );
            }
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
    println!("  faults  POST {0}/__sandbox/faults (JSON)   stats GET {0}/__sandbox/stats", running.base_url);
    let _ = tokio::signal::ctrl_c().await;
    running.stop().await;
    Ok(())
}

/// `postback import FILE`: exit 0 when the file was read to its end (bad lines are reported
/// and skipped), 2 when it could not be read (nothing, or only the lines before the error, was
/// queued — the message says which), 1 when the database failed.
pub async fn import(workspace: &Workspace, file: &Path, game: Option<i64>) -> ExitCode {
    if file.is_dir() {
        eprintln!("error: {} is a directory; give the path of an NDJSON file (one event per line) or a CSV file (a header row)", file.display());
        return ExitCode::from(2);
    }
    let reader = match std::fs::File::open(file) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}; check the path", file.display());
            return ExitCode::from(2);
        }
    };
    let (store, first_game) = match open(workspace).await {
        Ok(opened) => opened,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let game_id = game.unwrap_or(first_game.id);
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let mut print_error = |e: &crate::ingest::LineError| eprintln!("line {}: {}: {}", e.line, e.field, e.message);
    let mut control = crate::ingest::ImportControl {
        cancel: &cancel,
        on_progress: &mut |_, _| {},
        on_error: &mut print_error,
        keep_errors: 100,
    };
    let format = crate::ingest::FileFormat::of_path(file);
    let input = std::io::BufReader::with_capacity(1 << 16, reader);
    let outcome = crate::ingest::import(&store, game_id, input, format, &mut control, now_ms()).await;
    store.close().await;
    let (report, exit) = match outcome {
        Ok(report) => (report, ExitCode::SUCCESS),
        Err(crate::ingest::ImportError::Read { line, message, report }) => {
            eprintln!(
                "error: cannot read line {line} of {}: {message}; the import stopped there, {} conversions from {} events before it were queued",
                file.display(),
                report.enqueued,
                report.events
            );
            (*report, ExitCode::from(2))
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };

    match serde_json::to_string(&report) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("error: {e}"),
    }
    exit
}

/// `postback serve` settings.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeOptions {
    /// Stop when nothing is waiting any more (also not after a backoff)
    #[arg(long)]
    pub until_idle: bool,
    /// Also run the sandbox networks in this process (for the demo configs)
    #[arg(long)]
    pub with_sandbox: bool,
    /// How long server errors (5xx, 429) are retried before an event is Given up, counted from
    /// its first failed answer (e.g. 24h, 90m); no answer at all is never given up this way
    #[arg(long, default_value = "24h", value_parser = parse_span)]
    pub give_up_after: std::time::Duration,
    /// The wait before the first retry after a server error; each further failure doubles it,
    /// up to 15 minutes (the network's Retry-After counts when longer)
    #[arg(long, default_value = "2s", value_parser = parse_span)]
    pub retry_base: std::time::Duration,
    /// Seconds a claimed batch stays leased; after a crash it returns to the queue then
    #[arg(long, default_value_t = 120)]
    pub lease_secs: u64,
    /// TikTok and Reddit: requests per second per account
    #[arg(long, default_value_t = 50.0)]
    pub rps: f64,
    /// TikTok and Reddit: burst of requests per account
    #[arg(long, default_value_t = 100)]
    pub burst: u32,
    /// X: events per window per account
    #[arg(long, default_value_t = 60_000)]
    pub x_events_per_window: u64,
    /// X: the rate-limit window (15 minutes on the real API)
    #[arg(long, default_value = "15m", value_parser = parse_span)]
    pub x_window: std::time::Duration,
    /// Also serve the REST ingest API for game servers (default 127.0.0.1:47820). An address
    /// that is not loopback (0.0.0.0:47820) needs --tls-cert and --tls-key, or
    /// --behind-tls-proxy. Its token: $POSTBACK_INGEST_TOKEN, else the workspace's (the OS
    /// keychain's on a desktop; a team workspace's from `workspace ingest-token --rotate`)
    #[arg(long, num_args = 0..=1, default_missing_value = "127.0.0.1:47820", value_name = "ADDR",
        value_parser = parse_ingest_addr)]
    pub ingest: Option<SocketAddr>,
    /// The ingest's TLS certificate chain (PEM): serve HTTPS
    #[arg(long, value_name = "PEM", requires_all = ["tls_key", "ingest"])]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1)
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Serve plain HTTP on a non-loopback --ingest address because a TLS-terminating proxy
    /// (nginx, a load balancer) in front of it takes the clients' HTTPS
    #[arg(long, requires = "ingest", conflicts_with = "tls_cert")]
    pub behind_tls_proxy: bool,
}

fn parse_ingest_addr(text: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|_| format!("expected IP:PORT, e.g. 127.0.0.1:47820 or 0.0.0.0:47820 (got {text:?})"))
}

/// Who the ingest accepts: `POSTBACK_INGEST_TOKEN` when set, else the workspace's token (the
/// keychain's on a desktop, the keyed hash of a team workspace's).
async fn ingest_auth(workspace: &Workspace, store: &Store) -> Result<crate::ingest::token::IngestAuth, String> {
    use crate::ingest::token::IngestAuth;
    if let Some(token) = std::env::var("POSTBACK_INGEST_TOKEN").ok().filter(|t| !t.trim().is_empty()) {
        return Ok(IngestAuth::Token(crate::secrets::Secret::new(token.trim())));
    }
    if !workspace.is_embedded() {
        return match IngestAuth::shared_token_exists(store).await {
            Ok(true) => Ok(IngestAuth::shared(store.clone())),
            Ok(false) => Err("this team workspace has no ingest token yet: run `postback workspace ingest-token \
                 --rotate` once and give the token it prints to the game backends"
                .to_owned()),
            Err(e) => Err(e.to_string()),
        };
    }
    ingest_token(store).await.map(IngestAuth::Token)
}

/// The data directory's own ingest token: `POSTBACK_INGEST_TOKEN` when set, else the keychain's.
async fn ingest_token(store: &Store) -> Result<crate::secrets::Secret, String> {
    if let Some(token) = std::env::var("POSTBACK_INGEST_TOKEN").ok().filter(|t| !t.trim().is_empty()) {
        return Ok(crate::secrets::Secret::new(token.trim()));
    }
    let keychain: Arc<dyn crate::secrets::SecretStore> = Arc::new(crate::secrets::Keychain::system());
    crate::ingest::token::load_or_create(store, keychain)
        .await
        .map_err(|e| format!("{e}; or set POSTBACK_INGEST_TOKEN for a headless ingest"))
}

/// How the ingest faces the network, from `--tls-cert`/`--tls-key` and `--behind-tls-proxy`.
fn ingest_exposure(opts: &ServeOptions) -> Result<crate::ingest::server::Exposure, String> {
    use crate::ingest::server::Exposure;
    match (&opts.tls_cert, &opts.tls_key) {
        (Some(cert), Some(key)) => {
            crate::ingest::tls::server_config(cert, key).map(Exposure::Tls).map_err(|e| e.to_string())
        }
        _ if opts.behind_tls_proxy => Ok(Exposure::BehindTlsProxy),
        _ => Ok(Exposure::Loopback),
    }
}

pub async fn serve(workspace: &Workspace, opts: ServeOptions) -> CliResult {
    let ServeOptions { until_idle, with_sandbox, give_up_after, lease_secs, .. } = opts.clone();
    if !(opts.rps > 0.0 && opts.rps.is_finite()) || opts.burst == 0 || opts.x_events_per_window == 0 {
        return Err("--rps, --burst and --x-events-per-window must be greater than zero".into());
    }
    if give_up_after.is_zero() || opts.x_window.is_zero() || opts.retry_base.is_zero() {
        return Err("--give-up-after, --x-window and --retry-base must be longer than zero".into());
    }
    let exposure = ingest_exposure(&opts)?;
    if let Some(addr) = opts.ingest.filter(|a| !a.ip().is_loopback()) {
        if matches!(exposure, crate::ingest::server::Exposure::Loopback) {
            return Err(crate::ingest::server::IngestError::NotLoopback(addr).to_string());
        }
    }
    // Exactly one process delivers from a data directory's SQLite file; on PostgreSQL any number
    // do, each config by one of them at a time (store.lead_config).
    let _writer = match workspace.is_embedded() {
        true => Some(WriterLock::acquire(&workspace.data_dir, "postback serve").map_err(|e| e.to_string())?),
        false => None,
    };
    let (store, _) = open(workspace).await?;
    // A team workspace's worker opens the sealed credentials: without its key file it could
    // deliver nothing but the sandbox's, so it does not start.
    if !workspace.is_embedded() && workspace.key_file.is_none() {
        return Err("a worker on a team workspace needs its key file: give --key-file PATH (or \
             POSTBACK_WORKSPACE_KEY), the file `postback workspace init` wrote"
            .into());
    }
    let credentials = Arc::new(workspace.credentials(&store).await.map_err(|e| e.to_string())?);
    let sandbox = if with_sandbox {
        let addr = SocketAddr::from(([127, 0, 0, 1], crate::SANDBOX_DEFAULT_PORT));
        Some(crate::sandbox::start(addr).await.map_err(|e| format!("cannot start the sandbox on {addr}: {e}"))?)
    } else {
        None
    };
    let ingest = match opts.ingest {
        Some(addr) => {
            let auth = ingest_auth(workspace, &store).await?;
            let options = crate::ingest::server::IngestOptions { addr, auth, exposure };
            let running = crate::ingest::server::start_with(store.clone(), options).await.map_err(|e| e.to_string())?;
            tracing::info!(url = %running.base_url, "ingest API listening: POST /v1/events");
            Some(running)
        }
        None => None,
    };
    let mut options = DispatcherOptions::default();
    options.retry.give_up_after = give_up_after;
    options.retry.base = opts.retry_base;
    options.lease = std::time::Duration::from_secs(lease_secs.max(1));
    options.rates.requests_per_second = opts.rps;
    options.rates.request_burst = opts.burst;
    options.rates.x_events_per_window = opts.x_events_per_window;
    options.rates.x_window = opts.x_window;
    let mut dispatcher = Dispatcher::new(store.clone(), credentials, options);
    let report = if until_idle {
        dispatcher.run_until_idle().await.map_err(|e| format!("delivery stopped: {e}"))?
    } else {
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            stop_requested().await;
            let _ = tx.send(true);
        });
        // Its own thread, so that `--ingest` answers without waiting behind delivery.
        let thread = dispatcher.run_on_own_thread(rx).map_err(|e| format!("cannot start the delivery thread: {e}"))?;
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .map_err(|e| format!("delivery stopped: {e}"))?
            .map_err(|_| "the delivery thread panicked".to_owned())?
    };
    println!(
        "{}",
        json!({"success": report.success, "failed": report.failed, "retried": report.retried, "held": report.held,
               "offline": report.offline, "given_up": report.given_up, "dropped_erased": report.dropped_erased,
               "requests": report.requests, "lost_leases": report.lost_leases, "failed_turns": report.failed_turns})
    );
    if let Some(s) = sandbox {
        s.stop().await;
    }
    if let Some(i) = ingest {
        i.stop().await;
    }
    store.close().await;
    Ok(())
}

/// Ctrl-C, or SIGTERM where there is one (how systemd and Docker stop a worker).
async fn stop_requested() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// `postback demo` settings.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Events per second (20/s, 600/m)
    #[arg(long, default_value = "20/s", value_parser = crate::ingest::demo::parse_rate)]
    pub rate: f64,
    /// How long (90s, 5m); until Ctrl-C when not given
    #[arg(long = "for", value_parser = parse_span)]
    pub duration: Option<std::time::Duration>,
    /// The ingest API to send to (the app's or `postback serve --ingest`)
    #[arg(long, default_value = "http://127.0.0.1:47820")]
    pub ingest: String,
    /// Game id (default: the current game)
    #[arg(long)]
    pub game: Option<i64>,
    /// Seed of the synthetic players (the same seed, the same players)
    #[arg(long)]
    pub seed: Option<u64>,
}

/// Sends synthetic players' events through the ingest API at a steady rate.
pub async fn demo(workspace: &Workspace, args: DemoArgs) -> CliResult {
    let base = crate::model::formats::base_url(&args.ingest).map_err(|m| format!("--ingest: {m}"))?;
    let (store, current) = open(workspace).await?;
    let token = ingest_token(&store).await;
    let game = args.game.unwrap_or(current.id);
    store.close().await;
    let token = token?;
    let url = format!("{base}/v1/events?game={game}");
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        let _ = tx.send(true);
    });
    let http = crate::delivery::http_client(std::time::Duration::from_secs(10))
        .map_err(|e| format!("the HTTP client cannot be built: {e}"))?;
    let seed = args.seed.unwrap_or_else(|| fastrand::u64(..));
    let mut last_print = std::time::Instant::now();
    let stats = crate::ingest::demo::run(
        &http,
        &url,
        &token,
        crate::ingest::demo::DemoPlan { rate: args.rate, duration: args.duration, seed },
        rx,
        |s| {
            if last_print.elapsed() >= std::time::Duration::from_secs(1) {
                last_print = std::time::Instant::now();
                eprintln!(
                    "sent {} · accepted {} · rejected {} · failed requests {}",
                    s.sent, s.accepted, s.rejected, s.failed_requests
                );
            }
        },
    )
    .await;
    println!("{}", serde_json::to_string(&stats).map_err(|e| e.to_string())?);
    match (&stats.last_error, stats.accepted) {
        (Some(e), 0) => Err(format!("nothing was accepted: {e}")),
        _ => Ok(()),
    }
}

/// `postback replay` settings.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// The config whose failed and given-up events go back to the queue
    #[arg(long)]
    pub config: i64,
    /// Only events that failed or were given up within this span (e.g. 24h, 7d)
    #[arg(long, value_parser = parse_span)]
    pub since: Option<std::time::Duration>,
    /// Only these event ids (repeatable)
    #[arg(long = "event-id")]
    pub event_ids: Vec<String>,
}

/// Re-queues a config's failed and given-up events under their own event ids (the networks
/// deduplicate on them). Prints how many; a named event that was delivered is refused (exit 2).
pub async fn replay(workspace: &Workspace, args: ReplayArgs) -> ExitCode {
    let outcome = async {
        let (store, _) = open(workspace).await?;
        let result = async {
            store.config(args.config).await?;
            let now = now_ms();
            let since_ms = args.since.map(|s| now - i64::try_from(s.as_millis()).unwrap_or(i64::MAX / 2));
            let replay = crate::store::Replay { config_id: args.config, since_ms, event_ids: args.event_ids.clone() };
            store.replay(&replay, now).await
        }
        .await;
        store.close().await;
        result.map_err(|e| e.to_string())
    };
    match outcome.await {
        Ok(Ok(requeued)) => {
            println!("{}", json!({"config_id": args.config, "requeued": requeued}));
            ExitCode::SUCCESS
        }
        Ok(Err(refusal)) => {
            eprintln!("error: {refusal}; nothing was re-queued");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Shows, or sets, how long failed events are kept for replay.
pub async fn retention(workspace: &Workspace, failed_days: Option<u32>, default: bool) -> CliResult {
    use crate::delivery::retention;
    let (store, _) = open(workspace).await?;
    let kept = if default || failed_days.is_some() {
        retention::set_failed_retention(&store, failed_days).await.map_err(|e| format!("--failed-days: {e}"))?
    } else {
        retention::failed_retention(&store).await.map_err(|e| e.to_string())?
    };
    println!("{}", json!({"failed_events_kept_days": kept.days, "default": kept.is_default}));
    store.close().await;
    Ok(())
}

pub async fn erase(workspace: &Workspace, player: &str) -> CliResult {
    let (store, _) = open(workspace).await?;
    let (queued, logged) = store.erase_player(player.trim(), now_ms()).await.map_err(|e| e.to_string())?;
    println!(
        "{}",
        json!({"player_erased": player.trim(), "queued_events_removed": queued, "log_rows_scrubbed": logged})
    );
    store.close().await;
    Ok(())
}
