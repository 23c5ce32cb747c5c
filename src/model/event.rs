use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::event_fields::{EventFields, Scalar, SentItem};
use super::InputError;

/// How much of a player's data may leave the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Consent {
    /// Nothing is forwarded.
    None,
    /// Click ids only.
    Anonymous,
    /// Click ids, hashed email/phone, external id, IP and user agent.
    Full,
}

/// Click ids captured from the ad click, one per network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClickIds {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttclid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub twclid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rdt_cid: Option<String>,
}

/// One purchased item; `price` is per unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price: Option<f64>,
    pub quantity: u32,
}

/// A canonical conversion event after validation (see `shared/contract/README.md`).
///
/// Strings are trimmed and empty ones are absent. Identity fields are kept raw here: normalising
/// and hashing depends on the network and the consent, and happens in [`crate::identity`].
/// `value` keeps the input's JSON (number or decimal string) so that an invalid amount drops the
/// amount with a warning rather than the event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversionEvent {
    pub event_id: String,
    pub name: String,
    pub occurred_at: DateTime<Utc>,
    pub player_id: String,
    pub consent: Consent,
    #[serde(default)]
    pub click_ids: ClickIds,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<Item>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_url: Option<String>,
}

impl ConversionEvent {
    /// Parses and validates one canonical event, naming the first bad field.
    pub fn from_json(doc: &Value) -> Result<Self, InputError> {
        let obj = doc.as_object().ok_or_else(Self::not_an_object)?;
        Self::from_fields(&EventFields::of_object(obj))
    }

    /// The error for an event that is not a JSON object.
    pub fn not_an_object() -> InputError {
        InputError::new("event", "expected a JSON object with event_id, name, occurred_at, player_id and consent")
    }

    /// Validates an event's fields as sent (see [`EventFields`]), naming the first bad field.
    pub fn from_fields(fields: &EventFields) -> Result<Self, InputError> {
        let occurred_raw = required("occurred_at", &fields.occurred_at)?;
        let occurred_at = DateTime::parse_from_rfc3339(&occurred_raw)
            .map_err(|_| {
                InputError::new(
                    "occurred_at",
                    format!("'{occurred_raw}' is not an RFC 3339 time; write it like 2026-11-20T10:15:30.250Z"),
                )
            })?
            .with_timezone(&Utc);
        let consent_raw = required("consent", &fields.consent)?;
        let consent = match consent_raw.to_ascii_lowercase().as_str() {
            "none" => Consent::None,
            "anonymous" => Consent::Anonymous,
            "full" => Consent::Full,
            _ => {
                return Err(InputError::new(
                    "consent",
                    format!("'{consent_raw}' is not a consent level; use none, anonymous or full"),
                ))
            }
        };
        let email_sha256 = optional("email_sha256", &fields.email_sha256)?
            .map(|h| check_sha256(&h).ok_or_else(|| sha_error("email_sha256")))
            .transpose()?;
        let phone_sha256 = optional("phone_sha256", &fields.phone_sha256)?
            .map(|h| check_sha256(&h).ok_or_else(|| sha_error("phone_sha256")))
            .transpose()?;
        Ok(Self {
            event_id: required("event_id", &fields.event_id)?,
            name: required("name", &fields.name)?,
            occurred_at,
            player_id: required("player_id", &fields.player_id)?,
            consent,
            click_ids: parse_click_ids(fields.click_ids.as_deref())?,
            email: optional("email", &fields.email)?,
            email_sha256,
            phone: optional("phone", &fields.phone)?,
            phone_sha256,
            ip: optional("ip", &fields.ip)?,
            user_agent: optional("user_agent", &fields.user_agent)?,
            value: parse_value(fields.value.as_deref())?,
            currency: optional("currency", &fields.currency)?,
            items: parse_items(fields.items.as_deref())?,
            page_url: optional("page_url", &fields.page_url)?,
        })
    }

    /// Parses a canonical event from JSON text, read into its fields directly, without a JSON
    /// tree (an import's lines, a preview).
    pub fn from_json_str(text: &str) -> Result<Self, InputError> {
        let sent: SentItem = serde_json::from_str(text)
            .map_err(|e| InputError::new("event", format!("not valid JSON ({e}); fix the syntax and try again")))?;
        match sent {
            SentItem::Object(fields) => Self::from_fields(&fields),
            SentItem::NotObject => Err(Self::not_an_object()),
        }
    }
}

fn sha_error(field: &str) -> InputError {
    InputError::new(
        field,
        "must be a SHA-256 hash: 64 hexadecimal characters; send the raw value in the unhashed field instead if you have it",
    )
}

