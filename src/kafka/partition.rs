//! One repartition partition's detector: the detect stage keeps one per partition it is
//! assigned. Pure (no Kafka client): it takes the records of its partition in order, drops
//! what a restarted ingest instance sent twice, moves event time by the progress of every
//! source, and is checkpointed whole as a [`PartitionState`] with the offset it covers.
//!
//! Time: each source (a raw topic partition) reports how far it has got; the partition's
//! watermark is the lowest of the sources that still hold time back — those heard within
//! `silence` (by the wall clock) and not idle. Events are held in the detector's reorder
//! buffer until the watermark passes them, so they are applied in event time whatever order
//! the ingest instances delivered them in. When no source holds time back, time goes on with
//! the wall clock from the newest event, minus `lateness`, as `watch` over files does.

use super::changelog::{Changelog, StateWrite};
use super::record::{EventBatch, Item, Position, SourceProgress, partition_of};
use crate::detect::snapshot::DetectorSnapshot;
use crate::detect::{Alert, Detector, DetectorSettings, Observed, RootCauseSnapshot};
use crate::intake::{SharedClock, WallFloor};
use crate::state::envelope::{Enveloped, Stamp, stamp};
use crate::time::Ts;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The layout of a partition's state: 2 is [`changelog`](super::changelog)'s records (1 was
/// one record holding the whole state, read for a migration).
pub const STATE_VERSION: u32 = 2;

impl Enveloped for PartitionState {
    const FORMAT: &'static str = "exposure.kafka-partition";
    const VERSION: u32 = STATE_VERSION;
}

/// What the detect stage knows of one source in one partition.
#[derive(Debug, Clone)]
struct Source {
    watermark: Option<Ts>,
    newest: Option<Ts>,
    /// The most the source has been out of order, as its ingest instances reported.
    disorder: Ts,
    idle: bool,
    /// The last event of the source taken: anything at or before it is a repeat.
    applied: Option<Position>,
    /// When the source was last heard of (or expected from).
    heard_at: Instant,
}

impl Source {
    /// A source expected (or first heard of) at `now`, with no progress known.
    fn unheard(now: Instant) -> Source {
        Source {
            watermark: None,
            newest: None,
            disorder: 0,
            idle: false,
            applied: None,
            heard_at: now,
        }
    }
}

/// The checkpoint of one partition, as written to the state topic.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionState {
    pub format: String,
    pub version: u32,
    pub written_at: String,
    pub partition: i32,
    /// The repartition topic's partition count when written (a state is only valid for it).
    pub partitions: i32,
    /// The next repartition offset to read: every record before it is in this state.
    pub next_offset: i64,
    pub detector: DetectorSnapshot,
    pub sources: Vec<SourceState>,
    /// Delivery keys of the alerts emitted for windows still open: never emitted twice, by
    /// whichever instance owns the partition next.
    pub emitted: Vec<String>,
    /// Events taken and repeats dropped since the partition began, whoever owned it: its
    /// counters go on across owners.
    #[serde(default)]
    pub events: u64,
    #[serde(default)]
    pub repeats: u64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceState {
    pub source: String,
    pub watermark: Option<Ts>,
    pub newest: Option<Ts>,
    #[serde(default)]
    pub disorder: Ts,
    pub idle: bool,
    pub applied: Option<Position>,
}

/// Counters of one partition (the detector keeps its own too).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartitionCounts {
    pub events: u64,
    pub repeats: u64,
    pub late: u64,
}

pub struct PartitionDetector {
    partition: i32,
    partitions: i32,
    detector: Detector,
    sources: BTreeMap<String, Source>,
    next_offset: i64,
    /// The newest event time any source reported, and when that was learned.
    wall_floor: WallFloor,
    clock: SharedClock,
    counts: PartitionCounts,
    /// What the state topic holds of this partition.
    changelog: Changelog,
}

/// What a record did, for the caller to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Taken {
    pub late: u64,
    pub repeats: u64,
}

impl PartitionDetector {
    pub fn new(partition: i32, partitions: i32, settings: DetectorSettings) -> PartitionDetector {
        let mut detector = Detector::new(as_shard(settings, partition, partitions));
        detector.use_external_watermark();
        detector.track_changes();
        PartitionDetector {
            partition,
            partitions,
            detector,
            sources: BTreeMap::new(),
            next_offset: 0,
            wall_floor: WallFloor::default(),
            clock: crate::intake::system_clock(),
            counts: PartitionCounts::default(),
            changelog: Changelog::fresh(Vec::new()),
        }
    }

