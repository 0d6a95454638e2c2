-- Diagnostic reports: erasure of a minority by a single model, and whether
-- more raters or more labels per rater would help, on data with planted
-- structure, checked against answers computed here in SQL; and bad input
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS pluralrm;
BEGIN;
SELECT plan(50);
-- the reference queries below are small; compiling them would take longer
SET LOCAL jit = off;

-- 400 raters, 20 pairs each; the 49% minority wants the opposite of the
-- 51% majority on every dimension. The last 5 pairs of each rater are
-- held out.
CREATE TEMP TABLE opp AS
SELECT *, (pair_id - 1) % 20 >= 15 AS held_out
  FROM pluralrm.synthetic_comparisons(users => 400, comparisons_per_user => 20,
       d => 6, group_shares => '{0.51,0.49}', seed => 5);
CREATE TEMP TABLE saved1 AS
SELECT pluralrm.save_model('r_single', pluralrm.btl_fit(chosen, rejected))
  FROM opp WHERE NOT held_out;
CREATE TEMP TABLE saved2 AS
SELECT pluralrm.save_model('r_mix', pluralrm.mixture_fit(user_id, chosen, rejected, 2))
  FROM opp WHERE NOT held_out;

-- reference answers computed here: margins from the stored weights
CREATE FUNCTION pg_temp.margin(w float8[], chosen float8[], rejected float8[])
RETURNS float8 LANGUAGE sql IMMUTABLE AS $$
    SELECT sum(x * (c - r)) FROM unnest(w, chosen, rejected) v(x, c, r) $$;
CREATE FUNCTION pg_temp.cos(a float8[], b float8[]) RETURNS float8
LANGUAGE sql IMMUTABLE AS $$
    SELECT sum(x * y) / sqrt(sum(x * x) * sum(y * y)) FROM unnest(a, b) v(x, y) $$;
CREATE FUNCTION pg_temp.dist(a float8[], b float8[]) RETURNS float8
LANGUAGE sql IMMUTABLE AS $$
    SELECT sqrt(sum((x - y) ^ 2)) FROM unnest(a, b) v(x, y) $$;
-- each user's weights under a stored per-user model: sum_c coef_c B_c
CREATE TEMP VIEW user_weights AS
SELECT mv.name, uc.user_id, array_agg(w ORDER BY j) AS w
  FROM (SELECT uc.model_id, uc.user_id, j,
               sum(uc.coefficients[c] * mv.base_rewards[c][j]) AS w
          FROM pluralrm.user_coefficients uc
          JOIN pluralrm.model_versions mv USING (model_id),
               generate_subscripts(mv.base_rewards, 1) c,
               generate_subscripts(mv.base_rewards, 2) j
         GROUP BY 1, 2, 3) s
  JOIN pluralrm.model_versions mv USING (model_id)
  JOIN pluralrm.user_coefficients uc USING (model_id, user_id)
 GROUP BY mv.name, uc.user_id;
CREATE TEMP TABLE ref_user AS
SELECT o.group_id, o.user_id::text AS user_id, count(*) AS n,
       avg((pg_temp.margin(s.w, chosen, rejected) > 0)::int) AS single_acc,
       avg(ln(1 + exp(-pg_temp.margin(s.w, chosen, rejected)))) AS single_ll,
       avg((pg_temp.margin(m.w, chosen, rejected) > 0)::int) AS mix_acc,
       avg(ln(1 + exp(-pg_temp.margin(m.w, chosen, rejected)))) AS mix_ll
  FROM opp o
  CROSS JOIN (SELECT array_agg(x) AS w
                FROM unnest(pluralrm.model_weights('r_single')) x) s
  JOIN user_weights m ON m.name = 'r_mix' AND m.user_id = o.user_id::text
 WHERE o.held_out
 GROUP BY 1, 2;
-- the group-oracle: a BTL model fitted on each group's training comparisons
CREATE TEMP TABLE oracle AS
SELECT group_id, pluralrm.btl_fit(chosen, rejected) AS m
  FROM opp WHERE NOT held_out GROUP BY group_id;

CREATE TEMP TABLE rep AS
SELECT * FROM pluralrm.erasure_report('opp', 'r_single', 'r_mix', 'group_id',
                                      holdout_column => 'held_out');
