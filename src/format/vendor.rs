//! Logs as the warehouses and clouds write them: CloudTrail, Google Cloud audit (BigQuery),
//! pgaudit, Snowflake ACCESS_HISTORY and Databricks audit. Each parser turns one *record* into
//! access events (a record may hold several: a CloudTrail file's `Records`, a query's
//! referenced tables) or says it is not an access event (a management call, a failed request, a
//! non-audit log line) — which is counted apart from malformed input.
//!
//! [`RecordReader`] turns lines into records: one line is one record, except for pgaudit, whose
//! messages continue on further lines (stderr: TAB-indented; csvlog: quoted newlines). It also
//! recognises the format of an input from its first line when the format is `auto`.

use super::{
    Format, ParseError, cloudtrail, databricks, gcp, gcs_usage, pgaudit, s3_access, snowflake,
};
use crate::event::AccessEvent;
use serde::Deserialize;

/// What one record held.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Event(AccessEvent<'static>),
    /// A grant or revoke (of a privilege, or of role membership).
    Permission(crate::event::PermissionChange),
    /// A well-formed record that is not a data access (counted by reason, never an error).
    NotAccess(NotAccess),
    /// Something the user must be told about how the input is read (e.g. the pgaudit
    /// `log_line_prefix` inferred from the log); not a record.
    Notice(String),
    /// One record of a document (a CloudTrail file's `Records`, a top-level array) that could
    /// not be read: reported and counted like a malformed line, while the records beside it are
    /// read as usual.
    Skipped(ParseError),
}

/// A change read from a request, before it is placed: (action, grantee, privilege).
pub(crate) type Granted = (crate::event::ChangeAction, String, String);

/// The items of the changes one permission request made on `object` (by `actor`, at `ts`);
/// a request that changed nothing about reading is `OtherPermission`.
pub(crate) fn permission_items(
    changes: Vec<Granted>,
    ts: crate::time::Ts,
    object: &str,
    actor: &str,
) -> Vec<Item> {
    let mut items: Vec<Item> = changes
        .into_iter()
        .map(|(action, grantee, privilege)| {
            Item::Permission(crate::event::PermissionChange {
                ts,
                action,
                object: object.to_string(),
                grantee,
                privilege,
                actor: actor.to_string(),
                statement: None,
            })
        })
        .collect();
    if items.is_empty() {
        items.push(Item::NotAccess(NotAccess::OtherPermission));
    }
    items
}

/// Per-format settings: `[input.cloudtrail]`, `[input.pgaudit]`, `[input.snowflake]`,
/// `[input.databricks]`, `[input.gcs_usage]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VendorOptions {
    pub cloudtrail: cloudtrail::Options,
    pub pgaudit: pgaudit::Options,
    pub snowflake: snowflake::Options,
    pub databricks: databricks::Options,
    pub gcs_usage: gcs_usage::UsageOptions,
    /// `[input] envelope`: the shipper's wrapping around records ([`super::envelope`]).
    #[serde(skip)]
    pub envelope: super::envelope::EnvelopeChoice,
    /// `[input] record_field`: the top-level field holding each record.
    #[serde(skip)]
    pub record_field: Option<String>,
}

/// Why a well-formed record is not a data access, for the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NotAccess {
    /// A management (control-plane) call, not a data event.
    Management,
    /// A call that failed (an error code, a 4xx status, a failed job): nothing was read.
    Failed,
    /// A call of another service or method than the data accesses the format describes.
    OtherCall,
    /// Metadata only (listing tables, reading a catalog).
    Metadata,
    /// A server log line that is no audit record (a login, a checkpoint, a slow statement).
    LogLine,
    /// An audit record naming no relation (pgaudit without `log_relation`, or no table).
    NoRelation,
    /// A job not finished yet (logged again when it is).
    Unfinished,
    /// The same query job already counted from its other log shape.
    Repeat,
    /// A permission or role change that gives or takes no read access (a role created, a
    /// password changed, a privilege on a sequence).
    OtherPermission,
    /// A log shipper's own message (a CloudWatch Logs `CONTROL_MESSAGE`), no record.
    ShipperControl,
    /// A CSV file's header row.
    Header,
}

