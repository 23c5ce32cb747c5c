//! `postback test-send --config ID --event E.json --test-code CODE`: the event tester's CLI twin.
//! One event in the network's test mode; nothing is queued, logged or kept (the code included).

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;

use super::{read_file, Workspace};
use crate::identity::PhoneCountry;
use crate::model::{ApiError, ConversionEvent};
use crate::store::{Store, StoreError};
use crate::tester::{self, TestAnswer};

#[derive(clap::Args, Debug)]
pub struct TestSendArgs {
    /// Config id (from `postback integrations`): TikTok or Reddit; X has no test mode
    #[arg(long)]
    pub config: i64,
    /// The event, as canonical JSON
    #[arg(long)]
    pub event: PathBuf,
    /// TikTok test event code / Reddit test id from Events Manager → Test Events; used for this
    /// request only, never stored
    #[arg(long)]
    pub test_code: String,
}

/// Prints the network's answer as JSON on stdout: exit 0 when it accepted the event, 1 when it
/// refused it. Errors go to stderr: exit 2 for input to fix, 1 otherwise.
pub async fn test_send(workspace: &Workspace, args: TestSendArgs) -> ExitCode {
    match answer(workspace, &args).await {
        Ok(answer) => {
            println!("{}", json!(answer));
            if answer.accepted {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("{}", json!({"error": {"code": e.code, "field": e.field, "message": e.message}}));
            let input = e.field.is_some() && e.code != "network_unreachable";
            ExitCode::from(if input { 2 } else { 1 })
        }
    }
}

async fn answer(workspace: &Workspace, args: &TestSendArgs) -> Result<TestAnswer, ApiError> {
    let event = ConversionEvent::from_json_str(&read_file(&args.event, "event")?)?;
    let store = workspace.open_store().await?;
    let answer = send_with(workspace, &store, args, &event).await;
    store.close().await;
    answer
}

async fn send_with(
    workspace: &Workspace,
    store: &Store,
    args: &TestSendArgs,
    event: &ConversionEvent,
) -> Result<TestAnswer, ApiError> {
    let stored = store.config(args.config).await.map_err(|e| match e {
        StoreError::ConfigNotFound(id) => {
            ApiError::new("not_found", format!("there is no config {id}; `postback integrations` lists the config ids"))
                .on_field("config")
        }
        other => other.into(),
    })?;
    let config = tester::with_test_code(&stored.config, &args.test_code)?;
    let game = store.game(stored.game_id).await?;
    let country = game.default_country.as_deref().and_then(PhoneCountry::parse);
    let erased = !store.erased_among(&[event.player_id.as_str()]).await?.is_empty();
    let (request, warnings) = tester::test_request(&config, event, erased, country, chrono::Utc::now())?;
    let credentials = workspace.credentials(store).await?;
    let credential = credentials
        .credential(config.network(), stored.credential_ref.as_deref())
        .await
        .map_err(|e| ApiError::new("credentials", e.to_string()))?;
    let http = crate::delivery::send::client(std::time::Duration::from_secs(20))
        .map_err(|e| ApiError::new("storage", format!("the HTTP client cannot be built: {e}")))?;
    Ok(tester::send_test(&http, config.network(), &request, &credential, warnings).await?)
}
