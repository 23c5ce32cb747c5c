//! `postback import FILE.ndjson`: one canonical event per line. Bad lines are reported with
//! their line numbers and never stop the good ones; each good event is enqueued for every
//! enabled config of the game that wants it (trigger events / goals, consent, identifiers).

use std::collections::BTreeMap;
use std::io::BufRead;

use serde::Serialize;

use crate::model::{ConversionEvent, InputError};
use crate::networks;
use crate::store::{Store, StoreError};

/// Lines parsed and enqueued per transaction.
const CHUNK_LINES: usize = 5000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineError {
    pub line: u64,
    pub field: String,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// Non-blank lines read.
    pub lines: u64,
    /// Valid events.
    pub events: u64,
    /// (config, event) deliveries queued.
    pub enqueued: u64,
    /// Already queued within 48 h.
    pub duplicates: u64,
    /// Deliveries not queued, per reason (`no_identifier`, `consent_none`, …).
    pub skipped: BTreeMap<String, u64>,
    pub errors: Vec<LineError>,
}

pub async fn import_ndjson(
    store: &Store,
    game_id: i64,
    input: impl BufRead,
    now_ms: i64,
) -> Result<ImportReport, StoreError> {
    store.game(game_id).await?;
    let configs: Vec<_> = store.configs(game_id).await?.into_iter().filter(|c| c.enabled).collect();
    let mut report = ImportReport::default();
    let mut chunk: Vec<ConversionEvent> = Vec::with_capacity(CHUNK_LINES);
    for (index, line) in input.lines().enumerate() {
        let number = index as u64 + 1;
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                report.errors.push(LineError {
                    line: number,
                    field: "line".into(),
                    message: format!("unreadable: {e}"),
                });
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        report.lines += 1;
        match ConversionEvent::from_json_str(&line) {
            Ok(event) => chunk.push(event),
            Err(InputError { field, message }) => report.errors.push(LineError { line: number, field, message }),
        }
        if chunk.len() >= CHUNK_LINES {
            enqueue_chunk(store, &configs, &mut chunk, &mut report, now_ms).await?;
        }
    }
    enqueue_chunk(store, &configs, &mut chunk, &mut report, now_ms).await?;
    Ok(report)
}

async fn enqueue_chunk(
    store: &Store,
    configs: &[crate::store::StoredConfig],
    chunk: &mut Vec<ConversionEvent>,
    report: &mut ImportReport,
    now_ms: i64,
) -> Result<(), StoreError> {
    if chunk.is_empty() {
        return Ok(());
    }
    report.events += chunk.len() as u64;
    let players: Vec<&str> = chunk.iter().map(|e| e.player_id.as_str()).collect();
    let erased = store.erased_among(&players).await?;
    let mut wanted: Vec<(i64, &ConversionEvent)> = Vec::with_capacity(chunk.len() * configs.len());
    for event in chunk.iter() {
        for stored in configs {
            match networks::prepare(&stored.config, event, erased.contains(&event.player_id)) {
                Ok(_) => wanted.push((stored.id, event)),
                Err(skip) => *report.skipped.entry(skip.reason.as_str().to_owned()).or_default() += 1,
            }
        }
    }
    let queued = store.enqueue(&wanted, now_ms).await?;
    report.enqueued += queued.enqueued;
    report.duplicates += queued.duplicates;
    chunk.clear();
    Ok(())
}
