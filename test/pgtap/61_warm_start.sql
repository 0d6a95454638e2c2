-- Warm-started refits: refit starts from the current version; mixture
-- components keep their labels when the majority changes; BTL and factor
-- refits on a little more data take fewer iterations than cold fits and
-- reach the same optimum; a start of another shape is refused with a
-- NOTICE; pluralrm.warm_start works by hand.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS pluralrm;

BEGIN;
SELECT plan(14);

-- 300 users: group 0 (120 users) and group 1 (180) want different things
CREATE TABLE public.prm_warm_all AS
SELECT user_id, group_id, chosen, rejected
  FROM pluralrm.synthetic_comparisons(users => 300, comparisons_per_user => 20,
                                      d => 4, group_shares => '{0.4,0.6}',
                                      seed => 5);
-- first all of group 0 and a third of group 1: group 0 is the majority
CREATE TABLE public.prm_warm_src AS
SELECT * FROM public.prm_warm_all WHERE group_id = 0 OR user_id <= 100;

-- distance between row a of one k x d array and row b of another
CREATE FUNCTION pg_temp.rowdist(x float8[], a integer, y float8[], b integer)
RETURNS float8 LANGUAGE sql IMMUTABLE AS $$
    SELECT sqrt(sum((x[a][j] - y[b][j]) ^ 2))
      FROM generate_series(1, array_length(x, 2)) j
$$;
CREATE FUNCTION pg_temp.version(name text, v integer)
RETURNS pluralrm.model_versions LANGUAGE sql AS $$
    SELECT * FROM pluralrm.model_versions mv WHERE mv.name = $1 AND mv.version = $2
$$;

SELECT pluralrm.define_model('prm_warm_m', 'mixture', 'public.prm_warm_src',
                             user_column => 'user_id', params => '{"k": 2}');
DO $$ DECLARE v integer; BEGIN CALL pluralrm.refit('prm_warm_m', v); END $$;
SELECT is((pg_temp.version('prm_warm_m', 1)).metrics -> 'warm_start_version',
          'null'::jsonb, 'a first refit starts cold');
SELECT ok((pg_temp.version('prm_warm_m', 1)).population[1] > 0.55,
          'version 1: the first component is group 0, the majority');

-- now group 1 is the majority
INSERT INTO public.prm_warm_src
SELECT * FROM public.prm_warm_all WHERE group_id = 1 AND user_id > 100;
CREATE TEMP TABLE cold AS
SELECT pluralrm.mixture_fit(user_id, chosen, rejected, 2) AS m
  FROM public.prm_warm_src;
SELECT ok((SELECT (m).mixing[1] > 0.55 FROM cold),
          'a cold fit on all the data puts group 1, now the majority, first');
DO $$ DECLARE v integer; BEGIN CALL pluralrm.refit('prm_warm_m', v); END $$;
SELECT is((pg_temp.version('prm_warm_m', 2)).metrics -> 'warm_start_version',
          '1'::jsonb, 'the second refit starts from version 1');
SELECT ok(pg_temp.rowdist(v2.base_rewards, 1, v1.base_rewards, 1)
          < pg_temp.rowdist(v2.base_rewards, 1, v1.base_rewards, 2)
          AND v2.population[1] < 0.45,
          'the warm refit keeps group 0 as component 1, now the minority')
  FROM pg_temp.version('prm_warm_m', 1) v1, pg_temp.version('prm_warm_m', 2) v2;
SELECT ok(abs((v2.metrics ->> 'loglik')::float8 - (c.m).loglik)
          <= 1e-6 * abs((c.m).loglik),
          'and reaches the cold fit''s optimum')
  FROM pg_temp.version('prm_warm_m', 2) v2, cold c;
SELECT ok(pg_temp.rowdist(v2.base_rewards, 1, (c.m).base_rewards, 2) < 1e-4,
          'its component 1 is the cold fit''s component 2')
  FROM pg_temp.version('prm_warm_m', 2) v2, cold c;

-- BTL: a refit on 2% more rows starts near the optimum
CREATE TABLE public.prm_warm_b AS
SELECT * FROM public.prm_warm_all WHERE user_id <= 290;
SELECT pluralrm.define_model('prm_warm_b', 'btl', 'public.prm_warm_b');
DO $$ DECLARE v integer; BEGIN CALL pluralrm.refit('prm_warm_b', v); END $$;
INSERT INTO public.prm_warm_b SELECT * FROM public.prm_warm_all WHERE user_id > 290;
SET LOCAL pluralrm.warm_start = '';
CREATE TEMP TABLE cold_b AS
SELECT pluralrm.btl_fit(chosen, rejected) AS m FROM public.prm_warm_b;
DO $$ DECLARE v integer; BEGIN CALL pluralrm.refit('prm_warm_b', v); END $$;
SELECT cmp_ok(((pg_temp.version('prm_warm_b', 2)).metrics ->> 'iterations')::integer,
              '<=', (SELECT (m).iterations FROM cold_b),
              'a warm BTL refit takes no more Newton iterations than a cold fit');
SELECT ok((SELECT max(abs(a - b)) FROM unnest((pg_temp.version('prm_warm_b', 2)).base_rewards,
                                              (SELECT (m).weights FROM cold_b)) u(a, b)) < 1e-6,
          'and gives the cold fit''s weights');

-- factor: the same with the stored prior
SELECT pluralrm.define_model('prm_warm_f', 'factor', 'public.prm_warm_b',
                             user_column => 'user_id', params => '{"k": 2}');
DO $$ DECLARE v integer; BEGIN CALL pluralrm.refit('prm_warm_f', v); END $$;
CREATE TEMP TABLE cold_f AS
SELECT pluralrm.factor_fit(user_id, chosen, rejected, 2) AS m FROM public.prm_warm_b;
DO $$ DECLARE v integer; BEGIN CALL pluralrm.refit('prm_warm_f', v); END $$;
SELECT cmp_ok(((pg_temp.version('prm_warm_f', 2)).metrics ->> 'iterations')::integer,
              '<', (SELECT (m).iterations FROM cold_f),
              'a warm factor refit on the same rows takes fewer iterations');

-- by hand: the setting names the model; a start of another shape is not used
SET LOCAL pluralrm.warm_start = 'prm_warm_b';
SELECT ok((SELECT max(abs(a - b))
             FROM unnest((SELECT (pluralrm.btl_fit(chosen, rejected)).weights
                            FROM public.prm_warm_b),
                         (SELECT (m).weights FROM cold_b)) u(a, b)) < 1e-8,
          'btl_fit with pluralrm.warm_start set by hand');
SET LOCAL pluralrm.warm_start = 'prm_warm_m';
SELECT throws_ok($q$DO $d$ BEGIN
                     PERFORM pluralrm.factor_fit(user_id, chosen, rejected, 2)
                        FROM public.prm_warm_b;
                     RAISE EXCEPTION 'fitted';
                   END $d$$q$, 'P0001', 'fitted',
                 'a start of another kind does not stop the fit');
SET LOCAL pluralrm.warm_start = 'no_such_model';
SELECT ok((SELECT (pluralrm.btl_fit(chosen, rejected)).converged FROM public.prm_warm_b),
          'a warm start that names no model starts cold');
SELECT is((SELECT setting FROM pg_settings WHERE name = 'pluralrm.warm_start'),
          'no_such_model', 'refit restored the setting it changed');

SELECT * FROM finish();
ROLLBACK;
