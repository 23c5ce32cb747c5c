//! The demo generator: realistic synthetic players sent through the real ingest API at a
//! steady rate — click ids per network in realistic shares, a consent mix, emails and phones
//! for some, game launches followed by purchases with values and currencies.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use ts_rs::TS;

/// What the generator has done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct DemoStats {
    pub sent: u64,
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: u64,
    /// Requests the ingest did not answer with 200 (it was down, the token was wrong…).
    pub failed_requests: u64,
    /// The last such failure, in words.
    pub last_error: Option<String>,
    pub elapsed_ms: u64,
}

/// Synthetic players and their events (deterministic for a seed).
pub struct Players {
    rng: fastrand::Rng,
    /// Players who launched and may buy: (id, their identity fields).
    active: Vec<(String, Value)>,
    next: u64,
    run: String,
}

const PRICES: [&str; 6] = ["0.99", "1.99", "4.99", "9.99", "19.99", "49.99"];

impl Players {
    pub fn new(seed: u64) -> Self {
        Self { rng: fastrand::Rng::with_seed(seed), active: Vec::new(), next: 0, run: format!("{seed:x}") }
    }

    fn new_player(&mut self) -> (String, Value) {
        self.next += 1;
        let id = format!("demo-{}-{}", self.run, self.next);
        let r = &mut self.rng;
        // Where the player came from: TikTok 40 %, Reddit 20 %, X 20 %, organic 20 %.
        let mut clicks = serde_json::Map::new();
        match r.u8(0..100) {
            0..=39 => clicks.insert("ttclid".into(), json!(format!("E.C.P.{:016x}", r.u64(..)))),
            40..=59 => clicks.insert("rdt_cid".into(), json!(format!("rdt-{:012x}", r.u64(..)))),
            60..=79 => clicks.insert("twclid".into(), json!(format!("tw{:018x}", r.u64(..)))),
            _ => None,
        };
        // Consent: full 70 %, anonymous 20 %, none 10 %.
        let consent = match r.u8(0..100) {
            0..=69 => "full",
            70..=89 => "anonymous",
            _ => "none",
        };
        let mut identity = json!({"player_id": id, "consent": consent, "click_ids": clicks});
        if r.u8(0..100) < 60 {
            identity["email"] = json!(format!("player{}@example.com", self.next));
        }
        if r.u8(0..100) < 30 {
            identity["phone"] = json!(format!("+1555{:07}", r.u32(0..10_000_000)));
        }
        identity["ip"] = json!(format!("203.0.113.{}", r.u8(1..255)));
        identity["user_agent"] = json!("Mozilla/5.0 (Linux; Android 14) Game/2.1");
        (id, identity)
    }

    /// The next event: a new player's launch, or a purchase of someone who launched.
    pub fn next_event(&mut self, now: chrono::DateTime<chrono::Utc>) -> Value {
        let buy = !self.active.is_empty() && self.rng.u8(0..100) < 35;
        let (name, identity) = if buy {
            let i = self.rng.usize(..self.active.len());
            ("purchase", self.active[i].1.clone())
        } else {
            let player = self.new_player();
            let identity = player.1.clone();
            self.active.push(player);
            if self.active.len() > 500 {
                self.active.remove(0);
            }
            ("game_launch", identity)
        };
        let mut event = identity;
        event["event_id"] = json!(format!("demo-{}-e{}-{:08x}", self.run, self.next, self.rng.u32(..)));
        event["name"] = json!(name);
        event["occurred_at"] = json!(now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        if name == "purchase" {
            let currency = match self.rng.u8(0..10) {
                0..=6 => "USD",
                7..=8 => "EUR",
                _ => "GBP",
            };
            event["value"] = json!(PRICES[self.rng.usize(..PRICES.len())]);
            event["currency"] = json!(currency);
            event["items"] = json!([{"id": "gems_pack", "name": "Gem pack", "quantity": 1}]);
        }
        event
    }
}

/// How fast, how long, and which synthetic players.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DemoPlan {
    /// Events per second (clamped to 0.1–10,000).
    pub rate: f64,
    /// Until stopped when `None`.
    pub duration: Option<Duration>,
    /// The same seed, the same players.
    pub seed: u64,
}

