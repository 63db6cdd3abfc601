//! The journal `.tdp-download/journal.jsonl`: one JSON record per line of what is known of each
//! file (its name, object, ranges written, done), replayed into compact slots on open. The
//! store (`state`) appends to it and rewrites it compacted.

use crate::ranges::Ranges;
use crate::storage::s3::ObjectInfo;
use crate::store::paths::no_follow;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

/// The journal's file name in the state folder.
pub(crate) const JOURNAL: &str = "journal.jsonl";

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
pub(crate) enum Record {
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
    pub(crate) fn id(&self) -> &str {
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
    pub(crate) fn span(&self) -> Option<(u64, u64)> {
        match *self {
            Record::Range { start, end, .. } => Some((start, end)),
            _ => None,
        }
    }

    /// The record's name in the durability trace.
    pub(crate) fn what(&self) -> &'static str {
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

#[derive(Debug, Clone, Default)]
pub struct FileState {
    pub path: Option<String>,
    pub object: Option<ObjectInfo>,
    pub ranges: Ranges,
    pub done: Option<DoneInfo>,
}

/// What the store keeps of one file, compactly: a job may hold 100,000 of them.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    pub(crate) path: Option<Box<str>>,
    pub(crate) object: Option<Box<ObjectInfo>>,
    pub(crate) ranges: Ranges,
    pub(crate) done: Option<Box<Done>>,
}

#[derive(Debug)]
pub(crate) struct Done {
    pub(crate) bytes: u64,
    pub(crate) etag: Option<Box<str>>,
    pub(crate) md5: Option<[u8; 16]>,
    pub(crate) verified: Verified,
    pub(crate) decoded: bool,
}

impl Slot {
    pub(crate) fn to_state(&self) -> FileState {
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
pub(crate) fn key(id: &str) -> u128 {
    uuid::Uuid::try_parse(id).map(|u| u.as_u128()).unwrap_or(0)
}

pub(crate) fn id_of(key: u128) -> String {
    uuid::Uuid::from_u128(key).hyphenated().to_string()
}

pub(crate) fn apply(files: &mut HashMap<u128, Slot>, rec: Record) {
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

pub(crate) fn records_of(id: &str, st: &FileState) -> Vec<Record> {
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

pub(crate) fn write_record(out: &mut impl Write, rec: &Record) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, rec)?;
    out.write_all(b"\n")
}
