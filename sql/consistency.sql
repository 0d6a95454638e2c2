-- rater_consistency and pair_consistency: stable preferences,
-- non-attitudes and constructed answers among re-asked pairs
SET extra_float_digits = 0;

-- Four raters, 6 pairs each asked 4 times in the order 0, 1, 0, 1
-- (condition 0: response a shown first). 'stable' always answers a;
-- 'flipper' answers by a fixed pattern unrelated to the order; 'first'
-- always picks the first shown; 'once' saw one pair only.
CREATE TABLE asks AS
SELECT r AS rater, p AS pair_id, k AS ask, k % 2 AS condition,
       CASE r
           WHEN 'stable' THEN k % 2 = 0
           WHEN 'flipper' THEN ((p * 7 + k * 3) % 5 < 2) = (k % 2 = 0)
           WHEN 'first' THEN true
       END AS chose_first
  FROM unnest('{stable,flipper,first}'::text[]) r, generate_series(1, 6) p,
       generate_series(0, 3) k
UNION ALL
SELECT 'once', 1, k, k % 2, k % 2 = 0 FROM generate_series(0, 3) k;

SELECT rater, (c).asks, (c).pairs, (c).pairs_reasked, (c).inconsistent_pairs,
       (c).minority_answers, round((c).agreement::numeric, 3) AS agreement,
       round((c).first_shown_rate::numeric, 3) AS first_shown,
       round((c).p_value_condition::numeric, 6) AS p_condition,
       round((c).p_value_stable::numeric, 6) AS p_stable,
       round((c).p_value_non_attitude::numeric, 6) AS p_non_attitude,
       (c).kind, (c).weight
  FROM (SELECT rater, pluralrm.rater_consistency(pair_id, condition, chose_first) AS c
          FROM asks GROUP BY rater) s
 ORDER BY rater;

-- A stricter level: alpha = 0.001, tremble = 0.02
SELECT rater, (c).kind, round((c).p_value_non_attitude::numeric, 6) AS p_non_attitude
  FROM (SELECT rater, pluralrm.rater_consistency(pair_id, condition, chose_first,
                                                 0.001, 0.02) AS c
          FROM asks GROUP BY rater) s
 ORDER BY rater;

-- One pair at a time: four asks are too few for any single pair
SELECT rater, pair_id, (c).kind, (c).minority_answers,
       round((c).p_value_non_attitude::numeric, 4) AS p_non_attitude
  FROM (SELECT rater, pair_id, pluralrm.pair_consistency(condition, chose_first) AS c
          FROM asks WHERE rater IN ('stable', 'flipper') AND pair_id <= 2
         GROUP BY rater, pair_id) s
 ORDER BY rater, pair_id;

-- Planted raters: 300 users, 30% non-attitudes, 20% constructed, 5 asks
CREATE TABLE planted AS
SELECT * FROM pluralrm.synthetic_comparisons(users => 300, d => 4, reasks => 5,
    non_attitude_share => 0.3, constructed_share => 0.2, noise => 0.1, seed => 11);
CREATE TABLE raters AS
SELECT user_id, min(kind) AS planted,
       pluralrm.rater_consistency(pair_id, condition,
                                  (chosen < rejected) = (condition = 0)) AS c
  FROM planted GROUP BY user_id;
SELECT planted, (c).kind, count(*) FROM raters GROUP BY 1, 2 ORDER BY 1, 2;

-- The weights join back to the comparisons
SELECT (m).n, (m).converged
  FROM (SELECT pluralrm.btl_fit(chosen, rejected, (r.c).weight) AS m
          FROM planted JOIN raters r USING (user_id)) s;

-- NULL inputs are skipped and counted; no rows give NULL
SELECT (c).asks, (c).skipped
  FROM (SELECT pluralrm.rater_consistency(p, 0, CASE WHEN p > 1 THEN true END) AS c
          FROM generate_series(1, 3) p) s;
SELECT pluralrm.rater_consistency(1, 0, true) IS NULL AS empty
  FROM generate_series(1, 0);

-- Bad input
SELECT pluralrm.rater_consistency(1, -1, true);
SELECT pluralrm.rater_consistency(1, 0, true, 1.5, 0.05);
SELECT pluralrm.pair_consistency(0, true, 0.01, -0.1);
SELECT pluralrm.pair_consistency(0, true, NULL, 0.05);

DROP TABLE asks, planted, raters;
