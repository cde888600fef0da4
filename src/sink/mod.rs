//! Alert sinks: where `exposure watch` delivers alerts — Prometheus Alertmanager, PagerDuty
//! Events v2, Slack incoming webhooks, generic webhooks, and JSON-lines files or stdout. Owns the `[[sinks]]`
//! configuration, secrets (from environment variables or files only, never logged), and the
//! translation of HTTP outcomes into "delivered", "retry" or "rejected for good". Ordering,
//! durability (the outbox, one delivery task per sink) is `live`'s; retry timing is [`backoff`]'s.

pub mod alertmanager;
pub mod backoff;
pub mod bound;
pub mod http;
pub mod jsonl;
pub mod kafka;
pub mod pagerduty;
pub mod secret;
pub mod slack;
pub mod webhook;

pub use backoff::Backoff;
pub use secret::Secret;

use crate::detect::Alert;
use crate::ocsf::AlertFormat;
use crate::state::StateDir;
use crate::time::Span;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a sink's delivery returns.
pub type SinkFuture<'a> =
    std::pin::Pin<Box<dyn Future<Output = Result<(), DeliveryError>> + Send + 'a>>;

/// Where alerts go (see [`crate::sink`]).
pub trait Sink: Send {
    /// A name for logs, metrics and the acknowledgement file.
    fn name(&self) -> &str;

    /// Delivers one alert event; `Ok` once the receiver has it.
    fn deliver<'a>(&'a mut self, alert: &'a Alert) -> SinkFuture<'a>;

    /// Called about once a second: for sinks that re-send state (Alertmanager). Failures are
    /// logged by the sink; the next tick tries again.
    fn tick(&mut self) -> SinkFuture<'_> {
        Box::pin(async { Ok(()) })
    }

    /// Whether the sink found its own state unreadable when built (and said so): it is then
    /// handed the whole outbox journal again to rebuild it.
    fn lost_state(&self) -> bool {
        false
    }
}

/// Why a delivery failed.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// Worth trying again (connection refused, timeout, 408, 429, 5xx), after `after` if the
    /// receiver said so.
    #[error("{reason}")]
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// Rejected for good (another 4xx): dead-lettered, never retried.
    #[error("{reason}")]
    Rejected { reason: String },
}

/// A `[[sinks]]` entry that cannot be used: the key at fault, and why.
#[derive(Debug, thiserror::Error)]
#[error("config key `{key}`: {message}")]
pub struct SinkConfigError {
    pub key: String,
    pub message: String,
}

