//! Log formats: each turns the bytes of one record into an [`AccessEvent`](crate::event::AccessEvent) or says precisely why
//! it cannot. Parsers are pure (no I/O) so that every source — files, stdin, a live tail — shares
//! them, and so that they can be fuzzed.

mod canonical;
pub mod cloudtrail;
pub mod columns;
pub(crate) mod csv;
pub mod databricks;
pub mod decode;
pub mod envelope;
pub mod gcp;
pub mod gcs_usage;
pub mod grant_sql;
pub mod jsonl;
pub mod pgaudit;
pub mod s3_access;
pub mod snowflake;
pub mod sql_relations;
pub mod vendor;
mod walk;

pub use decode::{DecodeSink, Decoder, Line};

use crate::time::TsError;

/// The input formats `exposure` reads ([`Format::describe`] says what each is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    #[default]
    Auto,
    Jsonl,
    Parquet,
    Cloudtrail,
    GcpAudit,
    Pgaudit,
    Snowflake,
    Databricks,
    S3Access,
    GcsUsage,
}

impl Format {
    /// Every format, in the order `--help` lists them.
    pub const ALL: [Format; 10] = [
        Format::Auto,
        Format::Jsonl,
        Format::Parquet,
        Format::Cloudtrail,
        Format::GcpAudit,
        Format::Pgaudit,
        Format::Snowflake,
        Format::Databricks,
        Format::S3Access,
        Format::GcsUsage,
    ];

    /// The name users write (`--format`, `[input] format`).
    pub fn name(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Jsonl => "jsonl",
            Format::Parquet => "parquet",
            Format::Cloudtrail => "cloudtrail",
            Format::GcpAudit => "gcp-audit",
            Format::Pgaudit => "pgaudit",
            Format::Snowflake => "snowflake",
            Format::Databricks => "databricks",
            Format::S3Access => "s3-access",
            Format::GcsUsage => "gcs-usage",
        }
    }

    /// What the format is, in one sentence.
    pub fn describe(self) -> &'static str {
        match self {
            Format::Auto => {
                "Parquet where a file starts with `PAR1`; otherwise recognised from the first line \
                 (CloudTrail, GCP audit, Snowflake, Databricks, pgaudit, S3 server access logs, \
                 GCS usage logs, else canonical JSON lines)"
            }
            Format::Jsonl => {
                "One JSON object per line: `{\"ts\": ..., \"principal\": ..., \"table\": ..., \"action\": ...}`"
            }
            Format::Parquet => "Parquet files (columns mapped like JSON fields)",
            Format::Cloudtrail => "AWS CloudTrail log files or one-record-per-line exports",
            Format::GcpAudit => {
                "Google Cloud audit log entries (BigQuery data access), exported as JSON lines"
            }
            Format::Pgaudit => "PostgreSQL logs with pgaudit lines (stderr layout or csvlog)",
            Format::Snowflake => "Snowflake ACCESS_HISTORY rows as JSON lines",
            Format::Databricks => {
                "Databricks audit logs (delivered JSON or system.access.audit exports)"
            }
            Format::S3Access => {
                "Amazon S3 server access logs (one request per line, as S3 writes them)"
            }
            Format::GcsUsage => {
                "Google Cloud Storage usage logs (the hourly CSV files of a log bucket)"
            }
        }
    }

    /// A vendor format, read through [`vendor::RecordReader`] in the [`Decoder`].
    pub fn is_vendor(self) -> bool {
        matches!(
            self,
            Format::Cloudtrail
                | Format::GcpAudit
                | Format::Pgaudit
                | Format::Snowflake
                | Format::Databricks
                | Format::S3Access
                | Format::GcsUsage
        )
    }
}

/// The [`ParseError::kind`] of an access event that names no object.
pub const UNATTRIBUTABLE: &str = "unattributable";

