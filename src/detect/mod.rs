//! The detector: a pure state machine over access events in event time. It owns the product's
//! contract (learning, baseline, novel and pending principals, opening, extending and closing
//! exposure windows, no poisoning) and nothing else: no clock, no files, no tokio. Sources feed it
//! with [`Detector::observe`], time moves with [`Detector::advance`], and alerts come out in a
//! `Vec` the caller drains.
//!
//! Determinism: reads pass through a [`ReorderBuffer`] and are applied in event-time order; reads
//! of the same instant are applied sorted by (table, principal) name; window closes due at an
//! instant are applied before that instant's reads, sorted by table name. Interned ids never decide
//! an order, so any arrival order within `lateness` gives byte-identical alerts.
//!
//! Speed: replay applies reads in chunks, table by table ([`Detector::apply_in_chunks`],
//! [`ById::apply_chunk`]) and puts the alerts back in the order above; tables are
//! independent, so only that order needs care. Its fast paths hand in ids instead of names,
//! through [`Detector::by_id`]: the everyday surface stays observe, advance, finish.
//!
//! Files: `rules.rs` is the contract of docs/detection.md, rule by rule; `clock.rs` moves time
//! (watermark, close timers, end of input); `root_cause.rs` takes permission changes and
//! `permission.rs` answers which one opened a window; `chunked.rs` is the chunked
//! optimisation; `by_id.rs` the id surface; `snapshot.rs` checkpoints.

pub mod alert;
pub mod baseline;
mod by_id;
pub mod changes;
mod chunk_order;
mod chunked;
mod clock;
pub mod grant_states;
mod normal_reads;
pub mod permission;
pub mod policy;
pub mod reorder;
mod root_cause;
mod rules;
pub mod shard;
pub mod snapshot;

pub use alert::{
    ALERT_SCHEMA, Alert, AlertStatus, ChangeRecord, ClosedBy, PrincipalActivity, Severity,
};
pub use by_id::ById;
pub use changes::{DetectorChanges, FoldedChanges, TableChange};
pub use grant_states::GrantStates;
pub use permission::PermissionSettings;
pub use policy::{Policies, TablePolicy, TableRule, Thresholds};
pub use reorder::{BufferedRead, ReorderBuffer};
pub use root_cause::RootCauseSnapshot;
pub use rules::{Decides, ReadFacts, decide};
pub use snapshot::DetectorSnapshot;

use chunked::{ChunkScratch, Deferred};
use clock::CloseTimer;
use root_cause::RootCause;
use rules::TableState;

use crate::event::{AccessEvent, ReadActions};
use crate::intern::{DenseId, Interner, PrincipalId, TableId};
use crate::time::{Micros, Span, Ts};
use baseline::Baseline;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

/// Everything the detector is configured with.
#[derive(Debug, Clone)]
pub struct DetectorSettings {
    pub policies: Policies,
    pub read_actions: ReadActions,
    /// How far out of order events may arrive and still be used.
    pub lateness: Span,
    /// How far ahead an event may be — of its input's newest event in replay, of the wall
    /// clock in `watch` — before it is taken for a wrong clock and quarantined (see
    /// [`crate::watermark`]).
    pub max_ahead: Span,
    /// Emit `update` alerts when a window's novel principals double.
    pub emit_updates: bool,
    /// `replay --from`: only windows still open at this time or opened later are reported.
    /// Everything before it is still applied — the baseline is learned from all the history —
    /// and a reported window's alerts dated before it go out with its first alert after it.
    pub report_from: Option<Ts>,
    /// Root cause: the cause horizon and the grantees that count as broad.
    pub permissions: PermissionSettings,
    /// `replay --shard K/N`: detect on this shard's tables only (see [`shard::Shard`]).
    pub shard: Option<shard::Shard>,
    /// Keep each window's baseline as it opens ([`Detector::take_baselines`]; `exposure
    /// report`).
    pub record_baselines: bool,
    /// Keep every permission change and each table's state as read grants on it are made
    /// ([`Detector::take_grant_states`]; `exposure impact`).
    pub record_grant_states: bool,
}

