//! The auth token in the OS keychain (Secret Service, macOS Keychain, Windows Credential
//! Manager), shared by the CLI and the desktop app: service `tdp-bulk-downloader`, account
//! `<org>@<api host>`. Keychain calls block and a locked keychain may wait for a password
//! prompt, so each runs on its own thread with a timeout.

use std::sync::mpsc;
use std::time::Duration;

pub const SERVICE: &str = "tdp-bulk-downloader";
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, thiserror::Error)]
pub enum KeychainError {
    #[error("the OS keychain is not available ({0}); type the token for this session instead")]
    Unavailable(String),
    #[error("the OS keychain is locked; unlock it and try again")]
    Locked,
    #[error(
        "the OS keychain did not answer within {0:?} (it may be waiting for a password prompt)"
    )]
    TimedOut(Duration),
    #[error("the OS keychain refused the request: {0}")]
    Failed(String),
}

/// The account name for a base URL's host and an org.
pub fn account(org: &str, api_host: &str) -> String {
    format!("{}@{}", org.trim(), api_host)
}

/// The account under which a proxy's password is kept: the proxy address as given (with its
/// user name, never a password).
pub fn proxy_account(proxy: &str) -> String {
    format!("proxy {}", proxy.trim())
}

fn classify(e: keyring::Error) -> KeychainError {
    match e {
        keyring::Error::PlatformFailure(inner) => KeychainError::Unavailable(inner.to_string()),
        keyring::Error::NoStorageAccess(inner) => {
            let text = inner.to_string();
            if text.to_ascii_lowercase().contains("locked") || text.contains("no result found") {
                KeychainError::Locked
            } else {
                KeychainError::Unavailable(text)
            }
        }
        other => {
            let text = other.to_string();
            if text.to_ascii_lowercase().contains("locked") {
                KeychainError::Locked
            } else {
                KeychainError::Failed(text)
            }
        }
    }
}

fn with_timeout<T: Send + 'static>(
    timeout: Duration,
    f: impl FnOnce() -> Result<T, KeychainError> + Send + 'static,
) -> Result<T, KeychainError> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(timeout)
        .map_err(|_| KeychainError::TimedOut(timeout))?
}

fn entry(account: &str) -> Result<keyring::Entry, KeychainError> {
    keyring::Entry::new(SERVICE, account).map_err(classify)
}

/// The saved token, or None when there is none.
pub fn load(account: &str, timeout: Duration) -> Result<Option<String>, KeychainError> {
    let account = account.to_string();
    with_timeout(timeout, move || match entry(&account)?.get_password() {
        Ok(t) => Ok(Some(t)),
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(e) => Err(classify(e)),
    })
}

pub fn save(account: &str, token: &str, timeout: Duration) -> Result<(), KeychainError> {
    let (account, token) = (account.to_string(), token.to_string());
    with_timeout(timeout, move || {
        let e = entry(&account)?;
        e.set_password(&token).map_err(classify)?;
        // keyring names the account "username"; an "account" attribute as well lets people
        // and scripts find it the usual way (`secret-tool lookup service ... account ...`).
        let attrs = std::collections::HashMap::from([("account", account.as_str())]);
        if let Err(err) = e.update_attributes(&attrs) {
            tracing::debug!("could not add the account attribute: {err}");
        }
        Ok(())
    })
}

/// Removes the saved token; removing one that is not there is fine.
pub fn forget(account: &str, timeout: Duration) -> Result<(), KeychainError> {
    let account = account.to_string();
    with_timeout(timeout, move || {
        match entry(&account)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(classify(e)),
        }
    })
}
