//! Replay of line-oriented inputs (JSON lines, plain or gzip, and stdin). Each input is a
//! stream of its own, in time order up to `lateness`; inputs may overlap in time (regions,
//! hosts, the parts of an unload) and are merged by event time ([`crate::watermark`]): a
//! look-ahead finds where each input starts, reading always goes on with the input that is
//! furthest behind, and the detector's watermark is the minimum over the inputs still open.
//! Only an event more than `lateness` behind its own input is late.
//!
//! The work is split in three stages joined by `Block`s of a few thousand lines, numbered in
//! input order: *reading* (open, gunzip, split lines, parse vendor records), *parsing* (canonical
//! JSON lines into events, classify the action) and *detecting* (report bad lines, intern names,
//! reorder, apply the rules, write alerts). With one thread, reading parses each line as it
//! comes. With `N` threads, one thread reads, `N` parse blocks side by side and the calling
//! thread detects, taking the blocks back in input order. Either way the detector sees the same
//! events in the same order and bad lines are reported in the same order, so the output is
//! identical.

use super::{OutOfOrder, ReplayError, ReplayOptions, ReplayOutcome, finish, write_alerts};
use crate::config::Config;
use crate::detect::{Alert, Detector, Observed};
use crate::event::{AccessEvent, PermissionChange};
use crate::format::{DecodeSink, Decoder, Format, Line, ParseError};
use crate::intern::{PrincipalId, TableId};
use crate::replay::unusable::{self, InputTally};
use crate::report::Problems;
use crate::source::Input;
use crate::source::lines::{LineReader, decode_all};
use crate::time::TimeFilter;
use crate::time::{Micros, Ts};
use crate::watermark::{Held, Late, Verdict, Watermarks};
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::ops::Range;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Events parsed from one input, their strings back to back in `text`. A permission change
/// is an event with no read, whose change is in `changes` with the event's index.
pub(super) struct EventBatch {
    text: String,
    pub(super) events: Vec<BatchedEvent>,
    pub(super) changes: Vec<(usize, PermissionChange)>,
}

/// One parsed event; `read` holds the (table, principal) ranges in the batch's text for a read,
/// and is `None` for any other action.
pub(super) struct BatchedEvent {
    pub(super) ts: Ts,
    pub(super) line: u64,
    pub(super) read: Option<(Range<u32>, Range<u32>)>,
}

/// Lines per block, at most.
const BLOCK_LINES: usize = 4096;

/// Bytes of raw lines per block, at most (and one line more): long lines make short blocks.
const BLOCK_BYTES: usize = 1 << 20;

impl EventBatch {
    fn new() -> EventBatch {
        EventBatch {
            text: String::with_capacity(BLOCK_LINES * 48),
            events: Vec::with_capacity(BLOCK_LINES),
            changes: Vec::new(),
        }
    }

    fn push_str(&mut self, s: &str) -> Range<u32> {
        let start = self.text.len() as u32;
        self.text.push_str(s);
        start..self.text.len() as u32
    }

    pub(super) fn str(&self, range: &Range<u32>) -> &str {
        &self.text[range.start as usize..range.end as usize]
    }
}

/// Consecutive lines of one input, as reading cut them: lines still to parse (`raw`, only when
/// parsing runs on other threads: canonical JSON lines, or lines of a vendor format with a record
/// per line), and what is known already — events, bad lines and records in line order, and
/// whether the input could not be read on after them.
pub(super) struct Block {
    input: usize,
    raw: RawLines,
    /// The format of the raw lines (settled by the reading stage's decoder).
    raw_format: Format,
    pub(super) batch: EventBatch,
    problems: Vec<(u64, ParseError)>,
    /// What the decoder said about how it reads the input (shown whatever the limit).
    notices: Vec<(u64, String)>,
    /// Vendor records that are no data access.
    not_access: u64,
    /// The same, by reason.
    not_access_by: std::collections::BTreeMap<crate::format::vendor::NotAccess, u64>,
    /// The input could not be opened or read on: what failed, and why.
    unreadable: Option<(&'static str, io::Error)>,
    /// The last block of its input.
    ends: bool,
}

impl Block {
    fn new(input: usize) -> Block {
        Block {
            input,
            raw: RawLines::default(),
            raw_format: Format::Jsonl,
            batch: EventBatch::new(),
            problems: Vec::new(),
            notices: Vec::new(),
            not_access: 0,
            not_access_by: Default::default(),
            unreadable: None,
            ends: false,
        }
    }

