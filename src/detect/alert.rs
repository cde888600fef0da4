//! The alert: schema `exposure.alert/v1`, the one record every sink receives. Owns its JSON shape
//! (field order, RFC 3339 millisecond times), the stable id, and the severity rule. A window's
//! alerts (`open`, `update`, `closed`) describe the window; a `grant` alert describes one
//! permission change and carries no window fields.

use crate::event::PermissionChange;
use crate::time::{Ts, format_ts, parse_ts_str};
use serde::ser::SerializeStruct;
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
    /// A change granted read on a table (or a container of it) to everyone or a large group:
    /// sent at once, before anyone reads.
    Grant,
    /// After a read grant was revoked, a principal it covered (for a grant to everyone: one
    /// who read through it), not normal for the table, read it again: the revoke did not close
    /// it (another grant, a role, a cached credential).
    #[serde(rename = "still_readable")]
    StillReadable,
}

impl AlertStatus {
    /// The name as alerts write it (`open`, …, `still_readable`).
    pub fn name(self) -> &'static str {
        match self {
            AlertStatus::Open => "open",
            AlertStatus::Update => "update",
            AlertStatus::Closed => "closed",
            AlertStatus::Grant => "grant",
            AlertStatus::StillReadable => "still_readable",
        }
    }
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
    /// The name as alerts write it (`medium`, `high`, `critical`).
    pub fn name(self) -> &'static str {
        match self {
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// The severity, weighed by the sensitivity of the data (docs/detection.md, "Severity"): a
    /// window on `restricted` data one step up and on `confidential` at least `high`; a grant
    /// or a read after a revoke on `restricted` data `critical` and on `confidential` at least
    /// `high`; anything on `public` data one step down; `internal` as it is.
    pub fn weighed(self, sensitivity: super::policy::Sensitivity, window: bool) -> Severity {
        use super::policy::Sensitivity::*;
        let up = match self {
            Severity::Medium => Severity::High,
            _ => Severity::Critical,
        };
        let down = match self {
            Severity::Critical => Severity::High,
            _ => Severity::Medium,
        };
        match (sensitivity, window) {
            (Restricted, true) => up,
            (Restricted, false) => Severity::Critical,
            (Confidential, _) => self.max(Severity::High),
            (Internal, _) => self,
            (Public, _) => down,
        }
    }

    /// `critical`: the novel principals are at least `2 × min_principals` and at least as many as
    /// the baseline (readership at least doubled); `high`: one of the two; `medium`: neither.
    /// (A window with an anonymous reader is `critical` whatever its size.)
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

/// A permission change as an alert shows it: a window's `cause`, or a `grant` alert's
/// `change`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRecord {
    #[serde(with = "rfc3339_ms")]
    pub ts: Ts,
    pub actor: String,
    pub object: String,
    pub grantee: String,
    pub privilege: String,
    /// The statement or request as logged, where the log has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
}

impl From<&PermissionChange> for ChangeRecord {
    fn from(change: &PermissionChange) -> ChangeRecord {
        ChangeRecord {
            ts: change.ts,
            actor: change.actor.clone(),
            object: change.object.clone(),
            grantee: change.grantee.clone(),
            privilege: change.privilege.clone(),
            statement: change.statement.clone(),
        }
    }
}

