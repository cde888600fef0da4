//! The state directory of `exposure watch` and `exposure learn`: its layout, its lock, and the
//! writes every file in it goes through (atomic replacement or append, files 0600 in a 0700
//! directory, errors naming the file). Nothing else in the code names a file in it. Its
//! bounded read of a regular file also serves the configuration file ([`read_regular`]).
//!
//! The state cannot be redirected: a state dir writable by other users, or owned by another
//! user, is refused (naming the fix); its files are opened without following symlinks
//! (`O_NOFOLLOW`), and its subfolders must be real folders of this user.
//!
//! ```text
//! STATE_DIR/
//!   (the directory itself)        locked (flock) by the one process using it; 0700
//!   checkpoint.json               detector state + input offsets, written atomically
//!   outbox/                       the alert journal, in segments
//!   outbox/high-water.json        the highest sequence number ever journaled (acks beyond it
//!                                 are corrupt)
//!   sinks/NAME.ack                how far sink NAME has delivered
//!   sinks/NAME.dead-letter.jsonl  alerts sink NAME rejected for good
//!   sinks/NAME.firing.json        what an Alertmanager sink re-sends while windows are open
//!   *.corrupt-YYYYMMDDTHHMMSSZ    a file found corrupt, moved aside (never deleted)
//! ```

pub mod envelope;

use std::fs::{self, File};
use std::io::Read;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The checkpoint's file name.
pub const CHECKPOINT_FILE: &str = "checkpoint.json";

/// A state directory (not yet locked or created).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDir {
    root: PathBuf,
}

/// Another process holds the state directory, or it cannot be created or locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("state dir {0} is in use by another exposure process")]
    InUse(PathBuf),
    #[error("cannot create state dir {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot open {path} to lock it")]
    CreateLock {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot lock {path}")]
    Lock {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Unsafe(#[source] io::Error),
}

/// The held lock; released when dropped or when the process ends, even by `kill -9`.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

impl StateDir {
    pub fn new(root: impl Into<PathBuf>) -> StateDir {
        StateDir { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates the directory if missing (0700), then takes its lock: the directory itself is
    /// locked, not a file in it, so deleting or replacing a file cannot let a second process
    /// in while the first runs.
    pub fn lock(&self) -> Result<StateLock, LockError> {
        create_private_dir(&self.root).map_err(|source| LockError::CreateDir {
            path: self.root.clone(),
            source,
        })?;
        self.check_existing().map_err(LockError::Unsafe)?;
        if let Ok(meta) = fs::metadata(&self.root)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                state_dir = %self.root.display(),
                mode = format!("{:o}", meta.permissions().mode() & 0o777),
                "the state dir is readable by other users; it names principals (chmod 700 it)"
            );
        }
        let path = self.root.clone();
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(source) => return Err(LockError::CreateLock { path, source }),
        };
        match file.try_lock() {
            Ok(()) => Ok(StateLock { _file: file }),
            Err(fs::TryLockError::WouldBlock) => Err(LockError::InUse(self.root.clone())),
            Err(fs::TryLockError::Error(source)) => Err(LockError::Lock { path, source }),
        }
    }

    /// Checks that the state dir exists (it is never created here: `watch` and `learn` create
    /// it), is a folder, belongs to the effective user, and no other user can write to it (one
    /// who could would replace its files, or plant symlinks that steer this process's writes).
    pub fn check_existing(&self) -> io::Result<()> {
        let root = self.root.display();
        let meta = fs::metadata(&self.root).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                io::Error::new(
                    e.kind(),
                    format!(
                        "no state dir at {root}: check the path (`exposure watch` or `exposure \
                         learn` creates one; for approvals alone, `mkdir -m 700 {root}`)"
                    ),
                )
            } else {
                at(&self.root, e)
            }
        })?;
        if !meta.is_dir() {
            return Err(io::Error::other(format!(
                "state dir {root} is not a folder"
            )));
        }
        let euid = effective_uid();
        if meta.uid() != euid {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "state dir {root} belongs to uid {}, not to this user (uid {euid}): run as \
                     its owner (e.g. `sudo -u {} exposure ...`), so that the files written \
                     stay readable by the service",
                    meta.uid(),
                    user_name(meta.uid()).unwrap_or_else(|| meta.uid().to_string())
                ),
            ));
        }
        let mode = meta.permissions().mode();
        if mode & 0o022 != 0 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "state dir {root} is writable by other users (mode {:o}): they could \
                     replace its files or steer writes through symlinks; `chmod 700 {root}`",
                    mode & 0o777
                ),
            ));
        }
        Ok(())
    }

    pub fn checkpoint(&self) -> PathBuf {
        self.root.join(CHECKPOINT_FILE)
    }

    pub fn outbox_dir(&self) -> PathBuf {
        self.root.join("outbox")
    }

    pub fn sinks_dir(&self) -> PathBuf {
        self.root.join("sinks")
    }

    /// How far sink `name` has delivered.
    pub fn sink_ack(&self, name: &str) -> PathBuf {
        self.sinks_dir().join(format!("{name}.ack"))
    }

    /// The alerts sink `name` rejected for good.
    pub fn dead_letters(&self, name: &str) -> PathBuf {
        self.sinks_dir().join(format!("{name}.dead-letter.jsonl"))
    }

    /// The firing alerts an Alertmanager sink `name` re-sends.
    pub fn sink_firing(&self, name: &str) -> PathBuf {
        self.sinks_dir().join(format!("{name}.firing.json"))
    }

    /// The highest sequence number ever journaled in the outbox.
    pub fn outbox_high_water(&self) -> PathBuf {
        self.outbox_dir().join("high-water.json")
    }

    /// The sink names that have an acknowledgement file.
    pub fn acked_sinks(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(self.sinks_dir())? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if let Some(sink) = name.strip_suffix(".ack") {
                names.push(sink.to_string());
            }
        }
        names.sort();
        Ok(names)
    }
}

