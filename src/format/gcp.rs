//! Google Cloud audit log entries as exported JSON (Cloud Logging sinks, one entry per line),
//! BigQuery data access: a `tableDataRead` is a read of `protoPayload.resourceName`'s table; a
//! completed query job (`jobChange`, state `DONE`) is a read of each of its `referencedTables`
//! (one event per table); a `tableDataChange` is a write. Tables are named `project.dataset.table`.
//! The principal is `protoPayload.authenticationInfo.principalEmail`. Anything else (other
//! methods, entries without a principal) is not an access event.

use super::ParseError;
use super::vendor::Item;
use super::vendor::json::{at, required, string, time};
use crate::event::AccessEvent;
use serde_json::Value;

/// `projects/P/datasets/D/tables/T` (possibly followed by `/...`) -> `P.D.T`.
pub fn table_name(resource: &str) -> Option<String> {
    let parts: Vec<&str> = resource.split('/').collect();
    match parts.as_slice() {
        ["projects", p, "datasets", d, "tables", t, ..] if !t.is_empty() => {
            Some(format!("{p}.{d}.{t}"))
        }
        _ => None,
    }
}

pub fn parse(entry: &Value) -> Result<Vec<Item>, ParseError> {
    let Some(payload) = entry.get("protoPayload") else {
        return Ok(vec![Item::NotAccess]);
    };
    let ts = time(entry, &["timestamp", "receiveTimestamp"])?;
    let Some(metadata) = payload.get("metadata") else {
        return Ok(vec![Item::NotAccess]);
    };
    let event = |table: String, read: bool| -> Result<Item, ParseError> {
        let principal = required(payload, &["authenticationInfo.principalEmail"])?;
        Ok(Item::Event(AccessEvent::classified(
            ts,
            principal.to_string(),
            table,
            read,
        )))
    };
    let resource = string(payload, &["resourceName"]).and_then(table_name);
    if metadata.get("tableDataRead").is_some() {
        let table =
            resource.ok_or_else(|| super::vendor::json::missing("protoPayload.resourceName"))?;
        return Ok(vec![event(table, true)?]);
    }
    if metadata.get("tableDataChange").is_some() {
        let table =
            resource.ok_or_else(|| super::vendor::json::missing("protoPayload.resourceName"))?;
        return Ok(vec![event(table, false)?]);
    }
    if let Some(job) = at(metadata, "jobChange.job") {
        let done = string(job, &["jobStatus.jobState"]) == Some("DONE");
        let failed = at(job, "jobStatus.errorResult").is_some();
        let referenced = at(job, "jobStats.queryStats.referencedTables").and_then(Value::as_array);
        if let (true, false, Some(tables)) = (done, failed, referenced) {
            let mut items = Vec::new();
            for t in tables {
                if let Some(name) = t.as_str().and_then(table_name) {
                    items.push(event(name, true)?);
                }
            }
            if !items.is_empty() {
                return Ok(items);
            }
        }
    }
    Ok(vec![Item::NotAccess])
}