impl Default for DetectorSettings {
    fn default() -> Self {
        DetectorSettings {
            policies: Policies::default(),
            read_actions: ReadActions::default(),
            lateness: Span::from_secs(300),
            max_ahead: Span::from_secs(3600),
            emit_updates: false,
            report_from: None,
            permissions: PermissionSettings::default(),
            shard: None,
            record_baselines: false,
            record_grant_states: false,
        }
    }
}

/// What became of one observed event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// A read of a watched table, queued for detection.
    Read,
    /// Not a read (a write, DDL, ...): it only moves event time.
    NotRead,
    /// A read of a table whose policy ignores it.
    Ignored,
    /// A permission change, recorded.
    Change,
    /// Older than the watermark by `behind`: counted, not used.
    Late { behind: Micros },
}

/// Counters kept by the detector.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DetectorStats {
    pub reads: u64,
    pub non_reads: u64,
    pub ignored: u64,
    pub late: u64,
    pub windows_opened: u64,
    pub alerts: u64,
    /// Windows closed before `report_from` (not reported).
    #[serde(default)]
    pub windows_unreported: u64,
    /// Permission changes observed (not late).
    #[serde(default)]
    pub permission_changes: u64,
}

/// The exposure-window detector.
#[derive(Debug, Clone)]
pub struct Detector {
    settings: DetectorSettings,
    tables: Vec<TableState>,
    table_names: Interner<TableId>,
    /// `ignored[table]`: the table's policy ignores it, or it is another shard's (looked up on
    /// every event, so kept apart from the table's state).
    ignored: Vec<bool>,
    principal_names: Interner<PrincipalId>,
    /// Which principals are anonymous (their reads are public), by id.
    anonymity: rules::Anonymity,
    reorder: ReorderBuffer,
    same_instant: Vec<BufferedRead>,
    /// Tables whose window opened during the instant being applied.
    opened_now: Vec<TableId>,
    timers: BinaryHeap<Reverse<CloseTimer>>,
    /// Event time up to which everything has been applied.
    now: Option<Ts>,
    next_prune: Ts,
    stats: DetectorStats,
    /// Set by [`Detector::apply_in_chunks`]: reads wait here instead of in the reorder buffer.
    deferred: Option<Deferred>,
    /// Buffers [`ById::apply_chunk`] reuses from one chunk to the next.
    chunk_scratch: ChunkScratch,
    /// The principal ids [`Detector::read_ids`] looks up, reused.
    read_ids_scratch: Vec<PrincipalId>,
    /// Per table, alerts dated before `report_from` of a window still open (see
    /// [`DetectorSettings::report_from`]).
    held_alerts: rustc_hash::FxHashMap<String, Vec<Alert>>,
    /// Permission changes: the ledger, those not yet released, windows awaiting a revert.
    root_cause: RootCause,
    /// With `record_baselines`: each window's baseline as it opened.
    baselines: Vec<BaselineAtOpen>,
    /// With `record_grant_states`: the changes and the tables' states as grants were made.
    grant_recorder: Option<Box<grant_states::Recorder>>,
    /// Per table, the earliest grant whose state of it is still to be kept (`Ts::MAX`: none).
    next_grant_state: Vec<Ts>,
    /// The population: by principal id, its last read of any watched table (`Ts::MIN`: none
    /// within the default `forget_after`). Who "everyone" is, for `exposure check`.
    population: Vec<Ts>,
    /// What changed since changes were last taken (incremental checkpoints).
    changes: changes::ChangeMarks,
}

/// A table's baseline as one of its windows opened (`record_baselines`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaselineAtOpen {
    /// The window's id (its alerts' `id`).
    pub window: String,
    /// The end of the table's learning.
    pub learn_until: Option<Ts>,
    /// The principals normal then, with their last normal read, most recent first.
    pub readers: Vec<(String, Ts)>,
}

impl Detector {
    pub fn new(settings: DetectorSettings) -> Detector {
        let reorder = ReorderBuffer::new(settings.lateness.micros());
        let grant_recorder = settings.record_grant_states.then(Box::default);
        let seed = std::sync::Arc::clone(&settings.permissions.seed);
        let mut detector = Detector {
            settings,
            tables: Vec::new(),
            table_names: Interner::default(),
            ignored: Vec::new(),
            principal_names: Interner::default(),
            anonymity: Default::default(),
            reorder,
            same_instant: Vec::new(),
            opened_now: Vec::new(),
            timers: BinaryHeap::new(),
            now: None,
            next_prune: Ts::MIN,
            stats: DetectorStats::default(),
            deferred: None,
            chunk_scratch: ChunkScratch::default(),
            read_ids_scratch: Default::default(),
            held_alerts: Default::default(),
            root_cause: RootCause::default(),
            baselines: Vec::new(),
            grant_recorder,
            next_grant_state: Vec::new(),
            population: Vec::new(),
            changes: Default::default(),
        };
        detector.seed_permissions(&seed);
        detector
    }

