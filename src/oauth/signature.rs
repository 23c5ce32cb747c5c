//! OAuth 1.0a request signing (RFC 5849 §3.4, HMAC-SHA1), as pure functions.
//!
//! X signs only the `oauth_*` protocol parameters, the query and form-encoded bodies; a JSON
//! body is never part of the signature base string.

use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::Url;
use sha1::Sha1;

use super::OAuthError;

/// RFC 3986 percent-encoding as RFC 5849 §3.6 requires: everything but `A-Z a-z 0-9 - . _ ~`.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// One request to sign.
pub struct SigningInput<'a> {
    pub method: &'a str,
    /// Absolute URL, query included.
    pub url: &'a str,
    /// Parameters of an `application/x-www-form-urlencoded` body (never a JSON body).
    pub form: &'a [(String, String)],
    /// The `oauth_*` protocol parameters, without `oauth_signature`.
    pub oauth: &'a [(String, String)],
}

/// §3.4.1.2: scheme and host lower-case, default port dropped, no query or fragment.
fn base_string_uri(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    format!("{}://{host}{port}{}", url.scheme(), url.path())
}

/// §3.4.1: `METHOD&enc(base URI)&enc(normalised parameters)`.
pub fn signature_base_string(input: &SigningInput<'_>) -> Result<String, OAuthError> {
    let url = Url::parse(input.url).map_err(|e| OAuthError::InvalidUrl(format!("{}: {e}", input.url)))?;
    let mut params: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (percent_encode(&k), percent_encode(&v)))
        .chain(input.form.iter().chain(input.oauth).map(|(k, v)| (percent_encode(k), percent_encode(v))))
        .collect();
    params.sort();
    let normalised: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    Ok(format!(
        "{}&{}&{}",
        input.method.to_ascii_uppercase(),
        percent_encode(&base_string_uri(&url)),
        percent_encode(&normalised.join("&"))
    ))
}

/// §3.4.2: base64(HMAC-SHA1(key = enc(consumer secret) & enc(token secret), base string)).
pub fn hmac_sha1(base_string: &str, consumer_secret: &str, token_secret: &str) -> String {
    let key = format!("{}&{}", percent_encode(consumer_secret), percent_encode(token_secret));
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(key.as_bytes()) else {
        unreachable!("HMAC accepts keys of any length")
    };
    mac.update(base_string.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// §3.5.1: the `Authorization` header from the protocol parameters and the signature.
pub fn authorization_header(oauth: &[(String, String)], signature: &str, realm: Option<&str>) -> String {
    let mut parts: Vec<String> = realm.map(|r| format!("realm=\"{r}\"")).into_iter().collect();
    let mut sorted: Vec<&(String, String)> = oauth.iter().collect();
    sorted.sort();
    for (k, v) in sorted {
        parts.push(format!("{}=\"{}\"", percent_encode(k), percent_encode(v)));
    }
    parts.push(format!("oauth_signature=\"{}\"", percent_encode(signature)));
    format!("OAuth {}", parts.join(", "))
}

/// The client's keys and, once it has one, the (temporary or access) token.
pub struct Signer<'a> {
    pub consumer_key: &'a str,
    pub consumer_secret: &'a str,
    pub token: Option<(&'a str, &'a str)>,
}

impl Signer<'static> {
    /// The keys of X's published "Creating a signature" example: a known answer for tests and benches.
    pub const X_DOCS_EXAMPLE: Self = Signer {
        consumer_key: "xvz1evFS4wEEPTGEFPHBog",
        consumer_secret: "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw",
        token: Some((
            "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb",
            "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE",
        )),
    };
}

impl Signer<'_> {
    /// A complete `Authorization: OAuth …` value for one request, with a given nonce and time.
    pub fn header(
        &self,
        method: &str,
        url: &str,
        form: &[(String, String)],
        extra: &[(&str, &str)],
        nonce: &str,
        timestamp: i64,
    ) -> Result<String, OAuthError> {
        let mut oauth: Vec<(String, String)> = vec![
            ("oauth_consumer_key".into(), self.consumer_key.into()),
            ("oauth_nonce".into(), nonce.into()),
            ("oauth_signature_method".into(), "HMAC-SHA1".into()),
            ("oauth_timestamp".into(), timestamp.to_string()),
            ("oauth_version".into(), "1.0".into()),
        ];
        if let Some((token, _)) = self.token {
            oauth.push(("oauth_token".into(), token.into()));
        }
        oauth.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let base = signature_base_string(&SigningInput { method, url, form, oauth: &oauth })?;
        let signature = hmac_sha1(&base, self.consumer_secret, self.token.map(|(_, s)| s).unwrap_or_default());
        Ok(authorization_header(&oauth, &signature, None))
    }

    /// The same with a fresh random nonce and the current time: what goes on the wire.
    pub fn header_now(
        &self,
        method: &str,
        url: &str,
        form: &[(String, String)],
        extra: &[(&str, &str)],
    ) -> Result<String, OAuthError> {
        let nonce: String = std::iter::repeat_with(fastrand::alphanumeric).take(32).collect();
        self.header(method, url, form, extra, &nonce, chrono::Utc::now().timestamp())
    }
}

