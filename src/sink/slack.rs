//! Slack incoming webhooks: one readable message per alert — `text` (what notifications and
//! clients without blocks show) and Block Kit blocks (a section in `mrkdwn`, a context line with
//! the window id) — the close as a message of its own (incoming webhooks cannot reply in a
//! thread). Everything taken from the logs is escaped for `mrkdwn` (`&`, `<`, `>`), so a
//! principal named `<!channel>` pings nobody; long lists are cut to fit Slack's limits.

use super::{Sink, SinkFuture};
use crate::detect::{Alert, AlertStatus, ChangeRecord, ClosedBy, Severity};
use crate::time::format_ts;
use serde_json::{Value, json};

/// Principals named in a message, at most; the rest are counted.
const MAX_NAMED: usize = 20;

/// The longest `mrkdwn` text of a section block Slack takes.
const MAX_SECTION: usize = 3000;

pub struct SlackSink {
    name: String,
    url: reqwest::Url,
    client: reqwest::Client,
}

impl SlackSink {
    pub fn new(name: String, url: reqwest::Url, client: reqwest::Client) -> SlackSink {
        SlackSink { name, url, client }
    }
}

impl Sink for SlackSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn deliver<'a>(&'a mut self, alert: &'a Alert) -> SinkFuture<'a> {
        Box::pin(async move {
            let body = message(alert).to_string().into_bytes();
            super::http::post_json(&self.client, &self.url, &[], body).await
        })
    }
}

/// Text from the logs made safe for `mrkdwn`: Slack's three control characters escaped.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn severity(severity: Severity) -> &'static str {
    severity.name()
}

fn describe(change: &ChangeRecord) -> String {
    escape(&super::describe_change(change))
}

/// The message for `alert`: `{text, blocks}`.
pub fn message(alert: &Alert) -> Value {
    let table = escape(&alert.table);
    let (headline, mut body) = match (alert.status, &alert.change) {
        (AlertStatus::Grant, Some(change)) => (
            format!(
                ":warning: Read granted to {} on `{table}` ({})",
                escape(&change.grantee),
                severity(alert.severity)
            ),
            grant_body(alert, change),
        ),
        (AlertStatus::StillReadable, Some(change)) => {
            let who = alert
                .principals
                .first()
                .map_or("", |p| p.principal.as_str());
            let mut body = format!(
                "*Read* at {} *after the revoke of* {}",
                format_ts(alert.as_of),
                describe(change)
            );
            if let Some(standing) = &alert.standing {
                body.push_str(&format!("\n*Still granted* {}", describe(standing)));
            }
            (
                format!(
                    ":rotating_light: `{table}` still readable to {} ({})",
                    escape(who),
                    severity(alert.severity)
                ),
                body,
            )
        }
        _ => (window_headline(alert, &table), window_body(alert)),
    };
    if let Some(cause) = &alert.cause {
        body.push_str(&format!("\n*Opened by* {}", describe(cause)));
    }
    if let Some(until) = alert.exposed_until {
        body.push_str(&format!(
            "\n*Exposure ended* {} (reverted)",
            format_ts(until)
        ));
    }
    let section = super::at_most(&format!("*{headline}*\n{body}"), MAX_SECTION);
    json!({
        "text": headline,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": section}},
            {"type": "context", "elements": [
                {"type": "mrkdwn", "text": format!("exposure · {} · as of {}", alert.id, format_ts(alert.as_of))}
            ]}
        ]
    })
}

fn window_headline(alert: &Alert, table: &str) -> String {
    let grade = severity(alert.severity);
    match alert.status {
        AlertStatus::Open => {
            format!(":rotating_light: Exposure window opened on `{table}` ({grade})")
        }
        AlertStatus::Update if alert.closed_by.is_some() => {
            format!(":lock: Exposure on `{table}` reverted ({grade})")
        }
        AlertStatus::Update => format!(":arrow_up: Exposure window on `{table}` grew ({grade})"),
        _ => format!(":white_check_mark: Exposure window closed on `{table}` ({grade})"),
    }
}

