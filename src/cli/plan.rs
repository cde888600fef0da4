//! The command line's high layer: the flags as parsed ([`super::args`]) become, once, a
//! validated and immutable description of the run — [`ReplayPlan`], [`WatchPlan`],
//! [`LearnPlan`], [`ArchivePlan`]: the configuration with everything the flags add to it
//! (shard, analysts' approvals, a stdout sink), the inputs found, how to read them, where the
//! results go and in what form. Every refusal of a flag combination happens here, before
//! anything runs; the command bodies ([`super`]) only carry the plans out.

use super::args::WatermarkMode;
use super::args::{AlertFlags, ArchiveArgs, DetectFlags, LearnArgs, ReplayArgs, WatchArgs};
use crate::config::{Config, ConfigError, DetectOverrides};
use crate::detect::shard::Shard;
use crate::ocsf::AlertFormat;
use crate::replay::{Disorder, ReplayOptions};
use crate::report::Problems;
use crate::source::Input;
use crate::source::InputError;
use crate::time::TimeFilter;
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

/// Everything a `watch` run does, decided before it starts.
pub struct WatchPlan {
    /// The configuration, with `--output`'s stdout sink: nothing patches it later.
    pub config: Config,
    pub options: crate::live::WatchOptions,
    /// Builds the configuration again on SIGHUP exactly as this plan did (followed files and
    /// stdin; Kafka instances are restarted one at a time instead).
    pub reload: Option<crate::live::ConfigLoader>,
}

impl WatchPlan {
    pub fn new(args: &WatchArgs) -> anyhow::Result<WatchPlan> {
        let config = watch_config(&args.detect, &args.alerts)?;
        if config.kafka.is_none() && args.paths.is_empty() {
            return Err(ConfigError::Usage(
                "give the files or globs to follow (`-` for stdin), or a --config with \
                 [input.kafka]"
                    .into(),
            )
            .into());
        }
        let reload = config.kafka.is_none().then(|| {
            let (detect, alerts) = (args.detect.clone(), args.alerts.clone());
            Box::new(move || Ok(watch_config(&detect, &alerts)?)) as crate::live::ConfigLoader
        });
        let options = crate::live::WatchOptions {
            paths: args.paths.clone(),
            state_dir: crate::state::StateDir::new(&args.state_dir),
            from_beginning: args.from_beginning,
            refuse_symlinks: args.refuse_symlinks,
            checkpoint_every: args.checkpoint_every.to_std(),
            compact: crate::live::checkpoint::CompactWhen {
                at_least: args.compact_after as u64,
                ..Default::default()
            },
            poll_every: args.poll_every.to_std(),
            metrics_addr: args.metrics_addr,
            per_source_order: args.watermark == WatermarkMode::PerSource,
            drain_timeout: std::time::Duration::from_secs(2),
            outbox_max_bytes: args.outbox_max_bytes as u64,
            keep_reads: args.keep_reads,
        };
        Ok(WatchPlan {
            config,
            options,
            reload,
        })
    }
}

/// `watch`'s configuration: `--output` in a format other than exposure's own writes the alerts
/// to stdout in it, as a sink of its own; with `[[sinks]]` configured, each sink has its own
/// `format` instead.
fn watch_config(detect: &DetectFlags, alerts: &AlertFlags) -> Result<Config, ConfigError> {
    let mut config = detect.config(Some(alerts), None)?;
    if alerts.output != AlertFormat::Exposure {
        if !config.sinks.is_empty() {
            return Err(ConfigError::Usage(
                "--output sets the format of alerts written to stdout; with [[sinks]] \
                 configured, give each sink its own `format`"
                    .into(),
            ));
        }
        config.sinks.push(crate::sink::SinkSection::Jsonl {
            name: Some("stdout".into()),
            path: "-".into(),
            format: alerts.output,
        });
    }
    Ok(config)
}

/// Everything a `learn` run does, decided before the history is read.
pub struct LearnPlan {
    pub config: Config,
    pub inputs: Vec<Input>,
    /// `--until`: the history ends there.
    pub filter: TimeFilter,
    pub into: LearnInto,
    /// `--force`: a state dir that holds a state is replaced.
    pub force: bool,
    /// `--keep-reads`: the history is kept as the state dir's evidence.
    pub keep_reads: bool,
    pub quiet: bool,
}

