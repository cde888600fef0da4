#!/usr/bin/env python3
"""Writes the Cloud Storage fixtures: one story, as GCS usage logs (this folder) and as Cloud
Audit Logs entries (../gcp-audit/storage/). See README.md here for the story.

Standard library only; the output is the same bytes every time:
    python3 tests/data/formats/gcs_usage/generate.py
"""
import json
import os
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
AUDIT = os.path.join(HERE, "..", "gcp-audit", "storage")
BUCKET = "acme-exports"
OBJECT = "salaries/2026-03.csv"
COLUMNS = ["time_micros", "c_ip", "c_ip_type", "c_ip_region", "cs_method", "cs_uri", "sc_status",
           "cs_bytes", "sc_bytes", "time_taken_micros", "cs_host", "cs_referer", "cs_user_agent",
           "s_request_id", "cs_operation", "cs_bucket", "cs_object"]
INTERNET = ["203.0.113.7", "203.0.113.19", "198.51.100.23", "203.0.113.44", "198.51.100.61",
            "203.0.113.88", "198.51.100.90", "203.0.113.102", "198.51.100.117", "203.0.113.130",
            "198.51.100.145", "203.0.113.201"]


def at(hms):
    h, m, s = (int(x) for x in hms.split(":"))
    return datetime(2026, 3, 18, h, m, s, tzinfo=timezone.utc)


def micros(t, extra=0):
    return int(t.timestamp()) * 1_000_000 + extra


# (time, address, method, operation, object, status, user agent, what it gives)
REQUESTS = [
    ("08:10:00", "10.20.0.5", "GET", "GET_Object", OBJECT, 200, "payroll-app/2.3", "read"),
    ("08:10:01", "10.20.0.5", "GET", "GET_Bucket", "", 200, "payroll-app/2.3", "listing"),
    ("08:40:12", "10.20.0.6", "GET", "GET_Object", OBJECT, 200, "payroll-app/2.3", "read"),
    ("09:05:30", "10.20.0.7", "HEAD", "HEAD_Object", OBJECT, 200, "gsutil/5.27", "read"),
    ("09:31:00", "10.20.0.5", "PUT", "PUT_Object", "exports/2026-03.csv", 200, "payroll-app/2.3", "write"),
    ("09:50:00", "10.20.0.5", "GET", "GET_BucketAcl", "", 200, "gsutil/5.27", "not_access"),
]
for i, address in enumerate(INTERNET):
    minute = 5 + 3 * i
    REQUESTS.append((f"10:{minute:02d}:{(7 * i) % 60:02d}", address, "GET", "GET_Object", OBJECT, 200,
                     ["curl/8.5.0", "python-requests/2.31.0", "Wget/1.21.4"][i % 3], "read"))
REQUESTS += [
    ("10:46:02", "192.0.2.44", "GET", "GET_Object", OBJECT, 403, "curl/8.5.0", "not_access"),
    ("11:30:00", "10.20.0.6", "GET", "GET_Object", OBJECT, 200, "payroll-app/2.3", "read"),
]


def quoted(values):
    return ",".join('"' + str(v).replace('"', '""') + '"' for v in values)


def row(i, request):
    hms, address, method, operation, obj, status, agent, _ = request
    t = at(hms)
    uri = f"/{BUCKET}/{obj}" if obj else f"/{BUCKET}?prefix="
    sent = {"GET_Object": 48213, "HEAD_Object": 0}.get(operation, 312)
    return quoted([micros(t, 1000 * i + 417), address, 2 if ":" in address else 1, "", method, uri,
                   status, 0 if method != "PUT" else 48213, sent if status < 400 else 187,
                   23000 + 911 * i, "storage.googleapis.com", "", agent,
                   f"ADPycdt{i:03d}x3LcKm0EXAMPLE", operation, BUCKET, obj])


def event(i, request):
    hms, address, _, operation, obj, _, _, gives = request
    if gives == "not_access":
        return "not_access"
    table = BUCKET if gives == "listing" else f"{BUCKET}/{obj.split('/')[0]}"
    ts = at(hms).strftime("%Y-%m-%dT%H:%M:%S.") + f"{i + 0:03d}Z"
    return {"ts": ts, "principal": f"address@{address}", "table": table, "read": gives == "read"}


def usage():
    header = quoted(COLUMNS)
    rows = [row(i, r) for i, r in enumerate(REQUESTS)]
    with open(os.path.join(HERE, "usage.csv"), "w") as f:
        f.write("\n".join([header] + rows) + "\n")
    with open(os.path.join(HERE, "events.expected.jsonl"), "w") as f:
        lines = ['"not_access"'] + [json.dumps(event(i, r), separators=(",", ":")) for i, r in enumerate(REQUESTS)]
        f.write("\n".join(lines) + "\n")
    # One file an hour, each with its header, named as Cloud Storage names them.
    os.makedirs(os.path.join(HERE, "logs"), exist_ok=True)
    hours = sorted({r[0][:2] for r in REQUESTS})
    for n, hour in enumerate(hours):
        name = f"{BUCKET}_usage_2026_03_18_{hour}_00_00_{0x00a1b2c3d4e5f600 + n:016x}_v0"
        rows_of_hour = [row(i, r) for i, r in enumerate(REQUESTS) if r[0][:2] == hour]
        with open(os.path.join(HERE, "logs", name), "w") as f:
            f.write("\n".join([header] + rows_of_hour) + "\n")


