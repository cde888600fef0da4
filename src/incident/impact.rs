//! `exposure impact`: the detector and the inputs asked what each exposure cost. One replay
//! finds the exposures (the causes of windows, the early warnings), every permission change,
//! and the state of each table as each grant was made (who was normal there then); one pass
//! over the inputs hands every read to the pure [`crate::impact`] core.

use super::scan::Seen;
use crate::config::Config;
use crate::detect::permission::{PermissionLedger, contains, names};
use crate::detect::snapshot::{TableSnapshot, decide_read};
use crate::detect::{ChangeRecord, Decides};
use crate::event::{ChangeAction, PermissionChange};
use crate::impact::{CouldRead, Exposure, Gathered, Impact, Judge, Volume, population};
use crate::report::Problems;
use crate::source::Input;
use crate::time::{TimeFilter, Ts};
use rustc_hash::FxHashMap;
use std::collections::{BTreeMap, BTreeSet};

/// Which exposures `exposure impact` assesses.
#[derive(Debug, Clone)]
pub enum Asked {
    /// Every read grant the run's alerts name.
    All,
    /// The one whose impact id (`imp-…`) this is.
    Change(String),
    /// An interval the user names: every principal not normal for a table matching one of
    /// `tables` at `from` who read it from `from` to `until`.
    Named {
        tables: Vec<String>,
        from: Ts,
        until: Option<Ts>,
    },
}

/// The exposures `asked` for in `inputs` and what each cost, in the order they began.
pub fn assess(
    config: &Config,
    inputs: &[Input],
    asked: &Asked,
    problems: &mut Problems,
) -> anyhow::Result<Vec<Impact>> {
    let mut ledger = PermissionLedger::default();
    // Per exposure, the state of the tables it opened as it began.
    let mut states: Vec<Vec<TableSnapshot>> = Vec::new();
    let (exposures, named) = match asked {
        Asked::Named {
            tables,
            from,
            until,
        } => {
            // Who was normal as the interval began: the detector's state then.
            let filter = TimeFilter {
                since: None,
                until: Some(*from),
            };
            let (_, before) = crate::live::learn_history(config, inputs, filter, problems)?;
            states.push(before.tables);
            let exposure = Exposure {
                change: None,
                named: Some(tables.join(",")),
                from: *from,
                revoked_at: *until,
                windows: Vec::new(),
            };
            let globs = crate::detect::policy::compile_glob_set(tables)?;
            (vec![exposure], Some(globs))
        }
        Asked::All | Asked::Change(_) => {
            // One replay: the run's alerts name the exposures; the detector keeps every
            // permission change (its own ledger forgets reverted grants once no window can
            // need them; impact needs their revokes) and each table's state as each grant
            // was made.
            let mut config = config.clone();
            config.detector.record_grant_states = true;
            let options = crate::replay::ReplayOptions {
                threads: std::thread::available_parallelism().map_or(1, |n| n.get().min(2)),
                ..Default::default()
            };
            let mut alerts = Vec::new();
            let outcome = crate::replay::replay(&config, inputs, &options, &mut alerts, problems)?;
            let recorded = outcome.grant_states.unwrap_or_default();
            for change in &recorded.changes {
                ledger.insert(change.clone());
            }
            let alerts = super::read_alerts(&String::from_utf8_lossy(&alerts), "the replay")?;
            let mut exposures = exposures(&alerts, &ledger);
            if let Asked::Change(id) = asked {
                exposures.retain(|e| {
                    e.change.as_ref().map(crate::impact::change_id) == Some(id.clone())
                });
            }
            exposures.sort_by(|a, b| {
                let object = |e: &Exposure| e.change.as_ref().map(|c| c.object.clone());
                (a.from, object(a)).cmp(&(b.from, object(b)))
            });
            for exposure in &exposures {
                let change = exposure
                    .change
                    .as_ref()
                    .expect("an alert's exposure has a change");
                states.push(recorded.at(change.ts, &change.object).to_vec());
            }
            (exposures, None)
        }
    };
    if exposures.is_empty() {
        return Ok(Vec::new());
    }
    let judges: Vec<Judged> = exposures
        .iter()
        .zip(states)
        .map(|(exposure, tables)| Judged {
            config,
            ledger: &ledger,
            change: exposure.change.clone(),
            named: named.clone(),
            from: exposure.from,
            tables,
        })
        .collect();
    // Every read from the earliest population period on. Per read: its principal's id (for
    // the population each exposure saw) and the exposures that opened its table, each looked
    // up once.
    let learn = config.detector.policies.default.thresholds.learn.micros();
    let periods: Vec<(Ts, Ts)> = exposures
        .iter()
        .map(|e| {
            let until = e.revoked_at.unwrap_or(Ts::MAX);
            (e.from.saturating_sub(learn), until)
        })
        .collect();
    let since = periods.iter().map(|p| p.0).min().unwrap_or(Ts::MIN);
    let filter = TimeFilter {
        since: Some(since),
        until: None,
    };
    // On both cores, each with its own tally; merged after (what is gathered does not depend
    // on the order reads come in). The replay (or the history read) reported what was wrong
    // with the inputs: once is enough.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(2));
    let tallies = super::scan::scan_parallel(
        config,
        inputs,
        &filter,
        threads,
        || Tally::new(&exposures, &judges, &periods),
        Tally::read,
    );
    let mut tallies = tallies.into_iter();
    let mut tally = tallies
        .next()
        .unwrap_or_else(|| Tally::new(&exposures, &judges, &periods));
    for other in tallies {
        tally.merge(other);
    }
    let Tally {
        principals,
        seen,
        gathered,
        ..
    } = tally;
    let mut by_id: Vec<&str> = vec![""; principals.len()];
    for (name, &id) in &principals {
        by_id[id] = name;
    }
    let mut out = Vec::with_capacity(gathered.len());
    for ((g, judge), seen) in gathered.into_iter().zip(&judges).zip(&seen) {
        let population: BTreeSet<String> = (0..seen.len() * 64)
            .filter(|&id| seen[id / 64] & (1 << (id % 64)) != 0)
            .map(|id| by_id[id].to_string())
            .collect();
        let mut impact = g.finish(judge.could_read(&population));
        let policies = &config.detector.policies;
        if let Some(exposed) = impact
            .tables()
            .filter_map(|t| policies.sensitivity(t))
            .max()
        {
            for read in impact.table_reads_mut() {
                let columns = read.columns.iter().map(String::as_str);
                read.sensitivity = policies.sensitivity_of_read(&read.table, columns);
            }
            impact.weigh(exposed);
        }
        out.push(impact);
    }
    Ok(out)
}

