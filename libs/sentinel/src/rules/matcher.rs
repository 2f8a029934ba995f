//! All rules in one pass (research/sentinel.md §4).
//!
//! Upstream tries each rule's regex in turn. Here every enabled rule's pattern goes into one
//! `regex-automata` meta regex built with `MatchKind::All`, whose overlapping search reports
//! every pattern that matches anywhere in a haystack in a single scan; the smallest rule index
//! among those that also pass their other criteria wins, which is upstream's "first rule in
//! file order". Keywords go into one Aho-Corasick automaton (ASCII case-insensitive);
//! keywords with non-ASCII letters join the regex set as `(?i)` literals, so that they fold
//! case as upstream's `strings.ToLower` does. Namespaces and labels are checked only for the
//! rules the scan reports.
//!
//! The haystacks are the whole line and the parts of its message (upstream matches a pattern
//! against its message or the line). A part is almost always a slice of the line, and then
//! only the patterns with assertions (`^`, `\b`...) that the line's scan did not report are
//! tried on it; an unescaped part is scanned on its own.

use aho_corasick::AhoCorasick;
use regex_automata::meta::{Cache, Regex};
use regex_automata::nfa::thompson::WhichCaptures;
use regex_automata::{Input, MatchKind, PatternID, PatternSet};

use super::Rule;
use super::walk::Walk;
use crate::model::Labels;

/// What a rule is matched against: one log line and where it came from.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub namespace: &'a str,
    pub labels: &'a Labels,
    /// The extracted message's parts ([`crate::extract::Message::parts`]).
    pub parts: &'a [&'a str],
    /// The whole line as Loki returned it.
    pub line: &'a str,
}

#[derive(Debug, Clone, Copy)]
enum Target {
    Pattern(usize),
    Keyword(usize),
}

/// The compiled form of the enabled rules.
#[derive(Debug, Clone)]
pub struct Matcher {
    set: Option<Regex>,
    /// The set's lazy DFA for scanning lines two at a time ([`Matcher::scan_page`]).
    walk: Option<Walk>,
    set_targets: Vec<Target>,
    /// The set's patterns that use assertions (`^`, `$`, `\b`...), by their index in `set`:
    /// the only ones whose matches in a message can differ from matches in a line containing
    /// it.
    edges: Option<Regex>,
    edge_ids: Vec<usize>,
    keywords: Option<AhoCorasick>,
    keyword_rules: Vec<usize>,
    rules: usize,
}

/// Per-thread working memory for [`Matcher::first_match`], reused across lines.
#[derive(Debug, Clone)]
pub struct Scratch {
    /// The patterns found in the line, and in the second line of a pair.
    patterns: PatternSet,
    paired: PatternSet,
    walk_cache: Option<regex_automata::hybrid::dfa::Cache>,
    page: Page,
    rest: Rest,
}

/// The patterns found in each line of the page scanned last ([`Matcher::scan_page`]).
#[derive(Debug, Clone, Default)]
struct Page {
    /// Line `i`'s are `found[ends[i - 1]..ends[i]]` (from 0 for the first).
    found: Vec<PatternID>,
    ends: Vec<usize>,
}

/// What finishing a line's match needs besides its patterns.
#[derive(Debug, Clone)]
struct Rest {
    cache: Option<Cache>,
    edge_cache: Option<Cache>,
    edge_patterns: PatternSet,
    /// Rules whose pattern matched, and rules whose keywords matched, as bitsets.
    pattern_hits: Vec<u64>,
    keyword_hits: Vec<u64>,
}

