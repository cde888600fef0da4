//! Google Cloud audit log entries as exported JSON (Cloud Logging sinks, one entry per line),
//! BigQuery data access: a `tableDataRead` is a read of `protoPayload.resourceName`'s table; a
//! completed query job (`jobChange`, state `DONE`) is a read of each of its `referencedTables`
//! (one event per table); a `tableDataChange` is a write. Tables are named `project.dataset.table`.
//! The principal is `protoPayload.authenticationInfo.principalEmail`. Anything else (other
//! methods, entries without a principal) is not an access event.
//!
//! The legacy `AuditData` shape (`protoPayload.serviceData`, method `jobservice.jobcompleted`)
//! is read too: a completed job's `jobCompletedEvent.job.jobStatistics.referencedTables`
//! (`{projectId, datasetId, tableId}`) are reads. BigQuery writes a query job in both shapes;
//! [`job_id`] names the job in either, so that the reader counts it once.
//!
//! Cloud Storage: a data access entry of `storage.googleapis.com` (`storage.objects.get`, a read
//! of `projects/_/buckets/B/objects/O`) is an access of the object's dataset, named as S3's are
//! (see `storage_access`); a bucket's IAM change (`storage.setIamPermissions`, its
//! `policyDelta` on `projects/_/buckets/B`) is a grant or revoke on the bucket — `allUsers
//! roles/storage.objectViewer` is a grant to everyone.
//!
//! Permission changes: an IAM policy change (`SetIamPolicy` on a table or dataset, in the
//! admin activity log) lists what changed as `serviceData.policyDelta.bindingDeltas`
//! (`{action: ADD|REMOVE, role, member}`); a dataset's access change as
//! `metadata.datasetChange.bindingDeltas`. Each delta is a grant or revoke of `role` on the table
//! (`P.D.T`) or dataset (`P.D`, a container of its tables) to the member, its `user:`, `group:`,
//! `serviceAccount:` prefix taken off (`allUsers`, `allAuthenticatedUsers`, `domain:…` kept).

use super::ParseError;
use super::vendor::json::{at, required, string, time};
use super::vendor::{Item, NotAccess};
use super::walk::Json;
use crate::event::{AccessEvent, Anonymous, ChangeAction};
use serde_json::Value;

/// `projects/P/datasets/D/tables/T` (possibly followed by `/...`) -> `P.D.T`.
pub fn table_name(resource: &str) -> Option<String> {
    let mut parts = resource.split('/');
    let mut next = || parts.next();
    let (projects, p, datasets, d, tables, t) =
        (next()?, next()?, next()?, next()?, next()?, next()?);
    if (projects, datasets, tables) != ("projects", "datasets", "tables") || t.is_empty() {
        return None;
    }
    let mut name = String::with_capacity(p.len() + d.len() + t.len() + 2);
    for (i, part) in [p, d, t].into_iter().enumerate() {
        if i > 0 {
            name.push('.');
        }
        name.push_str(part);
    }
    Some(name)
}

/// The completed query job an entry reports, as `PROJECT:JOB_ID`, in either shape.
pub fn job_id(entry: &Value) -> Option<String> {
    let payload = entry.get("protoPayload")?;
    if let Some(name) = string(payload, &["metadata.jobChange.job.jobName"]) {
        // projects/P/jobs/ID
        let parts: Vec<&str> = name.split('/').collect();
        if let ["projects", project, "jobs", id, ..] = parts.as_slice() {
            return Some(format!("{project}:{id}"));
        }
    }
    let job = at(payload, "serviceData.jobCompletedEvent.job.jobName")?;
    Some(format!(
        "{}:{}",
        string(job, &["projectId"])?,
        string(job, &["jobId"])?
    ))
}

/// A BigQuery `tableDataRead` entry in its usual shape, borrowed from the line; the other keys
/// the parser looks at only to notice them (the fast path then gives way).
#[derive(Default)]
struct DataRead<'a> {
    timestamp: Option<&'a str>,
    /// `protoPayload` is an object (`null` or absent: `false`).
    payload: bool,
    /// `protoPayload.metadata` is an object.
    metadata: bool,
    principal_email: Option<&'a str>,
    resource_name: Option<&'a str>,
    /// Whether `protoPayload.serviceData` is there (`null` included, as `Value::get` sees it).
    service_data: bool,
    /// Which of `metadata`'s `tableDataRead`, `tableDataChange`, `jobChange`, `datasetChange`
    /// are there (by bit, in that order).
    metadata_keys: u32,
    /// `tableDataRead.fields`: the columns read.
    fields: Vec<&'a str>,
}

