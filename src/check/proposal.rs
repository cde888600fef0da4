//! A proposed permission change, read into the changes the logs would record for it — by the
//! same parsers ([`grant_sql`], the S3 policy and ACL readers of CloudTrail, the IAM binding
//! deltas of Google Cloud, Unity Catalog's permission lists, canonical JSON lines): what is
//! checked is exactly what would be seen once it is applied. Each change carries how to undo
//! it. No I/O: the text comes from the caller.

use crate::event::{ChangeAction, PermissionChange};
use crate::format::grant_sql::{self, Fold, GrantContext};
use crate::format::{cloudtrail, databricks, gcp};
use crate::time::Ts;
use serde_json::Value;

/// One change of a proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposed {
    pub change: PermissionChange,
    /// The object is a container whose future tables the change reaches, not those in it now.
    pub future_only: bool,
    /// A revoke the document implies rather than states (a bucket policy or ACL replaces the
    /// one before): left out when nothing it would take away stands.
    pub implied: bool,
    /// How to undo it.
    pub undo: Option<String>,
}

/// What the text is. `Auto` tells from the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProposalKind {
    Auto,
    /// `GRANT`, `REVOKE`, `ALTER DEFAULT PRIVILEGES` statements (other statements of a
    /// migration are passed over).
    Sql,
    /// An S3 bucket policy (`{"Statement": [...]}`).
    S3Policy,
    /// An S3 ACL (`{"Grants": [...]}` as `put-bucket-acl` takes it, or a canned ACL name).
    S3Acl,
    /// A Google Cloud IAM policy (`{"bindings": [...]}`) or binding deltas.
    GcpIam,
    /// A Unity Catalog permissions change (`{"changes": [...]}`).
    Databricks,
    /// Canonical JSON lines with a `grantee`.
    Canonical,
    /// `terraform show -json` of a plan.
    Terraform,
}

impl std::str::FromStr for ProposalKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Ok(match text {
            "auto" => ProposalKind::Auto,
            "sql" => ProposalKind::Sql,
            "s3-policy" => ProposalKind::S3Policy,
            "s3-acl" => ProposalKind::S3Acl,
            "gcp-iam" => ProposalKind::GcpIam,
            "databricks" => ProposalKind::Databricks,
            "canonical" => ProposalKind::Canonical,
            "terraform" => ProposalKind::Terraform,
            other => {
                return Err(format!(
                    "unknown change kind {other:?} (auto, sql, s3-policy, s3-acl, gcp-iam, \
                     databricks, canonical, terraform)"
                ));
            }
        })
    }
}

/// Whose SQL it is: how names fold and which schema an unqualified name is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Unquoted names folded to lower case; unqualified tables in `public` (as pgaudit's
    /// changes are read).
    Postgres,
    /// Unquoted names folded to upper case.
    Snowflake,
}

impl std::str::FromStr for Dialect {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "postgres" | "postgresql" => Ok(Dialect::Postgres),
            "snowflake" => Ok(Dialect::Snowflake),
            other => Err(format!(
                "unknown SQL dialect {other:?} (postgres, snowflake)"
            )),
        }
    }
}

/// How to read a proposal.
#[derive(Debug, Clone)]
pub struct ProposalOptions {
    pub kind: ProposalKind,
    pub dialect: Dialect,
    /// The object a document is put on when it does not name it: an S3 bucket, a BigQuery
    /// dataset or table (`P.D`, `projects/P/datasets/D`), a Cloud Storage bucket
    /// (`projects/_/buckets/B`, `gs://B`), a Unity Catalog securable.
    pub object: Option<String>,
    /// The schema unqualified SQL names are in (`DB.SCHEMA` for Snowflake).
    pub schema: Option<String>,
    /// Put before every SQL object name (the database, when the logs' table names carry it).
    pub database: Option<String>,
    /// Who would make the change (`proposed` unless told).
    pub actor: String,
    /// When it would be made (the state's time).
    pub ts: Ts,
}

