//! Event time over many input streams — files of several regions or hosts, exports cut into
//! parts, later Kafka partitions. Each stream is in time order up to `lateness`; streams overlap
//! freely. As in Flink, the watermark (no event still to come is older) is the minimum, over the
//! streams that still have data, of their newest event time minus `lateness`: streams that
//! overlap in time are merged by event time instead of one being taken as late, and only an
//! event more than `lateness` behind its **own** stream is late.
//!
//! A stream can announce where it starts (the first event a look-ahead found) before any of it
//! is read: time then moves past it without waiting for it to be opened, and it holds time back
//! only from its start on. A stream with no known start holds time where it is until its first
//! event.
//!
//! A wrong clock must not blind the detector: one event dated next year would move its
//! stream's time a year on and make every later event late. So an event more than `max_ahead`
//! past its stream's newest is **held** and does not move time: if the stream's next event is
//! consistent with it (not late after it), time really jumped (a quiet night, a gap in the
//! export) and the held event is released; if not, it is **quarantined** — reported, never
//! used. A held event that is the last of its stream is released.
//!
//! Whether an event is late, held or quarantined depends only on its own stream, never on how
//! the streams' reading interleaved: the same events give the same verdicts however they were
//! split and read.

use crate::time::{Micros, Ts};
use std::collections::BTreeSet;

/// A stream's index, in the order of [`Watermarks::add`].
pub type StreamId = usize;

#[derive(Debug, Clone, Copy)]
struct Stream {
    /// The newest event time read, or the announced start before the first event.
    newest: Option<Ts>,
    /// Whether an event has been read (else `newest` is the announced start, if any).
    started: bool,
    ended: bool,
    /// Events found more than `lateness` behind the stream's newest.
    late: u64,
    /// The time of an event held for being far ahead (see the module's documentation).
    held: Option<Ts>,
}

/// Per-stream event time and the watermark over all of them.
#[derive(Debug, Clone)]
pub struct Watermarks {
    lateness: Micros,
    max_ahead: Micros,
    streams: Vec<Stream>,
    /// Started streams that have not ended.
    open: Vec<StreamId>,
    /// (announced start, stream) of streams not started yet.
    waiting: BTreeSet<(Ts, StreamId)>,
    /// Streams neither started nor announced, and not ended.
    unknown: usize,
}

/// An event more than `lateness` behind its stream's newest: it must not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Late {
    /// How far behind its stream's watermark (newest event time − lateness) it is.
    pub behind: Micros,
}

/// What to do with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Use it.
    Take,
    /// More than `lateness` behind its stream: do not use it.
    Late(Late),
    /// More than `max_ahead` past its stream's newest: keep it aside; a later call says
    /// whether to use it ([`Held::Release`]) or not ([`Held::Quarantine`]).
    Hold,
}

/// What becomes of the event a stream held, decided by its next event or its end. It comes
/// before that next event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// Time did jump: use it (before the event that confirmed it).
    Release,
    /// A wrong clock: report it, never use it.
    Quarantine,
}

impl Watermarks {
    /// Streams allowed `lateness` of disorder, whose events more than `max_ahead` past their
    /// stream's newest are held until confirmed.
    pub fn new(lateness: Micros, max_ahead: Micros) -> Watermarks {
        Watermarks {
            lateness,
            max_ahead,
            streams: Vec::new(),
            open: Vec::new(),
            waiting: BTreeSet::new(),
            unknown: 0,
        }
    }

    /// Adds a stream; `starts_at` is the time of its first event if known.
    pub fn add(&mut self, starts_at: Option<Ts>) -> StreamId {
        let id = self.streams.len();
        self.streams.push(Stream {
            newest: starts_at,
            started: false,
            ended: false,
            late: 0,
            held: None,
        });
        match starts_at {
            Some(start) => {
                self.waiting.insert((start, id));
            }
            None => self.unknown += 1,
        }
        id
    }

    /// Takes an event at `ts` of `stream`: what became of the event the stream held, if any
    /// (handle it first), and what to do with this one.
    #[inline]
    pub fn observe(&mut self, stream: StreamId, ts: Ts) -> (Option<Held>, Verdict) {
        if !self.streams[stream].started {
            self.start(stream);
        }
        let lateness = self.lateness;
        let max_ahead = self.max_ahead;
        let state = &mut self.streams[stream];
        let held = state.held.take().map(|held| {
            if ts >= held.saturating_sub(lateness) {
                state.newest = Some(state.newest.map_or(held, |n| n.max(held)));
                Held::Release
            } else {
                Held::Quarantine
            }
        });
        let verdict = match state.newest {
            Some(newest) if ts < newest.saturating_sub(lateness) => {
                state.late += 1;
                Verdict::Late(Late {
                    behind: newest.saturating_sub(lateness) - ts,
                })
            }
            Some(newest) if ts > newest.saturating_add(max_ahead) => {
                state.held = Some(ts);
                Verdict::Hold
            }
            Some(newest) if newest >= ts => Verdict::Take,
            _ => {
                state.newest = Some(ts);
                Verdict::Take
            }
        };
        (held, verdict)
    }

