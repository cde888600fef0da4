//! Permission state: which grants stand on which objects as far as the logs say, and who is a
//! member of which role (the ledger); its `cause` module ranks, for an exposure window, the
//! widening change that most plausibly opened it and the narrowing change that reverted it. The
//! rules are those of docs/detection.md, "Root cause"; this module owns them and nothing else
//! (no alerts, no time): the detector asks, in event time, and every answer depends only on the
//! changes with times up to the bound it gives, never on the order they arrived in.

use crate::event::{ChangeAction, PermissionChange};
use crate::time::{Span, Ts};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

mod cause;
pub use cause::{Cause, KnownUntil, WindowFacts};

/// Grantees that stand for everyone, whatever the configuration (compared case-insensitively):
/// SQL's `PUBLIC`, GCP's and S3 ACLs' `allUsers` and `allAuthenticatedUsers`, a policy's `*`,
/// Databricks' `account users`.
pub const EVERYONE: &[&str] = &[
    "PUBLIC",
    "allUsers",
    "allAuthenticatedUsers",
    "*",
    "account users",
];

pub use crate::event::{READ_PRIVILEGES, grants_read};

/// How far back a change may be and still be a window's cause, unless configured.
pub const DEFAULT_CAUSE_HORIZON: Span = Span(24 * 3600 * 1_000_000);

/// How permission changes are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionSettings {
    /// A widening change older than this before a window's start is not its cause.
    pub cause_horizon: Span,
    /// Grantees that count as broad besides [`EVERYONE`] (large groups): a read grant to one
    /// raises a `grant` alert at once.
    pub broad_grantees: Vec<String>,
    /// Grants and memberships standing before the logs say anything (`--grants` snapshots):
    /// in the ledger from the start, raising nothing by themselves.
    pub seed: std::sync::Arc<[PermissionChange]>,
}

impl Default for PermissionSettings {
    fn default() -> Self {
        PermissionSettings {
            cause_horizon: DEFAULT_CAUSE_HORIZON,
            broad_grantees: Vec::new(),
            seed: std::sync::Arc::new([]),
        }
    }
}

impl PermissionSettings {
    /// Whether `grantee` stands for everyone or is a configured large group.
    pub fn is_broad(&self, grantee: &str) -> bool {
        is_everyone(grantee) || self.broad_grantees.iter().any(|g| g == grantee)
    }
}

/// Whether `grantee` stands for everyone.
pub fn is_everyone(grantee: &str) -> bool {
    EVERYONE.iter().any(|e| e.eq_ignore_ascii_case(grantee))
}

/// See [`PermissionLedger::read_after_revoke`].
#[derive(Debug, Default)]
pub struct AfterRevoke<'a> {
    /// (grant, the revoke that ended it), in no particular order.
    pub revoked: Vec<(&'a PermissionChange, &'a PermissionChange)>,
    /// The grants covering the principal that stand at that time (the most specific object
    /// first, then by grantee).
    pub standing: Vec<&'a PermissionChange>,
}

/// The changes of one (object, grantee) pair, in order.
type PairChanges = BTreeSet<PermissionChange>;

/// What the logs said about permissions: read grants and revokes by object and grantee, and
/// role memberships. Only changes that give or take away read (and memberships) are kept.
#[derive(Debug, Clone, Default)]
pub struct PermissionLedger {
    by_object: FxHashMap<String, BTreeMap<String, PairChanges>>,
    /// Role → member → membership changes.
    members: FxHashMap<String, BTreeMap<String, PairChanges>>,
}

/// The ledger as plain data (for checkpoints and `learn`), sorted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerSnapshot {
    pub changes: Vec<PermissionChange>,
}

impl PermissionLedger {
    /// Whether `change` is about read access or role membership (anything else is not kept).
    pub fn is_relevant(change: &PermissionChange) -> bool {
        change.is_membership() || grants_read(&change.privilege)
    }

    /// Records `change`; false when it was already recorded (the same change read twice) or is
    /// not relevant.
    pub fn insert(&mut self, change: PermissionChange) -> bool {
        if !Self::is_relevant(&change) {
            return false;
        }
        let map = if change.is_membership() {
            &mut self.members
        } else {
            &mut self.by_object
        };
        map.entry(change.object.clone())
            .or_default()
            .entry(change.grantee.clone())
            .or_default()
            .insert(change)
    }

