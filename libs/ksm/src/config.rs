//! The KSM configuration: the JSON (or base64 of it) that a Kubernetes Secret holds, with the
//! keys of the official SDKs (`configkeys.py`).

use std::fmt;

use base64::Engine;
use p256::{PublicKey, SecretKey};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::crypto::{self, Key};

/// The regions of one-time tokens (`REGION:token`) and their hosts.
const REGIONS: &[(&str, &str)] = &[
    ("US", "keepersecurity.com"),
    ("EU", "keepersecurity.eu"),
    ("AU", "keepersecurity.com.au"),
    ("GOV", "govcloud.keepersecurity.us"),
    ("JP", "keepersecurity.jp"),
    ("CA", "keepersecurity.ca"),
    ("IL5", "il5.keepersecurity.us"),
];

/// The host of a one-time token that names none: Keeper's first region.
const DEFAULT_HOST: &str = "keepersecurity.com";

/// The default server key id (`core.py`).
const DEFAULT_KEY_ID: u32 = 10;

/// A KSM configuration. `Debug` shows only what is not secret.
#[derive(Clone)]
pub struct KsmConfig {
    /// `host` or `host:port`.
    pub(crate) hostname: String,
    pub(crate) client_id: String,
    pub(crate) private_key: SecretKey,
    /// Absent until a one-time token is bound.
    pub(crate) app_key: Option<Key>,
    /// The one-time token's bytes, while unbound.
    pub(crate) token: Option<Vec<u8>>,
    pub(crate) key_id: u32,
    /// `serverPublicKey`: a server key that replaces the built-in table (isolated servers).
    pub(crate) server_key: Option<PublicKey>,
    pub(crate) owner_key: Option<String>,
}

/// Why a KSM configuration is unusable; names the key, never its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("the KSM configuration is not JSON: {0}")]
    Syntax(String),
    #[error(
        "the KSM configuration is neither JSON, base64 of JSON, nor a one-time token (REGION:token, host:token or token)"
    )]
    Unrecognised,
    #[error("the KSM configuration has no {0}")]
    Missing(&'static str),
    #[error("the KSM configuration's {key} is invalid: expected {expected}")]
    Invalid {
        key: &'static str,
        expected: &'static str,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    hostname: Option<String>,
    client_id: Option<String>,
    private_key: Option<String>,
    app_key: Option<String>,
    client_key: Option<String>,
    server_public_key_id: Option<Value>,
    server_public_key: Option<String>,
    app_owner_public_key: Option<String>,
}

/// A one-time token as Keeper shows it, split into its parts.
struct Token<'a> {
    /// A region (`EU`) or a host; none for a bare token.
    host: Option<&'a str>,
    token: &'a str,
    key_id: Option<u32>,
    server_key: Option<&'a str>,
}

impl<'a> Token<'a> {
    /// `REGION:token`, `host:token` (`host:port:token` keeps its port), `token`, or
    /// `REGION:token:keyId:serverPublicKey`.
    fn split(text: &'a str) -> Self {
        let parts: Vec<&str> = text.split(':').collect();
        match parts.as_slice() {
            [host, token, key_id, server_key] if key_id.parse::<u32>().is_ok() => Token {
                host: Some(host),
                token,
                key_id: key_id.parse().ok(),
                server_key: Some(server_key),
            },
            _ => match text.rsplit_once(':') {
                Some((host, token)) => Token {
                    host: Some(host),
                    token,
                    key_id: None,
                    server_key: None,
                },
                None => Token {
                    host: None,
                    token: text,
                    key_id: None,
                    server_key: None,
                },
            },
        }
    }
}

impl Raw {
    /// The configuration of a bare one-time token.
    fn token(text: &str) -> Result<Self, ConfigError> {
        let token = Token::split(text);
        if text.contains(char::is_whitespace)
            || token.host.is_some_and(str::is_empty)
            || token.token.is_empty()
            || crypto::decode_b64(token.token).is_err()
        {
            return Err(ConfigError::Unrecognised);
        }
        Ok(Self {
            hostname: Some(token.host.unwrap_or(DEFAULT_HOST).to_owned()),
            client_id: None,
            private_key: None,
            app_key: None,
            client_key: Some(text.to_owned()),
            server_public_key_id: None,
            server_public_key: None,
            app_owner_public_key: None,
        })
    }
}

