//! The state directory of `exposure watch` and `exposure learn`: its layout, its lock, and the
//! atomic writes every file in it goes through. Nothing else in the code names a file in it.
//!
//! ```text
//! STATE_DIR/
//!   lock                          held (flock) by the one process using the directory
//!   checkpoint.json               detector state + input offsets, written atomically
//!   outbox/                       the alert journal, in segments
//!   sinks/NAME.ack                how far sink NAME has delivered
//!   sinks/NAME.dead-letter.jsonl  alerts sink NAME rejected for good
//!   sinks/NAME.firing.json        what an Alertmanager sink re-sends while windows are open
//! ```

use std::fs::{self, File};
use std::io::{self, Write};
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
    #[error("cannot create {path}")]
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

    /// Creates the directory if missing, then takes its lock.
    pub fn lock(&self) -> Result<StateLock, LockError> {
        fs::create_dir_all(&self.root).map_err(|source| LockError::CreateDir {
            path: self.root.clone(),
            source,
        })?;
        let path = self.root.join("lock");
        let file = match File::create(&path) {
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

/// Replaces `path` with `bytes` so that a crash leaves the old or the new content, never a mix.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temp = dir.join(format!(".{name}.tmp"));
    let mut file = File::create(&temp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&temp, path)?;
    File::open(dir)?.sync_all()
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
        assert_eq!(state.acked_sinks().unwrap(), ["pd"]);
    }
}