    #[cold]
    fn start(&mut self, stream: StreamId) {
        let state = &mut self.streams[stream];
        debug_assert!(!state.ended, "an ended stream has no more events");
        state.started = true;
        match state.newest {
            Some(start) => {
                self.waiting.remove(&(start, stream));
            }
            None => self.unknown -= 1,
        }
        self.open.push(stream);
    }

    /// `stream` has no more events. An event it held is released (nothing contradicts it).
    pub fn end(&mut self, stream: StreamId) -> Option<Held> {
        let state = &mut self.streams[stream];
        if state.ended {
            return None;
        }
        state.ended = true;
        let held = state.held.take().map(|_| Held::Release);
        if state.started {
            self.open.retain(|&s| s != stream);
        } else {
            match state.newest {
                Some(start) => {
                    self.waiting.remove(&(start, stream));
                }
                None => self.unknown -= 1,
            }
        }
        held
    }

    /// No event still to come is older than this. `None` while a stream that has not ended has
    /// no known time (nothing is known yet), and once every stream has ended (use the end of
    /// input instead).
    pub fn watermark(&self) -> Option<Ts> {
        if self.unknown > 0 {
            return None;
        }
        let open = self
            .open
            .iter()
            .filter_map(|&s| self.streams[s].newest)
            .min();
        let waiting = self.waiting.first().map(|&(start, _)| start);
        let oldest = match (open, waiting) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        Some(oldest.saturating_sub(self.lateness))
    }

    /// The newest event time of `stream` (its announced start before its first event).
    pub fn newest(&self, stream: StreamId) -> Option<Ts> {
        self.streams[stream].newest
    }

    /// Events of `stream` found late.
    pub fn late(&self, stream: StreamId) -> u64 {
        self.streams[stream].late
    }

    /// Whether every stream has ended.
    pub fn all_ended(&self) -> bool {
        self.open.is_empty() && self.waiting.is_empty() && self.unknown == 0
    }
}

/// One live input's event time (a followed file, a Kafka partition): the newest event read
/// and the most an event has been behind it so far. Live inputs are written in time order up to
/// that disorder, so no event still to come from the input is older than
/// [`watermark`](Self::watermark): the watermark moves there at once instead of waiting for
/// `lateness`, and an event behind it gives the input that much room from then on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InputTime {
    pub newest: Option<Ts>,
    /// At most `lateness`.
    pub disorder: Micros,
}

impl InputTime {
    /// Notes an event at `ts`; returns the input's new disorder when the event showed more
    /// than it had so far (worth a log line).
    pub fn note(&mut self, ts: Ts, lateness: Micros) -> Option<Micros> {
        match self.newest {
            Some(newest) if ts < newest => {
                let behind = (newest - ts).min(lateness);
                (behind > self.disorder).then(|| {
                    self.disorder = behind;
                    behind
                })
            }
            _ => {
                self.newest = Some(ts);
                None
            }
        }
    }

