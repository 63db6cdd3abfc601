//! A TDP search as the source of a job's files: `fileinfo/search` (filters in URL-query form)
//! or `datalake/searchEql` (an Elasticsearch body), as a user gives it, and its hits as the
//! job takes them. `tdp::pager` pages it to the end.

use crate::input::normalise_id;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::SystemTime;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The `fileinfo/search` parameters a user may give (`metadata.<key>` besides).
pub const FILEINFO_PARAMETERS: [&str; 14] = [
    "category",
    "sourceType",
    "sourceId",
    "tags",
    "excludeTags",
    "fromDate",
    "toDate",
    "pipelineId",
    "workflowId",
    "rawFileId",
    "traceId",
    "integrationId",
    "integrationType",
    "ids",
];

/// Set by the tool itself: a user's value would break paging.
pub(crate) const PAGING_PARAMETERS: [&str; 3] = ["from", "size", "sort"];

/// Hits asked for per page; Elasticsearch suggests 1,000.
pub const PAGE: usize = 1000;
/// Elasticsearch's default `index.max_result_window`.
pub const DEFAULT_WINDOW: usize = 10_000;

/// The fields a hit needs: asked for by `_source` in EQL.
pub(crate) const SOURCE_FIELDS: [&str; 6] = [
    "fileId",
    "filePath",
    "file",
    "createdAt",
    "deleted",
    "outdated",
];

/// What a job downloads when it is given a search instead of IDs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Search {
    /// `GET /v1/fileinfo/search` with these pairs (repeated keys kept, in order).
    Fileinfo { params: Vec<(String, String)> },
    /// `POST /v1/datalake/searchEql` with this `query`.
    Eql { query: Value },
}

pub use crate::tdp::error::SearchError;

impl Search {
    /// `--search 'category=RAW&tags=a&metadata.project=P-1'`: fileinfo parameters in URL-query
    /// form. A parameter the search does not know is an error that names it: a typo must not
    /// widen a download to everything.
    pub fn parse_query(text: &str) -> Result<Search, SearchError> {
        let text = text.trim().trim_start_matches('?');
        let mut params = Vec::new();
        for (k, v) in url::form_urlencoded::parse(text.as_bytes()) {
            let (k, v) = (k.trim().to_string(), v.trim().to_string());
            if PAGING_PARAMETERS.contains(&k.as_str()) {
                return Err(SearchError::PagingParameter(k));
            }
            let known = FILEINFO_PARAMETERS.contains(&k.as_str())
                || k.strip_prefix("metadata.").is_some_and(|m| !m.is_empty());
            if !known {
                return Err(SearchError::UnknownParameter {
                    hint: closest(&k)
                        .map(|c| format!(" (did you mean {c}?)"))
                        .unwrap_or_default(),
                    name: k,
                    known: FILEINFO_PARAMETERS.join(", "),
                });
            }
            if v.is_empty() {
                return Err(SearchError::EmptyValue(k));
            }
            params.push((k, v));
        }
        Ok(Search::Fileinfo { params })
    }

    /// `--eql FILE`: an Elasticsearch request body. Its `query` is kept; `size`, `sort`,
    /// `search_after`, `from` and `_source` are the tool's.
    pub fn parse_eql(text: &str) -> Result<Search, SearchError> {
        let body: Value =
            serde_json::from_str(text).map_err(|e| SearchError::Eql(format!("not JSON: {e}")))?;
        let obj = body
            .as_object()
            .ok_or_else(|| SearchError::Eql("the body must be a JSON object".into()))?;
        let query = obj.get("query").cloned().ok_or_else(|| {
            SearchError::Eql(
                "it has no \"query\" (e.g. {\"query\": {\"term\": {\"category\": \"RAW\"}}})"
                    .into(),
            )
        })?;
        if !query.is_object() {
            return Err(SearchError::Eql("\"query\" must be an object".into()));
        }
        let ours = ["query", "size", "sort", "search_after", "from", "_source"];
        if let Some(other) = obj.keys().find(|k| !ours.contains(&k.as_str())) {
            return Err(SearchError::Eql(format!(
                "{other:?} is not used by a download; give only \"query\""
            )));
        }
        Ok(Search::Eql { query })
    }

    /// One line for the log, the report and the window.
    pub fn describe(&self) -> String {
        match self {
            Search::Fileinfo { params } => {
                let q: String = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(params)
                    .finish();
                format!("fileinfo search {q}")
            }
            Search::Eql { query } => format!("EQL search {query}"),
        }
    }
}

/// The known parameter a typo most likely meant (one edit away, or the same but for case).
pub(crate) fn closest(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    FILEINFO_PARAMETERS
        .iter()
        .copied()
        .find(|p| p.to_ascii_lowercase() == lower)
        .or_else(|| {
            FILEINFO_PARAMETERS
                .iter()
                .copied()
                .find(|p| edit_distance(&p.to_ascii_lowercase(), &lower) <= 2)
        })
}

pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// One file a search found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// Normalised (lowercase, hyphenated).
    pub id: String,
    /// `file.size`: reliable in TDP.
    pub size: Option<u64>,
    /// `file.checksum`, lowercase, when it is an MD5 (32 hex digits); other forms are not
    /// checked.
    pub md5: Option<String>,
    /// `file.path`: the object key.
    pub key: Option<String>,
    pub deleted: bool,
    pub outdated: bool,
}

