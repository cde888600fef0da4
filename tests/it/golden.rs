//! Golden output on a generated data set of a million events (the bench generator, fixed seed,
//! 200 tables, thousands of windows): the alerts of `replay` over JSON lines and over the
//! Parquet archive built from them are byte-identical to the committed digest. Any change to
//! detection, decoding or ordering that alters one byte of one alert fails here; a change that
//! is meant to alter them updates `tests/data/golden/` and says why in docs/.

#[path = "../../benches/synth/mod.rs"]
pub(crate) mod synth;

use super::{TestEnv, repo};
use sha2::{Digest, Sha256};

fn digest(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn a_million_generated_events_give_the_golden_alerts_from_json_lines_and_parquet() {
    let env = TestEnv::new();
    let mut log = Vec::new();
    synth::write_jsonl(synth::Shape::new(1_000_000), &mut log).unwrap();
    env.write("synth.jsonl", &log);
    drop(log);
    let golden = std::fs::read_to_string(repo("tests/data/golden/synth1m.alerts.sha256")).unwrap();

    let json = env.run(&["replay", "--no-progress", "synth.jsonl"]);
    assert_eq!(json.code, 0, "{}", json.stderr);
    assert_eq!(json.stdout.lines().count(), 7804, "{}", json.stderr);
    assert_eq!(digest(&json.stdout), golden.trim(), "JSON-lines replay");

    let archive = env.run(&["archive", "synth.jsonl", "--out", "archive"]);
    assert_eq!(archive.code, 0, "{}", archive.stderr);
    let parquet = env.run(&["replay", "--no-progress", "archive"]);
    assert_eq!(parquet.code, 0, "{}", parquet.stderr);
    assert_eq!(digest(&parquet.stdout), golden.trim(), "Parquet replay");
}
