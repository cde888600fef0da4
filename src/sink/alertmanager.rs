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
    /// The re-send state could not be read: the journal is delivered again to rebuild it.
    lost: bool,
}

/// Reads what sink `name` was re-sending; a file that cannot be read or understood is moved
/// aside (never deleted), said loudly, and reported as lost so the journal is delivered again.
fn load_resending(name: &str, path: &std::path::Path) -> (Resending, bool) {
    let error = match crate::state::read_private(path, u64::MAX) {
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(state) => return (state, false),
            Err(e) => e.to_string(),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (Resending::default(), false),
        Err(e) => e.to_string(),
    };
    match crate::state::quarantine(path) {
        Ok(aside) => tracing::error!(
            sink = %name, file = %path.display(), error = %error, moved_to = %aside.display(),
            "the alerts being re-sent cannot be read; file moved aside, re-delivering the outbox \
             to rebuild them (Alertmanager takes repeats without a second notification)"
        ),
        Err(e) => tracing::error!(
            sink = %name, file = %path.display(), error = %error, move_error = %e,
            "the alerts being re-sent cannot be read nor moved aside; re-delivering the outbox \
             to rebuild them"
        ),
    }
    (Resending::default(), true)
}

/// Alerts being re-sent, by window id, with when they were last sent (µs since the epoch).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Resending {
    firing: BTreeMap<String, (Alert, i64)>,
    /// With the time until which the resolution is re-sent.
    resolved: BTreeMap<String, (Alert, i64, i64)>,
}