/// Creates `dir` (and its parents) readable by this user only (0700): the state names
/// principals.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| at(dir, e))
}

/// Creates the folder `dir` of a state dir (0700) if missing, and checks it is a real folder
/// of this user, not a symlink planted to steer writes elsewhere.
pub fn create_private_subdir(dir: &Path) -> io::Result<()> {
    create_private_dir(dir)?;
    let meta = fs::symlink_metadata(dir).map_err(|e| at(dir, e))?;
    if !meta.is_dir() || meta.uid() != effective_uid() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} is not a folder of this user (a symlink?): state is never written through \
                 one; move it away",
                dir.display()
            ),
        ));
    }
    Ok(())
}

/// Opens `path` for reading and appending, creating it readable by this user only (0600); a
/// symlink is not followed.
pub fn open_private_append(path: &Path) -> io::Result<File> {
    fs::OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| at(path, e))
}

/// Creates (or empties) `path` to write, readable by this user only (0600); a symlink is not
/// followed. Errors do not name the file: the caller does.
pub fn create_private(path: &Path) -> io::Result<File> {
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Opens a state file for reading: not through a symlink, and only a regular file (a fifo or
/// a device is refused, and opening one does not block). Errors do not name the file: the
/// caller does.
pub fn open_private_read(path: &Path) -> io::Result<File> {
    open_regular(path, libc::O_NOFOLLOW)
}

/// Opens `path` for reading (with `flags` added) if it is a regular file; a fifo or a device
/// is refused without blocking on it.
fn open_regular(path: &Path, flags: i32) -> io::Result<File> {
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags | libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(file)
}

/// Reads the whole of a state file, as [`open_private_read`] opens it, refusing one larger
/// than `max_bytes`.
pub fn read_private(path: &Path, max_bytes: u64) -> io::Result<Vec<u8>> {
    let mut file = open_private_read(path)?;
    read_open(&mut file, max_bytes)
}

/// Reads the whole of a file the user names (a configuration file): through symlinks, but
/// only a regular file (a device such as `/dev/zero`, a fifo, or a link to one is refused at
/// once), of at most `max_bytes`.
pub fn read_regular(path: &Path, max_bytes: u64) -> io::Result<Vec<u8>> {
    let mut file = open_regular(path, 0)?;
    read_open(&mut file, max_bytes)
}

/// Reads `file` from its start, at most `max_bytes` (more is an error, not a cut).
pub fn read_open(file: &mut File, max_bytes: u64) -> io::Result<Vec<u8>> {
    use std::io::Seek;
    file.seek(io::SeekFrom::Start(0))?;
    let mut bytes = Vec::new();
    Read::take(&mut *file, max_bytes.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_bytes {
        let limit = if max_bytes >= 1 << 20 && max_bytes.is_multiple_of(1 << 20) {
            format!("{} MiB", max_bytes >> 20)
        } else {
            format!("{max_bytes} bytes")
        };
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {limit}: not read"),
        ));
    }
    Ok(bytes)
}

/// The effective user id of this process.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The name of user `uid` in /etc/passwd.
fn user_name(uid: u32) -> Option<String> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id = fields.nth(1)?;
        (id.parse() == Ok(uid)).then(|| name.to_string())
    })
}

