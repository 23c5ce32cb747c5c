//! The fields of one event as sent, before validation: read either from a parsed JSON object or
//! straight from request bytes without building a JSON tree (the ingest's hot path, where the
//! tree cost more than validating). One validation ([`super::ConversionEvent::from_fields`])
//! serves both, so they accept and reject exactly alike.
//!
//! Reading from bytes keeps memory in proportion to what a body validly carries, never to how
//! many values it packs in: a body's array is refused at its element after the limit, nested
//! fields keep only the keys an event uses, and items are checked one by one as they are read
//! (at most [`limits::ITEMS`] kept). A 4 MiB body of `[0,0,…]` once held 2 million parsed
//! elements of ~500 bytes each.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::event::{item_from_fields, within};
use super::{limits, InputError, Item};

/// Why a request body could not be read as events.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// An array longer than allowed: refused at the first element over the limit.
    #[error("more than {max} events in one request")]
    TooManyEvents { max: usize },
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

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

/// `click_ids` as sent: the keys an event uses, or something that is not an object.
#[derive(Debug, Default, Clone, PartialEq)]
pub enum ClickIdFields<'a> {
    /// Absent or null.
    #[default]
    Null,
    Object {
        ttclid: Option<Scalar<'a>>,
        twclid: Option<Scalar<'a>>,
        rdt_cid: Option<Scalar<'a>>,
    },
    Other,
}

impl<'a> ClickIdFields<'a> {
    fn of(value: &'a Value) -> Self {
        match value {
            Value::Null => ClickIdFields::Null,
            Value::Object(map) => {
                let get = |key: &str| map.get(key).map(Scalar::of);
                ClickIdFields::Object { ttclid: get("ttclid"), twclid: get("twclid"), rdt_cid: get("rdt_cid") }
            }
            _ => ClickIdFields::Other,
        }
    }

    fn slot(&mut self, key: &str) -> Option<&mut Option<Scalar<'a>>> {
        let ClickIdFields::Object { ttclid, twclid, rdt_cid } = self else { return None };
        Some(match key {
            "ttclid" => ttclid,
            "twclid" => twclid,
            "rdt_cid" => rdt_cid,
            _ => return None,
        })
    }
}

/// One item's fields as sent.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ItemFields<'a> {
    pub id: Option<Scalar<'a>>,
    pub name: Option<Scalar<'a>>,
    pub price: Option<Scalar<'a>>,
    pub quantity: Option<Scalar<'a>>,
}

impl<'a> ItemFields<'a> {
    fn slot(&mut self, key: &str) -> Option<&mut Option<Scalar<'a>>> {
        Some(match key {
            "id" => &mut self.id,
            "name" => &mut self.name,
            "price" => &mut self.price,
            "quantity" => &mut self.quantity,
            _ => return None,
        })
    }
}

/// `items` as sent, checked item by item while read: the items, or the first problem (a bad
/// item, or one item over [`limits::ITEMS`]).
#[derive(Debug, Default, Clone, PartialEq)]
pub enum ItemsField {
    /// Absent or null.
    #[default]
    Null,
    List(Result<Vec<Item>, InputError>),
    NotArray,
}

/// Checks the item at `index` of an event's list (its fields, or `None` when it is not an
/// object); the one after the limit is an error whatever it holds.
fn check_item(index: usize, fields: Option<ItemFields>) -> Result<Item, InputError> {
    if index >= limits::ITEMS {
        return Err(InputError::new(
            "items",
            format!("lists more than {} items; send at most {} per event", limits::ITEMS, limits::ITEMS),
        ));
    }
    let under = |e: InputError| e.under(&format!("items.{index}"));
    match fields {
        Some(fields) => item_from_fields(fields).map_err(under),
        None => Err(under(InputError::new("item", "must be an object {id, name, price, quantity}"))),
    }
}

impl ItemsField {
    fn of(value: &Value) -> Self {
        let list = match value {
            Value::Null => return ItemsField::Null,
            Value::Array(list) => list,
            _ => return ItemsField::NotArray,
        };
        let checked = list
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let fields = item.as_object().map(|obj| {
                    let get = |key: &str| obj.get(key).map(Scalar::of);
                    ItemFields { id: get("id"), name: get("name"), price: get("price"), quantity: get("quantity") }
                });
                check_item(i, fields)
            })
            .collect();
        ItemsField::List(checked)
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
    /// A number or a decimal string.
    pub value: Option<Scalar<'a>>,
    pub click_ids: ClickIdFields<'a>,
    pub items: ItemsField,
}

