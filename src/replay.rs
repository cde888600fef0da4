//! `exposure replay`: reads the inputs in the order given as one stream of events, feeds the
//! detector, and writes alerts as JSON lines. No wall clock touches detection: the same input
//! always gives the same bytes.

use crate::config::Config;
use crate::detect::{Alert, Detector, Observed};
use crate::format::ParseError;
use crate::report::{Problems, Summary};
use crate::source::Input;
use crate::source::lines::{Line, LineReader};
use std::io::{self, Write};
use std::time::Instant;

/// A replay that had to stop.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{location}: {error} (--strict stops at the first bad line)")]
    Strict { location: String, error: ParseError },
    #[error("cannot write alerts: {0}")]
    Output(#[source] io::Error),
}

/// How the replay went: the summary and whether every input was read to its end.
#[derive(Debug)]
pub struct ReplayOutcome {
    pub summary: Summary,
    pub complete: bool,
}

/// Replays `inputs` through a detector built from `config`, writing alerts to `out`.
pub fn replay(
    config: &Config,
    inputs: &[Input],
    strict: bool,
    out: &mut dyn Write,
    problems: &mut Problems,
) -> Result<ReplayOutcome, ReplayError> {
    let started = Instant::now();
    let mut detector = Detector::new(config.detector.clone());
    let mut alerts: Vec<Alert> = Vec::new();
    let mut events = 0u64;
    let lateness = config.detector.lateness;
    let parser = &config.input.jsonl;

    for input in inputs {
        let name = input.display_name();
        let reader = match input.open() {
            Ok(reader) => reader,
            Err(e) => {
                problems.unreadable(&name, "cannot open", &e);
                continue;
            }
        };
        let mut lines = LineReader::new(reader, config.input.max_line_bytes);
        loop {
            let (line_no, line) = match lines.next_line() {
                Ok(Some(next)) => next,
                Ok(None) => break,
                Err(e) => {
                    problems.unreadable(&name, "read error, rest of input skipped", &e);
                    break;
                }
            };
            let parsed = match line {
                Line::Text(bytes) => parser.parse(bytes),
                Line::TooLong => Err(ParseError::TooLong {
                    max_line_bytes: config.input.max_line_bytes,
                }),
            };
            match parsed {
                Ok(Some(event)) => {
                    events += 1;
                    if let Observed::Late { behind } =
                        detector.observe(&event.as_event(), &mut alerts)
                    {
                        problems.late(&name, line_no, behind, lateness);
                    }
                    if !alerts.is_empty() {
                        write_alerts(out, &mut alerts)?;
                    }
                }
                Ok(None) => {}
                Err(error) => {
                    if strict {
                        return Err(ReplayError::Strict {
                            location: Problems::location(&name, line_no, &error),
                            error,
                        });
                    }
                    problems.malformed(&name, line_no, &error);
                }
            }
        }
    }
    detector.finish(&mut alerts);
    write_alerts(out, &mut alerts)?;
    out.flush().map_err(ReplayError::Output)?;

    let stats = detector.stats();
    Ok(ReplayOutcome {
        summary: Summary {
            inputs: inputs.len(),
            events,
            reads: stats.reads,
            malformed: problems.malformed,
            late: stats.late,
            tables: detector.table_count(),
            alerts: stats.alerts,
            windows: stats.windows_opened,
            elapsed: started.elapsed(),
        },
        complete: problems.unreadable_inputs == 0,
    })
}

/// Writes and clears `alerts`, one JSON object per line.
pub fn write_alerts(out: &mut dyn Write, alerts: &mut Vec<Alert>) -> Result<(), ReplayError> {
    for alert in alerts.drain(..) {
        serde_json::to_writer(&mut *out, &alert).map_err(|e| ReplayError::Output(e.into()))?;
        out.write_all(b"\n").map_err(ReplayError::Output)?;
    }
    Ok(())
}
