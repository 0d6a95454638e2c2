-- btl_item_classes: planted classes recovered, one class equal to
-- btl_items, independence of row order, GROUP BY, parallel plans, its
-- errors with their SQLSTATEs, storing and serving item models, and the
-- erasure report on items
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS pluralrm;

-- 40 raters compare every pair of items 1..6 three times; raters 1..28
-- prefer lower numbers (P(i beats j) = sigmoid(0.8 (j - i))), raters
-- 29..40 the reverse. The uniform draws come from a hash of the row, so
-- the data are the same in every run. Parallel scans need a regular
-- table, so this one is committed and dropped; it holds the comparisons
-- 40 times over (raters renumbered) for the parallel test.
DROP TABLE IF EXISTS prm_tap_ic;
CREATE TABLE prm_tap_ic AS
SELECT copy, rater + 1000 * copy AS rater, i AS item_a, j AS item_b, rep,
       CASE WHEN rater <= 28 THEN 'majority' ELSE 'minority' END AS grp,
       (u < 1 / (1 + exp(-(CASE WHEN rater <= 28 THEN 1 ELSE -1 END)
                         * 0.8 * (j - i))))::int::float8 AS outcome
  FROM (SELECT c AS copy, r AS rater, i, j, rep,
               abs(sin((c * 7919 + r * 131 + i * 17 + j * 7 + rep) * 12.9898)
                   * 43758.5453)
               - floor(abs(sin((c * 7919 + r * 131 + i * 17 + j * 7 + rep)
                               * 12.9898) * 43758.5453)) AS u
          FROM generate_series(0, 39) c, generate_series(1, 40) r,
               generate_series(1, 6) i, generate_series(1, 6) j,
               generate_series(1, 3) rep
         WHERE i < j) g;
ANALYZE prm_tap_ic;

BEGIN;
SELECT plan(59);

CREATE TEMP TABLE c AS SELECT * FROM prm_tap_ic WHERE copy = 0;
CREATE TEMP TABLE fit AS
SELECT pluralrm.btl_item_classes(item_a, item_b, outcome, rater, 2) AS m
  FROM c;

-- the fit and its planted classes
SELECT ok((SELECT (m).converged AND (m).k = 2 AND (m).raters = 40
                  AND (m).items = 6 AND (m).comparisons = 1800 FROM fit),
          'two classes of 40 raters and 6 items fitted and converged');
SELECT ok((SELECT (m).mixing[1] >= (m).mixing[2] FROM fit),
          'classes are ordered by mixing weight');
SELECT ok((SELECT abs((m).mixing[1] - 0.7) < 1e-6 FROM fit),
          'the majority class has mixing weight 28/40');
SELECT is((SELECT count(*) FROM fit, pluralrm.item_class_raters(fit.m) r
            WHERE r.responsibility > 0.5
              AND r.class <> CASE WHEN r.rater::int <= 28 THEN 1 ELSE 2 END),
          0::bigint, 'every rater is assigned to its planted class');
SELECT is((SELECT array_agg(s.rank ORDER BY s.item::int)
             FROM fit, pluralrm.item_class_strengths(fit.m) s
            WHERE s.class = 1),
          ARRAY[1, 2, 3, 4, 5, 6], 'the majority class ranks items 1 > ... > 6');
SELECT is((SELECT array_agg(s.rank ORDER BY s.item::int)
             FROM fit, pluralrm.item_class_strengths(fit.m) s
            WHERE s.class = 2),
          ARRAY[6, 5, 4, 3, 2, 1], 'the minority class ranks them in reverse');
SELECT ok((SELECT max(abs(t)) < 1e-9
             FROM (SELECT sum(s.strength) AS t
                     FROM fit, pluralrm.item_class_strengths(fit.m) s
                    GROUP BY s.class) x),
          'each class''s strengths are centred on 0');