impl<'a> DataRead<'a> {
    fn read(json: &mut Json<'a>) -> Option<DataRead<'a>> {
        let mut entry = DataRead::default();
        json.named(&["timestamp", "protoPayload"], |json, key| {
            if key == "timestamp" {
                entry.timestamp = json.text_or_null()?;
            } else {
                let keys = [
                    "authenticationInfo",
                    "resourceName",
                    "metadata",
                    "serviceData",
                ];
                entry.payload =
                    json.named_or_null(&keys, |json, key| entry.payload_member(json, key))?;
            }
            Some(())
        })?;
        Some(entry)
    }

    fn payload_member(&mut self, json: &mut Json<'a>, key: &str) -> Option<()> {
        match key {
            "authenticationInfo" => {
                json.text_members([("principalEmail", &mut self.principal_email)])?;
            }
            "resourceName" => self.resource_name = json.text_or_null()?,
            "metadata" => {
                let keys = [
                    "tableDataRead",
                    "tableDataChange",
                    "jobChange",
                    "datasetChange",
                ];
                let mut present = 0;
                let fields = &mut self.fields;
                self.metadata = json.named_or_null(&keys, |json, key| {
                    present |= 1 << keys.iter().position(|k| *k == key)?;
                    if key != "tableDataRead" {
                        return json.skip();
                    }
                    // `fields`: `null` or an array of strings (or `null`s); anything else, and
                    // a `tableDataRead` that is not an object, is the `Value` path's.
                    json.named(&["fields"], |json, _| {
                        if json.null() {
                            return Some(());
                        }
                        json.array(|json| {
                            fields.extend(json.text_or_null()?);
                            Some(())
                        })
                    })
                })?;
                self.metadata_keys = present;
            }
            _ => {
                self.service_data = true;
                json.skip()?;
            }
        }
        Some(())
    }
}

/// The fast path of the most common data-access entry, a BigQuery `tableDataRead` (typed,
/// borrowed; no `serde_json::Value`): `None` for any other entry or shape, which [`parse`]
/// then reads. Both give the same items (the differential fuzz target and
/// `tests/it/properties.rs` check it).
pub fn parse_fast(line: &[u8]) -> Option<Vec<Item>> {
    let entry = Json::line(line, DataRead::read)?;
    // Only `tableDataRead` among `metadata`'s keys, and no `serviceData`.
    let usual = entry.payload && entry.metadata && !entry.service_data;
    if !usual || entry.metadata_keys != 1 {
        return None;
    }
    let ts =
        super::vendor::json::parse_time_text(entry.timestamp?, &crate::time::zone::LocalZone::UTC)
            .ok()?;
    let table = table_name(entry.resource_name?)?;
    let principal = entry.principal_email.filter(|p| !p.is_empty())?;
    let mut event = AccessEvent::classified(ts, principal.to_string(), table, true);
    event.columns = entry
        .fields
        .iter()
        .map(|f| (*f).to_string().into())
        .collect();
    Some(vec![Item::Event(event)])
}

pub fn parse(entry: &Value, anonymous: Anonymous) -> Result<Vec<Item>, ParseError> {
    let Some(payload) = entry.get("protoPayload") else {
        return Ok(vec![Item::NotAccess(NotAccess::OtherCall)]);
    };
    let ts = time(entry, &["timestamp", "receiveTimestamp"])?;
    let deltas = at(payload, "serviceData.policyDelta.bindingDeltas")
        .or_else(|| at(payload, "metadata.datasetChange.bindingDeltas"))
        .and_then(Value::as_array);
    if let Some(deltas) = deltas {
        return permission_changes(payload, ts, deltas);
    }
    if string(payload, &["serviceName"]) == Some("storage.googleapis.com") {
        return storage_access(payload, ts, anonymous);
    }
    let event = |table: String, read: bool| -> Result<Item, ParseError> {
        let principal = required(payload, &["authenticationInfo.principalEmail"])?;
        Ok(Item::Event(AccessEvent::classified(
            ts,
            principal.to_string(),
            table,
            read,
        )))
    };
    if let Some(job) = at(payload, "serviceData.jobCompletedEvent.job") {
        return legacy_job(job, &event);
    }
    let Some(metadata) = payload.get("metadata") else {
        return Ok(vec![Item::NotAccess(NotAccess::OtherCall)]);
    };
    let resource = string(payload, &["resourceName"]).and_then(table_name);
    if let Some(read) = metadata.get("tableDataRead") {
        let table =
            resource.ok_or_else(|| super::vendor::json::missing("protoPayload.resourceName"))?;
        let mut item = event(table, true)?;
        if let Item::Event(event) = &mut item {
            event.columns = (read.get("fields").and_then(Value::as_array))
                .into_iter()
                .flatten()
                .filter_map(|f| f.as_str().map(|f| f.to_string().into()))
                .collect();
        }
        return Ok(vec![item]);
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
            // The bytes a query scanned are the job's, not a table's: they are a table's
            // volume only when the job read that one table.
            if let [Item::Event(event)] = items.as_mut_slice() {
                event.bytes = at(job, "jobStats.queryStats.totalProcessedBytes").and_then(count);
            }
            if !items.is_empty() {
                return Ok(items);
            }
        }
        return Ok(vec![Item::NotAccess(job_outcome(done, failed))]);
    }
    Ok(vec![Item::NotAccess(NotAccess::OtherCall)])
}

