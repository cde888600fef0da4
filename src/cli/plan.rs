//! The command line's high layer for `replay`: the flags as parsed ([`super::args`]) become,
//! once, a validated and immutable description of the run ([`ReplayPlan`]): the configuration
//! with everything the flags add to it (shard, analysts' approvals), the inputs found, how to
//! read them, where the alerts go and in what form. The command body only carries it out.

use super::args::ReplayArgs;
use crate::config::Config;
use crate::detect::shard::Shard;
use crate::ocsf::AlertFormat;
use crate::replay::{Disorder, ReplayOptions};
use crate::report::Problems;
use crate::source::Input;
use std::io::{self, IsTerminal};
use std::path::PathBuf;

/// Everything a `replay` run does, decided before it starts.
#[derive(Debug)]
pub struct ReplayPlan {
    /// The configuration, shard and approvals included: nothing patches it later.
    pub config: Config,
    pub inputs: Vec<Input>,
    pub options: ReplayOptions,
    /// `--out`: a file written whole (or a device or fifo in place); `None`: stdout.
    pub out: Option<PathBuf>,
    /// `--shard`, with the digests its header records.
    pub shard: Option<ShardRun>,
    /// Alerts as OCSF Detection Findings instead of exposure's own JSON.
    pub ocsf: bool,
    /// `--quiet`: no summary.
    pub quiet: bool,
    /// `--no-sort`: events out of order beyond lateness are left out, and the exit code says so.
    pub refuse_disorder: bool,
}

/// A shard's run: which shard, and what its header says it was run on.
#[derive(Debug, Clone)]
pub struct ShardRun {
    pub shard: Shard,
    pub settings_digest: String,
    pub inputs_digest: String,
}

impl ReplayPlan {
    /// Validates `args` and builds the run: reads the configuration and the approvals, finds the
    /// inputs (problems naming them go to `problems`).
    pub fn new(args: &ReplayArgs, problems: &mut Problems) -> anyhow::Result<ReplayPlan> {
        args.time.check()?;
        let mut config = args.detect.config(Some(&args.alerts), args.time.from)?;
        config.detector.shard = args.shard;
        if let Some(dir) = &args.approvals {
            super::apply_approvals(&mut config, dir)?;
        }
        let config = config;
        let inputs = super::inputs_of(
            &args.paths,
            config.input.format,
            args.time.filter(),
            problems,
        )?;
        let shard = match args.shard {
            Some(shard) => Some(ShardRun {
                shard,
                settings_digest: super::settings_digest(args)?,
                inputs_digest: super::inputs_digest(&inputs),
            }),
            None => None,
        };
        let threads = args
            .threads
            .map(usize::from)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(64)));
        let options = ReplayOptions {
            strict: args.strict,
            threads,
            filter: args.time.filter(),
            progress: !args.no_progress && !args.verbosity.quiet && io::stderr().is_terminal(),
            keep_state: false,
            disorder: if args.no_sort {
                Disorder::Refuse
            } else {
                Disorder::Sort {
                    memory: args.sort_memory,
                }
            },
        };
        Ok(ReplayPlan {
            config,
            inputs,
            options,
            out: args.out.clone(),
            shard,
            ocsf: args.alerts.output == AlertFormat::Ocsf,
            quiet: args.verbosity.quiet,
            refuse_disorder: args.no_sort,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::args::{Cli, Command};
    use clap::Parser;

    fn plan(argv: &[&str]) -> anyhow::Result<ReplayPlan> {
        let cli = Cli::try_parse_from(argv).unwrap();
        let Command::Replay(args) = cli.command else {
            panic!("not replay")
        };
        let mut problems = args.verbosity.problems(args.max_reports);
        ReplayPlan::new(&args, &mut problems)
    }

    #[test]
    fn the_flags_are_in_the_plan_once_and_for_all() {
        let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/sample-logs/incident.jsonl");
        let plan = plan(&[
            "exposure",
            "replay",
            "--shard",
            "2/3",
            "--threads",
            "1",
            "--no-sort",
            "-q",
            sample,
        ])
        .unwrap();
        assert_eq!(
            plan.config.detector.shard,
            plan.shard.as_ref().map(|s| s.shard)
        );
        assert!(plan.config.detector.shard.is_some());
        let shard = plan.shard.as_ref().unwrap();
        assert_eq!(shard.settings_digest.len(), 16);
        assert_eq!(plan.inputs.len(), 1);
        assert_eq!(plan.options.threads, 1);
        assert_eq!(plan.options.disorder, Disorder::Refuse);
        assert!(plan.refuse_disorder && plan.quiet && !plan.ocsf && plan.out.is_none());
        // A bad flag combination is refused while planning, before anything runs.
        let error = plan_error(&[
            "exposure",
            "replay",
            "--from",
            "2026-03-02T00:00:00Z",
            "--until",
            "2026-03-01T00:00:00Z",
            sample,
        ]);
        assert!(error.contains("--from"), "{error}");
    }

    fn plan_error(argv: &[&str]) -> String {
        plan(argv).unwrap_err().to_string()
    }
}