impl Default for ProposalOptions {
    fn default() -> Self {
        ProposalOptions {
            kind: ProposalKind::Auto,
            dialect: Dialect::Postgres,
            object: None,
            schema: None,
            database: None,
            actor: "proposed".into(),
            ts: 0,
        }
    }
}

/// A proposal that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposalError {
    #[error("{what}: {message}")]
    Invalid { what: String, message: String },
    #[error("the proposal holds no permission change ({0})")]
    Empty(String),
}

fn invalid(what: impl Into<String>, message: impl Into<String>) -> ProposalError {
    ProposalError::Invalid {
        what: what.into(),
        message: message.into(),
    }
}

/// Reads `text` as `options` say.
pub fn read(text: &str, options: &ProposalOptions) -> Result<Vec<Proposed>, ProposalError> {
    let kind = match options.kind {
        ProposalKind::Auto => detect(text)?,
        kind => kind,
    };
    let proposed = match kind {
        ProposalKind::Sql => sql(text, options)?,
        ProposalKind::Canonical => canonical(text, options)?,
        json_kind => {
            let document: Value = serde_json::from_str(text.trim()).map_err(|e| {
                invalid(
                    format!("line {}, column {}", e.line(), e.column()),
                    format!("not JSON: {e}"),
                )
            })?;
            match json_kind {
                ProposalKind::S3Policy => s3_policy(&document, options)?,
                ProposalKind::S3Acl => s3_acl(&document, options)?,
                ProposalKind::GcpIam => gcp_iam(&document, options)?,
                ProposalKind::Databricks => unity_catalog(&document, options)?,
                _ => super::terraform::read(&document, options)?,
            }
        }
    };
    if proposed.is_empty() {
        return Err(ProposalError::Empty(match kind {
            ProposalKind::Sql => "no GRANT, REVOKE or ALTER DEFAULT PRIVILEGES statement".into(),
            ProposalKind::Terraform => "no supported resource changes in the plan".into(),
            _ => "nothing in it grants or revokes read".into(),
        }));
    }
    Ok(proposed)
}

/// What `text` is, from its shape.
pub fn detect(text: &str) -> Result<ProposalKind, ProposalError> {
    let trimmed = text.trim_start();
    if !(trimmed.starts_with('{') || trimmed.starts_with('[') || trimmed.starts_with('"')) {
        return Ok(ProposalKind::Sql);
    }
    let Ok(document) = serde_json::from_str::<Value>(trimmed) else {
        // JSON lines: canonical changes.
        return Ok(ProposalKind::Canonical);
    };
    let has = |key: &str| document.get(key).is_some();
    Ok(if has("resource_changes") || has("planned_values") {
        ProposalKind::Terraform
    } else if has("Statement") {
        ProposalKind::S3Policy
    } else if has("Grants") || has("AccessControlPolicy") || document.is_string() {
        ProposalKind::S3Acl
    } else if has("bindings") || has("bindingDeltas") || document.is_array() {
        ProposalKind::GcpIam
    } else if has("changes") {
        ProposalKind::Databricks
    } else if has("grantee") {
        ProposalKind::Canonical
    } else {
        return Err(invalid(
            "the proposal",
            "JSON of no kind exposure checks (an S3 bucket policy or ACL, an IAM policy or \
             binding deltas, a Unity Catalog permissions change, a canonical change, a \
             Terraform plan); say which with --kind",
        ));
    })
}

/// A change made now by the proposal's actor.
pub(crate) fn change(
    options: &ProposalOptions,
    action: ChangeAction,
    object: &str,
    grantee: &str,
    privilege: &str,
    statement: Option<String>,
) -> PermissionChange {
    PermissionChange {
        ts: options.ts,
        action,
        object: object.to_string(),
        grantee: grantee.to_string(),
        privilege: privilege.to_string(),
        actor: options.actor.clone(),
        statement,
    }
}