/// What one thread gathered of the reads it was handed: the principals it met (an id each),
/// per exposure the principals of its population period (a bit per id) and the reads through
/// it, and, looked up once, the exposures that opened each table and whether each (table,
/// principal) pair counts for each exposure.
struct Tally<'j> {
    judges: &'j [Judged<'j>],
    periods: &'j [(Ts, Ts)],
    principals: FxHashMap<Box<str>, usize>,
    seen: Vec<Vec<u64>>,
    /// Table → (its id here, the exposures that opened it).
    opened_by: FxHashMap<Box<str>, (usize, Box<[usize]>)>,
    counted: Vec<FxHashMap<(usize, usize), bool>>,
    gathered: Vec<Gathered>,
}

impl<'j> Tally<'j> {
    fn new(exposures: &[Exposure], judges: &'j [Judged<'j>], periods: &'j [(Ts, Ts)]) -> Self {
        Tally {
            judges,
            periods,
            principals: FxHashMap::default(),
            seen: vec![Vec::new(); exposures.len()],
            opened_by: FxHashMap::default(),
            counted: vec![FxHashMap::default(); exposures.len()],
            gathered: exposures.iter().cloned().map(Gathered::new).collect(),
        }
    }

    fn principal_id(&mut self, principal: &str) -> usize {
        match self.principals.get(principal) {
            Some(&id) => id,
            None => {
                let id = self.principals.len();
                self.principals.insert(Box::from(principal), id);
                id
            }
        }
    }

    fn see(&mut self, exposure: usize, id: usize) {
        let seen = &mut self.seen[exposure];
        if seen.len() <= id / 64 {
            seen.resize(id / 64 + 1, 0);
        }
        seen[id / 64] |= 1 << (id % 64);
    }

    fn read(&mut self, r: &Seen<'_>) {
        let id = self.principal_id(r.principal);
        for (exposure, &(start, end)) in self.periods.iter().enumerate() {
            if r.ts >= start && r.ts < end {
                self.see(exposure, id);
            }
        }
        if !self.opened_by.contains_key(r.table) {
            let opened = (0..self.judges.len())
                .filter(|&i| self.judges[i].opened(r.table))
                .collect();
            let table = self.opened_by.len();
            self.opened_by.insert(Box::from(r.table), (table, opened));
        }
        let (table, opened) = &self.opened_by[r.table];
        for &i in opened.iter() {
            if r.ts < self.gathered[i].exposure().from {
                continue;
            }
            // Whether the pair counts is the same for every read of it: asked once.
            let judge = &self.judges[i];
            let counts = *self.counted[i]
                .entry((*table, id))
                .or_insert_with(|| Gathered::counts(judge, r.table, r.principal));
            if counts {
                let volume = Volume {
                    rows: r.rows,
                    bytes: r.bytes,
                    columns: r.columns,
                };
                self.gathered[i].record(judge, r.ts, r.table, r.principal, volume);
            }
        }
    }

    /// Takes in what another thread gathered.
    fn merge(&mut self, other: Tally<'_>) {
        let mut ids = vec![0; other.principals.len()];
        for (name, &id) in &other.principals {
            ids[id] = self.principal_id(name);
        }
        for (exposure, bits) in other.seen.iter().enumerate() {
            for (word, &set) in bits.iter().enumerate() {
                for bit in (0..64).filter(|b| set & (1 << b) != 0) {
                    self.see(exposure, ids[word * 64 + bit]);
                }
            }
        }
        for (mine, theirs) in self.gathered.iter_mut().zip(other.gathered) {
            mine.merge(theirs);
        }
    }
}

