//! Grant snapshots (`--grants FILE`): who *can* read, as the systems export it, not only the
//! changes the logs show. A snapshot seeds the permission ledger with the grants and role
//! memberships standing when it was taken, so that causes and `could_read` work for grants
//! made before the logs begin. Read here, in the shapes of docs/inputs.md "Grant snapshots":
//!
//! - PostgreSQL `information_schema.role_table_grants` as CSV (`psql --csv`), and the
//!   documented `pg_auth_members` query's `role,member` CSV;
//! - Snowflake `ACCOUNT_USAGE.GRANTS_TO_ROLES` and `GRANTS_TO_USERS` exports (CSV, with their
//!   `CREATED_ON`/`DELETED_ON` times: a deleted grant is a grant and its revoke);
//! - an S3 bucket policy (`aws s3api get-bucket-policy`'s `Policy` document);
//! - a Cloud Storage or BigQuery IAM policy (`get-iam-policy --format=json`), which does not
//!   say what it is on: written `RESOURCE=FILE` (`projects/_/buckets/NAME=policy.json`,
//!   `gs://NAME=…`, `projects/P/datasets/D=…`).
//!
//! Objects and grantees are named as the same system's logs name them, so a snapshot's grant
//! and a logged change on the same thing are one pair.

use crate::event::{ChangeAction, MEMBER, PermissionChange};
use crate::format::csv::{Headed, headed};
use crate::time::Ts;
use serde_json::Value;
use std::path::Path;

/// A snapshot that cannot be read: which file, which line, what.
#[derive(Debug, thiserror::Error)]
pub enum GrantsError {
    #[error("--grants {file}: {error}")]
    Read {
        file: String,
        #[source]
        error: std::io::Error,
    },
    #[error("--grants {file}:{line}: {message}")]
    Invalid {
        file: String,
        line: u64,
        message: String,
    },
}

/// The changes of the snapshot `spec` (`FILE`, or `RESOURCE=FILE` for an IAM policy), taken
/// at `taken` (rows with their own time keep it).
pub fn read(spec: &str, taken: Ts) -> Result<Vec<PermissionChange>, GrantsError> {
    let (resource, path) = match spec.split_once('=') {
        Some((resource, path)) if !Path::new(spec).exists() => (Some(resource), path),
        _ => (None, spec),
    };
    let text = std::fs::read_to_string(path).map_err(|error| GrantsError::Read {
        file: path.to_string(),
        error,
    })?;
    let snapshot = Snapshot {
        file: path,
        actor: format!(
            "grant snapshot {}",
            Path::new(path)
                .file_name()
                .map_or(path.into(), |n| n.to_string_lossy())
        ),
        taken,
    };
    let text = text.trim_start_matches('\u{feff}');
    if text.trim_start().starts_with('{') {
        snapshot.policy(text, resource)
    } else {
        snapshot.csv(text)
    }
}

struct Snapshot<'a> {
    file: &'a str,
    actor: String,
    taken: Ts,
}

/// The CSV exports this reads, by the columns that tell them apart.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Shape {
    PostgresTableGrants,
    PostgresMembers,
    SnowflakeRoles,
    SnowflakeUsers,
}

