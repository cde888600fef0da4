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
use super::walk::Json;
use crate::event::{AccessEvent, ChangeAction};
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

/// A delivered record in its usual shape, borrowed from the line: every field the parser reads,
/// and the names of the export shape only to notice them (the fast path then gives way).
#[derive(Default)]
#[allow(non_snake_case)]
struct Delivered<'a> {
    timestamp: Option<i64>,
    serviceName: Option<&'a str>,
    actionName: Option<&'a str>,
    userIdentity: Option<Identity<'a>>,
    requestParams: Option<Params<'a>>,
    response: Option<Response>,
    /// A key of the export shape (`event_time`, `service_name`...) is there and not `null`.
    export_shape: bool,
}

#[derive(Default)]
struct Identity<'a> {
    email: Option<&'a str>,
}

#[derive(Default)]
struct Params<'a> {
    full_name_arg: Option<&'a str>,
    table_full_name: Option<&'a str>,
    full_name: Option<&'a str>,
    operation: Option<&'a str>,
}

#[derive(Default)]
#[allow(non_snake_case)]
struct Response {
    statusCode: Option<i64>,
    /// `status_code` is there and not `null`.
    status_code: bool,
}

impl<'a> Delivered<'a> {
    fn read(json: &mut Json<'a>) -> Option<Delivered<'a>> {
        const KEYS: &[&str] = &[
            "timestamp",
            "serviceName",
            "actionName",
            "userIdentity",
            "requestParams",
            "response",
            "event_time",
            "service_name",
            "action_name",
            "user_identity",
            "request_params",
        ];
        let mut r = Delivered::default();
        json.named(KEYS, |json, key| {
            match key {
                "timestamp" => r.timestamp = json.count_or_null()?,
                "serviceName" => r.serviceName = json.text_or_null()?,
                "actionName" => r.actionName = json.text_or_null()?,
                "userIdentity" => {
                    let mut identity = Identity::default();
                    let present = json.text_members([("email", &mut identity.email)])?;
                    r.userIdentity = present.then_some(identity);
                }
                "requestParams" => {
                    let mut params = Params::default();
                    let present = json.text_members([
                        ("full_name_arg", &mut params.full_name_arg),
                        ("table_full_name", &mut params.table_full_name),
                        ("full_name", &mut params.full_name),
                        ("operation", &mut params.operation),
                    ])?;
                    r.requestParams = present.then_some(params);
                }
                "response" => {
                    let mut response = Response::default();
                    let present =
                        json.named_or_null(&["statusCode", "status_code"], |json, key| {
                            if key == "statusCode" {
                                response.statusCode = json.count_or_null()?;
                            } else {
                                response.status_code = json.not_null()?;
                            }
                            Some(())
                        })?;
                    r.response = present.then_some(response);
                }
                // A key of the export shape.
                _ => r.export_shape |= json.not_null()?,
            }
            Some(())
        })?;
        Some(r)
    }
}

/// The first present, non-empty name, as [`super::vendor::json::string`] picks it.
fn first<'a>(names: &[Option<&'a str>]) -> Option<&'a str> {
    names.iter().flatten().copied().find(|s| !s.is_empty())
}

