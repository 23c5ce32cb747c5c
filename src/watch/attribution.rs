//! The attribution summary of the Sources page: per source and network over a time range, how
//! many events arrived, how many conversions were queued, and how many events were not forwarded
//! and why — from the hourly traffic counts (no personal data).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::model::{ConfigSummary, Network};
use crate::store::TrafficCount;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct NetworkTraffic {
    pub network: Network,
    pub queued: u64,
    /// Reason → events not forwarded to this network.
    pub not_forwarded: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct SourceTraffic {
    /// `import`, `ingest` or `demo`.
    pub source: String,
    pub arrived: u64,
    pub networks: Vec<NetworkTraffic>,
}

/// Groups a game's traffic by source, then by the network of each config.
pub fn summarize(traffic: &[TrafficCount], configs: &[ConfigSummary]) -> Vec<SourceTraffic> {
    let network_of = |config_id: i64| configs.iter().find(|c| c.config_id == Some(config_id)).map(|c| c.network);
    let mut sources: BTreeMap<&str, SourceTraffic> = BTreeMap::new();
    // Only the counts of arrivals and routing (not match keys, not deliveries' freshness).
    let routing = |kind: &str| kind == "arrived" || kind == "queued" || kind.starts_with("skipped:");
    for t in traffic.iter().filter(|t| routing(&t.kind)) {
        let entry = sources.entry(t.source.as_str()).or_insert_with(|| SourceTraffic {
            source: t.source.clone(),
            arrived: 0,
            networks: Vec::new(),
        });
        if t.kind == "arrived" {
            entry.arrived += t.count;
            continue;
        }
        // Traffic of a config since disconnected has no network any more: left out.
        let Some(network) = network_of(t.config_id) else { continue };
        let slot = match entry.networks.iter().position(|n| n.network == network) {
            Some(i) => &mut entry.networks[i],
            None => {
                entry.networks.push(NetworkTraffic { network, queued: 0, not_forwarded: BTreeMap::new() });
                entry.networks.last_mut().expect("just pushed")
            }
        };
        match t.kind.strip_prefix("skipped:") {
            Some(reason) => *slot.not_forwarded.entry(reason.to_owned()).or_default() += t.count,
            None if t.kind == "queued" => slot.queued += t.count,
            None => {}
        }
    }
    let mut out: Vec<SourceTraffic> = sources.into_values().collect();
    for s in &mut out {
        s.networks.sort_by_key(|n| n.network);
    }
    out
}
