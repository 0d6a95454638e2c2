-- btl_items: strengths of items from paired comparisons
SET extra_float_digits = 0;

-- A deterministic pseudo-uniform draw from i
CREATE FUNCTION items_u(i float8) RETURNS float8 LANGUAGE sql IMMUTABLE AS
$$ SELECT abs(sin(i * 12.9898) * 43758.5453) - floor(abs(sin(i * 12.9898) * 43758.5453)) $$;

-- 3000 comparisons of six models drawn from Davidson's model with true
-- strengths 1, 0.6, 0.2, 0, -0.4, -1 and nu = 0.5, by 40 raters
CREATE TABLE arena_items (id integer, name text, truth float8);
INSERT INTO arena_items VALUES
  (1, 'alpha', 1.0), (2, 'beta', 0.6), (3, 'gamma', 0.2),
  (4, 'delta', 0.0), (5, 'epsilon', -0.4), (6, 'zeta', -1.0);
CREATE TABLE arena AS
SELECT i, ia.name AS model_a, ib.name AS model_b, ia.id AS id_a, ib.id AS id_b,
       CASE WHEN u < pa / d THEN 1.0 WHEN u < (pa + pb) / d THEN 0.0
            ELSE 0.5 END AS outcome,
       CASE WHEN i % 2 = 0 THEN 'coding' ELSE 'writing' END AS category,
       'rater' || (i % 40) AS rater
  FROM (SELECT i, 1 + (i * 7) % 6 AS a,
               1 + ((i * 7) % 6 + 1 + i % 5) % 6 AS b, items_u(i) AS u
          FROM generate_series(1, 3000) i) g
  JOIN arena_items ia ON ia.id = g.a
  JOIN arena_items ib ON ib.id = g.b,
  LATERAL (SELECT exp(ia.truth) AS pa, exp(ib.truth) AS pb,
                  exp(ia.truth) + exp(ib.truth)
                  + 0.5 * sqrt(exp(ia.truth) * exp(ib.truth)) AS d) p;

-- The facts of a default fit: Davidson ties, prior 0.01, centred strengths
SELECT comparisons, skipped, items, pairs, components, tie_model, prior,
       reference, round(nu::numeric, 3) AS nu, round(nu_se::numeric, 3) AS nu_se,
       round(loglik::numeric, 2) AS loglik, converged
  FROM (SELECT (pluralrm.btl_items(model_a, model_b, outcome)).* FROM arena) f;

-- One row per item, ready to ORDER BY
SELECT s.item, round(s.strength::numeric, 3) AS strength,
       round(s.se::numeric, 3) AS se, s.wins, s.losses, s.ties, s.component
  FROM (SELECT pluralrm.btl_items(model_a, model_b, outcome) AS m FROM arena) f,
       pluralrm.item_strengths(f.m) s
 ORDER BY s.strength DESC;

-- Maximum likelihood relative to a reference item
SELECT s.item, round(s.strength::numeric, 3) AS strength,
       round(s.se::numeric, 3) AS se
  FROM (SELECT pluralrm.btl_items(model_a, model_b, outcome, 1,
                 pluralrm.items_options(prior => 0, reference => 'delta')) AS m
          FROM arena) f,
       pluralrm.item_strengths(f.m) s
 ORDER BY s.strength DESC;

-- One fit per group
SELECT f.category, s.item, round(s.strength::numeric, 3) AS strength
  FROM (SELECT category, pluralrm.btl_items(model_a, model_b, outcome) AS m
          FROM arena GROUP BY category) f,
       pluralrm.item_strengths(f.m) s
 ORDER BY f.category, s.strength DESC;

-- Integer and uuid ids give the same strengths as names; items are listed
-- in the id type's order
SELECT s.item, round(s.strength::numeric, 3) AS strength
  FROM (SELECT pluralrm.btl_items(id_a::bigint, id_b::bigint, outcome) AS m
          FROM arena) f,
       pluralrm.item_strengths(f.m) s;
SELECT s.item, round(s.strength::numeric, 3) AS strength
  FROM (SELECT pluralrm.btl_items(
                 ('00000000-0000-0000-0000-00000000000' || id_a)::uuid,
                 ('00000000-0000-0000-0000-00000000000' || id_b)::uuid,
                 outcome) AS m
          FROM arena) f,
       pluralrm.item_strengths(f.m) s;

