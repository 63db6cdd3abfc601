//! Drives the real app window as a person does: through tauri-driver and WebKitWebDriver,
//! clicking and typing into visible controls, against the simulator.

use fantoccini::{Client, ClientBuilder, Locator};
use md5::{Digest, Md5};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use fantoccini;

/// A port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The app binary under test (set by scripts/e2e.sh).
pub fn app_binary() -> Option<PathBuf> {
    std::env::var_os("TDP_APP_BIN").map(PathBuf::from)
}

/// Fails the test, saying what is missing, when the end-to-end environment is not there: a
/// test that cannot set up must not pass.
pub fn require_environment() {
    let mut missing = Vec::new();
    if app_binary().is_none() {
        missing.push("TDP_APP_BIN");
    }
    if std::env::var_os("DISPLAY").is_none() {
        missing.push("DISPLAY");
    }
    assert!(
        missing.is_empty(),
        "the end-to-end environment is missing {}: run scripts/e2e.sh",
        missing.join(", ")
    );
}

/// One running app: its tauri-driver, its WebDriver session and its HOME.
pub struct App {
    pub client: Client,
    driver: Child,
    pub home: PathBuf,
}

pub struct Launch<'a> {
    pub home: &'a Path,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl<'a> Launch<'a> {
    /// A start with no extra arguments or environment.
    pub fn plain(home: &'a Path) -> Self {
        Launch {
            home,
            args: Vec::new(),
            env: Vec::new(),
        }
    }
}