/// Where `exposure learn` puts the baseline.
pub enum LearnInto {
    StateDir(crate::state::StateDir),
    /// A Kafka group's state topic, checked before the history is read (a refusal costs no
    /// replay).
    Kafka(crate::kafka::learn::Handover),
}

impl LearnPlan {
    pub fn new(args: &LearnArgs, problems: &mut Problems) -> anyhow::Result<LearnPlan> {
        let config = args.detect.config(None, None)?;
        let into = match (&config.kafka, &args.state_dir) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Invalid {
                    key: "input.kafka".into(),
                    message: "is set: `learn` hands the baseline to the group's state topic; \
                              give no --state-dir"
                        .into(),
                }
                .into());
            }
            (Some(_), None) if args.keep_reads => {
                return Err(ConfigError::Usage(
                    "--keep-reads keeps evidence in a state dir; a Kafka group's state topic \
                     keeps none"
                        .into(),
                )
                .into());
            }
            (Some(kafka), None) => {
                LearnInto::Kafka(crate::kafka::learn::Handover::prepare(kafka, args.force)?)
            }
            (None, Some(dir)) => LearnInto::StateDir(crate::state::StateDir::new(dir)),
            (None, None) => {
                return Err(ConfigError::Usage(
                    "give --state-dir DIR (the state dir `watch` will use), or a --config with \
                     [input.kafka]"
                        .into(),
                )
                .into());
            }
        };
        let filter = TimeFilter {
            since: None,
            until: args.until,
        };
        let inputs = super::inputs_of(&args.paths, config.input.format, filter, problems)?;
        Ok(LearnPlan {
            config,
            inputs,
            filter,
            into,
            force: args.force,
            keep_reads: args.keep_reads,
            quiet: args.verbosity.quiet,
        })
    }
}

/// What an `archive` run does, decided before anything is read or written.
pub enum ArchivePlan {
    /// `--seal`: vouch for an archive written before manifests.
    Seal { out: PathBuf },
    /// `--resume STAGING --out URL`: upload what an interrupted upload left.
    Upload { staging: PathBuf, out: String },
    /// Archive the logs.
    Write(Box<ArchiveWrite>),
}

/// `archive LOGS --out DIR|URL`.
pub struct ArchiveWrite {
    pub config: Config,
    pub inputs: Vec<Input>,
    /// A folder, or an object-storage URL (written to a staging folder, then uploaded).
    pub out: String,
    pub to_store: bool,
    pub start: crate::archive::Start,
    /// The digest of the configuration file, recorded in the manifest.
    pub config_digest: Option<String>,
    pub strict: bool,
    pub quiet: bool,
}