/// One `[[sinks]]` entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum SinkSection {
    /// Prometheus Alertmanager, API v2.
    Alertmanager {
        name: Option<String>,
        /// Principals listed per alert at most (default 1000); the rest are counted in
        /// `principals_truncated`.
        max_principals: Option<usize>,
        url: String,
        /// Extra labels on every alert.
        #[serde(default)]
        labels: BTreeMap<String, String>,
        /// How often a firing alert is sent again (default 60s).
        resend_every: Option<Span>,
        /// How long a resolved alert keeps being sent (default 5m).
        resolved_for: Option<Span>,
        /// Per-request timeout (default 10s).
        timeout: Option<Span>,
        /// First retry delay (default 500ms); doubles up to `retry_max` (default 60s), with jitter.
        retry_initial: Option<Span>,
        retry_max: Option<Span>,
    },
    /// PagerDuty Events API v2.
    Pagerduty {
        name: Option<String>,
        /// Principals listed per alert at most (default 1000); the rest are counted in
        /// `principals_truncated`.
        max_principals: Option<usize>,
        #[serde(default = "pagerduty::default_url")]
        url: String,
        routing_key_env: Option<String>,
        routing_key_file: Option<PathBuf>,
        /// `payload.source` (default this host's name).
        source: Option<String>,
        /// Per-request timeout (default 10s).
        timeout: Option<Span>,
        /// First retry delay (default 500ms); doubles up to `retry_max` (default 60s), with jitter.
        retry_initial: Option<Span>,
        retry_max: Option<Span>,
    },
    /// The alert JSON, POSTed as is.
    Webhook {
        name: Option<String>,
        /// Principals listed per alert at most (default 1000); the rest are counted in
        /// `principals_truncated`.
        max_principals: Option<usize>,
        url: String,
        /// `exposure` (the alert as is, the default) or `ocsf` (an OCSF Detection Finding).
        #[serde(default)]
        format: AlertFormat,
        /// Header name -> environment variable holding its value.
        #[serde(default)]
        headers_env: BTreeMap<String, String>,
        /// Per-request timeout (default 10s).
        timeout: Option<Span>,
        /// First retry delay (default 500ms); doubles up to `retry_max` (default 60s), with jitter.
        retry_initial: Option<Span>,
        retry_max: Option<Span>,
    },
    /// A Slack incoming webhook: a readable message per alert.
    Slack {
        name: Option<String>,
        /// Principals listed per alert at most (default 1000); the rest are counted in
        /// `principals_truncated`.
        max_principals: Option<usize>,
        /// The webhook URL holds its token: it comes from an environment variable or a file.
        url_env: Option<String>,
        url_file: Option<PathBuf>,
        /// Per-request timeout (default 10s).
        timeout: Option<Span>,
        /// First retry delay (default 500ms); doubles up to `retry_max` (default 60s), with jitter.
        retry_initial: Option<Span>,
        retry_max: Option<Span>,
    },
    /// JSON lines appended to a file, or stdout (`-`).
    Jsonl {
        name: Option<String>,
        path: String,
        /// `exposure` (the alert as is, the default) or `ocsf` (an OCSF Detection Finding).
        #[serde(default)]
        format: AlertFormat,
    },
    /// A Kafka topic: one record per alert event, keyed by the alert id.
    Kafka {
        name: Option<String>,
        /// Principals listed per alert at most (default 1000); the rest are counted in
        /// `principals_truncated`.
        max_principals: Option<usize>,
        /// `host:port[,host:port…]`.
        brokers: String,
        topic: String,
        /// `exposure` (the alert as is, the default) or `ocsf` (an OCSF Detection Finding).
        #[serde(default)]
        format: AlertFormat,
        /// librdkafka settings passed through (TLS, SASL).
        #[serde(default)]
        client: BTreeMap<String, String>,
        /// How long one record may take to be acknowledged (default 10s).
        timeout: Option<Span>,
        /// First retry delay (default 500ms); doubles up to `retry_max` (default 60s), with jitter.
        retry_initial: Option<Span>,
        retry_max: Option<Span>,
    },
}

/// Settings every network sink takes (HTTP and Kafka).
#[derive(Debug, Clone, Copy, Default)]
struct HttpSection {
    timeout: Option<Span>,
    retry_initial: Option<Span>,
    retry_max: Option<Span>,
}

impl HttpSection {
    fn timeout(&self) -> Duration {
        self.timeout.map_or(Duration::from_secs(10), Span::to_std)
    }

    fn backoff(&self) -> Backoff {
        let default = Backoff::default();
        Backoff {
            initial: self.retry_initial.map_or(default.initial, Span::to_std),
            max: self.retry_max.map_or(default.max, Span::to_std),
        }
    }
}

/// A sink built from its section, with its retry policy.
pub struct BuiltSink {
    pub sink: Box<dyn Sink>,
    pub backoff: Backoff,
}