    /// Whether the block is big enough to hand on.
    fn is_full(&self) -> bool {
        self.raw.lines.len() + self.batch.events.len() + self.problems.len() >= BLOCK_LINES
            || self.raw.text.len() >= BLOCK_BYTES
    }

    /// Whether raw lines of `format` may join this block (a block's raw lines are of one
    /// format, and come before anything parsed by the reading stage).
    fn takes_raw(&self, format: Format) -> bool {
        self.raw.lines.is_empty()
            || (self.raw_format == format
                && self.batch.events.is_empty()
                && self.problems.is_empty()
                && self.notices.is_empty())
    }

    /// Decodes the raw lines (the parsing stage).
    fn parse(&mut self, decoder: &mut Decoder) {
        let raw = std::mem::take(&mut self.raw);
        let mut start = 0;
        for &(line_no, end) in &raw.lines {
            let line = match end {
                TOO_LONG => Line::TooLong,
                end => {
                    let line = Line::Text(&raw.text[start..end]);
                    start = end;
                    line
                }
            };
            decoder.independent_line(self.raw_format, line_no, line, self);
        }
    }
}

/// What the decoder gives lands in the block, in line order.
impl DecodeSink for Block {
    #[inline]
    fn event(&mut self, line: u64, event: &AccessEvent<'_>, read: bool) {
        let batch = &mut self.batch;
        let read = read.then(|| {
            let table = batch.push_str(&event.table);
            (table, batch.push_str(&event.principal))
        });
        batch.events.push(BatchedEvent {
            ts: event.ts,
            line,
            read,
        });
    }

    fn permission(&mut self, line: u64, change: &PermissionChange) {
        let batch = &mut self.batch;
        batch.changes.push((batch.events.len(), change.clone()));
        batch.events.push(BatchedEvent {
            ts: change.ts,
            line,
            read: None,
        });
    }

    fn not_access(&mut self, _line: u64, why: crate::format::vendor::NotAccess) {
        self.not_access += 1;
        *self.not_access_by.entry(why).or_default() += 1;
    }

    fn malformed(&mut self, line: u64, error: ParseError) {
        self.problems.push((line, error));
    }

