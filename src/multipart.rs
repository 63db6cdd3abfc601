//! The part size of an object uploaded in parts, told from its multipart ETag's part count
//! and its size, so that its ETag (`md5(concat(md5(part)))-N`) can be recomputed.
//!
//! Only uniform parts can be told: the AWS SDKs' transfer managers cut 8 MiB (boto3, the AWS
//! CLI) or 5 MiB (JavaScript's lib-storage, Go, Java v1) parts, some tools 16 MiB. A size
//! fits when `N` parts of it hold the object and `N - 1` do not. Other sizes are not tried:
//! TetraScience's SDK cuts parts of about 100 MB where its compressed stream passes 100 MB
//! (no two alike), and for a large object one MiB-aligned size often fits that count alone,
//! so trying it would fail to match on every such object and fetch it again for nothing.
//! Where no size fits, the object is checked by size alone.
//!
//! A size that fits can still be wrong (an uploader with 7 MiB parts gives 20 MiB three
//! parts, as 8 MiB does): the caller tells a wrong guess from damage by fetching again —
//! damage in transit changes the digest, a wrong guess gives the same one twice.

const MIB: u64 = 1 << 20;

/// The part sizes of the common uploaders, most common first.
pub const UPLOADER_PART_SIZES: [u64; 3] = [8 * MIB, 5 * MIB, 16 * MIB];

/// The uploaders' part sizes with which `size` bytes take exactly `parts` parts.
pub fn part_sizes(size: u64, parts: u64) -> Vec<u64> {
    UPLOADER_PART_SIZES
        .into_iter()
        .filter(|&p| parts >= 1 && size.div_ceil(p) == parts && size > 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_part_size_is_the_one_whose_count_fits() {
        // 16 parts of 8 MiB, the last one short.
        assert_eq!(part_sizes(16 * 8 * MIB - 1000, 16), vec![8 * MIB]);
        assert_eq!(part_sizes(12 * 5 * MIB, 12), vec![5 * MIB]);
        // 20 MiB in 3 parts: 8 MiB fits, and so would 7 or 9 (the caller finds out).
        assert_eq!(part_sizes(20 * MIB, 3), vec![8 * MIB]);
        // 20 MiB in 2 parts: 16 MiB fits; 4 parts: 5 MiB.
        assert_eq!(part_sizes(20 * MIB, 2), vec![16 * MIB]);
        assert_eq!(part_sizes(20 * MIB, 4), vec![5 * MIB]);
        // TetraScience's ~100 MB parts: nothing fits, checked by size.
        assert!(part_sizes(380_000_000, 4).is_empty());
        assert!(part_sizes(10_000_000_000, 100).is_empty());
    }
}
