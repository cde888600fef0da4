//! Replay of Parquet archives.
//!
//! Ordering: every row group of every file is placed by the minimum of its time column (from
//! the row-group statistics), then by file and row-group order. Before the detector moves past
//! a row group, the watermark is raised only to the minimum time of the next one: every read of
//! an earlier time has been seen by then, so the result equals the replay of all events sorted,
//! however files overlap and however rows are ordered inside a row group. Without time
//! statistics (some writers omit them) the files are read in the order given, and `lateness`
//! applies as for JSON lines.
//!
//! With two threads, one decodes row groups while the other detects.

use super::{ReplayError, ReplayOptions, ReplayOutcome, finish, write_alerts};
use crate::config::Config;
use crate::detect::{Alert, BufferedRead, ById, Detector};
use crate::event::PermissionChange;
use crate::format::columns::{BadRow, BatchDecoder, DecodedRow, Names, Rows};
use crate::intern::{PrincipalId, TableId};
use crate::report::Problems;
use crate::source::Input;
use crate::source::parquet::{ParquetInput, RowGroupSpan};
use crate::time::TimeFilter;
use crate::time::{Ts, format_ts};
use arrow_array::RecordBatch;
use std::io::Write;
use std::sync::mpsc;
use std::time::Instant;

/// Rows per decoded batch.
pub const BATCH_ROWS: usize = 64 * 1024;

/// One row group to read, in replay order.
#[derive(Debug, Clone)]
struct Step {
    file: usize,
    row_group: usize,
    rows: u64,
    min_ts: Option<Ts>,
    max_ts: Option<Ts>,
}

/// What the decoding side hands to the detecting side.
enum Decoded {
    Batch { step: usize, batch: RecordBatch },
    Done { step: usize },
    Failed { step: usize, error: String },
}

/// Whether a row group whose table column lies within `[min, max]` can hold a table starting
/// with one of `prefixes` (statistics may be truncated, but stay bounds).
fn may_hold_prefix(span: &RowGroupSpan, prefixes: &[String]) -> bool {
    let (Some(min), Some(max)) = (&span.min_table, &span.max_table) else {
        return true;
    };
    prefixes.iter().any(|p| {
        let p = p.as_bytes();
        max.as_slice() >= p && (min.as_slice() <= p || min.starts_with(p))
    })
}

