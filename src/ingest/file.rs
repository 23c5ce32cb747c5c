//! File import: NDJSON (one canonical event per line) or CSV (a header row naming canonical
//! fields, nested ones as `click_ids.ttclid`). Bad lines are reported with their line numbers
//! and never stop the good ones; good events go through the shared accept path in chunks of
//! 5,000, one transaction each, so a cancel or a crash leaves whole chunks queued and nothing
//! half-written. Memory stays flat: errors stream to a callback, the report keeps the first few,
//! and a line (NDJSON) or record (CSV) over [`MAX_LINE`] bytes is an error at its line number,
//! skipped to its end without being held.

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
/// Bytes per NDJSON line or CSV record at most (with its line break). A valid event is far
/// smaller: every field has a length limit (`model::limits`).
pub const MAX_LINE: usize = 1024 * 1024;
/// Columns of a CSV header at most (the canonical event has about twenty).
pub const MAX_COLUMNS: usize = 1000;

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

/// One input record: its line, and the event or what is wrong with it.
type Record = (u64, Result<ConversionEvent, InputError>);

enum Records<R: BufRead> {
    Ndjson { input: R, line: u64, bytes: Vec<u8> },
    // Boxed: the parser's tables are large, and there is one per import.
    Csv { reader: Box<CsvReader<R>>, headers: Vec<String> },
}

fn line_too_long() -> InputError {
    InputError::new(
        "line",
        format!("is longer than {} MiB; put one event per line, each at most {} MiB", MAX_LINE >> 20, MAX_LINE >> 20),
    )
}

impl<R: BufRead> Records<R> {
    fn new(format: FileFormat, input: R) -> Result<Self, std::io::Error> {
        Ok(match format {
            FileFormat::Ndjson => Records::Ndjson { input, line: 0, bytes: Vec::new() },
            FileFormat::Csv => {
                let mut reader = Box::new(CsvReader::new(input));
                let invalid = |message: String| std::io::Error::new(std::io::ErrorKind::InvalidData, message);
                let headers = match reader.read_record(MAX_COLUMNS + 1)? {
                    None => Vec::new(),
                    Some(CsvRecord { too_long: true, .. }) => {
                        return Err(invalid(format!("the header row is longer than {} MiB", MAX_LINE >> 20)))
                    }
                    Some(_) if reader.ends.len() > MAX_COLUMNS => {
                        return Err(invalid(format!(
                            "the header row has more than {MAX_COLUMNS} columns; keep the event's fields"
                        )))
                    }
                    Some(_) => reader
                        .fields()
                        .map_err(|e| invalid(format!("the header row {}", e.message)))?
                        .into_iter()
                        .map(str::to_owned)
                        .collect(),
                };
                Records::Csv { reader, headers }
            }
        })
    }

