//! Delivery: one tokio task per sink reads the outbox journal from the sink's acknowledged
//! position and hands each alert to the sink, in order, acknowledging durably after each
//! success. Detection never waits for it.

use super::metrics::SinkMetrics;
use super::outbox::{Record, SinkCursor};
use crate::detect::Alert;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use std::time::Instant;
use tokio::sync::watch;

/// What a sink's delivery returns.
pub type SinkFuture<'a> =
    std::pin::Pin<Box<dyn Future<Output = Result<(), DeliveryError>> + Send + 'a>>;

/// Where alerts go (see [`crate::sink`]).
pub trait Sink: Send {
    /// A name for logs, metrics and the acknowledgement file.
    fn name(&self) -> &str;

    /// Delivers one alert event; `Ok` once the receiver has it.
    fn deliver<'a>(&'a mut self, alert: &'a Alert) -> SinkFuture<'a>;

    /// Called about once a second: for sinks that re-send state (Alertmanager). Failures are
    /// logged by the sink; the next tick tries again.
    fn tick(&mut self) -> SinkFuture<'_> {
        Box::pin(async { Ok(()) })
    }
}

/// Why a delivery failed.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// Worth trying again (connection refused, timeout, 408, 429, 5xx), after `after` if the
    /// receiver said so.
    #[error("{reason}")]
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// Rejected for good (another 4xx): dead-lettered, never retried.
    #[error("{reason}")]
    Rejected { reason: String },
}

/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// How retries back off.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// The wait before attempt `attempt + 1` (0-based): doubling, capped, with "full jitter"
    /// (uniform in its upper half) so that many instances do not retry in step.
    pub fn delay(&self, attempt: u32) -> Duration {
        let base = self
            .initial
            .saturating_mul(1u32 << attempt.min(20))
            .min(self.max);
        let jitter = jitter_fraction();
        base.mul_f64(0.5 + 0.5 * jitter)
    }
}

/// A number in [0, 1) that differs between calls and processes (no RNG crate needed for this).
fn jitter_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// One sink's delivery task state.
pub struct Delivery {
    pub sink: Box<dyn Sink>,
    pub cursor: SinkCursor,
    pub metrics: Arc<SinkMetrics>,
    /// Shared with the detection loop (segments are deleted once every sink is past them).
    pub acked: Arc<AtomicU64>,
    pub backoff: Backoff,
    /// Rejected alerts are appended here.
    pub dead_letters: PathBuf,
}

impl Delivery {
    /// Delivers everything journaled, then waits for more, until `stop` turns true and the
    /// journal is drained (or `stop` says to give up).
    pub async fn run(
        mut self,
        mut appended: watch::Receiver<u64>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut last_tick = Instant::now();
        loop {
            if last_tick.elapsed() >= Duration::from_secs(1) {
                last_tick = Instant::now();
                if let Err(e) = self.sink.tick().await {
                    tracing::warn!(sink = self.sink.name(), error = %e, "periodic re-send failed");
                }
            }
            let records = match self.cursor.next_records(256) {
                Ok(records) => records,
                Err(e) => {
                    tracing::error!(sink = self.sink.name(), error = %e, "cannot read the outbox");
                    Vec::new()
                }
            };
            let last_appended = *appended.borrow();
            self.metrics
                .pending
                .store(last_appended.saturating_sub(self.cursor.acked()), Relaxed);
            if records.is_empty() {
                if *stop.borrow() {
                    return;
                }
                tokio::select! {
                    _ = appended.changed() => {}
                    _ = stop.changed() => {}
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
                continue;
            }
            for record in records {
                if !self.deliver_one(&record, &mut stop).await {
                    return;
                }
            }
        }
    }

    /// Delivers one record with retries; false if told to stop before it got through.
    async fn deliver_one(&mut self, record: &Record, stop: &mut watch::Receiver<bool>) -> bool {
        let mut attempt = 0;
        loop {
            match self.sink.deliver(&record.alert).await {
                Ok(()) => {
                    self.metrics.delivered.fetch_add(1, Relaxed);
                    self.acknowledge(record.seq);
                    return true;
                }
                Err(DeliveryError::Rejected { reason }) => {
                    tracing::error!(
                        sink = self.sink.name(), key = %record.alert.delivery_key(), reason = %reason,
                        dead_letters = %self.dead_letters.display(),
                        "alert rejected for good; moved to the dead-letter file"
                    );
                    self.dead_letter(record, &reason);
                    self.metrics.dead_lettered.fetch_add(1, Relaxed);
                    self.acknowledge(record.seq);
                    return true;
                }
                Err(DeliveryError::Retry { reason, after }) => {
                    self.metrics.retries.fetch_add(1, Relaxed);
                    let wait = after
                        .map(|a| a.min(MAX_RETRY_AFTER))
                        .unwrap_or_else(|| self.backoff.delay(attempt));
                    tracing::warn!(
                        sink = self.sink.name(), key = %record.alert.delivery_key(), reason = %reason,
                        attempt = attempt + 1, retry_in_ms = wait.as_millis() as u64,
                        "delivery failed; will retry"
                    );
                    attempt += 1;
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop.changed() => {}
                    }
                    if *stop.borrow() {
                        // Shutting down: what is not delivered stays in the outbox for the
                        // next start.
                        return false;
                    }
                }
            }
        }
    }

    fn acknowledge(&mut self, seq: u64) {
        if let Err(e) = self.cursor.ack(seq) {
            tracing::error!(sink = self.sink.name(), error = %e, "cannot record the delivery");
        }
        self.acked.store(self.cursor.acked(), Relaxed);
    }

    fn dead_letter(&self, record: &Record, reason: &str) {
        #[derive(serde::Serialize)]
        struct DeadLetter<'a> {
            sink: &'a str,
            reason: &'a str,
            at: String,
            seq: u64,
            alert: &'a Alert,
        }
        let entry = DeadLetter {
            sink: self.sink.name(),
            reason,
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            seq: record.seq,
            alert: &record.alert,
        };
        let result = serde_json::to_vec(&entry)
            .map_err(io::Error::other)
            .and_then(|mut line| {
                line.push(b'\n');
                let mut file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.dead_letters)?;
                file.write_all(&line)?;
                file.sync_data()
            });
        if let Err(e) = result {
            tracing::error!(sink = self.sink.name(), error = %e, "cannot write the dead-letter file");
        }
    }
}
