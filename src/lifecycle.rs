//! The job's state machine: running, waiting for the network, paused, stopping. Each change
//! is announced once ([`Event::JobState`]), and the computer is kept awake only while the
//! job is running.

use crate::awake::Awake;
use crate::events::{Event, EventSender, JobState};
use std::sync::Mutex;

pub(crate) struct Lifecycle {
    state: Mutex<JobState>,
    events: EventSender,
    awake: Awake,
}

impl Lifecycle {
    /// A running job, once the computer is kept awake (or the job has said it cannot be).
    pub(crate) async fn start(events: EventSender, keep_awake: bool) -> Lifecycle {
        let warn_to = events.clone();
        let awake = Awake::new(keep_awake, move |message| {
            tracing::warn!("{message}");
            warn_to.send(Event::Warning { message });
        });
        awake.hold_now().await;
        Lifecycle {
            state: Mutex::new(JobState::Running),
            events,
            awake,
        }
    }

    /// Moves to `next`; a stopping job stays stopping.
    pub(crate) fn set(&self, next: JobState) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if *s == next || *s == JobState::Stopping {
            return;
        }
        *s = next;
        self.events.send(Event::JobState { state: next });
        match next {
            JobState::Running => self.awake.hold(),
            JobState::WaitingForNetwork | JobState::Paused | JobState::Stopping => {
                self.awake.release()
            }
        }
    }
}
