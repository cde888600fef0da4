//! `exposure check`: what a proposed permission change would do, before it is applied — the
//! tables it opens (containers expanded to the tables the state knows in them), per table who
//! would gain read beyond its baseline, whether it widens what already stands, how to undo it,
//! and a verdict from the `[check]` policy. Pure: the [`Knowledge`] comes from a detector
//! snapshot (a state dir's checkpoint, or history learned on the spot), the proposal from
//! [`proposal`] (which reads it with the parsers of logged changes), and nothing here reads a
//! file or a clock. The rules are docs/check.md's.

pub mod proposal;
pub mod terraform;

use crate::detect::permission::{PermissionLedger, PermissionSettings, contains, names};
use crate::detect::policy::{Policies, Sensitivity};
use crate::detect::snapshot::DetectorSnapshot;
use crate::detect::{ChangeRecord, RootCauseSnapshot};
use crate::event::{ChangeAction, PermissionChange, grants_read};
use crate::impact::CouldRead;
use crate::time::{Ts, format_ts};
use proposal::Proposed;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The schema every check answer carries.
pub const CHECK_SCHEMA: &str = "exposure.check/v1";

/// `[check]`: how a proposed change is judged.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CheckPolicy {
    /// A grant to everyone (or a configured broad group) that opens a table at one of these
    /// levels is denied.
    pub deny_everyone: Vec<Sensitivity>,
    /// The level of a table no `[[classify]]` rule or tag rates.
    pub unclassified: Sensitivity,
    /// The lowest level `warn_new_readers` and `deny_new_readers` apply to.
    pub sensitive_from: Sensitivity,
    /// Warn when a sensitive table would gain at least this many readers beyond its baseline
    /// (0: never).
    pub warn_new_readers: usize,
    /// Deny when a sensitive table would gain at least this many (0: never).
    pub deny_new_readers: usize,
    /// `watch`: answer `POST /v1/check` on the HTTP listener (`--metrics-addr`, else
    /// 127.0.0.1:9464).
    pub endpoint: bool,
    /// The largest request body the endpoint takes.
    pub max_request_bytes: usize,
    /// Requests the endpoint answers at once; more are refused (503) until one is done.
    pub max_concurrent: usize,
}

impl Default for CheckPolicy {
    fn default() -> Self {
        CheckPolicy {
            deny_everyone: vec![Sensitivity::Confidential, Sensitivity::Restricted],
            unclassified: Sensitivity::Confidential,
            sensitive_from: Sensitivity::Confidential,
            warn_new_readers: 1,
            deny_new_readers: 0,
            endpoint: false,
            max_request_bytes: 256 * 1024,
            max_concurrent: 16,
        }
    }
}

/// How a change is judged: allowed, warned about, or denied (worst first when compared).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Allow,
    Warn,
    Deny,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Warn => "warn",
            Verdict::Deny => "deny",
        }
    }

    /// The exit code `exposure check` ends with: 0 allow, 1 deny, 3 warn (2 is a usage or
    /// input error: no answer).
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Allow => 0,
            Verdict::Deny => 1,
            Verdict::Warn => 3,
        }
    }
}

/// What the state knows, arranged for questions: tables sorted by name with their baseline
/// readers as ids into the population, the population sorted, the permission ledger.
#[derive(Debug, Clone)]
pub struct Knowledge {
    as_of: Option<Ts>,
    tables: Vec<KnownTable>,
    /// Every principal the state names (the population, baseline readers, pending and window
    /// principals), sorted; a principal's id is its index.
    population: Vec<String>,
    /// A principal's id by name (one probe, where a binary search over the names would miss
    /// the cache at every step).
    ids: rustc_hash::FxHashMap<String, u32>,
    ledger: PermissionLedger,
}

#[derive(Debug, Clone)]
struct KnownTable {
    name: String,
    /// Ids of its baseline readers, sorted.
    baseline: Vec<u32>,
}