impl Matcher {
    /// Builds the set over `rules` (disabled ones are left out).
    pub(super) fn new(rules: &[Rule]) -> Result<Self, String> {
        let mut patterns = Vec::new();
        let mut set_targets = Vec::new();
        let mut keywords = Vec::new();
        let mut keyword_rules = Vec::new();
        for (i, rule) in rules.iter().enumerate().filter(|(_, r)| r.enabled) {
            if let Some(p) = &rule.pattern {
                patterns.push(p.clone());
                set_targets.push(Target::Pattern(i));
            }
            for k in &rule.keywords {
                if k.chars().any(|c| !c.is_ascii() && c.is_alphabetic()) {
                    patterns.push(format!("(?i){}", regex_syntax::escape(k)));
                    set_targets.push(Target::Keyword(i));
                } else {
                    keywords.push(k.clone());
                    keyword_rules.push(i);
                }
            }
        }
        let set = if patterns.is_empty() {
            None
        } else {
            let built = set_builder().build_many(&patterns).map_err(|e| {
                let which = e
                    .pattern()
                    .and_then(|p| set_targets.get(p.as_usize()))
                    .map_or(String::new(), |t| match t {
                        Target::Pattern(i) | Target::Keyword(i) => {
                            format!("rule {:?}: ", rules[*i].name)
                        }
                    });
                format!("{which}cannot build the rule set: {e}")
            })?;
            Some(built)
        };
        let walk = set.as_ref().and_then(|_| Walk::new(&patterns));
        let edge_ids: Vec<usize> = patterns
            .iter()
            .enumerate()
            .filter(|(_, p)| has_assertions(p))
            .map(|(i, _)| i)
            .collect();
        let edges = if edge_ids.is_empty() {
            None
        } else {
            let edge_patterns: Vec<&String> = edge_ids.iter().map(|&i| &patterns[i]).collect();
            Some(
                set_builder()
                    .build_many(&edge_patterns)
                    .map_err(|e| format!("cannot build the rule set's assertion patterns: {e}"))?,
            )
        };
        let keywords_ac = if keywords.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .ascii_case_insensitive(true)
                    .build(&keywords)
                    .map_err(|e| format!("cannot build the keyword automaton: {e}"))?,
            )
        };
        Ok(Self {
            set,
            walk,
            set_targets,
            edges,
            edge_ids,
            keywords: keywords_ac,
            keyword_rules,
            rules: rules.len(),
        })
    }

    /// Working memory for this matcher.
    pub fn scratch(&self) -> Scratch {
        let words = self.rules.div_ceil(64);
        Scratch {
            patterns: PatternSet::new(self.set_targets.len()),
            paired: PatternSet::new(self.set_targets.len()),
            walk_cache: self.walk.as_ref().map(Walk::create_cache),
            page: Page::default(),
            rest: Rest {
                cache: self.set.as_ref().map(Regex::create_cache),
                edge_cache: self.edges.as_ref().map(Regex::create_cache),
                edge_patterns: PatternSet::new(self.edge_ids.len()),
                pattern_hits: vec![0; words],
                keyword_hits: vec![0; words],
            },
        }
    }

    /// The index in `rules` of the first enabled rule that `s` satisfies.
    ///
    /// `rules` must be the slice this matcher was built from and `scratch` must come from
    /// [`Matcher::scratch`] of this matcher.
    pub(super) fn first_match(
        &self,
        rules: &[Rule],
        s: &Subject<'_>,
        scratch: &mut Scratch,
    ) -> Option<usize> {
        let Scratch { patterns, rest, .. } = scratch;
        self.scan_line(s.line, patterns, rest);
        self.finish(rules, s, patterns, rest)
    }

    /// Scans a page of lines for the set's patterns, two lines in step, for
    /// [`Matcher::first_match_scanned`]. A page's lines scanned together keep the DFA's
    /// states in the cache between them.
    pub(super) fn scan_page(&self, lines: &[&str], scratch: &mut Scratch) {
        let Scratch {
            patterns,
            paired,
            walk_cache,
            page,
            rest,
        } = scratch;
        page.found.clear();
        page.ends.clear();
        for pair in lines.chunks(2) {
            let walked = match (pair, &self.walk, &mut *walk_cache) {
                (&[a, b], Some(walk), Some(cache)) => {
                    patterns.clear();
                    paired.clear();
                    let hay = [a.as_bytes(), b.as_bytes()];
                    walk.scan_pair(cache, hay, [&mut *patterns, &mut *paired])
                        .is_ok()
                }
                _ => false,
            };
            for (k, line) in pair.iter().enumerate() {
                let set = if k == 0 { &mut *patterns } else { &mut *paired };
                if !walked {
                    self.scan_line(line, set, rest);
                }
                page.found.extend(set.iter());
                page.ends.push(page.found.len());
            }
        }
    }

    /// [`Matcher::first_match`] of `s`, whose line is line `i` of the page last given to
    /// [`Matcher::scan_page`] (which [`super::ScannedPage`] guarantees).
    pub(super) fn first_match_scanned(
        &self,
        rules: &[Rule],
        s: &Subject<'_>,
        i: usize,
        scratch: &mut Scratch,
    ) -> Option<usize> {
        let Scratch {
            patterns,
            page,
            rest,
            ..
        } = scratch;
        patterns.clear();
        let start = if i == 0 { 0 } else { page.ends[i - 1] };
        for &id in &page.found[start..page.ends[i]] {
            patterns.insert(id);
        }
        self.finish(rules, s, patterns, rest)
    }

    /// The set's patterns that match `line`, into `patterns` (cleared first).
    fn scan_line(&self, line: &str, patterns: &mut PatternSet, rest: &mut Rest) {
        patterns.clear();
        if let (Some(set), Some(cache)) = (&self.set, rest.cache.as_mut()) {
            set.which_overlapping_matches_with(cache, &Input::new(line), patterns);
        }
    }

    /// The first rule `s` satisfies, given the set's `patterns` that match its line.
    fn finish(
        &self,
        rules: &[Rule],
        s: &Subject<'_>,
        patterns: &mut PatternSet,
        rest: &mut Rest,
    ) -> Option<usize> {
        let Rest {
            cache,
            edge_cache,
            edge_patterns,
            pattern_hits,
            keyword_hits,
        } = rest;
        pattern_hits.fill(0);
        keyword_hits.fill(0);
        if let (Some(set), Some(cache)) = (&self.set, cache.as_mut()) {
            for part in s.parts {
                if patterns.is_full() {
                    break;
                }
                match within(s.line, part) {
                    Within::Whole => {}
                    // A pattern without assertions that matches the part matches any text
                    // containing it, so the line's scan found it: only the patterns with
                    // assertions that have not matched yet are left to try.
                    Within::Slice => self.scan_edges(part, patterns, edge_cache, edge_patterns),
                    Within::Apart => {
                        set.which_overlapping_matches_with(cache, &Input::new(part), patterns);
                    }
                }
            }
            for id in patterns.iter() {
                match self.set_targets[id.as_usize()] {
                    Target::Pattern(i) => set_bit(pattern_hits, i),
                    Target::Keyword(i) => set_bit(keyword_hits, i),
                }
            }
        }
        if let Some(ac) = &self.keywords {
            // Keywords are plain text: a part the line holds cannot add one.
            let apart = s
                .parts
                .iter()
                .filter(|p| within(s.line, p) == Within::Apart);
            for h in std::iter::once(&s.line).chain(apart) {
                for m in ac.find_overlapping_iter(*h) {
                    set_bit(keyword_hits, self.keyword_rules[m.pattern().as_usize()]);
                }
            }
        }
        let words = pattern_hits.iter().zip(keyword_hits.iter());
        for (w, (p, k)) in words.enumerate() {
            let mut any = p | k;
            while any != 0 {
                let bit = any.trailing_zeros() as usize;
                any &= any - 1;
                let i = w * 64 + bit;
                let rule = &rules[i];
                let pattern_ok = rule.pattern.is_none() || p & (1 << bit) != 0;
                let keywords_ok = rule.keywords.is_empty() || k & (1 << bit) != 0;
                if pattern_ok && keywords_ok && passes_filters(rule, s) {
                    return Some(i);
                }
            }
        }
        None
    }
}

