-- Multi-pass fitting: the answer of the in-memory fits, under parallel
-- plans, checked against optimality conditions computed in plain SQL; and
-- malformed partial states fed to btl_fit's deserializer
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS pluralrm;

-- parallel scans need regular tables, so these are committed and dropped
DROP TABLE IF EXISTS prm_tap_mp, prm_tap_mp_mix, prm_tap_payload;
CREATE TABLE prm_tap_mp AS
SELECT i, i % 4 AS grp,
       ARRAY[sin(i * 1.1), cos(i * 0.7), sin(i * 0.3), cos(i * 0.2), sin(i * 0.05)] AS a,
       ARRAY[cos(i * 1.3), sin(i * 0.5), cos(i * 0.9), sin(i * 0.4), cos(i * 0.01)] AS b
  FROM generate_series(1, 20000) i;
ALTER TABLE prm_tap_mp ADD chosen real[], ADD rejected real[];
UPDATE prm_tap_mp SET
    chosen = (CASE WHEN coin < 1 / (1 + exp(-m)) THEN a ELSE b END)::real[],
    rejected = (CASE WHEN coin < 1 / (1 + exp(-m)) THEN b ELSE a END)::real[]
  FROM (SELECT i AS j,
               1.5 * (a[1] - b[1]) - (a[2] - b[2]) + 0.5 * (a[5] - b[5]) AS m,
               abs(hashint4(i)::float8) / 2147483648.0 AS coin
          FROM prm_tap_mp) AS x
 WHERE x.j = prm_tap_mp.i;
ANALYZE prm_tap_mp;

CREATE TABLE prm_tap_mp_mix AS
SELECT u AS user_id, j,
       CASE WHEN u % 3 = 0 THEN 2 ELSE 1 END AS truth,
       ARRAY[sin(u * 1.7 + j * 2.3), cos(u * 0.9 + j * 1.1), sin(u * 0.4 + j * 3.7),
             cos(u * 0.2 + j * 0.3)] AS a,
       ARRAY[cos(u * 1.3 + j * 0.7), sin(u * 2.1 + j * 0.5), cos(u * 0.6 + j * 2.9),
             sin(u * 0.8 + j * 1.9)] AS b
  FROM generate_series(1, 400) u, generate_series(1, 16) j;
ALTER TABLE prm_tap_mp_mix ADD chosen float8[], ADD rejected float8[];
UPDATE prm_tap_mp_mix SET
    chosen = CASE WHEN coin < 1 / (1 + exp(-m)) THEN a ELSE b END,
    rejected = CASE WHEN coin < 1 / (1 + exp(-m)) THEN b ELSE a END
  FROM (SELECT user_id AS uu, j AS jj,
               CASE WHEN truth = 1 THEN 2 * (a[1] - b[1]) + 2 * (a[2] - b[2])
                    ELSE -2 * (a[1] - b[1]) + 2 * (a[3] - b[3]) END AS m,
               abs(hashint4(user_id * 1000 + j)::float8) / 2147483648.0 AS coin
          FROM prm_tap_mp_mix) AS x
 WHERE x.uu = prm_tap_mp_mix.user_id AND x.jj = prm_tap_mp_mix.j;
ANALYZE prm_tap_mp_mix;

-- one row per payload fed to the deserializer
CREATE TABLE prm_tap_payload (name text, bytes bytea);

BEGIN;
SELECT plan(19);

CREATE FUNCTION pg_temp.reldiff(a float8[], b float8[]) RETURNS float8
LANGUAGE sql IMMUTABLE AS $$
    SELECT max(abs(x - y) / greatest(abs(y), 1)) FROM unnest(a, b) AS u(x, y)
$$;

-- in-memory fits with serial plans, the reference
SET LOCAL max_parallel_workers_per_gather = 0;
CREATE TEMP TABLE mem AS
SELECT pluralrm.btl_fit(chosen, rejected, 1.0, 0.5) AS m FROM prm_tap_mp;
CREATE TEMP TABLE mem_grp AS
SELECT grp::text AS g, pluralrm.btl_fit(chosen, rejected) AS m
  FROM prm_tap_mp GROUP BY grp;
CREATE TEMP TABLE mem_mix AS
SELECT pluralrm.mixture_fit(user_id, chosen, rejected, 2) AS m FROM prm_tap_mp_mix;

-- multi-pass fits with parallel plans for every pass
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
CREATE TEMP TABLE mp AS
SELECT * FROM pluralrm.btl_fit_multipass('prm_tap_mp', l2 => 0.5);
CREATE TEMP TABLE mp_grp AS
SELECT * FROM pluralrm.btl_fit_multipass('prm_tap_mp', group_column => 'grp');
CREATE TEMP TABLE mp_mix AS
SELECT * FROM pluralrm.mixture_fit_multipass('prm_tap_mp_mix', 2, start_users => 100,
                                            tol => 1e-12);
