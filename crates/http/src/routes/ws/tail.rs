//! Tailing the event log by `seq`, without losing events that commit out of order.
//!
//! On PostgreSQL `events.seq` is taken from a sequence when a row is inserted, not when its
//! transaction commits: a transaction holding seq 10 may commit after one holding seq 11, so a
//! reader that has already read 11 and asks for "after 11" never sees 10. Seqs are also skipped
//! for good when a transaction rolls back. The reader cannot tell the two apart when it sees a
//! hole, so [`EventTail`] remembers every hole below its cursor (a *gap*) for
//! [`EventTail::GAP_TIMEOUT`]: each round re-reads the gaps (grouped into small windows, one
//! indexed query each) and delivers what has committed meanwhile, late. A gap still empty after
//! the timeout was a rollback, or a transaction slower than any Baton writes, and is forgotten.
//! At most [`EventTail::MAX_GAPS`] gaps are kept; beyond that the oldest are forgotten first.
//!
//! On SQLite writers are serialised and commits happen in seq order, so no gap ever opens.
//!
//! This type holds the bookkeeping only; [`super::feeds`] runs the queries.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use baton_domain::event::Event;

/// The read position in the event log, and the holes below it still worth waiting for.
#[derive(Debug)]
pub struct EventTail {
    /// The highest seq read so far.
    cursor: i64,
    /// Seqs below the cursor not read yet, with when each was first noticed missing.
    gaps: BTreeMap<i64, Instant>,
}

/// One query that re-reads some gaps: the events with `seq > after`, at most `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GapWindow {
    pub after: i64,
    pub limit: u32,
}

impl EventTail {
    /// How long a hole in the log is waited for. Baton's transactions insert their events last
    /// and commit at once, so a late commit is milliseconds late; ten seconds covers a database
    /// stalled on a slow disk while keeping the re-reading of rolled-back seqs short.
    pub const GAP_TIMEOUT: Duration = Duration::from_secs(10);
    /// The most holes remembered at once.
    pub const MAX_GAPS: usize = 1024;
    /// The widest seq range one re-reading query covers: gaps closer together than this share
    /// a query, so a cluster of holes near the head costs one small indexed read per round.
    pub const WINDOW: i64 = 256;

    /// A tail that delivers the events after `seq` (the log's latest seq when a server starts:
    /// live feeds show what happens from now on).
    pub fn starting_after(seq: i64) -> Self {
        Self {
            cursor: seq,
            gaps: BTreeMap::new(),
        }
    }

    /// The highest seq read so far: the next read asks for the events after it.
    pub fn cursor(&self) -> i64 {
        self.cursor
    }

    /// How many holes are being waited for.
    pub fn open_gaps(&self) -> usize {
        self.gaps.len()
    }

    /// Takes the events read after the cursor, in seq order, and returns those to deliver
    /// (all of them, unless the read returned something at or below the cursor). Holes between
    /// them become gaps noticed at `now`.
    pub fn advance(&mut self, events: Vec<Event>, now: Instant) -> Vec<Event> {
        let mut fresh = Vec::with_capacity(events.len());
        for event in events {
            if event.seq <= self.cursor {
                // Only a gap re-read delivers below the cursor; see `fill`.
                continue;
            }
            // Only the last MAX_GAPS seqs of a huge jump are worth remembering.
            let first_missing = (self.cursor + 1).max(event.seq - Self::MAX_GAPS as i64);
            for seq in first_missing..event.seq {
                self.gaps.insert(seq, now);
            }
            self.cursor = event.seq;
            fresh.push(event);
        }
        while self.gaps.len() > Self::MAX_GAPS {
            self.gaps.pop_first();
        }
        fresh
    }

    /// The queries that re-read every open gap: consecutive gaps less than
    /// [`EventTail::WINDOW`] apart share one. A window's reply holds its gaps' events if they
    /// have committed, and possibly events read before, which [`EventTail::fill`] skips.
    pub fn gap_windows(&self) -> Vec<GapWindow> {
        let mut windows = Vec::new();
        let mut current: Option<(i64, i64)> = None;
        for &seq in self.gaps.keys() {
            current = match current {
                Some((first, _)) if seq - first < Self::WINDOW => Some((first, seq)),
                Some((first, last)) => {
                    windows.push(window(first, last));
                    Some((seq, seq))
                }
                None => Some((seq, seq)),
            };
        }
        if let Some((first, last)) = current {
            windows.push(window(first, last));
        }
        windows
    }

    /// Takes events re-read for gaps and returns those that fill one: they committed late and
    /// are delivered now, after events with higher seqs.
    pub fn fill(&mut self, events: Vec<Event>) -> Vec<Event> {
        events
            .into_iter()
            .filter(|event| self.gaps.remove(&event.seq).is_some())
            .collect()
    }

