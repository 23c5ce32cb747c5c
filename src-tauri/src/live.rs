//! Live updates: every batch of log rows the dispatcher writes goes to the window as a
//! `log-appended` event (no re-query of the page), and worth-knowing changes become desktop
//! notifications: a config failing on credentials, the last hour's success rate below the
//! user's threshold.

use std::collections::BTreeSet;

use postback::delivery::now_ms;
use postback::store::Store;
use postback::watch::alerts::{Alert, AlertState};
use postback::watch::Watch;
use tauri::{Emitter, Runtime};
use tauri_plugin_notification::NotificationExt;

/// The task that forwards the open workspace's log; a switch replaces it.
#[derive(Default)]
pub struct LiveLog(std::sync::Mutex<Option<tauri::async_runtime::JoinHandle<()>>>);

impl LiveLog {
    /// Forwards `store`'s log from now on (and no longer the previous workspace's).
    pub fn follow<R: Runtime>(&self, app: &tauri::AppHandle<R>, store: Store) {
        let task = forward_log(app, store);
        if let Some(old) = self.0.lock().unwrap_or_else(|p| p.into_inner()).replace(task) {
            old.abort();
        }
    }
}

fn forward_log<R: Runtime>(app: &tauri::AppHandle<R>, store: Store) -> tauri::async_runtime::JoinHandle<()> {
    let app = app.clone();
    let watch = Watch::new(store.clone());
    tauri::async_runtime::spawn(async move {
        let mut log = match store.subscribe_log().await {
            Ok(log) => log,
            Err(e) => {
                tracing::warn!(error = %e, "the live log cannot be followed; pages still load");
                return;
            }
        };
        let mut alerts = AlertState::default();
        loop {
            let batch = match log.recv().await {
                Ok(batch) => batch,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                    // The window refreshes its page when told rows were missed.
                    let _ = app.emit("log-lagged", missed);
                    continue;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            let _ = app.emit("log-appended", batch.as_slice());
            let configs: BTreeSet<i64> = batch.iter().map(|e| e.config_id).collect();
            notify(&app, &store, &watch, &mut alerts, configs).await;
        }
    })
}

async fn notify<R: Runtime>(
    app: &tauri::AppHandle<R>,
    store: &Store,
    watch: &Watch,
    state: &mut AlertState,
    configs: BTreeSet<i64>,
) {
    let threshold = watch.alert_threshold().await.unwrap_or(0.9);
    let now = now_ms();
    for config_id in configs {
        let (Ok(stored), Ok(health), Ok(last_hour)) =
            (store.config(config_id).await, store.health(config_id, now).await, watch.last_hour(config_id, now).await)
        else {
            continue;
        };
        let game = store.game(stored.game_id).await.map(|g| g.name).unwrap_or_default();
        let network = stored.config.network().display_name();
        for alert in state.evaluate(config_id, health, &last_hour, threshold, now) {
            let (title, body) = match alert {
                Alert::CredentialFailures { .. } => (
                    format!("{network} refused the credentials"),
                    format!("{game}: delivery to {network} waits until the credentials are rotated."),
                ),
                Alert::LowSuccessRate { rate, threshold, .. } => (
                    format!("{network}: {:.0} % delivered in the last hour", rate * 100.0),
                    format!(
                        "{game}: below your {:.0} % threshold. Open the Delivery log for the reasons.",
                        threshold * 100.0
                    ),
                ),
            };
            if let Err(e) = app.notification().builder().title(title).body(body).show() {
                tracing::warn!(error = %e, "a desktop notification could not be shown");
            }
        }
    }
}
