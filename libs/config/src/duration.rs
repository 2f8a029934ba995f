//! Human durations as operators write them in YAML and annotations: `500ms`, `30s`, `5m`,
//! `24h`, `7d`, and sums such as `1h30m`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A non-negative duration parsed from `<number><unit>` groups (units `ms`, `s`, `m`, `h`, `d`).
///
/// A bare number is rejected: `30` could mean seconds or minutes, and guessing wrong in a
/// retention period loses data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(std::time::Duration);

/// Why a duration did not parse; the message says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration {input:?}: {reason}; expected a number followed by ms, s, m, h or d, as in 30s, 5m, 24h or 1h30m"
)]
pub struct ParseDurationError {
    input: String,
    reason: &'static str,
}

impl Duration {
    /// Wraps a std duration.
    pub const fn new(d: std::time::Duration) -> Self {
        Self(d)
    }

    /// A duration of whole seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(std::time::Duration::from_secs(secs))
    }

    /// The std duration.
    pub const fn get(self) -> std::time::Duration {
        self.0
    }
}

impl From<Duration> for std::time::Duration {
    fn from(d: Duration) -> Self {
        d.0
    }
}

impl FromStr for Duration {
    type Err = ParseDurationError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason| ParseDurationError {
            input: input.to_owned(),
            reason,
        };
        let s = input.trim();
        if s.is_empty() {
            return Err(err("empty"));
        }
        let mut total_ms: u64 = 0;
        let mut rest = s;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(err("missing number"));
            }
            let (number, tail) = rest.split_at(digits);
            let unit_len = tail.bytes().take_while(u8::is_ascii_alphabetic).count();
            if unit_len == 0 {
                return Err(err("missing unit"));
            }
            let (unit, tail) = tail.split_at(unit_len);
            let scale: u64 = match unit {
                "ms" => 1,
                "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                _ => return Err(err("unknown unit")),
            };
            let n: u64 = number.parse().map_err(|_| err("number too large"))?;
            total_ms = n
                .checked_mul(scale)
                .and_then(|ms| total_ms.checked_add(ms))
                .ok_or_else(|| err("too large"))?;
            rest = tail;
        }
        Ok(Self(std::time::Duration::from_millis(total_ms)))
    }
}

impl Duration {
    /// Writes the shortest exact form, e.g. `1h30m`, `500ms`, `0s`, to `out`: what `Display`
    /// prints, without the formatting machinery (the webhook writes one into every spec).
    pub fn write_shortest(&self, out: &mut impl fmt::Write) -> fmt::Result {
        let mut ms = self.0.as_millis();
        if ms == 0 {
            return out.write_str("0s");
        }
        let mut digits = itoa::Buffer::new();
        for (unit, scale) in [
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1_000),
        ] {
            if ms >= scale {
                out.write_str(digits.format(ms / scale))?;
                out.write_str(unit)?;
                ms %= scale;
            }
        }
        if ms > 0 {
            out.write_str(digits.format(ms))?;
            out.write_str("ms")?;
        }
        Ok(())
    }
}

impl fmt::Display for Duration {
    /// Prints the shortest exact form, e.g. `1h30m`, `500ms`, `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_shortest(f)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A bare number (`30`, as a YAML integer or from an already parsed tree) is read as
        // text, so that it gets the same message as `"30"`: it needs a unit.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Integer(i64),
            Float(f64),
        }
        let text = match Raw::deserialize(deserializer)? {
            Raw::Text(s) => s,
            Raw::Integer(n) => n.to_string(),
            Raw::Float(f) => f.to_string(),
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests;
