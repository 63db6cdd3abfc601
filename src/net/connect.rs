//! How the engine reaches TDP and storage: whom it trusts and which proxy it goes through. One
//! [`Connector`] is built per job and every HTTP client of the job (TDP, storage, the network
//! probe) is built from it, so both services always travel the same way.
//!
//! Proxies: by default the environment's `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY`/`NO_PROXY` and,
//! on Windows and macOS, the system's proxy settings (reqwest's system-proxy). An explicit
//! proxy replaces those; its password never comes from the command line.

use crate::net::trust::{Trust, TrustError};
use crate::secret::Token;
use std::path::PathBuf;
use url::Url;

/// The user's network settings for a job.
#[derive(Debug, Clone, Default)]
pub struct NetworkSettings {
    /// PEM files of CAs to trust besides the bundled roots and the OS store.
    pub ca_certs: Vec<PathBuf>,
    /// An explicit proxy, e.g. `http://proxy.example.com:3128` or `http://user@proxy:3128`.
    pub proxy: Option<String>,
    /// The explicit proxy's password (from `TDP_PROXY_PASSWORD` or the keychain).
    pub proxy_password: Option<Token>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Trust(#[from] TrustError),
    #[error("{0:?} is not a proxy address (expected e.g. http://proxy.example.com:3128)")]
    InvalidProxy(String),
    #[error("the proxy address has a password in it: give the user name only (http://USER@HOST:PORT) and the password in TDP_PROXY_PASSWORD (the app keeps it in the keychain)")]
    PasswordInProxyUrl,
    #[error("{0} is a proxy auto-configuration (PAC) file, which is not supported: run a local relay that reads it, such as px, and give the relay's address as the proxy (e.g. http://127.0.0.1:3128)")]
    PacFile(String),
    #[error("{0}:// proxies are not supported: give an http:// or https:// proxy")]
    UnsupportedProxyScheme(String),
}

/// Trust and proxy, ready to build HTTP clients with.
#[derive(Debug, Clone)]
pub struct Connector {
    trust: Trust,
    proxy: Option<reqwest::Proxy>,
}

impl Connector {
    pub fn new(settings: &NetworkSettings) -> Result<Self, ConnectError> {
        let trust = Trust::new(&settings.ca_certs)?;
        let proxy = match settings.proxy.as_deref().map(str::trim) {
            Some(p) if !p.is_empty() => Some(explicit_proxy(p, settings.proxy_password.as_ref())?),
            _ => None,
        };
        Ok(Connector { trust, proxy })
    }

    /// A client builder that trusts and proxies as the settings say.
    pub fn builder(&self) -> reqwest::ClientBuilder {
        let builder = self.trust.apply(reqwest::Client::builder());
        match &self.proxy {
            // An explicit proxy replaces the environment's and the system's.
            Some(p) => builder.proxy(p.clone()),
            None => builder,
        }
    }
}

fn explicit_proxy(text: &str, password: Option<&Token>) -> Result<reqwest::Proxy, ConnectError> {
    let with_scheme = if text.contains("://") {
        text.to_string()
    } else {
        format!("http://{text}")
    };
    let url = Url::parse(&with_scheme).map_err(|_| ConnectError::InvalidProxy(text.into()))?;
    if url.path().to_ascii_lowercase().ends_with(".pac")
        || url.path().to_ascii_lowercase().ends_with(".dat")
    {
        return Err(ConnectError::PacFile(text.into()));
    }
    match url.scheme() {
        "http" | "https" => {}
        other => return Err(ConnectError::UnsupportedProxyScheme(other.into())),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ConnectError::InvalidProxy(text.into()));
    }
    if url.password().is_some() {
        return Err(ConnectError::PasswordInProxyUrl);
    }
    let user = percent_encoding::percent_decode_str(url.username())
        .decode_utf8_lossy()
        .into_owned();
    let mut bare = url.clone();
    // Credentials go in the header reqwest builds, not in the proxy URL it keeps.
    let _ = bare.set_username("");
    let proxy =
        reqwest::Proxy::all(bare.as_str()).map_err(|_| ConnectError::InvalidProxy(text.into()))?;
    let proxy = proxy.no_proxy(reqwest::NoProxy::from_env());
    Ok(match (user.is_empty(), password) {
        (false, Some(p)) => proxy.basic_auth(&user, p.expose()),
        (false, None) => proxy.basic_auth(&user, ""),
        (true, _) => proxy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(proxy: &str) -> NetworkSettings {
        NetworkSettings {
            proxy: Some(proxy.into()),
            ..Default::default()
        }
    }

    #[test]
    fn proxy_addresses_are_checked() {
        assert!(Connector::new(&settings("http://proxy.example.com:3128")).is_ok());
        assert!(Connector::new(&settings("proxy.example.com:3128")).is_ok());
        assert!(Connector::new(&settings("http://alice@proxy:3128")).is_ok());
        assert!(matches!(
            Connector::new(&settings("http://alice:secret@proxy:3128")),
            Err(ConnectError::PasswordInProxyUrl)
        ));
        assert!(matches!(
            Connector::new(&settings("http://wpad.corp/proxy.pac")),
            Err(ConnectError::PacFile(_))
        ));
        assert!(matches!(
            Connector::new(&settings("socks5://proxy:1080")),
            Err(ConnectError::UnsupportedProxyScheme(_))
        ));
    }

    #[test]
    fn a_ca_file_without_a_certificate_is_refused() {
        let dir = std::env::temp_dir().join(format!("tdp-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("empty.pem");
        std::fs::write(&file, "not a certificate\n").unwrap();
        let s = NetworkSettings {
            ca_certs: vec![file.clone()],
            ..Default::default()
        };
        let err = Connector::new(&s).unwrap_err();
        assert!(
            err.to_string().contains("holds no PEM certificate"),
            "{err}"
        );
        let missing = NetworkSettings {
            ca_certs: vec![dir.join("missing.pem")],
            ..Default::default()
        };
        let err = Connector::new(&missing).unwrap_err();
        assert!(err.to_string().contains("cannot read"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
