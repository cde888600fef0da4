//! Properties that must hold for every input: any arrival order within `lateness` gives
//! byte-identical alerts, and splitting the input never changes them — with permission changes
//! (grants, revokes, role memberships) mixed in among the reads.

use exposure::detect::{Alert, Detector, DetectorSettings, Thresholds};
use exposure::event::{AccessEvent, ChangeAction, MEMBER, PermissionChange};
use exposure::time::{MICROS_PER_SEC, Span};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use std::sync::Arc;

const MIN: i64 = 60 * MICROS_PER_SEC;
const BASE: i64 = 1_773_792_000 * MICROS_PER_SEC;
const LATENESS: i64 = 3 * MIN;
const TABLES: [&str; 3] = ["db.a", "db.b", "hr.c"];
const PRINCIPALS: [&str; 10] = ["p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9"];
/// What permission changes are on: the tables, a container of two of them, and a role.
const OBJECTS: [&str; 5] = ["db.a", "db.b", "hr.c", "db", "grp"];
const GRANTEES: [&str; 4] = ["PUBLIC", "p3", "grp", "p5"];

fn settings() -> DetectorSettings {
    let mut settings = DetectorSettings {
        lateness: Span(LATENESS),
        emit_updates: true,
        ..DetectorSettings::default()
    };
    let default = Arc::make_mut(&mut settings.policies.default);
    default.thresholds = Thresholds {
        learn: Span(30 * MIN),
        forget_after: Span(300 * MIN),
        span: Span(20 * MIN),
        quiet: Span(8 * MIN),
        min_principals: 3,
    };
    settings
}

#[derive(Debug, Clone)]
struct Ev {
    ts: i64,
    table: usize,
    principal: usize,
    read: bool,
    /// A permission change instead of an access: (grant?, object, grantee).
    change: Option<(bool, usize, usize)>,
}

impl Ev {
    fn change(&self) -> Option<PermissionChange> {
        let (grant, object, grantee) = self.change?;
        let role = OBJECTS[object] == "grp";
        Some(PermissionChange {
            ts: self.ts,
            action: if grant {
                ChangeAction::Grant
            } else {
                ChangeAction::Revoke
            },
            object: OBJECTS[object].into(),
            // A role's members are principals; a grant's grantees are the few above.
            grantee: if role {
                PRINCIPALS[self.principal].into()
            } else {
                GRANTEES[grantee].into()
            },
            privilege: if role { MEMBER } else { "SELECT" }.into(),
            actor: "admin".into(),
            statement: None,
        })
    }

    fn observe(&self, detector: &mut Detector, alerts: &mut Vec<Alert>) {
        match self.change() {
            Some(change) => detector.observe_change(&change, alerts),
            None => detector.observe(&self.access(), alerts),
        };
    }

    /// As a Parquet row group in order hands it over: a read into `chunk` (by ids), a change
    /// observed.
    fn collect(
        &self,
        by_id: &mut exposure::detect::ById<'_>,
        chunk: &mut Vec<exposure::detect::BufferedRead>,
        alerts: &mut Vec<Alert>,
    ) {
        if let Some(change) = self.change() {
            by_id.observe_change(&change, alerts);
            return;
        }
        let read = by_id.is_read_action(Some(if self.read { "SELECT" } else { "INSERT" }));
        let ids = read.then(|| {
            (
                by_id.table(TABLES[self.table]),
                by_id.principal(PRINCIPALS[self.principal]),
            )
        });
        by_id.collect_in_order(self.ts, ids, chunk);
    }

    fn access(&self) -> AccessEvent<'static> {
        AccessEvent::new(
            self.ts,
            PRINCIPALS[self.principal],
            TABLES[self.table],
            Some(if self.read { "SELECT" } else { "INSERT" }),
        )
    }
}

fn alerts_json(events: &[Ev]) -> String {
    let mut detector = Detector::new(settings());
    let mut alerts: Vec<Alert> = Vec::new();
    for e in events {
        e.observe(&mut detector, &mut alerts);
    }
    finished_json(detector, alerts)
}

/// Ends the input and renders every alert, one JSON line each.
fn finished_json(mut detector: Detector, mut alerts: Vec<Alert>) -> String {
    detector.finish(&mut alerts);
    alerts.iter().map(|a| a.to_json() + "\n").collect()
}

/// Events over ten hours in whole seconds (so that instants collide), with bursts of novel
/// readers, and for each a delivery delay within the lateness.
fn scenario() -> impl Strategy<Value = (Vec<Ev>, Vec<i64>)> {
    let event = (
        0i64..600 * 60,
        0usize..3,
        0usize..10,
        prop::bool::weighted(0.9),
        0i64..6 * 60,
        (0u8..40, 0usize..5, 0usize..4),
    );
    prop::collection::vec(event, 1..300).prop_map(|raw| {
        let mut events = Vec::new();
        let mut delays = Vec::new();
        for (sec, table, principal, read, burst, (kind, object, grantee)) in raw {
            // Quantise some times to whole minutes to force equal instants.
            let ts = if sec % 3 == 0 {
                BASE + (sec / 60) * MIN
            } else {
                BASE + sec * MICROS_PER_SEC
            };
            // One event in twenty is a permission change.
            let change = (kind < 2).then_some((kind == 0 || object == 4, object, grantee));
            events.push(Ev {
                ts,
                table,
                principal,
                read,
                change,
            });
            delays.push((burst * MICROS_PER_SEC).min(LATENESS));
        }
        events.sort_by_key(|e| e.ts);
        (events, delays)
    })
}

