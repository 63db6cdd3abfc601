//! The state folder `<dest>/.tdp-download/`: one `<fileId>.part` per file in progress and an
//! append-only journal (JSON lines) of names given, objects seen, byte ranges made durable and
//! files completed. Reruns read it to skip, resume and name files as before.

use crate::ranges::Ranges;
use crate::storage::s3::ObjectInfo;
use crate::store::durable;
use crate::store::folder_format::{self, ManifestError, FORMAT};
use crate::store::lock::{self, FolderLock, LockError};
use crate::store::naming::{fallback_name, fit, with_suffix, NameFolding, MAX_NAME_BYTES};
use crate::store::paths::no_follow;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

pub use crate::store::paths::STATE_DIR;
const JOURNAL: &str = "journal.jsonl";

/// How a completed file was checked: every check its object allowed was made, and this is
/// the first that held of S3's own records (ETag, multipart ETag, additional checksum), then
/// TDP's (a search hit's checksum), then the file's own (a gzip trailer), then its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verified {
    /// The whole file's MD5 against a single-part ETag (or TDP's `file.checksum`).
    Md5,
    /// Each part's MD5 against a multipart ETag, the part size told from the count.
    MultipartMd5,
    /// S3's full-object additional checksum (`x-amz-checksum-*`, asked for where the URL
    /// signs `x-amz-checksum-mode`).
    #[serde(rename = "crc64nvme")]
    Crc64Nvme,
    Crc32c,
    Crc32,
    Sha256,
    /// The whole file's MD5 against the `file.checksum` a TDP search gave, where S3's ETag
    /// is no MD5 (KMS objects, multipart ones of an untold part size).
    SearchChecksum,
    /// A gzip-encoded object's own trailer: the CRC-32 and length of the decoded bytes.
    GzipCrc32,
    /// Its size alone (KMS objects, parts of unknown size). Reports and journals written
    /// before said `length`.
    #[serde(alias = "length")]
    Size,
}

impl Verified {
    pub fn as_str(self) -> &'static str {
        match self {
            Verified::Md5 => "md5",
            Verified::MultipartMd5 => "multipart-md5",
            Verified::Crc64Nvme => "crc64nvme",
            Verified::Crc32c => "crc32c",
            Verified::Crc32 => "crc32",
            Verified::Sha256 => "sha256",
            Verified::SearchChecksum => "search-checksum",
            Verified::GzipCrc32 => "gzip-crc32",
            Verified::Size => "size",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DoneInfo {
    /// Relative to the destination, `/`-separated.
    pub path: String,
    /// Bytes of the final file.
    pub bytes: u64,
    pub etag: Option<String>,
    pub md5: Option<String>,
    pub verified: Verified,
    pub decoded: bool,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "camelCase")]
enum Record {
    /// The journal's first record: the format of what follows.
    Format {
        version: u32,
    },
    Name {
        id: String,
        path: String,
    },
    Object {
        id: String,
        info: ObjectInfo,
    },
    Range {
        id: String,
        start: u64,
        end: u64,
    },
    Done {
        id: String,
        info: DoneInfo,
    },
    Reset {
        id: String,
    },
}

impl Record {
    fn id(&self) -> &str {
        match self {
            Record::Format { .. } => "",
            Record::Name { id, .. }
            | Record::Object { id, .. }
            | Record::Range { id, .. }
            | Record::Done { id, .. }
            | Record::Reset { id } => id,
        }
    }

    /// The bytes a range record claims, for the durability trace.
    fn span(&self) -> Option<(u64, u64)> {
        match *self {
            Record::Range { start, end, .. } => Some((start, end)),
            _ => None,
        }
    }

    /// The record's name in the durability trace.
    fn what(&self) -> &'static str {
        match self {
            Record::Format { .. } => "append format",
            Record::Name { .. } => "append name",
            Record::Object { .. } => "append object",
            Record::Range { .. } => "append range",
            Record::Done { .. } => "append done",
            Record::Reset { .. } => "append reset",
        }
    }
}

pub use crate::store::durable::Journal;

#[derive(Debug, Clone, Default)]
pub struct FileState {
    pub path: Option<String>,
    pub object: Option<ObjectInfo>,
    pub ranges: Ranges,
    pub done: Option<DoneInfo>,
}

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

