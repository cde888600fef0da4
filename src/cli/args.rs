//! The command line as the user typed it (the low layer): clap-derive flag definitions, the
//! parsing of their values, and the building of a validated [`Config`] from the detection flags.
//! Nothing here runs a command; [`super`] turns these into runs.

use crate::config::{Config, ConfigError, DetectOverrides};
use crate::format::Format;
use crate::ocsf::AlertFormat;
use crate::report::Problems;
use crate::time::TimeFilter;
use crate::time::{Span, Ts};
use clap::{Args, Parser, Subcommand};
use std::io::{self, IsTerminal};
use std::path::PathBuf;

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

    /// What each exposure cost: for every read grant that caused a window or raised an early
    /// warning, who could read through it, who did (every principal not normal for a table it
    /// opened who read it while it stood, per table, with the volume the log records), who
    /// still read after its revoke, and a verdict (`exposed, not accessed` when nobody new
    /// read). JSON lines (`exposure.impact/v1`) or CSV, one row per principal and table.
    #[command(after_help = "Examples:\n  \
        exposure impact sample-logs/incident.jsonl sample-logs/permissions.jsonl\n  \
        exposure impact --output csv --out notify.csv archive/")]
    Impact(ImpactArgs),

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

    /// Before a permission change is applied: which tables it would open (containers
    /// expanded to the tables known in them), who would gain read beyond each table's
    /// baseline, whether it widens what already stands, how to undo it, and a verdict from
    /// the config's `[check]` policy. Exit code 0 allow, 1 deny, 3 warn, 2 no answer (bad
    /// input). The change: SQL (PostgreSQL or Snowflake `GRANT`, `REVOKE`, `ALTER DEFAULT
    /// PRIVILEGES`; other statements of a migration passed over), an S3 bucket policy or ACL,
    /// a Google Cloud IAM policy or binding deltas, a Unity Catalog permissions change, a
    /// canonical JSON change, or `terraform show -json` of a plan.
    #[command(after_help = "Examples:
          exposure check --state-dir /var/lib/exposure \
                  --sql 'GRANT SELECT ON ALL TABLES IN SCHEMA warehouse.users TO PUBLIC'
          exposure check --sql 'GRANT SELECT ON warehouse.users.pii TO new.hire@corp.example' \
                  sample-logs/incident.jsonl sample-logs/permissions.jsonl
          terraform show -json plan.out | exposure check --state-dir state --change - --json
          exposure check --state-dir state --change policy.json --object acme-exports")]
    Check(CheckArgs),

    /// Validate a configuration file without starting anything: every key, the globs, the
    /// sinks' secrets (each environment variable set, each file readable), the Kafka client
    /// settings (as librdkafka reads them). Exit code 0 valid, 2 not (every problem named by
    /// its key). Run by the systemd unit before `watch` starts.
    #[command(after_help = "Examples:\n  \
        exposure config check /etc/exposure/exposure.toml\n  \
        exposure config check --quiet exposure.toml && systemctl reload exposure")]
    Config(ConfigArgs),

    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout.
    #[command(after_help = "Examples:\n  \
        exposure completions bash > /etc/bash_completion.d/exposure\n  \
        exposure completions zsh > \"${fpath[1]}/_exposure\"\n  \
        exposure completions fish > ~/.config/fish/completions/exposure.fish")]
    Completions {
        /// The shell.
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },

    /// Print the man page (roff) of exposure or of one subcommand, or write every page
    /// (`exposure.1`, `exposure-replay.1`, …) into a directory.
    #[command(after_help = "Examples:\n  \
        exposure man | man -l -\n  \
        exposure man replay | man -l -\n  \
        exposure man --out /usr/local/share/man/man1")]
    Man {
        /// The subcommand whose page to print (`baseline allow` for a nested one).
        #[arg(value_name = "SUBCOMMAND", conflicts_with = "out")]
        subcommand: Vec<String>,
        /// Write every page into DIR instead.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub command: ConfigCommand,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate FILE: print what it sets up and exit 0, or every problem found and exit 2.
    Check {
        /// The configuration file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Print nothing when the file is valid.
        #[arg(long, short)]
        quiet: bool,
    },
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub detect: DetectFlags,

    /// The proposed change as SQL text.
    #[arg(
        long,
        value_name = "SQL",
        conflicts_with = "change",
        required_unless_present = "change"
    )]
    pub sql: Option<String>,

    /// The proposed change in FILE (`-`: stdin): SQL, a policy or ACL, IAM JSON, a Unity
    /// Catalog change, canonical JSON lines, a Terraform plan's JSON.
    #[arg(long, value_name = "FILE")]
    pub change: Option<PathBuf>,

    /// What the change is [default: told from its text].
    #[arg(long, value_name = "KIND", value_parser = ["auto", "sql", "s3-policy", "s3-acl", "gcp-iam", "databricks", "canonical", "terraform"], default_value = "auto")]
    pub kind: String,

    /// Whose SQL: how unquoted names fold, which schema unqualified tables are in.
    #[arg(long, value_name = "DIALECT", value_parser = ["postgres", "snowflake"], default_value = "postgres")]
    pub dialect: String,

    /// The object a document is put on when it does not name it: an S3 bucket, a BigQuery
    /// dataset (`P.D`, `projects/P/datasets/D`), a Cloud Storage bucket (`gs://B`), a Unity
    /// Catalog securable.
    #[arg(long, value_name = "NAME")]
    pub object: Option<String>,

    /// The schema unqualified SQL table names are in [default: public for PostgreSQL].
    #[arg(long, value_name = "SCHEMA")]
    pub schema: Option<String>,

    /// Put before every SQL object name (when the logs' table names carry the database).
    #[arg(long, value_name = "DATABASE")]
    pub database: Option<String>,

    /// Write the answer as one JSON object (`exposure.check/v1`).
    #[arg(long)]
    pub json: bool,

    /// Judge against this `watch` (or `learn`) state dir (it may be in use).
    #[arg(long, value_name = "DIR", conflicts_with = "paths")]
    pub state_dir: Option<PathBuf>,

    /// History to learn the baselines from instead (logs with their permission changes).
    #[arg(required_unless_present = "state_dir", value_name = "PATH")]
    pub paths: Vec<String>,
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

    /// The alerts of the run being explained (JSON lines): the explanation is refused when
    /// these settings and logs do not make the table's windows as the alerts say.
    #[arg(long, value_name = "FILE", conflicts_with = "state_dir")]
    pub alerts: Option<PathBuf>,

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