SELECT ok((SELECT max(abs(r.total - 1)) < 1e-12
             FROM (SELECT sum(r.responsibility) AS total
                     FROM fit, pluralrm.item_class_raters(fit.m) r
                    GROUP BY r.rater) r),
          'each rater''s responsibilities sum to 1');
SELECT ok((SELECT abs((m).bic - (-2 * (m).loglik + 11 * ln(40))) < 1e-9
             FROM fit),
          'BIC counts K (N - 1) + K - 1 parameters against log(raters)');

-- the log-likelihood recomputed in SQL from the fitted parameters
SELECT ok((SELECT abs(sum(lse) - (SELECT (m).loglik FROM fit)) < 1e-8
             FROM (SELECT ln(sum(exp(lp))) AS lse
                     FROM (SELECT c.rater, k.k,
                                  ln((f.m).mixing[k.k])
                                  + sum(CASE WHEN c.outcome = 1
                                        THEN -ln(1 + exp(-(sa - sb)))
                                        ELSE -ln(1 + exp(sa - sb)) END) AS lp
                             FROM c, fit f, generate_series(1, 2) k(k),
                                  LATERAL (SELECT (f.m).strengths[k.k][c.item_a] AS sa,
                                                  (f.m).strengths[k.k][c.item_b] AS sb) s
                            GROUP BY c.rater, k.k, (f.m).mixing[k.k]) x
                    GROUP BY x.rater) y),
          'loglik equals the mixture likelihood recomputed in SQL');

-- a reference item
SELECT ok((SELECT bool_and(s.strength = 0)
             FROM (SELECT pluralrm.btl_item_classes(item_a, item_b, outcome,
                            1, rater, 2,
                            pluralrm.items_options(reference => '3')) AS m
                     FROM c) f,
                  pluralrm.item_class_strengths(f.m) s
            WHERE s.item = '3'),
          'with a reference its strength is 0 in every class');

-- one class is btl_items
SELECT ok((SELECT max(abs(a - b)) < 1e-8
             FROM (SELECT pluralrm.btl_item_classes(item_a, item_b, outcome,
                            rater, 1) AS m FROM c) k1,
                  (SELECT pluralrm.btl_items(item_a, item_b, outcome) AS m
                     FROM c) b,
                  unnest((k1.m).strengths, (b.m).strength) u(a, b)),
          'k = 1 gives the strengths of btl_items');
SELECT ok((SELECT abs((k1.m).loglik - (b.m).loglik) < 1e-8
             FROM (SELECT pluralrm.btl_item_classes(item_a, item_b, outcome,
                            rater, 1) AS m FROM c) k1,
                  (SELECT pluralrm.btl_items(item_a, item_b, outcome) AS m
                     FROM c) b),
          'k = 1 gives the log-likelihood of btl_items');

-- row order and id type
CREATE TEMP TABLE shuffled AS
SELECT * FROM c ORDER BY md5(rater::text || item_a || item_b || rep);
SELECT ok((SELECT (fit.m).strengths = (s.m).strengths
                  AND (fit.m).responsibilities = (s.m).responsibilities
                  AND (fit.m).rater_ids = (s.m).rater_ids
             FROM fit, (SELECT pluralrm.btl_item_classes(item_a, item_b,
                                 outcome, rater, 2) AS m FROM shuffled) s),
          'the fit does not depend on the order of the rows');
SELECT ok((SELECT abs((t.m).loglik - (fit.m).loglik) < 1e-9
             FROM fit, (SELECT pluralrm.btl_item_classes(item_a::text,
                                 item_b::text, outcome, 'r' || rater, 2) AS m
                          FROM c) t),
          'text ids give the same fit');

-- GROUP BY: one fit per group, each the fit of that group alone
CREATE TEMP TABLE grouped AS
SELECT rep, pluralrm.btl_item_classes(item_a, item_b, outcome, rater, 2) AS m
  FROM c GROUP BY rep;
