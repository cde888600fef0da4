//! A partition's state as a changelog on the compacted state topic: many keyed records, each
//! bounded (`input.kafka.state_record_bytes`, 1 000 000 bytes by default — under Kafka's
//! default message size), of which a checkpoint writes only what changed. Pure: it turns a
//! detector's changes into records and records back into a [`PartitionState`]; the detect
//! stage sends and reads them.
//!
//! **Parts.** A partition's state is cut into parts: `rest` (event time, counters, the reorder
//! buffer, the permission ledger, the sources and the alerts emitted: [`PartitionState`] without
//! its tables and population), `table/B/NAME` (bucket `B` of a table's baseline — a table's
//! principals are spread over a power of two of buckets by a stable hash, so a large table's
//! change rewrites the buckets it touched; bucket 0 also holds the table's pending principals,
//! open window and learning) and `population/B`. A part whose JSON is larger than a record
//! may be is cut into pieces.
//!
//! **Commit.** Every part has two slots; a checkpoint writes each part it changes into the slot
//! *not* in force, then — once the broker has them all — one `head` record naming the
//! checkpoint's generation. A restore takes, per part, the slot with the newest generation the
//! head covers. So a checkpoint cut short (a crash before its head) leaves every part's value in
//! force untouched, even after the broker compacted the topic (compaction keeps the newest
//! record of each key, and the slot in force was not written). Records of a checkpoint that
//! never committed are deleted (tombstones) by the next owner's first checkpoint, before its
//! head moves past their generation; so are the records of removed tables, once their removal
//! is committed, and the one record of an earlier release's state ([`v1_key`]) once its first
//! head is.
//!
//! **Lineage.** A state begun afresh (a new partition, `exposure learn`, a migration) has a
//! new random lineage; records of another lineage are not this state's and are deleted.

use super::partition::PartitionState;
use crate::detect::Detector;
use crate::detect::shard::table_slot;
use crate::detect::snapshot::{DetectorSnapshot, PendingSnapshot, TableSnapshot, WindowSnapshot};
use crate::state::envelope::{self, Enveloped, Stamp, stamp};
use crate::time::Ts;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The most bytes of a bucket (a table's or the population's) before it is spread over more.
const BUCKET_BYTES: usize = 64 * 1024;
/// The key of the commit record.
pub const HEAD_KEY: &str = "head";

/// The key of the one record an earlier release (layout 1) kept a partition's state in.
pub fn v1_key(partition: i32) -> String {
    partition.to_string()
}

/// The commit record of a partition's state (key [`HEAD_KEY`]): written last in each
/// checkpoint; the parts it covers are those of its lineage up to its generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    pub format: String,
    pub version: u32,
    pub written_at: String,
    pub partition: i32,
    pub partitions: i32,
    pub lineage: String,
    pub generation: u64,
    /// How many buckets the population is spread over.
    pub population_buckets: u32,
}

impl Enveloped for Head {
    const FORMAT: &'static str = "exposure.kafka-partition";
    const VERSION: u32 = 2;
}

/// One record for the state topic: `value` `None` is a tombstone (the key deleted).
#[derive(Debug, Clone, PartialEq)]
pub struct StateRecord {
    pub key: String,
    pub value: Option<Vec<u8>>,
}

impl StateRecord {
    pub fn bytes(&self) -> usize {
        self.key.len() + self.value.as_ref().map_or(0, Vec::len)
    }
}

/// A checkpoint to send: `records` first (in order, all acknowledged), then `head`; then
/// [`Changelog::committed`] with it.
#[derive(Debug)]
pub struct StateWrite {
    pub records: Vec<StateRecord>,
    pub head: StateRecord,
    generation: u64,
    /// The parts written and the slot each went to.
    written: Vec<(Part, u8)>,
    /// Tables whose removal this checkpoint writes.
    removed: Vec<String>,
    /// Keys to delete once this checkpoint is committed.
    after_commit: Vec<String>,
}

impl StateWrite {
    /// Bytes of keys and values sent, head included.
    pub fn bytes(&self) -> u64 {
        (self.records.iter().map(StateRecord::bytes).sum::<usize>() + self.head.bytes()) as u64
    }

