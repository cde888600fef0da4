//! The detection loop of `exposure watch`, on its own thread: reads whole lines from the
//! followed files and stdin, parses them with the same parser and feeds the same detector as
//! `replay`, moves time on by the wall clock when the inputs are quiet, journals the alerts in
//! the outbox, and writes checkpoints. Everything it does is synchronous and in one place, so a
//! checkpoint always pairs a detector state with exactly the input offsets that produced it.

use super::checkpoint::{ChangeRecord, Checkpoint, CheckpointLog, CompactWhen, Progress};
use super::journal::AlertJournal;
use super::metrics::Metrics;
use crate::config::Config;
use crate::detect::{Alert, Detector, Observed};
use crate::event::{AccessEvent, PermissionChange};
use crate::format::{DecodeSink, Decoder, Line, ParseError};
use crate::intake::{InputClock, Reports, SharedClock, WallFloor, ahead_of_wall};
use crate::source::tail::{FileEvent, Follower};
use crate::time::{MICROS_PER_SEC, Span, Ts};
use std::collections::HashSet;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

/// Lines read from stdin by a helper thread: (line number, content; `None` for an over-long
/// line).
pub type StdinBatch = Vec<(u64, Option<Vec<u8>>)>;

/// How the loop runs.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub state_dir: crate::state::StateDir,
    pub checkpoint_every: Duration,
    /// Sleep between polls when nothing was read.
    pub poll_every: Duration,
    /// Trust each input to be in time order (see `Engine::move_time_by_sources`).
    pub per_source_order: bool,
    /// Where time is read (the system's clocks, but in tests).
    pub clock: SharedClock,
    /// When the checkpoint's change logs are compacted into a new base.
    pub compact: CompactWhen,
}

/// Reloading the configuration on request (SIGHUP).
pub struct Reload {
    pub requested: Arc<AtomicBool>,
    pub load: super::ConfigLoader,
}

/// How often the audit log of baseline changes is looked at for growth.
const BASELINE_LOG_EVERY: Duration = Duration::from_millis(250);

pub struct Engine {
    config: Config,
    /// The policies of the configuration, before the analysts' approvals are added.
    configured_policies: crate::detect::Policies,
    /// Changes of the audit log applied (a `forget` is applied once, when first seen).
    baseline_changes: usize,
    /// The audit log's size when last read, and when it was last looked at.
    baseline_log: (Option<u64>, Instant),
    reload: Option<Reload>,
    detector: Detector,
    alerts: Vec<Alert>,
    journal: AlertJournal,
    metrics: Arc<Metrics>,
    options: EngineOptions,
    last_checkpoint: Instant,
    dirty: bool,
    /// Event time by the wall clock, from the newest event and when it arrived.
    wall_floor: WallFloor,
    reports: Reports,
    sources: std::collections::HashMap<String, InputClock>,
    /// The evidence kept (`--keep-reads`): every event observed.
    evidence: Option<super::evidence::Evidence>,
    /// `[check] endpoint`: where each checkpoint's state is published for `POST /v1/check`.
    check_endpoint: Option<Arc<super::server::CheckEndpoint>>,
    /// Where checkpoints are written: change records after a base.
    checkpoints: CheckpointLog,
}

/// What one event is, for [`Engine::observe`]: an access (`Some((table, principal))` when it
/// is a read), or a permission change.
enum Seen<'a> {
    Access(Option<(&'a str, &'a str)>),
    Change(&'a PermissionChange),
}

/// A decoder per input (kept by [`Engine::run`] beside the engine, which takes what they decode).
type Decoders = std::collections::HashMap<String, Decoder>;

/// What the loop reads: the followed files, stdin's lines (from a helper thread), a decoder
/// per input, and whom to tell once every input is placed.
pub struct Inputs {
    follower: Option<Follower>,
    stdin: Option<mpsc::Receiver<StdinBatch>>,
    decoders: Decoders,
    ready: Option<Box<dyn FnOnce()>>,
}

