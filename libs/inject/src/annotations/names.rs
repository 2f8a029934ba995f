//! Names: Kubernetes object and container names as the API server checks them, and the
//! suggestions for an unknown annotation.

use super::KNOWN;

/// The first line of a multi-line parser message, without a leading `error: `.
pub(super) fn first_line(message: &str) -> &str {
    let line = message.lines().next().unwrap_or_default().trim();
    line.strip_prefix("error: ").unwrap_or(line)
}

/// The known annotation closest to an unknown one, when the typo is small.
pub(super) fn suggest(name: &str) -> Option<&'static str> {
    KNOWN
        .iter()
        .map(|known| (edit_distance(name, known), *known))
        .filter(|(d, known)| *d <= 2.max(known.len() / 6))
        .min()
        .map(|(_, known)| known)
}

/// Levenshtein distance, bounded in cost by the short annotation names it is used on.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().take(64).enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// A DNS-1123 subdomain, as Kubernetes object names are.
pub(crate) fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// A DNS-1123 label, as container names are.
pub(super) fn is_dns_label(s: &str) -> bool {
    s.len() <= 63 && !s.contains('.') && is_dns_subdomain(s)
}
