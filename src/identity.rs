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

/// The country a phone number written without its country code is read in: an ISO 3166-1
/// alpha-2 code the phone-number metadata knows (`US`, `GB`, `DE`, …). A game's setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhoneCountry(phonenumber::country::Id);

impl PhoneCountry {
    /// The country of an upper-case ISO 3166-1 alpha-2 code, when numbers can be read in it.
    pub fn parse(code: &str) -> Option<Self> {
        let id: phonenumber::country::Id = code.parse().ok()?;
        // Only a region with metadata: the parser unwraps the default region's metadata.
        phonenumber::metadata::DATABASE.by_id(id.as_ref())?;
        Some(Self(id))
    }

    pub fn code(&self) -> &str {
        self.0.as_ref()
    }
}

/// Every code a default country can be (countries with phone-number metadata), sorted: the
/// game form's choices.
pub fn phone_countries() -> Vec<String> {
    let mut codes: Vec<String> = phonenumber::metadata::DATABASE
        .iter()
        .map(|meta| meta.id())
        .filter(|id| PhoneCountry::parse(id).is_some())
        .map(str::to_owned)
        .collect();
    codes.sort_unstable();
    codes.dedup();
    codes
}

/// Why a phone number was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneProblem {
    /// Written without `+` or `00` and there is no default country to read it in.
    NoCountry,
    /// Not a phone number: letters, too short or too long for its country.
    Unreadable,
}

impl PhoneProblem {
    /// The warning, naming the field and never the number.
    pub fn warning(self) -> &'static str {
        match self {
            PhoneProblem::NoCountry => {
                "phone: no country code (+ or 00) and the game has no default country; not sent \
                 (send it as +<country code> <number>, or set the game's default country)"
            }
            PhoneProblem::Unreadable => {
                "phone could not be read as a phone number (e.g. +44 20 7946 0958, or a national number \
                 with the game's default country); it was not sent"
            }
        }
    }
}

/// A number as written, once separators and any extension are gone.
enum Written {
    /// After `+` or `00`: country code first.
    International(String),
    /// Neither: read in the default country.
    National(String),
}

/// The separators people and forms put into numbers; they carry no meaning.
fn is_separator(c: char) -> bool {
    c.is_whitespace() || matches!(c, '-' | '.' | '(' | ')' | '/' | '\u{2010}'..='\u{2015}' | '\u{2212}')
}

/// The number without a trailing extension (`x450`, `ext. 450`, `extension 450`, `#450`,
/// `;ext=450`): networks match the line, never an extension.
fn without_extension(text: &str) -> &str {
    let before_digits = text.trim_end_matches(|c: char| c.is_ascii_digit());
    if before_digits.len() == text.len() {
        return text;
    }
    let marker_end = before_digits.trim_end_matches(|c: char| c.is_whitespace() || matches!(c, '.' | ':' | '='));
    let lower = marker_end.to_ascii_lowercase();
    for marker in ["extension", "ext", "x", "#"] {
        if lower.ends_with(marker) {
            // The marker is ASCII, so this cut is on a character boundary.
            let number = &marker_end[..marker_end.len() - marker.len()];
            return number.trim_end_matches(|c: char| c.is_whitespace() || matches!(c, ',' | ';'));
        }
    }
    text
}

/// The longest run of digits worth handing to the parser (E.164 allows 15, plus `00`).
const MAX_DIGITS: usize = 17;

/// Reads the text of a number: an optional `+` before the first digit, digits, separators and
/// a trailing extension; anything else is not a phone number.
fn written(raw: &str) -> Option<Written> {
    let number = without_extension(raw.trim());
    let mut digits = String::with_capacity(MAX_DIGITS);
    let mut plus = false;
    for c in number.chars() {
        match c {
            '0'..='9' if digits.len() < MAX_DIGITS => digits.push(c),
            '+' if digits.is_empty() && !plus => plus = true,
            c if is_separator(c) => {}
            _ => return None,
        }
    }
    if digits.is_empty() {
        return None;
    }
    Some(if plus {
        Written::International(digits)
    } else if let Some(rest) = digits.strip_prefix("00") {
        Written::International(rest.to_owned())
    } else {
        Written::National(digits)
    })
}

/// Whether a national significant number of `len` digits is possible for a player's phone
/// (fixed line, mobile, personal, VoIP) under the country code. The metadata's general lengths
/// are empty, and service numbers are left out: a 7-digit Canadian UAN (`310 xxxx`) would let
/// a US number without its area code through.
fn possible_length(code: u16, len: usize) -> bool {
    use phonenumber::Type;
    const TYPES: [Type; 4] = [Type::FixedLine, Type::Mobile, Type::PersonalNumber, Type::Voip];
    let Ok(len) = u16::try_from(len) else { return false };
    phonenumber::metadata::DATABASE.by_code(&code).is_some_and(|regions| {
        regions.iter().any(|meta| {
            TYPES.iter().filter_map(|t| meta.descriptors().get(*t)).any(|d| d.possible_length().contains(&len))
        })
    })
}

