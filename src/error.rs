//! One vocabulary for what went wrong, shared by the report, the events, the CLI's exit codes
//! and the app: a small [`ErrorKind`], the errors of TDP and of storage classified side by
//! side, and the errors that stop a whole job. Each message people read is written here once.

use crate::net::http_error::{classify, describe, Transport};
use crate::net::trust::{Problem, UntrustedCertificate};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// What kind of thing went wrong, as a stable word (`auth`, `not-found`, `disk-full`, ...)
/// that the report's `kind` column, the events, the exit codes and the window all use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The settings are wrong or missing: base URL, org slug, no token.
    Config,
    /// TDP rejected the auth token.
    Auth,
    /// Access denied: by TDP for the org or a file, or by storage for a link.
    Forbidden,
    /// TDP does not know the file ID, or storage has no object for it.
    NotFound,
    /// TDP or storage kept throttling.
    Throttled,
    /// TDP or storage kept answering with server errors.
    Server,
    /// Connections failed, broke or stalled.
    Network,
    /// A TLS connection could not be set up (e.g. a certificate that is not trusted).
    Tls,
    /// The proxy wants credentials, refused them, or would not connect to a host.
    Proxy,
    /// The bytes did not verify (length, MD5, gzip), or the object kept changing.
    Integrity,
    /// The disk is full.
    DiskFull,
    /// The destination cannot be written.
    Destination,
    /// An answer that TDP or storage should not give.
    Protocol,
    /// An input line that is not a file ID, or an input that cannot be read.
    Input,
    /// The OS keychain is not available.
    Keychain,
    /// The OS keychain is locked.
    KeychainLocked,
    /// Another job is using the destination.
    Busy,
    /// Not finished because the job was cancelled.
    Cancelled,
    /// A bug: something that should not happen did.
    Internal,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Config => "config",
            ErrorKind::Auth => "auth",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not-found",
            ErrorKind::Throttled => "throttled",
            ErrorKind::Server => "server",
            ErrorKind::Network => "network",
            ErrorKind::Tls => "tls",
            ErrorKind::Proxy => "proxy",
            ErrorKind::Integrity => "integrity",
            ErrorKind::DiskFull => "disk-full",
            ErrorKind::Destination => "destination",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Input => "input",
            ErrorKind::Keychain => "keychain",
            ErrorKind::KeychainLocked => "keychain-locked",
            ErrorKind::Busy => "busy",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Internal => "internal",
        }
    }

    /// The CLI's exit code for an error of this kind that ended `scope` (README table).
    pub fn exit_code(self, scope: Scope) -> u8 {
        match (scope, self) {
            (Scope::File, _) => 1,
            (Scope::Job, ErrorKind::Cancelled) => 130,
            (Scope::Job, _) => 2,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an error ended: one file (the others go on) or the whole job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    File,
    Job,
}

/// Why one file could not be downloaded: its kind and the words for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: ErrorKind,
    pub message: String,
}

impl Failure {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// A transport error, shared so that errors stay cheap to clone.
pub type HttpError = Arc<reqwest::Error>;

/// Whether a failed request is worth another try, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Never: the answer will not change.
    No,
    /// After a back-off (network, server, throttling).
    Later,
    /// At once, with a fresh pre-signed URL.
    FreshUrl,
    /// From the start: the object changed.
    StartOver,
}

