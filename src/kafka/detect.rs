//! The detect stage: consumes the repartition topic in the group `GROUP-detect`, one
//! [`PartitionDetector`] per assigned partition. When the group assigns it a partition it
//! restores that partition's last state from the state topic (its changelog records, see
//! [`changelog`]) and reads on from the offset the state covers; when it
//! gives one up (rebalance, clean stop) it writes what changed first. Checkpoints are written
//! every `--checkpoint-every` too, and the group offsets committed only once the state they
//! belong to is acknowledged. Alerts go to this instance's journal.

use super::changelog::{self, StateRecord, StateWrite};
use super::partition::PartitionDetector;
use super::record::Record;
use super::{KafkaSettings, poll_cycle};
use crate::config::Config;
use crate::detect::Alert;
use crate::intake::Reports;
use crate::live::journal::AlertJournal;
use crate::live::metrics::Metrics;
use crate::time::Span;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, PurgeConfig};
use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a partition's state is waited for before the instance gives up (inside the
/// consumer's default `max.poll.interval.ms` of five minutes, which a restore runs within).
const STATE_DEADLINE: Duration = Duration::from_secs(240);
/// How often a slow restore is reported while it waits.
const STATE_PATIENCE: Duration = Duration::from_secs(30);

/// How the stage runs and stops.
pub struct Run<'a> {
    pub stop: &'a AtomicBool,
    /// Set to stop the ingest stage first on a clean stop.
    pub stop_ingest: &'a AtomicBool,
    pub ingest_done: &'a dyn Fn() -> bool,
    pub checkpoint_every: Duration,
    pub ready: Box<dyn FnOnce() + Send>,
}

struct Stage {
    config: Config,
    settings: KafkaSettings,
    state_topic: String,
    repartition: String,
    /// Every raw topic partition: each holds time back until heard of.
    sources: Vec<String>,
    owned: BTreeMap<i32, PartitionDetector>,
    /// Partitions just revoked, kept in case the new assignment gives them back.
    parked: BTreeMap<i32, PartitionDetector>,
    journal: AlertJournal,
    alerts: Vec<Alert>,
    producer: BaseProducer,
    reader: BaseConsumer,
    metrics: Arc<Metrics>,
    reports: Reports,
    assigned_once: bool,
    /// A failure inside a rebalance callback, raised by the main loop.
    failed: Option<io::Error>,
}

struct DetectContext {
    stage: Mutex<Stage>,
}

impl ClientContext for DetectContext {}

impl ConsumerContext for DetectContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<DetectContext>,
        err: RDKafkaRespErr,
        partitions: &mut TopicPartitionList,
    ) {
        let mut stage = self.stage.lock().expect("not poisoned");
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let mut assigned = TopicPartitionList::new();
                for element in partitions.elements() {
                    let partition = element.partition();
                    let next = match stage.take_over(partition) {
                        Ok(next) => next,
                        Err(e) => {
                            stage.failed.get_or_insert(e);
                            return;
                        }
                    };
                    let offset = if next > 0 {
                        Offset::Offset(next)
                    } else {
                        Offset::Beginning
                    };
                    let _ = assigned.add_partition_offset(element.topic(), partition, offset);
                }
                // What was parked and not given back is another instance's now.
                stage.parked.clear();
                if let Err(e) = consumer.assign(&assigned) {
                    stage.failed.get_or_insert(io::Error::other(format!(
                        "cannot take the assignment: {e}"
                    )));
                }
                let owned: Vec<i32> = stage.owned.keys().copied().collect();
                tracing::info!(partitions = ?owned, "detect: partitions assigned and restored");
                stage.assigned_once = true;
                stage.publish_partitions();
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let revoked: Vec<i32> = partitions
                    .elements()
                    .iter()
                    .map(|e| e.partition())
                    .collect();
                if let Err(e) = stage.checkpoint(consumer, Some(&revoked)) {
                    tracing::error!(error = %e, "cannot write the state of revoked partitions; their next owner resumes from the last state written (alerts since are raised again, with the same ids)");
                }
                for partition in revoked {
                    if let Some(detector) = stage.owned.remove(&partition) {
                        stage.parked.insert(partition, detector);
                    }
                }
                let _ = consumer.unassign();
                tracing::info!("detect: partitions revoked");
                stage.publish_partitions();
            }
            other => tracing::warn!(error = ?other, "detect: rebalance error"),
        }
    }
}

