//! The root-cause rules of docs/detection.md ("Root cause"), scenario by scenario: the incident
//! (a grant to everyone, forty new readers, a revoke), a revoke before and after the close, a
//! window with no cause, a grant to one new hire, a group role, and arrival order.

use super::*;
use crate::event::{ChangeAction, MEMBER, PermissionChange};

fn change(
    minute: i64,
    action: ChangeAction,
    object: &str,
    grantee: &str,
    privilege: &str,
) -> PermissionChange {
    PermissionChange {
        ts: m(minute),
        action,
        object: object.into(),
        grantee: grantee.into(),
        privilege: privilege.into(),
        actor: "dba".into(),
        statement: Some(format!(
            "{} {privilege} ON {object} TO {grantee}",
            action.as_str()
        )),
    }
}

fn grant(minute: i64, object: &str, grantee: &str) -> PermissionChange {
    change(minute, ChangeAction::Grant, object, grantee, "SELECT")
}

fn revoke(minute: i64, object: &str, grantee: &str) -> PermissionChange {
    change(minute, ChangeAction::Revoke, object, grantee, "SELECT")
}

/// Reads and changes, in the order given.
enum Step {
    Read(i64, &'static str, &'static str),
    Change(PermissionChange),
}

fn run_steps(settings: DetectorSettings, steps: &[Step]) -> Vec<Alert> {
    let mut detector = Detector::new(settings);
    let mut alerts = Vec::new();
    feed(&mut detector, &learning(), &mut alerts);
    take_steps(&mut detector, steps, &mut alerts);
    detector.finish(&mut alerts);
    alerts
}

/// Observes `steps` in the order given.
fn take_steps<'a>(
    detector: &mut Detector,
    steps: impl IntoIterator<Item = &'a Step>,
    alerts: &mut Vec<Alert>,
) {
    for step in steps {
        match step {
            Step::Read(minute, table, principal) => {
                let event = AccessEvent::new(m(*minute), principal, table, None);
                detector.observe(&event, alerts);
            }
            Step::Change(change) => {
                detector.observe_change(change, alerts);
            }
        }
    }
}

/// "status table cause-object cause-grantee from-until" (`-` without a cause, nothing after
/// the dash while the exposure stands).
fn causes(alerts: &[Alert]) -> Vec<String> {
    let minute = |ts: Option<Ts>| ts.map_or("-".to_string(), |t| ((t - BASE) / MIN).to_string());
    alerts
        .iter()
        .map(|a| {
            let cause = a.cause.as_ref().or(a.change.as_ref());
            let cause = cause.map_or("no cause".into(), |c| format!("{} {}", c.object, c.grantee));
            let span = match a.exposed_from {
                None => "-".to_string(),
                Some(from) => format!(
                    "{}-{}",
                    minute(Some(from)),
                    a.exposed_until.map_or(String::new(), |t| minute(Some(t)))
                ),
            };
            format!("{:?} {} {} {}", a.status, a.table, cause, span).to_lowercase()
        })
        .collect()
}

fn new_readers(from: i64, table: &'static str, names: &[&'static str]) -> Vec<Step> {
    names
        .iter()
        .enumerate()
        .map(|(i, p)| Step::Read(from + i as i64, table, p))
        .collect()
}

