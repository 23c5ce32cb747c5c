//! Format checks for the ids a user types in; shared by the CLI, the store and the UI.
//! Each returns the cleaned value or a message that says what a good value looks like.

fn is_lower_alnum(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// TikTok pixel code, e.g. `CABCD1234EFGH`: upper-case letters and digits.
pub fn tiktok_pixel_code(raw: &str) -> Result<String, String> {
    let s = raw.trim();
    if (8..=32).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()) {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "'{s}' is not a TikTok pixel code; copy the code from Events Manager → Data Sources (8–32 upper-case letters and digits, e.g. CABCD1234EFGH)"
        ))
    }
}

/// Reddit pixel id: `a2_` followed by lower-case letters and digits, e.g. `a2_abcd1234`.
pub fn reddit_pixel_id(raw: &str) -> Result<String, String> {
    let s = raw.trim();
    match s.strip_prefix("a2_") {
        Some(rest) if is_lower_alnum(rest) => Ok(s.to_owned()),
        _ => Err(format!(
            "'{s}' is not a Reddit pixel id; it starts with a2_ followed by lower-case letters and digits (e.g. a2_abcd1234), as shown in Events Manager"
        )),
    }
}

/// X pixel id, e.g. `oka17`: lower-case letters and digits.
pub fn x_pixel_id(raw: &str) -> Result<String, String> {
    let s = raw.trim();
    if (2..=16).contains(&s.len()) && is_lower_alnum(s) {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "'{s}' is not an X pixel id; copy it from Events Manager (lower-case letters and digits, e.g. oka17)"
        ))
    }
}

/// X Single Event Tag id, `tw-<pixel>-<event>`, e.g. `tw-oka17-ol288`.
pub fn x_event_tag(raw: &str) -> Result<String, String> {
    let s = raw.trim();
    let ok = s.strip_prefix("tw-").and_then(|rest| rest.split_once('-')).is_some_and(|(pixel, tag)| {
        (2..=16).contains(&pixel.len()) && (2..=16).contains(&tag.len()) && is_lower_alnum(pixel) && is_lower_alnum(tag)
    });
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "'{s}' is not an X event tag; use the Single Event Tag id from Events Manager, shaped tw-xxxxx-yyyyy (e.g. tw-oka17-ol288)"
        ))
    }
}

/// The pixel part of an event tag (`tw-oka17-ol288` → `oka17`), for consistency warnings.
pub fn x_event_tag_pixel(tag: &str) -> Option<&str> {
    tag.strip_prefix("tw-")?.split_once('-').map(|(pixel, _)| pixel)
}