/// Runs the detect stage until `run.stop` is set.
pub fn run(
    config: &Config,
    settings: &KafkaSettings,
    sources: Vec<String>,
    journal: AlertJournal,
    metrics: &Arc<Metrics>,
    run: Run<'_>,
) -> io::Result<()> {
    let producer = state_producer(settings)?;
    let reader = state_reader(settings)?;
    let stage = Stage {
        config: config.clone(),
        settings: settings.clone(),
        state_topic: settings.state_topic(),
        repartition: settings.repartition_topic(),
        sources,
        owned: BTreeMap::new(),
        parked: BTreeMap::new(),
        journal,
        alerts: Vec::new(),
        producer,
        reader,
        metrics: Arc::clone(metrics),
        reports: Reports::new(crate::intake::system_clock()),
        assigned_once: false,
        failed: None,
    };
    let consumer: BaseConsumer<DetectContext> = settings
        .consumer_config()
        .set("group.id", settings.detect_group())
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.max.bytes", "134217728")
        .create_with_context(DetectContext {
            stage: Mutex::new(stage),
        })
        .map_err(kafka_error("cannot create the detect consumer"))?;
    consumer
        .subscribe(&[&settings.repartition_topic()])
        .map_err(kafka_error("cannot subscribe to the repartition topic"))?;

    let mut ready = Some(run.ready);
    let mut last_checkpoint = Instant::now();
    let mut stopping_since: Option<Instant> = None;
    loop {
        poll_cycle(
            &consumer,
            |context| &context.stage,
            10_000,
            Duration::from_millis(10),
            |stage, polled| match polled {
                Ok(message) => stage.take(
                    message.partition(),
                    message.offset(),
                    message.payload().unwrap_or_default(),
                ),
                Err(KafkaError::PartitionEOF(_)) => {}
                Err(e) => tracing::warn!(error = %e, "detect: reading the repartition topic"),
            },
        );
        let mut stage = consumer.context().stage.lock().expect("not poisoned");
        if let Some(e) = stage.failed.take() {
            return Err(e);
        }
        stage.advance();
        stage.journal()?;
        stage.journal.tidy()?;
        if stage.assigned_once
            && let Some(ready) = ready.take()
        {
            stage.metrics.ready.store(true, Relaxed);
            ready();
        }
        if last_checkpoint.elapsed() >= run.checkpoint_every {
            stage.checkpoint(&consumer, None)?;
            last_checkpoint = Instant::now();
        }
        stage.publish_partitions();
        drop(stage);
        // A clean stop: the ingest stage stops first (what it read is sent and committed);
        // what it sent is taken for a moment longer, then every state is written.
        if run.stop.load(Relaxed) {
            run.stop_ingest.store(true, Relaxed);
            let since = *stopping_since.get_or_insert_with(Instant::now);
            if ((run.ingest_done)() && since.elapsed() >= Duration::from_millis(300))
                || since.elapsed() >= Duration::from_secs(10)
            {
                break;
            }
        }
    }
    let mut stage = consumer.context().stage.lock().expect("not poisoned");
    stage.checkpoint(&consumer, None)?;
    drop(stage);
    tracing::info!("detect stopped; every partition's state written");
    Ok(())
}

/// The producer of partition states (compressed, never duplicated, in order).
pub fn state_producer(settings: &KafkaSettings) -> io::Result<BaseProducer> {
    settings
        .producer_config()
        .set("enable.idempotence", "true")
        .set("compression.type", "lz4")
        .set("message.max.bytes", "67108864")
        .create()
        .map_err(kafka_error("cannot create the state producer"))
}