    /// Forgets the gaps noticed more than [`EventTail::GAP_TIMEOUT`] before `now`; returns how
    /// many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let before = self.gaps.len();
        self.gaps
            .retain(|_, noticed| now.saturating_duration_since(*noticed) <= Self::GAP_TIMEOUT);
        before - self.gaps.len()
    }

    /// Moves the cursor to `seq` and forgets every gap: used while nobody listens, so that the
    /// first client to come gets what happens from then on without a backlog being read.
    pub fn skip_to(&mut self, seq: i64) {
        self.cursor = self.cursor.max(seq);
        self.gaps.clear();
    }
}

fn window(first: i64, last: i64) -> GapWindow {
    GapWindow {
        after: first - 1,
        // A window spans fewer than WINDOW seqs, so this always fits.
        limit: u32::try_from(last - first + 1).unwrap_or(u32::MAX),
    }
}

#[cfg(test)]
mod tests {
    use baton_domain::event::EventType;
    use baton_domain::ids::EventId;

    use super::*;

    fn event(seq: i64) -> Event {
        let mut event = Event::new(
            EventId::from_uuid(uuid::Uuid::nil()),
            EventType::JobCreated,
            "Job queued",
            time::OffsetDateTime::UNIX_EPOCH,
        );
        event.seq = seq;
        event
    }

    fn seqs(events: &[Event]) -> Vec<i64> {
        events.iter().map(|e| e.seq).collect()
    }

    fn events(seqs: &[i64]) -> Vec<Event> {
        seqs.iter().copied().map(event).collect()
    }

    #[test]
    fn consecutive_events_are_delivered_and_open_no_gap() {
        let now = Instant::now();
        let mut tail = EventTail::starting_after(4);
        assert_eq!(seqs(&tail.advance(events(&[5, 6, 7]), now)), [5, 6, 7]);
        assert_eq!(tail.cursor(), 7);
        assert_eq!(tail.open_gaps(), 0);
        assert!(tail.gap_windows().is_empty());
        assert!(
            tail.advance(events(&[6, 7]), now).is_empty(),
            "nothing is delivered twice"
        );
    }

    #[test]
    fn an_event_that_commits_late_is_delivered_late_once() {
        let now = Instant::now();
        let mut tail = EventTail::starting_after(9);
        // Seq 10 is still uncommitted when 11 and 12 are read.
        assert_eq!(seqs(&tail.advance(events(&[11, 12]), now)), [11, 12]);
        assert_eq!(tail.open_gaps(), 1);
        assert_eq!(tail.gap_windows(), [GapWindow { after: 9, limit: 1 }]);
        // Not committed yet: the re-read finds the next event only.
        assert!(tail.fill(events(&[11])).is_empty());
        // Committed now.
        assert_eq!(seqs(&tail.fill(events(&[10]))), [10]);
        assert_eq!(tail.open_gaps(), 0);
        assert!(tail.fill(events(&[10])).is_empty(), "delivered once");
    }

    #[test]
    fn nearby_gaps_share_a_window_and_distant_ones_do_not() {
        let now = Instant::now();
        let mut tail = EventTail::starting_after(0);
        tail.advance(events(&[2, 5, 6, 400]), now);
        // Gaps: 1, 3, 4, then 7..=399.
        assert_eq!(tail.open_gaps(), 3 + 393);
        let windows = tail.gap_windows();
        assert_eq!(
            windows[0],
            GapWindow {
                after: 0,
                limit: 256
            },
            "seqs 1..=256 in one query"
        );
        assert_eq!(
            windows[1],
            GapWindow {
                after: 256,
                limit: 143
            }
        );
        assert_eq!(windows.len(), 2);
    }

    #[test]
    fn gaps_are_forgotten_after_the_timeout() {
        let start = Instant::now();
        let mut tail = EventTail::starting_after(0);
        tail.advance(events(&[2]), start);
        let later = start + Duration::from_secs(5);
        tail.advance(events(&[4]), later);
        assert_eq!(tail.open_gaps(), 2);
        assert_eq!(tail.expire(later), 0);
        assert_eq!(
            tail.expire(start + EventTail::GAP_TIMEOUT + Duration::from_secs(1)),
            1
        );
        assert_eq!(tail.gap_windows(), [GapWindow { after: 2, limit: 1 }]);
    }

    #[test]
    fn only_the_most_recent_gaps_are_kept() {
        let now = Instant::now();
        let mut tail = EventTail::starting_after(0);
        tail.advance(events(&[1_000_000]), now);
        assert_eq!(tail.open_gaps(), EventTail::MAX_GAPS);
        let first = tail.gap_windows()[0];
        assert_eq!(first.after, 1_000_000 - EventTail::MAX_GAPS as i64 - 1);
    }

    #[test]
    fn skipping_ahead_forgets_gaps_and_never_moves_back() {
        let now = Instant::now();
        let mut tail = EventTail::starting_after(0);
        tail.advance(events(&[3]), now);
        tail.skip_to(10);
        assert_eq!((tail.cursor(), tail.open_gaps()), (10, 0));
        tail.skip_to(5);
        assert_eq!(tail.cursor(), 10);
    }
}
