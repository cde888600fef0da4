//! The command line: clap-derive flags as the user typed them, turned into a validated
//! [`Config`] and handed to the command that runs. Owns exit codes: 0 ok, 1 runtime error,
//! 2 usage or configuration error.

use crate::archive;
use crate::config::{Config, ConfigError, DetectOverrides};
use crate::format::Format;
use crate::ocsf::AlertFormat;
use crate::replay::{self, Disorder, ReplayError, ReplayOptions};
use crate::report::Problems;
use crate::source::parquet::SchemaError;
use crate::source::{Input, InputError, expand_inputs};
use crate::time::TimeFilter;
use crate::time::{Span, Ts};
use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Find exposure windows in data-access logs.
///
/// exposure keeps a per-table baseline of who normally reads each table and reports the
/// windows in which unusual principals read it: which table, from when to when, and who.
#[derive(Debug, Parser)]
#[command(
    name = "exposure",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replay archived access logs and print the exposure windows found, as JSON lines.
    ///
    /// Inputs are read in the order given, as one stream (`-` is stdin; gzip is detected).
    /// Alerts go to stdout (or --out); problems and a summary go to stderr.
    #[command(after_help = "Examples:\n  \
        exposure replay sample-logs/incident.jsonl\n  \
        exposure replay --config exposure.toml --out alerts.jsonl logs/2026-03-*.jsonl.gz\n  \
        zcat archive.log.gz | exposure replay --lateness 15m -")]
    Replay(ReplayArgs),

    /// Convert access logs into a Parquet archive (canonical schema, zstd, sorted by time, one
    /// folder per day) that `exposure replay` reads back with the same results.
    #[command(after_help = "Examples:\n  \
        exposure archive sample-logs/incident.jsonl --out archive/\n  \
        exposure replay archive/")]
    Archive(ArchiveArgs),

    /// Follow access logs as they are written (like `tail -F`) and alert while an exposure is
    /// going on. Runs until SIGINT or SIGTERM; state (baseline, open windows, file offsets,
    /// undelivered alerts) is kept in --state-dir and resumed on the next start.
    #[command(after_help = "Examples:\n  \
        exposure watch --state-dir /var/lib/exposure '/var/log/warehouse/*.jsonl'\n  \
        exposure watch --config exposure.toml --state-dir state --metrics-addr 127.0.0.1:9464 app.log\n  \
        journalctl -f -o cat | exposure watch --state-dir state -")]
    Watch(WatchArgs),

    /// Learn the baseline from history (JSON lines or Parquet) into a state dir, so that
    /// `exposure watch --state-dir DIR` starts armed instead of learning for `learn`.
    #[command(after_help = "Examples:\n  \
        exposure learn --state-dir state archive/\n  \
        exposure watch --state-dir state '/var/log/warehouse/*.jsonl'")]
    Learn(LearnArgs),

    /// Send a clearly marked test alert (open, then resolved) to every sink in the config
    /// file's `[[sinks]]`, and report how each went.
    #[command(
        after_help = "Example:\n  EXPOSURE_PD_ROUTING_KEY=... exposure sink-test --config exposure.toml"
    )]
    SinkTest(SinkTestArgs),

    /// Put the alerts of `replay --shard K/N` runs back together: the lines of the unsharded
    /// run, in its order, byte for byte (docs/sharding.md).
    #[command(after_help = "Example:\n  \
        for k in 1 2 3; do exposure replay --shard $k/3 --out shard-$k.jsonl archive/; done\n  \
        exposure merge shard-*.jsonl --out alerts.jsonl")]
    Merge(MergeArgs),

    /// Write the forensic report of a run's exposure windows: one self-contained HTML page per
    /// window (timeline, unusual principals, the table's baseline readers when it opened, the
    /// cause, the alert history, the settings) and an index, or Markdown for a ticket. The
    /// inputs are the logs the alerts came from (as `replay` reads them).
    #[command(after_help = "Examples:\n  \
        exposure replay --out alerts.jsonl sample-logs/incident.jsonl\n  \
        exposure report --alerts alerts.jsonl --out report/ sample-logs/incident.jsonl\n  \
        exposure report --alerts alerts.jsonl --out ticket/ --output markdown archive/")]
    Report(ReportArgs),

    /// Review and change what is normal on the tables of a state dir: `show` the approvals,
    /// the audit log and the baselines; `allow` principals on tables (until a time or for
    /// good); `forget` principals (out of the baseline, approvals withdrawn). Every change is
    /// appended to the state dir's audit log with who made it and why; a running `watch` picks
    /// it up within a second.
    #[command(after_help = "Examples:\n  \
        exposure baseline allow --state-dir state --table 'warehouse.hr.*' 'svc-payroll-*' \\\n      \
            --expires 2026-12-31 --reason 'SEC-142: payroll migration'\n  \
        exposure baseline forget --state-dir state --table warehouse.users.pii bob@corp.example \\\n      \
            --reason 'SEC-150: left the team'\n  \
        exposure baseline show --state-dir state --table warehouse.users.pii")]
    Baseline(BaselineArgs),

    /// Say what the detector knew about a table at a time: learning or armed, its baseline
    /// readers and when each last read, approvals and allow patterns, the pending principals,
    /// an open window, and, for --principal, why that principal was normal or novel. From the
    /// logs (replayed up to --at) or from a `watch` state dir.
    #[command(after_help = "Examples:\n  \
        exposure explain --table warehouse.users.pii --at 2026-03-16T14:30:00Z \\\n      \
            --principal quinn.khan@corp.example sample-logs/incident.jsonl\n  \
        exposure explain --table warehouse.users.pii --state-dir state")]
    Explain(ExplainArgs),
}

#[derive(Debug, Args)]
pub struct BaselineArgs {
    #[command(subcommand)]
    pub command: BaselineCommand,
}

#[derive(Debug, Subcommand)]
pub enum BaselineCommand {
    /// The approvals in force, the audit log, and each table's baseline from the checkpoint.
    Show {
        #[arg(long, value_name = "DIR")]
        state_dir: PathBuf,
        /// Only tables matching GLOB, each with its readers listed.
        #[arg(long, value_name = "GLOB")]
        table: Option<String>,
    },
    /// Approve principals on tables: they are normal there while the approval stands.
    Allow(BaselineChangeArgs),
    /// Take principals out of the tables' baselines (their next read is novel) and withdraw
    /// their approvals with the same patterns.
    Forget(BaselineChangeArgs),
}

