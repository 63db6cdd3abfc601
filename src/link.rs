//! A pre-signed link and how long it works. Judged on the wall clock, which goes on while a
//! laptop sleeps (the monotonic clock does not), and on the link's own signature time
//! (`X-Amz-Date` + `X-Amz-Expires`, or SigV2's `Expires`), corrected for the difference
//! between this computer's clock and the server's `Date`: a link fetched before a sleep, or
//! signed by a server whose clock is off, is fetched again before use instead of spending a 403.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Time for a request to reach storage before its link runs out (less for links that live
/// only seconds).
const MARGIN: Duration = Duration::from_secs(15);

#[derive(Debug, Clone)]
pub struct Link {
    pub url: String,
    fetched: SystemTime,
    /// When it stops working, on this computer's clock.
    expires: Option<SystemTime>,
    margin: Duration,
}

impl Link {
    /// `server_date` is the `Date` of the answer that carried the link, received at `now`.
    pub fn new(url: String, server_date: Option<SystemTime>, now: SystemTime) -> Link {
        let signed = signed_until(&url);
        let margin = signed
            .and_then(|(from, until)| until.duration_since(from?).ok())
            .map_or(MARGIN, |lifetime| MARGIN.min(lifetime / 4));
        let expires = signed.map(|(_, until)| {
            // until (server clock) - (server_date - now) = until on this clock.
            match server_date {
                Some(date) => match date.duration_since(now) {
                    Ok(ahead) => until.checked_sub(ahead).unwrap_or(UNIX_EPOCH),
                    Err(behind) => until + behind.duration(),
                },
                None => until,
            }
        });
        Link {
            url,
            fetched: now,
            expires,
            margin,
        }
    }

    /// Whether to use it at `now`, given the most age the job allows any link.
    pub fn usable(&self, now: SystemTime, max_age: Duration) -> bool {
        // A clock set back counts as no time passed.
        let age = now.duration_since(self.fetched).unwrap_or_default();
        age < max_age && self.expires.is_none_or(|e| now + self.margin < e)
    }
}

/// When the link was signed (if it says) and when its signature runs out, on the signer's
/// clock.
fn signed_until(url: &str) -> Option<(Option<SystemTime>, SystemTime)> {
    let parsed = url::Url::parse(url).ok()?;
    let (mut date, mut lifetime, mut v2_expires) = (None, None, None);
    for (k, v) in parsed.query_pairs() {
        match k.as_ref() {
            "X-Amz-Date" => date = parse_amz_date(&v),
            "X-Amz-Expires" => lifetime = v.parse::<u64>().ok(),
            "Expires" => v2_expires = v.parse::<u64>().ok(),
            _ => {}
        }
    }
    match (date, lifetime) {
        (Some(d), Some(l)) => Some((Some(d), d + Duration::from_secs(l))),
        _ => v2_expires.map(|e| (None, UNIX_EPOCH + Duration::from_secs(e))),
    }
}

/// `20261126T204100Z` (ISO 8601 basic, UTC).
fn parse_amz_date(v: &str) -> Option<SystemTime> {
    let b = v.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| v.get(r)?.parse::<u64>().ok();
    let (y, m, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hh, mm, ss) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let days = days_from_civil(y, m, d)?;
    Some(UNIX_EPOCH + Duration::from_secs(days * 86_400 + hh * 3600 + mm * 60 + ss))
}

/// Days since 1970-01-01 of a Gregorian date (Howard Hinnant's algorithm), from 1970 on.
fn days_from_civil(y: u64, m: u64, d: u64) -> Option<u64> {
    let y = if m <= 2 { y.checked_sub(1)? } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe).checked_sub(719_468)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(date: &str, expires: u64) -> String {
        format!("https://s3.example.com/b/k?X-Amz-Date={date}&X-Amz-Expires={expires}&X-Amz-Signature=00")
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn amz_dates_are_read_as_utc() {
        assert_eq!(parse_amz_date("19700101T000000Z"), Some(at(0)));
        // date -u -d 2026-11-26T20:41:00Z +%s
        assert_eq!(parse_amz_date("20261126T204100Z"), Some(at(1_795_725_660)));
        assert_eq!(parse_amz_date("20240229T120000Z"), Some(at(1_709_208_000)));
        assert_eq!(parse_amz_date("2026-11-26T20:41"), None);
        assert_eq!(parse_amz_date("20261326T204100Z"), None);
    }

    #[test]
    fn a_link_expires_by_its_signature_on_this_computers_clock() {
        let signed = 1_795_725_660; // 20261126T204100Z
        let max_age = Duration::from_secs(240);
        // Same clocks: good until 300 s minus the margin.
        let l = Link::new(url("20261126T204100Z", 300), Some(at(signed)), at(signed));
        assert!(l.usable(at(signed + 200), max_age));
        assert!(!l.usable(at(signed + 290), Duration::from_secs(3600)));
        // Fetched before an hour's sleep: too old on the wall clock.
        assert!(!l.usable(at(signed + 3600), Duration::from_secs(7200)));
        // The server's clock is two hours behind ours: the link is fresh, not two hours old.
        let now = signed + 7200;
        let l = Link::new(url("20261126T204100Z", 300), Some(at(signed)), at(now));
        assert!(l.usable(at(now + 200), max_age));
        assert!(!l.usable(at(now + 290), Duration::from_secs(3600)));
        // Two hours ahead.
        let now = signed - 7200;
        let l = Link::new(url("20261126T204100Z", 300), Some(at(signed)), at(now));
        assert!(l.usable(at(now + 200), max_age));
        assert!(!l.usable(at(now + 290), Duration::from_secs(3600)));
        // Signed an hour before the server's own Date: expired on arrival.
        let l = Link::new(url("20261126T194100Z", 300), Some(at(signed)), at(signed));
        assert!(!l.usable(at(signed), max_age));
        // SigV2, and links that say nothing.
        let v2 = format!("https://s3.example.com/b/k?Expires={}", signed + 300);
        assert!(!Link::new(v2, None, at(signed)).usable(at(signed + 290), Duration::MAX));
        let plain = Link::new("https://example.com/f".into(), None, at(signed));
        assert!(plain.usable(at(signed + 100), max_age));
        assert!(!plain.usable(at(signed + 240), max_age));
    }
}
