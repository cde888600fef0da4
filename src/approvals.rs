//! The analyst's verdicts on a state dir: `exposure baseline allow` (these principals are fine
//! on these tables, until a time or for good) and `forget` (take these principals out of the
//! baseline, and withdraw their approvals), each appended as one JSON line, with who made it,
//! when and why, to the audit log `baseline-changes.jsonl` in the state dir. The log is the
//! only record: the approvals in force are what it says, folded in order; `watch` reads it at
//! start and whenever it grows, `replay --approvals DIR` reads its approvals. Nothing here
//! decides detection: [`crate::detect::policy::Approval`] is what the detector is given.
//!
//! The log is a journal that survives damage. Each record carries `sum`, a digest of the
//! record without it, so a record changed on disk is told from a valid one. A damaged line is
//! quarantined (reported with its line number, not applied) and every other record stays in
//! force; records glued together by a lost newline are found again inside the damaged line. A
//! torn last line (a write cut short) is copied aside and cut off before the next append.

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
    /// Who made it: `--by` as given, else the effective user.
    pub by: String,
    /// The effective user of the process that recorded it (the account, whatever `--by`
    /// says). Absent in records of earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    pub action: Action,
    /// Glob over table names.
    pub table: String,
    /// Glob over principal names.
    pub principal: String,
    /// An approval's end (event time, RFC 3339); none: until withdrawn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    pub reason: String,
    /// The record's digest: the first 16 hex digits of the SHA-256 of its JSON line without
    /// `sum`. Absent in records of earlier versions (read as they are).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sum: Option<String>,
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
        let texts = [
            ("--table", self.table.as_str()),
            ("PRINCIPAL", self.principal.as_str()),
            ("--reason", self.reason.as_str()),
            ("--by", self.by.as_str()),
            ("user", self.user.as_deref().unwrap_or("")),
        ];
        for (key, text) in texts {
            if let Some(c) = text.chars().find(|c| crate::text::is_unsafe_char(*c)) {
                return Err(ChangeError::Invalid {
                    key,
                    message: format!(
                        "must not hold control or bidirectional formatting characters \
                         (found U+{:04X})",
                        c as u32
                    ),
                });
            }
        }
        if self.by.trim().is_empty() {
            return Err(ChangeError::Invalid {
                key: "--by",
                message: "must not be empty".into(),
            });
        }
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

/// A line of the log that was not applied: damaged on disk, or cut short by a crash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damaged {
    /// 1-based line number in the log.
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for Damaged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// What the log holds: the valid changes, in order, and the lines quarantined.
#[derive(Debug, Default)]
pub struct Journal {
    pub changes: Vec<BaselineChange>,
    pub damaged: Vec<Damaged>,
}

impl Journal {
    /// Logs each quarantined line (as a warning, naming the log and the line).
    pub fn warn_damaged(&self, path: &std::path::Path) {
        for damaged in &self.damaged {
            tracing::warn!(
                log = %path.display(), line = damaged.line, problem = %damaged.message,
                "a damaged baseline change is quarantined (not applied); the others are in force"
            );
        }
    }

    /// One line per quarantined record, for stderr.
    pub fn damage_report(&self, path: &std::path::Path) -> Vec<String> {
        self.damaged
            .iter()
            .map(|d| {
                format!(
                    "exposure: {}:{}: damaged baseline change quarantined (not applied; the \
                     others are in force): {}",
                    path.display(),
                    d.line,
                    d.message
                )
            })
            .collect()
    }
}

