//! Engine events to the window, coalesced: at most ten batches a second, only the latest
//! progress in each, every final state kept. On the way, the moments a user who looks
//! elsewhere should hear of (`notify`).

use std::time::{Duration, Instant};
use tauri::ipc::Channel;
use tauri::AppHandle;
use tdp_engine::job::events::JobState;
use tdp_engine::{Event, EventReceiver, Summary};

pub type Batch = Vec<serde_json::Value>;

/// A network wait this long is worth a notification.
const LONG_WAIT: Duration = Duration::from_secs(60);

pub async fn forward(mut rx: EventReceiver, channel: Channel<Batch>, app: AppHandle) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut batch: Batch = Vec::new();
    let mut progress: Option<serde_json::Value> = None;
    let mut waiting_since: Option<Instant> = None;
    loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                Some(e @ Event::Progress { .. }) => progress = serde_json::to_value(&e).ok(),
                Some(e) => {
                    match &e {
                        Event::JobState { state } => {
                            waiting_since = (*state == JobState::WaitingForNetwork)
                                .then(Instant::now);
                            if *state == JobState::WaitingForToken {
                                crate::notify::when_away(
                                    &app,
                                    "A download needs a new token".into(),
                                    "TDP no longer accepts the auth token: enter a new one in the window and the download goes on.".into(),
                                );
                            }
                        }
                        Event::JobFinished { summary } => {
                            let (title, body) = finished(summary);
                            crate::notify::when_away(&app, title, body);
                        }
                        _ => {}
                    }
                    let finished = matches!(e, Event::JobFinished { .. });
                    if let Ok(v) = serde_json::to_value(&e) {
                        batch.push(v);
                    }
                    if finished {
                        flush(&channel, &mut batch, &mut progress);
                        return;
                    }
                }
                None => {
                    flush(&channel, &mut batch, &mut progress);
                    return;
                }
            },
            _ = tick.tick() => {
                if waiting_since.is_some_and(|t| t.elapsed() >= LONG_WAIT) {
                    waiting_since = None;
                    crate::notify::when_away(
                        &app,
                        "A download is waiting for the network".into(),
                        "TDP and storage have not answered for a minute; the download goes on by itself when they do.".into(),
                    );
                }
                flush(&channel, &mut batch, &mut progress)
            }
        }
    }
}

/// The notification of a job's end: what happened, in counts.
fn finished(s: &Summary) -> (String, String) {
    let counts = format!(
        "{} downloaded, {} already there, {} failed",
        s.downloaded, s.skipped, s.failed
    );
    match &s.stopped {
        Some(why) if s.stop_kind != Some(tdp_engine::ErrorKind::Cancelled) => {
            ("Download stopped".into(), format!("{counts}. {why}"))
        }
        _ if s.failed > 0 => ("Download finished with failures".into(), counts),
        _ => ("Download finished".into(), counts),
    }
}

fn flush(channel: &Channel<Batch>, batch: &mut Batch, progress: &mut Option<serde_json::Value>) {
    if let Some(p) = progress.take() {
        // Progress goes first: final states that follow it in the batch are newer.
        batch.insert(0, p);
    }
    if !batch.is_empty() {
        // A window that went away does not stop the job.
        let _ = channel.send(std::mem::take(batch));
    }
}
