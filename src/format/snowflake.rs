//! Snowflake `ACCOUNT_USAGE.ACCESS_HISTORY` rows exported as JSON lines (`COPY INTO` a stage
//! with `FILE_FORMAT = (TYPE = JSON)`, or any export whose keys are the view's columns, in upper
//! or lower case). One event per entry of `base_objects_accessed` (the tables the data came
//! from; `objects = "direct"` uses `direct_objects_accessed`, the objects named in the query)
//! whose `objectDomain` is a table or view; every row of the view is a read. The time is
//! `query_start_time`, the principal `user_name`. A row without such objects is not an access
//! event.
//!
//! Permission changes come from `ACCOUNT_USAGE.QUERY_HISTORY` rows exported the same way (in
//! the same files or others): a row whose `query_type` is `GRANT` or `REVOKE` and whose
//! `execution_status` is `SUCCESS` is read from its `query_text` (`GRANT SELECT ON TABLE … TO
//! ROLE …`, `ON ALL|FUTURE TABLES IN SCHEMA …`, `GRANT ROLE r TO USER u`), unquoted names in
//! upper case as Snowflake stores them, unqualified ones in the row's `database_name` and
//! `schema_name`; its time is `end_time` (when it took effect), else `start_time`; its actor
//! `user_name`. Other query-history rows are not access events (reads come from
//! ACCESS_HISTORY).

use super::ParseError;
use super::grant_sql::{Fold, GrantContext, parse_grant};
use super::vendor::json::{required, time};
use super::vendor::{Item, NotAccess};
use super::walk::Json;
use crate::event::AccessEvent;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Objects {
    #[default]
    Base,
    Direct,
}

/// `[input.snowflake]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    pub objects: Objects,
}

const TABLE_DOMAINS: &[&str] = &[
    "table",
    "view",
    "materialized view",
    "external table",
    "dynamic table",
];

/// An `ACCESS_HISTORY` row in its usual shape, borrowed from the line, in either case of keys.
#[derive(Default)]
#[allow(non_snake_case)]
struct AccessRow<'a> {
    query_type: Option<&'a str>,
    QUERY_TYPE: Option<&'a str>,
    query_start_time: Option<&'a str>,
    QUERY_START_TIME: Option<&'a str>,
    user_name: Option<&'a str>,
    USER_NAME: Option<&'a str>,
    base_objects_accessed: Column<'a>,
    BASE_OBJECTS_ACCESSED: Column<'a>,
    direct_objects_accessed: Column<'a>,
    DIRECT_OBJECTS_ACCESSED: Column<'a>,
}

/// An objects column as the fast path reads it: absent, `null`, or an array of objects (JSON
/// text and anything else is left to the `Value` path).
#[derive(Default)]
enum Column<'a> {
    #[default]
    Absent,
    Null,
    Objects(Vec<AccessedObject<'a>>),
}

#[derive(Default)]
#[allow(non_snake_case)]
struct AccessedObject<'a> {
    objectDomain: Option<&'a str>,
    objectName: Option<&'a str>,
    /// The `columnName` of each of its `columns`.
    columns: Vec<&'a str>,
}

