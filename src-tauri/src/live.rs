//! Live updates: every batch of log rows the dispatcher writes goes to the window as a
//! `log-appended` event (no re-query of the page), and worth-knowing changes become desktop
//! notifications: a config failing on credentials, the last hour's success rate below the
//! user's threshold, queued conversions whose acceptance window closes within 24 h.

use std::collections::BTreeSet;
use std::time::Duration;

use postback::deadline::DeadlineAlerts;
use postback::delivery::now_ms;
use postback::store::Store;
use postback::watch::alerts::{Alert, AlertState};
use postback::watch::Watch;
use tauri::{Emitter, Runtime};
use tauri_plugin_notification::NotificationExt;

/// How often queued conversions are checked against their acceptance windows (they close
/// over days; the warning comes 24 h ahead).
const DEADLINE_CHECK: Duration = Duration::from_secs(10 * 60);

/// The tasks that follow the open workspace (its log, its queue's deadlines); a switch
/// replaces them.
#[derive(Default)]
pub struct LiveLog(std::sync::Mutex<Vec<tauri::async_runtime::JoinHandle<()>>>);

impl LiveLog {
    /// Follows `store` from now on (and no longer the previous workspace).
    pub fn follow<R: Runtime>(&self, app: &tauri::AppHandle<R>, store: Store) {
        let tasks = vec![forward_log(app, store.clone()), watch_deadlines(app, store)];
        let old = std::mem::replace(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()), tasks);
        for task in old {
            task.abort();
        }
    }
}

/// Every [`DEADLINE_CHECK`], each game's configs: a notification when queued conversions newly
/// reach the last 24 h of their network's acceptance window.
fn watch_deadlines<R: Runtime>(app: &tauri::AppHandle<R>, store: Store) -> tauri::async_runtime::JoinHandle<()> {
    let app = app.clone();
    let watch = Watch::new(store.clone());
    tauri::async_runtime::spawn(async move {
        let mut alerts = DeadlineAlerts::default();
        loop {
            for game in store.games().await.unwrap_or_default() {
                let Ok(deadlines) = watch.deadlines(game.id, now_ms()).await else { continue };
                for d in alerts.evaluate(&deadlines) {
                    let network = d.network.display_name();
                    let title = format!("{network}: queued conversions about to expire");
                    let body = format!("{}: {}", game.name, d.warning.as_deref().unwrap_or_default());
                    if let Err(e) = app.notification().builder().title(title).body(body).show() {
                        tracing::warn!(error = %e, "a desktop notification could not be shown");
                    }
                }
            }
            tokio::time::sleep(DEADLINE_CHECK).await;
        }
    })
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
