//! Shipper envelopes: the wrapping a log shipper puts around the records it carries, taken off
//! before the records are decoded in their own format. Recognised from an input's first line
//! (`[input] envelope = "auto"`), or named:
//!
//! - **CloudWatch Logs subscription batches** (`cloudwatch`), as Kinesis, Firehose or a Lambda
//!   receive them and Firehose writes them to S3 (gzip, often several batches back to back on
//!   one line): `{"messageType":"DATA_MESSAGE", …, "logEvents":[{"id", "timestamp", "message"}]}`;
//!   each `message` is one record of the inner format, as text. `CONTROL_MESSAGE` batches are
//!   reachability checks: skipped, counted as not access.
//! - **Splunk HTTP Event Collector** events (`splunk-hec`): `{"time": …, "host": …, "source": …,
//!   "sourcetype": …, "event": {…} | "…"}`, several to a line as a HEC request body holds them;
//!   the `event` is the record.
//! - **Logstash / Elastic** documents (`logstash`): the record's own fields beside `@timestamp`
//!   and `@version`. `@version` is dropped; `@timestamp` is the record's time when its format's
//!   own time field is missing (Elastic's integrations often remove it).
//! - **A field holding the record** (`[input] record_field = "log"`, as Fluent Bit, Vector or
//!   Docker write `{"log": "…", "stream": …}`): the field's text (or object) is the record.
//!
//! The records taken out are decoded as lines of the input (`Decoder`), reported on the
//! envelope's line number; a line that is not the input's envelope is malformed.

use super::{Format, ParseError};
use serde::Deserialize;
use serde_json::Value;

/// `[input] envelope`
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EnvelopeChoice {
    /// Recognised from the input's first line (none when it is no envelope).
    #[default]
    Auto,
    /// The records are not wrapped.
    None,
    Cloudwatch,
    SplunkHec,
    Logstash,
}

/// The envelope of one input, once known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Envelope {
    Cloudwatch,
    SplunkHec,
    Logstash,
    /// The record is this top-level field's value.
    Field(String),
}

impl Envelope {
    pub fn name(&self) -> &str {
        match self {
            Envelope::Cloudwatch => "CloudWatch Logs subscription",
            Envelope::SplunkHec => "Splunk HEC",
            Envelope::Logstash => "Logstash",
            Envelope::Field(field) => field,
        }
    }

    /// The envelope `choice` names, or the one `line` (an input's first line) is in with
    /// `Auto`; `record_field` wins over both.
    pub fn of(choice: EnvelopeChoice, record_field: Option<&str>, line: &[u8]) -> Option<Envelope> {
        if let Some(field) = record_field {
            return Some(Envelope::Field(field.to_string()));
        }
        match choice {
            EnvelopeChoice::None => None,
            EnvelopeChoice::Cloudwatch => Some(Envelope::Cloudwatch),
            EnvelopeChoice::SplunkHec => Some(Envelope::SplunkHec),
            EnvelopeChoice::Logstash => Some(Envelope::Logstash),
            EnvelopeChoice::Auto => recognise(line),
        }
    }
}

/// The envelope a first line is in, if any: told by keys only a shipper writes.
fn recognise(line: &[u8]) -> Option<Envelope> {
    let trimmed = line.trim_ascii_start();
    // Only a line with a shipper's key is parsed (a CloudTrail document's line may be hundreds
    // of megabytes: it is never parsed here).
    let marked = [&b"\"messageType\""[..], b"\"event\"", b"\"@version\""]
        .iter()
        .any(|key| memchr::memmem::find(trimmed, key).is_some());
    let body = trimmed.strip_prefix(b"{")?;
    if !marked || body.trim_ascii_start().starts_with(b"\"Records\"") {
        return None;
    }
    // A line may hold several objects back to back: the first tells.
    let first = serde_json::Deserializer::from_slice(trimmed)
        .into_iter::<Value>()
        .next()?
        .ok()?;
    let has = |k: &str| first.get(k).is_some();
    if has("messageType") && has("logEvents") {
        Some(Envelope::Cloudwatch)
    } else if has("event") && (has("sourcetype") || has("source") || has("host") || has("index")) {
        Some(Envelope::SplunkHec)
    } else if has("@timestamp") && has("@version") {
        Some(Envelope::Logstash)
    } else {
        None
    }
}

/// What an envelope line holds, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Inner {
    /// A record of the inner format, as a line of its own.
    Record(Vec<u8>),
    /// A shipper's own message (a CloudWatch `CONTROL_MESSAGE`): no record.
    Control,
    /// Not an envelope of this kind, or a record that cannot be taken out.
    Malformed(ParseError),
}