impl ArchivePlan {
    pub fn new(args: &ArchiveArgs, problems: &mut Problems) -> anyhow::Result<ArchivePlan> {
        use crate::archive::Start;
        let to_store = crate::source::object::is_url(&args.out);
        if args.seal {
            if to_store || !args.paths.is_empty() {
                return Err(ConfigError::Usage(
                    "--seal takes the archive's folder as --out, and no logs (to seal an \
                     archive in a store, seal a local copy and upload its _manifest.json)"
                        .into(),
                )
                .into());
            }
            return Ok(ArchivePlan::Seal {
                out: PathBuf::from(&args.out),
            });
        }
        // To a folder, `--resume` takes no value: one that follows it is the first log.
        let mut paths = args.paths.clone();
        let resume = match &args.resume {
            Some(value) if !to_store && !value.as_os_str().is_empty() => {
                paths.insert(0, value.to_string_lossy().into_owned());
                Some(PathBuf::new())
            }
            resume => resume.clone(),
        };
        let start = match resume {
            Some(staging) if !staging.as_os_str().is_empty() => {
                if !paths.is_empty() {
                    return Err(ConfigError::Usage(
                        "--resume STAGING uploads a staging folder: give no logs with it".into(),
                    )
                    .into());
                }
                if !to_store {
                    anyhow::bail!(
                        "--resume uploads to object storage: --out must be a URL \
                         (s3://bucket/archive/)"
                    );
                }
                return Ok(ArchivePlan::Upload {
                    staging,
                    out: args.out.clone(),
                });
            }
            Some(_) if to_store => {
                return Err(ConfigError::Usage(
                    "to object storage, --resume takes the staging folder an interrupted \
                     upload named: --resume STAGING"
                        .into(),
                )
                .into());
            }
            Some(_) => Start::Resume,
            None if args.replace => Start::Replace,
            None => Start::Fresh,
        };
        if paths.is_empty() {
            return Err(ConfigError::Usage("give the logs to archive".into()).into());
        }
        let overrides = DetectOverrides {
            lateness: args.lateness,
            ..DetectOverrides::default()
        };
        let config = Config::load(args.config.as_deref(), &overrides, args.format)?;
        let inputs =
            super::inputs_of(&paths, config.input.format, TimeFilter::default(), problems)?;
        if let Some(parquet) = inputs.iter().find(|i| i.is_parquet()) {
            return Err(InputError::ArchiveOfParquet(parquet.display_name()).into());
        }
        let config_digest = match &args.config {
            Some(path) => Some(super::hex16(&super::file_sha256(path)?)),
            None => None,
        };
        Ok(ArchivePlan::Write(Box::new(ArchiveWrite {
            config,
            inputs,
            out: args.out.clone(),
            to_store,
            start,
            config_digest,
            strict: args.strict,
            quiet: args.verbosity.quiet,
        })))
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

    fn watch_plan(argv: &[&str]) -> anyhow::Result<WatchPlan> {
        let Command::Watch(args) = Cli::try_parse_from(argv).unwrap().command else {
            panic!("not watch")
        };
        WatchPlan::new(&args)
    }

    #[test]
    fn watch_output_is_a_sink_in_the_plan_and_reloads_the_same_way() {
        let plan = watch_plan(&[
            "exposure",
            "watch",
            "--state-dir",
            "s",
            "--output",
            "ocsf",
            "app.log",
        ])
        .unwrap();
        let to_stdout = |config: &Config| {
            matches!(
                config.sinks.as_slice(),
                [crate::sink::SinkSection::Jsonl { name: Some(name), path, format: AlertFormat::Ocsf }]
                    if name == "stdout" && path == "-"
            )
        };
        assert!(to_stdout(&plan.config));
        assert!(to_stdout(&(plan.reload.as_ref().unwrap())().unwrap()));
        assert_eq!(plan.options.paths, ["app.log"]);
        assert!(plan.options.per_source_order);
        // Nothing to follow is refused while planning.
        let error = watch_plan(&["exposure", "watch", "--state-dir", "s"])
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("give the files or globs"), "{error}");
    }

    #[test]
    fn archive_resume_to_a_folder_takes_no_value_and_to_a_store_takes_the_staging_folder() {
        let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/sample-logs/incident.jsonl");
        let archive = |argv: &[&str]| {
            let Command::Archive(args) = Cli::try_parse_from(argv).unwrap().command else {
                panic!("not archive")
            };
            let mut problems = args.verbosity.problems(args.max_reports);
            ArchivePlan::new(&args, &mut problems)
        };
        let Ok(ArchivePlan::Write(run)) =
            archive(&["exposure", "archive", "--out", "arch", "--resume", sample])
        else {
            panic!("not a write")
        };
        assert_eq!(run.start, crate::archive::Start::Resume);
        assert_eq!(
            run.inputs.len(),
            1,
            "the value after --resume is the first log"
        );
        let Ok(ArchivePlan::Upload { staging, out }) = archive(&[
            "exposure",
            "archive",
            "--out",
            "s3://bucket/arch/",
            "--resume",
            "/tmp/staging",
        ]) else {
            panic!("not an upload")
        };
        assert_eq!(
            (staging.to_str(), out.as_str()),
            (Some("/tmp/staging"), "s3://bucket/arch/")
        );
        let Err(error) = archive(&["exposure", "archive", "--seal", "--out", "arch", sample])
        else {
            panic!("sealed with logs")
        };
        assert!(error.to_string().contains("--seal takes"), "{error}");
    }
}
