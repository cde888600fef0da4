//! Forensic results that cannot be silently partial: an archive is whole or says it is not
//! (its manifest, written last), a day is never archived twice, and `kill -9` at any moment of
//! `archive` or of `replay --shard` leaves either what replay and merge refuse, naming it, or
//! the uninterrupted run's alerts. `EXPOSURE_EVIDENCE_KILLS` sets the kills per loop (CI runs
//! the default).

use crate::TestEnv;
use crate::shard::write_exports;
use crate::util::Lcg;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn kills() -> usize {
    std::env::var("EXPOSURE_EVIDENCE_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(6)
}

/// The alerts of `replay ARGS`, asserting it succeeded.
fn alerts(env: &TestEnv, args: &[&str]) -> String {
    let run = env.run(&[&["replay"][..], args].concat());
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.stdout
}

/// Runs `args` and kills it with SIGKILL after `after` (or lets it end first).
fn killed_after(env: &TestEnv, args: &[&str], after: Duration) {
    let mut child = env
        .command(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    if crate::util::run_for(&mut child, after).is_some() {
        return;
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// How long `args` takes uninterrupted.
fn timed(env: &TestEnv, args: &[&str]) -> Duration {
    let started = Instant::now();
    let run = env.run(args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    started.elapsed()
}

#[test]
fn an_archive_is_whole_or_refused_and_never_holds_a_day_twice() {
    let env = TestEnv::new();
    let inputs = write_exports(&env);
    let logs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let whole = alerts(&env, &logs);
    let archive = |extra: &[&str]| {
        let mut args = vec!["archive", "-q", "--out", "arch"];
        args.extend(extra);
        args.extend(&logs);
        env.run(&args)
    };
    assert_eq!(archive(&[]).code, 0);
    assert_eq!(
        alerts(&env, &["arch"]),
        whole,
        "the archive replays as its logs"
    );

    // Archiving again into it: refused, nothing added.
    archive(&[]).expect(1, "arch: not empty");
    assert_eq!(alerts(&env, &["arch"]), whole);
    // --replace: the same archive again.
    assert_eq!(archive(&["--replace"]).code, 0);
    assert_eq!(alerts(&env, &["arch"]), whole);
    archive(&["--resume"]).expect(1, "already complete");

    // Damage after the fact: a part from elsewhere, a part cut short, a part deleted.
    let parts: Vec<std::path::PathBuf> = walk(&env.path("arch"));
    let day = parts[0].parent().unwrap().to_path_buf();
    std::fs::copy(&parts[0], day.join("part-00009.parquet")).unwrap();
    let run = env.run(&["replay", "arch"]);
    run.expect(1, "part-00009.parquet is not in the archive's manifest");
    assert_eq!(run.stdout, whole, "the stray part is not read");
    std::fs::remove_file(day.join("part-00009.parquet")).unwrap();
    std::fs::remove_file(&parts[1]).unwrap();
    let run = env.run(&["replay", "arch"]);
    run.expect(1, "is in the archive's manifest but missing");
    // The manifest gone (a copy that lost it): nothing of it is read, said loudly.
    assert_eq!(archive(&["--replace"]).code, 0);
    std::fs::remove_file(env.path("arch/_manifest.json")).unwrap();
    let run = env.run(&["replay", "arch"]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("an archive without its manifest"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());
    // An archive of a release before manifests is sealed as it is, by whoever vouches for it.
    let sealed = env.run(&["archive", "--seal", "--out", "arch"]);
    assert_eq!(sealed.code, 0, "{}", sealed.stderr);
    assert!(sealed.stderr.contains("sealed arch:"), "{}", sealed.stderr);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.path("arch/_manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["sealed"], true);
    assert!(
        manifest["sealed_by"]
            .as_str()
            .is_some_and(|b| !b.is_empty())
    );
    assert_eq!(alerts(&env, &["arch"]), whole);
    env.run(&["archive", "--seal", "--out", "arch"])
        .expect(1, "nothing to seal");

    // Killed at any moment: refused until resumed, then the uninterrupted run's alerts.
    let full = timed(
        &env,
        &[&["archive", "-q", "--out", "timed"][..], &logs].concat(),
    );
    let mut rng = Lcg(38);
    for kill in 0..kills() {
        let _ = std::fs::remove_dir_all(env.path("arch"));
        let after = Duration::from_micros(rng.below(full.as_micros() as u64 + 1));
        killed_after(
            &env,
            &[&["archive", "-q", "--out", "arch"][..], &logs].concat(),
            after,
        );
        let run = env.run(&["replay", "arch"]);
        let has_parts = !walk(&env.path("arch")).is_empty();
        eprintln!(
            "archive kill {kill} at {after:?} of {full:?}: manifest {}, parts {has_parts}",
            env.path("arch/_manifest.json").exists()
        );
        if env.path("arch/_manifest.json").exists() {
            assert_eq!(
                (run.code, &run.stdout),
                (0, &whole),
                "kill {kill} after the end"
            );
            continue;
        }
        assert_ne!(run.code, 0, "kill {kill} at {after:?}: {}", run.stderr);
        if has_parts {
            assert!(
                run.stderr.contains("did not finish"),
                "kill {kill} at {after:?}: {}",
                run.stderr
            );
            archive(&[]).expect(1, "not empty");
        }
        let resumed = archive(&["--resume"]);
        if resumed.code != 0 {
            // Killed before its progress journal was written: nothing to resume.
            assert!(
                resumed.stderr.contains("no interrupted archive"),
                "{}",
                resumed.stderr
            );
            assert!(!has_parts);
            continue;
        }
        assert_eq!(
            alerts(&env, &["arch"]),
            whole,
            "kill {kill} at {after:?}, resumed"
        );
    }
}

/// The part files under `dir`, sorted.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut parts = Vec::new();
    let Ok(days) = std::fs::read_dir(dir) else {
        return parts;
    };
    for day in days {
        let day = day.unwrap().path();
        if day.is_dir() {
            for part in std::fs::read_dir(&day).unwrap() {
                let part = part.unwrap().path();
                if part.extension().is_some_and(|e| e == "parquet") {
                    parts.push(part);
                }
            }
        }
    }
    parts.sort();
    parts
}

#[test]
fn a_killed_shard_is_refused_by_merge_never_merged_as_whole() {
    let env = TestEnv::new();
    let inputs = write_exports(&env);
    let logs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let whole = alerts(&env, &logs);
    fn shard<'a>(k: &'a str, out: &'a str, logs: &[&'a str]) -> Vec<&'a str> {
        [&["replay", "-q", "--shard", k, "--out", out][..], logs].concat()
    }
    let full = timed(&env, &shard("2/2", "s2.jsonl", &logs));
    let mut rng = Lcg(39);
    for kill in 0..kills() {
        let _ = std::fs::remove_file(env.path("s1.jsonl"));
        let after = Duration::from_micros(rng.below(full.as_micros() as u64 + 1));
        killed_after(&env, &shard("1/2", "s1.jsonl", &logs), after);
        let merged = env.run(&["merge", "s1.jsonl", "s2.jsonl"]);
        eprintln!(
            "shard kill {kill} at {after:?} of {full:?}: merge exit {}",
            merged.code
        );
        if merged.code == 0 {
            assert_eq!(merged.stdout, whole, "kill {kill} at {after:?}");
        } else {
            assert_eq!(merged.code, 1, "{}", merged.stderr);
            assert!(
                [
                    "cannot read s1.jsonl",
                    "s1.jsonl: incomplete",
                    "s1.jsonl: empty"
                ]
                .iter()
                .any(|says| merged.stderr.contains(says)),
                "kill {kill} at {after:?}: {}",
                merged.stderr
            );
        }
    }
    // Written to a fifo (no file to rename), a killed shard leaves what it wrote so far.
    let status = std::process::Command::new("mkfifo")
        .arg(env.path("pipe"))
        .status()
        .unwrap();
    assert!(status.success());
    let reader = {
        let pipe = env.path("pipe");
        std::thread::spawn(move || std::fs::read(pipe).unwrap())
    };
    killed_after(&env, &shard("1/2", "pipe", &logs), full / 3);
    env.write("from-pipe.jsonl", reader.join().unwrap());
    let merged = env.run(&["merge", "from-pipe.jsonl", "s2.jsonl"]);
    assert!(
        merged.code == 0 && merged.stdout == whole || merged.code == 1,
        "{}",
        merged.stderr
    );
}