    /// The next record, `None` at the end; `Err` when the input cannot be read any more.
    fn next(&mut self) -> Option<Result<Record, (u64, std::io::Error)>> {
        match self {
            Records::Ndjson { input, line, bytes } => loop {
                bytes.clear();
                *line += 1;
                // Read one byte past the limit to tell a line at the limit from a longer one.
                match input.by_ref().take(MAX_LINE as u64 + 1).read_until(b'\n', bytes) {
                    Ok(0) => return None,
                    Ok(_) => {}
                    Err(e) => return Some(Err((*line, e))),
                }
                if bytes.len() > MAX_LINE && bytes.last() != Some(&b'\n') {
                    // Skipped to its end, never held: the next line is read as usual.
                    if let Err(e) = input.skip_until(b'\n') {
                        return Some(Err((*line, e)));
                    }
                    return Some(Ok((*line, Err(line_too_long()))));
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
            Records::Csv { reader, headers } => {
                let record = match reader.read_record(headers.len()) {
                    Ok(None) => return None,
                    Ok(Some(record)) => record,
                    Err(e) => return Some(Err((reader.newlines + 1, e))),
                };
                let line = record.line;
                if record.too_long {
                    return Some(Ok((line, Err(line_too_long()))));
                }
                Some(Ok((line, reader.fields().and_then(|cells| csv_event(headers, &cells)))))
            }
        }
    }
}

/// Reads CSV record by record with `csv_core`, holding at most [`MAX_LINE`] bytes of a record
/// (the `csv` crate holds a whole record, however long). Blank lines are skipped, cells trimmed.
struct CsvReader<R> {
    input: R,
    core: csv_core::Reader,
    /// Line breaks read so far: the line of the record being read.
    newlines: u64,
    /// The current record's cells, unescaped, end to end, and where each ends.
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

/// Where a record starts, and whether it was over [`MAX_LINE`] (then its cells were not kept).
struct CsvRecord {
    line: u64,
    too_long: bool,
}

impl<R: BufRead> CsvReader<R> {
    fn new(input: R) -> Self {
        Self { input, core: csv_core::Reader::new(), newlines: 0, bytes: Vec::new(), ends: Vec::new() }
    }

    /// Reads the next record, keeping its first `keep` cells; `None` at the end of the input.
    fn read_record(&mut self, keep: usize) -> std::io::Result<Option<CsvRecord>> {
        self.bytes.clear();
        self.ends.clear();
        // Blank lines are skipped here rather than by the parser, to know the record's line.
        loop {
            let buf = self.input.fill_buf()?;
            let blank = buf.iter().take_while(|b| matches!(b, b'\r' | b'\n')).count();
            let (done, at_end) = (blank < buf.len(), buf.is_empty());
            self.newlines += buf[..blank].iter().filter(|b| **b == b'\n').count() as u64;
            self.input.consume(blank);
            if done || at_end {
                break;
            }
        }
        let line = self.newlines + 1;
        let mut size = 0usize;
        let mut too_long = false;
        let mut out = [0u8; 8192];
        loop {
            let input = self.input.fill_buf()?;
            let (result, read, written) = self.core.read_field(input, &mut out);
            self.newlines += input[..read].iter().filter(|b| **b == b'\n').count() as u64;
            self.input.consume(read);
            size += read;
            if size > MAX_LINE && !too_long {
                too_long = true;
                self.bytes = Vec::new();
                self.ends = Vec::new();
            }
            if !too_long && self.ends.len() < keep {
                self.bytes.extend_from_slice(&out[..written]);
            }
            match result {
                csv_core::ReadFieldResult::InputEmpty | csv_core::ReadFieldResult::OutputFull => {}
                csv_core::ReadFieldResult::Field { record_end } => {
                    if !too_long && self.ends.len() < keep {
                        self.ends.push(self.bytes.len());
                    }
                    if record_end {
                        return Ok(Some(CsvRecord { line, too_long }));
                    }
                }
                csv_core::ReadFieldResult::End => return Ok(None),
            }
        }
    }

    /// The current record's kept cells, trimmed.
    fn fields(&self) -> Result<Vec<&str>, InputError> {
        let mut start = 0;
        self.ends
            .iter()
            .map(|&end| {
                let cell = std::str::from_utf8(&self.bytes[start..end])
                    .map_err(|_| InputError::new("line", "is not UTF-8 text; save the file as UTF-8"));
                start = end;
                cell.map(str::trim)
            })
            .collect()
    }
}

/// A CSV record as a canonical event: header `click_ids.ttclid` fills `{"click_ids": {"ttclid": …}}`,
/// empty cells are absent, an `items` cell holds a JSON array.
fn csv_event(headers: &[String], record: &[&str]) -> Result<ConversionEvent, InputError> {
    let mut doc = Map::new();
    for (header, cell) in headers.iter().zip(record.iter().copied()) {
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
        let mut record = vec![
            "e1",
            "purchase",
            "2026-11-20T10:15:30Z",
            "p1",
            "full",
            "tt-1",
            "4.99",
            "USD",
            r#"[{"id": "gem", "quantity": 2}]"#,
        ];
        let event = csv_event(&headers, &record).unwrap();
        assert_eq!(event.click_ids.ttclid.as_deref(), Some("tt-1"));
        assert_eq!(event.items[0].quantity, 2);
        record[8] = "nope";
        assert_eq!(csv_event(&headers, &record).unwrap_err().field, "items");
        let empty_consent = ["e1", "purchase", "2026-11-20T10:15:30Z", "p1", ""];
        assert_eq!(csv_event(&headers, &empty_consent).unwrap_err().field, "consent");
    }

    /// Every record of `text`: its line and the field of its error, or "ok".
    fn outcomes(format: FileFormat, text: &[u8]) -> Vec<(u64, String)> {
        let mut records = Records::new(format, text).unwrap();
        std::iter::from_fn(|| records.next())
            .map(|r| {
                let (line, parsed) = r.unwrap();
                (line, parsed.map_or_else(|e| e.field, |_| "ok".to_owned()))
            })
            .collect()
    }

    const EVENT: &str = r#"{"event_id": "e1", "name": "purchase", "occurred_at": "2026-11-20T10:15:30Z", "player_id": "p", "consent": "full"}"#;

    #[test]
    fn an_over_long_ndjson_line_is_an_error_at_its_number_and_the_next_line_is_read() {
        let long = format!(r#"{{"event_id": "{}"}}"#, "x".repeat(MAX_LINE));
        let text = format!("{EVENT}\n{long}\n\n{EVENT}\n{long}");
        assert_eq!(
            outcomes(FileFormat::Ndjson, text.as_bytes()),
            [(1, "ok".into()), (2, "line".into()), (4, "ok".into()), (5, "line".into())]
        );
        // A line of exactly the limit, its line break included, is read.
        let pad = MAX_LINE - EVENT.len() - 1;
        let exact = format!("{EVENT}{}\n{EVENT}", " ".repeat(pad));
        assert_eq!(outcomes(FileFormat::Ndjson, exact.as_bytes()), [(1, "ok".into()), (2, "ok".into())]);
    }

    #[test]
    fn an_over_long_csv_record_is_an_error_at_its_line_and_the_next_record_is_read() {
        let header = "event_id,name,occurred_at,player_id,consent";
        let row = "e1,purchase,2026-11-20T10:15:30Z,p,full";
        // A quoted cell over the limit that spans lines: the record after it keeps its line.
        let long = format!(
            "\"{}\n{}\",purchase,2026-11-20T10:15:30Z,p,full",
            "x".repeat(MAX_LINE / 2),
            "y".repeat(MAX_LINE / 2)
        );
        let text = format!("{header}\r\n{row}\r\n\r\n{long}\r\n{row}\n{}", "e2,purchase,2026-11-20T10:15:30Z,p,none");
        assert_eq!(
            outcomes(FileFormat::Csv, text.as_bytes()),
            [(2, "ok".into()), (4, "line".into()), (6, "ok".into()), (7, "ok".into())]
        );
        // A long id within the line limit is the field's error.
        let id = format!("{},purchase,2026-11-20T10:15:30Z,p,full", "i".repeat(crate::model::limits::ID + 1));
        assert_eq!(outcomes(FileFormat::Csv, format!("{header}\n{id}\n").as_bytes()), [(2, "event_id".into())]);
        // The header row has its limits too.
        let wide = (0..=MAX_COLUMNS).map(|i| format!("c{i}")).collect::<Vec<_>>().join(",");
        assert!(Records::new(FileFormat::Csv, wide.as_bytes()).is_err());
    }
}
