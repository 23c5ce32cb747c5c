//! Match quality: how well a network can tie forwarded conversions to its users, from the share
//! of conversions carrying each match key. Pure: the counts come from the store's aggregates.
//! The formula and its sources are in docs/CONTRACT.md ("Match quality").

use serde::Serialize;

use crate::model::Network;

/// The identifiers a network matches on (IP and user agent count as one key: sent together).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum MatchKey {
    ClickId,
    Email,
    Phone,
    ExternalId,
    IpAndUserAgent,
}

impl MatchKey {
    pub const ALL: [MatchKey; 5] =
        [MatchKey::ClickId, MatchKey::Email, MatchKey::Phone, MatchKey::ExternalId, MatchKey::IpAndUserAgent];

    /// The key's name as a sentence uses it ("62 % of purchases carry no email").
    fn words(self, network: Network) -> &'static str {
        match (self, network) {
            (MatchKey::ClickId, Network::TikTok) => "click id (ttclid)",
            (MatchKey::ClickId, Network::Reddit) => "click id (rdt_cid)",
            (MatchKey::ClickId, Network::X) => "click id (twclid)",
            (MatchKey::Email, _) => "email",
            (MatchKey::Phone, _) => "phone number",
            (MatchKey::ExternalId, _) => "external id",
            (MatchKey::IpAndUserAgent, _) => "IP address and user agent",
        }
    }

    /// What the game server can do about a missing key.
    fn advice(self) -> &'static str {
        match self {
            MatchKey::ClickId => "pass the click id from the install attribution or the landing URL with each event",
            MatchKey::Email => "send email for players at full consent",
            MatchKey::Phone => "send the phone number (with its country code) for players at full consent",
            MatchKey::ExternalId => "send the player id the game already has as external id",
            MatchKey::IpAndUserAgent => "send the device's IP address and user agent for players at full consent",
        }
    }
}

/// The keys one conversion carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeySet(u8);

impl KeySet {
    pub fn insert(&mut self, key: MatchKey) {
        self.0 |= 1 << key as u8;
    }

    pub fn contains(self, key: MatchKey) -> bool {
        self.0 & (1 << key as u8) != 0
    }

    pub fn iter(self) -> impl Iterator<Item = MatchKey> {
        MatchKey::ALL.into_iter().filter(move |&k| self.contains(k))
    }
}

