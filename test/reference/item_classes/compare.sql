-- Compare btl_item_classes with flexmix's estimates (reference.R) on the
-- same comparisons. Run in the folder holding comparisons.csv and
-- flexmix.csv; prints one line "t|what" or "f|what" per check.
\set QUIET on
\pset format unaligned
\pset tuples_only on
SET client_min_messages = warning;
CREATE EXTENSION pluralrm;
CREATE TABLE cmp (rater int, item_a int, item_b int, outcome float8);
\copy cmp FROM 'comparisons.csv' WITH (FORMAT csv, HEADER true)
CREATE TABLE ref (what text, class int, item int, value float8);
\copy ref FROM 'flexmix.csv' WITH (FORMAT csv, HEADER true)

-- maximum likelihood, strengths relative to item 1, as flexmix fits them
CREATE TABLE fit AS
SELECT pluralrm.btl_item_classes(item_a, item_b, outcome, 1, rater, 2,
         pluralrm.items_options(prior => 0, reference => '1'), 20) AS m
  FROM cmp;

SELECT ((f.m).converged AND (f.m).restarts_at_best >= 1)::text || '|'
       || format('converged after %s iterations, %s of %s restarts at the best',
                 (f.m).iterations, (f.m).restarts_at_best, (f.m).restarts)
  FROM fit f;
SELECT (abs((f.m).loglik - r.value) <= 1e-6 * abs(r.value))::text || '|'
       || format('log-likelihood %s against flexmix %s (relative difference %s)',
                 round((f.m).loglik::numeric, 8), round(r.value::numeric, 8),
                 to_char(abs((f.m).loglik - r.value) / abs(r.value), '9.9EEEE'))
  FROM fit f, ref r WHERE r.what = 'loglik';
SELECT (max(abs((f.m).mixing[r.class] - r.value)) <= 1e-4)::text || '|'
       || format('mixing weights agree (largest difference %s)',
                 to_char(max(abs((f.m).mixing[r.class] - r.value)), '9.9EEEE'))
  FROM fit f, ref r WHERE r.what = 'mixing';
SELECT (max(abs((f.m).strengths[r.class][r.item] - r.value)
            / greatest(1, abs(r.value))) <= 1e-4)::text || '|'
       || format('strengths agree (largest relative difference %s)',
                 to_char(max(abs((f.m).strengths[r.class][r.item] - r.value)
                             / greatest(1, abs(r.value))), '9.9EEEE'))
  FROM fit f, ref r WHERE r.what = 'strength';
SELECT (max(abs(x.responsibility - r.value)) <= 1e-4)::text || '|'
       || format('responsibilities of %s raters agree (largest difference %s)',
                 count(DISTINCT r.item),
                 to_char(max(abs(x.responsibility - r.value)), '9.9EEEE'))
  FROM fit f, pluralrm.item_class_raters(f.m) x, ref r
 WHERE r.what = 'responsibility' AND x.rater = r.item::text
   AND x.class = r.class;
