//! PagerDuty Events API v2: `trigger` when a window opens (and again, same `dedup_key`, when it
//! grows), `resolve` when it closes. `dedup_key` is the alert id, so one window is one incident.

use super::Secret;
use super::{DeliveryError, Sink, SinkFuture};
use crate::detect::{Alert, AlertStatus, Severity};
use serde_json::json;

pub fn default_url() -> String {
    "https://events.pagerduty.com".to_string()
}

pub struct PagerDutySink {
    name: String,
    enqueue: reqwest::Url,
    client: reqwest::Client,
    routing_key: Secret,
    source: String,
}

/// PagerDuty's severities: critical, error, warning, info.
pub fn severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "critical",
        Severity::High => "error",
        Severity::Medium => "warning",
    }
}

/// The Events v2 body for `alert`.
pub fn event(alert: &Alert, routing_key: &str, source: &str) -> serde_json::Value {
    // The `update` of a closed window (its cause reverted) resolves again: PagerDuty keeps
    // a resolved incident resolved.
    let action = if alert.window_ended() {
        "resolve"
    } else {
        "trigger"
    };
    let principals: Vec<&str> = alert
        .principals
        .iter()
        .map(|p| p.principal.as_str())
        .collect();
    let mut details = if alert.is_window() {
        json!({
            "table": alert.table,
            "status": alert.status,
            "window_start": crate::time::format_ts(alert.window_start),
            "window_end": crate::time::format_ts(alert.window_end),
            "novel_principals": alert.novel_principals,
            "baseline_principals": alert.baseline_principals,
            "reads": alert.reads,
            "principals": principals,
        })
    } else if alert.status == AlertStatus::StillReadable {
        json!({ "table": alert.table, "status": alert.status, "principals": principals })
    } else {
        json!({ "table": alert.table, "status": alert.status, "tables": alert.tables })
    };
    let details_map = details.as_object_mut().expect("an object");
    if alert.principals_truncated > 0 {
        details_map.insert(
            "principals_truncated".into(),
            json!(alert.principals_truncated),
        );
        details_map.insert("principals_all".into(), json!(super::bound::ALL_PRINCIPALS));
    }
    super::add_root_cause(alert, details_map, |c| json!(c));
    json!({
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": super::at_most(&alert.id, 255),
        "payload": {
            "summary": super::at_most(&super::summary(alert), 1024),
            "source": source,
            "severity": severity(alert.severity),
            "timestamp": crate::time::format_ts(alert.as_of),
            "component": alert.table,
            "class": match alert.status {
                AlertStatus::Grant => "exposure_grant",
                AlertStatus::StillReadable => "exposure_still_readable",
                _ => "exposure_window",
            },
            "custom_details": details,
        },
    })
}

/// PagerDuty refuses events larger than 512 KB; this leaves room for the HTTP framing.
pub const PAGERDUTY_MAX_BYTES: usize = 500 * 1024;

/// The event for `alert`, within [`PAGERDUTY_MAX_BYTES`]: its principals cut until it fits.
/// A resolve always fits (it needs only its `dedup_key`): an incident is never left open
/// because its window was wide.
pub fn body(alert: &Alert, routing_key: &str, source: &str) -> Result<Vec<u8>, DeliveryError> {
    let encode = |a: &Alert| event(a, routing_key, source).to_string().into_bytes();
    if let Some(body) = super::bound::fit(alert, PAGERDUTY_MAX_BYTES, encode) {
        return Ok(body);
    }
    if alert.window_ended() {
        let resolve = json!({
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": super::at_most(&alert.id, 255),
        });
        return Ok(resolve.to_string().into_bytes());
    }
    Err(DeliveryError::Rejected {
        reason: format!(
            "the event exceeds PagerDuty's 512 KB even with no principal listed (table name \
             or tables list of {} bytes)",
            alert.table.len() + alert.tables.iter().map(String::len).sum::<usize>()
        ),
    })
}

impl PagerDutySink {
    pub fn new(
        name: String,
        base: reqwest::Url,
        client: reqwest::Client,
        routing_key: Secret,
        source: String,
    ) -> PagerDutySink {
        let mut enqueue = base;
        let path = format!("{}/v2/enqueue", enqueue.path().trim_end_matches('/'));
        enqueue.set_path(&path);
        PagerDutySink {
            name,
            enqueue,
            client,
            routing_key,
            source,
        }
    }
}

impl Sink for PagerDutySink {
    fn name(&self) -> &str {
        &self.name
    }

    fn deliver<'a>(&'a mut self, alert: &'a Alert) -> SinkFuture<'a> {
        Box::pin(async move {
            let body = body(alert, self.routing_key.expose(), &self.source)?;
            super::http::post_json(&self.client, &self.enqueue, &[], body).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::AlertStatus;
    use crate::sink::bound::tests::wide_alert;

    /// 20 000 principals with long names: each event fits PagerDuty's 512 KB, the trigger
    /// says how many it left out, and the resolve always goes (even when nothing but its key
    /// fits).
    #[test]
    fn every_event_fits_pagerdutys_limit_and_a_resolve_always_goes() {
        let key = "k".repeat(32);
        for status in [AlertStatus::Open, AlertStatus::Closed] {
            let alert = wide_alert(status, 20_000, 40);
            let limited = crate::sink::bound::limit_principals(&alert, 20_000);
            let body = body(&limited, &key, "host").unwrap();
            assert!(body.len() <= PAGERDUTY_MAX_BYTES, "{}", body.len());
            let event: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let details = &event["payload"]["custom_details"];
            let listed = details["principals"].as_array().unwrap().len();
            assert!(listed > 1000, "as many as fit: {listed}");
            assert_eq!(
                listed + details["principals_truncated"].as_u64().unwrap() as usize,
                20_000
            );
        }
        // A table name beyond any limit: a trigger is refused (said), a resolve still goes.
        let mut huge = wide_alert(AlertStatus::Closed, 3, 8);
        huge.table = "t".repeat(600 * 1024);
        let resolve: serde_json::Value =
            serde_json::from_slice(&body(&huge, &key, "host").unwrap()).unwrap();
        assert_eq!(resolve["event_action"], "resolve");
        assert_eq!(resolve["dedup_key"], huge.id.as_str());
        huge.status = AlertStatus::Open;
        assert!(matches!(
            body(&huge, &key, "host"),
            Err(DeliveryError::Rejected { .. })
        ));
    }
}
