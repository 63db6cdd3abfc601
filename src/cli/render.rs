//! Shows job events: a progress bar on a terminal, plain lines otherwise.

use super::size::human;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::time::{Duration, Instant};
use tdp_engine::{Event, EventReceiver};

pub async fn render(mut rx: EventReceiver, terminal: bool, quiet: bool) {
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
    while let Some(ev) = rx.recv().await {
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
            Event::FileFailed { file_id, reason } => {
                let line = format!("failed {file_id}: {reason}");
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
            Event::JobFinished { .. } => break,
            _ => {}
        }
    }
    let _ = total_files;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
}
