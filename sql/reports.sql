-- Diagnostic reports: erasure of a minority, and more raters or more labels
SET extra_float_digits = 0;

-- 400 raters, 20 pairs each; the 49% minority wants the opposite of the
-- 51% majority. The last 5 pairs of every rater are held out.
CREATE TABLE rep_opposed AS
SELECT *, (pair_id - 1) % 20 >= 15 AS held_out
  FROM pluralrm.synthetic_comparisons(users => 400, comparisons_per_user => 20,
       d => 8, group_shares => '{0.51,0.49}', seed => 1);
SELECT pluralrm.save_model('rep_single', pluralrm.btl_fit(chosen, rejected))
  FROM rep_opposed WHERE NOT held_out;
SELECT pluralrm.save_model('rep_mixture', pluralrm.mixture_fit(user_id, chosen, rejected, 2))
  FROM rep_opposed WHERE NOT held_out;
SELECT pluralrm.save_model('rep_factor', pluralrm.factor_fit(user_id, chosen, rejected, 2))
  FROM rep_opposed WHERE NOT held_out;

-- The single model serves the majority and fails the minority; the mixture
-- serves both. Erased: users served worse than chance on their held-out pairs.
SELECT group_value AS grp, users, comparisons,
       round(single_accuracy::numeric, 2) AS single_acc,
       round(plural_accuracy::numeric, 2) AS mixture_acc,
       round(single_log_loss::numeric, 2) AS single_ll,
       round(plural_log_loss::numeric, 2) AS mixture_ll,
       round(erased_share::numeric, 2) AS erased,
       round(plural_erased_share::numeric, 2) AS mixture_erased,
       round(centroid_cosine::numeric, 2) AS cosine,
       round(centroid_distance::numeric, 1) AS distance
  FROM pluralrm.erasure_report('rep_opposed', 'rep_single', 'rep_mixture', 'group_id',
                               holdout_column => 'held_out');

-- Per user: the five users of the minority the single model serves worst
SELECT group_value AS grp, user_id, comparisons,
       round(single_accuracy::numeric, 2) AS single_acc,
       round(plural_accuracy::numeric, 2) AS mixture_acc, erased, plural_fitted
  FROM pluralrm.erasure_by_user('rep_opposed', 'rep_single', 'rep_mixture', 'group_id',
                                holdout_column => 'held_out')
 WHERE group_value = '1'
 ORDER BY single_log_loss DESC, user_id LIMIT 5;

-- A query instead of a table (schema-qualify its tables)
SELECT group_value AS grp, users, round(plural_accuracy::numeric, 2) AS factor_acc
  FROM pluralrm.erasure_report(query => 'SELECT * FROM public.rep_opposed WHERE held_out',
                               single_model => 'rep_single', plural_model => 'rep_factor',
                               group_column => 'group_id');

-- More raters or more labels per rater? 400 raters with 15 comparisons each
\x on
SELECT raters, comparisons, per_rater_min, per_rater_median, per_rater_max,
       round(between_rater_variance::numeric, 2) AS between_rater_variance,
       round(within_rater_variance::numeric, 2) AS within_rater_variance,
       round(error_from_raters::numeric, 3) AS error_from_raters,
       round(error_from_labels::numeric, 3) AS error_from_labels,
       round(raters_at_balance::numeric, 1) AS raters_at_balance,
       recommendation, reasoning
  FROM pluralrm.rater_sufficiency(query => 'SELECT * FROM public.rep_opposed WHERE NOT held_out',
                                  model => 'rep_factor');
\x off

-- 10 raters with 300 comparisons each: each is well known, there are few
CREATE TABLE rep_few AS
SELECT * FROM pluralrm.synthetic_comparisons(users => 10, comparisons_per_user => 300,
       d => 8, group_shares => '{0.5,0.5}', seed => 1);
SELECT pluralrm.save_model('rep_few', pluralrm.factor_fit(user_id, chosen, rejected, 2))
  FROM rep_few;
SELECT raters, per_rater_median, round(between_rater_variance::numeric, 1) AS between_var,
       round(within_rater_variance::numeric, 3) AS within_var, recommendation
  FROM pluralrm.rater_sufficiency('rep_few', 'rep_few');

-- Bad input
\set SHOW_CONTEXT never
SELECT * FROM pluralrm.erasure_report('rep_opposed', 'rep_single', 'rep_mixture', 'grp');
SELECT * FROM pluralrm.erasure_report(query => 'SELECT *, group_id = 0 AS h FROM public.rep_opposed',
                                      single_model => 'rep_single', plural_model => 'rep_mixture',
                                      group_column => 'group_id', holdout_column => 'h');
SELECT * FROM pluralrm.erasure_report('rep_opposed', 'rep_single', 'nonesuch', 'group_id');
SELECT * FROM pluralrm.erasure_report('rep_opposed', 'rep_single', 'rep_mixture', 'group_id',
                                      holdout_column => 'ask');
SELECT * FROM pluralrm.rater_sufficiency('rep_opposed', 'rep_single');
SELECT * FROM pluralrm.rater_sufficiency(query => 'SELECT * FROM public.rep_opposed WHERE false',
                                         model => 'rep_factor');

-- Clean up
\set SHOW_CONTEXT errors
SELECT pluralrm.drop_model(m)
  FROM unnest('{rep_single,rep_mixture,rep_factor,rep_few}'::text[]) m;
DROP TABLE rep_opposed, rep_few;
