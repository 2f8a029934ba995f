//! Who may read and who may write (ours: upstream serves everything to everyone).
//!
//! - Writes need `Authorization: Bearer <token>`, or the token typed into a dashboard form
//!   (a form field, never a cookie, so another site cannot make a browser write: no CSRF).
//!   Without a token configured, writes are disabled and say so.
//! - Reads need the token as the header or the dashboard's session cookie (set by signing in
//!   with the token; `HttpOnly`, `SameSite=Strict`), unless `web.auth.public_reads` opens them.
//!
//! Tokens are compared in constant time. The cookie holds a SHA-256 of the token under a
//! domain string, never the token, and stops working when the token changes.

use bulwark_config::Secret;
use hyper::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const COOKIE: &str = "sentinel_session";

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

    /// May `headers` read? The bearer header or the session cookie.
    pub fn read(&self, headers: &HeaderMap) -> Result<(), Denied> {
        if self.public_reads {
            return Ok(());
        }
        let Some(session) = self.session() else {
            return Err(Denied::ReadsClosed);
        };
        if bearer(headers).is_some_and(|t| self.token_matches(t)) {
            return Ok(());
        }
        match cookie(headers, COOKIE) {
            Some(c) if bool::from(c.as_bytes().ct_eq(session.as_bytes())) => Ok(()),
            _ => Err(Denied::Unauthenticated),
        }
    }

    /// The session cookie's value for the configured token.
    pub fn session(&self) -> Option<String> {
        let token = self.token.as_ref()?;
        let mut h = Sha256::new();
        h.update(b"bulwark-sentinel session v1\0");
        h.update(token.expose().as_bytes());
        Some(
            h.finalize()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
        )
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
        let session = auth.session().unwrap();
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
        assert_eq!(auth.read(&headers(&[(COOKIE_HEADER, &cookie)])), Ok(()));
        assert_eq!(
            auth.read(&headers(&[(COOKIE_HEADER, "sentinel_session=00")])),
            Err(Denied::Unauthenticated)
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
