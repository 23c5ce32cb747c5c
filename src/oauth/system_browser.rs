//! Opens URLs in the user's browser. `$BROWSER` wins when set (the usual convention; tests set
//! it to a scripted browser), else the platform opener.

use std::process::{Command, Stdio};

use super::Browser;

pub struct SystemBrowser;

fn opener() -> (String, Vec<String>) {
    if let Some(browser) = std::env::var("BROWSER").ok().filter(|b| !b.trim().is_empty()) {
        let mut parts = browser.split_whitespace().map(str::to_owned);
        let program = parts.next().unwrap_or_default();
        return (program, parts.collect());
    }
    if cfg!(target_os = "macos") {
        ("open".into(), Vec::new())
    } else if cfg!(target_os = "windows") {
        ("rundll32".into(), vec!["url.dll,FileProtocolHandler".into()])
    } else {
        ("xdg-open".into(), Vec::new())
    }
}

impl Browser for SystemBrowser {
    fn open(&self, url: &str) -> Result<(), String> {
        let (program, args) = opener();
        Command::new(&program)
            .args(args)
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map(|mut child| {
                // Reap the opener when it exits; it usually hands off to a running browser.
                std::thread::spawn(move || child.wait());
            })
            .map_err(|e| format!("{program}: {e}"))
    }
}
