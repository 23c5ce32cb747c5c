//! The Sandbox page: what the simulated networks received, per pixel, and their fault
//! controls — through the app's own sandbox's control API on loopback (on its usual port or,
//! when another program holds that, wherever it runs).

use postback::model::ApiError;
use postback::sandbox::{Faults, SandboxOverview};
use tauri::{AppHandle, Manager, Runtime};

use crate::background::Background;

/// The app's sandbox: its base URL and why it is not on its usual port, if so.
fn sandbox<R: Runtime>(app: &AppHandle<R>) -> Result<(String, Option<String>), ApiError> {
    let background =
        app.try_state::<Background>().ok_or_else(|| ApiError::new("sandbox_down", "the sandbox is starting"))?;
    let (url, notice) = background.sandbox().map_err(|problem| ApiError::new("sandbox_down", problem))?;
    Ok((url.to_owned(), notice.map(str::to_owned)))
}

fn unreachable(base_url: &str) -> impl Fn(reqwest::Error) -> ApiError + '_ {
    move |e| {
        ApiError::new("sandbox_down", format!("the sandbox at {base_url} does not answer ({e}); restart Postback Desk"))
    }
}

fn client() -> Result<reqwest::Client, ApiError> {
    postback::delivery::http_client(std::time::Duration::from_secs(5))
        .map_err(|e| ApiError::new("sandbox_down", format!("the HTTP client cannot be built: {e}")))
}

async fn get_json<T: serde::de::DeserializeOwned>(base_url: &str, path: &str) -> Result<T, ApiError> {
    let http = client()?;
    let response = http.get(format!("{base_url}{path}")).send().await.map_err(unreachable(base_url))?;
    let text = response.text().await.map_err(unreachable(base_url))?;
    serde_json::from_str(&text)
        .map_err(|e| ApiError::new("sandbox_down", format!("unexpected answer from the sandbox: {e}")))
}

async fn post_json(base_url: &str, path: &str, body: String) -> Result<String, ApiError> {
    let http = client()?;
    let response = http
        .post(format!("{base_url}{path}"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(unreachable(base_url))?;
    let ok = response.status().is_success();
    let text = response.text().await.map_err(unreachable(base_url))?;
    if ok {
        Ok(text)
    } else {
        Err(ApiError::new("invalid_input", text))
    }
}

#[tauri::command]
pub async fn sandbox_overview<R: Runtime>(app: AppHandle<R>) -> Result<SandboxOverview, ApiError> {
    let (base_url, notice) = sandbox(&app)?;
    Ok(SandboxOverview {
        pixels: get_json(&base_url, "/__sandbox/pixels").await?,
        faults: get_json(&base_url, "/__sandbox/faults").await?,
        base_url,
        notice,
    })
}

#[tauri::command]
pub async fn set_sandbox_faults<R: Runtime>(app: AppHandle<R>, faults: Faults) -> Result<Faults, ApiError> {
    let (base_url, _) = sandbox(&app)?;
    let body = serde_json::to_string(&faults).map_err(|e| ApiError::new("invalid_input", e.to_string()))?;
    let text = post_json(&base_url, "/__sandbox/faults", body).await?;
    serde_json::from_str(&text).map_err(|e| ApiError::new("sandbox_down", e.to_string()))
}

/// Forgets what the sandbox received and clears its faults.
#[tauri::command]
pub async fn reset_sandbox<R: Runtime>(app: AppHandle<R>) -> Result<(), ApiError> {
    let (base_url, _) = sandbox(&app)?;
    post_json(&base_url, "/__sandbox/reset", "{}".into()).await.map(|_| ())
}
