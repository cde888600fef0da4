//! `exposure replay`: feeds archived inputs through the detector and writes alerts as JSON lines.
//! No wall clock touches detection: the same events always give the same bytes, from JSON lines
//! ([`lines`]) or Parquet ([`parquet`]).

pub mod lines;
pub mod merge;
pub mod parquet;
pub mod sorted;
pub mod unusable;

use crate::config::Config;
use crate::detect::Alert;
use crate::format::ParseError;
use crate::report::{Problems, Summary};
use crate::source::Input;
use crate::source::parquet::{ParquetInputError, SchemaError};
use crate::time::TimeFilter;
use std::io::{self, Seek, Write};

/// How to replay.
#[derive(Debug, Clone, Copy)]
pub struct ReplayOptions {
    /// Stop at the first bad line or unreadable file.
    pub strict: bool,
    /// 1: read, parse and detect on one thread. Above 1: JSON lines are parsed on this many
    /// threads beside a reading and a detecting one; Parquet is decoded on a second thread.
    pub threads: usize,
    /// `--from` / `--until`.
    pub filter: TimeFilter,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// Keep the detector's state at the end instead of closing open windows (`exposure
    /// learn`): the outcome then carries its snapshot.
    pub keep_state: bool,
    /// What to do with an input out of order beyond `lateness`.
    pub disorder: Disorder,
}

/// What to do when an input is out of order beyond `lateness` (an event more than `lateness`
/// behind the input's newest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disorder {
    /// Replay again with every event sorted by time, in memory up to `memory` bytes and on
    /// disk beyond. Alerts are held back until the first pass knows whether it is needed.
    Sort { memory: usize },
    /// Report the late events, leave them out, and say so (`--no-sort`): the exit code is 1.
    Refuse,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            strict: false,
            threads: 1,
            filter: TimeFilter::default(),
            progress: false,
            keep_state: false,
            disorder: Disorder::Sort {
                memory: sorted::DEFAULT_SORT_MEMORY,
            },
        }
    }
}

/// A replay that had to stop.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{location}: {error} (--strict stops at the first bad line)")]
    Strict { location: String, error: ParseError },
    #[error("{0} (--strict stops at the first unreadable input)")]
    StrictUnreadable(String),
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error("cannot write alerts: {0}")]
    Output(#[source] io::Error),
    #[error("cannot sort events in temporary files: {0}")]
    Temp(#[source] io::Error),
    #[error(
        "{0}; stdin cannot be read twice to sort it: write it to a file first, or pass --no-sort"
    )]
    UnorderedStdin(OutOfOrder),
}

/// The first event found more than `lateness` behind its own input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutOfOrder {
    pub input: String,
    pub line: u64,
    /// How far behind the input's watermark (its newest event time − lateness).
    pub behind: crate::time::Micros,
    /// Events found so.
    pub events: u64,
}

impl std::fmt::Display for OutOfOrder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: out of order beyond lateness ({} behind; {} event{} so in all)",
            self.input,
            self.line,
            crate::time::Span(self.behind),
            self.events,
            if self.events == 1 { "" } else { "s" }
        )
    }
}

impl From<ParquetInputError> for ReplayError {
    fn from(e: ParquetInputError) -> Self {
        match e {
            ParquetInputError::Schema(schema) => ReplayError::Schema(schema),
            unreadable => ReplayError::StrictUnreadable(unreadable.to_string()),
        }
    }
}

/// How the replay went: the summary and whether every input was read to its end.
#[derive(Debug)]
pub struct ReplayOutcome {
    pub summary: Summary,
    pub complete: bool,
    /// The detector's state at the end, with `keep_state`.
    pub state: Option<crate::detect::DetectorSnapshot>,
    /// Whether an input was out of order beyond `lateness`: its events were sorted
    /// ([`Disorder::Sort`]) or left out as late ([`Disorder::Refuse`]).
    pub out_of_order: Option<OutOfOrder>,
    /// (input, line) of the events quarantined for a wrong clock.
    pub quarantined: Vec<(usize, u64)>,
    /// With `record_baselines` in the detector's settings: each window's baseline as it
    /// opened, by window id (see [`crate::detect::Detector::take_baselines`]).
    pub baselines: Vec<crate::detect::BaselineAtOpen>,
    /// With `record_grant_states` in the detector's settings: every permission change and
    /// the tables' states as read grants were made (see
    /// [`crate::detect::Detector::take_grant_states`]).
    pub grant_states: Option<crate::detect::GrantStates>,
}

