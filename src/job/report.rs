//! The job report: one row per input line (invalid and duplicate lines included), as JSON and
//! as a CSV with the same stem, both written atomically.

use crate::error::ErrorKind;
use crate::input::{Entry, InputLine};
use crate::job::events::Summary;
use crate::store::durable;
use crate::store::state::Verified;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

pub use crate::job::config::{DEFAULT_REPORT, FAILED_LIST};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Downloaded,
    Skipped,
    Failed,
    Invalid,
    Duplicate,
    /// Not finished because the job was cancelled or stopped; a rerun continues it.
    Cancelled,
    /// Found by a search and left out: deleted in TDP, or an outdated version.
    Excluded,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Downloaded => "downloaded",
            Status::Skipped => "skipped",
            Status::Failed => "failed",
            Status::Invalid => "invalid",
            Status::Duplicate => "duplicate",
            Status::Cancelled => "cancelled",
            Status::Excluded => "excluded",
        }
    }
}

/// What happened to one file ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileOutcome {
    pub status: Status,
    pub path: Option<String>,
    pub bytes: Option<u64>,
    pub etag: Option<String>,
    pub md5: Option<String>,
    pub verified: Option<Verified>,
    pub decoded: bool,
    pub attempts: u32,
    pub kind: Option<ErrorKind>,
    pub error: Option<String>,
}

impl FileOutcome {
    /// A file that is in place (downloaded now, or found there), as the journal records it.
    pub fn placed(status: Status, done: crate::store::state::DoneInfo, attempts: u32) -> Self {
        FileOutcome {
            status,
            path: Some(done.path),
            bytes: Some(done.bytes),
            etag: done.etag,
            md5: done.md5,
            verified: Some(done.verified),
            decoded: done.decoded,
            attempts,
            kind: None,
            error: None,
        }
    }

    pub fn failed(
        status: Status,
        attempts: u32,
        kind: ErrorKind,
        error: impl Into<String>,
    ) -> Self {
        FileOutcome {
            status,
            path: None,
            bytes: None,
            etag: None,
            md5: None,
            verified: None,
            decoded: false,
            attempts,
            kind: Some(kind),
            error: Some(error.into()),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportRow {
    pub line: usize,
    pub input: String,
    pub file_id: Option<String>,
    pub status: Status,
    pub path: Option<String>,
    pub bytes: Option<u64>,
    pub etag: Option<String>,
    pub md5: Option<String>,
    pub verified: Option<Verified>,
    pub decoded: bool,
    pub attempts: u32,
    pub error: Option<String>,
    /// What kind of error `error` is (failed, invalid and cancelled rows).
    #[serde(default)]
    pub kind: Option<ErrorKind>,
}

impl ReportRow {
    /// The row of an input line before anything is known of it.
    pub fn of_line(line: usize, input: &str) -> ReportRow {
        ReportRow {
            line,
            input: input.to_string(),
            file_id: None,
            status: Status::Invalid,
            path: None,
            bytes: None,
            etag: None,
            md5: None,
            verified: None,
            decoded: false,
            attempts: 0,
            error: None,
            kind: None,
        }
    }
}

/// The report row of one input line; `lookup` tells what became of a file ID, and
/// `stopped_by` why files that never started did not (the kind that stopped the job).
pub fn row(
    l: &InputLine,
    lookup: &dyn Fn(&str) -> Option<FileOutcome>,
    stopped_by: ErrorKind,
) -> ReportRow {
    let mut row = ReportRow::of_line(l.line, &l.input);
    match &l.entry {
        Entry::Invalid { reason } => {
            row.error = Some(reason.clone());
            row.kind = Some(ErrorKind::Input);
        }
        Entry::Duplicate { id, first_line } => {
            row.file_id = Some(id.clone());
            row.status = Status::Duplicate;
            row.path = lookup(id).and_then(|o| o.path);
            row.error = Some(format!(
                "same file ID as line {first_line}; downloaded once"
            ));
        }
        Entry::Valid { id } => {
            row.file_id = Some(id.clone());
            match lookup(id) {
                Some(o) => {
                    row.status = o.status;
                    row.path = o.path;
                    row.bytes = o.bytes;
                    row.etag = o.etag;
                    row.md5 = o.md5;
                    row.verified = o.verified;
                    row.decoded = o.decoded;
                    row.attempts = o.attempts;
                    row.error = o.error;
                    row.kind = o.kind;
                }
                None => {
                    row.status = Status::Cancelled;
                    row.error = Some("not started: the job stopped first".into());
                    row.kind = Some(stopped_by);
                }
            }
        }
    }
    row
}

fn write_atomically(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp-report");
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        fill(&mut out)?;
        out.flush()?;
        durable::sync_data(out.get_ref(), &tmp, "sync report")?;
    }
    place(&tmp, path)
}

/// Renames a written report over the previous one and makes the new name durable.
fn place(tmp: &Path, path: &Path) -> std::io::Result<()> {
    durable::replace(tmp, path)?;
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => durable::sync_dir(dir),
        None => durable::sync_dir(Path::new(".")),
    }
}

/// A CSV cell that a spreadsheet will show as text: one starting with `=`, `+`, `-`, `@`, tab
/// or CR would be evaluated as a formula (CSV injection), so it gets a leading `'`. The JSON
/// report keeps the exact text.
fn cell(text: String) -> String {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text,
    }
}

