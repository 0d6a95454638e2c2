-- Storing models by name, scoring and evaluating with them
SET extra_float_digits = 0;

CREATE TABLE cmp AS
SELECT i, i % 2 AS grp,
       ARRAY[sin(i * 1.1), cos(i * 0.7)] AS chosen,
       ARRAY[cos(i * 1.3), sin(i * 0.5)] AS rejected
  FROM generate_series(1, 500) i;
-- make the first coordinate matter: swap where it says the other way
UPDATE cmp SET chosen = rejected, rejected = chosen
 WHERE chosen[1] < rejected[1] AND i % 5 <> 0;

SELECT pluralrm.save_model('helpful', pluralrm.btl_fit(chosen, rejected)) FROM cmp;
SELECT pluralrm.save_model('helpful', pluralrm.btl_fit(chosen, rejected, 1.0, 10.0)) FROM cmp;
SELECT name, version, kind, k, d, n, versions,
       hyperparameters->>'l2' AS l2, (metrics->>'converged')::boolean AS converged
  FROM pluralrm.model_list;

-- Base rewards are a 1 x d array
SELECT array_dims(pluralrm.model_weights('helpful'));

-- Scoring with a named model and with pluralrm.model; user ids of each type
SELECT round(pluralrm.reward_score('helpful', 42, ARRAY[1.0, 0.0])::numeric, 6)
     = round((pluralrm.model_weights('helpful'))[1][1]::numeric, 6) AS is_dot_product;
SET pluralrm.model = 'helpful';
SELECT pluralrm.reward_score(7::bigint, ARRAY[1.0, 2.0])
     = pluralrm.reward_score('alice', ARRAY[1.0, 2.0])
   AND pluralrm.reward_score('alice', ARRAY[1.0, 2.0])
     = pluralrm.reward_score('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid, ARRAY[1.0, 2.0])
   AS same_for_every_user;
SELECT pluralrm.reward_score(1, ARRAY[1.0, 2.0]::real[])
     = pluralrm.reward_score(1, ARRAY[1.0, 2.0]) AS real_matches_float8;

-- In a join: rank responses per user
CREATE TABLE users (id bigint PRIMARY KEY, name text);
INSERT INTO users VALUES (1, 'ann'), (2, 'bo');
CREATE TABLE responses (rid int, emb float8[]);
INSERT INTO responses VALUES (1, ARRAY[1.0, 0.0]), (2, ARRAY[-1.0, 0.0]), (3, ARRAY[0.0, 1.0]);
SELECT u.name, r.rid,
       rank() OVER (PARTITION BY u.id ORDER BY pluralrm.reward_score(u.id, r.emb) DESC)
  FROM users u CROSS JOIN responses r
 ORDER BY u.name, r.rid;

-- Evaluate on held-out comparisons, per group
SELECT grp, (e).n, round((e).accuracy::numeric, 3) AS accuracy,
       round((e).log_loss::numeric, 3) AS log_loss
  FROM (SELECT grp, pluralrm.evaluate('helpful', chosen, rejected) AS e
          FROM cmp GROUP BY grp) s
 ORDER BY grp;
SELECT (pluralrm.evaluate('helpful', i::bigint, chosen, rejected)).n FROM cmp;

-- Versions: roll back, rename, drop
SELECT pluralrm.set_current_version('helpful', 1);
SELECT name, version, hyperparameters->>'l2' AS l2 FROM pluralrm.model_list;
SELECT pluralrm.rename_model('helpful', 'useful');
SELECT name, version, versions FROM pluralrm.model_list;
SELECT count(*) FROM pluralrm.model_versions WHERE name = 'useful';

-- Errors
SELECT pluralrm.reward_score('nosuch', 1, ARRAY[1.0, 2.0]);
SELECT pluralrm.reward_score('useful', 1, ARRAY[1.0, 2.0, 3.0]);
SELECT pluralrm.reward_score('useful', 1, ARRAY[1.0, 'NaN']);
SELECT pluralrm.reward_score('useful', 1, NULL::float8[]) IS NULL AS null_in_null_out;
SET pluralrm.model = '';
SELECT pluralrm.reward_score(1, ARRAY[1.0, 2.0]);
SELECT pluralrm.set_current_version('useful', 9);
SELECT pluralrm.rename_model('useful', '');
SELECT pluralrm.save_model('x', NULL::pluralrm.btl_model);
SELECT pluralrm.drop_model('nosuch');
SELECT pluralrm.drop_model('nosuch', if_exists => true);

-- Malformed stored models give clear errors on use
UPDATE pluralrm.model_versions SET base_rewards = ARRAY[1.0, 2.0] WHERE name = 'useful';
SELECT pluralrm.reward_score('useful', 1, ARRAY[1.0, 2.0]);
UPDATE pluralrm.model_versions SET base_rewards = ARRAY[[1.0, 'NaN']] WHERE name = 'useful';
SELECT pluralrm.reward_score('useful', 1, ARRAY[1.0, 2.0]);

SELECT pluralrm.drop_model('useful');
SELECT count(*) FROM pluralrm.model_versions;
