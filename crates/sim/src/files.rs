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
    /// Uploaded in parts of `part_size` bytes (the last one shorter), as the AWS SDKs'
    /// transfer managers do: the ETag is `md5(concat(md5(part)))-<parts>`.
    Multipart { part_size: u64 },
    /// What TetraScience's SDK writes: gzip-encoded and KMS-encrypted, so the ETag says
    /// nothing of the bytes and only the gzip trailer (CRC-32, length) can check them.
    KmsGzip,
    /// KMS-encrypted and uploaded in parts: the ETag (`<32 hex>-<parts>`) is no MD5 of
    /// anything; only S3's additional checksums can check the bytes.
    KmsMultipart { part_size: u64 },
}

impl FileKind {
    pub fn is_gzip(self) -> bool {
        matches!(self, FileKind::Gzip | FileKind::KmsGzip)
    }

    pub fn is_kms(self) -> bool {
        matches!(
            self,
            FileKind::Kms | FileKind::KmsGzip | FileKind::KmsMultipart { .. }
        )
    }

    /// The size of the parts it was uploaded in, if it was.
    pub fn part_size(self) -> Option<u64> {
        match self {
            FileKind::Multipart { part_size } | FileKind::KmsMultipart { part_size } => {
                Some(part_size)
            }
            _ => None,
        }
    }
}

/// An S3 additional checksum stored with the object, of its bytes as stored (full-object
/// type). S3 sends it only to a GET with `x-amz-checksum-mode: ENABLED` whose range covers
/// the whole object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredChecksum {
    Crc64Nvme,
    Crc32c,
    Crc32,
    Sha256,
}

impl StoredChecksum {
    /// The response header that carries it.
    pub fn header(self) -> &'static str {
        match self {
            StoredChecksum::Crc64Nvme => "x-amz-checksum-crc64nvme",
            StoredChecksum::Crc32c => "x-amz-checksum-crc32c",
            StoredChecksum::Crc32 => "x-amz-checksum-crc32",
            StoredChecksum::Sha256 => "x-amz-checksum-sha256",
        }
    }
}

#[derive(Debug, Clone)]
pub struct SimFile {
    pub id: String,
    /// Object key without the bucket, e.g. `demo-org/src/RAW/run-1/data.json`.
    pub key: String,
    /// Size of the original content (before any gzip encoding).
    pub size: u64,
    pub kind: FileKind,
    /// S3's additional checksum, when the object has one.
    pub checksum: Option<StoredChecksum>,
    /// Sent as `Content-Disposition` when set.
    pub content_disposition: Option<String>,
    /// What `fileinfo/search` and `searchEql` know of it.
    pub meta: FileMeta,
}

/// A file's record in the search index, as TDP's fileinfo keeps it.
#[derive(Debug, Clone, Default)]
pub struct FileMeta {
    /// RAW, IDS or PROCESSED: by default the key's third part.
    pub category: String,
    pub source_type: String,
    /// By default the key's second part.
    pub source_id: String,
    pub tags: Vec<String>,
    pub metadata: Vec<(String, String)>,
    /// Milliseconds since 1970: when the file was created, and last indexed.
    pub created_ms: i64,
    pub indexed_ms: i64,
    pub deleted: bool,
    pub outdated: bool,
    /// `file.checksum` as search returns it (None: null, as TDP often has it).
    pub checksum: Option<String>,
}

/// 2025-01-01T00:00:00Z: the simulated files are created in the year that follows.
pub const EPOCH_2025_MS: i64 = 1_735_689_600_000;

impl SimFile {
    pub fn new(id: impl Into<String>, key: impl Into<String>, size: u64) -> Self {
        SimFile {
            id: id.into(),
            key: key.into(),
            size,
            kind: FileKind::Plain,
            checksum: None,
            content_disposition: None,
            meta: FileMeta::default(),
        }
        .with_default_meta()
    }

    fn with_default_meta(mut self) -> Self {
        let mut parts = self.key.split('/');
        let source_id = parts.nth(1).unwrap_or("sim-source").to_string();
        let category = match parts.next() {
            Some(c @ ("RAW" | "IDS" | "PROCESSED")) => c.to_string(),
            _ => "RAW".to_string(),
        };
        // Spread over a year, to the millisecond, decided by the ID alone.
        let created_ms = EPOCH_2025_MS + (hash_str(&self.id) % (365 * 86_400_000)) as i64;
        self.meta = FileMeta {
            category,
            source_type: "sim-instrument".to_string(),
            source_id,
            created_ms,
            indexed_ms: created_ms + 1_000,
            ..FileMeta::default()
        };
        self
    }

    pub fn category(mut self, category: &str) -> Self {
        self.meta.category = category.to_string();
        self
    }

    pub fn tags(mut self, tags: &[&str]) -> Self {
        self.meta.tags = tags.iter().map(|t| t.to_string()).collect();
        self
    }

    pub fn metadata(mut self, key: &str, value: &str) -> Self {
        self.meta
            .metadata
            .push((key.to_string(), value.to_string()));
        self
    }

    pub fn created_ms(mut self, ms: i64) -> Self {
        self.meta.created_ms = ms;
        self.meta.indexed_ms = ms + 1_000;
        self
    }

    /// When the search index took the file (milliseconds since 1970).
    pub fn indexed_ms(mut self, ms: i64) -> Self {
        self.meta.indexed_ms = ms;
        self
    }

    pub fn deleted(mut self) -> Self {
        self.meta.deleted = true;
        self
    }

    pub fn outdated(mut self) -> Self {
        self.meta.outdated = true;
        self
    }

    /// `file.checksum` is the MD5 of the content (hex), as search would give it.
    pub fn with_md5_checksum(mut self) -> Self {
        self.meta.checksum = Some(hex::encode(super::content::md5_of(
            self.content_seed(),
            self.size,
        )));
        self
    }

    pub fn kind(mut self, kind: FileKind) -> Self {
        self.kind = kind;
        self
    }

    pub fn stored_checksum(mut self, checksum: StoredChecksum) -> Self {
        self.checksum = Some(checksum);
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
/// awkward names, KMS, gzip and KMS-gzip objects, as TDP users meet them.
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
                14 => FileKind::KmsGzip,
                _ => FileKind::Plain,
            };
            // Something to search by: tags and a project, as labs tag their runs.
            const TAGS: [&[&str]; 4] = [
                &["hplc"],
                &["plate-reader", "assay-2"],
                &["hplc", "stability"],
                &[],
            ];
            SimFile::new(id, key, size)
                .kind(kind)
                .tags(TAGS[i % TAGS.len()])
                .metadata("project", &format!("P-{}", 1 + i % 3))
        })
        .collect()
}
