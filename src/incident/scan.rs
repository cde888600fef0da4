//! The reads (and permission changes) straight from the inputs (JSON lines in any configured
//! format, or Parquet, on disk or in a store): what a report draws its timeline from and what
//! `exposure impact` counts. No detection here: every read the decoders give is handed on with
//! its time, table, principal and the volume its log records, in input order. Bad lines and
//! unreadable inputs are counted and reported as replay reports them.

use crate::config::Config;
use crate::event::{AccessEvent, PermissionChange, ReadActions};
use crate::format::columns::{DecodedRow, Names};
use crate::format::{DecodeSink, ParseError};
use crate::intern::{Interner, PrincipalId, TableId};
use crate::report::Problems;
use crate::source::Input;
use crate::source::lines::decode_all;
use crate::source::parquet::ParquetInput;
use crate::time::{TimeFilter, Ts};
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, Int64Array};
use arrow_schema::DataType;
use std::borrow::Cow;

/// One read, as its log gives it.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    pub ts: Ts,
    pub table: &'a str,
    pub principal: &'a str,
    /// Rows and bytes read, where the log records them.
    pub rows: Option<i64>,
    pub bytes: Option<i64>,
    /// The columns read, where the log names them.
    pub columns: &'a [Cow<'a, str>],
}

/// Calls `read(ts, table, principal)` for every read in `inputs` that `filter` keeps.
pub fn reads(
    config: &Config,
    inputs: &[Input],
    filter: &TimeFilter,
    problems: &mut Problems,
    read: &mut dyn FnMut(Ts, &str, &str),
) {
    scan(
        config,
        inputs,
        filter,
        problems,
        &mut |seen: &Seen<'_>| read(seen.ts, seen.table, seen.principal),
        &mut |_| {},
    );
}

/// Calls `read` for every read in `inputs` that `filter` keeps, and `change` for every
/// permission change (whatever its time).
pub fn scan(
    config: &Config,
    inputs: &[Input],
    filter: &TimeFilter,
    problems: &mut Problems,
    read: &mut dyn FnMut(&Seen<'_>),
    change: &mut dyn FnMut(&PermissionChange),
) {
    for input in inputs {
        let name = input.display_name();
        if let Some(source) = input.parquet_source() {
            let fields = &config.input.fields;
            let file = match ParquetInput::open_with_volumes(source, fields, config.input.ts_unit) {
                Ok(file) => file,
                Err(e) => {
                    problems.unreadable(&name, "skipped", &e);
                    continue;
                }
            };
            if let Err(e) = parquet_reads(config, &file, filter, read, change) {
                problems.unreadable(&name, "read error, rest of input skipped", &e);
            }
            continue;
        }
        let reader = match input.open() {
            Ok(reader) => reader,
            Err(e) => {
                problems.unreadable(&name, "cannot open", &e);
                continue;
            }
        };
        let mut decoder = config.decoder();
        let mut sink = Reads {
            filter,
            read: &mut *read,
            change: &mut *change,
            problems: &mut *problems,
            input: &name,
        };
        decode_all(
            reader,
            &mut decoder,
            &mut sink,
            |_| false,
            |sink, e| {
                sink.problems
                    .unreadable(sink.input, "read error, rest of input skipped", &e)
            },
        );
    }
}

struct Reads<'a> {
    filter: &'a TimeFilter,
    read: &'a mut dyn FnMut(&Seen<'_>),
    change: &'a mut dyn FnMut(&PermissionChange),
    problems: &'a mut Problems,
    input: &'a str,
}

impl DecodeSink for Reads<'_> {
    fn event(&mut self, _line: u64, event: &AccessEvent<'_>, read: bool) {
        if read && self.filter.keeps(event.ts) {
            (self.read)(&Seen {
                ts: event.ts,
                table: &event.table,
                principal: &event.principal,
                rows: event.rows,
                bytes: event.bytes,
                columns: &event.columns,
            });
        }
    }

    fn permission(&mut self, _line: u64, change: &PermissionChange) {
        (self.change)(change);
    }

    fn not_access(&mut self, _line: u64, why: crate::format::vendor::NotAccess) {
        self.problems.not_access(why, 1);
    }

    fn malformed(&mut self, line: u64, error: ParseError) {
        self.problems.malformed(self.input, line, &error);
    }
}