    fn notice(&mut self, line: u64, message: &str) {
        self.notices.push((line, message.to_string()));
    }
}

/// Lines back to back, each with its number and where it ends ([`TOO_LONG`]: skipped whole).
#[derive(Default)]
struct RawLines {
    text: Vec<u8>,
    lines: Vec<(u64, usize)>,
}

const TOO_LONG: usize = usize::MAX;

impl RawLines {
    fn push(&mut self, line_no: u64, line: Line<'_>) {
        let end = match line {
            Line::Text(bytes) => {
                self.text.extend_from_slice(bytes);
                self.text.len()
            }
            Line::TooLong => TOO_LONG,
        };
        self.lines.push((line_no, end));
    }
}

/// Replays `inputs` through a detector built from `config`, writing alerts to `out`. With
/// `options.threads` above one, reading and parsing run on other threads.
pub fn replay_lines(
    config: &Config,
    inputs: &[Input],
    options: &ReplayOptions,
    out: &mut dyn Write,
    problems: &mut Problems,
    report_late: bool,
) -> Result<ReplayOutcome, ReplayError> {
    let started = Instant::now();
    let names: Vec<String> = inputs.iter().map(Input::display_name).collect();
    let starts: Vec<Option<Ts>> = inputs.iter().map(|i| first_event_time(config, i)).collect();
    let mut detector = Detector::new(config.detector.clone());
    detector.use_external_watermark();
    detector.apply_in_chunks(super::CHUNK_READS);
    let mut watermarks = Watermarks::new(
        config.detector.lateness.micros(),
        config.detector.max_ahead.micros(),
    );
    for start in &starts {
        watermarks.add(*start);
    }
    let schedule = Schedule::new(&starts);
    let mut detecting = Detecting {
        detector,
        watermarks,
        alerts: Vec::new(),
        events: 0,
        filtered: 0,
        late: 0,
        filter: options.filter,
        strict: options.strict,
        progress: options.progress.then(|| progress_bar(inputs)),
        ids: Vec::new(),
        schedule: &schedule,
        report_late,
        first_late: None,
        held: vec![None; inputs.len()],
        quarantined: Vec::new(),
        tallies: vec![InputTally::default(); inputs.len()],
    };
    let mut detect = |block: Block| detecting.block(block, &names, config, out, problems);

    if options.threads > 1 {
        read_in_parallel(config, inputs, &schedule, options.threads, &mut detect)?;
    } else {
        let mut detected = Ok(());
        read_inputs(config, inputs, &schedule, false, |block| {
            detected = detect(block);
            detected.is_ok()
        });
        detected?;
    }

    if let Some(bar) = &detecting.progress {
        bar.finish_and_clear();
    }
    let Detecting {
        detector,
        alerts,
        events,
        filtered,
        late,
        first_late,
        quarantined,
        watermarks,
        tallies,
        ..
    } = detecting;
    debug_assert!(alerts.is_empty(), "alerts are written as they come");
    for (input, tally) in inputs.iter().zip(tallies) {
        unusable::report(config, input, tally, problems);
    }
    let mut outcome = finish(
        detector,
        out,
        (inputs.len(), events, filtered, late),
        problems,
        started,
        options.keep_state,
    )?;
    // An input out of order beyond lateness makes its own verdicts of "far ahead" unreliable
    // (sorting will put its events in place): only the others' quarantines stand.
    outcome.quarantined = quarantined
        .into_iter()
        .filter(|&(input, _)| watermarks.late(input) == 0)
        .collect();
    outcome.out_of_order = first_late.map(|(input, line, behind)| OutOfOrder {
        input: names[input].clone(),
        line,
        behind,
        events: late,
    });
    Ok(outcome)
}

/// The time of the first event of `input`, found by decoding its first records (`None` for
/// stdin, which cannot be read twice, and for an input with no event or that cannot be read:
/// reading will say why).
fn first_event_time(config: &Config, input: &Input) -> Option<Ts> {
    struct First(Option<Ts>);
    impl DecodeSink for First {
        fn event(&mut self, _line: u64, event: &AccessEvent<'_>, _read: bool) {
            self.0.get_or_insert(event.ts);
        }
        fn permission(&mut self, _line: u64, change: &crate::event::PermissionChange) {
            self.0.get_or_insert(change.ts);
        }
        fn not_access(&mut self, _line: u64, _why: crate::format::vendor::NotAccess) {}
        fn malformed(&mut self, _line: u64, _error: ParseError) {}
    }
    if matches!(input, Input::Stdin) {
        return None;
    }
    let mut decoder = config.decoder_for(input);
    let mut first = First(None);
    // A read error is said when the input is read for real.
    decode_all(
        input.open().ok()?,
        &mut decoder,
        &mut first,
        |first| first.0.is_some(),
        |_, _| {},
    );
    first.0
}

/// Which input to read next: the one furthest behind in event time, so that inputs that
/// overlap are read side by side and little waits in the detector for the slowest. The
/// detecting stage reports how far each input has got; inputs are opened in the order of their
/// first event (an input with none known first).
struct Schedule {
    /// Input indices by (first event time, index).
    by_start: Vec<usize>,
    starts: Vec<Option<Ts>>,
    /// The newest event time detected of each input (`i64::MIN`: none yet).
    reached: Vec<AtomicI64>,
    /// Bytes of the inputs read so far, as stored (before decompression).
    bytes_read: Arc<AtomicU64>,
}

impl Schedule {
    fn new(starts: &[Option<Ts>]) -> Schedule {
        let mut by_start: Vec<usize> = (0..starts.len()).collect();
        by_start.sort_by_key(|&i| (starts[i].unwrap_or(Ts::MIN), i));
        Schedule {
            by_start,
            starts: starts.to_vec(),
            reached: starts.iter().map(|_| AtomicI64::new(Ts::MIN)).collect(),
            bytes_read: Arc::default(),
        }
    }

