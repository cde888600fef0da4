//! Following files like `tail -F`: the files named by paths and globs are read as they grow, new
//! files that match are picked up, and rotation is survived. A file is identified by a
//! **fingerprint** of its first bytes (up to [`FINGERPRINT_BYTES`]), not by its path or inode
//! alone, so that:
//!
//! - a file renamed away (logrotate `create`) is read to its end through the open handle, and
//!   its last line is flushed even without a newline; the new file at the path is read from its
//!   start;
//! - a file truncated in place (logrotate `copytruncate`) is read from its new start, and if
//!   the copy is among the followed paths the rest of the old content is read from the copy;
//! - a deleted file is read to its end, then dropped;
//! - a restart resumes each file at the byte offset its checkpoint recorded, wherever the file
//!   moved meanwhile (of several files with its start, the one its fingerprint covers most);
//!   a file not in the checkpoint but written since is read from its start.
//!
//! Only whole lines are handed out; a partial last line waits for its newline. Each file's lines
//! are framed by its own [`Framer`], the one `replay` frames with, so that what `replay` reads
//! `watch` reads too:
//!
//! - lines are capped by the input's [`LineCap`] (a CloudTrail document may be hundreds of
//!   megabytes on one line);
//! - a last line without a newline that is a whole CloudTrail document (`{"Records":[…]}`, as
//!   CloudTrail delivers its files) is handed out: its writer will add nothing;
//! - a gzip file (told by its magic bytes, not its name) is an **object** delivered whole: it is
//!   read once its gzip stream is complete, through the same [`LineReader`] as `replay`, and a
//!   gzip member appended later is read when it is complete in turn. A gzip file whose
//!   decompressed start is a file already followed (logrotate's `compress`) is a copy and is not
//!   read again.
//!
//! A file read whole is **closed**: its handle is released and it is remembered by identity and
//! length, so that a tree of thousands of delivered files holds no descriptor per file; it is
//! read again only if it grows.
//!
//! Polling (no inotify) keeps it portable and cheap: one `fstat` per followed file per poll, and
//! the globs are expanded again every `scan_every`.

use crate::format::Line;
use crate::format::decode::{LineCap, is_document, is_whole_document};
use crate::source::frame::Framer;
use crate::source::lines::LineReader;
use flate2::read::MultiGzDecoder;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// How many leading bytes identify a file.
pub const FINGERPRINT_BYTES: usize = 1024;

/// How many bytes are read from one file per poll: bounds latency for the other files.
const READ_CHUNK: usize = 1 << 20;

/// A hash of a file's first `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub len: u32,
    pub hash: u64,
}

impl Fingerprint {
    pub fn of(head: &[u8]) -> Fingerprint {
        let head = &head[..head.len().min(FINGERPRINT_BYTES)];
        let digest = Sha256::digest(head);
        let mut hash = [0u8; 8];
        hash.copy_from_slice(&digest[..8]);
        Fingerprint {
            len: head.len() as u32,
            hash: u64::from_le_bytes(hash),
        }
    }

    /// Whether a file starting with `head` is the file this fingerprint was taken of.
    pub fn matches(&self, head: &[u8]) -> bool {
        let len = self.len as usize;
        len > 0 && head.len() >= len && Fingerprint::of(&head[..len]) == *self
    }
}

/// Where reading of one file stands: what a checkpoint records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileCursor {
    /// Where the file was last seen (informative: files are found by fingerprint).
    pub path: PathBuf,
    pub fingerprint: Fingerprint,
    /// Byte offset just after the last whole line handed out.
    pub offset: u64,
    /// Lines handed out before `offset` (for error locations).
    pub line: u64,
}

/// How to follow.
#[derive(Debug, Clone)]
pub struct FollowOptions {
    /// Read files never seen before (and not in the checkpoint) from their start instead of
    /// their end. Files that appear after the start are always read from their start.
    pub from_beginning: bool,
    /// How often the globs are expanded again.
    pub scan_every: Duration,
    /// How long a file that no longer matches any path (renamed away, deleted) is still read
    /// from while it keeps growing, before it is dropped.
    pub rotate_wait: Duration,
    /// How long a line may be.
    pub line_cap: LineCap,
    /// When the checkpoint the restored cursors come from was written (by `watch`): a file not
    /// in it that has changed since is read from its start, whatever `from_beginning` says —
    /// it was created or written while the previous run could no longer record it (a rotation
    /// while stopped, a `kill -9` before the file's first checkpoint).
    pub checkpointed_at: Option<SystemTime>,
    /// Refuse symbolic links: a path or glob match that is one is reported and not read, and
    /// globs do not descend into linked directories. Off by default (links are followed).
    pub refuse_symlinks: bool,
}

impl Default for FollowOptions {
    fn default() -> Self {
        FollowOptions {
            from_beginning: false,
            scan_every: Duration::from_millis(250),
            rotate_wait: Duration::from_secs(2),
            line_cap: LineCap::new(
                crate::format::Format::Auto,
                crate::format::decode::DEFAULT_MAX_LINE_BYTES,
            ),
            checkpointed_at: None,
            refuse_symlinks: false,
        }
    }
}