/// The events in the order they arrive when each is delivered at ts + delay (delay <= lateness:
/// never late, often reordered); `tie` orders equal arrival times.
fn delivered(events: &[Ev], delays: &[i64], tie: impl Fn(usize) -> u64) -> Vec<Ev> {
    let mut arrival: Vec<(i64, u64, Ev)> = events
        .iter()
        .zip(delays)
        .enumerate()
        .map(|(i, (e, d))| (e.ts + d, tie(i), e.clone()))
        .collect();
    arrival.sort_by_key(|(at, tie, _)| (*at, *tie));
    arrival.into_iter().map(|(_, _, e)| e).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    #[test]
    fn arrival_order_within_lateness_never_changes_alerts((events, delays) in scenario(), seed in any::<u64>()) {
        let sorted = alerts_json(&events);
        let shuffled = delivered(&events, &delays, |i| (i as u64).wrapping_mul(seed | 1).rotate_left(17));
        prop_assert_eq!(alerts_json(&shuffled), sorted);
    }

    #[test]
    fn same_instant_order_never_changes_alerts((events, _) in scenario()) {
        let mut reversed = events.clone();
        // Reverse every run of equal times.
        let mut i = 0;
        while i < reversed.len() {
            let mut j = i;
            while j < reversed.len() && reversed[j].ts == reversed[i].ts { j += 1; }
            reversed[i..j].reverse();
            i = j;
        }
        prop_assert_eq!(alerts_json(&reversed), alerts_json(&events));
    }
}

#[test]
fn the_scenarios_do_open_windows() {
    // Guards the property tests against vacuity: the generator's shape does produce alerts.
    let mut events = Vec::new();
    for (i, p) in [0usize, 1, 2].iter().enumerate() {
        events.push(Ev {
            ts: BASE + i as i64 * MIN,
            table: 0,
            principal: *p,
            read: true,
            change: None,
        });
    }
    for (i, p) in [5usize, 6, 7, 8].iter().enumerate() {
        events.push(Ev {
            ts: BASE + (60 + i as i64) * MIN,
            table: 0,
            principal: *p,
            read: true,
            change: None,
        });
    }
    let json = alerts_json(&events);
    assert_eq!(json.lines().count(), 2, "{json}");
    let (mut opened, mut caused, mut granted, mut reverted) = (0, 0, 0, 0);
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    for _ in 0..200 {
        let (events, _) = scenario().new_tree(&mut runner).unwrap().current();
        let json = alerts_json(&events);
        opened += usize::from(json.contains("\"open\""));
        caused += usize::from(json.contains("\"cause\""));
        granted += usize::from(json.contains("\"grant\""));
        reverted += usize::from(json.contains("\"exposed_until\""));
    }
    assert!(
        opened > 20,
        "only {opened} of 200 scenarios opened a window"
    );
    // And permission changes do what they do: causes, early warnings, reverts.
    assert!(
        caused > 10 && granted > 20 && reverted > 2,
        "{caused} caused, {granted} granted, {reverted} reverted of 200"
    );
}

/// Where sorted `events` are cut into chunks: at the `cuts` (modulo the length) where the time
/// changes, and at the end.
fn chunk_ends(events: &[Ev], cuts: &[usize]) -> Vec<usize> {
    let mut ends: Vec<usize> = cuts
        .iter()
        .map(|c| c % (events.len() + 1))
        .filter(|&c| c > 0 && c < events.len() && events[c - 1].ts < events[c].ts)
        .collect();
    ends.sort();
    ends.dedup();
    ends.push(events.len());
    ends
}

/// Alerts when sorted events are cut into chunks (at instants where the time changes) and each
/// chunk is applied table by table, as Parquet replay does for sorted row groups.
fn alerts_json_in_chunks(events: &[Ev], cuts: &[usize]) -> String {
    use exposure::detect::BufferedRead;
    let mut detector = Detector::new(settings());
    detector.use_external_watermark();
    let mut alerts: Vec<Alert> = Vec::new();
    let bounds = chunk_ends(events, cuts);
    let mut start = 0;
    for end in bounds {
        let mut chunk: Vec<BufferedRead> = Vec::new();
        let mut by_id = detector.by_id();
        for e in &events[start..end] {
            e.collect(&mut by_id, &mut chunk, &mut alerts);
        }
        let next = events.get(end).map(|e| e.ts);
        by_id.apply_chunk(&chunk, next, &mut alerts);
        if let Some(next) = next {
            detector.advance(next, &mut alerts);
        }
        start = end;
    }
    finished_json(detector, alerts)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn chunks_applied_table_by_table_give_identical_alerts(
        (events, _) in scenario(),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
    ) {
        prop_assert_eq!(alerts_json_in_chunks(&events, &cuts), alerts_json(&events));
    }
}

