//! A test send: the one request an event makes to a config in the network's test mode, and
//! the network's answer in words.

use serde::Serialize;
use serde_json::Value;

use super::TesterError;
use crate::delivery::send::{exchange, Exchange};
use crate::delivery::Credential;
use crate::identity::PhoneCountry;
use crate::model::{ConversionEvent, Network, PostbackConfig};
use crate::networks::{self, ItemOutcome, Request};

/// Longest test code accepted: the networks' codes are short (`TEST12345`).
const MAX_TEST_CODE: usize = 64;

/// What the network said to a test send.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct TestAnswer {
    pub network: Network,
    pub accepted: bool,
    pub http_status: Option<u16>,
    /// In words: where the event shows, or why the network refused it.
    pub message: String,
    /// The request as sent, credentials redacted.
    #[ts(type = "unknown")]
    pub request: Value,
    /// Warnings about the event (too old for the network, unreadable phone, …).
    pub warnings: Vec<String>,
}

/// The config with `code` as its test code: refused for X, and for a blank or implausible code.
pub fn with_test_code(config: &PostbackConfig, code: &str) -> Result<PostbackConfig, TesterError> {
    let code = code.trim();
    if code.is_empty() {
        return Err(TesterError::TestCode(
            "is empty; copy the test code from the network's Events Manager → Test Events".into(),
        ));
    }
    if code.len() > MAX_TEST_CODE || code.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(TesterError::TestCode(format!(
            "is not a test code (at most {MAX_TEST_CODE} characters, no spaces); copy it again from Test Events"
        )));
    }
    let mut config = config.clone();
    match &mut config {
        PostbackConfig::TikTok(c) => c.test_event_code = Some(code.to_owned()),
        PostbackConfig::Reddit(c) => c.test_id = Some(code.to_owned()),
        PostbackConfig::X(_) => return Err(TesterError::NoTestMode(Network::X)),
    }
    Ok(config)
}

/// The one request a test send makes for `event`, and the event's warnings.
pub fn test_request(
    config: &PostbackConfig,
    event: &ConversionEvent,
    player_erased: bool,
    default_country: Option<PhoneCountry>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(Request, Vec<String>), TesterError> {
    let network = config.network();
    let prepared = networks::prepare_for_game(config, event, player_erased, default_country)
        .map_err(|skip| TesterError::Skipped(network, skip.message))?;
    let mut warnings = prepared.warnings.clone();
    warnings.extend(networks::send_window_problem(network, event.occurred_at, now));
    let request = networks::build_requests(config, std::slice::from_ref(&prepared)).into_iter().next();
    let request = request.ok_or_else(|| TesterError::Skipped(network, "no request could be built for it".into()))?;
    Ok((request, warnings))
}

/// Sends `request` (from [`test_request`] on a config from [`with_test_code`]) and reads the
/// network's answer. Nothing is stored.
pub async fn send_test(
    http: &reqwest::Client,
    network: Network,
    request: &Request,
    credential: &Credential,
    warnings: Vec<String>,
) -> Result<TestAnswer, TesterError> {
    let Exchange { classification, http_status, .. } = exchange(http, network, request, Ok(credential)).await;
    let name = network.display_name();
    let outcome = classification.items.into_iter().next();
    let (accepted, message) = match outcome {
        Some(ItemOutcome::Success) => (
            true,
            format!("{name} accepted the event under the test code: it shows in Events Manager → Test Events, not in reporting"),
        ),
        Some(ItemOutcome::Rejected { reason, credential: true }) => {
            (false, format!("{name} refused the token: {reason}; rotate the credentials on the card"))
        }
        Some(ItemOutcome::Rejected { reason, .. }) => (false, format!("{name} refused the event: {reason}")),
        Some(ItemOutcome::Resend) => (false, format!("{name} refused the event without naming a reason")),
        Some(ItemOutcome::Transient { reason, .. } | ItemOutcome::Unanswered { reason }) => {
            return Err(TesterError::Unreachable(format!("{name}: {reason}; nothing was queued")))
        }
        None => return Err(TesterError::Unreachable(format!("{name} gave no answer for the event"))),
    };
    Ok(TestAnswer { network, accepted, http_status, message, request: request.redacted_json(), warnings })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ApiError;
    use serde_json::json;

    fn config(doc: Value) -> PostbackConfig {
        PostbackConfig::from_json(&doc).expect("config")
    }

    fn event(doc: Value) -> ConversionEvent {
        ConversionEvent::from_json(&doc).expect("event")
    }

    #[test]
    fn the_code_goes_into_the_network_s_own_test_field() {
        let tiktok = config(json!({"network": "tiktok", "pixel_code": "CTEST00001", "trigger_events": ["purchase"]}));
        let PostbackConfig::TikTok(c) = with_test_code(&tiktok, " TEST42 ").unwrap() else { panic!() };
        assert_eq!(c.test_event_code.as_deref(), Some("TEST42"));
        let reddit = config(json!({"network": "reddit", "pixel_id": "a2_abc", "trigger_events": ["purchase"]}));
        let PostbackConfig::Reddit(c) = with_test_code(&reddit, "t-1").unwrap() else { panic!() };
        assert_eq!(c.test_id.as_deref(), Some("t-1"));
    }

    #[test]
    fn x_blank_and_pasted_garbage_are_refused_with_the_field() {
        let x = config(json!({"network": "x", "pixel_id": "o8z1a", "goals": []}));
        let err = ApiError::from(with_test_code(&x, "TEST1").unwrap_err());
        assert_eq!((err.code.as_str(), err.field.as_deref()), ("no_test_mode", Some("config")));
        assert!(err.message.contains("live conversion"), "{}", err.message);
        let tiktok = config(json!({"network": "tiktok", "pixel_code": "CTEST00001", "trigger_events": ["purchase"]}));
        for bad in ["", "  ", "TEST 42", &"T".repeat(65)] {
            let err = ApiError::from(with_test_code(&tiktok, bad).unwrap_err());
            assert_eq!(err.field.as_deref(), Some("test_code"), "{bad:?}");
        }
    }

    #[test]
    fn the_request_carries_the_code_and_a_skipped_event_says_why() {
        let tiktok = config(json!({"network": "tiktok", "pixel_code": "CTEST00001", "trigger_events": ["purchase"]}));
        let tiktok = with_test_code(&tiktok, "TEST42").unwrap();
        let now = chrono::Utc::now();
        let purchase = event(json!({"event_id": "e1", "name": "purchase", "occurred_at": now.to_rfc3339(),
            "player_id": "p1", "consent": "full", "click_ids": {"ttclid": "c1"}}));
        let (request, warnings) = test_request(&tiktok, &purchase, false, None, now).unwrap();
        assert_eq!(request.redacted_json().pointer("/body/test_event_code"), Some(&json!("TEST42")));
        assert!(warnings.is_empty(), "{warnings:?}");

        let launch = event(json!({"event_id": "e2", "name": "game_launch", "occurred_at": now.to_rfc3339(),
            "player_id": "p1", "consent": "full"}));
        let err = ApiError::from(test_request(&tiktok, &launch, false, None, now).unwrap_err());
        assert_eq!((err.code.as_str(), err.field.as_deref()), ("skipped", Some("event")));
        let err = test_request(&tiktok, &purchase, true, None, now).unwrap_err();
        assert!(matches!(err, TesterError::Skipped(Network::TikTok, _)), "an erased player is never sent: {err:?}");
    }
}
