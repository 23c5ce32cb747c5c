//! Save-time validation: before a credential is stored, one synthetic test event goes to TikTok
//! (with the test event code) or Reddit (with the test id), or X is asked whether the token can
//! reach an ad account with the right role. The network's answer becomes what to fix.

use serde_json::{json, Value};

use super::ConnectError;
use crate::delivery::send::{self, exchange, Exchange};
use crate::delivery::Credential;
use crate::model::{ConversionEvent, InputError, Network, PostbackConfig, XConfig};
use crate::networks::{self, HeaderValue, ItemOutcome};
use crate::secrets::Secret;

/// What the network said to the test.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, ts_rs::TS)]
pub struct Validation {
    pub network: crate::model::Network,
    pub http_status: Option<u16>,
    pub message: String,
}

/// Trims a pasted token and refuses the usual paste accidents, naming the field.
pub fn clean_token(field: &str, raw: &Secret) -> Result<Secret, InputError> {
    let trimmed = raw.expose().trim();
    if trimmed.is_empty() {
        return Err(InputError::new(field, "is empty; paste the token from the network's Events Manager"));
    }
    if trimmed.get(..7).is_some_and(|prefix| prefix.eq_ignore_ascii_case("bearer ")) {
        return Err(InputError::new(field, "starts with 'Bearer '; paste only the token itself"));
    }
    if trimmed.chars().any(char::is_whitespace) {
        return Err(InputError::new(
            field,
            "contains spaces or line breaks (the token was probably split when copied); paste it again as one line",
        ));
    }
    Ok(Secret::new(trimmed))
}

/// The synthetic event: the config's first trigger event, with every click id, at full consent.
fn test_event(config: &PostbackConfig, now: chrono::DateTime<chrono::Utc>) -> Result<ConversionEvent, ConnectError> {
    let name = config.trigger_events().first().cloned().unwrap_or_else(|| "game_launch".into());
    let marker = "postback-desk-validation";
    let doc = json!({
        "event_id": format!("{marker}-{}", now.timestamp_millis()),
        "name": name,
        "occurred_at": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "player_id": marker,
        "consent": "full",
        "click_ids": {"ttclid": marker, "rdt_cid": marker, "twclid": marker},
    });
    ConversionEvent::from_json(&doc).map_err(ConnectError::Input)
}

/// Sends the test. `config` carries the test code (TikTok / Reddit); it is used for this one
/// request and dropped with the config value.
pub async fn validate(
    http: &reqwest::Client,
    config: &PostbackConfig,
    credential: &Credential,
) -> Result<Validation, ConnectError> {
    let network = config.network();
    if let PostbackConfig::X(x) = config {
        return validate_x(http, x, credential).await;
    }
    let event = test_event(config, chrono::Utc::now())?;
    let prepared = networks::prepare(config, &event, false)
        .map_err(|skip| ConnectError::Refused { field: "config".into(), message: skip.message })?;
    let Some(request) = networks::build_requests(config, &[prepared]).into_iter().next() else {
        return Err(ConnectError::Refused { field: "config".into(), message: "no test request could be built".into() });
    };
    let Exchange { classification, http_status, .. } = exchange(http, network, &request, Ok(credential)).await;
    let Some(outcome) = classification.items.into_iter().next() else {
        return Err(ConnectError::Unreachable(format!("{} gave no answer for the test event", network.display_name())));
    };
    let name = network.display_name();
    match outcome {
        ItemOutcome::Success => {
            Ok(Validation { network, http_status, message: accepted_message(name, test_code(config)) })
        }
        ItemOutcome::Rejected { reason, credential: true } => {
            Err(ConnectError::Refused { field: token_field(network).into(), message: format!("{name}: {reason}") })
        }
        ItemOutcome::Rejected { reason, .. } => Err(ConnectError::Refused {
            field: "config".into(),
            message: format!("{name} refused the test event: {reason}"),
        }),
        ItemOutcome::Resend => Err(ConnectError::Refused {
            field: "config".into(),
            message: format!("{name} refused the test event without naming a reason"),
        }),
        ItemOutcome::Transient { reason, .. } | ItemOutcome::Unanswered { reason } => {
            Err(ConnectError::Unreachable(format!("{name}: {reason}")))
        }
    }
}

/// The test code a TikTok or Reddit config carries for this check, if the user gave one.
fn test_code(config: &PostbackConfig) -> Option<&str> {
    let code = match config {
        PostbackConfig::TikTok(c) => c.test_event_code.as_deref(),
        PostbackConfig::Reddit(c) => c.test_id.as_deref(),
        PostbackConfig::X(_) => None,
    };
    code.map(str::trim).filter(|c| !c.is_empty())
}

/// What the user is told when the network accepted the check's event: under a test code it
/// shows under Test Events only; without one it was a live event, counted like any other.
fn accepted_message(network: &str, test_code: Option<&str>) -> String {
    match test_code {
        Some(_) => format!(
            "{network} accepted the test event; it shows in Events Manager → Test Events under your test code, \
             and not in your reporting"
        ),
        None => format!(
            "{network} accepted the test event as a live event (no test code was given): it counts in the \
             pixel's data and reporting like a real conversion and does not show under Test Events; give a \
             test code from Events Manager → Test Events to check without that"
        ),
    }
}