    /// Changes recorded.
    pub fn len(&self) -> usize {
        [&self.by_object, &self.members]
            .iter()
            .flat_map(|map| map.values())
            .flat_map(|pairs| pairs.values())
            .map(BTreeSet::len)
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_object.is_empty() && self.members.is_empty()
    }

    /// Whether a grant to the grantee of `change` stood just before it on its object or a
    /// container of it (so that `change`, a grant, widens nothing new).
    pub fn stood_before(&self, change: &PermissionChange) -> bool {
        let map = if change.is_membership() {
            &self.members
        } else {
            &self.by_object
        };
        if change.is_membership() {
            return map
                .get(&change.object)
                .and_then(|pairs| pairs.get(&change.grantee))
                .is_some_and(|changes| standing(changes.range(..change)).is_some());
        }
        containers(&change.object).any(|object| {
            let history = self.history(object, &change.grantee, None);
            standing(history.into_iter().take_while(|c| *c < change)).is_some()
        })
    }

    /// The changes that decide the pair (`object`, `grantee`), in order: its own (`own`, when
    /// the caller has them at hand), and the revokes of every table of a container of it
    /// (`REVOKE … ON ALL TABLES IN SCHEMA`, recorded on `schema.*`).
    fn history<'a>(
        &'a self,
        object: &str,
        grantee: &str,
        own: Option<&'a PairChanges>,
    ) -> Vec<&'a PermissionChange> {
        let pair = |object: &str| self.by_object.get(object).and_then(|p| p.get(grantee));
        let mut history: Vec<&PermissionChange> = own
            .or_else(|| pair(object))
            .map(|c| c.iter().collect())
            .unwrap_or_default();
        let mut merged = false;
        for container in containers(object).skip(1) {
            for separator in ['.', '/'] {
                if let Some(revokes) = pair(&format!("{container}{separator}*")) {
                    history.extend(revokes.iter());
                    merged = true;
                }
            }
        }
        if merged {
            history.sort();
        }
        history
    }

    /// The revoke that ended `grant`: the first revoke of its pair (or of every table of a
    /// container of its object) after it, if the logs show one.
    pub fn revoke_after(&self, grant: &PermissionChange) -> Option<&PermissionChange> {
        self.history(&grant.object, &grant.grantee, None)
            .into_iter()
            .find(|c| c.action == ChangeAction::Revoke && c.ts >= grant.ts && *c > grant)
    }

    /// What the ledger says of a read of `table` by `principal` at `at`, for revert
    /// verification: the read grants covering them whose revoke came at or before `at` (each
    /// with that revoke), and the grants covering them that still stand then.
    /// A grant covers a principal when it is to everyone or a broad group (`settings`), names
    /// it, or is to a role it is a member of at `at`.
    pub fn read_after_revoke(
        &self,
        table: &str,
        principal: &str,
        at: Ts,
        settings: &PermissionSettings,
    ) -> AfterRevoke<'_> {
        let mut found = AfterRevoke::default();
        for object in containers(table) {
            let Some(pairs) = self.by_object.get(object) else {
                continue;
            };
            for (grantee, changes) in pairs {
                let covers = settings.is_broad(grantee)
                    || names(grantee, principal)
                    || self.is_member(grantee, principal, at);
                if !covers {
                    continue;
                }
                let history = self.history(object, grantee, Some(changes));
                let until_now: Vec<&PermissionChange> =
                    history.into_iter().take_while(|c| c.ts <= at).collect();
                if let Some(grant) = standing(until_now.iter().copied()) {
                    found.standing.push(grant);
                    continue;
                }
                // Not standing: the last grant and the revoke that ended it.
                let Some(revoke_at) = until_now
                    .iter()
                    .rposition(|c| c.action == ChangeAction::Revoke)
                else {
                    continue;
                };
                let revoke = until_now[revoke_at];
                if let Some(grant) = standing(until_now[..revoke_at].iter().copied()) {
                    found.revoked.push((grant, revoke));
                }
            }
        }
        found
    }

    /// Whether the ledger still holds `change`.
    pub fn holds(&self, change: &PermissionChange) -> bool {
        let map = if change.is_membership() {
            &self.members
        } else {
            &self.by_object
        };
        map.get(&change.object)
            .and_then(|pairs| pairs.get(&change.grantee))
            .is_some_and(|changes| changes.contains(change))
    }

    /// The members of `role` at `at`, directly or through roles, sorted (roles among them
    /// included).
    pub fn members_of(&self, role: &str, at: Ts) -> BTreeSet<String> {
        let mut found: BTreeSet<String> = BTreeSet::new();
        let mut queue: Vec<String> = vec![role.to_string()];
        while let Some(current) = queue.pop() {
            let Some(members) = self.members.get(&current) else {
                continue;
            };
            for (member, changes) in members {
                if standing(changes.iter().take_while(|c| c.ts <= at)).is_some()
                    && found.insert(member.clone())
                {
                    queue.push(member.clone());
                }
            }
        }
        found
    }

    /// Whether `principal` is a member of `role` at `at`, directly or through roles it is a
    /// member of.
    pub fn is_member(&self, role: &str, principal: &str, at: Ts) -> bool {
        let mut seen: Vec<&str> = vec![role];
        let mut at_depth = 0;
        while at_depth < seen.len() {
            let current = seen[at_depth];
            at_depth += 1;
            let Some(members) = self.members.get(current) else {
                continue;
            };
            for (member, changes) in members {
                if standing(changes.iter().take_while(|c| c.ts <= at)).is_none() {
                    continue;
                }
                if member == principal {
                    return true;
                }
                if !seen.contains(&member.as_str()) {
                    seen.push(member);
                }
            }
        }
        false
    }

    /// Forgets what no answer can need any more: changes before `cutoff`, except the grant
    /// that still stands on each pair (what is granted to whom).
    pub fn prune(&mut self, cutoff: Ts) {
        for map in [&mut self.by_object, &mut self.members] {
            for pairs in map.values_mut() {
                for changes in pairs.values_mut() {
                    let old: Vec<PermissionChange> = changes
                        .iter()
                        .take_while(|c| c.ts < cutoff)
                        .cloned()
                        .collect();
                    let keep = standing(old.iter()).cloned();
                    for change in old {
                        if Some(&change) != keep.as_ref() {
                            changes.remove(&change);
                        }
                    }
                }
                pairs.retain(|_, changes| !changes.is_empty());
            }
            map.retain(|_, pairs| !pairs.is_empty());
        }
    }

    /// The ledger as plain data.
    pub fn snapshot(&self) -> LedgerSnapshot {
        let mut changes: Vec<PermissionChange> = [&self.by_object, &self.members]
            .iter()
            .flat_map(|map| map.values())
            .flat_map(|pairs| pairs.values())
            .flatten()
            .cloned()
            .collect();
        changes.sort();
        LedgerSnapshot { changes }
    }

    pub fn restore(snapshot: &LedgerSnapshot) -> PermissionLedger {
        let mut ledger = PermissionLedger::default();
        for change in &snapshot.changes {
            ledger.insert(change.clone());
        }
        ledger
    }

    /// The read grants standing at `at` on `table` or a container of it (a revoke of every
    /// table of a container counted), most specific object first, then by grantee.
    pub fn standing_on(&self, table: &str, at: Ts) -> Vec<&PermissionChange> {
        let mut out = Vec::new();
        for object in containers(table) {
            let Some(pairs) = self.by_object.get(object) else {
                continue;
            };
            for (grantee, changes) in pairs {
                let history = self.history(object, grantee, Some(changes));
                if let Some(grant) = standing(history.into_iter().take_while(|c| c.ts <= at)) {
                    out.push(grant);
                }
            }
        }
        out
    }

    /// The read grants standing at `at` to `grantee` (on any object), sorted.
    pub fn standing_to(&self, grantee: &str, at: Ts) -> Vec<&PermissionChange> {
        let mut out: Vec<&PermissionChange> = Vec::new();
        for (object, pairs) in &self.by_object {
            if let Some(changes) = pairs.get(grantee) {
                let history = self.history(object, grantee, Some(changes));
                if let Some(grant) = standing(history.into_iter().take_while(|c| c.ts <= at)) {
                    out.push(grant);
                }
            }
        }
        out.sort();
        out
    }

    /// Whether the ledger knows `name` as a role with members.
    pub fn is_role(&self, name: &str) -> bool {
        self.members.contains_key(name)
    }

    /// The roles `principal` is a member of at `at`, directly or through roles, sorted.
    pub fn roles_of(&self, principal: &str, at: Ts) -> BTreeSet<String> {
        self.members
            .keys()
            .filter(|role| self.is_member(role, principal, at))
            .cloned()
            .collect()
    }

    /// The grants standing now, for reports: (object, grantee, privilege, since).
    pub fn standing_grants(&self) -> Vec<&PermissionChange> {
        let mut out: Vec<&PermissionChange> = self
            .by_object
            .values()
            .flat_map(|pairs| pairs.values())
            .filter_map(|changes| standing(changes.iter()))
            .collect();
        out.sort();
        out
    }
}

