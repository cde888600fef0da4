//! Replay of line-oriented inputs (JSON lines, plain or gzip, and stdin), read in the order
//! given as one stream of events.
//!
//! The work is split in two stages joined by batches of parsed events: *reading* (open, gunzip,
//! split lines, parse, classify the action) and *detecting* (intern names, reorder, apply the
//! rules, write alerts). With two threads the stages run side by side; with one they alternate.
//! Either way the detector sees the same events in the same order, so the output is identical.

use super::{ReplayError, ReplayOptions, ReplayOutcome, finish, write_alerts};
use crate::config::Config;
use crate::detect::{Alert, Detector, Observed, ReadActions};
use crate::format::ParseError;
use crate::format::vendor::{Item, RecordReader, RecordResult};
use crate::intern::Id;
use crate::report::Problems;
use crate::source::Input;
use crate::source::lines::{Line, LineReader};
use crate::source::parquet::TimeFilter;
use crate::time::Ts;
use std::io::Write;
use std::ops::Range;
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::Instant;

/// Events parsed from one input, their strings back to back in `text`.
struct EventBatch {
    input: usize,
    text: String,
    events: Vec<BatchedEvent>,
}

/// One parsed event; `read` holds the (table, principal) ranges in the batch's text for a read,
/// and is `None` for any other action.
struct BatchedEvent {
    ts: Ts,
    line: u64,
    read: Option<(Range<u32>, Range<u32>)>,
}

const BATCH_EVENTS: usize = 4096;

impl EventBatch {
    fn new(input: usize) -> EventBatch {
        EventBatch {
            input,
            text: String::with_capacity(BATCH_EVENTS * 48),
            events: Vec::with_capacity(BATCH_EVENTS),
        }
    }

    fn push_str(&mut self, s: &str) -> Range<u32> {
        let start = self.text.len() as u32;
        self.text.push_str(s);
        start..self.text.len() as u32
    }

    fn str(&self, range: &Range<u32>) -> &str {
        &self.text[range.start as usize..range.end as usize]
    }
}

/// Replays `inputs` through a detector built from `config`, writing alerts to `out`. With
/// `options.threads` above one, reading runs on a second thread.
pub fn replay_lines(
    config: &Config,
    inputs: &[Input],
    options: &ReplayOptions,
    out: &mut dyn Write,
    problems: &mut Problems,
) -> Result<ReplayOutcome, ReplayError> {
    let (strict, threads) = (options.strict, options.threads);
    let started = Instant::now();
    let names: Vec<String> = inputs.iter().map(Input::display_name).collect();
    let problems = Mutex::new(problems);
    let mut detector = Detector::new(config.detector.clone());
    detector.apply_in_chunks(super::CHUNK_READS);
    let mut detecting = Detecting {
        detector,
        alerts: Vec::new(),
        events: 0,
        filtered: 0,
        filter: options.filter,
        progress: options.progress.then(progress_spinner),
        ids: Vec::new(),
    };

    let read_result = if threads > 1 {
        let (sender, receiver) = mpsc::sync_channel::<EventBatch>(4);
        std::thread::scope(|scope| {
            let (names, problems) = (&names, &problems);
            let reader = scope.spawn(move || {
                read_inputs(config, inputs, strict, names, problems, |batch| {
                    sender.send(batch).is_ok()
                })
            });
            let mut detected = Ok(());
            for batch in receiver.iter() {
                detected = detecting.batch(&batch, names, config, out, problems);
                if detected.is_err() {
                    break;
                }
            }
            // Hanging up stops the reader if detection failed (e.g. a closed stdout).
            drop(receiver);
            let read = reader.join().expect("the reader thread does not panic");
            detected.and(read)
        })
    } else {
        let mut detected = Ok(());
        let read = read_inputs(config, inputs, strict, &names, &problems, |batch| {
            detected = detecting.batch(&batch, &names, config, out, &problems);
            detected.is_ok()
        });
        detected.and(read)
    };
    read_result?;

    let problems = problems
        .into_inner()
        .expect("no thread panicked holding it");
    if let Some(bar) = &detecting.progress {
        bar.finish_and_clear();
    }
    let Detecting {
        detector,
        alerts,
        events,
        filtered,
        ..
    } = detecting;
    debug_assert!(alerts.is_empty(), "alerts are written as they come");
    finish(
        detector,
        out,
        (inputs.len(), events, filtered),
        problems,
        started,
        options.keep_state,
    )
}

