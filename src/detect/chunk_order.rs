//! Ordering a chunk of reads for table-by-table application: grouped by table (in the order a
//! rank gives), in time order within each table, in linear time for the usual chunk.
//!
//! Reads arrive almost in time order (out of order by at most `lateness`), and a chunk holds a
//! few hundred thousand of them over a couple of hundred tables. Sorting each table's reads by
//! comparison cost more than applying them. Instead: one stable counting pass puts the chunk in
//! order of a coarse time bucket, a second stable counting pass groups it by table, and what is
//! left out of order within a table is only reads of the same bucket, which an insertion sort
//! fixes in a step or two each. A chunk that is already in time order (a sorted Parquet row group)
//! skips the first pass; a skewed one (most reads in one bucket) falls back to a comparison sort
//! once insertion has done more moves than a budget allows, so no input makes it quadratic.

use super::reorder::BufferedRead;
use crate::intern::{DenseId, Interner, PrincipalId, TableId};

/// Every table's rank by name, kept up to date as tables are added, so that ordering a chunk's
/// tables compares numbers, not names: with 10^5 tables, sorting them by name for every chunk
/// (a cache miss per comparison) cost more than applying the chunk.
#[derive(Debug, Clone, Default)]
pub(super) struct TableRanks {
    /// The tables ranked so far, in name order.
    by_name: Vec<TableId>,
    /// By table id, its place in `by_name`.
    rank: Vec<u32>,
}

impl TableRanks {
    /// Ranks the tables added to `names` since the last call: each new one is placed by a
    /// binary search among the ranked ones, then every rank is renumbered (no names compared).
    pub(super) fn update(&mut self, names: &Interner<TableId>) {
        let known = self.rank.len();
        if known == names.len() {
            return;
        }
        let by_name = |a: &TableId, b: &TableId| names.name_bytes(*a).cmp(names.name_bytes(*b));
        let mut added: Vec<TableId> = (known..names.len())
            .map(|at| TableId::from_index(at as u32))
            .collect();
        added.sort_by(by_name);
        let old = std::mem::take(&mut self.by_name);
        let mut rest = &old[..];
        for table in added {
            let before = rest.partition_point(|t| by_name(t, &table).is_lt());
            self.by_name.extend_from_slice(&rest[..before]);
            self.by_name.push(table);
            rest = &rest[before..];
        }
        self.by_name.extend_from_slice(rest);
        self.rank.resize(names.len(), 0);
        for (r, table) in self.by_name.iter().enumerate() {
            self.rank[table.at()] = r as u32;
        }
    }

    /// Table `table`'s rank by name (as of the last [`TableRanks::update`]).
    #[inline]
    pub(super) fn of(&self, table: TableId) -> u32 {
        self.rank[table.at()]
    }
}

/// Time buckets of the first pass: enough that a table rarely has two reads in one bucket.
const TIME_BUCKETS: usize = 1 << 14;

/// Insertion-sort moves allowed per read before a table's reads are sorted by comparison.
const MOVES_PER_READ: usize = 8;

/// Reusable buffers for [`order_chunk`].
#[derive(Debug, Clone, Default)]
pub(super) struct OrderScratch {
    by_time: Vec<BufferedRead>,
    offsets: Vec<usize>,
    /// Each table's rank, by table id; `u32::MAX` for a table not in the chunk.
    rank: Vec<u32>,
}

