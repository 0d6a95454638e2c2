-- Planted factorized comparisons for the factor benchmark
-- (test/bench/factor.sh), made inside the database from one fixed seed.
-- Run with psql in a fresh database, with the psql variables
--   users  users of the scale table fac (user_id 1 .. users)
--   each   comparisons per user in fac
--   train  users of the onboarding model's table fac_train (user_id
--          2000001 ..)
--   train_each  comparisons per user in fac_train
--   dim    dimension d of the embeddings
--   k      number of planted base rewards K (at least 2)
--   new    users of the onboarding study (user_id 1000001 ..), not in fac
--   asked  comparisons of each new user in fac_new_rows (fit_user timing)
--   pool   candidate pairs of the onboarding study
--   test   held-out pairs of the onboarding study
--   cands  candidate pairs of the next_questions timing
--   seed   setseed() value, so every run makes the same data
--
-- The truth: K base rewards B (rows of i.i.d. N(0, 1) coordinates scaled
-- to unit norm) and per user coefficients c_u ~ N(mu, diag(sd^2)) with
-- mu = (1, 0.5, 0, ..., 0) and sd falling evenly from 1 to 0.3: users
-- disagree along every base reward, and the population mean alone orders
-- a user's pairs only about 70% as their own reward does. A user's true
-- reward vector is w_u = B' c_u. A response has d coordinates uniform on
-- [-sqrt 3, sqrt 3] (mean 0, variance 1), so the margin w_u . (a - b) has
-- a standard deviation of about 3. A comparison has two responses a and b
-- and one uniform draw u: a is chosen when u < sigmoid(w_u . (a - b)).
-- Comparison tables are stored in round order (the first comparison of
-- every user, then the second, ...), as in a log. Plans must be serial for the
-- random() sequence to be reproducible.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SET max_parallel_workers_per_gather = 0;
CREATE EXTENSION IF NOT EXISTS pluralrm;
SELECT setseed(:seed) \gset setseed_

-- B (k x d), mu and sd in one row. PLAIN storage keeps the 2-D array in
-- the row: reading an element then costs no detoasting.
CREATE TABLE fac_truth (b float8[], mu float8[], sd float8[]);
ALTER TABLE fac_truth ALTER COLUMN b SET STORAGE PLAIN;
INSERT INTO fac_truth
SELECT array_agg(g.raw ORDER BY g.c),
       array_cat(ARRAY[1.0, 0.5]::float8[],
                 array_fill(0.0::float8, ARRAY[:k - 2])),
       ARRAY(SELECT 1.0 - 0.7 * (c - 1) / (:k - 1)
               FROM generate_series(1, :k) AS c ORDER BY c)
  FROM (SELECT c, array_agg(x / norm ORDER BY j) AS raw
          FROM (SELECT c, j, x, sqrt(sum(x * x) OVER (PARTITION BY c)) AS norm
                  FROM (SELECT c, j, sqrt(-2 * ln(1 - random()))
                                     * cos(2 * pi() * random()) AS x
                          FROM generate_series(1, :k) AS c,
                               generate_series(1, :dim) AS j
                         ORDER BY c, j) AS s) AS s
         GROUP BY c) AS g;

-- w_u[j] = sum_c c_u[c] B[c][j], written out as one expression over c
SELECT string_agg(format('u.coef[%s] * t.b[%s][j]', c, c), ' + ')
       AS wexpr
  FROM generate_series(1, :k) AS c \gset

-- the users of fac and the new users; the subqueries refer to the outer
-- row so that they run once per user
CREATE TABLE fac_users AS
SELECT u.user_id, u.coef,
       ARRAY(SELECT :wexpr FROM generate_series(1, :dim) AS j ORDER BY j)
           AS w
  FROM (SELECT g.user_id,
               ARRAY(SELECT t.mu[c] + t.sd[c] * sqrt(-2 * ln(1 - random()))
                            * cos(2 * pi() * random())
                       FROM generate_series(1, :k) AS c
                      WHERE g.user_id > 0 ORDER BY c) AS coef
          FROM (SELECT user_id FROM generate_series(1, :users) AS user_id
                UNION ALL
                SELECT 1000000 + n FROM generate_series(1, :new) AS n
                UNION ALL
                SELECT 2000000 + n FROM generate_series(1, :train) AS n
                 ORDER BY 1) AS g, fac_truth AS t
         ORDER BY g.user_id) AS u, fac_truth AS t
 ORDER BY u.user_id;
