//! Kubernetes resource quantities (`100m`, `64Mi`, `1.5`, `2e3`): validation and comparison.
//!
//! The grammar is the one of `k8s.io/apimachinery/pkg/api/resource` (`quantity.go`):
//! a decimal number followed by a binary suffix (`Ki` … `Ei`), a decimal suffix (`n`, `u`, `m`,
//! `k`, `M`, `G`, `T`, `P`, `E`) or an exponent (`e3`, `E-2`).
//! Values are compared as `f64`, which is exact enough to tell a request from a limit.

/// The value of `text` in base units (cores, bytes), or `None` when it is not a quantity or is
/// negative (no resource here may be negative).
pub(crate) fn parse(text: &str) -> Option<f64> {
    let number_len = text
        .bytes()
        .position(|b| !(b.is_ascii_digit() || b == b'.' || b == b'+'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(number_len);
    let digits = number.strip_prefix('+').unwrap_or(number);
    if digits.is_empty() || digits == "." || digits.contains('+') || digits.matches('.').count() > 1
    {
        return None;
    }
    let value: f64 = digits.parse().ok()?;
    let scale = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0_f64.powi(2),
        "Gi" => 1024.0_f64.powi(3),
        "Ti" => 1024.0_f64.powi(4),
        "Pi" => 1024.0_f64.powi(5),
        "Ei" => 1024.0_f64.powi(6),
        exponent => {
            let exponent = exponent
                .strip_prefix('e')
                .or_else(|| exponent.strip_prefix('E'))?;
            let unsigned = exponent
                .strip_prefix('+')
                .or_else(|| exponent.strip_prefix('-'))
                .unwrap_or(exponent);
            if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            10f64.powi(exponent.parse::<i32>().ok()?)
        }
    };
    let result = value * scale;
    result.is_finite().then_some(result)
}

#[cfg(test)]
mod tests;
