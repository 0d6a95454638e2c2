-- real[] responses: reward_score's planner support drops the implicit cast
-- to float8[] and reads the real[] array itself, with the same scores and
-- the same checks
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS pluralrm;

BEGIN;
SELECT plan(10);

CREATE TEMP TABLE ra AS
SELECT i, (i % 7)::bigint AS user_id, (i % 7)::text AS user_text,
       ARRAY[sin(i), cos(i), sin(2 * i)]::real[] AS a,
       ARRAY[cos(i), sin(3 * i), 0.1]::real[] AS b
  FROM generate_series(1, 2000) i;
SELECT pluralrm.save_model('prm_real_m',
           (SELECT pluralrm.mixture_fit(user_id, a, b, 2) FROM ra)) AS v \gset

-- the plan of a query, as one text
CREATE FUNCTION pg_temp.plan_text(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE line text; t text := '';
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF) ' || q LOOP
        t := t || line || E'\n';
    END LOOP;
    RETURN t;
END $$;

SELECT unalike(pg_temp.plan_text($$SELECT pluralrm.reward_score('prm_real_m', user_id, a) FROM ra$$),
              '%double precision[]%',
              'reward_score of a real[] column runs without the cast to float8[]');
SELECT alike(pg_temp.plan_text($$SELECT pluralrm.reward_score('prm_real_m', user_id, a::numeric[]::float8[]) FROM ra$$),
            '%double precision[]%',
            'other casts stay');

-- the score computed in SQL from the stored arrays, in float8
CREATE TEMP TABLE expected AS
SELECT r.i, sum(coalesce(uc.coefficients[c], v.population[c])
                * v.base_rewards[c][j] * r.a[j]::float8) AS s
  FROM ra r
  JOIN pluralrm.model_versions v ON v.name = 'prm_real_m'
  LEFT JOIN pluralrm.user_coefficients uc
         ON uc.model_id = v.model_id AND uc.user_id = r.user_id::text
 CROSS JOIN generate_series(1, 2) c CROSS JOIN generate_series(1, 3) j
 GROUP BY r.i;

SELECT is((SELECT count(*) FROM ra r JOIN expected e USING (i)
            WHERE abs(pluralrm.reward_score('prm_real_m', r.user_id, r.a) - e.s)
                  <= 1e-12 * (1 + abs(e.s))), 2000::bigint,
          'real[] scores (bigint users) equal the stored model''s in SQL');
SELECT is((SELECT count(*) FROM ra r JOIN expected e USING (i)
            WHERE abs(pluralrm.reward_score('prm_real_m', r.user_text, r.a) - e.s)
                  <= 1e-12 * (1 + abs(e.s))), 2000::bigint,
          'real[] scores (text users) equal them too');
SELECT is((SELECT count(*) FROM ra r
            WHERE pluralrm.reward_score('prm_real_m', r.user_id, r.a, 0.5)
                = pluralrm.reward_score('prm_real_m', r.user_id, r.a::float8[] || '{}'::float8[], 0.5)),
          2000::bigint, 'the consensus blend gives the float8[] scores');
SET LOCAL pluralrm.model = 'prm_real_m';
SELECT is((SELECT count(*) FROM ra r
            WHERE pluralrm.reward_score(r.user_id, r.a)
                = pluralrm.reward_score(r.user_id, r.a::float8[] || '{}'::float8[])),
          2000::bigint, 'so does the default model');

SELECT throws_ok($$SELECT pluralrm.reward_score('prm_real_m', 1::bigint, x)
                     FROM (VALUES ('{1,NaN,0}'::real[])) v(x)$$, '22000', NULL,
                 'a NaN in a real[] response: 22000');
SELECT throws_ok($$SELECT pluralrm.reward_score('prm_real_m', 1::bigint, x)
                     FROM (VALUES ('{1,2}'::real[])) v(x)$$, '22000', NULL,
                 'a real[] response of the wrong length: 22000');
SELECT is((SELECT pluralrm.reward_score('prm_real_m', 1::bigint, x)
             FROM (VALUES (NULL::real[])) v(x)), NULL::float8,
          'a NULL real[] response scores NULL');
SELECT throws_ok($$SELECT pluralrm.reward_score('prm_real_m', 1::bigint, x)
                     FROM (VALUES ('{{1,2,3}}'::real[])) v(x)$$, '22000', NULL,
                 'a two-dimensional real[] response: 22000');

SELECT * FROM finish();
ROLLBACK;
