//! The ingest stage: consumes the raw log topics in the consumer group, decodes each record
//! with the one decoding pipeline, and re-publishes its events to the repartition topic,
//! routed by table. Beside the events it sends each partition progress markers: how far in
//! event time each source (raw topic partition) it reads has got, so the detect stage knows
//! when nothing older can come.
//!
//! Offsets of the raw topics are committed only once every event read before them is
//! acknowledged by the broker (idempotent producer): a crash repeats events, never loses one,
//! and the detect stage drops the repeats by their position.

use super::record::{BatchWriter, Position, Record, Router, SourceProgress};
use super::{KafkaSettings, poll_cycle};
use crate::config::Config;
use crate::event::{AccessEvent, PermissionChange};
use crate::format::vendor::NotAccess;
use crate::format::{DecodeSink, Decoder, Line, ParseError};
use crate::intake::{InputClock, Reports, SharedClock, ahead_of_wall};
use crate::live::metrics::{Metrics, SourceMetrics};
use crate::source::frame::Framer;
use crate::time::{Micros, Span, Ts};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often progress markers go out.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);
/// How often produced events are flushed and the raw offsets committed.
const COMMIT_EVERY: Duration = Duration::from_secs(1);
/// A batch record is sent once it holds this many events.
const BATCH_EVENTS: usize = 4096;

/// Counts deliveries the broker refused for good.
#[derive(Default, Clone)]
struct Deliveries(Arc<DeliveryFailures>);

#[derive(Default)]
struct DeliveryFailures {
    failed: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((error, _)) = result {
            self.0.failed.fetch_add(1, Relaxed);
            *self.0.last_error.lock().expect("not poisoned") = Some(error.to_string());
        }
    }
}

type Producer_ = ThreadedProducer<Deliveries>;

/// One raw topic partition being read.
struct Source {
    name: String,
    /// Frames each message's lines (one buffer, kept from message to message).
    framer: Framer,
    decoder: Decoder,
    /// One batch under way per repartition partition.
    batches: Vec<BatchWriter>,
    /// Where its events go, and which tables' first reads it has noted to every partition.
    router: Router,
    /// Its event time and when it was last read.
    input: InputClock,
    at_end: bool,
    /// The offset to commit: every record before it is decoded and its events sent.
    next_offset: Option<i64>,
    committed: Option<i64>,
    /// The partition's end offset when last asked (for the lag metric).
    end: Option<i64>,
}

impl Source {
    fn progress(&self, lateness: Duration, now: Instant) -> SourceProgress {
        let quiet = self.input.quiet(now);
        SourceProgress {
            source: self.name.clone(),
            watermark: self.input.watermark(now, self.at_end),
            newest: self.input.time.newest,
            // Quiet for `lateness`, whatever this instance read of it: an instance that took
            // the source over at its end has read nothing yet, but events older than the
            // other sources' time may still come (the previous owner's watermark holds).
            idle: self.at_end && quiet >= lateness,
        }
    }
}

/// Everything the stage holds, behind the consumer context so that a rebalance can flush and
/// commit what it read of the partitions it gives up.
struct Stage {
    config: Config,
    settings: KafkaSettings,
    repartition: String,
    producer: Producer_,
    deliveries: Deliveries,
    /// By topic, then partition (looked up per record without building a key).
    sources: HashMap<String, HashMap<i32, Source>>,
    metrics: Arc<Metrics>,
    reports: Reports,
    clock: SharedClock,
    dead_letters: u64,
}

struct IngestContext {
    stage: Mutex<Stage>,
}

impl ClientContext for IngestContext {
    /// The end of a partition is news to the loop, not an error.
    fn error(&self, error: KafkaError, reason: &str) {
        let end = matches!(
            error,
            KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF)
        );
        if !end {
            tracing::error!(error = %error, "kafka: {reason}");
        }
    }
}

