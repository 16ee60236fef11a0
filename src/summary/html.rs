//! The summary page: one self-contained HTML file (no external script, font, style or image: it must open from an
//! email attachment). Every text that comes from the CSV, the state file or the service goes through [`escape`].

use super::Summary;
use crate::state::{Job, RowStatus, StateFile, StoredRow};
use std::fmt::Write as _;
use std::io::Write;

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            _ => escaped.push(character),
        }
    }
    escaped
}

/// A status as a CSS class or id part: only `[a-z_]`, whatever the state file holds.
fn token(status: &str) -> String {
    status.chars().filter(|c| c.is_ascii_lowercase() || *c == '_').collect()
}

fn colour(status: &str) -> &'static str {
    match RowStatus::from_name(status) {
        Some(RowStatus::Updated | RowStatus::Restored) => "#2e7d32",
        Some(RowStatus::Unchanged) => "#78909c",
        Some(RowStatus::WouldUpdate) => "#1565c0",
        Some(RowStatus::Failed) => "#c62828",
        Some(RowStatus::Invalid) => "#ef6c00",
        Some(RowStatus::Conflict) => "#6a1b9a",
        Some(RowStatus::Pending | RowStatus::Valid) | None => "#9e9e9e",
    }
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em;color:#222;max-width:1100px}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:2em}
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1.5em}dt{color:#666}dd{margin:0}
table{border-collapse:collapse;width:100%;font-size:.9em}th,td{border-bottom:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top}
td.error{overflow-wrap:anywhere}td.id,td.ids{font-family:monospace;font-size:.85em;white-space:nowrap}svg text{font-size:12px;fill:#333}
.filter input{margin-left:1em}
.verdict{font-size:1.5em;font-weight:600;padding:.5em .8em;border-left:8px solid;margin:0 0 .4em}
.verdict.good{color:#1b5e20;background:#e8f5e9;border-color:#2e7d32}.verdict.attention{color:#b71c1c;background:#ffebee;border-color:#c62828}
.rolled-back{font-weight:600;padding:.4em .8em;background:#fff8e1;border-left:8px solid #f9a825;margin:0 0 .4em}
h1{color:#555;font-weight:normal}th small{font-weight:normal;color:#666}";

/// The page's own script (inline: the page loads nothing): times in the viewer's local time with UTC beside, and the
/// status filter driven by the radios or by the address's fragment (`page.html#show=failed`). Without script the
/// page still reads: times in UTC, the filter by CSS.
const SCRIPT: &str = r#"(function () {
  function pad(n) { return String(n).padStart(2, '0'); }
  function local(d) {
    var offset = -d.getTimezoneOffset(), sign = offset < 0 ? '-' : '+';
    offset = Math.abs(offset);
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + pad(d.getHours()) + ':' +
      pad(d.getMinutes()) + ':' + pad(d.getSeconds()) + ' (UTC' + sign + pad(Math.floor(offset / 60)) + ':' + pad(offset % 60) + ')';
  }
  function utc(d) { return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC'); }
  document.querySelectorAll('time[datetime]').forEach(function (t) {
    var d = new Date(t.getAttribute('datetime'));
    if (!isNaN(d)) { t.textContent = local(d) + ' · ' + utc(d); t.setAttribute('data-local', local(d)); }
  });
  document.querySelectorAll('svg text[data-utc]').forEach(function (t) {
    var d = new Date(t.getAttribute('data-utc'));
    if (!isNaN(d)) { t.textContent = local(d).slice(0, 19) + ' local'; }
  });
  var table = document.getElementById('problems');
  function show(status) {
    if (!table) { return; }
    table.setAttribute('data-show', status);
    table.querySelectorAll('tbody tr').forEach(function (row) {
      row.hidden = status !== 'all' && row.getAttribute('data-status') !== status;
    });
    var radio = document.getElementById('show-' + status);
    if (radio) { radio.checked = true; }
  }
  document.querySelectorAll('input[name=show]').forEach(function (radio) {
    radio.addEventListener('change', function () {
      var status = radio.id.slice(5);
      show(status);
      history.replaceState(null, '', '#show=' + status);
    });
  });
  var asked = /^#show=([a-z_]+)$/.exec(location.hash);
  if (asked && document.getElementById('show-' + asked[1])) { show(asked[1]); }
})();"#;

/// A time from the state file (RFC 3339 UTC) as the page shows it: UTC without script, local and UTC with it.
fn time(utc: &str) -> String {
    format!("<time datetime=\"{0}\">{0}</time>", escape(utc))
}

/// Writes the page of the job.
pub fn write(state: &StateFile, job: &Job, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    let summary = Summary::read(state, job, |row| problems.push(row))?;
    out.write_all(render(&summary, &problems).as_bytes())?;
    Ok(())
}

/// The page of a summary and the rows that need attention.
pub fn render(summary: &Summary, problems: &[StoredRow]) -> String {
    let mut page = String::new();
    let title = format!("pcbulk {}: {}", summary.job, summary.csv);
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}{}</style></head><body>\n",
        escape(&title),
        filter_style(problems)
    );
    verdict(&mut page, summary);
    let _ = writeln!(page, "<h1>{}</h1>", escape(&title));
    header(&mut page, summary);
    page.push_str("<h2>Rows per status</h2>\n");
    counts_chart(&mut page, summary);
    super::chart::write(&mut page, summary);
    page.push_str("<h2>Top errors</h2>\n");
    errors_table(&mut page, summary);
    let _ = writeln!(page, "<h2>Rows that need a look ({})</h2>", problems.len());
    problems_table(&mut page, problems);
    let _ = write!(page, "<script>{SCRIPT}</script>\n</body></html>\n");
    page
}

/// The first thing on the page: the verdict in words and colour, then a rollback of the job, if any.
fn verdict(page: &mut String, summary: &Summary) {
    let verdict = summary.verdict();
    let class = if verdict.good { "good" } else { "attention" };
    let _ = writeln!(page, "<p id=\"verdict\" class=\"verdict {class}\">{}</p>", escape(&verdict.words));
    if let Some(rolled) = &summary.rolled_back {
        let counts = format!("{} restored, {} conflict, {} left", rolled.restored, rolled.conflict, rolled.left);
        let when = match &rolled.finished {
            Some(finished) => format!("These changes were rolled back (finished {}): {counts}", time(finished)),
            None => format!("A rollback of these changes started {} has not finished: {counts}", time(&rolled.started)),
        };
        let _ = writeln!(page, "<p id=\"rolled-back\" class=\"rolled-back\" data-field=\"rolled_back\">{when}</p>");
    }
}

fn header(page: &mut String, summary: &Summary) {
    let duration = summary
        .duration_seconds
        .map(|seconds| humantime::format_duration(std::time::Duration::from_secs(seconds)).to_string());
    let settled = summary.settled_rate.map(|rate| format!("{rate:.1} requests/s"));
    let finished = summary.finished.as_deref().map_or_else(|| "not finished".into(), time);
    let fields: [(&str, &str, String); 10] = [
        ("csv", "input file", escape(&summary.csv)),
        ("target", "target", escape(&summary.target)),
        ("started", "started", time(&summary.started)),
        ("finished", "finished", finished),
        ("duration", "duration", duration.unwrap_or_default()),
        ("settled_rate", "pace settled at", settled.unwrap_or_default()),
        ("requests", "requests sent", summary.requests.to_string()),
        ("throttled", "429s met", summary.throttled.to_string()),
        ("rows", "rows", summary.rows.to_string()),
        ("job", "job", escape(&summary.job)),
    ];
    page.push_str("<dl id=\"job\">\n");
    // Each value is escaped (or a number, or a `time` of escaped text) above.
    for (key, label, value) in fields {
        let _ = writeln!(page, "<dt>{label}</dt><dd data-field=\"{key}\">{value}</dd>");
    }
    if let Some(pace) = &summary.pace {
        let _ = writeln!(page, "<dt>pace reached</dt><dd data-field=\"pace\">{}</dd>", escape(&pace.words()));
    }
    page.push_str("</dl>\n");
}

fn counts_chart(page: &mut String, summary: &Summary) {
    let shown: Vec<(&str, u64)> = RowStatus::ALL
        .iter()
        .map(|status| (status.name(), summary.count(*status)))
        .filter(|(_, count)| *count > 0)
        .collect();
    let most = shown.iter().map(|(_, count)| *count).max().unwrap_or(1).max(1);
    let (width, bar, label) = (640.0, 24.0, 110.0);
    let height = bar * shown.len().max(1) as f64 + 8.0;
    let _ = writeln!(
        page,
        "<svg id=\"counts\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"rows per status\">"
    );
    for (index, (status, count)) in shown.iter().enumerate() {
        let y = index as f64 * bar + 4.0;
        let length = (width - label - 80.0) * (*count as f64) / (most as f64);
        let _ = writeln!(
            page,
            "<g class=\"bar\" data-status=\"{status}\" data-count=\"{count}\"><title>{status}: {count}</title>\
             <text x=\"0\" y=\"{ty}\">{status}</text>\
             <rect x=\"{label}\" y=\"{y}\" width=\"{length:.1}\" height=\"{h}\" fill=\"{fill}\"/>\
             <text x=\"{tx:.1}\" y=\"{ty}\">{count}</text></g>",
            status = escape(status),
            ty = y + bar * 0.65,
            h = bar - 6.0,
            fill = colour(status),
            tx = label + length + 6.0,
        );
    }
    page.push_str("</svg>\n");
}

fn errors_table(page: &mut String, summary: &Summary) {
    if summary.top_errors.is_empty() {
        page.push_str("<p id=\"no-errors\">No errors.</p>\n");
        return;
    }
    page.push_str(
        "<table id=\"errors\"><thead><tr><th>code</th><th>message <small>(ids and numbers in it as &lt;id&gt;, &lt;n&gt;)</small></th><th>rows</th></tr></thead><tbody>\n",
    );
    for error in &summary.top_errors {
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&error.code),
            escape(&error.description),
            error.rows
        );
    }
    page.push_str("</tbody></table>\n");
}

