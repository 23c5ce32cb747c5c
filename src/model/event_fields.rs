//! The fields of one event as sent, before validation: read either from a parsed JSON object or
//! straight from request bytes without building a JSON tree (the ingest's hot path, where the
//! tree cost more than validating). One validation ([`super::ConversionEvent::from_fields`])
//! serves both, so they accept and reject exactly alike.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// A field that should hold text (ids are also accepted as numbers).
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar<'a> {
    Null,
    Str(Cow<'a, str>),
    Num(Number),
    /// A boolean, array or object: never valid where text is expected.
    Other,
}

impl<'a> Scalar<'a> {
    pub(crate) fn of(value: &'a Value) -> Self {
        match value {
            Value::Null => Scalar::Null,
            Value::String(s) => Scalar::Str(Cow::Borrowed(s)),
            Value::Number(n) => Scalar::Num(n.clone()),
            _ => Scalar::Other,
        }
    }
}

/// The canonical event's fields; absent ones are `None`, unknown ones are not kept. A key
/// sent twice keeps its last value, as a parsed JSON object does.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct EventFields<'a> {
    pub event_id: Option<Scalar<'a>>,
    pub name: Option<Scalar<'a>>,
    pub occurred_at: Option<Scalar<'a>>,
    pub player_id: Option<Scalar<'a>>,
    pub consent: Option<Scalar<'a>>,
    pub email: Option<Scalar<'a>>,
    pub email_sha256: Option<Scalar<'a>>,
    pub phone: Option<Scalar<'a>>,
    pub phone_sha256: Option<Scalar<'a>>,
    pub ip: Option<Scalar<'a>>,
    pub user_agent: Option<Scalar<'a>>,
    pub currency: Option<Scalar<'a>>,
    pub page_url: Option<Scalar<'a>>,
    /// Nested or mixed-type fields, validated from their JSON.
    pub click_ids: Option<Cow<'a, Value>>,
    pub value: Option<Cow<'a, Value>>,
    pub items: Option<Cow<'a, Value>>,
}

impl<'a> EventFields<'a> {
    /// The fields of a parsed JSON object.
    pub fn of_object(obj: &'a Map<String, Value>) -> Self {
        let mut fields = EventFields::default();
        for (key, value) in obj {
            if let Some(slot) = fields.scalar_slot(key) {
                *slot = Some(Scalar::of(value));
            } else if let Some(slot) = fields.json_slot(key) {
                *slot = Some(Cow::Borrowed(value));
            }
        }
        fields
    }

    fn scalar_slot(&mut self, key: &str) -> Option<&mut Option<Scalar<'a>>> {
        Some(match key {
            "event_id" => &mut self.event_id,
            "name" => &mut self.name,
            "occurred_at" => &mut self.occurred_at,
            "player_id" => &mut self.player_id,
            "consent" => &mut self.consent,
            "email" => &mut self.email,
            "email_sha256" => &mut self.email_sha256,
            "phone" => &mut self.phone,
            "phone_sha256" => &mut self.phone_sha256,
            "ip" => &mut self.ip,
            "user_agent" => &mut self.user_agent,
            "currency" => &mut self.currency,
            "page_url" => &mut self.page_url,
            _ => return None,
        })
    }

    fn json_slot(&mut self, key: &str) -> Option<&mut Option<Cow<'a, Value>>> {
        Some(match key {
            "click_ids" => &mut self.click_ids,
            "value" => &mut self.value,
            "items" => &mut self.items,
            _ => return None,
        })
    }

    /// The event id as the sender wrote it (untrimmed; whole numbers as their digits), for
    /// answers about events that may not validate.
    pub fn event_id_as_sent(&self) -> Option<String> {
        match self.event_id.as_ref()? {
            Scalar::Str(s) => Some(s.clone().into_owned()),
            Scalar::Num(n) => n.as_i64().map(|n| n.to_string()),
            _ => None,
        }
    }
}

/// One element of a request's array: an event's fields, or something that is not an object.
// Nearly every item is an object: boxing its fields would add an allocation to each.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum SentItem<'a> {
    Object(EventFields<'a>),
    NotObject,
}