/// The exposures the alerts show: each window's cause (its windows together), and each early
/// warning's change; each with its revoke from the ledger.
fn exposures(alerts: &super::AlertsRead, ledger: &PermissionLedger) -> Vec<Exposure> {
    let mut by_change: BTreeMap<String, Exposure> = BTreeMap::new();
    let mut add = |change: &ChangeRecord, window: Option<&str>| {
        let id = crate::impact::change_id(change);
        let exposure = by_change.entry(id).or_insert_with(|| Exposure {
            change: Some(change.clone()),
            named: None,
            from: change.ts,
            revoked_at: ledger.revoke_after(&grant_of(change)).map(|r| r.ts),
            windows: Vec::new(),
        });
        if let Some(window) = window
            && !exposure.windows.iter().any(|w| w == window)
        {
            exposure.windows.push(window.to_string());
        }
    };
    for history in &alerts.windows {
        if let Some(cause) = history.iter().rev().find_map(|a| a.cause.as_ref()) {
            add(cause, Some(&history[0].id));
        }
    }
    for grant in &alerts.grants {
        if let Some(change) = &grant.change {
            add(change, None);
        }
    }
    by_change.into_values().collect()
}

fn grant_of(change: &ChangeRecord) -> PermissionChange {
    PermissionChange {
        ts: change.ts,
        action: ChangeAction::Grant,
        object: change.object.clone(),
        grantee: change.grantee.clone(),
        privilege: change.privilege.clone(),
        actor: change.actor.clone(),
        statement: change.statement.clone(),
    }
}

/// One exposure's facts: the detector's state just before it began, and the ledger.
struct Judged<'a> {
    config: &'a Config,
    ledger: &'a PermissionLedger,
    /// The grant (`None`: an interval the user named, of the tables `named` matches).
    change: Option<ChangeRecord>,
    named: Option<globset::GlobSet>,
    from: Ts,
    /// The state of the tables it opened as it began, sorted by table.
    tables: Vec<TableSnapshot>,
}

