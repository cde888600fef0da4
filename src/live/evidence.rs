//! The evidence a state dir keeps (`--keep-reads` on `watch` and `learn`): every event the
//! detector takes, as canonical JSON lines in `DIR/evidence/`, so that `exposure impact
//! --state-dir DIR` can say what an exposure cost when the logs are gone — a stream read from
//! stdin, a shipper's buffer, files rotated away.
//!
//! One file per UTC day of writing (`events-2026-03-18.jsonl`, 0600), each line an access
//! event (`ts` in epoch microseconds, `principal`, `table`, `action`, and `rows`, `bytes`,
//! `columns` when the log gave them) or a permission change (with `grantee`, `privilege`,
//! `statement`). Lines are appended as events are observed; before each checkpoint they are
//! flushed and synced and the checkpoint records where the evidence ends ([`Mark`]). A
//! restart cuts the evidence back to that mark — the events after it are read again, as the
//! detector's state is — so every event is kept once, whatever crashed when.

use crate::event::{AccessEvent, PermissionChange};
use crate::state::StateDir;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// The folder of a state dir the evidence is in.
pub fn dir(state_dir: &StateDir) -> PathBuf {
    state_dir.root().join("evidence")
}

/// The evidence files of `state_dir`, oldest first (none when it keeps none).
pub fn files(state_dir: &StateDir) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let entries = match fs::read_dir(dir(state_dir)) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(files),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let path = entry?.path();
        if day_of(&path).is_some() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Where the evidence ended when a checkpoint was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mark {
    /// The file being written (its name in `evidence/`).
    pub file: String,
    /// Its length in bytes: everything before is covered by the checkpoint.
    pub length: u64,
}

/// The evidence being written.
pub struct Evidence {
    dir: PathBuf,
    /// The UTC day (`2026-03-18`) of the file being written.
    day: String,
    out: BufWriter<File>,
    length: u64,
    /// The first write that failed: the next [`Evidence::sync`] reports it (a checkpoint is
    /// never written over evidence that did not reach the disk).
    failed: Option<io::Error>,
    line: Vec<u8>,
}

/// A canonical line of an access event.
#[derive(Serialize)]
struct AccessLine<'a> {
    ts: i64,
    principal: &'a str,
    table: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rows: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes: Option<i64>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    columns: &'a [Cow<'a, str>],
}

/// A canonical line of a permission change.
#[derive(Serialize)]
struct ChangeLine<'a> {
    ts: i64,
    principal: &'a str,
    table: &'a str,
    action: &'a str,
    grantee: &'a str,
    privilege: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    statement: Option<&'a str>,
}

impl Evidence {
    /// Opens the evidence of `state_dir` to go on after `mark` (the checkpoint's): files after
    /// it are removed and its file cut back to its length. Without a mark the detector starts
    /// afresh, and so does the evidence: files already there are removed. `today` is the UTC
    /// day to write in (`2026-03-18`).
    pub fn open(state_dir: &StateDir, mark: Option<&Mark>, today: &str) -> io::Result<Evidence> {
        let dir = dir(state_dir);
        crate::state::create_private_subdir(&dir)?;
        for file in files(state_dir)? {
            let name = file_name(&file);
            let keep = mark.is_some_and(|m| name.as_str() <= m.file.as_str());
            if !keep {
                fs::remove_file(&file)?;
            }
        }
        // A mark whose file was moved away (to keep less): the evidence goes on from here.
        let mark = mark.filter(|m| dir.join(&m.file).exists());
        let (day, length) = match mark.and_then(|m| day_of(Path::new(&m.file)).map(|d| (d, m))) {
            Some((day, mark)) => {
                let path = dir.join(&mark.file);
                let file = crate::state::open_private_append(&path)?;
                let on_disk = file.metadata()?.len();
                if on_disk < mark.length {
                    return Err(io::Error::other(format!(
                        "{} holds {on_disk} bytes, fewer than the {} the checkpoint covers: the \
                         evidence was cut short; move the folder away to keep evidence afresh",
                        path.display(),
                        mark.length
                    )));
                }
                file.set_len(mark.length)?;
                (day, mark.length)
            }
            None => (today.to_string(), 0),
        };
        let path = dir.join(format!("events-{day}.jsonl"));
        let file = crate::state::open_private_append(&path)?;
        Ok(Evidence {
            dir,
            day,
            out: BufWriter::with_capacity(1 << 16, file),
            length,
            failed: None,
            line: Vec::with_capacity(256),
        })
    }

