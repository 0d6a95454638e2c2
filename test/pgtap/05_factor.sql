-- Factorized rewards: planted subspace, posteriors of new users, question
-- selection and the guards against flattery
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS pluralrm;
BEGIN;
SELECT plan(23);

-- 300 users with true coefficients c_u ~ N((1.5, 0), 1.5^2 I) on the base
-- rewards e1, e2 of a 6-dimensional space; 50 comparisons each, of which
-- the first 40 may be fitted and the last 10 are held out
SELECT setseed(0.75);
CREATE TEMP TABLE truth AS
SELECT u AS user_id,
       ARRAY[1.5 + 1.5 * sqrt(-2 * ln(random())) * cos(2 * pi() * random()),
             1.5 * sqrt(-2 * ln(random())) * cos(2 * pi() * random())] AS c
  FROM generate_series(1, 300) u;
CREATE TEMP TABLE raw AS
SELECT t.user_id, i, t.c,
       ARRAY(SELECT random() * 2 - 1 FROM generate_series(1, 6) WHERE i > 0) AS a,
       ARRAY(SELECT random() * 2 - 1 FROM generate_series(1, 6) WHERE i > 0) AS b,
       random() AS coin
  FROM truth t, generate_series(1, 50) i;
CREATE TEMP TABLE c AS
SELECT user_id, i, c AS ctrue,
       CASE WHEN win THEN a ELSE b END AS chosen, CASE WHEN win THEN b ELSE a END AS rejected
  FROM (SELECT raw.*, coin < 1 / (1 + exp(-(c[1] * (a[1] - b[1]) + c[2] * (a[2] - b[2])))) AS win
          FROM raw) s;

CREATE TEMP TABLE fits AS
SELECT pluralrm.factor_fit(user_id, chosen, rejected, 2) AS m40,
       pluralrm.factor_fit(user_id, chosen, rejected, 2) FILTER (WHERE i <= 10) AS m10
  FROM c WHERE i <= 40;

SELECT ok((SELECT (m40).converged FROM fits), 'the factor fit converges');

-- the fitted base rewards span the planted plane: project them on e1, e2
SELECT ok((SELECT bool_and(sqrt(row[1] ^ 2 + row[2] ^ 2) / sqrt((SELECT sum(x * x) FROM unnest(row) x)) > 0.97)
             FROM fits, pluralrm.matrix_rows((m40).base_rewards) row),
          'each fitted base reward lies in the planted subspace (cosine > 0.97)');

-- held-out accuracy per user approaches the truth as comparisons grow
CREATE TEMP TABLE saved AS
SELECT pluralrm.save_model('f40', m40) AS v40, pluralrm.save_model('f10', m10) AS v10 FROM fits;
CREATE TEMP TABLE held AS
SELECT avg(CASE WHEN pluralrm.reward_score('f40', user_id, chosen) > pluralrm.reward_score('f40', user_id, rejected) THEN 1.0 ELSE 0.0 END) AS acc40,
       avg(CASE WHEN pluralrm.reward_score('f10', user_id, chosen) > pluralrm.reward_score('f10', user_id, rejected) THEN 1.0 ELSE 0.0 END) AS acc10,
       avg(CASE WHEN ctrue[1] * (chosen[1] - rejected[1]) + ctrue[2] * (chosen[2] - rejected[2]) > 0 THEN 1.0 ELSE 0.0 END) AS acc_true
  FROM c WHERE i > 40;
SELECT ok((SELECT acc_true - acc40 < acc_true - acc10 AND acc_true - acc40 < 0.04 FROM held),
          'held-out accuracy approaches that of the true rewards as comparisons per user grow');
SELECT ok((SELECT abs((pluralrm.evaluate('f40', user_id, chosen, rejected)).accuracy - (SELECT acc40 FROM held)) < 1e-12
             FROM c WHERE i > 40),
          'evaluate serves factor models per user, as reward_score does');

