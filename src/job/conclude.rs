//! The end of a job: its summary, its report on disk, and the problems to show.

use crate::error::ErrorKind;
use crate::input::{Entry, InputLine, ParsedIds};
use crate::job::context::Ctx;
use crate::job::error::JobError;
use crate::job::events::Summary;
use crate::job::paging::Found;
use crate::job::report::{self, FileOutcome, Status};
use crate::tdp::files::Files;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

pub const MAX_PROBLEMS: usize = 1000;
/// What the job keeps of a finished file: the rest is in the state journal.
pub(crate) struct Kept {
    pub status: Status,
    pub attempts: u32,
    pub kind: Option<ErrorKind>,
    pub error: Option<Box<str>>,
}

/// What a finished (or stopped) job produced.
#[derive(Debug, Clone)]
pub struct JobResult {
    pub summary: Summary,
    /// Report rows of failed and invalid lines (at most [`MAX_PROBLEMS`]); every row is in
    /// the report on disk.
    pub problems: Vec<report::ReportRow>,
    /// Set when the job stopped because of an error that concerns every file.
    pub fatal: Option<JobError>,
    pub cancelled: bool,
    pub report_path: PathBuf,
    pub report_error: Option<String>,
}

/// What `conclude` needs of a job whose transfers are over.
pub(crate) struct Ended<'a> {
    pub files_in: Files<'a>,
    pub input: &'a ParsedIds,
    pub started: Instant,
    pub cancelled: bool,
    pub report_path: PathBuf,
    pub outcomes: HashMap<u128, Kept>,
    pub found: &'a Found,
}

/// The job's summary, its report on disk and the problems to show, from what each file's
/// task ended with (the details are in the journal).
pub(crate) fn conclude(ctx: &Ctx, end: Ended<'_>) -> JobResult {
    let Ended {
        files_in,
        input,
        started,
        cancelled,
        report_path,
        outcomes,
        found,
    } = end;
    let counts = input.counts();
    let num = |id: &str| uuid::Uuid::try_parse(id).map(|u| u.as_u128()).unwrap_or(0);
    let fatal = ctx.fatal.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut summary = Summary {
        total_lines: input.total(),
        valid: counts.valid,
        invalid: counts.invalid,
        duplicates: counts.duplicates,
        seconds: started.elapsed().as_secs_f64(),
        stopped: fatal
            .as_ref()
            .map(|f| f.to_string())
            .or_else(|| cancelled.then(|| "cancelled".to_string())),
        stop_kind: fatal
            .as_ref()
            .map(JobError::kind)
            .or_else(|| cancelled.then_some(ErrorKind::Cancelled)),
        report: Some(report_path.to_string_lossy().into_owned()),
        ..Summary::default()
    };
    let stopped_by = summary.stop_kind.unwrap_or(ErrorKind::Cancelled);
    for o in outcomes.values() {
        match o.status {
            Status::Downloaded => summary.downloaded += 1,
            Status::Skipped => summary.skipped += 1,
            Status::Failed => summary.failed += 1,
            _ => summary.cancelled += 1,
        }
    }
    if let Files::Search(_) = files_in {
        summary.total_lines = found.order.len();
        summary.valid = found.files;
        summary.excluded = found.excluded.len();
        summary.cancelled += found.files.saturating_sub(outcomes.len());
    } else {
        summary.cancelled += counts.valid.saturating_sub(outcomes.len());
    }
    // A file's details live in the journal; the job kept only its status and error.
    let lookup = |id: &str| -> Option<FileOutcome> {
        let kept = outcomes.get(&num(id))?;
        let done = match kept.status {
            Status::Downloaded | Status::Skipped => ctx.store().file(id).done,
            _ => None,
        };
        Some(FileOutcome {
            status: kept.status,
            path: done.as_ref().map(|d| d.path.clone()),
            bytes: done.as_ref().map(|d| d.bytes),
            etag: done.as_ref().and_then(|d| d.etag.clone()),
            md5: done.as_ref().and_then(|d| d.md5.clone()),
            verified: done.as_ref().map(|d| d.verified),
            decoded: done.as_ref().is_some_and(|d| d.decoded),
            attempts: kept.attempts,
            kind: kept.kind,
            error: kept.error.as_deref().map(str::to_string),
        })
    };
    for (id, o) in &outcomes {
        if o.status == Status::Downloaded {
            let id = uuid::Uuid::from_u128(*id).hyphenated().to_string();
            summary.bytes += ctx.store().file(&id).done.map(|d| d.bytes).unwrap_or(0);
        }
    }
    let lookup = |id: &str| -> Option<FileOutcome> {
        match found.excluded.get(&num(id)) {
            Some(why) => Some(FileOutcome {
                error: Some(why.reason().to_string()),
                kind: None,
                ..FileOutcome::failed(Status::Excluded, 0, ErrorKind::Input, "")
            }),
            None => lookup(id),
        }
    };
    // A search job's lines are its hits, in the order found.
    let hit_lines = || {
        found.order.iter().enumerate().map(|(i, key)| {
            let id = uuid::Uuid::from_u128(*key).hyphenated().to_string();
            InputLine {
                line: i + 1,
                input: id.clone(),
                entry: Entry::Valid { id },
            }
        })
    };
    let lines = || -> Box<dyn Iterator<Item = InputLine> + '_> {
        match files_in {
            Files::Ids(input) => Box::new(input.lines()),
            Files::Search(_) => Box::new(hit_lines()),
        }
    };
    let problems: Vec<report::ReportRow> = lines()
        .map(|l| report::row(&l, &lookup, stopped_by))
        .filter(|r| matches!(r.status, Status::Failed | Status::Invalid))
        .take(MAX_PROBLEMS)
        .collect();
    // Written here, not on a blocking thread: the transfers are over, and the rows are made
    // one at a time from the input so that a large job never holds them all.
    let mut rows = lines().map(|l| report::row(&l, &lookup, stopped_by));
    let report_error = report::write(&report_path, &summary, &mut rows)
        .err()
        .map(|e| format!("could not write the report {}: {e}", report_path.display()));
    JobResult {
        summary,
        problems,
        fatal,
        cancelled,
        report_path,
        report_error,
    }
}
