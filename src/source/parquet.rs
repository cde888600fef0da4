//! Parquet inputs: opening a file, checking that its schema carries the mapped columns, reading
//! row-group statistics (time bounds, table bounds) for ordering and pruning, and decoding record
//! batches into detector calls without a string per row: string columns are read as dictionaries
//! and each dictionary is mapped to detector ids once.

use crate::event::{ChangeAction, PermissionChange};
use crate::format::jsonl::FieldPaths;
use crate::intern::{DenseId, PrincipalId, TableId};
use crate::time::{EpochUnit, TimeFilter, Ts, TsError, parse_ts_str, ts_from_epoch_int};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Int32Type, Int64Type, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use arrow_array::{Array, ArrayRef, DictionaryArray, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
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

/// How the time column is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TsKind {
    Timestamp(TimeUnit),
    Int,
    Text,
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

#[derive(Debug, Clone, Copy)]
struct Columns {
    ts: usize,
    principal: usize,
    table: usize,
    action: Option<usize>,
    /// A permission change's own columns, when the file has them.
    grantee: Option<usize>,
    privilege: Option<usize>,
    statement: Option<usize>,
}

fn string_like(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, values) => string_like(values),
        _ => false,
    }
}

fn dictionary_of_strings() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

impl ParquetInput {
    /// Opens `path`, checks the mapped columns, and reads row-group statistics.
    pub fn open(
        source: ParquetSource,
        fields: &FieldPaths,
        epoch_unit: EpochUnit,
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

        let mut roots: Vec<usize> = [Some(ts), Some(principal), Some(table)]
            .into_iter()
            .chain(optional)
            .flatten()
            .collect();
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
    pub fn decoder(&self) -> BatchDecoder {
        BatchDecoder {
            columns: self.columns,
            ts_kind: self.ts_kind,
            epoch_unit: self.epoch_unit,
            ts: Vec::new(),
            principals: DictionaryIds::default(),
            tables: DictionaryIds::default(),
            actions: ActionVerdicts::default(),
        }
    }
}

/// The text of row `row` of a dictionary column: `None` when null or empty (or its key is not
/// in the dictionary: a corrupt file).
fn dictionary_value(dict: &DictionaryArray<Int32Type>, row: usize) -> Option<&str> {
    if dict.keys().is_null(row) {
        return None;
    }
    let key = usize::try_from(dict.keys().value(row)).ok()?;
    let values = dict.values().as_string::<i32>();
    (key < values.len() && values.is_valid(key))
        .then(|| values.value(key))
        .filter(|v| !v.is_empty())
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

#[inline]
fn timestamp_to_micros(value: i64, unit: TimeUnit) -> Ts {
    match unit {
        TimeUnit::Second => value.saturating_mul(1_000_000),
        TimeUnit::Millisecond => value.saturating_mul(1_000),
        TimeUnit::Microsecond => value,
        TimeUnit::Nanosecond => value.div_euclid(1_000),
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

/// Detector ids for the values of the last dictionary seen, rebuilt when the dictionary changes.
struct DictionaryIds<I> {
    values: Option<ArrayRef>,
    /// The id of each dictionary value; `u32::MAX` for a null or empty one. Four bytes each, so
    /// that a dictionary of 20 000 principals stays in L2.
    ids: Vec<I>,
}

impl<I> Default for DictionaryIds<I> {
    fn default() -> Self {
        DictionaryIds {
            values: None,
            ids: Vec::new(),
        }
    }
}

/// Read verdicts for the values of the last action dictionary seen.
#[derive(Default)]
struct ActionVerdicts {
    values: Option<ArrayRef>,
    reads: Vec<bool>,
}

/// Rows that could not be used, with why, for the caller to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    pub row: usize,
    pub column: &'static str,
    pub problem: String,
}

/// Gives table and principal names their ids and says which actions are reads (in replay,
/// the detector's own ids and read actions).
pub trait Names {
    fn table_id(&mut self, name: &str) -> TableId;
    fn principal_id(&mut self, name: &str) -> PrincipalId;
    fn is_read_action(&mut self, action: Option<&str>) -> bool;
}

/// One usable row: its time and, for a read, its (table, principal) ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodedRow {
    pub ts: Ts,
    pub read: Option<(TableId, PrincipalId)>,
}

/// Decodes the record batches of one file into rows of ids, each name interned once per
/// dictionary.
pub struct BatchDecoder {
    columns: Columns,
    ts_kind: TsKind,
    epoch_unit: EpochUnit,
    ts: Vec<Option<Ts>>,
    principals: DictionaryIds<PrincipalId>,
    tables: DictionaryIds<TableId>,
    actions: ActionVerdicts,
}

/// The text of row `row` of a string column: `None` when null or empty.
fn string_value(strings: &StringArray, row: usize) -> Option<&str> {
    strings
        .is_valid(row)
        .then(|| strings.value(row))
        .filter(|v| !v.is_empty())
}

/// A string column as `Utf8` (read so; cast if another reader gave it otherwise).
fn as_strings(array: &ArrayRef) -> Result<StringArray, String> {
    if let Some(strings) = array.as_string_opt::<i32>() {
        return Ok(strings.clone());
    }
    let cast = arrow_cast::cast(array, &DataType::Utf8).map_err(|e| e.to_string())?;
    Ok(cast.as_string::<i32>().clone())
}

fn as_string_dictionary(array: &ArrayRef) -> Result<DictionaryArray<Int32Type>, String> {
    if let Some(dict) = array.as_dictionary_opt::<Int32Type>()
        && matches!(dict.values().data_type(), DataType::Utf8)
    {
        return Ok(dict.clone());
    }
    let cast = arrow_cast::cast(array, &dictionary_of_strings()).map_err(|e| e.to_string())?;
    Ok(cast.as_dictionary::<Int32Type>().clone())
}

impl<I: DenseId> DictionaryIds<I> {
    fn refresh(&mut self, dict: &DictionaryArray<Int32Type>, intern: &mut impl FnMut(&str) -> I) {
        let values = dict.values();
        if self.values.as_ref().is_some_and(|v| Arc::ptr_eq(v, values)) {
            return;
        }
        let strings = values.as_string::<i32>();
        self.ids = (0..strings.len())
            .map(|i| {
                if strings.is_valid(i) && !strings.value(i).is_empty() {
                    intern(strings.value(i))
                } else {
                    I::from_index(u32::MAX)
                }
            })
            .collect();
        self.values = Some(Arc::clone(values));
    }

    /// The id of dictionary key `key`: `None` for a null or empty value, or a key outside the
    /// dictionary (a corrupt file).
    #[inline]
    fn lookup(&self, key: i32) -> Option<I> {
        usize::try_from(key)
            .ok()
            .and_then(|k| self.ids.get(k).copied())
            .filter(|id| id.index() != u32::MAX)
    }
}

impl BatchDecoder {
    /// Appends the rows of `batch` that `filter` keeps to `decoded`, in row order; rows that
    /// cannot be used go to `bad`. A row with a grantee is a permission change: it is in
    /// `decoded` as a row with no read, and in `changes` with its index there. Returns how many
    /// rows the filter left out.
    pub fn decode(
        &mut self,
        batch: &RecordBatch,
        names: &mut impl Names,
        filter: &TimeFilter,
        decoded: &mut Vec<DecodedRow>,
        changes: &mut Vec<(usize, PermissionChange)>,
        bad: &mut Vec<BadRow>,
    ) -> Result<u64, String> {
        let rows = batch.num_rows();
        // A batch with no grantee holds no permission change: its other columns are not read.
        let rare = |i: Option<usize>| -> Result<Option<StringArray>, String> {
            i.map(|i| as_strings(batch.column(i))).transpose()
        };
        let grantees = rare(self.columns.grantee)?.filter(|g| g.null_count() < g.len());
        let (privileges, statements) = match grantees {
            Some(_) => (rare(self.columns.privilege)?, rare(self.columns.statement)?),
            None => (None, None),
        };
        self.decode_ts(batch.column(self.columns.ts), bad)?;
        let principals = as_string_dictionary(batch.column(self.columns.principal))?;
        let tables = as_string_dictionary(batch.column(self.columns.table))?;
        self.principals
            .refresh(&principals, &mut |s| names.principal_id(s));
        self.tables.refresh(&tables, &mut |s| names.table_id(s));
        let actions = match self.columns.action {
            Some(i) => {
                let dict = as_string_dictionary(batch.column(i))?;
                let values = dict.values();
                if !self
                    .actions
                    .values
                    .as_ref()
                    .is_some_and(|v| Arc::ptr_eq(v, values))
                {
                    let strings = values.as_string::<i32>();
                    self.actions.reads = (0..strings.len())
                        .map(|k| {
                            names.is_read_action(strings.is_valid(k).then(|| strings.value(k)))
                        })
                        .collect();
                    self.actions.values = Some(Arc::clone(values));
                }
                Some(dict)
            }
            None => None,
        };

        let principal_keys = principals.keys();
        let table_keys = tables.keys();
        let any_nulls = principal_keys.null_count() > 0
            || table_keys.null_count() > 0
            || actions.as_ref().is_some_and(|a| a.keys().null_count() > 0);
        let mut filtered = 0;
        decoded.reserve(rows);
        for row in 0..rows {
            let Some(ts) = self.ts[row] else { continue };
            if !filter.keeps(ts) {
                filtered += 1;
                continue;
            }
            if let Some(grantee) = grantees.as_ref().and_then(|g| string_value(g, row)) {
                let change = (|| {
                    let action = actions
                        .as_ref()
                        .and_then(|d| dictionary_value(d, row))
                        .and_then(ChangeAction::parse);
                    let action = action
                        .ok_or(("action", "must be GRANT or REVOKE on a row with a grantee"))?;
                    let privilege = privileges
                        .as_ref()
                        .and_then(|d| string_value(d, row))
                        .ok_or(("privilege", "is null on a row with a grantee"))?;
                    let actor =
                        dictionary_value(&principals, row).ok_or(("principal", "is null"))?;
                    let object = dictionary_value(&tables, row).ok_or(("table", "is null"))?;
                    Ok::<_, (&'static str, &'static str)>(PermissionChange {
                        ts,
                        action,
                        object: object.to_string(),
                        grantee: grantee.to_string(),
                        privilege: privilege.to_string(),
                        actor: actor.to_string(),
                        statement: statements
                            .as_ref()
                            .and_then(|d| string_value(d, row))
                            .map(str::to_string),
                    })
                })();
                match change {
                    Ok(change) => {
                        changes.push((decoded.len(), change));
                        decoded.push(DecodedRow { ts, read: None });
                    }
                    Err((column, problem)) => bad.push(BadRow {
                        row,
                        column,
                        problem: problem.into(),
                    }),
                }
                continue;
            }
            let is_read = match &actions {
                None => true,
                Some(a) => {
                    if any_nulls && a.keys().is_null(row) {
                        true
                    } else {
                        // A key outside the dictionary (a corrupt file) counts as a read: never
                        // a panic, and never a read silently dropped.
                        let key = usize::try_from(a.keys().value(row)).unwrap_or(usize::MAX);
                        self.actions.reads.get(key).copied().unwrap_or(true)
                    }
                }
            };
            let read = if is_read {
                if any_nulls && (principal_keys.is_null(row) || table_keys.is_null(row)) {
                    let column = if principal_keys.is_null(row) {
                        "principal"
                    } else {
                        "table"
                    };
                    bad.push(BadRow {
                        row,
                        column,
                        problem: "is null".into(),
                    });
                    continue;
                }
                let principal = self.principals.lookup(principal_keys.value(row));
                let table = self.tables.lookup(table_keys.value(row));
                match (table, principal) {
                    (Some(t), Some(p)) => Some((t, p)),
                    (None, _) => {
                        bad.push(BadRow {
                            row,
                            column: "table",
                            problem: "is empty (or not in its dictionary)".into(),
                        });
                        continue;
                    }
                    (_, None) => {
                        bad.push(BadRow {
                            row,
                            column: "principal",
                            problem: "is empty (or not in its dictionary)".into(),
                        });
                        continue;
                    }
                }
            } else {
                None
            };
            decoded.push(DecodedRow { ts, read });
        }
        Ok(filtered)
    }

    /// Records row `row`'s time, or why it has none (`None`: the value is null).
    fn push_ts(&mut self, row: usize, parsed: Option<Result<Ts, TsError>>, bad: &mut Vec<BadRow>) {
        let problem = match parsed {
            Some(Ok(ts)) => {
                self.ts.push(Some(ts));
                return;
            }
            Some(Err(e)) => e.to_string(),
            None => "is null".to_string(),
        };
        bad.push(BadRow {
            row,
            column: "ts",
            problem,
        });
        self.ts.push(None);
    }

    /// Fills `self.ts` with one time per row (`None` for rows reported bad).
    fn decode_ts(&mut self, column: &ArrayRef, bad: &mut Vec<BadRow>) -> Result<(), String> {
        self.ts.clear();
        let rows = column.len();
        match self.ts_kind {
            TsKind::Timestamp(unit) => {
                let values: Box<dyn Fn(usize) -> i64> = match unit {
                    TimeUnit::Second => {
                        let a = column.as_primitive::<TimestampSecondType>().clone();
                        Box::new(move |i| a.value(i))
                    }
                    TimeUnit::Millisecond => {
                        let a = column.as_primitive::<TimestampMillisecondType>().clone();
                        Box::new(move |i| a.value(i))
                    }
                    TimeUnit::Microsecond => {
                        let a = column.as_primitive::<TimestampMicrosecondType>().clone();
                        let v = a.values().clone();
                        if a.null_count() == 0 {
                            self.ts.extend(v.iter().map(|t| Some(*t)));
                            return Ok(());
                        }
                        Box::new(move |i| a.value(i))
                    }
                    TimeUnit::Nanosecond => {
                        let a = column.as_primitive::<TimestampNanosecondType>().clone();
                        Box::new(move |i| a.value(i))
                    }
                };
                for i in 0..rows {
                    if column.is_null(i) {
                        bad.push(BadRow {
                            row: i,
                            column: "ts",
                            problem: "is null".into(),
                        });
                        self.ts.push(None);
                    } else {
                        self.ts.push(Some(timestamp_to_micros(values(i), unit)));
                    }
                }
            }
            TsKind::Int => {
                let as_i64 =
                    arrow_cast::cast(column, &DataType::Int64).map_err(|e| e.to_string())?;
                let ints = as_i64.as_primitive::<Int64Type>();
                for i in 0..rows {
                    let parsed = ints
                        .is_valid(i)
                        .then(|| ts_from_epoch_int(ints.value(i), self.epoch_unit));
                    self.push_ts(i, parsed, bad);
                }
            }
            TsKind::Text => {
                let text = arrow_cast::cast(column, &DataType::Utf8).map_err(|e| e.to_string())?;
                let strings = text.as_string::<i32>();
                for i in 0..rows {
                    let parsed = strings
                        .is_valid(i)
                        .then(|| parse_ts_str(strings.value(i), self.epoch_unit));
                    self.push_ts(i, parsed, bad);
                }
            }
        }
        Ok(())
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
