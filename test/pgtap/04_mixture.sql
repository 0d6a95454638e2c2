-- Mixtures of BTL models: recovery of planted groups, erasure by the single
-- model, storage, scoring per user, parallel plans and bad input
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS pluralrm;
BEGIN;
SELECT plan(26);

-- 400 users, 40 comparisons each (30 to fit, 10 held out), 51% in group 0.
-- Scenario "opposed": group 1 wants the opposite of group 0 on every
-- dimension. Scenario "shared": they agree on dimension 1 and oppose on the
-- others.
SELECT setseed(0.25);
CREATE TEMP TABLE truth (scenario text, grp int, w float8[]);
INSERT INTO truth VALUES
    ('opposed', 0, ARRAY[2.0, -1.0, 1.0, 0.5]), ('opposed', 1, ARRAY[-2.0, 1.0, -1.0, -0.5]),
    ('shared', 0, ARRAY[2.0, 1.5, -1.5, 1.0]), ('shared', 1, ARRAY[2.0, -1.5, 1.5, -1.0]);
CREATE TEMP TABLE cmp AS
SELECT s.scenario, u AS user_id, (u % 100 >= 51)::int AS grp, i,
       ARRAY[random() * 2 - 1, random() * 2 - 1, random() * 2 - 1, random() * 2 - 1] AS a,
       ARRAY[random() * 2 - 1, random() * 2 - 1, random() * 2 - 1, random() * 2 - 1] AS b,
       random() AS coin
  FROM (VALUES ('opposed'), ('shared')) s(scenario), generate_series(1, 400) u,
       generate_series(1, 40) i;
CREATE TEMP TABLE c AS
SELECT scenario, user_id, grp, i, CASE WHEN win THEN a ELSE b END AS chosen,
       CASE WHEN win THEN b ELSE a END AS rejected
  FROM (SELECT cmp.*, coin < 1 / (1 + exp(-(SELECT sum(x * (p - q))
                                              FROM unnest(t.w, a, b) v(x, p, q)))) AS win
          FROM cmp JOIN truth t USING (scenario, grp)) s;

-- accuracy of a weight vector on held-out comparisons, computed in SQL
CREATE FUNCTION pg_temp.acc(w float8[], chosen float8[], rejected float8[]) RETURNS float8
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN sum(x * (p - q)) > 0 THEN 1.0 ELSE 0.0 END
      FROM unnest(w, chosen, rejected) v(x, p, q) $$;
CREATE FUNCTION pg_temp.cos(a float8[], b float8[]) RETURNS float8
LANGUAGE sql IMMUTABLE AS $$
    SELECT sum(x * y) / sqrt(sum(x * x) * sum(y * y)) FROM unnest(a, b) v(x, y) $$;

CREATE TEMP TABLE fits AS
SELECT scenario, pluralrm.btl_fit(chosen, rejected) AS single,
       pluralrm.mixture_fit(user_id, chosen, rejected, 2) AS mix
  FROM c WHERE i <= 30 GROUP BY scenario;

CREATE TEMP TABLE saved AS
SELECT pluralrm.save_model('single_' || scenario, single) AS s,
       pluralrm.save_model('mix_' || scenario, mix) AS m
  FROM fits;

CREATE TEMP TABLE held AS
SELECT c.scenario, c.grp,
       (pluralrm.evaluate('single_' || c.scenario, c.user_id, chosen, rejected)).accuracy AS single_acc,
       (pluralrm.evaluate('mix_' || c.scenario, c.user_id, chosen, rejected)).accuracy AS mix_acc,
       avg(pg_temp.acc(t.w, chosen, rejected)) AS true_acc
  FROM c JOIN truth t USING (scenario, grp)
 WHERE i > 30 GROUP BY c.scenario, c.grp;

-- opposed groups: the single model sides with the majority
SELECT cmp_ok((SELECT single_acc FROM held WHERE scenario = 'opposed' AND grp = 1), '<', 0.5::float8,
              'opposed: the single model serves the 49% minority below chance');
SELECT cmp_ok((SELECT single_acc FROM held WHERE scenario = 'opposed' AND grp = 0), '>', 0.5::float8,
              'opposed: the single model serves the 51% majority above chance');