/// Something noteworthy that happened to a followed file (for the logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileEvent {
    Opened {
        path: PathBuf,
        offset: u64,
    },
    Resumed {
        path: PathBuf,
        offset: u64,
    },
    Renamed {
        from: PathBuf,
        to: PathBuf,
    },
    Truncated {
        path: PathBuf,
    },
    Dropped {
        path: PathBuf,
    },
    /// A file delivered whole (gzip, a CloudTrail document) was read to its end; its handle is
    /// released.
    Closed {
        path: PathBuf,
    },
    /// A gzip file whose content is a file already followed (a rotated log compressed): not
    /// read again.
    CompressedCopy {
        path: PathBuf,
        of: PathBuf,
    },
    /// A gzip file that has ended inside its stream for [`FollowOptions::rotate_wait`]: it is
    /// read when the rest arrives.
    Incomplete {
        path: PathBuf,
    },
    /// A checkpointed file found under no followed path, and no file at its path: what was
    /// after its offset is lost.
    Missing {
        path: PathBuf,
        offset: u64,
    },
    /// A checkpointed file found under no followed path, and another file at its path: it was
    /// replaced (rotated) or truncated while stopped; what it gained after its offset is lost.
    Replaced {
        path: PathBuf,
        offset: u64,
    },
    Unreadable {
        path: PathBuf,
        error: String,
    },
    /// A symbolic link matched by a path or glob, not read (`refuse_symlinks`): said once per
    /// link.
    SymlinkRefused {
        path: PathBuf,
    },
    /// A path or glob given that names no file: said at the first scan, then every
    /// [`UNMATCHED_EVERY`] while it still names none.
    NothingMatches {
        pattern: String,
    },
}

/// How often a path or glob that names no file is reported again.
pub const UNMATCHED_EVERY: Duration = Duration::from_secs(60);

/// One file being followed.
#[derive(Debug)]
struct Followed {
    path: PathBuf,
    file: File,
    dev: u64,
    ino: u64,
    fingerprint: Fingerprint,
    /// Its lines, framed: where the last whole line handed out ends, how many there were, and
    /// the partial last line read after it (for a gzip file: the compressed bytes read whole).
    framer: Framer,
    /// Seen at a matching path in the last scan.
    seen: bool,
    /// When it was last found at a matching path or last grew.
    alive_at: Instant,
    /// A gzip file: read as whole objects, a complete gzip stream at a time.
    gzip: bool,
    /// Read to its end as a whole object: to be closed.
    whole: bool,
    /// A gzip stream that ends early: the length it had when found so, and whether that was
    /// reported.
    incomplete: Option<(u64, bool)>,
}

/// A file read whole and closed: remembered by identity and length.
#[derive(Debug)]
struct Closed {
    cursor: FileCursor,
    dev: u64,
    ino: u64,
    seen: bool,
}

impl Followed {
    fn cursor(&self) -> FileCursor {
        FileCursor {
            path: self.path.clone(),
            fingerprint: self.fingerprint,
            offset: self.framer.record_start(),
            line: self.framer.line_no(),
        }
    }
}

/// Follows a set of paths and globs.
#[derive(Debug)]
pub struct Follower {
    patterns: Vec<Pattern>,
    /// Per pattern: as given, and when it was last reported as naming no file.
    unmatched: Vec<(String, Option<Instant>)>,
    options: FollowOptions,
    files: Vec<Followed>,
    /// Files read whole, their handles released.
    closed: Vec<Closed>,
    /// Checkpointed cursors not matched to a file yet.
    restored: Vec<FileCursor>,
    first_scan: bool,
    last_scan: Option<Instant>,
    events: Vec<FileEvent>,
    /// What a read brings, before it is framed (one buffer for every file).
    buf: Vec<u8>,
    /// A file changed under us: scan at the next poll.
    rescan: bool,
    /// Files placed (followed from an offset, or recorded as read whole) so far.
    placed: u64,
    /// Symbolic links refused and reported (`refuse_symlinks`).
    refused: std::collections::BTreeSet<PathBuf>,
}

#[derive(Debug)]
enum Pattern {
    Literal(PathBuf),
    Glob {
        root: PathBuf,
        matcher: globset::GlobMatcher,
    },
}

/// The line handed out, with where it comes from.
#[derive(Debug)]
pub struct LineAt<'a> {
    pub path: &'a Path,
    /// 1-based line number.
    pub line: u64,
    pub content: Line<'a>,
}

impl Follower {
    /// Follows `paths` (files or globs), resuming the files in `restored` at their offsets.
    pub fn new(
        paths: &[String],
        options: FollowOptions,
        restored: Vec<FileCursor>,
    ) -> Result<Follower, crate::source::InputError> {
        let patterns = paths
            .iter()
            .map(|p| Pattern::parse(p))
            .collect::<Result<_, _>>()?;
        Ok(Follower {
            patterns,
            unmatched: paths.iter().map(|p| (p.clone(), None)).collect(),
            options,
            files: Vec::new(),
            closed: Vec::new(),
            restored,
            first_scan: true,
            last_scan: None,
            events: Vec::new(),
            buf: vec![0; READ_CHUNK],
            rescan: false,
            placed: 0,
            refused: Default::default(),
        })
    }

    /// Where each followed file stands.
    pub fn cursors(&self) -> Vec<FileCursor> {
        let mut cursors: Vec<FileCursor> = self.files.iter().map(Followed::cursor).collect();
        cursors.extend(self.closed.iter().map(|c| c.cursor.clone()));
        // Checkpointed files not found yet are kept: they may come back (a mount, say).
        cursors.extend(self.restored.iter().cloned());
        cursors
    }

    /// Whether some file ends in a partial line (an event not handed out yet).
    pub fn holds_partial_line(&self) -> bool {
        self.files.iter().any(|f| f.framer.holds_partial())
    }

    /// Files followed now (open, or read whole and closed).
    pub fn file_count(&self) -> usize {
        self.files.len() + self.closed.len()
    }

    /// What happened to files since the last call.
    pub fn take_events(&mut self) -> Vec<FileEvent> {
        std::mem::take(&mut self.events)
    }

