-- pluralrm demonstration, run by test/demo.sh on a throwaway cluster.
-- Every number it prints comes from this run: the data are generated with
-- a seed, the models are fitted here.
\set ON_ERROR_STOP 1
\set QUIET on
\pset footer off
SET client_min_messages = warning;
SET extra_float_digits = 0;
CREATE EXTENSION pluralrm;

\echo
\echo '== 1. Comparisons from two groups of raters who want opposite things'
\echo '   600 raters saw 40 pairs of responses (8-d embeddings) and chose one.'
\echo '   51% of them (group 0) want the opposite of the other 49% (group 1).'
\echo '   Raters 1-560 are the training panel: their first 30 pairs are fitted,'
\echo '   the last 10 held out. Raters 561-600 arrive later as new users.'
CREATE TABLE comparisons AS
SELECT user_id, group_id, pair_id, chosen, rejected,
       (pair_id - 1) % 40 >= 30 AS held_out, user_id > 560 AS new_user
  FROM pluralrm.synthetic_comparisons(users => 600, comparisons_per_user => 40,
       d => 8, group_shares => '{0.51,0.49}', seed => 1);
CREATE VIEW panel AS SELECT * FROM comparisons WHERE NOT new_user;
SELECT group_id AS "group", count(DISTINCT user_id) AS raters,
       count(*) FILTER (WHERE NOT held_out) AS fitted,
       count(*) FILTER (WHERE held_out) AS held_out
  FROM panel GROUP BY 1 ORDER BY 1;

\echo '== 2. One reward model for everyone, and a mixture with a class per rater'
SELECT pluralrm.save_model('single', pluralrm.btl_fit(chosen, rejected)) AS v
  FROM panel WHERE NOT held_out \gset
CREATE TABLE mixture_fit AS
SELECT pluralrm.mixture_select(user_id, chosen, rejected, 3) AS m
  FROM panel WHERE NOT held_out;
SELECT pluralrm.save_model('mixture', m) AS v FROM mixture_fit \gset
SELECT 'single' AS model, 1 AS k, NULL AS "BIC for k = 1, 2, 3", NULL AS mixing
UNION ALL
SELECT 'mixture', (m).k,
       (SELECT string_agg(round(b::numeric)::text, ', ') FROM unnest((m).bic_by_k) b),
       (SELECT string_agg(round(p::numeric, 2)::text, ', ') FROM unnest((m).mixing) p)
  FROM mixture_fit;

\echo '== 3. Who the single model erases (held-out pairs of the panel)'
\echo '   erased: share of raters served worse than a coin flip; cosine: how'
\echo '   the single model''s weights align with the group''s own BTL fit'
SELECT group_value AS "group", users AS raters,
       round(single_accuracy::numeric, 2) AS single_acc,
       round(plural_accuracy::numeric, 2) AS mixture_acc,
       round(erased_share::numeric, 2) AS single_erased,
       round(plural_erased_share::numeric, 2) AS mixture_erased,
       round(centroid_cosine::numeric, 2) AS cosine
  FROM pluralrm.erasure_report('panel', 'single', 'mixture', 'group_id',
                               holdout_column => 'held_out');

\echo '== 4. A factorized model, and new users onboarded with 10 questions each'
\echo '   (2 base rewards shared by all, 2 coefficients per rater; new users'
\echo '   get no refit: their posterior is solved under the stored model).'
\echo '   Accuracy on their 10 held-out pairs; uncertainty left: trace of the'
\echo '   posterior covariance of their coefficients, mean over the 40 users.'
SELECT pluralrm.save_model('factor',
           pluralrm.factor_fit(user_id, chosen, rejected, 2)) AS v
  FROM panel WHERE NOT held_out \gset
-- each new user's first 30 pairs are the candidate questions, as 2-D arrays
CREATE TABLE candidates AS
SELECT user_id, array_agg(pair_id ORDER BY pair_id) AS pairs,
       array_agg(least(chosen, rejected) ORDER BY pair_id) AS a,
       array_agg(greatest(chosen, rejected) ORDER BY pair_id) AS b
  FROM comparisons WHERE new_user AND NOT held_out GROUP BY user_id;
