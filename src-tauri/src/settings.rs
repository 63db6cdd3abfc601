//! Ordinary settings (base URL, org, last destination, options) in the app's config folder.
//! The token is never among them.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Settings {
    pub base_url: String,
    pub org: String,
    pub dest: String,
    pub layout: String,
    pub concurrency: Option<usize>,
    /// An extra CA certificate file (PEM).
    pub ca_cert: String,
    /// An explicit proxy address; its password is in the keychain, never here.
    pub proxy: String,
    /// Let the computer sleep while a job runs (by default it is kept awake).
    pub allow_sleep: bool,
    /// A download speed limit in MB/s; none when empty.
    pub limit_mbps: Option<f64>,
}

pub fn path(config_dir: PathBuf) -> PathBuf {
    config_dir.join("settings.json")
}

/// Reads what it can: a field of the wrong type (an older or hand-edited file) loses only
/// that field, not the others.
pub fn load(file: &std::path::Path) -> Settings {
    let Some(v) = std::fs::read(file)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
    else {
        return Settings::default();
    };
    let text = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
    Settings {
        base_url: text("baseUrl"),
        org: text("org"),
        dest: text("dest"),
        layout: text("layout"),
        ca_cert: text("caCert"),
        proxy: text("proxy"),
        allow_sleep: v
            .get("allowSleep")
            .and_then(|x| x.as_bool())
            .unwrap_or(false),
        limit_mbps: v
            .get("limitMbps")
            .and_then(|x| x.as_f64())
            .filter(|r| r.is_finite() && *r > 0.0),
        concurrency: v.get("concurrency").and_then(|c| {
            c.as_u64()
                .or_else(|| c.as_str().and_then(|s| s.parse().ok()))
                .map(|n| n as usize)
        }),
    }
}

/// A proxy address without any password typed into it: passwords live in the keychain.
fn without_password(proxy: &str) -> String {
    let (scheme, rest) = proxy.split_once("://").unwrap_or(("", proxy));
    match rest.split_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            let prefix = if scheme.is_empty() {
                String::new()
            } else {
                format!("{scheme}://")
            };
            format!("{prefix}{user}@{host}")
        }
        None => proxy.to_string(),
    }
}

/// Files per second of the last job that downloaded enough to tell, kept beside the
/// settings (the window never writes it): it says whether a token will last the next job.
fn rate_file(settings: &std::path::Path) -> PathBuf {
    settings.with_file_name("last-job-rate")
}

pub fn load_rate(settings: &std::path::Path) -> Option<f64> {
    let text = std::fs::read_to_string(rate_file(settings)).ok()?;
    text.trim()
        .parse()
        .ok()
        .filter(|r: &f64| r.is_finite() && *r > 0.0)
}

pub fn save_rate(settings: &std::path::Path, summary: &tdp_engine::Summary) {
    if summary.downloaded >= 10 && summary.seconds >= 1.0 {
        let rate = summary.downloaded as f64 / summary.seconds;
        let _ = std::fs::write(rate_file(settings), format!("{rate}\n"));
    }
}

pub fn save(file: &std::path::Path, s: &Settings) -> std::io::Result<()> {
    let s = &Settings {
        proxy: without_password(&s.proxy),
        ..s.clone()
    };
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = file.with_extension("json.tmp");
    std::fs::write(
        &tmp,
        serde_json::to_vec_pretty(s).map_err(std::io::Error::other)?,
    )?;
    std::fs::rename(tmp, file)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_proxy_password_is_never_saved() {
        assert_eq!(
            super::without_password("http://alice:secret@proxy:3128"),
            "http://alice@proxy:3128"
        );
        assert_eq!(super::without_password("proxy:3128"), "proxy:3128");
    }
}