impl SinkSection {
    pub fn kind(&self) -> &'static str {
        match self {
            SinkSection::Alertmanager { .. } => "alertmanager",
            SinkSection::Pagerduty { .. } => "pagerduty",
            SinkSection::Webhook { .. } => "webhook",
            SinkSection::Slack { .. } => "slack",
            SinkSection::Jsonl { .. } => "jsonl",
            SinkSection::Kafka { .. } => "kafka",
        }
    }

    /// How many principals this sink lists per alert: `None` for the `jsonl` sink (whole
    /// alerts, as `replay` writes them).
    fn max_principals(&self) -> Option<usize> {
        match *self {
            SinkSection::Alertmanager { max_principals, .. }
            | SinkSection::Pagerduty { max_principals, .. }
            | SinkSection::Webhook { max_principals, .. }
            | SinkSection::Slack { max_principals, .. }
            | SinkSection::Kafka { max_principals, .. } => {
                Some(max_principals.unwrap_or(bound::DEFAULT_MAX_PRINCIPALS))
            }
            SinkSection::Jsonl { .. } => None,
        }
    }

    fn http(&self) -> HttpSection {
        match *self {
            SinkSection::Alertmanager {
                timeout,
                retry_initial,
                retry_max,
                ..
            }
            | SinkSection::Pagerduty {
                timeout,
                retry_initial,
                retry_max,
                ..
            }
            | SinkSection::Webhook {
                timeout,
                retry_initial,
                retry_max,
                ..
            }
            | SinkSection::Slack {
                timeout,
                retry_initial,
                retry_max,
                ..
            }
            | SinkSection::Kafka {
                timeout,
                retry_initial,
                retry_max,
                ..
            } => HttpSection {
                timeout,
                retry_initial,
                retry_max,
            },
            SinkSection::Jsonl { .. } => HttpSection::default(),
        }
    }

    fn given_name(&self) -> Option<&str> {
        match self {
            SinkSection::Alertmanager { name, .. }
            | SinkSection::Pagerduty { name, .. }
            | SinkSection::Webhook { name, .. }
            | SinkSection::Slack { name, .. }
            | SinkSection::Kafka { name, .. }
            | SinkSection::Jsonl { name, .. } => name.as_deref(),
        }
    }
}

/// The names of `sections`: `name` if given, else the kind (`webhook`, `webhook-2`, ...).
pub fn sink_names(sections: &[SinkSection]) -> Result<Vec<String>, SinkConfigError> {
    let mut names: Vec<String> = Vec::new();
    for (i, section) in sections.iter().enumerate() {
        let name = match section.given_name() {
            Some(name) => {
                let ok = !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                if !ok {
                    return Err(SinkConfigError {
                        key: format!("sinks[{i}].name"),
                        message: "use letters, digits, `-` and `_` (it names files)".into(),
                    });
                }
                name.to_string()
            }
            None => {
                let kind = section.kind();
                let same = names
                    .iter()
                    .filter(|n| *n == kind || n.starts_with(&format!("{kind}-")))
                    .count();
                if same == 0 {
                    kind.to_string()
                } else {
                    format!("{kind}-{}", same + 1)
                }
            }
        };
        if names.contains(&name) {
            return Err(SinkConfigError {
                key: format!("sinks[{i}].name"),
                message: format!("`{name}` names two sinks"),
            });
        }
        names.push(name);
    }
    Ok(names)
}

