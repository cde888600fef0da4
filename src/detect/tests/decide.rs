//! The one order of rules 1–3 ([`crate::detect::decide`]), asked of a snapshot as `exposure
//! explain` asks it, against what the detector does with each read.

use super::*;

/// `explain`'s question, asked of a snapshot, agrees with what the detector then does with the
/// read, for every read of a long pseudo-random history (learning, forgetting, graduating,
/// allow patterns, an approval that runs out, windows opening and closing, anonymous reads).
#[test]
fn the_rule_asked_of_a_snapshot_is_the_rule_the_detector_applies() {
    let mut settings = settings();
    settings.lateness = Span(0);
    settings.policies.rules.push(rule("hr.*", |p| {
        p.thresholds.forget_after = Span(180 * MIN);
        p.allow = compile_glob_set(&["svc-*".to_string()]).unwrap();
        p.approved.push(Arc::new(crate::detect::policy::Approval {
            table_pattern: "hr.*".into(),
            principal_pattern: "p3".into(),
            table: compile_glob("hr.*").unwrap().compile_matcher(),
            principal: compile_glob("p3").unwrap().compile_matcher(),
            until: Some(m(2000)),
            by: "analyst".into(),
            reason: "on call".into(),
        }));
    }));
    let tables = ["hr.pay", "t", "hr.bonus"];
    let principals = [
        "p0",
        "p1",
        "p2",
        "p3",
        "p4",
        "p5",
        "p6",
        "p7",
        "svc-etl",
        "p9",
        "anonymous@198.51.100.7",
        "anonymous",
    ];
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut detector = Detector::new(settings.clone());
    let mut alerts = Vec::new();
    let mut minute = 0;
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..4000 {
        let gap = [400, 12, 3, 3][next(4) as usize];
        minute += 1 + next(gap) as i64;
        let of = match next(8) {
            0 => 12,
            1 | 2 => 10,
            _ => 4,
        };
        let principal = principals[next(of) as usize];
        let table = tables[next(3) as usize];
        let at = m(minute);
        // Time moves to the read (windows close, principals graduate and are forgotten), then
        // the detector is asked, as `explain` asks it of a replay up to then.
        detector.observe_classified(at, None, &mut alerts);
        let before = detector.snapshot();
        let find = |snapshot: &DetectorSnapshot| {
            snapshot.tables.iter().find(|s| s.table == table).cloned()
        };
        let policy = settings.policies.resolve(table);
        let decided = snapshot::decide_read(find(&before).as_ref(), &policy, principal, at);
        // The read, applied (time moves on by a microsecond, no further).
        detector.observe(&AccessEvent::new(at, principal, table, None), &mut alerts);
        detector.observe_classified(at + 1, None, &mut alerts);
        let s = find(&detector.snapshot()).expect("read");
        let in_baseline = s
            .baseline
            .iter()
            .any(|(p, last)| p == principal && *last == at);
        let in_window = s.window.as_ref().is_some_and(|w| {
            w.principals
                .iter()
                .any(|a| a.principal == principal && a.last_read == at)
        });
        let pending = s
            .pending
            .iter()
            .any(|p| p.principal == principal && p.last_read == at);
        let did = match decided {
            Decides::Learning | Decides::Baseline | Decides::Allowed => in_baseline,
            Decides::Approved => !in_baseline && !in_window && !pending,
            Decides::Window | Decides::Public => in_window,
            Decides::Novel => pending || in_window,
        };
        assert!(did, "{decided:?} for {principal} on {table} at {at}: {s:?}");
        seen.insert(format!("{decided:?}"));
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        [
            "Allowed", "Approved", "Baseline", "Learning", "Novel", "Public", "Window"
        ]
    );
}
