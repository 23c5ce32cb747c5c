//! X OAuth end to end over loopback: OAuth 1.0a 3-legged and OAuth 2.0 + PKCE against the
//! sandbox's authorisation servers, PKCE against `oauth2-mock-server` (an implementation we did
//! not write), a scripted browser, and every failure path leaving the config untouched.
//! Keychain parts run on the real Secret Service (scripts/with-keyring.sh).

mod browser;
mod common;
use browser::{no_redirects, Choice, ScriptedBrowser};
use common::{keychain_game, KeychainGame};

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use postback::connect::{ConnectError, Connector};
use postback::model::{Goal, Network, PostbackConfig, XConfig};
use postback::oauth::oauth1::{self, ConsumerKeys};
use postback::oauth::pkce::{self, OAuth2App};
use postback::oauth::{loopback::CallbackListener, Browser, OAuthError, XOAuthEndpoints, X_OAUTH2_SCOPES};
use postback::sandbox::oauth::{X_CLIENT_ID, X_CONSUMER_KEY, X_CONSUMER_SECRET};
use postback::sandbox::{self, RunningSandbox};
use postback::secrets::{Keychain, SecretStore, StoredCredential};
use serde_json::json;

async fn sandbox() -> RunningSandbox {
    sandbox::start(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap()
}

fn consumer() -> ConsumerKeys {
    ConsumerKeys { key: X_CONSUMER_KEY.into(), secret: X_CONSUMER_SECRET.into() }
}

fn app() -> OAuth2App {
    OAuth2App { client_id: X_CLIENT_ID.into(), client_secret: None }
}

const WAIT: Duration = Duration::from_secs(10);

/// Only foreign answers come: the flow waits them out, so keep that wait short.
fn wait_for(choice: Choice) -> Duration {
    if choice == Choice::ForeignState {
        Duration::from_millis(800)
    } else {
        WAIT
    }
}

async fn oauth1_connect(
    sb: &RunningSandbox,
    choice: Choice,
) -> Result<postback::secrets::OAuth1Credentials, OAuthError> {
    let endpoints = XOAuthEndpoints::for_base(Some(&sb.base_url));
    let browser = ScriptedBrowser::new(choice);
    oauth1::connect(&no_redirects(), &endpoints, &consumer(), &browser, 0, wait_for(choice)).await
}

async fn oauth2_connect(
    sb: &RunningSandbox,
    choice: Choice,
) -> Result<postback::secrets::OAuth2Credentials, OAuthError> {
    let endpoints = XOAuthEndpoints::for_base(Some(&sb.base_url));
    let browser = ScriptedBrowser::new(choice);
    pkce::connect(&no_redirects(), &endpoints, &app(), &X_OAUTH2_SCOPES, &browser, 0, wait_for(choice)).await
}

#[tokio::test]
async fn oauth1_failures_are_named() {
    let sb = sandbox().await;
    assert_eq!(oauth1_connect(&sb, Choice::Deny).await.unwrap_err(), OAuthError::Denied);
    assert_eq!(oauth1_connect(&sb, Choice::Approve).await.map(|_| ()), Ok(()));
    assert_eq!(oauth1_connect(&sb, Choice::ForeignState).await.unwrap_err(), OAuthError::StateMismatch);
    // A forged callback from another local process does not end the sign-in.
    assert!(oauth1_connect(&sb, Choice::ForgedThenApprove).await.is_ok());
    let endpoints = XOAuthEndpoints::for_base(Some(&sb.base_url));
    let closed = oauth1::connect(
        &no_redirects(),
        &endpoints,
        &consumer(),
        &ScriptedBrowser::new(Choice::Close),
        0,
        Duration::from_millis(300),
    )
    .await;
    assert!(matches!(closed.unwrap_err(), OAuthError::TimedOut(_)));
    let wrong_app = ConsumerKeys { key: X_CONSUMER_KEY.into(), secret: "not-the-secret".into() };
    let err = oauth1::connect(&no_redirects(), &endpoints, &wrong_app, &ScriptedBrowser::new(Choice::Approve), 0, WAIT)
        .await
        .unwrap_err();
    assert!(matches!(err, OAuthError::InvalidClient(_)), "{err:?}");
}

#[tokio::test]
async fn oauth2_failures_are_named_and_codes_are_single_use() {
    let sb = sandbox().await;
    assert_eq!(oauth2_connect(&sb, Choice::Deny).await.unwrap_err(), OAuthError::Denied);
    assert_eq!(oauth2_connect(&sb, Choice::ForeignState).await.unwrap_err(), OAuthError::StateMismatch);
    assert!(oauth2_connect(&sb, Choice::ForgedThenApprove).await.is_ok());

    // Replayed code: the first exchange succeeds, the same answer again is refused.
    let endpoints = XOAuthEndpoints::for_base(Some(&sb.base_url));
    let listener = CallbackListener::bind(0).await.unwrap();
    let authorization = pkce::begin(&endpoints, &app(), &X_OAUTH2_SCOPES, listener.redirect_uri()).unwrap();
    let browser = ScriptedBrowser::new(Choice::Approve);
    browser.open(&authorization.url).unwrap();
    let answer: HashMap<String, String> = listener.wait(WAIT, |_| true).await.unwrap();
    let http = no_redirects();
    // The code with another authorisation's PKCE verifier is refused (S256 checked).
    let listener_b = CallbackListener::bind(0).await.unwrap();
    let other = pkce::begin(&endpoints, &app(), &X_OAUTH2_SCOPES, listener_b.redirect_uri()).unwrap();
    let mut crossed = answer.clone();
    crossed.insert("state".into(), other.state.clone());
    let err = pkce::finish(&http, &endpoints, &app(), &other, &crossed).await.unwrap_err();
    assert!(matches!(err, OAuthError::InvalidGrant(_)), "{err:?}");
    // That refusal spent the code (single use), like a replay after a success.
    let replay = pkce::finish(&http, &endpoints, &app(), &authorization, &answer).await.unwrap_err();
    assert!(matches!(replay, OAuthError::InvalidGrant(_)), "{replay:?}");
    let authorization = {
        let listener = CallbackListener::bind(0).await.unwrap();
        let authorization = pkce::begin(&endpoints, &app(), &X_OAUTH2_SCOPES, listener.redirect_uri()).unwrap();
        ScriptedBrowser::new(Choice::Approve).open(&authorization.url).unwrap();
        let answer = listener.wait(WAIT, |_| true).await.unwrap();
        pkce::finish(&http, &endpoints, &app(), &authorization, &answer).await.expect("first use");
        (authorization, answer)
    };
    let replay = pkce::finish(&http, &endpoints, &app(), &authorization.0, &authorization.1).await.unwrap_err();
    assert!(matches!(replay, OAuthError::InvalidGrant(_)), "{replay:?}");

    // A revoked refresh token: the user removed the app on X.
    let creds = oauth2_connect(&sb, Choice::Approve).await.unwrap();
    sb.state.oauth.revoke(creds.refresh_token.as_ref().unwrap().expose());
    let err = pkce::refresh(&http, &creds).await.unwrap_err();
    assert!(matches!(err, OAuthError::Revoked(_)), "{err:?}");
}

/// A process we must not leave behind.
struct NodeServer(Child);

impl Drop for NodeServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_oauth2_mock_server() -> (NodeServer, u16) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/ui/tests/oauth2-mock-server.mjs");
    let mut child = Command::new("node")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node must be installed (scripts/setup.sh) with ui/node_modules (npm ci)");
    let stdout = child.stdout.take().unwrap();
    let server = NodeServer(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let port = line
        .trim()
        .strip_prefix("port=")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("oauth2-mock-server did not start ({line:?}); run npm ci in ui/"));
    (server, port)
}

