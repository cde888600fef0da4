//! `exposure learn` for a Kafka group: the baseline learned from history files is handed to
//! the group through its state topic, so that the `watch` instances of the group start with
//! it instead of learning for `learn`. The whole detector state is split by partition
//! ([`partition::split`](super::partition::split)) and written as the first state of every
//! partition, reading on from the repartition topic's current end.
//!
//! The check comes before the history is read ([`Handover::prepare`]): a group that already
//! has state is refused unless `--force`, so hours of replay are not spent to be refused.

use super::KafkaSettings;
use super::changelog::Changelog;
use super::partition::{PartitionState, split};
use crate::detect::snapshot::DetectorSnapshot;
use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer};
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
        let parts = split(whole, settings.partitions);
        let mut writes = Vec::with_capacity(parts.len());
        for (partition, mut detector) in (0..settings.partitions).zip(parts) {
            let tables = std::mem::take(&mut detector.tables);
            let population = std::mem::take(&mut detector.population);
            let state = PartitionState::learned(
                partition,
                settings.partitions,
                self.next_offsets[partition as usize],
                detector,
            );
            // A new lineage: whatever the topic held (--force) is not read again, and is
            // deleted by each partition's first checkpoint.
            let write = Changelog::fresh(Vec::new()).write_whole(
                state,
                tables,
                population,
                settings.state_record_bytes,
            );
            writes.push((partition, write));
        }
        let sizes = super::detect::send_writes(&producer, &state_topic, &writes)
            .context("cannot hand the learned states to the group")?;
        let bytes_written = sizes.iter().map(|(_, bytes)| bytes).sum();
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
