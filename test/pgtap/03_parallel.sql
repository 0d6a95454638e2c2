-- Parallel plans run the combine, serialize and deserialize functions and
-- give the serial answer
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS pluralrm;


-- parallel scans need a regular table, so this one is committed and dropped
DROP TABLE IF EXISTS prm_tap_par;
CREATE TABLE prm_tap_par AS
SELECT i,
       ARRAY[sin(i * 1.1), cos(i * 0.7), sin(i * 0.3), cos(i * 0.2), sin(i * 0.05)] AS chosen,
       ARRAY[cos(i * 1.3), sin(i * 0.5), cos(i * 0.9), sin(i * 0.4), cos(i * 0.01)] AS rejected
  FROM generate_series(1, 100000) i;
UPDATE prm_tap_par SET chosen = rejected, rejected = chosen
 WHERE chosen[1] - rejected[1] < chosen[2] - rejected[2] AND i % 3 <> 0;
ANALYZE prm_tap_par;

BEGIN;
SELECT plan(9);

SET LOCAL max_parallel_workers_per_gather = 0;
CREATE TEMP TABLE s AS SELECT pluralrm.btl_fit(chosen, rejected) AS m FROM prm_tap_par;
CREATE TEMP TABLE ms AS
SELECT pluralrm.mixture_fit(i % 500, chosen, rejected, 2) AS m FROM prm_tap_par;

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
SELECT pg_temp.plan_json('SELECT pluralrm.btl_fit(chosen, rejected) FROM prm_tap_par') AS j;
SELECT ok((SELECT j::text LIKE '%"Partial Mode": "Partial"%' FROM plan),
          'the plan has a Partial Aggregate');
SELECT cmp_ok((SELECT (j->0->'Plan'->'Plans'->0->>'Workers Launched')::int FROM plan), '>=', 1,
              'parallel workers were launched');

CREATE TEMP TABLE p AS SELECT pluralrm.btl_fit(chosen, rejected) AS m FROM prm_tap_par;
SELECT is((SELECT (m).n FROM p), (SELECT (m).n FROM s), 'same number of comparisons');
SELECT ok((SELECT max(abs(a - b) / abs(b)) FROM p, s,
             unnest((p.m).weights, (s.m).weights) u(a, b)) < 1e-9,
          'parallel and serial weights agree to 1e-9 relative');

-- the mixture: users are renumbered in key order, so the fit does not
-- depend on the order in which workers deliver rows
SELECT ok(pg_temp.plan_json('SELECT pluralrm.mixture_fit(i % 500, chosen, rejected, 2) FROM prm_tap_par')::text
          LIKE '%"Partial Mode": "Partial"%', 'mixture_fit runs as a partial aggregate');
CREATE TEMP TABLE mp AS
SELECT pluralrm.mixture_fit(i % 500, chosen, rejected, 2) AS m FROM prm_tap_par;
SELECT ok((SELECT abs((mp.m).loglik - (ms.m).loglik) < 1e-8 * abs((ms.m).loglik) FROM mp, ms),
          'parallel and serial mixtures reach the same log-likelihood');
SELECT ok((SELECT max(abs(a - b)) FROM mp, ms,
             unnest((mp.m).base_rewards, (ms.m).base_rewards) u(a, b)) < 1e-7,
          'parallel and serial mixtures have the same base rewards');

CREATE TEMP TABLE saved AS SELECT pluralrm.save_model('prm_tap_par', m) FROM s;
CREATE TEMP TABLE ep AS SELECT pluralrm.evaluate('prm_tap_par', chosen, rejected) AS e FROM prm_tap_par;
SET LOCAL max_parallel_workers_per_gather = 0;
CREATE TEMP TABLE es AS SELECT pluralrm.evaluate('prm_tap_par', chosen, rejected) AS e FROM prm_tap_par;
SELECT is((SELECT (e).n FROM ep), (SELECT (e).n FROM es), 'parallel evaluate counts every row');
SELECT ok((SELECT abs((ep.e).log_loss - (es.e).log_loss) < 1e-12 FROM ep, es),
          'parallel and serial evaluate agree');

SELECT * FROM finish();
ROLLBACK;
DROP TABLE prm_tap_par;