/// The fast path of a delivered record in its usual shape (typed, borrowed; no
/// `serde_json::Value`): `None` for anything else — the export shape, a field of another type,
/// a duplicate key, a permission change, an error to word — which [`parse`] then reads. Both give
/// the same items (the differential fuzz target and `tests/it/properties.rs` check it).
pub fn parse_fast(line: &[u8], options: &Options) -> Option<Vec<Item>> {
    let record = Json::line(line, Delivered::read)?;
    if record.export_shape {
        return None;
    }
    let ts =
        crate::time::ts_from_epoch_int(record.timestamp?, crate::time::EpochUnit::Auto).ok()?;
    let service = first(&[record.serviceName]).unwrap_or("");
    if service != "unityCatalog" {
        return Some(vec![Item::NotAccess(NotAccess::OtherCall)]);
    }
    let status = match &record.response {
        Some(response) if response.status_code && response.statusCode.is_none() => {
            return None;
        }
        Some(response) => response.statusCode.unwrap_or(200),
        None => 200,
    };
    if status >= 400 {
        return Some(vec![Item::NotAccess(NotAccess::Failed)]);
    }
    let action = first(&[record.actionName]).unwrap_or("");
    if action == "updatePermissions" {
        return None;
    }
    let params = record.requestParams.as_ref()?;
    let table = first(&[
        params.full_name_arg,
        params.table_full_name,
        params.full_name,
    ]);
    let mut read = options.read_actions.iter().any(|a| a == action);
    let Some(table) = table else {
        // No table: metadata, or an error for the general path to word.
        return (!read).then(|| vec![Item::NotAccess(NotAccess::Metadata)]);
    };
    if action == "generateTemporaryTableCredential" {
        read &= first(&[params.operation]).is_none_or(|op| op.eq_ignore_ascii_case("READ"));
    }
    let principal = first(&[record.userIdentity.as_ref()?.email])?;
    Some(vec![Item::Event(AccessEvent::classified(
        ts,
        principal.to_string(),
        table.to_string(),
        read,
    ))])
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
    if !is_table_securable(kind) {
        return Ok(vec![Item::NotAccess(NotAccess::OtherPermission)]);
    }
    let changes = match params.get("changes") {
        Some(Value::String(text)) => serde_json::from_str(text).unwrap_or(Value::Null),
        Some(other) => other.clone(),
        None => Value::Null,
    };
    let actor = required(entry, &["userIdentity.email", "user_identity.email"])?;
    Ok(super::vendor::permission_items(
        permission_list_changes(&changes),
        ts,
        object,
        actor,
    ))
}

/// Whether a Unity Catalog securable type holds tables (a table or view, or a container of
/// them).
pub(crate) fn is_table_securable(kind: &str) -> bool {
    ["table", "view", "schema", "catalog", "metastore"]
        .iter()
        .any(|k| k.eq_ignore_ascii_case(kind))
}

/// The changes of an `updatePermissions` list (`[{principal, add: [..], remove: [..]}]`, the
/// body of Unity Catalog's `PATCH /permissions`), as (action, grantee, privilege): removes
/// first, then adds, per principal. Shared by logged changes and those `exposure check` is
/// asked about.
pub(crate) fn permission_list_changes(changes: &Value) -> Vec<super::vendor::Granted> {
    let mut out = Vec::new();
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
                if let Some(privilege) = privilege.as_str() {
                    out.push((action, principal.to_string(), privilege.to_string()));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod fast_path_tests {
    use super::*;

    #[test]
    fn the_usual_delivered_record_takes_the_fast_path_with_the_same_items() {
        let options = Options::default();
        for line in [
            r#"{"version":"2.0","timestamp":1773828000123,"userIdentity":{"email":"ann@acme.example"},"serviceName":"unityCatalog","actionName":"getTable","requestParams":{"full_name_arg":"main.hr.t1"},"response":{"statusCode":200}}"#,
            r#"{"timestamp":1773828000123,"userIdentity":{"email":"ann@acme.example"},"serviceName":"unityCatalog","actionName":"generateTemporaryTableCredential","requestParams":{"table_full_name":"main.hr.t1","operation":"WRITE"}}"#,
            r#"{"timestamp":1773828000123,"serviceName":"clusters","actionName":"create"}"#,
            r#"{"timestamp":1773828000123,"userIdentity":{"email":"a"},"serviceName":"unityCatalog","actionName":"listTables","requestParams":{}}"#,
            r#"{"timestamp":1773828000123,"serviceName":"unityCatalog","actionName":"getTable","response":{"statusCode":403}}"#,
        ] {
            let fast = parse_fast(line.as_bytes(), &options).expect("the fast path takes it");
            let value: Value = serde_json::from_str(line).unwrap();
            assert_eq!(Ok(fast), parse(&value, &options), "{line}");
        }
    }

    #[test]
    fn bad_utf8_in_a_skipped_value_is_left_to_the_value_path() {
        // Found by the differential fuzz target: serde_json skips unknown values unchecked.
        let mut line =
            br#"{"timestamp":1773828000000,"serviceName":"x","userAgent":"Runt"#.to_vec();
        line.extend_from_slice(&[0xff, 0xfe]);
        line.extend_from_slice(br#"ime"}"#);
        assert_eq!(parse_fast(&line, &Options::default()), None);
    }
}
