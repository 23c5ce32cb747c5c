//! `postback validate`, `postback connect` and `postback disconnect`: the save-time check and the
//! credential lifecycle for QA scripts. Tokens come from an environment variable, never argv.

use super::Workspace;
use std::process::ExitCode;
use std::sync::Arc;

use serde_json::json;

use super::error_json;
use crate::connect::{validate, ConnectError, Connector};
use crate::delivery::Credential;
use crate::model::{formats, ApiError, Game, InputError, Network, PostbackConfig, RedditConfig, TikTokConfig, XConfig};
use crate::secrets::Secret;
use crate::store::Store;

#[derive(clap::Args, Debug)]
pub struct ValidateArgs {
    /// tiktok, reddit or x
    #[arg(long)]
    pub network: String,
    /// TikTok pixel code, Reddit pixel id (a2_…) or X pixel id
    #[arg(long)]
    pub pixel: String,
    /// Name of the environment variable holding the token (TikTok access token, Reddit
    /// conversion access token, X OAuth 2.0 user token)
    #[arg(long)]
    pub token_env: String,
    /// TikTok test event code / Reddit test id: used for this request only, never stored
    #[arg(long)]
    pub test_code: Option<String>,
    /// API base URL (the sandbox: http://127.0.0.1:47811); default the real network
    #[arg(long)]
    pub base_url: Option<String>,
    /// Event the test uses and the config triggers on (repeatable)
    #[arg(long = "trigger", default_values_t = ["game_launch".to_owned(), "purchase".to_owned()])]
    pub triggers: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct ConnectArgs {
    #[command(flatten)]
    pub check: ValidateArgs,
    /// Game id (default: the first game)
    #[arg(long)]
    pub game: Option<i64>,
}

fn config_of(args: &ValidateArgs) -> Result<PostbackConfig, InputError> {
    let network = Network::parse(&args.network).ok_or_else(|| {
        InputError::new("network", format!("'{}' is not a supported network; use tiktok, reddit or x", args.network))
    })?;
    let base_url = args
        .base_url
        .as_deref()
        .map(|u| formats::base_url(u).map_err(|m| InputError::new("base_url", m)))
        .transpose()?;
    let test_code = args.test_code.clone().filter(|c| !c.trim().is_empty());
    let pixel = |check: fn(&str) -> Result<String, String>, field: &str| {
        check(&args.pixel).map_err(|m| InputError::new(field, m))
    };
    Ok(match network {
        Network::TikTok => PostbackConfig::TikTok(TikTokConfig {
            pixel_code: pixel(formats::tiktok_pixel_code, "pixel")?,
            trigger_events: args.triggers.clone(),
            test_event_code: test_code,
            base_url,
        }),
        Network::Reddit => PostbackConfig::Reddit(RedditConfig {
            pixel_id: pixel(formats::reddit_pixel_id, "pixel")?,
            trigger_events: args.triggers.clone(),
            test_id: test_code,
            base_url,
        }),
        Network::X => {
            PostbackConfig::X(XConfig { pixel_id: pixel(formats::x_pixel_id, "pixel")?, goals: Vec::new(), base_url })
        }
    })
}

fn token_from_env(var: &str) -> Result<Secret, InputError> {
    match std::env::var(var) {
        Ok(value) if !value.trim().is_empty() => Ok(Secret::new(value)),
        _ => Err(InputError::new(
            "token_env",
            format!("environment variable {var} is not set or empty; export the token in it"),
        )),
    }
}

/// Prints the outcome: JSON on stdout (exit 0), or the error on stderr — exit 2 for input to
/// fix before trying again, 1 when the network or the keychain said no.
fn report(result: Result<serde_json::Value, ConnectError>) -> ExitCode {
    match result {
        Ok(doc) => {
            println!("{doc}");
            ExitCode::SUCCESS
        }
        Err(ConnectError::Input(e)) => {
            eprintln!("{}", error_json(&e));
            ExitCode::from(2)
        }
        Err(e @ ConnectError::QueuedEvents { .. }) => {
            // Nothing was changed; the command needs the user's explicit --discard-queued.
            let api = ApiError::from(e);
            eprintln!("{}", json!({"error": {"code": api.code, "field": "discard_queued", "message": api.message}}));
            ExitCode::from(2)
        }
        Err(e) => {
            let api = ApiError::from(e);
            eprintln!("{}", json!({"error": {"code": api.code, "field": api.field, "message": api.message}}));
            ExitCode::FAILURE
        }
    }
}

/// The credential lifecycle on the workspace's database and its credential store (the OS
/// keychain, or a team workspace's sealed credentials).
async fn connector(workspace: &Workspace) -> Result<(Store, Connector, Game), ConnectError> {
    // Typed errors: a missing keychain (which holds the log's player key) is reported as
    // `keychain_unavailable`, not as a storage failure.
    let store = workspace.open_store().await?;
    let first_game = workspace.first_game(&store).await.map_err(ConnectError::Local)?;
    let connector = Connector::new(store.clone(), Arc::new(workspace.credentials(&store).await?));
    Ok((store, connector, first_game))
}

pub async fn validate_command(args: ValidateArgs) -> ExitCode {
    let outcome = async {
        let config = config_of(&args)?;
        let token = crate::connect::clean_token("token_env", &token_from_env(&args.token_env)?)?;
        let http = crate::delivery::send::client(std::time::Duration::from_secs(20))
            .map_err(|e| ConnectError::Local(format!("the HTTP client cannot be built: {e}")))?;
        let validation = validate(&http, &config, &Credential::Token(token)).await?;
        Ok(json!({"ok": true, "network": validation.network, "http_status": validation.http_status,
                  "message": validation.message}))
    };
    report(outcome.await)
}

pub async fn connect_command(workspace: &Workspace, args: ConnectArgs) -> ExitCode {
    let outcome = async {
        let config = config_of(&args.check)?;
        let token = token_from_env(&args.check.token_env)?;
        let (store, connector, first_game) = connector(workspace).await?;
        let saved = connector.save_with_token(args.game.unwrap_or(first_game.id), config, &token).await;
        store.close().await;
        let saved = saved?;
        Ok(json!({"ok": true, "config_id": saved.config_id, "message": saved.validation.message}))
    };
    report(outcome.await)
}

pub async fn disconnect(workspace: &Workspace, config_id: i64, discard_queued: bool) -> ExitCode {
    let outcome = async {
        let (store, connector, _) = connector(workspace).await?;
        let done = connector.disconnect(config_id, discard_queued).await;
        store.close().await;
        done?;
        Ok(json!({"ok": true, "disconnected": config_id}))
    };
    report(outcome.await)
}