/// Why one record was skipped.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    #[error("not valid JSON: {message}")]
    Json { message: String, column: usize },
    #[error("invalid UTF-8 at byte {column}")]
    Utf8 { column: usize },
    #[error("missing field `{field}`")]
    MissingField { field: String },
    #[error("field `{field}` must be {expected}, found {found}")]
    WrongType {
        field: String,
        expected: &'static str,
        found: String,
    },
    #[error("field `{field}` is empty")]
    EmptyField { field: String },
    #[error("field `{field}`: {source}")]
    Timestamp {
        field: String,
        #[source]
        source: TsError,
    },
    #[error("line is longer than {max_line_bytes} bytes (max_line_bytes)")]
    TooLong { max_line_bytes: usize },
    #[error(
        "field `{field}` holds control character U+{code:04X} at character {at}: names must be printable"
    )]
    ControlCharacter {
        field: &'static str,
        code: u8,
        at: usize,
    },
    /// An access event that names no object (a table, a key): it cannot be attributed to a
    /// table, so no baseline sees it. Counted apart from malformed input; `--strict` stops on it.
    #[error("access event names no object: {message}")]
    Unattributable { message: String },
    /// A record of a vendor format that does not have that format's shape.
    #[error("{message}")]
    Record { message: String, column: usize },
}

/// A line (or record) as text, or [`ParseError::Utf8`] naming the column where it stops being
/// UTF-8. SIMD validation first, as nearly every line is valid; std's, only to find where a bad
/// one breaks.
#[inline]
pub(crate) fn utf8_text(bytes: &[u8]) -> Result<&str, ParseError> {
    match simdutf8::basic::from_utf8(bytes) {
        Ok(text) => Ok(text),
        Err(_) => std::str::from_utf8(bytes).map_err(|e| ParseError::Utf8 {
            column: e.valid_up_to() + 1,
        }),
    }
}

impl ParseError {
    /// The 1-based column (byte) where the problem is, when known.
    pub fn column(&self) -> Option<usize> {
        match self {
            ParseError::Json { column, .. }
            | ParseError::Utf8 { column }
            | ParseError::Record { column, .. } => Some(*column),
            _ => None,
        }
    }

    /// A short stable name for the kind of problem, for counters.
    pub fn kind(&self) -> &'static str {
        match self {
            ParseError::Json { .. } => "not_json",
            ParseError::Utf8 { .. } => "invalid_utf8",
            ParseError::MissingField { .. } => "missing_field",
            ParseError::WrongType { .. } => "wrong_type",
            ParseError::EmptyField { .. } => "empty_field",
            ParseError::Timestamp { .. } => "bad_timestamp",
            ParseError::TooLong { .. } => "too_long",
            ParseError::ControlCharacter { .. } => "control_character",
            ParseError::Unattributable { .. } => UNATTRIBUTABLE,
            ParseError::Record { .. } => "bad_record",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_name_is_the_one_the_config_file_takes() {
        for format in Format::ALL {
            let parsed: Format = serde_json::from_value(format.name().into()).unwrap();
            assert_eq!(parsed, format);
        }
    }

    #[test]
    fn utf8_text_names_the_column_where_a_line_stops_being_utf8() {
        let line = "{\"principal\":\"josé\",\"table\":\"t\"}"
            .as_bytes()
            .to_vec();
        assert_eq!(utf8_text(&line).ok(), std::str::from_utf8(&line).ok());
        // A stray continuation byte, a truncated sequence, an overlong form, a surrogate: each
        // at every position, reported at the first byte std's validation refuses.
        for bad in [&[0x80u8][..], &[0xc3], &[0xc0, 0xaf], &[0xed, 0xa0, 0x80]] {
            for at in 0..=line.len() {
                if std::str::from_utf8(&line[..at]).is_err() {
                    continue; // not a character boundary
                }
                let mut broken = line[..at].to_vec();
                broken.extend_from_slice(bad);
                broken.extend_from_slice(&line[at..]);
                let want = std::str::from_utf8(&broken).unwrap_err().valid_up_to() + 1;
                match utf8_text(&broken) {
                    Err(ParseError::Utf8 { column }) => assert_eq!(column, want, "{at} {bad:?}"),
                    other => panic!("{at} {bad:?}: {other:?}"),
                }
            }
        }
    }
}
