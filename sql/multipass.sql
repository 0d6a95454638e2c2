-- Multi-pass fitting: one aggregate pass over the table per iteration,
-- with plain float8[] states, giving the answer of the in-memory fits
SET client_min_messages = warning;

-- d = 1 with 7 wins and 3 losses: with l2 = 0 the MLE is log(7/3)
CREATE TABLE mp_closed (chosen float8[], rejected float8[]);
INSERT INTO mp_closed SELECT ARRAY[1.0], ARRAY[0.0] FROM generate_series(1, 7);
INSERT INTO mp_closed SELECT ARRAY[0.0], ARRAY[1.0] FROM generate_series(1, 3);
SELECT round((model).weights[1]::numeric, 10) AS w,
       round(ln(7.0 / 3), 10) AS closed_form,
       (model).converged, (model).method, (model).n, passes > 2 AS several_passes
  FROM pluralrm.btl_fit_multipass('mp_closed', l2 => 0);

-- the building blocks: Newton's method written out in SQL reaches the same
-- point, each step one btl_pass over the table
WITH RECURSIVE newton(i, w) AS (
    SELECT 0, ARRAY[0.0]::float8[]
    UNION ALL
    SELECT i + 1,
           (SELECT ARRAY[n.w[1] + (pluralrm.btl_newton_step(
                        pluralrm.btl_pass(n.w, c.chosen, c.rejected), 0))[1]]
              FROM mp_closed c)
      FROM newton n WHERE i < 8)
SELECT i, round(w[1]::numeric, 10) AS w FROM newton WHERE i IN (1, 2, 8);

-- a pass state: header, w, gradient and Hessian at w = 0 for the same data:
-- loglik 10 log(1/2), gradient -(7 - 3) / 2, Hessian 10 / 4
SELECT s[6] = 10 * ln(0.5) AS loglik, s[14] AS w, s[15] AS gradient, s[16] AS hessian
  FROM (SELECT pluralrm.btl_pass(NULL, chosen, rejected) AS s FROM mp_closed) p;

-- comparisons in 4 dimensions with noise, in 3 groups, with weights
CREATE TABLE mp_data AS
SELECT i, i % 3 AS grp, 0.5 + (i % 7) / 7.0 AS weight,
       ARRAY[sin(i * 1.1), cos(i * 0.7), sin(i * 0.3), cos(i * 0.2)] AS a,
       ARRAY[cos(i * 1.3), sin(i * 0.5), cos(i * 0.9), sin(i * 0.4)] AS b
  FROM generate_series(1, 3000) i;
ALTER TABLE mp_data ADD chosen float8[], ADD rejected float8[];
-- the label follows w = (2, -1, 1, 0) with a deterministic coin
UPDATE mp_data SET
    chosen = CASE WHEN coin < 1 / (1 + exp(-m)) THEN a ELSE b END,
    rejected = CASE WHEN coin < 1 / (1 + exp(-m)) THEN b ELSE a END
  FROM (SELECT i AS j,
               2 * (a[1] - b[1]) - (a[2] - b[2]) + (a[3] - b[3]) AS m,
               abs(hashint4(i)::float8) / 2147483648.0 AS coin
          FROM mp_data) AS x
 WHERE x.j = mp_data.i;
ANALYZE mp_data;

-- largest relative difference of two arrays
CREATE FUNCTION mp_reldiff(a float8[], b float8[]) RETURNS float8
LANGUAGE sql IMMUTABLE AS $$
    SELECT max(abs(x - y) / greatest(abs(y), 1))
      FROM unnest(a, b) AS u(x, y)
$$;

-- the same fit as btl_fit, to 1e-6 relative (it is nearer 1e-12)
SELECT (m.model).n = f.n AS same_n,
       mp_reldiff((m.model).weights, f.weights) < 1e-6 AS same_weights,
       abs((m.model).loglik - f.loglik) < 1e-6 * abs(f.loglik) AS same_loglik,
       (m.model).accuracy = f.accuracy AS same_accuracy,
       (m.model).converged, m.passes = (m.model).iterations + 1 AS one_pass_per_step
  FROM pluralrm.btl_fit_multipass('mp_data') AS m,
       (SELECT (pluralrm.btl_fit(chosen, rejected)).* FROM mp_data) AS f;

