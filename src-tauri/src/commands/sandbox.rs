//! The Sandbox page: what the simulated networks received, per pixel, and their fault
//! controls — through the sandbox's own control API on loopback, so it works whichever process
//! serves it.

use postback::model::ApiError;
use postback::sandbox::{Faults, SandboxOverview};

fn unreachable(e: reqwest::Error) -> ApiError {
    ApiError::new(
        "sandbox_down",
        format!("the sandbox at {} does not answer ({e}); restart Postback Desk", postback::sandbox_base_url()),
    )
}

async fn get_json<T: serde::de::DeserializeOwned>(path: &str) -> Result<T, ApiError> {
    let http = postback::delivery::http_client(std::time::Duration::from_secs(5));
    let response = http.get(format!("{}{path}", postback::sandbox_base_url())).send().await.map_err(unreachable)?;
    let text = response.text().await.map_err(unreachable)?;
    serde_json::from_str(&text)
        .map_err(|e| ApiError::new("sandbox_down", format!("unexpected answer from the sandbox: {e}")))
}

async fn post_json(path: &str, body: String) -> Result<String, ApiError> {
    let http = postback::delivery::http_client(std::time::Duration::from_secs(5));
    let response = http
        .post(format!("{}{path}", postback::sandbox_base_url()))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(unreachable)?;
    let ok = response.status().is_success();
    let text = response.text().await.map_err(unreachable)?;
    if ok {
        Ok(text)
    } else {
        Err(ApiError::new("invalid_input", text))
    }
}

#[tauri::command]
pub async fn sandbox_overview() -> Result<SandboxOverview, ApiError> {
    Ok(SandboxOverview {
        base_url: postback::sandbox_base_url(),
        pixels: get_json("/__sandbox/pixels").await?,
        faults: get_json("/__sandbox/faults").await?,
    })
}

#[tauri::command]
pub async fn set_sandbox_faults(faults: Faults) -> Result<Faults, ApiError> {
    let body = serde_json::to_string(&faults).map_err(|e| ApiError::new("invalid_input", e.to_string()))?;
    let text = post_json("/__sandbox/faults", body).await?;
    serde_json::from_str(&text).map_err(|e| ApiError::new("sandbox_down", e.to_string()))
}

/// Forgets what the sandbox received and clears its faults.
#[tauri::command]
pub async fn reset_sandbox() -> Result<(), ApiError> {
    post_json("/__sandbox/reset", "{}".into()).await.map(|_| ())
}
