//! Where a job's files come from: a list of IDs, or a TDP search.

use crate::input::ParsedIds;
use crate::tdp::search::Search;

#[derive(Debug, Clone)]
pub enum JobFiles {
    Ids(ParsedIds),
    Search(Search),
}

/// [`JobFiles`], borrowed.
#[derive(Clone, Copy)]
pub(crate) enum Files<'a> {
    Ids(&'a ParsedIds),
    Search(&'a Search),
}

impl JobFiles {
    pub(crate) fn borrowed(&self) -> Files<'_> {
        match self {
            JobFiles::Ids(ids) => Files::Ids(ids),
            JobFiles::Search(search) => Files::Search(search),
        }
    }

    /// Files known before the job starts: a search's are found as it pages.
    pub fn known(&self) -> usize {
        match self {
            JobFiles::Ids(ids) => ids.counts().valid,
            JobFiles::Search(_) => 0,
        }
    }

    /// The IDs listed up front, each once, in input order (none for a search).
    pub fn ids(&self) -> &[String] {
        match self {
            JobFiles::Ids(ids) => ids.ids(),
            JobFiles::Search(_) => &[],
        }
    }
}
