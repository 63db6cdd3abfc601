use std::path::Path;
use std::time::Duration;
use tdp_e2e::{md5_of_file, require_environment, App, Launch};
use tdp_sim::corporate::{HttpsFronts, TestCa};
use tdp_sim::{content, demo_files, sim_id, Faults, FileKind, SimConfig, SimFile, Simulator};

async fn summary_shown(a: &App) -> bool {
    a.visible("summary").await
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.retain(|n| n != ".tdp-download" && !n.starts_with("tdp-download-report"));
    v.sort();
    v
}

fn report_rows(dest: &Path) -> Vec<serde_json::Value> {
    let r: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dest.join("tdp-download-report.json")).expect("report"),
    )
    .expect("json");
    r["files"].as_array().cloned().unwrap_or_default()
}

async fn fill_connection(app: &App, sim: &Simulator, token: &str, remember: bool) {
    app.type_into("base-url", &sim.base_url()).await;
    app.type_into("org", sim.org()).await;
    app.type_into("token", token).await;
    let checked = app
        .el("remember")
        .await
        .prop("checked")
        .await
        .ok()
        .flatten()
        == Some("true".into());
    if checked != remember {
        app.click("remember").await;
    }
}

/// Pastes the IDs, types the destination and waits until the app has counted the IDs.
async fn fill_files(app: &App, files: &[SimFile], home: &Path) -> std::path::PathBuf {
    let ids: String = files.iter().map(|f| format!("{}\n", f.id)).collect();
    app.paste_into("ids", &ids).await;
    let dest = home.join("out");
    app.type_into("dest", &dest.to_string_lossy()).await;
    let want = format!("{} valid", files.len());
    app.wait_for("the IDs to be counted", move |a| {
        let want = want.clone();
        Box::pin(async move { a.text("ids-status").await.starts_with(&want) })
    })
    .await;
    dest
}

/// The CLI the tests were built with, downloading from `sim` into `out` (IDs to add).
fn cli_download(sim: &Simulator, out: &Path) -> std::process::Command {
    let cli = std::env::var("TDP_CLI_BIN").expect("TDP_CLI_BIN");
    let mut cmd = std::process::Command::new(cli);
    cmd.args([
        "--base-url",
        &sim.base_url(),
        "--org",
        sim.org(),
        "--quiet",
        "--out",
    ])
    .arg(out);
    cmd
}