    /// Puts the grants and memberships of `--grants` snapshots in the ledger: standing from
    /// their time on, raising nothing by themselves (they are what stood, not news).
    pub(super) fn seed_permissions(&mut self, seed: &[crate::event::PermissionChange]) {
        for change in seed {
            if self.grant_recorder.is_some() {
                self.record_grant_state(change);
            }
            self.root_cause.ledger.insert(change.clone());
        }
    }

    pub fn settings(&self) -> &DetectorSettings {
        &self.settings
    }

    pub fn stats(&self) -> DetectorStats {
        self.stats
    }

    /// Distinct tables seen.
    pub fn table_count(&self) -> usize {
        self.tables.len()
    }

    /// Windows open now.
    pub fn open_windows(&self) -> usize {
        self.tables.iter().filter(|t| t.window.is_some()).count()
    }

    /// The baselines' (table, principal) pairs, and the bytes their maps hold (the figure
    /// `docs/performance.md` gives per pair).
    pub fn baseline_memory(&self) -> (usize, usize) {
        (self.tables.iter()).fold((0, 0), |(pairs, bytes), t| {
            (pairs + t.baseline.len(), bytes + t.baseline.heap_bytes())
        })
    }

    /// The ids (as alerts give them) of the windows open now.
    pub fn open_window_ids(&self) -> Vec<String> {
        (self.tables.iter())
            .filter_map(|t| {
                t.window
                    .as_ref()
                    .map(|w| alert::window_id(&t.name, w.start))
            })
            .collect()
    }

    /// Reads waiting in the reorder buffer.
    pub fn buffered(&self) -> usize {
        self.reorder.len() + self.deferred.as_ref().map_or(0, |d| d.reads.len())
    }

