//! Replay of inputs that are out of order beyond `lateness` (an unload written without
//! `ORDER BY`, a merge of exports): every event is decoded again, sorted by event time — in
//! memory up to a budget, beyond it in sorted runs in temporary files merged at the end — and
//! fed to the detector as one ordered stream. The result is that of the same events in time
//! order, however they were split and ordered in the files. Permission changes, few, are kept
//! apart in memory, sorted, and fed in time order among the events.

use super::lines::{Block, Step, open, read_block};
use super::{ReplayError, ReplayOptions, ReplayOutcome, finish, write_alerts};
use crate::config::Config;
use crate::detect::Detector;
use crate::event::PermissionChange;
use crate::report::Problems;
use crate::source::Input;
use crate::time::Ts;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::time::Instant;

/// Default memory for sorting before runs go to disk.
pub const DEFAULT_SORT_MEMORY: usize = 1 << 30;

/// Events sorted by time: `(time, record)` where a record is a read's table and principal or
/// nothing (an event that only moves time).
pub struct EventSort {
    budget: usize,
    /// Records back to back: a kind byte (0: not a read, 1: a read), then for a read the table
    /// and the principal, each as a little-endian `u32` length and its bytes.
    arena: Vec<u8>,
    /// (time, where the record starts in `arena`).
    index: Vec<(Ts, u32)>,
    /// Sorted runs written out: temporary files, removed when dropped.
    runs: Vec<std::fs::File>,
}

/// One decoded event of a run.
struct RunEvent {
    ts: Ts,
    record: Vec<u8>,
}

impl EventSort {
    /// Sorts in memory up to `budget` bytes, then in runs on disk.
    pub fn new(budget: usize) -> EventSort {
        EventSort {
            budget: budget.max(1 << 16),
            arena: Vec::new(),
            index: Vec::new(),
            runs: Vec::new(),
        }
    }

    /// Adds an event.
    pub fn push(&mut self, ts: Ts, read: Option<(&str, &str)>) -> io::Result<()> {
        let at = self.arena.len();
        match read {
            None => self.arena.push(0),
            Some((table, principal)) => {
                self.arena.push(1);
                for s in [table, principal] {
                    self.arena
                        .extend_from_slice(&(s.len() as u32).to_le_bytes());
                    self.arena.extend_from_slice(s.as_bytes());
                }
            }
        }
        self.index.push((ts, at as u32));
        if self.arena.len() + self.index.len() * 16 >= self.budget
            || self.arena.len() >= u32::MAX as usize / 2
        {
            self.spill()?;
        }
        Ok(())
    }

    /// Writes what is in memory as a sorted run.
    fn spill(&mut self) -> io::Result<()> {
        self.index.sort_by_key(|&(ts, _)| ts);
        let mut run = BufWriter::new(tempfile::tempfile()?);
        for &(ts, at) in &self.index {
            run.write_all(&ts.to_le_bytes())?;
            run.write_all(record_at(&self.arena, at as usize))?;
        }
        let mut file = run.into_inner().map_err(|e| e.into_error())?;
        file.rewind()?;
        self.runs.push(file);
        self.arena.clear();
        self.index.clear();
        Ok(())
    }

    /// Hands every event to `each` in time order (events of the same time in the order added
    /// when all fit in memory; in any order otherwise — the detector orders them by name).
    pub fn drain(
        mut self,
        mut each: impl FnMut(Ts, Option<(&str, &str)>) -> Result<(), ReplayError>,
    ) -> Result<(), ReplayError> {
        let temp = |e: io::Error| ReplayError::Temp(e);
        if self.runs.is_empty() {
            self.index.sort_by_key(|&(ts, _)| ts);
            for &(ts, at) in &self.index {
                each(ts, read_of(record_at(&self.arena, at as usize)))?;
            }
            return Ok(());
        }
        if !self.index.is_empty() {
            self.spill().map_err(temp)?;
        }
        let mut runs: Vec<BufReader<std::fs::File>> = self
            .runs
            .drain(..)
            .map(|f| BufReader::with_capacity(1 << 16, f))
            .collect();
        let mut heads: Vec<Option<RunEvent>> = Vec::with_capacity(runs.len());
        let mut heap = BinaryHeap::new();
        for (i, run) in runs.iter_mut().enumerate() {
            let head = next_event(run).map_err(temp)?;
            if let Some(event) = &head {
                heap.push(Reverse((event.ts, i)));
            }
            heads.push(head);
        }
        while let Some(Reverse((_, i))) = heap.pop() {
            let event = heads[i].take().expect("a head for each heap entry");
            each(event.ts, read_of(&event.record))?;
            heads[i] = next_event(&mut runs[i]).map_err(temp)?;
            if let Some(next) = &heads[i] {
                heap.push(Reverse((next.ts, i)));
            }
        }
        Ok(())
    }

    /// How many runs went to disk.
    pub fn runs(&self) -> usize {
        self.runs.len()
    }
}

/// The record starting at `at`.
fn record_at(arena: &[u8], at: usize) -> &[u8] {
    if arena[at] == 0 {
        return &arena[at..at + 1];
    }
    let len = |from: usize| {
        u32::from_le_bytes(arena[from..from + 4].try_into().expect("4 bytes")) as usize
    };
    let table_end = at + 1 + 4 + len(at + 1);
    let end = table_end + 4 + len(table_end);
    &arena[at..end]
}

