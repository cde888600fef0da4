//! The command line, in two layers: [`args`] holds the flags as the user typed them (clap
//! definitions, value parsing, the validated [`Config`] they build); this module holds the
//! command bodies that run them. Owns exit codes: 0 ok, 1 runtime error, 2 usage or
//! configuration error.

pub mod args;
pub mod manual;
pub mod plan;

pub use args::*;

use crate::archive;
use crate::config::{Config, ConfigError, DetectOverrides};
use crate::replay::{self, ReplayError};
use crate::report::Problems;
use crate::source::parquet::SchemaError;
use crate::source::{Input, InputError, expand_inputs};
use crate::time::TimeFilter;
use anyhow::Context;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

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
        Command::Impact(args) => run_impact(args),
        Command::Baseline(args) => run_baseline(args),
        Command::Explain(args) => run_explain(args),
        Command::Check(args) => run_check(args).context(CheckUnanswered),
        Command::Config(ConfigArgs {
            command: ConfigCommand::Check { file, quiet },
        }) => run_config_check(&file, quiet),
        Command::Completions { shell } => {
            let mut out = Vec::new();
            manual::completions(shell, &mut out);
            write_stdout(&out)
        }
        Command::Man { subcommand, out } => match out {
            Some(dir) => {
                let written = manual::write_pages(&dir).with_context(|| {
                    format!("cannot write the man pages into {}", dir.display())
                })?;
                crate::report::to_stderr(format_args!(
                    "exposure: {} man pages written to {}",
                    written.len(),
                    dir.display()
                ));
                Ok(ExitCode::SUCCESS)
            }
            None => write_stdout(&manual::page(&subcommand)?),
        },
    }
}

