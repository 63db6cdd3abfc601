//! The TDP API client: `datalake/retrieve` with the TDP auth headers, answers classified so
//! the scheduler can tell "stop the job" from "fail this file" from "try again".

use crate::link::Link;
use crate::net::blocked::Blocked;
use crate::net::connect::Connector;
use crate::retry::parse_retry_after;
pub use crate::tdp::error::TdpError;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use url::Url;

pub use crate::secret::Token;

impl Token {
    /// Refuses a token that no HTTP header can carry (a line break from a paste, other
    /// control characters) when it is entered, instead of failing every request later.
    pub fn check(&self) -> Result<(), TdpError> {
        let t = self.expose();
        if t.is_empty() {
            return Err(TdpError::MissingToken);
        }
        let header_safe = reqwest::header::HeaderValue::from_str(t).is_ok();
        if !header_safe || t.chars().any(char::is_control) {
            return Err(TdpError::InvalidToken);
        }
        Ok(())
    }
}

fn is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => IpAddr::V4(*ip).is_loopback(),
        url::Host::Ipv6(ip) => IpAddr::V6(*ip).is_loopback(),
    }
}

/// Accepts a base URL as users paste it (`https://api.tetrascience.com`, `.../v1`, `.../v1/`)
/// and returns it without the version, without a trailing slash.
pub fn normalise_base_url(input: &str) -> Result<Url, TdpError> {
    let trimmed = input.trim();
    let with_scheme = if trimmed.contains("://") {
        trimmed.to_string()
    } else {
        format!("https://{trimmed}")
    };
    let mut url =
        Url::parse(&with_scheme).map_err(|_| TdpError::InvalidBaseUrl(input.to_string()))?;
    let host = url
        .host()
        .ok_or_else(|| TdpError::InvalidBaseUrl(input.to_string()))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&host) => {}
        "http" => return Err(TdpError::InsecureBaseUrl(host.to_string())),
        _ => return Err(TdpError::InvalidBaseUrl(input.to_string())),
    }
    let mut path = url.path().trim_end_matches('/').to_string();
    if path.ends_with("/v1") {
        path.truncate(path.len() - 3);
    }
    url.set_path(&path);
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

/// The host the keychain entry is named after (`<org>@<host>`).
pub fn api_host(base: &Url) -> String {
    match base.port() {
        Some(p) => format!("{}:{p}", base.host_str().unwrap_or("")),
        None => base.host_str().unwrap_or("").to_string(),
    }
}

pub struct TdpClient {
    http: reqwest::Client,
    base: Url,
    org: String,
    /// The token and its version: a job waiting for a new token installs it here (see
    /// `renewal`), and every later request carries it.
    token: std::sync::RwLock<(u64, Token)>,
}

#[derive(serde::Deserialize)]
struct RetrieveBody {
    url: Option<String>,
}

#[derive(serde::Deserialize)]
struct ErrorBody {
    message: Option<serde_json::Value>,
}

impl TdpClient {
    pub fn new(
        base_url: &str,
        org: &str,
        token: Token,
        connector: &Connector,
        connect_timeout: Duration,
        read_timeout: Duration,
    ) -> Result<Self, TdpError> {
        let base = normalise_base_url(base_url)?;
        if org.trim().is_empty() {
            return Err(TdpError::MissingOrg);
        }
        let http = connector
            .builder()
            // reqwest keeps custom headers such as ts-auth-token across a cross-host redirect.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(connect_timeout)
            .read_timeout(read_timeout)
            .pool_max_idle_per_host(256)
            .build()
            .map_err(|e| TdpError::Client(Arc::new(e)))?;
        Ok(TdpClient {
            http,
            base,
            org: org.trim().to_string(),
            token: std::sync::RwLock::new((0, token)),
        })
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    fn current_token(&self) -> (u64, Token) {
        self.token.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The version of the token requests carry now: 0 for the one the job started with.
    pub(crate) fn token_version(&self) -> u64 {
        self.token.read().unwrap_or_else(|e| e.into_inner()).0
    }

    /// Carries `token` from now on, unless a newer one is already in place.
    pub(crate) fn install_token(&self, version: u64, token: Token) {
        let mut t = self.token.write().unwrap_or_else(|e| e.into_inner());
        if version > t.0 {
            *t = (version, token);
        }
    }

    /// One `retrieve` call: the pre-signed URL of a file.
    fn endpoint(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        url.set_path(&format!("{}{path}", self.base.path().trim_end_matches('/')));
        url
    }

    pub async fn presigned_url(&self, file_id: &str) -> Result<Link, TdpError> {
        let mut url = self.endpoint("/v1/datalake/retrieve");
        url.query_pairs_mut()
            .append_pair("fileId", file_id)
            .append_pair("getPresigned", "true");
        let (body, server_date) = self.call(self.http.get(url)).await?;
        let parsed: RetrieveBody = serde_json::from_slice(&body)
            .map_err(|_| TdpError::Protocol("retrieve did not answer JSON".into()))?;
        parsed
            .url
            .filter(|u| u.starts_with("http"))
            .map(|u| Link::new(u, server_date, SystemTime::now()))
            .ok_or_else(|| TdpError::Protocol("retrieve answered without a url".into()))
    }

    /// `GET {base}{path}?{query}`, answered with JSON.
    pub(crate) async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(String, String)],
    ) -> Result<T, TdpError> {
        let mut url = self.endpoint(path);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let (body, _) = self.call(self.http.get(url)).await?;
        serde_json::from_slice(&body)
            .map_err(|e| TdpError::Protocol(format!("{path} answered unexpected JSON: {e}")))
    }