fn window_body(alert: &Alert) -> String {
    let mut body = format!(
        "*{}* novel principal{} ({} reads) against {} normal, from {} to {}",
        alert.novel_principals,
        if alert.novel_principals == 1 { "" } else { "s" },
        alert.reads,
        alert.baseline_principals,
        format_ts(alert.window_start),
        format_ts(alert.window_end),
    );
    if alert.window_ended() {
        body.push_str(&format!(" ({:.0} min", alert.duration_s / 60.0));
        body.push_str(match alert.closed_by {
            Some(ClosedBy::EndOfInput) => ", the input ended)",
            _ => ", quiet since)",
        });
    }
    let names: Vec<String> = alert
        .principals
        .iter()
        .take(MAX_NAMED)
        .map(|p| escape(&p.principal))
        .collect();
    if !names.is_empty() {
        body.push_str(&format!("\n*Who:* {}", names.join(", ")));
        let more = alert.principals.len().saturating_sub(MAX_NAMED);
        if more > 0 {
            body.push_str(&format!(" and {more} more"));
        }
    }
    body
}

fn grant_body(alert: &Alert, change: &ChangeRecord) -> String {
    let mut body = format!("{}, before anyone read", describe(change));
    if let Some(statement) = &change.statement {
        body.push_str(&format!(
            "\n```{}```",
            escape(&super::at_most(statement, 500))
        ));
    }
    if !alert.tables.is_empty() {
        let tables: Vec<String> = alert
            .tables
            .iter()
            .take(MAX_NAMED)
            .map(|t| format!("`{}`", escape(t)))
            .collect();
        body.push_str(&format!("\n*Tables in it:* {}", tables.join(", ")));
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::PrincipalActivity;

    fn window(status: AlertStatus, principals: usize) -> Alert {
        let [open, _] = crate::sink::test_alerts();
        Alert {
            status,
            table: "hr.<salaries>".into(),
            principals: (0..principals)
                .map(|i| PrincipalActivity {
                    principal: if i == 0 {
                        "<!channel>".into()
                    } else {
                        format!("eng{i}@corp.example")
                    },
                    first_read: open.window_start,
                    last_read: open.window_end,
                    reads: 1,
                })
                .collect(),
            principals_truncated: 0,
            novel_principals: principals,
            closed_by: (status == AlertStatus::Closed).then_some(ClosedBy::Quiet),
            ..open
        }
    }

    #[test]
    fn names_from_the_logs_are_escaped_and_long_lists_cut() {
        let message = message(&window(AlertStatus::Open, 40));
        let section = message["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(section.contains("&lt;!channel&gt;"), "{section}");
        assert!(!section.contains("<!channel>"), "{section}");
        assert!(section.contains("`hr.&lt;salaries&gt;`"), "{section}");
        assert!(section.contains(" and 20 more"), "{section}");
        assert!(section.chars().count() <= MAX_SECTION);
        let text = message["text"].as_str().unwrap();
        assert!(
            text.starts_with(":rotating_light: Exposure window opened"),
            "{text}"
        );
    }

    #[test]
    fn the_close_and_a_grant_read_as_what_they_are() {
        let closed = message(&window(AlertStatus::Closed, 3));
        assert!(
            closed["text"].as_str().unwrap().contains("closed"),
            "{closed}"
        );
        let [open, _] = crate::sink::test_alerts();
        let change = ChangeRecord {
            ts: open.as_of,
            actor: "dba".into(),
            object: "hr".into(),
            grantee: "PUBLIC".into(),
            privilege: "SELECT".into(),
            statement: Some("GRANT SELECT ON ALL TABLES IN SCHEMA hr TO PUBLIC".into()),
        };
        let grant = Alert {
            status: AlertStatus::Grant,
            table: "hr".into(),
            change: Some(change),
            tables: vec!["hr.pay".into()],
            ..open
        };
        let message = message(&grant);
        let section = message["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(
            message["text"]
                .as_str()
                .unwrap()
                .contains("Read granted to PUBLIC")
        );
        assert!(section.contains("GRANT SELECT ON ALL TABLES IN SCHEMA hr TO PUBLIC"));
        assert!(section.contains("`hr.pay`"), "{section}");
    }
}