fn check_url(key: &str, url: &str) -> Result<reqwest::Url, SinkConfigError> {
    let parsed = reqwest::Url::parse(url).map_err(|e| SinkConfigError {
        key: key.into(),
        message: format!("`{url}` is not a URL: {e}"),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(SinkConfigError {
            key: key.into(),
            message: format!("`{url}`: only http and https are supported"),
        });
    }
    secret::register_url(&parsed);
    Ok(parsed)
}

/// Checks what can be checked without the environment (URLs, names).
pub fn validate(sections: &[SinkSection]) -> Result<(), SinkConfigError> {
    sink_names(sections)?;
    for (i, section) in sections.iter().enumerate() {
        match section {
            SinkSection::Alertmanager { url, .. }
            | SinkSection::Pagerduty { url, .. }
            | SinkSection::Webhook { url, .. } => {
                check_url(&format!("sinks[{i}].url"), url)?;
            }
            SinkSection::Slack {
                url_env, url_file, ..
            } => {
                if url_env.is_some() == url_file.is_some() {
                    return Err(SinkConfigError {
                        key: format!("sinks[{i}].url_env"),
                        message: "give exactly one of url_env and url_file (the webhook URL \
                                  holds its token: a secret)"
                            .into(),
                    });
                }
            }
            SinkSection::Kafka { brokers, topic, .. } => {
                if brokers.trim().is_empty() || topic.trim().is_empty() {
                    return Err(SinkConfigError {
                        key: format!(
                            "sinks[{i}].{}",
                            if topic.trim().is_empty() {
                                "topic"
                            } else {
                                "brokers"
                            }
                        ),
                        message: "is required".into(),
                    });
                }
            }
            SinkSection::Jsonl { path, .. } => {
                if path.is_empty() {
                    return Err(SinkConfigError {
                        key: format!("sinks[{i}].path"),
                        message: "is required (a file, or `-` for stdout)".into(),
                    });
                }
            }
        }
        if let SinkSection::Pagerduty {
            routing_key_env,
            routing_key_file,
            ..
        } = section
            && routing_key_env.is_some() == routing_key_file.is_some()
        {
            return Err(SinkConfigError {
                key: format!("sinks[{i}].routing_key_env"),
                message: "give exactly one of routing_key_env and routing_key_file".into(),
            });
        }
    }
    Ok(())
}

fn secret_from_env(key: &str, var: &str) -> Result<Secret, SinkConfigError> {
    match std::env::var(var) {
        Ok(value) if !value.trim().is_empty() => Ok(Secret::new(value.trim())),
        _ => Err(SinkConfigError {
            key: key.into(),
            message: format!("environment variable `{var}` is not set (or empty)"),
        }),
    }
}

/// A secret named by an `*_env` key (first) or a `*_file` key, each with its full key; neither
/// given is `missing`, reported at the env key.
fn secret_from(
    (env_key, env): (&str, &Option<String>),
    (file_key, file): (&str, &Option<PathBuf>),
    missing: &str,
) -> Result<Secret, SinkConfigError> {
    match (env, file) {
        (Some(var), _) => secret_from_env(env_key, var),
        (None, Some(path)) => secret_from_file(file_key, path),
        (None, None) => Err(SinkConfigError {
            key: env_key.into(),
            message: missing.into(),
        }),
    }
}

fn secret_from_file(key: &str, path: &Path) -> Result<Secret, SinkConfigError> {
    match std::fs::read_to_string(path) {
        Ok(value) if !value.trim().is_empty() => Ok(Secret::new(value.trim())),
        Ok(_) => Err(SinkConfigError {
            key: key.into(),
            message: format!("{} is empty", path.display()),
        }),
        Err(e) => Err(SinkConfigError {
            key: key.into(),
            message: format!("cannot read {}: {e}", path.display()),
        }),
    }
}

/// Builds the sinks of `sections` (reading secrets); `state_dir` holds what a sink keeps
/// between runs (Alertmanager's firing alerts).
pub fn build(
    sections: &[SinkSection],
    state_dir: &StateDir,
) -> Result<Vec<BuiltSink>, SinkConfigError> {
    let names = sink_names(sections)?;
    sections
        .iter()
        .zip(names)
        .enumerate()
        .map(|(i, (section, name))| build_one(i, section, name, state_dir))
        .collect()
}

/// Checks each sink of `sections` as [`build`] would build it — secrets read, URLs and
/// clients made — except that a Kafka sink's producer is not created (that would connect to
/// its brokers): librdkafka reads its settings only. Gives each sink's name, or its problem,
/// so that `exposure config check` names every sink's problem at once; `Err` only for a
/// problem of the list itself (two sinks with one name).
pub fn check_each(
    sections: &[SinkSection],
    state_dir: &StateDir,
) -> Result<Vec<Result<String, SinkConfigError>>, SinkConfigError> {
    let names = sink_names(sections)?;
    Ok(sections
        .iter()
        .zip(names)
        .enumerate()
        .map(|(i, (section, name))| match section {
            SinkSection::Kafka {
                brokers, client, ..
            } => kafka::check_settings(brokers, client, section.http().timeout())
                .map(|()| name)
                .map_err(|message| SinkConfigError {
                    key: format!("sinks[{i}].client"),
                    message,
                }),
            _ => build_one(i, section, name, state_dir).map(|built| built.sink.name().to_string()),
        })
        .collect())
}

fn build_one(
    i: usize,
    section: &SinkSection,
    name: String,
    state_dir: &StateDir,
) -> Result<BuiltSink, SinkConfigError> {
    let key = |k: &str| format!("sinks[{i}].{k}");
    let settings = section.http();
    let built = match section {
        SinkSection::Alertmanager {
            url,
            labels,
            resend_every,
            resolved_for,
            ..
        } => BuiltSink {
            sink: Box::new(alertmanager::AlertmanagerSink::new(
                name.clone(),
                check_url(&key("url"), url)?,
                http::client(settings.timeout())?,
                alertmanager::check_labels(&key("labels"), labels)?,
                resend_every.map_or(Duration::from_secs(60), Span::to_std),
                resolved_for.map_or(Duration::from_secs(300), Span::to_std),
                state_dir.sink_firing(&name),
            )),
            backoff: settings.backoff(),
        },
        SinkSection::Pagerduty {
            url,
            routing_key_env,
            routing_key_file,
            source,
            ..
        } => {
            let routing_key = secret_from(
                (&key("routing_key_env"), routing_key_env),
                (&key("routing_key_file"), routing_key_file),
                "give routing_key_env or routing_key_file",
            )?;
            BuiltSink {
                sink: Box::new(pagerduty::PagerDutySink::new(
                    name.clone(),
                    check_url(&key("url"), url)?,
                    http::client(settings.timeout())?,
                    routing_key,
                    source.clone().unwrap_or_else(hostname),
                )),
                backoff: settings.backoff(),
            }
        }
        SinkSection::Webhook {
            url,
            headers_env,
            format,
            ..
        } => {
            let mut headers = Vec::new();
            for (header, var) in headers_env {
                let value = secret_from_env(&key(&format!("headers_env.{header}")), var)?;
                headers.push((header.clone(), value));
            }
            BuiltSink {
                sink: Box::new(webhook::WebhookSink::new(
                    name.clone(),
                    check_url(&key("url"), url)?,
                    http::client(settings.timeout())?,
                    headers,
                    *format,
                )),
                backoff: settings.backoff(),
            }
        }
        SinkSection::Slack {
            url_env, url_file, ..
        } => {
            let url = secret_from(
                (&key("url_env"), url_env),
                (&key("url_file"), url_file),
                "give url_env or url_file",
            )?;
            let url = check_url(&key("url_env"), url.expose())?;
            BuiltSink {
                sink: Box::new(slack::SlackSink::new(
                    name.clone(),
                    url,
                    http::client(settings.timeout())?,
                )),
                backoff: settings.backoff(),
            }
        }
        SinkSection::Kafka {
            brokers,
            topic,
            client,
            format,
            ..
        } => BuiltSink {
            sink: Box::new(
                kafka::KafkaSink::new(
                    name.clone(),
                    brokers,
                    topic.clone(),
                    client,
                    settings.timeout(),
                    *format,
                )
                .map_err(|message| SinkConfigError {
                    key: key("client"),
                    message,
                })?,
            ),
            backoff: settings.backoff(),
        },
        SinkSection::Jsonl { path, format, .. } => BuiltSink {
            sink: Box::new(jsonl::JsonlSink::new(name.clone(), path, *format)),
            backoff: Backoff::default(),
        },
    };
    let built = match section.max_principals() {
        Some(max) => BuiltSink {
            sink: Box::new(bound::Bounded {
                inner: built.sink,
                max,
            }),
            backoff: built.backoff,
        },
        None => built,
    };
    Ok(built)
}

/// This machine's name, for `source` fields.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "exposure".to_string())
}