/// Replays Parquet `inputs` (see the module comment for the order) into `out`.
pub fn replay_parquet(
    config: &Config,
    inputs: &[Input],
    options: &ReplayOptions,
    out: &mut dyn Write,
    problems: &mut Problems,
) -> Result<ReplayOutcome, ReplayError> {
    let started = Instant::now();
    let mut files: Vec<ParquetInput> = Vec::new();
    for input in inputs {
        let Some(source) = input.parquet_source() else {
            continue;
        };
        let name = source.name();
        match ParquetInput::open(source, &config.input.fields, config.input.ts_unit) {
            Ok(file) => files.push(file),
            Err(error) => {
                let error = ReplayError::from(error);
                if options.strict || matches!(error, ReplayError::Schema(_)) {
                    return Err(error);
                }
                problems.unreadable(&name, "skipped", &error);
            }
        }
    }
    let names: Vec<String> = files.iter().map(|f| f.source.name()).collect();

    let prefixes = &config.detector.policies.only_prefixes;
    let mut plan: Vec<Step> = Vec::new();
    let mut pruned_rows = 0u64;
    for (file, input) in files.iter().enumerate() {
        for span in &input.row_groups {
            let keep = options.filter.overlaps(span.min_ts, span.max_ts)
                && (prefixes.is_empty() || may_hold_prefix(span, prefixes));
            if keep {
                plan.push(Step {
                    file,
                    row_group: span.index,
                    rows: span.rows,
                    min_ts: span.min_ts,
                    max_ts: span.max_ts,
                });
            } else {
                pruned_rows += span.rows;
            }
        }
    }
    let ordered = plan.iter().all(|s| s.min_ts.is_some());
    if ordered {
        plan.sort_by_key(|s| (s.min_ts, s.file, s.row_group));
    }

    let mut detecting = Detecting {
        detector: Detector::new(config.detector.clone()),
        decoders: files.iter().map(ParquetInput::decoder).collect(),
        alerts: Vec::new(),
        bad: Vec::new(),
        events: 0,
        filtered: 0,
        progress: options
            .progress
            .then(|| progress_bar(plan.iter().map(|s| s.rows).sum())),
        in_order_step: None,
        chunk: Vec::new(),
    };
    if ordered {
        detecting.detector.use_external_watermark();
    }
    // Row groups that overlap the next (rows in no particular order, as most writers but
    // `exposure archive` leave them) are applied in chunks too, once the watermark passes them.
    detecting.detector.apply_in_chunks(super::CHUNK_READS);

    let decode = |deliver: &mut dyn FnMut(Decoded) -> bool| {
        // Row groups in a store are fetched `READ_AHEAD` ahead of the one decoded.
        let mut ahead = std::collections::VecDeque::new();
        let mut next = 0;
        for index in 0..plan.len() {
            while next < plan.len() && next <= index + READ_AHEAD {
                ahead.push_back(files[plan[next].file].read_ahead(plan[next].row_group));
                next += 1;
            }
            let row_group = ahead.pop_front().expect("read ahead in plan order");
            let reader = match row_group.reader(BATCH_ROWS) {
                Ok(reader) => reader,
                Err(error) => {
                    if !deliver(Decoded::Failed { step: index, error }) {
                        return;
                    }
                    continue;
                }
            };
            let mut failed = false;
            for batch in reader {
                let message = match batch {
                    Ok(batch) => Decoded::Batch { step: index, batch },
                    Err(e) => {
                        failed = true;
                        Decoded::Failed {
                            step: index,
                            error: e.to_string(),
                        }
                    }
                };
                if !deliver(message) {
                    return;
                }
                if failed {
                    break;
                }
            }
            if !failed && !deliver(Decoded::Done { step: index }) {
                return;
            }
        }
    };

    let context = Context {
        plan: &plan,
        names: &names,
        ordered,
        strict: options.strict,
        filter: options.filter,
    };
    let result = if options.threads > 1 {
        let (sender, receiver) = mpsc::sync_channel::<Decoded>(4);
        std::thread::scope(|scope| {
            let decode = &decode;
            scope.spawn(move || decode(&mut |m| sender.send(m).is_ok()));
            let mut result = Ok(());
            for message in receiver.iter() {
                result = detecting.handle(message, &context, out, problems);
                if result.is_err() {
                    break;
                }
            }
            drop(receiver);
            result
        })
    } else {
        let mut result = Ok(());
        decode(&mut |message| {
            result = detecting.handle(message, &context, out, problems);
            result.is_ok()
        });
        result
    };
    if let Some(bar) = &detecting.progress {
        bar.finish_and_clear();
    }
    result?;

    let Detecting {
        detector,
        events,
        filtered,
        ..
    } = detecting;
    let counts = (inputs.len(), events, filtered + pruned_rows, 0);
    finish(detector, out, counts, problems, started, options.keep_state)
}

/// How many row groups past the one being decoded are fetched ahead from a store (each is its
/// projected column chunks: a few MiB).
const READ_AHEAD: usize = 2;

fn progress_bar(rows: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(rows);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {human_pos}/{human_len} rows, {rate}, at {msg}",
        )
        .expect("a valid template")
        .with_key("rate", crate::report::write_rate)
        .progress_chars("=> "),
    );
    bar
}

struct Context<'a> {
    plan: &'a [Step],
    names: &'a [String],
    ordered: bool,
    strict: bool,
    filter: TimeFilter,
}

/// The detecting side.
struct Detecting {
    detector: Detector,
    decoders: Vec<BatchDecoder>,
    alerts: Vec<Alert>,
    bad: Vec<BadRow>,
    events: u64,
    filtered: u64,
    progress: Option<indicatif::ProgressBar>,
    /// The step being read and whether its rows skip the reorder buffer.
    in_order_step: Option<(usize, bool)>,
    /// The reads of an in-order row group, applied when it is complete.
    chunk: Vec<BufferedRead>,
}

/// Where a batch's rows go as they are decoded: straight to the detector, or, for a row group
/// in order, its reads to the chunk applied when the row group is complete.
struct Feed<'a> {
    detector: ById<'a>,
    in_order: bool,
    chunk: &'a mut Vec<BufferedRead>,
    alerts: &'a mut Vec<Alert>,
    /// Rows handed over.
    rows: u64,
}

/// The detector names tables and principals, and decides reads, for the Parquet decoder.
impl Names for ById<'_> {
    #[inline]
    fn table_id(&mut self, name: &str) -> TableId {
        self.table(name)
    }

    #[inline]
    fn principal_id(&mut self, name: &str) -> PrincipalId {
        self.principal(name)
    }

    fn is_read_action(&mut self, action: Option<&str>) -> bool {
        ById::is_read_action(self, action)
    }
}