/// An API base URL override (the sandbox). Parsed with the `url` crate: https anywhere, plain
/// http only when the host *is* a loopback address or `localhost` (tokens must not cross a
/// network unencrypted); never a user name or password, query or fragment.
pub fn base_url(raw: &str) -> Result<String, String> {
    let s = raw.trim();
    let example = "write it like https://api.example.com or http://127.0.0.1:8787";
    let url = url::Url::parse(s).map_err(|e| format!("'{s}' is not a URL ({e}); {example}"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "'{s}' carries a user name or password before '@'; remove it — the host is what follows the '@', {example}"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("'{s}' has a query or fragment; give only the scheme, host, port and path"));
    }
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => return Err(format!("'{s}' has no host; {example}")),
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(format!(
                "'{s}' uses plain http on a host that is not this computer; use https, or http only for 127.0.0.1 / localhost / [::1]"
            ))
        }
        other => return Err(format!("'{s}' uses {other}:, not http(s); {example}")),
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiktok_pixel_codes() {
        assert_eq!(tiktok_pixel_code(" CABCD1234EFGH ").as_deref(), Ok("CABCD1234EFGH"));
        for bad in ["", "cabcd1234efgh", "CABC D1234", "SHORT", "CABCD1234EFGH!"] {
            assert!(tiktok_pixel_code(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reddit_pixel_ids() {
        assert_eq!(reddit_pixel_id("  a2_abcd1234 ").as_deref(), Ok("a2_abcd1234"));
        for bad in ["abcd1234", "a2_", "a2_ABCD", "t2_abcd", "a2_ab cd", "a2-abcd"] {
            let err = reddit_pixel_id(bad).unwrap_err();
            assert!(err.contains("a2_"), "{bad}: {err}");
        }
    }

    #[test]
    fn x_ids_and_tags() {
        assert_eq!(x_pixel_id("oka17").as_deref(), Ok("oka17"));
        assert!(x_pixel_id("OKA17").is_err());
        assert_eq!(x_event_tag(" tw-oka17-ol288").as_deref(), Ok("tw-oka17-ol288"));
        for bad in ["tw-oka17", "oka17-ol288", "tw--ol288", "tw-oka17-", "tw-OKA17-ol288", "tw-oka17-ol288-x"] {
            assert!(x_event_tag(bad).is_err(), "{bad}");
        }
        assert_eq!(x_event_tag_pixel("tw-oka17-ol288"), Some("oka17"));
    }

    #[test]
    fn base_urls() {
        let accepted = [
            ("http://127.0.0.1:8787/", "http://127.0.0.1:8787"),
            ("  http://127.0.0.1:47811 ", "http://127.0.0.1:47811"),
            ("http://127.1.2.3:9000", "http://127.1.2.3:9000"),
            ("http://localhost:8080/api/", "http://localhost:8080/api"),
            ("http://LOCALHOST:8080", "http://localhost:8080"),
            ("http://[::1]:9000", "http://[::1]:9000"),
            ("https://ads-api.x.com", "https://ads-api.x.com"),
            ("https://business-api.tiktok.com/", "https://business-api.tiktok.com"),
        ];
        for (raw, want) in accepted {
            assert_eq!(base_url(raw).as_deref(), Ok(want), "{raw}");
        }
        let refused = [
            ("http://127.0.0.1@evil.example", "user name"),
            ("http://localhost:1@evil.example", "user name"),
            ("https://user:pw@ads-api.x.com", "user name"),
            ("http://127.evil.example", "plain http"),
            ("http://localhost.evil.example", "plain http"),
            ("http://127.0.0.1.nip.io", "plain http"),
            ("http://ads-api.x.com", "plain http"),
            ("http://0.0.0.0:8080", "plain http"),
            ("http://[::ffff:8.8.8.8]", "plain http"),
            ("http://10.0.0.1", "plain http"),
            ("ftp://127.0.0.1", "ftp"),
            ("file:///etc/passwd", "no host"),
            ("127.0.0.1:8787", "not"),
            ("http://", "not a URL"),
            ("https://ads-api.x.com/?token=1", "query"),
            ("", "not a URL"),
        ];
        for (raw, words) in refused {
            let err = base_url(raw).expect_err(raw);
            assert!(err.contains(words), "{raw}: {err}");
        }
    }
}

/// A goal's value filter: a non-negative decimal amount and an ISO 4217 currency.
pub fn value_filter(min_value: &str, currency: &str) -> Result<super::ValueFilter, super::InputError> {
    use std::str::FromStr;
    let min = min_value.trim();
    let amount = rust_decimal::Decimal::from_str(min)
        .ok()
        .filter(|d| !d.is_sign_negative())
        .ok_or_else(|| super::InputError::new("min_value", format!("'{min}' is not an amount; write it like 9.99")))?;
    let code = currency.trim().to_ascii_uppercase();
    if iso_currency::Currency::from_code(&code).is_none() {
        return Err(super::InputError::new(
            "currency",
            format!("'{}' is not an ISO 4217 currency code; write it like USD or EUR", currency.trim()),
        ));
    }
    Ok(super::ValueFilter { min_value: amount.normalize().to_string(), currency: code })
}

/// A canonical event name a goal or trigger counts: lower-case letters, digits and `_`, as the
/// game server sends them (`purchase`, `level_complete`).
pub fn event_name(raw: &str) -> Result<String, String> {
    let s = raw.trim();
    let ok = (1..=64).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && s.bytes().next().is_some_and(|b| b.is_ascii_lowercase());
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "'{s}' is not an event name; use the name your game sends, in lower case with _ (e.g. purchase, level_complete)"
        ))
    }
}

/// Which id a person is typing, for the UI's as-you-type check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum IdKind {
    TiktokPixelCode,
    RedditPixelId,
    XPixelId,
    XEventTag,
}

/// Checks one id of the given kind: the cleaned value, or an error naming the field and the fix.
pub fn check(kind: IdKind, raw: &str) -> Result<String, super::InputError> {
    let (field, result) = match kind {
        IdKind::TiktokPixelCode => ("pixel_code", tiktok_pixel_code(raw)),
        IdKind::RedditPixelId => ("pixel_id", reddit_pixel_id(raw)),
        IdKind::XPixelId => ("pixel_id", x_pixel_id(raw)),
        IdKind::XEventTag => ("event_tag", x_event_tag(raw)),
    };
    result.map_err(|message| super::InputError::new(field, message))
}