impl Snapshot<'_> {
    fn invalid(&self, line: u64, message: impl Into<String>) -> GrantsError {
        GrantsError::Invalid {
            file: self.file.to_string(),
            line,
            message: message.into(),
        }
    }

    fn change(
        &self,
        ts: Ts,
        action: ChangeAction,
        object: String,
        grantee: String,
        privilege: String,
    ) -> PermissionChange {
        PermissionChange {
            ts,
            action,
            object,
            grantee,
            privilege,
            actor: self.actor.clone(),
            statement: None,
        }
    }

    fn csv(&self, text: &str) -> Result<Vec<PermissionChange>, GrantsError> {
        let table = headed(text).map_err(|(line, e)| self.invalid(line, e))?;
        let columns = &table.columns;
        let has = |names: &[&str]| names.iter().all(|n| columns.iter().any(|c| c == n));
        let shape = if has(&["grantee", "table_schema", "table_name", "privilege_type"]) {
            Shape::PostgresTableGrants
        } else if has(&["privilege", "granted_on", "name", "grantee_name"]) {
            Shape::SnowflakeRoles
        } else if has(&["role", "grantee_name"]) {
            Shape::SnowflakeUsers
        } else if has(&["role", "member"]) {
            Shape::PostgresMembers
        } else {
            return Err(self.invalid(
                1,
                format!(
                    "columns {columns:?} are none of the snapshots read (PostgreSQL \
                     role_table_grants or role,member; Snowflake GRANTS_TO_ROLES or \
                     GRANTS_TO_USERS; see docs/inputs.md)"
                ),
            ));
        };
        let mut out = Vec::new();
        for &(number, line) in &table.records {
            let fields = table.fields(line).map_err(|e| self.invalid(number, e))?;
            let row = Row {
                table: &table,
                fields,
            };
            let required = |name: &str| -> Result<String, GrantsError> {
                match row.field(name) {
                    "" => Err(self.invalid(number, format!("no {name}"))),
                    value => Ok(value.to_string()),
                }
            };
            match shape {
                Shape::PostgresTableGrants => {
                    let object =
                        format!("{}.{}", required("table_schema")?, required("table_name")?);
                    out.push(self.change(
                        self.taken,
                        ChangeAction::Grant,
                        object,
                        required("grantee")?.to_string(),
                        required("privilege_type")?.to_ascii_uppercase(),
                    ));
                }
                Shape::PostgresMembers => out.push(self.change(
                    self.taken,
                    ChangeAction::Grant,
                    required("role")?.to_string(),
                    required("member")?.to_string(),
                    MEMBER.to_string(),
                )),
                Shape::SnowflakeRoles => {
                    let name = required("name")?;
                    let granted_on = required("granted_on")?.to_ascii_uppercase();
                    let (object, privilege) = match granted_on.as_str() {
                        // A role granted to a role: membership.
                        "ROLE" => (name.to_string(), MEMBER.to_string()),
                        "TABLE" | "VIEW" | "MATERIALIZED_VIEW" | "EXTERNAL_TABLE" => (
                            format!(
                                "{}.{}.{name}",
                                required("table_catalog")?,
                                required("table_schema")?
                            ),
                            required("privilege")?.to_ascii_uppercase(),
                        ),
                        "SCHEMA" => (
                            format!("{}.{name}", required("table_catalog")?),
                            required("privilege")?.to_ascii_uppercase(),
                        ),
                        "DATABASE" => (
                            name.to_string(),
                            required("privilege")?.to_ascii_uppercase(),
                        ),
                        _ => continue,
                    };
                    let grantee = required("grantee_name")?.to_string();
                    self.timed(&mut out, number, &row, (object, grantee, privilege))?;
                }
                Shape::SnowflakeUsers => {
                    let object = required("role")?.to_string();
                    let grantee = required("grantee_name")?.to_string();
                    let grant = (object, grantee, MEMBER.to_string());
                    self.timed(&mut out, number, &row, grant)?;
                }
            }
        }
        Ok(out)
    }

    /// A Snowflake row: granted at `CREATED_ON` (or when the snapshot was taken), and revoked
    /// at `DELETED_ON` when it has one.
    fn timed(
        &self,
        out: &mut Vec<PermissionChange>,
        line: u64,
        row: &Row<'_>,
        (object, grantee, privilege): (String, String, String),
    ) -> Result<(), GrantsError> {
        let time = |name: &str| -> Result<Option<Ts>, GrantsError> {
            match row.field(name) {
                "" => Ok(None),
                text => snowflake_time(text)
                    .map(Some)
                    .ok_or_else(|| self.invalid(line, format!("{name} {text:?} is not a time"))),
            }
        };
        let created = time("created_on")?.unwrap_or(self.taken);
        let deleted = time("deleted_on")?;
        let grant = self.change(created, ChangeAction::Grant, object, grantee, privilege);
        if let Some(deleted) = deleted {
            let mut revoke = grant.clone();
            revoke.ts = deleted;
            revoke.action = ChangeAction::Revoke;
            out.push(grant);
            out.push(revoke);
        } else {
            out.push(grant);
        }
        Ok(())
    }

    fn policy(
        &self,
        text: &str,
        resource: Option<&str>,
    ) -> Result<Vec<PermissionChange>, GrantsError> {
        let policy: Value = serde_json::from_str(text).map_err(|e| GrantsError::Invalid {
            file: self.file.to_string(),
            line: e.line() as u64,
            message: format!("not valid JSON: {e}"),
        })?;
        // `get-bucket-policy` wraps the document as a string in `Policy`.
        let policy = match policy.get("Policy").and_then(Value::as_str) {
            Some(inner) => serde_json::from_str(inner)
                .map_err(|e| self.invalid(1, format!("Policy is not a JSON document: {e}")))?,
            None => policy,
        };
        if policy.get("Statement").is_some() {
            let bucket = match resource {
                Some(bucket) => bucket.trim_start_matches("s3://").to_string(),
                None => bucket_of(&policy).ok_or_else(|| {
                    self.invalid(
                        1,
                        "no statement names an arn:aws:s3::: resource: write BUCKET=FILE",
                    )
                })?,
            };
            let grants = crate::format::cloudtrail::policy_read_grants(&policy);
            return Ok(grants
                .into_iter()
                .map(|(principal, action)| {
                    self.change(
                        self.taken,
                        ChangeAction::Grant,
                        bucket.clone(),
                        principal,
                        action,
                    )
                })
                .collect());
        }
        let Some(bindings) = policy.get("bindings").and_then(Value::as_array) else {
            return Err(self.invalid(
                1,
                "neither an S3 bucket policy (Statement) nor an IAM policy (bindings)",
            ));
        };
        let Some(resource) = resource else {
            return Err(self.invalid(
                1,
                "an IAM policy does not say what it is on: write \
                 --grants projects/_/buckets/NAME=FILE (or gs://NAME=FILE, \
                 projects/P/datasets/D=FILE)",
            ));
        };
        let resource = match resource.strip_prefix("gs://") {
            Some(bucket) => format!("projects/_/buckets/{}", bucket.trim_end_matches('/')),
            None => resource.to_string(),
        };
        let object = crate::format::gcp::object_name(&resource).ok_or_else(|| {
            self.invalid(1, format!("{resource:?} names no bucket, dataset or table"))
        })?;
        let mut out = Vec::new();
        for binding in bindings {
            let role = binding.get("role").and_then(Value::as_str).unwrap_or("");
            let members = binding.get("members").and_then(Value::as_array);
            for member in members.into_iter().flatten().filter_map(Value::as_str) {
                out.push(self.change(
                    self.taken,
                    ChangeAction::Grant,
                    object.clone(),
                    crate::format::gcp::member_name(member).to_string(),
                    role.to_string(),
                ));
            }
        }
        Ok(out)
    }
}

