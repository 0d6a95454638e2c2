-- Recipes, refit by name, version pruning and roll-back, hand-edited
-- versions, and the install script's search_path hygiene
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS pluralrm;

BEGIN;
SELECT plan(88);

-- Comparisons of two groups of users with opposite tastes; a regular table
-- because recipes refuse temporary ones
CREATE TABLE public.prm_refit_c AS
SELECT i, (i % 40)::bigint AS user_id,
       ARRAY[sin(i * 1.1), cos(i * 0.7), sin(i * 0.3)] AS chosen,
       ARRAY[cos(i * 1.3), sin(i * 0.5), cos(i * 0.9)] AS rejected,
       1.0 + (i % 3) AS w
  FROM generate_series(1, 3000) i;
UPDATE public.prm_refit_c SET chosen = rejected, rejected = chosen
 WHERE (user_id % 2 = 0 AND chosen[1] - rejected[1] < 0.2 * (chosen[3] - rejected[3]))
    OR (user_id % 2 = 1 AND chosen[2] - rejected[2] < 0);

-- refit from a procedure call, returning the new version
CREATE FUNCTION pg_temp.refit(name text) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE v integer;
BEGIN
    CALL pluralrm.refit(name, v);
    RETURN v;
END $$;

-- largest difference between two arrays of the same shape
CREATE FUNCTION pg_temp.maxdiff(a float8[], b float8[]) RETURNS float8
LANGUAGE sql IMMUTABLE AS $$
    SELECT max(abs(x - y)) FROM unnest(a, b) u(x, y)
$$;

SELECT has_table('pluralrm', 'model_recipes', 'model_recipes exists');
SELECT has_function('pluralrm', 'define_model', 'define_model exists');
SELECT has_function('pluralrm', 'prune_versions', ARRAY['text', 'integer'],
                    'prune_versions(text, integer) exists');

---------------------------------------------------------------------------
-- BTL recipe on a table: refit equals the aggregate called directly
SELECT lives_ok($$SELECT pluralrm.define_model('b', 'btl', 'prm_refit_c')$$,
                'define a BTL recipe on an unqualified table name');
SELECT is((SELECT source::text FROM pluralrm.model_recipes WHERE name = 'b'),
          'prm_refit_c', 'the source is recorded as a table');
SELECT is((SELECT current_version FROM pluralrm.models WHERE name = 'b'),
          NULL, 'a recipe alone has no version yet');
SELECT is(pg_temp.refit('b'), 1, 'first refit writes version 1');
SELECT ok((SELECT pg_temp.maxdiff(v.base_rewards[1:1][1:3],
                                  (SELECT (pluralrm.btl_fit(chosen, rejected)).weights
                                     FROM public.prm_refit_c))
             FROM pluralrm.model_versions v WHERE name = 'b' AND version = 1)
          < 1e-12, 'refit stores the weights btl_fit gives on the same rows');
SELECT is((SELECT hyperparameters #>> '{recipe,source}' FROM pluralrm.model_list
            WHERE name = 'b'), 'public.prm_refit_c', 'the version remembers its source, schema-qualified');
