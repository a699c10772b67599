-- real_workload.sql: an ordinary sqlite3 shell workload for t1400-real-programs.sh: a table
-- filled by a recursive CTE, an index, aggregates, an update and a join. Output is
-- deterministic (no random(), no dates).
CREATE TABLE item(id INTEGER PRIMARY KEY, grp INTEGER, name TEXT, val REAL);
WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 5000)
INSERT INTO item(grp, name, val) SELECT n % 17, 'item-' || n || '-' || substr('abcdefghijklmnop', 1 + n % 16), n * 1.5 FROM seq;
CREATE INDEX item_grp ON item(grp, val);
SELECT count(*), sum(val), min(name), max(name) FROM item;
SELECT grp, count(*), round(avg(val), 3), max(length(name)) FROM item GROUP BY grp ORDER BY grp;
UPDATE item SET val = val * 2 WHERE grp IN (3, 5, 7);
CREATE TABLE grp_name(grp INTEGER PRIMARY KEY, label TEXT);
WITH RECURSIVE g(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM g WHERE n < 16)
INSERT INTO grp_name SELECT n, 'group-' || n FROM g;
SELECT g.label, count(*), sum(i.val) FROM item i JOIN grp_name g USING (grp)
  WHERE i.val > 1000 GROUP BY g.label ORDER BY sum(i.val) DESC LIMIT 5;
SELECT group_concat(name, ',') FROM (SELECT name FROM item WHERE grp = 0 ORDER BY val DESC LIMIT 10);
DELETE FROM item WHERE id % 3 = 0;
SELECT count(*), total(val) FROM item;
