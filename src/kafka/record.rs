//! The records of the internal repartition topic, and where each event goes. Pure: no Kafka
//! client here, so the encoding and the routing are tested on their own.
//!
//! The ingest stage writes two kinds of record to the repartition topic:
//! - an [`EventBatch`]: events of one source (a raw topic partition) for one repartition
//!   partition, each tagged with its position in the source (`offset`, `index` within the
//!   record), so that the detect stage drops what a restarted ingest sends twice;
//! - a table's first read, noted to every other partition (an [`Item::ReadElsewhere`]), so
//!   that each partition's detector knows every table read by a time, as a single detector
//!   would (a grant on a container lists the tables in it read by then);
//! - a [`Record::Progress`] marker: how far each source the sending instance reads has got in event
//!   time, sent to every partition, so that every detector knows when no older event can come
//!   from any source (a watermark, as stream processors propagate them).
//!
//! Records are a compact binary layout, versioned by their first byte.

use crate::event::PermissionChange;
use crate::time::Ts;
use std::borrow::Cow;
use std::collections::HashMap;

/// The first byte of every record this release writes (version 1 had no
/// [`Item::ReadElsewhere`]; its records are still read).
const VERSION: u8 = 2;
const OLDEST_READ: u8 = 1;
const KIND_EVENTS: u8 = 1;
const KIND_PROGRESS: u8 = 2;
const ITEM_READ: u8 = 0;
const ITEM_CHANGE: u8 = 1;
const ITEM_READ_ELSEWHERE: u8 = 2;

/// The repartition partition of `table` among `partitions`: FNV-1a of its name, so that every
/// instance of every release routes a table to the same partition.
pub fn partition_of(table: &str, partitions: i32) -> i32 {
    crate::detect::shard::table_slot(table, partitions.max(1) as u32) as i32
}

/// Where an event was read: its record's offset in the source partition, and its index
/// among the events of that record (a CloudTrail record holds many). Ordered as read.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Position {
    pub offset: i64,
    pub index: u32,
}

/// One event as the detect stage needs it; names borrowed from the record read (no copy
/// per event) or owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item<'a> {
    Read {
        ts: Ts,
        table: Cow<'a, str>,
        principal: Cow<'a, str>,
    },
    Change(PermissionChange),
    /// `table`, routed to another partition, was read at `ts`: sent when an ingest instance
    /// first sees the table, or sees it read earlier than it had noted.
    ReadElsewhere {
        ts: Ts,
        table: Cow<'a, str>,
    },
}

impl Item<'_> {
    pub fn ts(&self) -> Ts {
        match self {
            Item::Read { ts, .. } | Item::ReadElsewhere { ts, .. } => *ts,
            Item::Change(change) => change.ts,
        }
    }
}

/// Events of one source for one partition, in the order the source gave them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventBatch<'a> {
    /// `topic/partition` of the raw log topic.
    pub source: Cow<'a, str>,
    pub items: Vec<(Position, Item<'a>)>,
}

/// How far one source has got, as its ingest instance knows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceProgress {
    pub source: String,
    /// Every event still to come from the source is at or after this time.
    pub watermark: Option<Ts>,
    /// The newest event time the source gave.
    pub newest: Option<Ts>,
    /// Quiet long enough (`lateness`, by the wall clock) not to hold time back.
    pub idle: bool,
}

/// A repartition record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record<'a> {
    Events(EventBatch<'a>),
    Progress(Vec<SourceProgress>),
}

/// Why a repartition record could not be read: written by another release, or damaged.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unreadable repartition record at byte {at}: {what}")]
pub struct RecordError {
    pub at: usize,
    pub what: &'static str,
}

