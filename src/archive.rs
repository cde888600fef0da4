//! `exposure archive`: converts access logs into a Parquet archive in the canonical schema —
//! `ts` timestamp(µs, UTC), `principal`, `table`, `action` (dictionary-encoded strings), `rows`,
//! `bytes` (nullable int64), and for permission changes `grantee`, `privilege`, `statement`
//! (nullable dictionary-encoded strings; a row with a grantee is a change, `action` `GRANT` or
//! `REVOKE`, `principal` its actor, `table` its object) — zstd-compressed, sorted by time, row
//! groups of about a million rows with statistics, one folder per day
//! (`dt=YYYY-MM-DD/part-NNNNN.parquet`).
//!
//! Events are buffered per day and a day is written once the newest event is `lateness` past
//! its end (or at the end of the input), so memory holds about a day of events. An event for a
//! day already written goes into a further part file of that day: nothing is dropped. Each file
//! is written under a hidden temporary name, synced, then renamed, so an interrupted run never
//! leaves a file that looks complete.
//!
//! An archive is complete or says it is not: each finished part is appended to
//! `_progress.jsonl`, and `_manifest.json` (see [`crate::source::manifest`]) is written last,
//! listing every part; replay refuses the parts of an archive without it. Parts are named by
//! their day and their rank in the run, so the same inputs give the same files: `--resume`
//! (a [`Start::Resume`]) re-reads the inputs and skips the parts already written, `--replace`
//! removes an earlier archive first, and a folder that is not empty is otherwise refused, so
//! a day is never archived twice.

use crate::config::Config;
use crate::event::AccessEvent;
use crate::format::{DecodeSink, ParseError};
use crate::intern::Interner;
use crate::replay::unusable::{self, InputTally};
use crate::report::Problems;
use crate::source::Input;
use crate::source::lines::decode_all;
use crate::source::manifest::{
    self, ArchiveSettings, InputRecord, MANIFEST_FILE, Manifest, PROGRESS_FILE, PartRecord,
    ProgressHeader,
};
use crate::time::{MICROS_PER_SEC, Ts, format_ts};
use arrow_array::builder::{Int64Builder, ListBuilder, StringDictionaryBuilder};
use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, RecordBatch, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Rows per row group.
pub const ROW_GROUP_ROWS: usize = 1 << 20;

const DAY: i64 = 86_400 * MICROS_PER_SEC;

/// An archive that had to stop.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{location}: {error} (--strict stops at the first bad line)")]
    Strict { location: String, error: ParseError },
    #[error("cannot write {path}: {message}")]
    Write { path: PathBuf, message: String },
    #[error(
        "{0}: not empty: archiving into it would add parts beside what is there (days twice); \
         --resume finishes an interrupted archive of the same inputs, --replace removes the \
         archive there first, or give an empty folder"
    )]
    NotEmpty(PathBuf),
    #[error("{path}: {message}")]
    Start { path: PathBuf, message: String },
}

/// How `archive` treats what `--out` already holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Start {
    /// The folder must be empty or new.
    #[default]
    Fresh,
    /// An earlier archive there (its parts, manifest and progress) is removed first.
    Replace,
    /// An interrupted archive of the same inputs and settings is finished: its parts already
    /// written are kept, the rest written.
    Resume,
}

/// What the manifest records besides the parts: the settings and the inputs.
fn progress_header(
    config: &Config,
    inputs: &[Input],
    config_digest: Option<String>,
) -> ProgressHeader {
    ProgressHeader {
        writer: format!("exposure {}", env!("CARGO_PKG_VERSION")),
        settings: ArchiveSettings {
            format: config.input.format.name().to_string(),
            lateness_secs: config.detector.lateness.micros() / MICROS_PER_SEC,
            config: config_digest,
        },
        inputs: inputs
            .iter()
            .map(|input| InputRecord {
                name: input.display_name(),
                bytes: input.size(),
            })
            .collect(),
    }
}

/// What was archived.
#[derive(Debug, Clone, Default)]
pub struct ArchiveSummary {
    pub events: u64,
    pub malformed: u64,
    pub files: Vec<PathBuf>,
    pub days: usize,
    pub elapsed: Duration,
}