CREATE TEMP TABLE byu AS
SELECT * FROM pluralrm.erasure_by_user('opp', 'r_single', 'r_mix', 'group_id',
                                       holdout_column => 'held_out');

SELECT results_eq('SELECT group_value, users, comparisons FROM rep',
                  $$VALUES ('0', 204::bigint, 1020::bigint), ('1', 196::bigint, 980::bigint)$$,
                  'erasure_report: one row per group with its held-out users and comparisons');

-- 51/49 opposite split: the single model serves the majority, fails the
-- minority; the mixture serves both
SELECT cmp_ok((SELECT single_accuracy FROM rep WHERE group_value = '0'), '>', 0.6::float8,
              '51/49: the single model serves the majority above 0.6');
SELECT cmp_ok((SELECT single_accuracy FROM rep WHERE group_value = '1'), '<', 0.4::float8,
              '51/49: the single model serves the minority below 0.4, worse than chance');
SELECT ok((SELECT bool_and(plural_accuracy > 0.75) FROM rep),
          '51/49: the mixture serves both groups above 0.75');
SELECT ok((SELECT bool_and(abs(r.plural_accuracy
                               - (SELECT avg((pg_temp.margin((o.m).weights, c.chosen, c.rejected) > 0)::int)
                                    FROM opp c WHERE c.held_out AND c.group_id::text = r.group_value)) < 0.03)
             FROM rep r JOIN oracle o ON o.group_id::text = r.group_value),
          '51/49: the mixture is within 3 points of a BTL model fitted on each group alone');
SELECT cmp_ok((SELECT erased_share FROM rep WHERE group_value = '1'), '>', 0.6::float8,
              '51/49: most of the minority is erased by the single model');
SELECT cmp_ok((SELECT erased_share FROM rep WHERE group_value = '0'), '<', 0.3::float8,
              '51/49: few of the majority are erased by the single model');
SELECT ok((SELECT bool_and(plural_erased_share < 0.1) FROM rep),
          '51/49: the mixture erases under 10% of either group');

-- the report's numbers against the reference computed from the weights
SELECT ok((SELECT bool_and(abs(r.single_accuracy - x.acc) < 1e-12
                           AND abs(r.single_log_loss - x.ll) < 1e-9
                           AND abs(r.plural_accuracy - x.macc) < 1e-12
                           AND abs(r.plural_log_loss - x.mll) < 1e-9)
             FROM rep r
             JOIN (SELECT group_id::text AS g, sum(single_acc * n) / sum(n) AS acc,
                          sum(single_ll * n) / sum(n) AS ll,
                          sum(mix_acc * n) / sum(n) AS macc, sum(mix_ll * n) / sum(n) AS mll
                     FROM ref_user GROUP BY 1) x ON x.g = r.group_value),
          'group accuracies and log-losses match margins computed from the stored weights');
SELECT ok((SELECT bool_and(abs(r.erased_share - x.share) < 1e-12
                           AND abs(r.plural_erased_share - x.mshare) < 1e-12)
             FROM rep r
             JOIN (SELECT group_id::text AS g, avg((single_acc < 0.5)::int) AS share,
                          avg((mix_acc < 0.5)::int) AS mshare
                     FROM ref_user GROUP BY 1) x ON x.g = r.group_value),
          'erased shares match the share of users below 0.5 computed from the weights');
SELECT is((SELECT count(*) FROM byu b JOIN ref_user x USING (user_id)
            WHERE b.comparisons = x.n AND b.group_value = x.group_id::text
              AND abs(b.single_accuracy - x.single_acc) < 1e-12
              AND abs(b.plural_accuracy - x.mix_acc) < 1e-12
              AND abs(b.plural_log_loss - x.mix_ll) < 1e-9
              AND b.erased = (x.single_acc < 0.5) AND b.plural_fitted),
          400::bigint, 'erasure_by_user: every user''s numbers match the reference');

-- centroid: the single model points toward the majority's own weights
SELECT cmp_ok((SELECT centroid_cosine FROM rep WHERE group_value = '0'), '>', 0.3::float8,
              'centroid: the single model''s weights point toward the majority''s');
SELECT cmp_ok((SELECT centroid_cosine FROM rep WHERE group_value = '1'), '<', -0.3::float8,
              'centroid: and away from the minority''s');
