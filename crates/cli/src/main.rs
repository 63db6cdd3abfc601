//! `tdp-download`: bulk download of TDP files from the command line, on the same engine as
//! the desktop app.

mod doctor_cmd;
mod render;
mod sim_cmd;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use render::render;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};
use tdp_engine::job::manifest::Manifest;
use tdp_engine::session::keys;
use tdp_engine::size::human;
use tdp_engine::tdp::client::normalise_base_url;
use tdp_engine::{
    CancellationToken, ErrorKind, EventSender, JobConfig, JobFiles, Layout, ParsedIds, Scope,
    Search, Token,
};

/// Downloads many files from the TetraScience Data Platform data lake: resumable, verified,
/// with a report of every input line.
///
/// The token comes from TDP_TOKEN, else from the OS keychain entry the desktop app saves
/// (service tdp-bulk-downloader, account <org>@<api host>). It is never taken from the command
/// line, where other users could see it.
///
/// Exit codes: 0 every valid ID is in place and no line was invalid; 1 some files failed or
/// some lines were invalid; 2 usage, configuration or authentication error, or the job could
/// not go on (destination not writable, disk full, an untrusted certificate, a proxy that
/// refuses); 130 interrupted (a rerun resumes).
/// The report's `kind` column says what kind of error each failed line met.
#[derive(Debug, Parser)]
#[command(name = "tdp-download", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    download: DownloadArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a local TDP + S3 simulator to try the tool without a TDP account.
    Sim(sim_cmd::SimArgs),
    /// Check the connection to TDP (and, given a file ID, its storage) layer by layer: one
    /// line per check with the fix; safe to paste into a support ticket. Exit 0 when all pass.
    Doctor(doctor_cmd::DoctorArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LayoutArg {
    /// Every file in the destination; same names get a suffix from the file ID.
    Flat,
    /// The object key's folders below the destination.
    Mirror,
}

#[derive(Debug, Args)]
struct DownloadArgs {
    /// TDP API base URL, e.g. https://api.tetrascience.com (with or without /v1).
    #[arg(long, value_name = "URL")]
    base_url: Option<String>,
    /// Organisation slug (sent as x-org-slug).
    #[arg(long, value_name = "SLUG")]
    org: Option<String>,
    /// Destination folder.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Finish the job whose destination is DIR: its base URL, org, IDs, layout and options
    /// come from DIR/.tdp-download/job.json; tuning flags given here override them.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["base_url", "org", "out", "ids", "id_args", "layout", "search", "eql"])]
    resume: Option<PathBuf>,
    /// File of IDs (.txt or .csv with a fileId column), or - for standard input.
    #[arg(long, value_name = "FILE|-")]
    ids: Option<String>,
    /// File IDs (separated by spaces, commas or semicolons).
    #[arg(value_name = "ID")]
    id_args: Vec<String>,
    /// Download the files a TDP fileinfo search finds, e.g.
    /// 'category=RAW&tags=hplc&metadata.project=P-1&fromDate=2025-01-01'. Parameters:
    /// category, sourceType, sourceId, tags, excludeTags, metadata.<key>, fromDate, toDate,
    /// pipelineId, workflowId, rawFileId, traceId, integrationId, integrationType, ids (the
    /// IDS schema); any other is an error. Pages past 10,000 hits.
    #[arg(long, value_name = "QUERY", conflicts_with_all = ["ids", "id_args", "eql"])]
    search: Option<String>,
    /// Download the files an EQL search finds: FILE holds a JSON body for
    /// /v1/datalake/searchEql whose "query" is kept (size, sort and paging are the tool's).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["ids", "id_args"])]
    eql: Option<PathBuf>,
    /// With a search: download outdated versions too (left out by default; deleted files
    /// always are). The report lists what was left out as `excluded`.
    #[arg(long)]
    include_outdated: bool,
    /// With a search: page through it and print what it would download ("1,234 files,
    /// 56.7 GiB, 12 already in this folder"); download nothing; exit 0.
    #[arg(long)]
    dry_run: bool,
    /// With a search: start even if the files found need more than the free space.
    #[arg(long)]
    no_space_check: bool,
    /// With a search: take only shard I of N of its hits (by file ID), with a state folder
    /// and report of its own, so that N machines can share one sync. `auto` reads a Kubernetes
    /// Indexed Job (JOB_COMPLETION_INDEX; the count from auto/N or JOB_COMPLETIONS) or a Slurm
    /// job array (SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT).
    #[arg(long, value_name = "I/N|auto|auto/N")]
    shard: Option<String>,
    /// With an EQL search run again into the same folder (a sync): list every hit, not only
    /// those indexed since the last sync less the overlap.
    #[arg(long)]
    full: bool,
    /// A sync lists the files indexed since the last sync less this many seconds, to catch
    /// files indexed late.
    #[arg(long, default_value_t = JobConfig::DEFAULT_SYNC_OVERLAP_SECS, value_name = "SECS")]
    sync_overlap: u64,
    /// Every N-th sync lists in full (files indexed later than the overlap are found then).
    #[arg(long, default_value_t = JobConfig::DEFAULT_FULL_EVERY, value_name = "N")]
    full_every: u32,
    /// Simultaneous S3 connections.
    #[arg(long, default_value_t = JobConfig::DEFAULT_CONCURRENCY, value_name = "N")]
    concurrency: usize,
    /// Most URL look-ups in flight (adapts down when TDP throttles).
    #[arg(long, default_value_t = JobConfig::DEFAULT_API_CONCURRENCY, value_name = "N")]
    api_concurrency: usize,
    #[arg(long, value_enum, default_value = "flat")]
    layout: LayoutArg,
    /// JSON report path; a CSV with the same stem is written beside it
    /// [default: <DIR>/tdp-download-report.json].
    #[arg(long, value_name = "PATH")]
    report: Option<PathBuf>,
    /// Print only failures and the summary.
    #[arg(long, short)]
    quiet: bool,
    /// Seconds without data before a connection counts as stalled.
    #[arg(long, default_value_t = JobConfig::DEFAULT_READ_TIMEOUT_SECS, value_name = "SECS")]
    read_timeout: u64,
    /// Seconds to wait for a lost network (TDP and storage not answering) before stopping;
    /// nothing is charged to any file meanwhile, and a rerun resumes.
    #[arg(long, default_value_t = JobConfig::DEFAULT_NETWORK_PATIENCE_SECS, value_name = "SECS")]
    network_patience: u64,
    /// A CA certificate file (PEM) to trust besides the OS store and the bundled roots, e.g.
    /// your company's TLS-inspection CA; may be given more than once.
    #[arg(long, value_name = "PEM")]
    ca_cert: Vec<PathBuf>,
    /// A proxy for TDP and storage, e.g. http://proxy.example.com:3128 or
    /// http://USER@proxy:3128 with the password in TDP_PROXY_PASSWORD (or the keychain entry
    /// the app saves for that address). Without it,
    /// HTTPS_PROXY, HTTP_PROXY, NO_PROXY and the system's proxy settings apply.
    #[arg(long, value_name = "URL")]
    proxy: Option<String>,
    /// Let the computer sleep during the download (by default it is kept awake while the job
    /// runs, and allowed to sleep while it waits for the network).
    #[arg(long)]
    allow_sleep: bool,
    /// Limit the download rate over all connections, e.g. 5MB (per second), 500KB, 2MiB.
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    limit_rate: Option<u64>,
    /// Attempts in a row without progress before a file fails.
    #[arg(long, default_value_t = JobConfig::DEFAULT_RETRIES, value_name = "N")]
    retries: u32,
    /// Print event counts at the end (for the benchmark, tdp-bench).
    #[arg(long, hide = true)]
    count_events: bool,
}

/// A rate as people write it: a size per second (`5MB`, `5MB/s`, `500k`); at least 1 KB/s.
fn parse_rate(s: &str) -> Result<u64, String> {
    let size = s.trim().trim_end_matches("/s").trim_end_matches("ps");
    match tdp_engine::size::parse_size(size)? {
        r if r >= 1000 => Ok(r),
        _ => Err(format!("{s:?} is below 1 KB per second")),
    }
}

fn usage_error(msg: &str) -> ExitCode {
    eprintln!("error: {msg}\n\nFor more information, try '--help'.");
    ExitCode::from(2)
}

/// glibc raises its mmap threshold after the first large free, after which the many 100 KiB+
/// buffers that move between I/O threads fragment per-thread arenas and RSS creeps up with
/// the bytes moved. A fixed threshold and few arenas keep memory bounded by concurrency.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, 4);
    }
}