fn sql(text: &str, options: &ProposalOptions) -> Result<Vec<Proposed>, ProposalError> {
    let (fold, schema) = match options.dialect {
        Dialect::Postgres => (Fold::Lower, options.schema.as_deref().or(Some("public"))),
        Dialect::Snowflake => (Fold::Upper, options.schema.as_deref()),
    };
    let context = GrantContext {
        ts: options.ts,
        actor: &options.actor,
        default_schema: schema,
        object_prefix: options.database.as_deref(),
        fold,
    };
    let mut out = Vec::new();
    for (at, statement) in grant_sql::split_statements(text).into_iter().enumerate() {
        let about_access = ["GRANT", "REVOKE", "ALTER DEFAULT PRIVILEGES"]
            .iter()
            .any(|command| grant_sql::starts_with_command(statement, command));
        if !about_access {
            continue;
        }
        let Some(parsed) = grant_sql::parse_statement(statement, &context) else {
            return Err(invalid(
                format!("statement {}", at + 1),
                format!(
                    "not a grant or revoke of access to tables or roles this reader knows: {}",
                    crate::time::clip(statement, 200)
                ),
            ));
        };
        let undo = grant_sql::undo_statement(statement);
        // `REVOKE … ON ALL TABLES IN SCHEMA s` is recorded on `s` and on `s.*` (for the
        // ledger's history); one change to judge.
        let objects: Vec<String> = parsed.changes.iter().map(|c| c.object.clone()).collect();
        for change in parsed.changes {
            if let Some(container) = change.object.strip_suffix(".*")
                && objects.iter().any(|o| o == container)
            {
                continue;
            }
            out.push(Proposed {
                change,
                future_only: parsed.future_only,
                implied: false,
                undo: undo.clone(),
            });
        }
    }
    Ok(out)
}

fn canonical(text: &str, options: &ProposalOptions) -> Result<Vec<Proposed>, ProposalError> {
    let fields = crate::format::jsonl::FieldPaths::default();
    let parser = crate::format::jsonl::JsonLinesParser::new(&fields, Default::default())
        .map_err(|e| invalid("the canonical fields", e))?;
    let mut out = Vec::new();
    for (at, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let where_ = || format!("line {}", at + 1);
        // A proposal need not say when or by whom: now, by the proposal's actor.
        let mut value: Value =
            serde_json::from_str(line).map_err(|e| invalid(where_(), format!("not JSON: {e}")))?;
        if let Some(object) = value.as_object_mut() {
            object
                .entry("ts")
                .or_insert(Value::from(crate::time::format_ts(options.ts)));
            object
                .entry("principal")
                .or_insert(Value::from(options.actor.clone()));
        }
        let line = value.to_string();
        match parser.parse(line.as_bytes()) {
            Ok(Some(crate::format::jsonl::Canonical::Permission(change))) => {
                let mut undo = value.clone();
                let flipped = match change.action {
                    ChangeAction::Grant => "REVOKE",
                    ChangeAction::Revoke => "GRANT",
                };
                undo["action"] = Value::from(flipped);
                if let Some(object) = undo.as_object_mut() {
                    object.remove("statement");
                }
                out.push(Proposed {
                    change,
                    future_only: false,
                    implied: false,
                    undo: Some(undo.to_string()),
                });
            }
            Ok(_) => {
                return Err(invalid(
                    where_(),
                    "not a permission change (a canonical change has a `grantee`)",
                ));
            }
            Err(e) => return Err(invalid(where_(), e.to_string())),
        }
    }
    Ok(out)
}