impl std::fmt::Display for ArchiveSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exposure: archived {} events into {} files over {} days, {} malformed lines skipped, in {:.2}s",
            self.events,
            self.files.len(),
            self.days,
            self.malformed,
            self.elapsed.as_secs_f64()
        )
    }
}

/// One buffered event, its strings interned.
#[derive(Debug, Clone, Copy)]
struct Row {
    ts: Ts,
    principal: u32,
    table: u32,
    action: Option<u32>,
    rows: Option<i64>,
    bytes: Option<i64>,
    /// The columns the read names, as a set of [`ColumnSets`] (`None`: none named).
    columns: Option<u32>,
    /// A permission change's own columns (`None` for an access event).
    change: Option<ChangeColumns>,
}

/// The lists of column names reads name, each kept once (its names interned with the others):
/// a table's usual queries name the same columns again and again.
#[derive(Debug, Default)]
struct ColumnSets {
    ids: std::collections::HashMap<Box<[u32]>, u32>,
    sets: Vec<Box<[u32]>>,
}

impl ColumnSets {
    fn intern(
        &mut self,
        names: &mut Interner,
        columns: &[std::borrow::Cow<'_, str>],
    ) -> Option<u32> {
        if columns.is_empty() {
            return None;
        }
        let set: Box<[u32]> = columns.iter().map(|c| names.intern(c)).collect();
        if let Some(&id) = self.ids.get(&set) {
            return Some(id);
        }
        let id = self.sets.len() as u32;
        self.sets.push(set.clone());
        self.ids.insert(set, id);
        Some(id)
    }

    fn names<'n>(&self, names: &'n Interner, id: Option<u32>) -> Option<Vec<&'n str>> {
        let set = &self.sets[id? as usize];
        Some(set.iter().map(|&n| names.name(n)).collect())
    }
}

/// The names of a permission change's own columns, interned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ChangeColumns {
    grantee: u32,
    privilege: u32,
    statement: Option<u32>,
}

/// The canonical archive schema.
pub fn archive_schema() -> SchemaRef {
    let dict = || DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    Arc::new(Schema::new(vec![
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("principal", dict(), false),
        Field::new("table", dict(), false),
        Field::new("action", dict(), true),
        Field::new("rows", DataType::Int64, true),
        Field::new("bytes", DataType::Int64, true),
        Field::new("grantee", dict(), true),
        Field::new("privilege", dict(), true),
        Field::new("statement", dict(), true),
        Field::new(
            "columns",
            DataType::List(Arc::new(Field::new("item", dict(), true))),
            true,
        ),
    ]))
}

/// Builds the archive: reads `inputs`, writes day partitions under `out_dir` (which must be
/// empty or new) and the manifest last.
pub fn archive(
    config: &Config,
    inputs: &[Input],
    out_dir: &Path,
    strict: bool,
    problems: &mut Problems,
) -> Result<ArchiveSummary, ArchiveError> {
    archive_with(
        config,
        inputs,
        out_dir,
        strict,
        Start::Fresh,
        None,
        problems,
    )
}