-- storage: B, the prior and every user's coefficients with covariance
SELECT is((SELECT array_dims(covariance) FROM pluralrm.model_priors JOIN pluralrm.model_list USING (model_id) WHERE name = 'f40'),
          '[1:2][1:2]', 'the prior covariance is stored as a k x k array');
SELECT is((SELECT count(*) FROM pluralrm.user_coefficients uc JOIN pluralrm.model_list ml USING (model_id)
            WHERE ml.name = 'f40' AND array_dims(uc.covariance) = '[1:2][1:2]' AND uc.n = 40),
          300::bigint, 'every user has coefficients, a k x k covariance and a comparison count');

-- fit_user under the stored model reproduces the full fit's posterior
CREATE TEMP TABLE fu AS
SELECT pluralrm.fit_user('f40', chosen, rejected) AS p FROM c WHERE user_id = 17 AND i <= 40;
SELECT ok((SELECT max(abs(a - b)) FROM fu, pluralrm.user_coefficients uc JOIN pluralrm.model_list USING (model_id),
                  unnest((fu.p).coefficients, uc.coefficients) x(a, b)
            WHERE name = 'f40' AND uc.user_id = '17') < 1e-6,
          'fit_user agrees with the coefficients of the full fit for the same user');
SELECT ok((SELECT (p).solve_ms < 1000 AND (p).n = 40 FROM fu), 'fit_user reports its comparisons');

-- a new user: fit on 10 answers, save, then served at once
SELECT lives_ok($$SELECT pluralrm.save_user('f40', 'newcomer',
                    (SELECT pluralrm.fit_user('f40', chosen, rejected) FROM c WHERE user_id = 5 AND i <= 10))$$,
                'save_user stores a new user''s posterior');
SELECT ok(pluralrm.reward_score('f40', 'newcomer', ARRAY[1.0, 0, 0, 0, 0, 0]) <>
          pluralrm.reward_score('f40', 'stranger', ARRAY[1.0, 0, 0, 0, 0, 0]),
          'the saved newcomer is served their own reward, a stranger the population''s');

-- the consensus blend: alpha = 1 is the population reward for everyone
SELECT ok((SELECT bool_and(abs(pluralrm.reward_score('f40', user_id, chosen, 1.0)
                               - pluralrm.reward_score('f40', 'stranger', chosen)) < 1e-12)
             FROM c WHERE i = 1),
          'alpha = 1 gives every user the population reward');
SELECT ok((SELECT bool_and(abs(pluralrm.reward_score('f40', user_id, chosen, 0.25)
                               - (0.75 * pluralrm.reward_score('f40', user_id, chosen)
                                  + 0.25 * pluralrm.reward_score('f40', 'stranger', chosen))) < 1e-12)
             FROM c WHERE i = 1),
          'alpha blends the user''s and the population''s rewards linearly');

-- locked components stay at the population value
CREATE TEMP TABLE locked AS
SELECT pluralrm.factor_fit(user_id, chosen, rejected, 2, 1.0, 1.0, 1.0, ARRAY[1]) AS m FROM c WHERE i <= 40;
SELECT ok((SELECT bool_and(fu.coefficients[1] = (m).prior_mean[1] AND fu.covariance[1][1] = 0)
             FROM locked, pluralrm.factor_users(m) fu),
          'a locked component''s coefficient equals the population value for every user');
SELECT ok((SELECT (m).prior_strength = 1 AND (m).locked = ARRAY[1] FROM locked), 'the fit records its guards');

-- prior strength pulls users toward the population
CREATE TEMP TABLE strong AS
SELECT pluralrm.factor_fit(user_id, chosen, rejected, 2, 1.0, 1.0, 50.0) AS m FROM c WHERE i <= 40;
SELECT ok((SELECT avg(abs(coefficients[2] - (m).prior_mean[2])) FROM strong, pluralrm.factor_users(m))
          < (SELECT avg(abs(coefficients[2] - (m40).prior_mean[2])) FROM fits, pluralrm.factor_users(m40)),
          'a stronger prior keeps users closer to the population');

