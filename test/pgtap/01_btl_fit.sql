-- btl_fit against independent answers, and its errors with their SQLSTATEs
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS pluralrm;

BEGIN;
SELECT plan(24);

CREATE FUNCTION pg_temp.u(i float8) RETURNS float8 LANGUAGE sql IMMUTABLE AS
$$ SELECT abs(sin(i * 12.9898) * 43758.5453) - floor(abs(sin(i * 12.9898) * 43758.5453)) $$;

-- 20,000 comparisons drawn from the true weights (1.5, -1, 0.5, 0)
CREATE TEMP TABLE c AS
SELECT i, i % 4 AS seg, CASE WHEN win THEN a ELSE b END AS chosen,
       CASE WHEN win THEN b ELSE a END AS rejected
  FROM (SELECT i, a, b,
               pg_temp.u(i) < 1 / (1 + exp(-(1.5 * (a[1] - b[1]) - (a[2] - b[2])
                                            + 0.5 * (a[3] - b[3])))) AS win
          FROM (SELECT i,
                       ARRAY[sin(i * 1.1), cos(i * 0.7), sin(i * 0.3), cos(i * 2.1)] AS a,
                       ARRAY[cos(i * 1.3), sin(i * 0.5), cos(i * 0.9), sin(i * 1.7)] AS b
                  FROM generate_series(1, 20000) i) g) s;

CREATE TEMP TABLE fit AS
SELECT pluralrm.btl_fit(chosen, rejected, 1.0, 0.0) AS m FROM c;

SELECT ok((SELECT (m).converged FROM fit), 'the unpenalized fit converges');
SELECT is((SELECT (m).n FROM fit), 20000::bigint, 'n counts every comparison');
SELECT ok((SELECT max(abs(w - t)) FROM fit,
             unnest((m).weights, ARRAY[1.5, -1, 0.5, 0]) u(w, t)) < 0.15,
          'weights recover the true reward within sampling error');

-- gradient of the log-likelihood at the fit, computed here in SQL
SELECT ok((SELECT sqrt(sum(g * g)) FROM (
             SELECT j, sum((1 - 1 / (1 + exp(-mgn))) * (chosen[j] - rejected[j])) AS g
               FROM (SELECT chosen, rejected,
                            (SELECT sum(w * (x - y))
                               FROM unnest((SELECT (m).weights FROM fit), chosen, rejected)
                                    v(w, x, y)) AS mgn
                       FROM c) s, generate_series(1, 4) j
              GROUP BY j) gr) < 1e-6,
          'the log-likelihood gradient computed in SQL vanishes at the fit');

-- log-likelihood and accuracy recomputed in SQL
SELECT ok(abs((SELECT (m).loglik FROM fit) - (
             SELECT sum(-ln(1 + exp(-mgn)))
               FROM (SELECT (SELECT sum(w * (x - y))
                               FROM unnest((SELECT (m).weights FROM fit), chosen, rejected)
                                    v(w, x, y)) AS mgn FROM c) s)) < 1e-6,
          'reported log-likelihood matches SQL');
SELECT ok(abs((SELECT (m).accuracy FROM fit) - (
             SELECT avg(CASE WHEN mgn > 0 THEN 1.0 ELSE 0.0 END)
               FROM (SELECT (SELECT sum(w * (x - y))
                               FROM unnest((SELECT (m).weights FROM fit), chosen, rejected)
                                    v(w, x, y)) AS mgn FROM c) s)) < 1e-12,
          'reported training accuracy matches SQL');

