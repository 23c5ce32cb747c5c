//! `postback`: the headless Postback Desk engine.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use postback::store::{default_data_dir, Store};

#[derive(Parser)]
#[command(name = "postback", version, about = "Conversion postbacks to TikTok, Reddit and X, headless")]
struct Cli {
    /// Data directory (default: $POSTBACK_DATA_DIR, else the OS data directory)
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
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
    },
    /// Create the database (and the demo game on first start) and list the integrations
    Integrations,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Preview { config, event } => match postback::cli::preview_files(&config, &event) {
            Ok(preview) => match serde_json::to_string_pretty(&preview) {
                Ok(text) => {
                    println!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{{\"error\": {{\"field\": \"output\", \"message\": \"{e}\"}}}}");
                    ExitCode::FAILURE
                }
            },
            Err(error) => {
                eprintln!("{}", postback::cli::error_json(&error));
                ExitCode::from(2)
            }
        },
        Command::Integrations => {
            let data_dir = cli.data_dir.unwrap_or_else(default_data_dir);
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("cannot start: {e}");
                    return ExitCode::FAILURE;
                }
            };
            runtime.block_on(async {
                let result = async {
                    let store = Store::open(&data_dir).await?;
                    let game = store.ensure_demo_game(&postback::sandbox_base_url()).await?;
                    let rows = store.integrations(game.id).await?;
                    store.close().await;
                    Ok::<_, postback::store::StoreError>((game, rows))
                }
                .await;
                match result {
                    Ok((game, rows)) => {
                        println!("{} ({})", game.name, data_dir.display());
                        for r in rows {
                            println!(
                                "  {:<11} {:?} enabled={} pixel={} health={:?}",
                                r.display_name,
                                r.status,
                                r.enabled,
                                r.pixel.as_deref().unwrap_or("-"),
                                r.health
                            );
                        }
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        ExitCode::FAILURE
                    }
                }
            })
        }
    }
}