/// Takes the records out of `line`, an envelope of `envelope`, into `out`. `time_field` says
/// where the format of a record (given without Logstash's fields) keeps its time, so that
/// `@timestamp` fills it when the record has none.
pub fn unwrap(
    envelope: &Envelope,
    line: &[u8],
    time_field: &mut dyn FnMut(&[u8]) -> Option<String>,
    out: &mut Vec<Inner>,
) {
    if line.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    for value in serde_json::Deserializer::from_slice(line).into_iter::<Value>() {
        let value = match value {
            Ok(value) => value,
            Err(e) => {
                out.push(Inner::Malformed(ParseError::Json {
                    message: crate::time::clip(&e.to_string(), 160),
                    column: e.column(),
                }));
                return;
            }
        };
        match envelope {
            Envelope::Cloudwatch => cloudwatch(value, out),
            Envelope::SplunkHec => field(value, "event", out),
            Envelope::Field(name) => field(value, name, out),
            Envelope::Logstash => logstash(value, time_field, out),
        }
    }
}

fn malformed(message: String) -> Inner {
    Inner::Malformed(ParseError::Record { message, column: 1 })
}

fn cloudwatch(batch: Value, out: &mut Vec<Inner>) {
    match batch.get("messageType").and_then(Value::as_str) {
        Some("CONTROL_MESSAGE") => {
            out.push(Inner::Control);
            return;
        }
        Some("DATA_MESSAGE") => {}
        _ => {
            out.push(malformed(
                "not a CloudWatch Logs subscription batch (no messageType DATA_MESSAGE)".into(),
            ));
            return;
        }
    }
    let Some(events) = batch.get("logEvents").and_then(Value::as_array) else {
        out.push(malformed(
            "a CloudWatch Logs batch without logEvents".into(),
        ));
        return;
    };
    for event in events {
        match event.get("message") {
            Some(Value::String(text)) => out.push(Inner::Record(text.clone().into_bytes())),
            _ => out.push(malformed(
                "a CloudWatch Logs event without a message text".into(),
            )),
        }
    }
}

/// The record in field `name` of `value`: an object (re-serialised) or a text.
fn field(value: Value, name: &str, out: &mut Vec<Inner>) {
    let Value::Object(mut object) = value else {
        out.push(malformed(format!("expected an object with `{name}`")));
        return;
    };
    match object.remove(name) {
        Some(Value::String(text)) => out.push(Inner::Record(text.into_bytes())),
        Some(record @ Value::Object(_)) => out.push(Inner::Record(
            serde_json::to_vec(&record).expect("a Value serialises"),
        )),
        Some(_) => out.push(malformed(format!(
            "field `{name}` must be the record (an object or a text)"
        ))),
        None => out.push(Inner::Malformed(ParseError::MissingField {
            field: name.to_string(),
        })),
    }
}

fn logstash(
    value: Value,
    time_field: &mut dyn FnMut(&[u8]) -> Option<String>,
    out: &mut Vec<Inner>,
) {
    let Value::Object(mut object) = value else {
        out.push(malformed("expected a Logstash document (an object)".into()));
        return;
    };
    object.remove("@version");
    let stamp = object.remove("@timestamp");
    let mut record = serde_json::to_vec(&object).expect("a Value serialises");
    if let Some(stamp) = stamp
        && let Some(field) = time_field(&record)
        && !object.contains_key(&field)
    {
        object.insert(field, stamp);
        record = serde_json::to_vec(&object).expect("a Value serialises");
    }
    out.push(Inner::Record(record));
}

