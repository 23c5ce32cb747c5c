//! The set-up rules as pure functions: game names and default countries, goals (name, event,
//! rule, value filter, key) and X event tag mappings. Each error names the form field and the
//! fix.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::identity::PhoneCountry;
use crate::model::{formats, Goal, InputError, TriggerRule};

/// A game's name: trimmed, 1–60 characters, one line.
pub fn game_name(raw: &str) -> Result<String, InputError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(InputError::new("name", "is required; give the game a name, e.g. Space Miner"));
    }
    if name.chars().count() > 60 {
        return Err(InputError::new("name", "is longer than 60 characters; shorten it"));
    }
    if name.chars().any(char::is_control) {
        return Err(InputError::new("name", "must be one line of text"));
    }
    Ok(name.to_owned())
}

/// A game's default country for phone numbers written without a country code: an ISO 3166-1
/// alpha-2 code in any case (`us` → `US`); empty means none.
pub fn default_country(raw: &str) -> Result<Option<String>, InputError> {
    let code = raw.trim();
    if code.is_empty() {
        return Ok(None);
    }
    if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(InputError::new(
            "default_country",
            "is not a country code; give the two-letter ISO 3166-1 code (US, GB, DE …), or leave it empty for none",
        ));
    }
    let code = code.to_ascii_uppercase();
    if PhoneCountry::parse(&code).is_none() {
        return Err(InputError::new(
            "default_country",
            format!(
                "'{code}' is not an ISO 3166-1 alpha-2 code of a country with phone numbers (the United Kingdom is GB); check the code, or leave it empty for none"
            ),
        ));
    }
    Ok(Some(code))
}

/// What the goal form sends: a new goal (`key` empty) or an edit of an existing one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct GoalInput {
    /// The goal being edited; `None` for a new goal.
    pub key: Option<String>,
    pub name: String,
    /// `game_launch`, `purchase` or a custom event name.
    pub event: String,
    pub rule: TriggerRule,
    /// Value filter: both or neither.
    pub min_value: Option<String>,
    pub currency: Option<String>,
    pub active: bool,
}

/// A key for a new goal from its name (`First purchase` → `first-purchase`), unique in the game.
pub fn goal_key(name: &str, taken: &[&str]) -> String {
    let mut slug = String::new();
    for c in name.trim().to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug: String = slug.trim_end_matches('-').chars().take(40).collect();
    let base = if slug.is_empty() { "goal".to_owned() } else { slug };
    let mut key = base.clone();
    let mut n = 2;
    while taken.contains(&key.as_str()) {
        key = format!("{base}-{n}");
        n += 1;
    }
    key
}

/// Checks a goal form against the game's goals; returns the goal to save.
pub fn goal(input: &GoalInput, existing: &[Goal]) -> Result<Goal, InputError> {
    let name = input.name.trim();
    if name.is_empty() {
        return Err(InputError::new("name", "is required; name the goal as marketers know it, e.g. First purchase"));
    }
    if name.chars().count() > 60 {
        return Err(InputError::new("name", "is longer than 60 characters; shorten it"));
    }
    let editing = input.key.as_deref().filter(|k| !k.is_empty());
    if let Some(key) = editing {
        if !existing.iter().any(|g| g.id == key) {
            return Err(InputError::new("key", format!("this game has no goal '{key}'; reload the page")));
        }
    }
    if existing.iter().any(|g| g.name.eq_ignore_ascii_case(name) && Some(g.id.as_str()) != editing) {
        return Err(InputError::new(
            "name",
            format!("a goal named '{name}' already exists in this game; choose another name"),
        ));
    }
    let event = formats::event_name(&input.event).map_err(|m| InputError::new("event", m))?;
    let min = input.min_value.as_deref().map(str::trim).filter(|v| !v.is_empty());
    let currency = input.currency.as_deref().map(str::trim).filter(|v| !v.is_empty());
    let value_filter = match (min, currency) {
        (None, None) => None,
        (Some(min), Some(currency)) => Some(formats::value_filter(min, currency)?),
        (Some(_), None) => {
            return Err(InputError::new(
                "currency",
                "is required with a minimum value; events in other currencies do not count",
            ))
        }
        (None, Some(_)) => return Err(InputError::new("min_value", "is required with a currency, e.g. 9.99")),
    };
    let key = match editing {
        Some(key) => key.to_owned(),
        None => goal_key(name, &existing.iter().map(|g| g.id.as_str()).collect::<Vec<_>>()),
    };
    Ok(Goal {
        id: key,
        name: name.to_owned(),
        event,
        active: input.active,
        rule: input.rule,
        value_filter,
        event_tag: None,
    })
}

