-- synthetic_comparisons: comparisons with known structure
SET extra_float_digits = 0;

-- Two users, two pairs each, every pair asked twice in both orders
SELECT comparison_id, user_id, group_id, pair_id, ask, condition,
       (SELECT array_agg(round(x::numeric, 4)) FROM unnest(chosen) x) AS chosen,
       (SELECT array_agg(round(x::numeric, 4)) FROM unnest(rejected) x) AS rejected,
       kind
  FROM pluralrm.synthetic_comparisons(users => 2, comparisons_per_user => 2,
       d => 3, reasks => 2, seed => 42);

-- Response a of a pair is the one whose embedding sorts first, so
-- (chosen < rejected) = (condition = 0) says the first shown was chosen
SELECT kind, count(DISTINCT user_id) AS users, count(*) AS asks,
       round(avg(((chosen < rejected) = (condition = 0))::int), 2) AS first_shown_rate
  FROM pluralrm.synthetic_comparisons(users => 200, d => 4, reasks => 4,
       non_attitude_share => 0.3, constructed_share => 0.2, seed => 7)
 GROUP BY kind ORDER BY kind;

-- Groups get exactly their share of users (cumulative rounding)
SELECT group_id, count(DISTINCT user_id) AS users
  FROM pluralrm.synthetic_comparisons(users => 1000, comparisons_per_user => 1,
       d => 2, group_shares => '{0.51,0.49}')
 GROUP BY group_id ORDER BY group_id;

-- Groups that share dimension 1 and oppose on dimension 2: a fit per group
-- finds each group's vector, the pooled fit keeps only the shared part
SELECT coalesce(group_id::text, 'pooled') AS fit, (m).n,
       (SELECT array_agg(round(x::numeric, 1)) FROM unnest((m).weights) x) AS weights
  FROM (SELECT group_id, pluralrm.btl_fit(chosen, rejected) AS m
          FROM pluralrm.synthetic_comparisons(users => 1000, d => 2,
               group_shares => '{0.5,0.5}', group_weights => '{{1,2},{1,-2}}',
               seed => 1)
         GROUP BY ROLLUP (group_id)) s
 ORDER BY group_id NULLS LAST;

-- users x comparisons_per_user x reasks rows
SELECT count(*) FROM pluralrm.synthetic_comparisons(users => 10, reasks => 3);

-- Bad input
SELECT * FROM pluralrm.synthetic_comparisons(users => 0);
SELECT * FROM pluralrm.synthetic_comparisons(d => 20000);
SELECT * FROM pluralrm.synthetic_comparisons(group_shares => '{0.6,0.6}');
SELECT * FROM pluralrm.synthetic_comparisons(d => 2, group_shares => '{0.5,0.5}',
                                             group_weights => '{1,2}');
SELECT * FROM pluralrm.synthetic_comparisons(scale => 'Infinity');
SELECT * FROM pluralrm.synthetic_comparisons(seed => NULL);
