//! IAM calls that let a user, role or group read S3 (CloudTrail management events of
//! `iam.amazonaws.com`), as permission changes of that principal on **every table** (object
//! `*`, the container of all: an identity policy is not tied to a bucket) or on the buckets an
//! inline policy names:
//!
//! - `AttachUserPolicy` / `AttachRolePolicy` / `AttachGroupPolicy` of an AWS managed policy that
//!   reads S3 — `AmazonS3ReadOnlyAccess` (`s3:GetObject`), `AmazonS3FullAccess` (`s3:*`),
//!   `ReadOnlyAccess` (`s3:Get*`), `AdministratorAccess` and `PowerUserAccess` (`*`) — grant it;
//!   the matching `Detach…Policy` revokes it. A customer managed policy's text is not in the
//!   record: it changes nothing known.
//! - `PutUserPolicy` / `PutRolePolicy` / `PutGroupPolicy`: each `Allow` statement whose actions
//!   read S3 (`s3:GetObject`, `s3:GetObjectVersion`, `s3:Get*`, `s3:*`, `*`) grants them on its
//!   resources: `*` or `arn:aws:s3:::*` (or a bucket name with a wildcard) is every table,
//!   `arn:aws:s3:::B` and `arn:aws:s3:::B/…` the bucket `B`. Statements with `NotAction` are
//!   skipped, conditions ignored. `Delete…Policy` names the policy, not what it granted:
//!   nothing known is revoked.
//! - `AddUserToGroup` / `RemoveUserFromGroup`: the user's membership of the group, so that a
//!   group's grant covers its members.
//!
//! Grantees are ARNs as CloudTrail names principals: `arn:aws:iam::ACCOUNT:user/NAME`,
//! `…:role/NAME` (covering its sessions), `…:group/NAME`, the account being the record's
//! `recipientAccountId` (else the caller's).

use super::{ParseError, Value, allowed_reads, at, string, strings};
use crate::event::{ChangeAction, EVERY_TABLE, MEMBER, PermissionChange};
use crate::format::vendor::{Item, NotAccess};

/// Whether `name` is an IAM call read here.
pub fn is_permission_call(name: &str) -> bool {
    kind(name).is_some()
}

/// What an IAM call does, and to which kind of principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Attach,
    Detach,
    PutInline,
    DeleteInline,
    AddMember,
    RemoveMember,
}

fn kind(name: &str) -> Option<(Call, &'static str)> {
    match name {
        "AddUserToGroup" => return Some((Call::AddMember, "group")),
        "RemoveUserFromGroup" => return Some((Call::RemoveMember, "group")),
        _ => {}
    }
    let (call, rest) = [
        ("Attach", Call::Attach),
        ("Detach", Call::Detach),
        ("Put", Call::PutInline),
        ("Delete", Call::DeleteInline),
    ]
    .into_iter()
    .find_map(|(verb, call)| name.strip_prefix(verb).map(|rest| (call, rest)))?;
    let principal = match rest {
        "UserPolicy" => "user",
        "RolePolicy" => "role",
        "GroupPolicy" => "group",
        _ => return None,
    };
    Some((call, principal))
}

/// The S3 read an AWS managed policy gives, by the policy's name.
fn managed_policy_read(policy_arn: &str) -> Option<&'static str> {
    let name = policy_arn.strip_prefix("arn:aws:iam::aws:policy/")?;
    match name.rsplit('/').next()? {
        "AmazonS3ReadOnlyAccess" => Some("s3:GetObject"),
        "AmazonS3FullAccess" => Some("s3:*"),
        "ReadOnlyAccess" => Some("s3:Get*"),
        "AdministratorAccess" | "PowerUserAccess" => Some("*"),
        _ => None,
    }
}

/// (object, read action) of each `Allow` statement of an identity policy that reads S3.
fn inline_policy_reads(policy: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (statement, action) in allowed_reads(policy) {
        for resource in strings(statement.get("Resource")) {
            let object = match resource.strip_prefix("arn:aws:s3:::") {
                _ if resource == "*" => EVERY_TABLE,
                Some(path) => match path.split('/').next().unwrap_or("") {
                    bucket if bucket.is_empty() || bucket.contains(['*', '?']) => EVERY_TABLE,
                    bucket => bucket,
                },
                None => continue,
            };
            let entry = (object.to_string(), action.to_string());
            if !out.contains(&entry) {
                out.push(entry);
            }
        }
    }
    out
}

/// A policy document as CloudTrail logs it: JSON text (URL-encoded in some records) or JSON.
fn policy_document(value: Option<&Value>) -> Value {
    match value {
        Some(Value::String(text)) => {
            let decoded;
            let text = if text.trim_start().starts_with('%') {
                decoded = percent_decode(text);
                decoded.as_str()
            } else {
                text.as_str()
            };
            serde_json::from_str(text).unwrap_or(Value::Null)
        }
        Some(policy) => policy.clone(),
        None => Value::Null,
    }
}

