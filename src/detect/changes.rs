//! What changed in the detector's state since it was last asked — the tables touched (the
//! baseline pairs written and removed, the pending principals, window and learning of each),
//! the population's principals read — as plain data ([`DetectorChanges`]), and how changes
//! fold onto a snapshot ([`FoldedChanges`]). An incremental checkpoint writes changes; a
//! restore and a compaction fold them onto the last full snapshot, table by table, in name
//! order, so that neither needs more than one table of the base at a time.
//!
//! The small rest of the state (event time, counters, the reorder buffer, the permission
//! state) goes whole with every change record: it is what it is now, not a history.

use super::snapshot::{BufferedSnapshot, PendingSnapshot, TableSnapshot, WindowSnapshot};
use super::{Detector, DetectorSnapshot, DetectorStats, RootCauseSnapshot};
use crate::intern::{DenseId, PrincipalId, TableId};
use crate::time::Ts;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Which tables and principals changed since changes were last taken (live mode only: replay
/// and `learn` never ask, and pay a branch for it).
#[derive(Debug, Clone, Default)]
pub(super) struct ChangeMarks {
    tracking: bool,
    tables: Marked<TableId>,
    principals: Marked<PrincipalId>,
}

/// Ids marked, each once, in the order first marked.
#[derive(Debug, Clone)]
struct Marked<I> {
    marked: Vec<bool>,
    ids: Vec<I>,
}

impl<I> Default for Marked<I> {
    fn default() -> Self {
        Marked {
            marked: Vec::new(),
            ids: Vec::new(),
        }
    }
}

impl<I: DenseId> Marked<I> {
    #[inline]
    fn mark(&mut self, id: I) {
        let at = id.index() as usize;
        if at >= self.marked.len() {
            self.marked.resize(at + 1, false);
        }
        if !self.marked[at] {
            self.marked[at] = true;
            self.ids.push(id);
        }
    }

    /// The ids marked, the marks cleared.
    fn take(&mut self) -> Vec<I> {
        let ids = std::mem::take(&mut self.ids);
        for id in &ids {
            self.marked[id.index() as usize] = false;
        }
        ids
    }
}

impl ChangeMarks {
    pub(super) fn tracking(&self) -> bool {
        self.tracking
    }

    /// Table `id` changed.
    #[inline]
    pub(super) fn table(&mut self, id: TableId) {
        if self.tracking {
            self.tables.mark(id);
        }
    }

    /// Principal `id`'s entry in the population changed.
    #[inline]
    pub(super) fn principal(&mut self, id: PrincipalId) {
        if self.tracking {
            self.principals.mark(id);
        }
    }
}

/// The detector's state that changed since changes were last taken, and the small rest whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorChanges {
    pub now: Option<Ts>,
    pub next_prune: Ts,
    pub newest: Option<Ts>,
    pub floor: Option<Ts>,
    pub stats: DetectorStats,
    /// The reorder buffer, whole (see [`DetectorSnapshot::buffered`]).
    pub buffered: Vec<BufferedSnapshot>,
    #[serde(default)]
    pub permissions: RootCauseSnapshot,
    /// Principals whose last read changed, sorted; `None`: gone from the population.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub population: Vec<(String, Option<Ts>)>,
    /// The tables that changed, sorted by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<TableChange>,
}

/// One table's change: its small parts whole, its baseline as the pairs removed and written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableChange {
    pub table: String,
    pub learn_until: Option<Ts>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<PendingSnapshot>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowSnapshot>,
    /// Principals removed from the baseline (before `written` is applied), sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<String>,
    /// (principal, last normal read) written, sorted by principal.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub written: Vec<(String, Ts)>,
}

impl Detector {
    /// From now on, changes are tracked for [`Detector::take_changes`]: what the state holds
    /// already is taken to be persisted.
    pub fn track_changes(&mut self) {
        self.changes.tracking = true;
        for state in &mut self.tables {
            state.baseline.track_removals();
        }
        self.forget_changes();
    }