/// Reads the protocol parameters back out of an `Authorization: OAuth …` header (the sandbox
/// uses this to verify signatures).
pub fn parse_authorization_header(value: &str) -> Option<Vec<(String, String)>> {
    let params = value.strip_prefix("OAuth ")?;
    let mut out = Vec::new();
    for part in params.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        let v = v.strip_prefix('"')?.strip_suffix('"')?;
        out.push((percent_decode(k)?, percent_decode(v)?));
    }
    Some(out)
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    /// RFC 5849 §1.2: the three HMAC-SHA1 requests of the photos example, byte for byte.
    #[test]
    fn rfc5849_section_1_2_signatures() {
        let common = |nonce: &str, ts: &str| {
            vec![
                ("oauth_consumer_key", "dpf43f3p2l4k3l03"),
                ("oauth_signature_method", "HMAC-SHA1"),
                ("oauth_timestamp", ts),
                ("oauth_nonce", nonce),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect::<Vec<_>>()
        };
        let mut initiate = common("wIjqoS", "137131200");
        initiate.push(("oauth_callback".into(), "http://printer.example.com/ready".into()));
        let base = signature_base_string(&SigningInput {
            method: "POST",
            url: "https://photos.example.net/initiate",
            form: &[],
            oauth: &initiate,
        })
        .expect("valid URL");
        assert_eq!(hmac_sha1(&base, "kd94hf93k423kf44", ""), "74KNZJeDHnMBp0EMJ9ZHt/XKycU=");

        let mut token = common("walatlh", "137131201");
        token.extend(pairs(&[("oauth_token", "hh5s93j4hdidpola"), ("oauth_verifier", "hfdp7dh39dks9884")]));
        let base = signature_base_string(&SigningInput {
            method: "POST",
            url: "https://photos.example.net/token",
            form: &[],
            oauth: &token,
        })
        .expect("valid URL");
        assert_eq!(hmac_sha1(&base, "kd94hf93k423kf44", "hdhd0244k9j7ao03"), "gKgrFCywp7rO0OXSjdot/IHF7IU=");

        let mut photos = common("chapoH", "137131202");
        photos.push(("oauth_token".into(), "nnch734d00sl2jdk".into()));
        let base = signature_base_string(&SigningInput {
            method: "GET",
            url: "http://photos.example.net/photos?file=vacation.jpg&size=original",
            form: &[],
            oauth: &photos,
        })
        .expect("valid URL");
        assert_eq!(
            base,
            "GET&http%3A%2F%2Fphotos.example.net%2Fphotos&file%3Dvacation.jpg%26oauth_consumer_key%3Ddpf43f3p2l4k3l03%26oauth_nonce%3DchapoH%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131202%26oauth_token%3Dnnch734d00sl2jdk%26size%3Doriginal"
        );
        assert_eq!(hmac_sha1(&base, "kd94hf93k423kf44", "pfkkdhi9sl3r4s00"), "MdpQcU8iPSUjWoN/UDMsK2sui9I=");
    }

    /// RFC 5849 §3.4.1: query with encoded and repeated names, a form body, `+` as space.
    /// (The signature printed in §3.1 is known not to match its own base string: erratum 2550.)
    #[test]
    fn rfc5849_section_3_4_1_base_string() {
        let oauth = pairs(&[
            ("oauth_consumer_key", "9djdj82h48djs9d2"),
            ("oauth_token", "kkk9d7dh3k39sjv7"),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "137131201"),
            ("oauth_nonce", "7d8f3e4a"),
        ]);
        let form = pairs(&[("c2", ""), ("a3", "2 q")]);
        let base = signature_base_string(&SigningInput {
            method: "post",
            url: "http://EXAMPLE.COM:80/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b",
            form: &form,
            oauth: &oauth,
        })
        .expect("valid URL");
        assert_eq!(
            base,
            "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk9d7dh3k39sjv7"
        );
        assert_eq!(hmac_sha1(&base, "j49sk3j29djd", "dh893hdasih9"), "r6/TJjbCOr97/+UU0NsvSne7s5g=");
    }

    /// X's "Creating a signature" example, through the same `Signer` the dispatcher uses.
    #[test]
    fn x_creating_a_signature_example() {
        let signer = Signer::X_DOCS_EXAMPLE;
        let form = pairs(&[("status", "Hello Ladies + Gentlemen, a signed OAuth request!")]);
        let header = |url: &str| {
            signer
                .header("POST", url, &form, &[], "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg", 1318622958)
                .expect("valid URL")
        };
        let twitter = header("https://api.twitter.com/1.1/statuses/update.json?include_entities=true");
        assert_eq!(
            twitter,
            "OAuth oauth_consumer_key=\"xvz1evFS4wEEPTGEFPHBog\", oauth_nonce=\"kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg\", \
             oauth_signature_method=\"HMAC-SHA1\", oauth_timestamp=\"1318622958\", \
             oauth_token=\"370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb\", oauth_version=\"1.0\", \
             oauth_signature=\"hCtSmYh%2BiHYCEqBWrE7C7hYmtUk%3D\""
        );
        let x = header("https://api.x.com/1.1/statuses/update.json?include_entities=true");
        assert!(x.ends_with("oauth_signature=\"Ls93hJiZbQ3akF3HF3x1Bz8%2FzU4%3D\""), "{x}");
        let parsed = parse_authorization_header(&x).expect("our own header parses");
        assert!(parsed.contains(&("oauth_signature".into(), "Ls93hJiZbQ3akF3HF3x1Bz8/zU4=".into())));
    }

    #[test]
    fn percent_encoding_is_rfc3986() {
        assert_eq!(percent_encode("Ladies + Gentlemen, ~a_b.c-d!"), "Ladies%20%2B%20Gentlemen%2C%20~a_b.c-d%21");
        assert_eq!(percent_encode("☃"), "%E2%98%83");
    }
}
