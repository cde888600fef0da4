//! Watch's time rules, on a stopped clock: the engine is turned one step at a time
//! ([`Engine::step`]) on a [`ManualClock`], with stdin's lines handed in as the helper thread
//! would, and its alerts read back from the journal as a sink would.

use super::engine::{Engine, EngineOptions, Inputs, StdinBatch};
use super::journal::AlertJournal;
use super::metrics::Metrics;
use super::outbox::{Outbox, SinkCursor};
use crate::config::{Config, ConfigFile, DetectOverrides};
use crate::detect::AlertStatus;
use crate::intake::{ManualClock, SETTLE};
use crate::state::StateDir;
use crate::time::{MICROS_PER_SEC, Ts, format_ts};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, mpsc};
use std::time::Duration;

/// 2026-03-18T00:00:00Z.
const T0: Ts = 1_773_792_000 * MICROS_PER_SEC;
const MINUTE: Ts = 60 * MICROS_PER_SEC;

/// An engine reading stdin, its clock, its journal as a sink reads it, and its counters.
struct Rig {
    engine: Engine,
    inputs: Inputs,
    stdin: mpsc::Sender<StdinBatch>,
    lines: u64,
    clock: Arc<ManualClock>,
    metrics: Arc<Metrics>,
    sink: SinkCursor,
    _dir: tempfile::TempDir,
}

impl Rig {
    /// Learns for 10 minutes; three novel principals within 10 minutes open a window, closed
    /// after 5 minutes without one; 1 minute of lateness; events at most 5 minutes ahead of
    /// the wall clock, which starts at `wall`.
    fn new(wall: Ts, per_source_order: bool) -> Rig {
        Rig::with_config(
            "[detect]\nlearn = \"10m\"\nspan = \"10m\"\nclose_after = \"5m\"\n\
             min_principals = 3\nlateness = \"1m\"\nmax_ahead = \"5m\"\n",
            wall,
            per_source_order,
        )
    }

    fn with_config(config: &str, wall: Ts, per_source_order: bool) -> Rig {
        let file: ConfigFile = toml::from_str(config).unwrap();
        let config = Config::build(file, &DetectOverrides::default(), None).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let state_dir = StateDir::new(dir.path().join("state"));
        crate::state::create_private_dir(state_dir.root()).unwrap();
        let outbox = Outbox::open(&state_dir).unwrap();
        let sink = SinkCursor::open(&state_dir, "test", None).unwrap();
        let metrics = Arc::new(Metrics::default());
        let (appended, _) = tokio::sync::watch::channel(0);
        let journal = AlertJournal::new(
            outbox,
            Arc::clone(&metrics),
            appended,
            Vec::new(),
            Default::default(),
            u64::MAX,
        );
        let clock = ManualClock::new(wall);
        let options = EngineOptions {
            state_dir,
            checkpoint_every: Duration::from_secs(3600),
            compact: Default::default(),
            poll_every: Duration::ZERO,
            per_source_order,
            clock: clock.clone(),
        };
        let engine = Engine::new(config, None, journal, Arc::clone(&metrics), options);
        let (stdin, receiver) = mpsc::channel();
        let mut rig = Rig {
            engine,
            inputs: Inputs::new(None, Some(receiver), || {}),
            stdin,
            lines: 0,
            clock,
            metrics,
            sink,
            _dir: dir,
        };
        rig.step();
        rig
    }

    /// Hands in reads of `table` by `who` at `ts`, as lines of stdin, and turns the loop.
    fn read(&mut self, ts: Ts, who: &[&str]) {
        let batch = who
            .iter()
            .map(|w| {
                self.lines += 1;
                let line = format!(
                    r#"{{"ts":"{}","principal":"{w}","table":"pay","action":"SELECT"}}"#,
                    format_ts(ts)
                );
                (self.lines, Some(line.into_bytes()))
            })
            .collect();
        self.stdin.send(batch).unwrap();
        self.step();
    }

    /// Hands in `lines` as the stdin helper thread would, and turns the loop.
    fn lines(&mut self, lines: &[&str]) {
        let batch = lines
            .iter()
            .map(|l| {
                self.lines += 1;
                (self.lines, Some(l.as_bytes().to_vec()))
            })
            .collect();
        self.stdin.send(batch).unwrap();
        self.step();
    }

    /// Every alert journaled so far, as written.
    fn alert_lines(&mut self) -> Vec<String> {
        let records = self.sink.next_records(usize::MAX).unwrap();
        records
            .iter()
            .map(|r| serde_json::to_string(&r.alert).unwrap())
            .collect()
    }

    fn step(&mut self) {
        self.engine.step(&mut self.inputs).unwrap();
    }

    /// Lets `by` pass on the clock with nothing read, then turns the loop.
    fn wait(&mut self, by: Duration) {
        self.clock.advance(by);
        self.step();
    }

    /// The alerts journaled since last asked, as `(status, window end)`.
    fn alerts(&mut self) -> Vec<(AlertStatus, Ts)> {
        let records = self.sink.next_records(usize::MAX).unwrap();
        if let Some(last) = records.last() {
            self.sink.ack(last.seq).unwrap();
        }
        records
            .into_iter()
            .map(|r| (r.alert.status, r.alert.window_end))
            .collect()
    }

    fn watermark(&self) -> Ts {
        self.metrics.watermark_us.load(Relaxed)
    }

