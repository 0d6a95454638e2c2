-- synthetic_comparisons against independent answers: exact counts, the
-- structure of re-asks, label rates from closed forms and BTL recovery
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS pluralrm;

BEGIN;
SELECT plan(38);

-- Reproducibility: the same seed gives the same rows, another seed others
CREATE TEMP TABLE r1 AS
SELECT * FROM pluralrm.synthetic_comparisons(users => 50, d => 5, reasks => 3,
    group_shares => '{0.5,0.5}', noise => 0.1, non_attitude_share => 0.2,
    constructed_share => 0.2, seed => 5);
CREATE TEMP TABLE r2 AS
SELECT * FROM pluralrm.synthetic_comparisons(users => 50, d => 5, reasks => 3,
    group_shares => '{0.5,0.5}', noise => 0.1, non_attitude_share => 0.2,
    constructed_share => 0.2, seed => 5);
CREATE TEMP TABLE r3 AS
SELECT * FROM pluralrm.synthetic_comparisons(users => 50, d => 5, reasks => 3,
    group_shares => '{0.5,0.5}', noise => 0.1, non_attitude_share => 0.2,
    constructed_share => 0.2, seed => 6);
SELECT is((SELECT count(*) FROM (SELECT * FROM r1 EXCEPT ALL SELECT * FROM r2) e)
          + (SELECT count(*) FROM (SELECT * FROM r2 EXCEPT ALL SELECT * FROM r1) e),
          0::bigint, 'the same seed gives the same rows');
SELECT cmp_ok((SELECT count(*) FROM r1 JOIN r3 USING (comparison_id)
                WHERE r1.chosen <> r3.chosen), '>', 2900::bigint,
              'another seed gives other embeddings');

-- Shape: users x comparisons_per_user x reasks rows, numbered from 1
SELECT is((SELECT count(*) FROM r1), 50 * 20 * 3::bigint,
          'users x comparisons_per_user x reasks rows');
SELECT ok((SELECT min(comparison_id) = 1 AND max(comparison_id) = 3000
                  AND count(DISTINCT comparison_id) = 3000 FROM r1),
          'comparison_id numbers the rows 1..n');
SELECT is((SELECT count(*) FROM (SELECT user_id FROM r1 GROUP BY user_id
                                  HAVING count(DISTINCT pair_id) = 20) u),
          50::bigint, 'every user has comparisons_per_user distinct pairs');
SELECT is((SELECT count(*) FROM (
             SELECT pair_id FROM r1 GROUP BY pair_id
             HAVING count(*) = 3 AND count(DISTINCT user_id) = 1
                AND array_agg(ask ORDER BY ask) = '{1,2,3}'
                AND count(DISTINCT least(chosen, rejected)) = 1
                AND count(DISTINCT greatest(chosen, rejected)) = 1) p),
          1000::bigint,
          'every pair is asked reasks times to one user, always the same two responses');
SELECT is((SELECT count(*) FROM r1 a JOIN r1 b
             ON a.pair_id = b.pair_id AND b.ask = a.ask + 1
            WHERE a.condition = b.condition), 0::bigint,
          'successive asks of a pair alternate the presentation order');
SELECT ok((SELECT abs(avg(condition) - 0.5) < 0.05 FROM r1 WHERE ask = 1),
          'the first presentation order is a fair coin per pair');

-- Exact counts: cumulative rounding of share x users
CREATE TEMP TABLE g AS
SELECT * FROM pluralrm.synthetic_comparisons(users => 999,
    comparisons_per_user => 1, d => 2, group_shares => '{0.2,0.3,0.5}',
    non_attitude_share => 0.3, constructed_share => 0.2, seed => 1);
SELECT is((SELECT array_agg(n ORDER BY group_id)
             FROM (SELECT group_id, count(*) AS n FROM g GROUP BY group_id) s),
          '{200,300,499}'::bigint[], 'group sizes are 200, 300, 499 of 999 users');
