//! TDP's two searches over the simulated files: `fileinfo/search` (filters in the query or a
//! JSON body, `from`/`size` paging, `sort` on createdAt) and `datalake/searchEql` (the part of
//! Elasticsearch's query language the engine and users need: bool, term, terms, range,
//! exists, match, `search_after` on fileId). Both refuse `from + size` past the result window,
//! as an Elasticsearch-backed service does.

use super::files::SimFile;
use serde::Serialize;
use serde_json::{json, Value};
use std::sync::Arc;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The files in the two orders the searches page in.
pub struct Index {
    /// By (createdAt, fileId).
    by_created: Vec<Arc<SimFile>>,
    /// By fileId.
    by_id: Vec<Arc<SimFile>>,
    org: String,
    bucket: String,
}

/// A page of either search: its JSON and whether it was the last one.
pub struct Page {
    pub body: String,
    pub last: bool,
}

/// A file's fileinfo record, serialised without building a JSON tree (a page has 1,000).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Record<'a> {
    file_id: &'a str,
    org_slug: &'a str,
    file_path: String,
    category: &'a str,
    trace_id: Option<&'a str>,
    raw_file_id: Option<&'a str>,
    ids: Option<&'a str>,
    file: FileRecord<'a>,
    created_at: String,
    indexed_at: String,
    source: SourceRecord<'a>,
    source_type: &'a str,
    integration: Value,
    metadata: std::collections::BTreeMap<&'a str, &'a str>,
    tags: &'a [String],
    deleted: bool,
    outdated: bool,
}

#[derive(Serialize)]
struct FileRecord<'a> {
    bucket: &'a str,
    path: &'a str,
    checksum: Option<&'a str>,
    size: u64,
    r#type: &'a str,
    version: &'a str,
}

#[derive(Serialize)]
struct SourceRecord<'a> {
    id: &'a str,
    r#type: &'a str,
    name: &'a str,
}

pub type Refusal = (u16, String);

