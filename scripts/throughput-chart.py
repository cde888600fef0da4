#!/usr/bin/env python3
"""Draws docs/throughput.svg — events per second of each replay path, from the criterion
benches' own output, beside DuckDB's best SQL on the same archive when its comparison was run.

    cargo bench --bench replay --bench parquet --bench formats
    python3 benches/duckdb_compare.py /tmp/arch20m --threads 1 --threads 2 | tee /tmp/duckdb.txt
    python3 scripts/throughput-chart.py --duckdb /tmp/duckdb.txt --out docs/throughput.svg

Every bar is a bench that ran: criterion's time per iteration (as it prints it) and the elements (events,
rows or records) it declares per iteration. The issue-19 target of each path is drawn as a
tick. Nothing is typed in by hand: a bench that did not run is not drawn.
"""
import argparse
import json
import re
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parent.parent

# (criterion id, label, target in events/s or None), drawn top to bottom.
BARS = [
    ("jsonl/replay_end_to_end_1_thread", "JSON lines: replay, 1 thread", 5e6),
    ("jsonl/replay_end_to_end_2_thread", "JSON lines: replay, 2 threads", None),
    ("jsonl/parse", "JSON lines: parse (scanner + serde_json)", None),
    ("jsonl/parse_serde_only", "JSON lines: parse (serde_json alone, before)", None),
    ("jsonl/serde_json_borrowed_struct", "JSON lines: serde_json floor", None),
    ("parquet/replay_1_thread", "Parquet: replay, 1 thread", 40e6),
    ("parquet/replay_2_thread", "Parquet: replay, 2 threads", 72e6),
    ("parquet/decode_only_1_thread", "Parquet: decode only, 1 thread", None),
    ("formats/cloudtrail", "CloudTrail records", 1e6),
    ("formats/gcp-audit", "GCP audit records", 1e6),
    ("formats/snowflake", "Snowflake records", 1e6),
    ("formats/databricks", "Databricks records", 1e6),
    ("formats/pgaudit", "pgaudit records", 1e6),
]


def criterion_rates(root):
    """criterion id -> events/s, from target/criterion/**/new/."""
    rates = {}
    for bench in root.glob("**/new/benchmark.json"):
        meta = json.loads(bench.read_text())
        estimates = json.loads((bench.parent / "estimates.json").read_text())
        elements = (meta.get("throughput") or {}).get("Elements")
        if not elements:
            continue
        # What criterion prints: the slope of its linear sampling when it has one, else the mean.
        estimate = estimates.get("slope") or estimates["mean"]
        seconds = estimate["point_estimate"] / 1e9
        rates[meta["full_id"]] = elements / seconds
    return rates


def duckdb_rates(path):
    """[(label, events/s)] from duckdb_compare.py's output."""
    bars = []
    for line in Path(path).read_text().splitlines():
        m = re.match(r"threads=(\d+): exposure\s+([\d.]+) M rows/s.*\| duckdb\s+([\d.]+) M rows/s", line)
        if m:
            threads = m.group(1)
            bars.append((f"archive, {threads} thread(s): exposure replay", float(m.group(2)) * 1e6, None))
            bars.append((f"archive, {threads} thread(s): DuckDB best SQL", float(m.group(3)) * 1e6, None))
    return bars


def human(rate):
    return f"{rate / 1e6:.2f} M/s" if rate < 10e6 else f"{rate / 1e6:.1f} M/s"


def svg(bars):
    width, left, right, row = 980, 330, 110, 26
    height = 40 + row * len(bars) + 30
    top = max([r for _, r, _ in bars] + [t or 0 for _, _, t in bars])
    scale = (width - left - right) / top
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" font-family="system-ui, sans-serif" font-size="13">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="22" font-weight="600">Events per second on this 2-core machine '
        f'(bars: measured; ticks: the issue-19 targets)</text>',
    ]
    for i, (label, rate, target) in enumerate(bars):
        y = 40 + i * row
        colour = "#6d8196" if "DuckDB" in label or "before" in label or "floor" in label else "#c62828"
        out.append(f'<text x="{left - 8}" y="{y + 15}" text-anchor="end">{escape(label)}</text>')
        out.append(f'<rect x="{left}" y="{y + 3}" width="{max(rate * scale, 1):.1f}" height="{row - 8}" fill="{colour}"/>')
        label_x = left + max(rate, target or 0) * scale + 6
        out.append(f'<text x="{label_x:.1f}" y="{y + 15}">{human(rate)}</text>')
        if target:
            x = left + target * scale
            out.append(f'<line x1="{x:.1f}" y1="{y}" x2="{x:.1f}" y2="{y + row - 2}" stroke="#222" stroke-width="2"/>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--criterion", default=str(ROOT / "target/criterion"))
    parser.add_argument("--duckdb", help="output of benches/duckdb_compare.py")
    parser.add_argument("--out", default=str(ROOT / "docs/throughput.svg"))
    args = parser.parse_args()
    rates = criterion_rates(Path(args.criterion))
    bars = [(label, rates[cid], target) for cid, label, target in BARS if cid in rates]
    if args.duckdb:
        bars += duckdb_rates(args.duckdb)
    if not bars:
        raise SystemExit("no bench output found: run the benches first")
    Path(args.out).write_text(svg(bars))
    for label, rate, _ in bars:
        print(f"{label:50} {human(rate)}")


if __name__ == "__main__":
    main()
