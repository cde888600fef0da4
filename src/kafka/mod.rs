//! `exposure watch` over Kafka: a Kafka application that scales out on consumer groups, the
//! way Kafka Streams applications do, with no coordinator of its own. Owns the `[input.kafka]`
//! settings, the client configuration, the internal topics and the wiring of the two stages
//! every instance runs:
//!
//! - [`ingest`]: consumes the raw log topics in the group `GROUP`, decodes each record with the
//!   one decoding pipeline ([`crate::format::Decoder`]) and re-publishes the events to the
//!   repartition topic `GROUP-repartition`, routed by table ([`record::partition_of`]),
//!   with progress markers that carry each source's event time;
//! - [`detect`]: consumes the repartition topic in the group `GROUP-detect`, one
//!   [`partition::PartitionDetector`] per assigned partition, checkpointed to the state topic
//!   `GROUP-state` (partition for partition) together with the offset it covers; a partition
//!   moved to another instance (rebalance, crash, scale up or down) is restored there from
//!   its last state. Alerts go to the instance's outbox and sinks, as in `watch` over files;
//! - [`learn`]: hands a baseline learned from history files to a group, through its state
//!   topic.
//!
//! docs/kafka.md is the reference for deploying it.

pub mod changelog;
pub mod detect;
pub mod ingest;
pub mod learn;
pub mod partition;
pub mod record;

pub use crate::config::kafka::{KafkaSection, KafkaSettings};

use crate::config::Config;
use crate::live::metrics::Metrics;
use crate::live::{Service, WatchOptions};
use anyhow::Context;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

/// Runs `exposure watch` over Kafka until SIGINT or SIGTERM.
pub fn watch(config: Config, options: WatchOptions) -> anyhow::Result<()> {
    let settings = config
        .kafka
        .clone()
        .expect("watch over Kafka is started with [input.kafka]");
    if !options.paths.is_empty() {
        anyhow::bail!(crate::config::ConfigError::Invalid {
            key: "input.kafka".into(),
            message: "reads Kafka: give no paths to watch as well".into(),
        });
    }
    let _lock = options.state_dir.lock()?;
    let sources = prepare_topics(&settings)?;
    tracing::info!(
        brokers = %settings.brokers, topics = ?settings.topics, group = %settings.group,
        sources = sources.len(), partitions = settings.partitions,
        "reading Kafka"
    );
    if config.check.endpoint {
        anyhow::bail!(crate::config::ConfigError::Invalid {
            key: "check.endpoint".into(),
            message: "the check endpoint answers from one detector's state: it is served by \
                      `watch` over files, not over Kafka (each instance holds some partitions); \
                      run `exposure check --state-dir` on a learned state instead"
                .into(),
        });
    }
    let metrics = Arc::new(Metrics::default());
    metrics.outbox_max_bytes.store(
        options.outbox_max_bytes,
        std::sync::atomic::Ordering::Relaxed,
    );
    let service = Service::start(
        &config,
        &options.state_dir,
        options.outbox_max_bytes,
        Arc::clone(&metrics),
    )?;
    service.run(
        options.metrics_addr,
        None,
        options.drain_timeout,
        move |journal, stop, ready| {
            let ingest_stop = Arc::new(AtomicBool::new(false));
            let ingest = {
                let config = config.clone();
                let settings = settings.clone();
                let metrics = Arc::clone(&metrics);
                let stop = Arc::clone(&ingest_stop);
                let from_beginning = options.from_beginning;
                std::thread::Builder::new()
                    .name("ingest".into())
                    .spawn(move || {
                        ingest::run(&config, &settings, from_beginning, &metrics, &stop)
                    })?
            };
            let detected = detect::run(
                &config,
                &settings,
                sources,
                journal,
                &metrics,
                detect::Run {
                    stop,
                    stop_ingest: &ingest_stop,
                    ingest_done: &|| ingest.is_finished(),
                    checkpoint_every: options.checkpoint_every,
                    ready,
                },
            );
            ingest_stop.store(true, Relaxed);
            let ingested = ingest
                .join()
                .map_err(|_| std::io::Error::other("the ingest thread panicked"))?;
            detected?;
            ingested
        },
    )
}