impl Knowledge {
    /// From a detector's state; `seed` holds the `--grants` snapshots' grants (the ledger of a
    /// state holds them already when it was learned with them; repeats are one).
    pub fn from_snapshot(snapshot: &DetectorSnapshot, seed: &[PermissionChange]) -> Knowledge {
        let mut names: Vec<&str> = snapshot
            .population
            .iter()
            .map(|(p, _)| p.as_str())
            .collect();
        for table in &snapshot.tables {
            names.extend(table.baseline.iter().map(|(p, _)| p.as_str()));
            names.extend(table.pending.iter().map(|p| p.principal.as_str()));
            if let Some(window) = &table.window {
                names.extend(window.principals.iter().map(|a| a.principal.as_str()));
            }
        }
        names.retain(|p| !crate::event::is_anonymous(p));
        names.sort_unstable();
        names.dedup();
        let population: Vec<String> = names.into_iter().map(str::to_string).collect();
        let ids: rustc_hash::FxHashMap<String, u32> = (population.iter().enumerate())
            .map(|(at, name)| (name.clone(), at as u32))
            .collect();
        let id = |name: &str| ids.get(name).map(|id| *id as usize);
        let mut tables: Vec<KnownTable> = snapshot
            .tables
            .iter()
            .map(|t| {
                let mut baseline: Vec<u32> = (t.baseline.iter())
                    .filter_map(|(p, _)| id(p).map(|i| i as u32))
                    .collect();
                baseline.sort_unstable();
                KnownTable {
                    name: t.table.clone(),
                    baseline,
                }
            })
            .collect();
        tables.sort_by(|a, b| a.name.cmp(&b.name));
        Knowledge {
            as_of: snapshot.now.or(snapshot.newest),
            tables,
            population,
            ids,
            ledger: ledger_of(&snapshot.permissions, seed),
        }
    }

    /// Tables known.
    pub fn table_count(&self) -> usize {
        self.tables.len()
    }

    /// Principals known (the population).
    pub fn principal_count(&self) -> usize {
        self.population.len()
    }

    fn principal_id(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    /// The known tables `object` is or contains, sorted by name.
    fn tables_in(&self, object: &str) -> Vec<&KnownTable> {
        if object == crate::event::EVERY_TABLE {
            return self.tables.iter().collect();
        }
        // Those it contains start with its name: a run of the sorted tables, filtered.
        let start = self.tables.partition_point(|t| t.name.as_str() < object);
        self.tables[start..]
            .iter()
            .take_while(|t| t.name.starts_with(object))
            .filter(|t| contains(object, &t.name))
            .collect()
    }
}

/// The ledger of a snapshot's permission state: its changes, those not yet released, the seed.
fn ledger_of(permissions: &RootCauseSnapshot, seed: &[PermissionChange]) -> PermissionLedger {
    let mut ledger = PermissionLedger::default();
    for change in permissions
        .changes
        .iter()
        .chain(&permissions.unreleased)
        .chain(seed)
    {
        ledger.insert(change.clone());
    }
    ledger
}

/// What the judge needs besides the state: the table policies (for sensitivity), the
/// grantees that count as everyone, the `[check]` policy.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    pub policies: &'a Policies,
    pub permissions: &'a PermissionSettings,
    pub check: &'a CheckPolicy,
}

/// One table a change reaches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableFinding {
    pub table: String,
    /// Whether the state knows the table (false: named by the change, never read).
    pub known: bool,
    pub sensitivity: Sensitivity,
    /// Whether a `[[classify]]` rule or tag rates it (false: `[check] unclassified`).
    pub classified: bool,
    /// Its baseline readers.
    pub baseline_readers: usize,
    /// A grant: how many principals would gain read (not in its baseline, not already let in
    /// by a standing grant).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub would_gain_read: Option<usize>,
    /// A revoke: how many of its baseline readers would lose read (no other standing grant
    /// lets them in).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub would_lose_read: Option<usize>,
    /// Who, sorted (a grant to everyone: only when at most [`MAX_LISTED`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub principals: Vec<String>,
    pub verdict: Verdict,
    /// The `[check]` key that decided a warn or deny.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<&'static str>,
}

