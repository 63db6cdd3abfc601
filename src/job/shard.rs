//! A share of a search's hits, so that schedulers can split one huge sync across machines:
//! shard `i` of `n` takes the hits whose file ID hashes to `i` modulo `n`: the 64-bit FNV-1a
//! hash of the ID's 16 bytes (big-endian, as the UUID is written). A hash rather than the
//! ID's own low bits, which need not be random (they are not in every generator); FNV-1a
//! because it is fixed by its definition, so a shard takes the same files on every run and
//! every version. Each shard keeps its own state folder and report in the
//! shared destination, and its own lock.

use crate::store::paths::STATE_DIR;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    pub fn new(index: u32, count: u32) -> Result<Shard, String> {
        if count == 0 || index >= count {
            return Err(format!(
                "shard {index} of {count} is out of range: the index goes from 0 to the count less one"
            ));
        }
        Ok(Shard { index, count })
    }

    /// `i/n`.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let (i, n) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?} is not a shard: give it as i/n, e.g. 0/4"))?;
        let num = |s: &str| {
            s.trim()
                .parse::<u32>()
                .map_err(|_| format!("{text:?} is not a shard: give it as i/n, e.g. 0/4"))
        };
        Shard::new(num(i)?, num(n)?)
    }

    /// The shard a scheduler gives this process: a Kubernetes Indexed Job
    /// (`JOB_COMPLETION_INDEX`, with the count from `count` or `JOB_COMPLETIONS`), or a Slurm
    /// job array (`SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN` of `SLURM_ARRAY_TASK_COUNT`).
    pub fn from_env(
        var: impl Fn(&str) -> Option<String>,
        count: Option<u32>,
    ) -> Result<Shard, String> {
        let num = |name: &str| -> Result<Option<u32>, String> {
            match var(name) {
                None => Ok(None),
                Some(v) => v
                    .trim()
                    .parse::<u32>()
                    .map(Some)
                    .map_err(|_| format!("{name}={v:?} is not a number")),
            }
        };
        if let Some(id) = num("SLURM_ARRAY_TASK_ID")? {
            let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let n = match count {
                Some(n) => n,
                None => num("SLURM_ARRAY_TASK_COUNT")?
                    .ok_or("SLURM_ARRAY_TASK_COUNT is not set: give --shard auto/N")?,
            };
            let index = id.checked_sub(min).ok_or_else(|| {
                format!("SLURM_ARRAY_TASK_ID {id} is below SLURM_ARRAY_TASK_MIN {min}")
            })?;
            return Shard::new(index, n);
        }
        if let Some(index) = num("JOB_COMPLETION_INDEX")? {
            let n = match count {
                Some(n) => n,
                None => num("JOB_COMPLETIONS")?.ok_or(
                    "JOB_COMPLETION_INDEX is set but not the count: give --shard auto/N (N = the Job's completions), or set JOB_COMPLETIONS",
                )?,
            };
            return Shard::new(index, n);
        }
        Err("--shard auto found neither a Kubernetes Indexed Job (JOB_COMPLETION_INDEX) nor a Slurm job array (SLURM_ARRAY_TASK_ID)".into())
    }

    /// `shard-<i>-of-<n>`: its state folder's and its report's name.
    pub fn name(&self) -> String {
        format!("shard-{}-of-{}", self.index, self.count)
    }

    /// Whether a file (its ID as a number) is this shard's.
    pub fn takes(&self, id: u128) -> bool {
        fnv1a(&id.to_be_bytes()) % u64::from(self.count) == u64::from(self.index)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The state folder of a job in `dest`: `.tdp-download`, or `.tdp-download/shard-<i>-of-<n>`.
pub fn state_dir(dest: &Path, shard: Option<Shard>) -> PathBuf {
    let base = dest.join(STATE_DIR);
    match shard {
        Some(s) => base.join(s.name()),
        None => base,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_come_from_flags_and_from_kubernetes_and_slurm() {
        assert_eq!(Shard::parse("1/4").unwrap(), Shard { index: 1, count: 4 });
        assert!(Shard::parse("4/4").unwrap_err().contains("out of range"));
        assert!(Shard::parse("x").is_err());
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let k8s = env(&[("JOB_COMPLETION_INDEX", "2")]);
        assert_eq!(
            Shard::from_env(k8s, Some(4)).unwrap(),
            Shard { index: 2, count: 4 }
        );
        assert!(Shard::from_env(k8s, None).is_err());
        let slurm = env(&[
            ("SLURM_ARRAY_TASK_ID", "11"),
            ("SLURM_ARRAY_TASK_MIN", "10"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]);
        assert_eq!(
            Shard::from_env(slurm, None).unwrap(),
            Shard { index: 1, count: 4 }
        );
        let out = env(&[
            ("SLURM_ARRAY_TASK_ID", "7"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]);
        assert!(Shard::from_env(out, None)
            .unwrap_err()
            .contains("out of range"));
        assert!(Shard::from_env(env(&[]), None).is_err());
        // Every ID is in exactly one shard, and IDs whose low bits are all alike still spread.
        let shards: Vec<Shard> = (0..4).map(|i| Shard::new(i, 4).unwrap()).collect();
        let mut counts = [0; 4];
        for k in 0..1000u128 {
            let id = (k << 64) | 0x4000_8000_0000_0003;
            let owners: Vec<usize> = (0..4).filter(|i| shards[*i].takes(id)).collect();
            assert_eq!(owners.len(), 1);
            counts[owners[0]] += 1;
        }
        assert!(counts.iter().all(|c| *c > 200), "{counts:?}");
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
