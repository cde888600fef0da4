//! Column-wise decoding of canonical Parquet record batches, the batch entry of decoding
//! beside [`super::Decoder`]'s lines: string columns are read as dictionaries and each
//! dictionary value is checked (printable, like every name a line gives, see
//! [`super::decode`]) and mapped to detector ids once, so no string is made per row. Rows that
//! cannot be used are reported with their column ([`BadRow`]), as a line's problems are.
//! Which file and row group the batches come from is [`crate::source::parquet`]'s.

use crate::event::{ChangeAction, PermissionChange};
use crate::intern::{DenseId, PrincipalId, TableId};
use crate::time::{EpochUnit, TimeFilter, Ts, TsError, parse_ts_str, ts_from_epoch_int};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Int32Type, Int64Type, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use arrow_array::{Array, ArrayRef, DictionaryArray, RecordBatch, StringArray};
use arrow_schema::{DataType, TimeUnit};
use std::sync::Arc;

/// How the time column is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsKind {
    Timestamp(TimeUnit),
    Int,
    Text,
}

/// Where the mapped columns are in the batches decoded.
#[derive(Debug, Clone, Copy)]
pub struct Columns {
    pub ts: usize,
    pub principal: usize,
    pub table: usize,
    pub action: Option<usize>,
    /// A permission change's own columns, when the file has them.
    pub grantee: Option<usize>,
    pub privilege: Option<usize>,
    pub statement: Option<usize>,
    /// Rows and bytes read, when asked for and in the file (`exposure impact`).
    pub rows: Option<usize>,
    pub bytes: Option<usize>,
    /// The names of the columns read (a list of strings), when asked for and in the file.
    pub column_names: Option<usize>,
}

/// The type string columns are read as: a dictionary of strings.
pub fn dictionary_of_strings() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// The text of row `row` of a dictionary column: `None` when null or empty (or its key is not
/// in the dictionary: a corrupt file).
pub fn dictionary_value(dict: &DictionaryArray<Int32Type>, row: usize) -> Option<&str> {
    if dict.keys().is_null(row) {
        return None;
    }
    let key = usize::try_from(dict.keys().value(row)).ok()?;
    let values = dict.values().as_string::<i32>();
    (key < values.len() && values.is_valid(key))
        .then(|| values.value(key))
        .filter(|v| !v.is_empty())
}

#[inline]
pub fn timestamp_to_micros(value: i64, unit: TimeUnit) -> Ts {
    match unit {
        TimeUnit::Second => value.saturating_mul(1_000_000),
        TimeUnit::Millisecond => value.saturating_mul(1_000),
        TimeUnit::Microsecond => value,
        TimeUnit::Nanosecond => value.div_euclid(1_000),
    }
}

/// Detector ids for the values of the last dictionary seen, rebuilt when the dictionary changes.
struct DictionaryIds<I> {
    values: Option<ArrayRef>,
    /// The id of each dictionary value; `u32::MAX` for a null, empty or unprintable one. Four
    /// bytes each, so that a dictionary of 20 000 principals stays in L2.
    ids: Vec<I>,
    /// The values that are not printable names, by key, with why.
    unprintable: Vec<(usize, String)>,
}

impl<I> Default for DictionaryIds<I> {
    fn default() -> Self {
        DictionaryIds {
            values: None,
            ids: Vec::new(),
            unprintable: Vec::new(),
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

/// Where [`BatchDecoder::decode`] hands the rows it decodes, in row order, with the names
/// they are given ids by.
pub trait Rows: Names {
    /// A usable row that is not a permission change.
    fn row(&mut self, row: DecodedRow);
    /// A permission change (its row has no read).
    fn change(&mut self, row: DecodedRow, change: PermissionChange);
}

/// Rows collected into vectors, each change also in `changes` with its index in `rows`.
pub struct Collect<'a, N> {
    pub names: &'a mut N,
    pub rows: &'a mut Vec<DecodedRow>,
    pub changes: &'a mut Vec<(usize, PermissionChange)>,
}

impl<N: Names> Names for Collect<'_, N> {
    fn table_id(&mut self, name: &str) -> TableId {
        self.names.table_id(name)
    }

    fn principal_id(&mut self, name: &str) -> PrincipalId {
        self.names.principal_id(name)
    }

    fn is_read_action(&mut self, action: Option<&str>) -> bool {
        self.names.is_read_action(action)
    }
}

impl<N: Names> Rows for Collect<'_, N> {
    fn row(&mut self, row: DecodedRow) {
        self.rows.push(row);
    }

    fn change(&mut self, row: DecodedRow, change: PermissionChange) {
        self.changes.push((self.rows.len(), change));
        self.rows.push(row);
    }
}

