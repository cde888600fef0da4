use super::*;
use crate::detect::{Detector, DetectorSettings};
use crate::event::AccessEvent;

const HOUR: i64 = 3_600_000_000;
const DAY: i64 = 24 * HOUR;

/// A state topic partition: every record sent, in order.
#[derive(Debug, Clone, Default)]
struct Topic {
    log: Vec<(i64, String, Option<Vec<u8>>)>,
}

impl Topic {
    fn append(&mut self, record: &StateRecord) {
        let offset = self.log.len() as i64;
        (self.log).push((offset, record.key.clone(), record.value.clone()));
    }

    /// Sends `write` whole (records, then head).
    fn send(&mut self, write: &StateWrite) {
        for record in &write.records {
            self.append(record);
        }
        self.append(&write.head);
    }

    /// What a compacting broker may keep: the newest record of each key, tombstones gone.
    fn compact(&mut self) {
        let mut newest: HashMap<String, usize> = HashMap::new();
        for (at, (_, key, _)) in self.log.iter().enumerate() {
            newest.insert(key.clone(), at);
        }
        let mut at = 0;
        self.log.retain(|(_, key, value)| {
            let keep = newest[key] == at && value.is_some();
            at += 1;
            keep
        });
    }

    fn keys(&self) -> BTreeSet<String> {
        let mut copy = self.clone();
        copy.compact();
        copy.log.into_iter().map(|(_, key, _)| key).collect()
    }

    fn restore(&self) -> Restored {
        restore(0, 1, self.log.clone()).unwrap()
    }
}

fn read(detector: &mut Detector, ts: i64, table: &str, principal: &str) {
    let event = AccessEvent::new(ts, principal, table, Some("SELECT"));
    detector.observe(&event, &mut Vec::new());
}

fn rest(detector: DetectorSnapshot) -> PartitionState {
    PartitionState::learned(0, 1, 7, detector)
}

/// A small pseudo-random sequence (the same in every run).
struct Steps(u64);