/// Writes `bytes` to stdout; a closed stdout (`| head`) is not an error.
fn write_stdout(bytes: &[u8]) -> anyhow::Result<ExitCode> {
    let mut stdout = io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// `exposure config check FILE`: everything `watch` would refuse at start, without starting
/// anything — the file's keys (with line and column), then every sink's secrets and client,
/// then every Kafka client setting. Problems go to stderr, one per line, exit code 2.
fn run_config_check(file: &Path, quiet: bool) -> anyhow::Result<ExitCode> {
    let config = Config::load(Some(file), &DetectOverrides::default(), None)?;
    let mut problems = Vec::new();
    // Sinks keep files in the state dir only once they deliver: checking them touches none.
    let nowhere = crate::state::StateDir::new(file.with_extension("config-check-unused"));
    let sinks = crate::sink::check_each(&config.sinks, &nowhere)?;
    let mut names = Vec::new();
    for (section, checked) in config.sinks.iter().zip(sinks) {
        match checked {
            Ok(name) => names.push(format!("{name} ({})", section.kind())),
            Err(e) => problems.push(e.to_string()),
        }
    }
    if let Some(kafka) = &config.kafka {
        for (key, message) in kafka.refused_client_settings() {
            problems.push(format!("config key `input.kafka.{key}`: {message}"));
        }
    }
    if !problems.is_empty() {
        for problem in &problems {
            crate::report::to_stderr(format_args!(
                "exposure: config file {}: {problem}",
                file.display()
            ));
        }
        return Ok(ExitCode::from(2));
    }
    if !quiet {
        let input = match &config.kafka {
            Some(kafka) => format!(
                "Kafka topics {} at {} (group {})",
                kafka.topics.join(", "),
                kafka.brokers,
                kafka.group
            ),
            None => "files".to_string(),
        };
        let text = format!(
            "{}: valid\n  input: {input}, format {}\n  tables: {} [[tables]] rules, {} [[classify]] rules\n  sinks: {}\n  check endpoint: {}\n",
            file.display(),
            config.input.format.name(),
            config.detector.policies.rules.len(),
            config.detector.policies.classify.len(),
            if names.is_empty() {
                "none (alerts go to stdout)".to_string()
            } else {
                names.join(", ")
            },
            if config.check.endpoint { "on" } else { "off" },
        );
        write_stdout(text.as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `exposure check` could not answer (bad input, an unreadable state): exit code 2, never
/// the 0, 1 or 3 of a verdict.
#[derive(Debug, thiserror::Error)]
#[error("no answer")]
pub struct CheckUnanswered;

fn run_check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    use crate::check::proposal::{self, ProposalOptions};
    let config = args.detect.config(None, None)?;
    let text = match (&args.sql, &args.change) {
        (Some(sql), _) => sql.clone(),
        (None, Some(path)) if path.as_os_str() == "-" => {
            let mut text = String::new();
            io::Read::read_to_string(&mut io::stdin().lock(), &mut text)
                .context("cannot read the change from stdin")?;
            text
        }
        (None, Some(path)) => {
            let bytes = crate::state::read_regular(path, 64 << 20)
                .with_context(|| format!("cannot read the change {}", path.display()))?;
            String::from_utf8(bytes)
                .with_context(|| format!("{} is not UTF-8 text", path.display()))?
        }
        (None, None) => unreachable!("clap requires --sql or --change"),
    };
    let snapshot = match &args.state_dir {
        Some(dir) => {
            let state_dir = crate::state::StateDir::new(dir);
            state_dir
                .check_existing()
                .with_context(|| format!("cannot read the state dir {}", dir.display()))?;
            crate::live::checkpoint::Checkpoint::load(&state_dir)?
                .with_context(|| format!("{} holds no checkpoint", dir.display()))?
                .detector
        }
        None => {
            let mut problems = Problems::new(Box::new(io::stderr()), 10);
            let inputs = inputs_of(
                &args.paths,
                config.input.format,
                TimeFilter::default(),
                &mut problems,
            )?;
            let learned =
                crate::live::learn_history(&config, &inputs, TimeFilter::default(), &mut problems);
            problems.finish();
            learned?.1
        }
    };
    let knowledge =
        crate::check::Knowledge::from_snapshot(&snapshot, &config.detector.permissions.seed);
    let options = ProposalOptions {
        kind: args.kind.parse().map_err(ConfigError::Usage)?,
        dialect: args.dialect.parse().map_err(ConfigError::Usage)?,
        object: args.object.clone(),
        schema: args.schema.clone(),
        database: args.database.clone(),
        ts: snapshot.now.or(snapshot.newest).unwrap_or(0),
        ..Default::default()
    };
    let proposal = proposal::read(&text, &options)?;
    let report = crate::check::check(&knowledge, &proposal, config.check_rules());
    let out = if args.json {
        serde_json::to_string(&report)? + "\n"
    } else {
        report.text()
    };
    let mut stdout = io::stdout().lock();
    // Ignoring a closed stdout: the exit code carries the verdict.
    let _ = stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush());
    Ok(ExitCode::from(report.verdict.exit_code()))
}

fn run_impact(args: ImpactArgs) -> anyhow::Result<ExitCode> {
    let mut config = args.detect.config(None, None)?;
    let mut problems = args.verbosity.problems(args.max_reports);
    let paths = match &args.state_dir {
        Some(dir) => {
            let dir = crate::state::StateDir::new(dir);
            dir.check_existing()
                .with_context(|| format!("cannot read the state dir {}", dir.root().display()))?;
            let files = crate::live::evidence::files(&dir)?;
            if files.is_empty() {
                return Err(ConfigError::Usage(format!(
                    "{} keeps no evidence: run `watch` (and `learn`) with --keep-reads",
                    dir.root().display()
                ))
                .into());
            }
            config = config.reading_evidence();
            files
                .iter()
                .map(|f| f.to_string_lossy().into_owned())
                .collect()
        }
        None => args.paths.clone(),
    };
    let inputs = inputs_of(
        &paths,
        config.input.format,
        TimeFilter::default(),
        &mut problems,
    )?;
    use crate::incident::impact::Asked;
    let asked = match (&args.change, args.from) {
        (_, Some(_)) if args.detect.tables.is_empty() => {
            return Err(ConfigError::Usage(
                "--from names an interval of some tables: give them with --table GLOB".into(),
            )
            .into());
        }
        (_, Some(from)) => Asked::Named {
            tables: args.detect.tables.clone(),
            from,
            until: args.until,
        },
        (Some(id), None) => Asked::Change(id.clone()),
        (None, None) => Asked::All,
    };
    let impacts = crate::incident::impact::assess(&config, &inputs, &asked, &mut problems)?;
    problems.finish();
    let mut text = String::new();
    match args.output {
        ImpactFormat::Jsonl => {
            for impact in &impacts {
                text.push_str(&serde_json::to_string(impact)?);
                text.push('\n');
            }
        }
        ImpactFormat::Csv => text = crate::incident::impact::csv(&impacts),
    }
    match &args.out {
        Some(path) => crate::output::write_whole(path, text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => {
            let _ = io::stdout().lock().write_all(text.as_bytes());
        }
    }
    let accessed = impacts.iter().filter(|i| i.did_read_count > 0).count();
    let still = impacts.iter().filter(|i| i.after_revoke_count > 0).count();
    eprintln!(
        "exposure: {} exposures, {accessed} accessed, {still} still read after the revoke",
        impacts.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn run_report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    use crate::incident;
    let config = args.detect.config(None, None)?;
    let source = args.alerts.display().to_string();
    let alerts = incident::read_alerts_file(&args.alerts)?;
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
            if let Some(path) = &args.alerts {
                let alerts = crate::incident::read_alerts_file(path)?;
                let windows: Vec<_> = (alerts.windows.into_iter())
                    .filter(|w| w[0].table == question.table)
                    .collect();
                crate::incident::verify_settings(&config, &inputs, &windows)?;
            }
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
    let plan = plan::WatchPlan::new(&args)?;
    if plan.config.kafka.is_some() {
        crate::kafka::watch(plan.config, plan.options)?;
    } else {
        crate::live::watch(plan.config, plan.options, plan.reload)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn run_learn(args: LearnArgs) -> anyhow::Result<ExitCode> {
    args.log.init(args.verbosity)?;
    let mut problems = args.verbosity.problems(args.max_reports);
    let plan = plan::LearnPlan::new(&args, &mut problems)?;
    let (config, inputs, filter) = (&plan.config, &plan.inputs, plan.filter);
    let (learned, told) = match plan.into {
        plan::LearnInto::StateDir(dir) => {
            let learned = crate::live::learn(
                config,
                inputs,
                &dir,
                plan.force,
                plan.keep_reads,
                filter,
                &mut problems,
            );
            problems.finish();
            let told = format!(
                "baseline learned into {}; start `exposure watch --state-dir {}`",
                dir.root().display(),
                dir.root().display()
            );
            (learned?, told)
        }
        plan::LearnInto::Kafka(handover) => {
            let learned = crate::live::learn_history(config, inputs, filter, &mut problems);
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
    if plan.quiet {
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

fn run_archive(args: ArchiveArgs) -> anyhow::Result<ExitCode> {
    let mut problems = args.verbosity.problems(args.max_reports);
    let quiet = args.verbosity.quiet;
    let run = match plan::ArchivePlan::new(&args, &mut problems)? {
        plan::ArchivePlan::Seal { out } => {
            let by = crate::state::effective_user();
            let manifest = archive::seal(&out, &by)?;
            if !quiet {
                crate::report::say!(
                    "exposure: sealed {}: {} parts, {} events over {} days, by {by}",
                    out.display(),
                    manifest.parts.len(),
                    manifest.events,
                    manifest.days.len()
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
        plan::ArchivePlan::Upload { staging, out } => {
            return resume_upload(&staging, &out, quiet);
        }
        plan::ArchivePlan::Write(run) => run,
    };
    // To a store: the archive is written to a staging folder, then each file uploaded.
    let destination = run
        .to_store
        .then(|| crate::source::object::ArchiveDestination::new(&run.out))
        .transpose()?;
    if let Some(destination) = &destination {
        destination.prepare(run.start == archive::Start::Replace)?;
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
        .map_or_else(|| PathBuf::from(&run.out), |s| s.path().to_path_buf());
    // A staging folder is new: the destination was checked above.
    let local_start = if destination.is_some() {
        archive::Start::Fresh
    } else {
        run.start
    };
    let mut summary = archive::archive_with(
        &run.config,
        &run.inputs,
        &out_dir,
        run.strict,
        local_start,
        run.config_digest.clone(),
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
    if !run.quiet {
        crate::report::say!("{summary}");
    }
    Ok(if problems.unreadable_inputs == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `archive --resume STAGING --out URL`: uploads what an interrupted upload left.
fn resume_upload(staging: &Path, out: &str, quiet: bool) -> anyhow::Result<ExitCode> {
    let destination = crate::source::object::ArchiveDestination::new(out)?;
    destination.check_staged(staging)?;
    let urls = destination.upload(staging).map_err(|e| {
        anyhow::anyhow!(
            "{e}\nthe files not uploaded are still in {}; run the same command again",
            staging.display()
        )
    })?;
    std::fs::remove_dir_all(staging)
        .with_context(|| format!("{}: cannot remove the staging folder", staging.display()))?;
    if !quiet {
        crate::report::say!(
            "exposure: {} files uploaded to {}",
            urls.len(),
            destination.url()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn run_replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let mut problems = args.verbosity.problems(args.max_reports);
    let plan = plan::ReplayPlan::new(&args, &mut problems)?;
    replay_as_planned(plan, problems)
}

/// Carries out a replay as `plan` says.
fn replay_as_planned(plan: plan::ReplayPlan, mut problems: Problems) -> anyhow::Result<ExitCode> {
    // To a file: written under a temporary name and renamed into place when the run ends (an
    // error included: what was alerted is kept); a device or fifo is written in place.
    let mut file = match &plan.out {
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
    if let Some(run) = &plan.shard {
        let header = crate::replay::merge::ShardHeader::new(
            run.shard,
            run.settings_digest.clone(),
            run.inputs_digest.clone(),
        );
        base.write_all(header.line().as_bytes())
            .context("cannot write the shard header")?;
    }
    let mut alerts_written = 0;
    let mut out: Box<dyn Write + '_> = Box::new(LineCount {
        inner: &mut base,
        lines: &mut alerts_written,
    });
    if plan.ocsf {
        out = Box::new(crate::ocsf::OcsfLines::new(out));
    }
    let outcome = replay::replay(
        &plan.config,
        &plan.inputs,
        &plan.options,
        &mut out,
        &mut problems,
    );
    problems.finish();
    let mut flushed = out.flush();
    drop(out);
    if let (Some(run), Ok(outcome), Ok(())) = (&plan.shard, &outcome, &flushed)
        && outcome.complete
    {
        let end = crate::replay::merge::ShardEnd::line(run.shard, alerts_written);
        flushed = base.write_all(end.as_bytes());
    }
    flushed = flushed.and_then(|()| base.flush());
    drop(base);
    if let (Some(file), Some(path)) = (file, &plan.out) {
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
    if !plan.quiet {
        crate::report::say!("{}", outcome.summary);
    }
    if let (Some(out_of_order), true) = (&outcome.out_of_order, plan.refuse_disorder) {
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
    if error.chain().any(usage) || error.downcast_ref::<CheckUnanswered>().is_some() {
        ExitCode::from(2)
    } else {
        ExitCode::from(1)
    }
}
