//! Alerts as OCSF **Detection Finding** events (class 2004, OCSF 1.7.0): what a SIEM that speaks
//! OCSF (Security Lake, Splunk, Sentinel, Chronicle…) takes without a mapping of its own. Owns
//! the mapping of docs/alerts.md ("OCSF") and the choice between the two alert formats; the
//! alert itself stays `exposure.alert/v1`, and is carried whole in `raw_data`.
//!
//! - A window's `open`, `update` and `closed` are the Create (200401), Update (200402) and
//!   Close (200403) activities of one finding: `finding_info.uid` is the alert id, so the
//!   SIEM folds them into one. A `grant` alert is a finding of its own, created.
//! - `start_time`/`end_time` are the window's bounds (a `grant`: the change's time), `time` is
//!   `as_of`, in milliseconds as OCSF's `timestamp_t` says.
//! - The table is the one `resources` entry; every principal is an `evidences` entry (its
//!   reads in `data`) and a User Name observable; the permission change that caused the window
//!   is one more evidence, named `cause`.

use crate::detect::policy::Sensitivity;
use crate::detect::{Alert, AlertStatus, ChangeRecord, ClosedBy, Severity};
use crate::time::{Ts, format_ts};
use serde_json::{Map, Value, json};
use std::io::{self, Write};

/// The OCSF schema version the events follow (`metadata.version`).
pub const OCSF_VERSION: &str = "1.7.0";

const CLASS_UID: u64 = 2004;
const CATEGORY_UID: u64 = 2;

/// How alerts are written: `exposure` (schema `exposure.alert/v1`, the default) or `ocsf`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertFormat {
    #[default]
    Exposure,
    Ocsf,
}

impl AlertFormat {
    /// One alert as one JSON document (no newline).
    pub fn encode(self, alert: &Alert) -> String {
        match self {
            AlertFormat::Exposure => alert.to_json(),
            AlertFormat::Ocsf => detection_finding(alert).to_string(),
        }
    }
}

/// OCSF milliseconds (`timestamp_t`) from microseconds.
fn millis(ts: Ts) -> i64 {
    ts.div_euclid(1000)
}

/// The OCSF Detection Finding of `alert`.
pub fn detection_finding(alert: &Alert) -> Value {
    let (activity_id, activity) = match alert.status {
        AlertStatus::Open | AlertStatus::Grant | AlertStatus::StillReadable => (1, "Create"),
        AlertStatus::Update => (2, "Update"),
        AlertStatus::Closed => (3, "Close"),
    };
    let (status_id, status) = if alert.window_ended() {
        (4, "Resolved")
    } else {
        (1, "New")
    };
    let (severity_id, severity) = match alert.severity {
        Severity::Medium => (3, "Medium"),
        Severity::High => (4, "High"),
        Severity::Critical => (5, "Critical"),
    };
    let (start, end) = match (&alert.change, alert.is_window()) {
        // A read after the revoke: its moment.
        _ if alert.status == AlertStatus::StillReadable => (alert.as_of, alert.as_of),
        (Some(change), false) => (change.ts, change.ts),
        _ => (alert.window_start, alert.window_end),
    };
    let mut evidences = Vec::new();
    let mut observables = vec![json!({
        "name": "resources[0].name",
        "type_id": 38,
        "type": "Resource Details Object: name",
        "value": alert.table,
    })];
    for activity in &alert.principals {
        observables.push(json!({
            "name": format!("evidences[{}].actor.user.name", evidences.len()),
            "type_id": 4,
            "type": "User Name",
            "value": activity.principal,
        }));
        evidences.push(json!({
            "name": "novel reader",
            "actor": {"user": {"name": activity.principal}},
            "data": {
                "first_read": format_ts(activity.first_read),
                "last_read": format_ts(activity.last_read),
                "reads": activity.reads,
            },
        }));
    }
    for (name, change) in [("cause", &alert.cause), ("change", &alert.change)] {
        if let Some(change) = change {
            evidences.push(change_evidence(name, change));
        }
    }
    let mut table = json!({"name": alert.table, "uid": alert.table, "type": "table"});
    if let Some(sensitivity) = alert.sensitivity {
        // OCSF's `data_classification.confidentiality_id`: 1 Not Confidential, 2 Confidential,
        // 5 Private, 6 Restricted.
        let (id, caption) = match sensitivity {
            Sensitivity::Public => (1, "Not Confidential"),
            Sensitivity::Internal => (5, "Private"),
            Sensitivity::Confidential => (2, "Confidential"),
            Sensitivity::Restricted => (6, "Restricted"),
        };
        table["data_classifications"] =
            json!([{"confidentiality_id": id, "confidentiality": caption}]);
    }
    let mut resources = vec![table];
    resources.extend(
        alert
            .tables
            .iter()
            .filter(|table| **table != alert.table)
            .map(|table| json!({"name": table, "uid": table, "type": "table"})),
    );

    let mut finding = Map::new();
    let mut put = |key: &str, value: Value| {
        finding.insert(key.to_string(), value);
    };
    put("activity_id", json!(activity_id));
    put("activity_name", json!(activity));
    put("category_uid", json!(CATEGORY_UID));
    put("category_name", json!("Findings"));
    put("class_uid", json!(CLASS_UID));
    put("class_name", json!("Detection Finding"));
    put("type_uid", json!(CLASS_UID * 100 + activity_id));
    put("type_name", json!(format!("Detection Finding: {activity}")));
    put("time", json!(millis(alert.as_of)));
    put("timezone_offset", json!(0));
    put("start_time", json!(millis(start)));
    put("end_time", json!(millis(end)));
    if alert.is_window() {
        put(
            "duration",
            json!(millis(alert.window_end - alert.window_start)),
        );
    }
    put("severity_id", json!(severity_id));
    put("severity", json!(severity));
    put("status_id", json!(status_id));
    put("status", json!(status));
    put("is_alert", json!(true));
    put("message", json!(message(alert)));
    put("finding_info", finding_info(alert, start, end));
    put("metadata", metadata(alert));
    put("resources", Value::Array(resources));
    if !evidences.is_empty() {
        put("evidences", Value::Array(evidences));
    }
    put("observables", Value::Array(observables));
    put("raw_data", json!(alert.to_json()));
    if alert.is_window() {
        let mut unmapped = json!({
            "novel_principals": alert.novel_principals,
            "baseline_principals": alert.baseline_principals,
            "reads": alert.reads,
        });
        if let Some(closed_by) = alert.closed_by {
            unmapped["closed_by"] = json!(match closed_by {
                ClosedBy::Quiet => "quiet",
                ClosedBy::EndOfInput => "end_of_input",
            });
        }
        if let Some(from) = alert.exposed_from {
            unmapped["exposed_from"] = json!(format_ts(from));
        }
        if let Some(until) = alert.exposed_until {
            unmapped["exposed_until"] = json!(format_ts(until));
        }
        put("unmapped", unmapped);
    }
    Value::Object(finding)
}

