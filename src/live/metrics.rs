//! Prometheus text metrics for `exposure watch`: counters the detection loop and the sinks bump
//! (lock-free atomics), rendered on `GET /metrics` by a small HTTP/1.1 server on the address
//! given with `--metrics-addr`; `GET /ready` answers 200 once the inputs are positioned and
//! checkpointed (503 before), for a readiness probe. The server defends itself: at most
//! [`MAX_CONNECTIONS`] at once, each given [`HEAD_TIMEOUT`] to send its request and
//! [`EXCHANGE_TIMEOUT`] in all, accept errors backed off.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// Per-sink delivery counters.
#[derive(Debug, Default)]
pub struct SinkMetrics {
    pub delivered: AtomicU64,
    pub retries: AtomicU64,
    pub dead_lettered: AtomicU64,
    /// The highest outbox sequence number the sink acknowledged (its pending count is
    /// [`Metrics::journaled`] minus this, computed when rendered so it is true at any moment).
    pub acked: AtomicU64,
}

/// Everything `/metrics` reports.
#[derive(Debug, Default)]
pub struct Metrics {
    /// What the intake read, used and refused.
    pub intake: crate::intake::IntakeCounts,
    pub open_windows: AtomicU64,
    pub alerts_emitted: AtomicU64,
    /// The highest sequence number written to the outbox (updated on every append).
    pub journaled: AtomicU64,
    /// The outbox journal's size on disk.
    pub outbox_bytes: AtomicU64,
    pub files_followed: AtomicU64,
    /// 1 while part of a record is held (a line without its newline yet, a multi-line record
    /// not complete): event time waits for it.
    pub partial_record: AtomicU64,
    /// Changes of the state dir's audit log of baseline changes taken.
    pub baseline_changes: AtomicU64,
    /// Configuration reloads (SIGHUP) taken, and refused as invalid.
    pub config_reloads: AtomicU64,
    pub config_reload_failures: AtomicU64,
    /// Newest event time (µs since the epoch; 0 before the first event).
    pub newest_event_us: AtomicI64,
    /// Event time up to which everything is applied (0: none yet).
    pub watermark_us: AtomicI64,
    /// When the last checkpoint was written (µs since the epoch; 0 before the first).
    pub checkpoint_at_us: AtomicI64,
    pub sinks: Mutex<Vec<(String, Arc<SinkMetrics>)>>,
    /// Set once the first poll is done and checkpointed (`GET /ready` answers 200 from then).
    pub ready: AtomicBool,
    /// `watch` over Kafka: each repartition partition this instance owns.
    pub partitions: Mutex<std::collections::BTreeMap<i32, PartitionMetrics>>,
    /// `watch` over Kafka: each raw topic partition this instance's ingest reads, by
    /// `topic/partition`.
    pub sources: Mutex<std::collections::BTreeMap<String, SourceMetrics>>,
}

/// One raw topic partition's figures (`watch` over Kafka, ingest stage).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SourceMetrics {
    /// The next offset to read (every record before it is decoded; -1 before it is known).
    pub offset: i64,
    /// Records of the partition not yet read, as of the consumer's last look at its end
    /// (`None` before the first).
    pub lag: Option<i64>,
    /// Seconds since a record of the partition was last read.
    pub quiet_seconds: f64,
}

/// One repartition partition's figures (`watch` over Kafka).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PartitionMetrics {
    /// Records of the partition not yet read (as of the last look at its end).
    pub lag: i64,
    /// Events taken (repeats dropped).
    pub events: u64,
    /// Repeats a restarted ingest sent, dropped.
    pub repeats: u64,
    /// Bytes of the last checkpoint written.
    pub state_bytes: u64,
    /// When the last checkpoint was written (µs since the epoch).
    pub checkpoint_at_us: i64,
    /// The partition's watermark (µs since the epoch).
    pub watermark_us: Option<i64>,
}

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

