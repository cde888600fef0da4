//! What `exposure impact` asks of one replay (with `record_grant_states`): every permission
//! change the detector admits (its own ledger forgets reverted grants once no window can need
//! them; impact needs their revokes), and, for every read grant, the state of each table the
//! grant's object holds **as the grant was made** — who was normal there then. A table's state
//! is kept just before its first read at or after the grant (or when time moves past the grant
//! and the table was not read since, before anything is pruned); tables are independent, so
//! this is exact in chunked application too. Not a rule: nothing here changes an alert.

use super::permission::{containers, contains};
use super::snapshot::TableSnapshot;
use super::{Detector, TableId};
use crate::event::{ChangeAction, PermissionChange, grants_read};
use crate::intern::DenseId;
use crate::time::Ts;
use std::collections::BTreeMap;

/// The states kept, by grant instant and object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GrantStates {
    /// Every change admitted, in arrival order.
    pub changes: Vec<PermissionChange>,
    /// (grant time, object) → the states of its tables then, sorted by table (a table never
    /// read before the grant is not there: nobody was normal for it).
    pub tables: BTreeMap<(Ts, String), Vec<TableSnapshot>>,
}

impl GrantStates {
    /// The states of `object`'s tables as a grant on it at `at` was made. Alerts give times
    /// to the millisecond: `at` may be the grant's time cut to one.
    pub fn at(&self, at: Ts, object: &str) -> &[TableSnapshot] {
        const MILLI: Ts = 1_000;
        self.tables
            .range((at, String::new())..(at.saturating_add(MILLI), String::new()))
            .find(|((_, o), _)| o == object)
            .map_or(&[], |(_, tables)| tables.as_slice())
    }
}

/// The recorder in the detector.
#[derive(Debug, Clone, Default)]
pub(super) struct Recorder {
    states: GrantStates,
    /// The read grants seen: (time, object), each once.
    grants: Vec<(Ts, String)>,
    /// The same, by object: the indexes of its grants in `grants`.
    by_object: rustc_hash::FxHashMap<String, Vec<usize>>,
    /// Per table (by id), the grants whose state is still to be kept.
    due: Vec<Vec<usize>>,
}

impl Detector {
    /// Records an admitted change (with `record_grant_states`): a read grant marks every
    /// table its object holds (known now, or read later).
    #[cold]
    pub(super) fn record_grant_state(&mut self, change: &PermissionChange) {
        let Some(recorder) = self.grant_recorder.as_mut() else {
            return;
        };
        recorder.states.changes.push(change.clone());
        if change.action != ChangeAction::Grant
            || change.is_membership()
            || !grants_read(&change.privilege)
        {
            return;
        }
        let on_object = recorder.by_object.entry(change.object.clone()).or_default();
        if on_object.iter().any(|&g| recorder.grants[g].0 == change.ts) {
            return;
        }
        let grant = recorder.grants.len();
        on_object.push(grant);
        recorder.grants.push((change.ts, change.object.clone()));
        for (at, state) in self.tables.iter().enumerate() {
            if contains(&change.object, &state.name) {
                recorder.due.resize_with(self.tables.len(), Vec::new);
                recorder.due[at].push(grant);
                self.next_grant_state[at] = self.next_grant_state[at].min(change.ts);
            }
        }
    }

    /// A table first seen: the grants already recorded on what holds it are due on it.
    #[cold]
    pub(super) fn mark_new_table(&mut self, table: TableId) {
        let Some(recorder) = self.grant_recorder.as_mut() else {
            return;
        };
        let name = &self.tables[table.at()].name;
        recorder.due.resize_with(self.tables.len(), Vec::new);
        // The grants on the table or on what holds it, looked up by object.
        for object in containers(name) {
            for &grant in recorder.by_object.get(object).into_iter().flatten() {
                let at = recorder.grants[grant].0;
                recorder.due[table.at()].push(grant);
                self.next_grant_state[table.at()] = self.next_grant_state[table.at()].min(at);
            }
        }
    }

    /// Keeps `table`'s state for every grant due on it at or before `now` (before a read at
    /// `now` is applied, or as time moves to `now`).
    #[cold]
    pub(super) fn keep_grant_states(&mut self, table: TableId, now: Ts) {
        let Some(mut recorder) = self.grant_recorder.take() else {
            return;
        };
        let mut next = Ts::MAX;
        let mut snapshot = None;
        let due = std::mem::take(&mut recorder.due[table.at()]);
        let mut still = Vec::with_capacity(due.len());
        for grant in due {
            let (at, object) = &recorder.grants[grant];
            if *at > now {
                next = next.min(*at);
                still.push(grant);
                continue;
            }
            let state = snapshot
                .get_or_insert_with(|| self.table_snapshot(&self.tables[table.at()]))
                .clone();
            let kept = recorder
                .states
                .tables
                .entry((*at, object.clone()))
                .or_default();
            if state.learn_until.is_some() {
                let at = kept.partition_point(|t| t.table < state.table);
                kept.insert(at, state);
            }
        }
        recorder.due[table.at()] = still;
        self.next_grant_state[table.at()] = next;
        self.grant_recorder = Some(recorder);
    }

    /// Keeps the states of every table with a grant due at or before `now`.
    pub(super) fn keep_all_grant_states(&mut self, now: Ts) {
        if self.grant_recorder.is_none() {
            return;
        }
        for at in 0..self.tables.len() {
            if self.next_grant_state[at] <= now {
                self.keep_grant_states(TableId::from_index(at as u32), now);
            }
        }
    }

    /// The states recorded (`record_grant_states`), every grant's kept: the input ended.
    pub fn take_grant_states(&mut self) -> Option<GrantStates> {
        self.keep_all_grant_states(Ts::MAX);
        let recorder = self.grant_recorder.take()?;
        let mut states = recorder.states;
        // Grants no table was read under still name their (empty) object.
        for (at, object) in recorder.grants {
            states.tables.entry((at, object)).or_default();
        }
        Some(states)
    }
}