/// One usable row: its time and, for a read, its (table, principal) ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodedRow {
    pub ts: Ts,
    pub read: Option<(TableId, PrincipalId)>,
    /// Its row in the batch.
    pub row: u32,
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
    /// Maps the values of `dict` (column `field`) to ids, once per dictionary; a name that is
    /// not printable gets no id, as a line's would not ([`super::decode`]).
    fn refresh(
        &mut self,
        dict: &DictionaryArray<Int32Type>,
        field: &'static str,
        intern: &mut impl FnMut(&str) -> I,
    ) {
        let values = dict.values();
        if self.values.as_ref().is_some_and(|v| Arc::ptr_eq(v, values)) {
            return;
        }
        let strings = values.as_string::<i32>();
        self.unprintable.clear();
        let unprintable = &mut self.unprintable;
        self.ids = (0..strings.len())
            .map(|i| {
                if !strings.is_valid(i) || strings.value(i).is_empty() {
                    return I::from_index(u32::MAX);
                }
                if let Err(e) = super::decode::printable([(field, strings.value(i))]) {
                    unprintable.push((i, e.to_string()));
                    return I::from_index(u32::MAX);
                }
                intern(strings.value(i))
            })
            .collect();
        self.values = Some(Arc::clone(values));
    }

    /// Why dictionary key `key` has no id.
    #[cold]
    fn problem(&self, key: i32) -> String {
        let unprintable = usize::try_from(key)
            .ok()
            .and_then(|k| self.unprintable.iter().find(|(at, _)| *at == k));
        match unprintable {
            Some((_, why)) => why.clone(),
            None => "is empty (or not in its dictionary)".into(),
        }
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
    /// A decoder of batches whose mapped columns are at `columns`, their time stored as
    /// `ts_kind` (`epoch_unit` for numbers).
    pub fn new(columns: Columns, ts_kind: TsKind, epoch_unit: EpochUnit) -> BatchDecoder {
        BatchDecoder {
            columns,
            ts_kind,
            epoch_unit,
            ts: Vec::new(),
            principals: DictionaryIds::default(),
            tables: DictionaryIds::default(),
            actions: ActionVerdicts::default(),
        }
    }

    /// Hands the rows of `batch` that `filter` keeps to `names` ([`Rows`]), in row order; rows
    /// that cannot be used go to `bad`. A row with a grantee is a permission change
    /// ([`Rows::change`]). Returns how many rows the filter left out.
    pub fn decode(
        &mut self,
        batch: &RecordBatch,
        names: &mut impl Rows,
        filter: &TimeFilter,
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
            .refresh(&principals, "principal", &mut |s| names.principal_id(s));
        self.tables
            .refresh(&tables, "table", &mut |s| names.table_id(s));
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
                        let at = DecodedRow {
                            ts,
                            read: None,
                            row: row as u32,
                        };
                        names.change(at, change);
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
                            problem: self.tables.problem(table_keys.value(row)),
                        });
                        continue;
                    }
                    (_, None) => {
                        bad.push(BadRow {
                            row,
                            column: "principal",
                            problem: self.principals.problem(principal_keys.value(row)),
                        });
                        continue;
                    }
                }
            } else {
                None
            };
            names.row(DecodedRow {
                ts,
                read,
                row: row as u32,
            });
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

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::TimestampMicrosecondArray;
    use arrow_schema::{Field, Schema};

    struct Interned(Vec<String>);

    impl Names for Interned {
        fn table_id(&mut self, name: &str) -> TableId {
            self.0.push(name.to_string());
            TableId::from_index(self.0.len() as u32 - 1)
        }
        fn principal_id(&mut self, name: &str) -> PrincipalId {
            self.0.push(name.to_string());
            PrincipalId::from_index(self.0.len() as u32 - 1)
        }
        fn is_read_action(&mut self, _action: Option<&str>) -> bool {
            true
        }
    }

    /// Names from Parquet pass the check every name from a line passes: a control character
    /// (an escape sequence aimed at a terminal) is reported with its column, never interned.
    #[test]
    fn unprintable_names_are_bad_rows_as_in_lines() {
        let dict = |values: Vec<&str>| -> ArrayRef {
            Arc::new(values.into_iter().collect::<DictionaryArray<Int32Type>>())
        };
        let schema = Schema::new(vec![
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Microsecond, None),
                false,
            ),
            Field::new("principal", dictionary_of_strings(), false),
            Field::new("table", dictionary_of_strings(), false),
        ]);
        let batch = RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(TimestampMicrosecondArray::from(vec![1, 2, 3])),
                dict(vec!["alice", "ev\u{1b}[2Jil", "bob"]),
                dict(vec!["t", "t", "t\u{7f}"]),
            ],
        )
        .unwrap();
        let columns = Columns {
            ts: 0,
            principal: 1,
            table: 2,
            action: None,
            grantee: None,
            privilege: None,
            statement: None,
            rows: None,
            bytes: None,
            column_names: None,
        };
        let mut decoder = BatchDecoder::new(
            columns,
            TsKind::Timestamp(TimeUnit::Microsecond),
            EpochUnit::default(),
        );
        let mut names = Interned(Vec::new());
        let (mut decoded, mut changes, mut bad) = (Vec::new(), Vec::new(), Vec::new());
        decoder
            .decode(
                &batch,
                &mut Collect {
                    names: &mut names,
                    rows: &mut decoded,
                    changes: &mut changes,
                },
                &TimeFilter::default(),
                &mut bad,
            )
            .unwrap();
        assert_eq!(decoded.len(), 1, "only alice's read is usable");
        assert!(
            !names
                .0
                .iter()
                .any(|n| n.contains('\u{1b}') || n.contains('\u{7f}'))
        );
        let problems: Vec<(usize, &str, &str)> = bad
            .iter()
            .map(|b| (b.row, b.column, b.problem.as_str()))
            .collect();
        assert_eq!(
            problems,
            [
                (
                    1,
                    "principal",
                    "field `principal` holds control character U+001B at character 3: names \
                     must be printable"
                ),
                (
                    2,
                    "table",
                    "field `table` holds control character U+007F at character 2: names must \
                     be printable"
                )
            ]
        );
    }
}