    /// Takes the state as it is to be persisted (a whole checkpoint was written): clears
    /// every change mark without naming anything.
    pub fn forget_changes(&mut self) {
        self.changes.tables.take();
        self.changes.principals.take();
        // Every table's slots: they mark themselves whether or not changes are tracked.
        for state in &mut self.tables {
            state.baseline.take_changes(|_, _| {});
        }
    }

    /// Whether anything changed since changes were last taken.
    pub fn has_changes(&self) -> bool {
        !self.changes.tables.ids.is_empty() || !self.changes.principals.ids.is_empty()
    }

    /// What changed since the last call (or since [`Detector::track_changes`]).
    pub fn take_changes(&mut self) -> DetectorChanges {
        let changed = self.changes.tables.take();
        let mut tables = Vec::with_capacity(changed.len());
        for id in changed {
            let state = &mut self.tables[id.at()];
            let mut written = Vec::new();
            let names = &self.principal_names;
            let removed = state
                .baseline
                .take_changes(|p, ts| written.push((names.name(p).to_string(), ts)));
            let mut removed: Vec<String> = (removed.into_iter())
                .map(|p| names.name(p).to_string())
                .collect();
            removed.sort();
            removed.dedup();
            written.sort();
            let whole = self.table_snapshot_but_baseline(&self.tables[id.at()]);
            tables.push(TableChange {
                table: whole.table,
                learn_until: whole.learn_until,
                pending: whole.pending,
                window: whole.window,
                removed,
                written,
            });
        }
        tables.sort_by(|a, b| a.table.cmp(&b.table));
        let mut population: Vec<(String, Option<Ts>)> = (self.changes.principals.take())
            .into_iter()
            .map(|id| {
                let last = self.population.get(id.at()).copied().unwrap_or(Ts::MIN);
                (self.principal_names.name(id), last)
            })
            .filter(|(name, _)| !crate::event::is_anonymous(name))
            .map(|(name, last)| (name.to_string(), (last != Ts::MIN).then_some(last)))
            .collect();
        population.sort();
        let whole = self.snapshot_without_tables();
        DetectorChanges {
            now: whole.now,
            next_prune: whole.next_prune,
            newest: whole.newest,
            floor: whole.floor,
            stats: whole.stats,
            buffered: whole.buffered,
            permissions: whole.permissions,
            population,
            tables,
        }
    }
}

/// Change records folded into one: what a restore or a compaction puts onto a snapshot. The
/// last record's whole parts win; a table's pairs are folded in record order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FoldedChanges {
    /// The last record's whole parts (its `tables` and `population` emptied).
    pub last: Option<DetectorChanges>,
    pub population: BTreeMap<String, Option<Ts>>,
    pub tables: BTreeMap<String, TableFold>,
}

/// A table's changes folded.
#[derive(Debug, Clone, PartialEq)]
pub struct TableFold {
    pub learn_until: Option<Ts>,
    pub pending: Vec<PendingSnapshot>,
    pub window: Option<WindowSnapshot>,
    /// `None`: removed.
    pub pairs: BTreeMap<String, Option<Ts>>,
}

impl FoldedChanges {
    pub fn is_empty(&self) -> bool {
        self.last.is_none()
    }

    /// Folds the next record in.
    pub fn fold(&mut self, mut changes: DetectorChanges) {
        for (name, last) in std::mem::take(&mut changes.population) {
            self.population.insert(name, last);
        }
        for change in std::mem::take(&mut changes.tables) {
            let fold = self
                .tables
                .entry(change.table)
                .or_insert_with(|| TableFold {
                    learn_until: None,
                    pending: Vec::new(),
                    window: None,
                    pairs: BTreeMap::new(),
                });
            fold.learn_until = change.learn_until;
            fold.pending = change.pending;
            fold.window = change.window;
            for principal in change.removed {
                fold.pairs.insert(principal, None);
            }
            for (principal, ts) in change.written {
                fold.pairs.insert(principal, Some(ts));
            }
        }
        self.last = Some(changes);
    }

