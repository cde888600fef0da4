//! Event time: the watermark (reads before it are final and applied in order), close timers
//! (a window quiet for `quiet` closes at its deadline, in deadline order), pruning of forgotten
//! baseline entries, and the end of input. The rules themselves are in [`super::rules`].

use super::Detector;
use super::alert::{Alert, ClosedBy};
use super::reorder::BufferedRead;
use crate::intern::{DenseId, PrincipalId, TableId};
use crate::time::{MICROS_PER_SEC, Micros, Ts};
use std::cmp::Reverse;
use std::sync::Arc;

/// A due window close, ordered by (deadline, table name): never by id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct CloseTimer {
    pub(super) deadline: Ts,
    pub(super) table_name: Arc<str>,
    pub(super) table: TableId,
}

/// How many reads ahead the baseline slot is prefetched.
pub(super) const PREFETCH_DISTANCE: usize = 16;

const PRUNE_EVERY: Micros = 86_400 * MICROS_PER_SEC;

impl Detector {
    /// From now on, only [`Detector::advance`] moves the watermark: for sources that know a
    /// lower bound of every event still to come (sorted Parquet row groups), so that the result
    /// is that of sorted input whatever `lateness` says.
    pub fn use_external_watermark(&mut self) {
        self.reorder.use_external_watermark();
    }

    /// Moves event time to `watermark` without an event: reads before it are applied, windows
    /// quiet by then are closed, and later events before it count as late. Used by live mode
    /// when streams are silent and by sources that know a lower bound of what is still to come
    /// (several inputs, Parquet row groups). Applying reads in chunks, reads wait until a chunk
    /// is full (their alerts are the same, only later).
    pub fn advance(&mut self, watermark: Ts, alerts: &mut Vec<Alert>) {
        self.reorder.raise_floor(watermark);
        if let Some(deferred) = &self.deferred {
            if deferred.reads.len() >= deferred.flush_at {
                self.flush_deferred(alerts);
            }
            return;
        }
        if let Some(w) = self.reorder.watermark() {
            self.release_before(w, alerts);
        }
    }

    /// The history ends here and another run takes over (`learn`, then `watch`): every
    /// buffered read is applied and time moves to the newest event, so that nothing older is
    /// taken from now on and nothing of the history waits to be alerted later. Windows still
    /// open stay open: the run that takes over extends and closes them.
    pub fn settle(&mut self, alerts: &mut Vec<Alert>) {
        if let Some(deferred) = self.deferred.take() {
            self.apply_chunk(&deferred.reads, None, alerts);
        }
        while !self.reorder.is_empty() {
            self.apply_earliest(alerts);
        }
        if let Some(newest) = self.reorder.newest() {
            self.reorder.raise_floor(newest);
            self.move_time(newest, alerts);
        }
    }

    /// The input ended: applies every buffered read, then closes the windows still open (sorted
    /// by table name) with `closed_by = end_of_input`.
    pub fn finish(&mut self, alerts: &mut Vec<Alert>) {
        if let Some(deferred) = self.deferred.take() {
            // The input ended: every deferred read is final.
            self.apply_chunk(&deferred.reads, None, alerts);
        }
        while !self.reorder.is_empty() {
            self.apply_earliest(alerts);
        }
        // Time reaches what the event-driven watermark would have: the newest event minus
        // `lateness`. A source with its own watermark (sorted Parquet row groups) may not have
        // got there if its last events were not reads; closes due by then are quiet closes,
        // whatever the source.
        if let Some(newest) = self.reorder.newest() {
            let settled = newest.saturating_sub(self.settings.lateness.micros());
            self.move_time(settled, alerts);
        }
        let mut open: Vec<TableId> = (0..self.tables.len() as u32)
            .map(TableId::from_index)
            .filter(|t| self.tables[t.at()].window.is_some())
            .collect();
        open.sort_by(|a, b| self.tables[a.at()].name.cmp(&self.tables[b.at()].name));
        // The newest event seen, whatever the source: not `now`, which depends on how the
        // watermark moved.
        let as_of = self.reorder.newest().or(self.now).unwrap_or_default();
        // Every change is known now: the last ones go out before the windows end.
        self.release_all_changes(alerts);
        for table in open {
            self.close_window(table, as_of, ClosedBy::EndOfInput, alerts);
        }
        self.timers.clear();
    }

