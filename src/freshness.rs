//! Freshness: how long conversions took from the player's event (`occurred_at`) to the
//! network's acceptance. Each delivered conversion adds 1 to an hourly histogram bucket among
//! the traffic counts (`fresh:BOUND`), so a range's p50 and p95 read hourly rows, never the log.
//! Conversions that went too old to send count as `expired:REASON`. Pure.

use serde::Serialize;

/// Upper bounds of the delay buckets, in seconds (1-2-5 steps to an hour, then hours and days).
/// A delay falls in the first bucket whose bound exceeds it; beyond the last: `fresh:over`.
pub const BOUNDS_SECS: [i64; 21] = [
    1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1_200, 1_800, 3_600, 7_200, 10_800, 21_600, 43_200, 86_400, 172_800,
    259_200, 604_800,
];

/// The prefixes of the delay and expired traffic counts.
pub const FRESH: &str = "fresh:";
pub const EXPIRED: &str = "expired:";
const OVER: &str = "over";

/// The traffic-count kind of one conversion accepted `delay_ms` after its event.
pub fn fresh_kind(delay_ms: i64) -> String {
    let secs = delay_ms.max(0) / 1000;
    match BOUNDS_SECS.iter().find(|&&bound| secs < bound) {
        Some(bound) => format!("{FRESH}{bound}"),
        None => format!("{FRESH}{OVER}"),
    }
}

/// The traffic-count kind of one conversion not sent because it was too old (`reason`: a word).
pub fn expired_kind(reason: &str) -> String {
    format!("{EXPIRED}{reason}")
}

/// Delays of one config's delivered conversions over a range, and its expired ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
pub struct Freshness {
    pub config_id: i64,
    pub delivered: u64,
    /// Half of the conversions were accepted within this many seconds (a bucket's bound);
    /// `None` with none delivered or when it is beyond the last bound (7 days).
    pub p50_within_secs: Option<i64>,
    pub p95_within_secs: Option<i64>,
    /// Conversions not sent because they were too old for the network, by reason.
    pub expired: Vec<(String, u64)>,
}

/// Reads the freshness counts among traffic counts (`(config id, kind, count)`, summed over a
/// range) for `configs`; other kinds and configs are ignored.
pub fn from_counts<'a>(counts: impl IntoIterator<Item = (i64, &'a str, u64)>, configs: &[i64]) -> Vec<Freshness> {
    use std::collections::BTreeMap;
    // Per config: bucket index (BOUNDS_SECS.len() for "over") → count; expired by reason.
    let mut buckets: BTreeMap<i64, BTreeMap<usize, u64>> = BTreeMap::new();
    let mut expired: BTreeMap<i64, BTreeMap<String, u64>> = BTreeMap::new();
    for (config_id, kind, count) in counts {
        if let Some(bound) = kind.strip_prefix(FRESH) {
            let index = match bound {
                OVER => Some(BOUNDS_SECS.len()),
                _ => bound.parse::<i64>().ok().and_then(|b| BOUNDS_SECS.iter().position(|&x| x == b)),
            };
            if let Some(index) = index {
                *buckets.entry(config_id).or_default().entry(index).or_default() += count;
            }
        } else if let Some(reason) = kind.strip_prefix(EXPIRED) {
            *expired.entry(config_id).or_default().entry(reason.to_owned()).or_default() += count;
        }
    }
    configs
        .iter()
        .map(|&config_id| {
            let histogram = buckets.remove(&config_id).unwrap_or_default();
            let delivered = histogram.values().sum();
            Freshness {
                config_id,
                delivered,
                p50_within_secs: quantile(&histogram, delivered, 50),
                p95_within_secs: quantile(&histogram, delivered, 95),
                expired: expired.remove(&config_id).unwrap_or_default().into_iter().collect(),
            }
        })
        .collect()
}

/// The bound of the first bucket by which `percent` % of `total` were accepted.
fn quantile(histogram: &std::collections::BTreeMap<usize, u64>, total: u64, percent: u64) -> Option<i64> {
    if total == 0 {
        return None;
    }
    // The rank of the conversion at the quantile (1-based, rounded up): 95 % of 20 is the 19th.
    let rank = (total * percent).div_ceil(100).max(1);
    let mut seen = 0;
    for (&index, &count) in histogram {
        seen += count;
        if seen >= rank {
            return BOUNDS_SECS.get(index).copied();
        }
    }
    None
}

/// A delay bound in words: "1 min", "2 h", "3 d".
pub fn words(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 3_600 => format!("{} min", s / 60),
        s if s < 86_400 => format!("{} h", s / 3_600),
        s => format!("{} d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_fall_in_the_first_bucket_whose_bound_exceeds_them() {
        assert_eq!(fresh_kind(0), "fresh:1");
        assert_eq!(fresh_kind(999), "fresh:1");
        assert_eq!(fresh_kind(1_000), "fresh:2");
        assert_eq!(fresh_kind(59_999), "fresh:60");
        assert_eq!(fresh_kind(60_000), "fresh:120");
        assert_eq!(fresh_kind(-5_000), "fresh:1", "a clock ahead of the event's is no negative delay");
        assert_eq!(fresh_kind(604_800_000), "fresh:over");
    }

    #[test]
    fn p50_and_p95_are_the_bounds_the_ranks_fall_in() {
        let mut rows: Vec<(i64, String, u64)> = vec![
            (1, fresh_kind(500), 10),           // < 1 s
            (1, fresh_kind(45_000), 8),         // < 60 s
            (1, fresh_kind(2 * 3_600_000), 1),  // < 3 h
            (1, fresh_kind(9 * 86_400_000), 1), // over 7 d
            (1, expired_kind("too_old"), 3),
            (2, fresh_kind(10), 4),
            (1, "queued".into(), 99),
            (1, "fresh:17".into(), 5), // not a bound: ignored
        ];
        rows.push((3, fresh_kind(10), 1)); // a config not asked for
        let got = from_counts(rows.iter().map(|(c, k, n)| (*c, k.as_str(), *n)), &[1, 2, 4]);
        // 20 delivered: the 10th is in "< 1 s", the 19th in "< 3 h".
        assert_eq!(
            got[0],
            Freshness {
                config_id: 1,
                delivered: 20,
                p50_within_secs: Some(1),
                p95_within_secs: Some(10_800),
                expired: vec![("too_old".into(), 3)],
            }
        );
        assert_eq!((got[1].delivered, got[1].p50_within_secs, got[1].p95_within_secs), (4, Some(1), Some(1)));
        assert_eq!((got[2].delivered, got[2].p50_within_secs), (0, None));
        // Beyond the last bound the quantile has no bound to give.
        let late = [(1, fresh_kind(700_000_000), 1)];
        let got = from_counts(late.iter().map(|(c, k, n)| (*c, k.as_str(), *n)), &[1]);
        assert_eq!(got[0].p50_within_secs, None);
    }

    #[test]
    fn bounds_read_as_words() {
        assert_eq!([words(30), words(120), words(7_200), words(259_200)], ["30 s", "2 min", "2 h", "3 d"]);
    }
}