/// [`archive`], with what to do about what `out_dir` holds, and the digest of the
/// configuration file (recorded in the manifest).
pub fn archive_with(
    config: &Config,
    inputs: &[Input],
    out_dir: &Path,
    strict: bool,
    start: Start,
    config_digest: Option<String>,
    problems: &mut Problems,
) -> Result<ArchiveSummary, ArchiveError> {
    let started = Instant::now();
    let header = progress_header(config, inputs, config_digest);
    let done = prepare(out_dir, start, &header)?;
    let progress = open_progress(out_dir, &header, done.is_empty())?;
    let writer = DayWriter {
        out_dir: out_dir.to_path_buf(),
        names: Interner::default(),
        column_sets: ColumnSets::default(),
        days: BTreeMap::new(),
        written_days: std::collections::BTreeSet::new(),
        files: Vec::new(),
        parts_of_day: BTreeMap::new(),
        done,
        progress,
        parts: Vec::new(),
    };
    let mut run = Archiving {
        writer,
        newest: None,
        lateness: config.detector.lateness.micros(),
        events: 0,
        strict,
        problems,
        input: String::new(),
        failed: None,
    };
    for input in inputs {
        run.input = input.display_name();
        let before = (
            run.events,
            run.problems.records_not_events(),
            run.problems.bad_lines(),
        );
        let reader = match input.open() {
            Ok(reader) => reader,
            Err(e) => {
                run.problems.unreadable(&run.input, "cannot open", &e);
                continue;
            }
        };
        let mut decoder = config.decoder_for(input);
        decode_all(
            reader,
            &mut decoder,
            &mut run,
            |run| run.failed.is_some(),
            |run, e| {
                run.problems
                    .unreadable(&run.input, "read error, rest of input skipped", &e)
            },
        );
        if let Some(error) = run.failed.take() {
            return Err(error);
        }
        let tally = InputTally {
            records: run.events + run.problems.records_not_events() - before.0 - before.1,
            malformed: run.problems.bad_lines() - before.2,
        };
        unusable::report(config, input, tally, run.problems);
    }
    let Archiving {
        mut writer,
        events,
        problems,
        ..
    } = run;
    writer.flush_days_before(i64::MAX)?;
    let DayWriter {
        out_dir,
        written_days,
        files,
        parts,
        progress,
        ..
    } = writer;
    drop(progress);
    let manifest = Manifest {
        format: manifest::FORMAT.into(),
        version: manifest::VERSION,
        writer: header.writer,
        created_at: format_ts(chrono::Utc::now().timestamp_micros()),
        settings: header.settings,
        inputs: header.inputs,
        events,
        malformed: problems.malformed,
        days: written_days
            .iter()
            .map(|day| format_ts(day * DAY)[..10].to_string())
            .collect(),
        parts,
        sealed: false,
        sealed_by: None,
    };
    let path = out_dir.join(MANIFEST_FILE);
    let bytes = serde_json::to_vec_pretty(&manifest).expect("a manifest serializes");
    crate::output::write_whole(&path, &bytes).map_err(|e| ArchiveError::Write {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let progress = out_dir.join(PROGRESS_FILE);
    fs::remove_file(&progress).map_err(|e| ArchiveError::Write {
        path: progress,
        message: e.to_string(),
    })?;
    Ok(ArchiveSummary {
        events,
        malformed: problems.malformed,
        days: written_days.len(),
        files,
        elapsed: started.elapsed(),
    })
}

/// Makes `out_dir` ready for `start`: the parts an interrupted run already wrote (path →
/// rows and size) when resuming, else none.
fn prepare(
    out_dir: &Path,
    start: Start,
    header: &ProgressHeader,
) -> Result<BTreeMap<String, PartRecord>, ArchiveError> {
    let refuse = |path: &Path, message: String| ArchiveError::Start {
        path: path.to_path_buf(),
        message,
    };
    crate::output::create_dir(out_dir).map_err(|e| refuse(out_dir, e.to_string()))?;
    let entries: Vec<PathBuf> = fs::read_dir(out_dir)
        .map_err(|e| refuse(out_dir, e.to_string()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    match start {
        Start::Fresh if entries.is_empty() => Ok(BTreeMap::new()),
        Start::Fresh => Err(ArchiveError::NotEmpty(out_dir.to_path_buf())),
        Start::Replace => {
            // Only what an archive holds is removed; anything else stops it.
            for entry in &entries {
                let name = entry.file_name().unwrap_or_default().to_string_lossy();
                if name == MANIFEST_FILE || name == PROGRESS_FILE {
                    continue;
                }
                let is_day = name.starts_with("dt=") && entry.is_dir();
                let foreign = if is_day {
                    fs::read_dir(entry)
                        .map_err(|e| refuse(entry, e.to_string()))?
                        .filter_map(Result::ok)
                        .map(|e| e.path())
                        .find(|p| {
                            let n = p.file_name().unwrap_or_default().to_string_lossy();
                            !((n.starts_with("part-") || n.starts_with(".part-"))
                                && (n.ends_with(".parquet") || n.ends_with(".tmp")))
                        })
                } else {
                    Some(entry.clone())
                };
                if let Some(foreign) = foreign {
                    return Err(refuse(
                        &foreign,
                        "not part of an archive: --replace removes only an archive's files; \
                         move it away first"
                            .into(),
                    ));
                }
            }
            for entry in &entries {
                let removed = if entry.is_dir() {
                    fs::remove_dir_all(entry)
                } else {
                    fs::remove_file(entry)
                };
                removed.map_err(|e| refuse(entry, e.to_string()))?;
            }
            Ok(BTreeMap::new())
        }
        Start::Resume => {
            if out_dir.join(MANIFEST_FILE).exists() {
                return Err(refuse(
                    out_dir,
                    "already complete (it has its manifest): nothing to resume".into(),
                ));
            }
            let path = out_dir.join(PROGRESS_FILE);
            let text = fs::read_to_string(&path).map_err(|e| {
                refuse(
                    &path,
                    format!("{e}: no interrupted archive to resume here (--resume needs its {PROGRESS_FILE})"),
                )
            })?;
            let mut lines = text.lines();
            let recorded: ProgressHeader = lines
                .next()
                .and_then(|l| serde_json::from_str(l).ok())
                .ok_or_else(|| refuse(&path, "line 1: not a progress header".into()))?;
            if recorded.settings != header.settings {
                return Err(refuse(
                    &path,
                    format!(
                        "the interrupted archive was made with other settings ({:?}, now {:?}): \
                         resume with the same, or --replace",
                        recorded.settings, header.settings
                    ),
                ));
            }
            if recorded.inputs != header.inputs {
                return Err(refuse(
                    &path,
                    "the interrupted archive was made from other inputs (names or sizes \
                     differ): resume with the same inputs, or --replace"
                        .into(),
                ));
            }
            // A torn last line (killed mid-append) is a part to write again.
            let mut done = BTreeMap::new();
            for line in lines {
                if let Ok(part) = serde_json::from_str::<PartRecord>(line) {
                    done.insert(part.path.clone(), part);
                }
            }
            Ok(done)
        }
    }
}

/// Opens the progress journal: a new one starts with `header`.
fn open_progress(out_dir: &Path, header: &ProgressHeader, new: bool) -> Result<File, ArchiveError> {
    let path = out_dir.join(PROGRESS_FILE);
    let failed = |e: std::io::Error| ArchiveError::Write {
        path: path.clone(),
        message: e.to_string(),
    };
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(failed)?;
    if new {
        file.set_len(0).map_err(failed)?;
        let mut line = serde_json::to_vec(header).expect("a header serializes");
        line.push(b'\n');
        file.write_all(&line).map_err(failed)?;
        file.sync_data().map_err(failed)?;
    } else {
        // A torn last line gets a newline, so the next record starts its own.
        let bytes = fs::read(&path).map_err(failed)?;
        if !bytes.ends_with(b"\n") {
            file.write_all(b"\n").map_err(failed)?;
        }
    }
    Ok(file)
}

/// One archive run: what the decoder gives is buffered by day and written.
struct Archiving<'p> {
    writer: DayWriter,
    newest: Option<Ts>,
    lateness: Ts,
    events: u64,
    strict: bool,
    problems: &'p mut Problems,
    /// The input being read, for messages.
    input: String,
    /// What stops the run (a write error; with `strict`, a bad line), once it happened.
    failed: Option<ArchiveError>,
}

impl DecodeSink for Archiving<'_> {
    fn event(&mut self, _line: u64, event: &AccessEvent<'_>, _read: bool) {
        if self.failed.is_some() {
            return;
        }
        self.events += 1;
        let names = &mut self.writer.names;
        let row = Row {
            ts: event.ts,
            principal: names.intern(&event.principal),
            table: names.intern(&event.table),
            action: event.archived_action().map(|a| names.intern(a)),
            rows: event.rows,
            bytes: event.bytes,
            columns: self.writer.column_sets.intern(names, &event.columns),
            change: None,
        };
        if let Err(error) = self.writer.add(row, &mut self.newest, self.lateness) {
            self.failed = Some(error);
        }
    }

    fn permission(&mut self, _line: u64, change: &crate::event::PermissionChange) {
        if self.failed.is_some() {
            return;
        }
        self.events += 1;
        let names = &mut self.writer.names;
        let row = Row {
            ts: change.ts,
            principal: names.intern(&change.actor),
            table: names.intern(&change.object),
            action: Some(names.intern(change.action.as_str())),
            rows: None,
            bytes: None,
            columns: None,
            change: Some(ChangeColumns {
                grantee: names.intern(&change.grantee),
                privilege: names.intern(&change.privilege),
                statement: change.statement.as_deref().map(|s| names.intern(s)),
            }),
        };
        if let Err(error) = self.writer.add(row, &mut self.newest, self.lateness) {
            self.failed = Some(error);
        }
    }

    fn not_access(&mut self, _line: u64, why: crate::format::vendor::NotAccess) {
        self.problems.not_access(why, 1);
    }

    fn malformed(&mut self, line: u64, error: ParseError) {
        if self.failed.is_some() {
            return;
        }
        if self.strict {
            self.failed = Some(ArchiveError::Strict {
                location: Problems::location(&self.input, line, &error),
                error,
            });
        } else {
            self.problems.malformed(&self.input, line, &error);
        }
    }
}

struct DayWriter {
    out_dir: PathBuf,
    names: Interner,
    column_sets: ColumnSets,
    /// Buffered rows by day number (days since the epoch).
    days: BTreeMap<i64, Vec<Row>>,
    written_days: std::collections::BTreeSet<i64>,
    files: Vec<PathBuf>,
    /// Parts written so far in this run, by day: the next part's number.
    parts_of_day: BTreeMap<i64, u32>,
    /// Parts an interrupted run wrote (with `--resume`), by path: not written again.
    done: BTreeMap<String, PartRecord>,
    /// `_progress.jsonl`, appended to as each part is in place.
    progress: File,
    /// The parts of the archive, for its manifest.
    parts: Vec<PartRecord>,
}

impl DayWriter {
    /// Buffers `row` in its day, writing the days that ended more than `lateness` before the
    /// newest event.
    fn add(&mut self, row: Row, newest: &mut Option<Ts>, lateness: Ts) -> Result<(), ArchiveError> {
        let ts = row.ts;
        self.days.entry(ts.div_euclid(DAY)).or_default().push(row);
        if newest.is_none_or(|n| ts > n) {
            *newest = Some(ts);
            let complete_before = (ts - lateness).div_euclid(DAY);
            self.flush_days_before(complete_before)?;
        }
        Ok(())
    }

    fn flush_days_before(&mut self, day: i64) -> Result<(), ArchiveError> {
        while let Some(entry) = self.days.first_entry() {
            if *entry.key() >= day {
                break;
            }
            let (day, rows) = entry.remove_entry();
            self.write_day(day, rows)?;
        }
        Ok(())
    }

    fn write_day(&mut self, day: i64, mut rows: Vec<Row>) -> Result<(), ArchiveError> {
        let names = &self.names;
        // Time first, then names, so that the file's content never depends on arrival order.
        rows.sort_unstable_by(|a, b| {
            a.ts.cmp(&b.ts)
                .then_with(|| names.name_bytes(a.table).cmp(names.name_bytes(b.table)))
                .then_with(|| {
                    let (a, b) = (a.principal, b.principal);
                    names.name_bytes(a).cmp(names.name_bytes(b))
                })
                .then_with(|| {
                    let action = |r: &Row| r.action.map(|id| names.name_bytes(id));
                    action(a).cmp(&action(b))
                })
                .then_with(|| (a.rows, a.bytes).cmp(&(b.rows, b.bytes)))
                .then_with(|| {
                    let columns = |r: &Row| self.column_sets.names(names, r.columns);
                    columns(a).cmp(&columns(b))
                })
                .then_with(|| {
                    let change = |r: &Row| {
                        r.change.map(|c| {
                            let statement = c.statement.map(|id| names.name(id));
                            (names.name(c.grantee), names.name(c.privilege), statement)
                        })
                    };
                    change(a).cmp(&change(b))
                })
        });
        let date = &format_ts(day * DAY)[..10];
        let dir = self.out_dir.join(format!("dt={date}"));
        let failed = |path: &Path, message: String| ArchiveError::Write {
            path: path.to_path_buf(),
            message,
        };
        crate::output::create_dir(&dir).map_err(|e| failed(&dir, e.to_string()))?;
        let next = self.parts_of_day.entry(day).or_insert(0);
        let part = *next;
        *next += 1;
        let relative = format!("dt={date}/part-{part:05}.parquet");
        let path = dir.join(format!("part-{part:05}.parquet"));
        // Resumed: a part the interrupted run finished is kept when it is the same.
        let kept = self.done.get(&relative).filter(|done| {
            done.rows == rows.len() as u64
                && fs::metadata(&path).is_ok_and(|m| m.len() == done.bytes)
        });
        let record = match kept {
            Some(done) => done.clone(),
            None => {
                let temp = dir.join(format!(".part-{part:05}.parquet.tmp"));
                self.write_file(&temp, &rows)
                    .map_err(|message| failed(&temp, message))?;
                fs::rename(&temp, &path).map_err(|e| failed(&path, e.to_string()))?;
                if let Ok(dir_handle) = File::open(&dir) {
                    let _ = dir_handle.sync_all();
                }
                let bytes = fs::metadata(&path)
                    .map_err(|e| failed(&path, e.to_string()))?
                    .len();
                let record = PartRecord {
                    path: relative,
                    rows: rows.len() as u64,
                    bytes,
                };
                let mut line = serde_json::to_vec(&record).expect("a part serializes");
                line.push(b'\n');
                let progress = self.out_dir.join(PROGRESS_FILE);
                self.progress
                    .write_all(&line)
                    .and_then(|()| self.progress.sync_data())
                    .map_err(|e| failed(&progress, e.to_string()))?;
                record
            }
        };
        self.parts.push(record);
        self.written_days.insert(day);
        self.files.push(path);
        Ok(())
    }

    fn write_file(&self, path: &Path, rows: &[Row]) -> Result<(), String> {
        let schema = archive_schema();
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(
                ZstdLevel::try_new(3).map_err(|e| e.to_string())?,
            ))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_statistics_enabled(EnabledStatistics::Chunk)
            .set_dictionary_enabled(true)
            // Times are nearly all distinct and sorted: a dictionary of them outgrows its page
            // and falls back anyway; deltas are smaller and decode faster.
            .set_column_dictionary_enabled(ColumnPath::from("ts"), false)
            .set_column_encoding(ColumnPath::from("ts"), Encoding::DELTA_BINARY_PACKED)
            .set_sorting_columns(Some(vec![SortingColumn {
                column_idx: 0,
                descending: false,
                nulls_first: false,
            }]))
            .set_created_by(format!("exposure {}", env!("CARGO_PKG_VERSION")))
            .build();
        // Private (0600) like every output that names principals.
        let file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| e.to_string())?;
        let mut writer = ArrowWriter::try_new(file, Arc::clone(&schema), Some(props))
            .map_err(|e| e.to_string())?;
        for chunk in rows.chunks(ROW_GROUP_ROWS) {
            let batch = self.batch(&schema, chunk)?;
            writer.write(&batch).map_err(|e| e.to_string())?;
            writer.flush().map_err(|e| e.to_string())?;
        }
        let file = writer.into_inner().map_err(|e| e.to_string())?;
        file.sync_all().map_err(|e| e.to_string())
    }

    /// The `columns` of `rows`: a list of names, or null.
    fn column_lists(&self, rows: &[Row]) -> arrow_array::ListArray {
        let mut builder = ListBuilder::new(StringDictionaryBuilder::<Int32Type>::new());
        for row in rows {
            match self.column_sets.names(&self.names, row.columns) {
                Some(columns) => {
                    for column in columns {
                        builder.values().append_value(column);
                    }
                    builder.append(true);
                }
                None => builder.append(false),
            }
        }
        builder.finish()
    }

    fn batch(&self, schema: &SchemaRef, rows: &[Row]) -> Result<RecordBatch, String> {
        let ts = TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.ts))
            .with_timezone("UTC");
        let strings = |pick: &dyn Fn(&Row) -> Option<u32>| -> ArrayRef {
            let mut builder = StringDictionaryBuilder::<Int32Type>::new();
            for row in rows {
                match pick(row) {
                    Some(id) => {
                        builder.append_value(self.names.name(id));
                    }
                    None => builder.append_null(),
                }
            }
            Arc::new(builder.finish())
        };
        let counts = |pick: &dyn Fn(&Row) -> Option<i64>| -> ArrayRef {
            let mut builder = Int64Builder::with_capacity(rows.len());
            for row in rows {
                builder.append_option(pick(row));
            }
            Arc::new(builder.finish())
        };
        let columns: Vec<ArrayRef> = vec![
            Arc::new(ts),
            strings(&|r| Some(r.principal)),
            strings(&|r| Some(r.table)),
            strings(&|r| r.action),
            counts(&|r| r.rows),
            counts(&|r| r.bytes),
            strings(&|r| r.change.map(|c| c.grantee)),
            strings(&|r| r.change.map(|c| c.privilege)),
            strings(&|r| r.change.and_then(|c| c.statement)),
            Arc::new(self.column_lists(rows)),
        ];
        RecordBatch::try_new(Arc::clone(schema), columns).map_err(|e| e.to_string())
    }
}

