//! File import: NDJSON (one canonical event per line) or CSV (a header row naming canonical
//! fields, nested ones as `click_ids.ttclid`). Bad lines are reported with their line numbers
//! and never stop the good ones; good events go through the shared accept path in chunks of
//! 5,000, one transaction each, so a cancel or a crash leaves whole chunks queued and nothing
//! half-written. Memory stays flat: errors stream to a callback, the report keeps the first few.

use std::collections::BTreeMap;
use std::io::{BufRead, Read};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use ts_rs::TS;

use super::{accept, Source};
use crate::model::{ConversionEvent, InputError};
use crate::store::{Store, StoreError, StoredConfig};

/// Lines parsed and enqueued per transaction.
const CHUNK_LINES: usize = 5000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct LineError {
    pub line: u64,
    pub field: String,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct ImportReport {
    /// Non-blank lines (CSV: records) read.
    pub lines: u64,
    /// Valid events.
    pub events: u64,
    /// Conversions queued (an X event may be several).
    pub enqueued: u64,
    /// Already queued within 48 h.
    pub duplicates: u64,
    /// Deliveries not queued, per reason (`no_identifier`, `consent_none`, …).
    pub skipped: BTreeMap<String, u64>,
    /// All bad lines.
    pub error_count: u64,
    /// The first bad lines (all of them for the CLI's `import_ndjson`).
    pub errors: Vec<LineError>,
}

/// An import's progress, as the window shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct ImportProgress {
    pub bytes_read: u64,
    pub total_bytes: u64,
    pub lines: u64,
    pub events: u64,
    pub enqueued: u64,
    pub errors: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    Ndjson,
    Csv,
}

impl FileFormat {
    /// `.csv` is CSV; anything else is read as NDJSON.
    pub fn of_path(path: &std::path::Path) -> Self {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("csv") => FileFormat::Csv,
            _ => FileFormat::Ndjson,
        }
    }
}

/// Why an import stopped before the end of its input.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The input could not be read (a directory, a disk error): nothing after `line` was read.
    #[error("cannot read line {line}: {message}; {} conversions from the lines before it were queued", .report.enqueued)]
    Read { line: u64, message: String, report: Box<ImportReport> },
    /// Stopped by the user between two chunks: what the report counts stays queued.
    #[error("the import was cancelled after {} lines; {} conversions from them stay queued", .report.lines, .report.enqueued)]
    Cancelled { report: Box<ImportReport> },
}

/// How an import reports as it goes and how it is stopped.
pub struct ImportControl<'a> {
    pub cancel: &'a AtomicBool,
    /// After each chunk: the report so far and the bytes read.
    pub on_progress: &'a mut (dyn FnMut(&ImportReport, u64) + Send),
    /// Every bad line, as it is found.
    pub on_error: &'a mut (dyn FnMut(&LineError) + Send),
    /// How many errors the report keeps.
    pub keep_errors: usize,
}

/// Counts the bytes read through it (progress of a file import).
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counting<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, n: usize) {
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        self.inner.consume(n)
    }
}

/// Remembers where the line breaks of the bytes read so far are, so that a CSV record's byte
/// offset becomes the line an editor shows (the csv crate counts neither blank lines nor the
/// blank lines it skips before a record). Holds only the breaks not yet passed: about one read
/// buffer's worth.
struct NewlineIndex<R> {
    inner: R,
    offset: u64,
    /// Line breaks ahead: (first byte, the byte after), so `\r\n` is one break.
    pending: std::collections::VecDeque<(u64, u64)>,
    passed: u64,
    last_was_cr: bool,
}

impl<R> NewlineIndex<R> {
    fn new(inner: R) -> Self {
        Self { inner, offset: 0, pending: Default::default(), passed: 0, last_was_cr: false }
    }

    /// The 1-based line of a record starting at byte `offset` (offsets only grow between
    /// calls); blank lines at `offset` are skipped as the csv crate skips them.
    fn line_at(&mut self, mut offset: u64) -> u64 {
        while let Some(&(start, end)) = self.pending.front() {
            if end <= offset {
                self.pending.pop_front();
                self.passed += 1;
            } else if start == offset {
                self.pending.pop_front();
                self.passed += 1;
                offset = end;
            } else {
                break;
            }
        }
        self.passed + 1
    }
}

