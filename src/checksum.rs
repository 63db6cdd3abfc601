//! S3's additional checksums: the object's full-object CRC-64/NVME, CRC32C, CRC32 or
//! SHA-256, as a GET with `x-amz-checksum-mode: ENABLED` returns them for a range that is
//! the whole object (or open from byte 0).
//!
//! A file is fetched in ranges, out of order and across runs, so the CRCs are taken per
//! piece as the bytes arrive and joined at the end (a CRC of `A‖B` follows from those of
//! `A` and `B` and `B`'s length); a piece no CRC was taken of (fetched by an earlier run) is
//! read back. SHA-256 cannot be joined: it is read back whole, which only objects stored
//! with SHA-256 pay for.
//!
//! An object uploaded in parts may instead have a composite value, `<checksum of the parts'
//! checksums>-N` (SHA-256 always, CRC32/CRC32C by the uploader's choice), and then S3 sends
//! a part's own checksum for a range that is exactly that part. Its part size is told from
//! `N` as for multipart ETags (`multipart`); the file is fetched a part per request, each
//! part checked as it arrives, and a part that does not match is fetched again alone.

use base64::Engine as _;
use crc_fast::CrcAlgorithm;
use serde::{Deserialize, Serialize};
use std::io::Read;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    Crc64nvme,
    Crc32c,
    Crc32,
    Sha256,
}

impl Algorithm {
    /// Strongest first: the order in which a response's headers are taken.
    const ALL: [Algorithm; 4] = [
        Algorithm::Sha256,
        Algorithm::Crc64nvme,
        Algorithm::Crc32c,
        Algorithm::Crc32,
    ];

    fn header(self) -> &'static str {
        match self {
            Algorithm::Crc64nvme => "x-amz-checksum-crc64nvme",
            Algorithm::Crc32c => "x-amz-checksum-crc32c",
            Algorithm::Crc32 => "x-amz-checksum-crc32",
            Algorithm::Sha256 => "x-amz-checksum-sha256",
        }
    }

    /// The CRC it is, or None for SHA-256.
    fn crc(self) -> Option<CrcAlgorithm> {
        match self {
            Algorithm::Crc64nvme => Some(CrcAlgorithm::Crc64Nvme),
            Algorithm::Crc32c => Some(CrcAlgorithm::Crc32Iscsi),
            Algorithm::Crc32 => Some(CrcAlgorithm::Crc32IsoHdlc),
            Algorithm::Sha256 => None,
        }
    }

    fn width(self) -> usize {
        match self {
            Algorithm::Crc64nvme => 8,
            Algorithm::Crc32c | Algorithm::Crc32 => 4,
            Algorithm::Sha256 => 32,
        }
    }

    /// As a user reads it in a message.
    pub fn label(self) -> &'static str {
        match self {
            Algorithm::Crc64nvme => "CRC-64/NVME",
            Algorithm::Crc32c => "CRC32C",
            Algorithm::Crc32 => "CRC32",
            Algorithm::Sha256 => "SHA-256",
        }
    }
}

/// The object's full-object checksum as S3 sent it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectChecksum {
    pub algorithm: Algorithm,
    /// Base64 of the big-endian value, as in the header (without a composite's `-N`).
    pub value: String,
    /// A composite value's part count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parts: Option<u64>,
}

impl ObjectChecksum {
    /// The strongest object checksum among the headers of a response for the whole object:
    /// full-object, or composite with its part count. `header` looks one up.
    pub fn from_headers(header: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let composite =
            header("x-amz-checksum-type").is_some_and(|t| t.eq_ignore_ascii_case("COMPOSITE"));
        Algorithm::ALL.into_iter().find_map(|algorithm| {
            let value = header(algorithm.header())?;
            let value = value.trim();
            let (value, parts) = match value.rsplit_once('-') {
                Some((v, n)) => (v, Some(n.parse::<u64>().ok().filter(|n| *n >= 1)?)),
                None => (value, None),
            };
            // `Range: bytes=0-` was seen to return a composite value without its `-N`: a
            // composite value is taken only with its part count.
            if composite != parts.is_some() {
                return None;
            }
            (decode(value)?.len() == algorithm.width()).then(|| ObjectChecksum {
                algorithm,
                value: value.to_string(),
                parts,
            })
        })
    }

    /// What a ranged response says of its range: the part's own checksum, sent only when
    /// the range is exactly one part of a composite object.
    pub fn part_value(&self, header: impl Fn(&str) -> Option<String>) -> Option<Vec<u8>> {
        self.parts?;
        let value = decode(header(self.algorithm.header())?.trim())?;
        (value.len() == self.algorithm.width()).then_some(value)
    }

    /// A composite value's part size, told from its part count (see `multipart`).
    pub fn part_size(&self, size: u64) -> Option<u64> {
        crate::multipart::part_sizes(size, self.parts?)
            .first()
            .copied()
    }