-- with weights, another l2 and GROUP BY
SELECT m.group_key, (m.model).n,
       mp_reldiff((m.model).weights, (f.m).weights) < 1e-6 AS same_weights,
       abs((m.model).loglik - (f.m).loglik) < 1e-6 * abs((f.m).loglik) AS same_loglik
  FROM pluralrm.btl_fit_multipass('mp_data', weight_column => 'weight',
                                  l2 => 0.3, group_column => 'grp') AS m
  JOIN (SELECT grp, pluralrm.btl_fit(chosen, rejected, weight, 0.3) AS m
          FROM mp_data GROUP BY grp) AS f
    ON f.grp::text = m.group_key
 ORDER BY 1;

-- a multi-pass model saves and scores like any other
SELECT pluralrm.save_model('mp_btl', model) FROM pluralrm.btl_fit_multipass('mp_data');
SELECT (pluralrm.evaluate('mp_btl', chosen, rejected)).n FROM mp_data;
SELECT pluralrm.drop_model('mp_btl');

-- one pass in a parallel plan: partial states add up across workers
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF)
SELECT pluralrm.btl_pass(NULL, chosen, rejected) FROM mp_data;
EXPLAIN (COSTS OFF)
SELECT grp, pluralrm.btl_pass(NULL, chosen, rejected, weight) FROM mp_data GROUP BY grp;
CREATE TEMP TABLE mp_parallel AS
SELECT pluralrm.btl_pass('{0.5,0.5,0.5,0.5}', chosen, rejected) AS s FROM mp_data;
SELECT mp_parallel.s[1:5] AS header FROM mp_parallel;
RESET max_parallel_workers_per_gather;
SET max_parallel_workers_per_gather = 0;
SELECT mp_reldiff(p.s, q.s) < 1e-12 AS same_as_serial
  FROM mp_parallel AS p,
       (SELECT pluralrm.btl_pass('{0.5,0.5,0.5,0.5}', chosen, rejected) AS s
          FROM mp_data) AS q;
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;

-- mixtures: users in two groups with opposite tastes on the first feature
CREATE TABLE mp_mix AS
SELECT u AS user_id, u % 2 AS seg, j,
       CASE WHEN u % 5 < 3 THEN 1 ELSE 2 END AS truth,
       ARRAY[sin(u * 1.7 + j * 2.3), cos(u * 0.9 + j * 1.1), sin(u * 0.4 + j * 3.7)] AS a,
       ARRAY[cos(u * 1.3 + j * 0.7), sin(u * 2.1 + j * 0.5), cos(u * 0.6 + j * 2.9)] AS b
  FROM generate_series(1, 120) u, generate_series(1, 16) j;
ALTER TABLE mp_mix ADD chosen float8[], ADD rejected float8[];
UPDATE mp_mix SET
    chosen = CASE WHEN coin < 1 / (1 + exp(-m)) THEN a ELSE b END,
    rejected = CASE WHEN coin < 1 / (1 + exp(-m)) THEN b ELSE a END
  FROM (SELECT user_id AS uu, j AS jj,
               CASE WHEN truth = 1 THEN 3 * (a[1] - b[1]) + 2 * (a[2] - b[2])
                    ELSE -3 * (a[1] - b[1]) + 2 * (a[3] - b[3]) END AS m,
               abs(hashint4(user_id * 100 + j)::float8) / 2147483648.0 AS coin
          FROM mp_mix) AS x
 WHERE x.uu = mp_mix.user_id AND x.jj = mp_mix.j;
ANALYZE mp_mix;

-- started from an in-memory fit on 30 of the 120 users, multi-pass EM on
-- all of them reaches the in-memory fit on all of them (tol 1e-12: EM's
-- stopping point limits how closely two fits agree)
CREATE TEMP TABLE mp_mem AS
SELECT pluralrm.mixture_fit(user_id, chosen, rejected, 2) AS m FROM mp_mix;
CREATE TEMP TABLE mp_multi AS
SELECT * FROM pluralrm.mixture_fit_multipass('mp_mix', 2, start_users => 30,
                                            tol => 1e-12);