impl Matcher {
    /// Adds the patterns with assertions that match `part` to `patterns`.
    fn scan_edges(
        &self,
        part: &str,
        patterns: &mut PatternSet,
        edge_cache: &mut Option<Cache>,
        edge_patterns: &mut PatternSet,
    ) {
        let (Some(edges), Some(cache)) = (&self.edges, edge_cache.as_mut()) else {
            return;
        };
        let missing = self
            .edge_ids
            .iter()
            .any(|&i| !patterns.contains(PatternID::new_unchecked(i)));
        if !missing {
            return;
        }
        edge_patterns.clear();
        edges.which_overlapping_matches_with(cache, &Input::new(part), edge_patterns);
        for id in edge_patterns.iter() {
            let _ = patterns.try_insert(PatternID::new_unchecked(self.edge_ids[id.as_usize()]));
        }
    }
}

/// One multi-pattern regex reporting every pattern that matches: `MatchKind::All`, and no
/// capture groups (only which patterns match is asked for, never where), as
/// `regex::RegexSet` builds it.
fn set_builder() -> regex_automata::meta::Builder {
    let mut b = Regex::builder();
    b.configure(
        Regex::config()
            .match_kind(MatchKind::All)
            .which_captures(WhichCaptures::None)
            // Every error line holds some rule's literal ("error"), so a prefilter only adds a
            // second scan: 567 against 806 ns per line of the benchmark's corpus.
            .auto_prefilter(false),
    );
    b
}

/// Whether `pattern` uses an assertion (`^`, `$`, `\b`, `\B`, ...).
fn has_assertions(pattern: &str) -> bool {
    regex_syntax::parse(pattern).map_or(true, |h| !h.properties().look_set().is_empty())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Within {
    /// The part is the whole line.
    Whole,
    /// The part is a slice of the line (the usual case: extraction borrows).
    Slice,
    /// The part is text of its own (unescaped).
    Apart,
}

/// Where `part` lies: by address, which is what extraction's borrowing guarantees; an
/// unescaped part that happens to equal some text of the line is scanned on its own, which
/// costs time but never changes the answer.
fn within(line: &str, part: &str) -> Within {
    let l = line.as_bytes().as_ptr_range();
    let p = part.as_bytes().as_ptr_range();
    if l == p {
        Within::Whole
    } else if l.start <= p.start && p.end <= l.end {
        Within::Slice
    } else {
        Within::Apart
    }
}

fn set_bit(bits: &mut [u64], i: usize) {
    bits[i / 64] |= 1 << (i % 64);
}

fn passes_filters(rule: &Rule, s: &Subject<'_>) -> bool {
    rule.namespaces.passes(s.namespace)
        && rule
            .labels
            .iter()
            .all(|(key, test)| test.passes(s.labels.get(key)))
}
