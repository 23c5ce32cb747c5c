//! What one event would send to each of a game's configs: the exact requests (credentials
//! redacted) or the skip reason in words, the warnings, the match keys present. Pure: the
//! store's part (configs, erasure, the game's phone country) is read by [`super::run`].

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::locate::field_line;
use crate::identity::PhoneCountry;
use crate::model::{ApiError, ConversionEvent, Network};
use crate::networks::{self, Matchability, Request};
use crate::quality::MatchKey;
use crate::store::StoredConfig;

/// Why pasted text is not an event: the field to fix and, when it can be found, its line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
pub struct EventProblem {
    /// `event` when the text as a whole is to blame (not JSON, not an object).
    pub field: String,
    /// 1-based line of the text, when known.
    pub line: Option<u32>,
    pub message: String,
}

impl From<EventProblem> for ApiError {
    fn from(problem: EventProblem) -> Self {
        let field = if problem.field == "event" { String::new() } else { format!("{}: ", problem.field) };
        let message = match problem.line {
            Some(line) => format!("line {line}: {field}{}", problem.message),
            None => format!("{field}{}", problem.message),
        };
        ApiError::new("invalid_input", message).on_field(&problem.field)
    }
}

/// The tester's answer for one event: either the problem with the text, or one check per config.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct EventCheck {
    pub problem: Option<EventProblem>,
    pub configs: Vec<ConfigCheck>,
}

/// What the event would do at one config.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct ConfigCheck {
    pub config_id: i64,
    pub network: Network,
    pub pixel: String,
    /// Whether the config is switched on (a switched-off config sends nothing, but the preview
    /// still shows what it would send).
    pub enabled: bool,
    /// Whether credentials are connected (a test send needs them).
    pub connected: bool,
    /// The requests as they would leave, credentials redacted; empty when skipped.
    #[ts(type = "unknown[]")]
    pub requests: Vec<Value>,
    /// Why the event is not sent here, in words (`None` when it is).
    pub skipped: Option<String>,
    /// What weakens the event here (too old for the network, unreadable phone, …).
    pub warnings: Vec<String>,
    /// The match keys the request carries.
    pub match_keys: Vec<MatchKey>,
    /// When the network stops taking this event (epoch ms): its acceptance window's end.
    pub accepted_until_ms: i64,
    /// The network's name for the test code ("test event code"), or `None` when it has no
    /// test mode (X).
    pub test_code_label: Option<String>,
    /// Where a test send shows, or why there is none.
    pub test_mode: String,
}

/// Reads pasted canonical JSON, naming the field (and line) of the first problem.
pub fn read_event(text: &str) -> Result<ConversionEvent, EventProblem> {
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
        let line = u32::try_from(e.line()).ok().filter(|&l| l > 0);
        return Err(EventProblem {
            field: "event".into(),
            line,
            message: format!("not valid JSON ({e}); fix the syntax and try again"),
        });
    }
    ConversionEvent::from_json_str(text).map_err(|e| EventProblem {
        line: field_line(text, &e.field),
        message: e.message,
        field: e.field,
    })
}

/// The checks of `event` at each of `configs`: `erased` says the player was erased, phone
/// numbers without a country code are read in `default_country`; `now` dates the warnings.
pub fn check_event(
    configs: &[StoredConfig],
    event: &ConversionEvent,
    erased: bool,
    default_country: Option<PhoneCountry>,
    now: DateTime<Utc>,
) -> Vec<ConfigCheck> {
    let mut matchability = Matchability::new(default_country);
    configs.iter().map(|stored| check_one(stored, event, erased, default_country, &mut matchability, now)).collect()
}

fn check_one(
    stored: &StoredConfig,
    event: &ConversionEvent,
    erased: bool,
    default_country: Option<PhoneCountry>,
    matchability: &mut Matchability,
    now: DateTime<Utc>,
) -> ConfigCheck {
    let config = &stored.config;
    let network = config.network();
    let (requests, skipped, warnings, match_keys) =
        match networks::prepare_for_game(config, event, erased, default_country) {
            Err(skip) => (Vec::new(), Some(skip.message), Vec::new(), Vec::new()),
            Ok(prepared) => {
                let mut warnings = prepared.warnings.clone();
                warnings.extend(networks::send_window_problem(network, event.occurred_at, now));
                let requests = networks::build_requests(config, std::slice::from_ref(&prepared));
                let keys = matchability.keys(config, event).iter().collect();
                (requests.iter().map(Request::redacted_json).collect(), None, warnings, keys)
            }
        };
    let (test_code_label, test_mode) = test_mode(network);
    ConfigCheck {
        config_id: stored.id,
        network,
        pixel: config.pixel().to_owned(),
        enabled: stored.enabled,
        connected: stored.credential_ref.is_some(),
        requests,
        skipped,
        warnings,
        match_keys,
        accepted_until_ms: (event.occurred_at + networks::acceptance_window(network).max_age).timestamp_millis(),
        test_code_label,
        test_mode,
    }
}