/// Why a hit is not downloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exclusion {
    Deleted,
    Outdated,
}

impl Exclusion {
    pub fn reason(self) -> &'static str {
        match self {
            Exclusion::Deleted => "deleted in TDP",
            Exclusion::Outdated => {
                "an outdated version (a newer one exists); --include-outdated downloads it"
            }
        }
    }
}

impl Hit {
    pub fn excluded(&self, include_outdated: bool) -> Option<Exclusion> {
        if self.deleted {
            Some(Exclusion::Deleted)
        } else if self.outdated && !include_outdated {
            Some(Exclusion::Outdated)
        } else {
            None
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawHit {
    pub(crate) file_id: Option<String>,
    #[serde(default)]
    file: Option<RawFile>,
    #[serde(default)]
    pub(crate) created_at: Option<String>,
    #[serde(default)]
    deleted: Option<bool>,
    #[serde(default)]
    outdated: Option<bool>,
}

#[derive(Deserialize)]
pub(crate) struct RawFile {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    size: Option<Value>,
    #[serde(default)]
    checksum: Option<String>,
}

impl RawHit {
    /// The hit, or None for a record without a usable file ID (logged, never downloaded).
    pub(crate) fn hit(&self) -> Option<Hit> {
        let id = match self.file_id.as_deref().map(normalise_id) {
            Some(Ok(id)) => id,
            _ => {
                tracing::warn!("a search hit without a valid fileId was left out");
                return None;
            }
        };
        let file = self.file.as_ref();
        let md5 = file
            .and_then(|f| f.checksum.as_deref())
            .map(str::trim)
            .filter(|c| c.len() == 32 && c.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_ascii_lowercase);
        Some(Hit {
            id,
            size: file.and_then(|f| match &f.size {
                Some(Value::Number(n)) => n.as_u64(),
                Some(Value::String(s)) => s.parse().ok(),
                _ => None,
            }),
            md5,
            key: file.and_then(|f| f.path.clone()),
            deleted: self.deleted.unwrap_or(false),
            outdated: self.outdated.unwrap_or(false),
        })
    }

    pub(crate) fn created_ms(&self) -> Option<i64> {
        parse_ms(self.created_at.as_deref()?)
    }
}

pub(crate) fn parse_ms(s: &str) -> Option<i64> {
    OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// Milliseconds since 1970 in RFC 3339, as TDP writes its times.
pub fn iso_ms(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

pub(crate) fn iso(t: SystemTime) -> String {
    OffsetDateTime::from(t)
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use serde_json::json;

    #[test]
    fn a_search_in_url_form_keeps_its_filters_and_names_an_unknown_one() {
        let s = Search::parse_query("category=RAW&tags=a&tags=b&metadata.project=P-1").unwrap();
        assert_eq!(
            s,
            Search::Fileinfo {
                params: vec![
                    ("category".into(), "RAW".into()),
                    ("tags".into(), "a".into()),
                    ("tags".into(), "b".into()),
                    ("metadata.project".into(), "P-1".into()),
                ]
            }
        );
        let e = Search::parse_query("category=RAW&catgory=IDS").unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("\"catgory\"") && text.contains("did you mean category?"),
            "{text}"
        );
        assert_eq!(e.kind(), ErrorKind::Input);
        assert!(matches!(
            Search::parse_query("size=50"),
            Err(SearchError::PagingParameter(_))
        ));
        assert!(matches!(
            Search::parse_query("tags="),
            Err(SearchError::EmptyValue(_))
        ));
    }

    #[test]
    fn an_eql_body_keeps_its_query_only() {
        let s =
            Search::parse_eql(r#"{"query": {"term": {"category": "RAW"}}, "size": 5}"#).unwrap();
        assert_eq!(
            s,
            Search::Eql {
                query: json!({"term": {"category": "RAW"}})
            }
        );
        assert!(Search::parse_eql(r#"{"size": 5}"#).is_err());
        assert!(Search::parse_eql(r#"{"query": {}, "aggs": {}}"#).is_err());
        assert!(Search::parse_eql("not json").is_err());
    }

    #[test]
    fn a_checksum_counts_as_md5_only_in_md5_form() {
        let raw: RawHit = serde_json::from_value(json!({
            "fileId": "3F2B8C1E-5D4A-4E2B-9C1D-7A6B5C4D3E2F",
            "file": {"path": "o/s/RAW/a.csv", "size": 12, "checksum": "D41D8CD98F00B204E9800998ECF8427E"},
            "createdAt": "2025-01-02T03:04:05.678Z"
        }))
        .unwrap();
        let hit = raw.hit().unwrap();
        assert_eq!(hit.id, "3f2b8c1e-5d4a-4e2b-9c1d-7a6b5c4d3e2f");
        assert_eq!(hit.md5.as_deref(), Some("d41d8cd98f00b204e9800998ecf8427e"));
        assert_eq!(hit.size, Some(12));
        assert_eq!(raw.created_ms(), Some(1_735_787_045_678));
        let sha: RawHit = serde_json::from_value(json!({
            "fileId": "3f2b8c1e-5d4a-4e2b-9c1d-7a6b5c4d3e2f",
            "file": {"checksum": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}
        }))
        .unwrap();
        assert_eq!(sha.hit().unwrap().md5, None);
    }
}