/// Replays `inputs` (JSON lines, vendor logs, Parquet, or a mix) through a detector built
/// from `config`.
pub fn replay(
    config: &Config,
    inputs: &[Input],
    options: &ReplayOptions,
    out: &mut dyn Write,
    problems: &mut Problems,
) -> Result<ReplayOutcome, ReplayError> {
    // All Parquet: read column-wise. Parquet among line inputs is read as lines (its rows as
    // JSON objects) and merged with them by event time.
    if !inputs.is_empty() && inputs.iter().all(Input::is_parquet) {
        return parquet::replay_parquet(config, inputs, options, out, problems);
    }
    let Disorder::Sort { memory } = options.disorder else {
        return lines::replay_lines(config, inputs, options, out, problems, true);
    };
    // Alerts wait in a temporary file until it is known that no input needs sorting.
    let spool = tempfile::tempfile().map_err(ReplayError::Temp)?;
    let mut spool = io::BufWriter::with_capacity(1 << 16, spool);
    let outcome = lines::replay_lines(config, inputs, options, &mut spool, problems, false)?;
    let Some(out_of_order) = outcome.out_of_order else {
        let mut spool = spool
            .into_inner()
            .map_err(|e| ReplayError::Temp(e.into_error()))?;
        spool.rewind().map_err(ReplayError::Temp)?;
        io::copy(&mut spool, out).map_err(ReplayError::Output)?;
        return Ok(outcome);
    };
    if inputs.iter().any(|i| matches!(i, Input::Stdin)) {
        return Err(ReplayError::UnorderedStdin(out_of_order));
    }
    problems.notice(&format!(
        "exposure: {out_of_order}: sorting every event by time and replaying again (--no-sort \
         refuses instead)"
    ));
    let quarantined = outcome.quarantined;
    problems.quarantined = quarantined.len() as u64;
    let (mut outcome, runs) = sorted::replay_sorted(
        config,
        inputs,
        options,
        (memory, &quarantined),
        out,
        problems,
    )?;
    outcome.quarantined = quarantined;
    if runs > 0 {
        problems.notice(&format!(
            "exposure: sorted in {runs} runs on disk (--sort-memory {} MiB)",
            memory >> 20
        ));
    }
    outcome.out_of_order = Some(out_of_order);
    Ok(outcome)
}

/// Ends a replay: flushes the detector's open windows and the output, and sums up.
fn finish(
    mut detector: crate::detect::Detector,
    out: &mut dyn Write,
    counts: (usize, u64, u64, u64),
    problems: &Problems,
    started: std::time::Instant,
    keep_state: bool,
) -> Result<ReplayOutcome, ReplayError> {
    let (inputs, events, filtered, late_before) = counts;
    let mut alerts = Vec::new();
    let state = if keep_state {
        detector.settle(&mut alerts);
        Some(detector.snapshot())
    } else {
        detector.finish(&mut alerts);
        None
    };
    write_alerts(out, &mut alerts)?;
    out.flush().map_err(ReplayError::Output)?;
    let stats = detector.stats();
    let baselines = detector.take_baselines();
    let grant_states = detector.take_grant_states();
    Ok(ReplayOutcome {
        summary: Summary {
            inputs,
            events,
            reads: stats.reads,
            malformed: problems.bad_lines(),
            unattributable: problems.unattributable(),
            late: stats.late + late_before,
            tables: detector.table_count(),
            alerts: stats.alerts,
            windows: stats.windows_opened,
            filtered,
            unreported: stats.windows_unreported,
            not_access: problems.not_access,
            not_access_by: problems
                .not_access_by
                .iter()
                .map(|(w, n)| (*w, *n))
                .collect(),
            quarantined: problems.quarantined,
            permission_changes: stats.permission_changes,
            elapsed: started.elapsed(),
        },
        complete: problems.unreadable_inputs == 0,
        state,
        out_of_order: None,
        quarantined: Vec::new(),
        baselines,
        grant_states,
    })
}

/// Reads applied per chunk, table by table (see [`crate::detect::Detector::apply_in_chunks`]):
/// enough that each table gets a run of reads, few enough to stay in cache.
pub const CHUNK_READS: usize = 1 << 18;

/// Writes and clears `alerts`, one JSON object per line.
pub fn write_alerts(out: &mut dyn Write, alerts: &mut Vec<Alert>) -> Result<(), ReplayError> {
    for alert in alerts.drain(..) {
        serde_json::to_writer(&mut *out, &alert).map_err(|e| ReplayError::Output(e.into()))?;
        out.write_all(b"\n").map_err(ReplayError::Output)?;
    }
    Ok(())
}
