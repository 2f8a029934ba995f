//! Listen addresses as operators write them: `0.0.0.0:8080`, `[::]:8443`, or Go's `:8080`
//! (all interfaces), which the sentinel seed uses.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The `health` section of every binary's config: where `/health`, `/ready` and `/metrics`
/// are served.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Health {
    /// Listen address; each binary has its own default port.
    pub listen: Option<ListenAddr>,
    /// How long open health requests may take to finish on shutdown.
    pub drain: Option<crate::Duration>,
}

/// A socket address to listen on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListenAddr(pub SocketAddr);

impl ListenAddr {
    /// All IPv4 interfaces on `port`.
    pub const fn any(port: u16) -> Self {
        Self(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port))
    }
}

impl FromStr for ListenAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let parsed = match s.strip_prefix(':') {
            Some(port) => port.parse::<u16>().map(Self::any).ok(),
            None => s.parse::<SocketAddr>().map(Self).ok(),
        };
        parsed.ok_or_else(|| format!("invalid listen address {s:?}; expected HOST:PORT such as 0.0.0.0:8080, [::]:8080 or :8080"))
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de> Deserialize<'de> for ListenAddr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl Serialize for ListenAddr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::ListenAddr;

    #[test]
    fn parses_go_and_socket_forms() {
        assert_eq!(
            ":8080".parse::<ListenAddr>().unwrap().to_string(),
            "0.0.0.0:8080"
        );
        assert_eq!(
            "127.0.0.1:9".parse::<ListenAddr>().unwrap().to_string(),
            "127.0.0.1:9"
        );
        assert_eq!(
            "[::]:8443".parse::<ListenAddr>().unwrap().to_string(),
            "[::]:8443"
        );
        let e = "localhost:80".parse::<ListenAddr>().unwrap_err();
        assert!(e.contains("expected HOST:PORT"), "{e}");
        assert!(":99999".parse::<ListenAddr>().is_err());
    }
}