impl NotAccess {
    /// How the summary names it.
    pub fn name(self) -> &'static str {
        match self {
            NotAccess::Management => "management calls",
            NotAccess::Failed => "failed calls",
            NotAccess::OtherCall => "other calls",
            NotAccess::Metadata => "metadata only",
            NotAccess::LogLine => "other log lines",
            NotAccess::NoRelation => "naming no relation",
            NotAccess::Unfinished => "unfinished jobs",
            NotAccess::Repeat => "jobs logged twice",
            NotAccess::OtherPermission => "other permission changes",
            NotAccess::ShipperControl => "shipper control messages",
            NotAccess::Header => "header rows",
        }
    }
}

/// The result of one record, with the line it started on.
pub type RecordResult = (u64, Result<Vec<Item>, ParseError>);

/// Lines in, records out, for one input.
#[derive(Debug)]
pub struct RecordReader {
    format: Format,
    options: VendorOptions,
    pgaudit: Option<pgaudit::Parser>,
    /// A multi-line record still open: its first line number and text so far.
    pending: Option<(u64, Vec<u8>)>,
    /// The nesting of a multi-line JSON document still open (pretty-printed
    /// `{"Records": [...]}`, a top-level array).
    document: JsonDepth,
    /// GCP audit: the query jobs read lately, so that a job BigQuery logs in both of its
    /// shapes is counted once (see [`SeenJobs`]).
    jobs: SeenJobs,
}

/// The last [`SeenJobs::KEPT`] job ids, oldest first out: the two entries of one job are
/// written together, so a short memory finds every repeat and stays bounded.
#[derive(Debug, Default)]
struct SeenJobs {
    ids: std::collections::HashSet<String>,
    order: std::collections::VecDeque<String>,
}

impl SeenJobs {
    const KEPT: usize = 4096;

    /// Whether `id` was seen lately; remembers it.
    fn repeat(&mut self, id: &str) -> bool {
        if self.ids.contains(id) {
            return true;
        }
        let id = id.to_string();
        if self.order.len() == Self::KEPT
            && let Some(old) = self.order.pop_front()
        {
            self.ids.remove(&old);
        }
        self.ids.insert(id.clone());
        self.order.push_back(id);
        false
    }
}

/// How deep a JSON text is nested, fed line by line (strings and escapes understood), to frame
/// a pretty-printed document without parsing it again at each line.
#[derive(Debug, Default, Clone, Copy)]
struct JsonDepth {
    depth: i64,
    in_string: bool,
    escaped: bool,
}

impl JsonDepth {
    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => self.depth -= 1,
                _ => {}
            }
        }
    }

    fn closed(&self) -> bool {
        self.depth <= 0 && !self.in_string
    }
}

/// Whether `format`'s records may come as a pretty-printed JSON document over many lines: the
/// JSON vendor formats (and a format not recognised yet). Canonical lines are one per line, and
/// so are the S3 and Cloud Storage access logs (text rows): a line `{` of theirs is a bad row,
/// not the start of a document.
pub fn gathers_documents(format: Format) -> bool {
    !matches!(format, Format::Jsonl | Format::S3Access | Format::GcsUsage)
}

/// Whether a line of a JSON vendor format opens a pretty-printed document that goes on over the
/// next lines: `{` or `[` alone, or a short opening such as `{"Records": [`. (A record cut
/// short is not taken for one: it would swallow the lines after it.)
pub fn opens_document(line: &[u8]) -> bool {
    let line = line.trim_ascii();
    line == b"{"
        || line == b"["
        || (line.len() <= 32 && line.starts_with(b"{") && line.ends_with(b"["))
}

impl RecordReader {
    /// A reader for `format` (`Auto`: recognised from the first non-empty line).
    pub fn new(format: Format, options: &VendorOptions) -> Result<RecordReader, String> {
        let mut reader = RecordReader {
            format,
            options: options.clone(),
            pgaudit: None,
            pending: None,
            document: JsonDepth::default(),
            jobs: SeenJobs::default(),
        };
        if format == Format::Pgaudit {
            reader.pgaudit = Some(pgaudit::Parser::new(&options.pgaudit)?);
        }
        Ok(reader)
    }

