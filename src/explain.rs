//! `exposure explain` and `exposure baseline show`: what the detector knew about a table at a
//! time, read off its state (a [`DetectorSnapshot`] — of a replay up to that time, or a state
//! dir's checkpoint). Which rule decides a read is asked of the detector
//! ([`crate::detect::snapshot::decide_read`], the order it applies to every read); this module
//! only puts the facts behind that rule into words. Nothing here changes state.

use crate::config::Config;
use crate::detect::snapshot::{TableSnapshot, decide_read};
use crate::detect::{Decides, DetectorSnapshot, TablePolicy};
use crate::report::Problems;
use crate::source::Input;
use crate::state::StateDir;
use crate::time::{TimeFilter, Ts, format_ts};
use serde::Serialize;
use std::fmt;

/// What is asked.
#[derive(Debug, Clone)]
pub struct Question {
    pub table: String,
    pub principal: Option<String>,
}

/// A principal normal (or once normal) on the table.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Reader {
    pub principal: String,
    pub last_normal_read: String,
    /// When it stops being normal without another read.
    pub normal_until: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PendingView {
    pub principal: String,
    pub first_novel_read: String,
    pub last_read: String,
    pub reads: u64,
    /// When it joins the baseline if no window opens by then.
    pub graduates_at: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct WindowView {
    pub start: String,
    pub end: String,
    pub principals: Vec<String>,
    pub reads: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ApprovalView {
    pub table: String,
    pub principal: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    pub by: String,
    pub reason: String,
    pub in_force: bool,
}

/// How the detector judges a read by the principal at the time asked.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The table is learning: every read joins the baseline.
    Learning,
    /// In the baseline, within `forget_after`.
    Normal,
    /// Pending long enough without a window: joins the baseline on its next read.
    Graduated,
    /// Matches an allow pattern of the table's policy.
    Allowed,
    /// An analyst's approval stands.
    Approved,
    /// One of the principals of the open window.
    InWindow,
    /// Novel, pending.
    Pending,
    /// Was normal, but its last normal read is older than `forget_after`.
    Forgotten,
    /// Never normal on the table.
    Novel,
    /// Anonymous (a public read), not allowed: a window opens at once.
    Public,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PrincipalVerdict {
    pub principal: String,
    pub verdict: Verdict,
    pub normal: bool,
    pub why: String,
    /// Reads of the table by the principal before the time asked (from logs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reads_before: Option<usize>,
}

/// The answer.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Explanation {
    pub table: String,
    pub at: String,
    /// `unseen`, `learning` or `armed`.
    pub phase: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub learn_until: Option<String>,
    /// The `[[tables]]` rule that applies (none: the defaults).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    pub thresholds: String,
    pub allow_patterns: bool,
    pub approvals: Vec<ApprovalView>,
    /// Normal at the time, most recent first.
    pub baseline: Vec<Reader>,
    /// Once normal, older than `forget_after` now.
    pub forgotten: Vec<Reader>,
    pub pending: Vec<PendingView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<PrincipalVerdict>,
}

/// Explains `question` from `snapshot` at `at` (default: the state's own time). `history`: the
/// principal's reads of the table before `at`, when the logs are at hand.
pub fn explain(
    config: &Config,
    snapshot: &DetectorSnapshot,
    at: Option<Ts>,
    question: &Question,
    history: Option<&[Ts]>,
) -> Explanation {
    let policy = config.detector.policies.resolve(&question.table);
    let t = policy.thresholds;
    let at = at.or(snapshot.now).unwrap_or(0);
    let state = snapshot.tables.iter().find(|s| s.table == question.table);
    let forget = t.forget_after.micros();
    let reader = |(principal, last): &(String, Ts)| Reader {
        principal: principal.clone(),
        last_normal_read: format_ts(*last),
        normal_until: format_ts(last + forget),
    };
    type Entries<'a> = Vec<&'a (String, Ts)>;
    let (mut baseline, mut forgotten): (Entries, Entries) = state
        .map(|s| s.baseline.iter().partition(|(_, last)| at - last <= forget))
        .unwrap_or_default();
    baseline.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    forgotten.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let learn_until = state.and_then(|s| s.learn_until);
    let phase = match learn_until {
        None => "unseen",
        Some(until) if at < until => "learning",
        Some(_) => "armed",
    };
    let mut explanation = Explanation {
        table: question.table.clone(),
        at: format_ts(at),
        phase,
        learn_until: learn_until.map(format_ts),
        rule: policy.rule.clone(),
        thresholds: format!(
            "learn {}, forget_after {}, span {}, close_after {}, min_principals {}",
            t.learn, t.forget_after, t.span, t.quiet, t.min_principals
        ),
        allow_patterns: !policy.allow.is_empty(),
        approvals: policy
            .approved
            .iter()
            .map(|a| ApprovalView {
                table: a.table_pattern.clone(),
                principal: a.principal_pattern.clone(),
                until: a.until.map(format_ts),
                by: a.by.clone(),
                reason: a.reason.clone(),
                in_force: a.until.is_none_or(|until| at < until),
            })
            .collect(),
        baseline: baseline.into_iter().map(reader).collect(),
        forgotten: forgotten.into_iter().map(reader).collect(),
        pending: state
            .map(|s| {
                s.pending
                    .iter()
                    .map(|p| PendingView {
                        principal: p.principal.clone(),
                        first_novel_read: format_ts(p.first_novel),
                        last_read: format_ts(p.last_read),
                        reads: p.reads,
                        graduates_at: format_ts(p.first_novel + t.span.micros()),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        window: state.and_then(|s| s.window.as_ref()).map(|w| WindowView {
            start: format_ts(w.start),
            end: format_ts(w.end),
            principals: w.principals.iter().map(|p| p.principal.clone()).collect(),
            reads: w.reads,
        }),
        principal: None,
    };
    if let Some(principal) = &question.principal {
        explanation.principal = Some(judge(&policy, state, at, principal, history));
    }
    explanation
}

/// What the detector would do with a read by `principal` at `at` — the rule comes from the
/// detector itself ([`decide_read`], the order `detect` applies to every read) — and why, in
/// words.
fn judge(
    policy: &TablePolicy,
    state: Option<&TableSnapshot>,
    at: Ts,
    principal: &str,
    history: Option<&[Ts]>,
) -> PrincipalVerdict {
    let decides = decide_read(state, policy, principal, at);
    let say = |v, why| verdict(principal, v, why, history);
    let window = state.and_then(|t| t.window.as_ref());
    if decides == Decides::Public
        && window.is_none_or(|w| w.principals.iter().all(|a| a.principal != principal))
    {
        return say(
            Verdict::Public,
            "anonymous: a read nobody signed is a public read, an exposure by itself whatever \
             the baseline: a window opens at once (or the read joins the open one); allow \
             `anonymous@*` on a table meant to be public"
                .into(),
        );
    }
    let Some(table) = state else {
        return say(
            Verdict::Learning,
            "nobody read the table before: its first read starts its learning".into(),
        );
    };
    let t = policy.thresholds;
    let learn_until = table.learn_until.unwrap_or(Ts::MAX);
    let pending = table.pending.iter().find(|p| p.principal == principal);
    let graduating = pending.filter(|p| at - p.first_novel >= t.span.micros());
    let last = table
        .baseline
        .iter()
        .find(|(p, _)| p == principal)
        .map(|(_, last)| *last)
        .max(graduating.map(|p| p.last_read));
    match decides {
        Decides::Learning => say(
            Verdict::Learning,
            format!(
                "the table learns until {}: every read joins its baseline",
                format_ts(learn_until)
            ),
        ),
        Decides::Baseline => match graduating {
            Some(p) => say(
                Verdict::Graduated,
                format!(
                    "pending since {} and no window opened within span ({}): it graduates into \
                     the baseline, its last read {} counting as normal",
                    format_ts(p.first_novel),
                    t.span,
                    format_ts(p.last_read)
                ),
            ),
            None => {
                let last = last.unwrap_or(at);
                let how = match history.and_then(|h| h.first()) {
                    Some(&first) if first < learn_until => format!(
                        "; it first read the table at {}, while it learned",
                        format_ts(first)
                    ),
                    Some(&first) if !policy.is_allowed(principal) => format!(
                        "; it first read the table at {}, after learning, as a novel principal, \
                         and graduated: no window opened within span",
                        format_ts(first)
                    ),
                    _ => String::new(),
                };
                say(
                    Verdict::Normal,
                    format!(
                        "in the baseline: last normal read {}, normal until {} (forget_after \
                         {}){how}",
                        format_ts(last),
                        format_ts(last + t.forget_after.micros()),
                        t.forget_after
                    ),
                )
            }
        },
        Decides::Allowed => say(
            Verdict::Allowed,
            format!(
                "matches an allow pattern of {}",
                policy
                    .rule
                    .as_deref()
                    .map(|r| format!("[[tables]] match = \"{r}\""))
                    .unwrap_or_else(|| "[detect]".into())
            ),
        ),
        Decides::Approved => {
            let approval = policy.approval(principal, at);
            say(
                Verdict::Approved,
                approval
                    .map(|approval| {
                        format!(
                            "approved by {} on {} for {}{}: \"{}\"",
                            approval.by,
                            approval.table_pattern,
                            approval.principal_pattern,
                            approval
                                .until
                                .map(|u| format!(" until {}", format_ts(u)))
                                .unwrap_or_default(),
                            approval.reason
                        )
                    })
                    .unwrap_or_default(),
            )
        }
        Decides::Window | Decides::Novel | Decides::Public => {
            if let Some(window) = &table.window
                && let Some(activity) = window.principals.iter().find(|a| a.principal == principal)
            {
                return say(
                    Verdict::InWindow,
                    format!(
                        "novel: one of the {} principals of the window open since {} (its first \
                         read in it {}, {} reads)",
                        window.principals.len(),
                        format_ts(window.start),
                        format_ts(activity.first_read),
                        activity.reads
                    ),
                );
            }
            if let Some(p) = pending.filter(|_| graduating.is_none()) {
                return say(
                    Verdict::Pending,
                    format!(
                        "novel, pending since {} ({} of min_principals {} pending): a window \
                         opens if {} principals are pending within span ({}); otherwise it \
                         graduates at {}",
                        format_ts(p.first_novel),
                        table.pending.len(),
                        t.min_principals,
                        t.min_principals,
                        t.span,
                        format_ts(p.first_novel + t.span.micros())
                    ),
                );
            }
            if let Some(last) = last {
                return say(
                    Verdict::Forgotten,
                    format!(
                        "novel: forgotten — its last normal read {} is more than forget_after \
                         ({}) before; a read makes it pending",
                        format_ts(last),
                        t.forget_after
                    ),
                );
            }
            let why = match history.and_then(|h| h.last()) {
                Some(&last) => format!(
                    "novel: not normal now — it read the table before (last at {}), but no \
                     normal read of it is within forget_after ({}): forgotten (the detector \
                     drops such principals), or its reads were in windows; a read makes it \
                     pending",
                    format_ts(last),
                    t.forget_after
                ),
                None => "novel: never normal on this table (not learned, not graduated, not \
                         allowed); a read makes it pending"
                    .into(),
            };
            say(Verdict::Novel, why)
        }
    }
}

fn verdict(
    principal: &str,
    verdict: Verdict,
    why: String,
    history: Option<&[Ts]>,
) -> PrincipalVerdict {
    PrincipalVerdict {
        principal: principal.to_string(),
        verdict,
        normal: !matches!(
            verdict,
            Verdict::InWindow
                | Verdict::Pending
                | Verdict::Forgotten
                | Verdict::Novel
                | Verdict::Public
        ),
        why,
        reads_before: history.map(<[Ts]>::len),
    }
}

/// The times `principal` read `table` before `at`, in order.
pub fn reads_of(
    config: &Config,
    inputs: &[Input],
    table: &str,
    principal: &str,
    at: Ts,
    problems: &mut Problems,
) -> Vec<Ts> {
    let mut reads = Vec::new();
    let filter = TimeFilter {
        since: None,
        until: Some(at),
    };
    crate::incident::scan::reads(config, inputs, &filter, problems, &mut |ts, t, p| {
        if t == table && p == principal {
            reads.push(ts);
        }
    });
    reads.sort_unstable();
    reads
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} at {}", self.table, self.at)?;
        writeln!(
            f,
            "  policy: {} — {}{}",
            self.rule
                .as_deref()
                .map(|r| format!("[[tables]] match = \"{r}\""))
                .unwrap_or_else(|| "the defaults ([detect])".into()),
            self.thresholds,
            if self.allow_patterns {
                "; allow patterns apply"
            } else {
                ""
            }
        )?;
        match (self.phase, &self.learn_until) {
            ("learning", Some(until)) => {
                writeln!(f, "  learning until {until}: every read joins the baseline")?
            }
            ("armed", Some(until)) => writeln!(f, "  armed since {until} (learning ended)")?,
            _ => writeln!(
                f,
                "  no read of the table yet: its first read starts learning"
            )?,
        }
        for a in &self.approvals {
            writeln!(
                f,
                "  approval: {} on {}{} by {}: \"{}\"{}",
                a.principal,
                a.table,
                a.until
                    .as_deref()
                    .map(|u| format!(" until {u}"))
                    .unwrap_or_default(),
                a.by,
                a.reason,
                if a.in_force { "" } else { " (expired)" }
            )?;
        }
        writeln!(f, "  baseline: {} principals normal", self.baseline.len())?;
        for r in &self.baseline {
            writeln!(
                f,
                "    {}  last normal read {}, normal until {}",
                r.principal, r.last_normal_read, r.normal_until
            )?;
        }
        if !self.forgotten.is_empty() {
            writeln!(
                f,
                "  forgotten: {} principals whose last normal read is older than forget_after",
                self.forgotten.len()
            )?;
            for r in &self.forgotten {
                writeln!(
                    f,
                    "    {}  last normal read {}",
                    r.principal, r.last_normal_read
                )?;
            }
        }
        writeln!(f, "  pending: {}", self.pending.len())?;
        for p in &self.pending {
            writeln!(
                f,
                "    {}  first novel read {}, {} reads, graduates at {}",
                p.principal, p.first_novel_read, p.reads, p.graduates_at
            )?;
        }
        match &self.window {
            Some(w) => writeln!(
                f,
                "  window: open since {} (last novel read {}), {} principals, {} reads",
                w.start,
                w.end,
                w.principals.len(),
                w.reads
            )?,
            None => writeln!(f, "  window: none open")?,
        }
        if let Some(p) = &self.principal {
            writeln!(
                f,
                "{}: {} — {}{}",
                p.principal,
                if p.normal { "NORMAL" } else { "NOVEL" },
                p.why,
                p.reads_before
                    .map(|n| format!(" ({n} reads of the table before)"))
                    .unwrap_or_default()
            )?;
        }
        Ok(())
    }
}

/// `exposure baseline show`: approvals in force, the audit log, and each table's baseline in
/// the checkpoint (with `table`, only the matching tables, each reader listed).
pub fn show_baseline(state_dir: &StateDir, table: Option<&str>) -> anyhow::Result<String> {
    use std::fmt::Write;
    let journal = crate::approvals::read_log(state_dir)?;
    let changes = &journal.changes;
    let approvals = crate::approvals::approvals(changes);
    let now = chrono::Utc::now().timestamp_micros();
    let mut out = String::new();
    let _ = writeln!(out, "approvals in force ({}):", approvals.len());
    for a in &approvals {
        let _ = writeln!(
            out,
            "  {} on {}{} — by {}: \"{}\"{}",
            a.principal_pattern,
            a.table_pattern,
            a.until
                .map(|u| format!(" until {}", format_ts(u)))
                .unwrap_or_default(),
            a.by,
            a.reason,
            if a.until.is_some_and(|u| u <= now) {
                " (past its end by the wall clock)"
            } else {
                ""
            }
        );
    }
    let _ = writeln!(
        out,
        "audit log ({} changes, {}):",
        changes.len(),
        crate::approvals::log_path(state_dir).display()
    );
    for d in &journal.damaged {
        let _ = writeln!(
            out,
            "  line {}: DAMAGED, quarantined (not applied): {}",
            d.line,
            crate::text::visible(&d.message)
        );
    }
    for c in changes {
        let _ = writeln!(
            out,
            "  {}  {}  {:?} {} on {}{} — \"{}\"",
            c.at,
            c.by,
            c.action,
            c.principal,
            c.table,
            c.expires
                .as_deref()
                .map(|e| format!(" until {e}"))
                .unwrap_or_default(),
            c.reason
        );
    }
    let checkpoint = crate::live::checkpoint::Checkpoint::load(state_dir)?;
    let Some(checkpoint) = checkpoint else {
        let _ = writeln!(out, "no checkpoint yet: no baseline learned");
        return Ok(out);
    };
    let only = table
        .map(|t| crate::detect::policy::compile_glob(t).map(|g| g.compile_matcher()))
        .transpose()?;
    let state = &checkpoint.detector;
    let _ = writeln!(
        out,
        "tables (checkpoint written by {} at {}; event time {}):",
        checkpoint.written_by,
        checkpoint.written_at,
        state.now.map(format_ts).unwrap_or_else(|| "none".into())
    );
    for t in &state.tables {
        if only.as_ref().is_some_and(|m| !m.is_match(&t.table)) {
            continue;
        }
        let _ = writeln!(
            out,
            "  {}: {}, {} in the baseline, {} pending{}",
            t.table,
            match (t.learn_until, state.now) {
                (Some(until), Some(now)) if now < until =>
                    format!("learning until {}", format_ts(until)),
                (Some(until), _) => format!("armed since {}", format_ts(until)),
                (None, _) => "unseen".into(),
            },
            t.baseline.len(),
            t.pending.len(),
            t.window
                .as_ref()
                .map(|w| format!(", window open since {}", format_ts(w.start)))
                .unwrap_or_default()
        );
        if only.is_some() {
            let mut readers: Vec<&(String, Ts)> = t.baseline.iter().collect();
            readers.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            for (principal, last) in readers {
                let _ = writeln!(
                    out,
                    "    {principal}  last normal read {}",
                    format_ts(*last)
                );
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_anonymous_reader_is_judged_public_even_before_anyone_read_the_table() {
        let settings = crate::detect::DetectorSettings::default();
        let policy = settings.policies.resolve("acme-exports/salaries");
        let public = judge(&policy, None, 0, "anonymous@203.0.113.7", None);
        assert_eq!(public.verdict, Verdict::Public);
        assert!(!public.normal);
        assert!(public.why.contains("public read"), "{}", public.why);
        let first = judge(&policy, None, 0, "alice", None);
        assert_eq!(first.verdict, Verdict::Learning);
    }
}
