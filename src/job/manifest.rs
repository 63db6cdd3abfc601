//! The job manifest `.tdp-download/job.json`: what the job in a folder was asked to do (its
//! inputs, base URL, org, layout and options; never the token), so that the folder alone is
//! enough to resume it (`tdp-download --resume DIR`).
//!
//! Every file of the state folder that a job reads back says its format: the manifest in its
//! `format` field, the journal in its first record. A newer format is refused, because this
//! version could misread it and lose work; an older one is read and written back in this one.
//! `lock` is empty and `lock.info` is text for people; `<fileId>.part` files hold an object's
//! bytes as they are, their meaning in the journal.

use crate::input::{InputSources, ParsedIds, SavedInput};
use crate::job::config::JobConfig;
use crate::store::durable;
use crate::store::naming::Layout;
use crate::store::paths::no_follow;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::store::folder_format::{check_format, MANIFEST};
pub use crate::store::folder_format::{ManifestError, FORMAT};
pub use crate::store::paths::STATE_DIR;

/// As read back, `I` is the saved inputs; as written, a view of the job's input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest<I = Vec<SavedInput>> {
    pub format: u32,
    /// The program and version that started the job, for people reading the file.
    pub written_by: String,
    /// When the job (or the latest run of it) started, as an HTTP date.
    pub started: String,
    pub base_url: String,
    pub org: String,
    pub layout: Layout,
    pub input: I,
    /// A search job's search (its `input` is then empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<crate::tdp::search::Search>,
    pub options: Options,
}

/// The tuning a job ran with; a resumed job takes them unless told otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Options {
    pub concurrency: usize,
    pub api_concurrency: usize,
    pub read_timeout_secs: u64,
    pub retries: u32,
    pub network_patience_secs: u64,
    /// Set only when the report is not in its default place; absolute.
    pub report: Option<PathBuf>,
    /// Absolute paths.
    pub ca_certs: Vec<PathBuf>,
    /// Never with a password (the engine refuses one in the URL).
    pub proxy: Option<String>,
    /// A search job downloads outdated versions too.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub include_outdated: bool,
    /// The share of a search this job takes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::job::shard::Shard>,
}

impl Default for Options {
    fn default() -> Self {
        Options::of(&JobConfig::new("", "", Path::new("")))
    }
}

