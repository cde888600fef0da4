//! State at scale (issue 44): a detector holding 10^7 (table, principal) pairs over 10^5
//! tables, then what persisting it costs — the whole checkpoint written once, an incremental
//! checkpoint after 0.1 % of the pairs changed (time and bytes), a compaction, a restore from
//! base and change log — and the baseline's bytes per pair and the process's peak memory.
//!
//! With `EXPOSURE_STATE_KAFKA` naming a tansu broker binary, the same state is then a Kafka
//! partition's: written whole to a state topic as changelog records, checkpointed after 0.1 %
//! changed, and restored by a new owner (what a rebalance costs), on a tansu started here.
//!
//! A bench binary, not a timed test: run it alone, in release mode.
//!
//! ```text
//! cargo bench --bench state_scale                       # 10^7 pairs, 10^5 tables
//! EXPOSURE_STATE_PAIRS=1000000 cargo bench --bench state_scale
//! EXPOSURE_STATE_KAFKA=$(command -v tansu) cargo bench --bench state_scale
//! ```
//!
//! Figures in docs/performance.md ("State at scale").

use exposure::detect::{Detector, DetectorSettings};
use exposure::event::AccessEvent;
use exposure::live::checkpoint::{ChangeRecord, Checkpoint, CheckpointLog, CompactWhen, Progress};
use exposure::state::StateDir;
use std::time::Instant;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// xorshift: the same state on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn record(detector: &mut Detector, n: usize) -> ChangeRecord {
    ChangeRecord {
        progress: Progress {
            written_at: format!("2026-12-07T00:00:{:02}.000Z", n % 60),
            written_by: "watch".into(),
            files: Vec::new(),
            emitted: Vec::new(),
            baseline_changes: 0,
            evidence: None,
        },
        detector: detector.take_changes(),
    }
}