/// The network's name for its test code and where a test send shows.
fn test_mode(network: Network) -> (Option<String>, String) {
    let name = network.display_name();
    match network {
        Network::TikTok => (
            Some("Test event code".into()),
            format!("{name} shows a test event under Events Manager → Test Events, not in reporting"),
        ),
        Network::Reddit => (
            Some("Test id".into()),
            format!("{name} shows a test event under Events Manager → Test Events, not in reporting"),
        ),
        Network::X => (
            None,
            format!("{name} has no test mode: whatever is sent to it counts as a live conversion, so the tester only previews it"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PostbackConfig;
    use crate::store::OfflineState;
    use serde_json::json;

    fn stored(id: i64, doc: Value) -> StoredConfig {
        StoredConfig {
            id,
            game_id: 1,
            enabled: true,
            credential_ref: Some(format!("ref-{id}")),
            paused_reason: None,
            offline: OfflineState::default(),
            config: PostbackConfig::from_json(&doc).expect("config"),
        }
    }

    fn configs() -> Vec<StoredConfig> {
        vec![
            stored(1, json!({"network": "tiktok", "pixel_code": "CTEST00001", "trigger_events": ["purchase"]})),
            stored(2, json!({"network": "reddit", "pixel_id": "a2_abc", "trigger_events": ["game_launch"]})),
            stored(
                3,
                json!({"network": "x", "pixel_id": "o8z1a", "goals": [{"id": "g1", "event": "purchase", "event_tag": "tw-o8z1a-ol288"}]}),
            ),
        ]
    }

    #[test]
    fn each_config_gets_its_request_or_its_skip_and_the_keys_it_carries() {
        let now = Utc::now();
        let event = read_event(
            &json!({"event_id": "e1", "name": "purchase", "occurred_at": now.to_rfc3339(),
            "player_id": "p1", "consent": "full", "email": "A@b.co", "click_ids": {"ttclid": "c1"}})
            .to_string(),
        )
        .expect("event");
        let checks = check_event(&configs(), &event, false, None, now);
        let [tiktok, reddit, x] = &checks[..] else { panic!("{checks:?}") };

        assert_eq!(tiktok.requests.len(), 1);
        assert_eq!(tiktok.skipped, None);
        assert_eq!(tiktok.match_keys, [MatchKey::ClickId, MatchKey::Email, MatchKey::ExternalId]);
        assert_eq!(tiktok.test_code_label.as_deref(), Some("Test event code"));
        let body = serde_json::to_string(&tiktok.requests[0]).unwrap();
        assert!(!body.contains("A@b.co"), "the email leaves hashed only: {body}");

        assert!(reddit.requests.is_empty());
        assert!(reddit.skipped.as_deref().unwrap_or_default().contains("purchase"), "{:?}", reddit.skipped);
        assert!(reddit.match_keys.is_empty(), "a skipped event carries nothing");

        assert_eq!(x.requests.len(), 1);
        assert_eq!(x.match_keys, [MatchKey::Email], "X has no click id here and no external id");
        assert_eq!(x.test_code_label, None);
        assert!(x.test_mode.contains("live conversion"), "{}", x.test_mode);
    }

    #[test]
    fn an_old_event_warns_and_says_when_the_network_stops_taking_it() {
        let now = Utc::now();
        let occurred = now - chrono::Duration::days(10);
        let event = read_event(
            &json!({"event_id": "e1", "name": "game_launch", "occurred_at": occurred.to_rfc3339(),
            "player_id": "p1", "consent": "anonymous", "click_ids": {"rdt_cid": "c1"}})
            .to_string(),
        )
        .expect("event");
        let checks = check_event(&configs(), &event, false, None, now);
        let reddit = &checks[1];
        assert_eq!(reddit.accepted_until_ms, (occurred + chrono::Duration::hours(168)).timestamp_millis());
        assert!(reddit.warnings.iter().any(|w| w.contains("7 days") || w.contains("168")), "{:?}", reddit.warnings);
    }

    #[test]
    fn an_erased_player_is_skipped_everywhere() {
        let now = Utc::now();
        let event = read_event(
            &json!({"event_id": "e1", "name": "purchase", "occurred_at": now.to_rfc3339(),
            "player_id": "p1", "consent": "full", "click_ids": {"ttclid": "c1", "twclid": "t1"}})
            .to_string(),
        )
        .expect("event");
        for check in check_event(&configs(), &event, true, None, now) {
            assert!(check.requests.is_empty() && check.skipped.is_some(), "{check:?}");
        }
    }

    #[test]
    fn bad_text_names_the_line_and_the_field() {
        let problem = read_event("{\n  \"event_id\": \"e1\",\n  \"name\" \"purchase\"\n}").unwrap_err();
        assert_eq!((problem.field.as_str(), problem.line), ("event", Some(3)));
        assert!(problem.message.contains("not valid JSON"), "{}", problem.message);

        let text = "{\"event_id\": \"e1\", \"name\": \"purchase\",\n \"occurred_at\": \"yesterday\",\n \"player_id\": \"p1\", \"consent\": \"full\"}";
        let problem = read_event(text).unwrap_err();
        assert_eq!((problem.field.as_str(), problem.line), ("occurred_at", Some(2)));

        let problem = read_event("[1, 2]").unwrap_err();
        assert_eq!((problem.field.as_str(), problem.line), ("event", None));
    }
}
