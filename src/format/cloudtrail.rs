//! AWS CloudTrail: log files (`{"Records":[...]}`, usually gzipped, often one line per file) and
//! one-record-per-line exports. Data events are accesses: the object is `bucket/key` for S3
//! (`requestParameters`), else the first `resources[].ARN`; a read is `readOnly: true`. Failed
//! calls (`errorCode`) and management events are not access events.
//!
//! The principal, from `userIdentity` (`principal = ...` in `[input.cloudtrail]`):
//! - `session` (default): for an assumed role, the role (session issuer ARN) and the session
//!   name — `arn:aws:iam::123:role/Analyst/alice` — so that people sharing a role stay apart;
//!   for anything else the identity ARN;
//! - `role`: the session issuer ARN alone (one principal per role);
//! - `arn`: `userIdentity.arn` as logged (`arn:aws:sts::123:assumed-role/Analyst/alice`).

use super::ParseError;
use super::vendor::Item;
use super::vendor::json::{at, required, string, time};
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
    /// `bucket/key` (S3), else the resource ARN.
    #[default]
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
    match value.get("Records") {
        Some(Value::Array(records)) => records.iter().map(|r| record(r, options)).collect(),
        Some(_) => Err(ParseError::WrongType {
            field: "Records".into(),
            expected: "an array",
            found: "something else".into(),
        }),
        None => Ok(vec![record(value, options)?]),
    }
}

fn record(r: &Value, options: &Options) -> Result<Item, ParseError> {
    let ts = time(r, &["eventTime"])?;
    if r.get("errorCode").is_some_and(|e| !e.is_null()) {
        return Ok(Item::NotAccess);
    }
    let category = string(r, &["eventCategory"]);
    let is_data = category == Some("Data")
        || (category.is_none() && r.get("resources").is_some() && r.get("readOnly").is_some());
    if !is_data {
        return Ok(Item::NotAccess);
    }
    let Some(table) = resource(r, options.resource) else {
        return Ok(Item::NotAccess);
    };
    let principal = principal(r, options.principal)?;
    let read = r.get("readOnly").and_then(Value::as_bool).unwrap_or(false);
    Ok(Item::Event(AccessEvent::classified(
        ts, principal, table, read,
    )))
}

fn resource(r: &Value, choice: ResourceChoice) -> Option<String> {
    let arn = || {
        let resources = r.get("resources")?.as_array()?;
        let pick = resources
            .iter()
            .find(|x| string(x, &["type"]) == Some("AWS::S3::Object"))
            .or_else(|| resources.first())?;
        string(pick, &["ARN", "arn"]).map(str::to_string)
    };
    let bucket = string(r, &["requestParameters.bucketName"]);
    let key = string(r, &["requestParameters.key"]);
    match (choice, bucket, key) {
        (ResourceChoice::Object, Some(b), Some(k)) => Some(format!("{b}/{k}")),
        (ResourceChoice::Object | ResourceChoice::Bucket, Some(b), _) => Some(b.to_string()),
        _ => arn(),
    }
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