SELECT ok((SELECT bool_and(abs(r.centroid_cosine - pg_temp.cos(w.w, (o.m).weights)) < 1e-9
                           AND abs(r.centroid_distance - pg_temp.dist(w.w, (o.m).weights)) < 1e-9)
             FROM rep r,
                  (SELECT array_agg(x) AS w FROM unnest(pluralrm.model_weights('r_single')) x) w,
                  (SELECT group_id, pluralrm.btl_fit(chosen, rejected) AS m
                     FROM opp GROUP BY group_id) o
            WHERE o.group_id::text = r.group_value),
          'centroid cosine and distance match each group''s own BTL fit on its comparisons');

-- a shared dimension: both groups want dimension 1, oppose on the others;
-- the single model keeps the shared part and serves both far below the mixture
CREATE TEMP TABLE shr AS
SELECT *, (pair_id - 1) % 20 >= 15 AS held_out
  FROM pluralrm.synthetic_comparisons(users => 300, comparisons_per_user => 20,
       d => 4, group_shares => '{0.5,0.5}', group_weights => '{{2,1.5,-1.5,1},{2,-1.5,1.5,-1}}',
       seed => 6);
CREATE TEMP TABLE saved3 AS
SELECT pluralrm.save_model('r_single_shr', pluralrm.btl_fit(chosen, rejected))
  FROM shr WHERE NOT held_out;
CREATE TEMP TABLE saved4 AS
SELECT pluralrm.save_model('r_mix_shr', pluralrm.mixture_fit(user_id, chosen, rejected, 2))
  FROM shr WHERE NOT held_out;
CREATE TEMP TABLE rep_shr AS
SELECT * FROM pluralrm.erasure_report('shr', 'r_single_shr', 'r_mix_shr', 'group_id',
                                      holdout_column => 'held_out');
SELECT ok((SELECT bool_and(single_accuracy > 0.5 AND single_accuracy < plural_accuracy - 0.08)
             FROM rep_shr),
          'shared dimension: the single model serves both groups above chance but far below the mixture');
SELECT ok((SELECT bool_and(centroid_cosine BETWEEN 0.2 AND 0.8) FROM rep_shr),
          'shared dimension: the single model is partly aligned with both groups');

-- the query form, users the pluralistic model never saw, NULL and boolean groups
SELECT is((SELECT count(*) FILTER (WHERE NOT plural_fitted)
             FROM pluralrm.erasure_by_user(
                  query => 'SELECT user_id + 1000 * (user_id % 2) AS user_id, group_id, chosen, rejected
                              FROM pg_temp.opp WHERE held_out',
                  single_model => 'r_single', plural_model => 'r_mix',
                  group_column => 'group_id')),
          200::bigint, 'users without coefficients are flagged (plural_fitted = false)');
SELECT ok((SELECT bool_and(abs(b.plural_accuracy - b.single_accuracy) < 1e-12
                           OR b.plural_fitted)
             FROM pluralrm.erasure_by_user(
                  query => 'SELECT user_id + 1000 AS user_id, group_id, chosen, rejected
                              FROM pg_temp.opp WHERE held_out AND user_id <= 50',
                  single_model => 'r_single', plural_model => 'r_single',
                  group_column => 'group_id') b),
          'an unseen user is served the population reward');
SELECT results_eq($$SELECT group_value, users FROM pluralrm.erasure_report(
                        query => 'SELECT *, CASE WHEN user_id <= 10 THEN NULL ELSE group_id END AS g
                                    FROM pg_temp.opp WHERE held_out',
                        single_model => 'r_single', plural_model => 'r_mix', group_column => 'g')$$,
                  $$SELECT CASE WHEN user_id <= 10 THEN NULL ELSE group_id END::text, count(DISTINCT user_id)
                      FROM opp WHERE held_out GROUP BY 1 ORDER BY 1 NULLS LAST$$,
                  'rows with a NULL group form a group of their own, listed last');
SELECT results_eq($$SELECT group_value FROM pluralrm.erasure_report(
                        query => 'SELECT *, group_id = 1 AS minority FROM pg_temp.opp',
                        single_model => 'r_single', plural_model => 'r_mix',
                        group_column => 'minority', holdout_column => 'held_out')$$,
                  $$VALUES ('false'), ('true')$$,
                  'a boolean group column works, in the order of its type');

