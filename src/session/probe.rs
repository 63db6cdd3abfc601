//! Whether a token works for an org: TDP is asked for a file that does not exist, and "not
//! found" means the token and the org were accepted. The app's "Check connection" and its
//! token renewal use it.

use crate::job::error::JobError;
use crate::net::connect::{Connector, NetworkSettings};
use crate::tdp::client::{TdpClient, Token};
use crate::tdp::error::TdpError;
use std::time::{Duration, SystemTime};

/// The line to show when the token works; the job's own error when it does not.
pub async fn check_token(
    base_url: &str,
    org: &str,
    token: Token,
    settings: &NetworkSettings,
) -> Result<String, JobError> {
    let lifetime = token
        .lifetime_text(SystemTime::now())
        .map(|t| format!(" (the token {t})"))
        .unwrap_or_default();
    let connector = Connector::new(settings)?;
    let client = TdpClient::new(
        base_url,
        org,
        token,
        &connector,
        Duration::from_secs(10),
        Duration::from_secs(20),
    )?;
    let probe = uuid::Uuid::new_v4().to_string();
    match client.presigned_url(&probe).await {
        Err(TdpError::NotFound(_)) | Ok(_) => Ok(format!(
            "Connected: the token works for org {}{lifetime}",
            org.trim()
        )),
        // TDP answers 403 for a token of another org: the job's own words say so.
        Err(TdpError::Forbidden(m)) => Err(JobError::Forbidden(m)),
        Err(e) => Err(e.into()),
    }
}