/// The statuses of the rows that need attention, in the order of [`RowStatus::ALL`].
fn problem_statuses(problems: &[StoredRow]) -> Vec<String> {
    let mut statuses: Vec<String> = problems.iter().map(|row| token(row.status.name())).collect();
    statuses.sort_by_key(|status| RowStatus::ALL.iter().position(|known| known.name() == status));
    statuses.dedup();
    statuses
}

/// The CSS-only filter: a checked radio hides the table rows of every other status.
fn filter_style(problems: &[StoredRow]) -> String {
    problem_statuses(problems)
        .iter()
        .map(|status| format!("#show-{status}:checked~table tbody tr:not(.s-{status}){{display:none}}"))
        .collect()
}

fn problems_table(page: &mut String, problems: &[StoredRow]) {
    if problems.is_empty() {
        page.push_str("<p id=\"no-problems\">Every row was updated or left unchanged.</p>\n");
        return;
    }
    page.push_str("<div class=\"filter\">show:<input type=\"radio\" name=\"show\" id=\"show-all\" checked><label for=\"show-all\">all</label>");
    for status in problem_statuses(problems) {
        let count = problems.iter().filter(|row| token(row.status.name()) == status).count();
        let _ = write!(
            page,
            "<input type=\"radio\" name=\"show\" id=\"show-{status}\"><label for=\"show-{status}\">{status} ({count})</label>"
        );
    }
    page.push_str(
        "\n<table id=\"problems\"><thead><tr><th>line</th><th>customer id</th><th>status</th><th>error</th>\
                   <th>request id <small>(give it to support)</small></th><th>correlation id</th></tr></thead><tbody>\n",
    );
    for row in problems {
        let id = |id: &Option<String>| escape(id.as_deref().unwrap_or_default());
        let _ = writeln!(
            page,
            "<tr class=\"s-{status}\" data-status=\"{status}\"><td>{}</td><td class=\"id\">{}</td><td>{status}</td><td class=\"error\">{}</td>\
             <td class=\"ids request-id\">{}</td><td class=\"ids correlation-id\">{}</td></tr>",
            row.line,
            escape(&row.customer_id),
            escape(row.call.error.as_deref().unwrap_or_default()),
            id(&row.call.request_id),
            id(&row.call.correlation_id),
            status = token(row.status.name()),
        );
    }
    page.push_str("</tbody></table></div>\n");
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn escapes_markup_quotes_and_ampersands() {
        assert_eq!(
            escape(r#"<script>alert("x") & 'y'</script>"#),
            "&lt;script&gt;alert(&quot;x&quot;) &amp; &#39;y&#39;&lt;/script&gt;"
        );
    }

    /// A summary of a job with nothing in it, for the page's unit tests.
    pub(crate) fn empty() -> Summary {
        Summary {
            job: "apply".into(),
            csv: "x.csv".into(),
            target: "http://127.0.0.1:1".into(),
            started: "2026-11-28T10:00:00Z".into(),
            last_moved: None,
            finished: None,
            duration_seconds: None,
            requests: 0,
            throttled: 0,
            settled_rate: None,
            rows: 0,
            counts: Default::default(),
            top_errors: Vec::new(),
            minutes: Vec::new(),
            seconds: None,
            rolled_back: None,
            pace: None,
        }
    }

    #[test]
    fn the_verdict_comes_first_and_a_rollback_right_after_it() {
        let rolled_back = Some(super::super::RolledBack {
            started: "2026-11-28T11:00:00Z".into(),
            finished: Some("2026-11-28T11:05:00Z".into()),
            restored: 3,
            conflict: 1,
            left: 0,
        });
        let counts = [("updated".to_string(), 4)].into();
        let page = render(&Summary { rows: 4, counts, rolled_back, ..empty() }, &[]);
        let body = &page[page.find("<body>").unwrap() + 7..];
        assert!(body.starts_with("<p id=\"verdict\" class=\"verdict good\">All 4 rows updated</p>\n"), "{body}");
        let next = body.lines().nth(1).unwrap();
        assert!(next.starts_with("<p id=\"rolled-back\"") && next.contains("3 restored, 1 conflict, 0 left"), "{next}");
        assert!(next.contains("<time datetime=\"2026-11-28T11:05:00Z\">"), "{next}");
    }

    #[test]
    fn a_status_token_keeps_only_safe_characters() {
        assert_eq!(token("would_update"), "would_update");
        assert_eq!(token("x\"><script>"), "xscript");
    }
}