-- raters with one held-out comparison: their accuracy is 0 or 1, so the
-- erased share is one minus the group's accuracy
SELECT ok((SELECT bool_and(abs(erased_share - (1 - single_accuracy)) < 1e-12 AND users = comparisons)
             FROM pluralrm.erasure_report(
                  query => 'SELECT * FROM pg_temp.opp WHERE (pair_id - 1) % 20 = 19',
                  single_model => 'r_single', plural_model => 'r_mix', group_column => 'group_id')),
          'one held-out comparison per rater: erased share = 1 - accuracy');

-- bad input
SELECT throws_ok($$SELECT * FROM pluralrm.erasure_report('opp', 'r_single', 'r_mix', 'grp')$$,
                 '42703', 'group_column "grp" is not a column of the comparisons',
                 'unknown group column: 42703');
SELECT throws_ok($$SELECT * FROM pluralrm.erasure_report(query => 'SELECT nosuch FROM pg_temp.opp',
                        single_model => 'r_single', plural_model => 'r_mix', group_column => 'group_id')$$,
                 '42703', 'column "nosuch" does not exist',
                 'an error in the query is reported as the query''s own');
SELECT throws_ok($$SELECT * FROM pluralrm.erasure_by_user('opp', 'r_single', 'r_mix', 'group_id', user_column => 'rater')$$,
                 '42703', 'user_column "rater" is not a column of the comparisons',
                 'unknown user column: 42703');
SELECT throws_ok($$SELECT * FROM pluralrm.erasure_report(query => 'SELECT *, (group_id = 0) AS h FROM pg_temp.opp',
                        single_model => 'r_single', plural_model => 'r_mix', group_column => 'group_id',
                        holdout_column => 'h')$$,
                 'P0002', 'group "1" has no held-out comparisons',
                 'a group with no held-out comparisons: P0002');
SELECT throws_ok($$SELECT * FROM pluralrm.erasure_report('opp', 'r_single', 'nope', 'group_id')$$,
                 '42704', 'model "nope" does not exist', 'unknown model: 42704');
SELECT throws_ok($$SELECT * FROM pluralrm.erasure_report('opp', 'r_single', 'r_mix', 'group_id', query => 'SELECT 1')$$,
                 '22023', 'give exactly one of source and query', 'both source and query: 22023');
SELECT throws_ok($$SELECT * FROM pluralrm.erasure_report(single_model => 'r_single', plural_model => 'r_mix', group_column => 'group_id')$$,
                 '22023', 'give exactly one of source and query', 'neither source nor query: 22023');
SELECT throws_ok($$SELECT * FROM pluralrm.erasure_report('opp', 'r_single', 'r_mix', 'group_id', holdout_column => 'ask')$$,
                 '42804', 'holdout_column "ask" must be boolean', 'a holdout column that is not boolean: 42804');
SELECT throws_ok($$SELECT * FROM pluralrm.erasure_report('opp', 'r_single', 'r_mix', NULL)$$,
                 '22004', 'group_column must not be NULL', 'a NULL group column: 22004');
SELECT throws_ok($$SELECT * FROM pluralrm.erasure_report('opp', 'r_single', NULL, 'group_id')$$,
                 '22004', 'plural_model must not be NULL', 'a NULL model: 22004');

-- A single re-ask tells nothing about consistency: with every pair asked
-- once, every rater is insufficient, never a non-attitude
SELECT is((SELECT count(*) FROM (
              SELECT (pluralrm.rater_consistency(pair_id, condition,
                                                 (chosen < rejected) = (condition = 0))).kind
                FROM pluralrm.synthetic_comparisons(users => 40, comparisons_per_user => 10, d => 4,
                     non_attitude_share => 0.5, seed => 8)
               GROUP BY user_id) s WHERE kind <> 'insufficient'),
          0::bigint, 'pairs asked once: every rater is insufficient for the consistency tests');

-- rater_sufficiency: three planted regimes of the same 50/50 opposite split
--   many: 300 raters x 4 comparisons (each rater barely known)
--   few:  10 raters x 300 comparisons (each rater well known, few of them)
--   one:  300 raters x 1 comparison
CREATE TEMP TABLE many AS
SELECT * FROM pluralrm.synthetic_comparisons(users => 300, comparisons_per_user => 4,
       d => 6, group_shares => '{0.5,0.5}', seed => 3);
