//! `postback test-send --config ID --event E.json --test-code CODE`: the event tester's CLI twin.
//! One event in the network's test mode; nothing is queued, logged or kept (the code included).

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;

use super::{read_file, Workspace};
use crate::model::{ApiError, ConversionEvent};
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
    store: &crate::store::Store,
    args: &TestSendArgs,
    event: &ConversionEvent,
) -> Result<TestAnswer, ApiError> {
    let credentials = workspace.credentials(store).await?;
    let http = crate::delivery::http_client(std::time::Duration::from_secs(20))
        .map_err(|e| ApiError::new("storage", format!("the HTTP client cannot be built: {e}")))?;
    Ok(tester::send_for_config(store, &credentials, &http, args.config, event, &args.test_code).await?)
}
