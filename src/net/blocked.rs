//! The network is there but something on the way refuses: a certificate this computer does
//! not trust, or a proxy. Shared by TDP's and storage's errors, which name the side.

use crate::error::ErrorKind;
use crate::net::http_error::{classify, Transport};
use crate::net::trust::{Problem, UntrustedCertificate};
use std::fmt;
use std::sync::Arc;

/// A transport error, shared so that errors stay cheap to clone.
pub type HttpError = Arc<reqwest::Error>;

/// Which side a request went to; TLS inspection and proxy allow-lists often treat the TDP API
/// and storage differently, so messages name them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Tdp,
    Storage,
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Service::Tdp => "TDP",
            Service::Storage => "storage",
        })
    }
}

/// The network is there, but something on the way refuses the connection: a certificate this
/// computer does not trust (TLS inspection), or a proxy. Retrying does not help; every file
/// would meet the same, so the job stops and says what to do.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Blocked {
    #[error("{}", untrusted_message(*.service, .cert))]
    Certificate {
        service: Service,
        cert: UntrustedCertificate,
    },
    #[error("could not set up a secure connection to {service} ({host}): {detail}. A proxy or firewall may be in the way: ask IT")]
    Tls {
        service: Service,
        host: String,
        detail: String,
    },
    #[error("{}", proxy_auth_message(.scheme.as_deref()))]
    ProxyAuth { scheme: Option<String> },
    #[error("the proxy refused to connect to {service} ({host}); it may block that site. Ask IT to allow {host}")]
    ProxyRefused { service: Service, host: String },
}

impl Blocked {
    pub(crate) fn from_transport(e: &reqwest::Error, service: Service, host: &str) -> Option<Self> {
        match classify(e) {
            Transport::Untrusted(cert) => Some(Blocked::Certificate { service, cert }),
            Transport::Tls(detail) => Some(Blocked::Tls {
                service,
                host: host.to_string(),
                detail,
            }),
            Transport::ProxyAuth => Some(Blocked::ProxyAuth { scheme: None }),
            Transport::ProxyRefused => Some(Blocked::ProxyRefused {
                service,
                host: host.to_string(),
            }),
            Transport::Network => None,
        }
    }

    /// A plain-HTTP request's 407 answer, with the scheme the proxy asked for.
    pub(crate) fn proxy_auth(headers: &reqwest::header::HeaderMap) -> Self {
        let scheme = headers
            .get_all("proxy-authenticate")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split_whitespace().next())
            .find(|s| !s.eq_ignore_ascii_case("basic"))
            .map(str::to_string);
        Blocked::ProxyAuth { scheme }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            Blocked::Certificate { .. } | Blocked::Tls { .. } => ErrorKind::Tls,
            Blocked::ProxyAuth { .. } | Blocked::ProxyRefused { .. } => ErrorKind::Proxy,
        }
    }
}

fn untrusted_message(service: Service, cert: &UntrustedCertificate) -> String {
    let who = match service {
        Service::Tdp => format!("TDP ({})", cert.host),
        Service::Storage => format!("Storage ({})", cert.host),
    };
    let issuer = cert.issuer.as_deref().unwrap_or("an unnamed issuer");
    match cert.problem {
        Problem::UnknownIssuer => format!(
            "{who} presented a certificate from '{issuer}', which this computer does not trust. \
             If your company inspects TLS, ask IT to install that CA in this computer's \
             certificate store, or give the CA's certificate file with --ca-cert (in the app: Network \
             settings, Extra CA certificate)"
        ),
        Problem::Expired | Problem::NotYetValid => format!(
            "{who} presented a certificate {}, issued by '{issuer}'. Check this computer's date \
             and time; if they are right, ask IT about the certificate",
            cert.problem
        ),
        _ => format!(
            "{who} presented a certificate {}, issued by '{issuer}'. A proxy or firewall may be \
             answering in its place: ask IT",
            cert.problem
        ),
    }
}

fn proxy_auth_message(scheme: Option<&str>) -> String {
    match scheme {
        Some(s) if ["ntlm", "negotiate", "kerberos"].contains(&s.to_ascii_lowercase().as_str()) => {
            format!(
                "the proxy asks for Windows sign-in ({s}), which this app cannot do. Run a local \
                 relay that signs in for you, such as px or cntlm, and give its address as the \
                 proxy (e.g. --proxy http://127.0.0.1:3128)"
            )
        }
        _ => "the proxy asked for a user name and password (407 Proxy Authentication \
              Required) or refused the ones it was given. Give the proxy as \
              http://USER@HOST:PORT and its password in TDP_PROXY_PASSWORD (the app keeps it in \
              the keychain). If the proxy signs in with your Windows account (NTLM, Kerberos), \
              run a local relay that does, such as px or cntlm, and give its address instead"
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{job_wide, Scope};

    #[test]
    fn a_proxy_that_wants_windows_sign_in_is_named() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.append("proxy-authenticate", "Negotiate".parse().unwrap());
        headers.append("proxy-authenticate", "NTLM".parse().unwrap());
        let b = Blocked::proxy_auth(&headers);
        assert_eq!(b.kind(), ErrorKind::Proxy);
        assert_eq!(job_wide(b.kind()), Scope::Job);
        assert!(b.to_string().contains("px or cntlm"), "{b}");
        let mut basic = reqwest::header::HeaderMap::new();
        basic.append(
            "proxy-authenticate",
            "Basic realm=\"corp\"".parse().unwrap(),
        );
        assert!(Blocked::proxy_auth(&basic)
            .to_string()
            .contains("TDP_PROXY_PASSWORD"));
    }
}
