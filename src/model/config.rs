use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use ts_rs::TS;

use super::event::{optional_str, required_str};
use super::{formats, InputError, Network};

/// A Conversion Goal: which player event counts, and (for X) the Single Event Tag it reports to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Goal {
    pub id: String,
    pub name: String,
    /// The canonical event name that counts for this goal (`purchase`, `game_launch`, …).
    pub event: String,
    pub active: bool,
    /// Every matching event, or only a player's first.
    #[serde(default)]
    pub rule: TriggerRule,
    /// Only events worth at least this much in this currency count (purchase goals).
    #[serde(default)]
    pub value_filter: Option<ValueFilter>,
    /// X Single Event Tag id (`tw-xxxxx-yyyyy`); a goal without one is not sent to X.
    pub event_tag: Option<String>,
}

/// How often a player's events count for a goal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum TriggerRule {
    #[default]
    EveryTime,
    /// Only the player's first matching event (enqueued first); later ones are not sent.
    OncePerPlayer,
}

impl TriggerRule {
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerRule::EveryTime => "every_time",
            TriggerRule::OncePerPlayer => "once_per_player",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "every_time" => Some(TriggerRule::EveryTime),
            "once_per_player" => Some(TriggerRule::OncePerPlayer),
            _ => None,
        }
    }
}

/// "value ≥ `min_value` in `currency`": events in another currency, or without a value, do
/// not count (no conversion rates are applied).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct ValueFilter {
    /// A decimal amount such as `"9.99"`.
    pub min_value: String,
    /// ISO 4217, upper case.
    pub currency: String,
}