impl App {
    pub async fn start(launch: Launch<'_>) -> App {
        // Two TLS stacks are linked (the WebDriver client's and reqwest's); pick one. The
        // WebDriver connection itself is plain HTTP on loopback.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (port, native) = (free_port(), free_port());
        let mut cmd = Command::new("tauri-driver");
        // Its own process group, so that closing kills WebKitWebDriver and the app with it: a
        // leftover WebKitWebDriver on a reused port would answer the next session instead.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        cmd.args([
            "--port",
            &port.to_string(),
            "--native-port",
            &native.to_string(),
        ])
        .env("HOME", launch.home)
        .env("XDG_CONFIG_HOME", launch.home.join(".config"))
        .env("XDG_DATA_HOME", launch.home.join(".local/share"))
        .env("XDG_DOWNLOAD_DIR", launch.home.join("Downloads"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        for (k, v) in &launch.env {
            cmd.env(k, v);
        }
        let driver = cmd
            .spawn()
            .expect("tauri-driver starts (cargo install tauri-driver)");
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), "wry".into());
        caps.insert(
            "tauri:options".into(),
            serde_json::json!({
                "application": app_binary().expect("TDP_APP_BIN"),
                "args": launch.args,
            }),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            match ClientBuilder::rustls()
                .expect("tls")
                .capabilities(caps.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(c) => break c,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => panic!("no WebDriver session: {e}"),
            }
        };
        let app = App {
            client,
            driver,
            home: launch.home.to_path_buf(),
        };
        app.wait_for("the page is ready", |a| {
            Box::pin(async move {
                match a.client.find(Locator::Css("body[data-ready='true']")).await {
                    Ok(_) => a.text("version").await.starts_with("TDP"),
                    Err(_) => false,
                }
            })
        })
        .await;
        app
    }

    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.driver.wait();
    }

    fn css(hook: &str) -> Locator<'static> {
        Locator::Css(Box::leak(format!("[data-hook='{hook}']").into_boxed_str()))
    }

    /// The element with a hook. A lookup is tried again for a few seconds: WebKitWebDriver
    /// has been seen (once in many CI runs) to answer a lookup right after the page was ready
    /// with an error carrying no message, and to answer the next one.
    pub async fn el(&self, hook: &str) -> fantoccini::elements::Element {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.client.find(Self::css(hook)).await {
                Ok(el) => return el,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("looking up {hook} again after: {e:?}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("no {hook}: {e} ({e:?})"),
            }
        }
    }

    /// Clicks the element of `hook` once it takes clicks: right after a tab or a card is
    /// shown, WebKitWebDriver may answer "element not interactable" for a moment (seen once
    /// in CI on the Search tab's field), as a person would wait for it to appear.
    pub async fn click_ready(&self, hook: &str) -> fantoccini::elements::Element {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let el = self.el(hook).await;
            match el.click().await {
                Ok(()) => return el,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("clicking {hook} again after: {e:?}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("click {hook}: {e} ({e:?})"),
            }
        }
    }

    /// Types into a field as a person does: select what is there, type over it; checks the
    /// field then holds exactly the text (a render may land between two keystrokes).
    pub async fn type_into(&self, hook: &str, text: &str) {
        // WebDriver types a line break as the Enter key.
        let enter = char::from(fantoccini::key::Key::Enter).to_string();
        let ctrl = char::from(fantoccini::key::Key::Control).to_string();
        for _ in 0..5 {
            let el = self.click_ready(hook).await;
            el.send_keys(&format!("{ctrl}a{ctrl}"))
                .await
                .expect("select all");
            // An empty text is typed as a Backspace over the selection.
            let keys = if text.is_empty() {
                char::from(fantoccini::key::Key::Backspace).to_string()
            } else {
                text.replace('\n', &enter)
            };
            el.send_keys(&keys).await.expect("type");
            if self.value(hook).await.trim_end() == text.trim_end() {
                return;
            }
        }
        panic!("could not type into {hook}");
    }

    /// Pastes into a field: the whole text arrives at once, as one input event, as a paste
    /// from the clipboard does (typing thousands of characters takes a minute).
    pub async fn paste_into(&self, hook: &str, text: &str) {
        let el = self.click_ready(hook).await;
        let arg = serde_json::to_value(&el).expect("element");
        self.client
            .execute(
                "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('input', { bubbles: true }));",
                vec![arg, serde_json::Value::String(text.to_string())],
            )
            .await
            .expect("paste");
        assert_eq!(self.value(hook).await, text, "pasted into {hook}");
    }

    pub async fn click(&self, hook: &str) {
        self.click_ready(hook).await;
    }

    /// Clicks the element a CSS selector finds (controls without a hook of their own, such as
    /// the filter chips).
    pub async fn click_css(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// The transfer list's rows in the DOM that are shown: file ID, state, size, text.
    pub async fn rows(&self) -> Vec<serde_json::Value> {
        let v = self
            .client
            .execute(
                "return [...document.querySelectorAll('[data-hook=file-row]')].filter((e) => !e.hidden)
                   .sort((a, b) => parseFloat(a.style.top) - parseFloat(b.style.top))
                   .map((e) => ({ id: e.dataset.fileId, state: e.dataset.state, size: e.dataset.size, text: e.textContent }));",
                vec![],
            )
            .await
            .expect("rows");
        v.as_array().cloned().unwrap_or_default()
    }

    /// How many row elements the transfer list holds, shown or not.
    pub async fn row_elements(&self) -> usize {
        self.client
            .execute(
                "return document.querySelectorAll('[data-hook=file-row]').length;",
                vec![],
            )
            .await
            .ok()
            .and_then(|v| v.as_u64())
            .unwrap_or(0) as usize
    }

    /// Presses keys as a keyboard does (WebDriver key actions, to whatever has the focus):
    /// each character down and up; `Key` values (Tab, Enter) are characters too.
    pub async fn press(&self, keys: &str) {
        use fantoccini::actions::{InputSource, KeyAction, KeyActions};
        let mut seq = KeyActions::new("keyboard".into());
        for value in keys.chars() {
            seq = seq
                .then(KeyAction::Down { value })
                .then(KeyAction::Up { value });
        }
        self.client.perform_actions(seq).await.expect("key actions");
    }

    /// The focused element's hook (or its tag when it has none), and whether its focus ring
    /// shows (an outline or a box shadow).
    pub async fn focus(&self) -> (String, bool) {
        let v = self
            .client
            .execute(
                "const e = document.activeElement; const s = getComputedStyle(e);
                 return [e.dataset.hook || e.dataset.filter || e.tagName.toLowerCase(),
                         (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== 'none'];",
                vec![],
            )
            .await
            .expect("focus");
        (
            v[0].as_str().unwrap_or("").to_string(),
            v[1].as_bool().unwrap_or(false),
        )
    }

    /// Presses Tab until `hook` has the focus, checking that every stop on the way shows its
    /// focus; returns the stops.
    pub async fn tab_to(&self, hook: &str) -> Vec<String> {
        let tab = char::from(fantoccini::key::Key::Tab).to_string();
        let mut stops = Vec::new();
        for _ in 0..80 {
            self.press(&tab).await;
            let (at, ring) = self.focus().await;
            assert!(ring, "the focus on {at} is not visible");
            stops.push(at.clone());
            if at == hook {
                return stops;
            }
        }
        panic!("Tab never reached {hook}: {stops:?}");
    }

    /// Runs axe-core (the file `AXE_JS`, injected as WebDriver script: the page's CSP allows
    /// no script of its own) on the page; returns its violations (id, impact, nodes, help).
    pub async fn axe(&self) -> Vec<serde_json::Value> {
        let path = std::env::var("AXE_JS").expect("AXE_JS: run scripts/e2e.sh");
        let source = std::fs::read_to_string(&path).expect("axe-core");
        self.client
            .execute(&format!("{source}\nreturn typeof axe;"), vec![])
            .await
            .expect("axe-core loads");
        let v = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { resultTypes: ['violations'] })
                   .then((r) => done(r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
                       nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5) }))))
                   .catch((e) => done([{ id: 'axe-error', impact: 'critical', help: String(e) }]));",
                vec![],
            )
            .await
            .expect("axe runs");
        v.as_array().cloned().unwrap_or_default()
    }

    pub async fn text(&self, hook: &str) -> String {
        match self.client.find(Self::css(hook)).await {
            Ok(el) => el.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    pub async fn attr(&self, hook: &str, name: &str) -> Option<String> {
        self.el(hook).await.attr(name).await.ok().flatten()
    }

    pub async fn visible(&self, hook: &str) -> bool {
        match self.client.find(Self::css(hook)).await {
            Ok(el) => el.is_displayed().await.unwrap_or(false),
            Err(_) => false,
        }
    }

    pub async fn value(&self, hook: &str) -> String {
        self.el(hook)
            .await
            .prop("value")
            .await
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    pub async fn wait_for<F>(&self, what: &str, mut cond: F)
    where
        F: for<'a> FnMut(
            &'a App,
        )
            -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + 'a>>,
    {
        let deadline = Instant::now() + Duration::from_secs(90);
        while !cond(self).await {
            if Instant::now() > deadline {
                let mut seen = String::new();
                for hook in [
                    "conn-status",
                    "ids-status",
                    "error",
                    "files-count",
                    "summary",
                ] {
                    seen.push_str(&format!("\n  {hook}: {:?}", self.text(hook).await));
                }
                for hook in ["base-url", "org", "dest"] {
                    seen.push_str(&format!("\n  {hook} field: {:?}", self.value(hook).await));
                }
                panic!("timed out waiting for {what}; the window shows:{seen}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a screenshot of the window when E2E_SCREENSHOTS names a folder.
    pub async fn screenshot(&self, name: &str) {
        if let Some(dir) = std::env::var_os("E2E_SCREENSHOTS") {
            let dir = PathBuf::from(dir);
            let _ = std::fs::create_dir_all(&dir);
            if let Ok(png) = self.client.screenshot().await {
                let _ = std::fs::write(dir.join(format!("{name}.png")), png);
            }
        }
    }
}

/// A stand-in for the desktop's notification service (org.freedesktop.Notifications) on
/// this D-Bus session: it records each Notify's summary and body, and answers as a real one
/// does. It stops when dropped.
pub struct Notifications {
    seen: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Notifications {
    pub fn start() -> Notifications {
        use dbus::blocking::Connection;
        use dbus::channel::MatchingReceiver;
        use dbus::message::MatchRule;
        let conn = Connection::new_session().expect("the tests' D-Bus session");
        conn.request_name("org.freedesktop.Notifications", false, true, true)
            .expect("the notification service's name");
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = seen.clone();
        conn.start_receive(
            MatchRule::new_method_call(),
            Box::new(move |msg, conn| {
                let reply = match msg.member().as_deref() {
                    Some("Notify") => {
                        let mut args = msg.iter_init();
                        let _app: String = args.read().unwrap_or_default();
                        let _replaces: u32 = args.read().unwrap_or_default();
                        let _icon: String = args.read().unwrap_or_default();
                        let summary: String = args.read().unwrap_or_default();
                        let body: String = args.read().unwrap_or_default();
                        let mut seen = kept.lock().unwrap_or_else(|e| e.into_inner());
                        seen.push((summary, body));
                        msg.method_return().append1(seen.len() as u32)
                    }
                    Some("GetCapabilities") => msg.method_return().append1(vec!["body"]),
                    _ => msg.method_return(),
                };
                let _ = dbus::channel::Sender::send(conn, reply);
                true
            }),
        );
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                if conn.process(Duration::from_millis(50)).is_err() {
                    return;
                }
            }
        });
        Notifications { seen, stop }
    }

    /// The notifications received so far: (summary, body).
    pub fn seen(&self) -> Vec<(String, String)> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for Notifications {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

pub fn md5_of_file(path: &Path) -> String {
    let mut h = Md5::new();
    let mut f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    std::io::copy(&mut f, &mut h).expect("read");
    hex::encode(h.finalize())
}
