//! Throughput of `exposure watch` over Kafka, measured whole (a measurement run by `cargo bench
//! --bench kafka`; not criterion, since what is measured is running services and a broker).
//!
//! A tansu broker (the one the tests use) is started on 127.0.0.1, pinned to CPU 1; the
//! synthetic access log of `benches/synth` (`EXPOSURE_KAFKA_EVENTS` reads, default 2 000 000)
//! is produced to a 6-partition raw topic (each Kafka run below gets a fresh broker loaded with
//! it, checked to hold every record, so that no run pays for the topics of the runs before it
//! and a broker fault cannot pass for a figure). Then, in the same run:
//!
//! - **broker**: a plain consumer reads every raw record back (the broker's own limit, and
//!   the producer's rate while loading);
//! - **file, 1 core**: `exposure watch --from-beginning` over the same events as one JSON
//!   lines file, pinned to CPU 0: the file path;
//! - **kafka, 1 instance, 1 core**: `exposure watch` over the topic (ingest + repartition +
//!   detect), pinned to CPU 0, with a fresh group: the Kafka path on one core;
//! - **kafka, 1 instance** and **kafka, 2 instances**, unpinned (sharing both cores with the
//!   broker).
//!
//! Each figure is events/s from the first event taken to the last (process start and group
//! join left out), read from `/metrics`: `events_read_total` for the file path, the sum of
//! `exposure_kafka_partition_events_total` (events through detection) for Kafka; and the CPU
//! time the exposure processes used per event (user + system, from /proc), which is what "per
//! event on one core" compares when the broker, not exposure, sets the pace. Each is run
//! `EXPOSURE_KAFKA_RUNS` times (default 3); the best and the median are printed
//! (`EXPOSURE_KAFKA_ONLY="2 instances"` runs only the Kafka cases whose name holds the text).
//! A run with no progress for a minute is reported with each instance's raw-partition metrics
//! and log tail (logs kept under `target/kafka-bench-stall/`) and repeated on a fresh broker,
//! at most twice: tansu's memory engine cannot serve a partition taken over mid-batch
//! (docs/kafka.md, Limits), which the two-instance runs can meet at their join rebalance.
//!
//! - **latency** (`EXPOSURE_KAFKA_ONLY=latency` runs it alone): one instance follows the topic
//!   live while a producer sends a background load of normal reads stamped with the wall clock
//!   (`EXPOSURE_KAFKA_LOAD_EPS`, default 20 000 events/s, round robin over the 6 raw
//!   partitions) and, every 250 ms, a probe on one of 20 probe tables: two new readers, then
//!   the third that crosses `min_principals`. The latency of a probe is from the producer's
//!   `send` of that third read to its `open` alert in the instance's JSON lines sink (read
//!   every millisecond): ingest, the repartition topic, the progress markers that move event
//!   time, detection and the sink, all through the broker. `EXPOSURE_KAFKA_LATENCY_SECS` sets
//!   how long (default 30).