/// The permission changes of an IAM policy change (see the module's doc).
fn permission_changes(
    payload: &Value,
    ts: crate::time::Ts,
    deltas: &[Value],
) -> Result<Vec<Item>, ParseError> {
    let code = at(payload, "status.code").and_then(Value::as_i64);
    if code.is_some_and(|c| c != 0) {
        return Ok(vec![Item::NotAccess(NotAccess::Failed)]);
    }
    let resource = required(payload, &["resourceName"])?;
    let Some(object) = object_name(resource) else {
        return Ok(vec![Item::NotAccess(NotAccess::OtherPermission)]);
    };
    let actor = required(payload, &["authenticationInfo.principalEmail"])?;
    Ok(super::vendor::permission_items(
        binding_delta_changes(deltas),
        ts,
        &object,
        actor,
    ))
}

/// The changes of IAM binding deltas (`{action: ADD|REMOVE, role, member}`), as (action,
/// grantee, role): the member's `user:`/`group:`/`serviceAccount:` prefix taken off. Shared by
/// logged policy changes and the deltas `exposure check` is asked about.
pub(crate) fn binding_delta_changes(deltas: &[Value]) -> Vec<super::vendor::Granted> {
    let mut out = Vec::new();
    for delta in deltas {
        let action = match string(delta, &["action"]) {
            Some("ADD") => ChangeAction::Grant,
            Some("REMOVE") => ChangeAction::Revoke,
            _ => continue,
        };
        let (Some(role), Some(member)) = (string(delta, &["role"]), string(delta, &["member"]))
        else {
            continue;
        };
        out.push((action, member_name(member).to_string(), role.to_string()));
    }
    out
}

/// The binding deltas that setting IAM policy `policy` (`{bindings: [{role, members}]}`)
/// adds: one `ADD` per member of each binding (what a policy takes away is what stood and is
/// not in it: the caller's to compare).
pub(crate) fn policy_bindings_as_deltas(policy: &Value) -> Vec<Value> {
    let bindings = policy.get("bindings").and_then(Value::as_array);
    let mut out = Vec::new();
    for binding in bindings.map(Vec::as_slice).unwrap_or_default() {
        let Some(role) = string(binding, &["role"]) else {
            continue;
        };
        for member in binding
            .get("members")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(member) = member.as_str() {
                out.push(serde_json::json!({"action": "ADD", "role": role, "member": member}));
            }
        }
    }
    out
}

