-- pluralrm.max_fit_memory: every collecting aggregate stops with 53400
-- before it goes over the limit, and fits under the limit are unchanged
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS pluralrm;

BEGIN;
SELECT plan(11);

-- 20000 comparisons of 16 dimensions: 2.6 MB collected by a fit
CREATE TEMP TABLE mem_c AS
SELECT i, (i % 50)::bigint AS user_id, (i % 30) AS a, ((i * 7 + 1) % 30) AS b,
       ARRAY(SELECT sin(i * 0.1 * j) FROM generate_series(1, 16) j) AS chosen,
       ARRAY(SELECT cos(i * 0.3 * j) FROM generate_series(1, 16) j) AS rejected
  FROM generate_series(1, 20000) i;

-- (the reference fit also loads the module, which defines the settings)
CREATE TEMP TABLE mem_ref AS
SELECT (SELECT (pluralrm.btl_fit(chosen, rejected)).weights FROM mem_c) AS w;

SELECT is((SELECT unit FROM pg_settings WHERE name = 'pluralrm.max_fit_memory'), 'kB',
          'pluralrm.max_fit_memory is in kB');
SELECT is((SELECT boot_val FROM pg_settings WHERE name = 'pluralrm.max_fit_memory'), '0',
          'pluralrm.max_fit_memory is 0 (no limit) by default');

SET LOCAL pluralrm.max_fit_memory = '1MB';
SELECT throws_ok('SELECT pluralrm.btl_fit(chosen, rejected) FROM mem_c', '53400', NULL,
                 'btl_fit over the limit: 53400');
SELECT throws_ok('SELECT pluralrm.mixture_fit(user_id, chosen, rejected, 2) FROM mem_c', '53400', NULL,
                 'mixture_fit over the limit: 53400');
SELECT throws_ok('SELECT pluralrm.factor_fit(user_id, chosen, rejected, 2) FROM mem_c', '53400', NULL,
                 'factor_fit over the limit: 53400');
SELECT throws_like('SELECT pluralrm.btl_fit(chosen, rejected) FROM mem_c',
                   '%needs more than pluralrm.max_fit_memory (1024 kB)%',
                   'the message names the setting and its value');

SET LOCAL pluralrm.max_fit_memory = '64kB';
SELECT throws_ok($$SELECT pluralrm.btl_items(a, b, 1.0) FROM mem_c$$, '53400', NULL,
                 'btl_items over the limit: 53400');
SELECT throws_ok($$SELECT pluralrm.btl_items(a, b, 1.0) FROM mem_c
                    WHERE false OR i > 0$$, '53400', NULL,
                 'and again in the same transaction (nothing left behind)');

-- under a limit the fits are what they were
SET LOCAL pluralrm.max_fit_memory = '64MB';
SELECT is((SELECT (pluralrm.btl_fit(chosen, rejected)).weights FROM mem_c),
          (SELECT w FROM mem_ref), 'btl_fit under the limit gives the same weights');
SELECT is((SELECT (pluralrm.mixture_fit(user_id, chosen, rejected, 2)).n FROM mem_c),
          20000::bigint, 'mixture_fit under the limit runs');

-- the combined rows of parallel workers count against the leader's limit
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
SET LOCAL pluralrm.max_fit_memory = '1MB';
SELECT throws_ok('SELECT pluralrm.btl_fit(chosen, rejected) FROM mem_c', '53400', NULL,
                 'a parallel btl_fit over the limit: 53400');

SELECT * FROM finish();
ROLLBACK;