    /// Scans for files if due, then reads what each file has gained, handing out every whole
    /// line. Returns the number of bytes read.
    pub fn poll(&mut self, on_line: &mut dyn FnMut(LineAt<'_>)) -> u64 {
        self.scan_if_due(on_line);
        self.read(on_line)
    }

    /// Looks for new, moved and rotated files if a scan is due (the first call always scans).
    /// Returns whether a file was placed that no checkpoint knows yet: a caller that
    /// checkpoints before the next [`Follower::read`] makes where it starts durable before any
    /// of its lines is used, so a restart after `kill -9` starts it there too.
    pub fn scan_if_due(&mut self, on_line: &mut dyn FnMut(LineAt<'_>)) -> bool {
        let now = Instant::now();
        if !(self.rescan
            || self
                .last_scan
                .is_none_or(|t| now.duration_since(t) >= self.options.scan_every))
        {
            return false;
        }
        self.rescan = false;
        let placed = self.placed;
        self.scan(on_line);
        self.order_oldest_first();
        self.last_scan = Some(now);
        self.placed != placed
    }

    /// Files are read oldest-written first. After a restart, or a rotation while stopped, the
    /// rest of a rotated file holds older events than the file now at its path; read the other
    /// way round, the newer file would move time past them and they would be late.
    fn order_oldest_first(&mut self) {
        let modified = |f: &Followed| f.file.metadata().and_then(|m| m.modified()).ok();
        self.files
            .sort_by_cached_key(|f| (modified(f), f.path.clone()));
    }

    /// Reads what each followed file has gained, handing out every whole line. Returns the
    /// number of bytes read.
    pub fn read(&mut self, on_line: &mut dyn FnMut(LineAt<'_>)) -> u64 {
        let now = Instant::now();
        let mut read = 0;
        for i in 0..self.files.len() {
            read += self.read_file(i, on_line);
        }
        self.drop_rotated_away(now, on_line);
        self.close_whole();
        read
    }

    /// Releases the files read whole.
    fn close_whole(&mut self) {
        let mut i = 0;
        while i < self.files.len() {
            if !self.files[i].whole {
                i += 1;
                continue;
            }
            let f = self.files.remove(i);
            self.events.push(FileEvent::Closed {
                path: f.path.clone(),
            });
            self.closed.push(Closed {
                cursor: f.cursor(),
                dev: f.dev,
                ino: f.ino,
                seen: true,
            });
        }
    }

    /// Reads what gzip file `i` gained, if it is a complete gzip stream: all its lines at once.
    fn read_gzip(&mut self, i: usize, on_line: &mut dyn FnMut(LineAt<'_>)) -> u64 {
        let cap = self.options.line_cap;
        let f = &mut self.files[i];
        let len = match f.file.metadata() {
            Ok(meta) => meta.len(),
            Err(_) => return 0,
        };
        let offset = f.framer.record_start();
        if len <= offset {
            return 0;
        }
        let gained = Gained {
            file: &f.file,
            at: offset,
            end: len,
        };
        match io::copy(&mut MultiGzDecoder::new(gained), &mut io::sink()) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                // Still being written, or cut short: wait for the rest, and say so once it
                // has stopped growing.
                match &mut f.incomplete {
                    Some((at, reported)) if *at == len => {
                        if !*reported && f.alive_at.elapsed() >= self.options.rotate_wait {
                            *reported = true;
                            self.events.push(FileEvent::Incomplete {
                                path: f.path.clone(),
                            });
                        }
                    }
                    _ => {
                        f.incomplete = Some((len, false));
                        f.alive_at = Instant::now();
                    }
                }
                return 0;
            }
            Err(e) => {
                // Corrupt: what decodes before the fault is read, as `replay` reads it.
                self.events.push(FileEvent::Unreadable {
                    path: f.path.clone(),
                    error: format!("{e} (read up to the fault)"),
                });
            }
        }
        f.incomplete = None;
        let gained = Gained {
            file: &f.file,
            at: offset,
            end: len,
        };
        // Its lines continue the numbers of the members read before.
        let before = f.framer.line_no();
        let mut lines = LineReader::new(MultiGzDecoder::new(gained), cap);
        let mut after = before;
        while let Ok(Some((n, content))) = lines.next_line() {
            after = before + n;
            on_line(LineAt {
                path: &f.path,
                line: after,
                content,
            });
        }
        f.framer = Framer::starting_at(cap, len, after);
        let read = len - offset;
        f.whole = true;
        f.alive_at = Instant::now();
        read
    }

    /// Reads what file `i` gained since the last read (at most one chunk).
    fn read_file(&mut self, i: usize, on_line: &mut dyn FnMut(LineAt<'_>)) -> u64 {
        if self.files[i].gzip {
            return self.read_gzip(i, on_line);
        }
        let f = &mut self.files[i];
        let position = f.framer.pushed();
        let n = match f.file.read_at(&mut self.buf, position) {
            Ok(n) => n,
            Err(e) => {
                self.events.push(FileEvent::Unreadable {
                    path: f.path.clone(),
                    error: e.to_string(),
                });
                return 0;
            }
        };
        if n == 0 {
            return 0;
        }
        let head = match read_head(&f.file) {
            Ok(head) if f.fingerprint.matches(&head) => head,
            _ => {
                // Truncated (and perhaps written again) since the last read: the next scan
                // tells a copy from a restart in place.
                self.rescan = true;
                return 0;
            }
        };
        f.alive_at = Instant::now();
        f.framer.push_each(&self.buf[..n], &mut |line, content| {
            on_line(LineAt {
                path: &f.path,
                line,
                content,
            })
        });
        // A file delivered whole as one CloudTrail document ends without a newline.
        let at_end = n < self.buf.len();
        if at_end && f.framer.held().is_some_and(is_whole_document) {
            self.flush_partial(i, on_line);
            self.files[i].whole = true;
        }
        let f = &mut self.files[i];
        if (f.fingerprint.len as usize) < FINGERPRINT_BYTES {
            // The file grew: identify it by more of its start.
            f.fingerprint = Fingerprint::of(&head);
        }
        n as u64
    }

    /// Hands out the partial last line of file `i` as a whole line (its file ended for good).
    fn flush_partial(&mut self, i: usize, on_line: &mut dyn FnMut(LineAt<'_>)) {
        let f = &mut self.files[i];
        if let Some((line, content)) = f.framer.finish() {
            on_line(LineAt {
                path: &f.path,
                line,
                content,
            });
        }
    }

    /// Drops files no path matches any more once they stopped growing for `rotate_wait`,
    /// after flushing their last line.
    fn drop_rotated_away(&mut self, now: Instant, on_line: &mut dyn FnMut(LineAt<'_>)) {
        let mut i = 0;
        while i < self.files.len() {
            let f = &self.files[i];
            let gone = !f.seen && now.duration_since(f.alive_at) >= self.options.rotate_wait;
            if gone && self.read_file(i, on_line) == 0 {
                self.flush_partial(i, on_line);
                let f = self.files.remove(i);
                self.events.push(FileEvent::Dropped { path: f.path });
                continue;
            }
            i += 1;
        }
    }

    /// Expands the patterns and matches what it finds to the followed files.
    fn scan(&mut self, on_line: &mut dyn FnMut(LineAt<'_>)) {
        let mut found: Vec<(PathBuf, fs::Metadata)> = Vec::new();
        let now = Instant::now();
        for (pattern, (text, reported)) in self.patterns.iter().zip(&mut self.unmatched) {
            let before = found.len();
            let mut links = Vec::new();
            pattern.expand(self.options.refuse_symlinks, &mut found, &mut links);
            for path in links {
                if self.refused.insert(path.clone()) {
                    self.events.push(FileEvent::SymlinkRefused { path });
                }
            }
            if found.len() > before {
                *reported = None;
            } else if reported.is_none_or(|at| now.duration_since(at) >= UNMATCHED_EVERY) {
                *reported = Some(now);
                self.events.push(FileEvent::NothingMatches {
                    pattern: text.clone(),
                });
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found.dedup_by(|a, b| a.0 == b.0);
        // One file reached by several paths (a symbolic link, a hard link) is read once: under
        // the path it is already followed by, else the first.
        let mut by_identity: HashMap<(u64, u64), usize> = HashMap::new();
        let mut keep = vec![true; found.len()];
        for (i, (path, meta)) in found.iter().enumerate() {
            match by_identity.entry((meta.dev(), meta.ino())) {
                Entry::Vacant(slot) => {
                    slot.insert(i);
                }
                Entry::Occupied(mut first) => {
                    keep[i] = false;
                    if self.files.iter().any(|f| &f.path == path) {
                        keep[*first.get()] = false;
                        keep[i] = true;
                        first.insert(i);
                    }
                }
            }
        }
        let mut keep = keep.into_iter();
        found.retain(|_| keep.next().unwrap_or(true));
        for f in &mut self.files {
            f.seen = false;
        }
        for c in &mut self.closed {
            c.seen = false;
        }
        // 1. The usual case: the same file at the same path, not truncated.
        let mut rest: Vec<(PathBuf, fs::Metadata)> = Vec::new();
        for (path, meta) in found {
            let identity = (meta.dev(), meta.ino());
            if let Some(c) = self
                .closed
                .iter()
                .position(|c| c.cursor.path == path && (c.dev, c.ino) == identity)
            {
                if meta.len() == self.closed[c].cursor.offset {
                    self.closed[c].seen = true;
                    continue;
                }
                // Read whole, and changed since: resumed like a checkpointed file.
                let closed = self.closed.swap_remove(c);
                self.restored.push(closed.cursor);
            }
            let same = self.files.iter_mut().find(|f| {
                f.path == path
                    && (f.dev, f.ino) == (meta.dev(), meta.ino())
                    && meta.len() >= f.framer.pushed()
                    && read_head(&f.file).is_ok_and(|h| f.fingerprint.matches(&h))
            });
            match same {
                Some(f) => {
                    f.seen = true;
                    f.alive_at = now;
                }
                None => rest.push((path, meta)),
            }
        }
        // 2. Everything else is told apart by its first bytes.
        let mut candidates: Vec<(PathBuf, fs::Metadata, File, Vec<u8>)> = Vec::new();
        for (path, meta) in rest {
            let file = match File::open(&path) {
                Ok(file) => file,
                Err(e) => {
                    // Gone between listing and opening, or unreadable: try again next scan.
                    if e.kind() != io::ErrorKind::NotFound {
                        self.events.push(FileEvent::Unreadable {
                            path: path.clone(),
                            error: e.to_string(),
                        });
                    }
                    continue;
                }
            };
            // Nothing to identify an empty file by yet: it is read from its start once it has
            // bytes.
            if let Ok(head) = read_head(&file).map_err(|_| ()).and_then(non_empty) {
                candidates.push((path, meta, file, head));
            }
        }
        // 2a. A followed file with this start: moved (renamed), or this is the copy of one
        // truncated in place or deleted (copytruncate).
        let mut unmatched = Vec::new();
        for (path, meta, file, head) in candidates {
            let identity = (meta.dev(), meta.ino());
            if let Some(c) = self.closed.iter_mut().find(|c| {
                !c.seen && c.cursor.fingerprint.matches(&head) && meta.len() == c.cursor.offset
            }) {
                // A file read whole, moved.
                self.events.push(FileEvent::Renamed {
                    from: std::mem::replace(&mut c.cursor.path, path.clone()),
                    to: path,
                });
                (c.dev, c.ino) = identity;
                c.seen = true;
                continue;
            }
            let matched = self
                .files
                .iter()
                .position(|f| !f.seen && f.fingerprint.matches(&head));
            let Some(i) = matched else {
                unmatched.push((path, meta, file, head));
                continue;
            };
            let f = &mut self.files[i];
            if (f.dev, f.ino) == identity {
                if f.path != path {
                    self.events.push(FileEvent::Renamed {
                        from: f.path.clone(),
                        to: path.clone(),
                    });
                    f.path = path;
                }
                f.seen = true;
                f.alive_at = now;
                continue;
            }
            let moved_out = f.file.metadata().map(|m| m.nlink() == 0).unwrap_or(true)
                || !read_head(&f.file).is_ok_and(|h| f.fingerprint.matches(&h));
            if moved_out && meta.len() >= f.framer.record_start() {
                // The content continues in this copy: read the rest from it.
                self.events.push(FileEvent::Renamed {
                    from: f.path.clone(),
                    to: path.clone(),
                });
                f.file = file;
                (f.dev, f.ino) = identity;
                f.path = path;
                f.seen = true;
                f.alive_at = now;
                continue;
            }
            unmatched.push((path, meta, file, head));
        }
        for (path, meta, file, head) in unmatched {
            let identity = (meta.dev(), meta.ino());
            // A file truncated in place (no copy of it found): its old partial line ends here;
            // the new content is read from the start.
            if let Some(i) = self
                .files
                .iter()
                .position(|f| !f.seen && f.path == path && (f.dev, f.ino) == identity)
            {
                self.events
                    .push(FileEvent::Truncated { path: path.clone() });
                self.flush_partial(i, on_line);
                let f = &mut self.files[i];
                f.fingerprint = Fingerprint::of(&head);
                f.framer = Framer::new(self.options.line_cap);
                f.seen = true;
                f.alive_at = now;
                continue;
            }
            // A checkpointed file, wherever it is now: of the cursors whose start it has, the
            // one identified by the most bytes, at the same path first.
            if let Some(r) = self
                .restored
                .iter()
                .enumerate()
                .filter(|(_, c)| {
                    c.fingerprint.matches(&head) && (meta.len() >= c.offset || c.path == path)
                })
                .max_by_key(|(_, c)| (c.fingerprint.len, c.path == path))
                .map(|(r, _)| r)
            {
                let cursor = self.restored.remove(r);
                let (offset, line) = if meta.len() >= cursor.offset {
                    (cursor.offset, cursor.line)
                } else {
                    // Truncated meanwhile: nothing to resume.
                    (0, 0)
                };
                if offset == meta.len() && offset > 0 && is_object(&file, &head, offset) {
                    self.close(path, identity, &head, offset, line);
                    continue;
                }
                self.events.push(FileEvent::Resumed {
                    path: path.clone(),
                    offset,
                });
                self.follow(path, file, identity, &head, offset, line, now);
                continue;
            }
            if head.starts_with(&GZIP_MAGIC)
                && let Some(of) = self.compressed_copy_of(&file)
            {
                self.events.push(FileEvent::CompressedCopy {
                    path: path.clone(),
                    of,
                });
                self.close(path, identity, &head, meta.len(), 0);
                continue;
            }
            // A new file: from its end if it was there before we started, unchanged since the
            // last checkpoint (like tail), else from its start. A file delivered whole that was
            // there counts as read, like the lines of a file followed from its end.
            let from_end = self.first_scan
                && !self.options.from_beginning
                && !self.changed_since_checkpoint(&meta);
            if from_end && (head.starts_with(&GZIP_MAGIC) || is_document(&head)) {
                self.close(path, identity, &head, meta.len(), 0);
                continue;
            }
            let (offset, line) = if from_end {
                match end_of_last_line(&file, meta.len()) {
                    Ok(end) => end,
                    Err(e) => {
                        self.events.push(FileEvent::Unreadable {
                            path,
                            error: e.to_string(),
                        });
                        continue;
                    }
                }
            } else {
                (0, 0)
            };
            self.events.push(FileEvent::Opened {
                path: path.clone(),
                offset,
            });
            self.follow(path, file, identity, &head, offset, line, now);
        }
        // A file read whole that is gone has nothing more to give.
        self.closed.retain(|c| c.seen);
        if self.first_scan {
            for cursor in self.restored.drain(..) {
                let (path, offset) = (cursor.path, cursor.offset);
                self.events.push(if path.exists() {
                    FileEvent::Replaced { path, offset }
                } else {
                    FileEvent::Missing { path, offset }
                });
            }
        }
        self.first_scan = false;
    }

    #[allow(clippy::too_many_arguments)]
    fn follow(
        &mut self,
        path: PathBuf,
        file: File,
        (dev, ino): (u64, u64),
        head: &[u8],
        offset: u64,
        line: u64,
        now: Instant,
    ) {
        self.placed += 1;
        self.files.push(Followed {
            path,
            file,
            dev,
            ino,
            fingerprint: Fingerprint::of(head),
            framer: Framer::starting_at(self.options.line_cap, offset, line),
            seen: true,
            alive_at: now,
            gzip: head.starts_with(&GZIP_MAGIC),
            whole: false,
            incomplete: None,
        });
    }

    /// Whether a file was written after the checkpoint the run resumes from (with a second's
    /// margin for the clocks of file systems).
    fn changed_since_checkpoint(&self, meta: &fs::Metadata) -> bool {
        let Some(at) = self.options.checkpointed_at else {
            return false;
        };
        let at = at.checked_sub(Duration::from_secs(1)).unwrap_or(at);
        meta.modified().is_ok_and(|modified| modified >= at)
    }

    /// Remembers a file as read whole up to `offset`, without holding it open.
    fn close(
        &mut self,
        path: PathBuf,
        (dev, ino): (u64, u64),
        head: &[u8],
        offset: u64,
        line: u64,
    ) {
        self.placed += 1;
        self.closed.push(Closed {
            cursor: FileCursor {
                path,
                fingerprint: Fingerprint::of(head),
                offset,
                line,
            },
            dev,
            ino,
            seen: true,
        });
    }

    /// The followed file whose content the gzip `file` starts with, if any.
    fn compressed_copy_of(&self, file: &File) -> Option<PathBuf> {
        let mut head = Vec::with_capacity(FINGERPRINT_BYTES);
        let whole = Gained {
            file,
            at: 0,
            end: u64::MAX,
        };
        MultiGzDecoder::new(whole)
            .take(FINGERPRINT_BYTES as u64)
            .read_to_end(&mut head)
            .ok()?;
        let followed = self.files.iter().map(|f| (&f.path, &f.fingerprint));
        let closed = self
            .closed
            .iter()
            .map(|c| (&c.cursor.path, &c.cursor.fingerprint));
        followed
            .chain(closed)
            .find(|(_, fingerprint)| fingerprint.matches(&head))
            .map(|(path, _)| path.clone())
    }
}

/// The first bytes of a gzip file.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Whether a file read up to its length `len` was read whole: a gzip file (read a complete
/// stream at a time), or one whose last line has no newline (a document handed out whole).
fn is_object(file: &File, head: &[u8], len: u64) -> bool {
    let mut last = [0u8];
    head.starts_with(&GZIP_MAGIC)
        || (file.read_at(&mut last, len - 1).is_ok_and(|n| n == 1) && last[0] != b'\n')
}

/// The bytes of a file from `at` to `end`, read without moving its cursor.
struct Gained<'f> {
    file: &'f File,
    at: u64,
    end: u64,
}

impl Read for Gained<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = (self.end - self.at).min(buf.len() as u64) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

fn non_empty(head: Vec<u8>) -> Result<Vec<u8>, ()> {
    if head.is_empty() { Err(()) } else { Ok(head) }
}

fn read_head(file: &File) -> io::Result<Vec<u8>> {
    let mut head = vec![0u8; FINGERPRINT_BYTES];
    let mut len = 0;
    while len < head.len() {
        let n = file.read_at(&mut head[len..], len as u64)?;
        if n == 0 {
            break;
        }
        len += n;
    }
    head.truncate(len);
    Ok(head)
}

/// The offset just after the last newline of a file of `size` bytes, and the lines before it.
fn end_of_last_line(file: &File, size: u64) -> io::Result<(u64, u64)> {
    let mut buf = vec![0u8; 1 << 20];
    let (mut position, mut lines, mut end) = (0u64, 0u64, 0u64);
    while position < size {
        let n = file.read_at(&mut buf, position)?;
        if n == 0 {
            break;
        }
        for i in memchr::memchr_iter(b'\n', &buf[..n]) {
            lines += 1;
            end = position + i as u64 + 1;
        }
        position += n as u64;
    }
    Ok((end, lines))
}

impl Pattern {
    fn parse(text: &str) -> Result<Pattern, crate::source::InputError> {
        if !text.contains(['*', '?', '[', '{']) {
            return Ok(Pattern::Literal(PathBuf::from(text)));
        }
        let (root, matcher) = crate::source::glob_root(text)?;
        Ok(Pattern::Glob { root, matcher })
    }

    /// Adds the files this pattern names to `found`; with `refuse_symlinks`, the symbolic
    /// links it matches go to `links` instead.
    fn expand(
        &self,
        refuse_symlinks: bool,
        found: &mut Vec<(PathBuf, fs::Metadata)>,
        links: &mut Vec<PathBuf>,
    ) {
        let mut consider = |path: &Path| {
            if refuse_symlinks
                && fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
            {
                links.push(path.to_path_buf());
            } else if let Ok(meta) = fs::metadata(path)
                && meta.is_file()
            {
                found.push((path.to_path_buf(), meta));
            }
        };
        match self {
            Pattern::Literal(path) => consider(path),
            Pattern::Glob { root, matcher } => {
                let walk = walkdir::WalkDir::new(root)
                    .follow_links(!refuse_symlinks)
                    .max_depth(16);
                for entry in walk.into_iter().filter_map(Result::ok) {
                    let path = entry.path();
                    let candidate = path.strip_prefix("./").unwrap_or(path);
                    if matcher.is_match(candidate) {
                        consider(path);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn lines(follower: &mut Follower) -> Vec<String> {
        let mut out = Vec::new();
        follower.poll(&mut |at| match at.content {
            Line::Text(t) => out.push(String::from_utf8_lossy(t).into_owned()),
            Line::TooLong => out.push("<too long>".into()),
        });
        out
    }

    fn options() -> FollowOptions {
        FollowOptions {
            scan_every: Duration::ZERO,
            rotate_wait: Duration::ZERO,
            ..FollowOptions::default()
        }
    }

    fn append(path: &Path, bytes: impl AsRef<[u8]>) {
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(bytes.as_ref()).unwrap();
    }

    #[test]
    fn the_oldest_written_file_is_read_first() {
        // The rest of a file rotated while stopped, then the file now at its path: read in
        // name order, the newer events would come first and make the older ones late.
        let dir = tempfile::tempdir().unwrap();
        append(&dir.path().join("app.log.1"), "older 1\nolder 2\n");
        std::thread::sleep(Duration::from_millis(20));
        append(&dir.path().join("app.log"), "newer\n");
        let glob = format!("{}/app.log*", dir.path().display());
        let options = FollowOptions {
            from_beginning: true,
            ..options()
        };
        let mut f = Follower::new(&[glob], options, Vec::new()).unwrap();
        assert_eq!(lines(&mut f), ["older 1", "older 2", "newer"]);
    }

    #[test]
    fn refused_symlinks_are_reported_once_and_never_read() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        let elsewhere = dir.path().join("elsewhere");
        fs::create_dir_all(&logs).unwrap();
        fs::create_dir_all(&elsewhere).unwrap();
        append(&elsewhere.join("secret.log"), "");
        append(&logs.join("app.log"), "");
        std::os::unix::fs::symlink(elsewhere.join("secret.log"), logs.join("evil.log")).unwrap();
        std::os::unix::fs::symlink(&elsewhere, logs.join("sub")).unwrap();
        let glob = format!("{}/**/*.log", logs.display());
        let literal = logs.join("evil.log").display().to_string();
        let follow = |refuse_symlinks| {
            let options = FollowOptions {
                from_beginning: true,
                refuse_symlinks,
                ..options()
            };
            Follower::new(&[glob.clone(), literal.clone()], options, Vec::new()).unwrap()
        };
        let mut refusing = follow(true);
        let mut following = follow(false);
        for f in [&mut refusing, &mut following] {
            lines(f);
        }
        append(&elsewhere.join("secret.log"), "secret\n");
        append(&logs.join("app.log"), "app\n");
        assert_eq!(lines(&mut refusing), ["app"]);
        let mut followed = lines(&mut following);
        followed.sort();
        assert_eq!(
            followed,
            ["app", "secret"],
            "followed by default, once for two paths"
        );
        let refused: Vec<PathBuf> = refusing
            .take_events()
            .into_iter()
            .filter_map(|e| match e {
                FileEvent::SymlinkRefused { path } => Some(path),
                _ => None,
            })
            .collect();
        // The file link once (matched by both the glob and the literal path); the linked
        // directory is not entered.
        assert_eq!(refused, [logs.join("evil.log")]);
    }

    #[test]
    fn starts_at_the_end_and_waits_for_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a.log");
        append(&log, "old 1\nold 2\npart");
        let paths = [log.display().to_string()];
        let mut f = Follower::new(&paths, options(), Vec::new()).unwrap();
        assert!(lines(&mut f).is_empty());
        append(&log, "ial\nnew");
        assert_eq!(lines(&mut f), ["partial"]);
        append(&log, " line\r\n");
        assert_eq!(lines(&mut f), ["new line"]);
        assert_eq!(f.cursors()[0].line, 4);
    }

    #[test]
    fn follows_rename_and_create_and_flushes_the_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a.log");
        append(&log, "");
        let paths = [log.display().to_string()];
        let mut f = Follower::new(&paths, options(), Vec::new()).unwrap();
        lines(&mut f);
        append(&log, "one\ntwo\n");
        assert_eq!(lines(&mut f), ["one", "two"]);
        append(&log, "three\nunterminated");
        fs::rename(&log, dir.path().join("a.log.1")).unwrap();
        append(&log, "fresh\n");
        let mut got = lines(&mut f);
        got.extend(lines(&mut f));
        assert_eq!(got, ["three", "fresh", "unterminated"]);
    }

    #[test]
    fn copytruncate_reads_the_rest_from_the_copy_when_it_is_followed() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a.log");
        append(&log, "");
        let paths = [format!("{}/a.log*", dir.path().display())];
        let mut f = Follower::new(&paths, options(), Vec::new()).unwrap();
        lines(&mut f);
        append(&log, "one\n");
        assert_eq!(lines(&mut f), ["one"]);
        append(&log, "two\n");
        fs::copy(&log, dir.path().join("a.log.1")).unwrap();
        fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&log)
            .unwrap();
        append(&log, "after\n");
        let mut got = lines(&mut f);
        got.extend(lines(&mut f));
        got.sort();
        assert_eq!(got, ["after", "two"]);
    }

    #[test]
    fn resumes_from_a_cursor_after_a_rename() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a.log");
        append(&log, "");
        let paths = [format!("{}/*.log", dir.path().display())];
        let mut f = Follower::new(&paths, options(), Vec::new()).unwrap();
        lines(&mut f);
        append(&log, "one\n");
        assert_eq!(lines(&mut f), ["one"]);
        let cursors = f.cursors();
        drop(f);
        append(&log, "two\n");
        fs::rename(&log, dir.path().join("b.log")).unwrap();
        let mut f = Follower::new(&paths, options(), cursors).unwrap();
        assert_eq!(lines(&mut f), ["two"]);
        assert!(matches!(
            f.take_events()[0],
            FileEvent::Resumed { offset: 4, .. }
        ));
    }

    #[test]
    fn overlong_lines_are_reported_not_held() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a.log");
        append(&log, "");
        let paths = [log.display().to_string()];
        let options = FollowOptions {
            line_cap: LineCap {
                line: 8,
                document: 8,
            },
            ..options()
        };
        let mut f = Follower::new(&paths, options, Vec::new()).unwrap();
        lines(&mut f);
        append(&log, "0123456789abc");
        assert!(lines(&mut f).is_empty());
        append(&log, "def\nok\n");
        assert_eq!(lines(&mut f), ["<too long>", "ok"]);
        assert_eq!(f.cursors()[0].offset, 16 + 1 + 3);
    }

    fn gzip(text: &str) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(text.as_bytes()).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn a_gzip_file_is_read_once_whole_then_closed_and_a_member_appended_is_read_too() {
        let dir = tempfile::tempdir().unwrap();
        let paths = [format!("{}/*.gz", dir.path().display())];
        let mut f = Follower::new(&paths, options(), Vec::new()).unwrap();
        lines(&mut f);
        let log = dir.path().join("a.json.gz");
        let first = gzip("one\ntwo");
        append(&log, &first[..first.len() / 2]);
        assert!(lines(&mut f).is_empty(), "half a gzip stream is not read");
        append(&log, &first[first.len() / 2..]);
        assert_eq!(lines(&mut f), ["one", "two"]);
        assert!(
            f.take_events()
                .contains(&FileEvent::Closed { path: log.clone() })
        );
        assert!(f.files.is_empty(), "no handle is held");
        assert!(lines(&mut f).is_empty());
        append(&log, gzip("three\n"));
        assert_eq!(lines(&mut f), ["three"]);
        let cursors = f.cursors();
        assert_eq!(cursors[0].line, 3);
        // Restarted, a file read whole is not read again, nor held open.
        let mut f = Follower::new(&paths, options(), cursors).unwrap();
        assert!(lines(&mut f).is_empty());
        assert!(f.files.is_empty() && f.closed.len() == 1);
    }

    #[test]
    fn a_document_without_a_trailing_newline_is_read_once_whole() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("trail.json");
        append(&log, "");
        let paths = [log.display().to_string()];
        let mut f = Follower::new(&paths, options(), Vec::new()).unwrap();
        lines(&mut f);
        append(&log, r#"{"Records":[{"a":1},"#);
        assert!(lines(&mut f).is_empty());
        append(&log, r#"{"b":2}]}"#);
        assert_eq!(lines(&mut f), [r#"{"Records":[{"a":1},{"b":2}]}"#]);
        assert!(f.files.is_empty(), "closed once read whole");
        // A line of another kind without its newline still waits for it.
        let other = dir.path().join("app.jsonl");
        let paths = [other.display().to_string()];
        append(&other, "");
        let mut f = Follower::new(&paths, options(), Vec::new()).unwrap();
        lines(&mut f);
        append(&other, r#"{"ts":1}"#);
        assert!(lines(&mut f).is_empty());
    }

    #[test]
    fn files_delivered_whole_before_the_start_are_read_only_from_the_beginning() {
        let dir = tempfile::tempdir().unwrap();
        append(&dir.path().join("a.json.gz"), gzip("zipped\n"));
        append(&dir.path().join("b.json"), r#"{"Records":[]}"#);
        let paths = [format!("{}/*.json*", dir.path().display())];
        let mut f = Follower::new(&paths, options(), Vec::new()).unwrap();
        assert!(lines(&mut f).is_empty());
        assert_eq!(f.file_count(), 2);
        let from_beginning = FollowOptions {
            from_beginning: true,
            ..options()
        };
        let mut f = Follower::new(&paths, from_beginning, Vec::new()).unwrap();
        assert_eq!(lines(&mut f), ["zipped", r#"{"Records":[]}"#]);
    }

    #[test]
    fn a_rotated_log_compressed_is_a_copy_not_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        append(&log, "");
        let paths = [format!("{}/app.log*", dir.path().display())];
        let mut f = Follower::new(&paths, options(), Vec::new()).unwrap();
        lines(&mut f);
        append(&log, "one\ntwo\n");
        assert_eq!(lines(&mut f), ["one", "two"]);
        // logrotate `compress`: renamed, compressed, the original removed.
        let rotated = dir.path().join("app.log.1.gz");
        append(&rotated, gzip("one\ntwo\n"));
        fs::remove_file(&log).unwrap();
        let mut got = lines(&mut f);
        got.extend(lines(&mut f));
        assert!(got.is_empty(), "{got:?}");
        assert!(f.take_events().contains(&FileEvent::CompressedCopy {
            path: rotated,
            of: log
        }));
    }

    #[test]
    fn a_cursor_goes_to_the_file_it_identifies_best() {
        // Two files with the same first lines: the rotated one is longer. Each cursor finds
        // its own, not the first whose start matches.
        let dir = tempfile::tempdir().unwrap();
        let (log, rotated) = (dir.path().join("a.log"), dir.path().join("a.log.1"));
        append(&rotated, "same start\n".repeat(200));
        append(&log, "same start\n".repeat(3));
        let paths = [format!("{}/a.log*", dir.path().display())];
        let from_beginning = FollowOptions {
            from_beginning: true,
            ..options()
        };
        let mut f = Follower::new(&paths, from_beginning, Vec::new()).unwrap();
        assert_eq!(lines(&mut f).len(), 203);
        let mut cursors = f.cursors();
        cursors.sort_by_key(|c| c.offset);
        let mut f = Follower::new(&paths, options(), cursors).unwrap();
        lines(&mut f);
        let mut resumed: Vec<_> = f
            .take_events()
            .into_iter()
            .filter_map(|e| match e {
                FileEvent::Resumed { path, offset } => Some((path, offset)),
                _ => None,
            })
            .collect();
        resumed.sort();
        assert_eq!(resumed, [(log, 33), (rotated, 2200)]);
    }

    #[test]
    fn after_a_checkpoint_a_file_changed_since_is_read_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a.log");
        append(&log, "written while stopped\n");
        let paths = [log.display().to_string()];
        let at = |ago: i64| FollowOptions {
            checkpointed_at: Some(if ago >= 0 {
                SystemTime::now() - Duration::from_secs(ago as u64)
            } else {
                SystemTime::now() + Duration::from_secs(-ago as u64)
            }),
            ..options()
        };
        let mut f = Follower::new(&paths, at(60), Vec::new()).unwrap();
        assert_eq!(lines(&mut f), ["written while stopped"]);
        // Not changed since the checkpoint: there before, followed from its end like tail.
        let mut f = Follower::new(&paths, at(-60), Vec::new()).unwrap();
        assert!(lines(&mut f).is_empty());
    }
}
