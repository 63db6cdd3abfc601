//! Sets of completed byte ranges, half-open and kept merged.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ranges(Vec<(u64, u64)>);

impl Ranges {
    pub fn insert(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let (mut s, mut e) = (start, end);
        let mut kept = Vec::with_capacity(self.0.len() + 1);
        for &(a, b) in &self.0 {
            if b < s || a > e {
                kept.push((a, b));
            } else {
                s = s.min(a);
                e = e.max(b);
            }
        }
        kept.push((s, e));
        kept.sort_unstable();
        self.0 = kept;
    }

    /// Bytes from 0 that are complete without a gap.
    pub fn contiguous_prefix(&self) -> u64 {
        match self.0.first() {
            Some(&(0, e)) => e,
            _ => 0,
        }
    }

    /// The gaps in `[0, size)`.
    pub fn missing(&self, size: u64) -> Vec<(u64, u64)> {
        let mut gaps = Vec::new();
        let mut pos = 0;
        for &(a, b) in &self.0 {
            if a > pos {
                gaps.push((pos, a.min(size)));
            }
            pos = pos.max(b);
        }
        if pos < size {
            gaps.push((pos, size));
        }
        gaps.retain(|(a, b)| a < b);
        gaps
    }

    pub fn covered(&self) -> u64 {
        self.0.iter().map(|(a, b)| b - a).sum()
    }

    pub fn spans(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.0.iter().copied()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_and_finds_gaps() {
        let mut r = Ranges::default();
        r.insert(10, 20);
        r.insert(0, 5);
        r.insert(5, 10);
        r.insert(30, 40);
        assert_eq!(r.contiguous_prefix(), 20);
        assert_eq!(r.missing(50), vec![(20, 30), (40, 50)]);
        assert_eq!(r.covered(), 30);
        r.insert(15, 45);
        assert_eq!(r.missing(50), vec![(45, 50)]);
    }
}
