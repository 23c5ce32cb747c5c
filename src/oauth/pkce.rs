//! X OAuth 2.0 Authorization Code + PKCE (S256) with the `oauth2` crate, over our reqwest client
//! (which never follows redirects), plus the refresh of 2-hour access tokens.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use oauth2::basic::{BasicClient, BasicErrorResponse, BasicErrorResponseType};
use oauth2::{
    AsyncHttpClient, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    HttpRequest, HttpResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError,
    Scope, TokenResponse, TokenUrl,
};

use super::loopback::CallbackListener;
use super::{Browser, OAuthError, XOAuthEndpoints};
use crate::secrets::{OAuth2Credentials, Secret};

/// The studio's X app for OAuth 2.0: a client id, and a secret for confidential clients.
#[derive(Debug, Clone)]
pub struct OAuth2App {
    pub client_id: String,
    pub client_secret: Option<Secret>,
}

/// Lets the `oauth2` crate send its requests through our reqwest client.
struct Adapter<'a>(&'a reqwest::Client);

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct AdapterError(String);

impl<'c> AsyncHttpClient<'c> for Adapter<'_> {
    type Error = AdapterError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, AdapterError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let response = self
                .0
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await
                .map_err(|e| AdapterError(crate::http_errors::describe(&e)))?;
            let mut builder = http::Response::builder().status(response.status());
            for (name, value) in response.headers() {
                builder = builder.header(name, value);
            }
            let bytes = response.bytes().await.map_err(|e| AdapterError(crate::http_errors::describe(&e)))?;
            builder.body(bytes.to_vec()).map_err(|e| AdapterError(e.to_string()))
        })
    }
}

fn url_error(e: impl std::fmt::Display) -> OAuthError {
    OAuthError::InvalidUrl(e.to_string())
}

fn token_error(e: RequestTokenError<AdapterError, BasicErrorResponse>, refreshing: bool) -> OAuthError {
    match e {
        RequestTokenError::ServerResponse(answer) => {
            let detail = match answer.error_description() {
                Some(d) => format!("{}: {d}", answer.error()),
                None => answer.error().to_string(),
            };
            match answer.error() {
                BasicErrorResponseType::InvalidGrant if refreshing => OAuthError::Revoked(detail),
                BasicErrorResponseType::InvalidGrant => OAuthError::InvalidGrant(detail),
                BasicErrorResponseType::InvalidClient | BasicErrorResponseType::UnauthorizedClient => {
                    OAuthError::InvalidClient(detail)
                }
                _ => OAuthError::Refused(detail),
            }
        }
        RequestTokenError::Request(e) => OAuthError::Unreachable(e.to_string()),
        RequestTokenError::Parse(e, _) => OAuthError::Malformed(e.to_string()),
        RequestTokenError::Other(e) => OAuthError::Malformed(e),
    }
}

/// A client of the token endpoint (code exchange and refresh), with the secret of a confidential app.
fn token_client(
    app: &OAuth2App,
    token_url: &str,
) -> Result<BasicClient<EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>, OAuthError> {
    let client = BasicClient::new(ClientId::new(app.client_id.clone()))
        .set_token_uri(TokenUrl::new(crate::sandbox::resolve(token_url).into_owned()).map_err(url_error)?);
    Ok(match &app.client_secret {
        Some(secret) => client.set_client_secret(ClientSecret::new(secret.expose().to_owned())),
        None => client,
    })
}

/// A started authorisation: the URL to open and what checks the answer.
pub struct Authorization {
    pub url: String,
    pub state: String,
    verifier: Secret,
    redirect_uri: String,
}

/// Step 1: the authorisation URL with a fresh state and S256 code challenge.
pub fn begin(
    endpoints: &XOAuthEndpoints,
    app: &OAuth2App,
    scopes: &[&str],
    redirect_uri: &str,
) -> Result<Authorization, OAuthError> {
    let client = BasicClient::new(ClientId::new(app.client_id.clone()))
        .set_auth_uri(
            AuthUrl::new(crate::sandbox::resolve(&endpoints.oauth2_authorize).into_owned()).map_err(url_error)?,
        )
        .set_redirect_uri(RedirectUrl::new(redirect_uri.to_owned()).map_err(url_error)?);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scopes(scopes.iter().map(|s| Scope::new((*s).to_owned())))
        .set_pkce_challenge(challenge)
        .url();
    Ok(Authorization {
        url: url.into(),
        state: state.secret().clone(),
        verifier: Secret::new(verifier.secret().clone()),
        redirect_uri: redirect_uri.to_owned(),
    })
}