/// Where records of `format` keep their time, for Logstash's `@timestamp`: the top-level field
/// each format reads first (`None`: the format's time is not a top-level JSON field).
pub fn time_field(format: Format, canonical_ts: &str) -> Option<&str> {
    match format {
        Format::Cloudtrail => Some("eventTime"),
        Format::GcpAudit => Some("timestamp"),
        Format::Databricks => Some("timestamp"),
        Format::Snowflake => Some("QUERY_START_TIME"),
        Format::Jsonl | Format::Auto if !canonical_ts.contains('.') => Some(canonical_ts),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(envelope: &Envelope, line: &str, time_field: Option<&str>) -> Vec<Inner> {
        let mut out = Vec::new();
        let mut field = |_: &[u8]| time_field.map(str::to_string);
        unwrap(envelope, line.as_bytes(), &mut field, &mut out);
        out
    }

    fn text(inner: &Inner) -> String {
        match inner {
            Inner::Record(bytes) => String::from_utf8(bytes.clone()).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn envelopes_are_recognised_by_the_keys_only_shippers_write() {
        let of = |line: &str| Envelope::of(EnvelopeChoice::Auto, None, line.as_bytes());
        assert_eq!(
            of(r#"{"messageType":"DATA_MESSAGE","owner":"1","logEvents":[]}"#),
            Some(Envelope::Cloudwatch)
        );
        assert_eq!(
            of(r#"{"time":1710756000.5,"host":"h","sourcetype":"aws:cloudtrail","event":{}}"#),
            Some(Envelope::SplunkHec)
        );
        assert_eq!(
            of(
                r#"{"@timestamp":"2026-03-18T10:00:00.000Z","@version":"1","eventName":"GetObject"}"#
            ),
            Some(Envelope::Logstash)
        );
        assert_eq!(
            of(r#"{"ts":"2026-03-18T10:00:00Z","principal":"a","table":"t"}"#),
            None
        );
        assert_eq!(of(r#"{"Records":[]}"#), None);
        assert_eq!(of(r#"{"Records":[{"event":"x","host":"h"}]}"#), None);
        assert_eq!(of(""), None);
        assert_eq!(of("   "), None);
        assert_eq!(of("2026-03-18 10:00:00 UTC LOG:  AUDIT: SESSION"), None);
        assert_eq!(
            Envelope::of(
                EnvelopeChoice::None,
                None,
                br#"{"messageType":"x","logEvents":[]}"#
            ),
            None
        );
        assert_eq!(
            Envelope::of(EnvelopeChoice::Auto, Some("log"), b"{}"),
            Some(Envelope::Field("log".into()))
        );
    }

    #[test]
    fn each_envelope_gives_its_records_in_order() {
        let batch = r#"{"messageType":"DATA_MESSAGE","owner":"123456789012","logGroup":"aws-cloudtrail","logStream":"123456789012_CloudTrail_us-east-1","subscriptionFilters":["all"],"logEvents":[{"id":"1","timestamp":1773828000000,"message":"{\"eventVersion\":\"1.09\"}"},{"id":"2","timestamp":1773828001000,"message":"second"}]}"#;
        let control = r#"{"messageType":"CONTROL_MESSAGE","owner":"CloudwatchLogs","logGroup":"","logStream":"","subscriptionFilters":[],"logEvents":[{"id":"","timestamp":1,"message":"CWL CONTROL MESSAGE: Checking health of destination Firehose."}]}"#;
        // Firehose writes batches back to back, without a newline.
        let both = format!("{control}{batch}");
        let got = records(&Envelope::Cloudwatch, &both, None);
        assert_eq!(got[0], Inner::Control);
        assert_eq!(text(&got[1]), r#"{"eventVersion":"1.09"}"#);
        assert_eq!(text(&got[2]), "second");

        let hec = r#"{"time":1,"sourcetype":"x","event":{"a":1}} {"time":2,"host":"h","event":"a text line"}"#;
        let got = records(&Envelope::SplunkHec, hec, None);
        assert_eq!(text(&got[0]), r#"{"a":1}"#);
        assert_eq!(text(&got[1]), "a text line");

        let doc =
            r#"{"@timestamp":"2026-03-18T10:00:00.000Z","@version":"1","eventName":"GetObject"}"#;
        let got = records(&Envelope::Logstash, doc, Some("eventTime"));
        assert_eq!(
            text(&got[0]),
            r#"{"eventName":"GetObject","eventTime":"2026-03-18T10:00:00.000Z"}"#
        );
        let own = r#"{"@timestamp":"2026-03-18T10:00:09Z","@version":"1","eventTime":"2026-03-18T10:00:00Z"}"#;
        assert_eq!(
            text(&records(&Envelope::Logstash, own, Some("eventTime"))[0]),
            r#"{"eventTime":"2026-03-18T10:00:00Z"}"#,
            "the record's own time wins"
        );

        let fluent = r#"{"log":"{\"ts\":1}","stream":"stdout","time":"2026-03-18T10:00:00Z"}"#;
        let got = records(&Envelope::Field("log".into()), fluent, None);
        assert_eq!(text(&got[0]), r#"{"ts":1}"#);
    }

    #[test]
    fn a_line_that_is_not_the_envelope_is_malformed_and_says_why() {
        let cases = [
            (
                Envelope::Cloudwatch,
                r#"{"eventVersion":"1.09"}"#,
                "DATA_MESSAGE",
            ),
            (
                Envelope::Cloudwatch,
                r#"{"messageType":"DATA_MESSAGE"}"#,
                "logEvents",
            ),
            (
                Envelope::SplunkHec,
                r#"{"time":1,"host":"h"}"#,
                "missing field `event`",
            ),
            (
                Envelope::Field("log".into()),
                r#"{"log":3}"#,
                "must be the record",
            ),
            (Envelope::Logstash, "[1]", "Logstash document"),
            (Envelope::Logstash, r#"{"@timestamp": "#, "not valid JSON"),
        ];
        for (envelope, line, says) in cases {
            let got = records(&envelope, line, None);
            let Some(Inner::Malformed(error)) = got.last() else {
                panic!("{line}: {got:?}")
            };
            assert!(error.to_string().contains(says), "{line}: {error}");
        }
    }
}
