//! Paging sinks, delivered for real: PagerDuty and webhook sinks against a local HTTP server that
//! validates bodies and scripts failures, a real Prometheus Alertmanager, and `kill -9` while a
//! sink is down.

use super::util::{CONFIG, DownPort, Watcher, append, eventually, http_get, read_line, run_for};
use super::{Run, TestEnv};
use serde_json::Value;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request the server received.
#[derive(Debug, Clone)]
pub(super) struct Received {
    pub(super) path: String,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Value,
    pub(super) at: Instant,
    /// The status the server answered.
    pub(super) status: u16,
}

/// A scripted answer: status, extra headers, body.
pub(super) type Answer<'a> = (u16, &'a [(&'a str, &'a str)], &'a str);
/// The same, owned.
type OwnedAnswer = (u16, Vec<(String, String)>, String);

/// A local HTTP/1.1 server on 127.0.0.1 that answers from a script (then 202), recording
/// every request.
pub(super) struct ScriptedServer {
    port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
}

impl ScriptedServer {
    pub(super) fn start(script: &[Answer<'_>]) -> ScriptedServer {
        ScriptedServer::start_on(TcpListener::bind("127.0.0.1:0").unwrap(), script)
    }

    fn start_on(listener: TcpListener, script: &[Answer<'_>]) -> ScriptedServer {
        let port = listener.local_addr().unwrap().port();
        let script: VecDeque<OwnedAnswer> = script
            .iter()
            .map(|(s, h, b)| {
                let headers = h
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                (*s, headers, b.to_string())
            })
            .collect();
        let script = Arc::new(Mutex::new(script));
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (received, stop) = (Arc::clone(&received), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    // Dropping the server wakes this with a connection of its own.
                    if let Ok((stream, _)) = listener.accept()
                        && !stop.load(Ordering::Relaxed)
                    {
                        serve(stream, &script, &received);
                    }
                }
            });
        }
        ScriptedServer {
            port,
            received,
            stop,
        }
    }

    pub(super) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub(super) fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        eventually(timeout, || {
            let got = self.received();
            (got.len() >= n)
                .then(|| got.clone())
                .ok_or_else(|| format!("{} of {n} requests: {got:#?}", got.len()))
        })
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

type Script = Mutex<VecDeque<OwnedAnswer>>;

fn serve(stream: TcpStream, script: &Script, received: &Mutex<Vec<Received>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':').unwrap();
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).unwrap();
    let (status, extra, text) = script.lock().unwrap().pop_front().unwrap_or((
        202,
        Vec::new(),
        "{\"status\":\"success\"}".into(),
    ));
    received.lock().unwrap().push(Received {
        path: request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_string(),
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        at: Instant::now(),
        status,
    });
    let mut response = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        text.len()
    );
    for (k, v) in extra {
        response.push_str(&format!("{k}: {v}\r\n"));
    }
    response.push_str("\r\n");
    response.push_str(&text);
    let mut stream = stream;
    let _ = stream.write_all(response.as_bytes());
}

const ROUTING_KEY: &str = "R0123456789abcdef0123456789abcde";

fn config_with(sinks: &str) -> String {
    format!("{CONFIG}\n{sinks}")
}

/// A test env whose one sink is a webhook on a port nothing listens on yet (retrying every
/// 100-300 ms), and that port.
fn env_with_a_webhook_down() -> (TestEnv, DownPort) {
    let down = DownPort::new();
    let port = down.port;
    let env = TestEnv::new();
    env.write(
        "watch.toml",
        config_with(&format!(
            "[[sinks]]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{port}/\"\nretry_initial = \"100ms\"\nretry_max = \"300ms\"\n"
        )),
    );
    (env, down)
}

/// Watches `app.log` in `env` (whose webhook is down), opens a window on `pay`, and waits
/// until its open and closed are journaled (the close comes by the wall clock, quiet 2s +
/// lateness 1s).
fn window_journaled_while_the_webhook_is_down(env: &TestEnv) -> Watcher {
    let log = env.write("app.log", "");
    let watcher = Watcher::start(env, &["app.log"]);
    make_window(Some(&watcher), &log);
    eventually(Duration::from_secs(15), || {
        let n = journaled(&env.path("state/outbox"));
        (n >= 2)
            .then_some(())
            .ok_or(format!("{n} of 2 alerts journaled"))
    });
    watcher
}

/// Reads that open a window on `pay` (and, with `close_after = 2s` and no more reads, close it):
/// the table's first read, taken in by `watcher` (when the test has one to ask) before the
/// newcomers come.
fn make_window(watcher: Option<&Watcher>, log: &Path) {
    match watcher {
        Some(watcher) => watcher.append_and_wait(log, read_line("svc-etl", "pay")),
        None => append(log, read_line("svc-etl", "pay")),
    }
    for p in ["eve", "mallory", "trudy"] {
        append(log, read_line(p, "pay"));
    }
}

/// The checks PagerDuty makes on an Events v2 body.
fn assert_valid_pagerduty_event(event: &Value) {
    assert_eq!(event["routing_key"].as_str().unwrap().len(), 32, "{event}");
    let action = event["event_action"].as_str().unwrap();
    assert!(["trigger", "resolve"].contains(&action), "{event}");
    let dedup = event["dedup_key"].as_str().unwrap();
    assert!(!dedup.is_empty() && dedup.len() <= 255, "{event}");
    let payload = &event["payload"];
    let summary = payload["summary"].as_str().unwrap();
    assert!(
        !summary.is_empty() && summary.chars().count() <= 1024,
        "{event}"
    );
    assert!(!payload["source"].as_str().unwrap().is_empty(), "{event}");
    assert!(
        ["critical", "error", "warning", "info"].contains(&payload["severity"].as_str().unwrap()),
        "{event}"
    );
    chrono::DateTime::parse_from_rfc3339(payload["timestamp"].as_str().unwrap()).unwrap();
    assert_eq!(payload["custom_details"]["table"], "pay");
}

