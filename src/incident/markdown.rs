//! The report as Markdown, to paste into an incident ticket (Jira, GitHub, PagerDuty notes):
//! per window the bounds, severity, cause and revert, the principals, the busiest steps of the
//! timeline and the settings; names from the logs are put in code spans so that none of them
//! turns into markup or a mention.

use super::{Incident, by_severity, whole_seconds};
use crate::time::format_ts;
use std::fmt::Write;

/// `text` as an inline code span that holds any characters (backticks included): line breaks
/// become spaces, and bidi formatting characters (which reorder what is shown) are written
/// visibly as `<U+202E>`.
fn code(text: &str) -> String {
    let text = crate::text::visible(&text.replace(['\n', '\r'], " ")).into_owned();
    let fence = "`".repeat(longest_backtick_run(&text) + 1);
    if text.starts_with('`') || text.ends_with('`') {
        format!("{fence} {text} {fence}")
    } else {
        format!("{fence}{text}{fence}")
    }
}

/// [`code`] in a table cell: a `|` is escaped (`\|`, which GitHub-flavoured Markdown reads
/// as a pipe even inside a code span), not dropped.
fn cell_code(text: &str) -> String {
    code(text).replace('|', "\\|")
}

fn longest_backtick_run(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

/// One window's summary.
pub fn window(incident: &Incident) -> String {
    let last = incident.last();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### Exposure of {} — {:?}\n",
        code(&last.table),
        last.severity
    );
    let _ = writeln!(
        out,
        "- **Window:** {} → {} ({})\n- **Window id:** {}\n- **Unusual principals:** {} ({} \
         reads); **normal readers when it opened:** {}\n- **Status:** {}",
        format_ts(last.window_start),
        format_ts(last.window_end),
        whole_seconds(last.window_end - last.window_start),
        code(&last.id),
        last.novel_principals,
        last.reads,
        last.baseline_principals,
        match incident.closed_at() {
            Some(at) => format!("closed {}", format_ts(at)),
            None => "open at the end of the alerts".into(),
        }
    );
    if let Some(cause) = incident.history.iter().rev().find_map(|a| a.cause.as_ref()) {
        let _ = writeln!(
            out,
            "- **Cause:** {} granted {} on {} to {} at {}",
            code(&cause.actor),
            code(&cause.privilege),
            code(&cause.object),
            code(&cause.grantee),
            format_ts(cause.ts)
        );
        match incident.history.iter().rev().find_map(|a| a.exposed_until) {
            Some(at) => {
                let _ = writeln!(
                    out,
                    "- **Reverted:** {} (exposed for {})",
                    format_ts(at),
                    whole_seconds(at - cause.ts)
                );
            }
            None => out.push_str("- **Reverted:** not in the logs\n"),
        }
    }
    if let Some(impact) = &incident.impact {
        let after: Vec<String> = impact
            .after_revoke
            .iter()
            .map(|p| code(&p.principal))
            .collect();
        let _ = writeln!(
            out,
            "- **Impact:** {}: could read {} ({}), did read {}, after the revoke {}",
            impact.verdict,
            impact.could_read.count,
            impact.could_read.kind,
            impact.did_read_count,
            if after.is_empty() {
                "nobody".to_string()
            } else {
                after.join(", ")
            }
        );
        let mut columns: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        for read in impact.did_read.iter().flat_map(|p| &p.tables) {
            columns.extend(read.columns.iter().map(|c| format!("{}.{c}", read.table)));
        }
        if !columns.is_empty() {
            let columns: Vec<String> = columns.iter().map(|c| code(c)).collect();
            let _ = writeln!(out, "- **Columns read:** {}", columns.join(", "));
        }
    }
    let _ = writeln!(
        out,
        "\n| Principal | First read | Last read | Reads |\n| --- | --- | --- | ---: |"
    );
    for p in &last.principals {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            cell_code(&p.principal),
            format_ts(p.first_read),
            format_ts(p.last_read),
            p.reads
        );
    }
    let t = &incident.timeline;
    let mut busiest: Vec<usize> = (0..t.novel.len()).filter(|&i| t.novel[i] > 0).collect();
    busiest.sort_by_key(|&i| (std::cmp::Reverse(t.novel[i]), i));
    busiest.truncate(5);
    busiest.sort_unstable();
    if !busiest.is_empty() {
        let _ = writeln!(
            out,
            "\nBusiest steps of {} (reads by the unusual principals / by everyone else):\n",
            whole_seconds(t.step)
        );
        for i in busiest {
            let _ = writeln!(
                out,
                "- {}: {} / {}",
                format_ts(t.start + t.step * i as i64),
                t.novel[i],
                t.other[i]
            );
        }
    }
    let th = &incident.thresholds;
    let _ = writeln!(
        out,
        "\nSettings: learn {}, forget_after {}, span {}, close_after {}, min_principals {}{}. \
         Baseline when it opened: {} principals.\n",
        th.learn,
        th.forget_after,
        th.span,
        th.quiet,
        th.min_principals,
        incident
            .rule
            .as_deref()
            .map(|r| format!(" (rule {})", code(r)))
            .unwrap_or_default(),
        incident.baseline.len()
    );
    out
}

/// Every window, most severe first.
pub fn summary(incidents: &[Incident]) -> String {
    let order = by_severity(incidents);
    let mut out = format!("## Exposure windows ({})\n\n", incidents.len());
    for incident in order {
        out.push_str(&window(incident));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_stays_a_code_span_whatever_it_holds() {
        assert_eq!(code("bob"), "`bob`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`x"), "`` `x ``");
        assert_eq!(code("x|y\nz"), "`x|y z`");
        assert_eq!(cell_code("x|y"), "`x\\|y`");
        assert_eq!(code("\u{202e}txt.exe"), "`<U+202E>txt.exe`");
    }
}
