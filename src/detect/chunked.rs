//! An optimisation, not a rule: replay applies reads in chunks, **table by table**, so that each
//! table's baseline stays in cache while its reads are applied, and then puts the alerts back
//! in exactly the order one-by-one application gives. Proven equal by the property tests
//! `reads_applied_in_chunks_give_identical_alerts` (src/detect/tests.rs) and the golden and
//! equivalence tests of replay (tests/it/parallel.rs, tests/it/properties.rs).

use super::alert::{Alert, AlertStatus};
use super::chunk_order;
use super::clock::PREFETCH_DISTANCE;
use super::normal_reads::NormalScratch;
use super::reorder::BufferedRead;
use super::{Detector, Incoming, Observed};
use crate::intern::{PrincipalId, TableId};
use crate::time::Ts;

#[derive(Debug, Clone, Default)]
pub(super) struct ChunkScratch {
    /// The reads left once the normal ones are absorbed (see [`super::normal_reads`]).
    pub(super) rest: Vec<BufferedRead>,
    pub(super) normal: NormalScratch,
    pub(super) by_table: Vec<BufferedRead>,
    pub(super) order: chunk_order::OrderScratch,
    pub(super) ranks: chunk_order::TableRanks,
    /// Alerts with the (time, kind) they sort by.
    pub(super) tagged: Vec<(Ts, u8, Alert)>,
    pub(super) alerts: Vec<Alert>,
}

/// Reads collected for chunked application (replay): applied table by table once the chunk is
/// big enough, up to the watermark; the rest wait for the next chunk.
#[derive(Debug, Clone)]
pub(super) struct Deferred {
    pub(super) reads: Vec<BufferedRead>,
    /// Reads that are final (before the watermark), taken out of `reads` at a flush.
    pub(super) ready: Vec<BufferedRead>,
    /// Flush when `reads` holds this many.
    pub(super) flush_at: usize,
    pub(super) chunk: usize,
}

impl Detector {
    /// From now on, reads are applied in chunks of about `chunk` reads, **table by table**
    /// (see [`super::ById::apply_chunk`]), instead of one by one as the watermark passes them:
    /// each table's baseline then stays in cache while its reads are applied. Alerts are the
    /// same, in the same order; they only come out later (at the end of a chunk), which suits
    /// replay and not a live service. Call on a fresh detector.
    pub fn apply_in_chunks(&mut self, chunk: usize) {
        debug_assert!(self.reorder.is_empty(), "call before the first event");
        let chunk = chunk.max(1);
        self.deferred = Some(Deferred {
            reads: Vec::with_capacity(chunk),
            ready: Vec::with_capacity(chunk),
            flush_at: chunk,
            chunk,
        });
    }

    /// Leaves chunked application: reads that are final are applied, the others go to the
    /// reorder buffer, as if they had been observed one by one.
    pub fn apply_one_by_one(&mut self, alerts: &mut Vec<Alert>) {
        self.flush_deferred(alerts);
        if let Some(deferred) = self.deferred.take() {
            for read in deferred.reads {
                self.reorder.push(read.ts, read.table, read.principal);
            }
        }
    }

    /// Applies the deferred reads before the watermark, table by table.
    pub(super) fn flush_deferred(&mut self, alerts: &mut Vec<Alert>) {
        let Some(watermark) = self.reorder.watermark() else {
            return;
        };
        let Some(mut deferred) = self.deferred.take() else {
            return;
        };
        let Deferred { reads, ready, .. } = &mut deferred;
        ready.clear();
        reads.retain(|read| {
            let is_final = read.ts < watermark;
            if is_final {
                ready.push(*read);
            }
            !is_final
        });
        self.apply_chunk(ready, Some(watermark), alerts);
        // Reads that stay are looked at again at the next flush: let the chunk grow with them so
        // that a long `lateness` costs no more than a short one per read.
        deferred.flush_at = deferred.chunk.max(2 * deferred.reads.len());
        self.deferred = Some(deferred);
    }