/// One change of the proposal, judged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeFinding {
    pub action: &'static str,
    pub object: String,
    pub grantee: String,
    pub privilege: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
    /// `tables`, `future tables` (a container's tables yet to be made), or `membership`
    /// (the grantee joins role `object`, and gains what it reads).
    pub reaches: &'static str,
    /// Whether the privilege lets one read at all.
    pub reads: bool,
    /// Who the grantee is: everyone (`count`: the population), a role or group and its members
    /// the state knows, or one principal.
    pub grantee_covers: CouldRead,
    /// Whether it lets anyone read anything they could not (a grant), or takes away what
    /// stands (a revoke).
    pub changes_access: bool,
    /// A grant: the standing grant it repeats (a repeat changes nothing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub already_granted: Option<ChangeRecord>,
    pub tables: Vec<TableFinding>,
    /// How to undo it (a grant's matching revoke).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub undo: Option<String>,
    pub verdict: Verdict,
    pub reason: String,
}

/// The answer (`exposure.check/v1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    pub schema: &'static str,
    pub verdict: Verdict,
    /// One line: the decisive finding.
    pub reason: String,
    /// The state's event time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
    pub known_tables: usize,
    pub known_principals: usize,
    pub changes: Vec<ChangeFinding>,
}

impl CheckReport {
    /// The human form: the verdict and reason, then per change what it reaches.
    pub fn text(&self) -> String {
        let mut out = format!("{}: {}\n", self.verdict.name(), self.reason);
        for c in &self.changes {
            let what = c.statement.clone().unwrap_or_else(|| {
                format!(
                    "{} {} ON {} TO {}",
                    c.action, c.privilege, c.object, c.grantee
                )
            });
            out.push_str(&format!(
                "\n{:<5} {}\n",
                c.verdict.name().to_uppercase(),
                what
            ));
            out.push_str(&format!("      {}\n", c.reason));
            let covers = &c.grantee_covers;
            let who = match covers.kind {
                "everyone" => format!("everyone ({} principals known)", covers.count),
                "members" => format!("{} and its {} known members", c.grantee, covers.count),
                _ => c.grantee.clone(),
            };
            out.push_str(&format!("      grantee: {who}\n"));
            for t in &c.tables {
                let level = format!(
                    "{}{}",
                    t.sensitivity.name(),
                    if t.classified { "" } else { "*" }
                );
                let change = match (t.would_gain_read, t.would_lose_read) {
                    (Some(n), _) => format!("+{n} would gain read"),
                    (_, Some(n)) => format!("-{n} baseline readers would lose read"),
                    _ => String::new(),
                };
                out.push_str(&format!(
                    "      {:<40} {:<14} baseline {:<5} {:<26} {}{}\n",
                    t.table,
                    level,
                    t.baseline_readers,
                    change,
                    t.verdict.name(),
                    t.rule.map(|r| format!(" ({r})")).unwrap_or_default()
                ));
                if !t.principals.is_empty() {
                    let shown = t.principals.len().min(12);
                    let count = t.would_gain_read.or(t.would_lose_read).unwrap_or(0);
                    let more = match count.saturating_sub(shown) {
                        0 => String::new(),
                        n => format!(" and {n} more"),
                    };
                    out.push_str(&format!(
                        "        {}{more}\n",
                        t.principals[..shown].join(", ")
                    ));
                }
            }
            if c.tables.iter().any(|t| !t.classified) {
                out.push_str("      * unclassified: counted as [check] unclassified\n");
            }
            if let Some(already) = &c.already_granted {
                out.push_str(&format!(
                    "      repeats the standing grant of {} on {} to {} ({})\n",
                    already.privilege,
                    already.object,
                    already.grantee,
                    format_ts(already.ts)
                ));
            }
            if let Some(undo) = &c.undo {
                out.push_str(&format!("      undo: {undo}\n"));
            }
        }
        out
    }
}

