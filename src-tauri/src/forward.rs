//! Engine events to the window, coalesced: at most ten batches a second, only the latest
//! progress in each, every final state kept. On the way, the moments a user who looks
//! elsewhere should hear of (`notify`).

use serde::Serialize;
use std::time::{Duration, Instant};
use tauri::ipc::Channel;
use tauri::AppHandle;
use tdp_engine::job::events::JobState;
use tdp_engine::{ErrorKind, Event, EventReceiver, Summary};

/// Everything the window hears of a job, as it goes on the wire: each names itself in
/// `type`, as `ui/js/reducer.js` reads it.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum WireEvent {
    /// The engine's own events, in the engine's words.
    Engine(Event),
    /// What the app itself says of a job.
    App(AppEvent),
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum AppEvent {
    /// The job could not start, or ended on an error before it finished.
    JobError { kind: ErrorKind, message: String },
}

pub type Batch = Vec<WireEvent>;

/// A network wait this long is worth a notification.
const LONG_WAIT: Duration = Duration::from_secs(60);

pub async fn forward(mut rx: EventReceiver, channel: Channel<Batch>, app: AppHandle) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut batch: Batch = Vec::new();
    let mut progress: Option<WireEvent> = None;
    let mut waiting_since: Option<Instant> = None;
    loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                Some(e @ Event::Progress { .. }) => progress = Some(WireEvent::Engine(e)),
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
                    batch.push(WireEvent::Engine(e));
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

fn flush(channel: &Channel<Batch>, batch: &mut Batch, progress: &mut Option<WireEvent>) {
    if let Some(p) = progress.take() {
        // Progress goes first: final states that follow it in the batch are newer.
        batch.insert(0, p);
    }
    if !batch.is_empty() {
        // A window that went away does not stop the job.
        let _ = channel.send(std::mem::take(batch));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The window's reducer reads `type` and the fields by these names.
    #[test]
    fn the_wire_names_each_event_by_its_type() {
        let app = WireEvent::App(AppEvent::JobError {
            kind: ErrorKind::Auth,
            message: "TDP rejected the auth token (401)".into(),
        });
        assert_eq!(
            serde_json::to_value(&app).unwrap_or_default(),
            serde_json::json!({"type": "jobError", "kind": "auth", "message": "TDP rejected the auth token (401)"})
        );
        let engine = WireEvent::Engine(Event::Warning {
            message: "the token expires in 4 minutes".into(),
        });
        assert_eq!(
            serde_json::to_value(&engine).unwrap_or_default(),
            serde_json::json!({"type": "warning", "message": "the token expires in 4 minutes"})
        );
    }
}
