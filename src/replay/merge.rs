//! `exposure merge`: puts the alerts of `replay --shard K/N` runs back together, in the order
//! the unsharded run writes them, byte for byte.
//!
//! A shard's output says what it is: its first line is a [`ShardHeader`] (K/N, the release,
//! a digest of the settings and one of the inputs) and its last a [`ShardEnd`] (how many
//! alerts it wrote), written only when the replay finished. Merge refuses, naming the file, a
//! shard without them (torn, empty, killed), one whose count does not match, a set with a
//! shard missing or given twice, and shards run with other settings, inputs, N or release.
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

use crate::detect::shard::Shard;
use crate::detect::{Alert, AlertStatus};
use crate::time::Ts;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;

/// The first line of a `replay --shard` output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardHeader {
    /// `K/N`.
    pub exposure_shard: String,
    /// The release that wrote it: detection may differ between releases.
    pub version: String,
    /// Digest of everything that decides the alerts: configuration file, detection and
    /// selection flags, approvals.
    pub settings: String,
    /// Digest of the inputs: each file's name (with its folder) and size, in order.
    pub inputs: String,
}

/// The last line of a `replay --shard` output: written only once the replay finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardEnd {
    /// `K/N`, as in the header.
    pub exposure_shard_end: String,
    /// The alert lines between header and end.
    pub alerts: u64,
}

impl ShardHeader {
    pub fn new(shard: Shard, settings: String, inputs: String) -> ShardHeader {
        ShardHeader {
            exposure_shard: shard.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            settings,
            inputs,
        }
    }

    /// The line, with its newline.
    pub fn line(&self) -> String {
        format!(
            "{}\n",
            serde_json::to_string(self).expect("a header serializes")
        )
    }
}

impl ShardEnd {
    /// The line, with its newline.
    pub fn line(shard: Shard, alerts: u64) -> String {
        let end = ShardEnd {
            exposure_shard_end: shard.to_string(),
            alerts,
        };
        format!(
            "{}\n",
            serde_json::to_string(&end).expect("an end serializes")
        )
    }
}

/// Why a set of shard outputs cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error("{0}: empty: its `replay --shard` did not finish (killed?); run that shard again")]
    Empty(PathBuf),
    #[error(
        "{0}: not the output of `replay --shard` (its first line is no shard header); run the \
         shard again with this release"
    )]
    NoHeader(PathBuf),
    #[error(
        "{0}: incomplete: no end record, its `replay --shard` did not finish (killed, or \
         failed); run that shard again"
    )]
    Incomplete(PathBuf),
    #[error("{path}: says it holds {said} alerts but holds {found}: damaged or cut")]
    Count {
        path: PathBuf,
        said: u64,
        found: u64,
    },
    #[error("{path}: the end record names shard {end}, the header {header}")]
    EndMismatch {
        path: PathBuf,
        header: String,
        end: String,
    },
    #[error("{0}: {1}")]
    BadHeader(PathBuf, String),
    #[error(
        "{path} was run {what} than {first}: shards must be run with the same inputs, \
         configuration and flags"
    )]
    Mismatch {
        path: PathBuf,
        first: PathBuf,
        what: &'static str,
    },
    #[error("shard {shard} is given twice: {first} and {again}")]
    Repeated {
        shard: String,
        first: PathBuf,
        again: PathBuf,
    },
    #[error("shard{} {} missing: the merge would leave out their tables' alerts", if .missing.len() == 1 { "" } else { "s" }, .missing.join(", "))]
    Missing { missing: Vec<String> },
    #[error(transparent)]
    Alert(#[from] BadAlert),
}

/// Reads one shard output's text: checks its header and end record and returns its alert
/// lines with its header.
pub fn read_shard(input: PathBuf, text: &str) -> Result<(ShardHeader, ShardAlerts), ShardError> {
    let mut lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let Some(first) = lines.first() else {
        return Err(ShardError::Empty(input));
    };
    if !first.starts_with("{\"exposure_shard\"") {
        return Err(ShardError::NoHeader(input));
    }
    let header: ShardHeader = serde_json::from_str(first)
        .map_err(|e| ShardError::BadHeader(input.clone(), format!("line 1: {e}")))?;
    let shard: Shard = header
        .exposure_shard
        .parse()
        .map_err(|e| ShardError::BadHeader(input.clone(), format!("line 1: {e}")))?;
    let end = match lines.last().filter(|_| lines.len() > 1) {
        Some(last) if last.starts_with("{\"exposure_shard_end\"") => {
            serde_json::from_str::<ShardEnd>(last).map_err(|e| {
                ShardError::BadHeader(input.clone(), format!("line {}: {e}", lines.len()))
            })?
        }
        _ => return Err(ShardError::Incomplete(input)),
    };
    if end.exposure_shard_end != shard.to_string() {
        return Err(ShardError::EndMismatch {
            path: input,
            header: header.exposure_shard,
            end: end.exposure_shard_end,
        });
    }
    lines.pop();
    lines.remove(0);
    if lines.len() as u64 != end.alerts {
        return Err(ShardError::Count {
            path: input,
            said: end.alerts,
            found: lines.len() as u64,
        });
    }
    let alerts = ShardAlerts {
        input,
        lines: lines.into_iter().map(str::to_string).collect(),
        first_line: 2,
    };
    Ok((header, alerts))
}

/// Checks that `shards` are the N shards of one run: the same N, release, settings and
/// inputs, each K once.
pub fn check_set(shards: &[(ShardHeader, ShardAlerts)]) -> Result<(), ShardError> {
    let Some((first, first_alerts)) = shards.first() else {
        return Ok(());
    };
    let parse = |h: &ShardHeader| h.exposure_shard.parse::<Shard>().ok();
    let Some(first_shard) = parse(first) else {
        return Ok(());
    };
    let count = first_shard.count();
    let mut seen: Vec<Option<&PathBuf>> = vec![None; count as usize];
    for (header, alerts) in shards {
        let path = &alerts.input;
        let mismatch = |what| ShardError::Mismatch {
            path: path.clone(),
            first: first_alerts.input.clone(),
            what,
        };
        let shard = parse(header).expect("checked by read_shard");
        if shard.count() != count {
            return Err(mismatch("with another shard count"));
        }
        if header.version != first.version {
            return Err(mismatch("by another release"));
        }
        if header.settings != first.settings {
            return Err(mismatch("with other settings"));
        }
        if header.inputs != first.inputs {
            return Err(mismatch("over other inputs"));
        }
        let slot = &mut seen[shard.index() as usize - 1];
        if let Some(before) = slot {
            return Err(ShardError::Repeated {
                shard: shard.to_string(),
                first: (*before).clone(),
                again: path.clone(),
            });
        }
        *slot = Some(path);
    }
    let missing: Vec<String> = seen
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_none())
        .map(|(k, _)| format!("{}/{count}", k + 1))
        .collect();
    if !missing.is_empty() {
        return Err(ShardError::Missing { missing });
    }
    Ok(())
}

/// Where an alert goes among the alerts of its instant.
fn phase(alert: &Alert) -> u8 {
    match alert.status {
        AlertStatus::Closed => 0,
        // Raised by a read, with the instant's updates.
        AlertStatus::Open | AlertStatus::StillReadable => 1,
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
    /// The line number of the first in its file (after the header: 2).
    pub first_line: usize,
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
                line: at + alerts.first_line,
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
            first_line: 1,
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
