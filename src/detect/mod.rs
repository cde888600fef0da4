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
//! [`Detector::apply_chunk`]) and puts the alerts back in the order above; tables are
//! independent, so only that order needs care.

pub mod alert;
pub mod baseline;
mod chunk_order;
pub mod policy;
pub mod reorder;
pub mod snapshot;

pub use alert::{ALERT_SCHEMA, Alert, AlertStatus, ClosedBy, PrincipalActivity, Severity};
pub use policy::{Policies, ReadActions, TablePolicy, TableRule, Thresholds};
pub use reorder::{BufferedRead, ReorderBuffer};
pub use snapshot::DetectorSnapshot;

use crate::event::AccessEvent;
use crate::intern::{Id, Interner};
use crate::time::{MICROS_PER_SEC, Micros, Span, Ts};
use baseline::Baseline;
use rustc_hash::FxHashMap;
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
    /// Emit `update` alerts when a window's novel principals double.
    pub emit_updates: bool,
}

impl Default for DetectorSettings {
    fn default() -> Self {
        DetectorSettings {
            policies: Policies::default(),
            read_actions: ReadActions::default(),
            lateness: Span::from_secs(300),
            emit_updates: false,
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
}

#[derive(Debug, Clone)]
struct Pending {
    principal: Id,
    first_novel: Ts,
    last_read: Ts,
    reads: u64,
}

#[derive(Debug, Clone, Copy)]
struct Activity {
    first_read: Ts,
    last_read: Ts,
    reads: u64,
}

#[derive(Debug, Clone)]
struct Window {
    start: Ts,
    end: Ts,
    reads: u64,
    principals: FxHashMap<Id, Activity>,
    baseline_principals: usize,
    /// Novel principals in the last alert sent for this window (for `update` rate limiting).
    alerted_principals: usize,
}

#[derive(Debug, Clone)]
struct TableState {
    name: Arc<str>,
    policy: Arc<TablePolicy>,
    /// End of learning: the first read plus `learn`.
    learn_until: Option<Ts>,
    /// Normal principals and the time of their last normal read.
    baseline: Baseline,
    /// Novel principals not (yet) in a window. Fewer than `min_principals`: reaching it opens one.
    pending: Vec<Pending>,
    window: Option<Window>,
}

impl TableState {
    /// Pending principals whose `span` ran out without a window join the baseline: a new hire
    /// is not an incident.
    fn graduate_pending(&mut self, now: Ts) {
        let span = self.policy.thresholds.span.micros();
        let baseline = &mut self.baseline;
        self.pending.retain(|p| {
            if now - p.first_novel < span {
                return true;
            }
            baseline.record(p.principal, p.last_read);
            false
        });
    }

    fn normal_principals(&self, now: Ts) -> usize {
        let forget = self.policy.thresholds.forget_after.micros();
        self.baseline
            .last_reads()
            .filter(|&last| now - last <= forget)
            .count()
    }
}

/// A due window close, ordered by (deadline, table name): never by id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct CloseTimer {
    deadline: Ts,
    table_name: Arc<str>,
    table: Id,
}

/// How many reads ahead the baseline slot is prefetched.
const PREFETCH_DISTANCE: usize = 16;

const PRUNE_EVERY: Micros = 86_400 * MICROS_PER_SEC;

/// The exposure-window detector.
#[derive(Debug, Clone)]
pub struct Detector {
    settings: DetectorSettings,
    tables: Vec<TableState>,
    table_names: Interner,
    /// `ignored[table]`: the table's policy ignores it (looked up on every event, so kept
    /// apart from the table's state).
    ignored: Vec<bool>,
    principal_names: Interner,
    reorder: ReorderBuffer,
    same_instant: Vec<BufferedRead>,
    /// Tables whose window opened during the instant being applied.
    opened_now: Vec<Id>,
    timers: BinaryHeap<Reverse<CloseTimer>>,
    /// Event time up to which everything has been applied.
    now: Option<Ts>,
    next_prune: Ts,
    stats: DetectorStats,
    /// Set by [`Detector::apply_in_chunks`]: reads wait here instead of in the reorder buffer.
    deferred: Option<Deferred>,
    /// Buffers [`Detector::apply_chunk`] reuses from one chunk to the next.
    chunk_scratch: ChunkScratch,
    /// The principal ids [`Detector::read_ids`] looks up, reused.
    read_ids_scratch: Vec<Id>,
}

#[derive(Debug, Clone, Default)]
struct ChunkScratch {
    by_table: Vec<BufferedRead>,
    order: chunk_order::OrderScratch,
    /// Alerts with the (time, kind) they sort by.
    tagged: Vec<(Ts, u8, Alert)>,
    alerts: Vec<Alert>,
}

/// Reads collected for chunked application (replay): applied table by table once the chunk is
/// big enough, up to the watermark; the rest wait for the next chunk.
#[derive(Debug, Clone)]
struct Deferred {
    reads: Vec<BufferedRead>,
    /// Reads that are final (before the watermark), taken out of `reads` at a flush.
    ready: Vec<BufferedRead>,
    /// Flush when `reads` holds this many.
    flush_at: usize,
    chunk: usize,
}

impl Detector {
    pub fn new(settings: DetectorSettings) -> Detector {
        let reorder = ReorderBuffer::new(settings.lateness.micros());
        Detector {
            settings,
            tables: Vec::new(),
            table_names: Interner::default(),
            ignored: Vec::new(),
            principal_names: Interner::default(),
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
        }
    }