    /// The largest record.
    pub fn largest_record(&self) -> usize {
        (self.records.iter().map(StateRecord::bytes))
            .chain([self.head.bytes()])
            .max()
            .unwrap_or(0)
    }
}

/// A part of a partition's state (see the module's doc).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Part {
    Rest,
    Population(u32),
    Table(String, u32),
}

impl Part {
    fn name(&self) -> String {
        match self {
            Part::Rest => "rest".to_string(),
            Part::Population(bucket) => format!("population/{bucket}"),
            Part::Table(table, bucket) => format!("table/{bucket}/{table}"),
        }
    }

    fn parse(name: &str) -> Option<Part> {
        if name == "rest" {
            return Some(Part::Rest);
        }
        if let Some(bucket) = name.strip_prefix("population/") {
            return bucket.parse().ok().map(Part::Population);
        }
        let (bucket, table) = name.strip_prefix("table/")?.split_once('/')?;
        Some(Part::Table(table.to_string(), bucket.parse().ok()?))
    }

    /// The key of piece `piece` of this part in slot `slot`: `NAME@SLOT#PIECE`.
    fn key(&self, slot: u8, piece: u32) -> String {
        format!("{}@{slot}#{piece}", self.name())
    }
}

/// `(part, slot, piece)` of a part's key (names may hold `@` and `#`: read from the right).
fn parse_key(key: &str) -> Option<(Part, u8, u32)> {
    let (rest, piece) = key.rsplit_once('#')?;
    let (name, slot) = rest.rsplit_once('@')?;
    let slot: u8 = slot.parse().ok().filter(|s| *s < 2)?;
    Some((Part::parse(name)?, slot, piece.parse().ok()?))
}

/// The first line of every piece's value; the piece's bytes of the part's JSON follow it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PieceHeader<'a> {
    lineage: &'a str,
    generation: u64,
    piece: u32,
    pieces: u32,
}

/// A bucket of a table's baseline; bucket 0 holds the table's small parts too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TablePart {
    table: String,
    bucket: u32,
    buckets: u32,
    /// The table is gone (bucket 0 only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    removed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    learn_until: Option<Ts>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pending: Vec<PendingSnapshot>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    window: Option<WindowSnapshot>,
    baseline: Vec<(String, Ts)>,
}

/// A bucket of the population.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PopulationPart {
    bucket: u32,
    entries: Vec<(String, Ts)>,
}

/// Where a part's values are: the slot in force, and how many pieces each slot holds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Slots {
    force: Option<u8>,
    pieces: [u32; 2],
}

impl Slots {
    /// The slot a new value goes to: the one not in force.
    fn free(&self) -> u8 {
        self.force.map_or(0, |s| 1 - s)
    }
}

/// What the changelog of one partition knows of the records in the state topic, to write the
/// next checkpoint.
#[derive(Debug, Clone)]
pub struct Changelog {
    lineage: String,
    /// The generation of the next checkpoint.
    next_generation: u64,
    parts: HashMap<Part, Slots>,
    /// Each table's bucket count.
    tables: HashMap<String, u32>,
    population_buckets: u32,
    /// The next checkpoint writes everything (a new lineage).
    whole: bool,
    /// Keys the next checkpoint deletes first, in order.
    tombstones: Vec<String>,
    /// Keys deleted once the next checkpoint is committed.
    after_commit: Vec<String>,
    /// A checkpoint was sent and not known to be committed or not.
    uncertain: bool,
}

impl Changelog {
    /// The changelog of a state begun afresh: a new lineage, written whole at the next
    /// checkpoint; `stale` are keys in the topic that are not part of it (deleted first).
    pub fn fresh(stale: Vec<String>) -> Changelog {
        use std::hash::BuildHasher;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let lineage =
            std::collections::hash_map::RandomState::new().hash_one((nanos, std::process::id()));
        Changelog {
            lineage: format!("{lineage:016x}"),
            next_generation: 1,
            parts: HashMap::new(),
            tables: HashMap::new(),
            population_buckets: 1,
            whole: true,
            tombstones: stale,
            after_commit: Vec::new(),
            uncertain: false,
        }
    }