SELECT is((SELECT count(*) FROM grouped WHERE (m).converged), 3::bigint,
          'GROUP BY fits one model per group');
SELECT ok((SELECT abs((g.m).loglik - (o.m).loglik) < 1e-9
             FROM grouped g,
                  (SELECT pluralrm.btl_item_classes(item_a, item_b, outcome,
                            rater, 2) AS m FROM c WHERE rep = 2) o
            WHERE g.rep = 2),
          'a group''s fit equals the fit of its rows alone');

-- a parallel plan gives the serial answer
SET LOCAL max_parallel_workers_per_gather = 0;
CREATE TEMP TABLE ser AS
SELECT pluralrm.btl_item_classes(item_a, item_b, outcome, 1, rater, 2,
         pluralrm.items_options(), 3) AS m FROM prm_tap_ic;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
CREATE FUNCTION pg_temp.plan_json(q text) RETURNS json LANGUAGE plpgsql AS $$
DECLARE j json;
BEGIN
    EXECUTE 'EXPLAIN (ANALYZE, FORMAT JSON) ' || q INTO j;
    RETURN j;
END $$;
CREATE TEMP TABLE plan AS
SELECT pg_temp.plan_json('SELECT pluralrm.btl_item_classes(item_a, item_b, outcome, 1, rater, 2, pluralrm.items_options(), 3) FROM prm_tap_ic') AS j;
SELECT ok((SELECT j::text LIKE '%"Partial Mode": "Partial"%' FROM plan),
          'btl_item_classes runs as a partial aggregate');
SELECT cmp_ok((SELECT (j->0->'Plan'->'Plans'->0->>'Workers Launched')::int FROM plan),
              '>=', 1, 'parallel workers were launched');
CREATE TEMP TABLE par AS
SELECT pluralrm.btl_item_classes(item_a, item_b, outcome, 1, rater, 2,
         pluralrm.items_options(), 3) AS m FROM prm_tap_ic;
SELECT ok((SELECT (par.m).raters = 1600 AND (par.m).rater_ids = (ser.m).rater_ids
                  AND abs((par.m).loglik - (ser.m).loglik) < 1e-9 * abs((ser.m).loglik)
                  AND (SELECT max(abs(a - b)) FROM unnest((par.m).strengths,
                                                         (ser.m).strengths) u(a, b)) < 1e-9
                  AND (SELECT max(abs(a - b)) FROM unnest((par.m).mixing,
                                                         (ser.m).mixing) u(a, b)) < 1e-9
             FROM par, ser),
          'parallel and serial fits agree');
SET LOCAL max_parallel_workers_per_gather = 0;

-- bad input
SELECT throws_ok($$SELECT pluralrm.btl_item_classes(item_a, item_b, outcome, NULL::int, 2) FROM c$$,
                 '22004', NULL, 'a NULL rater is an error');
SELECT throws_ok($$SELECT pluralrm.btl_item_classes(item_a, item_b, outcome, rater, NULL) FROM c$$,
                 '22004', NULL, 'a NULL k is an error');
SELECT throws_ok($$SELECT pluralrm.btl_item_classes(item_a, item_b, outcome, rater, 0) FROM c$$,
                 '22023', NULL, 'k < 1 is an error');
SELECT throws_ok($$SELECT pluralrm.btl_item_classes(item_a, item_b, outcome, rater, 41) FROM c$$,
                 '22023', NULL, 'k above the number of raters is an error');
SELECT throws_ok($$SELECT pluralrm.btl_item_classes(item_a, item_b, outcome, rater, 1 + rater % 2) FROM c$$,
                 '22023', NULL, 'k must be the same on every row');
SELECT throws_ok($$SELECT pluralrm.btl_item_classes(item_a, item_b, 'NaN', rater, 2) FROM c$$,
                 '22023', NULL, 'a NaN outcome is an error');
