//! `exposure replay`: feeds archived inputs through the detector and writes alerts as JSON lines.
//! No wall clock touches detection: the same events always give the same bytes, from JSON lines
//! ([`lines`]) or Parquet ([`parquet`]).

pub mod lines;
pub mod parquet;

use crate::config::Config;
use crate::detect::Alert;
use crate::format::ParseError;
use crate::report::{Problems, Summary};
use crate::source::Input;
use crate::source::parquet::{ParquetInputError, SchemaError};
use crate::time::TimeFilter;
use std::io::{self, Write};

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
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            strict: false,
            threads: 1,
            filter: TimeFilter::default(),
            progress: false,
            keep_state: false,
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
}

/// Replays `inputs` (all JSON lines or all Parquet) through a detector built from `config`.
pub fn replay(
    config: &Config,
    inputs: &[Input],
    options: &ReplayOptions,
    out: &mut dyn Write,
    problems: &mut Problems,
) -> Result<ReplayOutcome, ReplayError> {
    if inputs.iter().any(|i| matches!(i, Input::Parquet(_))) {
        parquet::replay_parquet(config, inputs, options, out, problems)
    } else {
        lines::replay_lines(config, inputs, options, out, problems)
    }
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
    let state = keep_state.then(|| detector.snapshot());
    if !keep_state {
        detector.finish(&mut alerts);
    }
    write_alerts(out, &mut alerts)?;
    out.flush().map_err(ReplayError::Output)?;
    let stats = detector.stats();
    Ok(ReplayOutcome {
        summary: Summary {
            inputs,
            events,
            reads: stats.reads,
            malformed: problems.malformed,
            late: stats.late + late_before,
            tables: detector.table_count(),
            alerts: stats.alerts,
            windows: stats.windows_opened,
            filtered,
            not_access: problems.not_access,
            elapsed: started.elapsed(),
        },
        complete: problems.unreadable_inputs == 0,
        state,
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