impl<'a> AccessRow<'a> {
    fn read(json: &mut Json<'a>) -> Option<AccessRow<'a>> {
        const KEYS: &[&str] = &[
            "query_type",
            "QUERY_TYPE",
            "query_start_time",
            "QUERY_START_TIME",
            "user_name",
            "USER_NAME",
            "base_objects_accessed",
            "BASE_OBJECTS_ACCESSED",
            "direct_objects_accessed",
            "DIRECT_OBJECTS_ACCESSED",
        ];
        let mut row = AccessRow::default();
        json.named(KEYS, |json, key| {
            let text = match key {
                "query_type" => &mut row.query_type,
                "QUERY_TYPE" => &mut row.QUERY_TYPE,
                "query_start_time" => &mut row.query_start_time,
                "QUERY_START_TIME" => &mut row.QUERY_START_TIME,
                "user_name" => &mut row.user_name,
                "USER_NAME" => &mut row.USER_NAME,
                _ => {
                    let column = match key {
                        "base_objects_accessed" => &mut row.base_objects_accessed,
                        "BASE_OBJECTS_ACCESSED" => &mut row.BASE_OBJECTS_ACCESSED,
                        "direct_objects_accessed" => &mut row.direct_objects_accessed,
                        _ => &mut row.DIRECT_OBJECTS_ACCESSED,
                    };
                    *column = Column::read(json)?;
                    return Some(());
                }
            };
            *text = json.text_or_null()?;
            Some(())
        })?;
        Some(row)
    }
}

impl<'a> Column<'a> {
    fn read(json: &mut Json<'a>) -> Option<Column<'a>> {
        if json.null() {
            return Some(Column::Null);
        }
        let mut objects = Vec::new();
        json.array(|json| {
            let mut object = AccessedObject::default();
            // An element is an object: `null` is the `Value` path's.
            json.named(
                &["objectDomain", "objectName", "columns"],
                |json, key| match key {
                    "objectDomain" => {
                        object.objectDomain = json.text_or_null()?;
                        Some(())
                    }
                    "objectName" => {
                        object.objectName = json.text_or_null()?;
                        Some(())
                    }
                    _ => {
                        object.columns = column_names(json)?;
                        Some(())
                    }
                },
            )?;
            objects.push(object);
            Some(())
        })?;
        Some(Column::Objects(objects))
    }
}

/// An object's `columns`: `null`, or an array of objects (or `null`s) whose `columnName` is
/// a string or `null`; `None` for any other shape (the `Value` path's).
fn column_names<'a>(json: &mut Json<'a>) -> Option<Vec<&'a str>> {
    let mut names = Vec::new();
    if json.null() {
        return Some(names);
    }
    json.array(|json| {
        let mut name = None;
        json.text_members([("columnName", &mut name)])?;
        names.extend(name);
        Some(())
    })?;
    Some(names)
}

/// The fast path of an `ACCESS_HISTORY` row in its usual shape (typed, borrowed; no
/// `serde_json::Value`): `None` for anything else — a `QUERY_HISTORY` row, objects as JSON text,
/// a field of another type, a duplicate key, an error to word — which [`parse`] then reads. Both
/// give the same items (the differential fuzz target and `tests/it/properties.rs` check it).
pub fn parse_fast(line: &[u8], options: &Options) -> Option<Vec<Item>> {
    let row = Json::line(line, AccessRow::read)?;
    if row.query_type.is_some() || row.QUERY_TYPE.is_some() {
        return None;
    }
    let time = row.query_start_time.or(row.QUERY_START_TIME)?;
    let ts = super::vendor::json::parse_time_text(time, &crate::time::zone::LocalZone::UTC).ok()?;
    let user = [row.user_name, row.USER_NAME]
        .into_iter()
        .flatten()
        .find(|u| !u.is_empty())?;
    let (lower, upper) = match options.objects {
        Objects::Base => (row.base_objects_accessed, row.BASE_OBJECTS_ACCESSED),
        Objects::Direct => (row.direct_objects_accessed, row.DIRECT_OBJECTS_ACCESSED),
    };
    // The first column present, as `parse` picks it: a `null` one hides the other case's.
    let column = match lower {
        Column::Absent => upper,
        present => present,
    };
    let mut items = Vec::new();
    if let Column::Objects(objects) = column {
        for object in &objects {
            let domain = object.objectDomain.unwrap_or("");
            let name = object.objectName.unwrap_or("");
            items.extend(table_read(ts, user, domain, name, &object.columns));
        }
    }
    Some(or_no_relation(items))
}

