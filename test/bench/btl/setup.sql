-- Comparisons for the BTL benchmark (test/bench/btl.sh), made inside the
-- database from a fixed seed. Run with psql -v rows=N -v dim=D in a fresh
-- database.
--
-- Responses have d features drawn uniformly with mean 0 and variance 1 and
-- rounded to real precision, so the float8[] and real[] tables hold exactly
-- the same numbers. The true reward is w_j = 0.3 sin(j): the margin
-- w . (a - b) then has a standard deviation of about 2.4 and the true model
-- orders about 80% of the comparisons right. One uniform draw u per row
-- decides which response was chosen: a when u < sigmoid(w . (a - b)).
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pluralrm;

DROP TABLE IF EXISTS btl_bench_truth, btl_bench_real, btl_bench_float8;

-- a fixed seed: every run draws the same comparisons (random() is parallel
-- restricted, so the generating query runs in this backend alone)
SELECT setseed(0.2024) AS seeded \gset

CREATE TABLE btl_bench_truth AS
SELECT array_agg(0.3 * sin(j) ORDER BY j) AS weights
  FROM generate_series(1, :dim) AS j;

-- the lateral subquery refers to g.i so that it runs once per row
CREATE TABLE btl_bench_real AS
SELECT g.i AS id,
       CASE WHEN r.u < 1 / (1 + exp(-r.margin)) THEN r.a ELSE r.b END
           AS chosen,
       CASE WHEN r.u < 1 / (1 + exp(-r.margin)) THEN r.b ELSE r.a END
           AS rejected
  FROM btl_bench_truth AS t,
       generate_series(1, :rows) AS g(i),
       LATERAL (SELECT array_agg(x.xa ORDER BY x.j) AS a,
                       array_agg(x.xb ORDER BY x.j) AS b,
                       sum(t.weights[x.j] * (x.xa - x.xb)) AS margin,
                       random() AS u
                  FROM (SELECT j,
                               ((random() * 2 - 1) * sqrt(3))::real AS xa,
                               ((random() * 2 - 1) * sqrt(3))::real AS xb
                          FROM generate_series(1, :dim) AS j
                         WHERE g.i > 0) AS x) AS r;

CREATE TABLE btl_bench_float8 AS
SELECT id, chosen::float8[] AS chosen, rejected::float8[] AS rejected
  FROM btl_bench_real;

VACUUM ANALYZE btl_bench_truth;
VACUUM ANALYZE btl_bench_real;
VACUUM ANALYZE btl_bench_float8;
CHECKPOINT;