const FILEINFO_FILTERS: [&str; 14] = [
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

pub fn iso(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// An RFC 3339 time, or a date (its first millisecond; with `end_of_day`, its last).
pub fn parse_time(s: &str, end_of_day: bool) -> Option<i64> {
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some((t.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    let d = time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).ok()?;
    let start = d.midnight().assume_utc().unix_timestamp() * 1000;
    Some(if end_of_day {
        start + 86_400_000 - 1
    } else {
        start
    })
}

impl Index {
    pub fn new(files: &[Arc<SimFile>], org: &str, bucket: &str) -> Index {
        let mut by_created = files.to_vec();
        by_created.sort_by(|a, b| (a.meta.created_ms, &a.id).cmp(&(b.meta.created_ms, &b.id)));
        let mut by_id = files.to_vec();
        by_id.sort_by(|a, b| a.id.cmp(&b.id));
        Index {
            by_created,
            by_id,
            org: org.to_string(),
            bucket: bucket.to_string(),
        }
    }

    /// A fileinfo record, as both searches return it.
    fn record<'a>(&'a self, f: &'a SimFile) -> Record<'a> {
        let after_category = f.key.splitn(4, '/').nth(3).unwrap_or(&f.key);
        let ext = f.key.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
        Record {
            file_id: &f.id,
            org_slug: &self.org,
            file_path: format!("/{after_category}"),
            category: &f.meta.category,
            trace_id: None,
            raw_file_id: None,
            ids: None,
            file: FileRecord {
                bucket: &self.bucket,
                path: &f.key,
                checksum: f.meta.checksum.as_deref(),
                size: f.size,
                r#type: ext,
                version: "1",
            },
            created_at: iso(f.meta.created_ms),
            indexed_at: iso(f.meta.indexed_ms),
            source: SourceRecord {
                id: &f.meta.source_id,
                r#type: &f.meta.source_type,
                name: &f.meta.source_id,
            },
            source_type: &f.meta.source_type,
            integration: json!({"id": null, "type": null}),
            metadata: f
                .meta
                .metadata
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
            tags: &f.meta.tags,
            deleted: f.meta.deleted,
            outdated: f.meta.outdated,
        }
    }

    /// `GET`/`POST /v1/fileinfo/search`: `params` are the query's pairs (repeated keys kept).
    pub fn fileinfo(&self, params: &[(String, String)], window: usize) -> Result<Page, Refusal> {
        let bad = |m: String| (400, m);
        let mut from = 0usize;
        let mut size = 10usize;
        let mut desc = false;
        let mut from_ms = i64::MIN;
        let mut to_ms = i64::MAX;
        let mut filters: Vec<(&str, &str)> = Vec::new();
        for (k, v) in params {
            match k.as_str() {
                "from" => from = v.parse().map_err(|_| bad(format!("invalid from: {v}")))?,
                "size" => size = v.parse().map_err(|_| bad(format!("invalid size: {v}")))?,
                "sort" => match v.as_str() {
                    "asc" => desc = false,
                    "desc" => desc = true,
                    _ => return Err(bad(format!("invalid sort: {v}"))),
                },
                "fromDate" => {
                    from_ms =
                        parse_time(v, false).ok_or_else(|| bad(format!("invalid fromDate: {v}")))?
                }
                "toDate" => {
                    to_ms =
                        parse_time(v, true).ok_or_else(|| bad(format!("invalid toDate: {v}")))?
                }
                k if FILEINFO_FILTERS.contains(&k) || k.starts_with("metadata.") => {
                    filters.push((k, v))
                }
                other => return Err(bad(format!("unknown search parameter: {other}"))),
            }
        }
        if from + size > window {
            return Err(bad(format!(
                "Result window is too large, from + size must be less than or equal to: [{window}] but was [{}]",
                from + size
            )));
        }
        let lo = self
            .by_created
            .partition_point(|f| f.meta.created_ms < from_ms);
        let hi = self
            .by_created
            .partition_point(|f| f.meta.created_ms <= to_ms);
        let span = &self.by_created[lo..hi.max(lo)];
        let keep = |f: &&Arc<SimFile>| filters.iter().all(|(k, v)| fileinfo_filter(f, k, v));
        let matching: Box<dyn Iterator<Item = &Arc<SimFile>>> = if desc {
            Box::new(span.iter().rev().filter(keep).skip(from))
        } else {
            Box::new(span.iter().filter(keep).skip(from))
        };
        let mut page: Vec<&Arc<SimFile>> = matching.take(size + 1).collect();
        let more = page.len() > size;
        page.truncate(size);
        let hits: Vec<Record> = page.iter().map(|f| self.record(f)).collect();
        Ok(Page {
            body: json!({
                "from": from,
                "size": size,
                "sort": if desc { "desc" } else { "asc" },
                "hasNext": more,
                "hits": [],
            })
            .to_string()
            .replace(
                "\"hits\":[]",
                &format!(
                    "\"hits\":{}",
                    serde_json::to_string(&hits).unwrap_or_default()
                ),
            ),
            last: !more,
        })
    }

    /// `POST /v1/datalake/searchEql`.
    pub fn eql(&self, body: &Value, window: usize) -> Result<Page, Refusal> {
        let bad = |m: String| (400, m);
        let size = body.get("size").and_then(Value::as_u64).unwrap_or(10) as usize;
        let from = body.get("from").and_then(Value::as_u64).unwrap_or(0) as usize;
        if size > 10_000 || from + size > window {
            return Err(bad(format!(
                "Result window is too large, from + size must be less than or equal to: [{window}] but was [{}]",
                from + size
            )));
        }
        if let Some(sort) = body.get("sort") {
            let by_id = sort == &json!([{"fileId": "asc"}])
                || sort == &json!([{"fileId": {"order": "asc"}}])
                || sort == &json!(["fileId"]);
            if !by_id {
                return Err(bad(format!(
                    "the simulator sorts on fileId ascending only, not {sort}"
                )));
            }
        }
        let query = body
            .get("query")
            .cloned()
            .unwrap_or(json!({"match_all": {}}));
        // Checked once, before paging, so an unsupported query is refused even when empty.
        if let Some(first) = self.by_id.first() {
            eval(&query, first).map_err(bad)?;
        }
        let start = match body.get("search_after").and_then(Value::as_array) {
            Some(after) => {
                let last = after
                    .first()
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad("search_after must hold a fileId".into()))?;
                self.by_id.partition_point(|f| f.id.as_str() <= last)
            }
            None => 0,
        };
        let total = if body.get("search_after").is_none() {
            let n = self
                .by_id
                .iter()
                .filter(|f| eval(&query, f).unwrap_or(false))
                .count();
            json!({"value": n.min(10_000), "relation": if n > 10_000 { "gte" } else { "eq" }})
        } else {
            json!({"value": 0, "relation": "gte"})
        };
        let fields: Option<Vec<String>> = body.get("_source").and_then(|s| {
            s.as_array().map(|a| {
                a.iter()
                    .filter_map(|v| {
                        v.as_str()
                            .map(|s| s.split('.').next().unwrap_or(s).to_string())
                    })
                    .collect()
            })
        });
        let mut hits = Vec::new();
        for f in self.by_id[start..]
            .iter()
            .filter(|f| eval(&query, f).unwrap_or(false))
            .skip(from)
            .take(size)
        {
            let mut source = serde_json::to_value(self.record(f)).unwrap_or_default();
            if let (Some(fields), Some(obj)) = (&fields, source.as_object_mut()) {
                obj.retain(|k, _| fields.iter().any(|f| f == k));
            }
            hits.push(json!({"_index": "datalake", "_id": f.id, "_score": null, "_source": source, "sort": [f.id]}));
        }
        let last = hits.len() < size;
        Ok(Page {
            body: json!({
                "took": 1,
                "timed_out": false,
                "hits": {"total": total, "max_score": null, "hits": hits},
            })
            .to_string(),
            last,
        })
    }
}

fn fileinfo_filter(f: &SimFile, key: &str, value: &str) -> bool {
    let m = &f.meta;
    match key {
        "category" => m.category.eq_ignore_ascii_case(value),
        "sourceType" => m.source_type == value,
        "sourceId" => m.source_id == value,
        "tags" => m.tags.iter().any(|t| t == value),
        "excludeTags" => !m.tags.iter().any(|t| t == value),
        k => match k.strip_prefix("metadata.") {
            Some(name) => m.metadata.iter().any(|(n, v)| n == name && v == value),
            // Fields the simulated files do not have: nothing matches.
            None => false,
        },
    }
}

/// The values of a field of a file's record, by its dotted name.
fn field(f: &SimFile, name: &str) -> Vec<Value> {
    let m = &f.meta;
    let one = |v: Value| vec![v];
    match name {
        "fileId" | "_id" => one(f.id.clone().into()),
        "category" => one(m.category.clone().into()),
        "sourceType" | "source.type" => one(m.source_type.clone().into()),
        "source.id" | "sourceId" => one(m.source_id.clone().into()),
        "tags" => m.tags.iter().map(|t| Value::from(t.as_str())).collect(),
        "createdAt" => one(m.created_ms.into()),
        "indexedAt" => one(m.indexed_ms.into()),
        "deleted" => one(m.deleted.into()),
        "outdated" => one(m.outdated.into()),
        "file.size" => one(f.size.into()),
        "file.path" => one(f.key.clone().into()),
        "file.checksum" => m.checksum.clone().map(Value::from).into_iter().collect(),
        n => match n.strip_prefix("metadata.") {
            Some(key) => m
                .metadata
                .iter()
                .filter(|(k, _)| k == key)
                .map(|(_, v)| Value::from(v.as_str()))
                .collect(),
            None => Vec::new(),
        },
    }
}

fn is_time(name: &str) -> bool {
    matches!(name, "createdAt" | "indexedAt")
}

/// An operand of a comparison, in the field's terms: times become milliseconds.
fn operand(name: &str, v: &Value) -> Result<Value, String> {
    if is_time(name) {
        if let Some(s) = v.as_str() {
            return parse_time(s, false)
                .map(Value::from)
                .ok_or_else(|| format!("invalid time for {name}: {s}"));
        }
    }
    Ok(v.clone())
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.eq_ignore_ascii_case(y),
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn order(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// The only entry of a one-key object: `{"term": {...}}` → ("term", {...}).
fn single(v: &Value) -> Result<(&String, &Value), String> {
    let obj = v
        .as_object()
        .ok_or_else(|| format!("expected an object, got {v}"))?;
    if obj.len() != 1 {
        return Err(format!("expected one key in {v}"));
    }
    obj.iter().next().ok_or_else(|| format!("empty clause {v}"))
}

fn clauses(v: Option<&Value>) -> Vec<&Value> {
    match v {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(v) => vec![v],
        None => Vec::new(),
    }
}

/// Whether a file matches a query; an error names what the simulator does not support.
pub fn eval(q: &Value, f: &SimFile) -> Result<bool, String> {
    let (kind, body) = single(q)?;
    match kind.as_str() {
        "match_all" => Ok(true),
        "bool" => {
            let all = |key: &str| -> Result<bool, String> {
                for c in clauses(body.get(key)) {
                    if !eval(c, f)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            };
            if !all("must")? || !all("filter")? {
                return Ok(false);
            }
            for c in clauses(body.get("must_not")) {
                if eval(c, f)? {
                    return Ok(false);
                }
            }
            let should = clauses(body.get("should"));
            let required = body
                .get("minimum_should_match")
                .and_then(Value::as_u64)
                .unwrap_or(u64::from(
                    body.get("must").is_none()
                        && body.get("filter").is_none()
                        && !should.is_empty(),
                ));
            let mut n = 0;
            for c in should {
                n += u64::from(eval(c, f)?);
            }
            Ok(n >= required)
        }
        "term" | "match" | "match_phrase" => {
            let (name, v) = single(body)?;
            let v = v.get("value").or_else(|| v.get("query")).unwrap_or(v);
            let v = operand(name, v)?;
            Ok(field(f, name).iter().any(|x| same(x, &v)))
        }
        "terms" => {
            let (name, vs) = single(body)?;
            let vs = vs
                .as_array()
                .ok_or_else(|| format!("terms wants a list: {vs}"))?;
            let vs: Vec<Value> = vs
                .iter()
                .map(|v| operand(name, v))
                .collect::<Result<_, _>>()?;
            Ok(field(f, name).iter().any(|x| vs.iter().any(|v| same(x, v))))
        }
        "range" => {
            let (name, bounds) = single(body)?;
            let bounds = bounds
                .as_object()
                .ok_or_else(|| format!("range wants bounds: {bounds}"))?;
            let values = field(f, name);
            for (op, v) in bounds {
                let v = operand(name, v)?;
                let ok = |want: &dyn Fn(std::cmp::Ordering) -> bool| {
                    values.iter().any(|x| order(x, &v).is_some_and(want))
                };
                let pass = match op.as_str() {
                    "gte" => ok(&|o| o.is_ge()),
                    "gt" => ok(&|o| o.is_gt()),
                    "lte" => ok(&|o| o.is_le()),
                    "lt" => ok(&|o| o.is_lt()),
                    "format" | "time_zone" => true,
                    other => return Err(format!("unsupported range bound {other}")),
                };
                if !pass {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        "exists" => {
            let name = body
                .get("field")
                .and_then(Value::as_str)
                .ok_or_else(|| "exists wants a field".to_string())?;
            Ok(!field(f, name).is_empty())
        }
        other => Err(format!("the simulator does not support the {other} query")),
    }
}
