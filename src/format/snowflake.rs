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
            .unwrap_or("")
            .to_ascii_lowercase();
        let name = object
            .get("objectName")
            .and_then(Value::as_str)
            .unwrap_or("");
        if TABLE_DOMAINS.contains(&domain.as_str()) && !name.is_empty() {
            items.push(Item::Event(AccessEvent::classified(
                ts,
                user.to_string(),
                name.to_string(),
                true,
            )));
        }
    }
    if items.is_empty() {
        items.push(Item::NotAccess(NotAccess::NoRelation));
    }
    Ok(items)
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
