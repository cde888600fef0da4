//! Root cause in the detector: permission changes enter like reads (late ones refused by the
//! same watermark), join the [`PermissionLedger`] at once, and are *released* in event time —
//! after the reads of their instant — to raise what they raise by themselves: a `grant` alert
//! for a read grant to everyone or a large group, and an `update` for each closed window whose
//! cause they revert. Windows ask the ledger for their cause whenever one of their alerts is
//! made ([`Detector::alert`]). The rules are docs/detection.md, "Root cause".

use super::alert::{self, ALERT_SCHEMA, Alert, AlertStatus, ChangeRecord, ClosedBy, Severity};
use super::permission::{
    Cause, KnownUntil, LedgerSnapshot, PermissionLedger, WindowFacts, contains,
};
use super::{Detector, Incoming, Observed};
use crate::event::{ChangeAction, PermissionChange};
use crate::time::Ts;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Closed windows kept waiting for the revert of their cause, at most (the oldest go first).
const MAX_AWAITING_REVERT: usize = 10_000;

/// (broad grant, table, principal) triples remembered as read through a grant, at most: a
/// bucket public for months is read by countless addresses; past this, newcomers are not
/// remembered (and a read after the revoke by one of them raises nothing).
const MAX_READ_THROUGH: usize = 100_000;

/// A `grant` alert on a container lists at most this many of its tables.
const MAX_LISTED_TABLES: usize = 100;

/// The detector's permission state.
#[derive(Debug, Clone, Default)]
pub(super) struct RootCause {
    pub(super) ledger: PermissionLedger,
    /// Read grants and revokes recorded and not yet released, in order.
    pub(super) unreleased: BTreeSet<PermissionChange>,
    /// `closed` alerts of windows whose cause had not been reverted when they closed.
    pub(super) awaiting_revert: Vec<Alert>,
    /// (grant to everyone or a broad group, table, principal): a principal not normal for the
    /// table read it while the grant stood — read *through* it.
    pub(super) through: BTreeSet<ReadThrough>,
    /// The same triples, once a read after the grant's revoke raised `still_readable`.
    pub(super) still_readable: BTreeSet<ReadThrough>,
}

/// (grant, table, principal).
pub type ReadThrough = (PermissionChange, String, String);

/// The detector's permission state as plain data, for checkpoints and `learn`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootCauseSnapshot {
    /// Every change the ledger holds, sorted.
    pub changes: Vec<PermissionChange>,
    /// Changes not yet released, sorted.
    pub unreleased: Vec<PermissionChange>,
    pub awaiting_revert: Vec<Alert>,
    /// Who read through broad grants, and who was alerted on after their
    /// revoke.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub through: Vec<ReadThrough>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub still_readable: Vec<ReadThrough>,
}

impl RootCause {
    pub(super) fn snapshot(&self) -> RootCauseSnapshot {
        RootCauseSnapshot {
            changes: self.ledger.snapshot().changes,
            unreleased: self.unreleased.iter().cloned().collect(),
            awaiting_revert: self.awaiting_revert.clone(),
            through: self.through.iter().cloned().collect(),
            still_readable: self.still_readable.iter().cloned().collect(),
        }
    }

    pub(super) fn restore(snapshot: &RootCauseSnapshot) -> RootCause {
        let changes = LedgerSnapshot {
            changes: snapshot.changes.clone(),
        };
        RootCause {
            ledger: PermissionLedger::restore(&changes),
            unreleased: snapshot.unreleased.iter().cloned().collect(),
            awaiting_revert: snapshot.awaiting_revert.clone(),
            through: snapshot.through.iter().cloned().collect(),
            still_readable: snapshot.still_readable.iter().cloned().collect(),
        }
    }
}

impl Detector {
    /// Observes one permission change: refused when late, like a read; otherwise recorded at
    /// once (a window's cause may be any change up to its start, whatever arrived first) and
    /// released in event time, after the reads of its instant.
    pub fn observe_change(
        &mut self,
        change: &PermissionChange,
        alerts: &mut Vec<Alert>,
    ) -> Observed {
        let outcome = self.admit(change.ts, Incoming::Change);
        if matches!(outcome, Observed::Late { .. }) {
            return outcome;
        }
        if self.grant_recorder.is_some() {
            self.record_grant_state(change);
        }
        if self.root_cause.ledger.insert(change.clone()) && !change.is_membership() {
            self.root_cause.unreleased.insert(change.clone());
        }
        if self.deferred.is_none()
            && let Some(watermark) = self.reorder.watermark()
        {
            self.release_before(watermark, alerts);
        }
        outcome
    }

    /// The changes recorded, for reports.
    pub fn permission_changes(&self) -> usize {
        self.root_cause.ledger.len()
    }

    /// The earliest change not yet released, if it is before `now`.
    pub(super) fn next_change_before(&self, now: Ts) -> Option<Ts> {
        self.root_cause
            .unreleased
            .first()
            .map(|c| c.ts)
            .filter(|&ts| ts < now)
    }

