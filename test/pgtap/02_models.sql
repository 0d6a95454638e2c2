-- Stored models, reward_score and evaluate against SQL recomputation
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS pluralrm;

BEGIN;
SELECT plan(26);

CREATE TEMP TABLE c AS
SELECT i, i % 2 AS grp,
       ARRAY[sin(i * 1.1), cos(i * 0.7), sin(i * 0.3)] AS chosen,
       ARRAY[cos(i * 1.3), sin(i * 0.5), cos(i * 0.9)] AS rejected
  FROM generate_series(1, 5000) i;
UPDATE c SET chosen = rejected, rejected = chosen
 WHERE chosen[1] - rejected[1] < 0.3 * (chosen[3] - rejected[3]) AND i % 4 <> 0;

SELECT is(pluralrm.save_model('m', pluralrm.btl_fit(chosen, rejected)), 1,
          'first save is version 1') FROM c WHERE i <= 4000;
SELECT is(pluralrm.save_model('m', pluralrm.btl_fit(chosen, rejected, 1.0, 5.0)), 2,
          'second save is version 2') FROM c WHERE i <= 4000;
SELECT results_eq($$SELECT name, version, kind, k, d FROM pluralrm.model_list$$,
                  $$VALUES ('m'::text, 2, 'btl'::text, 1, 3)$$,
                  'model_list shows the current version');
SELECT is((SELECT array_dims(base_rewards) FROM pluralrm.model_versions
            WHERE name = 'm' AND version = 2), '[1:1][1:3]',
          'base rewards are stored as a 1 x d array');

-- reward_score is w . x for every user id type
CREATE TEMP TABLE w AS SELECT (pluralrm.model_weights('m'))[1:1][1:3] AS b;
SELECT ok((SELECT max(abs(pluralrm.reward_score('m', i, chosen)
                        - (SELECT sum(x * y) FROM unnest((SELECT b FROM w), chosen) u(x, y))))
             FROM c) < 1e-12,
          'reward_score equals the dot product computed in SQL');
SET LOCAL pluralrm.model = 'm';
SELECT ok((SELECT bool_and(pluralrm.reward_score(i::bigint, chosen) = pluralrm.reward_score(i::text, chosen)
                           AND pluralrm.reward_score(i::text, chosen)
                             = pluralrm.reward_score(md5(i::text)::uuid, chosen))
             FROM c),
          'bigint, text and uuid user ids get the same single-BTL reward');

-- a query that names a different model from row to row scores each row
-- under its own model, also when one name is the start of the other
SELECT is(pluralrm.save_model('mm', pluralrm.btl_fit(rejected, chosen)), 1,
          'a second model saved') FROM c WHERE i <= 4000;
SELECT ok((SELECT bool_and(x.s = CASE WHEN x.i % 3 = 0 THEN b.s ELSE a.s END)
                  AND bool_or(a.s <> b.s)
             FROM (SELECT i, pluralrm.reward_score(CASE WHEN i % 3 = 0 THEN 'mm' ELSE 'm' END,
                                                   i, chosen) AS s FROM c) AS x
             JOIN (SELECT i, pluralrm.reward_score('m', i, chosen) AS s FROM c) AS a USING (i)
             JOIN (SELECT i, pluralrm.reward_score('mm', i, chosen) AS s FROM c) AS b USING (i)),
          'model names that change from row to row score each row under its own model');
SELECT ok(pluralrm.drop_model('mm'), 'the second model dropped');
-- the model is read once per query, not once per row
CREATE TEMP TABLE scans0 AS
SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) AS n
  FROM pg_stat_xact_user_tables WHERE relid = 'pluralrm.models'::regclass;
SELECT ok((SELECT count(*) FROM c WHERE pluralrm.reward_score(i, chosen) > -1e9) = 5000,
          'scoring 5000 rows');
SELECT cmp_ok((SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0)
                 FROM pg_stat_xact_user_tables WHERE relid = 'pluralrm.models'::regclass)
              - (SELECT n FROM scans0), '<=', 3::bigint,
              'scoring 5000 rows reads the model table at most once per process');

