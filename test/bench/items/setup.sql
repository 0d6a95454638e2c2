-- Data of the item-strength benchmark (run by test/bench/items.sh):
-- :items items with strengths drawn from N(0, 1) and :rows comparisons of
-- random pairs with outcomes drawn from the BTL model (no ties).
\set ON_ERROR_STOP 1
SELECT setseed(0.42) \g /dev/null

CREATE TABLE bench_items AS
SELECT id::bigint AS id,
       sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) AS truth
  FROM generate_series(1, :items) id;
ALTER TABLE bench_items ADD PRIMARY KEY (id);

CREATE TABLE bench_comparisons AS
SELECT g.i, g.a, g.b,
       CASE WHEN g.u < 1 / (1 + exp(ib.truth - ia.truth)) THEN 1.0
            ELSE 0.0 END::float8 AS outcome
  FROM (SELECT i, a, 1 + (a + d - 1) % :items AS b, u
          FROM (SELECT i, 1 + floor(random() * :items)::bigint AS a,
                       1 + floor(random() * (:items - 1))::bigint AS d,
                       random() AS u
                  FROM generate_series(1, :rows) i) r) g
  JOIN bench_items ia ON ia.id = g.a
  JOIN bench_items ib ON ib.id = g.b;
VACUUM ANALYZE bench_comparisons;
SELECT count(*) AS comparisons, count(DISTINCT least(a, b) * 100000 + greatest(a, b)) AS pairs,
       round(avg(outcome)::numeric, 3) AS share_a_won
  FROM bench_comparisons;
