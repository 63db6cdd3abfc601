//! The simulated data lake: which objects exist, their keys, sizes and storage kinds.

use super::content::hash_str;

/// How an object is stored, which decides its ETag and headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// Single-part, unencrypted: the ETag is the MD5 of the content.
    Plain,
    /// KMS-encrypted: a 32-hex ETag that is not an MD5, with the encryption header.
    Kms,
    /// Stored gzip-encoded with `Content-Encoding: gzip`; the ETag is the MD5 of the encoded bytes.
    Gzip,
}

#[derive(Debug, Clone)]
pub struct SimFile {
    pub id: String,
    /// Object key without the bucket, e.g. `demo-org/src/RAW/run-1/data.json`.
    pub key: String,
    /// Size of the original content (before any gzip encoding).
    pub size: u64,
    pub kind: FileKind,
    /// Sent as `Content-Disposition` when set.
    pub content_disposition: Option<String>,
}

impl SimFile {
    pub fn new(id: impl Into<String>, key: impl Into<String>, size: u64) -> Self {
        SimFile {
            id: id.into(),
            key: key.into(),
            size,
            kind: FileKind::Plain,
            content_disposition: None,
        }
    }

    pub fn kind(mut self, kind: FileKind) -> Self {
        self.kind = kind;
        self
    }

    pub fn disposition(mut self, value: impl Into<String>) -> Self {
        self.content_disposition = Some(value.into());
        self
    }

    /// The seed its content is generated from.
    pub fn content_seed(&self) -> u64 {
        hash_str(&self.id) ^ 0x5EED
    }

    /// The original bytes (what must end up on disk). Only for objects that fit in memory.
    pub fn expected_content(&self) -> Vec<u8> {
        super::content::content(self.content_seed(), self.size)
    }

    /// The last segment of the key.
    pub fn base_name(&self) -> &str {
        self.key.rsplit('/').next().unwrap_or(&self.key)
    }
}

/// A deterministic UUID-shaped file ID for index `i` of a set.
pub fn sim_id(seed: u64, i: u64) -> String {
    let a = super::content::draw(seed, &[i, 1]).to_bits();
    let b = super::content::draw(seed, &[i, 2]).to_bits();
    let hex = format!("{:016x}{:016x}", a.rotate_left(17) ^ i, b.rotate_left(5));
    // Make it a valid RFC 4122 version-4 shape.
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// A demo data lake of `n` files: mixed sizes (when `size` is None), generic colliding names,
/// awkward names, KMS and gzip objects, as TDP users meet them.
pub fn demo_files(seed: u64, n: usize, size: Option<u64>) -> Vec<SimFile> {
    const MIXED: [u64; 8] = [
        1_024,
        65_536,
        1 << 20,
        3 * (1 << 20) + 17,
        12_345,
        250_000,
        0,
        (1 << 20) + 1,
    ];
    const AWKWARD: [&str; 8] = [
        "CON.txt",
        "report: final?.csv",
        "trailing dot. ",
        "Messung µ-Probe 1.csv",
        "a<b>c|d*e.json",
        "aux",
        "tab\there.txt",
        "...",
    ];
    (0..n)
        .map(|i| {
            let id = sim_id(seed, i as u64);
            let size = size.unwrap_or(MIXED[i % MIXED.len()]);
            let key = match i % 10 {
                // Generic IDS names collide across folders.
                0..=2 => format!(
                    "demo-org/ids-src/IDS/register/compound/{}.json/0.json",
                    1000 + i
                ),
                3 => format!(
                    "demo-org/raw-src/RAW/plate-reader-{i:03}/{}",
                    AWKWARD[(i / 10) % AWKWARD.len()]
                ),
                _ => format!("demo-org/raw-src/RAW/run-{:03}/sample-{i:05}.csv", i / 25),
            };
            let kind = match i % 17 {
                5 => FileKind::Kms,
                11 => FileKind::Gzip,
                _ => FileKind::Plain,
            };
            SimFile::new(id, key, size).kind(kind)
        })
        .collect()
}
