//! What an exposure cost: for each permission change that opened one, who could read through
//! it, who did (every principal not normal for a table it opened who read the table while it
//! stood, with what and how much), who still read after the revoke, and a verdict — the
//! evidence behind "no data was mishandled". Pure: the exposures, the normality of each
//! principal and the coverage of each grantee come from the caller (`exposure impact` asks the
//! detector); reads are handed in one by one, in any order.

use crate::detect::Severity;
use crate::detect::policy::Sensitivity;
use crate::time::{Ts, format_ts};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// The schema every impact record carries.
pub const IMPACT_SCHEMA: &str = "exposure.impact/v1";

/// One exposure: a read grant (the cause of windows, or an early warning) and how long it
/// stood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposure {
    /// The change, as alerts name it (`None`: an interval the user named).
    pub change: Option<crate::detect::ChangeRecord>,
    /// The tables of an interval the user named (`--table` globs, as written).
    pub named: Option<String>,
    /// When it began: the change's time, or the named interval's start.
    pub from: Ts,
    /// When the grant's revoke was made, if the logs show one (or the named interval's end).
    pub revoked_at: Option<Ts>,
    /// The ids of the windows it caused (none: an early warning nobody's reads formed into a
    /// window).
    pub windows: Vec<String>,
}

/// What one principal read of one table, and how much.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TableReads {
    pub table: String,
    pub reads: u64,
    #[serde(serialize_with = "ts_text")]
    pub first_read: Ts,
    #[serde(serialize_with = "ts_text")]
    pub last_read: Ts,
    /// Rows the log says were read, summed, where it says so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<i64>,
    /// Bytes the log says were read, summed, where it says so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<i64>,
    /// The columns read, where the log names them (sorted; every read's together).
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub columns: BTreeSet<String>,
    /// With `[[classify]]`: how sensitive what was read is — the columns read, where the log
    /// names them, else the table (see `Policies::sensitivity_of_read`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sensitivity: Option<Sensitivity>,
    /// After the revoke: a grant that still let the principal read the table at its last
    /// read, if the logs show one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub still_granted: Option<crate::detect::ChangeRecord>,
}

impl TableReads {
    /// Adds the reads of `other`, of the same principal and table. `still_granted` is the one
    /// found at the latest read (the same at the same instant: it depends on the time alone).
    fn merge(&mut self, other: TableReads) {
        if other.last_read > self.last_read {
            self.still_granted = other.still_granted;
        }
        self.reads += other.reads;
        self.first_read = self.first_read.min(other.first_read);
        self.last_read = self.last_read.max(other.last_read);
        add_count(&mut self.rows, other.rows);
        add_count(&mut self.bytes, other.bytes);
        self.columns.extend(other.columns);
    }
}

/// Adds a count the log records to a sum (none recorded: the sum stays as it is).
fn add_count(sum: &mut Option<i64>, more: Option<i64>) {
    if let Some(more) = more {
        *sum = Some(sum.unwrap_or(0).saturating_add(more));
    }
}

/// One principal's reads through an exposure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrincipalReads {
    pub principal: String,
    pub reads: u64,
    /// By table name.
    pub tables: Vec<TableReads>,
}

/// Who could read through the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CouldRead {
    /// `everyone`, `members` (a role or group and its members the logs show), or `principal`.
    pub kind: &'static str,
    pub count: usize,
    /// The principals, sorted (everyone: the population the logs show, not listed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub principals: Vec<String>,
}

