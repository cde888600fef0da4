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
//! The principal, from `userIdentity` (`principal = ...` in `[input.cloudtrail]`):
//! - `session` (default): for an assumed role, the role (session issuer ARN) and the session
//!   name — `arn:aws:iam::123:role/Analyst/alice` — so that people sharing a role stay apart;
//!   for anything else the identity ARN;
//! - `role`: the session issuer ARN alone (one principal per role);
//! - `arn`: `userIdentity.arn` as logged (`arn:aws:sts::123:assumed-role/Analyst/alice`).

use super::ParseError;
use super::vendor::json::{at, required, string, time};
use super::vendor::{Item, NotAccess};
use crate::event::AccessEvent;
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
}

/// Parses a CloudTrail file line (`Records`) or a single record.
pub fn parse(value: &Value, options: &Options) -> Result<Vec<Item>, ParseError> {
    let mut items = Vec::new();
    match value.get("Records") {
        Some(Value::Array(records)) => {
            for r in records {
                record(r, options, &mut items)?;
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
    let principal = principal(r, options.principal)?;
    let name = string(r, &["eventName"]).unwrap_or("");
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
    let listing = matches!(name, "ListObjects" | "ListObjectsV2" | "ListObjectVersions");
    let read = !listing && r.get("readOnly").and_then(Value::as_bool).unwrap_or(false);
    out.push(Item::Event(AccessEvent::classified(
        ts, principal, table, read,
    )));
    Ok(())
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
fn name_of(bucket: &str, key: Option<&str>, choice: ResourceChoice) -> String {
    match (choice, key) {
        (ResourceChoice::Object, Some(key)) => format!("{bucket}/{key}"),
        (ResourceChoice::Dataset, Some(key)) => match dataset_of(key) {
            "" => bucket.to_string(),
            dataset => format!("{bucket}/{dataset}"),
        },
        _ => bucket.to_string(),
    }
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

fn principal(r: &Value, choice: PrincipalChoice) -> Result<String, ParseError> {
    let identity =
        at(r, "userIdentity").ok_or_else(|| super::vendor::json::missing("userIdentity"))?;
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
mod tests {
    use super::*;
    use serde_json::json;

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
                other => format!("{other:?}"),
            })
            .collect()
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