/// Whether `grantee` names `principal` itself: the same name; or, for AWS, an account
/// (`123456789012`, `arn:aws:iam::123456789012:root`) names every principal of that account,
/// and a role (`arn:aws:iam::1:role/Analyst`) its sessions (`arn:aws:iam::1:role/Analyst/alice`,
/// as CloudTrail principals are named by default).
pub fn names(grantee: &str, principal: &str) -> bool {
    if grantee == principal {
        return true;
    }
    let account = grantee
        .strip_prefix("arn:aws:iam::")
        .and_then(|rest| rest.strip_suffix(":root"))
        .unwrap_or(grantee);
    if account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) {
        return principal.starts_with("arn:aws:") && principal.contains(&format!("::{account}:"));
    }
    grantee.starts_with("arn:aws:iam::")
        && principal
            .strip_prefix(grantee)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The grant standing after `changes` (in order): the first grant since the last revoke.
fn standing<'a>(
    changes: impl Iterator<Item = &'a PermissionChange>,
) -> Option<&'a PermissionChange> {
    let mut standing = None;
    for change in changes {
        match change.action {
            ChangeAction::Grant => {
                standing.get_or_insert(change);
            }
            ChangeAction::Revoke => standing = None,
        }
    }
    standing
}

pub use crate::event::EVERY_TABLE;

