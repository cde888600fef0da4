//! Detector state as plain data, for live mode's checkpoints and `exposure learn`: per-table
//! baselines, pending principals, open windows, the reads still waiting in the reorder buffer,
//! the permission state (what the logs say is granted to whom), and the clock. Names, never interned ids, so a snapshot outlives the process that wrote it,
//! and restoring one compacts the interners (forgotten names are simply not there any more).
//!
//! Policies are not part of it: they are resolved again from the configuration on restore, so
//! a changed `[[tables]]` rule takes effect at the next start.

use super::clock::CloseTimer;
use super::root_cause::{RootCause, RootCauseSnapshot};
use super::rules::{Activity, Pending, TableState, Window};
use super::{Detector, DetectorSettings, DetectorStats};
use crate::detect::baseline::Baseline;
use crate::time::Ts;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::sync::Arc;

/// The whole detector state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorSnapshot {
    /// Event time up to which everything has been applied.
    pub now: Option<Ts>,
    pub next_prune: Ts,
    /// Newest event time seen.
    pub newest: Option<Ts>,
    /// Watermark floor raised by the wall clock.
    pub floor: Option<Ts>,
    pub stats: DetectorStats,
    /// Sorted by table name.
    pub tables: Vec<TableSnapshot>,
    /// Reads not yet applied, sorted by (time, table, principal).
    pub buffered: Vec<BufferedSnapshot>,
    /// Permission state: the changes recorded, those not yet released, and closed windows
    /// waiting for the revert of their cause.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub permissions: RootCauseSnapshot,
    /// The population: every principal (not anonymous) that read a watched table within the
    /// default `forget_after`, with its last read, sorted by principal. Who "everyone" is, for
    /// `exposure check`; absent from states written before it was kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub population: Vec<(String, Ts)>,
}

/// Which rule would decide a read of `table` (its state in a snapshot; `None`: never read) by
/// `principal` at `at`, under `policy`: the detector's own [`super::decide`], asked of a
/// snapshot (what `exposure explain` says).
pub fn decide_read(
    table: Option<&TableSnapshot>,
    policy: &super::TablePolicy,
    principal: &str,
    at: Ts,
) -> super::Decides {
    let mut facts = SnapshotRead {
        table,
        policy,
        principal,
        at,
    };
    super::decide(&mut facts, policy, at, || principal)
}

/// A snapshot's facts for a read by `principal` at `at`.
struct SnapshotRead<'a> {
    table: Option<&'a TableSnapshot>,
    policy: &'a super::TablePolicy,
    principal: &'a str,
    at: Ts,
}

impl super::ReadFacts for SnapshotRead<'_> {
    fn learn_until(&self) -> Option<Ts> {
        self.table.and_then(|t| t.learn_until)
    }

    fn last_normal(&mut self) -> Option<Ts> {
        let table = self.table?;
        let span = self.policy.thresholds.span.micros();
        let graduated = table
            .pending
            .iter()
            .find(|p| p.principal == self.principal && self.at - p.first_novel >= span)
            .map(|p| p.last_read);
        let baseline = table
            .baseline
            .binary_search_by(|(p, _)| p.as_str().cmp(self.principal))
            .ok()
            .map(|at| table.baseline[at].1);
        graduated.max(baseline)
    }

    fn window_open(&self) -> bool {
        self.table.is_some_and(|t| t.window.is_some())
    }

    fn anonymous(&mut self) -> bool {
        crate::event::is_anonymous(self.principal)
    }
}