    fn expected(&self) -> Vec<u8> {
        decode(&self.value).unwrap_or_default()
    }

    /// Whether the checksum can be taken piece by piece as the bytes arrive.
    pub fn joinable(&self) -> bool {
        self.algorithm.crc().is_some() && self.parts.is_none()
    }
}

fn decode(value: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(value).ok()
}

/// One part's checksum, taken as its bytes arrive.
pub enum PartHasher {
    Crc(crc_fast::Digest, usize),
    Sha(sha2::Sha256),
}

impl PartHasher {
    pub fn new(algorithm: Algorithm) -> Self {
        match algorithm.crc() {
            Some(c) => PartHasher::Crc(crc_fast::Digest::new(c), algorithm.width()),
            None => PartHasher::Sha(sha2::Sha256::default()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            PartHasher::Crc(d, _) => d.update(data),
            PartHasher::Sha(h) => sha2::Digest::update(h, data),
        }
    }

    pub fn finish(self) -> Vec<u8> {
        match self {
            PartHasher::Crc(d, width) => d.finalize().to_be_bytes()[8 - width..].to_vec(),
            PartHasher::Sha(h) => sha2::Digest::finalize(h).to_vec(),
        }
    }
}

/// Checks a composite value: each part's checksum, from `known` (start → value, taken as
/// the parts arrived) or read back from `file`, then the checksum of their concatenation.
/// Gives whether it matched, and what it came to (base64).
pub fn composite_matches(
    checksum: &ObjectChecksum,
    known: &std::collections::BTreeMap<u64, Vec<u8>>,
    file: &std::fs::File,
    size: u64,
    part_size: u64,
) -> std::io::Result<(bool, String)> {
    let mut all = PartHasher::new(checksum.algorithm);
    let mut start = 0;
    while start < size {
        let len = part_size.min(size - start);
        let value = match known.get(&start) {
            Some(v) => v.clone(),
            None => {
                let mut h = PartHasher::new(checksum.algorithm);
                read_span(file, start, len, |b| h.update(b))?;
                h.finish()
            }
        };
        all.update(&value);
        start += len;
    }
    let got = all.finish();
    Ok((
        got == checksum.expected(),
        base64::engine::general_purpose::STANDARD.encode(got),
    ))
}

/// The CRC of the bytes of one piece, taken as they are written.
pub struct PieceCrc {
    digest: crc_fast::Digest,
    /// Where the piece starts, and how many bytes it has had.
    pub start: u64,
    pub len: u64,
}

impl PieceCrc {
    pub fn new(checksum: &ObjectChecksum, start: u64) -> Option<Self> {
        if !checksum.joinable() {
            return None;
        }
        Some(PieceCrc {
            digest: crc_fast::Digest::new(checksum.algorithm.crc()?),
            start,
            len: 0,
        })
    }

    pub fn update(&mut self, data: &[u8]) {
        self.digest.update(data);
        self.len += data.len() as u64;
    }

    /// Drops what was taken so far: the next piece starts at `at`.
    pub fn restart(&mut self, at: u64) {
        self.digest.reset();
        self.start = at;
        self.len = 0;
    }

    /// The piece so far as `(start, len, crc)`; the next piece starts where it ends.
    pub fn take(&mut self) -> Piece {
        let piece = Piece {
            start: self.start,
            len: self.len,
            crc: self.digest.finalize(),
        };
        self.digest.reset();
        self.start += self.len;
        self.len = 0;
        piece
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    pub start: u64,
    pub len: u64,
    pub crc: u64,
}

/// Checks the first `size` bytes of `file` against `checksum`: the CRC joined from `pieces`,
/// what they do not cover read back (all of it for SHA-256). Err: the file could not be read.
pub fn matches(
    checksum: &ObjectChecksum,
    pieces: &[Piece],
    file: &std::fs::File,
    size: u64,
) -> std::io::Result<bool> {
    let expected = checksum.expected();
    let Some(crc) = checksum.algorithm.crc() else {
        let mut h = PartHasher::new(checksum.algorithm);
        read_span(file, 0, size, |b| h.update(b))?;
        return Ok(h.finish() == expected);
    };
    let mut pieces: Vec<Piece> = pieces.iter().copied().filter(|p| p.len > 0).collect();
    pieces.sort_by_key(|p| p.start);
    let mut joined = crc_fast::Digest::new(crc).finalize(); // of no bytes
    let mut pos = 0;
    let mut join = |value: u64, len: u64| {
        joined = crc_fast::checksum_combine(crc, joined, value, len);
    };
    for p in pieces.iter().chain(std::iter::once(&Piece {
        start: size,
        len: 0,
        crc: 0,
    })) {
        // Overlaps (a piece fetched twice) are skipped: its bytes are covered already.
        if p.start < pos {
            continue;
        }
        if p.start > pos {
            let mut d = crc_fast::Digest::new(crc);
            read_span(file, pos, p.start - pos, |b| d.update(b))?;
            join(d.finalize(), p.start - pos);
            pos = p.start;
        }
        if p.len > 0 && p.start + p.len <= size {
            join(p.crc, p.len);
            pos += p.len;
        }
    }
    let width = checksum.algorithm.width();
    Ok(joined.to_be_bytes()[8 - width..] == expected[..])
}

fn read_span(
    file: &std::fs::File,
    start: u64,
    len: u64,
    mut feed: impl FnMut(&[u8]),
) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom};
    let mut f = file;
    f.seek(SeekFrom::Start(start))?;
    let mut f = f.take(len);
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        feed(&buf[..n]);
        left -= n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(algorithm: Algorithm, data: &[u8]) -> ObjectChecksum {
        let value = match algorithm.crc() {
            Some(c) => crc_fast::checksum(c, data).to_be_bytes()[8 - algorithm.width()..].to_vec(),
            None => {
                use sha2::Digest as _;
                sha2::Sha256::digest(data).to_vec()
            }
        };
        ObjectChecksum {
            algorithm,
            value: base64::engine::general_purpose::STANDARD.encode(value),
            parts: None,
        }
    }

