//! `postback import FILE.ndjson`: one canonical event per line. Bad lines are reported with
//! their line numbers and never stop the good ones; each good event is enqueued for every
//! enabled config of the game that wants it (trigger events / goals, consent, identifiers).

use std::collections::BTreeMap;
use std::io::BufRead;

use serde::Serialize;

use crate::model::{ConversionEvent, InputError};
use crate::store::{Store, StoreError, StoredConfig};

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

/// Why an import stopped before the end of its input.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The input could not be read (a directory, a disk error): nothing after `line` was read.
    #[error("cannot read line {line}: {message}; {} conversions from the lines before it were queued", .report.enqueued)]
    Read { line: u64, message: String, report: Box<ImportReport> },
}

pub async fn import_ndjson(
    store: &Store,
    game_id: i64,
    mut input: impl BufRead,
    now_ms: i64,
) -> Result<ImportReport, ImportError> {
    store.game(game_id).await?;
    let configs: Vec<_> = store.configs(game_id).await?.into_iter().filter(|c| c.enabled).collect();
    let mut report = ImportReport::default();
    let mut chunk: Vec<ConversionEvent> = Vec::with_capacity(CHUNK_LINES);
    let mut bytes = Vec::new();
    let mut number = 0u64;
    loop {
        bytes.clear();
        number += 1;
        match input.read_until(b'\n', &mut bytes) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                // A read error repeats on every call (a directory, a failing disk): stop here,
                // keep what the earlier lines queued, and say where.
                enqueue_chunk(store, game_id, &configs, &mut chunk, &mut report, now_ms).await?;
                return Err(ImportError::Read { line: number, message: e.to_string(), report: Box::new(report) });
            }
        }
        let line = match std::str::from_utf8(&bytes) {
            Ok(text) => text,
            Err(_) => {
                report.lines += 1;
                report.errors.push(LineError {
                    line: number,
                    field: "line".into(),
                    message: "is not UTF-8 text; save the file as UTF-8".into(),
                });
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        report.lines += 1;
        match ConversionEvent::from_json_str(line) {
            Ok(event) => chunk.push(event),
            Err(InputError { field, message }) => report.errors.push(LineError { line: number, field, message }),
        }
        if chunk.len() >= CHUNK_LINES {
            enqueue_chunk(store, game_id, &configs, &mut chunk, &mut report, now_ms).await?;
        }
    }
    enqueue_chunk(store, game_id, &configs, &mut chunk, &mut report, now_ms).await?;
    Ok(report)
}

async fn enqueue_chunk(
    store: &Store,
    game_id: i64,
    configs: &[StoredConfig],
    chunk: &mut Vec<ConversionEvent>,
    report: &mut ImportReport,
    now_ms: i64,
) -> Result<(), StoreError> {
    if chunk.is_empty() {
        return Ok(());
    }
    let accepted = super::accept(store, game_id, configs, chunk, super::Source::Import, now_ms).await?;
    report.events += accepted.events;
    report.enqueued += accepted.enqueued;
    report.duplicates += accepted.duplicates;
    for (reason, n) in accepted.skipped {
        *report.skipped.entry(reason).or_default() += n;
    }
    chunk.clear();
    Ok(())
}
