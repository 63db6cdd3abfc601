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
        concurrency: v.get("concurrency").and_then(|c| {
            c.as_u64()
                .or_else(|| c.as_str().and_then(|s| s.parse().ok()))
                .map(|n| n as usize)
        }),
    }
}

pub fn save(file: &std::path::Path, s: &Settings) -> std::io::Result<()> {
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
