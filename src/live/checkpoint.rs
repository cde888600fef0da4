//! The checkpoint in the state dir: everything `exposure watch` needs to resume after a stop or
//! a crash — the detector's state, where each followed file was read up to, and the alerts
//! already emitted for windows still open.
//!
//! It is kept the way state that must scale is kept (a changelog over a snapshot): a full
//! snapshot (a *base*, one JSON line per table after a header) and, after it, a log of
//! *change records* — each checkpoint appends what changed since the last one and fsyncs it, so
//! a checkpoint costs what changed, not what exists. When the changes outgrow the base, a
//! *compaction* folds base and changes into the next base on a thread of its own, table by
//! table, while the engine goes on appending to a new log. `checkpoint.json` names the base in
//! force (its *generation*) and is the one commit point, replaced atomically:
//!
//! ```text
//! checkpoint.json                      {"format":"exposure.checkpoint","version":2,"generation":G}
//! checkpoint/base-G.jsonl              header line, then one line per table (sorted by name)
//! checkpoint/changes-G.jsonl           change records written after base G, one per line
//! checkpoint/changes-(G+1).jsonl …     records written while base G+1 was being compacted
//! ```
//!
//! A restore reads base G and every change log from G on, in order. A crash anywhere leaves a
//! state that restores to the last fsynced checkpoint: a record cut short by a crash is the
//! last line of the last log and is dropped; a compaction cut short leaves `checkpoint.json`
//! naming the old base, whose logs are all still there. A state dir of the previous layout
//! (`checkpoint.json` version 1, the whole state in one file) is read as it is and replaced by
//! a base at the first checkpoint. An unknown version or a corrupt file is an error that names
//! the file, never a silent reset.

use crate::detect::snapshot::TableSnapshot;
use crate::detect::{DetectorChanges, DetectorSnapshot, FoldedChanges};
use crate::source::tail::FileCursor;
use crate::state::envelope::{self, EnvelopeError, Enveloped, Stamp, stamp};
use crate::state::{StateDir, at, create_private, create_private_subdir, write_atomically};
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::{self, BufRead, BufWriter, Seek, Write};
use std::path::{Path, PathBuf};

/// The layout of the single-file checkpoint of earlier releases (read, never written).
pub const WHOLE_FILE_VERSION: u32 = 1;
/// The layout of `checkpoint.json` this release writes: a base and its change logs.
pub const CHECKPOINT_VERSION: u32 = 2;
/// The folder of bases and change logs.
const FOLDER: &str = "checkpoint";

/// What a checkpoint holds: the whole state, however it is laid out on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub format: String,
    pub version: u32,
    /// RFC 3339, for people reading the file.
    pub written_at: String,
    /// `watch` or `learn`.
    pub written_by: String,
    pub detector: DetectorSnapshot,
    pub files: Vec<FileCursor>,
    /// Keys (`id:status[:novel]`) of the alerts emitted for windows still open: never emitted
    /// twice.
    pub emitted: Vec<String>,
    /// How many changes of the state dir's audit log of baseline changes this state has
    /// taken (a `forget` is applied once).
    #[serde(default)]
    pub baseline_changes: usize,
    /// Where the evidence the state dir keeps (`--keep-reads`) ended when this was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<super::evidence::Mark>,
}

/// Everything of a checkpoint but the detector's tables and population: what a base's header
/// and every change record carry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Progress {
    pub written_at: String,
    pub written_by: String,
    pub files: Vec<FileCursor>,
    pub emitted: Vec<String>,
    #[serde(default)]
    pub baseline_changes: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<super::evidence::Mark>,
}

/// One line of a change log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeRecord {
    #[serde(flatten)]
    pub progress: Progress,
    pub detector: DetectorChanges,
}

/// `checkpoint.json`: which base is in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    format: String,
    version: u32,
    written_at: String,
    generation: u64,
}

impl Enveloped for Manifest {
    const FORMAT: &'static str = "exposure.checkpoint";
    const VERSION: u32 = CHECKPOINT_VERSION;
}

/// The first line of a base.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BaseHeader {
    format: String,
    version: u32,
    generation: u64,
    #[serde(flatten)]
    progress: Progress,
    /// The detector's state but its tables (the lines that follow), population included.
    detector: DetectorSnapshot,
    /// How many table lines follow.
    tables: usize,
}

