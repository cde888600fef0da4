//! `exposure report`: the forensic record of each exposure window, for the responder and the
//! postmortem. From the alerts of a run and the logs it read, one [`Incident`] per window —
//! its alert history (open → update → closed), the reads per time step of the window's
//! principals against everyone else's ([`Timeline`]), the table's baseline readers when the
//! window opened (what the detector knew: a replay of the history before `window_start`,
//! restricted to the table), the cause and its revert, and the settings that applied — then
//! rendered as self-contained HTML pages with inline SVG ([`html`]) or Markdown for a ticket
//! ([`markdown`]). Building is here; drawing is in the renderers; reading logs is in [`scan`].

pub mod html;
pub mod impact;
pub mod markdown;
pub mod scan;

use crate::config::Config;
use crate::detect::policy::compile_glob_set;
use crate::detect::{Alert, AlertStatus, Thresholds};
use crate::report::Problems;
use crate::source::Input;
use crate::time::{MICROS_PER_SEC, Micros, TimeFilter, Ts, format_ts};
use std::collections::{BTreeMap, HashMap, HashSet};

/// One exposure window, everything the report shows about it.
#[derive(Debug, Clone)]
pub struct Incident {
    /// Its alerts in order: `open`, any `update`s, `closed`.
    pub history: Vec<Alert>,
    pub timeline: Timeline,
    /// The table's baseline readers when the window opened (its first alert's `as_of`), with
    /// their last normal read, most recent first: the principals normal for the table then,
    /// as many as the `open` alert's `baseline_principals`.
    pub baseline: Vec<(String, Ts)>,
    /// End of the table's learning period, if the history showed its first read.
    pub learn_until: Option<Ts>,
    /// The thresholds that applied to the table and the `[[tables]]` rule that chose them.
    pub thresholds: Thresholds,
    pub rule: Option<String>,
    /// Allow patterns of the table's policy, as configured.
    pub allowed: bool,
    /// What the exposure of the window's cause cost (`exposure impact`), when it has a cause.
    pub impact: Option<crate::impact::Impact>,
}

impl Incident {
    /// The latest alert: the window's final state.
    pub fn last(&self) -> &Alert {
        self.history.last().expect("an incident has an alert")
    }

    pub fn first(&self) -> &Alert {
        &self.history[0]
    }

    /// When the window closed: the `closed` alert's time (bounds plus `close_after`, or the
    /// end of the input), if it has closed.
    pub fn closed_at(&self) -> Option<Ts> {
        self.history
            .iter()
            .find(|a| a.status == AlertStatus::Closed)
            .map(|a| a.as_of)
    }
}

/// Reads per time step, from `start`, every `step`: by the window's principals (`novel`) and
/// by everyone else (`other`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    pub start: Ts,
    pub step: Micros,
    pub novel: Vec<u64>,
    pub other: Vec<u64>,
}

impl Timeline {
    /// Steps of one minute, widened (5, 15, 30 minutes, an hour, a day) to at most
    /// [`Timeline::MAX_STEPS`] over `from..until`.
    fn new(from: Ts, until: Ts) -> Timeline {
        const MINUTE: Micros = 60 * MICROS_PER_SEC;
        let span = (until - from).max(MINUTE);
        let step = [1, 5, 15, 30, 60, 180, 720, 1440]
            .iter()
            .map(|m| m * MINUTE)
            .find(|step| span / step < Timeline::MAX_STEPS as i64)
            .unwrap_or(1440 * MINUTE);
        let start = from.div_euclid(step) * step;
        let steps = ((until - start) / step + 1) as usize;
        Timeline {
            start,
            step,
            novel: vec![0; steps],
            other: vec![0; steps],
        }
    }

    pub const MAX_STEPS: usize = 240;

    pub fn end(&self) -> Ts {
        self.start + self.step * self.novel.len() as i64
    }

    fn count(&mut self, ts: Ts, novel: bool) {
        if ts < self.start || ts >= self.end() {
            return;
        }
        let at = ((ts - self.start) / self.step) as usize;
        if novel {
            self.novel[at] += 1;
        } else {
            self.other[at] += 1;
        }
    }
}

