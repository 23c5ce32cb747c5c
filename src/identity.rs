//! Player identity: normalising and hashing identifiers, and what consent lets through.
//!
//! Pure functions; nothing here does I/O. Raw identifiers never leave this module un-hashed,
//! except click ids, IP and user agent, which the networks take as they are.

use sha2::{Digest, Sha256};

use crate::model::{Consent, ConversionEvent};

/// SHA-256 of the UTF-8 text, as lower-case hex.
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Trim and lower-case; `None` when it is not shaped like an address (one `@`, text both sides).
pub fn normalize_email(raw: &str) -> Option<String> {
    let email = raw.trim().to_lowercase();
    let (local, domain) = email.split_once('@')?;
    (!local.is_empty() && !domain.is_empty() && !domain.contains('@') && !email.contains(char::is_whitespace))
        .then_some(email)
}

/// Reddit's advanced-matching normalisation: on top of [`normalize_email`], drop a `+tag` from
/// the local part and every character of the local part that is not a letter or digit.
pub fn normalize_email_reddit(raw: &str) -> Option<String> {
    let email = normalize_email(raw)?;
    let (local, domain) = email.split_once('@')?;
    let local = local.split('+').next().unwrap_or_default();
    let local: String = local.chars().filter(|c| c.is_alphanumeric()).collect();
    (!local.is_empty()).then(|| format!("{local}@{domain}"))
}

/// E.164 (`+` and digits) or `None` when the number cannot be read. A number must carry its
/// country code (`+44…` or `0044…`): we have no reliable region to guess one from.
pub fn normalize_phone(raw: &str) -> Option<String> {
    let trimmed = raw.trim();
    let international = match trimmed.strip_prefix("00") {
        Some(rest) => format!("+{rest}"),
        None => trimmed.to_owned(),
    };
    if !international.starts_with('+') {
        return None;
    }
    let parsed = phonenumber::parse(None, &international).ok()?;
    let e164 = parsed.format().mode(phonenumber::Mode::E164).to_string();
    let digits = e164.len().saturating_sub(1);
    (e164.starts_with('+') && (8..=15).contains(&digits) && e164[1..].bytes().all(|b| b.is_ascii_digit()))
        .then_some(e164)
}

/// Loads the phone-number metadata now, on a blocking thread, rather than in the first event
/// with a phone: the load is ~150 ms of CPU, and the ingest's router, which routes one group
/// at a time, held every request behind it for as long.
pub fn load_phone_metadata_in_background() {
    // Any number in the international format makes the library load its metadata.
    let _ = std::thread::Builder::new()
        .name("postback-phone-metadata".into())
        .spawn(|| normalize_phone("+44 20 7946 0958"));
}

/// Which email normalisation a network asks for before hashing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailRule {
    /// Trim and lower-case (TikTok, X).
    Plain,
    /// Reddit's advanced matching (see [`normalize_email_reddit`]).
    Reddit,
}

/// The identifiers of one event that consent allows to leave, normalised and hashed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub ttclid: Option<String>,
    pub twclid: Option<String>,
    pub rdt_cid: Option<String>,
    pub email_sha256: Option<String>,
    pub phone_sha256: Option<String>,
    /// SHA-256 of the player id; the raw player id never leaves.
    pub external_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// Applies consent and normalisation. Identifiers that cannot be read are dropped, each with a