fn change_evidence(name: &str, change: &ChangeRecord) -> Value {
    let mut data = json!({
        "time": format_ts(change.ts),
        "object": change.object,
        "grantee": change.grantee,
        "privilege": change.privilege,
    });
    if let Some(statement) = &change.statement {
        data["statement"] = json!(statement);
    }
    json!({"name": name, "actor": {"user": {"name": change.actor}}, "data": data})
}

fn finding_info(alert: &Alert, start: Ts, end: Ts) -> Value {
    let (title, kind, analytic) = if alert.is_window() {
        (
            format!(
                "Exposure window on {}: {} unusual principal{}",
                alert.table,
                alert.novel_principals,
                if alert.novel_principals == 1 { "" } else { "s" }
            ),
            "Exposure window",
            json!({"name": "exposure window", "uid": "exposure.window", "type_id": 2, "type": "Behavioral"}),
        )
    } else {
        (
            format!("Read granted broadly on {}", alert.table),
            "Broad read grant",
            json!({"name": "broad read grant", "uid": "exposure.grant", "type_id": 1, "type": "Rule"}),
        )
    };
    json!({
        "uid": alert.id,
        "title": title,
        "desc": message(alert),
        "types": [kind],
        "analytic": analytic,
        "first_seen_time": millis(start),
        "last_seen_time": millis(end),
        "data_sources": ["data-access logs"],
    })
}

fn metadata(alert: &Alert) -> Value {
    json!({
        "version": OCSF_VERSION,
        "uid": alert.delivery_key(),
        "product": {
            "name": "exposure",
            "vendor_name": "exposure",
            "version": env!("CARGO_PKG_VERSION"),
        },
        "log_name": alert.schema,
    })
}