#[test]
fn the_incident_grant_readers_revoke_after_the_close() {
    let mut steps = vec![Step::Change(grant(100, "hr.pay", "PUBLIC"))];
    steps.extend(new_readers(101, "hr.pay", &["x", "y", "z", "w"]));
    steps.push(Step::Change(revoke(130, "hr.pay", "PUBLIC")));
    steps.push(Step::Read(200, "t", "alice"));
    let alerts = run_steps(settings(), &steps);
    assert_eq!(
        causes(&alerts),
        [
            "grant hr.pay hr.pay public -",
            "open hr.pay hr.pay public 100-",
            "closed hr.pay hr.pay public 100-",
            "update hr.pay hr.pay public 100-130",
        ]
    );
    let grant_alert = &alerts[0];
    assert_eq!(grant_alert.severity, Severity::Critical);
    assert_eq!(grant_alert.as_of, m(100));
    let json = grant_alert.to_json();
    assert!(!json.contains("window_start"), "{json}");
    assert!(json.contains(r#""change":{"ts":"2026-03-18T01:40:00.000Z","actor":"dba","object":"hr.pay","grantee":"PUBLIC","privilege":"SELECT","statement":"GRANT SELECT ON hr.pay TO PUBLIC"}"#), "{json}");
    let update = &alerts[3];
    assert_eq!(
        (update.as_of, update.closed_by),
        (m(130), Some(ClosedBy::Quiet))
    );
    assert_eq!(update.principals, alerts[2].principals);
    assert_ne!(update.delivery_key(), alerts[2].delivery_key());
    let open = alerts[1].to_json();
    assert!(
        open.ends_with(r#""exposed_from":"2026-03-18T01:40:00.000Z"}"#),
        "{open}"
    );
}

#[test]
fn a_revoke_before_the_close_is_in_the_closed_alert() {
    let mut steps = vec![Step::Change(grant(100, "hr.pay", "PUBLIC"))];
    steps.extend(new_readers(101, "hr.pay", &["x", "y", "z"]));
    steps.push(Step::Change(revoke(105, "hr.pay", "PUBLIC")));
    steps.push(Step::Read(200, "t", "alice"));
    assert_eq!(
        causes(&run_steps(settings(), &steps))[1..],
        [
            "open hr.pay hr.pay public 100-",
            "closed hr.pay hr.pay public 100-105"
        ]
    );
}

#[test]
fn no_cause_without_a_change_and_no_alert_for_one_new_hire() {
    let mut steps = new_readers(101, "hr.pay", &["x", "y", "z"]);
    // One new hire is granted read and reads: neither a grant alert nor a window.
    steps.push(Step::Change(grant(150, "t", "newhire")));
    steps.push(Step::Read(151, "t", "newhire"));
    steps.push(Step::Read(300, "t", "alice"));
    let alerts = run_steps(settings(), &steps);
    assert_eq!(
        causes(&alerts),
        ["open hr.pay no cause -", "closed hr.pay no cause -"]
    );
    assert!(!alerts[0].to_json().contains("cause"));
}

#[test]
fn a_group_role_is_the_cause_once_its_members_read() {
    let member = |minute, who| change(minute, ChangeAction::Grant, "hr_readers", who, MEMBER);
    let mut steps = vec![
        Step::Change(grant(90, "hr", "hr_readers")),
        Step::Change(member(91, "x")),
        Step::Change(member(91, "y")),
        Step::Change(member(92, "z")),
        // A broader grant to someone who does not read, later: not the cause.
        Step::Change(grant(95, "hr.pay", "auditor")),
    ];
    steps.extend(new_readers(101, "hr.pay", &["x", "y", "z"]));
    steps.push(Step::Read(200, "t", "alice"));
    let alerts = run_steps(settings(), &steps);
    assert_eq!(
        causes(&alerts),
        [
            "open hr.pay hr hr_readers 90-",
            "closed hr.pay hr hr_readers 90-"
        ],
        "no grant alert: hr_readers is not a broad grantee"
    );
    // Configured as a large group, the grant alerts at once.
    let mut broad = settings();
    broad.permissions.broad_grantees = vec!["hr_readers".into()];
    let alerts = run_steps(broad, &steps);
    assert_eq!(causes(&alerts)[0], "grant hr hr hr_readers -");
    assert_eq!(alerts[0].severity, Severity::High);
    assert_eq!(alerts[0].tables, ["hr.pay"]);
}

#[test]
fn arrival_order_and_chunks_never_change_the_cause() {
    let mut steps = vec![Step::Change(grant(100, "hr.pay", "PUBLIC"))];
    steps.extend(new_readers(100, "hr.pay", &["x", "y", "z", "w"]));
    steps.push(Step::Change(revoke(104, "hr.pay", "PUBLIC")));
    steps.push(Step::Change(grant(104, "hr", "PUBLIC")));
    steps.push(Step::Read(200, "t", "alice"));
    let sorted = run_steps(settings(), &steps);
    // The changes last of their minute, then first.
    let mut late = steps;
    late.swap(0, 1);
    late.swap(5, 4);
    assert_eq!(run_steps(settings(), &late), sorted);
    let mut chunked = settings();
    chunked.lateness = Span(3 * MIN);
    let mut detector = Detector::new(chunked.clone());
    detector.apply_in_chunks(2);
    let mut alerts = Vec::new();
    feed(&mut detector, &learning(), &mut alerts);
    take_steps(&mut detector, &late, &mut alerts);
    detector.finish(&mut alerts);
    assert_eq!(alerts, run_steps(chunked, &late));
    // The schema-wide grant kept the table readable after the table's grant was revoked:
    // the exposure had not ended then.
    assert_eq!(
        causes(&sorted),
        [
            "grant hr.pay hr.pay public -",
            "open hr.pay hr.pay public 100-",
            "grant hr hr public -",
            "closed hr.pay hr.pay public 100-",
        ]
    );
}

#[test]
fn grants_before_report_from_are_not_reported() {
    let mut steps = vec![Step::Change(grant(100, "hr.pay", "PUBLIC"))];
    steps.push(Step::Change(grant(150, "hr", "PUBLIC")));
    steps.push(Step::Read(200, "t", "alice"));
    let mut from = settings();
    from.report_from = Some(m(120));
    assert_eq!(causes(&run_steps(from, &steps)), ["grant hr hr public -"]);
}

#[test]
fn a_revoke_of_every_table_of_the_schema_ends_a_table_grant() {
    // GRANT … ON hr.pay TO PUBLIC, then REVOKE … ON ALL TABLES IN SCHEMA hr FROM PUBLIC
    // (recorded on `hr` and `hr.*`).
    let mut steps = vec![Step::Change(grant(100, "hr.pay", "PUBLIC"))];
    steps.extend(new_readers(101, "hr.pay", &["x", "y", "z"]));
    steps.push(Step::Change(revoke(130, "hr", "PUBLIC")));
    steps.push(Step::Change(revoke(130, "hr.*", "PUBLIC")));
    steps.push(Step::Read(200, "t", "alice"));
    assert_eq!(
        causes(&run_steps(settings(), &steps))[1..],
        [
            "open hr.pay hr.pay public 100-",
            "closed hr.pay hr.pay public 100-",
            "update hr.pay hr.pay public 100-130",
        ]
    );
}

#[test]
fn after_the_close_the_exposure_ends_when_the_last_covering_grant_goes() {
    // The table's grant is revoked at 120 while the schema's still stands: not the end yet.
    let mut steps = vec![
        Step::Change(grant(90, "hr", "PUBLIC")),
        Step::Change(grant(100, "hr.pay", "PUBLIC")),
    ];
    steps.extend(new_readers(101, "hr.pay", &["x", "y", "z"]));
    steps.push(Step::Change(revoke(120, "hr.pay", "PUBLIC")));
    steps.push(Step::Change(revoke(140, "hr", "PUBLIC")));
    steps.push(Step::Read(200, "t", "alice"));
    let alerts = run_steps(settings(), &steps);
    // One warning: the table's grant widened nothing the schema's had not.
    assert_eq!(
        causes(&alerts),
        [
            "grant hr hr public -",
            "open hr.pay hr.pay public 100-",
            "closed hr.pay hr.pay public 100-",
            "update hr.pay hr.pay public 100-140",
        ]
    );
    assert_eq!(alerts.last().unwrap().as_of, m(140));
}

/// The state of every table a grant opened, as `exposure impact` asks for it: `hr.pay` as
/// the schema grant at 150 was made (dave's read at 149 in it, eve's at 150 not), a table
/// first read after the grant not there, and the same whatever the arrival order and
/// whether reads are applied one by one or in chunks.
#[test]
fn grant_states_keep_each_table_as_the_grant_was_made() {
    let steps = [
        Step::Read(149, "hr.pay", "dave"),
        Step::Change(grant(150, "hr", "PUBLIC")),
        Step::Read(150, "hr.pay", "eve"),
        Step::Read(151, "hr.new", "frank"),
        Step::Read(152, "t", "gus"),
        Step::Read(400, "hr.pay", "hal"),
    ];
    let states = |chunk: Option<usize>, order: &[usize]| {
        let mut recording = settings();
        recording.record_grant_states = true;
        recording.lateness = Span(3 * MIN);
        let mut detector = Detector::new(recording);
        if let Some(chunk) = chunk {
            detector.apply_in_chunks(chunk);
        }
        let mut alerts = Vec::new();
        feed(&mut detector, &learning(), &mut alerts);
        take_steps(&mut detector, order.iter().map(|&i| &steps[i]), &mut alerts);
        detector.finish(&mut alerts);
        detector.take_grant_states().expect("recorded")
    };
    let in_order = states(None, &[0, 1, 2, 3, 4, 5]);
    assert_eq!(in_order.changes.len(), 1);
    let tables = in_order.at(m(150), "hr");
    let names: Vec<&str> = tables.iter().map(|t| t.table.as_str()).collect();
    assert_eq!(names, ["hr.pay"], "hr.new was first read after the grant");
    let readers: Vec<&str> = tables[0].baseline.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(readers, ["carol"], "the learned baseline: {tables:?}");
    let dave = tables[0].pending.iter().any(|p| p.principal == "dave");
    assert!(dave, "dave read before the grant: {tables:?}");
    assert!(
        !tables[0].pending.iter().any(|p| p.principal == "eve"),
        "eve read at the grant's instant: not before it"
    );
    assert!(in_order.at(m(151), "hr").is_empty(), "no grant then");
    for order in [[1, 0, 3, 2, 4, 5], [0, 2, 1, 4, 3, 5]] {
        assert_eq!(states(None, &order), in_order, "arrival order {order:?}");
        assert_eq!(states(Some(2), &order), in_order, "in chunks, {order:?}");
    }
}
