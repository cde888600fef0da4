//! The durable outbox between detection and delivery. Every alert event is appended (and
//! fsynced) to a journal of segment files in `STATE/outbox/` before any sink sees it; each sink
//! reads the journal in order from its own acknowledged position (`STATE/sinks/NAME.ack`), so a
//! slow or dead sink never blocks detection, holds nothing in memory, and gets everything once
//! it is back — in order, so a `closed` never overtakes its `open`.
//!
//! Exactly-once *emission* across crashes: detection after a restart replays events read
//! since the last checkpoint and so regenerates the alerts of that stretch; the journal knows
//! their keys and drops the repeats. A segment is sealed right after each checkpoint and
//! deleted once every sink acknowledged it, so what it held can never be regenerated.

use crate::detect::Alert;
use crate::state::{StateDir, at, create_private_dir, open_private_append, write_atomically};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// One journal line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub seq: u64,
    pub alert: Alert,
}

/// The writing side, owned by the detection loop.
#[derive(Debug)]
pub struct Outbox {
    dir: PathBuf,
    segment: File,
    segment_no: u64,
    /// (sequence number, key) of the records in the current segment.
    current: Vec<(u64, String)>,
    /// The same for each sealed segment, by segment number: what deleting it forgets, known
    /// without reading it again.
    sealed: BTreeMap<u64, Vec<(u64, String)>>,
    next_seq: u64,
    /// Keys of every alert in the journal: emitted, never again.
    emitted: HashSet<String>,
}

fn segment_path(dir: &Path, no: u64) -> PathBuf {
    dir.join(format!("{no:012}.jsonl"))
}

/// Segment numbers in `dir`, ascending.
fn segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut numbers = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if let Some(no) = name
            .strip_suffix(".jsonl")
            .and_then(|n| n.parse::<u64>().ok())
        {
            numbers.push(no);
        }
    }
    numbers.sort_unstable();
    Ok(numbers)
}

/// Reads the whole records of a segment from byte `offset`; returns them with the offset after
/// the last whole line. A torn last line (a crash mid-append) is left unread.
fn read_records(path: &Path, offset: u64, limit: usize, out: &mut Vec<Record>) -> io::Result<u64> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(offset),
        Err(e) => return Err(e),
    };
    file.seek(SeekFrom::Start(offset))?;
    let mut reader = BufReader::new(file);
    let mut position = offset;
    let mut line = Vec::new();
    while out.len() < limit {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 || line.last() != Some(&b'\n') {
            break;
        }
        position += n as u64;
        match serde_json::from_slice::<Record>(&line) {
            Ok(record) => out.push(record),
            Err(e) => tracing::error!(
                segment = %path.display(), offset = position - n as u64, error = %e,
                "outbox record unreadable, skipped"
            ),
        }
    }
    Ok(position)
}

impl Outbox {
    /// Opens the journal in `state_dir/outbox`, learning the keys it holds, and starts a new
    /// segment.
    pub fn open(state_dir: &StateDir) -> io::Result<Outbox> {
        let dir = state_dir.outbox_dir();
        create_private_dir(&dir)?;
        create_private_dir(&state_dir.sinks_dir())?;
        let mut emitted = HashSet::new();
        let mut sealed = BTreeMap::new();
        let mut next_seq = 1;
        let numbers = segments(&dir)?;
        for &no in &numbers {
            let mut records = Vec::new();
            read_records(&segment_path(&dir, no), 0, usize::MAX, &mut records)?;
            let mut held = Vec::with_capacity(records.len());
            for record in records {
                next_seq = next_seq.max(record.seq + 1);
                let key = record.alert.delivery_key();
                emitted.insert(key.clone());
                held.push((record.seq, key));
            }
            sealed.insert(no, held);
        }
        // Sequence numbers never go back, even when every segment was delivered and deleted:
        // the sinks' acknowledgements remember how far they went.
        for name in state_dir.acked_sinks()? {
            let acked = SinkCursor::open(state_dir, &name)?.acked();
            next_seq = next_seq.max(acked + 1);
        }
        let segment_no = numbers.last().map_or(1, |n| n + 1);
        let segment = open_private_append(&segment_path(&dir, segment_no))?;
        Ok(Outbox {
            dir,
            segment,
            segment_no,
            current: Vec::new(),
            sealed,
            next_seq,
            emitted,
        })
    }

    /// The journal folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether an alert with this key was emitted already.
    pub fn was_emitted(&self, key: &str) -> bool {
        self.emitted.contains(key)
    }

    /// Marks `keys` (from a checkpoint) as emitted.
    pub fn remember(&mut self, keys: impl IntoIterator<Item = String>) {
        self.emitted.extend(keys);
    }

    /// The emitted keys of the windows whose ids are in `open`, sorted.
    pub fn emitted_keys_of(&self, open: &HashSet<String>) -> Vec<String> {
        let mut keys: Vec<String> = self
            .emitted
            .iter()
            .filter(|k| k.split(':').next().is_some_and(|id| open.contains(id)))
            .cloned()
            .collect();
        keys.sort();
        keys
    }

    /// The sequence number the next alert gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Appends `alert` durably unless an alert with its key was emitted before; returns its
    /// sequence number, or `None` for a repeat.
    pub fn append(&mut self, alert: &Alert) -> io::Result<Option<u64>> {
        let key = alert.delivery_key();
        if self.emitted.contains(&key) {
            return Ok(None);
        }
        let seq = self.next_seq;
        let mut line = serde_json::to_vec(&Record {
            seq,
            alert: alert.clone(),
        })
        .map_err(io::Error::other)?;
        line.push(b'\n');
        self.segment
            .write_all(&line)
            .and_then(|()| self.segment.sync_data())
            .map_err(|e| at(&segment_path(&self.dir, self.segment_no), e))?;
        self.next_seq += 1;
        self.current.push((seq, key.clone()));
        self.emitted.insert(key);
        Ok(Some(seq))
    }