    /// The format, once known.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The settings of the vendor formats.
    pub fn options(&self) -> &VendorOptions {
        &self.options
    }

    /// Settles the format from a line when it is `Auto`.
    pub fn recognise(&mut self, line: &[u8]) {
        if self.format != Format::Auto || line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        self.format = sniff(line);
        if self.format == Format::Pgaudit {
            match pgaudit::Parser::new(&self.options.pgaudit) {
                Ok(parser) => self.pgaudit = Some(parser),
                // The prefix was checked with the configuration; fall back to canonical.
                Err(_) => self.format = Format::Jsonl,
            }
        }
    }

    /// Feeds line `line_no`; the records it completes are appended to `out`.
    pub fn line(&mut self, line_no: u64, bytes: &[u8], out: &mut Vec<RecordResult>) {
        self.recognise(bytes);
        match self.format {
            Format::Pgaudit => self.pgaudit_line(line_no, bytes, out),
            Format::Auto if bytes.iter().all(u8::is_ascii_whitespace) => {}
            format
                if self.pending.is_some()
                    || (gathers_documents(format) && opens_document(bytes)) =>
            {
                self.document_line(format, line_no, bytes, out)
            }
            Format::GcpAudit => self.gcp_line(line_no, bytes, out),
            format => parse_record_line(format, &self.options, line_no, bytes, out),
        }
    }

    /// A GCP audit entry; a query job already counted in its other shape is not counted again.
    fn gcp_line(&mut self, line_no: u64, bytes: &[u8], out: &mut Vec<RecordResult>) {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        // A `tableDataRead` in its usual shape names no job: nothing to count twice.
        if let Some(items) = gcp::parse_fast(bytes) {
            out.push((line_no, Ok(items)));
            return;
        }
        let parsed = serde_json::from_slice::<serde_json::Value>(bytes);
        let result = match parsed {
            Ok(entry) if entry.is_object() => gcp::parse(&entry, self.options.cloudtrail.anonymous)
                .map(|items| {
                    // Only an entry that gives reads counts the job (a job logged RUNNING first
                    // must still be read when DONE).
                    let reads = items.iter().any(|i| matches!(i, Item::Event(_)));
                    match gcp::job_id(&entry) {
                        Some(id) if reads && self.jobs.repeat(&id) => {
                            vec![Item::NotAccess(NotAccess::Repeat)]
                        }
                        _ => items,
                    }
                }),
            _ => parse_json_record(Format::GcpAudit, &self.options, bytes),
        };
        out.push((line_no, result));
    }

    /// A line of a pretty-printed JSON document (a CloudTrail file as `jq .` or an SDK writes
    /// it, a top-level array of records): gathered until its brackets close, then parsed whole.
    fn document_line(
        &mut self,
        format: Format,
        line_no: u64,
        bytes: &[u8],
        out: &mut Vec<RecordResult>,
    ) {
        // Only a document's first and last lines start at the margin: a line that starts a
        // record there means the open document was cut short; it is reported, the line read.
        if self.pending.is_some()
            && matches!(bytes.first(), Some(b'{' | b'['))
            && let Some((first, text)) = self.pending.take()
        {
            out.push((first, parse_json_record(format, &self.options, &text)));
            if !opens_document(bytes) {
                parse_record_line(format, &self.options, line_no, bytes, out);
                return;
            }
        }
        let (_, text) = self.pending.get_or_insert_with(|| {
            self.document = JsonDepth::default();
            (line_no, Vec::new())
        });
        if !text.is_empty() {
            text.push(b'\n');
        }
        text.extend_from_slice(bytes);
        self.document.feed(bytes);
        if text.len() > super::decode::CLOUDTRAIL_MAX_DOCUMENT_BYTES {
            let (first, _) = self.pending.take().expect("pending");
            out.push((
                first,
                Err(ParseError::TooLong {
                    max_line_bytes: super::decode::CLOUDTRAIL_MAX_DOCUMENT_BYTES,
                }),
            ));
        } else if self.document.closed() {
            let (first, text) = self.pending.take().expect("pending");
            out.push((first, parse_json_record(format, &self.options, &text)));
        }
    }

