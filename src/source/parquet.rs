//! Parquet inputs: opening a file, checking that its schema carries the mapped columns, reading
//! row-group statistics (time bounds, table bounds) for ordering and pruning, and handing its
//! record batches to the column-wise decoder ([`crate::format::columns`]).

use crate::format::columns::{
    BatchDecoder, Columns, TsKind, dictionary_of_strings, timestamp_to_micros,
};
use crate::format::jsonl::FieldPaths;
use crate::time::{EpochUnit, Ts, ts_from_epoch_int};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader,
    ParquetRecordBatchReaderBuilder,
};
use parquet::file::statistics::Statistics;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The first bytes of every Parquet file.
pub const PARQUET_MAGIC: &[u8; 4] = b"PAR1";

/// A Parquet file whose schema does not fit the field mapping: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{path}: column `{column}` {problem}")]
pub struct SchemaError {
    pub path: String,
    pub column: String,
    pub problem: String,
}

/// Why a Parquet input could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ParquetInputError {
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error("{path}: not a readable Parquet file: {message}")]
    Unreadable { path: String, message: String },
}

/// Time and table bounds of one row group, from its statistics when the writer kept them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowGroupSpan {
    pub index: usize,
    pub rows: u64,
    pub min_ts: Option<Ts>,
    pub max_ts: Option<Ts>,
    pub min_table: Option<Vec<u8>>,
    pub max_table: Option<Vec<u8>>,
}

/// Where a Parquet file is.
#[derive(Clone)]
pub enum ParquetSource {
    Local(PathBuf),
    /// In object storage, read by ranges.
    Object(super::object::RemoteParquet),
}

impl std::fmt::Debug for ParquetSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

impl ParquetSource {
    /// How reports name it: its path or URL.
    pub fn name(&self) -> String {
        match self {
            ParquetSource::Local(path) => path.display().to_string(),
            ParquetSource::Object(remote) => remote.0.url.clone(),
        }
    }
}

/// An opened Parquet file with its mapped columns located.
#[derive(Debug, Clone)]
pub struct ParquetInput {
    pub source: ParquetSource,
    metadata: ArrowReaderMetadata,
    projection: ProjectionMask,
    ts_kind: TsKind,
    epoch_unit: EpochUnit,
    pub row_groups: Vec<RowGroupSpan>,
    /// Column positions in the projected batches.
    columns: Columns,
}

fn string_like(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, values) => string_like(values),
        _ => false,
    }
}

impl ParquetInput {
    /// Opens `path`, checks the mapped columns, and reads row-group statistics.
    pub fn open(
        source: ParquetSource,
        fields: &FieldPaths,
        epoch_unit: EpochUnit,
    ) -> Result<ParquetInput, ParquetInputError> {
        ParquetInput::open_reading(source, fields, epoch_unit, false)
    }

    /// The same, reading the `rows` and `bytes` columns too where the file has them as
    /// integers (what `exposure impact` sums; detection needs neither), and `columns` where
    /// it is a list of strings.
    pub fn open_with_volumes(
        source: ParquetSource,
        fields: &FieldPaths,
        epoch_unit: EpochUnit,
    ) -> Result<ParquetInput, ParquetInputError> {
        ParquetInput::open_reading(source, fields, epoch_unit, true)
    }