    /// Keeps an access event.
    pub fn access(&mut self, event: &AccessEvent<'_>) {
        let line = AccessLine {
            ts: event.ts,
            principal: &event.principal,
            table: &event.table,
            action: event.archived_action(),
            rows: event.rows,
            bytes: event.bytes,
            columns: &event.columns,
        };
        self.write(&line);
    }

    /// Keeps a permission change.
    pub fn change(&mut self, change: &PermissionChange) {
        let line = ChangeLine {
            ts: change.ts,
            principal: &change.actor,
            table: &change.object,
            action: change.action.as_str(),
            grantee: &change.grantee,
            privilege: &change.privilege,
            statement: change.statement.as_deref(),
        };
        self.write(&line);
    }

    fn write(&mut self, line: &impl Serialize) {
        if self.failed.is_some() {
            return;
        }
        self.line.clear();
        serde_json::to_writer(&mut self.line, line).expect("an event serializes");
        self.line.push(b'\n');
        match self.out.write_all(&self.line) {
            Ok(()) => self.length += self.line.len() as u64,
            Err(e) => self.failed = Some(e),
        }
    }

    /// Flushes and syncs what was kept, and gives the mark for the checkpoint; then, on a new
    /// UTC day (`today`), goes on in a new file.
    pub fn sync(&mut self, today: &str) -> io::Result<Mark> {
        if let Some(e) = self.failed.take() {
            return Err(io::Error::new(
                e.kind(),
                format!("cannot keep evidence in {}: {e}", self.dir.display()),
            ));
        }
        self.out.flush()?;
        self.out.get_ref().sync_data()?;
        if today > self.day.as_str() {
            let path = self.dir.join(format!("events-{today}.jsonl"));
            let file = crate::state::open_private_append(&path)?;
            self.out = BufWriter::with_capacity(1 << 16, file);
            self.day = today.to_string();
            self.length = 0;
        }
        Ok(Mark {
            file: format!("events-{}.jsonl", self.day),
            length: self.length,
        })
    }
}

/// Keeps the events of history `inputs` that `filter` keeps (`learn --keep-reads`): what the
/// learned state was made of, so that the evidence `watch` goes on with starts where the state
/// does. Line inputs only (a Parquet archive is evidence already: give it to `impact` beside
/// the state dir). What cannot be read was reported by the learning replay.
pub fn keep_inputs(
    config: &crate::config::Config,
    inputs: &[crate::source::Input],
    filter: &crate::time::TimeFilter,
    evidence: &mut Evidence,
) -> anyhow::Result<()> {
    struct Keeping<'a> {
        evidence: &'a mut Evidence,
        filter: &'a crate::time::TimeFilter,
    }
    impl crate::format::DecodeSink for Keeping<'_> {
        fn event(&mut self, _line: u64, event: &AccessEvent<'_>, _read: bool) {
            if self.filter.keeps(event.ts) {
                self.evidence.access(event);
            }
        }
        fn permission(&mut self, _line: u64, change: &PermissionChange) {
            if self.filter.keeps(change.ts) {
                self.evidence.change(change);
            }
        }
        fn not_access(&mut self, _line: u64, _why: crate::format::vendor::NotAccess) {}
        fn malformed(&mut self, _line: u64, _error: crate::format::ParseError) {}
    }
    for input in inputs {
        if input.parquet_source().is_some() {
            anyhow::bail!(
                "--keep-reads keeps history read as lines; {} is a Parquet archive, evidence \
                 already: give it to `exposure impact` beside the state dir",
                input.display_name()
            );
        }
        let Ok(reader) = input.open() else { continue };
        let mut decoder = config.decoder();
        let mut keeping = Keeping {
            evidence: &mut *evidence,
            filter,
        };
        crate::source::lines::decode_all(reader, &mut decoder, &mut keeping, |_| false, |_, _| {});
    }
    Ok(())
}