/// A Cloud Storage data access (`serviceName` `storage.googleapis.com`, data access log):
/// `storage.objects.get` reads the object's table; `storage.objects.list` is a non-read access
/// of the bucket (names, not content); object writes (`create`, `update`, `patch`, `delete`,
/// `compose`, `rewrite`) are non-read accesses of the object's table. Tables are named as S3's:
/// the bucket and the key up to its first `key=value` partition or file name. The principal
/// is `principalEmail`; an entry without one is anonymous, by `requestMetadata.callerIp`.
fn storage_access(
    payload: &Value,
    ts: crate::time::Ts,
    anonymous: Anonymous,
) -> Result<Vec<Item>, ParseError> {
    let code = at(payload, "status.code").and_then(Value::as_i64);
    if code.is_some_and(|c| c != 0) {
        return Ok(vec![Item::NotAccess(NotAccess::Failed)]);
    }
    let method = string(payload, &["methodName"]).unwrap_or("");
    let read = match method {
        "storage.objects.get" => true,
        "storage.objects.list"
        | "storage.objects.create"
        | "storage.objects.update"
        | "storage.objects.patch"
        | "storage.objects.delete"
        | "storage.objects.compose"
        | "storage.objects.rewrite" => false,
        _ if method.starts_with("storage.buckets.") => {
            return Ok(vec![Item::NotAccess(NotAccess::Metadata)]);
        }
        _ => return Ok(vec![Item::NotAccess(NotAccess::OtherCall)]),
    };
    let resource = required(payload, &["resourceName"])?;
    let Some((bucket, object)) = storage_object(resource) else {
        return Err(ParseError::Unattributable {
            message: format!("{method} of {resource:?}, which names no bucket"),
        });
    };
    let object = if method == "storage.objects.list" {
        None
    } else {
        object
    };
    let table =
        super::cloudtrail::name_of(bucket, object, super::cloudtrail::ResourceChoice::Dataset);
    let principal = match string(payload, &["authenticationInfo.principalEmail"]) {
        Some(email) => email.to_string(),
        None => anonymous.principal(string(payload, &["requestMetadata.callerIp"])),
    };
    Ok(vec![Item::Event(AccessEvent::classified(
        ts, principal, table, read,
    ))])
}

/// `projects/_/buckets/B/objects/O` -> (`B`, `O`); `projects/_/buckets/B` -> (`B`, none).
fn storage_object(resource: &str) -> Option<(&str, Option<&str>)> {
    let rest = resource.strip_prefix("projects/_/buckets/")?;
    let (bucket, object) = match rest.split_once("/objects/") {
        Some((bucket, object)) => (bucket, Some(object).filter(|o| !o.is_empty())),
        None => (rest.trim_end_matches('/'), None),
    };
    (!bucket.is_empty() && !bucket.contains('/')).then_some((bucket, object))
}

/// A table (`P.D.T`), a dataset (`P.D`), a project (`P`) or a Cloud Storage bucket (`B`, from
/// `projects/_/buckets/B`) from a resource name.
pub(crate) fn object_name(resource: &str) -> Option<String> {
    if let Some(table) = table_name(resource) {
        return Some(table);
    }
    if let Some((bucket, None)) = storage_object(resource) {
        return Some(bucket.to_string());
    }
    let parts: Vec<&str> = resource.split('/').collect();
    match parts.as_slice() {
        ["projects", p, "datasets", d] if !d.is_empty() => Some(format!("{p}.{d}")),
        ["projects", p] if !p.is_empty() => Some(p.to_string()),
        _ => None,
    }
}

/// An IAM member as principals are named: `user:alice@x` is `alice@x`.
pub(crate) fn member_name(member: &str) -> &str {
    for prefix in ["user:", "group:", "serviceAccount:"] {
        if let Some(name) = member.strip_prefix(prefix) {
            return name;
        }
    }
    member
}

/// Why a job gave no read.
/// A non-negative count, as a number or (proto3 JSON's int64) as its decimal text.
fn count(value: &Value) -> Option<i64> {
    match value {
        Value::String(text) => text.parse().ok(),
        other => other.as_i64(),
    }
    .filter(|n| *n >= 0)
}

fn job_outcome(done: bool, failed: bool) -> NotAccess {
    match (done, failed) {
        (_, true) => NotAccess::Failed,
        (false, false) => NotAccess::Unfinished,
        (true, false) => NotAccess::NoRelation,
    }
}