    /// Resumes from a state written by any instance (opened through its envelope).
    pub fn restore(state: &PartitionState, settings: DetectorSettings) -> PartitionDetector {
        let settings = as_shard(settings, state.partition, state.partitions);
        let mut detector = Detector::restore(settings, &state.detector);
        detector.use_external_watermark();
        detector.track_changes();
        let clock = crate::intake::system_clock();
        let now = clock.now();
        let sources = state
            .sources
            .iter()
            .map(|s| {
                let source = Source {
                    watermark: s.watermark,
                    newest: s.newest,
                    disorder: s.disorder,
                    idle: s.idle,
                    applied: s.applied,
                    heard_at: now,
                };
                (s.source.clone(), source)
            })
            .collect();
        let newest = state.sources.iter().filter_map(|s| s.newest).max();
        PartitionDetector {
            partition: state.partition,
            partitions: state.partitions,
            detector,
            sources,
            next_offset: state.next_offset,
            wall_floor: WallFloor::seen(newest, now),
            clock,
            counts: PartitionCounts {
                events: state.events,
                repeats: state.repeats,
                late: 0,
            },
            changelog: Changelog::fresh(Vec::new()),
        }
    }

    /// Writes its checkpoints on from what `changelog` knows of the state topic (a fresh
    /// detector: a new lineage; a restored one: where its records are).
    pub fn with_changelog(mut self, changelog: Changelog) -> PartitionDetector {
        self.changelog = changelog;
        self
    }

    /// The next checkpoint, as records of the state topic: what changed since the last one
    /// committed (everything, the first time of a lineage), each at most `record_bytes`;
    /// `emitted` as for [`PartitionDetector::state`]. Sent, it is [`committed`] or [`failed`].
    ///
    /// [`committed`]: PartitionDetector::committed
    /// [`failed`]: PartitionDetector::failed
    pub fn write_state(
        &mut self,
        emitted: impl FnOnce(&std::collections::HashSet<String>) -> Vec<String>,
        record_bytes: usize,
    ) -> StateWrite {
        let open = self.detector.open_window_ids().into_iter().collect();
        let emitted = emitted(&open);
        let around = self.around(emitted);
        self.changelog
            .write(&mut self.detector, around, record_bytes)
    }

    /// `write`'s records and head are acknowledged.
    pub fn committed(&mut self, write: StateWrite) {
        self.changelog.committed(write);
    }

    /// A checkpoint was sent and not acknowledged: the state topic may hold more than this
    /// detector knows; only a restore from it goes on safely.
    pub fn failed(&mut self) {
        self.changelog.failed();
    }

    /// Whether a checkpoint failed (see [`PartitionDetector::failed`]).
    pub fn uncertain(&self) -> bool {
        self.changelog.uncertain()
    }

    /// Reads time from `clock` (the system's clocks unless told otherwise).
    pub fn with_clock(mut self, clock: SharedClock) -> PartitionDetector {
        self.clock = clock;
        self
    }

    pub fn partition(&self) -> i32 {
        self.partition
    }

    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    pub fn counts(&self) -> PartitionCounts {
        self.counts
    }

    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    /// Sources every partition hears from (the raw topic's partitions): until each is heard
    /// of, or `silence` passes, it holds time back.
    pub fn expect(&mut self, sources: impl IntoIterator<Item = String>) {
        let now = self.clock.now();
        for source in sources {
            self.sources.entry(source).or_insert(Source::unheard(now));
        }
    }

    /// Takes the events of one record read at `offset`.
    pub fn take_events(
        &mut self,
        offset: i64,
        batch: &EventBatch<'_>,
        alerts: &mut Vec<Alert>,
    ) -> Taken {
        self.next_offset = self.next_offset.max(offset + 1);
        let mut taken = Taken::default();
        if !self.sources.contains_key(batch.source.as_ref()) {
            let source = Source::unheard(self.clock.now());
            self.sources.insert(batch.source.to_string(), source);
        }
        let source = self
            .sources
            .get_mut(batch.source.as_ref())
            .expect("just inserted");
        let mut notes = 0;
        for (position, item) in &batch.items {
            if source.applied.is_some_and(|applied| *position <= applied) {
                taken.repeats += 1;
                continue;
            }
            source.applied = Some(*position);
            let observed = match item {
                Item::Read {
                    ts,
                    table,
                    principal,
                } => self
                    .detector
                    .observe_classified(*ts, Some((table, principal)), alerts),
                Item::Change(change) => self.detector.observe_change(change, alerts),
                Item::ReadElsewhere { ts, table } => {
                    self.detector.note_read_elsewhere(*ts, table);
                    notes += 1;
                    continue;
                }
            };
            if matches!(observed, Observed::Late { .. }) {
                taken.late += 1;
            }
        }
        self.counts.events += batch.items.len() as u64 - taken.repeats - notes;
        self.counts.repeats += taken.repeats;
        self.counts.late += taken.late;
        taken
    }