    /// The format, once known, when each line is one whole record that needs nothing from the
    /// lines around it (the JSON vendor formats): such lines may be parsed anywhere, in any
    /// order, with [`parse_record_line`]. `None` for canonical JSON lines and for pgaudit, whose
    /// records can span lines.
    pub fn record_per_line(&self) -> Option<Format> {
        if self.pending.is_some() {
            return None;
        }
        match self.format {
            // Not GCP audit: its two shapes of one job are told apart in order (`gcp_line`).
            Format::Cloudtrail
            | Format::Snowflake
            | Format::Databricks
            | Format::S3Access
            | Format::GcsUsage => Some(self.format),
            _ => None,
        }
    }

    /// The input ended (or went quiet): completes a pending multi-line record.
    pub fn flush(&mut self, out: &mut Vec<RecordResult>) {
        if let Some((line_no, text)) = self.pending.take() {
            let result = match &mut self.pgaudit {
                Some(parser) => parser.parse_record(&text),
                // A JSON document cut short: reported as its parse error says.
                None => parse_json_record(self.format, &self.options, &text),
            };
            out.push((line_no, result));
        }
    }

    /// Whether a record is waiting for more lines.
    pub fn has_pending(&self) -> bool {
        self.pending.is_some()
    }

    fn pgaudit_line(&mut self, line_no: u64, bytes: &[u8], out: &mut Vec<RecordResult>) {
        let parser = self.pgaudit.as_mut().expect("set with the format");
        if let Some((_, text)) = &mut self.pending {
            if parser.continues(text, bytes) {
                text.push(b'\n');
                text.extend_from_slice(parser.continuation(bytes));
                // A stderr message may go on for any number of TAB-indented lines: only a
                // csvlog row tells from its own bytes that it is whole.
                if parser.is_complete(text) && !parser.may_continue(text) {
                    let (first, text) = self.pending.take().expect("pending");
                    out.push((first, parser.parse_record(&text)));
                }
                return;
            }
            let (first, text) = self.pending.take().expect("pending");
            out.push((first, parser.parse_record(&text)));
        }
        if bytes.is_empty() {
            return;
        }
        let text = bytes.to_vec();
        if parser.is_complete(&text) && !parser.may_continue(&text) {
            out.push((line_no, parser.parse_record(&text)));
        } else {
            self.pending = Some((line_no, text));
        }
    }
}

