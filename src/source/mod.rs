//! Where events come from: files (plain or gzip JSON lines, Parquet), directories and globs of
//! them, and stdin. Sources only deliver bytes, batches and positions; parsing is `format`'s and
//! detection is `detect`'s.

pub mod frame;
pub mod lines;
pub mod manifest;
pub mod object;
pub mod parquet;
pub mod rows;
pub mod tail;
pub mod topic;

use crate::format::Format;
use crate::time::TimeFilter;
use flate2::read::MultiGzDecoder;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// One input, after directories and globs are expanded and formats are recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Stdin,
    /// A line-oriented file (JSON lines, plain or gzip).
    File(PathBuf),
    /// A Parquet file.
    Parquet(PathBuf),
    /// A Parquet file of a vendor format's rows (a Snowflake ACCESS_HISTORY export), read as
    /// JSON lines: one object per row.
    ParquetRows(PathBuf),
    /// A line-oriented object in object storage (JSON lines, plain or gzip), streamed.
    Object(Arc<object::ObjectInput>),
    /// A Parquet object in object storage, read by ranges.
    ParquetObject(Arc<object::ObjectInput>),
    /// A Kafka topic partition, its records as lines ([`topic`]).
    Topic(Arc<topic::TopicPartition>),
}

/// An input argument that names nothing usable: exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{0}: no such file or directory")]
    Missing(String),
    #[error("{pattern}: no file matches")]
    NoMatch { pattern: String },
    #[error("{0}: the directory holds no log files")]
    EmptyDir(String),
    #[error("{pattern}: bad glob: {message}")]
    BadGlob { pattern: String, message: String },
    #[error("{0}: not a Parquet file (--format parquet)")]
    NotParquet(String),
    #[error("Parquet cannot be read from stdin; give a file")]
    ParquetFromStdin,
    #[error("{0}: is already Parquet; `exposure replay` reads it directly")]
    ArchiveOfParquet(String),
    #[error(
        "cannot read Parquet in object storage ({parquet}) with line inputs ({jsonl}) in one \
         run: replay it on its own, or copy it to a local folder (local Parquet mixes with \
         lines)"
    )]
    Mixed { parquet: String, jsonl: String },
    #[error("{url}: not a valid URL: {message}")]
    BadUrl { url: String, message: String },
    #[error("{url}: unknown scheme `{scheme}` (s3://, gs://, az://, file://, kafka://)")]
    UnknownScheme { url: String, scheme: String },
    /// The store could not be listed (no such bucket, access denied, no credentials): like a
    /// missing path, reported and the other inputs read.
    #[error("{url}: {message}")]
    Store { url: String, message: String },
    #[error("{0}: a vendor's Parquet export is read from local files only")]
    RemoteParquetRows(String),
    /// An archive that is not whole (see [`manifest`]): its bad parts are not read, the
    /// others are, and the run's exit code is 1.
    #[error(transparent)]
    Archive(#[from] manifest::ArchiveProblem),
}

/// The inputs that command-line arguments name, and the arguments that named nothing.
#[derive(Debug, Default)]
pub struct Expanded {
    pub inputs: Vec<Input>,
    /// A path that does not exist, a glob that matches nothing, an empty directory: reported,
    /// the other inputs are read, and the run's exit code is 1.
    pub not_found: Vec<InputError>,
    /// Files (or objects) under a folder or prefix whose `dt=` day cannot hold a time the
    /// filter keeps: not read.
    pub pruned: usize,
}