impl Inputs {
    pub fn new(
        follower: Option<Follower>,
        stdin: Option<mpsc::Receiver<StdinBatch>>,
        ready: impl FnOnce() + 'static,
    ) -> Inputs {
        Inputs {
            follower,
            stdin,
            decoders: Decoders::new(),
            ready: Some(Box::new(ready)),
        }
    }

    /// Nothing more can come: no files are followed and stdin has ended.
    fn ended(&self) -> bool {
        self.follower.is_none() && self.stdin.is_none()
    }
}

/// Takes what one input's decoder gives.
struct Observing<'e> {
    engine: &'e mut Engine,
    input: &'e str,
}

impl DecodeSink for Observing<'_> {
    fn event(&mut self, line: u64, event: &AccessEvent<'_>, read: bool) {
        if let Some(evidence) = &mut self.engine.evidence {
            evidence.access(event);
        }
        let read = read.then_some((&*event.table, &*event.principal));
        self.engine
            .observe(self.input, line, event.ts, Seen::Access(read));
    }

    fn permission(&mut self, line: u64, change: &PermissionChange) {
        if let Some(evidence) = &mut self.engine.evidence {
            evidence.change(change);
        }
        self.engine
            .observe(self.input, line, change.ts, Seen::Change(change));
    }

    fn not_access(&mut self, _line: u64, _why: crate::format::vendor::NotAccess) {
        self.engine.metrics.intake.not_access.fetch_add(1, Relaxed);
    }

    fn malformed(&mut self, line: u64, error: ParseError) {
        self.engine.malformed(self.input, line, &error);
    }

    fn notice(&mut self, line: u64, message: &str) {
        tracing::warn!(input = self.input, line, "{message}");
    }
}

impl Engine {
    pub fn new(
        config: Config,
        checkpoint: Option<&Checkpoint>,
        mut journal: AlertJournal,
        metrics: Arc<Metrics>,
        options: EngineOptions,
    ) -> Engine {
        let mut detector = match checkpoint {
            Some(c) => Detector::restore(config.detector.clone(), &c.detector),
            None => Detector::new(config.detector.clone()),
        };
        detector.track_changes();
        if let Some(c) = checkpoint {
            journal.remember(c.emitted.iter().cloned());
        }
        let now = options.clock.now();
        Engine {
            configured_policies: config.detector.policies.clone(),
            baseline_changes: checkpoint.map_or(0, |c| c.baseline_changes),
            baseline_log: (None, now),
            reload: None,
            config,
            detector,
            alerts: Vec::new(),
            journal,
            metrics,
            reports: Reports::new(options.clock.clone()),
            last_checkpoint: now,
            dirty: false,
            wall_floor: WallFloor::default(),
            sources: std::collections::HashMap::new(),
            evidence: None,
            check_endpoint: None,
            checkpoints: CheckpointLog::new(&options.state_dir, options.compact),
            options,
        }
    }

    /// Goes on writing checkpoints after the ones `log` found in the state dir.
    pub fn write_checkpoints_to(&mut self, log: CheckpointLog) {
        self.checkpoints = log;
    }

    /// Publishes the state to `endpoint` at each checkpoint (and now), for `POST /v1/check`.
    pub fn answer_checks(&mut self, endpoint: Arc<super::server::CheckEndpoint>) {
        self.publish_check(&endpoint, &self.detector.snapshot());
        self.check_endpoint = Some(endpoint);
    }

    /// Puts what `snapshot` knows, and the rules in force, in place for the check endpoint.
    fn publish_check(
        &self,
        endpoint: &super::server::CheckEndpoint,
        snapshot: &crate::detect::DetectorSnapshot,
    ) {
        let settings = self.detector.settings();
        endpoint.publish(super::server::Judging {
            knowledge: crate::check::Knowledge::from_snapshot(snapshot, &settings.permissions.seed),
            policies: settings.policies.clone(),
            permissions: settings.permissions.clone(),
        });
    }

