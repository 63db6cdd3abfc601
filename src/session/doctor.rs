//! The connection doctor: each layer between this computer and TDP (and, given a file ID, its
//! storage) checked in order, one line each, with the fix in plain words. What it says is
//! safe to paste into a support ticket: never the token, never a link's query (signature).

use crate::net::connect::{Connector, NetworkSettings};
use crate::secret::Token;
use crate::storage::s3::S3Client;
use crate::tdp::client::{normalise_base_url, TdpClient};
use crate::tdp::error::TdpError;
use std::time::{Duration, SystemTime};

const TIMEOUT: Duration = Duration::from_secs(5);
/// A clock further off than this is worth fixing (certificates, tokens and links use it).
const MAX_SKEW: Duration = Duration::from_secs(300);

/// One check: what was found, and when it failed, what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub ok: bool,
    pub what: String,
    pub fix: Option<String>,
}

impl Check {
    fn pass(what: impl Into<String>) -> Check {
        Check {
            ok: true,
            what: scrub(&what.into()),
            fix: None,
        }
    }

    fn fail(what: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            ok: false,
            what: scrub(&what.into()),
            fix: Some(scrub(&fix.into())),
        }
    }
}

/// Runs the checks in order; a layer that fails ends the list (the ones above it would only
/// fail the same way).
pub async fn diagnose(
    base_url: &str,
    org: &str,
    token: Token,
    file_id: Option<&str>,
    network: &NetworkSettings,
) -> Vec<Check> {
    let mut out = Vec::new();
    let base = match normalise_base_url(base_url) {
        Ok(b) => b,
        Err(e) => {
            out.push(Check::fail(
                format!("base URL: {e}"),
                "give the address as https://api.tetrascience.com (with or without /v1)",
            ));
            return out;
        }
    };
    let host = base.host_str().unwrap_or("").to_string();
    let port = base.port_or_known_default().unwrap_or(443);

    let proxy = network
        .proxy
        .clone()
        .filter(|p| !p.trim().is_empty())
        .or_else(env_proxy);
    match &proxy {
        Some(p) => {
            out.push(Check::pass(format!("proxy: {}", without_userinfo(p))));
            out.push(Check::pass(format!(
                "name resolution of {host}: skipped (the proxy resolves names)"
            )));
        }
        None => {
            out.push(Check::pass("proxy: none (direct connection)"));
            let addrs =
                tokio::time::timeout(TIMEOUT, tokio::net::lookup_host((host.as_str(), port))).await;
            let addr = match addrs {
                Ok(Ok(mut a)) => a.next(),
                Ok(Err(_)) | Err(_) => None,
            };
            let Some(addr) = addr else {
                out.push(Check::fail(
                    format!("name resolution: {host} is not known to this computer's DNS"),
                    "check the base URL for typos; on a company network, connect the VPN or ask IT whether this host can be reached",
                ));
                return out;
            };
            out.push(Check::pass(format!(
                "name resolution: {host} is {}",
                addr.ip()
            )));
            match tokio::time::timeout(TIMEOUT, tokio::net::TcpStream::connect(addr)).await {
                Ok(Ok(_)) => out.push(Check::pass(format!("connection to {addr}: open"))),
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    out.push(Check::fail(
                        format!("connection to {addr}: refused"),
                        "nothing answers on that port: check the port in the base URL, or whether a firewall blocks it",
                    ));
                    return out;
                }
                Ok(Err(e)) => {
                    out.push(Check::fail(
                        format!("connection to {addr}: {e}"),
                        "check the network connection, the VPN, or whether a firewall blocks it",
                    ));
                    return out;
                }
                Err(_) => {
                    out.push(Check::fail(
                        format!("connection to {addr}: no answer within {} s", TIMEOUT.as_secs()),
                        "a firewall may drop the traffic; on a company network a proxy may be needed (--proxy)",
                    ));
                    return out;
                }
            }
        }
    }

    let connector = match Connector::new(network) {
        Ok(c) => c,
        Err(e) => {
            out.push(Check::fail(
                format!("network settings: {e}"),
                "fix the CA file or proxy address given",
            ));
            return out;
        }
    };
    // HTTPS (or plain HTTP on this computer) and the server's clock, without the token.
    let plain = connector.builder().timeout(TIMEOUT * 2).build();
    let probe = match plain {
        Ok(http) => http.get(base.clone()).send().await,
        Err(e) => {
            out.push(Check::fail(
                format!("HTTP client: {e}"),
                "report this as a bug",
            ));
            return out;
        }
    };
    let resp = match probe {
        Ok(r) => r,
        Err(e) => {
            let err = TdpError::transport(e, &host);
            out.push(Check::fail(format!("TDP ({host}): {err}"), fix_for(&err)));
            return out;
        }
    };
    let secure = if base.scheme() == "https" {
        "a trusted HTTPS certificate"
    } else {
        "plain HTTP (this computer only)"
    };
    out.push(Check::pass(format!("TDP ({host}) answers, with {secure}")));
    let server_date = resp
        .headers()
        .get(reqwest::header::DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok());
    if let Some(date) = server_date {
        let now = SystemTime::now();
        let (skew, dir) = match date.duration_since(now) {
            Ok(d) => (d, "behind"),
            Err(e) => (e.duration(), "ahead of"),
        };
        if skew > MAX_SKEW {
            out.push(Check::fail(
                format!("clock: this computer's clock is {} min {dir} TDP's", (skew.as_secs() + 30) / 60),
                "set the clock to the right time (turn on automatic time); certificates, tokens and download links depend on it",
            ));
        } else {
            out.push(Check::pass(format!(
                "clock: within {} s of TDP's",
                skew.as_secs().max(1)
            )));
        }
    }

    match token.lifetime_text(SystemTime::now()) {
        Some(t) if token.expires_at().is_some_and(|e| e <= SystemTime::now()) => {
            out.push(Check::fail(
                format!("token: it {t}"),
                "get a new token in TDP and save it again",
            ))
        }
        Some(t) => out.push(Check::pass(format!("token: it {t}"))),
        None => out.push(Check::pass("token: its expiry is not known (not a JWT)")),
    }
    let client = match TdpClient::new(base.as_str(), org, token, &connector, TIMEOUT, TIMEOUT * 2) {
        Ok(c) => c,
        Err(e) => {
            out.push(Check::fail(format!("TDP client: {e}"), fix_for(&e)));
            return out;
        }
    };
    // A file that cannot exist: "not found" means the token and the org work.
    let probe_id = uuid::Uuid::new_v4().to_string();
    match client.presigned_url(&probe_id).await {
        Ok(_) | Err(TdpError::NotFound(_)) => out.push(Check::pass(format!(
            "TDP accepts the token for org {}",
            org.trim()
        ))),
        Err(TdpError::Unauthorized(m)) => {
            let e = TdpError::Unauthorized(m.clone());
            out.push(Check::fail(
                format!("TDP rejected the token ({m})"),
                fix_for(&e),
            ));
            return out;
        }
        Err(e) => {
            out.push(Check::fail(format!("TDP: {e}"), fix_for(&e)));
            return out;
        }
    }

    let Some(id) = file_id else { return out };
    let link = match client.presigned_url(id).await {
        Ok(l) => l,
        Err(e) => {
            out.push(Check::fail(format!("file {id}: {e}"), fix_for(&e)));
            return out;
        }
    };
    let storage = url::Url::parse(&link.url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "storage".into());
    out.push(Check::pass(format!(
        "file {id}: TDP gives a download link on {storage}"
    )));
    let s3 = match S3Client::new(&connector, TIMEOUT, TIMEOUT * 2) {
        Ok(s) => s,
        Err(e) => {
            out.push(Check::fail(
                format!("HTTP client: {e}"),
                "report this as a bug",
            ));
            return out;
        }
    };
    match s3.get(&link.url, 0, Some(0), None).await {
        Ok(r) => out.push(Check::pass(format!(
            "storage ({storage}) sends the file ({} bytes in all; 1 byte fetched)",
            r.info.size
        ))),
        Err(crate::storage::error::S3Error::Empty) => {
            out.push(Check::pass(format!("storage ({storage}) answers (the file is empty)")))
        }
        Err(e) => out.push(Check::fail(
            format!("storage ({storage}): {e}"),
            "storage is a separate host: on a company network ask IT to allow it (and any TLS inspection of it)",
        )),
    }
    out
}