-- the penalized optimum: gradient - l2 w vanishes
SELECT ok((SELECT sqrt(sum(g * g)) FROM (
             SELECT j, sum((1 - 1 / (1 + exp(-mgn))) * (chosen[j] - rejected[j]))
                       - 50 * (fw.w)[j] AS g
               FROM (SELECT (m).weights AS w FROM
                       (SELECT pluralrm.btl_fit(chosen, rejected, 1.0, 50.0) AS m FROM c) q) fw,
                    LATERAL (SELECT chosen, rejected,
                                    (SELECT sum(w * (x - y))
                                       FROM unnest(fw.w, chosen, rejected) v(w, x, y)) AS mgn
                               FROM c) s,
                    generate_series(1, 4) j
              GROUP BY j, fw.w) gr)
          < 1e-8 * (SELECT 0.5 * sqrt(sum(s * s)) FROM (
                      SELECT sum(chosen[j] - rejected[j]) AS s
                        FROM c, generate_series(1, 4) j GROUP BY j) g0),
          'with l2 = 50 the penalized gradient vanishes (relative to the gradient at 0)');

-- d = 1 closed forms
SELECT ok(abs((SELECT (pluralrm.btl_fit(ARRAY[x], ARRAY[0.0], 1.0, 0.0)).weights[1]
                 FROM (SELECT CASE WHEN i <= 13 THEN 1.0 ELSE -1.0 END AS x
                         FROM generate_series(1, 20) i) s) - ln(13.0 / 7.0)) < 1e-9,
          'd = 1: w = log(wins / losses)');
SELECT ok(abs((SELECT (pluralrm.btl_fit(ARRAY[x], ARRAY[0.0], wt, 0.0)).weights[1]
                 FROM (SELECT CASE WHEN i <= 13 THEN 1.0 ELSE -1.0 END AS x,
                              CASE WHEN i <= 13 THEN 1.0 ELSE 2.5 END AS wt
                         FROM generate_series(1, 20) i) s) - ln(13.0 / 17.5)) < 1e-9,
          'd = 1 weighted: w = log(weighted wins / weighted losses)');

-- GROUP BY gives each group the fit of its own rows
SELECT ok((SELECT bool_and(abs(a - b) < 1e-10)
             FROM (SELECT seg, pluralrm.btl_fit(chosen, rejected) AS m FROM c GROUP BY seg) g,
                  LATERAL (SELECT pluralrm.btl_fit(chosen, rejected) AS m
                             FROM c WHERE c.seg = g.seg) one,
                  unnest((g.m).weights, (one.m).weights) u(a, b)),
          'GROUP BY fits equal fits of each group alone');

-- weight 2 equals the comparison twice
SELECT ok((SELECT max(abs(a - b))
             FROM (SELECT pluralrm.btl_fit(chosen, rejected, CASE WHEN i % 3 = 0 THEN 2.0 ELSE 1.0 END) AS m
                     FROM c) w1,
                  (SELECT pluralrm.btl_fit(chosen, rejected) AS m
                     FROM (SELECT chosen, rejected FROM c
                           UNION ALL SELECT chosen, rejected FROM c WHERE i % 3 = 0) d) w2,
                  unnest((w1.m).weights, (w2.m).weights) u(a, b)) < 1e-10,
          'a weight of 2 equals a duplicated comparison');

-- the two solvers reach the same optimum
SET LOCAL pluralrm.solver = newton_cg;
CREATE TEMP TABLE fit_cg AS SELECT pluralrm.btl_fit(chosen, rejected, 1.0, 0.0) AS m FROM c;
RESET pluralrm.solver;
SELECT ok((SELECT max(abs(a - b)) FROM fit, fit_cg,
             unnest((fit.m).weights, (fit_cg.m).weights) u(a, b)) < 1e-7
          AND (SELECT (m).method FROM fit_cg) = 'newton_cg',
          'Newton and Newton-CG agree');

-- real[] input equals float8[] input rounded to real
SELECT ok((SELECT max(abs(a - b))
             FROM (SELECT pluralrm.btl_fit(chosen::real[], rejected::real[]) AS m FROM c) r,
                  (SELECT pluralrm.btl_fit(chosen::real[]::float8[], rejected::real[]::float8[]) AS m FROM c) f,
                  unnest((r.m).weights, (f.m).weights) u(a, b)) < 1e-12,
          'real[] embeddings fit like their float8[] values');