impl ConsumerContext for IngestContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<IngestContext>, rebalance: &Rebalance<'_>) {
        let mut stage = self.stage.lock().expect("not poisoned");
        match rebalance {
            Rebalance::Revoke(partitions) => {
                // What was read of them is sent and committed before another instance takes
                // them over.
                if let Err(e) = stage.commit(consumer) {
                    tracing::error!(error = %e, "cannot commit before a rebalance; records after the last commit are read again by the next owner (repeats are dropped)");
                }
                let mut figures = stage.metrics.sources.lock().expect("not poisoned");
                for element in partitions.elements() {
                    figures.remove(&format!("{}/{}", element.topic(), element.partition()));
                }
                drop(figures);
                for element in partitions.elements() {
                    if let Some(topic) = stage.sources.get_mut(element.topic()) {
                        topic.remove(&element.partition());
                    }
                }
                tracing::info!(revoked = partitions.count(), "ingest: partitions revoked");
            }
            Rebalance::Assign(partitions) => {
                for element in partitions.elements() {
                    stage.source(element.topic(), element.partition());
                }
                tracing::info!(assigned = partitions.count(), "ingest: partitions assigned");
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "ingest: rebalance error"),
        }
    }
}

/// Runs the ingest stage until `stop` is set.
pub fn run(
    config: &Config,
    settings: &KafkaSettings,
    from_beginning: bool,
    metrics: &Arc<Metrics>,
    stop: &AtomicBool,
) -> io::Result<()> {
    let clock = crate::intake::system_clock();
    let deliveries = Deliveries::default();
    let producer: Producer_ = settings
        .producer_config()
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("message.max.bytes", "16777216")
        .create_with_context(deliveries.clone())
        .map_err(kafka_error("cannot create the ingest producer"))?;
    let stage = Stage {
        config: config.clone(),
        settings: settings.clone(),
        repartition: settings.repartition_topic(),
        producer,
        deliveries,
        sources: HashMap::new(),
        metrics: Arc::clone(metrics),
        reports: Reports::new(clock.clone()),
        clock,
        dead_letters: 0,
    };
    let consumer: BaseConsumer<IngestContext> = settings
        .consumer_config()
        .set("group.id", &settings.group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set(
            "auto.offset.reset",
            if from_beginning { "earliest" } else { "latest" },
        )
        .create_with_context(IngestContext {
            stage: Mutex::new(stage),
        })
        .map_err(kafka_error("cannot create the ingest consumer"))?;
    let topics: Vec<&str> = settings.topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&topics)
        .map_err(kafka_error("cannot subscribe to the raw topics"))?;

    let mut last_progress = Instant::now();
    let mut last_commit = Instant::now();
    while !stop.load(Relaxed) {
        poll_cycle(
            &consumer,
            |context| &context.stage,
            20_000,
            Duration::from_millis(20),
            |stage, polled| match polled {
                Ok(message) => stage.record(
                    message.topic(),
                    message.partition(),
                    message.offset(),
                    message.payload().unwrap_or_default(),
                ),
                Err(KafkaError::PartitionEOF(partition)) => {
                    for source in stage
                        .sources
                        .values_mut()
                        .filter_map(|t| t.get_mut(&partition))
                    {
                        source.at_end = true;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "ingest: reading the raw topics"),
            },
        );
        let mut stage = consumer.context().stage.lock().expect("not poisoned");
        stage.send_batches(false)?;
        if last_progress.elapsed() >= PROGRESS_EVERY {
            stage.send_progress()?;
            stage.publish_sources(&consumer);
            last_progress = Instant::now();
        }
        if last_commit.elapsed() >= COMMIT_EVERY {
            stage.commit(&consumer)?;
            last_commit = Instant::now();
        }
    }
    let mut stage = consumer.context().stage.lock().expect("not poisoned");
    stage.send_progress()?;
    stage.commit(&consumer)?;
    drop(stage);
    tracing::info!("ingest stopped; offsets committed");
    Ok(())
}

fn kafka_error(what: &'static str) -> impl Fn(KafkaError) -> io::Error {
    move |e| io::Error::other(format!("{what}: {e}"))
}

impl Stage {
    fn source(&mut self, topic: &str, partition: i32) -> &mut Source {
        if !self.sources.contains_key(topic) {
            self.sources.insert(topic.to_string(), HashMap::new());
        }
        let (config, partitions) = (&self.config, self.settings.partitions);
        let now = self.clock.now();
        let by_partition = self.sources.get_mut(topic).expect("just inserted");
        by_partition.entry(partition).or_insert_with(|| {
            let name = format!("{topic}/{partition}");
            let mut batches: Vec<BatchWriter> =
                (0..partitions).map(|_| BatchWriter::default()).collect();
            for batch in &mut batches {
                batch.start(&name);
            }
            let decoder = config.decoder();
            Source {
                name,
                framer: Framer::new(decoder.line_cap()),
                decoder,
                batches,
                router: Router::default(),
                input: InputClock::new(now),
                at_end: false,
                next_offset: None,
                committed: None,
                end: None,
            }
        })
    }

    /// Decodes one raw record and queues its events.
    fn record(&mut self, topic: &str, partition: i32, offset: i64, payload: &[u8]) {
        let lateness = self.config.detector.lateness.micros();
        let max_ahead = self.config.detector.max_ahead.micros();
        let metrics = Arc::clone(&self.metrics);
        let mut bad: Vec<(u64, ParseError)> = Vec::new();
        let mut quarantined = 0u64;
        let (now, wall) = (self.clock.now(), self.clock.wall());
        let source = self.source(topic, partition);
        source.at_end = false;
        source.input.read_at = now;
        let mut taking = Taking {
            source_name: &source.name,
            batches: &mut source.batches,
            router: &mut source.router,
            input: &mut source.input,
            offset,
            index: 0,
            lateness,
            max_ahead,
            wall,
            metrics: &metrics,
            bad: &mut bad,
            quarantined: &mut quarantined,
        };
        // One log record per message; a record of several lines (a pgaudit statement over
        // lines, a CloudTrail document) is decoded whole. Its lines are framed and capped as
        // a file's are, and all carry the message's offset.
        let decoder = &mut source.decoder;
        let mut decode = |line: Line<'_>| {
            if line != Line::Text(b"") {
                decoder.line(offset as u64, line, &mut taking);
            }
        };
        source
            .framer
            .push_each(payload, &mut |_, line| decode(line));
        if let Some((_, line)) = source.framer.finish() {
            decode(line);
        }
        source.decoder.finish(&mut taking);
        source.next_offset = Some(offset + 1);
        let full = source.batches.iter().any(|b| b.len() >= BATCH_EVENTS);
        let source_name = source.name.clone();
        if full && let Err(e) = self.send_batches(true) {
            tracing::error!(error = %e, "ingest: cannot send events");
        }
        if quarantined > 0 {
            metrics.intake.quarantined.fetch_add(quarantined, Relaxed);
            self.reports.report(|| {
                tracing::warn!(
                    source = %source_name, offset,
                    "quarantined: dated ahead of the wall clock (a wrong clock?); not used"
                )
            });
        }
        if !bad.is_empty() {
            self.bad_record(&source_name, offset, payload, &bad);
        }
    }

    /// A record that could not be decoded (in whole or part): counted, logged, and sent to
    /// the dead-letter topic when there is one.
    fn bad_record(
        &mut self,
        source: &str,
        offset: i64,
        payload: &[u8],
        errors: &[(u64, ParseError)],
    ) {
        for (_, error) in errors {
            self.metrics.intake.bad(error);
        }
        let (_, first) = &errors[0];
        self.reports.report(|| {
            tracing::warn!(
                source,
                offset,
                column = first.column(),
                kind = first.kind(),
                "skipped: {first}"
            )
        });
        if let Some(topic) = &self.settings.dead_letter_topic {
            let reason = first.to_string();
            let offset_text = offset.to_string();
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: "exposure.source",
                    value: Some(source),
                })
                .insert(Header {
                    key: "exposure.offset",
                    value: Some(&offset_text),
                })
                .insert(Header {
                    key: "exposure.error",
                    value: Some(&reason),
                });
            let record = BaseRecord::<(), [u8]>::to(topic)
                .payload(payload)
                .headers(headers);
            match send(&self.producer, record) {
                Ok(()) => self.dead_letters += 1,
                Err(e) => {
                    tracing::error!(error = %e, topic, "cannot send to the dead-letter topic")
                }
            }
        }
    }

    /// Sends the batches under way (all of them, or with `full_only` those that are full).
    fn send_batches(&mut self, full_only: bool) -> io::Result<()> {
        for source in self.sources.values_mut().flat_map(HashMap::values_mut) {
            for (partition, batch) in source.batches.iter_mut().enumerate() {
                if batch.is_empty() || (full_only && batch.len() < BATCH_EVENTS) {
                    continue;
                }
                let record = BaseRecord::<(), [u8]>::to(&self.repartition)
                    .partition(partition as i32)
                    .payload(batch.finish());
                send(&self.producer, record)?;
                batch.start(&source.name);
            }
        }
        Ok(())
    }

    /// Sends every partition how far each source read here has got.
    fn send_progress(&mut self) -> io::Result<()> {
        self.send_batches(false)?;
        let lateness = self.config.detector.lateness.to_std();
        let now = self.clock.now();
        let mut progress: Vec<SourceProgress> = self
            .sources
            .values()
            .flat_map(HashMap::values)
            .map(|s| s.progress(lateness, now))
            .collect();
        if progress.is_empty() {
            return Ok(());
        }
        progress.sort_by(|a, b| a.source.cmp(&b.source));
        let mut bytes = Vec::new();
        Record::Progress(progress).encode(&mut bytes);
        for partition in 0..self.settings.partitions {
            let record = BaseRecord::<(), [u8]>::to(&self.repartition)
                .partition(partition)
                .payload(&bytes);
            send(&self.producer, record)?;
        }
        Ok(())
    }

    /// Publishes each source's offset, lag and quiet time to the metrics.
    fn publish_sources(&self, consumer: &BaseConsumer<IngestContext>) {
        // Where the consumer stands on partitions not read from yet (its fetch position).
        let positions = consumer.position().unwrap_or_default();
        let now = self.clock.now();
        let mut figures = self.metrics.sources.lock().expect("not poisoned");
        for (topic, by_partition) in &self.sources {
            for (partition, source) in by_partition {
                // A partition taken over at its end has no position (nothing consumed since
                // it was assigned): at its end it stands where the partition ends.
                let offset = source
                    .next_offset
                    .or_else(
                        || match positions.find_partition(topic, *partition)?.offset() {
                            Offset::Offset(next) => Some(next),
                            _ => None,
                        },
                    )
                    .or_else(|| source.end.filter(|_| source.at_end));
                let high = source.end;
                figures.insert(
                    source.name.clone(),
                    SourceMetrics {
                        offset: offset.unwrap_or(-1),
                        lag: offset
                            .zip(high)
                            .map(|(offset, high)| (high - offset).max(0)),
                        quiet_seconds: source.input.quiet(now).as_secs_f64(),
                    },
                );
            }
        }
    }

    /// Waits until the broker has every event sent, then commits the raw offsets.
    fn commit(&mut self, consumer: &BaseConsumer<IngestContext>) -> io::Result<()> {
        self.send_batches(false)?;
        self.producer
            .flush(Duration::from_secs(60))
            .map_err(kafka_error(
                "the broker did not acknowledge the events in time",
            ))?;
        if self.deliveries.0.failed.load(Relaxed) > 0 {
            let error = self
                .deliveries
                .0
                .last_error
                .lock()
                .expect("not poisoned")
                .clone();
            return Err(io::Error::other(format!(
                "the broker refused events for the repartition topic ({}); stopping without \
                 committing, so that they are read again",
                error.unwrap_or_default()
            )));
        }
        let mut offsets = TopicPartitionList::new();
        let sources = self.sources.iter_mut().flat_map(|(topic, by_partition)| {
            by_partition
                .iter_mut()
                .map(move |(partition, s)| (topic, partition, s))
        });
        for (topic, partition, source) in sources {
            if let Some(next) = source.next_offset
                && source.committed != Some(next)
            {
                offsets
                    .add_partition_offset(topic, *partition, Offset::Offset(next))
                    .map_err(kafka_error("bad offset"))?;
                source.committed = Some(next);
            }
        }
        if offsets.count() > 0 {
            consumer
                .commit(&offsets, rdkafka::consumer::CommitMode::Sync)
                .map_err(kafka_error("cannot commit the raw offsets"))?;
        }
        self.ask_ends(consumer);
        Ok(())
    }

    /// Asks the broker where each source's partition ends (for the lag metric; a broker slow
    /// to answer leaves the last answer). A source read to its end needs no asking: its end is
    /// where it stands, which is the common case of a service keeping up.
    fn ask_ends(&mut self, consumer: &BaseConsumer<IngestContext>) {
        for (topic, by_partition) in &mut self.sources {
            for (partition, source) in by_partition.iter_mut() {
                if source.at_end && source.next_offset.is_some() {
                    source.end = source.next_offset;
                    continue;
                }
                if let Ok((_, high)) =
                    consumer.fetch_watermarks(topic, *partition, Duration::from_millis(200))
                {
                    source.end = Some(high);
                }
            }
        }
    }
}