/// Recognises a format from one line.
pub fn sniff(line: &[u8]) -> Format {
    let trimmed = line.trim_ascii_start();
    if !trimmed.starts_with(b"{") {
        if pgaudit::looks_like(trimmed) {
            return Format::Pgaudit;
        }
        if s3_access::looks_like(trimmed) {
            return Format::S3Access;
        }
        if gcs_usage::looks_like(trimmed) {
            return Format::GcsUsage;
        }
        return Format::Jsonl;
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(trimmed) else {
        return Format::Jsonl;
    };
    let has = |k: &str| value.get(k).is_some();
    if has("error_severity") && has("message") && has("timestamp") {
        // PostgreSQL's jsonlog.
        Format::Pgaudit
    } else if has("Records") || (has("eventVersion") && has("eventSource")) {
        Format::Cloudtrail
    } else if has("protoPayload") {
        Format::GcpAudit
    } else if has("query_start_time")
        || has("QUERY_START_TIME")
        || ((has("query_type") || has("QUERY_TYPE")) && (has("query_text") || has("QUERY_TEXT")))
    {
        // ACCESS_HISTORY, or QUERY_HISTORY (permission changes).
        Format::Snowflake
    } else if (has("serviceName") && has("actionName"))
        || (has("service_name") && has("action_name"))
    {
        Format::Databricks
    } else {
        Format::Jsonl
    }
}

/// Parses line `line_no` of a format with a record per line (see
/// [`RecordReader::record_per_line`]) and appends the record to `out`; a blank line is none.
pub fn parse_record_line(
    format: Format,
    options: &VendorOptions,
    line_no: u64,
    bytes: &[u8],
    out: &mut Vec<RecordResult>,
) {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    let record = match format {
        Format::S3Access => s3_access::parse(bytes, &options.cloudtrail),
        Format::GcsUsage => gcs_usage::parse(bytes, &options.cloudtrail, &options.gcs_usage),
        _ => parse_json_record(format, options, bytes),
    };
    out.push((line_no, record));
}

fn parse_json_record(
    format: Format,
    options: &VendorOptions,
    bytes: &[u8],
) -> Result<Vec<Item>, ParseError> {
    // Typed, borrowed fast paths for a record's usual shape; `None`: read through `Value`.
    let fast = match format {
        Format::Cloudtrail => cloudtrail::parse_fast(bytes, &options.cloudtrail),
        Format::Snowflake => snowflake::parse_fast(bytes, &options.snowflake),
        Format::Databricks => databricks::parse_fast(bytes, &options.databricks),
        Format::GcpAudit => gcp::parse_fast(bytes),
        _ => None,
    };
    if let Some(items) = fast {
        return Ok(items);
    }
    parse_json_record_as_value(format, options, bytes)
}

/// A record through `serde_json::Value` alone, without the typed fast paths: the authority
/// they are checked against (fuzz targets, property tests).
pub fn parse_json_record_as_value(
    format: Format,
    options: &VendorOptions,
    bytes: &[u8],
) -> Result<Vec<Item>, ParseError> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| ParseError::Json {
        message: crate::time::clip(&e.to_string(), 160),
        column: e.column(),
    })?;
    match value {
        // A top-level array of records (some exports write one).
        serde_json::Value::Array(records) => {
            let mut items = Vec::new();
            for record in &records {
                match parse_json_value(format, options, record) {
                    Ok(more) => items.extend(more),
                    Err(error) => items.push(Item::Skipped(error)),
                }
            }
            Ok(items)
        }
        value => parse_json_value(format, options, &value),
    }
}

fn parse_json_value(
    format: Format,
    options: &VendorOptions,
    value: &serde_json::Value,
) -> Result<Vec<Item>, ParseError> {
    if !value.is_object() {
        return Err(ParseError::Json {
            message: "expected a JSON object".into(),
            column: 1,
        });
    }
    match format {
        Format::Cloudtrail => cloudtrail::parse(value, &options.cloudtrail),
        Format::GcpAudit => gcp::parse(value, options.cloudtrail.anonymous),
        Format::Snowflake => snowflake::parse(value, &options.snowflake),
        Format::Databricks => databricks::parse(value, &options.databricks),
        other => unreachable!("{other:?} is not a JSON vendor format"),
    }
}

/// Helpers shared by the JSON formats.
pub(crate) mod json {
    use crate::format::ParseError;
    use crate::time::zone::LocalZone;
    use crate::time::{EpochUnit, Ts, parse_ts_str, ts_from_epoch_float, ts_from_epoch_int};
    use serde_json::Value;

