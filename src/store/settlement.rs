//! Settling a batch, the part that is the same on every engine and has no SQL: requests made
//! ready for their rows (bodies compressed, answers cut, credentials already redacted by the
//! caller), players keyed, which items of which requests belong to erased players, the row
//! changes grouped by outcome, the hourly counts and the log rows as the log shows them.

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};

use super::player_key::PlayerKeyer;
use super::rows::{NewLogEntry, RequestRecord, Retry, Settlement, StoredRequest};
use super::StoreError;
use crate::model::{LogEntry, Network};

/// Answers are kept up to this size.
const MAX_ANSWER: usize = 16 * 1024;

pub(crate) fn compress(body: &[u8]) -> Result<Vec<u8>, StoreError> {
    let mut encoder =
        flate2::write::DeflateEncoder::new(Vec::with_capacity(body.len() / 6), flate2::Compression::fast());
    encoder.write_all(body).and_then(|()| encoder.finish()).map_err(|e| StoreError::Corrupt(format!("compress: {e}")))
}

pub(crate) fn decompress(stored: &[u8]) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::with_capacity(stored.len() * 6);
    flate2::read::DeflateDecoder::new(stored)
        .read_to_end(&mut out)
        .map_err(|e| StoreError::Corrupt(format!("a stored request cannot be read: {e}")))?;
    Ok(out)
}

fn truncated(text: &str) -> String {
    match text.char_indices().nth(MAX_ANSWER) {
        Some((cut, _)) => format!("{}… (cut at 16 KiB)", &text[..cut]),
        None => text.to_owned(),
    }
}

fn to_json(value: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A request ready for its row: compressed and serialised before any lock is taken, so that
/// delivery holds the database's locks only for the insert.
#[derive(Debug, Clone)]
pub(crate) struct RequestRow {
    pub(crate) at: i64,
    pub(crate) config_id: i64,
    pub(crate) network: Network,
    pub(crate) url: String,
    pub(crate) headers: String,
    pub(crate) body: Vec<u8>,
    pub(crate) response_status: Option<i64>,
    pub(crate) answer_headers: String,
    pub(crate) answer: Option<String>,
}

impl RequestRow {
    pub(crate) fn new(r: &RequestRecord) -> Result<Self, StoreError> {
        Ok(Self {
            at: r.at,
            config_id: r.config_id,
            network: r.network,
            url: r.url.clone(),
            headers: to_json(&r.headers)?,
            body: compress(&r.body)?,
            response_status: r.response_status.map(i64::from),
            answer_headers: to_json(&r.response_headers)?,
            answer: r.response_body.as_deref().map(truncated),
        })
    }

    /// The same request with some items replaced (their players were erased meanwhile).
    pub(crate) fn redacted(&self, indices: &[i64]) -> Result<Self, StoreError> {
        let mut row = self.clone();
        if let Some(body) = redacted_body(self.network, &self.body, indices)? {
            row.body = body;
        }
        Ok(row)
    }
}

/// A stored (compressed) body with the items at `indices` replaced; `None` when the body is not
/// JSON with items (nothing to redact).
pub(crate) fn redacted_body(network: Network, stored: &[u8], indices: &[i64]) -> Result<Option<Vec<u8>>, StoreError> {
    let Ok(mut body) = serde_json::from_slice::<serde_json::Value>(&decompress(stored)?) else { return Ok(None) };
    if crate::networks::redact_items(network, &mut body, indices) == 0 {
        return Ok(None);
    }
    let bytes = serde_json::to_vec(&body).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    compress(&bytes).map(Some)
}

/// A settlement with its CPU work done (request bodies compressed, players keyed), so that
/// the database's locks are held only for writing.
#[derive(Debug)]
pub struct PreparedSettlement {
    pub(crate) settlement: Settlement,
    pub(crate) requests: Vec<RequestRow>,
    /// Per log entry, its player's keyed hash.
    pub(crate) keys: Vec<String>,
    /// The requests' items that no log entry points at: (request, item, player key).
    pub(crate) unlogged: Vec<(usize, i64, String)>,
}

impl PreparedSettlement {
    pub(crate) fn new(settlement: Settlement, players: &PlayerKeyer) -> Result<Self, StoreError> {
        let requests = settlement.requests.iter().map(RequestRow::new).collect::<Result<_, _>>()?;
        let keys = settlement.log.iter().map(|e| players.key(&e.player_id)).collect();
        let logged: HashSet<(usize, i64)> =
            settlement.log.iter().filter_map(|e| Some((e.request?, e.item_index?))).collect();
        let mut unlogged = Vec::new();
        for (r, request) in settlement.requests.iter().enumerate() {
            for (item, player) in request.item_players.iter().enumerate() {
                let item = item as i64;
                if !logged.contains(&(r, item)) {
                    unlogged.push((r, item, players.key(player)));
                }
            }
        }
        Ok(Self { settlement, requests, keys, unlogged })
    }

    /// Every player key the settlement writes (its log entries' and its unlogged items').
    pub(crate) fn all_keys(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().chain(self.unlogged.iter().map(|(_, _, k)| k)).map(String::as_str)
    }

    /// The requests as they are to be stored: the items of `erased` players replaced.
    pub(crate) fn requests_without(&self, erased: &HashSet<String>) -> Result<Vec<RequestRow>, StoreError> {
        if erased.is_empty() {
            return Ok(self.requests.clone());
        }
        let mut gone: BTreeMap<usize, Vec<i64>> = BTreeMap::new();
        for (e, key) in self.settlement.log.iter().zip(&self.keys) {
            if let (Some(request), Some(item), true) = (e.request, e.item_index, erased.contains(key)) {
                gone.entry(request).or_default().push(item);
            }
        }
        for (request, item, key) in &self.unlogged {
            if erased.contains(key) {
                gone.entry(*request).or_default().push(*item);
            }
        }
        self.requests
            .iter()
            .enumerate()
            .map(|(r, row)| gone.get(&r).map_or_else(|| Ok(row.clone()), |items| row.redacted(items)))
            .collect()
    }

    /// The unlogged items to file under their players, those of `erased` players left out.
    pub(crate) fn unlogged_kept<'a>(&'a self, erased: &HashSet<String>) -> Vec<(usize, i64, &'a str)> {
        self.unlogged.iter().filter(|(_, _, k)| !erased.contains(k)).map(|(r, i, k)| (*r, *i, k.as_str())).collect()
    }
}

