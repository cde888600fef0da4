"""Writes the vendor-format fixtures in this folder (run from here: python3 make_fixtures.py).

The record shapes follow the vendors' documented samples (see README.md); names, accounts and
addresses are made up (example domains, documentation IP ranges)."""
import gzip
import json
import os


def w(path, lines):
    with open(path, 'w') as f:
        for l in lines:
            f.write(json.dumps(l, separators=(',', ':')) + '\n')


def w_raw(path, lines):
    with open(path, 'w') as f:
        for l in lines:
            f.write(l + '\n')


# ---- CloudTrail
assumed = {"type": "AssumedRole", "principalId": "AROAEXAMPLEID:alice", "arn": "arn:aws:sts::123456789012:assumed-role/Analyst/alice", "accountId": "123456789012", "accessKeyId": "ASIAEXAMPLE", "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLEID", "arn": "arn:aws:iam::123456789012:role/Analyst", "accountId": "123456789012", "userName": "Analyst"}, "attributes": {"creationDate": "2026-03-18T09:00:00Z", "mfaAuthenticated": "false"}}}
iam = {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": "arn:aws:iam::123456789012:user/bob", "accountId": "123456789012", "accessKeyId": "AKIAEXAMPLE", "userName": "bob"}


def s3(t, name, ident, key, ro, extra=None):
    r = {"eventVersion": "1.09", "userIdentity": ident, "eventTime": t, "eventSource": "s3.amazonaws.com", "eventName": name, "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.10", "userAgent": "[aws-cli/2.15.0]", "requestParameters": {"bucketName": "hr-exports", "Host": "hr-exports.s3.us-east-1.amazonaws.com", "key": key}, "responseElements": None, "requestID": "EXAMPLE", "eventID": "e-" + t, "readOnly": ro, "resources": [{"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::hr-exports/" + key}, {"accountId": "123456789012", "type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::hr-exports"}], "eventType": "AwsApiCall", "managementEvent": False, "recipientAccountId": "123456789012", "eventCategory": "Data"}
    if extra:
        r.update(extra)
    return r


mgmt = {"eventVersion": "1.09", "userIdentity": iam, "eventTime": "2026-03-18T10:00:03Z", "eventSource": "s3.amazonaws.com", "eventName": "ListBuckets", "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.11", "requestParameters": {"Host": "s3.amazonaws.com"}, "responseElements": None, "eventID": "m-1", "readOnly": True, "eventType": "AwsApiCall", "managementEvent": True, "recipientAccountId": "123456789012", "eventCategory": "Management"}
trail = {"Records": [
    s3("2026-03-18T10:00:00Z", "GetObject", assumed, "salaries/2026-03.csv", True),
    s3("2026-03-18T10:00:01Z", "PutObject", iam, "salaries/2026-04.csv", False),
    s3("2026-03-18T10:00:02Z", "GetObject", iam, "salaries/2026-03.csv", True, {"errorCode": "AccessDenied", "errorMessage": "Access Denied"}),
    mgmt]}
os.makedirs('cloudtrail', exist_ok=True)
with open('cloudtrail/123456789012_CloudTrail_us-east-1_20260318T1005Z_EXAMPLE.json.gz', 'wb') as raw:
    with gzip.GzipFile(fileobj=raw, mode='wb', mtime=0) as f:
        f.write(json.dumps(trail, separators=(',', ':')).encode())
w('cloudtrail/expected.jsonl', [
    {"ts": "2026-03-18T10:00:00.000Z", "principal": "arn:aws:iam::123456789012:role/Analyst/alice", "table": "hr-exports/salaries", "read": True},
    {"ts": "2026-03-18T10:00:01.000Z", "principal": "arn:aws:iam::123456789012:user/bob", "table": "hr-exports/salaries", "read": False},
    "not_access", "not_access"])
w('cloudtrail/records.jsonl', [s3("2026-03-18T10:01:00Z", "GetObject", assumed, "salaries/2026-03.csv", True), mgmt])
w('cloudtrail/records.expected.jsonl', [
    {"ts": "2026-03-18T10:01:00.000Z", "principal": "arn:aws:iam::123456789012:role/Analyst/alice", "table": "hr-exports/salaries", "read": True},
    "not_access"])

# ---- GCP audit (BigQuery data access)
os.makedirs('gcp-audit', exist_ok=True)


def entry(t, email, meta, resource="projects/acme/datasets/hr/tables/salaries", method="google.cloud.bigquery.v2.JobService.InsertJob"):
    return {"protoPayload": {"@type": "type.googleapis.com/google.cloud.audit.AuditLog", "status": {}, "authenticationInfo": {"principalEmail": email}, "requestMetadata": {"callerIp": "203.0.113.20"}, "serviceName": "bigquery.googleapis.com", "methodName": method, "resourceName": resource, "metadata": meta}, "insertId": "x" + t, "resource": {"type": "bigquery_dataset", "labels": {"dataset_id": "hr", "project_id": "acme"}}, "timestamp": t, "severity": "INFO", "logName": "projects/acme/logs/cloudaudit.googleapis.com%2Fdata_access", "receiveTimestamp": t}


meta = "type.googleapis.com/google.cloud.audit.BigQueryAuditMetadata"
read = {"@type": meta, "tableDataRead": {"fields": ["name", "salary"], "reason": "JOB", "jobName": "projects/acme/jobs/bquxjob_1"}}
change = {"@type": meta, "tableDataChange": {"insertedRowsCount": "10", "reason": "QUERY"}}
job = {"@type": meta, "jobChange": {"after": "DONE", "job": {"jobName": "projects/acme/jobs/bquxjob_2", "jobConfig": {"type": "QUERY", "queryConfig": {"query": "SELECT * FROM hr.salaries JOIN hr.people USING (id)"}}, "jobStatus": {"jobState": "DONE"}, "jobStats": {"queryStats": {"referencedTables": ["projects/acme/datasets/hr/tables/salaries", "projects/acme/datasets/hr/tables/people"]}}}}}
other = {"@type": meta, "datasetChange": {}}
w('gcp-audit/data_access.jsonl', [
    entry("2026-03-18T10:00:00.123456Z", "alice@acme.example", read, method="google.cloud.bigquery.v2.TableDataService.List"),
    entry("2026-03-18T10:00:01Z", "etl@acme.iam.gserviceaccount.com", change),
    entry("2026-03-18T10:00:02Z", "bob@acme.example", job, resource="projects/acme/jobs/bquxjob_2"),
    entry("2026-03-18T10:00:03Z", "carol@acme.example", other, resource="projects/acme/datasets/hr"),
])
w('gcp-audit/expected.jsonl', [
    {"ts": "2026-03-18T10:00:00.123Z", "principal": "alice@acme.example", "table": "acme.hr.salaries", "read": True, "columns": ["name", "salary"]},
    {"ts": "2026-03-18T10:00:01.000Z", "principal": "etl@acme.iam.gserviceaccount.com", "table": "acme.hr.salaries", "read": False},
    {"ts": "2026-03-18T10:00:02.000Z", "principal": "bob@acme.example", "table": "acme.hr.salaries", "read": True},
    {"ts": "2026-03-18T10:00:02.000Z", "principal": "bob@acme.example", "table": "acme.hr.people", "read": True},
    "not_access"])

# ---- Snowflake ACCESS_HISTORY
os.makedirs('snowflake', exist_ok=True)


def obj(name, domain="Table"):
    return {"objectDomain": domain, "objectId": 1, "objectName": name, "columns": [{"columnId": 1, "columnName": "SALARY"}]}


w('snowflake/access_history.jsonl', [
    {"QUERY_ID": "01b2-0001", "QUERY_START_TIME": "2026-03-18 10:00:00.000 +0000", "USER_NAME": "ALICE", "DIRECT_OBJECTS_ACCESSED": [obj("HR.PUBLIC.SALARIES_V", "View")], "BASE_OBJECTS_ACCESSED": [obj("HR.PUBLIC.SALARIES"), obj("HR.PUBLIC.PEOPLE")], "OBJECTS_MODIFIED": []},
    {"query_id": "01b2-0002", "query_start_time": "2026-03-18T10:00:05.250-07:00", "user_name": "BOB", "direct_objects_accessed": "[{\"objectDomain\":\"Table\",\"objectName\":\"HR.PUBLIC.SALARIES\"}]", "base_objects_accessed": "[{\"objectDomain\":\"Table\",\"objectName\":\"HR.PUBLIC.SALARIES\"}]", "objects_modified": "[]"},
    {"QUERY_ID": "01b2-0003", "QUERY_START_TIME": "2026-03-18 10:00:06.000 +0000", "USER_NAME": "CAROL", "BASE_OBJECTS_ACCESSED": [{"objectDomain": "Stage", "objectName": "HR.PUBLIC.EXPORT_STAGE"}], "OBJECTS_MODIFIED": []},
])
w('snowflake/expected.jsonl', [
    {"ts": "2026-03-18T10:00:00.000Z", "principal": "ALICE", "table": "HR.PUBLIC.SALARIES", "read": True, "columns": ["SALARY"]},
    {"ts": "2026-03-18T10:00:00.000Z", "principal": "ALICE", "table": "HR.PUBLIC.PEOPLE", "read": True, "columns": ["SALARY"]},
    {"ts": "2026-03-18T17:00:05.250Z", "principal": "BOB", "table": "HR.PUBLIC.SALARIES", "read": True},
    "not_access"])

# ---- Databricks audit
os.makedirs('databricks', exist_ok=True)
w('databricks/audit.jsonl', [
    {"version": "2.0", "auditLevel": "ACCOUNT_LEVEL", "timestamp": 1773828000000, "orgId": "1234", "shardName": "acme", "accountId": "acc-1", "sourceIPAddress": "203.0.113.30", "userAgent": "Databricks-Runtime/15.4", "sessionId": None, "userIdentity": {"email": "alice@acme.example"}, "serviceName": "unityCatalog", "actionName": "generateTemporaryTableCredential", "requestId": "r1", "requestParams": {"table_full_name": "main.hr.salaries", "table_id": "t-1", "operation": "READ"}, "response": {"statusCode": 200, "errorMessage": None, "result": None}, "MAX_LOG_MESSAGE_LENGTH": 16384},
    {"version": "2.0", "timestamp": 1773828001000, "userIdentity": {"email": "bob@acme.example"}, "serviceName": "unityCatalog", "actionName": "getTable", "requestParams": {"full_name_arg": "main.hr.salaries"}, "response": {"statusCode": 403, "errorMessage": "PERMISSION_DENIED"}},
    {"version": "2.0", "timestamp": 1773828002000, "userIdentity": {"email": "carol@acme.example"}, "serviceName": "clusters", "actionName": "start", "requestParams": {"cluster_id": "c-1"}, "response": {"statusCode": 200}},
    {"event_time": "2026-03-18T10:00:03.000Z", "user_identity": {"email": "dave@acme.example"}, "service_name": "unityCatalog", "action_name": "getTable", "request_params": {"full_name_arg": "main.hr.salaries"}, "response": {"status_code": 200}},
    {"event_time": "2026-03-18T10:00:04.000Z", "user_identity": {"email": "etl@acme.example"}, "service_name": "unityCatalog", "action_name": "generateTemporaryTableCredential", "request_params": "{\"table_full_name\":\"main.hr.salaries\",\"operation\":\"READ_WRITE\"}", "response": {"status_code": 200}},
])
w('databricks/expected.jsonl', [
    {"ts": "2026-03-18T10:00:00.000Z", "principal": "alice@acme.example", "table": "main.hr.salaries", "read": True},
    "not_access", "not_access",
    {"ts": "2026-03-18T10:00:03.000Z", "principal": "dave@acme.example", "table": "main.hr.salaries", "read": True},
    {"ts": "2026-03-18T10:00:04.000Z", "principal": "etl@acme.example", "table": "main.hr.salaries", "read": False},
])

# ---- pgaudit (stderr layout; csvlog is covered by unit tests and the real-server test)
os.makedirs('pgaudit', exist_ok=True)
open('pgaudit/postgresql.log', 'w').write(
    "2026-03-18 10:00:00.000 UTC [101] alice@hr LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.salaries,\"SELECT name,\n\tsalary FROM salaries\",<not logged>\n"
    "2026-03-18 10:00:01.000 UTC [102] bob@hr LOG:  connection authorized: user=bob database=hr\n"
    "2026-03-18 10:00:02.500 UTC [103] carol@hr LOG:  AUDIT: SESSION,1,1,WRITE,INSERT,TABLE,public.salaries,\"INSERT INTO salaries VALUES ('x', 1)\",<not logged>\n"
    "2026-03-18 10:00:03.000 UTC [104] dave@hr LOG:  AUDIT: SESSION,2,1,READ,SELECT,TABLE,public.people,select * from people,<not logged>\n")
w('pgaudit/expected.jsonl', [
    {"ts": "2026-03-18T10:00:00.000Z", "principal": "alice", "table": "public.salaries", "read": True},
    "not_access",
    {"ts": "2026-03-18T10:00:02.500Z", "principal": "carol", "table": "public.salaries", "read": False},
    {"ts": "2026-03-18T10:00:03.000Z", "principal": "dave", "table": "public.people", "read": True},
])

# ---- malformed input, per format: every line must be reported (never a panic)
malformed = {
    'cloudtrail': ['{"Records":"nope"}', '{"eventVersion":"1.09","eventSource":"s3.amazonaws.com"}', '{"eventTime":"yesterday","eventCategory":"Data"}', '{"eventTime":"2026-03-18T10:00:00Z","eventCategory":"Data","readOnly":true,"requestParameters":{"bucketName":"b"}}', '{"Records":[', '[1,2]'],
    'gcp-audit': ['{"protoPayload":{"metadata":{"tableDataRead":{}}},"timestamp":"2026-03-18T10:00:00Z"}', '{"protoPayload":{"metadata":{"tableDataRead":{}},"resourceName":"projects/a/datasets/b/tables/c"},"timestamp":"2026-03-18T10:00:00Z"}', '{"protoPayload":{"metadata":{}},"timestamp":"not a time"}', '{"protoPayload":', '"string"'],
    'snowflake': ['{"QUERY_START_TIME":"2026-03-18 10:00:00"}', '{"QUERY_START_TIME":"soon","USER_NAME":"A"}', '{"QUERY_START_TIME":"2026-03-18 10:00:00","USER_NAME":"A","BASE_OBJECTS_ACCESSED":"[{"}', '{"QUERY_START_TIME":'],
    'databricks': ['{"serviceName":"unityCatalog","actionName":"getTable"}', '{"timestamp":"never","serviceName":"unityCatalog","actionName":"getTable"}', '{"timestamp":1773828000000,"serviceName":"unityCatalog","actionName":"getTable","requestParams":{"full_name_arg":"t"}}', '{"timestamp":'],
    'pgaudit': ['not a log line', '2026-03-18 10:00:00.000 UTC [1] alice@hr LOG:  AUDIT: SESSION,1', '2026-03-18 10:00:00.000 XYZ [1] alice@hr LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.t,select,<none>', '2026-03-18 10:00:00.000 UTC [1] @hr LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.t,select,<none>'],
}
for fmt, lines in malformed.items():
    w_raw(f'{fmt}/malformed.txt', lines)