    /// `POST {base}{path}` with a JSON body, answered with JSON.
    pub(crate) async fn post_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<T, TdpError> {
        let req = self.http.post(self.endpoint(path)).json(body);
        let (body, _) = self.call(req).await?;
        serde_json::from_slice(&body)
            .map_err(|e| TdpError::Protocol(format!("{path} answered unexpected JSON: {e}")))
    }

    /// Sends a request with the token and the org, and reads TDP's answer: the body of a 200
    /// and the server's clock, or the error TDP meant.
    async fn call(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<(bytes::Bytes, Option<SystemTime>), TdpError> {
        let (_, token) = self.current_token();
        let resp = req
            .header("ts-auth-token", token.expose())
            .header("x-org-slug", &self.org)
            .send()
            .await
            .map_err(|e| TdpError::transport(e, self.base.host_str().unwrap_or("TDP")))?;
        let status = resp.status().as_u16();
        if status == 407 {
            return Err(TdpError::Blocked(Blocked::proxy_auth(resp.headers())));
        }
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let server_date = resp
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok());
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp
            .bytes()
            .await
            .map_err(|e| TdpError::transport(e, self.base.host_str().unwrap_or("TDP")))?;
        if status == 200 {
            return Ok((body, server_date));
        }
        let message = serde_json::from_slice::<ErrorBody>(&body)
            .ok()
            .and_then(|b| b.message)
            .map(|m| match m {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            })
            .unwrap_or_default();
        let detail = if message.is_empty() {
            format!("HTTP {status}")
        } else {
            format!("{status}: {message}")
        };
        Err(match status {
            401 => TdpError::Unauthorized(detail),
            403 => TdpError::Forbidden(detail),
            404 => TdpError::NotFound(detail),
            400 | 422 => TdpError::BadRequest(detail),
            429 => TdpError::Throttled { retry_after },
            500..=599 => TdpError::Server {
                status,
                message,
                retry_after,
            },
            300..=399 => TdpError::Protocol(format!(
                "TDP redirected to {} ({status}); check the base URL",
                location.unwrap_or_default()
            )),
            _ => TdpError::Protocol(detail),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_as_users_paste_them() {
        for input in [
            "https://api.tetrascience.com",
            "https://api.tetrascience.com/",
            "https://api.tetrascience.com/v1",
            " https://api.tetrascience.com/v1/ ",
            "api.tetrascience.com/v1",
        ] {
            assert_eq!(
                normalise_base_url(input).unwrap().as_str(),
                "https://api.tetrascience.com/",
                "{input}"
            );
        }
        assert!(normalise_base_url("http://127.0.0.1:8080/v1").is_ok());
        assert!(normalise_base_url("http://localhost:8080").is_ok());
        assert!(matches!(
            normalise_base_url("http://api.tetrascience.com"),
            Err(TdpError::InsecureBaseUrl(_))
        ));
        assert!(normalise_base_url("ftp://x").is_err());
    }

    #[test]
    fn token_is_never_printed() {
        let t = Token::new("secret-value");
        assert!(!format!("{t:?}").contains("secret"));
    }
}