/// The CSV path beside a JSON report path.
pub fn csv_path(json: &Path) -> PathBuf {
    json.with_extension("csv")
}

/// Writes `<json>` and `<stem>.csv`, one row at a time (a job may have 100,000 lines).
pub fn write(
    json: &Path,
    summary: &Summary,
    rows: &mut dyn Iterator<Item = ReportRow>,
) -> std::io::Result<()> {
    if let Some(dir) = json.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let csv_tmp = csv_path(json).with_extension("tmp-report-csv");
    let mut csv_out =
        csv::Writer::from_writer(std::io::BufWriter::new(std::fs::File::create(&csv_tmp)?));
    csv_out.write_record([
        "line", "input", "fileId", "status", "path", "bytes", "etag", "md5", "verified", "decoded",
        "attempts", "error", "kind",
    ])?;
    write_atomically(json, |out| {
        out.write_all(b"{\n  \"summary\": ")?;
        serde_json::to_writer_pretty(&mut *out, summary).map_err(std::io::Error::other)?;
        out.write_all(b",\n  \"files\": [")?;
        for (i, r) in rows.enumerate() {
            out.write_all(if i == 0 { b"\n    " } else { b",\n    " })?;
            serde_json::to_writer(&mut *out, &r).map_err(std::io::Error::other)?;
            csv_out.write_record([
                r.line.to_string(),
                cell(r.input),
                cell(r.file_id.unwrap_or_default()),
                r.status.as_str().to_string(),
                cell(r.path.unwrap_or_default()),
                r.bytes.map(|b| b.to_string()).unwrap_or_default(),
                cell(r.etag.unwrap_or_default()),
                r.md5.unwrap_or_default(),
                r.verified
                    .map(|v| v.as_str().to_string())
                    .unwrap_or_default(),
                r.decoded.to_string(),
                r.attempts.to_string(),
                cell(r.error.unwrap_or_default()),
                r.kind.map(|k| k.as_str().to_string()).unwrap_or_default(),
            ])?;
        }
        out.write_all(b"\n  ]\n}\n")
    })?;
    let csv_file = csv_out.into_inner().map_err(|e| e.into_error())?;
    let csv_file = csv_file.into_inner().map_err(|e| e.into_error())?;
    durable::sync_data(&csv_file, &csv_tmp, "sync report")?;
    drop(csv_file);
    place(&csv_tmp, &csv_path(json))
}

/// Writes a list of file IDs, one per line, to `dest/tdp-download-failed.txt` (replacing an
/// older one); returns its path.
pub fn write_failed_list(dest: &Path, ids: &[String]) -> std::io::Result<PathBuf> {
    let path = dest.join(FAILED_LIST);
    write_atomically(&path, |out| {
        for id in ids {
            writeln!(out, "{id}")?;
        }
        Ok(())
    })?;
    Ok(path)
}

/// The counts of the last run, from its report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LastRun {
    pub downloaded: usize,
    pub skipped: usize,
    pub failed: usize,
    pub cancelled: usize,
    pub seconds: f64,
    pub stopped: Option<String>,
}

/// The summary of the run that wrote a report, read without its rows' weight in memory.
pub fn last_run(json: &Path) -> Option<LastRun> {
    #[derive(Deserialize)]
    struct Head {
        summary: LastRun,
    }
    let f = std::fs::File::open(json).ok()?;
    serde_json::from_reader::<_, Head>(std::io::BufReader::new(f))
        .ok()
        .map(|h| h.summary)
}

/// Reads the rows of a JSON report back.
pub fn read(json: &Path) -> std::io::Result<Vec<ReportRow>> {
    #[derive(Deserialize)]
    struct ReportFile {
        files: Vec<ReportRow>,
    }
    let bytes = std::fs::read(json)?;
    let f: ReportFile = serde_json::from_slice(&bytes).map_err(std::io::Error::other)?;
    Ok(f.files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid_row(line: usize, input: &str) -> ReportRow {
        ReportRow {
            error: Some("not a TDP file ID".into()),
            kind: Some(ErrorKind::Input),
            ..ReportRow::of_line(line, input)
        }
    }

    #[test]
    fn csv_cells_that_spreadsheets_would_evaluate_are_neutralised_json_keeps_them() {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("r.json");
        let inputs = [
            "=HYPERLINK(\"x\")",
            "+1",
            "-2",
            "@SUM(A1)",
            "\tx",
            "\rx",
            "plain",
        ];
        let mut rows = inputs
            .iter()
            .enumerate()
            .map(|(i, s)| invalid_row(i + 1, s));
        write(&json, &Summary::default(), &mut rows).unwrap();

        let mut csv = csv::Reader::from_path(csv_path(&json)).unwrap();
        let cells: Vec<String> = csv
            .records()
            .map(|r| r.unwrap().get(1).unwrap().to_string())
            .collect();
        for (cell, input) in cells.iter().zip(inputs) {
            if input == "plain" {
                assert_eq!(cell, input);
            } else {
                assert_eq!(cell, &format!("'{input}"));
            }
        }
        let back: Vec<String> = read(&json).unwrap().into_iter().map(|r| r.input).collect();
        assert_eq!(back, inputs);
    }
}