/// The read of an accessed object, if it is a table or view with a name, with the columns
/// the row says were read of it.
fn table_read(
    ts: crate::time::Ts,
    user: &str,
    domain: &str,
    name: &str,
    columns: &[&str],
) -> Option<Item> {
    let table_domain = TABLE_DOMAINS.iter().any(|d| d.eq_ignore_ascii_case(domain));
    (table_domain && !name.is_empty()).then(|| {
        let mut event = AccessEvent::classified(ts, user.to_string(), name.to_string(), true);
        event.columns = columns.iter().map(|c| (*c).to_string().into()).collect();
        Item::Event(event)
    })
}

/// A row's reads, or "no relation" when it has none.
fn or_no_relation(mut items: Vec<Item>) -> Vec<Item> {
    if items.is_empty() {
        items.push(Item::NotAccess(NotAccess::NoRelation));
    }
    items
}

pub fn parse(row: &Value, options: &Options) -> Result<Vec<Item>, ParseError> {
    if let Some(kind) = text(row, &["query_type", "QUERY_TYPE"]) {
        return query_history(row, kind);
    }
    let ts = time(row, &["query_start_time", "QUERY_START_TIME"])?;
    let user = required(row, &["user_name", "USER_NAME"])?;
    let column = match options.objects {
        Objects::Base => ["base_objects_accessed", "BASE_OBJECTS_ACCESSED"],
        Objects::Direct => ["direct_objects_accessed", "DIRECT_OBJECTS_ACCESSED"],
    };
    let objects = column
        .iter()
        .find_map(|c| row.get(*c))
        .cloned()
        .unwrap_or(Value::Null);
    // Exports of VARIANT columns may hold the array as JSON text.
    let objects = match objects {
        Value::String(text) => serde_json::from_str(&text).map_err(|e| ParseError::WrongType {
            field: column[0].into(),
            expected: "an array of objects (or its JSON text)",
            found: format!(
                "text that is not JSON ({})",
                crate::time::clip(&e.to_string(), 160)
            ),
        })?,
        other => other,
    };
    let Value::Array(objects) = objects else {
        return Ok(vec![Item::NotAccess(NotAccess::NoRelation)]);
    };
    let mut items = Vec::new();
    for object in &objects {
        let domain = object
            .get("objectDomain")
            .and_then(Value::as_str)
            .unwrap_or("");
        let name = object
            .get("objectName")
            .and_then(Value::as_str)
            .unwrap_or("");
        let columns: Vec<&str> = (object.get("columns").and_then(Value::as_array))
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("columnName").and_then(Value::as_str))
            .collect();
        items.extend(table_read(ts, user, domain, name, &columns));
    }
    Ok(or_no_relation(items))
}

/// The first of `keys` that `row` has as a string.
fn text<'a>(row: &'a Value, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .find_map(|k| row.get(*k).and_then(Value::as_str))
}

/// A QUERY_HISTORY row (see the module's doc).
fn query_history(row: &Value, kind: &str) -> Result<Vec<Item>, ParseError> {
    if !(kind.eq_ignore_ascii_case("GRANT") || kind.eq_ignore_ascii_case("REVOKE")) {
        return Ok(vec![Item::NotAccess(NotAccess::OtherCall)]);
    }
    let status = text(row, &["execution_status", "EXECUTION_STATUS"]).unwrap_or("SUCCESS");
    if !status.eq_ignore_ascii_case("SUCCESS") {
        return Ok(vec![Item::NotAccess(NotAccess::Failed)]);
    }
    let ts = match row.get("end_time").or(row.get("END_TIME")) {
        Some(v) if !v.is_null() => time(row, &["end_time", "END_TIME"])?,
        _ => time(row, &["start_time", "START_TIME"])?,
    };
    let user = required(row, &["user_name", "USER_NAME"])?;
    let query = required(row, &["query_text", "QUERY_TEXT"])?;
    let database = text(row, &["database_name", "DATABASE_NAME"]);
    let schema = text(row, &["schema_name", "SCHEMA_NAME"]);
    let default_schema = database.zip(schema).map(|(d, s)| format!("{d}.{s}"));
    let context = GrantContext {
        ts,
        actor: user,
        default_schema: default_schema.as_deref(),
        object_prefix: None,
        fold: Fold::Upper,
    };
    match parse_grant(query, &context) {
        Some(changes) if !changes.is_empty() => {
            Ok(changes.into_iter().map(Item::Permission).collect())
        }
        _ => Ok(vec![Item::NotAccess(NotAccess::OtherPermission)]),
    }
}