/// The digest a record carries in `sum`: of its JSON line without `sum`.
fn digest(change: &BaselineChange) -> String {
    use sha2::{Digest, Sha256};
    let unsummed = BaselineChange {
        sum: None,
        ..change.clone()
    };
    let line = serde_json::to_vec(&unsummed).expect("a change serializes");
    let hash = Sha256::digest(&line);
    hash[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// `change` as its log line (with its `sum`, and the newline).
fn record_line(change: &BaselineChange) -> Vec<u8> {
    let summed = BaselineChange {
        sum: Some(digest(change)),
        ..change.clone()
    };
    let mut line = serde_json::to_vec(&summed).expect("a change serializes");
    line.push(b'\n');
    line
}

/// Reads one record from `bytes` (a whole line): the change, or why it is not one.
fn read_record(bytes: &[u8]) -> Result<BaselineChange, String> {
    let change: BaselineChange =
        serde_json::from_slice(bytes).map_err(|e| format!("column {}: {e}", e.column()))?;
    check_record(&change)?;
    Ok(change)
}

/// A record's digest (when it has one) and its content are valid.
fn check_record(change: &BaselineChange) -> Result<(), String> {
    if let Some(sum) = &change.sum
        && *sum != digest(change)
    {
        return Err("its sum does not match its content (changed on disk)".into());
    }
    change.validate().map_err(|e| e.to_string())
}

/// The records with a valid `sum` inside a damaged line: those glued to it by a lost newline
/// or a torn write. Each `{` is tried as a record's start.
fn salvage(bytes: &[u8]) -> Vec<BaselineChange> {
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(start) = memchr::memchr(b'{', &bytes[at..]).map(|i| at + i) {
        let mut records =
            serde_json::Deserializer::from_slice(&bytes[start..]).into_iter::<BaselineChange>();
        match records.next() {
            Some(Ok(change)) if change.sum.is_some() && check_record(&change).is_ok() => {
                found.push(change);
                at = start + records.byte_offset();
            }
            _ => at = start + 1,
        }
    }
    found
}

/// The log's lines: each with its 1-based number; the last without its newline is torn.
fn lines(bytes: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    bytes
        .split_inclusive(|b| *b == b'\n')
        .enumerate()
        .map(|(i, line)| (i + 1, line.strip_suffix(b"\n").unwrap_or(line)))
}

/// Folds the log's bytes into its valid changes and its damaged lines.
pub fn parse_log(bytes: &[u8]) -> Journal {
    let mut journal = Journal::default();
    let torn_at = (!bytes.is_empty() && !bytes.ends_with(b"\n")).then(|| lines(bytes).count());
    for (number, line) in lines(bytes) {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match read_record(line) {
            Ok(change) => journal.changes.push(change),
            Err(message) => {
                let salvaged = salvage(line);
                let message = match (Some(number) == torn_at, salvaged.len()) {
                    (true, _) => format!("torn (the write was cut short): {message}"),
                    (false, 0) => message,
                    (false, n) => format!(
                        "{message}; {n} intact record{} found in it and kept",
                        if n == 1 { "" } else { "s" }
                    ),
                };
                journal.changes.extend(salvaged);
                journal.damaged.push(Damaged {
                    line: number,
                    message,
                });
            }
        }
    }
    journal
}

/// Every valid change in the log, in order, and the damaged lines (none when there is no log).
pub fn read_log(state_dir: &StateDir) -> Result<Journal, ChangeError> {
    let path = log_path(state_dir);
    let bytes = match crate::state::read_private(&path, MAX_LOG_BYTES) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Journal::default()),
        Err(source) => return Err(ChangeError::Io { path, source }),
    };
    Ok(parse_log(&bytes))
}

/// The largest log read: 64 MiB is over 100 000 changes.
const MAX_LOG_BYTES: u64 = 64 << 20;