impl<R: Read> Read for NewlineIndex<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for (i, byte) in buf[..n].iter().enumerate() {
            let at = self.offset + i as u64;
            if *byte == b'\n' {
                let start = if self.last_was_cr { at - 1 } else { at };
                self.pending.push_back((start, at + 1));
            }
            self.last_was_cr = *byte == b'\r';
        }
        self.offset += n as u64;
        Ok(n)
    }
}

/// One input record: its line, and the event or what is wrong with it.
type Record = (u64, Result<ConversionEvent, InputError>);

enum Records<R: BufRead> {
    Ndjson { input: R, line: u64, bytes: Vec<u8> },
    Csv { reader: csv::Reader<NewlineIndex<R>>, headers: Vec<String>, record: csv::StringRecord },
}

impl<R: BufRead> Records<R> {
    fn new(format: FileFormat, input: R) -> Result<Self, std::io::Error> {
        Ok(match format {
            FileFormat::Ndjson => Records::Ndjson { input, line: 0, bytes: Vec::new() },
            FileFormat::Csv => {
                let mut reader =
                    csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(NewlineIndex::new(input));
                let headers = reader
                    .headers()
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, csv_message(&e)))?
                    .iter()
                    .map(str::to_owned)
                    .collect();
                Records::Csv { reader, headers, record: csv::StringRecord::new() }
            }
        })
    }

    /// The next record, `None` at the end; `Err` when the input cannot be read any more.
    fn next(&mut self) -> Option<Result<Record, (u64, std::io::Error)>> {
        match self {
            Records::Ndjson { input, line, bytes } => loop {
                bytes.clear();
                *line += 1;
                match input.read_until(b'\n', bytes) {
                    Ok(0) => return None,
                    Ok(_) => {}
                    Err(e) => return Some(Err((*line, e))),
                }
                let Ok(text) = std::str::from_utf8(bytes) else {
                    return Some(Ok((
                        *line,
                        Err(InputError::new("line", "is not UTF-8 text; save the file as UTF-8")),
                    )));
                };
                if text.trim().is_empty() {
                    continue;
                }
                return Some(Ok((*line, ConversionEvent::from_json_str(text))));
            },
            Records::Csv { reader, headers, record } => {
                let before = reader.position().byte();
                let result = reader.read_record(record);
                let start = record.position().map_or(before, |p| p.byte());
                let line = reader.get_mut().line_at(start);
                match result {
                    Ok(false) => None,
                    Ok(true) => Some(Ok((line, csv_event(headers, record)))),
                    Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => {
                        Some(Err((line, std::io::Error::other(csv_message(&e)))))
                    }
                    Err(e) => Some(Ok((line, Err(InputError::new("line", csv_message(&e)))))),
                }
            }
        }
    }
}

fn csv_message(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Utf8 { .. } => "is not UTF-8 text; save the file as UTF-8".into(),
        _ => format!("cannot be read as CSV ({e})"),
    }
}

/// A CSV record as a canonical event: header `click_ids.ttclid` fills `{"click_ids": {"ttclid": …}}`,
/// empty cells are absent, an `items` cell holds a JSON array.
fn csv_event(headers: &[String], record: &csv::StringRecord) -> Result<ConversionEvent, InputError> {
    let mut doc = Map::new();
    for (header, cell) in headers.iter().zip(record.iter()) {
        if cell.is_empty() || header.is_empty() {
            continue;
        }
        let value = if header == "items" {
            serde_json::from_str(cell).map_err(|_| {
                InputError::new("items", "must be a JSON array of {id, name, price, quantity} in its cell")
            })?
        } else {
            Value::String(cell.to_owned())
        };
        match header.split_once('.') {
            Some((parent, child)) => {
                let slot = doc.entry(parent.to_owned()).or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(map) = slot {
                    map.insert(child.to_owned(), value);
                }
            }
            None => {
                doc.insert(header.clone(), value);
            }
        }
    }
    ConversionEvent::from_json(&Value::Object(doc))
}