const BASE_FORMAT: &str = "exposure.checkpoint-base";
const BASE_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot read checkpoint {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "checkpoint {path} is corrupt ({message}); move it away to start afresh (the baseline \
         would be learned again)"
    )]
    Corrupt { path: PathBuf, message: String },
    #[error(
        "checkpoint {path} has version {found} ({envelope}); use the exposure release that wrote it"
    )]
    UnknownVersion {
        path: PathBuf,
        found: String,
        envelope: EnvelopeError,
    },
}

impl Enveloped for Checkpoint {
    const FORMAT: &'static str = "exposure.checkpoint";
    const VERSION: u32 = WHOLE_FILE_VERSION;
}

/// How the checkpoint found in a state dir is laid out, for [`CheckpointLog::resume`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// One file of an earlier release: replaced by a base at the first checkpoint.
    WholeFile,
    /// Base `generation` and change logs `generation..=last_log`.
    Incremental {
        generation: u64,
        last_log: u64,
        /// Where the last log's last whole record ends (a torn one after it is cut off).
        last_log_length: u64,
        base_bytes: u64,
        log_bytes: u64,
    },
}

/// A checkpoint as loaded, and how it lay on disk.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub checkpoint: Checkpoint,
    pub layout: Layout,
}

fn folder(state_dir: &StateDir) -> PathBuf {
    state_dir.root().join(FOLDER)
}

fn base_path(state_dir: &StateDir, generation: u64) -> PathBuf {
    folder(state_dir).join(format!("base-{generation}.jsonl"))
}

fn log_path(state_dir: &StateDir, generation: u64) -> PathBuf {
    folder(state_dir).join(format!("changes-{generation}.jsonl"))
}

impl Checkpoint {
    pub fn new(
        written_by: &str,
        detector: DetectorSnapshot,
        files: Vec<FileCursor>,
        emitted: Vec<String>,
    ) -> Checkpoint {
        let Stamp {
            format,
            version,
            written_at,
        } = stamp::<Checkpoint>();
        Checkpoint {
            format,
            version,
            written_at,
            written_by: written_by.to_string(),
            detector,
            files,
            emitted,
            baseline_changes: 0,
            evidence: None,
        }
    }

    /// When the file positions it holds were recorded: its write time if `watch` wrote it
    /// (`learn` records none).
    pub fn file_positions_at(&self) -> Option<std::time::SystemTime> {
        if self.written_by != "watch" {
            return None;
        }
        let at = chrono::DateTime::parse_from_rfc3339(&self.written_at).ok()?;
        Some(std::time::SystemTime::from(at.with_timezone(&chrono::Utc)))
    }

    fn progress(&self) -> Progress {
        Progress {
            written_at: self.written_at.clone(),
            written_by: self.written_by.clone(),
            files: self.files.clone(),
            emitted: self.emitted.clone(),
            baseline_changes: self.baseline_changes,
            evidence: self.evidence.clone(),
        }
    }

    fn take_progress(&mut self, progress: Progress) {
        self.written_at = progress.written_at;
        self.written_by = progress.written_by;
        self.files = progress.files;
        self.emitted = progress.emitted;
        self.baseline_changes = progress.baseline_changes;
        self.evidence = progress.evidence;
    }

    /// The checkpoint in `state_dir`, if there is one.
    pub fn load(state_dir: &StateDir) -> Result<Option<Checkpoint>, CheckpointError> {
        Ok(Checkpoint::load_laid_out(state_dir)?.map(|l| l.checkpoint))
    }

    /// The checkpoint in `state_dir` and how it lies, if there is one. A base removed by a
    /// compaction between reading `checkpoint.json` and opening it (another process writes
    /// the state dir) is looked for again in the new generation.
    pub fn load_laid_out(state_dir: &StateDir) -> Result<Option<Loaded>, CheckpointError> {
        let mut attempts = 0;
        loop {
            match load_once(state_dir) {
                Err(CheckpointError::Io { source, .. })
                    if source.kind() == io::ErrorKind::NotFound && attempts < 3 =>
                {
                    attempts += 1;
                }
                other => return other,
            }
        }
    }