/// Appends `change` to the log (created private if missing) and syncs it. A torn last line
/// (a crash mid-write) is copied aside and cut off first, so the new record starts a line of
/// its own. Returns the log's damaged lines, for the caller to report. The state dir must
/// exist: `watch` or `learn` creates it.
pub fn append(state_dir: &StateDir, change: &BaselineChange) -> Result<Journal, ChangeError> {
    change.validate()?;
    let path = log_path(state_dir);
    let io = |source| ChangeError::Io {
        path: path.clone(),
        source,
    };
    state_dir.check_existing().map_err(io)?;
    let mut file = crate::state::open_private_append(&path).map_err(io)?;
    let bytes = crate::state::read_open(&mut file, MAX_LOG_BYTES).map_err(io)?;
    let journal = parse_log(&bytes);
    if !bytes.is_empty() && !bytes.ends_with(b"\n") {
        let keep = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let tail = &bytes[keep..];
        if read_record(tail).is_ok() {
            // A whole record that lacks only its newline.
            file.write_all(b"\n").map_err(io)?;
        } else {
            crate::state::copy_aside(&path).map_err(io)?;
            file.set_len(keep as u64).map_err(io)?;
        }
    }
    file.write_all(&record_line(change)).map_err(io)?;
    file.sync_data().map_err(io)?;
    Ok(journal)
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

/// A new change made now.
pub fn change_now(
    action: Action,
    by: Option<&str>,
    table: &str,
    principal: &str,
    expires: Option<Ts>,
    reason: &str,
) -> BaselineChange {
    let user = crate::state::effective_user();
    BaselineChange {
        at: format_ts(chrono::Utc::now().timestamp_micros()),
        by: by.map_or_else(|| user.clone(), str::to_string),
        user: Some(user),
        action,
        table: table.to_string(),
        principal: principal.to_string(),
        expires: expires.map(format_ts),
        reason: reason.to_string(),
        sum: None,
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
            user: None,
            action,
            table: table.into(),
            principal: principal.into(),
            expires: expires.map(str::to_string),
            reason: "ticket SEC-1".into(),
            sum: None,
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

    /// A log of three summed records, as `append` writes them.
    fn summed_log() -> (Vec<BaselineChange>, Vec<u8>) {
        let changes = vec![
            change(Action::Allow, "hr.*", "bob", None),
            change(Action::Allow, "pay.*", "svc-*", Some("2026-12-10")),
            change(Action::Forget, "hr.*", "bob", None),
        ];
        let bytes = changes.iter().flat_map(record_line).collect();
        let summed = changes
            .into_iter()
            .map(|c| BaselineChange {
                sum: Some(digest(&c)),
                ..c
            })
            .collect();
        (summed, bytes)
    }

    #[test]
    fn a_log_reads_back_whole_with_its_sums() {
        let (changes, bytes) = summed_log();
        let journal = parse_log(&bytes);
        assert_eq!(journal.changes, changes);
        assert!(journal.damaged.is_empty());
        // Records of earlier versions (no sum) are read as they are.
        let legacy = br#"{"at":"2026-12-01T00:00:00.000Z","by":"alice","action":"allow","table":"a.*","principal":"x","reason":"r"}"#;
        let journal = parse_log(&[&legacy[..], b"\n"].concat());
        assert_eq!(journal.changes.len(), 1);
    }

    /// Every byte of the log changed, one at a time, to each of a few values: every record
    /// not touched is still read, and no record is read that was never written.
    #[test]
    fn damage_at_any_byte_loses_no_intact_record_and_forges_none() {
        let (changes, bytes) = summed_log();
        let ends: Vec<usize> = bytes
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .map(|(i, _)| i)
            .collect();
        for at in 0..bytes.len() {
            // The record whose bytes (its newline included) hold `at`.
            let hit = ends.iter().position(|end| at <= *end).unwrap();
            for replacement in [b'x', b'"', b'{', b'\n', 0xff, b'0'] {
                if bytes[at] == replacement {
                    continue;
                }
                let mut damaged = bytes.clone();
                damaged[at] = replacement;
                let journal = parse_log(&damaged);
                for (i, change) in changes.iter().enumerate() {
                    if i != hit {
                        assert!(
                            journal.changes.contains(change),
                            "byte {at} set to {replacement:#x} lost record {i}"
                        );
                    }
                }
                for read in &journal.changes {
                    assert!(
                        changes.contains(read),
                        "byte {at} set to {replacement:#x} forged {read:?}"
                    );
                }
                let intact = journal.changes.len() == changes.len();
                assert!(
                    intact || !journal.damaged.is_empty(),
                    "byte {at}: a record was dropped without being reported"
                );
            }
        }
    }

    #[test]
    fn a_torn_tail_is_cut_before_the_next_append_and_kept_aside() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path().join("st"));
        crate::state::create_private_dir(state.root()).unwrap();
        let (changes, bytes) = summed_log();
        // The third record's write cut short.
        let torn = &bytes[..bytes.len() - 20];
        std::fs::write(log_path(&state), torn).unwrap();
        let journal = read_log(&state).unwrap();
        assert_eq!(journal.changes, changes[..2]);
        assert_eq!(journal.damaged.len(), 1);
        assert!(journal.damaged[0].message.starts_with("torn"));
        let next = change(Action::Allow, "ops.*", "carol", None);
        append(&state, &next).unwrap();
        let journal = read_log(&state).unwrap();
        assert!(journal.damaged.is_empty(), "{:?}", journal.damaged);
        assert_eq!(journal.changes.len(), 3);
        assert_eq!(journal.changes[2].principal, "carol");
        let aside: Vec<_> = std::fs::read_dir(state.root())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1, "the torn log is copied aside");
    }

    #[test]
    fn a_change_is_only_appended_to_an_existing_state_dir() {
        let dir = tempfile::tempdir().unwrap();
        let typo = StateDir::new(dir.path().join("typo"));
        let error = append(&typo, &change(Action::Allow, "hr.*", "bob", None)).unwrap_err();
        assert!(error.to_string().contains("no state dir at"), "{error}");
        assert!(!typo.root().exists());
    }

    #[test]
    fn free_text_with_control_or_bidi_characters_is_refused() {
        for (field, text) in [
            ("--reason", "ok\n2026-12-01 INFO approved by security"),
            ("--reason", "\u{1b}[2Jcleared"),
            ("--by", "mallory\u{202e}"),
            ("--table", "hr.\u{7}*"),
        ] {
            let mut c = change(Action::Allow, "hr.*", "bob", None);
            match field {
                "--reason" => c.reason = text.into(),
                "--by" => c.by = text.into(),
                _ => c.table = text.into(),
            }
            let error = c.validate().unwrap_err().to_string();
            assert!(error.starts_with(field), "{error}");
        }
    }
}