CREATE TEMP TABLE few AS
SELECT * FROM pluralrm.synthetic_comparisons(users => 10, comparisons_per_user => 300,
       d => 6, group_shares => '{0.5,0.5}', seed => 3);
CREATE TEMP TABLE one AS
SELECT * FROM pluralrm.synthetic_comparisons(users => 300, comparisons_per_user => 1,
       d => 6, group_shares => '{0.5,0.5}', seed => 3);
CREATE TEMP TABLE ffits AS
SELECT 'many' AS regime, pluralrm.factor_fit(user_id, chosen, rejected, 2) AS f FROM many
UNION ALL SELECT 'few', pluralrm.factor_fit(user_id, chosen, rejected, 2) FROM few
UNION ALL SELECT 'one', pluralrm.factor_fit(user_id, chosen, rejected, 2) FROM one;
CREATE TEMP TABLE saved5 AS
SELECT pluralrm.save_model('r_f_' || regime, f, true) FROM ffits;
CREATE TEMP TABLE saved6 AS
SELECT pluralrm.save_model('r_m_many', pluralrm.mixture_fit(user_id, chosen, rejected, 2)) FROM many;
CREATE TEMP TABLE saved7 AS
SELECT pluralrm.save_model('r_m_few', pluralrm.mixture_fit(user_id, chosen, rejected, 2)) FROM few;

CREATE TEMP TABLE suff AS
SELECT r.model, s.*
  FROM (VALUES ('r_f_many', 'many'), ('r_f_few', 'few'), ('r_f_one', 'one'),
               ('r_m_many', 'many'), ('r_m_few', 'few')) r(model, tab),
       LATERAL pluralrm.rater_sufficiency(r.tab::regclass, r.model) s;

SELECT is((SELECT recommendation FROM suff WHERE model = 'r_f_many'), 'collect more labels per rater',
          'factor model, 300 raters x 4 comparisons: collect more labels per rater');
SELECT is((SELECT recommendation FROM suff WHERE model = 'r_f_few'), 'collect more raters',
          'factor model, 10 raters x 300 comparisons: collect more raters');
SELECT is((SELECT recommendation FROM suff WHERE model = 'r_f_one'), 'collect more labels per rater',
          'factor model, raters with one comparison each: collect more labels per rater');
SELECT is((SELECT recommendation FROM suff WHERE model = 'r_m_many'), 'collect more labels per rater',
          'mixture, 300 raters x 4 comparisons: collect more labels per rater');
SELECT is((SELECT recommendation FROM suff WHERE model = 'r_m_few'), 'collect more raters',
          'mixture, 10 raters x 300 comparisons: collect more raters');
SELECT ok((SELECT (SELECT within_rater_variance FROM suff WHERE model = 'r_f_few')
                  < (SELECT within_rater_variance FROM suff WHERE model = 'r_f_many') / 5),
          'a rater with 300 comparisons is known far better than one with 4');
SELECT results_eq($$SELECT raters, comparisons, per_rater_min, per_rater_max FROM suff WHERE model = 'r_f_one'$$,
                  $$VALUES (300::bigint, 300::bigint, 1::bigint, 1::bigint)$$,
                  'raters with one comparison are counted');

-- the variances against the fitted model's own fields
SELECT ok((SELECT bool_and(abs(s.between_rater_variance
                               - ((f.f).prior_covariance[1][1] + (f.f).prior_covariance[2][2])) < 1e-12
                           AND abs(s.within_rater_variance
                               - (SELECT avg(u.covariance[1][1] + u.covariance[2][2])
                                    FROM pluralrm.factor_users(f.f) u)) < 1e-12)
             FROM suff s JOIN ffits f ON s.model = 'r_f_' || f.regime),
          'factor model: between = trace of the prior covariance, within = mean trace of the posterior covariances');
