//! `exposure merge`: puts the alerts of `replay --shard K/N` runs back together, in the order
//! the unsharded run writes them, byte for byte.
//!
//! The detector emits alerts as event time moves: at each instant first the windows that
//! closed by then, then what the reads of that instant opened or grew (table by table), then
//! what the permission changes of that instant raised (table by table). So the unsharded
//! order is that of the key (`as_of`, phase, table). Alerts of one table all come from one
//! shard, so between shards keys never tie. One exception: with `replay --from`, a window's
//! alerts dated before `--from` are held and go out just before its first alert after it; each
//! such run of older alerts takes the key of the alert that ends it, and keeps its place
//! before that alert. Each shard's output is already in order; merging sorts by that key,
//! each shard's own order kept for equal keys.

use crate::detect::{Alert, AlertStatus};
use crate::time::Ts;
use std::fmt;
use std::path::PathBuf;

/// Where an alert goes among the alerts of its instant.
fn phase(alert: &Alert) -> u8 {
    match alert.status {
        AlertStatus::Closed => 0,
        AlertStatus::Open => 1,
        // An update raised by a revoke (it carries `exposed_until`) comes with the changes.
        AlertStatus::Update if alert.exposed_until.is_none() => 1,
        AlertStatus::Update | AlertStatus::Grant => 2,
    }
}

/// The unsharded run's order among alerts of different tables.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    as_of: Ts,
    phase: u8,
    table: String,
}

impl Key {
    fn of(alert: &Alert) -> Key {
        Key {
            as_of: alert.as_of,
            phase: phase(alert),
            table: alert.table.clone(),
        }
    }
}

/// A line that is not an alert.
#[derive(Debug)]
pub struct BadAlert {
    pub input: PathBuf,
    pub line: usize,
    pub error: String,
}

impl fmt::Display for BadAlert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: not an alert line of `exposure replay`: {}",
            self.input.display(),
            self.line,
            self.error
        )
    }
}

impl std::error::Error for BadAlert {}

/// One shard's alerts: its lines as written, in its order.
pub struct ShardAlerts {
    pub input: PathBuf,
    pub lines: Vec<String>,
}

/// What [`merge`] gives: the lines in the unsharded order, and how many were given twice
/// (the same line in two inputs: a shard's output given twice), left out.
pub struct Merged {
    pub lines: Vec<String>,
    pub repeated: usize,
}

/// Merges shards' alerts into the unsharded run's order.
pub fn merge(shards: &[ShardAlerts]) -> Result<Merged, BadAlert> {
    let mut keyed: Vec<(Key, usize, usize)> = Vec::new();
    for (shard, alerts) in shards.iter().enumerate() {
        // Runs of alerts older than the newest so far take the key of the alert that ends
        // them (see the module's documentation).
        let mut newest: Option<Key> = None;
        let mut held: Vec<usize> = Vec::new();
        for (at, line) in alerts.lines.iter().enumerate() {
            let alert: Alert = serde_json::from_str(line).map_err(|e| BadAlert {
                input: alerts.input.clone(),
                line: at + 1,
                error: e.to_string(),
            })?;
            let key = Key::of(&alert);
            if newest.as_ref().is_some_and(|n| key < *n) {
                held.push(at);
                continue;
            }
            for h in held.drain(..) {
                keyed.push((key.clone(), shard, h));
            }
            keyed.push((key.clone(), shard, at));
            newest = Some(key);
        }
        let last = newest.unwrap_or(Key {
            as_of: Ts::MAX,
            phase: u8::MAX,
            table: String::new(),
        });
        keyed.extend(held.into_iter().map(|h| (last.clone(), shard, h)));
    }
    keyed.sort();
    let mut lines: Vec<String> = Vec::with_capacity(keyed.len());
    let mut seen = std::collections::HashSet::new();
    let mut repeated = 0;
    for (_, shard, at) in keyed {
        let line = &shards[shard].lines[at];
        if seen.insert(line.as_str()) {
            lines.push(line.clone());
        } else {
            repeated += 1;
        }
    }
    Ok(Merged { lines, repeated })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(status: &str, table: &str, as_of: &str, extra: &str) -> String {
        format!(
            r#"{{"schema":"exposure.alert/v1","id":"{table}-{as_of}","status":"{status}","table":"{table}","severity":"high","as_of":"{as_of}"{extra}}}"#
        )
    }

    fn shard(name: &str, lines: &[String]) -> ShardAlerts {
        ShardAlerts {
            input: PathBuf::from(name),
            lines: lines.to_vec(),
        }
    }

    #[test]
    fn an_instant_gives_closes_then_opens_then_what_changes_raised() {
        let t = "2026-03-02T10:00:00.000Z";
        let a = [line("open", "a.t", t, ""), line("grant", "a.t", t, "")];
        let b = [
            line("closed", "b.t", t, ""),
            line("open", "b.t", t, ""),
            line(
                "update",
                "b.t",
                t,
                r#","exposed_until":"2026-03-02T09:00:00.000Z""#,
            ),
        ];
        let merged = merge(&[shard("a", &a), shard("b", &b)]).unwrap();
        assert_eq!(
            merged.lines,
            vec![
                b[0].clone(),
                a[0].clone(),
                b[1].clone(),
                a[1].clone(),
                b[2].clone()
            ]
        );
        assert_eq!(merged.repeated, 0);
    }

    #[test]
    fn held_alerts_go_out_just_before_the_alert_that_releases_them() {
        let a = [
            line("open", "a.t", "2026-03-02T10:00:00.000Z", ""),
            // Held (dated before --from), released with the next one.
            line("open", "a.u", "2026-03-01T10:00:00.000Z", ""),
            line("closed", "a.u", "2026-03-02T12:00:00.000Z", ""),
        ];
        let b = [line("open", "b.t", "2026-03-02T11:00:00.000Z", "")];
        let merged = merge(&[shard("a", &a), shard("b", &b)]).unwrap();
        assert_eq!(
            merged.lines,
            vec![a[0].clone(), b[0].clone(), a[1].clone(), a[2].clone()]
        );
    }

    #[test]
    fn a_shard_given_twice_counts_once_and_a_bad_line_is_named() {
        let a = [line("open", "a.t", "2026-03-02T10:00:00.000Z", "")];
        let merged = merge(&[shard("a", &a), shard("again", &a)]).unwrap();
        assert_eq!((merged.lines.len(), merged.repeated), (1, 1));
        let bad = merge(&[shard("x.jsonl", &[a[0].clone(), "{oops".into()])])
            .err()
            .unwrap();
        assert_eq!(bad.line, 2);
        assert!(bad.to_string().starts_with("x.jsonl:2: not an alert line"));
    }
}