/// Per log entry, its key unless its player was erased.
pub(crate) fn keys_unless_erased(keys: &[String], erased: &HashSet<String>) -> Vec<Option<String>> {
    keys.iter().map(|k| (!erased.contains(k)).then(|| k.clone())).collect()
}

/// Rows of one kind of outcome, applied in one statement.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Rows<'a> {
    Done(&'a [i64]),
    Remove(&'a [i64]),
    Retry(&'a [Retry]),
    Defer(&'a [(i64, i64)]),
    Release(&'a [i64]),
    /// Dead rows, and whether this failure counts as an attempt.
    Dead(&'a [i64], bool),
}

impl Rows<'_> {
    pub(crate) fn len(&self) -> usize {
        match self {
            Rows::Done(ids) | Rows::Remove(ids) | Rows::Release(ids) | Rows::Dead(ids, _) => ids.len(),
            Rows::Retry(rows) => rows.len(),
            Rows::Defer(rows) => rows.len(),
        }
    }
}

/// A settlement's row changes in parts of at most `max` rows.
pub(crate) fn row_parts(s: &Settlement, max: usize) -> Vec<Rows<'_>> {
    let mut parts = Vec::new();
    parts.extend(s.done.chunks(max).map(Rows::Done));
    parts.extend(s.remove.chunks(max).map(Rows::Remove));
    parts.extend(s.retry.chunks(max).map(Rows::Retry));
    parts.extend(s.defer.chunks(max).map(Rows::Defer));
    parts.extend(s.release.chunks(max).map(Rows::Release));
    parts.extend(s.dead.chunks(max).map(|ids| Rows::Dead(ids, true)));
    parts.extend(s.dead_unsent.chunks(max).map(|ids| Rows::Dead(ids, false)));
    parts
}

/// The log's hourly counts these entries add: (hour, config, status) → count, in key order
/// (one order of row locks for every writer).
pub(crate) fn hourly_counts(entries: &[NewLogEntry]) -> BTreeMap<(i64, i64, &'static str), i64> {
    let mut hourly = BTreeMap::new();
    for e in entries {
        *hourly.entry((e.at - e.at.rem_euclid(3_600_000), e.config_id, e.status.as_str())).or_default() += 1;
    }
    hourly
}

/// A written entry as the log shows it.
pub(crate) fn log_entry(id: i64, e: &NewLogEntry) -> LogEntry {
    LogEntry {
        id,
        at: e.at,
        config_id: e.config_id,
        network: e.network,
        event_name: e.event_name.clone(),
        event_id: e.event_id.clone(),
        goal_key: e.goal_key.clone(),
        status: e.status,
        http_status: e.http_status.map(i64::from),
        latency_ms: e.latency_ms,
        attempt: e.attempt,
        request_id: e.request_id.clone(),
        error: e.error.clone(),
    }
}

/// A stored request's columns, read the same on both engines (`$1`: its id).
pub(crate) const STORED_REQUEST: &str = "SELECT url, headers, body, response_status, response_headers, response_body
     FROM delivery_requests WHERE id = $1";

/// The columns of [`STORED_REQUEST`].
pub(crate) type StoredRequestRow = (String, String, Vec<u8>, Option<i64>, Option<String>, Option<String>);

/// A stored request as the drill-down shows it: body inflated, JSON parsed.
pub(crate) fn stored_request(id: i64, row: StoredRequestRow) -> Result<StoredRequest, StoreError> {
    let (url, headers, body, status, response_headers, response_body) = row;
    let corrupt = |e: serde_json::Error| StoreError::Corrupt(format!("stored request {id}: {e}"));
    let body = decompress(&body)?;
    Ok(StoredRequest {
        id,
        url,
        headers: serde_json::from_str(&headers).map_err(corrupt)?,
        body: serde_json::from_slice(&body).map_err(corrupt)?,
        response_status: status.and_then(|s| u16::try_from(s).ok()),
        response_headers: response_headers
            .map(|h| serde_json::from_str(&h).map_err(corrupt))
            .transpose()?
            .unwrap_or_default(),
        response_body,
    })
}