-- ten questions per user: the most informative ones, or simply the first ten
CREATE TABLE asked AS
SELECT 'ten chosen by next_questions' AS how, c.user_id,
       c.pairs[q.candidate] AS pair_id
  FROM candidates c,
       LATERAL pluralrm.next_questions('factor', c.user_id::text, c.a, c.b, 10) q
UNION ALL
SELECT 'the first ten', user_id, pair_id
  FROM comparisons WHERE new_user AND (pair_id - 1) % 40 < 10;
-- the data hold their answers; each user's posterior comes from them alone
CREATE TABLE posteriors AS
SELECT a.how, c.user_id, pluralrm.fit_user('factor', c.chosen, c.rejected) AS p
  FROM comparisons c JOIN asked a USING (user_id, pair_id)
 GROUP BY a.how, c.user_id;
-- held-out pairs of the new users as base-reward features v = B (chosen - rejected)
CREATE TABLE features AS
SELECT h.user_id, h.pair_id,
       array_agg((SELECT sum(x * (c - r)) FROM unnest(b.row, h.chosen, h.rejected) u(x, c, r))
                 ORDER BY b.k) AS v
  FROM comparisons h,
       pluralrm.matrix_rows(pluralrm.model_weights('factor')) WITH ORDINALITY b(row, k)
 WHERE h.new_user AND h.held_out
 GROUP BY h.user_id, h.pair_id;
SELECT 'none: the population reward' AS "questions answered",
       round((SELECT (pluralrm.evaluate('factor', chosen, rejected)).accuracy
                FROM comparisons WHERE new_user AND held_out)::numeric, 2)
           AS held_out_accuracy,
       round((SELECT covariance[1][1] + covariance[2][2] FROM pluralrm.model_priors
               WHERE model_id = (SELECT model_id FROM pluralrm.model_list
                                  WHERE name = 'factor'))::numeric, 2)
           AS uncertainty_left
UNION ALL
SELECT p.how,
       round(avg(((SELECT sum(c * x) FROM unnest((p.p).coefficients, f.v) u(c, x)) > 0)::int), 2),
       round(avg((p.p).covariance[1][1] + (p.p).covariance[2][2])::numeric, 2)
  FROM posteriors p JOIN features f USING (user_id)
 GROUP BY p.how ORDER BY 2, 3 DESC;
\echo '   save_user stores them; reward_score and evaluate serve them at once:'
SELECT count(pluralrm.save_user('factor', user_id::text, p)) AS onboarded
  FROM posteriors WHERE how = 'ten chosen by next_questions' \gset
SELECT :onboarded AS new_users,
       round((pluralrm.evaluate('factor', user_id, chosen, rejected)).accuracy::numeric, 2)
           AS held_out_accuracy
  FROM comparisons WHERE new_user AND held_out;

\echo '== 5. Annotation classes: which labels are preferences at all'
\echo '   300 raters answered 8 pairs 4 times each, in alternating order;'
\echo '   20% were planted as non-attitudes (coin flips), 15% as constructed'
\echo '   (pick whatever is shown first). rater_consistency finds them:'
CREATE TABLE reasked AS
SELECT * FROM pluralrm.synthetic_comparisons(users => 300, comparisons_per_user => 8,
       d => 8, reasks => 4, non_attitude_share => 0.2, constructed_share => 0.15,
       noise => 0.05, seed => 2);
SELECT planted, count(*) FILTER (WHERE found = 'stable') AS stable,
       count(*) FILTER (WHERE found = 'non_attitude') AS non_attitude,
       count(*) FILTER (WHERE found = 'constructed') AS constructed,
       count(*) FILTER (WHERE found = 'insufficient') AS insufficient
  FROM (SELECT min(kind) AS planted,
               (pluralrm.rater_consistency(pair_id, condition,
                    (chosen < rejected) = (condition = 0))).kind AS found
          FROM reasked GROUP BY user_id) s
 GROUP BY planted ORDER BY planted;

\echo '== 6. Guards against flattery: blend with the consensus, shrink to it'
\echo '   Other raters: all want dimension 1 (say, correctness) and split on'
\echo '   the others: 50% want {2,1,0,0}, 30% {2,-1,1.5,0}, 20% {2,0,-1.5,1.5}.'
\echo '   A factor model with 3 base rewards; the last 6 of 30 pairs held out.'
CREATE TABLE consensus AS
SELECT user_id, group_id, pair_id, chosen, rejected, (pair_id - 1) % 30 >= 24 AS held_out
  FROM pluralrm.synthetic_comparisons(users => 300, comparisons_per_user => 30, d => 4,
       group_shares => '{0.5,0.3,0.2}',
       group_weights => '{{2,1,0,0},{2,-1,1.5,0},{2,0,-1.5,1.5}}', seed => 4);
