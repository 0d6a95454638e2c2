-- btl_items against independent answers: stationarity and log-likelihood
-- recomputed in SQL, closed forms, equivalent data sets, parallel plans,
-- and its errors with their SQLSTATEs
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS pluralrm;

-- 6000 comparisons of items 1..10 from Davidson's model (strengths
-- (i - 5.5) / 4, nu = 0.4), in two categories, by 60 raters. Parallel
-- scans need a regular table, so this one is committed and dropped.
DROP TABLE IF EXISTS prm_tap_items;
CREATE TABLE prm_tap_items AS
SELECT i, a, b, i % 2 AS category, i % 60 AS rater,
       CASE WHEN u < pa / d THEN 1.0 WHEN u < (pa + pb) / d THEN 0.0
            ELSE 0.5 END AS outcome
  FROM (SELECT i, a, b, u, exp((a - 5.5) / 4) AS pa, exp((b - 5.5) / 4) AS pb,
               exp((a - 5.5) / 4) + exp((b - 5.5) / 4)
               + 0.4 * exp(((a - 5.5) / 4 + (b - 5.5) / 4) / 2) AS d
          FROM (SELECT i, 1 + i % 10 AS a, 1 + (i % 10 + 1 + (i / 10) % 9) % 10 AS b,
                       abs(sin(i * 12.9898) * 43758.5453)
                       - floor(abs(sin(i * 12.9898) * 43758.5453)) AS u
                  FROM generate_series(1, 6000) i) g) p;
ANALYZE prm_tap_items;

-- the same comparisons 25 times (150,000 rows, 1,500 raters): more rows
-- than btl_items sorts and merges in one go
DROP TABLE IF EXISTS prm_tap_items_big;
CREATE TABLE prm_tap_items_big AS
SELECT i + 6000 * k AS i, a, b, category, rater + 60 * k AS rater, outcome
  FROM prm_tap_items, generate_series(0, 24) k;
ANALYZE prm_tap_items_big;

BEGIN;
SELECT plan(37);

CREATE TEMP TABLE c AS SELECT * FROM prm_tap_items;
CREATE TEMP TABLE fit AS
SELECT pluralrm.btl_items(a, b, outcome) AS m FROM c;
CREATE TEMP TABLE est AS
SELECT s.item::bigint AS item, s.strength, s.se, s.wins, s.losses, s.ties
  FROM fit, pluralrm.item_strengths(fit.m) s;

-- probabilities of each comparison's outcomes at the fit
CREATE TEMP TABLE prob AS
SELECT c.*, pa / d AS p_a, pb / d AS p_b, t / d AS p_t
  FROM c,
       LATERAL (SELECT exp(ea.strength) AS pa, exp(eb.strength) AS pb,
                       (SELECT (m).nu FROM fit)
                       * sqrt(exp(ea.strength) * exp(eb.strength)) AS t
                  FROM est ea, est eb
                 WHERE ea.item = c.a AND eb.item = c.b) q,
       LATERAL (SELECT pa + pb + t AS d) r;

SELECT ok((SELECT (m).converged AND (m).items = 10 AND (m).pairs = 45
                  AND (m).comparisons = 6000 FROM fit),
          'the default fit converges on 10 items and 45 pairs');
SELECT ok((SELECT max(abs(g)) FROM (
             SELECT e.item, sum(CASE WHEN p.a = e.item THEN
                                       (p.outcome = 1)::int + 0.5 * (p.outcome = 0.5)::int
                                       - p.p_a - 0.5 * p.p_t
                                     ELSE
                                       (p.outcome = 0)::int + 0.5 * (p.outcome = 0.5)::int
                                       - p.p_b - 0.5 * p.p_t END)
                            - 0.01 * e.strength AS g
               FROM est e JOIN prob p ON e.item IN (p.a, p.b)
              GROUP BY e.item, e.strength) s) < 1e-7,
          'the gradient of the penalized log-likelihood in the strengths, '
          'computed in SQL, vanishes at the fit');
SELECT ok(abs((SELECT sum((outcome = 0.5)::int - p_t) FROM prob)) < 1e-7,
          'the gradient in log nu, computed in SQL, vanishes at the fit');
SELECT ok(abs((SELECT (m).loglik FROM fit)
              - (SELECT sum(ln(CASE outcome WHEN 1 THEN p_a WHEN 0 THEN p_b
                                            ELSE p_t END)) FROM prob)) < 1e-8,
          'the reported log-likelihood matches SQL');
SELECT ok(abs((SELECT sum(strength) FROM est)) < 1e-10,
          'centred strengths sum to zero');