/// Imports NDJSON for one game, reporting every bad line in the result (the CLI's and the
/// tests' entry point).
pub async fn import_ndjson(
    store: &Store,
    game_id: i64,
    input: impl BufRead,
    now_ms: i64,
) -> Result<ImportReport, ImportError> {
    let cancel = AtomicBool::new(false);
    let mut control =
        ImportControl { cancel: &cancel, on_progress: &mut |_, _| {}, on_error: &mut |_| {}, keep_errors: usize::MAX };
    import(store, game_id, input, FileFormat::Ndjson, &mut control, now_ms).await
}

/// Imports a file's events for one game's enabled configs.
pub async fn import(
    store: &Store,
    game_id: i64,
    input: impl BufRead,
    format: FileFormat,
    control: &mut ImportControl<'_>,
    now_ms: i64,
) -> Result<ImportReport, ImportError> {
    store.game(game_id).await?;
    let configs: Vec<_> = store.configs(game_id).await?.into_iter().filter(|c| c.enabled).collect();
    let read = Arc::new(AtomicU64::new(0));
    let counting = Counting { inner: input, read: read.clone() };
    let mut report = ImportReport::default();
    let mut records = match Records::new(format, counting) {
        Ok(r) => r,
        Err(e) => return Err(ImportError::Read { line: 1, message: e.to_string(), report: Box::new(report) }),
    };
    let mut chunk: Vec<ConversionEvent> = Vec::with_capacity(CHUNK_LINES);
    loop {
        let (line, parsed) = match records.next() {
            None => break,
            Some(Ok(record)) => record,
            Some(Err((line, e))) => {
                // A read error repeats on every call (a directory, a failing disk): stop here,
                // keep what the earlier lines queued, and say where.
                enqueue_chunk(store, game_id, &configs, &mut chunk, &mut report, now_ms).await?;
                return Err(ImportError::Read { line, message: e.to_string(), report: Box::new(report) });
            }
        };
        report.lines += 1;
        match parsed {
            Ok(event) => chunk.push(event),
            Err(InputError { field, message }) => {
                let error = LineError { line, field, message };
                (control.on_error)(&error);
                report.error_count += 1;
                if report.errors.len() < control.keep_errors {
                    report.errors.push(error);
                }
            }
        }
        if chunk.len() >= CHUNK_LINES {
            enqueue_chunk(store, game_id, &configs, &mut chunk, &mut report, now_ms).await?;
            (control.on_progress)(&report, read.load(Ordering::Relaxed));
            if control.cancel.load(Ordering::Relaxed) {
                return Err(ImportError::Cancelled { report: Box::new(report) });
            }
        }
    }
    enqueue_chunk(store, game_id, &configs, &mut chunk, &mut report, now_ms).await?;
    (control.on_progress)(&report, read.load(Ordering::Relaxed));
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
    let accepted = accept(store, game_id, configs, std::mem::take(chunk), Source::Import, now_ms).await?;
    report.events += accepted.events;
    report.enqueued += accepted.enqueued;
    report.duplicates += accepted.duplicates;
    for (reason, n) in accepted.skipped {
        *report.skipped.entry(reason).or_default() += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_headers_name_nested_fields() {
        let headers: Vec<String> = [
            "event_id",
            "name",
            "occurred_at",
            "player_id",
            "consent",
            "click_ids.ttclid",
            "value",
            "currency",
            "items",
        ]
        .map(String::from)
        .to_vec();
        let record = csv::StringRecord::from(vec![
            "e1",
            "purchase",
            "2026-11-20T10:15:30Z",
            "p1",
            "full",
            "tt-1",
            "4.99",
            "USD",
            r#"[{"id": "gem", "quantity": 2}]"#,
        ]);
        let event = csv_event(&headers, &record).unwrap();
        assert_eq!(event.click_ids.ttclid.as_deref(), Some("tt-1"));
        assert_eq!(event.items[0].quantity, 2);
        let mut bad = record.clone();
        bad = csv::StringRecord::from(
            bad.iter().enumerate().map(|(i, c)| if i == 8 { "nope" } else { c }).collect::<Vec<_>>(),
        );
        assert_eq!(csv_event(&headers, &bad).unwrap_err().field, "items");
        let empty_consent = csv::StringRecord::from(vec!["e1", "purchase", "2026-11-20T10:15:30Z", "p1", ""]);
        assert_eq!(csv_event(&headers, &empty_consent).unwrap_err().field, "consent");
    }
}
