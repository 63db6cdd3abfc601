//! Helpers shared by the integration tests: a simulator per test, jobs run in process, and
//! checks of bytes on disk.

use md5::{Digest, Md5};
use std::path::Path;
use std::time::Duration;
use tdp_engine::job::report::{ReportRow, Status};
use tdp_engine::retry::RetryPolicy;
use tdp_engine::{CancellationToken, Event, EventSender, JobConfig, JobResult, ParsedIds, Token};
use tdp_sim::{content, SimConfig, SimFile, Simulator};

pub async fn start(files: Vec<SimFile>, tweak: impl FnOnce(&mut SimConfig)) -> Simulator {
    let mut cfg = SimConfig::new(files);
    tweak(&mut cfg);
    Simulator::start(cfg).await.expect("simulator starts")
}

/// A job config for tests: quick retries, short stall detection.
pub fn config(sim: &Simulator, dest: &Path) -> JobConfig {
    let mut cfg = JobConfig::new(&sim.base_url(), sim.org(), dest);
    cfg.retry = RetryPolicy {
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(300),
        budget: 8,
        max_retry_after: Duration::from_secs(2),
    };
    cfg.read_timeout = Duration::from_secs(2);
    // The sleep inhibitor has its own test (awake.rs), on a bus of its own.
    cfg.keep_awake = false;
    cfg
}

pub fn ids_of(files: &[SimFile]) -> ParsedIds {
    let text: String = files.iter().map(|f| format!("{}\n", f.id)).collect();
    tdp_engine::parse_ids(&text)
}

/// A finished job and the rows of the report it wrote to disk.
pub struct Finished {
    pub rows: Vec<ReportRow>,
    pub result: JobResult,
}

impl std::ops::Deref for Finished {
    type Target = JobResult;
    fn deref(&self) -> &JobResult {
        &self.result
    }
}

/// An event sender, and the task that gathers everything sent until the job drops it.
fn collected() -> (EventSender, tokio::task::JoinHandle<Vec<Event>>) {
    let (tx, mut rx) = EventSender::channel();
    let collector = tokio::spawn(async move {
        let mut v = Vec::new();
        while let Some(e) = rx.recv().await {
            v.push(e);
        }
        v
    });
    (tx, collector)
}

pub async fn run(cfg: JobConfig, token: &str, input: &ParsedIds) -> (Finished, Vec<Event>) {
    run_cancellable(cfg, token, input, CancellationToken::new()).await
}

pub async fn run_cancellable(
    cfg: JobConfig,
    token: &str,
    input: &ParsedIds,
    cancel: CancellationToken,
) -> (Finished, Vec<Event>) {
    let (tx, collector) = collected();
    let result = tdp_engine::run(cfg, Token::new(token), input, tx, cancel)
        .await
        .expect("job starts");
    let events = collector.await.expect("collector");
    let rows = tdp_engine::job::report::read(&result.report_path).expect("the report is on disk");
    assert_kinds(&rows);
    assert_csv_ends_with_kind(&result.report_path);
    (Finished { rows, result }, events)
}

/// Every failed, invalid or unfinished row says what kind of error it met.
pub fn assert_kinds(rows: &[ReportRow]) {
    for r in rows {
        if matches!(
            r.status,
            Status::Failed | Status::Invalid | Status::Cancelled
        ) {
            assert!(
                r.kind.is_some(),
                "a {:?} row without a kind: {r:?}",
                r.status
            );
        }
    }
}

/// The CSV beside the report keeps its old columns in place and adds `kind` last.
pub fn assert_csv_ends_with_kind(json: &Path) {
    let csv = std::fs::read_to_string(tdp_engine::job::report::csv_path(json)).expect("the CSV");
    let header = csv.lines().next().unwrap_or("");
    assert_eq!(
        header,
        "line,input,fileId,status,path,bytes,etag,md5,verified,decoded,attempts,error,kind"
    );
}

pub fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

/// The MD5 of what a file must hold on disk (the original, decoded content).
pub fn expected_md5(f: &SimFile) -> String {
    hex::encode(content::md5_of(f.content_seed(), f.size))
}

pub fn md5_of_file(path: &Path) -> String {
    let mut h = Md5::new();
    let mut file =
        std::fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    std::io::copy(&mut file, &mut h).expect("read");
    hex::encode(h.finalize())
}

/// The job's state changes, in order.
pub fn job_states(events: &[Event]) -> Vec<tdp_engine::job::events::JobState> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::JobState { state } => Some(*state),
            _ => None,
        })
        .collect()
}

pub fn row_for<'a>(rows: &'a [ReportRow], id: &str) -> &'a ReportRow {
    rows.iter()
        .find(|r| r.file_id.as_deref() == Some(id) && r.status != Status::Duplicate)
        .unwrap_or_else(|| panic!("no report row for {id}"))
}

/// Every file of `files` is on disk at its reported path with the right bytes.
pub fn assert_all_landed(dest: &Path, rows: &[ReportRow], files: &[SimFile]) {
    for f in files {
        let row = row_for(rows, &f.id);
        assert!(
            matches!(row.status, Status::Downloaded | Status::Skipped),
            "{} ({}) is {:?}: {:?}",
            f.id,
            f.key,
            row.status,
            row.error
        );
        let rel = row.path.as_deref().expect("a path");
        let path = dest.join(rel);
        assert_eq!(
            md5_of_file(&path),
            expected_md5(f),
            "bytes of {rel} ({})",
            f.key
        );
    }
}

/// No `.part` is left for a file that is complete, and none lies outside the state folder.
pub fn assert_no_partials(dest: &Path, rows: &[ReportRow]) {
    for r in rows {
        if r.status == Status::Downloaded || r.status == Status::Skipped {
            let id = r.file_id.as_deref().unwrap_or("");
            assert!(
                !dest
                    .join(".tdp-download")
                    .join(format!("{id}.part"))
                    .exists(),
                "a .part is left for completed {id}"
            );
        }
    }
}

pub fn valid_ids(input: &ParsedIds) -> Vec<String> {
    input.unique_ids()
}

/// A search job run in process, with its events and report.
pub async fn run_search(
    cfg: JobConfig,
    token: &str,
    search: &tdp_engine::Search,
) -> (Finished, Vec<Event>) {
    let (tx, collector) = collected();
    let result = tdp_engine::run_search(
        cfg,
        Token::new(token),
        search,
        tx,
        tdp_engine::JobControl::with_cancel(CancellationToken::new()),
    )
    .await
    .expect("job starts");
    let events = collector.await.expect("collector");
    let rows = tdp_engine::job::report::read(&result.report_path).expect("the report is on disk");
    assert_kinds(&rows);
    (Finished { rows, result }, events)
}

/// A file's pre-signed URL, asked of the API as any client would.
pub async fn presigned(sim: &Simulator, id: &str) -> String {
    let resp = reqwest::Client::new()
        .get(format!(
            "{}/v1/datalake/retrieve?fileId={id}&getPresigned=true",
            sim.base_url()
        ))
        .header("ts-auth-token", sim.token())
        .header("x-org-slug", sim.org())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: serde_json::Value = resp.json().await.unwrap();
    v["url"].as_str().unwrap().to_string()
}
