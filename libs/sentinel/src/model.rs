//! The values every part of Sentinel passes around: stream labels and log lines.

use std::fmt;

/// A Loki stream's labels, sorted by name (the order Loki prints them in, and the order that
/// makes two equal label sets compare equal).
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Labels {
    pairs: Vec<(Box<str>, Box<str>)>,
    /// Where `namespace`, `pod` and `container` are in `pairs`, and the length of the pod's
    /// workload name: worked out once per stream, since every line asks for them. Both follow
    /// from `pairs`, so the derived comparisons stay those of the pairs.
    source: [Option<usize>; 3],
    workload: usize,
}

impl Labels {
    /// Labels from pairs in any order; a repeated name keeps its last value.
    pub fn new<K: Into<Box<str>>, V: Into<Box<str>>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let mut v: Vec<(Box<str>, Box<str>)> = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        // Stable, so that among equal names the last one written ends up last.
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v.reverse();
        v.dedup_by(|a, b| a.0 == b.0);
        v.reverse();
        let at = |name: &str| v.binary_search_by(|(k, _)| (**k).cmp(name)).ok();
        let source = [at("namespace"), at("pod"), at("container")];
        let workload = source[1].map_or(0, |i| crate::fingerprint::workload(&v[i].1).len());
        Self {
            pairs: v,
            source,
            workload,
        }
    }

    /// The value of label `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .binary_search_by(|(k, _)| (**k).cmp(name))
            .ok()
            .map(|i| &*self.pairs[i].1)
    }

    /// The pairs, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (&**k, &**v))
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The Kubernetes labels Promtail and Alloy attach: `namespace`, `pod`, `container`
    /// (empty when absent).
    pub fn source(&self) -> Source<'_> {
        let value = |at: Option<usize>| at.map_or("", |i| &*self.pairs[i].1);
        Source {
            namespace: value(self.source[0]),
            pod: value(self.source[1]),
            container: value(self.source[2]),
        }
    }

    /// The workload of the `pod` label's pod ([`crate::fingerprint::workload`]).
    pub fn workload(&self) -> &str {
        &self.source().pod[..self.workload]
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// LogQL's selector syntax: `{a="x", b="y"}`.
impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (k, v)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{k}={v:?}")?;
        }
        f.write_str("}")
    }
}

/// Where a line came from in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Source<'a> {
    pub namespace: &'a str,
    pub pod: &'a str,
    pub container: &'a str,
}

#[cfg(test)]
mod tests {
    use super::Labels;

    #[test]
    fn source_and_workload_are_read_once_and_follow_the_pairs() {
        let labels = Labels::new([
            ("pod", "api-7d9f8b6c5-x2k4q"),
            ("container", "api"),
            ("namespace", "shop"),
            ("app", "api"),
            ("pod", "web-0"),
        ]);
        let s = labels.source();
        assert_eq!((s.namespace, s.pod, s.container), ("shop", "web-0", "api"));
        assert_eq!(labels.workload(), "web");
        assert_eq!(
            labels,
            Labels::new([
                ("namespace", "shop"),
                ("pod", "web-0"),
                ("container", "api"),
                ("app", "api")
            ])
        );
        let bare = Labels::new([("job", "x")]);
        let s = bare.source();
        assert_eq!(
            (s.namespace, s.pod, s.container, bare.workload()),
            ("", "", "", "")
        );
        assert_eq!(Labels::default().workload(), "");
    }
}