/// A legacy `AuditData` completed job: each referenced table is read, if the job succeeded.
fn legacy_job(
    job: &Value,
    event: &dyn Fn(String, bool) -> Result<Item, ParseError>,
) -> Result<Vec<Item>, ParseError> {
    let done = string(job, &["jobStatus.state"]) == Some("DONE");
    // A successful job may carry an empty `error: {}`.
    let failed = at(job, "jobStatus.error")
        .and_then(Value::as_object)
        .is_some_and(|e| !e.is_empty());
    let tables = at(job, "jobStatistics.referencedTables").and_then(Value::as_array);
    let (true, false, Some(tables)) = (done, failed, tables) else {
        return Ok(vec![Item::NotAccess(job_outcome(done, failed))]);
    };
    let mut items = Vec::new();
    for t in tables {
        if let (Some(p), Some(d), Some(t)) = (
            string(t, &["projectId"]),
            string(t, &["datasetId"]),
            string(t, &["tableId"]),
        ) {
            items.push(event(format!("{p}.{d}.{t}"), true)?);
        }
    }
    if items.is_empty() {
        items.push(Item::NotAccess(NotAccess::NoRelation));
    }
    Ok(items)
}

#[cfg(test)]
mod fast_path_tests {
    use super::*;

    #[test]
    fn a_usual_table_data_read_takes_the_fast_path_with_the_same_items() {
        let line = r#"{"protoPayload":{"authenticationInfo":{"principalEmail":"ann@acme.example"},"serviceName":"bigquery.googleapis.com","methodName":"google.cloud.bigquery.v2.TableDataService.List","resourceName":"projects/acme/datasets/hr/tables/t1","metadata":{"@type":"type.googleapis.com/google.cloud.audit.BigQueryAuditMetadata","tableDataRead":{"reason":"JOB"}}},"timestamp":"2026-03-18T10:00:01.123456Z","logName":"projects/acme/logs/cloudaudit.googleapis.com%2Fdata_access"}"#;
        let fast = parse_fast(line.as_bytes()).expect("the fast path takes it");
        let value: Value = serde_json::from_str(line).unwrap();
        assert_eq!(Ok(fast), parse(&value, Anonymous::default()));
        let change = line.replace("tableDataRead", "tableDataChange");
        assert!(parse_fast(change.as_bytes()).is_none());
        // The fields it read, on either path.
        let fields = line.replace(
            r#"{"reason":"JOB"}"#,
            r#"{"fields":["name","ssn"],"reason":"JOB"}"#,
        );
        let fast = parse_fast(fields.as_bytes()).expect("the fast path takes it");
        let value: Value = serde_json::from_str(&fields).unwrap();
        assert_eq!(Ok(fast.clone()), parse(&value, Anonymous::default()));
        let [Item::Event(read)] = fast.as_slice() else {
            panic!("{fast:?}")
        };
        assert_eq!(read.columns, ["name", "ssn"]);
    }

    #[test]
    fn a_query_of_one_table_gives_it_the_bytes_the_job_processed() {
        let job = |tables: &str| {
            format!(
                r#"{{"protoPayload":{{"authenticationInfo":{{"principalEmail":"ann@acme.example"}},"resourceName":"projects/acme/jobs/j1","metadata":{{"jobChange":{{"job":{{"jobStatus":{{"jobState":"DONE"}},"jobStats":{{"queryStats":{{"totalProcessedBytes":"1048576","referencedTables":[{tables}]}}}}}}}}}}}},"timestamp":"2026-03-18T10:00:01Z"}}"#
            )
        };
        let bytes = |line: String| -> Vec<Option<i64>> {
            let value: Value = serde_json::from_str(&line).unwrap();
            (parse(&value, Anonymous::default()).unwrap().iter())
                .map(|item| match item {
                    Item::Event(e) => e.bytes,
                    _ => panic!("{item:?}"),
                })
                .collect()
        };
        let one = r#""projects/acme/datasets/hr/tables/t1""#;
        assert_eq!(bytes(job(one)), [Some(1_048_576)]);
        let two = format!(r#"{one},"projects/acme/datasets/hr/tables/t2""#);
        assert_eq!(
            bytes(job(&two)),
            [None, None],
            "the job's bytes are no one table's"
        );
    }
}
