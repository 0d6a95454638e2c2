-- One data set of comparisons with planted groups, for the mixture
-- benchmark (test/bench/mixture.sh). Included by setup.sql with the psql
-- variables
--   tab    table name; also makes tab_truth (grp, w) and tab_users
--          (user_id, grp)
--   users  number of users
--   each   comparisons per user
--   dim    dimension d of the embeddings
--   k      number of planted groups
--   cuts   float8[] of the k - 1 cumulative group shares, e.g. '{0.6}'
--   seed   setseed() value, so every run makes the same data
--
-- Group g has a true base reward w_g with independent N(0, 3 / (2 d))
-- coordinates, so the margin w_g . (a - b) of a comparison has a standard
-- deviation of sqrt(3) = 1.7 in expectation (1.5 to 1.65 in the data sets
-- of setup.sql) and the true model orders 76% to 79% of the comparisons
-- right. Each user falls in group g with probability
-- cuts[g] - cuts[g - 1]. A comparison has two responses a and b with
-- coordinates uniform on [-sqrt 3, sqrt 3] (mean 0, variance 1) and one
-- uniform draw u: a is chosen when u < sigmoid(w_g . (a - b)). Rows are
-- stored in round order (the first comparison of every user, then the
-- second, ...), so a user's rows are spread over the table as in a log.
-- Plans must be serial for the random() sequence to be reproducible.

\set truth :tab _truth
\set tusers :tab _users
SELECT setseed(:seed) \gset setseed_

CREATE TABLE :"truth" AS
SELECT g AS grp,
       array_agg(sqrt(1.5 / :dim) * sqrt(-2 * ln(1 - r1)) * cos(2 * pi() * r2)
                 ORDER BY j) AS w
  FROM (SELECT g, j, random() AS r1, random() AS r2
          FROM generate_series(1, :k) AS g, generate_series(1, :dim) AS j
         ORDER BY g, j) AS s
 GROUP BY g;

CREATE TABLE :"tusers" AS
SELECT u AS user_id,
       1 + (SELECT count(*)::int FROM unnest(:'cuts'::float8[]) AS c
             WHERE c <= s.r) AS grp
  FROM (SELECT u, random() AS r FROM generate_series(1, :users) AS u
         ORDER BY u) AS s;

-- the lateral subquery refers to c.id so that it runs once per row
CREATE TABLE :"tab" AS
SELECT c.id, c.user_id, c.grp,
       CASE WHEN r.u < 1 / (1 + exp(-r.margin)) THEN r.a ELSE r.b END
           AS chosen,
       CASE WHEN r.u < 1 / (1 + exp(-r.margin)) THEN r.b ELSE r.a END
           AS rejected
  FROM (SELECT row_number() OVER (ORDER BY i, u.user_id) AS id, u.user_id,
               u.grp, t.w
          FROM :"tusers" AS u
          JOIN :"truth" AS t ON t.grp = u.grp,
               generate_series(1, :each) AS i) AS c,
       LATERAL (SELECT array_agg(x.xa ORDER BY x.j) AS a,
                       array_agg(x.xb ORDER BY x.j) AS b,
                       sum(c.w[x.j] * (x.xa - x.xb)) AS margin,
                       random() AS u
                  FROM (SELECT j, (random() * 2 - 1) * sqrt(3) AS xa,
                               (random() * 2 - 1) * sqrt(3) AS xb
                          FROM generate_series(1, :dim) AS j
                         WHERE c.id > 0) AS x) AS r
 ORDER BY c.id;

ALTER TABLE :"tab" ADD PRIMARY KEY (id);
VACUUM ANALYZE :"truth";
VACUUM ANALYZE :"tusers";
VACUUM ANALYZE :"tab";
