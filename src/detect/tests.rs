//! Table-driven tests of every rule of docs/detection.md, with explicit event times (minutes after a
//! fixed base) and short thresholds: learn 60m, span 10m, quiet 5m, forget_after 1d, min 3.

use super::*;
use crate::detect::policy::{compile_glob, compile_glob_set};
use crate::event::AccessEvent;
use crate::time::MICROS_PER_SEC;
use globset::GlobSet;

const BASE: Ts = 1_773_792_000 * MICROS_PER_SEC; // 2026-03-18T00:00:00Z
const MIN: Micros = 60 * MICROS_PER_SEC;

fn m(minutes: i64) -> Ts {
    BASE + minutes * MIN
}

fn thresholds() -> Thresholds {
    Thresholds {
        learn: Span(60 * MIN),
        forget_after: Span(24 * 60 * MIN),
        span: Span(10 * MIN),
        quiet: Span(5 * MIN),
        min_principals: 3,
    }
}

fn settings() -> DetectorSettings {
    let mut settings = DetectorSettings {
        lateness: Span(MIN),
        ..DetectorSettings::default()
    };
    settings.policies.default = Arc::new(TablePolicy {
        rule: None,
        ignore: false,
        thresholds: thresholds(),
        allow: GlobSet::empty(),
        approved: Vec::new(),
    });
    settings
}

fn rule(pattern: &str, edit: impl FnOnce(&mut TablePolicy)) -> TableRule {
    let mut policy = TablePolicy {
        rule: Some(pattern.into()),
        ignore: false,
        thresholds: thresholds(),
        allow: GlobSet::empty(),
        approved: Vec::new(),
    };
    edit(&mut policy);
    TableRule {
        matcher: compile_glob(pattern).unwrap().compile_matcher(),
        policy: Arc::new(policy),
    }
}