impl<'a> Record<'a> {
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.clear();
        out.push(VERSION);
        match self {
            Record::Events(batch) => {
                out.push(KIND_EVENTS);
                put_str(out, &batch.source);
                out.extend_from_slice(&(batch.items.len() as u32).to_le_bytes());
                for (position, item) in &batch.items {
                    put_item(out, *position, item);
                }
            }
            Record::Progress(sources) => {
                out.push(KIND_PROGRESS);
                let json = serde_json::to_vec(sources).expect("progress serializes");
                out.extend_from_slice(&json);
            }
        }
    }

    /// Reads a record; the events' names borrow from `bytes`.
    pub fn decode(bytes: &'a [u8]) -> Result<Record<'a>, RecordError> {
        let mut reader = Reader { bytes, at: 0 };
        if !(OLDEST_READ..=VERSION).contains(&reader.u8()?) {
            return Err(RecordError {
                at: 0,
                what: "written by another release of exposure (unknown version)",
            });
        }
        match reader.u8()? {
            KIND_EVENTS => {
                let source = Cow::Borrowed(reader.str()?);
                let count = reader.u32()? as usize;
                let mut items = Vec::with_capacity(count.min(1 << 16));
                for _ in 0..count {
                    items.push(reader.item()?);
                }
                Ok(Record::Events(EventBatch { source, items }))
            }
            KIND_PROGRESS => serde_json::from_slice(&bytes[2..])
                .map(Record::Progress)
                .map_err(|_| RecordError {
                    at: 2,
                    what: "a progress marker that is not valid JSON",
                }),
            _ => Err(RecordError {
                at: 1,
                what: "unknown record kind",
            }),
        }
    }
}