    /// From now on, reads are applied in chunks of about `chunk` reads, **table by table**
    /// (see [`Detector::apply_chunk`]), instead of one by one as the watermark passes them:
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
    fn flush_deferred(&mut self, alerts: &mut Vec<Alert>) {
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

    /// Whether `action` counts as a read.
    #[inline]
    pub fn is_read_action(&mut self, action: Option<&str>) -> bool {
        self.settings.read_actions.is_read(action)
    }

    /// The id of table `name`, resolving its policy on first sight.
    #[inline]
    pub fn table_id(&mut self, name: &str) -> Id {
        let id = self.table_names.intern(name);
        if id as usize == self.tables.len() {
            self.add_table(id, name);
        }
        id
    }

    /// The state of table `id`, just interned, with its policy resolved.
    #[cold]
    fn add_table(&mut self, id: Id, name: &str) {
        debug_assert_eq!(id as usize, self.tables.len());
        let policy = self.settings.policies.resolve(name);
        self.ignored.push(policy.ignore);
        self.tables.push(TableState {
            name: Arc::from(self.table_names.name(id)),
            policy,
            learn_until: None,
            baseline: Baseline::default(),
            pending: Vec::new(),
            window: None,
        });
    }

    /// The id of principal `name`.
    #[inline]
    pub fn principal_id(&mut self, name: &str) -> Id {
        self.principal_names.intern(name)
    }

    /// The ids of many reads' (table, principal) names, appended to `ids` in order: the same as
    /// [`Detector::table_id`] and [`Detector::principal_id`] on each, with the principals'
    /// look-ups overlapping (see [`Interner::intern_many`]).
    pub fn read_ids<'a>(&mut self, reads: &[(&'a str, &'a str)], ids: &mut Vec<(Id, Id)>) {
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
        let read = self
            .is_read_action(event.action)
            .then_some((event.table, event.principal));
        self.observe_classified(event.ts, read, alerts)
    }

