//! A TDP search paged to the end with no file lost and none twice, however many hits there
//! are.
//!
//! Both searches sit on Elasticsearch, which refuses `from + size` past its result window
//! (10,000 unless configured otherwise). So:
//! - **EQL** pages by `search_after` over `sort: [{fileId: asc}]`: no offset at all. The user's
//!   query is wrapped in a filter `createdAt <= <when the search started>`, so files created
//!   while it pages do not slip in half-way (a new file below the cursor would be missed while
//!   one above it would be taken).
//! - **fileinfo/search** pages by `from`/`size` in ascending `createdAt` within a window that
//!   starts at a `fromDate`. Before `from + size` would pass the result window, the window
//!   moves: its new `fromDate` is the `createdAt` of the last hit taken, and the hits at that
//!   very instant already taken are skipped by ID. `toDate` is pinned to when the search
//!   started (unless the user gave one). If more hits share one instant than a window holds,
//!   the search stops with [`SearchError::TooManyAtOnce`], never truncated.
//! - **Shifts while paging** (a file deleted or replaced by a new version moves every later
//!   hit one place up, and an offset would skip one): each fileinfo page starts one hit early,
//!   on the last hit of the page before. If that hit is not there, the results moved: the
//!   window restarts at that hit's `createdAt` (same rule as above) and the event is counted
//!   in [`Pager::shifts`]. `search_after` cannot skip a hit that stayed.
//!
//! A server whose window is smaller than 10,000 says so in its 400; the pager takes the
//! number from the message and goes on with it.

use crate::error::Retry;
use crate::retry::RetryPolicy;
use crate::tdp::client::TdpClient;
use crate::tdp::error::TdpError;
use crate::tdp::search::{
    iso, iso_ms, parse_ms, Hit, RawHit, Search, SearchError, DEFAULT_WINDOW, PAGE, SOURCE_FIELDS,
};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FileinfoPage {
    #[serde(default)]
    has_next: bool,
    #[serde(default)]
    hits: Vec<RawHit>,
}

#[derive(Deserialize)]
pub(crate) struct EqlAnswer {
    hits: EqlHits,
}

#[derive(Deserialize)]
pub(crate) struct EqlHits {
    #[serde(default)]
    total: Option<Value>,
    #[serde(default)]
    hits: Vec<EqlHit>,
}

#[derive(Deserialize)]
pub(crate) struct EqlHit {
    #[serde(rename = "_source")]
    source: RawHit,
}

/// Where a fileinfo search is.
pub(crate) struct FileinfoCursor {
    filters: Vec<(String, String)>,
    /// The window's start: the user's `fromDate`, then the `createdAt` of the last hit taken.
    from_date: Option<String>,
    to_date: String,
    from: usize,
    /// The ID expected first on the next page (the last of the page before).
    overlap: Option<String>,
    /// The `createdAt` (ms) the window started at, when the pager moved it there.
    window_at: Option<i64>,
    /// The newest `createdAt` taken, as TDP wrote it, and the IDs taken at that instant.
    last: Option<(i64, String)>,
    at_last: HashSet<String>,
}

pub(crate) struct EqlCursor {
    query: Value,
    after: Option<String>,
}

pub(crate) enum Cursor {
    Fileinfo(FileinfoCursor),
    Eql(EqlCursor),
}

/// Pages through a search. Each call to [`Pager::next_page`] sends one request (retrying what
/// can be retried) and returns the new hits, in order, none twice.
pub struct Pager {
    cursor: Cursor,
    window: usize,
    page: usize,
    done: bool,
    /// Times the results moved under the pager and it restarted a window.
    pub shifts: u32,
    /// `hits.total` of an EQL search (a lower bound when Elasticsearch says so).
    pub total: Option<u64>,
    pub pages: u64,
    retry: RetryPolicy,
    patience: Duration,
    /// Network errors are returned at once instead of retried: the caller has a better way to
    /// wait for the network (a job's network gate).
    pub defer_network: bool,
    /// When the listing started, as sent in its upper bound: a sync's next watermark.
    pub started_ms: i64,
    pub started: String,
}

impl Pager {
    pub fn new(search: &Search, retry: RetryPolicy, patience: Duration) -> Pager {
        Pager::since(search, retry, patience, None)
    }

