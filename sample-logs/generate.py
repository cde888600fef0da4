#!/usr/bin/env python3
"""Generates sample-logs/incident.jsonl: two weeks of data-access logs with one exposure incident.

Deterministic (fixed seed): running it again gives the same bytes. Writes the ground truth to
sample-logs/incident.truth.json. Usage: python3 sample-logs/generate.py
"""
import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
rng = random.Random(20260316)
UTC = timezone.utc
START = datetime(2026, 3, 4, tzinfo=UTC)  # a Wednesday
END = datetime(2026, 3, 18, tzinfo=UTC)

FIRST = "amira ben carlos dana elif femi greta hiro ines jonas kemal lena mateo noor oskar priya quinn rosa sami tara umar vera wen xavi yara zane".split()
LAST = "adams baker chen diaz evans fox garcia hughes ito jones khan lopez moreau novak ortiz park quinn reyes singh tanaka ueda vargas weber xu young zhou".split()


def person(i):
    # Unique for i < 676: (i % 26, i // 26) never repeats.
    return f"{FIRST[i % 26]}.{LAST[(i // 26 * 5 + i) % 26]}@corp.example"


TABLES = {
    "warehouse.users.pii": ([person(i) for i in range(0, 12)], ["svc-crm-sync@corp.example", "svc-support-tool@corp.example"]),
    "warehouse.users.payment_methods": ([person(i) for i in range(10, 18)], ["svc-billing@corp.example"]),
    "warehouse.hr.salaries": ([person(i) for i in range(20, 26)], ["svc-payroll@corp.example"]),
    "warehouse.finance.ledger": ([person(i) for i in range(30, 40)], ["svc-finance-etl@corp.example"]),
    "analytics.sessions_daily": ([person(i) for i in range(40, 60)], ["svc-dashboards@corp.example"]),
}
ENGINEERS = [person(i) for i in range(100, 140)]  # 40 engineers who never read users.pii

events = []


def add(ts, principal, table, action, **extra):
    events.append((ts, principal, table, action, extra))


def ms(ts):
    return ts.replace(microsecond=(ts.microsecond // 1000) * 1000)


# Normal work: humans on weekdays in office hours, services hourly around the clock.
day = START
while day < END:
    weekday = day.weekday() < 5
    for table, (humans, services) in TABLES.items():
        for svc in services:
            for hour in range(24):
                ts = day + timedelta(hours=hour, minutes=rng.randint(0, 4), seconds=rng.random() * 60)
                add(ms(ts), svc, table, "SELECT", rows=rng.randint(100, 50000))
        if not weekday:
            continue
        for human in humans:
            if day != START and rng.random() < 0.15:
                continue  # a day off
            for _ in range(rng.randint(1, 5)):
                ts = day + timedelta(hours=8 + rng.random() * 9.5)
                add(ms(ts), human, table, rng.choice(["SELECT", "SELECT", "SELECT", "select", "EXPORT"]),
                    rows=rng.randint(1, 2000), query_id=f"q{rng.getrandbits(40):010x}")
    # Loads by the ETL accounts: writes never count as reads.
    for table, (_, services) in TABLES.items():
        ts = day + timedelta(hours=3, seconds=rng.random() * 600)
        add(ms(ts), services[0], table, "INSERT", rows=rng.randint(1000, 90000))
    day += timedelta(days=1)

# Noise that must not alert.
# 1. A new hire on the finance team: reads the ledger every weekday from 2026-03-12 on.
for d in [12, 13, 16, 17]:
    for k in range(3):
        add(datetime(2026, 3, d, 10, 15, tzinfo=UTC) + timedelta(minutes=97 * k), "nina.newman@corp.example",
            "warehouse.finance.ledger", "SELECT", rows=40)
# 2. Two newcomers to users.pii within one hour (below min_principals = 3).
add(datetime(2026, 3, 13, 11, 5, 12, 331000, tzinfo=UTC), "omar.farouk@corp.example", "warehouse.users.pii", "SELECT")
add(datetime(2026, 3, 13, 11, 41, 2, 5000, tzinfo=UTC), "paula.sousa@corp.example", "warehouse.users.pii", "SELECT")
add(datetime(2026, 3, 13, 15, 20, tzinfo=UTC), "omar.farouk@corp.example", "warehouse.users.pii", "SELECT")
# 3. Writes by three new service accounts during a backfill: writes never open a window.
for k, svc in enumerate(["svc-backfill@corp.example", "svc-migrate@corp.example", "svc-dq-checks@corp.example"]):
    for j in range(20):
        add(datetime(2026, 3, 15, 2, 0, tzinfo=UTC) + timedelta(minutes=k * 3 + j), svc, "warehouse.hr.salaries",
            rng.choice(["INSERT", "UPDATE", "MERGE"]), rows=rng.randint(1, 500))

# The incident: a permission change lets 40 engineers read warehouse.users.pii for about two hours.
incident_start = datetime(2026, 3, 16, 14, 2, 11, 512000, tzinfo=UTC)
fix = datetime(2026, 3, 16, 16, 4, tzinfo=UTC)
last_read = datetime(2026, 3, 16, 15, 58, 47, 90000, tzinfo=UTC)
incident = []
for i, eng in enumerate(ENGINEERS):
    first = incident_start if i == 0 else ms(incident_start + timedelta(seconds=rng.uniform(30, 100 * 60)))
    incident.append((first, eng))
    for _ in range(rng.randint(0, 3)):
        incident.append((ms(first + timedelta(seconds=rng.uniform(5, (last_read - first).total_seconds() - 1))), eng))
incident.append((last_read, ENGINEERS[7]))
for ts, eng in incident:
    add(ts, eng, "warehouse.users.pii", rng.choice(["SELECT", "SELECT", "EXPORT"]), rows=rng.randint(1, 100000),
        client="ai-assistant-notebook")

events.sort(key=lambda e: (e[0], e[2], e[1], e[3]))
# Shippers deliver slightly out of order: swap some neighbours less than a minute apart.
for i in range(1, len(events)):
    if rng.random() < 0.05 and (events[i][0] - events[i - 1][0]) < timedelta(seconds=60):
        events[i - 1], events[i] = events[i], events[i - 1]


def render_ts(ts, principal):
    if principal.startswith("svc-") and rng.random() < 0.5:
        return int(ts.timestamp() * 1000)  # some shippers write epoch milliseconds
    if rng.random() < 0.1:
        return ts.astimezone(timezone(timedelta(hours=1))).isoformat(timespec="milliseconds")
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


with open(HERE / "incident.jsonl", "w") as out:
    for ts, principal, table, action, extra in events:
        record = {"ts": render_ts(ts, principal), "principal": principal, "table": table, "action": action}
        record.update(extra)
        out.write(json.dumps(record, separators=(",", ":")) + "\n")

truth = {
    "table": "warehouse.users.pii",
    "window_start": incident_start.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
    "window_end": last_read.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
    "fix_at": fix.strftime("%Y-%m-%dT%H:%M:%SZ"),
    "principals": sorted(ENGINEERS),
    "events": len(events),
}
(HERE / "incident.truth.json").write_text(json.dumps(truth, indent=2) + "\n")
print(f"wrote {len(events)} events to sample-logs/incident.jsonl")
