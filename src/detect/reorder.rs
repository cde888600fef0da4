//! The reorder buffer: holds reads until no earlier one can still arrive (the watermark, newest
//! event time minus `lateness`), then hands them out in event-time order. This is what makes the
//! detector's result independent of arrival order within the allowed lateness.

use crate::intern::Id;
use crate::time::{Micros, Ts};
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// A read waiting for the watermark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferedRead {
    pub ts: Ts,
    /// Arrival number: keeps the heap order total. Never decides the detector's order, which
    /// sorts reads of equal time by name (see `Detector::release`).
    pub seq: u64,
    pub table: Id,
    pub principal: Id,
}

impl Ord for BufferedRead {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.ts, self.seq).cmp(&(other.ts, other.seq))
    }
}

impl PartialOrd for BufferedRead {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Reads in a min-heap by time, and the watermark that releases them.
#[derive(Debug, Clone)]
pub struct ReorderBuffer {
    heap: BinaryHeap<Reverse<BufferedRead>>,
    lateness: Micros,
    next_seq: u64,
    newest: Option<Ts>,
    /// A floor for the watermark set from outside (e.g. by `exposure learn` state).
    floor: Option<Ts>,
}

impl ReorderBuffer {
    pub fn new(lateness: Micros) -> ReorderBuffer {
        ReorderBuffer {
            heap: BinaryHeap::new(),
            lateness,
            next_seq: 0,
            newest: None,
            floor: None,
        }
    }

    /// Events before the watermark are late: every read before it has been released.
    #[inline]
    pub fn watermark(&self) -> Option<Ts> {
        let from_events = self.newest.map(|t| t - self.lateness);
        match (from_events, self.floor) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// Raises the watermark to at least `floor`.
    pub fn raise_floor(&mut self, floor: Ts) {
        self.floor = Some(self.floor.map_or(floor, |f| f.max(floor)));
    }

    /// The newest event time seen.
    pub fn newest(&self) -> Option<Ts> {
        self.newest
    }

    /// Records that an event at `ts` was seen (reads and non-reads alike move the watermark).
    #[inline]
    pub fn note(&mut self, ts: Ts) {
        if self.newest.is_none_or(|n| ts > n) {
            self.newest = Some(ts);
        }
    }

    #[inline]
    pub fn push(&mut self, ts: Ts, table: Id, principal: Id) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Reverse(BufferedRead {
            ts,
            seq,
            table,
            principal,
        }));
    }

    /// The earliest buffered read's time.
    #[inline]
    pub fn earliest(&self) -> Option<Ts> {
        self.heap.peek().map(|r| r.0.ts)
    }

    /// Takes the earliest buffered read if its time is `ts`.
    #[inline]
    pub fn pop_at(&mut self, ts: Ts) -> Option<BufferedRead> {
        if self.earliest() == Some(ts) {
            self.heap.pop().map(|r| r.0)
        } else {
            None
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_in_time_order_and_moves_the_watermark() {
        let mut buf = ReorderBuffer::new(10);
        assert_eq!(buf.watermark(), None);
        for (ts, p) in [(100, 0), (95, 1), (103, 2)] {
            buf.note(ts);
            buf.push(ts, 0, p);
        }
        assert_eq!(buf.watermark(), Some(93));
        assert_eq!(buf.earliest(), Some(95));
        assert_eq!(buf.pop_at(100), None);
        assert_eq!(buf.pop_at(95).map(|r| r.principal), Some(1));
        assert_eq!(buf.pop_at(100).map(|r| r.principal), Some(0));
        buf.raise_floor(200);
        assert_eq!(buf.watermark(), Some(200));
    }
}
