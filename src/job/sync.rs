//! A search run again into the same folder is a sync: it fetches only what is not in place.
//! `sync.json` in the state folder remembers the last sync that put every hit in place: its
//! search and its watermark, the moment its listing started.
//!
//! The rule (after TetraScience's own sync example): an EQL sync lists only the files indexed
//! at or after the last watermark less an overlap (`indexedAt >= watermark - overlap`), and
//! never files created after its own start (its listing's upper bound is in the past when it
//! ends, so the next sync's lower bound never leaves a gap). A file indexed late, with an
//! `indexedAt` older than that, is missed by such a narrowed listing: so every Nth sync, and
//! any sync run with `--full`, lists in full. A fileinfo search (`--search`) cannot narrow on
//! `indexedAt` (it filters on `createdAt`, which says nothing of when a file became
//! searchable), so it always lists in full; what is in place is skipped without a request.
//! The watermark moves only when a sync ends with every hit in place, so a file that failed is
//! listed again by the next sync.

use crate::job::config::JobConfig;
use crate::tdp::search::Search;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

const SYNC_FILE: &str = "sync.json";
const FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncRecord {
    pub format: u32,
    pub search: Search,
    /// When the last complete sync's listing started: milliseconds since 1970, and for people.
    pub watermark_ms: i64,
    pub watermark: String,
    /// Complete syncs so far, and the number of the last one that listed in full.
    pub syncs: u32,
    pub last_full: u32,
}

/// What a sync lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listing {
    /// Every hit; the reason, for people.
    Full(String),
    /// Files indexed at or after this moment (milliseconds since 1970).
    Since(i64),
}

pub fn read(state_dir: &Path) -> Option<SyncRecord> {
    let text = std::fs::read(state_dir.join(SYNC_FILE)).ok()?;
    serde_json::from_slice::<SyncRecord>(&text)
        .ok()
        .filter(|r| r.format <= FORMAT)
}

/// Writes the record beside the journal, whole or not at all.
pub fn write(state_dir: &Path, record: &SyncRecord) -> std::io::Result<()> {
    let path = state_dir.join(SYNC_FILE);
    let tmp = state_dir.join("sync.json.tmp");
    {
        let mut f = crate::store::sink::no_follow()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        let text = serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?;
        f.write_all(&text)?;
        crate::store::durable::sync_data(&f, &tmp, "sync sync.json")?;
    }
    crate::store::durable::replace(&tmp, &path)
}

/// How this run of `search` lists, given the folder's last complete sync.
pub fn plan(last: Option<&SyncRecord>, search: &Search, cfg: &JobConfig) -> Listing {
    let Some(last) = last.filter(|l| &l.search == search) else {
        return Listing::Full("the first sync into this folder".into());
    };
    if cfg.full_listing {
        return Listing::Full("--full".into());
    }
    if matches!(search, Search::Fileinfo { .. }) {
        return Listing::Full(
            "a fileinfo search cannot tell what was indexed since the last sync".into(),
        );
    }
    let every = cfg.full_every.max(1);
    if last.syncs + 1 - last.last_full >= every {
        return Listing::Full(format!("every {every}th sync lists in full"));
    }
    let overlap = i64::try_from(cfg.sync_overlap.as_millis()).unwrap_or(i64::MAX);
    Listing::Since(last.watermark_ms.saturating_sub(overlap))
}

/// The record after a sync that put every hit in place.
pub fn next(
    last: Option<&SyncRecord>,
    search: &Search,
    listing: &Listing,
    started_ms: i64,
    started: String,
) -> SyncRecord {
    let same = last.filter(|l| &l.search == search);
    let syncs = same.map_or(0, |l| l.syncs) + 1;
    SyncRecord {
        format: FORMAT,
        search: search.clone(),
        watermark_ms: started_ms,
        watermark: started,
        syncs,
        last_full: match listing {
            Listing::Full(_) => syncs,
            Listing::Since(_) => same.map_or(0, |l| l.last_full),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn an_eql_sync_narrows_until_every_nth_and_a_fileinfo_one_never_does() {
        let mut cfg = JobConfig::new("https://x", "o", Path::new("/tmp"));
        cfg.sync_overlap = Duration::from_secs(60);
        cfg.full_every = 3;
        let eql = Search::parse_eql(r#"{"query": {"match_all": {}}}"#).unwrap();
        assert!(matches!(plan(None, &eql, &cfg), Listing::Full(_)));
        let first = next(
            None,
            &eql,
            &Listing::Full(String::new()),
            1_000_000,
            "t".into(),
        );
        assert_eq!((first.syncs, first.last_full), (1, 1));
        assert_eq!(plan(Some(&first), &eql, &cfg), Listing::Since(940_000));
        let second = next(
            Some(&first),
            &eql,
            &Listing::Since(940_000),
            2_000_000,
            "t".into(),
        );
        assert_eq!((second.syncs, second.last_full), (2, 1));
        assert_eq!(plan(Some(&second), &eql, &cfg), Listing::Since(1_940_000));
        let third = next(
            Some(&second),
            &eql,
            &Listing::Since(0),
            3_000_000,
            "t".into(),
        );
        assert!(
            matches!(plan(Some(&third), &eql, &cfg), Listing::Full(_)),
            "every 3rd"
        );
        cfg.full_listing = true;
        assert!(matches!(plan(Some(&first), &eql, &cfg), Listing::Full(_)));
        cfg.full_listing = false;
        let fileinfo = Search::parse_query("category=RAW").unwrap();
        let f1 = next(
            None,
            &fileinfo,
            &Listing::Full(String::new()),
            1,
            "t".into(),
        );
        assert!(matches!(plan(Some(&f1), &fileinfo, &cfg), Listing::Full(_)));
        let other = Search::parse_eql(r#"{"query": {"term": {"category": "IDS"}}}"#).unwrap();
        assert!(matches!(plan(Some(&first), &other, &cfg), Listing::Full(_)));
    }
}