/// The impact of one exposure (`exposure.impact/v1`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Impact {
    pub schema: &'static str,
    /// The change's own id: the same for the same change, whatever the run (an interval's:
    /// from its tables and bounds).
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<crate::detect::ChangeRecord>,
    /// An interval the user named: its tables (`--table` globs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tables: Option<String>,
    #[serde(serialize_with = "ts_text")]
    pub exposed_from: Ts,
    #[serde(
        serialize_with = "ts_text_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub exposed_until: Option<Ts>,
    pub windows: Vec<String>,
    pub could_read: CouldRead,
    /// How many principals read through the exposure.
    pub did_read_count: usize,
    pub did_read: Vec<PrincipalReads>,
    /// Reads after the revoke by the principals the change covered who were not normal.
    pub after_revoke_count: usize,
    pub after_revoke: Vec<PrincipalReads>,
    /// `exposed, not accessed` | `accessed` | `accessed, still read after the revoke`.
    pub verdict: &'static str,
    /// With `[[classify]]`: the most sensitive of the object granted on and the tables read
    /// through it, and how bad the verdict is on that data (see [`Impact::weigh`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sensitivity: Option<Sensitivity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
}

impl Impact {
    /// The tables this impact is about: the object granted on, and every table read through
    /// it (during and after).
    pub fn tables(&self) -> impl Iterator<Item = &str> {
        let object = self.change.as_ref().map(|c| c.object.as_str());
        let read = (self.did_read.iter().chain(&self.after_revoke))
            .flat_map(|p| p.tables.iter().map(|t| t.table.as_str()));
        object.into_iter().chain(read)
    }

    /// Every table read through the exposure (during and after), with its sensitivity.
    pub fn table_reads_mut(&mut self) -> impl Iterator<Item = &mut TableReads> {
        (self.did_read.iter_mut().chain(&mut self.after_revoke)).flat_map(|p| &mut p.tables)
    }

    /// Weighs the verdict by the sensitivity of the data (docs/impact.md): `exposed` is what
    /// the change laid open (the object granted on and the tables read through it), which
    /// the record carries; the severity follows what was *read* — each table read's
    /// [`TableReads::sensitivity`] (the columns read, where the log names them), or `exposed`
    /// where none is set. Nobody new read — `medium`; read — `critical` on restricted data,
    /// `high` on confidential, `medium` otherwise; still read after the revoke — one step up.
    pub fn weigh(&mut self, exposed: Sensitivity) {
        let read = (self.did_read.iter().chain(&self.after_revoke))
            .flat_map(|p| &p.tables)
            .map(|t| t.sensitivity.unwrap_or(exposed))
            .max();
        let accessed = match read {
            None => Severity::Medium,
            Some(Sensitivity::Restricted) => Severity::Critical,
            Some(Sensitivity::Confidential) => Severity::High,
            Some(Sensitivity::Internal | Sensitivity::Public) => Severity::Medium,
        };
        let sensitivity = exposed;
        let severity = match (self.after_revoke.is_empty(), accessed) {
            (true, severity) => severity,
            (false, Severity::Medium) => Severity::High,
            (false, _) => Severity::Critical,
        };
        self.sensitivity = Some(sensitivity);
        self.severity = Some(severity);
    }
}

fn ts_text<S: serde::Serializer>(ts: &Ts, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(&format_ts(*ts))
}

fn ts_text_opt<S: serde::Serializer>(ts: &Option<Ts>, ser: S) -> Result<S::Ok, S::Error> {
    match ts {
        Some(ts) => ser.serialize_str(&format_ts(*ts)),
        None => ser.serialize_none(),
    }
}

/// What the caller knows for one exposure: whether a principal was normal for a table when
/// the exposure began, and whether the change covered a principal.
pub trait Judge {
    /// Whether `table` is one the change opened (its object, or a table in it).
    fn opened(&self, table: &str) -> bool;
    /// Whether `principal` was normal for `table` when the exposure began.
    fn normal(&self, table: &str, principal: &str) -> bool;
    /// Whether the change let `principal` read.
    fn covers(&self, principal: &str) -> bool;
    /// A grant other than the change that lets `principal` read `table` at `at`, if known.
    fn still_granted(
        &self,
        _table: &str,
        _principal: &str,
        _at: Ts,
    ) -> Option<crate::detect::ChangeRecord> {
        None
    }
}

