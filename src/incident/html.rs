//! The report as HTML: one self-contained page per window (styles and the timeline's SVG
//! inline, no external asset, a few lines of script only to sort the principals table; it opens
//! offline and prints on A4/Letter) and an index of every window and grant. Every name from
//! the logs is escaped.

use super::{Incident, Timeline, by_severity, page_name, whole_seconds};
use crate::detect::{Alert, AlertStatus, Severity};
use crate::time::{MICROS_PER_SEC, Ts, format_ts};
use std::fmt::Write;

/// `text` safe inside HTML text and attribute values; control and bidi formatting characters
/// are written visibly (`<U+202E>`).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            // Shown, not obeyed: a bidi override would reorder the text around it
            // (`\u{202e}txt.exe` reads as "exe.txt").
            c if crate::text::is_unsafe_char(c) => {
                out.push_str(&format!("&lt;U+{:04X}&gt;", c as u32));
            }
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
:root { --novel: #c62828; --other: #90a4ae; --window: rgba(198,40,40,0.10); --ink: #1c2430; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
       margin: 0 auto; max-width: 1100px; padding: 24px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 28px 0 8px; }
.sub { color: #55606e; margin: 0 0 16px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px;
         font-weight: 600; color: white; vertical-align: middle; }
.critical { background: #b71c1c; } .high { background: #e65100; } .medium { background: #f9a825; color: #222; }
.facts { display: grid; grid-template-columns: repeat(4, 1fr); gap: 8px 16px; margin: 12px 0; }
.facts div { background: #f5f7f9; border-radius: 6px; padding: 8px 10px; }
.facts b { display: block; font-size: 12px; color: #55606e; font-weight: 500; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #e3e7eb; }
th { background: #f5f7f9; cursor: pointer; user-select: none; white-space: nowrap; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
.cause { border-left: 4px solid #6a1b9a; background: #f6effa; padding: 8px 12px; border-radius: 4px; }
code { font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; }
svg text { font: 11px system-ui, sans-serif; fill: #55606e; }
.legend span { display: inline-block; width: 10px; height: 10px; margin: 0 4px 0 12px; }
footer { margin-top: 32px; color: #8a94a0; font-size: 12px; }
@media print { body { padding: 0; max-width: none; } th { cursor: auto; } a { color: inherit; }
               .facts div, th { -webkit-print-color-adjust: exact; print-color-adjust: exact; } }
"#;

/// Sorts a table by the clicked column (numbers by value, text by text); no framework.
const SORT_SCRIPT: &str = r#"
document.querySelectorAll("table.sortable th").forEach((th, col) => th.addEventListener("click", () => {
  const body = th.closest("table").tBodies[0];
  const rows = Array.from(body.rows);
  const asc = th.dataset.dir !== "asc"; th.dataset.dir = asc ? "asc" : "desc";
  const key = r => r.cells[col].dataset.sort ?? r.cells[col].textContent;
  rows.sort((a, b) => { const x = key(a), y = key(b); const n = parseFloat(x) - parseFloat(y);
    return (isNaN(n) ? x.localeCompare(y) : n) * (asc ? 1 : -1); });
  rows.forEach(r => body.appendChild(r));
}));
"#;

fn page(title: &str, body: &str, script: bool) -> String {
    let script = if script {
        format!("<script>{SORT_SCRIPT}</script>")
    } else {
        String::new()
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"generator\" content=\"exposure {}\">\
         <title>{}</title><style>{STYLE}</style></head><body>\n{body}\n<footer>exposure {} \
         &middot; all times UTC</footer>{script}</body></html>\n",
        env!("CARGO_PKG_VERSION"),
        escape(title),
        env!("CARGO_PKG_VERSION"),
    )
}

fn severity_badge(severity: Severity) -> String {
    let name = severity.name();
    format!("<span class=\"badge {name}\">{name}</span>")
}

/// The window's page.
pub fn window_page(incident: &Incident) -> String {
    let last = incident.last();
    let mut body = String::new();
    let _ = write!(
        body,
        "<p class=\"sub\"><a href=\"index.html\">&larr; all windows</a></p>\
         <h1>Exposure of <code>{}</code> {}</h1>\
         <p class=\"sub\">{} &rarr; {} ({}) &middot; window <code>{}</code> &middot; {}</p>",
        escape(&last.table),
        severity_badge(last.severity),
        format_ts(last.window_start),
        format_ts(last.window_end),
        whole_seconds(last.window_end - last.window_start),
        escape(&last.id),
        match incident.closed_at() {
            Some(at) => format!("closed {}", format_ts(at)),
            None => "still open at the end of the alerts".into(),
        },
    );
    let _ = write!(
        body,
        "<div class=\"facts\"><div><b>Unusual principals</b>{}</div><div><b>Their reads</b>{}</div>\
         <div><b>Normal readers when it opened</b>{}</div><div><b>Closed by</b>{}</div></div>",
        last.novel_principals,
        last.reads,
        last.baseline_principals,
        match last.closed_by {
            Some(crate::detect::ClosedBy::Quiet) => "quiet (no unusual read for close_after)",
            Some(crate::detect::ClosedBy::EndOfInput) => "end of input",
            None => "&mdash;",
        },
    );
    if let Some(cause) = incident.history.iter().rev().find_map(|a| a.cause.as_ref()) {
        let until = incident.history.iter().rev().find_map(|a| a.exposed_until);
        let _ = write!(
            body,
            "<h2>Cause</h2><div class=\"cause\"><b>{}</b> granted <b>{}</b> on <code>{}</code> to \
             <b>{}</b> at {}{}{}</div>",
            escape(&cause.actor),
            escape(&cause.privilege),
            escape(&cause.object),
            escape(&cause.grantee),
            format_ts(cause.ts),
            cause
                .statement
                .as_ref()
                .map(|s| format!("<br><code>{}</code>", escape(s)))
                .unwrap_or_default(),
            match until {
                Some(at) => format!(
                    "<br>Reverted at {} (exposed for {})",
                    format_ts(at),
                    whole_seconds(at - cause.ts)
                ),
                None => "<br>No revert in the logs".into(),
            },
        );
    }
    if let Some(impact) = &incident.impact {
        body.push_str(&impact_section(impact));
    }
    body.push_str("<h2>Timeline</h2>");
    body.push_str(&timeline_svg(incident));
    let _ = write!(
        body,
        "<p class=\"legend\"><span style=\"background:var(--novel)\"></span>reads by this window's \
         unusual principals<span style=\"background:var(--other)\"></span>reads by everyone \
         else<span style=\"background:var(--window)\"></span>the window &middot; one bar = {}</p>",
        whole_seconds(incident.timeline.step)
    );
    let _ = write!(
        body,
        "<h2>Unusual principals ({})</h2><table class=\"sortable\" id=\"principals\"><thead><tr>\
         <th>Principal</th><th>First read</th><th>Last read</th><th class=\"n\">Reads</th></tr>\
         </thead><tbody>",
        last.principals.len()
    );
    for p in &last.principals {
        let _ = write!(
            body,
            "<tr><td>{}</td><td data-sort=\"{}\">{}</td><td data-sort=\"{}\">{}</td>\
             <td class=\"n\">{}</td></tr>",
            escape(&p.principal),
            p.first_read,
            format_ts(p.first_read),
            p.last_read,
            format_ts(p.last_read),
            p.reads
        );
    }
    body.push_str("</tbody></table>");
    let _ = write!(
        body,
        "<h2>Baseline readers when it opened ({})</h2><p class=\"sub\">Principals normal for the \
         table when the window opened ({}): a normal read within <code>forget_after</code> ({}){}.</p>\
         <table class=\"sortable\" id=\"baseline\"><thead><tr><th>Principal</th>\
         <th>Last normal read</th></tr></thead><tbody>",
        incident.baseline.len(),
        format_ts(incident.first().as_of),
        incident.thresholds.forget_after,
        match incident.learn_until {
            Some(until) => format!("; the table learned until {}", format_ts(until)),
            None => String::new(),
        }
    );
    for (principal, last_read) in &incident.baseline {
        let _ = write!(
            body,
            "<tr><td>{}</td><td data-sort=\"{last_read}\">{}</td></tr>",
            escape(principal),
            format_ts(*last_read)
        );
    }
    body.push_str("</tbody></table>");
    body.push_str(
        "<h2>Alert history</h2><table id=\"history\"><thead><tr><th>Status</th><th>As of</th>\
         <th>Window end</th><th class=\"n\">Unusual principals</th><th class=\"n\">Reads</th>\
         <th>Severity</th></tr></thead><tbody>",
    );
    for alert in &incident.history {
        let _ = write!(
            body,
            "<tr><td>{:?}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td>{}</td></tr>",
            alert.status,
            format_ts(alert.as_of),
            format_ts(alert.window_end),
            alert.novel_principals,
            alert.reads,
            severity_badge(alert.severity)
        );
    }
    body.push_str("</tbody></table>");
    let t = &incident.thresholds;
    let _ = write!(
        body,
        "<h2>Settings that applied</h2><table id=\"settings\"><tbody>\
         <tr><td>rule</td><td>{}</td></tr><tr><td>learn</td><td>{}</td></tr>\
         <tr><td>forget_after</td><td>{}</td></tr><tr><td>span</td><td>{}</td></tr>\
         <tr><td>close_after</td><td>{}</td></tr><tr><td>min_principals</td><td>{}</td></tr>\
         <tr><td>allow patterns</td><td>{}</td></tr></tbody></table>",
        incident
            .rule
            .as_deref()
            .map(|r| format!("<code>[[tables]] match = \"{}\"</code>", escape(r)))
            .unwrap_or_else(|| "the defaults ([detect])".into()),
        t.learn,
        t.forget_after,
        t.span,
        t.quiet,
        t.min_principals,
        if incident.allowed { "yes" } else { "none" },
    );
    page(&format!("Exposure of {}", last.table), &body, true)
}

/// What the cause's exposure cost (`exposure impact`): who could read, who did, who still
/// read after the revoke, on every table the change opened.
fn impact_section(impact: &crate::impact::Impact) -> String {
    let reads: u64 = impact.did_read.iter().map(|p| p.reads).sum();
    let bytes: Option<i64> = (impact.did_read.iter())
        .flat_map(|p| p.tables.iter().filter_map(|t| t.bytes))
        .reduce(|a, b| a.saturating_add(b));
    let tables: std::collections::BTreeSet<&str> = (impact.did_read.iter())
        .flat_map(|p| p.tables.iter().map(|t| t.table.as_str()))
        .collect();
    let after: Vec<String> = (impact.after_revoke.iter())
        .map(|p| escape(&p.principal))
        .collect();
    let columns = columns_read(impact);
    let columns = if columns.is_empty() {
        String::new()
    } else {
        format!("<tr><td>columns read</td><td>{columns}</td></tr>")
    };
    format!(
        "<h2>Impact</h2><table id=\"impact\"><tbody>\
         <tr><td>verdict</td><td><b>{}</b></td></tr>\
         <tr><td>could read</td><td>{} ({})</td></tr>\
         <tr><td>did read</td><td>{} principals, {} reads of {} table{}{}</td></tr>\
         {columns}<tr><td>after the revoke</td><td>{}</td></tr></tbody></table>\
         <p class=\"sub\">Every table the change opened, this window's and the others: \
         <code>exposure impact</code> lists each principal (impact <code>{}</code>).</p>",
        escape(impact.verdict),
        impact.could_read.count,
        escape(impact.could_read.kind),
        impact.did_read_count,
        reads,
        tables.len(),
        if tables.len() == 1 { "" } else { "s" },
        bytes.map(|b| format!(", {b} bytes")).unwrap_or_default(),
        if after.is_empty() {
            "nobody".to_string()
        } else {
            format!("{} principals: {}", after.len(), after.join(", "))
        },
        escape(&impact.id),
    )
}

/// The columns read through the exposure, where the logs name them: per table,
/// `table: a, b` (escaped), tables by name.
fn columns_read(impact: &crate::impact::Impact) -> String {
    let mut by_table: std::collections::BTreeMap<&str, std::collections::BTreeSet<&str>> =
        std::collections::BTreeMap::new();
    for read in impact.did_read.iter().flat_map(|p| &p.tables) {
        if !read.columns.is_empty() {
            (by_table.entry(&read.table).or_default())
                .extend(read.columns.iter().map(String::as_str));
        }
    }
    let tables: Vec<String> = by_table
        .iter()
        .map(|(table, columns)| {
            let columns: Vec<String> = columns.iter().map(|c| escape(c)).collect();
            format!("<code>{}</code>: {}", escape(table), columns.join(", "))
        })
        .collect();
    tables.join("; ")
}

/// The timeline: stacked bars per step (unusual principals over everyone else), the window
/// shaded, the cause, its revert and the close marked.
pub fn timeline_svg(incident: &Incident) -> String {
    const W: f64 = 1000.0;
    const H: f64 = 240.0;
    const LEFT: f64 = 44.0;
    const TOP: f64 = 18.0;
    const BOTTOM: f64 = 28.0;
    let t: &Timeline = &incident.timeline;
    let last = incident.last();
    let plot_w = W - LEFT - 12.0;
    let plot_h = H - TOP - BOTTOM;
    let max = t
        .novel
        .iter()
        .zip(&t.other)
        .map(|(a, b)| a + b)
        .max()
        .unwrap_or(0)
        .max(1);
    let x = |ts: Ts| LEFT + plot_w * ((ts - t.start) as f64 / (t.end() - t.start) as f64);
    let y = |n: u64| TOP + plot_h * (1.0 - n as f64 / max as f64);
    let bar = plot_w / t.novel.len() as f64;
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg id=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" \
         width=\"100%\" role=\"img\" data-window-start=\"{}\" data-window-end=\"{}\">\
         <title>Reads of {} from {} to {}; window {} to {}</title>",
        format_ts(last.window_start),
        format_ts(last.window_end),
        escape(&last.table),
        format_ts(t.start),
        format_ts(t.end()),
        format_ts(last.window_start),
        format_ts(last.window_end),
    );
    let (wx0, wx1) = (x(last.window_start), x(last.window_end));
    let _ = write!(
        svg,
        "<rect class=\"window\" x=\"{wx0:.1}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{plot_h}\" \
         fill=\"rgba(198,40,40,0.10)\"><title>window {} to {}</title></rect>",
        (wx1 - wx0).max(1.5),
        format_ts(last.window_start),
        format_ts(last.window_end),
    );
    for (i, (&novel, &other)) in t.novel.iter().zip(&t.other).enumerate() {
        let bx = LEFT + bar * i as f64;
        let bw = (bar - 0.6).max(0.6);
        if other > 0 {
            let _ = write!(
                svg,
                "<rect x=\"{bx:.1}\" y=\"{:.1}\" width=\"{bw:.2}\" height=\"{:.1}\" fill=\"#90a4ae\"/>",
                y(other),
                TOP + plot_h - y(other)
            );
        }
        if novel > 0 {
            let _ = write!(
                svg,
                "<rect x=\"{bx:.1}\" y=\"{:.1}\" width=\"{bw:.2}\" height=\"{:.1}\" fill=\"#c62828\"/>",
                y(novel + other),
                y(other) - y(novel + other)
            );
        }
    }
    // Axes: the count at the top, about six time ticks.
    let _ = write!(
        svg,
        "<line x1=\"{LEFT}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#b0bac4\"/>\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{max}</text>\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">0</text>",
        TOP + plot_h,
        LEFT + plot_w,
        TOP + plot_h,
        LEFT - 6.0,
        TOP + 8.0,
        LEFT - 6.0,
        TOP + plot_h
    );
    let tick = nice_tick((t.end() - t.start) / 6);
    let mut at = (t.start + tick - 1).div_euclid(tick) * tick;
    while at < t.end() {
        let label = format_ts(at);
        let label = if tick % (86_400 * MICROS_PER_SEC) == 0 {
            label[..10].to_string()
        } else {
            label[11..16].to_string()
        };
        let _ = write!(
            svg,
            "<line x1=\"{0:.1}\" y1=\"{1:.1}\" x2=\"{0:.1}\" y2=\"{2:.1}\" stroke=\"#b0bac4\"/>\
             <text x=\"{0:.1}\" y=\"{3:.1}\" text-anchor=\"middle\">{label}</text>",
            x(at),
            TOP + plot_h,
            TOP + plot_h + 4.0,
            H - 10.0
        );
        at += tick;
    }
    let mut mark = |ts: Ts, color: &str, label: &str| {
        if ts < t.start || ts > t.end() {
            return;
        }
        let _ = write!(
            svg,
            "<line x1=\"{0:.1}\" y1=\"{1}\" x2=\"{0:.1}\" y2=\"{2:.1}\" stroke=\"{color}\" \
             stroke-width=\"1.5\" stroke-dasharray=\"4 3\"/><text x=\"{3:.1}\" y=\"{4}\" \
             style=\"fill:{color}\">{5}</text>",
            x(ts),
            TOP - 4.0,
            TOP + plot_h,
            x(ts) + 3.0,
            TOP - 6.0,
            escape(label)
        );
    };
    if let Some(cause) = incident.history.iter().rev().find_map(|a| a.cause.as_ref()) {
        mark(
            cause.ts,
            "#6a1b9a",
            &format!("{} {}", cause.privilege, cause.grantee),
        );
    }
    if let Some(until) = incident.history.iter().rev().find_map(|a| a.exposed_until) {
        mark(until, "#2e7d32", "reverted");
    }
    if let Some(closed) = incident.closed_at() {
        mark(closed, "#37474f", "closed");
    }
    svg.push_str("</svg>");
    svg
}

/// A round tick interval near `raw`.
fn nice_tick(raw: i64) -> i64 {
    const MINUTE: i64 = 60 * MICROS_PER_SEC;
    [
        1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080,
    ]
    .iter()
    .map(|m| m * MINUTE)
    .find(|&tick| tick >= raw)
    .unwrap_or(10080 * MINUTE)
}

/// The index: every window, most severe first then by start, and the grant alerts.
pub fn index_page(incidents: &[Incident], grants: &[Alert], source: &str) -> String {
    let order = by_severity(incidents);
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>Exposure windows</h1><p class=\"sub\">{} window{} and {} grant alert{} from \
         <code>{}</code></p><table class=\"sortable\" id=\"windows\"><thead><tr><th>Table</th>\
         <th>Severity</th><th>Start</th><th>End</th><th class=\"n\">Duration</th>\
         <th class=\"n\">Unusual principals</th><th class=\"n\">Reads</th><th>Cause</th></tr>\
         </thead><tbody>",
        incidents.len(),
        if incidents.len() == 1 { "" } else { "s" },
        grants.len(),
        if grants.len() == 1 { "" } else { "s" },
        escape(source)
    );
    for incident in order {
        let last = incident.last();
        let cause = incident
            .history
            .iter()
            .rev()
            .find_map(|a| a.cause.as_ref())
            .map(|c| {
                format!(
                    "{} {} to {}",
                    escape(&c.actor),
                    escape(&c.privilege),
                    escape(&c.grantee)
                )
            })
            .unwrap_or_default();
        let _ = write!(
            body,
            "<tr><td><a href=\"{}\"><code>{}</code></a></td><td data-sort=\"{}\">{}</td>\
             <td>{}</td><td>{}</td><td class=\"n\" data-sort=\"{}\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td>{cause}</td></tr>",
            page_name(last, "html"),
            escape(&last.table),
            last.severity as u8,
            severity_badge(last.severity),
            format_ts(last.window_start),
            format_ts(last.window_end),
            last.window_end - last.window_start,
            whole_seconds(last.window_end - last.window_start),
            last.novel_principals,
            last.reads
        );
    }
    body.push_str("</tbody></table>");
    if !grants.is_empty() {
        body.push_str(
            "<h2>Grants to everyone or large groups</h2><table id=\"grants\"><thead><tr><th>Time</th>\
             <th>Object</th><th>Grantee</th><th>Privilege</th><th>By</th><th class=\"n\">Tables</th>\
             </tr></thead><tbody>",
        );
        for grant in grants.iter().filter(|g| g.status == AlertStatus::Grant) {
            if let Some(change) = &grant.change {
                let _ = write!(
                    body,
                    "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td>\
                     <td class=\"n\">{}</td></tr>",
                    format_ts(change.ts),
                    escape(&change.object),
                    escape(&change.grantee),
                    escape(&change.privilege),
                    escape(&change.actor),
                    grant.tables.len().max(1)
                );
            }
        }
        body.push_str("</tbody></table>");
    }
    page("Exposure windows", &body, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_the_logs_cannot_become_markup() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }

    #[test]
    fn bidi_and_control_characters_are_shown_not_obeyed() {
        assert_eq!(escape("a\u{202e}txt.exe"), "a&lt;U+202E&gt;txt.exe");
        assert_eq!(escape("x\u{2066}y"), "x&lt;U+2066&gt;y");
        assert_eq!(escape("plain é 日"), "plain é 日");
    }

    #[test]
    fn ticks_are_round() {
        let minute = 60 * MICROS_PER_SEC;
        assert_eq!(nice_tick(7 * minute), 10 * minute);
        assert_eq!(nice_tick(50 * minute), 60 * minute);
        assert_eq!(nice_tick(100_000 * minute), 10080 * minute);
    }
}
