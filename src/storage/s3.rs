//! GETs against pre-signed S3 URLs. This client never carries TDP headers, never follows
//! redirects and never decodes content: the bytes are kept exactly as stored.

use crate::checksum::ObjectChecksum;
use crate::net::blocked::Blocked;
use crate::net::connect::Connector;
use crate::retry::parse_retry_after;
pub use crate::storage::error::S3Error;
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime};

/// What S3 says about an object, kept in the state journal so a rerun recognises it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectInfo {
    /// Size as stored (encoded size for `Content-Encoding: gzip` objects).
    pub size: u64,
    pub etag: Option<String>,
    pub encoding: Option<String>,
    /// `x-amz-server-side-encryption` (or `sse-c` for customer keys).
    pub sse: Option<String>,
    /// S3's full-object additional checksum, where the URL lets us ask for it and the
    /// response covered the whole object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<ObjectChecksum>,
}

impl ObjectInfo {
    /// The ETag is an MD5 of the content only for single-part objects that are not KMS- or
    /// customer-key-encrypted.
    pub fn etag_md5(&self) -> Option<&str> {
        let etag = self.etag.as_deref()?;
        (!self.key_encrypted() && is_md5_hex(etag)).then_some(etag)
    }

    /// The ETag of an object uploaded in parts, `<md5 of the parts' MD5s>-<parts>`, and its
    /// part count: checkable where the part size can be told (`multipart`), and only for
    /// objects that are not KMS- or customer-key-encrypted.
    pub fn etag_multipart(&self) -> Option<(&str, u64)> {
        let etag = self.etag.as_deref()?;
        let (digest, parts) = etag.split_once('-')?;
        let parts: u64 = parts.parse().ok().filter(|n| (1..=10_000).contains(n))?;
        (!self.key_encrypted() && is_md5_hex(digest)).then_some((etag, parts))
    }

    fn key_encrypted(&self) -> bool {
        matches!(self.sse.as_deref(), Some(s) if s.starts_with("aws:kms") || s == "sse-c")
    }

    pub fn is_gzip(&self) -> bool {
        matches!(self.encoding.as_deref(), Some(e) if e.eq_ignore_ascii_case("gzip") || e.eq_ignore_ascii_case("x-gzip"))
    }
}

/// Whether a pre-signed URL signs `x-amz-checksum-mode`: then every GET must send it (S3
/// refuses a signed header that is missing), and S3 answers with the object's checksums.
pub fn signs_checksum_mode(url: &str) -> bool {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    query.split('&').any(|p| {
        p.split_once('=').is_some_and(|(k, v)| {
            k.eq_ignore_ascii_case("X-Amz-SignedHeaders")
                && percent_encoding::percent_decode_str(v)
                    .decode_utf8_lossy()
                    .split(';')
                    .any(|h| h.eq_ignore_ascii_case("x-amz-checksum-mode"))
        })
    })
}

fn is_md5_hex(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A response whose body is about to be streamed.
pub struct ObjectResponse {
    pub resp: reqwest::Response,
    /// Offset of the first body byte in the object.
    pub start: u64,
    pub info: ObjectInfo,
    pub disposition: Option<String>,
}

pub struct S3Client {
    http: reqwest::Client,
}

fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Parses `bytes a-b/total` (or `bytes */total`).
fn content_range(value: &str) -> Option<(Option<(u64, u64)>, u64)> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (span, total) = rest.split_once('/')?;
    let total: u64 = total.trim().parse().ok()?;
    if span.trim() == "*" {
        return Some((None, total));
    }
    let (a, b) = span.split_once('-')?;
    Some((
        Some((a.trim().parse().ok()?, b.trim().parse().ok()?)),
        total,
    ))
}

/// What a 206 response carries: (first byte, length, object size). A malformed range is a
/// protocol error (retried), never arithmetic on nonsense.
fn partial_span(value: Option<&str>) -> Result<(u64, u64, u64), S3Error> {
    let (span, total) = value
        .and_then(content_range)
        .ok_or_else(|| S3Error::Protocol("206 without a usable Content-Range".into()))?;
    let (a, b) = span.ok_or_else(|| S3Error::Protocol("206 without a byte span".into()))?;
    if b < a || b >= total {
        return Err(S3Error::Protocol(format!(
            "a malformed Content-Range (bytes {a}-{b}/{total})"
        )));
    }
    Ok((a, b + 1 - a, total))
}

fn xml_field<'a>(body: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&close)? + start;
    Some(&body[start..end])
}

impl S3Client {
    pub fn new(
        connector: &Connector,
        connect_timeout: Duration,
        read_timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        let http = connector
            .builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_gzip()
            .no_brotli()
            .no_deflate()
            .no_zstd()
            .connect_timeout(connect_timeout)
            .read_timeout(read_timeout)
            .pool_max_idle_per_host(512)
            .tcp_nodelay(true)
            .build()?;
        Ok(S3Client { http })
    }

