//! A table's baseline: principal id -> time of its last normal read, in a flat open-addressing
//! table (linear probing). One probe usually touches one cache line, and the slot of a
//! principal can be prefetched before its read is applied: with hundreds of thousands of
//! (table, principal) pairs, that look-up is the detector's main cost.
//!
//! Memory is what bounds a large company's state (10^8 pairs), so a slot is 12 bytes (the id
//! and the time, packed), the table is any size (an id's home is found by multiplying, not by
//! masking, so it need not be a power of two), it grows by half when four fifths full and a
//! restored one is sized to 70 %: 15 to 22.5 bytes per pair, 17 after a restore
//! (`docs/performance.md`, "State at scale").
//!
//! Each slot also carries a change mark: set whenever its time is written, taken (and cleared)
//! by [`Baseline::take_changes`], so that an incremental checkpoint writes the pairs that
//! changed, not the table. Removals are listed when the table is asked to
//! ([`Baseline::track_removals`]).

use crate::intern::{DenseId, PrincipalId};
use crate::time::Ts;

/// A slot's key: the principal's id, its top bit the change mark; `EMPTY` when vacant.
const EMPTY: u32 = u32::MAX;
const CHANGED: u32 = 1 << 31;
const ID: u32 = !CHANGED;

/// Grow when more than this share of slots (in fifths) would be taken.
const MAX_LOAD_FIFTHS: usize = 4;
/// The smallest table with anything in it.
const MIN_SLOTS: usize = 4;

/// 12 bytes: the time is read unaligned, which costs nothing on the CPUs this runs on.
#[derive(Debug, Clone, Copy)]
#[repr(C, packed(4))]
struct Slot {
    key: u32,
    last_read: Ts,
}

const VACANT: Slot = Slot {
    key: EMPTY,
    last_read: 0,
};

impl Slot {
    #[inline(always)]
    fn id(self) -> u32 {
        self.key & ID
    }
}

/// Principal -> last normal read.
#[derive(Debug, Clone, Default)]
pub struct Baseline {
    slots: Vec<Slot>,
    len: usize,
    /// Principals removed since changes were last taken, if removals are tracked.
    removed: Option<Vec<PrincipalId>>,
}

/// The slot an id starts probing at, in a table of `slots` slots: Fibonacci hashing spreads
/// dense ids, and the multiply-shift maps the hash onto any table size.
#[inline(always)]
fn home(id: u32, slots: usize) -> usize {
    let hash = id.wrapping_mul(0x9E37_79B9);
    ((u64::from(hash) * slots as u64) >> 32) as usize
}

#[inline(always)]
fn key_of(principal: PrincipalId) -> u32 {
    let id = principal.index();
    debug_assert!(id < ID, "principal id {id} out of range");
    id
}

