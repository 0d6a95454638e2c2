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


CREATE TYPE pluralrm.evaluation AS (
    n bigint,
    accuracy float8,
    log_loss float8
);
COMMENT ON TYPE pluralrm.evaluation IS
'Held-out quality of a model: comparisons counted, share where the chosen response scored higher (ties count half), mean log-loss';

CREATE FUNCTION pluralrm.evaluate_combinefn(float8[], float8[])
RETURNS float8[] AS 'MODULE_PATHNAME', 'evaluate_combinefn'
LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION pluralrm.evaluate_finalfn(float8[])
RETURNS pluralrm.evaluation AS 'MODULE_PATHNAME', 'evaluate_finalfn'
LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION pluralrm.evaluate_transfn(float8[], text, float8[], float8[])
RETURNS float8[] AS 'MODULE_PATHNAME', 'evaluate_transfn'
LANGUAGE C STABLE PARALLEL SAFE;
CREATE AGGREGATE pluralrm.evaluate(model text, chosen float8[],
                                   rejected float8[]) (
    SFUNC = pluralrm.evaluate_transfn, STYPE = float8[],
    INITCOND = '{0,0,0,0}',
    COMBINEFUNC = pluralrm.evaluate_combinefn,
    FINALFUNC = pluralrm.evaluate_finalfn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.evaluate(text, float8[], float8[]) IS
'Accuracy and mean log-loss of a stored model on comparisons, serving the population reward';

CREATE FUNCTION pluralrm.evaluate_transfn(float8[], text, bigint, float8[], float8[])
RETURNS float8[] AS 'MODULE_PATHNAME', 'evaluate_transfn'
LANGUAGE C STABLE PARALLEL SAFE;
CREATE AGGREGATE pluralrm.evaluate(model text, user_id bigint, chosen float8[],
                                   rejected float8[]) (
    SFUNC = pluralrm.evaluate_transfn, STYPE = float8[],
    INITCOND = '{0,0,0,0}',
    COMBINEFUNC = pluralrm.evaluate_combinefn,
    FINALFUNC = pluralrm.evaluate_finalfn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.evaluate(text, bigint, float8[], float8[]) IS
'Accuracy and mean log-loss of a stored model on comparisons, each scored with the reward of its user';

CREATE FUNCTION pluralrm.evaluate_transfn(float8[], text, text, float8[], float8[])
RETURNS float8[] AS 'MODULE_PATHNAME', 'evaluate_transfn'
LANGUAGE C STABLE PARALLEL SAFE;
CREATE AGGREGATE pluralrm.evaluate(model text, user_id text, chosen float8[],
                                   rejected float8[]) (
    SFUNC = pluralrm.evaluate_transfn, STYPE = float8[],
    INITCOND = '{0,0,0,0}',
    COMBINEFUNC = pluralrm.evaluate_combinefn,
    FINALFUNC = pluralrm.evaluate_finalfn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.evaluate(text, text, float8[], float8[]) IS
'Accuracy and mean log-loss of a stored model on comparisons, each scored with the reward of its user';

CREATE FUNCTION pluralrm.evaluate_transfn(float8[], text, uuid, float8[], float8[])
RETURNS float8[] AS 'MODULE_PATHNAME', 'evaluate_transfn'
LANGUAGE C STABLE PARALLEL SAFE;
CREATE AGGREGATE pluralrm.evaluate(model text, user_id uuid, chosen float8[],
                                   rejected float8[]) (
    SFUNC = pluralrm.evaluate_transfn, STYPE = float8[],
    INITCOND = '{0,0,0,0}',
    COMBINEFUNC = pluralrm.evaluate_combinefn,
    FINALFUNC = pluralrm.evaluate_finalfn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.evaluate(text, uuid, float8[], float8[]) IS
'Accuracy and mean log-loss of a stored model on comparisons, each scored with the reward of its user';