SELECT ok((SELECT (m).nu BETWEEN 0.3 AND 0.5 FROM fit) AND
          (SELECT corr(strength, (item - 5.5) / 4) > 0.99 FROM est),
          'strengths and nu recover the truth within sampling error');
SELECT is((SELECT array_agg(item::text) FROM est),
          '{1,2,3,4,5,6,7,8,9,10}', 'bigint items come in numeric order');
SELECT ok((SELECT bool_and(e.wins = w.wins AND e.losses = w.losses AND e.ties = w.ties)
             FROM est e JOIN (
                  SELECT item, count(*) FILTER (WHERE score = 1) AS wins,
                         count(*) FILTER (WHERE score = 0) AS losses,
                         count(*) FILTER (WHERE score = 0.5) AS ties
                    FROM (SELECT a AS item, outcome AS score FROM c
                          UNION ALL SELECT b, 1 - outcome FROM c) s
                   GROUP BY item) w USING (item)),
          'wins, losses and ties per item match counts in SQL');

-- text ids, rows in another order, integer ids of mixed types
SELECT ok((SELECT max(abs(t.strength - e.strength)) FROM est e,
             (SELECT s.* FROM (SELECT pluralrm.btl_items(a::text, b::text, outcome) AS m
                                 FROM c) f,
                     pluralrm.item_strengths(f.m) s) t
            WHERE t.item = e.item::text) < 1e-12,
          'text ids give the same strengths as bigint ids');
SELECT is((SELECT (pluralrm.btl_items(a, b, outcome ORDER BY md5(i::text))).strength FROM c),
          (SELECT (m).strength FROM fit),
          'the order of the rows does not change a single bit');
SELECT ok((SELECT (pluralrm.btl_items(a::int, b::bigint, outcome)).converged FROM c),
          'integer and bigint ids mix');
SELECT is((SELECT (pluralrm.btl_items(a, b, outcome, 1, NULL::pluralrm.items_options)).strength
             FROM c),
          (SELECT (m).strength FROM fit), 'NULL options mean the defaults');

-- equivalent data sets
SELECT ok((SELECT max(abs(x - y)) FROM
             unnest((SELECT (pluralrm.btl_items(a, b, outcome, CASE WHEN i % 3 = 0 THEN 2 ELSE 1 END)).strength FROM c),
                    (SELECT (pluralrm.btl_items(a, b, outcome)).strength FROM
                       (SELECT * FROM c UNION ALL SELECT * FROM c WHERE i % 3 = 0) d)) u(x, y)) < 1e-10,
          'a weight of 2 equals a repeated row');
SELECT ok((SELECT max(abs(x - y)) FROM
             unnest((SELECT (pluralrm.btl_items(a, b, outcome, 1, pluralrm.items_options(ties => 'half'))).strength FROM c),
                    (SELECT (pluralrm.btl_items(a, b, o, w)).strength FROM
                       (SELECT a, b, outcome AS o, 1.0 AS w FROM c WHERE outcome <> 0.5
                        UNION ALL SELECT a, b, 1, 0.5 FROM c WHERE outcome = 0.5
                        UNION ALL SELECT a, b, 0, 0.5 FROM c WHERE outcome = 0.5) d)) u(x, y)) < 1e-10,
          'ties => half equals each tie split into two half-weight wins');
SELECT ok((SELECT max(abs(x - y)) FROM
             unnest((SELECT (pluralrm.btl_items(a, b, outcome, 1, pluralrm.items_options(ties => 'drop'))).strength FROM c),
                    (SELECT (pluralrm.btl_items(a, b, outcome)).strength FROM c WHERE outcome <> 0.5)) u(x, y)) < 1e-10,
          'ties => drop equals leaving the ties out');
SELECT is((SELECT (pluralrm.btl_items(a, b, outcome)).nu FROM c WHERE outcome <> 0.5),
          0::float8, 'without ties in the data the Davidson nu is 0');

-- closed forms for two items, without a prior
CREATE TEMP TABLE two AS
SELECT 'x' AS a, 'y' AS b, o AS outcome
  FROM (SELECT 1.0 AS o FROM generate_series(1, 7)
        UNION ALL SELECT 0.0 FROM generate_series(1, 3)
        UNION ALL SELECT 0.5 FROM generate_series(1, 5)) s;
SELECT ok((SELECT abs((m).nu - 5 / sqrt(21)) < 1e-12
                  AND abs((m).strength[1] - (m).strength[2] - ln(7 / 3.0)) < 1e-12
             FROM (SELECT pluralrm.btl_items(a, b, outcome, 1,
                            pluralrm.items_options(prior => 0)) AS m FROM two) f),
          'two items with ties: nu = t / sqrt(ab), s_x - s_y = log(a / b)');