/// Judges `proposal` against what `knowledge` holds.
pub fn check(knowledge: &Knowledge, proposal: &[Proposed], rules: Rules<'_>) -> CheckReport {
    let mut judge = Judge::new(knowledge, rules);
    let changes: Vec<ChangeFinding> = proposal.iter().map(|p| judge.change(p)).collect();
    let decisive = changes
        .iter()
        .enumerate()
        .max_by_key(|(at, c)| (c.verdict, std::cmp::Reverse(*at)));
    let (verdict, reason) = match decisive {
        Some((_, c)) if changes.len() == 1 => (c.verdict, c.reason.clone()),
        Some((_, c)) => (
            c.verdict,
            format!("{} (the worst of {} changes)", c.reason, changes.len()),
        ),
        None => (
            Verdict::Allow,
            "no change of read access in the proposal".to_string(),
        ),
    };
    CheckReport {
        schema: CHECK_SCHEMA,
        verdict,
        reason,
        as_of: knowledge.as_of.map(format_ts),
        known_tables: knowledge.tables.len(),
        known_principals: knowledge.population.len(),
        changes,
    }
}

/// Who a grantee covers.
#[derive(Debug, Clone)]
enum Covered {
    Everyone,
    /// A role's known members (roles among them left out), or one principal.
    Named(BTreeSet<String>),
}

/// One check's working state: reusable marks over the population, members looked up once.
struct Judge<'k> {
    knowledge: &'k Knowledge,
    rules: Rules<'k>,
    /// `marks[id] == generation`: principal `id` is marked in the current count.
    marks: Vec<u32>,
    generation: u32,
    /// Per grantee: the principals it stands for, and their ids in the population.
    members: BTreeMap<String, (BTreeSet<String>, Vec<u32>)>,
}

/// Those gaining read through a grant to everyone are listed when at most this many (all are
/// counted); a role's members always are.
pub const MAX_LISTED: usize = 100;

/// Every answer takes the ledger as it stands after every change it knows.
const LATEST: Ts = Ts::MAX;