SELECT (x.model).users, (x.model).n, (x.model).sampled_users < 120 AS sampled_start,
       (x.model).converged,
       abs((x.model).loglik - (y.m).loglik) < 1e-6 * abs((y.m).loglik) AS same_loglik,
       mp_reldiff((x.model).mixing, (y.m).mixing) < 1e-6 AS same_mixing,
       mp_reldiff((x.model).base_rewards, (y.m).base_rewards) < 1e-6 AS same_base_rewards,
       (x.model).user_ids = (y.m).user_ids AS same_users,
       mp_reldiff((x.model).responsibilities, (y.m).responsibilities) < 1e-6
           AS same_responsibilities
  FROM mp_multi AS x, mp_mem AS y;

-- from a given start, per segment (GROUP BY), with weights
SELECT x.group_key, (x.model).users,
       abs((x.model).loglik - (y.m).loglik) < 1e-6 * abs((y.m).loglik) AS same_loglik,
       mp_reldiff((x.model).base_rewards, (y.m).base_rewards) < 1e-6 AS same_base_rewards
  FROM pluralrm.mixture_fit_multipass('mp_mix', 2, group_column => 'seg',
           weight_column => 'j', l2 => 2, tol => 1e-12,
           start_base_rewards => '{{1,0,0},{-1,0,0}}') AS x
  JOIN (SELECT seg, pluralrm.mixture_fit(user_id, chosen, rejected, 2, j::float8, 2) AS m
          FROM mp_mix GROUP BY seg) AS y
    ON y.seg::text = x.group_key
 ORDER BY 1;

-- the E-pass by hand: a user's posterior is a probability vector
SELECT round(sum(g)::numeric, 12) AS total
  FROM (SELECT pluralrm.mixture_posterior(
                   pluralrm.mixture_user_pass('{{1,0,0},{-1,0,0}}', chosen, rejected),
                   '{0.5,0.5}') AS r
          FROM mp_mix WHERE user_id = 7) AS p, unnest(p.r) AS g;

-- errors
\set VERBOSITY terse
SELECT * FROM pluralrm.btl_fit_multipass('mp_closed', chosen_column => 'nope');
SELECT * FROM pluralrm.btl_fit_multipass('mp_closed', l2 => -1);
SELECT * FROM pluralrm.btl_fit_multipass('mp_missing');
SELECT pluralrm.btl_pass(ARRAY[i::float8], ARRAY[1.0], ARRAY[0.0])
  FROM generate_series(1, 2) i;
SELECT pluralrm.btl_pass('{1,2}', chosen, rejected) FROM mp_closed;
SELECT pluralrm.btl_newton_step('{1,2,3}', 1);
SELECT pluralrm.btl_newton_step(pluralrm.btl_pass(NULL, chosen, rejected), -1)
  FROM mp_closed;
SELECT pluralrm.btl_pass(NULL, chosen, rejected, -1) FROM mp_closed;
SELECT pluralrm.btl_pass(NULL, chosen, ARRAY[0.0, 1.0]) FROM mp_closed;
CREATE TABLE mp_separable AS
SELECT ARRAY[1.0, i]::float8[] AS chosen, ARRAY[0.0, i]::float8[] AS rejected
  FROM generate_series(1, 5) i;
SELECT * FROM pluralrm.btl_fit_multipass('mp_separable', l2 => 0);
CREATE TABLE mp_same AS SELECT ARRAY[1.0, 2.0] AS chosen, ARRAY[1.0, 2.0] AS rejected;
SELECT * FROM pluralrm.btl_fit_multipass('mp_same');
SELECT * FROM pluralrm.mixture_fit_multipass('mp_mix', 2, l2 => 0);
SELECT * FROM pluralrm.mixture_fit_multipass('mp_mix', 0);
SELECT * FROM pluralrm.mixture_fit_multipass('mp_mix', 2, start_base_rewards => '{1,2,3}');
SELECT pluralrm.mixture_pass('{{1,0,0}}', '{0.5,0.5}', chosen, rejected) FROM mp_mix;

\set VERBOSITY default

-- comparisons with a NULL input are skipped and counted
INSERT INTO mp_closed SELECT NULL, ARRAY[1.0];
SELECT (model).n, (model).skipped FROM pluralrm.btl_fit_multipass('mp_closed');