#[cfg(test)]
mod fast_path_tests {
    use super::*;

    #[test]
    fn usual_access_history_rows_take_the_fast_path_with_the_same_items() {
        let options = Options::default();
        for row in [
            r#"{"QUERY_ID":"q1","QUERY_START_TIME":"2026-03-18 10:00:00.000 +0000","USER_NAME":"ANN","BASE_OBJECTS_ACCESSED":[{"objectDomain":"Table","objectName":"HR.PUBLIC.T1","columns":[{"columnName":"A"}]},{"objectDomain":"Stage","objectName":"S"}]}"#,
            r#"{"query_start_time":"2026-03-18T10:00:00Z","user_name":"bob","base_objects_accessed":[{"objectDomain":"View","objectName":"HR.PUBLIC.V"}]}"#,
            r#"{"query_start_time":"2026-03-18T10:00:00Z","user_name":"bob","base_objects_accessed":null,"BASE_OBJECTS_ACCESSED":[{"objectDomain":"Table","objectName":"A.B.C"}]}"#,
            r#"{"query_start_time":"2026-03-18T10:00:00Z","user_name":"bob"}"#,
        ] {
            let fast = parse_fast(row.as_bytes(), &options).expect("the fast path takes it");
            let value: Value = serde_json::from_str(row).unwrap();
            assert_eq!(Ok(fast), parse(&value, &options), "{row}");
        }
    }

    #[test]
    fn the_columns_read_of_each_object_come_with_its_read() {
        let row = r#"{"QUERY_START_TIME":"2026-03-18 10:00:00.000 +0000","USER_NAME":"ANN","BASE_OBJECTS_ACCESSED":[{"objectDomain":"Table","objectName":"HR.PUBLIC.T1","columns":[{"columnId":1,"columnName":"SSN"},{"columnId":2,"columnName":"NAME"}]},{"objectDomain":"Table","objectName":"HR.PUBLIC.T2"}]}"#;
        let fast = parse_fast(row.as_bytes(), &Options::default()).expect("taken");
        let columns: Vec<Vec<String>> = fast
            .iter()
            .map(|item| match item {
                Item::Event(e) => e.columns.iter().map(|c| c.to_string()).collect(),
                _ => panic!("{item:?}"),
            })
            .collect();
        assert_eq!(columns, [vec!["SSN", "NAME"], vec![]]);
    }

    #[test]
    fn other_rows_are_left_to_the_value_path() {
        let options = Options::default();
        for row in [
            // QUERY_HISTORY: a grant.
            r#"{"QUERY_TYPE":"GRANT","QUERY_TEXT":"GRANT SELECT ON TABLE A.B.C TO ROLE R","USER_NAME":"ANN","END_TIME":"2026-03-18 10:00:00 +0000"}"#,
            // The objects as JSON text (a VARIANT column exported as a string).
            r#"{"QUERY_START_TIME":"2026-03-18T10:00:00Z","USER_NAME":"ANN","BASE_OBJECTS_ACCESSED":"[]"}"#,
            // An error to word: no user.
            r#"{"QUERY_START_TIME":"2026-03-18T10:00:00Z","BASE_OBJECTS_ACCESSED":[]}"#,
            r#"["2026-03-18T10:00:00Z","ANN"]"#,
        ] {
            assert!(parse_fast(row.as_bytes(), &options).is_none(), "{row}");
        }
    }
}