/// One goal's proposed Single Event Tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct TagInput {
    pub goal_key: String,
    /// Empty: the goal is not sent to X.
    pub tag: String,
}

/// The check of one goal's tag as typed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct TagCheck {
    pub goal_key: String,
    /// The cleaned tag; `None` when empty or invalid.
    pub tag: Option<String>,
    /// Blocks saving (the tag is not a Single Event Tag id).
    pub error: Option<String>,
    /// Saved, but likely wrong (another pixel's tag, the same tag on two goals).
    pub warnings: Vec<String>,
}

/// Checks proposed tags for an X config on `pixel_id`: format errors block, another pixel's
/// tag and a tag used by two goals warn, an empty tag means "not sent to X".
pub fn check_tags(pixel_id: &str, goals: &[Goal], proposed: &[TagInput]) -> Result<Vec<TagCheck>, InputError> {
    let mut checks: Vec<TagCheck> = Vec::with_capacity(proposed.len());
    for p in proposed {
        let Some(goal) = goals.iter().find(|g| g.id == p.goal_key) else {
            return Err(InputError::new(
                "goal_key",
                format!("this game has no goal '{}'; reload the page", p.goal_key),
            ));
        };
        let raw = p.tag.trim();
        let mut check = TagCheck { goal_key: p.goal_key.clone(), tag: None, error: None, warnings: Vec::new() };
        if !raw.is_empty() {
            match formats::x_event_tag(raw) {
                Ok(tag) => {
                    if formats::x_event_tag_pixel(&tag).is_some_and(|pixel| pixel != pixel_id) {
                        check.warnings.push(format!(
                            "{tag} belongs to another pixel than {pixel_id}; X will refuse '{}' conversions — copy the tag of pixel {pixel_id}",
                            goal.name
                        ));
                    }
                    check.tag = Some(tag);
                }
                Err(message) => check.error = Some(message),
            }
        }
        checks.push(check);
    }
    let mut uses: HashMap<String, Vec<String>> = HashMap::new();
    for c in &checks {
        if let Some(tag) = &c.tag {
            let name = goals.iter().find(|g| g.id == c.goal_key).map(|g| g.name.clone()).unwrap_or_default();
            uses.entry(tag.clone()).or_default().push(name);
        }
    }
    for c in &mut checks {
        if let Some(names) = c.tag.as_ref().and_then(|t| uses.get(t)).filter(|n| n.len() > 1) {
            c.warnings.push(format!(
                "the same tag is mapped to {}; X counts them as one event — give each goal its own tag",
                names.join(" and ")
            ));
        }
    }
    Ok(checks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(name: &str, event: &str) -> GoalInput {
        GoalInput { name: name.into(), event: event.into(), active: true, ..GoalInput::default() }
    }

    #[test]
    fn goal_keys_are_slugs_unique_in_the_game() {
        assert_eq!(goal_key("First purchase", &[]), "first-purchase");
        assert_eq!(goal_key("  Any launch!! ", &[]), "any-launch");
        assert_eq!(goal_key("First purchase", &["first-purchase"]), "first-purchase-2");
        assert_eq!(goal_key("First purchase", &["first-purchase", "first-purchase-2"]), "first-purchase-3");
        assert_eq!(goal_key("💰", &[]), "goal");
    }

    #[test]
    fn goal_forms_name_the_field_to_fix() {
        let existing = vec![Goal::mapped("buy", "Purchase", "purchase", "tw-a1-b1")];
        let cases = [
            (input("", "purchase"), "name"),
            (input("purchase", "purchase"), "name"),
            (input("Level up", "Level Up"), "event"),
            (input("Level up", ""), "event"),
            (GoalInput { min_value: Some("9.99".into()), ..input("Big", "purchase") }, "currency"),
            (GoalInput { currency: Some("USD".into()), ..input("Big", "purchase") }, "min_value"),
            (
                GoalInput { min_value: Some("-1".into()), currency: Some("USD".into()), ..input("Big", "purchase") },
                "min_value",
            ),
            (
                GoalInput {
                    min_value: Some("10".into()),
                    currency: Some("dollars".into()),
                    ..input("Big", "purchase")
                },
                "currency",
            ),
            (GoalInput { key: Some("nope".into()), ..input("X", "purchase") }, "key"),
        ];
        for (form, field) in cases {
            let err = goal(&form, &existing).expect_err(&format!("{form:?}"));
            assert_eq!(err.field, field, "{form:?}: {err}");
        }
        let ok = goal(
            &GoalInput {
                min_value: Some(" 9.990 ".into()),
                currency: Some("usd".into()),
                ..input("Whale", "purchase")
            },
            &existing,
        )
        .unwrap();
        assert_eq!((ok.id.as_str(), ok.value_filter.unwrap().min_value.as_str()), ("whale", "9.99"));
        // Renaming a goal to its own name is fine.
        let edit = goal(&GoalInput { key: Some("buy".into()), ..input("PURCHASE", "purchase") }, &existing).unwrap();
        assert_eq!(edit.id, "buy");
    }

    #[test]
    fn tag_checks_block_bad_formats_and_warn_about_pixels_and_repeats() {
        let goals = vec![
            Goal::mapped("a", "First purchase", "purchase", "tw-oka17-aa111"),
            Goal::mapped("b", "Any launch", "game_launch", "tw-oka17-bb222"),
            Goal::mapped("c", "Level", "level_up", "tw-oka17-cc333"),
        ];
        let tags = |a: &str, b: &str, c: &str| {
            vec![
                TagInput { goal_key: "a".into(), tag: a.into() },
                TagInput { goal_key: "b".into(), tag: b.into() },
                TagInput { goal_key: "c".into(), tag: c.into() },
            ]
        };
        let checks = check_tags("oka17", &goals, &tags("tw-oka17-aa111", "tw-bad", "")).unwrap();
        assert_eq!(checks[0].tag.as_deref(), Some("tw-oka17-aa111"));
        assert!(checks[0].error.is_none() && checks[0].warnings.is_empty());
        assert!(checks[1].error.as_deref().unwrap().contains("tw-xxxxx-yyyyy"));
        assert_eq!((checks[2].tag.as_deref(), checks[2].error.as_deref()), (None, None), "empty: not sent to X");

        let checks = check_tags("oka17", &goals, &tags("tw-other-aa111", "tw-oka17-dup11", "tw-oka17-dup11")).unwrap();
        assert!(checks[0].warnings[0].contains("another pixel"));
        assert!(checks[1].warnings[0].contains("Any launch and Level"), "{:?}", checks[1].warnings);
        assert!(checks[2].warnings[0].contains("same tag"));
        assert!(check_tags("oka17", &goals, &[TagInput { goal_key: "zz".into(), tag: String::new() }]).is_err());
    }

    #[test]
    fn default_countries_are_iso_codes_with_phone_numbers() {
        assert_eq!(default_country(" us ").unwrap().as_deref(), Some("US"));
        assert_eq!(default_country("GB").unwrap().as_deref(), Some("GB"));
        assert_eq!(default_country("").unwrap(), None);
        assert_eq!(default_country("  ").unwrap(), None);
        for bad in ["UK", "XX", "USA", "U", "1A", "ü", "+1"] {
            let e = default_country(bad).unwrap_err();
            assert_eq!(e.field, "default_country", "{bad}");
            assert!(e.message.contains("ISO 3166-1"), "{bad}: {}", e.message);
        }
    }

    #[test]
    fn game_names() {
        assert_eq!(game_name("  Space Miner ").unwrap(), "Space Miner");
        assert_eq!(game_name("").unwrap_err().field, "name");
        assert!(game_name(&"x".repeat(61)).is_err());
        assert!(game_name("a\nb").is_err());
    }
}
