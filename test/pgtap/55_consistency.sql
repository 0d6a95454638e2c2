-- rater_consistency and pair_consistency: p-values against closed forms,
-- classification of planted raters, and the weights improving a fit
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS pluralrm;

-- parallel scans need a regular table, so this one is committed and dropped
DROP TABLE IF EXISTS prm_tap_consistency;
CREATE TABLE prm_tap_consistency AS
SELECT user_id, pair_id, condition, (chosen < rejected) = (condition = 0) AS chose_first
  FROM pluralrm.synthetic_comparisons(users => 2000, comparisons_per_user => 10,
       d => 2, reasks => 4, non_attitude_share => 0.3, constructed_share => 0.2,
       noise => 0.1, seed => 21);
ANALYZE prm_tap_consistency;

BEGIN;
SELECT plan(26);

-- Hand-made raters, 10 pairs x 4 asks in alternating order (0, 1, 0, 1):
-- 'second' always picks the second shown, 'stable' always picks response a
CREATE TEMP TABLE hand AS
SELECT r AS rater, p AS pair_id, k AS ask, k % 2 AS condition,
       CASE r WHEN 'second' THEN false ELSE k % 2 = 0 END AS chose_first
  FROM unnest('{second,stable}'::text[]) r, generate_series(1, 10) p,
       generate_series(0, 3) k;
CREATE TEMP TABLE hand_c AS
SELECT rater, pluralrm.rater_consistency(pair_id, condition, chose_first) AS c
  FROM hand GROUP BY rater;

-- the second shown every time: each pair is a Fisher table with P = 1/6
SELECT is((SELECT (c).kind FROM hand_c WHERE rater = 'second'), 'constructed',
          'always the second shown: constructed');
SELECT ok((SELECT abs((c).p_value_condition / (2 * (1 / 6.0::float8) ^ 10) - 1) < 1e-12
             FROM hand_c WHERE rater = 'second'),
          'its condition p-value is the exact stratified 2 (1/6)^10');
SELECT is((SELECT ((c).inconsistent_pairs, (c).minority_answers, (c).first_shown_rate,
                   (c).weight)::text FROM hand_c WHERE rater = 'second'),
          '(10,20,0,0)', 'every pair inconsistent, 20 minority answers, weight 0');

-- the same answer every time: a coin repeats itself on 4 asks with P = 1/8
SELECT is((SELECT (c).kind FROM hand_c WHERE rater = 'stable'), 'stable',
          'the same answer at every ask: stable');
SELECT ok((SELECT abs((c).p_value_non_attitude / (1 / 8.0::float8) ^ 10 - 1) < 1e-12
                  AND (c).p_value_stable = 1 AND (c).p_value_condition = 1
                  AND (c).agreement = 1 AND (c).weight = 1
             FROM hand_c WHERE rater = 'stable'),
          'its non-attitude p-value is (1/8)^10, the others 1');

-- one pair asked 8 times, 3 of 4 asks in each order picked the first shown:
-- Fisher's exact test on the tea-tasting table, two-sided p = 34/70
SELECT ok((SELECT abs((pluralrm.pair_consistency(k % 2, k NOT IN (0, 7))).p_value_condition
                      - 34 / 70.0) < 1e-14
             FROM generate_series(0, 7) k),
          'one pair is Fisher''s exact test: p = 34/70');

-- 12 asks with 4 answers against the majority: the stable p-value is
-- P(Bin(12, 0.05) >= 4), summed here from the binomial formula
SELECT ok((SELECT abs((pluralrm.pair_consistency(k % 2, (k IN (0, 3, 4, 7)) = (k % 2 = 0))).p_value_stable
                      - (SELECT sum(factorial(12) / (factorial(i) * factorial(12 - i))
                                    * 0.05 ^ i * 0.95 ^ (12 - i))::float8
                           FROM generate_series(4, 12) i)) < 1e-14
             FROM generate_series(0, 11) k),
          'the stable p-value of 4 minority answers in 12 is P(Bin(12, 0.05) >= 4)');

-- Planted raters from synthetic_comparisons: 300 users, 30% non-attitudes,
-- 20% constructed, 10% label noise (a tremble of 5%)
CREATE FUNCTION pg_temp.classified(reasks int, pairs int, seed bigint)
RETURNS TABLE (planted text, kind text, weight float8)
LANGUAGE sql AS $$
    SELECT min(kind), (c).kind, (c).weight
      FROM (SELECT user_id, min(kind) AS kind,
                   pluralrm.rater_consistency(pair_id, condition,
                       (chosen < rejected) = (condition = 0)) AS c
              FROM pluralrm.synthetic_comparisons(users => 300,
                   comparisons_per_user => pairs, d => 4, reasks => reasks,
                   non_attitude_share => 0.3, constructed_share => 0.2,
                   noise => 0.1, seed => seed)
             GROUP BY user_id) s
     GROUP BY user_id, c