/// The form field a network's token is typed into.
pub fn token_field(network: Network) -> &'static str {
    match network {
        Network::TikTok => "access_token",
        Network::Reddit => "conversion_access_token",
        Network::X => "connection",
    }
}

const X_API: &str = "https://ads-api.x.com";
const X_ROLES: [&str; 2] = ["ACCOUNT_ADMIN", "AD_MANAGER"];

async fn x_get(http: &reqwest::Client, url: &str, credential: &Credential) -> Result<(u16, Value), ConnectError> {
    let url = &*crate::sandbox::resolve(url);
    let authorization = send::header_value(HeaderValue::XAuthorization, credential, "GET", url)
        .map_err(|m| ConnectError::Refused { field: "connection".into(), message: m })?;
    let response = http
        .get(url)
        .header("authorization", authorization)
        .send()
        .await
        .map_err(|e| ConnectError::Unreachable(format!("X: {}", crate::http_errors::describe(&e))))?;
    let status = response.status().as_u16();
    let body = response.text().await.ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(Value::Null);
    Ok((status, body))
}

fn x_message(body: &Value) -> String {
    body.pointer("/errors/0/message").and_then(Value::as_str).unwrap_or("no details").to_owned()
}

/// X has no test code: check that the token works and reaches an ad account as admin / manager.
async fn validate_x(
    http: &reqwest::Client,
    config: &XConfig,
    credential: &Credential,
) -> Result<Validation, ConnectError> {
    let base = config.base_url.as_deref().unwrap_or(X_API).trim_end_matches('/');
    let refused = |message: String| ConnectError::Refused { field: "connection".into(), message };
    let (status, body) = x_get(http, &format!("{base}/12/accounts"), credential).await?;
    match status {
        200 => {}
        401 => return Err(refused(format!("X refused the token ({}); reconnect X", x_message(&body)))),
        403 => {
            return Err(refused(format!(
                "X refused access ({}): the X developer app needs Ads API access; request it in the X developer portal",
                x_message(&body)
            )))
        }
        429 | 500..=599 => return Err(ConnectError::Unreachable(format!("X answered HTTP {status}"))),
        _ => return Err(refused(format!("X answered HTTP {status}: {}", x_message(&body)))),
    }
    let accounts = body.get("data").and_then(Value::as_array).cloned().unwrap_or_default();
    if accounts.is_empty() {
        return Err(refused(
            "the connected X user reaches no ad account; connect with the user that manages the pixel's ad account"
                .into(),
        ));
    }
    for account in accounts.iter().take(20) {
        let Some(id) = account.get("id").and_then(Value::as_str) else { continue };
        let (status, access) =
            x_get(http, &format!("{base}/12/accounts/{id}/authenticated_user_access"), credential).await?;
        let permissions: Vec<&str> = access
            .pointer("/data/permissions")
            .and_then(Value::as_array)
            .map(|p| p.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if status == 200 && permissions.iter().any(|p| X_ROLES.contains(p)) {
            let name = account.get("name").and_then(Value::as_str).unwrap_or(id);
            return Ok(Validation {
                network: Network::X,
                http_status: Some(200),
                message: format!(
                    "X accepted the connection: ad account '{name}' with {}; conversions go to pixel {}",
                    permissions.join(", "),
                    config.pixel_id
                ),
            });
        }
    }
    Err(refused(
        "the connected X user has neither ACCOUNT_ADMIN nor AD_MANAGER on any of its ad accounts; ask the account admin for one of these roles".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_accepted_check_says_whether_a_live_event_was_sent() {
        let live = accepted_message("TikTok Ads", None);
        assert!(live.contains("live event") && live.contains("reporting"), "{live}");
        assert!(!live.contains("under your test code"), "{live}");
        let test = accepted_message("TikTok Ads", Some("TEST42"));
        assert!(test.contains("Test Events under your test code") && !test.contains("live event"), "{test}");
        assert!(!test.contains("TEST42"), "the code is not repeated anywhere it could be kept");
        let blank = PostbackConfig::from_json(&serde_json::json!({"network": "reddit", "pixel_id": "a2_abc",
            "trigger_events": ["purchase"], "test_id": "  "}))
        .unwrap();
        assert_eq!(test_code(&blank), None, "a blank code is no code");
    }

    #[test]
    fn paste_accidents_name_the_field() {
        // A multi-byte character where "Bearer " would end is not a panic.
        assert!(clean_token("access_token", &"abcdefé1".into()).is_ok());
        assert_eq!(
            clean_token("access_token", &" abc123\n".into()).map(|s| s.expose().to_owned()),
            Ok("abc123".into())
        );
        for (raw, words) in [("", "is empty"), ("Bearer abc", "'Bearer '"), ("abc 123", "spaces or line breaks")] {
            let err = clean_token("access_token", &raw.into()).expect_err(raw);
            assert_eq!(err.field, "access_token");
            assert!(err.message.contains(words), "{raw}: {}", err.message);
        }
    }
}