fn severity(severity: Severity) -> &'static str {
    severity.name()
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
        let (state, lost) = load_resending(&name, &state_path);
        AlertmanagerSink {
            name,
            endpoint,
            client,
            labels,
            resend_every,
            resolved_for,
            state_path,
            state,
            lost,
        }
    }

    /// The Alertmanager alert for `alert`, as of `now` (µs).
    pub fn postable(&self, alert: &Alert, now: i64) -> serde_json::Value {
        let mut labels = self.labels.clone();
        let name = match alert.status {
            AlertStatus::Grant => "ExposureGrant",
            AlertStatus::StillReadable => "ExposureStillReadable",
            _ => "ExposureWindow",
        };
        labels.insert("alertname".into(), name.into());
        labels.insert("table".into(), alert.table.clone());
        if let Some(sensitivity) = alert.sensitivity {
            let level = serde_json::to_value(sensitivity).expect("an enum");
            labels.insert("sensitivity".into(), level.as_str().unwrap_or("").into());
        }
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
        let (starts_at, ends_at) = alertmanager_times(alert, now, self.resend_every);
        let mut annotations = if alert.is_window() {
            json!({
                "summary": super::summary(alert),
                "principals": if alert.principals_truncated > 0 {
                    format!(
                        "{} … and {} more ({})",
                        principals.join(", "),
                        alert.principals_truncated,
                        super::bound::ALL_PRINCIPALS
                    )
                } else {
                    principals.join(", ")
                },
                "novel_principals": alert.novel_principals.to_string(),
                "baseline_principals": alert.baseline_principals.to_string(),
                "reads": alert.reads.to_string(),
                "window_start": crate::time::format_ts(alert.window_start),
                "window_end": crate::time::format_ts(alert.window_end),
            })
        } else {
            json!({ "summary": super::summary(alert) })
        };
        let annotations = annotations.as_object_mut().expect("an object");
        super::add_root_cause(alert, annotations, |c| super::describe_change(c).into());
        json!({
            "labels": labels,
            "annotations": annotations,
            "startsAt": crate::time::format_ts(starts_at),
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

/// The labels every alert of a sink carries; they cannot be configured.
const OWN_LABELS: [&str; 5] = ["alertname", "table", "window_id", "severity", "test"];

/// Checks the configured extra labels (config key `key`) so that Alertmanager never refuses an
/// alert for them: names as Prometheus writes them (`[a-zA-Z_][a-zA-Z0-9_]*`, not starting
/// with `__`), not one of the sink's own, values not empty.
pub fn check_labels(
    key: &str,
    labels: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, super::SinkConfigError> {
    for (name, value) in labels {
        let fault = if OWN_LABELS.contains(&name.as_str()) {
            Some(format!("label `{name}` is set by exposure on every alert"))
        } else if !is_label_name(name) {
            Some(format!(
                "label name {name:?} is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)"
            ))
        } else if value.is_empty() {
            Some(format!(
                "label `{name}` is empty (Alertmanager drops empty labels)"
            ))
        } else {
            None
        };
        if let Some(message) = fault {
            return Err(super::SinkConfigError {
                key: format!("{key}.{name}"),
                message,
            });
        }
    }
    Ok(labels.clone())
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

/// `startsAt` and `endsAt` (µs) for `alert` sent at `now`, mapped so that Alertmanager's rules
/// hold whatever the event clock says: `startsAt <= endsAt` (else the alert is refused with
/// 400), a firing alert's `endsAt` after `now` (else it shows resolved), a closed one's at or
/// before `now` (else it shows active until then).
///
/// Event times are used as they are when they are in the past, which is the usual case: a
/// firing window starts at `window_start` and a closed one ends at `window_end`. Times ahead
/// of the wall clock (a producer's clock skew) are brought back to `now`. The annotations
/// `window_start` and `window_end` always carry the event times unchanged.
///
/// A `grant` (or `still_readable`) alert fires once, from the change's (the read's) time, for four re-send intervals (it is not
/// re-sent: the change is a moment, not a state); the `update` of a closed window (its cause
/// reverted) is sent resolved, like its `closed` alert.
pub fn alertmanager_times(alert: &Alert, now: i64, resend_every: Duration) -> (i64, i64) {
    let resend = (resend_every.as_micros() as i64).max(1_000_000);
    if alert.window_ended() {
        let ends_at = alert.window_end.max(alert.window_start).min(now);
        return (alert.window_start.min(ends_at), ends_at);
    }
    match alert.status {
        AlertStatus::Grant | AlertStatus::StillReadable => (alert.as_of.min(now), now + 4 * resend),
        // Firing: valid for a few re-send intervals, so that a stopped exposure resolves on
        // its own instead of firing forever.
        _ => (alert.window_start.min(now), now + 4 * resend),
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
                // A moment, not a state: sent once, never re-sent.
                AlertStatus::Grant | AlertStatus::StillReadable => {}
                _ if !alert.window_ended() => {
                    self.state.firing.insert(alert.id.clone(), (sent, now));
                }
                _ => {
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

    fn lost_state(&self) -> bool {
        self.lost
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

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000_000;

    fn alert(status: AlertStatus, start: i64, end: i64) -> Alert {
        let [mut alert, _] = crate::sink::test_alerts();
        alert.status = status;
        alert.window_start = start;
        alert.window_end = end;
        alert
    }

    #[test]
    fn configured_labels_alertmanager_would_refuse_are_config_errors() {
        let labels = |name: &str, value: &str| BTreeMap::from([(name.into(), value.into())]);
        assert!(check_labels("l", &labels("team", "security")).is_ok());
        assert!(check_labels("l", &labels("_x9", "v")).is_ok());
        for (name, value) in [
            ("table", "x"),
            ("9team", "x"),
            ("te-am", "x"),
            ("__x", "x"),
            ("team", ""),
        ] {
            let error = check_labels("sinks[0].labels", &labels(name, value)).unwrap_err();
            assert_eq!(error.key, format!("sinks[0].labels.{name}"));
        }
    }

    #[test]
    fn times_in_the_past_are_the_windows_own() {
        let now = 100 * MINUTE;
        let every = Duration::from_secs(60);
        let open = alert(AlertStatus::Open, 10 * MINUTE, 12 * MINUTE);
        assert_eq!(
            alertmanager_times(&open, now, every),
            (10 * MINUTE, now + 4 * MINUTE)
        );
        let closed = alert(AlertStatus::Closed, 10 * MINUTE, 12 * MINUTE);
        assert_eq!(
            alertmanager_times(&closed, now, every),
            (10 * MINUTE, 12 * MINUTE)
        );
    }

    #[test]
    fn times_ahead_of_the_wall_clock_keep_alertmanagers_rules() {
        let now = 100 * MINUTE;
        let every = Duration::from_secs(60);
        for (start, end) in [(103, 104), (99, 104), (150, 150)] {
            let (start, end) = (start * MINUTE, end * MINUTE);
            let (s, e) = alertmanager_times(&alert(AlertStatus::Open, start, end), now, every);
            assert!(s <= e && s <= now && e > now, "open {start} {end}: {s} {e}");
            let (s, e) = alertmanager_times(&alert(AlertStatus::Update, start, end), now, every);
            assert!(s <= e && e > now, "update {start} {end}: {s} {e}");
            let (s, e) = alertmanager_times(&alert(AlertStatus::Closed, start, end), now, every);
            assert!(s <= e && e <= now, "closed {start} {end}: {s} {e}");
        }
    }

    #[test]
    fn a_garbled_resend_state_is_moved_aside_and_reported_lost() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("am.firing.json");
        assert!(!load_resending("am", &path).1, "none yet: nothing lost");
        let mut state = Resending::default();
        let open = alert(AlertStatus::Open, 0, 0);
        state.firing.insert(open.id.clone(), (open, 0));
        std::fs::write(&path, serde_json::to_vec(&state).unwrap()).unwrap();
        let (read, lost) = load_resending("am", &path);
        assert!(!lost);
        assert_eq!(read.firing.len(), 1);
        std::fs::write(&path, b"{\"firing\":{\"exp-").unwrap();
        let (read, lost) = load_resending("am", &path);
        assert!(lost);
        assert!(read.firing.is_empty());
        assert!(!path.exists());
        let aside: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(aside.len(), 1);
        assert!(aside[0].starts_with("am.firing.json.corrupt-"), "{aside:?}");
    }
}