    /// Takes a progress marker read at `offset`.
    pub fn take_progress(&mut self, offset: i64, progress: &[SourceProgress]) {
        self.next_offset = self.next_offset.max(offset + 1);
        let now = self.clock.now();
        for p in progress {
            let source = self
                .sources
                .entry(p.source.clone())
                .or_insert(Source::unheard(now));
            // The disorder a source has shown stays with it: an instance that has just taken
            // the source over has not seen it yet and would claim too much.
            if let (Some(watermark), Some(newest)) = (p.watermark, p.newest) {
                source.disorder = source.disorder.max(newest - watermark);
            }
            let claimed = match (p.watermark, p.newest) {
                (Some(watermark), Some(newest)) => Some(watermark.min(newest - source.disorder)),
                (watermark, _) => watermark,
            };
            // A restarted ingest reports from its committed offset again: never backwards.
            source.watermark = source.watermark.max(claimed);
            source.newest = source.newest.max(p.newest);
            source.idle = p.idle;
            source.heard_at = now;
            self.wall_floor.note(p.newest, now);
        }
    }

    /// A record that is not ours to read (damaged, another release): passed over.
    pub fn skip(&mut self, offset: i64) {
        self.next_offset = self.next_offset.max(offset + 1);
    }

    /// Moves event time as far as every source allows (see the module doc); alerts it causes
    /// are pushed onto `alerts`.
    pub fn advance(&mut self, silence: Duration, lateness: Duration, alerts: &mut Vec<Alert>) {
        let Some(floor) = self.floor(silence, lateness) else {
            return;
        };
        if self.detector.watermark().is_none_or(|w| floor > w) {
            self.detector.advance(floor, alerts);
        }
    }

    /// The time before which no event can still come.
    fn floor(&self, silence: Duration, lateness: Duration) -> Option<Ts> {
        let now = self.clock.now();
        let mut holding = self
            .sources
            .values()
            .filter(|s| !s.idle && now.saturating_duration_since(s.heard_at) < silence)
            .peekable();
        if holding.peek().is_some() {
            // A source holding time back that gave no event yet holds it entirely.
            return holding.map(|s| s.watermark).min().flatten();
        }
        self.wall_floor.watermark(now, lateness.as_micros() as i64)
    }

    /// The checkpoint of this partition; `emitted` gives the delivery keys of the alerts
    /// emitted for the windows open (by id), from the journal.
    pub fn state(
        &self,
        emitted: impl FnOnce(&std::collections::HashSet<String>) -> Vec<String>,
    ) -> PartitionState {
        let detector = self.detector.snapshot();
        let open = detector
            .tables
            .iter()
            .filter_map(|t| {
                t.window
                    .as_ref()
                    .map(|w| crate::detect::alert::window_id(&t.table, w.start))
            })
            .collect();
        self.around(emitted(&open))(detector)
    }

    /// This partition's state around a detector's: its sources, offset, counters and the
    /// alerts `emitted`.
    fn around(
        &self,
        emitted: Vec<String>,
    ) -> impl FnOnce(DetectorSnapshot) -> PartitionState + use<> {
        let Stamp {
            format,
            version,
            written_at,
        } = stamp::<PartitionState>();
        let sources = (self.sources.iter())
            .map(|(name, s)| SourceState {
                source: name.clone(),
                watermark: s.watermark,
                newest: s.newest,
                disorder: s.disorder,
                idle: s.idle,
                applied: s.applied,
            })
            .collect();
        let (partition, partitions, next_offset) =
            (self.partition, self.partitions, self.next_offset);
        let (events, repeats) = (self.counts.events, self.counts.repeats);
        move |detector| PartitionState {
            format,
            version,
            written_at,
            partition,
            partitions,
            next_offset,
            detector,
            sources,
            emitted,
            events,
            repeats,
        }
    }
}

