//! A Parquet file read as JSON lines, one object per row, for vendor exports that come as
//! Parquet (Snowflake's ACCESS_HISTORY unloaded with `COPY INTO ... FILE_FORMAT = (TYPE =
//! PARQUET)`): the vendor parsers then read them exactly like the JSON-lines exports. Nested
//! columns become nested JSON; a corrupt row group ends the input with a read error. Canonical
//! Parquet (an archive) read among line inputs comes the same way, its timestamps as RFC 3339
//! in UTC: the canonical decoder then reads it like the JSON lines beside it.

use arrow_array::RecordBatch;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

pub struct ParquetRows {
    batches: ParquetRecordBatchReader,
    buf: Vec<u8>,
    at: usize,
    timestamps: Timestamps,
}

/// How timestamp columns are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timestamps {
    /// Zone-less, as the vendor parsers read them (`2026-03-18T14:02:11.512`, UTC).
    Naive,
    /// RFC 3339 in UTC to the microsecond (`2026-03-18T14:02:11.512000Z`), as canonical JSON
    /// lines give them: an archive (canonical Parquet) read among line inputs.
    Utc,
}

impl ParquetRows {
    /// A vendor's Parquet export, read as its JSON export.
    pub fn open(path: &Path) -> io::Result<ParquetRows> {
        ParquetRows::open_with(path, Timestamps::Naive)
    }

    /// Canonical Parquet (an archive), read as canonical JSON lines.
    pub fn open_canonical(path: &Path) -> io::Result<ParquetRows> {
        ParquetRows::open_with(path, Timestamps::Utc)
    }

    fn open_with(path: &Path, timestamps: Timestamps) -> io::Result<ParquetRows> {
        let file = File::open(path)?;
        let batches = ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|b| b.with_batch_size(4096).build())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        Ok(ParquetRows {
            batches,
            buf: Vec::new(),
            at: 0,
            timestamps,
        })
    }

    fn fill(&mut self, batch: &RecordBatch) -> io::Result<()> {
        self.buf.clear();
        self.at = 0;
        let batch = match self.timestamps {
            Timestamps::Naive => utc_naive(batch)?,
            Timestamps::Utc => utc_rfc3339(batch)?,
        };
        let mut writer = arrow_json::LineDelimitedWriter::new(&mut self.buf);
        writer
            .write(&batch)
            .and_then(|_| writer.finish())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
    }
}

/// Timestamps with a named zone (`UTC`) become zone-less values of the same instant, which the
/// JSON writer prints without resolving zone names (the vendor parsers read them as UTC).
fn utc_naive(batch: &RecordBatch) -> io::Result<RecordBatch> {
    use arrow_array::ArrayRef;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{
        TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
        TimestampSecondType,
    };
    use arrow_schema::{DataType, Field, Schema, TimeUnit};
    use std::sync::Arc;
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        let naive: Option<ArrayRef> = match field.data_type() {
            DataType::Timestamp(unit, Some(_)) => Some(match unit {
                TimeUnit::Second => Arc::new(
                    column
                        .as_primitive::<TimestampSecondType>()
                        .clone()
                        .with_timezone_opt(None::<String>),
                ),
                TimeUnit::Millisecond => Arc::new(
                    column
                        .as_primitive::<TimestampMillisecondType>()
                        .clone()
                        .with_timezone_opt(None::<String>),
                ),
                TimeUnit::Microsecond => Arc::new(
                    column
                        .as_primitive::<TimestampMicrosecondType>()
                        .clone()
                        .with_timezone_opt(None::<String>),
                ),
                TimeUnit::Nanosecond => Arc::new(
                    column
                        .as_primitive::<TimestampNanosecondType>()
                        .clone()
                        .with_timezone_opt(None::<String>),
                ),
            }),
            _ => None,
        };
        match naive {
            Some(array) => {
                fields.push(Field::new(
                    field.name(),
                    array.data_type().clone(),
                    field.is_nullable(),
                ));
                columns.push(array);
            }
            None => {
                fields.push(field.as_ref().clone());
                columns.push(Arc::clone(column));
            }
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
}

/// Timestamp columns become RFC 3339 text in UTC, to the microsecond (nanoseconds are cut to
/// microseconds, as the column-wise reader cuts them).
fn utc_rfc3339(batch: &RecordBatch) -> io::Result<RecordBatch> {
    use crate::format::columns::timestamp_to_micros;
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;
    use arrow_array::{Array, ArrayRef, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use std::sync::Arc;
    let invalid = |e: arrow_schema::ArrowError| io::Error::new(io::ErrorKind::InvalidData, e);
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        let DataType::Timestamp(unit, _) = field.data_type() else {
            fields.push(field.as_ref().clone());
            columns.push(Arc::clone(column));
            continue;
        };
        // The values in the column's own unit, converted as the column-wise reader converts.
        let raw = arrow_cast::cast(column, &DataType::Int64).map_err(invalid)?;
        let raw = raw.as_primitive::<Int64Type>();
        let text: StringArray = (0..raw.len())
            .map(|i| {
                raw.is_valid(i).then(|| {
                    let ts = timestamp_to_micros(raw.value(i), *unit);
                    match chrono::DateTime::<chrono::Utc>::from_timestamp_micros(ts) {
                        Some(at) => at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
                        None => ts.to_string(),
                    }
                })
            })
            .collect();
        fields.push(Field::new(
            field.name(),
            DataType::Utf8,
            field.is_nullable(),
        ));
        columns.push(Arc::new(text));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(invalid)
}

impl Read for ParquetRows {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.at == self.buf.len() {
            match self.batches.next() {
                None => return Ok(0),
                Some(Ok(batch)) => self.fill(&batch)?,
                Some(Err(e)) => {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string()));
                }
            }
        }
        let n = out.len().min(self.buf.len() - self.at);
        out[..n].copy_from_slice(&self.buf[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