SELECT ok((SELECT abs((m).se[2] - sqrt(1 / 7.0 + 1 / 3.0)) < 1e-10 AND (m).se[1] = 0
             FROM (SELECT pluralrm.btl_items(a, b, outcome, 1,
                            pluralrm.items_options(prior => 0, reference => 'x')) AS m
                     FROM two WHERE outcome <> 0.5) f),
          'two items without ties: se of s_y - s_x is sqrt(1/a + 1/b)');

-- identification: a reference shifts the maximum likelihood strengths
CREATE TEMP TABLE ml AS
SELECT s.* FROM (SELECT pluralrm.btl_items(a, b, outcome, 1, pluralrm.items_options(prior => 0)) AS m FROM c) f,
       pluralrm.item_strengths(f.m) s;
CREATE TEMP TABLE mlr AS
SELECT s.* FROM (SELECT pluralrm.btl_items(a, b, outcome, 1, pluralrm.items_options(prior => 0, reference => '4')) AS m FROM c) f,
       pluralrm.item_strengths(f.m) s;
SELECT ok((SELECT max(abs(r.strength - (m.strength - (SELECT strength FROM ml WHERE item = '4'))))
             FROM ml m JOIN mlr r USING (item)) < 1e-10,
          'reference strengths are the centred ones shifted to put item 4 at 0');
SELECT ok((SELECT se = 0 FROM mlr WHERE item = '4') AND
          (SELECT bool_and(r.se > m.se) FROM ml m JOIN mlr r USING (item) WHERE item <> '4'),
          'the reference has se 0; differences to it are less precise than to the mean');

-- a graph in two parts, with the default prior
CREATE TEMP TABLE parts AS
SELECT s.* FROM (SELECT pluralrm.btl_items(a + 100 * (a > 5)::int, b + 100 * (a > 5)::int, outcome) AS m
                   FROM c WHERE (a > 5) = (b > 5)) f,
       pluralrm.item_strengths(f.m) s;
SELECT is((SELECT array_agg(DISTINCT component ORDER BY component) FROM parts), '{1,2}',
          'two components are numbered 1 and 2');
SELECT ok((SELECT max(abs(t)) FROM (SELECT sum(strength) AS t FROM parts GROUP BY component) s) < 1e-10,
          'each component is centred on its own');

-- the bootstrap
CREATE TEMP TABLE b1 AS
SELECT pluralrm.btl_items(a, b, outcome, 1, pluralrm.items_options(bootstrap => 50, seed => 7)) AS m FROM c;
SELECT is((SELECT (pluralrm.btl_items(a, b, outcome, 1, pluralrm.items_options(bootstrap => 50, seed => 7))).lower FROM c),
          (SELECT (m).lower FROM b1), 'the same seed gives the same intervals');
SELECT isnt((SELECT (pluralrm.btl_items(a, b, outcome, 1, pluralrm.items_options(bootstrap => 50, seed => 8))).lower FROM c),
            (SELECT (m).lower FROM b1), 'another seed gives other intervals');
SELECT ok((SELECT bool_and(lower < strength AND strength < upper)
             FROM b1, pluralrm.item_strengths(b1.m))
          AND (SELECT (m).nu_lower < (m).nu AND (m).nu < (m).nu_upper FROM b1),
          'the intervals contain the estimates');
SELECT ok((SELECT max(abs(s.lower - s.strength) + abs(s.upper - s.strength))
             FROM (SELECT pluralrm.btl_items(a, b, outcome, 1, r,
                            pluralrm.items_options(bootstrap => 20, seed => 1)) AS m
                     FROM c, generate_series(1, 4) r) f,
                  pluralrm.item_strengths(f.m) s) < 1e-9,
          'raters who all gave the same answers: every rater resample is the data');

