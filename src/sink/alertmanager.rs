//! Prometheus Alertmanager, API v2 (`POST /api/v2/alerts`, a JSON array). A window is one
//! Alertmanager alert, identified by its labels (`alertname="ExposureWindow"`, `table`,
//! `window_id`, `severity`, plus configured ones). Alertmanager forgets a firing alert that is
//! not sent again, so the sink re-sends every firing window each `resend_every` with `endsAt` a
//! few intervals ahead; a closed window is sent with `endsAt` = `window_end` and re-sent for
//! `resolved_for`. What is firing is kept in `STATE/sinks/NAME.firing.json`, so that re-sending
//! goes on across restarts.

use super::{DeliveryError, Sink, SinkFuture};
use crate::detect::{Alert, AlertStatus, Severity};
use crate::state::write_atomically;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub struct AlertmanagerSink {
    name: String,
    endpoint: reqwest::Url,
    client: reqwest::Client,
    labels: BTreeMap<String, String>,
    resend_every: Duration,
    resolved_for: Duration,
    state_path: PathBuf,
    state: Resending,
}

/// Alerts being re-sent, by window id, with when they were last sent (µs since the epoch).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Resending {
    firing: BTreeMap<String, (Alert, i64)>,
    /// With the time until which the resolution is re-sent.
    resolved: BTreeMap<String, (Alert, i64, i64)>,
}

fn severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "critical",
        Severity::High => "high",
        Severity::Medium => "medium",
    }
}

impl AlertmanagerSink {
    pub fn new(
        name: String,
        base: reqwest::Url,
        client: reqwest::Client,
        labels: BTreeMap<String, String>,
        resend_every: Duration,
        resolved_for: Duration,
        state_path: PathBuf,
    ) -> AlertmanagerSink {
        let mut endpoint = base;
        let path = format!("{}/api/v2/alerts", endpoint.path().trim_end_matches('/'));
        endpoint.set_path(&path);
        let state = std::fs::read(&state_path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        AlertmanagerSink {
            name,
            endpoint,
            client,
            labels,
            resend_every,
            resolved_for,
            state_path,
            state,
        }
    }

    /// The Alertmanager alert for `alert`, as of `now` (µs).
    pub fn postable(&self, alert: &Alert, now: i64) -> serde_json::Value {
        let mut labels = self.labels.clone();
        labels.insert("alertname".into(), "ExposureWindow".into());
        labels.insert("table".into(), alert.table.clone());
        labels.insert("window_id".into(), alert.id.clone());
        if alert.id.starts_with("exp-test-") {
            labels.insert("test".into(), "true".into());
        }
        // The severity of the first alert of the window: labels identify an alert, so they
        // must not change while it fires.
        labels.insert("severity".into(), severity(alert.severity).into());
        let principals: Vec<&str> = alert
            .principals
            .iter()
            .map(|p| p.principal.as_str())
            .collect();
        let ends_at = match alert.status {
            AlertStatus::Closed => alert.window_end.max(alert.window_start),
            // Firing: valid for a few re-send intervals, so that a stopped exposure resolves
            // on its own instead of firing forever.
            _ => now + 4 * self.resend_every.as_micros() as i64,
        };
        json!({
            "labels": labels,
            "annotations": {
                "summary": super::summary(alert),
                "principals": principals.join(", "),
                "novel_principals": alert.novel_principals.to_string(),
                "baseline_principals": alert.baseline_principals.to_string(),
                "reads": alert.reads.to_string(),
                "window_start": crate::time::format_ts(alert.window_start),
                "window_end": crate::time::format_ts(alert.window_end),
            },
            "startsAt": crate::time::format_ts(alert.window_start),
            "endsAt": crate::time::format_ts(ends_at),
        })
    }

    async fn post(&self, alerts: Vec<serde_json::Value>) -> Result<(), DeliveryError> {
        let body = serde_json::to_vec(&alerts).map_err(|e| DeliveryError::Rejected {
            reason: e.to_string(),
        })?;
        super::http::post_json(&self.client, &self.endpoint, &[], body).await
    }

    fn save(&self) {
        let result = serde_json::to_vec(&self.state)
            .map_err(std::io::Error::other)
            .and_then(|bytes| write_atomically(&self.state_path, &bytes));
        if let Err(e) = result {
            tracing::warn!(sink = %self.name, error = %e, "cannot save the alerts being re-sent");
        }
    }
}

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

impl Sink for AlertmanagerSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn deliver<'a>(&'a mut self, alert: &'a Alert) -> SinkFuture<'a> {
        Box::pin(async move {
            let now = now_us();
            // An update keeps the labels of the window's first alert.
            let mut sent = alert.clone();
            if let Some((first, _)) = self.state.firing.get(&alert.id) {
                sent.severity = first.severity;
            }
            self.post(vec![self.postable(&sent, now)]).await?;
            match alert.status {
                AlertStatus::Open | AlertStatus::Update => {
                    self.state.firing.insert(alert.id.clone(), (sent, now));
                }
                AlertStatus::Closed => {
                    self.state.firing.remove(&alert.id);
                    let until = now + self.resolved_for.as_micros() as i64;
                    self.state
                        .resolved
                        .insert(alert.id.clone(), (sent, now, until));
                }
            }
            self.save();
            Ok(())
        })
    }

    fn tick(&mut self) -> SinkFuture<'_> {
        Box::pin(async move {
            let now = now_us();
            let every = self.resend_every.as_micros() as i64;
            let before = self.state.resolved.len();
            self.state.resolved.retain(|_, (_, _, until)| *until > now);
            let mut due: Vec<serde_json::Value> = Vec::new();
            for (alert, last) in self.state.firing.values() {
                if now - last >= every {
                    due.push(self.postable(alert, now));
                }
            }
            for (alert, last, _) in self.state.resolved.values() {
                if now - last >= every {
                    due.push(self.postable(alert, now));
                }
            }
            if due.is_empty() {
                if self.state.resolved.len() != before {
                    self.save();
                }
                return Ok(());
            }
            self.post(due).await?;
            for (_, last) in self.state.firing.values_mut() {
                if now - *last >= every {
                    *last = now;
                }
            }
            for (_, last, _) in self.state.resolved.values_mut() {
                if now - *last >= every {
                    *last = now;
                }
            }
            self.save();
            Ok(())
        })
    }
}
