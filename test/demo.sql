-- pluralrm demonstration, run by test/demo.sh on a throwaway cluster.
\set ON_ERROR_STOP 1
\set QUIET on
\pset footer off
SET client_min_messages = warning;
CREATE EXTENSION pluralrm;

\echo
\echo '== 1. Comparisons: raters saw two responses (4-d embeddings) and chose one'
-- responses are random embeddings; raters prefer the first two features
-- (weights 2 and 1) and dislike the third (-1), with logistic noise
CREATE TABLE comparisons AS
SELECT i AS id, i % 100 AS rater,
       CASE WHEN win THEN a ELSE b END AS chosen,
       CASE WHEN win THEN b ELSE a END AS rejected
  FROM (SELECT i, a, b,
               random() < 1 / (1 + exp(-(2 * (a[1] - b[1]) + (a[2] - b[2])
                                        - (a[3] - b[3])))) AS win
          FROM (SELECT i,
                       ARRAY[random(), random(), random(), random()] AS a,
                       ARRAY[random(), random(), random(), random()] AS b
                  FROM generate_series(1, 20000) i) g) s;
SELECT count(*) AS comparisons, count(DISTINCT rater) AS raters FROM comparisons;

\echo '== 2. Fit a BTL reward model on 80% of them (an aggregate, so GROUP BY works)'
SELECT (m).n, (m).iterations, (m).converged, round((m).accuracy::numeric, 3) AS train_accuracy,
       (SELECT array_agg(round(x::numeric, 2)) FROM unnest((m).weights) x) AS weights
  FROM (SELECT pluralrm.btl_fit(chosen, rejected) AS m
          FROM comparisons WHERE id % 5 <> 0) s;

\echo '== 3. Save it by name; models are versioned rows with native arrays'
SELECT pluralrm.save_model('demo', pluralrm.btl_fit(chosen, rejected))
  FROM comparisons WHERE id % 5 <> 0;
SELECT name, version, kind, k, d, n, base_rewards_dims
  FROM pluralrm.model_list, LATERAL (SELECT array_dims(pluralrm.model_weights(name)) AS base_rewards_dims) x;

\echo '== 4. Held-out accuracy and log-loss (the other 20%)'
SELECT (e).n, round((e).accuracy::numeric, 3) AS accuracy, round((e).log_loss::numeric, 3) AS log_loss
  FROM (SELECT pluralrm.evaluate('demo', chosen, rejected) AS e
          FROM comparisons WHERE id % 5 = 0) s;

\echo '== 5. Score responses in an ordinary query: best response per user'
CREATE TABLE users (id bigint PRIMARY KEY, name text);
INSERT INTO users VALUES (1, 'ada'), (2, 'grace');
CREATE TABLE responses (id int, body text, emb float8[]);
INSERT INTO responses VALUES
    (1, 'thorough and relevant', ARRAY[0.9, 0.8, 0.1, 0.5]),
    (2, 'relevant but padded',   ARRAY[0.8, 0.3, 0.9, 0.5]),
    (3, 'off topic',             ARRAY[0.1, 0.2, 0.2, 0.5]);
SET pluralrm.model = 'demo';
SELECT u.name, r.body, round(pluralrm.reward_score(u.id, r.emb)::numeric, 2) AS reward
  FROM users u CROSS JOIN responses r
 ORDER BY u.name, reward DESC;