fn secret_lookup(account: &str) -> String {
    let out = std::process::Command::new("secret-tool")
        .args([
            "lookup",
            "service",
            "tdp-bulk-downloader",
            "account",
            account,
        ])
        .output()
        .expect("secret-tool");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_flow_downloads_every_file_and_shows_the_counts() {
    require_environment();
    let home = tempfile::tempdir().unwrap();
    let app = App::start(Launch::plain(home.path())).await;
    app.screenshot("1-empty").await;
    app.click("demo").await;
    app.wait_for("the demo to fill in the form", |a| {
        Box::pin(async move { a.value("base-url").await.starts_with("http://127.0.0.1") })
    })
    .await;
    assert!(app.text("conn-status").await.contains("Demo server"));
    let dest = home.path().join("demo-out");
    app.type_into("dest", &dest.to_string_lossy()).await;
    app.wait_for("the IDs to be counted", |a| {
        Box::pin(async move { a.text("ids-status").await.starts_with("120 valid IDs") })
    })
    .await;
    app.click("start").await;
    app.wait_for("files to start downloading", |a| {
        Box::pin(async move { a.visible("filelist").await })
    })
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    app.screenshot("2-downloading").await;
    app.wait_for("the summary", |a| Box::pin(summary_shown(a)))
        .await;
    app.screenshot("3-finished").await;
    assert_eq!(
        app.attr("summary", "data-downloaded").await.as_deref(),
        Some("120")
    );
    assert_eq!(
        app.attr("summary", "data-failed").await.as_deref(),
        Some("0")
    );
    assert!(app.text("summary").await.contains("120 files downloaded"));
    assert!(app.visible("open").await);

    // Every file on disk has the right bytes.
    let files = demo_files(7, 120, None);
    assert_verified(&dest, &files);
    app.close().await;
}

/// Every file is on disk where the report says, with the right bytes.
fn assert_verified(dest: &Path, files: &[SimFile]) {
    let rows = report_rows(dest);
    for f in files {
        let row = rows
            .iter()
            .find(|r| r["fileId"] == f.id.as_str())
            .expect("row");
        let path = dest.join(row["path"].as_str().expect("path"));
        assert_eq!(md5_of_file(&path), hex_md5(f), "{}", f.key);
    }
}

fn hex_md5(f: &SimFile) -> String {
    content::md5_of(f.content_seed(), f.size)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_inspection_ca_is_named_and_the_extra_ca_setting_fixes_it() {
    require_environment();
    let files = demo_files(91, 6, Some(5000));
    let sim = sim_with(files.clone(), |_| {}).await;
    let ca = TestCa::new("Example Corp Inspection CA");
    let fronts = HttpsFronts::start(&sim, &ca).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let app = App::start(Launch::plain(home.path())).await;
    app.type_into("base-url", &fronts.base_url()).await;
    app.type_into("org", sim.org()).await;
    app.type_into("token", sim.token()).await;
    let dest = fill_files(&app, &files, home.path()).await;
    let text = start_and_expect_error(&app, "tls", "5-untrusted-certificate").await;
    assert!(
        text.contains("presented a certificate from 'Example Corp Inspection CA'"),
        "{text}"
    );
    assert!(text.contains("Extra CA certificate"), "{text}");
    assert_eq!(sim.counters().total("retrieve"), 0);

    // The CA file IT gave, in the network settings: the same job downloads everything.
    let pem = home.path().join("corp-ca.pem");
    std::fs::write(&pem, ca.pem()).unwrap();
    app.click("network-toggle").await;
    app.type_into("ca-cert", &pem.to_string_lossy()).await;
    app.screenshot("6-network-settings").await;
    app.click("start").await;
    // The first job's summary stays until the new one ends: wait for the new one's count.
    app.wait_for("the second job's summary", |a| {
        Box::pin(async move { a.attr("summary", "data-downloaded").await.as_deref() == Some("6") })
    })
    .await;
    assert_eq!(
        app.attr("summary", "data-downloaded").await.as_deref(),
        Some("6")
    );
    assert_verified(&dest, &files);
    app.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_a_cli_job_is_using_is_refused_with_the_same_words() {
    require_environment();
    let files: Vec<SimFile> = (0..8)
        .map(|i| SimFile::new(sim_id(84, i), format!("org/raw/b{i:02}.bin"), 400_000))
        .collect();
    // 3.2 MB at 200 kB/s: the CLI holds the folder for about 16 s.
    let sim = sim_with(files.clone(), |c| c.shaping.total_bps = Some(200_000)).await;
    let home = tempfile::tempdir().unwrap();
    let dest = home.path().join("out");
    let mut job = cli_download(&sim, &dest)
        .env("TDP_TOKEN", sim.token())
        .args(files.iter().map(|f| f.id.clone()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let info = dest.join(".tdp-download/lock.info");
    for _ in 0..100 {
        if info.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(info.exists(), "the CLI job did not take the folder");

    let app = App::start(Launch::plain(home.path())).await;
    fill_connection(&app, &sim, sim.token(), false).await;
    assert_eq!(fill_files(&app, &files, home.path()).await, dest);
    let text = start_and_expect_error(&app, "busy", "7-folder-in-use").await;
    assert!(text.contains("another download is using"), "{text}");
    assert!(text.contains(&format!("process {}", job.id())), "{text}");
    // The CLI job was not disturbed: it finishes with every file.
    assert!(job.wait().unwrap().success());
    assert_eq!(files_in(&dest).len(), files.len());
    app.close().await;
}

/// Presses Download, waits for the error, saves a screenshot, checks its kind; its text.
async fn start_and_expect_error(app: &App, kind: &str, screenshot: &str) -> String {
    app.click("start").await;
    app.wait_for("the error", |a| {
        Box::pin(async move { a.visible("error").await })
    })
    .await;
    app.screenshot(screenshot).await;
    assert_eq!(app.attr("error", "data-kind").await.as_deref(), Some(kind));
    app.text("error").await
}

async fn sim_with(files: Vec<SimFile>, tweak: impl FnOnce(&mut SimConfig)) -> Simulator {
    let mut cfg = SimConfig::new(files);
    tweak(&mut cfg);
    Simulator::start(cfg).await.expect("simulator")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_shows_the_auth_error_and_downloads_nothing() {
    require_environment();
    let files = demo_files(81, 10, Some(2000));
    let sim = sim_with(files.clone(), |_| {}).await;
    let home = tempfile::tempdir().unwrap();
    let app = App::start(Launch::plain(home.path())).await;
    fill_connection(&app, &sim, "this-is-not-the-token", false).await;
    let dest = fill_files(&app, &files, home.path()).await;
    let text = start_and_expect_error(&app, "auth", "4-error").await;
    assert!(text.starts_with("Wrong or expired token"), "{text}");
    assert!(text.contains("rejected the auth token"), "{text}");
    assert_eq!(sim.counters().total("s3"), 0);
    assert!(files_in(&dest).is_empty());
    // The token typed is nowhere in the page.
    assert!(!app
        .client
        .source()
        .await
        .unwrap()
        .contains("this-is-not-the-token"));
    app.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_ids_are_flagged_before_starting() {
    require_environment();
    let home = tempfile::tempdir().unwrap();
    let app = App::start(Launch::plain(home.path())).await;
    let text = format!(
        "{}\nnot-an-id\n{}\n{}\n",
        sim_id(1, 1),
        sim_id(1, 2),
        sim_id(1, 1)
    );
    app.type_into("ids", &text).await;
    app.wait_for("the counts", |a| {
        Box::pin(async move { a.text("ids-status").await.contains("invalid") })
    })
    .await;
    assert_eq!(
        app.text("ids-status").await,
        "2 valid IDs, 1 duplicate, 1 invalid line"
    );
    let line = app.text("invalid-line").await;
    assert!(line.starts_with("line 2: not a TDP file ID"), "{line}");
    app.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_then_download_again_completes_without_fetching_finished_files_again() {
    require_environment();
    let files: Vec<SimFile> = (0..24)
        .map(|i| SimFile::new(sim_id(82, i), format!("org/raw/c{i:02}.bin"), 400_000))
        .collect();
    let total: u64 = files.iter().map(|f| f.size).sum();
    let sim = sim_with(files.clone(), |c| {
        c.shaping.per_connection_bps = Some(400_000);
        c.shaping.total_bps = Some(1_600_000);
    })
    .await;
    let home = tempfile::tempdir().unwrap();
    let app = App::start(Launch::plain(home.path())).await;
    fill_connection(&app, &sim, sim.token(), false).await;
    app.type_into("concurrency", "4").await;
    let dest = fill_files(&app, &files, home.path()).await;
    app.click("start").await;
    app.wait_for("some files done", |a| {
        Box::pin(async move {
            a.text("files-count")
                .await
                .split(' ')
                .next()
                .and_then(|n| n.parse::<u32>().ok())
                .unwrap_or(0)
                >= 4
        })
    })
    .await;
    app.click("cancel").await;
    app.wait_for("the job to stop", |a| Box::pin(summary_shown(a)))
        .await;
    let first = app.text("summary").await;
    assert!(first.contains("not finished"), "{first}");
    let done_first = files_in(&dest).len();
    assert!(done_first >= 4 && done_first < files.len(), "{done_first}");

    app.click("start").await;
    app.wait_for("the second run to finish", |a| {
        Box::pin(async move {
            a.attr("summary", "data-skipped")
                .await
                .is_some_and(|s| s != "0")
                && !a.visible("cancel").await
        })
    })
    .await;
    assert_eq!(
        app.attr("summary", "data-skipped").await.unwrap(),
        done_first.to_string()
    );
    assert_eq!(files_in(&dest).len(), files.len());
    for f in &files {
        assert_eq!(md5_of_file(&dest.join(f.base_name())), hex_md5(f));
    }
    let served = sim.counters().bytes_served;
    assert!(served <= total * 115 / 100, "fetched {served} for {total}");
    app.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remembered_token_is_in_the_keychain_survives_a_restart_and_serves_the_cli() {
    require_environment();
    let files = demo_files(83, 6, Some(3000));
    let sim = sim_with(files.clone(), |_| {}).await;
    let account = format!(
        "{}@{}",
        sim.org(),
        sim.base_url().trim_start_matches("http://")
    );
    let home = tempfile::tempdir().unwrap();
    let app = App::start(Launch::plain(home.path())).await;
    fill_connection(&app, &sim, sim.token(), true).await;
    app.click("check").await;
    app.wait_for("the check", |a| {
        Box::pin(async move { a.text("conn-status").await.starts_with("Connected") })
    })
    .await;
    assert_eq!(
        secret_lookup(&account),
        sim.token(),
        "the token is in the Secret Service"
    );
    assert_eq!(app.value("token").await, "", "the field is cleared");
    app.close().await;

    let settings = home
        .path()
        .join(".config/org.tdpbulkdownloader.app/settings.json");
    let saved = std::fs::read_to_string(&settings).unwrap_or_default();
    assert!(saved.contains(&sim.base_url()), "settings saved: {saved:?}");
    eprintln!("settings before the restart: {saved}");

    // Restart: the app says a token is saved, and the page never holds it.
    let app = App::start(Launch::plain(home.path())).await;
    app.wait_for("the saved-token notice", |a| {
        Box::pin(async move {
            a.text("conn-status")
                .await
                .contains("saved in the keychain")
        })
    })
    .await;
    assert_eq!(
        app.value("base-url").await,
        sim.base_url(),
        "settings are remembered"
    );
    assert!(!app.client.source().await.unwrap().contains(sim.token()));
    app.screenshot("5-token-saved").await;

    // The CLI, a second process, downloads with the keychain's token.
    let out = home.path().join("cli-out");
    let status = cli_download(&sim, &out)
        .env_remove("TDP_TOKEN")
        .args(files.iter().map(|f| f.id.clone()))
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(files_in(&out).len(), files.len());

    // The token is in no file of the app's HOME (settings, caches, logs).
    let grep = std::process::Command::new("grep")
        .args(["-r", "-l", "-F", sim.token()])
        .arg(home.path())
        .output()
        .unwrap();
    assert!(
        grep.stdout.is_empty(),
        "token found in {}",
        String::from_utf8_lossy(&grep.stdout)
    );

    app.click("forget").await;
    app.wait_for("the forget", |a| {
        Box::pin(async move { a.text("conn-status").await.contains("removed") })
    })
    .await;
    assert_eq!(secret_lookup(&account), "");
    app.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_secret_service_a_typed_token_works_for_the_session() {
    require_environment();
    let files = demo_files(84, 5, Some(1000));
    let sim = sim_with(files.clone(), |c| c.faults = Faults::default()).await;
    let home = tempfile::tempdir().unwrap();
    let app = App::start(Launch {
        home: home.path(),
        args: vec![],
        env: vec![(
            "DBUS_SESSION_BUS_ADDRESS".into(),
            "unix:path=/nonexistent/bus".into(),
        )],
    })
    .await;
    fill_connection(&app, &sim, sim.token(), true).await;
    app.wait_for("the keychain notice", |a| {
        Box::pin(async move { a.text("conn-status").await.contains("keychain") })
    })
    .await;
    let notice = app.text("conn-status").await;
    assert!(notice.contains("not available"), "{notice}");
    let dest = fill_files(&app, &files, home.path()).await;
    app.click("start").await;
    app.wait_for("the summary", |a| Box::pin(summary_shown(a)))
        .await;
    assert_eq!(
        app.attr("summary", "data-downloaded").await.as_deref(),
        Some("5")
    );
    assert_eq!(files_in(&dest).len(), files.len());
    app.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnose_connection_shows_each_check_in_the_window() {
    require_environment();
    let files = demo_files(86, 3, Some(2000));
    let sim = sim_with(files.clone(), |_| {}).await;
    let home = tempfile::tempdir().unwrap();
    let app = App::start(Launch::plain(home.path())).await;
    fill_connection(&app, &sim, sim.token(), false).await;
    fill_files(&app, &files, home.path()).await;
    app.click("diagnose").await;
    app.wait_for("the checks", |a| {
        Box::pin(async move { a.text("conn-status").await.contains("All checks passed") })
    })
    .await;
    let lines = app.text("diagnosis").await;
    for want in [
        "✓ connection to 127.0.0.1",
        "✓ TDP accepts the token for org demo-org",
        "✓ storage (127.0.0.1) sends the file",
    ] {
        assert!(lines.contains(want), "{want}: {lines}");
    }
    app.screenshot("7-diagnosis").await;
    let page = app.client.source().await.unwrap();
    assert!(!page.contains(sim.token()) && !page.contains("X-Amz-Signature"));

    // A wrong org: the failing line says what to do.
    app.type_into("org", "other-org").await;
    app.type_into("token", sim.token()).await;
    app.click("diagnose").await;
    app.wait_for("the failed check", |a| {
        Box::pin(async move { a.text("conn-status").await.contains("A check failed") })
    })
    .await;
    let lines = app.text("diagnosis").await;
    assert!(lines.contains("✗ TDP: access denied"), "{lines}");
    assert!(lines.contains("fix: check the org slug"), "{lines}");
    app.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_expires_mid_job_is_asked_for_and_the_same_job_completes() {
    require_environment();
    // More files than the job resolves ahead (connections + 128), at about 40 files/s: the
    // token runs out while links are still to be asked for.
    let files: Vec<SimFile> = (0..360)
        .map(|i| SimFile::new(sim_id(87, i), format!("org/raw/k{i:03}.bin"), 10_000))
        .collect();
    let total: u64 = files.iter().map(|f| f.size).sum();
    let sim = sim_with(files.clone(), |c| c.shaping.total_bps = Some(400_000)).await;
    let account = format!(
        "{}@{}",
        sim.org(),
        sim.base_url().trim_start_matches("http://")
    );
    let home = tempfile::tempdir().unwrap();
    let app = App::start(Launch::plain(home.path())).await;
    app.type_into("base-url", &sim.base_url()).await;
    app.type_into("org", sim.org()).await;
    app.click("remember").await; // the first token for this session only
    app.type_into("concurrency", "2").await;
    let dest = fill_files(&app, &files, home.path()).await;
    let short = sim.jwt_token(Duration::from_secs(4));
    app.type_into("token", &short).await;
    app.click("start").await;

    app.wait_for("the window to ask for a new token", |a| {
        Box::pin(async move { a.visible("renew").await })
    })
    .await;
    let warned = app.text("warnings").await;
    assert!(warned.contains("the auth token expires in"), "{warned}");
    let at_ask = files_in(&dest).len();
    assert!(at_ask > 0 && at_ask < files.len(), "{at_ask}");
    // Focus moved to the new token's field: the keyboard alone answers.
    let focused = app.client.active_element().await.unwrap();
    assert_eq!(
        focused.attr("data-hook").await.unwrap().as_deref(),
        Some("renew-token")
    );
    app.screenshot("8-new-token").await;
    let enter = char::from(fantoccini::key::Key::Enter).to_string();

    // A token TDP rejects too is refused before the job sees it.
    focused
        .send_keys(&format!("not-a-valid-token{enter}"))
        .await
        .unwrap();
    app.wait_for("the new token to be refused", |a| {
        Box::pin(async move {
            a.text("renew-status")
                .await
                .contains("rejected the auth token")
        })
    })
    .await;
    assert!(app.visible("renew").await);

    let fresh = sim.jwt_token(Duration::from_secs(3600));
    app.type_into("renew-token", &fresh).await;
    app.el("renew-token").await.send_keys(&enter).await.unwrap();
    app.wait_for("the same job to finish", |a| {
        Box::pin(async move { summary_shown(a).await })
    })
    .await;
    app.screenshot("9-after-new-token").await;
    assert_eq!(
        app.attr("summary", "data-downloaded").await.as_deref(),
        Some("360")
    );
    assert_eq!(
        app.attr("summary", "data-failed").await.as_deref(),
        Some("0")
    );
    assert!(!app.visible("renew").await && !app.visible("error").await);
    assert_verified(&dest, &files);
    let c = sim.counters();
    eprintln!(
        "asked for a new token with {at_ask} of {} files in place; {} answers 401; fetched {:.1}% of the data",
        files.len(),
        c.count("retrieve 401"),
        c.bytes_served as f64 * 100.0 / total as f64
    );
    assert!(
        c.bytes_served <= total + total / 20,
        "fetched {} for {total}",
        c.bytes_served
    );
    // Saved as asked ("Save it in the keychain" is ticked); the page holds neither token.
    assert_eq!(secret_lookup(&account), fresh);
    let page = app.client.source().await.unwrap();
    assert!(!page.contains(&short) && !page.contains(&fresh));
    app.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_transfer_list_filters_sorts_finds_and_exports_the_failed_ids() {
    require_environment();
    let mut files: Vec<SimFile> = (0..12)
        .map(|i| {
            let size = 1000 + (i * 7919 % 13) * 1000;
            let kind = if i == 5 {
                FileKind::Kms
            } else {
                FileKind::Plain
            };
            SimFile::new(sim_id(88, i), format!("org/raw/l{i:02}.bin"), size).kind(kind)
        })
        .collect();
    let sim = sim_with(files.clone(), |_| {}).await;
    // Three IDs TDP does not know: they fail, "not found".
    let unknown: Vec<String> = (100..103).map(|i| sim_id(88, i)).collect();
    files.extend(
        unknown
            .iter()
            .map(|id| SimFile::new(id.clone(), "org/raw/none.bin", 10)),
    );
    let home = tempfile::tempdir().unwrap();
    let app = App::start(Launch::plain(home.path())).await;
    fill_connection(&app, &sim, sim.token(), false).await;
    let dest = fill_files(&app, &files, home.path()).await;
    app.click("start").await;
    app.wait_for("the job to finish", |a| Box::pin(summary_shown(a)))
        .await;
    assert_eq!(app.rows().await.len(), 15, "every file has a row");

    // Failed: exactly the unknown IDs, with their reason.
    assert_eq!(
        app.text("chips")
            .await
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["All", "15", "Active", "0", "Queued", "0", "Done", "12", "Skipped", "0", "Failed", "3"]
    );
    app.click_css("[data-filter='failed']").await;
    app.wait_for("the failed filter", |a| {
        Box::pin(async move { a.rows().await.len() == 3 })
    })
    .await;
    let rows = app.rows().await;
    let mut failed: Vec<String> = rows
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    failed.sort();
    let mut want = unknown.clone();
    want.sort();
    assert_eq!(failed, want);
    for r in &rows {
        let text = r["text"].as_str().unwrap();
        assert!(text.contains("failed: not found in TDP"), "{text}");
    }
    app.click_css(&format!("#file-{}", unknown[0])).await;
    app.wait_for("the selected file's details", |a| {
        Box::pin(async move { a.visible("detail").await })
    })
    .await;
    let detail = app.text("detail-state").await;
    assert!(detail.starts_with("failed: not found in TDP"), "{detail}");
    assert_eq!(app.text("detail-id").await, unknown[0]);
    app.screenshot("10-failed-filter").await;
    app.click("export-failed").await;
    app.wait_for("the export", |a| {
        Box::pin(async move {
            a.text("list-status")
                .await
                .starts_with("Saved 3 failed IDs")
        })
    })
    .await;
    let list = std::fs::read_to_string(dest.join("tdp-download-failed.txt")).unwrap();
    let mut exported: Vec<&str> = list.lines().collect();
    exported.sort();
    assert_eq!(exported, want);

    // All, sorted by size: the rows come in size order (failed ones have none: first).
    app.click_css("[data-filter='all']").await;
    app.click_css("[data-key='size']").await;
    app.wait_for("all rows, by size", |a| {
        Box::pin(
            async move { a.rows().await.len() == 15 && a.text("sorts").await.contains("Size ▲") },
        )
    })
    .await;
    let sizes: Vec<i64> = app
        .rows()
        .await
        .iter()
        .map(|r| r["size"].as_str().unwrap().parse().unwrap_or(-1))
        .collect();
    assert_eq!(sizes.len(), 15);
    assert!(sizes.windows(2).all(|w| w[0] <= w[1]), "{sizes:?}");
    app.click_css("[data-key='size']").await;
    app.wait_for("the size sort reversed", |a| {
        Box::pin(async move { a.text("sorts").await.contains("Size ▼") })
    })
    .await;
    let sizes: Vec<i64> = app
        .rows()
        .await
        .iter()
        .map(|r| r["size"].as_str().unwrap().parse().unwrap_or(-1))
        .collect();
    assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "{sizes:?}");

    // The text filter finds a file by its ID.
    app.type_into("find", &files[5].id).await;
    app.wait_for("the text filter", |a| {
        Box::pin(async move { a.text("shown-count").await.starts_with("1 of") })
    })
    .await;
    let rows = app.rows().await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["id"], files[5].id.as_str());
    assert_eq!(app.text("shown-count").await, "1 of 15 files shown");
    // A KMS object: its ETag is no MD5, and the details say it was checked by size alone.
    app.click_css(&format!("#file-{}", files[5].id)).await;
    app.wait_for("the found file's details", |a| {
        Box::pin(async move { a.visible("detail-check").await })
    })
    .await;
    assert_eq!(
        app.text("detail-check").await,
        "its size only: storage sent no checksum for it"
    );
    app.screenshot("11-find").await;
    app.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_from_an_empty_window_with_the_keyboard_alone() {
    require_environment();
    let files = demo_files(89, 5, Some(4000));
    let sim = sim_with(files.clone(), |_| {}).await;
    let home = tempfile::tempdir().unwrap();
    let dest = home.path().join("by-keyboard");
    let app = App::start(Launch::plain(home.path())).await;
    let enter = char::from(fantoccini::key::Key::Enter).to_string();
    // Only key actions from here on: Tab to each field (its focus must show), type, Enter.
    let mut stops = app.tab_to("base-url").await;
    app.press(&sim.base_url()).await;
    stops.extend(app.tab_to("org").await);
    app.press(sim.org()).await;
    stops.extend(app.tab_to("token").await);
    app.press(sim.token()).await;
    stops.extend(app.tab_to("ids").await);
    let ids: Vec<&str> = files.iter().map(|f| f.id.as_str()).collect();
    app.press(&ids.join(" ")).await;
    stops.extend(app.tab_to("dest").await);
    app.press(&dest.to_string_lossy()).await;
    app.wait_for("the IDs to be counted", |a| {
        Box::pin(async move { a.text("ids-status").await.starts_with("5 valid") })
    })
    .await;
    stops.extend(app.tab_to("start").await);
    app.press(&enter).await;
    app.wait_for("the job to finish", |a| Box::pin(summary_shown(a)))
        .await;
    assert_eq!(
        app.attr("summary", "data-downloaded").await.as_deref(),
        Some("5")
    );
    assert_verified(&dest, &files);
    // The file list too: Tab to it, an arrow selects a file and shows its details.
    stops.extend(app.tab_to("viewport").await);
    app.press(&char::from(fantoccini::key::Key::Down).to_string())
        .await;
    app.wait_for("a selected file", |a| {
        Box::pin(async move { a.visible("detail").await })
    })
    .await;
    assert_eq!(app.text("detail-id").await, files[0].id);
    eprintln!("Tab stops: {}", stops.join(" → "));
    app.screenshot("12-keyboard").await;
    app.close().await;
}

/// axe-core's violations of the page now; the serious and critical ones as lines.
async fn audit(app: &App, theme: &str, state: &str) -> Vec<String> {
    let violations = app.axe().await;
    let mut bad = Vec::new();
    for v in &violations {
        let line = format!(
            "{theme}/{state}: {} ({}): {} {}",
            v["id"].as_str().unwrap_or(""),
            v["impact"].as_str().unwrap_or(""),
            v["help"].as_str().unwrap_or(""),
            v["nodes"]
        );
        eprintln!("axe {line}");
        if matches!(v["impact"].as_str(), Some("serious" | "critical")) {
            bad.push(line);
        }
    }
    app.screenshot(&format!("a11y-{theme}-{state}")).await;
    bad
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accessibility_audit_finds_no_serious_violation_in_light_and_dark() {
    require_environment();
    let files: Vec<SimFile> = (0..30)
        .map(|i| SimFile::new(sim_id(90, i), format!("org/raw/a{i:02}.bin"), 40_000))
        .collect();
    let sim = sim_with(files.clone(), |c| c.shaping.total_bps = Some(300_000)).await;
    let ids: String = files.iter().map(|f| format!("{}\n", f.id)).collect();
    let mut bad = Vec::new();
    for theme in ["light", "dark"] {
        let home = tempfile::tempdir().unwrap();
        let mut launch = Launch::plain(home.path());
        if theme == "dark" {
            launch.env.push(("GTK_THEME".into(), "Adwaita:dark".into()));
        }
        let app = App::start(launch).await;
        let dark = app
            .client
            .execute(
                "return matchMedia('(prefers-color-scheme: dark)').matches;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            dark.as_bool(),
            Some(theme == "dark"),
            "the OS theme is followed"
        );
        bad.extend(audit(&app, theme, "empty").await);

        fill_connection(&app, &sim, sim.token(), false).await;
        app.paste_into("ids", &ids).await;
        app.wait_for("the IDs to be counted", |a| {
            Box::pin(async move { a.text("ids-status").await.starts_with("30 valid") })
        })
        .await;
        app.click("start").await;
        app.wait_for("the error (no folder)", |a| {
            Box::pin(async move { a.visible("error").await })
        })
        .await;
        bad.extend(audit(&app, theme, "error").await);

        app.type_into("dest", &home.path().join("out").to_string_lossy())
            .await;
        app.click("start").await;
        app.wait_for("files downloading", |a| {
            Box::pin(async move { a.rows().await.iter().any(|r| r["state"] == "downloading") })
        })
        .await;
        bad.extend(audit(&app, theme, "downloading").await);
        app.wait_for("the job to finish", |a| Box::pin(summary_shown(a)))
            .await;
        bad.extend(audit(&app, theme, "finished").await);
        app.close().await;
    }
    assert!(bad.is_empty(), "{bad:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100000_file_job_keeps_the_list_bounded_while_scrolling_and_filtering() {
    require_environment();
    const N: u64 = 100_000;
    let files: Vec<SimFile> = (0..N)
        .map(|i| SimFile::new(sim_id(91, i), format!("org/raw/t{i:06}.bin"), 64))
        .collect();
    let sim = sim_with(files.clone(), |_| {}).await;
    let home = tempfile::tempdir().unwrap();
    let app = App::start(Launch::plain(home.path())).await;
    fill_connection(&app, &sim, sim.token(), false).await;
    app.type_into("concurrency", "64").await;
    let ids: String = files.iter().map(|f| format!("{}\n", f.id)).collect();
    app.paste_into("ids", &ids).await;
    // The list is under test, not the disk: 100,000 syncs on tmpfs cost nothing.
    let out = tempfile::tempdir_in("/dev/shm").unwrap_or_else(|_| tempfile::tempdir().unwrap());
    app.type_into("dest", &out.path().to_string_lossy()).await;
    app.wait_for("the IDs to be counted", |a| {
        // The count is written in the window's locale: "100,000" or "100000".
        Box::pin(async move {
            a.text("ids-status")
                .await
                .replace(',', "")
                .starts_with("100000 valid")
        })
    })
    .await;
    let started = std::time::Instant::now();
    app.click("start").await;
    let mut most = 0;
    // While it runs: rows stay few whatever is done.
    while !summary_shown(&app).await {
        most = most.max(app.row_elements().await);
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "the job did not finish"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let job_secs = started.elapsed().as_secs_f64();
    eprintln!(
        "100,000 files: the job took {job_secs:.1} s in the window, at most {most} row elements"
    );
    assert_eq!(
        app.attr("summary", "data-downloaded").await.as_deref(),
        Some("100000")
    );
    // Scrolling: to places across the list, timed in the page to the frame after.
    let scroll = app
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const vp = document.querySelector('[data-hook=viewport]');
             const times = [];
             (async () => {
               for (const f of [0.1, 0.5, 0.9, 0.3, 1, 0]) {
                 const t0 = performance.now();
                 vp.scrollTop = f * (vp.scrollHeight - vp.clientHeight);
                 await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
                 times.push(performance.now() - t0);
               }
               done({ times, rows: document.querySelectorAll('[data-hook=file-row]').length });
             })();",
            vec![],
        )
        .await
        .unwrap();
    most = most.max(scroll["rows"].as_u64().unwrap_or(0) as usize);
    // Filtering: a chip, then the text filter, each timed to the list showing the result.
    let timed = |what: &'static str| async move { (what, std::time::Instant::now()) };
    let (_, t) = timed("chip").await;
    app.click_css("[data-filter='failed']").await;
    app.wait_for("the failed filter", |a| {
        Box::pin(async move { a.text("shown-count").await.starts_with("0 of") })
    })
    .await;
    let chip_ms = t.elapsed().as_millis();
    most = most.max(app.row_elements().await);
    app.click_css("[data-filter='all']").await;
    let t = std::time::Instant::now();
    app.type_into("find", &files[77_777].id).await;
    app.wait_for("the text filter", |a| {
        Box::pin(async move { a.text("shown-count").await.starts_with("1 of") })
    })
    .await;
    let find_ms = t.elapsed().as_millis();
    most = most.max(app.row_elements().await);
    let t = std::time::Instant::now();
    app.click_css("[data-key='name']").await;
    app.type_into("find", "").await;
    app.wait_for("all rows by name", |a| {
        Box::pin(async move { a.text("shown-count").await.replace(',', "") == "100000 files" })
    })
    .await;
    let sort_ms = t.elapsed().as_millis();
    most = most.max(app.row_elements().await);
    eprintln!(
        "100,000 files: job {job_secs:.1} s in the window; scroll to the next frame (ms) {}; \
         Failed chip {chip_ms} ms, find by ID {find_ms} ms, sort by name + clear {sort_ms} ms \
         (WebDriver round trips included); at most {most} row elements in the DOM",
        scroll["times"]
    );
    assert!(most > 0 && most <= 120, "row elements: {most}");
    app.screenshot("13-100000-files").await;
    app.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_speed_limit_paces_the_job_and_pause_holds_every_request() {
    require_environment();
    // 80 MB: at 5 MB/s the job outlasts the 11 s measured.
    let files: Vec<SimFile> = (0..80)
        .map(|i| SimFile::new(sim_id(92, i), format!("org/raw/p{i:02}.bin"), 1_000_000))
        .collect();
    let sim = sim_with(files.clone(), |_| {}).await;
    let home = tempfile::tempdir().unwrap();
    let app = App::start(Launch::plain(home.path())).await;
    fill_connection(&app, &sim, sim.token(), false).await;
    let dest = fill_files(&app, &files, home.path()).await;
    // Few connections: what storage has written into the sockets' buffers (whole 1 MB files on
    // loopback) is counted as served before the job reads it.
    app.type_into("concurrency", "4").await;
    app.type_into("limit", "5").await;
    app.click("start").await;
    app.wait_for("bytes moving", |a| {
        Box::pin(async move { a.visible("pause").await })
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (b0, t0) = (sim.counters().bytes_served, std::time::Instant::now());
    tokio::time::sleep(Duration::from_secs(10)).await;
    let rate = (sim.counters().bytes_served - b0) as f64 / t0.elapsed().as_secs_f64() / 1e6;
    eprintln!("speed limit 5 MB/s: the simulator served {rate:.2} MB/s over 10 s");
    assert!((3.5..=6.0).contains(&rate), "{rate} MB/s");

    // Pause: in-flight reads stop at once; then no request at all for 2 s.
    app.click("pause").await;
    app.wait_for("the job to say it is paused", |a| {
        Box::pin(async move { a.text("speed").await.starts_with("paused") })
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = sim.counters();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = sim.counters();
    eprintln!(
        "paused: {} S3 and {} TDP requests, {} bytes in 2 s",
        after.total("s3") - before.total("s3"),
        after.total("retrieve") - before.total("retrieve"),
        after.bytes_served - before.bytes_served
    );
    assert_eq!(
        after.total("s3"),
        before.total("s3"),
        "no S3 request while paused"
    );
    assert_eq!(after.total("retrieve"), before.total("retrieve"));
    assert_eq!(app.text("pause").await, "Resume");
    app.screenshot("14-paused").await;

    // No limit, resume: the job completes, verified.
    app.type_into("limit", "").await;
    app.click("pause").await;
    app.wait_for("the job to finish", |a| Box::pin(summary_shown(a)))
        .await;
    assert_eq!(
        app.attr("summary", "data-downloaded").await.as_deref(),
        Some("80"),
        "{}: {:?}",
        app.text("summary").await,
        report_rows(&dest)
            .iter()
            .filter(|r| r["status"] != "downloaded")
            .map(|r| r["error"].clone())
            .collect::<Vec<_>>()
    );
    assert_verified(&dest, &files);
    app.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_ends_while_the_window_is_away_sends_a_notification() {
    require_environment();
    let notifications = tdp_e2e::Notifications::start();
    let files: Vec<SimFile> = (0..12)
        .map(|i| SimFile::new(sim_id(94, i), format!("org/raw/n{i:02}.bin"), 200_000))
        .collect();
    let sim = sim_with(files.clone(), |c| c.shaping.total_bps = Some(800_000)).await;
    let home = tempfile::tempdir().unwrap();
    let mut launch = Launch::plain(home.path());
    // The window counts as unfocused (an Xvfb window has no window manager to ask).
    launch.env.push(("TDP_ASSUME_UNFOCUSED".into(), "1".into()));
    let app = App::start(launch).await;
    fill_connection(&app, &sim, sim.token(), false).await;
    let dest = fill_files(&app, &files, home.path()).await;
    app.click("start").await;
    // While it runs, the window's title carries the percentage (the X server's own list of
    // window names says so).
    app.wait_for("the percentage in the title", |_| {
        Box::pin(async move {
            std::process::Command::new("xwininfo")
                .args(["-root", "-tree"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).contains("% · TDP Bulk Downloader"))
                .unwrap_or(false)
        })
    })
    .await;
    app.wait_for("the job to finish", |a| Box::pin(summary_shown(a)))
        .await;
    assert_verified(&dest, &files);
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while notifications.seen().is_empty() && std::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen = notifications.seen();
    eprintln!("notifications: {seen:?}");
    assert_eq!(
        seen,
        [(
            "Download finished".to_string(),
            "12 downloaded, 0 already there, 0 failed".to_string()
        )]
    );
    app.screenshot("15-notified").await;
    app.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jobs_view_resumes_a_killed_apps_job_and_shows_a_cli_jobs_folder() {
    require_environment();
    // 200 MiB at 25 MB/s: about 8 s, killed about a third of the way.
    let files: Vec<SimFile> = (0..20)
        .map(|i| SimFile::new(sim_id(95, i), format!("org/raw/j{i:02}.bin"), 10 << 20))
        .collect();
    let total: u64 = files.iter().map(|f| f.size).sum();
    let sim = sim_with(files.clone(), |c| c.shaping.total_bps = Some(25_000_000)).await;
    let home = tempfile::tempdir().unwrap();
    let app = App::start(Launch::plain(home.path())).await;
    fill_connection(&app, &sim, sim.token(), true).await;
    app.type_into("concurrency", "4").await;
    let dest = fill_files(&app, &files, home.path()).await;
    app.click("start").await;
    app.wait_for("a third of the bytes", |_| {
        let served = sim.counters().bytes_served;
        Box::pin(async move { served > total / 3 })
    })
    .await;
    let bin = std::env::var("TDP_APP_BIN").unwrap();
    let killed = std::process::Command::new("pkill")
        .args(["-KILL", "-f", &format!("^{bin}")])
        .status()
        .unwrap();
    assert!(killed.success(), "the app was running ({bin})");
    app.close().await;
    let at_kill = sim.counters().bytes_served;

    // Started again: the Jobs view, read from the folder, offers to resume.
    let app = App::start(Launch::plain(home.path())).await;
    let row = format!("[data-hook='job'][data-dest='{}']", dest.display());
    app.wait_for("the unfinished job offered", |a| {
        let css = format!("{row} button.primary[data-action='resume']");
        Box::pin(async move { a.client.find(fantoccini::Locator::Css(&css)).await.is_ok() })
    })
    .await;
    let line = app.text("jobs").await;
    assert!(
        line.contains("20 files") && line.contains("not finished"),
        "{line}"
    );
    // And in view, in the Download card: one click resumes it.
    let offer = app.text("offer").await;
    assert!(offer.contains(&dest.display().to_string()), "{offer}");
    app.screenshot("16-jobs-resume").await;
    app.click("offer-resume").await;
    app.wait_for("the resumed job to finish", |a| Box::pin(summary_shown(a)))
        .await;
    assert_eq!(
        app.attr("summary", "data-failed").await.as_deref(),
        Some("0")
    );
    assert_verified(&dest, &files);
    let served = sim.counters().bytes_served;
    let twice = served.saturating_sub(total);
    let bound = 4 * (8u64 << 20);
    eprintln!(
        "killed with {at_kill} of {total} bytes served; after resuming {served}: {twice} bytes fetched twice (bound: 4 connections x 8 MiB checkpoint = {bound})"
    );
    assert!(twice < bound, "{twice} bytes fetched twice");

    // A folder a CLI job used: added by its path, shown with its counts.
    let cli_dest = home.path().join("cli-out");
    let ok = cli_download(&sim, &cli_dest)
        .env("TDP_TOKEN", sim.token())
        .args(files.iter().take(2).map(|f| f.id.clone()))
        .status()
        .unwrap();
    assert!(ok.success());
    app.type_into("job-folder", &cli_dest.to_string_lossy())
        .await;
    app.click("add-job").await;
    let cli_row = format!("[data-hook='job'][data-dest='{}']", cli_dest.display());
    app.wait_for("the CLI's folder in the Jobs view", |a| {
        let css = cli_row.clone();
        Box::pin(async move { a.client.find(fantoccini::Locator::Css(&css)).await.is_ok() })
    })
    .await;
    let text = app
        .client
        .find(fantoccini::Locator::Css(&cli_row))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("2 files, 2 downloaded"), "{text}");
    app.screenshot("17-jobs").await;
    app.close().await;
}

/// A search by category and tag, given as a TDP search page's address: the form fills (and
/// says what it could not use), the preview shows the count and size, then the download's
/// rows arrive with the search's pages, before its last page is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_by_category_and_tag_previews_then_downloads_as_its_pages_arrive() {
    require_environment();
    let mut files: Vec<SimFile> = (0..1_500u64)
        .map(|i| {
            SimFile::new(sim_id(95, i), format!("org/src/RAW/s/f{i}.bin"), 2_000 + i)
                .tags(&["keep", "hplc"])
        })
        .collect();
    let wanted = files.clone();
    files.extend((1_500..1_700u64).map(|i| {
        SimFile::new(sim_id(95, i), format!("org/src/IDS/s/g{i}.json"), 100).tags(&["keep"])
    }));
    files.extend((1_700..1_800u64).map(|i| {
        SimFile::new(sim_id(95, i), format!("org/src/RAW/t/h{i}.bin"), 100).tags(&["other"])
    }));
    let bytes: u64 = wanted.iter().map(|f| f.size).sum();
    // A small result window: the search takes many pages.
    let sim = sim_with(files, |c| c.result_window = 500).await;
    let home = tempfile::tempdir().unwrap();
    let app = App::start(Launch::plain(home.path())).await;
    fill_connection(&app, &sim, sim.token(), false).await;
    app.click("tab-search").await;
    app.paste_into(
        "search-url",
        "https://example.tetrascience.com/search?category=RAW&tags=keep&label.organism=mouse",
    )
    .await;
    app.wait_for("the form to fill from the address", |a| {
        Box::pin(async move {
            a.text("search-url-status")
                .await
                .contains("label.organism=mouse")
        })
    })
    .await;
    assert_eq!(app.value("s-category").await, "RAW");
    assert_eq!(app.value("s-tags").await, "keep");
    let dest = home.path().join("out");
    app.type_into("dest", &dest.to_string_lossy()).await;
    app.click("preview").await;
    app.wait_for("the preview", |a| {
        Box::pin(async move { a.text("preview-status").await.contains("files") })
    })
    .await;
    assert_eq!(
        app.text("preview-status").await,
        format!(
            "1,500 files, {}, 0 already in this folder",
            tdp_engine::size::human(bytes)
        )
    );
    assert_eq!(
        sim.counters().total("retrieve"),
        0,
        "a preview downloads nothing"
    );
    app.screenshot("17-search-preview").await;

    sim.hold_last_search_page(true);
    app.click("start").await;
    app.wait_for("rows to arrive while the search still pages", |a| {
        Box::pin(async move {
            a.text("files-count").await.contains("found so far") && !a.rows().await.is_empty()
        })
    })
    .await;
    app.screenshot("18-search-streaming").await;
    sim.hold_last_search_page(false);
    app.wait_for("the job to finish", |a| Box::pin(summary_shown(a)))
        .await;
    assert_eq!(
        app.attr("summary", "data-downloaded").await.as_deref(),
        Some("1500"),
        "{}",
        app.text("summary").await
    );
    assert_verified(&dest, &wanted);
    assert_eq!(files_in(&dest).len(), 1_500, "nothing that does not match");
    app.close().await;
}