    /// The state of `base` (a table of the snapshot, or `None`) with the changes to table
    /// `name` applied; `None` when it holds nothing (as [`Detector::snapshot`] leaves out).
    pub fn table(&self, name: &str, base: Option<TableSnapshot>) -> Option<TableSnapshot> {
        let Some(fold) = self.tables.get(name) else {
            return base;
        };
        let old = base.map(|t| t.baseline).unwrap_or_default();
        let baseline = merge(old, &fold.pairs);
        let table = TableSnapshot {
            table: name.to_string(),
            learn_until: fold.learn_until,
            baseline,
            pending: fold.pending.clone(),
            window: fold.window.clone(),
        };
        holds_something(&table).then_some(table)
    }

    /// The population of `base` with the changes applied.
    pub fn population(&self, base: Vec<(String, Ts)>) -> Vec<(String, Ts)> {
        merge(base, &self.population)
    }

    /// `base`'s whole parts replaced by the last record's (its tables and population are the
    /// caller's, merged with [`FoldedChanges::table`] and [`FoldedChanges::population`]).
    pub fn whole_parts(&self, base: &mut DetectorSnapshot) {
        if let Some(last) = &self.last {
            base.now = last.now;
            base.next_prune = last.next_prune;
            base.newest = last.newest;
            base.floor = last.floor;
            base.stats = last.stats;
            base.buffered = last.buffered.clone();
            base.permissions = last.permissions.clone();
        }
    }

    /// `base` with every change applied: tables merged in name order.
    pub fn apply(&self, mut base: DetectorSnapshot) -> DetectorSnapshot {
        self.whole_parts(&mut base);
        base.population = self.population(std::mem::take(&mut base.population));
        let old = std::mem::take(&mut base.tables);
        base.tables = self.merge_tables(old.into_iter()).collect();
        base
    }

    /// The tables of `base` (sorted by name) with the changes applied, sorted by name: tables
    /// only the changes have come in their place.
    pub fn merge_tables<'a>(
        &'a self,
        base: impl Iterator<Item = TableSnapshot> + 'a,
    ) -> impl Iterator<Item = TableSnapshot> + 'a {
        let mut base = base.peekable();
        let mut changed = self.tables.keys().peekable();
        std::iter::from_fn(move || {
            loop {
                let next = match (base.peek(), changed.peek()) {
                    (None, None) => return None,
                    (Some(b), Some(c)) if b.table.as_str() == c.as_str() => {
                        changed.next();
                        let b = base.next();
                        b.and_then(|b| self.table(&b.table.clone(), Some(b)))
                    }
                    (Some(b), Some(c)) if b.table.as_str() < c.as_str() => base.next(),
                    (Some(_), None) => base.next(),
                    (_, Some(_)) => {
                        let c = changed.next().expect("peeked");
                        self.table(c, None)
                    }
                };
                if next.is_some() {
                    return next;
                }
            }
        })
    }
}

/// A table worth keeping (see [`Detector::snapshot`]).
pub fn holds_something(table: &TableSnapshot) -> bool {
    table.learn_until.is_some() || table.window.is_some() || !table.pending.is_empty()
}

/// `base` (sorted by name, each once) with `changes` applied (`None`: removed), sorted.
fn merge(base: Vec<(String, Ts)>, changes: &BTreeMap<String, Option<Ts>>) -> Vec<(String, Ts)> {
    if changes.is_empty() {
        return base;
    }
    let mut out = Vec::with_capacity(base.len() + changes.len());
    let mut changes = changes.iter().peekable();
    for (name, ts) in base {
        while let Some((c, change)) = changes.next_if(|(c, _)| c.as_str() < name.as_str()) {
            if let Some(ts) = change {
                out.push((c.clone(), *ts));
            }
        }
        match changes.peek() {
            Some((c, change)) if c.as_str() == name.as_str() => {
                if let Some(ts) = change {
                    out.push((name, *ts));
                }
                changes.next();
            }
            _ => out.push((name, ts)),
        }
    }
    for (c, change) in changes {
        if let Some(ts) = change {
            out.push((c.clone(), *ts));
        }
    }
    out
}
