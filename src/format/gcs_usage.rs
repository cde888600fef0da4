//! Google Cloud Storage usage logs: the hourly CSV files Cloud Storage writes into a log bucket,
//! one request per row, every field quoted, a header row first:
//!
//! ```text
//! "time_micros","c_ip","c_ip_type","c_ip_region","cs_method","cs_uri","sc_status","cs_bytes",
//! "sc_bytes","time_taken_micros","cs_host","cs_referer","cs_user_agent","s_request_id",
//! "cs_operation","cs_bucket","cs_object"
//! ```
//!
//! Google's documentation says Cloud Audit Logs do not record access to public objects: these
//! logs are the only record of anonymous reads of a public bucket. The columns are read by their
//! documented position (the header row is recognised and counted, not read); columns Google
//! appends later are ignored.
//!
//! - **Who**: usage logs name no requester, only the client address `c_ip`, and they hold
//!   signed-in requests as well as anonymous ones. By default (`[input.gcs_usage] requester =
//!   "address"`) each request is `address@ADDRESS`, a principal learned like any other: forty
//!   new addresses reading a bucket is a window, whose cause the audit log's IAM change names.
//!   `requester = "anonymous"`, for the logs of a bucket that only the public reads, makes each
//!   request anonymous, `anonymous@ADDRESS` (`[input] anonymous`): a public read, a window at
//!   once.
//! - **What**: `cs_bucket` and `cs_object` (URL-decoded), named as S3's accesses are
//!   (`[input.cloudtrail] resource`, the dataset by default).
//! - **Read or not**: `GET_Object` and `HEAD_Object` (or the JSON API's `storage.objects.get`)
//!   are reads; a listing (`GET_Bucket`, `storage.objects.list`) is an access of the bucket, not
//!   a read; other object operations (`PUT_Object`, `POST_Object`, `DELETE_Object`…) are other
//!   accesses; bucket and ACL operations are metadata. A request whose `sc_status` is 400 or
//!   above read nothing. A read's `sc_bytes` is its volume (`bytes`, for `exposure impact`).

use super::ParseError;
use super::cloudtrail::{Options, name_of};
use super::csv::split_csv;
use super::vendor::{Item, NotAccess};
use crate::event::AccessEvent;
use serde::Deserialize;

/// The documented columns, in order.
pub const COLUMNS: [&str; 17] = [
    "time_micros",
    "c_ip",
    "c_ip_type",
    "c_ip_region",
    "cs_method",
    "cs_uri",
    "sc_status",
    "cs_bytes",
    "sc_bytes",
    "time_taken_micros",
    "cs_host",
    "cs_referer",
    "cs_user_agent",
    "s_request_id",
    "cs_operation",
    "cs_bucket",
    "cs_object",
];

/// Who a usage log's request is (`[input.gcs_usage] requester`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Requester {
    /// `address@ADDRESS`: a principal like any other.
    #[default]
    Address,
    /// `anonymous@ADDRESS`: a public read.
    Anonymous,
}

/// `[input.gcs_usage]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UsageOptions {
    pub requester: Requester,
}

/// Whether `line` looks like a usage log row: the header, or a quoted time in microseconds
/// followed by a quoted field.
pub fn looks_like(line: &[u8]) -> bool {
    if line.starts_with(b"\"time_micros\",\"c_ip\"") {
        return true;
    }
    let Some(rest) = line.strip_prefix(b"\"") else {
        return false;
    };
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    (15..=17).contains(&digits) && rest[digits..].starts_with(b"\",\"")
}

/// Parses one row.
pub fn parse(
    line: &[u8],
    options: &Options,
    usage: &UsageOptions,
) -> Result<Vec<Item>, ParseError> {
    let line = super::utf8_text(line)?;
    let line = line.trim_end_matches(['\r', '\n']);
    if line.starts_with("\"time_micros\"") {
        return Ok(vec![Item::NotAccess(NotAccess::Header)]);
    }
    let fields = split_csv(line, COLUMNS.len()).map_err(|message| ParseError::Record {
        message: format!("not a usage log row: {message}"),
        column: 1,
    })?;
    if fields.len() < COLUMNS.len() {
        return Err(ParseError::MissingField {
            field: format!(
                "{} (column {}; the row has {})",
                COLUMNS[fields.len()],
                fields.len() + 1,
                fields.len()
            ),
        });
    }
    let field = |name: &str| -> &str {
        let at = COLUMNS.iter().position(|c| *c == name).expect("a column");
        &fields[at]
    };
    let time = field("time_micros");
    let ts: i64 = time.parse().map_err(|_| ParseError::WrongType {
        field: "time_micros".into(),
        expected: "microseconds since 1970",
        found: crate::time::clip(time, 40),
    })?;
    let status = field("sc_status");
    let status: u16 = status.parse().map_err(|_| ParseError::WrongType {
        field: "sc_status".into(),
        expected: "an HTTP status",
        found: crate::time::clip(status, 40),
    })?;
    let operation = field("cs_operation");
    let Some(access) = access_of(operation, field("cs_method"), field("cs_object")) else {
        return Ok(vec![Item::NotAccess(NotAccess::Metadata)]);
    };
    if status >= 400 {
        return Ok(vec![Item::NotAccess(NotAccess::Failed)]);
    }
    let bucket = field("cs_bucket");
    if bucket.is_empty() {
        return Err(ParseError::Unattributable {
            message: format!("{operation} without a cs_bucket"),
        });
    }
    let object = match (access, field("cs_object")) {
        (Access::Listing, _) | (_, "") => None,
        (_, object) => Some(percent_encoding::percent_decode_str(object).decode_utf8_lossy()),
    };
    let table = name_of(bucket, object.as_deref(), options.resource);
    let address = field("c_ip");
    let principal = match usage.requester {
        Requester::Anonymous => options.anonymous.principal(Some(address)),
        Requester::Address if address.is_empty() => "address".to_string(),
        Requester::Address => format!("address@{address}"),
    };
    let mut event = AccessEvent::classified(ts, principal, table, access == Access::Read);
    if access == Access::Read {
        event.bytes = field("sc_bytes").parse().ok();
    }
    Ok(vec![Item::Event(event)])
}

