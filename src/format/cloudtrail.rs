//! AWS CloudTrail: log files (`{"Records":[...]}`, usually gzipped, often one line per file) and
//! one-record-per-line exports. Data events are accesses; a read is `readOnly: true`. Failed
//! calls (`errorCode`) and management events are not access events.
//!
//! Which records are data events: `eventCategory` says so when present (eventVersion 1.08+:
//! `Data`); else `managementEvent` (1.06+: `false`); else, for the oldest records, the call
//! must be one of the data APIs ([`is_data_api`]: S3 object-level calls, DynamoDB item calls,
//! Lambda `Invoke`). So a KMS `Decrypt` or a DynamoDB `DescribeTable` is never a read.
//!
//! A copy (`CopyObject`, `UploadPartCopy`) reads its source (`x-amz-copy-source`) as well as
//! writing its destination: two events, the read first. A listing (`ListObjects`,
//! `ListObjectsV2`, `ListObjectVersions`) shows names, not content: a non-read access of the
//! bucket, never a read of a dataset.
//!
//! What is "the table" of an S3 access (`resource = ...` in `[input.cloudtrail]`):
//! - `dataset` (default): the bucket and the key up to its first `key=value` partition segment
//!   or its file name — `lake/customers/dt=2026-03-16/part-0.parquet` is `lake/customers`, so a
//!   partitioned dataset of many part files is one baseline, the unit people protect;
//! - `object`: `bucket/key`, one baseline per object;
//! - `bucket`: the bucket alone.
//!
//! The bucket and key come from `requestParameters`, else from the S3 object's ARN in
//! `resources`; other services' accesses are the first `resources[].ARN`.
//!
//! Permission changes (S3 management events): `PutBucketPolicy` grants each `Allow` statement's
//! principals (`*`, `{"AWS": …}`) the read action it allows (`s3:GetObject`, `s3:Get*`, `s3:*`,
//! `*`) on the **bucket** (a policy's resources within one bucket are folded to it: the bucket
//! contains every dataset), and revokes `*` when the new policy no longer allows it;
//! `DeleteBucketPolicy` revokes `*`. `PutBucketAcl`/`PutObjectAcl` grant `READ` or
//! `FULL_CONTROL` to `allUsers`/`allAuthenticatedUsers` (the ACL's group URIs, or the canned
//! `public-read`, `public-read-write`, `authenticated-read`) and revoke them when the new ACL no
//! longer names them, on the bucket or the object's table. `PutBucketPublicAccessBlock` with
//! `RestrictPublicBuckets` revokes `*`, with `IgnorePublicAcls` revokes `allUsers` and
//! `allAuthenticatedUsers`. A replaced policy's grants to named accounts and roles are not
//! revoked (the record holds the new policy only); `DeleteBucketPublicAccessBlock` grants nothing
//! by itself; statements with `NotPrincipal` or `NotAction` are skipped, conditions ignored.
//!
//! IAM calls that let a user, role or group read S3 (`AttachRolePolicy` of
//! `AmazonS3ReadOnlyAccess`, an inline policy allowing `s3:GetObject`, a user added to a group)
//! are permission changes too: see `cloudtrail/iam.rs`.
//!
//! The principal, from `userIdentity` (`principal = ...` in `[input.cloudtrail]`):
//! - `session` (default): for an assumed role, the role (session issuer ARN) and the session
//!   name — `arn:aws:iam::123:role/Analyst/alice` — so that people sharing a role stay apart;
//!   for anything else the identity ARN;
//! - `role`: the session issuer ARN alone (one principal per role);
//! - `arn`: `userIdentity.arn` as logged (`arn:aws:sts::123:assumed-role/Analyst/alice`).

mod iam;

use super::ParseError;
use super::vendor::json::{at, required, string, time};
use super::vendor::{Item, NotAccess};
use super::walk::Json;
use crate::event::{AccessEvent, ChangeAction, PermissionChange};
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PrincipalChoice {
    #[default]
    Session,
    Role,
    Arn,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResourceChoice {
    /// The bucket and the key's folders up to the first `key=value` partition (S3), else the
    /// resource ARN: one baseline per dataset.
    #[default]
    Dataset,
    /// `bucket/key` (S3), else the resource ARN.
    Object,
    /// The bucket alone (S3), else the resource ARN: one baseline per bucket.
    Bucket,
    /// The first `resources[].ARN`.
    Arn,
}

/// `[input.cloudtrail]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    pub principal: PrincipalChoice,
    pub resource: ResourceChoice,
    /// `[input] anonymous`: how an anonymous request (`accountId` `ANONYMOUS_PRINCIPAL` or
    /// `anonymous`) is named, from its `sourceIPAddress`.
    #[serde(skip)]
    pub anonymous: crate::event::Anonymous,
}

/// Parses a CloudTrail file line (`Records`) or a single record.
pub fn parse(value: &Value, options: &Options) -> Result<Vec<Item>, ParseError> {
    let mut items = Vec::new();
    match value.get("Records") {
        Some(Value::Array(records)) => {
            // One record that cannot be read is reported alone, never failing the file.
            for r in records {
                if let Err(error) = record(r, options, &mut items) {
                    items.push(Item::Skipped(error));
                }
            }
        }
        Some(_) => {
            return Err(ParseError::WrongType {
                field: "Records".into(),
                expected: "an array",
                found: "something else".into(),
            });
        }
        None => record(value, options, &mut items)?,
    }
    Ok(items)
}

/// A record in its usual shape, borrowed from the line: every field the fast path reads. A
/// CloudTrail file's line is the same record with `Records` (the records within are read, the
/// rest of the line is not, as [`parse`] does).
#[derive(Default)]
#[allow(non_snake_case)]
struct Record<'a> {
    records: Option<Vec<Record<'a>>>,
    eventTime: Option<&'a str>,
    /// `errorCode` is there and not `null`.
    failed: bool,
    eventSource: Option<&'a str>,
    eventName: Option<&'a str>,
    eventCategory: Option<&'a str>,
    managementEvent: Option<bool>,
    readOnly: Option<bool>,
    requestParameters: Option<Parameters<'a>>,
    userIdentity: Option<Identity<'a>>,
    sourceIPAddress: Option<&'a str>,
    /// `additionalEventData.bytesTransferredOut`: what an S3 read sent.
    bytes_out: Option<i64>,
}