/// `%7B%22…` → `{"…`; a `%` not followed by two hex digits is kept.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The permission changes of IAM call `name` (see the module's doc); `actor` made it.
pub fn permission_changes(
    r: &Value,
    ts: crate::time::Ts,
    name: &str,
    actor: String,
    out: &mut Vec<Item>,
) -> Result<(), ParseError> {
    let Some((call, kind)) = self::kind(name) else {
        out.push(Item::NotAccess(NotAccess::OtherPermission));
        return Ok(());
    };
    let unattributable = |what: &str| ParseError::Unattributable {
        message: format!("iam {name} with no {what}"),
    };
    let account = string(r, &["recipientAccountId", "userIdentity.accountId"])
        .ok_or_else(|| unattributable("recipientAccountId"))?;
    let field = format!("requestParameters.{kind}Name");
    let principal_name = string(r, &[field.as_str()]).ok_or_else(|| unattributable(&field))?;
    let grantee = format!("arn:aws:iam::{account}:{kind}/{principal_name}");
    let statement = r
        .get("requestParameters")
        .map(|p| crate::time::clip(&p.to_string(), 2000));
    let change = |action, object: String, grantee: String, privilege: &str| {
        Item::Permission(PermissionChange {
            ts,
            action,
            object,
            grantee,
            privilege: privilege.to_string(),
            actor: actor.clone(),
            statement: statement.clone(),
        })
    };
    let before = out.len();
    match call {
        Call::Attach | Call::Detach => {
            let read = string(r, &["requestParameters.policyArn"]).and_then(managed_policy_read);
            if let Some(read) = read {
                let action = match call {
                    Call::Attach => ChangeAction::Grant,
                    _ => ChangeAction::Revoke,
                };
                out.push(change(action, EVERY_TABLE.to_string(), grantee, read));
            }
        }
        Call::PutInline => {
            let policy = policy_document(at(r, "requestParameters.policyDocument"));
            for (object, read) in inline_policy_reads(&policy) {
                out.push(change(ChangeAction::Grant, object, grantee.clone(), &read));
            }
        }
        Call::DeleteInline => {}
        Call::AddMember | Call::RemoveMember => {
            let user = string(r, &["requestParameters.userName"])
                .ok_or_else(|| unattributable("requestParameters.userName"))?;
            let member = format!("arn:aws:iam::{account}:user/{user}");
            let action = match call {
                Call::AddMember => ChangeAction::Grant,
                _ => ChangeAction::Revoke,
            };
            out.push(change(action, grantee, member, MEMBER));
        }
    }
    if out.len() == before {
        out.push(Item::NotAccess(NotAccess::OtherPermission));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(name: &str, parameters: Value) -> Vec<Item> {
        let r = json!({
            "eventVersion": "1.09", "eventTime": "2026-03-18T10:00:00Z",
            "eventSource": "iam.amazonaws.com", "eventName": name,
            "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/admin",
                             "accountId": "111122223333"},
            "recipientAccountId": "111122223333",
            "requestParameters": parameters, "eventCategory": "Management"
        });
        let mut out = Vec::new();
        permission_changes(&r, 0, name, "admin".into(), &mut out).unwrap();
        out
    }

    fn changes(items: &[Item]) -> Vec<(ChangeAction, &str, &str, &str)> {
        (items.iter())
            .filter_map(|i| match i {
                Item::Permission(c) => Some((
                    c.action,
                    c.object.as_str(),
                    c.grantee.as_str(),
                    c.privilege.as_str(),
                )),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn managed_policies_that_read_s3_are_grants_on_every_table_and_detaching_revokes() {
        let attach = call(
            "AttachRolePolicy",
            json!({"roleName": "Analyst", "policyArn": "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"}),
        );
        assert_eq!(
            changes(&attach),
            [(
                ChangeAction::Grant,
                "*",
                "arn:aws:iam::111122223333:role/Analyst",
                "s3:GetObject"
            )]
        );
        let detach = call(
            "DetachUserPolicy",
            json!({"userName": "bob", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}),
        );
        assert_eq!(
            changes(&detach),
            [(
                ChangeAction::Revoke,
                "*",
                "arn:aws:iam::111122223333:user/bob",
                "*"
            )]
        );
        // A policy that does not read S3, or whose text is not in the record: nothing known.
        for arn in [
            "arn:aws:iam::aws:policy/AmazonEC2ReadOnlyAccess",
            "arn:aws:iam::111122223333:policy/custom",
        ] {
            let items = call(
                "AttachUserPolicy",
                json!({"userName": "bob", "policyArn": arn}),
            );
            assert_eq!(items, [Item::NotAccess(NotAccess::OtherPermission)]);
        }
    }

    #[test]
    fn inline_policies_grant_what_their_statements_allow_where_they_allow_it() {
        let policy = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"],
             "Resource": ["arn:aws:s3:::lake/*", "arn:aws:s3:::lake"]},
            {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::logs-*"},
            {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "*"},
            {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"},
            {"Effect": "Allow", "Action": "ec2:*", "Resource": "*"}
        ]});
        // Logged as JSON text, or URL-encoded text.
        let text = policy.to_string();
        let encoded: String = text
            .bytes()
            .map(|b| match b {
                b'{' | b'}' | b'"' | b':' | b',' | b'[' | b']' => format!("%{b:02X}"),
                b => (b as char).to_string(),
            })
            .collect();
        for document in [json!(text), json!(encoded)] {
            let items = call(
                "PutUserPolicy",
                json!({"userName": "carol", "policyName": "lake-read", "policyDocument": document}),
            );
            let carol = "arn:aws:iam::111122223333:user/carol";
            assert_eq!(
                changes(&items),
                [
                    (ChangeAction::Grant, "lake", carol, "s3:GetObject"),
                    (ChangeAction::Grant, "*", carol, "s3:*"),
                ]
            );
        }
        let deleted = call(
            "DeleteUserPolicy",
            json!({"userName": "carol", "policyName": "lake-read"}),
        );
        assert_eq!(deleted, [Item::NotAccess(NotAccess::OtherPermission)]);
    }

    #[test]
    fn group_membership_is_read_so_that_a_group_grant_covers_its_members() {
        let added = call(
            "AddUserToGroup",
            json!({"groupName": "analysts", "userName": "dave"}),
        );
        assert_eq!(
            changes(&added),
            [(
                ChangeAction::Grant,
                "arn:aws:iam::111122223333:group/analysts",
                "arn:aws:iam::111122223333:user/dave",
                MEMBER
            )]
        );
    }
}