    /// Keeps every event observed in `evidence` (synced and marked at each checkpoint).
    pub fn keep_evidence(&mut self, evidence: super::evidence::Evidence) {
        self.evidence = Some(evidence);
    }

    /// Reload the configuration when `reload` says so.
    pub fn reload_with(&mut self, reload: Option<Reload>) {
        self.reload = reload;
    }

    /// Takes the analysts' changes in the state dir's audit log if it grew since last read
    /// (every [`BASELINE_LOG_EVERY`], and at once with `now`): the approvals in force become
    /// part of the policies; a `forget` not applied before removes its principals from the
    /// baselines. A log that cannot be read leaves what is in force as it is.
    fn pick_up_baseline_changes(&mut self, now: bool) {
        let at = self.options.clock.now();
        if !now && at.duration_since(self.baseline_log.1) < BASELINE_LOG_EVERY {
            return;
        }
        self.baseline_log.1 = at;
        let path = crate::approvals::log_path(&self.options.state_dir);
        let size = std::fs::metadata(&path).ok().map(|m| m.len());
        if !now && size == self.baseline_log.0 {
            return;
        }
        let changes = match crate::approvals::read_log(&self.options.state_dir) {
            Ok(journal) => {
                journal.warn_damaged(&path);
                journal.changes
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read the baseline changes; those in force stay");
                self.baseline_log.0 = size;
                return;
            }
        };
        self.baseline_log.0 = size;
        for change in changes.iter().skip(self.baseline_changes) {
            match change.action {
                crate::approvals::Action::Allow => tracing::info!(
                    table = %change.table, principal = %change.principal, by = %change.by,
                    expires = change.expires.as_deref().unwrap_or("never"), reason = %change.reason,
                    "approval taken"
                ),
                crate::approvals::Action::Forget => {
                    let glob = |p: &str| {
                        crate::detect::policy::compile_glob(p).map(|g| g.compile_matcher())
                    };
                    if let (Ok(table), Ok(principal)) =
                        (glob(&change.table), glob(&change.principal))
                    {
                        let removed = self.detector.forget(&table, &principal);
                        tracing::info!(
                            table = %change.table, principal = %change.principal,
                            by = %change.by, reason = %change.reason, removed,
                            "principals forgotten from the baseline"
                        );
                    }
                }
            }
        }
        if changes.len() != self.baseline_changes || now {
            self.baseline_changes = changes.len();
            self.metrics
                .baseline_changes
                .store(changes.len() as u64, Relaxed);
            let mut policies = self.configured_policies.clone();
            crate::approvals::apply(&mut policies, &changes);
            self.detector.set_policies(policies);
            self.dirty = true;
        }
    }

