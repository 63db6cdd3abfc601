//! The names the store gives out: a file's wanted name, or the next free one where another
//! file (of this job, or already on disk) has it, or its ID where the file system refuses it.
//! Names are compared as the destination's file system files them (case, composition).

use crate::store::journal::{key, Record};
use crate::store::naming::{fallback_name, fit, path_hash, with_suffix};
use crate::store::paths::STATE_DIR;
use crate::store::state::{join_rel, StateError, Store};

impl Store {
    pub(super) fn free(&self, id: &str, rel: &str) -> bool {
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
    pub(super) fn candidates(&self, id: &str, wanted: &str) -> [String; 4] {
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
    pub(super) fn claim_first(
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

    pub(super) fn claim(&mut self, id: &str, rel: String) -> Result<String, StateError> {
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
    pub(super) fn maybe_ours(&self, id: &str, rel: &str, final_len: Option<u64>) -> bool {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::naming::NameFolding;

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
}
