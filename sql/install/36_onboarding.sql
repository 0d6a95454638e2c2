-- Serving new users without refitting: posteriors and question selection

CREATE TYPE pluralrm.user_posterior AS (
    kind text,
    n bigint,
    coefficients float8[],
    covariance float8[],
    iterations integer,
    solve_ms float8
);
COMMENT ON TYPE pluralrm.user_posterior IS
'A user''s posterior under a stored model: for a factor model the mode and Laplace covariance of the k coefficients, for a mixture the posterior over its k classes (covariance NULL)';

CREATE FUNCTION pluralrm.fit_user_transfn(internal, text, float8[], float8[])
RETURNS internal AS 'MODULE_PATHNAME', 'fit_user_transfn'
LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION pluralrm.fit_user_transfn(internal, text, float8[], float8[], float8)
RETURNS internal AS 'MODULE_PATHNAME', 'fit_user_transfn'
LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION pluralrm.fit_user_finalfn(internal)
RETURNS pluralrm.user_posterior AS 'MODULE_PATHNAME', 'fit_user_finalfn'
LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE pluralrm.fit_user(model text, chosen float8[], rejected float8[]) (
    SFUNC = pluralrm.fit_user_transfn, STYPE = internal,
    FINALFUNC = pluralrm.fit_user_finalfn, PARALLEL = SAFE);
CREATE AGGREGATE pluralrm.fit_user(model text, chosen float8[], rejected float8[],
                                   prior_strength float8) (
    SFUNC = pluralrm.fit_user_transfn, STYPE = internal,
    FINALFUNC = pluralrm.fit_user_finalfn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.fit_user(text, float8[], float8[]) IS
'Posterior of a user''s coefficients from their comparisons under a stored factor or mixture model, without refitting it';
COMMENT ON AGGREGATE pluralrm.fit_user(text, float8[], float8[], float8) IS
'Posterior of a user''s coefficients with the prior precision multiplied by prior_strength';

CREATE FUNCTION pluralrm.save_user(model text, user_id text,
                                   posterior pluralrm.user_posterior)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    mid bigint;
BEGIN
    IF posterior IS NULL OR posterior.coefficients IS NULL THEN
        RAISE EXCEPTION 'cannot save a NULL posterior'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT ml.model_id INTO mid FROM pluralrm.model_list ml
     WHERE ml.name = save_user.model;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model "%" does not exist', model
            USING ERRCODE = 'undefined_object';
    END IF;
    INSERT INTO pluralrm.user_coefficients AS uc
        (model_id, user_id, coefficients, covariance, n)
    VALUES (mid, save_user.user_id, posterior.coefficients,
            posterior.covariance, posterior.n)
    ON CONFLICT (model_id, user_id) DO UPDATE
       SET coefficients = EXCLUDED.coefficients,
           covariance = EXCLUDED.covariance, n = EXCLUDED.n;
END
$$;
COMMENT ON FUNCTION pluralrm.save_user(text, text, pluralrm.user_posterior) IS
'Store (or replace) a user''s coefficients in the current version of a model, so reward_score serves them at once';

CREATE FUNCTION pluralrm.next_questions(model text, user_id text,
                                        candidates_a float8[],
                                        candidates_b float8[], n integer)
RETURNS TABLE (pick integer, candidate integer, information float8)
AS 'MODULE_PATHNAME', 'next_questions'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION pluralrm.next_questions(text, text, float8[], float8[], integer) IS
'The n candidate pairs (row i of candidates_a against row i of candidates_b) that add most Fisher information to a user''s posterior, chosen greedily with the posterior updated after each pick; a user without stored coefficients starts from the prior';
CREATE FUNCTION pluralrm.next_questions(model text, coefficients float8[],
                                        covariance float8[],
                                        candidates_a float8[],
                                        candidates_b float8[], n integer)
RETURNS TABLE (pick integer, candidate integer, information float8)
AS 'MODULE_PATHNAME', 'next_questions'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION pluralrm.next_questions(text, float8[], float8[], float8[], float8[], integer) IS
'The n most informative candidate pairs for a posterior given as coefficients and covariance (for example from fit_user)';
