//! The reads (and permission changes) straight from the inputs (JSON lines in any configured
//! format, or Parquet, on disk or in a store): what a report draws its timeline from and what
//! `exposure impact` counts. No detection here: every read the decoders give is handed on with
//! its time, table, principal and the volume its log records, in input order. Bad lines and
//! unreadable inputs are counted and reported as replay reports them.

use crate::config::Config;
use crate::event::{AccessEvent, PermissionChange, ReadActions};
use crate::format::columns::{Collect, DecodedRow, Names};
use crate::format::{DecodeSink, ParseError};
use crate::intern::{Interner, PrincipalId, TableId};
use crate::report::Problems;
use crate::source::Input;
use crate::source::lines::decode_all;
use crate::source::parquet::ParquetInput;
use crate::time::{TimeFilter, Ts};
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, Int64Array};
use arrow_schema::DataType;
use std::borrow::Cow;

/// One read, as its log gives it.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    pub ts: Ts,
    pub table: &'a str,
    pub principal: &'a str,
    /// Rows and bytes read, where the log records them.
    pub rows: Option<i64>,
    pub bytes: Option<i64>,
    /// The columns read, where the log names them.
    pub columns: &'a [Cow<'a, str>],
}

/// Calls `read(ts, table, principal)` for every read in `inputs` that `filter` keeps.
pub fn reads(
    config: &Config,
    inputs: &[Input],
    filter: &TimeFilter,
    problems: &mut Problems,
    read: &mut dyn FnMut(Ts, &str, &str),
) {
    scan(
        config,
        inputs,
        filter,
        problems,
        &mut |seen: &Seen<'_>| read(seen.ts, seen.table, seen.principal),
        &mut |_| {},
    );
}