/// E.164 (`+` and digits), the form every network hashes. Every spelling of a number reads
/// the same: separators anywhere, `+` or `00` before the country code, a trailing extension
/// removed. A number with neither `+` nor `00` is read in `default_country`, else refused.
/// The length must be possible for the country (so a local number without its area code is
/// refused); the digits are not checked against allocated ranges, as the networks' own test
/// numbers (`+1 555 …`) are not allocated.
pub fn normalize_phone(raw: &str, default_country: Option<PhoneCountry>) -> Result<String, PhoneProblem> {
    let parsed = match written(raw).ok_or(PhoneProblem::Unreadable)? {
        Written::International(digits) => phonenumber::parse(None, format!("+{digits}")),
        Written::National(digits) => match default_country {
            Some(country) => phonenumber::parse(Some(country.0), digits),
            None => return Err(PhoneProblem::NoCountry),
        },
    }
    .map_err(|_| PhoneProblem::Unreadable)?;
    let code = parsed.code().value();
    let national = parsed.national().to_string();
    let e164 = parsed.format().mode(phonenumber::Mode::E164).to_string();
    let digits = e164.len().saturating_sub(1);
    if (8..=15).contains(&digits) && possible_length(code, national.len()) {
        Ok(e164)
    } else {
        Err(PhoneProblem::Unreadable)
    }
}