/// The TDP API's answers, as the engine acts on them.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TdpError {
    #[error("{0:?} is not a valid TDP base URL (expected e.g. https://api.tetrascience.com)")]
    InvalidBaseUrl(String),
    #[error("refusing to send the auth token over plain http to {0}: use https (plain http is allowed only for 127.0.0.1 or localhost)")]
    InsecureBaseUrl(String),
    #[error("the org slug is empty")]
    MissingOrg,
    #[error("no auth token was given")]
    MissingToken,
    #[error("the auth token contains a line break or other characters a token cannot have: copy it again and paste it on one line")]
    InvalidToken,
    #[error(
        "TDP rejected the auth token ({0}). Check the token (it may have expired): with a fresh one, the same job resumes where it stopped, and files already downloaded are not fetched again"
    )]
    Unauthorized(String),
    #[error("access denied in TDP ({0})")]
    Forbidden(String),
    #[error("not found in TDP ({0})")]
    NotFound(String),
    #[error("TDP refused the request ({0})")]
    BadRequest(String),
    #[error("TDP is throttling requests (429)")]
    Throttled { retry_after: Option<Duration> },
    #[error("TDP server error {status} ({message})")]
    Server {
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("could not reach TDP: {}", describe(.0))]
    Network(#[source] HttpError),
    #[error(transparent)]
    Blocked(Blocked),
    #[error("unexpected answer from TDP: {0}")]
    Protocol(String),
    #[error("could not set up the HTTP client: {}", describe(.0))]
    Client(#[source] HttpError),
}

impl TdpError {
    /// A request that failed in transport, classified.
    pub fn transport(e: reqwest::Error, host: &str) -> Self {
        match Blocked::from_transport(&e, Service::Tdp, host) {
            Some(b) => TdpError::Blocked(b),
            None => TdpError::Network(Arc::new(e)),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            TdpError::InvalidBaseUrl(_)
            | TdpError::InsecureBaseUrl(_)
            | TdpError::MissingOrg
            | TdpError::MissingToken
            | TdpError::InvalidToken => ErrorKind::Config,
            TdpError::Unauthorized(_) => ErrorKind::Auth,
            TdpError::Forbidden(_) => ErrorKind::Forbidden,
            TdpError::NotFound(_) => ErrorKind::NotFound,
            TdpError::Throttled { .. } => ErrorKind::Throttled,
            TdpError::Server { .. } => ErrorKind::Server,
            TdpError::Network(_) => ErrorKind::Network,
            TdpError::Blocked(b) => b.kind(),
            TdpError::BadRequest(_) | TdpError::Protocol(_) => ErrorKind::Protocol,
            TdpError::Client(_) => ErrorKind::Internal,
        }
    }

    /// Whether every file would get the same answer, so that the job stops with it.
    pub fn scope(&self) -> Scope {
        job_wide(self.kind())
    }

    pub fn retry(&self) -> Retry {
        match self {
            TdpError::Throttled { .. } | TdpError::Server { .. } => Retry::Later,
            TdpError::Network(_) => Retry::Later,
            _ => Retry::No,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            TdpError::Throttled { retry_after } | TdpError::Server { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }
}

/// Storage's (S3's) answers to a pre-signed GET, as the engine acts on them.
#[derive(Debug, Clone, thiserror::Error)]
pub enum S3Error {
    #[error("the download link expired ({0})")]
    Expired(String),
    #[error("storage refused the download link (signature does not match)")]
    SignatureMismatch,
    #[error("storage denied access ({0})")]
    AccessDenied(String),
    #[error("the file's object is missing from storage")]
    NoSuchKey,
    #[error("the file changed in storage while it was being downloaded")]
    ObjectChanged,
    #[error("the object is empty")]
    Empty,
    #[error("storage is throttling requests ({0})")]
    Throttled(String, Option<Duration>),
    #[error("storage error {0} ({1})")]
    Server(u16, String, Option<Duration>),
    /// A request that failed in transport; never carries the URL (it holds a signature).
    #[error("{}", describe(.0))]
    Network(#[source] HttpError),
    #[error(transparent)]
    Blocked(Blocked),
    /// The body ended before its length.
    #[error("the connection closed after {got} of {total} bytes")]
    Truncated { got: u64, total: u64 },
    #[error("unexpected answer from storage: {0}")]
    Protocol(String),
    /// One part of a composite-checksum object did not match the checksum S3 sent for it.
    #[error("part {part} of {parts} did not match S3's {algorithm} checksum of it")]
    PartMismatch {
        part: u64,
        parts: u64,
        algorithm: &'static str,
    },
}

impl S3Error {
    /// A transport error, with the pre-signed URL taken out.
    pub fn network(e: reqwest::Error) -> Self {
        let host = e
            .url()
            .and_then(|u| u.host_str())
            .unwrap_or("storage")
            .to_string();
        match Blocked::from_transport(&e, Service::Storage, &host) {
            Some(b) => S3Error::Blocked(b),
            None => S3Error::Network(Arc::new(e.without_url())),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            S3Error::Expired(_) | S3Error::SignatureMismatch | S3Error::AccessDenied(_) => {
                ErrorKind::Forbidden
            }
            S3Error::NoSuchKey => ErrorKind::NotFound,
            S3Error::ObjectChanged | S3Error::Empty => ErrorKind::Integrity,
            S3Error::Throttled(..) => ErrorKind::Throttled,
            S3Error::Server(..) => ErrorKind::Server,
            S3Error::Network(_) => ErrorKind::Network,
            S3Error::Blocked(b) => b.kind(),
            S3Error::Truncated { .. } => ErrorKind::Network,
            S3Error::Protocol(_) => ErrorKind::Protocol,
            S3Error::PartMismatch { .. } => ErrorKind::Integrity,
        }
    }

    /// Whether every file would get the same answer, so that the job stops with it.
    pub fn scope(&self) -> Scope {
        job_wide(self.kind())
    }

    pub fn retry(&self) -> Retry {
        match self {
            // A link that stopped working is replaced; credentials behind it may expire
            // before the URL says, so a plain 403 is treated the same.
            S3Error::Expired(_) | S3Error::SignatureMismatch | S3Error::AccessDenied(_) => {
                Retry::FreshUrl
            }
            S3Error::NoSuchKey | S3Error::Blocked(_) => Retry::No,
            S3Error::ObjectChanged | S3Error::Empty => Retry::StartOver,
            S3Error::Throttled(..)
            | S3Error::Server(..)
            | S3Error::Network(_)
            | S3Error::Truncated { .. }
            | S3Error::Protocol(_)
            // Damage in transit: that part alone is fetched again.
            | S3Error::PartMismatch { .. } => Retry::Later,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            S3Error::Throttled(_, ra) | S3Error::Server(_, _, ra) => *ra,
            _ => None,
        }
    }
}

/// The kinds that no file can get past: the settings, the token, TLS, the proxy.
fn job_wide(kind: ErrorKind) -> Scope {
    match kind {
        ErrorKind::Config | ErrorKind::Auth | ErrorKind::Tls | ErrorKind::Proxy => Scope::Job,
        _ => Scope::File,
    }
}

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

/// Why a folder cannot be written, in words a user can act on (the OS's own words after).
fn why_unwritable(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    if is_cloud_provider_off(e) {
        return format!(
            "it is in a OneDrive (or other cloud-synced) folder and its sync app is not running. \
             Start OneDrive and wait until it is signed in, or choose a folder outside it ({e})"
        );
    }
    let why = match e.kind() {
        K::PermissionDenied => "you do not have permission to write there",
        K::ReadOnlyFilesystem => "it is on a read-only disk or share",
        K::NotFound => "it does not exist and could not be made (is the drive or share connected?)",
        K::NotADirectory => "part of the path is a file, not a folder",
        K::StorageFull | K::QuotaExceeded => "there is no space left",
        _ => return e.to_string(),
    };
    format!("{why} ({e})")
}

/// Windows' ERROR_CLOUD_FILE_PROVIDER_NOT_RUNNING (HRESULT 0x8007016A): a cloud-synced
/// folder (OneDrive's Files On-Demand) whose client is not running takes no files.
pub fn is_cloud_provider_off(e: &std::io::Error) -> bool {
    cfg!(windows) && e.raw_os_error() == Some(362)
}

/// Why a whole job could not start or had to stop.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Tdp(#[from] TdpError),
    #[error(transparent)]
    Storage(#[from] S3Error),
    #[error(
        "TDP denied access ({0}). Check the org slug and that your account may read these files"
    )]
    Forbidden(String),
    #[error("the disk is full at {0}. Free some space and run the same job again: it resumes where it stopped")]
    DiskFull(PathBuf),
    #[error(
        "cannot write to {path}: {}. Choose a writable folder",
        why_unwritable(source)
    )]
    Destination {
        path: PathBuf,
        #[source]
        source: Arc<std::io::Error>,
    },
    #[error("the files found need {} more and {folder} has {} free. Free some space, choose another folder, or use --no-space-check to start anyway", crate::size::human(*.needed), crate::size::human(*.free))]
    NoSpace {
        folder: PathBuf,
        needed: u64,
        free: u64,
    },
    #[error(transparent)]
    Search(#[from] SearchError),
    #[error("{} keeps the sync of another search ({theirs}): one folder holds one search's files. Choose another folder, or delete its .tdp-download folder to start this one there", folder.display())]
    OtherSearch { folder: PathBuf, theirs: String },
    #[error("the network has been unreachable for {} s (neither TDP nor storage answered). Run the same job again when it is back: it resumes where it stopped", .0.as_secs())]
    NetworkLost(Duration),
    /// Another job holds the destination's state folder.
    #[error("{0}")]
    Busy(String),
    /// The state folder was written by a newer version.
    #[error("{0}")]
    NewerFormat(String),
    /// The network settings cannot be used: a CA file, a proxy address.
    #[error(transparent)]
    Connect(#[from] crate::net::connect::ConnectError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl JobError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            JobError::Tdp(e) => e.kind(),
            JobError::Storage(e) => e.kind(),
            JobError::Forbidden(_) => ErrorKind::Forbidden,
            JobError::DiskFull(_) | JobError::NoSpace { .. } => ErrorKind::DiskFull,
            JobError::Search(e) => e.kind(),
            JobError::OtherSearch { .. } => ErrorKind::Busy,
            JobError::Destination { .. } => ErrorKind::Destination,
            JobError::Busy(_) => ErrorKind::Busy,
            JobError::NetworkLost(_) => ErrorKind::Network,
            JobError::Connect(_) | JobError::NewerFormat(_) => ErrorKind::Config,
            JobError::Internal(_) => ErrorKind::Internal,
        }
    }
}