/// A request body: one event object, an array of items, or another JSON value.
// Short-lived, one per request: the unboxed event is the single-event request's fast path.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum SentBody<'a> {
    One(EventFields<'a>),
    Many(Vec<SentItem<'a>>),
    Neither,
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Borrowed(s)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(s.to_owned())))
    }
    fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(s)))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Self::Value, E> {
        Ok(Scalar::Num(n.into()))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Self::Value, E> {
        Ok(Scalar::Num(n.into()))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Self::Value, E> {
        // As a parsed tree keeps it: a non-finite number is null.
        Ok(Number::from_f64(n).map_or(Scalar::Null, Scalar::Num))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other)
    }
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

/// An object's key, borrowed from the request's bytes unless it holds an escape (serde's own
/// `Cow` always copies).
struct Key<'a>(Cow<'a, str>);

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Key(Cow::Borrowed(s)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Key(Cow::Owned(s.to_owned())))
    }
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

/// Reads an object's entries into [`EventFields`].
fn fields_from_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<EventFields<'de>, A::Error> {
    let mut fields = EventFields::default();
    while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
        if let Some(slot) = fields.scalar_slot(&key) {
            *slot = Some(map.next_value()?);
        } else if let Some(slot) = fields.json_slot(&key) {
            *slot = Some(Cow::Owned(map.next_value::<Value>()?));
        } else {
            map.next_value::<IgnoredAny>()?;
        }
    }
    Ok(fields)
}

/// What a JSON value becomes at one place of a body: an object, an array, or anything else.
trait Shape<'de>: Sized {
    fn object(fields: EventFields<'de>) -> Self;
    fn array<A: SeqAccess<'de>>(seq: A) -> Result<Self, A::Error>;
    fn other() -> Self;
}

impl<'de> Shape<'de> for SentItem<'de> {
    fn object(fields: EventFields<'de>) -> Self {
        SentItem::Object(fields)
    }
    fn array<A: SeqAccess<'de>>(mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(SentItem::NotObject)
    }
    fn other() -> Self {
        SentItem::NotObject
    }
}

impl<'de> Shape<'de> for SentBody<'de> {
    fn object(fields: EventFields<'de>) -> Self {
        SentBody::One(fields)
    }
    fn array<A: SeqAccess<'de>>(mut seq: A) -> Result<Self, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(SentBody::Many(items))
    }
    fn other() -> Self {
        SentBody::Neither
    }
}

struct ShapeVisitor<T>(std::marker::PhantomData<T>);

impl<'de, T: Shape<'de>> Visitor<'de> for ShapeVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        fields_from_map(map).map(T::object)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<T, A::Error> {
        T::array(seq)
    }
    fn visit_bool<E>(self, _: bool) -> Result<T, E> {
        Ok(T::other())
    }
    fn visit_u64<E>(self, _: u64) -> Result<T, E> {
        Ok(T::other())
    }
    fn visit_i64<E>(self, _: i64) -> Result<T, E> {
        Ok(T::other())
    }
    fn visit_f64<E>(self, _: f64) -> Result<T, E> {
        Ok(T::other())
    }
    fn visit_str<E>(self, _: &str) -> Result<T, E> {
        Ok(T::other())
    }
    fn visit_unit<E>(self) -> Result<T, E> {
        Ok(T::other())
    }
}

impl<'de> Deserialize<'de> for SentItem<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ShapeVisitor(std::marker::PhantomData))
    }
}