/// Queues `write`'s records (not its head) for partition `partition` of the state topic;
/// returns their bytes. A full queue is waited on. The caller flushes the producer before
/// counting on them.
fn send_records(
    producer: &BaseProducer,
    state_topic: &str,
    partition: i32,
    records: &[StateRecord],
) -> io::Result<u64> {
    let mut bytes = 0;
    for record in records {
        loop {
            let mut sent = BaseRecord::to(state_topic)
                .partition(partition)
                .key(&record.key);
            if let Some(value) = &record.value {
                sent = sent.payload(value);
            }
            match producer.send::<String, Vec<u8>>(sent) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    producer.poll(Duration::from_millis(100));
                }
                Err((e, _)) => {
                    return Err(io::Error::other(format!(
                        "cannot write the state of partition {partition}: {e}"
                    )));
                }
            }
        }
        bytes += record.bytes() as u64;
    }
    Ok(bytes)
}

/// Sends the records of each of `writes` (partition, checkpoint), waits for them, then sends
/// their heads and waits for those: a head is only ever written after every record it
/// covers. Returns the bytes written per partition.
pub fn send_writes(
    producer: &BaseProducer,
    state_topic: &str,
    writes: &[(i32, StateWrite)],
) -> io::Result<Vec<(i32, u64)>> {
    let acknowledged = |what: &'static str| {
        producer
            .flush(Duration::from_secs(60))
            .map_err(kafka_error(what))
    };
    let mut sizes = Vec::with_capacity(writes.len());
    for (partition, write) in writes {
        send_records(producer, state_topic, *partition, &write.records)?;
        sizes.push((*partition, write.bytes()));
    }
    acknowledged("the broker did not acknowledge the partition states in time")?;
    for (partition, write) in writes {
        send_records(
            producer,
            state_topic,
            *partition,
            std::slice::from_ref(&write.head),
        )?;
    }
    acknowledged("the broker did not acknowledge the partition states' heads in time")?;
    Ok(sizes)
}

/// A partition's records of the state topic, as [`changelog::restore`] takes them.
pub type StateLog = Vec<(i64, String, Option<Vec<u8>>)>;

/// Every record of `partition` of `state_topic`, in offset order, and their bytes, read with
/// `reader` (a consumer with `enable.partition.eof`, assigned nothing). A broker slow to serve
/// them is waited for (with a warning every 30 s) up to 4 minutes,
/// inside the group's rebalance limit: giving up sooner would leave the partition to yet
/// another rebalance.
pub fn read_partition(
    reader: &BaseConsumer,
    state_topic: &str,
    partition: i32,
) -> io::Result<(StateLog, u64)> {
    let (low, high) = reader
        .fetch_watermarks(state_topic, partition, STATE_PATIENCE)
        .map_err(kafka_error("cannot look up the state topic"))?;
    let mut records = Vec::new();
    let mut bytes = 0u64;
    if high <= low {
        return Ok((records, bytes));
    }
    let newest = high - 1;
    let mut at = TopicPartitionList::new();
    at.add_partition_offset(state_topic, partition, Offset::Offset(low))
        .map_err(kafka_error("bad offset"))?;
    reader
        .assign(&at)
        .map_err(kafka_error("cannot read the state topic"))?;
    let started = Instant::now();
    let mut warned = Duration::ZERO;
    let result = loop {
        let waited = started.elapsed();
        if waited >= STATE_DEADLINE {
            break Err(io::Error::other(format!(
                "the state of partition {partition} (offsets {low} to {newest}) did not arrive \
                 within {STATE_DEADLINE:?} ({} records read)",
                records.len()
            )));
        }
        if waited >= warned + STATE_PATIENCE {
            warned = waited;
            tracing::warn!(
                partition, offset = newest, read = records.len(),
                waited = %Span(waited.as_micros() as i64),
                "still waiting for the partition's state from the broker"
            );
        }
        match reader.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                let key = String::from_utf8_lossy(message.key().unwrap_or_default());
                let value = message.payload().map(<[u8]>::to_vec);
                bytes += (key.len() + value.as_ref().map_or(0, Vec::len)) as u64;
                records.push((message.offset(), key.into_owned(), value));
                // A broker whose end offset lags may serve more than asked for.
                if message.offset() >= newest {
                    break Ok(());
                }
            }
            Some(Err(KafkaError::PartitionEOF(_))) if !records.is_empty() => break Ok(()),
            Some(Err(KafkaError::PartitionEOF(_))) | None => {}
            Some(Err(e)) => tracing::warn!(error = %e, "reading the state topic"),
        }
    };
    let _ = reader.unassign();
    result.map(|()| (records, bytes))
}

