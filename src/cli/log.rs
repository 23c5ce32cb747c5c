//! `postback log`: the rows the Delivery log page shows, newest first, as a table, CSV or
//! NDJSON; `--show ID` prints a row's drill-down.

use super::Workspace;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use super::{open, parse_span};
use crate::delivery::now_ms;
use crate::model::{DeliveryStatus, LogFilter};
use crate::watch::export::{self, ExportFormat};
use crate::watch::Watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Table,
    Csv,
    Ndjson,
}

#[derive(clap::Args, Debug)]
pub struct LogArgs {
    /// Game id (default: the current game)
    #[arg(long)]
    pub game: Option<i64>,
    /// Only this config
    #[arg(long)]
    pub config: Option<i64>,
    /// How far back: 1h, 24h, 7d, 30d, …
    #[arg(long, default_value = "24h", value_parser = parse_span)]
    pub since: std::time::Duration,
    /// Only these statuses (repeatable): success, failed, retried, held, offline, given_up
    #[arg(long = "status", value_parser = parse_status)]
    pub statuses: Vec<DeliveryStatus>,
    /// Only this event id
    #[arg(long)]
    pub event_id: Option<String>,
    #[arg(long, value_enum, default_value_t = LogFormat::Table)]
    pub format: LogFormat,
    /// Table rows at most (CSV and NDJSON print every row)
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Print one row's drill-down (request, answer, what to do) as JSON
    #[arg(long)]
    pub show: Option<i64>,
}

fn parse_status(raw: &str) -> Result<DeliveryStatus, String> {
    DeliveryStatus::parse(raw)
        .ok_or_else(|| format!("'{raw}' is not a status; use success, failed, retried, held, offline or given_up"))
}

fn cut(text: &str, width: usize) -> String {
    match text.char_indices().nth(width) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

pub async fn log(workspace: &Workspace, args: LogArgs) -> ExitCode {
    let (store, current) = match open(workspace).await {
        Ok(opened) => opened,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = run(&store, current.id, args).await;
    store.close().await;
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(store: &crate::store::Store, current_game: i64, args: LogArgs) -> Result<(), String> {
    if let Some(id) = args.show {
        let detail = Watch::new(store.clone()).detail(id).await.map_err(|e| e.to_string())?;
        println!("{}", serde_json::to_string_pretty(&detail).map_err(|e| e.to_string())?);
        return Ok(());
    }
    let now = now_ms();
    let filter = LogFilter {
        game_id: if args.config.is_some() { None } else { Some(args.game.unwrap_or(current_game)) },
        config_id: args.config,
        statuses: args.statuses.clone(),
        since_ms: Some(now - i64::try_from(args.since.as_millis()).unwrap_or(i64::MAX / 2)),
        event_id: args.event_id.clone(),
        limit: args.limit,
        ..LogFilter::default()
    };
    let format = match args.format {
        LogFormat::Csv => ExportFormat::Csv,
        LogFormat::Ndjson => ExportFormat::Ndjson,
        LogFormat::Table => {
            let rows = store.log_page(&filter).await.map_err(|e| e.to_string())?;
            println!(
                "{:<8} {:<20} {:<7} {:<22} {:<9} {:>4} {:>7} {:>3}  {:<24} ERROR",
                "ID", "TIME (UTC)", "NETWORK", "EVENT", "STATUS", "HTTP", "LATENCY", "TRY", "EVENT ID"
            );
            for e in &rows {
                let event = if e.goal_key.is_empty() {
                    e.event_name.clone()
                } else {
                    format!("{} ({})", e.event_name, e.goal_key)
                };
                println!(
                    "{:<8} {:<20} {:<7} {:<22} {:<9} {:>4} {:>7} {:>3}  {:<24} {}",
                    e.id,
                    crate::watch::format_time(e.at).trim_end_matches(" UTC"),
                    e.network.as_str(),
                    cut(&event, 22),
                    e.status.as_str(),
                    e.http_status.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
                    e.latency_ms.map(|s| format!("{s} ms")).unwrap_or_else(|| "-".into()),
                    e.attempt,
                    cut(&e.event_id, 24),
                    cut(e.error.as_deref().unwrap_or(""), 80)
                );
            }
            if rows.len() as u32 == filter.limit {
                eprintln!("(newest {} rows; --limit for more, --format csv for all)", rows.len());
            }
            return Ok(());
        }
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    export::export(store, &filter, format, &mut out, |_, _| {}, &AtomicBool::new(false))
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}
