//! The state folder `<dest>/.tdp-download/`: one `<fileId>.part` per file in progress and an
//! append-only journal (JSON lines) of names given, objects seen, byte ranges made durable and
//! files completed. Reruns read it to skip, resume and name files as before.

use crate::storage::s3::ObjectInfo;
use crate::store::durable;
use crate::store::folder_format::{self, ManifestError, FORMAT};
use crate::store::lock::{self, FolderLock, LockError};
use crate::store::naming::{path_hash, NameFolding, MAX_NAME_BYTES};
use crate::store::paths::no_follow;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use crate::store::journal::{apply, id_of, key, records_of, write_record, Record, Slot, JOURNAL};
pub use crate::store::journal::{DoneInfo, FileState, Verified};
pub use crate::store::paths::STATE_DIR;

pub use crate::store::durable::Journal;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot use the destination folder {path}: {source}")]
    Destination {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the download state in {path}: {source}")]
    Journal {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no free file name for {0}")]
    NoFreeName(String),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("the download state in {folder} was written by a newer version of this program (journal format {found}; this one reads up to {FORMAT}): update it, or download to another folder")]
    NewerJournal { folder: PathBuf, found: u32 },
}

impl StateError {
    pub fn io(&self) -> Option<&std::io::Error> {
        match self {
            StateError::Destination { source, .. } | StateError::Journal { source, .. } => {
                Some(source)
            }
            StateError::Lock(LockError::Io { source, .. }) => Some(source),
            StateError::Manifest(m) => m.io(),
            StateError::NoFreeName(_)
            | StateError::Lock(LockError::Busy { .. })
            | StateError::NewerJournal { .. } => None,
        }
    }
}

pub struct Store {
    pub(super) dest: PathBuf,
    pub(super) dir: PathBuf,
    /// By file ID as a number.
    pub(super) files: HashMap<u128, Slot>,
    /// Hashes of the relative paths given out, in the form the file system files them under
    /// (`folding`), to their IDs. A hash collision only costs a suffix, never an overwrite.
    pub(super) taken: HashMap<u64, u128>,
    pub(super) folding: NameFolding,
    pub(super) reserved: HashSet<String>,
    /// The longest name the destination's file system takes, in bytes.
    pub(super) name_max: usize,
    pub(super) journal: File,
    /// Nothing but the job's own (state folder, report) was in the destination when the job
    /// began: no earlier job's file can be at a name, so names are given without looking
    /// on disk (the no-replace move still never overwrites what appears meanwhile).
    pub(super) empty_at_start: bool,
    /// A `.part` was in the state folder when the job began (an earlier run's leftover).
    pub(super) parts_at_start: bool,
    /// One job per folder, for as long as the store is open.
    _lock: FolderLock,
}

/// `a/b/c` → a path below `base`.
pub fn join_rel(base: &Path, rel: &str) -> PathBuf {
    let mut p = base.to_path_buf();
    for part in rel.split('/') {
        p.push(part);
    }
    p
}

impl Store {
    /// Opens (creating) the destination and its state folder, folds the journal and rewrites
    /// it compacted. `reserved` are relative names the job itself writes (the report).
    pub fn open(dest: &Path, reserved: &[String]) -> Result<Store, StateError> {
        Store::open_in(dest, &dest.join(STATE_DIR), reserved)
    }

