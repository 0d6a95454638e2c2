
-- Guards against personalization turning into flattery

CREATE FUNCTION pluralrm.reward_score(model text, user_id bigint, response float8[], alpha float8)
RETURNS float8 AS 'MODULE_PATHNAME', 'reward_score_named'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION pluralrm.reward_score(text, bigint, float8[], float8) IS
'Reward of a response for a user, blended with the population reward: (1 - alpha) user + alpha population';
CREATE FUNCTION pluralrm.reward_score(model text, user_id text, response float8[], alpha float8)
RETURNS float8 AS 'MODULE_PATHNAME', 'reward_score_named'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION pluralrm.reward_score(text, text, float8[], float8) IS
'Reward of a response for a user, blended with the population reward: (1 - alpha) user + alpha population';
CREATE FUNCTION pluralrm.reward_score(model text, user_id uuid, response float8[], alpha float8)
RETURNS float8 AS 'MODULE_PATHNAME', 'reward_score_named'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION pluralrm.reward_score(text, uuid, float8[], float8) IS
'Reward of a response for a user, blended with the population reward: (1 - alpha) user + alpha population';

CREATE FUNCTION pluralrm.divergence(model text, probes_a float8[], probes_b float8[],
                                    alpha float8 DEFAULT 0)
RETURNS TABLE (user_id text, disagreement float8, probes integer)
AS 'MODULE_PATHNAME', 'divergence'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION pluralrm.divergence(text, float8[], float8[], float8) IS
'For every user with coefficients: the share of probe pairs (row i of probes_a against row i of probes_b) their reward, blended by alpha, orders differently from the population reward';

CREATE FUNCTION pluralrm.divergence_summary(model text, probes_a float8[],
                                            probes_b float8[], alpha float8 DEFAULT 0)
RETURNS TABLE (users bigint, mean float8, median float8, p90 float8,
               max float8, share_over_half float8)
LANGUAGE sql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT count(*), avg(d.disagreement),
           percentile_cont(0.5) WITHIN GROUP (ORDER BY d.disagreement),
           percentile_cont(0.9) WITHIN GROUP (ORDER BY d.disagreement),
           max(d.disagreement),
           avg(CASE WHEN d.disagreement > 0.5 THEN 1.0 ELSE 0.0 END)
      FROM pluralrm.divergence(model, probes_a, probes_b, alpha) d
$$;
COMMENT ON FUNCTION pluralrm.divergence_summary(text, float8[], float8[], float8) IS
'Distribution over users of how often their reward disagrees with the population''s on the probes: an early sign of echo chambers';