    /// Whether the state topic may hold what this changelog does not know (a checkpoint sent
    /// and not acknowledged): the partition must then be restored from the topic.
    pub fn uncertain(&self) -> bool {
        self.uncertain
    }

    /// A checkpoint was sent and its outcome is unknown.
    pub fn failed(&mut self) {
        self.uncertain = true;
    }

    /// The next checkpoint of `detector` (changes tracked): what changed since the last one,
    /// or everything for a new lineage. `rest` makes the partition's state around the
    /// detector's small parts (tables and population empty).
    pub fn write(
        &mut self,
        detector: &mut Detector,
        rest: impl FnOnce(DetectorSnapshot) -> PartitionState,
        record_bytes: usize,
    ) -> StateWrite {
        if self.whole {
            detector.forget_changes();
            let mut snapshot = detector.snapshot();
            let tables = std::mem::take(&mut snapshot.tables);
            let population = std::mem::take(&mut snapshot.population);
            return self.write_whole(rest(snapshot), tables, population, record_bytes);
        }
        let changes = detector.take_changes();
        let mut out = self.begin();
        let mut writer = Writer::new(self, &mut out, record_bytes);
        for change in &changes.tables {
            match detector.table_snapshot_of(&change.table) {
                None => writer.remove_table(&change.table),
                Some(table) => {
                    let touched = (change.removed.iter())
                        .chain(change.written.iter().map(|(p, _)| p))
                        .map(String::as_str);
                    writer.table(table, Some(touched));
                }
            }
        }
        if !changes.population.is_empty() {
            let buckets = writer.changelog.population_buckets;
            let dirty: BTreeSet<u32> = (changes.population.iter())
                .map(|(name, _)| table_slot(name, buckets))
                .collect();
            let entries =
                detector.population_where(|name| dirty.contains(&table_slot(name, buckets)));
            // Buckets grown to twice their size: the population spread over more buckets.
            if estimate(&entries) > 2 * writer.bucket_bytes() * dirty.len() {
                writer.population(detector.population_where(|_| true), None);
            } else {
                writer.population(entries, Some(&dirty));
            }
        }
        let state = rest(DetectorSnapshot {
            now: changes.now,
            next_prune: changes.next_prune,
            newest: changes.newest,
            floor: changes.floor,
            stats: changes.stats,
            tables: Vec::new(),
            buffered: changes.buffered,
            permissions: changes.permissions,
            population: Vec::new(),
        });
        writer.finish(&state);
        out
    }

    /// `state` written whole (its detector's tables and population given apart, sorted).
    pub fn write_whole(
        &mut self,
        state: PartitionState,
        tables: Vec<TableSnapshot>,
        population: Vec<(String, Ts)>,
        record_bytes: usize,
    ) -> StateWrite {
        let mut out = self.begin();
        let mut writer = Writer::new(self, &mut out, record_bytes);
        let kept: BTreeSet<&str> = tables.iter().map(|t| t.table.as_str()).collect();
        let gone: Vec<String> = (writer.changelog.tables.keys())
            .filter(|t| !kept.contains(t.as_str()))
            .cloned()
            .collect();
        for table in gone {
            writer.remove_table(&table);
        }
        for table in tables {
            writer.table(table, None::<std::iter::Empty<&str>>);
        }
        writer.population(population, None);
        writer.finish(&state);
        out
    }

    fn begin(&mut self) -> StateWrite {
        StateWrite {
            records: std::mem::take(&mut self.tombstones)
                .into_iter()
                .map(|key| StateRecord { key, value: None })
                .collect(),
            head: StateRecord {
                key: HEAD_KEY.to_string(),
                value: None,
            },
            generation: self.next_generation,
            written: Vec::new(),
            removed: Vec::new(),
            after_commit: std::mem::take(&mut self.after_commit),
        }
    }

    /// `write`'s head is acknowledged: its parts are in force; the records of the tables it
    /// removed, and what it made stale, are deleted at the next checkpoint.
    pub fn committed(&mut self, write: StateWrite) {
        self.next_generation = write.generation + 1;
        self.whole = false;
        for (part, slot) in write.written {
            self.parts.entry(part).or_default().force = Some(slot);
        }
        for table in write.removed {
            let keys = self.forget_table(&table);
            self.tombstones.extend(keys);
        }
        self.tombstones.extend(write.after_commit);
    }