    fn open_reading(
        source: ParquetSource,
        fields: &FieldPaths,
        epoch_unit: EpochUnit,
        volumes: bool,
    ) -> Result<ParquetInput, ParquetInputError> {
        let shown = source.name();
        let unreadable = |message: String| ParquetInputError::Unreadable {
            path: shown.clone(),
            message,
        };
        let plain = match &source {
            ParquetSource::Local(path) => {
                let file = File::open(path).map_err(|e| unreadable(e.to_string()))?;
                ArrowReaderMetadata::load(&file, ArrowReaderOptions::new())
            }
            // The footer, once: its length, then the metadata.
            ParquetSource::Object(remote) => {
                ArrowReaderMetadata::load(remote, ArrowReaderOptions::new())
            }
        }
        .map_err(|e| unreadable(e.to_string()))?;
        let schema = plain.schema().clone();
        let find = |name: &str, required: bool| -> Result<Option<usize>, SchemaError> {
            match schema.index_of(name) {
                Ok(i) => Ok(Some(i)),
                Err(_) if !required => Ok(None),
                Err(_) => Err(SchemaError {
                    path: shown.clone(),
                    column: name.to_string(),
                    problem: format!(
                        "is missing (columns: {}; map others with [input.fields])",
                        schema
                            .fields()
                            .iter()
                            .map(|f| f.name().as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }),
            }
        };
        let ts = find(&fields.ts, true)?.expect("required");
        let principal = find(&fields.principal, true)?.expect("required");
        let table = find(&fields.table, true)?.expect("required");
        let action = find(&fields.action, false)?;
        let grantee = find(&fields.grantee, false)?;
        let privilege = find(&fields.privilege, false)?;
        let statement = find(&fields.statement, false)?;
        let volume = |name: &str| -> Result<Option<usize>, SchemaError> {
            let integer = |i: &usize| {
                matches!(
                    schema.field(*i).data_type(),
                    DataType::Int64 | DataType::Int32 | DataType::UInt32 | DataType::UInt64
                )
            };
            Ok(find(name, false)?.filter(|i| volumes && integer(i)))
        };
        let (rows, bytes) = (volume(&fields.rows)?, volume(&fields.bytes)?);
        let list_of_strings = |i: &usize| match schema.field(*i).data_type() {
            DataType::List(item) | DataType::LargeList(item) => string_like(item.data_type()),
            _ => false,
        };
        let column_names = find(&fields.columns, false)?.filter(|i| volumes && list_of_strings(i));

        let wrong = |index: usize, expected: &str| SchemaError {
            path: shown.clone(),
            column: schema.field(index).name().clone(),
            problem: format!(
                "has type {}, expected {expected}",
                schema.field(index).data_type()
            ),
        };
        let ts_kind = match schema.field(ts).data_type() {
            DataType::Timestamp(unit, _) => TsKind::Timestamp(*unit),
            DataType::Int64 | DataType::Int32 => TsKind::Int,
            t if string_like(t) => TsKind::Text,
            _ => {
                return Err(
                    wrong(ts, "a timestamp, an integer epoch or an RFC 3339 string").into(),
                );
            }
        };
        let optional = [action, grantee, privilege, statement];
        for index in [Some(principal), Some(table)]
            .into_iter()
            .chain(optional)
            .flatten()
        {
            if !string_like(schema.field(index).data_type()) {
                return Err(wrong(index, "a string").into());
            }
        }

        // The names read on every row as dictionaries (each name interned once per column
        // chunk), whatever the writer's Arrow hint said; the columns of permission changes,
        // null but on a rare row, as plain strings: read as dictionaries, a column chunk of
        // nulls costs the reader a hash and a compare per row (the nulls are not dictionary
        // encoded, so it rebuilds a dictionary), three times the decoding of everything else.
        let names = [Some(principal), Some(table), action];
        let rare = [grantee, privilege, statement];
        let fields_with_dicts: Vec<Field> = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| {
                if names.contains(&Some(i)) {
                    f.as_ref().clone().with_data_type(dictionary_of_strings())
                } else if rare.contains(&Some(i)) {
                    f.as_ref().clone().with_data_type(DataType::Utf8)
                } else {
                    f.as_ref().clone()
                }
            })
            .collect();
        let options =
            ArrowReaderOptions::new().with_schema(Arc::new(Schema::new(fields_with_dicts)));
        let metadata = ArrowReaderMetadata::try_new(Arc::clone(plain.metadata()), options)
            .map_err(|e| unreadable(e.to_string()))?;

        let read = [
            Some(ts),
            Some(principal),
            Some(table),
            rows,
            bytes,
            column_names,
        ];
        let mut roots: Vec<usize> = read.into_iter().chain(optional).flatten().collect();
        roots.sort_unstable();
        let position = |i: usize| roots.iter().position(|r| *r == i).expect("projected");
        let columns = Columns {
            ts: position(ts),
            principal: position(principal),
            table: position(table),
            action: action.map(position),
            grantee: grantee.map(position),
            privilege: privilege.map(position),
            statement: statement.map(position),
            rows: rows.map(position),
            bytes: bytes.map(position),
            column_names: column_names.map(position),
        };
        let projection = ProjectionMask::roots(metadata.parquet_schema(), roots.iter().copied());

        let parquet_schema = metadata.parquet_schema();
        let leaf = |name: &str| {
            parquet_schema
                .columns()
                .iter()
                .position(|c| c.path().parts() == [name.to_string()])
        };
        let ts_leaf = leaf(&fields.ts);
        let table_leaf = leaf(&fields.table);
        let row_groups = metadata
            .metadata()
            .row_groups()
            .iter()
            .enumerate()
            .map(|(index, rg)| {
                let ts_stats = ts_leaf.and_then(|l| rg.column(l).statistics());
                let (min_ts, max_ts) = ts_bounds(ts_stats, ts_kind, epoch_unit);
                let table_stats = table_leaf.and_then(|l| rg.column(l).statistics());
                let (min_table, max_table) = match table_stats {
                    Some(Statistics::ByteArray(s)) => (
                        s.min_opt().map(|v| v.data().to_vec()),
                        s.max_opt().map(|v| v.data().to_vec()),
                    ),
                    _ => (None, None),
                };
                RowGroupSpan {
                    index,
                    rows: rg.num_rows().max(0) as u64,
                    min_ts,
                    max_ts,
                    min_table,
                    max_table,
                }
            })
            .collect();

        Ok(ParquetInput {
            source,
            metadata,
            projection,
            ts_kind,
            epoch_unit,
            row_groups,
            columns,
        })
    }

    /// Total rows in the file.
    pub fn rows(&self) -> u64 {
        self.row_groups.iter().map(|rg| rg.rows).sum()
    }

    /// A reader of the mapped columns of one row group.
    pub fn read_row_group(
        &self,
        row_group: usize,
        batch_size: usize,
    ) -> Result<ParquetRecordBatchReader, String> {
        self.read_ahead(row_group).reader(batch_size)
    }

    /// Row group `row_group`, read ahead: from a store, its projected column chunks start
    /// coming now, all at once in parallel, while the caller decodes what came before; on
    /// disk, nothing is read until [`RowGroupAhead::reader`].
    pub fn read_ahead(&self, row_group: usize) -> RowGroupAhead<'_> {
        let data = match &self.source {
            ParquetSource::Local(path) => RowGroupData::File(path),
            ParquetSource::Object(remote) => {
                let group = self.metadata.metadata().row_group(row_group);
                let ranges = group
                    .columns()
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| self.projection.leaf_included(*i))
                    .map(|(_, c)| {
                        let (start, length) = c.byte_range();
                        start..start + length
                    })
                    .collect();
                RowGroupData::Fetching(remote.prefetch(ranges))
            }
        };
        RowGroupAhead {
            input: self,
            row_group,
            data,
        }
    }

    fn reader_of<T: parquet::file::reader::ChunkReader + 'static>(
        &self,
        chunks: T,
        row_group: usize,
        batch_size: usize,
    ) -> Result<ParquetRecordBatchReader, String> {
        ParquetRecordBatchReaderBuilder::new_with_metadata(chunks, self.metadata.clone())
            .with_projection(self.projection.clone())
            .with_row_groups(vec![row_group])
            .with_batch_size(batch_size)
            .build()
            .map_err(|e| e.to_string())
    }

    /// A decoder for this file's batches.
    /// Where the `rows` and `bytes` columns are in its batches (with
    /// [`ParquetInput::open_with_volumes`], when the file has them).
    pub fn volume_columns(&self) -> (Option<usize>, Option<usize>) {
        (self.columns.rows, self.columns.bytes)
    }

    /// Where the list of the columns each read named is in its batches (with
    /// [`ParquetInput::open_with_volumes`], when the file has one).
    pub fn column_names_column(&self) -> Option<usize> {
        self.columns.column_names
    }

    pub fn decoder(&self) -> BatchDecoder {
        BatchDecoder::new(self.columns, self.ts_kind, self.epoch_unit)
    }
}

