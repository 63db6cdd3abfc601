//! The job's progress events: at most ten a second, whatever the number of files.

use crate::job::context::Ctx;
use crate::job::events::Event;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub(crate) fn emit_progress(ctx: &Ctx, rate: f64) {
    ctx.events.send(Event::Progress {
        files_done: ctx.progress.files_done.load(Ordering::Relaxed) as usize,
        files_total: ctx.files_total.load(Ordering::Relaxed),
        bytes_done: ctx.progress.bytes_done.load(Ordering::Relaxed),
        bytes_known: ctx.progress.bytes_known.load(Ordering::Relaxed),
        bytes_per_second: rate,
        active: ctx.progress.active(200),
    });
}

/// At most ten progress events a second, whatever the number of files.
pub(crate) async fn tick_progress(ctx: Arc<Ctx>, stop: CancellationToken) {
    let mut interval = tokio::time::interval(Duration::from_millis(100));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last = (Instant::now(), 0u64);
    let mut rate = 0.0;
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.cancelled() => return,
        }
        let now = Instant::now();
        let bytes = ctx.progress.bytes_done.load(Ordering::Relaxed);
        let dt = now.duration_since(last.0).as_secs_f64();
        if dt > 0.0 {
            let inst = (bytes - last.1) as f64 / dt;
            rate = if rate == 0.0 {
                inst
            } else {
                0.7 * rate + 0.3 * inst
            };
        }
        last = (now, bytes);
        emit_progress(&ctx, rate);
    }
}
