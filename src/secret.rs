//! A secret as the engine carries it (the TDP token, a proxy password): never printed.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The TDP auth token (or another secret). `Debug` hides it, and it has no `Display`.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    pub fn new(value: impl Into<String>) -> Self {
        Token(value.into().trim().to_string())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// When the token expires, if it says: TDP's tokens are JWTs with an `exp` claim. The
    /// signature is not checked (TDP does that); a token that is not a JWT has no known
    /// expiry.
    pub fn expires_at(&self) -> Option<SystemTime> {
        use base64::Engine;
        let mut parts = self.0.split('.');
        let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .ok()?;
        let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        let exp = claims.get("exp")?.as_f64()?;
        (exp >= 0.0).then(|| UNIX_EPOCH + Duration::from_secs_f64(exp))
    }

    /// "expires in 35 min", "expired 2 h ago", or None when the token does not say.
    pub fn lifetime_text(&self, now: SystemTime) -> Option<String> {
        let exp = self.expires_at()?;
        Some(match exp.duration_since(now) {
            Ok(left) => format!("expires in {}", span(left)),
            Err(past) => format!("expired {} ago", span(past.duration())),
        })
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

pub(crate) fn span(d: Duration) -> String {
    let mins = d.as_secs() / 60;
    match mins {
        0 => format!("{} s", d.as_secs()),
        1..=119 => format!("{mins} min"),
        _ => format!("{} h {} min", mins / 60, mins % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jwt_tells_when_it_expires_and_other_tokens_do_not() {
        // {"alg":"HS256"} . {"sub":"x","exp":1795725660} . sig
        let jwt = Token::new("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4IiwiZXhwIjoxNzk1NzI1NjYwfQ.c2ln");
        let exp = UNIX_EPOCH + Duration::from_secs(1_795_725_660);
        assert_eq!(jwt.expires_at(), Some(exp));
        let before = exp - Duration::from_secs(35 * 60);
        assert_eq!(
            jwt.lifetime_text(before).as_deref(),
            Some("expires in 35 min")
        );
        let after = exp + Duration::from_secs(3 * 3600 + 60);
        assert_eq!(
            jwt.lifetime_text(after).as_deref(),
            Some("expired 3 h 1 min ago")
        );
        assert_eq!(Token::new("sim-token-0123456789").expires_at(), None);
        assert_eq!(Token::new("a.b.c").expires_at(), None);
        // Never shown by Debug.
        assert_eq!(format!("{jwt:?}"), "Token(***)");
    }
}
