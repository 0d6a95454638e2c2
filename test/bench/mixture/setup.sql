-- Data of the mixture benchmark (test/bench/mixture.sh), made inside the
-- database from fixed seeds; run with psql in a fresh database.
--   mix2:  1,000 users x 20 comparisons, d = 8, 2 planted groups (60/40)
--   mix3:  1,000 users x 20 comparisons, d = 8, 3 planted groups (50/30/20)
--   mix1m: 100,000 users x 10 comparisons, d = 64, 4 planted groups
--          (40/30/20/10): 1,000,000 rows
--   score_users, score_responses: the 100,000 users of mix1m and 10
--          responses each (the chosen response of each of their
--          comparisons) for the reward_score join
-- Each data set also has a _truth table (the true base rewards) and a
-- _users table (each user's group); see generate.sql.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
-- serial plans keep the random() sequence, and so the data, reproducible
SET max_parallel_workers_per_gather = 0;
CREATE EXTENSION IF NOT EXISTS pluralrm;

\set tab mix2
\set users 1000
\set each 20
\set dim 8
\set k 2
\set cuts '{0.6}'
\set seed 0.11
\ir generate.sql

\set tab mix3
\set k 3
\set cuts '{0.5,0.8}'
\set seed 0.33
\ir generate.sql

\set tab mix1m
\set users 100000
\set each 10
\set dim 64
\set k 4
\set cuts '{0.4,0.7,0.9}'
\set seed 0.44
\ir generate.sql

CREATE TABLE score_users AS
SELECT user_id AS id FROM mix1m_users ORDER BY user_id;
ALTER TABLE score_users ADD PRIMARY KEY (id);
CREATE TABLE score_responses AS
SELECT id, user_id, chosen AS emb FROM mix1m ORDER BY id;
VACUUM ANALYZE score_users;
VACUUM ANALYZE score_responses;
CHECKPOINT;
