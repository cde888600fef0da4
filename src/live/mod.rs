//! `exposure watch` (live mode) and `exposure learn`. Owns the wiring of a long-running
//! service: the detection loop ([`engine`]) on its own thread, fed by [`crate::source::tail`]
//! and stdin; the durable [`outbox`] between detection and the sinks; one delivery task per sink
//! ([`deliver`]); the [`checkpoint`]; [`metrics`]; signals. Detection itself is the same
//! [`crate::detect::Detector`] replay uses, and decoding the same [`crate::format::Decoder`].

pub mod checkpoint;
pub mod deliver;
pub mod engine;
pub mod evidence;
pub mod journal;
pub mod metrics;
pub mod outbox;
pub mod server;
#[cfg(test)]
mod tests;

use crate::config::Config;
use crate::format::Line;
use crate::sink::Sink;
use crate::source::lines::LineReader;
use crate::source::tail::{FollowOptions, Follower};
use crate::state::StateDir;
use anyhow::Context;
use checkpoint::Checkpoint;
use deliver::Delivery;
use engine::{Engine, EngineOptions, StdinBatch};
use journal::AlertJournal;
use metrics::Metrics;
use outbox::{Outbox, SinkCursor};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, mpsc};
use std::time::Duration;

/// How `watch` runs.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// Files and globs to follow; `-` is stdin.
    pub paths: Vec<String>,
    pub state_dir: StateDir,
    pub from_beginning: bool,
    /// See [`FollowOptions::refuse_symlinks`].
    pub refuse_symlinks: bool,
    pub checkpoint_every: Duration,
    /// When the checkpoint's change logs are compacted.
    pub compact: checkpoint::CompactWhen,
    pub poll_every: Duration,
    pub metrics_addr: Option<SocketAddr>,
    /// See [`engine::EngineOptions::per_source_order`].
    pub per_source_order: bool,
    /// How long shutdown waits for sinks to deliver what is journaled.
    pub drain_timeout: Duration,
    /// The outbox journal's bound on disk; beyond it the oldest undelivered alerts are given
    /// up to the dead-letter files (see [`outbox::Outbox::overflow`]).
    pub outbox_max_bytes: u64,
    /// Keep every event taken as evidence in the state dir ([`evidence`]).
    pub keep_reads: bool,
}

/// Loads the configuration again (SIGHUP): the same file and flags as at the start.
pub type ConfigLoader = Box<dyn Fn() -> anyhow::Result<Config> + Send>;

