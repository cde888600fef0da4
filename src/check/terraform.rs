//! The permission parts of a Terraform plan (`terraform show -json plan.out`): each
//! `resource_changes` entry of a supported type is read as the document it puts in place —
//! a bucket policy or ACL, IAM bindings, Snowflake or Unity Catalog grants — and what its
//! `after` grants beyond its `before` is a grant, what `before` granted and `after` does not
//! a revoke (a create has no `before`, a destroy no `after`). The documents go through the
//! same readers as everything else ([`super::proposal`]).
//!
//! Supported: `aws_s3_bucket_policy`, `aws_s3_bucket_acl`, `google_bigquery_dataset_iam_*`,
//! `google_storage_bucket_iam_*` (`_binding`, `_member`, `_policy`),
//! `snowflake_grant_privileges_to_account_role`, `databricks_grants`.

use super::proposal::{ProposalError, ProposalOptions, Proposed, acl_request, change, gcp_object};
use crate::event::ChangeAction;
use crate::format::{cloudtrail, gcp};
use serde_json::Value;

/// (object, grantee, privilege, future tables only) a resource's values grant.
type Granted = (String, String, String, bool);

/// The plan's permission changes.
pub fn read(plan: &Value, options: &ProposalOptions) -> Result<Vec<Proposed>, ProposalError> {
    let Some(changes) = plan.get("resource_changes").and_then(Value::as_array) else {
        return Err(ProposalError::Invalid {
            what: "the plan".into(),
            message: "no resource_changes: give `terraform show -json PLANFILE` of a saved plan"
                .into(),
        });
    };
    let mut out = Vec::new();
    for resource in changes {
        let kind = text(resource, "type").unwrap_or_default();
        let address = text(resource, "address").unwrap_or(kind).to_string();
        let Some(change_of) = resource.get("change") else {
            continue;
        };
        let actions: Vec<&str> = (change_of.get("actions").and_then(Value::as_array))
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if actions.iter().all(|a| matches!(*a, "no-op" | "read")) {
            continue;
        }
        let values = |key: &str| change_of.get(key).filter(|v| !v.is_null());
        let before = match values("before") {
            Some(v) => granted(kind, v, &address)?,
            None => Vec::new(),
        };
        let after = match values("after") {
            Some(v) => granted(kind, v, &address)?,
            None => Vec::new(),
        };
        let statement = Some(format!("{address} ({})", actions.join(", ")));
        let undo = Some(format!(
            "leave {address} out of the plan (`terraform plan -target` the rest), or revert it"
        ));
        let made = after.iter().filter(|g| !before.contains(g));
        let taken = before.iter().filter(|g| !after.contains(g));
        for (action, list) in [
            (ChangeAction::Grant, made.collect::<Vec<_>>()),
            (ChangeAction::Revoke, taken.collect()),
        ] {
            for (object, grantee, privilege, future_only) in list {
                out.push(Proposed {
                    change: change(
                        options,
                        action,
                        object,
                        grantee,
                        privilege,
                        statement.clone(),
                    ),
                    future_only: *future_only,
                    implied: false,
                    undo: undo.clone(),
                });
            }
        }
    }
    Ok(out)
}

fn text<'v>(value: &'v Value, key: &str) -> Option<&'v str> {
    value.get(key).and_then(Value::as_str)
}

fn strings(value: Option<&Value>) -> Vec<&str> {
    match value {
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        Some(Value::String(one)) => vec![one.as_str()],
        _ => Vec::new(),
    }
}

/// The first element of a nested block (Terraform plans write blocks as one-element lists).
fn block<'v>(value: &'v Value, key: &str) -> Option<&'v Value> {
    match value.get(key)? {
        Value::Array(list) => list.first(),
        Value::Object(_) => value.get(key),
        _ => None,
    }
}

/// A JSON document held as a string attribute (`policy`, `policy_data`).
fn document(value: &Value, key: &str, address: &str) -> Result<Option<Value>, ProposalError> {
    match value.get(key) {
        Some(Value::String(text)) => {
            serde_json::from_str(text)
                .map(Some)
                .map_err(|e| ProposalError::Invalid {
                    what: format!("{address}.{key}"),
                    message: format!("not JSON: {e}"),
                })
        }
        Some(Value::Null) | None => Ok(None),
        Some(other) => Ok(Some(other.clone())),
    }
}

/// A Snowflake name as Terraform writes it (`"DB"."SCHEMA"."T"` or `DB.SCHEMA.T`).
fn snowflake_name(name: &str) -> String {
    name.split('.')
        .map(|part| part.trim().trim_matches('"'))
        .collect::<Vec<_>>()
        .join(".")
}