    /// Writes the whole checkpoint into `state_dir` as a new base, removing every other
    /// base and change log (`learn`, and the first checkpoint of `watch`).
    pub fn save(&self, state_dir: &StateDir) -> io::Result<()> {
        let generation = highest_generation(state_dir)? + 1;
        write_base(state_dir, generation, self)?;
        write_manifest(state_dir, generation)?;
        remove_other_generations(state_dir, generation, generation);
        Ok(())
    }
}

fn load_once(state_dir: &StateDir) -> Result<Option<Loaded>, CheckpointError> {
    let path = state_dir.checkpoint();
    let bytes = match crate::state::read_private(&path, 1 << 20) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(CheckpointError::Io { path, source }),
    };
    let manifest = match envelope::open::<Manifest>(&bytes) {
        Ok(manifest) => manifest,
        Err(EnvelopeError::Version { ref version, .. })
            if version == &WHOLE_FILE_VERSION.to_string() =>
        {
            // The whole state in one file, as earlier releases wrote it.
            let bytes = crate::state::read_private(&path, u64::MAX).map_err(|source| {
                CheckpointError::Io {
                    path: path.clone(),
                    source,
                }
            })?;
            let checkpoint =
                envelope::open::<Checkpoint>(&bytes).map_err(|e| opening_error(&path, e))?;
            return Ok(Some(Loaded {
                checkpoint,
                layout: Layout::WholeFile,
            }));
        }
        Err(e) => return Err(opening_error(&path, e)),
    };
    let generation = manifest.generation;
    let base = base_path(state_dir, generation);
    let io_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CheckpointError::Io { path, source }
    };
    let file = crate::state::open_private_read(&base).map_err(io_error(&base))?;
    let base_bytes = file.metadata().map_err(io_error(&base))?.len();
    let mut logs = Vec::new();
    let mut folded = FoldedChanges::default();
    let mut progress = None;
    let (mut last_log, mut last_log_length, mut log_bytes) = (generation, 0, 0);
    for at in generation.. {
        let path = log_path(state_dir, at);
        let records = match read_log(&path) {
            Ok(records) => records,
            Err(e) if e.kind() == io::ErrorKind::NotFound => break,
            Err(source) => return Err(CheckpointError::Io { path, source }),
        };
        if let Some(torn) = &records.torn {
            if fs::metadata(log_path(state_dir, at + 1)).is_ok() {
                // Only the log being appended to can end in a cut record.
                return Err(CheckpointError::Corrupt {
                    path,
                    message: format!("a record at byte {} is cut short", records.whole),
                });
            }
            tracing::warn!(
                path = %path.display(), at_byte = records.whole, bytes = torn,
                "the last change record was cut short by a crash; the checkpoint before it \
                 stands (what came after is read again)"
            );
        }
        for record in records.records {
            progress = Some(record.progress);
            folded.fold(record.detector);
        }
        (last_log, last_log_length) = (at, records.whole);
        log_bytes += records.whole;
        logs.push(path);
    }
    let mut checkpoint = read_base(
        io::BufReader::with_capacity(1 << 20, file),
        &folded,
        (&mut |_| Ok(()), true),
        &base,
        generation,
    )?;
    if let Some(progress) = progress {
        checkpoint.take_progress(progress);
    }
    Ok(Some(Loaded {
        checkpoint,
        layout: Layout::Incremental {
            generation,
            last_log,
            last_log_length,
            base_bytes,
            log_bytes,
        },
    }))
}

fn opening_error(path: &Path, e: EnvelopeError) -> CheckpointError {
    let path = path.to_path_buf();
    match e {
        EnvelopeError::Corrupt(message) => CheckpointError::Corrupt { path, message },
        EnvelopeError::Version { ref version, .. } => CheckpointError::UnknownVersion {
            path,
            found: version.clone(),
            envelope: e,
        },
    }
}

/// The records of one change log.
struct LogRecords {
    records: Vec<ChangeRecord>,
    /// Bytes of whole records.
    whole: u64,
    /// Bytes of a record cut short after them, if any.
    torn: Option<u64>,
}