    /// Releases every change of instant `ts` (in order), then puts their alerts in table-name
    /// order (the order of alerts of one instant and kind everywhere).
    pub(super) fn release_changes_at(&mut self, ts: Ts, alerts: &mut Vec<Alert>) {
        let mut raised = Vec::new();
        while let Some(change) = self.root_cause.unreleased.first()
            && change.ts == ts
        {
            let change = self.root_cause.unreleased.pop_first().expect("peeked");
            match change.action {
                ChangeAction::Grant => self.raise_grant(&change, &mut raised),
                ChangeAction::Revoke => self.raise_reverted(&change, &mut raised),
            }
        }
        raised.sort_by(|a, b| a.table.cmp(&b.table));
        for alert in raised {
            self.push_alert(alert, alerts);
        }
    }

    /// Releases every change still waiting, in order (the input ended).
    pub(super) fn release_all_changes(&mut self, alerts: &mut Vec<Alert>) {
        while let Some(ts) = self.root_cause.unreleased.first().map(|c| c.ts) {
            self.release_changes_at(ts, alerts);
        }
    }

    /// The early warning: a read grant to everyone or a large group, on an object this run
    /// watches, that did not already stand for that grantee on it or a container of it.
    fn raise_grant(&mut self, change: &PermissionChange, raised: &mut Vec<Alert>) {
        let settings = &self.settings.permissions;
        if !settings.is_broad(&change.grantee) || self.root_cause.ledger.stood_before(change) {
            return;
        }
        let object = change.object.as_str();
        // The tables in it read by then: by event time, so that the list never depends on
        // what arrived first.
        let read_by_then = |t: &&super::rules::TableState| {
            t.learn_until
                .is_some_and(|until| until - t.policy.thresholds.learn.micros() <= change.ts)
        };
        let mut tables: Vec<String> = self
            .tables
            .iter()
            .filter(|t| !t.policy.ignore && &*t.name != object && contains(object, &t.name))
            .filter(read_by_then)
            .map(|t| t.name.to_string())
            .collect();
        let watched = !self.settings.policies.resolve(object).ignore || !tables.is_empty();
        // Sharded, the alert is raised by the shard of the object granted on.
        let others = self.settings.shard.is_some_and(|shard| !shard.owns(object));
        if !watched || others {
            return;
        }
        tables.sort();
        tables.truncate(MAX_LISTED_TABLES);
        let severity = if super::permission::is_everyone(&change.grantee) {
            Severity::Critical
        } else {
            Severity::High
        };
        raised.push(Alert {
            schema: ALERT_SCHEMA.to_string(),
            id: alert::grant_id(object, change),
            status: AlertStatus::Grant,
            table: object.to_string(),
            window_start: change.ts,
            window_end: change.ts,
            duration_s: 0.0,
            principals: Vec::new(),
            principals_truncated: 0,
            novel_principals: 0,
            reads: 0,
            baseline_principals: 0,
            severity,
            sensitivity: None,
            as_of: change.ts,
            closed_by: None,
            cause: None,
            exposed_from: None,
            exposed_until: None,
            change: Some(ChangeRecord::from(change)),
            tables,
            standing: None,
        });
    }

    /// The end of a closed window's exposure: when `revoke` is what ended it (by the rules of
    /// [`PermissionLedger::cause`]: no other grant covering its readers stood any more), an
    /// `update` of that window, as it closed, with `exposed_until`.
    fn raise_reverted(&mut self, revoke: &PermissionChange, raised: &mut Vec<Alert>) {
        let settings = &self.settings.permissions;
        let ledger = &self.root_cause.ledger;
        let ends_now = |closed: &Alert| {
            if closed.as_of > revoke.ts {
                return false;
            }
            let names: Vec<&str> = closed
                .principals
                .iter()
                .map(|p| p.principal.as_str())
                .collect();
            let facts = WindowFacts {
                table: &closed.table,
                start: closed.window_start,
                end: closed.window_end,
                principals: &names,
            };
            let known = KnownUntil::Including(revoke.ts);
            ledger
                .cause(&facts, settings.cause_horizon, settings, known)
                .and_then(|cause| cause.revert)
                .is_some_and(|revert| revert.ts == revoke.ts)
        };
        let (ended, waiting): (Vec<Alert>, Vec<Alert>) =
            std::mem::take(&mut self.root_cause.awaiting_revert)
                .into_iter()
                .partition(ends_now);
        self.root_cause.awaiting_revert = waiting;
        for mut update in ended {
            update.status = AlertStatus::Update;
            update.as_of = revoke.ts;
            update.exposed_until = Some(revoke.ts);
            raised.push(update);
        }
    }

