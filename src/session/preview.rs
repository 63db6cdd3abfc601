//! What a search would download, before anything is: "1,234 files, 56.7 GiB, 12 already in
//! this folder". Pages the whole search (so the figures are exact) and keeps only counters,
//! whatever the number of hits.

use crate::job::config::JobConfig;
use crate::job::error::JobError;
use crate::secret::Token;
use crate::size::human;
use crate::store::journal::completed_files;
use crate::store::state::join_rel;
use crate::tdp::pager::Pager;
use crate::tdp::search::Search;
use serde::Serialize;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Preview {
    /// Files that would be downloaded (or found in place).
    pub files: u64,
    /// Their total size, as search gives it.
    pub bytes: u64,
    /// Of those, already complete in the destination (by its journal).
    pub in_folder: u64,
    /// Bytes of those already there.
    pub in_folder_bytes: u64,
    /// Hits left out: deleted in TDP, outdated versions.
    pub deleted: u64,
    pub outdated: u64,
    /// Every page has been read.
    pub complete: bool,
}

impl Preview {
    /// The line people read: `1,234 files, 56.7 GiB, 12 already in this folder`.
    pub fn line(&self) -> String {
        let mut line = format!(
            "{} {}, {}, {} already in this folder",
            thousands(self.files),
            if self.files == 1 { "file" } else { "files" },
            human(self.bytes),
            thousands(self.in_folder)
        );
        if self.deleted + self.outdated > 0 {
            line.push_str(&format!(
                "; left out: {} deleted, {} outdated",
                thousands(self.deleted),
                thousands(self.outdated)
            ));
        }
        line
    }

    /// Bytes still to download.
    pub fn to_fetch(&self) -> u64 {
        self.bytes.saturating_sub(self.in_folder_bytes)
    }
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Pages `search` to the end and counts what a job in `cfg.dest` would do; `on_page` sees
/// the figures grow. Downloads nothing and writes nothing.
pub async fn preview(
    cfg: &JobConfig,
    token: Token,
    search: &Search,
    mut on_page: impl FnMut(&Preview),
) -> Result<Preview, JobError> {
    let (_, tdp) = crate::job::run::connect(cfg, token)?;
    let state_dir = cfg.state_dir();
    let done = tokio::task::spawn_blocking(move || completed_files(&state_dir))
        .await
        .map_err(|e| JobError::Internal(e.to_string()))?;
    let mut p = Preview::default();
    let mut pager = Pager::new(search, cfg.retry, cfg.network_patience);
    while let Some(hits) = pager.next_page(&tdp).await? {
        for hit in hits {
            let key = uuid::Uuid::try_parse(&hit.id)
                .map(|u| u.as_u128())
                .unwrap_or(0);
            if cfg.shard.is_some_and(|s| !s.takes(key)) {
                continue;
            }
            match hit.excluded(cfg.include_outdated) {
                Some(crate::tdp::search::Exclusion::Deleted) => p.deleted += 1,
                Some(crate::tdp::search::Exclusion::Outdated) => p.outdated += 1,
                None => {
                    let size = hit.size.unwrap_or(0);
                    p.files += 1;
                    p.bytes += size;
                    let there = done
                        .get(&key)
                        .is_some_and(|rel| join_rel(&cfg.dest, rel).is_file());
                    if there {
                        p.in_folder += 1;
                        p.in_folder_bytes += size;
                    }
                }
            }
        }
        on_page(&p);
    }
    p.complete = true;
    on_page(&p);
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preview_line_reads_as_people_write_it() {
        let p = Preview {
            files: 1234,
            bytes: 56_700 * 1024 * 1024,
            in_folder: 12,
            ..Preview::default()
        };
        assert_eq!(p.line(), "1,234 files, 55.4 GiB, 12 already in this folder");
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(thousands(999), "999");
    }
}