#[derive(Debug, Args)]
pub struct BaselineChangeArgs {
    #[arg(long, value_name = "DIR")]
    pub state_dir: PathBuf,
    /// The tables (a glob; `*` and `?` match dots too).
    #[arg(long, value_name = "GLOB")]
    pub table: String,
    /// The principals (a glob).
    #[arg(value_name = "PRINCIPAL_GLOB")]
    pub principal: String,
    /// (allow) The approval ends at TIME (event time; RFC 3339, a date, or an epoch number).
    #[arg(long, value_name = "TIME", value_parser = crate::time::parse_cli_time)]
    pub expires: Option<Ts>,
    /// Why: the ticket, the decision. Recorded in the audit log.
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
    /// Who makes the change, e.g. on whose behalf (default: the effective user). The
    /// effective user is recorded beside it either way.
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub detect: DetectFlags,

    /// The moment to explain: the state after every event before TIME. With --state-dir, the
    /// time the state is judged at (default: the state's own event time).
    #[arg(long, value_name = "TIME", value_parser = crate::time::parse_cli_time)]
    pub at: Option<Ts>,

    /// Also say why this principal was normal or novel there.
    #[arg(long, value_name = "PRINCIPAL")]
    pub principal: Option<String>,

    /// Explain from this `watch` (or `learn`) state dir instead of replaying logs; its
    /// approvals apply.
    #[arg(long, value_name = "DIR", conflicts_with = "paths")]
    pub state_dir: Option<PathBuf>,

    /// Use the analysts' approvals recorded in state dir DIR (with logs as input).
    #[arg(long, value_name = "DIR")]
    pub approvals: Option<PathBuf>,

    /// Write the explanation as one JSON object.
    #[arg(long)]
    pub json: bool,

    /// The logs to replay up to --at.
    #[arg(value_name = "PATH", required_unless_present = "state_dir")]
    pub paths: Vec<String>,
}

/// How `exposure report` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// `index.html` and one page per window.
    Html,
    /// `report.md` (every window) and one file per window.
    Markdown,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub detect: DetectFlags,

    /// The alerts of the run (JSON lines of `replay --out` or a `jsonl` sink).
    #[arg(long, value_name = "FILE")]
    pub alerts: PathBuf,

    /// Folder to write the report in (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// What to write: `html` pages or `markdown` for a ticket (`--format` is the logs' format,
    /// as in every command).
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = ReportFormat::Html)]
    pub output: ReportFormat,

    /// Show at most N skipped lines (the rest are counted).
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub max_reports: usize,

    #[command(flatten)]
    pub verbosity: Verbosity,

    /// The logs the alerts came from: files, folders, globs, object-store URLs.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<String>,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Write the alerts to FILE instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Each shard's alerts (the JSON lines `replay --shard` wrote), in any order.
    #[arg(required = true, value_name = "FILE")]
    pub inputs: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SinkTestArgs {
    /// TOML configuration file with `[[sinks]]`.
    #[arg(short, long, value_name = "FILE")]
    pub config: PathBuf,

    #[command(flatten)]
    pub log: LogArgs,
}

/// How `watch` moves event time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WatermarkMode {
    PerSource,
    Lateness,
}

/// How logs on stderr look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, help_heading = "Logging")]
    pub log_format: LogFormat,

    /// Log level (error, warn, info, debug, trace) or a tracing filter directive [default:
    /// info; -q: warn; -v: debug; -vv: trace].
    #[arg(long, value_name = "FILTER", help_heading = "Logging")]
    pub log_level: Option<String>,
}

impl LogArgs {
    fn init(&self, verbosity: Verbosity) -> anyhow::Result<()> {
        let level = match (&self.log_level, verbosity.quiet, verbosity.verbose) {
            (Some(level), _, _) => level.as_str(),
            (None, true, _) => "warn",
            (None, false, 0) => "info",
            (None, false, 1) => "debug",
            (None, false, _) => "trace",
        };
        let filter =
            tracing_subscriber::EnvFilter::try_new(level).map_err(|e| ConfigError::Invalid {
                key: "--log-level".into(),
                message: e.to_string(),
            })?;
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(io::stderr)
            .with_target(false);
        match self.log_format {
            LogFormat::Text => builder.with_ansi(io::stderr().is_terminal()).init(),
            LogFormat::Json => builder.json().flatten_event(true).init(),
        }
        Ok(())
    }
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub detect: DetectFlags,

    #[command(flatten)]
    pub alerts: AlertFlags,

    /// Folder for the checkpoint, the outbox of alerts and delivery records (created if
    /// needed; one process at a time).
    #[arg(long, value_name = "DIR")]
    pub state_dir: PathBuf,

    /// Read files never seen before from their start, not their end.
    #[arg(long)]
    pub from_beginning: bool,

    /// Never read through a symbolic link: a path or glob match that is one is reported once
    /// and skipped, and globs do not descend into linked directories.
    #[arg(long)]
    pub refuse_symlinks: bool,

    /// How often the checkpoint is written when something changed.
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    pub checkpoint_every: Span,

    /// The outbox's bound on disk (e.g. 512M, 1G, bytes without a unit): beyond it, the
    /// oldest alerts a sink that is down has not delivered go to its dead-letter file.
    #[arg(long, value_name = "SIZE", default_value = "1G", value_parser = parse_size)]
    pub outbox_max_bytes: usize,

    /// How long to sleep when no input has anything new.
    #[arg(long, value_name = "DURATION", default_value = "20ms")]
    pub poll_every: Span,

    /// How event time moves: `per-source` trusts each input (file, stdin) to be written in time
    /// order and alerts at once; `lateness` waits `--lateness` for out-of-order events, as
    /// replay does (use it when one file interleaves several unsynchronised writers).
    #[arg(long, value_enum, default_value_t = WatermarkMode::PerSource)]
    pub watermark: WatermarkMode,

    /// Serve Prometheus metrics on http://ADDR/metrics (e.g. 127.0.0.1:9464).
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,

    #[command(flatten)]
    pub log: LogArgs,

    #[command(flatten)]
    pub verbosity: Verbosity,

