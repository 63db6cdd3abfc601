//! The computer is kept from sleeping while a job runs, and allowed to sleep while it waits
//! for the network and once it ends: seen from a stand-in systemd-logind on a private D-Bus
//! (the test's own `dbus-daemon`, given to the engine as `DBUS_SYSTEM_BUS_ADDRESS`). Without
//! a bus, the CLI's test (cli.rs) sees one warning and a finished job.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure

use tdp_testkit as common;

use common::*;
use dbus::blocking::Connection;
use dbus::channel::{Channel, MatchingReceiver};
use dbus::message::MatchRule;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::io::IntoRawFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tdp_engine::job::events::JobState;
use tdp_engine::Event;
use tdp_sim::{sim_id, Outage, SimFile};

/// A private bus, stopped when dropped.
struct Bus {
    daemon: std::process::Child,
    address: String,
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

fn private_bus() -> Bus {
    let mut daemon = std::process::Command::new("dbus-daemon")
        .args(["--session", "--nofork", "--print-address=1"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("dbus-daemon (Debian package dbus) is installed");
    let mut line = String::new();
    BufReader::new(daemon.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    Bus {
        daemon,
        address: line.trim().to_string(),
    }
}

/// What the stand-in logind handed out: one socket end per inhibitor lock, whose peer the
/// engine holds; the lock is released when the peer is closed.
#[derive(Clone, Default)]
struct Locks(Arc<Mutex<Vec<(String, UnixStream)>>>);

impl Locks {
    fn taken(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    fn held(&self) -> usize {
        let locks = self.0.lock().unwrap();
        locks
            .iter()
            .filter(|(_, s)| {
                s.set_nonblocking(true).unwrap();
                // EOF: every copy of the engine's end is closed.
                !matches!((&*s).read(&mut [0u8; 1]), Ok(0))
            })
            .count()
    }

    fn what(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(w, _)| w.clone())
            .collect()
    }
}

/// Serves `org.freedesktop.login1.Manager.Inhibit` on `address` from a thread of its own.
fn stand_in_logind(address: &str) -> Locks {
    let locks = Locks::default();
    let mut channel = Channel::open_private(address).unwrap();
    channel.register().unwrap();
    let conn: Connection = channel.into();
    conn.request_name("org.freedesktop.login1", false, true, true)
        .unwrap();
    let kept = locks.clone();
    conn.start_receive(
        MatchRule::new_method_call(),
        Box::new(move |msg, conn| {
            if msg.member().as_deref() == Some("Inhibit") {
                let (what, ..): (String, String, String, String) = msg.read4().unwrap();
                let (engine_end, ours) = UnixStream::pair().unwrap();
                // SAFETY: a descriptor we own, handed over to the message.
                let fd = unsafe { dbus::arg::OwnedFd::new(engine_end.into_raw_fd()) };
                let _ = dbus::channel::Sender::send(conn, msg.method_return().append1(fd));
                kept.0.lock().unwrap().push((what, ours));
            }
            true
        }),
    );
    std::thread::spawn(move || loop {
        if conn.process(Duration::from_millis(50)).is_err() {
            return;
        }
    });
    locks
}

async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < until, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sleep_is_held_off_while_running_and_allowed_while_waiting_and_after() {
    let bus = private_bus();
    // Set before any job starts; this test binary has no other test.
    std::env::set_var("DBUS_SYSTEM_BUS_ADDRESS", &bus.address);
    let locks = stand_in_logind(&bus.address);

    let files: Vec<SimFile> = (0..6)
        .map(|i| SimFile::new(sim_id(81, i), format!("org/raw/a{i}.bin"), 1_500_000))
        .collect();
    let sim = Arc::new(
        start(files.clone(), |c| {
            c.shaping.per_connection_bps = Some(600_000)
        })
        .await,
    );
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&sim, dir.path());
    cfg.keep_awake = true;
    cfg.read_timeout = Duration::from_secs(1);
    let watcher = {
        let (sim, locks) = (sim.clone(), locks.clone());
        tokio::spawn(async move {
            eventually("the lock is taken as the job starts", || locks.held() == 1).await;
            sim.outage(Outage::Reset, Duration::from_millis(2500));
            eventually("the lock is let go while waiting", || locks.held() == 0).await;
            eventually("taken again when the network is back", || {
                locks.held() == 1 && locks.taken() == 2
            })
            .await;
        })
    };
    let (done, events) = run(cfg, sim.token(), &ids_of(&files)).await;
    watcher.await.unwrap();
    assert!(done.result.fatal.is_none(), "{:?}", done.result.fatal);
    assert_all_landed(dir.path(), &done.rows, &files);
    let states = job_states(&events);
    assert_eq!(
        states,
        [JobState::WaitingForNetwork, JobState::Running],
        "{states:?}"
    );
    eventually("let go at the end", || locks.held() == 0).await;
    assert_eq!(locks.what(), ["sleep", "sleep"]);
    assert!(!events.iter().any(|e| matches!(e, Event::Warning { .. })));

    // Paused: let go, and no byte moves; resumed: held again, and the job completes.
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&sim, dir.path());
    cfg.keep_awake = true;
    let control = tdp_engine::JobControl::default();
    let (tx, mut rx) = tdp_engine::EventSender::channel();
    let collector = tokio::spawn(async move {
        let mut v = Vec::new();
        while let Some(e) = rx.recv().await {
            v.push(e);
        }
        v
    });
    let job = {
        let (control, token, input) = (control.clone(), sim.token().to_string(), ids_of(&files));
        tokio::spawn(async move {
            tdp_engine::run_controlled(cfg, tdp_engine::Token::new(token), &input, tx, control)
                .await
                .unwrap()
        })
    };
    eventually("taken as the second job starts", || {
        locks.held() == 1 && locks.taken() == 3
    })
    .await;
    eventually("bytes are moving", || sim.counters().bytes_served > 0).await;
    // The user lets it sleep while the job runs, then changes their mind.
    control.allow_sleep(true);
    eventually("let go when the user allows sleep", || locks.held() == 0).await;
    control.allow_sleep(false);
    eventually("held again when the user wants it awake", || {
        locks.held() == 1 && locks.taken() == 4
    })
    .await;
    control.pause();
    eventually("let go while paused", || locks.held() == 0).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let at_pause = sim.counters().bytes_served;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        sim.counters().bytes_served,
        at_pause,
        "nothing moves while paused"
    );
    control.resume();
    eventually("held again once resumed", || {
        locks.held() == 1 && locks.taken() == 5
    })
    .await;
    let result = job.await.unwrap();
    let events = collector.await.unwrap();
    assert!(result.fatal.is_none(), "{:?}", result.fatal);
    assert_eq!(result.summary.downloaded, files.len());
    let rows = tdp_engine::job::report::read(&result.report_path).unwrap();
    assert_all_landed(dir.path(), &rows, &files);
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::FileRetrying { .. })),
        "a pause is no failure of any file"
    );
    let states = job_states(&events);
    assert_eq!(states, [JobState::Paused, JobState::Running], "{states:?}");
    eventually("let go at the end", || locks.held() == 0).await;
}