impl Steps {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

/// A partition's detector after `hours` of reads: a few large tables (read by hundreds),
/// many small ones, and — past the learning week — new readers (pending, windows; one
/// opened in the last hour).
fn workload(detector: &mut Detector, steps: &mut Steps, from: i64, hours: i64) {
    for h in from..from + hours {
        for i in 0..400 {
            let table = steps.next(40);
            let readers = if table < 3 { 600 } else { 12 };
            let principal = steps.next(readers);
            read(
                detector,
                h * HOUR + i * (HOUR / 1000),
                &format!("db.schema.table_{table}"),
                &format!("user-{principal}@corp.example"),
            );
        }
        if h > 8 * 24 && (steps.next(5) == 0 || h == from + hours - 1) {
            let table = steps.next(40);
            for newcomer in 0..4 {
                read(
                    detector,
                    h * HOUR + HOUR / 2 + newcomer,
                    &format!("db.schema.table_{table}"),
                    &format!("new-{h}-{newcomer}"),
                );
            }
        }
    }
}

fn tracked() -> Detector {
    let mut detector = Detector::new(DetectorSettings::default());
    detector.track_changes();
    detector
}

/// The restore of `topic` is `detector`'s state.
fn assert_restores(topic: &Topic, detector: &Detector) {
    let restored = topic.restore();
    let state = restored.state.expect("a state");
    assert_eq!(state.detector, detector.snapshot());
    assert_eq!(state.next_offset, 7);
}

#[test]
fn checkpoints_restore_to_the_snapshot_and_write_what_changed() {
    let mut detector = tracked();
    let mut steps = Steps(1);
    let mut changelog = Changelog::fresh(Vec::new());
    let mut topic = Topic::default();
    workload(&mut detector, &mut steps, 0, 24);
    let first = changelog.write(&mut detector, rest, 1_000_000);
    let first_bytes = first.bytes();
    let mut windows = 0;
    topic.send(&first);
    changelog.committed(first);
    assert_restores(&topic, &detector);
    for round in 0..12 {
        // A day of reads, or a jump past forget_after (baseline pairs and the population
        // forgotten), between checkpoints.
        let from = if round < 6 {
            24 + round * 24
        } else {
            60 * 24 + (round - 6) * 24
        };
        workload(&mut detector, &mut steps, from, 24);
        let write = changelog.write(&mut detector, rest, 1_000_000);
        topic.send(&write);
        changelog.committed(write);
        assert_restores(&topic, &detector);
        // And the same from what a compacting broker keeps.
        let mut compacted = topic.clone();
        compacted.compact();
        assert_restores(&compacted, &detector);
        let snapshot = detector.snapshot();
        windows += snapshot
            .tables
            .iter()
            .filter(|t| t.window.is_some())
            .count();
    }
    assert!(windows > 0, "the workload opens windows");
    // One table read: one bucket of it, a bucket of the population, the rest — not the whole
    // state (written in small records here, to see it with a small state).
    let mut small = Changelog::fresh(Vec::new());
    let mut topic = Topic::default();
    let whole = small.write(&mut detector, rest, 2048);
    topic.send(&whole);
    let whole_bytes = whole.bytes();
    small.committed(whole);
    read(
        &mut detector,
        70 * DAY,
        "db.schema.table_20",
        "user-3@corp.example",
    );
    let write = small.write(&mut detector, rest, 2048);
    topic.send(&write);
    small.committed(write);
    read(
        &mut detector,
        70 * DAY + HOUR,
        "db.schema.table_20",
        "user-3@corp.example",
    );
    let write = small.write(&mut detector, rest, 2048);
    assert!(
        write.bytes() * 5 < whole_bytes,
        "{} bytes for one read, {whole_bytes} for the state",
        write.bytes()
    );
    topic.send(&write);
    small.committed(write);
    assert_restores(&topic, &detector);
    let _ = first_bytes;
}

#[test]
fn no_record_is_larger_than_allowed_and_large_tables_rewrite_only_buckets_touched() {
    let mut detector = tracked();
    let mut steps = Steps(2);
    let mut changelog = Changelog::fresh(Vec::new());
    let mut topic = Topic::default();
    let limit = 4096;
    workload(&mut detector, &mut steps, 0, 48);
    let mut writes = Vec::new();
    for day in 2..6 {
        let write = changelog.write(&mut detector, rest, limit);
        assert!(
            write.largest_record() <= limit,
            "{}",
            write.largest_record()
        );
        topic.send(&write);
        writes.push(write.records.len());
        changelog.committed(write);
        assert_restores(&topic, &detector);
        workload(&mut detector, &mut steps, day * 24, 6);
    }
    let write = changelog.write(&mut detector, rest, limit);
    topic.send(&write);
    changelog.committed(write);
    // A table of 600 readers is spread over buckets; one reader's read rewrites one of them.
    assert!(changelog.tables["db.schema.table_0"] >= 4);
    // A read far on applies what the reorder buffer held; the next applies that one read.
    read(
        &mut detector,
        7 * DAY,
        "db.schema.table_0",
        "user-17@corp.example",
    );
    let write = changelog.write(&mut detector, rest, limit);
    topic.send(&write);
    changelog.committed(write);
    let before = topic.log.len();
    read(
        &mut detector,
        7 * DAY + HOUR,
        "db.schema.table_0",
        "user-17@corp.example",
    );
    let write = changelog.write(&mut detector, rest, limit);
    let tables: BTreeSet<&str> = (write.records.iter())
        .filter(|r| r.key.starts_with("table/"))
        .map(|r| r.key.split('@').next().unwrap())
        .collect();
    assert!(tables.len() <= 2, "{tables:?}"); // bucket 0 and the reader's bucket
    topic.send(&write);
    changelog.committed(write);
    assert!(topic.log.len() - before < writes[0]);
    assert_restores(&topic, &detector);
}

#[test]
fn a_checkpoint_cut_short_anywhere_restores_the_one_before_even_compacted() {
    let mut detector = tracked();
    let mut steps = Steps(3);
    let mut changelog = Changelog::fresh(Vec::new());
    let mut topic = Topic::default();
    workload(&mut detector, &mut steps, 0, 24 * 9);
    let write = changelog.write(&mut detector, rest, 8192);
    topic.send(&write);
    changelog.committed(write);
    let committed = detector.snapshot();
    workload(&mut detector, &mut steps, 24 * 9, 24);
    let cut = changelog.clone().write(&mut detector.clone(), rest, 8192);
    assert!(cut.records.len() > 3);
    for sent in 0..=cut.records.len() {
        // The records up to `sent` reached the broker, the head never did.
        let mut crashed = topic.clone();
        for record in &cut.records[..sent] {
            crashed.append(record);
        }
        crashed.compact();
        let restored = crashed.restore();
        assert_eq!(
            restored.state.as_ref().unwrap().detector,
            committed,
            "cut at {sent}"
        );
        // The next owner goes on from there; its first checkpoint deletes what was cut.
        let mut owner = Detector::restore(
            DetectorSettings::default(),
            &restored.state.as_ref().unwrap().detector,
        );
        owner.track_changes();
        let mut owner_log = restored.changelog;
        workload(&mut owner, &mut Steps(sent as u64), 24 * 9, 30);
        let write = owner_log.write(&mut owner, rest, 8192);
        crashed.send(&write);
        owner_log.committed(write);
        crashed.compact();
        assert_restores(&crashed, &owner);
        // Nothing of the cut checkpoint is left to be taken later.
        workload(&mut owner, &mut Steps(99), 24 * 11, 1);
        let write = owner_log.write(&mut owner, rest, 8192);
        crashed.send(&write);
        owner_log.committed(write);
        crashed.compact();
        assert_restores(&crashed, &owner);
        let left: HashMap<&String, &Option<Vec<u8>>> = crashed
            .log
            .iter()
            .map(|(_, key, value)| (key, value))
            .collect();
        for record in &cut.records[..sent] {
            if record.value.is_some() {
                assert_ne!(left.get(&record.key), Some(&&record.value), "cut at {sent}");
            }
        }
    }
}

#[test]
fn removed_tables_are_deleted_after_their_removal_is_committed() {
    let mut detector = tracked();
    let mut steps = Steps(4);
    workload(&mut detector, &mut steps, 0, 24);
    let mut snapshot = detector.snapshot();
    let tables = std::mem::take(&mut snapshot.tables);
    let population = std::mem::take(&mut snapshot.population);
    let mut changelog = Changelog::fresh(Vec::new());
    let mut topic = Topic::default();
    let write = changelog.write_whole(
        rest(snapshot.clone()),
        tables.clone(),
        population.clone(),
        2048,
    );
    topic.send(&write);
    changelog.committed(write);
    let kept: Vec<TableSnapshot> = tables
        .iter()
        .filter(|t| t.table != "db.schema.table_1")
        .cloned()
        .collect();
    let write = changelog.write_whole(
        rest(snapshot.clone()),
        kept.clone(),
        population.clone(),
        2048,
    );
    topic.send(&write);
    changelog.committed(write);
    let state = topic.restore().state.unwrap();
    assert_eq!(state.detector.tables, kept);
    assert!(topic.keys().iter().any(|k| k.contains("table_1@")));
    // The next checkpoint deletes its records, its removal last: cut anywhere, it stays gone.
    let write = changelog.write_whole(rest(snapshot), kept.clone(), population, 2048);
    for sent in 0..=write.records.len() {
        let mut crashed = topic.clone();
        for record in &write.records[..sent] {
            crashed.append(record);
        }
        crashed.compact();
        assert_eq!(
            crashed.restore().state.unwrap().detector.tables,
            kept,
            "cut at {sent}"
        );
    }
    topic.send(&write);
    assert!(!topic.keys().iter().any(|k| k.contains("table_1@")));
}

#[test]
fn an_earlier_release_s_one_record_is_migrated_and_deleted_once_replaced() {
    let mut detector = tracked();
    workload(&mut detector, &mut Steps(5), 0, 30);
    let mut v1 = rest(detector.snapshot());
    v1.version = 1;
    let mut topic = Topic::default();
    topic.append(&StateRecord {
        key: "0".into(),
        value: Some(serde_json::to_vec(&v1).unwrap()),
    });
    let restored = topic.restore();
    assert!(restored.migrated);
    assert_eq!(restored.state.unwrap().detector, detector.snapshot());
    let mut changelog = restored.changelog;
    let write = changelog.write(&mut detector, rest, 1_000_000);
    assert!(
        write.records.iter().all(|r| r.key != "0"),
        "kept until a head is there"
    );
    topic.send(&write);
    changelog.committed(write);
    assert_restores(&topic, &detector);
    assert!(topic.keys().contains("0"));
    workload(&mut detector, &mut Steps(6), 30, 2);
    let write = changelog.write(&mut detector, rest, 1_000_000);
    topic.send(&write);
    changelog.committed(write);
    assert!(!topic.keys().contains("0"));
    assert_restores(&topic, &detector);
    // An earlier release writing after this one is refused by name.
    topic.append(&StateRecord {
        key: "0".into(),
        value: Some(serde_json::to_vec(&v1).unwrap()),
    });
    let error = restore(0, 1, topic.log.clone()).unwrap_err();
    assert!(error.contains("earlier release"), "{error}");
}

#[test]
fn another_lineage_is_not_read_and_a_newer_layout_is_refused() {
    let mut first = tracked();
    workload(&mut first, &mut Steps(7), 0, 30);
    let mut topic = Topic::default();
    let mut old = Changelog::fresh(Vec::new());
    let write = old.write(&mut first, rest, 4096);
    topic.send(&write);
    let old_keys = topic.keys();
    // `learn --force`: a new lineage written over it, with fewer tables.
    let mut second = tracked();
    workload(&mut second, &mut Steps(8), 0, 3);
    let mut changelog = Changelog::fresh(Vec::new());
    let write = changelog.write(&mut second, rest, 4096);
    topic.send(&write);
    changelog.committed(write);
    let restored = topic.restore();
    assert_eq!(restored.state.as_ref().unwrap().detector, second.snapshot());
    // Its keys the new lineage did not write over are deleted at the next checkpoint.
    let stale: BTreeSet<String> = old_keys.difference(&topic.keys()).cloned().collect();
    let stale_now: BTreeSet<String> = (old_keys.iter())
        .filter(|k| {
            let newest = topic
                .log
                .iter()
                .rev()
                .find(|(_, key, _)| key == *k)
                .unwrap();
            split_piece(newest.2.as_ref().unwrap())
                .is_some_and(|(h, _)| h.lineage != changelog.lineage)
        })
        .cloned()
        .collect();
    assert!(stale.is_empty());
    assert!(!stale_now.is_empty());
    let tombstones: BTreeSet<String> = restored.changelog.tombstones.iter().cloned().collect();
    assert_eq!(tombstones, stale_now);
    // A head of a later layout is named.
    let mut newer = topic.clone();
    let head = newer.log.last().unwrap().2.clone().unwrap();
    let head = String::from_utf8(head)
        .unwrap()
        .replace("\"version\":2", "\"version\":3");
    newer.append(&StateRecord {
        key: HEAD_KEY.into(),
        value: Some(head.into_bytes()),
    });
    let error = restore(0, 1, newer.log).unwrap_err();
    assert!(error.contains("version 3"), "{error}");
    // A state of another partition count is refused.
    let error = restore(0, 2, topic.log.clone()).unwrap_err();
    assert!(error.contains("partitions changed"), "{error}");
}

#[test]
fn keys_are_read_back_whatever_the_table_names_hold() {
    for name in ["db.t", "a/b/c", "x@1#2", "we@ird#0@1", "ünï/cødé"] {
        for part in [
            Part::Table(name.to_string(), 3),
            Part::Population(2),
            Part::Rest,
        ] {
            let key = part.key(1, 12);
            assert_eq!(parse_key(&key), Some((part, 1, 12)), "{key}");
        }
    }
    assert_eq!(parse_key("head"), None);
    assert_eq!(parse_key("rest@2#0"), None);
}

#[test]
fn a_damaged_record_is_named_and_a_foreign_one_set_aside() {
    let mut detector = tracked();
    workload(&mut detector, &mut Steps(9), 0, 30);
    let mut changelog = Changelog::fresh(Vec::new());
    let mut topic = Topic::default();
    let write = changelog.write(&mut detector, rest, 4096);
    topic.send(&write);
    changelog.committed(write);
    // A record with no header, or a key of no part: not this state's, deleted next time.
    let mut foreign = topic.clone();
    foreign.append(&StateRecord {
        key: "table/0/db.x@1#0".into(),
        value: Some(b"not a piece".to_vec()),
    });
    foreign.append(&StateRecord {
        key: "something else".into(),
        value: Some(b"{}".to_vec()),
    });
    let restored = foreign.restore();
    assert_eq!(restored.state.unwrap().detector, detector.snapshot());
    assert!(
        restored
            .changelog
            .tombstones
            .contains(&"something else".to_string())
    );
    assert!(
        restored
            .changelog
            .tombstones
            .contains(&"table/0/db.x@1#0".to_string())
    );
    // A piece of the state in force whose bytes are damaged: the restore says which part.
    let mut damaged = topic.clone();
    let (at, _) = (damaged.log.iter().enumerate())
        .find(|(_, (_, key, _))| key.starts_with("table/0/db.schema.table_7@"))
        .unwrap();
    let value = damaged.log[at].2.as_mut().unwrap();
    let body = value.iter().position(|b| *b == b'\n').unwrap() + 1;
    value.truncate(body + 5);
    let error = restore(0, 1, damaged.log).unwrap_err();
    assert!(
        error.contains("partition 0") && error.contains("table db.schema.table_7 is damaged"),
        "{error}"
    );
}