/// A search that cannot be run as given, or that failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SearchError {
    #[error("{name:?} is not a fileinfo search parameter{hint}. Known: {known}, metadata.<key>")]
    UnknownParameter {
        name: String,
        hint: String,
        known: String,
    },
    #[error("{0:?} is set by the tool itself while paging: leave it out of the search")]
    PagingParameter(String),
    #[error("the search parameter {0:?} has no value")]
    EmptyValue(String),
    #[error("the EQL search is not usable: {0}")]
    Eql(String),
    #[error("more than {window} files were created at {at}: the fileinfo search cannot page past them (its result window). Narrow the search, or give it as an EQL search (--eql), which pages by file ID")]
    TooManyAtOnce { at: String, window: usize },
    #[error("the search failed: {0}")]
    Tdp(#[from] TdpError),
}

impl SearchError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            SearchError::Tdp(e) => e.kind(),
            SearchError::TooManyAtOnce { .. } => ErrorKind::Protocol,
            _ => ErrorKind::Input,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_stable_words() {
        for (k, w) in [
            (ErrorKind::Auth, "auth"),
            (ErrorKind::NotFound, "not-found"),
            (ErrorKind::DiskFull, "disk-full"),
            (ErrorKind::KeychainLocked, "keychain-locked"),
        ] {
            assert_eq!(k.as_str(), w);
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{w}\""));
        }
    }

    #[cfg(windows)]
    #[test]
    fn a_onedrive_folder_whose_client_is_off_says_to_start_it() {
        let e = JobError::Destination {
            path: PathBuf::from(r"C:\Users\ana\OneDrive - Lab\plates"),
            source: Arc::new(std::io::Error::from_raw_os_error(362)),
        };
        let text = e.to_string();
        assert!(text.contains("Start OneDrive"), "{text}");
        assert!(text.contains("choose a folder outside it"), "{text}");
        assert_eq!(e.kind(), ErrorKind::Destination);
    }

    #[test]
    fn a_proxy_that_wants_windows_sign_in_is_named() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.append("proxy-authenticate", "Negotiate".parse().unwrap());
        headers.append("proxy-authenticate", "NTLM".parse().unwrap());
        let b = Blocked::proxy_auth(&headers);
        assert_eq!(b.kind(), ErrorKind::Proxy);
        assert_eq!(TdpError::Blocked(b.clone()).scope(), Scope::Job);
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

    #[test]
    fn exit_codes_follow_the_scope() {
        assert_eq!(ErrorKind::NotFound.exit_code(Scope::File), 1);
        assert_eq!(ErrorKind::Auth.exit_code(Scope::Job), 2);
        assert_eq!(ErrorKind::Cancelled.exit_code(Scope::Job), 130);
    }
}