    /// Where input `input` is: the newest event time detected, or its start.
    fn position(&self, input: usize) -> Ts {
        let reached = self.reached[input].load(Relaxed);
        reached.max(self.starts[input].unwrap_or(Ts::MIN))
    }

    fn report(&self, input: usize, newest: Option<Ts>) {
        if let Some(newest) = newest {
            self.reached[input].fetch_max(newest, Relaxed);
        }
    }
}

/// Reading on one thread, parsing on `threads` others, detecting (`detect`) on this one, in
/// input order. A `detect` error stops the others: they find their channel closed.
fn read_in_parallel(
    config: &Config,
    inputs: &[Input],
    schedule: &Schedule,
    threads: usize,
    detect: &mut dyn FnMut(Block) -> Result<(), ReplayError>,
) -> Result<(), ReplayError> {
    let (to_parse, blocks) = mpsc::sync_channel::<(u64, Block)>(2 * threads);
    let (to_detect, parsed) = mpsc::sync_channel::<(u64, Block)>(2 * threads);
    // Shared by the parsing threads alone: when the last one stops, reading stops too.
    let blocks = Arc::new(Mutex::new(blocks));
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let mut seq = 0u64;
            read_inputs(config, inputs, schedule, true, |block| {
                seq += 1;
                to_parse.send((seq - 1, block)).is_ok()
            });
        });
        for _ in 0..threads {
            let (blocks, to_detect) = (Arc::clone(&blocks), to_detect.clone());
            scope.spawn(move || {
                let mut decoder = config.decoder();
                loop {
                    let next = blocks.lock().expect("not poisoned").recv();
                    let Ok((seq, mut block)) = next else { break };
                    block.parse(&mut decoder);
                    if to_detect.send((seq, block)).is_err() {
                        break;
                    }
                }
            });
        }
        drop((blocks, to_detect));
        // Owned here, so that returning early drops it before the threads are joined.
        let parsed = parsed;
        // Blocks come back in any order: each waits here until those before it are detected.
        let mut waiting: BTreeMap<u64, Block> = BTreeMap::new();
        let mut next = 0u64;
        for (seq, block) in parsed.iter() {
            waiting.insert(seq, block);
            while let Some(block) = waiting.remove(&next) {
                next += 1;
                // Returning drops `parsed`: the parsing threads, then reading, stop.
                detect(block)?;
            }
        }
        Ok(())
    })
}

/// An input being read.
pub(super) struct Reading {
    lines: LineReader<Box<dyn io::Read + Send>>,
    decoder: Decoder,
    block: Block,
}

/// What reading a block of an input came to.
pub(super) enum Step {
    /// A block was handed on; the input has more.
    More,
    /// The input's last block was handed on.
    Ended,
    /// The receiver wants no more.
    Stop,
}

/// The reading stage: cuts the inputs into blocks, a block of the input furthest behind at a
/// time (see [`Schedule`]), and hands each to `deliver`, which says whether to go on. Lines are
/// decoded here, or, with `parallel`, those that are whole records (canonical JSON lines, JSON
/// vendor records) are left raw for the parsing stage.
fn read_inputs(
    config: &Config,
    inputs: &[Input],
    schedule: &Schedule,
    parallel: bool,
    mut deliver: impl FnMut(Block) -> bool,
) {
    let mut reading: Vec<(usize, Reading)> = Vec::new();
    let mut unopened = schedule.by_start.iter().copied().peekable();
    loop {
        // The open input furthest behind, unless the next one to open starts before it.
        let behind = reading
            .iter()
            .enumerate()
            .min_by_key(|(_, (input, _))| (schedule.position(*input), *input))
            .map(|(at, (input, _))| (at, schedule.position(*input)));
        let open_next = match (behind, unopened.peek()) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some((_, position)), Some(&next)) => {
                schedule.starts[next].unwrap_or(Ts::MIN) <= position
            }
        };
        let step = if open_next {
            let input = unopened.next().expect("peeked");
            match open(config, &inputs[input], input, &schedule.bytes_read) {
                Ok(opened) => {
                    reading.push((input, opened));
                    continue;
                }
                Err(block) => {
                    if deliver(*block) {
                        continue;
                    }
                    Step::Stop
                }
            }
        } else {
            let Some((at, _)) = behind else { return };
            let step = read_block(&mut reading[at].1, parallel, &mut deliver);
            if matches!(step, Step::Ended) {
                reading.swap_remove(at);
            }
            step
        };
        if matches!(step, Step::Stop) {
            return;
        }
    }
}