    /// Reads observed and not yet applied, in no particular order.
    fn waiting_reads(&self) -> impl Iterator<Item = &BufferedRead> + '_ {
        let deferred = self.deferred.as_ref().map(|d| &d.reads[..]).unwrap_or(&[]);
        self.reorder.iter().chain(deferred)
    }

    /// Events before this time are late.
    pub fn watermark(&self) -> Option<Ts> {
        self.reorder.watermark()
    }

    /// The newest event time observed.
    pub fn newest_event(&self) -> Option<Ts> {
        self.reorder.newest()
    }

    /// The id of table `name`, resolving its policy on first sight.
    #[inline]
    fn table_id(&mut self, name: &str) -> TableId {
        let id = self.table_names.intern(name);
        if id.at() == self.tables.len() {
            self.add_table(id, name);
        }
        id
    }

    /// The state of table `id`, just interned, with its policy resolved.
    #[cold]
    fn add_table(&mut self, id: TableId, name: &str) {
        debug_assert_eq!(id.at(), self.tables.len());
        let policy = self.settings.policies.resolve(name);
        let other_shards = self.settings.shard.is_some_and(|shard| !shard.owns(name));
        self.ignored.push(policy.ignore || other_shards);
        let mut baseline = Baseline::default();
        if self.changes.tracking() {
            baseline.track_removals();
        }
        self.tables.push(TableState {
            name: Arc::from(self.table_names.name(id)),
            policy,
            learn_until: None,
            baseline,
            pending: Vec::new(),
            window: None,
        });
        self.next_grant_state.push(Ts::MAX);
        if self.grant_recorder.is_some() {
            self.mark_new_table(id);
        }
    }

    /// The baselines kept as windows opened (with `record_baselines`), by window id.
    pub fn take_baselines(&mut self) -> Vec<BaselineAtOpen> {
        std::mem::take(&mut self.baselines)
    }

    /// Takes new policies (a reloaded configuration, analysts' approvals): every table's
    /// policy is resolved again, and pending principals an approval now covers are dropped
    /// (they are normal now). Open windows keep their principals: what was alerted stands.
    pub fn set_policies(&mut self, policies: Policies) {
        self.settings.policies = policies;
        let now = self.now.unwrap_or(Ts::MIN);
        for (at, state) in self.tables.iter_mut().enumerate() {
            let policy = self.settings.policies.resolve(&state.name);
            let other_shards = self
                .settings
                .shard
                .is_some_and(|shard| !shard.owns(&state.name));
            self.ignored[at] = policy.ignore || other_shards;
            if !policy.approved.is_empty() {
                let names = &self.principal_names;
                let before = state.pending.len();
                state.pending.retain(|p| {
                    let name = names.name(p.principal);
                    !policy.is_allowed(name) && policy.approval(name, now).is_none()
                });
                if state.pending.len() != before {
                    self.changes.table(TableId::from_index(at as u32));
                }
            }
            state.policy = policy;
        }
    }

    /// Removes the principals matching `principal` from the baseline of every table matching
    /// `table` (`exposure baseline forget`): their next read is novel. Gives how many
    /// (table, principal) pairs were removed.
    pub fn forget(
        &mut self,
        table: &globset::GlobMatcher,
        principal: &globset::GlobMatcher,
    ) -> usize {
        let names = &self.principal_names;
        let mut removed = 0;
        for (at, state) in self.tables.iter_mut().enumerate() {
            if !table.is_match(&*state.name) {
                continue;
            }
            let n = (state.baseline).remove_where(|id| principal.is_match(names.name(id)));
            if n > 0 {
                self.changes.table(TableId::from_index(at as u32));
                removed += n;
            }
        }
        removed
    }

    /// A read of another shard's table, admitted: not detected on, but the table's first read
    /// is noted as the unsharded run notes it (its learning starts then), for what lists the
    /// tables read by some time (a grant's alert). Taking the earliest admitted read gives the
    /// same instant as applying reads in time order does: a read admitted after a change was
    /// released is later than the change.
    #[inline]
    fn note_other_shards_read(&mut self, ts: Ts, table: TableId) {
        let state = &mut self.tables[table.at()];
        if state.policy.ignore {
            return;
        }
        let until = ts.saturating_add(state.policy.thresholds.learn.micros());
        let learn_until = Some(state.learn_until.map_or(until, |u| u.min(until)));
        if state.learn_until != learn_until {
            state.learn_until = learn_until;
            self.changes.table(table);
        }
    }

    /// A read of `table` at `ts` that another detector takes (a Kafka partition's detector is
    /// told of other partitions' tables this way): for a table not this detector's, its first
    /// read is noted as [`Detector::observe`] notes another shard's read; for its own table,
    /// nothing (the read itself comes). Neither counted as an event nor moving event time; a
    /// read before the watermark is refused, as the read itself would be.
    pub fn note_read_elsewhere(&mut self, ts: Ts, table: &str) {
        if self
            .reorder
            .watermark()
            .is_some_and(|watermark| ts < watermark)
        {
            return;
        }
        let table = self.table_id(table);
        if self.ignored[table.at()] {
            self.note_other_shards_read(ts, table);
        }
    }

    /// The detector by ids, for sources that resolve names once per batch (see [`ById`]).
    pub fn by_id(&mut self) -> ById<'_> {
        ById(self)
    }

    /// See [`ById::reads`].
    fn read_ids<'a>(
        &mut self,
        reads: &[(&'a str, &'a str)],
        ids: &mut Vec<(TableId, PrincipalId)>,
    ) {
        let mut principals = std::mem::take(&mut self.read_ids_scratch);
        principals.clear();
        self.principal_names.intern_many(
            reads.iter().map(|(_, principal)| *principal),
            &mut principals,
        );
        // Tables one by one: there are few, and their slots stay in cache.
        ids.extend(
            reads
                .iter()
                .zip(&principals)
                .map(|((table, _), principal)| (self.table_id(table), *principal)),
        );
        self.read_ids_scratch = principals;
    }

    /// Observes one event; alerts it causes are pushed onto `alerts`.
    #[inline]
    pub fn observe(&mut self, event: &AccessEvent<'_>, alerts: &mut Vec<Alert>) -> Observed {
        let read = event
            .is_read_by(&mut self.settings.read_actions)
            .then_some((&*event.table, &*event.principal));
        self.observe_classified(event.ts, read, alerts)
    }

    /// Observes one event whose action was already classified (by the format's decoder): `read` is `Some((table, principal))` for a read and `None`
    /// for anything else, which only moves event time.
    #[inline]
    pub fn observe_classified(
        &mut self,
        ts: Ts,
        read: Option<(&str, &str)>,
        alerts: &mut Vec<Alert>,
    ) -> Observed {
        let incoming = match read {
            None => Incoming::NotRead,
            Some((table, principal)) => {
                let table = self.table_id(table);
                if self.ignored[table.at()] {
                    Incoming::Ignored(table)
                } else {
                    Incoming::Read(table, self.principal_names.intern(principal))
                }
            }
        };
        self.accept(ts, incoming, alerts)
    }

    /// See [`ById::observe`].
    #[inline]
    fn observe_ids(
        &mut self,
        ts: Ts,
        read: Option<(TableId, PrincipalId)>,
        alerts: &mut Vec<Alert>,
    ) -> Observed {
        let incoming = self.incoming_by_ids(read);
        self.accept(ts, incoming, alerts)
    }

    /// How a read given by ids (or another event: `None`) enters: ignored tables apart.
    #[inline]
    fn incoming_by_ids(&self, read: Option<(TableId, PrincipalId)>) -> Incoming {
        match read {
            Some((table, _)) if self.ignored[table.at()] => Incoming::Ignored(table),
            Some((table, principal)) => Incoming::Read(table, principal),
            None => Incoming::NotRead,
        }
    }

    /// What every event goes through first: an event before the watermark is late (counted,
    /// refused); any other is noted by event time and counted. `Observed::Read` means the read
    /// is the caller's to queue.
    #[inline]
    fn admit(&mut self, ts: Ts, incoming: Incoming) -> Observed {
        if let Some(watermark) = self.reorder.watermark()
            && ts < watermark
        {
            self.stats.late += 1;
            return Observed::Late {
                behind: watermark - ts,
            };
        }
        self.reorder.note(ts);
        match incoming {
            Incoming::Read(_, principal) => {
                self.stats.reads += 1;
                self.note_population(principal, ts);
                Observed::Read
            }
            Incoming::NotRead => {
                self.stats.non_reads += 1;
                Observed::NotRead
            }
            Incoming::Ignored(table) => {
                self.note_other_shards_read(ts, table);
                self.stats.ignored += 1;
                Observed::Ignored
            }
            Incoming::Change => {
                self.stats.permission_changes += 1;
                Observed::Change
            }
        }
    }

    /// Notes that `principal` read a watched table at `ts` (see `population`).
    #[inline]
    fn note_population(&mut self, principal: PrincipalId, ts: Ts) {
        let at = principal.at();
        if at >= self.population.len() {
            self.population.resize(at + 1, Ts::MIN);
        }
        let last = &mut self.population[at];
        if ts > *last {
            *last = ts;
            self.changes.principal(principal);
        }
    }

    #[inline]
    fn accept(&mut self, ts: Ts, incoming: Incoming, alerts: &mut Vec<Alert>) -> Observed {
        let outcome = self.admit(ts, incoming);
        match (outcome, incoming) {
            (Observed::Late { .. }, _) => return outcome,
            (Observed::Read, Incoming::Read(table, principal)) => match &mut self.deferred {
                Some(deferred) => {
                    deferred.reads.push(BufferedRead {
                        ts,
                        table,
                        principal,
                    });
                    if deferred.reads.len() >= deferred.flush_at {
                        self.flush_deferred(alerts);
                    }
                    return outcome;
                }
                None => self.reorder.push(ts, table, principal),
            },
            _ => {}
        }
        if self.deferred.is_none()
            && let Some(watermark) = self.reorder.watermark()
        {
            self.release_before(watermark, alerts);
        }
        outcome
    }
}

/// How an event enters the detector.
#[derive(Debug, Clone, Copy)]
enum Incoming {
    Read(TableId, PrincipalId),
    NotRead,
    /// A read of a table ignored by its policy or another shard's.
    Ignored(TableId),
    Change,
}

#[cfg(test)]
mod tests;