impl<'a> EventFields<'a> {
    /// The fields of a parsed JSON object.
    pub fn of_object(obj: &'a Map<String, Value>) -> Self {
        let mut fields = EventFields::default();
        for (key, value) in obj {
            if let Some(slot) = fields.scalar_slot(key) {
                *slot = Some(Scalar::of(value));
            } else if key == "click_ids" {
                fields.click_ids = ClickIdFields::of(value);
            } else if key == "items" {
                fields.items = ItemsField::of(value);
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
            "value" => &mut self.value,
            _ => return None,
        })
    }

    /// The event id as the sender wrote it (untrimmed; whole numbers as their digits), for
    /// answers about events that may not validate; `None` for one over [`limits::ID`], which
    /// the answer would otherwise repeat at any length.
    pub fn event_id_as_sent(&self) -> Option<String> {
        match self.event_id.as_ref()? {
            Scalar::Str(s) if within(s.trim(), limits::ID) => Some(s.clone().into_owned()),
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

impl<'a> SentBody<'a> {
    /// Reads a request body of at most `max_events` events, refusing the array's next element
    /// as soon as it is read: what comes after it is never parsed.
    pub fn from_slice(bytes: &'a [u8], max_events: usize) -> Result<Self, BodyError> {
        let too_many = Cell::new(false);
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let read = BodySeed { max_events, too_many: &too_many }.deserialize(&mut de).and_then(|body| {
            de.end()?;
            Ok(body)
        });
        match read {
            Ok(body) => Ok(body),
            Err(_) if too_many.get() => Err(BodyError::TooManyEvents { max: max_events }),
            Err(e) => Err(BodyError::Json(e)),
        }
    }
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
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        skip_seq(seq).map(|()| Scalar::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        skip_map(map).map(|()| Scalar::Other)
    }
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

/// Reads what is left of an array or object without keeping any of it.
fn skip_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

fn skip_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
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
        } else if key == "click_ids" {
            fields.click_ids = map.next_value()?;
        } else if key == "items" {
            fields.items = map.next_value()?;
        } else {
            map.next_value::<IgnoredAny>()?;
        }
    }
    Ok(fields)
}

/// Declares a visitor for a value whose every non-object, non-array form maps to one variant.
macro_rules! other_scalars {
    ($other:expr) => {
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok($other)
        }
    };
}

struct ClickIdsVisitor;

impl<'de> Visitor<'de> for ClickIdsVisitor {
    type Value = ClickIdFields<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    other_scalars!(ClickIdFields::Other);
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(ClickIdFields::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        skip_seq(seq).map(|()| ClickIdFields::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut ids = ClickIdFields::Object { ttclid: None, twclid: None, rdt_cid: None };
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            match ids.slot(&key) {
                Some(slot) => *slot = Some(map.next_value()?),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(ids)
    }
}

impl<'de> Deserialize<'de> for ClickIdFields<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ClickIdsVisitor)
    }
}

/// One element of `items`: an object's item fields, or `None` for anything else.
struct ItemEntry<'a>(Option<ItemFields<'a>>);

struct ItemEntryVisitor;

impl<'de> Visitor<'de> for ItemEntryVisitor {
    type Value = ItemEntry<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    other_scalars!(ItemEntry(None));
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(ItemEntry(None))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        skip_seq(seq).map(|()| ItemEntry(None))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = ItemFields::default();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            match fields.slot(&key) {
                Some(slot) => *slot = Some(map.next_value()?),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(ItemEntry(Some(fields)))
    }
}

impl<'de> Deserialize<'de> for ItemEntry<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ItemEntryVisitor)
    }
}

struct ItemsVisitor;

impl<'de> Visitor<'de> for ItemsVisitor {
    type Value = ItemsField;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    other_scalars!(ItemsField::NotArray);
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(ItemsField::Null)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        skip_map(map).map(|()| ItemsField::NotArray)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        let mut index = 0;
        while let Some(ItemEntry(fields)) = seq.next_element()? {
            match check_item(index, fields) {
                Ok(item) => items.push(item),
                // The first problem is the answer: the rest is read, never kept.
                Err(e) => return skip_seq(seq).map(|()| ItemsField::List(Err(e))),
            }
            index += 1;
        }
        Ok(ItemsField::List(Ok(items)))
    }
}

impl<'de> Deserialize<'de> for ItemsField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ItemsVisitor)
    }
}

struct SentItemVisitor;

