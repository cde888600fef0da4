//! What the user is told about the run on stderr: the first few bad lines as `FILE:LINE:COL:
//! reason`, late events, unreadable inputs, and the one-line summary at the end. Counting never
//! stops; only printing is capped.

use crate::format::ParseError;
use crate::time::{Micros, Span};
use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::time::Duration;

/// `eprintln!` that cannot panic: when stderr is a pipe whose reader has gone (`exposure replay
/// … 2>&1 >/dev/null | head -1`), a finished run must not end in a crash (exit 101). Messages
/// that cannot be written are dropped; the exit code still tells the outcome.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::report::to_stderr(format_args!($($arg)*))
    };
}
pub(crate) use say;

/// What `say!` calls.
pub fn to_stderr(message: fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr().lock(), "{message}");
}

/// Counts problems with the input and reports the first `max_shown` of them.
pub struct Problems {
    out: Box<dyn Write + Send>,
    max_shown: usize,
    shown: usize,
    hidden: u64,
    pub malformed: u64,
    pub late: u64,
    /// Events far ahead of their input and not confirmed by the next one (a wrong clock).
    pub quarantined: u64,
    pub unreadable_inputs: u64,
    /// Well-formed records that are not data accesses (management events, other log lines).
    pub not_access: u64,
    /// The same, by reason.
    pub not_access_by: BTreeMap<crate::format::vendor::NotAccess, u64>,
    pub malformed_by_kind: BTreeMap<&'static str, u64>,
}

impl Problems {
    pub fn new(out: Box<dyn Write + Send>, max_shown: usize) -> Problems {
        Problems {
            out,
            max_shown,
            shown: 0,
            hidden: 0,
            malformed: 0,
            late: 0,
            quarantined: 0,
            unreadable_inputs: 0,
            not_access: 0,
            not_access_by: BTreeMap::new(),
            malformed_by_kind: BTreeMap::new(),
        }
    }

    /// Where a line is, as `FILE:LINE` or `FILE:LINE:COL`.
    pub fn location(input: &str, line: u64, error: &ParseError) -> String {
        match error.column() {
            Some(column) => format!("{input}:{line}:{column}"),
            None => format!("{input}:{line}"),
        }
    }

    /// Access events that named no object (counted among [`Problems::malformed`] too).
    pub fn unattributable(&self) -> u64 {
        self.malformed_by_kind
            .get(crate::format::UNATTRIBUTABLE)
            .copied()
            .unwrap_or(0)
    }

    /// Malformed lines, the unattributable access events (well-formed records) left out: the
    /// summary's `malformed`.
    pub fn bad_lines(&self) -> u64 {
        self.malformed - self.unattributable()
    }

    /// Well-formed records that gave no event: not data accesses, and access events naming no
    /// object.
    pub fn records_not_events(&self) -> u64 {
        self.not_access + self.unattributable()
    }

    pub fn malformed(&mut self, input: &str, line: u64, error: &ParseError) {
        self.malformed += 1;
        *self.malformed_by_kind.entry(error.kind()).or_default() += 1;
        let location = Problems::location(input, line, error);
        self.show(format_args!("{location}: skipped: {error}"));
    }

    /// Counts `n` records that are not access events, for reason `why` (never shown one by one:
    /// they are expected).
    pub fn not_access(&mut self, why: crate::format::vendor::NotAccess, n: u64) {
        self.not_access += n;
        *self.not_access_by.entry(why).or_default() += n;
    }

    pub fn late(&mut self, input: &str, line: u64, behind: Micros, lateness: Span) {
        self.late += 1;
        self.show(format_args!(
            "{input}:{line}: late: {} behind the watermark (lateness {lateness}); not used",
            Span(behind)
        ));
    }

    /// An event `ahead` past its input's newest that the next event did not confirm: a wrong
    /// clock, not used (see `crate::watermark`).
    pub fn quarantined(&mut self, input: &str, line: u64, ahead: Micros, max_ahead: Span) {
        self.quarantined += 1;
        self.show(format_args!(
            "{input}:{line}: quarantined: {} ahead of its input (max_ahead {max_ahead}) and the \
             next event is not; a wrong clock? not used",
            Span(ahead)
        ));
    }

    /// A Parquet row that cannot be used (a null or empty mapped value, a bad time).
    pub fn bad_row(
        &mut self,
        input: &str,
        row_group: usize,
        row: u64,
        column: &str,
        problem: &str,
    ) {
        self.malformed += 1;
        *self.malformed_by_kind.entry("bad_row").or_default() += 1;
        self.show(format_args!(
            "{input}: row group {row_group}, row {row}: skipped: column `{column}` {problem}"
        ));
    }

