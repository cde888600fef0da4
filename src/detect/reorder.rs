//! The reorder buffer: holds reads until no earlier one can still arrive (the watermark, newest
//! event time minus `lateness`), then hands them out in event-time order. This is what makes the
//! detector's result independent of arrival order within the allowed lateness.
//!
//! Reads leave in time order and every read that enters is at or after the watermark, so keys
//! only ever grow: a radix heap (a monotone priority queue) does the job with O(1) pushes and
//! cheap pops, where a binary heap would sift through thousands of reads for each one. Peeking
//! can move the heap's base past the watermark; a read that then arrives between the two (older
//! than everything buffered, yet not late) waits in a small binary heap that drains first.
//! Reads that arrive in order (the common case: one shipper, or a sorted archive) skip both and
//! queue in a plain FIFO run.

use crate::intern::{PrincipalId, TableId};
use crate::time::{Micros, Ts};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// A read waiting for the watermark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct BufferedRead {
    pub ts: Ts,
    pub table: TableId,
    pub principal: PrincipalId,
}

/// Order-preserving map of a timestamp onto `u64`.
#[inline]
fn key(ts: Ts) -> u64 {
    (ts as u64) ^ (1 << 63)
}

/// Reads in a radix heap by time, and the watermark that releases them.
#[derive(Debug, Clone)]
pub struct ReorderBuffer {
    /// `buckets[0]` holds reads at `last`; `buckets[b]` reads whose key differs from `key(last)`
    /// first in bit `b - 1` (counting from the least significant).
    buckets: Vec<Vec<BufferedRead>>,
    /// Bit `b` set when `buckets[b]` is not empty.
    occupied: u128,
    /// The time all buckets are relative to: at or before every buffered read.
    last: Ts,
    /// Reads older than `last` (hence older than every read in `buckets`).
    underflow: BinaryHeap<Reverse<BufferedRead>>,
    /// Reads in `buckets`.
    radix_len: usize,
    /// Reads that arrived in time order.
    run: VecDeque<BufferedRead>,
    len: usize,
    lateness: Micros,
    /// When set, only `raise_floor` moves the watermark (the source knows better than
    /// `lateness`, e.g. from Parquet statistics).
    external: bool,
    newest: Option<Ts>,
    /// A floor for the watermark set from outside (wall clock in `watch`).
    floor: Option<Ts>,
}

impl ReorderBuffer {
    pub fn new(lateness: Micros) -> ReorderBuffer {
        ReorderBuffer {
            buckets: vec![Vec::new(); 65],
            occupied: 0,
            last: Ts::MIN,
            underflow: BinaryHeap::new(),
            radix_len: 0,
            run: VecDeque::new(),
            len: 0,
            lateness,
            external: false,
            newest: None,
            floor: None,
        }
    }

    /// Lets only [`ReorderBuffer::raise_floor`] move the watermark from now on.
    pub fn use_external_watermark(&mut self) {
        self.external = true;
    }