    /// Observes one event whose action was already classified (see
    /// [`Detector::is_read_action`]): `read` is `Some((table, principal))` for a read and `None`
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
                if self.ignored[table as usize] {
                    Incoming::Ignored
                } else {
                    Incoming::Read(table, self.principal_id(principal))
                }
            }
        };
        self.accept(ts, incoming, alerts)
    }

    /// Observes one event by ids: `read` is `Some((table, principal))` for a read (see
    /// [`Detector::is_read_action`]) and `None` for anything else, which only moves event time.
    #[inline]
    pub fn observe_ids(
        &mut self,
        ts: Ts,
        read: Option<(Id, Id)>,
        alerts: &mut Vec<Alert>,
    ) -> Observed {
        let incoming = match read {
            Some((table, _)) if self.ignored[table as usize] => Incoming::Ignored,
            Some((table, principal)) => Incoming::Read(table, principal),
            None => Incoming::NotRead,
        };
        self.accept(ts, incoming, alerts)
    }

    #[inline]
    fn accept(&mut self, ts: Ts, incoming: Incoming, alerts: &mut Vec<Alert>) -> Observed {
        if let Some(watermark) = self.reorder.watermark()
            && ts < watermark
        {
            self.stats.late += 1;
            return Observed::Late {
                behind: watermark - ts,
            };
        }
        self.reorder.note(ts);
        let outcome = match incoming {
            Incoming::Read(table, principal) => {
                self.stats.reads += 1;
                let read = BufferedRead {
                    ts,
                    table,
                    principal,
                };
                match &mut self.deferred {
                    Some(deferred) => {
                        deferred.reads.push(read);
                        if deferred.reads.len() >= deferred.flush_at {
                            self.flush_deferred(alerts);
                        }
                        return Observed::Read;
                    }
                    None => self.reorder.push(ts, table, principal),
                }
                Observed::Read
            }
            Incoming::NotRead => {
                self.stats.non_reads += 1;
                Observed::NotRead
            }
            Incoming::Ignored => {
                self.stats.ignored += 1;
                Observed::Ignored
            }
        };
        if self.deferred.is_none()
            && let Some(watermark) = self.reorder.watermark()
        {
            self.release_before(watermark, alerts);
        }
        outcome
    }

    /// From now on, only [`Detector::advance`] moves the watermark: for sources that know a
    /// lower bound of every event still to come (sorted Parquet row groups), so that the result
    /// is that of sorted input whatever `lateness` says.
    pub fn use_external_watermark(&mut self) {
        self.reorder.use_external_watermark();
    }

    /// Moves event time to `watermark` without an event: reads before it are applied, windows
    /// quiet by then are closed, and later events before it count as late. Used by live mode
    /// when streams are silent; replay never calls it.
    pub fn advance(&mut self, watermark: Ts, alerts: &mut Vec<Alert>) {
        self.reorder.raise_floor(watermark);
        if self.deferred.is_some() {
            self.flush_deferred(alerts);
            return;
        }
        if let Some(w) = self.reorder.watermark() {
            self.release_before(w, alerts);
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
        let mut open: Vec<Id> = (0..self.tables.len() as Id)
            .filter(|&t| self.tables[t as usize].window.is_some())
            .collect();
        open.sort_by(|a, b| {
            self.tables[*a as usize]
                .name
                .cmp(&self.tables[*b as usize].name)
        });
        // The newest event seen, whatever the source: not `now`, which depends on how the
        // watermark moved.
        let as_of = self.reorder.newest().or(self.now).unwrap_or_default();
        for table in open {
            self.close_window(table, as_of, ClosedBy::EndOfInput, alerts);
        }
        self.timers.clear();
    }

    /// Applies every buffered read before `watermark`, then the closes due by it.
    fn release_before(&mut self, watermark: Ts, alerts: &mut Vec<Alert>) {
        while self.reorder.earliest().is_some_and(|ts| ts < watermark) {
            // Start loading the baseline slot of a read a few places ahead: by the time it is
            // applied, its cache miss is paid.
            if let Some(ahead) = self.reorder.queued_ahead(PREFETCH_DISTANCE) {
                self.tables[ahead.table as usize]
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
    fn apply_earliest(&mut self, alerts: &mut Vec<Alert>) {
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
    fn apply_instant(&mut self, ts: Ts, group: &mut [BufferedRead], alerts: &mut Vec<Alert>) {
        if group.len() > 1 {
            let (tables, principals) = (&self.table_names, &self.principal_names);
            group.sort_unstable_by(|a, b| {
                tables
                    .name(a.table)
                    .cmp(tables.name(b.table))
                    .then_with(|| {
                        principals
                            .name(a.principal)
                            .cmp(principals.name(b.principal))
                    })
            });
        }
        self.move_time(ts, alerts);
        for read in group.iter() {
            self.apply_read(read.ts, read.table, read.principal, alerts);
        }
        self.emit_opens(ts, alerts);
    }

    /// Sends the `open` alerts of the windows opened during instant `ts`.
    fn emit_opens(&mut self, ts: Ts, alerts: &mut Vec<Alert>) {
        for table in std::mem::take(&mut self.opened_now) {
            if let Some(window) = &mut self.tables[table as usize].window {
                window.alerted_principals = window.principals.len();
            }
            let alert = self.alert(table, AlertStatus::Open, ts, None);
            self.push_alert(alert, alerts);
        }
    }

    /// Applies a chunk of reads that is complete up to `until` (nothing earlier than `until` can
    /// arrive later), in any order, **table by table**: each table's baseline then stays in
    /// cache while its reads are applied, instead of every read touching a different table.
    /// Tables are independent, so only the order of the alerts needs care: they are sorted into
    /// the order [`Detector::observe`] gives — at each time, quiet closes due then (by table
    /// name), then `update`s and then `open`s of that instant (by table name). Needs an empty
    /// reorder buffer; the reads must not be earlier than any read applied before (the
    /// watermark sees to that in [`Detector::collect_in_order`]).
    pub fn apply_chunk(
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
            by_table,
            order,
            tagged,
            alerts: emitted,
        } = &mut scratch;
        // Grouped by table, tables in name order (the order reads of one instant are applied
        // in), time order within each table.
        let names = &self.table_names;
        let by_name =
            |tables: &mut Vec<Id>| tables.sort_by(|a, b| names.name(*a).cmp(names.name(*b)));
        chunk_order::order_chunk(reads, self.tables.len(), by_name, order, by_table);
        let reads = &mut by_table[..];
        let mut start = 0;
        while start < reads.len() {
            let table = reads[start].table;
            let mut end = start + 1;
            while end < reads.len() && reads[end].table == table {
                end += 1;
            }
            let mut i = start;
            while i < end {
                let ts = reads[i].ts;
                let mut group_end = i + 1;
                while group_end < end && reads[group_end].ts == ts {
                    group_end += 1;
                }
                if group_end - i > 1 {
                    let principals = &self.principal_names;
                    reads[i..group_end].sort_by(|a, b| {
                        principals
                            .name(a.principal)
                            .cmp(principals.name(b.principal))
                    });
                }
                if self.tables[table as usize].window.is_some() {
                    self.close_if_quiet(table, ts, emitted);
                    tagged.extend(emitted.drain(..).map(|a| (a.as_of, 0, a)));
                }
                // Start loading the baseline slots of the table's next reads.
                let baseline = &self.tables[table as usize].baseline;
                let ahead =
                    (i + PREFETCH_DISTANCE).min(end)..(group_end + PREFETCH_DISTANCE).min(end);
                for read in &reads[ahead] {
                    baseline.prefetch(read.principal);
                }
                for read in &reads[i..group_end] {
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
        // Then time moves to the end of the chunk: closes due by then, on every table, in
        // deadline order (the timers of windows opened or extended above are in the heap).
        let last = reads.iter().map(|r| r.ts).max();
        let end = match (until, last) {
            (Some(u), Some(l)) => Some(u.max(l)),
            (u, l) => u.or(l),
        };
        if let Some(end) = end {
            self.move_time(end, emitted);
            tagged.extend(emitted.drain(..).map(|a| (a.as_of, 0, a)));
        }
        tagged.sort_by(|a, b| {
            (a.0, a.1)
                .cmp(&(b.0, b.1))
                .then_with(|| a.2.table.cmp(&b.2.table))
        });
        alerts.extend(tagged.drain(..).map(|(_, _, alert)| alert));
        self.chunk_scratch = scratch;
    }

    /// Closes `table`'s window if it has been quiet by `now`.
    fn close_if_quiet(&mut self, table: Id, now: Ts, alerts: &mut Vec<Alert>) {
        let state = &self.tables[table as usize];
        if let Some(window) = &state.window {
            let deadline = window.end + state.policy.thresholds.quiet.micros();
            if deadline <= now {
                self.close_window(table, deadline, ClosedBy::Quiet, alerts);
            }
        }
    }

    /// Takes one event of a chunk that no later input overlaps (a Parquet row group that ends
    /// before the next one starts): a read is appended to `chunk` for [`Detector::apply_chunk`]
    /// instead of entering the reorder buffer. An event before the watermark is counted late.
    #[inline]
    pub fn collect_in_order(
        &mut self,
        ts: Ts,
        read: Option<(Id, Id)>,
        chunk: &mut Vec<BufferedRead>,
    ) -> Observed {
        if let Some(floor) = self.reorder.watermark().filter(|w| ts < *w) {
            self.stats.late += 1;
            return Observed::Late { behind: floor - ts };
        }
        self.reorder.note(ts);
        match read {
            None => {
                self.stats.non_reads += 1;
                Observed::NotRead
            }
            Some((table, _)) if self.ignored[table as usize] => {
                self.stats.ignored += 1;
                Observed::Ignored
            }
            Some((table, principal)) => {
                self.stats.reads += 1;
                chunk.push(BufferedRead {
                    ts,
                    table,
                    principal,
                });
                Observed::Read
            }
        }
    }

    /// Moves the detector's clock to `now`: fires closes due by then and prunes forgotten state.
    fn move_time(&mut self, now: Ts, alerts: &mut Vec<Alert>) {
        if self.now.is_some_and(|n| n >= now) {
            return;
        }
        self.now = Some(now);
        while let Some(Reverse(timer)) = self.timers.peek() {
            if timer.deadline > now {
                break;
            }
            let Reverse(timer) = self.timers.pop().expect("peeked");
            let state = &self.tables[timer.table as usize];
            let Some(window) = &state.window else {
                continue;
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
        if now >= self.next_prune {
            self.prune(now);
            self.next_prune = now.saturating_add(PRUNE_EVERY);
        }
    }

    /// Drops baseline entries past `forget_after`: they are no longer normal, so dropping them
    /// changes no result and keeps state bounded on a long run.
    fn prune(&mut self, now: Ts) {
        for state in &mut self.tables {
            let forget = state.policy.thresholds.forget_after.micros();
            state.baseline.retain(|last| now - last <= forget);
        }
    }

    /// The rules of the README, for one read at `ts` (time has been moved to `ts`).
    fn apply_read(&mut self, ts: Ts, table: Id, principal: Id, alerts: &mut Vec<Alert>) {
        let emit_updates = self.settings.emit_updates;
        let state = &mut self.tables[table as usize];
        let thresholds = state.policy.thresholds;

        // 1. Learning: every read joins the baseline.
        let learn_until = *state
            .learn_until
            .get_or_insert_with(|| ts.saturating_add(thresholds.learn.micros()));
        if ts < learn_until {
            state.baseline.record(principal, ts);
            return;
        }

        // 2. Baseline: a normal principal's read refreshes it.
        state.graduate_pending(ts);
        if let Some(last) = state.baseline.get_mut(principal)
            && ts - *last <= thresholds.forget_after.micros()
        {
            *last = (*last).max(ts);
            return;
        }
        if state
            .policy
            .is_allowed(self.principal_names.name(principal))
        {
            state.baseline.record(principal, ts);
            return;
        }

        // 3-5. A novel read: extends the open window, or makes the principal pending.
        if let Some(window) = &mut state.window {
            let activity = window.principals.entry(principal).or_insert(Activity {
                first_read: ts,
                last_read: ts,
                reads: 0,
            });
            activity.last_read = ts;
            activity.reads += 1;
            window.reads += 1;
            window.end = window.end.max(ts);
            let opened_this_instant = window.alerted_principals == 0;
            if emit_updates
                && !opened_this_instant
                && window.principals.len() >= 2 * window.alerted_principals
            {
                window.alerted_principals = window.principals.len();
                let alert = self.alert(table, AlertStatus::Update, ts, None);
                self.push_alert(alert, alerts);
            }
            return;
        }
        match state.pending.iter_mut().find(|p| p.principal == principal) {
            Some(pending) => {
                pending.last_read = ts;
                pending.reads += 1;
            }
            None => state.pending.push(Pending {
                principal,
                first_novel: ts,
                last_read: ts,
                reads: 1,
            }),
        }
        if state.pending.len() >= thresholds.min_principals as usize {
            self.open_window(table, ts);
        }
    }

    /// Rule 4: opens a window from the pending principals; `window_start` is the earliest
    /// first read. Its `open` alert is sent once the whole instant is applied.
    fn open_window(&mut self, table: Id, now: Ts) {
        let state = &mut self.tables[table as usize];
        let pending = std::mem::take(&mut state.pending);
        let start = pending.iter().map(|p| p.first_novel).min().unwrap_or(now);
        let principals: FxHashMap<Id, Activity> = pending
            .iter()
            .map(|p| {
                let activity = Activity {
                    first_read: p.first_novel,
                    last_read: p.last_read,
                    reads: p.reads,
                };
                (p.principal, activity)
            })
            .collect();
        state.window = Some(Window {
            start,
            end: now,
            reads: pending.iter().map(|p| p.reads).sum(),
            // Set when the `open` alert goes out, at the end of the instant.
            alerted_principals: 0,
            principals,
            baseline_principals: state.normal_principals(now),
        });
        let deadline = now + state.policy.thresholds.quiet.micros();
        self.timers.push(Reverse(CloseTimer {
            deadline,
            table_name: Arc::clone(&state.name),
            table,
        }));
        self.stats.windows_opened += 1;
        self.opened_now.push(table);
    }

    /// Rule 6: closes a window. Its principals do not join the baseline (rule 7: no poisoning).
    fn close_window(&mut self, table: Id, as_of: Ts, closed_by: ClosedBy, alerts: &mut Vec<Alert>) {
        let alert = self.alert(table, AlertStatus::Closed, as_of, Some(closed_by));
        self.tables[table as usize].window = None;
        self.push_alert(alert, alerts);
    }

    fn push_alert(&mut self, alert: Alert, alerts: &mut Vec<Alert>) {
        self.stats.alerts += 1;
        alerts.push(alert);
    }

    fn alert(
        &self,
        table: Id,
        status: AlertStatus,
        as_of: Ts,
        closed_by: Option<ClosedBy>,
    ) -> Alert {
        let state = &self.tables[table as usize];
        let window = state
            .window
            .as_ref()
            .expect("an alert describes an open window");
        let mut principals: Vec<PrincipalActivity> = window
            .principals
            .iter()
            .map(|(&id, a)| PrincipalActivity {
                principal: self.principal_names.name(id).to_string(),
                first_read: a.first_read,
                last_read: a.last_read,
                reads: a.reads,
            })
            .collect();
        principals.sort_by(|a, b| (a.first_read, &a.principal).cmp(&(b.first_read, &b.principal)));
        Alert {
            schema: ALERT_SCHEMA.to_string(),
            id: alert::window_id(&state.name, window.start),
            status,
            table: state.name.to_string(),
            window_start: window.start,
            window_end: window.end,
            duration_s: (window.end - window.start) as f64 / MICROS_PER_SEC as f64,
            novel_principals: principals.len(),
            principals,
            reads: window.reads,
            baseline_principals: window.baseline_principals,
            severity: Severity::rate(
                window.principals.len(),
                window.baseline_principals,
                state.policy.thresholds.min_principals,
            ),
            as_of,
            closed_by,
        }
    }
}

/// How an event enters the detector.
#[derive(Debug, Clone, Copy)]
enum Incoming {
    Read(Id, Id),
    NotRead,
    Ignored,
}

#[cfg(test)]
mod tests;
