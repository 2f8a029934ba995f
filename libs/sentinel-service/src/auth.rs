//! Who may read and who may write (ours: upstream serves everything to everyone).
//!
//! - Writes need `Authorization: Bearer <token>`, or the token typed into a dashboard form
//!   (a form field, never a cookie, so another site cannot make a browser write: no CSRF).
//!   Without a token configured, writes are disabled and say so.
//! - Reads need the token as the header or the dashboard's session cookie (set by signing in
//!   with the token; `HttpOnly`, `SameSite=Strict`), unless `web.auth.public_reads` opens them.
//!
//! Tokens are compared in constant time. The cookie holds an expiry and an HMAC-SHA256 of it
//! keyed by the token (never the token): it lapses after [`SESSION`], stops working when the
//! token changes, and is the same on every replica, so a load balancer may send the browser
//! to any of them.

use bulwark_config::Secret;
use hmac::{Hmac, Mac};
use hyper::HeaderMap;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const COOKIE: &str = "sentinel_session";

/// How long a sign-in lasts, in seconds.
pub const SESSION: i64 = 12 * 3600;

/// The configured access rules.
#[derive(Debug, Clone)]
pub struct Auth {
    token: Option<Secret>,
    public_reads: bool,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No token configured: writes are off (403).
    WritesDisabled,
    /// Reads are closed and no token is configured to open them (401).
    ReadsClosed,
    /// Missing or wrong credentials (401).
    Unauthenticated,
}

impl Denied {
    /// The message the client gets.
    pub const fn message(self) -> &'static str {
        match self {
            Self::WritesDisabled => {
                "writes are disabled: no token is configured (set web.auth.token_file or \
                 web.auth.token_env)"
            }
            Self::ReadsClosed => {
                "reads need a token, and none is configured: set web.auth.token_file or \
                 web.auth.token_env, or web.auth.public_reads: true"
            }
            Self::Unauthenticated => "a valid bearer token is required",
        }
    }
}

impl Auth {
    /// Access with `token` (if any) and reads open or not.
    pub fn new(token: Option<Secret>, public_reads: bool) -> Self {
        Self {
            token: token.filter(|t| !t.expose().is_empty()),
            public_reads,
        }
    }

    /// Whether a token is configured (and so writes are possible).
    pub fn writable(&self) -> bool {
        self.token.is_some()
    }

    /// Whether reads are open to anyone.
    pub fn public_reads(&self) -> bool {
        self.public_reads
    }

    /// Whether `given` is the token.
    pub fn token_matches(&self, given: &str) -> bool {
        self.token
            .as_ref()
            .is_some_and(|t| bool::from(t.expose().as_bytes().ct_eq(given.as_bytes())))
    }

    /// May `headers` write? Only the bearer header counts.
    pub fn write(&self, headers: &HeaderMap) -> Result<(), Denied> {
        if self.token.is_none() {
            return Err(Denied::WritesDisabled);
        }
        match bearer(headers) {
            Some(given) if self.token_matches(given) => Ok(()),
            _ => Err(Denied::Unauthenticated),
        }
    }

    /// May `headers` read? The bearer header or an unexpired session cookie.
    pub fn read(&self, headers: &HeaderMap) -> Result<(), Denied> {
        self.read_at(headers, jiff::Timestamp::now().as_second())
    }

    /// [`Self::read`] at `now` (Unix seconds).
    pub fn read_at(&self, headers: &HeaderMap, now: i64) -> Result<(), Denied> {
        if self.public_reads {
            return Ok(());
        }
        if self.token.is_none() {
            return Err(Denied::ReadsClosed);
        }
        if bearer(headers).is_some_and(|t| self.token_matches(t)) {
            return Ok(());
        }
        match cookie(headers, COOKIE) {
            Some(c) if self.session_valid(c, now) => Ok(()),
            _ => Err(Denied::Unauthenticated),
        }
    }