    /// Applies a chunk of reads that is complete up to `until` (nothing earlier than `until` can
    /// arrive later), in any order, **table by table**: each table's baseline then stays in
    /// cache while its reads are applied, instead of every read touching a different table.
    /// Tables are independent, so only the order of the alerts needs care: they are sorted into
    /// the order [`Detector::observe`] gives — at each time, quiet closes due then (by table
    /// name), then `update`s and then `open`s of that instant (by table name). Needs an empty
    /// reorder buffer; the reads must not be earlier than any read applied before (the
    /// watermark sees to that in [`super::ById::collect_in_order`]).
    pub(super) fn apply_chunk(
        &mut self,
        reads: &[BufferedRead],
        until: Option<Ts>,
        alerts: &mut Vec<Alert>,
    ) {
        debug_assert!(
            self.reorder.is_empty(),
            "apply_chunk needs an empty reorder buffer"
        );
        let mut scratch = std::mem::take(&mut self.chunk_scratch);
        let ChunkScratch {
            rest,
            normal,
            by_table,
            order,
            ranks,
            tagged,
            alerts: emitted,
        } = &mut scratch;
        // The commonest read, a normal principal's, needs no order: applied first.
        self.absorb_normal_reads(reads, rest, normal);
        // The rest grouped by table, tables in name order (the order reads of one instant are
        // applied in), time order within each table.
        ranks.update(&self.table_names);
        let by_name = |tables: &mut Vec<TableId>| tables.sort_unstable_by_key(|t| ranks.of(*t));
        chunk_order::order_chunk(rest, self.tables.len(), by_name, order, by_table);
        let ordered = &mut by_table[..];
        let mut start = 0;
        while start < ordered.len() {
            let table = ordered[start].table;
            let mut end = start + 1;
            while end < ordered.len() && ordered[end].table == table {
                end += 1;
            }
            let mut i = start;
            while i < end {
                let ts = ordered[i].ts;
                let mut group_end = i + 1;
                while group_end < end && ordered[group_end].ts == ts {
                    group_end += 1;
                }
                if group_end - i > 1 {
                    let principals = &self.principal_names;
                    ordered[i..group_end].sort_by(|a, b| {
                        principals
                            .name_bytes(a.principal)
                            .cmp(principals.name_bytes(b.principal))
                    });
                }
                if self.tables[table.at()].window.is_some() {
                    self.close_if_quiet(table, ts, emitted);
                    tagged.extend(emitted.drain(..).map(|a| (a.as_of, 0, a)));
                }
                // Start loading the baseline slots of the table's next reads.
                let baseline = &self.tables[table.at()].baseline;
                let ahead =
                    (i + PREFETCH_DISTANCE).min(end)..(group_end + PREFETCH_DISTANCE).min(end);
                for read in &ordered[ahead] {
                    baseline.prefetch(read.principal);
                }
                for read in &ordered[i..group_end] {
                    self.apply_read(read.ts, read.table, read.principal, emitted);
                }
                if !emitted.is_empty() {
                    tagged.extend(emitted.drain(..).map(|a| (ts, 1, a)));
                }
                if !self.opened_now.is_empty() {
                    self.emit_opens(ts, emitted);
                    tagged.extend(emitted.drain(..).map(|a| (ts, 2, a)));
                }
                i = group_end;
            }
            start = end;
        }
        self.after_normal_reads(normal);
        // Then time moves to the end of the chunk: closes due by then, on every table, in
        // deadline order (the timers of windows opened or extended above are in the heap).
        let last = reads.iter().map(|r| r.ts).max();
        let end = match (until, last) {
            (Some(u), Some(l)) => Some(u.max(l)),
            (u, l) => u.or(l),
        };
        if let Some(end) = end {
            self.move_time(end, emitted);
            tagged.extend(emitted.drain(..).map(|a| (a.as_of, moved_time_kind(&a), a)));
        }
        tagged.sort_by(|a, b| {
            (a.0, a.1)
                .cmp(&(b.0, b.1))
                .then_with(|| a.2.table.cmp(&b.2.table))
        });
        alerts.extend(tagged.drain(..).map(|(_, _, alert)| alert));
        self.chunk_scratch = scratch;
    }

    /// Takes one event of a chunk that no later input overlaps (a Parquet row group that ends
    /// before the next one starts): a read is appended to `chunk` for [`super::ById::apply_chunk`]
    /// instead of entering the reorder buffer (see [`super::ById::collect_in_order`]).
    #[inline]
    pub(super) fn collect_in_order(
        &mut self,
        ts: Ts,
        read: Option<(TableId, PrincipalId)>,
        chunk: &mut Vec<BufferedRead>,
    ) -> Observed {
        let incoming = self.incoming_by_ids(read);
        let outcome = self.admit(ts, incoming);
        if let (Observed::Read, Incoming::Read(table, principal)) = (outcome, incoming) {
            chunk.push(BufferedRead {
                ts,
                table,
                principal,
            });
        }
        outcome
    }
}

/// Where an alert made by moving time sorts among the alerts of its instant: a close first
/// (0), what permission changes raise last (3), after the `update`s (1) and `open`s (2) of
/// that instant's reads — the order [`Detector::observe`] gives, where a change is released
/// when time passes its instant.
fn moved_time_kind(alert: &Alert) -> u8 {
    match alert.status {
        AlertStatus::Closed => 0,
        _ => 3,
    }
}