/// The clearly marked test window of `exposure sink-test`: its `open` then its `closed`, one
/// window (one id, so one PagerDuty incident, one Alertmanager alert) that ends as it is sent.
pub fn test_alerts() -> [Alert; 2] {
    use crate::detect::{ALERT_SCHEMA, AlertStatus, ClosedBy, PrincipalActivity, Severity};
    let now = chrono::Utc::now().timestamp_micros();
    let start = now - 60 * 1_000_000;
    let table = "exposure.sink_test";
    let open = Alert {
        schema: ALERT_SCHEMA.to_string(),
        id: format!("exp-test-{}", crate::detect::alert::window_id(table, start)),
        status: AlertStatus::Open,
        table: table.to_string(),
        window_start: start,
        window_end: now,
        duration_s: 60.0,
        principals: vec![PrincipalActivity {
            principal: "exposure-sink-test".into(),
            first_read: start,
            last_read: now,
            reads: 1,
        }],
        principals_truncated: 0,
        novel_principals: 1,
        reads: 1,
        baseline_principals: 0,
        severity: Severity::Medium,
        sensitivity: None,
        as_of: now,
        closed_by: None,
        cause: None,
        exposed_from: None,
        exposed_until: None,
        change: None,
        tables: Vec::new(),
        standing: None,
    };
    let closed = Alert {
        status: AlertStatus::Closed,
        closed_by: Some(ClosedBy::Quiet),
        ..open.clone()
    };
    [open, closed]
}

