//! Databricks audit logs: delivered JSON (`timestamp` epoch ms, `userIdentity.email`,
//! `serviceName`, `actionName`, `requestParams`) and exports of the `system.access.audit` table
//! (`event_time`, `user_identity.email`, `service_name`, `action_name`, `request_params`).
//!
//! Which actions are reads (`read_actions` in `[input.databricks]`): by default the Unity
//! Catalog actions that hand out access to a table's data for reading —
//! `generateTemporaryTableCredential` with `operation` `READ` (every engine reading a table
//! through Unity Catalog asks for one), and `getTable` (issued whenever a query resolves the
//! table, so it covers SQL warehouses, which do not vend credentials). Metadata-only actions
//! (`listTables`, `getCatalog`...) and failed requests (`response.statusCode` >= 400) are not
//! access events; other Unity Catalog actions on a table are non-reads. `request_params` may be
//! an object, a JSON string of one, or a map exported as a list of `[key, value]` pairs or of
//! `{"key", "value"}` entries.
//!
//! Permission changes: `updatePermissions` (`securable_type`, `securable_full_name`, `changes`: a
//! list — or a JSON string of one — of `{principal, add: [privileges], remove: [privileges]}`)
//! is a grant of each added and a revoke of each removed privilege on the securable (a table,
//! or a schema or catalog: a container of its tables) to the principal.

use super::ParseError;
use super::vendor::json::{at, required, string, time};
use super::vendor::{Item, NotAccess};
use crate::event::{AccessEvent, ChangeAction, PermissionChange};
use serde::Deserialize;
use serde_json::Value;

/// `[input.databricks]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    pub read_actions: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            read_actions: vec!["generateTemporaryTableCredential".into(), "getTable".into()],
        }
    }
}

/// A map column as exports write it: an object, or a list of `[key, value]` pairs (pyarrow's
/// `to_pylist`, pandas, the documentation's example rows), or a list of `{"key", "value"}`
/// entries (Arrow's own map layout); the last two become an object.
fn map_as_object(value: Value) -> Value {
    let Value::Array(entries) = value else {
        return value;
    };
    let mut object = serde_json::Map::new();
    for entry in entries {
        let pair = match &entry {
            Value::Array(pair) if pair.len() == 2 => pair[0].as_str().map(|k| (k, &pair[1])),
            Value::Object(kv) => kv.get("key").and_then(Value::as_str).zip(kv.get("value")),
            _ => None,
        };
        if let Some((key, value)) = pair {
            object.insert(key.to_string(), value.clone());
        }
    }
    Value::Object(object)
}

pub fn parse(entry: &Value, options: &Options) -> Result<Vec<Item>, ParseError> {
    let ts = time(entry, &["timestamp", "event_time"])?;
    let service = string(entry, &["serviceName", "service_name"]).unwrap_or("");
    let action = string(entry, &["actionName", "action_name"]).unwrap_or("");
    if service != "unityCatalog" {
        return Ok(vec![Item::NotAccess(NotAccess::OtherCall)]);
    }
    let status = at(entry, "response.statusCode")
        .or_else(|| at(entry, "response.status_code"))
        .and_then(Value::as_i64)
        .unwrap_or(200);
    if status >= 400 {
        return Ok(vec![Item::NotAccess(NotAccess::Failed)]);
    }
    // `request_params` in system-table exports may be a JSON string.
    let params = entry
        .get("requestParams")
        .or_else(|| entry.get("request_params"))
        .cloned()
        .unwrap_or(Value::Null);
    let params = match params {
        Value::String(text) => serde_json::from_str(&text).unwrap_or(Value::Null),
        other => other,
    };
    let params = map_as_object(params);
    if action == "updatePermissions" {
        return permission_changes(entry, ts, &params);
    }
    let mut read = options.read_actions.iter().any(|a| a == action);
    let Some(table) = string(&params, &["full_name_arg", "table_full_name", "full_name"]) else {
        // A read action must name its table; metadata actions (listTables...) name none.
        return if read {
            Err(ParseError::Unattributable {
                message: format!(
                    "unityCatalog {action} with no table in request_params (full_name_arg, \
                     table_full_name or full_name)"
                ),
            })
        } else {
            Ok(vec![Item::NotAccess(NotAccess::Metadata)])
        };
    };
    if action == "generateTemporaryTableCredential" {
        read &= string(&params, &["operation"]).is_none_or(|op| op.eq_ignore_ascii_case("READ"));
    }
    let principal = required(entry, &["userIdentity.email", "user_identity.email"])?;
    Ok(vec![Item::Event(AccessEvent::classified(
        ts,
        principal.to_string(),
        table.to_string(),
        read,
    ))])
}

/// The grants and revokes of an `updatePermissions` request (see the module's doc).
fn permission_changes(
    entry: &Value,
    ts: crate::time::Ts,
    params: &Value,
) -> Result<Vec<Item>, ParseError> {
    let Some(object) = string(params, &["securable_full_name", "full_name"]) else {
        return Err(ParseError::Unattributable {
            message: "unityCatalog updatePermissions with no securable_full_name".into(),
        });
    };
    let kind = string(params, &["securable_type"]).unwrap_or("table");
    if !["table", "view", "schema", "catalog", "metastore"]
        .iter()
        .any(|k| k.eq_ignore_ascii_case(kind))
    {
        return Ok(vec![Item::NotAccess(NotAccess::OtherPermission)]);
    }
    let changes = match params.get("changes") {
        Some(Value::String(text)) => serde_json::from_str(text).unwrap_or(Value::Null),
        Some(other) => other.clone(),
        None => Value::Null,
    };
    let actor = required(entry, &["userIdentity.email", "user_identity.email"])?;
    let mut items = Vec::new();
    for change in changes.as_array().map(Vec::as_slice).unwrap_or_default() {
        let Some(principal) = string(change, &["principal"]) else {
            continue;
        };
        for (key, action) in [
            ("remove", ChangeAction::Revoke),
            ("add", ChangeAction::Grant),
        ] {
            let privileges = change.get(key).and_then(Value::as_array);
            for privilege in privileges.map(Vec::as_slice).unwrap_or_default() {
                let Some(privilege) = privilege.as_str() else {
                    continue;
                };
                items.push(Item::Permission(PermissionChange {
                    ts,
                    action,
                    object: object.to_string(),
                    grantee: principal.to_string(),
                    privilege: privilege.to_string(),
                    actor: actor.to_string(),
                    statement: None,
                }));
            }
        }
    }
    if items.is_empty() {
        items.push(Item::NotAccess(NotAccess::OtherPermission));
    }
    Ok(items)
}