    /// Called right after a checkpoint was written: starts a new segment (if the current one
    /// holds anything) and deletes the sealed segments every sink in `acked` has acknowledged.
    pub fn after_checkpoint(&mut self, acked: u64) -> io::Result<()> {
        if !self.current.is_empty() {
            self.sealed
                .insert(self.segment_no, std::mem::take(&mut self.current));
            self.segment_no += 1;
            self.segment = open_private_append(&segment_path(&self.dir, self.segment_no))?;
        }
        let delivered: Vec<u64> = self
            .sealed
            .iter()
            .filter(|(_, records)| records.iter().all(|(seq, _)| *seq <= acked))
            .map(|(no, _)| *no)
            .collect();
        for no in delivered {
            match fs::remove_file(segment_path(&self.dir, no)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            for (_, key) in self.sealed.remove(&no).unwrap_or_default() {
                self.emitted.remove(&key);
            }
        }
        Ok(())
    }
}

/// One sink's reading position in the journal, and its durable acknowledgement.
#[derive(Debug)]
pub struct SinkCursor {
    dir: PathBuf,
    ack_path: PathBuf,
    acked: u64,
    segment_no: u64,
    offset: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct AckFile {
    seq: u64,
}

impl SinkCursor {
    /// The cursor of sink `name` in `state_dir`'s journal.
    pub fn open(state_dir: &StateDir, name: &str) -> io::Result<SinkCursor> {
        let ack_path = state_dir.sink_ack(name);
        let acked = match fs::read(&ack_path) {
            Ok(bytes) => {
                serde_json::from_slice::<AckFile>(&bytes)
                    .map_err(|e| {
                        io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("{} is corrupt: {e}", ack_path.display()),
                        )
                    })?
                    .seq
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        Ok(SinkCursor {
            dir: state_dir.outbox_dir(),
            ack_path,
            acked,
            segment_no: 0,
            offset: 0,
        })
    }

    /// The last acknowledged sequence number.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// Up to `limit` records after the acknowledged one, in order.
    pub fn next_records(&mut self, limit: usize) -> io::Result<Vec<Record>> {
        let mut out = Vec::new();
        for no in segments(&self.dir)? {
            if no < self.segment_no {
                continue;
            }
            if no > self.segment_no {
                self.segment_no = no;
                self.offset = 0;
            }
            let mut records = Vec::new();
            let path = segment_path(&self.dir, no);
            let end = read_records(&path, self.offset, limit - out.len(), &mut records)?;
            self.offset = end;
            out.extend(records.into_iter().filter(|r| r.seq > self.acked));
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Records durably that everything up to `seq` was delivered (or dead-lettered).
    pub fn ack(&mut self, seq: u64) -> io::Result<()> {
        self.acked = self.acked.max(seq);
        let bytes = serde_json::to_vec(&AckFile { seq: self.acked }).map_err(io::Error::other)?;
        write_atomically(&self.ack_path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{AlertStatus, Severity};

    fn alert(id: &str, status: AlertStatus) -> Alert {
        Alert {
            schema: crate::detect::ALERT_SCHEMA.into(),
            id: id.into(),
            status,
            table: "t".into(),
            window_start: 0,
            window_end: 0,
            duration_s: 0.0,
            novel_principals: 3,
            principals: Vec::new(),
            reads: 3,
            baseline_principals: 1,
            severity: Severity::High,
            as_of: 0,
            closed_by: None,
        }
    }

    #[test]
    fn delivers_in_order_once_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = Outbox::open(&StateDir::new(dir.path())).unwrap();
        assert_eq!(
            outbox.append(&alert("a", AlertStatus::Open)).unwrap(),
            Some(1)
        );
        assert_eq!(outbox.append(&alert("a", AlertStatus::Open)).unwrap(), None);
        assert_eq!(
            outbox.append(&alert("a", AlertStatus::Closed)).unwrap(),
            Some(2)
        );
        let mut cursor = SinkCursor::open(&StateDir::new(dir.path()), "stdout").unwrap();
        let got: Vec<u64> = cursor
            .next_records(10)
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect();
        assert_eq!(got, [1, 2]);
        cursor.ack(1).unwrap();

        // A crash: everything is still there, the repeat is still known.
        drop(outbox);
        let mut outbox = Outbox::open(&StateDir::new(dir.path())).unwrap();
        assert_eq!(
            outbox.append(&alert("a", AlertStatus::Closed)).unwrap(),
            None
        );
        let mut cursor = SinkCursor::open(&StateDir::new(dir.path()), "stdout").unwrap();
        assert_eq!(cursor.acked(), 1);
        let got: Vec<u64> = cursor
            .next_records(10)
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect();
        assert_eq!(got, [2]);

        // Sealed and acknowledged segments go away.
        outbox.after_checkpoint(1).unwrap();
        assert_eq!(segments(outbox.dir()).unwrap(), [1, 2]);
        cursor.ack(2).unwrap();
        outbox.after_checkpoint(2).unwrap();
        assert_eq!(segments(outbox.dir()).unwrap(), [2]);
        assert_eq!(
            outbox.append(&alert("b", AlertStatus::Open)).unwrap(),
            Some(3)
        );
    }
}