SELECT throws_ok($$SELECT pluralrm.btl_item_classes(item_a, item_b, outcome, 'NaN', rater, 2, NULL) FROM c$$,
                 '22023', NULL, 'a NaN weight is an error');
SELECT throws_ok($$SELECT pluralrm.btl_item_classes(item_a, item_b, 0.5, rater, 2) FROM c$$,
                 '22000', NULL, 'all ties under Davidson (nu infinite) are an error');
SELECT throws_ok($$SELECT pluralrm.btl_item_classes(item_a, item_b, outcome, 1, rater, 2, pluralrm.items_options(), 0) FROM c$$,
                 '22023', NULL, 'restarts < 1 is an error');
SELECT ok((SELECT pluralrm.btl_item_classes(item_a, item_b, outcome, rater, 2) IS NULL
             FROM c WHERE false),
          'no rows give NULL');
SELECT ok((SELECT (m).converged AND (m).tie_model = 'half'
             FROM (SELECT pluralrm.btl_item_classes(item_a, item_b,
                            CASE WHEN rep = 3 THEN 0.5 ELSE outcome END, 1,
                            rater, 2, pluralrm.items_options(ties => 'half')) AS m
                     FROM c) f),
          'ties counted as half a win are fitted');

-- Davidson ties, the default: a third of the third repetition's
-- comparisons become ties
CREATE TEMP TABLE ct AS
SELECT rater, item_a, item_b, rep,
       CASE WHEN rep = 3 AND (rater + item_a + item_b) % 3 = 0 THEN 0.5
            ELSE outcome END AS outcome
  FROM c;
CREATE TEMP TABLE fit_d AS
SELECT pluralrm.btl_item_classes(item_a, item_b, outcome, rater, 2) AS m
  FROM ct;
SELECT ok((SELECT (m).converged AND (m).tie_model = 'davidson'
                  AND (m).nu > 0 AND (m).nu < 1 FROM fit_d),
          'ties under the default davidson model are fitted, with one nu');
SELECT ok((SELECT (m).nu = 0 FROM fit),
          'without ties nu is 0 (not estimated)');
SELECT ok((SELECT abs((m).bic - (-2 * (m).loglik + 12 * ln(40))) < 1e-9
             FROM fit_d),
          'BIC counts nu once: K (N - 1) + K - 1 + 1 parameters');
SELECT is((SELECT count(*) FROM fit_d, pluralrm.item_class_raters(fit_d.m) r
            WHERE r.responsibility > 0.5
              AND r.class <> CASE WHEN r.rater::int <= 28 THEN 1 ELSE 2 END),
          0::bigint, 'with ties every rater is still assigned to its class');

-- Davidson's likelihood per rater and class, recomputed in SQL
CREATE TEMP TABLE dav_lp AS
SELECT x.rater, x.k, ln((f.m).mixing[x.k]) + x.ll AS lp
  FROM fit_d f,
       (SELECT ct.rater, k.k,
               sum(CASE WHEN ct.outcome = 1 THEN h - lse
                        WHEN ct.outcome = 0 THEN -h - lse
                        ELSE ln((f.m).nu) - lse END) AS ll
          FROM ct, fit_d f, generate_series(1, 2) k(k),
               LATERAL (SELECT ((f.m).strengths[k.k][ct.item_a]
                                - (f.m).strengths[k.k][ct.item_b]) / 2 AS h) d,
               LATERAL (SELECT ln(exp(d.h) + exp(-d.h) + (f.m).nu) AS lse) l
         GROUP BY ct.rater, k.k) x;
CREATE TEMP TABLE dav_rater AS
SELECT rater, mx + ln(sum(exp(lp - mx))) AS lse
  FROM (SELECT rater, lp, max(lp) OVER (PARTITION BY rater) AS mx
          FROM dav_lp) y
 GROUP BY rater, mx;
SELECT ok((SELECT abs(sum(lse) - (SELECT (m).loglik FROM fit_d)) < 1e-8
             FROM dav_rater),
          'loglik equals the Davidson mixture likelihood recomputed in SQL');
