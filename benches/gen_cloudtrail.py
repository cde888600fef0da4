"""Writes N CloudTrail records, one JSON object per line (the two fixture records, an S3 data
read and a management event, alternating, half a second apart), to stdout, for timing
`exposure replay --format cloudtrail`:

    python3 benches/gen_cloudtrail.py 200000 > /tmp/ct200k.jsonl
    /usr/bin/time -f '%e s, %M KB peak RSS' target/release/exposure replay --format cloudtrail /tmp/ct200k.jsonl > /dev/null
"""
import datetime
import json
import pathlib
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
fixture = pathlib.Path(__file__).parent.parent / 'tests/data/formats/cloudtrail/records.jsonl'
records = [json.loads(line) for line in fixture.read_text().splitlines() if line.strip()]
base = datetime.datetime(2026, 3, 18, 10, 0, 0)
out = sys.stdout
for i in range(n):
    record = dict(records[i % len(records)])
    record['eventTime'] = (base + datetime.timedelta(seconds=i * 0.5)).strftime('%Y-%m-%dT%H:%M:%SZ')
    out.write(json.dumps(record) + '\n')
