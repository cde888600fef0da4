//! Amazon S3 server access logs: the free, best-effort request log S3 writes into a bucket, one
//! request per line, space-separated, `-` for an empty field, the time in brackets and the fields
//! that may hold spaces in double quotes:
//!
//! ```text
//! OWNER BUCKET [06/Feb/2019:00:00:38 +0000] REMOTE-IP REQUESTER REQUEST-ID OPERATION KEY
//! "REQUEST-URI" STATUS ERROR-CODE BYTES-SENT OBJECT-SIZE TOTAL-TIME TURN-AROUND "REFERER"
//! "USER-AGENT" VERSION-ID HOST-ID SIGNATURE CIPHER AUTH-TYPE HOST-HEADER TLS ACCESS-POINT ACL …
//! ```
//!
//! Only the first ten fields (through the HTTP status) are needed; every later one is optional,
//! as in older logs, and fields AWS appends in the future are ignored. A read's BYTES-SENT, when
//! there, is its volume (`bytes`, for `exposure impact`).
//!
//! - **Who**: the requester, an IAM ARN or a canonical user id, named like CloudTrail's
//!   principals (`[input.cloudtrail] principal`: an assumed role's session is
//!   `arn:aws:iam::ACCOUNT:role/ROLE/SESSION` by default). `-` is an unauthenticated request: a
//!   read by `anonymous@REMOTE-IP` (`[input] anonymous`), a public read.
//! - **What**: the bucket and the URL-decoded key, named as CloudTrail's S3 accesses are
//!   (`[input.cloudtrail] resource`, the dataset by default).
//! - **Read or not**: like CloudTrail's `readOnly` object-level calls — `REST.GET.OBJECT*`,
//!   `REST.HEAD.OBJECT*`, the source side of a copy (`REST.COPY.OBJECT_GET`, `REST.COPY.PART_GET`)
//!   and `WEBSITE.GET.OBJECT`/`WEBSITE.HEAD.OBJECT` are reads; other `REST.`, `WEBSITE.` and
//!   `BATCH.` operations are other accesses (a bucket-level `GET`, a listing, is an access of the
//!   bucket, not a read). S3's own operations (`S3.EXPIRE.OBJECT`, `S3.TRANSITION…`) are not
//!   accesses; a request that failed (HTTP status 400 or above) read nothing.

use super::ParseError;
use super::cloudtrail::{Options, PrincipalChoice, name_of};
use super::vendor::{Item, NotAccess};
use crate::event::AccessEvent;
use crate::time::Ts;

/// Whether `line` looks like an S3 server access log line: an owner id, a bucket, then the
/// bracketed time.
pub fn looks_like(line: &[u8]) -> bool {
    // The first fields are enough: a line whose user agent is not UTF-8 still looks like one.
    let text = match std::str::from_utf8(line) {
        Ok(text) => text,
        Err(e) => std::str::from_utf8(&line[..e.valid_up_to()]).expect("valid up to there"),
    };
    let mut fields = Fields::new(text);
    matches!(
        (fields.next(), fields.next(), fields.next()),
        (Some(Ok(_)), Some(Ok(_)), Some(Ok(time))) if time_of(time).is_some()
    )
}

/// Parses one log line.
pub fn parse(line: &[u8], options: &Options) -> Result<Vec<Item>, ParseError> {
    let line = super::utf8_text(line)?;
    let mut fields = Fields::new(line);
    let mut field = |name: &'static str| -> Result<&str, ParseError> {
        match fields.next() {
            Some(Ok(value)) => Ok(value),
            Some(Err(column)) => Err(ParseError::Record {
                message: format!("{name}: an opening quote or bracket is not closed"),
                column,
            }),
            None => Err(ParseError::MissingField {
                field: name.to_string(),
            }),
        }
    };
    let _owner = field("bucket owner")?;
    let bucket = field("bucket")?;
    let time = field("time")?;
    let remote_ip = field("remote IP")?;
    let requester = field("requester")?;
    let _request_id = field("request ID")?;
    let operation = field("operation")?;
    let key = field("key")?;
    let _uri = field("request URI")?;
    let status = field("HTTP status")?;
    let ts = time_of(time).ok_or_else(|| ParseError::WrongType {
        field: "time".into(),
        expected: "a time as [06/Feb/2019:00:00:38 +0000]",
        found: crate::time::clip(time, 40),
    })?;
    let status: u16 = status.parse().map_err(|_| ParseError::WrongType {
        field: "HTTP status".into(),
        expected: "a number",
        found: crate::time::clip(status, 40),
    })?;
    let Some(read) = is_read(operation) else {
        return Ok(vec![Item::NotAccess(NotAccess::OtherCall)]);
    };
    if status >= 400 {
        return Ok(vec![Item::NotAccess(NotAccess::Failed)]);
    }
    if bucket == "-" || bucket.is_empty() {
        return Err(ParseError::Unattributable {
            message: format!("{operation} without a bucket"),
        });
    }
    let key = match key {
        "-" => None,
        key => Some(percent_encoding::percent_decode_str(key).decode_utf8_lossy()),
    };
    let table = name_of(bucket, key.as_deref(), options.resource);
    let principal = match requester {
        "-" => options.anonymous.principal(Some(remote_ip)),
        arn => principal_of(arn, options.principal),
    };
    let mut event = AccessEvent::classified(ts, principal, table, read);
    // ERROR-CODE, then BYTES-SENT (`-` when none): the volume of a read.
    let _error_code = fields.next();
    if read && let Some(Ok(sent)) = fields.next() {
        event.bytes = sent.parse().ok();
    }
    Ok(vec![Item::Event(event)])
}

