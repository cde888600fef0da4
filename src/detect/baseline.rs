//! A table's baseline: principal id -> time of its last normal read, in a flat open-addressing
//! table (linear probing, at most three quarters full: dense enough that hundreds of thousands of
//! pairs stay within the TLB's reach). One probe usually touches one cache line, and the
//! slot of a principal can be prefetched before its read is applied: with hundreds of thousands
//! of (table, principal) pairs, that look-up is the detector's main cost.

use crate::intern::PrincipalId;
use crate::time::Ts;

const EMPTY: PrincipalId = PrincipalId::NONE;

#[derive(Debug, Clone, Copy)]
struct Slot {
    principal: PrincipalId,
    last_read: Ts,
}

const VACANT: Slot = Slot {
    principal: EMPTY,
    last_read: 0,
};

/// Principal -> last normal read.
#[derive(Debug, Clone, Default)]
pub struct Baseline {
    slots: Vec<Slot>,
    len: usize,
}

#[inline]
fn home(principal: PrincipalId, mask: usize) -> usize {
    // Fibonacci hashing: spreads dense ids over the table.
    ((principal.at() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & mask
}

impl Baseline {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Where `principal` is held, if it is.
    #[inline]
    pub fn find(&self, principal: PrincipalId) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = home(principal, mask);
        loop {
            let slot = &self.slots[i];
            if slot.principal == principal {
                return Some(i);
            }
            if slot.principal == EMPTY {
                return None;
            }
            i = (i + 1) & mask;
        }
    }

    /// The last normal read of `principal`, if any.
    #[inline]
    pub fn get(&self, principal: PrincipalId) -> Option<Ts> {
        self.find(principal).map(|i| self.slots[i].last_read)
    }

    /// The last normal read held at `slot` (from [`Baseline::find`]).
    #[inline]
    pub fn last_read_at(&self, slot: usize) -> Ts {
        self.slots[slot].last_read
    }

    /// A normal read at `ts` of the principal held at `slot` (from [`Baseline::find`], with
    /// nothing recorded since).
    #[inline]
    pub fn refresh_at(&mut self, slot: usize, ts: Ts) {
        let last = &mut self.slots[slot].last_read;
        *last = (*last).max(ts);
    }

    #[inline]
    pub fn get_mut(&mut self, principal: PrincipalId) -> Option<&mut Ts> {
        self.find(principal).map(|i| &mut self.slots[i].last_read)
    }

    /// Records a normal read at `ts` (keeping the later of two times).
    #[inline]
    pub fn record(&mut self, principal: PrincipalId, ts: Ts) {
        debug_assert_ne!(principal, EMPTY);
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut i = home(principal, mask);
        loop {
            let slot = &mut self.slots[i];
            if slot.principal == principal {
                slot.last_read = slot.last_read.max(ts);
                return;
            }
            if slot.principal == EMPTY {
                *slot = Slot {
                    principal,
                    last_read: ts,
                };
                self.len += 1;
                return;
            }
            i = (i + 1) & mask;
        }
    }

    fn grow(&mut self) {
        let capacity = (self.slots.len() * 2).max(16);
        self.rebuild(capacity, |_| true);
    }

    fn rebuild(&mut self, capacity: usize, keep: impl Fn(Ts) -> bool) {
        let old = std::mem::replace(&mut self.slots, vec![VACANT; capacity]);
        self.len = 0;
        for slot in old {
            if slot.principal != EMPTY && keep(slot.last_read) {
                self.record(slot.principal, slot.last_read);
            }
        }
    }

    /// Keeps the principals whose last read satisfies `keep`, shrinking the table if it can.
    pub fn retain(&mut self, keep: impl Fn(Ts) -> bool) {
        let kept = self
            .slots
            .iter()
            .filter(|s| s.principal != EMPTY && keep(s.last_read))
            .count();
        if kept == self.len {
            return;
        }
        let capacity = (kept * 4 / 3 + 1).next_power_of_two().max(16);
        self.rebuild(capacity, keep);
    }

    /// Removes the principals `forget` says, shrinking the table if it can; gives how many.
    pub fn remove_where(&mut self, forget: impl Fn(PrincipalId) -> bool) -> usize {
        let before = self.len;
        let kept: Vec<Slot> = self
            .slots
            .iter()
            .filter(|s| s.principal != EMPTY && !forget(s.principal))
            .copied()
            .collect();
        if kept.len() == before {
            return 0;
        }
        let capacity = (kept.len() * 4 / 3 + 1).next_power_of_two().max(16);
        self.slots = vec![VACANT; capacity];
        self.len = 0;
        for slot in kept {
            self.record(slot.principal, slot.last_read);
        }
        before - self.len
    }

    /// Every (principal, last normal read) pair, in no particular order.
    pub fn entries(&self) -> impl Iterator<Item = (PrincipalId, Ts)> + '_ {
        self.slots
            .iter()
            .filter(|s| s.principal != EMPTY)
            .map(|s| (s.principal, s.last_read))
    }

    /// Last-read times of every principal.
    pub fn last_reads(&self) -> impl Iterator<Item = Ts> + '_ {
        self.slots
            .iter()
            .filter(|s| s.principal != EMPTY)
            .map(|s| s.last_read)
    }

    /// Asks the CPU to start loading `principal`'s slot: a hint only, never a fault.
    #[inline]
    pub fn prefetch(&self, principal: PrincipalId) {
        if self.slots.is_empty() {
            return;
        }
        let slot = &self.slots[home(principal, self.slots.len() - 1)];
        crate::intern::prefetch(slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intern::DenseId;
    use std::collections::HashMap;

    #[test]
    fn behaves_like_a_map() {
        let mut baseline = Baseline::default();
        let mut model: HashMap<PrincipalId, Ts> = HashMap::new();
        let mut state = 99u64;
        for step in 0..50_000i64 {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
            let principal = PrincipalId::from_index((state >> 40) as u32 % 3_000);
            let ts = step * 10 - (state % 7) as i64;
            baseline.record(principal, ts);
            let entry = model.entry(principal).or_insert(ts);
            *entry = (*entry).max(ts);
            if step % 10_000 == 9_999 {
                let cutoff = ts - 20_000;
                baseline.retain(|last| last >= cutoff);
                model.retain(|_, last| *last >= cutoff);
            }
        }
        assert_eq!(baseline.len(), model.len());
        for (principal, ts) in &model {
            assert_eq!(baseline.get(*principal), Some(*ts));
        }
        assert_eq!(baseline.get(PrincipalId::from_index(4_000)), None);
        let mut times: Vec<Ts> = baseline.last_reads().collect();
        let mut expected: Vec<Ts> = model.values().copied().collect();
        times.sort();
        expected.sort();
        assert_eq!(times, expected);
        *baseline
            .get_mut(model.keys().next().copied().unwrap())
            .unwrap() = 1;
        baseline.prefetch(PrincipalId::from_index(17));
    }
}
