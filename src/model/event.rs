use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::event_fields::{ClickIdFields, EventFields, ItemFields, ItemsField, Scalar, SentItem};
use super::{limits, InputError};

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
        Self::from_fields(EventFields::of_object(obj))
    }

    /// The error for an event that is not a JSON object.
    pub fn not_an_object() -> InputError {
        InputError::new("event", "expected a JSON object with event_id, name, occurred_at, player_id and consent")
    }

    /// Validates an event's fields as sent (see [`EventFields`]), naming the first bad field.
    /// Every text field has a length limit ([`limits`]); fields checked by their format
    /// (`occurred_at`, `consent`, the hashes) are bounded by it.
    pub fn from_fields(fields: EventFields) -> Result<Self, InputError> {
        // Read as text of any length, but repeated in an error only in part.
        let occurred_raw = required("occurred_at", &fields.occurred_at, usize::MAX)?;
        let occurred_at = DateTime::parse_from_rfc3339(&occurred_raw)
            .map_err(|_| {
                InputError::new(
                    "occurred_at",
                    format!(
                        "'{}' is not an RFC 3339 time; write it like 2026-11-20T10:15:30.250Z",
                        echo(&occurred_raw)
                    ),
                )
            })?
            .with_timezone(&Utc);
        let consent_raw = required("consent", &fields.consent, usize::MAX)?;
        let consent = match consent_raw.to_ascii_lowercase().as_str() {
            "none" => Consent::None,
            "anonymous" => Consent::Anonymous,
            "full" => Consent::Full,
            _ => {
                return Err(InputError::new(
                    "consent",
                    format!("'{}' is not a consent level; use none, anonymous or full", echo(&consent_raw)),
                ))
            }
        };
        let email_sha256 = optional("email_sha256", &fields.email_sha256, usize::MAX)?
            .map(|h| check_sha256(&h).ok_or_else(|| sha_error("email_sha256")))
            .transpose()?;
        let phone_sha256 = optional("phone_sha256", &fields.phone_sha256, usize::MAX)?
            .map(|h| check_sha256(&h).ok_or_else(|| sha_error("phone_sha256")))
            .transpose()?;
        Ok(Self {
            event_id: required("event_id", &fields.event_id, limits::ID)?,
            name: required("name", &fields.name, limits::ID)?,
            occurred_at,
            player_id: required("player_id", &fields.player_id, limits::ID)?,
            consent,
            click_ids: parse_click_ids(&fields.click_ids)?,
            email: optional("email", &fields.email, limits::EMAIL)?,
            email_sha256,
            phone: optional("phone", &fields.phone, limits::PHONE)?,
            phone_sha256,
            ip: optional("ip", &fields.ip, limits::IP)?,
            user_agent: optional("user_agent", &fields.user_agent, limits::USER_AGENT)?,
            value: parse_value(fields.value)?,
            currency: optional("currency", &fields.currency, limits::CURRENCY)?,
            items: match fields.items {
                ItemsField::Null => Vec::new(),
                ItemsField::List(items) => items?,
                ItemsField::NotArray => {
                    return Err(InputError::new("items", "must be an array of {id, name, price, quantity}"))
                }
            },
            page_url: optional("page_url", &fields.page_url, limits::PAGE_URL)?,
        })
    }

    /// Parses a canonical event from JSON text, read into its fields directly, without a JSON
    /// tree (an import's lines, a preview).
    pub fn from_json_str(text: &str) -> Result<Self, InputError> {
        let sent: SentItem = serde_json::from_str(text)
            .map_err(|e| InputError::new("event", format!("not valid JSON ({e}); fix the syntax and try again")))?;
        match sent {
            SentItem::Object(fields) => Self::from_fields(fields),
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

/// A required text field of at most `max` characters, trimmed; ids sent as JSON numbers count
/// as their decimal text.
fn required(field: &str, value: &Option<Scalar>, max: usize) -> Result<String, InputError> {
    match value {
        None | Some(Scalar::Null) => Err(InputError::new(field, "is required but missing; add it")),
        Some(v) => match scalar_text(field, v, max)? {
            Some(s) if !s.is_empty() => Ok(s),
            Some(_) => Err(InputError::new(field, "is required but empty; give it a value")),
            None => Err(InputError::new(field, "must be a string")),
        },
    }
}

/// An optional text field of at most `max` characters, trimmed; empty is absent.
fn optional(field: &str, value: &Option<Scalar>, max: usize) -> Result<Option<String>, InputError> {
    match value {
        None | Some(Scalar::Null) => Ok(None),
        Some(v) => match scalar_text(field, v, max)? {
            Some(s) if s.is_empty() => Ok(None),
            Some(s) => Ok(Some(s)),
            None => Err(InputError::new(field, "must be a string")),
        },
    }
}

/// The trimmed text of a scalar, checked against `max` before it is copied.
fn scalar_text(field: &str, v: &Scalar, max: usize) -> Result<Option<String>, InputError> {
    Ok(match v {
        Scalar::Str(s) => {
            let s = s.trim();
            if !within(s, max) {
                return Err(too_long(field, s, max));
            }
            Some(s.to_owned())
        }
        Scalar::Num(n) => Some(n.to_string()),
        Scalar::Null | Scalar::Other => None,
    })
}

/// Whether `s` has at most `max` characters (counted only when its bytes could be more).
pub(crate) fn within(s: &str, max: usize) -> bool {
    s.len() <= max || s.chars().count() <= max
}

fn too_long(field: &str, s: &str, max: usize) -> InputError {
    InputError::new(field, format!("is longer than {max} characters ({}); send at most {max}", s.chars().count()))
}

/// The start of a value for an error message: an over-long one is cut at [`limits::ECHO`].
fn echo(s: &str) -> Cow<'_, str> {
    match s.char_indices().nth(limits::ECHO) {
        Some((at, _)) => Cow::Owned(format!("{}…", &s[..at])),
        None => Cow::Borrowed(s),
    }
}

/// [`required`] for a key of a parsed object (configs, goals).
pub(crate) fn required_str(obj: &Map<String, Value>, field: &str) -> Result<String, InputError> {
    required(field, &obj.get(field).map(Scalar::of), usize::MAX)
}

/// [`optional`] for a key of a parsed object.
pub(crate) fn optional_str(obj: &Map<String, Value>, field: &str) -> Result<Option<String>, InputError> {
    optional(field, &obj.get(field).map(Scalar::of), usize::MAX)
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

fn parse_click_ids(v: &ClickIdFields) -> Result<ClickIds, InputError> {
    let id = |field: &str, value: &Option<Scalar>| {
        optional(field, value, limits::CLICK_ID).map_err(|e| e.under("click_ids"))
    };
    match v {
        ClickIdFields::Null => Ok(ClickIds::default()),
        ClickIdFields::Object { ttclid, twclid, rdt_cid } => Ok(ClickIds {
            ttclid: id("ttclid", ttclid)?,
            twclid: id("twclid", twclid)?,
            rdt_cid: id("rdt_cid", rdt_cid)?,
        }),
        ClickIdFields::Other => Err(InputError::new("click_ids", "must be an object like {\"ttclid\": \"…\"}")),
    }
}

/// The amount as sent (number or decimal string): read later, where a bad one is a warning.
fn parse_value(v: Option<Scalar>) -> Result<Option<Value>, InputError> {
    match v {
        None | Some(Scalar::Null) => Ok(None),
        Some(Scalar::Str(s)) if s.trim().is_empty() => Ok(None),
        Some(Scalar::Str(s)) if !within(s.trim(), limits::VALUE) => Err(InputError::new(
            "value",
            format!("is longer than {} characters; send an amount such as \"19.99\"", limits::VALUE),
        )),
        Some(Scalar::Str(s)) => Ok(Some(Value::String(s.into_owned()))),
        Some(Scalar::Num(n)) => Ok(Some(Value::Number(n))),
        Some(Scalar::Other) => Err(InputError::new("value", "must be a number or a decimal string such as \"19.99\"")),
    }
}

/// One item's fields, validated (the caller names the item in an error).
pub(crate) fn item_from_fields(fields: ItemFields) -> Result<Item, InputError> {
    let price_error = || InputError::new("price", "must be a number such as 4.99");
    let price = match &fields.price {
        None | Some(Scalar::Null) => None,
        Some(Scalar::Num(n)) => n.as_f64(),
        Some(Scalar::Str(s)) => Some(s.trim().parse::<f64>().ok().filter(|p| p.is_finite()).ok_or_else(price_error)?),
        Some(Scalar::Other) => return Err(price_error()),
    };
    if price.is_some_and(|p| !p.is_finite() || p < 0.0) {
        return Err(InputError::new("price", "must be zero or more"));
    }
    let quantity = match &fields.quantity {
        None | Some(Scalar::Null) => 1,
        Some(q) => match q {
            Scalar::Num(n) => n.as_u64(),
            _ => None,
        }
        .and_then(|q| u32::try_from(q).ok())
        .filter(|q| *q > 0)
        .ok_or_else(|| InputError::new("quantity", "must be a whole number of 1 or more"))?,
    };
    Ok(Item {
        id: required("id", &fields.id, limits::ID)?,
        name: optional("name", &fields.name, limits::ID)?,
        price,
        quantity,
    })
}