    /// GET of `[start, end]` (inclusive), or from `start` to the end when `end` is None.
    pub async fn get(
        &self,
        url: &str,
        start: u64,
        end: Option<u64>,
        if_match: Option<&str>,
    ) -> Result<ObjectResponse, S3Error> {
        let range = match end {
            Some(e) => format!("bytes={start}-{e}"),
            None => format!("bytes={start}-"),
        };
        let mut req = self.http.get(url).header("range", range);
        if signs_checksum_mode(url) {
            req = req.header("x-amz-checksum-mode", "ENABLED");
        }
        if let Some(etag) = if_match {
            req = req.header("if-match", format!("\"{etag}\""));
        }
        let resp = req.send().await.map_err(S3Error::network)?;
        let status = resp.status().as_u16();
        match status {
            200 | 206 => {}
            _ => return Err(Self::error(resp, status).await),
        }
        let etag = header(&resp, "etag").map(|e| e.trim_matches('"').to_string());
        let encoding =
            header(&resp, "content-encoding").filter(|e| !e.eq_ignore_ascii_case("identity"));
        let sse = header(&resp, "x-amz-server-side-encryption").or_else(|| {
            header(&resp, "x-amz-server-side-encryption-customer-algorithm").map(|_| "sse-c".into())
        });
        let disposition = header(&resp, "content-disposition");
        let checksum = ObjectChecksum::from_headers(|name| header(&resp, name));
        let content_length = resp.content_length();
        let (body_start, len, size) = if status == 206 {
            partial_span(header(&resp, "content-range").as_deref())?
        } else {
            let len = content_length
                .ok_or_else(|| S3Error::Protocol("response without Content-Length".into()))?;
            (0, len, len)
        };
        if content_length.is_some_and(|cl| cl != len) {
            return Err(S3Error::Protocol(
                "Content-Length disagrees with Content-Range".into(),
            ));
        }
        Ok(ObjectResponse {
            resp,
            start: body_start,
            info: ObjectInfo {
                size,
                etag,
                encoding,
                sse,
                checksum,
            },
            disposition,
        })
    }

    async fn error(resp: reqwest::Response, status: u16) -> S3Error {
        let headers = resp.headers().clone();
        let retry_after =
            header(&resp, "retry-after").and_then(|v| parse_retry_after(&v, SystemTime::now()));
        let range_total = header(&resp, "content-range")
            .as_deref()
            .and_then(content_range)
            .map(|(_, t)| t);
        // Error bodies are small XML documents; cap what is read.
        let body = resp.bytes().await.unwrap_or_default();
        let text = String::from_utf8_lossy(&body[..body.len().min(16 * 1024)]).to_string();
        let code = xml_field(&text, "Code").unwrap_or("").to_string();
        let message = xml_field(&text, "Message").unwrap_or("").to_string();
        match (status, code.as_str()) {
            (407, _) => S3Error::Blocked(Blocked::proxy_auth(&headers)),
            (403, "AccessDenied") if message.to_ascii_lowercase().contains("expired") => {
                S3Error::Expired(message)
            }
            (400 | 403, "ExpiredToken" | "TokenRefreshRequired") => S3Error::Expired(code),
            (403, "SignatureDoesNotMatch") => S3Error::SignatureMismatch,
            (403, _) => S3Error::AccessDenied(if message.is_empty() { code } else { message }),
            (404, _) => S3Error::NoSuchKey,
            (412, _) => S3Error::ObjectChanged,
            (416, _) if range_total == Some(0) => S3Error::Empty,
            (503, _) | (_, "SlowDown") => S3Error::Throttled(
                if code.is_empty() {
                    format!("HTTP {status}")
                } else {
                    code
                },
                retry_after,
            ),
            (500..=599, _) => S3Error::Server(
                status,
                if code.is_empty() {
                    "no details".into()
                } else {
                    code
                },
                retry_after,
            ),
            _ => S3Error::Protocol(format!("HTTP {status} {code}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_etags_only_where_they_are_md5s() {
        let mut i = ObjectInfo {
            size: 1,
            etag: Some("0123456789abcdef0123456789abcdef".into()),
            encoding: None,
            sse: None,
            checksum: None,
        };
        assert!(i.etag_md5().is_some());
        i.sse = Some("AES256".into());
        assert!(i.etag_md5().is_some());
        i.sse = Some("aws:kms".into());
        assert!(i.etag_md5().is_none());
        i.sse = None;
        i.etag = Some("0123456789abcdef0123456789abcdef-3".into());
        assert!(i.etag_md5().is_none());
    }

    #[test]
    fn checksum_mode_is_sent_where_the_url_signs_it() {
        let base =
            "https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-SignedHeaders=";
        assert!(signs_checksum_mode(&format!(
            "{base}host%3Bx-amz-checksum-mode&X-Amz-Signature=ab"
        )));
        assert!(signs_checksum_mode(&format!(
            "{base}host;X-Amz-Checksum-Mode"
        )));
        assert!(!signs_checksum_mode(&format!(
            "{base}host&X-Amz-Signature=ab"
        )));
        assert!(!signs_checksum_mode("https://b/k?x-amz-checksum-mode=1"));
    }

    #[test]
    fn content_ranges() {
        assert_eq!(content_range("bytes 0-9/100"), Some((Some((0, 9)), 100)));
        assert_eq!(content_range("bytes */0"), Some((None, 0)));
        assert_eq!(content_range("items 0-9/100"), None);
    }

    #[test]
    fn malformed_content_ranges_are_retryable_errors_not_panics() {
        assert_eq!(
            partial_span(Some("bytes 10-19/100")).unwrap(),
            (10, 10, 100)
        );
        for bad in [
            Some("bytes 9-0/100"),
            Some("bytes 0-100/100"),
            Some("bytes */100"),
            Some("bytes 18446744073709551615-0/1"),
            Some("nonsense"),
            None,
        ] {
            let e = partial_span(bad).unwrap_err();
            assert_eq!(e.retry(), crate::error::Retry::Later, "{bad:?}");
        }
    }
}