/// Turns command-line arguments into inputs: `-` is stdin; a directory is every data file below
/// it (recursively, sorted by path, hidden and `_`-prefixed files skipped); an argument with
/// `*`, `?` or `[` that names no file is a glob. Each file's format is recognised from its first
/// bytes (`PAR1`) unless `format` forces one. An argument that names nothing goes to
/// [`Expanded::not_found`]; the errors are arguments that cannot be right (a bad glob, Parquet
/// mixed with lines). Files found below a folder, by a glob or under a prefix in a `dt=` day
/// folder that `filter` rules out are left out ([`Expanded::pruned`]); a file named as such
/// is always read.
pub fn expand_inputs(
    args: &[String],
    format: Format,
    filter: TimeFilter,
) -> Result<Expanded, InputError> {
    let mut inputs = Vec::new();
    let mut not_found = Vec::new();
    let mut pruned = 0;
    for arg in args {
        if arg == "-" {
            if format == Format::Parquet {
                return Err(InputError::ParquetFromStdin);
            }
            inputs.push(Input::Stdin);
            continue;
        }
        if topic::is_url(arg) {
            if format == Format::Parquet {
                return Err(InputError::NotParquet(arg.clone()));
            }
            match topic::expand(arg) {
                Ok(partitions) => {
                    inputs.extend(partitions.into_iter().map(|p| Input::Topic(Arc::new(p))))
                }
                Err(error @ InputError::Store { .. }) => not_found.push(error),
                Err(error) => return Err(error),
            }
            continue;
        }
        if object::is_url(arg) {
            let objects = match object::expand(arg) {
                Ok(objects) if objects.len() == 1 && objects[0].url == *arg => objects,
                Ok(objects) => {
                    let listed = objects.len();
                    let kept: Vec<_> = objects
                        .into_iter()
                        .filter(|o| filter.may_hold_path(&o.url))
                        .collect();
                    pruned += listed - kept.len();
                    if listed > 0 && kept.is_empty() {
                        continue;
                    }
                    kept
                }
                Err(error @ InputError::Store { .. }) => {
                    not_found.push(error);
                    continue;
                }
                Err(error) => return Err(error),
            };
            if objects.is_empty() {
                not_found.push(InputError::NoMatch {
                    pattern: arg.clone(),
                });
            }
            let named_itself = objects.len() == 1 && objects[0].url == *arg;
            let found: Vec<manifest::FoundPart> = objects
                .iter()
                .map(|o| manifest::FoundPart {
                    path: o.url.clone(),
                    bytes: o.size,
                })
                .collect();
            let checked = manifest::check_parts(
                &found,
                |root| (object::read_manifest(root), false),
                |root, part| {
                    let url = format!("{root}/{part}");
                    !named_itself && url.starts_with(arg.as_str()) && filter.may_hold_path(&url)
                },
            );
            not_found.extend(checked.problems.into_iter().map(InputError::Archive));
            let objects = objects
                .into_iter()
                .filter(|o| !checked.refused.contains(&o.url));
            for object in objects {
                let is_parquet = object.looks_like_parquet();
                let object = Arc::new(object);
                inputs.push(match format {
                    Format::Parquet if !is_parquet => {
                        return Err(InputError::NotParquet(object.url.clone()));
                    }
                    Format::Parquet | Format::Auto if is_parquet => Input::ParquetObject(object),
                    vendor if vendor.is_vendor() && is_parquet => {
                        return Err(InputError::RemoteParquetRows(object.url.clone()));
                    }
                    _ => Input::Object(object),
                });
            }
            continue;
        }
        let path = Path::new(arg);
        let mut prune = |files: Vec<PathBuf>| -> Vec<PathBuf> {
            let found = files.len();
            let kept: Vec<PathBuf> = files
                .into_iter()
                .filter(|f| filter.may_hold_path(&f.to_string_lossy()))
                .collect();
            pruned += found - kept.len();
            kept
        };
        let files = if path.is_dir() {
            let files = files_below(path, |_| true);
            if files.is_empty() {
                not_found.push(InputError::EmptyDir(arg.clone()));
            }
            prune(files)
        } else if path.exists() {
            vec![path.to_path_buf()]
        } else if arg.contains(['*', '?', '[']) {
            let files = glob_files(arg)?;
            if files.is_empty() {
                not_found.push(InputError::NoMatch {
                    pattern: arg.clone(),
                });
            }
            prune(files)
        } else {
            not_found.push(InputError::Missing(arg.clone()));
            Vec::new()
        };
        let files = check_archive_parts(files, arg, path, filter, &mut not_found);
        for file in files {
            let is_parquet = parquet::looks_like_parquet(&file);
            inputs.push(match format {
                Format::Parquet if !is_parquet => {
                    return Err(InputError::NotParquet(file.display().to_string()));
                }
                Format::Parquet => Input::Parquet(file),
                Format::Auto if is_parquet => Input::Parquet(file),
                vendor if vendor.is_vendor() && is_parquet => Input::ParquetRows(file),
                _ => Input::File(file),
            });
        }
    }
    // Local Parquet may be read among line inputs, its rows as lines; Parquet in a store is
    // read only by ranges, column-wise.
    let parquet = inputs.iter().find(|i| matches!(i, Input::ParquetObject(_)));
    let lines = inputs.iter().find(|i| !i.is_parquet());
    if let (Some(parquet), Some(lines)) = (parquet, lines) {
        return Err(InputError::Mixed {
            parquet: parquet.display_name(),
            jsonl: lines.display_name(),
        });
    }
    Ok(Expanded {
        inputs,
        not_found,
        pruned,
    })
}

