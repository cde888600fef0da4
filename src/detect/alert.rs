//! The alert: schema `exposure.alert/v1`, the one record every sink receives. Owns its JSON shape
//! (field order, RFC 3339 millisecond times), the stable id, and the severity rule.

use crate::time::{Ts, format_ts, parse_ts_str};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const ALERT_SCHEMA: &str = "exposure.alert/v1";

/// Where a window is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    /// The window just opened: `min_principals` novel principals within `span`.
    Open,
    /// The window grew: its novel principals doubled since the last alert (only with `updates`).
    Update,
    /// The window ended: no novel read for `quiet`, or the input ended.
    Closed,
}

/// Why a window closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClosedBy {
    /// No novel read for `quiet` (in event time, or by the wall clock in `watch`).
    Quiet,
    /// The replayed input ended while the window was still open.
    EndOfInput,
}

/// How bad an exposure looks; see docs/detection.md for the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Medium,
    High,
    Critical,
}

impl Severity {
    /// `critical`: the novel principals are at least `2 × min_principals` and at least as many as
    /// the baseline (readership at least doubled); `high`: one of the two; `medium`: neither.
    pub fn rate(
        novel_principals: usize,
        baseline_principals: usize,
        min_principals: u32,
    ) -> Severity {
        let many = novel_principals >= 2 * min_principals as usize;
        let doubled = novel_principals >= baseline_principals;
        match (many, doubled) {
            (true, true) => Severity::Critical,
            (true, false) | (false, true) => Severity::High,
            (false, false) => Severity::Medium,
        }
    }
}

/// One principal's novel reads inside a window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrincipalActivity {
    pub principal: String,
    #[serde(with = "rfc3339_ms")]
    pub first_read: Ts,
    #[serde(with = "rfc3339_ms")]
    pub last_read: Ts,
    pub reads: u64,
}

/// An exposure-window alert. Field order is the JSON order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub schema: String,
    /// Stable across runs and sources: derived from the table and `window_start` only.
    pub id: String,
    pub status: AlertStatus,
    pub table: String,
    #[serde(with = "rfc3339_ms")]
    pub window_start: Ts,
    #[serde(with = "rfc3339_ms")]
    pub window_end: Ts,
    pub duration_s: f64,
    /// Sorted by first read, then name.
    pub principals: Vec<PrincipalActivity>,
    pub novel_principals: usize,
    /// Novel reads inside the window.
    pub reads: u64,
    /// Principals normal for the table when the window opened.
    pub baseline_principals: usize,
    pub severity: Severity,
    /// The event time this alert describes the window at.
    #[serde(with = "rfc3339_ms")]
    pub as_of: Ts,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_by: Option<ClosedBy>,
}

impl Alert {
    /// One JSON line (without the newline).
    /// What makes this alert event unique in a window's lifecycle: a live run delivers each
    /// key once, even across restarts.
    pub fn delivery_key(&self) -> String {
        match self.status {
            AlertStatus::Open => format!("{}:open", self.id),
            AlertStatus::Update => format!("{}:update:{}", self.id, self.novel_principals),
            AlertStatus::Closed => format!("{}:closed", self.id),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an alert always serializes")
    }
}

/// The id of the window on `table` that started at `window_start`: `exp-` and 32 hex digits.
pub fn window_id(table: &str, window_start: Ts) -> String {
    let mut hash = Sha256::new();
    hash.update(table.as_bytes());
    hash.update([0u8]);
    hash.update(window_start.to_be_bytes());
    let digest = hash.finalize();
    let mut id = String::with_capacity(36);
    id.push_str("exp-");
    for byte in &digest[..16] {
        id.push_str(&format!("{byte:02x}"));
    }
    id
}

/// Serde for `Ts` as RFC 3339 UTC with milliseconds.
pub mod rfc3339_ms {
    use super::*;

    pub fn serialize<S: serde::Serializer>(ts: &Ts, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_str(&format_ts(*ts))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Ts, D::Error> {
        let text = String::deserialize(de)?;
        parse_ts_str(&text, crate::time::EpochUnit::Auto).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_rule() {
        assert_eq!(Severity::rate(40, 12, 3), Severity::Critical);
        assert_eq!(Severity::rate(6, 12, 3), Severity::High);
        assert_eq!(Severity::rate(3, 2, 3), Severity::High);
        assert_eq!(Severity::rate(3, 12, 3), Severity::Medium);
    }

    #[test]
    fn ids_are_stable_and_distinct() {
        let a = window_id("warehouse.hr.salaries", 1_773_842_531_512_000);
        assert_eq!(a, window_id("warehouse.hr.salaries", 1_773_842_531_512_000));
        assert_ne!(a, window_id("warehouse.hr.salaries", 1_773_842_531_513_000));
        assert_ne!(a, window_id("warehouse.hr.salarie", 1_773_842_531_512_000));
        assert_eq!(a.len(), 36);
        assert!(a.starts_with("exp-"));
    }

    #[test]
    fn alerts_round_trip_through_json() {
        let alert = Alert {
            schema: ALERT_SCHEMA.into(),
            id: window_id("t", 0),
            status: AlertStatus::Closed,
            table: "t".into(),
            window_start: 1_773_842_531_512_000,
            window_end: 1_773_842_591_512_000,
            duration_s: 60.0,
            principals: vec![PrincipalActivity {
                principal: "p".into(),
                first_read: 1_773_842_531_512_000,
                last_read: 1_773_842_591_512_000,
                reads: 2,
            }],
            novel_principals: 1,
            reads: 2,
            baseline_principals: 4,
            severity: Severity::Medium,
            as_of: 1_773_842_591_512_000,
            closed_by: Some(ClosedBy::Quiet),
        };
        let json = alert.to_json();
        assert!(
            json.starts_with(r#"{"schema":"exposure.alert/v1","id":"exp-"#),
            "{json}"
        );
        assert!(
            json.contains(r#""window_start":"2026-03-18T14:02:11.512Z""#),
            "{json}"
        );
        let back: Alert = serde_json::from_str(&json).unwrap();
        assert_eq!(back, alert);
    }
}