/// The reading stage: parses every input into batches and hands each to `deliver`, which says
/// whether to go on. Bad lines are reported and skipped (or end the run with `strict`).
fn read_inputs(
    config: &Config,
    inputs: &[Input],
    strict: bool,
    names: &[String],
    problems: &Mutex<&mut Problems>,
    mut deliver: impl FnMut(EventBatch) -> bool,
) -> Result<(), ReplayError> {
    let parser = &config.input.jsonl;
    let mut read_actions: ReadActions = config.detector.read_actions.clone();
    let report = |f: &mut dyn FnMut(&mut Problems)| f(&mut problems.lock().expect("not poisoned"));
    for (index, input) in inputs.iter().enumerate() {
        let name = &names[index];
        let reader = match input.open() {
            Ok(reader) => reader,
            Err(e) => {
                report(&mut |p| p.unreadable(name, "cannot open", &e));
                continue;
            }
        };
        let max_line_bytes = line_cap(config);
        let mut lines = LineReader::new(reader, max_line_bytes);
        let mut batch = EventBatch::new(index);
        let mut records = RecordReader::new(config.input.format, &config.input.vendor)
            .expect("checked with the configuration");
        let mut done: Vec<RecordResult> = Vec::new();
        loop {
            let (line_no, line) = match lines.next_line() {
                Ok(Some(next)) => next,
                Ok(None) => break,
                Err(e) => {
                    report(&mut |p| p.unreadable(name, "read error, rest of input skipped", &e));
                    break;
                }
            };
            let Some(line) = records.route(line_no, line, max_line_bytes, &mut done) else {
                if let Err(e) = take_records(&mut done, &mut batch, name, strict, problems) {
                    // Events before the bad record are still detected on.
                    deliver(batch);
                    return Err(e);
                }
                if batch.events.len() >= BATCH_EVENTS
                    && !deliver(std::mem::replace(&mut batch, EventBatch::new(index)))
                {
                    return Ok(());
                }
                continue;
            };
            let parsed = match line {
                Line::Text(bytes) => parser.parse(bytes),
                Line::TooLong => Err(ParseError::TooLong { max_line_bytes }),
            };
            match parsed {
                Ok(Some(event)) => {
                    let read = read_actions.is_read(event.action.as_deref()).then(|| {
                        let table = batch.push_str(&event.table);
                        (table, batch.push_str(&event.principal))
                    });
                    batch.events.push(BatchedEvent {
                        ts: event.ts,
                        line: line_no,
                        read,
                    });
                    if batch.events.len() == BATCH_EVENTS
                        && !deliver(std::mem::replace(&mut batch, EventBatch::new(index)))
                    {
                        return Ok(());
                    }
                }
                Ok(None) => {}
                Err(error) => {
                    if strict {
                        // Events before the bad line are still detected on.
                        deliver(batch);
                        return Err(ReplayError::Strict {
                            location: Problems::location(name, line_no, &error),
                            error,
                        });
                    }
                    report(&mut |p| p.malformed(name, line_no, &error));
                }
            }
        }
        records.flush(&mut done);
        if let Err(e) = take_records(&mut done, &mut batch, name, strict, problems) {
            deliver(batch);
            return Err(e);
        }
        if !batch.events.is_empty() && !deliver(batch) {
            return Ok(());
        }
    }
    Ok(())
}

/// The longest line read: CloudTrail files are often one JSON line of many megabytes.
fn line_cap(config: &Config) -> usize {
    if config.input.format == crate::format::Format::Cloudtrail {
        config.input.max_line_bytes.max(512 << 20)
    } else {
        config.input.max_line_bytes
    }
}

