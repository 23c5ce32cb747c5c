//! Diagnostics of one config over a time range, computed from data (the set-up, what arrived,
//! what was queued or skipped and why, what the network answered): each item says what to do.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::model::{ConfigSummary, Health, IntegrationStatus, LogTotals, Network, SetupGap};
use crate::store::TrafficCount;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Ok,
    Warning,
    Problem,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct DiagnosticItem {
    pub level: Level,
    pub title: String,
    pub detail: String,
    /// What to do next, when something is to be done.
    pub action: Option<String>,
}

/// What the diagnostics read, gathered by the caller.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub summary: &'a ConfigSummary,
    /// The game's traffic over the range (all sources and configs).
    pub traffic: &'a [TrafficCount],
    /// The config's attempts over the range.
    pub totals: &'a LogTotals,
    /// Epoch ms of the config's last success, ever.
    pub last_success_ms: Option<i64>,
    /// How the range reads in words ("the last 24 hours").
    pub range: &'a str,
}

fn skip_advice(reason: &str, network: Network) -> (&'static str, String) {
    let name = network.display_name();
    match reason {
        "no_identifier" => (
            "lacked the identifier it needs",
            match network {
                Network::TikTok => {
                    "Have the game capture the ttclid of TikTok ad clicks and send it in click_ids.ttclid.".into()
                }
                Network::Reddit => {
                    "Send the rdt_cid of Reddit ad clicks, or the player's email at full consent.".into()
                }
                Network::X => "Send the twclid of X ad clicks, or the player's email or phone at full consent.".into(),
            },
        ),
        "consent_none" => {
            ("had no consent (consent: none)", "Nothing to fix: players who refuse consent are never forwarded.".into())
        }
        "event_not_triggered" => (
            "are not among what this config forwards",
            match network {
                Network::X => "Check the goals' rules and value filters on the Goals page.".into(),
                _ => format!("Add the event to {name}'s trigger events on the Integrations page if it should count."),
            },
        ),
        "no_mapped_goal" => {
            ("matched no mapped goal", "Create a goal for the event and map it to an X event tag.".into())
        }
        "player_erased" => ("belonged to erased players", "Nothing to fix: erased players are never forwarded.".into()),
        "already_converted" => (
            "were repeat conversions of once-per-player goals",
            "Nothing to fix: such goals count each player once.".into(),
        ),
        _ => ("were not forwarded", "See the import report.".into()),
    }
}

