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
//! 600). `EXPOSURE_BIN` runs another build of `exposure` instead (a previous release, to compare
//! the two in one sitting).
//!
//! The soak (`EXPOSURE_SOAK=1`): the alerts also go to a webhook (a receiver in this process)
//! that is down for the middle half of the run; afterwards every alert must reach it. Reports
//! how long the backlog took to drain, the outbox's peak size on disk and the RSS over the run.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
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

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Answers the webhook requests of one connection with 202, recording each alert's
/// `id:status`; once the receiver is down it drops the connection unanswered (a crash: a
/// kept-alive connection must not outlive the outage).
fn receive(mut stream: TcpStream, up: &AtomicBool, got: &Mutex<HashSet<String>>) {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let Some(head_end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
            match stream.read(&mut buf) {
                Ok(n) if n > 0 => data.extend_from_slice(&buf[..n]),
                _ => return,
            }
            continue;
        };
        let head = String::from_utf8_lossy(&data[..head_end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while data.len() < head_end + 4 + length {
            match stream.read(&mut buf) {
                Ok(n) if n > 0 => data.extend_from_slice(&buf[..n]),
                _ => return,
            }
        }
        if !up.load(Ordering::Relaxed) {
            return;
        }
        let body = &data[head_end + 4..head_end + 4 + length];
        if let Ok(alert) = serde_json::from_slice::<serde_json::Value>(body) {
            got.lock()
                .unwrap()
                .insert(format!("{}:{}", alert["id"], alert["status"]));
        }
        let _ = stream.write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n");
        data.drain(..head_end + 4 + length);
    }
}

/// The webhook receiver: listening on `port` while `up` says so (connections refused while
/// it is down), recording what it gets.
fn receiver(
    port: u16,
    up: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    got: Arc<Mutex<HashSet<String>>>,
) {
    while !stop.load(Ordering::Relaxed) {
        if !up.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the receiver");
        listener.set_nonblocking(true).unwrap();
        while up.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false).unwrap();
                    let (up, got) = (Arc::clone(&up), Arc::clone(&got));
                    std::thread::spawn(move || receive(stream, &up, &got));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }
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
    let soak = env_u64("EXPOSURE_SOAK", 0) == 1;
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = "[detect]\nlearn = \"0s\"\nmin_principals = 3\nspan = \"10m\"\nclose_after = \"1s\"\nallow = [\"svc-*\"]\n".to_string();
    if soak {
        config.push_str(&format!(
            "[[sinks]]\nkind = \"jsonl\"\npath = \"-\"\n[[sinks]]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{port}/\"\nretry_initial = \"100ms\"\nretry_max = \"2s\"\n"
        ));
    }
    std::fs::write(dir.path().join("bench.toml"), config).unwrap();
    let (receiver_up, receiver_stop) = (
        Arc::new(AtomicBool::new(true)),
        Arc::new(AtomicBool::new(false)),
    );
    let received: Arc<Mutex<HashSet<String>>> = Arc::default();
    let receiver_thread = soak.then(|| {
        let (up, stop, got) = (
            Arc::clone(&receiver_up),
            Arc::clone(&receiver_stop),
            Arc::clone(&received),
        );
        std::thread::spawn(move || receiver(port, up, stop, got))
    });
    let emitted: Arc<Mutex<HashSet<String>>> = Arc::default();
    // `EXPOSURE_BIN`: another build, to compare two side by side on the same machine.
    let bin =
        std::env::var("EXPOSURE_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_exposure").into());
    let mut child = Command::new(bin)
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
        let emitted = Arc::clone(&emitted);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let seen = Instant::now();
                let alert: serde_json::Value = serde_json::from_str(&line).unwrap();
                emitted
                    .lock()
                    .unwrap()
                    .insert(format!("{}:{}", alert["id"], alert["status"]));
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
    let outbox_peak = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampler = {
        let (stop, rss) = (Arc::clone(&stop), Arc::clone(&rss));
        let (outbox, outbox_peak) = (dir.path().join("state/outbox"), Arc::clone(&outbox_peak));
        std::thread::spawn(move || {
            let start = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                if let Some(kib) = rss_kib(pid) {
                    rss.lock()
                        .unwrap()
                        .push((start.elapsed().as_secs_f64(), kib));
                }
                outbox_peak.fetch_max(dir_bytes(&outbox), Ordering::Relaxed);
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
        if soak {
            // Down for the middle half of the run.
            let phase = start.elapsed().as_secs_f64() / seconds as f64;
            receiver_up.store(!(0.25..0.75).contains(&phase), Ordering::Relaxed);
        }
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
    let drained_in = soak.then(|| {
        receiver_up.store(true, Ordering::Relaxed);
        let waiting = Instant::now();
        while waiting.elapsed() < Duration::from_secs(300)
            && !emitted.lock().unwrap().is_subset(&received.lock().unwrap())
        {
            std::thread::sleep(Duration::from_millis(100));
        }
        waiting.elapsed()
    });
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
    if let Some(drained_in) = drained_in {
        receiver_stop.store(true, Ordering::Relaxed);
        if let Some(thread) = receiver_thread {
            thread.join().unwrap();
        }
        let (emitted, received) = (emitted.lock().unwrap(), received.lock().unwrap());
        println!(
            "  soak: webhook down for the middle half; {} of {} alerts delivered to it {:.1} s after the load ended; outbox peak {:.1} KiB on disk",
            emitted.intersection(&received).count(),
            emitted.len(),
            drained_in.as_secs_f64(),
            outbox_peak.load(Ordering::Relaxed) as f64 / 1024.0
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