CREATE TEMP TABLE mfit AS
SELECT pluralrm.mixture_fit(user_id, chosen, rejected, 2) AS m FROM many;
SELECT ok((SELECT abs(s.between_rater_variance
                      - (SELECT sum(p * pg_temp.dist(b, c) ^ 2)
                           FROM unnest((m).mixing) WITH ORDINALITY x(p, i)
                           JOIN pluralrm.matrix_rows((m).base_rewards) WITH ORDINALITY r(b, i) USING (i),
                                (SELECT array_agg(w ORDER BY j) AS c
                                   FROM (SELECT j, sum((m).mixing[i] * (m).base_rewards[i][j]) AS w
                                           FROM generate_subscripts((m).base_rewards, 1) i,
                                                generate_subscripts((m).base_rewards, 2) j
                                          GROUP BY j) s) c)) < 1e-9
             FROM suff s, mfit WHERE s.model = 'r_m_many'),
          'mixture: between = spread of the components about their weighted mean');
SELECT ok((SELECT abs(s.within_rater_variance
                      - (SELECT avg(t) FROM (
                           SELECT sum(u.coefficients[i] * pg_temp.dist(b, w.w) ^ 2) AS t
                             FROM pluralrm.mixture_users(m) u
                             JOIN user_weights w ON w.name = 'r_m_many' AND w.user_id = u.user_id,
                                  pluralrm.matrix_rows((m).base_rewards) WITH ORDINALITY r(b, i)
                            GROUP BY u.user_id) t)) < 1e-9
             FROM suff s, mfit WHERE s.model = 'r_m_many'),
          'mixture: within = mean spread of the components under each rater''s responsibilities');

-- the two error terms and the recommendation follow the stated formula
SELECT ok((SELECT bool_and(abs(error_from_raters - (between_rater_variance + within_rater_variance) / raters) < 1e-12
                           AND abs(error_with_twice_the_raters - error_with_twice_the_labels
                                   - (within_rater_variance - between_rater_variance / raters) / 2) < 1e-12
                           AND (recommendation = 'collect more raters') = (raters < raters_at_balance))
             FROM suff),
          'error terms: A / raters + B / labels, more raters exactly when raters < between / within');

-- Does the advice hold? Fit again with twice the raters and with twice the
-- labels per rater, and compare held-out log-loss.
-- Few, diverse raters: 8 groups with orthogonal true vectors, 10 raters
-- with 300 comparisons each, a factor model with 8 base rewards. New
-- raters (21-80) are onboarded with 20 answers and scored on 30 others.
CREATE TEMP TABLE diverse AS
SELECT * FROM pluralrm.synthetic_comparisons(users => 80, comparisons_per_user => 600, d => 8,
       group_shares => array_fill(0.125::float8, ARRAY[8]),
       group_weights => '{{1,1,1,1,1,1,1,1},{1,-1,1,-1,1,-1,1,-1},{1,1,-1,-1,1,1,-1,-1},{1,-1,-1,1,1,-1,-1,1},{1,1,1,1,-1,-1,-1,-1},{1,-1,1,-1,-1,1,-1,1},{1,1,-1,-1,-1,-1,1,1},{1,-1,-1,1,-1,1,1,-1}}',
       seed => 1);
CREATE TEMP TABLE saved9 AS
SELECT pluralrm.save_model('r_d_' || v.name, pluralrm.factor_fit(user_id, chosen, rejected, 8), true)
  FROM diverse, (VALUES ('base', 10, 300), ('raters', 20, 300), ('labels', 10, 600)) v(name, raters, labels)
 WHERE user_id <= v.raters AND (pair_id - 1) % 600 < v.labels
 GROUP BY v.name;
CREATE TEMP TABLE onboarded AS
SELECT count(pluralrm.save_user(m, user_id::text, p))
  FROM (SELECT m, user_id, pluralrm.fit_user(m, chosen, rejected) AS p
          FROM diverse, unnest('{r_d_base,r_d_raters,r_d_labels}'::text[]) m
         WHERE user_id > 20 AND (pair_id - 1) % 600 < 20 GROUP BY 1, 2) s;
CREATE TEMP TABLE diverse_ll AS
SELECT m, (pluralrm.evaluate(m, user_id, chosen, rejected)).log_loss AS ll
  FROM diverse, unnest('{r_d_base,r_d_raters,r_d_labels}'::text[]) m
 WHERE user_id > 20 AND (pair_id - 1) % 600 BETWEEN 500 AND 529 GROUP BY m;