SELECT ok((SELECT bool_and(abs(mix_acc - true_acc) <= 0.02) FROM held WHERE scenario = 'opposed'),
          'opposed: the mixture serves each group within 2 points of its true reward');

-- shared dimension: the single model keeps it and flattens the contested ones
SELECT ok((SELECT bool_and(single_acc < true_acc - 0.1) FROM held WHERE scenario = 'shared'),
          'shared: the single model serves both groups far below their own rewards');
SELECT ok((SELECT abs((single).weights[1]) > 3 * greatest(abs((single).weights[2]),
                                                         abs((single).weights[3]),
                                                         abs((single).weights[4]))
             FROM fits WHERE scenario = 'shared'),
          'shared: the single model keeps the shared dimension and drives the contested ones toward zero');
SELECT ok((SELECT bool_and(abs(mix_acc - true_acc) <= 0.02) FROM held WHERE scenario = 'shared'),
          'shared: the mixture serves each group within 2 points of its true reward');

-- components match the true vectors up to label swap
CREATE TEMP TABLE comps AS
SELECT scenario, o, row AS b
  FROM fits, pluralrm.matrix_rows((mix).base_rewards) WITH ORDINALITY m(row, o);
SELECT ok((SELECT bool_and(greatest(
                 least(pg_temp.cos(c1.b, t0.w), pg_temp.cos(c2.b, t1.w)),
                 least(pg_temp.cos(c1.b, t1.w), pg_temp.cos(c2.b, t0.w))) >= 0.95)
             FROM comps c1
             JOIN comps c2 ON c2.scenario = c1.scenario AND c2.o = 2
             JOIN truth t0 ON t0.scenario = c1.scenario AND t0.grp = 0
             JOIN truth t1 ON t1.scenario = c1.scenario AND t1.grp = 1
            WHERE c1.o = 1),
          'both scenarios: components match the true vectors (cosine >= 0.95)');
SELECT ok((SELECT bool_and(abs((mix).mixing[1] - 0.51) < 0.03) FROM fits),
          'mixing weights are about 0.51 and 0.49');
SELECT ok((SELECT bool_and((mix).converged AND (mix).restarts = 10 AND (mix).restarts_at_best >= 1)
             FROM fits),
          'fits converge and report how many restarts reached the best');

-- users are assigned to their group
SELECT cmp_ok((SELECT avg(CASE WHEN (mu.coefficients[1] > 0.5) = (g.grp = 0) THEN 1.0 ELSE 0.0 END)
                 FROM fits, pluralrm.mixture_users(mix) mu
                 JOIN (SELECT DISTINCT user_id, grp FROM c) g ON g.user_id::text = mu.user_id
                WHERE fits.scenario = 'opposed'),
              '>=', 0.95, 'at least 95% of users get most responsibility on their group''s component');

-- storage: one row of coefficients per user; base rewards k x d
SELECT is((SELECT count(*) FROM pluralrm.user_coefficients uc
             JOIN pluralrm.model_list ml USING (model_id) WHERE ml.name = 'mix_opposed'),
          400::bigint, 'one coefficient row per user');
SELECT is((SELECT array_dims(base_rewards) FROM pluralrm.model_list ml
             JOIN pluralrm.model_versions v USING (model_id) WHERE ml.name = 'mix_opposed'),
          '[1:2][1:4]', 'base rewards are stored as a k x d array');

-- reward_score is sum_k c_uk (b_k . x), for bigint and text ids; unseen users get the population
CREATE TEMP TABLE probe AS SELECT ARRAY[0.3, -0.2, 0.5, 0.1] AS x;
SELECT ok((SELECT max(abs(pluralrm.reward_score('mix_opposed', u.user_id::bigint, probe.x) - (
             SELECT sum(cf * (SELECT sum(bj * xj) FROM unnest(b, probe.x) q(bj, xj)))
               FROM unnest(uc.coefficients) WITH ORDINALITY cc(cf, o)
               JOIN pluralrm.matrix_rows(v.base_rewards) WITH ORDINALITY br(b, o2) ON o2 = o)))
             FROM (SELECT DISTINCT user_id FROM c) u, probe, pluralrm.model_list ml
             JOIN pluralrm.model_versions v USING (model_id)
             JOIN pluralrm.user_coefficients uc USING (model_id)
            WHERE ml.name = 'mix_opposed' AND uc.user_id = u.user_id::text) < 1e-12,
          'reward_score of every user equals the SQL sum over components');