/// Sends events to `url` (`…/v1/events?game=…`) at `rate` per second until `stop` turns true
/// or `duration` passes; batches every 100 ms so the rate holds without a request per event.
pub async fn run(
    http: &reqwest::Client,
    url: &str,
    token: &crate::secrets::Secret,
    plan: DemoPlan,
    mut stop: tokio::sync::watch::Receiver<bool>,
    mut on_stats: impl FnMut(&DemoStats),
) -> DemoStats {
    let DemoPlan { rate, duration, seed } = plan;
    let mut players = Players::new(seed);
    let mut stats = DemoStats::default();
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let rate = rate.clamp(0.1, 10_000.0);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => {}
        }
        let elapsed = started.elapsed();
        if *stop.borrow() || duration.is_some_and(|d| elapsed >= d) {
            break;
        }
        let due = (elapsed.as_secs_f64() * rate) as u64;
        let count = due.saturating_sub(stats.sent).min(1000);
        if count == 0 {
            continue;
        }
        let now = chrono::Utc::now();
        let batch: Vec<Value> = (0..count).map(|_| players.next_event(now)).collect();
        stats.sent += count;
        let answer = http
            .post(url)
            .bearer_auth(token.expose())
            .header("content-type", "application/json")
            .header(super::server::SOURCE_HEADER, "demo")
            .body(serde_json::to_vec(&batch).unwrap_or_default())
            .send()
            .await;
        match answer {
            Ok(response) if response.status().is_success() => {
                let text = response.text().await.unwrap_or_default();
                let doc: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                stats.accepted += doc["accepted"].as_u64().unwrap_or(0);
                stats.duplicates += doc["duplicates"].as_u64().unwrap_or(0);
                stats.rejected += doc["rejected"].as_u64().unwrap_or(0);
            }
            Ok(response) => {
                stats.failed_requests += 1;
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                stats.last_error = Some(format!("HTTP {status}: {}", text.chars().take(200).collect::<String>()));
            }
            Err(e) => {
                stats.failed_requests += 1;
                stats.last_error = Some(format!("no answer from the ingest API: {e}"));
            }
        }
        stats.elapsed_ms = started.elapsed().as_millis() as u64;
        on_stats(&stats);
    }
    stats.elapsed_ms = started.elapsed().as_millis() as u64;
    on_stats(&stats);
    stats
}

/// `20/s`, `20`, `600/m` → events per second.
pub fn parse_rate(raw: &str) -> Result<f64, String> {
    let s = raw.trim();
    let (number, per) = match s.split_once('/') {
        Some((n, unit)) => (n.trim(), unit.trim()),
        None => (s, "s"),
    };
    let n: f64 = number.parse().map_err(|_| format!("'{raw}' is not a rate; write it like 20/s"))?;
    let per_second = match per {
        "s" => n,
        "m" => n / 60.0,
        "h" => n / 3600.0,
        _ => return Err(format!("'{raw}' has no unit /s, /m or /h; write it like 20/s")),
    };
    if !(per_second > 0.0 && per_second <= 10_000.0) {
        return Err(format!("'{raw}' must be above 0 and at most 10000/s"));
    }
    Ok(per_second)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn players_are_realistic_and_valid() {
        let mut players = Players::new(7);
        let now = chrono::Utc::now();
        let events: Vec<Value> = (0..2000).map(|_| players.next_event(now)).collect();
        for e in &events {
            crate::model::ConversionEvent::from_json(e).expect("every demo event is valid");
        }
        let share = |f: &dyn Fn(&Value) -> bool| events.iter().filter(|e| f(e)).count() as f64 / events.len() as f64;
        let purchases = share(&|e| e["name"] == "purchase");
        assert!((0.25..0.45).contains(&purchases), "{purchases}");
        let tiktok = share(&|e| e["click_ids"].get("ttclid").is_some());
        assert!((0.3..0.5).contains(&tiktok), "{tiktok}");
        assert!(share(&|e| e["consent"] == "none") > 0.03);
        assert!(events
            .iter()
            .filter(|e| e["name"] == "purchase")
            .all(|e| e["value"].is_string() && e["currency"].is_string()));
        let ids: std::collections::HashSet<&str> = events.iter().map(|e| e["event_id"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), events.len(), "event ids are unique");
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("20/s"), Ok(20.0));
        assert_eq!(parse_rate("600/m"), Ok(10.0));
        assert_eq!(parse_rate("5"), Ok(5.0));
        for bad in ["", "fast", "0/s", "-1/s", "20/d", "20000/s"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }
}