/// After each chunk of `alerts_json_in_chunks`, the state of the detector applying chunks (the
/// normal reads absorbed first, see src/detect/normal_reads.rs) is the state of one applying
/// the same events one by one up to the same time: every baseline time, pending principal and
/// window, not only the alerts. `forget_after` is long against the chunks, so that most reads are
/// absorbed, and short for one table, so that its reads never are.
fn chunked_and_one_by_one_states(
    events: &[Ev],
    cuts: &[usize],
    mut seed: u64,
) -> Result<(), TestCaseError> {
    use exposure::detect::{BufferedRead, TableRule};
    let mut settings = settings();
    let default = Arc::make_mut(&mut settings.policies.default);
    default.thresholds.forget_after = Span(900 * MIN);
    let mut short = (*settings.policies.default).clone();
    short.rule = Some("hr.*".into());
    short.thresholds.forget_after = Span(40 * MIN);
    settings.policies.rules = vec![TableRule {
        matcher: globset::Glob::new("hr.*").unwrap().compile_matcher(),
        policy: Arc::new(short),
    }];
    let mut chunked = Detector::new(settings.clone());
    let mut one_by_one = Detector::new(settings);
    chunked.use_external_watermark();
    one_by_one.use_external_watermark();
    let (mut alerts, mut reference) = (Vec::new(), Vec::new());
    let bounds = chunk_ends(events, cuts);
    let mut start = 0;
    for end in bounds {
        let mut chunk: Vec<BufferedRead> = Vec::new();
        let mut by_id = chunked.by_id();
        for e in &events[start..end] {
            e.observe(&mut one_by_one, &mut reference);
            e.collect(&mut by_id, &mut chunk, &mut alerts);
        }
        // A chunk is complete, not sorted: applied in any order.
        for i in (1..chunk.len()).rev() {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            chunk.swap(i, (seed >> 33) as usize % (i + 1));
        }
        let next = events.get(end).map(|e| e.ts);
        by_id.apply_chunk(&chunk, next, &mut alerts);
        if let Some(next) = next {
            chunked.advance(next, &mut alerts);
            one_by_one.advance(next, &mut reference);
            prop_assert_eq!(
                deciding(chunked.snapshot()),
                deciding(one_by_one.snapshot()),
                "after event {}",
                end
            );
        }
        start = end;
    }
    prop_assert_eq!(
        finished_json(chunked, alerts),
        finished_json(one_by_one, reference)
    );
    Ok(())
}

/// What of a state can still decide anything: chunked application prunes forgotten principals
/// on its own schedule (when the next pruning is due, and the entries already past
/// `forget_after` of `chunked_and_one_by_one_states`' tables, are left out), and keeps windows
/// awaiting a revert in the order tables are applied in (sorted by window here).
fn deciding(mut state: exposure::detect::DetectorSnapshot) -> exposure::detect::DetectorSnapshot {
    let now = state.now.unwrap_or(i64::MIN);
    state.next_prune = 0;
    for table in &mut state.tables {
        let forget = if table.table.starts_with("hr.") {
            40 * MIN
        } else {
            900 * MIN
        };
        table.baseline.retain(|(_, last)| now - last <= forget);
    }
    state
        .permissions
        .awaiting_revert
        .sort_by(|a, b| a.id.cmp(&b.id));
    state
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn chunked_state_is_one_by_one_state(
        (events, _) in scenario(),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
        seed in any::<u64>(),
    ) {
        chunked_and_one_by_one_states(&events, &cuts, seed)?;
    }
}

/// Alerts when the detector is checkpointed after each event index in `stops` (snapshot,
/// through JSON, restored into a fresh detector), as `exposure watch` does across restarts.
fn alerts_json_with_restarts(events: &[Ev], stops: &[usize], chunk: Option<usize>) -> String {
    use exposure::detect::DetectorSnapshot;
    let mut detector = Detector::new(settings());
    // Replay applies reads in chunks; `exposure learn` snapshots such a detector.
    if let Some(chunk) = chunk {
        detector.apply_in_chunks(chunk);
    }
    let mut alerts: Vec<Alert> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        if stops.iter().any(|s| s % events.len() == i) {
            let json = serde_json::to_string(&detector.snapshot()).unwrap();
            let snapshot: DetectorSnapshot = serde_json::from_str(&json).unwrap();
            let restored = Detector::restore(settings(), &snapshot);
            assert_eq!(restored.snapshot(), detector.snapshot());
            detector = restored;
        }
        e.observe(&mut detector, &mut alerts);
    }
    finished_json(detector, alerts)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn snapshot_and_restore_anywhere_never_changes_alerts(
        (events, delays) in scenario(),
        stops in prop::collection::vec(any::<usize>(), 1..5),
        chunk in prop::option::of(1usize..40),
    ) {
        // Out of order within lateness, so that the reorder buffer holds reads at the stops.
        let shuffled = delivered(&events, &delays, |i| i as u64);
        prop_assert_eq!(alerts_json_with_restarts(&shuffled, &stops, chunk), alerts_json(&events));
    }
}

/// Alerts when the detector is checkpointed incrementally at `stops` — the changes since the
/// last stop written (through JSON), folded onto the last full snapshot, which is compacted at
/// some stops — and restored from base and changes at others, as `watch` does.
fn alerts_json_with_incremental_checkpoints(
    events: &[Ev],
    stops: &[(usize, u8)],
    chunk: Option<usize>,
) -> String {
    use exposure::detect::{DetectorChanges, DetectorSnapshot, FoldedChanges};
    let mut detector = Detector::new(settings());
    if let Some(chunk) = chunk {
        detector.apply_in_chunks(chunk);
    }
    detector.track_changes();
    let mut base: DetectorSnapshot = detector.snapshot();
    let mut log: Vec<String> = Vec::new();
    let mut alerts: Vec<Alert> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        for (_, what) in stops.iter().filter(|(s, _)| s % events.len() == i) {
            log.push(serde_json::to_string(&detector.take_changes()).unwrap());
            let mut folded = FoldedChanges::default();
            for line in &log {
                folded.fold(serde_json::from_str::<DetectorChanges>(line).unwrap());
            }
            let state = folded.apply(base.clone());
            assert_eq!(state, detector.snapshot(), "folded at event {i}");
            if what % 3 == 0 {
                // Compaction: the folded state becomes the base.
                base = state.clone();
                log.clear();
            }
            if what % 2 == 0 {
                // A restart: from base and changes.
                detector = Detector::restore(settings(), &state);
                detector.track_changes();
            }
        }
        e.observe(&mut detector, &mut alerts);
    }
    finished_json(detector, alerts)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn incremental_checkpoints_fold_to_the_snapshot_and_never_change_alerts(
        (events, delays) in scenario(),
        stops in prop::collection::vec((any::<usize>(), any::<u8>()), 1..12),
        chunk in prop::option::of(1usize..40),
    ) {
        let shuffled = delivered(&events, &delays, |i| i as u64);
        prop_assert_eq!(
            alerts_json_with_incremental_checkpoints(&shuffled, &stops, chunk),
            alerts_json(&events)
        );
    }
}

