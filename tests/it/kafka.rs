//! `exposure watch` over Kafka, against a real Kafka-protocol broker (tansu, started here on
//! 127.0.0.1; `scripts/install-test-deps.sh` installs it). One data set as companies have it
//! — a million reads of 300 tables shipped to six raw partitions by principal, exposures and
//! decoys among them, a few broken records — is produced once; then one instance and three
//! instances each give exactly the alerts `exposure replay` gives over the same events. The
//! fault tests — three instances with one killed with SIGKILL mid-stream and restarted later,
//! one stopped cleanly, a fourth joining half-way; an instance killed before its first
//! checkpoint — run on 300 000 reads on tansu's SQLite engine, which serves a fetch from inside
//! a record batch as Kafka does (its memory engine does not: see [`Storage`]), and check
//! besides the alerts that every read was taken exactly once.

use crate::TestEnv;
use crate::util::{Lcg, eventually, repo};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A tansu broker on a free port of 127.0.0.1, stopped on drop.
pub struct Broker {
    child: Child,
    pub addr: String,
    /// The SQLite store's directory, when it has one.
    /// The SQLite engine's directory (`None`: the in-memory engine).
    dir: Option<tempfile::TempDir>,
}

/// Where a test broker keeps its records.
#[derive(Clone, Copy, PartialEq)]
pub enum Storage {
    /// tansu's memory engine: fast, but a fetch from an offset inside a record batch (where
    /// a consumer resumes from an offset committed mid-batch) returns later batches only,
    /// skipping the rest of that batch — so tests that move partitions mid-stream use
    /// [`Storage::Sqlite`].
    Memory,
    /// tansu's SQLite engine (in a temporary directory): serves fetches as Kafka does, about
    /// eight times slower.
    Sqlite,
}

fn tansu() -> PathBuf {
    if let Ok(path) = std::env::var("EXPOSURE_TANSU") {
        return PathBuf::from(path);
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let candidates = std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| Path::new(d).join("tansu"))
        .chain([Path::new(&home).join(".cargo/bin/tansu")])
        .collect::<Vec<_>>();
    candidates.into_iter().find(|p| p.exists()).expect(
        "the tansu broker is not installed: `bash scripts/install-test-deps.sh` (.ci/run does)",
    )
}

impl Broker {
    pub fn start() -> Broker {
        Broker::start_with(Storage::Memory)
    }

    pub fn start_with(storage: Storage) -> Broker {
        let dir = (storage == Storage::Sqlite).then(|| tempfile::tempdir().unwrap());
        let engine = match storage {
            Storage::Memory => "memory://tansu/",
            Storage::Sqlite => "sqlite://tansu.db",
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("tcp://127.0.0.1:{port}");
        let mut command = Command::new(tansu());
        if let Some(dir) = &dir {
            command.current_dir(dir.path());
        }
        let child = command
            .args([
                "broker",
                "--storage-engine",
                engine,
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu");
        let addr = format!("127.0.0.1:{port}");
        eventually(Duration::from_secs(20), || {
            std::net::TcpStream::connect(&addr)
                .map(drop)
                .map_err(|e| e.to_string())
        });
        Broker { child, addr, dir }
    }

    fn client(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.addr);
        config
    }

    pub fn create_topic(&self, name: &str, partitions: i32) {
        let admin: AdminClient<DefaultClientContext> = self.client().create().unwrap();
        let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let results = runtime
            .block_on(admin.create_topics([&topic], &AdminOptions::new()))
            .unwrap();
        for result in results {
            result.unwrap();
        }
    }

    /// Produces `(partition, payload)` records, in order per partition, and waits for them.
    pub fn produce(&self, topic: &str, records: &[(i32, Vec<u8>)]) {
        let producer: ThreadedProducer<DefaultProducerContext> = self
            .client()
            .set("linger.ms", "20")
            .set("batch.num.messages", "10000")
            .set("enable.idempotence", "true")
            .create()
            .unwrap();
        for (partition, payload) in records {
            let mut record = BaseRecord::<(), [u8]>::to(topic)
                .partition(*partition)
                .payload(payload);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((_, back)) => {
                        // The queue is full: serve delivery reports to make room.
                        record = back;
                        producer.poll(Duration::from_millis(5));
                    }
                }
            }
        }
        producer.flush(Duration::from_secs(120)).unwrap();
    }

    /// Produces `(partition, payload)` records keyed by their partition's number, and waits.
    pub fn produce_keyed(&self, topic: &str, records: &[(i32, Vec<u8>)]) {
        let producer: ThreadedProducer<DefaultProducerContext> = self.client().create().unwrap();
        for (partition, payload) in records {
            let key = partition.to_string();
            let record = BaseRecord::to(topic)
                .partition(*partition)
                .key(&key)
                .payload(payload);
            producer.send(record).map_err(|(e, _)| e).unwrap();
        }
        producer.flush(Duration::from_secs(60)).unwrap();
    }

    /// Every record of `topic`: (key, payload, headers).
    pub fn read_all(&self, topic: &str) -> Vec<(Option<String>, String, BTreeMap<String, String>)> {
        self.read(topic)
            .into_iter()
            .map(|(_, _, key, payload, headers)| {
                let payload = String::from_utf8_lossy(&payload.unwrap_or_default()).into_owned();
                (key, payload, headers)
            })
            .collect()
    }

    /// Every record of `topic` as (partition, offset, key, value; `None`: a tombstone).
    pub fn read_log(&self, topic: &str) -> Vec<LogRecord> {
        self.read(topic)
            .into_iter()
            .map(|(partition, offset, key, value, _)| {
                (partition, offset, key.unwrap_or_default(), value)
            })
            .collect()
    }