    /// Reloads the configuration if SIGHUP asked for it. Detection settings (thresholds,
    /// `[[tables]]`, allow patterns, read actions) take effect at once; sinks, inputs and time
    /// settings at the next start. An invalid configuration is logged and the old one kept.
    fn reload_if_asked(&mut self) {
        let Some(reload) = &self.reload else { return };
        if !reload.requested.swap(false, Relaxed) {
            return;
        }
        let config = match (reload.load)() {
            Ok(config) => config,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "configuration not reloaded; the one in use stays");
                self.metrics.config_reload_failures.fetch_add(1, Relaxed);
                return;
            }
        };
        let later = [
            (
                "sinks",
                format!("{:?}", config.sinks) != format!("{:?}", self.config.sinks),
            ),
            (
                "input",
                format!("{:?}", config.input) != format!("{:?}", self.config.input),
            ),
            (
                "detect.lateness",
                config.detector.lateness != self.config.detector.lateness,
            ),
            (
                "detect.max_ahead",
                config.detector.max_ahead != self.config.detector.max_ahead,
            ),
        ];
        for (what, changed) in later {
            if changed {
                tracing::warn!(setting = what, "changed: takes effect at the next start");
            }
        }
        self.configured_policies = config.detector.policies.clone();
        self.config.detector.policies = config.detector.policies;
        self.config.detector.read_actions = config.detector.read_actions.clone();
        self.pick_up_baseline_changes(true);
        self.metrics.config_reloads.fetch_add(1, Relaxed);
        tracing::info!("configuration reloaded");
    }

    /// Runs until `stop` is set (or stdin, the only input, ends), then writes a final
    /// checkpoint.
    ///
    /// `ready` is told once the first scan is done and its checkpoint written, before any line
    /// is read: every followed file is then positioned (existing files at their end, unless
    /// `--from-beginning`) and that position is durable, so a line appended from then on is
    /// read, even across a `kill -9`. The same holds for every file found later.
    pub fn run(
        mut self,
        follower: Option<Follower>,
        stdin: Option<mpsc::Receiver<StdinBatch>>,
        stop: &AtomicBool,
        ready: impl FnOnce() + 'static,
    ) -> io::Result<()> {
        let mut inputs = Inputs::new(follower, stdin, ready);
        self.pick_up_baseline_changes(true);
        loop {
            let progressed = self.step(&mut inputs)?;
            if stop.load(Relaxed) || inputs.ended() {
                break;
            }
            if progressed == 0 {
                std::thread::sleep(self.options.poll_every);
            }
        }
        self.checkpoint(inputs.follower.as_ref())?;
        self.checkpoints.wait_for_compaction();
        tracing::info!(
            events = self.metrics.intake.events_read.load(Relaxed),
            alerts = self.metrics.alerts_emitted.load(Relaxed),
            "stopped; final checkpoint written"
        );
        Ok(())
    }

    /// One turn of the loop: reads what the inputs gained, moves time on (by the inputs, and
    /// by the wall clock when they are quiet), journals the alerts and checkpoints when due.
    /// Returns how many lines were read. Never waits: [`Engine::run`] sleeps between idle
    /// turns, and tests turn it on a [`crate::intake::ManualClock`].
    pub fn step(&mut self, inputs: &mut Inputs) -> io::Result<u64> {
        self.reload_if_asked();
        self.pick_up_baseline_changes(false);
        let decoders = &mut inputs.decoders;
        let mut progressed = 0u64;
        if let Some(follower) = &mut inputs.follower {
            let placed = follower.scan_if_due(&mut |at| {
                let name = at.path.display().to_string();
                self.handle_line(decoders, &name, at.line, at.content);
            });
            // Where a file starts is durable before any of its lines is used: a restart
            // after `kill -9` starts it there too, not at its end.
            self.file_events(follower, decoders);
            if placed || inputs.ready.is_some() {
                self.journal_alerts()?;
                self.checkpoint(Some(follower))?;
            }
            if let Some(ready) = inputs.ready.take() {
                self.metrics.ready.store(true, Relaxed);
                ready();
            }
            progressed += follower.read(&mut |at| {
                let name = at.path.display().to_string();
                self.handle_line(decoders, &name, at.line, at.content);
            });
            self.file_events(follower, decoders);
            self.metrics
                .files_followed
                .store(follower.file_count() as u64, Relaxed);
        }
        if let Some(receiver) = &inputs.stdin {
            loop {
                match receiver.try_recv() {
                    Ok(batch) => {
                        progressed += batch.len() as u64;
                        for (line, content) in batch {
                            let content = match &content {
                                Some(bytes) => Line::Text(bytes),
                                None => Line::TooLong,
                            };
                            self.handle_line(decoders, "-", line, content);
                        }
                    }
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => {
                        tracing::info!("stdin ended");
                        inputs.stdin = None;
                        break;
                    }
                }
            }
        }
        if progressed == 0 {
            self.flush_records(decoders);
        }
        self.note_newest();
        // A partial last line (or record) is an event not seen yet: time waits for it.
        let partial = inputs
            .follower
            .as_ref()
            .is_some_and(Follower::holds_partial_line)
            || decoders.values().any(Decoder::has_pending);
        self.metrics
            .partial_record
            .store(u64::from(partial), Relaxed);
        if self.options.per_source_order {
            self.move_time_by_sources(partial);
        }
        if progressed == 0 && !partial {
            self.move_time_by_wall_clock();
        }
        self.journal_alerts()?;
        self.journal.tidy()?;
        self.update_metrics();
        if let Some(ready) = inputs.ready.take() {
            // Stdin only: nothing to position.
            self.checkpoint(None)?;
            self.metrics.ready.store(true, Relaxed);
            ready();
        } else if self.dirty
            && self
                .options
                .clock
                .now()
                .duration_since(self.last_checkpoint)
                >= self.options.checkpoint_every
        {
            self.checkpoint(inputs.follower.as_ref())?;
        }
        Ok(progressed)
    }

    fn handle_line(&mut self, decoders: &mut Decoders, input: &str, line: u64, content: Line<'_>) {
        self.dirty = true;
        let decoder = match decoders.get_mut(input) {
            Some(decoder) => decoder,
            None => decoders
                .entry(input.to_string())
                .or_insert_with(|| self.config.decoder()),
        };
        let mut observing = Observing {
            engine: self,
            input,
        };
        decoder.line(line, content, &mut observing);
    }

    /// An input that ended for good: completes its last record and forgets its decoder.
    /// Logs what happened to the followed files; a file that will give no more lines takes
    /// its decoder's pending record with it.
    fn file_events(&mut self, follower: &mut Follower, decoders: &mut Decoders) {
        for event in follower.take_events() {
            log_file_event(&event);
            if let FileEvent::Closed { path } | FileEvent::Dropped { path } = &event {
                self.retire_decoder(decoders, &path.display().to_string());
            }
        }
    }

    fn retire_decoder(&mut self, decoders: &mut Decoders, input: &str) {
        if let Some(mut decoder) = decoders.remove(input) {
            decoder.finish(&mut Observing {
                engine: self,
                input,
            });
        }
    }

    /// Completes the multi-line records the inputs left open (they went quiet).
    fn flush_records(&mut self, decoders: &mut Decoders) {
        for (input, decoder) in decoders {
            if decoder.has_pending() {
                decoder.finish(&mut Observing {
                    engine: self,
                    input,
                });
            }
        }
    }

    fn malformed(&mut self, input: &str, line: u64, error: &ParseError) {
        self.metrics.intake.bad(error);
        self.reports.report(|| {
            tracing::warn!(
                input,
                line,
                column = error.column(),
                kind = error.kind(),
                "skipped: {error}"
            )
        });
    }

    /// One event: `read` is `Some((table, principal))` for a read.
    fn observe(&mut self, input: &str, line: u64, ts: Ts, seen: Seen<'_>) {
        self.metrics.intake.events_read.fetch_add(1, Relaxed);
        // A wrong clock must not move time for everyone: an event dated past the wall clock by
        // more than `max_ahead` is quarantined.
        let max_ahead = self.config.detector.max_ahead;
        let clock = &self.options.clock;
        if let Some(ahead) = ahead_of_wall(ts, clock.wall(), max_ahead.micros()) {
            self.metrics.intake.quarantined.fetch_add(1, Relaxed);
            self.reports.report(|| {
                tracing::warn!(
                    input,
                    line,
                    ahead = %Span(ahead),
                    %max_ahead,
                    "quarantined: dated ahead of the wall clock (a wrong clock?); not used"
                )
            });
            return;
        }
        let now = clock.now();
        let lateness = self.config.detector.lateness.micros();
        // One look-up for an input already known (every event but its first).
        let disorder = match self.sources.get_mut(input) {
            Some(clock) => clock.note(ts, lateness, now),
            None => {
                let mut clock = InputClock::new(now);
                let disorder = clock.note(ts, lateness, now);
                self.sources.insert(input.to_string(), clock);
                disorder
            }
        };
        if let Some(disorder) = disorder {
            let disorder = Span(disorder);
            tracing::info!(
                input,
                %disorder,
                "the input is out of order: its watermark now leaves it this much room"
            );
        }
        let observed = match seen {
            Seen::Access(read) => {
                if read.is_some() {
                    self.metrics.intake.reads.fetch_add(1, Relaxed);
                }
                self.detector.observe_classified(ts, read, &mut self.alerts)
            }
            Seen::Change(change) => {
                self.metrics.intake.permission_changes.fetch_add(1, Relaxed);
                self.detector.observe_change(change, &mut self.alerts)
            }
        };
        if let Observed::Late { behind } = observed {
            self.metrics.intake.late.fetch_add(1, Relaxed);
            self.reports.report(|| {
                tracing::warn!(
                    input,
                    line,
                    behind_s = behind / MICROS_PER_SEC,
                    "late event not used (older than the watermark by more than lateness allows)"
                )
            });
        }
    }

    fn note_newest(&mut self) {
        let now = self.options.clock.now();
        self.wall_floor.note(self.detector.newest_event(), now);
    }

    /// Each input (a followed file, stdin) is written in time order up to the disorder it has
    /// shown so far, so no event still to come is older than the minimum over the inputs of
    /// (newest event time − that disorder): the watermark moves there at once instead of
    /// waiting for `lateness`, and an `open` goes out as soon as the read that crosses the
    /// threshold is read. An input in order and quiet for [`SETTLE`] has written its newest
    /// instant whole; one quiet for `lateness` (by the wall clock) no longer holds time back.
    /// An event older than the watermark is late (counted, logged, not used), as always, and
    /// the input it came from is given that much room from then on.
    fn move_time_by_sources(&mut self, partial: bool) {
        let lateness = self.config.detector.lateness.to_std();
        let now = self.options.clock.now();
        let floor = self
            .sources
            .values()
            .filter(|c| c.holds_time(now, lateness))
            .filter_map(|c| c.watermark(now, !partial))
            .min();
        let Some(floor) = floor else { return };
        if self.detector.watermark().is_none_or(|w| floor > w) {
            let before = self.alerts.len();
            self.detector.advance(floor, &mut self.alerts);
            if self.alerts.len() > before {
                self.dirty = true;
            }
        }
    }

    /// When the inputs are quiet, event time goes on with the wall clock: it is taken to be the
    /// newest event time plus the wall-clock time since that event arrived. The watermark
    /// follows (minus `lateness`), so a window with no novel read for `quiet` closes even if
    /// no further event comes. Replay never does this.
    fn move_time_by_wall_clock(&mut self) {
        let now = self.options.clock.now();
        let lateness = self.config.detector.lateness.micros();
        let Some(watermark) = self.wall_floor.watermark(now, lateness) else {
            return;
        };
        if self.detector.watermark().is_none_or(|w| watermark > w) {
            let before = self.alerts.len();
            self.detector.advance(watermark, &mut self.alerts);
            if self.alerts.len() > before {
                self.dirty = true;
            }
        }
    }

    fn journal_alerts(&mut self) -> io::Result<()> {
        self.journal.journal(&mut self.alerts)
    }

    fn update_metrics(&self) {
        self.metrics
            .open_windows
            .store(self.detector.open_windows() as u64, Relaxed);
        if let Some(newest) = self.detector.newest_event() {
            self.metrics.newest_event_us.store(newest, Relaxed);
        }
        if let Some(watermark) = self.detector.watermark() {
            self.metrics.watermark_us.store(watermark, Relaxed);
        }
    }

    /// Writes a checkpoint: what changed since the last one, appended to the change log (or
    /// the whole state, the first time).
    fn checkpoint(&mut self, follower: Option<&Follower>) -> io::Result<()> {
        if let Some(endpoint) = &self.check_endpoint {
            self.publish_check(endpoint, &self.detector.snapshot());
        }
        let open: HashSet<String> = self.detector.open_window_ids().into_iter().collect();
        let emitted = self.journal.emitted_keys_of(&open);
        let files = follower.map(Follower::cursors).unwrap_or_default();
        let evidence = match &mut self.evidence {
            Some(evidence) => {
                let today = super::evidence::day(self.options.clock.wall());
                Some(evidence.sync(&today)?)
            }
            None => None,
        };
        let started = Instant::now();
        let bytes = if self.checkpoints.needs_base() {
            let snapshot = self.detector.snapshot();
            // Everything is in the base: nothing is left to write as a change.
            self.detector.forget_changes();
            let mut checkpoint = Checkpoint::new("watch", snapshot, files, emitted);
            checkpoint.baseline_changes = self.baseline_changes;
            checkpoint.evidence = evidence;
            // (No compaction runs before the first base; waiting keeps it so whatever comes.)
            self.checkpoints.wait_for_compaction();
            checkpoint.save(&self.options.state_dir)?;
            self.checkpoints.saved_whole()?;
            0
        } else {
            let record = ChangeRecord {
                progress: Progress {
                    written_at: crate::state::envelope::stamp::<Checkpoint>().written_at,
                    written_by: "watch".into(),
                    files,
                    emitted,
                    baseline_changes: self.baseline_changes,
                    evidence,
                },
                detector: self.detector.take_changes(),
            };
            self.checkpoints.append(&record)?
        };
        self.metrics.checkpoint_bytes.store(bytes, Relaxed);
        self.metrics
            .checkpoint_compactions
            .store(self.checkpoints.compactions, Relaxed);
        tracing::debug!(
            bytes,
            took_us = started.elapsed().as_micros() as u64,
            "checkpoint written"
        );
        self.journal.after_checkpoint()?;
        self.metrics
            .checkpoint_at_us
            .store(self.options.clock.wall(), Relaxed);
        self.last_checkpoint = self.options.clock.now();
        self.dirty = false;
        Ok(())
    }
}