/// Alerts when reads are applied in chunks of `chunk` reads, table by table, as replay of line
/// inputs does (`Detector::apply_in_chunks`); with `keep` set, the detector leaves chunked
/// application after that many events and goes on one read at a time.
fn alerts_json_applied_in_chunks(events: &[Ev], chunk: usize, keep: Option<usize>) -> String {
    let mut detector = Detector::new(settings());
    detector.apply_in_chunks(chunk);
    let mut alerts: Vec<Alert> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        if keep == Some(i) {
            detector.apply_one_by_one(&mut alerts);
        }
        e.observe(&mut detector, &mut alerts);
    }
    finished_json(detector, alerts)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn reads_applied_in_chunks_give_identical_alerts(
        (events, delays) in scenario(),
        chunk in 1usize..80,
        keep in prop::option::of(any::<usize>()),
    ) {
        // Out of order within lateness: chunks end at reads that are not yet final.
        let shuffled = delivered(&events, &delays, |i| i as u64);
        let keep = keep.map(|k| k % (shuffled.len() + 1));
        prop_assert_eq!(alerts_json_applied_in_chunks(&shuffled, chunk, keep), alerts_json(&events));
    }
}

/// Alerts when `events` (each stream within lateness of sorted) are split over `streams`
/// streams by `assign`, and read in blocks of random sizes, picking a stream at random each
/// time, as replay of several overlapping inputs does: per-stream watermarks, the detector's
/// the minimum of them, announced starts from a look-ahead (or none).
fn alerts_json_from_streams(
    events: &[Ev],
    streams: usize,
    assign: &[usize],
    picks: &[(usize, usize)],
    announce: bool,
    chunk: Option<usize>,
) -> String {
    use exposure::watermark::Watermarks;
    let mut split: Vec<Vec<&Ev>> = vec![Vec::new(); streams];
    for (i, e) in events.iter().enumerate() {
        split[assign[i % assign.len()] % streams].push(e);
    }
    let mut detector = Detector::new(settings());
    detector.use_external_watermark();
    if let Some(chunk) = chunk {
        detector.apply_in_chunks(chunk);
    }
    // No event is far ahead here: the scenario spans ten hours.
    let mut watermarks = Watermarks::new(LATENESS, 24 * 60 * MIN);
    for stream in &split {
        watermarks.add(if announce {
            stream.first().map(|e| e.ts)
        } else {
            None
        });
    }
    let mut at = vec![0usize; streams];
    let mut alerts: Vec<Alert> = Vec::new();
    let mut picks = picks.iter().cycle();
    while (0..streams).any(|s| at[s] < split[s].len()) {
        let &(pick, block) = picks.next().expect("cycles");
        let Some(s) = (0..streams)
            .map(|k| (pick + k) % streams)
            .find(|&s| at[s] < split[s].len())
        else {
            break;
        };
        let end = (at[s] + 1 + block).min(split[s].len());
        for e in &split[s][at[s]..end] {
            assert_eq!(
                watermarks.observe(s, e.ts),
                (None, exposure::watermark::Verdict::Take),
                "within lateness"
            );
            e.observe(&mut detector, &mut alerts);
        }
        at[s] = end;
        if at[s] == split[s].len() {
            watermarks.end(s);
        }
        if let Some(watermark) = watermarks.watermark() {
            detector.advance(watermark, &mut alerts);
        }
    }
    for (s, stream) in split.iter().enumerate() {
        if stream.is_empty() {
            watermarks.end(s);
        }
    }
    assert_eq!(detector.stats().late, 0, "never late across streams");
    finished_json(detector, alerts)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn overlapping_streams_read_in_any_interleaving_give_identical_alerts(
        (events, delays) in scenario(),
        streams in 1usize..=8,
        assign in prop::collection::vec(any::<usize>(), 1..40),
        picks in prop::collection::vec((any::<usize>(), 0usize..50), 1..30),
        announce in any::<bool>(),
        chunk in prop::option::of(1usize..60),
    ) {
        // Each stream is a subsequence of one within lateness of sorted: so is each stream.
        let shuffled = delivered(&events, &delays, |i| i as u64);
        prop_assert_eq!(
            alerts_json_from_streams(&shuffled, streams, &assign, &picks, announce, chunk),
            alerts_json(&events)
        );
    }
}

// The canonical JSON-lines scanner (src/format/canonical.rs) against serde_json alone: for any
// line — canonical, nearly canonical, or broken anywhere — both give the same event or the
// same error.

/// A JSON value as it may appear in a log line, usual or not.
fn json_value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z0-9@._-]{0,12}".prop_map(|s| format!("\"{s}\"")),
        1 => Just("\"\"".to_string()),
        1 => Just("\"  \"".to_string()),
        1 => "[a-z]{0,4}".prop_map(|s| format!("\"{s}\\\"q\"")),
        1 => "[a-z]{0,4}".prop_map(|s| format!("\"\\u0041{s}\"")),
        1 => Just("\"tab\there\"".to_string()),
        1 => "[a-zé☃]{1,4}".prop_map(|s| format!("\"{s}\"")),
        2 => any::<i64>().prop_map(|n| n.to_string()),
        1 => (0u64..100).prop_map(|n| n.to_string()),
        1 => prop_oneof![
            Just("-0"), Just("012"), Just("1.5"), Just("1e3"), Just("-"), Just("99999999999999999999"),
            Just("null"), Just("true"), Just("false"), Just("{}"), Just("[1]"), Just("{\"a\":1}"),
        ]
        .prop_map(str::to_string),
    ]
}