impl<'de> Deserialize<'de> for SentBody<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ShapeVisitor(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ConversionEvent, InputError};
    use proptest::prelude::*;

    /// How the ingest read an event before: a JSON tree, then the tree's validation.
    fn through_tree(text: &str) -> Result<ConversionEvent, InputError> {
        ConversionEvent::from_json(&serde_json::from_str::<Value>(text).expect("valid JSON"))
    }

    fn through_fields(text: &str) -> Result<ConversionEvent, InputError> {
        ConversionEvent::from_json_str(text)
    }

    fn event_id_from_tree(text: &str) -> Option<String> {
        let doc: Value = serde_json::from_str(text).expect("valid JSON");
        doc.get("event_id").and_then(|v| v.as_str().map(str::to_owned).or_else(|| v.as_i64().map(|n| n.to_string())))
    }

    fn event_id_from_fields(text: &str) -> Option<String> {
        match serde_json::from_str::<SentItem>(text).expect("valid JSON") {
            SentItem::Object(fields) => fields.event_id_as_sent(),
            SentItem::NotObject => None,
        }
    }

    const KEYS: &[&str] = &[
        "event_id",
        "name",
        "occurred_at",
        "player_id",
        "consent",
        "email",
        "email_sha256",
        "phone",
        "phone_sha256",
        "ip",
        "user_agent",
        "currency",
        "page_url",
        "click_ids",
        "value",
        "items",
        "extra",
    ];

    fn any_value() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("\"\"".to_owned()),
            Just("\"  \"".to_owned()),
            Just("\"full\"".to_owned()),
            Just("\"2026-11-20T10:15:30.250Z\"".to_owned()),
            Just("\"a\\\"b\\\\c\\u00e9\\n\"".to_owned()),
            Just(format!("\"{}\"", "ab".repeat(32))),
            Just("\"19.99\"".to_owned()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
            (-1e6f64..1e6).prop_map(|f| format!("{f:e}")),
            "[a-zA-Z0-9 @.+_-]{0,12}".prop_map(|s| format!("\"{s}\"")),
        ];
        leaf.prop_recursive(2, 8, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec(
                    (prop::sample::select(vec!["ttclid", "twclid", "rdt_cid", "id", "quantity", "price"]), inner),
                    0..3
                )
                .prop_map(|kv| format!(
                    "{{{}}}",
                    kv.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect::<Vec<_>>().join(",")
                )),
            ]
        })
    }

    /// A valid event, or not, with some keys sent again (the last one counts) with any values.
    fn any_object() -> impl Strategy<Value = String> {
        let valid = r#""event_id": "e1", "name": "purchase", "occurred_at": "2026-11-20T10:15:30Z", "player_id": "p", "consent": "full""#;
        (any::<bool>(), prop::collection::vec((prop::sample::select(KEYS), any_value()), 0..8)).prop_map(
            move |(start_valid, entries)| {
                let mut parts: Vec<String> = entries.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
                if start_valid {
                    parts.insert(0, valid.to_owned());
                }
                format!("{{{}}}", parts.join(", "))
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]
        /// Read straight from the bytes or through a JSON tree, an event validates alike.
        #[test]
        fn fields_read_from_bytes_validate_as_the_tree_does(text in any_object()) {
            prop_assert_eq!(through_fields(&text), through_tree(&text));
            prop_assert_eq!(event_id_from_fields(&text), event_id_from_tree(&text));
        }
    }

    #[test]
    fn the_contract_cases_and_a_valid_event_validate_alike() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/contract/cases");
        let mut texts: Vec<String> = std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
                    .filter_map(|t| serde_json::from_str::<Value>(&t).ok()?.get("event").map(Value::to_string))
                    .collect()
            })
            .unwrap_or_default();
        texts.push(
            r#"{"event_id": 42, "name": " purchase ", "occurred_at": "2026-11-20T10:15:30Z", "player_id": "p",
                "consent": "FULL", "click_ids": {"ttclid": "t"}, "value": "4.99", "currency": "EUR",
                "items": [{"id": "gems", "price": 4.99}], "unknown": {"deep": [1, 2, {"x": null}]}}"#
                .to_owned(),
        );
        for text in ["[1, 2]", "\"event\"", "7", "null"] {
            texts.push(text.to_owned());
        }
        for text in &texts {
            assert_eq!(through_fields(text), through_tree(text), "{text}");
        }
        assert!(through_fields(&texts[texts.len() - 5]).is_ok(), "the hand-written event is valid");
    }

    #[test]
    fn a_body_is_one_event_an_array_or_neither() {
        let one: SentBody = serde_json::from_str(r#"{"event_id": "a", "event_id": "b"}"#).unwrap();
        assert!(
            matches!(&one, SentBody::One(f) if f.event_id_as_sent().as_deref() == Some("b")),
            "the last key counts"
        );
        let many: SentBody = serde_json::from_str(r#"[{"event_id": "a"}, 3, [], {}]"#).unwrap();
        assert!(
            matches!(&many, SentBody::Many(items) if items.len() == 4 && items[1] == SentItem::NotObject && items[2] == SentItem::NotObject)
        );
        assert_eq!(serde_json::from_str::<SentBody>("true").unwrap(), SentBody::Neither);
        assert!(serde_json::from_str::<SentBody>("[{\"a\": ").is_err(), "truncated JSON is an error");
    }
}