SELECT ok((SELECT recommendation = 'collect more raters'
                  AND (SELECT ll FROM diverse_ll WHERE m = 'r_d_raters')
                      < (SELECT ll FROM diverse_ll WHERE m = 'r_d_labels') - 0.1
             FROM pluralrm.rater_sufficiency(
                  query => 'SELECT * FROM pg_temp.diverse WHERE user_id <= 10 AND (pair_id - 1) % 600 < 300',
                  model => 'r_d_base')),
          '10 diverse raters x 300: "more raters", and twice the raters beats twice the labels by 0.1 in log-loss');
-- Many raters, few labels: 300 raters x 4 comparisons, scored on 10 of
-- their own later pairs
CREATE TEMP TABLE crowd AS
SELECT * FROM pluralrm.synthetic_comparisons(users => 600, comparisons_per_user => 20,
       d => 6, group_shares => '{0.5,0.5}', seed => 3);
CREATE TEMP TABLE saved10 AS
SELECT pluralrm.save_model('r_c_' || v.name, pluralrm.factor_fit(user_id, chosen, rejected, 2), true)
  FROM crowd, (VALUES ('base', 300, 4), ('raters', 600, 4), ('labels', 300, 8)) v(name, raters, labels)
 WHERE user_id <= v.raters AND (pair_id - 1) % 20 < v.labels
 GROUP BY v.name;
CREATE TEMP TABLE crowd_ll AS
SELECT m, (pluralrm.evaluate(m, user_id, chosen, rejected)).log_loss AS ll
  FROM crowd, unnest('{r_c_base,r_c_raters,r_c_labels}'::text[]) m
 WHERE user_id <= 300 AND (pair_id - 1) % 20 >= 10 GROUP BY m;
SELECT ok((SELECT recommendation = 'collect more labels per rater'
                  AND (SELECT ll FROM crowd_ll WHERE m = 'r_c_labels')
                      < (SELECT ll FROM crowd_ll WHERE m = 'r_c_raters') - 0.02
             FROM pluralrm.rater_sufficiency(
                  query => 'SELECT * FROM pg_temp.crowd WHERE user_id <= 300 AND (pair_id - 1) % 20 < 4',
                  model => 'r_c_base')),
          '300 raters x 4: "more labels per rater", and twice the labels beats twice the raters by 0.02 in log-loss');

-- a ragged set: the comparisons-per-rater distribution
SELECT results_eq($$SELECT per_rater_min, per_rater_median, per_rater_mean, per_rater_max
                      FROM pluralrm.rater_sufficiency(query => 'SELECT * FROM pg_temp.many WHERE pair_id % 4 < user_id % 4 + 1',
                                                      model => 'r_f_many')$$,
                  $$SELECT min(n), percentile_cont(0.5) WITHIN GROUP (ORDER BY n), avg(n)::float8, max(n)
                      FROM (SELECT count(*) AS n FROM many WHERE pair_id % 4 < user_id % 4 + 1 GROUP BY user_id) s$$,
                  'comparisons per rater: min, median, mean and max of the given comparisons');

-- bad input
SELECT throws_ok($$SELECT * FROM pluralrm.rater_sufficiency('many', 'r_single')$$,
                 '22023', 'model "r_single" is a btl model, not a factor or mixture model',
                 'a single BTL model has no spread between raters: 22023');
SELECT throws_ok($$SELECT * FROM pluralrm.rater_sufficiency('many', 'r_f_many', user_column => 'rater')$$,
                 '42703', 'user_column "rater" is not a column of the comparisons',
                 'unknown user column: 42703');
SELECT throws_ok($$SELECT * FROM pluralrm.rater_sufficiency(query => 'SELECT * FROM pg_temp.many WHERE false', model => 'r_f_many')$$,
                 'P0002', 'the comparisons have no rows with a user, chosen and rejected value',
                 'no comparisons: P0002');
SELECT throws_ok($$SELECT * FROM pluralrm.rater_sufficiency(query => 'SELECT user_id + 1000 AS user_id, chosen, rejected FROM pg_temp.many', model => 'r_f_many')$$,
                 'P0002', 'no rater of the comparisons has coefficients in model "r_f_many"',
                 'raters the model never saw: P0002');

SELECT * FROM finish();
ROLLBACK;
