//! The rules of the detection contract (docs/detection.md, "How detection works"), one read
//! at a time, in the order they are numbered there: learning (1), the baseline (2), novel reads
//! and pending principals (3), opening a window (4), extending it (5), closing it (6), no
//! poisoning (7). Time is [`super::clock`]'s; what order reads come in is decided before they
//! get here.

use super::Detector;
use super::alert::{
    self, ALERT_SCHEMA, Alert, AlertStatus, ChangeRecord, ClosedBy, PrincipalActivity, Severity,
};
use super::baseline::Baseline;
use super::clock::CloseTimer;
use super::permission::WindowFacts;
use super::policy::TablePolicy;
use crate::event::is_anonymous;
use crate::intern::{DenseId, Interner, PrincipalId, TableId};
use crate::time::{MICROS_PER_SEC, Ts};
use rustc_hash::FxHashMap;
use std::cmp::Reverse;
use std::sync::Arc;

/// Which rule decides a read: rules 1–3 of docs/detection.md in their order. The one place
/// the order is written: the detector asks it for every read (`Detector::apply_read`) and
/// `exposure explain` asks it of a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decides {
    /// 1. The table is learning (or this is its first read): the read joins the baseline.
    Learning,
    /// 2. The principal is normal: its last normal read is within `forget_after`.
    Baseline,
    /// The principal matches an allow pattern: normal, and recorded in the baseline.
    Allowed,
    /// An analyst's approval stands: normal, never recorded in the baseline.
    Approved,
    /// 3–5. Novel, with a window open: the read joins the window.
    Window,
    /// 3. Novel, no window open: the principal is pending (a window may open).
    Novel,
    /// Anonymous (a public read), neither allowed nor approved: an exposure by itself, whatever
    /// the baseline and even while the table learns; a window opens at once, or the read joins
    /// the open one.
    Public,
}

/// What the rules look at for one read of a table by one principal.
pub trait ReadFacts {
    /// The end of the table's learning; `None`: nobody read the table yet.
    fn learn_until(&self) -> Option<Ts>;
    /// The principal's last normal read, pending principals whose `span` ran out by the read
    /// having graduated into the baseline (asked once learning is over, or of an anonymous
    /// principal, which only an allow pattern puts in the baseline).
    fn last_normal(&mut self) -> Option<Ts>;
    /// Whether the table has a window open.
    fn window_open(&self) -> bool;
    /// Whether the principal is anonymous (see [`crate::event::ANONYMOUS`]).
    fn anonymous(&mut self) -> bool;
}

/// The rule that decides a read by the principal named by `name` (asked only when the
/// baseline does not decide) at `ts`, under `policy`.
#[inline]
pub fn decide<'n>(
    facts: &mut impl ReadFacts,
    policy: &TablePolicy,
    ts: Ts,
    name: impl FnOnce() -> &'n str,
) -> Decides {
    let thresholds = policy.thresholds;
    if facts.learn_until().is_none_or(|until| ts < until) && !facts.anonymous() {
        return Decides::Learning;
    }
    if facts
        .last_normal()
        .is_some_and(|last| ts - last <= thresholds.forget_after.micros())
    {
        return Decides::Baseline;
    }
    let name = name();
    if policy.is_allowed(name) {
        return Decides::Allowed;
    }
    if !policy.approved.is_empty() && policy.approval(name, ts).is_some() {
        return Decides::Approved;
    }
    if facts.anonymous() {
        return Decides::Public;
    }
    if facts.window_open() {
        Decides::Window
    } else {
        Decides::Novel
    }
}

/// A live table's facts for a read by `principal` (pending principals already graduated).
struct LiveRead<'a> {
    learn_until: Ts,
    baseline: &'a super::baseline::Baseline,
    principal: PrincipalId,
    window_open: bool,
    /// Where the principal is in the baseline, once looked up.
    slot: Option<usize>,
    anonymity: &'a mut Anonymity,
    names: &'a Interner<PrincipalId>,
}

/// Which principals are anonymous, by id: each name is looked at once, the first time a read
/// asks about an id at or past the last one looked at (ids are handed out in order), so the
/// question costs a comparison on the hot path.
#[derive(Debug, Clone, Default)]
pub(super) struct Anonymity {
    /// Ids below this were looked at.
    checked: usize,
    anonymous: rustc_hash::FxHashSet<PrincipalId>,
}

impl Anonymity {
    #[inline]
    pub(super) fn of(&mut self, principal: PrincipalId, names: &Interner<PrincipalId>) -> bool {
        if principal.at() >= self.checked {
            self.look_at_new(names);
        }
        !self.anonymous.is_empty() && self.anonymous.contains(&principal)
    }