/// What one resource's values grant.
fn granted(kind: &str, v: &Value, address: &str) -> Result<Vec<Granted>, ProposalError> {
    let mut out: Vec<Granted> = Vec::new();
    let mut push = |object: &str, grantee: &str, privilege: &str, future: bool| {
        let entry = (
            object.to_string(),
            grantee.to_string(),
            privilege.to_string(),
            future,
        );
        if !out.contains(&entry) {
            out.push(entry);
        }
    };
    match kind {
        "aws_s3_bucket_policy" => {
            let bucket = text(v, "bucket").unwrap_or_default();
            if let Some(policy) = document(v, "policy", address)? {
                for (principal, action) in cloudtrail::policy_read_grants(&policy) {
                    push(bucket, &principal, &action, false);
                }
            }
        }
        "aws_s3_bucket_acl" => {
            let bucket = text(v, "bucket").unwrap_or_default();
            let mut grants = Vec::new();
            if let Some(policy) = block(v, "access_control_policy") {
                for grant in policy
                    .get("grant")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let Some(grantee) = block(grant, "grantee") else {
                        continue;
                    };
                    grants.push(serde_json::json!({
                        "Grantee": {"URI": text(grantee, "uri").unwrap_or_default()},
                        "Permission": text(grant, "permission").unwrap_or_default(),
                    }));
                }
            }
            let mut request = acl_request(&serde_json::json!({ "Grants": grants }));
            if let Some(canned) = text(v, "acl") {
                request["x-amz-acl"] = Value::from(canned);
            }
            for (action, group, permission) in cloudtrail::acl_changes(&request) {
                if action == ChangeAction::Grant {
                    push(bucket, group, &permission, false);
                }
            }
        }
        "google_bigquery_dataset_iam_binding"
        | "google_bigquery_dataset_iam_member"
        | "google_bigquery_dataset_iam_policy" => {
            let dataset = text(v, "dataset_id").unwrap_or_default();
            let object = match text(v, "project") {
                Some(project) if !dataset.contains('/') => format!("{project}.{dataset}"),
                _ => gcp_object(dataset),
            };
            iam_values(v, &object, address, &mut push)?;
        }
        "google_storage_bucket_iam_binding"
        | "google_storage_bucket_iam_member"
        | "google_storage_bucket_iam_policy" => {
            let object = gcp_object(text(v, "bucket").unwrap_or_default());
            iam_values(v, &object, address, &mut push)?;
        }
        "snowflake_grant_privileges_to_account_role" => {
            let role = text(v, "account_role_name")
                .map(snowflake_name)
                .unwrap_or_default();
            let mut privileges = strings(v.get("privileges"));
            if v.get("all_privileges").and_then(Value::as_bool) == Some(true) {
                privileges.push("ALL");
            }
            let mut objects: Vec<(String, bool)> = Vec::new();
            if let Some(on) = block(v, "on_schema_object") {
                if let Some(name) = text(on, "object_name") {
                    objects.push((snowflake_name(name), false));
                }
                for (key, future) in [("all", false), ("future", true)] {
                    if let Some(every) = block(on, key) {
                        let container = text(every, "in_schema").or(text(every, "in_database"));
                        if let Some(container) = container {
                            objects.push((snowflake_name(container), future));
                        }
                    }
                }
            }
            if let Some(on) = block(v, "on_schema") {
                for key in ["schema_name", "all_schemas_in_database"] {
                    if let Some(name) = text(on, key) {
                        objects.push((snowflake_name(name), false));
                    }
                }
                if let Some(name) = text(on, "future_schemas_in_database") {
                    objects.push((snowflake_name(name), true));
                }
            }
            for (object, future) in &objects {
                for privilege in &privileges {
                    push(object, &role, &privilege.to_ascii_uppercase(), *future);
                }
            }
        }
        "databricks_grants" => {
            let object = ["table", "view", "schema", "catalog", "metastore"]
                .iter()
                .find_map(|k| text(v, k))
                .unwrap_or_default();
            for grant in v
                .get("grant")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let Some(principal) = text(grant, "principal") else {
                    continue;
                };
                for privilege in strings(grant.get("privileges")) {
                    push(object, principal, privilege, false);
                }
            }
        }
        _ => {}
    }
    Ok(out)
}