/// A timestamp value: RFC 3339 in many shapes (valid or not), epoch numbers, other things.
fn ts_value() -> impl Strategy<Value = String> {
    let date = (
        prop_oneof![
            Just(999i32),
            Just(1000),
            Just(1970),
            Just(2024),
            Just(2026),
            Just(9999)
        ],
        0u32..14,
        0u32..33,
        0u32..25,
        0u32..61,
        0u32..61,
    );
    let fraction = prop_oneof![Just(String::new()), Just(".".to_string()), "\\.[0-9]{1,11}"];
    let zone =
        prop_oneof![4 => Just("Z"), 1 => Just("+00:00"), 1 => Just("z"), 1 => Just("+02:00")];
    prop_oneof![
        6 => (date, fraction, zone, prop_oneof![Just('T'), Just(' '), Just('t')]).prop_map(
            |((y, mo, d, h, mi, s), f, z, t)| {
                format!("\"{y:04}-{mo:02}-{d:02}{t}{h:02}:{mi:02}:{s:02}{f}{z}\"")
            }
        ),
        1 => (1_000_000_000i64..2_000_000_000_000).prop_map(|n| n.to_string()),
        1 => json_value(),
    ]
}

fn white() -> impl Strategy<Value = &'static str> {
    prop_oneof![8 => Just(""), 1 => Just(" "), 1 => Just("\t"), 1 => Just(" \r ")]
}

/// A line: keys (mapped, unknown, permission fields, repeated) in any order, values of any
/// kind, white space anywhere, sometimes a byte changed or trailing garbage.
fn log_line() -> impl Strategy<Value = Vec<u8>> {
    let key = prop_oneof![
        3 => Just("ts"), 3 => Just("principal"), 3 => Just("table"), 2 => Just("action"),
        1 => Just("rows"), 1 => Just("bytes"), 1 => Just("other"), 1 => Just("grantee"),
        1 => Just("Table"),
    ];
    let member = (key, white(), white(), white(), white()).prop_flat_map(|(k, a, b, c, d)| {
        let value = if k == "ts" {
            ts_value().boxed()
        } else {
            json_value().boxed()
        };
        value.prop_map(move |v| format!("{a}\"{k}\"{b}:{c}{v}{d}"))
    });
    let members = prop::collection::vec(member, 0..8);
    let canonical = (
        ts_value(),
        "[a-z]{1,8}",
        "[a-z.]{1,10}",
        prop::option::of("[A-Z]{3,6}"),
    )
        .prop_map(|(ts, p, t, a)| {
            let action = a
                .map(|a| format!(",\"action\":\"{a}\""))
                .unwrap_or_default();
            format!("{{\"ts\":{ts},\"principal\":\"{p}\",\"table\":\"{t}\"{action}}}")
        });
    let object = prop_oneof![
        members.prop_map(|m| format!("{{{}}}", m.join(","))),
        canonical,
    ];
    (
        object,
        white(),
        prop_oneof![8 => Just(""), 1 => Just(" x"), 1 => Just(","), 1 => Just("}")],
        prop::option::of((any::<prop::sample::Index>(), any::<u8>())),
    )
        .prop_map(|(object, ws, tail, edit)| {
            let mut line = format!("{ws}{object}{tail}").into_bytes();
            if let Some((at, byte)) = edit {
                let at = at
                    .index(line.len().max(1))
                    .min(line.len().saturating_sub(1));
                if !line.is_empty() {
                    line[at] = byte;
                }
            }
            line
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]
    #[test]
    fn the_canonical_scanner_agrees_with_serde_json(line in log_line()) {
        use exposure::format::jsonl::{FieldPaths, JsonLinesParser};
        let parser = JsonLinesParser::new(&FieldPaths::default(), exposure::time::EpochUnit::Auto)
            .unwrap();
        prop_assert_eq!(parser.parse(&line), parser.parse_with_serde(&line), "{}", String::from_utf8_lossy(&line));
    }
}

/// A member no format reads, with a value of every kind the fast paths skip unread — among
/// them numbers serde_json refuses (`1e400`, a 400-digit integer: beyond `f64`), exponents,
/// escapes, and nesting past serde_json's limit of 128.
fn unread_member() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("1e400".to_string()),
        Just("-1E-400".to_string()),
        Just("2.5e3".to_string()),
        Just("0.0".to_string()),
        Just("-0".to_string()),
        Just("13.25".to_string()),
        Just("012".to_string()),
        Just("1.".to_string()),
        Just(format!("1{}", "0".repeat(400))),
        Just(format!("0.{}", "1".repeat(400))),
        Just("18446744073709551616".to_string()),
        Just("\"a\\\"b\"".to_string()),
        Just("\"\\u00e9\"".to_string()),
        Just("{\"a\":[true,false,null,{}],\"b\":\"x\"}".to_string()),
        Just(format!("{}{}", "[".repeat(70), "]".repeat(70))),
        Just(format!("{}{}", "[".repeat(130), "]".repeat(130))),
        Just("tru".to_string()),
    ]
    .prop_map(|v| format!("\"unread\":{v}"))
}

// Databricks' typed fast path against the parse through `serde_json::Value`: the same items or
// the same error for delivered records of every usual and unusual shape.

