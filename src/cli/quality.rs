//! `postback quality [--game ID] [--since 24h]`: each config's match quality over the range,
//! from what was queued: per match key the share of conversions carrying it, a 0–10 score and
//! the one fix that raises it most (docs/CONTRACT.md, "Match quality"). `postback freshness`:
//! each config's delays from event to acceptance (p50, p95) and its expired conversions.
//! `postback deadlines`: each config's queued conversions against the network's acceptance
//! window (`--since` is not used). JSON on stdout.

use super::{open, parse_span, CliResult, Workspace};
use crate::delivery::now_ms;
use crate::watch::Watch;

#[derive(clap::Args, Debug)]
pub struct QualityArgs {
    /// Game id (default: the first game)
    #[arg(long)]
    pub game: Option<i64>,
    /// How far back: 1h, 24h, 7d, 30d, …
    #[arg(long, default_value = "24h", value_parser = parse_span)]
    pub since: std::time::Duration,
}

pub async fn quality(workspace: &Workspace, args: QualityArgs) -> CliResult {
    print_range(workspace, &args, |watch, game, since, until| async move {
        serde_json::to_value(watch.quality(game, since, until).await.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())
    })
    .await
}

pub async fn freshness(workspace: &Workspace, args: QualityArgs) -> CliResult {
    print_range(workspace, &args, |watch, game, since, until| async move {
        serde_json::to_value(watch.freshness(game, since, until).await.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())
    })
    .await
}

pub async fn deadlines(workspace: &Workspace, args: QualityArgs) -> CliResult {
    print_range(workspace, &args, |watch, game, _, _| async move {
        serde_json::to_value(watch.deadlines(game, now_ms()).await.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())
    })
    .await
}

/// Reads one figure of a game over the range and prints it as JSON.
async fn print_range<F, Fut>(workspace: &Workspace, args: &QualityArgs, read: F) -> CliResult
where
    F: FnOnce(Watch, i64, i64, i64) -> Fut,
    Fut: std::future::Future<Output = Result<serde_json::Value, String>>,
{
    let (store, first_game) = open(workspace).await?;
    let now = now_ms();
    let since = now - i64::try_from(args.since.as_millis()).unwrap_or(i64::MAX / 2);
    let game = args.game.unwrap_or(first_game.id);
    let figures = async {
        store.game(game).await.map_err(|e| format!("{e}; `postback games` lists the game ids"))?;
        read(Watch::new(store.clone()), game, since, now + 1).await
    }
    .await;
    store.close().await;
    let text = serde_json::to_string_pretty(&figures?).map_err(|e| e.to_string())?;
    println!("{text}");
    Ok(())
}