/// The effective user, by name (`uid N` when /etc/passwd does not name it): who a change is
/// recorded as made by, whatever the environment says.
pub fn effective_user() -> String {
    let uid = effective_uid();
    user_name(uid).unwrap_or_else(|| format!("uid {uid}"))
}

/// Moves a corrupt `path` aside to `PATH.corrupt-YYYYMMDDTHHMMSSZ` (kept for a human to look
/// at, never deleted) and returns where it went.
pub fn quarantine(path: &Path) -> io::Result<PathBuf> {
    let aside = aside_path(path);
    fs::rename(path, &aside).map_err(|e| at(path, e))?;
    Ok(aside)
}

/// Copies a damaged `path` aside (as [`quarantine`] names it) before it is repaired in place.
pub fn copy_aside(path: &Path) -> io::Result<PathBuf> {
    let aside = aside_path(path);
    fs::copy(path, &aside).map_err(|e| at(&aside, e))?;
    Ok(aside)
}

/// A free `PATH.corrupt-YYYYMMDDTHHMMSSZ[-N]`.
fn aside_path(path: &Path) -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let mut aside = path.with_file_name(format!("{name}.corrupt-{stamp}"));
    let mut n = 1;
    while aside.exists() {
        n += 1;
        aside = path.with_file_name(format!("{name}.corrupt-{stamp}-{n}"));
    }
    aside
}

/// `error` with the file it happened on: "No space left on device" alone does not say where.
pub fn at(path: &Path, error: io::Error) -> io::Error {
    io::Error::new(error.kind(), format!("{}: {error}", path.display()))
}