/// What one read took, as its log records it: rows, bytes, the columns it names.
#[derive(Debug, Clone, Copy, Default)]
pub struct Volume<'a> {
    pub rows: Option<i64>,
    pub bytes: Option<i64>,
    pub columns: &'a [std::borrow::Cow<'a, str>],
}

/// Reads of one exposure's tables, gathered while the inputs are read.
#[derive(Debug, Clone)]
pub struct Gathered {
    exposure: Exposure,
    /// (principal, table) → reads while the grant stood.
    during: BTreeMap<(String, String), TableReads>,
    /// (principal, table) → reads after its revoke.
    after: BTreeMap<(String, String), TableReads>,
}

impl Gathered {
    pub fn new(exposure: Exposure) -> Gathered {
        Gathered {
            exposure,
            during: BTreeMap::new(),
            after: BTreeMap::new(),
        }
    }

    pub fn exposure(&self) -> &Exposure {
        &self.exposure
    }

    /// One read, at `ts`, with the volume its log records.
    pub fn read(
        &mut self,
        judge: &dyn Judge,
        ts: Ts,
        table: &str,
        principal: &str,
        volume: Volume<'_>,
    ) {
        if Gathered::counts(judge, table, principal) {
            self.record(judge, ts, table, principal, volume);
        }
    }

    /// Whether reads of `table` by `principal` are this exposure's business: a table it
    /// opened, a principal it covered and who was not normal for the table as it began. The
    /// same for every read of the pair: a caller may remember it.
    pub fn counts(judge: &dyn Judge, table: &str, principal: &str) -> bool {
        judge.opened(table) && judge.covers(principal) && !judge.normal(table, principal)
    }

    /// One read of a pair that [`Gathered::counts`], at `ts` (before the exposure began: not
    /// through it, left out).
    pub fn record(
        &mut self,
        judge: &dyn Judge,
        ts: Ts,
        table: &str,
        principal: &str,
        volume: Volume<'_>,
    ) {
        if ts < self.exposure.from {
            return;
        }
        let after = self.exposure.revoked_at.is_some_and(|until| ts >= until);
        let map = if after {
            &mut self.after
        } else {
            &mut self.during
        };
        let entry = map
            .entry((principal.to_string(), table.to_string()))
            .or_insert_with(|| TableReads {
                table: table.to_string(),
                reads: 0,
                first_read: ts,
                last_read: ts,
                rows: None,
                bytes: None,
                columns: BTreeSet::new(),
                sensitivity: None,
                still_granted: None,
            });
        if after && ts >= entry.last_read {
            entry.still_granted = judge.still_granted(table, principal, ts);
        }
        entry.reads += 1;
        entry.first_read = entry.first_read.min(ts);
        entry.last_read = entry.last_read.max(ts);
        add_count(&mut entry.rows, volume.rows);
        add_count(&mut entry.bytes, volume.bytes);
        for column in volume.columns {
            if !entry.columns.contains(column.as_ref()) {
                entry.columns.insert(column.to_string());
            }
        }
    }

    /// Takes in what another gatherer of the same exposure gathered from other reads (another
    /// thread's share of the inputs): the result is the one of gathering all the reads in any
    /// order.
    pub fn merge(&mut self, other: Gathered) {
        for (mine, theirs) in [
            (&mut self.during, other.during),
            (&mut self.after, other.after),
        ] {
            for (pair, reads) in theirs {
                match mine.entry(pair) {
                    std::collections::btree_map::Entry::Vacant(slot) => {
                        slot.insert(reads);
                    }
                    std::collections::btree_map::Entry::Occupied(mut slot) => {
                        slot.get_mut().merge(reads)
                    }
                }
            }
        }
    }