#[path = "synth/mod.rs"]
mod synth;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn tansu() -> String {
    let home = std::env::var("HOME").unwrap_or_default();
    let local = format!("{home}/.cargo/bin/tansu");
    if Path::new(&local).exists() {
        local
    } else {
        "tansu".to_string()
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(addr: &str, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut body = String::new();
    stream.read_to_string(&mut body).ok()?;
    Some(body)
}

/// The sum of every sample of metric `name` (all labels).
fn metric_sum(addr: &str, name: &str) -> f64 {
    let Some(body) = http_get(addr, "/metrics") else {
        return 0.0;
    };
    body.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter(|l| l[name.len()..].starts_with([' ', '{']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A running `exposure watch`, its log in a file.
struct Watch {
    child: Child,
    metrics: String,
    log: std::path::PathBuf,
}

impl Watch {
    fn start(dir: &Path, name: &str, cpu: Option<&str>, args: &[&str]) -> Watch {
        let state = dir.join(name);
        std::fs::create_dir_all(&state).unwrap();
        let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
        let exe = env!("CARGO_BIN_EXE_exposure");
        let mut command = match cpu {
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.args(["-c", cpu, exe]);
                c
            }
            None => Command::new(exe),
        };
        let child = command
            .args(["watch", "--state-dir", state.to_str().unwrap()])
            .args(["--metrics-addr", "127.0.0.1:0", "--log-level", "info"])
            .args(["--checkpoint-every", "5s"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let log_path = dir.join(format!("{name}.log"));
        let start = Instant::now();
        let metrics = loop {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            if let Some(addr) = text
                .lines()
                .find(|l| l.contains("serving metrics"))
                .and_then(|l| l.rsplit("addr=").next())
            {
                break addr.trim().to_string();
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{name} did not start: {text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Watch {
            child,
            metrics,
            log: log_path,
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU seconds (user + system) process `pid` has used.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime and stime are 14 and 15.
    let rest = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields
        .get(11..13)
        .map(|f| f.iter().filter_map(|v| v.parse::<f64>().ok()).sum())
        .unwrap_or(0.0);
    ticks / 100.0
}

/// CPU nanoseconds per event the `watches` used in all (process start and idle included).
fn cpu_ns_per_event(watches: &[Watch], events: f64) -> f64 {
    let cpu: f64 = watches.iter().map(|w| cpu_seconds(w.child.id())).sum();
    cpu * 1e9 / events
}

/// The largest peak resident memory (VmHWM) among the `watches`, in MiB.
fn peak_rss_mib(watches: &[Watch]) -> f64 {
    watches
        .iter()
        .filter_map(|w| {
            let status = std::fs::read_to_string(format!("/proc/{}/status", w.child.id())).ok()?;
            let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .fold(0.0, f64::max)
        / 1024.0
}

/// Events/s from the first event counted to `target`, summing `metric` over `watches`. A run
/// that makes no progress for a minute is a fault, not a figure: the instances' raw-partition
/// metrics and log tails are printed, the logs kept under `target/kafka-bench-stall/`, and
/// `Err` says so.
fn rate(watches: &[Watch], metric: &str, target: f64) -> Result<f64, String> {
    let mut first: Option<(Instant, f64)> = None;
    let mut progress = (Instant::now(), 0.0);
    loop {
        let now = Instant::now();
        let n: f64 = watches.iter().map(|w| metric_sum(&w.metrics, metric)).sum();
        if first.is_none() && n > 0.0 {
            first = Some((now, n));
        }
        if n >= target {
            let (t0, n0) = first.expect("counted");
            return Ok((n - n0) / now.duration_since(t0).as_secs_f64());
        }
        if n > progress.1 {
            progress = (now, n);
        }
        if now.duration_since(progress.0) > Duration::from_secs(60) {
            let what = format!("{metric}: {n} of {target}, no progress for a minute");
            return Err(stalled(watches, &what));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Prints what a stalled run's instances report and keeps their logs; returns what happened.
fn stalled(watches: &[Watch], what: &str) -> String {
    let keep = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/kafka-bench-stall");
    let _ = std::fs::create_dir_all(&keep);
    for (i, watch) in watches.iter().enumerate() {
        eprintln!("--- instance {i}: raw partitions and repartition partitions");
        if let Some(body) = http_get(&watch.metrics, "/metrics") {
            for line in body.lines().filter(|l| {
                !l.starts_with('#')
                    && (l.starts_with("exposure_kafka_source")
                        || l.starts_with("exposure_kafka_partition_lag"))
            }) {
                eprintln!("{line}");
            }
        }
        let log = std::fs::read_to_string(&watch.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        eprintln!("--- instance {i}: log tail ({})", watch.log.display());
        for line in &lines[lines.len().saturating_sub(30)..] {
            eprintln!("{line}");
        }
        let _ = std::fs::write(keep.join(format!("instance-{i}.log")), log);
    }
    format!("{what}; logs kept in {}", keep.display())
}

/// Prints the runs' figures; returns the median rate and the median CPU cost per event.
fn report(what: &str, runs: Vec<(f64, f64)>) -> (f64, f64) {
    let mut rates: Vec<f64> = runs.iter().map(|r| r.0).collect();
    let mut costs: Vec<f64> = runs.iter().map(|r| r.1).collect();
    rates.sort_by(f64::total_cmp);
    costs.sort_by(f64::total_cmp);
    let best = *rates.last().unwrap();
    let median = rates[rates.len() / 2];
    let cost = costs[costs.len() / 2];
    println!(
        "{what:<28} best {best:>9.0} events/s  median {median:>9.0} events/s  cpu {cost:>6.0} ns/event  ({} runs)",
        rates.len()
    );
    (median, cost)
}

/// A tansu broker pinned to CPU 1, holding the events in the 6-partition topic `raw`.
struct Broker {
    child: Child,
    addr: String,
}

impl Broker {
    /// Starts a broker and produces `lines` (round robin over the partitions); checks that it
    /// holds every one. Each Kafka measurement gets a fresh broker, so that no run pays for
    /// the topics of the runs before it.
    fn loaded(lines: &[&[u8]]) -> (Broker, f64) {
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let addr = format!("127.0.0.1:{port}");
        let child = Command::new("taskset")
            .args([
                "-c",
                "1",
                &tansu(),
                "broker",
                "--storage-engine",
                "memory://tansu/",
            ])
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu (bash scripts/install-test-deps.sh installs it)");
        let broker = Broker { child, addr };
        let start = Instant::now();
        while TcpStream::connect(&broker.addr).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "tansu did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let client = broker.client();
        let admin: AdminClient<DefaultClientContext> = client.create().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let topic = NewTopic::new("raw", 6, TopicReplication::Fixed(1));
        for result in runtime
            .block_on(admin.create_topics([&topic], &AdminOptions::new()))
            .unwrap()
        {
            result.unwrap();
        }
        let producer: ThreadedProducer<DefaultProducerContext> = client
            .clone()
            .set("linger.ms", "20")
            .set("batch.num.messages", "10000")
            // One request in flight: tansu loses records of pipelined produce requests.
            .set("max.in.flight.requests.per.connection", "1")
            .set("acks", "all")
            .create()
            .unwrap();
        let produce_start = Instant::now();
        for (i, line) in lines.iter().enumerate() {
            let mut record = BaseRecord::<(), [u8]>::to("raw")
                .partition((i % 6) as i32)
                .payload(*line);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((_, back)) => {
                        record = back;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            }
        }
        producer.flush(Duration::from_secs(300)).unwrap();
        let produced = lines.len() as f64 / produce_start.elapsed().as_secs_f64();
        // Read back whole (tansu's reported end offsets lag what it serves, so they cannot
        // tell): a broker that lost records gives no figure.
        let (held, _) = broker.read_back("check", lines.len() as u64);
        assert_eq!(
            held,
            lines.len() as u64,
            "the broker acknowledged every record but serves {held} of {}",
            lines.len()
        );
        (broker, produced)
    }

    fn client(&self) -> ClientConfig {
        let mut client = ClientConfig::new();
        client.set("bootstrap.servers", &self.addr);
        client
    }

    /// Reads the topic back with a plain consumer (no processing) until `total` records or
    /// 20 s without one: how many it read, and at what rate (records/s).
    fn read_back(&self, group: &str, total: u64) -> (u64, f64) {
        let consumer: BaseConsumer = self
            .client()
            .set("group.id", group)
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        consumer.subscribe(&["raw"]).unwrap();
        let mut n = 0u64;
        let mut first = None;
        let mut last = Instant::now();
        while n < total && last.elapsed() < Duration::from_secs(20) {
            if let Some(Ok(_)) = consumer.poll(Duration::from_millis(100)) {
                first.get_or_insert_with(Instant::now);
                last = Instant::now();
                n += 1;
            }
        }
        let rate = first.map_or(0.0, |f| n as f64 / f.elapsed().as_secs_f64());
        (n, rate)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // `cargo test --benches` / `cargo bench -- --list`: nothing to list or check.
    }
    let events = synth::env_u64("EXPOSURE_KAFKA_EVENTS", 2_000_000);
    let runs = synth::env_u64("EXPOSURE_KAFKA_RUNS", 3) as usize;
    let dir = tempfile::tempdir().unwrap();

    // The events, as one file and as records of the raw topic.
    let mut file = Vec::new();
    synth::write_jsonl(synth::Shape::new(events), &mut file).unwrap();
    let events_file = dir.path().join("events.jsonl");
    std::fs::write(&events_file, &file).unwrap();
    let lines: Vec<&[u8]> = file
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let total = lines.len() as f64;

    // The broker's own limit: a plain consumer reads everything back.
    let (broker, produced) = Broker::loaded(&lines);
    println!(
        "{} events ({} MB); produced at {produced:.0} records/s",
        lines.len(),
        file.len() >> 20
    );
    let broker_rates = (0..runs)
        .map(|run| {
            let (_, rate) = broker.read_back(&format!("plain-{run}"), total as u64);
            (rate, f64::NAN)
        })
        .collect();
    report("broker: plain consumer", broker_rates);
    drop(broker);

    let config = |group: &str, broker: &Broker| {
        let path = dir.path().join(format!("{group}.toml"));
        std::fs::write(
            &path,
            format!(
                "[input.kafka]\nbrokers = \"{}\"\ntopics = [\"raw\"]\ngroup = \"{group}\"\nformat = \"jsonl\"\npartitions = 6\nreplication_factor = 1\n",
                broker.addr
            ),
        )
        .unwrap();
        path
    };
    let reads = |watches: &[Watch]| -> f64 {
        watches
            .iter()
            .map(|w| metric_sum(&w.metrics, "exposure_reads_total"))
            .sum()
    };

    let mut file_rates = Vec::new();
    let mut read_events = 0.0;
    for run in 0..runs {
        let watch = Watch::start(
            dir.path(),
            &format!("file-{run}"),
            Some("0"),
            &["--from-beginning", events_file.to_str().unwrap()],
        );
        let watch = [watch];
        let r = rate(&watch, "exposure_events_read_total", total).unwrap();
        file_rates.push((r, cpu_ns_per_event(&watch, total)));
        println!(
            "  file, run {run}: peak memory {:.0} MiB",
            peak_rss_mib(&watch)
        );
        read_events = metric_sum(&watch[0].metrics, "exposure_reads_total");
    }
    let (_, file) = report("file, 1 core", file_rates);
    // Only reads go through the repartition topic (other events only move time).

    // `EXPOSURE_KAFKA_ONLY="2 instances"` runs only the Kafka cases whose name holds it.
    let only = std::env::var("EXPOSURE_KAFKA_ONLY").unwrap_or_default();
    let kafka = |what: &str, instances: usize, cpu: Option<&str>| -> (f64, f64) {
        if !what.contains(only.as_str()) {
            return (f64::NAN, f64::NAN);
        }
        let mut rates = Vec::new();
        let mut stalls = 0;
        let mut run = 0;
        while run < runs {
            let group = format!(
                "{}-{instances}-{run}-{stalls}",
                if cpu.is_some() { "pinned" } else { "free" }
            );
            let (broker, _) = Broker::loaded(&lines);
            let path = config(&group, &broker);
            let watches: Vec<Watch> = (0..instances)
                .map(|i| {
                    Watch::start(
                        dir.path(),
                        &format!("{group}-{i}"),
                        cpu,
                        &["--config", path.to_str().unwrap(), "--from-beginning"],
                    )
                })
                .collect();
            let r = match rate(
                &watches,
                "exposure_kafka_partition_events_total",
                read_events,
            ) {
                Ok(r) => r,
                // tansu's memory engine answers a fetch from inside a record batch (where a
                // partition taken over mid-batch resumes) with later batches only: a known
                // broker fault (docs/kafka.md), not a figure. The run is repeated, at most
                // twice in all.
                Err(why) if stalls < 2 => {
                    stalls += 1;
                    println!("  {what}, run {run}: stalled ({why}); repeated with a fresh broker");
                    continue;
                }
                Err(why) => panic!("{what}: stalled again: {why}"),
            };
            rates.push((r, cpu_ns_per_event(&watches, total)));
            println!(
                "  {what}, run {run}: peak memory {:.0} MiB per instance",
                peak_rss_mib(&watches)
            );
            assert_eq!(reads(&watches), read_events, "every read ingested");
            run += 1;
        }
        report(what, rates)
    };
    if "kafka, latency".contains(only.as_str()) {
        latency(dir.path());
    }
    let (_, pinned) = kafka("kafka, 1 instance, 1 core", 1, Some("0"));
    let (one, _) = kafka("kafka, 1 instance", 1, None);
    let (two, _) = kafka("kafka, 2 instances", 2, None);
    println!(
        "kafka path per event on one core: {:.2}x the file path's CPU; 1 -> 2 instances: {:.2}x \
         events/s (the broker's own limit above bounds both)",
        pinned / file,
        two / one
    );
}

/// The live case (see the module doc): probe latencies, produce → `open` alert.
fn latency(dir: &Path) {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    let secs = synth::env_u64("EXPOSURE_KAFKA_LATENCY_SECS", 30);
    let load = synth::env_u64("EXPOSURE_KAFKA_LOAD_EPS", 20_000);
    let (broker, _) = Broker::loaded(&[]);
    let alerts = dir.join("latency-alerts.jsonl");
    let config = dir.join("latency.toml");
    std::fs::write(
        &config,
        format!(
            "[detect]\nlearn = \"2s\"\nspan = \"10m\"\nclose_after = \"1s\"\nmin_principals = 3\n\
             allow = [\"svc-*\"]\n\n[input.kafka]\nbrokers = \"{}\"\ntopics = [\"raw\"]\n\
             group = \"latency\"\nformat = \"jsonl\"\npartitions = 6\nreplication_factor = 1\n\n\
             {}\n[[sinks]]\nkind = \"jsonl\"\npath = \"{}\"\n",
            broker.addr,
            std::env::var("EXPOSURE_KAFKA_LATENCY_CLIENT").unwrap_or_default(),
            alerts.display()
        ),
    )
    .unwrap();
    let watch = Watch::start(
        dir,
        "latency",
        None,
        &["--config", config.to_str().unwrap(), "--from-beginning"],
    );
    let producer: Arc<ThreadedProducer<DefaultProducerContext>> = Arc::new(
        broker
            .client()
            .set("linger.ms", "1")
            .set("max.in.flight.requests.per.connection", "1")
            .set("acks", "all")
            .create()
            .unwrap(),
    );
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let send = {
        let producer = Arc::clone(&producer);
        let sent = Arc::clone(&sent);
        move |partition: i32, principal: &str, table: &str| {
            let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let line = format!(
                r#"{{"ts":"{ts}","principal":"{principal}","table":"{table}","action":"SELECT"}}"#
            );
            let mut record = BaseRecord::<(), str>::to("raw")
                .partition(partition)
                .payload(line.as_str());
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((_, back)) => {
                        record = back;
                        std::thread::sleep(Duration::from_micros(200));
                    }
                }
            }
            sent.fetch_add(1, Ordering::Relaxed);
        }
    };
    let probe_table = |k: u64| format!("probe.t{:02}", k % 20);
    // The probe tables' normal readers, then their learning period passes under the load.
    for k in 0..20 {
        for who in ["base-a", "base-b"] {
            send((k % 6) as i32, who, &probe_table(k));
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let background = {
        let stop = Arc::clone(&stop);
        let send = send.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let due = (start.elapsed().as_secs_f64() * load as f64) as u64;
                while n < due {
                    let who = format!("svc-load-{}", n % 200);
                    send((n % 6) as i32, &who, &format!("load.t{:02}", n % 50));
                    n += 1;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    // Open alerts as they reach the sink: probe table → when the probe's third read was sent.
    let pending: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::default();
    let tail = {
        let (stop, pending, latencies) = (
            Arc::clone(&stop),
            Arc::clone(&pending),
            Arc::clone(&latencies),
        );
        let alerts = alerts.clone();
        std::thread::spawn(move || {
            let mut read = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let text = std::fs::read(&alerts).unwrap_or_default();
                let end = text.iter().rposition(|b| *b == b'\n').map_or(0, |e| e + 1);
                if end > read {
                    let now = Instant::now();
                    for line in text[read..end].split(|b| *b == b'\n') {
                        let Ok(alert) = serde_json::from_slice::<serde_json::Value>(line) else {
                            continue;
                        };
                        let table = alert["table"].as_str().unwrap_or_default();
                        if alert["status"] == "open"
                            && let Some(sent) = pending.lock().unwrap().remove(table)
                        {
                            latencies
                                .lock()
                                .unwrap()
                                .push(now.duration_since(sent).as_secs_f64() * 1e3);
                        }
                    }
                    read = end;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    std::thread::sleep(Duration::from_secs(4));
    let started = Instant::now();
    let mut probes = 0u64;
    while started.elapsed() < Duration::from_secs(secs) {
        let table = probe_table(probes);
        for j in 0..3 {
            let who = format!("probe{probes}_{j}");
            if j == 2 {
                pending
                    .lock()
                    .unwrap()
                    .insert(table.clone(), Instant::now());
            }
            send((probes % 6) as i32, &who, &table);
        }
        probes += 1;
        std::thread::sleep(Duration::from_millis(250));
    }
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    background.join().unwrap();
    tail.join().unwrap();
    let rate = sent.load(Ordering::Relaxed) as f64 / (started.elapsed().as_secs_f64() + 4.0);
    let mut got = latencies.lock().unwrap().clone();
    got.sort_by(f64::total_cmp);
    let at = |q: f64| got[((got.len() - 1) as f64 * q).round() as usize];
    assert!(
        !got.is_empty(),
        "no probe alerted: see {}",
        watch.log.display()
    );
    println!(
        "kafka, latency: {} of {probes} probes alerted; produce -> open alert p50 {:.1} ms, \
         p99 {:.1} ms, max {:.1} ms; load {rate:.0} events/s; peak memory {:.0} MiB",
        got.len(),
        at(0.5),
        at(0.99),
        at(1.0),
        peak_rss_mib(std::slice::from_ref(&watch)),
    );
}