/// The alerts of a run, split into windows (by id, in first-alert order) and `grant` alerts.
#[derive(Debug, Default)]
pub struct AlertsRead {
    pub windows: Vec<Vec<Alert>>,
    pub grants: Vec<Alert>,
}

/// Reads the alerts file `path` ([`read_alerts`]).
pub fn read_alerts_file(path: &std::path::Path) -> anyhow::Result<AlertsRead> {
    use anyhow::Context;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    read_alerts(&text, &path.display().to_string())
}

/// Reads `exposure.alert/v1` lines; a line that is not one is an error naming its line.
pub fn read_alerts(text: &str, name: &str) -> anyhow::Result<AlertsRead> {
    let mut read = AlertsRead::default();
    let mut at: HashMap<String, usize> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let alert: Alert = serde_json::from_str(line).map_err(|e| {
            anyhow::anyhow!(
                "{name}:{}:{}: not an exposure.alert/v1 alert: {e}",
                i + 1,
                e.column()
            )
        })?;
        if alert.status == AlertStatus::Grant {
            read.grants.push(alert);
            continue;
        }
        match at.get(&alert.id) {
            Some(&w) => read.windows[w].push(alert),
            None => {
                at.insert(alert.id.clone(), read.windows.len());
                read.windows.push(vec![alert]);
            }
        }
    }
    Ok(read)
}

/// The span a window's timeline covers: from a little before the cause (or the start) to a
/// little after the close (or the revert).
fn timeline_span(history: &[Alert]) -> (Ts, Ts) {
    let last = history.last().expect("an alert");
    let mut from = last.window_start;
    let mut until = history
        .iter()
        .map(|a| a.as_of)
        .max()
        .unwrap_or(last.window_end);
    until = until.max(last.window_end);
    for alert in history {
        if let Some(cause) = alert.exposed_from {
            from = from.min(cause);
        }
        if let Some(revert) = alert.exposed_until {
            until = until.max(revert);
        }
    }
    let pad = ((until - from) / 4).max(10 * 60 * MICROS_PER_SEC);
    (from - pad, until + pad)
}

/// Builds the incidents of `windows` from `inputs`: one pass over the inputs for every
/// timeline, then one replay of the windows' tables that keeps each window's baseline as it
/// opens.
pub fn build(
    config: &Config,
    inputs: &[Input],
    windows: Vec<Vec<Alert>>,
    problems: &mut Problems,
) -> anyhow::Result<Vec<Incident>> {
    let mut timelines: Vec<Timeline> = Vec::with_capacity(windows.len());
    let mut by_table: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut principals: Vec<HashSet<&str>> = Vec::with_capacity(windows.len());
    let (mut from, mut until) = (Ts::MAX, Ts::MIN);
    for (i, history) in windows.iter().enumerate() {
        let (start, end) = timeline_span(history);
        from = from.min(start);
        until = until.max(end);
        timelines.push(Timeline::new(start, end));
        let last = history.last().expect("an alert");
        by_table.entry(&last.table).or_default().push(i);
        principals.push(
            last.principals
                .iter()
                .map(|p| p.principal.as_str())
                .collect(),
        );
    }
    if !windows.is_empty() {
        let filter = TimeFilter {
            since: Some(from),
            until: Some(until),
        };
        scan::reads(
            config,
            inputs,
            &filter,
            problems,
            &mut |ts, table, principal| {
                if let Some(indices) = by_table.get(table) {
                    for &i in indices {
                        timelines[i].count(ts, principals[i].contains(principal));
                    }
                }
            },
        );
    }
    let mut baselines = baselines_at_open(config, inputs, by_table.keys().copied())?;
    check_settings(config, &windows, &baselines)?;
    let mut incidents = Vec::with_capacity(windows.len());
    for (history, timeline) in windows.into_iter().zip(timelines) {
        let policy = config.detector.policies.resolve(&history[0].table);
        let known = baselines.remove(&history[0].id).unwrap_or_default();
        incidents.push(Incident {
            history,
            timeline,
            baseline: known.readers,
            learn_until: known.learn_until,
            thresholds: policy.thresholds,
            rule: policy.rule.clone(),
            allowed: !policy.allow.is_empty(),
            impact: None,
        });
    }
    if incidents
        .iter()
        .any(|i| i.history.iter().any(|a| a.cause.is_some()))
    {
        // Problems with the inputs were reported by the timeline's pass already.
        let mut quiet = Problems::new(Box::new(std::io::sink()), 0);
        for impact in impact::assess(config, inputs, &impact::Asked::All, &mut quiet)? {
            for incident in incidents.iter_mut() {
                if impact.windows.contains(&incident.history[0].id) {
                    incident.impact = Some(impact.clone());
                }
            }
        }
    }
    Ok(incidents)
}

