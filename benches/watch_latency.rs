//! Live alert latency of `exposure watch` under load (a measurement, run by `cargo bench
//! --bench watch_latency`; not criterion, since what is measured is a whole running service).
//!
//! A writer appends a background load of normal reads (allowed service principals on 50
//! tables, `EXPOSURE_LOAD_EPS` events/s, default 100 000) to a followed file, and every 250 ms
//! a probe on one of 20 probe tables: two new readers, then the third that crosses
//! `min_principals`. (`close_after` is 1s, so each probe's window has closed before its table is
//! probed again, 5 s later: state stays bounded as it would in production.)
//! The latency of a probe is from the `write` of that third line until the watcher's `open`
//! alert for the table is read from its stdout. The default `lateness` (5m) is used, so the
//! figure shows the per-source watermark at work. Reports p50/p99/max latency, the load
//! reached, and the watcher's resident memory over the run (it must stay flat).
//!
//! `EXPOSURE_LATENCY_SECS` sets the duration (default 30; docs/performance.md's memory figure is from
//! 600).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    // `cargo bench` passes `--bench`; a filter that names something else skips this.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args
        .iter()
        .any(|a| !a.starts_with('-') && !"watch_latency".contains(a.as_str()))
    {
        return;
    }
    let seconds = env_u64("EXPOSURE_LATENCY_SECS", 30);
    let load_eps = env_u64("EXPOSURE_LOAD_EPS", 100_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("access.jsonl");
    std::fs::write(&log, "").unwrap();
    std::fs::write(
        dir.path().join("bench.toml"),
        "[detect]\nlearn = \"0s\"\nmin_principals = 3\nspan = \"10m\"\nclose_after = \"1s\"\nallow = [\"svc-*\"]\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_exposure"))
        .args([
            "watch",
            "--config",
            "bench.toml",
            "--state-dir",
            "state",
            "--log-level",
            "warn",
            "access.jsonl",
        ])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start exposure watch");
    let pid = child.id();
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let stdout = child.stdout.take().unwrap();
    let reader = {
        let (sent, latencies) = (Arc::clone(&sent), Arc::clone(&latencies));
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let seen = Instant::now();
                let alert: serde_json::Value = serde_json::from_str(&line).unwrap();
                if alert["status"] != "open" {
                    continue;
                }
                let table = alert["table"].as_str().unwrap_or_default();
                if let Some(at) = sent.lock().unwrap().remove(table) {
                    latencies.lock().unwrap().push(seen - at);
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(500));

    let stop = Arc::new(AtomicBool::new(false));
    let rss: Arc<Mutex<Vec<(f64, u64)>>> = Arc::default();
    let sampler = {
        let (stop, rss) = (Arc::clone(&stop), Arc::clone(&rss));
        std::thread::spawn(move || {
            let start = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                if let Some(kib) = rss_kib(pid) {
                    rss.lock()
                        .unwrap()
                        .push((start.elapsed().as_secs_f64(), kib));
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        })
    };

    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    let start = Instant::now();
    let tick = Duration::from_millis(10);
    let per_tick = (load_eps / 100).max(1);
    let (mut written, mut probes, mut n) = (0u64, 0u64, 0u64);
    let mut next_probe = start + Duration::from_millis(250);
    let mut buf = String::with_capacity(per_tick as usize * 100);
    let line = |buf: &mut String, principal: &str, table: &str| {
        let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        buf.push_str(&format!(
            "{{\"ts\":\"{ts}\",\"principal\":\"{principal}\",\"table\":\"{table}\",\"action\":\"SELECT\"}}\n"
        ));
    };
    while start.elapsed() < Duration::from_secs(seconds) {
        let due = start + tick * (written / per_tick) as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        buf.clear();
        for _ in 0..per_tick {
            n += 1;
            let principal = format!("svc-{}", n % 200);
            let table = format!("db.table_{}", n % 50);
            line(&mut buf, &principal, &table);
        }
        file.write_all(buf.as_bytes()).unwrap();
        written += per_tick;
        if Instant::now() >= next_probe {
            probes += 1;
            let table = format!("probe.t{}", probes % 20);
            buf.clear();
            line(&mut buf, &format!("novel-{probes}-a"), &table);
            line(&mut buf, &format!("novel-{probes}-b"), &table);
            file.write_all(buf.as_bytes()).unwrap();
            buf.clear();
            line(&mut buf, &format!("novel-{probes}-c"), &table);
            sent.lock().unwrap().insert(table, Instant::now());
            file.write_all(buf.as_bytes()).unwrap();
            next_probe += Duration::from_millis(250);
        }
    }
    let elapsed = start.elapsed();
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = child.wait();
    reader.join().unwrap();

    let mut latencies = latencies.lock().unwrap().clone();
    latencies.sort();
    let missing = sent.lock().unwrap().len();
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1]
    };
    println!(
        "watch_latency: {} probes ({missing} without an alert), load {:.0} events/s for {:.0} s",
        latencies.len(),
        written as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    if !latencies.is_empty() {
        println!(
            "  append -> open alert: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            pct(0.50).as_secs_f64() * 1e3,
            pct(0.99).as_secs_f64() * 1e3,
            latencies.last().unwrap().as_secs_f64() * 1e3
        );
    }
    let rss = rss.lock().unwrap();
    if let (Some(first), Some(last)) = (rss.get(rss.len() / 4), rss.last()) {
        let peak = rss.iter().map(|(_, k)| *k).max().unwrap_or(0);
        println!(
            "  watcher RSS: {:.1} MiB at {:.0} s, {:.1} MiB at {:.0} s, peak {:.1} MiB",
            first.1 as f64 / 1024.0,
            first.0,
            last.1 as f64 / 1024.0,
            last.0,
            peak as f64 / 1024.0
        );
    }
}