    #[test]
    fn pieces_out_of_order_with_gaps_join_to_the_whole_files_value() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let path = dir.path().join("f");
        std::fs::write(&path, &data).unwrap();
        let open = || std::fs::File::open(&path).unwrap();
        for algorithm in Algorithm::ALL {
            let file = open();
            let sum = of(algorithm, &data);
            let Some(mut a) = PieceCrc::new(&sum, 10_000) else {
                assert!(matches(&sum, &[], &file, data.len() as u64).unwrap());
                continue;
            };
            a.update(&data[10_000..30_000]);
            let first = a.take();
            a.update(&data[30_000..31_000]);
            let second = a.take();
            let mut b = PieceCrc::new(&sum, 60_000).unwrap();
            b.update(&data[60_000..]);
            // Not in order, 0..10,000 and 31,000..60,000 read back, one piece twice.
            let pieces = [b.take(), second, first, first];
            assert!(matches(&sum, &pieces, &file, data.len() as u64).unwrap());
            let mut bad = data.clone();
            bad[45_000] ^= 1;
            std::fs::write(&path, &bad).unwrap();
            assert!(!matches(&sum, &pieces, &open(), data.len() as u64).unwrap());
            std::fs::write(&path, &data).unwrap();
        }
    }

    #[test]
    fn only_full_object_values_of_the_right_width_are_taken() {
        let h = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let crc = ObjectChecksum::from_headers(h(&[
            ("x-amz-checksum-crc32", "AAAAAA=="),
            ("x-amz-checksum-crc64nvme", "AAAAAAAAAAA="),
            ("x-amz-checksum-type", "FULL_OBJECT"),
        ]))
        .unwrap();
        assert_eq!(crc.algorithm, Algorithm::Crc64nvme);
        assert!(ObjectChecksum::from_headers(h(&[
            ("x-amz-checksum-crc32c", "AAAAAA=="),
            ("x-amz-checksum-type", "COMPOSITE"),
        ]))
        .is_none());
        assert!(
            ObjectChecksum::from_headers(h(&[("x-amz-checksum-crc32c", "AAAAAA==-3")])).is_none()
        );
        assert!(ObjectChecksum::from_headers(h(&[("x-amz-checksum-crc32", "AAAAAAAA")])).is_none());
    }

    #[test]
    fn a_composite_value_is_the_checksum_of_the_parts_checksums() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..25_000u32).map(|i| (i % 253) as u8).collect();
        let path = dir.path().join("f");
        std::fs::write(&path, &data).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        for algorithm in Algorithm::ALL {
            let parts: Vec<Vec<u8>> = data
                .chunks(10_000)
                .map(|c| {
                    let mut h = PartHasher::new(algorithm);
                    h.update(c);
                    h.finish()
                })
                .collect();
            let mut all = PartHasher::new(algorithm);
            parts.iter().for_each(|p| all.update(p));
            let sum = ObjectChecksum {
                algorithm,
                value: base64::engine::general_purpose::STANDARD.encode(all.finish()),
                parts: Some(3),
            };
            let none = Default::default();
            assert!(
                composite_matches(&sum, &none, &file, 25_000, 10_000)
                    .unwrap()
                    .0
            );
            // A part known from S3 is taken as given; the others are read back.
            let known = [(10_000u64, parts[1].clone())].into_iter().collect();
            assert!(
                composite_matches(&sum, &known, &file, 25_000, 10_000)
                    .unwrap()
                    .0
            );
            let wrong = [(10_000u64, parts[0].clone())].into_iter().collect();
            assert!(
                !composite_matches(&sum, &wrong, &file, 25_000, 10_000)
                    .unwrap()
                    .0
            );
        }
    }
}