-- evaluate against SQL recomputation on held-out rows, per group
SELECT ok((SELECT bool_and(abs((e).accuracy - acc) < 1e-12 AND abs((e).log_loss - ll) < 1e-12
                           AND (e).n = cnt)
             FROM (SELECT grp, pluralrm.evaluate('m', chosen, rejected) AS e,
                          avg(CASE WHEN s > 0 THEN 1.0 WHEN s = 0 THEN 0.5 ELSE 0.0 END) AS acc,
                          avg(ln(1 + exp(-s))) AS ll, count(*) AS cnt
                     FROM (SELECT grp, chosen, rejected,
                                  pluralrm.reward_score('m', 0, chosen)
                                  - pluralrm.reward_score('m', 0, rejected) AS s
                             FROM c WHERE i > 4000) h
                    GROUP BY grp) g),
          'evaluate matches accuracy and log-loss computed in SQL, per group');
SELECT ok((SELECT (pluralrm.evaluate('m', i::bigint, chosen, rejected)).accuracy
             FROM c WHERE i > 4000)
          = (SELECT (pluralrm.evaluate('m', chosen, rejected)).accuracy FROM c WHERE i > 4000),
          'evaluate with user ids serves a single BTL like the population');
SELECT ok((SELECT pluralrm.evaluate('m', chosen, rejected) FROM c WHERE false) IS NULL,
          'evaluate of no comparisons is NULL');

-- versions, rename, drop
SELECT lives_ok($$SELECT pluralrm.set_current_version('m', 1)$$, 'roll back to version 1');
SELECT is((SELECT (hyperparameters->>'l2')::float8 FROM pluralrm.model_list WHERE name = 'm'),
          1.0::float8, 'version 1 is served after the roll-back');
SELECT lives_ok($$SELECT pluralrm.rename_model('m', 'm2')$$, 'rename');
SELECT is((SELECT count(*) FROM pluralrm.model_versions WHERE name = 'm2'), 2::bigint,
          'rename keeps every version');
SELECT throws_ok($$SELECT pluralrm.reward_score('m', 1, ARRAY[1.0, 2.0, 3.0])$$, '42704',
                 'model "m" does not exist', 'the old name is gone: 42704');
SELECT throws_ok($$SELECT pluralrm.reward_score('m2', 1, ARRAY[1.0, 2.0])$$, '22000',
                 'expected 3 dimensions, not 2', 'dimension mismatch with the stored model: 22000');

-- hand-edited nonsense is reported, not served
UPDATE pluralrm.model_versions SET population = '{}' WHERE name = 'm2';
SELECT throws_ok($$SELECT pluralrm.reward_score('m2', 1, ARRAY[1.0, 2.0, 3.0])$$, 'XX001',
                 'stored model "m2" is malformed', 'malformed stored model: XX001');
SELECT ok(pluralrm.drop_model('m2'), 'drop');
SELECT is((SELECT count(*) FROM pluralrm.model_versions), 0::bigint,
          'drop removes every version');

-- the model-loading queries keep their plans in the backend: a model read
-- through them, then the extension dropped and created again in the same
-- session, must be read afresh, not from the old tables
SELECT pluralrm.save_model('again', (SELECT pluralrm.btl_fit(chosen, rejected) FROM c));
SELECT ok(abs(pluralrm.reward_score('again', 1, ARRAY[1.0, 0, 0])
              - (SELECT (pluralrm.btl_fit(chosen, rejected)).weights[1] FROM c)) < 1e-9,
          'a model is served through the kept plans');
DROP EXTENSION pluralrm;
CREATE EXTENSION pluralrm;
SELECT throws_ok($$SELECT pluralrm.reward_score('again', 1, ARRAY[1.0, 0, 0])$$, '42704',
                 'model "again" does not exist', 'after the extension is created again the old model is gone');
SELECT pluralrm.save_model('again', (SELECT pluralrm.btl_fit(chosen, rejected) FROM c WHERE grp = 0));
SELECT ok(abs(pluralrm.reward_score('again', 1, ARRAY[1.0, 0, 0])
              - (SELECT (pluralrm.btl_fit(chosen, rejected)).weights[1] FROM c WHERE grp = 0)) < 1e-9,
          'and a new model of that name is served from the new tables');

SELECT * FROM finish();
ROLLBACK;