fn log_file_event(event: &FileEvent) {
    match event {
        FileEvent::Opened { path, offset } => {
            tracing::info!(path = %path.display(), offset, "following")
        }
        FileEvent::Resumed { path, offset } => {
            tracing::info!(path = %path.display(), offset, "resuming at the checkpoint")
        }
        FileEvent::Renamed { from, to } => {
            tracing::info!(from = %from.display(), to = %to.display(), "file moved")
        }
        FileEvent::Truncated { path } => {
            tracing::info!(path = %path.display(), "file truncated; reading from its start")
        }
        FileEvent::Dropped { path } => {
            tracing::info!(path = %path.display(), "rotated away or deleted, read to its end")
        }
        FileEvent::Closed { path } => {
            tracing::debug!(path = %path.display(), "delivered whole and read whole; closed")
        }
        FileEvent::CompressedCopy { path, of } => tracing::info!(
            path = %path.display(), of = %of.display(),
            "a compressed copy of a file followed already; not read again"
        ),
        FileEvent::Incomplete { path } => tracing::warn!(
            path = %path.display(),
            "the gzip stream ends early; it is read once the rest is written"
        ),
        FileEvent::Missing { path, offset } => tracing::warn!(
            path = %path.display(), offset,
            "a checkpointed file is gone: no followed path holds it and nothing is at its path; \
             what was written to it after the offset was not read"
        ),
        FileEvent::Replaced { path, offset } => tracing::warn!(
            path = %path.display(), offset,
            "the checkpointed file at this path was replaced or truncated while stopped and no \
             followed path holds it (follow rotated names too, e.g. app.log*): what was written \
             to it after the offset was not read; the file now at the path is read from its start"
        ),
        FileEvent::Unreadable { path, error } => {
            tracing::warn!(path = %path.display(), error = %error, "cannot read")
        }
        FileEvent::SymlinkRefused { path } => tracing::warn!(
            path = %path.display(),
            "a symbolic link, not read (--refuse-symlinks); said once per link"
        ),
        FileEvent::NothingMatches { pattern } => tracing::warn!(
            pattern = %pattern,
            "no file matches; it is looked for again at every scan"
        ),
    }
}
