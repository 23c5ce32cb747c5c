//! CSV and NDJSON export of the delivery log rows a filter shows: streamed page by page (keyset,
//! 5,000 rows at a time) into any writer, with progress and cancel; memory stays flat.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::model::{LogEntry, LogFilter};
use crate::store::{Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    Csv,
    Ndjson,
}

/// A file the user chose to export to, as the window knows it: the path stays in the shell,
/// the window names the file by `handle` (single use) and only shows `path`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct ExportTarget {
    pub handle: String,
    pub path: String,
    pub format: ExportFormat,
}

/// Progress of an export, sent as it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct ExportProgress {
    pub written: u64,
    pub total: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write the export: {0}")]
    Write(#[from] std::io::Error),
    #[error("the export was cancelled")]
    Cancelled,
}

const PAGE: u32 = 5000;
const CSV_HEADER: &str =
    "time_utc,config_id,network,event,event_id,goal,status,http_status,latency_ms,attempt,request_id,error\n";

fn csv_field(out: &mut String, value: &str) {
    if value.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

/// One row as a CSV line.
pub fn csv_line(e: &LogEntry) -> String {
    let time = chrono::DateTime::from_timestamp_millis(e.at)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default();
    let fields = [
        time,
        e.config_id.to_string(),
        e.network.as_str().to_owned(),
        e.event_name.clone(),
        e.event_id.clone(),
        e.goal_key.clone(),
        e.status.as_str().to_owned(),
        e.http_status.map(|s| s.to_string()).unwrap_or_default(),
        e.latency_ms.map(|s| s.to_string()).unwrap_or_default(),
        e.attempt.to_string(),
        e.request_id.clone().unwrap_or_default(),
        e.error.clone().unwrap_or_default(),
    ];
    let mut line = String::with_capacity(160);
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        csv_field(&mut line, f);
    }
    line.push('\n');
    line
}

/// Writes the filter's rows, newest first, calling `progress(written, total)` after each page.
/// Returns how many rows were written; `cancel` stops it between pages.
pub async fn export(
    store: &Store,
    filter: &LogFilter,
    format: ExportFormat,
    out: &mut impl Write,
    mut progress: impl FnMut(u64, u64),
    cancel: &AtomicBool,
) -> Result<u64, ExportError> {
    let total = store.log_count(filter).await?;
    let mut page = LogFilter { limit: PAGE, before: None, ..filter.clone() };
    if format == ExportFormat::Csv {
        out.write_all(CSV_HEADER.as_bytes())?;
    }
    let mut written = 0u64;
    progress(0, total);
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(ExportError::Cancelled);
        }
        let rows = store.log_page(&page).await?;
        let Some(last) = rows.last() else { break };
        page.before = Some((last.at, last.id));
        let mut chunk = String::with_capacity(rows.len() * 200);
        for e in &rows {
            match format {
                ExportFormat::Csv => chunk.push_str(&csv_line(e)),
                ExportFormat::Ndjson => {
                    chunk.push_str(&serde_json::to_string(e).map_err(|e| StoreError::Corrupt(e.to_string()))?);
                    chunk.push('\n');
                }
            }
        }
        out.write_all(chunk.as_bytes())?;
        written += rows.len() as u64;
        progress(written, total.max(written));
        if rows.len() < PAGE as usize {
            break;
        }
    }
    out.flush()?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let mut s = String::new();
        csv_field(&mut s, r#"HTTP 400: "value", bad"#);
        assert_eq!(s, r#""HTTP 400: ""value"", bad""#);
        let mut plain = String::new();
        csv_field(&mut plain, "purchase");
        assert_eq!(plain, "purchase");
    }
}