/// One CSV row, its fields found by column name.
struct Row<'a> {
    table: &'a Headed<'a>,
    fields: Vec<std::borrow::Cow<'a, str>>,
}

impl Row<'_> {
    /// The field of column `name` (lowercase), trimmed; "" when absent.
    fn field(&self, name: &str) -> &str {
        self.table.field(&self.fields, name)
    }
}

/// The bucket a bucket policy's statements are on (`arn:aws:s3:::BUCKET` or `…/KEY`).
fn bucket_of(policy: &Value) -> Option<String> {
    let statements = match policy.get("Statement")? {
        Value::Array(list) => list.iter().collect(),
        one => vec![one],
    };
    statements.into_iter().find_map(|s| {
        let resources = match s.get("Resource")? {
            Value::String(r) => vec![r.as_str()],
            Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        resources.into_iter().find_map(|r| {
            let rest = r.strip_prefix("arn:aws:s3:::")?;
            let bucket = rest.split('/').next()?;
            (!bucket.is_empty() && !bucket.contains('*')).then(|| bucket.to_string())
        })
    })
}

/// A Snowflake export's time: `2024-01-05 10:11:12.345 -0800`, RFC 3339, or either without a
/// zone (UTC).
fn snowflake_time(text: &str) -> Option<Ts> {
    let text = text.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_micros());
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f %z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(t) = chrono::DateTime::parse_from_str(text, format) {
            return Some(t.timestamp_micros());
        }
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return Some(t.and_utc().timestamp_micros());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    }

    fn pairs(changes: &[PermissionChange]) -> Vec<String> {
        changes
            .iter()
            .map(|c| {
                format!(
                    "{} {} {} {} {}",
                    c.action.as_str(),
                    c.object,
                    c.grantee,
                    c.privilege,
                    crate::time::format_ts(c.ts)
                )
            })
            .collect()
    }

    #[test]
    fn each_export_shape_is_read_as_the_same_system_logs_name_things() {
        let dir = tempfile::tempdir().unwrap();
        let taken = 1_700_000_000_000_000;
        let pg = write(
            &dir,
            "pg.csv",
            "grantor,grantee,table_catalog,table_schema,table_name,privilege_type,is_grantable,with_hierarchy\n\
             postgres,analysts,shop,public,salaries,SELECT,NO,YES\n\
             postgres,PUBLIC,shop,public,menu,SELECT,NO,YES\n",
        );
        assert_eq!(
            pairs(&read(&pg, taken).unwrap()),
            [
                "GRANT public.salaries analysts SELECT 2023-11-14T22:13:20.000Z",
                "GRANT public.menu PUBLIC SELECT 2023-11-14T22:13:20.000Z",
            ]
        );
        let members = write(&dir, "members.csv", "role,member\nanalysts,\"ann\"\n");
        assert_eq!(
            pairs(&read(&members, taken).unwrap()),
            ["GRANT analysts ann MEMBER 2023-11-14T22:13:20.000Z"]
        );
        let roles = write(
            &dir,
            "roles.csv",
            "CREATED_ON,MODIFIED_ON,PRIVILEGE,GRANTED_ON,NAME,TABLE_CATALOG,TABLE_SCHEMA,GRANTED_TO,GRANTEE_NAME,GRANT_OPTION,GRANTED_BY,DELETED_ON\n\
             2026-01-05 10:11:12.345 -0800,,SELECT,TABLE,PAYROLL,PROD,HR,ROLE,ANALYST,false,SECURITYADMIN,\n\
             2026-01-06 00:00:00.000 +0000,,USAGE,ROLE,ANALYST,,,ROLE,SUPPORT,false,SECURITYADMIN,2026-02-01 00:00:00.000 +0000\n\
             2026-01-06 00:00:00.000 +0000,,USAGE,WAREHOUSE,WH,,,ROLE,SUPPORT,false,SECURITYADMIN,\n",
        );
        assert_eq!(
            pairs(&read(&roles, taken).unwrap()),
            [
                "GRANT PROD.HR.PAYROLL ANALYST SELECT 2026-01-05T18:11:12.345Z",
                "GRANT ANALYST SUPPORT MEMBER 2026-01-06T00:00:00.000Z",
                "REVOKE ANALYST SUPPORT MEMBER 2026-02-01T00:00:00.000Z",
            ]
        );
        let users = write(
            &dir,
            "users.csv",
            "CREATED_ON,DELETED_ON,ROLE,GRANTED_TO,GRANTEE_NAME,GRANTED_BY\n\
             2026-01-07 09:00:00.000 +0000,,ANALYST,USER,JDOE,USERADMIN\n",
        );
        assert_eq!(
            pairs(&read(&users, taken).unwrap()),
            ["GRANT ANALYST JDOE MEMBER 2026-01-07T09:00:00.000Z"]
        );
        let bucket = write(
            &dir,
            "bucket.json",
            r#"{"Policy":"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"s3:GetObject\",\"Resource\":\"arn:aws:s3:::acme-exports/*\"},{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"arn:aws:iam::111122223333:root\"},\"Action\":[\"s3:PutObject\"],\"Resource\":\"arn:aws:s3:::acme-exports/*\"}]}"}"#,
        );
        assert_eq!(
            pairs(&read(&bucket, taken).unwrap()),
            ["GRANT acme-exports * s3:GetObject 2023-11-14T22:13:20.000Z"]
        );
        let iam = write(
            &dir,
            "iam.json",
            r#"{"bindings":[{"role":"roles/storage.objectViewer","members":["allUsers","user:ann@acme.example"]}],"etag":"CAE="}"#,
        );
        assert_eq!(
            pairs(&read(&format!("gs://acme-exports={iam}"), taken).unwrap()),
            [
                "GRANT acme-exports allUsers roles/storage.objectViewer 2023-11-14T22:13:20.000Z",
                "GRANT acme-exports ann@acme.example roles/storage.objectViewer 2023-11-14T22:13:20.000Z",
            ]
        );
    }

    #[test]
    fn what_cannot_be_read_says_which_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let iam = write(&dir, "iam.json", r#"{"bindings":[]}"#);
        let error = read(&iam, 0).unwrap_err().to_string();
        assert!(
            error.contains("iam.json:1: an IAM policy does not say"),
            "{error}"
        );
        let odd = write(&dir, "odd.csv", "a,b\n1,2\n");
        let error = read(&odd, 0).unwrap_err().to_string();
        assert!(error.contains("odd.csv:1: columns"), "{error}");
        let bad = write(
            &dir,
            "users.csv",
            "CREATED_ON,DELETED_ON,ROLE,GRANTEE_NAME\nyesterday,,ANALYST,JDOE\n",
        );
        let error = read(&bad, 0).unwrap_err().to_string();
        assert!(
            error.contains("users.csv:2: created_on \"yesterday\" is not a time"),
            "{error}"
        );
        let error = read("/nonexistent/grants.csv", 0).unwrap_err().to_string();
        assert!(
            error.starts_with("--grants /nonexistent/grants.csv: "),
            "{error}"
        );
    }
}