/// The bucket an S3 document is about: `--object`, else the one its statements' `Resource`
/// ARNs name.
fn bucket_of(document: &Value, options: &ProposalOptions) -> Result<String, ProposalError> {
    if let Some(object) = &options.object {
        return Ok(object
            .trim_start_matches("s3://")
            .trim_end_matches('/')
            .to_string());
    }
    let mut buckets: Vec<String> = Vec::new();
    let statements = match document.get("Statement") {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(one) => vec![one],
        None => Vec::new(),
    };
    for statement in statements {
        let resources = match statement.get("Resource") {
            Some(Value::String(one)) => vec![one.as_str()],
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        for arn in resources {
            if let Some(rest) = arn.strip_prefix("arn:aws:s3:::") {
                let bucket = rest.split('/').next().unwrap_or(rest).to_string();
                if !bucket.is_empty() && !buckets.contains(&bucket) {
                    buckets.push(bucket);
                }
            }
        }
    }
    match buckets.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(invalid(
            "the bucket",
            "the document names no bucket: give it with --object BUCKET",
        )),
        _ => Err(invalid(
            "the bucket",
            format!(
                "the policy names several buckets ({}): give one with --object BUCKET",
                buckets.join(", ")
            ),
        )),
    }
}

fn s3_policy(document: &Value, options: &ProposalOptions) -> Result<Vec<Proposed>, ProposalError> {
    let bucket = bucket_of(document, options)?;
    let statement = Some(format!("PutBucketPolicy on {bucket}"));
    Ok(cloudtrail::bucket_policy_changes(document)
        .into_iter()
        .map(|(action, grantee, privilege)| Proposed {
            change: change(options, action, &bucket, &grantee, &privilege, statement.clone()),
            future_only: false,
            implied: action == ChangeAction::Revoke,
            undo: Some(format!(
                "aws s3api delete-bucket-policy --bucket {bucket} (or put back the policy it replaced)"
            )),
        })
        .collect())
}

/// An ACL as CloudTrail logs its request (`x-amz-acl`, `AccessControlPolicy`), from the
/// shapes users write: a canned ACL name, or `put-bucket-acl`'s `{"Grants": [...]}`.
pub(crate) fn acl_request(document: &Value) -> Value {
    match document {
        Value::String(canned) => serde_json::json!({ "x-amz-acl": canned }),
        Value::Object(map) if map.contains_key("Grants") => serde_json::json!({
            "AccessControlPolicy": { "AccessControlList": { "Grant": map["Grants"].clone() } }
        }),
        other => other.clone(),
    }
}

fn s3_acl(document: &Value, options: &ProposalOptions) -> Result<Vec<Proposed>, ProposalError> {
    let Some(bucket) = options.object.clone() else {
        return Err(invalid(
            "the bucket",
            "an ACL does not name its bucket: give it with --object BUCKET",
        ));
    };
    let bucket = bucket
        .trim_start_matches("s3://")
        .trim_end_matches('/')
        .to_string();
    let statement = Some(format!("PutBucketAcl on {bucket}"));
    Ok(cloudtrail::acl_changes(&acl_request(document))
        .into_iter()
        .map(|(action, group, permission)| Proposed {
            change: change(
                options,
                action,
                &bucket,
                group,
                &permission,
                statement.clone(),
            ),
            future_only: false,
            implied: action == ChangeAction::Revoke,
            undo: Some(format!(
                "aws s3api put-bucket-acl --bucket {bucket} --acl private"
            )),
        })
        .collect())
}

/// A Google Cloud object from a resource as users name it: `projects/P/datasets/D[/tables/T]`,
/// `projects/_/buckets/B`, `gs://B`, or already `P.D[.T]` / `B`.
pub(crate) fn gcp_object(resource: &str) -> String {
    if let Some(bucket) = resource.strip_prefix("gs://") {
        return bucket.trim_end_matches('/').to_string();
    }
    if let Some(bucket) = resource.strip_prefix("b/") {
        return bucket.to_string();
    }
    gcp::object_name(resource).unwrap_or_else(|| resource.to_string())
}