$$;
CREATE TEMP TABLE k5 AS SELECT * FROM pg_temp.classified(5, 20, 11);
CREATE TEMP TABLE k4 AS SELECT * FROM pg_temp.classified(4, 10, 12);
SELECT cmp_ok((SELECT avg((planted = kind)::int) FROM k5), '>=', 0.9,
              'planted raters, 20 pairs x 5 asks: at least 90% classified right');
SELECT cmp_ok((SELECT avg((planted = kind)::int) FROM k4), '>=', 0.9,
              'planted raters, 10 pairs x 4 asks: at least 90% classified right');
SELECT cmp_ok((SELECT min(a) FROM (SELECT avg((planted = kind)::int) AS a
                                     FROM k4 GROUP BY planted) s), '>=', 0.85,
              '10 pairs x 4 asks: at least 85% right within each planted kind');
SELECT cmp_ok((SELECT avg(weight) FROM k4 WHERE planted = 'stable'), '>=', 0.98::float8,
              'stable raters keep weight 1 (at most 2 alpha of them lost)');
SELECT is((SELECT sum(weight) FROM k4 WHERE planted <> 'stable'), 0::float8,
          'no planted non-attitude or constructed rater keeps weight 1');

-- Pairs asked 12 times without noise: each stable pair can be told apart
SELECT is((SELECT count(*) FILTER (WHERE (c).kind <> 'stable')
             FROM (SELECT pluralrm.pair_consistency(condition,
                          (chosen < rejected) = (condition = 0)) AS c
                     FROM pluralrm.synthetic_comparisons(users => 50,
                          comparisons_per_user => 4, d => 2, reasks => 12,
                          seed => 13)
                    GROUP BY user_id, pair_id) s),
          0::bigint, 'every stable pair of 12 asks is stable (p = 2^-11)');
SELECT cmp_ok((SELECT avg(((c).kind = 'non_attitude')::int)
                 FROM (SELECT pluralrm.pair_consistency(condition,
                              (chosen < rejected) = (condition = 0)) AS c
                         FROM pluralrm.synthetic_comparisons(users => 50,
                              comparisons_per_user => 4, d => 2, reasks => 12,
                              non_attitude_share => 1, seed => 13)
                        GROUP BY user_id, pair_id) s), '>=', 0.75,
              'most coin-tossed pairs of 12 asks are non-attitudes');

-- Weighting helps the fit: train on the planted raters (d = 32, 10 pairs x
-- 5 asks each), score fresh comparisons of stable raters with the same true
-- vector
CREATE TEMP TABLE truth AS
SELECT array_agg(sin(j * 2.4) * 0.5 ORDER BY j) AS w FROM generate_series(1, 32) j;
CREATE TEMP TABLE train AS
SELECT s.* FROM truth, pluralrm.synthetic_comparisons(users => 300,
       comparisons_per_user => 10, d => 32, reasks => 5, group_weights => truth.w,
       non_attitude_share => 0.3, constructed_share => 0.2, noise => 0.1,
       seed => 1) s;
CREATE TEMP TABLE heldout AS
SELECT s.* FROM truth, pluralrm.synthetic_comparisons(users => 1000,
       comparisons_per_user => 10, d => 32, group_weights => truth.w,
       seed => 1001) s;
CREATE TEMP TABLE rc AS
SELECT user_id, pluralrm.rater_consistency(pair_id, condition,
           (chosen < rejected) = (condition = 0)) AS c
  FROM train GROUP BY user_id;
CREATE TEMP TABLE fits AS
SELECT (pluralrm.btl_fit(chosen, rejected)).weights AS unweighted,
       (pluralrm.btl_fit(chosen, rejected, (rc.c).weight)).weights AS weighted,
       (pluralrm.btl_fit(chosen, rejected,
            CASE WHEN kind = 'stable' THEN 1.0 ELSE 0.0 END)).weights AS oracle
  FROM train JOIN rc USING (user_id);
CREATE FUNCTION pg_temp.right_order(w float8[], c float8[], r float8[])
RETURNS int LANGUAGE sql IMMUTABLE AS $$
    SELECT (sum(a * (x - y)) > 0)::int FROM unnest(w, c, r) u(a, x, y)
