//! Interning of table and principal names into dense ids ([`TableId`], [`PrincipalId`]: `u32`
//! newtypes that cannot be swapped), so that the detector's hot path
//! hashes a small integer instead of a string, and a Parquet dictionary can be mapped to ids once
//! per column chunk. Ids depend on arrival order: never let one reach an alert or a sort order.
//!
//! Names live back to back in one arena, each behind its id and length; the hash table holds
//! only 8-byte slots (half the hash and the arena offset). A lookup touches a name's bytes only
//! when the hash already matched, so interning one of 20 000 principals costs a miss on the slot
//! and one on the name. [`Interner::intern_many`] starts those misses for a group of names at
//! once, so that they overlap.

use std::hash::{BuildHasher, Hasher};
use std::marker::PhantomData;

/// A dense id handed out by an [`Interner`]: `0, 1, 2, …` in order of first sight, so it can
/// index a `Vec`. `u32::MAX` is never handed out (tables of ids use it for "none").
pub trait DenseId: Copy + Eq + std::fmt::Debug {
    fn from_index(index: u32) -> Self;
    fn index(self) -> u32;
}

impl DenseId for u32 {
    #[inline(always)]
    fn from_index(index: u32) -> u32 {
        index
    }
    #[inline(always)]
    fn index(self) -> u32 {
        self
    }
}

/// A `u32` newtype that is a [`DenseId`]: ids of different things cannot be swapped.
macro_rules! dense_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(u32);

        impl $name {
            /// Never handed out: "no id" in tables of ids.
            pub const NONE: $name = $name(u32::MAX);

            /// The id as a `Vec` index.
            #[inline(always)]
            pub fn at(self) -> usize {
                self.0 as usize
            }
        }

        impl DenseId for $name {
            #[inline(always)]
            fn from_index(index: u32) -> $name {
                $name(index)
            }
            #[inline(always)]
            fn index(self) -> u32 {
                self.0
            }
        }
    };
}

dense_id!(
    /// A table, as the detector knows it (its name is in the detector's table interner).
    TableId
);
dense_id!(
    /// A principal, as the detector knows it (its name is in the detector's principal interner).
    PrincipalId
);

/// A table slot: eight bytes, so that the table of 20 000 names stays in L2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    /// The high half of the name's hash: most mismatches stop here.
    hash: u32,
    /// Where the name's entry starts in the arena; `VACANT` for an empty slot.
    offset: u32,
}

const VACANT: u32 = u32::MAX;
const EMPTY: Slot = Slot {
    hash: 0,
    offset: VACANT,
};

/// Arena entry header: the id, then the length; the name's bytes follow. One cache line
/// usually holds all three, so a hit costs one miss at most.
const HEADER: usize = 8;

/// Names looked up together by [`Interner::intern_many`]: the cache misses of a whole group
/// overlap instead of coming one after the other.
const GROUP: usize = 256;

/// Maps names to dense ids of type `I` and back.
#[derive(Debug, Clone)]
pub struct Interner<I = u32> {
    /// Open addressing with linear probing, at most half full; a power of two long.
    slots: Vec<Slot>,
    arena: Vec<u8>,
    /// `offsets[id]` is where name `id`'s entry starts in the arena.
    offsets: Vec<u32>,
    id: PhantomData<I>,
}

impl<I> Default for Interner<I> {
    fn default() -> Self {
        Interner {
            slots: vec![EMPTY; 64],
            arena: Vec::new(),
            offsets: Vec::new(),
            id: PhantomData,
        }
    }
}

#[inline]
fn hash_name(name: &[u8]) -> u64 {
    let mut hasher = rustc_hash::FxBuildHasher.build_hasher();
    hasher.write(name);
    hasher.write_u8(0xff);
    hasher.finish()
}

#[inline]
fn home(hash: u64, mask: usize) -> usize {
    // The product's high half is well mixed; rotate it down to where the mask reads.
    hash.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(32) as usize & mask
}

#[inline]
fn entry(arena: &[u8], offset: u32) -> (u32, &[u8]) {
    let at = offset as usize;
    let header = &arena[at..at + HEADER];
    let id = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
    let len = u32::from_le_bytes(header[4..].try_into().expect("4 bytes")) as usize;
    (id, &arena[at + HEADER..at + HEADER + len])
}

