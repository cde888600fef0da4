//! The intake of a live source (followed files and stdin for `watch`, topic partitions for
//! Kafka): what happens to decoded records between the decoder and the detector, and the time
//! rules of a service that runs by the wall clock. Written once here, so that `watch` and the
//! Kafka stages behave alike:
//!
//! - a [`Clock`] (wall time and monotonic time) injected, never read directly, so the rules
//!   below are tested on a [`ManualClock`];
//! - **quarantine**: an event dated more than `max_ahead` past the wall clock is not used
//!   ([`ahead_of_wall`]);
//! - **each input's time** ([`InputClock`]): its newest event and disorder, when it was last
//!   read, and the watermark it allows: an input quiet for [`SETTLE`] has written its newest
//!   instant whole, one quiet for `lateness` no longer holds time back;
//! - **the wall-clock floor** ([`WallFloor`]): when every input is quiet, event time goes on
//!   with the wall clock from the newest event, so a quiet window still closes;
//! - **bad records**: counted as malformed or unattributable ([`IntakeCounts::bad`]), and
//!   logged at most [`REPORTS_PER_MINUTE`] a minute, the rest counted ([`Reports`]).
//!
//! Replay has no wall clock: its time is the inputs' alone ([`crate::watermark`]).

use crate::format::ParseError;
use crate::time::{Micros, Ts};
use crate::watermark::InputTime;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where the intake reads the time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Monotonic time, for how long something has been quiet.
    fn now(&self) -> Instant;
    /// Wall-clock time in microseconds since the epoch, to compare event times with.
    fn wall(&self) -> Ts;
}

/// The clock a clock is shared as.
pub type SharedClock = Arc<dyn Clock>;

/// The system's clocks.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn wall(&self) -> Ts {
        chrono::Utc::now().timestamp_micros()
    }
}

/// The system clock, shared.
pub fn system_clock() -> SharedClock {
    Arc::new(SystemClock)
}

/// A clock that moves only when told to (tests of the time rules).
#[derive(Debug)]
pub struct ManualClock {
    at: Mutex<(Instant, Ts)>,
}

impl ManualClock {
    /// A clock whose wall time is `wall`.
    pub fn new(wall: Ts) -> Arc<ManualClock> {
        Arc::new(ManualClock {
            at: Mutex::new((Instant::now(), wall)),
        })
    }

    /// Moves both clocks on by `by`.
    pub fn advance(&self, by: Duration) {
        let mut at = self.at.lock().unwrap_or_else(|e| e.into_inner());
        at.0 += by;
        at.1 += by.as_micros() as Micros;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.at.lock().unwrap_or_else(|e| e.into_inner()).0
    }

    fn wall(&self) -> Ts {
        self.at.lock().unwrap_or_else(|e| e.into_inner()).1
    }
}

/// How far past the wall clock `wall` an event at `ts` is, when that is more than
/// `max_ahead`: it is quarantined (a wrong clock must not move time for everyone).
#[inline]
pub fn ahead_of_wall(ts: Ts, wall: Ts, max_ahead: Micros) -> Option<Micros> {
    let ahead = ts - wall;
    (ahead > max_ahead).then_some(ahead)
}

/// An input that has been quiet this long is taken to have written everything up to its
/// newest event time, that instant included.
pub const SETTLE: Duration = Duration::from_millis(50);

/// One input's event time, and when it was last read.
#[derive(Debug, Clone, Copy)]
pub struct InputClock {
    pub time: InputTime,
    pub read_at: Instant,
}

impl InputClock {
    /// An input read for the first time at `now`.
    pub fn new(now: Instant) -> InputClock {
        InputClock {
            time: InputTime::default(),
            read_at: now,
        }
    }

    /// An event at `ts` read at `now`. Returns the input's new disorder when the event shows
    /// the input out of order by more than it has been so far.
    pub fn note(&mut self, ts: Ts, lateness: Micros, now: Instant) -> Option<Micros> {
        self.read_at = now;
        self.time.note(ts, lateness)
    }

    /// How long the input has been quiet at `now`.
    pub fn quiet(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.read_at)
    }

    /// Whether the input still holds time back at `now`: it was read within `lateness` (and
    /// within twice [`SETTLE`], however small `lateness` is).
    pub fn holds_time(&self, now: Instant, lateness: Duration) -> bool {
        self.quiet(now) < lateness.max(SETTLE * 2)
    }

    /// The watermark the input allows at `now`. `at_end`: it has nothing more to give now
    /// (no partial line, no record still to fetch), so once quiet for [`SETTLE`] its newest
    /// instant is whole.
    pub fn watermark(&self, now: Instant, at_end: bool) -> Option<Ts> {
        let settled = at_end && self.quiet(now) >= SETTLE;
        self.time.watermark(settled)
    }
}

/// Event time by the wall clock while the inputs are quiet: the newest event time plus the
/// wall-clock time since it arrived.
#[derive(Debug, Clone, Copy, Default)]
pub struct WallFloor {
    newest_seen: Option<(Ts, Instant)>,
}

impl WallFloor {
    /// A floor starting from `newest`, seen at `now`.
    pub fn seen(newest: Option<Ts>, now: Instant) -> WallFloor {
        WallFloor {
            newest_seen: newest.map(|n| (n, now)),
        }
    }

    /// The newest event time is `newest` at `now`: kept, with its arrival, if it is newer
    /// than the newest so far.
    pub fn note(&mut self, newest: Option<Ts>, now: Instant) {
        if let Some(newest) = newest
            && self.newest_seen.is_none_or(|(ts, _)| newest > ts)
        {
            self.newest_seen = Some((newest, now));
        }
    }