    /// A session cookie's value, valid until `expires` (Unix seconds).
    pub fn session(&self, expires: i64) -> Option<String> {
        let mac = self.mac(expires)?;
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        Some(format!("{expires}.{hex}"))
    }

    fn session_valid(&self, value: &str, now: i64) -> bool {
        let Some((expires, _)) = value.split_once('.') else {
            return false;
        };
        let Ok(expires) = expires.parse::<i64>() else {
            return false;
        };
        expires > now
            && self
                .session(expires)
                .is_some_and(|want| bool::from(want.as_bytes().ct_eq(value.as_bytes())))
    }

    fn mac(&self, expires: i64) -> Option<[u8; 32]> {
        let token = self.token.as_ref()?;
        let mut mac = Hmac::<Sha256>::new_from_slice(token.expose().as_bytes()).ok()?;
        mac.update(b"bulwark-sentinel session v1|");
        mac.update(expires.to_string().as_bytes());
        Some(mac.finalize().into_bytes().into())
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(hyper::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(hyper::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use hyper::header::{AUTHORIZATION, COOKIE as COOKIE_HEADER, HeaderValue};

    use super::*;

    fn headers(pairs: &[(hyper::header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn writes_need_the_bearer_token_and_never_the_cookie() {
        let auth = Auth::new(Some(Secret::new("s3cret")), false);
        let now = 1_000_000;
        let session = auth.session(now + SESSION).unwrap();
        assert_eq!(
            auth.write(&headers(&[(AUTHORIZATION, "Bearer s3cret")])),
            Ok(())
        );
        assert_eq!(
            auth.write(&headers(&[(AUTHORIZATION, "bearer s3cret")])),
            Ok(())
        );
        for wrong in ["Bearer s3cre", "Bearer s3cret2", "Basic s3cret", "s3cret"] {
            assert_eq!(
                auth.write(&headers(&[(AUTHORIZATION, wrong)])),
                Err(Denied::Unauthenticated),
                "{wrong}"
            );
        }
        let cookie = format!("a=b; {COOKIE}={session}");
        assert_eq!(
            auth.write(&headers(&[(COOKIE_HEADER, &cookie)])),
            Err(Denied::Unauthenticated)
        );
        let with = |c: &str| headers(&[(COOKIE_HEADER, c)]);
        assert_eq!(auth.read_at(&with(&cookie), now), Ok(()));
        assert_eq!(
            auth.read_at(&with(&cookie), now + SESSION),
            Err(Denied::Unauthenticated),
            "expired"
        );
        // Pushing the expiry forward breaks the MAC.
        let (_, mac) = session.split_once('.').unwrap();
        let forged = format!("{COOKIE}={}.{mac}", now + 10 * SESSION);
        assert_eq!(
            auth.read_at(&with(&forged), now),
            Err(Denied::Unauthenticated)
        );
        for bad in [
            "sentinel_session=00",
            "sentinel_session=",
            "sentinel_session=x.y",
        ] {
            assert_eq!(
                auth.read_at(&with(bad), now),
                Err(Denied::Unauthenticated),
                "{bad}"
            );
        }
        let rotated = Auth::new(Some(Secret::new("n3w")), false);
        assert_eq!(
            rotated.read_at(&with(&cookie), now),
            Err(Denied::Unauthenticated),
            "a new token ends old sessions"
        );
        assert!(!session.contains("s3cret"));
    }

    #[test]
    fn without_a_token_writes_are_off_and_reads_as_configured() {
        let closed = Auth::new(None, false);
        assert_eq!(closed.write(&HeaderMap::new()), Err(Denied::WritesDisabled));
        assert_eq!(closed.read(&HeaderMap::new()), Err(Denied::ReadsClosed));
        let open = Auth::new(Some(Secret::new("")), true);
        assert!(!open.writable(), "an empty token is no token");
        assert_eq!(open.read(&HeaderMap::new()), Ok(()));
    }
}