    /// A pager that lists only the files indexed at or after `since_ms` (an EQL search; a
    /// fileinfo search cannot filter on `indexedAt` and lists in full).
    pub fn since(
        search: &Search,
        retry: RetryPolicy,
        patience: Duration,
        since_ms: Option<i64>,
    ) -> Pager {
        let now = SystemTime::now();
        let started = iso(now);
        let started_ms = parse_ms(&started).unwrap_or(0);
        let cursor = match search {
            Search::Fileinfo { params } => {
                let get = |k: &str| params.iter().find(|(p, _)| p == k).map(|(_, v)| v.clone());
                Cursor::Fileinfo(FileinfoCursor {
                    filters: params
                        .iter()
                        .filter(|(k, _)| k != "fromDate" && k != "toDate")
                        .cloned()
                        .collect(),
                    from_date: get("fromDate"),
                    to_date: get("toDate").unwrap_or_else(|| started.clone()),
                    from: 0,
                    overlap: None,
                    window_at: None,
                    last: None,
                    at_last: HashSet::new(),
                })
            }
            Search::Eql { query } => {
                let mut filter = vec![
                    query.clone(),
                    json!({"range": {"createdAt": {"lte": started}}}),
                ];
                if let Some(since) = since_ms {
                    filter.push(json!({"range": {"indexedAt": {"gte": iso_ms(since)}}}));
                }
                Cursor::Eql(EqlCursor {
                    query: json!({"bool": {"filter": filter}}),
                    after: None,
                })
            }
        };
        Pager {
            cursor,
            window: DEFAULT_WINDOW,
            page: PAGE,
            done: false,
            shifts: 0,
            total: None,
            pages: 0,
            retry,
            patience,
            defer_network: false,
            started_ms,
            started,
        }
    }

    /// The next hits; None when the search is exhausted. A page may bring no new hit (it
    /// only moved a window): call again.
    pub async fn next_page(&mut self, tdp: &TdpClient) -> Result<Option<Vec<Hit>>, SearchError> {
        if self.done {
            return Ok(None);
        }
        let hits = match &self.cursor {
            Cursor::Fileinfo(_) => self.fileinfo_page(tdp).await?,
            Cursor::Eql(_) => self.eql_page(tdp).await?,
        };
        self.pages += 1;
        Ok(Some(hits))
    }