    /// The watermark at `now`: event time by the wall clock, minus `lateness`.
    pub fn watermark(&self, now: Instant, lateness: Micros) -> Option<Ts> {
        let (newest, arrived) = self.newest_seen?;
        let elapsed = now.saturating_duration_since(arrived).as_micros() as Micros;
        Some(newest.saturating_add(elapsed) - lateness)
    }
}

/// What the intake counts, shown on `/metrics`.
#[derive(Debug, Default)]
pub struct IntakeCounts {
    pub events_read: AtomicU64,
    pub reads: AtomicU64,
    pub malformed: AtomicU64,
    /// Records that name no principal (or no table): they cannot be attributed.
    pub unattributable: AtomicU64,
    /// Records that are not data access (DDL, logins, errors).
    pub not_access: AtomicU64,
    /// Permission changes (grants, revokes, policy edits) read.
    pub permission_changes: AtomicU64,
    pub late: AtomicU64,
    /// Events dated too far past the wall clock, not used.
    pub quarantined: AtomicU64,
}

impl IntakeCounts {
    /// Counts a record that could not be used: malformed, or unattributable.
    pub fn bad(&self, error: &ParseError) {
        let counter = if error.kind() == crate::format::UNATTRIBUTABLE {
            &self.unattributable
        } else {
            &self.malformed
        };
        counter.fetch_add(1, Relaxed);
    }
}

/// At most this many bad records are logged one by one per minute; the rest are counted.
pub const REPORTS_PER_MINUTE: u32 = 20;

/// Logs at most [`REPORTS_PER_MINUTE`] messages a minute; counts the rest, and says how many
/// when the minute is over.
#[derive(Debug)]
pub struct Reports {
    clock: SharedClock,
    since: Instant,
    shown: u32,
    suppressed: u64,
}

impl Reports {
    pub fn new(clock: SharedClock) -> Reports {
        Reports {
            since: clock.now(),
            clock,
            shown: 0,
            suppressed: 0,
        }
    }

    /// Logs with `log`, unless this minute's share is used up. Returns whether it logged.
    pub fn report(&mut self, log: impl FnOnce()) -> bool {
        let now = self.clock.now();
        if now.duration_since(self.since) >= Duration::from_secs(60) {
            if self.suppressed > 0 {
                tracing::warn!(
                    suppressed = self.suppressed,
                    "more bad or late records were not logged one by one"
                );
            }
            self.since = now;
            self.shown = 0;
            self.suppressed = 0;
        }
        if self.shown < REPORTS_PER_MINUTE {
            self.shown += 1;
            log();
            true
        } else {
            self.suppressed += 1;
            false
        }
    }

    /// Messages not logged this minute.
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::MICROS_PER_SEC;

    const T0: Ts = 1_773_792_000 * MICROS_PER_SEC;

    #[test]
    fn an_event_is_quarantined_only_past_max_ahead_of_the_wall_clock() {
        let clock = ManualClock::new(T0);
        let max_ahead = 300 * MICROS_PER_SEC;
        assert_eq!(ahead_of_wall(T0 + max_ahead, clock.wall(), max_ahead), None);
        assert_eq!(
            ahead_of_wall(T0 + max_ahead + 1, clock.wall(), max_ahead),
            Some(max_ahead + 1)
        );
        // The wall clock catches up with it: it is used.
        clock.advance(Duration::from_secs(1));
        assert_eq!(
            ahead_of_wall(T0 + max_ahead + 1, clock.wall(), max_ahead),
            None
        );
    }

    #[test]
    fn an_input_settles_then_stops_holding_time_back() {
        let clock = ManualClock::new(T0);
        let lateness = Duration::from_secs(5);
        let mut input = InputClock::new(clock.now());
        assert_eq!(
            input.note(T0, lateness.as_micros() as Micros, clock.now()),
            None
        );
        // Just read: its newest instant may not be whole yet.
        assert_eq!(input.watermark(clock.now(), true), Some(T0));
        clock.advance(SETTLE);
        assert_eq!(input.watermark(clock.now(), true), Some(T0 + 1));
        // A partial line: the instant may go on.
        assert_eq!(input.watermark(clock.now(), false), Some(T0));
        assert!(input.holds_time(clock.now(), lateness));
        clock.advance(lateness);
        assert!(!input.holds_time(clock.now(), lateness));
    }

    #[test]
    fn quiet_inputs_let_time_go_on_by_the_wall_clock() {
        let clock = ManualClock::new(T0);
        let lateness = 5 * MICROS_PER_SEC;
        let mut floor = WallFloor::default();
        assert_eq!(floor.watermark(clock.now(), lateness), None);
        floor.note(Some(T0), clock.now());
        assert_eq!(floor.watermark(clock.now(), lateness), Some(T0 - lateness));
        clock.advance(Duration::from_secs(60));
        // The same newest event again: its arrival is not moved.
        floor.note(Some(T0), clock.now());
        assert_eq!(
            floor.watermark(clock.now(), lateness),
            Some(T0 + 55 * MICROS_PER_SEC)
        );
    }

    #[test]
    fn reports_are_limited_per_minute_and_the_rest_counted() {
        let clock = ManualClock::new(T0);
        let mut reports = Reports::new(clock.clone());
        let mut logged = 0;
        for _ in 0..30 {
            if reports.report(|| logged += 1) {
                assert!(logged <= REPORTS_PER_MINUTE);
            }
        }
        assert_eq!(logged, REPORTS_PER_MINUTE);
        assert_eq!(reports.suppressed(), 10);
        clock.advance(Duration::from_secs(60));
        assert!(reports.report(|| logged += 1));
        assert_eq!((logged, reports.suppressed()), (REPORTS_PER_MINUTE + 1, 0));
    }
}