fn databricks_record() -> impl Strategy<Value = String> {
    let text = || {
        prop_oneof![
            4 => "[a-z.@_]{0,10}".prop_map(|s| format!("\"{s}\"")),
            1 => Just("\"\"".to_string()),
            1 => Just("null".to_string()),
            1 => Just("7".to_string()),
            1 => Just("\"a\\u0062\"".to_string()),
        ]
    };
    let field = prop_oneof![
        3 => prop_oneof![Just("1773828000123"), Just("-5"), Just("1.5"), Just("\"2026-03-18T10:00:00Z\""), Just("null"), Just("99999999999999999999")]
            .prop_map(|v| format!("\"timestamp\":{v}")),
        3 => prop_oneof![Just("\"unityCatalog\""), Just("\"clusters\""), Just("\"\""), Just("3")]
            .prop_map(|v| format!("\"serviceName\":{v}")),
        3 => prop_oneof![
            Just("\"getTable\""), Just("\"generateTemporaryTableCredential\""), Just("\"listTables\""),
            Just("\"updatePermissions\""), Just("null"),
        ]
        .prop_map(|v| format!("\"actionName\":{v}")),
        3 => text().prop_map(|v| format!("\"userIdentity\":{{\"email\":{v}}}")),
        3 => (text(), text(), text(), prop_oneof![Just("\"READ\""), Just("\"WRITE\""), Just("\"read\"")])
            .prop_map(|(a, b, c, op)| format!(
                "\"requestParams\":{{\"full_name_arg\":{a},\"table_full_name\":{b},\"full_name\":{c},\"operation\":{op}}}"
            )),
        1 => Just("\"requestParams\":\"{\\\"full_name_arg\\\":\\\"main.hr.t\\\"}\"".to_string()),
        1 => Just("\"requestParams\":[[\"full_name_arg\",\"main.hr.t\"]]".to_string()),
        // Fields in order, as serde's derived structs would take an array: never read so.
        1 => Just("\"requestParams\":[\"main.hr.t\",null,null,\"READ\"]".to_string()),
        1 => Just("\"userIdentity\":[\"ann@acme.example\"]".to_string()),
        2 => prop_oneof![Just("200"), Just("403"), Just("null"), Just("\"200\"")]
            .prop_map(|v| format!("\"response\":{{\"statusCode\":{v}}}")),
        1 => Just("\"response\":{\"status_code\":500}".to_string()),
        1 => Just("\"event_time\":\"2026-03-18T10:00:00Z\"".to_string()),
        1 => Just("\"service_name\":\"unityCatalog\"".to_string()),
        1 => Just("\"other\":{\"x\":[1,2]}".to_string()),
        1 => unread_member(),
        1 => unread_member().prop_map(|m| format!("\"requestParams\":{{{m},\"full_name\":\"main.hr.t\"}}")),
    ];
    (
        prop::collection::vec(field, 0..9),
        prop_oneof![8 => Just(""), 1 => Just(" x")],
    )
        .prop_map(|(fields, tail)| format!("{{{}}}{tail}", fields.join(",")))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]
    #[test]
    fn the_databricks_fast_path_agrees_with_the_value_path(record in databricks_record()) {
        use exposure::format::Format;
        use exposure::format::vendor::{VendorOptions, parse_json_record_as_value, parse_record_line};
        let options = VendorOptions::default();
        let mut out = Vec::new();
        parse_record_line(Format::Databricks, &options, 1, record.as_bytes(), &mut out);
        let (_, fast) = out.pop().unwrap();
        let value = parse_json_record_as_value(Format::Databricks, &options, record.as_bytes());
        prop_assert_eq!(fast, value, "{}", record);
    }
}

// GCP's typed fast path: whenever it takes an entry, the parse through `serde_json::Value` gives
// the same items.

fn gcp_entry() -> impl Strategy<Value = String> {
    let metadata_key = prop_oneof![
        4 => Just("tableDataRead"), 1 => Just("tableDataChange"), 1 => Just("jobChange"),
        1 => Just("datasetChange"), 1 => Just("other"),
    ];
    let metadata = prop::collection::vec(
        (
            metadata_key,
            prop_oneof![
                Just("{}"),
                Just("null"),
                Just("{\"reason\":\"JOB\"}"),
                Just("{\"fields\":[\"name\",\"salary\"],\"reason\":\"JOB\"}"),
                Just("{\"fields\":[]}"),
                Just("{\"fields\":null}"),
                Just("{\"fields\":[null,\"a\"]}"),
                Just("{\"fields\":[1]}"),
                Just("{\"fields\":\"a\"}"),
                Just("{\"fields\":[\"a\"],\"fields\":[\"b\"]}"),
            ],
        ),
        0..3,
    )
    .prop_map(|kv| {
        let fields: Vec<String> = kv.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        format!("{{{}}}", fields.join(","))
    });
    let payload_field = prop_oneof![
        3 => metadata.prop_map(|m| format!("\"metadata\":{m}")),
        3 => prop_oneof![
            Just("\"projects/acme/datasets/hr/tables/t1\""), Just("\"projects/acme/datasets/hr\""),
            Just("\"\""), Just("null"), Just("\"projects/a/datasets/d/tables/t/x\""),
        ]
        .prop_map(|v| format!("\"resourceName\":{v}")),
        3 => prop_oneof![Just("\"ann@acme.example\""), Just("\"\""), Just("null"), Just("5")]
            .prop_map(|v| format!("\"authenticationInfo\":{{\"principalEmail\":{v}}}")),
        1 => Just("\"serviceData\":{}".to_string()),
        1 => Just("\"serviceData\":null".to_string()),
        1 => unread_member(),
    ];
    let payload =
        prop::collection::vec(payload_field, 0..6).prop_map(|f| format!("{{{}}}", f.join(",")));
    let field = prop_oneof![
        4 => payload.prop_map(|p| format!("\"protoPayload\":{p}")),
        3 => prop_oneof![
            Just("\"2026-03-18T10:00:00.123456Z\""), Just("\"2026-03-18 10:00:00 UTC\""),
            Just("\"yesterday\""), Just("1773828000"), Just("null"),
        ]
        .prop_map(|v| format!("\"timestamp\":{v}")),
        1 => Just("\"receiveTimestamp\":\"2026-03-18T10:00:01Z\"".to_string()),
        1 => Just("\"logName\":\"projects/acme/logs/x\"".to_string()),
        1 => unread_member(),
    ];
    prop::collection::vec(field, 0..5).prop_map(|f| format!("{{{}}}", f.join(",")))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]
    #[test]
    fn the_gcp_fast_path_agrees_with_the_value_path(entry in gcp_entry()) {
        use exposure::format::gcp;
        if let Some(fast) = gcp::parse_fast(entry.as_bytes()) {
            let value: serde_json::Value = serde_json::from_str(&entry).unwrap();
            prop_assert_eq!(Ok(fast), gcp::parse(&value, Default::default()), "{}", entry);
        }
    }
}