/// The settings of partition `partition`'s detector: the shard of the tables routed to it.
/// Permission changes reach every partition (a grant on a schema covers tables in all of
/// them), and every table's first read is noted to every partition
/// ([`Item::ReadElsewhere`]); as a shard, the detector detects on its own tables only and
/// raises the early-warning `grant` alert only for an object routed to it, so that alert is
/// raised once, listing every table in the object read by then.
fn as_shard(mut settings: DetectorSettings, partition: i32, partitions: i32) -> DetectorSettings {
    settings.shard = crate::detect::shard::Shard::new(partition as u32 + 1, partitions as u32);
    settings
}

/// Splits the state of one whole detector (what `exposure learn` built from history files)
/// into the states of `partitions` partitions, as if the history had gone through the
/// repartition topic: each table (its baseline, pending principals, open window, buffered
/// reads, windows awaiting the revert of their cause) goes to the partition it routes to;
/// the permission ledger, the population and the clock go to every partition (every partition
/// hears every change), and so does each table's first read (its `learn_until` alone: what a partition
/// knows of another's table). Counters start at zero: they count what each partition takes
/// from Kafka.
pub fn split(whole: &DetectorSnapshot, partitions: i32) -> Vec<DetectorSnapshot> {
    let mut parts: Vec<DetectorSnapshot> = (0..partitions)
        .map(|_| DetectorSnapshot {
            now: whole.now,
            next_prune: whole.next_prune,
            newest: whole.newest,
            floor: whole.floor,
            stats: Default::default(),
            tables: Vec::new(),
            buffered: Vec::new(),
            permissions: RootCauseSnapshot {
                awaiting_revert: Vec::new(),
                ..whole.permissions.clone()
            },
            population: whole.population.clone(),
        })
        .collect();
    let at = |table: &str| partition_of(table, partitions) as usize;
    for table in &whole.tables {
        let own = at(&table.table);
        for (partition, part) in parts.iter_mut().enumerate() {
            if partition == own {
                part.tables.push(table.clone());
            } else if table.learn_until.is_some() {
                part.tables.push(crate::detect::snapshot::TableSnapshot {
                    table: table.table.clone(),
                    learn_until: table.learn_until,
                    baseline: Vec::new(),
                    pending: Vec::new(),
                    window: None,
                });
            }
        }
    }
    for read in &whole.buffered {
        parts[at(&read.table)].buffered.push(read.clone());
    }
    for alert in &whole.permissions.awaiting_revert {
        parts[at(&alert.table)]
            .permissions
            .awaiting_revert
            .push(alert.clone());
    }
    parts
}

impl PartitionState {
    /// The first state of partition `partition` of `partitions`: `detector` as learned,
    /// read on from repartition offset `next_offset`, no source heard of yet.
    pub fn learned(
        partition: i32,
        partitions: i32,
        next_offset: i64,
        detector: DetectorSnapshot,
    ) -> PartitionState {
        let Stamp {
            format,
            version,
            written_at,
        } = stamp::<PartitionState>();
        PartitionState {
            format,
            version,
            written_at,
            partition,
            partitions,
            next_offset,
            detector,
            sources: Vec::new(),
            emitted: Vec::new(),
            events: 0,
            repeats: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ConfigFile, DetectOverrides};
    use crate::detect::AlertStatus;
    use crate::event::{ChangeAction, PermissionChange};
    use crate::kafka::record::{
        BatchWriter, EventBatch, Item, Position, Record, Router, SourceProgress,
    };

    const MIN: Ts = 60_000_000;
    const LONG: Duration = Duration::from_secs(3600);

    fn settings() -> DetectorSettings {
        let file: ConfigFile = toml::from_str(
            "[detect]\nlearn = \"10m\"\nspan = \"10m\"\nclose_after = \"5m\"\nmin_principals = 3\nlateness = \"1m\"",
        )
        .unwrap();
        Config::build(file, &DetectOverrides::default(), None)
            .unwrap()
            .detector
    }

    fn read<'a>(
        offset: i64,
        minute: i64,
        table: &'a str,
        principal: &'a str,
    ) -> (Position, Item<'a>) {
        (
            Position { offset, index: 0 },
            Item::Read {
                ts: minute * MIN,
                table: table.into(),
                principal: principal.into(),
            },
        )
    }