#[tokio::test]
async fn pkce_against_oauth2_mock_server() {
    let (_server, port) = start_oauth2_mock_server();
    let base = format!("http://127.0.0.1:{port}");
    let endpoints = XOAuthEndpoints {
        oauth2_authorize: format!("{base}/authorize"),
        oauth2_token: format!("{base}/token"),
        ..XOAuthEndpoints::for_base(Some(&base))
    };
    let app = OAuth2App { client_id: "postback-desk-test".into(), client_secret: None };
    let browser = ScriptedBrowser::new(Choice::Approve);
    let http = no_redirects();
    let creds = pkce::connect(&http, &endpoints, &app, &X_OAUTH2_SCOPES, &browser, 0, WAIT).await.unwrap();
    // The authorisation request carried an S256 challenge and our state.
    let callback = browser.callbacks.lock().unwrap()[0].clone();
    assert!(callback.contains("code=") && callback.contains("state="), "{callback}");
    assert!(!creds.access_token.is_empty());
    let expires_in = creds.expires_at.unwrap() - chrono::Utc::now().timestamp();
    assert!((3500..=3600).contains(&expires_in), "{expires_in}");
    let renewed = pkce::refresh(&http, &creds).await.unwrap();
    assert!(!renewed.access_token.is_empty() && renewed.refresh_token.is_some());
    assert_ne!(renewed.refresh_token, creds.refresh_token, "the server issued a new refresh token");

    // The authorisation request carries an S256 challenge, our state and the X scopes.
    let listener = CallbackListener::bind(0).await.unwrap();
    let authorization = pkce::begin(&endpoints, &app, &X_OAUTH2_SCOPES, listener.redirect_uri()).unwrap();
    let url = authorization.url.clone();
    let query: HashMap<String, String> = reqwest::Url::parse(&url).unwrap().query_pairs().into_owned().collect();
    assert_eq!(query.get("code_challenge_method").map(String::as_str), Some("S256"));
    assert_eq!(query.get("code_challenge").map(String::len), Some(43), "base64url SHA-256");
    assert_eq!(query.get("scope").map(String::as_str), Some("ads_management offline.access"));
}