fn read_log(path: &Path) -> io::Result<LogRecords> {
    let file = crate::state::open_private_read(path)?;
    let mut reader = io::BufReader::new(file);
    let mut line = Vec::new();
    let mut out = LogRecords {
        records: Vec::new(),
        whole: 0,
        torn: None,
    };
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| at(path, e))?;
        if n == 0 {
            return Ok(out);
        }
        if line.last() != Some(&b'\n') {
            // Written in part when the process died: the checkpoint before it stands.
            out.torn = Some(n as u64);
            return Ok(out);
        }
        match serde_json::from_slice::<ChangeRecord>(&line) {
            Ok(record) => {
                out.records.push(record);
                out.whole += n as u64;
            }
            Err(e) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{}: change record at byte {} is corrupt ({e}); move the state dir's \
                         checkpoint.json and checkpoint/ away to start afresh (the baseline \
                         would be learned again)",
                        path.display(),
                        out.whole
                    ),
                ));
            }
        }
    }
}

/// Where [`read_base`] hands each table it folds (and whether the result keeps them too).
type TableSink<'a> = (&'a mut dyn FnMut(&TableSnapshot) -> io::Result<()>, bool);

/// Reads a base from `reader`, folding `changes` onto it table by table; each table of the
/// result goes to `table` (which may write it out), and is kept in the returned checkpoint's
/// detector if `keep` (a compaction keeps none). `Err` from `table` is an I/O error.
fn read_base(
    reader: impl BufRead,
    changes: &FoldedChanges,
    (table, keep): TableSink<'_>,
    path: &Path,
    generation: u64,
) -> Result<Checkpoint, CheckpointError> {
    let corrupt = |message: String| CheckpointError::Corrupt {
        path: path.to_path_buf(),
        message,
    };
    let mut lines = reader.lines();
    let header = lines
        .next()
        .ok_or_else(|| corrupt("empty".into()))?
        .map_err(|source| CheckpointError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    let header: BaseHeader =
        serde_json::from_str(&header).map_err(|e| corrupt(format!("header: {e}")))?;
    if header.format != BASE_FORMAT || header.version != BASE_VERSION {
        return Err(corrupt(format!(
            "it is {} version {}, this exposure reads {BASE_FORMAT} version {BASE_VERSION}",
            header.format, header.version
        )));
    }
    if header.generation != generation {
        return Err(corrupt(format!(
            "it holds generation {}, not {generation}",
            header.generation
        )));
    }
    let mut error = None;
    let expected = header.tables;
    let mut seen = 0usize;
    let base_tables = lines.by_ref().map_while(|line| {
        let parsed = line
            .map_err(|e| corrupt(format!("line {}: {e}", seen + 2)))
            .and_then(|l| {
                serde_json::from_str::<TableSnapshot>(&l)
                    .map_err(|e| corrupt(format!("line {}: {e}", seen + 2)))
            });
        seen += 1;
        match parsed {
            Ok(t) => Some(t),
            Err(e) => {
                error = Some(e);
                None
            }
        }
    });
    let mut tables = Vec::new();
    let mut write_error = None;
    for merged in changes.merge_tables(base_tables) {
        if let Err(e) = table(&merged) {
            write_error = Some(e);
            break;
        }
        if keep {
            tables.push(merged);
        }
    }
    if let Some(e) = error {
        return Err(e);
    }
    if let Some(source) = write_error {
        return Err(CheckpointError::Io {
            path: path.to_path_buf(),
            source,
        });
    }
    if seen != expected {
        return Err(corrupt(format!(
            "{seen} tables where the header says {expected}"
        )));
    }
    let mut detector = header.detector;
    changes.whole_parts(&mut detector);
    detector.population = changes.population(std::mem::take(&mut detector.population));
    detector.tables = tables;
    let Stamp {
        format, version, ..
    } = stamp::<Checkpoint>();
    let mut checkpoint = Checkpoint {
        format,
        version,
        written_at: String::new(),
        written_by: String::new(),
        detector,
        files: Vec::new(),
        emitted: Vec::new(),
        baseline_changes: 0,
        evidence: None,
    };
    checkpoint.take_progress(header.progress);
    Ok(checkpoint)
}

/// The highest generation of any base or log in the folder (0: none).
fn highest_generation(state_dir: &StateDir) -> io::Result<u64> {
    let dir = folder(state_dir);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(at(&dir, e)),
    };
    let mut highest = 0;
    for entry in entries {
        let name = entry.map_err(|e| at(&dir, e))?.file_name();
        if let Some(generation) = generation_of(&name.to_string_lossy()) {
            highest = highest.max(generation);
        }
    }
    Ok(highest)
}

