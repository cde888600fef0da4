//! The metrics of `exposure watch`: counters the detection loop and the sinks bump (lock-free
//! atomics), rendered as OpenMetrics text by the `prometheus-client` crate on each scrape of
//! `GET /metrics` (served by [`super::server`]): the figures are read once into plain values,
//! then encoded by a [`Collector`].

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};

/// Per-sink delivery counters.
#[derive(Debug, Default)]
pub struct SinkMetrics {
    pub delivered: AtomicU64,
    pub retries: AtomicU64,
    pub dead_lettered: AtomicU64,
    /// The highest outbox sequence number the sink acknowledged (its pending count is
    /// [`Metrics::journaled`] minus this, computed when rendered so it is true at any moment).
    pub acked: AtomicU64,
    /// Seconds from a delivery's first attempt to the sink's acknowledgement, retries
    /// included.
    pub delivery: LatencyHistogram,
}

/// The upper bounds (seconds) of [`LatencyHistogram`]'s buckets; `+Inf` follows.
pub const DELIVERY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A histogram of durations over [`DELIVERY_BUCKETS`], lock-free.
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    /// Observations per bucket (not cumulative), the last one `+Inf`.
    buckets: [AtomicU64; DELIVERY_BUCKETS.len() + 1],
    sum_us: AtomicU64,
    count: AtomicU64,
}