-- parallel plans run combine, serialize and deserialize
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
SET LOCAL parallel_leader_participation = off;
CREATE FUNCTION pg_temp.partial(q text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    line text;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
        IF line LIKE '%Partial%Aggregate%' THEN
            RETURN true;
        END IF;
    END LOOP;
    RETURN false;
END
$$;
SELECT ok(pg_temp.partial('SELECT category, pluralrm.btl_items(a::text, b::text, outcome, 1, rater, pluralrm.items_options(bootstrap => 30, seed => 3)) FROM prm_tap_items GROUP BY category'),
          'the grouped fit with raters gets a parallel plan');
CREATE TEMP TABLE par AS
SELECT category, pluralrm.btl_items(a::text, b::text, outcome, 1, rater,
                                    pluralrm.items_options(bootstrap => 30, seed => 3)) AS m
  FROM prm_tap_items GROUP BY category;
SET LOCAL max_parallel_workers_per_gather = 0;
CREATE TEMP TABLE ser AS
SELECT category, pluralrm.btl_items(a::text, b::text, outcome, 1, rater,
                                    pluralrm.items_options(bootstrap => 30, seed => 3)) AS m
  FROM prm_tap_items GROUP BY category;
SELECT ok((SELECT bool_and((p.m).comparisons = (s.m).comparisons AND (p.m).raters = 30
                           AND (s.m).raters = 30
                           AND (p.m).item = (s.m).item AND (p.m).wins = (s.m).wins)
             FROM par p JOIN ser s USING (category)),
          'parallel and serial fits count the same comparisons, items and raters');
SELECT ok((SELECT max(abs(x - y)) FROM par p JOIN ser s USING (category),
             unnest((p.m).strength || (p.m).se || (p.m).lower || (p.m).upper,
                    (s.m).strength || (s.m).se || (s.m).lower || (s.m).upper) u(x, y)) < 1e-12,
          'parallel and serial fits give the same strengths, errors and rater intervals');

-- rows merged in several runs, and their partial states combined
SET LOCAL max_parallel_workers_per_gather = 0;
CREATE TEMP TABLE bigser AS
SELECT pluralrm.btl_items(a, b, outcome, 1, rater,
                          pluralrm.items_options(bootstrap => 20, seed => 5)) AS m
  FROM prm_tap_items_big;
SET LOCAL max_parallel_workers_per_gather = 2;
CREATE TEMP TABLE bigpar AS
SELECT pluralrm.btl_items(a, b, outcome, 1, rater,
                          pluralrm.items_options(bootstrap => 20, seed => 5)) AS m
  FROM prm_tap_items_big;
SELECT ok((SELECT max(abs(x - y)) FROM bigser,
             (SELECT pluralrm.btl_items(a, b, outcome, 25) AS m FROM c) w,
             unnest((bigser.m).strength || (bigser.m).se || (bigser.m).wins,
                    (w.m).strength || (w.m).se || (w.m).wins) u(x, y)) < 1e-10,
          '150,000 rows give the strengths, errors and wins of 6,000 rows of weight 25');
SELECT is((SELECT (m).raters FROM bigser), 1500, 'and count 1,500 raters');
SELECT ok((SELECT max(abs(x - y)) FROM bigser s, bigpar p,
             unnest((s.m).strength || (s.m).lower || (s.m).upper,
                    (p.m).strength || (p.m).lower || (p.m).upper) u(x, y)) < 1e-12,
          'parallel and serial plans agree on them, rater intervals included');

-- errors
SELECT throws_ok($$SELECT pluralrm.btl_items(a, b, 3) FROM c$$, '22023', NULL,
                 'an outcome other than 0, 0.5 or 1 is refused');
SELECT throws_ok($$SELECT pluralrm.btl_items(a, b, outcome, 1, pluralrm.items_options(prior => 0)) FROM c WHERE NOT ((a = 10 AND outcome <> 1) OR (b = 10 AND outcome <> 0))$$,
                 '22000', NULL, 'an item that never lost has no maximum likelihood strength');
SELECT throws_ok($$SELECT pluralrm.btl_items(i, i + 1, 1) FROM generate_series(1, 5000) i$$,
                 '54000', NULL, 'more than 5000 items are refused');
SELECT throws_ok($$SELECT pluralrm.btl_items(a, b, outcome, 1, pluralrm.items_options(reference => 'eleven')) FROM c$$,
                 '22P02', NULL, 'a reference that is not a valid id is refused by the id type');
-- each weight finite, their total not: an error, not NaN strengths
SELECT throws_ok($$SELECT pluralrm.btl_items(a, b, o, w, pluralrm.items_options(prior => 0, ties => 'half'))
                     FROM (VALUES (1, 2, 1.0, 1.38242e306), (1, 2, 0.5, 1.3661e306), (1, 2, 1.0, 4.91502e307),
                                  (2, 1, 1.0, 1.71332e308), (1, 2, 0.5, 1.38242e306)) v(a, b, o, w)$$,
                 '22000', 'btl_items met a non-finite value while solving',
                 'weights near the largest double are refused, not fitted to NaN');

SELECT * FROM finish();
ROLLBACK;
DROP TABLE prm_tap_items;
DROP TABLE prm_tap_items_big;
