//! `postback`: the headless Postback Desk engine.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use postback::cli;

#[derive(Parser)]
#[command(name = "postback", version, about = "Conversion postbacks to TikTok, Reddit and X, headless")]
struct Cli {
    /// Data directory (default: $POSTBACK_DATA_DIR, else the OS data directory)
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// A PostgreSQL database for the store instead of the data directory's SQLite file:
    /// postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=verify-full&sslrootcert=CA.pem]
    /// (default: $POSTBACK_DATABASE_URL). Files (import errors, exports) stay in the data directory.
    #[arg(long, global = true, value_name = "URL")]
    database: Option<String>,
    /// A team workspace's key file (from `workspace init`): a worker opens the workspace's
    /// sealed credentials with it (default: $POSTBACK_WORKSPACE_KEY)
    #[arg(long, global = true, value_name = "PATH", env = "POSTBACK_WORKSPACE_KEY")]
    key_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the request(s) an event would produce for a config, credentials redacted
    Preview {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        event: PathBuf,
        /// Read phone numbers written without a country code (+ or 00) in this country
        /// (ISO 3166-1 alpha-2: US, GB …), as a game with that default country does
        #[arg(long)]
        default_country: Option<String>,
    },
    /// Create the database (and the demo game on first start) and list the integrations
    Integrations,
    /// Serve the sandbox networks (TikTok, Reddit, X) on loopback until interrupted
    Sandbox {
        #[arg(long, default_value_t = postback::SANDBOX_DEFAULT_PORT)]
        port: u16,
    },
    /// Enqueue canonical events for the game's configs: NDJSON (one JSON object per line) or .csv (a header row)
    Import {
        file: PathBuf,
        /// Game id (default: the current game, the demo game on a fresh database)
        #[arg(long)]
        game: Option<i64>,
    },
    /// Run the dispatcher: deliver queued events
    Serve(cli::ServeOptions),
    /// Check credentials with one test event (TikTok, Reddit) or an account check (X); saves nothing
    Validate(cli::ValidateArgs),
    /// Validate, then store the token in the OS keychain and save the config
    Connect(cli::ConnectArgs),
    /// Send one event to a config's network in test mode (shows under Test Events); nothing is
    /// queued or logged, and the test code is not kept
    TestSend(cli::TestSendArgs),
    /// Remove a config's credential from the keychain, then the config
    Disconnect {
        #[arg(long)]
        config: i64,
        /// Also discard the config's conversions that were not delivered yet (refused without it)
        #[arg(long)]
        discard_queued: bool,
    },
    /// Re-queue a config's failed and given-up events under their own event ids
    Replay(cli::ReplayArgs),
    /// The delivery log, newest first (table, CSV or NDJSON), or one row's drill-down
    Log(cli::LogArgs),
    /// Match quality of each config over a range: key shares, a 0–10 score, the fix, as JSON
    Quality(cli::QualityArgs),
    /// Delays from event to acceptance per config over a range (p50, p95) and expired conversions, as JSON
    Freshness(cli::QualityArgs),
    /// Queued conversions against each network's acceptance window: when the oldest closes, how many close within 24 h, as JSON
    Deadlines(cli::QualityArgs),
    /// Send synthetic players' events through the ingest API at a steady rate
    Demo(cli::DemoArgs),
    /// Games: list, create, rename, delete, use, default-country
    #[command(subcommand)]
    Games(cli::GamesCommand),
    /// Conversion Goals of a game: list, add, edit, activate, deactivate, delete, order
    Goals(cli::GoalsArgs),
    /// Map an X config's goal to its Single Event Tag (or --clear it)
    MapTag(cli::MapTagArgs),
    /// Let a config deliver again
    Enable {
        #[arg(long)]
        config: i64,
    },
    /// Stop a config: its events are no longer queued, queued ones wait
    Disable {
        #[arg(long)]
        config: i64,
    },
    /// TikTok / Reddit: the events a config forwards
    SetTriggers {
        #[arg(long)]
        config: i64,
        /// Repeat for each event
        #[arg(long = "event", required = true)]
        events: Vec<String>,
    },
    /// Forget a player: remove queued events, scrub the log, skip future events
    Erase {
        #[arg(long)]
        player: String,
    },
    /// A team workspace on PostgreSQL: init, status, ingest-token
    #[command(subcommand)]
    Workspace(cli::WorkspaceCommand),
    /// How long failed events are kept for replay (then purged): show it, or set it
    Retention {
        /// Keep failed events this many days (1–365)
        #[arg(long, conflicts_with = "default")]
        failed_days: Option<u32>,
        /// Back to the default: the longest network acceptance window
        #[arg(long)]
        default: bool,
    },
}

