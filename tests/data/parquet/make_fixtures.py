#!/usr/bin/env python3
"""Makes the Parquet fixtures in this folder from sample-logs/incident.jsonl with other tools than
exposure, so that tests prove `exposure replay` reads what pyarrow and DuckDB write. Each fixture
holds the same events as the sample and must replay to the same alerts.

    pip install pyarrow duckdb   # versions used: see the fixtures' created_by metadata
    python3 tests/data/parquet/make_fixtures.py

- pyarrow_ms_plain.parquet: pyarrow; columns in another order (action, table, principal, ts, rows);
  ts timestamp[ms, tz=UTC]; plain (non-dictionary) strings; snappy; row groups of 500 rows; rows
  shuffled by up to two minutes inside the file.
- pyarrow_epoch_us_large.parquet: pyarrow; ts as int64 epoch microseconds (no logical type);
  large_string columns named user/resource/op (mapped with [input.fields]); zstd; no statistics.
- duckdb_tstz.parquet: DuckDB COPY ... TO (FORMAT parquet); ts TIMESTAMPTZ (µs); rows ordered by
  principal, i.e. far out of time order inside the row group.
- pyarrow_string_ts.parquet: pyarrow; ts as RFC 3339 strings with +01:00 offsets; string_view
  columns.
"""
import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
SAMPLE = HERE.parent.parent.parent / "sample-logs" / "incident.jsonl"


def to_dt(ts):
    if isinstance(ts, (int, float)):
        return datetime.fromtimestamp(ts / 1000, tz=timezone.utc)
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone(timezone.utc)


events = []
for line in SAMPLE.read_text().splitlines():
    r = json.loads(line)
    events.append((to_dt(r["ts"]), r["principal"], r["table"], r.get("action"), r.get("rows")))

rng = random.Random(7)

# 1. pyarrow, ms timestamps, plain strings, shuffled within two minutes, small row groups.
shuffled = sorted(events, key=lambda e: e[0] + timedelta(seconds=rng.uniform(0, 120)))
t = pa.table({
    "action": pa.array([e[3] for e in shuffled], pa.string()),
    "table": pa.array([e[2] for e in shuffled], pa.string()),
    "principal": pa.array([e[1] for e in shuffled], pa.string()),
    "ts": pa.array([e[0] for e in shuffled], pa.timestamp("ms", tz="UTC")),
    "rows": pa.array([e[4] for e in shuffled], pa.int64()),
})
pq.write_table(t, HERE / "pyarrow_ms_plain.parquet", use_dictionary=False, compression="snappy",
               row_group_size=500)

# 2. pyarrow, int64 epoch microseconds, large strings, other column names, no statistics.
t = pa.table({
    "ts": pa.array([int(e[0].timestamp() * 1_000_000) for e in events], pa.int64()),
    "user": pa.array([e[1] for e in events], pa.large_string()),
    "resource": pa.array([e[2] for e in events], pa.large_string()),
    "op": pa.array([e[3] for e in events], pa.large_string()),
})
pq.write_table(t, HERE / "pyarrow_epoch_us_large.parquet", compression="zstd", write_statistics=False)

# 3. DuckDB, TIMESTAMPTZ, ordered by principal (out of time order).
con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
con.execute("CREATE TABLE e (principal VARCHAR, ts TIMESTAMPTZ, action VARCHAR, \"table\" VARCHAR)")
con.executemany("INSERT INTO e VALUES (?, ?, ?, ?)", [(e[1], e[0], e[3], e[2]) for e in events])
con.execute(f"COPY (SELECT * FROM e ORDER BY principal, ts) TO '{HERE / 'duckdb_tstz.parquet'}' (FORMAT parquet)")

# 4. pyarrow, RFC 3339 string times with an offset, string_view columns.
plus_one = timezone(timedelta(hours=1))
t = pa.table({
    "ts": pa.array([e[0].astimezone(plus_one).isoformat(timespec="milliseconds") for e in events], pa.string_view()),
    "principal": pa.array([e[1] for e in events], pa.string_view()),
    "table": pa.array([e[2] for e in events], pa.string_view()),
    "action": pa.array([e[3] for e in events], pa.string_view()),
})
pq.write_table(t, HERE / "pyarrow_string_ts.parquet")
print("wrote 4 fixtures")