/// One sentence a person reads in the SIEM's list.
fn message(alert: &Alert) -> String {
    let window = format!(
        "{} to {}",
        format_ts(alert.window_start),
        format_ts(alert.window_end)
    );
    match alert.status {
        AlertStatus::Open => format!(
            "{} principals outside the baseline of {} ({} normal readers) began reading it: \
             window from {window}",
            alert.novel_principals, alert.table, alert.baseline_principals
        ),
        AlertStatus::Update => format!(
            "Exposure window on {} grew to {} unusual principals ({window})",
            alert.table, alert.novel_principals
        ),
        AlertStatus::Closed => format!(
            "Exposure window on {} ended: {window}, {} unusual principals, {} reads",
            alert.table, alert.novel_principals, alert.reads
        ),
        AlertStatus::Grant => match &alert.change {
            Some(change) => format!(
                "{} granted {} on {} to {} at {}",
                change.actor,
                change.privilege,
                change.object,
                change.grantee,
                format_ts(change.ts)
            ),
            None => format!("Read granted broadly on {}", alert.table),
        },
        AlertStatus::StillReadable => {
            let who = alert
                .principals
                .first()
                .map_or("", |p| p.principal.as_str());
            let revoked = match &alert.change {
                Some(change) => format!(
                    " after {} on {} to {} was revoked",
                    change.privilege, change.object, change.grantee
                ),
                None => String::new(),
            };
            let standing = match &alert.standing {
                Some(grant) => format!(
                    "; still granted: {} on {} to {} since {}",
                    grant.privilege,
                    grant.object,
                    grant.grantee,
                    format_ts(grant.ts)
                ),
                None => String::new(),
            };
            format!(
                "{who} read {} at {}{revoked}{standing}",
                alert.table,
                format_ts(alert.as_of)
            )
        }
    }
}

/// A writer of alert lines that turns each `exposure.alert/v1` line written to it into an
/// OCSF line: replay's paths write alerts one way, and `--output ocsf` wraps their output.
pub struct OcsfLines<W: Write> {
    inner: W,
    line: Vec<u8>,
}

impl<W: Write> OcsfLines<W> {
    pub fn new(inner: W) -> OcsfLines<W> {
        OcsfLines {
            inner,
            line: Vec::new(),
        }
    }
}

impl<W: Write> Write for OcsfLines<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut rest = bytes;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            self.line.extend_from_slice(&rest[..end]);
            rest = &rest[end + 1..];
            let alert: Alert = serde_json::from_slice(&self.line).map_err(io::Error::other)?;
            self.line.clear();
            let mut out = detection_finding(&alert).to_string().into_bytes();
            out.push(b'\n');
            self.inner.write_all(&out)?;
        }
        self.line.extend_from_slice(rest);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{ALERT_SCHEMA, PrincipalActivity};

    fn window_alert(status: AlertStatus) -> Alert {
        Alert {
            schema: ALERT_SCHEMA.into(),
            id: "exp-0123".into(),
            status,
            table: "warehouse.hr.salaries".into(),
            window_start: 1_773_658_800_000_000,
            window_end: 1_773_662_400_123_000,
            duration_s: 3600.123,
            principals: vec![PrincipalActivity {
                principal: "mallory".into(),
                first_read: 1_773_658_800_000_000,
                last_read: 1_773_662_400_123_000,
                reads: 7,
            }],
            principals_truncated: 0,
            novel_principals: 1,
            reads: 7,
            baseline_principals: 12,
            severity: Severity::Critical,
            sensitivity: None,
            as_of: 1_773_662_400_123_000,
            closed_by: (status == AlertStatus::Closed).then_some(ClosedBy::Quiet),
            cause: None,
            exposed_from: None,
            exposed_until: None,
            change: None,
            tables: Vec::new(),
            standing: None,
        }
    }

    #[test]
    fn a_window_is_one_finding_created_updated_and_closed() {
        let ids = [
            (AlertStatus::Open, 200401, 1),
            (AlertStatus::Update, 200402, 1),
            (AlertStatus::Closed, 200403, 4),
        ];
        for (status, type_uid, status_id) in ids {
            let finding = detection_finding(&window_alert(status));
            assert_eq!(finding["class_uid"], 2004);
            assert_eq!(finding["type_uid"], type_uid);
            assert_eq!(finding["status_id"], status_id);
            assert_eq!(finding["finding_info"]["uid"], "exp-0123");
            assert_eq!(finding["severity_id"], 5);
            assert_eq!(finding["start_time"], 1_773_658_800_000i64);
            assert_eq!(finding["end_time"], 1_773_662_400_123i64);
            assert_eq!(finding["resources"][0]["name"], "warehouse.hr.salaries");
            assert_eq!(finding["evidences"][0]["actor"]["user"]["name"], "mallory");
            assert_eq!(finding["metadata"]["version"], OCSF_VERSION);
            let raw: Alert = serde_json::from_str(finding["raw_data"].as_str().unwrap()).unwrap();
            assert_eq!(raw, window_alert(status));
        }
    }

    #[test]
    fn lines_written_in_pieces_come_out_whole() {
        let line = format!("{}\n", window_alert(AlertStatus::Open).to_json());
        let mut out = OcsfLines::new(Vec::new());
        let (a, b) = line.as_bytes().split_at(17);
        out.write_all(a).unwrap();
        out.write_all(b).unwrap();
        out.write_all(line.as_bytes()).unwrap();
        let text = String::from_utf8(out.inner).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0], lines[1]);
        let finding: Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(finding, detection_finding(&window_alert(AlertStatus::Open)));
    }
}