    /// Events before the watermark are late: every read before it has been released.
    #[inline]
    pub fn watermark(&self) -> Option<Ts> {
        if self.external {
            return self.floor;
        }
        let from_events = self.newest.map(|t| t.saturating_sub(self.lateness));
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
    fn bucket_of(&self, ts: Ts) -> usize {
        let diff = key(ts) ^ key(self.last);
        (64 - diff.leading_zeros()) as usize
    }

    /// Buffers a read. The caller pushes only reads at or after the watermark, so never one
    /// older than a read already handed out.
    #[inline]
    pub fn push(&mut self, ts: Ts, table: TableId, principal: PrincipalId) {
        let read = BufferedRead {
            ts,
            table,
            principal,
        };
        self.len += 1;
        if self.run.back().is_none_or(|back| ts >= back.ts) {
            self.run.push_back(read);
        } else if ts < self.last {
            self.underflow.push(Reverse(read));
        } else {
            let bucket = self.bucket_of(ts);
            self.buckets[bucket].push(read);
            self.occupied |= 1 << bucket;
            self.radix_len += 1;
        }
    }

    /// The earliest read in the radix heap, after moving the reads at that time into bucket 0.
    #[inline]
    fn radix_earliest(&mut self) -> Option<Ts> {
        if self.radix_len == 0 {
            return None;
        }
        if self.occupied & 1 == 0 {
            let b = self.occupied.trailing_zeros() as usize;
            let mut moving = std::mem::take(&mut self.buckets[b]);
            self.occupied &= !(1 << b);
            self.last = moving.iter().map(|r| r.ts).min().expect("not empty");
            for read in &moving {
                let bucket = self.bucket_of(read.ts);
                self.buckets[bucket].push(*read);
                self.occupied |= 1 << bucket;
            }
            // Keep the emptied bucket's allocation for reuse (nothing moves back up into it).
            moving.clear();
            self.buckets[b] = moving;
        }
        Some(self.last)
    }

    /// The earliest buffered read's time.
    #[inline]
    pub fn earliest(&mut self) -> Option<Ts> {
        let run = self.run.front().map(|r| r.ts);
        if self.radix_len == 0 && self.underflow.is_empty() {
            return run;
        }
        let other = match self.underflow.peek() {
            // Underflow reads are older than every radix read.
            Some(Reverse(read)) => Some(read.ts),
            None => self.radix_earliest(),
        };
        match (run, other) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Takes all buffered reads at the earliest time, appending them to `out`; returns that time.
    #[inline]
    pub fn pop_earliest(&mut self, out: &mut Vec<BufferedRead>) -> Option<Ts> {
        let ts = self.earliest()?;
        let before = out.len();
        while let Some(Reverse(read)) = self.underflow.peek() {
            if read.ts != ts {
                break;
            }
            out.push(*read);
            self.underflow.pop();
        }
        if self.underflow.is_empty() && self.radix_earliest() == Some(ts) {
            self.radix_len -= self.buckets[0].len();
            out.append(&mut self.buckets[0]);
            self.occupied &= !1;
        }
        while let Some(read) = self.run.front() {
            if read.ts != ts {
                break;
            }
            out.push(*read);
            self.run.pop_front();
        }
        self.len -= out.len() - before;
        Some(ts)
    }

    /// The read `distance` places into the in-order run, if there is one: what will most
    /// likely be applied soon (a hint for prefetching, not an order).
    #[inline]
    pub fn queued_ahead(&self, distance: usize) -> Option<&BufferedRead> {
        self.run.get(distance)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Every buffered read, in no particular order (for checkpoints).
    pub fn iter(&self) -> impl Iterator<Item = &BufferedRead> + '_ {
        self.underflow
            .iter()
            .map(|Reverse(read)| read)
            .chain(self.buckets.iter().flatten())
            .chain(self.run.iter())
    }

    /// The floor raised from outside, if any.
    pub fn floor(&self) -> Option<Ts> {
        self.floor
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intern::DenseId;

    /// Pushes a read of table 0 by principal `principal`.
    fn push(buf: &mut ReorderBuffer, ts: Ts, principal: u32) {
        buf.push(
            ts,
            TableId::from_index(0),
            PrincipalId::from_index(principal),
        );
    }

    #[test]
    fn releases_in_time_order_and_moves_the_watermark() {
        let mut buf = ReorderBuffer::new(10);
        assert_eq!(buf.watermark(), None);
        for (ts, p) in [(100, 0), (95, 1), (103, 2), (95, 3)] {
            buf.note(ts);
            push(&mut buf, ts, p);
        }
        assert_eq!(buf.watermark(), Some(93));
        assert_eq!(buf.earliest(), Some(95));
        let mut out = Vec::new();
        assert_eq!(buf.pop_earliest(&mut out), Some(95));
        let mut principals: Vec<u32> = out.iter().map(|r| r.principal.index()).collect();
        principals.sort();
        assert_eq!(principals, vec![1, 3]);
        out.clear();
        assert_eq!(buf.pop_earliest(&mut out), Some(100));
        assert_eq!(out[0].principal.index(), 0);
        push(&mut buf, 101, 4);
        assert_eq!(buf.earliest(), Some(101));
        assert_eq!(buf.len(), 2);
        // The peek moved the base to 101; a read at 100.5 (not late) still comes out first.
        push(&mut buf, 100, 5);
        out.clear();
        assert_eq!(buf.pop_earliest(&mut out), Some(100));
        assert_eq!(out[0].principal.index(), 5);
        buf.raise_floor(200);
        assert_eq!(buf.watermark(), Some(200));
    }

    #[test]
    fn run_radix_and_underflow_release_together_in_order() {
        let mut buf = ReorderBuffer::new(0);
        let mut out = Vec::new();
        push(&mut buf, 10, 0); // run
        push(&mut buf, 20, 1); // run
        push(&mut buf, 15, 2); // radix
        push(&mut buf, 30, 3); // run
        assert_eq!(buf.earliest(), Some(10));
        assert_eq!(buf.pop_earliest(&mut out), Some(10));
        assert_eq!(buf.earliest(), Some(15)); // moves the radix base to 15
        push(&mut buf, 12, 4); // below the base: underflow
        push(&mut buf, 20, 5); // radix, same instant as a run read
        let mut order = Vec::new();
        while let Some(ts) = buf.pop_earliest(&mut out) {
            order.push(ts);
        }
        assert_eq!(order, vec![12, 15, 20, 30]);
        let mut principals: Vec<u32> = out.iter().map(|r| r.principal.index()).collect();
        principals[3..5].sort();
        assert_eq!(principals, vec![0, 4, 2, 1, 5, 3]);
        assert!(buf.is_empty());
    }

    #[test]
    fn an_external_watermark_ignores_lateness() {
        let mut buf = ReorderBuffer::new(10);
        buf.use_external_watermark();
        buf.note(1_000);
        assert_eq!(buf.watermark(), None);
        buf.raise_floor(50);
        assert_eq!(buf.watermark(), Some(50));
    }

    #[test]
    fn equals_a_sort_on_random_monotone_input() {
        // Pushes within a sliding window, pops below a watermark: the output is sorted.
        let mut buf = ReorderBuffer::new(0);
        let mut state = 12345u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            state >> 33
        };
        let mut released = Vec::new();
        let mut pushed = Vec::new();
        let mut out = Vec::new();
        for i in 0..20_000i64 {
            let ts = -5_000 + i * 10 + (next() % 3_000) as i64;
            let floor = -5_000 + (i - 300) * 10;
            if ts >= floor {
                push(&mut buf, ts, i as u32);
                pushed.push(ts);
            }
            while buf.earliest().is_some_and(|e| e < floor) {
                out.clear();
                let t = buf.pop_earliest(&mut out).unwrap();
                released.extend(out.iter().map(|r| {
                    assert_eq!(r.ts, t);
                    r.ts
                }));
            }
        }
        out.clear();
        while buf.pop_earliest(&mut out).is_some() {}
        released.extend(out.iter().map(|r| r.ts));
        let mut sorted = released.clone();
        sorted.sort();
        assert_eq!(released, sorted);
        assert_eq!(released.len(), pushed.len());
    }
}
