"""Writes N pgaudit stderr lines (READs of 20 tables by 50 roles, 10 a second) to stdout, for
timing `exposure replay --format pgaudit`:

    python3 benches/gen_pgaudit.py 1000000 > /tmp/pg1m.log
    /usr/bin/time -f '%e s, %M KB peak RSS' target/release/exposure replay --format pgaudit --learn 1h /tmp/pg1m.log > /dev/null
"""
import sys
import time

n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
out = sys.stdout
for i in range(n):
    t = time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(1773792000 + i // 10)) + '.%03d UTC' % ((i % 10) * 100)
    table = 'public.t%d' % (i % 20)
    out.write(f"{t} [{1000 + i % 300}] role{i % 50}@shop LOG:  AUDIT: SESSION,{i},1,READ,SELECT,TABLE,{table},"
              f"\"SELECT a, b FROM {table} WHERE id = {i}\",<not logged>\n")