impl Goal {
    /// An active goal counting every `event`, reported to X under `event_tag`.
    pub fn mapped(id: &str, name: &str, event: &str, event_tag: &str) -> Self {
        Goal {
            id: id.into(),
            name: name.into(),
            event: event.into(),
            active: true,
            rule: TriggerRule::EveryTime,
            value_filter: None,
            event_tag: Some(event_tag.into()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct TikTokConfig {
    pub pixel_code: String,
    pub trigger_events: Vec<String>,
    /// Only for the save-time validation request: never stored, never serialised.
    #[serde(skip)]
    #[ts(skip)]
    pub test_event_code: Option<String>,
    /// API base URL override (the sandbox); `None` means the real network.
    pub base_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct RedditConfig {
    pub pixel_id: String,
    pub trigger_events: Vec<String>,
    /// Only for the save-time validation request: never stored, never serialised.
    #[serde(skip)]
    #[ts(skip)]
    pub test_id: Option<String>,
    pub base_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct XConfig {
    pub pixel_id: String,
    pub goals: Vec<Goal>,
    pub base_url: Option<String>,
}

/// One network's postback settings for a game. Secrets are never part of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "network", rename_all = "lowercase")]
pub enum PostbackConfig {
    #[serde(rename = "tiktok")]
    TikTok(TikTokConfig),
    Reddit(RedditConfig),
    X(XConfig),
}

/// Field names that would mean a secret was put into a config file.
const SECRET_FIELDS: [&str; 6] =
    ["access_token", "token", "conversion_access_token", "consumer_secret", "oauth_token_secret", "api_key"];

impl PostbackConfig {
    pub fn network(&self) -> Network {
        match self {
            PostbackConfig::TikTok(_) => Network::TikTok,
            PostbackConfig::Reddit(_) => Network::Reddit,
            PostbackConfig::X(_) => Network::X,
        }
    }

    pub fn base_url(&self) -> Option<&str> {
        match self {
            PostbackConfig::TikTok(c) => c.base_url.as_deref(),
            PostbackConfig::Reddit(c) => c.base_url.as_deref(),
            PostbackConfig::X(c) => c.base_url.as_deref(),
        }
    }

    /// The pixel this config reports to (TikTok pixel code, Reddit / X pixel id).
    pub fn pixel(&self) -> &str {
        match self {
            PostbackConfig::TikTok(c) => &c.pixel_code,
            PostbackConfig::Reddit(c) => &c.pixel_id,
            PostbackConfig::X(c) => &c.pixel_id,
        }
    }

    /// TikTok / Reddit: the player events that are forwarded. X has none: its Goals decide.
    pub fn trigger_events(&self) -> &[String] {
        match self {
            PostbackConfig::TikTok(c) => &c.trigger_events,
            PostbackConfig::Reddit(c) => &c.trigger_events,
            PostbackConfig::X(_) => &[],
        }
    }

    /// Parses and validates a config document, naming the first bad field.
    pub fn from_json(doc: &Value) -> Result<Self, InputError> {
        let obj = doc
            .as_object()
            .ok_or_else(|| InputError::new("config", "expected a JSON object with a \"network\" field"))?;
        if let Some(field) = SECRET_FIELDS.iter().find(|f| obj.contains_key(**f)) {
            return Err(InputError::new(
                *field,
                "secrets never go into a config file; remove it and store the token in the OS keychain (the app's Connect dialog or `postback validate --token-env`)",
            ));
        }
        let network_raw = required_str(obj, "network")?;
        let network = Network::parse(&network_raw).ok_or_else(|| {
            InputError::new("network", format!("'{network_raw}' is not a supported network; use tiktok, reddit or x"))
        })?;
        let base_url = optional_str(obj, "base_url")?
            .map(|u| formats::base_url(&u).map_err(|m| InputError::new("base_url", m)))
            .transpose()?;
        Ok(match network {
            Network::TikTok => PostbackConfig::TikTok(TikTokConfig {
                pixel_code: checked(obj, "pixel_code", formats::tiktok_pixel_code)?,
                trigger_events: trigger_events(obj)?,
                test_event_code: optional_str(obj, "test_event_code")?,
                base_url,
            }),
            Network::Reddit => PostbackConfig::Reddit(RedditConfig {
                pixel_id: checked(obj, "pixel_id", formats::reddit_pixel_id)?,
                trigger_events: trigger_events(obj)?,
                test_id: optional_str(obj, "test_id")?,
                base_url,
            }),
            Network::X => PostbackConfig::X(XConfig {
                pixel_id: checked(obj, "pixel_id", formats::x_pixel_id)?,
                goals: goals(obj)?,
                base_url,
            }),
        })
    }

    pub fn from_json_str(text: &str) -> Result<Self, InputError> {
        let doc: Value = serde_json::from_str(text)
            .map_err(|e| InputError::new("config", format!("not valid JSON ({e}); fix the syntax and try again")))?;
        Self::from_json(&doc)
    }
}

fn checked(
    obj: &Map<String, Value>,
    field: &str,
    check: fn(&str) -> Result<String, String>,
) -> Result<String, InputError> {
    check(&required_str(obj, field)?).map_err(|m| InputError::new(field, m))
}

fn string_list(v: &Value, field: &str) -> Result<Vec<String>, InputError> {
    let list =
        v.as_array().ok_or_else(|| InputError::new(field, "must be an array of event names, e.g. [\"purchase\"]"))?;
    list.iter()
        .enumerate()
        .map(|(i, e)| match e.as_str().map(str::trim) {
            Some(s) if !s.is_empty() => Ok(s.to_owned()),
            _ => Err(InputError::new(format!("{field}.{i}"), "must be a non-empty event name")),
        })
        .collect()
}

fn trigger_events(obj: &Map<String, Value>) -> Result<Vec<String>, InputError> {
    match obj.get("trigger_events") {
        None | Some(Value::Null) => Err(InputError::new(
            "trigger_events",
            "is required; list the events to send, e.g. [\"game_launch\", \"purchase\"]",
        )),
        Some(v) => string_list(v, "trigger_events"),
    }
}

fn goals(obj: &Map<String, Value>) -> Result<Vec<Goal>, InputError> {
    let list = match obj.get("goals") {
        Some(Value::Array(list)) => list,
        None | Some(Value::Null) => {
            return Err(InputError::new("goals", "is required for X; map each Conversion Goal to its event tag"))
        }
        Some(_) => return Err(InputError::new("goals", "must be an array of {id, name, event, active, event_tag}")),
    };
    let mut goals: Vec<Goal> = Vec::with_capacity(list.len());
    for (i, g) in list.iter().enumerate() {
        let goal = goal(g).map_err(|e| e.under(&format!("goals.{i}")))?;
        if goals.iter().any(|other| other.id == goal.id) {
            return Err(InputError::new(
                format!("goals.{i}.id"),
                format!("'{}' is used by two goals; give each goal its own id", goal.id),
            ));
        }
        goals.push(goal);
    }
    Ok(goals)
}

fn goal(v: &Value) -> Result<Goal, InputError> {
    let obj = v
        .as_object()
        .ok_or_else(|| InputError::new("goal", "must be an object {id, name, event, active, event_tag}"))?;
    let id = required_str(obj, "id")?;
    let active = match obj.get("active") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(InputError::new("active", "must be true or false")),
    };
    let event_tag = optional_str(obj, "event_tag")?
        .map(|t| formats::x_event_tag(&t).map_err(|m| InputError::new("event_tag", m)))
        .transpose()?;
    let rule = match optional_str(obj, "rule")? {
        None => TriggerRule::EveryTime,
        Some(r) => TriggerRule::parse(&r).ok_or_else(|| {
            InputError::new("rule", format!("'{r}' is not a rule; use every_time or once_per_player"))
        })?,
    };
    let value_filter = match (optional_str(obj, "min_value")?, optional_str(obj, "currency")?) {
        (None, None) => None,
        (Some(min), Some(currency)) => Some(formats::value_filter(&min, &currency)?),
        (Some(_), None) => return Err(InputError::new("currency", "is required with min_value, e.g. USD")),
        (None, Some(_)) => return Err(InputError::new("min_value", "is required with currency, e.g. 9.99")),
    };
    Ok(Goal {
        name: optional_str(obj, "name")?.unwrap_or_else(|| id.clone()),
        id,
        event: required_str(obj, "event")?,
        active,
        rule,
        value_filter,
        event_tag,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_each_network() {
        let t = PostbackConfig::from_json(&json!({"network": "tiktok", "pixel_code": "CABCD1234EFGH", "trigger_events": ["purchase"], "test_event_code": "T1"})).unwrap();
        assert!(matches!(&t, PostbackConfig::TikTok(c) if c.test_event_code.as_deref() == Some("T1")));
        let r =
            PostbackConfig::from_json(&json!({"network": "reddit", "pixel_id": " a2_abcd1234 ", "trigger_events": []}))
                .unwrap();
        assert_eq!(r.pixel(), "a2_abcd1234");
        let x = PostbackConfig::from_json(&json!({"network": "x", "pixel_id": "oka17", "goals": [{"id": "g1", "event": "purchase", "event_tag": "tw-oka17-ol288"}]})).unwrap();
        assert!(matches!(&x, PostbackConfig::X(c) if c.goals[0].active && c.goals[0].name == "g1"));
    }

    #[test]
    fn test_codes_are_never_serialised() {
        let t = PostbackConfig::from_json(
            &json!({"network": "reddit", "pixel_id": "a2_abc", "trigger_events": [], "test_id": "secret-test"}),
        )
        .unwrap();
        let text = serde_json::to_string(&t).unwrap();
        assert!(!text.contains("secret-test"), "{text}");
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (json!({"network": "myspace"}), "network"),
            (json!({"network": "reddit", "pixel_id": "abcd", "trigger_events": []}), "pixel_id"),
            (json!({"network": "tiktok", "pixel_code": "CABCD1234EFGH"}), "trigger_events"),
            (
                json!({"network": "x", "pixel_id": "oka17", "goals": [{"id": "g", "event": "p", "event_tag": "tw-bad"}]}),
                "goals.0.event_tag",
            ),
            (
                json!({"network": "x", "pixel_id": "oka17", "goals": [{"id": "g", "event": "p"}, {"id": "g", "event": "q"}]}),
                "goals.1.id",
            ),
            (
                json!({"network": "tiktok", "pixel_code": "CABCD1234EFGH", "trigger_events": [], "access_token": "x"}),
                "access_token",
            ),
            (
                json!({"network": "tiktok", "pixel_code": "CABCD1234EFGH", "trigger_events": [], "base_url": "http://example.com"}),
                "base_url",
            ),
            (json!([1]), "config"),
        ];
        for (doc, field) in cases {
            let err = PostbackConfig::from_json(&doc).unwrap_err();
            assert_eq!(err.field, field, "{doc}: {err}");
            assert!(!err.message.is_empty());
        }
    }
}
