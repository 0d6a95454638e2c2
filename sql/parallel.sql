-- btl_fit and evaluate in parallel plans give the serial answer
CREATE TABLE par AS
SELECT i,
       ARRAY[sin(i * 1.1), cos(i * 0.7), sin(i * 0.3), cos(i * 0.2)] AS chosen,
       ARRAY[cos(i * 1.3), sin(i * 0.5), cos(i * 0.9), sin(i * 0.4)] AS rejected
  FROM generate_series(1, 40000) i;
UPDATE par SET chosen = rejected, rejected = chosen
 WHERE chosen[1] - rejected[1] < chosen[2] - rejected[2] AND i % 3 <> 0;
ANALYZE par;

-- true when the plan of a query has a Partial Aggregate node
CREATE FUNCTION plan_has_partial_aggregate(q text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    line text;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
        IF line LIKE '%Partial Aggregate%' THEN
            RETURN true;
        END IF;
    END LOOP;
    RETURN false;
END
$$;

SET max_parallel_workers_per_gather = 0;
CREATE TEMP TABLE serial AS
SELECT pluralrm.btl_fit(chosen, rejected) AS m FROM par;

SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SELECT plan_has_partial_aggregate('SELECT pluralrm.btl_fit(chosen, rejected) FROM par');
CREATE TEMP TABLE parallel AS
SELECT pluralrm.btl_fit(chosen, rejected) AS m FROM par;

-- same comparisons, same weights to 1e-9 relative
SELECT (p.m).n = (s.m).n AS same_n,
       (SELECT max(abs(a - b) / greatest(abs(b), 1e-300))
          FROM unnest((p.m).weights, (s.m).weights) u(a, b)) < 1e-9 AS same_weights
  FROM parallel p, serial s;

-- evaluate has a plain array state and combines too
SELECT pluralrm.save_model('par', m) FROM serial;
SELECT plan_has_partial_aggregate($$SELECT pluralrm.evaluate('par', chosen, rejected) FROM par$$);
SELECT (e).n, round((e).accuracy::numeric, 6) AS accuracy
  FROM (SELECT pluralrm.evaluate('par', chosen, rejected) AS e FROM par) s;
SET max_parallel_workers_per_gather = 0;
SELECT (e).n, round((e).accuracy::numeric, 6) AS accuracy
  FROM (SELECT pluralrm.evaluate('par', chosen, rejected) AS e FROM par) s;
SELECT pluralrm.drop_model('par');