impl LatencyHistogram {
    pub fn observe(&self, took: std::time::Duration) {
        let seconds = took.as_secs_f64();
        let bucket = DELIVERY_BUCKETS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(DELIVERY_BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Relaxed);
        self.sum_us
            .fetch_add(took.as_micros().min(u64::MAX as u128) as u64, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    fn sample(&self) -> Sample {
        let buckets = DELIVERY_BUCKETS
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(&self.buckets)
            .map(|(bound, n)| (bound, n.load(Relaxed)))
            .collect();
        Sample::Histogram {
            sum: self.sum_us.load(Relaxed) as f64 / 1e6,
            count: self.count.load(Relaxed),
            buckets,
        }
    }
}

/// The alerts written to the outbox, by status and severity.
pub type AlertCounts = std::collections::BTreeMap<(&'static str, &'static str), u64>;

/// Everything `/metrics` reports.
#[derive(Debug, Default)]
pub struct Metrics {
    /// What the intake read, used and refused.
    pub intake: crate::intake::IntakeCounts,
    pub open_windows: AtomicU64,
    pub alerts_emitted: AtomicU64,
    /// [`Metrics::alerts_emitted`] by status and severity.
    pub alerts: Mutex<AlertCounts>,
    /// The highest sequence number written to the outbox (updated on every append).
    pub journaled: AtomicU64,
    /// The outbox journal's size on disk.
    pub outbox_bytes: AtomicU64,
    /// The outbox's bound (`--outbox-max-bytes`): beyond it, undelivered alerts are
    /// dead-lettered.
    pub outbox_max_bytes: AtomicU64,
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
    /// Bytes the last checkpoint appended to the change log (0 when it was written whole).
    pub checkpoint_bytes: AtomicU64,
    /// Compactions of the checkpoint's change logs into a new base.
    pub checkpoint_compactions: AtomicU64,
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

    /// The OpenMetrics text exposition (`# EOF` last).
    pub fn render(&self) -> String {
        let mut registry = Registry::with_prefix("exposure");
        registry.register_collector(Box::new(self.figures()));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry)
            .expect("writing to a String cannot fail");
        out
    }

    /// Every figure as it stands now.
    fn figures(&self) -> Figures {
        let counts: [(&'static str, &'static str, &'static str, &AtomicU64); 17] = [
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
                "outbox_max_bytes",
                "gauge",
                "The outbox's bound (--outbox-max-bytes): beyond it, the oldest undelivered alerts are dead-lettered.",
                &self.outbox_max_bytes,
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
        let mut families: Vec<Family> = counts
            .iter()
            .map(|(name, kind, help, count)| {
                Family::one(
                    name,
                    *kind == "counter",
                    help,
                    Sample::Count(count.load(Relaxed)),
                )
            })
            .collect();
        let alerts = self.alerts.lock().expect("not poisoned");
        families.push(Family {
            name: "alerts",
            counter: true,
            help: "Alert events written to the outbox, by status and severity.",
            labels: &["status", "severity"],
            samples: alerts
                .iter()
                .map(|(&(status, severity), &n)| {
                    (
                        vec![status.to_string(), severity.to_string()],
                        Sample::Count(n),
                    )
                })
                .collect(),
        });
        drop(alerts);
        // Seconds from a time (µs since the epoch; 0: not yet) to now.
        let now = now_us();
        let since = |at: i64| {
            if at == 0 {
                f64::NAN
            } else {
                (now - at) as f64 / 1e6
            }
        };
        let watermark = self.watermark_us.load(Relaxed);
        families.extend([
            Family::one(
                "seconds_behind",
                false,
                "Wall clock minus the newest event time.",
                Sample::Level(since(self.newest_event_us.load(Relaxed))),
            ),
            Family::one(
                "watermark_seconds",
                false,
                "Event time up to which every event is applied (the watermark), in seconds since the epoch.",
                Sample::Level(if watermark == 0 {
                    f64::NAN
                } else {
                    watermark as f64 / 1e6
                }),
            ),
            Family::one(
                "checkpoint_age_seconds",
                false,
                "Seconds since the last checkpoint was written.",
                Sample::Level(since(self.checkpoint_at_us.load(Relaxed))),
            ),
            Family::one(
                "checkpoint_last_bytes",
                false,
                "Bytes the last checkpoint appended to the change log (what changed since the one before; 0 when written whole).",
                Sample::Level(self.checkpoint_bytes.load(Relaxed) as f64),
            ),
            Family::one(
                "checkpoint_compactions_total",
                true,
                "Compactions of the checkpoint's change logs into a new base.",
                Sample::Count(self.checkpoint_compactions.load(Relaxed)),
            ),
        ]);
        let sinks = self.sinks.lock().expect("not poisoned");
        let journaled = self.journaled.load(Relaxed);
        let rows: Vec<(String, &SinkMetrics)> =
            sinks.iter().map(|(n, m)| (n.clone(), &**m)).collect();
        let sink_families: [LabelledFamily<SinkMetrics>; 5] = [
            (
                "sink_delivered_total",
                "Alert events a sink acknowledged.",
                &|s| Sample::Count(s.delivered.load(Relaxed)),
            ),
            (
                "sink_retries_total",
                "Failed delivery attempts that will be retried.",
                &|s| Sample::Count(s.retries.load(Relaxed)),
            ),
            (
                "sink_dead_lettered_total",
                "Alert events a sink rejected for good (moved to the dead-letter file).",
                &|s| Sample::Count(s.dead_lettered.load(Relaxed)),
            ),
            (
                "sink_pending",
                "Alert events in the outbox not yet acknowledged by a sink.",
                &|s| Sample::Count(journaled.saturating_sub(s.acked.load(Relaxed))),
            ),
            (
                "sink_delivery_seconds",
                "Seconds from an alert event's first delivery attempt to the sink's acknowledgement, retries included.",
                &|s| s.delivery.sample(),
            ),
        ];
        labelled(&mut families, &["sink"], &rows, &sink_families);
        drop(sinks);
        let partitions = self.partitions.lock().expect("not poisoned");
        if !partitions.is_empty() {
            let rows: Vec<(String, &PartitionMetrics)> =
                partitions.iter().map(|(p, f)| (p.to_string(), f)).collect();
            let partition_families: [LabelledFamily<PartitionMetrics>; 6] = [
                (
                    "kafka_partition_lag",
                    "Records of an owned repartition partition not yet read.",
                    &|p| Sample::Int(p.lag),
                ),
                (
                    "kafka_partition_events_total",
                    "Events a partition took (rate() gives events/s).",
                    &|p| Sample::Count(p.events),
                ),
                (
                    "kafka_partition_repeats_total",
                    "Events sent twice by a restarted ingest, dropped.",
                    &|p| Sample::Count(p.repeats),
                ),
                (
                    "kafka_partition_state_bytes",
                    "Bytes the partition's last checkpoint wrote to the state topic (what changed).",
                    &|p| Sample::Count(p.state_bytes),
                ),
                (
                    "kafka_partition_checkpoint_age_seconds",
                    "Seconds since the partition's last checkpoint.",
                    &|p| Sample::Level(since(p.checkpoint_at_us)),
                ),
                (
                    "kafka_partition_seconds_behind",
                    "Wall clock minus the partition's watermark.",
                    &|p| Sample::Level(p.watermark_us.map_or(f64::NAN, since)),
                ),
            ];
            labelled(&mut families, &["partition"], &rows, &partition_families);
        }
        drop(partitions);
        let sources = self.sources.lock().expect("not poisoned");
        if !sources.is_empty() {
            let rows: Vec<(String, &SourceMetrics)> =
                sources.iter().map(|(n, f)| (n.clone(), f)).collect();
            let source_families: [LabelledFamily<SourceMetrics>; 3] = [
                (
                    "kafka_source_offset",
                    "The next offset the ingest reads of a raw topic partition it owns.",
                    &|s| Sample::Int(s.offset),
                ),
                (
                    "kafka_source_lag",
                    "Records of an owned raw topic partition not yet read (NaN before the consumer has seen its end).",
                    &|s| s.lag.map_or(Sample::Level(f64::NAN), Sample::Int),
                ),
                (
                    "kafka_source_quiet_seconds",
                    "Seconds since the ingest last read a record of an owned raw topic partition.",
                    &|s| Sample::Level(s.quiet_seconds),
                ),
            ];
            labelled(&mut families, &["source"], &rows, &source_families);
        }
        Figures(families)
    }
}

/// One sample's value: a count (counters, integral gauges) or a level (gauges that may be
/// `NaN`: "not yet").
#[derive(Debug, Clone, PartialEq)]
enum Sample {
    Count(u64),
    /// An integral gauge that may be negative (an offset, a lag).
    Int(i64),
    Level(f64),
    /// Observations per bucket (upper bound, count; not cumulative, `+Inf` last).
    Histogram {
        sum: f64,
        count: u64,
        buckets: Vec<(f64, u64)>,
    },
}

/// One metric family as read at a scrape: its name after `exposure_` (a counter's without the
/// `_total` the encoding adds), whether it is a counter, its help, its label names and its
/// samples, each with its label values (none: unlabelled).
#[derive(Debug)]
struct Family {
    name: &'static str,
    counter: bool,
    help: &'static str,
    labels: &'static [&'static str],
    samples: Vec<(Vec<String>, Sample)>,
}

impl Family {
    /// An unlabelled family of one sample; a name ending in `_total` is a counter's.
    fn one(name: &'static str, counter: bool, help: &'static str, sample: Sample) -> Family {
        Family {
            name: name.strip_suffix("_total").unwrap_or(name),
            counter,
            help,
            labels: &[],
            samples: vec![(Vec::new(), sample)],
        }
    }
}

/// A labelled family: its full name (`_total`: a counter), help, and each row's sample.
type LabelledFamily<'a, T> = (&'static str, &'static str, &'a dyn Fn(&T) -> Sample);

/// Adds one family per entry of `of`, with a sample per row labelled `label="row key"`.
fn labelled<T>(
    families: &mut Vec<Family>,
    label: &'static [&'static str; 1],
    rows: &[(String, &T)],
    of: &[LabelledFamily<'_, T>],
) {
    for (name, help, get) in of {
        let counter = name.ends_with("_total");
        families.push(Family {
            name: name.strip_suffix("_total").unwrap_or(name),
            counter,
            help,
            labels: label,
            samples: rows
                .iter()
                .map(|(key, figures)| (vec![key.clone()], get(figures)))
                .collect(),
        });
    }
}

/// The figures of one scrape, encoded by `prometheus-client`.
#[derive(Debug)]
struct Figures(Vec<Family>);

impl Sample {
    fn encode(
        &self,
        counter: bool,
        mut encoder: prometheus_client::encoding::MetricEncoder<'_>,
    ) -> std::fmt::Result {
        match (self, counter) {
            (&Sample::Count(n), true) => ConstCounter::new(n).encode(encoder),
            (&Sample::Level(x), true) => ConstCounter::new(x).encode(encoder),
            (&Sample::Count(n), false) => ConstGauge::new(n).encode(encoder),
            (&Sample::Int(n), true) => ConstCounter::new(n.max(0) as u64).encode(encoder),
            (&Sample::Int(n), false) => ConstGauge::new(n).encode(encoder),
            (&Sample::Level(x), false) => ConstGauge::new(x).encode(encoder),
            (
                Sample::Histogram {
                    sum,
                    count,
                    buckets,
                },
                _,
            ) => encoder.encode_histogram::<NoLabelSet>(*sum, *count, buckets, None),
        }
    }

