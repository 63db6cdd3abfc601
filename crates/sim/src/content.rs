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

/// Fills `buf` with the object's bytes starting at `offset`.
pub fn fill(file_seed: u64, offset: u64, buf: &mut [u8]) {
    let mut pos = offset;
    let mut i = 0;
    while i < buf.len() {
        let word = splitmix64(file_seed ^ (pos / 8).wrapping_mul(0xA24B_AED4_963E_E407));
        let bytes = word.to_le_bytes();
        let start = (pos % 8) as usize;
        let n = (8 - start).min(buf.len() - i);
        buf[i..i + n].copy_from_slice(&bytes[start..start + n]);
        i += n;
        pos += n as u64;
    }
}

/// The whole content (only for small objects: tests and gzip objects).
pub fn content(file_seed: u64, size: u64) -> Vec<u8> {
    let mut v = vec![0u8; size as usize];
    fill(file_seed, 0, &mut v);
    v
}

/// MD5 of the content, streamed in blocks so large objects need no memory.
pub fn md5_of(file_seed: u64, size: u64) -> [u8; 16] {
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut off = 0;
    while off < size {
        let n = (size - off).min(buf.len() as u64) as usize;
        fill(file_seed, off, &mut buf[..n]);
        hasher.update(&buf[..n]);
        off += n as u64;
    }
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn draws_repeat_and_spread() {
        assert_eq!(draw(1, &[2, 3]), draw(1, &[2, 3]));
        let mean: f64 = (0..1000).map(|i| draw(9, &[i])).sum::<f64>() / 1000.0;
        assert!((0.4..0.6).contains(&mean));
    }
}
