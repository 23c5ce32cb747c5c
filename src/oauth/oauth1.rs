//! X OAuth 1.0a 3-legged flow: request token → user authorises in the browser → callback with
//! `oauth_verifier` on the loopback listener → access token. The access token does not expire.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::Url;

use super::loopback::CallbackListener;
use super::signature::Signer;
use super::{Browser, OAuthError, XOAuthEndpoints};
use crate::secrets::{OAuth1Credentials, Secret};

/// The studio's X app keys ("API Key and Secret" in the X developer portal).
#[derive(Debug, Clone)]
pub struct ConsumerKeys {
    pub key: String,
    pub secret: Secret,
}

async fn signed_post(
    http: &reqwest::Client,
    url: &str,
    signer: &Signer<'_>,
    extra: &[(&str, &str)],
) -> Result<HashMap<String, String>, OAuthError> {
    let url = &*crate::sandbox::resolve(url);
    let header = signer.header_now("POST", url, &[], extra)?;
    let response = http
        .post(url)
        .header("authorization", header)
        .send()
        .await
        .map_err(|e| OAuthError::Unreachable(crate::http_errors::describe(&e)))?;
    let status = response.status().as_u16();
    let body = response.text().await.map_err(|e| OAuthError::Unreachable(e.to_string()))?;
    if status == 401 || status == 403 {
        return Err(OAuthError::InvalidClient(first_line(&body)));
    }
    if status != 200 {
        return Err(OAuthError::Refused(format!("HTTP {status}: {}", first_line(&body))));
    }
    Ok(url::form_urlencoded::parse(body.as_bytes()).into_owned().collect())
}

fn first_line(body: &str) -> String {
    body.lines().next().unwrap_or_default().chars().take(200).collect()
}

fn need(answer: &HashMap<String, String>, key: &str) -> Result<String, OAuthError> {
    answer.get(key).filter(|v| !v.is_empty()).cloned().ok_or_else(|| OAuthError::Malformed(format!("no {key}")))
}

/// Step 1: a temporary token bound to our callback URL.
pub async fn request_token(
    http: &reqwest::Client,
    endpoints: &XOAuthEndpoints,
    consumer: &ConsumerKeys,
    callback: &str,
) -> Result<(String, Secret), OAuthError> {
    let signer = Signer { consumer_key: &consumer.key, consumer_secret: consumer.secret.expose(), token: None };
    let answer = signed_post(http, &endpoints.request_token, &signer, &[("oauth_callback", callback)]).await?;
    if answer.get("oauth_callback_confirmed").map(String::as_str) != Some("true") {
        return Err(OAuthError::Malformed("the callback URL was not confirmed".into()));
    }
    Ok((need(&answer, "oauth_token")?, need(&answer, "oauth_token_secret")?.into()))
}

/// Step 2: where the user approves the app.
pub fn authorize_url(endpoints: &XOAuthEndpoints, request_token: &str) -> Result<String, OAuthError> {
    let authorize = crate::sandbox::resolve(&endpoints.authorize);
    let mut url = Url::parse(&authorize).map_err(|e| OAuthError::InvalidUrl(format!("{authorize}: {e}")))?;
    url.query_pairs_mut().append_pair("oauth_token", request_token);
    Ok(url.into())
}

/// Step 3: the verifier from the callback buys the access token.
pub async fn access_token(
    http: &reqwest::Client,
    endpoints: &XOAuthEndpoints,
    consumer: &ConsumerKeys,
    request_token: &str,
    request_secret: &Secret,
    verifier: &str,
) -> Result<OAuth1Credentials, OAuthError> {
    let signer = Signer {
        consumer_key: &consumer.key,
        consumer_secret: consumer.secret.expose(),
        token: Some((request_token, request_secret.expose())),
    };
    let answer = signed_post(http, &endpoints.access_token, &signer, &[("oauth_verifier", verifier)]).await?;
    Ok(OAuth1Credentials {
        consumer_key: consumer.key.clone(),
        consumer_secret: consumer.secret.clone(),
        token: need(&answer, "oauth_token")?,
        token_secret: need(&answer, "oauth_token_secret")?.into(),
    })
}

/// The whole flow. The request token doubles as the state: a callback for another token is
/// refused. `callback_port` 0 picks a free port.
pub async fn connect(
    http: &reqwest::Client,
    endpoints: &XOAuthEndpoints,
    consumer: &ConsumerKeys,
    browser: &dyn Browser,
    callback_port: u16,
    timeout: Duration,
) -> Result<OAuth1Credentials, OAuthError> {
    let listener = CallbackListener::bind(callback_port).await?;
    let (token, secret) = request_token(http, endpoints, consumer, listener.redirect_uri()).await?;
    browser.open(&authorize_url(endpoints, &token)?).map_err(OAuthError::Browser)?;
    // X answers a Cancel with `denied=<request token>`, an approval with `oauth_token=<it>`.
    let ours = token.clone();
    let answer =
        listener.wait(timeout, move |q| q.get("oauth_token").or_else(|| q.get("denied")) == Some(&ours)).await?;
    if answer.contains_key("denied") {
        return Err(OAuthError::Denied);
    }
    let verifier = need(&answer, "oauth_verifier")?;
    access_token(http, endpoints, consumer, &token, &secret, &verifier).await
}