/// A consumer to read state topic partitions with ([`read_partition`]).
pub fn state_reader(settings: &KafkaSettings) -> io::Result<BaseConsumer> {
    settings
        .consumer_config()
        .set("group.id", format!("{}-restore", settings.group))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("fetch.max.bytes", "134217728")
        .set("max.partition.fetch.bytes", "134217728")
        .create()
        .map_err(kafka_error("cannot create the state reader"))
}

fn kafka_error(what: &'static str) -> impl Fn(KafkaError) -> io::Error {
    move |e| io::Error::other(format!("{what}: {e}"))
}

impl Stage {
    /// One record of partition `partition` at `offset`.
    fn take(&mut self, partition: i32, offset: i64, payload: &[u8]) {
        let Some(detector) = self.owned.get_mut(&partition) else {
            return;
        };
        match Record::decode(payload) {
            Ok(Record::Events(batch)) => {
                let taken = detector.take_events(offset, &batch, &mut self.alerts);
                if taken.late > 0 {
                    self.metrics.intake.late.fetch_add(taken.late, Relaxed);
                    self.reports.report(|| {
                        tracing::warn!(
                            partition, offset, source = %batch.source, late = taken.late,
                            "late events not used (older than the partition's watermark: their \
                             source lagged more than the others allowed)"
                        )
                    });
                }
            }
            Ok(Record::Progress(progress)) => detector.take_progress(offset, &progress),
            Err(e) => {
                detector.skip(offset);
                self.metrics.intake.malformed.fetch_add(1, Relaxed);
                self.reports.report(|| {
                    tracing::warn!(partition, offset, "skipped a repartition record: {e}")
                });
            }
        }
    }

    fn advance(&mut self) {
        let lateness = self.config.detector.lateness.to_std();
        let silence = self.settings.silence();
        for detector in self.owned.values_mut() {
            detector.advance(silence, lateness, &mut self.alerts);
        }
    }

    fn journal(&mut self) -> io::Result<()> {
        self.journal.journal(&mut self.alerts)
    }

    /// Restores partition `partition` (from what was parked, the state topic, or afresh) and
    /// returns the offset to read it from.
    fn take_over(&mut self, partition: i32) -> io::Result<i64> {
        let detector = match self.parked.remove(&partition) {
            Some(detector) if !detector.uncertain() => detector,
            _ => self.restore(partition)?,
        };
        let next = detector.next_offset();
        self.owned.insert(partition, detector);
        Ok(next)
    }

    fn restore(&mut self, partition: i32) -> io::Result<PartitionDetector> {
        let settings = self.config.detector.clone();
        let started = Instant::now();
        let (records, bytes) = read_partition(&self.reader, &self.state_topic, partition)?;
        let count = records.len();
        let restored = changelog::restore(partition, self.settings.partitions, records)
            .map_err(io::Error::other)?;
        let Some(state) = restored.state else {
            tracing::info!(partition, "no state: the partition starts afresh");
            let mut detector =
                PartitionDetector::new(partition, self.settings.partitions, settings)
                    .with_changelog(restored.changelog);
            detector.expect(self.sources.iter().cloned());
            return Ok(detector);
        };
        let mut detector =
            PartitionDetector::restore(&state, settings).with_changelog(restored.changelog);
        detector.expect(self.sources.iter().cloned());
        self.journal.remember(state.emitted.iter().cloned());
        tracing::info!(
            partition, next_offset = state.next_offset, written_at = %state.written_at,
            tables = state.detector.tables.len(), records = count, bytes,
            took = %Span(started.elapsed().as_micros() as i64),
            migrated = restored.migrated,
            "restored the partition's state"
        );
        if restored.migrated {
            tracing::warn!(
                partition,
                "the partition's state was one record of an earlier release: it is written \
                 as changelog records at the next checkpoint, and that record deleted after"
            );
        }
        Ok(detector)
    }