/// Opens `input`, or gives its only block, saying it cannot be opened.
pub(super) fn open(
    config: &Config,
    input: &Input,
    index: usize,
    bytes_read: &Arc<AtomicU64>,
) -> Result<Reading, Box<Block>> {
    let mut block = Block::new(index);
    match input.open_counted(bytes_read) {
        Ok(reader) => {
            let decoder = config.decoder_for(input);
            Ok(Reading {
                lines: LineReader::new(reader, decoder.line_cap()),
                decoder,
                block,
            })
        }
        Err(e) => {
            block.unreadable = Some(("cannot open", e));
            block.ends = true;
            Err(Box::new(block))
        }
    }
}

/// Reads lines of one input until a block is handed on.
pub(super) fn read_block(
    reading: &mut Reading,
    parallel: bool,
    deliver: &mut impl FnMut(Block) -> bool,
) -> Step {
    let Reading {
        lines,
        decoder,
        block,
    } = reading;
    let handed = |ok: bool| if ok { Step::More } else { Step::Stop };
    loop {
        let (line_no, line) = match lines.next_line() {
            Ok(Some(next)) => next,
            Ok(None) => break,
            Err(e) => {
                block.unreadable = Some(("read error, rest of input skipped", e));
                break;
            }
        };
        if parallel {
            if let Some(format) = decoder.independent_format(line) {
                match push_raw(block, format, line_no, line, deliver) {
                    Pushed::Kept => continue,
                    Pushed::HandedOn(ok) => return handed(ok),
                }
            }
            // Decoded here: what is decoded must follow the raw lines before it.
            if !block.raw.lines.is_empty() {
                // The line is decoded into the next block.
                let ok = hand_on(block, deliver);
                decoder.line(line_no, line, block);
                return handed(ok);
            }
        }
        decoder.line(line_no, line, block);
        if block.is_full() {
            return handed(hand_on(block, deliver));
        }
    }
    decoder.finish(block);
    block.ends = true;
    let input = block.input;
    if deliver(std::mem::replace(block, Block::new(input))) {
        Step::Ended
    } else {
        Step::Stop
    }
}

/// Hands `block` on and starts the next block of the same input; `false`: stop reading.
fn hand_on(block: &mut Block, deliver: &mut impl FnMut(Block) -> bool) -> bool {
    let input = block.input;
    deliver(std::mem::replace(block, Block::new(input)))
}

/// What [`push_raw`] did.
enum Pushed {
    /// The line joined the block, which is not full.
    Kept,
    /// A block was handed on (`false`: stop reading); the line is in the block at hand.
    HandedOn(bool),
}

/// Adds a raw line of `format` to `block`, handing the block on first if it holds something
/// else and after if it is full.
fn push_raw(
    block: &mut Block,
    format: Format,
    line_no: u64,
    line: Line<'_>,
    deliver: &mut impl FnMut(Block) -> bool,
) -> Pushed {
    let mut handed = None;
    if !block.takes_raw(format) {
        handed = Some(hand_on(block, deliver));
    }
    block.raw_format = format;
    block.raw.push(line_no, line);
    if handed.is_none() && block.is_full() {
        handed = Some(hand_on(block, deliver));
    }
    match handed {
        None => Pushed::Kept,
        Some(ok) => Pushed::HandedOn(ok),
    }
}

/// An event kept aside for being far ahead of its input.
#[derive(Debug, Clone)]
struct HeldEvent {
    ts: Ts,
    line: u64,
    read: Option<(TableId, PrincipalId)>,
    change: Option<PermissionChange>,
}