/// `table` and the containers of it, most specific first: `db.hr.salaries`, `db.hr`, `db`,
/// then [`EVERY_TABLE`] (names split at `.` and `/`).
pub fn containers(table: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(table);
    let mut every = table != EVERY_TABLE;
    std::iter::from_fn(move || {
        let Some(current) = rest else {
            return std::mem::take(&mut every).then_some(EVERY_TABLE);
        };
        rest = current
            .rfind(['.', '/'])
            .map(|at| &current[..at])
            .filter(|c| !c.is_empty());
        Some(current)
    })
}

/// Whether `object` is `table` or a container of it.
pub fn contains(object: &str, table: &str) -> bool {
    containers(table).any(|c| c == object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::MEMBER;

    const MIN: Ts = 60_000_000;

    fn change(
        ts: Ts,
        action: ChangeAction,
        object: &str,
        grantee: &str,
        privilege: &str,
    ) -> PermissionChange {
        PermissionChange {
            ts,
            action,
            object: object.into(),
            grantee: grantee.into(),
            privilege: privilege.into(),
            actor: "admin".into(),
            statement: None,
        }
    }

    fn grant(ts: Ts, object: &str, grantee: &str) -> PermissionChange {
        change(ts, ChangeAction::Grant, object, grantee, "SELECT")
    }

    fn revoke(ts: Ts, object: &str, grantee: &str) -> PermissionChange {
        change(ts, ChangeAction::Revoke, object, grantee, "SELECT")
    }

    fn member(ts: Ts, role: &str, who: &str) -> PermissionChange {
        change(ts, ChangeAction::Grant, role, who, MEMBER)
    }

    fn ledger(changes: &[PermissionChange]) -> PermissionLedger {
        let mut ledger = PermissionLedger::default();
        for c in changes {
            ledger.insert(c.clone());
        }
        ledger
    }

    fn cause_of(ledger: &PermissionLedger, start: Ts, principals: &[&str]) -> Option<Cause> {
        let window = WindowFacts {
            table: "db.hr.salaries",
            start,
            end: start + 10 * MIN,
            principals,
        };
        ledger.cause(
            &window,
            DEFAULT_CAUSE_HORIZON,
            &PermissionSettings::default(),
            KnownUntil::Including(Ts::MAX),
        )
    }

    #[test]
    fn containers_go_from_the_table_outwards() {
        let all: Vec<&str> = containers("db.hr.salaries").collect();
        assert_eq!(all, ["db.hr.salaries", "db.hr", "db", "*"]);
        let all: Vec<&str> = containers("bucket/exports/2026").collect();
        assert_eq!(
            all,
            ["bucket/exports/2026", "bucket/exports", "bucket", "*"]
        );
        assert_eq!(containers("*").collect::<Vec<_>>(), ["*"]);
        assert!(contains("db.hr", "db.hr.salaries"));
        assert!(contains(EVERY_TABLE, "db.hr.salaries"));
        assert!(!contains("db.h", "db.hr.salaries"));
    }

    #[test]
    fn the_standing_grant_to_everyone_is_the_cause_and_its_revoke_the_end() {
        let l = ledger(&[
            grant(100 * MIN, "db.hr.salaries", "PUBLIC"),
            revoke(220 * MIN, "db.hr.salaries", "PUBLIC"),
        ]);
        let cause = cause_of(&l, 110 * MIN, &["a", "b", "c"]).unwrap();
        assert_eq!(cause.grant.ts, 100 * MIN);
        assert_eq!(cause.revert.unwrap().ts, 220 * MIN);
        // A revoke not yet known is not told.
        let window = WindowFacts {
            table: "db.hr.salaries",
            start: 110 * MIN,
            end: 120 * MIN,
            principals: &["a"],
        };
        let known = KnownUntil::Before(220 * MIN);
        let cause = l
            .cause(
                &window,
                DEFAULT_CAUSE_HORIZON,
                &PermissionSettings::default(),
                known,
            )
            .unwrap();
        assert_eq!(cause.revert, None);
    }

    #[test]
    fn no_cause_without_a_standing_grant_in_the_horizon_that_covers_the_readers() {
        // Revoked before the window started.
        let l = ledger(&[
            grant(100 * MIN, "db.hr.salaries", "PUBLIC"),
            revoke(105 * MIN, "db.hr.salaries", "PUBLIC"),
        ]);
        assert_eq!(cause_of(&l, 110 * MIN, &["a"]), None);
        // Too long before.
        let l = ledger(&[grant(0, "db.hr.salaries", "PUBLIC")]);
        assert_eq!(cause_of(&l, 25 * 60 * MIN, &["a"]), None);
        // After the start.
        let l = ledger(&[grant(111 * MIN, "db.hr.salaries", "PUBLIC")]);
        assert_eq!(cause_of(&l, 110 * MIN, &["a"]), None);
        // To one new hire who is not among the readers; to a role of unknown members.
        let l = ledger(&[
            grant(100 * MIN, "db.hr.salaries", "newhire"),
            grant(101 * MIN, "db.hr", "analysts"),
        ]);
        assert_eq!(cause_of(&l, 110 * MIN, &["a", "b"]), None);
        // Not a read privilege.
        let l = ledger(&[change(
            100 * MIN,
            ChangeAction::Grant,
            "db.hr.salaries",
            "PUBLIC",
            "INSERT",
        )]);
        assert_eq!(cause_of(&l, 110 * MIN, &["a"]), None);
        assert!(l.is_empty());
    }

    #[test]
    fn a_grant_at_the_very_start_counts_and_a_repeat_keeps_the_first_time() {
        let l = ledger(&[
            grant(110 * MIN, "db.hr.salaries", "PUBLIC"),
            grant(112 * MIN, "db.hr.salaries", "PUBLIC"),
        ]);
        assert_eq!(cause_of(&l, 110 * MIN, &["a"]).unwrap().grant.ts, 110 * MIN);
        assert_eq!(cause_of(&l, 115 * MIN, &["a"]).unwrap().grant.ts, 110 * MIN);
        assert!(l.stood_before(&grant(112 * MIN, "db.hr.salaries", "PUBLIC")));
        assert!(!l.stood_before(&grant(110 * MIN, "db.hr.salaries", "PUBLIC")));
    }

    #[test]
    fn coverage_then_recency_then_the_most_specific_object_decide() {
        // Everyone beats a later grant to one of the readers.
        let l = ledger(&[
            grant(100 * MIN, "db.hr", "PUBLIC"),
            grant(105 * MIN, "db.hr.salaries", "a"),
        ]);
        let cause = cause_of(&l, 110 * MIN, &["a", "b", "c"]).unwrap();
        assert_eq!(
            (cause.grant.object.as_str(), cause.grant.grantee.as_str()),
            ("db.hr", "PUBLIC")
        );
        // Equal coverage: the later.
        let l = ledger(&[
            grant(100 * MIN, "db.hr.salaries", "PUBLIC"),
            grant(105 * MIN, "db", "*"),
        ]);
        assert_eq!(cause_of(&l, 110 * MIN, &["a"]).unwrap().grant.grantee, "*");
        // Equal time too: the table over its schema, then the smaller grantee name.
        let l = ledger(&[
            grant(100 * MIN, "db.hr", "PUBLIC"),
            grant(100 * MIN, "db.hr.salaries", "PUBLIC"),
        ]);
        assert_eq!(
            cause_of(&l, 110 * MIN, &["a"]).unwrap().grant.object,
            "db.hr.salaries"
        );
        let l = ledger(&[
            grant(100 * MIN, "db.hr.salaries", "allUsers"),
            grant(100 * MIN, "db.hr.salaries", "PUBLIC"),
        ]);
        assert_eq!(
            cause_of(&l, 110 * MIN, &["a"]).unwrap().grant.grantee,
            "PUBLIC"
        );
    }

    #[test]
    fn a_role_covers_its_members_known_by_the_window_end_through_nested_roles() {
        let l = ledger(&[
            grant(100 * MIN, "db.hr", "analysts"),
            member(90 * MIN, "analysts", "a"),
            member(91 * MIN, "analysts", "juniors"),
            member(112 * MIN, "juniors", "b"),
            member(200 * MIN, "juniors", "late"),
        ]);
        let cause = cause_of(&l, 110 * MIN, &["a", "b", "late"]).unwrap();
        assert_eq!(cause.grant.grantee, "analysts");
        assert!(l.is_member("analysts", "b", 120 * MIN));
        assert!(!l.is_member("analysts", "late", 120 * MIN));
        let revoked = ledger(&[
            member(90 * MIN, "analysts", "a"),
            change(95 * MIN, ChangeAction::Revoke, "analysts", "a", MEMBER),
        ]);
        assert!(!revoked.is_member("analysts", "a", 100 * MIN));
        // Cycles end.
        let cyclic = ledger(&[member(1, "x", "y"), member(1, "y", "x")]);
        assert!(!cyclic.is_member("x", "z", 10));
    }

    #[test]
    fn the_answer_does_not_depend_on_the_order_changes_arrived_in() {
        let changes = [
            grant(100 * MIN, "db.hr.salaries", "PUBLIC"),
            revoke(150 * MIN, "db.hr.salaries", "PUBLIC"),
            grant(160 * MIN, "db.hr.salaries", "PUBLIC"),
            revoke(160 * MIN, "db.hr.salaries", "PUBLIC"),
            member(1, "r", "a"),
        ];
        let forward = ledger(&changes);
        let mut reversed = changes.to_vec();
        reversed.reverse();
        let backward = ledger(&reversed);
        for start in [120, 155, 160, 170] {
            assert_eq!(
                cause_of(&forward, start * MIN, &["a"]),
                cause_of(&backward, start * MIN, &["a"])
            );
        }
        // A revoke and a grant of one instant: the grant stands.
        assert_eq!(
            cause_of(&forward, 170 * MIN, &["a"]).unwrap().grant.ts,
            160 * MIN
        );
        assert_eq!(forward.snapshot(), backward.snapshot());
        assert_eq!(
            PermissionLedger::restore(&forward.snapshot()).snapshot(),
            forward.snapshot()
        );
    }

    #[test]
    fn aws_accounts_name_their_principals_and_roles_their_sessions() {
        let session = "arn:aws:iam::123456789012:role/Analyst/alice";
        assert!(names("123456789012", session));
        assert!(names("arn:aws:iam::123456789012:root", session));
        assert!(names("arn:aws:iam::123456789012:role/Analyst", session));
        assert!(!names("arn:aws:iam::123456789012:role/Analy", session));
        assert!(!names("210987654321", session));
        assert!(!names("alice", "alice2"));
    }

    #[test]
    fn pruning_keeps_what_stands() {
        let mut l = ledger(&[
            grant(MIN, "t", "PUBLIC"),
            revoke(2 * MIN, "t", "PUBLIC"),
            grant(3 * MIN, "t", "PUBLIC"),
            grant(4 * MIN, "t", "PUBLIC"),
            grant(MIN, "u", "bob"),
            revoke(2 * MIN, "u", "bob"),
        ]);
        l.prune(10 * MIN);
        let kept: Vec<(Ts, String)> = l
            .snapshot()
            .changes
            .into_iter()
            .map(|c| (c.ts, c.object))
            .collect();
        assert_eq!(kept, [(3 * MIN, "t".to_string())]);
        assert_eq!(l.standing_grants().len(), 1);
    }
}