#[derive(Default)]
#[allow(non_snake_case)]
struct Parameters<'a> {
    bucketName: Option<&'a str>,
    key: Option<&'a str>,
    Key: Option<&'a str>,
}

#[derive(Default)]
#[allow(non_snake_case)]
struct Identity<'a> {
    kind: Option<&'a str>,
    arn: Option<&'a str>,
    issuer_arn: Option<&'a str>,
    invokedBy: Option<&'a str>,
    principalId: Option<&'a str>,
    userName: Option<&'a str>,
    accountId: Option<&'a str>,
}

impl<'a> Record<'a> {
    /// The record (or file of records) `json` is at; `None` for a key the fast path reads
    /// twice or of another type (the `Value` path decides those).
    fn read(json: &mut Json<'a>) -> Option<Record<'a>> {
        const KEYS: &[&str] = &[
            "Records",
            "eventTime",
            "errorCode",
            "eventSource",
            "eventName",
            "eventCategory",
            "managementEvent",
            "readOnly",
            "requestParameters",
            "userIdentity",
            "sourceIPAddress",
            "additionalEventData",
        ];
        let mut r = Record::default();
        json.named(KEYS, |json, key| {
            match key {
                "Records" => {
                    // An array of objects; `null` or anything else is the `Value` path's.
                    let mut records = Vec::new();
                    json.array(|json| {
                        records.push(Record::read(json)?);
                        Some(())
                    })?;
                    r.records = Some(records);
                }
                "eventTime" => r.eventTime = json.text_or_null()?,
                "errorCode" => r.failed = json.not_null()?,
                "eventSource" => r.eventSource = json.text_or_null()?,
                "eventName" => r.eventName = json.text_or_null()?,
                "eventCategory" => r.eventCategory = json.text_or_null()?,
                "sourceIPAddress" => r.sourceIPAddress = json.text_or_null()?,
                "managementEvent" => r.managementEvent = json.bool_or_null()?,
                "readOnly" => r.readOnly = json.bool_or_null()?,
                "requestParameters" => {
                    let mut p = Parameters::default();
                    let present = json.text_members([
                        ("bucketName", &mut p.bucketName),
                        ("key", &mut p.key),
                        ("Key", &mut p.Key),
                    ])?;
                    r.requestParameters = present.then_some(p);
                }
                "additionalEventData" => {
                    json.named_or_null(&["bytesTransferredOut"], |json, _| {
                        r.bytes_out = json.whole_or_null()?;
                        Some(())
                    })?;
                }
                _ => r.userIdentity = Identity::read(json)?,
            }
            Some(())
        })?;
        Some(r)
    }
}

impl<'a> Identity<'a> {
    /// `userIdentity`: an object (`Some(Some(..))`) or `null` (`Some(None)`).
    fn read(json: &mut Json<'a>) -> Option<Option<Identity<'a>>> {
        let mut identity = Identity::default();
        let keys = [
            "type",
            "arn",
            "invokedBy",
            "principalId",
            "userName",
            "accountId",
            "sessionContext",
        ];
        let present = json.named_or_null(&keys, |json, key| {
            let field = match key {
                "type" => &mut identity.kind,
                "arn" => &mut identity.arn,
                "invokedBy" => &mut identity.invokedBy,
                "principalId" => &mut identity.principalId,
                "userName" => &mut identity.userName,
                "accountId" => &mut identity.accountId,
                _ => {
                    let issuer = &mut identity.issuer_arn;
                    return json
                        .named_or_null(&["sessionIssuer"], |json, _| {
                            json.text_members([("arn", &mut *issuer)]).map(drop)
                        })
                        .map(drop);
                }
            };
            *field = json.text_or_null()?;
            Some(())
        })?;
        Some(present.then_some(identity))
    }
}

/// A present, non-empty string, as [`super::vendor::json::string`] picks it.
fn text(name: Option<&str>) -> Option<&str> {
    name.filter(|s| !s.is_empty())
}

/// The fast path of a line of data events in their usual shape (typed, borrowed; no
/// `serde_json::Value`): `None` for anything else — a permission call, a copy, an access
/// without `requestParameters.bucketName`, `resource = "arn"`, a field of another type, a
/// duplicate key, an error to word — which [`parse`] then reads. Both give the same items (the
/// differential fuzz target and `tests/it/properties.rs` check it).
pub fn parse_fast(line: &[u8], options: &Options) -> Option<Vec<Item>> {
    if options.resource == ResourceChoice::Arn {
        return None;
    }
    let line = Json::line(line, Record::read)?;
    let mut items = Vec::new();
    match &line.records {
        Some(records) => {
            items.reserve(records.len());
            for r in records {
                items.push(record_fast(r, options)?);
            }
        }
        None => items.push(record_fast(&line, options)?),
    }
    Some(items)
}

/// One record of [`parse_fast`], as [`record`] reads it.
fn record_fast(r: &Record, options: &Options) -> Option<Item> {
    let ts = super::vendor::json::parse_time_text(r.eventTime?, &crate::time::zone::LocalZone::UTC)
        .ok()?;
    if r.failed {
        return Some(Item::NotAccess(NotAccess::Failed));
    }
    let name = text(r.eventName).unwrap_or("");
    let source = text(r.eventSource);
    match source {
        Some("s3.amazonaws.com") if is_permission_call(name) => return None,
        Some("iam.amazonaws.com") if iam::is_permission_call(name) => return None,
        _ => {}
    }
    let data_event = match text(r.eventCategory) {
        Some(category) => category == "Data",
        None => match r.managementEvent {
            Some(management) => !management,
            None => is_data_api(source.unwrap_or(""), name),
        },
    };
    if !data_event {
        return Some(Item::NotAccess(NotAccess::Management));
    }
    if matches!(name, "CopyObject" | "UploadPartCopy") {
        return None;
    }
    let parameters = r.requestParameters.as_ref()?;
    let bucket = text(parameters.bucketName)?;
    let key = text(parameters.key).or(text(parameters.Key));
    let table = name_of(bucket, key, options.resource);
    let identity = r.userIdentity.as_ref()?;
    if is_anonymous_account(identity.accountId) {
        let principal = options.anonymous.principal(r.sourceIPAddress);
        return Some(Item::Event(with_volume(
            AccessEvent::classified(ts, principal, table, is_read(name, r.readOnly)),
            r.bytes_out,
        )));
    }
    let arn = text(identity.arn);
    let issuer = || text(identity.issuer_arn);
    let principal = match issuer() {
        Some(issuer)
            if text(identity.kind) == Some("AssumedRole")
                && options.principal != PrincipalChoice::Arn =>
        {
            match arn.and_then(|a| a.rsplit_once('/')).map(|(_, s)| s) {
                Some(session) if options.principal == PrincipalChoice::Session => {
                    joined(issuer, session)
                }
                _ => issuer.to_string(),
            }
        }
        _ => arn
            .or_else(|| text(identity.invokedBy))
            .or_else(|| text(identity.principalId))
            .or_else(|| text(identity.userName))?
            .to_string(),
    };
    Some(Item::Event(with_volume(
        AccessEvent::classified(ts, principal, table, is_read(name, r.readOnly)),
        r.bytes_out,
    )))
}

/// A read's volume: the bytes it sent (`additionalEventData.bytesTransferredOut`).
fn with_volume(mut event: AccessEvent<'static>, bytes_out: Option<i64>) -> AccessEvent<'static> {
    if event.is_read == Some(true) {
        event.bytes = bytes_out;
    }
    event
}

/// `additionalEventData.bytesTransferredOut` as the fast path reads it: a whole non-negative
/// number (written `3462992` or `3462992.0`).
fn bytes_out(r: &Value) -> Option<i64> {
    let value = at(r, "additionalEventData.bytesTransferredOut")?;
    if let Some(n) = value.as_u64() {
        return i64::try_from(n).ok();
    }
    let f = value.as_f64()?;
    (f >= 0.0 && f.fract() == 0.0 && f < 1e15).then_some(f as i64)
}

/// Whether call `name` with `readOnly` read data: a listing shows names, not content.
fn is_read(name: &str, read_only: Option<bool>) -> bool {
    let listing = matches!(name, "ListObjects" | "ListObjectsV2" | "ListObjectVersions");
    !listing && read_only.unwrap_or(false)
}

/// An anonymous request's account: `ANONYMOUS_PRINCIPAL` (or `anonymous` in older records).
fn is_anonymous_account(account: Option<&str>) -> bool {
    matches!(account, Some("ANONYMOUS_PRINCIPAL" | "anonymous"))
}

/// The data APIs, for records too old to say whether they are data events: S3 object-level
/// calls, DynamoDB item calls, Lambda `Invoke` (CloudTrail User Guide, "Logging data events").
pub fn is_data_api(source: &str, name: &str) -> bool {
    match source {
        "s3.amazonaws.com" => {
            name.contains("Object")
                || name.starts_with("UploadPart")
                || matches!(
                    name,
                    "CompleteMultipartUpload"
                        | "CreateMultipartUpload"
                        | "AbortMultipartUpload"
                        | "ListParts"
                        | "SelectObjectContent"
                )
        }
        "dynamodb.amazonaws.com" => matches!(
            name,
            "GetItem"
                | "BatchGetItem"
                | "Query"
                | "Scan"
                | "PutItem"
                | "UpdateItem"
                | "DeleteItem"
                | "BatchWriteItem"
                | "TransactGetItems"
                | "TransactWriteItems"
                | "ExecuteStatement"
                | "BatchExecuteStatement"
        ),
        "lambda.amazonaws.com" => name.starts_with("Invoke"),
        _ => false,
    }
}

/// Whether a record is a data event (see the module's doc).
fn is_data_event(r: &Value) -> bool {
    match string(r, &["eventCategory"]) {
        Some(category) => category == "Data",
        None => match r.get("managementEvent").and_then(Value::as_bool) {
            Some(management) => !management,
            None => is_data_api(
                string(r, &["eventSource"]).unwrap_or(""),
                string(r, &["eventName"]).unwrap_or(""),
            ),
        },
    }
}

fn record(r: &Value, options: &Options, out: &mut Vec<Item>) -> Result<(), ParseError> {
    let ts = time(r, &["eventTime"])?;
    if r.get("errorCode").is_some_and(|e| !e.is_null()) {
        out.push(Item::NotAccess(NotAccess::Failed));
        return Ok(());
    }
    let name = string(r, &["eventName"]).unwrap_or("");
    match string(r, &["eventSource"]) {
        Some("s3.amazonaws.com") if is_permission_call(name) => {
            return permission_changes(r, ts, name, options, out);
        }
        Some("iam.amazonaws.com") if iam::is_permission_call(name) => {
            return iam::permission_changes(r, ts, name, principal(r, options)?, out);
        }
        _ => {}
    }
    if !is_data_event(r) {
        out.push(Item::NotAccess(NotAccess::Management));
        return Ok(());
    }
    let Some(table) = resource(r, options.resource) else {
        return Err(ParseError::Unattributable {
            message: format!(
                "data event {} {} with neither requestParameters.bucketName nor a resources ARN",
                string(r, &["eventSource"]).unwrap_or("?"),
                string(r, &["eventName"]).unwrap_or("?")
            ),
        });
    };
    let principal = principal(r, options)?;
    if let Some(source) = copy_source(r, options.resource)
        && matches!(name, "CopyObject" | "UploadPartCopy")
    {
        out.push(Item::Event(AccessEvent::classified(
            ts,
            principal.clone(),
            source,
            true,
        )));
    }
    let read = is_read(name, r.get("readOnly").and_then(Value::as_bool));
    out.push(Item::Event(with_volume(
        AccessEvent::classified(ts, principal, table, read),
        bytes_out(r),
    )));
    Ok(())
}

/// The S3 calls that change who may read a bucket's objects.
fn is_permission_call(name: &str) -> bool {
    matches!(
        name,
        "PutBucketPolicy"
            | "DeleteBucketPolicy"
            | "PutBucketAcl"
            | "PutObjectAcl"
            | "PutBucketPublicAccessBlock"
            | "PutPublicAccessBlock"
            | "DeleteBucketPublicAccessBlock"
            | "DeletePublicAccessBlock"
    )
}

/// The S3 ACL groups that stand for everyone, by their URI's last part.
const ACL_GROUPS: [(&str, &str); 2] = [
    ("AllUsers", "allUsers"),
    ("AuthenticatedUsers", "allAuthenticatedUsers"),
];

/// The permission changes of an S3 policy, ACL or public access block call (see the module's
/// doc).
fn permission_changes(
    r: &Value,
    ts: crate::time::Ts,
    name: &str,
    options: &Options,
    out: &mut Vec<Item>,
) -> Result<(), ParseError> {
    let actor = principal(r, options)?;
    let Some(bucket) = string(r, &["requestParameters.bucketName"]) else {
        return Err(ParseError::Unattributable {
            message: format!("s3 {name} with no requestParameters.bucketName"),
        });
    };
    let statement = r
        .get("requestParameters")
        .map(|p| crate::time::clip(&p.to_string(), 2000));
    let mut changes: Vec<(ChangeAction, String, String, String)> = Vec::new();
    let mut change = |action, object: &str, grantee: &str, privilege: &str| {
        let entry = (
            action,
            object.to_string(),
            grantee.to_string(),
            privilege.to_string(),
        );
        if !changes.contains(&entry) {
            changes.push(entry);
        }
    };
    match name {
        "PutBucketPolicy" => {
            let policy = match at(r, "requestParameters.bucketPolicy") {
                Some(Value::String(text)) => serde_json::from_str(text).unwrap_or(Value::Null),
                Some(policy) => policy.clone(),
                None => Value::Null,
            };
            for (action, grantee, privilege) in bucket_policy_changes(&policy) {
                change(action, bucket, &grantee, &privilege);
            }
        }
        "DeleteBucketPolicy" => change(ChangeAction::Revoke, bucket, "*", "s3:GetObject"),
        "PutBucketAcl" | "PutObjectAcl" => {
            let object = match (name, string(r, &["requestParameters.key"])) {
                ("PutObjectAcl", Some(key)) => name_of(bucket, Some(key), options.resource),
                _ => bucket.to_string(),
            };
            let parameters = r.get("requestParameters").unwrap_or(&Value::Null);
            for (action, group, permission) in acl_changes(parameters) {
                change(action, &object, group, &permission);
            }
        }
        "PutBucketPublicAccessBlock" | "PutPublicAccessBlock" => {
            let config = at(r, "requestParameters.PublicAccessBlockConfiguration");
            let on = |flag: &str| {
                config
                    .and_then(|c| c.get(flag))
                    .is_some_and(|v| v.as_bool() == Some(true) || v.as_str() == Some("true"))
            };
            if on("RestrictPublicBuckets") {
                change(ChangeAction::Revoke, bucket, "*", "s3:GetObject");
            }
            if on("IgnorePublicAcls") {
                for (_, group) in ACL_GROUPS {
                    change(ChangeAction::Revoke, bucket, group, "READ");
                }
            }
        }
        _ => {}
    }
    if changes.is_empty() {
        out.push(Item::NotAccess(NotAccess::OtherPermission));
    }
    for (action, object, grantee, privilege) in changes {
        out.push(Item::Permission(PermissionChange {
            ts,
            action,
            object,
            grantee,
            privilege,
            actor: actor.clone(),
            statement: statement.clone(),
        }));
    }
    Ok(())
}

/// A JSON value that may be one string or a list of them.
fn strings(value: Option<&Value>) -> Vec<&str> {
    match value {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// The S3 actions that read an object's content.
const READ_ACTIONS: [&str; 5] = [
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:Get*",
    "s3:*",
    "*",
];

/// Each `Allow` statement of an IAM policy (bucket or identity) with the first of its actions
/// that reads S3; statements with `NotAction` are skipped.
fn allowed_reads(policy: &Value) -> Vec<(&Value, &str)> {
    let statements = match policy.get("Statement") {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => Vec::new(),
    };
    statements
        .into_iter()
        .filter(|s| string(s, &["Effect"]) == Some("Allow") && s.get("NotAction").is_none())
        .filter_map(|s| {
            let action = strings(s.get("Action"))
                .into_iter()
                .find(|a| READ_ACTIONS.iter().any(|r| r.eq_ignore_ascii_case(a)))?;
            Some((s, action))
        })
        .collect()
}

/// What putting bucket policy `policy` changes, as (action, grantee, privilege): a grant to
/// each principal an `Allow` statement lets read, and — a policy replaces the one before —
/// a revoke from everyone (`*`) unless the policy itself lets everyone read. Shared by the
/// logged `PutBucketPolicy` and the policy `exposure check` is asked about.
pub(crate) fn bucket_policy_changes(policy: &Value) -> Vec<super::vendor::Granted> {
    let mut out = Vec::new();
    let mut everyone = false;
    for (principal, action) in policy_read_grants(policy) {
        everyone |= principal == "*";
        let entry = (ChangeAction::Grant, principal, action);
        if !out.contains(&entry) {
            out.push(entry);
        }
    }
    if !everyone {
        out.push((ChangeAction::Revoke, "*".into(), "s3:GetObject".into()));
    }
    out
}

/// What putting an ACL changes for everyone and every authenticated user, as (action, group,
/// permission): a grant where it lets them read, a revoke where it does not (an ACL replaces
/// the one before). `parameters` holds the ACL as CloudTrail logs a `PutBucketAcl`'s
/// `requestParameters` (`x-amz-acl`, `AccessControlPolicy.AccessControlList.Grant`).
pub(crate) fn acl_changes(parameters: &Value) -> Vec<(ChangeAction, &'static str, String)> {
    let granted = acl_read_grants(parameters);
    ACL_GROUPS
        .iter()
        .map(
            |(_, group)| match granted.iter().find(|(g, _)| g == group) {
                Some((_, permission)) => (ChangeAction::Grant, *group, permission.clone()),
                None => (ChangeAction::Revoke, *group, "READ".to_string()),
            },
        )
        .collect()
}

/// (principal, read action) of each `Allow` statement of a bucket policy that lets read.
pub(crate) fn policy_read_grants(policy: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (statement, action) in allowed_reads(policy) {
        if statement.get("NotPrincipal").is_some() {
            continue;
        }
        let principals = match statement.get("Principal") {
            Some(Value::String(p)) => vec![p.as_str()],
            Some(Value::Object(kinds)) => kinds.values().flat_map(|v| strings(Some(v))).collect(),
            _ => Vec::new(),
        };
        for principal in principals {
            out.push((principal.to_string(), action.to_string()));
        }
    }
    out
}

/// (group, permission) of each `READ` or `FULL_CONTROL` grant of an ACL call to everyone or
/// every authenticated user: the ACL's grants, or its canned `x-amz-acl` (a header: logged as
/// a string, or as a list of its values).
fn acl_read_grants(parameters: &Value) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let canned = match at(parameters, "x-amz-acl") {
        Some(Value::Array(values)) => values.iter().find_map(Value::as_str),
        Some(value) => value.as_str(),
        None => None,
    };
    match canned {
        Some("public-read" | "public-read-write") => out.push(("allUsers", "READ".to_string())),
        Some("authenticated-read") => out.push(("allAuthenticatedUsers", "READ".to_string())),
        _ => {}
    }
    let grants = at(parameters, "AccessControlPolicy.AccessControlList.Grant");
    let grants: Vec<&Value> = match grants {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => Vec::new(),
    };
    for grant in grants {
        let permission = string(grant, &["Permission"]).unwrap_or("");
        if !matches!(permission, "READ" | "FULL_CONTROL") {
            continue;
        }
        let uri = string(grant, &["Grantee.URI"]).unwrap_or("");
        for (suffix, group) in ACL_GROUPS {
            if uri.ends_with(&format!("/{suffix}")) && !out.iter().any(|(g, _)| *g == group) {
                out.push((group, permission.to_string()));
            }
        }
    }
    out
}

/// The table a copy reads: `x-amz-copy-source` (`bucket/key`, percent-encoded, perhaps with
/// `?versionId=`), named as `choice` names the destination.
fn copy_source(r: &Value, choice: ResourceChoice) -> Option<String> {
    let raw = string(r, &["requestParameters.x-amz-copy-source"])?;
    let raw = raw.split('?').next().unwrap_or(raw).trim_start_matches('/');
    let decoded = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
    let (bucket, key) = decoded.split_once('/')?;
    Some(match choice {
        ResourceChoice::Arn => format!("arn:aws:s3:::{bucket}/{key}"),
        choice => name_of(bucket, Some(key), choice),
    })
}

fn resource(r: &Value, choice: ResourceChoice) -> Option<String> {
    let resources = || r.get("resources")?.as_array();
    let arn = || {
        let resources = resources()?;
        let pick = resources
            .iter()
            .find(|x| string(x, &["type"]) == Some("AWS::S3::Object"))
            .or_else(|| resources.first())?;
        string(pick, &["ARN", "arn"])
    };
    if choice == ResourceChoice::Arn {
        return arn().map(str::to_string);
    }
    let (bucket, key) = match string(r, &["requestParameters.bucketName"]) {
        // S3 on Outposts writes `Key`.
        Some(bucket) => (
            bucket,
            string(r, &["requestParameters.key"]).or(string(r, &["requestParameters.Key"])),
        ),
        // No request parameters: the S3 object's ARN, `arn:aws:s3:::bucket/key`.
        None => {
            let arn = arn()?;
            let Some(object) = arn.strip_prefix("arn:aws:s3:::") else {
                return Some(arn.to_string());
            };
            match object.split_once('/') {
                Some((bucket, key)) => (bucket, Some(key)),
                None => (object, None),
            }
        }
    };
    Some(name_of(bucket, key, choice))
}

/// The table of an S3 object, as `choice` says.
pub(super) fn name_of(bucket: &str, key: Option<&str>, choice: ResourceChoice) -> String {
    match (choice, key) {
        (ResourceChoice::Object, Some(key)) => joined(bucket, key),
        (ResourceChoice::Dataset, Some(key)) => match dataset_of(key) {
            "" => bucket.to_string(),
            dataset => joined(bucket, dataset),
        },
        _ => bucket.to_string(),
    }
}

/// `{a}/{b}`, in one allocation (`format!` costs several times more on the fast path).
fn joined(a: &str, b: &str) -> String {
    let mut name = String::with_capacity(a.len() + 1 + b.len());
    name.push_str(a);
    name.push('/');
    name.push_str(b);
    name
}

/// The folders of an object key up to its first `key=value` partition segment or its file
/// name: `customers/dt=2026-03-16/part-0.parquet` → `customers`, `exports/2026-03.csv` →
/// `exports`, `report.csv` → `` (the bucket itself).
fn dataset_of(key: &str) -> &str {
    let mut end = 0;
    let mut folders = key.split('/').peekable();
    while let Some(segment) = folders.next() {
        let is_file = folders.peek().is_none();
        let is_partition = segment
            .split_once('=')
            .is_some_and(|(name, _)| !name.is_empty());
        if is_file || is_partition {
            break;
        }
        end += segment.len() + 1;
    }
    key[..end].trim_end_matches('/')
}

fn principal(r: &Value, options: &Options) -> Result<String, ParseError> {
    let choice = options.principal;
    let identity =
        at(r, "userIdentity").ok_or_else(|| super::vendor::json::missing("userIdentity"))?;
    if is_anonymous_account(string(identity, &["accountId"])) {
        return Ok(options.anonymous.principal(string(r, &["sourceIPAddress"])));
    }
    let arn = string(identity, &["arn"]);
    let kind = string(identity, &["type"]);
    if kind == Some("AssumedRole") && choice != PrincipalChoice::Arn {
        let issuer = string(identity, &["sessionContext.sessionIssuer.arn"]);
        if let Some(issuer) = issuer {
            if choice == PrincipalChoice::Role {
                return Ok(issuer.to_string());
            }
            // The session name is the last part of arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION.
            if let Some(session) = arn.and_then(|a| a.rsplit_once('/')).map(|(_, s)| s) {
                return Ok(format!("{issuer}/{session}"));
            }
            return Ok(issuer.to_string());
        }
    }
    if let Some(arn) = arn {
        return Ok(arn.to_string());
    }
    Ok(required(identity, &["invokedBy", "principalId", "userName"])?.to_string())
}

#[cfg(test)]
mod fast_path_tests {
    use super::*;
    use crate::event::Anonymous;

    fn agree(line: &str, options: &Options) {
        let fast = parse_fast(line.as_bytes(), options).expect("the fast path takes it");
        let value: Value = serde_json::from_str(line).unwrap();
        assert_eq!(Ok(fast), parse(&value, options), "{line}");
    }

    const GET: &str = r#"{"eventVersion":"1.09","userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::1:assumed-role/Analyst/alice","sessionContext":{"sessionIssuer":{"type":"Role","arn":"arn:aws:iam::1:role/Analyst"}}},"eventTime":"2026-03-18T10:00:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","requestParameters":{"bucketName":"lake","key":"customers/dt=2026-03-16/part-0.parquet"},"readOnly":true,"resources":[{"type":"AWS::S3::Object","ARN":"arn:aws:s3:::lake/customers/dt=2026-03-16/part-0.parquet"}],"eventCategory":"Data"}"#;

    #[test]
    fn usual_records_and_files_take_the_fast_path_with_the_same_items() {
        let listing = GET.replace("GetObject", "ListObjectsV2");
        let failed = GET.replace(
            r#""eventCategory""#,
            r#""errorCode":"AccessDenied","eventCategory""#,
        );
        let management = GET.replace(r#""Data""#, r#""Management""#);
        let user = GET.replace(r#""type":"AssumedRole""#, r#""type":"IAMUser""#);
        // Read anonymously (a public bucket), as CloudTrail logs it, and in its older form.
        let public = GET
            .replace(
                &GET[GET.find(r#""userIdentity""#).unwrap()..GET.find(r#","eventTime""#).unwrap()],
                r#""userIdentity":{"type":"AWSAccount","principalId":"","accountId":"ANONYMOUS_PRINCIPAL"}"#,
            )
            .replace(r#""readOnly""#, r#""sourceIPAddress":"203.0.113.7","readOnly""#);
        let public_old = public.replace("ANONYMOUS_PRINCIPAL", "anonymous");
        let no_address = public.replace("203.0.113.7", "");
        let file = format!(r#"{{"Records":[{GET},{listing},{failed},{management},{public}]}}"#);
        for principal in [
            PrincipalChoice::Session,
            PrincipalChoice::Role,
            PrincipalChoice::Arn,
        ] {
            for resource in [
                ResourceChoice::Dataset,
                ResourceChoice::Object,
                ResourceChoice::Bucket,
            ] {
                for anonymous in [Anonymous::PerAddress, Anonymous::Shared] {
                    let options = Options {
                        principal,
                        resource,
                        anonymous,
                    };
                    for line in [
                        GET,
                        &listing,
                        &failed,
                        &management,
                        &user,
                        &file,
                        &public,
                        &public_old,
                        &no_address,
                    ] {
                        agree(line, &options);
                    }
                }
            }
        }
    }

    #[test]
    fn a_reads_bytes_transferred_out_is_its_volume_on_both_paths() {
        let options = Options::default();
        let with = |value: &str| {
            GET.replace(
                r#""eventCategory":"Data"}"#,
                &format!(
                    r#""eventCategory":"Data","additionalEventData":{{"bytesTransferredIn":0.0,"bytesTransferredOut":{value},"x-amz-id-2":"x"}}}}"#
                ),
            )
        };
        let bytes = |items: &[Item]| match items {
            [Item::Event(e)] => e.bytes,
            other => panic!("{other:?}"),
        };
        for (value, want) in [
            ("3462992.0", Some(3_462_992)),
            ("512", Some(512)),
            ("null", None),
        ] {
            let line = with(value);
            agree(&line, &options);
            assert_eq!(bytes(&parse_fast(line.as_bytes(), &options).unwrap()), want);
        }
        // A fraction or an exponent is the Value path's: it reads a whole one, not a fraction.
        for (value, want) in [("1.5", None), ("1e3", Some(1000))] {
            let line = with(value);
            assert!(parse_fast(line.as_bytes(), &options).is_none(), "{line}");
            let value: Value = serde_json::from_str(&line).unwrap();
            assert_eq!(bytes(&parse(&value, &options).unwrap()), want);
        }
        // A listing reads nothing: no volume.
        let listing = with("100").replace("GetObject", "ListObjects");
        agree(&listing, &options);
        assert_eq!(
            bytes(&parse_fast(listing.as_bytes(), &options).unwrap()),
            None
        );
    }

    #[test]
    fn other_records_are_left_to_the_value_path() {
        let options = Options::default();
        let copy = GET.replace("GetObject", "CopyObject");
        let policy = GET.replace("GetObject", "PutBucketPolicy");
        let no_bucket = GET.replace("bucketName", "bucket");
        let array_identity = GET.replace(r#""userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::1:assumed-role/Analyst/alice","#, r#""userIdentity":["AssumedRole"],"x":{"#);
        let null_records = r#"{"Records":null}"#.to_string();
        for line in [&copy, &policy, &no_bucket, &array_identity, &null_records] {
            assert!(parse_fast(line.as_bytes(), &options).is_none(), "{line}");
        }
        let arn = Options {
            resource: ResourceChoice::Arn,
            ..Options::default()
        };
        assert!(parse_fast(GET.as_bytes(), &arn).is_none());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Anonymous;
    use serde_json::json;

    #[test]
    fn an_anonymous_read_is_a_principal_per_source_address_or_one_shared() {
        let read = |identity: Value, address: Value| {
            json!({
                "eventTime": "2026-03-18T10:00:00Z", "eventCategory": "Data", "readOnly": true,
                "eventSource": "s3.amazonaws.com", "eventName": "GetObject",
                "userIdentity": identity, "sourceIPAddress": address,
                "requestParameters": {"bucketName": "public-exports", "key": "salaries.csv"},
            })
        };
        let principal_of = |record: &Value, anonymous| {
            let options = Options {
                anonymous,
                ..Options::default()
            };
            match parse(record, &options).unwrap().as_slice() {
                [Item::Event(event)] => {
                    assert_eq!(event.is_read, Some(true));
                    event.principal.to_string()
                }
                other => panic!("{other:?}"),
            }
        };
        let anonymous =
            json!({"type": "AWSAccount", "principalId": "", "accountId": "ANONYMOUS_PRINCIPAL"});
        let older = json!({"type": "AWSAccount", "accountId": "anonymous"});
        for identity in [anonymous, older] {
            let from = read(identity.clone(), json!("203.0.113.7"));
            assert_eq!(
                principal_of(&from, Anonymous::PerAddress),
                "anonymous@203.0.113.7"
            );
            assert_eq!(principal_of(&from, Anonymous::Shared), "anonymous");
            let nowhere = read(identity, Value::Null);
            assert_eq!(principal_of(&nowhere, Anonymous::PerAddress), "anonymous");
        }
    }

    #[test]
    fn a_dataset_is_the_key_up_to_its_first_partition_or_file_name() {
        for (key, dataset) in [
            ("customers/dt=2026-03-16/part-0.parquet", "customers"),
            (
                "warehouse/customers/region=eu/dt=2026-03-16/part-0.parquet",
                "warehouse/customers",
            ),
            ("exports/salaries/2026-03.csv", "exports/salaries"),
            ("report.csv", ""),
            ("dt=2026-03-16/part-0.parquet", ""),
            ("logs/2026/03/16/", "logs/2026/03/16"),
            ("a//b.csv", "a"),
            ("x/=weird/part", "x/=weird"),
        ] {
            assert_eq!(dataset_of(key), dataset, "{key}");
        }
    }

    #[test]
    fn each_resource_choice_names_the_access_as_documented() {
        let get = |params: Value, resources: Value| {
            json!({
                "eventTime": "2026-03-18T10:00:00Z", "eventCategory": "Data", "readOnly": true,
                "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::1:user/a"},
                "requestParameters": params, "resources": resources,
            })
        };
        let with_params = get(
            json!({"bucketName": "lake", "key": "customers/dt=2026-03-16/part-0.parquet"}),
            json!([{"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::lake/customers/dt=2026-03-16/part-0.parquet"}]),
        );
        let arn_only = get(
            Value::Null,
            json!([{"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::lake/customers/dt=2026-03-16/part-0.parquet"}]),
        );
        let other_service = get(
            Value::Null,
            json!([{"type": "AWS::DynamoDB::Table", "ARN": "arn:aws:dynamodb:us-east-1:1:table/users"}]),
        );
        let table = |record: &Value, resource| resource_of(record, resource);
        for record in [&with_params, &arn_only] {
            assert_eq!(table(record, ResourceChoice::Dataset), "lake/customers");
            assert_eq!(
                table(record, ResourceChoice::Object),
                "lake/customers/dt=2026-03-16/part-0.parquet"
            );
            assert_eq!(table(record, ResourceChoice::Bucket), "lake");
            assert_eq!(
                table(record, ResourceChoice::Arn),
                "arn:aws:s3:::lake/customers/dt=2026-03-16/part-0.parquet"
            );
        }
        for choice in [
            ResourceChoice::Dataset,
            ResourceChoice::Object,
            ResourceChoice::Bucket,
        ] {
            assert_eq!(
                table(&other_service, choice),
                "arn:aws:dynamodb:us-east-1:1:table/users"
            );
        }
    }

    fn resource_of(record: &Value, resource: ResourceChoice) -> String {
        let options = Options {
            resource,
            ..Options::default()
        };
        match parse(record, &options).unwrap().pop().unwrap() {
            Item::Event(event) => event.table.to_string(),
            other => panic!("not an access: {record}: {other:?}"),
        }
    }

    fn items(record: Value) -> Vec<String> {
        parse(&record, &Options::default())
            .unwrap()
            .into_iter()
            .map(|item| match item {
                Item::Event(e) => format!(
                    "{} {} {}",
                    if e.is_read == Some(true) {
                        "read"
                    } else {
                        "other"
                    },
                    e.principal,
                    e.table
                ),
                Item::Permission(c) => format!(
                    "{} {} {} {}",
                    c.action.as_str(),
                    c.privilege,
                    c.object,
                    c.grantee
                ),
                other => format!("{other:?}"),
            })
            .collect()
    }

    fn s3_call(name: &str, parameters: Value) -> Value {
        json!({
            "eventVersion": "1.09", "eventSource": "s3.amazonaws.com", "eventName": name,
            "eventCategory": "Management", "eventTime": "2026-03-18T10:00:00Z",
            "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::1:user/admin"},
            "requestParameters": parameters,
        })
    }

    #[test]
    fn bucket_policies_acls_and_public_access_blocks_are_permission_changes() {
        let policy = json!({"Statement": [
            {"Effect": "Allow", "Principal": {"AWS": ["*", "arn:aws:iam::2:root"]}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/exports/*"},
            {"Effect": "Allow", "Principal": "*", "Action": ["s3:PutObject"], "Resource": "arn:aws:s3:::b/*"},
            {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"},
            {"Effect": "Allow", "NotPrincipal": {"AWS": "x"}, "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"}
        ]});
        assert_eq!(
            items(s3_call(
                "PutBucketPolicy",
                json!({"bucketName": "b", "bucketPolicy": policy})
            )),
            [
                "GRANT s3:GetObject b *",
                "GRANT s3:GetObject b arn:aws:iam::2:root"
            ]
        );
        // A policy as JSON text, no longer public: `*` is revoked.
        let private = r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::2:root"},"Action":"s3:Get*","Resource":"arn:aws:s3:::b/*"}}"#;
        assert_eq!(
            items(s3_call(
                "PutBucketPolicy",
                json!({"bucketName": "b", "bucketPolicy": private})
            )),
            [
                "GRANT s3:Get* b arn:aws:iam::2:root",
                "REVOKE s3:GetObject b *"
            ]
        );
        assert_eq!(
            items(s3_call("DeleteBucketPolicy", json!({"bucketName": "b"}))),
            ["REVOKE s3:GetObject b *"]
        );
        let acl = json!({"bucketName": "b", "AccessControlPolicy": {"AccessControlList": {"Grant": [
            {"Grantee": {"URI": "http://acs.amazonaws.com/groups/global/AllUsers"}, "Permission": "READ"},
            {"Grantee": {"ID": "abc"}, "Permission": "FULL_CONTROL"}
        ]}}});
        assert_eq!(
            items(s3_call("PutBucketAcl", acl)),
            [
                "GRANT READ b allUsers",
                "REVOKE READ b allAuthenticatedUsers"
            ]
        );
        assert_eq!(
            items(s3_call(
                "PutObjectAcl",
                json!({"bucketName": "b", "key": "exports/2026/x.csv", "x-amz-acl": "authenticated-read"})
            )),
            [
                "REVOKE READ b/exports/2026 allUsers",
                "GRANT READ b/exports/2026 allAuthenticatedUsers"
            ]
        );
        let canned = json!({"bucketName": "b", "acl": [""], "x-amz-acl": ["public-read"]});
        assert_eq!(
            items(s3_call("PutBucketAcl", canned)),
            [
                "GRANT READ b allUsers",
                "REVOKE READ b allAuthenticatedUsers"
            ],
            "a header logged as the list of its values"
        );
        let block = json!({"bucketName": "b", "PublicAccessBlockConfiguration": {
            "BlockPublicAcls": true, "IgnorePublicAcls": true, "BlockPublicPolicy": true, "RestrictPublicBuckets": true}});
        assert_eq!(
            items(s3_call("PutBucketPublicAccessBlock", block)),
            [
                "REVOKE s3:GetObject b *",
                "REVOKE READ b allUsers",
                "REVOKE READ b allAuthenticatedUsers"
            ]
        );
        assert_eq!(
            items(s3_call(
                "DeleteBucketPublicAccessBlock",
                json!({"bucketName": "b"})
            )),
            ["NotAccess(OtherPermission)"]
        );
        // A failed call changed nothing.
        let mut failed = s3_call("DeleteBucketPolicy", json!({"bucketName": "b"}));
        failed["errorCode"] = json!("AccessDenied");
        assert_eq!(items(failed), ["NotAccess(Failed)"]);
    }

    #[test]
    fn only_data_events_are_accesses_whatever_the_record_version() {
        let base = |extra: Value| {
            let mut r = json!({
                "eventTime": "2026-03-18T10:00:00Z", "readOnly": true,
                "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::1:user/a"},
                "resources": [{"type": "AWS::KMS::Key", "ARN": "arn:aws:kms:us-east-1:1:key/k"}],
            });
            r.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            r
        };
        let kms = json!({"eventSource": "kms.amazonaws.com", "eventName": "Decrypt"});
        assert_eq!(
            items(base(json!({"managementEvent": true}))),
            ["NotAccess(Management)"]
        );
        assert_eq!(
            items(base(kms.clone())),
            ["NotAccess(Management)"],
            "no flag: not a data API"
        );
        assert_eq!(
            items(base(
                json!({"eventCategory": "Management", "managementEvent": false})
            )),
            ["NotAccess(Management)"],
            "eventCategory decides when present"
        );
        assert!(is_data_api("s3.amazonaws.com", "GetObject"));
        assert!(is_data_api("dynamodb.amazonaws.com", "Query"));
        assert!(!is_data_api("dynamodb.amazonaws.com", "DescribeTable"));
        assert!(!is_data_api("s3.amazonaws.com", "GetBucketPolicy"));
    }

    #[test]
    fn a_copy_reads_its_source_and_a_listing_reads_nothing() {
        let s3 = |name: &str, params: Value| {
            json!({
                "eventTime": "2026-03-18T10:00:00Z", "eventCategory": "Data", "readOnly": false,
                "eventSource": "s3.amazonaws.com", "eventName": name,
                "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::1:user/m"},
                "requestParameters": params, "resources": [],
            })
        };
        assert_eq!(
            items(s3(
                "UploadPartCopy",
                json!({"bucketName": "drop", "key": "x/part.bin", "x-amz-copy-source": "/lake/customers/dt%3D1/p.parquet"})
            )),
            [
                "read arn:aws:iam::1:user/m lake/customers",
                "other arn:aws:iam::1:user/m drop/x"
            ]
        );
        assert_eq!(
            items(s3(
                "ListObjects",
                json!({"bucketName": "lake", "prefix": "customers/"})
            )),
            ["other arn:aws:iam::1:user/m lake"]
        );
        assert_eq!(
            percent_encoding::percent_decode_str("a%20b%2Fc%zz").decode_utf8_lossy(),
            "a b/c%zz"
        );
    }
}