-- Ties as half a win each, or dropped
SELECT (m).tie_model, (m).nu, round((m).loglik::numeric, 2) AS loglik,
       (SELECT array_agg(round(x::numeric, 3) ORDER BY x DESC)
          FROM unnest((m).strength) x) AS strength
  FROM (SELECT pluralrm.btl_items(model_a, model_b, outcome, 1,
                 pluralrm.items_options(ties => t)) AS m
          FROM arena, (VALUES ('half'), ('drop')) v(t) GROUP BY t) f
 ORDER BY 1;

-- Bootstrap intervals: resampling comparisons, then raters
SELECT (m).resampled, (m).bootstrap, (m).bootstrap_failed, (m).confidence,
       round((m).nu_lower::numeric, 2) AS nu_lower,
       round((m).nu_upper::numeric, 2) AS nu_upper
  FROM (SELECT pluralrm.btl_items(model_a, model_b, outcome, 1,
                 pluralrm.items_options(bootstrap => 200, seed => 42)) AS m
          FROM arena) f;
SELECT s.item, round(s.strength::numeric, 2) AS strength,
       round(s.lower::numeric, 2) AS lower, round(s.upper::numeric, 2) AS upper
  FROM (SELECT pluralrm.btl_items(model_a, model_b, outcome, 1, rater,
                 pluralrm.items_options(bootstrap => 200, seed => 42,
                                        confidence => 0.9)) AS m
          FROM arena) f,
       pluralrm.item_strengths(f.m) s
 ORDER BY s.strength DESC;
SELECT (m).raters, (m).resampled
  FROM (SELECT pluralrm.btl_items(model_a, model_b, outcome, 1, rater,
                 pluralrm.items_options(bootstrap => 20, seed => 1)) AS m
          FROM arena) f;

-- An item that won every comparison stays finite with the default prior;
-- a graph in two parts is centred part by part
CREATE TABLE small (a text, b text, outcome float8);
INSERT INTO small VALUES ('p', 'q', 1), ('p', 'q', 1), ('q', 'r', 1),
  ('r', 'q', 1), ('x', 'y', 1), ('y', 'x', 0.5);
SELECT s.item, round(s.strength::numeric, 3) AS strength,
       round(s.se::numeric, 3) AS se, s.component
  FROM (SELECT pluralrm.btl_items(a, b, outcome) AS m FROM small) f,
       pluralrm.item_strengths(f.m) s
 ORDER BY s.component, s.strength DESC;

-- NULL inputs and self-comparisons are skipped and counted; no rows, NULL
SELECT (m).comparisons, (m).skipped
  FROM (SELECT pluralrm.btl_items(a, b, outcome) AS m
          FROM (VALUES ('p', 'q', 1.0), ('q', 'p', 0.0), (NULL, 'q', 1.0),
                       ('p', 'p', 1.0), ('p', 'q', NULL)) v(a, b, outcome)) f;
SELECT pluralrm.btl_items(a, b, outcome) IS NULL AS is_null
  FROM small WHERE false;

-- Errors
SELECT pluralrm.btl_items(a, b, 2) FROM small;
SELECT pluralrm.btl_items(a, b, outcome, -1) FROM small;
SELECT pluralrm.btl_items(a, b, outcome, 'NaN') FROM small;
SELECT pluralrm.btl_items(a, b, outcome, 1, pluralrm.items_options(ties => 'coin')) FROM small;
SELECT pluralrm.btl_items(a, b, outcome, 1, pluralrm.items_options(prior => -1)) FROM small;
SELECT pluralrm.btl_items(a, b, outcome, 1, pluralrm.items_options(confidence => 1)) FROM small;
SELECT pluralrm.btl_items(a, b, outcome, 1, pluralrm.items_options(bootstrap => -5)) FROM small;
SELECT pluralrm.btl_items(a, b, outcome, 1, pluralrm.items_options(reference => 'nobody')) FROM small WHERE a NOT IN ('x', 'y');
SELECT pluralrm.btl_items(a, b, outcome, 1, pluralrm.items_options(prior => 0)) FROM small;
SELECT pluralrm.btl_items(a, b, outcome, 1, pluralrm.items_options(reference => 'p')) FROM small;
SELECT pluralrm.btl_items(a, b, outcome, 1, pluralrm.items_options(prior => 0)) FROM small WHERE a NOT IN ('x', 'y');
SELECT pluralrm.btl_items(a, b, 0.5) FROM small;
SELECT pluralrm.btl_items(a, b, outcome, 1, pluralrm.items_options(prior => i)) FROM small, (VALUES (0.1), (0.2)) v(i);
SELECT pluralrm.btl_items(point(1, 2), point(2, 1), 1);