/// Sends one record, waiting while the producer's queue is full.
fn send(producer: &Producer_, mut record: BaseRecord<'_, (), [u8]>) -> io::Result<()> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                std::thread::sleep(Duration::from_millis(2));
            }
            Err((e, _)) => return Err(io::Error::other(format!("cannot send a record: {e}"))),
        }
    }
}

/// Takes what the decoder gives for one raw record.
struct Taking<'a> {
    source_name: &'a str,
    batches: &'a mut [BatchWriter],
    router: &'a mut Router,
    input: &'a mut InputClock,
    offset: i64,
    index: u32,
    lateness: Micros,
    max_ahead: Micros,
    /// When the record was read, by the wall clock.
    wall: Ts,
    metrics: &'a Metrics,
    bad: &'a mut Vec<(u64, ParseError)>,
    quarantined: &'a mut u64,
}

impl Taking<'_> {
    /// Notes an event's time; `false` when it is quarantined.
    fn clock(&mut self, ts: Ts) -> bool {
        self.metrics.intake.events_read.fetch_add(1, Relaxed);
        if ahead_of_wall(ts, self.wall, self.max_ahead).is_some() {
            *self.quarantined += 1;
            return false;
        }
        // When the record was read is noted once, for the whole record.
        if let Some(disorder) = self.input.time.note(ts, self.lateness) {
            tracing::info!(
                source = self.source_name,
                disorder = %Span(disorder),
                "the source is out of order: its watermark now leaves it this much room"
            );
        }
        true
    }

    fn position(&mut self) -> Position {
        let position = Position {
            offset: self.offset,
            index: self.index,
        };
        self.index += 1;
        position
    }
}