/// Holds the archive parts among `files` (found for argument `arg`) against their archives'
/// manifests: the parts that may be read, the problems added to `not_found`.
fn check_archive_parts(
    files: Vec<PathBuf>,
    arg: &str,
    path: &Path,
    filter: TimeFilter,
    not_found: &mut Vec<InputError>,
) -> Vec<PathBuf> {
    let found: Vec<manifest::FoundPart> = files
        .iter()
        .filter(|f| manifest::split_part(&f.to_string_lossy()).is_some())
        .map(|f| manifest::FoundPart {
            path: f.to_string_lossy().into_owned(),
            bytes: std::fs::metadata(f).map_or(0, |m| m.len()),
        })
        .collect();
    if found.is_empty() {
        return files;
    }
    let glob = arg
        .contains(['*', '?', '['])
        .then(|| glob_root(arg).ok().map(|(_, glob)| glob))
        .flatten();
    let checked = manifest::check_parts(
        &found,
        |root| {
            let root = Path::new(if root.is_empty() { "." } else { root });
            (
                read_manifest(&root.join(manifest::MANIFEST_FILE)),
                root.join(manifest::PROGRESS_FILE).exists(),
            )
        },
        |root, part| {
            let joined = Path::new(root).join(part);
            let asked = match &glob {
                Some(glob) => glob.is_match(&joined),
                None => path.is_dir() && joined.starts_with(path),
            };
            asked && filter.may_hold_path(part)
        },
    );
    not_found.extend(checked.problems.into_iter().map(InputError::Archive));
    files
        .into_iter()
        .filter(|f| !checked.refused.contains(f.to_string_lossy().as_ref()))
        .collect()
}

/// A local archive's manifest: `Ok(None)` when there is none.
fn read_manifest(path: &Path) -> manifest::Loaded {
    match std::fs::read(path) {
        Ok(bytes) => manifest::parse_manifest(&bytes).map(Some),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

fn is_data_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    !(name.starts_with('.') || name.starts_with('_') || name.ends_with(".tmp"))
}

fn files_below(dir: &Path, keep: impl Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .follow_links(true)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && is_data_file(e.path()) && keep(e.path()))
        .map(|e| e.into_path())
        .collect();
    files.sort();
    files
}

/// A glob's matcher, and the folder to walk for it: the longest leading path without glob
/// characters (`.` if none).
pub(crate) fn glob_root(pattern: &str) -> Result<(PathBuf, globset::GlobMatcher), InputError> {
    let glob = globset::GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|e| InputError::BadGlob {
            pattern: pattern.to_string(),
            message: e.to_string(),
        })?
        .compile_matcher();
    let literal: PathBuf = Path::new(pattern)
        .components()
        .take_while(|c| {
            !c.as_os_str()
                .to_string_lossy()
                .contains(['*', '?', '[', '{'])
        })
        .collect();
    let root = if literal.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        literal
    };
    Ok((root, glob))
}

fn glob_files(pattern: &str) -> Result<Vec<PathBuf>, InputError> {
    let (root, glob) = glob_root(pattern)?;
    let relative = !Path::new(pattern).is_absolute() && !pattern.starts_with("./");
    let files = files_below(&root, |p| {
        let shown = if relative {
            p.strip_prefix("./").unwrap_or(p)
        } else {
            p
        };
        glob.is_match(shown)
    });
    Ok(files)
}