impl Judged<'_> {
    /// Who could read through the change: everyone (the population the logs show over the
    /// baseline period up to the revoke, `seen`), a role's members the ledger knows (and the
    /// principals it names that read), or the one principal.
    fn could_read(&self, seen: &BTreeSet<String>) -> CouldRead {
        let Some(change) = &self.change else {
            return population(seen);
        };
        let grantee = &change.grantee;
        if self.config.detector.permissions.is_broad(grantee) {
            return population(seen);
        }
        let mut principals = self.ledger.members_of(grantee, change.ts);
        principals.extend(seen.iter().filter(|p| names(grantee, p)).cloned());
        if principals.is_empty() {
            principals.insert(grantee.clone());
        }
        let kind = if principals.len() == 1 && principals.contains(grantee) {
            "principal"
        } else {
            "members"
        };
        CouldRead {
            kind,
            count: principals.len(),
            principals: principals.into_iter().collect(),
        }
    }
}

impl Judge for Judged<'_> {
    fn opened(&self, table: &str) -> bool {
        match (&self.change, &self.named) {
            (Some(change), _) => contains(&change.object, table),
            (None, Some(globs)) => globs.is_match(table),
            (None, None) => false,
        }
    }

    fn normal(&self, table: &str, principal: &str) -> bool {
        let snapshot = (self.tables)
            .binary_search_by(|t| t.table.as_str().cmp(table))
            .ok()
            .map(|i| &self.tables[i]);
        let policy = self.config.detector.policies.resolve(table);
        match decide_read(snapshot, &policy, principal, self.from) {
            Decides::Baseline | Decides::Allowed | Decides::Approved => true,
            // Still learning: normal if it read while the table learned.
            Decides::Learning => snapshot.is_some_and(|t| {
                (t.baseline)
                    .binary_search_by(|(p, _)| p.as_str().cmp(principal))
                    .is_ok()
            }),
            Decides::Window | Decides::Novel | Decides::Public => false,
        }
    }

    fn still_granted(&self, table: &str, principal: &str, at: Ts) -> Option<ChangeRecord> {
        let settings = &self.config.detector.permissions;
        let found = self
            .ledger
            .read_after_revoke(table, principal, at, settings);
        found.standing.first().map(|g| ChangeRecord::from(*g))
    }

    fn covers(&self, principal: &str) -> bool {
        let Some(change) = &self.change else {
            return true;
        };
        let grantee = &change.grantee;
        self.config.detector.permissions.is_broad(grantee)
            || names(grantee, principal)
            || self.ledger.is_member(grantee, principal, change.ts)
    }
}

/// The notification list: one row per exposure, principal and table (reads while the grant
/// stood, then after its revoke).
pub fn csv(impacts: &[Impact]) -> String {
    let mut out = String::from(
        "exposure,object,grantee,exposed_from,exposed_until,principal,table,reads,first_read,last_read,rows,bytes,after_revoke,columns,sensitivity\n",
    );
    let field = |text: &str| {
        if text.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", text.replace('"', "\"\""))
        } else {
            text.to_string()
        }
    };
    for impact in impacts {
        let (object, grantee) = match (&impact.change, &impact.tables) {
            (Some(change), _) => (change.object.as_str(), change.grantee.as_str()),
            (None, tables) => (tables.as_deref().unwrap_or(""), ""),
        };
        let until = impact
            .exposed_until
            .map(crate::time::format_ts)
            .unwrap_or_default();
        for (after, list) in [(false, &impact.did_read), (true, &impact.after_revoke)] {
            for principal in list {
                for t in &principal.tables {
                    let columns: Vec<&str> = t.columns.iter().map(String::as_str).collect();
                    let sensitivity = t.sensitivity.map(|s| s.name()).unwrap_or_default();
                    out.push_str(&format!(
                        "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
                        impact.id,
                        field(object),
                        field(grantee),
                        crate::time::format_ts(impact.exposed_from),
                        until,
                        field(&principal.principal),
                        field(&t.table),
                        t.reads,
                        crate::time::format_ts(t.first_read),
                        crate::time::format_ts(t.last_read),
                        t.rows.map(|r| r.to_string()).unwrap_or_default(),
                        t.bytes.map(|b| b.to_string()).unwrap_or_default(),
                        after,
                        field(&columns.join(";")),
                        sensitivity,
                    ));
                }
            }
        }
    }
    out
}