fn credentials(
    app: &OAuth2App,
    token_url: &str,
    token: &impl TokenResponse,
    previous_refresh: Option<&Secret>,
) -> OAuth2Credentials {
    OAuth2Credentials {
        client_id: app.client_id.clone(),
        client_secret: app.client_secret.clone(),
        token_url: token_url.to_owned(),
        access_token: Secret::new(token.access_token().secret().clone()),
        // A server may keep the refresh token unchanged and not repeat it.
        refresh_token: token.refresh_token().map(|r| Secret::new(r.secret().clone())).or(previous_refresh.cloned()),
        expires_at: token.expires_in().map(|d| chrono::Utc::now().timestamp() + d.as_secs() as i64),
    }
}

/// Step 2: checks the browser's answer and trades the code (with the PKCE verifier) for tokens.
pub async fn finish(
    http: &reqwest::Client,
    endpoints: &XOAuthEndpoints,
    app: &OAuth2App,
    authorization: &Authorization,
    answer: &HashMap<String, String>,
) -> Result<OAuth2Credentials, OAuthError> {
    // State first: an error answer for another sign-in must not end this one.
    if answer.get("state") != Some(&authorization.state) {
        return Err(OAuthError::StateMismatch);
    }
    if let Some(error) = answer.get("error") {
        return Err(if error == "access_denied" {
            OAuthError::Denied
        } else {
            OAuthError::Refused(format!("{error} {}", answer.get("error_description").cloned().unwrap_or_default()))
        });
    }
    let code = answer.get("code").filter(|c| !c.is_empty()).ok_or_else(|| OAuthError::Malformed("no code".into()))?;
    let token = token_client(app, &endpoints.oauth2_token)?
        .set_redirect_uri(RedirectUrl::new(authorization.redirect_uri.clone()).map_err(url_error)?)
        .exchange_code(AuthorizationCode::new(code.clone()))
        .set_pkce_verifier(PkceCodeVerifier::new(authorization.verifier.expose().to_owned()))
        .request_async(&Adapter(http))
        .await
        .map_err(|e| token_error(e, false))?;
    Ok(credentials(app, &endpoints.oauth2_token, &token, None))
}

/// The whole flow: listener, browser, answer, token exchange.
pub async fn connect(
    http: &reqwest::Client,
    endpoints: &XOAuthEndpoints,
    app: &OAuth2App,
    scopes: &[&str],
    browser: &dyn Browser,
    callback_port: u16,
    timeout: Duration,
) -> Result<OAuth2Credentials, OAuthError> {
    let listener = CallbackListener::bind(callback_port).await?;
    let authorization = begin(endpoints, app, scopes, listener.redirect_uri())?;
    browser.open(&authorization.url).map_err(OAuthError::Browser)?;
    let state = authorization.state.clone();
    let answer = listener.wait(timeout, move |q| q.get("state") == Some(&state)).await?;
    finish(http, endpoints, app, &authorization, &answer).await
}

/// Renews the access token with the refresh token. A refused refresh token means the user
/// revoked access: [`OAuthError::Revoked`].
pub async fn refresh(http: &reqwest::Client, current: &OAuth2Credentials) -> Result<OAuth2Credentials, OAuthError> {
    let refresh_token = current
        .refresh_token
        .as_ref()
        .ok_or_else(|| OAuthError::Revoked("the token has expired and there is no refresh token".into()))?;
    let app = OAuth2App { client_id: current.client_id.clone(), client_secret: current.client_secret.clone() };
    let token = token_client(&app, &current.token_url)?
        .exchange_refresh_token(&RefreshToken::new(refresh_token.expose().to_owned()))
        .request_async(&Adapter(http))
        .await
        .map_err(|e| token_error(e, true))?;
    Ok(credentials(&app, &current.token_url, &token, Some(refresh_token)))
}
