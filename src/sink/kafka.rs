//! Alerts to a Kafka topic, for downstream systems that consume from Kafka: each alert event
//! is one record, its value the alert JSON (schema `exposure.alert/v1`), its key the alert id
//! (so every event of one window lands in one partition, in order), written by an idempotent
//! producer. A record is acknowledged once the broker has it (`acks=all`).

use super::{DeliveryError, Sink, SinkFuture};
use crate::detect::Alert;
use crate::ocsf::AlertFormat;
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::collections::BTreeMap;
use std::time::Duration;

/// The largest record sent: under Kafka's default `message.max.bytes` (1 MiB, less the
/// record's overhead).
pub const KAFKA_MAX_BYTES: usize = 1_000_000;

pub struct KafkaSink {
    name: String,
    topic: String,
    producer: FutureProducer,
    timeout: Duration,
    format: AlertFormat,
}

impl KafkaSink {
    /// A producer to `brokers` with `client` settings passed through to librdkafka.
    pub fn new(
        name: String,
        brokers: &str,
        topic: String,
        client: &BTreeMap<String, String>,
        timeout: Duration,
        format: AlertFormat,
    ) -> Result<KafkaSink, String> {
        let producer = client_config(brokers, client, timeout)
            .create()
            .map_err(|e| e.to_string())?;
        Ok(KafkaSink {
            name,
            topic,
            producer,
            timeout,
            format,
        })
    }
}

/// The producer's configuration: idempotent, every replica acknowledging, `client` on top.
fn client_config(
    brokers: &str,
    client: &BTreeMap<String, String>,
    timeout: Duration,
) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", timeout.as_millis().to_string())
        .set("log_level", "4");
    for (key, value) in client {
        config.set(key, value);
    }
    config
}

/// What creating the producer would refuse in its settings, without creating it (which
/// would connect to the brokers): `exposure config check`.
pub fn check_settings(
    brokers: &str,
    client: &BTreeMap<String, String>,
    timeout: Duration,
) -> Result<(), String> {
    client_config(brokers, client, timeout)
        .create_native_config()
        .map(drop)
        .map_err(|e| match e {
            // The value may be a password: the description without it.
            rdkafka::error::KafkaError::ClientConfig(_, description, _, value)
                if !value.is_empty() =>
            {
                description.replace(&value, "…")
            }
            e => e.to_string(),
        })
}

impl Sink for KafkaSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn deliver<'a>(&'a mut self, alert: &'a Alert) -> SinkFuture<'a> {
        Box::pin(async move {
            // Under Kafka's default `message.max.bytes` (1 MB), principals cut to fit.
            let format = self.format;
            let body = super::bound::fit(alert, KAFKA_MAX_BYTES, |a| format.encode(a).into_bytes())
                .ok_or_else(|| DeliveryError::Rejected {
                    reason: format!(
                        "the alert exceeds {KAFKA_MAX_BYTES} bytes even with no principal listed"
                    ),
                })?;
            let record = FutureRecord::to(&self.topic).key(&alert.id).payload(&body);
            match self.producer.send(record, self.timeout).await {
                Ok(_) => Ok(()),
                // Every librdkafka failure here is worth another try (the broker is down or
                // slow); the outbox keeps the alert meanwhile.
                Err((e, _)) => Err(DeliveryError::Retry {
                    reason: format!("kafka: {e}"),
                    after: None,
                }),
            }
        })
    }
}