    /// Files or globs to follow (`-` for stdin); none when the configuration reads Kafka
    /// (`[input.kafka]`).
    #[arg(value_name = "PATH")]
    pub paths: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LearnArgs {
    #[command(flatten)]
    pub detect: DetectFlags,

    /// The state dir `exposure watch` will use. Not with a --config holding `[input.kafka]`:
    /// then the baseline goes to the group's state topic.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Replace a checkpoint already in the state dir (or the state a Kafka group has).
    #[arg(long)]
    pub force: bool,

    /// Only learn from events before TIME (RFC 3339, a date, or an epoch number).
    #[arg(long, value_name = "TIME", value_parser = crate::time::parse_cli_time, help_heading = "Selection")]
    pub until: Option<Ts>,

    /// How many skipped lines to show on stderr (all are counted).
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub max_reports: usize,

    #[command(flatten)]
    pub log: LogArgs,

    #[command(flatten)]
    pub verbosity: Verbosity,

    /// History to learn from: JSON-lines files, Parquet files or folders, in order.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ArchiveArgs {
    /// TOML configuration file: `[input]` (field mapping) and `detect.lateness` (when a day is
    /// complete) apply.
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Input format (JSON lines).
    #[arg(long, value_enum)]
    pub format: Option<Format>,

    /// How late events may arrive: a day is written once the newest event is this far past
    /// its end [default: 5m].
    #[arg(long, value_name = "DURATION")]
    pub lateness: Option<Span>,

    /// The archive folder (created if needed; day folders are added to it), or a URL in
    /// object storage (`s3://bucket/archive/`: each file staged in TMPDIR, then uploaded).
    #[arg(short, long, value_name = "DIR_OR_URL")]
    pub out: String,

    /// Stop with exit code 1 at the first malformed line instead of skipping it.
    #[arg(long)]
    pub strict: bool,

    /// How many skipped lines to show on stderr (all are counted).
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub max_reports: usize,

    #[command(flatten)]
    pub verbosity: Verbosity,

    /// Finish an interrupted archive: with a folder as --out, re-read the same logs and write
    /// only the parts the interrupted run did not finish (its `_progress.jsonl` says which);
    /// with a URL as --out, `--resume STAGING` uploads what an interrupted upload left in its
    /// staging folder (named in its error), instead of archiving logs.
    #[arg(long, value_name = "STAGING", num_args = 0..=1, default_missing_value = "", conflicts_with = "replace")]
    pub resume: Option<PathBuf>,

    /// Write the manifest of the archive --out holds, made by a release before manifests
    /// existed: its parts as they are now, marked `sealed` with who sealed it (you vouch that
    /// it is whole). Reads no logs.
    #[arg(long, conflicts_with_all = ["resume", "replace"])]
    pub seal: bool,

    /// Remove the archive --out holds (its day folders of parts, manifest and progress; any
    /// other file stops it) and write a new one. Without --replace or --resume, --out must be
    /// empty or new: an archive is never added to, so no day is archived twice.
    #[arg(long)]
    pub replace: bool,

    /// Log files to convert, in order (`-` for stdin).
    #[arg(value_name = "PATH")]
    pub paths: Vec<String>,
}

/// Flags shared by every command that runs the detector.
#[derive(Debug, Args, Clone)]
pub struct DetectFlags {
    /// TOML configuration file (see docs/configuration.md and examples/exposure.toml).
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Input format.
    #[arg(long, value_enum)]
    pub format: Option<Format>,

    /// How long a table only learns its baseline after its first read [default: 7d].
    #[arg(long, value_name = "DURATION", help_heading = "Detection")]
    pub learn: Option<Span>,

    /// Distinct novel principals within --span that open a window [default: 3].
    #[arg(long, value_name = "N", help_heading = "Detection")]
    pub min_principals: Option<u32>,

    /// How long a novel principal stays pending [default: 1h].
    #[arg(long, value_name = "DURATION", help_heading = "Detection")]
    pub span: Option<Span>,

    /// A window closes after this long without a novel read [default: 30m]. (`quiet` in
    /// configuration files before this release.)
    #[arg(long, value_name = "DURATION", help_heading = "Detection")]
    pub close_after: Option<Span>,

    /// A principal stays normal this long after its last normal read [default: 30d].
    #[arg(long, value_name = "DURATION", help_heading = "Detection")]
    pub forget_after: Option<Span>,

    /// How far out of order events may arrive [default: 5m].
    #[arg(long, value_name = "DURATION", help_heading = "Detection")]
    pub lateness: Option<Span>,

    /// Principals that are always normal (glob; repeatable).
    #[arg(long, value_name = "GLOB", help_heading = "Detection")]
    pub allow: Vec<String>,

    /// Only watch tables matching GLOB (repeatable); Parquet row groups whose table statistics
    /// rule them out are not read.
    #[arg(long = "table", value_name = "GLOB", help_heading = "Selection")]
    pub tables: Vec<String>,
}

/// Flags of the commands that write alerts (`replay`, `watch`).
#[derive(Debug, Args, Clone)]
pub struct AlertFlags {
    /// Also emit `update` alerts when a window's novel principals double.
    #[arg(long, help_heading = "Detection")]
    pub updates: bool,

    /// How alerts are written: `exposure` (schema exposure.alert/v1) or `ocsf` (OCSF 1.7.0
    /// Detection Finding events, docs/alerts.md). In `watch`, for alerts written to stdout
    /// (configured sinks take `format` instead).
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = AlertFormat::Exposure, help_heading = "Output")]
    pub output: AlertFormat,
}

/// `replay`'s choice of time: history before `--from` is learned from, not reported.
#[derive(Debug, Args, Clone)]
pub struct ReplayTimeFlags {
    /// Report the windows still open at TIME or opened later; the history before TIME is
    /// still read, so the baseline is learned from it. TIME: RFC 3339, a date (2026-03-16,
    /// midnight UTC), a date and time without offset (UTC), or an epoch number.
    #[arg(long, value_name = "TIME", value_parser = crate::time::parse_cli_time, help_heading = "Selection")]
    pub from: Option<Ts>,

    /// Only use events before TIME; Parquet row groups wholly after it are not read. Windows
    /// still open there close with `closed_by: end_of_input`.
    #[arg(long, value_name = "TIME", value_parser = crate::time::parse_cli_time, help_heading = "Selection")]
    pub until: Option<Ts>,

    /// Only use events at or after TIME: `dt=` day folders (on disk or in a store) and
    /// Parquet row groups wholly before it are not read. Unlike --from, the baseline is then
    /// learned only from what follows TIME.
    #[arg(long, value_name = "TIME", value_parser = crate::time::parse_cli_time, help_heading = "Selection")]
    pub since: Option<Ts>,
}

impl ReplayTimeFlags {
    fn filter(&self) -> TimeFilter {
        TimeFilter {
            since: self.since,
            until: self.until,
        }
    }

