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
//! Whether an event is late depends only on its own stream, never on how the streams'
//! reading interleaved: the same events give the same verdicts however they were split and read.

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
}

/// Per-stream event time and the watermark over all of them.
#[derive(Debug, Clone)]
pub struct Watermarks {
    lateness: Micros,
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

impl Watermarks {
    pub fn new(lateness: Micros) -> Watermarks {
        Watermarks {
            lateness,
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
        });
        match starts_at {
            Some(start) => {
                self.waiting.insert((start, id));
            }
            None => self.unknown += 1,
        }
        id
    }

    /// Takes an event at `ts` of `stream`: `Err` if it is more than `lateness` behind the
    /// newest event of that stream (or its announced start).
    #[inline]
    pub fn observe(&mut self, stream: StreamId, ts: Ts) -> Result<(), Late> {
        let state = &mut self.streams[stream];
        if !state.started {
            self.start(stream);
        }
        let state = &mut self.streams[stream];
        match state.newest {
            Some(newest) if ts < newest.saturating_sub(self.lateness) => {
                state.late += 1;
                Err(Late {
                    behind: newest.saturating_sub(self.lateness) - ts,
                })
            }
            Some(newest) if newest >= ts => Ok(()),
            _ => {
                state.newest = Some(ts);
                Ok(())
            }
        }
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

    /// `stream` has no more events.
    pub fn end(&mut self, stream: StreamId) {
        let state = &mut self.streams[stream];
        if state.ended {
            return;
        }
        state.ended = true;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_stream_is_newest_minus_lateness() {
        let mut w = Watermarks::new(10);
        let s = w.add(None);
        assert_eq!(w.watermark(), None, "nothing known yet");
        assert_eq!(w.observe(s, 100), Ok(()));
        assert_eq!(w.watermark(), Some(90));
        assert_eq!(w.observe(s, 95), Ok(()), "within lateness");
        assert_eq!(w.observe(s, 89), Err(Late { behind: 1 }));
        assert_eq!(w.late(s), 1);
        assert_eq!(w.newest(s), Some(100));
        w.end(s);
        assert_eq!(w.watermark(), None);
        assert!(w.all_ended());
    }

    #[test]
    fn overlapping_streams_hold_time_at_the_slowest() {
        let mut w = Watermarks::new(0);
        let (a, b) = (w.add(None), w.add(None));
        w.observe(a, 1_000).unwrap();
        assert_eq!(w.watermark(), None, "b says nothing yet");
        w.observe(b, 10).unwrap();
        assert_eq!(w.watermark(), Some(10));
        // b far behind a is not late: only its own order counts.
        assert_eq!(w.observe(b, 20), Ok(()));
        assert_eq!(w.watermark(), Some(20));
        w.end(b);
        assert_eq!(w.watermark(), Some(1_000));
    }

    #[test]
    fn an_announced_start_lets_time_pass_until_it() {
        let mut w = Watermarks::new(5);
        let (a, later) = (w.add(Some(100)), w.add(Some(500)));
        assert_eq!(w.watermark(), Some(95));
        w.observe(a, 100).unwrap();
        w.observe(a, 700).unwrap();
        assert_eq!(
            w.watermark(),
            Some(495),
            "the later stream holds time at its start"
        );
        w.observe(later, 600).unwrap();
        assert_eq!(w.watermark(), Some(595));
        assert_eq!(w.observe(later, 594), Err(Late { behind: 1 }));
        w.end(later);
        w.end(a);
        assert!(w.all_ended());
    }

    #[test]
    fn a_stream_that_ends_unread_stops_holding_time() {
        let mut w = Watermarks::new(0);
        let (a, empty, unknown) = (w.add(Some(10)), w.add(Some(0)), w.add(None));
        w.observe(a, 10).unwrap();
        assert_eq!(w.watermark(), None);
        w.end(unknown);
        assert_eq!(w.watermark(), Some(0));
        w.end(empty);
        assert_eq!(w.watermark(), Some(10));
    }
}