fn main() -> ExitCode {
    tune_allocator();
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TDP_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(async move {
        match cli.command {
            Some(Command::Sim(args)) => match sim_cmd::run(args).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => usage_error(&e),
            },
            Some(Command::Doctor(args)) => doctor_cmd::run(args).await,
            None => download(cli.download, &matches).await,
        }
    })
}

fn read_ids(args: &DownloadArgs) -> Result<ParsedIds, String> {
    let mut parsed = ParsedIds::default();
    if let Some(src) = &args.ids {
        let (bytes, name) = if src == "-" {
            let mut b = Vec::new();
            std::io::stdin()
                .read_to_end(&mut b)
                .map_err(|e| format!("cannot read IDs from standard input: {e}"))?;
            (b, "standard input")
        } else {
            let b =
                std::fs::read(src).map_err(|e| format!("cannot read the ID file {src}: {e}"))?;
            (b, src.as_str())
        };
        let text = tdp_engine::input::decode_text(bytes, name)?;
        parsed = tdp_engine::input::parse_text(text);
    }
    if !args.id_args.is_empty() {
        let next = parsed.next_line();
        parsed = parsed.merge(tdp_engine::parse_args(&args.id_args, next));
    }
    if parsed.is_empty() {
        return Err(
            "no file IDs given: use --ids FILE, --ids - (standard input) or list IDs as arguments"
                .into(),
        );
    }
    Ok(parsed)
}

