//! `exposure check` at the scale of a large warehouse (issue 42): a state of 10^4 tables (100
//! schemas of 100) and 10^5 principals, each table with 50 baseline readers, a thousand roles
//! of 20 members holding grants on a table each. Criterion measures the judge (the proposal
//! read and judged; the state is built once, as a `watch` builds it at a checkpoint): a grant
//! to everyone on a schema (100 tables, each counted over the whole population), to everyone
//! on the whole database (10^4 tables), to one principal on one table, to a role. Goal: under
//! 50 ms each.
//!
//! Then the endpoint: `POST /v1/check` served by the real server on 127.0.0.1, 50 clients at
//! once, each sending 20 checks (a mix of the above but the whole-database one) over fresh
//! connections; the latencies' p50 and p99 are printed (goal: p99 under 100 ms).
//! Run: `cargo bench --bench check`.

use criterion::{Criterion, criterion_group};
use exposure::check::proposal::{ProposalOptions, read};
use exposure::check::{CheckPolicy, Knowledge, Rules, check};
use exposure::detect::snapshot::{DetectorSnapshot, TableSnapshot};
use exposure::detect::{PermissionSettings, Policies, RootCauseSnapshot};
use exposure::event::{ChangeAction, PermissionChange};
use exposure::live::metrics::Metrics;
use exposure::live::server::{self, CheckEndpoint, Judging};
use std::hint::black_box;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TABLES: usize = 10_000;
const PRINCIPALS: usize = 100_000;
const READERS: usize = 50;
const ROLES: usize = 1_000;
const MEMBERS: usize = 20;

fn principal(i: usize) -> String {
    format!("user{i:06}@corp.example")
}

fn table(i: usize) -> String {
    format!("db.s{:03}.t{:05}", i / 100, i)
}

/// The state: tables with baselines drawn by a fixed generator, the population, the roles.
fn snapshot() -> DetectorSnapshot {
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let tables = (0..TABLES)
        .map(|t| {
            let mut baseline: Vec<(String, i64)> = (0..READERS)
                .map(|_| (principal(next(PRINCIPALS)), 1))
                .collect();
            baseline.sort();
            baseline.dedup_by(|a, b| a.0 == b.0);
            TableSnapshot {
                table: table(t),
                learn_until: Some(0),
                baseline,
                pending: Vec::new(),
                window: None,
            }
        })
        .collect();
    let change = |object: String, grantee: String, privilege: &str| PermissionChange {
        ts: 1,
        action: ChangeAction::Grant,
        object,
        grantee,
        privilege: privilege.into(),
        actor: "dba".into(),
        statement: None,
    };
    let mut changes = Vec::new();
    for r in 0..ROLES {
        let role = format!("role{r:04}");
        changes.push(change(table(next(TABLES)), role.clone(), "SELECT"));
        for _ in 0..MEMBERS {
            changes.push(change(role.clone(), principal(next(PRINCIPALS)), "MEMBER"));
        }
    }
    changes.sort();
    changes.dedup();
    DetectorSnapshot {
        now: Some(10),
        next_prune: 0,
        newest: Some(10),
        floor: None,
        stats: Default::default(),
        tables,
        buffered: Vec::new(),
        permissions: RootCauseSnapshot {
            changes,
            ..Default::default()
        },
        population: (0..PRINCIPALS).map(|i| (principal(i), 5)).collect(),
    }
}

const ASKS: [(&str, &str); 4] = [
    (
        "everyone_on_a_schema_of_100",
        "GRANT SELECT ON ALL TABLES IN SCHEMA db.s042 TO PUBLIC",
    ),
    (
        "one_principal_one_table",
        "GRANT SELECT ON db.s042.t04207 TO \"user123456@corp.example\"",
    ),
    (
        "a_role_of_20_on_a_schema",
        "GRANT SELECT ON ALL TABLES IN SCHEMA db.s007 TO role0042",
    ),
    (
        "everyone_on_all_10000",
        "GRANT SELECT ON ALL TABLES IN DATABASE db TO PUBLIC",
    ),
];

fn bench(c: &mut Criterion, knowledge: &Knowledge) {
    let (policies, permissions, policy) = (
        Policies::default(),
        PermissionSettings::default(),
        CheckPolicy::default(),
    );
    let rules = Rules {
        policies: &policies,
        permissions: &permissions,
        check: &policy,
    };
    let mut group = c.benchmark_group("check");
    group.sample_size(20);
    for (name, sql) in ASKS {
        // Real work: the tables are found and everyone is counted.
        let proposal = read(sql, &ProposalOptions::default()).expect("reads");
        let report = check(knowledge, &proposal, rules);
        assert!(
            !report.changes[0].tables.is_empty(),
            "{name}: {}",
            report.reason
        );
        group.bench_function(name, |b| {
            b.iter(|| {
                let proposal = read(sql, &ProposalOptions::default()).expect("reads");
                black_box(serde_json::to_string(&check(knowledge, &proposal, rules)).unwrap())
            })
        });
    }
    group.finish();
}

/// One POST over a fresh connection; gives its latency.
fn post(addr: std::net::SocketAddr, sql: &str) -> Duration {
    let started = Instant::now();
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    write!(
        stream,
        "POST /v1/check HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{sql}",
        sql.len()
    )
    .expect("send");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("answer");
    assert!(
        response.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&response[..200.min(response.len())])
    );
    started.elapsed()
}

fn endpoint(knowledge: Knowledge) {
    let policy = CheckPolicy {
        endpoint: true,
        max_concurrent: 64,
        ..Default::default()
    };
    let check = Arc::new(CheckEndpoint::new(policy));
    check.publish(Judging {
        knowledge,
        policies: Policies::default(),
        permissions: PermissionSettings::default(),
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(server::bind("127.0.0.1:0".parse().unwrap()))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        runtime.block_on(server::serve(
            listener,
            Arc::new(Metrics::default()),
            Some(check),
        ))
    });
    let clients: Vec<_> = (0..50)
        .map(|c| {
            std::thread::spawn(move || {
                (0..20)
                    .map(|i| post(addr, ASKS[(c + i) % 3].1))
                    .collect::<Vec<Duration>>()
            })
        })
        .collect();
    let mut latencies: Vec<Duration> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "check/endpoint_50_concurrent: {} requests, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        at(0.50).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3
    );
}

criterion_group!(benches, criterion_benches);

fn criterion_benches(c: &mut Criterion) {
    let built = Instant::now();
    let knowledge = Knowledge::from_snapshot(&snapshot(), &[]);
    println!(
        "check/state: {} tables, {} principals, built in {:.0} ms",
        knowledge.table_count(),
        knowledge.principal_count(),
        built.elapsed().as_secs_f64() * 1e3
    );
    bench(c, &knowledge);
    endpoint(knowledge);
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