impl KsmConfig {
    /// Parses a configuration as JSON, as base64 (either alphabet) of JSON, or as a bare
    /// one-time token as Keeper shows it: `REGION:token`, `host:token`, `token` (the US
    /// region), or `REGION:token:keyId:serverPublicKey` (isolated regions such as IL5).
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let text = text.trim();
        let raw: Raw = if text.starts_with('{') {
            serde_json::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?
        } else {
            // A token is base64 too, but of 32 random bytes, which never make a JSON object.
            match crypto::decode_b64(text) {
                Ok(bytes) if bytes.trim_ascii_start().starts_with(b"{") => {
                    serde_json::from_slice(&bytes)
                        .map_err(|e| ConfigError::Syntax(e.to_string()))?
                }
                _ => Raw::token(text)?,
            }
        };
        let invalid = |key, expected| ConfigError::Invalid { key, expected };
        // The token's own parts win over the configuration's keys.
        let token_parts = raw
            .client_key
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Token::split);
        let key_id = match (
            token_parts.as_ref().and_then(|t| t.key_id),
            &raw.server_public_key_id,
        ) {
            (Some(id), _) => id,
            (None, None | Some(Value::Null)) => DEFAULT_KEY_ID,
            (None, Some(Value::String(s))) => s
                .trim()
                .parse()
                .map_err(|_| invalid("serverPublicKeyId", "a number"))?,
            (None, Some(Value::Number(n))) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| invalid("serverPublicKeyId", "a number"))?,
            (None, Some(_)) => return Err(invalid("serverPublicKeyId", "a number")),
        };
        let server_key = token_parts
            .as_ref()
            .and_then(|t| t.server_key)
            .or(raw.server_public_key.as_deref())
            .filter(|s| !s.trim().is_empty())
            .map(|s| crypto::decode_b64(s).and_then(|b| crypto::parse_point(&b)))
            .transpose()
            .map_err(|_| invalid("serverPublicKey", "base64 of an uncompressed P-256 point"))?;
        let app_key = raw
            .app_key
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| crypto::decode_b64(s).and_then(|b| crypto::key(&b)))
            .transpose()
            .map_err(|_| invalid("appKey", "base64 of a 32-byte key"))?;
        let mut hostname = raw.hostname.unwrap_or_default().trim().to_owned();
        let mut token = None;
        if app_key.is_none()
            && let Some(parts) = token_parts
        {
            if let Some(prefix) = parts.host {
                hostname = prefix.to_owned();
            }
            token = Some(
                crypto::decode_b64(parts.token)
                    .map_err(|_| invalid("clientKey", "a one-time token (base64)"))?,
            );
        }
        if let Some((_, host)) = REGIONS
            .iter()
            .find(|(region, _)| region.eq_ignore_ascii_case(&hostname))
        {
            hostname = (*host).to_owned();
        }
        if hostname.is_empty() {
            return Err(ConfigError::Missing("hostname"));
        }
        if app_key.is_none() && token.is_none() {
            return Err(ConfigError::Missing(
                "appKey or clientKey (bind a one-time token, or use a bound configuration)",
            ));
        }
        let client_id = match (&token, raw.client_id) {
            (Some(token), _) => crypto::client_id(token),
            (None, Some(id)) if !id.trim().is_empty() => id.trim().to_owned(),
            (None, _) => return Err(ConfigError::Missing("clientId")),
        };
        let private_key = match raw.private_key.as_deref().filter(|s| !s.is_empty()) {
            Some(text) => crypto::decode_b64(text)
                .and_then(|der| crypto::private_key_from_pkcs8(&der))
                .map_err(|_| invalid("privateKey", "base64 of a PKCS#8 P-256 key"))?,
            None if token.is_some() => crypto::random_secret_key(),
            None => return Err(ConfigError::Missing("privateKey")),
        };
        Ok(Self {
            hostname,
            client_id,
            private_key,
            app_key,
            token,
            key_id,
            server_key,
            owner_key: raw.app_owner_public_key,
        })
    }

    /// Whether the configuration still holds an unbound one-time token.
    pub fn is_bound(&self) -> bool {
        self.app_key.is_some()
    }

    /// The configuration as the SDKs write it (a bound one after binding), for a cache.
    pub fn to_json(&self) -> String {
        let mut map = Map::new();
        let mut put = |k: &str, v: String| {
            map.insert(k.to_owned(), Value::String(v));
        };
        put("hostname", self.hostname.clone());
        put("clientId", self.client_id.clone());
        put(
            "privateKey",
            crypto::std_b64(&crypto::private_key_to_pkcs8(&self.private_key)),
        );
        if let Some(key) = &self.app_key {
            put("appKey", crypto::std_b64(key));
        }
        if let Some(token) = &self.token {
            put("clientKey", crypto::url_b64(token));
        }
        put("serverPublicKeyId", self.key_id.to_string());
        if let Some(key) = &self.server_key {
            put(
                "serverPublicKey",
                crypto::url_b64(&crypto::point_bytes(key)),
            );
        }
        if let Some(owner) = &self.owner_key {
            put("appOwnerPublicKey", owner.clone());
        }
        Value::Object(map).to_string()
    }

    /// The host (and port) requests go to.
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// The server key for `key_id`: the configured override, else the built-in table.
    pub(crate) fn server_key(&self, key_id: u32) -> Option<PublicKey> {
        if let Some(key) = &self.server_key {
            return Some(*key);
        }
        let b64 = crate::keys::server_key(key_id)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(b64)
            .ok()?;
        crypto::parse_point(&bytes).ok()
    }
}

impl fmt::Debug for KsmConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KsmConfig")
            .field("hostname", &self.hostname)
            .field("bound", &self.is_bound())
            .field("key_id", &self.key_id)
            .field("custom_server_key", &self.server_key.is_some())
            .finish_non_exhaustive()
    }
}