/// What `exposure impact` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImpactFormat {
    /// One `exposure.impact/v1` object per exposure.
    Jsonl,
    /// One row per exposure, principal and table: the notification list.
    Csv,
}

#[derive(Debug, Args)]
pub struct ImpactArgs {
    #[command(flatten)]
    pub detect: DetectFlags,

    /// Write to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// What to write.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = ImpactFormat::Jsonl)]
    pub output: ImpactFormat,

    /// Only the exposure whose impact id (`imp-…`) this is.
    #[arg(long, value_name = "ID", conflicts_with = "from")]
    pub change: Option<String>,

    /// An interval to assess instead of the run's exposures: from TIME (with `--table GLOB`),
    /// every principal not normal for a matching table then who read it until `--until`.
    #[arg(long, value_name = "TIME", value_parser = crate::time::parse_cli_time)]
    pub from: Option<Ts>,

    /// The end of the `--from` interval (default: the end of the logs).
    #[arg(long, value_name = "TIME", value_parser = crate::time::parse_cli_time, requires = "from")]
    pub until: Option<Ts>,

    /// Show at most N skipped lines (the rest are counted).
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub max_reports: usize,

    #[command(flatten)]
    pub verbosity: Verbosity,

    /// A state dir that keeps evidence (`watch --keep-reads`, `learn --keep-reads`): its
    /// events are the logs, read with the configuration's detection settings (it may be in
    /// use by a running `watch`).
    #[arg(long, value_name = "DIR", conflicts_with = "paths")]
    pub state_dir: Option<PathBuf>,

    /// The logs (with their permission changes): files, folders, globs, object-store URLs.
    #[arg(required_unless_present = "state_dir", value_name = "PATH")]
    pub paths: Vec<String>,
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
    pub(super) fn init(&self, verbosity: Verbosity) -> anyhow::Result<()> {
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

    /// How often the checkpoint is written when something changed: what changed since the
    /// last one is appended to its change log.
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    pub checkpoint_every: Span,

    /// Compact the checkpoint (fold its change logs into a new full snapshot, on a thread of
    /// its own) once the logs pass this size and half the snapshot's (e.g. 64M; bytes
    /// without a unit).
    #[arg(long, value_name = "SIZE", default_value = "16M", value_parser = parse_size)]
    pub compact_after: usize,

    /// The outbox's bound on disk (e.g. 512M, 1G, bytes without a unit): beyond it, the
    /// oldest alerts a sink that is down has not delivered go to its dead-letter file.
    #[arg(long, value_name = "SIZE", default_value = "1G", value_parser = parse_size)]
    pub outbox_max_bytes: usize,

    /// How long to sleep when no input has anything new.
    #[arg(long, value_name = "DURATION", default_value = "20ms")]
    pub poll_every: Span,

    /// Keep every event taken as evidence in the state dir (JSON lines in DIR/evidence/, one
    /// file per day, kept once across restarts), so that `exposure impact --state-dir DIR`
    /// says what an exposure cost when the logs are gone (docs/impact.md). Not over Kafka.
    #[arg(long)]
    pub keep_reads: bool,

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

    /// Keep the history as the state dir's evidence, for `exposure impact --state-dir` (JSON
    /// lines in DIR/evidence/; `watch --keep-reads` goes on with it; docs/impact.md).
    #[arg(long)]
    pub keep_reads: bool,

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

    /// A grant snapshot: who can read, as PostgreSQL, Snowflake, S3 or an IAM policy exports
    /// it (`RESOURCE=FILE` for an IAM policy; repeatable; docs/inputs.md "Grant snapshots").
    /// Seeds the permission ledger.
    #[arg(long, value_name = "FILE", help_heading = "Permissions")]
    pub grants: Vec<String>,

    /// When the --grants snapshots were taken (rows with their own time keep it) [default:
    /// before the logs begin].
    #[arg(long, value_name = "TIME", value_parser = crate::time::parse_cli_time, help_heading = "Permissions")]
    pub grants_at: Option<Ts>,

    /// Sensitivity tags as the warehouse exports them: Snowflake TAG_REFERENCES (CSV or JSON
    /// lines) or BigQuery table resources with policy tags (repeatable; the config's `[tags]`
    /// says which tag means which level; docs/inputs.md "Sensitivity tags").
    #[arg(long, value_name = "FILE", help_heading = "Sensitivity")]
    pub tags: Vec<String>,
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
    pub(super) fn filter(&self) -> TimeFilter {
        TimeFilter {
            since: self.since,
            until: self.until,
        }
    }

    pub(super) fn check(&self) -> Result<(), ConfigError> {
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
    pub(super) fn problems(&self, max_reports: usize) -> Problems {
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
            grants: self.grants.clone(),
            grants_at: self.grants_at,
            tags: self.tags.clone(),
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