/// Creates the internal topics if they are missing and checks their partition count; returns
/// the sources (`topic/partition` of every raw topic partition).
pub(crate) fn prepare_topics(settings: &KafkaSettings) -> anyhow::Result<Vec<String>> {
    let probe: BaseConsumer = settings
        .consumer_config()
        .create()
        .context("cannot create a Kafka client (check [input.kafka.client])")?;
    let timeout = Duration::from_secs(30);
    let mut sources = Vec::new();
    for topic in &settings.topics {
        let metadata = probe
            .fetch_metadata(Some(topic), timeout)
            .with_context(|| {
                format!(
                    "cannot read the metadata of topic {topic} from {}",
                    settings.brokers
                )
            })?;
        let found = metadata.topics().iter().find(|t| t.name() == topic);
        match found {
            Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
                sources.extend(t.partitions().iter().map(|p| format!("{topic}/{}", p.id())));
            }
            _ => anyhow::bail!(
                "topic {topic} does not exist on {} (exposure reads it; it does not create it)",
                settings.brokers
            ),
        }
    }
    let admin: AdminClient<DefaultClientContext> = settings
        .client_config()
        .create()
        .context("cannot create a Kafka admin client")?;
    let internal = [settings.repartition_topic(), settings.state_topic()];
    let new: Vec<NewTopic<'_>> = internal
        .iter()
        .map(|name| {
            let topic = NewTopic::new(
                name,
                settings.partitions,
                TopicReplication::Fixed(settings.replication_factor),
            );
            if *name == settings.state_topic() {
                // Only the newest value of each key matters. A restore reads the partition from
                // its start, and compaction never touches the active segment: roll segments
                // hourly or at 64 MiB so that what a restore reads stays near the state's size.
                topic
                    .set("cleanup.policy", "compact")
                    .set("max.message.bytes", "67108864")
                    .set("segment.ms", "3600000")
                    .set("segment.bytes", "67108864")
                    .set("min.cleanable.dirty.ratio", "0.5")
            } else {
                topic
            }
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let created = runtime.block_on(admin.create_topics(
        new.iter(),
        &AdminOptions::new().operation_timeout(Some(timeout)),
    ));
    match created {
        Ok(results) => {
            for result in results {
                match result {
                    Ok(name) => {
                        tracing::info!(topic = %name, partitions = settings.partitions, "created")
                    }
                    Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
                    Err((name, code)) => anyhow::bail!("cannot create topic {name}: {code}"),
                }
            }
        }
        Err(e) => anyhow::bail!("cannot create the internal topics: {e}"),
    }
    for name in &internal {
        let count = (0..20)
            .find_map(|_| {
                let metadata = probe.fetch_metadata(Some(name), timeout).ok()?;
                let topic = metadata.topics().iter().find(|t| t.name() == name)?;
                let count = topic.partitions().len() as i32;
                if count == 0 {
                    std::thread::sleep(Duration::from_millis(250));
                    return None;
                }
                Some(count)
            })
            .with_context(|| {
                format!("topic {name} was created but does not show in the metadata")
            })?;
        if count != settings.partitions {
            anyhow::bail!(crate::config::ConfigError::Invalid {
                key: "input.kafka.partitions".into(),
                message: format!(
                    "is {}, but topic {name} has {count} partitions: the partition count is \
                     fixed once the internal topics exist (the state of each table lives in \
                     its partition)",
                    settings.partitions
                ),
            });
        }
    }
    Ok(sources)
}

/// One cycle of a stage's loop: polls `consumer` (waiting up to `first_wait` for the first
/// record) until `max` records or 20 ms, handing each record or error to `take` with the
/// stage (`stage` of the consumer's context) locked. Between polls the lock is free, so a
/// rebalance callback inside `poll` can take it.
pub(crate) fn poll_cycle<C, S>(
    consumer: &BaseConsumer<C>,
    stage: fn(&C) -> &std::sync::Mutex<S>,
    max: usize,
    first_wait: Duration,
    mut take: impl FnMut(&mut S, rdkafka::error::KafkaResult<rdkafka::message::BorrowedMessage<'_>>),
) where
    C: rdkafka::consumer::ConsumerContext,
{
    let cycle = std::time::Instant::now();
    let mut read = 0usize;
    let mut timeout = first_wait;
    while read < max && cycle.elapsed() < Duration::from_millis(20) {
        let Some(polled) = consumer.poll(timeout) else {
            break;
        };
        timeout = Duration::ZERO;
        read += usize::from(polled.is_ok());
        let mut stage = stage(consumer.context()).lock().expect("not poisoned");
        take(&mut stage, polled);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Span;

    fn section(extra: &str) -> KafkaSection {
        toml::from_str(&format!(
            "brokers = \"127.0.0.1:9092\"\ntopics = [\"logs\"]\ngroup = \"exposure\"\n{extra}"
        ))
        .unwrap()
    }

    fn error(extra: &str) -> (String, String) {
        KafkaSettings::from_section(&section(extra), Span::from_secs(300)).unwrap_err()
    }

    #[test]
    fn settings_default_and_name_the_internal_topics() {
        let settings = KafkaSettings::from_section(&section(""), Span::from_secs(300)).unwrap();
        assert_eq!(settings.partitions, 6);
        assert_eq!(settings.repartition_topic(), "exposure-repartition");
        assert_eq!(settings.state_topic(), "exposure-state");
        assert_eq!(settings.detect_group(), "exposure-detect");
        assert_eq!(
            settings.silence(),
            Duration::from_secs(300),
            "lateness, at least 60s"
        );
        let short = KafkaSettings::from_section(&section(""), Span::from_secs(2)).unwrap();
        assert_eq!(short.silence(), Duration::from_secs(60));
        let given = section("silence = \"5s\"");
        let given = KafkaSettings::from_section(&given, Span::from_secs(2)).unwrap();
        assert_eq!(given.silence(), Duration::from_secs(5));
    }

    #[test]
    fn each_client_gets_the_general_settings_and_only_its_own() {
        let section = section(
            "[client]\n\"security.protocol\" = \"SSL\"\n\"session.timeout.ms\" = \"6000\"\n\"linger.ms\" = \"50\"",
        );
        let settings = KafkaSettings::from_section(&section, Span::from_secs(300)).unwrap();
        let (consumer, producer, admin) = (
            settings.consumer_config(),
            settings.producer_config(),
            settings.client_config(),
        );
        for config in [&consumer, &producer, &admin] {
            assert_eq!(config.get("security.protocol"), Some("SSL"));
        }
        assert_eq!(consumer.get("session.timeout.ms"), Some("6000"));
        assert_eq!(consumer.get("linger.ms"), None);
        assert_eq!(producer.get("linger.ms"), Some("50"));
        assert_eq!(producer.get("session.timeout.ms"), None);
        assert_eq!(admin.get("linger.ms"), None);
        assert_eq!(admin.get("session.timeout.ms"), None);
    }

    #[test]
    fn bad_settings_name_their_key() {
        assert_eq!(error("partitions = 0").0, "partitions");
        assert_eq!(error("format = \"parquet\"").0, "format");
        assert_eq!(error("[client]\n\"group.id\" = \"x\"").0, "client.group.id");
        let (key, message) = error("[client]\n\"enable.auto.commit\" = \"true\"");
        assert_eq!(key, "client.enable.auto.commit");
        assert!(message.contains("set by exposure"), "{message}");
        let bad_group: KafkaSection =
            toml::from_str("brokers = \"b:9092\"\ntopics = [\"logs\"]\ngroup = \"a group\"")
                .unwrap();
        let (key, _) = KafkaSettings::from_section(&bad_group, Span::from_secs(1)).unwrap_err();
        assert_eq!(key, "group");
        let unknown = toml::from_str::<KafkaSection>(
            "brokers = \"b\"\ntopics = [\"t\"]\ngroup = \"g\"\nparitions = 3",
        );
        assert!(unknown.unwrap_err().to_string().contains("paritions"));
    }
}