/// Replaces `path` with `bytes` so that a crash leaves the old or the new content, never a mix.
/// The file is readable by this user only (0600). Errors name the file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    // A bare file name's parent is "": the current directory.
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temp = dir.join(format!(".{name}.tmp"));
    let write = || -> io::Result<()> {
        let mut file = create_private(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()
    };
    write().map_err(|e| at(&temp, e))?;
    fs::rename(&temp, path).map_err(|e| at(path, e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| at(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_while_the_first_is_held() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path().join("st"));
        let held = state.lock().unwrap();
        assert!(matches!(state.lock(), Err(LockError::InUse(_))));
        // Nothing in the directory can be removed to get around it.
        for entry in fs::read_dir(state.root()).unwrap() {
            fs::remove_file(entry.unwrap().path()).unwrap();
        }
        assert!(matches!(state.lock(), Err(LockError::InUse(_))));
        drop(held);
        state.lock().unwrap();
    }

    #[test]
    fn atomic_writes_replace_whole_files() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        fs::create_dir_all(state.sinks_dir()).unwrap();
        write_atomically(&state.sink_ack("pd"), b"1").unwrap();
        write_atomically(&state.sink_ack("pd"), b"22").unwrap();
        assert_eq!(fs::read(state.sink_ack("pd")).unwrap(), b"22");
        let mode = fs::metadata(state.sink_ack("pd"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(state.acked_sinks().unwrap(), ["pd"]);
    }

    #[test]
    fn quarantine_moves_aside_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.ack");
        fs::write(&file, "garbled").unwrap();
        let first = quarantine(&file).unwrap();
        fs::write(&file, "garbled again").unwrap();
        let second = quarantine(&file).unwrap();
        assert_ne!(first, second);
        assert!(!file.exists());
        assert_eq!(fs::read_to_string(first).unwrap(), "garbled");
        assert_eq!(fs::read_to_string(second).unwrap(), "garbled again");
    }

    #[test]
    fn a_state_dir_others_can_write_to_is_refused_naming_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path().join("st"));
        create_private_dir(state.root()).unwrap();
        fs::set_permissions(state.root(), fs::Permissions::from_mode(0o777)).unwrap();
        let error = state.lock().unwrap_err().to_string();
        assert!(
            error.contains("writable by other users (mode 777)"),
            "{error}"
        );
        assert!(error.contains("chmod 700"), "{error}");
        fs::set_permissions(state.root(), fs::Permissions::from_mode(0o750)).unwrap();
        state.lock().unwrap();
    }

    #[test]
    fn a_state_dir_of_another_user_is_refused() {
        if effective_uid() != 0 {
            // Only root can give a folder away; CI runs as root.
            eprintln!("skipped: needs root to chown");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path().join("st"));
        create_private_dir(state.root()).unwrap();
        std::os::unix::fs::chown(state.root(), Some(65534), Some(65534)).unwrap();
        let error = state.check_existing().unwrap_err().to_string();
        assert!(error.contains("belongs to uid 65534"), "{error}");
        assert!(error.contains("run as its owner"), "{error}");
        assert!(state.lock().is_err());
    }

    #[test]
    fn state_is_never_written_or_read_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("victim");
        fs::write(&target, b"precious").unwrap();
        let state = StateDir::new(dir.path().join("st"));
        create_private_dir(state.root()).unwrap();
        // A planted folder link.
        std::os::unix::fs::symlink(dir.path(), state.outbox_dir()).unwrap();
        let error = create_private_subdir(&state.outbox_dir()).unwrap_err();
        assert!(error.to_string().contains("a symlink?"), "{error}");
        // A planted file link: appends and reads refuse it, atomic writes replace the link.
        let log = state.root().join("baseline-changes.jsonl");
        std::os::unix::fs::symlink(&target, &log).unwrap();
        assert!(open_private_append(&log).is_err());
        assert!(read_private(&log, 100).is_err());
        let temp = state.root().join(".checkpoint.json.tmp");
        std::os::unix::fs::symlink(&target, &temp).unwrap();
        assert!(write_atomically(&state.checkpoint(), b"{}").is_err());
        fs::remove_file(&temp).unwrap();
        std::os::unix::fs::symlink(&target, state.checkpoint()).unwrap();
        write_atomically(&state.checkpoint(), b"{}").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"precious");
        assert!(
            !fs::symlink_metadata(state.checkpoint())
                .unwrap()
                .is_symlink()
        );
    }

    #[test]
    fn reads_of_state_files_are_bounded_and_refuse_what_is_not_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        fs::write(&big, vec![b'x'; 101]).unwrap();
        assert!(
            read_private(&big, 100)
                .unwrap_err()
                .to_string()
                .contains("larger than 100")
        );
        assert_eq!(read_private(&big, 101).unwrap().len(), 101);
        let error = read_private(Path::new("/dev/zero"), 100).unwrap_err();
        assert!(error.to_string().contains("not a regular file"), "{error}");
    }
}