/// Appends one event to a batch being encoded (see [`BatchWriter`]).
fn put_item(out: &mut Vec<u8>, position: Position, item: &Item<'_>) {
    out.extend_from_slice(&position.offset.to_le_bytes());
    out.extend_from_slice(&position.index.to_le_bytes());
    match item {
        Item::Read {
            ts,
            table,
            principal,
        } => {
            out.push(ITEM_READ);
            out.extend_from_slice(&ts.to_le_bytes());
            put_str(out, table);
            put_str(out, principal);
        }
        Item::Change(change) => {
            out.push(ITEM_CHANGE);
            let json = serde_json::to_vec(change).expect("a change serializes");
            out.extend_from_slice(&(json.len() as u32).to_le_bytes());
            out.extend_from_slice(&json);
        }
        Item::ReadElsewhere { ts, table } => {
            out.push(ITEM_READ_ELSEWHERE);
            out.extend_from_slice(&ts.to_le_bytes());
            put_str(out, table);
        }
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Names are cut at the line cap long before 4 GiB.
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Builds an [`EventBatch`] record in place, event by event, without keeping the events.
#[derive(Debug, Default)]
pub struct BatchWriter {
    bytes: Vec<u8>,
    count: u32,
}

impl BatchWriter {
    /// Starts a batch of `source` (any batch under way is dropped).
    pub fn start(&mut self, source: &str) {
        self.bytes.clear();
        self.bytes.push(VERSION);
        self.bytes.push(KIND_EVENTS);
        put_str(&mut self.bytes, source);
        self.bytes.extend_from_slice(&0u32.to_le_bytes());
        self.count = 0;
    }

    pub fn push_read(&mut self, position: Position, ts: Ts, table: &str, principal: &str) {
        self.bytes.extend_from_slice(&position.offset.to_le_bytes());
        self.bytes.extend_from_slice(&position.index.to_le_bytes());
        self.bytes.push(ITEM_READ);
        self.bytes.extend_from_slice(&ts.to_le_bytes());
        put_str(&mut self.bytes, table);
        put_str(&mut self.bytes, principal);
        self.count += 1;
    }

    pub fn push_change(&mut self, position: Position, change: &PermissionChange) {
        put_item(&mut self.bytes, position, &Item::Change(change.clone()));
        self.count += 1;
    }

    pub fn push_read_elsewhere(&mut self, position: Position, ts: Ts, table: &str) {
        let table = Cow::Borrowed(table);
        put_item(
            &mut self.bytes,
            position,
            &Item::ReadElsewhere { ts, table },
        );
        self.count += 1;
    }

    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn bytes_len(&self) -> usize {
        self.bytes.len()
    }

    /// The finished record (valid until the next `start`).
    pub fn finish(&mut self) -> &[u8] {
        let header = 2 + 4 + u32::from_le_bytes(self.bytes[2..6].try_into().expect("4 bytes"));
        let at = header as usize;
        self.bytes[at..at + 4].copy_from_slice(&self.count.to_le_bytes());
        &self.bytes
    }
}

/// Where the ingest stage sends each event, batch by batch (one [`BatchWriter`] per
/// partition): a read to its table's partition, and — the first time this instance sees the
/// table, or sees it read earlier than it had noted — an [`Item::ReadElsewhere`] to every
/// other partition; a permission change to every partition (a grant on a container or a role
/// covers tables in all of them). Notes are idempotent: another instance, or this one
/// restarted, sending them again changes nothing.
#[derive(Debug, Default)]
pub struct Router {
    /// The earliest read of each table this instance has noted to the other partitions.
    noted: HashMap<Box<str>, Ts>,
}

impl Router {
    pub fn read(
        &mut self,
        batches: &mut [BatchWriter],
        position: Position,
        ts: Ts,
        table: &str,
        principal: &str,
    ) {
        let own = partition_of(table, batches.len() as i32) as usize;
        batches[own].push_read(position, ts, table, principal);
        if batches.len() == 1 {
            return;
        }
        match self.noted.get_mut(table) {
            Some(noted) if *noted <= ts => return,
            Some(noted) => *noted = ts,
            None => {
                self.noted.insert(table.into(), ts);
            }
        }
        for (partition, batch) in batches.iter_mut().enumerate() {
            if partition != own {
                batch.push_read_elsewhere(position, ts, table);
            }
        }
    }

    pub fn change(
        &mut self,
        batches: &mut [BatchWriter],
        position: Position,
        change: &PermissionChange,
    ) {
        for batch in batches.iter_mut() {
            batch.push_change(position, change);
        }
    }

    /// Tables noted so far.
    pub fn tables(&self) -> usize {
        self.noted.len()
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(RecordError {
                at: self.at,
                what: "the record ends early",
            });
        };
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8, RecordError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, RecordError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn i64(&mut self) -> Result<i64, RecordError> {
        Ok(i64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn str(&mut self) -> Result<&'a str, RecordError> {
        let at = self.at;
        let len = self.u32()? as usize;
        std::str::from_utf8(self.take(len)?).map_err(|_| RecordError {
            at,
            what: "a name that is not UTF-8",
        })
    }

    fn item(&mut self) -> Result<(Position, Item<'a>), RecordError> {
        let offset = self.i64()?;
        let index = self.u32()?;
        let position = Position { offset, index };
        let at = self.at;
        let item = match self.u8()? {
            ITEM_READ => {
                let ts = self.i64()?;
                let table = Cow::Borrowed(self.str()?);
                let principal = Cow::Borrowed(self.str()?);
                Item::Read {
                    ts,
                    table,
                    principal,
                }
            }
            ITEM_CHANGE => {
                let len = self.u32()? as usize;
                let change = serde_json::from_slice(self.take(len)?).map_err(|_| RecordError {
                    at,
                    what: "a permission change that is not valid JSON",
                })?;
                Item::Change(change)
            }
            ITEM_READ_ELSEWHERE => {
                let ts = self.i64()?;
                let table = Cow::Borrowed(self.str()?);
                Item::ReadElsewhere { ts, table }
            }
            _ => {
                return Err(RecordError {
                    at,
                    what: "unknown event kind",
                });
            }
        };
        Ok((position, item))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ChangeAction;

    fn change() -> PermissionChange {
        PermissionChange {
            ts: 7,
            action: ChangeAction::Grant,
            object: "hr.salaries".into(),
            grantee: "PUBLIC".into(),
            privilege: "SELECT".into(),
            actor: "agent".into(),
            statement: Some("GRANT SELECT ON hr.salaries TO PUBLIC".into()),
        }
    }

    #[test]
    fn a_batch_written_event_by_event_reads_back_whole() {
        let mut writer = BatchWriter::default();
        writer.start("access-logs/3");
        writer.push_read(
            Position {
                offset: 10,
                index: 0,
            },
            5,
            "hr.salaries",
            "alice",
        );
        writer.push_change(
            Position {
                offset: 11,
                index: 2,
            },
            &change(),
        );
        writer.push_read(
            Position {
                offset: 12,
                index: 0,
            },
            -3,
            "t",
            "",
        );
        writer.push_read_elsewhere(
            Position {
                offset: 13,
                index: 1,
            },
            7,
            "hr.people",
        );
        let record = Record::decode(writer.finish()).unwrap();
        let expected = Record::Events(EventBatch {
            source: "access-logs/3".into(),
            items: vec![
                (
                    Position {
                        offset: 10,
                        index: 0,
                    },
                    Item::Read {
                        ts: 5,
                        table: "hr.salaries".into(),
                        principal: "alice".into(),
                    },
                ),
                (
                    Position {
                        offset: 11,
                        index: 2,
                    },
                    Item::Change(change()),
                ),
                (
                    Position {
                        offset: 12,
                        index: 0,
                    },
                    Item::Read {
                        ts: -3,
                        table: "t".into(),
                        principal: String::new().into(),
                    },
                ),
                (
                    Position {
                        offset: 13,
                        index: 1,
                    },
                    Item::ReadElsewhere {
                        ts: 7,
                        table: "hr.people".into(),
                    },
                ),
            ],
        });
        assert_eq!(record, expected);
        let mut bytes = Vec::new();
        expected.encode(&mut bytes);
        assert_eq!(bytes, writer.finish());
    }

    #[test]
    fn progress_markers_round_trip() {
        let record = Record::Progress(vec![SourceProgress {
            source: "a/0".into(),
            watermark: Some(4),
            newest: Some(9),
            idle: false,
        }]);
        let mut bytes = Vec::new();
        record.encode(&mut bytes);
        assert_eq!(Record::decode(&bytes).unwrap(), record);
    }

    #[test]
    fn damaged_records_are_errors_never_panics() {
        let mut writer = BatchWriter::default();
        writer.start("s/0");
        writer.push_read(
            Position {
                offset: 1,
                index: 0,
            },
            5,
            "table",
            "who",
        );
        let whole = writer.finish().to_vec();
        for cut in 0..whole.len() {
            assert!(Record::decode(&whole[..cut]).is_err(), "cut at {cut}");
        }
        assert_eq!(Record::decode(&[9, 1]).unwrap_err().at, 0);
        // A record of the release before, which had no notes of reads elsewhere, still reads.
        let mut older = whole.clone();
        older[0] = OLDEST_READ;
        assert!(Record::decode(&older).is_ok());
        assert!(Record::decode(&[VERSION, 77]).is_err());
    }

    #[test]
    fn the_router_notes_a_tables_first_read_to_the_other_partitions_once() {
        let mut batches: Vec<BatchWriter> = (0..3).map(|_| BatchWriter::default()).collect();
        for batch in &mut batches {
            batch.start("raw/0");
        }
        let mut router = Router::default();
        let at = |offset| Position { offset, index: 0 };
        router.read(&mut batches, at(0), 50, "hr.salaries", "a");
        router.read(&mut batches, at(1), 60, "hr.salaries", "b");
        // Read earlier than noted (out of order): noted again.
        router.read(&mut batches, at(2), 40, "hr.salaries", "c");
        router.change(&mut batches, at(3), &change());
        let own = partition_of("hr.salaries", 3) as usize;
        for (partition, batch) in batches.iter_mut().enumerate() {
            let Record::Events(batch) = Record::decode(batch.finish()).unwrap() else {
                panic!("events")
            };
            let kinds: Vec<(i64, &str)> = batch
                .items
                .iter()
                .map(|(position, item)| {
                    let kind = match item {
                        Item::Read { .. } => "read",
                        Item::ReadElsewhere { .. } => "elsewhere",
                        Item::Change(_) => "change",
                    };
                    (position.offset, kind)
                })
                .collect();
            if partition == own {
                assert_eq!(
                    kinds,
                    [(0, "read"), (1, "read"), (2, "read"), (3, "change")]
                );
            } else {
                assert_eq!(kinds, [(0, "elsewhere"), (2, "elsewhere"), (3, "change")]);
            }
        }
    }

    #[test]
    fn a_table_goes_to_one_partition_whoever_routes_it() {
        assert_eq!(
            partition_of("hr.salaries", 6),
            partition_of("hr.salaries", 6)
        );
        let spread: std::collections::BTreeSet<i32> = (0..100)
            .map(|i| partition_of(&format!("db.table_{i}"), 6))
            .collect();
        assert_eq!(spread.len(), 6, "100 tables reach every partition");
        assert!((0..1000).all(|i| (0..6).contains(&partition_of(&i.to_string(), 6))));
        // Pinned: a change here would move every table's state to another partition.
        assert_eq!(
            partition_of("hr.salaries", 6),
            partition_of("hr.salaries", 12) % 6
        );
    }
}