$$;
CREATE TEMP TABLE acc AS
SELECT avg(pg_temp.right_order(unweighted, chosen, rejected)) AS unweighted,
       avg(pg_temp.right_order(weighted, chosen, rejected)) AS weighted,
       avg(pg_temp.right_order(oracle, chosen, rejected)) AS oracle,
       avg(pg_temp.right_order(truth.w, chosen, rejected)) AS truth
  FROM heldout, fits, truth;
SELECT cmp_ok((SELECT weighted - unweighted FROM acc), '>=', 0.003,
              'weights from rater_consistency raise held-out accuracy');
SELECT cmp_ok((SELECT (weighted - unweighted) / (truth - unweighted) FROM acc), '>=', 0.25,
              'they recover at least a quarter of the accuracy lost to the planted raters');
SELECT cmp_ok((SELECT abs(weighted - oracle) FROM acc), '<=', 0.002,
              'the weighted fit is as good as one that knows the planted kinds');

-- Parallel plans give the serial answer
SET LOCAL max_parallel_workers_per_gather = 0;
CREATE TEMP TABLE ser AS
SELECT user_id, pluralrm.rater_consistency(pair_id, condition, chose_first) AS c
  FROM prm_tap_consistency GROUP BY user_id;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
SET LOCAL enable_hashagg = off;
CREATE FUNCTION pg_temp.plan_json(q text) RETURNS json LANGUAGE plpgsql AS $$
DECLARE j json;
BEGIN
    EXECUTE 'EXPLAIN (FORMAT JSON) ' || q INTO j;
    RETURN j;
END $$;
SELECT ok(pg_temp.plan_json('SELECT user_id, pluralrm.rater_consistency(pair_id, condition, chose_first) FROM prm_tap_consistency GROUP BY user_id')::text
          LIKE '%"Partial Mode": "Partial"%', 'rater_consistency runs as a partial aggregate');
CREATE TEMP TABLE par_grouped AS
SELECT user_id, pluralrm.rater_consistency(pair_id, condition, chose_first) AS c
  FROM prm_tap_consistency GROUP BY user_id;
SELECT is((SELECT count(*) FROM (SELECT * FROM ser EXCEPT SELECT * FROM par_grouped) a)
          + (SELECT count(*) FROM (SELECT * FROM par_grouped EXCEPT SELECT * FROM ser) b),
          0::bigint, 'parallel and serial plans classify every rater alike');
CREATE TEMP TABLE par AS
SELECT pluralrm.rater_consistency(pair_id, condition, chose_first) AS c
  FROM prm_tap_consistency;
SELECT is((SELECT c FROM par),
          (SELECT pluralrm.rater_consistency(pair_id, condition, chose_first)
             FROM (SELECT * FROM prm_tap_consistency ORDER BY random()) s),
          'a parallel run over all asks equals a serial run in another order');
RESET max_parallel_workers_per_gather;

-- NULLs, empty groups and bad input
SELECT is((SELECT ((c).asks, (c).skipped)::text
             FROM (SELECT pluralrm.rater_consistency(p, 0, CASE WHEN p > 3 THEN true END) AS c
                     FROM generate_series(1, 5) p) s),
          '(2,3)', 'asks with a NULL input are skipped and counted');
SELECT is((SELECT pluralrm.rater_consistency(1, 0, true) FROM generate_series(1, 0)),
          NULL, 'no asks: NULL');
SELECT throws_ok($$SELECT pluralrm.rater_consistency(1, 2, true)$$, '22023',
                 'condition must be 0 or 1, not 2', 'a condition other than 0 or 1');
SELECT throws_ok($$SELECT pluralrm.rater_consistency(1, 0, true, 0, 0.05)$$, '22023',
                 'alpha must be between 0 and 1, not 0', 'alpha = 0');
SELECT throws_ok($$SELECT pluralrm.pair_consistency(0, true, 0.01, 0.5)$$, '22023',
                 'tremble must be at least 0 and below 0.5, not 0.5', 'tremble = 0.5');
SELECT throws_ok($$SELECT pluralrm.rater_consistency(p, 0, true, p / 100.0, 0.05)
                     FROM generate_series(1, 2) p$$, '22023',
                 'alpha and tremble must be the same for every row of a group',
                 'alpha changing within a group');

SELECT * FROM finish();
ROLLBACK;

DROP TABLE prm_tap_consistency;
