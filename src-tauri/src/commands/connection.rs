//! The network settings of the form, "Check connection", a new token for a waiting job, and
//! the connection doctor.

use super::secrets::{account_for, keychain, proxy_password, token_for};
use super::Result;
use crate::error::CmdError;
use crate::state::AppState;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use tauri::State;
use tdp_engine::credentials::{self, DEFAULT_TIMEOUT};
use tdp_engine::net::connect::NetworkSettings;
use tdp_engine::{ErrorKind, Token};

/// The form's network settings: an extra CA file and an explicit proxy.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NetworkRequest {
    ca_cert: String,
    proxy: String,
}

/// The settings for the engine; the proxy's password comes from the keychain.
pub(crate) async fn network_settings(n: &NetworkRequest) -> Result<NetworkSettings> {
    let proxy = Some(n.proxy.trim().to_string()).filter(|p| !p.is_empty());
    let proxy_password = proxy_password(proxy.as_deref()).await?;
    let ca_cert = n.ca_cert.trim();
    Ok(NetworkSettings {
        ca_certs: if ca_cert.is_empty() {
            Vec::new()
        } else {
            vec![PathBuf::from(ca_cert)]
        },
        proxy,
        proxy_password,
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionCheck {
    message: String,
}

/// Whether the token works for the org, in the words the window shows.
async fn probe(
    base_url: &str,
    org: &str,
    token: Token,
    settings: &NetworkSettings,
) -> Result<ConnectionCheck> {
    let message = tdp_engine::session::probe::check_token(base_url, org, token, settings).await?;
    Ok(ConnectionCheck { message })
}

#[tauri::command]
pub async fn check_connection(
    state: State<'_, AppState>,
    base_url: String,
    org: String,
    network: Option<NetworkRequest>,
) -> Result<ConnectionCheck> {
    let token = token_for(&state, &base_url, &org).await?;
    let settings = network_settings(&network.unwrap_or_default()).await?;
    probe(&base_url, &org, token, &settings).await
}

/// A new token for a job that waits for one: checked with TDP first, kept for the session
/// (and in the keychain when `remember` is set), then the same job goes on with it.
#[tauri::command]
pub async fn renew_token(
    state: State<'_, AppState>,
    job: u64,
    token: String,
    remember: bool,
) -> Result<ConnectionCheck> {
    let Some(running) = state.job(job) else {
        return Err(CmdError::new(
            ErrorKind::Internal,
            "this download has ended",
        ));
    };
    let token = Token::new(token);
    if token.is_empty() {
        return Err(CmdError::new(ErrorKind::Input, "enter the new auth token"));
    }
    token.check()?;
    let checked = probe(
        &running.base_url,
        &running.org,
        token.clone(),
        &running.network,
    )
    .await?;
    let account = account_for(&running.base_url, &running.org)?;
    state.remember_for_session(&account, token.clone());
    if remember {
        let t = token.clone();
        keychain(move || credentials::save(&account, t.expose(), DEFAULT_TIMEOUT)).await?;
    }
    running.control.renew_token(token);
    Ok(checked)
}

/// One line of the connection doctor.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiagnosisLine {
    ok: bool,
    what: String,
    fix: Option<String>,
}

/// The connection doctor, layer by layer; with the first valid ID of the Files box, its
/// storage too (one byte).
#[tauri::command]
pub async fn diagnose_connection(
    state: State<'_, AppState>,
    base_url: String,
    org: String,
    network: Option<NetworkRequest>,
    ids: Option<String>,
) -> Result<Vec<DiagnosisLine>> {
    let token = token_for(&state, &base_url, &org).await?;
    let settings = network_settings(&network.unwrap_or_default()).await?;
    let first_id = ids
        .as_deref()
        .map(tdp_engine::parse_ids)
        .and_then(|p| p.ids().first().cloned());
    let checks = tdp_engine::session::doctor::diagnose(
        &base_url,
        &org,
        token,
        first_id.as_deref(),
        &settings,
    )
    .await;
    Ok(checks
        .into_iter()
        .map(|c| DiagnosisLine {
            ok: c.ok,
            what: c.what,
            fix: c.fix,
        })
        .collect())
}