impl Input {
    pub fn from_arg(arg: &str) -> Input {
        if arg == "-" {
            Input::Stdin
        } else {
            Input::File(PathBuf::from(arg))
        }
    }

    /// How reports name this input.
    pub fn display_name(&self) -> String {
        match self {
            Input::Stdin => "<stdin>".into(),
            Input::File(path) | Input::Parquet(path) | Input::ParquetRows(path) => {
                path.display().to_string()
            }
            Input::Object(object) | Input::ParquetObject(object) => object.url.clone(),
            Input::Topic(partition) => partition.url.clone(),
        }
    }

    /// Whether it is Parquet read column-wise (local or in a store).
    pub fn is_parquet(&self) -> bool {
        matches!(self, Input::Parquet(_) | Input::ParquetObject(_))
    }

    /// Where it is, when it is Parquet read column-wise.
    pub fn parquet_source(&self) -> Option<parquet::ParquetSource> {
        match self {
            Input::Parquet(path) => Some(parquet::ParquetSource::Local(path.clone())),
            Input::ParquetObject(object) => Some(parquet::ParquetSource::Object(
                object::RemoteParquet(Arc::clone(object)),
            )),
            _ => None,
        }
    }

    /// Opens the input, decompressing gzip (detected by its magic bytes, not its name).
    pub fn open(&self) -> io::Result<Box<dyn Read + Send>> {
        self.open_counted(&Arc::default())
    }

    /// [`Input::open`], adding to `read` the bytes read of the input as stored (before
    /// decompression), for a progress display. A vendor's Parquet export, read by rows, adds
    /// nothing.
    pub fn open_counted(&self, read: &Arc<AtomicU64>) -> io::Result<Box<dyn Read + Send>> {
        let counted = |inner: Box<dyn Read + Send>| Counted {
            inner,
            read: Arc::clone(read),
        };
        match self {
            Input::Stdin => decompressed(BufReader::with_capacity(
                1 << 16,
                counted(Box::new(io::stdin())),
            )),
            Input::File(path) => {
                let file = open_file(path)?;
                decompressed(BufReader::with_capacity(1 << 16, counted(file)))
            }
            // Read among line inputs: its rows as canonical JSON objects, one a line.
            Input::Parquet(path) => Ok(Box::new(rows::ParquetRows::open_canonical(path)?)),
            Input::ParquetRows(path) => Ok(Box::new(rows::ParquetRows::open(path)?)),
            Input::Object(object) | Input::ParquetObject(object) => {
                decompressed(BufReader::with_capacity(1 << 16, counted(object.stream()?)))
            }
            Input::Topic(partition) => Ok(Box::new(BufReader::with_capacity(
                1 << 16,
                counted(topic::stream(partition)?),
            ))),
        }
    }

    /// Its size as stored, when known before it is read and counted by
    /// [`Input::open_counted`] (not for stdin, nor for a vendor's Parquet export).
    pub fn size(&self) -> Option<u64> {
        match self {
            Input::Stdin | Input::ParquetRows(_) | Input::Parquet(_) | Input::Topic(_) => None,
            Input::File(path) => std::fs::metadata(path).ok().map(|m| m.len()),
            Input::Object(object) | Input::ParquetObject(object) => Some(object.size),
        }
    }
}

/// A reader that adds the bytes read through it to a counter shared with a progress display.
struct Counted<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Relaxed);
        Ok(n)
    }
}

/// A file opened for reading as a stream (a directory is refused).
fn open_file(path: &Path) -> io::Result<Box<dyn Read + Send>> {
    let file = File::open(path)?;
    if file.metadata()?.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "is a directory (JSON-lines inputs are files)",
        ));
    }
    Ok(Box::new(file))
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

fn decompressed<R: BufRead + Send + 'static>(mut reader: R) -> io::Result<Box<dyn Read + Send>> {
    let head = reader.fill_buf()?;
    if head.starts_with(&GZIP_MAGIC) {
        Ok(Box::new(MultiGzDecoder::new(reader)))
    } else {
        Ok(Box::new(reader))
    }
}