impl MatchKey {
    /// Its name in the traffic counts and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchKey::ClickId => "click_id",
            MatchKey::Email => "email",
            MatchKey::Phone => "phone",
            MatchKey::ExternalId => "external_id",
            MatchKey::IpAndUserAgent => "ip_and_user_agent",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// How much each key counts for `network` (0: the network takes no such key). Click ids match
/// a conversion to the ad click itself; email and phone match a person across devices; the rest
/// help less. Sources in docs/CONTRACT.md.
pub fn weight(network: Network, key: MatchKey) -> u32 {
    match (network, key) {
        (_, MatchKey::ClickId) => 4,
        (Network::TikTok | Network::X, MatchKey::Email | MatchKey::Phone) => 2,
        (Network::Reddit, MatchKey::Email) => 2,
        (Network::Reddit, MatchKey::Phone) => 1,
        (Network::TikTok, MatchKey::IpAndUserAgent) => 1,
        (Network::Reddit, MatchKey::IpAndUserAgent) => 2,
        (Network::X, MatchKey::IpAndUserAgent) => 1,
        (Network::TikTok | Network::Reddit, MatchKey::ExternalId) => 1,
        (Network::X, MatchKey::ExternalId) => 0,
    }
}

/// Conversions forwarded (or queued) and how many carried each key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyCounts {
    pub conversions: u64,
    pub with_key: std::collections::BTreeMap<MatchKey, u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct KeyShare {
    pub key: MatchKey,
    /// Share of conversions carrying the key, 0–1.
    pub share: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct Quality {
    pub conversions: u64,
    /// 0–10, one decimal; `None` with no conversions.
    pub score: Option<f64>,
    /// The keys the network takes, with their shares.
    pub keys: Vec<KeyShare>,
    /// The one change that would raise the score most, in words.
    pub fix: Option<String>,
}

/// The score over `counts` for `network`, for conversions of `what` ("purchases").
pub fn quality(network: Network, what: &str, counts: &KeyCounts) -> Quality {
    let keys: Vec<KeyShare> = MatchKey::ALL
        .into_iter()
        .filter(|&key| weight(network, key) > 0)
        .map(|key| KeyShare { key, share: share(counts, key) })
        .collect();
    if counts.conversions == 0 {
        return Quality { conversions: 0, score: None, keys, fix: None };
    }
    let total: u32 = keys.iter().map(|k| weight(network, k.key)).sum();
    let weighted: f64 = keys.iter().map(|k| f64::from(weight(network, k.key)) * k.share).sum();
    let score = (100.0 * weighted / f64::from(total)).round() / 10.0;
    // The most to gain: weight × share missing (ties: the order of MatchKey::ALL).
    let gain = |k: &KeyShare| f64::from(weight(network, k.key)) * (1.0 - k.share);
    let best = keys.iter().filter(|k| k.share < 1.0).fold(None::<&KeyShare>, |best, k| match best {
        Some(b) if gain(b) >= gain(k) => Some(b),
        _ => Some(k),
    });
    let fix = best.map(|k| {
        let missing = ((1.0 - k.share) * 100.0).round();
        format!("{missing} % of {what} carry no {}: {}", k.key.words(network), k.key.advice())
    });
    Quality { conversions: counts.conversions, score: Some(score), keys, fix }
}

/// When a conversion's keys were counted: as it was queued (before sending) or as the network
/// accepted it (after).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Queued,
    Delivered,
}

/// The traffic-count kinds one conversion named `name` (goal or event) adds 1 to at `stage`:
/// `match:KEY:NAME` when queued, `match:delivered:KEY:NAME` when accepted (one family, read in
/// one range scan).
pub fn count_kinds(keys: KeySet, name: &str, stage: Stage) -> impl Iterator<Item = String> + '_ {
    let prefix = match stage {
        Stage::Queued => COUNT_PREFIX.to_owned(),
        Stage::Delivered => format!("{COUNT_PREFIX}{DELIVERED}"),
    };
    std::iter::once(format!("{prefix}conversions:{name}"))
        .chain(keys.iter().map(move |k| format!("{prefix}{}:{name}", k.as_str())))
}

/// The prefix of the match-key traffic counts.
pub const COUNT_PREFIX: &str = "match:";
/// After [`COUNT_PREFIX`]: the counts of delivered conversions.
const DELIVERED: &str = "delivered:";