    /// A learned baseline (a and b, in the first minutes), then three newcomers at 20–22
    /// minutes: one window, opened.
    fn open_a_window(&mut self) {
        self.read(T0, &["a"]);
        self.read(T0 + MINUTE, &["b"]);
        for (i, who) in ["n1", "n2", "n3"].iter().enumerate() {
            self.read(T0 + (20 + i as Ts) * MINUTE, &[who]);
        }
        // The watermark waits for lateness (or, per source, for the input to settle).
        self.wait(Duration::from_secs(61));
        assert_eq!(self.alerts(), [(AlertStatus::Open, T0 + 22 * MINUTE)]);
    }
}

#[test]
fn a_quiet_window_closes_by_the_wall_clock_and_not_before() {
    // The reads arrive as they happen: the wall clock is at the newest event.
    let mut rig = Rig::new(T0 + 22 * MINUTE, false);
    rig.open_a_window();
    // Nothing more is read. Close after 5 minutes without a novel read, plus lateness: the
    // window closes 6 minutes after its last read, by the wall clock alone.
    rig.wait(Duration::from_secs(4 * 60 + 58));
    assert_eq!(rig.alerts(), [], "5 min 59 s after the last read");
    assert!(rig.watermark() < T0 + 27 * MINUTE);
    rig.wait(Duration::from_secs(2));
    assert_eq!(rig.alerts(), [(AlertStatus::Closed, T0 + 22 * MINUTE)]);
}

#[test]
fn an_event_dated_ahead_of_the_wall_clock_is_quarantined_until_the_clock_catches_up() {
    let mut rig = Rig::new(T0 + 22 * MINUTE, false);
    rig.open_a_window();
    let before = rig.watermark();
    // A host whose clock is an hour fast: not used, and time does not jump for everyone.
    rig.read(T0 + 83 * MINUTE, &["n4"]);
    assert_eq!(rig.metrics.intake.quarantined.load(Relaxed), 1);
    assert_eq!(rig.metrics.intake.reads.load(Relaxed), 5);
    assert_eq!(
        rig.alerts(),
        [],
        "the window is neither extended nor closed"
    );
    assert!(rig.watermark() - before < MINUTE);
    // Within `max_ahead` of the wall clock, the same time is used.
    rig.clock.advance(Duration::from_secs(57 * 60));
    rig.read(T0 + 83 * MINUTE, &["n5"]);
    assert_eq!(rig.metrics.intake.quarantined.load(Relaxed), 1);
    assert_eq!(rig.metrics.intake.reads.load(Relaxed), 6);
}

#[test]
fn per_source_an_input_in_order_settles_its_newest_instant_once_quiet() {
    let mut rig = Rig::new(T0 + 22 * MINUTE, true);
    rig.read(T0, &["a"]);
    rig.read(T0 + MINUTE, &["b"]);
    // In order so far: the watermark is the newest event, and one instant on once the input
    // has been quiet for SETTLE.
    assert_eq!(rig.watermark(), T0 + MINUTE);
    rig.wait(SETTLE);
    assert_eq!(rig.watermark(), T0 + MINUTE + 1);
    // Three newcomers: the window opens as soon as the third is read and settled, without
    // waiting for lateness.
    for (i, who) in ["n1", "n2", "n3"].iter().enumerate() {
        rig.read(T0 + (20 + i as Ts) * MINUTE, &[who]);
    }
    rig.wait(SETTLE);
    assert_eq!(rig.alerts(), [(AlertStatus::Open, T0 + 22 * MINUTE)]);
    // An event 30 s older than the newest, after that instant was settled: late (not used),
    // and the input is given that much room from then on.
    rig.read(T0 + 22 * MINUTE - 30 * MICROS_PER_SEC, &["a"]);
    assert_eq!(rig.metrics.intake.late.load(Relaxed), 1);
    rig.read(T0 + 23 * MINUTE, &["b"]);
    rig.wait(SETTLE);
    assert_eq!(rig.watermark(), T0 + 23 * MINUTE - 30 * MICROS_PER_SEC);
    // Quiet for lateness, the input no longer holds time back: the wall clock moves it.
    rig.wait(Duration::from_secs(60));
    assert!(rig.watermark() > T0 + 23 * MINUTE, "{}", rig.watermark());
}

#[test]
fn a_writer_pausing_within_lateness_changes_no_alert() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/sample-logs/incident.jsonl");
    let sample = std::fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = sample.lines().collect();
    // The sample as it is written: 50 lines at a time, with no pause, and with pauses (the
    // writer stops mid-incident, for less than lateness, then goes on) at a few places.
    let watched = |pauses: &[(usize, Duration)]| {
        let mut rig = Rig::with_config("[detect]\n", T0 + 365 * 24 * 60 * MINUTE, true);
        for (n, chunk) in lines.chunks(50).enumerate() {
            rig.lines(chunk);
            for &(at, pause) in pauses {
                if at == (n + 1) * 50 {
                    rig.wait(pause);
                }
            }
        }
        rig.alert_lines()
    };
    let steady = watched(&[]);
    assert!(steady.len() >= 2, "{steady:#?}");
    let paused = watched(&[
        (1000, Duration::from_millis(300)),
        (3150, Duration::from_millis(300)),
        (3200, SETTLE),
        (3500, Duration::from_secs(20)),
    ]);
    assert_eq!(paused, steady);
}