    fn kind(&self, counter: bool) -> MetricType {
        match self {
            Sample::Histogram { .. } => MetricType::Histogram,
            _ if counter => MetricType::Counter,
            _ => MetricType::Gauge,
        }
    }
}

impl Collector for Figures {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        for family in &self.0 {
            let kind = family
                .samples
                .first()
                .map_or(MetricType::Gauge, |(_, s)| s.kind(family.counter));
            let mut metric = encoder.encode_descriptor(family.name, family.help, None, kind)?;
            for (values, sample) in &family.samples {
                let labels: Vec<(&str, &str)> = family
                    .labels
                    .iter()
                    .copied()
                    .zip(values.iter().map(String::as_str))
                    .collect();
                sample.encode(family.counter, metric.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_render_as_openmetrics_with_the_names_scrapers_use() {
        let metrics = Metrics::default();
        metrics.intake.events_read.store(7, Relaxed);
        metrics.open_windows.store(2, Relaxed);
        let sink = metrics.sink("pager \"x\"", 0);
        sink.delivered.store(3, Relaxed);
        sink.delivery.observe(std::time::Duration::from_millis(30));
        sink.delivery.observe(std::time::Duration::from_secs(45));
        metrics.journaled.store(5, Relaxed);
        metrics.outbox_max_bytes.store(1 << 30, Relaxed);
        metrics
            .alerts
            .lock()
            .unwrap()
            .insert(("open", "critical"), 2);
        metrics
            .partitions
            .lock()
            .unwrap()
            .insert(3, PartitionMetrics::default());
        let mut sources = metrics.sources.lock().unwrap();
        sources.insert("raw/0".into(), SourceMetrics::default());
        let twelve = SourceMetrics {
            lag: Some(12),
            ..Default::default()
        };
        sources.insert("raw/1".into(), twelve);
        drop(sources);
        let text = metrics.render();
        for line in [
            "# TYPE exposure_events_read counter",
            "exposure_events_read_total 7",
            "exposure_open_windows 2",
            "exposure_seconds_behind NaN",
            "exposure_sink_delivered_total{sink=\"pager \\\"x\\\"\"} 3",
            "exposure_sink_pending{sink=\"pager \\\"x\\\"\"} 5",
            "exposure_kafka_partition_lag{partition=\"3\"} 0",
            "exposure_kafka_source_lag{source=\"raw/0\"} NaN",
            "exposure_kafka_source_lag{source=\"raw/1\"} 12",
            "exposure_outbox_max_bytes 1073741824",
            "# TYPE exposure_alerts counter",
            "exposure_alerts_total{status=\"open\",severity=\"critical\"} 2",
            "# TYPE exposure_sink_delivery_seconds histogram",
            "exposure_sink_delivery_seconds_count{sink=\"pager \\\"x\\\"\"} 2",
            "exposure_sink_delivery_seconds_sum{sink=\"pager \\\"x\\\"\"} 45.03",
            "exposure_sink_delivery_seconds_bucket{le=\"0.025\",sink=\"pager \\\"x\\\"\"} 0",
            "exposure_sink_delivery_seconds_bucket{le=\"0.05\",sink=\"pager \\\"x\\\"\"} 1",
            "exposure_sink_delivery_seconds_bucket{le=\"30.0\",sink=\"pager \\\"x\\\"\"} 1",
            "exposure_sink_delivery_seconds_bucket{le=\"+Inf\",sink=\"pager \\\"x\\\"\"} 2",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