    /// [`Store::open`] with the state folder `dir` (a shard's, inside `<dest>/.tdp-download`).
    pub fn open_in(dest: &Path, dir: &Path, reserved: &[String]) -> Result<Store, StateError> {
        let dest_err = |source| StateError::Destination {
            path: dest.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dest).map_err(dest_err)?;
        let dir = dir.to_path_buf();
        std::fs::create_dir_all(&dir).map_err(dest_err)?;
        // The state folder must be a real folder: a link could send the journal and the
        // partial files anywhere.
        let is_dir = dir.symlink_metadata().map(|m| m.is_dir()).unwrap_or(false);
        if !is_dir {
            return Err(StateError::Destination {
                path: dir.clone(),
                source: std::io::Error::other(
                    "it is not a folder (a link or a file); remove it and run again",
                ),
            });
        }
        // Before anything in the folder is read or written: one job per folder.
        let lock = lock::acquire(&dir, dest)?;
        folder_format::check_folder(&dir)?;
        let path = dir.join(JOURNAL);
        let jerr = |source| StateError::Journal {
            path: path.clone(),
            source,
        };
        let mut files: HashMap<u128, Slot> = HashMap::new();
        if let Ok(f) = no_follow().read(true).open(&path) {
            // Raw lines, not `lines()`: a line that is not UTF-8 (a torn write, a disk error)
            // is skipped like any unreadable line, and the rest is still read.
            for line in BufReader::new(f).split(b'\n') {
                let Ok(line) = line else { break };
                // A torn last line (power loss) is skipped: it only loses progress.
                let Ok(rec) = serde_json::from_slice::<Record>(&line) else {
                    continue;
                };
                // No format record: the first version's journal, read as it is and written
                // back in this format below.
                if let Record::Format { version } = rec {
                    if version > FORMAT {
                        return Err(StateError::NewerJournal {
                            folder: dest.to_path_buf(),
                            found: version,
                        });
                    }
                }
                apply(&mut files, rec);
            }
        }
        // Compact: one record per fact still true, written beside and renamed over.
        let tmp = dir.join("journal.jsonl.tmp");
        {
            let file = no_follow()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)
                .map_err(jerr)?;
            let mut out = std::io::BufWriter::new(file);
            write_record(&mut out, &Record::Format { version: FORMAT }).map_err(jerr)?;
            for (key, st) in &files {
                for rec in records_of(&id_of(*key), &st.to_state()) {
                    write_record(&mut out, &rec).map_err(jerr)?;
                }
            }
            out.flush().map_err(jerr)?;
            durable::sync_data(out.get_ref(), &tmp, "sync journal").map_err(jerr)?;
        }
        durable::replace(&tmp, &path).map_err(jerr)?;
        durable::sync_dir(&dir).map_err(jerr)?;
        let journal = no_follow().append(true).open(&path).map_err(jerr)?;
        let folding = NameFolding::probe(&dir);
        let mut taken = HashMap::new();
        for (key, st) in &files {
            if let Some(p) = &st.path {
                taken.insert(path_hash(folding, p), *key);
            }
        }
        let mut reserved: HashSet<String> = reserved.iter().map(|r| r.to_lowercase()).collect();
        reserved.insert(STATE_DIR.to_lowercase());
        let empty_at_start = files.is_empty()
            && std::fs::read_dir(dest).is_ok_and(|entries| {
                entries.flatten().all(|e| {
                    let name = e.file_name().to_string_lossy().to_lowercase();
                    reserved.contains(&name) || name.starts_with("tdp-download-report")
                })
            });
        let parts_at_start = std::fs::read_dir(&dir).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.file_name().to_string_lossy().ends_with(".part"))
        });
        Ok(Store {
            empty_at_start,
            parts_at_start,
            dest: dest.to_path_buf(),
            dir,
            files,
            taken,
            folding,
            reserved,
            name_max: MAX_NAME_BYTES,
            journal,
            _lock: lock,
        })
    }

    /// Names given out from now on are at most `bytes` long per component.
    pub fn set_name_max(&mut self, bytes: usize) {
        // Room for the longest suffix (`~` + a file ID) and an extension. Tests go above what
        // the file system takes, to meet its refusal.
        self.name_max = bytes.max(64);
    }

    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Whether a `.part` of a file starting afresh may hold an earlier run's bytes: only if
    /// the folder had any when the job began (this run removes its own on a reset).
    pub fn may_have_old_part(&self) -> bool {
        self.parts_at_start
    }

    pub fn part_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.part"))
    }

    pub fn scratch_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.decoding"))
    }

    pub fn file(&self, id: &str) -> FileState {
        self.files
            .get(&key(id))
            .map(Slot::to_state)
            .unwrap_or_default()
    }

    /// Room for `n` more files, so a large job does not rehash as it goes.
    pub fn reserve(&mut self, n: usize) {
        self.files.reserve(n);
        self.taken.reserve(n);
    }

    pub(super) fn append(&mut self, rec: Record) -> Result<(), StateError> {
        let mut line = serde_json::to_vec(&rec).unwrap_or_default();
        line.push(b'\n');
        durable::append(
            &mut self.journal,
            &line,
            &self.dir.join(JOURNAL),
            rec.what(),
            rec.id(),
            rec.span(),
        )
        .map_err(|source| StateError::Journal {
            path: self.dir.join(JOURNAL),
            source,
        })?;
        apply(&mut self.files, rec);
        Ok(())
    }

    pub fn record_object(&mut self, id: &str, info: &ObjectInfo) -> Result<(), StateError> {
        self.append(Record::Object {
            id: id.to_string(),
            info: info.clone(),
        })
    }

    /// Call only after the bytes of `[start, end)` are flushed to disk.
    pub fn record_range(&mut self, id: &str, start: u64, end: u64) -> Result<(), StateError> {
        self.append(Record::Range {
            id: id.to_string(),
            start,
            end,
        })
    }

    pub fn record_done(&mut self, id: &str, info: DoneInfo) -> Result<(), StateError> {
        self.append(Record::Done {
            id: id.to_string(),
            info,
        })
    }

    /// A second handle on the journal, to sync it without holding the store.
    pub fn journal(&self) -> Result<Journal, StateError> {
        let path = self.dir.join(JOURNAL);
        let file = self
            .journal
            .try_clone()
            .map_err(|source| StateError::Journal {
                path: path.clone(),
                source,
            })?;
        Ok(Journal::new(file, path))
    }

    /// Forgets the object and its ranges (the name stays) and removes the `.part`.
    pub fn reset(&mut self, id: &str) -> Result<(), StateError> {
        let _ = std::fs::remove_file(self.part_path(id));
        self.append(Record::Reset { id: id.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_journal_of_the_first_format_is_upgraded_and_a_newer_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join(STATE_DIR);
        std::fs::create_dir_all(&state).unwrap();
        let a = "aaaaaaaa-0000-4000-8000-000000000000";
        // As the first version wrote it: no format record.
        std::fs::write(
            state.join(JOURNAL),
            format!("{{\"t\":\"name\",\"id\":\"{a}\",\"path\":\"a.bin\"}}\n"),
        )
        .unwrap();
        drop(Store::open(dir.path(), &[]).unwrap());
        let text = std::fs::read_to_string(state.join(JOURNAL)).unwrap();
        assert!(
            text.starts_with("{\"t\":\"format\",\"version\":1}\n"),
            "{text}"
        );
        let s = Store::open(dir.path(), &[]).unwrap();
        assert_eq!(s.file(a).path.as_deref(), Some("a.bin"));
        drop(s);

        std::fs::write(
            state.join(JOURNAL),
            format!("{{\"t\":\"format\",\"version\":2}}\n{text}"),
        )
        .unwrap();
        let e = Store::open(dir.path(), &[]).err().unwrap();
        assert!(
            matches!(e, StateError::NewerJournal { found: 2, .. }),
            "{e}"
        );
        // Refused before anything was rewritten.
        assert!(std::fs::read_to_string(state.join(JOURNAL))
            .unwrap()
            .starts_with("{\"t\":\"format\",\"version\":2}"));
    }

    #[test]
    fn names_and_ranges_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("taken.txt"), b"user's own").unwrap();
        let mut s = Store::open(dir.path(), &["report.json".into()]).unwrap();
        // As on NTFS or APFS; the probe's own finding is tested below.
        s.folding = NameFolding {
            case: true,
            composition: true,
        };
        let a = "aaaaaaaa-0000-4000-8000-000000000000";
        let b = "bbbbbbbb-0000-4000-8000-000000000000";
        assert_eq!(s.assign_path(a, "0.json", Some(1000)).unwrap(), "0.json");
        assert_eq!(
            s.assign_path(b, "0.JSON", Some(1000)).unwrap(),
            "0~bbbbbbbb.JSON"
        );
        assert_eq!(s.assign_path(a, "taken.txt", Some(1000)).unwrap(), "0.json");
        assert_eq!(
            s.assign_path(b, "x", Some(1000)).unwrap(),
            "0~bbbbbbbb.JSON"
        );
        let c = "cccccccc-0000-4000-8000-000000000000";
        assert_eq!(
            s.assign_path(c, "taken.txt", Some(1000)).unwrap(),
            "taken~cccccccc.txt"
        );
        // A file of the very length this one will have may be it: placing compares bytes.
        let e = "eeeeeeee-0000-4000-8000-000000000000";
        assert_eq!(
            s.assign_path(e, "taken.txt", Some(10)).unwrap(),
            "taken.txt"
        );
        let d = "dddddddd-0000-4000-8000-000000000000";
        assert_eq!(
            s.assign_path(d, "report.json", Some(1000)).unwrap(),
            "report~dddddddd.json"
        );
        let info = ObjectInfo {
            size: 100,
            etag: None,
            encoding: None,
            sse: None,
            checksum: None,
        };
        s.record_object(a, &info).unwrap();
        s.record_range(a, 0, 10).unwrap();
        s.record_range(a, 10, 30).unwrap();
        drop(s);
        let s = Store::open(dir.path(), &[]).unwrap();
        let f = s.file(a);
        assert_eq!(f.path.as_deref(), Some("0.json"));
        assert_eq!(f.ranges.missing(100), vec![(30, 100)]);
        assert_eq!(s.file(b).path.as_deref(), Some("0~bbbbbbbb.JSON"));
    }

    #[test]
    fn a_journal_line_that_is_not_utf8_is_skipped_and_the_rest_read() {
        let dir = tempfile::tempdir().unwrap();
        let a = "aaaaaaaa-0000-4000-8000-000000000000";
        let b = "bbbbbbbb-0000-4000-8000-000000000000";
        let mut s = Store::open(dir.path(), &[]).unwrap();
        s.assign_path(a, "a.bin", Some(1000)).unwrap();
        drop(s);
        let journal = dir.path().join(STATE_DIR).join(JOURNAL);
        let mut text = std::fs::read(&journal).unwrap();
        text.extend_from_slice(b"{\"t\":\"name\",\xff\xfe garbage}\n");
        text.extend_from_slice(
            format!("{{\"t\":\"name\",\"id\":\"{b}\",\"path\":\"b.bin\"}}\n").as_bytes(),
        );
        std::fs::write(&journal, text).unwrap();
        let s = Store::open(dir.path(), &[]).unwrap();
        assert_eq!(s.file(a).path.as_deref(), Some("a.bin"));
        assert_eq!(
            s.file(b).path.as_deref(),
            Some("b.bin"),
            "read past the bad line"
        );
    }

    #[test]
    fn no_key_writes_into_the_state_folder() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path(), &[]).unwrap();
        let a = "aaaaaaaa-0000-4000-8000-000000000000";
        let p = s
            .assign_path(a, ".tdp-download/journal.jsonl", Some(1000))
            .unwrap();
        assert!(!p.to_lowercase().starts_with(".tdp-download/"), "{p}");
        let b = "bbbbbbbb-0000-4000-8000-000000000000";
        let p = s.assign_path(b, ".TDP-Download/x.bin", Some(1000)).unwrap();
        assert!(!p.to_lowercase().starts_with(".tdp-download/"), "{p}");
    }

    #[cfg(unix)]
    #[test]
    fn a_link_planted_at_the_journal_is_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside.txt");
        std::fs::write(&outside, b"not yours").unwrap();
        let dest = dir.path().join("dest");
        std::fs::create_dir_all(dest.join(STATE_DIR)).unwrap();
        let journal = dest.join(STATE_DIR).join(JOURNAL);
        std::os::unix::fs::symlink(&outside, &journal).unwrap();
        let mut s = Store::open(&dest, &[]).unwrap();
        s.assign_path("aaaaaaaa-0000-4000-8000-000000000000", "a.bin", Some(1000))
            .unwrap();
        assert_eq!(std::fs::read(&outside).unwrap(), b"not yours");
        assert!(journal.symlink_metadata().unwrap().is_file());
        // A link in place of a .part is refused, not written through.
        let part = dest.join(STATE_DIR).join("x.part");
        std::os::unix::fs::symlink(&outside, &part).unwrap();
        assert!(no_follow().write(true).open(&part).is_err());
        assert_eq!(std::fs::read(&outside).unwrap(), b"not yours");
    }

    #[cfg(unix)]
    #[test]
    fn a_symlinked_state_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let dest = dir.path().join("dest");
        std::fs::create_dir(&dest).unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), dest.join(STATE_DIR)).unwrap();
        let Err(e) = Store::open(&dest, &[]) else {
            panic!("a symlinked state folder was used")
        };
        assert!(e.to_string().contains("not a folder"), "{e}");
        assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
    }
}