    fn batch<'a>(source: &'a str, items: Vec<(Position, Item<'a>)>) -> EventBatch<'a> {
        EventBatch {
            source: source.into(),
            items,
        }
    }

    fn progress(source: &str, watermark: i64) -> Vec<SourceProgress> {
        vec![SourceProgress {
            source: source.into(),
            watermark: Some(watermark * MIN),
            newest: Some(watermark * MIN),
            idle: false,
        }]
    }

    /// A learning period on `t` by a and b, then six newcomers in a burst: one window.
    fn exposure(source: &str) -> EventBatch<'_> {
        let mut items = vec![read(0, 0, "t", "a"), read(1, 1, "t", "b")];
        for (i, who) in ["n1", "n2", "n3", "n4", "n5", "n6"].iter().enumerate() {
            items.push(read(2 + i as i64, 20 + i as i64, "t", who));
        }
        batch(source, items)
    }

    #[test]
    fn repeats_a_restarted_ingest_sends_are_dropped() {
        let mut partition = PartitionDetector::new(0, 1, settings());
        let mut alerts = Vec::new();
        let first = partition.take_events(0, &exposure("raw/0"), &mut alerts);
        assert_eq!(first, Taken::default());
        // The ingest restarted from an older commit: the same events again, then new ones.
        let mut again = exposure("raw/0");
        again.items.push(read(8, 27, "t", "n7"));
        let second = partition.take_events(1, &again, &mut alerts);
        assert_eq!(second.repeats, 8);
        assert_eq!(partition.counts().events, 9);
        assert_eq!(partition.next_offset(), 2);
    }

    #[test]
    fn time_waits_for_every_source_then_goes_on() {
        let mut partition = PartitionDetector::new(0, 1, settings());
        partition.expect(["raw/0".to_string(), "raw/1".to_string()]);
        let mut alerts = Vec::new();
        partition.take_events(0, &exposure("raw/0"), &mut alerts);
        partition.take_progress(1, &progress("raw/0", 60));
        partition.advance(LONG, LONG, &mut alerts);
        assert_eq!(
            partition.detector().watermark(),
            None,
            "raw/1 not heard of yet"
        );
        assert!(alerts.is_empty());
        partition.take_progress(2, &progress("raw/1", 22));
        partition.advance(LONG, LONG, &mut alerts);
        assert_eq!(partition.detector().watermark(), Some(22 * MIN));
        assert!(
            alerts.is_empty(),
            "the third newcomer (minute 22) is not applied yet"
        );
        partition.take_progress(3, &progress("raw/1", 60));
        partition.advance(LONG, LONG, &mut alerts);
        let statuses: Vec<AlertStatus> = alerts.iter().map(|a| a.status).collect();
        assert_eq!(statuses, [AlertStatus::Open, AlertStatus::Closed]);
        // A source not heard of for `silence` no longer holds time back.
        partition.expect(["raw/2".to_string()]);
        partition.take_progress(4, &progress("raw/0", 70));
        partition.advance(Duration::ZERO, LONG, &mut alerts);
        assert!(partition.detector().watermark().is_some());
    }

    #[test]
    fn two_sources_in_any_interleaving_give_the_alerts_of_one_sorted_run() {
        let events = exposure("x").items;
        let mut reference = Detector::new(settings());
        let mut expected = Vec::new();
        for (_, item) in &events {
            if let Item::Read {
                ts,
                table,
                principal,
            } = item
            {
                reference.observe_classified(*ts, Some((table, principal)), &mut expected);
            }
        }
        reference.advance(60 * MIN, &mut expected);
        // Odd events from one source, even from another, the second delivered first.
        let (odd, even): (Vec<_>, Vec<_>) =
            events.into_iter().partition(|(p, _)| p.offset % 2 == 1);
        let mut partition = PartitionDetector::new(0, 1, settings());
        let mut alerts = Vec::new();
        partition.take_events(0, &batch("raw/1", even), &mut alerts);
        partition.take_progress(1, &progress("raw/1", 60));
        partition.take_events(2, &batch("raw/0", odd), &mut alerts);
        partition.take_progress(3, &progress("raw/0", 60));
        partition.advance(LONG, LONG, &mut alerts);
        assert_eq!(alerts, expected);
        assert_eq!(alerts.len(), 2);
    }