/// Whether `operation` reads data: `Some(true)` a read, `Some(false)` another access, `None`
/// not a request's access at all (S3's own lifecycle and replication operations).
fn is_read(operation: &str) -> Option<bool> {
    let (kind, rest) = operation.split_once('.')?;
    let (method, resource) = rest.split_once('.').unwrap_or((rest, ""));
    match kind {
        "REST" | "WEBSITE" => Some(match method {
            "GET" | "HEAD" => resource.starts_with("OBJECT"),
            "COPY" => resource.ends_with("_GET"),
            _ => false,
        }),
        "BATCH" => Some(false),
        _ => None,
    }
}

/// A requester ARN named as CloudTrail names the same caller (see [`super::cloudtrail`]).
fn principal_of(arn: &str, choice: PrincipalChoice) -> String {
    // arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION
    if choice != PrincipalChoice::Arn
        && let Some((prefix, rest)) = arn.split_once(":assumed-role/")
        && let Some((role, session)) = rest.split_once('/')
        && let Some(account) = prefix.strip_prefix("arn:aws:sts::")
    {
        let role_arn = format!("arn:aws:iam::{account}:role/{role}");
        return match choice {
            PrincipalChoice::Session => format!("{role_arn}/{session}"),
            _ => role_arn,
        };
    }
    arn.to_string()
}

/// `[06/Feb/2019:00:00:38 +0000]` (the brackets included).
fn time_of(field: &str) -> Option<Ts> {
    let text = field.strip_prefix('[')?.strip_suffix(']')?;
    let (clock, zone) = text.split_once(' ')?;
    let (date, hms) = clock.split_once(':')?;
    let mut date = date.split('/');
    let (day, month, year) = (date.next()?, date.next()?, date.next()?);
    let month = 1 + [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == month)?;
    let mut hms = hms.split(':');
    let (h, m, s) = (hms.next()?, hms.next()?, hms.next()?);
    let number = |t: &str| -> Option<u32> {
        (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())).then(|| t.parse().ok())?
    };
    let date = chrono::NaiveDate::from_ymd_opt(number(year)? as i32, month as u32, number(day)?)?;
    let time = chrono::NaiveTime::from_hms_opt(number(h)?, number(m)?, number(s)?)?;
    let zone = zone.as_bytes();
    let (sign, hours, minutes) = match zone {
        [sign @ (b'+' | b'-'), h1, h2, m1, m2]
            if [h1, h2, m1, m2].iter().all(|b| b.is_ascii_digit()) =>
        {
            (
                if *sign == b'-' { -1 } else { 1 },
                i64::from((h1 - b'0') * 10 + (h2 - b'0')),
                i64::from((m1 - b'0') * 10 + (m2 - b'0')),
            )
        }
        _ => return None,
    };
    let local = date.and_time(time).and_utc().timestamp();
    let utc = local - sign * (hours * 3600 + minutes * 60);
    Some(utc * crate::time::MICROS_PER_SEC)
}