/// Runs `exposure watch` until SIGINT or SIGTERM (or the end of stdin when it is the only
/// input).
pub fn watch(
    config: Config,
    options: WatchOptions,
    reload: Option<ConfigLoader>,
) -> anyhow::Result<()> {
    if config.input.format == crate::format::Format::Parquet {
        anyhow::bail!(crate::config::ConfigError::Invalid {
            key: "input.format".into(),
            message: "Parquet files cannot be followed; use `exposure replay` or `exposure learn`"
                .into(),
        });
    }
    let _lock = options.state_dir.lock()?;
    let loaded = Checkpoint::load_laid_out(&options.state_dir)?;
    let checkpoints = checkpoint::CheckpointLog::resume(
        &options.state_dir,
        loaded.as_ref().map(|l| &l.layout),
        options.compact,
    )?;
    if loaded
        .as_ref()
        .is_some_and(|l| l.layout == checkpoint::Layout::WholeFile)
    {
        tracing::info!(
            state_dir = %options.state_dir.root().display(),
            "the checkpoint is in the single-file layout of an earlier release: read, and \
             rewritten as a base and change log at the first checkpoint"
        );
    }
    let checkpoint = loaded.map(|l| l.checkpoint);
    match &checkpoint {
        Some(c) => tracing::info!(
            state_dir = %options.state_dir.root().display(), written_at = %c.written_at,
            written_by = %c.written_by, tables = c.detector.tables.len(), files = c.files.len(),
            "resuming from the checkpoint"
        ),
        None => {
            tracing::info!(state_dir = %options.state_dir.root().display(), "no checkpoint: starting afresh")
        }
    }
    let metrics = Arc::new(Metrics::default());
    metrics.outbox_max_bytes.store(
        options.outbox_max_bytes,
        std::sync::atomic::Ordering::Relaxed,
    );
    let evidence = open_evidence(&options.state_dir, checkpoint.as_ref(), options.keep_reads)?;

    let file_paths: Vec<String> = options
        .paths
        .iter()
        .filter(|p| *p != "-")
        .cloned()
        .collect();
    let follower = if file_paths.is_empty() {
        None
    } else {
        let follow = FollowOptions {
            from_beginning: options.from_beginning,
            refuse_symlinks: options.refuse_symlinks,
            line_cap: config.line_cap(),
            checkpointed_at: checkpoint.as_ref().and_then(Checkpoint::file_positions_at),
            ..FollowOptions::default()
        };
        let restored = checkpoint
            .as_ref()
            .map(|c| c.files.clone())
            .unwrap_or_default();
        Some(Follower::new(&file_paths, follow, restored)?)
    };
    let stdin = options
        .paths
        .iter()
        .any(|p| p == "-")
        .then(|| read_stdin(config.line_cap()));

    let engine_options = EngineOptions {
        state_dir: options.state_dir.clone(),
        checkpoint_every: options.checkpoint_every,
        compact: options.compact,
        poll_every: options.poll_every,
        per_source_order: options.per_source_order,
        clock: crate::intake::system_clock(),
    };
    let mut service = Service::start(
        &config,
        &options.state_dir,
        options.outbox_max_bytes,
        Arc::clone(&metrics),
    )?;
    let reload = reload.map(|load| {
        let requested = Arc::new(AtomicBool::new(false));
        service.reload_on_hangup(Arc::clone(&requested));
        engine::Reload { requested, load }
    });
    // The check endpoint, when configured: on the metrics listener, loopback by default.
    let check = config
        .check
        .endpoint
        .then(|| Arc::new(server::CheckEndpoint::new(config.check.clone())));
    let listen = match (options.metrics_addr, &check) {
        (Some(addr), _) => Some(addr),
        (None, Some(_)) => Some(server::DEFAULT_ADDR.parse().expect("a socket address")),
        (None, None) => None,
    };
    let published = check.clone();
    service.run(
        listen,
        check,
        options.drain_timeout,
        move |journal, stop, ready| {
            let mut engine = Engine::new(
                config,
                checkpoint.as_ref(),
                journal,
                metrics,
                engine_options,
            );
            engine.reload_with(reload);
            engine.write_checkpoints_to(checkpoints);
            if let Some(endpoint) = published {
                engine.answer_checks(endpoint);
            }
            if let Some(evidence) = evidence {
                engine.keep_evidence(evidence);
            }
            drop(checkpoint);
            engine.run(follower, stdin, stop, ready)
        },
    )
}

/// The evidence `watch --keep-reads` goes on with: after the checkpoint's mark, or afresh with
/// a fresh state. Evidence a run without `--keep-reads` went on past is refused (it would have
/// a gap); without `--keep-reads`, a state dir that keeps evidence is warned about.
fn open_evidence(
    state_dir: &StateDir,
    checkpoint: Option<&Checkpoint>,
    keep: bool,
) -> anyhow::Result<Option<evidence::Evidence>> {
    let mark = checkpoint.and_then(|c| c.evidence.as_ref());
    if !keep {
        if mark.is_some() {
            tracing::warn!(
                state_dir = %state_dir.root().display(),
                "this state dir keeps evidence (--keep-reads); without it, the evidence stops here"
            );
        }
        return Ok(None);
    }
    let held = evidence::files(state_dir)?;
    if checkpoint.is_some() && mark.is_none() && !held.is_empty() {
        anyhow::bail!(
            "{} holds evidence that stops where a run without --keep-reads went on: move it \
             away to keep evidence afresh",
            evidence::dir(state_dir).display()
        );
    }
    let today = evidence::day(crate::intake::system_clock().wall());
    let evidence = evidence::Evidence::open(state_dir, mark, &today).with_context(|| {
        format!(
            "cannot keep evidence in {}",
            evidence::dir(state_dir).display()
        )
    })?;
    if let Some(mark) = mark {
        tracing::info!(file = %mark.file, bytes = mark.length, "keeping evidence from the checkpoint's mark");
    }
    Ok(Some(evidence))
}