    /// Every key of `table`'s parts, the one in force of bucket 0 (its removal) last; the
    /// table forgotten.
    fn forget_table(&mut self, table: &str) -> Vec<String> {
        let buckets = self.tables.remove(table).unwrap_or(1);
        let mut keys = Vec::new();
        let mut last = Vec::new();
        for bucket in 0..buckets {
            let part = Part::Table(table.to_string(), bucket);
            let Some(slots) = self.parts.remove(&part) else {
                continue;
            };
            for slot in 0..2u8 {
                let into = if bucket == 0 && slots.force == Some(slot) {
                    &mut last
                } else {
                    &mut keys
                };
                into.extend((0..slots.pieces[slot as usize]).map(|piece| part.key(slot, piece)));
            }
        }
        keys.extend(last);
        keys
    }
}

/// One checkpoint being written.
struct Writer<'a> {
    changelog: &'a mut Changelog,
    out: &'a mut StateWrite,
    record_bytes: usize,
}

impl<'a> Writer<'a> {
    fn new(changelog: &'a mut Changelog, out: &'a mut StateWrite, record_bytes: usize) -> Self {
        Writer {
            changelog,
            out,
            record_bytes,
        }
    }

    /// The bytes a bucket may hold before the table (or population) is spread over more: a
    /// few records' worth at most, so that a change rewrites little.
    fn bucket_bytes(&self) -> usize {
        (self.record_bytes / 2).clamp(1, BUCKET_BYTES)
    }