/// The generation in a base's or a log's file name.
fn generation_of(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".jsonl")?;
    let number = (stem.strip_prefix("base-")).or_else(|| stem.strip_prefix("changes-"))?;
    number.parse().ok()
}

/// Removes the bases other than `keep_base` and the logs before `first_log` (what a
/// compaction or a full save left behind). A file that cannot be removed is said, and left.
fn remove_other_generations(state_dir: &StateDir, keep_base: u64, first_log: u64) {
    let dir = folder(state_dir);
    let Ok(entries) = fs::read_dir(&dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let stale = match generation_of(&name) {
            Some(g) if name.starts_with("base-") => g != keep_base,
            Some(g) => g < first_log,
            None => name.starts_with(".base-"),
        };
        if stale && let Err(e) = fs::remove_file(entry.path()) {
            tracing::warn!(path = %entry.path().display(), error = %e, "cannot remove an old checkpoint file");
        }
    }
}

fn write_manifest(state_dir: &StateDir, generation: u64) -> io::Result<()> {
    let Stamp {
        format,
        version,
        written_at,
    } = stamp::<Manifest>();
    let manifest = Manifest {
        format,
        version,
        written_at,
        generation,
    };
    let bytes = serde_json::to_vec(&manifest).map_err(io::Error::other)?;
    write_atomically(&state_dir.checkpoint(), &bytes)
}

/// Opens a new base file to write (through a temporary name).
fn create_base(state_dir: &StateDir, generation: u64) -> io::Result<(PathBuf, BufWriter<File>)> {
    create_private_subdir(&folder(state_dir))?;
    let temp = folder(state_dir).join(format!(".base-{generation}.jsonl.tmp"));
    let file = create_private(&temp).map_err(|e| at(&temp, e))?;
    Ok((temp, BufWriter::with_capacity(1 << 20, file)))
}

/// Makes the base written to `temp` base `generation`, durably.
fn finish_base(
    state_dir: &StateDir,
    generation: u64,
    temp: &Path,
    writer: BufWriter<File>,
) -> io::Result<u64> {
    let file = writer.into_inner().map_err(|e| at(temp, e.into_error()))?;
    file.sync_all().map_err(|e| at(temp, e))?;
    let bytes = file.metadata().map_err(|e| at(temp, e))?.len();
    let path = base_path(state_dir, generation);
    fs::rename(temp, &path).map_err(|e| at(&path, e))?;
    sync_folder(&folder(state_dir))?;
    Ok(bytes)
}

fn sync_folder(dir: &Path) -> io::Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| at(dir, e))
}

fn header_of(checkpoint: &Checkpoint, generation: u64, tables: usize) -> BaseHeader {
    let mut detector = checkpoint.detector.clone_without_tables();
    detector.population = checkpoint.detector.population.clone();
    BaseHeader {
        format: BASE_FORMAT.into(),
        version: BASE_VERSION,
        generation,
        progress: checkpoint.progress(),
        detector,
        tables,
    }
}

fn write_line(writer: &mut impl Write, value: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer(&mut *writer, value).map_err(io::Error::other)?;
    writer.write_all(b"\n")
}

/// Writes `checkpoint` whole as base `generation`; gives its size.
fn write_base(state_dir: &StateDir, generation: u64, checkpoint: &Checkpoint) -> io::Result<u64> {
    let (temp, mut writer) = create_base(state_dir, generation)?;
    let tables = &checkpoint.detector.tables;
    let write = |writer: &mut BufWriter<File>| -> io::Result<()> {
        write_line(writer, &header_of(checkpoint, generation, tables.len()))?;
        for table in tables {
            write_line(writer, table)?;
        }
        Ok(())
    };
    write(&mut writer).map_err(|e| at(&temp, e))?;
    finish_base(state_dir, generation, &temp, writer)
}