/// The detecting stage.
struct Detecting<'s> {
    detector: Detector,
    /// Each input's event time; the detector's watermark is theirs.
    watermarks: Watermarks,
    alerts: Vec<Alert>,
    events: u64,
    /// Events at or after `--until`.
    filtered: u64,
    /// Events more than `lateness` behind their own input (not used).
    late: u64,
    /// Told how far each input has got.
    schedule: &'s Schedule,
    /// Report each late event (else only the first is kept, for the caller).
    report_late: bool,
    /// The first late event: (input, line, how far behind).
    first_late: Option<(usize, u64, Micros)>,
    /// Per input, the event held for being far ahead (see [`crate::watermark`]).
    held: Vec<Option<HeldEvent>>,
    /// (input, line) of the events quarantined, for a sorting second pass to leave out too.
    quarantined: Vec<(usize, u64)>,
    /// What each input gave (to tell an input nothing could be used from).
    tallies: Vec<InputTally>,
    filter: TimeFilter,
    strict: bool,
    progress: Option<indicatif::ProgressBar>,
    /// The (table, principal) ids of a batch's reads.
    ids: Vec<(TableId, PrincipalId)>,
}

/// Progress in bytes of the inputs as stored (a bar when every input's size is known: files
/// and objects; else a spinner), with the events detected, their rate, the input at hand and
/// the event time reached in the message.
fn progress_bar(inputs: &[Input]) -> indicatif::ProgressBar {
    let total: Option<u64> = inputs.iter().map(Input::size).sum();
    let (bar, template) = match total {
        Some(total) => (
            indicatif::ProgressBar::new(total),
            "{elapsed_precise} [{bar:24}] {binary_bytes}/{binary_total_bytes} \
             {binary_bytes_per_sec}, eta {eta}, {msg}",
        ),
        None => (
            indicatif::ProgressBar::new_spinner(),
            "{elapsed_precise} {spinner} {binary_bytes} {binary_bytes_per_sec}, {msg}",
        ),
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(template)
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar
}

impl Detecting<'_> {
    /// Takes the next block in input order: reports its bad lines, detects on its events, then
    /// reports an input that could not be read on. With `strict`, the first bad line ends the
    /// run, after the events before it.
    fn block(
        &mut self,
        mut block: Block,
        names: &[String],
        config: &Config,
        out: &mut dyn Write,
        problems: &mut Problems,
    ) -> Result<(), ReplayError> {
        let name = &names[block.input];
        for (line, message) in std::mem::take(&mut block.notices) {
            problems.notice(&format!("{name}:{line}: {message}"));
        }
        for (why, n) in std::mem::take(&mut block.not_access_by) {
            problems.not_access(why, n);
        }
        let tally = &mut self.tallies[block.input];
        let unattributable = (block.problems.iter())
            .filter(|(_, error)| error.kind() == crate::format::UNATTRIBUTABLE)
            .count() as u64;
        tally.records += block.batch.events.len() as u64 + block.not_access + unattributable;
        tally.malformed += block.problems.len() as u64 - unattributable;
        let mut first_bad = None;
        for (line, error) in block.problems {
            if self.strict {
                first_bad = Some((line, error));
                break;
            }
            problems.malformed(name, line, &error);
        }
        if let Some((line, _)) = &first_bad {
            let batch = &mut block.batch;
            batch.events.retain(|event| event.line < *line);
            let kept = batch.events.len();
            batch.changes.retain(|(at, _)| *at < kept);
        }
        self.batch(&block.batch, block.input, names, config, out, problems)?;
        if let Some((line, error)) = first_bad {
            return Err(ReplayError::Strict {
                location: Problems::location(name, line, &error),
                error,
            });
        }
        if let Some((what, error)) = &block.unreadable {
            problems.unreadable(name, what, error);
        }
        if block.ends
            && let Some(fate) = self.watermarks.end(block.input)
        {
            self.resolve_held(block.input, fate, names, config, out, problems)?;
        }
        self.schedule
            .report(block.input, self.watermarks.newest(block.input));
        if let Some(watermark) = self.watermarks.watermark() {
            self.detector.advance(watermark, &mut self.alerts);
            write_alerts(out, &mut self.alerts)?;
        }
        Ok(())
    }

    fn batch(
        &mut self,
        batch: &EventBatch,
        input: usize,
        names: &[String],
        config: &Config,
        out: &mut dyn Write,
        problems: &mut Problems,
    ) -> Result<(), ReplayError> {
        if let Some(bar) = &self.progress {
            bar.set_position(self.schedule.bytes_read.load(Relaxed));
            let events = self.events + batch.events.len() as u64;
            let rate = events as f64 / bar.elapsed().as_secs_f64().max(1e-3) / 1e6;
            let at = self
                .detector
                .newest_event()
                .map(crate::time::format_ts)
                .unwrap_or_default();
            bar.set_message(format!(
                "{} events ({rate:.2} M/s), input {}/{}, at {at}",
                indicatif::HumanCount(events),
                input + 1,
                names.len()
            ));
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
        let mut ids = std::mem::take(&mut self.ids);
        ids.clear();
        self.detector.by_id().reads(&names_of_reads, &mut ids);
        let result = self.events_of(batch, input, &ids, names, config, out, problems);
        self.ids = ids;
        result
    }

    /// Takes the events of `batch`, whose reads (within `--from`/`--until`) have the ids `ids`.
    #[allow(clippy::too_many_arguments)]
    fn events_of(
        &mut self,
        batch: &EventBatch,
        input: usize,
        ids: &[(TableId, PrincipalId)],
        names: &[String],
        config: &Config,
        out: &mut dyn Write,
        problems: &mut Problems,
    ) -> Result<(), ReplayError> {
        let filter = self.filter;
        let mut ids = ids.iter();
        let mut changes = batch.changes.iter().peekable();
        for (at, event) in batch.events.iter().enumerate() {
            let change = changes.next_if(|(c, _)| *c == at).map(|(_, c)| c);
            if !filter.keeps(event.ts) {
                self.filtered += 1;
                continue;
            }
            self.events += 1;
            let read = event
                .read
                .as_ref()
                .map(|_| *ids.next().expect("one per read"));
            let (held, verdict) = self.watermarks.observe(input, event.ts);
            if let Some(fate) = held {
                self.resolve_held(input, fate, names, config, out, problems)?;
            }
            match verdict {
                Verdict::Take => {}
                Verdict::Late(Late { behind }) => {
                    self.late += 1;
                    self.first_late.get_or_insert((input, event.line, behind));
                    if self.report_late {
                        let lateness = config.detector.lateness;
                        problems.late(&names[input], event.line, behind, lateness);
                    }
                    continue;
                }
                Verdict::Hold => {
                    self.held[input] = Some(HeldEvent {
                        ts: event.ts,
                        line: event.line,
                        read,
                        change: change.cloned(),
                    });
                    continue;
                }
            }
            let observed = match change {
                Some(change) => self.detector.observe_change(change, &mut self.alerts),
                None => self
                    .detector
                    .by_id()
                    .observe(event.ts, read, &mut self.alerts),
            };
            debug_assert!(
                !matches!(observed, Observed::Late { .. }),
                "the watermark is never ahead of an input"
            );
            if !self.alerts.is_empty() {
                write_alerts(out, &mut self.alerts)?;
            }
        }
        Ok(())
    }

    /// Uses or quarantines the event `input` held, as its watermarks decided.
    fn resolve_held(
        &mut self,
        input: usize,
        fate: Held,
        names: &[String],
        config: &Config,
        out: &mut dyn Write,
        problems: &mut Problems,
    ) -> Result<(), ReplayError> {
        let held = self.held[input].take().expect("the watermarks held one");
        match fate {
            Held::Release => {
                match &held.change {
                    Some(change) => self.detector.observe_change(change, &mut self.alerts),
                    None => self
                        .detector
                        .by_id()
                        .observe(held.ts, held.read, &mut self.alerts),
                };
                write_alerts(out, &mut self.alerts)
            }
            Held::Quarantine => {
                self.quarantined.push((input, held.line));
                let newest = self.watermarks.newest(input).unwrap_or(held.ts);
                problems.quarantined(
                    &names[input],
                    held.line,
                    held.ts - newest,
                    config.detector.max_ahead,
                );
                Ok(())
            }
        }
    }
}