/// The one-line description of an alert used as a summary by the paging sinks.
pub fn summary(alert: &Alert) -> String {
    let test = if alert.id.starts_with("exp-test-") {
        "[TEST from exposure sink-test] "
    } else {
        ""
    };
    if alert.status == crate::detect::AlertStatus::StillReadable {
        let who = alert
            .principals
            .first()
            .map_or("", |p| p.principal.as_str());
        let mut text = format!(
            "{test}Still readable: {who} read {} at {} after the revoke of {}",
            alert.table,
            crate::time::format_ts(alert.as_of),
            alert
                .change
                .as_ref()
                .map(describe_change)
                .unwrap_or_default(),
        );
        if let Some(standing) = &alert.standing {
            text.push_str(&format!("; still granted: {}", describe_change(standing)));
        }
        return text;
    }
    if let Some(change) = &alert.change {
        return format!(
            "{test}Read granted on {} to {}: {}",
            alert.table,
            change.grantee,
            describe_change(change)
        );
    }
    let mut text = format!(
        "{test}Exposure window on {}: {} novel principal{} since {}",
        alert.table,
        alert.novel_principals,
        if alert.novel_principals == 1 { "" } else { "s" },
        crate::time::format_ts(alert.window_start),
    );
    if alert.window_ended() {
        text.push_str(&format!(
            ", ended {}",
            crate::time::format_ts(alert.window_end)
        ));
    }
    if let Some(cause) = &alert.cause {
        text.push_str(&format!("; opened by {}", describe_change(cause)));
    }
    if let Some(until) = alert.exposed_until {
        text.push_str(&format!(", reverted {}", crate::time::format_ts(until)));
    }
    text
}

/// Adds an alert's root cause to a sink's map of details: `cause` and `change` rendered by
/// `change`, `exposed_from` and `exposed_until` as times; nothing that is not set.
pub fn add_root_cause(
    alert: &Alert,
    map: &mut serde_json::Map<String, serde_json::Value>,
    change: impl Fn(&crate::detect::ChangeRecord) -> serde_json::Value,
) {
    for (key, record) in [
        ("cause", &alert.cause),
        ("change", &alert.change),
        ("standing", &alert.standing),
    ] {
        if let Some(record) = record {
            map.insert(key.into(), change(record));
        }
    }
    if let Some(sensitivity) = alert.sensitivity {
        map.insert("sensitivity".into(), serde_json::json!(sensitivity));
    }
    for (key, time) in [
        ("exposed_from", alert.exposed_from),
        ("exposed_until", alert.exposed_until),
    ] {
        if let Some(time) = time {
            map.insert(key.into(), crate::time::format_ts(time).into());
        }
    }
}

/// `text` cut to at most `max` characters, the cut marked with `…` (receivers' field limits).
pub fn at_most(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max - 1).collect();
    cut.push('…');
    cut
}

/// One permission change in words: `GRANT SELECT on db.t to PUBLIC by admin at …`.
pub fn describe_change(change: &crate::detect::ChangeRecord) -> String {
    format!(
        "{} on {} to {} by {} at {}",
        change.privilege,
        change.object,
        change.grantee,
        change.actor,
        crate::time::format_ts(change.ts)
    )
}

/// Classifies an HTTP outcome: 2xx delivered; 408, 429 and 5xx retried (honouring
/// `Retry-After`); any other status rejected for good, with the response body.
pub fn classify(
    status: u16,
    retry_after: Option<Duration>,
    body: &str,
) -> Result<(), DeliveryError> {
    // Redacted before it is cut, so no part of a secret is left at the cut.
    let body: String = secret::redact(body).chars().take(1024).collect();
    match status {
        200..=299 => Ok(()),
        408 | 429 | 500..=599 => Err(DeliveryError::Retry {
            reason: format!("HTTP {status}: {body}"),
            after: retry_after,
        }),
        _ => Err(DeliveryError::Rejected {
            reason: format!("HTTP {status}: {body}"),
        }),
    }
}