/// The fields of a line: runs of bytes between spaces, a `[…]` or `"…"` field taken whole (a
/// backslash escapes a quote within). An unclosed one is `Err(column)` where it opens. Fields
/// end at ASCII bytes, so each is a slice of the line's text: it is checked to be UTF-8 once.
struct Fields<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Fields<'a> {
    fn new(text: &'a str) -> Fields<'a> {
        Fields { text, at: 0 }
    }

    /// A field opened at `start` and never closed: the rest of the line is that field; its
    /// 1-based column.
    fn unclosed(&mut self, start: usize) -> usize {
        self.at = self.text.len();
        start + 1
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<&'a str, usize>;

    fn next(&mut self) -> Option<Self::Item> {
        let line = self.text.as_bytes();
        while self.at < line.len() && line[self.at] == b' ' {
            self.at += 1;
        }
        let start = self.at;
        let end = match *line.get(start)? {
            b'[' => match memchr::memchr(b']', &line[start..]) {
                Some(close) => start + close + 1,
                None => return Some(Err(self.unclosed(start))),
            },
            b'"' => {
                let mut i = start + 1;
                loop {
                    match memchr::memchr2(b'"', b'\\', &line[i..]) {
                        Some(at) if line[i + at] == b'\\' => i += at + 2,
                        Some(at) => break i + at + 1,
                        None => return Some(Err(self.unclosed(start))),
                    }
                    if i > line.len() {
                        return Some(Err(self.unclosed(start)));
                    }
                }
            }
            _ => memchr::memchr(b' ', &line[start..]).map_or(line.len(), |space| start + space),
        };
        self.at = end;
        let field = &self.text[start..end];
        Some(Ok(match field.as_bytes() {
            [b'"', .., b'"'] => &field[1..field.len() - 1],
            _ => field,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Anonymous;

    /// AWS's example line (Amazon S3 User Guide, "Amazon S3 server access log format"), a
    /// bucket-level GET.
    const AWS_EXAMPLE: &str = r#"79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be awsexamplebucket1 [06/Feb/2019:00:00:38 +0000] 192.0.2.3 79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be 3E57427F3EXAMPLE REST.GET.VERSIONING - "GET /awsexamplebucket1?versioning HTTP/1.1" 200 - 113 - 7 - "-" "S3Console/0.4" - s9lzHYrFp76ZVxRcpX9+5cjAnEH2ROuNkd2BHfIa6UkFVdtjf5mKR3/eTPFvsiP/XV/VLi31234= SigV4 ECDHE-RSA-AES128-GCM-SHA256 AuthHeader awsexamplebucket1.s3.us-west-1.amazonaws.com TLSV1.2 arn:aws:s3:us-west-1:123456789012:accesspoint/example-AP Yes"#;

    fn one(line: &str) -> Item {
        let items = parse(line.as_bytes(), &Options::default()).unwrap();
        let [item] = <[Item; 1]>::try_from(items).unwrap();
        item
    }

    fn event(line: &str) -> (Ts, String, String, bool) {
        match one(line) {
            Item::Event(e) => (
                e.ts,
                e.principal.into_owned(),
                e.table.into_owned(),
                e.is_read == Some(true),
            ),
            other => panic!("{other:?}"),
        }
    }

    fn get(requester: &str, key: &str, status: &str, tail: &str) -> String {
        format!(
            r#"79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be lake [18/Mar/2026:10:05:00 +0000] 203.0.113.7 {requester} 3E57427F3EXAMPLE REST.GET.OBJECT {key} "GET /lake/{key} HTTP/1.1" {status}{tail}"#
        )
    }

    #[test]
    fn aws_example_is_an_access_of_the_bucket_not_a_read() {
        assert!(looks_like(AWS_EXAMPLE.as_bytes()));
        let (ts, principal, table, read) = event(AWS_EXAMPLE);
        assert_eq!(crate::time::format_ts(ts), "2019-02-06T00:00:38.000Z");
        assert_eq!(
            principal,
            "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"
        );
        assert_eq!((table.as_str(), read), ("awsexamplebucket1", false));
    }

    #[test]
    fn object_reads_name_the_dataset_and_the_caller_as_cloudtrail_does() {
        let role = "arn:aws:sts::123456789012:assumed-role/Analyst/alice";
        let line = get(
            role,
            "customers/dt%3D2026-03-16/part-0.parquet",
            "200",
            r#" - 2662992 3462992 70 10 "-" "aws-cli/2.15.0" - Ex= SigV4 ECDHE-RSA-AES128-GCM-SHA256 AuthHeader lake.s3.us-east-1.amazonaws.com TLSv1.2 - -"#,
        );
        let (_, principal, table, read) = event(&line);
        assert_eq!(principal, "arn:aws:iam::123456789012:role/Analyst/alice");
        assert_eq!((table.as_str(), read), ("lake/customers", true));
        // BYTES-SENT is the read's volume.
        let items = parse(line.as_bytes(), &Options::default()).unwrap();
        assert!(matches!(&items[0], Item::Event(e) if e.bytes == Some(2_662_992)));
        // Only the fields through the status are needed.
        let short = get(role, "salaries/2026.csv", "206", "");
        assert_eq!(event(&short).2, "lake/salaries");
        let items = parse(short.as_bytes(), &Options::default()).unwrap();
        assert!(matches!(&items[0], Item::Event(e) if e.bytes.is_none()));
        // An unauthenticated request is a public read, by its address.
        let public = get(
            "-",
            "salaries/2026.csv",
            "200",
            " - 10 10 1 1 \"-\" \"curl/8.5.0\"",
        );
        assert_eq!(event(&public).1, "anonymous@203.0.113.7");
        let options = Options {
            anonymous: Anonymous::Shared,
            ..Options::default()
        };
        let shared = parse(public.as_bytes(), &options).unwrap();
        assert!(matches!(&shared[0], Item::Event(e) if e.principal == "anonymous"));
    }

    #[test]
    fn operations_are_reads_other_accesses_or_not_accesses() {
        for (operation, read) in [
            ("REST.GET.OBJECT", Some(true)),
            ("REST.HEAD.OBJECT", Some(true)),
            ("REST.GET.OBJECT_TAGGING", Some(true)),
            ("REST.COPY.OBJECT_GET", Some(true)),
            ("REST.COPY.PART_GET", Some(true)),
            ("WEBSITE.GET.OBJECT", Some(true)),
            ("REST.GET.BUCKET", Some(false)),
            ("REST.PUT.OBJECT", Some(false)),
            ("REST.COPY.OBJECT", Some(false)),
            ("REST.POST.UPLOAD", Some(false)),
            ("BATCH.DELETE.OBJECT", Some(false)),
            ("S3.EXPIRE.OBJECT", None),
            ("S3.TRANSITION_GIR.OBJECT", None),
            ("garbage", None),
        ] {
            assert_eq!(is_read(operation), read, "{operation}");
        }
        let expired = get("-", "a.csv", "200", "").replace("REST.GET.OBJECT", "S3.EXPIRE.OBJECT");
        assert!(matches!(
            one(&expired),
            Item::NotAccess(NotAccess::OtherCall)
        ));
        let denied = get(
            "-",
            "a.csv",
            "403",
            " AccessDenied 243 - 11 - \"-\" \"curl/8.5.0\"",
        );
        assert!(matches!(one(&denied), Item::NotAccess(NotAccess::Failed)));
    }

    #[test]
    fn times_in_any_offset_and_bad_lines_are_precise_errors() {
        assert_eq!(
            time_of("[18/Mar/2026:12:05:00 +0200]"),
            time_of("[18/Mar/2026:10:05:00 +0000]")
        );
        for bad in [
            "[18/Mar/2026:10:05:00]",
            "[18/Foo/2026:10:05:00 +0000]",
            "[31/Feb/2026:10:05:00 +0000]",
            "[18/Mar/2026:25:05:00 +0000]",
            "18/Mar/2026:10:05:00 +0000",
        ] {
            assert_eq!(time_of(bad), None, "{bad}");
        }
        let cut = r#"owner lake [18/Mar/2026:10:05:00 +0000] 203.0.113.7 - ID REST.GET.OBJECT k "GET /lake/k HTTP/1.1"#;
        let error = parse(cut.as_bytes(), &Options::default()).unwrap_err();
        assert!(error.to_string().contains("request URI"), "{error}");
        let short = "owner lake [18/Mar/2026:10:05:00 +0000] 203.0.113.7 - ID REST.GET.OBJECT";
        let error = parse(short.as_bytes(), &Options::default()).unwrap_err();
        assert_eq!(error.to_string(), "missing field `key`");
        let bad_time = AWS_EXAMPLE.replace("06/Feb/2019", "06/Feb/19x");
        assert!(parse(bad_time.as_bytes(), &Options::default()).is_err());
        assert!(!looks_like(
            b"2026-03-18 10:00:00 UTC [1] LOG:  AUDIT: SESSION"
        ));
        assert!(!looks_like(br#"{"ts": 1}"#));
    }

    #[test]
    fn quoted_fields_keep_spaces_and_escaped_quotes() {
        let fields: Vec<&str> = Fields::new(r#"a [b c] "d \"e\" f" -"#)
            .map(Result::unwrap)
            .collect();
        assert_eq!(fields, ["a", "[b c]", r#"d \"e\" f"#, "-"]);
        let unclosed: Vec<_> = Fields::new(r#"a "b c"#).collect();
        assert_eq!(unclosed, [Ok("a"), Err(3)]);
    }
}