impl<'de> Visitor<'de> for SentItemVisitor {
    type Value = SentItem<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    other_scalars!(SentItem::NotObject);
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(SentItem::NotObject)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        fields_from_map(map).map(SentItem::Object)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        skip_seq(seq).map(|()| SentItem::NotObject)
    }
}

impl<'de> Deserialize<'de> for SentItem<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SentItemVisitor)
    }
}

/// Reads a body, counting an array's elements as they come (see [`SentBody::from_slice`]).
#[derive(Clone, Copy)]
struct BodySeed<'c> {
    max_events: usize,
    /// Set when the array went over `max_events` (the parse then ends in an error).
    too_many: &'c Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for BodySeed<'_> {
    type Value = SentBody<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for BodySeed<'_> {
    type Value = SentBody<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    other_scalars!(SentBody::Neither);
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(SentBody::Neither)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        fields_from_map(map).map(SentBody::One)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(self.max_events));
        while let Some(item) = seq.next_element()? {
            if items.len() == self.max_events {
                self.too_many.set(true);
                return Err(de::Error::custom(format_args!("more than {} events", self.max_events)));
            }
            items.push(item);
        }
        Ok(SentBody::Many(items))
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

    fn body(text: &str) -> Result<SentBody<'_>, BodyError> {
        SentBody::from_slice(text.as_bytes(), 1000)
    }

    #[test]
    fn a_body_is_one_event_an_array_or_neither() {
        let one = body(r#"{"event_id": "a", "event_id": "b"}"#).unwrap();
        assert!(
            matches!(&one, SentBody::One(f) if f.event_id_as_sent().as_deref() == Some("b")),
            "the last key counts"
        );
        let many = body(r#"[{"event_id": "a"}, 3, [], {}]"#).unwrap();
        assert!(
            matches!(&many, SentBody::Many(items) if items.len() == 4 && items[1] == SentItem::NotObject && items[2] == SentItem::NotObject)
        );
        assert_eq!(body("true").unwrap(), SentBody::Neither);
        assert!(matches!(body("[{\"a\": "), Err(BodyError::Json(_))), "truncated JSON is an error");
        assert!(matches!(body("[1] 2"), Err(BodyError::Json(_))), "trailing characters are an error");
    }

    #[test]
    fn an_array_is_refused_at_its_element_after_the_limit() {
        let at_limit = format!("[{}0]", "0,".repeat(999));
        assert!(matches!(body(&at_limit), Ok(SentBody::Many(items)) if items.len() == 1000));
        // What follows the 1,001st element is never read: broken JSON there changes nothing.
        let over = format!("[{}0, {{\"never read", "0,".repeat(1000));
        assert!(matches!(body(&over), Err(BodyError::TooManyEvents { max: 1000 })), "{:?}", body(&over));
    }

    #[test]
    fn nested_fields_keep_only_what_an_event_uses() {
        let text = r#"{"click_ids": {"ttclid": "t", "junk": [1, 2, {"deep": true}]},
                       "items": [{"id": "gem", "extra": [0, 0, 0]}], "value": [1, 2]}"#;
        let Ok(SentBody::One(fields)) = body(text) else { panic!("an object") };
        assert_eq!(
            fields.click_ids,
            ClickIdFields::Object { ttclid: Some(Scalar::Str("t".into())), twclid: None, rdt_cid: None }
        );
        assert!(matches!(&fields.items, ItemsField::List(Ok(items)) if items.len() == 1 && items[0].id == "gem"));
        assert_eq!(fields.value, Some(Scalar::Other));
    }

    #[test]
    fn items_stop_at_the_first_problem_or_the_limit() {
        let many: Vec<String> = (0..=limits::ITEMS).map(|i| format!(r#"{{"id": "i{i}"}}"#)).collect();
        let text = format!(r#"{{"items": [{}]}}"#, many.join(","));
        let Ok(SentBody::One(fields)) = body(&text) else { panic!("an object") };
        assert!(matches!(&fields.items, ItemsField::List(Err(e)) if e.field == "items"), "{:?}", fields.items);
        let Ok(SentBody::One(fields)) = body(r#"{"items": [{"id": "a"}, {"price": 1}, 7]}"#) else { panic!() };
        assert!(matches!(&fields.items, ItemsField::List(Err(e)) if e.field == "items.1.id"), "{:?}", fields.items);
        // A tree gives the same answers.
        for text in [text.as_str(), r#"{"items": [{"id": "a"}, {"price": 1}, 7]}"#] {
            assert_eq!(through_fields(text), through_tree(text), "{text}");
        }
    }
}