fn fix_for(e: &TdpError) -> String {
    use crate::error::ErrorKind;
    match e.kind() {
        ErrorKind::Auth => "get a new token in TDP (tokens expire) and save it again".into(),
        ErrorKind::Forbidden => "check the org slug, and that your account may read these files".into(),
        ErrorKind::NotFound => "check the file ID (copy it again from TDP)".into(),
        ErrorKind::Tls => "give your company's inspection CA with --ca-cert, or ask IT to install it in the computer's store".into(),
        ErrorKind::Proxy => "check the proxy address and its user and password (TDP_PROXY_PASSWORD)".into(),
        ErrorKind::Config => "check the base URL and the org slug".into(),
        _ => "try again in a minute; if it persists, send these lines to support".into(),
    }
}

fn env_proxy() -> Option<String> {
    ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
}

fn without_userinfo(proxy: &str) -> String {
    match url::Url::parse(proxy) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => "(an address that cannot be read)".into(),
    }
}

/// Drops the query of any URL in `text`: a link's signature is a credential.
fn scrub(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (before, after) = rest.split_at(i);
        out.push_str(before);
        let end = after
            .find(|c: char| c.is_whitespace() || c == ')' || c == '"')
            .unwrap_or(after.len());
        let url = &after[..end];
        out.push_str(url.split('?').next().unwrap_or(url));
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_lose_their_signature() {
        assert_eq!(
            scrub("error sending request for url (https://s3.example.com/b/k?X-Amz-Signature=abc&X=1): reset"),
            "error sending request for url (https://s3.example.com/b/k): reset"
        );
        assert_eq!(scrub("no url here"), "no url here");
    }
}