/// What a request did to data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Listing,
    Other,
}

/// The access of `operation` (`None`: bucket or ACL metadata, no data access).
fn access_of(operation: &str, method: &str, object: &str) -> Option<Access> {
    match operation {
        "GET_Object" | "HEAD_Object" | "storage.objects.get" => Some(Access::Read),
        "GET_Bucket" | "storage.objects.list" => Some(Access::Listing),
        "PUT_Object" | "POST_Object" | "DELETE_Object" | "PATCH_Object" | "COPY_Object"
        | "COMPOSE_Object" => Some(Access::Other),
        op if op.starts_with("storage.objects.") => Some(Access::Other),
        // An operation not named: an object request by its method.
        "" if !object.is_empty() => Some(match method {
            "GET" | "HEAD" => Access::Read,
            _ => Access::Other,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Anonymous;

    fn row(operation: &str, status: &str, object: &str) -> String {
        format!(
            r#""1710756307123456","203.0.113.7","1","","GET","/acme-exports/{object}","{status}","0","1024","27000","storage.googleapis.com","","curl/8.5.0","ADPycdtX2nG","{operation}","acme-exports","{object}""#
        )
    }

    fn items(line: &str, usage: &UsageOptions) -> Vec<Item> {
        parse(line.as_bytes(), &Options::default(), usage).expect(line)
    }

    fn event(items: &[Item]) -> (&str, &str, Option<bool>) {
        match items {
            [Item::Event(e)] => (&e.principal, &e.table, e.is_read),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_public_object_get_is_an_anonymous_read_of_its_dataset() {
        let public = UsageOptions {
            requester: Requester::Anonymous,
        };
        let got = items(&row("GET_Object", "200", "salaries/2026-03.csv"), &public);
        assert_eq!(
            event(&got),
            ("anonymous@203.0.113.7", "acme-exports/salaries", Some(true))
        );
        let Item::Event(e) = &got[0] else {
            unreachable!()
        };
        assert_eq!(e.ts, 1_710_756_307_123_456);
        assert_eq!(e.bytes, Some(1024));
        let got = items(
            &row("HEAD_Object", "200", "x%2Fy.csv"),
            &UsageOptions::default(),
        );
        assert_eq!(
            event(&got),
            ("address@203.0.113.7", "acme-exports/x", Some(true))
        );
        let shared = Options {
            anonymous: Anonymous::Shared,
            ..Options::default()
        };
        let got = parse(
            row("GET_Object", "200", "a.csv").as_bytes(),
            &shared,
            &public,
        )
        .unwrap();
        assert_eq!(event(&got).0, "anonymous");
    }

    #[test]
    fn listings_writes_failures_metadata_and_the_header_are_told_apart() {
        let usage = UsageOptions::default();
        let listing = items(&row("GET_Bucket", "200", ""), &usage);
        assert_eq!(
            event(&listing),
            ("address@203.0.113.7", "acme-exports", Some(false))
        );
        let write = items(&row("PUT_Object", "200", "in/x.csv"), &usage);
        assert_eq!(event(&write).2, Some(false));
        assert_eq!(
            items(&row("GET_Object", "403", "a.csv"), &usage),
            [Item::NotAccess(NotAccess::Failed)]
        );
        assert_eq!(
            items(&row("GET_BucketAcl", "200", ""), &usage),
            [Item::NotAccess(NotAccess::Metadata)]
        );
        let header = COLUMNS.map(|c| format!("\"{c}\"")).join(",");
        assert!(looks_like(header.as_bytes()));
        assert!(looks_like(row("GET_Object", "200", "a").as_bytes()));
        assert!(!looks_like(b"{\"time_micros\":1}"));
        assert_eq!(items(&header, &usage), [Item::NotAccess(NotAccess::Header)]);
    }

    #[test]
    fn a_bad_row_says_which_column() {
        let usage = UsageOptions::default();
        let short = r#""1710756307123456","203.0.113.7","1""#;
        let error = parse(short.as_bytes(), &Options::default(), &usage).unwrap_err();
        assert!(
            error.to_string().contains("c_ip_region (column 4"),
            "{error}"
        );
        let bad_time = row("GET_Object", "200", "a").replace("1710756307123456", "noon");
        let error = parse(bad_time.as_bytes(), &Options::default(), &usage).unwrap_err();
        assert!(error.to_string().contains("time_micros"), "{error}");
        let unclosed = r#""1710756307123456","203.0.113.7"#;
        assert!(parse(unclosed.as_bytes(), &Options::default(), &usage).is_err());
    }
}