SELECT ok((SELECT max(abs(exp(l.lp - r.lse) - x.responsibility)) < 1e-9
             FROM dav_lp l JOIN dav_rater r USING (rater),
                  fit_d f, pluralrm.item_class_raters(f.m) x
            WHERE x.rater = l.rater::text AND x.class = l.k),
          'responsibilities equal the posteriors recomputed in SQL');

-- one class is btl_items, nu included
SELECT ok((SELECT max(abs(a - b)) < 1e-7 AND abs((k1.m).nu - (b.m).nu) < 1e-7
                  AND abs((k1.m).loglik - (b.m).loglik) < 1e-8
             FROM (SELECT pluralrm.btl_item_classes(item_a, item_b, outcome,
                            rater, 1) AS m FROM ct) k1,
                  (SELECT pluralrm.btl_items(item_a, item_b, outcome) AS m
                     FROM ct) b,
                  unnest((k1.m).strengths, (b.m).strength) u(a, b)
            GROUP BY (k1.m).nu, (b.m).nu, (k1.m).loglik, (b.m).loglik),
          'k = 1 gives the strengths, nu and log-likelihood of btl_items under Davidson');

-- storing and serving
SELECT is(pluralrm.save_model('prm_tap_ic', (SELECT m FROM fit)), 1,
          'save_model stores an item_classes_model');
SELECT ok((SELECT kind = 'mixture' AND k = 2 AND d = 6 FROM pluralrm.model_list
            WHERE name = 'prm_tap_ic'),
          'it is stored as a mixture over 6 one-hot dimensions');
SELECT is((SELECT v.items FROM pluralrm.model_versions v WHERE v.name = 'prm_tap_ic'),
          (SELECT (m).item FROM fit), 'the item ids are stored with it');
SELECT is((SELECT count(*) FROM pluralrm.user_coefficients u
             JOIN pluralrm.model_versions v USING (model_id)
            WHERE v.name = 'prm_tap_ic' AND u.covariance IS NULL),
          40::bigint, 'one row of responsibilities per rater');
SELECT ok((SELECT max(abs(pluralrm.item_score('prm_tap_ic', r.rater::bigint, s.item::int)
                          - e.expected)) < 1e-12
             FROM fit, pluralrm.item_class_strengths(fit.m) s,
                  (SELECT DISTINCT rater FROM c) r(rater),
                  LATERAL (SELECT sum(x.responsibility * y.strength) AS expected
                             FROM pluralrm.item_class_raters(fit.m) x
                             JOIN pluralrm.item_class_strengths(fit.m) y
                               ON y.class = x.class
                            WHERE x.rater = r.rater::text AND y.item = s.item) e
            WHERE s.class = 1),
          'item_score serves each rater the responsibility-weighted strengths');
SELECT ok((SELECT abs(pluralrm.item_score('prm_tap_ic', 999999, 6)
                      - ((m).mixing[1] * (m).strengths[1][6]
                         + (m).mixing[2] * (m).strengths[2][6])) < 1e-12 FROM fit),
          'an unseen rater gets the population''s strengths');
SELECT is(pluralrm.item_embedding('prm_tap_ic', 4), '{0,0,0,1,0,0}'::float8[],
          'item_embedding is the one-hot vector of the item');
SELECT throws_ok($$SELECT pluralrm.item_embedding('prm_tap_ic', 7)$$, '42704', NULL,
                 'an unknown item is an error');
SELECT is(pluralrm.save_model('prm_tap_ic_dav', (SELECT m FROM fit_d)), 1,
          'save_model stores a fit with Davidson ties');
SELECT ok((SELECT abs((v.metrics->>'nu')::float8 - (f.m).nu) < 1e-12
             FROM pluralrm.model_versions v, fit_d f
            WHERE v.name = 'prm_tap_ic_dav'),
          'its nu is kept in the version''s metrics');
