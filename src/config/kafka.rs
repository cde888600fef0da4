//! `[input.kafka]`: where `exposure watch` reads Kafka, as written and validated, and the
//! librdkafka client configuration made from it (used by `watch` over Kafka, src/kafka).

use crate::format::Format;
use crate::time::Span;
use rdkafka::ClientConfig;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// `[input.kafka]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSection {
    /// `host:port[,host:port…]`.
    pub brokers: String,
    /// The raw log topics.
    pub topics: Vec<String>,
    /// The consumer group; the internal topics and the detect group are named from it.
    pub group: String,
    /// The format of the records (default: `[input] format`); one log record per message.
    pub format: Option<Format>,
    /// Partitions of the repartition and state topics (default 6): the most instances that
    /// share detection. Fixed once the topics exist.
    pub partitions: Option<i32>,
    /// Replication factor of the internal topics when this instance creates them (default:
    /// the broker's default).
    pub replication_factor: Option<i32>,
    /// Where undecodable records go (`topic`), with headers saying where they came from and
    /// why; without it they are counted and logged.
    pub dead_letter_topic: Option<String>,
    /// How long a source not heard of holds time back (default: `lateness`, at least 60s —
    /// longer than the group takes to hand a dead instance's partitions to another).
    pub silence: Option<Span>,
    /// The most bytes (key and value) of one record of the state topic (default 1000000,
    /// under Kafka's default message size): a partition's state is cut into records no
    /// larger (docs/kafka.md).
    pub state_record_bytes: Option<u64>,
    /// librdkafka settings passed through as is (TLS, SASL, timeouts), e.g.
    /// `"security.protocol" = "SASL_SSL"`.
    #[serde(default)]
    pub client: BTreeMap<String, String>,
}

/// `[input.kafka]`, validated.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    pub brokers: String,
    pub topics: Vec<String>,
    pub group: String,
    pub partitions: i32,
    pub replication_factor: i32,
    pub dead_letter_topic: Option<String>,
    /// See [`KafkaSection::silence`]; resolved against `lateness` by [`KafkaSettings::silence`].
    silence: Option<Span>,
    lateness: Duration,
    pub state_record_bytes: usize,
    pub client: BTreeMap<String, String>,
}

/// `state_record_bytes` by default: under Kafka's default message size (1 MB).
pub const DEFAULT_STATE_RECORD_BYTES: u64 = 1_000_000;
/// The largest `state_record_bytes`: half the state topic's and producer's message size.
pub const MAX_STATE_RECORD_BYTES: u64 = 32 * 1024 * 1024;

/// Client settings exposure sets itself: given in `client`, they are refused.
const MANAGED: &[&str] = &[
    "bootstrap.servers",
    "metadata.broker.list",
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "auto.offset.reset",
    "enable.partition.eof",
    "enable.idempotence",
    "isolation.level",
];

impl KafkaSettings {
    /// Validates a section; an error names the key (under `input.kafka.`) and what is wrong.
    pub fn from_section(
        section: &KafkaSection,
        lateness: Span,
    ) -> Result<KafkaSettings, (String, String)> {
        let bad = |key: &str, message: &str| Err((key.to_string(), message.to_string()));
        if section.brokers.trim().is_empty() {
            return bad("brokers", "is empty (host:port[,host:port…])");
        }
        if section.topics.is_empty() || section.topics.iter().any(|t| t.trim().is_empty()) {
            return bad("topics", "needs at least one topic name, none empty");
        }
        if section.group.trim().is_empty() || !section.group.chars().all(topic_char) {
            return bad(
                "group",
                "needs letters, digits, '.', '_' or '-' (the internal topics are named from it)",
            );
        }
        if section.format == Some(Format::Parquet) {
            return bad(
                "format",
                "Parquet is files, not records; give a line format",
            );
        }
        let partitions = section.partitions.unwrap_or(6);
        if !(1..=10_000).contains(&partitions) {
            return bad("partitions", "must be between 1 and 10000");
        }
        let state_record_bytes = section
            .state_record_bytes
            .unwrap_or(DEFAULT_STATE_RECORD_BYTES);
        if !(4096..=MAX_STATE_RECORD_BYTES).contains(&state_record_bytes) {
            return bad(
                "state_record_bytes",
                "must be between 4096 and 33554432 (and under the state topic's max.message.bytes)",
            );
        }
        if let Some(key) = section
            .client
            .keys()
            .find(|k| MANAGED.contains(&k.as_str()))
        {
            return Err((
                format!("client.{key}"),
                "is set by exposure itself (brokers, group, --from-beginning)".to_string(),
            ));
        }
        Ok(KafkaSettings {
            brokers: section.brokers.clone(),
            topics: section.topics.clone(),
            group: section.group.clone(),
            partitions,
            replication_factor: section.replication_factor.unwrap_or(-1),
            dead_letter_topic: section.dead_letter_topic.clone(),
            silence: section.silence,
            lateness: lateness.to_std(),
            state_record_bytes: state_record_bytes as usize,
            client: section.client.clone(),
        })
    }