    #[allow(clippy::type_complexity)]
    fn read(
        &self,
        topic: &str,
    ) -> Vec<(
        i32,
        i64,
        Option<String>,
        Option<Vec<u8>>,
        BTreeMap<String, String>,
    )> {
        let consumer: BaseConsumer = self
            .client()
            .set("group.id", format!("reader-{}", std::process::id()))
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .create()
            .unwrap();
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .unwrap();
        let partitions = metadata.topics()[0].partitions().len() as i32;
        let mut ends = BTreeMap::new();
        let mut list = rdkafka::TopicPartitionList::new();
        for p in 0..partitions {
            let (low, high) = consumer
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .unwrap();
            if high > low {
                ends.insert(p, high);
                list.add_partition_offset(topic, p, rdkafka::Offset::Offset(low))
                    .unwrap();
            }
        }
        consumer.assign(&list).unwrap();
        let mut records = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        // To the ends, then on while records still come (a broker's high watermark may lag
        // what it serves).
        let mut quiet_since = Instant::now();
        while (!ends.is_empty() || quiet_since.elapsed() < Duration::from_secs(1))
            && Instant::now() < deadline
        {
            let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) else {
                continue;
            };
            quiet_since = Instant::now();
            let headers = message
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| {
                            let value = h.value.map(|v| String::from_utf8_lossy(v).into_owned());
                            (h.key.to_string(), value.unwrap_or_default())
                        })
                        .collect()
                })
                .unwrap_or_default();
            records.push((
                message.partition(),
                message.offset(),
                message
                    .key()
                    .map(|k| String::from_utf8_lossy(k).into_owned()),
                message.payload().map(<[u8]>::to_vec),
                headers,
            ));
            if ends.get(&message.partition()) == Some(&(message.offset() + 1)) {
                ends.remove(&message.partition());
            }
        }
        records
    }
}

/// A record of a topic: (partition, offset, key, value; `None`: a tombstone).
pub type LogRecord = (i32, i64, String, Option<Vec<u8>>);

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const T0: i64 = 1_772_409_600; // 2026-03-02T00:00:00Z
const DAY: i64 = 86_400;
pub const RAW_PARTITIONS: i32 = 6;
/// The repartition topic's partitions (`partitions` in [`group_config`]).
const REPARTITIONS: usize = 6;
const TABLES: u64 = 300;

fn table(i: u64) -> String {
    format!("db{}.t{i:03}", i % 5)
}

fn baseline(table: u64, k: u64) -> String {
    format!("emp{:04}", (table * 7 + k * 13) % 2000)
}