// CloudTrail's typed fast path against the parse through `serde_json::Value`: the same items or
// the same error for records and files of every usual and unusual shape, under every option.

fn cloudtrail_record() -> impl Strategy<Value = String> {
    let text = || {
        prop_oneof![
            4 => "[a-z0-9:/=._-]{0,14}".prop_map(|s| format!("\"{s}\"")),
            1 => Just("\"\"".to_string()),
            1 => Just("null".to_string()),
            1 => Just("7".to_string()),
            1 => Just("\"a\\u002fb\"".to_string()),
        ]
    };
    let field = prop_oneof![
        3 => prop_oneof![
            Just("\"2026-03-18T10:00:00Z\""), Just("\"2026-03-18 10:00:00 UTC\""), Just("\"soon\""),
            Just("1773828000"), Just("null"), Just("\"\""),
        ]
        .prop_map(|v| format!("\"eventTime\":{v}")),
        1 => prop_oneof![Just("\"AccessDenied\""), Just("null"), Just("{}")]
            .prop_map(|v| format!("\"errorCode\":{v}")),
        2 => prop_oneof![
            Just("\"s3.amazonaws.com\""), Just("\"dynamodb.amazonaws.com\""), Just("\"kms.amazonaws.com\""),
            Just("\"\""), Just("5"),
        ]
        .prop_map(|v| format!("\"eventSource\":{v}")),
        3 => prop_oneof![
            Just("\"GetObject\""), Just("\"PutObject\""), Just("\"ListObjectsV2\""), Just("\"CopyObject\""),
            Just("\"PutBucketPolicy\""), Just("\"GetItem\""), Just("\"Decrypt\""), Just("\"\""), Just("null"),
        ]
        .prop_map(|v| format!("\"eventName\":{v}")),
        2 => prop_oneof![Just("\"Data\""), Just("\"Management\""), Just("\"\""), Just("null")]
            .prop_map(|v| format!("\"eventCategory\":{v}")),
        1 => prop_oneof![Just("true"), Just("false"), Just("null"), Just("\"false\"")]
            .prop_map(|v| format!("\"managementEvent\":{v}")),
        2 => prop_oneof![Just("true"), Just("false"), Just("null"), Just("\"true\"")]
            .prop_map(|v| format!("\"readOnly\":{v}")),
        3 => (text(), text(), text()).prop_map(|(b, k, kk)| format!(
            "\"requestParameters\":{{\"bucketName\":{b},\"key\":{k},\"Key\":{kk},\"x-amz-copy-source\":\"src/a/b.csv\"}}"
        )),
        1 => prop_oneof![Just("null"), Just("[\"lake\",\"k\"]"), Just("\"lake\"")]
            .prop_map(|v| format!("\"requestParameters\":{v}")),
        3 => (
            prop_oneof![Just("\"AssumedRole\""), Just("\"IAMUser\""), Just("\"AWSService\""), Just("null")],
            text(),
            prop_oneof![
                3 => text().prop_map(|a| format!("{{\"sessionIssuer\":{{\"type\":\"Role\",\"arn\":{a}}}}}")),
                1 => Just("null".to_string()),
                1 => Just("[{\"arn\":\"x\"}]".to_string()),
                1 => Just("{\"sessionIssuer\":[\"x\"]}".to_string()),
            ],
            text(),
            text(),
        )
            .prop_map(|(kind, arn, session, invoked, user)| format!(
                "\"userIdentity\":{{\"type\":{kind},\"arn\":{arn},\"sessionContext\":{session},\"invokedBy\":{invoked},\"userName\":{user}}}"
            )),
        1 => prop_oneof![Just("null"), Just("[\"AssumedRole\"]")]
            .prop_map(|v| format!("\"userIdentity\":{v}")),
        1 => prop_oneof![
            Just("[{\"type\":\"AWS::S3::Object\",\"ARN\":\"arn:aws:s3:::lake/a/b.csv\"}]"),
            Just("[{\"type\":\"AWS::DynamoDB::Table\",\"ARN\":\"arn:aws:dynamodb:us-east-1:1:table/t\"}]"),
            Just("null"),
        ]
        .prop_map(|v| format!("\"resources\":{v}")),
        1 => Just("\"Records\":null".to_string()),
        1 => unread_member(),
        1 => unread_member().prop_map(|m| format!("\"requestParameters\":{{{m},\"bucketName\":\"lake\"}}")),
    ];
    let record = prop::collection::vec(field, 0..12).prop_map(|f| format!("{{{}}}", f.join(",")));
    prop_oneof![
        3 => record.clone(),
        2 => prop::collection::vec(record.clone(), 0..4)
            .prop_map(|r| format!("{{\"Records\":[{}]}}", r.join(","))),
        1 => prop::collection::vec(record, 0..3).prop_map(|r| format!("[{}]", r.join(","))),
        1 => Just("{\"Records\":[1]}".to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]
    #[test]
    fn the_cloudtrail_fast_path_agrees_with_the_value_path(
        line in cloudtrail_record(),
        principal in 0usize..3,
        resource in 0usize..4,
    ) {
        use exposure::format::Format;
        use exposure::format::cloudtrail::{PrincipalChoice, ResourceChoice};
        use exposure::format::vendor::{VendorOptions, parse_json_record_as_value, parse_record_line};
        let mut options = VendorOptions::default();
        options.cloudtrail.principal =
            [PrincipalChoice::Session, PrincipalChoice::Role, PrincipalChoice::Arn][principal];
        options.cloudtrail.resource = [
            ResourceChoice::Dataset, ResourceChoice::Object, ResourceChoice::Bucket, ResourceChoice::Arn,
        ][resource];
        let mut out = Vec::new();
        parse_record_line(Format::Cloudtrail, &options, 1, line.as_bytes(), &mut out);
        let (_, fast) = out.pop().unwrap();
        let value = parse_json_record_as_value(Format::Cloudtrail, &options, line.as_bytes());
        prop_assert_eq!(fast, value, "{}", line);
    }
}

// Snowflake's typed fast path against the parse through `serde_json::Value`.

fn snowflake_row() -> impl Strategy<Value = String> {
    let objects = prop_oneof![
        4 => prop::collection::vec(
            (
                prop_oneof![
                    Just("\"Table\""), Just("\"VIEW\""), Just("\"Stage\""), Just("\"Materialized view\""),
                    Just("\"\""), Just("null"), Just("3"),
                ],
                prop_oneof![Just("\"HR.PUBLIC.T1\""), Just("\"\""), Just("null"), Just("\"DB.S.\\\"Q\\\"\"")],
                // The columns read: names, `null`s, odd shapes (the `Value` path's).
                prop_oneof![
                    4 => Just("[{\"columnId\":1,\"columnName\":\"A\"},{\"columnName\":\"SSN\"}]"),
                    1 => Just("[]"), 1 => Just("null"), 1 => Just("[null]"),
                    1 => Just("[{\"columnName\":null}]"), 1 => Just("[{\"columnName\":7}]"),
                    1 => Just("[\"A\"]"), 1 => Just("\"A\""),
                    1 => Just("[{\"columnName\":\"A\",\"columnName\":\"B\"}]"),
                ],
            ),
            0..4,
        )
        .prop_map(|objects| {
            let objects: Vec<String> = objects
                .iter()
                .map(|(d, n, c)| format!("{{\"objectDomain\":{d},\"objectName\":{n},\"columns\":{c}}}"))
                .collect();
            format!("[{}]", objects.join(","))
        }),
        1 => Just("null".to_string()),
        1 => Just("\"[{\\\"objectDomain\\\":\\\"Table\\\",\\\"objectName\\\":\\\"A.B.C\\\"}]\"".to_string()),
        1 => Just("[1]".to_string()),
        1 => Just("{}".to_string()),
    ];
    let column = prop_oneof![
        Just("base_objects_accessed"),
        Just("BASE_OBJECTS_ACCESSED"),
        Just("direct_objects_accessed"),
        Just("DIRECT_OBJECTS_ACCESSED"),
    ];
    let field = prop_oneof![
        4 => (column, objects).prop_map(|(c, o)| format!("\"{c}\":{o}")),
        3 => (
            prop_oneof![Just("query_start_time"), Just("QUERY_START_TIME")],
            prop_oneof![
                Just("\"2026-03-18 10:00:00.000 +0000\""), Just("\"2026-03-18T10:00:00Z\""), Just("\"later\""),
                Just("1773828000"), Just("null"), Just("\"\""),
            ],
        )
            .prop_map(|(k, v)| format!("\"{k}\":{v}")),
        3 => (
            prop_oneof![Just("user_name"), Just("USER_NAME")],
            prop_oneof![Just("\"ANN\""), Just("\"\""), Just("null"), Just("4"), Just("\"B\\u00d6B\"")],
        )
            .prop_map(|(k, v)| format!("\"{k}\":{v}")),
        1 => prop_oneof![Just("\"GRANT\""), Just("\"SELECT\""), Just("null")]
            .prop_map(|v| format!("\"QUERY_TYPE\":{v}")),
        1 => Just("\"QUERY_ID\":\"q1\"".to_string()),
        1 => unread_member(),
    ];
    prop::collection::vec(field, 0..8).prop_map(|f| format!("{{{}}}", f.join(",")))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]
    #[test]
    fn the_snowflake_fast_path_agrees_with_the_value_path(row in snowflake_row(), direct: bool) {
        use exposure::format::Format;
        use exposure::format::snowflake::Objects;
        use exposure::format::vendor::{VendorOptions, parse_json_record_as_value, parse_record_line};
        let mut options = VendorOptions::default();
        if direct {
            options.snowflake.objects = Objects::Direct;
        }
        let mut out = Vec::new();
        parse_record_line(Format::Snowflake, &options, 1, row.as_bytes(), &mut out);
        let (_, fast) = out.pop().unwrap();
        let value = parse_json_record_as_value(Format::Snowflake, &options, row.as_bytes());
        prop_assert_eq!(fast, value, "{}", row);
    }
}