/// Calls `read` for every read in `inputs` that `filter` keeps, and `change` for every
/// permission change (whatever its time).
pub fn scan(
    config: &Config,
    inputs: &[Input],
    filter: &TimeFilter,
    problems: &mut Problems,
    read: &mut dyn FnMut(&Seen<'_>),
    change: &mut dyn FnMut(&PermissionChange),
) {
    for input in inputs {
        let name = input.display_name();
        if let Some(source) = input.parquet_source() {
            let fields = &config.input.fields;
            let file = match ParquetInput::open_with_volumes(source, fields, config.input.ts_unit) {
                Ok(file) => file,
                Err(e) => {
                    problems.unreadable(&name, "skipped", &e);
                    continue;
                }
            };
            if let Err(e) = parquet_reads(config, &file, filter, read, change) {
                problems.unreadable(&name, "read error, rest of input skipped", &e);
            }
            continue;
        }
        let reader = match input.open() {
            Ok(reader) => reader,
            Err(e) => {
                problems.unreadable(&name, "cannot open", &e);
                continue;
            }
        };
        let mut decoder = config.decoder();
        let mut sink = Reads {
            filter,
            read: &mut *read,
            change: &mut *change,
            problems: &mut *problems,
            input: &name,
        };
        decode_all(
            reader,
            &mut decoder,
            &mut sink,
            |_| false,
            |sink, e| {
                sink.problems
                    .unreadable(sink.input, "read error, rest of input skipped", &e)
            },
        );
    }
}

/// [`scan`] on up to `threads` threads, each with its own tally (from `tally`), which `read`
/// is given the reads the thread decodes; the tallies come back in no particular order, for
/// the caller to merge — what it gathers must not depend on the order reads come in. Inputs
/// are shared out whole; a large plain file of canonical JSON lines is also cut into byte
/// ranges at line breaks, one per thread (a record never spans lines there). What is wrong
/// with the inputs is not reported: the caller's first pass did.
pub fn scan_parallel<T: Send>(
    config: &Config,
    inputs: &[Input],
    filter: &TimeFilter,
    threads: usize,
    tally: impl Fn() -> T + Sync,
    read: impl Fn(&mut T, &Seen<'_>) + Sync,
) -> Vec<T> {
    scan_split(config, inputs, filter, threads, SPLIT_ABOVE, tally, read)
}

/// [`scan_parallel`], cutting files from `split_above` bytes.
fn scan_split<T: Send>(
    config: &Config,
    inputs: &[Input],
    filter: &TimeFilter,
    threads: usize,
    split_above: u64,
    tally: impl Fn() -> T + Sync,
    read: impl Fn(&mut T, &Seen<'_>) + Sync,
) -> Vec<T> {
    let threads = threads.max(1);
    let mut work: Vec<Work> = Vec::new();
    for (index, input) in inputs.iter().enumerate() {
        match splittable(config, input, split_above) {
            Some(size) if threads > 1 => {
                let step = size.div_ceil(threads as u64);
                for k in 0..threads as u64 {
                    let (start, end) = (k * step, ((k + 1) * step).min(size));
                    if start < end {
                        work.push(Work::Range { index, start, end });
                    }
                }
            }
            _ => work.push(Work::Whole(index)),
        }
    }
    let queue = std::sync::Mutex::new(std::collections::VecDeque::from(work));
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (queue, tally, read) = (&queue, &tally, &read);
                scope.spawn(move || {
                    let mut mine = tally();
                    let mut quiet = Problems::new(Box::new(std::io::sink()), 0);
                    let mut each = |seen: &Seen<'_>| read(&mut mine, seen);
                    loop {
                        let next = queue.lock().expect("not poisoned").pop_front();
                        let Some(work) = next else { break };
                        match work {
                            Work::Whole(index) => scan(
                                config,
                                &inputs[index..=index],
                                filter,
                                &mut quiet,
                                &mut each,
                                &mut |_| {},
                            ),
                            Work::Range { index, start, end } => {
                                let Input::File(path) = &inputs[index] else {
                                    continue;
                                };
                                let Ok(reader) = range_of(path, start, end) else {
                                    continue;
                                };
                                let mut decoder = config.decoder();
                                let mut sink = Reads {
                                    filter,
                                    read: &mut each,
                                    change: &mut |_| {},
                                    problems: &mut quiet,
                                    input: "",
                                };
                                decode_all(reader, &mut decoder, &mut sink, |_| false, |_, _| {});
                            }
                        }
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a scanning thread does not panic"))
            .collect()
    })
}

/// A share of the inputs for one thread.
enum Work {
    Whole(usize),
    /// The lines of a plain file that begin in `start..end`.
    Range {
        index: usize,
        start: u64,
        end: u64,
    },
}

/// Files below this are read whole by one thread.
const SPLIT_ABOVE: u64 = 64 << 20;

/// The size of `input` if it is a large plain (not gzip) local file whose first line is a
/// canonical JSON-lines record without an envelope, read in the canonical format: one record
/// a line, so that cutting it at line breaks cuts no record.
fn splittable(config: &Config, input: &Input, split_above: u64) -> Option<u64> {
    use crate::format::Format;
    use std::io::{BufRead, Read};
    let Input::File(path) = input else {
        return None;
    };
    let size = std::fs::metadata(path).ok()?.len();
    if size < split_above || !matches!(config.input.format, Format::Jsonl | Format::Auto) {
        return None;
    }
    let mut first = Vec::new();
    std::io::BufReader::new(std::fs::File::open(path).ok()?)
        .take(1 << 20)
        .read_until(b'\n', &mut first)
        .ok()?;
    let plain = !first.starts_with(&[0x1f, 0x8b]);
    let canonical = crate::format::vendor::sniff(&first) == Format::Jsonl
        && crate::format::envelope::Envelope::of(
            config.input.vendor.envelope,
            config.input.vendor.record_field.as_deref(),
            &first,
        )
        .is_none();
    (plain && canonical).then_some(size)
}

/// The bytes of the lines of `path` that begin in `start..end`: from the first line break at
/// or after `start - 1` (the line under way there is the previous range's), through the line
/// break that ends the line under way at `end`.
fn range_of(path: &std::path::Path, start: u64, end: u64) -> std::io::Result<impl std::io::Read> {
    use std::io::{BufRead, Seek, SeekFrom};
    let mut file = std::io::BufReader::with_capacity(1 << 16, std::fs::File::open(path)?);
    let mut at = start;
    if start > 0 {
        file.seek(SeekFrom::Start(start - 1))?;
        let mut skipped = Vec::new();
        file.read_until(b'\n', &mut skipped)?;
        at = start - 1 + skipped.len() as u64;
    }
    Ok(UntilLineEnd {
        inner: file,
        left: end.saturating_sub(at),
        done: at >= end,
    })
}

/// A reader that gives `left` bytes, then the rest of the line under way (none when they end
/// with a line break), then ends.
struct UntilLineEnd<R> {
    inner: R,
    left: u64,
    done: bool,
}

impl<R: std::io::BufRead> std::io::Read for UntilLineEnd<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.done || out.is_empty() {
            return Ok(0);
        }
        let available = self.inner.fill_buf()?;
        if available.is_empty() {
            return Ok(0);
        }
        let n = if self.left > 0 {
            let n = available.len().min(out.len()).min(self.left as usize);
            self.left -= n as u64;
            // The range ends at a line's end: the next line is the next range's.
            self.done = self.left == 0 && available[n - 1] == b'\n';
            n
        } else {
            // Past the range: through the line break that ends the line under way.
            let n = available.len().min(out.len());
            match available[..n].iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.done = true;
                    i + 1
                }
                None => n,
            }
        };
        out[..n].copy_from_slice(&available[..n]);
        self.inner.consume(n);
        Ok(n)
    }
}