    /// Sends one request, retrying throttling, server errors and the network for as long as
    /// the job's patience allows. A 400 about the result window lowers the window instead.
    async fn request<T, F, Fut>(&mut self, send: F) -> Result<Option<T>, SearchError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, TdpError>>,
    {
        let first_failure = Instant::now();
        let mut failures = 0;
        loop {
            match send().await {
                Ok(v) => return Ok(Some(v)),
                Err(TdpError::BadRequest(m)) if m.contains("Result window is too large") => {
                    let stated = m
                        .split('[')
                        .nth(1)
                        .and_then(|r| r.split(']').next())
                        .and_then(|n| n.trim().parse::<usize>().ok());
                    let smaller = stated
                        .filter(|n| *n < self.window)
                        .unwrap_or(self.window / 2);
                    if smaller < 2 {
                        return Err(TdpError::BadRequest(m).into());
                    }
                    tracing::info!("the search's result window is {smaller}: paging within it");
                    self.window = smaller;
                    self.page = self.page.min(smaller / 2).max(1);
                    return Ok(None);
                }
                Err(e @ TdpError::Network(_)) if self.defer_network => return Err(e.into()),
                Err(e) if e.retry() == Retry::Later => {
                    failures += 1;
                    let patience = match e {
                        TdpError::Network(_) => self.patience,
                        _ => self.patience.min(Duration::from_secs(300)),
                    };
                    if first_failure.elapsed() > patience {
                        return Err(e.into());
                    }
                    let wait = self
                        .retry
                        .delay(failures, e.retry_after(), &mut || fastrand::f64());
                    tracing::info!("search page: {e}; again in {wait:?}");
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    async fn eql_page(&mut self, tdp: &TdpClient) -> Result<Vec<Hit>, SearchError> {
        let Cursor::Eql(c) = &self.cursor else {
            return Ok(Vec::new());
        };
        let mut body = json!({
            "query": c.query,
            "size": self.page,
            "sort": [{"fileId": "asc"}],
            "_source": SOURCE_FIELDS,
        });
        if let Some(after) = &c.after {
            body["search_after"] = json!([after]);
        }
        let asked = self.page;
        let Some(answer) = self
            .request(|| tdp.post_json::<EqlAnswer>("/v1/datalake/searchEql", &body))
            .await?
        else {
            return Ok(Vec::new());
        };
        if self.total.is_none() {
            self.total = answer.hits.total.as_ref().and_then(|t| match t {
                Value::Number(n) => n.as_u64(),
                other => other.get("value").and_then(Value::as_u64),
            });
        }
        let raw = answer.hits.hits;
        if raw.len() < asked {
            self.done = true;
        }
        let Cursor::Eql(c) = &mut self.cursor else {
            return Ok(Vec::new());
        };
        // The cursor is the last fileId as TDP wrote it, whatever normalising makes of it.
        if let Some(last) = raw.last().and_then(|h| h.source.file_id.clone()) {
            c.after = Some(last);
        } else {
            self.done = true;
        }
        Ok(raw.iter().filter_map(|h| h.source.hit()).collect())
    }

    async fn fileinfo_page(&mut self, tdp: &TdpClient) -> Result<Vec<Hit>, SearchError> {
        let Cursor::Fileinfo(c) = &self.cursor else {
            return Ok(Vec::new());
        };
        let mut query = c.filters.clone();
        if let Some(from) = &c.from_date {
            query.push(("fromDate".into(), from.clone()));
        }
        query.push(("toDate".into(), c.to_date.clone()));
        query.push(("sort".into(), "asc".into()));
        query.push(("from".into(), c.from.to_string()));
        query.push(("size".into(), self.page.to_string()));
        let Some(page) = self
            .request(|| tdp.get_json::<FileinfoPage>("/v1/fileinfo/search", &query))
            .await?
        else {
            // The window shrank: start a window where the last one ended.
            self.move_window(false)?;
            return Ok(Vec::new());
        };
        let window = self.window;
        let Cursor::Fileinfo(c) = &mut self.cursor else {
            return Ok(Vec::new());
        };
        let mut raw = page.hits.as_slice();
        if let Some(expected) = c.overlap.take() {
            if raw.first().and_then(|h| h.file_id.as_deref()) == Some(expected.as_str()) {
                raw = &raw[1..];
            } else {
                // The results moved: what was at this offset is not any more.
                self.shifts += 1;
                tracing::info!(
                    "the search's results moved while paging: restarting at the last hit taken"
                );
                if self.shifts > 1000 {
                    return Err(TdpError::Protocol(
                        "the search's results keep moving while paging".into(),
                    )
                    .into());
                }
                self.move_window(false)?;
                return Ok(Vec::new());
            }
        }
        let mut hits = Vec::with_capacity(raw.len());
        for h in raw {
            let Some(at) = h.created_ms() else {
                return Err(TdpError::Protocol("a search hit has no createdAt".into()).into());
            };
            let id = h.file_id.clone().unwrap_or_default();
            match &c.last {
                Some((t, _)) if at < *t => {
                    return Err(TdpError::Protocol(
                        "search hits came out of createdAt order".into(),
                    )
                    .into())
                }
                Some((t, _)) if at == *t => {
                    if !c.at_last.insert(id) {
                        continue; // taken before the window moved
                    }
                }
                _ => {
                    c.last = Some((at, h.created_at.clone().unwrap_or_default()));
                    c.at_last.clear();
                    c.at_last.insert(id);
                }
            }
            if let Some(hit) = h.hit() {
                hits.push(hit);
            }
        }
        if !page.has_next {
            self.done = true;
            return Ok(hits);
        }
        if page.hits.is_empty() {
            return Err(TdpError::Protocol(
                "the search said more hits follow, and sent none".into(),
            )
            .into());
        }
        // The next page starts on this page's last hit, to see whether the results moved.
        let next_from = c.from + page.hits.len() - 1;
        c.overlap = page.hits.last().and_then(|h| h.file_id.clone());
        c.from = next_from;
        if next_from + self.page > window {
            self.move_window(true)?;
        }
        Ok(hits)
    }

    /// Starts a new window at the `createdAt` of the last hit taken. `full`: the window is
    /// used up, so one that started at that same instant cannot get past it.
    fn move_window(&mut self, full: bool) -> Result<(), SearchError> {
        let window = self.window;
        let Cursor::Fileinfo(c) = &mut self.cursor else {
            return Ok(());
        };
        c.from = 0;
        c.overlap = None;
        let Some((t, text)) = &c.last else {
            // Nothing taken yet: the same window, from its start.
            return Ok(());
        };
        if full && c.window_at == Some(*t) {
            return Err(SearchError::TooManyAtOnce {
                at: text.clone(),
                window,
            });
        }
        c.window_at = Some(*t);
        c.from_date = Some(text.clone());
        Ok(())
    }
}