impl DecodeSink for Taking<'_> {
    fn event(&mut self, _line: u64, event: &AccessEvent<'_>, read: bool) {
        if !self.clock(event.ts) || !read {
            return;
        }
        self.metrics.intake.reads.fetch_add(1, Relaxed);
        let position = self.position();
        self.router.read(
            self.batches,
            position,
            event.ts,
            &event.table,
            &event.principal,
        );
    }

    fn permission(&mut self, _line: u64, change: &PermissionChange) {
        if !self.clock(change.ts) {
            return;
        }
        self.metrics.intake.permission_changes.fetch_add(1, Relaxed);
        let position = self.position();
        self.router.change(self.batches, position, change);
    }

    fn not_access(&mut self, _line: u64, _why: NotAccess) {
        self.metrics.intake.not_access.fetch_add(1, Relaxed);
    }

    fn malformed(&mut self, line: u64, error: ParseError) {
        self.bad.push((line, error));
    }

    fn notice(&mut self, _line: u64, message: &str) {
        tracing::warn!(source = self.source_name, offset = self.offset, "{message}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::decode::LineCap;
    use crate::intake::SETTLE;
    use crate::watermark::InputTime;

    fn source(newest: Option<Ts>, at_end: bool, quiet: Duration) -> Source {
        Source {
            name: "raw/0".into(),
            framer: Framer::new(LineCap::new(crate::format::Format::Auto, 1 << 20)),
            decoder: Config::build(Default::default(), &Default::default(), None)
                .unwrap()
                .decoder(),
            batches: Vec::new(),
            router: Router::default(),
            input: InputClock {
                time: InputTime {
                    newest,
                    disorder: 0,
                },
                read_at: Instant::now() - quiet,
            },
            at_end,
            next_offset: None,
            committed: None,
            end: None,
        }
    }

    #[test]
    fn a_source_taken_over_at_its_end_holds_time_until_quiet_for_lateness() {
        let lateness = Duration::from_secs(600);
        // Just assigned, at its end, nothing read by this instance: the previous owner's
        // watermark must keep holding, so not idle.
        let fresh =
            source(None, true, Duration::from_millis(100)).progress(lateness, Instant::now());
        assert!(!fresh.idle);
        assert_eq!(fresh.watermark, None);
        let quiet = source(None, true, lateness).progress(lateness, Instant::now());
        assert!(quiet.idle);
        // Reading: never idle; at its end and quiet for a moment: settled one instant on.
        let reading = source(Some(5), false, lateness).progress(lateness, Instant::now());
        assert!(!reading.idle);
        assert_eq!(reading.watermark, Some(5));
        let settled = source(Some(5), true, SETTLE).progress(lateness, Instant::now());
        assert_eq!(settled.watermark, Some(6));
        assert!(!settled.idle);
    }
}