/// What surrounds detection in a long-running service: the outbox journal detection writes its
/// alerts to, one delivery task per sink, the metrics server, and the signals that stop it.
pub struct Service {
    journal: AlertJournal,
    deliveries: Vec<Delivery>,
    appended: tokio::sync::watch::Receiver<u64>,
    metrics: Arc<Metrics>,
    /// Set on SIGHUP, when the caller asked for it ([`Service::reload_on_hangup`]).
    hangup: Option<Arc<AtomicBool>>,
}

impl Service {
    /// Opens the outbox in `state_dir` and builds the configured sinks (without `[[sinks]]`,
    /// alerts go to stdout).
    pub fn start(
        config: &Config,
        state_dir: &StateDir,
        outbox_max_bytes: u64,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Service> {
        let outbox = Outbox::open(state_dir)
            .with_context(|| format!("cannot open the outbox in {}", state_dir.root().display()))?;
        let sinks = if config.sinks.is_empty() {
            vec![crate::sink::BuiltSink {
                sink: Box::new(crate::sink::jsonl::JsonlSink::new(
                    "stdout".into(),
                    "-",
                    Default::default(),
                )) as Box<dyn Sink>,
                backoff: crate::sink::Backoff::default(),
            }]
        } else {
            crate::sink::build(&config.sinks, state_dir)?
        };
        let (appended_tx, appended) = tokio::sync::watch::channel(outbox.next_seq() - 1);
        metrics.journaled.store(outbox.next_seq() - 1, Relaxed);
        let mut deliveries = Vec::new();
        let mut acks = Vec::new();
        let given_up: deliver::GivenUp = Arc::default();
        for crate::sink::BuiltSink { sink, backoff } in sinks {
            let mut cursor = SinkCursor::open(state_dir, sink.name(), Some(outbox.next_seq() - 1))?;
            if sink.lost_state() {
                cursor.rewind()?;
            }
            let sink_metrics = metrics.sink(sink.name(), cursor.acked());
            acks.push(Arc::clone(&sink_metrics));
            let dead_letters = state_dir.dead_letters(sink.name());
            deliveries.push(Delivery {
                metrics: sink_metrics,
                sink,
                cursor,
                backoff,
                dead_letters,
                given_up: Arc::clone(&given_up),
            });
        }
        let journal = AlertJournal::new(
            outbox,
            Arc::clone(&metrics),
            appended_tx,
            acks,
            given_up,
            outbox_max_bytes,
        );
        Ok(Service {
            journal,
            deliveries,
            appended,
            metrics,
            hangup: None,
        })
    }

    /// Sets `flag` on every SIGHUP (instead of the signal ending the process).
    pub fn reload_on_hangup(&mut self, flag: Arc<AtomicBool>) {
        self.hangup = Some(flag);
    }

    /// Runs `detect` on its own thread with the journal, a stop flag (set on SIGINT or
    /// SIGTERM) and a callback to call once ready, while the sinks deliver; then gives the
    /// sinks `drain_timeout` to deliver what is journaled.
    pub fn run<D>(
        self,
        metrics_addr: Option<SocketAddr>,
        check: Option<Arc<server::CheckEndpoint>>,
        drain_timeout: Duration,
        detect: D,
    ) -> anyhow::Result<()>
    where
        D: FnOnce(AlertJournal, &AtomicBool, Box<dyn FnOnce() + Send>) -> std::io::Result<()>
            + Send
            + 'static,
    {
        let Service {
            journal,
            deliveries,
            appended,
            metrics,
            hangup,
        } = self;
        let (stop_sinks_tx, stop_sinks_rx) = tokio::sync::watch::channel(false);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        let result = runtime.block_on(async move {
            if let Some(addr) = metrics_addr {
                let listener = server::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr} for metrics"))?;
                let addr = listener.local_addr().unwrap_or(addr);
                if check.is_some() {
                    tracing::info!(%addr, "serving metrics on /metrics and /ready, and checks on POST /v1/check");
                } else {
                    tracing::info!(%addr, "serving metrics on /metrics and /ready");
                }
                tokio::spawn(server::serve(listener, Arc::clone(&metrics), check));
            }
            let tasks: Vec<_> = deliveries
                .into_iter()
                .map(|d| tokio::spawn(d.run(appended.clone(), stop_sinks_rx.clone())))
                .collect();

            let stop = Arc::new(AtomicBool::new(false));
            let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
            let engine_stop = Arc::clone(&stop);
            let engine = std::thread::Builder::new()
                .name("detect".into())
                .spawn(move || {
                    let ready = Box::new(move || {
                        let _ = ready_tx.send(());
                    });
                    detect(journal, &engine_stop, ready)
                })
                .context("cannot start the detection thread")?;
            let (done_tx, done_rx) = tokio::sync::oneshot::channel();
            std::thread::spawn(move || {
                let _ = done_tx.send(engine.join());
            });
            let mut sigterm =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .context("cannot handle SIGTERM")?;
            if let Some(flag) = hangup {
                let mut sighup =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
                        .context("cannot handle SIGHUP")?;
                tokio::spawn(async move {
                    while sighup.recv().await.is_some() {
                        tracing::info!("SIGHUP: reloading the configuration");
                        flag.store(true, Relaxed);
                    }
                });
            }
            let mut done_rx = done_rx;
            // `watching` means ready: the inputs are positioned and that is checkpointed.
            tokio::spawn(async move {
                if ready_rx.await.is_ok() {
                    tracing::info!("watching");
                }
            });
            let engine_result = tokio::select! {
                result = &mut done_rx => result,
                _ = tokio::signal::ctrl_c() => { tracing::info!("SIGINT: stopping"); stop.store(true, Relaxed); done_rx.await }
                _ = sigterm.recv() => { tracing::info!("SIGTERM: stopping"); stop.store(true, Relaxed); done_rx.await }
            };
            // Give the sinks a moment to deliver what was journaled; the rest waits in the outbox.
            let _ = stop_sinks_tx.send(true);
            let drained = tokio::time::timeout(drain_timeout, async {
                for task in tasks {
                    let _ = task.await;
                }
            })
            .await;
            if drained.is_err() {
                tracing::warn!("sinks not drained in time; undelivered alerts stay in the outbox");
            }
            match engine_result {
                Ok(Ok(result)) => result.context("detection stopped"),
                Ok(Err(_)) | Err(_) => anyhow::bail!("the detection thread panicked"),
            }
        });
        // A sink write still blocked (a stdout nobody reads) does not hold up the exit: what it
        // was writing is not acknowledged, so it is delivered again at the next start.
        runtime.shutdown_timeout(Duration::from_millis(100));
        result
    }
}