    #[test]
    fn a_restored_state_goes_on_as_if_never_stopped() {
        let run = |stop_at: Option<usize>| {
            let mut partition = PartitionDetector::new(partition_of("t", 6), 6, settings());
            let mut alerts = Vec::new();
            let events = exposure("raw/0").items;
            for (i, event) in events.into_iter().enumerate() {
                if stop_at == Some(i) {
                    let state = partition.state(|_| Vec::new());
                    let json = serde_json::to_string(&state).unwrap();
                    let state: PartitionState = serde_json::from_str(&json).unwrap();
                    partition = PartitionDetector::restore(&state, settings());
                }
                partition.take_events(i as i64, &batch("raw/0", vec![event]), &mut alerts);
                partition.take_progress(100 + i as i64, &progress("raw/0", 19 + i as i64));
                partition.advance(LONG, LONG, &mut alerts);
            }
            partition.take_progress(200, &progress("raw/0", 60));
            partition.advance(LONG, LONG, &mut alerts);
            alerts
        };
        let whole = run(None);
        assert_eq!(whole.len(), 2);
        for stop_at in 0..8 {
            assert_eq!(run(Some(stop_at)), whole, "stopped before event {stop_at}");
        }
    }

    #[test]
    fn a_grant_alert_is_raised_by_the_partition_its_object_routes_to() {
        let change = PermissionChange {
            ts: 30 * MIN,
            action: ChangeAction::Grant,
            object: "hr.salaries".into(),
            grantee: "PUBLIC".into(),
            privilege: "SELECT".into(),
            actor: "agent".into(),
            statement: None,
        };
        let owner = partition_of("hr.salaries", 4);
        let raised: Vec<usize> = (0..4)
            .map(|p| {
                let mut partition = PartitionDetector::new(p, 4, settings());
                let mut alerts = Vec::new();
                let items = vec![(
                    Position {
                        offset: 0,
                        index: 0,
                    },
                    Item::Change(change.clone()),
                )];
                partition.take_events(0, &batch("raw/0", items), &mut alerts);
                partition.take_progress(1, &progress("raw/0", 60));
                partition.advance(LONG, LONG, &mut alerts);
                alerts.len()
            })
            .collect();
        let expected: Vec<usize> = (0..4).map(|p| usize::from(p == owner)).collect();
        assert_eq!(raised, expected);
    }

    /// Reads of eight tables of `hr` (one first read only after the grant), a grant on the
    /// whole schema to PUBLIC, then newcomers on two tables.
    fn schema_exposure() -> Vec<(i64, Option<PermissionChange>, String, String)> {
        let mut events = Vec::new();
        for t in 0..8 {
            let minute = if t == 7 { 31 } else { t };
            for who in ["a", "b"] {
                events.push((minute, None, format!("hr.t{t}"), who.to_string()));
            }
        }
        let grant = PermissionChange {
            ts: 30 * MIN,
            action: ChangeAction::Grant,
            object: "hr".into(),
            grantee: "PUBLIC".into(),
            privilege: "SELECT".into(),
            actor: "agent".into(),
            statement: None,
        };
        events.push((30, Some(grant), String::new(), String::new()));
        for (i, who) in ["n1", "n2", "n3", "n4"].iter().enumerate() {
            for t in [2, 5] {
                events.push((40 + i as i64, None, format!("hr.t{t}"), who.to_string()));
            }
        }
        events.sort_by_key(|e| e.0);
        events
    }

    #[test]
    fn partitions_fed_through_the_router_raise_the_alerts_of_one_detector() {
        let events = schema_exposure();
        let mut whole = Detector::new(settings());
        let mut expected = Vec::new();
        for (minute, change, table, who) in &events {
            match change {
                Some(change) => whole.observe_change(change, &mut expected),
                None => whole.observe_classified(minute * MIN, Some((table, who)), &mut expected),
            };
        }
        whole.advance(120 * MIN, &mut expected);
        let grant = expected
            .iter()
            .find(|a| a.status == AlertStatus::Grant)
            .expect("a grant alert");
        let listed: Vec<String> = (0..7).map(|t| format!("hr.t{t}")).collect();
        assert_eq!(grant.tables, listed, "tables read by the grant's time");
        assert_eq!(
            expected
                .iter()
                .filter(|a| a.status == AlertStatus::Open)
                .count(),
            2
        );

        for partitions in [2, 3, 4, 7] {
            let mut batches: Vec<BatchWriter> =
                (0..partitions).map(|_| BatchWriter::default()).collect();
            for batch in &mut batches {
                batch.start("raw/0");
            }
            let mut router = Router::default();
            for (offset, (minute, change, table, who)) in events.iter().enumerate() {
                let position = Position {
                    offset: offset as i64,
                    index: 0,
                };
                match change {
                    Some(change) => router.change(&mut batches, position, change),
                    None => router.read(&mut batches, position, minute * MIN, table, who),
                }
            }
            assert_eq!(router.tables(), 8);
            let mut got = Vec::new();
            for (partition, batch) in (0..).zip(&mut batches) {
                let record = Record::decode(batch.finish()).unwrap();
                let Record::Events(batch) = record else {
                    panic!("an event batch")
                };
                let mut detector = PartitionDetector::new(partition, partitions, settings());
                detector.take_events(0, &batch, &mut got);
                detector.take_progress(1, &progress("raw/0", 120));
                detector.advance(LONG, LONG, &mut got);
                let reads = batch
                    .items
                    .iter()
                    .filter(|(_, item)| !matches!(item, Item::ReadElsewhere { .. }))
                    .count();
                assert_eq!(
                    detector.counts().events,
                    reads as u64,
                    "notes are not events"
                );
            }
            let sorted = |alerts: &[Alert]| {
                let mut all: Vec<String> = alerts.iter().map(|a| format!("{a:?}")).collect();
                all.sort();
                all
            };
            assert_eq!(sorted(&got), sorted(&expected), "{partitions} partitions");
        }
    }

