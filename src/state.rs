//! The state directory of `exposure watch` and `exposure learn`: its layout, its lock, and the
//! writes every file in it goes through (atomic replacement or append, files 0600 in a 0700
//! directory, errors naming the file). Nothing else in the code names a file in it.
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

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
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

/// Opens `path` for appending, creating it readable by this user only (0600).
pub fn open_private_append(path: &Path) -> io::Result<File> {
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| at(path, e))
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
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temp)?;
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
}
