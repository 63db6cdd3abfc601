//! Keeps the computer from going to sleep while a job moves bytes, through the OS's own sleep
//! inhibitor: on Linux a "sleep" lock of systemd-logind (`org.freedesktop.login1` on the
//! system bus; `DBUS_SYSTEM_BUS_ADDRESS` may point elsewhere), held as a file descriptor that
//! the OS releases if the process dies; on macOS and Windows a power assertion through the
//! keepawake crate. The screen may still lock and blank: only sleep is held off.
//!
//! Held while the job runs; let go while it waits for the network, is paused or stops, and
//! at its end. Where there is no inhibitor (no logind, no bus), the job says so once and goes
//! on.

use std::sync::mpsc;

const WHO: &str = "TDP Bulk Downloader";
const WHY: &str = "Downloading files";

enum Command {
    /// With a channel to say when it is done.
    Hold(Option<mpsc::Sender<()>>),
    Release,
}

/// The job's handle; dropping it lets go of the inhibitor.
pub(crate) struct Awake {
    tx: Option<mpsc::Sender<Command>>,
}

impl Awake {
    /// `warn` is called once, from the inhibitor's thread, if the OS refuses.
    pub(crate) fn new(enabled: bool, warn: impl FnOnce(String) + Send + 'static) -> Awake {
        if !enabled {
            return Awake { tx: None };
        }
        let (tx, rx) = mpsc::channel();
        // The OS calls block (a D-Bus round trip, with a timeout): one thread of its own
        // takes them in order, off the transfers' way.
        let spawned = std::thread::Builder::new()
            .name("keep-awake".into())
            .spawn(move || serve(rx, warn));
        match spawned {
            Ok(_) => Awake { tx: Some(tx) },
            Err(e) => {
                tracing::warn!("cannot keep the computer awake: {e}");
                Awake { tx: None }
            }
        }
    }

    pub(crate) fn hold(&self) {
        self.send(Command::Hold(None));
    }

    /// Holds, and waits (a little) until the OS has answered, so that a warning is said
    /// before anything else happens.
    pub(crate) async fn hold_now(&self) {
        let (tx, rx) = mpsc::channel();
        self.send(Command::Hold(Some(tx)));
        if self.tx.is_some() {
            let _ = tokio::task::spawn_blocking(move || {
                rx.recv_timeout(std::time::Duration::from_secs(2))
            })
            .await;
        }
    }

    pub(crate) fn release(&self) {
        self.send(Command::Release);
    }

    fn send(&self, c: Command) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(c);
        }
    }
}

fn serve(rx: mpsc::Receiver<Command>, warn: impl FnOnce(String)) {
    let mut warn = Some(warn);
    let mut held: Option<sys::Inhibitor> = None;
    // Ends when the job drops its handle; `held` goes with it.
    while let Ok(c) = rx.recv() {
        match c {
            Command::Hold(done) => {
                if held.is_none() {
                    match sys::inhibit(WHO, WHY) {
                        Ok(i) => held = Some(i),
                        Err(e) => {
                            if let Some(w) = warn.take() {
                                w(format!(
                                    "cannot keep the computer from sleeping ({e}); the download goes on, but may pause if the computer sleeps"
                                ));
                            }
                        }
                    }
                }
                if let Some(d) = done {
                    let _ = d.send(());
                }
            }
            Command::Release => held = None,
        }
    }
}

#[cfg(target_os = "linux")]
mod sys {
    use std::time::Duration;

    /// logind's lock: closing the descriptor releases it.
    pub(super) struct Inhibitor {
        _fd: dbus::arg::OwnedFd,
    }

    pub(super) fn inhibit(who: &str, why: &str) -> Result<Inhibitor, String> {
        let conn = dbus::blocking::Connection::new_system()
            .map_err(|e| format!("no system bus: {}", e.message().unwrap_or("unknown error")))?;
        let login = conn.with_proxy(
            "org.freedesktop.login1",
            "/org/freedesktop/login1",
            Duration::from_secs(5),
        );
        let (fd,): (dbus::arg::OwnedFd,) = login
            .method_call(
                "org.freedesktop.login1.Manager",
                "Inhibit",
                ("sleep", who, why, "block"),
            )
            .map_err(|e| {
                format!(
                    "systemd-logind refused: {}",
                    e.message().unwrap_or("unknown error")
                )
            })?;
        Ok(Inhibitor { _fd: fd })
    }
}

#[cfg(any(target_os = "macos", windows))]
mod sys {
    pub(super) struct Inhibitor {
        _held: keepawake::KeepAwake,
    }

    pub(super) fn inhibit(who: &str, why: &str) -> Result<Inhibitor, String> {
        keepawake::Builder::default()
            .idle(true)
            .sleep(true)
            .reason(why)
            .app_name(who)
            .app_reverse_domain("com.tetrascience.tdp-bulk-downloader")
            .create()
            .map(|k| Inhibitor { _held: k })
            .map_err(|e| e.to_string())
    }
}

#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
mod sys {
    pub(super) struct Inhibitor;

    pub(super) fn inhibit(_who: &str, _why: &str) -> Result<Inhibitor, String> {
        Err("this system has no sleep inhibitor we know of".into())
    }
}