/// The (table, principal) of a read's record; `None` for another event.
fn read_of(record: &[u8]) -> Option<(&str, &str)> {
    if record[0] == 0 {
        return None;
    }
    let field = |from: usize| {
        let len = u32::from_le_bytes(record[from..from + 4].try_into().expect("4 bytes")) as usize;
        let text = std::str::from_utf8(&record[from + 4..from + 4 + len]).expect("written as str");
        (text, from + 4 + len)
    };
    let (table, next) = field(1);
    let (principal, _) = field(next);
    Some((table, principal))
}

/// The next event of a run, or `None` at its end.
fn next_event(run: &mut impl Read) -> io::Result<Option<RunEvent>> {
    let mut ts = [0u8; 8];
    match run.read_exact(&mut ts) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut kind = [0u8; 1];
    run.read_exact(&mut kind)?;
    let mut record = vec![kind[0]];
    if kind[0] == 1 {
        for _ in 0..2 {
            let mut len = [0u8; 4];
            run.read_exact(&mut len)?;
            record.extend_from_slice(&len);
            let start = record.len();
            record.resize(start + u32::from_le_bytes(len) as usize, 0);
            run.read_exact(&mut record[start..])?;
        }
    }
    Ok(Some(RunEvent {
        ts: Ts::from_le_bytes(ts),
        record,
    }))
}

/// Replays `inputs` with every event sorted by time first (the second pass of a replay whose
/// inputs turned out to be out of order beyond `lateness`). Bad lines were reported by the
/// first pass and are not reported again; the events it quarantined (input, line) are left
/// out.
pub fn replay_sorted(
    config: &Config,
    inputs: &[Input],
    options: &ReplayOptions,
    (memory, quarantined): (usize, &[(usize, u64)]),
    out: &mut dyn Write,
    problems: &Problems,
) -> Result<(ReplayOutcome, usize), ReplayError> {
    let started = Instant::now();
    let filter = options.filter;
    let mut sort = EventSort::new(memory);
    let mut events = 0u64;
    let mut filtered = 0u64;
    let quarantined: std::collections::HashSet<(usize, u64)> =
        quarantined.iter().copied().collect();
    let mut failed = None;
    let mut changes: Vec<PermissionChange> = Vec::new();
    for (index, input) in inputs.iter().enumerate() {
        let Ok(mut reading) = open(config, input, index, &Default::default()) else {
            continue;
        };
        let mut take = |block: Block| {
            let mut block_changes = block.batch.changes.iter().peekable();
            for (at, event) in block.batch.events.iter().enumerate() {
                let change = block_changes.next_if(|(c, _)| *c == at).map(|(_, c)| c);
                if quarantined.contains(&(index, event.line)) {
                    continue;
                }
                if !filter.keeps(event.ts) {
                    filtered += 1;
                    continue;
                }
                events += 1;
                if let Some(change) = change {
                    changes.push(change.clone());
                    continue;
                }
                let read = event
                    .read
                    .as_ref()
                    .map(|(table, principal)| (block.batch.str(table), block.batch.str(principal)));
                if let Err(e) = sort.push(event.ts, read) {
                    failed = Some(e);
                    return false;
                }
            }
            true
        };
        while let Step::More = read_block(&mut reading, false, &mut take) {}
        if let Some(e) = failed.take() {
            return Err(ReplayError::Temp(e));
        }
    }
    let runs = sort.runs();
    let mut detector = Detector::new(config.detector.clone());
    detector.apply_in_chunks(super::CHUNK_READS);
    let mut alerts = Vec::new();
    changes.sort();
    let mut changes = changes.into_iter().peekable();
    sort.drain(|ts, read| {
        while let Some(change) = changes.next_if(|c| c.ts <= ts) {
            detector.observe_change(&change, &mut alerts);
        }
        detector.observe_classified(ts, read, &mut alerts);
        write_alerts(out, &mut alerts)
    })?;
    for change in changes {
        detector.observe_change(&change, &mut alerts);
    }
    let outcome = finish(
        detector,
        out,
        (inputs.len(), events, filtered, 0),
        problems,
        started,
        options.keep_state,
    )?;
    Ok((outcome, runs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drained(sort: EventSort) -> Vec<(Ts, Option<(String, String)>)> {
        let mut got = Vec::new();
        sort.drain(|ts, read| {
            got.push((ts, read.map(|(t, p)| (t.to_string(), p.to_string()))));
            Ok(())
        })
        .unwrap();
        got
    }

    #[test]
    fn sorts_in_memory_and_through_runs_alike() {
        let events: Vec<(Ts, Option<(String, String)>)> = (0..20_000i64)
            .map(|i| {
                let ts = (i * 7_919) % 5_003;
                let read = (i % 3 != 0).then(|| (format!("t{}", i % 7), format!("p{i}")));
                (ts, read)
            })
            .collect();
        let mut expected = events.clone();
        expected.sort_by_key(|(ts, _)| *ts);
        for budget in [usize::MAX, 1 << 16] {
            let mut sort = EventSort::new(budget);
            for (ts, read) in &events {
                sort.push(*ts, read.as_ref().map(|(t, p)| (t.as_str(), p.as_str())))
                    .unwrap();
            }
            let spilled = sort.runs() > 0;
            assert_eq!(spilled, budget != usize::MAX);
            let mut got = drained(sort);
            assert!(got.windows(2).all(|w| w[0].0 <= w[1].0), "in time order");
            // Same-time events may come in any order from runs: compare sorted by content too.
            got.sort();
            let mut want = expected.clone();
            want.sort();
            assert_eq!(got, want);
        }
    }
}
