-- Mixtures of BTL models with a latent class per user

CREATE TYPE pluralrm.mixture_model AS (
    n bigint,
    users bigint,
    d integer,
    k integer,
    l2 float8,
    loglik float8,
    bic float8,
    iterations integer,
    converged boolean,
    restarts integer,
    restarts_at_best integer,
    sampled_users integer,
    solve_ms float8,
    skipped bigint,
    bic_by_k float8[],
    mixing float8[],
    base_rewards float8[],
    user_ids text[],
    responsibilities float8[]
);
COMMENT ON TYPE pluralrm.mixture_model IS
'A fitted mixture of k linear BTL models with a latent class per user: k x d base rewards, mixing weights, and each user''s responsibilities (row u of responsibilities belongs to user_ids[u])';

CREATE FUNCTION pluralrm.mixture_fit_finalfn(internal)
RETURNS pluralrm.mixture_model AS 'MODULE_PATHNAME', 'mixture_fit_finalfn'
LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION pluralrm.mixture_select_finalfn(internal)
RETURNS pluralrm.mixture_model AS 'MODULE_PATHNAME', 'mixture_select_finalfn'
LANGUAGE C PARALLEL SAFE;

CREATE FUNCTION pluralrm.mixture_fit_transfn(internal, bigint, float8[], float8[], integer)
RETURNS internal AS 'MODULE_PATHNAME', 'mixture_fit_transfn'
LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE pluralrm.mixture_fit(user_id bigint, chosen float8[], rejected float8[],
                                  k integer) (
    SFUNC = pluralrm.mixture_fit_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_fit_combinefn,
    SERIALFUNC = pluralrm.btl_fit_serializefn,
    DESERIALFUNC = pluralrm.btl_fit_deserializefn,
    FINALFUNC = pluralrm.mixture_fit_finalfn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.mixture_fit(bigint, float8[], float8[], integer) IS
'Fit a mixture of k BTL reward models with a latent class per user';
CREATE AGGREGATE pluralrm.mixture_select(user_id bigint, chosen float8[], rejected float8[],
                                  k_max integer) (
    SFUNC = pluralrm.mixture_fit_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_fit_combinefn,
    SERIALFUNC = pluralrm.btl_fit_serializefn,
    DESERIALFUNC = pluralrm.btl_fit_deserializefn,
    FINALFUNC = pluralrm.mixture_select_finalfn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.mixture_select(bigint, float8[], float8[], integer) IS
'Fit mixtures of 1 to k_max components and return the one with the lowest BIC';
CREATE FUNCTION pluralrm.mixture_fit_transfn(internal, bigint, float8[], float8[], integer, float8)
RETURNS internal AS 'MODULE_PATHNAME', 'mixture_fit_transfn'
LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE pluralrm.mixture_fit(user_id bigint, chosen float8[], rejected float8[],
                                  k integer, weight float8) (
    SFUNC = pluralrm.mixture_fit_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_fit_combinefn,
    SERIALFUNC = pluralrm.btl_fit_serializefn,
    DESERIALFUNC = pluralrm.btl_fit_deserializefn,
    FINALFUNC = pluralrm.mixture_fit_finalfn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.mixture_fit(bigint, float8[], float8[], integer, float8) IS
'Fit a mixture of k BTL reward models with a latent class per user';
CREATE AGGREGATE pluralrm.mixture_select(user_id bigint, chosen float8[], rejected float8[],
                                  k_max integer, weight float8) (
    SFUNC = pluralrm.mixture_fit_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_fit_combinefn,
    SERIALFUNC = pluralrm.btl_fit_serializefn,
    DESERIALFUNC = pluralrm.btl_fit_deserializefn,
    FINALFUNC = pluralrm.mixture_select_finalfn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.mixture_select(bigint, float8[], float8[], integer, float8) IS
'Fit mixtures of 1 to k_max components and return the one with the lowest BIC';
CREATE FUNCTION pluralrm.mixture_fit_transfn(internal, bigint, float8[], float8[], integer, float8, float8)
RETURNS internal AS 'MODULE_PATHNAME', 'mixture_fit_transfn'
LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE pluralrm.mixture_fit(user_id bigint, chosen float8[], rejected float8[],
                                  k integer, weight float8, l2 float8) (
    SFUNC = pluralrm.mixture_fit_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_fit_combinefn,
    SERIALFUNC = pluralrm.btl_fit_serializefn,
    DESERIALFUNC = pluralrm.btl_fit_deserializefn,
    FINALFUNC = pluralrm.mixture_fit_finalfn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.mixture_fit(bigint, float8[], float8[], integer, float8, float8) IS
'Fit a mixture of k BTL reward models with a latent class per user';
CREATE AGGREGATE pluralrm.mixture_select(user_id bigint, chosen float8[], rejected float8[],
                                  k_max integer, weight float8, l2 float8) (
    SFUNC = pluralrm.mixture_fit_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_fit_combinefn,
    SERIALFUNC = pluralrm.btl_fit_serializefn,
    DESERIALFUNC = pluralrm.btl_fit_deserializefn,
    FINALFUNC = pluralrm.mixture_select_finalfn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.mixture_select(bigint, float8[], float8[], integer, float8, float8) IS
'Fit mixtures of 1 to k_max components and return the one with the lowest BIC';
CREATE FUNCTION pluralrm.mixture_fit_transfn(internal, bigint, float8[], float8[], integer, float8, float8, integer, bigint)
RETURNS internal AS 'MODULE_PATHNAME', 'mixture_fit_transfn'
LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE pluralrm.mixture_fit(user_id bigint, chosen float8[], rejected float8[],
                                  k integer, weight float8, l2 float8, restarts integer, seed bigint) (
    SFUNC = pluralrm.mixture_fit_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_fit_combinefn,
    SERIALFUNC = pluralrm.btl_fit_serializefn,
    DESERIALFUNC = pluralrm.btl_fit_deserializefn,
    FINALFUNC = pluralrm.mixture_fit_finalfn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.mixture_fit(bigint, float8[], float8[], integer, float8, float8, integer, bigint) IS
'Fit a mixture of k BTL reward models with a latent class per user';
CREATE AGGREGATE pluralrm.mixture_select(user_id bigint, chosen float8[], rejected float8[],
                                  k_max integer, weight float8, l2 float8, restarts integer, seed bigint) (
    SFUNC = pluralrm.mixture_fit_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_fit_combinefn,
    SERIALFUNC = pluralrm.btl_fit_serializefn,
    DESERIALFUNC = pluralrm.btl_fit_deserializefn,
    FINALFUNC = pluralrm.mixture_select_finalfn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.mixture_select(bigint, float8[], float8[], integer, float8, float8, integer, bigint) IS
'Fit mixtures of 1 to k_max components and return the one with the lowest BIC';
CREATE FUNCTION pluralrm.mixture_fit_transfn(internal, text, float8[], float8[], integer)
RETURNS internal AS 'MODULE_PATHNAME', 'mixture_fit_transfn'
LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE pluralrm.mixture_fit(user_id text, chosen float8[], rejected float8[],
                                  k integer) (
    SFUNC = pluralrm.mixture_fit_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_fit_combinefn,
    SERIALFUNC = pluralrm.btl_fit_serializefn,
    DESERIALFUNC = pluralrm.btl_fit_deserializefn,
    FINALFUNC = pluralrm.mixture_fit_finalfn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.mixture_fit(text, float8[], float8[], integer) IS
'Fit a mixture of k BTL reward models with a latent class per user';
CREATE AGGREGATE pluralrm.mixture_select(user_id text, chosen float8[], rejected float8[],
                                  k_max integer) (
    SFUNC = pluralrm.mixture_fit_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_fit_combinefn,
    SERIALFUNC = pluralrm.btl_fit_serializefn,
    DESERIALFUNC = pluralrm.btl_fit_deserializefn,
    FINALFUNC = pluralrm.mixture_select_finalfn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.mixture_select(text, float8[], float8[], integer) IS
'Fit mixtures of 1 to k_max components and return the one with the lowest BIC';
CREATE FUNCTION pluralrm.mixture_fit_transfn(internal, text, float8[], float8[], integer, float8)
RETURNS internal AS 'MODULE_PATHNAME', 'mixture_fit_transfn'
LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE pluralrm.mixture_fit(user_id text, chosen float8[], rejected float8[],
                                  k integer, weight float8) (
    SFUNC = pluralrm.mixture_fit_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_fit_combinefn,
    SERIALFUNC = pluralrm.btl_fit_serializefn,
    DESERIALFUNC = pluralrm.btl_fit_deserializefn,
    FINALFUNC = pluralrm.mixture_fit_finalfn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.mixture_fit(text, float8[], float8[], integer, float8) IS
'Fit a mixture of k BTL reward models with a latent class per user';
CREATE AGGREGATE pluralrm.mixture_select(user_id text, chosen float8[], rejected float8[],
                                  k_max integer, weight float8) (
    SFUNC = pluralrm.mixture_fit_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_fit_combinefn,
    SERIALFUNC = pluralrm.btl_fit_serializefn,
    DESERIALFUNC = pluralrm.btl_fit_deserializefn,
    FINALFUNC = pluralrm.mixture_select_finalfn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.mixture_select(text, float8[], float8[], integer, float8) IS
'Fit mixtures of 1 to k_max components and return the one with the lowest BIC';
CREATE FUNCTION pluralrm.mixture_fit_transfn(internal, text, float8[], float8[], integer, float8, float8)
RETURNS internal AS 'MODULE_PATHNAME', 'mixture_fit_transfn'
LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE pluralrm.mixture_fit(user_id text, chosen float8[], rejected float8[],
                                  k integer, weight float8, l2 float8) (
    SFUNC = pluralrm.mixture_fit_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_fit_combinefn,
    SERIALFUNC = pluralrm.btl_fit_serializefn,
    DESERIALFUNC = pluralrm.btl_fit_deserializefn,
    FINALFUNC = pluralrm.mixture_fit_finalfn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.mixture_fit(text, float8[], float8[], integer, float8, float8) IS
'Fit a mixture of k BTL reward models with a latent class per user';
CREATE AGGREGATE pluralrm.mixture_select(user_id text, chosen float8[], rejected float8[],
                                  k_max integer, weight float8, l2 float8) (
    SFUNC = pluralrm.mixture_fit_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_fit_combinefn,
    SERIALFUNC = pluralrm.btl_fit_serializefn,
    DESERIALFUNC = pluralrm.btl_fit_deserializefn,
    FINALFUNC = pluralrm.mixture_select_finalfn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.mixture_select(text, float8[], float8[], integer, float8, float8) IS
'Fit mixtures of 1 to k_max components and return the one with the lowest BIC';
CREATE FUNCTION pluralrm.mixture_fit_transfn(internal, text, float8[], float8[], integer, float8, float8, integer, bigint)
RETURNS internal AS 'MODULE_PATHNAME', 'mixture_fit_transfn'
LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE pluralrm.mixture_fit(user_id text, chosen float8[], rejected float8[],
                                  k integer, weight float8, l2 float8, restarts integer, seed bigint) (
    SFUNC = pluralrm.mixture_fit_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_fit_combinefn,
    SERIALFUNC = pluralrm.btl_fit_serializefn,
    DESERIALFUNC = pluralrm.btl_fit_deserializefn,
    FINALFUNC = pluralrm.mixture_fit_finalfn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.mixture_fit(text, float8[], float8[], integer, float8, float8, integer, bigint) IS
'Fit a mixture of k BTL reward models with a latent class per user';
CREATE AGGREGATE pluralrm.mixture_select(user_id text, chosen float8[], rejected float8[],
                                  k_max integer, weight float8, l2 float8, restarts integer, seed bigint) (
    SFUNC = pluralrm.mixture_fit_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_fit_combinefn,
    SERIALFUNC = pluralrm.btl_fit_serializefn,
    DESERIALFUNC = pluralrm.btl_fit_deserializefn,
    FINALFUNC = pluralrm.mixture_select_finalfn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.mixture_select(text, float8[], float8[], integer, float8, float8, integer, bigint) IS
'Fit mixtures of 1 to k_max components and return the one with the lowest BIC';
CREATE FUNCTION pluralrm.mixture_fit_transfn(internal, uuid, float8[], float8[], integer)
RETURNS internal AS 'MODULE_PATHNAME', 'mixture_fit_transfn'
LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE pluralrm.mixture_fit(user_id uuid, chosen float8[], rejected float8[],
                                  k integer) (
    SFUNC = pluralrm.mixture_fit_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_fit_combinefn,
    SERIALFUNC = pluralrm.btl_fit_serializefn,
    DESERIALFUNC = pluralrm.btl_fit_deserializefn,
    FINALFUNC = pluralrm.mixture_fit_finalfn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.mixture_fit(uuid, float8[], float8[], integer) IS
'Fit a mixture of k BTL reward models with a latent class per user';
CREATE AGGREGATE pluralrm.mixture_select(user_id uuid, chosen float8[], rejected float8[],
                                  k_max integer) (
    SFUNC = pluralrm.mixture_fit_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_fit_combinefn,
    SERIALFUNC = pluralrm.btl_fit_serializefn,
    DESERIALFUNC = pluralrm.btl_fit_deserializefn,
    FINALFUNC = pluralrm.mixture_select_finalfn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.mixture_select(uuid, float8[], float8[], integer) IS
'Fit mixtures of 1 to k_max components and return the one with the lowest BIC';
CREATE FUNCTION pluralrm.mixture_fit_transfn(internal, uuid, float8[], float8[], integer, float8)
RETURNS internal AS 'MODULE_PATHNAME', 'mixture_fit_transfn'
LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE pluralrm.mixture_fit(user_id uuid, chosen float8[], rejected float8[],
                                  k integer, weight float8) (
    SFUNC = pluralrm.mixture_fit_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_fit_combinefn,
    SERIALFUNC = pluralrm.btl_fit_serializefn,
    DESERIALFUNC = pluralrm.btl_fit_deserializefn,
    FINALFUNC = pluralrm.mixture_fit_finalfn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.mixture_fit(uuid, float8[], float8[], integer, float8) IS
'Fit a mixture of k BTL reward models with a latent class per user';
CREATE AGGREGATE pluralrm.mixture_select(user_id uuid, chosen float8[], rejected float8[],
                                  k_max integer, weight float8) (
    SFUNC = pluralrm.mixture_fit_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_fit_combinefn,
    SERIALFUNC = pluralrm.btl_fit_serializefn,
    DESERIALFUNC = pluralrm.btl_fit_deserializefn,
    FINALFUNC = pluralrm.mixture_select_finalfn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.mixture_select(uuid, float8[], float8[], integer, float8) IS
'Fit mixtures of 1 to k_max components and return the one with the lowest BIC';
CREATE FUNCTION pluralrm.mixture_fit_transfn(internal, uuid, float8[], float8[], integer, float8, float8)
RETURNS internal AS 'MODULE_PATHNAME', 'mixture_fit_transfn'
LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE pluralrm.mixture_fit(user_id uuid, chosen float8[], rejected float8[],
                                  k integer, weight float8, l2 float8) (
    SFUNC = pluralrm.mixture_fit_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_fit_combinefn,
    SERIALFUNC = pluralrm.btl_fit_serializefn,
    DESERIALFUNC = pluralrm.btl_fit_deserializefn,
    FINALFUNC = pluralrm.mixture_fit_finalfn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.mixture_fit(uuid, float8[], float8[], integer, float8, float8) IS
'Fit a mixture of k BTL reward models with a latent class per user';
CREATE AGGREGATE pluralrm.mixture_select(user_id uuid, chosen float8[], rejected float8[],
                                  k_max integer, weight float8, l2 float8) (
    SFUNC = pluralrm.mixture_fit_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_fit_combinefn,
    SERIALFUNC = pluralrm.btl_fit_serializefn,
    DESERIALFUNC = pluralrm.btl_fit_deserializefn,
    FINALFUNC = pluralrm.mixture_select_finalfn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.mixture_select(uuid, float8[], float8[], integer, float8, float8) IS
'Fit mixtures of 1 to k_max components and return the one with the lowest BIC';
CREATE FUNCTION pluralrm.mixture_fit_transfn(internal, uuid, float8[], float8[], integer, float8, float8, integer, bigint)
RETURNS internal AS 'MODULE_PATHNAME', 'mixture_fit_transfn'
LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE pluralrm.mixture_fit(user_id uuid, chosen float8[], rejected float8[],
                                  k integer, weight float8, l2 float8, restarts integer, seed bigint) (
    SFUNC = pluralrm.mixture_fit_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_fit_combinefn,
    SERIALFUNC = pluralrm.btl_fit_serializefn,
    DESERIALFUNC = pluralrm.btl_fit_deserializefn,
    FINALFUNC = pluralrm.mixture_fit_finalfn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.mixture_fit(uuid, float8[], float8[], integer, float8, float8, integer, bigint) IS
'Fit a mixture of k BTL reward models with a latent class per user';
CREATE AGGREGATE pluralrm.mixture_select(user_id uuid, chosen float8[], rejected float8[],
                                  k_max integer, weight float8, l2 float8, restarts integer, seed bigint) (
    SFUNC = pluralrm.mixture_fit_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_fit_combinefn,
    SERIALFUNC = pluralrm.btl_fit_serializefn,
    DESERIALFUNC = pluralrm.btl_fit_deserializefn,
    FINALFUNC = pluralrm.mixture_select_finalfn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.mixture_select(uuid, float8[], float8[], integer, float8, float8, integer, bigint) IS
'Fit mixtures of 1 to k_max components and return the one with the lowest BIC';

CREATE FUNCTION pluralrm.matrix_rows(matrix float8[])
RETURNS SETOF float8[] AS 'MODULE_PATHNAME', 'matrix_rows'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION pluralrm.matrix_rows(float8[]) IS
'The rows of a 2-D float8[] as 1-D arrays, in order (use WITH ORDINALITY for row numbers)';

CREATE FUNCTION pluralrm.mixture_users(model pluralrm.mixture_model)
RETURNS TABLE (user_id text, coefficients float8[])
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT u.id, r.coef
      FROM unnest(model.user_ids) WITH ORDINALITY AS u(id, i)
      JOIN pluralrm.matrix_rows(model.responsibilities) WITH ORDINALITY AS r(coef, i)
        ON r.i = u.i
$$;
COMMENT ON FUNCTION pluralrm.mixture_users(pluralrm.mixture_model) IS
'Each user of a fitted mixture with their responsibilities (posterior probability of each component)';

CREATE FUNCTION pluralrm.save_model(name text, model pluralrm.mixture_model,
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
                  HINT = 'mixture_fit returns NULL when it saw no comparisons.';
    END IF;
    IF NOT model.converged AND NOT allow_unconverged THEN
        RAISE EXCEPTION 'model "%" did not converge', name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass allow_unconverged => true to save it anyway.';
    END IF;
    v := pluralrm.save_version(
        name, 'mixture', model.k, model.d, model.base_rewards, model.mixing,
        model.n,
        jsonb_build_object('l2', model.l2, 'restarts', model.restarts),
        jsonb_build_object('loglik', model.loglik, 'bic', model.bic,
                           'users', model.users,
                           'iterations', model.iterations,
                           'converged', model.converged,
                           'restarts_at_best', model.restarts_at_best,
                           'skipped', model.skipped));
    SELECT mv.model_id INTO mid FROM pluralrm.model_versions mv
     WHERE mv.name = save_model.name AND mv.version = v;
    INSERT INTO pluralrm.user_coefficients (model_id, user_id, coefficients)
    SELECT mid, mu.user_id, mu.coefficients
      FROM pluralrm.mixture_users(model) mu;
    RETURN v;
END
$$;
COMMENT ON FUNCTION pluralrm.save_model(text, pluralrm.mixture_model, boolean) IS
'Save a fitted mixture under a name as a new current version, with one row of coefficients (responsibilities) per user; returns the version number';