/// A SHA-256 hex digest, lower-cased, or `None` when the text is not one.
pub(crate) fn check_sha256(s: &str) -> Option<String> {
    (s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())).then(|| s.to_ascii_lowercase())
}

/// A required text field, trimmed; ids sent as JSON numbers count as their decimal text.
fn required(field: &str, value: &Option<Scalar>) -> Result<String, InputError> {
    match value {
        None | Some(Scalar::Null) => Err(InputError::new(field, "is required but missing; add it")),
        Some(v) => match scalar_text(v) {
            Some(s) if !s.is_empty() => Ok(s),
            Some(_) => Err(InputError::new(field, "is required but empty; give it a value")),
            None => Err(InputError::new(field, "must be a string")),
        },
    }
}

/// An optional text field, trimmed; empty is absent.
fn optional(field: &str, value: &Option<Scalar>) -> Result<Option<String>, InputError> {
    match value {
        None | Some(Scalar::Null) => Ok(None),
        Some(v) => match scalar_text(v) {
            Some(s) if s.is_empty() => Ok(None),
            Some(s) => Ok(Some(s)),
            None => Err(InputError::new(field, "must be a string")),
        },
    }
}

fn scalar_text(v: &Scalar) -> Option<String> {
    match v {
        Scalar::Str(s) => Some(s.trim().to_owned()),
        Scalar::Num(n) => Some(n.to_string()),
        Scalar::Null | Scalar::Other => None,
    }
}

/// [`required`] for a key of a parsed object (configs, goals, items).
pub(crate) fn required_str(obj: &Map<String, Value>, field: &str) -> Result<String, InputError> {
    required(field, &obj.get(field).map(Scalar::of))
}

/// [`optional`] for a key of a parsed object.
pub(crate) fn optional_str(obj: &Map<String, Value>, field: &str) -> Result<Option<String>, InputError> {
    optional(field, &obj.get(field).map(Scalar::of))
}

impl ClickIds {
    /// The click id of `network`'s own ads, if the player came from one.
    pub fn for_network(&self, network: super::Network) -> Option<&str> {
        match network {
            super::Network::TikTok => self.ttclid.as_deref(),
            super::Network::Reddit => self.rdt_cid.as_deref(),
            super::Network::X => self.twclid.as_deref(),
        }
    }
}

fn parse_click_ids(v: Option<&Value>) -> Result<ClickIds, InputError> {
    match v {
        None | Some(Value::Null) => Ok(ClickIds::default()),
        Some(Value::Object(map)) => Ok(ClickIds {
            ttclid: optional_str(map, "ttclid").map_err(|e| e.under("click_ids"))?,
            twclid: optional_str(map, "twclid").map_err(|e| e.under("click_ids"))?,
            rdt_cid: optional_str(map, "rdt_cid").map_err(|e| e.under("click_ids"))?,
        }),
        Some(_) => Err(InputError::new("click_ids", "must be an object like {\"ttclid\": \"…\"}")),
    }
}

fn parse_value(v: Option<&Value>) -> Result<Option<Value>, InputError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(v @ (Value::Number(_) | Value::String(_))) => Ok(Some(v.clone())),
        Some(_) => Err(InputError::new("value", "must be a number or a decimal string such as \"19.99\"")),
    }
}

fn parse_items(v: Option<&Value>) -> Result<Vec<Item>, InputError> {
    let list = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(InputError::new("items", "must be an array of {id, name, price, quantity}")),
    };
    list.iter().enumerate().map(|(i, item)| parse_item(item).map_err(|e| e.under(&format!("items.{i}")))).collect()
}

fn parse_item(v: &Value) -> Result<Item, InputError> {
    let obj = v.as_object().ok_or_else(|| InputError::new("item", "must be an object {id, name, price, quantity}"))?;
    let price = match obj.get("price") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => Some(
            s.trim()
                .parse::<f64>()
                .ok()
                .filter(|p| p.is_finite())
                .ok_or_else(|| InputError::new("price", "must be a number such as 4.99"))?,
        ),
        Some(_) => return Err(InputError::new("price", "must be a number such as 4.99")),
    };
    if price.is_some_and(|p| !p.is_finite() || p < 0.0) {
        return Err(InputError::new("price", "must be zero or more"));
    }
    let quantity = match obj.get("quantity") {
        None | Some(Value::Null) => 1,
        Some(q) => q
            .as_u64()
            .and_then(|q| u32::try_from(q).ok())
            .filter(|q| *q > 0)
            .ok_or_else(|| InputError::new("quantity", "must be a whole number of 1 or more"))?,
    };
    Ok(Item { id: required_str(obj, "id")?, name: optional_str(obj, "name")?, price, quantity })
}