/// Whether two byte strings are equal, compared here 4 or 8 bytes at a time: names are short,
/// and a call to `memcmp` with its size dispatch costs more than comparing them inline.
#[inline]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let w4 = |s: &[u8], at: usize| u32::from_le_bytes(s[at..at + 4].try_into().expect("4 bytes"));
    let w8 = |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().expect("8 bytes"));
    match n {
        0 => true,
        // Bytes 0, n/2 and n-1 are every byte of a string of 1 to 3.
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        // The first and the last four bytes (overlapping) are every byte of 4 to 7.
        4..=7 => w4(a, 0) == w4(b, 0) && w4(a, n - 4) == w4(b, n - 4),
        _ => {
            let mut at = 0;
            while at + 8 < n {
                if w8(a, at) != w8(b, at) {
                    return false;
                }
                at += 8;
            }
            // The last eight bytes, overlapping the word before when `n` is not a multiple of 8.
            w8(a, n - 8) == w8(b, n - 8)
        }
    }
}

/// Asks the CPU to start loading the cache line at `ptr`: a hint only, never a fault. Shared
/// by the look-ups that know their next addresses ahead (interning, baselines).
#[inline(always)]
pub(crate) fn prefetch<T>(ptr: *const T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: prefetching is a hint; it never dereferences or faults, even for a bad address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(ptr.cast::<i8>()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = ptr;
}

impl<I: DenseId> Interner<I> {
    /// Where `name` (with hash `hash`) is, or the empty slot where it would go.
    #[inline]
    fn probe(&self, name: &[u8], hash: u64) -> Result<usize, usize> {
        let mask = self.slots.len() - 1;
        let high = (hash >> 32) as u32;
        let mut i = home(hash, mask);
        loop {
            let slot = self.slots[i];
            if slot.offset == VACANT {
                return Err(i);
            }
            if slot.hash == high && same_bytes(entry(&self.arena, slot.offset).1, name) {
                return Ok(i);
            }
            i = (i + 1) & mask;
        }
    }

    #[inline]
    fn intern_hashed(&mut self, name: &str, hash: u64) -> I {
        match self.probe(name.as_bytes(), hash) {
            Ok(i) => I::from_index(entry(&self.arena, self.slots[i].offset).0),
            Err(i) => self.insert(name, hash, i),
        }
    }

    /// The id of `name`, allocating one on first sight.
    #[inline]
    pub fn intern(&mut self, name: &str) -> I {
        self.intern_hashed(name, hash_name(name.as_bytes()))
    }

    /// The ids of `names`, appended to `ids` in order: like [`Interner::intern`] on each, but
    /// the look-ups of a group of names are started together, so that with many thousands of
    /// names (more than the CPU caches hold) their cache misses overlap.
    pub fn intern_many<'a>(
        &mut self,
        names: impl ExactSizeIterator<Item = &'a str>,
        ids: &mut Vec<I>,
    ) {
        let mut group: Vec<(&str, u64)> = Vec::with_capacity(GROUP.min(names.len()));
        let mut names = names.peekable();
        while names.peek().is_some() {
            group.clear();
            let mask = self.slots.len() - 1;
            // Start loading each name's home slot...
            for name in names.by_ref().take(GROUP) {
                let hash = hash_name(name.as_bytes());
                prefetch(&self.slots[home(hash, mask)]);
                group.push((name, hash));
            }
            // ...then, once they are in, the arena entry of the first slot that may hold it...
            for &(_, hash) in &group {
                let slot = self.slots[home(hash, mask)];
                if slot.offset != VACANT && slot.hash == (hash >> 32) as u32 {
                    prefetch(self.arena.as_ptr().wrapping_add(slot.offset as usize));
                }
            }
            // ...and look them up for real.
            for &(name, hash) in &group {
                ids.push(self.intern_hashed(name, hash));
            }
        }
    }

    #[cold]
    fn insert(&mut self, name: &str, hash: u64, vacant: usize) -> I {
        // `u32::MAX` stays free: tables of ids use it for "none".
        let id = u32::try_from(self.offsets.len())
            .ok()
            .filter(|&id| id != u32::MAX)
            .expect("fewer than 2^32 - 1 distinct names");
        let offset = u32::try_from(self.arena.len())
            .ok()
            .filter(|&o| o != VACANT)
            .expect("names take less than 4 GiB");
        let len = u32::try_from(name.len()).expect("a name is shorter than 4 GiB");
        self.arena.extend_from_slice(&id.to_le_bytes());
        self.arena.extend_from_slice(&len.to_le_bytes());
        self.arena.extend_from_slice(name.as_bytes());
        self.offsets.push(offset);
        self.slots[vacant] = Slot {
            hash: (hash >> 32) as u32,
            offset,
        };
        if self.offsets.len() * 2 > self.slots.len() {
            self.grow();
        }
        I::from_index(id)
    }

    fn grow(&mut self) {
        let capacity = self.slots.len() * 2;
        let mask = capacity - 1;
        let mut slots = vec![EMPTY; capacity];
        for &offset in &self.offsets {
            let hash = hash_name(entry(&self.arena, offset).1);
            let mut i = home(hash, mask);
            while slots[i].offset != VACANT {
                i = (i + 1) & mask;
            }
            slots[i] = Slot {
                hash: (hash >> 32) as u32,
                offset,
            };
        }
        self.slots = slots;
    }

    /// The id of `name` if it was interned before.
    pub fn get(&self, name: &str) -> Option<I> {
        self.probe(name.as_bytes(), hash_name(name.as_bytes()))
            .ok()
            .map(|i| I::from_index(entry(&self.arena, self.slots[i].offset).0))
    }

    /// The bytes of the name behind `id`, for ordering names: byte order is `str` order, and
    /// comparing bytes skips checking them as UTF-8 again (a sort of 10^5 names did little else).
    #[inline]
    pub fn name_bytes(&self, id: I) -> &[u8] {
        entry(&self.arena, self.offsets[id.index() as usize]).1
    }

    /// The name behind `id`.
    #[inline]
    pub fn name(&self, id: I) -> &str {
        let bytes = entry(&self.arena, self.offsets[id.index() as usize]).1;
        std::str::from_utf8(bytes).expect("only &str goes in")
    }

    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_bytes_agrees_with_equality_at_every_length_and_position() {
        for n in 0..40usize {
            let a: Vec<u8> = (0..n as u8).map(|i| b'a' + i % 26).collect();
            assert!(same_bytes(&a, &a.clone()), "{n}");
            for at in 0..n {
                let mut b = a.clone();
                b[at] ^= 0x20;
                assert!(!same_bytes(&a, &b), "{n} {at}");
            }
            let longer = [&a[..], b"x"].concat();
            assert!(!same_bytes(&a, &longer), "{n}");
        }
    }

    #[test]
    fn ids_are_dense_and_stable() {
        let mut names: Interner = Interner::default();
        assert_eq!(names.intern("alice"), 0);
        assert_eq!(names.intern("bob"), 1);
        assert_eq!(names.intern("alice"), 0);
        assert_eq!(names.intern(""), 2);
        assert_eq!(names.intern("ab"), 3);
        assert_eq!(names.name(1), "bob");
        assert_eq!(names.name(2), "");
        assert_eq!(names.name(3), "ab");
        assert_eq!(names.get("carol"), None);
        assert_eq!(names.get("ab"), Some(3));
        assert_eq!(names.len(), 4);
    }

    #[test]
    fn many_names_round_trip() {
        let mut names: Interner = Interner::default();
        let ids: Vec<u32> = (0..50_000)
            .map(|i| names.intern(&format!("user{i}@corp")))
            .collect();
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(*id as usize, i);
            assert_eq!(names.name(*id), format!("user{i}@corp"));
            assert_eq!(names.intern(&format!("user{i}@corp")), *id);
        }
    }

    #[test]
    fn interning_many_at_once_equals_one_by_one() {
        // Repeats, first sights and growth in the middle of a group.
        let names: Vec<String> = (0..5_000)
            .map(|i| format!("p{}", (i * 7919) % 1_300))
            .collect();
        let mut one_by_one: Interner = Interner::default();
        let expected: Vec<u32> = names.iter().map(|n| one_by_one.intern(n)).collect();
        let mut at_once: Interner = Interner::default();
        let mut ids = vec![7];
        at_once.intern_many(names.iter().map(String::as_str), &mut ids);
        assert_eq!(ids[0], 7, "appends");
        assert_eq!(&ids[1..], &expected[..]);
        assert_eq!(at_once.len(), 1_300);
        assert_eq!(at_once.get("p42"), one_by_one.get("p42"));
    }
}