    /// Writes the state of the owned partitions (`only`: of these) to the state topic, waits
    /// for the broker to have them, then commits their offsets.
    fn checkpoint(
        &mut self,
        consumer: &BaseConsumer<DetectContext>,
        only: Option<&[i32]>,
    ) -> io::Result<()> {
        self.journal()?;
        let mut offsets = TopicPartitionList::new();
        let mut writes = Vec::new();
        let record_bytes = self.settings.state_record_bytes;
        let journal = &self.journal;
        for (partition, detector) in &mut self.owned {
            if only.is_some_and(|only| !only.contains(partition)) {
                continue;
            }
            let write = detector.write_state(|open| journal.emitted_keys_of(open), record_bytes);
            writes.push((*partition, write));
            let _ = offsets.add_partition_offset(
                &self.repartition,
                *partition,
                Offset::Offset(detector.next_offset()),
            );
        }
        let sizes = match send_writes(&self.producer, &self.state_topic, &writes) {
            Ok(sizes) => sizes,
            Err(e) => {
                // What reached the broker is unknown: only a restore from it goes on safely.
                self.producer
                    .purge(PurgeConfig::default().queue().inflight());
                for (partition, _) in &writes {
                    if let Some(detector) = self.owned.get_mut(partition) {
                        detector.failed();
                    }
                }
                return Err(e);
            }
        };
        for (partition, write) in writes {
            if let Some(detector) = self.owned.get_mut(&partition) {
                detector.committed(write);
            }
        }
        if offsets.count() > 0 {
            // The offsets only matter for lag: each state holds the offset it resumes from.
            if let Err(e) = consumer.commit(&offsets, rdkafka::consumer::CommitMode::Sync) {
                tracing::warn!(error = %e, "cannot commit the detect offsets (the states hold them)");
            }
        }
        let now = chrono::Utc::now().timestamp_micros();
        {
            let mut figures = self.metrics.partitions.lock().expect("not poisoned");
            for (partition, bytes) in sizes {
                let entry = figures.entry(partition).or_default();
                entry.state_bytes = bytes;
                entry.checkpoint_at_us = now;
                if let Ok((_, high)) = consumer.fetch_watermarks(
                    &self.repartition,
                    partition,
                    Duration::from_millis(500),
                ) && let Some(detector) = self.owned.get(&partition)
                {
                    entry.lag = (high - detector.next_offset()).max(0);
                }
            }
        }
        self.metrics.checkpoint_at_us.store(now, Relaxed);
        self.journal.after_checkpoint()?;
        Ok(())
    }

    /// Per-partition figures for `/metrics`.
    fn publish_partitions(&self) {
        let mut figures = self.metrics.partitions.lock().expect("not poisoned");
        figures.retain(|p, _| self.owned.contains_key(p));
        let mut open = 0;
        let mut newest = None;
        for (partition, detector) in &self.owned {
            let counts = detector.counts();
            let entry = figures.entry(*partition).or_default();
            entry.events = counts.events;
            entry.repeats = counts.repeats;
            entry.watermark_us = detector.detector().watermark();
            open += detector.detector().open_windows();
            newest = newest.max(detector.detector().newest_event());
        }
        self.metrics.open_windows.store(open as u64, Relaxed);
        if let Some(newest) = newest {
            self.metrics.newest_event_us.store(newest, Relaxed);
        }
    }
}