/// One read as the canonical JSON lines format writes it.
fn line(ts_ms: i64, principal: &str, table: &str) -> String {
    let ts = chrono::DateTime::from_timestamp_millis(ts_ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    format!(r#"{{"ts":"{ts}","principal":"{principal}","table":"{table}","action":"SELECT"}}"#)
}

/// A permission change as the canonical JSON lines format writes it: `action` on schema
/// `object` to `grantee`, by an agent.
fn change_line(ts_ms: i64, action: &str, object: &str, grantee: &str) -> String {
    let ts = chrono::DateTime::from_timestamp_millis(ts_ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    format!(
        r#"{{"ts":"{ts}","principal":"agent","table":"{object}","action":"{action}","grantee":"{grantee}","privilege":"SELECT"}}"#
    )
}

/// Permission changes in the data set (each reaches every repartition partition).
pub const CHANGES: usize = 2;

/// The data set: `(time ms, raw partition, record)`, sorted by time. Shipped to a raw
/// partition by principal, as a fleet of per-host shippers would. Schema `db1` (a fifth of the
/// tables, in every repartition partition) is granted to PUBLIC before two of the exposures
/// and revoked after them: the early-warning alert lists the schema's tables read by then,
/// and those windows name the grant as their cause.
pub fn dataset(background: u64) -> Vec<(i64, i32, String)> {
    let mut rng = Lcg(42);
    let mut events: Vec<(i64, String, String)> = Vec::new();
    let span_ms = 3 * DAY * 1000;
    for j in 0..background {
        let t = rng.below(TABLES);
        let who = baseline(t, rng.below(8));
        let ts = T0 * 1000 + (j as i64 * span_ms) / background as i64;
        events.push((ts, who, table(t)));
    }
    // Exposures, after a day of learning: many newcomers within minutes.
    for (n, (t, day_ms, newcomers)) in [
        (11u64, DAY * 1000 + 3_600_000, 40u64),
        (57, DAY * 1000 + 7_200_000, 12),
        (123, DAY * 1500, 25),
        (200, 2 * DAY * 1000 + 600_000, 8),
        (201, 2 * DAY * 1000 + 660_000, 8),
        (299, 2 * DAY * 1200, 16),
    ]
    .into_iter()
    .enumerate()
    {
        for k in 0..newcomers {
            let who = format!("outsider{n}_{k:02}");
            for r in 0..=(k % 3) {
                let ts = T0 * 1000 + day_ms + (k as i64) * 20_000 + r as i64 * 7_000;
                events.push((ts, who.clone(), table(t)));
            }
        }
    }
    // Decoys: two newcomers only; allowed service accounts; newcomers an hour apart.
    for (t, start) in [(5u64, DAY * 1100), (77, DAY * 1300), (150, DAY * 2100)] {
        for k in 0..2 {
            events.push((
                T0 * 1000 + start + k * 60_000,
                format!("visitor{t}_{k}"),
                table(t),
            ));
        }
        for k in 0..5 {
            events.push((
                T0 * 1000 + start + k * 30_000,
                format!("svc-etl-{k}"),
                table(t + 1),
            ));
        }
        for k in 0..4 {
            events.push((
                T0 * 1000 + start + k * 3_600_000,
                format!("drifter{t}_{k}"),
                table(t + 2),
            ));
        }
    }
    events.sort();
    // Every shipper's last line comes a day later: every window closes within the data.
    let end = events.last().unwrap().0 + DAY * 1000;
    let mut shipped: Vec<(i64, i32, String)> = events
        .into_iter()
        .map(|(ts, who, t)| {
            let partition =
                (who.bytes().map(u64::from).sum::<u64>() % RAW_PARTITIONS as u64) as i32;
            (ts, partition, line(ts, &who, &t))
        })
        .collect();
    for partition in 0..RAW_PARTITIONS {
        shipped.push((
            end + i64::from(partition),
            partition,
            line(end + i64::from(partition), "emp0000", &table(0)),
        ));
    }
    for (ts, action) in [
        (T0 * 1000 + DAY * 1000 + 1_800_000, "GRANT"),
        (T0 * 1000 + 2 * DAY * 1000 + 7_200_000, "REVOKE"),
    ] {
        shipped.push((ts, 2, change_line(ts, action, "db1", "PUBLIC")));
    }
    shipped.sort_by_key(|(ts, p, _)| (*ts, *p));
    shipped
}

/// Detection settings shared by replay and watch. The data is history, produced in bursts
/// with pauses between them: a `lateness` longer than any pause keeps the sources from being
/// taken as idle, whose time would otherwise go on with the wall clock (docs/kafka.md).
pub const DETECT: &str = r#"[detect]
learn = "1d"
span = "10m"
close_after = "15m"
min_principals = 3
lateness = "10m"
allow = ["svc-*"]
"#;

/// One `exposure watch` over Kafka, its log in `STATE.log`.
pub struct Instance {
    pub name: String,
    child: Child,
    pub log: PathBuf,
    pub alerts: PathBuf,
    metrics_addr: String,
}

impl Instance {
    /// Starts instance `name` of group `group` in `env` (its state dir `name`, its alerts in
    /// `name/alerts.jsonl`); `extra_config` is appended to its configuration.
    pub fn start(
        env: &TestEnv,
        broker: &Broker,
        group: &str,
        name: &str,
        extra_config: &str,
    ) -> Instance {
        Instance::start_with(env, broker, group, name, "", extra_config)
    }

    /// With `kafka_config` added to its `[input.kafka]` section.
    pub fn start_with(
        env: &TestEnv,
        broker: &Broker,
        group: &str,
        name: &str,
        kafka_config: &str,
        extra_config: &str,
    ) -> Instance {
        Instance::launch(
            env,
            broker,
            group,
            name,
            kafka_config,
            extra_config,
            "500ms",
        )
    }

    /// Writing its partitions' states only every `checkpoint_every`.
    pub fn start_checkpointing_every(
        env: &TestEnv,
        broker: &Broker,
        group: &str,
        name: &str,
        checkpoint_every: &str,
    ) -> Instance {
        Instance::launch(env, broker, group, name, "", "", checkpoint_every)
    }

    /// Reading the group's topics in `format`, with `extra_config` after them (the detection
    /// settings are the defaults unless it has a `[detect]`).
    pub fn start_plain(
        env: &TestEnv,
        broker: &Broker,
        group: &str,
        name: &str,
        format: &str,
        extra_config: &str,
    ) -> Instance {
        let head = kafka_section(broker, group, format);
        Instance::spawn(env, head, name, "", extra_config, "500ms")
    }

    fn launch(
        env: &TestEnv,
        broker: &Broker,
        group: &str,
        name: &str,
        kafka_config: &str,
        extra_config: &str,
        checkpoint_every: &str,
    ) -> Instance {
        let head = group_config(broker, group);
        Instance::spawn(
            env,
            head,
            name,
            kafka_config,
            extra_config,
            checkpoint_every,
        )
    }

    fn spawn(
        env: &TestEnv,
        head: String,
        name: &str,
        kafka_config: &str,
        extra_config: &str,
        checkpoint_every: &str,
    ) -> Instance {
        let alerts = env.path(&format!("{name}/alerts.jsonl"));
        std::fs::create_dir_all(env.path(name)).unwrap();
        std::fs::set_permissions(
            env.path(name),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        let config = format!(
            "{head}{kafka_config}\n[input.kafka.client]\n\"session.timeout.ms\" = \"6000\"\n\n[[sinks]]\nkind = \"jsonl\"\npath = \"{}\"\n{extra_config}",
            alerts.display()
        );
        let config_path = env.write(&format!("{name}.toml"), config);
        let log = env.path(&format!("{name}.log"));
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        // A restarted instance appends to its log: its address is after what is there.
        let logged_before = log_file.metadata().unwrap().len() as usize;
        let child = env
            .command(&[
                "watch",
                "--config",
                config_path.to_str().unwrap(),
                "--state-dir",
                env.path(name).to_str().unwrap(),
                "--from-beginning",
                "--checkpoint-every",
                checkpoint_every,
                "--metrics-addr",
                "127.0.0.1:0",
                "--log-level",
                "info",
            ])
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .unwrap();
        let mut instance = Instance {
            name: name.to_string(),
            child,
            log,
            alerts,
            metrics_addr: String::new(),
        };
        instance.metrics_addr = eventually(Duration::from_secs(30), || {
            if let Ok(Some(status)) = instance.child.try_wait() {
                panic!("{name} exited: {status}\n{}", instance.log_text());
            }
            let text = instance.log_text();
            text.get(logged_before..)
                .unwrap_or_default()
                .lines()
                .find(|l| l.contains("serving metrics"))
                .and_then(|l| l.rsplit("addr=").next())
                .map(|a| a.trim().to_string())
                .ok_or_else(|| "not serving metrics yet".to_string())
        });
        instance
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn metric(&self, name: &str) -> Option<f64> {
        let (_, body) = crate::util::http_get(&self.metrics_addr, "/metrics")?;
        let prefix = format!("exposure_{name} ");
        body.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.trim().parse().ok())
    }

    /// Whether it has read everything on its raw topic partitions and its sink has nothing
    /// pending. (The repartition topic's lag is not: it goes on gaining the stage's progress
    /// records.)
    pub fn caught_up(&self) -> bool {
        let text = self.metrics_text();
        let lags = text
            .lines()
            .filter(|l| l.starts_with("exposure_kafka_source_lag{"));
        let mut lags = lags.map(|l| l.rsplit(' ').next().unwrap_or_default());
        !text.is_empty()
            && lags.all(|v| v == "0")
            && self.metric("sink_pending{sink=\"jsonl\"}") == Some(0.0)
    }

    pub fn metrics_text(&self) -> String {
        crate::util::http_get(&self.metrics_addr, "/metrics")
            .map(|(_, b)| b)
            .unwrap_or_default()
    }

    /// SIGTERM, and waits for it to exit 0.
    pub fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "{} exited {status}:\n{}",
            self.name,
            self.log_text()
        );
    }

    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The alerts delivered to the sinks of `instances` (whole lines), in all.
pub fn delivered(files: &[PathBuf]) -> Vec<String> {
    let mut lines = Vec::new();
    for file in files {
        let Ok(file) = std::fs::File::open(file) else {
            continue;
        };
        for line in BufReader::new(file).lines().map_while(Result::ok) {
            // A line cut by SIGKILL is not an alert delivered (it is sent again).
            if serde_json::from_str::<serde_json::Value>(&line).is_ok() {
                lines.push(line);
            }
        }
    }
    lines
}

/// Waits until every expected alert was delivered and every instance still running has
/// caught up — nothing left to read on its raw and repartition topics, nothing pending for its
/// sink, so anything wrong it had to say is said too (or until `timeout`) — and returns what
/// was delivered.
fn wait_for_all(
    files: &[PathBuf],
    expected: &BTreeSet<String>,
    running: &[&Instance],
    timeout: Duration,
) -> Vec<String> {
    crate::util::poll_until(timeout, || {
        let got: BTreeSet<String> = delivered(files).into_iter().collect();
        (expected.is_subset(&got) && running.iter().all(|i| i.caught_up())).then_some(())
    });
    delivered(files)
}

/// Nothing lost (every expected alert delivered), nothing wrong (every delivered alert
/// expected, byte for byte), repeats only of the same alert.
fn assert_same_alerts(what: &str, delivered: &[String], expected: &BTreeSet<String>) {
    if let Err(why) = same_alerts(what, delivered, expected) {
        panic!("{why}");
    }
}

fn same_alerts(
    what: &str,
    delivered: &[String],
    expected: &BTreeSet<String>,
) -> Result<(), String> {
    let got: BTreeSet<String> = delivered.iter().cloned().collect();
    let missing: Vec<&String> = expected.difference(&got).collect();
    let wrong: Vec<&String> = got.difference(expected).collect();
    let short = |alerts: &[&String]| -> Vec<String> {
        alerts
            .iter()
            .take(5)
            .map(|a| a.chars().take(300).collect())
            .collect()
    };
    if missing.is_empty() && wrong.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{what}: {} of {} alerts missing, {} not expected\nmissing: {:#?}\nnot expected: {:#?}",
        missing.len(),
        expected.len(),
        wrong.len(),
        short(&missing),
        short(&wrong),
    ))
}

struct Fixture {
    env: TestEnv,
    broker: Broker,
    expected: BTreeSet<String>,
    /// Records produced in phases: the data set cut in three, in time order.
    phases: Vec<Vec<(i32, Vec<u8>)>>,
    /// Reads in the data set (every good record is one).
    reads: usize,
}

const BAD_RECORDS: usize = 5;

/// The records of `data` as one JSON-lines file.
fn jsonl(data: &[(i64, i32, String)]) -> String {
    let mut text = String::new();
    for (_, _, record) in data {
        text.push_str(record);
        text.push('\n');
    }
    text
}

/// What `exposure replay` says of the events of `data`: the alerts every Kafka run must give.
fn replayed(env: &TestEnv, data: &[(i64, i32, String)]) -> BTreeSet<String> {
    env.write("replay.toml", DETECT);
    env.write("events.jsonl", jsonl(data));
    let replay = env.run(&[
        "replay",
        "--config",
        "replay.toml",
        "--no-progress",
        "events.jsonl",
    ]);
    assert_eq!(replay.code, 0, "{}", replay.stderr);
    let expected: BTreeSet<String> = replay.stdout.lines().map(str::to_string).collect();
    let opens = expected
        .iter()
        .filter(|a| a.contains("\"status\":\"open\""))
        .count();
    assert_eq!(opens, 6, "the data set holds six exposures: {expected:#?}");
    let grant = expected
        .iter()
        .find(|a| a.contains("\"status\":\"grant\""))
        .expect("the grant on db1 raises the early warning");
    let grant: serde_json::Value = serde_json::from_str(grant).unwrap();
    assert!(
        grant["tables"].as_array().unwrap().len() >= 50,
        "the grant's alert lists db1's tables, from every partition: {grant}"
    );
    expected
}

fn fixture() -> Fixture {
    fixture_on(Storage::Memory, 1_000_000)
}

fn fixture_on(storage: Storage, reads: u64) -> Fixture {
    let env = TestEnv::new();
    let broker = Broker::start_with(storage);
    broker.create_topic("access-logs", RAW_PARTITIONS);
    let data = dataset(reads);
    let expected = replayed(&env, &data);
    let reads = data.len();
    // Broken records among the first third, in one raw partition.
    let mut records: Vec<(i32, Vec<u8>)> = data
        .into_iter()
        .map(|(_, p, r)| (p, r.into_bytes()))
        .collect();
    for k in 0..BAD_RECORDS {
        records.insert(
            1000 + k * 5000,
            (0, format!("{{\"ts\": not json {k}").into_bytes()),
        );
    }
    let third = records.len() / 3;
    let phases = vec![
        records[..third].to_vec(),
        records[third..2 * third].to_vec(),
        records[2 * third..].to_vec(),
    ];
    Fixture {
        env,
        broker,
        expected,
        phases,
        reads,
    }
}

/// The Kafka tests share the machine's two cores with each other only one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What went wrong, from the instances' logs: their warnings and errors.
fn warnings(instances: &[&Path]) -> String {
    let mut out = String::new();
    for log in instances {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        for line in text
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .take(40)
        {
            out.push_str(&format!("{}: {line}\n", log.display()));
        }
    }
    out
}

fn check(
    what: &str,
    files: &[PathBuf],
    logs: &[&Path],
    expected: &BTreeSet<String>,
    running: &[&Instance],
) {
    let started = std::time::Instant::now();
    let got = wait_for_all(files, expected, running, Duration::from_secs(300));
    let Err(why) = same_alerts(what, &got, expected) else {
        return;
    };
    let waited = started.elapsed();
    eprintln!("{}", warnings(logs));
    // CI shows the end of a failure's output: there go where each instance stands and its
    // last words.
    let mut diagnosis = String::new();
    for instance in running {
        let metrics = instance.metrics_text();
        let figures: Vec<&str> = (metrics.lines())
            .filter(|l| {
                l.starts_with("exposure_kafka_source_")
                    || l.starts_with("exposure_kafka_partition_")
                    || l.starts_with("exposure_sink_pending")
                    || l.starts_with("exposure_events_read_total")
            })
            .collect();
        diagnosis.push_str(&format!(
            "\n{} stands at:\n{}",
            instance.name,
            figures.join("\n")
        ));
    }
    for log in logs {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = &lines[lines.len().saturating_sub(12)..];
        diagnosis.push_str(&format!("\n{} ends:\n{}", log.display(), tail.join("\n")));
    }
    // The verdict last: CI keeps the end of a failure's output.
    panic!("{diagnosis}\n\nafter waiting {waited:.1?}: {why}");
}

#[test]
fn one_instance_gives_the_alerts_of_replay_to_every_sink_and_counts_bad_records() {
    let _serial = serial();
    let f = fixture();
    for phase in &f.phases {
        f.broker.produce("access-logs", phase);
    }
    f.broker.create_topic("exposure-alerts", 3);
    f.broker.create_topic("bad-records", 1);
    let one = Instance::start(
        &f.env,
        &f.broker,
        "one",
        "one",
        "\n[[sinks]]\nkind = \"kafka\"\nbrokers = \"BROKER\"\ntopic = \"exposure-alerts\"\n"
            .replace("BROKER", &f.broker.addr)
            .as_str(),
    );
    check(
        "one instance",
        std::slice::from_ref(&one.alerts),
        &[&one.log],
        &f.expected,
        &[&one],
    );
    assert_eq!(one.metric("malformed_total"), Some(BAD_RECORDS as f64));
    assert_every_read_taken_once(&[&one], f.reads);
    let text = one.metrics_text();
    for partition in 0..6 {
        for figure in [
            "lag",
            "events_total",
            "state_bytes",
            "checkpoint_age_seconds",
        ] {
            let name = format!("exposure_kafka_partition_{figure}{{partition=\"{partition}\"}}");
            assert!(text.contains(&name), "{name} in {text}");
        }
    }
    // The Grafana dashboard's and the alert rules' Kafka figures are exported over Kafka.
    let exported: std::collections::BTreeSet<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    for name in crate::operate::dashboard_and_rule_metrics() {
        if name.starts_with("exposure_kafka_") {
            assert!(
                exported.contains(name.as_str()),
                "{name} not exported over Kafka:\n{text}"
            );
        }
    }
    let to_kafka = eventually(Duration::from_secs(30), || {
        let records = f.broker.read_all("exposure-alerts");
        (records.len() >= f.expected.len())
            .then_some(records)
            .ok_or_else(|| "the Kafka sink has not delivered every alert yet".to_string())
    });
    one.stop();
    let from_kafka: Vec<String> = to_kafka.iter().map(|(_, v, _)| v.clone()).collect();
    assert_same_alerts("the Kafka sink", &from_kafka, &f.expected);
    for (key, value, _) in &to_kafka {
        let alert: serde_json::Value = serde_json::from_str(value).unwrap();
        assert_eq!(
            key.as_deref(),
            alert["id"].as_str(),
            "keyed by the alert id"
        );
    }
}

#[test]
fn three_instances_share_the_partitions_and_give_the_alerts_of_replay() {
    let _serial = serial();
    let f = fixture();
    for phase in &f.phases {
        f.broker.produce("access-logs", phase);
    }
    let three: Vec<Instance> = (0..3)
        .map(|i| Instance::start(&f.env, &f.broker, "three", &format!("three-{i}"), ""))
        .collect();
    let files: Vec<PathBuf> = three.iter().map(|i| i.alerts.clone()).collect();
    let logs: Vec<&Path> = three.iter().map(|i| i.log.as_path()).collect();
    let running: Vec<&Instance> = three.iter().collect();
    check("three instances", &files, &logs, &f.expected, &running);
    let sharing = three
        .iter()
        .filter(|i| i.metrics_text().contains("exposure_kafka_partition_lag{"))
        .count();
    assert!(
        sharing >= 2,
        "the partitions are shared: {sharing} of 3 instances own some"
    );
    for instance in three {
        instance.stop();
    }
}

/// Events the live instances ingested, in all.
fn ingested(instances: &[&Instance]) -> f64 {
    instances
        .iter()
        .filter_map(|i| i.metric("events_read_total"))
        .sum()
}

/// Checks that the partitions' owners among `instances` took every read exactly once. A
/// partition's count of events taken moves with its state, repeats left out, so over its last
/// owners the counts add up to the data set's reads unless a record was skipped — which the
/// alerts alone might not show. (A permission change reaches every partition: it counts once
/// in each.)
fn assert_every_read_taken_once(instances: &[&Instance], records: usize) {
    let reads = records + CHANGES * (REPARTITIONS - 1);
    eventually(Duration::from_secs(60), || {
        let mut taken = 0.0;
        let mut lines = String::new();
        for instance in instances {
            for line in instance
                .metrics_text()
                .lines()
                .filter(|l| l.starts_with("exposure_kafka_partition_events_total{"))
            {
                taken += line
                    .rsplit(' ')
                    .next()
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(0.0);
                lines.push_str(&format!("{}: {line}\n", instance.name));
            }
        }
        (taken == reads as f64).then_some(()).ok_or_else(|| {
            format!("the partitions' owners took {taken} events of {reads}:\n{lines}")
        })
    });
}

#[test]
fn killed_stopped_and_joining_instances_lose_nothing_and_alert_nothing_wrong() {
    let _serial = serial();
    // Partitions move mid-batch here: a broker that serves fetches as Kafka does (tansu's
    // SQLite engine, slower: a third of the data set).
    let f = fixture_on(Storage::Sqlite, 300_000);
    let (env, broker) = (&f.env, &f.broker);
    let group = "faults";
    broker.produce("access-logs", &f.phases[0]);
    let a = Instance::start(env, broker, group, "a", "");
    let b = Instance::start(env, broker, group, "b", "");
    let c = Instance::start(env, broker, group, "c", "");
    let first = f.phases[0].len() as f64;
    eventually(Duration::from_secs(120), || {
        let n = ingested(&[&a, &b, &c]);
        (n >= first * 0.5)
            .then_some(())
            .ok_or_else(|| format!("{n} of {first} ingested"))
    });
    // Mid-stream: one instance dies without a word.
    let (a_alerts, a_log) = (a.alerts.clone(), a.log.clone());
    a.kill9();
    let before = ingested(&[&b, &c]);
    broker.produce("access-logs", &f.phases[1]);
    // Another is stopped cleanly while the others take the new records; a fourth joins.
    eventually(Duration::from_secs(120), || {
        let n = ingested(&[&b, &c]);
        (n > before)
            .then_some(())
            .ok_or_else(|| format!("{n} ingested, {before} before"))
    });
    let (b_alerts, b_log) = (b.alerts.clone(), b.log.clone());
    b.stop();
    let d = Instance::start(env, broker, group, "d", "");
    broker.produce("access-logs", &f.phases[2]);
    // The killed one comes back (its state dir and outbox as it left them) once the fourth
    // has partitions and works.
    eventually(Duration::from_secs(120), || {
        let n = ingested(&[&d]);
        (n > 0.0)
            .then_some(())
            .ok_or_else(|| format!("{n} ingested by d"))
    });
    let a = Instance::start(env, broker, group, "a", "");
    let files = [a_alerts, b_alerts, c.alerts.clone(), d.alerts.clone()];
    let logs = [
        a_log.as_path(),
        b_log.as_path(),
        c.log.as_path(),
        d.log.as_path(),
    ];
    check("faults", &files, &logs, &f.expected, &[&a, &c, &d]);
    assert_every_read_taken_once(&[&a, &c, &d], f.reads);
    for instance in [a, c, d] {
        instance.stop();
    }
}

#[test]
fn an_instance_killed_before_its_first_checkpoint_loses_nothing() {
    let _serial = serial();
    let f = fixture_on(Storage::Sqlite, 300_000);
    let (env, broker) = (&f.env, &f.broker);
    for phase in &f.phases {
        broker.produce("access-logs", phase);
    }
    // Its ingest commits raw offsets every second; its partitions' states are never written.
    let a = Instance::start_checkpointing_every(env, broker, "early", "a", "1h");
    let total: f64 = f.phases.iter().map(|p| p.len() as f64).sum();
    eventually(Duration::from_secs(120), || {
        let n = ingested(&[&a]);
        (n >= total * 0.4)
            .then_some(())
            .ok_or_else(|| format!("{n} of {total} ingested"))
    });
    let (a_alerts, a_log) = (a.alerts.clone(), a.log.clone());
    a.kill9();
    // The broker expires the killed member once its session (6 s) runs out. A member joining
    // before that was seen (CI, tansu on SQLite) to get an empty assignment and no rebalance
    // after the expiry; this test is about what the next owner finds, so it comes after.
    std::thread::sleep(Duration::from_secs(9));
    // The next owner finds no state: its detectors start afresh from the repartition topic's
    // beginning, and its ingest from the raw offsets the killed one committed.
    let b = Instance::start(env, broker, "early", "b", "");
    check(
        "killed before its first checkpoint",
        &[a_alerts, b.alerts.clone()],
        &[a_log.as_path(), b.log.as_path()],
        &f.expected,
        &[&b],
    );
    // A loaded machine can make the group rebalance before the kill (a session timing out):
    // then `a` wrote the states of the partitions it gave up, as it must, and `b` restores
    // them. Otherwise nothing was ever written and `b` starts afresh.
    let a_log_text = std::fs::read_to_string(&a_log).unwrap_or_default();
    let expected_start = if a_log_text.contains("detect: partitions revoked") {
        "restored the partition's state"
    } else {
        "no state: the partition starts afresh"
    };
    assert!(
        b.log_text().contains(expected_start),
        "{expected_start}:\n{}",
        b.log_text()
    );
    assert_every_read_taken_once(&[&b], f.reads);
    b.stop();
}

/// The Kafka configuration of group `group` on `broker`, with the data set's detection.
fn group_config(broker: &Broker, group: &str) -> String {
    format!("{DETECT}\n{}", kafka_section(broker, group, "jsonl"))
}

/// Partition states are cut into records of at most this many bytes on the in-memory broker
/// (the default is 1 000 000): states of hundreds of records, tables over several buckets.
const STATE_RECORD_BYTES: usize = 4096;
/// And on tansu's SQLite engine, which stores a row per record and, under CI's load, stalled
/// fetches for minutes when every 500 ms checkpoint wrote hundreds of 4 KiB records.
const STATE_RECORD_BYTES_SQLITE: usize = 65536;

/// `[input.kafka]` of group `group` reading topic `access-logs` in `format`.
fn kafka_section(broker: &Broker, group: &str, format: &str) -> String {
    format!(
        "[input.kafka]\nbrokers = \"{}\"\ntopics = [\"access-logs\"]\ngroup = \"{group}\"\nformat = \"{format}\"\npartitions = 6\nreplication_factor = 1\nstate_record_bytes = {}\n",
        broker.addr,
        if broker.dir.is_some() {
            STATE_RECORD_BYTES_SQLITE
        } else {
            STATE_RECORD_BYTES
        }
    )
}

/// Each partition of group `group`'s state topic: its records, and the state they restore
/// to (read as an instance reads them).
fn group_states(
    broker: &Broker,
    group: &str,
) -> Vec<(Vec<LogRecord>, exposure::kafka::changelog::Restored)> {
    let log = broker.read_log(&format!("{group}-state"));
    (0..REPARTITIONS as i32)
        .map(|partition| {
            let records: Vec<LogRecord> =
                log.iter().filter(|r| r.0 == partition).cloned().collect();
            let restored = exposure::kafka::changelog::restore(
                partition,
                REPARTITIONS as i32,
                records
                    .iter()
                    .map(|(_, offset, key, value)| (*offset, key.clone(), value.clone())),
            )
            .unwrap();
            (records, restored)
        })
        .collect()
}

#[test]
fn learn_hands_a_group_the_baseline_of_history_files() {
    let _serial = serial();
    let env = TestEnv::new();
    let broker = Broker::start();
    broker.create_topic("access-logs", RAW_PARTITIONS);
    let data = dataset(300_000);
    let expected = replayed(&env, &data);
    // The history: the first day (every table's learning), as files; the rest arrives live.
    // Without the baseline a group would learn for a day from its first live event and miss
    // every exposure.
    let cut = (T0 + DAY) * 1000;
    let (history, live): (Vec<_>, Vec<_>) = data.into_iter().partition(|(ts, _, _)| *ts < cut);
    env.write("history.jsonl", jsonl(&history));
    env.write("group.toml", group_config(&broker, "learned"));
    let learn = |extra: &[&str]| {
        let mut args = vec!["learn", "--config", "group.toml"];
        args.extend_from_slice(extra);
        args.push("history.jsonl");
        env.run(&args)
    };
    learn(&[]).expect(
        0,
        "baseline of 300 tables handed to Kafka group learned (6 partitions of learned-state",
    );
    // A group that has state is not overwritten by mistake; --force replaces it.
    learn(&[]).expect(1, "group learned already has state");
    learn(&["--force"]).expect(0, "the earlier state of 6 replaced");
    learn(&["--state-dir", "s"]).expect(2, "give no --state-dir");
    // The learned states, in bounded records; every table in one partition's state.
    let learned = group_states(&broker, "learned");
    let mut tables = BTreeSet::new();
    for (records, restored) in &learned {
        for (_, offset, key, value) in records {
            let bytes = key.len() + value.as_ref().map_or(0, Vec::len);
            assert!(
                bytes <= STATE_RECORD_BYTES,
                "{key} at {offset}: {bytes} bytes"
            );
        }
        let state = restored.state.as_ref().unwrap();
        tables.extend(
            (state.detector.tables.iter())
                .filter(|t| !t.baseline.is_empty())
                .map(|t| t.table.clone()),
        );
    }
    assert_eq!(tables.len(), TABLES as usize);

    // Group `migrated` has the same states as an earlier release wrote them: one record per
    // partition, keyed by its number.
    broker.create_topic("migrated-state", REPARTITIONS as i32);
    broker.create_topic("migrated-repartition", REPARTITIONS as i32);
    let earlier: Vec<(i32, Vec<u8>)> = (learned.into_iter().enumerate())
        .map(|(partition, (_, restored))| {
            let mut state = restored.state.unwrap();
            state.version = 1;
            (partition as i32, serde_json::to_vec(&state).unwrap())
        })
        .collect();
    broker.produce_keyed("migrated-state", &earlier);

    let records: Vec<(i32, Vec<u8>)> = live
        .into_iter()
        .map(|(_, p, r)| (p, r.into_bytes()))
        .collect();
    broker.produce("access-logs", &records);
    let one = Instance::start(&env, &broker, "learned", "one", "");
    let two = Instance::start(&env, &broker, "migrated", "two", "");
    check(
        "learned",
        std::slice::from_ref(&one.alerts),
        &[one.log.as_path()],
        &expected,
        &[&one],
    );
    check(
        "migrated from an earlier release's states",
        std::slice::from_ref(&two.alerts),
        &[two.log.as_path()],
        &expected,
        &[&two],
    );
    assert_eq!(
        two.log_text()
            .matches("the partition's state was one record of an earlier release")
            .count(),
        REPARTITIONS
    );
    one.stop();
    two.stop();
    // The earlier release's records are deleted once replaced; the states are changelogs.
    for (partition, (records, restored)) in group_states(&broker, "migrated").iter().enumerate() {
        let newest_v1 = records.iter().rev().find(|r| r.2 == partition.to_string());
        assert_eq!(
            newest_v1.map(|r| r.3.is_none()),
            Some(true),
            "partition {partition}"
        );
        assert!(!restored.migrated && restored.state.is_some());
        assert!(records.iter().any(|r| r.2 == "head"));
    }
}

#[test]
fn records_in_a_wrong_format_or_from_the_future_are_counted_and_reading_goes_on() {
    let _serial = serial();
    let env = TestEnv::new();
    let broker = Broker::start();
    broker.create_topic("access-logs", RAW_PARTITIONS);
    broker.create_topic("bad-records", 1);
    let now_ms = chrono::Utc::now().timestamp_millis();
    let mut records: Vec<(i32, Vec<u8>)> = Vec::new();
    // pgaudit lines sent to a topic read as JSON lines: the wrong format.
    for k in 0..3 {
        let line = format!(
            "2026-03-02 10:00:0{k}.000 UTC [42] LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,hr.pay,SELECT 1,<not logged>"
        );
        records.push((k % RAW_PARTITIONS, line.into_bytes()));
    }
    // A record over the input's line cap: framed and capped as a file's line is.
    let padded = format!(
        r#"{{"ts":{now_ms},"principal":"big","table":"db0.t000","pad":"{}"}}"#,
        "x".repeat(5000)
    );
    records.push((4, padded.into_bytes()));
    // A clock two days ahead, then reads as they come.
    records.push((
        3,
        line(now_ms + 2 * DAY * 1000, "skewed", "db0.t000").into_bytes(),
    ));
    for k in 0..20i64 {
        let record = line(
            now_ms - 60_000 + k * 1000,
            &format!("emp{k:04}"),
            "db1.t001",
        );
        records.push(((k % 6) as i32, record.into_bytes()));
    }
    broker.produce("access-logs", &records);
    let instance = Instance::start_with(
        &env,
        &broker,
        "bad",
        "bad",
        "dead_letter_topic = \"bad-records\"\n",
        "[input]\nmax_line_bytes = 4096\n",
    );
    eventually(Duration::from_secs(60), || {
        let figures = (
            instance.metric("malformed_total"),
            instance.metric("quarantined_total"),
            instance.metric("reads_total"),
        );
        (figures == (Some(4.0), Some(1.0), Some(20.0)))
            .then_some(())
            .ok_or_else(|| format!("malformed, quarantined, reads: {figures:?}"))
    });
    let log = instance.log_text();
    assert!(
        log.contains("quarantined: dated ahead of the wall clock"),
        "{log}"
    );
    assert!(log.contains("skipped: not valid JSON"), "{log}");
    instance.stop();
    let dead = eventually(Duration::from_secs(20), || {
        let dead = broker.read_all("bad-records");
        (dead.len() == 4)
            .then_some(dead)
            .ok_or_else(|| "not every bad record in the dead-letter topic".to_string())
    });
    let (too_long, dead): (Vec<_>, Vec<_>) = dead
        .iter()
        .partition(|(_, value, _)| value.contains(r#""principal":"big""#));
    assert_eq!(too_long.len(), 1, "{too_long:?}");
    assert!(
        too_long[0].2["exposure.error"].contains("4096"),
        "{:?}",
        too_long[0].2
    );
    for (_, value, headers) in dead {
        assert!(value.contains("AUDIT: SESSION"), "{value}");
        assert!(
            headers["exposure.source"].starts_with("access-logs/"),
            "{headers:?}"
        );
        assert!(headers["exposure.error"].contains("JSON"), "{headers:?}");
        assert!(
            headers["exposure.offset"].parse::<i64>().is_ok(),
            "{headers:?}"
        );
    }
}

#[test]
fn cloudtrail_shipped_by_logstash_through_kafka_gives_the_alerts_of_the_trail() {
    let _serial = serial();
    let env = TestEnv::new();
    let broker = Broker::start();
    broker.create_topic("access-logs", RAW_PARTITIONS);
    // Logstash's Kafka output: one document a record, the trail's records in order.
    crate::public::shipped(&env);
    let documents: Vec<(i32, Vec<u8>)> = std::fs::read_to_string(env.path("logstash.jsonl"))
        .unwrap()
        .lines()
        .map(|l| (0, l.as_bytes().to_vec()))
        .collect();
    broker.produce("access-logs", &documents);
    // A short lateness: the five empty raw partitions stop holding time back soon.
    let detect = "[detect]\nlateness = \"2s\"\n";
    env.write("detect.toml", detect);
    let instance = Instance::start_plain(&env, &broker, "shipped", "shipped", "auto", detect);
    let replayed = env.run(&["replay", "--config", "detect.toml", "logstash.jsonl"]);
    assert_eq!(replayed.code, 0, "{}", replayed.stderr);
    let want: BTreeSet<String> = replayed.stdout.lines().map(str::to_string).collect();
    assert_eq!(want.len(), 3, "a grant, an open, a close: {want:?}");
    // (Five of the six raw partitions stay empty: their lag is never known, so the instance is
    // stopped before what it delivered is compared, rather than waited on to catch up.)
    let files = [instance.alerts.clone()];
    wait_for_all(&files, &want, &[], Duration::from_secs(120));
    assert_eq!(instance.metric("malformed_total"), Some(0.0));
    instance.stop();
    assert_same_alerts("logstash through kafka", &delivered(&files), &want);
}

#[test]
fn s3_access_and_gcs_usage_logs_through_kafka_give_the_alerts_of_replay() {
    // Each text format's lines, one a message (as a shipper forwards a log bucket's files),
    // read by an instance named with the format and by one that recognises it.
    let _serial = serial();
    // (A short lateness: the five empty raw partitions stop holding time back soon.)
    let cases = [
        (
            "s3-access",
            "tests/data/formats/s3_access/access.log",
            "[detect]\nlateness = \"2s\"\n",
        ),
        (
            "gcs-usage",
            "tests/data/formats/gcs_usage/usage.csv",
            "[detect]\nlearn = \"1h\"\nlateness = \"2s\"\n",
        ),
    ];
    for (format, file, config) in cases {
        let env = TestEnv::new();
        let broker = Broker::start();
        broker.create_topic("access-logs", RAW_PARTITIONS);
        let text = std::fs::read_to_string(repo(file)).unwrap();
        let lines: Vec<(i32, Vec<u8>)> = text.lines().map(|l| (0, l.as_bytes().to_vec())).collect();
        broker.produce("access-logs", &lines);
        env.write("detect.toml", config);
        let replayed = env.run(&[
            "replay",
            "--config",
            "detect.toml",
            repo(file).to_str().unwrap(),
        ]);
        assert_eq!(replayed.code, 0, "{format}: {}", replayed.stderr);
        let want: BTreeSet<String> = replayed.stdout.lines().map(str::to_string).collect();
        assert!(
            want.len() >= 2,
            "{format}: a window opened and closed: {want:?}"
        );
        for (group, as_given) in [("named", format), ("recognised", "auto")] {
            let instance = Instance::start_plain(&env, &broker, group, group, as_given, config);
            let files = [instance.alerts.clone()];
            wait_for_all(&files, &want, &[], Duration::from_secs(120));
            assert_eq!(
                instance.metric("malformed_total"),
                Some(0.0),
                "{format} {group}"
            );
            instance.stop();
            assert_same_alerts(&format!("{format} {group}"), &delivered(&files), &want);
        }
    }
}

#[test]
fn reads_after_a_revoke_through_kafka_give_the_still_readable_alerts_of_replay() {
    // The seed scenario's variant (tests/data/still-readable): the sample, its permission
    // changes and the role grant that kept two readers in, merged in time order as a shipper
    // forwards them; the instance pages `still_readable` exactly as replay does.
    let _serial = serial();
    let env = TestEnv::new();
    let broker = Broker::start();
    broker.create_topic("access-logs", RAW_PARTITIONS);
    let micros = |ts: &serde_json::Value| match ts {
        serde_json::Value::Number(ms) => ms.as_i64().unwrap() * 1000,
        text => chrono::DateTime::parse_from_rfc3339(text.as_str().unwrap())
            .unwrap()
            .timestamp_micros(),
    };
    let mut records: Vec<(i64, String)> = Vec::new();
    for file in [
        "sample-logs/incident.jsonl",
        "sample-logs/permissions.jsonl",
        "tests/data/still-readable/permissions.jsonl",
        "tests/data/still-readable/after.jsonl",
    ] {
        for line in std::fs::read_to_string(repo(file)).unwrap().lines() {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            records.push((micros(&value["ts"]), line.to_string()));
        }
    }
    records.sort_by_key(|(ts, _)| *ts);
    let merged: String = records.iter().map(|(_, l)| format!("{l}\n")).collect();
    env.write("merged.jsonl", &merged);
    let messages: Vec<(i32, Vec<u8>)> = records
        .iter()
        .map(|(_, l)| (0, l.as_bytes().to_vec()))
        .collect();
    broker.produce("access-logs", &messages);
    let detect = "[detect]\nlateness = \"2s\"\n";
    env.write("detect.toml", detect);
    let replayed = env.run(&["replay", "--config", "detect.toml", "merged.jsonl"]);
    assert_eq!(replayed.code, 0, "{}", replayed.stderr);
    let want: BTreeSet<String> = replayed.stdout.lines().map(str::to_string).collect();
    let still = want
        .iter()
        .filter(|a| a.contains("\"still_readable\""))
        .count();
    assert_eq!(still, 2, "{want:?}");
    let instance = Instance::start_plain(&env, &broker, "still", "still", "jsonl", detect);
    let files = [instance.alerts.clone()];
    wait_for_all(&files, &want, &[], Duration::from_secs(120));
    instance.stop();
    assert_same_alerts("still readable through kafka", &delivered(&files), &want);
}

/// A topic read as logs (`kafka://…`): the sample and its still-readable variant, one source
/// per partition as a company's shippers would write them, give `replay` and `impact` exactly
/// what the files give.
#[test]
fn replay_and_impact_read_a_topic_as_the_files_it_was_fed() {
    let _serial = serial();
    let env = TestEnv::new();
    let broker = Broker::start();
    let files = [
        "sample-logs/incident.jsonl",
        "sample-logs/permissions.jsonl",
        "tests/data/still-readable/permissions.jsonl",
        "tests/data/still-readable/after.jsonl",
    ]
    .map(|p| repo(p).to_string_lossy().into_owned());
    broker.create_topic("audit", files.len() as i32);
    for (partition, file) in files.iter().enumerate() {
        let text = std::fs::read_to_string(file).unwrap();
        let records: Vec<(i32, Vec<u8>)> = text
            .lines()
            .map(|l| (partition as i32, l.as_bytes().to_vec()))
            .collect();
        broker.produce("audit", &records);
    }
    let topic = format!("kafka://{}/audit", broker.addr);
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    for command in ["replay", "impact"] {
        let from_files = env.run(&[&[command][..], &files].concat());
        assert_eq!(from_files.code, 0, "{}", from_files.stderr);
        let from_topic = env.run(&[command, &topic]);
        assert_eq!(from_topic.code, 0, "{command}: {}", from_topic.stderr);
        assert!(!from_files.stdout.is_empty());
        assert_eq!(
            from_topic.stdout, from_files.stdout,
            "{command}: {}",
            from_topic.stderr
        );
    }
    // One partition by its number; a topic that is not there is named.
    let one = env.run(&["replay", &format!("{topic}/1")]);
    assert_eq!(one.code, 0, "{}", one.stderr);
    assert!(one.stderr.contains("6 events"), "{}", one.stderr);
    let missing = env.run(&["replay", &format!("kafka://{}/nothing", broker.addr)]);
    assert_ne!(missing.code, 0);
    assert!(missing.stderr.contains("/nothing"), "{}", missing.stderr);
}