    fn check(&self) -> Result<(), ConfigError> {
        if let (Some(since), Some(until)) = (self.since, self.until)
            && since >= until
        {
            return Err(ConfigError::Invalid {
                key: "--since".into(),
                message: format!(
                    "{} is not before --until {}",
                    crate::time::format_ts(since),
                    crate::time::format_ts(until)
                ),
            });
        }
        match (self.from, self.until) {
            (Some(from), Some(until)) if from >= until => Err(ConfigError::Invalid {
                key: "--from".into(),
                message: format!(
                    "{} is not before --until {}",
                    crate::time::format_ts(from),
                    crate::time::format_ts(until)
                ),
            }),
            _ => Ok(()),
        }
    }
}

/// `-q` / `-v`, the usual way.
#[derive(Debug, Args, Clone, Copy, Default)]
pub struct Verbosity {
    /// Less output: no summary and no progress (problems and errors are still shown); in
    /// `watch`, warnings and errors only.
    #[arg(short, long, help_heading = "Output")]
    pub quiet: bool,

    /// More output (repeatable): every skipped line is shown, not only the first
    /// --max-reports; in `watch` and `learn`, debug logs (-vv: trace).
    #[arg(short, long, action = clap::ArgAction::Count, conflicts_with = "quiet", help_heading = "Output")]
    pub verbose: u8,
}

impl Verbosity {
    /// The problem report on stderr: the first `max_reports` bad lines shown, all with `-v`.
    fn problems(&self, max_reports: usize) -> Problems {
        let shown = if self.verbose > 0 {
            usize::MAX
        } else {
            max_reports
        };
        Problems::new(Box::new(io::stderr()), shown)
    }
}

impl DetectFlags {
    /// Loads and validates the configuration these flags point at, with the alert flags of
    /// the command (if it writes alerts) and `replay --from`.
    pub fn config(
        &self,
        alerts: Option<&AlertFlags>,
        report_from: Option<Ts>,
    ) -> Result<Config, ConfigError> {
        let overrides = DetectOverrides {
            learn: self.learn,
            forget_after: self.forget_after,
            span: self.span,
            close_after: self.close_after,
            min_principals: self.min_principals,
            lateness: self.lateness,
            allow: self.allow.clone(),
            updates: alerts.is_some_and(|a| a.updates),
            report_from,
            only_tables: self.tables.clone(),
        };
        Config::load(self.config.as_deref(), &overrides, self.format)
    }
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub detect: DetectFlags,

    #[command(flatten)]
    pub alerts: AlertFlags,

    #[command(flatten)]
    pub time: ReplayTimeFlags,

    /// Write alerts to FILE instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Stop with exit code 1 at the first malformed line instead of skipping it.
    #[arg(long)]
    pub strict: bool,

    /// How many skipped or late lines to show on stderr (all are counted).
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub max_reports: usize,

    /// No progress bar (it is shown only when stderr is a terminal).
    #[arg(long)]
    pub no_progress: bool,

    /// Threads (default: one per core). 1 reads, parses and detects on one thread. With N above
    /// 1, JSON lines are parsed on N threads while one reads and one detects, and Parquet row
    /// groups are decoded on a second thread. The alerts are the same either way.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=64))]
    pub threads: Option<u8>,

    /// An input out of order beyond --lateness (an event more than that behind the input's
    /// newest) is not sorted: its late events are reported and left out, and the exit code is
    /// 1. By default every event is then sorted by time and replayed again.
    #[arg(long)]
    pub no_sort: bool,

    /// Memory for sorting out-of-order inputs before sorted runs go to temporary files
    /// (TMPDIR), e.g. 512M, 4G.
    #[arg(long, value_name = "SIZE", default_value = "1G", value_parser = parse_size)]
    pub sort_memory: usize,

    /// Detect on shard K of N only (1-based, e.g. 2/8): the tables whose stable hash falls in
    /// it. Every input is still read whole. The N shards' alerts, put together with `exposure
    /// merge`, are the unsharded run's, byte for byte (docs/sharding.md).
    #[arg(long, value_name = "K/N")]
    pub shard: Option<crate::detect::shard::Shard>,

    /// Use the analysts' approvals recorded in state dir DIR (`exposure baseline allow`): the
    /// approved principals are normal on their tables while the approvals stand.
    #[arg(long, value_name = "DIR", help_heading = "Detection")]
    pub approvals: Option<PathBuf>,

    #[command(flatten)]
    pub verbosity: Verbosity,

    /// Log files to replay, in any order (`-` for stdin).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<String>,
}

/// A size such as `512M`, `4G`, `65536` (bytes; K, M, G, T are powers of 1024).
fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let number: usize = digits
        .parse()
        .map_err(|_| format!("`{text}`: expected a size such as 512M or 4G"))?;
    let shift = match unit.trim_end_matches(['B', 'b', 'i']) {
        "" => 0,
        "K" | "k" => 10,
        "M" | "m" => 20,
        "G" | "g" => 30,
        "T" | "t" => 40,
        other => return Err(format!("`{other}`: unknown unit (K, M, G or T)")),
    };
    number
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("`{text}`: too large"))
}

/// Parses the command line (exiting with a usage error as clap does). `--quiet DURATION`, the
/// old name of `--close-after`, is caught first with a message saying so: `-q/--quiet` now
/// means less output, and the duration would otherwise be taken for an input path.
pub fn parse() -> Cli {
    use clap::CommandFactory;
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(message) = old_quiet_flag(&args) {
        Cli::command()
            .error(clap::error::ErrorKind::ValueValidation, message)
            .exit();
    }
    Cli::parse_from(args)
}

/// The message for `--quiet DURATION` or `--quiet=DURATION`, if the arguments hold one.
fn old_quiet_flag(args: &[std::ffi::OsString]) -> Option<String> {
    let args: Vec<&str> = args.iter().map(|a| a.to_str().unwrap_or("")).collect();
    let duration = args.iter().enumerate().find_map(|(i, arg)| {
        if let Some(value) = arg.strip_prefix("--quiet=") {
            return Some(value);
        }
        let next = *args.get(i + 1)?;
        (*arg == "--quiet" && next.parse::<Span>().is_ok() && !std::path::Path::new(next).exists())
            .then_some(next)
    })?;
    Some(format!(
        "--quiet no longer takes a duration: the setting is now `--close-after {duration}` \
         (`-q`/`--quiet` means less output; in configuration files `quiet` is read as \
         `close_after` until the next release)"
    ))
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Replay(args) => run_replay(args),
        Command::Archive(args) => run_archive(args),
        Command::Watch(args) => run_watch(args),
        Command::Learn(args) => run_learn(args),
        Command::SinkTest(args) => run_sink_test(args),
        Command::Merge(args) => run_merge(args),
        Command::Report(args) => run_report(args),
        Command::Baseline(args) => run_baseline(args),
        Command::Explain(args) => run_explain(args),
    }
}

