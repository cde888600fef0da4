//! Detection alone, once, on a generated archive: what `benches/detect.rs` measures, as one
//! run for a cache simulator, which counts cache misses per event where the machine's own
//! counters are not available (`perf stat` says "not supported" on this kind of machine):
//!
//! `cargo build --release --example detect_only && valgrind --tool=callgrind --cache-sim=yes
//! --toggle-collect='*detect_once*' target/release/examples/detect_only 200t 2000000`
//!
//! Arguments: the shape (`200t` or `100kt`, see `benches/synth`), the events.

#[path = "../benches/synth/mod.rs"]
mod synth;

use exposure::config::{Config, ConfigFile, DetectOverrides};

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "200t".into());
    let events: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    let Some((_, shape)) = synth::Shape::measured(events)
        .into_iter()
        .find(|(n, _)| *n == name)
    else {
        eprintln!("no shape {name}: 200t or 100kt");
        std::process::exit(2);
    };
    let config = Config::build(ConfigFile::default(), &DetectOverrides::default(), None)
        .expect("defaults are valid");
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("events.jsonl");
    let lake = dir.path().join("lake");
    synth::write_archive(&config, shape, &json, &lake);
    let reads = synth::PreInterned::from_archive(&config, &lake);
    let detector = reads.template.clone();
    let started = std::time::Instant::now();
    let alerts = reads.detect_once(detector);
    let elapsed = started.elapsed();
    println!(
        "{name}: {} events, {alerts} alerts, detection {:.3} s ({:.1} M events/s)",
        reads.events,
        elapsed.as_secs_f64(),
        reads.events as f64 / elapsed.as_secs_f64() / 1e6
    );
}
