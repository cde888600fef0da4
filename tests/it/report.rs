//! `exposure report`, rendered in a real headless browser (Debian's Chromium, installed by
//! scripts/install-test-deps.sh): the sample incident's page draws its timeline with the
//! window's bounds, lists every principal and the baseline the detector had when the window
//! opened, and its screenshot shows the unusual reads in red. The same report comes from the
//! logs and from their Parquet archive; Markdown says the same for a ticket.

use super::{TestEnv, repo};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// Chromium, headless, as the machine's probe starts it (no network of its own).
fn chromium(env: &TestEnv, args: &[&str]) -> std::process::Output {
    let profile = tempfile::tempdir_in(env.dir.path()).unwrap();
    Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .output()
        .expect("chromium (scripts/install-test-deps.sh installs Debian's package)")
}

fn url(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// The page as the browser built it (after parsing and running its script).
fn rendered_dom(env: &TestEnv, page: &Path) -> String {
    let out = chromium(env, &["--dump-dom", &url(page)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Writes the alerts of the sample incident (with its permission changes) and its report.
fn sample_report(
    env: &TestEnv,
    inputs: &[&str],
    out: &str,
    extra: &[&str],
) -> (Vec<Value>, String) {
    let sample = repo("sample-logs/incident.jsonl");
    let grants = repo("sample-logs/permissions.jsonl");
    let logs = [sample.to_str().unwrap(), grants.to_str().unwrap()];
    let replay = env.run(&[&["replay", "--out", "alerts.jsonl"][..], &logs].concat());
    assert_eq!(replay.code, 0, "{}", replay.stderr);
    let alerts: Vec<Value> = std::fs::read_to_string(env.path("alerts.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let inputs: Vec<&str> = if inputs.is_empty() {
        logs.to_vec()
    } else {
        inputs.to_vec()
    };
    let args = [
        &["report", "--alerts", "alerts.jsonl", "--out", out][..],
        extra,
        &inputs,
    ]
    .concat();
    let report = env.run(&args);
    assert_eq!(report.code, 0, "{}", report.stderr);
    assert!(
        report.stderr.contains("1 window reported in"),
        "{}",
        report.stderr
    );
    (alerts, out.to_string())
}

#[test]
fn the_sample_incident_report_renders_in_a_headless_browser() {
    let env = TestEnv::new();
    let (alerts, out) = sample_report(&env, &[], "report", &[]);
    let open = alerts.iter().find(|a| a["status"] == "open").unwrap();
    let closed = alerts
        .iter()
        .rev()
        .find(|a| a["status"] == "closed")
        .unwrap();
    let id = open["id"].as_str().unwrap();
    let page = env.path(&format!("{out}/{id}.html"));
    let dom = rendered_dom(&env, &page);

    // The timeline: an SVG carrying the window's bounds, the cause, the revert and the close.
    assert!(dom.contains("<svg id=\"timeline\""), "{dom}");
    for bound in ["window_start", "window_end"] {
        let at = closed[bound].as_str().unwrap();
        let attribute = format!("data-{}=\"{at}\"", bound.replace('_', "-"));
        assert!(dom.contains(&attribute), "{attribute} in {dom}");
    }
    assert!(dom.contains(">SELECT PUBLIC</text>"), "the cause is marked");
    assert!(dom.contains(">reverted</text>") && dom.contains(">closed</text>"));

    // Every principal, in the principals table, with its reads.
    let table = dom
        .split("id=\"principals\"")
        .nth(1)
        .unwrap()
        .split("</table>")
        .next()
        .unwrap();
    let principals = closed["principals"].as_array().unwrap();
    assert_eq!(principals.len(), 40);
    assert_eq!(table.matches("<tr>").count(), principals.len() + 1);
    for p in principals {
        let row = format!("<td>{}</td>", p["principal"].as_str().unwrap());
        assert!(table.contains(&row), "{row}");
    }
    // The baseline the detector had when the window opened: as many as the open alert says.
    let baseline = dom
        .split("id=\"baseline\"")
        .nth(1)
        .unwrap()
        .split("</table>")
        .next()
        .unwrap();
    let normal = open["baseline_principals"].as_u64().unwrap() as usize;
    assert_eq!(baseline.matches("<tr>").count(), normal + 1, "{baseline}");
    // The impact of the cause: everyone could read, the window's 40 did, nobody after the
    // revoke (`exposure impact`, tests/it/impact.rs).
    let impact = dom
        .split("id=\"impact\"")
        .nth(1)
        .unwrap()
        .split("</table>")
        .next()
        .unwrap();
    for said in [
        "<b>accessed</b>",
        "(everyone)",
        "<td>40 principals, ",
        "<td>after the revoke</td><td>nobody</td>",
    ] {
        assert!(impact.contains(said), "{said} in {impact}");
    }
    // The alert history: open, then closed.
    let history = dom
        .split("id=\"history\"")
        .nth(1)
        .unwrap()
        .split("</table>")
        .next()
        .unwrap();
    let window_alerts = alerts.iter().filter(|a| a["id"] == open["id"]).count();
    assert_eq!(history.matches("<tr>").count(), window_alerts + 1);

    // The index links to the page.
    let index = rendered_dom(&env, &env.path(&format!("{out}/index.html")));
    assert!(index.contains(&format!("href=\"{id}.html\"")), "{index}");

    // The screenshot is a page, not a blank: mostly white, with the red of the unusual reads
    // and the grey of the others drawn.
    let shot = env.path("shot.png");
    let out = chromium(
        &env,
        &[
            "--window-size=1200,1100",
            &format!("--screenshot={}", shot.display()),
            &url(&page),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decoder = png::Decoder::new(std::fs::File::open(&shot).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut pixels).unwrap();
    assert_eq!((frame.width, frame.height), (1200, 1100));
    let channels = frame.color_type.samples();
    let (mut white, mut red, mut grey) = (0usize, 0usize, 0usize);
    for px in pixels[..frame.buffer_size()].chunks(channels) {
        match (px[0], px[1], px[2]) {
            (r, g, b) if r > 245 && g > 245 && b > 245 => white += 1,
            (0xc0..=0xcc, 0x24..=0x2e, 0x24..=0x2e) => red += 1,
            (0x8c..=0x94, 0xa0..=0xa8, 0xaa..=0xb2) => grey += 1,
            _ => {}
        }
    }
    let all = (frame.width * frame.height) as usize;
    assert!(white < all * 97 / 100, "not blank: {white} of {all} white");
    assert!(red > 2_000, "the unusual reads are drawn: {red} red pixels");
    assert!(grey > 100, "the other reads are drawn: {grey} grey pixels");
}

#[test]
fn the_report_from_the_parquet_archive_is_the_report_from_the_logs() {
    let env = TestEnv::new();
    let sample = repo("sample-logs/incident.jsonl");
    let grants = repo("sample-logs/permissions.jsonl");
    let archived = env.run(&[
        "archive",
        sample.to_str().unwrap(),
        grants.to_str().unwrap(),
        "--out",
        "archive",
    ]);
    assert_eq!(archived.code, 0, "{}", archived.stderr);
    sample_report(&env, &[], "from-logs", &[]);
    sample_report(&env, &["archive"], "from-archive", &[]);
    for entry in std::fs::read_dir(env.path("from-logs")).unwrap() {
        let name = entry.unwrap().file_name();
        let logs = std::fs::read_to_string(env.path("from-logs").join(&name)).unwrap();
        let archive = std::fs::read_to_string(env.path("from-archive").join(&name)).unwrap();
        assert_eq!(logs, archive, "{name:?}");
    }
}

#[test]
fn markdown_for_a_ticket_says_the_window_the_cause_and_every_principal() {
    let env = TestEnv::new();
    let (alerts, out) = sample_report(&env, &[], "ticket", &["--output", "markdown"]);
    let closed = alerts
        .iter()
        .rev()
        .find(|a| a["status"] == "closed")
        .unwrap();
    let id = closed["id"].as_str().unwrap();
    let text = std::fs::read_to_string(env.path(&format!("{out}/{id}.md"))).unwrap();
    let summary = std::fs::read_to_string(env.path(&format!("{out}/report.md"))).unwrap();
    assert!(summary.contains(&text));
    assert!(
        text.starts_with("### Exposure of `warehouse.users.pii` — Critical"),
        "{text}"
    );
    assert!(text.contains(&format!(
        "- **Window:** {} → {}",
        closed["window_start"].as_str().unwrap(),
        closed["window_end"].as_str().unwrap()
    )));
    assert!(text.contains(
        "- **Cause:** `dev.platform@corp.example` granted `SELECT` on `warehouse.users` to `PUBLIC`"
    ));
    assert!(text.contains("- **Reverted:** 2026-03-16T16:04:00.000Z"));
    assert!(
        text.contains("- **Impact:** accessed: could read 103 (everyone), did read 40, after the revoke nobody"),
        "{text}"
    );
    for p in closed["principals"].as_array().unwrap() {
        assert!(text.contains(&format!("| `{}` |", p["principal"].as_str().unwrap())));
    }
}

#[test]
fn alerts_that_are_not_alerts_are_named_by_line() {
    let env = TestEnv::new();
    env.write("alerts.jsonl", "{\"schema\":\"exposure.alert/v1\"}\n");
    let sample = repo("sample-logs/incident.jsonl");
    let run = env.run(&[
        "report",
        "--alerts",
        "alerts.jsonl",
        "--out",
        "r",
        sample.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("alerts.jsonl:1:"), "{}", run.stderr);
    assert!(
        run.stderr.contains("not an exposure.alert/v1 alert"),
        "{}",
        run.stderr
    );
}

#[test]
fn every_window_of_a_generated_day_shows_the_baseline_its_open_alert_counted() {
    let env = TestEnv::new();
    let mut log = Vec::new();
    crate::golden::synth::write_jsonl(crate::golden::synth::Shape::new(100_000), &mut log).unwrap();
    env.write("synth.jsonl", &log);
    let replay = env.run(&["replay", "--out", "alerts.jsonl", "synth.jsonl"]);
    assert_eq!(replay.code, 0, "{}", replay.stderr);
    let report = env.run(&[
        "report",
        "--alerts",
        "alerts.jsonl",
        "--out",
        "r",
        "synth.jsonl",
    ]);
    assert_eq!(report.code, 0, "{}", report.stderr);
    let opens: Vec<Value> = std::fs::read_to_string(env.path("alerts.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|a| a["status"] == "open")
        .collect();
    assert!(opens.len() > 50, "{} windows", opens.len());
    for open in &opens {
        let id = open["id"].as_str().unwrap();
        let page = std::fs::read_to_string(env.path(&format!("r/{id}.html"))).unwrap();
        let baseline = page.split("id=\"baseline\"").nth(1).unwrap();
        let baseline = baseline.split("</table>").next().unwrap();
        let rows = baseline.matches("<tr>").count() - 1;
        assert_eq!(
            rows as u64,
            open["baseline_principals"].as_u64().unwrap(),
            "{id}"
        );
    }
}

/// A name that holds a bidi override or a pipe: the page shows the override as a visible
/// mark (it does not reorder the heading), and Markdown escapes the pipe instead of dropping
/// it. Checked in the browser's own parse of the page.
#[test]
fn names_with_bidi_overrides_and_pipes_are_shown_as_they_are() {
    let env = TestEnv::new();
    let sample = std::fs::read_to_string(repo("sample-logs/incident.jsonl")).unwrap();
    let odd = "quinn|\u{202e}txt.exe";
    let logs = env.write("logs.jsonl", sample.replace("quinn.khan@corp.example", odd));
    let logs = logs.to_str().unwrap();
    let replayed = env.run(&["replay", "--out", "alerts.jsonl", logs]);
    assert_eq!(replayed.code, 0, "{}", replayed.stderr);
    let alerts = std::fs::read_to_string(env.path("alerts.jsonl")).unwrap();
    assert!(alerts.contains(odd), "the alert keeps the name exactly");
    for (format, out) in [("html", "html"), ("markdown", "md")] {
        let run = env.run(&[
            "report",
            "--alerts",
            "alerts.jsonl",
            "--output",
            format,
            "--out",
            out,
            logs,
        ]);
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let md = std::fs::read_to_string(env.path("md/report.md")).unwrap();
    assert!(md.contains("| `quinn\\|<U+202E>txt.exe` |"), "{md}");
    assert!(!md.contains('\u{202e}'));
    let page = std::fs::read_dir(env.path("html"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap() != "index.html")
        .unwrap();
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains('\u{202e}'), "no raw override in the page");
    let dom = rendered_dom(&env, &page);
    assert!(
        dom.contains("quinn|&lt;U+202E&gt;txt.exe"),
        "the browser shows the mark"
    );
}

#[test]
fn a_report_or_explanation_with_other_settings_than_the_run_is_refused_never_contradicting() {
    // Alerts of a run made with `--learn 20s`: a report with the defaults (learn 7d) would say
    // "0 baseline readers" beside an alert that counts some. It is refused, saying what to give.
    let env = TestEnv::new();
    let incident = repo("sample-logs/incident.jsonl");
    let permissions = repo("sample-logs/permissions.jsonl");
    let logs = [incident.to_str().unwrap(), permissions.to_str().unwrap()];
    let run = env.run(&[&["replay", "--learn", "20s", "--out", "a.jsonl"][..], &logs].concat());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let refused = env.run(
        &[
            &["report", "--alerts", "a.jsonl", "--out", "rep"][..],
            &logs,
        ]
        .concat(),
    );
    assert_ne!(refused.code, 0, "{}", refused.stderr);
    for said in [
        "these settings and logs do not make the alerts' windows",
        "not a window with these settings",
        "--learn",
        "these settings: learn 7d, forget_after 30d, span 1h, close_after 30m, min_principals 3",
    ] {
        assert!(
            refused.stderr.contains(said),
            "{said:?}: {}",
            refused.stderr
        );
    }
    assert!(!env.path("rep/index.html").exists(), "no page is written");
    // With the run's settings: the pages, each baseline as its alert counts it.
    let same = env.run(
        &[
            &[
                "report", "--learn", "20s", "--alerts", "a.jsonl", "--out", "rep",
            ][..],
            &logs,
        ]
        .concat(),
    );
    assert_eq!(same.code, 0, "{}", same.stderr);
    assert!(env.path("rep/index.html").exists());

    // Windows that both settings make, with other baselines: four readers learned on the
    // first day are forgotten after a day under `--forget-after 1d`, not under the default.
    let mut lines = String::new();
    for (i, who) in ["a", "b", "c", "d"].iter().enumerate() {
        lines.push_str(&format!(
            "{{\"ts\":\"2026-03-01T0{i}:00:00Z\",\"principal\":\"{who}\",\"table\":\"t\"}}\n"
        ));
    }
    for (i, who) in ["x", "y", "z"].iter().enumerate() {
        lines.push_str(&format!(
            "{{\"ts\":\"2026-03-03T10:0{i}:00Z\",\"principal\":\"{who}\",\"table\":\"t\"}}\n"
        ));
    }
    env.write("t.jsonl", lines);
    let run = env.run(&[
        "replay",
        "--learn",
        "1d",
        "--forget-after",
        "1d",
        "--out",
        "b.jsonl",
        "t.jsonl",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.is_empty()
            && std::fs::read_to_string(env.path("b.jsonl"))
                .unwrap()
                .contains("\"baseline_principals\":0")
    );
    let refused = env.run(&[
        "report", "--learn", "1d", "--alerts", "b.jsonl", "--out", "rep2", "t.jsonl",
    ]);
    assert_ne!(refused.code, 0, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("the alert counts 0 normal readers when it opened, these settings 4"),
        "{}",
        refused.stderr
    );

    // explain --alerts: the same check for the table explained.
    let args = [
        "explain",
        "--table",
        "warehouse.users.pii",
        "--at",
        "2026-03-04T09:00:00Z",
    ];
    let explained = env.run(&[&args[..], &["--alerts", "a.jsonl"], &logs].concat());
    assert_ne!(explained.code, 0, "{}", explained.stderr);
    assert!(
        explained.stderr.contains("warehouse.users.pii (opened"),
        "{}",
        explained.stderr
    );
    let explained =
        env.run(&[&args[..], &["--learn", "20s", "--alerts", "a.jsonl"], &logs].concat());
    assert_eq!(explained.code, 0, "{}", explained.stderr);
    assert!(
        explained.stdout.contains("learn 20s"),
        "{}",
        explained.stdout
    );
}
