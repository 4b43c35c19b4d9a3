-- sqlite_load.sql: generated SQLite workload for the sqlite3 shell (in-memory database).
-- @n (rows) is set by real_sqlite.sh; all data is derived from the row number, so it is fixed.
CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, name TEXT, body TEXT);
INSERT INTO t(k, name, body)
  WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < @n)
  SELECT (x * 2654435761) % 1000003,
         printf('name-%d-%x', (x * 7919) % 100003, x * 31),
         replace(hex(zeroblob(10 + (x * 13) % 150)), '00', printf('%02x', x % 251))
  FROM c;
CREATE INDEX t_k ON t(k);
CREATE INDEX t_name ON t(name);
CREATE TEMP TABLE g AS SELECT k % 1000 AS bucket, count(*) AS n, group_concat(name) AS names
  FROM t GROUP BY k % 1000;
UPDATE t SET body = body || name WHERE id % 3 = 0;
DELETE FROM t WHERE k % 5 = 0;
INSERT INTO t(k, name, body) SELECT k + 1, name || '-copy', upper(body) FROM t WHERE id % 4 = 0;
CREATE TEMP TABLE j AS SELECT a.id, b.name FROM t a JOIN t b ON a.k = b.k + 1;
SELECT 'result workload=sqlite rows=' || (SELECT count(*) FROM t)
    || ' groups=' || (SELECT count(*) FROM g) || ' joined=' || (SELECT count(*) FROM j)
    || ' bytes=' || (SELECT sum(length(body)) FROM t);