    #[cold]
    fn look_at_new(&mut self, names: &Interner<PrincipalId>) {
        for at in self.checked..names.len() {
            let id = PrincipalId::from_index(at as u32);
            if is_anonymous(names.name(id)) {
                self.anonymous.insert(id);
            }
        }
        self.checked = names.len();
    }
}

impl ReadFacts for LiveRead<'_> {
    #[inline]
    fn learn_until(&self) -> Option<Ts> {
        Some(self.learn_until)
    }

    #[inline]
    fn last_normal(&mut self) -> Option<Ts> {
        self.slot = self.baseline.find(self.principal);
        self.slot.map(|slot| self.baseline.last_read_at(slot))
    }

    #[inline]
    fn window_open(&self) -> bool {
        self.window_open
    }

    #[inline]
    fn anonymous(&mut self) -> bool {
        self.anonymity.of(self.principal, self.names)
    }
}

#[derive(Debug, Clone)]
pub(super) struct Pending {
    pub(super) principal: PrincipalId,
    pub(super) first_novel: Ts,
    pub(super) last_read: Ts,
    pub(super) reads: u64,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Activity {
    pub(super) first_read: Ts,
    pub(super) last_read: Ts,
    pub(super) reads: u64,
}

#[derive(Debug, Clone)]
pub(super) struct Window {
    pub(super) start: Ts,
    pub(super) end: Ts,
    pub(super) reads: u64,
    pub(super) principals: FxHashMap<PrincipalId, Activity>,
    pub(super) baseline_principals: usize,
    /// Novel principals in the last alert sent for this window (for `update` rate limiting).
    pub(super) alerted_principals: usize,
}

#[derive(Debug, Clone)]
pub(super) struct TableState {
    pub(super) name: Arc<str>,
    pub(super) policy: Arc<TablePolicy>,
    /// End of learning: the first read plus `learn`.
    pub(super) learn_until: Option<Ts>,
    /// Normal principals and the time of their last normal read.
    pub(super) baseline: Baseline,
    /// Novel principals not (yet) in a window. Fewer than `min_principals`: reaching it opens one.
    pub(super) pending: Vec<Pending>,
    pub(super) window: Option<Window>,
}

impl TableState {
    /// Pending principals whose `span` ran out without a window join the baseline: a new hire
    /// is not an incident.
    pub(super) fn graduate_pending(&mut self, now: Ts) {
        let span = self.policy.thresholds.span.micros();
        let baseline = &mut self.baseline;
        self.pending.retain(|p| {
            if now - p.first_novel < span {
                return true;
            }
            baseline.record(p.principal, p.last_read);
            false
        });
    }

    pub(super) fn normal_principals(&self, now: Ts) -> usize {
        let forget = self.policy.thresholds.forget_after.micros();
        self.baseline
            .last_reads()
            .filter(|&last| now - last <= forget)
            .count()
    }
}

impl Detector {
    /// Sends the `open` alerts of the windows opened during instant `ts`.
    pub(super) fn emit_opens(&mut self, ts: Ts, alerts: &mut Vec<Alert>) {
        for table in std::mem::take(&mut self.opened_now) {
            if let Some(window) = &mut self.tables[table.at()].window {
                window.alerted_principals = window.principals.len();
                self.changes.table(table);
            }
            let alert = self.alert(table, AlertStatus::Open, ts, None);
            self.push_alert(alert, alerts);
        }
    }

    /// Closes `table`'s window if it has been quiet by `now`.
    pub(super) fn close_if_quiet(&mut self, table: TableId, now: Ts, alerts: &mut Vec<Alert>) {
        let state = &self.tables[table.at()];
        if let Some(window) = &state.window {
            let deadline = window.end + state.policy.thresholds.quiet.micros();
            if deadline <= now {
                self.close_window(table, deadline, ClosedBy::Quiet, alerts);
            }
        }
    }

