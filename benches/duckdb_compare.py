#!/usr/bin/env python3
"""Measures `exposure replay` against the DuckDB reference query (duckdb_reference.sql) on the
same Parquet archive, with the same number of threads, in one run, and prints the ratio.

    pip install duckdb
    cargo build --release
    cargo run --release --example synth -- 20000000 > /tmp/20m.jsonl
    target/release/exposure archive /tmp/20m.jsonl --out /tmp/arch20m
    python3 benches/duckdb_compare.py /tmp/arch20m --threads 1 --threads 2

Each side runs `--repeat` times (default 3); the best time counts (the machine is shared).
"""
import argparse
import re
import subprocess
import time
from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def rows_in(archive):
    con = duckdb.connect()
    return con.execute(f"SELECT count(*) FROM read_parquet('{archive}/**/*.parquet')").fetchone()[0]


def time_exposure(archive, threads, repeat):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run = subprocess.run(
            [str(ROOT / "target/release/exposure"), "replay", "--no-progress", "--threads", str(threads), archive],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=True)
        best = min(best, time.perf_counter() - start)
    windows = re.search(r"(\d+) windows", run.stderr).group(1)
    return best, int(windows)


def time_duckdb(archive, threads, repeat):
    sql = (HERE / "duckdb_reference.sql").read_text().replace("{ARCHIVE}", archive)
    best = float("inf")
    for _ in range(repeat):
        con = duckdb.connect()
        con.execute(f"SET threads = {threads}")
        start = time.perf_counter()
        result = con.execute(sql).fetchall()
        best = min(best, time.perf_counter() - start)
        con.close()
    return best, len(result)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("archive")
    parser.add_argument("--threads", type=int, action="append")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = rows_in(args.archive)
    print(f"archive: {args.archive}, {rows:,} rows; duckdb {duckdb.__version__}")
    for threads in args.threads or [1]:
        e_secs, e_windows = time_exposure(args.archive, threads, args.repeat)
        d_secs, d_windows = time_duckdb(args.archive, threads, args.repeat)
        print(f"threads={threads}: exposure {rows / e_secs / 1e6:6.1f} M rows/s ({e_secs:.2f} s, {e_windows} windows)"
              f" | duckdb {rows / d_secs / 1e6:6.1f} M rows/s ({d_secs:.2f} s, {d_windows} islands)"
              f" | exposure/duckdb speed ratio {d_secs / e_secs:.2f}x")


if __name__ == "__main__":
    main()