fn main() {
    let pairs = env_or("EXPOSURE_STATE_PAIRS", 10_000_000);
    let tables = env_or("EXPOSURE_STATE_TABLES", 100_000);
    let principals = env_or("EXPOSURE_STATE_PRINCIPALS", 100_000);
    let per_table = pairs / tables;
    println!(
        "state: {pairs} pairs over {tables} tables ({per_table} readers each), {principals} principals"
    );

    let table_names: Vec<String> = (0..tables)
        .map(|t| format!("warehouse.s{}.t{t}", t % 97))
        .collect();
    let principal_names: Vec<String> = (0..principals)
        .map(|p| format!("user{p}@corp.example"))
        .collect();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut detector = Detector::new(DetectorSettings::default());
    let started = Instant::now();
    let mut sink = Vec::new();
    // One read per pair, a millisecond apart, all within learning: every read joins.
    let mut ts: i64 = 1_765_000_000_000_000;
    let firsts: Vec<usize> = (0..tables)
        .map(|_| rng.next() as usize % principals)
        .collect();
    for (t, &first) in firsts.iter().enumerate() {
        for k in 0..per_table {
            let p = (first + k * 7919) % principals;
            let event = AccessEvent::new(ts, &principal_names[p], &table_names[t], Some("SELECT"));
            detector.observe(&event, &mut sink);
            ts += 1_000;
        }
    }
    detector.advance(ts, &mut sink);
    let (held, bytes) = detector.baseline_memory();
    println!(
        "built in {:.1} s: {held} pairs, baseline maps {:.0} MiB = {:.1} bytes per pair; peak RSS {:.0} MiB",
        started.elapsed().as_secs_f64(),
        bytes as f64 / (1 << 20) as f64,
        bytes as f64 / held as f64,
        peak_rss_mib()
    );

    let dir = tempfile::Builder::new()
        .prefix("exposure-state-scale")
        .tempdir_in(std::env::var("EXPOSURE_STATE_DIR").unwrap_or_else(|_| "/tmp".into()))
        .unwrap();
    let state = StateDir::new(dir.path().join("state"));
    let _lock = state.lock().unwrap();
    detector.track_changes();

    let started = Instant::now();
    let snapshot = detector.snapshot();
    let snapshot_s = started.elapsed().as_secs_f64();
    Checkpoint::new("watch", snapshot, Vec::new(), Vec::new())
        .save(&state)
        .unwrap();
    let whole_s = started.elapsed().as_secs_f64();
    let base_bytes = dir_bytes(&state.root().join("checkpoint"));
    println!(
        "whole checkpoint (as every checkpoint was before): {whole_s:.2} s ({snapshot_s:.2} s of it the snapshot), {:.0} MiB",
        base_bytes as f64 / (1 << 20) as f64
    );

    let never = CompactWhen {
        at_least: u64::MAX,
        base_share_percent: 0,
    };
    let mut log = CheckpointLog::new(&state, never);
    log.saved_whole().unwrap();
    // 0.1 % of the pairs read again, later: their last normal read moves.
    let changed = pairs / 1000;
    let mut times = Vec::new();
    let mut sizes = Vec::new();
    // 0.1 % of the pairs read again, later: their last normal read moves.
    let mut touch = |detector: &mut Detector| {
        for _ in 0..changed {
            // A pair held already: table t's k-th reader.
            let t = rng.next() as usize % tables;
            let k = rng.next() as usize % per_table;
            let p = (firsts[t] + k * 7919) % principals;
            let event = AccessEvent::new(ts, &principal_names[p], &table_names[t], Some("SELECT"));
            detector.observe(&event, &mut sink);
            ts += 1;
        }
        ts += 1_000_000;
        detector.advance(ts, &mut sink);
    };
    for round in 0..5 {
        touch(&mut detector);
        let started = Instant::now();
        let record = record(&mut detector, round);
        let bytes = log.append(&record).unwrap();
        times.push(started.elapsed().as_secs_f64() * 1e3);
        sizes.push(bytes);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "incremental checkpoint, {changed} reads (0.1 % of pairs) since the last: median {:.1} ms (min {:.1}, max {:.1}), {:.2} MB appended",
        times[times.len() / 2],
        times[0],
        times[times.len() - 1],
        sizes[sizes.len() / 2] as f64 / 1e6
    );

    let started = Instant::now();
    let loaded = Checkpoint::load_laid_out(&state).unwrap().unwrap();
    let load_s = started.elapsed().as_secs_f64();
    let restored = Detector::restore(DetectorSettings::default(), &loaded.checkpoint.detector);
    let restore_s = started.elapsed().as_secs_f64();
    assert_eq!(restored.baseline_memory().0, detector.baseline_memory().0);
    println!(
        "restore from base and change log: {restore_s:.2} s ({load_s:.2} s reading and folding, {:.2} s building the detector); restored maps {:.1} bytes per pair",
        restore_s - load_s,
        restored.baseline_memory().1 as f64 / restored.baseline_memory().0 as f64
    );
    drop(restored);
    drop(loaded);

    let mut compacting = CheckpointLog::resume(
        &state,
        Some(&Checkpoint::load_laid_out(&state).unwrap().unwrap().layout),
        CompactWhen {
            at_least: 1,
            base_share_percent: 0,
        },
    )
    .unwrap();
    let started = Instant::now();
    compacting.append(&record(&mut detector, 9)).unwrap();
    let append_ms = started.elapsed().as_secs_f64() * 1e3;
    compacting.wait_for_compaction();
    println!(
        "compaction (on its own thread; the append that started it took {append_ms:.1} ms): {:.2} s",
        started.elapsed().as_secs_f64()
    );
    println!("peak RSS {:.0} MiB", peak_rss_mib());
    if let Ok(tansu) = std::env::var("EXPOSURE_STATE_KAFKA") {
        kafka::partition(&tansu, &mut detector, &mut touch);
    }
}

/// The state as one Kafka partition's, on a tansu broker started here.
mod kafka {
    use super::*;
    use exposure::config::kafka::{KafkaSection, KafkaSettings};
    use exposure::kafka::changelog::{self, Changelog};
    use exposure::kafka::detect::{read_partition, send_writes, state_producer, state_reader};
    use exposure::kafka::partition::{PartitionDetector, PartitionState};
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use std::process::{Command, Stdio};
    use std::time::Duration;

    const TOPIC: &str = "bench-state";

