-- btl_fit: fitting linear BTL reward models over embeddings
SET extra_float_digits = 0;

-- Deterministic comparisons: a pseudo-uniform from i, embeddings from
-- trigonometric functions, labels drawn from the true weights (2, -1, 0.5).
CREATE FUNCTION prm_u(i float8) RETURNS float8 LANGUAGE sql IMMUTABLE AS
$$ SELECT abs(sin(i * 12.9898) * 43758.5453) - floor(abs(sin(i * 12.9898) * 43758.5453)) $$;

CREATE TABLE pairs AS
SELECT i, i % 3 AS segment,
       ARRAY[sin(i * 1.1), cos(i * 0.7), sin(i * 0.3)] AS a,
       ARRAY[cos(i * 1.3), sin(i * 0.5), cos(i * 0.9)] AS b
  FROM generate_series(1, 3000) i;
CREATE TABLE comparisons AS
SELECT i, segment,
       CASE WHEN win THEN a ELSE b END AS chosen,
       CASE WHEN win THEN b ELSE a END AS rejected
  FROM (SELECT *, prm_u(i) < 1 / (1 + exp(-(2 * (a[1] - b[1]) - (a[2] - b[2])
                                           + 0.5 * (a[3] - b[3])))) AS win
          FROM pairs) s;

-- One model over all comparisons: the facts and the weights
SELECT n, d, l2, converged, method, skipped, round(accuracy::numeric, 4) AS accuracy,
       round(loglik::numeric, 3) AS loglik,
       (SELECT array_agg(round(x::numeric, 4)) FROM unnest(weights) x) AS weights
  FROM (SELECT (m).* FROM (SELECT pluralrm.btl_fit(chosen, rejected) AS m
                             FROM comparisons) s) t;

-- Unpenalized, weighted, and one model per segment
SELECT (SELECT array_agg(round(x::numeric, 3)) FROM unnest((m).weights) x) AS weights
  FROM (SELECT pluralrm.btl_fit(chosen, rejected, 1.0, 0.0) AS m FROM comparisons) s;
SELECT segment, (m).n,
       (SELECT array_agg(round(x::numeric, 3)) FROM unnest((m).weights) x) AS weights
  FROM (SELECT segment, pluralrm.btl_fit(chosen, rejected, 1.0, 0.5) AS m
          FROM comparisons GROUP BY segment) s
 ORDER BY segment;

-- real[] embeddings go through the implicit cast to float8[]
SELECT (SELECT array_agg(round(x::numeric, 3)) FROM unnest((m).weights) x) AS weights
  FROM (SELECT pluralrm.btl_fit(chosen::real[], rejected::real[]) AS m
          FROM comparisons) s;

-- The two solvers agree
SET pluralrm.solver = newton_cg;
SELECT (m).method,
       (SELECT array_agg(round(x::numeric, 4)) FROM unnest((m).weights) x) AS weights
  FROM (SELECT pluralrm.btl_fit(chosen, rejected) AS m FROM comparisons) s;
RESET pluralrm.solver;

-- d = 1 has a closed form: w = log(wins / losses) without a penalty
SELECT round((pluralrm.btl_fit(ARRAY[x], ARRAY[0.0], 1.0, 0.0)).weights[1]::numeric, 10)
       = round(ln(7.0 / 3.0), 10) AS closed_form
  FROM (SELECT CASE WHEN i <= 7 THEN 1.0 ELSE -1.0 END AS x
          FROM generate_series(1, 10) i) s;

-- Empty input gives NULL, like other aggregates
SELECT pluralrm.btl_fit(chosen, rejected) IS NULL AS empty_is_null
  FROM comparisons WHERE false;

-- NULL embeddings and NULL weights are skipped, counted and reported
SELECT (m).n, (m).skipped
  FROM (SELECT pluralrm.btl_fit(CASE WHEN i % 100 = 0 THEN NULL ELSE chosen END,
                                rejected,
                                CASE WHEN i % 150 = 0 THEN NULL ELSE 1.0 END) AS m
          FROM comparisons) s;

-- Bad input: each is an error with its own message
SELECT pluralrm.btl_fit(ARRAY[1.0, NULL], ARRAY[1.0, 2.0]);
SELECT pluralrm.btl_fit(ARRAY[[1.0, 2.0]], ARRAY[[1.0, 2.0]]);
SELECT pluralrm.btl_fit('{}'::float8[], '{}'::float8[]);
SELECT pluralrm.btl_fit(ARRAY[1.0, 2.0], ARRAY[1.0, 2.0, 3.0]);
SELECT pluralrm.btl_fit(x, (ARRAY[0.0, 0.0, 0.0])[1:cardinality(x)])
  FROM (VALUES (ARRAY[1.0, 2.0]), (ARRAY[1.0, 2.0, 3.0])) v(x);
SELECT pluralrm.btl_fit(ARRAY['NaN'::float8, 1.0], ARRAY[1.0, 2.0]);
SELECT pluralrm.btl_fit(ARRAY[1.0, 2.0], ARRAY['Infinity'::float8, 2.0]);
SELECT pluralrm.btl_fit(ARRAY[1.0], ARRAY[0.0], -1.0);
SELECT pluralrm.btl_fit(ARRAY[1.0], ARRAY[0.0], 'NaN');
SELECT pluralrm.btl_fit(ARRAY[1.0], ARRAY[0.0], 1.0, -0.5);
SELECT pluralrm.btl_fit(ARRAY[1.0], ARRAY[0.0], 1.0, NULL);
SELECT pluralrm.btl_fit(ARRAY[1.0], ARRAY[0.0], 1.0, i::float8)
  FROM generate_series(1, 2) i;
SELECT pluralrm.btl_fit(array_fill(0.5::float8, ARRAY[20000]),
                        array_fill(0.0::float8, ARRAY[20000]));
SELECT pluralrm.btl_fit(chosen, chosen) FROM comparisons;
SELECT pluralrm.btl_fit(ARRAY[1.0, 0.0], ARRAY[0.0, 0.0], 1.0, 0.0)
  FROM generate_series(1, 5);