#[test]
fn pagerduty_gets_trigger_then_resolve_through_500s() {
    let server = ScriptedServer::start(&[(500, &[], "oops"), (500, &[], "oops again")]);
    let env = TestEnv::new();
    env.write(
        "watch.toml",
        config_with(&format!(
            "[[sinks]]\nkind = \"pagerduty\"\nurl = \"{}\"\nrouting_key_env = \"TEST_PD_KEY\"\nretry_initial = \"50ms\"\n",
            server.url()
        )),
    );
    let log = env.write("app.log", "");
    let watcher = Watcher::start_env(&env, &["app.log"], &[("TEST_PD_KEY", ROUTING_KEY)]);
    make_window(Some(&watcher), &log);
    let got = server.wait_for(4, Duration::from_secs(15));
    let statuses: Vec<u16> = got.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 500, 202, 202]);
    for r in &got {
        assert_eq!(r.path, "/v2/enqueue");
        assert_valid_pagerduty_event(&r.body);
    }
    let delivered: Vec<&str> = got[2..]
        .iter()
        .map(|r| r.body["event_action"].as_str().unwrap())
        .collect();
    assert_eq!(delivered, ["trigger", "resolve"]);
    assert_eq!(got[2].body["dedup_key"], got[3].body["dedup_key"]);
    assert!(
        got[2].body["payload"]["summary"]
            .as_str()
            .unwrap()
            .contains("3 novel principals")
    );
    let (code, _) = watcher.stop();
    assert_eq!(code, 0);
    // The secret is in no file of the state dir.
    for entry in walk(&env.path("state")) {
        let text = std::fs::read_to_string(&entry).unwrap_or_default();
        assert!(
            !text.contains(ROUTING_KEY),
            "{} holds the key",
            entry.display()
        );
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn a_429_is_retried_after_retry_after_and_a_400_is_dead_lettered() {
    let server = ScriptedServer::start(&[
        (429, &[("Retry-After", "1")], "slow down"),
        (400, &[], "{\"error\":\"bad payload\"}"),
    ]);
    let env = TestEnv::new();
    env.write(
        "watch.toml",
        config_with(&format!(
            "[[sinks]]\nkind = \"webhook\"\nurl = \"{}/hook?x=1\"\nheaders_env = {{ Authorization = \"TEST_HOOK_AUTH\" }}\nretry_initial = \"50ms\"\n",
            server.url()
        )),
    );
    let log = env.write("app.log", "");
    let watcher = Watcher::start_env(&env, &["app.log"], &[("TEST_HOOK_AUTH", "Bearer s3cret")]);
    make_window(Some(&watcher), &log);
    let got = server.wait_for(3, Duration::from_secs(15));
    assert_eq!(got[0].status, 429);
    assert_eq!(got[1].status, 400);
    assert!(
        got[1].at - got[0].at >= Duration::from_millis(950),
        "Retry-After honoured"
    );
    // The 400 was the `open`: dead-lettered; the `closed` still went through.
    assert_eq!(got[0].body["status"], "open");
    assert_eq!(got[1].body["status"], "open");
    assert_eq!(got[2].body["status"], "closed");
    assert_eq!(got[2].status, 202);
    assert_eq!(got.len(), 3);
    for r in &got {
        assert_eq!(r.path, "/hook?x=1");
        assert!(
            r.headers
                .contains(&("authorization".into(), "Bearer s3cret".into()))
        );
        assert_eq!(r.body["schema"], "exposure.alert/v1");
    }
    let dead = std::fs::read_to_string(env.path("state/sinks/webhook.dead-letter.jsonl")).unwrap();
    let dead: Value = serde_json::from_str(dead.trim()).unwrap();
    assert_eq!(dead["alert"]["status"], "open");
    assert!(
        dead["reason"].as_str().unwrap().contains("HTTP 400"),
        "{dead}"
    );
    assert!(
        dead["reason"].as_str().unwrap().contains("bad payload"),
        "{dead}"
    );
    drop(watcher);
}

#[test]
fn a_sink_down_across_a_kill_9_gets_everything_once_in_order_when_back() {
    let (env, port) = env_with_a_webhook_down();
    let watcher = window_journaled_while_the_webhook_is_down(&env);
    watcher.kill9();
    let watcher = Watcher::start(&env, &["app.log"]);
    let server = ScriptedServer::start_on(port.comes_up(), &[]);
    let got = server.wait_for(2, Duration::from_secs(15));
    // Everything acknowledged: nothing is left that could be sent again.
    eventually(Duration::from_secs(15), || {
        let pending = watcher.metric("sink_pending{sink=\"webhook\"}");
        (pending == Some(0.0))
            .then_some(())
            .ok_or(format!("{pending:?} pending"))
    });
    let got_after = server.received();
    assert_eq!(got_after.len(), 2, "nothing duplicated: {got_after:#?}");
    let statuses: Vec<&str> = got
        .iter()
        .map(|r| r.body["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["open", "closed"]);
    assert_eq!(got[0].body["id"], got[1].body["id"]);
    drop(watcher);
}

#[test]
fn pending_tells_the_truth_while_a_sink_is_stuck_on_its_first_alert() {
    let (env, _port) = env_with_a_webhook_down();
    let log = env.write("app.log", "");
    let watcher = Watcher::start(&env, &["app.log"]);
    // Twelve tables, each opening (and, once quiet, closing) a window: 24 alerts.
    let mut lines = String::new();
    for t in 0..12 {
        for p in ["eve", "mallory", "trudy"] {
            lines.push_str(&read_line(p, &format!("t{t}")));
        }
    }
    append(&log, lines);
    let pending = eventually(Duration::from_secs(20), || {
        let pending = watcher
            .metric("sink_pending{sink=\"webhook\"}")
            .unwrap_or(0.0);
        let journaled = journaled(&env.path("state/outbox"));
        (pending as usize == 24 && journaled == 24)
            .then_some(pending)
            .ok_or(format!("pending {pending}, journaled {journaled}"))
    });
    assert_eq!(pending, 24.0);
    assert_eq!(
        watcher.metric("sink_delivered_total{sink=\"webhook\"}"),
        Some(0.0)
    );
    drop(watcher);
}

/// CPU time (user + system, in clock ticks) process `pid` has used.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn a_flood_of_idle_metrics_connections_starves_neither_delivery_nor_the_cpu() {
    let server = ScriptedServer::start(&[]);
    let env = TestEnv::new();
    env.write(
        "watch.toml",
        config_with(&format!(
            "[[sinks]]\nkind = \"webhook\"\nurl = \"{}/\"\n",
            server.url()
        )),
    );
    let log = env.write("app.log", "");
    let watcher = Watcher::start(&env, &["app.log"]);
    let pid = watcher.child.id();
    // 128 file descriptors, as a tight container gives, and more idle connections than that.
    let limited = Command::new("prlimit")
        .args(["--pid", &pid.to_string(), "--nofile=128:128"])
        .status()
        .unwrap();
    assert!(limited.success());
    let flood: Vec<TcpStream> = (0..150)
        .map(|_| TcpStream::connect(&watcher.metrics_addr).unwrap())
        .collect();
    // Saturated: every descriptor it may have is taken, and accepting fails (EMFILE).
    eventually(Duration::from_secs(10), || {
        let saturated = watcher
            .logs()
            .iter()
            .any(|l| l.contains("cannot accept a connection"));
        saturated
            .then_some(())
            .ok_or("accepting has not failed yet".to_string())
    });
    let before = cpu_ticks(pid);
    let mut watcher = watcher;
    // The measurement: two seconds of the flood.
    assert!(run_for(&mut watcher.child, Duration::from_secs(2)).is_none());
    let used = cpu_ticks(pid) - before;
    // An accept loop spinning on EMFILE burns the whole 2 s (200 ticks); an idle watcher ~0.
    assert!(used < 100, "{used} ticks of CPU in 2 s while flooded");
    make_window(Some(&watcher), &log);
    let got = server.wait_for(2, Duration::from_secs(15));
    assert_eq!(got[0].body["status"], "open");
    assert_eq!(got[1].body["status"], "closed");
    drop(flood);
    eventually(Duration::from_secs(15), || {
        match http_get(&watcher.metrics_addr, "/metrics") {
            Some((200, _)) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    drop(watcher);
}

#[test]
fn an_ack_file_claiming_more_than_was_journaled_is_moved_aside_and_nothing_is_skipped() {
    let (env, port) = env_with_a_webhook_down();
    let watcher = window_journaled_while_the_webhook_is_down(&env);
    let (code, _) = watcher.stop();
    assert_eq!(code, 0);
    // Garbled by hand or by a disk: claims everything up to 50 was delivered.
    std::fs::write(env.path("state/sinks/webhook.ack"), "{\"seq\":50}").unwrap();
    let server = ScriptedServer::start_on(port.comes_up(), &[]);
    let watcher = Watcher::start(&env, &["app.log"]);
    let got = server.wait_for(2, Duration::from_secs(15));
    assert_eq!(got[0].body["status"], "open");
    assert_eq!(got[1].body["status"], "closed");
    let aside: Vec<_> = walk(&env.path("state/sinks"))
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("webhook.ack.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "the bad file is kept aside");
    assert_eq!(std::fs::read_to_string(&aside[0]).unwrap(), "{\"seq\":50}");
    drop(watcher);
}

#[test]
fn over_its_bound_the_outbox_gives_the_oldest_alerts_to_the_dead_letter_file_and_loses_none() {
    let (env, port) = env_with_a_webhook_down();
    let log = env.write("app.log", "");
    let watcher = Watcher::start(&env, &["app.log", "--outbox-max-bytes", "4000"]);
    // Twelve windows, one at a time (each opened before the next starts), so that the
    // journal holds many small segments.
    for t in 0..12 {
        let mut lines = String::new();
        for p in ["eve", "mallory", "trudy"] {
            lines.push_str(&read_line(p, &format!("t{t}")));
        }
        append(&log, lines);
        eventually(Duration::from_secs(20), || {
            let emitted = watcher.metric("alerts_emitted_total").unwrap_or(0.0);
            (emitted > t as f64)
                .then_some(())
                .ok_or(format!("window {t} not open yet"))
        });
    }
    let dead_letters = env.path("state/sinks/webhook.dead-letter.jsonl");
    let dead = || -> Vec<Value> {
        std::fs::read_to_string(&dead_letters)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    // All 24 alerts journaled; the outbox back within its bound once the closes are in.
    eventually(Duration::from_secs(20), || {
        let emitted = watcher.metric("alerts_emitted_total").unwrap_or(0.0);
        let bytes = watcher.metric("outbox_bytes").unwrap_or(f64::MAX);
        (emitted == 24.0 && bytes <= 4000.0 && !dead().is_empty())
            .then_some(())
            .ok_or(format!(
                "{emitted} emitted, outbox {bytes} bytes, {} dead",
                dead().len()
            ))
    });
    let server = ScriptedServer::start_on(port.comes_up(), &[]);
    let key = |a: &Value| format!("{}:{}", a["id"], a["status"]);
    let dead_keys: Vec<String> = dead()
        .iter()
        .inspect(|d| {
            assert!(
                d["reason"]
                    .as_str()
                    .unwrap()
                    .contains("outbox over its bound"),
                "{d}"
            );
        })
        .map(|d| key(&d["alert"]))
        .collect();
    let got = server.wait_for(24 - dead_keys.len(), Duration::from_secs(15));
    let mut all: Vec<String> = got.iter().map(|r| key(&r.body)).collect();
    all.extend(dead_keys.iter().cloned());
    all.sort();
    all.dedup();
    assert_eq!(
        all.len(),
        24,
        "every alert delivered or dead-lettered, none twice: {all:#?}"
    );
    assert!(
        (4..24).contains(&dead_keys.len()),
        "the oldest given up, the newest kept: {} dead",
        dead_keys.len()
    );
    assert_eq!(
        watcher.metric("sink_dead_lettered_total{sink=\"webhook\"}"),
        Some(dead_keys.len() as f64)
    );
    drop(watcher);
}

fn journaled(outbox: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(outbox) else {
        return 0;
    };
    entries
        .map(|e| {
            std::fs::read_to_string(e.unwrap().path())
                .unwrap_or_default()
                .lines()
                .count()
        })
        .sum()
}

#[test]
fn a_stdout_nobody_reads_holds_up_neither_other_sinks_nor_metrics_nor_shutdown() {
    let webhook = ScriptedServer::start(&[]);
    let env = TestEnv::new();
    env.write(
        "watch.toml",
        config_with(&format!(
            "[[sinks]]\nkind = \"jsonl\"\npath = \"-\"\n[[sinks]]\nkind = \"webhook\"\nurl = \"{}/hook\"\n",
            webhook.url()
        )),
    );
    let log = env.write("app.log", "");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let metrics = format!("127.0.0.1:{port}");
    // stdout is a pipe this test never reads: it is full after some 64 KiB of alerts.
    let mut child = env
        .command(&[
            "watch",
            "--config",
            "watch.toml",
            "--state-dir",
            "state",
            "--metrics-addr",
            &metrics,
            "--checkpoint-every",
            "100ms",
            "app.log",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _unread = child.stdout.take();
    eventually(Duration::from_secs(20), || {
        http_get(&metrics, "/ready")
            .filter(|(status, _)| *status == 200)
            .ok_or("not ready".to_string())
    });
    // 300 windows: 300 `open` and 300 `closed`, far more than the pipe holds.
    let tables = 300;
    let lines: String = (0..tables)
        .flat_map(|t| ["eve", "mallory", "trudy"].map(|p| read_line(p, &format!("t{t}"))))
        .collect();
    append(&log, lines);
    webhook.wait_for(2 * tables, Duration::from_secs(30));
    let (status, body) = http_get(&metrics, "/metrics").expect("metrics answer");
    assert_eq!(status, 200);
    assert!(body.contains("exposure_alerts_emitted_total 600"), "{body}");
    // SIGTERM: stops within the drain timeout though stdout is still full.
    let asked = Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let code = eventually(Duration::from_secs(15), || {
        child
            .try_wait()
            .unwrap()
            .map(|status| status.code())
            .ok_or("still running".to_string())
    });
    assert_eq!(code, Some(0));
    assert!(
        asked.elapsed() < Duration::from_secs(12),
        "{:?}",
        asked.elapsed()
    );
}

#[test]
fn secrets_a_receiver_echoes_back_are_never_logged_printed_or_stored() {
    const TOKEN: &str = "Bearer hook-t0ken-abc";
    // Receivers that refuse with the request echoed: headers, body, query.
    let echo = format!(
        "{{\"error\":\"bad\",\"echo\":{{\"routing_key\":\"{ROUTING_KEY}\",\"headers\":{{\"Authorization\":\"{TOKEN}\"}},\"query\":\"sig=qs-s3cret-9\"}}}}"
    );
    let script: Vec<Answer<'_>> = vec![(400, &[], echo.as_str()); 8];
    let pagerduty = ScriptedServer::start(&script);
    let webhook = ScriptedServer::start(&script);
    let env = TestEnv::new();
    let sinks = format!(
        "[[sinks]]\nkind = \"pagerduty\"\nurl = \"{}\"\nrouting_key_env = \"TEST_PD_KEY\"\n[[sinks]]\nkind = \"webhook\"\nurl = \"{}/hook?sig=qs-s3cret-9\"\nheaders_env = {{ Authorization = \"TEST_HOOK_AUTH\" }}\n",
        pagerduty.url(),
        webhook.url()
    );
    env.write("watch.toml", config_with(&sinks));
    let vars = [("TEST_PD_KEY", ROUTING_KEY), ("TEST_HOOK_AUTH", TOKEN)];
    let secrets = [ROUTING_KEY, "hook-t0ken-abc", "qs-s3cret-9"];
    let assert_clean = |what: &str, text: &str| {
        for secret in secrets {
            assert!(!text.contains(secret), "{secret} in {what}: {text}");
        }
    };

    let run = env
        .command(&["sink-test", "--config", "watch.toml"])
        .envs(vars)
        .output()
        .unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(printed.contains("HTTP 400"), "{printed}");
    assert!(printed.contains("[REDACTED]"), "{printed}");
    assert_clean("sink-test's output", &printed);

    let log = env.write("app.log", "");
    let stderr = std::fs::File::create(env.path("watch.err")).unwrap();
    let mut child = env
        .command(&[
            "watch",
            "--config",
            "watch.toml",
            "--state-dir",
            "state",
            "--checkpoint-every",
            "100ms",
            "app.log",
        ])
        .envs(vars)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    eventually(Duration::from_secs(20), || {
        std::fs::read_to_string(env.path("watch.err"))
            .unwrap_or_default()
            .contains(" watching")
            .then_some(())
            .ok_or("not watching".to_string())
    });
    make_window(None, &log);
    // The open and the closed, refused by each: four dead letters.
    eventually(Duration::from_secs(15), || {
        let dead: usize = ["pagerduty", "webhook"]
            .iter()
            .map(|s| {
                std::fs::read_to_string(env.path(&format!("state/sinks/{s}.dead-letter.jsonl")))
                    .unwrap_or_default()
                    .lines()
                    .count()
            })
            .sum();
        (dead == 4)
            .then_some(())
            .ok_or(format!("{dead} dead letters"))
    });
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    child.wait().unwrap();
    let logged = std::fs::read_to_string(env.path("watch.err")).unwrap();
    assert!(logged.contains("[REDACTED]"), "{logged}");
    assert_clean("the log", &logged);
    for file in walk(&env.path("state")) {
        let stored = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).into_owned();
        assert_clean(&file.display().to_string(), &stored);
    }
}

#[test]
fn sink_test_reports_each_sink() {
    let good = ScriptedServer::start(&[]);
    let env = TestEnv::new();
    env.write(
        "sinks.toml",
        format!(
            "[[sinks]]\nkind = \"webhook\"\nurl = \"{}/ok\"\n[[sinks]]\nkind = \"webhook\"\nname = \"refusing\"\nurl = \"{}/no\"\n",
            good.url(),
            good.url()
        ),
    );
    let run = env.run(&["sink-test", "--config", "sinks.toml"]);
    // Both answered 202: both ok.
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("webhook: ok"), "{}", run.stdout);
    assert!(run.stdout.contains("refusing: ok"), "{}", run.stdout);
    let got = good.received();
    assert_eq!(got.len(), 4);
    assert!(got[0].body["id"].as_str().unwrap().starts_with("exp-test-"));
    // Each sink gets one window: its open, then its closed, under one id.
    let statuses: Vec<&str> = got
        .iter()
        .map(|r| r.body["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["open", "closed", "open", "closed"]);
    assert_eq!(got[0].body["id"], got[1].body["id"]);

    let bad = ScriptedServer::start(&[(403, &[], "forbidden")]);
    env.write(
        "bad.toml",
        format!("[[sinks]]\nkind = \"webhook\"\nurl = \"{}/\"\n", bad.url()),
    );
    let run = env.run(&["sink-test", "--config", "bad.toml"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.contains("FAILED") && run.stdout.contains("HTTP 403"),
        "{}",
        run.stdout
    );
}

#[test]
fn bad_sink_config_names_the_key() {
    let env = TestEnv::new();
    env.write(
        "a.toml",
        "[[sinks]]\nkind = \"webhook\"\nurl = \"ftp://x\"\n",
    );
    let run = env.run(&["sink-test", "--config", "a.toml"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("sinks[0].url"), "{}", run.stderr);
    env.write(
        "b.toml",
        "[[sinks]]\nkind = \"pagerduty\"\nrouting_key_env = \"NOPE_NOT_SET\"\n",
    );
    let run = env.run(&["sink-test", "--config", "b.toml"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("NOPE_NOT_SET"), "{}", run.stderr);
    env.write(
        "c.toml",
        "[[sinks]]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:1/\"\nretries = 3\n",
    );
    let run = env.run(&["sink-test", "--config", "c.toml"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("retries"), "{}", run.stderr);
}

/// A real Alertmanager on 127.0.0.1, clustering off, notifying a local webhook receiver.
pub(super) struct Alertmanager {
    child: std::process::Child,
    pub(super) url: String,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    pub(super) fn start(receiver: &str) -> Alertmanager {
        let binary = ["/usr/bin/prometheus-alertmanager", "/usr/bin/alertmanager"]
            .into_iter()
            .find(|b| Path::new(b).exists())
            .expect(
                "Prometheus Alertmanager is not installed: `apt-get install prometheus-alertmanager` \
                 (.ci/run does)",
            );
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "route:\n  receiver: hook\n  group_by: ['table']\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: {receiver}/am\n        send_resolved: true\n"
        );
        std::fs::write(dir.path().join("am.yml"), config).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(binary)
            .arg(format!(
                "--config.file={}",
                dir.path().join("am.yml").display()
            ))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start alertmanager");
        let url = format!("http://127.0.0.1:{port}");
        eventually(Duration::from_secs(15), || {
            match alertmanager_get(&url, "/-/ready") {
                Some((200, _)) => Ok(()),
                other => Err(format!("alertmanager not ready: {other:?}")),
            }
        });
        Alertmanager {
            child,
            url,
            _dir: dir,
        }
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn alertmanager_get(base: &str, path: &str) -> Option<(u16, String)> {
    let (status, body) = http_get(base, path)?;
    // Alertmanager answers small bodies; chunked encoding shows as hex lines around JSON.
    let body = if body.trim_start().starts_with('[') || body.trim_start().starts_with('{') {
        body
    } else {
        body.lines()
            .filter(|l| l.starts_with('[') || l.starts_with('{'))
            .collect()
    };
    Some((status, body))
}

/// The alerts Alertmanager lists now (active ones, by its default filters).
pub(super) fn alertmanager_alerts(am: &Alertmanager) -> Vec<Value> {
    let body = alertmanager_get(&am.url, "/api/v2/alerts").map(|(_, body)| body);
    let alerts: Value = serde_json::from_str(body.as_deref().unwrap_or("")).unwrap_or_default();
    alerts.as_array().cloned().unwrap_or_default()
}

/// Waits for the receiver's `resolved` notification of window `id`.
fn resolved_notification(receiver: &ScriptedServer, id: &Value) -> Received {
    eventually(Duration::from_secs(20), || {
        let received = receiver.received();
        received
            .iter()
            .find(|r| {
                r.body["status"] == "resolved" && r.body["alerts"][0]["labels"]["window_id"] == *id
            })
            .cloned()
            .ok_or(format!("no resolved notification: {received:#?}"))
    })
}

#[test]
fn a_real_alertmanager_shows_the_window_firing_and_notifies_its_resolution() {
    let receiver = ScriptedServer::start(&[]);
    let am = Alertmanager::start(&receiver.url());
    let env = TestEnv::new();
    env.write(
        "watch.toml",
        config_with(&format!(
            "[[sinks]]\nkind = \"alertmanager\"\nurl = \"{}\"\nlabels = {{ team = \"security\" }}\n[[sinks]]\nkind = \"jsonl\"\npath = \"-\"\n",
            am.url
        )),
    );
    let log = env.write("app.log", "");
    let watcher = Watcher::start(&env, &["app.log"]);
    make_window(Some(&watcher), &log);
    let open = watcher.wait_for("open", Duration::from_secs(10), |a| a["status"] == "open");

    // While open: listed by Alertmanager with our labels and startsAt = window_start.
    let listed = eventually(Duration::from_secs(10), || {
        let alerts = alertmanager_alerts(&am);
        alerts
            .iter()
            .find(|a| a["labels"]["alertname"] == "ExposureWindow")
            .cloned()
            .ok_or(format!("not listed by alertmanager: {alerts:?}"))
    });
    assert_eq!(listed["labels"]["table"], "pay");
    assert_eq!(listed["labels"]["severity"], "high");
    assert_eq!(listed["labels"]["team"], "security");
    assert_eq!(listed["labels"]["window_id"], open["id"]);
    let instant = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    assert_eq!(instant(&listed["startsAt"]), instant(&open["window_start"]));

    // On close: the receiver gets a `resolved` notification for it.
    let resolved = resolved_notification(&receiver, &open["id"]);
    assert_eq!(resolved.path, "/am");
    let ends = instant(&resolved.body["alerts"][0]["endsAt"]);
    assert_eq!(ends, instant(&open["window_end"]));
    let firing_first = receiver
        .received()
        .iter()
        .position(|r| r.body["status"] == "firing");
    assert!(firing_first.is_some(), "the firing notification came first");
    drop(watcher);
}

#[test]
fn events_dated_ahead_of_the_wall_clock_fire_and_resolve_in_a_real_alertmanager() {
    let receiver = ScriptedServer::start(&[]);
    let am = Alertmanager::start(&receiver.url());
    let env = TestEnv::new();
    env.write(
        "watch.toml",
        config_with(&format!(
            "[[sinks]]\nkind = \"alertmanager\"\nurl = \"{}\"\n[[sinks]]\nkind = \"jsonl\"\npath = \"-\"\n",
            am.url
        )),
    );
    let log = env.write("app.log", "");
    let watcher = Watcher::start(&env, &["app.log"]);
    // A producer whose clock is ten minutes ahead.
    let ahead = |principal: &str| {
        let ts = chrono::Utc::now() + chrono::Duration::minutes(10);
        format!(
            "{{\"ts\":\"{}\",\"principal\":\"{principal}\",\"table\":\"pay\",\"action\":\"SELECT\"}}\n",
            ts.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        )
    };
    watcher.append_and_wait(&log, ahead("svc-etl"));
    append(&log, ["eve", "mallory", "trudy"].map(ahead).concat());
    let open = watcher.wait_for("open", Duration::from_secs(10), |a| a["status"] == "open");
    let listed = |id: &Value| {
        alertmanager_alerts(&am)
            .into_iter()
            .find(|a| a["labels"]["window_id"] == *id)
    };
    // Accepted (not refused for startsAt > endsAt), and shown active.
    let firing = eventually(Duration::from_secs(10), || {
        listed(&open["id"]).ok_or_else(|| "not listed by alertmanager".to_string())
    });
    assert_eq!(firing["status"]["state"], "active");
    // The event times are kept in the annotations.
    let instant = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    assert_eq!(
        instant(&firing["annotations"]["window_start"]),
        instant(&open["window_start"])
    );
    // Closed: resolved in Alertmanager now, not when the skewed clock says.
    watcher.wait_for("closed", Duration::from_secs(10), |a| {
        a["status"] == "closed"
    });
    resolved_notification(&receiver, &open["id"]);
    assert!(listed(&open["id"]).is_none(), "still listed as active");
    let dead_letters = walk(&env.path("state"))
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("dead-letter"))
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
        .collect::<Vec<_>>();
    assert!(dead_letters.is_empty(), "dead-lettered: {dead_letters:?}");
    drop(watcher);
}

#[test]
fn sink_test_opens_and_resolves_one_incident_and_one_alertmanager_alert() {
    let receiver = ScriptedServer::start(&[]);
    let am = Alertmanager::start(&receiver.url());
    let pagerduty = ScriptedServer::start(&[]);
    let env = TestEnv::new();
    env.write(
        "sinks.toml",
        format!(
            "[[sinks]]\nkind = \"alertmanager\"\nurl = \"{}\"\n[[sinks]]\nkind = \"pagerduty\"\nurl = \"{}\"\nrouting_key_env = \"TEST_PD_KEY\"\n",
            am.url,
            pagerduty.url()
        ),
    );
    let run = Run::from_output(
        env.command(&["sink-test", "--config", "sinks.toml"])
            .env("TEST_PD_KEY", ROUTING_KEY)
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);

    // PagerDuty: a trigger and a resolve of the same incident.
    let events = pagerduty.received();
    let actions: Vec<&str> = events
        .iter()
        .map(|r| r.body["event_action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["trigger", "resolve"]);
    assert_eq!(events[0].body["dedup_key"], events[1].body["dedup_key"]);

    // Alertmanager: one firing and one resolved alert received, and since they are the same
    // alert, nothing of it is left firing.
    let (_, metrics) = http_get(&am.url, "/metrics").unwrap();
    let received = |status: &str| -> f64 {
        metrics
            .lines()
            .filter(|l| {
                l.starts_with("alertmanager_alerts_received_total")
                    && l.contains(&format!("status=\"{status}\""))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert_eq!((received("firing"), received("resolved")), (1.0, 1.0));
    let (_, body) = alertmanager_get(&am.url, "/api/v2/alerts").unwrap();
    let listed: Value = serde_json::from_str(&body).unwrap();
    let firing: Vec<&Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["labels"]["alertname"] == "ExposureWindow")
        .collect();
    assert!(firing.is_empty(), "left firing: {firing:#?}");
}

#[test]
fn alertmanager_firing_alerts_are_re_sent_and_resolutions_repeated() {
    let server = ScriptedServer::start(&[]);
    let env = TestEnv::new();
    env.write(
        "watch.toml",
        config_with(&format!(
            "[[sinks]]\nkind = \"alertmanager\"\nurl = \"{}\"\nresend_every = \"1s\"\nresolved_for = \"3s\"\n",
            server.url()
        ))
        .replace("close_after = \"2s\"", "close_after = \"4s\""),
    );
    let log = env.write("app.log", "");
    let watcher = Watcher::start(&env, &["app.log"]);
    make_window(Some(&watcher), &log);
    // quiet 4s + lateness 1s: about five seconds firing, then three seconds of resolutions.
    let resolved_twice = |got: &[Received]| {
        let Some(last) = got.last() else {
            return false;
        };
        let window_end = &last.body[0]["annotations"]["window_end"];
        got.iter()
            .filter(|r| r.body[0]["endsAt"] == *window_end)
            .count()
            >= 2
    };
    eventually(Duration::from_secs(30), || {
        resolved_twice(&server.received())
            .then_some(())
            .ok_or("not resolved twice yet".to_string())
    });
    drop(watcher);
    let got = server.received();
    let ends: Vec<(Instant, String)> = got
        .iter()
        .map(|r| {
            assert_eq!(r.path, "/api/v2/alerts");
            let alert = &r.body[0];
            assert_eq!(alert["labels"]["alertname"], "ExposureWindow");
            (r.at, alert["endsAt"].as_str().unwrap().to_string())
        })
        .collect();
    let window_end = &got.last().unwrap().body[0]["annotations"]["window_end"];
    let firing = ends.iter().filter(|(_, e)| e != window_end).count();
    let resolved = ends.iter().filter(|(_, e)| e == window_end).count();
    assert!(firing >= 3, "firing sent {firing} times: {ends:?}");
    assert!(resolved >= 2, "resolution sent {resolved} times: {ends:?}");
    // Never a firing alert after the first resolution.
    let first_resolved = ends.iter().position(|(_, e)| e == window_end).unwrap();
    assert!(ends[first_resolved..].iter().all(|(_, e)| e == window_end));
}

/// A watch of `app.log` delivering to a real Alertmanager, a local PagerDuty stand-in and
/// stdout.
struct Paged {
    // Dropped first: the watcher, then its receivers.
    watcher: Watcher,
    log: std::path::PathBuf,
    am: Alertmanager,
    pagerduty: ScriptedServer,
    _receiver: ScriptedServer,
    _env: TestEnv,
}

impl Paged {
    fn start() -> Paged {
        let receiver = ScriptedServer::start(&[]);
        let am = Alertmanager::start(&receiver.url());
        let pagerduty = ScriptedServer::start(&[]);
        let env = TestEnv::new();
        env.write(
            "watch.toml",
            config_with(&format!(
                "[[sinks]]\nkind = \"alertmanager\"\nurl = \"{}\"\n[[sinks]]\nkind = \"pagerduty\"\nurl = \"{}\"\nrouting_key_env = \"TEST_PD_KEY\"\n[[sinks]]\nkind = \"jsonl\"\npath = \"-\"\n",
                am.url,
                pagerduty.url()
            )),
        );
        let log = env.write("app.log", "");
        let watcher = Watcher::start_env(&env, &["app.log"], &[("TEST_PD_KEY", ROUTING_KEY)]);
        Paged {
            watcher,
            log,
            am,
            pagerduty,
            _receiver: receiver,
            _env: env,
        }
    }
}

/// The alert Alertmanager lists under `alertname`, once it does.
fn listed_as(am: &Alertmanager, alertname: &str) -> Value {
    eventually(Duration::from_secs(10), || {
        let alerts = alertmanager_alerts(am);
        alerts
            .iter()
            .find(|a| a["labels"]["alertname"] == alertname)
            .cloned()
            .ok_or(format!("no {alertname}: {alerts:?}"))
    })
}

/// A canonical permission change on `pay`, dated now.
fn change_line(action: &str) -> String {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    format!(
        "{{\"ts\":\"{now}\",\"principal\":\"dba\",\"table\":\"pay\",\"action\":\"{action}\",\"grantee\":\"PUBLIC\",\"privilege\":\"SELECT\"}}\n"
    )
}

#[test]
fn grant_alerts_and_reverts_reach_a_real_alertmanager_and_pagerduty() {
    let Paged {
        watcher,
        log,
        am,
        pagerduty,
        _receiver,
        _env,
    } = Paged::start();
    append(&log, change_line("GRANT"));
    let grant = watcher.wait_for("grant", Duration::from_secs(10), |a| a["status"] == "grant");
    // Shown by Alertmanager as its own alert, before anyone read.
    let listed = listed_as(&am, "ExposureGrant");
    assert_eq!(listed["labels"]["table"], "pay");
    assert_eq!(listed["labels"]["severity"], "critical");
    assert_eq!(listed["labels"]["window_id"], grant["id"]);
    assert!(
        listed["annotations"]["change"]
            .as_str()
            .unwrap()
            .contains("SELECT on pay to PUBLIC by dba"),
        "{listed}"
    );

    make_window(Some(&watcher), &log);
    let closed = watcher.wait_for("closed", Duration::from_secs(15), |a| {
        a["status"] == "closed"
    });
    assert_eq!(closed["cause"]["grantee"], "PUBLIC");
    // Resolved in Alertmanager (its notification waits for the grant alert of the same table,
    // grouped with it: the API tells).
    let window_listed = |id: &Value| {
        alertmanager_alerts(&am)
            .into_iter()
            .any(|a| a["labels"]["window_id"] == *id)
    };
    eventually(Duration::from_secs(10), || {
        (!window_listed(&closed["id"]))
            .then_some(())
            .ok_or("the closed window is still active".to_string())
    });
    // The revoke after the close: an `update` of the closed window, resolved everywhere.
    append(&log, change_line("REVOKE"));
    let update = watcher.wait_for("update", Duration::from_secs(10), |a| {
        a["status"] == "update"
    });
    assert_eq!(update["id"], closed["id"]);
    assert!(update["exposed_until"].is_string(), "{update}");
    assert_eq!(watcher.metric("permission_changes_total"), Some(2.0));
    let events = eventually(Duration::from_secs(10), || {
        let got = pagerduty.received();
        (got.len() >= 4)
            .then_some(got)
            .ok_or("fewer than 4 PagerDuty events".to_string())
    });
    for event in &events {
        assert_valid_pagerduty_event(&event.body);
    }
    let actions: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e.body["event_action"].as_str().unwrap(),
                e.body["payload"]["class"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("trigger", "exposure_grant"),
            ("trigger", "exposure_window"),
            ("resolve", "exposure_window"),
            ("resolve", "exposure_window"),
        ]
    );
    assert_eq!(
        events[3].body["payload"]["custom_details"]["exposed_until"],
        update["exposed_until"]
    );
    // Alertmanager keeps the window resolved, once the update is delivered to it.
    eventually(Duration::from_secs(10), || {
        let pending = watcher.metric("sink_pending{sink=\"alertmanager\"}");
        (pending == Some(0.0))
            .then_some(())
            .ok_or(format!("{pending:?} pending for Alertmanager"))
    });
    assert!(!window_listed(&closed["id"]), "the window fires again");
    drop(watcher);
}

#[test]
fn slack_gets_a_readable_message_per_alert_through_rate_limits() {
    // Slack answers 429 with Retry-After when rate limited, 200 `ok` otherwise.
    let slack = ScriptedServer::start(&[
        (429, &[("Retry-After", "1")], "rate_limited"),
        (200, &[], "ok"),
        (200, &[], "ok"),
        (200, &[], "ok"),
    ]);
    let env = TestEnv::new();
    env.write(
        "watch.toml",
        config_with(
            "[[sinks]]\nkind = \"slack\"\nurl_env = \"TEST_SLACK_URL\"\nretry_initial = \"50ms\"\n",
        ),
    );
    let url = format!("{}/services/T000/B000/secret-token-1234", slack.url());
    let log = env.write("app.log", "");
    let watcher = Watcher::start_env(&env, &["app.log"], &[("TEST_SLACK_URL", &url)]);
    append(&log, change_line("GRANT"));
    make_window(Some(&watcher), &log);
    let got = slack.wait_for(4, Duration::from_secs(15));
    let statuses: Vec<u16> = got.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 200, 200, 200]);
    assert!(
        got[1].at.duration_since(got[0].at) >= Duration::from_millis(900),
        "Retry-After honoured"
    );
    let texts: Vec<&str> = got[1..]
        .iter()
        .map(|r| r.body["text"].as_str().unwrap())
        .collect();
    assert!(
        texts[0].starts_with(":warning: Read granted to PUBLIC on `pay`"),
        "{texts:?}"
    );
    assert!(
        texts[1].starts_with(":rotating_light: Exposure window opened on `pay`"),
        "{texts:?}"
    );
    assert!(
        texts[2].starts_with(":white_check_mark: Exposure window closed on `pay`"),
        "{texts:?}"
    );
    for r in &got[1..] {
        assert_eq!(r.path, "/services/T000/B000/secret-token-1234");
        let blocks = r.body["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["type"], "section");
        assert_eq!(blocks[0]["text"]["type"], "mrkdwn");
        assert!(blocks[0]["text"]["text"].as_str().unwrap().chars().count() <= 3000);
        assert_eq!(blocks[1]["type"], "context");
    }
    let open = got[2].body["blocks"][0]["text"]["text"].as_str().unwrap();
    assert!(open.contains("*Who:* eve, mallory, trudy"), "{open}");
    assert!(
        open.contains("*Opened by* SELECT on pay to PUBLIC by dba"),
        "{open}"
    );
    let (code, lines) = watcher.stop();
    assert_eq!(code, 0);
    // The webhook URL is a secret: never logged, never stored.
    assert!(lines.iter().all(|l| !l.contains("secret-token-1234")));
    for entry in walk(&env.path("state")) {
        let text = std::fs::read_to_string(&entry).unwrap_or_default();
        assert!(
            !text.contains("secret-token-1234"),
            "{} holds it",
            entry.display()
        );
    }
}

#[test]
fn a_webhook_with_format_ocsf_receives_detection_findings() {
    let server = ScriptedServer::start(&[]);
    let env = TestEnv::new();
    env.write(
        "watch.toml",
        config_with(&format!(
            "[[sinks]]\nkind = \"webhook\"\nurl = \"{}/siem\"\nformat = \"ocsf\"\n",
            server.url()
        )),
    );
    let log = env.write("app.log", "");
    let watcher = Watcher::start(&env, &["app.log"]);
    make_window(Some(&watcher), &log);
    let got = server.wait_for(2, Duration::from_secs(15));
    assert_eq!(got[0].body["class_uid"], 2004);
    assert_eq!(got[0].body["type_uid"], 200401);
    assert_eq!(got[1].body["type_uid"], 200403);
    assert_eq!(
        got[0].body["finding_info"]["uid"],
        got[1].body["finding_info"]["uid"]
    );
    assert_eq!(got[0].body["metadata"]["version"], "1.7.0");
    let raw: Value = serde_json::from_str(got[1].body["raw_data"].as_str().unwrap()).unwrap();
    assert_eq!(raw["status"], "closed");
    drop(watcher);
}

/// A window wider than a sink's `max_principals`: the webhook gets the first ones and the
/// count left out, stdout (the JSON-lines output) gets every principal.
#[test]
fn a_wide_window_fits_its_receiver_and_the_jsonl_output_keeps_every_principal() {
    let server = ScriptedServer::start(&[]);
    let env = TestEnv::new();
    env.write(
        "watch.toml",
        config_with(&format!(
            "[[sinks]]\nkind = \"webhook\"\nurl = \"{}/\"\nmax_principals = 40\n\n[[sinks]]\nkind = \"jsonl\"\npath = \"-\"\n",
            server.url()
        )),
    );
    let log = env.write("app.log", "");
    let watcher = Watcher::start(&env, &["app.log"]);
    watcher.append_and_wait(&log, read_line("svc-etl", "pay"));
    let mut reads = String::new();
    for p in 0..150 {
        reads.push_str(&read_line(&format!("user-{p:03}"), "pay"));
    }
    append(&log, reads);
    let got = server.wait_for(2, Duration::from_secs(15));
    let closed = got.iter().find(|r| r.body["status"] == "closed").unwrap();
    assert_eq!(closed.body["principals"].as_array().unwrap().len(), 40);
    assert_eq!(closed.body["principals_truncated"], 110);
    assert_eq!(closed.body["novel_principals"], 150);
    let whole = watcher.wait_for("closed on stdout", Duration::from_secs(15), |a| {
        a["status"] == "closed"
    });
    assert_eq!(whole["principals"].as_array().unwrap().len(), 150);
    assert!(whole.get("principals_truncated").is_none());
    drop(watcher);
}

/// Revert verification live: read granted on `pay` to PUBLIC, eve reads through it, the grant
/// is revoked, eve reads again — `still_readable`, paged through a real Alertmanager and
/// PagerDuty (a local stand-in), once however often she reads.
#[test]
fn a_read_after_the_revoke_pages_still_readable_through_alertmanager_and_pagerduty() {
    let Paged {
        watcher,
        log,
        am,
        pagerduty,
        _receiver,
        _env,
    } = Paged::start();
    watcher.append_and_wait(&log, read_line("svc-etl", "pay"));
    watcher.append_and_wait(&log, change_line("GRANT"));
    watcher.append_and_wait(&log, read_line("eve", "pay"));
    watcher.append_and_wait(&log, change_line("REVOKE"));
    std::thread::sleep(Duration::from_millis(20));
    append(
        &log,
        [read_line("eve", "pay"), read_line("eve", "pay")].concat(),
    );
    let still = watcher.wait_for("still_readable", Duration::from_secs(10), |a| {
        a["status"] == "still_readable"
    });
    assert_eq!(still["table"], "pay");
    assert_eq!(still["principals"][0]["principal"], "eve");
    assert_eq!(still["change"]["grantee"], "PUBLIC");
    assert!(still["exposed_until"].is_string(), "{still}");
    assert!(still.get("standing").is_none(), "no other grant: {still}");
    let listed = listed_as(&am, "ExposureStillReadable");
    assert_eq!(listed["labels"]["window_id"], still["id"]);
    assert_eq!(listed["labels"]["table"], "pay");
    let paged = eventually(Duration::from_secs(10), || {
        let got = pagerduty.received();
        got.iter()
            .find(|r| r.body["payload"]["class"] == "exposure_still_readable")
            .cloned()
            .ok_or(format!("not paged: {got:#?}"))
    });
    assert_valid_pagerduty_event(&paged.body);
    assert_eq!(paged.body["event_action"], "trigger");
    assert_eq!(paged.body["dedup_key"], still["id"]);
    let summary = paged.body["payload"]["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("Still readable: eve read pay"),
        "{summary}"
    );
    // Once per principal, table and grant.
    std::thread::sleep(Duration::from_secs(1));
    let count = watcher
        .alerts()
        .iter()
        .filter(|a| a["status"] == "still_readable")
        .count();
    assert_eq!(count, 1);
    let (code, _) = watcher.stop();
    assert_eq!(code, 0);
}
