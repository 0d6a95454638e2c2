-- Planner support of reward_score (new in 0.2.0, so the upgrade runs this
-- part too): real[] responses are read as they are, without the implicit
-- cast to float8[] that copies every row's array.

CREATE FUNCTION pluralrm.reward_score_support(internal)
RETURNS internal AS 'MODULE_PATHNAME', 'reward_score_support'
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION pluralrm.reward_score_support(internal) IS
'Planner support of reward_score: passes a real[] response without its cast to float8[]';

ALTER FUNCTION pluralrm.reward_score(bigint, float8[]) SUPPORT pluralrm.reward_score_support;
ALTER FUNCTION pluralrm.reward_score(text, float8[]) SUPPORT pluralrm.reward_score_support;
ALTER FUNCTION pluralrm.reward_score(uuid, float8[]) SUPPORT pluralrm.reward_score_support;
ALTER FUNCTION pluralrm.reward_score(text, bigint, float8[]) SUPPORT pluralrm.reward_score_support;
ALTER FUNCTION pluralrm.reward_score(text, text, float8[]) SUPPORT pluralrm.reward_score_support;
ALTER FUNCTION pluralrm.reward_score(text, uuid, float8[]) SUPPORT pluralrm.reward_score_support;
ALTER FUNCTION pluralrm.reward_score(text, bigint, float8[], float8) SUPPORT pluralrm.reward_score_support;
ALTER FUNCTION pluralrm.reward_score(text, text, float8[], float8) SUPPORT pluralrm.reward_score_support;
ALTER FUNCTION pluralrm.reward_score(text, uuid, float8[], float8) SUPPORT pluralrm.reward_score_support;