/// Folds base `from` and the logs `from..to` into base `to`, which it makes the one in force;
/// gives its size. Reads one table of the base at a time.
fn compact(state_dir: &StateDir, from: u64, to: u64) -> io::Result<u64> {
    let mut folded = FoldedChanges::default();
    let mut progress = None;
    for generation in from..to {
        let path = log_path(state_dir, generation);
        let records = read_log(&path)?;
        if records.torn.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: a record is cut short", path.display()),
            ));
        }
        for record in records.records {
            progress = Some(record.progress);
            folded.fold(record.detector);
        }
    }
    let base = base_path(state_dir, from);
    let reader = io::BufReader::with_capacity(
        1 << 20,
        crate::state::open_private_read(&base).map_err(|e| at(&base, e))?,
    );
    // Tables are written to a body file as they are folded; the header, which counts them
    // and carries the population, goes first once they are all known.
    let body_path = folder(state_dir).join(format!(".base-{to}.body.tmp"));
    let body_file = create_private(&body_path).map_err(|e| at(&body_path, e))?;
    let mut body = BufWriter::with_capacity(1 << 20, body_file);
    let mut count = 0usize;
    let mut whole = read_base(
        reader,
        &folded,
        (
            &mut |table| {
                count += 1;
                write_line(&mut body, table)
            },
            false,
        ),
        &base,
        from,
    )
    .map_err(io::Error::other)?;
    if let Some(progress) = progress {
        whole.take_progress(progress);
    }
    let mut body = body
        .into_inner()
        .map_err(|e| at(&body_path, e.into_error()))?;
    body.seek(io::SeekFrom::Start(0))
        .map_err(|e| at(&body_path, e))?;
    let (temp, mut writer) = create_base(state_dir, to)?;
    write_line(&mut writer, &header_of(&whole, to, count)).map_err(|e| at(&temp, e))?;
    io::copy(&mut body, &mut writer).map_err(|e| at(&temp, e))?;
    drop(body);
    let _ = fs::remove_file(&body_path);
    let bytes = finish_base(state_dir, to, &temp, writer)?;
    write_manifest(state_dir, to)?;
    remove_other_generations(state_dir, to, to);
    Ok(bytes)
}

/// When a compaction is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactWhen {
    /// Compact when the change logs since the base pass this many bytes...
    pub at_least: u64,
    /// ...and half the base's size.
    pub base_share_percent: u64,
}

impl Default for CompactWhen {
    fn default() -> Self {
        CompactWhen {
            at_least: 16 << 20,
            base_share_percent: 50,
        }
    }
}

/// The writer of `watch`'s checkpoints: appends change records, starts compactions.
pub struct CheckpointLog {
    state_dir: StateDir,
    when: CompactWhen,
    /// The base in force (`None`: none written yet, or a whole file of an earlier release:
    /// the next checkpoint is written whole).
    generation: Option<u64>,
    /// The log being appended to, and its generation.
    log: Option<(u64, File)>,
    base_bytes: u64,
    /// Bytes of the logs since the base in force.
    log_bytes: u64,
    compaction: Option<std::thread::JoinHandle<io::Result<(u64, u64)>>>,
    /// Compactions finished, for the metrics.
    pub compactions: u64,
}

impl CheckpointLog {
    /// The writer of a state dir holding no checkpoint yet: the first is written whole.
    pub fn new(state_dir: &StateDir, when: CompactWhen) -> CheckpointLog {
        CheckpointLog {
            state_dir: state_dir.clone(),
            when,
            generation: None,
            log: None,
            base_bytes: 0,
            log_bytes: 0,
            compaction: None,
            compactions: 0,
        }
    }

    /// The writer that goes on from the checkpoint as `layout` found it (`None`: none).
    pub fn resume(
        state_dir: &StateDir,
        layout: Option<&Layout>,
        when: CompactWhen,
    ) -> io::Result<CheckpointLog> {
        let mut log = CheckpointLog::new(state_dir, when);
        let Some(Layout::Incremental {
            generation,
            last_log,
            last_log_length,
            base_bytes,
            log_bytes,
        }) = layout
        else {
            return Ok(log);
        };
        // Leftovers of a compaction or a save cut short, and a record cut short.
        remove_other_generations(state_dir, *generation, *generation);
        let path = log_path(state_dir, *last_log);
        match crate::state::open_private_append(&path) {
            Ok(file) => {
                if file.metadata().map_err(|e| at(&path, e))?.len() > *last_log_length {
                    file.set_len(*last_log_length).map_err(|e| at(&path, e))?;
                    file.sync_all().map_err(|e| at(&path, e))?;
                }
                log.log = Some((*last_log, file));
            }
            Err(e) => return Err(e),
        }
        log.generation = Some(*generation);
        log.base_bytes = *base_bytes;
        log.log_bytes = *log_bytes;
        if *last_log > *generation {
            // A compaction was cut short: it is done again.
            log.start_compaction(*generation, *last_log);
        }
        Ok(log)
    }

