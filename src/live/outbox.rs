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
use crate::state::{StateDir, at, create_private_subdir, open_private_append, write_atomically};
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
    /// Where the highest sequence number ever journaled is kept (written before any segment
    /// is deleted, so an acknowledgement can always be checked against it).
    high_water_path: PathBuf,
    segment: File,
    segment_no: u64,
    /// (sequence number, key) of the records in the current segment.
    current: Vec<(u64, String)>,
    /// The same for each sealed segment, by segment number: what deleting it forgets, known
    /// without reading it again.
    sealed: BTreeMap<u64, Vec<(u64, String)>>,
    /// Bytes on disk of each segment, the current one included.
    bytes: BTreeMap<u64, u64>,
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
    let mut file = match crate::state::open_private_read(path) {
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

/// The largest acknowledgement or high-water file read (each holds one small JSON object).
const MAX_SMALL_FILE: u64 = 1 << 20;

/// The recorded high-water mark; `None` if there is none (a new or older state dir) or it is
/// unreadable (then moved aside, said loudly).
fn read_high_water(state_dir: &StateDir) -> Option<u64> {
    let path = state_dir.outbox_high_water();
    let bytes = crate::state::read_private(&path, MAX_SMALL_FILE).ok()?;
    match serde_json::from_slice::<AckFile>(&bytes) {
        Ok(mark) => Some(mark.seq),
        Err(e) => {
            let aside = crate::state::quarantine(&path);
            tracing::error!(
                file = %path.display(), error = %e, moved_to = ?aside,
                "outbox high-water mark unreadable; moved aside (acknowledgements are then \
                 checked against the journal alone)"
            );
            None
        }
    }
}

/// Reads a segment left by an earlier run. Unreadable records or a torn last line (a crash
/// mid-append: never acknowledged to detection, so that alert was journaled again after the
/// restart) are reported with where they are; the original is copied aside
/// (`NNN.jsonl.corrupt-…`, never deleted) and the segment rewritten with the readable records,
/// which are kept and delivered.
fn repair_segment(path: &Path) -> io::Result<Vec<Record>> {
    let bytes = match crate::state::read_private(path, u64::MAX) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(at(path, e)),
    };
    let mut records = Vec::new();
    let mut kept = Vec::with_capacity(bytes.len());
    let mut unreadable = Vec::new();
    let mut offset = 0;
    let mut torn = None;
    while offset < bytes.len() {
        let Some(len) = bytes[offset..].iter().position(|b| *b == b'\n') else {
            torn = Some(offset);
            break;
        };
        let line = &bytes[offset..=offset + len];
        match serde_json::from_slice::<Record>(line) {
            Ok(record) => {
                kept.extend_from_slice(line);
                records.push(record);
            }
            Err(e) => unreadable.push(format!("byte {offset}: {e}")),
        }
        offset += len + 1;
    }
    if unreadable.is_empty() && torn.is_none() {
        return Ok(records);
    }
    let aside = crate::state::copy_aside(path)?;
    write_atomically(path, &kept)?;
    tracing::error!(
        segment = %path.display(), unreadable = unreadable.len(),
        first_unreadable = unreadable.first().map(String::as_str).unwrap_or("none"),
        torn_tail_at = ?torn, kept = records.len(), original_at = %aside.display(),
        "outbox segment damaged: the readable records are kept and delivered, the original is \
         copied aside"
    );
    Ok(records)
}

