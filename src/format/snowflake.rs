//! Snowflake `ACCOUNT_USAGE.ACCESS_HISTORY` rows exported as JSON lines (`COPY INTO` a stage
//! with `FILE_FORMAT = (TYPE = JSON)`, or any export whose keys are the view's columns, in upper
//! or lower case). One event per entry of `base_objects_accessed` (the tables the data came
//! from; `objects = "direct"` uses `direct_objects_accessed`, the objects named in the query)
//! whose `objectDomain` is a table or view; every row of the view is a read. The time is
//! `query_start_time`, the principal `user_name`. A row without such objects is not an access
//! event.

use super::ParseError;
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