    /// How long a source not heard of holds time back.
    pub fn silence(&self) -> Duration {
        self.silence
            .map_or(self.lateness.max(Duration::from_secs(60)), Span::to_std)
    }

    pub fn repartition_topic(&self) -> String {
        format!("{}-repartition", self.group)
    }

    pub fn state_topic(&self) -> String {
        format!("{}-state", self.group)
    }

    pub fn detect_group(&self) -> String {
        format!("{}-detect", self.group)
    }

    /// An admin client's configuration: brokers, exposure's defaults, then the configured
    /// `client` settings that apply to every client (not a consumer's or a producer's own).
    pub fn client_config(&self) -> ClientConfig {
        self.config_with(&[], Scope::Any)
    }

    /// A producer's configuration: the general `client` settings and the producer's own.
    pub fn producer_config(&self) -> ClientConfig {
        self.config_with(&[], Scope::Producer)
    }

    /// A consumer's configuration: exposure's consumer defaults too (a dead instance's
    /// partitions move on after 10 s; a fetch waits at most 100 ms for records, since a broker
    /// that holds a fetch for its whole wait even when records arrive — tansu does — would add
    /// librdkafka's 500 ms default at each of the two hops, raw and repartition), under the
    /// general `client` settings and the consumer's own.
    pub fn consumer_config(&self) -> ClientConfig {
        self.config_with(
            &[
                ("session.timeout.ms", "10000"),
                ("heartbeat.interval.ms", "1000"),
                ("fetch.wait.max.ms", "100"),
            ],
            Scope::Consumer,
        )
    }

    /// The `client` settings librdkafka refuses (an unknown name, a bad value) and the files
    /// they name that cannot be read (`ssl.ca.location`, `sasl.kerberos.keytab`, …), each with
    /// its key under `input.kafka.`: what `exposure config check` reports, without connecting
    /// anywhere. A value never appears in a message (it may be a password).
    pub fn refused_client_settings(&self) -> Vec<(String, String)> {
        let mut refused = Vec::new();
        for (key, value) in &self.client {
            let mut alone = ClientConfig::new();
            alone.set(key, value);
            let at = format!("client.{key}");
            if let Err(rdkafka::error::KafkaError::ClientConfig(_, description, _, _)) =
                alone.create_native_config()
            {
                let description = if value.is_empty() {
                    description
                } else {
                    description.replace(value.as_str(), "…")
                };
                refused.push((at, description));
                continue;
            }
            // `ssl.ca.location = "probe"`: librdkafka looks in the usual places itself.
            let names_a_file =
                (key.ends_with(".location") && value != "probe") || key == "sasl.kerberos.keytab";
            if names_a_file && let Err(e) = std::fs::File::open(value) {
                refused.push((at, format!("cannot read {value}: {e}")));
            }
        }
        refused
    }

    fn config_with(&self, defaults: &[(&str, &str)], client: Scope) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("socket.keepalive.enable", "true")
            .set("log_level", "4");
        for (key, value) in defaults {
            config.set(*key, *value);
        }
        for (key, value) in &self.client {
            let scope = Scope::of(key);
            if scope == Scope::Any || scope == client {
                config.set(key, value);
            }
        }
        config
    }
}

/// Which librdkafka clients a setting is for (its CONFIGURATION.md marks them C and P):
/// each is given only to those, so that no client warns of a setting that is not its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Any,
    Consumer,
    Producer,
}

const CONSUMER_ONLY: &[&str] = &[
    "group.instance.id",
    "partition.assignment.strategy",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "group.protocol",
    "group.protocol.type",
    "group.remote.assignor",
    "coordinator.query.interval.ms",
    "max.poll.interval.ms",
    "auto.commit.interval.ms",
    "queued.min.messages",
    "queued.max.messages.kbytes",
    "fetch.wait.max.ms",
    "fetch.queue.backoff.ms",
    "fetch.message.max.bytes",
    "max.partition.fetch.bytes",
    "fetch.max.bytes",
    "fetch.min.bytes",
    "fetch.error.backoff.ms",
    "isolation.level",
    "check.crcs",
];

const PRODUCER_ONLY: &[&str] = &[
    "queue.buffering.max.messages",
    "queue.buffering.max.kbytes",
    "queue.buffering.max.ms",
    "linger.ms",
    "message.send.max.retries",
    "retries",
    "queue.buffering.backpressure.threshold",
    "compression.codec",
    "compression.type",
    "compression.level",
    "batch.num.messages",
    "batch.size",
    "sticky.partitioning.linger.ms",
    "request.required.acks",
    "acks",
    "request.timeout.ms",
    "message.timeout.ms",
    "delivery.timeout.ms",
    "partitioner",
];

impl Scope {
    fn of(key: &str) -> Scope {
        if CONSUMER_ONLY.contains(&key) {
            Scope::Consumer
        } else if PRODUCER_ONLY.contains(&key) {
            Scope::Producer
        } else {
            Scope::Any
        }
    }
}

fn topic_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}