fn main() -> ExitCode {
    postback::tune_allocator();
    let args = Cli::parse();
    // Diagnostics go to stderr (stdout carries the commands' JSON): warnings and errors, and
    // progress for `serve`. POSTBACK_LOG overrides, e.g. POSTBACK_LOG=postback=debug.
    let default_filter = if matches!(args.command, Command::Serve(_)) { "postback=info" } else { "postback=warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("POSTBACK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(false).init();
    let workspace = cli::Workspace {
        data_dir: args.data_dir.unwrap_or_else(postback::store::default_data_dir),
        database: args
            .database
            .or_else(|| std::env::var("POSTBACK_DATABASE_URL").ok())
            .filter(|url| !url.trim().is_empty()),
        key_file: args.key_file.filter(|path| !path.as_os_str().is_empty()),
    };
    let data_dir = workspace.data_dir.as_path();
    let workspace = &workspace;
    // Async commands are lazy futures: nothing runs before the runtime polls them.
    match args.command {
        Command::Preview { config, event, default_country } => {
            cli::preview_command(&config, &event, Some(data_dir), default_country.as_deref())
        }
        Command::Validate(args) => with_runtime(cli::validate_command(args)),
        Command::Connect(args) => with_runtime(cli::connect_command(workspace, args)),
        Command::TestSend(args) => with_runtime(cli::test_send(workspace, args)),
        Command::Disconnect { config, discard_queued } => {
            with_runtime(cli::disconnect(workspace, config, discard_queued))
        }
        Command::Replay(args) => with_runtime(cli::replay(workspace, args)),
        Command::Log(args) => with_runtime(cli::log(workspace, args)),
        Command::Quality(args) => with_runtime(reported(cli::quality(workspace, args))),
        Command::Freshness(args) => with_runtime(reported(cli::freshness(workspace, args))),
        Command::Deadlines(args) => with_runtime(reported(cli::deadlines(workspace, args))),
        Command::Demo(args) => with_runtime(reported(cli::demo(workspace, args))),
        Command::Games(command) => with_runtime(cli::games(workspace, command)),
        Command::Goals(args) => with_runtime(cli::goals(workspace, args)),
        Command::MapTag(args) => with_runtime(cli::map_tag(workspace, args)),
        Command::Enable { config } => with_runtime(cli::set_enabled(workspace, config, true)),
        Command::Disable { config } => with_runtime(cli::set_enabled(workspace, config, false)),
        Command::SetTriggers { config, events } => with_runtime(cli::set_triggers(workspace, config, events)),
        Command::Integrations => with_runtime(reported(cli::integrations(workspace))),
        Command::Sandbox { port } => with_runtime(reported(cli::sandbox(SocketAddr::from(([127, 0, 0, 1], port))))),
        Command::Import { file, game } => with_runtime(cli::import(workspace, &file, game)),
        Command::Serve(options) => with_runtime(reported(cli::serve(workspace, options))),
        Command::Workspace(command) => with_runtime(reported(cli::workspace_command(workspace, command))),
        Command::Erase { player } => with_runtime(reported(cli::erase(workspace, &player))),
        Command::Retention { failed_days, default } => {
            with_runtime(reported(cli::retention(workspace, failed_days, default)))
        }
    }
}

/// Runs an async command on a multi-threaded runtime and returns its exit code.
fn with_runtime(command: impl Future<Output = ExitCode>) -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime.block_on(command),
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A command that fails with a sentence: printed on stderr, exit 1.
async fn reported(command: impl Future<Output = cli::CliResult>) -> ExitCode {
    match command.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
