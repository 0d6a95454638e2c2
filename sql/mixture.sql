-- mixture_fit: a latent class per user recovers groups a single model erases
SET extra_float_digits = 0;
SELECT setseed(0.5);

-- 300 users; the first 153 (51%) like dimension 1 and dislike dimension 2,
-- the other 147 (49%) the opposite. 24 mix_comparisons each, 20 to fit.
CREATE TABLE mix_comparisons AS
SELECT user_id, grp, i, CASE WHEN win THEN a ELSE b END AS chosen,
       CASE WHEN win THEN b ELSE a END AS rejected
  FROM (SELECT user_id, grp, i, a, b,
               random() < 1 / (1 + exp(-(CASE WHEN grp = 'majority' THEN 1 ELSE -1 END)
                                        * (2 * (a[1] - b[1]) - 2 * (a[2] - b[2])))) AS win
          FROM (SELECT u AS user_id, CASE WHEN u <= 153 THEN 'majority' ELSE 'minority' END AS grp, i,
                       ARRAY[random() * 2 - 1, random() * 2 - 1, random() * 2 - 1] AS a,
                       ARRAY[random() * 2 - 1, random() * 2 - 1, random() * 2 - 1] AS b
                  FROM generate_series(1, 300) u, generate_series(1, 24) i) g) s;

-- the facts of a two-component fit
SELECT n, users, d, k, converged, restarts, restarts_at_best >= 1 AS best_reached,
       (SELECT array_agg(round(x::numeric, 2)) FROM unnest(mixing) x) AS mixing,
       array_dims(base_rewards) AS base_dims, array_dims(responsibilities) AS resp_dims
  FROM (SELECT (m).* FROM (SELECT pluralrm.mixture_fit(user_id, chosen, rejected, 2) AS m
                             FROM mix_comparisons WHERE i <= 20) s) t;

-- save both models and compare them on held-out mix_comparisons per group
SELECT pluralrm.save_model('single', pluralrm.btl_fit(chosen, rejected))
  FROM mix_comparisons WHERE i <= 20;
SELECT pluralrm.save_model('mixture', pluralrm.mixture_fit(user_id, chosen, rejected, 2))
  FROM mix_comparisons WHERE i <= 20;
SELECT name, kind, k, d, (metrics->>'users')::int AS users FROM pluralrm.model_list ORDER BY name;
SELECT count(*) AS user_rows FROM pluralrm.user_coefficients;

SELECT grp,
       round((pluralrm.evaluate('single', user_id, chosen, rejected)).accuracy::numeric, 2) AS single,
       round((pluralrm.evaluate('mixture', user_id, chosen, rejected)).accuracy::numeric, 2) AS mixture
  FROM mix_comparisons WHERE i > 20 GROUP BY grp ORDER BY grp;

-- each user's responsibilities, and who gets the first component
SELECT grp, count(*) AS users,
       count(*) FILTER (WHERE mu.coefficients[1] > 0.5) AS on_first_component
  FROM (SELECT pluralrm.mixture_fit(user_id, chosen, rejected, 2) AS m
          FROM mix_comparisons WHERE i <= 20) f,
       pluralrm.mixture_users(m) mu
  JOIN (SELECT DISTINCT user_id, grp FROM mix_comparisons) g ON g.user_id::text = mu.user_id
 GROUP BY grp ORDER BY grp;

-- choosing k by BIC
SELECT k, array_length(bic_by_k, 1) AS tried,
       bic_by_k[2] < bic_by_k[1] AND bic_by_k[2] < bic_by_k[3] AS two_is_best
  FROM (SELECT (m).* FROM (SELECT pluralrm.mixture_select(user_id, chosen, rejected, 3) AS m
                             FROM mix_comparisons WHERE i <= 20) s) t;

-- errors
SELECT pluralrm.mixture_fit(user_id, chosen, rejected, 0) FROM mix_comparisons;
SELECT pluralrm.mixture_fit(user_id, chosen, rejected, 5) FROM mix_comparisons WHERE user_id < 4;
SELECT pluralrm.mixture_fit(user_id, chosen, rejected, 2, 1.0, 0.0) FROM mix_comparisons;
SELECT pluralrm.mixture_fit(user_id, chosen, rejected, 2, 1.0, 1.0, 0, 1) FROM mix_comparisons;
SELECT pluralrm.save_model('bad', NULL::pluralrm.mixture_model);

SELECT pluralrm.drop_model('single'), pluralrm.drop_model('mixture');
DROP TABLE mix_comparisons;
