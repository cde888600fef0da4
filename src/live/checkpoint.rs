//! The checkpoint in the state dir: everything `exposure watch` needs to resume after a stop or
//! a crash — the detector's state, where each followed file was read up to, and the alerts
//! already emitted for windows still open. JSON in the one versioned envelope
//! ([`crate::state::envelope`]), written atomically (temp file,
//! fsync, rename, fsync of the folder), so a crash leaves either the old or the new one. An
//! unknown version or a corrupt file is an error that names the file, never a silent reset.

use crate::detect::DetectorSnapshot;
use crate::source::tail::FileCursor;
use crate::state::envelope::{self, EnvelopeError, Enveloped, Stamp, stamp};
use crate::state::{StateDir, write_atomically};
use serde::{Deserialize, Serialize};

use std::io;
use std::path::PathBuf;

pub const CHECKPOINT_VERSION: u32 = 1;

/// What a checkpoint holds.
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
    const VERSION: u32 = CHECKPOINT_VERSION;
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

    /// The checkpoint in `state_dir`, if there is one.
    pub fn load(state_dir: &StateDir) -> Result<Option<Checkpoint>, CheckpointError> {
        let path = state_dir.checkpoint();
        let bytes = match crate::state::read_private(&path, u64::MAX) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(CheckpointError::Io { path, source }),
        };
        envelope::open(&bytes).map(Some).map_err(|e| match e {
            EnvelopeError::Corrupt(message) => CheckpointError::Corrupt { path, message },
            EnvelopeError::Version { ref version, .. } => CheckpointError::UnknownVersion {
                path,
                found: version.clone(),
                envelope: e,
            },
        })
    }

    /// Writes the checkpoint into `state_dir` atomically.
    pub fn save(&self, state_dir: &StateDir) -> io::Result<()> {
        let bytes = serde_json::to_vec(self).map_err(io::Error::other)?;
        write_atomically(&state_dir.checkpoint(), &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{Detector, DetectorSettings};
    use std::fs;

    #[test]
    fn round_trips_and_refuses_unknown_versions_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            Checkpoint::load(&StateDir::new(dir.path()))
                .unwrap()
                .is_none()
        );
        let snapshot = Detector::new(DetectorSettings::default()).snapshot();
        let checkpoint = Checkpoint::new("watch", snapshot, Vec::new(), vec!["x:open".into()]);
        checkpoint.save(&StateDir::new(dir.path())).unwrap();
        assert_eq!(
            Checkpoint::load(&StateDir::new(dir.path())).unwrap(),
            Some(checkpoint)
        );

        let path = StateDir::new(dir.path()).checkpoint();
        let text = fs::read_to_string(&path).unwrap();
        fs::write(&path, text.replace("\"version\":1", "\"version\":7")).unwrap();
        let error = Checkpoint::load(&StateDir::new(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(error.contains("has version 7"), "{error}");

        fs::write(&path, &text[..text.len() / 2]).unwrap();
        let error = Checkpoint::load(&StateDir::new(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(error.contains("is corrupt"), "{error}");
    }
}
