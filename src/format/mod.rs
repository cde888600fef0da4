//! Log formats: each turns the bytes of one record into an [`AccessEvent`] or says precisely why
//! it cannot. Parsers are pure (no I/O) so that every source — files, stdin, a live tail — shares
//! them, and so that they can be fuzzed.

pub mod cloudtrail;
pub mod databricks;
pub mod decode;
pub mod gcp;
pub mod jsonl;
pub mod pgaudit;
pub mod snowflake;
pub mod vendor;

pub use decode::{DecodeSink, Decoder, Line};

use crate::time::TsError;

/// The input formats `exposure` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// Parquet where a file starts with `PAR1`; otherwise recognised from the first line
    /// (CloudTrail, GCP audit, Snowflake, Databricks, pgaudit, else canonical JSON lines).
    #[default]
    Auto,
    /// One JSON object per line: `{"ts": ..., "principal": ..., "table": ..., "action": ...}`.
    Jsonl,
    /// Parquet files (columns mapped like JSON fields).
    Parquet,
    /// AWS CloudTrail log files or one-record-per-line exports.
    Cloudtrail,
    /// Google Cloud audit log entries (BigQuery data access), exported as JSON lines.
    GcpAudit,
    /// PostgreSQL logs with pgaudit lines (stderr layout or csvlog).
    Pgaudit,
    /// Snowflake ACCESS_HISTORY rows as JSON lines.
    Snowflake,
    /// Databricks audit logs (delivered JSON or system.access.audit exports).
    Databricks,
}

impl Format {
    /// A vendor format, read through [`vendor::RecordReader`] in the [`Decoder`].
    pub fn is_vendor(self) -> bool {
        matches!(
            self,
            Format::Cloudtrail
                | Format::GcpAudit
                | Format::Pgaudit
                | Format::Snowflake
                | Format::Databricks
        )
    }
}

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
    /// A record of a vendor format that does not have that format's shape.
    #[error("{message}")]
    Record { message: String, column: usize },
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
            ParseError::Record { .. } => "bad_record",
        }
    }
}