def audit_entry(hms, email, method, resource, ip, extra=None, log="data_access"):
    t = at(hms)
    payload = {"@type": "type.googleapis.com/google.cloud.audit.AuditLog", "status": {},
               "authenticationInfo": {"principalEmail": email},
               "requestMetadata": {"callerIp": ip, "callerSuppliedUserAgent": "gsutil/5.27"},
               "serviceName": "storage.googleapis.com", "methodName": method,
               "authorizationInfo": [{"resource": resource, "permission": "storage.objects.get",
                                      "granted": True, "resourceAttributes": {}}],
               "resourceName": resource, "resourceLocation": {"currentLocations": ["us"]}}
    payload.update(extra or {})
    return {"protoPayload": payload, "insertId": f"gcs{hms.replace(':', '')}",
            "resource": {"type": "gcs_bucket", "labels": {"bucket_name": BUCKET, "location": "us",
                                                          "project_id": "acme-prod"}},
            "timestamp": t.strftime("%Y-%m-%dT%H:%M:%S.") + "123456Z", "severity": "INFO",
            "logName": f"projects/acme-prod/logs/cloudaudit.googleapis.com%2F{log}",
            "receiveTimestamp": t.strftime("%Y-%m-%dT%H:%M:%S.") + "900000Z"}


def iam_change(hms, action):
    resource = f"projects/_/buckets/{BUCKET}"
    delta = {"action": action, "role": "roles/storage.objectViewer", "member": "allUsers"}
    return audit_entry(hms, "ops-bot@acme-prod.iam.gserviceaccount.com", "storage.setIamPermissions",
                       resource, "10.20.0.9",
                       {"serviceData": {"@type": "type.googleapis.com/google.iam.v1.logging.AuditData",
                                        "policyDelta": {"bindingDeltas": [delta]}}},
                       log="activity")


def audit():
    obj = f"projects/_/buckets/{BUCKET}/objects/{OBJECT}"
    entries = [
        audit_entry("08:10:00", "amara@acme.example", "storage.objects.get", obj, "10.20.0.5"),
        audit_entry("08:40:12", "jon@acme.example", "storage.objects.get", obj, "10.20.0.6"),
        audit_entry("09:05:30", "li@acme.example", "storage.objects.get", obj, "10.20.0.7"),
        audit_entry("09:31:00", "amara@acme.example", "storage.objects.create",
                    f"projects/_/buckets/{BUCKET}/objects/exports/2026-03.csv", "10.20.0.5"),
        audit_entry("09:45:00", "jon@acme.example", "storage.objects.list",
                    f"projects/_/buckets/{BUCKET}", "10.20.0.6"),
        iam_change("10:02:07", "ADD"),
        iam_change("10:44:30", "REMOVE"),
        audit_entry("10:50:00", "intern@acme.example", "storage.objects.get", obj, "10.20.0.12",
                    {"status": {"code": 7, "message": "PERMISSION_DENIED"}}),
        audit_entry("13:30:00", "jon@acme.example", "storage.objects.get", obj, "10.20.0.6"),
    ]
    os.makedirs(AUDIT, exist_ok=True)
    with open(os.path.join(AUDIT, "records.jsonl"), "w") as f:
        f.write("\n".join(json.dumps(e, separators=(",", ":")) for e in entries) + "\n")
    # What each entry gives: the audit log names who read (and writes need no address).
    def ts(hms):
        return f"2026-03-18T{hms}.123Z"
    def read(hms, who, table=f"{BUCKET}/salaries", is_read=True):
        return {"ts": ts(hms), "principal": who, "table": table, "read": is_read}
    def change(hms, action):
        return {"ts": ts(hms), "action": action, "actor": "ops-bot@acme-prod.iam.gserviceaccount.com",
                "object": BUCKET, "grantee": "allUsers", "privilege": "roles/storage.objectViewer",
                "statement": None}
    expected = [read("08:10:00", "amara@acme.example"), read("08:40:12", "jon@acme.example"),
                read("09:05:30", "li@acme.example"),
                read("09:31:00", "amara@acme.example", f"{BUCKET}/exports", False),
                read("09:45:00", "jon@acme.example", BUCKET, False),
                change("10:02:07", "GRANT"), change("10:44:30", "REVOKE"), "not_access",
                read("13:30:00", "jon@acme.example")]
    with open(os.path.join(AUDIT, "records.expected.jsonl"), "w") as f:
        f.write("\n".join(json.dumps(e, separators=(",", ":")) for e in expected) + "\n")


usage()
audit()