SELECT ok((SELECT bool_and(abs(n - share * 999) < 1)
             FROM (SELECT group_id, count(*) AS n FROM g GROUP BY group_id) s
             JOIN unnest('{0.2,0.3,0.5}'::float8[]) WITH ORDINALITY u(share, o)
               ON o = group_id + 1),
          'each group holds its share of users within one user');
SELECT ok((SELECT bool_and(abs(n - share * 999) < 1)
             FROM (SELECT kind, count(*) AS n FROM g GROUP BY kind) s
             JOIN (VALUES ('non_attitude', 0.3), ('constructed', 0.2),
                          ('stable', 0.5)) v(kind, share) USING (kind)),
          'each rater kind holds its share of users within one user');
SELECT is((SELECT array_agg(n ORDER BY group_id)
             FROM (SELECT group_id, count(DISTINCT user_id) AS n
                     FROM pluralrm.synthetic_comparisons(users => 1000,
                          comparisons_per_user => 1, d => 2,
                          group_shares => '{0.51,0.49}') s
                    GROUP BY group_id) t),
          '{510,490}'::bigint[], 'shares 0.51 and 0.49 of 1000 users: 510 and 490');
SELECT cmp_ok((SELECT count(*) FROM (SELECT group_id, kind FROM g
                                      GROUP BY group_id, kind) s), '=', 9::bigint,
              'groups and kinds are assigned independently (all 9 combinations occur)');

-- Embeddings are N(0, 1) per coordinate
CREATE TEMP TABLE one AS
SELECT * FROM pluralrm.synthetic_comparisons(users => 1000,
    comparisons_per_user => 20, d => 4, group_weights => '{1.5,-1,0.5,0}',
    seed => 3);
SELECT ok((SELECT abs(avg(x)) < 4 * sqrt(1.0 / 160000)
                  AND abs(var_pop(x) - 1) < 4 * sqrt(2.0 / 160000)
             FROM one, unnest(chosen || rejected) x),
          'embedding coordinates have mean 0 and variance 1');

-- Labels: the true vector's accuracy is E sigmoid(|m|), m ~ N(0, 2 |w|^2),
-- computed here by numerical integration
CREATE FUNCTION pg_temp.expected_accuracy(norm2 float8) RETURNS float8
LANGUAGE sql IMMUTABLE AS $$
    SELECT sum(exp(-x * x / 2) / sqrt(2 * pi())
               / (1 + exp(-abs(x) * sqrt(2 * norm2))) * 0.001)
      FROM generate_series(-10000, 10000) i, LATERAL (SELECT i * 0.001 AS x) s
$$;
CREATE FUNCTION pg_temp.margin(w float8[], c float8[], r float8[]) RETURNS float8
LANGUAGE sql IMMUTABLE AS $$
    SELECT sum(a * (x - y)) FROM unnest(w, c, r) u(a, x, y)
$$;
SELECT ok((SELECT abs(avg((pg_temp.margin('{1.5,-1,0.5,0}', chosen, rejected) > 0)::int)
                      - pg_temp.expected_accuracy(3.5)) < 4 * sqrt(0.2 / 20000)
             FROM one),
          'the true vector orders the labels as often as E sigmoid(|m|) says');
SELECT ok((SELECT abs(avg(ln(1 / (1 + exp(-pg_temp.margin('{1.5,-1,0.5,0}', chosen, rejected)))))
                      - (SELECT 2 * sum(exp(-x * x / 2) / sqrt(2 * pi()) * 0.001
                                    * -ln(1 + exp(-x * sqrt(7))) / (1 + exp(-x * sqrt(7))))
                           FROM generate_series(-10000, 10000) i,
                                LATERAL (SELECT i * 0.001 AS x) s)) < 0.02
             FROM one),
          'the mean log-likelihood of the true vector matches its expectation');
