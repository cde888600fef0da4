//! A Kafka topic read as logs (`kafka://BROKERS/TOPIC`, or `…/TOPIC/PARTITION`): for
//! `replay`, `impact`, `report` and `learn` over what a topic still holds, without a consumer
//! group. Each partition is one input, from its first record to the end the broker reports
//! when it is first read through — fixed then, so that every later read of it (replay reads an
//! input again to sort it) reads the same records — merged with the others by time as files
//! are. One record is one line; a
//! JSON record's own line breaks (pretty-printed documents) are white space and are read as
//! such. Plain-text connections: the brokers' addresses are the URL's (`host:port[,host:port]`).

use super::InputError;
use rdkafka::ClientConfig;
use rdkafka::Offset;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use std::io::{self, Read};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// How long the brokers may take to answer before a read fails.
const PATIENCE: Duration = Duration::from_secs(15);

/// Whether `arg` names a Kafka topic.
pub fn is_url(arg: &str) -> bool {
    arg.starts_with("kafka://")
}

/// One partition of a topic.
#[derive(Debug, PartialEq, Eq)]
pub struct TopicPartition {
    /// `kafka://BROKERS/TOPIC/PARTITION`.
    pub url: String,
    brokers: String,
    topic: String,
    partition: i32,
    /// The offset after the last record of the first read that reached the partition's end
    /// (the brokers' end-of-partition event, not their watermarks, which some Kafka-protocol
    /// brokers report per batch).
    end: OnceLock<i64>,
}

fn bad(url: &str, message: impl Into<String>) -> InputError {
    InputError::Store {
        url: url.to_string(),
        message: message.into(),
    }
}

fn client(brokers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("group.id", "exposure-replay")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        .set("log_level", "3");
    config
}

/// The partitions `url` names (every partition of the topic, or the one given), with their
/// bounds now; an empty one is left out.
pub fn expand(url: &str) -> Result<Vec<TopicPartition>, InputError> {
    let rest = url.strip_prefix("kafka://").unwrap_or(url);
    let mut parts = rest.splitn(3, '/');
    let brokers = parts.next().unwrap_or("");
    let topic = parts.next().unwrap_or("");
    let partition = parts.next().filter(|p| !p.is_empty());
    if brokers.is_empty() || topic.is_empty() {
        return Err(InputError::BadUrl {
            url: url.to_string(),
            message: "write kafka://HOST:PORT[,HOST:PORT]/TOPIC[/PARTITION]".into(),
        });
    }
    let partition = match partition.map(str::parse::<i32>) {
        None => None,
        Some(Ok(p)) if p >= 0 => Some(p),
        Some(_) => {
            return Err(InputError::BadUrl {
                url: url.to_string(),
                message: "the partition is a number".into(),
            });
        }
    };
    let consumer: BaseConsumer = client(brokers)
        .create()
        .map_err(|e| bad(url, format!("cannot reach the brokers: {e}")))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), PATIENCE)
        .map_err(|e| bad(url, format!("cannot read the topic's metadata: {e}")))?;
    let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Err(bad(url, "no such topic"));
    };
    if let Some(error) = found.error() {
        return Err(bad(url, format!("the topic: {error:?}")));
    }
    let mut partitions: Vec<i32> = found.partitions().iter().map(|p| p.id()).collect();
    partitions.sort_unstable();
    if let Some(wanted) = partition {
        if !partitions.contains(&wanted) {
            return Err(bad(url, format!("the topic has no partition {wanted}")));
        }
        partitions = vec![wanted];
    }
    Ok(partitions
        .into_iter()
        .map(|partition| TopicPartition {
            url: format!("kafka://{brokers}/{topic}/{partition}"),
            brokers: brokers.to_string(),
            topic: topic.to_string(),
            partition,
            end: OnceLock::new(),
        })
        .collect())
}

/// The records of `partition` from its first, a line each, to its end: where the first read
/// through it met the brokers' end-of-partition event.
pub fn stream(partition: &Arc<TopicPartition>) -> io::Result<Box<dyn Read + Send>> {
    let failed =
        |e: rdkafka::error::KafkaError| io::Error::other(format!("{}: {e}", partition.url));
    let consumer: BaseConsumer = client(&partition.brokers).create().map_err(failed)?;
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(&partition.topic, partition.partition, Offset::Beginning)
        .map_err(failed)?;
    consumer.assign(&assignment).map_err(failed)?;
    Ok(Box::new(Records {
        consumer,
        partition: Arc::clone(partition),
        next: 0,
        ended: false,
        buffer: Vec::new(),
        at: 0,
    }))
}

/// The records of one partition as lines.
struct Records {
    consumer: BaseConsumer,
    partition: Arc<TopicPartition>,
    /// The offset after the last record read.
    next: i64,
    ended: bool,
    buffer: Vec<u8>,
    at: usize,
}

impl Records {
    /// Takes the next record into the buffer; `false` at the end.
    fn fill(&mut self) -> io::Result<bool> {
        self.buffer.clear();
        self.at = 0;
        let url = &self.partition.url;
        loop {
            if self.ended
                || self
                    .partition
                    .end
                    .get()
                    .is_some_and(|&end| self.next >= end)
            {
                return Ok(false);
            }
            let Some(polled) = self.consumer.poll(PATIENCE) else {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "{url}: the broker sent nothing for {} s after offset {}",
                        PATIENCE.as_secs(),
                        self.next
                    ),
                ));
            };
            let message = match polled {
                Ok(message) => message,
                Err(rdkafka::error::KafkaError::PartitionEOF(_)) => {
                    // The end, fixed by the first read through.
                    let _ = self.partition.end.set(self.next);
                    self.ended = true;
                    continue;
                }
                Err(e) => return Err(io::Error::other(format!("{url}: {e}"))),
            };
            if message.offset() < self.next {
                continue;
            }
            if self
                .partition
                .end
                .get()
                .is_some_and(|&end| message.offset() >= end)
            {
                return Ok(false);
            }
            // Offsets may skip (compaction, transaction markers): what is there is read.
            self.next = message.offset() + 1;
            let Some(payload) = message.payload() else {
                continue;
            };
            let json = matches!(
                payload.iter().find(|b| !b.is_ascii_whitespace()),
                Some(b'{' | b'[')
            );
            self.buffer.extend(payload.iter().map(|&b| match b {
                b'\n' | b'\r' if json => b' ',
                b => b,
            }));
            self.buffer.push(b'\n');
            return Ok(true);
        }
    }
}

impl Read for Records {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.at == self.buffer.len() && !self.fill()? {
            return Ok(0);
        }
        let n = out.len().min(self.buffer.len() - self.at);
        out[..n].copy_from_slice(&self.buffer[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
