//! Helpers of the CLI's tests: the tdp-download binary as a child process, measured from
//! outside.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

/// What a child process did: exit code, peak resident memory (from `wait4`; on Windows the
/// peak working set), output.
pub struct Measured {
    pub code: i32,
    pub max_rss_kib: u64,
    pub stdout: String,
    pub stderr: String,
}

/// Runs a command to its end and measures its peak RSS from outside, as `time -v` would.
// On Unix wait4 reaps the child itself, so `Child::wait` must not be called.
#[allow(clippy::zombie_processes)]
pub fn run_measured(cmd: &mut std::process::Command) -> Measured {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let (code, max_rss_kib) = wait_measured(child);
    Measured {
        code,
        max_rss_kib,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    }
}

/// The exit code (minus the signal for a killed child) and the peak resident memory.
#[cfg(unix)]
fn wait_measured(child: std::process::Child) -> (i32, u64) {
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain old data that wait4 fills in; pid is our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4");
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -libc::WTERMSIG(status)
    };
    (code, usage.ru_maxrss as u64)
}

/// The exit code and the peak working set, which Windows keeps until the handle closes.
#[cfg(windows)]
fn wait_measured(mut child: std::process::Child) -> (i32, u64) {
    use std::os::windows::io::AsRawHandle;
    use windows_sys::Win32::System::ProcessStatus::{
        GetProcessMemoryInfo, PROCESS_MEMORY_COUNTERS,
    };
    let status = child.wait().expect("wait");
    let mut pmc: PROCESS_MEMORY_COUNTERS = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<PROCESS_MEMORY_COUNTERS>() as u32;
    // SAFETY: the child's handle is open until `child` drops; pmc is of the size given.
    let ok = unsafe { GetProcessMemoryInfo(child.as_raw_handle() as _, &mut pmc, size) };
    assert!(ok != 0, "GetProcessMemoryInfo");
    (
        status.code().unwrap_or(-1),
        pmc.PeakWorkingSetSize as u64 / 1024,
    )
}

/// The CLI binary, with the environment a user would have plus the token.
pub fn cli(token: Option<&str>) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tdp-download"));
    cmd.env_remove("TDP_TOKEN");
    if let Some(t) = token {
        cmd.env("TDP_TOKEN", t);
    }
    cmd
}

/// The IDs of `files`, one per line, in `dir/ids.txt`.
pub fn write_ids(dir: &std::path::Path, files: &[tdp_sim::SimFile]) -> std::path::PathBuf {
    let p = dir.join("ids.txt");
    std::fs::write(
        &p,
        files
            .iter()
            .map(|f| format!("{}\n", f.id))
            .collect::<String>(),
    )
    .unwrap();
    p
}

/// `tdp-download sim` started in `dir`, and the base URL, org and token it printed.
pub fn start_sim_process(
    dir: &std::path::Path,
    args: &[&str],
) -> (std::process::Child, [String; 3]) {
    use std::io::{BufRead, BufReader};
    let mut sim = cli(None)
        .current_dir(dir)
        .arg("sim")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(sim.stdout.take().unwrap()).lines();
    let mut field = |name: &str| loop {
        let l = lines.next().expect("sim output").unwrap();
        if let Some(v) = l.trim().strip_prefix(name) {
            return v
                .trim_start_matches([' ', ':'])
                .split(' ')
                .next()
                .unwrap()
                .to_string();
        }
    };
    let fields = [field("base URL"), field("org"), field("token")];
    // Keep reading what it prints after, as a terminal would.
    std::thread::spawn(move || lines.for_each(drop));
    (sim, fields)
}