/// Names for the Parquet decoder: its own interners and the configured read actions.
struct ScanNames {
    tables: Interner<TableId>,
    principals: Interner<PrincipalId>,
    actions: ReadActions,
}

impl Names for ScanNames {
    fn table_id(&mut self, name: &str) -> TableId {
        self.tables.intern(name)
    }

    fn principal_id(&mut self, name: &str) -> PrincipalId {
        self.principals.intern(name)
    }

    fn is_read_action(&mut self, action: Option<&str>) -> bool {
        self.actions.is_read(action)
    }
}

fn parquet_reads(
    config: &Config,
    file: &ParquetInput,
    filter: &TimeFilter,
    read: &mut dyn FnMut(&Seen<'_>),
    change: &mut dyn FnMut(&PermissionChange),
) -> Result<(), String> {
    let mut names = ScanNames {
        tables: Interner::default(),
        principals: Interner::default(),
        actions: config.detector.read_actions.clone(),
    };
    let mut decoder = file.decoder();
    let (mut rows, mut changes, mut bad) = (Vec::new(), Vec::new(), Vec::new());
    for (row_group, span) in file.row_groups.iter().enumerate() {
        if !filter.overlaps(span.min_ts, span.max_ts) {
            continue;
        }
        let batches = file.read_row_group(row_group, crate::replay::parquet::BATCH_ROWS)?;
        for batch in batches {
            let batch = batch.map_err(|e| e.to_string())?;
            rows.clear();
            decoder.decode(
                &batch,
                &mut names,
                filter,
                &mut rows,
                &mut changes,
                &mut bad,
            )?;
            let volume = |column: Option<usize>| -> Result<Option<Int64Array>, String> {
                let Some(column) = column else {
                    return Ok(None);
                };
                let cast = arrow_cast::cast(batch.column(column), &DataType::Int64)
                    .map_err(|e| e.to_string())?;
                Ok(Some(cast.as_primitive::<Int64Type>().clone()))
            };
            let (row_counts, byte_counts) = file.volume_columns();
            let (row_counts, byte_counts) = (volume(row_counts)?, volume(byte_counts)?);
            let at = |array: &Option<Int64Array>, row: u32| {
                let array = array.as_ref()?;
                let row = row as usize;
                (row < array.len() && array.is_valid(row)).then(|| array.value(row))
            };
            let lists = match file.column_names_column() {
                Some(column) => {
                    let item = arrow_schema::Field::new_list_field(DataType::Utf8, true);
                    let list = DataType::List(std::sync::Arc::new(item));
                    let cast =
                        arrow_cast::cast(batch.column(column), &list).map_err(|e| e.to_string())?;
                    Some(cast.as_list::<i32>().clone())
                }
                None => None,
            };
            let mut columns: Vec<Cow<'_, str>> = Vec::new();
            for &DecodedRow { ts, read: ids, row } in &rows {
                if let Some((table, principal)) = ids {
                    columns.clear();
                    let row = row as usize;
                    if let Some(lists) = lists.as_ref().filter(|l| row < l.len() && l.is_valid(row))
                    {
                        let listed = lists.value(row);
                        let listed = listed.as_string::<i32>().iter().flatten();
                        columns.extend(listed.map(|n| Cow::Owned(n.to_string())));
                    }
                    read(&Seen {
                        ts,
                        table: names.tables.name(table),
                        principal: names.principals.name(principal),
                        rows: at(&row_counts, row as u32),
                        bytes: at(&byte_counts, row as u32),
                        columns: &columns,
                    });
                }
            }
            for (_, permission) in changes.drain(..) {
                change(&permission);
            }
            bad.clear();
        }
    }
    Ok(())
}
