//! The token and the proxy's password: kept for the session or in the OS keychain, never in a
//! file; looked up as the CLI does (`session::keys`).

use super::Result;
use crate::error::CmdError;
use crate::state::AppState;
use serde::Serialize;
use tauri::State;
use tdp_engine::credentials::{self, DEFAULT_TIMEOUT};
use tdp_engine::session::keys;
use tdp_engine::tdp::client::TdpError;
use tdp_engine::{ErrorKind, Token};

pub(crate) fn account_for(base_url: &str, org: &str) -> Result<String> {
    keys::token_account(base_url, org).map_err(|e| match e {
        TdpError::MissingOrg => CmdError::new(ErrorKind::Config, "enter the org slug"),
        e => e.into(),
    })
}

/// Keychain calls block (a locked keychain may wait for a prompt): off the async runtime.
pub(crate) async fn keychain<T: Send + 'static>(
    f: impl FnOnce() -> std::result::Result<T, credentials::KeychainError> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| CmdError::new(ErrorKind::Internal, e.to_string()))?
        .map_err(CmdError::from)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsStatus {
    /// A token is saved in the keychain for this org and host.
    saved: bool,
    /// A token was typed for this session only.
    session: bool,
    keychain_available: bool,
    message: Option<String>,
}

#[tauri::command]
pub async fn credentials_status(
    state: State<'_, AppState>,
    base_url: String,
    org: String,
) -> Result<CredentialsStatus> {
    let account = account_for(&base_url, &org)?;
    let session = state.session_token(&account).is_some();
    let acc = account.clone();
    match keychain(move || credentials::load(&acc, DEFAULT_TIMEOUT)).await {
        Ok(t) => Ok(CredentialsStatus {
            saved: t.is_some(),
            session,
            keychain_available: true,
            message: None,
        }),
        Err(e) => Ok(CredentialsStatus {
            saved: false,
            session,
            keychain_available: false,
            message: Some(e.message),
        }),
    }
}

/// Keeps the token for this session, and in the keychain when `remember` is set.
#[tauri::command]
pub async fn save_token(
    state: State<'_, AppState>,
    base_url: String,
    org: String,
    token: String,
    remember: bool,
) -> Result<()> {
    let account = account_for(&base_url, &org)?;
    let token = Token::new(token);
    if token.is_empty() {
        return Err(CmdError::new(ErrorKind::Input, "enter the auth token"));
    }
    token.check()?;
    state.remember_for_session(&account, token.clone());
    if remember {
        keychain(move || credentials::save(&account, token.expose(), DEFAULT_TIMEOUT)).await?;
    }
    Ok(())
}

#[tauri::command]
pub async fn forget_token(state: State<'_, AppState>, base_url: String, org: String) -> Result<()> {
    let account = account_for(&base_url, &org)?;
    state.forget_session_token(&account);
    keychain(move || credentials::forget(&account, DEFAULT_TIMEOUT)).await
}

/// The token for a job: typed this session, else saved in the keychain.
pub(crate) async fn token_for(state: &AppState, base_url: &str, org: &str) -> Result<Token> {
    let account = account_for(base_url, org)?;
    if let Some(t) = state.session_token(&account) {
        return Ok(t);
    }
    let acc = account.clone();
    match keychain(move || keys::saved(&acc)).await? {
        Some(t) => Ok(t),
        None => Err(CmdError::new(
            ErrorKind::Auth,
            "no auth token: enter one (and tick \"Remember in keychain\" to keep it)",
        )),
    }
}

/// The password of a proxy given as `USER@HOST`, from the keychain.
pub(crate) async fn proxy_password(proxy: Option<&str>) -> Result<Option<Token>> {
    match keys::proxy_account(proxy) {
        Some(account) => keychain(move || keys::saved(&account)).await,
        None => Ok(None),
    }
}

/// Keeps a proxy's password in the keychain (an empty one removes it).
#[tauri::command]
pub async fn save_proxy_password(proxy: String, password: String) -> Result<()> {
    let account = credentials::proxy_account(&proxy);
    if password.is_empty() {
        keychain(move || credentials::forget(&account, DEFAULT_TIMEOUT)).await
    } else {
        keychain(move || credentials::save(&account, &password, DEFAULT_TIMEOUT)).await
    }
}