/// An alert. Field order is the JSON order; a `grant` alert leaves out the window's fields
/// (from `window_start` to `baseline_principals`, and `closed_by`), and every field after
/// `closed_by` appears only when set, so alerts of logs without permission changes are
/// exactly what they were before root cause existed.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Alert {
    pub schema: String,
    /// Stable across runs and sources: derived from the table and `window_start` only (for a
    /// `grant` alert: from the change).
    pub id: String,
    pub status: AlertStatus,
    pub table: String,
    #[serde(default, with = "rfc3339_ms")]
    pub window_start: Ts,
    #[serde(default, with = "rfc3339_ms")]
    pub window_end: Ts,
    #[serde(default)]
    pub duration_s: f64,
    /// Sorted by first read, then name.
    #[serde(default)]
    pub principals: Vec<PrincipalActivity>,
    /// How many principals were left out of `principals` to fit a receiver (a sink's
    /// `max_principals`); 0, and not written, in the alerts `exposure` writes itself.
    #[serde(default)]
    pub principals_truncated: usize,
    #[serde(default)]
    pub novel_principals: usize,
    /// Novel reads inside the window.
    #[serde(default)]
    pub reads: u64,
    /// Principals normal for the table when the window opened.
    #[serde(default)]
    pub baseline_principals: usize,
    pub severity: Severity,
    /// How sensitive the table's data is, when `[[classify]]` says (a `grant` on a container:
    /// the most sensitive of it and its tables).
    #[serde(default)]
    pub sensitivity: Option<super::policy::Sensitivity>,
    /// The event time this alert describes the window at (a `grant` alert: the change's time).
    #[serde(with = "rfc3339_ms")]
    pub as_of: Ts,
    #[serde(default)]
    pub closed_by: Option<ClosedBy>,
    /// The permission change that most plausibly opened the window (docs/detection.md,
    /// "Root cause"); absent when the logs show none.
    #[serde(default)]
    pub cause: Option<ChangeRecord>,
    /// The cause's time: when the table became readable to the window's principals.
    #[serde(default, with = "rfc3339_ms_opt")]
    pub exposed_from: Option<Ts>,
    /// When the change that reverted the cause was made, once the logs showed it.
    #[serde(default, with = "rfc3339_ms_opt")]
    pub exposed_until: Option<Ts>,
    /// A `grant` alert's change.
    #[serde(default)]
    pub change: Option<ChangeRecord>,
    /// A `grant` alert on a container: the tables in it the run knows, by name.
    #[serde(default)]
    pub tables: Vec<String>,
    /// A `still_readable` alert: a grant that still lets the principal read, if the logs show
    /// one.
    #[serde(default)]
    pub standing: Option<ChangeRecord>,
}

impl Serialize for Alert {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        struct Time(Ts);
        impl Serialize for Time {
            fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
                ser.serialize_str(&format_ts(self.0))
            }
        }
        let window = self.is_window();
        let mut out = ser.serialize_struct("Alert", 20)?;
        out.serialize_field("schema", &self.schema)?;
        out.serialize_field("id", &self.id)?;
        out.serialize_field("status", &self.status)?;
        out.serialize_field("table", &self.table)?;
        if window {
            out.serialize_field("window_start", &Time(self.window_start))?;
            out.serialize_field("window_end", &Time(self.window_end))?;
            out.serialize_field("duration_s", &self.duration_s)?;
            out.serialize_field("principals", &self.principals)?;
            if self.principals_truncated > 0 {
                out.serialize_field("principals_truncated", &self.principals_truncated)?;
            }
            out.serialize_field("novel_principals", &self.novel_principals)?;
            out.serialize_field("reads", &self.reads)?;
            out.serialize_field("baseline_principals", &self.baseline_principals)?;
        } else if self.status == AlertStatus::StillReadable {
            out.serialize_field("principals", &self.principals)?;
        }
        out.serialize_field("severity", &self.severity)?;
        if let Some(sensitivity) = &self.sensitivity {
            out.serialize_field("sensitivity", sensitivity)?;
        }
        out.serialize_field("as_of", &Time(self.as_of))?;
        if let (true, Some(closed_by)) = (window, &self.closed_by) {
            out.serialize_field("closed_by", closed_by)?;
        }
        if let Some(cause) = &self.cause {
            out.serialize_field("cause", cause)?;
        }
        if let Some(from) = self.exposed_from {
            out.serialize_field("exposed_from", &Time(from))?;
        }
        if let Some(until) = self.exposed_until {
            out.serialize_field("exposed_until", &Time(until))?;
        }
        if let Some(change) = &self.change {
            out.serialize_field("change", change)?;
        }
        if !self.tables.is_empty() {
            out.serialize_field("tables", &self.tables)?;
        }
        if let Some(standing) = &self.standing {
            out.serialize_field("standing", standing)?;
        }
        out.end()
    }
}