SELECT pluralrm.save_model('consensus',
           pluralrm.factor_fit(user_id, chosen, rejected, 3)) AS v
  FROM consensus WHERE NOT held_out \gset
\echo '   How often each rater''s reward orders 200 probe pairs differently from'
\echo '   the population reward, blending alpha x population into each rater:'
CREATE TABLE probes AS
SELECT array_agg(least(chosen, rejected) ORDER BY pair_id) AS a,
       array_agg(greatest(chosen, rejected) ORDER BY pair_id) AS b
  FROM pluralrm.synthetic_comparisons(users => 1, comparisons_per_user => 200,
       d => 4, seed => 3);
SELECT alpha, d.users AS raters, round(d.mean::numeric, 2) AS mean_disagreement,
       round(d.p90::numeric, 2) AS p90, round(d.max::numeric, 2) AS max
  FROM probes, unnest('{0,0.5,1}'::float8[]) alpha,
       LATERAL pluralrm.divergence_summary('consensus', probes.a, probes.b, alpha) d;
\echo '   A stronger prior holds raters nearer the population, without a refit:'
\echo '   distance of their coefficients from the population, held-out accuracy'
\echo '   per group. The majority keeps its accuracy, the minorities pay.'
CREATE TABLE shrunk AS
SELECT strength, c.user_id, c.group_id,
       pluralrm.fit_user('consensus', c.chosen, c.rejected, strength) AS p
  FROM consensus c, unnest('{1,10,100}'::float8[]) strength
 WHERE NOT c.held_out
 GROUP BY strength, c.user_id, c.group_id;
CREATE TABLE consensus_features AS
SELECT h.user_id, h.pair_id,
       array_agg((SELECT sum(x * (c - r)) FROM unnest(b.row, h.chosen, h.rejected) u(x, c, r))
                 ORDER BY b.k) AS v
  FROM consensus h,
       pluralrm.matrix_rows(pluralrm.model_weights('consensus')) WITH ORDINALITY b(row, k)
 WHERE h.held_out
 GROUP BY h.user_id, h.pair_id;
SELECT s.strength AS prior_strength,
       round(avg(sqrt((SELECT sum((x - m) ^ 2)
                         FROM unnest((s.p).coefficients, ml.population) u(x, m))))::numeric, 2)
           AS distance,
       round(avg(s.ok) FILTER (WHERE s.group_id = 0), 2) AS acc_group_0,
       round(avg(s.ok) FILTER (WHERE s.group_id = 1), 2) AS acc_group_1,
       round(avg(s.ok) FILTER (WHERE s.group_id = 2), 2) AS acc_group_2
  FROM (SELECT s.*, ((SELECT sum(c * x) FROM unnest((s.p).coefficients, f.v) u(c, x)) > 0)::int AS ok
          FROM shrunk s JOIN consensus_features f USING (user_id)) s,
       (SELECT mv.population FROM pluralrm.model_versions mv
          JOIN pluralrm.model_list l USING (model_id) WHERE l.name = 'consensus') ml
 GROUP BY s.strength ORDER BY s.strength;

\echo '== 7. More raters, or more labels per rater? (the panel, factor model)'
SELECT raters, per_rater_median AS per_rater,
       round(between_rater_variance::numeric, 2) AS between_raters,
       round(within_rater_variance::numeric, 2) AS within_rater,
       recommendation,
       regexp_replace(reasoning, '(.{1,74})( |$)', E'   \\1\n', 'g') AS reasoning
  FROM pluralrm.rater_sufficiency(query => 'SELECT * FROM public.panel WHERE NOT held_out',
                                  model => 'factor') \gset
\echo ' raters:' :raters ' comparisons per rater:' :per_rater
\echo ' between-rater variance:' :between_raters ' within-rater variance:' :within_rater
\echo ' recommendation:' :recommendation
\echo :reasoning
