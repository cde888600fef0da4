//! Inputs nothing could be used from: a file whose every line was malformed (a PostgreSQL log
//! replayed as `--format jsonl`, canonical lines as `--format cloudtrail`). Such a run must not
//! end with exit 0 and a line of counts: the input is reported as unreadable (the exit code is
//! 1) with what it probably is, so the user sees the `--format` to give.

use crate::config::Config;
use crate::format::{DecodeSink, Decoder, Format, Line, ParseError};
use crate::report::Problems;
use crate::source::Input;
use crate::source::lines::LineReader;

/// What one input gave, counted by the detecting stage.
#[derive(Debug, Default, Clone, Copy)]
pub struct InputTally {
    /// Access events and records that are not data accesses.
    pub records: u64,
    pub malformed: u64,
}

/// Reports `input` if its every record was malformed, with a hint at its format.
pub fn report(config: &Config, input: &Input, tally: InputTally, problems: &mut Problems) {
    if tally.malformed == 0 || tally.records > 0 {
        return;
    }
    let lines = match input {
        Input::Stdin => Vec::new(),
        input => first_lines(config, input),
    };
    // Auto reads an input in the format its first line looks like: that format was tried.
    let (format, read_as) = match (config.input.format, lines.first()) {
        (Format::Auto, Some(first)) if crate::format::vendor::sniff(first) != Format::Jsonl => {
            let tried = crate::format::vendor::sniff(first);
            let read_as = format!("as {} (recognised from its first line)", tried.name());
            (tried, read_as)
        }
        (Format::Auto, _) => (Format::Auto, "in any format exposure reads".to_string()),
        (format, _) => (format, format!("as {}", format.name())),
    };
    let hint = if matches!(input, Input::Stdin) {
        "stdin cannot be read again to tell its format".to_string()
    } else {
        hint(config, format, &lines)
    };
    problems.unreadable(
        &input.display_name(),
        &format!(
            "no line could be read {read_as} ({} malformed)",
            tally.malformed
        ),
        &hint,
    );
}

/// How many lines are looked at to tell what an unreadable input is.
const SNIFFED_LINES: usize = 20;

/// The first [`SNIFFED_LINES`] lines of the file `input` that are not blank.
fn first_lines(config: &Config, input: &Input) -> Vec<Vec<u8>> {
    let mut found = Vec::new();
    let Ok(reader) = input.open() else {
        return found;
    };
    let mut lines = LineReader::new(reader, config.line_cap());
    while found.len() < SNIFFED_LINES
        && let Ok(Some((_, line))) = lines.next_line()
    {
        if let Line::Text(text) = line
            && !text.trim_ascii().is_empty()
        {
            found.push(text.to_vec());
        }
    }
    found
}

/// What lines that `format` could not read probably are: the format most of them look like.
fn hint(config: &Config, format: Format, lines: &[Vec<u8>]) -> String {
    let mut canonical = config.clone();
    canonical.input.format = Format::Jsonl;
    let mut canonical = canonical.decoder();
    let mut votes: Vec<(Format, usize)> = Vec::new();
    for line in lines {
        let looks_like = match crate::format::vendor::sniff(line) {
            Format::Jsonl if is_canonical(&mut canonical, line) => Format::Jsonl,
            Format::Jsonl => continue,
            vendor => vendor,
        };
        match votes.iter_mut().find(|(f, _)| *f == looks_like) {
            Some((_, n)) => *n += 1,
            None => votes.push((looks_like, 1)),
        }
    }
    // The most common; the first seen among equals.
    let best = votes.iter().rev().max_by_key(|(_, n)| *n).map(|(f, _)| *f);
    match best {
        Some(other) if other != format => format!(
            "it looks like {} ({}): try --format {}",
            other.name(),
            other.describe(),
            other.name()
        ),
        Some(same) => format!(
            "its lines look like {} but none could be decoded: the reports above say why",
            same.name()
        ),
        None if lines.is_empty() => format!(
            "none of its lines is within the line cap of {} bytes (`[input] max_line_bytes`): \
             raise it if its records are that long",
            config.input.max_line_bytes
        ),
        None => {
            let first = lines.first().map(Vec::as_slice).unwrap_or_default();
            let shown = String::from_utf8_lossy(&first[..first.len().min(80)]).into_owned();
            format!(
                "it does not look like a format exposure reads (`exposure replay --help` lists \
                 them); it starts {shown:?}"
            )
        }
    }
}

/// Whether `line` is an event to the canonical JSON-lines `decoder`.
fn is_canonical(decoder: &mut Decoder, line: &[u8]) -> bool {
    struct Decoded(bool);
    impl DecodeSink for Decoded {
        fn event(&mut self, _line: u64, _event: &crate::event::AccessEvent<'_>, _read: bool) {
            self.0 = true;
        }
        fn permission(&mut self, _line: u64, _change: &crate::event::PermissionChange) {
            self.0 = true;
        }
        fn not_access(&mut self, _line: u64, _why: crate::format::vendor::NotAccess) {}
        fn malformed(&mut self, _line: u64, _error: ParseError) {}
    }
    let mut decoded = Decoded(false);
    decoder.line(1, Line::Text(line), &mut decoded);
    decoded.0
}