    /// The rules of docs/detection.md, for one read at `ts` (time has been moved to `ts`).
    pub(super) fn apply_read(
        &mut self,
        ts: Ts,
        table: TableId,
        principal: PrincipalId,
        alerts: &mut Vec<Alert>,
    ) {
        if ts >= self.next_grant_state[table.at()] {
            self.keep_grant_states(table, ts);
        }
        self.changes.table(table);
        let emit_updates = self.settings.emit_updates;
        let state = &mut self.tables[table.at()];
        let thresholds = state.policy.thresholds;

        let learn_until = *state
            .learn_until
            .get_or_insert_with(|| ts.saturating_add(thresholds.learn.micros()));
        // Rule 2 looks at the baseline once pending principals whose span ran out joined it
        // (none are pending while the table learns).
        state.graduate_pending(ts);
        let names = &self.principal_names;
        let mut facts = LiveRead {
            learn_until,
            baseline: &state.baseline,
            principal,
            window_open: state.window.is_some(),
            slot: None,
            anonymity: &mut self.anonymity,
            names,
        };
        let decided = decide(&mut facts, &state.policy, ts, || names.name(principal));
        match decided {
            // 1. Learning: every read joins the baseline.
            Decides::Learning | Decides::Allowed => {
                state.baseline.record(principal, ts);
                return;
            }
            // 2. Baseline: a normal principal's read refreshes it.
            Decides::Baseline => {
                if let Some(slot) = facts.slot {
                    state.baseline.refresh_at(slot, ts);
                }
                return;
            }
            // An analyst's approval: normal while it stands, never recorded in the baseline.
            Decides::Approved => return,
            Decides::Window | Decides::Novel | Decides::Public => {}
        }
        if !self.root_cause.ledger.is_empty() {
            self.verify_revert(table, principal, ts, alerts);
        }
        let state = &mut self.tables[table.at()];

        // 3-5. A novel read: extends the open window, or makes the principal pending.
        if let Some(window) = &mut state.window {
            let activity = window.principals.entry(principal).or_insert(Activity {
                first_read: ts,
                last_read: ts,
                reads: 0,
            });
            activity.last_read = ts;
            activity.reads += 1;
            window.reads += 1;
            window.end = window.end.max(ts);
            let opened_this_instant = window.alerted_principals == 0;
            if emit_updates
                && !opened_this_instant
                && window.principals.len() >= 2 * window.alerted_principals
            {
                window.alerted_principals = window.principals.len();
                let alert = self.alert(table, AlertStatus::Update, ts, None);
                self.push_alert(alert, alerts);
            }
            return;
        }
        let public = decided == Decides::Public;
        match state.pending.iter_mut().find(|p| p.principal == principal) {
            Some(pending) => {
                pending.last_read = ts;
                pending.reads += 1;
            }
            None => state.pending.push(Pending {
                principal,
                first_novel: ts,
                last_read: ts,
                reads: 1,
            }),
        }
        if public || state.pending.len() >= thresholds.min_principals as usize {
            self.open_window(table, ts);
        }
    }

    /// Rule 4: opens a window from the pending principals; `window_start` is the earliest
    /// first read. Its `open` alert is sent once the whole instant is applied.
    pub(super) fn open_window(&mut self, table: TableId, now: Ts) {
        let state = &mut self.tables[table.at()];
        let pending = std::mem::take(&mut state.pending);
        let start = pending.iter().map(|p| p.first_novel).min().unwrap_or(now);
        let principals: FxHashMap<PrincipalId, Activity> = pending
            .iter()
            .map(|p| {
                let activity = Activity {
                    first_read: p.first_novel,
                    last_read: p.last_read,
                    reads: p.reads,
                };
                (p.principal, activity)
            })
            .collect();
        state.window = Some(Window {
            start,
            end: now,
            reads: pending.iter().map(|p| p.reads).sum(),
            // Set when the `open` alert goes out, at the end of the instant.
            alerted_principals: 0,
            principals,
            baseline_principals: state.normal_principals(now),
        });
        let deadline = now + state.policy.thresholds.quiet.micros();
        self.timers.push(Reverse(CloseTimer {
            deadline,
            table_name: Arc::clone(&state.name),
            table,
        }));
        self.stats.windows_opened += 1;
        self.opened_now.push(table);
        if self.settings.record_baselines {
            self.record_baseline(table, start, now);
        }
    }

    /// Keeps the principals normal for `table` as its window (started at `start`) opens at
    /// `now`, with their last normal read: what `exposure report` shows.
    #[cold]
    fn record_baseline(&mut self, table: TableId, start: Ts, now: Ts) {
        let state = &self.tables[table.at()];
        let forget = state.policy.thresholds.forget_after.micros();
        let mut readers: Vec<(String, Ts)> = state
            .baseline
            .entries()
            .filter(|&(_, last)| now - last <= forget)
            .map(|(id, last)| (self.principal_names.name(id).to_string(), last))
            .collect();
        readers.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        self.baselines.push(super::BaselineAtOpen {
            window: alert::window_id(&state.name, start),
            learn_until: state.learn_until,
            readers,
        });
    }