    /// The impact, with who could read (`could_read`, from the caller).
    ///
    /// After the revoke, a change to everyone (or a named interval) counts the principals who
    /// read through it and kept reading: any newcomer later is another exposure's business,
    /// not evidence that this one stayed open. A change to a role or a principal counts every
    /// principal it covered.
    pub fn finish(self, could_read: CouldRead) -> Impact {
        let mut after = self.after;
        if could_read.kind == "everyone" {
            let through: BTreeSet<&str> = self.during.keys().map(|(p, _)| p.as_str()).collect();
            after.retain(|(principal, _), _| through.contains(principal.as_str()));
        }
        let did_read = by_principal(self.during);
        let after_revoke = by_principal(after);
        let verdict = match (did_read.is_empty(), after_revoke.is_empty()) {
            (true, true) => "exposed, not accessed",
            (_, false) => "accessed, still read after the revoke",
            (false, true) => "accessed",
        };
        let exposure = self.exposure;
        let id = match (&exposure.change, &exposure.named) {
            (Some(change), _) => change_id(change),
            (None, named) => interval_id(
                named.as_deref().unwrap_or(""),
                exposure.from,
                exposure.revoked_at,
            ),
        };
        Impact {
            schema: IMPACT_SCHEMA,
            id,
            exposed_from: exposure.from,
            exposed_until: exposure.revoked_at,
            windows: exposure.windows,
            could_read,
            did_read_count: did_read.len(),
            did_read,
            after_revoke_count: after_revoke.len(),
            after_revoke,
            verdict,
            change: exposure.change,
            tables: exposure.named,
            sensitivity: None,
            severity: None,
        }
    }
}

/// Per principal, its tables (sorted by principal, then table).
fn by_principal(reads: BTreeMap<(String, String), TableReads>) -> Vec<PrincipalReads> {
    let mut out: Vec<PrincipalReads> = Vec::new();
    for ((principal, _), table) in reads {
        match out.last_mut() {
            Some(last) if last.principal == principal => {
                last.reads += table.reads;
                last.tables.push(table);
            }
            _ => out.push(PrincipalReads {
                principal,
                reads: table.reads,
                tables: vec![table],
            }),
        }
    }
    out
}

/// `imp-` and a hash of the change: the same change gives the same id in every run.
pub fn change_id(change: &crate::detect::ChangeRecord) -> String {
    let mut text = String::new();
    for part in [
        format_ts(change.ts).as_str(),
        &change.object,
        &change.grantee,
        &change.privilege,
        &change.actor,
    ] {
        text.push_str(part);
        text.push('\0');
    }
    impact_id(&text)
}