SELECT ok((SELECT max(abs(v - t)) < 0.1
             FROM (SELECT (pluralrm.btl_fit(chosen, rejected, 1.0, 0.0)).weights AS w
                     FROM one) f,
                  unnest(f.w, '{1.5,-1,0.5,0}'::float8[]) u(v, t)),
          'btl_fit recovers the true vector within sampling error');

-- noise replaces that share of labels by a coin flip
SELECT ok((SELECT abs(avg((pg_temp.margin('{1.5,-1,0.5,0}', chosen, rejected) > 0)::int)
                      - (0.6 * pg_temp.expected_accuracy(3.5) + 0.4 * 0.5))
                  < 4 * sqrt(0.25 / 20000)
             FROM pluralrm.synthetic_comparisons(users => 1000,
                  comparisons_per_user => 20, d => 4,
                  group_weights => '{1.5,-1,0.5,0}', noise => 0.4, seed => 3)),
          'noise 0.4: accuracy of the true vector is 0.6 acc + 0.4 / 2');

-- Default vectors: norm scale for group 0, times agreement for the others
CREATE TEMP TABLE two AS
SELECT group_id, (pluralrm.btl_fit(chosen, rejected, 1.0, 0.0)).weights AS w
  FROM pluralrm.synthetic_comparisons(users => 2000, comparisons_per_user => 20,
       d => 4, group_shares => '{0.5,0.5}', agreement => '{1,-1,-1,-1}',
       scale => 2, seed => 8)
 GROUP BY group_id;
SELECT ok((SELECT abs(sqrt(sum(x * x)) - 2) < 0.12 FROM two, unnest(w) x
            WHERE group_id = 0),
          'the default true vector of group 0 has norm scale');
SELECT ok((SELECT max(abs(b - a * f)) < 0.2
             FROM (SELECT w FROM two WHERE group_id = 0) g0(w0),
                  (SELECT w FROM two WHERE group_id = 1) g1(w1),
                  unnest(w0, w1, '{1,-1,-1,-1}'::float8[]) u(a, b, f)),
          'group 1 shares dimension 1 with group 0 and opposes on the others');
CREATE TEMP TABLE opposed AS
SELECT group_id, (pluralrm.btl_fit(chosen, rejected, 1.0, 0.0)).weights AS w
  FROM pluralrm.synthetic_comparisons(users => 2000, d => 4,
       group_shares => '{0.5,0.5}', seed => 8)
 GROUP BY group_id;
SELECT ok((SELECT sum(a * b) / sqrt(sum(a * a) * sum(b * b))
             FROM (SELECT w FROM opposed WHERE group_id = 0) g0(w0),
                  (SELECT w FROM opposed WHERE group_id = 1) g1(w1),
                  unnest(w0, w1) u(a, b)) < -0.98,
          'by default the groups oppose on every dimension (cosine near -1)');

-- Rater kinds
SELECT ok((SELECT abs(avg(((chosen < rejected) = (condition = 0))::int) - 0.9) < 0.012
             FROM pluralrm.synthetic_comparisons(users => 500, d => 3,
                  constructed_share => 1, seed => 4)),
          'constructed raters pick the response shown first 90% of the time');
SELECT ok((SELECT abs(avg(same::int) - 0.5) < 0.02
             FROM (SELECT count(DISTINCT chosen) = 1 AS same
                     FROM pluralrm.synthetic_comparisons(users => 500, d => 3,
                          reasks => 2, non_attitude_share => 1, seed => 4)
                    GROUP BY pair_id) p),
          'non-attitudes agree with themselves on half of the re-asked pairs');
SELECT ok((SELECT bool_and(same)
             FROM (SELECT count(DISTINCT chosen) = 1 AS same
                     FROM pluralrm.synthetic_comparisons(users => 100, d => 3,
                          reasks => 4, seed => 4)
                    GROUP BY pair_id) p),
          'stable raters without noise repeat their answer at every ask');
