//! Deterministic object contents, so tests can check bytes on disk without the simulator
//! keeping every object in memory.

use md5::{Digest, Md5};

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A stable 64-bit hash of a string (FNV-1a), used to derive per-file seeds.
pub fn hash_str(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A uniform draw in [0, 1) from (seed, parts...): the same inputs give the same draw.
pub fn draw(seed: u64, parts: &[u64]) -> f64 {
    let mut h = splitmix64(seed);
    for p in parts {
        h = splitmix64(h ^ p);
    }
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// The object's 8-byte word number `n`: byte `p` of an object is byte `p % 8` of word `p / 8`.
fn word(file_seed: u64, n: u64) -> [u8; 8] {
    splitmix64(file_seed ^ n.wrapping_mul(0xA24B_AED4_963E_E407)).to_le_bytes()
}

/// Fills `buf` with the object's bytes starting at `offset`.
pub fn fill(file_seed: u64, offset: u64, buf: &mut [u8]) {
    // Whole words in the middle, written directly: this runs for every byte served, and a
    // copy of a run-time length per word made it half of the simulator's CPU on 1 GiB.
    let skip = (offset % 8) as usize;
    let head = if skip == 0 {
        0
    } else {
        (8 - skip).min(buf.len())
    };
    let (first, rest) = buf.split_at_mut(head);
    first.copy_from_slice(&word(file_seed, offset / 8)[skip..skip + head]);
    let mut n = (offset + head as u64) / 8;
    let mut words = rest.chunks_exact_mut(8);
    for w in &mut words {
        w.copy_from_slice(&word(file_seed, n));
        n += 1;
    }
    let tail = words.into_remainder();
    let len = tail.len();
    tail.copy_from_slice(&word(file_seed, n)[..len]);
}

/// The whole content (only for small objects: tests and gzip objects).
pub fn content(file_seed: u64, size: u64) -> Vec<u8> {
    let mut v = vec![0u8; size as usize];
    fill(file_seed, 0, &mut v);
    v
}

/// Feeds `[start, end)` of the content to `feed` in blocks, so large objects need no memory.
fn for_each_block(file_seed: u64, start: u64, end: u64, mut feed: impl FnMut(&[u8])) {
    let mut buf = vec![0u8; (end.saturating_sub(start)).min(1 << 20) as usize];
    let mut off = start;
    while off < end {
        let n = (end - off).min(buf.len() as u64) as usize;
        fill(file_seed, off, &mut buf[..n]);
        feed(&buf[..n]);
        off += n as u64;
    }
}

/// MD5 of the content.
pub fn md5_of(file_seed: u64, size: u64) -> [u8; 16] {
    let mut hasher = Md5::new();
    for_each_block(file_seed, 0, size, |b| hasher.update(b));
    hasher.finalize().into()
}

/// S3's ETag of the content uploaded in parts of `part_size`: the MD5 of the parts' MD5s,
/// a dash, the number of parts.
pub fn multipart_etag(file_seed: u64, size: u64, part_size: u64) -> String {
    let part_size = part_size.max(1);
    let mut digests = Vec::new();
    let mut start = 0;
    while start < size || (size == 0 && digests.is_empty()) {
        let end = (start + part_size).min(size);
        let mut part = Md5::new();
        for_each_block(file_seed, start, end, |b| part.update(b));
        digests.extend_from_slice(&part.finalize());
        start = end;
        if size == 0 {
            break;
        }
    }
    let parts = digests.len() / 16;
    format!("{}-{parts}", hex::encode(Md5::digest(&digests)))
}

/// An object's checksum as S3 keeps it: the value it sends for the whole object (base64,
/// with `-N` for a composite one) and, for a composite one, each part's own.
#[derive(Debug, Clone)]
pub struct Checksums {
    pub whole: String,
    pub composite: bool,
    pub parts: Vec<String>,
}

enum Hasher {
    Crc(crc_fast::Digest, usize),
    Sha(sha2::Sha256),
}

impl Hasher {
    fn new(algorithm: crate::StoredChecksum) -> Self {
        use crate::StoredChecksum as C;
        use crc_fast::CrcAlgorithm;
        match algorithm {
            C::Crc64Nvme => Hasher::Crc(crc_fast::Digest::new(CrcAlgorithm::Crc64Nvme), 8),
            C::Crc32c => Hasher::Crc(crc_fast::Digest::new(CrcAlgorithm::Crc32Iscsi), 4),
            C::Crc32 => Hasher::Crc(crc_fast::Digest::new(CrcAlgorithm::Crc32IsoHdlc), 4),
            C::Sha256 => Hasher::Sha(sha2::Sha256::default()),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Crc(d, _) => d.update(data),
            Hasher::Sha(h) => sha2::Digest::update(h, data),
        }
    }

    fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Crc(d, width) => d.finalize().to_be_bytes()[8 - width..].to_vec(),
            Hasher::Sha(h) => sha2::Digest::finalize(h).to_vec(),
        }
    }
}

