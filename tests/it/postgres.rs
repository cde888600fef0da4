//! Proof on a real system: a real PostgreSQL 15 with pgaudit (socket only, in a temp dir), a
//! sensitive table that a few roles read as their job, then the incident — a GRANT that lets
//! many roles read it, their reads, a REVOKE. `exposure watch --format pgaudit` tailing the live
//! server log must raise the `open` alert before the REVOKE; `exposure replay --format pgaudit`
//! over the server's stderr log and over its csvlog must each report one window with exactly
//! the roles that read after the GRANT, bounds within a second or two of their first and last
//! reads.

use super::TestEnv;
use super::util::{Watcher, eventually};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

const BIN: &str = "/usr/lib/postgresql/15/bin";

/// A PostgreSQL server in a temp dir, stopped on drop.
struct Postgres {
    dir: PathBuf,
    as_postgres: bool,
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl Postgres {
    /// The server binaries run as `postgres` when the tests run as root (initdb refuses root).
    fn command(&self, program: &str) -> Command {
        let path = format!("{BIN}/{program}");
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", &path]);
            c
        } else {
            Command::new(path)
        }
    }

    /// A server in `dir` whose log is written in `log_timezone`.
    fn start(dir: &Path, log_timezone: &str) -> Postgres {
        Postgres::start_with(dir, log_timezone, "")
    }