/// What the store keeps of one file, compactly: a job may hold 100,000 of them.
#[derive(Debug, Default)]
struct Slot {
    path: Option<Box<str>>,
    object: Option<Box<ObjectInfo>>,
    ranges: Ranges,
    done: Option<Box<Done>>,
}

#[derive(Debug)]
struct Done {
    bytes: u64,
    etag: Option<Box<str>>,
    md5: Option<[u8; 16]>,
    verified: Verified,
    decoded: bool,
}

impl Slot {
    fn to_state(&self) -> FileState {
        let path = self.path.as_deref().map(str::to_string);
        FileState {
            done: self.done.as_ref().map(|d| DoneInfo {
                path: path.clone().unwrap_or_default(),
                bytes: d.bytes,
                etag: d.etag.as_deref().map(str::to_string),
                md5: d.md5.map(hex::encode),
                verified: d.verified,
                decoded: d.decoded,
            }),
            path,
            object: self.object.as_deref().cloned(),
            ranges: self.ranges.clone(),
        }
    }
}

pub struct Store {
    dest: PathBuf,
    dir: PathBuf,
    /// By file ID as a number.
    files: HashMap<u128, Slot>,
    /// Hashes of the relative paths given out, in the form the file system files them under
    /// (`folding`), to their IDs. A hash collision only costs a suffix, never an overwrite.
    taken: HashMap<u64, u128>,
    folding: NameFolding,
    reserved: HashSet<String>,
    /// The longest name the destination's file system takes, in bytes.
    name_max: usize,
    journal: File,
    /// Nothing but the job's own (state folder, report) was in the destination when the job
    /// began: no earlier job's file can be at a name, so names are given without looking
    /// on disk (the no-replace move still never overwrites what appears meanwhile).
    empty_at_start: bool,
    /// A `.part` was in the state folder when the job began (an earlier run's leftover).
    parts_at_start: bool,
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