    /// Weighs an alert by the sensitivity of its data (`[[classify]]`): once, as it is made
    /// (the `update` of a closed window repeats its `closed` alert, already weighed).
    fn classify(&self, alert: &mut Alert) {
        let policies = &self.settings.policies;
        if policies.classify.is_empty() || alert.sensitivity.is_some() {
            return;
        }
        let sensitivity = std::iter::once(alert.table.as_str())
            .chain(alert.tables.iter().map(String::as_str))
            .filter_map(|table| policies.sensitivity(table))
            .max();
        if let Some(sensitivity) = sensitivity {
            alert.sensitivity = Some(sensitivity);
            alert.severity = alert.severity.weighed(sensitivity, alert.is_window());
        }
    }

    /// Rule 6: closes a window. Its principals do not join the baseline (rule 7: no poisoning).
    pub(super) fn close_window(
        &mut self,
        table: TableId,
        as_of: Ts,
        closed_by: ClosedBy,
        alerts: &mut Vec<Alert>,
    ) {
        let alert = self.alert(table, AlertStatus::Closed, as_of, Some(closed_by));
        self.tables[table.at()].window = None;
        self.changes.table(table);
        self.await_revert(&alert);
        self.push_alert(alert, alerts);
    }

    /// Emits `alert`, unless `report_from` says its window is not reported: a window's alerts
    /// dated before `report_from` are held until one of it is dated at or after it (the window
    /// was still open then: all of them go out, in order), or dropped when it closes before.
    pub(super) fn push_alert(&mut self, mut alert: Alert, alerts: &mut Vec<Alert>) {
        self.classify(&mut alert);
        let table = alert.table.as_str();
        if let Some(from) = self.settings.report_from {
            if !alert.is_window()
                || alert.closed_by.is_some() && alert.status == AlertStatus::Update
            {
                // A `grant` alert, or the revert of a closed window: on its own.
                if alert.as_of >= from {
                    self.stats.alerts += 1;
                    alerts.push(alert);
                }
                return;
            }
            if alert.as_of < from {
                if alert.status == AlertStatus::Closed {
                    self.held_alerts.remove(table);
                    self.stats.windows_unreported += 1;
                } else {
                    self.held_alerts
                        .entry(table.to_string())
                        .or_default()
                        .push(alert);
                }
                return;
            }
            if let Some(held) = self.held_alerts.remove(table) {
                self.stats.alerts += held.len() as u64;
                alerts.extend(held);
            }
        }
        self.stats.alerts += 1;
        alerts.push(alert);
    }

    pub(super) fn alert(
        &self,
        table: TableId,
        status: AlertStatus,
        as_of: Ts,
        closed_by: Option<ClosedBy>,
    ) -> Alert {
        let state = &self.tables[table.at()];
        let window = state
            .window
            .as_ref()
            .expect("an alert describes an open window");
        let mut principals: Vec<PrincipalActivity> = window
            .principals
            .iter()
            .map(|(&id, a)| PrincipalActivity {
                principal: self.principal_names.name(id).to_string(),
                first_read: a.first_read,
                last_read: a.last_read,
                reads: a.reads,
            })
            .collect();
        principals.sort_by(|a, b| (a.first_read, &a.principal).cmp(&(b.first_read, &b.principal)));
        let names: Vec<&str> = principals.iter().map(|p| p.principal.as_str()).collect();
        let facts = WindowFacts {
            table: &state.name,
            start: window.start,
            end: window.end,
            principals: &names,
        };
        let cause = self.cause_of(&facts, status, as_of, closed_by);
        // Read by anyone on the internet: as severe as an exposure gets.
        let public = names.iter().any(|n| is_anonymous(n));
        drop(names);
        Alert {
            schema: ALERT_SCHEMA.to_string(),
            id: alert::window_id(&state.name, window.start),
            status,
            table: state.name.to_string(),
            window_start: window.start,
            window_end: window.end,
            duration_s: (window.end - window.start) as f64 / MICROS_PER_SEC as f64,
            novel_principals: principals.len(),
            principals,
            principals_truncated: 0,
            reads: window.reads,
            baseline_principals: window.baseline_principals,
            severity: if public {
                Severity::Critical
            } else {
                Severity::rate(
                    window.principals.len(),
                    window.baseline_principals,
                    state.policy.thresholds.min_principals,
                )
            },
            sensitivity: None,
            as_of,
            closed_by,
            exposed_from: cause.as_ref().map(|c| c.grant.ts),
            exposed_until: cause.as_ref().and_then(|c| c.revert.as_ref()).map(|r| r.ts),
            cause: cause.as_ref().map(|c| ChangeRecord::from(&c.grant)),
            change: None,
            tables: Vec::new(),
            standing: None,
        }
    }
}
