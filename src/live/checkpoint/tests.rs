use super::*;
use crate::detect::{Detector, DetectorSettings};
use crate::event::AccessEvent;
use std::fs;

const HOUR: i64 = 3_600_000_000;

fn read(detector: &mut Detector, ts: i64, table: &str, principal: &str) {
    let event = AccessEvent::new(ts, principal, table, Some("SELECT"));
    detector.observe(&event, &mut Vec::new());
}

/// A detector that learned a few tables, with change tracking on.
fn detector() -> Detector {
    let mut detector = Detector::new(DetectorSettings::default());
    detector.track_changes();
    for h in 0..30 {
        for t in 0..50 {
            for p in 0..40 {
                read(
                    &mut detector,
                    h * HOUR + p,
                    &format!("db.t{t}"),
                    &format!("user{p}"),
                );
            }
        }
    }
    detector
}

fn watch_record(detector: &mut Detector, n: usize) -> ChangeRecord {
    ChangeRecord {
        progress: Progress {
            written_at: format!("2026-12-07T00:00:{n:02}.000Z"),
            written_by: "watch".into(),
            files: Vec::new(),
            emitted: vec![format!("key{n}")],
            baseline_changes: n,
            evidence: None,
        },
        detector: detector.take_changes(),
    }
}

const NEVER: CompactWhen = CompactWhen {
    at_least: u64::MAX,
    base_share_percent: 0,
};
const ALWAYS: CompactWhen = CompactWhen {
    at_least: 1,
    base_share_percent: 0,
};

/// A state dir holding `detector`'s state as a base, and the writer going on from it.
fn saved(
    detector: &mut Detector,
    when: CompactWhen,
) -> (tempfile::TempDir, StateDir, CheckpointLog) {
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::new(dir.path());
    Checkpoint::new("watch", detector.snapshot(), Vec::new(), Vec::new())
        .save(&state)
        .unwrap();
    detector.take_changes();
    let mut log = CheckpointLog::new(&state, when);
    log.saved_whole().unwrap();
    (dir, state, log)
}

fn files_in(state: &StateDir) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(folder(state))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn round_trips_and_refuses_unknown_versions_and_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::new(dir.path());
    assert!(Checkpoint::load(&state).unwrap().is_none());
    let snapshot = Detector::new(DetectorSettings::default()).snapshot();
    let checkpoint = Checkpoint::new("watch", snapshot, Vec::new(), vec!["x:open".into()]);
    checkpoint.save(&state).unwrap();
    assert_eq!(Checkpoint::load(&state).unwrap(), Some(checkpoint));

    let path = state.checkpoint();
    let text = fs::read_to_string(&path).unwrap();
    fs::write(&path, text.replace("\"version\":2", "\"version\":7")).unwrap();
    let error = Checkpoint::load(&state).unwrap_err().to_string();
    assert!(error.contains("has version 7"), "{error}");

    fs::write(&path, &text[..text.len() / 2]).unwrap();
    let error = Checkpoint::load(&state).unwrap_err().to_string();
    assert!(error.contains("is corrupt"), "{error}");

    fs::write(&path, &text).unwrap();
    let base = base_path(&state, 1);
    let lines = fs::read_to_string(&base).unwrap();
    fs::write(
        &base,
        lines.replacen("exposure.checkpoint-base", "exposure.other", 1),
    )
    .unwrap();
    let error = Checkpoint::load(&state).unwrap_err().to_string();
    assert!(
        error.contains("is corrupt") && error.contains("base-1.jsonl"),
        "{error}"
    );
}

#[test]
fn a_single_file_checkpoint_of_an_earlier_release_is_read_and_replaced_by_a_base() {
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::new(dir.path());
    let mut detector = detector();
    let checkpoint = Checkpoint::new("watch", detector.snapshot(), Vec::new(), Vec::new());
    assert_eq!(checkpoint.version, WHOLE_FILE_VERSION);
    fs::write(state.checkpoint(), serde_json::to_vec(&checkpoint).unwrap()).unwrap();
    let loaded = Checkpoint::load_laid_out(&state).unwrap().unwrap();
    assert_eq!(loaded.layout, Layout::WholeFile);
    assert_eq!(loaded.checkpoint, checkpoint);

    let mut log =
        CheckpointLog::resume(&state, Some(&loaded.layout), CompactWhen::default()).unwrap();
    assert!(log.needs_base());
    loaded.checkpoint.save(&state).unwrap();
    log.saved_whole().unwrap();
    read(&mut detector, 31 * HOUR, "db.t0", "user1");
    log.append(&watch_record(&mut detector, 1)).unwrap();
    let manifest = fs::read_to_string(state.checkpoint()).unwrap();
    assert!(manifest.contains("\"version\":2"), "{manifest}");
    let reloaded = Checkpoint::load(&state).unwrap().unwrap();
    assert_eq!(reloaded.detector, detector.snapshot());
}

