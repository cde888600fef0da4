//! The metrics of `exposure watch`: counters the detection loop and the sinks bump (lock-free
//! atomics), rendered as OpenMetrics text by the `prometheus-client` crate on each scrape of
//! `GET /metrics` (served by [`super::server`]): the figures are read once into plain values,
//! then encoded by a [`Collector`].

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
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
        let counts: [(&'static str, &'static str, &'static str, &AtomicU64); 16] = [
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
        ]);
        let sinks = self.sinks.lock().expect("not poisoned");
        let journaled = self.journaled.load(Relaxed);
        let rows: Vec<(String, &SinkMetrics)> =
            sinks.iter().map(|(n, m)| (n.clone(), &**m)).collect();
        let sink_families: [LabelledFamily<SinkMetrics>; 4] = [
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
        ];
        labelled(&mut families, "sink", &rows, &sink_families);
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
                    "Size of the partition's last checkpoint.",
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
            labelled(&mut families, "partition", &rows, &partition_families);
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
            labelled(&mut families, "source", &rows, &source_families);
        }
        Figures(families)
    }
}

/// One sample's value: a count (counters, integral gauges) or a level (gauges that may be
/// `NaN`: "not yet").
#[derive(Debug, Clone, Copy, PartialEq)]
enum Sample {
    Count(u64),
    /// An integral gauge that may be negative (an offset, a lag).
    Int(i64),
    Level(f64),
}

/// One metric family as read at a scrape: its name after `exposure_` (a counter's without the
/// `_total` the encoding adds), whether it is a counter, its help, and its samples, each with
/// its label value (`None`: unlabelled).
#[derive(Debug)]
struct Family {
    name: &'static str,
    counter: bool,
    help: &'static str,
    label: &'static str,
    samples: Vec<(Option<String>, Sample)>,
}

impl Family {
    /// An unlabelled family of one sample; a name ending in `_total` is a counter's.
    fn one(name: &'static str, counter: bool, help: &'static str, sample: Sample) -> Family {
        Family {
            name: name.strip_suffix("_total").unwrap_or(name),
            counter,
            help,
            label: "",
            samples: vec![(None, sample)],
        }
    }
}

/// A labelled family: its full name (`_total`: a counter), help, and each row's sample.
type LabelledFamily<'a, T> = (&'static str, &'static str, &'a dyn Fn(&T) -> Sample);

/// Adds one family per entry of `of`, with a sample per row labelled `label="row key"`.
fn labelled<T>(
    families: &mut Vec<Family>,
    label: &'static str,
    rows: &[(String, &T)],
    of: &[LabelledFamily<'_, T>],
) {
    for (name, help, get) in of {
        let counter = name.ends_with("_total");
        families.push(Family {
            name: name.strip_suffix("_total").unwrap_or(name),
            counter,
            help,
            label,
            samples: rows
                .iter()
                .map(|(key, figures)| (Some(key.clone()), get(figures)))
                .collect(),
        });
    }
}

/// The figures of one scrape, encoded by `prometheus-client`.
#[derive(Debug)]
struct Figures(Vec<Family>);

impl Sample {
    fn encode(
        self,
        counter: bool,
        encoder: prometheus_client::encoding::MetricEncoder<'_>,
    ) -> std::fmt::Result {
        match (self, counter) {
            (Sample::Count(n), true) => ConstCounter::new(n).encode(encoder),
            (Sample::Level(x), true) => ConstCounter::new(x).encode(encoder),
            (Sample::Count(n), false) => ConstGauge::new(n).encode(encoder),
            (Sample::Int(n), true) => ConstCounter::new(n.max(0) as u64).encode(encoder),
            (Sample::Int(n), false) => ConstGauge::new(n).encode(encoder),
            (Sample::Level(x), false) => ConstGauge::new(x).encode(encoder),
        }
    }
}

impl Collector for Figures {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        for family in &self.0 {
            let kind = if family.counter {
                MetricType::Counter
            } else {
                MetricType::Gauge
            };
            let mut metric = encoder.encode_descriptor(family.name, family.help, None, kind)?;
            for (key, sample) in &family.samples {
                match key {
                    None => sample.encode(family.counter, metric.encode_family(&NO_LABELS)?)?,
                    Some(key) => {
                        let labels = [(family.label, key.as_str())];
                        sample.encode(family.counter, metric.encode_family(&labels)?)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// The label set of an unlabelled sample.
const NO_LABELS: [(&str, &str); 0] = [];

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
        metrics.journaled.store(5, Relaxed);
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
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