CREATE TEMP TABLE mp_mix_swapped AS
SELECT * FROM pluralrm.mixture_fit_multipass('prm_tap_mp_mix', 2,
    start_base_rewards => '{{-1,0,1,0},{1,1,0,0}}', start_mixing => '{0.5,0.5}',
    tol => 1e-12);

SELECT ok((SELECT pg_temp.reldiff((mp.model).weights, (mem.m).weights) < 1e-6
             FROM mp, mem),
          'btl_fit_multipass in parallel plans gives btl_fit''s weights to 1e-6');
SELECT ok((SELECT abs((mp.model).loglik - (mem.m).loglik) < 1e-9 * abs((mem.m).loglik)
             FROM mp, mem),
          'and its log-likelihood');
SELECT is((SELECT (mp.model).n FROM mp), 20000::bigint, 'every comparison counted');

-- optimality in plain SQL: sum_i (sigmoid(w . z_i) - 1) z_i + l2 w = 0
CREATE TEMP TABLE diffs AS
SELECT array_agg(c - r ORDER BY k) AS z
  FROM prm_tap_mp, unnest(chosen::float8[], rejected::float8[])
       WITH ORDINALITY AS e(c, r, k)
 GROUP BY i;
SELECT ok((SELECT max(abs(g.s + 0.5 * x.w[g.j]))
             FROM (SELECT j, sum((1 / (1 + exp(-(w[1] * z[1] + w[2] * z[2] + w[3] * z[3]
                                                 + w[4] * z[4] + w[5] * z[5]))) - 1) * z[j]) AS s
                     FROM diffs, (SELECT (model).weights AS w FROM mp) AS x,
                          generate_series(1, 5) AS j
                    GROUP BY j) AS g,
                  (SELECT (model).weights AS w FROM mp) AS x) < 1e-6,
          'the gradient computed in SQL vanishes at the multi-pass weights');

SELECT ok((SELECT bool_and(pg_temp.reldiff((p.model).weights, (q.m).weights) < 1e-6
                           AND (p.model).n = (q.m).n)
             FROM mp_grp p JOIN mem_grp q ON q.g = p.group_key),
          'GROUP BY: each group''s weights equal btl_fit''s');
SELECT is((SELECT count(*) FROM mp_grp), 4::bigint, 'GROUP BY: one row per group');
SELECT ok((SELECT bool_and(passes = (SELECT max(passes) FROM mp_grp)) FROM mp_grp),
          'GROUP BY: all groups share the passes over the table');

-- the mixture: same optimum as mixture_fit, from a sampled start and from a
-- start with the components the other way round. EM converges linearly, so
-- its stopping point limits the agreement: with the default tol (1e-9) the
-- base rewards agree to about 1e-6, with tol 1e-12 to about 1e-7.
SELECT ok((SELECT abs((x.model).loglik - (y.m).loglik) < 1e-6 * abs((y.m).loglik)
             FROM mp_mix x, mem_mix y),
          'mixture_fit_multipass reaches mixture_fit''s log-likelihood to 1e-6');
SELECT ok((SELECT pg_temp.reldiff((x.model).base_rewards, (y.m).base_rewards) < 1e-6
                  AND pg_temp.reldiff((x.model).mixing, (y.m).mixing) < 1e-6
             FROM mp_mix x, mem_mix y),
          'and its base rewards and mixing weights');
SELECT ok((SELECT (x.model).user_ids = (y.m).user_ids
                  AND pg_temp.reldiff((x.model).responsibilities,
                                      (y.m).responsibilities) < 1e-6
             FROM mp_mix x, mem_mix y),
          'and every user''s responsibilities');
SELECT ok((SELECT pg_temp.reldiff((x.model).base_rewards, (y.m).base_rewards) < 1e-6
                  AND abs((x.model).loglik - (y.m).loglik) < 1e-6 * abs((y.m).loglik)
             FROM mp_mix_swapped x, mem_mix y),
          'from swapped labels too (components ordered by mixing weight)');
SELECT ok((SELECT (x.model).sampled_users BETWEEN 50 AND 200 FROM mp_mix x),
          'the default start is an in-memory fit on a sample of users');

-- the EM fixed point in plain SQL: each user's posterior from the fitted
-- base rewards and mixing weights is the returned responsibility, and the
-- mixing weights are their mean
CREATE TEMP TABLE fixed AS
WITH m AS (SELECT model, (model).base_rewards AS b FROM mp_mix),
ll AS (
    SELECT t.user_id::text AS u, c,
           sum(-ln(1 + exp(-(m.b[c][1] * (t.chosen[1] - t.rejected[1])
                              + m.b[c][2] * (t.chosen[2] - t.rejected[2])
                              + m.b[c][3] * (t.chosen[3] - t.rejected[3])
                              + m.b[c][4] * (t.chosen[4] - t.rejected[4]))))) AS l
      FROM prm_tap_mp_mix t, m, generate_series(1, 2) c
     GROUP BY 1, 2),