fn is_empty(permissions: &RootCauseSnapshot) -> bool {
    *permissions == RootCauseSnapshot::default()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSnapshot {
    pub table: String,
    pub learn_until: Option<Ts>,
    /// (principal, last normal read), sorted by principal.
    pub baseline: Vec<(String, Ts)>,
    pub pending: Vec<PendingSnapshot>,
    pub window: Option<WindowSnapshot>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingSnapshot {
    pub principal: String,
    pub first_novel: Ts,
    pub last_read: Ts,
    pub reads: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowSnapshot {
    pub start: Ts,
    pub end: Ts,
    pub reads: u64,
    pub baseline_principals: usize,
    pub alerted_principals: usize,
    /// Sorted by principal.
    pub principals: Vec<ActivitySnapshot>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivitySnapshot {
    pub principal: String,
    pub first_read: Ts,
    pub last_read: Ts,
    pub reads: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BufferedSnapshot {
    pub ts: Ts,
    pub table: String,
    pub principal: String,
}

impl DetectorSnapshot {
    /// A copy of everything but the tables and the population (what is small).
    pub fn clone_without_tables(&self) -> DetectorSnapshot {
        DetectorSnapshot {
            now: self.now,
            next_prune: self.next_prune,
            newest: self.newest,
            floor: self.floor,
            stats: self.stats,
            tables: Vec::new(),
            buffered: self.buffered.clone(),
            permissions: self.permissions.clone(),
            population: Vec::new(),
        }
    }
}

impl Detector {
    /// The detector's state as plain data. Deterministic: the same state gives the same
    /// snapshot, whatever order names were interned in.
    pub fn snapshot(&self) -> DetectorSnapshot {
        let mut tables: Vec<TableSnapshot> = self
            .tables
            .iter()
            .map(|state| self.table_snapshot(state))
            // A table seen once and holding nothing is not worth keeping.
            .filter(super::changes::holds_something)
            .collect();
        tables.sort_by(|a, b| a.table.cmp(&b.table));
        DetectorSnapshot {
            tables,
            population: self.population_snapshot(),
            ..self.snapshot_without_tables()
        }
    }

    /// The snapshot's parts that are not per table or per principal: time, counters, the
    /// reorder buffer, the permission state.
    pub(super) fn snapshot_without_tables(&self) -> DetectorSnapshot {
        // Deferred reads (chunked application) are restored into the reorder buffer: applied one
        // by one from there, they give the same alerts.
        let mut buffered: Vec<BufferedSnapshot> = self
            .waiting_reads()
            .map(|read| BufferedSnapshot {
                ts: read.ts,
                table: self.table_names.name(read.table).to_string(),
                principal: self.principal_names.name(read.principal).to_string(),
            })
            .collect();
        buffered.sort();
        DetectorSnapshot {
            now: self.now,
            next_prune: self.next_prune,
            newest: self.reorder.newest(),
            floor: self.reorder.floor(),
            stats: self.stats,
            tables: Vec::new(),
            buffered,
            permissions: self.root_cause.snapshot(),
            population: Vec::new(),
        }
    }

    /// The population as plain data (see [`DetectorSnapshot::population`]).
    fn population_snapshot(&self) -> Vec<(String, Ts)> {
        self.population_where(|_| true)
    }

    /// The entries of the population whose principal `keep` accepts, sorted: a part of
    /// [`DetectorSnapshot::population`].
    pub fn population_where(&self, keep: impl Fn(&str) -> bool) -> Vec<(String, Ts)> {
        let mut population: Vec<(String, Ts)> = (self.population.iter().enumerate())
            .filter(|(_, last)| **last != Ts::MIN)
            .map(|(at, last)| {
                let id =
                    <crate::intern::PrincipalId as crate::intern::DenseId>::from_index(at as u32);
                (self.principal_names.name(id), *last)
            })
            .filter(|(name, _)| !crate::event::is_anonymous(name) && keep(name))
            .map(|(name, last)| (name.to_string(), last))
            .collect();
        population.sort();
        population
    }

    /// Table `name`'s state as plain data, when the detector knows it and it holds something
    /// (as [`Detector::snapshot`] lists it).
    pub fn table_snapshot_of(&self, name: &str) -> Option<TableSnapshot> {
        let id = self.table_names.get(name)?;
        let state = self.tables.get(id.at())?;
        Some(self.table_snapshot(state)).filter(super::changes::holds_something)
    }

    /// One table's state as plain data.
    pub(super) fn table_snapshot(&self, state: &TableState) -> TableSnapshot {
        let principal = |id| self.principal_names.name(id).to_string();
        let mut baseline: Vec<(String, Ts)> = state
            .baseline
            .entries()
            .map(|(id, last)| (principal(id), last))
            .collect();
        baseline.sort();
        TableSnapshot {
            baseline,
            ..self.table_snapshot_but_baseline(state)
        }
    }

    /// One table's state as plain data, its baseline left empty (what is small).
    pub(super) fn table_snapshot_but_baseline(&self, state: &TableState) -> TableSnapshot {
        let principal = |id| self.principal_names.name(id).to_string();
        TableSnapshot {
            table: state.name.to_string(),
            learn_until: state.learn_until,
            baseline: Vec::new(),
            pending: state
                .pending
                .iter()
                .map(|p| PendingSnapshot {
                    principal: principal(p.principal),
                    first_novel: p.first_novel,
                    last_read: p.last_read,
                    reads: p.reads,
                })
                .collect(),
            window: state.window.as_ref().map(|w| {
                let mut principals: Vec<ActivitySnapshot> = w
                    .principals
                    .iter()
                    .map(|(&id, a)| ActivitySnapshot {
                        principal: principal(id),
                        first_read: a.first_read,
                        last_read: a.last_read,
                        reads: a.reads,
                    })
                    .collect();
                principals.sort_by(|a, b| a.principal.cmp(&b.principal));
                WindowSnapshot {
                    start: w.start,
                    end: w.end,
                    reads: w.reads,
                    baseline_principals: w.baseline_principals,
                    alerted_principals: w.alerted_principals,
                    principals,
                }
            }),
        }
    }

    /// A detector in the state `snapshot` describes, with `settings` (policies are resolved
    /// anew). `Detector::restore(s, d.snapshot())` behaves exactly like `d` from then on.
    pub fn restore(settings: DetectorSettings, snapshot: &DetectorSnapshot) -> Detector {
        let mut detector = Detector::new(settings);
        for table in &snapshot.tables {
            let id = detector.table_id(&table.table);
            let names = &mut detector.principal_names;
            let baseline = Baseline::restored(
                (table.baseline.iter()).map(|(principal, last)| (names.intern(principal), *last)),
            );
            let pending = table
                .pending
                .iter()
                .map(|p| Pending {
                    principal: detector.principal_names.intern(&p.principal),
                    first_novel: p.first_novel,
                    last_read: p.last_read,
                    reads: p.reads,
                })
                .collect();
            let window = table.window.as_ref().map(|w| Window {
                start: w.start,
                end: w.end,
                reads: w.reads,
                baseline_principals: w.baseline_principals,
                alerted_principals: w.alerted_principals,
                principals: w
                    .principals
                    .iter()
                    .map(|a| {
                        let activity = Activity {
                            first_read: a.first_read,
                            last_read: a.last_read,
                            reads: a.reads,
                        };
                        (detector.principal_names.intern(&a.principal), activity)
                    })
                    .collect::<FxHashMap<_, _>>(),
            });
            let state: &mut TableState = &mut detector.tables[id.at()];
            state.learn_until = table.learn_until;
            state.baseline = baseline;
            state.pending = pending;
            if let Some(window) = &window {
                detector.timers.push(Reverse(CloseTimer {
                    deadline: window.end + state.policy.thresholds.quiet.micros(),
                    table_name: Arc::clone(&state.name),
                    table: id,
                }));
            }
            state.window = window;
        }
        if let Some(newest) = snapshot.newest {
            detector.reorder.note(newest);
        }
        if let Some(floor) = snapshot.floor {
            detector.reorder.raise_floor(floor);
        }
        for read in &snapshot.buffered {
            let table = detector.table_id(&read.table);
            let principal = detector.principal_names.intern(&read.principal);
            detector.reorder.push(read.ts, table, principal);
        }
        detector.now = snapshot.now;
        detector.next_prune = snapshot.next_prune;
        detector.stats = snapshot.stats;
        detector.root_cause = RootCause::restore(&snapshot.permissions);
        for (principal, last) in &snapshot.population {
            let id = detector.principal_names.intern(principal);
            detector.note_population(id, *last);
        }
        let seed = std::sync::Arc::clone(&detector.settings.permissions.seed);
        detector.seed_permissions(&seed);
        detector
    }
}