/// Match quality of one config, over all its conversions and per goal (X) or event name: of
/// what was queued (before sending) and of what the network accepted (after).
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct ConfigQuality {
    pub config_id: i64,
    pub network: Network,
    /// Queued conversions.
    pub overall: Quality,
    pub by_name: Vec<NamedQuality>,
    /// Conversions the network accepted.
    pub delivered: Quality,
    pub delivered_by_name: Vec<NamedQuality>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct NamedQuality {
    pub name: String,
    pub quality: Quality,
}

/// Per config, per name: the key counts.
type CountsByName = std::collections::BTreeMap<String, KeyCounts>;

/// Reads the match counts among traffic counts (`(config id, kind, count)`, summed over a
/// range) for the configs given with their networks; other kinds and configs are ignored.
pub fn from_counts<'a>(
    counts: impl IntoIterator<Item = (i64, &'a str, u64)>,
    configs: &[(i64, Network)],
) -> Vec<ConfigQuality> {
    use std::collections::BTreeMap;
    let mut queued: BTreeMap<i64, CountsByName> = BTreeMap::new();
    let mut delivered: BTreeMap<i64, CountsByName> = BTreeMap::new();
    for (config_id, kind, count) in counts {
        let Some(rest) = kind.strip_prefix(COUNT_PREFIX) else { continue };
        let (per, rest) = match rest.strip_prefix(DELIVERED) {
            Some(rest) => (&mut delivered, rest),
            None => (&mut queued, rest),
        };
        let Some((what, name)) = rest.split_once(':') else { continue };
        let key = MatchKey::parse(what);
        if what != "conversions" && key.is_none() {
            continue;
        }
        let slot = per.entry(config_id).or_default().entry(name.to_owned()).or_default();
        match key {
            Some(key) => *slot.with_key.entry(key).or_default() += count,
            None => slot.conversions += count,
        }
    }
    configs
        .iter()
        .map(|&(config_id, network)| {
            let (overall, by_name) = scored(network, queued.remove(&config_id).unwrap_or_default());
            let (delivered, delivered_by_name) = scored(network, delivered.remove(&config_id).unwrap_or_default());
            ConfigQuality { config_id, network, overall, by_name, delivered, delivered_by_name }
        })
        .collect()
}

/// One config's quality over all its names, and per name.
fn scored(network: Network, names: CountsByName) -> (Quality, Vec<NamedQuality>) {
    let mut all = KeyCounts::default();
    for counts in names.values() {
        all.conversions += counts.conversions;
        for (key, n) in &counts.with_key {
            *all.with_key.entry(*key).or_default() += n;
        }
    }
    let by_name = names
        .iter()
        .map(|(name, counts)| NamedQuality { name: name.clone(), quality: quality(network, &plural(name), counts) })
        .collect();
    (quality(network, "conversions", &all), by_name)
}

/// "purchase" → "purchase events" for the fix's sentence (goal keys and event names alike).
fn plural(name: &str) -> String {
    format!("{name} events")
}

fn share(counts: &KeyCounts, key: MatchKey) -> f64 {
    if counts.conversions == 0 {
        return 0.0;
    }
    let with = counts.with_key.get(&key).copied().unwrap_or(0).min(counts.conversions);
    with as f64 / counts.conversions as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(conversions: u64, keys: &[(MatchKey, u64)]) -> KeyCounts {
        KeyCounts { conversions, with_key: keys.iter().copied().collect() }
    }

    #[test]
    fn the_score_is_the_weighted_share_of_keys_out_of_ten() {
        use MatchKey::*;
        // TikTok weights: click 4, email 2, phone 2, external id 1, IP + UA 1 (total 10).
        let all = counts(50, &[(ClickId, 50), (Email, 50), (Phone, 50), (ExternalId, 50), (IpAndUserAgent, 50)]);
        assert_eq!(quality(Network::TikTok, "purchases", &all).score, Some(10.0));
        assert_eq!(quality(Network::TikTok, "purchases", &all).fix, None, "nothing to add");
        // Click 100 %, email 38 %, external id 100 %: (4 + 2·0.38 + 1) / 10 = 0.576 → 5.8.
        let some = counts(100, &[(ClickId, 100), (Email, 38), (ExternalId, 100)]);
        let q = quality(Network::TikTok, "purchases", &some);
        assert_eq!(q.score, Some(5.8));
        // Missing phone (2 × 1.0) beats missing email (2 × 0.62).
        assert_eq!(
            q.fix.as_deref(),
            Some("100 % of purchases carry no phone number: send the phone number (with its country code) for players at full consent")
        );
        let q = quality(Network::TikTok, "purchases", &counts(100, &[(ClickId, 100), (Phone, 100), (Email, 38)]));
        assert_eq!(q.fix.as_deref().map(|f| &f[..31]), Some("62 % of purchases carry no emai"));
    }

    #[test]
    fn x_has_no_external_id_and_no_conversions_means_no_score() {
        let q = quality(Network::X, "launches", &counts(0, &[]));
        assert_eq!((q.score, q.fix), (None, None));
        assert!(q.keys.iter().all(|k| k.key != MatchKey::ExternalId), "{:?}", q.keys);
        // X: click 4, email 2, phone 2, IP + UA 1 (total 9); an external id adds nothing.
        let q = quality(Network::X, "launches", &counts(10, &[(MatchKey::ClickId, 10), (MatchKey::ExternalId, 10)]));
        assert_eq!(q.score, Some(4.4));
    }

    #[test]
    fn counts_written_per_conversion_read_back_per_config_and_name() {
        use MatchKey::*;
        let mut both = KeySet::default();
        both.insert(ClickId);
        both.insert(Email);
        let mut rows: Vec<(i64, String, u64)> = Vec::new();
        let mut add = |config: i64, keys: KeySet, name: &str| {
            for kind in count_kinds(keys, name, Stage::Queued) {
                rows.push((config, kind, 1));
            }
        };
        // Config 1 (TikTok): 4 purchases, 3 with click id + email, 1 with nothing; 1 launch.
        for _ in 0..3 {
            add(1, both, "purchase");
        }
        add(1, KeySet::default(), "purchase");
        add(1, both, "game_launch");
        add(9, both, "purchase"); // a config not asked for
        let rows = rows.iter().map(|(c, k, n)| (*c, k.as_str(), *n)).chain([(1, "queued", 5), (1, "match:bogus:x", 3)]);
        let got = from_counts(rows, &[(1, Network::TikTok), (2, Network::Reddit)]);
        assert_eq!(got.len(), 2);
        let tiktok = &got[0];
        assert_eq!(tiktok.overall.conversions, 5);
        // Click 4/5 and email 4/5: (4·0.8 + 2·0.8) / 10 = 0.48.
        assert_eq!(tiktok.overall.score, Some(4.8));
        let names: Vec<(&str, u64, Option<f64>)> =
            tiktok.by_name.iter().map(|n| (n.name.as_str(), n.quality.conversions, n.quality.score)).collect();
        // Purchases: click 3/4, email 3/4 → (3 + 1.5) / 10; launches: (4 + 2) / 10.
        assert_eq!(names, [("game_launch", 1, Some(6.0)), ("purchase", 4, Some(4.5))]);
        assert_eq!((got[1].overall.conversions, got[1].overall.score), (0, None), "no traffic, no score");
        assert_eq!((tiktok.delivered.conversions, tiktok.delivered.score), (0, None), "nothing delivered yet");
    }

    #[test]
    fn delivered_counts_are_read_apart_from_queued_ones() {
        let mut click = KeySet::default();
        click.insert(MatchKey::ClickId);
        let mut rows: Vec<(i64, String, u64)> = Vec::new();
        rows.extend(count_kinds(click, "purchase", Stage::Queued).map(|k| (1, k, 4)));
        rows.extend(count_kinds(KeySet::default(), "purchase", Stage::Queued).map(|k| (1, k, 6)));
        // Of the 10 queued, the 4 with a click id were accepted, and 1 without.
        rows.extend(count_kinds(click, "purchase", Stage::Delivered).map(|k| (1, k, 4)));
        rows.extend(count_kinds(KeySet::default(), "purchase", Stage::Delivered).map(|k| (1, k, 1)));
        // An event named like the stage marker is still an event name.
        rows.extend(count_kinds(click, "delivered", Stage::Queued).map(|k| (1, k, 2)));
        let got = from_counts(rows.iter().map(|(c, k, n)| (*c, k.as_str(), *n)), &[(1, Network::Reddit)]);
        let q = &got[0];
        assert_eq!(q.overall.conversions, 12);
        assert_eq!(q.overall.keys[0].share, 0.5, "6 of 12 queued carry a click id");
        assert_eq!(q.delivered.conversions, 5);
        assert_eq!(q.delivered.keys[0].share, 0.8, "4 of 5 delivered carry a click id");
        assert_eq!(q.delivered.score, Some(3.2), "Reddit: click 4 of 10 × 0.8");
        let names: Vec<&str> = q.delivered_by_name.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["purchase"]);
    }

    #[test]
    fn counts_above_the_total_do_not_score_above_ten() {
        let q = quality(Network::Reddit, "purchases", &counts(5, &[(MatchKey::ClickId, 9)]));
        assert_eq!(q.keys[0].share, 1.0);
        assert_eq!(q.score, Some(4.0), "Reddit: click 4 of 10");
    }
}