    /// Applies every buffered read before `watermark`, then the closes due by it.
    pub(super) fn release_before(&mut self, watermark: Ts, alerts: &mut Vec<Alert>) {
        while self.reorder.earliest().is_some_and(|ts| ts < watermark) {
            // Start loading the baseline slot of a read a few places ahead: by the time it is
            // applied, its cache miss is paid.
            if let Some(ahead) = self.reorder.queued_ahead(PREFETCH_DISTANCE) {
                self.tables[ahead.table.at()]
                    .baseline
                    .prefetch(ahead.principal);
            }
            self.apply_earliest(alerts);
        }
        // Every read before the watermark is applied, and a read at the watermark could no longer
        // extend a window due then, so closes due by the watermark are final.
        self.move_time(watermark, alerts);
    }

    /// Applies all buffered reads at the earliest instant.
    pub(super) fn apply_earliest(&mut self, alerts: &mut Vec<Alert>) {
        let mut group = std::mem::take(&mut self.same_instant);
        group.clear();
        if let Some(ts) = self.reorder.pop_earliest(&mut group) {
            self.apply_instant(ts, &mut group, alerts);
        }
        self.same_instant = group;
    }

    /// Applies the reads of instant `ts`: closes due by `ts` first, then the reads in
    /// (table name, principal name) order, then the `open` alerts of the instant (so that they
    /// list every principal of it).
    pub(super) fn apply_instant(
        &mut self,
        ts: Ts,
        group: &mut [BufferedRead],
        alerts: &mut Vec<Alert>,
    ) {
        if group.len() > 1 {
            let (tables, principals) = (&self.table_names, &self.principal_names);
            group.sort_unstable_by(|a, b| {
                tables
                    .name_bytes(a.table)
                    .cmp(tables.name_bytes(b.table))
                    .then_with(|| {
                        principals
                            .name_bytes(a.principal)
                            .cmp(principals.name_bytes(b.principal))
                    })
            });
        }
        self.move_time(ts, alerts);
        for read in group.iter() {
            self.apply_read(read.ts, read.table, read.principal, alerts);
        }
        self.emit_opens(ts, alerts);
    }

    /// Moves the detector's clock to `now`: fires closes due by then and prunes forgotten state.
    pub(super) fn move_time(&mut self, now: Ts, alerts: &mut Vec<Alert>) {
        if self.now.is_some_and(|n| n >= now) {
            return;
        }
        self.now = Some(now);
        // Closes due by `now` and permission changes before it, in time order; a close before
        // the changes of its instant.
        loop {
            let due = self
                .timers
                .peek()
                .map(|Reverse(t)| t.deadline)
                .filter(|&d| d <= now);
            match (due, self.next_change_before(now)) {
                (Some(deadline), Some(change)) if change < deadline => {
                    self.release_changes_at(change, alerts);
                }
                (Some(_), _) => self.fire_next_timer(alerts),
                (None, Some(change)) => self.release_changes_at(change, alerts),
                (None, None) => break,
            }
        }
        if now >= self.next_prune {
            self.prune(now);
            self.next_prune = now.saturating_add(PRUNE_EVERY);
        }
    }

    /// Fires the earliest close timer: closes its window if it is still due then.
    fn fire_next_timer(&mut self, alerts: &mut Vec<Alert>) {
        let Some(Reverse(timer)) = self.timers.pop() else {
            return;
        };
        let state = &self.tables[timer.table.at()];
        let Some(window) = &state.window else {
            return;
        };
        let deadline = window.end + state.policy.thresholds.quiet.micros();
        if deadline == timer.deadline {
            self.close_window(timer.table, deadline, ClosedBy::Quiet, alerts);
        } else {
            // The window was extended since this timer was set: queue it again at its true
            // deadline, so that closes come out in deadline order however far time jumped.
            self.timers.push(Reverse(CloseTimer { deadline, ..timer }));
        }
    }

    /// Drops baseline entries past `forget_after`: they are no longer normal, so dropping them
    /// changes no result and keeps state bounded on a long run.
    pub(super) fn prune(&mut self, now: Ts) {
        self.keep_all_grant_states(now);
        for (at, state) in self.tables.iter_mut().enumerate() {
            let forget = state.policy.thresholds.forget_after.micros();
            if state.baseline.retain(|last| now - last <= forget) > 0 {
                self.changes.table(TableId::from_index(at as u32));
            }
        }
        let forget = self
            .settings
            .policies
            .default
            .thresholds
            .forget_after
            .micros();
        for (at, last) in self.population.iter_mut().enumerate() {
            if *last != Ts::MIN && now - *last > forget {
                *last = Ts::MIN;
                self.changes.principal(PrincipalId::from_index(at as u32));
            }
        }
        self.prune_permissions(now);
    }
}
