//! Engine events to the window, coalesced: at most ten batches a second, only the latest
//! progress in each, every final state kept.

use std::time::Duration;
use tauri::ipc::Channel;
use tdp_engine::{Event, EventReceiver};

pub type Batch = Vec<serde_json::Value>;

pub async fn forward(mut rx: EventReceiver, channel: Channel<Batch>) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut batch: Batch = Vec::new();
    let mut progress: Option<serde_json::Value> = None;
    loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                Some(e @ Event::Progress { .. }) => progress = serde_json::to_value(&e).ok(),
                Some(e) => {
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
            _ = tick.tick() => flush(&channel, &mut batch, &mut progress),
        }
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