impl Alert {
    /// One JSON line (without the newline).
    /// What makes this alert event unique in a window's lifecycle: a live run delivers each
    /// key once, even across restarts.
    pub fn delivery_key(&self) -> String {
        match self.status {
            AlertStatus::Open => format!("{}:open", self.id),
            // The revert of a closed window's cause.
            AlertStatus::Update if self.closed_by.is_some() => format!("{}:reverted", self.id),
            AlertStatus::Update => format!("{}:update:{}", self.id, self.novel_principals),
            AlertStatus::Closed => format!("{}:closed", self.id),
            AlertStatus::Grant => format!("{}:grant", self.id),
            AlertStatus::StillReadable => format!("{}:still_readable", self.id),
        }
    }

    /// Whether the window this alert describes has ended: a `closed` alert, or the `update` of
    /// a closed window (its cause reverted later).
    pub fn window_ended(&self) -> bool {
        match self.status {
            AlertStatus::Closed => true,
            AlertStatus::Update => self.closed_by.is_some(),
            AlertStatus::Open | AlertStatus::Grant | AlertStatus::StillReadable => false,
        }
    }

    /// Whether this alert describes a window (not a `grant`).
    pub fn is_window(&self) -> bool {
        !matches!(self.status, AlertStatus::Grant | AlertStatus::StillReadable)
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

/// The id of the `grant` alert of `change` on `table`: `grant-` and 32 hex digits, from the
/// table, the change's time, grantee and privilege.
/// `still-` and a hash of (table, principal, the revoked grant): one `still_readable` alert per
/// principal, table and grant, the same in every run.
pub fn still_readable_id(table: &str, principal: &str, grant: &PermissionChange) -> String {
    grant_id(&format!("{table}\0{principal}"), grant).replacen("grant-", "still-", 1)
}

pub fn grant_id(table: &str, change: &PermissionChange) -> String {
    let mut hash = Sha256::new();
    for part in [table, &change.grantee, &change.privilege, &change.object] {
        hash.update(part.as_bytes());
        hash.update([0u8]);
    }
    hash.update(change.ts.to_be_bytes());
    let digest = hash.finalize();
    let mut id = String::with_capacity(38);
    id.push_str("grant-");
    for byte in &digest[..16] {
        id.push_str(&format!("{byte:02x}"));
    }
    id
}

/// Serde for an optional `Ts` (deserializing only; absent is `None`).
pub mod rfc3339_ms_opt {
    use super::*;

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Option<Ts>, D::Error> {
        let text = Option::<String>::deserialize(de)?;
        text.map(|t| {
            parse_ts_str(&t, crate::time::EpochUnit::Auto).map_err(serde::de::Error::custom)
        })
        .transpose()
    }
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
    fn sensitivity_weighs_severity_as_the_table_in_docs_says() {
        use crate::detect::policy::Sensitivity::*;
        let (m, h, c) = (Severity::Medium, Severity::High, Severity::Critical);
        let window = |s: Severity, level| s.weighed(level, true);
        assert_eq!([window(m, Restricted), window(h, Restricted)], [h, c]);
        assert_eq!([window(m, Confidential), window(c, Confidential)], [h, c]);
        assert_eq!([window(m, Internal), window(h, Internal)], [m, h]);
        assert_eq!([window(c, Public), window(m, Public)], [h, m]);
        let grant = |s: Severity, level| s.weighed(level, false);
        assert_eq!([grant(h, Restricted), grant(h, Confidential)], [c, h]);
        assert_eq!([grant(c, Public), grant(h, Internal)], [h, h]);
    }

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
            principals_truncated: 0,
            novel_principals: 1,
            reads: 2,
            baseline_principals: 4,
            severity: Severity::Medium,
            sensitivity: None,
            as_of: 1_773_842_591_512_000,
            closed_by: Some(ClosedBy::Quiet),
            cause: None,
            exposed_from: None,
            exposed_until: None,
            change: None,
            tables: Vec::new(),
            standing: None,
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