    /// The cause of the window of an alert being made, with what the alert may know.
    pub(super) fn cause_of(
        &self,
        facts: &WindowFacts<'_>,
        status: AlertStatus,
        as_of: Ts,
        closed_by: Option<ClosedBy>,
    ) -> Option<Cause> {
        if self.root_cause.ledger.is_empty() {
            return None;
        }
        let known = match (status, closed_by) {
            // A close due at the watermark may come before changes of its very instant.
            (AlertStatus::Closed, Some(ClosedBy::Quiet)) => KnownUntil::Before(as_of),
            // The input ended: every change is known.
            (AlertStatus::Closed, _) => KnownUntil::Including(Ts::MAX),
            _ => KnownUntil::Including(as_of),
        };
        let settings = &self.settings.permissions;
        self.root_cause
            .ledger
            .cause(facts, settings.cause_horizon, settings, known)
    }

    /// Revert verification (docs/detection.md, "Still readable"): a read by a principal not
    /// normal for the table, at `ts`. While a read grant to everyone or a broad group covering
    /// it stands, the principal reads *through* it; after a read grant covering it was revoked
    /// (within the cause horizon), the read says the revoke did not close the table to it —
    /// for a broad grant, when it had read through that grant — and raises `still_readable`
    /// once per (grant, table, principal), naming a grant that still stands if the logs show
    /// one.
    #[cold]
    pub(super) fn verify_revert(
        &mut self,
        table: crate::intern::TableId,
        principal: crate::intern::PrincipalId,
        ts: Ts,
        alerts: &mut Vec<Alert>,
    ) {
        let name = std::sync::Arc::clone(&self.tables[table.at()].name);
        let who = self.principal_names.name(principal);
        let settings = &self.settings.permissions;
        let horizon = settings.cause_horizon.micros();
        let found = self
            .root_cause
            .ledger
            .read_after_revoke(&name, who, ts, settings);
        // The common case, a non-normal read no grant in the ledger is about: nothing to copy.
        if found.standing.is_empty() && found.revoked.is_empty() {
            return;
        }
        let who = who.to_string();
        for grant in &found.standing {
            if settings.is_broad(&grant.grantee) {
                let through = ((*grant).clone(), name.to_string(), who.clone());
                if self.root_cause.through.len() < MAX_READ_THROUGH {
                    self.root_cause.through.insert(through);
                }
            }
        }
        let mut raised = Vec::new();
        for (grant, revoke) in &found.revoked {
            if ts - revoke.ts > horizon {
                continue;
            }
            let key = ((*grant).clone(), name.to_string(), who.clone());
            if settings.is_broad(&grant.grantee) && !self.root_cause.through.contains(&key) {
                continue;
            }
            if self.root_cause.still_readable.contains(&key) {
                continue;
            }
            self.root_cause.still_readable.insert(key);
            let severity = if super::permission::is_everyone(&grant.grantee) {
                Severity::Critical
            } else {
                Severity::High
            };
            raised.push(Alert {
                schema: ALERT_SCHEMA.to_string(),
                id: alert::still_readable_id(&name, &who, grant),
                status: AlertStatus::StillReadable,
                table: name.to_string(),
                window_start: ts,
                window_end: ts,
                duration_s: 0.0,
                principals: vec![alert::PrincipalActivity {
                    principal: who.clone(),
                    first_read: ts,
                    last_read: ts,
                    reads: 1,
                }],
                principals_truncated: 0,
                novel_principals: 1,
                reads: 1,
                baseline_principals: 0,
                severity,
                sensitivity: None,
                as_of: ts,
                closed_by: None,
                cause: None,
                exposed_from: Some(grant.ts),
                exposed_until: Some(revoke.ts),
                change: Some(ChangeRecord::from(*grant)),
                tables: Vec::new(),
                standing: found.standing.first().map(|g| ChangeRecord::from(*g)),
            });
        }
        raised.sort_by(|a, b| a.id.cmp(&b.id));
        for alert in raised {
            self.push_alert(alert, alerts);
        }
    }

    /// A closed window whose cause stands still waits for its revert.
    pub(super) fn await_revert(&mut self, closed: &Alert) {
        if closed.cause.is_none() || closed.exposed_until.is_some() {
            return;
        }
        if self
            .settings
            .report_from
            .is_some_and(|from| closed.as_of < from)
        {
            return;
        }
        let awaiting = &mut self.root_cause.awaiting_revert;
        if awaiting.len() >= MAX_AWAITING_REVERT {
            awaiting.remove(0);
        }
        awaiting.push(closed.clone());
    }

    /// Forgets permission history no window can still need: before the earliest open window's
    /// start (or `now`) less the cause horizon.
    pub(super) fn prune_permissions(&mut self, now: Ts) {
        let earliest_open = self
            .tables
            .iter()
            .filter_map(|t| t.window.as_ref().map(|w| w.start))
            .min()
            .unwrap_or(now)
            .min(now);
        let horizon = self.settings.permissions.cause_horizon.micros();
        let cutoff = earliest_open
            .saturating_sub(horizon)
            .saturating_sub(self.settings.lateness.micros());
        self.root_cause.ledger.prune(cutoff);
        let RootCause {
            ledger,
            through,
            still_readable,
            ..
        } = &mut self.root_cause;
        through.retain(|(grant, _, _)| ledger.holds(grant));
        still_readable.retain(|(grant, _, _)| ledger.holds(grant));
    }
}
