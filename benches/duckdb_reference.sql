-- What a user would reach for instead of exposure: one DuckDB query over the same Parquet
-- archive. It keeps the core of the detector's idea — a per-table learning period, a baseline
-- of principals seen in it, and bursts of newcomers' first reads — in a single scan:
--   1. reads (actions as in exposure's default read_actions),
--   2. each (table, principal)'s first read, and each table's first read (the learning start),
--   3. newcomers: principals whose first read on a table comes after the 7-day learning,
--   4. gaps and islands over the newcomers' first reads: a new island after a gap over 1 hour,
--   5. islands of at least 3 newcomers are exposure windows.
-- It does not model forget_after, graduation, quiet closes or window extension, so it does
-- less work than exposure, never more. {ARCHIVE} is replaced by the runner.
WITH reads AS (
    SELECT "table" AS t, principal AS p, ts
    FROM read_parquet('{ARCHIVE}/**/*.parquet')
    WHERE action IS NULL
       OR lower(action) IN ('select', 'read', 'get', 'getobject', 'query', 'scan', 'export', 'copy', 'tabledataread')
),
first_reads AS (
    SELECT t, p, min(ts) AS first_ts FROM reads GROUP BY t, p
),
learning AS (
    SELECT t, min(first_ts) + INTERVAL 7 DAY AS learn_until FROM first_reads GROUP BY t
),
newcomers AS (
    SELECT f.t, f.p, f.first_ts
    FROM first_reads f JOIN learning l USING (t)
    WHERE f.first_ts >= l.learn_until
),
islands AS (
    SELECT t, p, first_ts,
           sum(CASE WHEN first_ts - prev > INTERVAL 1 HOUR THEN 1 ELSE 0 END)
               OVER (PARTITION BY t ORDER BY first_ts ROWS UNBOUNDED PRECEDING) AS island
    FROM (SELECT *, lag(first_ts, 1, first_ts) OVER (PARTITION BY t ORDER BY first_ts) AS prev FROM newcomers)
)
SELECT t AS "table", min(first_ts) AS window_start, max(first_ts) AS last_first_read,
       count(*) AS novel_principals
FROM islands
GROUP BY t, island
HAVING count(*) >= 3
ORDER BY window_start, "table";
