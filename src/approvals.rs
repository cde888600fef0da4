//! The analyst's verdicts on a state dir: `exposure baseline allow` (these principals are fine
//! on these tables, until a time or for good) and `forget` (take these principals out of the
//! baseline, and withdraw their approvals), each appended as one JSON line, with who made it,
//! when and why, to the audit log `baseline-changes.jsonl` in the state dir. The log is the
//! only record: the approvals in force are what it says, folded in order; `watch` reads it at
//! start and whenever it grows, `replay --approvals DIR` reads its approvals. Nothing here
//! decides detection: [`crate::detect::policy::Approval`] is what the detector is given.

use crate::detect::Policies;
use crate::detect::policy::{Approval, compile_glob};
use crate::state::StateDir;
use crate::time::{Ts, format_ts, parse_cli_time};
use serde::{Deserialize, Serialize};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;

/// The audit log's file name in a state dir.
pub const LOG_FILE: &str = "baseline-changes.jsonl";

/// What a change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Allow,
    Forget,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineChange {
    /// When it was made (wall clock, RFC 3339).
    pub at: String,
    /// Who made it.
    pub by: String,
    pub action: Action,
    /// Glob over table names.
    pub table: String,
    /// Glob over principal names.
    pub principal: String,
    /// An approval's end (event time, RFC 3339); none: until withdrawn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    pub reason: String,
}

/// A problem with the audit log or a change.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("{path}:{line}: {message}")]
    Corrupt {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{key}: {message}")]
    Invalid { key: &'static str, message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl BaselineChange {
    /// Checks the patterns and the expiry, so that nothing unusable reaches the log.
    pub fn validate(&self) -> Result<(), ChangeError> {
        for (key, pattern) in [("--table", &self.table), ("PRINCIPAL", &self.principal)] {
            if pattern.trim().is_empty() {
                return Err(ChangeError::Invalid {
                    key,
                    message: "must not be empty".into(),
                });
            }
            compile_glob(pattern).map_err(|e| ChangeError::Invalid {
                key,
                message: e.to_string(),
            })?;
        }
        if self.reason.trim().is_empty() {
            return Err(ChangeError::Invalid {
                key: "--reason",
                message: "must say why".into(),
            });
        }
        if let Some(expires) = &self.expires {
            parse_cli_time(expires).map_err(|message| ChangeError::Invalid {
                key: "--expires",
                message,
            })?;
        }
        Ok(())
    }

    fn expires_at(&self) -> Option<Ts> {
        self.expires.as_deref().and_then(|e| parse_cli_time(e).ok())
    }
}

/// The audit log of a state dir.
pub fn log_path(state_dir: &StateDir) -> PathBuf {
    state_dir.root().join(LOG_FILE)
}

/// Every change in the log, in order (none when there is no log).
pub fn read_log(state_dir: &StateDir) -> Result<Vec<BaselineChange>, ChangeError> {
    let path = log_path(state_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(ChangeError::Io { path, source }),
    };
    let mut changes = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let corrupt = |message: String| ChangeError::Corrupt {
            path: path.clone(),
            line: i + 1,
            message,
        };
        let change: BaselineChange = serde_json::from_str(line)
            .map_err(|e| corrupt(format!("column {}: {e}", e.column())))?;
        change.validate().map_err(|e| corrupt(e.to_string()))?;
        changes.push(change);
    }
    Ok(changes)
}

/// Appends `change` to the log (created private if missing) and syncs it.
pub fn append(state_dir: &StateDir, change: &BaselineChange) -> Result<(), ChangeError> {
    change.validate()?;
    let path = log_path(state_dir);
    let io = |source| ChangeError::Io {
        path: path.clone(),
        source,
    };
    crate::state::create_private_dir(state_dir.root()).map_err(io)?;
    let mut line = serde_json::to_string(change).expect("a change serializes");
    line.push('\n');
    let mut file = crate::state::open_private_append(&path).map_err(io)?;
    file.write_all(line.as_bytes()).map_err(io)?;
    file.sync_data().map_err(io)
}