impl Metrics {
    /// Registers sink `name`, which has acknowledged the outbox up to `acked`, and returns its
    /// counters.
    pub fn sink(&self, name: &str, acked: u64) -> Arc<SinkMetrics> {
        let counters = Arc::new(SinkMetrics {
            acked: AtomicU64::new(acked),
            ..SinkMetrics::default()
        });
        self.sinks
            .lock()
            .expect("not poisoned")
            .push((name.to_string(), Arc::clone(&counters)));
        counters
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(
                out,
                "# HELP exposure_{name} {help}\n# TYPE exposure_{name} {kind}\nexposure_{name} {value}"
            );
        };
        let counts: [(&str, &str, &str, &AtomicU64); 16] = [
            (
                "events_read_total",
                "counter",
                "Events parsed from the inputs.",
                &self.intake.events_read,
            ),
            (
                "reads_total",
                "counter",
                "Read events of watched tables.",
                &self.intake.reads,
            ),
            (
                "malformed_total",
                "counter",
                "Lines skipped as malformed.",
                &self.intake.malformed,
            ),
            (
                "unattributable_total",
                "counter",
                "Access events that name no object (no table to attribute them to).",
                &self.intake.unattributable,
            ),
            (
                "not_access_total",
                "counter",
                "Records that are not access events (management calls, other log lines).",
                &self.intake.not_access,
            ),
            (
                "permission_changes_total",
                "counter",
                "Permission changes (grants and revokes, of privileges and role membership) read.",
                &self.intake.permission_changes,
            ),
            (
                "late_total",
                "counter",
                "Events older than the watermark (not used).",
                &self.intake.late,
            ),
            (
                "quarantined_total",
                "counter",
                "Events dated past the wall clock by more than max_ahead (not used).",
                &self.intake.quarantined,
            ),
            (
                "open_windows",
                "gauge",
                "Exposure windows open now.",
                &self.open_windows,
            ),
            (
                "alerts_emitted_total",
                "counter",
                "Alert events written to the outbox.",
                &self.alerts_emitted,
            ),
            (
                "outbox_bytes",
                "gauge",
                "Size of the outbox journal on disk (bounded by --outbox-max-bytes).",
                &self.outbox_bytes,
            ),
            (
                "files_followed",
                "gauge",
                "Files followed now.",
                &self.files_followed,
            ),
            (
                "partial_record",
                "gauge",
                "1 while part of a record is held (a line without its newline, a multi-line record not complete).",
                &self.partial_record,
            ),
            (
                "baseline_changes",
                "gauge",
                "Changes of the state dir's baseline-changes.jsonl taken (exposure baseline).",
                &self.baseline_changes,
            ),
            (
                "config_reloads_total",
                "counter",
                "Configurations reloaded on SIGHUP.",
                &self.config_reloads,
            ),
            (
                "config_reload_failures_total",
                "counter",
                "Configurations refused on SIGHUP (invalid; the one in use stays).",
                &self.config_reload_failures,
            ),
        ];
        for (name, kind, help, count) in counts {
            metric(name, kind, help, count.load(Relaxed).to_string());
        }
        // Seconds from a time (µs since the epoch; 0: not yet) to now.
        let now = now_us();
        let since = |at: i64| {
            if at == 0 {
                "NaN".to_string()
            } else {
                format!("{:.3}", (now - at) as f64 / 1e6)
            }
        };
        metric(
            "seconds_behind",
            "gauge",
            "Wall clock minus the newest event time.",
            since(self.newest_event_us.load(Relaxed)),
        );
        let watermark = self.watermark_us.load(Relaxed);
        metric(
            "watermark_seconds",
            "gauge",
            "Event time up to which every event is applied (the watermark), in seconds since the epoch.",
            if watermark == 0 {
                "NaN".to_string()
            } else {
                format!("{:.6}", watermark as f64 / 1e6)
            },
        );
        metric(
            "checkpoint_age_seconds",
            "gauge",
            "Seconds since the last checkpoint was written.",
            since(self.checkpoint_at_us.load(Relaxed)),
        );
        let sinks = self.sinks.lock().expect("not poisoned");
        let journaled = self.journaled.load(Relaxed);
        let pending = |s: &SinkMetrics| journaled.saturating_sub(s.acked.load(Relaxed)).to_string();
        let rows: Vec<(String, &SinkMetrics)> =
            sinks.iter().map(|(n, m)| (n.clone(), &**m)).collect();
        render_labelled(
            &mut out,
            "sink",
            &rows,
            &[
                (
                    "sink_delivered_total",
                    "counter",
                    "Alert events a sink acknowledged.",
                    &(|s: &SinkMetrics| s.delivered.load(Relaxed).to_string())
                        as &dyn Fn(&SinkMetrics) -> String,
                ),
                (
                    "sink_retries_total",
                    "counter",
                    "Failed delivery attempts that will be retried.",
                    &|s| s.retries.load(Relaxed).to_string(),
                ),
                (
                    "sink_dead_lettered_total",
                    "counter",
                    "Alert events a sink rejected for good (moved to the dead-letter file).",
                    &|s| s.dead_lettered.load(Relaxed).to_string(),
                ),
                (
                    "sink_pending",
                    "gauge",
                    "Alert events in the outbox not yet acknowledged by a sink.",
                    &pending,
                ),
            ],
        );
        drop(sinks);
        self.render_partitions(&mut out, now);
        self.render_sources(&mut out);
        out
    }

    fn render_sources(&self, out: &mut String) {
        let sources = self.sources.lock().expect("not poisoned");
        if sources.is_empty() {
            return;
        }
        let rows: Vec<(String, &SourceMetrics)> =
            sources.iter().map(|(n, f)| (n.clone(), f)).collect();
        render_labelled(
            out,
            "source",
            &rows,
            &[
                (
                    "kafka_source_offset",
                    "gauge",
                    "The next offset the ingest reads of a raw topic partition it owns.",
                    &(|s: &SourceMetrics| s.offset.to_string())
                        as &dyn Fn(&SourceMetrics) -> String,
                ),
                (
                    "kafka_source_lag",
                    "gauge",
                    "Records of an owned raw topic partition not yet read (NaN before the consumer \
                 has seen its end).",
                    &|s| s.lag.map_or_else(|| "NaN".to_string(), |l| l.to_string()),
                ),
                (
                    "kafka_source_quiet_seconds",
                    "gauge",
                    "Seconds since the ingest last read a record of an owned raw topic partition.",
                    &|s| format!("{:.3}", s.quiet_seconds),
                ),
            ],
        );
    }

    fn render_partitions(&self, out: &mut String, now: i64) {
        let partitions = self.partitions.lock().expect("not poisoned");
        if partitions.is_empty() {
            return;
        }
        let rows: Vec<(String, &PartitionMetrics)> =
            partitions.iter().map(|(p, f)| (p.to_string(), f)).collect();
        render_labelled(
            out,
            "partition",
            &rows,
            &[
                (
                    "kafka_partition_lag",
                    "gauge",
                    "Records of an owned repartition partition not yet read.",
                    &(|p: &PartitionMetrics| p.lag.to_string())
                        as &dyn Fn(&PartitionMetrics) -> String,
                ),
                (
                    "kafka_partition_events_total",
                    "counter",
                    "Events a partition took (rate() gives events/s).",
                    &|p| p.events.to_string(),
                ),
                (
                    "kafka_partition_repeats_total",
                    "counter",
                    "Events sent twice by a restarted ingest, dropped.",
                    &|p| p.repeats.to_string(),
                ),
                (
                    "kafka_partition_state_bytes",
                    "gauge",
                    "Size of the partition's last checkpoint.",
                    &|p| p.state_bytes.to_string(),
                ),
                (
                    "kafka_partition_checkpoint_age_seconds",
                    "gauge",
                    "Seconds since the partition's last checkpoint.",
                    &|p| {
                        if p.checkpoint_at_us == 0 {
                            "NaN".to_string()
                        } else {
                            format!("{:.3}", (now - p.checkpoint_at_us) as f64 / 1e6)
                        }
                    },
                ),
                (
                    "kafka_partition_seconds_behind",
                    "gauge",
                    "Wall clock minus the partition's watermark.",
                    &|p| match p.watermark_us {
                        Some(w) => format!("{:.3}", (now - w) as f64 / 1e6),
                        None => "NaN".to_string(),
                    },
                ),
            ],
        );
    }
}

