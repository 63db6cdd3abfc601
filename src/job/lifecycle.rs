//! The job's state machine: running, waiting for the network or a new token, paused,
//! stopping. Each change is announced once ([`Event::JobState`]), and the computer is kept
//! awake only while the job is running.
//!
//! The state is worked out from what holds the job back, strongest first: stopping (for
//! good), paused (the user), waiting for a new token (the user too), waiting (the network). A network that comes back during a pause
//! leaves the job paused.

use crate::awake::Awake;
use crate::job::events::{Event, EventSender, JobState};
use std::sync::Mutex;

#[derive(Default)]
struct Flags {
    stopping: bool,
    paused: bool,
    token: bool,
    waiting: bool,
    /// The user lets the computer sleep during this job (changeable while it runs).
    sleep_allowed: bool,
}

impl Flags {
    fn hold_awake(&self) -> bool {
        self.state() == JobState::Running && !self.sleep_allowed
    }

    fn state(&self) -> JobState {
        if self.stopping {
            JobState::Stopping
        } else if self.paused {
            JobState::Paused
        } else if self.token {
            JobState::WaitingForToken
        } else if self.waiting {
            JobState::WaitingForNetwork
        } else {
            JobState::Running
        }
    }
}

pub(crate) struct Lifecycle {
    flags: Mutex<Flags>,
    events: EventSender,
    awake: Awake,
}

impl Lifecycle {
    /// A running job, once the computer is kept awake (or the job has said it cannot be).
    /// `sleep_allowed`: the user's choice as the job starts (see [`Self::allow_sleep`]).
    pub(crate) async fn start(
        events: EventSender,
        keep_awake: bool,
        sleep_allowed: bool,
    ) -> Lifecycle {
        let warn_to = events.clone();
        let awake = Awake::new(keep_awake, move |message| {
            tracing::warn!("{message}");
            warn_to.send(Event::Warning { message });
        });
        if !sleep_allowed {
            awake.hold_now().await;
        }
        Lifecycle {
            flags: Mutex::new(Flags {
                sleep_allowed,
                ..Flags::default()
            }),
            events,
            awake,
        }
    }

    /// Lets the computer sleep during the job, or keeps it awake again while it runs.
    pub(crate) fn allow_sleep(&self, allowed: bool) {
        self.change(|f| f.sleep_allowed = allowed);
    }

    pub(crate) fn set_waiting(&self, waiting: bool) {
        self.change(|f| f.waiting = waiting);
    }

    pub(crate) fn set_token_wanted(&self, wanted: bool) {
        self.change(|f| f.token = wanted);
    }

    pub(crate) fn set_paused(&self, paused: bool) {
        self.change(|f| f.paused = paused);
    }

    pub(crate) fn stop(&self) {
        self.change(|f| f.stopping = true);
    }

    fn change(&self, f: impl FnOnce(&mut Flags)) {
        let mut flags = self.flags.lock().unwrap_or_else(|e| e.into_inner());
        let (before, held) = (flags.state(), flags.hold_awake());
        f(&mut flags);
        let (next, hold) = (flags.state(), flags.hold_awake());
        if next != before {
            self.events.send(Event::JobState { state: next });
        }
        if hold != held {
            if hold {
                self.awake.hold()
            } else {
                self.awake.release()
            }
        }
    }
}