/// `imp-` and the first 16 bytes of the SHA-256 of `text`, in hex.
fn impact_id(text: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(text.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("imp-{hex}")
}

/// `imp-` and a hash of a named interval: its tables and bounds.
pub fn interval_id(tables: &str, from: Ts, until: Option<Ts>) -> String {
    let until = until.map(format_ts).unwrap_or_default();
    impact_id(&format!("{tables}\0{}\0{until}", format_ts(from)))
}

/// The principals a set of reads shows, for `could_read` of a grant to everyone.
pub fn population(principals: &BTreeSet<String>) -> CouldRead {
    CouldRead {
        kind: "everyone",
        count: principals.len(),
        principals: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::ChangeRecord;
    use std::borrow::Cow;

    const MIN: Ts = 60_000_000;

    struct Facts {
        normal: Vec<&'static str>,
        covered: Option<Vec<&'static str>>,
    }

    impl Judge for Facts {
        fn opened(&self, table: &str) -> bool {
            table.starts_with("hr.")
        }
        fn normal(&self, _table: &str, principal: &str) -> bool {
            self.normal.contains(&principal)
        }
        fn covers(&self, principal: &str) -> bool {
            self.covered.as_ref().is_none_or(|c| c.contains(&principal))
        }
    }

    fn exposure(revoked_at: Option<Ts>) -> Exposure {
        Exposure {
            from: 100 * MIN,
            named: None,
            change: Some(ChangeRecord {
                ts: 100 * MIN,
                actor: "admin".into(),
                object: "hr".into(),
                grantee: "PUBLIC".into(),
                privilege: "SELECT".into(),
                statement: None,
            }),
            revoked_at,
            windows: vec!["exp-1".into()],
        }
    }

    #[test]
    fn reads_by_newcomers_while_it_stood_are_the_impact_and_after_the_revoke_are_named() {
        let facts = Facts {
            normal: vec!["ann"],
            covered: None,
        };
        let mut gathered = Gathered::new(exposure(Some(160 * MIN)));
        let (ssn, name) = (Cow::from("ssn"), Cow::from("name"));
        let columns = [ssn.clone(), name];
        let read = |rows, bytes| Volume {
            rows,
            bytes,
            columns: &[],
        };
        let reads = [
            (90, "hr.salaries", "eve", read(None, None)), // before: not through it
            (105, "hr.salaries", "ann", read(None, None)), // normal
            (110, "hr.salaries", "eve", read(Some(10), None)),
            (120, "hr.people", "eve", read(Some(5), Some(800))),
            (130, "hr.salaries", "eve", read(Some(2), None)),
            (140, "sales.orders", "eve", read(None, None)), // another table
            (150, "hr.salaries", "bob", read(None, None)),  // one reader, below any threshold
            (170, "hr.salaries", "bob", read(None, None)),  // after the revoke
            (180, "hr.salaries", "zed", read(None, None)),  // a newcomer only after it
        ];
        for (at, table, who, volume) in reads {
            gathered.read(&facts, at * MIN, table, who, volume);
        }
        // The columns of every read of a pair, together.
        for columns in [&columns[..], std::slice::from_ref(&ssn)] {
            let volume = Volume {
                columns,
                ..Volume::default()
            };
            gathered.read(&facts, 115 * MIN, "hr.salaries", "eve", volume);
        }
        let impact = gathered.finish(population(&BTreeSet::new()));
        assert_eq!(impact.verdict, "accessed, still read after the revoke");
        assert_eq!(impact.did_read_count, 2);
        let eve = &impact.did_read[1];
        assert_eq!((eve.principal.as_str(), eve.reads), ("eve", 5));
        assert_eq!(eve.tables[0].table, "hr.people");
        assert_eq!(eve.tables[0].bytes, Some(800));
        let salaries = &eve.tables[1];
        assert_eq!((salaries.reads, salaries.rows), (4, Some(12)));
        assert_eq!(salaries.columns.iter().collect::<Vec<_>>(), ["name", "ssn"]);
        assert!(eve.tables[0].columns.is_empty());
        assert_eq!(
            (salaries.first_read, salaries.last_read),
            (110 * MIN, 130 * MIN)
        );
        // A grant to everyone: after the revoke, those who read through it and kept on.
        assert_eq!(impact.after_revoke_count, 1, "{:?}", impact.after_revoke);
        assert_eq!(impact.after_revoke[0].principal, "bob");
        assert_eq!(
            impact.id,
            change_id(exposure(None).change.as_ref().unwrap())
        );
        let json = serde_json::to_string(&impact).unwrap();
        assert!(
            json.starts_with(r#"{"schema":"exposure.impact/v1","id":"imp-"#),
            "{json}"
        );
    }

    #[test]
    fn an_exposure_nobody_new_used_is_exposed_not_accessed() {
        let facts = Facts {
            normal: vec!["ann"],
            covered: Some(vec!["ann", "carl"]),
        };
        let mut gathered = Gathered::new(exposure(None));
        gathered.read(&facts, 110 * MIN, "hr.salaries", "ann", Volume::default());
        // Not covered by the change: read through something else.
        gathered.read(&facts, 120 * MIN, "hr.salaries", "zed", Volume::default());
        let impact = gathered.finish(CouldRead {
            kind: "members",
            count: 2,
            principals: vec!["ann".into(), "carl".into()],
        });
        assert_eq!(impact.verdict, "exposed, not accessed");
        assert!(impact.did_read.is_empty() && impact.after_revoke.is_empty());
        let json = serde_json::to_string(&impact).unwrap();
        assert!(!json.contains("exposed_until"), "{json}");
    }
}