    /// `table`'s current state: the buckets `touched` principals fall in, and bucket 0; all
    /// of them if `touched` is `None`, the table is new here, or a bucket outgrew its size.
    fn table<'t>(&mut self, table: TableSnapshot, touched: Option<impl Iterator<Item = &'t str>>) {
        let known = self.changelog.tables.get(&table.table).copied();
        let fitting = buckets_for(estimate(&table.baseline), self.bucket_bytes());
        // Never fewer buckets; more (all rewritten) when the table outgrew them.
        let buckets = fitting.max(known.unwrap_or(1));
        let dirty = match (known, touched) {
            (Some(known), Some(touched)) if known == buckets => {
                let mut dirty: BTreeSet<u32> = touched.map(|p| table_slot(p, buckets)).collect();
                dirty.insert(0);
                Some(dirty)
            }
            _ => None,
        };
        self.changelog.tables.insert(table.table.clone(), buckets);
        let TableSnapshot {
            table: name,
            learn_until,
            baseline,
            pending,
            window,
        } = table;
        let mut parts: BTreeMap<u32, Vec<(String, Ts)>> = BTreeMap::new();
        for bucket in 0..buckets {
            if dirty.as_ref().is_none_or(|d| d.contains(&bucket)) {
                parts.insert(bucket, Vec::new());
            }
        }
        for (principal, ts) in baseline {
            if let Some(entries) = parts.get_mut(&table_slot(&principal, buckets)) {
                entries.push((principal, ts));
            }
        }
        let mut head = Some((learn_until, pending, window));
        for (bucket, baseline) in parts {
            let (learn_until, pending, window) = if bucket == 0 {
                head.take().expect("bucket 0 once")
            } else {
                (None, Vec::new(), None)
            };
            let part = TablePart {
                table: name.clone(),
                bucket,
                buckets,
                removed: false,
                learn_until,
                pending,
                window,
                baseline,
            };
            let body = serde_json::to_vec(&part).expect("a table part serializes");
            self.put(Part::Table(name.clone(), bucket), &body);
        }
    }

    /// `table` is gone: its removal goes to bucket 0.
    fn remove_table(&mut self, table: &str) {
        if !self.changelog.tables.contains_key(table) {
            return;
        }
        let part = TablePart {
            table: table.to_string(),
            bucket: 0,
            buckets: 1,
            removed: true,
            learn_until: None,
            pending: Vec::new(),
            window: None,
            baseline: Vec::new(),
        };
        let body = serde_json::to_vec(&part).expect("a table part serializes");
        self.put(Part::Table(table.to_string(), 0), &body);
        self.out.removed.push(table.to_string());
    }

    /// The population's entries of the `dirty` buckets (all of them: every bucket, spread
    /// anew).
    fn population(&mut self, entries: Vec<(String, Ts)>, dirty: Option<&BTreeSet<u32>>) {
        let mut buckets = self.changelog.population_buckets;
        if dirty.is_none() {
            buckets = buckets.max(buckets_for(estimate(&entries), self.bucket_bytes()));
        }
        let mut parts: BTreeMap<u32, Vec<(String, Ts)>> = match dirty {
            Some(dirty) => dirty.iter().map(|b| (*b, Vec::new())).collect(),
            None => (0..buckets).map(|b| (b, Vec::new())).collect(),
        };
        for (principal, ts) in entries {
            if let Some(bucket) = parts.get_mut(&table_slot(&principal, buckets)) {
                bucket.push((principal, ts));
            }
        }
        for (bucket, entries) in parts {
            let body = serde_json::to_vec(&PopulationPart { bucket, entries })
                .expect("a population part serializes");
            self.put(Part::Population(bucket), &body);
        }
        self.changelog.population_buckets = buckets;
    }

    /// The rest of the state, then the head.
    fn finish(mut self, state: &PartitionState) {
        let body = serde_json::to_vec(state).expect("a state serializes");
        self.put(Part::Rest, &body);
        let Stamp {
            format,
            version,
            written_at,
        } = stamp::<Head>();
        let head = Head {
            format,
            version,
            written_at,
            partition: state.partition,
            partitions: state.partitions,
            lineage: self.changelog.lineage.clone(),
            generation: self.out.generation,
            population_buckets: self.changelog.population_buckets,
        };
        self.out.head.value = Some(serde_json::to_vec(&head).expect("a head serializes"));
    }

    /// `body` as the new value of `part`, in pieces that fit a record, in its free slot; the
    /// pieces of that slot's older value beyond the new ones deleted.
    fn put(&mut self, part: Part, body: &[u8]) {
        let slots = self.changelog.parts.entry(part.clone()).or_default();
        let slot = slots.free();
        let lineage = &self.changelog.lineage;
        // Room for the header and the key, whatever the numbers in them.
        let widest = PieceHeader {
            lineage,
            generation: u64::MAX,
            piece: u32::MAX,
            pieces: u32::MAX,
        };
        let overhead = serde_json::to_vec(&widest)
            .expect("a header serializes")
            .len()
            + 1
            + part.key(slot, u32::MAX).len();
        let room = self.record_bytes.saturating_sub(overhead).max(1);
        let pieces = body.len().div_ceil(room).max(1) as u32;
        for piece in 0..pieces {
            let from = (piece as usize * room).min(body.len());
            let to = (from + room).min(body.len());
            let header = PieceHeader {
                lineage,
                generation: self.out.generation,
                piece,
                pieces,
            };
            let mut value = serde_json::to_vec(&header).expect("a header serializes");
            value.push(b'\n');
            value.extend_from_slice(&body[from..to]);
            self.out.records.push(StateRecord {
                key: part.key(slot, piece),
                value: Some(value),
            });
        }
        for piece in pieces..slots.pieces[slot as usize] {
            self.out.records.push(StateRecord {
                key: part.key(slot, piece),
                value: None,
            });
        }
        slots.pieces[slot as usize] = pieces;
        self.out.written.push((part, slot));
    }
}

/// About the bytes `entries` take in JSON.
fn estimate(entries: &[(String, Ts)]) -> usize {
    entries.iter().map(|(p, _)| p.len() + 24).sum()
}

/// The power of two of buckets that holds `bytes` at most `per_bucket` each.
fn buckets_for(bytes: usize, per_bucket: usize) -> u32 {
    (bytes.div_ceil(per_bucket.max(1)).max(1) as u32).next_power_of_two()
}

/// What a partition's records in the state topic restore to.
#[derive(Debug)]
pub struct Restored {
    /// `None`: the partition has no state.
    pub state: Option<PartitionState>,
    pub changelog: Changelog,
    /// The state came from an earlier release's one record.
    pub migrated: bool,
}