SELECT is((SELECT avg(((chosen < rejected) = (condition = 0))::int)
             FROM pluralrm.synthetic_comparisons(users => 100, d => 3,
                  reasks => 2, seed => 4)),
          0.5::numeric,
          'asked in both orders, stable raters pick the first shown exactly half the time');

-- The planner knows the number of rows
CREATE FUNCTION pg_temp.plan_rows(q text) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE j json;
BEGIN
    EXECUTE 'EXPLAIN (FORMAT JSON) ' || q INTO j;
    RETURN (j->0->'Plan'->>'Plan Rows')::float8;
END $$;
SELECT is(pg_temp.plan_rows('SELECT * FROM pluralrm.synthetic_comparisons(users => 123, comparisons_per_user => 7, reasks => 3)'),
          2583::float8, 'the row estimate is users x comparisons_per_user x reasks');

-- Bad input
SELECT throws_ok($$SELECT * FROM pluralrm.synthetic_comparisons(d => 0)$$,
                 '22023', 'd must be between 1 and 2147483647, not 0', 'd = 0');
SELECT throws_ok($$SELECT * FROM pluralrm.synthetic_comparisons(d => 16001)$$,
                 '54000', 'd = 16001 is more than the limit of 16000 dimensions',
                 'd above the dimension limit');
SELECT throws_ok($$SELECT * FROM pluralrm.synthetic_comparisons(users => NULL)$$,
                 '22004', 'users must not be NULL', 'NULL users');
SELECT throws_ok($$SELECT * FROM pluralrm.synthetic_comparisons(group_shares => '{0.5,0.4}')$$,
                 '22023', 'group_shares must sum to 1, not 0.9', 'shares not summing to 1');
SELECT throws_ok($$SELECT * FROM pluralrm.synthetic_comparisons(d => 2, group_shares => '{0.5,0.5}',
                                                                group_weights => '{{1,0,0},{0,1,0}}')$$,
                 '2202E', 'group_weights must be a 2 x 2 array, not 2 x 3',
                 'true vectors of the wrong shape');
SELECT throws_ok($$SELECT * FROM pluralrm.synthetic_comparisons(d => 2, group_shares => '{0.5,0.5}',
                                                                agreement => '{1,-1,1}')$$,
                 '2202E', 'agreement must have d = 2 values, not 3', 'agreement of the wrong length');
SELECT throws_ok($$SELECT * FROM pluralrm.synthetic_comparisons(d => 1, group_weights => '{1}',
                                                                agreement => '{1}')$$,
                 '22023', 'agreement applies only when group_weights is NULL',
                 'agreement and group_weights together');
SELECT throws_ok($$SELECT * FROM pluralrm.synthetic_comparisons(group_shares => '{1.5,-0.5}')$$,
                 '22023', 'group share 2 must be positive, not -0.5', 'a negative share');
SELECT throws_ok($$SELECT * FROM pluralrm.synthetic_comparisons(non_attitude_share => 0.7,
                                                                constructed_share => 0.4)$$,
                 '22023', 'non_attitude_share and constructed_share must add up to at most 1, not 1.1',
                 'kind shares above 1');
SELECT throws_ok($$SELECT * FROM pluralrm.synthetic_comparisons(noise => 'NaN')$$,
                 '22023', 'noise must be between 0 and 1, not NaN', 'NaN noise');
SELECT throws_ok($$SELECT * FROM pluralrm.synthetic_comparisons(group_shares => '{0.5,NULL}')$$,
                 '22004', 'group_shares must not contain NULL elements', 'NULL share');
SELECT throws_ok($$SELECT * FROM pluralrm.synthetic_comparisons(d => 2, group_weights => '{1,NaN}')$$,
                 '22000', 'group_weights must not contain NaN or Infinity', 'NaN in true vectors');

SELECT * FROM finish();
ROLLBACK;