/// S3's checksum of the bytes as stored (`stored`, or the generated content of `size`
/// bytes). Uploaded in parts of `part_size` (Some), it is composite, as S3 keeps SHA-256
/// and (by the uploader's choice) CRC32/CRC32C of multipart uploads: the checksum of the
/// parts' checksums, `-N`. CRC-64/NVME is always of the full object.
pub fn stored_checksum(
    file_seed: u64,
    size: u64,
    stored: Option<&[u8]>,
    algorithm: crate::StoredChecksum,
    part_size: Option<u64>,
) -> Checksums {
    use base64::Engine as _;
    let b64 = |v: &[u8]| base64::engine::general_purpose::STANDARD.encode(v);
    let part_size = part_size
        .filter(|_| algorithm != crate::StoredChecksum::Crc64Nvme)
        .map(|p| p.max(1));
    let span = |start: u64, end: u64| {
        let mut h = Hasher::new(algorithm);
        match stored {
            Some(bytes) => h.update(&bytes[start as usize..end as usize]),
            None => for_each_block(file_seed, start, end, |b| h.update(b)),
        }
        h.finish()
    };
    let len = stored.map_or(size, |b| b.len() as u64);
    match part_size {
        None => Checksums {
            whole: b64(&span(0, len)),
            composite: false,
            parts: Vec::new(),
        },
        Some(p) => {
            let mut all = Hasher::new(algorithm);
            let mut parts = Vec::new();
            let mut start = 0;
            while start < len {
                let end = (start + p).min(len);
                let v = span(start, end);
                all.update(&v);
                parts.push(b64(&v));
                start = end;
            }
            Checksums {
                whole: format!("{}-{}", b64(&all.finish()), parts.len()),
                composite: true,
                parts,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multipart_etag_is_the_md5_of_the_parts_md5s() {
        let whole = content(7, 2500);
        let mut digests = Vec::new();
        for part in whole.chunks(1000) {
            digests.extend_from_slice(&Md5::digest(part));
        }
        let want = format!("{}-3", hex::encode(Md5::digest(&digests)));
        assert_eq!(multipart_etag(7, 2500, 1000), want);
        assert!(multipart_etag(7, 2000, 1000).ends_with("-2"));
    }

    #[test]
    fn fill_at_any_offset_matches_whole_content() {
        let whole = content(42, 1000);
        for off in [0u64, 1, 7, 8, 9, 500, 999] {
            let mut part = vec![0u8; (1000 - off) as usize];
            fill(42, off, &mut part);
            assert_eq!(&whole[off as usize..], &part[..]);
        }
    }

    #[test]
    fn every_byte_is_its_words_byte() {
        let byte = |p: u64| word(42, p / 8)[(p % 8) as usize];
        for off in [0u64, 1, 3, 8, 13, 64] {
            for len in [0usize, 1, 5, 8, 9, 30, 100] {
                let mut got = vec![0u8; len];
                fill(42, off, &mut got);
                let want: Vec<u8> = (off..off + len as u64).map(byte).collect();
                assert_eq!(got, want, "offset {off}, length {len}");
            }
        }
    }

    #[test]
    fn draws_repeat_and_spread() {
        assert_eq!(draw(1, &[2, 3]), draw(1, &[2, 3]));
        let mean: f64 = (0..1000).map(|i| draw(9, &[i])).sum::<f64>() / 1000.0;
        assert!((0.4..0.6).contains(&mean));
    }
}