post AS (
    SELECT ll.u, ll.c,
           (m.model).mixing[ll.c] * exp(ll.l)
               / sum((m.model).mixing[ll.c] * exp(ll.l)) OVER (PARTITION BY ll.u) AS g
      FROM ll, m)
SELECT post.u, post.c, post.g,
       (m.model).responsibilities[array_position((m.model).user_ids, post.u)][post.c] AS r
  FROM post, m;
SELECT ok((SELECT max(abs(g - r)) FROM fixed) < 1e-6,
          'responsibilities are the posterior under the fitted mixture');
SELECT ok((SELECT max(abs(a.g - (m.model).mixing[a.c]))
             FROM (SELECT c, avg(g) AS g FROM fixed GROUP BY c) a, mp_mix m) < 1e-6,
          'mixing weights are the mean responsibilities');

-- malformed partial states for btl_fit's deserializer. It takes an internal
-- argument, so SQL reaches it only as the deserialize function of a
-- parallel aggregate. This probe aggregate's partial states are raw bytea
-- (string_agg's state serialized as the concatenated bytes), which btl_fit's
-- deserializer then reads. Its final function expects btl_fit's state, so
-- it may only run as the Finalize step of a parallel plan: every probe
-- checks its plan first.
CREATE SCHEMA prm_probe;
CREATE AGGREGATE prm_probe.deserialize(bytea, bytea) (
    SFUNC = pg_catalog.bytea_string_agg_transfn, STYPE = internal,
    SERIALFUNC = pg_catalog.bytea_string_agg_finalfn,
    DESERIALFUNC = pluralrm.btl_fit_deserializefn,
    COMBINEFUNC = pluralrm.btl_fit_combinefn,
    FINALFUNC = pluralrm.btl_fit_finalfn, PARALLEL = SAFE);
-- whether the probe query has a partial aggregate under a Gather
CREATE FUNCTION pg_temp.probe_is_parallel() RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    line text;
    partial boolean := false;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) SELECT prm_probe.deserialize(bytes, ''''::bytea) FROM prm_tap_payload' LOOP
        partial := partial OR line LIKE '%Partial Aggregate%';
    END LOOP;
    RETURN partial;
END $$;
-- feed one payload to the deserializer: 'refused: SQLSTATE' when it fails
CREATE FUNCTION pg_temp.probe(payload bytea) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM prm_tap_payload;
    INSERT INTO prm_tap_payload VALUES ('probe', payload);
    IF NOT pg_temp.probe_is_parallel() THEN
        RETURN 'not parallel';
    END IF;
    EXECUTE 'SELECT prm_probe.deserialize(bytes, ''''::bytea) FROM prm_tap_payload';
    RETURN 'accepted';
EXCEPTION WHEN OTHERS THEN
    RETURN 'refused: ' || SQLSTATE;
END $$;

CREATE TEMP TABLE payloads (name text, bytes bytea);
INSERT INTO payloads VALUES
    ('empty', ''::bytea),
    ('short', '\x000001'::bytea),
    ('negative d', '\xffffffff'::bytea || decode(repeat('00', 200), 'hex')),
    ('huge d', '\x7fffffff'::bytea || decode(repeat('00', 200), 'hex')),
    ('rows without data', '\x00000004'::bytea || '\x00000000000f4240'::bytea
                          || decode(repeat('00', 120), 'hex')),
    ('row count overflow', '\x00000001'::bytea || '\x2000000000000000'::bytea
                           || decode(repeat('00', 120), 'hex')),
    ('garbage', decode(repeat('a5c3', 300), 'hex'));
INSERT INTO prm_tap_payload VALUES ('probe', '\x00');
SELECT ok(pg_temp.probe_is_parallel(), 'the probe aggregate runs in a parallel plan');
CREATE TEMP TABLE probed AS
SELECT name, pg_temp.probe(bytes) AS outcome FROM payloads;
SELECT is((SELECT string_agg(name, ', ') FROM probed
            WHERE outcome NOT IN ('refused: 08P01', 'refused: XX001', 'refused: 54000')),
          NULL, 'btl_fit''s deserializer refuses every malformed payload with an error');
SELECT is((SELECT outcome FROM probed WHERE name = 'garbage'), 'refused: XX001',
          'garbage is a malformed state');
SELECT is((SELECT outcome FROM probed WHERE name = 'empty'), 'refused: 08P01',
          'an empty payload is too short');
SELECT lives_ok('SELECT 1', 'the backend survived every payload');

SELECT * FROM finish();
ROLLBACK;
DROP TABLE prm_tap_mp, prm_tap_mp_mix, prm_tap_payload;