/// Writes `reads` into `out` grouped by table, tables in the order of `rank_tables` (which is
/// given the distinct table ids, in first-seen order, to sort), and in time order within each
/// table. The order of reads of the same table and instant is unspecified.
pub(super) fn order_chunk(
    reads: &[BufferedRead],
    table_count: usize,
    rank_tables: impl FnOnce(&mut Vec<TableId>),
    scratch: &mut OrderScratch,
    out: &mut Vec<BufferedRead>,
) {
    let OrderScratch {
        by_time,
        offsets,
        rank,
    } = scratch;
    let source = if reads.is_sorted_by_key(|r| r.ts) {
        reads
    } else {
        bucket_by_time(reads, offsets, by_time);
        &by_time[..]
    };

    // The tables present, ranked; then a stable counting sort by rank.
    rank.clear();
    rank.resize(table_count, u32::MAX);
    let mut present: Vec<TableId> = Vec::new();
    for read in source {
        let slot = &mut rank[read.table.at()];
        if *slot == u32::MAX {
            *slot = 0;
            present.push(read.table);
        }
    }
    rank_tables(&mut present);
    for (r, table) in present.iter().enumerate() {
        rank[table.at()] = r as u32;
    }
    offsets.clear();
    offsets.resize(present.len() + 1, 0);
    for read in source {
        offsets[rank[read.table.at()] as usize + 1] += 1;
    }
    prefix_sums(offsets);
    scatter(source, out, offsets, |read| rank[read.table.at()] as usize);

    // What is left out of order: reads of one table in one time bucket. (`offsets[r]` is now
    // where rank `r`'s reads end.)
    let mut start = 0;
    for &end in &offsets[..present.len()] {
        sort_nearly_sorted(&mut out[start..end]);
        start = end;
    }
}

/// Stable counting sort of `reads` into `out` by time bucket (the span of `reads` cut in
/// [`TIME_BUCKETS`] equal parts).
fn bucket_by_time(reads: &[BufferedRead], offsets: &mut Vec<usize>, out: &mut Vec<BufferedRead>) {
    let (Some(min), Some(max)) = (
        reads.iter().map(|r| r.ts).min(),
        reads.iter().map(|r| r.ts).max(),
    ) else {
        out.clear();
        return;
    };
    let span = max.abs_diff(min);
    // Bucket = (ts - min) >> shift, the smallest shift that keeps every bucket in range.
    let bits = u64::BITS - span.leading_zeros();
    let shift = bits.saturating_sub(TIME_BUCKETS.trailing_zeros());
    let bucket = |r: &BufferedRead| (r.ts.abs_diff(min) >> shift) as usize;
    offsets.clear();
    offsets.resize(TIME_BUCKETS + 1, 0);
    for read in reads {
        offsets[bucket(read) + 1] += 1;
    }
    prefix_sums(offsets);
    scatter(reads, out, offsets, bucket);
}

/// Turns counts at `[i + 1]` into start offsets at `[i]`.
fn prefix_sums(offsets: &mut [usize]) {
    for i in 1..offsets.len() {
        offsets[i] += offsets[i - 1];
    }
}

/// Writes each read to `out` at its key's next offset (advancing it): a stable scatter. On
/// return `offsets[k]` is where key `k`'s reads end.
fn scatter(
    reads: &[BufferedRead],
    out: &mut Vec<BufferedRead>,
    offsets: &mut [usize],
    key: impl Fn(&BufferedRead) -> usize,
) {
    // Every slot is written below: only a longer chunk than before needs new ones.
    out.resize(
        reads.len(),
        BufferedRead {
            ts: 0,
            table: TableId::NONE,
            principal: PrincipalId::NONE,
        },
    );
    for read in reads {
        let slot = &mut offsets[key(read)];
        out[*slot] = *read;
        *slot += 1;
    }
}

