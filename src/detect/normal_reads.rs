//! An optimisation, not a rule: the commonest read — a normal principal reading a table it
//! reads every day — is applied **before** a chunk is ordered, by one probe of its table's
//! baseline and one time stored, and only the other reads are ordered and applied one by one
//! ([`super::chunked`]). Past a table's learning, that is most of its reads.
//!
//! Why that gives exactly what applying the chunk in time order gives. Take a chunk whose
//! reads are complete (nothing earlier can arrive later), a (table, principal) pair with reads
//! `t1 < t2 < …` in it, and `L` its last normal read before the chunk. Rule 2 decides a read of
//! the pair when it is within `forget_after` of the pair's last normal read then; so if it
//! decides `tk`, it decides every read before `tk` too (each is within `forget_after` of the
//! one before it, back to `L`), and its whole effect on them is the baseline's time moving
//! forward (a read while the table learns, of a principal already in it, does the same).
//!
//! Here the reads are tested in the order they come, each against the time held then: `L`, or
//! a read of the same pair absorbed before it (earlier or later in time). A read that passes
//! is one rule 2 decides in time order — by induction: passing against `L` means every read of
//! the pair up to it is within `forget_after` of `L`; passing against an absorbed read `t'`
//! that rule 2 decides, the read is before `t'` (so decided too) or within `forget_after`
//! after it. So applying it now only moves the time, as it would have. A read that fails is
//! applied in order with the other reads; if its pair had a read absorbed, rule 2 decides it
//! all the same, and the time held is the latest either way. Nothing else looks at the pair
//! meanwhile but [`super::TableState::normal_principals`] when a window opens, which counts it
//! normal either way (between two reads rule 2 decides, it is within `forget_after` of one).
//!
//! Pending principals graduate as every read of their table would have made them
//! ([`super::TableState::graduate_pending`] is monotone in time), once the reads applied in
//! order are. Tables recording their baselines at openings, and reads at or after a grant
//! whose state of their table is to be kept, are left to the rules. The property tests
//! `chunks_applied_table_by_table_give_identical_alerts` and `chunked_state_is_one_by_one_state`
//! (tests/it/properties.rs) hold it to that.

use super::Detector;
use super::clock::PREFETCH_DISTANCE;
use super::reorder::BufferedRead;
use crate::intern::TableId;
use crate::time::Ts;

/// Reusable buffers for [`Detector::absorb_normal_reads`].
#[derive(Debug, Clone, Default)]
pub(super) struct NormalScratch {
    /// Per table, the latest read absorbed in this chunk (`Ts::MIN`: none).
    latest: Vec<Ts>,
    /// The tables with a read absorbed.
    touched: Vec<TableId>,
}

impl Detector {
    /// Applies the reads of `reads` (a chunk complete up to its last read) that rule 2 decides
    /// in any order (see the module comment), and appends the others to `rest`, in their
    /// order. Call [`Detector::after_normal_reads`] once `rest` is applied.
    pub(super) fn absorb_normal_reads(
        &mut self,
        reads: &[BufferedRead],
        rest: &mut Vec<BufferedRead>,
        scratch: &mut NormalScratch,
    ) {
        rest.clear();
        if self.settings.record_baselines {
            rest.extend_from_slice(reads);
            return;
        }
        let NormalScratch { latest, touched } = scratch;
        latest.resize(self.tables.len(), Ts::MIN);
        for (i, read) in reads.iter().enumerate() {
            if let Some(ahead) = reads.get(i + PREFETCH_DISTANCE) {
                self.tables[ahead.table.at()]
                    .baseline
                    .prefetch(ahead.principal);
            }
            let at = read.table.at();
            let state = &mut self.tables[at];
            let forget = state.policy.thresholds.forget_after.micros();
            let normal = state.learn_until.is_some()
                && read.ts < self.next_grant_state[at]
                && state.baseline.find(read.principal).is_some_and(|slot| {
                    let normal = read.ts - state.baseline.last_read_at(slot) <= forget;
                    if normal {
                        state.baseline.refresh_at(slot, read.ts);
                    }
                    normal
                });
            if !normal {
                rest.push(*read);
                continue;
            }
            self.changes.table(read.table);
            let latest = &mut latest[at];
            if *latest == Ts::MIN {
                touched.push(read.table);
            }
            *latest = (*latest).max(read.ts);
        }
    }

    /// Once the chunk's other reads are applied: pending principals graduate as the absorbed
    /// reads would have made them.
    pub(super) fn after_normal_reads(&mut self, scratch: &mut NormalScratch) {
        for table in scratch.touched.drain(..) {
            let latest = std::mem::replace(&mut scratch.latest[table.at()], Ts::MIN);
            let state = &mut self.tables[table.at()];
            if !state.pending.is_empty() {
                state.graduate_pending(latest);
            }
        }
    }
}