SELECT is(pluralrm.reward_score('mix_opposed', 7::bigint, x), pluralrm.reward_score('mix_opposed', '7', x),
          'bigint and text ids of the same user agree') FROM probe;
SELECT ok(abs(pluralrm.reward_score('mix_opposed', 999999, x) - (
             SELECT sum(pop * (SELECT sum(bj * xj) FROM unnest(b, probe.x) q(bj, xj)))
               FROM pluralrm.model_list ml JOIN pluralrm.model_versions v USING (model_id),
                    unnest(v.population) WITH ORDINALITY p(pop, o)
               JOIN pluralrm.matrix_rows(v.base_rewards) WITH ORDINALITY br(b, o2) ON o2 = o
              WHERE ml.name = 'mix_opposed')) < 1e-12,
          'a user the model has not seen gets the population reward') FROM probe;
SELECT ok((SELECT count(DISTINCT pluralrm.reward_score('mix_opposed', user_id, x) > 0) = 2
             FROM (SELECT DISTINCT user_id FROM c) u, probe),
          'users of the two groups rank the same response in opposite ways');

-- K = 1 is btl_fit
SELECT ok((SELECT max(abs(a - b)) FROM
             (SELECT pluralrm.btl_fit(chosen, rejected) AS s,
                     pluralrm.mixture_fit(user_id, chosen, rejected, 1) AS m
                FROM c WHERE scenario = 'opposed') f,
             unnest((f.s).weights, (f.m).base_rewards) u(a, b)) < 1e-6,
          'K = 1 gives the btl_fit weights');

-- choosing K by BIC
SELECT is((SELECT (pluralrm.mixture_select(user_id, chosen, rejected, 3)).k
             FROM c WHERE scenario = 'opposed' AND i <= 30),
          2, 'mixture_select picks K = 2 by BIC on two planted groups');

-- text and uuid user ids
SELECT ok((SELECT abs((a).loglik - (b).loglik) < 1e-6 FROM
             (SELECT pluralrm.mixture_fit('u' || user_id, chosen, rejected, 2) AS a,
                     pluralrm.mixture_fit(md5(user_id::text)::uuid, chosen, rejected, 2) AS b
                FROM c WHERE scenario = 'opposed' AND i <= 30) f),
          'text and uuid user ids fit the same mixture');

-- bad input
SELECT throws_ok($$SELECT pluralrm.mixture_fit(user_id, chosen, rejected, 0) FROM c$$,
                 '22023', NULL, 'k < 1: 22023');
SELECT throws_ok($$SELECT pluralrm.mixture_fit(user_id, chosen, rejected, 3) FROM c WHERE user_id <= 2$$,
                 '22023', 'k = 3 is larger than the number of users, 2', 'k larger than the users: 22023');
SELECT throws_ok($$SELECT pluralrm.mixture_fit(user_id, chosen, rejected, 2, 1.0, 0.0) FROM c$$,
                 '22023', 'mixture fits need l2 > 0', 'l2 = 0: 22023');
SELECT throws_ok($$SELECT pluralrm.mixture_fit(user_id, chosen, rejected, i % 2 + 1) FROM c$$,
                 '22023', NULL, 'k changing within a group: 22023');
SELECT lives_ok($$SELECT pluralrm.mixture_fit(user_id, chosen, rejected, 2) FROM c WHERE i = 1$$,
                'users with a single comparison each');
SELECT is((SELECT ((pluralrm.mixture_fit(CASE WHEN user_id = 1 THEN NULL ELSE user_id END,
                                          chosen, rejected, 2)).skipped)
             FROM c WHERE scenario = 'opposed'),
          40::bigint, 'comparisons with a NULL user id are skipped and counted');
SELECT throws_ok($$SELECT pluralrm.mixture_fit(user_id, chosen, ARRAY[1.0], 2) FROM c$$,
                 '22000', NULL, 'mismatched dimensions: 22000');

SELECT * FROM finish();
ROLLBACK;