impl Baseline {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes held on the heap (for the state-scale figures).
    pub fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot>()
            + self
                .removed
                .as_ref()
                .map_or(0, |r| r.capacity() * std::mem::size_of::<PrincipalId>())
    }

    /// From now on, principals removed are listed for [`Baseline::take_changes`].
    pub fn track_removals(&mut self) {
        self.removed.get_or_insert_with(Vec::new);
    }

    /// Where `principal` is held, if it is.
    #[inline]
    pub fn find(&self, principal: PrincipalId) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let id = key_of(principal);
        let n = self.slots.len();
        let mut i = home(id, n);
        loop {
            let key = self.slots[i].key;
            if key & ID == id {
                return Some(i);
            }
            if key == EMPTY {
                return None;
            }
            i += 1;
            if i == n {
                i = 0;
            }
        }
    }

    /// The last normal read of `principal`, if any.
    #[inline]
    pub fn get(&self, principal: PrincipalId) -> Option<Ts> {
        self.find(principal).map(|i| self.last_read_at(i))
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
        let slot = &mut self.slots[slot];
        if ts > slot.last_read {
            slot.last_read = ts;
            slot.key |= CHANGED;
        }
    }

    /// Sets the last normal read of `principal`, if it is held (whatever the time).
    pub fn set(&mut self, principal: PrincipalId, ts: Ts) -> bool {
        let Some(i) = self.find(principal) else {
            return false;
        };
        let slot = &mut self.slots[i];
        slot.last_read = ts;
        slot.key |= CHANGED;
        true
    }

    /// Records a normal read at `ts` (keeping the later of two times).
    #[inline]
    pub fn record(&mut self, principal: PrincipalId, ts: Ts) {
        if (self.len + 1) * 5 > self.slots.len() * MAX_LOAD_FIFTHS {
            self.resize((self.slots.len() + self.slots.len() / 2).max(MIN_SLOTS));
        }
        self.insert(key_of(principal), ts, CHANGED);
    }

    /// Puts `id` in with `mark` (a new key) or moves its time to the later one.
    #[inline]
    fn insert(&mut self, id: u32, ts: Ts, mark: u32) {
        let n = self.slots.len();
        let mut i = home(id, n);
        loop {
            let slot = &mut self.slots[i];
            if slot.key & ID == id {
                if ts > slot.last_read {
                    slot.last_read = ts;
                    slot.key |= mark;
                }
                return;
            }
            if slot.key == EMPTY {
                *slot = Slot {
                    key: id | mark,
                    last_read: ts,
                };
                self.len += 1;
                return;
            }
            i += 1;
            if i == n {
                i = 0;
            }
        }
    }

    /// Moves every pair into a table of `slots` slots, keeping the change marks.
    fn resize(&mut self, slots: usize) {
        let old = std::mem::replace(&mut self.slots, vec![VACANT; slots]);
        self.len = 0;
        for slot in old {
            if slot.key != EMPTY {
                self.insert(slot.id(), slot.last_read, slot.key & CHANGED);
            }
        }
    }

    /// The table size that holds `len` pairs at 70 % (what a restore or a shrink gives).
    fn snug(len: usize) -> usize {
        if len == 0 {
            0
        } else {
            (len * 10 / 7 + 1).max(MIN_SLOTS)
        }
    }

    /// A baseline of `pairs` (each principal once), sized to hold them at 70 %, none marked
    /// changed: what a restore gives.
    pub fn restored(pairs: impl ExactSizeIterator<Item = (PrincipalId, Ts)>) -> Baseline {
        let mut baseline = Baseline {
            slots: vec![VACANT; Baseline::snug(pairs.len())],
            ..Baseline::default()
        };
        for (principal, ts) in pairs {
            baseline.insert(key_of(principal), ts, 0);
        }
        baseline
    }

    /// Keeps the pairs `keep` says, listing the others if removals are tracked, and gives the
    /// table its snug size again.
    fn keep_only(&mut self, keep: impl Fn(u32, Ts) -> bool) -> usize {
        let before = self.len;
        let kept: usize = (self.slots.iter())
            .filter(|s| s.key != EMPTY && keep(s.id(), s.last_read))
            .count();
        if kept == before {
            return 0;
        }
        let old = std::mem::replace(&mut self.slots, vec![VACANT; Baseline::snug(kept)]);
        self.len = 0;
        for slot in old {
            if slot.key == EMPTY {
                continue;
            }
            if keep(slot.id(), slot.last_read) {
                self.insert(slot.id(), slot.last_read, slot.key & CHANGED);
            } else if let Some(removed) = &mut self.removed {
                removed.push(PrincipalId::from_index(slot.id()));
            }
        }
        before - kept
    }

    /// Keeps the principals whose last read satisfies `keep`, shrinking the table; gives how
    /// many were removed.
    pub fn retain(&mut self, keep: impl Fn(Ts) -> bool) -> usize {
        self.keep_only(|_, last| keep(last))
    }

    /// Removes the principals `forget` says, shrinking the table; gives how many.
    pub fn remove_where(&mut self, forget: impl Fn(PrincipalId) -> bool) -> usize {
        self.keep_only(|id, _| !forget(PrincipalId::from_index(id)))
    }

    /// Every (principal, last normal read) pair, in no particular order.
    pub fn entries(&self) -> impl Iterator<Item = (PrincipalId, Ts)> + '_ {
        (self.slots.iter())
            .filter(|s| s.key != EMPTY)
            .map(|s| (PrincipalId::from_index(s.id()), s.last_read))
    }

    /// Last-read times of every principal.
    pub fn last_reads(&self) -> impl Iterator<Item = Ts> + '_ {
        (self.slots.iter())
            .filter(|s| s.key != EMPTY)
            .map(|s| s.last_read)
    }

    /// The pairs written and the principals removed since the last call, and clears the marks.
    /// A principal removed and then read again is in both lists: removals come first.
    pub fn take_changes(&mut self, mut changed: impl FnMut(PrincipalId, Ts)) -> Vec<PrincipalId> {
        for slot in &mut self.slots {
            if slot.key != EMPTY && slot.key & CHANGED != 0 {
                slot.key &= ID;
                changed(PrincipalId::from_index(slot.key), slot.last_read);
            }
        }
        self.removed
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Asks the CPU to start loading `principal`'s slot: a hint only, never a fault.
    #[inline]
    pub fn prefetch(&self, principal: PrincipalId) {
        if self.slots.is_empty() {
            return;
        }
        let slot = &self.slots[home(principal.index(), self.slots.len())];
        crate::intern::prefetch(slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashMap};

    #[test]
    fn a_slot_is_twelve_bytes() {
        assert_eq!(std::mem::size_of::<Slot>(), 12);
    }

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
        assert!(baseline.set(*model.keys().next().unwrap(), 1));
        assert!(!baseline.set(PrincipalId::from_index(4_000), 1));
        baseline.prefetch(PrincipalId::from_index(17));
    }

    #[test]
    fn changes_are_the_pairs_written_and_removed_since_they_were_last_taken() {
        let id = PrincipalId::from_index;
        let mut baseline = Baseline::default();
        baseline.track_removals();
        for p in 0..100 {
            baseline.record(id(p), 10);
        }
        let mut all = BTreeMap::new();
        assert!(
            baseline
                .take_changes(|p, t| _ = all.insert(p, t))
                .is_empty()
        );
        assert_eq!(all.len(), 100);
        let mut none = Vec::new();
        baseline.take_changes(|p, t| none.push((p, t)));
        assert_eq!(none, []);

        // A refresh to an older time is no change; growth keeps marks where they were.
        let slot = baseline.find(id(3)).unwrap();
        baseline.refresh_at(slot, 5);
        let slot = baseline.find(id(4)).unwrap();
        baseline.refresh_at(slot, 20);
        for p in 100..400 {
            baseline.record(id(p), 30);
        }
        baseline.remove_where(|p| p == id(7) || p == id(150));
        let mut changed = BTreeMap::new();
        let mut removed = baseline.take_changes(|p, t| _ = changed.insert(p, t));
        removed.sort();
        assert_eq!(removed, [id(7), id(150)]);
        assert_eq!(changed.len(), 1 + 299);
        assert_eq!(changed[&id(4)], 20);
        assert!(!changed.contains_key(&id(3)));
        assert!(!changed.contains_key(&id(150)));
    }

    #[test]
    fn a_restored_baseline_holds_a_pair_in_seventeen_bytes_and_grows_within_bounds() {
        let id = PrincipalId::from_index;
        let restored = Baseline::restored((0..10_000).map(|p| (id(p), Ts::from(p))));
        assert_eq!(restored.len(), 10_000);
        assert!(
            restored.heap_bytes() <= 10_000 * 18,
            "{}",
            restored.heap_bytes()
        );
        assert_eq!(restored.get(id(9_999)), Some(9_999));
        let mut grown = Baseline::default();
        for p in 0..100_000 {
            grown.record(id(p), 1);
            if p > 100 {
                let per_pair = grown.heap_bytes() as f64 / grown.len() as f64;
                assert!(per_pair <= 22.6, "{per_pair} bytes per pair at {p}");
            }
        }
    }
}
