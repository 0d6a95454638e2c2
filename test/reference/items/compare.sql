-- btl_items against R's answers (run from the folder of reference.R's
-- output). Prints one line per check: "t|description" or "f|description".
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pluralrm;

CREATE TABLE baseball (home text, away text, home_wins int, away_wins int);
CREATE TABLE citations (cited text, citing text, count int);
CREATE TABLE football (season text, home text, away text, result int);
CREATE TABLE ref_items (dataset text, grp text, item text, strength float8,
                        se float8);
CREATE TABLE ref_fits (dataset text, grp text, loglik float8, nu float8,
                       nu_se float8);
\copy baseball FROM 'baseball.csv' CSV HEADER
\copy citations FROM 'citations.csv' CSV HEADER
\copy football FROM 'football.csv' CSV HEADER
\copy ref_items FROM 'ref_items.csv' CSV HEADER
\copy ref_fits FROM 'ref_fits.csv' CSV HEADER

-- Maximum likelihood (prior 0) with R's reference items; the football
-- seasons are centred, one fit per GROUP BY group.
CREATE TABLE fits AS
SELECT 'baseball'::text AS dataset, ''::text AS grp,
       pluralrm.btl_items(home, away, outcome, w,
                          pluralrm.items_options(prior => 0,
                                                 reference => 'Baltimore')) AS m
  FROM (SELECT home, away, 1 AS outcome, home_wins AS w FROM baseball
        UNION ALL
        SELECT home, away, 0, away_wins FROM baseball) s;
INSERT INTO fits
SELECT 'citations', '',
       pluralrm.btl_items(cited, citing, 1, count,
                          pluralrm.items_options(prior => 0,
                                                 reference => 'Biometrika'))
  FROM citations;
INSERT INTO fits
SELECT 'football', '',
       pluralrm.btl_items(home, away, (result + 1) / 2.0, 1,
                          pluralrm.items_options(prior => 0,
                                                 reference => 'Ars'))
  FROM football;
INSERT INTO fits
SELECT 'football_season', season,
       pluralrm.btl_items(home, away, (result + 1) / 2.0, 1,
                          pluralrm.items_options(prior => 0))
  FROM football GROUP BY season;

-- The pooled football fit again under a forced parallel plan, with the
-- workers doing all the scanning (partial states are serialized)
CREATE FUNCTION pg_temp.explain(query text) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    line text;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || query LOOP
        RETURN NEXT line;
    END LOOP;
END
$$;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
CREATE TEMP TABLE plan (line text);
INSERT INTO plan
SELECT * FROM pg_temp.explain($$
    SELECT pluralrm.btl_items(home, away, (result + 1) / 2.0, 1,
           pluralrm.items_options(prior => 0, reference => 'Ars'))
      FROM football$$);
INSERT INTO fits
SELECT 'football_parallel', '',
       pluralrm.btl_items(home, away, (result + 1) / 2.0, 1,
                          pluralrm.items_options(prior => 0,
                                                 reference => 'Ars'))
  FROM football;
RESET ALL;
UPDATE fits SET dataset = 'football' WHERE dataset = 'football_parallel';

\pset format unaligned
\pset tuples_only on
WITH est AS (
    SELECT f.dataset, f.grp, s.item, s.strength, s.se
      FROM fits f, pluralrm.item_strengths(f.m) s
), joined AS (
    SELECT coalesce(e.dataset, r.dataset) AS dataset,
           e.strength AS s1, r.strength AS s2, e.se AS e1, r.se AS e2
      FROM est e FULL JOIN ref_items r USING (dataset, grp, item)
), per AS (
    SELECT dataset, count(*) AS n,
           count(*) FILTER (WHERE s1 IS NULL OR s2 IS NULL) AS unmatched,
           max(abs(s1 - s2)) AS ds, max(abs(e1 - e2)) AS dse
      FROM joined GROUP BY dataset
), fit AS (
    SELECT f.dataset, count(*) AS n,
           bool_and((f.m).converged) AS converged,
           max(abs((f.m).loglik - r.loglik)) AS dll,
           max(abs((f.m).nu - r.nu)) AS dnu,
           max(abs((f.m).nu_se - r.nu_se)) AS dnuse
      FROM fits f JOIN ref_fits r USING (dataset, grp)
     GROUP BY f.dataset
)
SELECT ok, description FROM (
    SELECT 1 AS o, dataset, unmatched = 0 AS ok,
           format('%s: all %s items match R''s by name', dataset, n)
               AS description FROM per
    UNION ALL
    SELECT 2, dataset, ds < 1e-5,
           format('%s: strengths match R to 1e-5 (max diff %s)', dataset,
                  to_char(ds, '9.9EEEE')) FROM per
    UNION ALL
    SELECT 3, dataset, dse < 1e-5,
           format('%s: standard errors match R to 1e-5 (max diff %s)',
                  dataset, to_char(dse, '9.9EEEE')) FROM per
    UNION ALL
    SELECT 4, dataset, converged AND dll < 1e-5,
           format('%s: %s converged fit(s), log-likelihood matches R to '
                  '1e-5 (max diff %s)', dataset, n, to_char(dll, '9.9EEEE'))
      FROM fit
    UNION ALL
    SELECT 5, dataset, dnu < 1e-5 AND dnuse < 1e-5,
           format('%s: Davidson nu and its standard error match R to 1e-5 '
                  '(max diffs %s, %s)', dataset, to_char(dnu, '9.9EEEE'),
                  to_char(dnuse, '9.9EEEE'))
      FROM fit WHERE dataset LIKE 'football%'
    UNION ALL
    SELECT 6, 'football', count(*) FILTER (WHERE line ~ 'Partial Aggregate') = 1
                          AND count(*) FILTER (WHERE line ~ 'Gather') = 1,
           'football: the repeated pooled fit ran as a parallel plan'
      FROM plan
) checks
ORDER BY dataset, o;