ALTER TABLE fac_users ADD PRIMARY KEY (user_id);

-- a table of count pairs of responses (j, a, b), no labels
CREATE FUNCTION pg_temp.pairs(count integer, dim integer)
RETURNS TABLE (j integer, a float8[], b float8[])
LANGUAGE sql VOLATILE AS $$
    SELECT g.j,
           ARRAY(SELECT (random() * 2 - 1) * sqrt(3)
                   FROM generate_series(1, dim) WHERE g.j > 0),
           ARRAY(SELECT (random() * 2 - 1) * sqrt(3)
                   FROM generate_series(1, dim) WHERE g.j > 0)
      FROM generate_series(1, count) AS g(j)
     ORDER BY g.j
$$;
CREATE TABLE fac_pool AS SELECT * FROM pg_temp.pairs(:pool, :dim);
CREATE TABLE fac_test AS SELECT * FROM pg_temp.pairs(:test, :dim);
CREATE TABLE fac_cand AS SELECT * FROM pg_temp.pairs(:cands, :dim);
ALTER TABLE fac_pool ADD PRIMARY KEY (j);
ALTER TABLE fac_test ADD PRIMARY KEY (j);
ALTER TABLE fac_cand ADD PRIMARY KEY (j);

-- labelled comparisons for the users in [lo, hi], each per user, in round
-- order; a's and b's coordinates come first, then the draw u
CREATE FUNCTION pg_temp.comparisons(lo integer, hi integer, each integer,
                                    dim integer)
RETURNS TABLE (id bigint, user_id integer, i integer, chosen float8[],
               rejected float8[])
LANGUAGE sql VOLATILE AS $$
    SELECT c.id, c.user_id, c.i,
           CASE WHEN r.u < 1 / (1 + exp(-r.margin)) THEN r.a ELSE r.b END,
           CASE WHEN r.u < 1 / (1 + exp(-r.margin)) THEN r.b ELSE r.a END
      FROM (SELECT row_number() OVER (ORDER BY s.i, u.user_id) AS id,
                   u.user_id, s.i, u.w
              FROM fac_users AS u, generate_series(1, each) AS s(i)
             WHERE u.user_id BETWEEN lo AND hi) AS c,
           LATERAL (SELECT array_agg(x.xa ORDER BY x.j) AS a,
                           array_agg(x.xb ORDER BY x.j) AS b,
                           sum(c.w[x.j] * (x.xa - x.xb)) AS margin,
                           random() AS u
                      FROM (SELECT j, (random() * 2 - 1) * sqrt(3) AS xa,
                                   (random() * 2 - 1) * sqrt(3) AS xb
                              FROM generate_series(1, dim) AS j
                             WHERE c.id > 0) AS x) AS r
     ORDER BY c.id
$$;
CREATE TABLE fac AS
SELECT id, user_id, chosen, rejected
  FROM pg_temp.comparisons(1, :users, :each, :dim);
ALTER TABLE fac ADD PRIMARY KEY (id);
CREATE TABLE fac_train AS
SELECT id, user_id, chosen, rejected
  FROM pg_temp.comparisons(2000001, 2000000 + :train, :train_each, :dim);
ALTER TABLE fac_train ADD PRIMARY KEY (id);
-- the new users' own comparisons, for timing fit_user on 10 to :asked
CREATE TABLE fac_new_rows AS
SELECT user_id, i, chosen, rejected
  FROM pg_temp.comparisons(1000001, 1000000 + :new, :asked, :dim);
ALTER TABLE fac_new_rows ADD PRIMARY KEY (user_id, i);

-- the timing candidates as two prebuilt cands x d arrays
CREATE TABLE fac_cand_arrays AS
SELECT array_agg(a ORDER BY j) AS a, array_agg(b ORDER BY j) AS b
  FROM fac_cand;

VACUUM ANALYZE;
CHECKPOINT;
