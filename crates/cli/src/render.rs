//! Shows job events: a progress bar on a terminal, plain lines otherwise.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::time::{Duration, Instant};
use tdp_engine::job::events::JobState;
use tdp_engine::size::human;
use tdp_engine::{Event, EventReceiver};

const BATCH: usize = 1024;
const BATCH_PAUSE: Duration = Duration::from_millis(20);

pub async fn render(mut rx: EventReceiver, terminal: bool, quiet: bool, count: bool) {
    let bar = if terminal && !quiet {
        let b = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr_with_hz(10));
        b.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Some(b)
    } else {
        None
    };
    let mut last_line = Instant::now();
    let mut total_files = 0;
    let mut waiting = false;
    let started = Instant::now();
    let (mut events, mut progress) = (0u64, 0u64);
    // Progress events in the busiest second.
    let (mut second, mut in_second, mut max_per_second) = (0u64, 0u64, 0u64);
    let mut batch = Vec::with_capacity(BATCH);
    'events: while rx.recv_many(&mut batch, BATCH).await > 0 {
        for ev in batch.drain(..) {
            events += 1;
            if matches!(ev, Event::Progress { .. }) {
                progress += 1;
                let now = started.elapsed().as_secs();
                if now != second {
                    second = now;
                    in_second = 0;
                }
                in_second += 1;
                max_per_second = max_per_second.max(in_second);
            }
            match ev {
                Event::JobStarted { files, .. } => {
                    total_files = files;
                    if let Some(b) = &bar {
                        b.set_length(files as u64);
                    }
                }
                Event::Progress {
                    files_done,
                    files_total,
                    bytes_done,
                    bytes_per_second,
                    ..
                } => {
                    let msg = format!(
                        "{files_done}/{files_total} files, {}, {}/s",
                        human(bytes_done),
                        human(bytes_per_second as u64)
                    );
                    match &bar {
                        Some(b) => {
                            b.set_position(files_done as u64);
                            b.set_message(msg);
                        }
                        None if !quiet && last_line.elapsed() >= Duration::from_secs(2) => {
                            last_line = Instant::now();
                            eprintln!("progress: {msg}");
                        }
                        None => {}
                    }
                }
                Event::Listing { full, since } if !quiet => {
                    let line = match (full, since) {
                    (_, Some(since)) => format!(
                        "sync: listing the files indexed since {since} (the last sync less the overlap; --full lists every one)"
                    ),
                    (Some(why), _) => format!("search: listing every file ({why})"),
                    (None, None) => continue,
                };
                    match &bar {
                        Some(b) => b.println(line),
                        None => eprintln!("{line}"),
                    }
                }
                Event::FilesFound {
                    files,
                    bytes,
                    excluded,
                    complete,
                    ..
                } => {
                    total_files = files;
                    if let Some(b) = &bar {
                        b.set_length(files as u64);
                    }
                    if complete && !quiet {
                        let line = format!(
                            "search: {files} files found ({}){}",
                            human(bytes),
                            if excluded > 0 {
                                format!(
                                    ", {excluded} left out (deleted or outdated: see the report)"
                                )
                            } else {
                                String::new()
                            }
                        );
                        match &bar {
                            Some(b) => b.println(line),
                            None => eprintln!("{line}"),
                        }
                    }
                }
                Event::FileFailed {
                    file_id,
                    kind,
                    reason,
                } => {
                    let line = format!("failed {file_id}: {reason} [{kind}]");
                    match &bar {
                        Some(b) => b.println(line),
                        None => eprintln!("{line}"),
                    }
                }
                Event::FileDone {
                    path,
                    bytes,
                    verified,
                    ..
                } if bar.is_none() && !quiet => {
                    eprintln!(
                        "downloaded {path} ({}, verified by {verified})",
                        human(bytes)
                    );
                }
                Event::FileSkipped { path, reason, .. } if bar.is_none() && !quiet => {
                    eprintln!("skipped {path}: {reason}");
                }
                Event::FileRetrying {
                    file_id, reason, ..
                } if bar.is_none() && !quiet => {
                    eprintln!("retrying {file_id}: {reason}");
                }
                Event::JobState { state } => {
                    let line = match state {
                        JobState::WaitingForNetwork => {
                            waiting = true;
                            "waiting for the network: TDP and storage do not answer; the job goes on by itself when they do"
                        }
                        JobState::Running if waiting => {
                            waiting = false;
                            "the network is back: going on"
                        }
                        JobState::Paused => "paused",
                        // The CLI stops instead (exit 2, kind auth); a library caller may wait.
                        JobState::WaitingForToken => "waiting for a new token",
                        // Ctrl-C says so itself; an error that stops the job is printed at the end.
                        JobState::Running | JobState::Stopping => continue,
                    };
                    match &bar {
                        Some(b) => b.println(line),
                        None => eprintln!("{line}"),
                    }
                }
                Event::Warning { message } => match &bar {
                    Some(b) => b.println(format!("warning: {message}")),
                    None => eprintln!("warning: {message}"),
                },
                Event::JobFinished { .. } => break 'events,
                _ => {}
            }
        }
        // Small files send thousands of events a second: taken a batch at a time, this task
        // wakes some 50 times a second instead of once per event.
        tokio::time::sleep(BATCH_PAUSE).await;
    }
    let _ = total_files;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if count {
        eprintln!(
            "events: {events} in {:.1} s, {progress} progress (at most {max_per_second} in one second)",
            started.elapsed().as_secs_f64()
        );
    }
}