#[test]
fn change_records_fold_onto_the_base_and_a_record_cut_short_is_dropped() {
    let mut detector = detector();
    let (_dir, state, mut log) = saved(&mut detector, NEVER);
    let mut sizes = Vec::new();
    for n in 0..4 {
        read(&mut detector, (40 + n) * HOUR, "db.t1", &format!("user{n}"));
        read(&mut detector, (40 + n) * HOUR, "db.new", "someone");
        sizes.push(
            log.append(&watch_record(&mut detector, n as usize))
                .unwrap(),
        );
    }
    // A record holds what changed: a few pairs, not the state (the first also holds the
    // last hour's reads, buffered when the base was written and applied since).
    let base_bytes = fs::metadata(base_path(&state, 1)).unwrap().len();
    assert!(sizes[0] * 2 < base_bytes, "{sizes:?} vs {base_bytes}");
    assert!(
        sizes[1..].iter().all(|s| *s * 100 < base_bytes),
        "{sizes:?} vs {base_bytes}"
    );
    let loaded = Checkpoint::load(&state).unwrap().unwrap();
    assert_eq!(loaded.detector, detector.snapshot());
    assert_eq!(loaded.emitted, ["key3"]);
    assert_eq!(loaded.baseline_changes, 3);

    // A crash in the middle of the next append: the checkpoint before it stands.
    let before = detector.snapshot();
    read(&mut detector, 50 * HOUR, "db.t2", "user5");
    let record = serde_json::to_string(&watch_record(&mut detector, 9)).unwrap();
    let path = log_path(&state, 1);
    let mut file = fs::OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(&record.as_bytes()[..record.len() / 2])
        .unwrap();
    drop(file);
    let laid_out = Checkpoint::load_laid_out(&state).unwrap().unwrap();
    assert_eq!(laid_out.checkpoint.detector, before);
    // After the restart, from the checkpoint, the read is taken again and writing goes on
    // after the last whole record.
    let mut detector =
        Detector::restore(DetectorSettings::default(), &laid_out.checkpoint.detector);
    detector.track_changes();
    read(&mut detector, 50 * HOUR, "db.t2", "user5");
    let mut log = CheckpointLog::resume(&state, Some(&laid_out.layout), NEVER).unwrap();
    log.append(&watch_record(&mut detector, 10)).unwrap();
    assert_eq!(
        Checkpoint::load(&state).unwrap().unwrap().detector,
        detector.snapshot()
    );
}

#[test]
fn compaction_folds_the_logs_into_a_new_base_while_appends_go_on() {
    let mut detector = detector();
    let (_dir, state, mut log) = saved(&mut detector, ALWAYS);
    read(&mut detector, 40 * HOUR, "db.t1", "user1");
    log.append(&watch_record(&mut detector, 1)).unwrap();
    // Appends go on while the compaction runs.
    read(&mut detector, 41 * HOUR, "db.t1", "user2");
    log.append(&watch_record(&mut detector, 2)).unwrap();
    log.wait_for_compaction();
    assert_eq!(log.compactions, 1);
    assert_eq!(
        files_in(&state),
        ["base-2.jsonl", "changes-2.jsonl"],
        "the old base and log are gone"
    );
    assert_eq!(
        Checkpoint::load(&state).unwrap().unwrap().detector,
        detector.snapshot()
    );
}

#[test]
fn a_compaction_cut_short_by_a_crash_leaves_a_state_that_restores_and_is_compacted_again() {
    let mut detector = detector();
    let (_dir, state, mut log) = saved(&mut detector, NEVER);
    read(&mut detector, 40 * HOUR, "db.t1", "user1");
    log.append(&watch_record(&mut detector, 1)).unwrap();
    // As a compaction leaves it when killed before its commit: the records after the
    // rotation in the next log, a half-written base under its temporary name and one renamed.
    read(&mut detector, 41 * HOUR, "db.t4", "user7");
    let mut next = File::create(log_path(&state, 2)).unwrap();
    write_line(&mut next, &watch_record(&mut detector, 2)).unwrap();
    fs::write(folder(&state).join(".base-2.jsonl.tmp"), "{\"half").unwrap();
    fs::write(base_path(&state, 2), "{\"half").unwrap();

    let laid_out = Checkpoint::load_laid_out(&state).unwrap().unwrap();
    assert_eq!(laid_out.checkpoint.detector, detector.snapshot());
    let Layout::Incremental {
        generation,
        last_log,
        ..
    } = laid_out.layout
    else {
        panic!("{:?}", laid_out.layout)
    };
    assert_eq!((generation, last_log), (1, 2));
    // Going on: the compaction is done again, and appends go to the newest log meanwhile.
    let mut log = CheckpointLog::resume(&state, Some(&laid_out.layout), NEVER).unwrap();
    read(&mut detector, 42 * HOUR, "db.t3", "user3");
    log.append(&watch_record(&mut detector, 3)).unwrap();
    log.wait_for_compaction();
    assert_eq!(log.compactions, 1);
    assert_eq!(files_in(&state), ["base-2.jsonl", "changes-2.jsonl"]);
    let loaded = Checkpoint::load(&state).unwrap().unwrap();
    assert_eq!(loaded.detector, detector.snapshot());
    assert_eq!(loaded.emitted, ["key3"]);
}