    /// Something the user must know about the run; always shown.
    pub fn notice(&mut self, message: &str) {
        let _ = writeln!(self.out, "{message}");
    }

    /// A command-line input that names nothing (see [`crate::source::Expanded`]); always shown.
    pub fn not_found(&mut self, error: &crate::source::InputError) {
        self.unreadable_inputs += 1;
        let _ = writeln!(self.out, "exposure: {error}");
    }

    /// An input that could not be opened or read to its end; always shown.
    pub fn unreadable(&mut self, input: &str, what: &str, error: &dyn fmt::Display) {
        self.unreadable_inputs += 1;
        let _ = writeln!(self.out, "exposure: {input}: {what}: {error}");
    }

    fn show(&mut self, message: fmt::Arguments<'_>) {
        if self.shown < self.max_shown {
            self.shown += 1;
            let _ = writeln!(self.out, "{message}");
        } else {
            self.hidden += 1;
        }
    }

    /// Says how many problems were counted but not shown.
    pub fn finish(&mut self) {
        if self.hidden > 0 {
            let _ = writeln!(
                self.out,
                "exposure: {} more skipped or late lines not shown (--max-reports)",
                self.hidden
            );
        }
        let _ = self.out.flush();
    }
}

/// A progress bar's rate as `1.23 M/s` (a key for indicatif templates).
pub fn write_rate(state: &indicatif::ProgressState, out: &mut dyn std::fmt::Write) {
    let _ = write!(out, "{:.2} M/s", state.per_sec() / 1e6);
}

/// The end-of-run summary line.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub inputs: usize,
    pub events: u64,
    pub reads: u64,
    pub malformed: u64,
    pub late: u64,
    pub tables: usize,
    pub alerts: u64,
    pub windows: u64,
    /// Events at or after `--until` (not used).
    pub filtered: u64,
    /// Windows over before `--from` (not reported).
    pub unreported: u64,
    /// Events quarantined for a wrong clock.
    pub quarantined: u64,
    /// Records that are not access events.
    pub not_access: u64,
    /// The same, by reason.
    pub not_access_by: Vec<(crate::format::vendor::NotAccess, u64)>,
    /// Access events that name no object (not counted in `malformed`).
    pub unattributable: u64,
    /// Permission changes read (grants and revokes, of privileges and role membership).
    pub permission_changes: u64,
    pub elapsed: Duration,
}

impl Summary {
    pub fn events_per_sec(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "exposure: {} input{}, {} events, {} reads, {} malformed, {} late, {} tables, {} windows, {} alerts in {:.2}s ({:.2} M events/s)",
            self.inputs,
            if self.inputs == 1 { "" } else { "s" },
            self.events,
            self.reads,
            self.malformed,
            self.late,
            self.tables,
            self.windows,
            self.alerts,
            self.elapsed.as_secs_f64(),
            self.events_per_sec() / 1e6,
        )?;
        if self.permission_changes > 0 {
            write!(f, "; {} permission changes", self.permission_changes)?;
        }
        if self.not_access > 0 {
            write!(f, "; {} records not access events", self.not_access)?;
            let reasons: Vec<String> = self
                .not_access_by
                .iter()
                .map(|(why, n)| format!("{n} {}", why.name()))
                .collect();
            if !reasons.is_empty() {
                write!(f, " ({})", reasons.join(", "))?;
            }
        }
        if self.unattributable > 0 {
            write!(
                f,
                "; {} access events unattributable (naming no table)",
                self.unattributable
            )?;
        }
        if self.quarantined > 0 {
            write!(
                f,
                "; {} events quarantined (far ahead of their input)",
                self.quarantined
            )?;
        }
        if self.filtered > 0 {
            write!(f, "; {} events at or after --until skipped", self.filtered)?;
        }
        if self.unreported > 0 {
            write!(
                f,
                "; {} window{} over before --from not reported",
                self.unreported,
                if self.unreported == 1 { "" } else { "s" }
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn shows_the_first_few_and_counts_all() {
        let sink = Shared::default();
        let mut problems = Problems::new(Box::new(sink.clone()), 2);
        let error = ParseError::Json {
            message: "expected value".into(),
            column: 3,
        };
        for line in 1..=5 {
            problems.malformed("a.jsonl", line, &error);
        }
        problems.late("a.jsonl", 9, 90_000_000, Span::from_secs(60));
        problems.finish();
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            "a.jsonl:1:3: skipped: not valid JSON: expected value\n\
             a.jsonl:2:3: skipped: not valid JSON: expected value\n\
             exposure: 4 more skipped or late lines not shown (--max-reports)\n"
        );
        assert_eq!((problems.malformed, problems.late), (5, 1));
        assert_eq!(problems.malformed_by_kind["not_json"], 5);
    }
}