    #[test]
    fn a_learned_state_split_by_partition_goes_on_as_the_whole_detector() {
        let tables: Vec<String> = (0..12).map(|t| format!("db.t{t:02}")).collect();
        let mut whole = Detector::new(settings());
        let mut history_alerts = Vec::new();
        for table in &tables {
            whole.observe_classified(0, Some((table, "a")), &mut history_alerts);
            whole.observe_classified(MIN, Some((table, "b")), &mut history_alerts);
        }
        // A window still open at the end of the history.
        for (i, who) in ["n1", "n2", "n3"].iter().enumerate() {
            whole.observe_classified(
                (20 + i as i64) * MIN,
                Some((&tables[3], who)),
                &mut history_alerts,
            );
        }
        whole.advance(23 * MIN, &mut history_alerts);
        let learned = whole.snapshot();
        assert_eq!(
            learned.tables.iter().filter(|t| t.window.is_some()).count(),
            1
        );
        // Live: the open window extended, another table exposed, normal reads elsewhere.
        let mut live = vec![(24, tables[3].clone(), "n4".to_string())];
        for (i, who) in ["m1", "m2", "m3", "m4"].iter().enumerate() {
            live.push((40 + i as i64, tables[7].clone(), who.to_string()));
        }
        for table in &tables {
            live.push((50, table.clone(), "a".to_string()));
        }
        live.sort();
        let mut expected = Vec::new();
        for (minute, table, who) in &live {
            whole.observe_classified(minute * MIN, Some((table, who)), &mut expected);
        }
        whole.advance(120 * MIN, &mut expected);
        assert_eq!(expected.len(), 3, "{expected:#?}");

        let partitions = 4;
        let parts = split(&learned, partitions);
        // Every partition knows every table read; its own whole, the others' first read only.
        for table in &learned.tables {
            for (partition, part) in (0..partitions).zip(&parts) {
                let known = part.tables.iter().find(|t| t.table == table.table).unwrap();
                if partition == partition_of(&table.table, partitions) {
                    assert_eq!(known, table);
                } else {
                    assert_eq!(known.learn_until, table.learn_until);
                    assert!(known.baseline.is_empty() && known.window.is_none());
                }
            }
        }
        let mut got = Vec::new();
        for (partition, part) in (0..partitions).zip(parts) {
            let state = PartitionState::learned(partition, partitions, 0, part);
            let json = serde_json::to_string(&state).unwrap();
            let state: PartitionState = serde_json::from_str(&json).unwrap();
            let mut detector = PartitionDetector::restore(&state, settings());
            let items: Vec<(Position, Item)> = live
                .iter()
                .enumerate()
                .filter(|(_, (_, table, _))| partition_of(table, partitions) == partition)
                .map(|(i, (minute, table, who))| read(i as i64, *minute, table, who))
                .collect();
            detector.take_events(0, &batch("raw/0", items), &mut got);
            detector.take_progress(1, &progress("raw/0", 120));
            detector.advance(LONG, LONG, &mut got);
        }
        let sorted = |alerts: &[Alert]| {
            let mut all: Vec<String> = alerts.iter().map(|a| format!("{a:?}")).collect();
            all.sort();
            all
        };
        assert_eq!(sorted(&got), sorted(&expected));
    }