    /// Whether the next checkpoint must be written whole ([`Checkpoint::save`]).
    pub fn needs_base(&self) -> bool {
        self.generation.is_none()
    }

    /// After a whole checkpoint was saved: change records go on from it.
    pub fn saved_whole(&mut self) -> io::Result<()> {
        self.wait_for_compaction();
        let generation = highest_generation(&self.state_dir)?;
        self.generation = Some(generation);
        self.base_bytes = fs::metadata(base_path(&self.state_dir, generation))
            .map(|m| m.len())
            .unwrap_or(0);
        self.log_bytes = 0;
        self.log = None;
        Ok(())
    }

    /// Appends `record` to the log and makes it durable; then starts a compaction if one is
    /// due. Gives the bytes written.
    pub fn append(&mut self, record: &ChangeRecord) -> io::Result<u64> {
        let Some(generation) = self.generation else {
            return Err(io::Error::other(
                "no base yet: the checkpoint is written whole",
            ));
        };
        self.reap_compaction();
        let mut line = serde_json::to_vec(record).map_err(io::Error::other)?;
        line.push(b'\n');
        let (at_generation, file) = match &mut self.log {
            Some((g, file)) => (*g, file),
            None => {
                create_private_subdir(&folder(&self.state_dir))?;
                let path = log_path(&self.state_dir, generation);
                let file = crate::state::open_private_append(&path)?;
                sync_folder(&folder(&self.state_dir))?;
                self.log = Some((generation, file));
                let (g, file) = self.log.as_mut().expect("just set");
                (*g, file)
            }
        };
        let path = log_path(&self.state_dir, at_generation);
        file.write_all(&line).map_err(|e| at(&path, e))?;
        file.sync_data().map_err(|e| at(&path, e))?;
        self.log_bytes += line.len() as u64;
        let due = self.log_bytes
            >= (self.when.at_least).max(self.base_bytes * self.when.base_share_percent / 100);
        if due && self.compaction.is_none() {
            // Records from now on go to the next log; the ones so far are folded.
            let next = at_generation + 1;
            let path = log_path(&self.state_dir, next);
            let file = crate::state::open_private_append(&path)?;
            sync_folder(&folder(&self.state_dir))?;
            self.log = Some((next, file));
            self.start_compaction(generation, next);
        }
        Ok(line.len() as u64)
    }

    fn start_compaction(&mut self, from: u64, to: u64) {
        let state_dir = self.state_dir.clone();
        self.log_bytes = 0;
        let spawned = std::thread::Builder::new()
            .name("compaction".into())
            .spawn(move || {
                let started = std::time::Instant::now();
                let bytes = compact(&state_dir, from, to)?;
                tracing::info!(
                    generation = to,
                    bytes,
                    took_ms = started.elapsed().as_millis() as u64,
                    "checkpoint compacted"
                );
                Ok((to, bytes))
            });
        match spawned {
            Ok(handle) => self.compaction = Some(handle),
            Err(e) => tracing::warn!(error = %e, "cannot start a compaction; tried again later"),
        }
    }

    /// Takes the result of a finished compaction, if one finished.
    fn reap_compaction(&mut self) {
        if self.compaction.as_ref().is_some_and(|h| h.is_finished()) {
            self.wait_for_compaction();
        }
    }

    /// Waits for a running compaction (a clean stop, or a whole save).
    pub fn wait_for_compaction(&mut self) {
        let Some(handle) = self.compaction.take() else {
            return;
        };
        match handle.join() {
            Ok(Ok((generation, bytes))) => {
                self.generation = Some(generation);
                self.base_bytes = bytes;
                self.compactions += 1;
            }
            Ok(Err(e)) => tracing::warn!(
                error = %e,
                "compaction failed; the base and change logs before it stand and it is tried \
                 again at the next checkpoint"
            ),
            Err(_) => tracing::error!("the compaction thread panicked; tried again later"),
        }
    }
}

#[cfg(test)]
mod tests;
