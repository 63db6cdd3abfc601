//! `tdp-download` in a corporate network: TDP and storage behind TLS inspection (a private CA
//! this computer may or may not trust) and behind a forward proxy, with and without
//! credentials. The OS store is changed only inside a private mount namespace, so the
//! machine's store is never touched and a killed test leaves nothing trusted.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure

mod child;
use tdp_testkit as common;

use child::*;
use common::*;
use std::path::Path;
use tdp_sim::corporate::{ForwardProxy, HttpsFronts, TestCa};
use tdp_sim::{demo_files, SimFile, Simulator};

const ISSUER: &str = "Example Corp Inspection CA";

/// The simulator behind TLS inspection, and the files it serves.
struct Inspected {
    sim: Simulator,
    fronts: HttpsFronts,
    files: Vec<SimFile>,
}

impl Inspected {
    async fn start(ca: &TestCa, seed: u64) -> Self {
        let files = demo_files(seed, 5, Some(300_000));
        let sim = start(files.clone(), |_| {}).await;
        let fronts = HttpsFronts::start(&sim, ca).await.unwrap();
        Inspected { sim, fronts, files }
    }

    fn base_url(&self) -> String {
        self.fronts.base_url()
    }
}

/// The CLI with no proxy or TLS settings from this machine's environment.
fn clean_cli(token: &str) -> std::process::Command {
    let mut cmd = cli(Some(token));
    for var in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "TDP_PROXY_PASSWORD",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn download(cmd: &mut std::process::Command, base: &str, sim: &Simulator, out: &Path, ids: &Path) {
    cmd.args(["--base-url", base, "--org", sim.org(), "--out"])
        .arg(out)
        .arg("--ids")
        .arg(ids)
        .args(["--read-timeout", "5", "--network-patience", "5"]);
}

async fn measured(mut cmd: std::process::Command) -> Measured {
    tokio::task::spawn_blocking(move || run_measured(&mut cmd))
        .await
        .unwrap()
}

fn assert_verified(out: &Path, files: &[SimFile]) {
    let rows = tdp_engine::job::report::read(&out.join("tdp-download-report.json")).unwrap();
    assert_all_landed(out, &rows, files);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_stops_the_job_and_names_the_issuer() {
    let ca = TestCa::new(ISSUER);
    let net = Inspected::start(&ca, 71).await;
    let dir = tempfile::tempdir().unwrap();
    let ids = write_ids(dir.path(), &net.files);

    // TDP behind inspection, CA not trusted: one stop, exit 2, the issuer and the fix named.
    let mut cmd = clean_cli(net.sim.token());
    download(
        &mut cmd,
        &net.base_url(),
        &net.sim,
        &dir.path().join("a"),
        &ids,
    );
    let m = measured(cmd).await;
    eprintln!("--- untrusted TDP:\n{}", m.stderr);
    assert_eq!(m.code, 2, "{}", m.stderr);
    assert!(
        m.stderr.contains(&format!(
            "TDP (localhost) presented a certificate from '{ISSUER}', which this computer does not trust"
        )),
        "{}",
        m.stderr
    );
    assert!(m.stderr.contains("--ca-cert"), "{}", m.stderr);
    // No retries: at most one handshake per file, and nothing reached TDP or storage.
    assert!(
        net.fronts.api.connections() <= net.files.len(),
        "{} handshakes for {} files",
        net.fronts.api.connections(),
        net.files.len()
    );
    assert_eq!(net.sim.counters().total("retrieve"), 0);
    assert_eq!(net.fronts.s3.connections(), 0);

    // Storage behind inspection, TDP not: the stop names storage.
    let mut cmd = clean_cli(net.sim.token());
    download(
        &mut cmd,
        &net.sim.base_url(),
        &net.sim,
        &dir.path().join("b"),
        &ids,
    );
    let m = measured(cmd).await;
    assert_eq!(m.code, 2, "{}", m.stderr);
    assert!(
        m.stderr.contains(&format!(
            "Storage (127.0.0.1) presented a certificate from '{ISSUER}'"
        )),
        "{}",
        m.stderr
    );
    assert_eq!(net.sim.counters().total("s3"), 0);

    // With the CA given as --ca-cert: every file verified.
    let pem = dir.path().join("inspection-ca.pem");
    std::fs::write(&pem, ca.pem()).unwrap();
    let out = dir.path().join("c");
    let mut cmd = clean_cli(net.sim.token());
    download(&mut cmd, &net.base_url(), &net.sim, &out, &ids);
    cmd.arg("--ca-cert").arg(&pem);
    let m = measured(cmd).await;
    assert_eq!(m.code, 0, "{}", m.stderr);
    assert_verified(&out, &net.files);
}

/// Runs `cmd` in a private mount namespace whose `/etc/ssl` is a copy of this machine's with
/// `ca` installed by `update-ca-certificates`, as IT would install an inspection CA.
fn with_ca_installed(
    cmd: &std::process::Command,
    ca: &TestCa,
    scratch: &Path,
) -> std::process::Command {
    let ssl = scratch.join("etc-ssl");
    let local = scratch.join("local-ca");
    std::fs::create_dir_all(&local).unwrap();
    std::fs::create_dir_all(&ssl).unwrap();
    let status = std::process::Command::new("cp")
        .args(["-a", "/etc/ssl/certs"])
        .arg(ssl.join("certs"))
        .status()
        .expect("cp");
    assert!(status.success(), "copying /etc/ssl/certs");
    std::fs::write(local.join("example-inspection.crt"), ca.pem()).unwrap();
    let script = r#"set -e
mount --bind "$1" /etc/ssl
mount --bind "$2" /usr/local/share/ca-certificates
update-ca-certificates >/dev/null 2>&1
shift 2
exec "$@""#;
    let mut wrapped = std::process::Command::new("unshare");
    wrapped
        .args([
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(&ssl)
        .arg(&local)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => wrapped.env(k, v),
            None => wrapped.env_remove(k),
        };
    }
    wrapped
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_in_the_os_store_is_trusted() {
    let ca = TestCa::new(ISSUER);
    let net = Inspected::start(&ca, 72).await;
    let dir = tempfile::tempdir().unwrap();
    let ids = write_ids(dir.path(), &net.files);
    let out = dir.path().join("out");
    let mut cmd = clean_cli(net.sim.token());
    download(&mut cmd, &net.base_url(), &net.sim, &out, &ids);
    let wrapped = with_ca_installed(&cmd, &ca, dir.path());
    let m = measured(wrapped).await;
    assert_eq!(
        m.code, 0,
        "with the CA in the OS store (needs root and unshare): {}",
        m.stderr
    );
    assert_verified(&out, &net.files);
    // The machine's own store never saw the CA.
    let bundle = std::fs::read_to_string("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default();
    let body: String = ca.pem().lines().nth(1).unwrap().to_string();
    assert!(!bundle.contains(&body), "the test CA leaked into /etc/ssl");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_carries_tdp_and_storage() {
    let ca = TestCa::new(ISSUER);
    let net = Inspected::start(&ca, 73).await;
    let dir = tempfile::tempdir().unwrap();
    let ids = write_ids(dir.path(), &net.files);
    let pem = dir.path().join("inspection-ca.pem");
    std::fs::write(&pem, ca.pem()).unwrap();
    let proxy = ForwardProxy::start(Some(("alice", "s3cret")))
        .await
        .unwrap();
    let with_user = proxy.url().replace("http://", "http://alice@");

    // HTTPS through CONNECT, password from TDP_PROXY_PASSWORD.
    let out = dir.path().join("connect");
    let mut cmd = clean_cli(net.sim.token());
    download(&mut cmd, &net.base_url(), &net.sim, &out, &ids);
    cmd.arg("--ca-cert").arg(&pem).args(["--proxy", &with_user]);
    cmd.env("TDP_PROXY_PASSWORD", "s3cret");
    let m = measured(cmd).await;
    assert_eq!(m.code, 0, "{}", m.stderr);
    assert_verified(&out, &net.files);
    let seen = proxy.seen();
    let api = format!("CONNECT localhost:{}", net.fronts.api.addr().port());
    let s3 = format!("CONNECT 127.0.0.1:{}", net.fronts.s3.addr().port());
    assert!(seen.contains(&api), "{seen:?}");
    assert!(seen.contains(&s3), "{seen:?}");

    // Plain HTTP in absolute form (the simulator without fronts).
    let plain = tdp_sim::Simulator::start(tdp_sim::SimConfig::new(net.files.clone()))
        .await
        .unwrap();
    let out = dir.path().join("absolute");
    let mut cmd = clean_cli(plain.token());
    download(&mut cmd, &plain.base_url(), &plain, &out, &ids);
    cmd.args(["--proxy", &with_user]);
    cmd.env("TDP_PROXY_PASSWORD", "s3cret");
    let m = measured(cmd).await;
    assert_eq!(m.code, 0, "{}", m.stderr);
    assert_verified(&out, &net.files);
    let seen = proxy.seen();
    let api = format!("GET {}", &plain.base_url()["http://".len()..]);
    let s3 = format!("GET {}", plain.s3_addr());
    assert!(seen.contains(&api), "{seen:?}");
    assert!(seen.contains(&s3), "{seen:?}");

    // A proxy without credentials.
    let open = ForwardProxy::start(None).await.unwrap();
    let out = dir.path().join("open");
    let mut cmd = clean_cli(net.sim.token());
    download(&mut cmd, &net.base_url(), &net.sim, &out, &ids);
    cmd.arg("--ca-cert")
        .arg(&pem)
        .args(["--proxy", &open.url()]);
    let m = measured(cmd).await;
    assert_eq!(m.code, 0, "{}", m.stderr);
    assert_verified(&out, &net.files);
    let connect = format!("CONNECT localhost:{}", net.fronts.api.addr().port());
    assert!(open.seen().contains(&connect), "{:?}", open.seen());

    // The proxy from HTTPS_PROXY, credentials in it, as many scripts set it.
    let before = proxy.seen().len();
    let out = dir.path().join("env");
    let mut cmd = clean_cli(net.sim.token());
    download(&mut cmd, &net.base_url(), &net.sim, &out, &ids);
    cmd.arg("--ca-cert").arg(&pem);
    cmd.env(
        "HTTPS_PROXY",
        proxy.url().replace("http://", "http://alice:s3cret@"),
    );
    let m = measured(cmd).await;
    assert_eq!(m.code, 0, "{}", m.stderr);
    assert!(proxy.seen().len() > before, "HTTPS_PROXY was not used");

    // A wrong password: one stop with the 407 words, through CONNECT and in absolute form.
    for (base, sim, name) in [
        (net.base_url(), &net.sim, "wrong-connect"),
        (plain.base_url(), &plain, "wrong-absolute"),
    ] {
        let refused = proxy.refused();
        let mut cmd = clean_cli(sim.token());
        download(&mut cmd, &base, sim, &dir.path().join(name), &ids);
        cmd.arg("--ca-cert").arg(&pem).args(["--proxy", &with_user]);
        cmd.env("TDP_PROXY_PASSWORD", "wrong");
        let m = measured(cmd).await;
        eprintln!("--- {name}:\n{}", m.stderr);
        assert_eq!(m.code, 2, "{name}: {}", m.stderr);
        assert!(
            m.stderr.contains("407 Proxy Authentication Required"),
            "{name}: {}",
            m.stderr
        );
        assert!(m.stderr.contains("TDP_PROXY_PASSWORD"), "{}", m.stderr);
        assert!(
            proxy.refused() - refused <= net.files.len(),
            "{name}: retried"
        );
    }

    // A password on the command line is refused before anything is sent.
    let refused = proxy.seen().len();
    let mut cmd = clean_cli(net.sim.token());
    download(
        &mut cmd,
        &net.base_url(),
        &net.sim,
        &dir.path().join("argv"),
        &ids,
    );
    cmd.args([
        "--proxy",
        &proxy.url().replace("http://", "http://alice:s3cret@"),
    ]);
    let m = measured(cmd).await;
    assert_eq!(m.code, 2, "{}", m.stderr);
    assert!(m.stderr.contains("TDP_PROXY_PASSWORD"), "{}", m.stderr);
    assert_eq!(proxy.seen().len(), refused);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_doctor_names_an_untrusted_issuer_and_an_unknown_host() {
    let ca = TestCa::new(ISSUER);
    let net = Inspected::start(&ca, 77).await;
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("corp.pem");
    std::fs::write(&pem, ca.pem()).unwrap();
    let doctor = |extra: &[&str]| {
        let mut c = clean_cli(net.sim.token());
        c.args([
            "doctor",
            "--base-url",
            &net.base_url(),
            "--org",
            net.sim.org(),
        ])
        .arg(&net.files[0].id)
        .args(extra);
        c
    };

    let m = measured(doctor(&[])).await;
    assert_eq!(m.code, 2, "{}", m.stdout);
    assert!(
        m.stdout
            .contains(&format!("presented a certificate from '{ISSUER}'")),
        "{}",
        m.stdout
    );
    assert!(
        m.stdout
            .contains("fix: give your company's inspection CA with --ca-cert"),
        "{}",
        m.stdout
    );

    // With the CA: every layer, storage (also behind inspection) included.
    let m = measured(doctor(&["--ca-cert", pem.to_str().unwrap()])).await;
    assert_eq!(m.code, 0, "{}", m.stdout);
    assert!(
        m.stdout.contains("a trusted HTTPS certificate"),
        "{}",
        m.stdout
    );
    assert!(m.stdout.contains("1 byte fetched"), "{}", m.stdout);
    assert!(!m.stdout.contains(net.sim.token()) && !m.stdout.contains("X-Amz-Signature"));

    // An unknown host, in a network namespace of its own whose resolver is 127.0.0.1 (where
    // nothing answers): no outside DNS is asked.
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(&resolv, "nameserver 127.0.0.1\n").unwrap();
    let inner = clean_cli(net.sim.token());
    let mut c = std::process::Command::new("unshare");
    c.args(["--net", "--mount", "--propagation", "private"]);
    // SAFETY: geteuid has no preconditions.
    #[cfg(unix)]
    if unsafe { libc::geteuid() } != 0 {
        c.arg("--map-root-user");
    }
    c.args(["--", "sh", "-c", r#"set -e; ip link set lo up 2>/dev/null || true; mount --bind "$1" /etc/resolv.conf; shift; exec "$@""#, "sh"])
        .arg(&resolv)
        .arg(inner.get_program())
        .args(["doctor", "--base-url", "https://tdp.unknown-host.example", "--org", "acme"]);
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    let m = measured(c).await;
    assert_eq!(m.code, 2, "{}{}", m.stdout, m.stderr);
    assert!(
        m.stdout
            .contains("✗ name resolution: tdp.unknown-host.example is not known"),
        "{}{}",
        m.stdout,
        m.stderr
    );
}