struct Reads<'a> {
    filter: &'a TimeFilter,
    read: &'a mut dyn FnMut(&Seen<'_>),
    change: &'a mut dyn FnMut(&PermissionChange),
    problems: &'a mut Problems,
    input: &'a str,
}

impl DecodeSink for Reads<'_> {
    fn event(&mut self, _line: u64, event: &AccessEvent<'_>, read: bool) {
        if read && self.filter.keeps(event.ts) {
            (self.read)(&Seen {
                ts: event.ts,
                table: &event.table,
                principal: &event.principal,
                rows: event.rows,
                bytes: event.bytes,
                columns: &event.columns,
            });
        }
    }

    fn permission(&mut self, _line: u64, change: &PermissionChange) {
        (self.change)(change);
    }

    fn not_access(&mut self, _line: u64, why: crate::format::vendor::NotAccess) {
        self.problems.not_access(why, 1);
    }

    fn malformed(&mut self, line: u64, error: ParseError) {
        self.problems.malformed(self.input, line, &error);
    }
}

/// Names for the Parquet decoder: its own interners and the configured read actions.
struct ScanNames {
    tables: Interner<TableId>,
    principals: Interner<PrincipalId>,
    actions: ReadActions,
}

impl Names for ScanNames {
    fn table_id(&mut self, name: &str) -> TableId {
        self.tables.intern(name)
    }

    fn principal_id(&mut self, name: &str) -> PrincipalId {
        self.principals.intern(name)
    }

    fn is_read_action(&mut self, action: Option<&str>) -> bool {
        self.actions.is_read(action)
    }
}