/// Sorts `reads` by time: insertion sort while the reads are nearly in order, a comparison sort
/// once that has cost more than [`MOVES_PER_READ`] moves per read.
fn sort_nearly_sorted(reads: &mut [BufferedRead]) {
    let mut budget = reads.len() * MOVES_PER_READ;
    for i in 1..reads.len() {
        let read = reads[i];
        let mut j = i;
        while j > 0 && reads[j - 1].ts > read.ts {
            if budget == 0 {
                // Put the read being moved back (its slot holds a copy of its neighbour).
                reads[j] = read;
                reads.sort_unstable_by_key(|r| r.ts);
                return;
            }
            budget -= 1;
            reads[j] = reads[j - 1];
            j -= 1;
        }
        reads[j] = read;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Tables added a few at a time, in any name order, are ranked as sorting all of
        /// them by name ranks them.
        #[test]
        fn table_ranks_are_name_order(
            names in prop::collection::vec("[a-c]{1,3}\\.[x-z]{0,2}", 1..60),
            cuts in prop::collection::vec(0usize..60, 0..5),
        ) {
            let mut interner: Interner<TableId> = Interner::default();
            let mut ranks = TableRanks::default();
            for (i, name) in names.iter().enumerate() {
                interner.intern(name);
                if cuts.contains(&i) {
                    ranks.update(&interner);
                }
            }
            ranks.update(&interner);
            let mut ids: Vec<TableId> =
                (0..interner.len()).map(|at| TableId::from_index(at as u32)).collect();
            ids.sort_by(|a, b| interner.name(*a).cmp(interner.name(*b)));
            for (r, id) in ids.iter().enumerate() {
                prop_assert_eq!(ranks.of(*id), r as u32, "{}", interner.name(*id));
            }
        }
    }

    fn read(ts: i64, table: u32, principal: u32) -> BufferedRead {
        BufferedRead {
            ts,
            table: TableId::from_index(table),
            principal: PrincipalId::from_index(principal),
        }
    }

    fn ordered(reads: &[BufferedRead], tables: usize) -> Vec<BufferedRead> {
        let mut out = Vec::new();
        let mut scratch = OrderScratch::default();
        // Rank: descending id, to show the rank (not the id) decides.
        let rank = |present: &mut Vec<TableId>| present.sort_by(|a, b| b.cmp(a));
        order_chunk(reads, tables, rank, &mut scratch, &mut out);
        out
    }

    /// What `order_chunk` must give: by rank, then time (same-instant reads in any order, so
    /// compared as sorted by principal).
    fn expected(reads: &[BufferedRead]) -> Vec<BufferedRead> {
        let mut sorted = reads.to_vec();
        sorted.sort_by_key(|r| (std::cmp::Reverse(r.table), r.ts, r.principal));
        sorted
    }

    fn canonical(mut reads: Vec<BufferedRead>) -> Vec<BufferedRead> {
        // Within one (table, ts) the order is unspecified.
        let mut i = 0;
        while i < reads.len() {
            let mut j = i + 1;
            while j < reads.len() && (reads[j].table, reads[j].ts) == (reads[i].table, reads[i].ts)
            {
                j += 1;
            }
            reads[i..j].sort_by_key(|r| r.principal);
            i = j;
        }
        reads
    }

    #[test]
    fn groups_by_rank_and_sorts_by_time() {
        let reads = [
            read(30, 0, 1),
            read(10, 1, 2),
            read(20, 0, 3),
            read(10, 0, 4),
            read(5, 2, 5),
        ];
        let got = ordered(&reads, 3);
        assert_eq!(
            got,
            vec![
                read(5, 2, 5),
                read(10, 1, 2),
                read(10, 0, 4),
                read(20, 0, 3),
                read(30, 0, 1),
            ]
        );
    }

    #[test]
    fn skewed_time_falls_back_without_losing_reads() {
        // One far outlier puts every other read in the first bucket, in reverse order.
        let mut reads: Vec<BufferedRead> = (0..5_000).rev().map(|t| read(t, 0, t as u32)).collect();
        reads.push(read(i64::MAX / 2, 0, 9));
        reads.push(read(i64::MIN / 2, 1, 9));
        let (got, want) = (ordered(&reads, 2), expected(&reads));
        let first_difference = got.iter().zip(&want).position(|(g, w)| g != w);
        assert_eq!((got.len(), first_difference), (want.len(), None));
    }

    #[test]
    fn empty_chunk() {
        assert!(ordered(&[], 0).is_empty());
    }

    proptest! {
        #[test]
        fn any_chunk_is_grouped_and_time_ordered(
            reads in prop::collection::vec(
                (-1_000_000i64..1_000_000, 0u32..6, 0u32..50)
                    .prop_map(|(ts, table, principal)| read(ts, table, principal)),
                0..400,
            ),
            near in any::<bool>(),
            outlier in any::<bool>(),
        ) {
            let mut reads = reads;
            if near {
                // Nearly sorted, as a chunk usually is.
                reads.sort_by_key(|r| r.ts / 1_000);
            }
            if outlier {
                // Every other read in one time bucket: the insertion sort gives up.
                reads.push(read(i64::MAX / 4, 0, 0));
            }
            prop_assert_eq!(canonical(ordered(&reads, 6)), canonical(expected(&reads)));
        }
    }
}