fn token_for(base_url: &str, org: &str) -> Result<Token, String> {
    if let Ok(t) = std::env::var("TDP_TOKEN") {
        if !t.trim().is_empty() {
            return Ok(Token::new(t));
        }
    }
    let account = keys::token_account(base_url, org).map_err(|e| e.to_string())?;
    match keys::saved(&account) {
        Ok(Some(t)) => Ok(t),
        Ok(None) => Err(format!(
            "no auth token: set TDP_TOKEN, or save the token for {account} with the desktop app (\"Remember in keychain\")"
        )),
        Err(e) => Err(format!("no auth token: TDP_TOKEN is not set and {e}")),
    }
}

/// The explicit proxy's password: TDP_PROXY_PASSWORD, else the keychain entry the app saves
/// for that proxy address. Never from the command line.
fn proxy_password(proxy: Option<&str>) -> Option<Token> {
    if let Ok(p) = std::env::var("TDP_PROXY_PASSWORD") {
        return Some(Token::new(p));
    }
    match keys::saved(&keys::proxy_account(proxy)?) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!("no proxy password from the keychain: {e}");
            None
        }
    }
}

fn read_search(args: &DownloadArgs) -> Result<Option<Search>, String> {
    if let Some(q) = &args.search {
        return Search::parse_query(q).map(Some).map_err(|e| e.to_string());
    }
    if let Some(path) = &args.eql {
        let bytes = std::fs::read(path)
            .map_err(|e| format!("cannot read the EQL file {}: {e}", path.display()))?;
        let text = tdp_engine::input::decode_text(bytes, &path.to_string_lossy())?;
        return Search::parse_eql(&text)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display()));
    }
    Ok(None)
}

