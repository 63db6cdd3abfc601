//! Readable text for HTTP client errors: reqwest's own message plus its causes, and never the
//! request URL (a pre-signed URL carries credentials).

pub fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out waiting for data".to_string()
    } else if e.is_connect() {
        "could not connect".to_string()
    } else if e.is_body() || e.is_decode() {
        "the connection broke while reading the response".to_string()
    } else {
        "request failed".to_string()
    };
    let mut source = std::error::Error::source(e);
    let mut last = String::new();
    while let Some(s) = source {
        let msg = s.to_string();
        if !msg.is_empty() && msg != last {
            text.push_str(": ");
            text.push_str(&msg);
            last = msg;
        }
        source = s.source();
    }
    text
}

use crate::net::trust::UntrustedCertificate;
use rustls::{CertificateError, OtherError};
use std::error::Error;

/// What a transport error means for the job, beyond "the network failed".
pub(crate) enum Transport {
    /// The server's certificate did not verify: the job stops and says who presented what.
    Untrusted(crate::net::trust::UntrustedCertificate),
    /// Another TLS failure (an alert, no protocol in common).
    Tls(String),
    /// The proxy wants credentials (407), or refused the ones it got.
    ProxyAuth,
    /// The proxy would not open a tunnel to the host (an allow-list, a block page).
    ProxyRefused,
    /// Connection-level: refused, reset, timed out, DNS.
    Network,
}

pub(crate) fn classify(e: &reqwest::Error) -> Transport {
    for cause in causes(e) {
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            return match tls {
                rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(inner))) => {
                    match inner.downcast_ref::<UntrustedCertificate>() {
                        Some(u) => Transport::Untrusted(u.clone()),
                        None => Transport::Tls(tls.to_string()),
                    }
                }
                other => Transport::Tls(other.to_string()),
            };
        }
        // hyper-util's tunnel error type is private: its words are what it exposes.
        let text = cause.to_string();
        if text.contains("tunnel error: proxy authorization required") {
            return Transport::ProxyAuth;
        }
        if text.contains("tunnel error: unsuccessful") {
            return Transport::ProxyRefused;
        }
    }
    Transport::Network
}

/// An error and everything behind it. An io::Error's `source()` skips the error it wraps
/// (and TLS failures arrive as io::Errors inside io::Errors), so look inside those instead.
fn causes<'a>(e: &'a (dyn Error + 'static)) -> Vec<&'a (dyn Error + 'static)> {
    let mut out = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        out.push(err);
        next = match err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn Error + 'static)),
            None => err.source(),
        };
    }
    out
}