/// `archive --seal`: writes the manifest of an archive made before manifests existed, listing
/// its parts as they are now (each part's rows read from its footer), marked `sealed` with who
/// sealed it. Refuses an archive that has a manifest, or an interrupted one (its progress
/// journal: `--resume` it), or a folder without parts.
pub fn seal(out_dir: &Path, by: &str) -> Result<Manifest, ArchiveError> {
    let refuse = |message: String| ArchiveError::Start {
        path: out_dir.to_path_buf(),
        message,
    };
    if out_dir.join(MANIFEST_FILE).exists() {
        return Err(refuse("already has its manifest: nothing to seal".into()));
    }
    if out_dir.join(PROGRESS_FILE).exists() {
        return Err(refuse(
            "an interrupted archive (it has a progress journal): finish it with --resume".into(),
        ));
    }
    let mut parts = Vec::new();
    let mut days = std::collections::BTreeSet::new();
    let mut events = 0;
    for entry in walkdir::WalkDir::new(out_dir)
        .min_depth(2)
        .max_depth(2)
        .sort_by_file_name()
    {
        let entry = entry.map_err(|e| refuse(e.to_string()))?;
        let path = entry.path();
        let relative = path
            .strip_prefix(out_dir)
            .map_err(|e| refuse(e.to_string()))?
            .to_string_lossy()
            .replace('\\', "/");
        if manifest::split_part(&relative).is_none() {
            continue;
        }
        let file = File::open(path).map_err(|e| refuse(format!("{relative}: {e}")))?;
        let bytes = file.metadata().map_err(|e| refuse(e.to_string()))?.len();
        let reader = parquet::file::reader::SerializedFileReader::new(file)
            .map_err(|e| refuse(format!("{relative}: not a readable Parquet file: {e}")))?;
        use parquet::file::reader::FileReader;
        let rows = u64::try_from(reader.metadata().file_metadata().num_rows()).unwrap_or(0);
        events += rows;
        days.insert(relative[3..13].to_string());
        parts.push(PartRecord {
            path: relative,
            rows,
            bytes,
        });
    }
    if parts.is_empty() {
        return Err(refuse(
            "holds no archive part (dt=YYYY-MM-DD/part-NNNNN.parquet)".into(),
        ));
    }
    let manifest = Manifest {
        format: manifest::FORMAT.into(),
        version: manifest::VERSION,
        writer: format!("exposure {}", env!("CARGO_PKG_VERSION")),
        created_at: format_ts(chrono::Utc::now().timestamp_micros()),
        settings: ArchiveSettings {
            format: "unknown (sealed)".into(),
            lateness_secs: 0,
            config: None,
        },
        inputs: Vec::new(),
        events,
        malformed: 0,
        days: days.into_iter().collect(),
        parts,
        sealed: true,
        sealed_by: Some(by.to_string()),
    };
    let path = out_dir.join(MANIFEST_FILE);
    let bytes = serde_json::to_vec_pretty(&manifest).expect("a manifest serializes");
    crate::output::write_whole(&path, &bytes).map_err(|e| ArchiveError::Write {
        path,
        message: e.to_string(),
    })?;
    Ok(manifest)
}