    fn append(&mut self, rec: Record) -> Result<(), StateError> {
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

    fn free(&self, id: &str, rel: &str) -> bool {
        let lower = rel.to_lowercase();
        if self.reserved.contains(&lower) {
            return false;
        }
        if let Some(owner) = self.taken.get(&path_hash(self.folding, rel)) {
            return *owner == key(id);
        }
        // Anything already there (file, folder or link) is not ours: never overwrite it.
        self.empty_at_start || join_rel(&self.dest, rel).symlink_metadata().is_err()
    }

    /// The file's final relative path: the one given before, else `wanted`, else `wanted`
    /// with a suffix from the file ID. Recorded so a rerun names it the same.
    ///
    /// A regular file already at a candidate name, of the length this file will have (any
    /// length when that is not known yet: gzip), may be this very file from an earlier job
    /// whose state was lost: the name is given anyway, and placing the file compares the
    /// bytes (the same: adopted; others: the next name).
    pub fn assign_path(
        &mut self,
        id: &str,
        wanted: &str,
        final_len: Option<u64>,
    ) -> Result<String, StateError> {
        if let Some(p) = self.files.get(&key(id)).and_then(|f| f.path.as_deref()) {
            return Ok(p.to_string());
        }
        // A key whose first folder is the state folder's name lands beside it, never in it.
        let first_folder = wanted.split_once('/').map(|(f, _)| f).unwrap_or("");
        let renamed;
        let wanted = if first_folder.eq_ignore_ascii_case(STATE_DIR) {
            renamed = format!("_{wanted}");
            renamed.as_str()
        } else {
            wanted
        };
        let candidates = self.candidates(id, wanted);
        self.claim_first(id, candidates, &[], final_len)?
            .ok_or_else(|| StateError::NoFreeName(wanted.to_string()))
    }

    /// The names a file may have, in order: its own (each component fitted to the file
    /// system's limit), with `~<8 hex of the ID>`, with `~<file ID>`, and `<fileId><ext>` in
    /// the destination itself.
    fn candidates(&self, id: &str, wanted: &str) -> [String; 4] {
        let limit = self.name_max;
        let (folder, name) = match wanted.rsplit_once('/') {
            Some((f, n)) => (
                f.split('/')
                    .map(|c| fit(c, limit) + "/")
                    .collect::<String>(),
                n,
            ),
            None => (String::new(), wanted),
        };
        [
            format!("{folder}{}", fit(name, limit)),
            format!("{folder}{}", with_suffix(name, id, false, limit)),
            format!("{folder}{}", with_suffix(name, id, true, limit)),
            fallback_name(id, name),
        ]
    }

    /// Gives `id` the first candidate that is free or may be its own, and journals it.
    fn claim_first(
        &mut self,
        id: &str,
        candidates: impl IntoIterator<Item = String>,
        skip: &[String],
        final_len: Option<u64>,
    ) -> Result<Option<String>, StateError> {
        for c in candidates {
            if skip.contains(&c) {
                continue;
            }
            if self.free(id, &c) {
                return self.claim(id, c).map(Some);
            }
            // Not held for this file alone: another file of the job with the same name may
            // be the one there. The no-replace move keeps both from overwriting it, and the
            // comparison at placing tells whose it is.
            if self.maybe_ours(id, &c, final_len) {
                self.append(Record::Name {
                    id: id.to_string(),
                    path: c.clone(),
                })?;
                return Ok(Some(c));
            }
        }
        Ok(None)
    }

    fn claim(&mut self, id: &str, rel: String) -> Result<String, StateError> {
        self.taken.insert(path_hash(self.folding, &rel), key(id));
        self.append(Record::Name {
            id: id.to_string(),
            path: rel.clone(),
        })?;
        Ok(rel)
    }

    /// The file's name of last resort, `<fileId><ext>` in the destination itself, for when the
    /// file system refuses the name it was given; recorded, so the journal never pins a file
    /// to a name it cannot have.
    pub fn fall_back(&mut self, id: &str, refused: &str) -> Result<String, StateError> {
        let name = refused.rsplit('/').next().unwrap_or(refused);
        let c = fallback_name(id, name);
        if c == refused || !self.free(id, &c) {
            return Err(StateError::NoFreeName(refused.to_string()));
        }
        self.claim(id, c)
    }

    /// The next name for a file whose given name turned out to hold another file's bytes
    /// (put there by hand, by another program, or another file of the same name and length):
    /// the suffixed forms, then `<fileId><ext>`, skipping those already `tried`. The name
    /// given up is released, so the file it may belong to can have it.
    pub fn next_name(
        &mut self,
        id: &str,
        tried: &[String],
        final_len: Option<u64>,
    ) -> Result<String, StateError> {
        let Some(last) = tried.last() else {
            return Err(StateError::NoFreeName(String::new()));
        };
        let last_key = path_hash(self.folding, last);
        if self.taken.get(&last_key) == Some(&key(id)) {
            self.taken.remove(&last_key);
        }
        // The name given first is among the candidates, and among those tried.
        let candidates = self.candidates(id, &tried[0]);
        let last = last.clone();
        self.claim_first(id, candidates, tried, final_len)?
            .ok_or(StateError::NoFreeName(last))
    }

    /// Whether a regular file is at the name given to `id`, or (none given yet) at one of the
    /// names it may get: it may be this very file, from an earlier job whose state is gone.
    pub fn may_be_present(&self, id: &str, wanted: &str) -> bool {
        let is_file = |rel: &str| {
            join_rel(&self.dest, rel)
                .symlink_metadata()
                .is_ok_and(|m| m.is_file())
        };
        match self.files.get(&key(id)).and_then(|f| f.path.as_deref()) {
            Some(p) => is_file(p),
            None if self.empty_at_start => false,
            None => self.candidates(id, wanted).iter().any(|c| is_file(c)),
        }
    }

    /// Not given to another file, and a regular file of the right length is there.
    fn maybe_ours(&self, id: &str, rel: &str, final_len: Option<u64>) -> bool {
        let lower = rel.to_lowercase();
        if self.reserved.contains(&lower) {
            return false;
        }
        if let Some(owner) = self.taken.get(&path_hash(self.folding, rel)) {
            if *owner != key(id) {
                return false;
            }
        }
        join_rel(&self.dest, rel)
            .symlink_metadata()
            .is_ok_and(|m| m.is_file() && final_len.is_none_or(|n| m.len() == n))
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

/// The files a state folder's journal records as complete (ID as a number → relative path), read
/// without taking the folder's lock and without changing anything: for a preview.
pub fn completed_files(state_dir: &Path) -> HashMap<u128, String> {
    let mut done = HashMap::new();
    let Ok(f) = no_follow().read(true).open(state_dir.join(JOURNAL)) else {
        return done;
    };
    for line in BufReader::new(f).split(b'\n') {
        let Ok(line) = line else { break };
        match serde_json::from_slice::<Record>(&line) {
            Ok(Record::Done { id, info }) => {
                done.insert(key(&id), info.path);
            }
            Ok(Record::Reset { id }) => {
                done.remove(&key(&id));
            }
            _ => {}
        }
    }
    done
}

/// File IDs are UUIDs (the input accepts nothing else): kept as numbers.
fn key(id: &str) -> u128 {
    uuid::Uuid::try_parse(id).map(|u| u.as_u128()).unwrap_or(0)
}

fn path_hash(folding: NameFolding, rel: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    folding.key(rel).hash(&mut h);
    h.finish()
}

fn id_of(key: u128) -> String {
    uuid::Uuid::from_u128(key).hyphenated().to_string()
}

fn apply(files: &mut HashMap<u128, Slot>, rec: Record) {
    match rec {
        Record::Name { id, path } => {
            files.entry(key(&id)).or_default().path = Some(path.into_boxed_str())
        }
        Record::Object { id, info } => {
            files.entry(key(&id)).or_default().object = Some(Box::new(info))
        }
        Record::Range { id, start, end } => {
            files.entry(key(&id)).or_default().ranges.insert(start, end)
        }
        Record::Done { id, info } => {
            let f = files.entry(key(&id)).or_default();
            f.path = Some(info.path.into_boxed_str());
            let md5 = info
                .md5
                .as_deref()
                .and_then(|m| hex::decode(m).ok())
                .and_then(|v| <[u8; 16]>::try_from(v).ok());
            f.done = Some(Box::new(Done {
                bytes: info.bytes,
                etag: info.etag.map(String::into_boxed_str),
                md5,
                verified: info.verified,
                decoded: info.decoded,
            }));
            // Everything worth knowing is in `done` now.
            f.ranges = Ranges::default();
            f.object = None;
        }
        Record::Reset { id } => {
            let f = files.entry(key(&id)).or_default();
            f.object = None;
            f.ranges = Ranges::default();
            f.done = None;
        }
        Record::Format { .. } => {}
    }
}

fn records_of(id: &str, st: &FileState) -> Vec<Record> {
    let mut v = Vec::new();
    if let Some(p) = &st.path {
        v.push(Record::Name {
            id: id.to_string(),
            path: p.clone(),
        });
    }
    if let Some(d) = &st.done {
        v.push(Record::Done {
            id: id.to_string(),
            info: d.clone(),
        });
        return v;
    }
    if let Some(o) = &st.object {
        v.push(Record::Object {
            id: id.to_string(),
            info: o.clone(),
        });
        for (start, end) in st.ranges.spans() {
            v.push(Record::Range {
                id: id.to_string(),
                start,
                end,
            });
        }
    }
    v
}

fn write_record(out: &mut impl Write, rec: &Record) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, rec)?;
    out.write_all(b"\n")
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
    fn names_that_differ_by_case_or_composition_are_one_only_where_the_file_system_says() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path(), &[]).unwrap();
        let [a, b, c, d] = [
            "aaaaaaaa-0000-4000-8000-000000000000",
            "bbbbbbbb-0000-4000-8000-000000000000",
            "cccccccc-0000-4000-8000-000000000000",
            "dddddddd-0000-4000-8000-000000000000",
        ];
        // A file system that tells them apart (Linux's): each keeps its name.
        s.folding = NameFolding {
            case: false,
            composition: false,
        };
        assert_eq!(
            s.assign_path(a, "Caf\u{e9}.csv", None).unwrap(),
            "Caf\u{e9}.csv"
        );
        assert_eq!(
            s.assign_path(b, "caf\u{e9}.csv", None).unwrap(),
            "caf\u{e9}.csv"
        );
        assert_eq!(
            s.assign_path(c, "Cafe\u{301}.csv", None).unwrap(),
            "Cafe\u{301}.csv"
        );
        // Where it does not, the second of one name takes the next.
        s.folding = NameFolding {
            case: true,
            composition: true,
        };
        assert_eq!(
            s.assign_path(d, "CAFE\u{301}.csv", None).unwrap(),
            "CAFE\u{301}~dddddddd.csv"
        );
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
