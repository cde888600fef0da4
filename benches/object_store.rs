//! Replay from object storage versus the same files on local disk, in one run (a measurement
//! run by `cargo bench --bench object_store`; not criterion, since what is measured is the
//! binary against a running server).
//!
//! The synthetic log of `benches/synth` (`EXPOSURE_S3_EVENTS`, default 5 000 000 events over
//! 14 days) is archived with `exposure archive` into day folders of Parquet, and the same
//! files are uploaded to an S3-compatible server (moto's, the one the tests use) on 127.0.0.1,
//! pinned to CPU 1. Then, each `EXPOSURE_S3_RUNS` times (default 3), `exposure replay
//! --threads 1` pinned to CPU 0:
//!
//! - **disk**: the archive folder (in the page cache after the first run);
//! - **s3**: `s3://bench/archive/` — footers once, row groups by parallel range requests;
//!
//! and the time to the first alert dated on or after 2026-03-16 (`--learn 1d`), from the
//! store, reading everything versus `--since 2026-03-15` (day folders before it not read).
//! Events/s is the archive's events over the run's wall time.

#[path = "synth/mod.rs"]
mod synth;

use exposure::config::{Config, ConfigFile, DetectOverrides};
use object_store::ObjectStoreExt;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    endpoint: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const ENV: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", "bench"),
    ("AWS_SECRET_ACCESS_KEY", "bench-secret"),
    ("AWS_REGION", "us-east-1"),
    ("AWS_ALLOW_HTTP", "true"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
];

fn start_server() -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("taskset")
        .args(["-c", "1", "python3", "-m", "moto.server"])
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto's server (bash scripts/install-test-deps.sh installs it)");
    let addr = format!("127.0.0.1:{port}");
    let start = Instant::now();
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "moto did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    Server {
        child,
        endpoint: format!("http://{addr}"),
    }
}

fn upload(server: &Server, dir: &Path) -> u64 {
    use std::io::{Read, Write};
    let addr = server.endpoint.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "PUT /bench HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let mut builder = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name("bench")
        .with_endpoint(&server.endpoint);
    for (key, value) in ENV {
        if let Ok(key) = key.to_ascii_lowercase().parse() {
            builder = builder.with_config(key, *value);
        }
    }
    let store = builder.build().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut bytes = 0;
    for entry in walkdir::WalkDir::new(dir) {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            let relative = entry.path().strip_prefix(dir).unwrap().to_string_lossy();
            let data = std::fs::read(entry.path()).unwrap();
            bytes += data.len() as u64;
            let key = object_store::path::Path::from(format!("archive/{relative}"));
            runtime.block_on(store.put(&key, data.into())).unwrap();
        }
    }
    bytes
}

fn replay(server: &Server, dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new("taskset");
    command
        .args(["-c", "0", env!("CARGO_BIN_EXE_exposure"), "replay"])
        .args(["--threads", "1", "--no-progress", "-q"])
        .args(args)
        .current_dir(dir)
        .envs(ENV.iter().copied())
        .env("AWS_ENDPOINT_URL", &server.endpoint)
        .stderr(Stdio::inherit());
    command
}

/// Wall seconds of a whole replay, and its peak resident memory in MiB (VmHWM, read every
/// 10 ms while it runs).
fn timed(server: &Server, dir: &Path, args: &[&str]) -> (f64, f64) {
    let start = Instant::now();
    let mut child = replay(server, dir, args)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut peak_kib = 0.0f64;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
            && let Some(kib) = text
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        {
            peak_kib = peak_kib.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "replay {args:?} failed");
    (start.elapsed().as_secs_f64(), peak_kib / 1024.0)
}

/// Seconds until the first alert dated on or after `day` is written.
fn first_alert(server: &Server, dir: &Path, args: &[&str], day: &str) -> f64 {
    let start = Instant::now();
    let mut child = replay(server, dir, args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut at = None;
    for line in stdout.lines() {
        let line = line.unwrap();
        let alert: serde_json::Value = serde_json::from_str(&line).unwrap();
        if alert["as_of"].as_str().unwrap_or_default() >= day {
            at = Some(start.elapsed().as_secs_f64());
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    at.unwrap_or_else(|| panic!("no alert on or after {day} with {args:?}"))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let events = synth::env_u64("EXPOSURE_S3_EVENTS", 5_000_000);
    let runs = synth::env_u64("EXPOSURE_S3_RUNS", 3) as usize;
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("events.jsonl");
    let config = Config::build(ConfigFile::default(), &DetectOverrides::default(), None).unwrap();
    synth::write_archive(
        &config,
        synth::Shape::new(events),
        &json,
        &dir.path().join("archive"),
    );
    std::fs::remove_file(&json).unwrap();
    let server = start_server();
    let bytes = upload(&server, &dir.path().join("archive"));
    println!(
        "{events} events, {:.1} MiB of Parquet in {} day folders",
        bytes as f64 / (1 << 20) as f64,
        std::fs::read_dir(dir.path().join("archive"))
            .unwrap()
            .count()
    );
    let (mut disk, mut s3) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let (d, d_mib) = timed(&server, dir.path(), &["archive/"]);
        let (s, s_mib) = timed(&server, dir.path(), &["s3://bench/archive/"]);
        println!(
            "  run {run}: disk {:.0} events/s (peak {d_mib:.0} MiB), s3 {:.0} events/s (peak {s_mib:.0} MiB)",
            events as f64 / d,
            events as f64 / s
        );
        disk.push(events as f64 / d);
        s3.push(events as f64 / s);
    }
    let (disk, s3) = (median(disk), median(s3));
    println!(
        "replay, 1 thread: disk {disk:.0} events/s, s3 {s3:.0} events/s: s3 is {:.0} % of disk",
        100.0 * s3 / disk
    );
    let day = "2026-03-16";
    let learn = ["--learn", "1d"];
    let (mut whole, mut pruned) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let mut args = learn.to_vec();
        args.push("s3://bench/archive/");
        whole.push(first_alert(&server, dir.path(), &args, day));
        let mut args = learn.to_vec();
        args.extend(["--since", "2026-03-15", "s3://bench/archive/"]);
        pruned.push(first_alert(&server, dir.path(), &args, day));
    }
    println!(
        "first alert on or after {day} from s3: {:.2} s reading everything, {:.2} s with --since 2026-03-15",
        median(whole),
        median(pruned)
    );
}
