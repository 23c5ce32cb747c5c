//! `Secret`: a token or key that never shows up in Debug output, logs or serialised data.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroize;

/// A secret string. Debug and Display print `<redacted>`; serialising fails, so a secret can
/// never ride along in IPC answers, JSON files or log records; the memory is wiped on drop.
/// It can be *deserialised*, because the UI sends a freshly typed token once.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that needs it (an HTTP header, the keychain).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("a secret is never serialised; it lives in the OS keychain"))
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed_or_serialised() {
        let secret = Secret::new("tok_live_123");
        assert_eq!(format!("{secret:?} {secret}"), "<redacted> <redacted>");
        #[derive(Serialize, Debug)]
        struct Holder {
            token: Secret,
        }
        let holder = Holder { token: secret.clone() };
        assert!(!format!("{holder:?}").contains("tok_live"));
        let err = serde_json::to_string(&holder).expect_err("serialising a secret must fail");
        assert!(err.to_string().contains("never serialised"), "{err}");
        let back: Secret = serde_json::from_str("\"typed\"").expect("a typed token deserialises");
        assert_eq!(back.expose(), "typed");
    }
}
