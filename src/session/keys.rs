//! Where a session's secrets come from, the same for the CLI and the app: the keychain entry
//! of an org on a TDP host, and that of a proxy given as `USER@HOST`. What is read stays in
//! a [`Token`], which never prints.

use crate::credentials::{self, KeychainError, DEFAULT_TIMEOUT};
use crate::tdp::client::{api_host, normalise_base_url, Token};
use crate::tdp::error::TdpError;

/// The keychain account of `org` on the TDP at `base_url`.
pub fn token_account(base_url: &str, org: &str) -> Result<String, TdpError> {
    let base = normalise_base_url(base_url)?;
    if org.trim().is_empty() {
        return Err(TdpError::MissingOrg);
    }
    Ok(credentials::account(org, &api_host(&base)))
}

/// The keychain account of a proxy's password: only a proxy given with a user has one.
pub fn proxy_account(proxy: Option<&str>) -> Option<String> {
    proxy
        .filter(|p| p.contains('@'))
        .map(credentials::proxy_account)
}

/// What the keychain keeps for `account`, if anything. Blocks while a locked keychain
/// prompts (up to [`DEFAULT_TIMEOUT`]): call it off an async runtime's threads.
pub fn saved(account: &str) -> Result<Option<Token>, KeychainError> {
    Ok(credentials::load(account, DEFAULT_TIMEOUT)?.map(Token::new))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_needs_a_usable_base_url_and_an_org() {
        let a = token_account("https://api.tetrascience.com/", " lab ").unwrap();
        assert_eq!(
            a,
            token_account("https://api.tetrascience.com", "lab").unwrap()
        );
        assert!(matches!(
            token_account("https://api.tetrascience.com", " "),
            Err(TdpError::MissingOrg)
        ));
        assert!(token_account("not a url", "lab").is_err());
        assert_eq!(proxy_account(Some("http://proxy:3128")), None);
        assert!(proxy_account(Some("http://ana@proxy:3128")).is_some());
        assert_eq!(proxy_account(None), None);
    }
}
