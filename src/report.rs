//! The job report: one row per input line (invalid and duplicate lines included), as JSON and
//! as a CSV with the same stem, both written atomically.

use crate::events::Summary;
use crate::input::{Entry, InputLine};
use crate::state::Verified;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const DEFAULT_REPORT: &str = "tdp-download-report.json";

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
    pub error: Option<String>,
}

impl FileOutcome {
    pub fn failed(status: Status, attempts: u32, error: impl Into<String>) -> Self {
        FileOutcome {
            status,
            path: None,
            bytes: None,
            etag: None,
            md5: None,
            verified: None,
            decoded: false,
            attempts,
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
}

/// The report row of one input line; `lookup` tells what became of a file ID.
pub fn row(l: &InputLine, lookup: &dyn Fn(&str) -> Option<FileOutcome>) -> ReportRow {
    let mut row = ReportRow {
        line: l.line,
        input: l.input.clone(),
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
    };
    match &l.entry {
        Entry::Invalid { reason } => row.error = Some(reason.clone()),
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
                }
                None => {
                    row.status = Status::Cancelled;
                    row.error = Some("not started: the job stopped first".into());
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
    }
    std::fs::rename(&tmp, path)
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
        "attempts", "error",
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
                r.input,
                r.file_id.unwrap_or_default(),
                r.status.as_str().to_string(),
                r.path.unwrap_or_default(),
                r.bytes.map(|b| b.to_string()).unwrap_or_default(),
                r.etag.unwrap_or_default(),
                r.md5.unwrap_or_default(),
                r.verified
                    .map(|v| v.as_str().to_string())
                    .unwrap_or_default(),
                r.decoded.to_string(),
                r.attempts.to_string(),
                r.error.unwrap_or_default(),
            ])?;
        }
        out.write_all(b"\n  ]\n}\n")
    })?;
    csv_out.flush()?;
    drop(csv_out);
    std::fs::rename(&csv_tmp, csv_path(json))
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
