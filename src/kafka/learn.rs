//! `exposure learn` for a Kafka group: the baseline learned from history files is handed to
//! the group through its state topic, so that the `watch` instances of the group start with
//! it instead of learning for `learn`. The whole detector state is split by partition
//! ([`partition::split`](super::partition::split)) and written as the first state of every
//! partition, reading on from the repartition topic's current end.
//!
//! The check comes before the history is read ([`Handover::prepare`]): a group that already
//! has state is refused unless `--force`, so hours of replay are not spent to be refused.

use super::KafkaSettings;
use super::partition::{PartitionState, split};
use crate::detect::snapshot::DetectorSnapshot;
use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::Producer;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(30);

/// A group made ready to receive a learned baseline.
pub struct Handover {
    settings: KafkaSettings,
    /// Per partition: the repartition offset the learned state reads on from.
    next_offsets: Vec<i64>,
    /// Partitions whose existing state is replaced (`--force`).
    replaced: usize,
}

/// What was handed to the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandedOver {
    pub group: String,
    pub state_topic: String,
    pub partitions: i32,
    pub tables: usize,
    pub bytes: u64,
    /// Partitions whose earlier state was replaced.
    pub replaced: usize,
}

impl Handover {
    /// Creates the group's internal topics if missing and checks that it has no state yet
    /// (unless `force`: then the state is replaced; every instance of the group must be
    /// stopped, or the one owning a partition overwrites the learned state with its own).
    pub fn prepare(settings: &KafkaSettings, force: bool) -> anyhow::Result<Handover> {
        super::prepare_topics(settings)?;
        let probe: BaseConsumer = settings
            .consumer_config()
            .create()
            .context("cannot create a Kafka client (check [input.kafka.client])")?;
        let state_topic = settings.state_topic();
        let repartition = settings.repartition_topic();
        let mut next_offsets = Vec::new();
        let mut replaced = 0;
        for partition in 0..settings.partitions {
            let (low, high) = probe
                .fetch_watermarks(&state_topic, partition, TIMEOUT)
                .with_context(|| format!("cannot look up topic {state_topic}"))?;
            if high > low {
                if !force {
                    anyhow::bail!(
                        "group {} already has state (topic {state_topic}, partition {partition}): \
                         it has run before. --force replaces the state of every partition with \
                         the learned baseline (stop every instance of the group first)",
                        settings.group
                    );
                }
                replaced += 1;
            }
            let (_, end) = probe
                .fetch_watermarks(&repartition, partition, TIMEOUT)
                .with_context(|| format!("cannot look up topic {repartition}"))?;
            next_offsets.push(end);
        }
        Ok(Handover {
            settings: settings.clone(),
            next_offsets,
            replaced,
        })
    }

    /// Writes `whole`, split by partition, as every partition's state; returns once the
    /// broker has acknowledged all of them.
    pub fn write(self, whole: &DetectorSnapshot) -> anyhow::Result<HandedOver> {
        let settings = &self.settings;
        let state_topic = settings.state_topic();
        let producer = super::detect::state_producer(settings)?;
        let mut bytes_written = 0u64;
        let parts = split(whole, settings.partitions);
        for (partition, detector) in (0..settings.partitions).zip(parts) {
            let state = PartitionState::learned(
                partition,
                settings.partitions,
                self.next_offsets[partition as usize],
                detector,
            );
            bytes_written += super::detect::send_state(&producer, &state_topic, &state)?;
        }
        producer
            .flush(Duration::from_secs(60))
            .context("the broker did not acknowledge the learned states in time")?;
        Ok(HandedOver {
            group: settings.group.clone(),
            state_topic,
            partitions: settings.partitions,
            tables: whole.tables.len(),
            bytes: bytes_written,
            replaced: self.replaced,
        })
    }
}
