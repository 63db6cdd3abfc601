//! A measured child process: its wall time, CPU seconds (from `wait4`) and peak memory.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) wall: f64,
    /// User + system CPU seconds of the child (from `wait4`).
    pub(crate) cpu: f64,
    pub(crate) rss_kib: u64,
    pub(crate) stderr: String,
}

#[allow(clippy::zombie_processes)] // wait4 reaps the child
pub(crate) fn run_child(cmd: &mut Command) -> Run {
    let start = Instant::now();
    let child = match cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            return Run {
                code: -1,
                wall: 0.0,
                cpu: 0.0,
                rss_kib: 0,
                stderr: e.to_string(),
            };
        }
    };
    let pid = child.id();
    let peak = watch_peak(pid);
    let stderr = child.stderr.map(|mut s| {
        std::thread::spawn(move || {
            let mut out = String::new();
            let _ = std::io::Read::read_to_string(&mut s, &mut out);
            out
        })
    });
    let (code, cpu, maxrss) = wait_rusage(pid);
    let wall = start.elapsed().as_secs_f64();
    let stderr = stderr.and_then(|t| t.join().ok()).unwrap_or_default();
    let rss_kib = peak.join().ok().flatten().unwrap_or(maxrss);
    Run {
        code,
        wall,
        cpu,
        rss_kib,
        stderr,
    }
}

/// The child's peak resident memory, from its `VmHWM` read every 10 ms until it exits.
/// Not `wait4`'s maxrss: that counts the memory of this process, which the child shares
/// until its `exec` (and this process holds the simulator).
pub(crate) fn watch_peak(pid: u32) -> std::thread::JoinHandle<Option<u64>> {
    std::thread::spawn(move || {
        let path = format!("/proc/{pid}/status");
        let mut peak = None;
        let mut execd = false;
        loop {
            let Ok(status) = std::fs::read_to_string(&path) else {
                return peak;
            };
            // Before its exec the child is still a copy of this process (same command line).
            execd = execd
                || std::fs::read(format!("/proc/{pid}/cmdline")).ok()
                    != std::fs::read("/proc/self/cmdline").ok();
            if status.contains("State:\tZ") {
                return peak;
            }
            if execd {
                if let Some(kib) = status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches(" kB").parse::<u64>().ok())
                {
                    peak = Some(kib);
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    })
}

#[cfg(unix)]
pub(crate) fn wait_rusage(pid: u32) -> (i32, f64, u64) {
    let mut status = 0;
    // SAFETY: rusage is plain data filled in by wait4 for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
    if r < 0 {
        return (-1, 0.0, 0);
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let cpu = secs(usage.ru_utime) + secs(usage.ru_stime);
    (code, cpu, usage.ru_maxrss as u64)
}

#[cfg(not(unix))]
pub(crate) fn wait_rusage(_pid: u32) -> (i32, f64, u64) {
    (-1, 0.0, 0)
}