    #[test]
    fn a_source_taken_over_keeps_the_disorder_it_showed() {
        let mut partition = PartitionDetector::new(0, 1, settings());
        partition.expect(["raw/0".to_string()]);
        let mut alerts = Vec::new();
        let report = |watermark: i64, newest: i64| {
            vec![SourceProgress {
                source: "raw/0".into(),
                watermark: Some(watermark * MIN),
                newest: Some(newest * MIN),
                idle: false,
            }]
        };
        // Its first reader saw it ten minutes out of order.
        partition.take_progress(0, &report(50, 60));
        partition.advance(LONG, LONG, &mut alerts);
        assert_eq!(partition.detector().watermark(), Some(50 * MIN));
        // The instance that took it over has not seen that yet and claims its newest time.
        partition.take_progress(1, &report(70, 70));
        partition.advance(LONG, LONG, &mut alerts);
        assert_eq!(partition.detector().watermark(), Some(60 * MIN));
        // The state carries it to the next owner of the partition.
        let state = partition.state(|_| Vec::new());
        assert_eq!(state.sources[0].disorder, 10 * MIN);
        let mut restored = PartitionDetector::restore(&state, settings());
        restored.take_progress(2, &report(80, 80));
        restored.advance(LONG, LONG, &mut alerts);
        assert_eq!(restored.detector().watermark(), Some(70 * MIN));
    }

    #[test]
    fn a_state_is_opened_through_the_one_envelope() {
        let partition = PartitionDetector::new(2, 6, settings());
        let state = partition.state(|_| Vec::new());
        let bytes = serde_json::to_vec(&state).unwrap();
        let opened = crate::state::envelope::open::<PartitionState>(&bytes).unwrap();
        assert_eq!(opened, state);
        let newer = String::from_utf8(bytes)
            .unwrap()
            .replace("\"version\":2", "\"version\":3");
        let error = crate::state::envelope::open::<PartitionState>(newer.as_bytes())
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "it is \"exposure.kafka-partition\" version 3, this exposure reads \
             exposure.kafka-partition version 2"
        );
    }

    /// Watch's time rules on a clock the test moves: a silent source stops holding time back
    /// after `silence`, and then a quiet window closes by the wall clock — no sleeping.
    #[test]
    fn on_a_stopped_clock_time_moves_only_when_the_clock_does() {
        let clock = crate::intake::ManualClock::new(0);
        let mut partition =
            PartitionDetector::new(0, 1, settings()).with_clock(clock.clone() as SharedClock);
        partition.expect(["raw/0".to_string(), "raw/1".to_string()]);
        let mut alerts = Vec::new();
        partition.take_events(0, &exposure("raw/0"), &mut alerts);
        partition.take_progress(1, &progress("raw/0", 26));
        let silence = Duration::from_secs(30);
        let lateness = Duration::from_secs(60);
        partition.advance(silence, lateness, &mut alerts);
        assert_eq!(partition.detector().watermark(), None, "raw/1 holds time");
        clock.advance(silence - Duration::from_millis(1));
        partition.advance(silence, lateness, &mut alerts);
        assert_eq!(
            partition.detector().watermark(),
            None,
            "not silent for long enough"
        );
        // raw/0 speaks again; raw/1 has been silent for `silence`: time goes by raw/0 alone
        // (and raw/0 too is silent a moment later: by the wall clock from its newest event).
        clock.advance(Duration::from_millis(1));
        partition.take_progress(2, &progress("raw/0", 26));
        partition.advance(silence, lateness, &mut alerts);
        assert_eq!(partition.detector().watermark(), Some(26 * MIN));
        assert_eq!(
            alerts.iter().map(|a| a.status).collect::<Vec<_>>(),
            [AlertStatus::Open]
        );
        // Nothing more comes: the window (last novel read minute 25, close_after 5m) closes
        // once the wall clock has gone past minute 30 plus lateness.
        clock.advance(silence);
        partition.advance(silence, lateness, &mut alerts);
        assert_eq!(
            alerts.len(),
            1,
            "time by the wall clock: minute 26.5 - lateness"
        );
        clock.advance(Duration::from_secs(5 * 60));
        partition.advance(silence, lateness, &mut alerts);
        assert_eq!(
            alerts.iter().map(|a| a.status).collect::<Vec<_>>(),
            [AlertStatus::Open, AlertStatus::Closed]
        );
    }
}
