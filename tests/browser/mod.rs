//! A scripted user in the browser for X's sign-in against the sandbox (shared by the test
//! crates that connect X).

#![allow(dead_code)] // each test crate uses its own part

use std::sync::{Arc, Mutex};
use std::time::Duration;

use postback::oauth::Browser;

#[derive(Clone, Copy, PartialEq)]
pub enum Choice {
    Approve,
    Deny,
    /// The tab is closed: nothing comes back.
    Close,
    /// Comes back with a `state` / `oauth_token` that is not ours.
    ForeignState,
    /// Another local process delivers a forged callback first; then the user approves.
    ForgedThenApprove,
}

/// Plays the user in the browser: loads the authorisation URL, clicks Approve or Cancel on the
/// consent page (or follows an immediate redirect), and delivers the callback.
pub struct ScriptedBrowser {
    pub choice: Choice,
    pub callbacks: Arc<Mutex<Vec<String>>>,
}

impl ScriptedBrowser {
    pub fn new(choice: Choice) -> Self {
        ScriptedBrowser { choice, callbacks: Arc::default() }
    }
}

/// The engine's client: no redirects followed, like a browser step we script ourselves.
pub fn no_redirects() -> reqwest::Client {
    postback::delivery::http_client(Duration::from_secs(10)).expect("HTTP client")
}

async fn drive(url: String, choice: Choice, callbacks: Arc<Mutex<Vec<String>>>) {
    let http = no_redirects();
    let page = http.get(&url).send().await.unwrap();
    let mut target = if let Some(location) = page.headers().get("location") {
        location.to_str().unwrap().to_owned()
    } else {
        let html = page.text().await.unwrap();
        let id = if choice == Choice::Deny { "id=\"deny\" href=\"" } else { "id=\"approve\" href=\"" };
        let start = html.find(id).expect("a consent page") + id.len();
        let href = &html[start..start + html[start..].find('"').unwrap()];
        let link = reqwest::Url::parse(&url).unwrap().join(href).unwrap();
        let decided = http.get(link).send().await.unwrap();
        decided.headers()["location"].to_str().unwrap().to_owned()
    };
    if matches!(choice, Choice::ForeignState | Choice::ForgedThenApprove) {
        let genuine = target.clone();
        let mut u = reqwest::Url::parse(&target).unwrap();
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let forged = k == "state" || k == "oauth_token";
                (k.into_owned(), if forged { "someone-elses".to_owned() } else { v.into_owned() })
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
        target = u.into();
        if choice == Choice::ForgedThenApprove {
            let _ = http.get(&target).send().await;
            target = genuine;
        }
    }
    callbacks.lock().unwrap().push(target.clone());
    let _ = http.get(&target).send().await;
}

impl Browser for ScriptedBrowser {
    fn open(&self, url: &str) -> Result<(), String> {
        if self.choice != Choice::Close {
            tokio::spawn(drive(url.to_owned(), self.choice, self.callbacks.clone()));
        }
        Ok(())
    }
}