/// The job the command line asks for: a new one from the flags, or the one recorded in a
/// folder (`--resume`), with the tuning flags given here on top.
fn job_of(args: &DownloadArgs, matches: &ArgMatches) -> Result<(JobConfig, JobFiles), String> {
    let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    let shard = args.shard.as_deref().map(shard_of).transpose()?;
    let (mut cfg, input) = match &args.resume {
        Some(dir) => {
            let manifest = Manifest::read_shard(dir, shard).map_err(|e| e.to_string())?;
            let dest = match dir.file_name() {
                Some(n) if n == tdp_engine::store::state::STATE_DIR => {
                    dir.parent().unwrap_or(dir).to_path_buf()
                }
                _ => dir.clone(),
            };
            (manifest.config(&dest), manifest.files())
        }
        None => {
            let (Some(base_url), Some(org), Some(out)) = (&args.base_url, &args.org, &args.out)
            else {
                return Err("--base-url, --org and --out are required to download (or --resume DIR to finish a job; or try it on the simulator: tdp-download sim)".into());
            };
            let mut cfg = JobConfig::new(base_url, org, out);
            cfg.layout = match args.layout {
                LayoutArg::Flat => Layout::Flat,
                LayoutArg::Mirror => Layout::Mirror,
            };
            let source = match read_search(args)? {
                Some(search) => JobFiles::Search(search),
                None => JobFiles::Ids(read_ids(args)?),
            };
            (cfg, source)
        }
    };
    let search_only = args.dry_run
        || args.include_outdated
        || args.no_space_check
        || shard.is_some()
        || args.full;
    if search_only && !matches!(input, JobFiles::Search(_)) {
        return Err("--dry-run, --include-outdated, --no-space-check, --shard and --full go with --search or --eql".into());
    }
    if args.include_outdated {
        cfg.include_outdated = true;
    }
    cfg.space_check = !args.no_space_check;
    let fresh = args.resume.is_none();
    if shard.is_some() {
        cfg.shard = shard;
    }
    cfg.full_listing = args.full;
    if fresh || given("sync_overlap") {
        cfg.sync_overlap = Duration::from_secs(args.sync_overlap);
    }
    if fresh || given("full_every") {
        cfg.full_every = args.full_every.max(1);
    }
    if fresh || given("concurrency") {
        cfg.concurrency = args.concurrency;
    }
    if fresh || given("api_concurrency") {
        cfg.api_concurrency = args.api_concurrency;
    }
    if fresh || given("report") {
        cfg.report = args.report.clone();
    }
    if fresh || given("read_timeout") {
        cfg.read_timeout = Duration::from_secs(args.read_timeout.max(1));
    }
    if fresh || given("retries") {
        cfg.retry.budget = args.retries.max(1);
    }
    if fresh || given("network_patience") {
        cfg.network_patience = Duration::from_secs(args.network_patience.max(1));
    }
    if fresh || given("ca_cert") {
        cfg.network.ca_certs = args.ca_cert.clone();
    }
    if fresh || given("proxy") {
        cfg.network.proxy = args.proxy.clone();
    }
    cfg.keep_awake = !args.allow_sleep;
    cfg.limit_rate = args.limit_rate;
    if cfg.concurrency == 0 || cfg.api_concurrency == 0 {
        return Err("--concurrency and --api-concurrency must be at least 1".into());
    }
    normalise_base_url(&cfg.base_url).map_err(|e| e.to_string())?;
    Ok((cfg, input))
}

/// `--shard I/N`, `auto` or `auto/N`.
fn shard_of(text: &str) -> Result<tdp_engine::job::shard::Shard, String> {
    use tdp_engine::job::shard::Shard;
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    match text.trim() {
        "auto" => Shard::from_env(env, None),
        t => match t.strip_prefix("auto/") {
            Some(n) => {
                let n = n
                    .parse::<u32>()
                    .map_err(|_| format!("{t:?}: the count after auto/ must be a number"))?;
                Shard::from_env(env, Some(n))
            }
            None => Shard::parse(t),
        },
    }
}

