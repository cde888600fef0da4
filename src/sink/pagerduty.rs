//! PagerDuty Events API v2: `trigger` when a window opens (and again, same `dedup_key`, when it
//! grows), `resolve` when it closes. `dedup_key` is the alert id, so one window is one incident.

use super::Secret;
use super::{Sink, SinkFuture};
use crate::detect::{Alert, Severity};
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
    } else {
        json!({ "table": alert.table, "status": alert.status, "tables": alert.tables })
    };
    let details_map = details.as_object_mut().expect("an object");
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
            "class": if alert.is_window() { "exposure_window" } else { "exposure_grant" },
            "custom_details": details,
        },
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
            let body = event(alert, self.routing_key.expose(), &self.source).to_string();
            super::http::post_json(&self.client, &self.enqueue, &[], body.into_bytes()).await
        })
    }
}