fn parquet_reads(
    config: &Config,
    file: &ParquetInput,
    filter: &TimeFilter,
    read: &mut dyn FnMut(&Seen<'_>),
    change: &mut dyn FnMut(&PermissionChange),
) -> Result<(), String> {
    let mut names = ScanNames {
        tables: Interner::default(),
        principals: Interner::default(),
        actions: config.detector.read_actions.clone(),
    };
    let mut decoder = file.decoder();
    let (mut rows, mut changes, mut bad) = (Vec::new(), Vec::new(), Vec::new());
    for (row_group, span) in file.row_groups.iter().enumerate() {
        if !filter.overlaps(span.min_ts, span.max_ts) {
            continue;
        }
        let batches = file.read_row_group(row_group, crate::replay::parquet::BATCH_ROWS)?;
        for batch in batches {
            let batch = batch.map_err(|e| e.to_string())?;
            rows.clear();
            let mut collect = Collect {
                names: &mut names,
                rows: &mut rows,
                changes: &mut changes,
            };
            decoder.decode(&batch, &mut collect, filter, &mut bad)?;
            let volume = |column: Option<usize>| -> Result<Option<Int64Array>, String> {
                let Some(column) = column else {
                    return Ok(None);
                };
                let cast = arrow_cast::cast(batch.column(column), &DataType::Int64)
                    .map_err(|e| e.to_string())?;
                Ok(Some(cast.as_primitive::<Int64Type>().clone()))
            };
            let (row_counts, byte_counts) = file.volume_columns();
            let (row_counts, byte_counts) = (volume(row_counts)?, volume(byte_counts)?);
            let at = |array: &Option<Int64Array>, row: u32| {
                let array = array.as_ref()?;
                let row = row as usize;
                (row < array.len() && array.is_valid(row)).then(|| array.value(row))
            };
            let lists = match file.column_names_column() {
                Some(column) => {
                    let item = arrow_schema::Field::new_list_field(DataType::Utf8, true);
                    let list = DataType::List(std::sync::Arc::new(item));
                    let cast =
                        arrow_cast::cast(batch.column(column), &list).map_err(|e| e.to_string())?;
                    Some(cast.as_list::<i32>().clone())
                }
                None => None,
            };
            let mut columns: Vec<Cow<'_, str>> = Vec::new();
            for &DecodedRow { ts, read: ids, row } in &rows {
                if let Some((table, principal)) = ids {
                    columns.clear();
                    let row = row as usize;
                    if let Some(lists) = lists.as_ref().filter(|l| row < l.len() && l.is_valid(row))
                    {
                        let listed = lists.value(row);
                        let listed = listed.as_string::<i32>().iter().flatten();
                        columns.extend(listed.map(|n| Cow::Owned(n.to_string())));
                    }
                    read(&Seen {
                        ts,
                        table: names.tables.name(table),
                        principal: names.principals.name(principal),
                        rows: at(&row_counts, row as u32),
                        bytes: at(&byte_counts, row as u32),
                        columns: &columns,
                    });
                }
            }
            for (_, permission) in changes.drain(..) {
                change(&permission);
            }
            bad.clear();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn a_file_cut_for_two_threads_gives_the_reads_of_one_pass() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reads.jsonl");
        let mut text = String::new();
        for i in 0..5000 {
            text.push_str(&format!(
                "{{\"ts\":\"2026-03-18T10:{:02}:{:02}.000Z\",\"principal\":\"p{}\",\"table\":\"t{}\",\"rows\":{i}}}\n",
                (i / 60) % 60,
                i % 60,
                i % 97,
                i % 7
            ));
        }
        std::fs::write(&path, &text).unwrap();
        let config = Config::load(None, &Default::default(), None).unwrap();
        let inputs = [Input::File(path)];
        let filter = TimeFilter::default();
        let collect = |tally: &mut Vec<(Ts, String, String, Option<i64>)>, r: &Seen<'_>| {
            tally.push((r.ts, r.table.into(), r.principal.into(), r.rows));
        };
        let mut one = scan_split(&config, &inputs, &filter, 1, 0, Vec::new, collect);
        let mut cut: Vec<_> = scan_split(&config, &inputs, &filter, 2, 1, Vec::new, collect)
            .into_iter()
            .flatten()
            .collect();
        let mut one = one.pop().unwrap();
        assert_eq!(one.len(), 5000);
        one.sort();
        cut.sort();
        assert_eq!(cut, one);
    }

    #[test]
    fn byte_ranges_cut_at_line_breaks_give_every_line_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lines.jsonl");
        let text: String = (0..200)
            .map(|i| format!("{{\"n\":{i},\"pad\":\"{}\"}}\n", "x".repeat(i % 17)))
            .collect();
        std::fs::write(&path, &text).unwrap();
        let size = text.len() as u64;
        // Every cut, into two and into several ranges, including at and beside line breaks.
        for parts in [2u64, 3, 7, 64] {
            for shift in 0..5u64 {
                let step = size.div_ceil(parts) + shift;
                let mut whole = String::new();
                let mut start = 0;
                while start < size {
                    let end = (start + step).min(size);
                    let mut got = String::new();
                    range_of(&path, start, end)
                        .unwrap()
                        .read_to_string(&mut got)
                        .unwrap();
                    assert!(
                        got.is_empty() || got.ends_with('\n'),
                        "{start}..{end}: {got:?}"
                    );
                    whole.push_str(&got);
                    start = end;
                }
                assert_eq!(whole, text, "{parts} parts, shift {shift}");
            }
        }
    }
}