/// (minute, table, principal, action)
type Ev = (i64, &'static str, &'static str, &'static str);

/// The learning hour: alice, bob and carol read `t` (and `hr.pay`, `scratch.x`).
fn learning() -> Vec<Ev> {
    let mut events = Vec::new();
    for table in ["t", "hr.pay", "scratch.x"] {
        events.push((0, table, "alice", "select"));
        events.push((20, table, "bob", "select"));
        events.push((40, table, "carol", "select"));
    }
    events
}

/// Observes `events` in the order given (an empty action is none: a read).
fn feed(detector: &mut Detector, events: &[Ev], alerts: &mut Vec<Alert>) {
    for &(minute, table, principal, action) in events {
        let event = AccessEvent::new(
            m(minute),
            principal,
            table,
            (!action.is_empty()).then_some(action),
        );
        detector.observe(&event, alerts);
    }
}

fn run_with(settings: DetectorSettings, events: &[Ev]) -> Vec<Alert> {
    let mut detector = Detector::new(settings);
    let mut alerts = Vec::new();
    feed(&mut detector, events, &mut alerts);
    detector.finish(&mut alerts);
    alerts
}

/// Alerts in a compact, readable form: "status table start-end principals [closed_by]".
fn summary(alerts: &[Alert]) -> Vec<String> {
    alerts
        .iter()
        .map(|a| {
            let names: Vec<&str> = a.principals.iter().map(|p| p.principal.as_str()).collect();
            let closed = match a.closed_by {
                Some(ClosedBy::Quiet) => " quiet",
                Some(ClosedBy::EndOfInput) => " eoi",
                None => "",
            };
            format!(
                "{:?} {} {}-{} {}{}",
                a.status,
                a.table,
                (a.window_start - BASE) / MIN,
                (a.window_end - BASE) / MIN,
                names.join(","),
                closed
            )
            .to_lowercase()
        })
        .collect()
}

#[test]
fn rules_table() {
    struct Case {
        rule: &'static str,
        events: Vec<Ev>,
        expect: Vec<&'static str>,
    }
    let cases = vec![
        Case {
            rule: "learning: any number of new readers during learning never alerts",
            events: vec![(50, "t", "x", ""), (51, "t", "y", ""), (52, "t", "z", "")],
            expect: vec![],
        },
        Case {
            rule: "baseline: learned principals are normal after learning",
            events: vec![
                (100, "t", "alice", ""),
                (101, "t", "bob", ""),
                (102, "t", "carol", ""),
            ],
            expect: vec![],
        },
        Case {
            rule: "open: three novel principals within span open a window at the earliest first read",
            events: vec![
                (100, "t", "x", ""),
                (103, "t", "y", ""),
                (105, "t", "z", ""),
                (130, "t", "alice", ""),
            ],
            expect: vec!["open t 100-105 x,y,z", "closed t 100-105 x,y,z quiet"],
        },
        Case {
            rule: "open threshold: two novel principals are not a window",
            events: vec![(100, "t", "x", ""), (103, "t", "y", "")],
            expect: vec![],
        },
        Case {
            rule: "pending: first novel reads further apart than span do not open",
            events: vec![
                (100, "t", "x", ""),
                (105, "t", "y", ""),
                (110, "t", "z", ""),
            ],
            expect: vec![],
        },
        Case {
            rule: "graduation: a pending principal whose span ran out joins the baseline",
            events: vec![
                (100, "t", "x", ""),
                (111, "t", "y", ""),
                (112, "t", "x", ""),
                (113, "t", "z", ""),
            ],
            expect: vec![],
        },
        Case {
            rule: "extend: later novel reads join the window and move window_end",
            events: vec![
                (100, "t", "x", ""),
                (101, "t", "y", ""),
                (102, "t", "z", ""),
                (104, "t", "w", ""),
                (108, "t", "x", ""),
                (112, "t", "v", ""),
                (130, "t", "alice", ""),
            ],
            expect: vec!["open t 100-102 x,y,z", "closed t 100-112 x,y,z,w,v quiet"],
        },
        Case {
            rule: "extend: normal reads inside a window do not join it",
            events: vec![
                (100, "t", "x", ""),
                (101, "t", "y", ""),
                (102, "t", "z", ""),
                (104, "t", "alice", ""),
                (130, "t", "bob", ""),
            ],
            expect: vec!["open t 100-102 x,y,z", "closed t 100-102 x,y,z quiet"],
        },
        Case {
            rule: "close: a novel read exactly `quiet` after window_end starts afresh",
            events: vec![
                (100, "t", "x", ""),
                (101, "t", "y", ""),
                (102, "t", "z", ""),
                (107, "t", "w", ""),
                (130, "t", "alice", ""),
            ],
            expect: vec!["open t 100-102 x,y,z", "closed t 100-102 x,y,z quiet"],
        },
        Case {
            rule: "close: a window still open when the input ends is flushed",
            events: vec![
                (100, "t", "x", ""),
                (101, "t", "y", ""),
                (102, "t", "z", ""),
            ],
            expect: vec!["open t 100-102 x,y,z", "closed t 100-102 x,y,z eoi"],
        },
        Case {
            rule: "no poisoning: window principals are novel again after the window",
            events: vec![
                (100, "t", "x", ""),
                (101, "t", "y", ""),
                (102, "t", "z", ""),
                (120, "t", "x", ""),
                (121, "t", "y", ""),
                (122, "t", "z", ""),
                (140, "t", "alice", ""),
            ],
            expect: vec![
                "open t 100-102 x,y,z",
                "closed t 100-102 x,y,z quiet",
                "open t 120-122 x,y,z",
                "closed t 120-122 x,y,z quiet",
            ],
        },
        Case {
            rule: "forget_after: a principal silent for longer than forget_after is novel again",
            events: vec![
                (24 * 60 + 100, "t", "alice", ""),
                (24 * 60 + 101, "t", "x", ""),
                (24 * 60 + 102, "t", "y", ""),
                (24 * 60 + 200, "t", "carol", ""),
            ],
            expect: vec![
                "open t 1540-1542 alice,x,y",
                "closed t 1540-1542 alice,x,y quiet",
            ],
        },
        Case {
            rule: "forget_after: a read within forget_after refreshes the principal",
            events: vec![
                (24 * 60 - 10, "t", "alice", ""),
                (48 * 60 - 20, "t", "alice", ""),
                (48 * 60 - 19, "t", "x", ""),
                (48 * 60 - 18, "t", "y", ""),
            ],
            expect: vec![],
        },
        Case {
            rule: "writes: non-read actions never open a window nor count as reads",
            events: vec![
                (100, "t", "x", "INSERT"),
                (101, "t", "y", "UPDATE"),
                (102, "t", "z", "PutObject"),
                (103, "t", "x", "insert"),
            ],
            expect: vec![],
        },
        Case {
            rule: "actions: read actions are matched case-insensitively",
            events: vec![
                (100, "t", "x", "SELECT"),
                (101, "t", "y", "GetObject"),
                (102, "t", "z", "Query"),
            ],
            expect: vec!["open t 100-102 x,y,z", "closed t 100-102 x,y,z eoi"],
        },
        Case {
            rule: "tables are independent: three novel principals over three tables are nothing",
            events: vec![
                (100, "t", "x", ""),
                (101, "hr.pay", "y", ""),
                (102, "scratch.x", "z", ""),
            ],
            expect: vec![],
        },
        Case {
            rule: "override: hr.* needs five principals and allows svc-payroll@*",
            events: vec![
                (100, "hr.pay", "x", ""),
                (101, "hr.pay", "y", ""),
                (102, "hr.pay", "svc-payroll@a", ""),
                (103, "hr.pay", "svc-payroll@b", ""),
                (104, "hr.pay", "z", ""),
                (105, "hr.pay", "w", ""),
            ],
            expect: vec![],
        },
        Case {
            rule: "override: hr.* opens at five",
            events: vec![
                (100, "hr.pay", "x", ""),
                (101, "hr.pay", "y", ""),
                (102, "hr.pay", "z", ""),
                (103, "hr.pay", "w", ""),
                (104, "hr.pay", "v", ""),
            ],
            expect: vec![
                "open hr.pay 100-104 x,y,z,w,v",
                "closed hr.pay 100-104 x,y,z,w,v eoi",
            ],
        },
        Case {
            rule: "public: an anonymous read opens a window at once, even while the table learns",
            events: vec![
                (30, "t", "anonymous@203.0.113.7", ""),
                (31, "t", "anonymous@198.51.100.2", ""),
            ],
            expect: vec![
                "open t 30-30 anonymous@203.0.113.7",
                "closed t 30-31 anonymous@203.0.113.7,anonymous@198.51.100.2 quiet",
            ],
        },
        Case {
            rule: "public: after learning, whatever the baseline; novel readers join its window",
            events: vec![
                (100, "t", "anonymous", ""),
                (101, "t", "x", ""),
                (102, "t", "anonymous", ""),
            ],
            expect: vec![
                "open t 100-100 anonymous",
                "closed t 100-102 anonymous,x eoi",
            ],
        },
        Case {
            rule: "override: ignored tables never alert",
            events: vec![
                (100, "scratch.x", "x", ""),
                (101, "scratch.x", "y", ""),
                (102, "scratch.x", "z", ""),
            ],
            expect: vec![],
        },
    ];
    for case in cases {
        let mut events = learning();
        events.extend(case.events);
        events.sort_by_key(|e| e.0);
        let mut settings = settings();
        settings.policies.rules = vec![
            rule("hr.*", |p| {
                p.thresholds.min_principals = 5;
                p.allow = compile_glob_set(&["svc-payroll@*".into()]).unwrap();
            }),
            rule("scratch.*", |p| p.ignore = true),
        ];
        assert_eq!(
            summary(&run_with(settings, &events)),
            case.expect,
            "{}",
            case.rule
        );
    }
}

#[test]
fn alert_fields_describe_the_window() {
    let alerts = run_with(
        settings(),
        &[
            learning(),
            vec![
                (100, "t", "x", ""),
                (101, "t", "y", ""),
                (101, "t", "x", ""),
                (102, "t", "z", ""),
                (130, "t", "alice", ""),
            ],
        ]
        .concat(),
    );
    assert_eq!(alerts.len(), 2);
    let (open, closed) = (&alerts[0], &alerts[1]);
    assert_eq!(open.id, closed.id);
    assert_eq!(open.as_of, m(102));
    assert_eq!(closed.as_of, m(107));
    assert_eq!(closed.reads, 4);
    assert_eq!(closed.novel_principals, 3);
    assert_eq!(closed.baseline_principals, 3);
    assert_eq!(closed.duration_s, 120.0);
    assert_eq!(closed.severity, Severity::High);
    let x = &closed.principals[0];
    assert_eq!(
        (x.principal.as_str(), x.first_read, x.last_read, x.reads),
        ("x", m(100), m(101), 2)
    );
}

#[test]
fn allow_patterns_on_the_default_policy() {
    let mut settings = settings();
    let default = Arc::make_mut(&mut settings.policies.default);
    default.allow = compile_glob_set(&["svc-*".into()]).unwrap();
    let events = [
        learning(),
        vec![
            (100, "t", "svc-a", ""),
            (101, "t", "svc-b", ""),
            (102, "t", "svc-c", ""),
        ],
    ]
    .concat();
    assert!(run_with(settings, &events).is_empty());
}

#[test]
fn updates_are_sent_when_novel_principals_double() {
    let mut settings = settings();
    settings.emit_updates = true;
    let mut events = learning();
    let names = ["p1", "p2", "p3", "p4", "p5", "p6", "p7"];
    for (i, name) in names.iter().enumerate() {
        events.push((100 + i as i64, "t", name, ""));
    }
    let statuses: Vec<(AlertStatus, usize)> = run_with(settings, &events)
        .iter()
        .map(|a| (a.status, a.novel_principals))
        .collect();
    assert_eq!(
        statuses,
        vec![
            (AlertStatus::Open, 3),
            (AlertStatus::Update, 6),
            (AlertStatus::Closed, 7)
        ]
    );
}

#[test]
fn late_events_are_counted_and_not_used() {
    let mut detector = Detector::new(settings());
    let mut alerts = Vec::new();
    let mut observe = |minute: i64, principal: &str| {
        let event = AccessEvent::new(m(minute), principal, "t", None);
        detector.observe(&event, &mut alerts)
    };
    assert_eq!(observe(0, "alice"), Observed::Read);
    assert_eq!(observe(10, "bob"), Observed::Read);
    assert_eq!(observe(9, "carol"), Observed::Read);
    assert_eq!(observe(8, "dave"), Observed::Late { behind: MIN });
    assert_eq!(detector.stats().late, 1);
    assert_eq!(detector.stats().reads, 3);
}

#[test]
fn out_of_order_within_lateness_gives_identical_alerts() {
    let mut events = learning();
    events.extend([
        (100, "t", "x", ""),
        (100, "t", "y", ""),
        (100, "t", "z", ""),
        (100, "t", "w", ""),
        (100, "hr.pay", "a", ""),
    ]);
    let sorted = run_with(settings(), &events);
    let mut shuffled = events.clone();
    let n = shuffled.len();
    shuffled[n - 5..].reverse();
    assert_eq!(run_with(settings(), &shuffled), sorted);
    assert_eq!(
        sorted[0].principals.len(),
        4,
        "all reads of the instant are in the open alert"
    );
}

#[test]
fn advance_closes_quiet_windows_without_events() {
    let mut detector = Detector::new(settings());
    let mut alerts = Vec::new();
    let events = [
        learning(),
        vec![
            (100, "t", "x", ""),
            (101, "t", "y", ""),
            (102, "t", "z", ""),
        ],
    ]
    .concat();
    feed(&mut detector, &events, &mut alerts);
    assert!(alerts.is_empty(), "the open waits for the watermark");
    detector.advance(m(103), &mut alerts);
    assert_eq!(summary(&alerts), vec!["open t 100-102 x,y,z"]);
    detector.advance(m(107), &mut alerts);
    assert_eq!(summary(&alerts)[1], "closed t 100-102 x,y,z quiet");
    assert_eq!(detector.open_windows(), 0);
}

#[test]
fn pruning_keeps_state_bounded_and_results_equal() {
    // 40 days of a daily reader on one table and 1000 one-off readers during learning.
    let mut detector = Detector::new(settings());
    let mut alerts = Vec::new();
    let names: Vec<String> = (0..1000).map(|i| format!("p{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        let event = AccessEvent::new(m(i as i64 / 20), name, "t", None);
        detector.observe(&event, &mut alerts);
    }
    for day in 1..40 {
        let event = AccessEvent::new(m(day * 24 * 60), "alice", "t", None);
        detector.observe(&event, &mut alerts);
    }
    assert!(
        detector.tables[0].baseline.len() <= 2,
        "{}",
        detector.tables[0].baseline.len()
    );
    assert!(alerts.is_empty());
}

#[test]
fn closes_come_out_in_deadline_order_however_far_time_jumps() {
    // t's first timer (107) goes stale when w extends it to 111; hr.pay is due at 110. One jump
    // of the watermark past both must still close hr.pay first.
    let mut detector = Detector::new(settings());
    let mut alerts = Vec::new();
    let events = [
        learning(),
        vec![
            (100, "t", "x", ""),
            (101, "t", "y", ""),
            (102, "t", "z", ""),
            (103, "hr.pay", "a", ""),
            (104, "hr.pay", "b", ""),
            (105, "hr.pay", "c", ""),
            (106, "t", "w", ""),
        ],
    ]
    .concat();
    feed(&mut detector, &events, &mut alerts);
    detector.advance(m(200), &mut alerts);
    assert_eq!(
        summary(&alerts),
        vec![
            "open t 100-102 x,y,z",
            "open hr.pay 103-105 a,b,c",
            "closed hr.pay 103-105 a,b,c quiet",
            "closed t 100-106 x,y,z,w quiet",
        ]
    );
}

mod decide;
mod root_cause;

#[test]
fn a_public_read_is_critical_and_an_allow_pattern_makes_a_table_public_by_design() {
    let mut settings = settings();
    settings.policies.rules = vec![rule("website/*", |p| {
        p.allow = compile_glob_set(&["anonymous@*".into()]).unwrap();
    })];
    let mut events = learning();
    events.extend([
        (100, "t", "anonymous@203.0.113.7", ""),
        (100, "website/index", "anonymous@203.0.113.7", ""),
        (101, "website/index", "anonymous@198.51.100.2", ""),
    ]);
    let alerts = run_with(settings, &events);
    assert_eq!(
        summary(&alerts),
        [
            "open t 100-100 anonymous@203.0.113.7",
            "closed t 100-100 anonymous@203.0.113.7 eoi"
        ]
    );
    assert!(alerts.iter().all(|a| a.severity == Severity::Critical));
}