SELECT is((SELECT (hyperparameters #>> '{recipe,tolerance}')::float8
             FROM pluralrm.model_list WHERE name = 'b'),
          current_setting('pluralrm.tolerance')::float8,
          'the version remembers the solver tolerance');
INSERT INTO public.prm_refit_c SELECT * FROM public.prm_refit_c WHERE i <= 500;
SELECT is(pg_temp.refit('b'), 2, 'second refit writes version 2');
SELECT is((SELECT n FROM pluralrm.model_list WHERE name = 'b'), 3500::bigint,
          'version 2 is current and saw the new rows');
SELECT ok((SELECT max(abs(pluralrm.reward_score('b', user_id, chosen)
                          - (SELECT sum(x * y) FROM unnest(
                                 (SELECT base_rewards[1:1][1:3] FROM pluralrm.model_versions
                                   WHERE name = 'b' AND version = 2), chosen) u(x, y))))
             FROM public.prm_refit_c) < 1e-12,
          'reward_score serves the refitted weights in the same transaction');

-- a recipe's solver settings apply to its fit only
SET LOCAL pluralrm.max_iterations = 77;
SELECT lives_ok($$SELECT pluralrm.define_model('b1', 'btl', 'prm_refit_c',
                                                params => '{"l2": 2.5, "max_iterations": 1}')$$,
                'define a recipe with l2 and max_iterations');
SELECT throws_ok($$CALL pluralrm.refit('b1')$$, '22023', 'model "b1" did not converge',
                 'a fit stopped by the recipe''s max_iterations is refused');
SELECT is(current_setting('pluralrm.max_iterations'), '77',
          'the session''s max_iterations is restored after the fit');
SELECT lives_ok($$SELECT pluralrm.define_model('b1', 'btl', 'prm_refit_c',
                  params => '{"l2": 2.5, "max_iterations": 1, "allow_unconverged": true}')$$,
                'redefine it with allow_unconverged');
SELECT is(pg_temp.refit('b1'), 1, 'an unconverged fit is saved when the recipe allows it');
SELECT is((SELECT (metrics ->> 'iterations')::integer FROM pluralrm.model_list
            WHERE name = 'b1'), 1, 'the recipe''s max_iterations was used');
SELECT is(current_setting('pluralrm.max_iterations'), '77',
          'and the session''s setting is still its own');
SELECT ok((SELECT pg_temp.maxdiff(v.base_rewards[1:1][1:3],
                                  (SELECT (pluralrm.btl_fit(chosen, rejected, 1.0, 2.5)).weights
                                     FROM public.prm_refit_c))
             FROM pluralrm.model_versions v WHERE name = 'b1')
          > 1e-6, 'an early stop differs from the converged fit (the setting mattered)');

---------------------------------------------------------------------------
-- a mixture recipe on a query with weights and quoted identifiers
CREATE TABLE public."Prm Refit Q" AS
SELECT user_id AS "User", chosen AS "Chosen Emb", rejected, w, i FROM public.prm_refit_c;
SELECT lives_ok($$SELECT pluralrm.define_model('mx', 'mixture',
    query => 'SELECT * FROM public."Prm Refit Q" WHERE i > 100',
    user_column => 'User', chosen_column => 'Chosen Emb', weight_column => 'w',
    params => '{"k": 2, "restarts": 4, "seed": 7}')$$,
    'define a mixture recipe on a query with quoted column names');
SELECT is(pg_temp.refit('mx'), 1, 'the mixture refits');
SELECT ok((SELECT pg_temp.maxdiff(v.base_rewards, f.base_rewards) < 1e-12
                  AND pg_temp.maxdiff(v.population, f.mixing) < 1e-12
             FROM pluralrm.model_versions v,
                  (SELECT (m).* FROM (SELECT pluralrm.mixture_fit("User", "Chosen Emb", rejected, 2,
                                                              w, 1.0, 4, 7) AS m
                                        FROM public."Prm Refit Q" WHERE i > 100) s) f
            WHERE v.name = 'mx'),
          'refit stores the base rewards and mixing weights mixture_fit gives');
SELECT is((SELECT count(*) FROM pluralrm.user_coefficients c
             JOIN pluralrm.model_list l ON l.model_id = c.model_id WHERE l.name = 'mx'),
          40::bigint, 'one coefficient row per user');
SELECT is(pluralrm.refit_query('mx'),
          'SELECT pluralrm.mixture_fit(src."User", src."Chosen Emb", src.rejected, '
          || '''2''::integer, src.w, ''1''::float8, ''4''::integer, ''7''::bigint) '
          || 'FROM (SELECT * FROM public."Prm Refit Q" WHERE i > 100) AS src',
          'refit_query quotes identifiers and literals');

---------------------------------------------------------------------------
-- versions kept, pruning and roll-back
SELECT lives_ok($$SELECT pluralrm.define_model('b', 'btl', 'prm_refit_c', keep_versions => 3)$$,
                'keep three versions of b');
SELECT is(pg_temp.refit('b'), 3, 'refit 3');
SELECT is(pg_temp.refit('b'), 4, 'refit 4');
SELECT is(pg_temp.refit('b'), 5, 'refit 5');
SELECT is((SELECT array_agg(version ORDER BY version) FROM pluralrm.model_versions
            WHERE name = 'b'), '{3,4,5}'::integer[], 'only the newest three remain');
SELECT lives_ok($$SELECT pluralrm.set_current_version('b', 3)$$, 'roll back to version 3');
SELECT is(pluralrm.prune_versions('b', 1), 1, 'prune to one deletes one version');
SELECT is((SELECT array_agg(version ORDER BY version) FROM pluralrm.model_versions
            WHERE name = 'b'), '{3,5}'::integer[],
          'the newest and the current (rolled back) versions survive');
SELECT is((SELECT current_version FROM pluralrm.models WHERE name = 'b'), 3,
          'the rolled-back version is still current');
SELECT is(pg_temp.refit('b'), 6, 'refit after a roll-back writes version 6');
SELECT is((SELECT array_agg(version ORDER BY version) FROM pluralrm.model_versions
            WHERE name = 'b'), '{3,5,6}'::integer[], 'three versions again, 6 current');
SELECT is((SELECT count(*) FROM pluralrm.user_coefficients c
            WHERE NOT EXISTS (SELECT 1 FROM pluralrm.model_versions v
                               WHERE v.model_id = c.model_id)), 0::bigint,
          'no user rows outlive their version');
SELECT lives_ok($$SELECT pluralrm.define_model('mx', 'mixture', 'prm_refit_c',
                    user_column => 'user_id', params => '{"k": 2}', keep_versions => 1)$$,
                'redefine the mixture on a table, keeping one version');
SELECT is(pg_temp.refit('mx'), 2, 'mixture refit 2');
SELECT is((SELECT count(*) FROM pluralrm.user_coefficients), 40::bigint,
          'the pruned version''s user rows are gone');
-- with no keep_versions in the recipe the setting decides (5 without it)
SELECT lives_ok($$SELECT pluralrm.define_model('mx', 'mixture', 'prm_refit_c',
                    user_column => 'user_id', params => '{"k": 2}')$$,
                'redefine the mixture without keep_versions');
SELECT is(set_config('pluralrm.keep_versions', '2', true), '2',
          'SET LOCAL pluralrm.keep_versions = 2');
SELECT is(pg_temp.refit('mx'), 3, 'mixture refit 3');
SELECT is(pg_temp.refit('mx'), 4, 'mixture refit 4');
SELECT is((SELECT count(*) FROM pluralrm.model_versions WHERE name = 'mx'),
          2::bigint, 'without keep_versions in the recipe the setting decides');
SELECT throws_ok($$SET pluralrm.keep_versions = 0$$, '22023', NULL,
                 'pluralrm.keep_versions is at least 1');
SELECT is((SELECT boot_val FROM pg_settings WHERE name = 'pluralrm.keep_versions'), '5',
          'pluralrm.keep_versions is 5 by default');

---------------------------------------------------------------------------
-- renaming and dropping carry the recipe along
SELECT lives_ok($$SELECT pluralrm.rename_model('b', 'b2')$$, 'rename b');
SELECT is(pg_temp.refit('b2'), 7, 'the renamed model refits under its new name');
SELECT ok(pluralrm.drop_model('b2'), 'drop b2');
SELECT is((SELECT count(*) FROM pluralrm.model_recipes WHERE name IN ('b', 'b2')), 0::bigint,
          'drop_model drops the recipe');

---------------------------------------------------------------------------
-- mistakes are caught when the recipe is written, or refused at refit
SELECT throws_ok($$CALL pluralrm.refit('nope')$$, '42704', 'model "nope" has no recipe',
                 'refit of an unknown model: 42704');
SELECT throws_ok($$SELECT pluralrm.define_model('x', 'lasso', 'prm_refit_c')$$, '22023',
                 'unknown model kind "lasso"', 'unknown kind: 22023');
SELECT throws_ok($$SELECT pluralrm.define_model('x', 'mixture', 'prm_refit_c',
                    user_column => 'user_id', params => '{"k": 2, "restarst": 3}')$$, '22023',
                 'unknown parameter for a mixture model: restarst', 'a misspelt parameter: 22023');
SELECT throws_ok($$SELECT pluralrm.define_model('x', 'mixture', 'prm_refit_c',
                    user_column => 'user_id')$$, '22023',
                 'a mixture model needs the parameter k', 'a missing k: 22023');
SELECT throws_ok($$SELECT pluralrm.define_model('x', 'mixture', 'prm_refit_c',
                    user_column => 'user_id', params => '{"k": -2}')$$, '22023',
                 'parameter k has the wrong type or sign', 'a negative k: 22023');
SELECT throws_ok($$SELECT pluralrm.define_model('x', 'btl', 'prm_refit_c', query => 'SELECT 1')$$,
                 '22023', 'give exactly one of source and query', 'both source and query: 22023');
CREATE TEMP TABLE prm_refit_tmp AS SELECT * FROM public.prm_refit_c;
SELECT throws_ok($$SELECT pluralrm.define_model('x', 'btl', 'prm_refit_tmp')$$, '22023',
                 'source "prm_refit_tmp" is a temporary table', 'a temporary source: 22023');
SELECT throws_ok($$SELECT pluralrm.define_model('x', 'btl', 'prm_refit_c', chosen_column => 'good')$$,
                 '42703', NULL, 'a missing column fails at definition: 42703');
SELECT throws_ok($$SELECT pluralrm.define_model('x', 'btl', query => 'SELECT * FROM prm_refit_c')$$,
                 '42P01', NULL, 'an unqualified table in a query fails at definition: 42P01');
SELECT throws_ok($$SELECT pluralrm.define_model('x', 'btl', 'prm_refit_c',
                    params => '{"solver": "simplex"}')$$, '22023', NULL,
                 'an unknown solver fails at definition: 22023');
SELECT is((SELECT count(*) FROM pluralrm.models WHERE name = 'x'), 0::bigint,
          'a refused definition leaves nothing behind');
SELECT lives_ok($$SELECT pluralrm.define_model('e', 'btl',
                    query => 'SELECT * FROM public.prm_refit_c WHERE i < 0')$$,
                'define a recipe whose query has no rows');
SELECT throws_ok($$CALL pluralrm.refit('e')$$, 'P0002',
                 'the source of model "e" has no comparisons', 'refit of no rows: P0002');
DROP TABLE public."Prm Refit Q";
SELECT lives_ok($$SELECT pluralrm.define_model('gone', 'btl', 'prm_refit_c')$$, 'define gone');
ALTER TABLE public.prm_refit_c RENAME TO prm_refit_c2;
SELECT is(pg_temp.refit('gone'), 1, 'the recipe follows its table through a rename');
UPDATE pluralrm.model_recipes SET defined_by = 'pg_signal_backend' WHERE name = 'gone';
SELECT is((SELECT defined_by::text FROM pluralrm.model_recipes WHERE name = 'gone'),
          current_user::text, 'a recipe is stamped with the role that wrote it');

---------------------------------------------------------------------------
-- hand-edited versions give clear errors when used, never wrong scores
CREATE FUNCTION pg_temp.score_mx() RETURNS float8 LANGUAGE sql AS $$
    SELECT pluralrm.reward_score('mx', 3, ARRAY[1.0, 2.0, 3.0])
$$;
SAVEPOINT edit;
UPDATE pluralrm.model_versions SET base_rewards = base_rewards[1:1][1:3] WHERE name = 'mx';
SELECT throws_ok('SELECT pg_temp.score_mx()', 'XX001', 'stored model "mx" is malformed',
                 'base rewards of the wrong shape: XX001');
ROLLBACK TO edit;
UPDATE pluralrm.model_versions SET base_rewards[2][2] = 'NaN' WHERE name = 'mx';
SELECT throws_ok('SELECT pg_temp.score_mx()', 'XX001', 'stored model "mx" is malformed',
                 'NaN in the base rewards: XX001');
ROLLBACK TO edit;
UPDATE pluralrm.model_versions SET population = '{0.5,Infinity}' WHERE name = 'mx';
SELECT throws_ok('SELECT pg_temp.score_mx()', 'XX001', 'stored model "mx" is malformed',
                 'Infinity in the population coefficients: XX001');
ROLLBACK TO edit;
UPDATE pluralrm.model_versions SET k = 3 WHERE name = 'mx';
SELECT throws_ok('SELECT pg_temp.score_mx()', 'XX001', 'stored model "mx" is malformed',
                 'k that disagrees with the arrays: XX001');
ROLLBACK TO edit;
UPDATE pluralrm.user_coefficients SET coefficients = '{0.5,NaN}' WHERE user_id = '7';
SELECT throws_ok('SELECT pg_temp.score_mx()', 'XX001', 'stored model "mx" is malformed',
                 'NaN in one user''s coefficients: XX001');
ROLLBACK TO edit;
UPDATE pluralrm.user_coefficients SET coefficients = '{1,0,0}' WHERE user_id = '7';
SELECT throws_ok('SELECT pg_temp.score_mx()', 'XX001', 'stored model "mx" is malformed',
                 'a user''s coefficients of the wrong length: XX001');
ROLLBACK TO edit;
UPDATE pluralrm.user_coefficients SET coefficients = '{{0.5,0.5}}' WHERE user_id = '7';
SELECT throws_ok('SELECT pg_temp.score_mx()', 'XX001', 'stored model "mx" is malformed',
                 'a user''s coefficients as a 2-D array: XX001');
ROLLBACK TO edit;
UPDATE pluralrm.models SET current_version = 99 WHERE name = 'mx';
SELECT throws_ok('SELECT pg_temp.score_mx()', '42704', NULL,
                 'a current version that does not exist: 42704');
ROLLBACK TO edit;
SELECT ok(pg_temp.score_mx() IS NOT NULL, 'the untouched model scores again');

-- a factor model's stored covariances feed next_questions
SELECT lives_ok($$SELECT pluralrm.define_model('fa', 'factor', 'prm_refit_c2',
                    user_column => 'user_id',
                    params => '{"k": 2, "allow_unconverged": true}')$$,
                'define a factor recipe');
SELECT is(pg_temp.refit('fa'), 1, 'the factor model refits');
CREATE FUNCTION pg_temp.ask_fa() RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM pluralrm.next_questions('fa', '7',
        ARRAY[[1, 0, 0], [0, 1, 0], [0, 0, 1.0]],
        ARRAY[[0, 0, 1], [1, 0, 0], [0, 1, 0.0]], 2)
$$;
SELECT is(pg_temp.ask_fa(), 2::bigint, 'next_questions uses the stored covariance');
SAVEPOINT edit;
UPDATE pluralrm.user_coefficients SET covariance = '{{1,NaN},{NaN,1}}' WHERE user_id = '7';
SELECT throws_ok('SELECT pg_temp.ask_fa()', 'XX001', 'stored model "fa" is malformed',
                 'NaN in a covariance: XX001');
ROLLBACK TO edit;
UPDATE pluralrm.user_coefficients SET covariance = '{1,0,0,1}' WHERE user_id = '7';
SELECT throws_ok('SELECT pg_temp.ask_fa()', 'XX001', 'stored model "fa" is malformed',
                 'a covariance that is not k x k: XX001');
ROLLBACK TO edit;
UPDATE pluralrm.user_coefficients SET covariance = '{{1,2},{2,1}}' WHERE user_id = '7';
SELECT throws_ok('SELECT pg_temp.ask_fa()', 'XX001', 'stored model "fa" is malformed',
                 'a covariance that is not positive definite: XX001');
ROLLBACK TO edit;
UPDATE pluralrm.user_coefficients SET covariance = '{{1,0},{5,1}}' WHERE user_id = '7';
SELECT throws_ok('SELECT pg_temp.ask_fa()', 'XX001', 'stored model "fa" is malformed',
                 'a covariance that is not symmetric: XX001');
ROLLBACK TO edit;

---------------------------------------------------------------------------
-- install hygiene
SELECT is(array_agg(p.oid::regprocedure::text ORDER BY 1), NULL::text[],
          'every SQL and PL/pgSQL function of the extension pins search_path')
  FROM pg_proc p
  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'pluralrm'
  JOIN pg_language l ON l.oid = p.prolang
 WHERE l.lanname IN ('sql', 'plpgsql')
   AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%');
SELECT is((SELECT array_agg(c::regclass::text ORDER BY 1)
             FROM pg_extension, unnest(extconfig) c WHERE extname = 'pluralrm')
          @> '{pluralrm.models,pluralrm.model_versions,pluralrm.user_coefficients,pluralrm.model_priors,pluralrm.model_recipes}',
          true, 'pg_dump saves the stored models, priors and recipes');

-- a schema ahead of pg_catalog whose = operators are always false must
-- not change what reward_score reads (its queries name pg_catalog.=)
SELECT pluralrm.save_model('prm_hostile',
           (SELECT pluralrm.mixture_fit(user_id, chosen, rejected, 2)
              FROM public.prm_refit_c2)) IS NOT NULL AS saved \gset
CREATE TEMP TABLE prm_hostile_probe AS
SELECT u::bigint AS user_id, ARRAY[sin(u), cos(u), 0.5] AS x,
       pluralrm.reward_score('prm_hostile', u::bigint, ARRAY[sin(u), cos(u), 0.5]) AS s
  FROM generate_series(0, 45) u;
CREATE SCHEMA prm_hostile;
CREATE FUNCTION prm_hostile.never(text, text) RETURNS boolean
    LANGUAGE sql IMMUTABLE AS 'SELECT false';
CREATE FUNCTION prm_hostile.never(bigint, bigint) RETURNS boolean
    LANGUAGE sql IMMUTABLE AS 'SELECT false';
CREATE FUNCTION prm_hostile.never(integer, integer) RETURNS boolean
    LANGUAGE sql IMMUTABLE AS 'SELECT false';
CREATE OPERATOR prm_hostile.= (LEFTARG = text, RIGHTARG = text, FUNCTION = prm_hostile.never);
CREATE OPERATOR prm_hostile.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = prm_hostile.never);
CREATE OPERATOR prm_hostile.= (LEFTARG = integer, RIGHTARG = integer, FUNCTION = prm_hostile.never);
-- (pgTAP itself uses =, so measure first and assert after the RESET)
SET LOCAL search_path = prm_hostile, pg_catalog, public;
SELECT 1 = 1 OR 'a' = 'a' OR 1::bigint = 1::bigint AS hostile_eq,
       (SELECT count(*) FROM pg_temp.prm_hostile_probe p
         WHERE pluralrm.reward_score('prm_hostile', p.user_id, p.x)
               OPERATOR(pg_catalog.=) p.s) AS hostile_same \gset
RESET search_path;
SELECT is(:'hostile_eq'::boolean, false,
          'under that search_path = is the hostile operator');
SELECT is(:hostile_same::bigint, 46::bigint,
          'reward_score reads the same model and users under it');

SELECT * FROM finish();
ROLLBACK;