fn run_report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    use crate::incident;
    let config = args.detect.config(None, None)?;
    let text = std::fs::read_to_string(&args.alerts)
        .with_context(|| format!("cannot read {}", args.alerts.display()))?;
    let source = args.alerts.display().to_string();
    let alerts = incident::read_alerts(&text, &source)?;
    let mut problems = args.verbosity.problems(args.max_reports);
    let inputs = inputs_of(
        &args.paths,
        config.input.format,
        TimeFilter::default(),
        &mut problems,
    )?;
    let incidents = incident::build(&config, &inputs, alerts.windows, &mut problems)?;
    problems.finish();
    crate::output::create_dir(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let write = |name: &str, text: &str| {
        let path = args.out.join(name);
        crate::output::write_whole(&path, text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))
    };
    let index = match args.output {
        ReportFormat::Html => {
            for incident in &incidents {
                write(
                    &incident::page_name(incident.last(), "html"),
                    &incident::html::window_page(incident),
                )?;
            }
            write(
                "index.html",
                &incident::html::index_page(&incidents, &alerts.grants, &source),
            )?;
            "index.html"
        }
        ReportFormat::Markdown => {
            for incident in &incidents {
                write(
                    &incident::page_name(incident.last(), "md"),
                    &incident::markdown::window(incident),
                )?;
            }
            write("report.md", &incident::markdown::summary(&incidents))?;
            "report.md"
        }
    };
    if !args.verbosity.quiet {
        crate::report::say!(
            "exposure: {} window{} reported in {}",
            incidents.len(),
            if incidents.len() == 1 { "" } else { "s" },
            args.out.join(index).display()
        );
    }
    Ok(if problems.unreadable_inputs == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn run_baseline(args: BaselineArgs) -> anyhow::Result<ExitCode> {
    use crate::approvals::{self, Action};
    use crate::state::StateDir;
    let (action, change) = match args.command {
        BaselineCommand::Show { state_dir, table } => {
            let text = crate::explain::show_baseline(&StateDir::new(state_dir), table.as_deref())?;
            let mut out = io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            return Ok(ExitCode::SUCCESS);
        }
        BaselineCommand::Allow(change) => (Action::Allow, change),
        BaselineCommand::Forget(change) => {
            if change.expires.is_some() {
                return Err(ConfigError::Usage("--expires is for `allow`".into()).into());
            }
            (Action::Forget, change)
        }
    };
    let state_dir = StateDir::new(&change.state_dir);
    let entry = approvals::change_now(
        action,
        change.by.as_deref(),
        &change.table,
        &change.principal,
        change.expires,
        &change.reason,
    );
    if let Err(e @ approvals::ChangeError::Invalid { .. }) = entry.validate() {
        return Err(ConfigError::Usage(e.to_string()).into());
    }
    let journal = approvals::append(&state_dir, &entry)?;
    for line in journal.damage_report(&approvals::log_path(&state_dir)) {
        crate::report::say!("{line}");
    }
    crate::report::say!(
        "exposure: {} {} on {} by {}{}; recorded in {}",
        match action {
            Action::Allow => "allowed",
            Action::Forget => "forgot",
        },
        entry.principal,
        entry.table,
        entry.by,
        entry
            .expires
            .as_deref()
            .map(|e| format!(" until {e}"))
            .unwrap_or_default(),
        approvals::log_path(&state_dir).display()
    );
    Ok(ExitCode::SUCCESS)
}

fn run_explain(args: ExplainArgs) -> anyhow::Result<ExitCode> {
    let mut config = args.detect.config(None, None)?;
    // Explained alone: the table's own policy decides, not `--table` (which names it).
    config.detector.policies.only = None;
    let approvals_dir = args.state_dir.as_ref().or(args.approvals.as_ref());
    if let Some(dir) = approvals_dir {
        apply_approvals(&mut config, dir)?;
    }
    // `--table` (of the detection flags) names the one table to explain, exactly.
    let [table] = args.detect.tables.as_slice() else {
        return Err(
            ConfigError::Usage("give the table to explain: --table TABLE (once)".into()).into(),
        );
    };
    let question = crate::explain::Question {
        table: table.clone(),
        principal: args.principal.clone(),
    };
    let explanation = match &args.state_dir {
        Some(dir) => {
            let state_dir = crate::state::StateDir::new(dir);
            let checkpoint = crate::live::checkpoint::Checkpoint::load(&state_dir)?
                .with_context(|| format!("{} holds no checkpoint", dir.display()))?;
            crate::explain::explain(&config, &checkpoint.detector, args.at, &question, None)
        }
        None => {
            let Some(at) = args.at else {
                return Err(ConfigError::Usage(
                    "--at TIME is needed to explain from logs (or give --state-dir)".into(),
                )
                .into());
            };
            let mut problems = Problems::new(Box::new(io::stderr()), 10);
            let inputs = inputs_of(
                &args.paths,
                config.input.format,
                TimeFilter::default(),
                &mut problems,
            )?;
            let snapshot = crate::incident::state_at(&config, &inputs, &question.table, at)?;
            let history = match &question.principal {
                Some(principal) => Some(crate::explain::reads_of(
                    &config,
                    &inputs,
                    &question.table,
                    principal,
                    at,
                    &mut problems,
                )),
                None => None,
            };
            crate::explain::explain(&config, &snapshot, Some(at), &question, history.as_deref())
        }
    };
    let text = if args.json {
        format!("{}\n", serde_json::to_string_pretty(&explanation)?)
    } else {
        explanation.to_string()
    };
    let mut out = io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    Ok(ExitCode::SUCCESS)
}

fn run_merge(args: MergeArgs) -> anyhow::Result<ExitCode> {
    use crate::replay::merge::{check_set, merge, read_shard};
    let mut shards = Vec::with_capacity(args.inputs.len());
    for input in &args.inputs {
        let text = std::fs::read_to_string(input)
            .with_context(|| format!("cannot read {}", input.display()))?;
        shards.push(read_shard(input.clone(), &text)?);
    }
    check_set(&shards)?;
    let alerts: Vec<_> = shards.into_iter().map(|(_, alerts)| alerts).collect();
    let merged = merge(&alerts)?;
    if merged.repeated > 0 {
        eprintln!(
            "exposure: {} alert lines were in more than one input (a shard given twice?); \
             written once",
            merged.repeated
        );
    }
    // Written whole to a temporary file beside the output, then renamed: no half output.
    let mut text = String::with_capacity(merged.lines.iter().map(|l| l.len() + 1).sum());
    for line in &merged.lines {
        text.push_str(line);
        text.push('\n');
    }
    match &args.out {
        Some(path) => crate::output::write_whole(path, text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => {
            let mut out = io::stdout().lock();
            match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
                Err(e) if e.kind() != io::ErrorKind::BrokenPipe => return Err(e.into()),
                _ => {}
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn run_sink_test(args: SinkTestArgs) -> anyhow::Result<ExitCode> {
    use crate::detect::AlertStatus;
    args.log.init(Verbosity::default())?;
    let config = Config::load(Some(&args.config), &DetectOverrides::default(), None)?;
    if config.sinks.is_empty() {
        return Err(ConfigError::Invalid {
            key: "sinks".into(),
            message: format!("{} has no [[sinks]] to test", args.config.display()),
        }
        .into());
    }
    let scratch = std::env::temp_dir().join(format!("exposure-sink-test-{}", std::process::id()));
    let scratch = crate::state::StateDir::new(scratch);
    std::fs::create_dir_all(scratch.sinks_dir())?;
    let sinks = crate::sink::build(&config.sinks, &scratch)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut failed = 0;
    for mut built in sinks {
        let result = runtime.block_on(async {
            for alert in crate::sink::test_alerts() {
                let status = alert.status;
                built.sink.deliver(&alert).await.map_err(|e| (status, e))?;
            }
            Ok::<(), (AlertStatus, crate::sink::DeliveryError)>(())
        });
        // Ignoring a closed stdout: the exit code carries the result.
        let mut stdout = io::stdout().lock();
        let _ = match result {
            Ok(()) => writeln!(
                stdout,
                "{}: ok (test alert opened and resolved)",
                built.sink.name()
            ),
            Err((status, e)) => {
                failed += 1;
                writeln!(
                    stdout,
                    "{}: FAILED sending the {status:?} test alert: {e}",
                    built.sink.name()
                )
            }
        };
    }
    let _ = std::fs::remove_dir_all(scratch.root());
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn run_watch(args: WatchArgs) -> anyhow::Result<ExitCode> {
    args.log.init(args.verbosity)?;
    let mut config = args.detect.config(Some(&args.alerts), None)?;
    if args.alerts.output != AlertFormat::Exposure {
        if !config.sinks.is_empty() {
            return Err(ConfigError::Usage(
                "--output sets the format of alerts written to stdout; with [[sinks]] \
                 configured, give each sink its own `format`"
                    .into(),
            )
            .into());
        }
        config.sinks.push(crate::sink::SinkSection::Jsonl {
            name: Some("stdout".into()),
            path: "-".into(),
            format: args.alerts.output,
        });
    }
    if config.kafka.is_none() && args.paths.is_empty() {
        return Err(ConfigError::Usage(
            "give the files or globs to follow (`-` for stdin), or a --config with \
             [input.kafka]"
                .into(),
        )
        .into());
    }
    let options = crate::live::WatchOptions {
        paths: args.paths,
        state_dir: crate::state::StateDir::new(args.state_dir),
        from_beginning: args.from_beginning,
        refuse_symlinks: args.refuse_symlinks,
        checkpoint_every: args.checkpoint_every.to_std(),
        poll_every: args.poll_every.to_std(),
        metrics_addr: args.metrics_addr,
        per_source_order: args.watermark == WatermarkMode::PerSource,
        drain_timeout: std::time::Duration::from_secs(2),
        outbox_max_bytes: args.outbox_max_bytes as u64,
    };
    if config.kafka.is_some() {
        crate::kafka::watch(config, options)?;
    } else {
        let (detect, alerts) = (args.detect.clone(), args.alerts.clone());
        let reload: crate::live::ConfigLoader = Box::new(move || {
            let mut config = detect.config(Some(&alerts), None)?;
            if alerts.output != AlertFormat::Exposure && config.sinks.is_empty() {
                config.sinks.push(crate::sink::SinkSection::Jsonl {
                    name: Some("stdout".into()),
                    path: "-".into(),
                    format: alerts.output,
                });
            }
            Ok(config)
        });
        crate::live::watch(config, options, Some(reload))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn run_learn(args: LearnArgs) -> anyhow::Result<ExitCode> {
    args.log.init(args.verbosity)?;
    let config = args.detect.config(None, None)?;
    // Where the baseline goes: a state dir, or a Kafka group's state topic (checked before
    // the history is read, so that a refusal costs no replay).
    let destination = match (&config.kafka, &args.state_dir) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::Invalid {
                key: "input.kafka".into(),
                message: "is set: `learn` hands the baseline to the group's state topic; give \
                          no --state-dir"
                    .into(),
            }
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
    let mut problems = args.verbosity.problems(args.max_reports);
    let filter = TimeFilter {
        since: None,
        until: args.until,
    };
    let inputs = inputs_of(&args.paths, config.input.format, filter, &mut problems)?;
    let (learned, told) = match destination {
        LearnInto::StateDir(dir) => {
            let learned =
                crate::live::learn(&config, &inputs, &dir, args.force, filter, &mut problems);
            problems.finish();
            let told = format!(
                "baseline learned into {}; start `exposure watch --state-dir {}`",
                dir.root().display(),
                dir.root().display()
            );
            (learned?, told)
        }
        LearnInto::Kafka(handover) => {
            let learned = crate::live::learn_history(&config, &inputs, filter, &mut problems);
            problems.finish();
            let (learned, snapshot) = learned?;
            let handed = handover.write(&snapshot)?;
            let told = format!(
                "baseline of {} table{} handed to Kafka group {} ({} partitions of {}, {} \
                 bytes{}); start its `exposure watch` instances",
                handed.tables,
                if handed.tables == 1 { "" } else { "s" },
                handed.group,
                handed.partitions,
                handed.state_topic,
                handed.bytes,
                match handed.replaced {
                    0 => String::new(),
                    n => format!(", the earlier state of {n} replaced"),
                }
            );
            (learned, told)
        }
    };
    let outcome = &learned.outcome;
    let code = if outcome.complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    };
    if args.verbosity.quiet {
        return Ok(code);
    }
    crate::report::say!("{}", outcome.summary);
    if learned.windows > 0 {
        crate::report::say!(
            "exposure: the history holds {} exposure window{} (not alerted; `exposure replay` \
             lists them all){}",
            learned.windows,
            if learned.windows == 1 { "" } else { "s" },
            match learned.still_open {
                0 => String::new(),
                n => format!(
                    "; {n} still open at its end: `watch` extends and closes {}",
                    if n == 1 { "it" } else { "them" }
                ),
            }
        );
    }
    crate::report::say!("exposure: {told}");
    Ok(code)
}

/// Where `exposure learn` puts the baseline.
enum LearnInto {
    StateDir(crate::state::StateDir),
    Kafka(crate::kafka::learn::Handover),
}

fn run_archive(mut args: ArchiveArgs) -> anyhow::Result<ExitCode> {
    let to_store = crate::source::object::is_url(&args.out);
    if args.seal {
        if to_store || !args.paths.is_empty() {
            return Err(ConfigError::Usage(
                "--seal takes the archive's folder as --out, and no logs (to seal an archive \
                 in a store, seal a local copy and upload its _manifest.json)"
                    .into(),
            )
            .into());
        }
        let by = crate::state::effective_user();
        let manifest = archive::seal(Path::new(&args.out), &by)?;
        if !args.verbosity.quiet {
            crate::report::say!(
                "exposure: sealed {}: {} parts, {} events over {} days, by {by}",
                args.out,
                manifest.parts.len(),
                manifest.events,
                manifest.days.len()
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    // To a folder, `--resume` takes no value: one that follows it is the first log.
    if !to_store && let Some(first) = args.resume.as_mut().filter(|v| !v.as_os_str().is_empty()) {
        args.paths.insert(0, first.to_string_lossy().into_owned());
        *first = PathBuf::new();
    }
    let start = match &args.resume {
        Some(staging) if !staging.as_os_str().is_empty() => {
            if !args.paths.is_empty() {
                return Err(ConfigError::Usage(
                    "--resume STAGING uploads a staging folder: give no logs with it".into(),
                )
                .into());
            }
            return resume_upload(staging, &args);
        }
        Some(_) if to_store => {
            return Err(ConfigError::Usage(
                "to object storage, --resume takes the staging folder an interrupted upload \
                 named: --resume STAGING"
                    .into(),
            )
            .into());
        }
        Some(_) => archive::Start::Resume,
        None if args.replace => archive::Start::Replace,
        None => archive::Start::Fresh,
    };
    if args.paths.is_empty() {
        return Err(ConfigError::Usage("give the logs to archive".into()).into());
    }
    let overrides = DetectOverrides {
        lateness: args.lateness,
        ..DetectOverrides::default()
    };
    let config = Config::load(args.config.as_deref(), &overrides, args.format)?;
    let mut problems = args.verbosity.problems(args.max_reports);
    let inputs = inputs_of(
        &args.paths,
        config.input.format,
        TimeFilter::default(),
        &mut problems,
    )?;
    if let Some(parquet) = inputs.iter().find(|i| i.is_parquet()) {
        return Err(InputError::ArchiveOfParquet(parquet.display_name()).into());
    }
    // To a store: the archive is written to a staging folder, then each file uploaded.
    let destination = to_store
        .then(|| crate::source::object::ArchiveDestination::new(&args.out))
        .transpose()?;
    if let Some(destination) = &destination {
        destination.prepare(start == archive::Start::Replace)?;
    }
    let staging = match &destination {
        Some(_) => Some(
            tempfile::Builder::new()
                .prefix("exposure-archive-")
                .tempdir()
                .context("cannot create a staging folder in TMPDIR")?,
        ),
        None => None,
    };
    let out_dir = staging
        .as_ref()
        .map_or_else(|| PathBuf::from(&args.out), |s| s.path().to_path_buf());
    let config_digest = match &args.config {
        Some(path) => Some(hex16(&file_sha256(path)?)),
        None => None,
    };
    // A staging folder is new: the destination was checked above.
    let local_start = if destination.is_some() {
        archive::Start::Fresh
    } else {
        start
    };
    let mut summary = archive::archive_with(
        &config,
        &inputs,
        &out_dir,
        args.strict,
        local_start,
        config_digest,
        &mut problems,
    );
    if let (Some(destination), Some(staging), Ok(summary)) = (&destination, staging, &mut summary) {
        destination.mark_staged(staging.path())?;
        match destination.upload(staging.path()) {
            Ok(urls) => summary.files = urls.into_iter().map(PathBuf::from).collect(),
            Err(e) => {
                // What is not uploaded stays, for `--resume`.
                let kept = staging.keep();
                anyhow::bail!(
                    "{e}\nthe files not uploaded are kept in {dir}; `exposure archive --resume \
                     {dir} --out {url}` uploads them",
                    dir = kept.display(),
                    url = destination.url()
                );
            }
        }
    }
    problems.finish();
    let summary = summary?;
    if !args.verbosity.quiet {
        crate::report::say!("{summary}");
    }
    Ok(if problems.unreadable_inputs == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `archive --resume STAGING --out URL`: uploads what an interrupted upload left.
fn resume_upload(staging: &Path, args: &ArchiveArgs) -> anyhow::Result<ExitCode> {
    if !crate::source::object::is_url(&args.out) {
        anyhow::bail!(
            "--resume uploads to object storage: --out must be a URL (s3://bucket/archive/)"
        );
    }
    let destination = crate::source::object::ArchiveDestination::new(&args.out)?;
    destination.check_staged(staging)?;
    let urls = destination.upload(staging).map_err(|e| {
        anyhow::anyhow!(
            "{e}\nthe files not uploaded are still in {}; run the same command again",
            staging.display()
        )
    })?;
    std::fs::remove_dir_all(staging)
        .with_context(|| format!("{}: cannot remove the staging folder", staging.display()))?;
    if !args.verbosity.quiet {
        crate::report::say!(
            "exposure: {} files uploaded to {}",
            urls.len(),
            destination.url()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn run_replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    args.time.check()?;
    let mut config = args.detect.config(Some(&args.alerts), args.time.from)?;
    config.detector.shard = args.shard;
    if let Some(dir) = &args.approvals {
        apply_approvals(&mut config, dir)?;
    }
    let mut problems = args.verbosity.problems(args.max_reports);
    let inputs = inputs_of(
        &args.paths,
        config.input.format,
        args.time.filter(),
        &mut problems,
    )?;
    // To a file: written under a temporary name and renamed into place when the run ends (an
    // error included: what was alerted is kept); a device or fifo is written in place.
    let mut file = match &args.out {
        Some(path) => Some(
            crate::output::OutputFile::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        ),
        None => None,
    };
    let mut base: Box<dyn Write + '_> = match &mut file {
        Some(file) => Box::new(BufWriter::with_capacity(1 << 16, file)),
        None => Box::new(BufWriter::with_capacity(1 << 16, io::stdout().lock())),
    };
    // A shard's output says what it is: a header first, an end record once it finished.
    if let Some(shard) = args.shard {
        let header = crate::replay::merge::ShardHeader::new(
            shard,
            settings_digest(&args)?,
            inputs_digest(&inputs),
        );
        base.write_all(header.line().as_bytes())
            .context("cannot write the shard header")?;
    }
    let mut alerts_written = 0;
    let mut out: Box<dyn Write + '_> = Box::new(LineCount {
        inner: &mut base,
        lines: &mut alerts_written,
    });
    if args.alerts.output == AlertFormat::Ocsf {
        out = Box::new(crate::ocsf::OcsfLines::new(out));
    }
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
    let outcome = replay::replay(&config, &inputs, &options, &mut out, &mut problems);
    problems.finish();
    let mut flushed = out.flush();
    drop(out);
    if let (Some(shard), Ok(outcome), Ok(())) = (args.shard, &outcome, &flushed)
        && outcome.complete
    {
        let end = crate::replay::merge::ShardEnd::line(shard, alerts_written);
        flushed = base.write_all(end.as_bytes());
    }
    flushed = flushed.and_then(|()| base.flush());
    drop(base);
    if let (Some(file), Some(path)) = (file, &args.out) {
        flushed
            .and_then(|()| file.finish())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(ReplayError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) => return Err(e.into()),
    };
    if !args.verbosity.quiet {
        crate::report::say!("{}", outcome.summary);
    }
    if let (Some(out_of_order), true) = (&outcome.out_of_order, args.no_sort) {
        crate::report::say!(
            "exposure: {out_of_order}: those events were left out (--no-sort); without \
             --no-sort they are sorted, or raise --lateness"
        );
        return Ok(ExitCode::from(1));
    }
    Ok(if outcome.complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Counts the lines written through it (the alerts a shard wrote).
struct LineCount<'a, W: Write> {
    inner: W,
    lines: &'a mut u64,
}

impl<W: Write> Write for LineCount<'_, W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(bytes)?;
        *self.lines += memchr::memchr_iter(b'\n', &bytes[..written]).count() as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A digest of what decides a replay's alerts, for shard headers: the configuration file's
/// bytes, the detection, selection and alert flags, and the approvals. Not the inputs' paths,
/// the output, threads or memory: shards may run on machines that differ in those.
fn settings_digest(args: &ReplayArgs) -> anyhow::Result<String> {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    let mut detect = args.detect.clone();
    if let Some(path) = detect.config.take() {
        hash.update(file_sha256(&path)?);
    }
    hash.update(format!("{detect:?}|{:?}|{:?}", args.alerts, args.time));
    hash.update(format!("strict={} no_sort={}", args.strict, args.no_sort));
    if let Some(dir) = &args.approvals {
        let journal = crate::approvals::read_log(&crate::state::StateDir::new(dir))?;
        hash.update(serde_json::to_vec(&journal.changes)?);
    }
    Ok(hex16(&hash.finalize()))
}

/// A digest of the inputs, for shard headers: each input's file name with its folder's name,
/// and its size, in order (machines may mount the same archive at different paths).
fn inputs_digest(inputs: &[Input]) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for input in inputs {
        let name = input.display_name();
        let mut parts = name.rsplit('/');
        let (file, folder) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        hash.update(format!("{folder}/{file}\t{:?}\n", input.size()));
    }
    hex16(&hash.finalize())
}

/// The SHA-256 of a configuration file's bytes (for shard headers and archive manifests).
fn file_sha256(path: &Path) -> anyhow::Result<Vec<u8>> {
    use sha2::{Digest, Sha256};
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Sha256::digest(&bytes).to_vec())
}

fn hex16(digest: &[u8]) -> String {
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Takes the approvals of state dir `dir` into `config`; damaged records are said on stderr.
fn apply_approvals(config: &mut Config, dir: &Path) -> anyhow::Result<()> {
    let state_dir = crate::state::StateDir::new(dir);
    let journal = crate::approvals::read_log(&state_dir)?;
    for line in journal.damage_report(&crate::approvals::log_path(&state_dir)) {
        crate::report::say!("{line}");
    }
    crate::approvals::apply(&mut config.detector.policies, &journal.changes);
    Ok(())
}

/// The inputs the arguments name. An argument that names nothing is reported (and makes the
/// exit code 1) while the others are read; nothing at all to read is an error.
fn inputs_of(
    paths: &[String],
    format: crate::format::Format,
    filter: TimeFilter,
    problems: &mut Problems,
) -> anyhow::Result<Vec<Input>> {
    let expanded = expand_inputs(paths, format, filter)?;
    if expanded.pruned > 0 {
        problems.notice(&format!(
            "exposure: {} files in dt= folders outside --since/--until not read",
            expanded.pruned
        ));
    }
    for error in &expanded.not_found {
        problems.not_found(error);
    }
    if expanded.inputs.is_empty() {
        anyhow::bail!("nothing to read: no input file in {}", paths.join(" "));
    }
    Ok(expanded.inputs)
}

/// The exit code for an error: 2 for configuration, input-naming and schema problems, 1 for
/// the rest.
pub fn exit_code_for(error: &anyhow::Error) -> ExitCode {
    let usage = |e: &(dyn std::error::Error + 'static)| {
        e.is::<ConfigError>()
            || e.is::<crate::sink::SinkConfigError>()
            || e.is::<crate::live::checkpoint::CheckpointError>()
            || e.is::<InputError>()
            || e.is::<SchemaError>()
            || matches!(
                e.downcast_ref::<ReplayError>(),
                Some(ReplayError::Schema(_))
            )
    };
    if error.chain().any(usage) {
        ExitCode::from(2)
    } else {
        ExitCode::from(1)
    }
}

/// `--format` values: each format's name, with its description (both from `format`, which does
/// not depend on clap).
impl clap::ValueEnum for Format {
    fn value_variants<'a>() -> &'a [Self] {
        &Format::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()).help(self.describe()))
    }
}
