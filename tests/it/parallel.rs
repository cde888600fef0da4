//! JSON lines parsed on many threads: the alerts, the reports of bad lines (in input order) and
//! where `--strict` stops are the same for any `--threads`, over inputs of many blocks with bad
//! lines, a gzip input cut short and windows that open and close; and the same for every vendor
//! format (records parsed on the parsing threads, or by the reading thread for pgaudit).

use crate::{TestEnv, repo};

const LINES_PER_INPUT: usize = 30_000;
const BASE: i64 = 1_772_582_400; // 2026-03-04T00:00:00Z

/// An input of regular readers on 7 tables, every 1 000th line bad, and in the second half of
/// each input a burst of novel principals on one table (a window). Event times go on from
/// input to input (`part`), 10 s apart, a little out of order.
fn input(part: usize) -> String {
    let mut text = String::new();
    for i in 0..LINES_PER_INPUT {
        let n = part * LINES_PER_INPUT + i;
        if i % 1_000 == 999 {
            text.push_str(&format!("not json {n}\n"));
            continue;
        }
        let ts = BASE + 10 * n as i64 - (n % 3) as i64;
        let table = format!("warehouse.t{}", n % 7);
        let principal = if i > LINES_PER_INPUT / 2 && i < LINES_PER_INPUT / 2 + 400 && n % 7 == 3 {
            format!("novel{}@corp", n % 50)
        } else {
            format!("user{}@corp", (n * 7919) % 13)
        };
        let action = if n.is_multiple_of(11) {
            "INSERT"
        } else {
            "SELECT"
        };
        text.push_str(&format!(
            r#"{{"ts":"{}","principal":"{principal}","table":"{table}","action":"{action}"}}"#,
            chrono::DateTime::from_timestamp(ts, 0)
                .unwrap()
                .to_rfc3339()
        ));
        text.push('\n');
    }
    text
}

fn reports(stderr: &str) -> Vec<&str> {
    // Every line, the summary without its elapsed time and rate.
    stderr
        .lines()
        .map(|l| match l.find(" alerts in ") {
            Some(end) => &l[..end],
            None => l,
        })
        .collect()
}

#[test]
fn any_thread_count_gives_the_same_alerts_reports_and_strict_stop() {
    let env = TestEnv::new();
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;
    let first = env.write("a.jsonl", input(0));
    let mut gzip = GzEncoder::new(Vec::new(), Compression::default());
    gzip.write_all(input(1).as_bytes()).unwrap();
    let gzip = gzip.finish().unwrap();
    // Cut short: read up to where the bytes stop, then reported as unreadable.
    let cut = env.write("b.jsonl.gz", &gzip[..gzip.len() * 3 / 4]);
    let third = env.write("c.jsonl", input(2));
    let (first, cut, third) = (
        first.to_str().unwrap(),
        cut.to_str().unwrap(),
        third.to_str().unwrap(),
    );
    let inputs = [first, cut, third];
    let run = |threads: &str, strict: bool| {
        let mut args = vec![
            "replay",
            "--learn",
            "1d",
            "--max-reports",
            "1000",
            "--threads",
            threads,
        ];
        if strict {
            args.push("--strict");
        }
        args.extend(inputs);
        env.run(&args)
    };

    let one = run("1", false);
    // An input that could not be read to its end: the rest is replayed, and the exit code says so.
    assert_eq!(one.code, 1, "{}", one.stderr);
    let statuses: Vec<String> = one
        .alerts()
        .iter()
        .map(|a| a["status"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        statuses,
        ["open", "closed", "open", "closed", "open", "closed"],
        "{}",
        one.stdout
    );
    let skipped = reports(&one.stderr)
        .iter()
        .filter(|l| l.contains(": skipped: "))
        .count();
    // All of the first and third inputs' bad lines, and those of the part of the second read.
    assert!(
        (2 * LINES_PER_INPUT / 1_000..3 * LINES_PER_INPUT / 1_000).contains(&skipped),
        "{}",
        one.stderr
    );
    assert!(
        one.stderr.contains(&format!("{cut}: read error")),
        "{}",
        one.stderr
    );
    for threads in ["2", "3", "8"] {
        let many = run(threads, false);
        assert_eq!(many.code, 1, "--threads {threads}: {}", many.stderr);
        assert_eq!(many.stdout, one.stdout, "--threads {threads}");
        assert_eq!(
            reports(&many.stderr),
            reports(&one.stderr),
            "--threads {threads}"
        );
    }

    let strict_one = run("1", true);
    assert_eq!(strict_one.code, 1, "{}", strict_one.stderr);
    assert!(
        strict_one.stderr.contains(&format!("{first}:1000:1:")),
        "{}",
        strict_one.stderr
    );
    for threads in ["2", "8"] {
        let strict_many = run(threads, true);
        assert_eq!(
            (strict_many.code, &strict_many.stdout, &strict_many.stderr),
            (1, &strict_one.stdout, &strict_one.stderr),
            "--strict --threads {threads}"
        );
    }
}

#[test]
fn vendor_formats_give_the_same_events_and_reports_on_any_thread_count() {
    let env = TestEnv::new();
    for (format, folder, fixture) in [
        ("cloudtrail", "cloudtrail", "records.jsonl"),
        ("gcp-audit", "gcp-audit", "data_access.jsonl"),
        ("snowflake", "snowflake", "access_history.jsonl"),
        ("databricks", "databricks", "audit.jsonl"),
        ("pgaudit", "pgaudit", "postgresql.log"),
    ] {
        let read = |name: &str| {
            std::fs::read_to_string(repo(&format!("tests/data/formats/{folder}/{name}"))).unwrap()
        };
        // Good records and bad ones, over several blocks (times repeat: later copies are late).
        let once = format!(
            "{}\n{}\n",
            read(fixture).trim_end(),
            read("malformed.txt").trim_end()
        );
        let path = env.write(
            &format!("{folder}.log"),
            once.repeat(5_000 / once.lines().count() + 2),
        );
        let path = path.to_str().unwrap();
        for given in [format, "auto"] {
            let run = |threads: &str| {
                env.run(&[
                    "replay",
                    "--format",
                    given,
                    "--max-reports",
                    "100000",
                    "--threads",
                    threads,
                    "--learn",
                    "1m",
                    path,
                ])
            };
            let one = run("1");
            assert_eq!(one.code, 0, "{folder} as {given}: {}", one.stderr);
            assert!(
                one.stderr.contains(" skipped: "),
                "{folder}: {}",
                one.stderr
            );
            for threads in ["2", "3"] {
                let many = run(threads);
                assert_eq!(
                    (many.code, &many.stdout, reports(&many.stderr)),
                    (one.code, &one.stdout, reports(&one.stderr)),
                    "{folder} as {given}, --threads {threads}"
                );
            }
        }
    }
}
