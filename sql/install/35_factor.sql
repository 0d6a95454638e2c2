-- Factorized rewards: K shared base rewards, K coefficients per user

CREATE TYPE pluralrm.factor_model AS (
    n bigint,
    users bigint,
    d integer,
    k integer,
    l2 float8,
    prior_strength float8,
    locked integer[],
    loglik float8,
    objective float8,
    iterations integer,
    converged boolean,
    solve_ms float8,
    skipped bigint,
    base_rewards float8[],
    prior_mean float8[],
    prior_covariance float8[],
    user_ids text[],
    coefficients float8[],
    covariances float8[],
    comparisons bigint[]
);
COMMENT ON TYPE pluralrm.factor_model IS
'A fitted factorized reward model: k x d base rewards B, the population prior N(prior_mean, prior_covariance) of the coefficients, and per user (in user_ids order) the posterior mean (coefficients, users x k), Laplace covariance (covariances, users x k x k) and number of comparisons';

CREATE FUNCTION pluralrm.factor_fit_finalfn(internal)
RETURNS pluralrm.factor_model AS 'MODULE_PATHNAME', 'factor_fit_finalfn'
LANGUAGE C PARALLEL SAFE;

CREATE FUNCTION pluralrm.factor_fit_transfn(internal, bigint, float8[], float8[], integer)
RETURNS internal AS 'MODULE_PATHNAME', 'factor_fit_transfn'
LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE pluralrm.factor_fit(user_id bigint, chosen float8[], rejected float8[],
                                     k integer) (
    SFUNC = pluralrm.factor_fit_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_fit_combinefn,
    SERIALFUNC = pluralrm.btl_fit_serializefn,
    DESERIALFUNC = pluralrm.btl_fit_deserializefn,
    FINALFUNC = pluralrm.factor_fit_finalfn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.factor_fit(bigint, float8[], float8[], integer) IS
'Fit a factorized reward model: k base rewards shared by everyone and k coefficients per user under an empirical-Bayes Gaussian prior';
CREATE FUNCTION pluralrm.factor_fit_transfn(internal, bigint, float8[], float8[], integer, float8)
RETURNS internal AS 'MODULE_PATHNAME', 'factor_fit_transfn'
LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE pluralrm.factor_fit(user_id bigint, chosen float8[], rejected float8[],
                                     k integer, weight float8) (
    SFUNC = pluralrm.factor_fit_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_fit_combinefn,
    SERIALFUNC = pluralrm.btl_fit_serializefn,
    DESERIALFUNC = pluralrm.btl_fit_deserializefn,
    FINALFUNC = pluralrm.factor_fit_finalfn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.factor_fit(bigint, float8[], float8[], integer, float8) IS
'Fit a factorized reward model: k base rewards shared by everyone and k coefficients per user under an empirical-Bayes Gaussian prior';
CREATE FUNCTION pluralrm.factor_fit_transfn(internal, bigint, float8[], float8[], integer, float8, float8)
RETURNS internal AS 'MODULE_PATHNAME', 'factor_fit_transfn'
LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE pluralrm.factor_fit(user_id bigint, chosen float8[], rejected float8[],
                                     k integer, weight float8, l2 float8) (
    SFUNC = pluralrm.factor_fit_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_fit_combinefn,
    SERIALFUNC = pluralrm.btl_fit_serializefn,
    DESERIALFUNC = pluralrm.btl_fit_deserializefn,
    FINALFUNC = pluralrm.factor_fit_finalfn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.factor_fit(bigint, float8[], float8[], integer, float8, float8) IS
'Fit a factorized reward model: k base rewards shared by everyone and k coefficients per user under an empirical-Bayes Gaussian prior';
CREATE FUNCTION pluralrm.factor_fit_transfn(internal, bigint, float8[], float8[], integer, float8, float8, float8)
RETURNS internal AS 'MODULE_PATHNAME', 'factor_fit_transfn'
LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE pluralrm.factor_fit(user_id bigint, chosen float8[], rejected float8[],
                                     k integer, weight float8, l2 float8, prior_strength float8) (
    SFUNC = pluralrm.factor_fit_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_fit_combinefn,
    SERIALFUNC = pluralrm.btl_fit_serializefn,
    DESERIALFUNC = pluralrm.btl_fit_deserializefn,
    FINALFUNC = pluralrm.factor_fit_finalfn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.factor_fit(bigint, float8[], float8[], integer, float8, float8, float8) IS
'Fit a factorized reward model: k base rewards shared by everyone and k coefficients per user under an empirical-Bayes Gaussian prior';
CREATE FUNCTION pluralrm.factor_fit_transfn(internal, bigint, float8[], float8[], integer, float8, float8, float8, integer[])
RETURNS internal AS 'MODULE_PATHNAME', 'factor_fit_transfn'
LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE pluralrm.factor_fit(user_id bigint, chosen float8[], rejected float8[],
                                     k integer, weight float8, l2 float8, prior_strength float8, locked integer[]) (
    SFUNC = pluralrm.factor_fit_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_fit_combinefn,
    SERIALFUNC = pluralrm.btl_fit_serializefn,
    DESERIALFUNC = pluralrm.btl_fit_deserializefn,
    FINALFUNC = pluralrm.factor_fit_finalfn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.factor_fit(bigint, float8[], float8[], integer, float8, float8, float8, integer[]) IS
'Fit a factorized reward model: k base rewards shared by everyone and k coefficients per user under an empirical-Bayes Gaussian prior';
CREATE FUNCTION pluralrm.factor_fit_transfn(internal, text, float8[], float8[], integer)
RETURNS internal AS 'MODULE_PATHNAME', 'factor_fit_transfn'
LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE pluralrm.factor_fit(user_id text, chosen float8[], rejected float8[],
                                     k integer) (
    SFUNC = pluralrm.factor_fit_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_fit_combinefn,
    SERIALFUNC = pluralrm.btl_fit_serializefn,
    DESERIALFUNC = pluralrm.btl_fit_deserializefn,
    FINALFUNC = pluralrm.factor_fit_finalfn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.factor_fit(text, float8[], float8[], integer) IS
'Fit a factorized reward model: k base rewards shared by everyone and k coefficients per user under an empirical-Bayes Gaussian prior';
CREATE FUNCTION pluralrm.factor_fit_transfn(internal, text, float8[], float8[], integer, float8)
RETURNS internal AS 'MODULE_PATHNAME', 'factor_fit_transfn'
LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE pluralrm.factor_fit(user_id text, chosen float8[], rejected float8[],
                                     k integer, weight float8) (
    SFUNC = pluralrm.factor_fit_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_fit_combinefn,
    SERIALFUNC = pluralrm.btl_fit_serializefn,
    DESERIALFUNC = pluralrm.btl_fit_deserializefn,
    FINALFUNC = pluralrm.factor_fit_finalfn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.factor_fit(text, float8[], float8[], integer, float8) IS
'Fit a factorized reward model: k base rewards shared by everyone and k coefficients per user under an empirical-Bayes Gaussian prior';
CREATE FUNCTION pluralrm.factor_fit_transfn(internal, text, float8[], float8[], integer, float8, float8)
RETURNS internal AS 'MODULE_PATHNAME', 'factor_fit_transfn'
LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE pluralrm.factor_fit(user_id text, chosen float8[], rejected float8[],
                                     k integer, weight float8, l2 float8) (
    SFUNC = pluralrm.factor_fit_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_fit_combinefn,
    SERIALFUNC = pluralrm.btl_fit_serializefn,
    DESERIALFUNC = pluralrm.btl_fit_deserializefn,
    FINALFUNC = pluralrm.factor_fit_finalfn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.factor_fit(text, float8[], float8[], integer, float8, float8) IS
'Fit a factorized reward model: k base rewards shared by everyone and k coefficients per user under an empirical-Bayes Gaussian prior';
CREATE FUNCTION pluralrm.factor_fit_transfn(internal, text, float8[], float8[], integer, float8, float8, float8)
RETURNS internal AS 'MODULE_PATHNAME', 'factor_fit_transfn'
LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE pluralrm.factor_fit(user_id text, chosen float8[], rejected float8[],
                                     k integer, weight float8, l2 float8, prior_strength float8) (
    SFUNC = pluralrm.factor_fit_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_fit_combinefn,
    SERIALFUNC = pluralrm.btl_fit_serializefn,
    DESERIALFUNC = pluralrm.btl_fit_deserializefn,
    FINALFUNC = pluralrm.factor_fit_finalfn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.factor_fit(text, float8[], float8[], integer, float8, float8, float8) IS
'Fit a factorized reward model: k base rewards shared by everyone and k coefficients per user under an empirical-Bayes Gaussian prior';
CREATE FUNCTION pluralrm.factor_fit_transfn(internal, text, float8[], float8[], integer, float8, float8, float8, integer[])
RETURNS internal AS 'MODULE_PATHNAME', 'factor_fit_transfn'
LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE pluralrm.factor_fit(user_id text, chosen float8[], rejected float8[],
                                     k integer, weight float8, l2 float8, prior_strength float8, locked integer[]) (
    SFUNC = pluralrm.factor_fit_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_fit_combinefn,
    SERIALFUNC = pluralrm.btl_fit_serializefn,
    DESERIALFUNC = pluralrm.btl_fit_deserializefn,
    FINALFUNC = pluralrm.factor_fit_finalfn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.factor_fit(text, float8[], float8[], integer, float8, float8, float8, integer[]) IS
'Fit a factorized reward model: k base rewards shared by everyone and k coefficients per user under an empirical-Bayes Gaussian prior';
CREATE FUNCTION pluralrm.factor_fit_transfn(internal, uuid, float8[], float8[], integer)
RETURNS internal AS 'MODULE_PATHNAME', 'factor_fit_transfn'
LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE pluralrm.factor_fit(user_id uuid, chosen float8[], rejected float8[],
                                     k integer) (
    SFUNC = pluralrm.factor_fit_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_fit_combinefn,
    SERIALFUNC = pluralrm.btl_fit_serializefn,
    DESERIALFUNC = pluralrm.btl_fit_deserializefn,
    FINALFUNC = pluralrm.factor_fit_finalfn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.factor_fit(uuid, float8[], float8[], integer) IS
'Fit a factorized reward model: k base rewards shared by everyone and k coefficients per user under an empirical-Bayes Gaussian prior';
CREATE FUNCTION pluralrm.factor_fit_transfn(internal, uuid, float8[], float8[], integer, float8)
RETURNS internal AS 'MODULE_PATHNAME', 'factor_fit_transfn'
LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE pluralrm.factor_fit(user_id uuid, chosen float8[], rejected float8[],
                                     k integer, weight float8) (
    SFUNC = pluralrm.factor_fit_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_fit_combinefn,
    SERIALFUNC = pluralrm.btl_fit_serializefn,
    DESERIALFUNC = pluralrm.btl_fit_deserializefn,
    FINALFUNC = pluralrm.factor_fit_finalfn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.factor_fit(uuid, float8[], float8[], integer, float8) IS
'Fit a factorized reward model: k base rewards shared by everyone and k coefficients per user under an empirical-Bayes Gaussian prior';
CREATE FUNCTION pluralrm.factor_fit_transfn(internal, uuid, float8[], float8[], integer, float8, float8)
RETURNS internal AS 'MODULE_PATHNAME', 'factor_fit_transfn'
LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE pluralrm.factor_fit(user_id uuid, chosen float8[], rejected float8[],
                                     k integer, weight float8, l2 float8) (
    SFUNC = pluralrm.factor_fit_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_fit_combinefn,
    SERIALFUNC = pluralrm.btl_fit_serializefn,
    DESERIALFUNC = pluralrm.btl_fit_deserializefn,
    FINALFUNC = pluralrm.factor_fit_finalfn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.factor_fit(uuid, float8[], float8[], integer, float8, float8) IS
'Fit a factorized reward model: k base rewards shared by everyone and k coefficients per user under an empirical-Bayes Gaussian prior';
CREATE FUNCTION pluralrm.factor_fit_transfn(internal, uuid, float8[], float8[], integer, float8, float8, float8)
RETURNS internal AS 'MODULE_PATHNAME', 'factor_fit_transfn'
LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE pluralrm.factor_fit(user_id uuid, chosen float8[], rejected float8[],
                                     k integer, weight float8, l2 float8, prior_strength float8) (
    SFUNC = pluralrm.factor_fit_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_fit_combinefn,
    SERIALFUNC = pluralrm.btl_fit_serializefn,
    DESERIALFUNC = pluralrm.btl_fit_deserializefn,
    FINALFUNC = pluralrm.factor_fit_finalfn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.factor_fit(uuid, float8[], float8[], integer, float8, float8, float8) IS
'Fit a factorized reward model: k base rewards shared by everyone and k coefficients per user under an empirical-Bayes Gaussian prior';
CREATE FUNCTION pluralrm.factor_fit_transfn(internal, uuid, float8[], float8[], integer, float8, float8, float8, integer[])
RETURNS internal AS 'MODULE_PATHNAME', 'factor_fit_transfn'
LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE pluralrm.factor_fit(user_id uuid, chosen float8[], rejected float8[],
                                     k integer, weight float8, l2 float8, prior_strength float8, locked integer[]) (
    SFUNC = pluralrm.factor_fit_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_fit_combinefn,
    SERIALFUNC = pluralrm.btl_fit_serializefn,
    DESERIALFUNC = pluralrm.btl_fit_deserializefn,
    FINALFUNC = pluralrm.factor_fit_finalfn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.factor_fit(uuid, float8[], float8[], integer, float8, float8, float8, integer[]) IS
'Fit a factorized reward model: k base rewards shared by everyone and k coefficients per user under an empirical-Bayes Gaussian prior';

CREATE FUNCTION pluralrm.factor_users(model pluralrm.factor_model)
RETURNS TABLE (user_id text, coefficients float8[], covariance float8[],
               comparisons bigint)
AS 'MODULE_PATHNAME', 'factor_users'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION pluralrm.factor_users(pluralrm.factor_model) IS
'Each user of a fitted factor model with the posterior mean and covariance of their coefficients';

CREATE TABLE pluralrm.model_priors (
    model_id bigint PRIMARY KEY REFERENCES pluralrm.model_versions (model_id)
        ON DELETE CASCADE,
    mean float8[] NOT NULL,
    covariance float8[] NOT NULL,
    strength float8 NOT NULL CHECK (strength > 0),
    locked integer[] NOT NULL DEFAULT '{}'
);
COMMENT ON TABLE pluralrm.model_priors IS
'Population prior of a factor model version: coefficients ~ N(mean, covariance), with the precision multiplied by strength; locked components are fixed at the mean for every user';
-- pg_dump saves the priors with the models they belong to
SELECT pg_catalog.pg_extension_config_dump('pluralrm.model_priors', '');

CREATE FUNCTION pluralrm.save_model(name text, model pluralrm.factor_model,
                                    allow_unconverged boolean DEFAULT false)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v integer;
    mid bigint;
BEGIN
    IF model IS NULL OR model.base_rewards IS NULL THEN
        RAISE EXCEPTION 'cannot save a NULL model'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'factor_fit returns NULL when it saw no comparisons.';
    END IF;
    IF NOT model.converged AND NOT allow_unconverged THEN
        RAISE EXCEPTION 'model "%" did not converge', name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass allow_unconverged => true to save it anyway.';
    END IF;
    v := pluralrm.save_version(
        name, 'factor', model.k, model.d, model.base_rewards, model.prior_mean,
        model.n,
        jsonb_build_object('l2', model.l2, 'prior_strength', model.prior_strength,
                           'locked', to_jsonb(model.locked)),
        jsonb_build_object('loglik', model.loglik, 'objective', model.objective,
                           'users', model.users, 'iterations', model.iterations,
                           'converged', model.converged, 'skipped', model.skipped));
    SELECT mv.model_id INTO mid FROM pluralrm.model_versions mv
     WHERE mv.name = save_model.name AND mv.version = v;
    INSERT INTO pluralrm.model_priors (model_id, mean, covariance, strength, locked)
    VALUES (mid, model.prior_mean, model.prior_covariance, model.prior_strength,
            model.locked);
    INSERT INTO pluralrm.user_coefficients (model_id, user_id, coefficients, covariance, n)
    SELECT mid, fu.user_id, fu.coefficients, fu.covariance, fu.comparisons
      FROM pluralrm.factor_users(model) fu;
    RETURN v;
END
$$;
COMMENT ON FUNCTION pluralrm.save_model(text, pluralrm.factor_model, boolean) IS
'Save a fitted factor model under a name as a new current version: base rewards, the prior, and each user''s coefficients with their covariance; returns the version number';