    /// The same, with `extra` settings of postgresql.conf (they override ours).
    fn start_with(dir: &Path, log_timezone: &str, extra: &str) -> Postgres {
        assert!(
            Path::new(BIN).join("postgres").exists()
                && Path::new("/usr/lib/postgresql/15/lib/pgaudit.so").exists(),
            "PostgreSQL 15 with pgaudit is not installed: this test needs the Debian packages \
             postgresql-15 and postgresql-15-pgaudit (scripts/install-test-deps.sh installs them; \
             .ci/run does)"
        );
        let pg = Postgres {
            dir: dir.to_path_buf(),
            as_postgres: is_root(),
        };
        std::fs::create_dir_all(dir.join("log")).unwrap();
        if pg.as_postgres {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres", dir.to_str().unwrap()])
                .status()
                .unwrap();
            assert!(status.success());
            // The temp dir's parents must be traversable by postgres.
            let _ = Command::new("chmod")
                .args(["755", dir.parent().unwrap().to_str().unwrap()])
                .status();
            let _ = Command::new("chmod")
                .args(["777", dir.to_str().unwrap()])
                .status();
        }
        let data = dir.join("data");
        let out = pg
            .command("initdb")
            .args([
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let conf = format!(
            "\nlisten_addresses = ''\nunix_socket_directories = '{dir}'\n\
             shared_preload_libraries = 'pgaudit'\nlogging_collector = on\n\
             log_destination = 'stderr,csvlog'\nlog_directory = '{dir}/log'\n\
             log_filename = 'postgresql.log'\nlog_file_mode = 0644\nlog_rotation_age = 0\n\
             log_rotation_size = 0\nlog_line_prefix = '%m [%p] %q%u@%d '\nlog_timezone = '{log_timezone}'\n\
             pgaudit.log = 'read'\npgaudit.log_relation = on\n{extra}",
            dir = dir.display()
        );
        let conf_path = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf_path).unwrap();
        text.push_str(&conf);
        std::fs::write(&conf_path, text).unwrap();
        let out = pg
            .command("pg_ctl")
            .args([
                "start",
                "-w",
                "-D",
                data.to_str().unwrap(),
                "-l",
                dir.join("startup.log").to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start: {}{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(dir.join("startup.log")).unwrap_or_default()
        );
        pg
    }

    /// Runs SQL as `role`; panics on failure unless `may_fail`.
    fn sql(&self, role: &str, sql: &str, may_fail: bool) {
        self.query(role, sql, may_fail);
    }

    /// Runs `sql` as `role` in a new session and gives what it printed.
    fn query(&self, role: &str, sql: &str, may_fail: bool) -> String {
        let out = Command::new(format!("{BIN}/psql"))
            .args([
                "-h",
                self.dir.to_str().unwrap(),
                "-U",
                role,
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-qAtc",
                sql,
            ])
            .output()
            .unwrap();
        assert!(
            may_fail || out.status.success(),
            "psql as {role}: {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args([
                "stop",
                "-m",
                "immediate",
                "-D",
                self.dir.join("data").to_str().unwrap(),
            ])
            .output();
    }
}

/// `exposure watch --format pgaudit` with `watch.toml`, following the server's `log` from its
/// beginning.
fn watch_pgaudit(env: &TestEnv, log: &Path) -> Watcher {
    Watcher::start(
        env,
        &[
            "--format",
            "pgaudit",
            "--from-beginning",
            log.to_str().unwrap(),
        ],
    )
}

fn now() -> SystemTime {
    SystemTime::now()
}

/// Waits until the watcher's event time (its watermark) is past the learning period (`learn`
/// in [`CONFIG`], 4 s) of reads that began at `began`: what is read from then on is judged.
fn wait_until_learned(watcher: &Watcher, began: SystemTime) {
    let learned = began + Duration::from_millis(4500);
    let learned = learned.duration_since(SystemTime::UNIX_EPOCH).unwrap();
    eventually(Duration::from_secs(20), || {
        let watermark = watcher.metric("watermark_seconds").unwrap_or(0.0);
        (watermark >= learned.as_secs_f64())
            .then_some(())
            .ok_or(format!("watermark {watermark}, learned at {learned:?}"))
    });
}

fn ts(v: &Value) -> SystemTime {
    let dt = chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    SystemTime::UNIX_EPOCH + Duration::from_micros(dt.timestamp_micros() as u64)
}

fn within(a: SystemTime, b: SystemTime, slack: Duration) -> bool {
    let d = a.duration_since(b).unwrap_or_else(|e| e.duration());
    d <= slack
}

/// The principals of an alert, sorted.
fn roles(alert: &Value) -> Vec<&str> {
    let mut roles: Vec<&str> = alert["principals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["principal"].as_str().unwrap())
        .collect();
    roles.sort();
    roles
}

/// `exposure replay --format pgaudit` with `watch.toml` over the server's stderr log and its
/// csvlog: each file with its alerts, having checked that the replay read every line.
fn replay_both_logs(env: &TestEnv, pg_dir: &Path) -> Vec<(PathBuf, Vec<Value>)> {
    ["log/postgresql.log", "log/postgresql.csv"]
        .iter()
        .map(|name| {
            let file = pg_dir.join(name);
            let run = env.run(&[
                "replay",
                "--config",
                "watch.toml",
                "--format",
                "pgaudit",
                file.to_str().unwrap(),
            ]);
            assert_eq!(run.code, 0, "{}: {}", file.display(), run.stderr);
            assert!(run.stderr.contains(" 0 malformed"), "{}", run.stderr);
            let alerts = run.alerts();
            (file, alerts)
        })
        .collect()
}

const CONFIG: &str = "[detect]\nlearn = \"4s\"\nspan = \"30s\"\nclose_after = \"3s\"\nlateness = \"1s\"\nmin_principals = 3\n";

#[test]
fn a_grant_to_many_roles_on_a_real_postgres_is_one_window_live_and_in_replay() {
    let env = TestEnv::new();
    let pg_dir = env.path("pg");
    let pg = Postgres::start(&pg_dir, "UTC");
    let normal = ["analyst1", "analyst2", "analyst3"];
    let intruders = ["eng1", "eng2", "eng3", "eng4", "eng5", "eng6"];
    let mut setup = String::from(
        "CREATE EXTENSION pgaudit; CREATE TABLE salaries (name text, amount int); \
         INSERT INTO salaries VALUES ('a', 1);",
    );
    for role in normal.iter().chain(&intruders) {
        setup.push_str(&format!("CREATE ROLE {role} LOGIN;"));
    }
    for role in normal {
        setup.push_str(&format!("GRANT SELECT ON salaries TO {role};"));
    }
    pg.sql("postgres", &setup, false);

    env.write("watch.toml", CONFIG);
    let log = pg_dir.join("log/postgresql.log");
    let watcher = watch_pgaudit(&env, &log);

    // Their normal job: the analysts read the table during learning and after.
    let learning = now();
    for role in normal {
        pg.sql(role, "SELECT count(*) FROM salaries", false);
    }
    wait_until_learned(&watcher, learning);
    pg.sql("analyst1", "SELECT count(*) FROM salaries", false);

    // The incident.
    pg.sql(
        "postgres",
        &format!("GRANT SELECT ON salaries TO {}", intruders.join(", ")),
        false,
    );
    let first_read = now();
    for role in intruders {
        pg.sql(role, "SELECT * FROM salaries", false);
    }
    let last_read = now();
    let open = watcher.wait_for("open", Duration::from_secs(10), |a| a["status"] == "open");
    let open_seen = Instant::now();
    pg.sql(
        "postgres",
        &format!("REVOKE SELECT ON salaries FROM {}", intruders.join(", ")),
        false,
    );
    // After the REVOKE a read is refused (an ERROR, not an AUDIT line).
    pg.sql("eng1", "SELECT * FROM salaries", true);
    assert_eq!(open["table"], "public.salaries");
    assert!(open_seen.elapsed() < Duration::from_secs(60));
    let closed = watcher.wait_for("closed", Duration::from_secs(15), |a| {
        a["status"] == "closed"
    });
    drop(watcher);

    assert_eq!(
        roles(&closed),
        intruders,
        "live: exactly the roles that read after the GRANT"
    );

    // Replay over the server's stderr log and over its csvlog.
    for (file, alerts) in replay_both_logs(&env, &pg_dir) {
        let windows: Vec<&Value> = alerts.iter().filter(|a| a["status"] == "closed").collect();
        assert_eq!(windows.len(), 1, "{}: {alerts:#?}", file.display());
        let w = windows[0];
        assert_eq!(w["table"], "public.salaries");
        assert_eq!(roles(w), intruders, "{}", file.display());
        let slack = Duration::from_secs(2);
        assert!(within(ts(&w["window_start"]), first_read, slack), "{w}");
        assert!(within(ts(&w["window_end"]), last_read, slack), "{w}");
        assert_eq!(w["id"], open["id"], "replay and live agree on the window");
    }
}

#[test]
fn a_server_logging_in_a_named_zone_is_read_with_its_zone_declared() {
    // Asia/Kolkata writes `IST`, which is also Ireland's and Israel's: the log alone cannot
    // say which, the configuration does.
    let env = TestEnv::new();
    let pg_dir = env.path("pg");
    let pg = Postgres::start(&pg_dir, "Asia/Kolkata");
    pg.sql(
        "postgres",
        "CREATE EXTENSION pgaudit; CREATE TABLE t (x int); CREATE ROLE reader LOGIN; \
         GRANT SELECT ON t TO reader;",
        false,
    );
    let before = now();
    pg.sql("reader", "SELECT * FROM t", false);
    let log = pg_dir.join("log/postgresql.log");
    let log = log.to_str().unwrap();
    let text = std::fs::read_to_string(log).unwrap();
    assert!(text.contains(" IST ["), "the server writes IST: {text}");

    let undeclared = env.run(&["replay", "--format", "pgaudit", log]);
    assert!(
        undeclared.stderr.contains("IST means") && undeclared.stderr.contains("log_timezone"),
        "{}",
        undeclared.stderr
    );
    // Any new reader is a window here: its start is the read's time, which must be the
    // instant the read happened.
    env.write(
        "kolkata.toml",
        "[detect]\nlearn = \"0s\"\nmin_principals = 1\n\
         [input.pgaudit]\nlog_timezone = \"Asia/Kolkata\"\n",
    );
    let declared = env.run(&[
        "replay",
        "--config",
        "kolkata.toml",
        "--format",
        "pgaudit",
        log,
    ]);
    assert_eq!(declared.code, 0, "{}", declared.stderr);
    assert!(
        declared.stderr.contains(" 0 malformed"),
        "{}",
        declared.stderr
    );
    let alerts = declared.alerts();
    let window = alerts
        .iter()
        .find(|a| a["table"] == "public.t")
        .unwrap_or_else(|| panic!("{alerts:#?}"));
    assert_eq!(roles(window), ["reader"]);
    assert!(
        within(ts(&window["window_start"]), before, Duration::from_secs(5)),
        "{window}"
    );
}

/// A server in `env`'s `pg/` logging in UTC with `extra` settings, where role `reader` has
/// read table `t` once; `any.toml` in `env` makes any new reader a window.
fn with_one_read(env: &TestEnv, extra: &str) -> Postgres {
    let pg = Postgres::start_with(&env.path("pg"), "UTC", extra);
    pg.sql(
        "postgres",
        "CREATE EXTENSION pgaudit; CREATE TABLE t (x int); CREATE ROLE reader LOGIN; \
         GRANT SELECT ON t TO reader;",
        false,
    );
    pg.sql("reader", "SELECT * FROM t", false);
    env.write("any.toml", "[detect]\nlearn = \"0s\"\nmin_principals = 1\n");
    pg
}

#[test]
fn postgres_default_prefix_is_read_through_the_login_of_each_process() {
    // PostgreSQL's own default log_line_prefix has no user (`%m [%p] `): the user of an AUDIT
    // line is the one its process logged in as, when log_connections says so.
    let env = TestEnv::new();
    let pg = with_one_read(&env, "log_line_prefix = '%m [%p] '\nlog_connections = on\n");
    let log = env.path("pg/log/postgresql.log");
    let log = log.to_str().unwrap();
    let run = env.run(&["replay", "--config", "any.toml", "--format", "pgaudit", log]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("its lines match `%m [%p] `") && run.stderr.contains(" 0 malformed"),
        "{}",
        run.stderr
    );
    let alerts = run.alerts();
    assert!(
        alerts
            .iter()
            .any(|a| a["table"] == "public.t" && roles(a).contains(&"reader")),
        "{alerts:#?}"
    );

    // Without log_connections, nothing tells the user: each such line says what to change.
    pg.sql("postgres", "ALTER SYSTEM SET log_connections = off", false);
    pg.sql("postgres", "SELECT pg_reload_conf()", false);
    // A new session sees the setting once the server has reloaded.
    super::util::eventually(Duration::from_secs(10), || {
        let now = pg.query("postgres", "SHOW log_connections", false);
        (now == "off")
            .then_some(())
            .ok_or(format!("log_connections is {now}"))
    });
    pg.sql("reader", "SELECT * FROM t", false);
    let run = env.run(&["replay", "--config", "any.toml", "--format", "pgaudit", log]);
    assert!(
        run.stderr.contains("turn on log_connections") && run.stderr.contains(" 1 malformed"),
        "{}",
        run.stderr
    );
}

#[test]
fn postgres_jsonlog_is_read_as_pgaudit_named_or_recognised() {
    let env = TestEnv::new();
    let _pg = with_one_read(&env, "log_destination = 'jsonlog'\n");
    let log = env.path("pg/log/postgresql.json");
    let log = log.to_str().unwrap();
    for format in ["pgaudit", "auto"] {
        let run = env.run(&["replay", "--config", "any.toml", "--format", format, log]);
        assert_eq!(run.code, 0, "{format}: {}", run.stderr);
        assert!(
            run.stderr.contains(" 0 malformed"),
            "{format}: {}",
            run.stderr
        );
        let alerts = run.alerts();
        assert!(
            alerts
                .iter()
                .any(|a| a["table"] == "public.t" && roles(a).contains(&"reader")),
            "{format}: {alerts:#?}\n{}",
            std::fs::read_to_string(log).unwrap()
        );
    }
}

/// The time PostgreSQL logged the first AUDIT line of `log` that contains `needle`, as alerts
/// write times (`%m` is milliseconds, in UTC here).
fn logged_time(log: &Path, needle: &str) -> String {
    let text = std::fs::read_to_string(log).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("AUDIT: ") && l.contains(needle))
        .unwrap_or_else(|| panic!("no AUDIT line with {needle:?} in\n{text}"));
    assert_eq!(&line[23..27], " UTC", "{line}");
    format!("{}T{}Z", &line[..10], &line[11..23])
}

#[test]
fn a_grant_to_public_is_the_cause_and_the_early_warning_on_a_real_postgres() {
    let env = TestEnv::new();
    let pg_dir = env.path("pg");
    let pg = Postgres::start_with(&pg_dir, "UTC", "pgaudit.log = 'read, role'\n");
    let normal = ["analyst1", "analyst2", "analyst3"];
    let intruders = ["eng1", "eng2", "eng3", "eng4", "eng5", "eng6"];
    let members = ["ops1", "ops2", "ops3"];
    // The set-up is one query string of many statements: each ROLE line of it is about its own.
    let mut setup = String::from(
        "CREATE EXTENSION pgaudit; CREATE SCHEMA hr; GRANT USAGE ON SCHEMA hr TO PUBLIC;\n\
         CREATE TABLE hr.salaries (name text, amount int); CREATE TABLE hr.pay (x int);\n\
         INSERT INTO hr.salaries VALUES ('a', 1); CREATE ROLE hr_readers;\n",
    );
    for role in normal.iter().chain(&intruders).chain(&members) {
        setup.push_str(&format!("CREATE ROLE {role} LOGIN;\n"));
    }
    for role in normal {
        setup.push_str(&format!("GRANT SELECT ON hr.salaries, hr.pay TO {role};\n"));
    }
    setup.push_str(&format!("GRANT hr_readers TO {};", members.join(", ")));
    pg.sql("postgres", &setup, false);

    env.write(
        "watch.toml",
        format!("{CONFIG}broad_grantees = [\"hr_readers\"]\n"),
    );
    let log = pg_dir.join("log/postgresql.log");
    let watcher = watch_pgaudit(&env, &log);
    let learning = now();
    for role in normal {
        pg.sql(role, "SELECT count(*) FROM hr.salaries", false);
        pg.sql(role, "SELECT count(*) FROM hr.pay", false);
    }
    wait_until_learned(&watcher, learning);

    // The incident: read granted to everyone, then the reads, then the revoke.
    pg.sql("postgres", "GRANT SELECT ON hr.salaries TO PUBLIC", false);
    let grant = watcher.wait_for("grant", Duration::from_secs(10), |a| a["status"] == "grant");
    assert_eq!(grant["table"], "hr.salaries");
    assert_eq!(grant["severity"], "critical");
    assert_eq!(grant["change"]["grantee"], "PUBLIC");
    for role in intruders {
        pg.sql(role, "SELECT * FROM hr.salaries", false);
    }
    let open = watcher.wait_for("open", Duration::from_secs(10), |a| a["status"] == "open");
    pg.sql(
        "postgres",
        "REVOKE SELECT ON hr.salaries FROM PUBLIC",
        false,
    );
    let closed = watcher.wait_for("closed", Duration::from_secs(15), |a| {
        a["status"] == "closed" && a["table"] == "hr.salaries"
    });

    // A schema-wide grant to a group role, whose members then read.
    pg.sql(
        "postgres",
        "GRANT SELECT ON ALL TABLES IN SCHEMA hr TO hr_readers",
        false,
    );
    for role in members {
        pg.sql(role, "SELECT * FROM hr.pay", false);
    }
    let group = watcher.wait_for("open on hr.pay", Duration::from_secs(10), |a| {
        a["status"] == "open" && a["table"] == "hr.pay"
    });
    drop(watcher);

    let granted_at = logged_time(&log, "GRANT SELECT ON hr.salaries TO PUBLIC");
    let revoked_at = logged_time(&log, "REVOKE SELECT ON hr.salaries FROM PUBLIC");
    let schema_at = logged_time(&log, "IN SCHEMA hr TO hr_readers");
    assert_eq!(grant["as_of"], granted_at.as_str());
    for alert in [&open, &closed] {
        assert_eq!(alert["table"], "hr.salaries");
        let cause = &alert["cause"];
        assert_eq!(cause["grantee"], "PUBLIC", "{alert}");
        assert_eq!(cause["actor"], "postgres");
        assert_eq!(cause["object"], "hr.salaries");
        assert_eq!(cause["privilege"], "SELECT");
        assert_eq!(cause["statement"], "GRANT SELECT ON hr.salaries TO PUBLIC");
        assert_eq!(alert["exposed_from"], granted_at.as_str());
    }
    assert_eq!(open.get("exposed_until"), None, "{open}");
    assert_eq!(closed["exposed_until"], revoked_at.as_str(), "{closed}");
    assert_eq!(roles(&closed), intruders, "exactly the roles that read");
    assert_eq!(group["cause"]["object"], "hr");
    assert_eq!(group["cause"]["grantee"], "hr_readers");
    assert_eq!(group["exposed_from"], schema_at.as_str());
    assert_eq!(roles(&group), members);

    // Replay over the stderr log and the csvlog says the same.
    for (file, alerts) in replay_both_logs(&env, &pg_dir) {
        let find = |status: &str, table: &str| {
            alerts
                .iter()
                .find(|a| a["status"] == status && a["table"] == table)
                .unwrap_or_else(|| panic!("{}: no {status} {table}: {alerts:#?}", file.display()))
        };
        assert_eq!(find("grant", "hr.salaries")["id"], grant["id"]);
        let replayed = find("closed", "hr.salaries");
        for field in ["id", "cause", "exposed_from", "exposed_until", "principals"] {
            assert_eq!(
                replayed[field],
                closed[field],
                "{}: {field}",
                file.display()
            );
        }
        // The group's grant: an early warning too (hr_readers is configured broad), listing
        // the tables of the schema.
        let schema_grant = find("grant", "hr");
        assert_eq!(schema_grant["severity"], "high");
        assert_eq!(
            schema_grant["tables"],
            serde_json::json!(["hr.pay", "hr.salaries"])
        );
        let group_closed = find("closed", "hr.pay");
        assert_eq!(group_closed["cause"], group["cause"]);
        assert_eq!(group_closed.get("exposed_until"), None);
        // Only the broad grants warned: not the grants to single analysts nor USAGE.
        let warnings = alerts.iter().filter(|a| a["status"] == "grant").count();
        assert_eq!(warnings, 2, "{alerts:#?}");
    }
}

#[test]
fn pgaudit_at_its_default_log_relation_off_still_gives_the_window_from_each_statement() {
    // pgaudit.log_relation is off by default: READ lines name no table. The tables come from
    // each line's statement; the window is the one log_relation = on would give.
    let env = TestEnv::new();
    let pg = Postgres::start_with(&env.path("pg"), "UTC", "pgaudit.log_relation = off\n");
    let engineers = ["eng1", "eng2", "eng3", "eng4"];
    let mut setup = String::from(
        "CREATE EXTENSION pgaudit; CREATE SCHEMA hr; GRANT USAGE ON SCHEMA hr TO PUBLIC;\n\
         CREATE TABLE hr.salaries (id int, amount int); CREATE TABLE hr.people (id int, name text);\n\
         GRANT SELECT ON hr.salaries, hr.people TO PUBLIC;\n",
    );
    for role in engineers {
        setup.push_str(&format!("CREATE ROLE {role} LOGIN;\n"));
    }
    pg.sql("postgres", &setup, false);
    for role in engineers {
        pg.sql(role, "SELECT count(*) FROM hr.salaries", false);
    }
    pg.sql(
        "eng1",
        "WITH s AS (SELECT * FROM hr.salaries) SELECT p.name FROM s JOIN hr.people p USING (id)",
        false,
    );
    env.write("any.toml", "[detect]\nlearn = \"0s\"\nmin_principals = 1\n");
    let log = env.path("pg/log/postgresql.log");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("READ,SELECT,,,SELECT count(*) FROM hr.salaries"),
        "the server logs no relation:\n{text}"
    );
    for format in ["pgaudit", "auto"] {
        let run = env.run(&[
            "replay",
            "--strict",
            "--config",
            "any.toml",
            "--format",
            format,
            log.to_str().unwrap(),
        ]);
        assert_eq!(run.code, 0, "{format}: {}", run.stderr);
        assert!(
            run.stderr.contains("pgaudit.log_relation is off")
                && run.stderr.contains(" 0 malformed"),
            "{}",
            run.stderr
        );
        let alerts = run.alerts();
        // Each window's last alert names everyone it saw.
        let window = |table: &str| {
            (alerts.iter().rev())
                .find(|a| a["window_start"].is_string() && a["table"] == table)
                .map(roles)
                .unwrap_or_else(|| panic!("no window on {table}: {alerts:#?}"))
        };
        assert_eq!(window("hr.salaries"), engineers);
        assert_eq!(window("hr.people"), ["eng1"]);
        assert!(
            !alerts.iter().any(|a| a["table"] == "public.s"),
            "{alerts:#?}"
        );
    }
}

/// Runs `sql` as postgres with `psql --csv` (a header line, then RFC 4180 rows): how
/// docs/inputs.md exports a grant snapshot.
/// docs/inputs.md's two queries of a grant snapshot: who holds which privilege on which table,
/// and who is a member of which role.
const GRANTS_QUERY: &str = "SELECT grantee, table_schema, table_name, privilege_type \
     FROM information_schema.role_table_grants \
     WHERE table_schema NOT IN ('pg_catalog', 'information_schema')";
const MEMBERS_QUERY: &str = "SELECT r.rolname AS role, m.rolname AS member FROM pg_auth_members am \
     JOIN pg_roles r ON r.oid = am.roleid JOIN pg_roles m ON m.oid = am.member";

fn export_csv(pg: &Postgres, sql: &str) -> String {
    let out = Command::new(format!("{BIN}/psql"))
        .args([
            "-h",
            pg.dir.to_str().unwrap(),
            "-U",
            "postgres",
            "-d",
            "postgres",
        ])
        .args(["-v", "ON_ERROR_STOP=1", "--csv", "-c", sql])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Grant snapshots on a real PostgreSQL 15: the role `support` and its six members existed
/// before the logs begin, known only from the snapshot that docs/inputs.md's queries export.
/// When the logs show `GRANT SELECT ON salaries TO support` and three members read, the window
/// has that grant as its cause (without the snapshot the logs cannot say the three are in the
/// role, so no cause), and `impact` says the six members could read, three did.
#[test]
fn a_grant_snapshot_from_a_real_postgres_names_the_members_a_role_grant_let_in() {
    let env = TestEnv::new();
    let pg_dir = env.path("pg");
    let pg = Postgres::start_with(&pg_dir, "UTC", "pgaudit.log = 'read, role'\n");
    let normal = ["analyst1", "analyst2", "analyst3"];
    let members = ["eng1", "eng2", "eng3", "eng4", "eng5", "eng6"];
    let mut setup = String::from(
        "CREATE EXTENSION pgaudit; CREATE TABLE salaries (name text, amount int); \
         INSERT INTO salaries VALUES ('a', 1); CREATE ROLE support NOLOGIN;",
    );
    for role in normal.iter().chain(&members) {
        setup.push_str(&format!("CREATE ROLE {role} LOGIN;"));
    }
    for role in normal {
        setup.push_str(&format!("GRANT SELECT ON salaries TO {role};"));
    }
    setup.push_str(&format!("GRANT support TO {};", members.join(", ")));
    pg.sql("postgres", &setup, false);
    // The snapshot, with docs/inputs.md's two queries.
    let grants = export_csv(&pg, GRANTS_QUERY);
    assert!(
        grants.contains("analyst1,public,salaries,SELECT"),
        "{grants}"
    );
    env.write("grants.csv", &grants);
    let memberships = export_csv(&pg, MEMBERS_QUERY);
    assert!(memberships.contains("support,eng6"), "{memberships}");
    env.write("members.csv", &memberships);
    let taken = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    // The logs we have begin here.
    let log = pg_dir.join("log/postgresql.log");
    let before = std::fs::metadata(&log).unwrap().len() as usize;
    for role in normal {
        pg.sql(role, "SELECT count(*) FROM salaries", false);
    }
    std::thread::sleep(Duration::from_millis(4500));
    pg.sql("analyst1", "SELECT count(*) FROM salaries", false);
    pg.sql("postgres", "GRANT SELECT ON salaries TO support", false);
    for role in &members[..3] {
        pg.sql(role, "SELECT * FROM salaries", false);
    }
    let logs = eventually(Duration::from_secs(10), || {
        let text = std::fs::read(&log).unwrap();
        let text = String::from_utf8_lossy(&text[before..]).into_owned();
        (text.matches("SELECT * FROM salaries").count() >= 3)
            .then_some(text)
            .ok_or_else(|| "the reads are not logged yet".to_string())
    });
    assert!(
        !logs.contains("GRANT support"),
        "the memberships are before the logs"
    );
    env.write("pg.log", &logs);
    env.write("watch.toml", CONFIG);
    let snapshot = [
        "--grants",
        "grants.csv",
        "--grants",
        "members.csv",
        "--grants-at",
        &taken,
    ];
    let args = ["--config", "watch.toml", "--format", "pgaudit", "pg.log"];
    let closed = |alerts: Vec<Value>| {
        alerts
            .into_iter()
            .find(|a| a["status"] == "closed")
            .expect("a window")
    };
    let run = env.run(&[&["replay"][..], &args, &snapshot].concat());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let window = closed(run.alerts());
    assert_eq!(roles(&window), ["eng1", "eng2", "eng3"]);
    assert_eq!(window["cause"]["grantee"], "support", "{window}");
    assert_eq!(window["cause"]["object"], "public.salaries");
    // Without the snapshot the logs cannot tie eng1-3 to the role.
    let run = env.run(&[&["replay"][..], &args].concat());
    assert!(closed(run.alerts()).get("cause").is_none());

    let run = env.run(&[&["impact"][..], &args, &snapshot].concat());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let impact: Value = serde_json::from_str(run.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(impact["could_read"]["kind"], "members");
    assert_eq!(impact["could_read"]["count"], 6, "{impact}");
    assert_eq!(
        impact["could_read"]["principals"],
        serde_json::json!(members)
    );
    assert_eq!(impact["did_read_count"], 3);
}

/// The incident this project exists for, on a real PostgreSQL 15: a schema of user data
/// granted to `PUBLIC`, forty engineers who never read it reading it, the revoke — and two of
/// them, let in meanwhile through a support role, reading on after it. `watch` pages for the
/// two; `impact` over the log names the forty with their reads, everyone as who could read,
/// nobody after the revoke until the two read, then exactly them, naming the role's grant.
#[test]
fn the_seed_incident_on_a_real_postgres_impact_names_the_forty_and_watch_pages_for_the_two() {
    let env = TestEnv::new();
    let pg_dir = env.path("pg");
    let pg = Postgres::start_with(&pg_dir, "UTC", "pgaudit.log = 'read, role'\n");
    let analysts = ["analyst1", "analyst2", "analyst3"];
    let engineers: Vec<String> = (1..=40).map(|i| format!("eng{i:02}")).collect();
    let bystanders: Vec<String> = (1..=7).map(|i| format!("ops{i}")).collect();
    let mut setup = String::from(
        "CREATE EXTENSION pgaudit; CREATE SCHEMA users; CREATE SCHEMA ops;\n\
         GRANT USAGE ON SCHEMA users, ops TO PUBLIC;\n\
         CREATE TABLE users.pii (email text, ssn text); CREATE TABLE users.payment_methods (card text);\n\
         CREATE TABLE ops.metrics (x int); GRANT SELECT ON ops.metrics TO PUBLIC;\n\
         CREATE ROLE support_escalations;\n",
    );
    for role in analysts
        .iter()
        .map(|s| s.to_string())
        .chain(engineers.clone())
        .chain(bystanders.clone())
    {
        setup.push_str(&format!("CREATE ROLE {role} LOGIN;\n"));
    }
    for role in analysts {
        setup.push_str(&format!(
            "GRANT SELECT ON users.pii, users.payment_methods TO {role};\n"
        ));
    }
    pg.sql("postgres", &setup, false);
    let log = pg_dir.join("log/postgresql.log");
    env.write("watch.toml", CONFIG);
    let watcher = watch_pgaudit(&env, &log);
    let learning = now();
    for role in analysts {
        pg.sql(role, "SELECT count(*) FROM users.pii", false);
        pg.sql(role, "SELECT count(*) FROM users.payment_methods", false);
    }
    for role in &bystanders {
        pg.sql(role, "SELECT count(*) FROM ops.metrics", false);
    }
    wait_until_learned(&watcher, learning);

    // The agent's fix, and the forty.
    let grant = "GRANT SELECT ON ALL TABLES IN SCHEMA users TO PUBLIC";
    pg.sql("postgres", grant, false);
    // Everyone else goes on with their day (the population `could_read` counts is who read
    // anything from `learn` before the grant on).
    for role in analysts {
        pg.sql(role, "SELECT count(*) FROM users.pii", false);
    }
    for role in &bystanders {
        pg.sql(role, "SELECT count(*) FROM ops.metrics", false);
    }
    for (i, role) in engineers.iter().enumerate() {
        let table = if i % 4 == 0 {
            "users.payment_methods"
        } else {
            "users.pii"
        };
        pg.sql(role, &format!("SELECT * FROM {table}"), false);
    }
    // Meanwhile two of them are given a support role that reads users.pii.
    pg.sql(
        "postgres",
        "GRANT SELECT ON users.pii TO support_escalations; GRANT support_escalations TO eng01, eng02",
        false,
    );
    pg.sql("eng01", "SELECT * FROM users.pii", false);
    watcher.wait_for("the window", Duration::from_secs(15), |a| {
        a["status"] == "open" && a["table"] == "users.pii"
    });
    pg.sql(
        "postgres",
        "REVOKE SELECT ON ALL TABLES IN SCHEMA users FROM PUBLIC",
        false,
    );
    // Nobody reads after the revoke yet: the log as it stands is the first variant.
    let revoked = env.path("revoked.log");
    eventually(Duration::from_secs(10), || {
        let text = std::fs::read_to_string(&log).unwrap();
        text.contains("FROM PUBLIC")
            .then(|| std::fs::write(&revoked, text).unwrap())
            .ok_or_else(|| "the revoke not logged yet".to_string())
    });
    for role in ["eng01", "eng02"] {
        pg.sql(role, "SELECT email FROM users.pii", false);
    }
    let paged: Vec<Value> = ["eng01", "eng02"]
        .iter()
        .map(|who| {
            watcher.wait_for(
                &format!("still_readable for {who}"),
                Duration::from_secs(15),
                |a| a["status"] == "still_readable" && a["principals"][0]["principal"] == *who,
            )
        })
        .collect();
    drop(watcher);
    for alert in &paged {
        assert_eq!(alert["table"], "users.pii");
        assert_eq!(alert["change"]["grantee"], "PUBLIC", "{alert}");
        assert_eq!(
            alert["standing"]["grantee"], "support_escalations",
            "{alert}"
        );
    }

    let impact = |file: &Path| -> Value {
        let run = env.run(&[
            "impact",
            "--config",
            "watch.toml",
            "--format",
            "pgaudit",
            file.to_str().unwrap(),
        ]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let impacts = run.alerts();
        // (The set-up's grant on ops.metrics to PUBLIC is an exposure of its own.)
        let public: Vec<&Value> = (impacts.iter())
            .filter(|i| i["change"]["grantee"] == "PUBLIC" && i["change"]["object"] == "users")
            .collect();
        let [public] = public.as_slice() else {
            panic!("{impacts:#?}")
        };
        (*public).clone()
    };
    let before = impact(&revoked);
    assert_eq!(before["change"]["object"], "users");
    assert_eq!(before["change"]["statement"], grant);
    assert_eq!(before["did_read_count"], 40, "{before:#}");
    let readers: Vec<&str> = (before["did_read"].as_array().unwrap().iter())
        .map(|p| p["principal"].as_str().unwrap())
        .collect();
    assert_eq!(readers, engineers, "the forty, and nobody normal");
    let eng01 = &before["did_read"][0];
    assert_eq!(eng01["reads"], 2, "{eng01}");
    assert_eq!(before["could_read"]["kind"], "everyone");
    assert_eq!(
        before["could_read"]["count"],
        analysts.len() + engineers.len() + bystanders.len(),
        "everyone the logs show"
    );
    assert_eq!(before["after_revoke_count"], 0);
    assert_eq!(before["verdict"], "accessed");

    let after = impact(&log);
    assert_eq!(after["did_read"], before["did_read"]);
    assert_eq!(after["after_revoke_count"], 2, "{after:#}");
    for reader in after["after_revoke"].as_array().unwrap() {
        let granted = &reader["tables"][0]["still_granted"];
        assert_eq!(granted["grantee"], "support_escalations", "{reader}");
        assert_eq!(granted["object"], "users.pii");
    }
    assert_eq!(after["verdict"], "accessed, still read after the revoke");
}

/// `exposure check` on a real PostgreSQL 15: against what the logs and a grant snapshot say,
/// who the check predicts would gain read by each proposed change is exactly whom
/// `has_table_privilege` lets read after the change is applied and not before (each applied
/// in a transaction rolled back, so each is judged against the same state).
#[test]
fn the_check_predicts_who_gains_read_exactly_as_postgres_grants_it() {
    let env = TestEnv::new();
    let pg_dir = env.path("pg");
    let pg = Postgres::start_with(&pg_dir, "UTC", "pgaudit.log = 'read, role'\n");
    let analysts = ["an1", "an2", "an3"];
    let support = ["sup1", "sup2"];
    let engineers = ["eng1", "eng2", "eng3", "eng4", "eng5", "eng6"];
    let people: Vec<&str> = analysts
        .iter()
        .chain(&support)
        .chain(&engineers)
        .copied()
        .collect();
    let mut setup = String::from(
        "CREATE EXTENSION pgaudit; CREATE SCHEMA users; CREATE SCHEMA hr; \
         CREATE TABLE users.pii (name text); CREATE TABLE users.payment_methods (card text); \
         CREATE TABLE hr.salaries (amount int); CREATE ROLE support NOLOGIN; \
         GRANT USAGE ON SCHEMA users, hr TO PUBLIC; \
         GRANT SELECT ON users.payment_methods TO support;",
    );
    for role in &people {
        setup.push_str(&format!("CREATE ROLE {role} LOGIN;"));
    }
    for role in analysts {
        setup.push_str(&format!("GRANT SELECT ON users.pii TO {role};"));
    }
    for role in engineers {
        setup.push_str(&format!("GRANT SELECT ON hr.salaries TO {role};"));
    }
    setup.push_str(&format!("GRANT support TO {};", support.join(", ")));
    pg.sql("postgres", &setup, false);
    let grants = export_csv(&pg, GRANTS_QUERY);
    env.write("grants.csv", &grants);
    let memberships = export_csv(&pg, MEMBERS_QUERY);
    env.write("members.csv", &memberships);
    let taken = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let log = pg_dir.join("log/postgresql.log");
    let before = std::fs::metadata(&log).unwrap().len() as usize;
    for role in analysts {
        pg.sql(role, "SELECT count(*) FROM users.pii", false);
    }
    for role in support {
        pg.sql(role, "SELECT count(*) FROM users.payment_methods", false);
    }
    for role in engineers {
        pg.sql(role, "SELECT count(*) FROM hr.salaries", false);
    }
    let logs = eventually(Duration::from_secs(10), || {
        let text = std::fs::read(&log).unwrap();
        let text = String::from_utf8_lossy(&text[before..]).into_owned();
        (text.matches("hr.salaries").count() >= engineers.len())
            .then_some(text)
            .ok_or_else(|| "the reads are not logged yet".to_string())
    });
    env.write("pg.log", &logs);

    // Who may read `table`, of the people, as PostgreSQL says after `change` (none: now).
    let may_read = |table: &str, change: Option<&str>| -> Vec<String> {
        let query: Vec<String> = people
            .iter()
            .map(|p| format!("SELECT '{p}' WHERE has_table_privilege('{p}', '{table}', 'SELECT');"))
            .collect();
        let sql = match change {
            Some(change) => format!("BEGIN; {change}; {} ROLLBACK;", query.join(" ")),
            None => query.join(" "),
        };
        let out = pg.query("postgres", &sql, false);
        let mut names: Vec<String> = out.lines().map(str::to_string).collect();
        names.sort();
        names
    };
    for change in [
        "GRANT SELECT ON ALL TABLES IN SCHEMA users TO PUBLIC",
        "GRANT SELECT ON users.pii TO support",
        "GRANT support TO eng1, an1",
        "GRANT SELECT ON TABLE users.pii, hr.salaries TO sup1, eng2",
    ] {
        let run = env.run(&[
            "check",
            "--json",
            "--format",
            "pgaudit",
            "--grants",
            "grants.csv",
            "--grants",
            "members.csv",
            "--grants-at",
            &taken,
            "--sql",
            change,
            "pg.log",
        ]);
        assert!(run.code != 2, "{}", run.stderr);
        let answer: Value = serde_json::from_str(&run.stdout).unwrap();
        let mut predicted: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for finding in answer["changes"].as_array().unwrap() {
            for table in finding["tables"].as_array().unwrap() {
                let who = table["principals"].as_array().cloned().unwrap_or_default();
                let gained = predicted
                    .entry(table["table"].as_str().unwrap().to_string())
                    .or_default();
                gained.extend(who.iter().map(|p| p.as_str().unwrap().to_string()));
                gained.sort();
                gained.dedup();
            }
        }
        for table in ["users.pii", "users.payment_methods", "hr.salaries"] {
            let (was, is) = (may_read(table, None), may_read(table, Some(change)));
            let gained: Vec<String> = is.into_iter().filter(|p| !was.contains(p)).collect();
            let mut said = predicted.get(table).cloned().unwrap_or_default();
            said.retain(|p| people.contains(&p.as_str()));
            assert_eq!(said, gained, "{change}: who gains {table}\n{answer}");
        }
    }
}
