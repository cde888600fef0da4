//! The judge on small states: who gains, what a repeat or a revoke changes, the verdicts.

use super::proposal::{ProposalOptions, read};
use super::*;
use crate::detect::snapshot::TableSnapshot;

fn table(name: &str, readers: &[&str]) -> TableSnapshot {
    TableSnapshot {
        table: name.into(),
        learn_until: Some(0),
        baseline: readers.iter().map(|r| (r.to_string(), 1)).collect(),
        pending: Vec::new(),
        window: None,
    }
}

fn grant(object: &str, grantee: &str, privilege: &str) -> PermissionChange {
    PermissionChange {
        ts: 1,
        action: ChangeAction::Grant,
        object: object.into(),
        grantee: grantee.into(),
        privilege: privilege.into(),
        actor: "dba".into(),
        statement: None,
    }
}

/// Ten people; `db.users.pii` read by a and b, `db.users.cards` by c, `db.public.docs` by
/// everyone; `pii_readers` = {a, b, d} holds SELECT on `db.users.pii`.
fn knowledge() -> Knowledge {
    let people: Vec<String> = ('a'..='j').map(|c| c.to_string()).collect();
    let snapshot = DetectorSnapshot {
        now: Some(10),
        next_prune: 0,
        newest: Some(10),
        floor: None,
        stats: Default::default(),
        tables: vec![
            table("db.users.pii", &["a", "b"]),
            table("db.users.cards", &["c"]),
            table(
                "db.public.docs",
                &people.iter().map(String::as_str).collect::<Vec<_>>(),
            ),
        ],
        buffered: Vec::new(),
        permissions: RootCauseSnapshot {
            changes: vec![
                grant("db.users.pii", "pii_readers", "SELECT"),
                grant("pii_readers", "a", "MEMBER"),
                grant("pii_readers", "b", "MEMBER"),
                grant("pii_readers", "d", "MEMBER"),
            ],
            ..Default::default()
        },
        population: people.iter().map(|p| (p.clone(), 5)).collect(),
    };
    Knowledge::from_snapshot(&snapshot, &[])
}

fn ask(sql: &str) -> CheckReport {
    let policies = Policies::default();
    let permissions = PermissionSettings::default();
    let policy = CheckPolicy::default();
    let rules = Rules {
        policies: &policies,
        permissions: &permissions,
        check: &policy,
    };
    let proposal = read(sql, &ProposalOptions::default()).unwrap();
    check(&knowledge(), &proposal, rules)
}

fn gains(report: &CheckReport) -> Vec<(String, usize)> {
    report.changes[0]
        .tables
        .iter()
        .map(|t| (t.table.clone(), t.would_gain_read.unwrap_or(0)))
        .collect()
}

#[test]
fn a_grant_to_everyone_on_a_schema_of_sensitive_tables_is_denied_with_who_gains() {
    let report = ask("GRANT SELECT ON ALL TABLES IN SCHEMA db.users TO PUBLIC");
    assert_eq!(report.verdict, Verdict::Deny);
    // pii: a, b read it, d may (pii_readers): 7 gain; cards: 9.
    assert_eq!(
        gains(&report),
        [("db.users.cards".into(), 9), ("db.users.pii".into(), 7)]
    );
    assert_eq!(
        report.reason,
        "everyone (PUBLIC) would gain read of db.users.cards (confidential, +9), \
         db.users.pii (confidential, +7) [check] deny_everyone"
    );
    assert_eq!(report.changes[0].grantee_covers.count, 10);
    assert_eq!(
        report.changes[0].undo.as_deref(),
        Some("REVOKE SELECT ON ALL TABLES IN SCHEMA db.users FROM PUBLIC")
    );
}