impl Names for Feed<'_> {
    #[inline]
    fn table_id(&mut self, name: &str) -> TableId {
        self.detector.table_id(name)
    }

    #[inline]
    fn principal_id(&mut self, name: &str) -> PrincipalId {
        self.detector.principal_id(name)
    }

    fn is_read_action(&mut self, action: Option<&str>) -> bool {
        Names::is_read_action(&mut self.detector, action)
    }
}

impl Rows for Feed<'_> {
    #[inline]
    fn row(&mut self, row: DecodedRow) {
        self.rows += 1;
        if self.in_order {
            self.detector.collect_in_order(row.ts, row.read, self.chunk);
        } else {
            self.detector.observe(row.ts, row.read, self.alerts);
        }
    }

    fn change(&mut self, _row: DecodedRow, change: PermissionChange) {
        self.rows += 1;
        self.detector.observe_change(&change, self.alerts);
    }
}

impl Detecting {
    /// Whether the rows of `step` may skip the reorder buffer: they all come before the next
    /// row group's first time (so nothing read later is earlier) and nothing is buffered from
    /// before.
    fn in_order(&mut self, step: usize, context: &Context<'_>) -> bool {
        if let Some((current, in_order)) = self.in_order_step
            && current == step
        {
            return in_order;
        }
        let this = &context.plan[step];
        let before_next = match context.plan.get(step + 1) {
            None => true,
            Some(next) => matches!((this.max_ts, next.min_ts), (Some(max), Some(min)) if max < min),
        };
        let in_order = context.ordered && before_next && self.detector.buffered() == 0;
        self.in_order_step = Some((step, in_order));
        in_order
    }

    fn handle(
        &mut self,
        message: Decoded,
        context: &Context<'_>,
        out: &mut dyn Write,
        problems: &mut Problems,
    ) -> Result<(), ReplayError> {
        match message {
            Decoded::Batch { step, batch } => {
                let in_order = self.in_order(step, context);
                let step = &context.plan[step];
                let name = &context.names[step.file];
                self.bad.clear();
                // With `in_order`, no later input overlaps these rows: their reads are
                // collected for `ById::apply_chunk` instead of entering the reorder buffer.
                let mut feed = Feed {
                    detector: self.detector.by_id(),
                    in_order,
                    chunk: &mut self.chunk,
                    alerts: &mut self.alerts,
                    rows: 0,
                };
                let filtered = self.decoders[step.file].decode(
                    &batch,
                    &mut feed,
                    &context.filter,
                    &mut self.bad,
                );
                let rows = feed.rows;
                let filtered = match filtered {
                    Ok(filtered) => filtered,
                    Err(error) => {
                        return self.failed(context, step, error, problems);
                    }
                };
                for bad in &self.bad {
                    problems.bad_row(
                        name,
                        step.row_group,
                        bad.row as u64,
                        bad.column,
                        &bad.problem,
                    );
                }
                self.events += rows;
                self.filtered += filtered;
                if let Some(bar) = &self.progress {
                    bar.inc(batch.num_rows() as u64);
                    if let Some(newest) = self.detector.newest_event() {
                        bar.set_message(format_ts(newest));
                    }
                }
            }
            Decoded::Done { step } => self.row_group_done(step, context),
            Decoded::Failed { step, error } => {
                self.failed(context, &context.plan[step], error, problems)?;
                // What was read of the row group still counts; the rest is lost.
                self.row_group_done(step, context);
            }
        }
        write_alerts(out, &mut self.alerts)
    }

    /// A row group is read: apply it if it was collected in order, then let the watermark move
    /// up to the next row group's first time.
    fn row_group_done(&mut self, step: usize, context: &Context<'_>) {
        let next = context.plan.get(step + 1).and_then(|s| s.min_ts);
        let in_order = self.in_order(step, context);
        if in_order {
            self.detector
                .by_id()
                .apply_chunk(&self.chunk, next, &mut self.alerts);
            self.chunk.clear();
        }
        if context.ordered
            && let Some(next) = next
        {
            self.detector.advance(next, &mut self.alerts);
            // A row group read in order was applied above, up to `next`.
            if !in_order {
                self.detector.by_id().apply_final(&mut self.alerts);
            }
        }
    }

    fn failed(
        &mut self,
        context: &Context<'_>,
        step: &Step,
        error: String,
        problems: &mut Problems,
    ) -> Result<(), ReplayError> {
        let name = &context.names[step.file];
        let what = format!("row group {} unreadable, skipped", step.row_group);
        if context.strict {
            return Err(ReplayError::StrictUnreadable(format!(
                "{name}: {what}: {error}"
            )));
        }
        problems.unreadable(name, &what, &error);
        Ok(())
    }
}