impl Options {
    fn of(cfg: &JobConfig) -> Options {
        Options {
            concurrency: cfg.concurrency,
            api_concurrency: cfg.api_concurrency,
            read_timeout_secs: cfg.read_timeout.as_secs(),
            retries: cfg.retry.budget,
            network_patience_secs: cfg.network_patience.as_secs(),
            report: cfg.report.as_deref().map(absolute),
            ca_certs: cfg.network.ca_certs.iter().map(|p| absolute(p)).collect(),
            proxy: cfg.network.proxy.clone(),
            include_outdated: cfg.include_outdated,
            shard: cfg.shard,
        }
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

impl Manifest<InputSources> {
    /// What `cfg` and `input` ask for.
    pub fn of(cfg: &JobConfig, input: &ParsedIds) -> Self {
        Manifest {
            format: FORMAT,
            written_by: format!("tdp-bulk-downloader {}", env!("CARGO_PKG_VERSION")),
            started: httpdate::fmt_http_date(std::time::SystemTime::now()),
            base_url: cfg.base_url.clone(),
            org: cfg.org.clone(),
            layout: cfg.layout,
            input: input.sources(),
            search: None,
            options: Options::of(cfg),
        }
    }
}

impl<I: Serialize> Manifest<I> {
    /// Writes the manifest into `state_dir`, whole or not at all.
    pub(crate) fn write(&self, state_dir: &Path) -> Result<(), ManifestError> {
        let path = state_dir.join(MANIFEST);
        let tmp = state_dir.join("job.json.tmp");
        let err = |source| ManifestError::Write {
            path: path.clone(),
            source,
        };
        let f = no_follow()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(err)?;
        let mut out = std::io::BufWriter::new(f);
        serde_json::to_writer_pretty(&mut out, self).map_err(|e| err(e.into()))?;
        out.write_all(b"\n").map_err(err)?;
        out.flush().map_err(err)?;
        durable::sync_data(out.get_ref(), &tmp, "sync manifest").map_err(err)?;
        durable::replace(&tmp, &path).map_err(err)?;
        Ok(())
    }
}

impl Manifest {
    /// The job again, downloading into `dest` (the folder the manifest is in).
    pub fn config(&self, dest: &Path) -> JobConfig {
        let o = &self.options;
        let mut cfg = JobConfig::new(&self.base_url, &self.org, dest);
        cfg.layout = self.layout;
        cfg.concurrency = o.concurrency.clamp(1, JobConfig::MAX_CONCURRENCY);
        cfg.api_concurrency = o.api_concurrency.max(1);
        cfg.read_timeout = Duration::from_secs(o.read_timeout_secs.max(1));
        cfg.retry.budget = o.retries.max(1);
        cfg.network_patience = Duration::from_secs(o.network_patience_secs.max(1));
        cfg.report = o.report.clone();
        cfg.network.ca_certs = o.ca_certs.clone();
        cfg.network.proxy = o.proxy.clone();
        cfg.include_outdated = o.include_outdated;
        cfg.shard = o.shard;
        cfg
    }

    pub fn input(&self) -> ParsedIds {
        ParsedIds::from_saved(self.input.clone())
    }

    /// The job's files: its search, else its IDs.
    pub fn files(&self) -> crate::tdp::files::JobFiles {
        match &self.search {
            Some(search) => crate::tdp::files::JobFiles::Search(search.clone()),
            None => crate::tdp::files::JobFiles::Ids(self.input()),
        }
    }

    /// Reads the manifest of the job in `folder` (the destination, or its state folder).
    /// Reading is allowed while another job holds the folder: nothing is changed.
    pub fn read(folder: &Path) -> Result<Manifest, ManifestError> {
        Manifest::read_shard(folder, None)
    }

    /// [`Manifest::read`] of a shard's job in `folder`.
    pub fn read_shard(
        folder: &Path,
        shard: Option<crate::job::shard::Shard>,
    ) -> Result<Manifest, ManifestError> {
        let folder = if folder.file_name().is_some_and(|n| n == STATE_DIR) {
            folder.parent().unwrap_or(folder)
        } else {
            folder
        };
        let path = crate::job::shard::state_dir(folder, shard).join(MANIFEST);
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ManifestError::Missing {
                    folder: folder.to_path_buf(),
                })
            }
            Err(source) => return Err(ManifestError::Unreadable { path, source }),
        };
        let invalid = |reason: String| ManifestError::Invalid {
            path: path.clone(),
            reason,
        };
        let value: serde_json::Value =
            serde_json::from_slice(&text).map_err(|e| invalid(e.to_string()))?;
        check_format(folder, &value)?;
        serde_json::from_value(value).map_err(|e| invalid(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::parse_ids;

    const A: &str = "3f2b8c1e-5d4a-4e2b-9c1d-7a6b5c4d3e2f";

    #[test]
    fn a_manifest_gives_back_the_job_it_was_made_of() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join(STATE_DIR);
        std::fs::create_dir_all(&state).unwrap();
        let mut cfg = JobConfig::new("https://api.example.com", "acme", dir.path());
        cfg.layout = Layout::Mirror;
        cfg.concurrency = 7;
        cfg.network.ca_certs = vec![PathBuf::from("corp.pem")];
        let input = parse_ids(&format!("fileId\n{A}\nnot an id\n{A}\n"))
            .merge(crate::input::parse_args(&[A.to_string()], 5));
        Manifest::of(&cfg, &input).write(&state).unwrap();

        // From the folder or from its state folder.
        let m = Manifest::read(dir.path()).unwrap();
        assert_eq!(m, Manifest::read(&state).unwrap());
        let again = m.config(dir.path());
        assert_eq!(again.base_url, cfg.base_url);
        assert_eq!(again.org, "acme");
        assert_eq!(again.layout, Layout::Mirror);
        assert_eq!(again.concurrency, 7);
        assert!(again.network.ca_certs[0].is_absolute());
        assert!(again.network.ca_certs[0].ends_with("corp.pem"));
        let lines: Vec<_> = m.input().lines().collect();
        assert_eq!(lines, input.lines().collect::<Vec<_>>());
        assert_eq!(m.input().counts(), input.counts());
        let text = std::fs::read_to_string(state.join(MANIFEST)).unwrap();
        assert!(text.contains("\"format\": 1"), "{text}");
    }

    #[test]
    fn a_newer_format_is_refused_and_a_missing_manifest_explained() {
        let dir = tempfile::tempdir().unwrap();
        let e = Manifest::read(dir.path()).unwrap_err();
        assert!(matches!(e, ManifestError::Missing { .. }), "{e}");
        assert!(e.to_string().contains("no download to resume"), "{e}");

        let state = dir.path().join(STATE_DIR);
        std::fs::create_dir_all(&state).unwrap();
        std::fs::write(state.join(MANIFEST), r#"{"format": 9, "future": true}"#).unwrap();
        let e = Manifest::read(dir.path()).unwrap_err();
        assert!(
            e.to_string().contains("written by a newer version")
                && e.to_string().contains("format 9"),
            "{e}"
        );
        assert!(crate::store::folder_format::check_folder(&state).is_err());
    }
}
