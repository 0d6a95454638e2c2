-- Partitioned comparison tables: partitionwise aggregation (one fit per
-- partition when grouping by the partition key, partial fits per partition
-- combined when not) gives the models of the plain, serial plan
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS pluralrm;

BEGIN;
SELECT plan(10);

-- three regions, one partition each; users 0..299, region = user % 3
CREATE TABLE prm_part (region integer, user_id bigint, chosen float8[],
                       rejected float8[], w float8)
    PARTITION BY LIST (region);
CREATE TABLE prm_part_0 PARTITION OF prm_part FOR VALUES IN (0);
CREATE TABLE prm_part_1 PARTITION OF prm_part FOR VALUES IN (1);
CREATE TABLE prm_part_2 PARTITION OF prm_part FOR VALUES IN (2);
INSERT INTO prm_part
SELECT user_id % 3, user_id, chosen, rejected, 1.0 + (comparison_id % 3)
  FROM pluralrm.synthetic_comparisons(users => 300, comparisons_per_user => 30,
                                      d => 5, group_shares => '{0.5,0.5}',
                                      seed => 11);
ANALYZE prm_part;

-- the nodes of a query's plan, in order
CREATE FUNCTION pg_temp.plan_nodes(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    line text;
    nodes text := '';
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
        IF line ~ '(Aggregate|Append|Scan)' THEN
            nodes := nodes || btrim(regexp_replace(line, '^[ ->]*', '')) || '; ';
        END IF;
    END LOOP;
    RETURN nodes;
END $$;
-- the largest difference between two arrays
CREATE FUNCTION pg_temp.maxdiff(a float8[], b float8[]) RETURNS float8
LANGUAGE sql IMMUTABLE AS $$ SELECT max(abs(x - y)) FROM unnest(a, b) u(x, y) $$;

SET LOCAL max_parallel_workers_per_gather = 0;
SET LOCAL enable_partitionwise_aggregate = off;
CREATE TEMP TABLE by_region AS
SELECT region, pluralrm.btl_fit(chosen, rejected, w) AS m,
       pluralrm.mixture_fit(user_id, chosen, rejected, 2) AS mx
  FROM prm_part GROUP BY region;
CREATE TEMP TABLE whole AS
SELECT pluralrm.btl_fit(chosen, rejected, w) AS m,
       pluralrm.mixture_fit(user_id, chosen, rejected, 2) AS mx,
       pluralrm.factor_fit(user_id, chosen, rejected, 2) AS f
  FROM prm_part;

SET LOCAL enable_partitionwise_aggregate = on;
-- grouping by the partition key: a whole aggregate per partition
SELECT matches(pg_temp.plan_nodes($$SELECT region, pluralrm.btl_fit(chosen, rejected, w)
                                      FROM prm_part GROUP BY region$$),
               '^Append; (\w*Aggregate; Seq Scan on prm_part_\d[^;]*; ){3}$',
               'GROUP BY the partition key: one aggregate under Append per partition');
SELECT is((SELECT count(*) FROM (
              SELECT region, pluralrm.btl_fit(chosen, rejected, w) AS m
                FROM prm_part GROUP BY region) p
              JOIN by_region r USING (region)
             WHERE pg_temp.maxdiff((p.m).weights, (r.m).weights) = 0), 3::bigint,
          'partitionwise btl_fit per region equals the plain plan''s');
SELECT is((SELECT count(*) FROM (
              SELECT region, pluralrm.mixture_fit(user_id, chosen, rejected, 2) AS mx
                FROM prm_part GROUP BY region) p
              JOIN by_region r USING (region)
             WHERE pg_temp.maxdiff((p.mx).base_rewards, (r.mx).base_rewards) = 0), 3::bigint,
          'partitionwise mixture_fit per region equals the plain plan''s');

-- one fit over all partitions: partial aggregates combined above Append
SELECT matches(pg_temp.plan_nodes($$SELECT pluralrm.btl_fit(chosen, rejected, w) FROM prm_part$$),
               '^Finalize Aggregate; Append; (Partial Aggregate; Seq Scan on prm_part_\d[^;]*; ){3}$',
               'one fit over the table: a partial aggregate per partition, combined');
SELECT ok((SELECT pg_temp.maxdiff((pluralrm.btl_fit(chosen, rejected, w)).weights, (SELECT (m).weights FROM whole))
             FROM prm_part) < 1e-12,
          'partial btl_fit per partition equals the plain plan''s (1e-12)');
SELECT ok((SELECT pg_temp.maxdiff((pluralrm.mixture_fit(user_id, chosen, rejected, 2)).base_rewards,
                                  (SELECT (mx).base_rewards FROM whole))
             FROM prm_part) < 1e-9,
          'partial mixture_fit per partition equals the plain plan''s (1e-9)');
SELECT ok((SELECT pg_temp.maxdiff((pluralrm.factor_fit(user_id, chosen, rejected, 2)).base_rewards,
                                  (SELECT (f).base_rewards FROM whole))
             FROM prm_part) < 1e-9,
          'partial factor_fit per partition equals the plain plan''s (1e-9)');

-- and with parallel workers on top
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
SELECT matches(pg_temp.plan_nodes($$SELECT pluralrm.btl_fit(chosen, rejected, w) FROM prm_part$$),
               'Partial Aggregate; Parallel',
               'parallel workers run the partial fits of the partitions');
SELECT ok((SELECT pg_temp.maxdiff((pluralrm.btl_fit(chosen, rejected, w)).weights, (SELECT (m).weights FROM whole))
             FROM prm_part) < 1e-12,
          'partitionwise and parallel btl_fit equals the plain plan''s (1e-12)');
SELECT ok((SELECT pg_temp.maxdiff((pluralrm.mixture_fit(user_id, chosen, rejected, 2)).base_rewards,
                                  (SELECT (mx).base_rewards FROM whole))
             FROM prm_part) < 1e-9,
          'partitionwise and parallel mixture_fit equals the plain plan''s (1e-9)');

SELECT * FROM finish();
ROLLBACK;