#[test]
fn a_grant_to_one_newcomer_is_warned_and_to_a_reader_changes_nothing() {
    let report = ask("GRANT SELECT ON db.users.pii TO e");
    assert_eq!(report.verdict, Verdict::Warn);
    assert_eq!(report.changes[0].tables[0].principals, ["e"]);
    // d is in pii_readers: it can read already.
    let report = ask("GRANT SELECT ON db.users.pii TO d");
    assert_eq!(report.verdict, Verdict::Allow);
    assert!(!report.changes[0].changes_access);
    // A repeat of the standing grant.
    let report = ask("GRANT SELECT ON db.users.pii TO pii_readers");
    assert_eq!(report.verdict, Verdict::Allow);
    assert!(report.changes[0].already_granted.is_some());
    assert!(
        report.reason.starts_with("changes nothing"),
        "{}",
        report.reason
    );
}

#[test]
fn a_grant_to_a_group_names_its_members_who_gain() {
    let report = ask("GRANT SELECT ON db.users.cards TO pii_readers");
    assert_eq!(report.changes[0].grantee_covers.kind, "members");
    assert_eq!(report.changes[0].tables[0].principals, ["a", "b", "d"]);
    let report = ask("GRANT pii_readers TO e");
    assert_eq!(report.changes[0].reaches, "membership");
    assert_eq!(gains(&report), [("db.users.pii".into(), 1)]);
    assert_eq!(report.verdict, Verdict::Warn);
}

#[test]
fn a_revoke_is_always_allowed_and_says_who_loses_read() {
    let report = ask("REVOKE SELECT ON db.users.pii FROM pii_readers");
    assert_eq!(report.verdict, Verdict::Allow);
    assert!(report.changes[0].changes_access);
    assert_eq!(report.changes[0].tables[0].would_lose_read, Some(2));
    assert_eq!(report.changes[0].tables[0].principals, ["a", "b"]);
    let report = ask("REVOKE SELECT ON db.users.cards FROM PUBLIC");
    assert_eq!(report.verdict, Verdict::Allow);
    assert!(!report.changes[0].changes_access);
}

#[test]
fn everyone_already_reading_a_public_table_gains_nothing_and_unknown_tables_are_named() {
    let report = ask("GRANT SELECT ON db.public.docs TO PUBLIC");
    assert_eq!(gains(&report), [("db.public.docs".into(), 0)]);
    assert_eq!(report.verdict, Verdict::Allow);
    let report = ask("GRANT SELECT ON db.users.new_table TO PUBLIC");
    assert!(!report.changes[0].tables[0].known);
    assert_eq!(report.verdict, Verdict::Deny);
    let report =
        ask("ALTER DEFAULT PRIVILEGES IN SCHEMA db.users GRANT SELECT ON TABLES TO PUBLIC");
    assert_eq!(report.changes[0].reaches, "future tables");
    assert_eq!(report.verdict, Verdict::Deny);
    let report = ask("GRANT INSERT ON db.users.pii TO PUBLIC");
    assert_eq!(report.verdict, Verdict::Allow);
    assert!(!report.changes[0].reads);
}

#[test]
fn classification_and_thresholds_decide() {
    let policies = Policies {
        classify: vec![crate::detect::policy::ClassifyRule {
            tables: crate::detect::policy::compile_glob_set(&["db.users.cards".into()]).unwrap(),
            columns: None,
            level: Sensitivity::Internal,
        }],
        ..Policies::default()
    };
    let permissions = PermissionSettings::default();
    let policy = CheckPolicy {
        deny_new_readers: 5,
        ..Default::default()
    };
    let rules = Rules {
        policies: &policies,
        permissions: &permissions,
        check: &policy,
    };
    let proposal = read(
        "GRANT SELECT ON ALL TABLES IN SCHEMA db.users TO PUBLIC",
        &ProposalOptions::default(),
    )
    .unwrap();
    let report = check(&knowledge(), &proposal, rules);
    let cards = &report.changes[0].tables[0];
    assert_eq!(
        (cards.sensitivity, cards.classified),
        (Sensitivity::Internal, true)
    );
    assert_eq!(cards.verdict, Verdict::Allow);
    let pii = &report.changes[0].tables[1];
    assert_eq!(
        (pii.verdict, pii.rule),
        (Verdict::Deny, Some("deny_everyone"))
    );
}
