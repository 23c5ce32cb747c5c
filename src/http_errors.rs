//! Failed HTTP requests in the user's words: what happened and what to do, instead of the
//! resolver's, hyper's or rustls's. Used wherever a request's failure reaches the window or
//! the CLI (delivery, the save-time check, X sign-in).

/// What a failed connection means to the user, from the error chain's words (hyper, the
/// resolver and rustls say it in theirs): what happened and what to do. Other failures keep
/// their own words.
pub fn transport_words(chain: &str) -> String {
    let lower = chain.to_ascii_lowercase();
    let has = |needle: &str| lower.contains(needle);
    if has("dns error") || has("failed to lookup address") || has("name or service not known") || has("no such host") {
        "no internet connection or DNS: the network's address could not be looked up; check the connection".into()
    } else if has("connection refused") {
        "the connection was refused: nothing answers at that address (a firewall or proxy may block it)".into()
    } else if has("certificate") || has("invalid peer") || has("handshake") {
        "the secure connection failed: the server's certificate is not trusted (a proxy that inspects TLS?)".into()
    } else if has("network is unreachable") || has("no route to host") {
        "no route to the network: check the internet connection".into()
    } else if has("connection reset") || has("connection closed") || has("broken pipe") {
        "the connection was cut before an answer: the answer may or may not have been recorded".into()
    } else {
        chain.to_owned()
    }
}

/// A failed request in the user's words (see [`transport_words`]).
pub fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".to_owned();
    }
    transport_words(&without_url(e))
}

/// reqwest errors name the URL; ours carry no secrets, but keep log lines short.
pub fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(&format!(" for url ({url})"), "");
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::transport_words;

    #[test]
    fn library_words_become_what_happened_and_what_to_do() {
        let dns = "error sending request: client error (Connect): dns error: error resolving DNS: failed to lookup address information: Name or service not known";
        assert_eq!(
            transport_words(dns),
            "no internet connection or DNS: the network's address could not be looked up; check the connection"
        );
        assert!(transport_words("client error (Connect): tcp connect error: Connection refused (os error 111)")
            .starts_with("the connection was refused"));
        assert!(transport_words("client error (Connect): invalid peer certificate: UnknownIssuer")
            .starts_with("the secure connection failed"));
        assert_eq!(transport_words("something else"), "something else");
    }
}