/// Reads stdin on a helper thread in batches of whole lines.
fn read_stdin(cap: crate::format::decode::LineCap) -> mpsc::Receiver<StdinBatch> {
    let (sender, receiver) = mpsc::sync_channel::<StdinBatch>(64);
    std::thread::spawn(move || {
        // Opened as `replay` opens it: gzip is decompressed.
        let reader = match crate::source::Input::Stdin.open() {
            Ok(reader) => reader,
            Err(e) => {
                tracing::error!(error = %e, "cannot read stdin");
                return;
            }
        };
        let mut lines = LineReader::new(reader, cap);
        let mut batch: StdinBatch = Vec::new();
        loop {
            match lines.next_line() {
                Ok(Some((line, content))) => {
                    let content = match content {
                        Line::Text(bytes) => Some(bytes.to_vec()),
                        Line::TooLong => None,
                    };
                    batch.push((line, content));
                    // A line that arrives alone is handed over at once (latency); a flood is
                    // batched.
                    if (batch.len() >= 1024 || !lines.has_buffered_line())
                        && sender.send(std::mem::take(&mut batch)).is_err()
                    {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read stdin");
                    break;
                }
            }
        }
        if !batch.is_empty() {
            let _ = sender.send(batch);
        }
    });
    receiver
}

/// What `exposure learn` found in the history.
#[derive(Debug)]
pub struct Learned {
    pub outcome: crate::replay::ReplayOutcome,
    /// Exposure windows the history holds (not alerted: `exposure replay` shows them).
    pub windows: u64,
    /// Of those, the ones still open at the end of the history: `watch` extends them and
    /// sends their `closed` when they end.
    pub still_open: usize,
}

/// `exposure learn`: replays history into a fresh state dir, so that `watch` starts with the
/// baseline learned instead of learning for `learn`. Everything read is applied (the history
/// is complete: time moves to its newest event), so `watch` alerts on nothing older.
pub fn learn(
    config: &Config,
    inputs: &[crate::source::Input],
    state_dir: &StateDir,
    force: bool,
    keep_reads: bool,
    filter: crate::time::TimeFilter,
    problems: &mut crate::report::Problems,
) -> anyhow::Result<Learned> {
    let _lock = state_dir.lock()?;
    if !force && state_dir.checkpoint().exists() {
        anyhow::bail!(
            "{} already holds a checkpoint; --force replaces it (the state it holds is lost)",
            state_dir.root().display()
        );
    }
    let (learned, snapshot) = learn_history(config, inputs, filter, problems)?;
    let mut checkpoint = Checkpoint::new("learn", snapshot, Vec::new(), Vec::new());
    // A fresh state, and fresh evidence of what it learned from (or none).
    let held = evidence::files(state_dir)?;
    if keep_reads || !held.is_empty() {
        let today = evidence::day(crate::intake::system_clock().wall());
        let mut kept = evidence::Evidence::open(state_dir, None, &today)?;
        if keep_reads {
            evidence::keep_inputs(config, inputs, &filter, &mut kept)?;
            checkpoint.evidence = Some(kept.sync(&today)?);
        }
    }
    checkpoint.save(state_dir).with_context(|| {
        format!(
            "cannot write the checkpoint in {}",
            state_dir.root().display()
        )
    })?;
    Ok(learned)
}

/// The replay behind `exposure learn`: the detector's state at the end of the history, and
/// what the history held. Where the state goes (a state dir, a Kafka group) is the caller's.
pub fn learn_history(
    config: &Config,
    inputs: &[crate::source::Input],
    filter: crate::time::TimeFilter,
    problems: &mut crate::report::Problems,
) -> anyhow::Result<(Learned, crate::detect::snapshot::DetectorSnapshot)> {
    let options = crate::replay::ReplayOptions {
        keep_state: true,
        filter,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get().min(2)),
        ..Default::default()
    };
    let mut alerts = Vec::new();
    let mut outcome = crate::replay::replay(config, inputs, &options, &mut alerts, problems)?;
    // The history's windows are counted, not alerted: nothing was sent.
    outcome.summary.alerts = 0;
    let snapshot = outcome.state.take().expect("keep_state gives the state");
    let still_open = snapshot
        .tables
        .iter()
        .filter(|t| t.window.is_some())
        .count();
    let learned = Learned {
        windows: outcome.summary.windows,
        still_open,
        outcome,
    };
    Ok((learned, snapshot))
}
