//! The rule set's lazy DFA, walked by hand over two lines at once.
//!
//! Why this exists (measured with `cargo bench -p sentinel --bench detect`, one core, the
//! benchmark's corpus of 155-byte lines and the default rules): a DFA scan is a chain of
//! dependent loads, one per byte (the next state is read from the table at the current
//! one), so a line's scan waits on the load's latency, about 2.5 ns per byte here whatever
//! the table's size. Two lines walked in step are two chains the core overlaps. The meta
//! regex's overlapping search took 415 ns per line, a walk by hand over one line 391 ns, this
//! walk over pairs 253 ns; three or four lines in step, or lanes refilled as their lines end,
//! did no better (256-276 ns). Detection scans a page's lines this way before anything else
//! ([`super::Matcher::scan_page`]), so that the DFA's states stay in the cache between pairs:
//! with the walk the pipeline went from 0.85 to 0.95 M lines/s, with the page first to 1.0 M.
//!
//! Only the loop is ours: the patterns, their compilation and the states are
//! `regex-automata`'s lazy DFA, built with the same patterns and match kind as the meta
//! regex. Whatever the loop does not handle (a DFA that cannot be built, a pattern that
//! matches the empty string, a quit byte under a Unicode word boundary, the state cache
//! cleared mid-walk, which would leave the other line's state stale) gives no walk or
//! [`Fallback`], and the caller asks the meta regex instead. Two state ids live at once in
//! one cache: the lazy DFA keeps a state's id until the cache is cleared, which is checked
//! after every call that may build a state.
//! `tests::pairs_agree_with_the_set` holds the walk to the meta regex.

use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::hybrid::{CacheError, LazyStateID};
use regex_automata::nfa::thompson::{self, WhichCaptures};
use regex_automata::util::start;
use regex_automata::{MatchKind, PatternSet};

/// The set's lazy DFA, every pattern reported where it matches (`MatchKind::All`).
#[derive(Debug, Clone)]
pub(super) struct Walk {
    dfa: DFA,
}

/// The walk cannot answer for these lines: ask the meta regex.
#[derive(Debug)]
pub(super) struct Fallback;

impl Walk {
    /// The DFA over `patterns`, or `None` when it cannot be built (the meta regex then does
    /// every scan).
    pub(super) fn new(patterns: &[String]) -> Option<Self> {
        Self::with_config(patterns, DFA::config())
    }

    fn with_config(
        patterns: &[String],
        config: regex_automata::hybrid::dfa::Config,
    ) -> Option<Self> {
        DFA::builder()
            .configure(
                config
                    .match_kind(MatchKind::All)
                    // Non-ASCII bytes quit under a Unicode `\b`: those lines fall back.
                    .unicode_word_boundary(true),
            )
            .thompson(thompson::Config::new().which_captures(WhichCaptures::None))
            .build_many(patterns)
            .ok()
            // A pattern that matches the empty string can match between the bytes of a
            // character, which the meta regex does not report and this loop would.
            .filter(|dfa| !dfa.get_nfa().has_empty())
            .map(|dfa| Self { dfa })
    }

    /// The walk with a state cache too small to hold the DFA, so that it is cleared often.
    #[cfg(test)]
    pub(super) fn with_tiny_cache(patterns: &[String]) -> Option<Self> {
        let config = DFA::config()
            .cache_capacity(1 << 16)
            .skip_cache_capacity_check(true);
        Self::with_config(patterns, config)
    }

    pub(super) fn create_cache(&self) -> Cache {
        self.dfa.create_cache()
    }

    /// Adds the patterns that match anywhere in `a` to `found_a`, and in `b` to `found_b`.
    /// After `Err` the sets may hold part of the answer.
    pub(super) fn scan_pair(
        &self,
        cache: &mut Cache,
        [a, b]: [&[u8]; 2],
        [found_a, found_b]: [&mut PatternSet; 2],
    ) -> Result<(), Fallback> {
        let clears = cache.clear_count();
        let first = self
            .dfa
            .start_state(cache, &start::Config::new())
            .map_err(|_| Fallback)?;
        let (mut sa, mut sb) = (first, first);
        let both = a.len().min(b.len());
        for (&byte_a, &byte_b) in a[..both].iter().zip(&b[..both]) {
            sa = self.step(cache, sa, byte_a, clears)?;
            sb = self.step(cache, sb, byte_b, clears)?;
            if sa.is_tagged() || sb.is_tagged() {
                self.report(cache, sa, found_a)?;
                self.report(cache, sb, found_b)?;
            }
        }
        for (mut sid, rest, found) in [(sa, &a[both..], found_a), (sb, &b[both..], found_b)] {
            for &byte in rest {
                sid = self.step(cache, sid, byte, clears)?;
                if sid.is_tagged() {
                    self.report(cache, sid, found)?;
                }
            }
            let eoi = self.dfa.next_eoi_state(cache, sid);
            sid = unchanged(cache, clears, eoi)?;
            self.report(cache, sid, found)?;
        }
        Ok(())
    }

    /// The state after `byte`. `clears` is the cache's clear count when the walk began: a
    /// state built here may clear the cache, which leaves the other line's state stale.
    #[inline(always)]
    fn step(
        &self,
        cache: &mut Cache,
        sid: LazyStateID,
        byte: u8,
        clears: usize,
    ) -> Result<LazyStateID, Fallback> {
        if !sid.is_tagged() {
            let next = self.dfa.next_state_untagged(cache, sid, byte);
            if !next.is_unknown() {
                return Ok(next);
            }
        }
        let next = self.dfa.next_state(cache, sid, byte);
        unchanged(cache, clears, next)
    }

    /// Adds the patterns `sid` reports (a match state: those that matched just before).
    fn report(
        &self,
        cache: &Cache,
        sid: LazyStateID,
        found: &mut PatternSet,
    ) -> Result<(), Fallback> {
        if sid.is_match() {
            for i in 0..self.dfa.match_len(cache, sid) {
                found.insert(self.dfa.match_pattern(cache, sid, i));
            }
        } else if sid.is_quit() {
            return Err(Fallback);
        }
        Ok(())
    }
}

/// The state a call that may build states gave, while the cache has not been cleared since
/// the walk began (`clears`): a clear leaves the other line's state stale.
fn unchanged(
    cache: &Cache,
    clears: usize,
    next: Result<LazyStateID, CacheError>,
) -> Result<LazyStateID, Fallback> {
    let next = next.map_err(|_| Fallback)?;
    if cache.clear_count() != clears {
        return Err(Fallback);
    }
    Ok(next)
}