SELECT is(pluralrm.save_model('prm_tap_ic_single',
            (SELECT pluralrm.btl_items(item_a, item_b, outcome) FROM c)), 1,
          'save_model stores an items_model');
SELECT ok((SELECT abs(pluralrm.item_score('prm_tap_ic_single', 1, 2) - (m).strength[2]) < 1e-12
             FROM (SELECT pluralrm.btl_items(item_a, item_b, outcome) AS m FROM c) b),
          'a stored btl_items fit serves its strengths');
SELECT throws_ok($$SELECT pluralrm.save_model('prm_tap_ic_none', (SELECT pluralrm.btl_items(item_a, item_b, outcome) FROM c WHERE false))$$,
                 '22004', 'cannot save a NULL model', 'saving a btl_items fit of no rows: 22004');
SELECT throws_ok($$SELECT pluralrm.save_model('prm_tap_ic_none', (SELECT pluralrm.btl_item_classes(item_a, item_b, outcome, rater, 2) FROM c WHERE false))$$,
                 '22004', 'cannot save a NULL model', 'saving a btl_item_classes fit of no rows: 22004');
CREATE FUNCTION pg_temp.save_unconverged(allow boolean) RETURNS integer
LANGUAGE plpgsql AS $f$
DECLARE
    m pluralrm.item_classes_model := (SELECT f.m FROM fit f);
BEGIN
    m.converged := false;
    RETURN pluralrm.save_model('prm_tap_ic_unconv', m, allow);
END
$f$;
SELECT throws_ok($$SELECT pg_temp.save_unconverged(false)$$,
                 '22023', 'model "prm_tap_ic_unconv" did not converge',
                 'an unconverged btl_item_classes fit is refused: 22023');
SELECT is(pg_temp.save_unconverged(true), 1,
          'allow_unconverged => true saves it');

-- the erasure report on items: both models fitted without the third
-- repetition, which is held out
SELECT is(pluralrm.save_model('prm_tap_ic_one',
            (SELECT pluralrm.btl_items(item_a, item_b, outcome)
               FROM c WHERE rep < 3)), 1,
          'the single model is saved');
SELECT is(pluralrm.save_model('prm_tap_ic_two',
            (SELECT pluralrm.btl_item_classes(item_a, item_b, outcome, rater, 2)
               FROM c WHERE rep < 3)), 1,
          'the latent classes are saved');
CREATE TEMP TABLE held AS
SELECT grp, rater,
       CASE WHEN outcome = 1 THEN item_a ELSE item_b END AS winner,
       CASE WHEN outcome = 1 THEN item_b ELSE item_a END AS loser,
       rep = 3 AS holdout
  FROM c;
CREATE TEMP TABLE er AS
SELECT * FROM pluralrm.erasure_report(
    single_model => 'prm_tap_ic_one', plural_model => 'prm_tap_ic_two',
    group_column => 'grp', user_column => 'rater', holdout_column => 'holdout',
    query => $q$SELECT grp, rater, holdout,
                       pluralrm.item_embedding('prm_tap_ic_one', winner) AS chosen,
                       pluralrm.item_embedding('prm_tap_ic_one', loser) AS rejected
                  FROM pg_temp.held$q$);
SELECT ok((SELECT single_accuracy < 0.4 AND erased_share > 0.5 FROM er
            WHERE group_value = 'minority'),
          'a single item model erases the minority');
SELECT ok((SELECT plural_accuracy > 0.7 AND plural_erased_share = 0 FROM er
            WHERE group_value = 'minority'),
          'the latent classes serve the minority');
SELECT ok((SELECT single_accuracy > 0.7 AND plural_accuracy > 0.7 FROM er
            WHERE group_value = 'majority'),
          'both serve the majority');

SELECT * FROM finish();
ROLLBACK;
DROP TABLE prm_tap_ic;