/// The UTC day (`2026-03-18`) of the wall-clock time `micros`.
pub fn day(micros: i64) -> String {
    crate::time::format_ts(micros)[..10].to_string()
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The day of an evidence file's name (`events-2026-03-18.jsonl`).
fn day_of(path: &Path) -> Option<String> {
    let name = file_name(path);
    let day = name.strip_prefix("events-")?.strip_suffix(".jsonl")?;
    (day.len() == 10 && day.as_bytes()[4] == b'-').then(|| day.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(state_dir: &StateDir) -> Vec<String> {
        let mut lines = Vec::new();
        for file in files(state_dir).unwrap() {
            lines.extend(
                fs::read_to_string(file)
                    .unwrap()
                    .lines()
                    .map(str::to_string),
            );
        }
        lines
    }

    #[test]
    fn a_restart_cuts_the_evidence_back_to_the_checkpoint_and_days_get_their_files() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let mut evidence = Evidence::open(&state, None, "2026-03-18").unwrap();
        let mut read_event = AccessEvent::new(1_773_828_000_123_456, "ann", "hr.t", Some("SELECT"));
        read_event.columns = vec!["ssn".into()];
        evidence.access(&read_event);
        let mark = evidence.sync("2026-03-18").unwrap();
        // After the checkpoint: read again after a crash.
        evidence.access(&AccessEvent::new(
            1_773_828_001_000_000,
            "bob",
            "hr.t",
            None,
        ));
        evidence.out.flush().unwrap();
        drop(evidence);
        assert_eq!(read(&state).len(), 2);

        let mut evidence = Evidence::open(&state, Some(&mark), "2026-03-19").unwrap();
        assert_eq!(
            read(&state),
            [
                r#"{"ts":1773828000123456,"principal":"ann","table":"hr.t","action":"SELECT","columns":["ssn"]}"#
            ]
        );
        evidence.access(&AccessEvent::new(
            1_773_828_001_000_000,
            "bob",
            "hr.t",
            None,
        ));
        // The day changes at a checkpoint: the next events go to the next day's file.
        let next = evidence.sync("2026-03-19").unwrap();
        assert_eq!(
            (next.file.as_str(), next.length),
            ("events-2026-03-19.jsonl", 0)
        );
        evidence.change(&PermissionChange {
            ts: 1_773_900_000_000_000,
            action: crate::event::ChangeAction::Grant,
            object: "hr".into(),
            grantee: "PUBLIC".into(),
            privilege: "SELECT".into(),
            actor: "dba".into(),
            statement: None,
        });
        evidence.sync("2026-03-19").unwrap();
        let names: Vec<String> = files(&state)
            .unwrap()
            .iter()
            .map(|f| file_name(f))
            .collect();
        assert_eq!(
            names,
            ["events-2026-03-18.jsonl", "events-2026-03-19.jsonl"]
        );
        assert_eq!(read(&state).len(), 3);
        // A restart at the first mark drops the later day's file too.
        Evidence::open(&state, Some(&mark), "2026-03-20").unwrap();
        assert_eq!(read(&state).len(), 1);
        // The mark's file moved away (the older days are kept elsewhere): on from here.
        fs::remove_file(dir.path().join("evidence/events-2026-03-18.jsonl")).unwrap();
        let mut evidence = Evidence::open(&state, Some(&mark), "2026-03-20").unwrap();
        evidence.access(&AccessEvent::new(
            1_774_000_000_000_000,
            "cat",
            "hr.t",
            None,
        ));
        let next = evidence.sync("2026-03-20").unwrap();
        assert_eq!(next.file, "events-2026-03-20.jsonl");
        assert_eq!(read(&state).len(), 1);
        // No checkpoint: the detector starts afresh, and the evidence with it.
        Evidence::open(&state, None, "2026-03-20").unwrap();
        assert!(read(&state).is_empty());
    }
}