/// `--dry-run`: the preview line on standard output, nothing downloaded.
async fn dry_run(cfg: &JobConfig, token: Token, search: &Search, quiet: bool) -> ExitCode {
    let terminal = std::io::stderr().is_terminal() && !quiet;
    let mut last = std::time::Instant::now();
    let result = tdp_engine::session::preview::preview(cfg, token, search, |p| {
        if terminal && last.elapsed() >= Duration::from_millis(500) {
            last = std::time::Instant::now();
            eprint!(
                "\rsearching: {} files so far...",
                tdp_engine::session::preview::thousands(p.files)
            );
        }
    })
    .await;
    if terminal {
        eprint!("\r\x1b[K");
    }
    match result {
        Ok(p) => {
            println!("{}", p.line());
            if cfg.space_check {
                // The folder may not exist yet: the disk it will be on.
                let on = cfg
                    .dest
                    .ancestors()
                    .find(|a| a.exists())
                    .unwrap_or(&cfg.dest);
                if let Ok(free) = fs4::available_space(on) {
                    if p.to_fetch() > free {
                        eprintln!(
                            "warning: that needs {} and {} has {} free",
                            human(p.to_fetch()),
                            cfg.dest.display(),
                            human(free)
                        );
                    }
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.kind().exit_code(Scope::Job))
        }
    }
}

async fn download(args: DownloadArgs, matches: &ArgMatches) -> ExitCode {
    let (mut cfg, input) = match job_of(&args, matches) {
        Ok(j) => j,
        Err(e) => return usage_error(&e),
    };
    let token = match token_for(&cfg.base_url, &cfg.org) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = token.check() {
        eprintln!("error: {e}");
        return ExitCode::from(e.kind().exit_code(Scope::Job));
    }
    cfg.network.proxy_password = proxy_password(cfg.network.proxy.as_deref());
    if let (true, JobFiles::Search(search)) = (args.dry_run, &input) {
        return dry_run(&cfg, token, search, args.quiet).await;
    }
    // A token that runs out mid-job stops it; better to know before it starts. A search's
    // files are not known before it pages: the outlook then takes the rate alone.
    let files = input.known();
    let report = cfg.report_path();
    let last_rate = || tdp_engine::session::expiry::rate_of_report(&report);
    if let Some(w) =
        tdp_engine::session::expiry::warning(&token, files, last_rate, SystemTime::now())
    {
        eprintln!(
            "warning: {w}; a job that outlasts it stops, and the same command with a fresh token resumes it"
        );
    }

    let (tx, rx) = EventSender::channel();
    let terminal = std::io::stderr().is_terminal();
    let renderer = tokio::spawn(render(rx, terminal, args.quiet, args.count_events));
    let cancel = CancellationToken::new();
    let on_ctrl_c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\ninterrupted: finishing writes and saving state (a rerun resumes)...");
            on_ctrl_c.cancel();
        }
    });
    let control = tdp_engine::JobControl::with_cancel(cancel);
    let result = tdp_engine::run_job(cfg, token, &input, tx, control).await;
    let _ = renderer.await;
    let result = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(e.kind().exit_code(Scope::Job));
        }
    };
    let s = &result.summary;
    for row in &result.problems {
        eprintln!(
            "  line {}: {} {}: {}{}",
            row.line,
            row.status.as_str(),
            row.input,
            row.error.as_deref().unwrap_or(""),
            row.kind.map(|k| format!(" [{k}]")).unwrap_or_default()
        );
    }
    let listed = result.problems.len();
    if listed < s.failed + s.invalid {
        eprintln!(
            "  ... and {} more: see the report",
            s.failed + s.invalid - listed
        );
    }
    let rate = if s.seconds > 0.0 {
        s.bytes as f64 / s.seconds
    } else {
        0.0
    };
    eprintln!(
        "{} downloaded, {} skipped, {} failed, {} invalid, {} duplicate lines{}{} — {} in {:.1} s ({}/s)",
        s.downloaded,
        s.skipped,
        s.failed,
        s.invalid,
        s.duplicates,
        if s.excluded > 0 { format!(", {} excluded", s.excluded) } else { String::new() },
        if s.cancelled > 0 { format!(", {} not finished", s.cancelled) } else { String::new() },
        human(s.bytes),
        s.seconds,
        human(rate as u64)
    );
    match &result.report_error {
        Some(e) => eprintln!("warning: {e}"),
        None => eprintln!("report: {}", result.report_path.display()),
    }
    if let Some(fatal) = &result.fatal {
        eprintln!("error: {fatal}");
        return ExitCode::from(fatal.kind().exit_code(Scope::Job));
    }
    if result.cancelled {
        return ExitCode::from(ErrorKind::Cancelled.exit_code(Scope::Job));
    }
    // From the rows: a file that is not in place (failed or left unfinished) is never exit 0.
    if s.failed > 0 || s.cancelled > 0 || s.invalid > 0 || result.report_error.is_some() {
        // Some file failed or some line was invalid: each row says its kind.
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
