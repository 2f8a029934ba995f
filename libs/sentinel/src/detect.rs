//! One log line in, one detection out: the message, the first rule that matches, and the
//! fingerprint. Everything a line costs on the hot path is here; the benchmark
//! (`cargo bench -p sentinel`) runs exactly this.

use crate::extract;
use crate::fingerprint::Fingerprint;
use crate::model::{Labels, Source};
use crate::normalize::{Normalized, Normalizer};
use crate::rules::{DEFAULT_RULE, Priority, Rule, RuleSet, Scratch, Subject};

/// The rules and the normaliser; share one per process, and give each thread a [`Workspace`].
#[derive(Debug, Clone)]
pub struct Detector {
    rules: RuleSet,
    normalizer: Normalizer,
}

/// A thread's reusable buffers.
#[derive(Debug, Clone)]
pub struct Workspace {
    scratch: Scratch,
    normalized: Normalized,
    /// A message joined from two parts, or unescaped.
    message: String,
}

/// A stream's labels and what they say about its source, worked out once per stream.
#[derive(Debug, Clone, Copy)]
pub struct Stream<'a> {
    pub labels: &'a Labels,
    pub source: Source<'a>,
    pub workload: &'a str,
}

impl<'a> Stream<'a> {
    /// The stream with `labels`.
    pub fn new(labels: &'a Labels) -> Self {
        Self {
            labels,
            source: labels.source(),
            workload: labels.workload(),
        }
    }
}

/// What one line is.
#[derive(Debug)]
pub struct Detection<'a> {
    pub source: Source<'a>,
    pub workload: &'a str,
    /// The rule that matched; `None` is [`DEFAULT_RULE`].
    pub rule: Option<&'a Rule>,
    pub message: &'a str,
    pub normalized: &'a Normalized,
    pub fingerprint: Fingerprint,
}

impl Detection<'_> {
    /// The matched rule's name, or `default`.
    pub fn rule_name(&self) -> &str {
        self.rule.map_or(DEFAULT_RULE, |r| r.name.as_str())
    }

    /// The matched rule's priority, or `P4`.
    pub fn priority(&self) -> Priority {
        self.rule.map_or(Priority::P4, |r| r.priority)
    }

    /// The replaced values of this line's message (see [`Normalized::values`]).
    pub fn values(&self) -> Box<[u8]> {
        self.normalized.values(self.message)
    }
}

impl Detector {
    /// A detector over `rules`.
    pub fn new(rules: RuleSet) -> Self {
        Self {
            rules,
            normalizer: Normalizer::new(),
        }
    }

    /// The rules in use.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// Buffers for one thread.
    pub fn workspace(&self) -> Workspace {
        Workspace {
            scratch: self.rules.matcher().scratch(),
            normalized: Normalized::default(),
            message: String::new(),
        }
    }

    /// Detects what `line`, from `stream`, is. `ws` must come from
    /// [`Detector::workspace`] of this detector.
    pub fn detect<'a>(
        &'a self,
        ws: &'a mut Workspace,
        stream: &Stream<'a>,
        line: &'a str,
    ) -> Detection<'a> {
        let Stream {
            labels,
            source,
            workload,
        } = *stream;
        let read = extract::read(line);
        let rule = self.rules.first_match(
            &Subject {
                namespace: source.namespace,
                labels,
                parts: &read.parts(),
                line,
            },
            &mut ws.scratch,
        );
        let message = read.text(&mut ws.message);
        self.normalizer.normalize_into(message, &mut ws.normalized);
        let fingerprint = Fingerprint::new(
            source.namespace,
            workload,
            source.container,
            &ws.normalized.text,
        );
        Detection {
            source,
            workload,
            rule,
            message,
            normalized: &ws.normalized,
            fingerprint,
        }
    }
}