/// Saves the X config for the sandbox pixel and maps a goal to a Single Event Tag, as the Goals
/// page does. Returns the config id and its keychain reference.
async fn save_with_goal(
    rig: &KeychainGame,
    sb: &RunningSandbox,
    credential: StoredCredential,
) -> (postback::connect::Saved, String) {
    let saved = rig.connector.save_x(rig.game_id, "sbx01", Some(sb.base_url.clone()), credential).await.unwrap();
    let mut config = rig.store.config(saved.config_id).await.unwrap();
    let reference = config.credential_ref.clone().unwrap();
    if let PostbackConfig::X(x) = &mut config.config {
        x.goals = vec![Goal::mapped("buy", "Purchase", "purchase", "tw-sbx01-buy01")];
    }
    rig.store.update_config(saved.config_id, &config.config, &reference).await.unwrap();
    (saved, reference)
}

#[tokio::test]
async fn oauth1_connect_save_deliver_signed_and_reconnect_keeps_goals() {
    let sb = sandbox().await;
    let rig = keychain_game("X Game").await;
    let KeychainGame { store, game_id, keychain, connector, .. } = &rig;
    let game_id = *game_id;

    let tokens = oauth1_connect(&sb, Choice::Approve).await.unwrap();
    let (saved, first_ref) = save_with_goal(&rig, &sb, StoredCredential::XOAuth1(tokens.clone())).await;
    assert!(saved.validation.message.contains("ACCOUNT_ADMIN"), "{}", saved.validation.message);

    // Delivery signs every request with OAuth 1.0a; the sandbox verifies the HMAC-SHA1.
    let report = rig.deliver_purchase("x-1", json!({"twclid": "tw"})).await;
    assert_eq!((report.success, report.failed), (1, 0));
    assert_eq!(sb.state.stats()[&Network::X].accepted, 1);

    // Reconnect: new tokens, same config id and goal mappings, old keychain entry gone.
    let again = oauth1_connect(&sb, Choice::Approve).await.unwrap();
    assert_ne!(again.token, tokens.token);
    let reconnected =
        connector.save_x(game_id, "sbx01", Some(sb.base_url.clone()), StoredCredential::XOAuth1(again)).await.unwrap();
    assert_eq!(reconnected.config_id, saved.config_id);
    let after = store.config(saved.config_id).await.unwrap();
    match &after.config {
        PostbackConfig::X(XConfig { goals, .. }) => {
            assert_eq!(goals.iter().filter_map(|g| g.event_tag.as_deref()).collect::<Vec<_>>(), ["tw-sbx01-buy01"])
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(keychain.get(&first_ref).unwrap(), None);

    // The user revokes the app on X: validation says so and nothing changes; delivery pauses.
    sb.state.oauth.revoke(&oauth1_token(keychain, after.credential_ref.as_deref().unwrap()));
    let revoked = oauth1_connect(&sb, Choice::Approve).await.unwrap();
    sb.state.oauth.revoke(&revoked.token);
    let err = connector
        .save_x(game_id, "sbx01", Some(sb.base_url.clone()), StoredCredential::XOAuth1(revoked))
        .await
        .unwrap_err();
    match err {
        ConnectError::Refused { field, message } => {
            assert_eq!(field, "connection");
            assert!(message.contains("reconnect X"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(store.config(saved.config_id).await.unwrap().credential_ref, after.credential_ref);
    let report = rig.deliver_purchase("x-2", json!({"twclid": "tw"})).await;
    assert_eq!(report.success, 0);
    assert!(store.config(saved.config_id).await.unwrap().paused_reason.is_some());
    // The held conversion is not dropped silently: disconnecting asks first.
    let refused = connector.disconnect(saved.config_id, false).await.unwrap_err();
    assert!(matches!(refused, postback::connect::ConnectError::QueuedEvents { count: 1, .. }), "{refused:?}");
    assert!(refused.to_string().contains("1 conversions for X Ads"), "{refused}");
    assert!(store.config(saved.config_id).await.is_ok(), "nothing removed");
    connector.disconnect(saved.config_id, true).await.unwrap();
}

fn oauth1_token(keychain: &Keychain, reference: &str) -> String {
    let value = keychain.get(reference).unwrap().unwrap();
    match StoredCredential::from_keychain_value(reference, &value).unwrap() {
        StoredCredential::XOAuth1(c) => c.token,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn oauth2_tokens_are_refreshed_before_expiry_and_written_back_to_the_keychain() {
    let sb = sandbox().await;
    // Tokens that live 60 s are inside the refresh margin from the start.
    sb.state.oauth.set_access_token_lifetime(60);
    let rig = keychain_game("X Game").await;
    let KeychainGame { keychain, connector, .. } = &rig;

    let tokens = oauth2_connect(&sb, Choice::Approve).await.unwrap();
    let (saved, reference) = save_with_goal(&rig, &sb, StoredCredential::XOAuth2(tokens.clone())).await;

    let report = rig.deliver_purchase("x2-1", json!({"twclid": "tw"})).await;
    assert_eq!((report.success, report.failed), (1, 0));
    let stored =
        StoredCredential::from_keychain_value(&reference, &keychain.get(&reference).unwrap().unwrap()).unwrap();
    let StoredCredential::XOAuth2(renewed) = stored else { panic!("{stored:?}") };
    assert_ne!(renewed.access_token, tokens.access_token, "the refreshed token is in the keychain");
    assert_ne!(renewed.refresh_token, tokens.refresh_token, "and the rotated refresh token");
    // The old refresh token is spent: only the stored one can renew again.
    assert!(pkce::refresh(&no_redirects(), &tokens).await.is_err());
    let report = rig.deliver_purchase("x2-2", json!({"twclid": "tw"})).await;
    assert_eq!(report.success, 1);
    connector.disconnect(saved.config_id, false).await.unwrap();
}

#[tokio::test]
async fn a_waiting_connect_x_can_be_cancelled() {
    let sb = sandbox().await;
    let mut rig = keychain_game("X Game").await;
    rig.connector = Connector::new(rig.store.clone(), rig.credentials.clone()).with_sandbox_url(&sb.base_url);
    let method = postback::connect::XAuthMethod::OAuth1 {
        consumer_key: X_CONSUMER_KEY.into(),
        consumer_secret: X_CONSUMER_SECRET.into(),
    };
    // The browser is opened but the user never answers.
    let silent = ScriptedBrowser::new(Choice::Close);
    let waiting = rig.connector.authorize_x(rig.game_id, &method, true, &silent, WAIT);
    let cancel = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        rig.connector.cancel_x();
    };
    let (result, ()) = tokio::join!(waiting, cancel);
    match result {
        Err(ConnectError::OAuth(OAuthError::Cancelled)) => {}
        other => panic!("expected a cancelled sign-in, got {other:?}"),
    }
    assert!(rig.store.configs(rig.game_id).await.unwrap().is_empty(), "nothing saved");
    // The sign-in can start again right away, and completes.
    let handle = rig
        .connector
        .authorize_x(rig.game_id, &method, true, &ScriptedBrowser::new(Choice::Approve), WAIT)
        .await
        .expect("approved");
    let saved = rig.connector.finish_x(rig.game_id, &handle, "sbx01").await.expect("saved");
    assert!(rig.connector.finish_x(rig.game_id, &handle, "sbx01").await.is_err(), "a handle is used once");
    rig.connector.disconnect(saved.config_id, false).await.unwrap();
}
