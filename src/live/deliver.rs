//! Delivery: one tokio task per sink reads the outbox journal from the sink's acknowledged
//! position and hands each alert to the sink, in order, acknowledging durably after each
//! success. Detection never waits for it.

use super::metrics::SinkMetrics;
use super::outbox::{Record, SinkCursor};
use crate::detect::Alert;
use crate::sink::backoff::MAX_RETRY_AFTER;
use crate::sink::{Backoff, DeliveryError, Sink};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use std::time::Instant;
use tokio::sync::watch;

/// Records up to this sequence number are given up: the outbox went over its bound
/// (`--outbox-max-bytes`) and every sink that has not delivered them moves them to its
/// dead-letter file instead. Shared by detection (which raises it) and every delivery task.
pub type GivenUp = Arc<AtomicU64>;

/// The dead-letter reason of an alert given up because the outbox went over its bound.
pub const OVERFLOW: &str =
    "outbox over its bound (--outbox-max-bytes) while this sink was behind: not delivered";

/// One sink's delivery task state.
pub struct Delivery {
    pub sink: Box<dyn Sink>,
    pub cursor: SinkCursor,
    /// Its `acked` is shared with the detection loop (segments are deleted once every sink is
    /// past them).
    pub metrics: Arc<SinkMetrics>,
    pub backoff: Backoff,
    /// Rejected alerts are appended here.
    pub dead_letters: PathBuf,
    pub given_up: GivenUp,
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
                self.save_position();
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
            if records.is_empty() {
                if *stop.borrow() {
                    self.save_position();
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
                    self.save_position();
                    return;
                }
            }
        }
    }

    /// Delivers one record with retries; false if told to stop before it got through.
    async fn deliver_one(&mut self, record: &Record, stop: &mut watch::Receiver<bool>) -> bool {
        let mut attempt = 0;
        let first_attempt = std::time::Instant::now();
        loop {
            if record.seq <= self.given_up.load(Relaxed) {
                tracing::debug!(
                    sink = self.sink.name(), key = %record.alert.delivery_key(),
                    "outbox over its bound: moved to the dead-letter file undelivered"
                );
                self.dead_letter(record, OVERFLOW);
                self.metrics.dead_lettered.fetch_add(1, Relaxed);
                self.acknowledge(record.seq);
                return true;
            }
            match self.sink.deliver(&record.alert).await {
                Ok(()) => {
                    self.metrics.delivered.fetch_add(1, Relaxed);
                    self.metrics.delivery.observe(first_attempt.elapsed());
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
            tracing::error!(
                sink = self.sink.name(), error = %e,
                "cannot record the delivery; kept in memory, written again each second"
            );
        }
        self.metrics.acked.store(self.cursor.acked(), Relaxed);
    }

    /// Writes the delivery position if an earlier write of it failed.
    fn save_position(&mut self) {
        if !self.cursor.unsaved() {
            return;
        }
        match self.cursor.save() {
            Ok(()) => tracing::info!(sink = self.sink.name(), "delivery position recorded again"),
            Err(e) => tracing::warn!(
                sink = self.sink.name(), error = %e, "still cannot record the delivery position"
            ),
        }
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
                let mut file = crate::state::open_private_append(&self.dead_letters)?;
                file.write_all(&line)
                    .and_then(|()| file.sync_data())
                    .map_err(|e| crate::state::at(&self.dead_letters, e))
            });
        if let Err(e) = result {
            tracing::error!(sink = self.sink.name(), error = %e, "cannot write the dead-letter file");
        }
    }
}
