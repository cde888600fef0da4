//! The alert journal of a long-running service: what detection hands its alerts to. Owns the
//! local [`Outbox`] and its bookkeeping — appending (each alert once, whatever restarts
//! happened), telling the delivery tasks, deleting what every sink acknowledged, and keeping
//! the journal under its bound on disk. Shared by the file engine ([`super::engine`]) and the
//! Kafka detect stage ([`crate::kafka`]).

use super::deliver::GivenUp;
use super::metrics::{Metrics, SinkMetrics};
use super::outbox::Outbox;
use crate::detect::Alert;
use crate::time::format_ts;
use std::collections::HashSet;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

pub struct AlertJournal {
    outbox: Outbox,
    metrics: Arc<Metrics>,
    /// Told the newest journal sequence number after each append.
    appended: tokio::sync::watch::Sender<u64>,
    /// Each sink's counters, whose `acked` is its acknowledged sequence number.
    sink_acks: Vec<Arc<SinkMetrics>>,
    given_up: GivenUp,
    /// The acknowledged position the outbox was last tidied to.
    tidied_to: u64,
    /// The journal's bound on disk; beyond it the oldest undelivered alerts are given up to
    /// the dead-letter files (see [`Outbox::overflow`]).
    max_bytes: u64,
}

impl AlertJournal {
    pub fn new(
        outbox: Outbox,
        metrics: Arc<Metrics>,
        appended: tokio::sync::watch::Sender<u64>,
        sink_acks: Vec<Arc<SinkMetrics>>,
        given_up: GivenUp,
        max_bytes: u64,
    ) -> AlertJournal {
        AlertJournal {
            outbox,
            metrics,
            appended,
            sink_acks,
            given_up,
            tidied_to: 0,
            max_bytes,
        }
    }

    /// Alerts (by delivery key) emitted before a restart: not journaled again.
    pub fn remember(&mut self, keys: impl IntoIterator<Item = String>) {
        self.outbox.remember(keys);
    }

    /// The keys of the alerts emitted for the windows in `open`, for a checkpoint.
    pub fn emitted_keys_of(&self, open: &HashSet<String>) -> Vec<String> {
        self.outbox.emitted_keys_of(open)
    }

    /// Writes `alerts` to the outbox (skipping any emitted before a restart) and empties it.
    pub fn journal(&mut self, alerts: &mut Vec<Alert>) -> io::Result<()> {
        let mut last = None;
        for alert in alerts.drain(..) {
            match self.outbox.append(&alert)? {
                Some(seq) => {
                    last = Some(seq);
                    self.metrics.journaled.store(seq, Relaxed);
                    self.metrics
                        .outbox_bytes
                        .store(self.outbox.bytes(), Relaxed);
                    self.metrics.alerts_emitted.fetch_add(1, Relaxed);
                    *self
                        .metrics
                        .alerts
                        .lock()
                        .expect("not poisoned")
                        .entry((alert.status.name(), alert.severity.name()))
                        .or_default() += 1;
                    tracing::info!(
                        id = %alert.id, status = ?alert.status, table = %alert.table,
                        window_start = %format_ts(alert.window_start),
                        window_end = %format_ts(alert.window_end),
                        novel_principals = alert.novel_principals,
                        "alert"
                    );
                }
                None => {
                    tracing::debug!(key = %alert.delivery_key(), "already emitted before a restart")
                }
            }
        }
        if let Some(seq) = last {
            self.appended.send_replace(seq);
        }
        Ok(())
    }

    /// After a checkpoint: the outbox forgets what it no longer needs and keeps its bound.
    pub fn after_checkpoint(&mut self) -> io::Result<()> {
        self.outbox.after_checkpoint(self.min_acked())?;
        self.bound();
        Ok(())
    }

    /// How far every sink has delivered.
    fn min_acked(&self) -> u64 {
        self.sink_acks
            .iter()
            .map(|s| s.acked.load(Relaxed))
            .min()
            .unwrap_or(u64::MAX)
    }

    /// Deletes the segments every sink delivered since the last look (so the bound holds
    /// between checkpoints too).
    pub fn tidy(&mut self) -> io::Result<()> {
        let acked = self.min_acked();
        if acked != self.tidied_to {
            self.tidied_to = acked;
            self.outbox.delete_delivered(acked)?;
            self.bound();
        }
        Ok(())
    }

    /// Over its bound, the outbox gives up its oldest alerts (see [`Outbox::overflow`]).
    fn bound(&mut self) {
        if let Some(floor) = self.outbox.overflow(self.max_bytes)
            && floor > self.given_up.load(Relaxed)
        {
            let behind = self
                .sink_acks
                .iter()
                .filter(|s| s.acked.load(Relaxed) < floor)
                .count();
            tracing::error!(
                bytes = self.outbox.bytes(),
                max_bytes = self.max_bytes,
                up_to_seq = floor,
                sinks_behind = behind,
                "outbox over its bound: the oldest alerts not yet delivered go to the dead-letter \
                 files of the sinks behind (STATE/sinks/NAME.dead-letter.jsonl) instead"
            );
            self.given_up.store(floor, Relaxed);
        }
        self.metrics
            .outbox_bytes
            .store(self.outbox.bytes(), Relaxed);
    }
}