/// One metric family: its name (after `exposure_`), type, help, and a row's sample value.
type Family<'a, T> = (&'a str, &'a str, &'a str, &'a dyn Fn(&T) -> String);

/// Writes each family's HELP and TYPE, then a sample per row labelled `label="row key"`
/// (escaped as the text format asks).
fn render_labelled<T>(
    out: &mut String,
    label: &str,
    rows: &[(String, &T)],
    families: &[Family<'_, T>],
) {
    for (name, kind, help, get) in families {
        let _ = writeln!(
            out,
            "# HELP exposure_{name} {help}\n# TYPE exposure_{name} {kind}"
        );
        for (key, figures) in rows {
            let _ = writeln!(
                out,
                "exposure_{name}{{{label}=\"{}\"}} {}",
                key.replace('\\', "\\\\").replace('"', "\\\""),
                get(figures)
            );
        }
    }
}

/// At most this many connections are held at once; further ones wait in the kernel's backlog,
/// so a flood of connections can hold neither file descriptors nor CPU that detection and
/// delivery need. Far more than scrapers: idle connections (load balancers' probes, a port
/// scan, a client that connects and sends nothing) must not keep a scrape waiting.
pub const MAX_CONNECTIONS: usize = 256;

/// A connection gets this long to send its request head: one that sends nothing is closed
/// quickly, so idle connections free their slots well within a scraper's timeout.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(1);

/// A connection gets this long, in all, to send its request and take the answer.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(5);

/// Accept errors (out of file descriptors, most often) are retried after a pause doubling from
/// this up to [`ACCEPT_BACKOFF_MAX`], instead of spinning.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Serves `metrics` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut backoff = Duration::ZERO;
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        match listener.accept().await {
            Ok((stream, _)) => {
                backoff = Duration::ZERO;
                let metrics = Arc::clone(&metrics);
                tokio::spawn(async move {
                    let _slot = slot;
                    let _ = tokio::time::timeout(EXCHANGE_TIMEOUT, answer(stream, &metrics)).await;
                });
            }
            Err(e) => {
                if backoff.is_zero() {
                    tracing::warn!(error = %e, "metrics: cannot accept a connection; backing off");
                }
                backoff = (backoff * 2).clamp(ACCEPT_BACKOFF_MIN, ACCEPT_BACKOFF_MAX);
                tokio::time::sleep(backoff).await;
            }
        }
    }
}

/// Reads one request head (bounded; a body is ignored) and answers it.
async fn answer(mut stream: TcpStream, metrics: &Metrics) {
    let mut request = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    let head = async {
        while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
            match stream.read(&mut buf).await {
                Ok(n) if n > 0 => request.extend_from_slice(&buf[..n]),
                _ => return false,
            }
        }
        true
    };
    if !matches!(tokio::time::timeout(HEAD_TIMEOUT, head).await, Ok(true)) {
        return;
    }
    let head = String::from_utf8_lossy(&request);
    let target = head.split_whitespace().nth(1).unwrap_or("");
    let path = target.split('?').next().unwrap_or("");
    let (status, content_type, body) = match (head.starts_with("GET "), path) {
        (true, "/metrics") => ("200 OK", "text/plain; version=0.0.4", metrics.render()),
        (true, "/ready") if metrics.ready.load(Relaxed) => {
            ("200 OK", "text/plain", "ready\n".to_string())
        }
        (true, "/ready") => (
            "503 Service Unavailable",
            "text/plain",
            "starting\n".to_string(),
        ),
        _ => (
            "404 Not Found",
            "text/plain",
            "try /metrics or /ready\n".to_string(),
        ),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Binds `addr` for [`serve`].
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}