-- next_questions: the first pick maximises s (1 - s) v' C v for the prior
CREATE TEMP TABLE cand AS
SELECT array_agg(a ORDER BY i) AS ca, array_agg(b ORDER BY i) AS cb
  FROM raw WHERE user_id = 1 AND i <= 40;
CREATE TEMP TABLE scored AS
SELECT r.i AS j, s_ * (1 - s_) * (v1 * v1 * cv[1][1] + 2 * v1 * v2 * cv[1][2] + v2 * v2 * cv[2][2]) AS score
  FROM (SELECT r.i, v1, v2, cv, 1 / (1 + exp(-(mu[1] * v1 + mu[2] * v2))) AS s_
          FROM (SELECT raw.i,
                       (SELECT sum(bm[1][t] * (raw.a[t] - raw.b[t])) FROM generate_series(1, 6) t) AS v1,
                       (SELECT sum(bm[2][t] * (raw.a[t] - raw.b[t])) FROM generate_series(1, 6) t) AS v2,
                       mu, cv
                  FROM raw,
                       (SELECT v.base_rewards AS bm, v.population AS mu, p.covariance AS cv
                          FROM pluralrm.model_list ml JOIN pluralrm.model_versions v USING (model_id)
                          JOIN pluralrm.model_priors p USING (model_id) WHERE ml.name = 'f40') m
                 WHERE raw.user_id = 1 AND raw.i <= 40) r) r;
SELECT is((SELECT candidate FROM pluralrm.next_questions('f40', 'nobody', (SELECT ca FROM cand), (SELECT cb FROM cand), 3) WHERE pick = 1),
          (SELECT j FROM scored ORDER BY score DESC LIMIT 1),
          'a new user''s first question maximises s (1 - s) v'' C v under the prior, computed in SQL');

-- bad input
SELECT throws_ok($$SELECT * FROM pluralrm.next_questions('f40', 'x', (SELECT ca FROM cand), (SELECT cb FROM cand), 41)$$,
                 '22023', NULL, 'more questions than candidates: 22023');
SELECT throws_ok($$SELECT * FROM pluralrm.next_questions('f40', 'x', '{}'::float8[], '{}'::float8[], 1)$$,
                 '22000', NULL, 'an empty candidate set: 22000');
SELECT throws_ok($$SELECT * FROM pluralrm.next_questions('f40', 'x', (SELECT ca[1:39] || ARRAY[ARRAY[1, 2, 'NaN', 4, 5, 6]]::float8[] FROM cand), (SELECT cb FROM cand), 1)$$,
                 '22000', 'candidates_a must not contain NaN or Infinity', 'a NaN in candidates_a: 22000, named');
SELECT throws_ok($$SELECT * FROM pluralrm.next_questions('f40', 'x', (SELECT ca FROM cand), (SELECT ARRAY[ARRAY[1, 2, 3, 4, 5, '-Infinity']]::float8[] || cb[2:40] FROM cand), 0)$$,
                 '22000', 'candidates_b must not contain NaN or Infinity', 'an Infinity in candidates_b, even for 0 picks: 22000, named');
SELECT throws_ok($$SELECT * FROM pluralrm.next_questions('f40', 'x', (SELECT array_fill(1e300::float8, ARRAY[2, 6]) FROM cand), (SELECT array_fill(-1e300::float8, ARRAY[2, 6]) FROM cand), 1)$$,
                 '22003', NULL, 'features too large to represent: 22003');
UPDATE pluralrm.model_priors SET covariance = ARRAY[[1.0, 2.0], [2.0, 1.0]]
 WHERE model_id = (SELECT model_id FROM pluralrm.model_list WHERE name = 'f10');
SELECT throws_ok($$SELECT pluralrm.fit_user('f10', chosen, rejected) FROM c WHERE user_id = 3$$,
                 'XX001', NULL, 'a stored prior covariance that is not positive definite: XX001');
SELECT throws_ok($$SELECT pluralrm.factor_fit(user_id, chosen, rejected, 7) FROM c$$,
                 '22023', NULL, 'k larger than d: 22023');

SELECT * FROM finish();
ROLLBACK;
