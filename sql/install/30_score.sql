-- Scoring responses and evaluating stored models

CREATE FUNCTION pluralrm.reward_score(user_id bigint, response float8[])
RETURNS float8 AS 'MODULE_PATHNAME', 'reward_score'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION pluralrm.reward_score(bigint, float8[]) IS
'Reward of a response for a user under the model named by pluralrm.model';
CREATE FUNCTION pluralrm.reward_score(model text, user_id bigint, response float8[])
RETURNS float8 AS 'MODULE_PATHNAME', 'reward_score_named'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION pluralrm.reward_score(text, bigint, float8[]) IS
'Reward of a response for a user under a named model';

CREATE FUNCTION pluralrm.reward_score(user_id text, response float8[])
RETURNS float8 AS 'MODULE_PATHNAME', 'reward_score'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION pluralrm.reward_score(text, float8[]) IS
'Reward of a response for a user under the model named by pluralrm.model';
CREATE FUNCTION pluralrm.reward_score(model text, user_id text, response float8[])
RETURNS float8 AS 'MODULE_PATHNAME', 'reward_score_named'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION pluralrm.reward_score(text, text, float8[]) IS
'Reward of a response for a user under a named model';

CREATE FUNCTION pluralrm.reward_score(user_id uuid, response float8[])
RETURNS float8 AS 'MODULE_PATHNAME', 'reward_score'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION pluralrm.reward_score(uuid, float8[]) IS
'Reward of a response for a user under the model named by pluralrm.model';
CREATE FUNCTION pluralrm.reward_score(model text, user_id uuid, response float8[])
RETURNS float8 AS 'MODULE_PATHNAME', 'reward_score_named'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION pluralrm.reward_score(text, uuid, float8[]) IS
'Reward of a response for a user under a named model';