/// Restores partition `partition` of `partitions` from its records in the state topic,
/// `(offset, key, value)` in offset order (a compacted topic, or the whole log: the newest
/// value of each key counts).
pub fn restore(
    partition: i32,
    partitions: i32,
    records: impl IntoIterator<Item = (i64, String, Option<Vec<u8>>)>,
) -> Result<Restored, String> {
    let mut newest: HashMap<String, (i64, Vec<u8>)> = HashMap::new();
    for (offset, key, value) in records {
        match value {
            Some(value) => newest.insert(key, (offset, value)),
            None => newest.remove(&key),
        };
    }
    let head = newest.remove(HEAD_KEY);
    let v1 = newest.remove(&v1_key(partition));
    let Some((head_offset, head)) = head else {
        // Without a head, no part was ever committed: every other record is deleted.
        let stale: Vec<String> = sorted_keys(&newest);
        let Some((offset, bytes)) = v1 else {
            return Ok(Restored {
                state: None,
                changelog: Changelog::fresh(stale),
                migrated: false,
            });
        };
        let state = envelope::open_version::<PartitionState>(&bytes, 1).map_err(|e| {
            format!("the state of partition {partition} (state topic offset {offset}) cannot be used: {e}")
        })?;
        check_partition(partition, partitions, state.partition, state.partitions)?;
        let mut changelog = Changelog::fresh(stale);
        // The earlier release's record goes once the first head is there.
        changelog.after_commit.push(v1_key(partition));
        return Ok(Restored {
            state: Some(state),
            changelog,
            migrated: true,
        });
    };
    let head: Head = envelope::open(&head).map_err(|e| {
        format!("the state of partition {partition} (head at state topic offset {head_offset}) cannot be used: {e}")
    })?;
    check_partition(partition, partitions, head.partition, head.partitions)?;
    let mut changelog = Changelog {
        lineage: head.lineage.clone(),
        next_generation: head.generation + 1,
        parts: HashMap::new(),
        tables: HashMap::new(),
        population_buckets: head.population_buckets.max(1),
        whole: false,
        tombstones: Vec::new(),
        after_commit: Vec::new(),
        uncertain: false,
    };
    if let Some((offset, _)) = v1 {
        if offset > head_offset {
            return Err(format!(
                "partition {partition}'s state was written by an earlier release of exposure \
                 (state topic offset {offset}) after this release wrote it (offset {head_offset}): \
                 stop every instance of the earlier release; the group runs one release at a time"
            ));
        }
        changelog.tombstones.push(v1_key(partition));
    }
    // Each slot's pieces of this lineage, up to the head's generation.
    let mut slots: BTreeMap<(Part, u8), Pieces> = BTreeMap::new();
    let mut stale = Vec::new();
    for key in sorted_keys(&newest) {
        let (_, value) = newest.remove(&key).expect("listed");
        let piece = parse_key(&key).and_then(|(part, slot, piece)| {
            let (header, body) = split_piece(&value)?;
            changelog.next_generation = changelog.next_generation.max(header.generation + 1);
            let ours = header.lineage == head.lineage
                && header.generation <= head.generation
                && header.piece == piece
                && piece < header.pieces;
            ours.then(|| (part, slot, piece, header, body.to_vec()))
        });
        match piece {
            Some((part, slot, piece, header, body)) => {
                let known = changelog.parts.entry(part.clone()).or_default();
                known.pieces[slot as usize] = known.pieces[slot as usize].max(piece + 1);
                slots
                    .entry((part, slot))
                    .or_default()
                    .insert(piece, (header.generation, header.pieces, body));
            }
            None => stale.push(key),
        }
    }
    // Per part, the slot holding a whole value of the newest generation.
    let mut values: BTreeMap<Part, (u64, u8, Vec<u8>)> = BTreeMap::new();
    for ((part, slot), pieces) in slots {
        let Some(&(generation, count, _)) = pieces.get(&0) else {
            continue;
        };
        let whole = (0..count).all(|p| pieces.get(&p).is_some_and(|(g, _, _)| *g == generation));
        if !whole {
            continue;
        }
        if values.get(&part).is_some_and(|(g, _, _)| *g >= generation) {
            continue;
        }
        let mut body = Vec::new();
        for piece in 0..count {
            body.extend_from_slice(&pieces[&piece].2);
        }
        values.insert(part, (generation, slot, body));
    }
    for (part, (_, slot, _)) in &values {
        changelog.parts.entry(part.clone()).or_default().force = Some(*slot);
    }
    // Parts with no whole value hold nothing in force.
    let orphans: Vec<Part> = (changelog.parts.keys())
        .filter(|p| !values.contains_key(*p))
        .cloned()
        .collect();
    for part in orphans {
        let slots = changelog.parts.remove(&part).expect("listed");
        for slot in 0..2u8 {
            stale.extend((0..slots.pieces[slot as usize]).map(|piece| part.key(slot, piece)));
        }
    }
    let corrupt = |what: &str, e: serde_json::Error| {
        format!("the state of partition {partition} cannot be used: its {what} is damaged: {e}")
    };
    let Some((_, _, rest)) = values.remove(&Part::Rest) else {
        return Err(format!(
            "the state of partition {partition} cannot be used: its head (generation {}) has no \
             rest part in the state topic (was the topic's data deleted?)",
            head.generation
        ));
    };
    let mut state: PartitionState =
        serde_json::from_slice(&rest).map_err(|e| corrupt("rest part", e))?;
    let mut population = Vec::new();
    let mut tables: BTreeMap<String, (Option<TablePart>, Vec<TablePart>)> = BTreeMap::new();
    for (part, (_, _, body)) in values {
        match part {
            Part::Rest => {}
            Part::Population(bucket) => {
                let part: PopulationPart =
                    serde_json::from_slice(&body).map_err(|e| corrupt("population", e))?;
                if bucket < changelog.population_buckets {
                    population.extend(part.entries);
                }
            }
            Part::Table(name, bucket) => {
                let part: TablePart = serde_json::from_slice(&body)
                    .map_err(|e| corrupt(&format!("table {name}"), e))?;
                let entry = tables.entry(name).or_default();
                if bucket == 0 {
                    entry.0 = Some(part);
                } else {
                    entry.1.push(part);
                }
            }
        }
    }
    population.sort();
    let mut snapshots = Vec::with_capacity(tables.len());
    for (name, (head_part, others)) in tables {
        let Some(first) = head_part.filter(|p| !p.removed) else {
            // Removed (or never whole): every record of it goes.
            let buckets = others.iter().map(|p| p.bucket + 1).max().unwrap_or(1);
            changelog.tables.insert(name.clone(), buckets);
            stale.extend(changelog.forget_table(&name));
            continue;
        };
        let buckets = first.buckets;
        changelog.tables.insert(name.clone(), buckets);
        let mut baseline = first.baseline;
        for part in others {
            if part.bucket < buckets {
                baseline.extend(part.baseline);
            }
        }
        baseline.sort();
        snapshots.push(TableSnapshot {
            table: name,
            learn_until: first.learn_until,
            baseline,
            pending: first.pending,
            window: first.window,
        });
    }
    state.detector.tables = snapshots;
    state.detector.population = population;
    changelog.tombstones.splice(0..0, stale);
    Ok(Restored {
        state: Some(state),
        changelog,
        migrated: false,
    })
}

/// A slot's pieces read: piece → (generation, pieces, bytes).
type Pieces = BTreeMap<u32, (u64, u32, Vec<u8>)>;

fn sorted_keys<V>(map: &HashMap<String, V>) -> Vec<String> {
    let mut keys: Vec<String> = map.keys().cloned().collect();
    keys.sort();
    keys
}

fn check_partition(partition: i32, partitions: i32, was: i32, of: i32) -> Result<(), String> {
    if of != partitions || was != partition {
        return Err(format!(
            "the state of partition {partition} was written for partition {was} of {of}: \
             input.kafka.partitions changed after the topics were made"
        ));
    }
    Ok(())
}

/// A piece's header and its bytes.
fn split_piece(value: &[u8]) -> Option<(PieceHeader<'_>, &[u8])> {
    let end = value.iter().position(|b| *b == b'\n')?;
    let header: PieceHeader<'_> = serde_json::from_slice(&value[..end]).ok()?;
    Some((header, &value[end + 1..]))
}

#[cfg(test)]
mod tests;