fn gcp_iam(document: &Value, options: &ProposalOptions) -> Result<Vec<Proposed>, ProposalError> {
    let Some(resource) = options.object.as_deref() else {
        return Err(invalid(
            "the resource",
            "an IAM policy does not name its resource: give it with --object (P.D, \
             projects/P/datasets/D, gs://BUCKET)",
        ));
    };
    let object = gcp_object(resource);
    let deltas: Vec<Value> = match document {
        Value::Array(list) => list.clone(),
        _ => match document.get("bindingDeltas").and_then(Value::as_array) {
            Some(list) => list.clone(),
            None => gcp::policy_bindings_as_deltas(document),
        },
    };
    let statement = Some(format!("setIamPolicy on {resource}"));
    Ok(gcp::binding_delta_changes(&deltas)
        .into_iter()
        .map(|(action, grantee, role)| {
            let flipped = if action == ChangeAction::Grant {
                "REMOVE"
            } else {
                "ADD"
            };
            let member = deltas
                .iter()
                .filter_map(|d| d.get("member").and_then(Value::as_str))
                .find(|m| gcp::member_name(m) == grantee)
                .unwrap_or(&grantee)
                .to_string();
            let undo = if object.contains('.') {
                serde_json::json!({"bindingDeltas": [{"action": flipped, "role": role, "member": member}]})
                    .to_string()
            } else {
                format!(
                    "gcloud storage buckets {}-iam-policy-binding gs://{object} --member={member} --role={role}",
                    if flipped == "REMOVE" { "remove" } else { "add" }
                )
            };
            Proposed {
                change: change(options, action, &object, &grantee, &role, statement.clone()),
                future_only: false,
                implied: false,
                undo: Some(undo),
            }
        })
        .collect())
}

