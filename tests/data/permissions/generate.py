#!/usr/bin/env python3
"""Writes the permission-change fixtures: for each vendor, in its documented shape, the same story.

Day 0 (2026-03-02): three regular readers read the sensitive table and the logs table.
Day 8, 09:00: a grant to one new hire on another table, who then reads it alone: no alert.
Day 9, 10:00: read granted to everyone on the sensitive table's container; 10:05-10:20 four
people who never read it do; 11:00 the grant is reverted.
Day 9, 14:00-14:15: four new readers of the logs table, with no permission change before: a
window with no cause.

Standard library only; the output is the same bytes every time:
    python3 tests/data/permissions/generate.py
"""
import json
import os
from datetime import datetime, timedelta, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
BASE = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
REGULAR = ["alice", "bruno", "chen"]
NEW = ["dana", "eli", "fay", "gus"]
LATE = ["hal", "ivy", "jon", "kim"]


def story():
    """(time, kind, who, table) with kind read | hire_grant | grant | revoke."""
    out = []
    for i, who in enumerate(REGULAR):
        out.append((BASE + timedelta(minutes=10 * i), "read", who, "sensitive"))
        out.append((BASE + timedelta(minutes=10 * i + 1), "read", who, "logs"))
        out.append((BASE + timedelta(minutes=10 * i + 2), "read", who, "other"))
    day8 = BASE + timedelta(days=8)
    out.append((day8, "hire_grant", "admin", "other"))
    out.append((day8 + timedelta(minutes=5), "read", "newhire", "other"))
    day9 = BASE + timedelta(days=9, hours=1)
    out.append((day9, "grant", "admin", "sensitive"))
    for i, who in enumerate(NEW):
        out.append((day9 + timedelta(minutes=5 + 5 * i), "read", who, "sensitive"))
    out.append((day9 + timedelta(hours=1), "revoke", "admin", "sensitive"))
    for i, who in enumerate(LATE):
        out.append((day9 + timedelta(hours=4, minutes=5 * i), "read", who, "logs"))
    # A regular reader, after everything: time moves on.
    out.append((day9 + timedelta(days=1), "read", "alice", "sensitive"))
    return out


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def cloudtrail(t, kind, who, table):
    bucket = {"sensitive": "acme-hr", "logs": "acme-logs", "other": "acme-fin"}[table]
    def identity(name):
        return {"type": "IAMUser", "principalId": "AIDA" + name.upper(), "accountId": "111122223333",
                "arn": f"arn:aws:iam::111122223333:user/{name}", "userName": name}
    record = {"eventVersion": "1.09", "eventTime": iso(t).replace(".000Z", "Z"),
              "eventSource": "s3.amazonaws.com", "awsRegion": "us-east-1",
              "sourceIPAddress": "203.0.113.7", "userAgent": "[aws-cli/2.15.0]",
              "userIdentity": identity(who), "eventID": f"{abs(hash((t.isoformat(), who))) % 10**12:012d}",
              "recipientAccountId": "111122223333"}
    if kind == "read":
        record.update({"eventName": "GetObject", "eventCategory": "Data", "managementEvent": False,
                       "readOnly": True, "eventType": "AwsApiCall",
                       "requestParameters": {"bucketName": bucket, "Host": f"{bucket}.s3.us-east-1.amazonaws.com",
                                             "key": "current/part-00000.parquet"},
                       "resources": [{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/current/part-00000.parquet"},
                                     {"accountId": "111122223333", "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}]})
        return record
    record.update({"eventCategory": "Management", "managementEvent": True, "readOnly": False,
                   "eventType": "AwsApiCall",
                   "userIdentity": {"type": "AssumedRole", "principalId": "AROAADMIN:admin",
                                    "arn": "arn:aws:sts::111122223333:assumed-role/Admin/admin",
                                    "accountId": "111122223333",
                                    "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAADMIN",
                                                                         "arn": "arn:aws:iam::111122223333:role/Admin",
                                                                         "accountId": "111122223333", "userName": "Admin"}}},
                   "resources": [{"accountId": "111122223333", "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}]})
    if kind == "revoke":
        record.update({"eventName": "DeleteBucketPolicy",
                       "requestParameters": {"bucketName": bucket, "Host": f"{bucket}.s3.amazonaws.com", "policy": ""}})
        return record
    principal = "*" if kind == "grant" else {"AWS": "arn:aws:iam::111122223333:user/newhire"}
    policy = {"Version": "2012-10-17", "Statement": [{"Sid": "Read", "Effect": "Allow", "Principal": principal,
                                                     "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                                                     "Resource": f"arn:aws:s3:::{bucket}/*"}]}
    record.update({"eventName": "PutBucketPolicy",
                   "requestParameters": {"bucketName": bucket, "Host": f"{bucket}.s3.amazonaws.com",
                                         "bucketPolicy": policy, "policy": ""}})
    return record


def cloudtrail_iam(t, kind, who, table):
    """The same story where read is given through IAM, not a bucket policy: the four newcomers
    are sessions of role Support, to which AmazonS3ReadOnlyAccess is attached at 10:00 and
    detached at 11:00; the new hire's read comes from an inline user policy."""
    if kind == "read":
        record = cloudtrail(t, kind, who, table)
        if who in NEW:
            record["userIdentity"] = {
                "type": "AssumedRole", "principalId": f"AROASUPPORT:{who}",
                "arn": f"arn:aws:sts::111122223333:assumed-role/Support/{who}", "accountId": "111122223333",
                "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROASUPPORT",
                                                     "arn": "arn:aws:iam::111122223333:role/Support",
                                                     "accountId": "111122223333", "userName": "Support"}}}
        return record
    record = cloudtrail(t, "grant", who, table)
    for key in ("resources", "requestParameters"):
        record.pop(key)
    record.update({"eventSource": "iam.amazonaws.com", "awsRegion": "us-east-1", "responseElements": None})
    if kind == "hire_grant":
        policy = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"],
             "Resource": ["arn:aws:s3:::acme-fin", "arn:aws:s3:::acme-fin/*"]}]}
        record.update({"eventName": "PutUserPolicy",
                       "requestParameters": {"userName": "newhire", "policyName": "fin-read",
                                             "policyDocument": json.dumps(policy)}})
        return record
    record.update({"eventName": "AttachRolePolicy" if kind == "grant" else "DetachRolePolicy",
                   "requestParameters": {"roleName": "Support",
                                         "policyArn": "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"}})
    return record


def gcp(t, kind, who, table):
    dataset = {"sensitive": "hr", "logs": "logs", "other": "fin"}[table]
    name = {"sensitive": "salaries", "logs": "events", "other": "ledger"}[table]
    entry = {"insertId": f"{abs(hash((t.isoformat(), who, kind))) % 10**10:010d}",
             "resource": {"type": "bigquery_dataset", "labels": {"project_id": "acme", "dataset_id": dataset}},
             "timestamp": iso(t).replace("Z", "000Z"), "severity": "INFO",
             "receiveTimestamp": iso(t + timedelta(seconds=2)).replace("Z", "000Z")}
    if kind == "read":
        entry["logName"] = "projects/acme/logs/cloudaudit.googleapis.com%2Fdata_access"
        entry["protoPayload"] = {"@type": "type.googleapis.com/google.cloud.audit.AuditLog", "status": {},
                                 "authenticationInfo": {"principalEmail": f"{who}@acme.example"},
                                 "requestMetadata": {"callerIp": "203.0.113.7"},
                                 "serviceName": "bigquery.googleapis.com",
                                 "methodName": "google.cloud.bigquery.v2.TableDataService.List",
                                 "authorizationInfo": [{"resource": f"projects/acme/datasets/{dataset}/tables/{name}",
                                                        "permission": "bigquery.tables.getData", "granted": True}],
                                 "resourceName": f"projects/acme/datasets/{dataset}/tables/{name}",
                                 "metadata": {"@type": "type.googleapis.com/google.cloud.audit.BigQueryAuditMetadata",
                                              "tableDataRead": {"reason": "TABLEDATA_LIST_REQUEST"}}}
        return entry
    resource = (f"projects/acme/datasets/{dataset}" if kind in ("grant", "revoke")
                else f"projects/acme/datasets/{dataset}/tables/{name}")
    member = "allAuthenticatedUsers" if kind in ("grant", "revoke") else "user:newhire@acme.example"
    action = "REMOVE" if kind == "revoke" else "ADD"
    entry["logName"] = "projects/acme/logs/cloudaudit.googleapis.com%2Factivity"
    entry["severity"] = "NOTICE"
    entry["protoPayload"] = {"@type": "type.googleapis.com/google.cloud.audit.AuditLog", "status": {},
                             "authenticationInfo": {"principalEmail": "admin@acme.example"},
                             "serviceName": "bigquery.googleapis.com",
                             "methodName": "google.iam.v1.IAMPolicy.SetIamPolicy",
                             "resourceName": resource,
                             "request": {"@type": "type.googleapis.com/google.iam.v1.SetIamPolicyRequest",
                                         "resource": resource,
                                         "policy": {"bindings": [] if action == "REMOVE" else
                                                    [{"role": "roles/bigquery.dataViewer", "members": [member]}],
                                                    "etag": "BwXhqDZ9C3k="}},
                             "response": {"@type": "type.googleapis.com/google.iam.v1.Policy", "etag": "BwXhqDZ9C3l="},
                             "serviceData": {"@type": "type.googleapis.com/google.iam.v1.logging.AuditData",
                                             "policyDelta": {"bindingDeltas": [
                                                 {"action": action, "role": "roles/bigquery.dataViewer", "member": member}]}}}
    return entry


def snowflake_time(t):
    local = t.astimezone(timezone(timedelta(hours=-7)))
    return local.strftime("%Y-%m-%d %H:%M:%S.") + f"{local.microsecond // 1000:03d} -0700"


def snowflake(t, kind, who, table):
    name = {"sensitive": "PROD.HR.SALARIES", "logs": "PROD.LOGS.EVENTS", "other": "PROD.FIN.LEDGER"}[table]
    qid = f"01b2{abs(hash((t.isoformat(), who, kind))) % 10**12:012d}"
    if kind == "read":
        objects = [{"objectDomain": "Table", "objectId": 4242, "objectName": name,
                    "columns": [{"columnId": 1, "columnName": "AMOUNT"}]}]
        return {"QUERY_ID": qid, "QUERY_START_TIME": snowflake_time(t), "USER_NAME": who.upper(),
                "DIRECT_OBJECTS_ACCESSED": objects, "BASE_OBJECTS_ACCESSED": objects,
                "OBJECTS_MODIFIED": [], "POLICIES_REFERENCED": []}
    schema = ".".join(name.split(".")[:2])
    text = {"grant": f"grant select on all tables in schema {schema.lower()} to role public",
            "revoke": f"revoke select on all tables in schema {schema.lower()} from role public",
            "hire_grant": "GRANT SELECT ON TABLE LEDGER TO ROLE NEWHIRE_ROLE"}[kind]
    return {"QUERY_ID": qid, "QUERY_TEXT": text, "DATABASE_NAME": "PROD", "SCHEMA_NAME": name.split(".")[1],
            "QUERY_TYPE": "REVOKE" if kind == "revoke" else "GRANT", "USER_NAME": "SECADMIN",
            "ROLE_NAME": "SECURITYADMIN", "WAREHOUSE_NAME": None, "EXECUTION_STATUS": "SUCCESS",
            "START_TIME": snowflake_time(t - timedelta(milliseconds=180)), "END_TIME": snowflake_time(t)}


def databricks(t, kind, who, table):
    name = {"sensitive": "main.hr.salaries", "logs": "main.logs.events", "other": "main.fin.ledger"}[table]
    entry = {"version": "2.0", "timestamp": int(t.timestamp() * 1000), "workspaceId": "1234567890123456",
             "serviceName": "unityCatalog", "sourceIPAddress": "203.0.113.7",
             "userAgent": "Databricks-Runtime/14.3.x-scala2.12",
             "requestId": f"{abs(hash((t.isoformat(), who, kind))) % 10**12:012d}",
             "response": {"statusCode": 200, "errorMessage": None, "result": None}}
    if kind == "read":
        entry.update({"actionName": "getTable", "userIdentity": {"email": f"{who}@acme.example"},
                      "requestParams": {"full_name_arg": name, "workspace_id": "1234567890123456",
                                        "metastore_id": "abc-123"}})
        return entry
    if kind == "hire_grant":
        securable, changes = ("table", name), [{"principal": "newhire@acme.example", "add": ["SELECT"]}]
    else:
        schema = ".".join(name.split(".")[:2])
        verb = "remove" if kind == "revoke" else "add"
        securable, changes = ("schema", schema), [{"principal": "account users", verb: ["SELECT", "USE_SCHEMA"]}]
    entry.update({"actionName": "updatePermissions", "userIdentity": {"email": "admin@acme.example"},
                  "requestParams": {"securable_type": securable[0], "securable_full_name": securable[1],
                                    "changes": json.dumps(changes), "workspace_id": "1234567890123456",
                                    "metastore_id": "abc-123"}})
    return entry


def main():
    events = story()
    for vendor, shape in [("cloudtrail", cloudtrail), ("gcp-audit", gcp), ("snowflake", snowflake),
                          ("databricks", databricks), ("cloudtrail-iam", cloudtrail_iam)]:
        # hash() of strings is salted per process: ids from a fixed counter instead.
        lines = []
        for i, (t, kind, who, table) in enumerate(events):
            record = shape(t, kind, who, table)
            for key in ("eventID", "insertId", "QUERY_ID", "requestId"):
                if key in record:
                    record[key] = f"{vendor[:2]}-{i:04d}"
            lines.append(json.dumps(record, separators=(",", ":")))
        with open(os.path.join(HERE, f"{vendor}.jsonl"), "w") as f:
            f.write("\n".join(lines) + "\n")


main()