impl<'k> Judge<'k> {
    fn new(knowledge: &'k Knowledge, rules: Rules<'k>) -> Judge<'k> {
        Judge {
            knowledge,
            rules,
            marks: vec![0; knowledge.population.len()],
            generation: 0,
            members: BTreeMap::new(),
        }
    }

    /// The principals `grantee` stands for: its known members (roles among them left out)
    /// and the principals it names (an AWS account or role); itself when none is known.
    fn members(&mut self, grantee: &str) -> &BTreeSet<String> {
        if !self.members.contains_key(grantee) {
            let ledger = &self.knowledge.ledger;
            let mut found: BTreeSet<String> = ledger
                .members_of(grantee, LATEST)
                .into_iter()
                .filter(|m| !ledger.is_role(m))
                .collect();
            if grantee.starts_with("arn:aws:")
                || (grantee.len() == 12 && grantee.bytes().all(|b| b.is_ascii_digit()))
            {
                found.extend(
                    (self.knowledge.population.iter())
                        .filter(|p| names(grantee, p))
                        .cloned(),
                );
            }
            if found.is_empty() {
                found.insert(grantee.to_string());
            }
            let mut ids: Vec<u32> = (found.iter().chain(std::iter::once(&grantee.to_string())))
                .filter_map(|m| self.knowledge.principal_id(m))
                .collect();
            ids.sort_unstable();
            ids.dedup();
            self.members.insert(grantee.to_string(), (found, ids));
        }
        &self.members[grantee].0
    }

    fn covered(&mut self, grantee: &str) -> Covered {
        if self.rules.permissions.is_broad(grantee) {
            Covered::Everyone
        } else {
            Covered::Named(self.members(grantee).clone())
        }
    }

    fn could_read(&self, grantee: &str, covered: &Covered) -> CouldRead {
        match covered {
            Covered::Everyone => CouldRead {
                kind: "everyone",
                count: self.knowledge.population.len(),
                principals: Vec::new(),
            },
            Covered::Named(set) => CouldRead {
                kind: if set.len() == 1 && set.contains(grantee) {
                    "principal"
                } else {
                    "members"
                },
                count: set.len(),
                principals: set.iter().cloned().collect(),
            },
        }
    }

    /// The sensitivity of `table`, and whether a rule rated it.
    fn sensitivity(&self, table: &str) -> (Sensitivity, bool) {
        match self.rules.policies.sensitivity(table) {
            Some(level) => (level, true),
            None => (self.rules.check.unclassified, false),
        }
    }

    /// Who may read `table` now: its baseline readers (they read it, so they can) and whom
    /// the standing grants on it or its containers cover (but `skip`'s: the grant a revoke
    /// ends). Marks them (a new generation) and gives how many; `None` when a standing grant
    /// covers everyone.
    fn mark_able(
        &mut self,
        table: &KnownTable,
        baseline: bool,
        skip: Option<&PermissionChange>,
    ) -> Option<usize> {
        self.generation += 1;
        if self.generation == u32::MAX {
            self.marks.iter_mut().for_each(|m| *m = 0);
            self.generation = 1;
        }
        let generation = self.generation;
        let mut marked = 0;
        let mut mark = |marks: &mut [u32], id: u32| {
            let slot = &mut marks[id as usize];
            if *slot != generation {
                *slot = generation;
                marked += 1;
            }
        };
        if baseline {
            for id in &table.baseline {
                mark(&mut self.marks, *id);
            }
        }
        let grantees: Vec<String> = (self.knowledge.ledger)
            .standing_on(&table.name, LATEST)
            .into_iter()
            .filter(|g| {
                skip.is_none_or(|s| !(g.grantee == s.grantee && contains(&s.object, &g.object)))
            })
            .map(|g| g.grantee.clone())
            .collect();
        for grantee in grantees {
            if self.rules.permissions.is_broad(&grantee) {
                return None;
            }
            self.members(&grantee);
            for id in &self.members[&grantee].1 {
                mark(&mut self.marks, *id);
            }
        }
        Some(marked)
    }

    fn marked(&self, name: &str) -> bool {
        self.knowledge
            .principal_id(name)
            .is_some_and(|id| self.marks[id as usize] == self.generation)
    }

    /// Who of `covered` would gain read of `table`: (how many, who — not listed for everyone).
    fn gains(&mut self, table: &KnownTable, covered: &Covered) -> (usize, Vec<String>) {
        let Some(able) = self.mark_able(table, true, None) else {
            return (0, Vec::new());
        };
        match covered {
            Covered::Everyone => {
                // Listed when they are few (a part of everyone, in name order, would say
                // nothing the count does not).
                let gaining = self.knowledge.population.len() - able;
                let generation = self.generation;
                let listed: Vec<String> = if gaining <= MAX_LISTED {
                    (self.marks.iter().zip(&self.knowledge.population))
                        .filter(|(mark, _)| **mark != generation)
                        .map(|(_, name)| name.clone())
                        .collect()
                } else {
                    Vec::new()
                };
                (gaining, listed)
            }
            Covered::Named(set) => {
                let gaining: Vec<String> =
                    set.iter().filter(|p| !self.marked(p)).cloned().collect();
                (gaining.len(), gaining)
            }
        }
    }

    /// Which baseline readers of `table` that `covered` holds would lose read when `revoke`
    /// is made (no other standing grant lets them in).
    fn losses(
        &mut self,
        table: &KnownTable,
        covered: &Covered,
        revoke: &PermissionChange,
    ) -> Vec<String> {
        let baseline: Vec<String> = (table.baseline.iter())
            .map(|id| self.knowledge.population[*id as usize].clone())
            .filter(|p| match covered {
                Covered::Everyone => true,
                Covered::Named(set) => set.contains(p),
            })
            .collect();
        // Marks whom the other standing grants cover.
        if self.mark_able(table, false, Some(revoke)).is_none() {
            return Vec::new();
        }
        baseline.into_iter().filter(|p| !self.marked(p)).collect()
    }

    /// The finding for one table: its sensitivity, the count, the verdict.
    fn judge_table(
        &self,
        table: &str,
        known: Option<&KnownTable>,
        everyone: bool,
        gained: Option<(usize, Vec<String>)>,
    ) -> TableFinding {
        let (sensitivity, classified) = self.sensitivity(table);
        let check = self.rules.check;
        let (verdict, rule) = match &gained {
            Some((n, _)) if *n > 0 && everyone && check.deny_everyone.contains(&sensitivity) => {
                (Verdict::Deny, Some("deny_everyone"))
            }
            Some((n, _))
                if check.deny_new_readers > 0
                    && *n >= check.deny_new_readers
                    && sensitivity >= check.sensitive_from =>
            {
                (Verdict::Deny, Some("deny_new_readers"))
            }
            Some((n, _))
                if check.warn_new_readers > 0
                    && *n >= check.warn_new_readers
                    && sensitivity >= check.sensitive_from =>
            {
                (Verdict::Warn, Some("warn_new_readers"))
            }
            _ => (Verdict::Allow, None),
        };
        let (would_gain_read, principals) = match gained {
            Some((n, list)) => (Some(n), list),
            None => (None, Vec::new()),
        };
        TableFinding {
            table: table.to_string(),
            known: known.is_some(),
            sensitivity,
            classified,
            baseline_readers: known.map_or(0, |t| t.baseline.len()),
            would_gain_read,
            would_lose_read: None,
            principals,
            verdict,
            rule,
        }
    }

    fn change(&mut self, proposed: &Proposed) -> ChangeFinding {
        let change = &proposed.change;
        let reads = change.is_membership() || grants_read(&change.privilege);
        let mut finding = ChangeFinding {
            action: change.action.as_str(),
            object: change.object.clone(),
            grantee: change.grantee.clone(),
            privilege: change.privilege.clone(),
            statement: change.statement.clone(),
            reaches: if change.is_membership() {
                "membership"
            } else if proposed.future_only {
                "future tables"
            } else {
                "tables"
            },
            reads,
            grantee_covers: CouldRead {
                kind: "principal",
                count: 1,
                principals: Vec::new(),
            },
            changes_access: false,
            already_granted: None,
            tables: Vec::new(),
            undo: proposed.undo.clone(),
            verdict: Verdict::Allow,
            reason: String::new(),
        };
        let covered = self.covered(&change.grantee);
        finding.grantee_covers = self.could_read(&change.grantee, &covered);
        if !reads {
            finding.reason = format!(
                "{} {} does not let anyone read",
                change.action.as_str(),
                change.privilege
            );
            return finding;
        }
        match change.action {
            ChangeAction::Revoke => self.revoke(change, &covered, &mut finding),
            ChangeAction::Grant if change.is_membership() => {
                self.membership(change, &covered, &mut finding)
            }
            ChangeAction::Grant if proposed.future_only => {
                self.future(change, &covered, &mut finding)
            }
            ChangeAction::Grant => self.grant(change, &covered, &mut finding),
        }
        finding
    }

    fn grant(&mut self, change: &PermissionChange, covered: &Covered, f: &mut ChangeFinding) {
        let everyone = matches!(covered, Covered::Everyone);
        f.already_granted = (self.knowledge.ledger)
            .standing_on(&change.object, LATEST)
            .into_iter()
            .find(|g| g.grantee == change.grantee)
            .map(ChangeRecord::from);
        let known = self.knowledge.tables_in(&change.object);
        if known.is_empty() {
            // A table the state never saw read: nobody is normal there.
            let gained = match covered {
                Covered::Everyone => (self.knowledge.population.len(), Vec::new()),
                Covered::Named(set) => (set.len(), set.iter().cloned().collect()),
            };
            let gained = if f.already_granted.is_some() {
                (0, Vec::new())
            } else {
                gained
            };
            f.tables
                .push(self.judge_table(&change.object, None, everyone, Some(gained)));
        }
        for table in known {
            let gained = self.gains(table, covered);
            let finding = self.judge_table(&table.name, Some(table), everyone, Some(gained));
            f.tables.push(finding);
        }
        f.changes_access = f.tables.iter().any(|t| t.would_gain_read.unwrap_or(0) > 0);
        self.conclude(change, everyone, f);
    }

    /// `GRANT role TO member`: the member gains what the role (and the roles it is in) may
    /// read.
    fn membership(&mut self, change: &PermissionChange, covered: &Covered, f: &mut ChangeFinding) {
        let ledger = &self.knowledge.ledger;
        let mut roles = ledger.roles_of(&change.object, LATEST);
        roles.insert(change.object.clone());
        let grants: Vec<PermissionChange> = roles
            .iter()
            .flat_map(|role| ledger.standing_to(role, LATEST))
            .cloned()
            .collect();
        f.already_granted = ledger
            .members_of(&change.object, LATEST)
            .contains(&change.grantee)
            .then(|| ChangeRecord {
                ts: change.ts,
                actor: String::new(),
                object: change.object.clone(),
                grantee: change.grantee.clone(),
                privilege: crate::event::MEMBER.to_string(),
                statement: None,
            });
        let mut seen = BTreeSet::new();
        for grant in &grants {
            for table in self.knowledge.tables_in(&grant.object) {
                if !seen.insert(table.name.clone()) {
                    continue;
                }
                let gained = self.gains(table, covered);
                let finding = self.judge_table(&table.name, Some(table), false, Some(gained));
                f.tables.push(finding);
            }
        }
        f.tables.sort_by(|a, b| a.table.cmp(&b.table));
        f.changes_access = f.tables.iter().any(|t| t.would_gain_read.unwrap_or(0) > 0);
        self.conclude(change, false, f);
    }

    /// A grant on the future tables of a container: no table that exists is opened; judged
    /// by what the container holds now.
    fn future(&mut self, change: &PermissionChange, covered: &Covered, f: &mut ChangeFinding) {
        let everyone = matches!(covered, Covered::Everyone);
        let held = self.knowledge.tables_in(&change.object);
        let level = held
            .iter()
            .map(|t| self.sensitivity(&t.name).0)
            .max()
            .unwrap_or(self.rules.check.unclassified);
        f.changes_access = true;
        let deny = everyone && self.rules.check.deny_everyone.contains(&level);
        f.verdict = if deny { Verdict::Deny } else { Verdict::Allow };
        f.reason = format!(
            "{} would read every table made in {} from now on (it holds {} {} table{} now){}",
            describe_grantee(&change.grantee, everyone),
            change.object,
            held.len(),
            level.name(),
            if held.len() == 1 { "" } else { "s" },
            if deny { " [check] deny_everyone" } else { "" }
        );
    }

    fn revoke(&mut self, change: &PermissionChange, covered: &Covered, f: &mut ChangeFinding) {
        let ledger = &self.knowledge.ledger;
        let stands = if change.is_membership() {
            ledger
                .members_of(&change.object, LATEST)
                .contains(&change.grantee)
        } else {
            ledger
                .standing_on(&change.object, LATEST)
                .iter()
                .any(|g| g.grantee == change.grantee && contains(&change.object, &g.object))
                || ledger
                    .standing_to(&change.grantee, LATEST)
                    .iter()
                    .any(|g| contains(&change.object, &g.object))
        };
        f.changes_access = stands;
        if !change.is_membership() {
            for table in self.knowledge.tables_in(&change.object) {
                // Nothing standing, nothing lost.
                let lost = if stands {
                    self.losses(table, covered, change)
                } else {
                    Vec::new()
                };
                let mut finding = self.judge_table(&table.name, Some(table), false, None);
                finding.would_lose_read = Some(lost.len());
                if lost.len() <= MAX_LISTED || !matches!(covered, Covered::Everyone) {
                    finding.principals = lost;
                }
                f.tables.push(finding);
            }
        }
        let cut: usize = f.tables.iter().filter_map(|t| t.would_lose_read).sum();
        f.verdict = Verdict::Allow;
        f.reason = match (stands, cut) {
            (false, _) => format!(
                "a revoke is always allowed; no grant to {} on {} is known to stand",
                change.grantee, change.object
            ),
            (true, 0) => "a revoke is always allowed".to_string(),
            (true, n) => format!(
                "a revoke is always allowed; {n} baseline reader{} would lose read",
                if n == 1 { "" } else { "s" }
            ),
        };
    }

    /// The change's verdict and reason from its tables'.
    fn conclude(&self, change: &PermissionChange, everyone: bool, f: &mut ChangeFinding) {
        f.verdict = f
            .tables
            .iter()
            .map(|t| t.verdict)
            .max()
            .unwrap_or(Verdict::Allow);
        let who = describe_grantee(&change.grantee, everyone);
        if !f.changes_access {
            f.reason = match &f.already_granted {
                Some(_) => format!(
                    "changes nothing: {} can already read {}",
                    change.grantee, change.object
                ),
                None if f.tables.is_empty() => format!(
                    "opens no table the state knows ({} holds none)",
                    change.object
                ),
                None => format!(
                    "{} can already read every table {} opens",
                    change.grantee, change.object
                ),
            };
            return;
        }
        let decisive: Vec<&TableFinding> = f
            .tables
            .iter()
            .filter(|t| t.verdict == f.verdict && t.would_gain_read.unwrap_or(0) > 0)
            .collect();
        // The reason is one line: the first tables named, the rest counted.
        let list = |tables: &[&TableFinding]| {
            const NAMED: usize = 5;
            let more = match tables.len().saturating_sub(NAMED) {
                0 => String::new(),
                n => format!(" and {n} more table{}", if n == 1 { "" } else { "s" }),
            };
            tables
                .iter()
                .take(NAMED)
                .map(|t| {
                    format!(
                        "{} ({}, +{})",
                        t.table,
                        t.sensitivity.name(),
                        t.would_gain_read.unwrap_or(0)
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
                + &more
        };
        let gained: usize = f
            .tables
            .iter()
            .filter_map(|t| t.would_gain_read)
            .max()
            .unwrap_or(0);
        f.reason = match (f.verdict, decisive.first().and_then(|t| t.rule)) {
            (Verdict::Allow, _) => format!(
                "{who} would gain read of {} table{} none of them sensitive by [check] ({} principal{} at most)",
                f.tables.len(),
                if f.tables.len() == 1 { "," } else { "s," },
                gained,
                if gained == 1 { "" } else { "s" }
            ),
            (_, Some("deny_everyone")) => format!(
                "{who} would gain read of {} [check] deny_everyone",
                list(&decisive)
            ),
            (_, Some(rule)) => format!(
                "{who} would gain read of {}, beyond the baseline [check] {rule}",
                list(&decisive)
            ),
            (_, None) => String::new(),
        };
    }
}

/// The grantee in a reason: `everyone (PUBLIC)` or its name.
fn describe_grantee(grantee: &str, everyone: bool) -> String {
    if everyone {
        format!("everyone ({grantee})")
    } else {
        grantee.to_string()
    }
}

#[cfg(test)]
mod tests;