/// Moves the finished vendor records into `batch`: their events, counts of records that are no
/// access, reports of bad ones — or, with `strict`, the first bad one as the error.
fn take_records(
    done: &mut Vec<RecordResult>,
    batch: &mut EventBatch,
    name: &str,
    strict: bool,
    problems: &Mutex<&mut Problems>,
) -> Result<(), ReplayError> {
    for (line_no, result) in done.drain(..) {
        let mut problems = problems.lock().expect("not poisoned");
        match result {
            Ok(items) => push_items(batch, line_no, items, &mut |n| problems.not_access(n)),
            Err(error) if strict => {
                return Err(ReplayError::Strict {
                    location: Problems::location(name, line_no, &error),
                    error,
                });
            }
            Err(error) => problems.malformed(name, line_no, &error),
        }
    }
    Ok(())
}

/// Adds a vendor record's events to `batch`; counts the records that are no access.
fn push_items(
    batch: &mut EventBatch,
    line: u64,
    items: Vec<Item>,
    not_access: &mut dyn FnMut(u64),
) {
    let mut skipped = 0;
    for item in items {
        match item {
            Item::Event(event) => {
                let read = event.read.then(|| {
                    let table = batch.push_str(&event.table);
                    (table, batch.push_str(&event.principal))
                });
                batch.events.push(BatchedEvent {
                    ts: event.ts,
                    line,
                    read,
                });
            }
            Item::NotAccess => skipped += 1,
        }
    }
    if skipped > 0 {
        not_access(skipped);
    }
}

/// The detecting stage.
struct Detecting {
    detector: Detector,
    alerts: Vec<Alert>,
    events: u64,
    /// Events outside `--from`/`--until`.
    filtered: u64,
    filter: TimeFilter,
    progress: Option<indicatif::ProgressBar>,
    /// The (table, principal) ids of a batch's reads.
    ids: Vec<(Id, Id)>,
}

fn progress_spinner() -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} {spinner} {human_pos} events, {rate}, input {prefix}, at {msg}",
        )
        .expect("a valid template")
        .with_key("rate", crate::report::write_rate),
    );
    bar
}

impl Detecting {
    fn batch(
        &mut self,
        batch: &EventBatch,
        names: &[String],
        config: &Config,
        out: &mut dyn Write,
        problems: &Mutex<&mut Problems>,
    ) -> Result<(), ReplayError> {
        if let Some(bar) = &self.progress {
            bar.inc(batch.events.len() as u64);
            bar.set_prefix(format!("{}/{}", batch.input + 1, names.len()));
            if let Some(newest) = self.detector.newest_event() {
                bar.set_message(crate::time::format_ts(newest));
            }
        }
        // Names to ids for the whole batch at once (their look-ups overlap), then the events.
        let filter = self.filter;
        let names_of_reads: Vec<(&str, &str)> = batch
            .events
            .iter()
            .filter(|event| filter.keeps(event.ts))
            .filter_map(|event| {
                let (table, principal) = event.read.as_ref()?;
                Some((batch.str(table), batch.str(principal)))
            })
            .collect();
        self.ids.clear();
        self.detector.read_ids(&names_of_reads, &mut self.ids);
        let mut ids = self.ids.iter();
        for event in &batch.events {
            if !filter.keeps(event.ts) {
                self.filtered += 1;
                continue;
            }
            self.events += 1;
            let read = event
                .read
                .as_ref()
                .map(|_| *ids.next().expect("one per read"));
            let observed = self.detector.observe_ids(event.ts, read, &mut self.alerts);
            if let Observed::Late { behind } = observed {
                let name = &names[batch.input];
                let lateness = config.detector.lateness;
                problems
                    .lock()
                    .expect("not poisoned")
                    .late(name, event.line, behind, lateness);
            }
            if !self.alerts.is_empty() {
                write_alerts(out, &mut self.alerts)?;
            }
        }
        Ok(())
    }
}
