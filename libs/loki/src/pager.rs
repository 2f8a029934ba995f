//! Reading every line exactly once (research/sentinel.md §2, logcli's batching, keyed on the
//! stream's labels too).
//!
//! Each poll reads the window `[from, end)` forward in pages of `limit` lines. A page that
//! comes back full continues from its last timestamp (inclusive: Loki's `start` is), and the
//! lines already delivered at that timestamp are recognised by their identity, a SHA-256 of
//! `(timestamp, labels, line)`: identical lines in two streams, or twice in one stream at
//! different times, are different lines. When a window is done the next one starts
//! `overlap` before its end, so that a line Loki ingests late, with a timestamp up to
//! `overlap` in the past, is still read; the identities of the lines inside the overlap are
//! kept to skip the ones already delivered. The cursor (`from` and those identities) is the
//! checkpoint: saved with what the lines counted, it resumes after a restart without losing
//! or repeating a line.
//!
//! A page full of lines that all share one timestamp cannot be paged past by time; it is
//! read again with Loki's largest limit, and if even that is full the poll stops with
//! [`PageError::Saturated`] rather than skip lines silently.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::client::{Client, Direction, Entry, Error};

/// Loki's default `max_entries_limit_per_query`: a larger limit is refused.
pub const MAX_LIMIT: u32 = 5000;

/// A line's identity: the first 16 bytes of the SHA-256 of its timestamp, labels and text.
pub type LineId = u128;

/// The identity of `e`.
pub fn line_id(e: &Entry) -> LineId {
    let mut h = Sha256::new();
    h.update(e.ts_ns.to_be_bytes());
    for (k, v) in e.labels.iter() {
        // Lengths first, so that no two label sets write the same bytes.
        h.update((k.len() as u64).to_be_bytes());
        h.update(k.as_bytes());
        h.update((v.len() as u64).to_be_bytes());
        h.update(v.as_bytes());
    }
    h.update(b"\0");
    h.update(e.line.as_bytes());
    let d = h.finalize();
    let mut first = [0u8; 16];
    first.copy_from_slice(&d[..16]);
    u128::from_be_bytes(first)
}

/// Where reading resumes, and the lines at or after it that were already delivered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The next window starts here (inclusive).
    pub from_ns: i64,
    /// Lines delivered with a timestamp at or after `from_ns`, by timestamp.
    seen: BTreeMap<i64, HashSet<LineId>>,
}

impl Cursor {
    /// A cursor that starts reading at `from_ns`, having delivered nothing.
    pub fn new(from_ns: i64) -> Self {
        Self {
            from_ns,
            seen: BTreeMap::new(),
        }
    }

    /// Whether `e` is new; a new line is remembered. Returns its identity when it is new.
    pub fn admit(&mut self, e: &Entry) -> Option<LineId> {
        if e.ts_ns < self.from_ns {
            // Older than the window: Loki would not return it; never count it.
            return None;
        }
        let id = line_id(e);
        self.seen
            .entry(e.ts_ns)
            .or_default()
            .insert(id)
            .then_some(id)
    }

    /// Forgets lines admitted but not counted (their page could not be saved).
    fn forget(&mut self, lines: &[(&Entry, LineId)]) {
        for (e, id) in lines {
            if let Some(ids) = self.seen.get_mut(&e.ts_ns) {
                ids.remove(id);
                if ids.is_empty() {
                    self.seen.remove(&e.ts_ns);
                }
            }
        }
    }

    /// Lines remembered.
    pub fn remembered(&self) -> usize {
        self.seen.values().map(HashSet::len).sum()
    }

    /// Moves the next window's start to `from_ns` (never back), forgetting older lines.
    pub fn advance(&mut self, from_ns: i64) {
        if from_ns > self.from_ns {
            self.from_ns = from_ns;
            self.seen = self.seen.split_off(&from_ns);
        }
    }
}

/// Why a window could not be read whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    #[error(transparent)]
    Loki(#[from] Error),
    #[error(
        "more than {MAX_LIMIT} lines share the timestamp {ts_ns}: they cannot be paged by time; \
         narrow the query"
    )]
    Saturated { ts_ns: i64 },
    /// The caller could not keep a page (its store failed); the page's lines are forgotten,
    /// so the next poll reads them again.
    #[error("cannot save what was read: {0}")]
    Sink(String),
}

/// What one window read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowStats {
    pub pages: u32,
    /// Lines Loki returned, and those among them that were new.
    pub returned: u64,
    pub delivered: u64,
    pub bytes: u64,
}

/// What to read in one poll.
#[derive(Debug, Clone, Copy)]
pub struct Window<'a> {
    /// A LogQL log query.
    pub query: &'a str,
    /// The window ends here (exclusive); it starts at the cursor.
    pub end_ns: i64,
    /// How far back of `end_ns` the next window starts.
    pub overlap_ns: i64,
    /// Lines per page (at most [`MAX_LIMIT`]).
    pub limit: u32,
}

/// Reads `[cursor.from_ns, end_ns)` of the query in pages, hands each page's new lines (with
/// their identities) to `deliver` in timestamp order, then moves the cursor to
/// `end_ns - overlap_ns`.
///
/// `page_done` runs after each page with the cursor, so that the caller can save it with
/// what it counted: a crash mid-window then repeats nothing, since lines re-read after a
/// restart are recognised. When it fails, the page's lines are forgotten by the cursor and the
/// window stops with [`PageError::Sink`].
pub async fn read_window(
    client: &Client,
    window: Window<'_>,
    cursor: &mut Cursor,
    mut deliver: impl FnMut(&[(&Entry, LineId)]),
    mut page_done: impl AsyncFnMut(&Cursor) -> Result<(), String>,
) -> Result<WindowStats, PageError> {
    let Window {
        query,
        end_ns,
        overlap_ns,
        limit,
    } = window;
    let mut stats = WindowStats::default();
    let mut start = cursor.from_ns;
    let mut page_limit = limit.clamp(1, MAX_LIMIT);
    while start < end_ns {
        let entries = client
            .query_range(query, start, end_ns, page_limit, Direction::Forward)
            .await?;
        stats.pages += 1;
        stats.returned += entries.len() as u64;
        let mut admitted = Vec::new();
        for e in &entries {
            if let Some(id) = cursor.admit(e) {
                admitted.push((e, id));
                stats.delivered += 1;
                stats.bytes += e.line.len() as u64;
            }
        }
        deliver(&admitted);
        if let Err(e) = page_done(cursor).await {
            cursor.forget(&admitted);
            return Err(PageError::Sink(e));
        }
        if entries.len() < page_limit as usize {
            break;
        }
        let last = entries.last().map_or(start, |e| e.ts_ns);
        if last == start {
            if page_limit == MAX_LIMIT {
                return Err(PageError::Saturated { ts_ns: last });
            }
            // Every line of the page has one timestamp: read it again whole.
            page_limit = MAX_LIMIT;
            continue;
        }
        start = last;
        page_limit = limit.clamp(1, MAX_LIMIT);
    }
    cursor.advance(end_ns.saturating_sub(overlap_ns));
    Ok(stats)
}

#[cfg(test)]
mod tests;