/// warning that does not repeat the personal value.
pub fn resolve(event: &ConversionEvent, rule: EmailRule, warnings: &mut Vec<String>) -> Identity {
    if event.consent == Consent::None {
        return Identity::default();
    }
    let mut id = Identity {
        ttclid: event.click_ids.ttclid.clone(),
        twclid: event.click_ids.twclid.clone(),
        rdt_cid: event.click_ids.rdt_cid.clone(),
        ..Identity::default()
    };
    if event.consent != Consent::Full {
        return id;
    }
    // A raw value wins over a pre-hashed one: we then control the normalisation.
    id.email_sha256 = match (&event.email, &event.email_sha256) {
        (Some(raw), pre) => {
            let normalised = match rule {
                EmailRule::Plain => normalize_email(raw),
                EmailRule::Reddit => normalize_email_reddit(raw),
            };
            match normalised {
                Some(email) => Some(sha256_hex(&email)),
                None => {
                    warnings.push("email is not an address (name@domain); it was not sent".to_owned());
                    pre.clone()
                }
            }
        }
        (None, pre) => pre.clone(),
    };
    id.phone_sha256 = match (&event.phone, &event.phone_sha256) {
        (Some(raw), pre) => match normalize_phone(raw) {
            Some(e164) => Some(sha256_hex(&e164)),
            None => {
                warnings.push(
                    "phone could not be read as an international number (E.164, e.g. +44 20 7946 0958); it was not sent"
                        .to_owned(),
                );
                pre.clone()
            }
        },
        (None, pre) => pre.clone(),
    };
    id.external_id = Some(sha256_hex(&event.player_id));
    id.ip = event.ip.clone();
    id.user_agent = event.user_agent.clone();
    id
}

/// Whether [`resolve`] yields an email hash under `rule`, without hashing: consent is full and
/// the raw address normalises, or a pre-hashed one came with the event.
pub fn has_email(event: &ConversionEvent, rule: EmailRule) -> bool {
    if event.consent != Consent::Full {
        return false;
    }
    let normalises = |raw: &String| match rule {
        EmailRule::Plain => normalize_email(raw).is_some(),
        EmailRule::Reddit => normalize_email_reddit(raw).is_some(),
    };
    event.email_sha256.is_some() || event.email.as_ref().is_some_and(normalises)
}

/// Whether [`resolve`] yields a phone hash, without hashing (reading the number is still the
/// expensive part, so callers ask only when no cheaper identifier decided the matter).
pub fn has_phone(event: &ConversionEvent) -> bool {
    event.consent == Consent::Full
        && (event.phone_sha256.is_some() || event.phone.as_deref().and_then(normalize_phone).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_vectors_from_the_network_docs() {
        let cases = [
            // X guide: phone in E.164.
            ("+11234567890", "1fa6b8d986d9b9cd01bf36951815158bbde9f520c0567c835dfe34783d0a4231"),
            // X guide's mislabelled example: the hash is of test@twitter.com …
            ("test@twitter.com", "d360d510"),
            // … and this is test@x.com.
            ("test@x.com", "5806dc6b2f04fb728708a8f7b81c14edcd4fba36f77914cf0c9368d9a3a25f76"),
            // Reddit advanced matching example, after normalisation.
            ("alice@example.com", "ff8d9819fc0e12bf0d24892e45987e249a28dce836a85cad60e28eaaa8c6d976"),
        ];
        for (input, want) in cases {
            assert!(sha256_hex(input).starts_with(want), "{input}");
        }
    }

    #[test]
    fn email_normalisation_table() {
        let cases = [
            ("  Test@X.com ", Some("test@x.com"), Some("test@x.com")),
            ("Al.ice$+Apple@Example.Com", Some("al.ice$+apple@example.com"), Some("alice@example.com")),
            ("first.last+promo@mail.co", Some("first.last+promo@mail.co"), Some("firstlast@mail.co")),
            ("no-at-sign", None, None),
            ("@domain.com", None, None),
            ("a@b@c", None, None),
            ("+tag@x.com", Some("+tag@x.com"), None),
        ];
        for (raw, plain, reddit) in cases {
            assert_eq!(normalize_email(raw).as_deref(), plain, "plain {raw}");
            assert_eq!(normalize_email_reddit(raw).as_deref(), reddit, "reddit {raw}");
        }
    }

    #[test]
    fn phone_normalisation_table() {
        let cases = [
            ("+1 (123) 456-7890", Some("+11234567890")),
            ("+44 20 7946 0958", Some("+442079460958")),
            ("0044 20 7946 0958", Some("+442079460958")),
            ("+49 (0)30 1234567", Some("+49301234567")),
            ("  +33 6 12 34 56 78 ", Some("+33612345678")),
            ("020 7946 0958", None),
            ("call me", None),
            ("+", None),
            ("+1 2", None),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize_phone(raw).as_deref(), want, "{raw}");
        }
    }
}
