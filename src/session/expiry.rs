//! Will the token last the job? TDP's tokens expire (after 4 to 24 hours); a job that
//! outlasts its token stops (CLI) or waits for a new one (app). Better said before it starts.

use crate::secret::{span, Token};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// A token that expires sooner than this is worth a warning whatever the job.
pub const SOON: Duration = Duration::from_secs(30 * 60);

/// Files per second of the job that wrote this report, when it downloaded enough to tell
/// (10 files and one second).
pub fn rate_of_report(json: &Path) -> Option<f64> {
    let s = crate::job::report::last_run(json)?;
    (s.downloaded >= 10 && s.seconds >= 1.0).then(|| s.downloaded as f64 / s.seconds)
}

/// What to tell the user before a job of `files` files, with `rate` files per second from
/// the last job when known (asked only when it matters: it may read a report); None when
/// the token lasts, or does not say when it expires.
pub fn warning(
    token: &Token,
    files: usize,
    rate: impl FnOnce() -> Option<f64>,
    now: SystemTime,
) -> Option<String> {
    let exp = token.expires_at()?;
    let when = token.lifetime_text(now)?;
    let left = match exp.duration_since(now) {
        Ok(left) if left >= SOON => left,
        _ => return Some(format!("the auth token {when}")),
    };
    let rate = rate().filter(|r| r.is_finite() && *r > 0.0)?;
    let needs = Duration::from_secs_f64((files as f64 / rate).min(1e9));
    (needs > left).then(|| {
        format!(
            "the auth token {when}, and at the last job's rate ({rate:.1} files/s) these {files} files take about {}",
            span(needs)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    // {"alg":"HS256"} . {"sub":"x","exp":1795725660} . sig
    const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4IiwiZXhwIjoxNzk1NzI1NjYwfQ.c2ln";

    #[test]
    fn warns_of_a_token_that_expires_soon_or_before_the_job_would_end() {
        let jwt = Token::new(JWT);
        let exp = UNIX_EPOCH + Duration::from_secs(1_795_725_660);
        let hours = |h: u64| exp - Duration::from_secs(h * 3600);
        assert_eq!(
            warning(&jwt, 5, || None, exp - Duration::from_secs(600)).as_deref(),
            Some("the auth token expires in 10 min")
        );
        assert_eq!(
            warning(&jwt, 5, || None, exp + Duration::from_secs(60)).as_deref(),
            Some("the auth token expired 1 min ago")
        );
        // Two hours left: 36,000 files at 10/s take one hour, 100,000 take nearly three.
        assert_eq!(warning(&jwt, 36_000, || Some(10.0), hours(2)), None);
        assert_eq!(
            warning(&jwt, 100_000, || Some(10.0), hours(2)).as_deref(),
            Some("the auth token expires in 2 h 0 min, and at the last job's rate (10.0 files/s) these 100000 files take about 2 h 46 min")
        );
        // No rate known, or no expiry known: nothing to say.
        assert_eq!(warning(&jwt, 100_000, || None, hours(2)), None);
        assert_eq!(
            warning(&Token::new("plain-token"), 100_000, || Some(0.1), hours(2)),
            None
        );
    }

    #[test]
    fn the_rate_is_read_from_a_report_that_downloaded_enough() {
        let dir = tempfile::tempdir().unwrap();
        let report = dir.path().join("r.json");
        let write = |downloaded: usize, seconds: f64| {
            let summary = crate::job::events::Summary {
                downloaded,
                seconds,
                ..Default::default()
            };
            crate::job::report::write(&report, &summary, &mut std::iter::empty()).unwrap();
        };
        write(200, 20.0);
        assert_eq!(rate_of_report(&report), Some(10.0));
        write(3, 20.0);
        assert_eq!(rate_of_report(&report), None);
        assert_eq!(rate_of_report(&dir.path().join("none.json")), None);
    }
}