/// The approvals in force after `changes`: each `allow` adds one; a `forget` withdraws the
/// approvals with the same table and principal patterns.
pub fn approvals(changes: &[BaselineChange]) -> Vec<Arc<Approval>> {
    let mut approvals: Vec<Arc<Approval>> = Vec::new();
    for change in changes {
        match change.action {
            Action::Allow => {
                let (Ok(table), Ok(principal)) =
                    (compile_glob(&change.table), compile_glob(&change.principal))
                else {
                    continue;
                };
                approvals.push(Arc::new(Approval {
                    table_pattern: change.table.clone(),
                    principal_pattern: change.principal.clone(),
                    table: table.compile_matcher(),
                    principal: principal.compile_matcher(),
                    until: change.expires_at(),
                    by: change.by.clone(),
                    reason: change.reason.clone(),
                }));
            }
            Action::Forget => approvals.retain(|a| {
                a.table_pattern != change.table || a.principal_pattern != change.principal
            }),
        }
    }
    approvals
}

/// `policies` with the approvals of `changes`.
pub fn apply(policies: &mut Policies, changes: &[BaselineChange]) {
    policies.approvals = approvals(changes);
}

/// Who is making a change: `--by`, else the login name from the environment, else the uid.
pub fn current_user(by: Option<&str>) -> String {
    if let Some(by) = by {
        return by.to_string();
    }
    for var in ["SUDO_USER", "USER", "LOGNAME"] {
        if let Ok(user) = std::env::var(var)
            && !user.is_empty()
        {
            return user;
        }
    }
    // The uid, as /proc shows it.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| format!("uid {u}")))
        })
        .unwrap_or_else(|| "unknown".into())
}

/// A new change made now.
pub fn change_now(
    action: Action,
    by: Option<&str>,
    table: &str,
    principal: &str,
    expires: Option<Ts>,
    reason: &str,
) -> BaselineChange {
    BaselineChange {
        at: format_ts(chrono::Utc::now().timestamp_micros()),
        by: current_user(by),
        action,
        table: table.to_string(),
        principal: principal.to_string(),
        expires: expires.map(format_ts),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(
        action: Action,
        table: &str,
        principal: &str,
        expires: Option<&str>,
    ) -> BaselineChange {
        BaselineChange {
            at: "2026-12-01T00:00:00.000Z".into(),
            by: "alice".into(),
            action,
            table: table.into(),
            principal: principal.into(),
            expires: expires.map(str::to_string),
            reason: "ticket SEC-1".into(),
        }
    }

    #[test]
    fn forget_withdraws_the_same_approval_only() {
        let changes = [
            change(Action::Allow, "hr.*", "bob", None),
            change(Action::Allow, "hr.*", "carol", Some("2026-12-10")),
            change(Action::Forget, "hr.*", "bob", None),
        ];
        let approvals = approvals(&changes);
        assert_eq!(approvals.len(), 1);
        assert_eq!(approvals[0].principal_pattern, "carol");
        assert_eq!(
            approvals[0].until,
            Some(parse_cli_time("2026-12-10").unwrap())
        );
    }

    #[test]
    fn an_approval_covers_its_tables_until_it_expires() {
        let mut policies = Policies::default();
        apply(
            &mut policies,
            &[change(Action::Allow, "hr.*", "svc-*", Some("2026-12-10"))],
        );
        let hr = policies.resolve("hr.pay");
        let before = parse_cli_time("2026-12-09").unwrap();
        let after = parse_cli_time("2026-12-10").unwrap();
        assert!(hr.approval("svc-etl", before).is_some());
        assert!(hr.approval("svc-etl", after).is_none());
        assert!(hr.approval("bob", before).is_none());
        assert!(policies.resolve("sales.orders").approved.is_empty());
    }

    #[test]
    fn a_change_that_cannot_be_used_is_refused_before_it_is_logged() {
        let bad = change(Action::Allow, "hr.[", "bob", None);
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .starts_with("--table:")
        );
        let mut no_reason = change(Action::Allow, "hr.*", "bob", None);
        no_reason.reason = " ".into();
        assert!(
            no_reason
                .validate()
                .unwrap_err()
                .to_string()
                .contains("must say why")
        );
        let expiry = change(Action::Allow, "hr.*", "bob", Some("next tuesday"));
        assert!(
            expiry
                .validate()
                .unwrap_err()
                .to_string()
                .starts_with("--expires:")
        );
    }
}
