//! `exposure check`'s reading of a proposed change (SQL, bucket policies and ACLs, IAM, Unity
//! Catalog, canonical lines, Terraform plans) and the judge after it: any text, read as every
//! kind and dialect, gives changes or an error, and a verdict for the changes — never a panic.
#![no_main]
use exposure::check::proposal::{Dialect, ProposalKind, ProposalOptions, read};
use exposure::check::{CheckPolicy, Knowledge, Rules, check};
use exposure::detect::snapshot::{DetectorSnapshot, TableSnapshot};
use exposure::detect::{PermissionSettings, Policies};
use exposure::format::grant_sql::undo_statement;
use libfuzzer_sys::fuzz_target;

fn knowledge() -> Knowledge {
    let table = |name: &str, readers: &[&str]| TableSnapshot {
        table: name.into(),
        learn_until: Some(0),
        baseline: readers.iter().map(|r| (r.to_string(), 1)).collect(),
        pending: Vec::new(),
        window: None,
    };
    let snapshot = DetectorSnapshot {
        now: Some(10),
        next_prune: 0,
        newest: Some(10),
        floor: None,
        stats: Default::default(),
        tables: vec![table("db.users.pii", &["a"]), table("bucket/exports", &["b"])],
        buffered: Vec::new(),
        permissions: Default::default(),
        population: vec![("a".into(), 1), ("b".into(), 1), ("c".into(), 1)],
    };
    Knowledge::from_snapshot(&snapshot, &[])
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = undo_statement(text);
    let knowledge = knowledge();
    let (policies, permissions, policy) =
        (Policies::default(), PermissionSettings::default(), CheckPolicy::default());
    let rules = Rules { policies: &policies, permissions: &permissions, check: &policy };
    for kind in [
        ProposalKind::Auto,
        ProposalKind::Sql,
        ProposalKind::S3Policy,
        ProposalKind::S3Acl,
        ProposalKind::GcpIam,
        ProposalKind::Databricks,
        ProposalKind::Canonical,
        ProposalKind::Terraform,
    ] {
        for dialect in [Dialect::Postgres, Dialect::Snowflake] {
            let options = ProposalOptions {
                kind,
                dialect,
                object: Some("bucket".into()),
                ..Default::default()
            };
            if let Ok(proposal) = read(text, &options) {
                let report = check(&knowledge, &proposal, rules);
                let _ = report.text();
            }
        }
    }
});