    /// No event still to come is older: the newest time minus the disorder shown, one
    /// instant on once the input is `settled` (in order, at its end and quiet for a moment:
    /// it has written its newest instant whole).
    pub fn watermark(&self, settled: bool) -> Option<Ts> {
        let settled = settled && self.disorder == 0;
        self.newest.map(|n| n - self.disorder + Ts::from(settled))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_stream_is_newest_minus_lateness() {
        let mut w = Watermarks::new(10, 1_000);
        let s = w.add(None);
        assert_eq!(w.watermark(), None, "nothing known yet");
        assert_eq!(w.observe(s, 100), (None, Verdict::Take));
        assert_eq!(w.watermark(), Some(90));
        assert_eq!(w.observe(s, 95), (None, Verdict::Take), "within lateness");
        assert_eq!(w.observe(s, 89), (None, Verdict::Late(Late { behind: 1 })));
        assert_eq!(w.late(s), 1);
        assert_eq!(w.newest(s), Some(100));
        assert_eq!(w.end(s), None);
        assert_eq!(w.watermark(), None);
        assert!(w.all_ended());
    }

    #[test]
    fn overlapping_streams_hold_time_at_the_slowest() {
        let mut w = Watermarks::new(0, 1_000_000);
        let (a, b) = (w.add(None), w.add(None));
        assert_eq!(w.observe(a, 1_000), (None, Verdict::Take));
        assert_eq!(w.watermark(), None, "b says nothing yet");
        assert_eq!(w.observe(b, 10), (None, Verdict::Take));
        assert_eq!(w.watermark(), Some(10));
        // b far behind a is not late: only its own order counts.
        assert_eq!(w.observe(b, 20), (None, Verdict::Take));
        assert_eq!(w.watermark(), Some(20));
        assert_eq!(w.end(b), None);
        assert_eq!(w.watermark(), Some(1_000));
    }

    #[test]
    fn an_announced_start_lets_time_pass_until_it() {
        let mut w = Watermarks::new(5, 1_000);
        let (a, later) = (w.add(Some(100)), w.add(Some(500)));
        assert_eq!(w.watermark(), Some(95));
        assert_eq!(w.observe(a, 100), (None, Verdict::Take));
        assert_eq!(w.observe(a, 700), (None, Verdict::Take));
        assert_eq!(
            w.watermark(),
            Some(495),
            "the later stream holds time at its start"
        );
        assert_eq!(w.observe(later, 600), (None, Verdict::Take));
        assert_eq!(w.watermark(), Some(595));
        assert_eq!(
            w.observe(later, 594),
            (None, Verdict::Late(Late { behind: 1 }))
        );
        assert_eq!(w.end(later), None);
        assert_eq!(w.end(a), None);
        assert!(w.all_ended());
    }

    #[test]
    fn a_stream_that_ends_unread_stops_holding_time() {
        let mut w = Watermarks::new(0, 1_000_000);
        let (a, empty, unknown) = (w.add(Some(10)), w.add(Some(0)), w.add(None));
        assert_eq!(w.observe(a, 10), (None, Verdict::Take));
        assert_eq!(w.watermark(), None);
        assert_eq!(w.end(unknown), None);
        assert_eq!(w.watermark(), Some(0));
        assert_eq!(w.end(empty), None);
        assert_eq!(w.watermark(), Some(10));
    }

    #[test]
    fn a_wrong_clock_is_held_then_quarantined_and_never_moves_time() {
        let mut w = Watermarks::new(10, 100);
        let s = w.add(None);
        assert_eq!(w.observe(s, 1_000), (None, Verdict::Take));
        // Next year, by a wrong clock: held, time stays.
        assert_eq!(w.observe(s, 900_000), (None, Verdict::Hold));
        assert_eq!(w.watermark(), Some(990));
        // The stream goes on where it was: the held event was wrong.
        assert_eq!(w.observe(s, 1_001), (Some(Held::Quarantine), Verdict::Take));
        assert_eq!(w.watermark(), Some(991));
        assert_eq!(w.late(s), 0);
    }

    #[test]
    fn a_real_jump_is_released_by_the_next_event() {
        let mut w = Watermarks::new(10, 100);
        let s = w.add(None);
        assert_eq!(w.observe(s, 1_000), (None, Verdict::Take));
        assert_eq!(w.observe(s, 5_000), (None, Verdict::Hold));
        // The next event is consistent with it (within lateness): a quiet night, not a clock.
        assert_eq!(w.observe(s, 4_995), (Some(Held::Release), Verdict::Take));
        assert_eq!(w.watermark(), Some(4_990));
        // Held at the end of the stream: released.
        assert_eq!(w.observe(s, 9_000), (None, Verdict::Hold));
        assert_eq!(w.end(s), Some(Held::Release));
    }

    #[test]
    fn an_input_out_of_order_is_given_that_much_room_up_to_lateness() {
        let mut time = InputTime::default();
        assert_eq!(time.watermark(true), None);
        assert_eq!(time.note(100, 50), None);
        assert_eq!(time.watermark(false), Some(100));
        assert_eq!(
            time.watermark(true),
            Some(101),
            "settled: its newest instant is whole"
        );
        assert_eq!(time.note(90, 50), Some(10));
        assert_eq!(time.note(95, 50), None, "less behind than already shown");
        assert_eq!(
            time.watermark(true),
            Some(90),
            "out of order: never settled"
        );
        assert_eq!(time.note(120, 50), None);
        assert_eq!(time.note(0, 50), Some(50), "never more room than lateness");
        assert_eq!(time.watermark(false), Some(70));
    }
}