-- errors
SELECT throws_ok($$SELECT pluralrm.btl_fit(ARRAY[1.0, NULL], ARRAY[1.0, 2.0])$$,
                 '22004', NULL, 'NULL element: 22004');
SELECT throws_ok($$SELECT pluralrm.btl_fit(ARRAY[[1.0]], ARRAY[[1.0]])$$,
                 '22000', NULL, '2-D array: 22000');
SELECT throws_ok($$SELECT pluralrm.btl_fit(ARRAY[1.0], ARRAY[1.0, 2.0])$$,
                 '22000', NULL, 'mismatched lengths in a row: 22000');
SELECT throws_ok($$SELECT pluralrm.btl_fit(ARRAY['NaN'::float8], ARRAY[1.0])$$,
                 '22000', NULL, 'NaN: 22000');
SELECT throws_ok($$SELECT pluralrm.btl_fit(ARRAY[1.0], ARRAY[0.0], -1.0)$$,
                 '22023', NULL, 'negative weight: 22023');
SELECT throws_ok($$SELECT pluralrm.btl_fit(ARRAY[1.0], ARRAY[0.0], 1.0, 'Infinity')$$,
                 '22023', NULL, 'infinite l2: 22023');
SELECT throws_ok($$SELECT pluralrm.btl_fit(array_fill(1.0::float8, ARRAY[16001]),
                                           array_fill(0.0::float8, ARRAY[16001]))$$,
                 '54000', NULL, 'absurd dimension: 54000');
SELECT throws_ok($$SELECT pluralrm.btl_fit(chosen, chosen) FROM c$$,
                 '22000', 'no comparison distinguishes its chosen and rejected responses',
                 'all-identical pairs: 22000');
SELECT throws_ok($$SELECT pluralrm.btl_fit(ARRAY[x, 1.0], ARRAY[0.0, 0.0], 1.0, 0.0)
                     FROM (VALUES (1.0), (2.0), (0.5)) v(x)$$,
                 '22000', 'comparisons are perfectly separable, so the unpenalized fit has no finite solution',
                 'separable data without a penalty: 22000');
SELECT lives_ok($$SELECT pluralrm.btl_fit(ARRAY[x, 1.0], ARRAY[0.0, 0.0], 1.0, 1.0)
                     FROM (VALUES (1.0), (2.0), (0.5)) v(x)$$,
                'separable data with a penalty fits');

-- a statement_timeout stops a long solve: 3200 comparisons at d = 2500 scan
-- in milliseconds, but each Newton iteration costs far more than the timeout
-- and the whole fit seconds. A cancel is only noticed in time if the
-- solver checks for interrupts. (throws_ok cannot catch a cancel: plpgsql's
-- OTHERS excludes it.)
CREATE TEMP TABLE wide AS
SELECT chosen, rejected
  FROM (SELECT array_agg(pg_temp.u(i * 2501 + j) - 0.5) AS chosen,
               array_agg(pg_temp.u(-i * 2501 - j - 0.5) - 0.5) AS rejected
          FROM generate_series(1, 400) i, generate_series(1, 2500) j GROUP BY i) g,
       generate_series(1, 8);
CREATE FUNCTION pg_temp.fit_wide() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz := clock_timestamp();
BEGIN
    PERFORM pluralrm.btl_fit(chosen, rejected) FROM wide;
    RETURN 'finished';
EXCEPTION WHEN query_canceled THEN
    RETURN CASE WHEN clock_timestamp() - t0 < interval '1.5 s'
                THEN SQLSTATE ELSE 'cancelled late' END;
END $$;
SET LOCAL pluralrm.solver = newton;
SET LOCAL statement_timeout = '250ms';
SELECT is(pg_temp.fit_wide(), '57014', 'statement_timeout stops a long fit promptly');
RESET statement_timeout;

SELECT * FROM finish();
ROLLBACK;