    pub fn partition(tansu: &str, detector: &mut Detector, touch: &mut dyn FnMut(&mut Detector)) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("tcp://127.0.0.1:{port}");
        let mut broker = Command::new(tansu)
            .args(["broker", "--storage-engine", "memory://tansu/"])
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu");
        let addr = format!("127.0.0.1:{port}");
        while std::net::TcpStream::connect(&addr).is_err() {
            std::thread::sleep(Duration::from_millis(100));
        }
        let section: KafkaSection = toml::from_str(&format!(
            "brokers = \"{addr}\"\ntopics = [\"raw\"]\ngroup = \"bench\"\npartitions = 1\n"
        ))
        .unwrap();
        let settings =
            KafkaSettings::from_section(&section, exposure::time::Span::from_secs(60)).unwrap();
        let admin: AdminClient<DefaultClientContext> = settings.client_config().create().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let topic =
            NewTopic::new(TOPIC, 1, TopicReplication::Fixed(1)).set("cleanup.policy", "compact");
        for result in runtime
            .block_on(admin.create_topics([&topic], &AdminOptions::new()))
            .unwrap()
        {
            result.unwrap();
        }
        let producer = state_producer(&settings).unwrap();
        let rest = |d| PartitionState::learned(0, 1, 0, d);
        let limit = settings.state_record_bytes;

        let mut changelog = Changelog::fresh(Vec::new());
        let started = Instant::now();
        let write = changelog.write(detector, rest, limit);
        let (records, largest) = (write.records.len() + 1, write.largest_record());
        let writes = [(0, write)];
        let sizes = send_writes(&producer, TOPIC, &writes).unwrap();
        let [(_, write)] = writes;
        changelog.committed(write);
        println!(
            "kafka: whole state written as {records} records ({:.0} MiB, the largest {largest} bytes, limit {limit}): {:.2} s",
            sizes[0].1 as f64 / (1 << 20) as f64,
            started.elapsed().as_secs_f64()
        );

        let mut times = Vec::new();
        let mut sizes = Vec::new();
        let mut counts = Vec::new();
        for _ in 0..5 {
            touch(detector);
            let started = Instant::now();
            let write = changelog.write(detector, rest, limit);
            counts.push(write.records.len() + 1);
            let writes = [(0, write)];
            sizes.push(send_writes(&producer, TOPIC, &writes).unwrap()[0].1);
            times.push(started.elapsed().as_secs_f64() * 1e3);
            let [(_, write)] = writes;
            changelog.committed(write);
        }
        let handover_ms = times[times.len() - 1];
        times.sort_by(f64::total_cmp);
        println!(
            "kafka: checkpoint after 0.1 % of pairs changed, written and acknowledged: median {:.0} ms (min {:.0}, max {:.0}), {:.1} MB in {} records",
            times[times.len() / 2],
            times[0],
            times[times.len() - 1],
            sizes[sizes.len() / 2] as f64 / 1e6,
            counts[counts.len() / 2]
        );

        // A new owner takes the partition: reads its changelog, restores the detector.
        let reader = state_reader(&settings).unwrap();
        let started = Instant::now();
        let (log, bytes) = read_partition(&reader, TOPIC, 0).unwrap();
        let read_s = started.elapsed().as_secs_f64();
        let count = log.len();
        let restored = changelog::restore(0, 1, log).unwrap();
        let fold_s = started.elapsed().as_secs_f64() - read_s;
        let state = restored.state.unwrap();
        let owner = PartitionDetector::restore(&state, DetectorSettings::default());
        let restore_s = started.elapsed().as_secs_f64();
        assert_eq!(
            owner.detector().baseline_memory().0,
            detector.baseline_memory().0
        );
        println!(
            "kafka: partition restore {restore_s:.2} s ({read_s:.2} s reading {count} records, {:.0} MiB, from tansu; {fold_s:.2} s folding; {:.2} s building the detector)",
            bytes as f64 / (1 << 20) as f64,
            restore_s - read_s - fold_s
        );
        println!(
            "kafka: rebalance (the giving owner's last checkpoint, then the taking owner's restore): {:.2} s",
            handover_ms / 1e3 + restore_s
        );
        println!("peak RSS {:.0} MiB", peak_rss_mib());
        let _ = broker.kill();
        let _ = broker.wait();
    }
}