impl Outbox {
    /// Opens the journal in `state_dir/outbox`, learning the keys it holds, and starts a new
    /// segment.
    pub fn open(state_dir: &StateDir) -> io::Result<Outbox> {
        let dir = state_dir.outbox_dir();
        create_private_subdir(&dir)?;
        create_private_subdir(&state_dir.sinks_dir())?;
        let mut emitted = HashSet::new();
        let mut sealed = BTreeMap::new();
        let mut bytes = BTreeMap::new();
        let mut next_seq = 1;
        let numbers = segments(&dir)?;
        let mut highest = read_high_water(state_dir);
        for &no in &numbers {
            let records = repair_segment(&segment_path(&dir, no))?;
            if let Some(last) = records.iter().map(|r| r.seq).max() {
                highest = Some(highest.map_or(last, |h| h.max(last)));
            }
            let mut held = Vec::with_capacity(records.len());
            for record in records {
                next_seq = next_seq.max(record.seq + 1);
                let key = record.alert.delivery_key();
                emitted.insert(key.clone());
                held.push((record.seq, key));
            }
            sealed.insert(no, held);
            let size = fs::metadata(segment_path(&dir, no)).map_or(0, |m| m.len());
            bytes.insert(no, size);
        }
        // Sequence numbers never go back, even when every segment was delivered and deleted:
        // the high-water mark and the sinks' acknowledgements remember how far they went. An
        // acknowledgement beyond the high-water mark is corrupt: moved aside here (see
        // `SinkCursor::open`), so its sink gets the whole journal again.
        next_seq = next_seq.max(highest.unwrap_or(0) + 1);
        for name in state_dir.acked_sinks()? {
            let acked = SinkCursor::open(state_dir, &name, highest)?.acked();
            next_seq = next_seq.max(acked + 1);
        }
        let segment_no = numbers.last().map_or(1, |n| n + 1);
        let segment = open_private_append(&segment_path(&dir, segment_no))?;
        Ok(Outbox {
            high_water_path: state_dir.outbox_high_water(),
            dir,
            segment,
            segment_no,
            current: Vec::new(),
            sealed,
            bytes,
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
        *self.bytes.entry(self.segment_no).or_default() += line.len() as u64;
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
        self.delete_delivered(acked)
    }

    /// Deletes the sealed segments every sink in `acked` has acknowledged (any time: what a
    /// sealed segment holds is older than the last checkpoint, so it is never regenerated).
    pub fn delete_delivered(&mut self, acked: u64) -> io::Result<()> {
        let delivered: Vec<u64> = self
            .sealed
            .iter()
            .filter(|(_, records)| records.iter().all(|(seq, _)| *seq <= acked))
            .map(|(no, _)| *no)
            .collect();
        if !delivered.is_empty() {
            let high_water = serde_json::to_vec(&AckFile {
                seq: self.next_seq - 1,
            })
            .map_err(io::Error::other)?;
            write_atomically(&self.high_water_path, &high_water)?;
        }
        for no in delivered {
            match fs::remove_file(segment_path(&self.dir, no)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            self.bytes.remove(&no);
            for (_, key) in self.sealed.remove(&no).unwrap_or_default() {
                self.emitted.remove(&key);
            }
        }
        Ok(())
    }

    /// The journal's size on disk.
    pub fn bytes(&self) -> u64 {
        self.bytes.values().sum()
    }

    /// When the journal is over `max_bytes`: the sequence number up to which records are given
    /// up (each sink that has not delivered them moves them to its dead-letter file), so that
    /// the oldest sealed segments can be deleted and the journal is back within its bound.
    /// `None` within the bound.
    pub fn overflow(&self, max_bytes: u64) -> Option<u64> {
        let mut total = self.bytes();
        let mut floor = None;
        for (no, records) in &self.sealed {
            if total <= max_bytes {
                break;
            }
            total -= self.bytes.get(no).copied().unwrap_or(0);
            floor = records.iter().map(|(seq, _)| *seq).max().or(floor);
        }
        floor
    }
}

/// One sink's reading position in the journal, and its durable acknowledgement.
#[derive(Debug)]
pub struct SinkCursor {
    dir: PathBuf,
    ack_path: PathBuf,
    acked: u64,
    /// The acknowledgement could not be written yet (full disk…): kept here, retried.
    unsaved: bool,
    segment_no: u64,
    offset: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct AckFile {
    seq: u64,
}

impl SinkCursor {
    /// The cursor of sink `name` in `state_dir`'s journal, whose highest sequence number ever
    /// is `highest` (`None`: not known). An acknowledgement file that is unreadable, or claims
    /// a sequence number beyond `highest` (it would skip alerts never delivered), is moved
    /// aside (never deleted) and said loudly; the sink then gets the whole journal again —
    /// repeats, never a loss.
    pub fn open(state_dir: &StateDir, name: &str, highest: Option<u64>) -> io::Result<SinkCursor> {
        let ack_path = state_dir.sink_ack(name);
        let problem = match crate::state::read_private(&ack_path, MAX_SMALL_FILE) {
            Ok(bytes) => match serde_json::from_slice::<AckFile>(&bytes) {
                Ok(ack) if highest.is_none_or(|h| ack.seq <= h) => {
                    return Ok(SinkCursor::at_seq(state_dir, ack_path, ack.seq));
                }
                Ok(ack) => format!(
                    "acknowledges seq {} but the outbox never went beyond {}",
                    ack.seq,
                    highest.unwrap_or_default()
                ),
                Err(e) => format!("unreadable: {e}"),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(SinkCursor::at_seq(state_dir, ack_path, 0));
            }
            Err(e) => return Err(at(&ack_path, e)),
        };
        let aside = crate::state::quarantine(&ack_path)?;
        tracing::error!(
            sink = %name, file = %ack_path.display(), problem = %problem,
            moved_to = %aside.display(),
            "delivery position corrupt; moved aside, the sink gets the whole outbox again"
        );
        Ok(SinkCursor::at_seq(state_dir, ack_path, 0))
    }

    fn at_seq(state_dir: &StateDir, ack_path: PathBuf, acked: u64) -> SinkCursor {
        SinkCursor {
            dir: state_dir.outbox_dir(),
            ack_path,
            acked,
            unsaved: false,
            segment_no: 0,
            offset: 0,
        }
    }

    /// Starts over from the beginning of the journal (for a sink that lost its own state).
    pub fn rewind(&mut self) -> io::Result<()> {
        self.acked = 0;
        self.segment_no = 0;
        self.offset = 0;
        self.unsaved = true;
        self.save()
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

    /// Records durably that everything up to `seq` was delivered (or dead-lettered). If the
    /// write fails the position is kept in memory and written by the next [`SinkCursor::ack`]
    /// or [`SinkCursor::save`].
    pub fn ack(&mut self, seq: u64) -> io::Result<()> {
        self.acked = self.acked.max(seq);
        self.unsaved = true;
        self.save()
    }

    /// Writes the acknowledged position if a write of it failed before; a no-op otherwise.
    pub fn save(&mut self) -> io::Result<()> {
        if !self.unsaved {
            return Ok(());
        }
        let bytes = serde_json::to_vec(&AckFile { seq: self.acked }).map_err(io::Error::other)?;
        write_atomically(&self.ack_path, &bytes)?;
        self.unsaved = false;
        Ok(())
    }

    /// Whether the acknowledged position still waits to be written.
    pub fn unsaved(&self) -> bool {
        self.unsaved
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
            principals_truncated: 0,
            novel_principals: 3,
            principals: Vec::new(),
            reads: 3,
            baseline_principals: 1,
            severity: Severity::High,
            sensitivity: None,
            as_of: 0,
            closed_by: None,
            cause: None,
            exposed_from: None,
            exposed_until: None,
            change: None,
            tables: Vec::new(),
            standing: None,
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
        let mut cursor = SinkCursor::open(&StateDir::new(dir.path()), "stdout", None).unwrap();
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
        let mut cursor = SinkCursor::open(&StateDir::new(dir.path()), "stdout", None).unwrap();
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

    fn seqs(cursor: &mut SinkCursor) -> Vec<u64> {
        cursor
            .next_records(100)
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect()
    }

    fn corrupt_copies(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".corrupt-"))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn an_ack_beyond_the_journal_or_garbled_is_moved_aside_and_the_journal_delivered_again() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let mut outbox = Outbox::open(&state).unwrap();
        for id in ["a", "b", "c"] {
            outbox.append(&alert(id, AlertStatus::Open)).unwrap();
        }
        SinkCursor::open(&state, "hook", None)
            .unwrap()
            .ack(1)
            .unwrap();
        drop(outbox);
        // Claims 40 of 3: would skip b and c, never delivered.
        fs::write(state.sink_ack("hook"), "{\"seq\":40}").unwrap();
        let outbox = Outbox::open(&state).unwrap();
        assert_eq!(
            outbox.next_seq(),
            4,
            "a corrupt ack does not move the sequence"
        );
        let mut cursor = SinkCursor::open(&state, "hook", Some(outbox.next_seq() - 1)).unwrap();
        assert_eq!(seqs(&mut cursor), [1, 2, 3]);
        assert_eq!(corrupt_copies(&state.sinks_dir()).len(), 1);
        // Garbled: the same.
        fs::write(state.sink_ack("hook"), "{\"seq\":").unwrap();
        let mut cursor = SinkCursor::open(&state, "hook", Some(3)).unwrap();
        assert_eq!(seqs(&mut cursor), [1, 2, 3]);
        assert_eq!(corrupt_copies(&state.sinks_dir()).len(), 2);
    }

    #[test]
    fn the_high_water_mark_outlives_deleted_segments() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let mut outbox = Outbox::open(&state).unwrap();
        for id in ["a", "b"] {
            outbox.append(&alert(id, AlertStatus::Open)).unwrap();
        }
        SinkCursor::open(&state, "hook", None)
            .unwrap()
            .ack(2)
            .unwrap();
        outbox.after_checkpoint(2).unwrap();
        drop(outbox);
        assert_eq!(
            segments(&state.outbox_dir()).unwrap(),
            [2],
            "delivered, deleted"
        );
        // A legitimate ack at the high-water mark is kept; one beyond it is not.
        let outbox = Outbox::open(&state).unwrap();
        assert_eq!(outbox.next_seq(), 3);
        assert_eq!(
            SinkCursor::open(&state, "hook", Some(2)).unwrap().acked(),
            2
        );
        fs::write(state.sink_ack("hook"), "{\"seq\":9}").unwrap();
        drop(outbox);
        let outbox = Outbox::open(&state).unwrap();
        assert_eq!(outbox.next_seq(), 3);
        assert_eq!(
            SinkCursor::open(&state, "hook", Some(2)).unwrap().acked(),
            0
        );
    }

    #[test]
    fn a_damaged_segment_keeps_its_readable_records_and_its_original_aside() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let mut outbox = Outbox::open(&state).unwrap();
        for id in ["a", "b", "c"] {
            outbox.append(&alert(id, AlertStatus::Open)).unwrap();
        }
        drop(outbox);
        let path = segment_path(&state.outbox_dir(), 1);
        let text = fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        // b garbled, then a torn record after c.
        let damaged = format!(
            "{}\n{}\n{}\n{{\"seq\":4,\"al",
            lines[0],
            &lines[1][..20],
            lines[2]
        );
        fs::write(&path, &damaged).unwrap();
        let mut outbox = Outbox::open(&state).unwrap();
        assert!(outbox.was_emitted(&alert("a", AlertStatus::Open).delivery_key()));
        assert!(outbox.was_emitted(&alert("c", AlertStatus::Open).delivery_key()));
        assert_eq!(outbox.next_seq(), 4);
        let mut cursor = SinkCursor::open(&state, "hook", Some(3)).unwrap();
        assert_eq!(seqs(&mut cursor), [1, 3]);
        let aside = corrupt_copies(&state.outbox_dir());
        assert_eq!(aside.len(), 1);
        assert_eq!(
            fs::read_to_string(state.outbox_dir().join(&aside[0])).unwrap(),
            damaged
        );
        // The repaired segment is whole again: the next start reports nothing.
        drop(outbox);
        Outbox::open(&state).unwrap();
        assert_eq!(corrupt_copies(&state.outbox_dir()).len(), 1);
        outbox = Outbox::open(&state).unwrap();
        assert_eq!(
            outbox.append(&alert("d", AlertStatus::Open)).unwrap(),
            Some(4)
        );
    }

    #[test]
    fn an_ack_that_cannot_be_written_is_kept_and_written_later() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let mut outbox = Outbox::open(&state).unwrap();
        outbox.append(&alert("a", AlertStatus::Open)).unwrap();
        let mut cursor = SinkCursor::open(&state, "hook", Some(1)).unwrap();
        // The write goes through `.hook.ack.tmp`: a directory there makes it fail (as root
        // too, unlike permissions).
        let blocker = state.sinks_dir().join(".hook.ack.tmp");
        fs::create_dir(&blocker).unwrap();
        let error = cursor.ack(1).unwrap_err();
        assert!(error.to_string().contains(".hook.ack.tmp"), "{error}");
        assert!(cursor.unsaved());
        assert_eq!(cursor.acked(), 1);
        assert!(cursor.save().is_err());
        fs::remove_dir(&blocker).unwrap();
        cursor.save().unwrap();
        assert!(!cursor.unsaved());
        assert_eq!(
            SinkCursor::open(&state, "hook", Some(1)).unwrap().acked(),
            1
        );
    }

    #[test]
    fn over_its_bound_the_oldest_sealed_segments_are_given_up() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let mut outbox = Outbox::open(&state).unwrap();
        for (i, id) in ["a", "b", "c", "d"].iter().enumerate() {
            outbox.append(&alert(id, AlertStatus::Open)).unwrap();
            if i % 2 == 1 {
                outbox.after_checkpoint(0).unwrap();
            }
        }
        // Two sealed segments of two records each, nothing delivered.
        let total = outbox.bytes();
        assert_eq!(
            total,
            fs::read_dir(outbox.dir())
                .unwrap()
                .map(|e| e.unwrap().metadata().unwrap().len())
                .sum::<u64>()
        );
        assert_eq!(outbox.overflow(total), None);
        assert_eq!(
            outbox.overflow(total - 1),
            Some(2),
            "the oldest segment goes"
        );
        assert_eq!(outbox.overflow(0), Some(4), "both go");
        // Once every sink is past the floor, the segments are deleted and the bound holds.
        outbox.after_checkpoint(2).unwrap();
        assert_eq!(outbox.bytes(), total / 2);
        assert_eq!(outbox.overflow(total / 2), None);
    }
}