/// The grants of an IAM resource's values: `role` and `members` (a binding), `role` and
/// `member` (a member), or `policy_data` (a whole policy).
fn iam_values(
    v: &Value,
    object: &str,
    address: &str,
    push: &mut impl FnMut(&str, &str, &str, bool),
) -> Result<(), ProposalError> {
    let mut deltas = Vec::new();
    if let Some(policy) = document(v, "policy_data", address)? {
        deltas = gcp::policy_bindings_as_deltas(&policy);
    } else if let Some(role) = text(v, "role") {
        let mut members = strings(v.get("members"));
        members.extend(text(v, "member"));
        for member in members {
            deltas.push(serde_json::json!({"action": "ADD", "role": role, "member": member}));
        }
    }
    for (_, grantee, role) in gcp::binding_delta_changes(&deltas) {
        push(object, &grantee, &role, false);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::proposal::read as read_proposal;

    fn plan(resources: Value) -> String {
        serde_json::json!({"format_version": "1.2", "resource_changes": resources}).to_string()
    }

    fn summary(proposed: &[Proposed]) -> Vec<String> {
        proposed
            .iter()
            .map(|p| {
                format!(
                    "{} {} {} {}{}",
                    p.change.action.as_str(),
                    p.change.privilege,
                    p.change.object,
                    p.change.grantee,
                    if p.future_only { " (future)" } else { "" }
                )
            })
            .collect()
    }

    #[test]
    fn each_supported_resource_is_read_as_the_document_it_puts_in_place() {
        let text = plan(serde_json::json!([
            {"address": "aws_s3_bucket_policy.exports", "type": "aws_s3_bucket_policy",
             "change": {"actions": ["create"], "before": null, "after": {"bucket": "acme-exports",
               "policy": "{\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"s3:GetObject\",\"Resource\":\"arn:aws:s3:::acme-exports/*\"}]}"}}},
            {"address": "aws_s3_bucket_acl.logs", "type": "aws_s3_bucket_acl",
             "change": {"actions": ["update"], "before": {"bucket": "acme-logs", "acl": "private"},
               "after": {"bucket": "acme-logs", "acl": "public-read"}}},
            {"address": "google_bigquery_dataset_iam_member.hr", "type": "google_bigquery_dataset_iam_member",
             "change": {"actions": ["create"], "before": null, "after": {"project": "acme", "dataset_id": "hr",
               "role": "roles/bigquery.dataViewer", "member": "group:eng@corp.example"}}},
            {"address": "google_storage_bucket_iam_binding.b", "type": "google_storage_bucket_iam_binding",
             "change": {"actions": ["delete"], "before": {"bucket": "b/acme-raw",
               "role": "roles/storage.objectViewer", "members": ["allUsers"]}, "after": null}},
            {"address": "snowflake_grant_privileges_to_account_role.g", "type": "snowflake_grant_privileges_to_account_role",
             "change": {"actions": ["create"], "before": null, "after": {"account_role_name": "\"ANALYST\"",
               "privileges": ["SELECT"], "on_schema_object": [{"future": [{"object_type_plural": "TABLES", "in_schema": "\"PROD\".\"HR\""}]}]}}},
            {"address": "databricks_grants.t", "type": "databricks_grants",
             "change": {"actions": ["update"], "before": {"table": "main.hr.salaries", "grant": [{"principal": "hr", "privileges": ["SELECT"]}]},
               "after": {"table": "main.hr.salaries", "grant": [{"principal": "hr", "privileges": ["SELECT"]}, {"principal": "account users", "privileges": ["SELECT"]}]}}},
            {"address": "aws_instance.web", "type": "aws_instance",
             "change": {"actions": ["create"], "before": null, "after": {"ami": "x"}}},
            {"address": "aws_s3_bucket_policy.same", "type": "aws_s3_bucket_policy",
             "change": {"actions": ["no-op"], "before": {}, "after": {}}}
        ]));
        let proposed = read_proposal(&text, &ProposalOptions::default()).unwrap();
        assert_eq!(
            summary(&proposed),
            [
                "GRANT s3:GetObject acme-exports *",
                "GRANT READ acme-logs allUsers",
                "GRANT roles/bigquery.dataViewer acme.hr eng@corp.example",
                "REVOKE roles/storage.objectViewer acme-raw allUsers",
                "GRANT SELECT PROD.HR ANALYST (future)",
                "GRANT SELECT main.hr.salaries account users",
            ]
        );
        assert_eq!(
            proposed[0].change.statement.as_deref(),
            Some("aws_s3_bucket_policy.exports (create)")
        );
    }

    #[test]
    fn a_plan_without_resource_changes_is_refused() {
        let error = read(
            &serde_json::json!({"planned_values": {}}),
            &ProposalOptions::default(),
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("terraform show -json"),
            "{error}"
        );
    }
}