/// A row group's time bounds from its statistics, in the column's own unit.
fn ts_bounds(
    stats: Option<&Statistics>,
    kind: TsKind,
    unit: EpochUnit,
) -> (Option<Ts>, Option<Ts>) {
    let convert = |v: i64| -> Option<Ts> {
        match kind {
            TsKind::Timestamp(u) => Some(timestamp_to_micros(v, u)),
            TsKind::Int => ts_from_epoch_int(v, unit).ok(),
            TsKind::Text => None,
        }
    };
    match (stats, kind) {
        (_, TsKind::Text) => (None, None),
        (Some(Statistics::Int64(s)), _) => (
            s.min_opt().and_then(|v| convert(*v)),
            s.max_opt().and_then(|v| convert(*v)),
        ),
        (Some(Statistics::Int32(s)), _) => (
            s.min_opt().and_then(|v| convert(i64::from(*v))),
            s.max_opt().and_then(|v| convert(i64::from(*v))),
        ),
        _ => (None, None),
    }
}

/// A row group of a [`ParquetInput`] read ahead (see [`ParquetInput::read_ahead`]).
pub struct RowGroupAhead<'a> {
    input: &'a ParquetInput,
    row_group: usize,
    data: RowGroupData<'a>,
}

/// Where a row group read ahead comes from.
enum RowGroupData<'a> {
    /// A local file, opened when read.
    File(&'a Path),
    /// From a store: its column chunks being fetched.
    Fetching(super::object::PendingFetch),
}

impl RowGroupAhead<'_> {
    /// A reader of the row group's mapped columns, once its data has come.
    pub fn reader(self, batch_size: usize) -> Result<ParquetRecordBatchReader, String> {
        let (input, row_group) = (self.input, self.row_group);
        match self.data {
            RowGroupData::File(path) => {
                let file = File::open(path).map_err(|e| e.to_string())?;
                input.reader_of(file, row_group, batch_size)
            }
            RowGroupData::Fetching(fetching) => {
                let fetched = fetching.wait().map_err(|e| e.to_string())?;
                input.reader_of(fetched, row_group, batch_size)
            }
        }
    }
}

/// Whether the file at `path` starts with the Parquet magic bytes.
pub fn looks_like_parquet(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 4];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| &head == PARQUET_MAGIC)
}