fn unity_catalog(
    document: &Value,
    options: &ProposalOptions,
) -> Result<Vec<Proposed>, ProposalError> {
    let named = ["securable_full_name", "full_name"]
        .iter()
        .find_map(|k| document.get(*k).and_then(Value::as_str));
    let Some(object) = options.object.as_deref().or(named) else {
        return Err(invalid(
            "the securable",
            "the change does not name its securable: give it with --object CATALOG.SCHEMA.TABLE",
        ));
    };
    let kind = (document.get("securable_type").and_then(Value::as_str)).unwrap_or("table");
    if !databricks::is_table_securable(kind) {
        return Ok(Vec::new());
    }
    let changes = match document.get("changes") {
        Some(Value::String(text)) => serde_json::from_str(text).unwrap_or(Value::Null),
        Some(list) => list.clone(),
        None => Value::Null,
    };
    let statement = Some(format!("updatePermissions on {kind} {object}"));
    Ok(databricks::permission_list_changes(&changes)
        .into_iter()
        .map(|(action, grantee, privilege)| {
            let key = if action == ChangeAction::Grant {
                "remove"
            } else {
                "add"
            };
            Proposed {
                change: change(
                    options,
                    action,
                    object,
                    &grantee,
                    &privilege,
                    statement.clone(),
                ),
                future_only: false,
                implied: false,
                undo: Some(
                    serde_json::json!({"changes": [{"principal": grantee, key: [privilege]}]})
                        .to_string(),
                ),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_sql(sql: &str) -> Vec<Proposed> {
        read(sql, &ProposalOptions::default()).unwrap()
    }

    #[test]
    fn sql_of_a_migration_keeps_its_grants_and_how_to_undo_them() {
        let proposed = read_sql(
            "CREATE TABLE warehouse.users.t (id int);\n\
             GRANT SELECT ON ALL TABLES IN SCHEMA warehouse.users TO PUBLIC;\n\
             grant select on warehouse.users.pii to new.hire@corp.example with grant option;",
        );
        assert_eq!(proposed.len(), 2);
        assert_eq!(proposed[0].change.object, "warehouse.users");
        assert_eq!(proposed[0].change.grantee, "PUBLIC");
        assert_eq!(
            proposed[0].undo.as_deref(),
            Some("REVOKE SELECT ON ALL TABLES IN SCHEMA warehouse.users FROM PUBLIC")
        );
        assert_eq!(proposed[1].change.grantee, "new.hire@corp.example");
        assert_eq!(
            proposed[1].undo.as_deref(),
            Some("REVOKE select on warehouse.users.pii FROM new.hire@corp.example")
        );
    }

    #[test]
    fn default_privileges_reach_future_tables_only() {
        let proposed = read_sql(
            "ALTER DEFAULT PRIVILEGES FOR ROLE etl IN SCHEMA warehouse_users GRANT SELECT ON TABLES TO PUBLIC",
        );
        assert_eq!(proposed.len(), 1);
        assert!(proposed[0].future_only);
        assert_eq!(proposed[0].change.object, "warehouse_users");
        assert_eq!(
            proposed[0].undo.as_deref(),
            Some(
                "ALTER DEFAULT PRIVILEGES FOR ROLE etl IN SCHEMA warehouse_users REVOKE SELECT ON TABLES FROM PUBLIC"
            )
        );
        let everywhere = read_sql("ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO analysts");
        assert_eq!(everywhere[0].change.object, "*");
        // Snowflake's future grants too.
        let options = ProposalOptions {
            dialect: Dialect::Snowflake,
            ..Default::default()
        };
        let proposed = read(
            "GRANT SELECT ON FUTURE TABLES IN SCHEMA prod.hr TO ROLE analyst",
            &options,
        )
        .unwrap();
        assert!(proposed[0].future_only);
        assert_eq!(proposed[0].change.object, "PROD.HR");
    }

    #[test]
    fn a_grant_it_cannot_read_is_an_error_naming_the_statement() {
        let error = read(
            "SELECT 1; GRANT EXECUTE ON FUNCTION f() TO x",
            &ProposalOptions::default(),
        )
        .unwrap_err();
        assert!(error.to_string().starts_with("statement 2: "), "{error}");
        let error = read("CREATE TABLE t (a int)", &ProposalOptions::default()).unwrap_err();
        assert!(matches!(error, ProposalError::Empty(_)), "{error}");
    }

    #[test]
    fn documents_are_told_apart_and_read_by_the_log_parsers() {
        let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::acme-exports/*"}]}"#;
        let proposed = read(policy, &ProposalOptions::default()).unwrap();
        assert_eq!(proposed.len(), 1);
        assert_eq!(
            (
                proposed[0].change.object.as_str(),
                proposed[0].change.grantee.as_str()
            ),
            ("acme-exports", "*")
        );
        let acl = r#"{"Grants":[{"Grantee":{"Type":"Group","URI":"http://acs.amazonaws.com/groups/global/AllUsers"},"Permission":"READ"}]}"#;
        let options = ProposalOptions {
            object: Some("acme-exports".into()),
            ..Default::default()
        };
        let proposed = read(acl, &options).unwrap();
        let grants: Vec<_> = proposed.iter().filter(|p| !p.implied).collect();
        assert_eq!(grants.len(), 1);
        assert_eq!(grants[0].change.grantee, "allUsers");
        let iam = r#"{"bindings":[{"role":"roles/bigquery.dataViewer","members":["allAuthenticatedUsers","user:ann@corp.example"]}]}"#;
        let options = ProposalOptions {
            object: Some("projects/acme/datasets/hr".into()),
            ..Default::default()
        };
        let proposed = read(iam, &options).unwrap();
        assert_eq!(proposed.len(), 2);
        assert_eq!(proposed[0].change.object, "acme.hr");
        assert_eq!(proposed[1].change.grantee, "ann@corp.example");
        let uc = r#"{"securable_type":"schema","securable_full_name":"main.hr","changes":[{"principal":"account users","add":["SELECT"]}]}"#;
        let proposed = read(uc, &ProposalOptions::default()).unwrap();
        assert_eq!(proposed[0].change.object, "main.hr");
        assert_eq!(proposed[0].change.grantee, "account users");
        let canonical = r#"{"table":"warehouse.users.pii","action":"GRANT","grantee":"PUBLIC","privilege":"SELECT"}"#;
        let proposed = read(canonical, &ProposalOptions::default()).unwrap();
        assert_eq!(proposed[0].change.object, "warehouse.users.pii");
        assert!(proposed[0].undo.as_deref().unwrap().contains("\"REVOKE\""));
        assert!(read(r#"{"x":1}"#, &ProposalOptions::default()).is_err());
    }
}