/// The diagnostics, most important first.
pub fn diagnose(facts: &Facts) -> Vec<DiagnosticItem> {
    let s = facts.summary;
    let name = s.display_name.as_str();
    let mut items = Vec::new();
    let item =
        |level, title: String, detail: String, action: Option<String>| DiagnosticItem { level, title, detail, action };
    if s.config_id.is_none() {
        items.push(item(
            Level::Problem,
            format!("{name} is not connected"),
            "No config: nothing is sent.".into(),
            Some("Connect it on the Integrations page.".into()),
        ));
        return items;
    }
    if !s.enabled {
        items.push(item(
            Level::Warning,
            format!("{name} is disabled"),
            "New events are not queued for it; queued ones wait.".into(),
            Some("Enable it on the Integrations page.".into()),
        ));
    }
    if s.status == IntegrationStatus::Paused || s.health == Health::CredentialFailures {
        items.push(item(
            Level::Problem,
            "Credential failures".into(),
            s.paused_reason.clone().unwrap_or_else(|| format!("{name} refused the credentials recently.")),
            Some(if s.network == Network::X {
                "Reconnect X on the Integrations page.".into()
            } else {
                "Rotate the credentials on the Integrations page.".into()
            }),
        ));
    }
    if let Some(since) = s.offline_since {
        items.push(item(
            Level::Warning,
            "Offline — waiting for the network".into(),
            format!(
                "No answer since {} ({}).",
                crate::watch::format_time(since),
                s.offline_reason.as_deref().unwrap_or("no answer")
            ),
            Some("Check the connection; events wait and go out when the network answers.".into()),
        ));
    }
    for gap in &s.gaps {
        let (title, action) = match gap {
            SetupGap::NoTriggerEvents => ("No trigger events", "Choose trigger events on the Integrations page."),
            SetupGap::NoGoals => ("No active goal", "Create a goal on the Goals page."),
            SetupGap::NoMappedGoals => {
                ("No goal mapped to an X event tag", "Map goals on the Integrations page (X → Event tags).")
            }
        };
        items.push(item(
            Level::Problem,
            title.into(),
            format!("{name} receives nothing until this is set up."),
            Some(action.into()),
        ));
    }
    if s.network == Network::X && !s.unmapped_goals.is_empty() && !s.gaps.contains(&SetupGap::NoMappedGoals) {
        items.push(item(
            Level::Warning,
            "Goals not sent to X".into(),
            format!(
                "{} {} no event tag.",
                s.unmapped_goals.join(", "),
                if s.unmapped_goals.len() == 1 { "has" } else { "have" }
            ),
            Some("Map them on the Integrations page if X should receive them.".into()),
        ));
    }
    if s.gaps.is_empty() && s.network != Network::X {
        items.push(item(
            Level::Ok,
            "Trigger events".into(),
            format!("Forwards {}.", s.trigger_events.join(", ")),
            None,
        ));
    }

    let config_id = s.config_id.unwrap_or_default();
    let arrived: u64 = facts.traffic.iter().filter(|t| t.kind == "arrived").map(|t| t.count).sum();
    let queued: u64 =
        facts.traffic.iter().filter(|t| t.config_id == config_id && t.kind == "queued").map(|t| t.count).sum();
    if arrived == 0 {
        items.push(item(
            Level::Warning,
            "No events arrived".into(),
            format!("No source sent this game any event in {}.", facts.range),
            Some("Check that the game server posts to the ingest API (Sources page), or import a file.".into()),
        ));
    } else {
        items.push(item(
            Level::Ok,
            "Events arrive".into(),
            format!("{arrived} events arrived in {}; {queued} conversions were queued for {name}.", facts.range),
            None,
        ));
    }
    let mut skipped: Vec<(&str, u64)> = Vec::new();
    for t in facts.traffic.iter().filter(|t| t.config_id == config_id) {
        if let Some(reason) = t.kind.strip_prefix("skipped:") {
            match skipped.iter_mut().find(|(r, _)| *r == reason) {
                Some((_, n)) => *n += t.count,
                None => skipped.push((reason, t.count)),
            }
        }
    }
    skipped.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    for (reason, n) in skipped {
        let (what, action) = skip_advice(reason, s.network);
        let level = if matches!(reason, "consent_none" | "player_erased" | "already_converted") {
            Level::Ok
        } else {
            Level::Warning
        };
        items.push(item(level, format!("{n} not forwarded: {reason}"), format!("{n} events {what}."), Some(action)));
    }
    let t = facts.totals;
    if t.failed + t.given_up > 0 {
        items.push(item(
            Level::Warning,
            format!("{} failed", t.failed + t.given_up),
            format!("{} refused, {} given up after errors in {}.", t.failed, t.given_up, facts.range),
            Some("Open a Failed row to see the network's answer and what to fix, then replay.".into()),
        ));
    }
    match facts.last_success_ms {
        Some(at) => items.push(item(Level::Ok, "Last success".into(), crate::watch::format_time(at), None)),
        None => items.push(item(
            Level::Warning,
            "Never delivered".into(),
            format!("{name} has not accepted any conversion yet."),
            Some("Send a test event (Sandbox page) or import one, then watch the log.".into()),
        )),
    }
    items.sort_by_key(|i| match i.level {
        Level::Problem => 0,
        Level::Warning => 1,
        Level::Ok => 2,
    });
    items
}