/// Alerts that the given settings do not reproduce: the report (or `explain --alerts`) was run
/// with other settings than the run that made them, and a page would contradict its alerts.
#[derive(Debug, thiserror::Error)]
#[error(
    "these settings and logs do not make the alerts' windows: a report or an explanation made \
     with them would contradict the alerts:\n{details}\n\
     give the configuration and flags of the run that made the alerts (--config, --learn, \
     --min-principals …) and the logs it read, from the start of its learning; these settings: \
     {settings}"
)]
pub struct SettingsDiffer {
    /// One line a window that differs.
    pub details: String,
    /// The settings given, as `learn 7d, span 1h, …`.
    pub settings: String,
}

/// How the values that shape a table's windows read (`learn 7d, forget_after 30d, …`).
pub fn settings_summary(config: &Config, table: &str) -> String {
    let policy = config.detector.policies.resolve(table);
    let t = &policy.thresholds;
    let mut out = format!(
        "learn {}, forget_after {}, span {}, close_after {}, min_principals {}",
        t.learn, t.forget_after, t.span, t.quiet, t.min_principals
    );
    if let Some(rule) = &policy.rule {
        out.push_str(&format!(" ([[tables]] match = {rule:?})"));
    }
    if !policy.allow.is_empty() {
        out.push_str(", allow patterns");
    }
    out
}

/// Refuses alerts these settings do not make: each window must open, at its `window_start`,
/// with as many normal readers as its first alert says (`baseline_principals`). Both depend on
/// every setting that shapes a window (learn, forget_after, span, close_after, min_principals,
/// allow patterns, `[[tables]]` rules), so a report made with other settings is refused rather
/// than drawn with a baseline that contradicts its alert.
fn check_settings(
    config: &Config,
    windows: &[Vec<Alert>],
    baselines: &HashMap<String, BaselineAt>,
) -> Result<(), SettingsDiffer> {
    const SHOWN: usize = 5;
    let mut differ = Vec::new();
    for history in windows {
        let first = &history[0];
        let at = format_ts(first.window_start);
        let line = match baselines.get(&first.id) {
            None => format!(
                "  {} on {} (opened {at}): not a window with these settings",
                first.id, first.table
            ),
            Some(known) if known.readers.len() != first.baseline_principals => format!(
                "  {} on {} (opened {at}): the alert counts {} normal readers when it opened, \
                 these settings {}",
                first.id,
                first.table,
                first.baseline_principals,
                known.readers.len()
            ),
            Some(_) => continue,
        };
        differ.push((line, first.table.clone()));
    }
    let Some((_, table)) = differ.first() else {
        return Ok(());
    };
    let settings = settings_summary(config, table);
    let mut details: Vec<String> = differ.iter().take(SHOWN).map(|(l, _)| l.clone()).collect();
    if differ.len() > SHOWN {
        details.push(format!("  … and {} more windows", differ.len() - SHOWN));
    }
    Err(SettingsDiffer {
        details: details.join("\n"),
        settings,
    })
}

/// Checks that these settings make `windows` as their alerts say ([`SettingsDiffer`]
/// otherwise): one replay of their tables.
pub fn verify_settings(
    config: &Config,
    inputs: &[Input],
    windows: &[Vec<Alert>],
) -> anyhow::Result<()> {
    let tables: std::collections::BTreeSet<&str> =
        windows.iter().map(|w| w[0].table.as_str()).collect();
    let baselines = baselines_at_open(config, inputs, tables.into_iter())?;
    check_settings(config, windows, &baselines)?;
    Ok(())
}