    /// The value at a dotted path.
    pub fn at<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
        path.split('.').try_fold(value, |v, key| v.get(key))
    }

    /// The first non-empty string among `paths`.
    pub fn string<'a>(value: &'a Value, paths: &[&str]) -> Option<&'a str> {
        paths
            .iter()
            .filter_map(|p| at(value, p).and_then(Value::as_str))
            .find(|s| !s.is_empty())
    }

    pub fn missing(field: &str) -> ParseError {
        ParseError::MissingField {
            field: field.to_string(),
        }
    }

    /// A required string field.
    pub fn required<'a>(value: &'a Value, paths: &[&str]) -> Result<&'a str, ParseError> {
        string(value, paths).ok_or_else(|| missing(paths[0]))
    }

    /// A time: RFC 3339 (or `YYYY-MM-DD HH:MM:SS[.fff] [offset]`), or epoch numbers (unit
    /// guessed from the magnitude).
    pub fn time(value: &Value, paths: &[&str]) -> Result<Ts, ParseError> {
        let (path, v) = paths
            .iter()
            .find_map(|p| at(value, p).filter(|v| !v.is_null()).map(|v| (*p, v)))
            .ok_or_else(|| missing(paths[0]))?;
        let bad = |source| ParseError::Timestamp {
            field: path.to_string(),
            source,
        };
        match v {
            Value::String(s) => parse_time_text(s, &LocalZone::UTC).map_err(bad),
            Value::Number(n) => match n.as_i64() {
                Some(i) => ts_from_epoch_int(i, EpochUnit::Auto).map_err(bad),
                None => ts_from_epoch_float(n.as_f64().unwrap_or(f64::NAN), EpochUnit::Auto)
                    .map_err(bad),
            },
            other => Err(ParseError::WrongType {
                field: path.to_string(),
                expected: "a timestamp",
                found: type_name(other).to_string(),
            }),
        }
    }

    /// The common shapes of database and warehouse logs, `YYYY-MM-DD HH:MM:SS[.fff] UTC` (or
    /// `GMT`) and `YYYY-MM-DD HH:MM:SS[.fff] ±HHMM` (Snowflake's exports), without chrono's
    /// general parser; `None` for anything else, which the general parser reads (the test
    /// `sql_shapes_agree_with_the_general_parser` proves both give the same instant).
    fn sql_utc(text: &str) -> Option<Ts> {
        let (t, offset_secs) = match text
            .strip_suffix(" UTC")
            .or_else(|| text.strip_suffix(" GMT"))
        {
            Some(t) => (t, 0),
            None => {
                let (t, offset) = text.split_at_checked(text.len().checked_sub(6)?)?;
                let o = offset.as_bytes();
                let digits = |r: std::ops::Range<usize>| -> Option<i64> {
                    let d = o.get(r)?;
                    d.iter()
                        .all(u8::is_ascii_digit)
                        .then(|| i64::from(d[0] - b'0') * 10 + i64::from(d[1] - b'0'))
                };
                let sign = match o[..2] {
                    [b' ', b'+'] => 1,
                    [b' ', b'-'] => -1,
                    _ => return None,
                };
                let (hours, minutes) = (digits(2..4)?, digits(4..6)?);
                // The general parser's bounds (`time::zone`).
                if hours > 15 || minutes > 59 {
                    return None;
                }
                (t, sign * (hours * 3600 + minutes * 60))
            }
        };
        let b = t.as_bytes();
        if b.len() < 19
            || b[4] != b'-'
            || b[7] != b'-'
            || b[10] != b' '
            || b[13] != b':'
            || b[16] != b':'
        {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<u32> {
            let s = t.get(r)?;
            if !s.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()
        };
        let date = chrono::NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
        let time = chrono::NaiveTime::from_hms_opt(num(11..13)?, num(14..16)?, num(17..19)?)?;
        let mut micros = 0i64;
        if b.len() > 19 {
            if b[19] != b'.' || b.len() == 20 || b.len() > 29 {
                return None;
            }
            let digits = &t[20..];
            if !digits.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let padded = format!("{digits:0<9}");
            micros = padded[..6].parse().ok()?;
        }
        Some(date.and_time(time).and_utc().timestamp_micros() + micros - offset_secs * 1_000_000)
            .filter(|ts| crate::time::in_range(*ts))
    }

    fn type_name(value: &Value) -> &'static str {
        match value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        }
    }

    /// RFC 3339, or the SQL shapes databases and warehouses write (`2026-03-18 10:00:00.123
    /// -0700`, `… UTC`, `… CET`, `… Europe/Paris`), a time without a zone being in `zone`
    /// (see [`crate::time::zone`]).
    pub fn parse_time_text(text: &str, zone: &LocalZone) -> Result<Ts, crate::time::TsError> {
        if let Some(ts) = sql_utc(text) {
            return Ok(ts);
        }
        if let Ok(ts) = parse_ts_str(text, EpochUnit::Auto) {
            return Ok(ts);
        }
        crate::time::zone::parse_local_time(text, zone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::zone::LocalZone;

    #[test]
    fn recognises_formats_from_a_line() {
        assert_eq!(sniff(br#"{"Records":[]}"#), Format::Cloudtrail);
        assert_eq!(
            sniff(br#"{"eventVersion":"1.08","eventSource":"s3.amazonaws.com"}"#),
            Format::Cloudtrail
        );
        assert_eq!(
            sniff(br#"{"protoPayload":{},"timestamp":"x"}"#),
            Format::GcpAudit
        );
        assert_eq!(sniff(br#"{"QUERY_START_TIME":"x"}"#), Format::Snowflake);
        assert_eq!(
            sniff(br#"{"serviceName":"unityCatalog","actionName":"getTable"}"#),
            Format::Databricks
        );
        assert_eq!(
            sniff(br#"{"ts":1,"principal":"a","table":"t"}"#),
            Format::Jsonl
        );
        assert_eq!(
            sniff(b"2026-11-26 22:04:42.297 UTC [11179] alice@postgres LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.orders,select 1,<not logged>"),
            Format::Pgaudit
        );
        assert_eq!(sniff(b"garbage"), Format::Jsonl);
    }

    /// Access-log rows are one per line: a row that looks like the start of a JSON document is
    /// a bad row, reported on its own line, never a document swallowing the rows after it
    /// (found by the `gcs_usage` fuzz target).
    #[test]
    fn a_text_row_opening_like_a_document_is_one_bad_row() {
        for format in [Format::S3Access, Format::GcsUsage] {
            let options = VendorOptions::default();
            let mut reader = RecordReader::new(format, &options).unwrap();
            for (n, line) in [&b"{"[..], b"[", b"{\"Records\": ["]
                .into_iter()
                .enumerate()
            {
                let (mut read, mut alone) = (Vec::new(), Vec::new());
                reader.line(n as u64 + 1, line, &mut read);
                parse_record_line(format, &options, n as u64 + 1, line, &mut alone);
                assert_eq!(read, alone, "{format:?}");
                assert!(matches!(read[..], [(_, Err(_))]), "{format:?}: {read:?}");
            }
            let mut rest = Vec::new();
            reader.flush(&mut rest);
            assert!(rest.is_empty());
        }
    }

    #[test]
    fn reads_sql_style_times() {
        let t = |s| json::parse_time_text(s, &LocalZone::UTC).unwrap();
        assert_eq!(
            t("2026-03-18 10:00:00.000 -0700"),
            t("2026-03-18T17:00:00Z")
        );
        assert_eq!(t("2026-03-18 10:00:00.5 UTC"), t("2026-03-18T10:00:00.5Z"));
        assert_eq!(t("2026-03-18 10:00:00"), t("2026-03-18T10:00:00Z"));
    }

    #[test]
    fn sql_shapes_agree_with_the_general_parser() {
        let general = |s: &str| crate::time::zone::parse_local_time(s, &LocalZone::UTC).ok();
        for date in [
            "2026-03-18 10:00:00",
            "1999-12-31 23:59:59",
            "2024-02-29 00:00:00",
        ] {
            for fraction in ["", ".0", ".5", ".000", ".123456", ".123456789"] {
                for zone in [
                    " +0000", " -0700", " +0530", " +1559", " -1559", " +1200", " UTC", " GMT",
                ] {
                    let text = format!("{date}{fraction}{zone}");
                    let fast = json::parse_time_text(&text, &LocalZone::UTC).ok();
                    assert!(fast.is_some(), "{text}");
                    assert_eq!(fast, general(&text), "{text}");
                }
            }
        }
        // Not the fast shapes: the general parser decides.
        for text in [
            "2026-03-18 10:00:00 +2400",
            "2026-03-18 10:00:00 +07",
            "2026-03-18 10:00:00+0700",
        ] {
            assert_eq!(
                json::parse_time_text(text, &LocalZone::UTC).ok(),
                general(text).or_else(|| crate::time::parse_ts_str(
                    text,
                    crate::time::EpochUnit::Auto
                )
                .ok()),
                "{text}"
            );
        }
    }
}
