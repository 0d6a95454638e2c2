-- Data and models for test/drivers/61_faults.sh
CREATE EXTENSION pluralrm;

-- 500 fixed vectors of 512 dimensions; comparisons pair them up on the fly
CREATE TABLE vecs AS
SELECT id, ARRAY(SELECT sin(id * 0.37 * j + j * 1.3)
                   FROM generate_series(1, 512) j)::float8[] AS x
  FROM generate_series(0, 499) id;
ALTER TABLE vecs ADD PRIMARY KEY (id);

-- a long fit: 50000 comparisons of 512 dimensions, read in about a second;
-- the solver then runs for minutes at a tolerance it cannot reach
CREATE VIEW long_comparisons AS
SELECT (i % 500)::bigint AS user_id, a.x AS chosen, b.x AS rejected
  FROM generate_series(1, 50000) i
  JOIN vecs a ON a.id = i % 500
  JOIN vecs b ON b.id = (i * 7 + 3) % 499;

-- comparisons first .. first + count - 1 of 30 users in two groups with
-- opposite tastes (the same i always gives the same row)
CREATE FUNCTION make_comparisons(first integer, count integer)
RETURNS TABLE (i integer, user_id bigint, chosen float8[], rejected float8[])
LANGUAGE sql IMMUTABLE AS $$
    SELECT i, u,
           CASE WHEN flip THEN b ELSE a END, CASE WHEN flip THEN a ELSE b END
      FROM generate_series(first, first + count - 1) i,
           LATERAL (SELECT (i % 30)::bigint AS u,
                           ARRAY[sin(i * 1.1), cos(i * 0.7), sin(i * 0.3),
                                 cos(i * 0.2)] AS a,
                           ARRAY[cos(i * 1.3), sin(i * 0.5), cos(i * 0.9),
                                 sin(i * 0.4)] AS b) v,
           LATERAL (SELECT CASE WHEN u % 2 = 0 THEN a[1] - b[1] < 0
                                ELSE a[2] - b[2] < 0 END AS flip) f
$$;
CREATE TABLE small_comparisons AS SELECT * FROM make_comparisons(1, 3000);

-- probes: known users, and users the model has never seen
CREATE TABLE probes AS
SELECT p AS id, (p * 7 % 40)::bigint AS user_id,
       ARRAY[cos(p), sin(p * 2.0), cos(p * 3.0), sin(p * 0.5)] AS x
  FROM generate_series(1, 24) p;

-- the largest difference between two arrays of the same length
CREATE FUNCTION maxdiff(a float8[], b float8[])
RETURNS float8
LANGUAGE sql IMMUTABLE AS $$
    SELECT max(abs(x - y)) FROM unnest(a, b) u(x, y)
$$;

-- the score vector of every probe under the current version of a model,
-- computed in SQL from the stored arrays (not by reward_score); in numeric,
-- because a float8 product of a tiny responsibility (1e-300) and a weight
-- raises "value out of range: underflow" where C gives 0
CREATE FUNCTION expected_scores(model text)
RETURNS TABLE (version integer, scores float8[])
LANGUAGE sql STABLE AS $$
    SELECT v.version, array_agg(t.s ORDER BY p.id)
      FROM pluralrm.models m
      JOIN pluralrm.model_versions v
        ON v.name = m.name AND v.version = m.current_version
     CROSS JOIN probes p
      LEFT JOIN pluralrm.user_coefficients uc
        ON uc.model_id = v.model_id AND uc.user_id = p.user_id::text
     CROSS JOIN LATERAL (
        SELECT sum(coalesce(uc.coefficients[c], v.population[c])::numeric
                   * v.base_rewards[c][j]::numeric
                   * p.x[j]::numeric)::float8 AS s
          FROM generate_series(1, v.k) c, generate_series(1, v.d) j) t
     WHERE m.name = model
     GROUP BY v.version
$$;

-- the same vector from reward_score, in one query (one model load)
CREATE FUNCTION served_scores(model text)
RETURNS float8[]
LANGUAGE sql STABLE AS $$
    SELECT array_agg(pluralrm.reward_score(model, p.user_id, p.x)
                     ORDER BY p.id)
      FROM probes p
$$;

SELECT pluralrm.define_model('kept', 'mixture', 'small_comparisons',
                             user_column => 'user_id',
                             params => '{"k": 2, "restarts": 4}');
CALL pluralrm.refit('kept');
CREATE TABLE kept_reference AS SELECT * FROM expected_scores('kept');