/// Each window's baseline as it opened, by window id: one replay of `tables` alone (tables are
/// independent, so their state is the full run's), the detector keeping the baseline at every
/// open (`record_baselines`).
fn baselines_at_open<'t>(
    config: &Config,
    inputs: &[Input],
    tables: impl Iterator<Item = &'t str>,
) -> anyhow::Result<HashMap<String, BaselineAt>> {
    let tables: Vec<String> = tables.map(str::to_string).collect();
    if tables.is_empty() {
        return Ok(HashMap::new());
    }
    let mut config = config.clone();
    let only: Vec<String> = tables.iter().map(|t| globset::escape(t)).collect();
    config.detector.policies.only = Some(compile_glob_set(&only)?);
    config.detector.policies.only_prefixes = tables;
    config.detector.report_from = None;
    config.detector.record_baselines = true;
    let options = crate::replay::ReplayOptions {
        threads: std::thread::available_parallelism().map_or(1, |n| n.get().min(2)),
        ..Default::default()
    };
    // Problems with the inputs were reported by the timeline's pass already.
    let mut quiet = Problems::new(Box::new(std::io::sink()), 0);
    let outcome =
        crate::replay::replay(&config, inputs, &options, &mut std::io::sink(), &mut quiet)?;
    Ok(outcome
        .baselines
        .into_iter()
        .map(|b| {
            let known = BaselineAt {
                readers: b.readers,
                learn_until: b.learn_until,
            };
            (b.window, known)
        })
        .collect())
}

/// What a table's baseline was at a time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BaselineAt {
    /// The principals normal then, with their last normal read, most recent first.
    pub readers: Vec<(String, Ts)>,
    /// End of the table's learning, if its first read was seen.
    pub learn_until: Option<Ts>,
}

/// The detector's state after the history before `at`, on `table` alone.
pub fn state_at(
    config: &Config,
    inputs: &[Input],
    table: &str,
    at: Ts,
) -> anyhow::Result<crate::detect::DetectorSnapshot> {
    let mut config = config.clone();
    let only = globset::escape(table);
    config.detector.policies.only = Some(compile_glob_set(std::slice::from_ref(&only))?);
    config.detector.policies.only_prefixes = vec![table.to_string()];
    config.detector.report_from = None;
    let filter = TimeFilter {
        since: None,
        until: Some(at),
    };
    // Problems with the inputs were reported by the timeline's pass already.
    let mut quiet = Problems::new(Box::new(std::io::sink()), 0);
    let (_, snapshot) = crate::live::learn_history(&config, inputs, filter, &mut quiet)?;
    Ok(snapshot)
}

/// A duration in whole seconds, as the configuration writes them (`1h56m35s`).
pub fn whole_seconds(micros: Micros) -> String {
    crate::time::Span(micros.max(0) / MICROS_PER_SEC * MICROS_PER_SEC).to_string()
}

/// The incidents most severe first, then by start: the order of every listing.
pub fn by_severity(incidents: &[Incident]) -> Vec<&Incident> {
    let mut order: Vec<&Incident> = incidents.iter().collect();
    order.sort_by(|a, b| {
        b.last()
            .severity
            .cmp(&a.last().severity)
            .then(a.last().window_start.cmp(&b.last().window_start))
    });
    order
}

/// A file name for a window's page: its id (ids are `exp-` and hex digits).
pub fn page_name(alert: &Alert, extension: &str) -> String {
    let id: String = alert
        .id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    format!("{id}.{extension}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeline_widens_its_steps_to_stay_readable() {
        let minute = 60 * MICROS_PER_SEC;
        let short = Timeline::new(0, 90 * minute);
        assert_eq!(short.step, minute);
        assert_eq!(short.novel.len(), 91);
        let day = Timeline::new(0, 24 * 60 * minute);
        assert_eq!(day.step, 15 * minute);
        assert!(day.novel.len() <= Timeline::MAX_STEPS);
        let mut t = Timeline::new(10 * minute + 5, 20 * minute);
        assert_eq!(t.start, 10 * minute);
        t.count(10 * minute + 7, true);
        t.count(11 * minute, false);
        t.count(5 * minute, false);
        t.count(t.end(), true);
        assert_eq!(t.novel[0], 1);
        assert_eq!(t.other[1], 1);
        assert_eq!(t.novel.iter().sum::<u64>() + t.other.iter().sum::<u64>(), 2);
    }
}