/// Loads the phone-number metadata now, on a blocking thread, rather than in the first event
/// with a phone: the load is ~150 ms of CPU, and the ingest's router, which routes one group
/// at a time, held every request behind it for as long.
pub fn load_phone_metadata_in_background() {
    // Any number in the international format makes the library load its metadata.
    let _ = std::thread::Builder::new()
        .name("postback-phone-metadata".into())
        .spawn(|| normalize_phone("+44 20 7946 0958", None));
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
/// A phone number without its country code is read in `default_country` (the game's setting).
pub fn resolve(
    event: &ConversionEvent,
    rule: EmailRule,
    default_country: Option<PhoneCountry>,
    warnings: &mut Vec<String>,
) -> Identity {
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
        (Some(raw), pre) => match normalize_phone(raw, default_country) {
            Ok(e164) => Some(sha256_hex(&e164)),
            Err(problem) => {
                warnings.push(problem.warning().to_owned());
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

/// What [`resolve`] makes of the event's phone with the same `default_country`, without
/// hashing: whether a phone hash is sent, or why the number given was not read (when no
/// pre-hashed one stands in). Reading the number is still the expensive part, so callers ask
/// only when no cheaper identifier decided the matter; a national number without a default
/// country is refused by its text alone.
pub fn phone_reading(event: &ConversionEvent, default_country: Option<PhoneCountry>) -> Result<bool, PhoneProblem> {
    if event.consent != Consent::Full {
        return Ok(false);
    }
    match (&event.phone, &event.phone_sha256) {
        (Some(raw), pre) => match normalize_phone(raw, default_country) {
            Ok(_) => Ok(true),
            Err(_) if pre.is_some() => Ok(true),
            Err(problem) => Err(problem),
        },
        (None, pre) => Ok(pre.is_some()),
    }
}

/// Whether [`resolve`] yields a phone hash with the same `default_country` (see
/// [`phone_reading`]).
pub fn has_phone(event: &ConversionEvent, default_country: Option<PhoneCountry>) -> bool {
    phone_reading(event, default_country) == Ok(true)
}

/// Gives a national phone number its country before the event is queued: the number is
/// replaced by its E.164 form read in `country`, so that it is read the same whenever the
/// event is sent, whatever the game's setting is then. Numbers with a country code, numbers
/// that do not read, and events whose consent keeps the phone back are left as they are.
pub fn localise_phone(event: &mut ConversionEvent, country: PhoneCountry) {
    if event.consent != Consent::Full {
        return;
    }
    let Some(raw) = event.phone.as_deref() else { return };
    if !matches!(written(raw), Some(Written::National(_))) {
        return;
    }
    if let Ok(e164) = normalize_phone(raw, Some(country)) {
        event.phone = Some(e164);
    }
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
        use PhoneProblem::{NoCountry, Unreadable};
        let us = PhoneCountry::parse("US");
        let gb = PhoneCountry::parse("GB");
        assert!(us.is_some() && gb.is_some());
        let cases: [(&str, Option<PhoneCountry>, Result<&str, PhoneProblem>); 32] = [
            // Separators anywhere: every spelling of an international number reads the same.
            ("+1650-555-1212", None, Ok("+16505551212")),
            ("+1 (650)555-1212", None, Ok("+16505551212")),
            ("+1 650 555 1212", None, Ok("+16505551212")),
            ("+1.650.555.1212", None, Ok("+16505551212")),
            ("(+1) 650/555-1212", None, Ok("+16505551212")),
            ("+1555-555-5555", None, Ok("+15555555555")),
            ("+1 (123) 456-7890", None, Ok("+11234567890")),
            ("+44 20 7946 0958", None, Ok("+442079460958")),
            ("+49 (0)30 1234567", None, Ok("+49301234567")),
            ("  +33 6 12 34 56 78 ", None, Ok("+33612345678")),
            ("+39 06 1234 5678", None, Ok("+390612345678")),
            // `00` before the country code.
            ("0016505551212", None, Ok("+16505551212")),
            ("0044 20 7946 0958", None, Ok("+442079460958")),
            // Extensions are removed.
            ("+44 20 7946 0958 ext. 450", None, Ok("+442079460958")),
            ("+1 650 555 1212 x450", None, Ok("+16505551212")),
            ("+1 650 555 1212 Extension: 450", None, Ok("+16505551212")),
            ("+1 650 555 1212;ext=450", None, Ok("+16505551212")),
            // No `+` or `00`: the default country, else not sent.
            ("(650) 555-1212 x450", us, Ok("+16505551212")),
            ("(650) 555-1212 x450", None, Err(NoCountry)),
            ("1 650 555 1212", us, Ok("+16505551212")),
            ("020 7946 0958", gb, Ok("+442079460958")),
            ("020 7946 0958", None, Err(NoCountry)),
            // A country code wins over the default country.
            ("+1 650 555 1212", gb, Ok("+16505551212")),
            // Too short, too long, garbage.
            ("555-1212", us, Err(Unreadable)),
            ("+1 2", None, Err(Unreadable)),
            ("12", us, Err(Unreadable)),
            ("+1 650 555 1212 1212 1212", None, Err(Unreadable)),
            ("call me", None, Err(Unreadable)),
            ("call me", us, Err(Unreadable)),
            ("+", None, Err(Unreadable)),
            ("x450", us, Err(Unreadable)),
            ("+1 650 555 1212 +1", None, Err(Unreadable)),
        ];
        let wrong: Vec<String> = cases
            .iter()
            .filter(|(raw, country, want)| normalize_phone(raw, *country).as_deref() != want.as_deref())
            .map(|(raw, country, want)| {
                format!("{raw} in {country:?}: {:?}, want {want:?}", normalize_phone(raw, *country))
            })
            .collect();
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    /// Segment's TikTok Conversions destination hashes `+1555-555-5555` to this.
    #[test]
    fn segment_phone_vector() {
        let e164 = normalize_phone("+1555-555-5555", None).expect("read");
        assert_eq!(sha256_hex(&e164), "910a625c4ba147b544e6bd2f267e130ae14c591b6ba9c25cb8573322dedbebd0");
    }

    #[test]
    fn phone_countries_are_iso_codes_with_metadata() {
        assert_eq!(PhoneCountry::parse("US").map(|c| c.code().to_owned()).as_deref(), Some("US"));
        for bad in ["UK", "XX", "us", "", "USA", "001"] {
            assert_eq!(PhoneCountry::parse(bad), None, "{bad}");
        }
        let all = phone_countries();
        assert!(all.len() > 200 && all.iter().all(|c| c.len() == 2), "{all:?}");
        assert!(["US", "GB", "DE", "JP"].iter().all(|c| all.iter().any(|a| a == c)));
    }

    fn event_with_phone(phone: &str, consent: &str) -> ConversionEvent {
        ConversionEvent::from_json(&serde_json::json!({"event_id": "e", "name": "purchase",
            "occurred_at": "2026-11-20T10:15:30Z", "player_id": "p", "consent": consent, "phone": phone}))
        .expect("event")
    }

    /// The cheap check agrees with what resolve sends, with and without a default country, and
    /// the warning for a number without a country names the field and the setting.
    #[test]
    fn has_phone_agrees_with_resolve_and_warns_without_a_country() {
        let us = PhoneCountry::parse("US");
        for phone in ["(650) 555-1212", "+1650-555-1212", "555-1212", "garbage"] {
            for country in [None, us] {
                let event = event_with_phone(phone, "full");
                let mut warnings = Vec::new();
                let id = resolve(&event, EmailRule::Plain, country, &mut warnings);
                assert_eq!(has_phone(&event, country), id.phone_sha256.is_some(), "{phone} {country:?}");
                assert_eq!(warnings.len(), usize::from(id.phone_sha256.is_none()), "{phone} {country:?}");
            }
        }
        let mut warnings = Vec::new();
        resolve(&event_with_phone("(650) 555-1212", "full"), EmailRule::Plain, None, &mut warnings);
        assert!(
            warnings[0].starts_with("phone: no country code (+ or 00) and the game has no default country; not sent"),
            "{warnings:?}"
        );
        assert!(!warnings[0].contains("555"), "never the number");
    }

    /// A national number is given its country before it is queued; others stay as written.
    #[test]
    fn localise_phone_reads_national_numbers_in_the_country() {
        let us = PhoneCountry::parse("US").expect("US");
        let cases = [
            ("(650) 555-1212 x450", "full", "+16505551212"),
            ("+44 20 7946 0958", "full", "+44 20 7946 0958"),
            ("555-1212", "full", "555-1212"),
            ("(650) 555-1212", "anonymous", "(650) 555-1212"),
        ];
        for (phone, consent, want) in cases {
            let mut event = event_with_phone(phone, consent);
            localise_phone(&mut event, us);
            assert_eq!(event.phone.as_deref(), Some(want), "{phone} {consent}");
        }
    }
}
