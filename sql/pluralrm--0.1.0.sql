-- pluralrm 0.1.0 install script: frozen at its release, never edited.
\echo Use "CREATE EXTENSION pluralrm" to load this file. \quit
-- Linear Bradley-Terry-Luce fits over embeddings

CREATE TYPE pluralrm.btl_model AS (
    n bigint,
    d integer,
    l2 float8,
    iterations integer,
    converged boolean,
    loglik float8,
    accuracy float8,
    grad_norm float8,
    method text,
    solve_ms float8,
    skipped bigint,
    weights float8[]
);
-- real[] embeddings reach these through PostgreSQL's implicit cast to
-- float8[]; separate real[] signatures would make ARRAY[0.5, ...] literals
-- ambiguous.

COMMENT ON TYPE pluralrm.btl_model IS
'A fitted linear BTL reward model: weights w with P(chosen beats rejected) = sigmoid(w . (chosen - rejected)), and the facts of the fit';

CREATE FUNCTION pluralrm.btl_fit_transfn(internal, float8[], float8[])
RETURNS internal AS 'MODULE_PATHNAME', 'btl_fit_transfn'
LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION pluralrm.btl_fit_transfn(internal, float8[], float8[], float8)
RETURNS internal AS 'MODULE_PATHNAME', 'btl_fit_transfn'
LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION pluralrm.btl_fit_transfn(internal, float8[], float8[], float8, float8)
RETURNS internal AS 'MODULE_PATHNAME', 'btl_fit_transfn'
LANGUAGE C PARALLEL SAFE;

CREATE FUNCTION pluralrm.btl_fit_combinefn(internal, internal)
RETURNS internal AS 'MODULE_PATHNAME', 'btl_fit_combinefn'
LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION pluralrm.btl_fit_serializefn(internal)
RETURNS bytea AS 'MODULE_PATHNAME', 'btl_fit_serializefn'
LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION pluralrm.btl_fit_deserializefn(bytea, internal)
RETURNS internal AS 'MODULE_PATHNAME', 'btl_fit_deserializefn'
LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION pluralrm.btl_fit_finalfn(internal)
RETURNS pluralrm.btl_model AS 'MODULE_PATHNAME', 'btl_fit_finalfn'
LANGUAGE C PARALLEL SAFE;

CREATE AGGREGATE pluralrm.btl_fit(chosen float8[], rejected float8[]) (
    SFUNC = pluralrm.btl_fit_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_fit_combinefn,
    SERIALFUNC = pluralrm.btl_fit_serializefn,
    DESERIALFUNC = pluralrm.btl_fit_deserializefn,
    FINALFUNC = pluralrm.btl_fit_finalfn, PARALLEL = SAFE);
CREATE AGGREGATE pluralrm.btl_fit(chosen float8[], rejected float8[],
                                  weight float8) (
    SFUNC = pluralrm.btl_fit_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_fit_combinefn,
    SERIALFUNC = pluralrm.btl_fit_serializefn,
    DESERIALFUNC = pluralrm.btl_fit_deserializefn,
    FINALFUNC = pluralrm.btl_fit_finalfn, PARALLEL = SAFE);
CREATE AGGREGATE pluralrm.btl_fit(chosen float8[], rejected float8[],
                                  weight float8, l2 float8) (
    SFUNC = pluralrm.btl_fit_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_fit_combinefn,
    SERIALFUNC = pluralrm.btl_fit_serializefn,
    DESERIALFUNC = pluralrm.btl_fit_deserializefn,
    FINALFUNC = pluralrm.btl_fit_finalfn, PARALLEL = SAFE);

COMMENT ON AGGREGATE pluralrm.btl_fit(float8[], float8[]) IS
'Fit a linear BTL reward model to comparisons (chosen, rejected) with L2 strength 1';
COMMENT ON AGGREGATE pluralrm.btl_fit(float8[], float8[], float8) IS
'Fit a linear BTL reward model to weighted comparisons with L2 strength 1';
COMMENT ON AGGREGATE pluralrm.btl_fit(float8[], float8[], float8, float8) IS
'Fit a linear BTL reward model to weighted comparisons with a given L2 strength';
-- Stored models: names, versions, base rewards and per-user coefficients

CREATE TABLE pluralrm.models (
    name text PRIMARY KEY CHECK (name <> ''),
    current_version integer,
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE pluralrm.models IS
'One row per model name; current_version is the version reward_score serves';

CREATE TABLE pluralrm.model_versions (
    model_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL REFERENCES pluralrm.models (name)
        ON UPDATE CASCADE ON DELETE CASCADE,
    version integer NOT NULL CHECK (version >= 1),
    kind text NOT NULL CHECK (kind IN ('btl', 'mixture', 'factor', 'items')),
    k integer NOT NULL CHECK (k >= 1),
    d integer NOT NULL CHECK (d >= 1),
    base_rewards float8[] NOT NULL,
    population float8[] NOT NULL,
    n bigint,
    hyperparameters jsonb NOT NULL DEFAULT '{}',
    metrics jsonb NOT NULL DEFAULT '{}',
    fitted_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (name, version)
);
COMMENT ON TABLE pluralrm.model_versions IS
'Every saved version of every model: base rewards as a k x d float8[] and the population coefficients that serve users without a row of their own';
COMMENT ON COLUMN pluralrm.model_versions.base_rewards IS
'k x d float8[]: row c is base reward c (for kind btl, the 1 x d weights)';
COMMENT ON COLUMN pluralrm.model_versions.population IS
'k coefficients for a user the model has not seen (for kind btl, {1})';

CREATE TABLE pluralrm.user_coefficients (
    model_id bigint NOT NULL REFERENCES pluralrm.model_versions (model_id)
        ON DELETE CASCADE,
    user_id text NOT NULL,
    coefficients float8[] NOT NULL,
    covariance float8[],
    n bigint,
    PRIMARY KEY (model_id, user_id)
);
COMMENT ON TABLE pluralrm.user_coefficients IS
'Per-user coefficients of a model version: the user''s reward is sum_c coefficients[c] * (base_rewards[c] . x); user_id is the text form of the user''s id';

-- pg_dump saves the rows of these tables (they are the user's data)
SELECT pg_catalog.pg_extension_config_dump('pluralrm.models', '');
SELECT pg_catalog.pg_extension_config_dump('pluralrm.model_versions', '');
SELECT pg_catalog.pg_extension_config_dump('pluralrm.user_coefficients', '');
SELECT pg_catalog.pg_extension_config_dump('pluralrm.model_versions_model_id_seq', '');

CREATE VIEW pluralrm.model_list AS
SELECT m.name, v.version, v.kind, v.k, v.d, v.n, v.fitted_at,
       v.hyperparameters, v.metrics, v.model_id,
       (SELECT count(*) FROM pluralrm.model_versions o
         WHERE o.name = m.name) AS versions
  FROM pluralrm.models m
  JOIN pluralrm.model_versions v
    ON v.name = m.name AND v.version = m.current_version;
COMMENT ON VIEW pluralrm.model_list IS
'Saved models with the facts of their current version';

-- Add a version under name and make it current; returns the version
CREATE FUNCTION pluralrm.save_version(name text, kind text, k integer,
                                      d integer, base_rewards float8[],
                                      population float8[], n bigint,
                                      hyperparameters jsonb, metrics jsonb)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v integer;
BEGIN
    IF name IS NULL OR name = '' THEN
        RAISE EXCEPTION 'model name must not be empty'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO pluralrm.models AS m (name) VALUES (save_version.name)
        ON CONFLICT (name) DO NOTHING;
    -- lock the model row so concurrent saves number versions in turn
    PERFORM 1 FROM pluralrm.models m WHERE m.name = save_version.name
        FOR UPDATE;
    SELECT coalesce(max(mv.version), 0) + 1 INTO v
      FROM pluralrm.model_versions mv WHERE mv.name = save_version.name;
    INSERT INTO pluralrm.model_versions
        (name, version, kind, k, d, base_rewards, population, n,
         hyperparameters, metrics)
    VALUES (save_version.name, v, kind, k, d, base_rewards, population, n,
            coalesce(hyperparameters, '{}'), coalesce(metrics, '{}'));
    UPDATE pluralrm.models m SET current_version = v
     WHERE m.name = save_version.name;
    RETURN v;
END
$$;
COMMENT ON FUNCTION pluralrm.save_version(text, text, integer, integer, float8[], float8[], bigint, jsonb, jsonb) IS
'Store a model version from its arrays and make it current (used by save_model)';

CREATE FUNCTION pluralrm.save_model(name text, model pluralrm.btl_model,
                                    allow_unconverged boolean DEFAULT false)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    IF model IS NULL OR model.weights IS NULL THEN
        RAISE EXCEPTION 'cannot save a NULL model'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'btl_fit returns NULL when it saw no comparisons.';
    END IF;
    IF NOT model.converged AND NOT allow_unconverged THEN
        RAISE EXCEPTION 'model "%" did not converge', name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Refit with more iterations, or pass allow_unconverged => true.';
    END IF;
    RETURN pluralrm.save_version(
        name, 'btl', 1, model.d,
        ARRAY[model.weights], ARRAY[1.0::float8], model.n,
        jsonb_build_object('l2', model.l2, 'method', model.method),
        jsonb_build_object('loglik', model.loglik,
                           'accuracy', model.accuracy,
                           'iterations', model.iterations,
                           'converged', model.converged,
                           'grad_norm', model.grad_norm,
                           'skipped', model.skipped));
END
$$;
COMMENT ON FUNCTION pluralrm.save_model(text, pluralrm.btl_model, boolean) IS
'Save a fitted BTL model under a name as a new current version; returns the version number';

CREATE FUNCTION pluralrm.drop_model(name text, if_exists boolean DEFAULT false)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    DELETE FROM pluralrm.models m WHERE m.name = drop_model.name;
    IF NOT FOUND AND NOT if_exists THEN
        RAISE EXCEPTION 'model "%" does not exist', name
            USING ERRCODE = 'undefined_object';
    END IF;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION pluralrm.drop_model(text, boolean) IS
'Drop a model with all its versions and per-user coefficients';

CREATE FUNCTION pluralrm.rename_model(name text, new_name text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    IF new_name IS NULL OR new_name = '' THEN
        RAISE EXCEPTION 'model name must not be empty'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM pluralrm.models m WHERE m.name = new_name) THEN
        RAISE EXCEPTION 'model "%" already exists', new_name
            USING ERRCODE = 'duplicate_object';
    END IF;
    UPDATE pluralrm.models m SET name = new_name
     WHERE m.name = rename_model.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model "%" does not exist', name
            USING ERRCODE = 'undefined_object';
    END IF;
END
$$;
COMMENT ON FUNCTION pluralrm.rename_model(text, text) IS
'Rename a model, keeping its versions';

CREATE FUNCTION pluralrm.set_current_version(name text, version integer)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pluralrm.model_versions v
                    WHERE v.name = set_current_version.name
                      AND v.version = set_current_version.version) THEN
        RAISE EXCEPTION 'model "%" has no version %', name, version
            USING ERRCODE = 'undefined_object';
    END IF;
    UPDATE pluralrm.models m SET current_version = set_current_version.version
     WHERE m.name = set_current_version.name;
    -- look again now that the model is locked: a prune that held the lock
    -- may have deleted the version while the update waited
    IF NOT EXISTS (SELECT 1 FROM pluralrm.model_versions v
                    WHERE v.name = set_current_version.name
                      AND v.version = set_current_version.version) THEN
        RAISE EXCEPTION 'model "%" has no version %', name, version
            USING ERRCODE = 'undefined_object';
    END IF;
END
$$;
COMMENT ON FUNCTION pluralrm.set_current_version(text, integer) IS
'Make an earlier (or later) saved version of a model the one that is served';

-- Delete all but the newest keep versions of a model, never the current one
CREATE FUNCTION pluralrm.prune_versions(name text, keep integer)
RETURNS integer
LANGUAGE plpgsql STRICT
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    deleted integer;
BEGIN
    IF keep < 1 THEN
        RAISE EXCEPTION 'keep must be at least 1, not %', keep
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- lock the model so that the current version cannot change meanwhile;
    -- user rows go with their version (ON DELETE CASCADE)
    PERFORM 1 FROM pluralrm.models m WHERE m.name = prune_versions.name
        FOR NO KEY UPDATE;
    DELETE FROM pluralrm.model_versions v
     WHERE v.name = prune_versions.name
       AND v.version IS DISTINCT FROM
           (SELECT m.current_version FROM pluralrm.models m
             WHERE m.name = prune_versions.name)
       AND v.version NOT IN
           (SELECT o.version FROM pluralrm.model_versions o
             WHERE o.name = prune_versions.name
             ORDER BY o.version DESC LIMIT keep);
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN deleted;
END
$$;
COMMENT ON FUNCTION pluralrm.prune_versions(text, integer) IS
'Delete the versions of a model older than its newest keep, with their per-user coefficients, always sparing the current version; returns how many were deleted';

CREATE FUNCTION pluralrm.model_weights(name text)
RETURNS float8[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT v.base_rewards
      FROM pluralrm.models m
      JOIN pluralrm.model_versions v
        ON v.name = m.name AND v.version = m.current_version
     WHERE m.name = model_weights.name
$$;
COMMENT ON FUNCTION pluralrm.model_weights(text) IS
'Base rewards (k x d) of the current version of a model';
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
-- Item strengths from paired comparisons (Bradley-Terry-Luce, Davidson ties)

CREATE TYPE pluralrm.items_options AS (
    prior float8,
    ties text,
    reference text,
    bootstrap integer,
    seed bigint,
    confidence float8
);
COMMENT ON TYPE pluralrm.items_options IS
'Settings of a btl_items fit; build it with pluralrm.items_options(...), where NULL fields mean the defaults';

CREATE FUNCTION pluralrm.items_options(prior float8 DEFAULT 0.01,
                                       ties text DEFAULT 'davidson',
                                       reference text DEFAULT NULL,
                                       bootstrap integer DEFAULT 0,
                                       seed bigint DEFAULT 0,
                                       confidence float8 DEFAULT 0.95)
RETURNS pluralrm.items_options
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ROW(prior, ties, reference, bootstrap, seed,
               confidence)::pluralrm.items_options
$$;
COMMENT ON FUNCTION pluralrm.items_options(float8, text, text, integer, bigint, float8) IS
'Settings of a btl_items fit: prior precision of the strengths (0 = maximum likelihood), ties (davidson, half or drop), reference item (NULL = strengths centred on 0), bootstrap resamples, seed and confidence level of the intervals';

CREATE TYPE pluralrm.items_model AS (
    comparisons bigint,
    skipped bigint,
    items integer,
    pairs bigint,
    raters integer,
    components integer,
    prior float8,
    tie_model text,
    reference text,
    nu float8,
    nu_se float8,
    nu_lower float8,
    nu_upper float8,
    loglik float8,
    iterations integer,
    converged boolean,
    bootstrap integer,
    bootstrap_failed integer,
    resampled text,
    seed bigint,
    confidence float8,
    solve_ms float8,
    item text[],
    strength float8[],
    se float8[],
    lower float8[],
    upper float8[],
    wins float8[],
    losses float8[],
    ties float8[],
    component integer[]
);
COMMENT ON TYPE pluralrm.items_model IS
'Fitted item strengths (log scale) with standard errors, bootstrap intervals and the facts of the fit; expand with pluralrm.item_strengths';

CREATE FUNCTION pluralrm.btl_items_transfn(internal, anycompatible,
                                           anycompatible, float8)
RETURNS internal AS 'MODULE_PATHNAME', 'btl_items_transfn'
LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION pluralrm.btl_items_transfn(internal, anycompatible,
                                           anycompatible, float8, float8)
RETURNS internal AS 'MODULE_PATHNAME', 'btl_items_transfn'
LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION pluralrm.btl_items_transfn(internal, anycompatible,
                                           anycompatible, float8, float8,
                                           pluralrm.items_options)
RETURNS internal AS 'MODULE_PATHNAME', 'btl_items_transfn'
LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION pluralrm.btl_items_transfn(internal, anycompatible,
                                           anycompatible, float8, float8,
                                           anyelement, pluralrm.items_options)
RETURNS internal AS 'MODULE_PATHNAME', 'btl_items_transfn'
LANGUAGE C PARALLEL SAFE;

CREATE FUNCTION pluralrm.btl_items_combinefn(internal, internal)
RETURNS internal AS 'MODULE_PATHNAME', 'btl_items_combinefn'
LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION pluralrm.btl_items_serializefn(internal)
RETURNS bytea AS 'MODULE_PATHNAME', 'btl_items_serializefn'
LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION pluralrm.btl_items_deserializefn(bytea, internal)
RETURNS internal AS 'MODULE_PATHNAME', 'btl_items_deserializefn'
LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION pluralrm.btl_items_finalfn(internal)
RETURNS pluralrm.items_model AS 'MODULE_PATHNAME', 'btl_items_finalfn'
LANGUAGE C PARALLEL SAFE;

COMMENT ON FUNCTION pluralrm.btl_items_transfn(internal, anycompatible, anycompatible, float8) IS
'Transition function of btl_items: count one comparison';
COMMENT ON FUNCTION pluralrm.btl_items_transfn(internal, anycompatible, anycompatible, float8, float8) IS
'Transition function of btl_items: count one weighted comparison';
COMMENT ON FUNCTION pluralrm.btl_items_transfn(internal, anycompatible, anycompatible, float8, float8, pluralrm.items_options) IS
'Transition function of btl_items: count one weighted comparison, with settings';
COMMENT ON FUNCTION pluralrm.btl_items_transfn(internal, anycompatible, anycompatible, float8, float8, anyelement, pluralrm.items_options) IS
'Transition function of btl_items: count one weighted comparison of a rater, with settings';
COMMENT ON FUNCTION pluralrm.btl_items_combinefn(internal, internal) IS
'Combine function of btl_items: add the counts of two partial states';
COMMENT ON FUNCTION pluralrm.btl_items_serializefn(internal) IS
'Serialize function of btl_items for parallel plans';
COMMENT ON FUNCTION pluralrm.btl_items_deserializefn(bytea, internal) IS
'Deserialize function of btl_items for parallel plans';
COMMENT ON FUNCTION pluralrm.btl_items_finalfn(internal) IS
'Final function of btl_items: fit the strengths';

CREATE AGGREGATE pluralrm.btl_items(item_a anycompatible,
                                    item_b anycompatible,
                                    outcome float8) (
    SFUNC = pluralrm.btl_items_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_items_combinefn,
    SERIALFUNC = pluralrm.btl_items_serializefn,
    DESERIALFUNC = pluralrm.btl_items_deserializefn,
    FINALFUNC = pluralrm.btl_items_finalfn, PARALLEL = SAFE);
CREATE AGGREGATE pluralrm.btl_items(item_a anycompatible,
                                    item_b anycompatible,
                                    outcome float8, weight float8) (
    SFUNC = pluralrm.btl_items_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_items_combinefn,
    SERIALFUNC = pluralrm.btl_items_serializefn,
    DESERIALFUNC = pluralrm.btl_items_deserializefn,
    FINALFUNC = pluralrm.btl_items_finalfn, PARALLEL = SAFE);
CREATE AGGREGATE pluralrm.btl_items(item_a anycompatible,
                                    item_b anycompatible,
                                    outcome float8, weight float8,
                                    options pluralrm.items_options) (
    SFUNC = pluralrm.btl_items_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_items_combinefn,
    SERIALFUNC = pluralrm.btl_items_serializefn,
    DESERIALFUNC = pluralrm.btl_items_deserializefn,
    FINALFUNC = pluralrm.btl_items_finalfn, PARALLEL = SAFE);
CREATE AGGREGATE pluralrm.btl_items(item_a anycompatible,
                                    item_b anycompatible,
                                    outcome float8, weight float8,
                                    rater anyelement,
                                    options pluralrm.items_options) (
    SFUNC = pluralrm.btl_items_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_items_combinefn,
    SERIALFUNC = pluralrm.btl_items_serializefn,
    DESERIALFUNC = pluralrm.btl_items_deserializefn,
    FINALFUNC = pluralrm.btl_items_finalfn, PARALLEL = SAFE);

COMMENT ON AGGREGATE pluralrm.btl_items(anycompatible, anycompatible, float8) IS
'Fit item strengths to comparisons; outcome is 1 when item_a won, 0 when item_b won, 0.5 for a tie (Davidson model, prior 0.01)';
COMMENT ON AGGREGATE pluralrm.btl_items(anycompatible, anycompatible, float8, float8) IS
'Fit item strengths to weighted comparisons (Davidson ties, prior 0.01)';
COMMENT ON AGGREGATE pluralrm.btl_items(anycompatible, anycompatible, float8, float8, pluralrm.items_options) IS
'Fit item strengths to weighted comparisons with the given settings';
COMMENT ON AGGREGATE pluralrm.btl_items(anycompatible, anycompatible, float8, float8, anyelement, pluralrm.items_options) IS
'Fit item strengths to weighted comparisons by raters; a bootstrap resamples raters';

CREATE FUNCTION pluralrm.item_strengths(model pluralrm.items_model)
RETURNS TABLE (item text, strength float8, se float8, lower float8,
               upper float8, wins float8, losses float8, ties float8,
               component integer)
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT u.item, u.strength, u.se, u.lower, u.upper, u.wins, u.losses,
           u.ties, u.component
      FROM unnest(model.item, model.strength, model.se, model.lower,
                  model.upper, model.wins, model.losses, model.ties,
                  model.component)
           AS u(item, strength, se, lower, upper, wins, losses, ties,
                component)
$$;
COMMENT ON FUNCTION pluralrm.item_strengths(pluralrm.items_model) IS
'One row per item of a btl_items fit: strength on the log scale, its standard error and bootstrap interval, and the weight of its wins, losses and ties';
-- Synthetic comparisons with known structure: groups, noise, re-asks and
-- planted rater kinds

CREATE FUNCTION pluralrm.synthetic_comparisons_support(internal)
RETURNS internal AS 'MODULE_PATHNAME', 'synthetic_comparisons_support'
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION pluralrm.synthetic_comparisons_support(internal) IS
'Planner support of synthetic_comparisons: estimates its rows as users x comparisons_per_user x reasks';

-- IMMUTABLE: the rows are a function of the arguments alone (the generator
-- has its own seeded stream and reads no table or setting). The planner
-- never folds a set-returning call into a constant, so this costs nothing.
CREATE FUNCTION pluralrm.synthetic_comparisons(
    users integer DEFAULT 1000,
    comparisons_per_user integer DEFAULT 20,
    d integer DEFAULT 8,
    group_shares float8[] DEFAULT '{1}',
    group_weights float8[] DEFAULT NULL,
    agreement float8[] DEFAULT NULL,
    scale float8 DEFAULT 2,
    noise float8 DEFAULT 0,
    seed bigint DEFAULT 0,
    reasks integer DEFAULT 1,
    non_attitude_share float8 DEFAULT 0,
    constructed_share float8 DEFAULT 0)
RETURNS TABLE (
    comparison_id bigint,
    user_id bigint,
    group_id integer,
    pair_id bigint,
    ask integer,
    condition integer,
    chosen float8[],
    rejected float8[],
    kind text)
AS 'MODULE_PATHNAME', 'synthetic_comparisons'
LANGUAGE C IMMUTABLE PARALLEL SAFE
SUPPORT pluralrm.synthetic_comparisons_support;
COMMENT ON FUNCTION pluralrm.synthetic_comparisons(integer, integer, integer, float8[], float8[], float8[], float8, float8, bigint, integer, float8, float8) IS
'Comparisons drawn from known true reward vectors per group (BTL labels), with label noise, re-asks in alternating presentation order and planted non-attitude and constructed raters; the same arguments give the same rows';
-- Consistency of re-asked comparisons: stable preferences, non-attitudes
-- and constructed answers

CREATE TYPE pluralrm.consistency AS (
    asks bigint,
    pairs bigint,
    pairs_reasked bigint,
    inconsistent_pairs bigint,
    minority_answers bigint,
    agreement float8,
    first_shown_rate float8,
    p_value_condition float8,
    p_value_stable float8,
    p_value_non_attitude float8,
    kind text,
    weight float8,
    skipped bigint
);
COMMENT ON TYPE pluralrm.consistency IS
'How consistently a rater (or a rater on one pair) answered re-asked pairs: counts, answers against their pair''s majority, test-retest agreement, share choosing the first shown, the p-values of the three tests, the kind (stable, non_attitude, constructed or insufficient) and the weight to fit with';

CREATE FUNCTION pluralrm.rater_consistency_transfn(internal, bigint, integer, boolean)
RETURNS internal AS 'MODULE_PATHNAME', 'rater_consistency_transfn'
LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION pluralrm.rater_consistency_transfn(internal, bigint, integer, boolean, float8, float8)
RETURNS internal AS 'MODULE_PATHNAME', 'rater_consistency_transfn'
LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION pluralrm.pair_consistency_transfn(internal, integer, boolean)
RETURNS internal AS 'MODULE_PATHNAME', 'pair_consistency_transfn'
LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION pluralrm.pair_consistency_transfn(internal, integer, boolean, float8, float8)
RETURNS internal AS 'MODULE_PATHNAME', 'pair_consistency_transfn'
LANGUAGE C PARALLEL SAFE;

CREATE FUNCTION pluralrm.consistency_combinefn(internal, internal)
RETURNS internal AS 'MODULE_PATHNAME', 'consistency_combinefn'
LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION pluralrm.consistency_serializefn(internal)
RETURNS bytea AS 'MODULE_PATHNAME', 'consistency_serializefn'
LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION pluralrm.consistency_deserializefn(bytea, internal)
RETURNS internal AS 'MODULE_PATHNAME', 'consistency_deserializefn'
LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION pluralrm.consistency_finalfn(internal)
RETURNS pluralrm.consistency AS 'MODULE_PATHNAME', 'consistency_finalfn'
LANGUAGE C PARALLEL SAFE;

COMMENT ON FUNCTION pluralrm.rater_consistency_transfn(internal, bigint, integer, boolean) IS
'Transition function of rater_consistency';
COMMENT ON FUNCTION pluralrm.rater_consistency_transfn(internal, bigint, integer, boolean, float8, float8) IS
'Transition function of rater_consistency';
COMMENT ON FUNCTION pluralrm.pair_consistency_transfn(internal, integer, boolean) IS
'Transition function of pair_consistency';
COMMENT ON FUNCTION pluralrm.pair_consistency_transfn(internal, integer, boolean, float8, float8) IS
'Transition function of pair_consistency';
COMMENT ON FUNCTION pluralrm.consistency_combinefn(internal, internal) IS
'Combine function of rater_consistency and pair_consistency';
COMMENT ON FUNCTION pluralrm.consistency_serializefn(internal) IS
'Serialize function of rater_consistency and pair_consistency';
COMMENT ON FUNCTION pluralrm.consistency_deserializefn(bytea, internal) IS
'Deserialize function of rater_consistency and pair_consistency';
COMMENT ON FUNCTION pluralrm.consistency_finalfn(internal) IS
'Final function of rater_consistency and pair_consistency: runs the tests';

CREATE AGGREGATE pluralrm.rater_consistency(pair_id bigint, condition integer,
                                            chose_first boolean) (
    SFUNC = pluralrm.rater_consistency_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.consistency_combinefn,
    SERIALFUNC = pluralrm.consistency_serializefn,
    DESERIALFUNC = pluralrm.consistency_deserializefn,
    FINALFUNC = pluralrm.consistency_finalfn, PARALLEL = SAFE);
CREATE AGGREGATE pluralrm.rater_consistency(pair_id bigint, condition integer,
                                            chose_first boolean, alpha float8,
                                            tremble float8) (
    SFUNC = pluralrm.rater_consistency_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.consistency_combinefn,
    SERIALFUNC = pluralrm.consistency_serializefn,
    DESERIALFUNC = pluralrm.consistency_deserializefn,
    FINALFUNC = pluralrm.consistency_finalfn, PARALLEL = SAFE);
CREATE AGGREGATE pluralrm.pair_consistency(condition integer,
                                           chose_first boolean) (
    SFUNC = pluralrm.pair_consistency_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.consistency_combinefn,
    SERIALFUNC = pluralrm.consistency_serializefn,
    DESERIALFUNC = pluralrm.consistency_deserializefn,
    FINALFUNC = pluralrm.consistency_finalfn, PARALLEL = SAFE);
CREATE AGGREGATE pluralrm.pair_consistency(condition integer,
                                           chose_first boolean, alpha float8,
                                           tremble float8) (
    SFUNC = pluralrm.pair_consistency_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.consistency_combinefn,
    SERIALFUNC = pluralrm.consistency_serializefn,
    DESERIALFUNC = pluralrm.consistency_deserializefn,
    FINALFUNC = pluralrm.consistency_finalfn, PARALLEL = SAFE);

COMMENT ON AGGREGATE pluralrm.rater_consistency(bigint, integer, boolean) IS
'Classify a rater (use with GROUP BY rater) from re-asked pairs as stable, non_attitude, constructed or insufficient, with alpha 0.01 and tremble 0.05; condition 0 means response a was shown first, 1 that response b was';
COMMENT ON AGGREGATE pluralrm.rater_consistency(bigint, integer, boolean, float8, float8) IS
'Classify a rater (use with GROUP BY rater) from re-asked pairs, with a given level alpha for each test and tremble (a stable rater''s share of contrary answers)';
COMMENT ON AGGREGATE pluralrm.pair_consistency(integer, boolean) IS
'Classify one rater''s answers to one pair (use with GROUP BY rater, pair) with alpha 0.01 and tremble 0.05';
COMMENT ON AGGREGATE pluralrm.pair_consistency(integer, boolean, float8, float8) IS
'Classify one rater''s answers to one pair (use with GROUP BY rater, pair) with a given alpha and tremble';
-- Recipes and refits: a model remembers how it was fitted and is refitted
-- by name, from cron or by hand

CREATE TABLE pluralrm.model_recipes (
    name text PRIMARY KEY REFERENCES pluralrm.models (name)
        ON UPDATE CASCADE ON DELETE CASCADE,
    kind text NOT NULL
        CHECK (kind IN ('btl', 'mixture', 'mixture_select', 'factor')),
    source regclass,
    query text,
    user_column name,
    chosen_column name NOT NULL,
    rejected_column name NOT NULL,
    weight_column name,
    params jsonb NOT NULL,
    keep_versions integer CHECK (keep_versions >= 1),
    defined_by regrole NOT NULL,
    defined_at timestamptz NOT NULL,
    CHECK ((source IS NULL) <> (query IS NULL)),
    CHECK (kind = 'btl' OR user_column IS NOT NULL)
);
COMMENT ON TABLE pluralrm.model_recipes IS
'How each model is refitted: the fit aggregate (kind), where its comparisons come from (a table or view, or a query), the columns and every parameter; written by define_model';
COMMENT ON COLUMN pluralrm.model_recipes.source IS
'Table or view the comparisons are read from (NULL when query is set)';
COMMENT ON COLUMN pluralrm.model_recipes.query IS
'Query the comparisons are read from, with schema-qualified table names (NULL when source is set)';
COMMENT ON COLUMN pluralrm.model_recipes.params IS
'Every parameter of the fit, defaults filled in: l2, k or k_max, restarts, seed, prior_strength, locked, the solver settings tolerance, max_iterations and solver, and allow_unconverged';
COMMENT ON COLUMN pluralrm.model_recipes.keep_versions IS
'Versions refit keeps (the newest ones, and always the current one); NULL means the setting pluralrm.keep_versions, or 5';
COMMENT ON COLUMN pluralrm.model_recipes.defined_by IS
'Role that last wrote the recipe; refit runs it only for a caller whose privileges this role holds';

SELECT pg_catalog.pg_extension_config_dump('pluralrm.model_recipes', '');

-- Record who wrote a recipe and when, whatever the writer put there
CREATE FUNCTION pluralrm.model_recipes_stamp()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    NEW.defined_by := (SELECT r.oid FROM pg_catalog.pg_roles r
                        WHERE r.rolname = current_user);
    NEW.defined_at := pg_catalog.now();
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION pluralrm.model_recipes_stamp() IS
'Trigger: stamp a written recipe with the writing role and the time';

CREATE TRIGGER model_recipes_stamp
    BEFORE INSERT OR UPDATE ON pluralrm.model_recipes
    FOR EACH ROW EXECUTE FUNCTION pluralrm.model_recipes_stamp();

-- The aggregate query a recipe runs, from its stored parts
CREATE FUNCTION pluralrm.refit_query(name text)
RETURNS text
LANGUAGE plpgsql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    r pluralrm.model_recipes;
    p jsonb;
    weight text;
    fit text;
    src text;
BEGIN
    SELECT * INTO r FROM pluralrm.model_recipes mr
     WHERE mr.name = refit_query.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model "%" has no recipe', name
            USING ERRCODE = 'undefined_object',
                  HINT = 'Record one with pluralrm.define_model.';
    END IF;
    p := r.params;
    weight := CASE WHEN r.weight_column IS NULL THEN '1.0::float8'
                   ELSE format('src.%I', r.weight_column) END;

    IF r.kind = 'btl' THEN
        fit := format('pluralrm.btl_fit(src.%I, src.%I, %s, %L::float8)',
                      r.chosen_column, r.rejected_column, weight,
                      p ->> 'l2');
    ELSIF r.kind IN ('mixture', 'mixture_select') THEN
        fit := format('pluralrm.%s(src.%I, src.%I, src.%I, %L::integer, %s, '
                      '%L::float8, %L::integer, %L::bigint)',
                      CASE r.kind WHEN 'mixture' THEN 'mixture_fit'
                                  ELSE 'mixture_select' END,
                      r.user_column, r.chosen_column, r.rejected_column,
                      coalesce(p ->> 'k', p ->> 'k_max'), weight,
                      p ->> 'l2', p ->> 'restarts', p ->> 'seed');
    ELSE
        fit := format('pluralrm.factor_fit(src.%I, src.%I, src.%I, '
                      '%L::integer, %s, %L::float8, %L::float8, '
                      '%L::integer[])',
                      r.user_column, r.chosen_column, r.rejected_column,
                      p ->> 'k', weight, p ->> 'l2', p ->> 'prior_strength',
                      (SELECT coalesce(array_agg(e::integer), '{}')::text
                         FROM jsonb_array_elements_text(p -> 'locked') e));
    END IF;

    -- regclass prints a quoted name, qualified unless in pg_catalog
    src := CASE WHEN r.source IS NOT NULL THEN r.source::text
                ELSE format('(%s)', r.query) END;
    RETURN format('SELECT %s FROM %s AS src', fit, src);
END
$$;
COMMENT ON FUNCTION pluralrm.refit_query(text) IS
'The fit query refit runs for a model (run it yourself to fit without saving)';

-- Record (or replace) how a model is fitted; refit then fits it by name
CREATE FUNCTION pluralrm.define_model(name text, kind text,
                                      source regclass DEFAULT NULL,
                                      query text DEFAULT NULL,
                                      user_column name DEFAULT NULL,
                                      chosen_column name DEFAULT 'chosen',
                                      rejected_column name DEFAULT 'rejected',
                                      weight_column name DEFAULT NULL,
                                      params jsonb DEFAULT '{}',
                                      keep_versions integer DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    allowed text[];
    required text;
    bad text;
    full_params jsonb;
    saved jsonb;
BEGIN
    IF name IS NULL OR name = '' THEN
        RAISE EXCEPTION 'model name must not be empty'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF kind IS NULL OR kind NOT IN ('btl', 'mixture', 'mixture_select',
                                    'factor') THEN
        RAISE EXCEPTION 'unknown model kind "%"', kind
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use btl, mixture, mixture_select or factor.';
    END IF;
    IF (source IS NULL) = (query IS NULL) THEN
        RAISE EXCEPTION 'give exactly one of source and query'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'source names a table or view; query is a SELECT '
                         'with schema-qualified table names.';
    END IF;
    IF source IS NOT NULL AND EXISTS (
        SELECT 1 FROM pg_catalog.pg_class c
         WHERE c.oid = source AND c.relpersistence = 't') THEN
        RAISE EXCEPTION 'source "%" is a temporary table', source
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A refit in another session could not read it.';
    END IF;
    IF kind <> 'btl' AND user_column IS NULL THEN
        RAISE EXCEPTION 'a % model needs user_column', kind
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF params IS NULL OR jsonb_typeof(params) <> 'object' THEN
        RAISE EXCEPTION 'params must be a JSON object'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF keep_versions < 1 THEN
        RAISE EXCEPTION 'keep_versions must be at least 1, not %',
            keep_versions
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- the parameters each kind takes; anything else is a typo
    allowed := CASE kind
        WHEN 'btl' THEN '{l2}'
        WHEN 'mixture' THEN '{k,l2,restarts,seed}'
        WHEN 'mixture_select' THEN '{k_max,l2,restarts,seed}'
        ELSE '{k,l2,prior_strength,locked}' END::text[]
        || '{tolerance,max_iterations,solver,allow_unconverged}'::text[];
    SELECT string_agg(key, ', ' ORDER BY key) INTO bad
      FROM jsonb_object_keys(params) key
     WHERE key <> ALL (allowed);
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'unknown parameter for a % model: %', kind, bad
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('A %s model takes %s.', kind,
                                array_to_string(allowed, ', '));
    END IF;
    required := CASE kind WHEN 'btl' THEN NULL
                          WHEN 'mixture_select' THEN 'k_max' ELSE 'k' END;
    IF required IS NOT NULL AND NOT params ? required THEN
        RAISE EXCEPTION 'a % model needs the parameter %', kind, required
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('Pass params => ''{"%s": 3}''.', required);
    END IF;
    SELECT string_agg(key, ', ' ORDER BY key) INTO bad
      FROM jsonb_each(params) e(key, value)
     WHERE CASE
        WHEN key IN ('k', 'k_max', 'restarts', 'max_iterations') THEN
            jsonb_typeof(value) <> 'number' OR value::text !~ '^[0-9]+$'
            OR value::numeric < 1 OR value::numeric > 2147483647
        WHEN key = 'seed' THEN
            jsonb_typeof(value) <> 'number' OR value::text !~ '^-?[0-9]+$'
        WHEN key IN ('l2', 'prior_strength', 'tolerance') THEN
            jsonb_typeof(value) <> 'number' OR value::numeric < 0
        WHEN key = 'allow_unconverged' THEN jsonb_typeof(value) <> 'boolean'
        WHEN key = 'solver' THEN jsonb_typeof(value) <> 'string'
        WHEN key = 'locked' THEN jsonb_typeof(value) <> 'array'
        ELSE false END;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'parameter % has the wrong type or sign', bad
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'k, k_max, restarts and max_iterations are '
                         'positive integers, seed an integer, l2, '
                         'prior_strength and tolerance numbers >= 0, '
                         'allow_unconverged a boolean, solver a string and '
                         'locked an array of component numbers.';
    END IF;

    -- defaults made explicit, solver settings taken from this session
    PERFORM pluralrm.matrix_rows('{{0}}');  -- loads the settings
    full_params := jsonb_build_object(
            'l2', 1,
            'allow_unconverged', false,
            'tolerance', current_setting('pluralrm.tolerance')::float8,
            'max_iterations',
            current_setting('pluralrm.max_iterations')::integer,
            'solver', current_setting('pluralrm.solver'))
        || CASE kind
            WHEN 'btl' THEN '{}'::jsonb
            WHEN 'factor' THEN '{"prior_strength": 1, "locked": []}'::jsonb
            ELSE '{"restarts": 10, "seed": 0}'::jsonb END
        || params;
    -- set_config rejects a bad solver or out-of-range setting
    SELECT jsonb_object_agg(s, current_setting('pluralrm.' || s)) INTO saved
      FROM unnest('{tolerance,max_iterations,solver}'::text[]) s;
    PERFORM set_config('pluralrm.' || s, full_params ->> s, true)
       FROM unnest('{tolerance,max_iterations,solver}'::text[]) s;
    PERFORM set_config('pluralrm.' || s, saved ->> s, true)
       FROM unnest('{tolerance,max_iterations,solver}'::text[]) s;

    INSERT INTO pluralrm.models AS m (name) VALUES (define_model.name)
        ON CONFLICT (name) DO NOTHING;
    INSERT INTO pluralrm.model_recipes AS mr
        (name, kind, source, query, user_column, chosen_column,
         rejected_column, weight_column, params, keep_versions)
    VALUES (define_model.name, kind, source, query, user_column,
            chosen_column, rejected_column, weight_column, full_params,
            keep_versions)
    ON CONFLICT (name) DO UPDATE
       SET kind = EXCLUDED.kind, source = EXCLUDED.source,
           query = EXCLUDED.query, user_column = EXCLUDED.user_column,
           chosen_column = EXCLUDED.chosen_column,
           rejected_column = EXCLUDED.rejected_column,
           weight_column = EXCLUDED.weight_column,
           params = EXCLUDED.params,
           keep_versions = EXCLUDED.keep_versions;

    -- parse and plan the fit query once, reading no rows, so a wrong
    -- column, type or table name fails now rather than at 3 a.m.
    BEGIN
        EXECUTE format('SELECT 1 FROM (%s) AS fit WHERE false',
                       pluralrm.refit_query(name));
    EXCEPTION WHEN undefined_table THEN
        GET STACKED DIAGNOSTICS bad = MESSAGE_TEXT;
        RAISE EXCEPTION '%', bad
            USING ERRCODE = 'undefined_table',
                  HINT = 'Schema-qualify the tables of a query: refit runs '
                         'it with search_path = pg_catalog, pg_temp.';
    END;
END
$$;
COMMENT ON FUNCTION pluralrm.define_model(text, text, regclass, text, name, name, name, name, jsonb, integer) IS
'Record how a model is fitted (aggregate kind, source table or query, columns, parameters, versions to keep) so that CALL pluralrm.refit(name) can refit it';

-- Refit a model from its recipe: a new current version, old ones pruned
CREATE PROCEDURE pluralrm.refit(name text, INOUT version integer DEFAULT NULL)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    r pluralrm.model_recipes;
    fit text;
    keep integer;
    saved jsonb;
    started timestamptz;
    allow boolean;
    b pluralrm.btl_model;
    mx pluralrm.mixture_model;
    f pluralrm.factor_model;
BEGIN
    IF NOT (has_table_privilege('pluralrm.model_versions', 'INSERT')
            AND has_table_privilege('pluralrm.user_coefficients', 'INSERT')
            AND has_table_privilege('pluralrm.models', 'UPDATE')
            AND has_table_privilege('pluralrm.model_recipes', 'UPDATE')) THEN
        RAISE EXCEPTION 'permission denied to refit model "%"', name
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Refitting needs the grants listed under '
                         '"Privileges" in docs/operations.md.';
    END IF;

    -- one refit of a model at a time (the recipe's lock, taken first so
    -- that refits queue there); the model cannot be dropped or renamed
    -- meanwhile, but set_current_version still works
    SELECT * INTO r FROM pluralrm.model_recipes mr
     WHERE mr.name = refit.name FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model "%" has no recipe', name
            USING ERRCODE = 'undefined_object',
                  HINT = 'Record one with pluralrm.define_model.';
    END IF;
    PERFORM 1 FROM pluralrm.models m WHERE m.name = refit.name
        FOR KEY SHARE;
    -- the recipe's SQL runs with our rights: its writer must hold them
    IF NOT coalesce(pg_has_role(r.defined_by, current_user, 'USAGE'),
                    false) THEN
        RAISE EXCEPTION 'recipe of model "%" was written by role %, which '
                        'does not have the privileges of role %',
                        name, r.defined_by, current_user
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'refit runs the recipe''s query with the rights '
                           'of the caller.',
                  HINT = format('Refit as %s (SET ROLE, or schedule the '
                                'cron job with that username).',
                                r.defined_by);
    END IF;
    IF r.source IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = r.source) THEN
        RAISE EXCEPTION 'the source table of model "%" no longer exists',
            name
            USING ERRCODE = 'undefined_table',
                  HINT = 'Point the recipe at a new source with '
                         'pluralrm.define_model.';
    END IF;

    -- the recipe's solver settings for this fit only
    PERFORM pluralrm.matrix_rows('{{0}}');  -- loads the settings
    SELECT jsonb_object_agg(s, current_setting('pluralrm.' || s)) INTO saved
      FROM unnest('{tolerance,max_iterations,solver}'::text[]) s;
    PERFORM set_config('pluralrm.' || s, r.params ->> s, true)
       FROM unnest('{tolerance,max_iterations,solver}'::text[]) s;

    fit := pluralrm.refit_query(name);
    started := clock_timestamp();
    IF r.kind = 'btl' THEN
        b := pluralrm.refit_btl(fit);
    ELSIF r.kind = 'factor' THEN
        f := pluralrm.refit_factor(fit);
    ELSE
        mx := pluralrm.refit_mixture(fit);
    END IF;
    IF b IS NULL AND mx IS NULL AND f IS NULL THEN
        RAISE EXCEPTION 'the source of model "%" has no comparisons', name
            USING ERRCODE = 'no_data_found',
                  HINT = 'The previous version stays current.';
    END IF;
    allow := (r.params ->> 'allow_unconverged')::boolean;
    IF r.kind = 'btl' THEN
        version := pluralrm.save_model(name, b, allow);
    ELSIF r.kind = 'factor' THEN
        version := pluralrm.save_model(name, f, allow);
    ELSE
        version := pluralrm.save_model(name, mx, allow);
    END IF;

    PERFORM set_config('pluralrm.' || s, saved ->> s, true)
       FROM unnest('{tolerance,max_iterations,solver}'::text[]) s;

    -- the version remembers the whole recipe it came from
    UPDATE pluralrm.model_versions mv
       SET hyperparameters = mv.hyperparameters || jsonb_build_object(
               'recipe', jsonb_strip_nulls(jsonb_build_object(
                   'kind', r.kind, 'source', r.source::text,
                   'query', r.query, 'user_column', r.user_column,
                   'chosen_column', r.chosen_column,
                   'rejected_column', r.rejected_column,
                   'weight_column', r.weight_column,
                   'defined_by', r.defined_by::text,
                   'defined_at', r.defined_at)) || r.params),
           metrics = mv.metrics || jsonb_build_object(
               'refit_ms', round((extract(epoch FROM clock_timestamp()
                                          - started) * 1000)::numeric, 1))
     WHERE mv.name = refit.name AND mv.version = refit.version;

    keep := coalesce(r.keep_versions,
                     nullif(current_setting('pluralrm.keep_versions', true),
                            '')::integer,
                     5);
    PERFORM pluralrm.prune_versions(name, keep);
END
$$;
COMMENT ON PROCEDURE pluralrm.refit(text, integer) IS
'Refit a model from its recipe with the caller''s rights, save the fit as the new current version in the same transaction, and delete versions beyond the newest keep_versions (never the current one); returns the new version';

-- Run a recipe's BTL fit query (RETURN QUERY may use a parallel plan)
CREATE FUNCTION pluralrm.refit_btl(fit text)
RETURNS SETOF pluralrm.btl_model
LANGUAGE plpgsql STRICT
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY EXECUTE format('SELECT (s.fit).* FROM (%s) AS s(fit)', fit);
END
$$;
COMMENT ON FUNCTION pluralrm.refit_btl(text) IS
'Internal to refit: run a btl_fit query from refit_query';

-- Run a recipe's mixture fit query
CREATE FUNCTION pluralrm.refit_mixture(fit text)
RETURNS SETOF pluralrm.mixture_model
LANGUAGE plpgsql STRICT
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY EXECUTE format('SELECT (s.fit).* FROM (%s) AS s(fit)', fit);
END
$$;
COMMENT ON FUNCTION pluralrm.refit_mixture(text) IS
'Internal to refit: run a mixture_fit or mixture_select query from refit_query';

-- Run a recipe's factor fit query
CREATE FUNCTION pluralrm.refit_factor(fit text)
RETURNS SETOF pluralrm.factor_model
LANGUAGE plpgsql STRICT
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY EXECUTE format('SELECT (s.fit).* FROM (%s) AS s(fit)', fit);
END
$$;
COMMENT ON FUNCTION pluralrm.refit_factor(text) IS
'Internal to refit: run a factor_fit query from refit_query';
-- Multi-pass fitting for tables larger than memory: one aggregate pass per
-- solver iteration, with plain float8[] states that combine by addition

CREATE TYPE pluralrm.multipass_group AS (
    group_key text,
    solver float8[]
);
COMMENT ON TYPE pluralrm.multipass_group IS
'Internal state of the multi-pass drivers: one group''s solver between passes';

CREATE TYPE pluralrm.multipass_user AS (
    group_key text,
    user_id text,
    responsibilities float8[]
);
COMMENT ON TYPE pluralrm.multipass_user IS
'Internal state of mixture_fit_multipass: one user''s responsibilities between passes';

-- Linear BTL: one pass per Newton iteration

CREATE FUNCTION pluralrm.btl_pass_transfn(float8[], float8[], float8[], float8[])
RETURNS float8[] AS 'MODULE_PATHNAME', 'btl_pass_transfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION pluralrm.btl_pass_transfn(float8[], float8[], float8[], float8[], float8)
RETURNS float8[] AS 'MODULE_PATHNAME', 'btl_pass_transfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION pluralrm.btl_pass_combinefn(float8[], float8[])
RETURNS float8[] AS 'MODULE_PATHNAME', 'btl_pass_combinefn'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION pluralrm.btl_pass_transfn(float8[], float8[], float8[], float8[]) IS
'Transition function of btl_pass';
COMMENT ON FUNCTION pluralrm.btl_pass_transfn(float8[], float8[], float8[], float8[], float8) IS
'Transition function of btl_pass with weights';
COMMENT ON FUNCTION pluralrm.btl_pass_combinefn(float8[], float8[]) IS
'Combine function of btl_pass: adds two partial states made at the same point';
CREATE FUNCTION pluralrm.btl_pass_final(float8[])
RETURNS float8[] AS 'MODULE_PATHNAME', 'btl_pass_final'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION pluralrm.btl_pass_final(float8[]) IS
'Final function of btl_pass: adds the rows still in the state''s block to its Hessian and drops the block';

CREATE AGGREGATE pluralrm.btl_pass(w float8[], chosen float8[], rejected float8[]) (
    SFUNC = pluralrm.btl_pass_transfn, STYPE = float8[],
    FINALFUNC = pluralrm.btl_pass_final,
    COMBINEFUNC = pluralrm.btl_pass_combinefn, PARALLEL = SAFE);
CREATE AGGREGATE pluralrm.btl_pass(w float8[], chosen float8[], rejected float8[],
                                   weight float8) (
    SFUNC = pluralrm.btl_pass_transfn, STYPE = float8[],
    FINALFUNC = pluralrm.btl_pass_final,
    COMBINEFUNC = pluralrm.btl_pass_combinefn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.btl_pass(float8[], float8[], float8[]) IS
'One pass of multi-pass BTL fitting: the log-likelihood, gradient and Hessian at w (NULL for zeros) as a float8[] that adds up across partial aggregates';
COMMENT ON AGGREGATE pluralrm.btl_pass(float8[], float8[], float8[], float8) IS
'One pass of multi-pass BTL fitting over weighted comparisons: the log-likelihood, gradient and Hessian at w (NULL for zeros)';

CREATE FUNCTION pluralrm.btl_newton_step(pass float8[], l2 float8)
RETURNS float8[] AS 'MODULE_PATHNAME', 'btl_newton_step'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION pluralrm.btl_newton_step(float8[], float8) IS
'Newton direction -(H + l2 I)^-1 (g + l2 w) of the penalized BTL objective at the point of a btl_pass state';

CREATE FUNCTION pluralrm.btl_multipass_start(pass float8[], l2 float8,
                                             tol float8, max_iter integer)
RETURNS float8[] AS 'MODULE_PATHNAME', 'btl_multipass_start'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION pluralrm.btl_multipass_start(float8[], float8, float8, integer) IS
'Internal to btl_fit_multipass: a solver from the first pass, made at w = 0';

CREATE FUNCTION pluralrm.btl_multipass_update(solver float8[], pass float8[])
RETURNS float8[] AS 'MODULE_PATHNAME', 'btl_multipass_update'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION pluralrm.btl_multipass_update(float8[], float8[]) IS
'Internal to btl_fit_multipass: judge the point of a pass and take the next Newton step';

CREATE FUNCTION pluralrm.btl_multipass_model(solver float8[], solve_ms float8)
RETURNS pluralrm.btl_model AS 'MODULE_PATHNAME', 'btl_multipass_model'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION pluralrm.btl_multipass_model(float8[], float8) IS
'Internal to btl_fit_multipass: the btl_model of a finished solver';

-- Mixtures: an E-pass (grouped by user) and an M-pass per EM iteration

CREATE FUNCTION pluralrm.mixture_user_pass_transfn(float8[], float8[], float8[], float8[])
RETURNS float8[] AS 'MODULE_PATHNAME', 'mixture_user_pass_transfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION pluralrm.mixture_user_pass_transfn(float8[], float8[], float8[], float8[], float8)
RETURNS float8[] AS 'MODULE_PATHNAME', 'mixture_user_pass_transfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION pluralrm.mixture_user_pass_combinefn(float8[], float8[])
RETURNS float8[] AS 'MODULE_PATHNAME', 'mixture_user_pass_combinefn'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION pluralrm.mixture_user_pass_transfn(float8[], float8[], float8[], float8[]) IS
'Transition function of mixture_user_pass';
COMMENT ON FUNCTION pluralrm.mixture_user_pass_transfn(float8[], float8[], float8[], float8[], float8) IS
'Transition function of mixture_user_pass with weights';
COMMENT ON FUNCTION pluralrm.mixture_user_pass_combinefn(float8[], float8[]) IS
'Combine function of mixture_user_pass: adds two partial states of one user';

CREATE AGGREGATE pluralrm.mixture_user_pass(base_rewards float8[], chosen float8[],
                                            rejected float8[]) (
    SFUNC = pluralrm.mixture_user_pass_transfn, STYPE = float8[],
    COMBINEFUNC = pluralrm.mixture_user_pass_combinefn, PARALLEL = SAFE);
CREATE AGGREGATE pluralrm.mixture_user_pass(base_rewards float8[], chosen float8[],
                                            rejected float8[], weight float8) (
    SFUNC = pluralrm.mixture_user_pass_transfn, STYPE = float8[],
    COMBINEFUNC = pluralrm.mixture_user_pass_combinefn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.mixture_user_pass(float8[], float8[], float8[]) IS
'E-pass of multi-pass mixture fitting, grouped by user: the user''s log-likelihood under each of the k x d base rewards';
COMMENT ON AGGREGATE pluralrm.mixture_user_pass(float8[], float8[], float8[], float8) IS
'E-pass of multi-pass mixture fitting over weighted comparisons, grouped by user: the user''s log-likelihood under each component';

CREATE FUNCTION pluralrm.mixture_posterior(user_pass float8[], mixing float8[])
RETURNS float8[] AS 'MODULE_PATHNAME', 'mixture_posterior'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION pluralrm.mixture_posterior(float8[], float8[]) IS
'A user''s responsibilities (posterior probability of each component) from their mixture_user_pass state and the mixing weights';

CREATE FUNCTION pluralrm.mixture_estep_transfn(float8[], float8[], float8[])
RETURNS float8[] AS 'MODULE_PATHNAME', 'mixture_estep_transfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION pluralrm.mixture_estep_combinefn(float8[], float8[])
RETURNS float8[] AS 'MODULE_PATHNAME', 'mixture_estep_combinefn'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION pluralrm.mixture_estep_transfn(float8[], float8[], float8[]) IS
'Transition function of mixture_estep';
COMMENT ON FUNCTION pluralrm.mixture_estep_combinefn(float8[], float8[]) IS
'Combine function of mixture_estep: adds two partial states';
CREATE AGGREGATE pluralrm.mixture_estep(user_pass float8[], mixing float8[]) (
    SFUNC = pluralrm.mixture_estep_transfn, STYPE = float8[],
    COMBINEFUNC = pluralrm.mixture_estep_combinefn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.mixture_estep(float8[], float8[]) IS
'Summary of an E-pass over users: their number, comparisons, log-likelihood and the sums of their responsibilities';

CREATE FUNCTION pluralrm.mixture_pass_transfn(float8[], float8[], float8[], float8[], float8[])
RETURNS float8[] AS 'MODULE_PATHNAME', 'mixture_pass_transfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION pluralrm.mixture_pass_transfn(float8[], float8[], float8[], float8[], float8[], float8)
RETURNS float8[] AS 'MODULE_PATHNAME', 'mixture_pass_transfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION pluralrm.mixture_pass_combinefn(float8[], float8[])
RETURNS float8[] AS 'MODULE_PATHNAME', 'mixture_pass_combinefn'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION pluralrm.mixture_pass_transfn(float8[], float8[], float8[], float8[], float8[]) IS
'Transition function of mixture_pass';
COMMENT ON FUNCTION pluralrm.mixture_pass_transfn(float8[], float8[], float8[], float8[], float8[], float8) IS
'Transition function of mixture_pass with weights';
COMMENT ON FUNCTION pluralrm.mixture_pass_combinefn(float8[], float8[]) IS
'Combine function of mixture_pass: adds two partial states';
CREATE FUNCTION pluralrm.mixture_pass_final(float8[])
RETURNS float8[] AS 'MODULE_PATHNAME', 'mixture_pass_final'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION pluralrm.mixture_pass_final(float8[]) IS
'Final function of mixture_pass: adds the rows still in the state''s blocks to the Hessians and drops the blocks';

CREATE AGGREGATE pluralrm.mixture_pass(base_rewards float8[], responsibilities float8[],
                                       chosen float8[], rejected float8[]) (
    SFUNC = pluralrm.mixture_pass_transfn, STYPE = float8[],
    FINALFUNC = pluralrm.mixture_pass_final,
    COMBINEFUNC = pluralrm.mixture_pass_combinefn, PARALLEL = SAFE);
CREATE AGGREGATE pluralrm.mixture_pass(base_rewards float8[], responsibilities float8[],
                                       chosen float8[], rejected float8[],
                                       weight float8) (
    SFUNC = pluralrm.mixture_pass_transfn, STYPE = float8[],
    FINALFUNC = pluralrm.mixture_pass_final,
    COMBINEFUNC = pluralrm.mixture_pass_combinefn, PARALLEL = SAFE);
COMMENT ON AGGREGATE pluralrm.mixture_pass(float8[], float8[], float8[], float8[]) IS
'M-pass of multi-pass mixture fitting: every component''s gradient and Hessian weighted by the responsibilities of each row''s user';
COMMENT ON AGGREGATE pluralrm.mixture_pass(float8[], float8[], float8[], float8[], float8) IS
'M-pass of multi-pass mixture fitting over weighted comparisons: every component''s responsibility-weighted gradient and Hessian';

CREATE FUNCTION pluralrm.mixture_multipass_start(
    base_rewards float8[], mixing float8[], l2 float8, tol float8,
    max_iter integer, restarts integer, restarts_at_best integer,
    sampled_users integer)
RETURNS float8[] AS 'MODULE_PATHNAME', 'mixture_multipass_start'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION pluralrm.mixture_multipass_start(float8[], float8[], float8, float8, integer, integer, integer, integer) IS
'Internal to mixture_fit_multipass: a solver at a starting point';

CREATE FUNCTION pluralrm.mixture_multipass_judge(solver float8[], estep float8[])
RETURNS float8[] AS 'MODULE_PATHNAME', 'mixture_multipass_judge'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION pluralrm.mixture_multipass_judge(float8[], float8[]) IS
'Internal to mixture_fit_multipass: accept or shorten the last step from the summary of an E-pass, and test convergence';

CREATE FUNCTION pluralrm.mixture_multipass_step(solver float8[], mpass float8[])
RETURNS float8[] AS 'MODULE_PATHNAME', 'mixture_multipass_step'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION pluralrm.mixture_multipass_step(float8[], float8[]) IS
'Internal to mixture_fit_multipass: the generalized M-step (new mixing weights, one Newton step per component) from an M-pass';

CREATE FUNCTION pluralrm.mixture_multipass_model(solver float8[], user_ids text[],
                                                 responsibilities float8[],
                                                 solve_ms float8)
RETURNS pluralrm.mixture_model AS 'MODULE_PATHNAME', 'mixture_multipass_model'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION pluralrm.mixture_multipass_model(float8[], text[], float8[], float8) IS
'Internal to mixture_fit_multipass: the mixture_model of a finished solver';

CREATE FUNCTION pluralrm.multipass_next(solver float8[])
RETURNS text AS 'MODULE_PATHNAME', 'multipass_next'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION pluralrm.multipass_next(float8[]) IS
'Internal to the multi-pass drivers: what a solver waits for (pass, estep, mstep or done)';

CREATE FUNCTION pluralrm.multipass_point(solver float8[])
RETURNS float8[] AS 'MODULE_PATHNAME', 'multipass_point'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION pluralrm.multipass_point(float8[]) IS
'Internal to the multi-pass drivers: the point of a solver''s next pass (w, or k x d base rewards)';

CREATE FUNCTION pluralrm.multipass_mixing(solver float8[])
RETURNS float8[] AS 'MODULE_PATHNAME', 'multipass_mixing'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION pluralrm.multipass_mixing(float8[]) IS
'Internal to mixture_fit_multipass: the mixing weights of a solver''s next E-pass';

-- A column of the source as an expression on alias s, after checking it
CREATE FUNCTION pluralrm.multipass_column(source regclass, column_name text,
                                          argument text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF column_name IS NULL THEN
        RAISE EXCEPTION '% must not be NULL', argument
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                    WHERE a.attrelid = source AND a.attname = column_name
                      AND a.attnum > 0 AND NOT a.attisdropped) THEN
        RAISE EXCEPTION 'column "%" does not exist in %', column_name, source
            USING ERRCODE = 'undefined_column',
                  HINT = pg_catalog.format('%s names a column of the source.',
                                           argument);
    END IF;
    RETURN pg_catalog.format('s.%I', column_name);
END
$$;
COMMENT ON FUNCTION pluralrm.multipass_column(regclass, text, text) IS
'Internal to the multi-pass drivers: check that a column exists and return it quoted';

CREATE FUNCTION pluralrm.btl_fit_multipass(
    source regclass,
    chosen_column text DEFAULT 'chosen',
    rejected_column text DEFAULT 'rejected',
    weight_column text DEFAULT NULL,
    l2 float8 DEFAULT 1,
    group_column text DEFAULT NULL,
    tol float8 DEFAULT NULL,
    max_iter integer DEFAULT NULL)
RETURNS TABLE (group_key text, model pluralrm.btl_model, passes integer)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- the passes spend their time in C aggregates: JIT would only add its
-- compile time to every pass
SET jit = off
AS $$
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    g text;                 -- the group key of a row, as text
    cols text;              -- the arguments of btl_pass after the point
    keep text;              -- the rows that take part
    point text;             -- the point of a row's group in a pass
    pass_from text;         -- the source, joined to the points of the groups
    group_by text;
    groups pluralrm.multipass_group[];
    scans integer := 1;
    elapsed float8;
BEGIN
    IF l2 IS NULL OR NOT (l2 >= 0 AND l2 < 'Infinity') THEN
        RAISE EXCEPTION 'l2 must be a finite number >= 0, not %', l2
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    tol := coalesce(tol, pg_catalog.current_setting('pluralrm.tolerance', true)::float8,
                    1e-9);
    max_iter := coalesce(max_iter,
                         pg_catalog.current_setting('pluralrm.max_iterations', true)::integer,
                         100);
    g := CASE WHEN group_column IS NULL THEN '''''::text'
              ELSE pluralrm.multipass_column(source, group_column, 'group_column')
                   || '::text' END;
    keep := CASE WHEN group_column IS NULL THEN 'true' ELSE g || ' IS NOT NULL' END;
    cols := pluralrm.multipass_column(source, chosen_column, 'chosen_column')
            || ', ' || pluralrm.multipass_column(source, rejected_column, 'rejected_column')
            || CASE WHEN weight_column IS NULL THEN ''
                    ELSE ', ' || pluralrm.multipass_column(source, weight_column, 'weight_column')
                         || '::float8' END;

    -- the first pass, at w = 0, finds the groups and the gradient scale
    EXECUTE pg_catalog.format($q$
        SELECT pg_catalog.array_agg(ROW(p.g, pluralrm.btl_multipass_start(p.state, $1, $2, $3))::pluralrm.multipass_group
                                    ORDER BY p.g COLLATE "C")
          FROM (SELECT %1$s AS g, pluralrm.btl_pass(NULL::float8[], %2$s) AS state
                  FROM %3$s AS s
                 WHERE %4$s
                 GROUP BY 1) AS p$q$, g, cols, source, keep)
       INTO groups USING l2, tol, max_iter;

    -- Groups get their points from a join; without groups the one point is
    -- a parameter, which spares every row the join
    IF group_column IS NULL THEN
        point := '$2';
        pass_from := pg_catalog.format('%s AS s', source);
        group_by := '';
    ELSE
        point := 'cur.w';
        pass_from := pg_catalog.format($q$%s AS s
                           JOIN (SELECT u.group_key, pluralrm.multipass_point(u.solver) AS w
                                   FROM pg_catalog.unnest($1::pluralrm.multipass_group[]) AS u
                                  WHERE pluralrm.multipass_next(u.solver) = 'pass') AS cur
                             ON cur.group_key = %s$q$, source, g);
        group_by := 'GROUP BY 1';
    END IF;

    -- then one pass per Newton iteration (or step halving) of any group
    LOOP
        EXIT WHEN NOT EXISTS (SELECT 1 FROM pg_catalog.unnest(groups) AS c
                               WHERE pluralrm.multipass_next(c.solver) = 'pass');
        EXECUTE pg_catalog.format($q$
            SELECT pg_catalog.array_agg(ROW(c.group_key,
                       CASE WHEN pluralrm.multipass_next(c.solver) = 'pass'
                            THEN pluralrm.btl_multipass_update(c.solver, p.state)
                            ELSE c.solver END)::pluralrm.multipass_group
                       ORDER BY c.group_key COLLATE "C")
              FROM pg_catalog.unnest($1::pluralrm.multipass_group[]) AS c
              LEFT JOIN (SELECT %1$s AS g, pluralrm.btl_pass(%2$s, %3$s) AS state
                           FROM %4$s
                          %5$s) AS p
                ON p.g = c.group_key$q$, g, point, cols, pass_from, group_by)
           INTO groups
          USING groups, (SELECT pluralrm.multipass_point(c.solver)
                           FROM pg_catalog.unnest(groups) AS c LIMIT 1);
        scans := scans + 1;
    END LOOP;

    elapsed := 1000 * extract(epoch FROM pg_catalog.clock_timestamp() - started);
    RETURN QUERY
    SELECT CASE WHEN group_column IS NULL THEN NULL ELSE c.group_key END,
           pluralrm.btl_multipass_model(c.solver, elapsed), scans
      FROM pg_catalog.unnest(groups) AS c
     ORDER BY c.group_key COLLATE "C";
END
$$;
COMMENT ON FUNCTION pluralrm.btl_fit_multipass(regclass, text, text, text, float8, text, float8, integer) IS
'Fit a linear BTL model (per group with group_column) by Newton''s method with one aggregate pass over the source per iteration, for tables larger than memory; gives the answer of btl_fit';

CREATE FUNCTION pluralrm.mixture_fit_multipass(
    source regclass,
    k integer,
    user_column text DEFAULT 'user_id',
    chosen_column text DEFAULT 'chosen',
    rejected_column text DEFAULT 'rejected',
    weight_column text DEFAULT NULL,
    l2 float8 DEFAULT 1,
    group_column text DEFAULT NULL,
    tol float8 DEFAULT 1e-9,
    max_iter integer DEFAULT 500,
    restarts integer DEFAULT 10,
    seed bigint DEFAULT 0,
    start_users integer DEFAULT 2000,
    start_base_rewards float8[] DEFAULT NULL,
    start_mixing float8[] DEFAULT NULL)
RETURNS TABLE (group_key text, model pluralrm.mixture_model, passes integer)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    g text;                 -- the group key of a row, as text
    u text;                 -- the user of a row, as text
    cols text;              -- chosen, rejected [, weight]
    wt text;                -- the weight of a row for mixture_fit
    keep text;              -- the rows that take part
    point text;             -- the base rewards of a row's group in a pass
    estep_from text;        -- the source, joined to the points of the groups
    mstep_from text;
    keys text[];
    shares float8[];
    groups pluralrm.multipass_group[];
    mstep_users pluralrm.multipass_user[];
    done_users pluralrm.multipass_user[];
    final_users pluralrm.multipass_user[];
    scans integer := 0;
    elapsed float8;
BEGIN
    IF k IS NULL OR k < 1 OR k > 256 THEN
        RAISE EXCEPTION 'k must be between 1 and 256, not %', k
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF l2 IS NULL OR NOT (l2 > 0 AND l2 < 'Infinity') THEN
        RAISE EXCEPTION 'mixture fits need a finite l2 > 0, not %', l2
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF start_users IS NULL OR start_users < k THEN
        RAISE EXCEPTION 'start_users must be at least k = %, not %', k, start_users
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    g := CASE WHEN group_column IS NULL THEN '''''::text'
              ELSE pluralrm.multipass_column(source, group_column, 'group_column')
                   || '::text' END;
    u := pluralrm.multipass_column(source, user_column, 'user_column') || '::text';
    keep := u || ' IS NOT NULL'
            || CASE WHEN group_column IS NULL THEN '' ELSE ' AND ' || g || ' IS NOT NULL' END;
    wt := CASE WHEN weight_column IS NULL THEN '1::float8'
               ELSE pluralrm.multipass_column(source, weight_column, 'weight_column')
                    || '::float8' END;
    cols := pluralrm.multipass_column(source, chosen_column, 'chosen_column')
            || ', ' || pluralrm.multipass_column(source, rejected_column, 'rejected_column')
            || CASE WHEN weight_column IS NULL THEN '' ELSE ', ' || wt END;

    IF start_base_rewards IS NOT NULL THEN
        -- a given start for every group: one pass finds the groups
        EXECUTE pg_catalog.format($q$
            SELECT pg_catalog.array_agg(ROW(x.g, pluralrm.mixture_multipass_start(
                       $1, coalesce($2, pg_catalog.array_fill(1.0::float8 / $6, ARRAY[$6])),
                       $3, $4, $5, 0, 0, 0))::pluralrm.multipass_group
                       ORDER BY x.g COLLATE "C")
              FROM (SELECT DISTINCT %1$s AS g FROM %2$s AS s WHERE %3$s) AS x$q$,
            g, source, keep)
           INTO groups
          USING start_base_rewards, start_mixing, l2, tol, max_iter, k;
        scans := 1;
    ELSE
        -- users per group, then an in-memory fit on a hashed sample of
        -- about start_users of them starts each group
        EXECUTE pg_catalog.format($q$
            SELECT pg_catalog.array_agg(x.g ORDER BY x.g COLLATE "C"),
                   pg_catalog.array_agg(least(1.0, $1::float8 / x.users) ORDER BY x.g COLLATE "C")
              FROM (SELECT y.g, count(*) AS users
                      FROM (SELECT %1$s AS g, %2$s AS u FROM %3$s AS s
                             WHERE %4$s GROUP BY 1, 2) AS y
                     GROUP BY 1) AS x$q$, g, u, source, keep)
           INTO keys, shares USING start_users;
        EXECUTE pg_catalog.format($q$
            SELECT pg_catalog.array_agg(ROW(f.g, pluralrm.mixture_multipass_start(
                       (f.m).base_rewards, (f.m).mixing, $4, $5, $6,
                       (f.m).restarts, (f.m).restarts_at_best,
                       (f.m).users::integer))::pluralrm.multipass_group
                       ORDER BY f.g COLLATE "C")
              FROM (SELECT %1$s AS g,
                           pluralrm.mixture_fit(%2$s, %3$s, $3, %4$s, $4, $7, $8) AS m
                      FROM %5$s AS s
                      JOIN ROWS FROM (pg_catalog.unnest($1::text[]),
                                     pg_catalog.unnest($2::float8[])) AS sh(g, share)
                        ON sh.g = %1$s
                     WHERE %6$s
                       AND (pg_catalog.hashtextextended(%2$s, $8) & 9007199254740991)::float8
                           < sh.share * 9007199254740992.0
                     GROUP BY 1) AS f$q$,
            g, u, pluralrm.multipass_column(source, chosen_column, 'chosen_column')
                  || ', ' || pluralrm.multipass_column(source, rejected_column, 'rejected_column'),
            wt, source, keep)
           INTO groups
          USING keys, shares, k, l2, tol, max_iter, restarts, seed;
        scans := 2;
    END IF;

    -- Groups get their points from a join; without groups the one point is
    -- a parameter, which spares every row the join
    IF group_column IS NULL THEN
        point := '$3';
        estep_from := pg_catalog.format('%s AS s', source);
        mstep_from := estep_from;
    ELSE
        point := 'cur.w';
        estep_from := pg_catalog.format($q$%s AS s
                  JOIN (SELECT c.group_key, pluralrm.multipass_point(c.solver) AS w
                          FROM pg_catalog.unnest($1::pluralrm.multipass_group[]) AS c
                         WHERE pluralrm.multipass_next(c.solver) = 'estep') AS cur
                    ON cur.group_key = %s$q$, source, g);
        mstep_from := pg_catalog.format($q$%s AS s
                  JOIN (SELECT c.group_key, pluralrm.multipass_point(c.solver) AS w
                          FROM pg_catalog.unnest($1::pluralrm.multipass_group[]) AS c
                         WHERE pluralrm.multipass_next(c.solver) = 'mstep') AS cur
                    ON cur.group_key = %s$q$, source, g);
    END IF;

    LOOP
        EXIT WHEN NOT EXISTS (SELECT 1 FROM pg_catalog.unnest(groups) AS c
                               WHERE pluralrm.multipass_next(c.solver) = 'estep');

        -- E-pass: each user's log-likelihood under every component, then
        -- the responsibilities and, per group, the judgement of the point
        EXECUTE pg_catalog.format($q$
            WITH e AS MATERIALIZED (
                SELECT %1$s AS g, %2$s AS u,
                       pluralrm.mixture_user_pass(%6$s, %3$s) AS state
                  FROM %4$s
                 WHERE %5$s
                 GROUP BY 1, 2),
            c AS (
                SELECT c.group_key, c.solver,
                       pluralrm.multipass_mixing(c.solver) AS mixing
                  FROM pg_catalog.unnest($1::pluralrm.multipass_group[]) AS c),
            j AS MATERIALIZED (
                SELECT c.group_key,
                       CASE WHEN pluralrm.multipass_next(c.solver) = 'estep'
                            THEN pluralrm.mixture_multipass_judge(c.solver, x.summary)
                            ELSE c.solver END AS solver
                  FROM c
                  LEFT JOIN (SELECT e.g, pluralrm.mixture_estep(e.state, c.mixing) AS summary
                               FROM e JOIN c ON c.group_key = e.g
                              GROUP BY e.g) AS x
                    ON x.g = c.group_key),
            r AS MATERIALIZED (
                SELECT e.g, e.u,
                       pluralrm.mixture_posterior(e.state, c.mixing) AS resp,
                       pluralrm.multipass_next(j.solver) AS next
                  FROM e
                  JOIN c ON c.group_key = e.g
                  JOIN j ON j.group_key = e.g)
            SELECT (SELECT pg_catalog.array_agg(ROW(j.group_key, j.solver)::pluralrm.multipass_group
                                                ORDER BY j.group_key COLLATE "C")
                      FROM j),
                   (SELECT pg_catalog.array_agg(ROW(r.g, r.u, r.resp)::pluralrm.multipass_user)
                      FROM r WHERE r.next = 'mstep' AND r.resp IS NOT NULL),
                   (SELECT pg_catalog.array_agg(ROW(r.g, r.u, r.resp)::pluralrm.multipass_user)
                      FROM r WHERE r.next = 'done' AND r.resp IS NOT NULL)$q$,
            g, u, cols, estep_from, keep, point)
           INTO groups, mstep_users, done_users
          USING groups, NULL::pluralrm.multipass_user[],
                (SELECT pluralrm.multipass_point(c.solver)
                   FROM pg_catalog.unnest(groups) AS c LIMIT 1);
        scans := scans + 1;
        final_users := final_users || done_users;

        CONTINUE WHEN NOT EXISTS (SELECT 1 FROM pg_catalog.unnest(groups) AS c
                                   WHERE pluralrm.multipass_next(c.solver) = 'mstep');

        -- M-pass: every component's gradient and Hessian, weighted by the
        -- responsibilities just found
        EXECUTE pg_catalog.format($q$
            SELECT pg_catalog.array_agg(ROW(c.group_key,
                       CASE WHEN pluralrm.multipass_next(c.solver) = 'mstep'
                            THEN pluralrm.mixture_multipass_step(c.solver, p.state)
                            ELSE c.solver END)::pluralrm.multipass_group
                       ORDER BY c.group_key COLLATE "C")
              FROM pg_catalog.unnest($1::pluralrm.multipass_group[]) AS c
              LEFT JOIN (SELECT %1$s AS g,
                                pluralrm.mixture_pass(%5$s, r.responsibilities, %3$s) AS state
                           FROM %4$s
                           JOIN pg_catalog.unnest($2::pluralrm.multipass_user[]) AS r
                             ON r.group_key = %1$s AND r.user_id = %2$s
                          GROUP BY 1) AS p
                ON p.g = c.group_key$q$, g, u, cols, mstep_from, point)
           INTO groups
          USING groups, mstep_users,
                (SELECT pluralrm.multipass_point(c.solver)
                   FROM pg_catalog.unnest(groups) AS c LIMIT 1);
        scans := scans + 1;
        -- groups that converged keep the responsibilities of this pass
        final_users := final_users || ARRAY(
            SELECT x FROM pg_catalog.unnest(mstep_users) AS x
              JOIN pg_catalog.unnest(groups) AS c ON c.group_key = x.group_key
             WHERE pluralrm.multipass_next(c.solver) = 'done');
    END LOOP;

    elapsed := 1000 * extract(epoch FROM pg_catalog.clock_timestamp() - started);
    RETURN QUERY
    SELECT CASE WHEN group_column IS NULL THEN NULL ELSE c.group_key END,
           pluralrm.mixture_multipass_model(c.solver, f.ids, f.resp, elapsed),
           scans
      FROM pg_catalog.unnest(groups) AS c
      JOIN (SELECT x.group_key,
                   pg_catalog.array_agg(x.user_id ORDER BY x.user_id COLLATE "C") AS ids,
                   pg_catalog.array_agg(x.responsibilities ORDER BY x.user_id COLLATE "C") AS resp
              FROM pg_catalog.unnest(final_users) AS x
             GROUP BY 1) AS f
        ON f.group_key = c.group_key
     ORDER BY c.group_key COLLATE "C";
END
$$;
COMMENT ON FUNCTION pluralrm.mixture_fit_multipass(regclass, integer, text, text, text, text, float8, text, float8, integer, integer, bigint, integer, float8[], float8[]) IS
'Fit a mixture of k BTL models with a latent class per user (per group with group_column) by EM with two aggregate passes over the source per iteration, for tables larger than memory';
-- Diagnostic reports: who a single reward model erases, and whether more
-- raters or more labels per rater would reduce a personalized model's error

-- The FROM item of a report: a table or view, or a query in parentheses
CREATE FUNCTION pluralrm.report_source(source regclass, query text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    src text;
BEGIN
    IF (source IS NULL) = (query IS NULL) THEN
        RAISE EXCEPTION 'give exactly one of source and query'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'source names a table or view; query is a SELECT '
                         'with schema-qualified table names.';
    END IF;
    -- regclass prints a quoted name, qualified unless in pg_catalog;
    -- planning the query alone first keeps its own errors apart from those
    -- of the columns named by the other arguments
    src := coalesce(source::text, format('(%s)', query));
    EXECUTE format('SELECT 1 FROM %s AS src WHERE false', src);
    RETURN src;
END
$$;
COMMENT ON FUNCTION pluralrm.report_source(regclass, text) IS
'Internal to the reports: the FROM item for comparisons given as a table or view (source) or as a query';

-- Check that a column named by a report argument exists in the comparisons
CREATE FUNCTION pluralrm.report_column(src text, source regclass,
                                       argument text, col text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    have text;
BEGIN
    IF col IS NULL THEN
        RAISE EXCEPTION '% must not be NULL', argument
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    BEGIN
        EXECUTE format('SELECT src.%I FROM %s AS src WHERE false', col, src);
    EXCEPTION WHEN undefined_column THEN
        IF source IS NOT NULL THEN
            SELECT string_agg(format('%I', a.attname), ', ' ORDER BY a.attnum)
              INTO have
              FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = source AND a.attnum > 0
               AND NOT a.attisdropped;
        END IF;
        RAISE EXCEPTION '% "%" is not a column of the comparisons',
                        argument, col
            USING ERRCODE = 'undefined_column',
                  DETAIL = CASE WHEN have IS NOT NULL
                                THEN format('The columns of %s are %s.',
                                            source, have) END,
                  HINT = format('%s names a column of the comparisons (a '
                                'table, view or query).', argument);
    END;
END
$$;
COMMENT ON FUNCTION pluralrm.report_column(text, regclass, text, text) IS
'Internal to the reports: fail with SQLSTATE 42703 when a column named by a report argument is not in the comparisons';

-- The current version of a saved model, or an error naming the argument
CREATE FUNCTION pluralrm.report_model(argument text, name text)
RETURNS pluralrm.model_versions
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v pluralrm.model_versions;
BEGIN
    IF name IS NULL THEN
        RAISE EXCEPTION '% must not be NULL', argument
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT mv.* INTO v
      FROM pluralrm.models m
      JOIN pluralrm.model_versions mv
        ON mv.name = m.name AND mv.version = m.current_version
     WHERE m.name = report_model.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model "%" does not exist', name
            USING ERRCODE = 'undefined_object',
                  HINT = 'Saved models are listed in pluralrm.model_list.';
    END IF;
    IF v.kind = 'items' THEN
        RAISE EXCEPTION 'model "%" is an item model, not a reward over embeddings',
                        name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN v;
END
$$;
COMMENT ON FUNCTION pluralrm.report_model(text, text) IS
'Internal to the reports: the current version of a saved model, failing with SQLSTATE 42704 for an unknown name';

-- Three significant digits, trailing zeros dropped, for report sentences
CREATE FUNCTION pluralrm.report_number(x float8)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN x = 0 OR x <> x OR abs(x) = 'Infinity'::float8 THEN x::text
        ELSE regexp_replace(
                 round(x::numeric,
                       greatest(0, 2 - floor(log(abs(x)::numeric))::int)
                 )::text,
                 '(\.[0-9]*[1-9])0+$|\.0+$', '\1')
    END
$$;
COMMENT ON FUNCTION pluralrm.report_number(float8) IS
'Internal to the reports: a number rounded to three significant digits, as text';

-- Check the arguments of an erasure report; return its per-user query
CREATE FUNCTION pluralrm.erasure_query(source regclass, single_model text,
                                       plural_model text, group_column text,
                                       user_column text, chosen_column text,
                                       rejected_column text,
                                       holdout_column text, query text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    src text;
    held text;
    usable text;
    plural pluralrm.model_versions;
    empty_group text;
    empty_groups bigint;
    unseen bigint;
BEGIN
    src := pluralrm.report_source(source, query);
    PERFORM pluralrm.report_model('single_model', single_model);
    plural := pluralrm.report_model('plural_model', plural_model);
    PERFORM pluralrm.report_column(src, source, 'group_column', group_column);
    PERFORM pluralrm.report_column(src, source, 'user_column', user_column);
    PERFORM pluralrm.report_column(src, source, 'chosen_column',
                                   chosen_column);
    PERFORM pluralrm.report_column(src, source, 'rejected_column',
                                   rejected_column);
    IF holdout_column IS NOT NULL THEN
        PERFORM pluralrm.report_column(src, source, 'holdout_column',
                                       holdout_column);
        BEGIN
            EXECUTE format('SELECT 1 FROM %s AS src WHERE src.%I IS TRUE '
                           'AND false', src, holdout_column);
        EXCEPTION WHEN datatype_mismatch THEN
            RAISE EXCEPTION 'holdout_column "%" must be boolean',
                            holdout_column
                USING ERRCODE = 'datatype_mismatch',
                      HINT = 'It is true on the comparisons to score.';
        END;
    END IF;

    usable := format('src.%I IS NOT NULL AND src.%I IS NOT NULL '
                     'AND src.%I IS NOT NULL',
                     user_column, chosen_column, rejected_column);
    held := CASE WHEN holdout_column IS NULL THEN 'true'
                 ELSE format('src.%I IS TRUE', holdout_column) END;

    -- every group must have comparisons to score
    EXECUTE format('SELECT src.%I::text FROM %s AS src GROUP BY src.%I '
                   'HAVING count(*) FILTER (WHERE %s AND %s) = 0 LIMIT 1',
                   group_column, src, group_column, usable, held)
       INTO empty_group;
    GET DIAGNOSTICS empty_groups = ROW_COUNT;
    IF empty_groups > 0 THEN
        RAISE EXCEPTION 'group % has no held-out comparisons',
                        coalesce(format('"%s"', empty_group), 'NULL')
            USING ERRCODE = 'no_data_found',
                  DETAIL = CASE WHEN holdout_column IS NULL
                      THEN 'None of its comparisons has a user, chosen and '
                           'rejected value.'
                      ELSE format('None of its comparisons with a user, '
                                  'chosen and rejected value has %s true.',
                                  holdout_column) END,
                  HINT = 'Hold out some comparisons of every group, or leave '
                         'the group out of the comparisons.';
    END IF;

    -- users the pluralistic model serves with the population reward
    EXECUTE format('SELECT count(DISTINCT src.%I) FROM %s AS src '
                   'WHERE %s AND %s AND NOT EXISTS ('
                   'SELECT 1 FROM pluralrm.user_coefficients uc '
                   'WHERE uc.model_id = %s AND uc.user_id = src.%I::text)',
                   user_column, src, usable, held, plural.model_id,
                   user_column)
       INTO unseen;
    IF unseen > 0 THEN
        RAISE NOTICE '% held-out users have no coefficients in model "%"',
                     unseen, plural_model
            USING DETAIL = 'They are served its population reward.';
    END IF;

    -- one row per group and user: g is the group's value in its own type
    RETURN format(
        'SELECT s.g, s.uid, (s.e1).n, (s.e1).accuracy AS single_accuracy, '
        '       (s.e1).log_loss AS single_log_loss, '
        '       (s.e2).accuracy AS plural_accuracy, '
        '       (s.e2).log_loss AS plural_log_loss, '
        '       EXISTS (SELECT 1 FROM pluralrm.user_coefficients uc '
        '                WHERE uc.model_id = %s AND uc.user_id = s.uid) '
        '           AS plural_fitted '
        '  FROM (SELECT src.%I AS g, src.%I::text AS uid, '
        '               pluralrm.evaluate(%L, src.%I, src.%I) AS e1, '
        '               pluralrm.evaluate(%L, src.%I::text, src.%I, '
        '                                 src.%I) AS e2 '
        '          FROM %s AS src WHERE %s AND %s '
        '         GROUP BY 1, 2) s',
        plural.model_id, group_column, user_column,
        single_model, chosen_column, rejected_column,
        plural_model, user_column, chosen_column, rejected_column,
        src, usable, held);
END
$$;
COMMENT ON FUNCTION pluralrm.erasure_query(regclass, text, text, text, text, text, text, text, text) IS
'Internal to the erasure reports: check their arguments and return the query of held-out accuracy and log-loss per group and user under both models';

-- Held-out quality of a single and a pluralistic model, per group and rater
CREATE FUNCTION pluralrm.erasure_by_user(
    source regclass DEFAULT NULL,
    single_model text DEFAULT NULL,
    plural_model text DEFAULT NULL,
    group_column text DEFAULT NULL,
    user_column text DEFAULT 'user_id',
    chosen_column text DEFAULT 'chosen',
    rejected_column text DEFAULT 'rejected',
    holdout_column text DEFAULT NULL,
    query text DEFAULT NULL)
RETURNS TABLE (group_value text, user_id text, comparisons bigint,
               single_accuracy float8, single_log_loss float8,
               plural_accuracy float8, plural_log_loss float8,
               erased boolean, plural_erased boolean, plural_fitted boolean)
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        'SELECT u.g::text, u.uid, u.n, u.single_accuracy, u.single_log_loss, '
        '       u.plural_accuracy, u.plural_log_loss, '
        '       u.single_accuracy < 0.5, u.plural_accuracy < 0.5, '
        '       u.plural_fitted '
        '  FROM (%s) u ORDER BY u.g, u.uid',
        pluralrm.erasure_query(source, single_model, plural_model,
                               group_column, user_column, chosen_column,
                               rejected_column, holdout_column, query));
END
$$;
COMMENT ON FUNCTION pluralrm.erasure_by_user(regclass, text, text, text, text, text, text, text, text) IS
'Per group and user: held-out accuracy and log-loss of a single model (its population reward) and of a pluralistic model (each user''s own reward), whether each serves the user worse than chance, and whether the pluralistic model has the user''s coefficients';

-- Held-out quality per group, erased shares and the centroid effect
CREATE FUNCTION pluralrm.erasure_report(
    source regclass DEFAULT NULL,
    single_model text DEFAULT NULL,
    plural_model text DEFAULT NULL,
    group_column text DEFAULT NULL,
    user_column text DEFAULT 'user_id',
    chosen_column text DEFAULT 'chosen',
    rejected_column text DEFAULT 'rejected',
    holdout_column text DEFAULT NULL,
    query text DEFAULT NULL)
RETURNS TABLE (group_value text, users bigint, comparisons bigint,
               single_accuracy float8, single_log_loss float8,
               plural_accuracy float8, plural_log_loss float8,
               erased_share float8, plural_erased_share float8,
               centroid_cosine float8, centroid_distance float8)
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    per_user text;
    single pluralrm.model_versions;
    w float8[];
    l2 float8;
BEGIN
    per_user := pluralrm.erasure_query(source, single_model, plural_model,
                                       group_column, user_column,
                                       chosen_column, rejected_column,
                                       holdout_column, query);
    single := pluralrm.report_model('single_model', single_model);

    -- the single model's reward vector: its population reward
    SELECT array_agg(s.w ORDER BY s.j) INTO w
      FROM (SELECT (e.i - 1) % single.d + 1 AS j,
                   sum(single.population[(e.i - 1) / single.d + 1] * e.x) AS w
              FROM unnest(single.base_rewards) WITH ORDINALITY e(x, i)
             GROUP BY 1) s;
    -- each group's own BTL fit, on all its comparisons, with the single
    -- model's penalty
    l2 := coalesce(nullif(single.hyperparameters ->> 'l2', '')::float8, 1);
    IF l2 <= 0 THEN
        l2 := 1;
    END IF;

    RETURN QUERY EXECUTE format(
        'WITH u AS (%s), '
        '     own AS (SELECT src.%I AS g, '
        '                    pluralrm.btl_fit(src.%I, src.%I, 1.0::float8, '
        '                                     %L::float8) AS m '
        '               FROM %s AS src '
        '              WHERE src.%I IS NOT NULL AND src.%I IS NOT NULL '
        '              GROUP BY 1), '
        '     sim AS (SELECT own.g, '
        '                    sum(a * b) '
        '                    / nullif(sqrt(sum(a * a) * sum(b * b)), 0) '
        '                        AS cosine, '
        '                    sqrt(sum((a - b) ^ 2)) AS distance '
        '               FROM own, '
        '                    unnest($1::float8[], (own.m).weights) x(a, b) '
        '              GROUP BY own.g) '
        'SELECT u.g::text, count(*), sum(u.n)::bigint, '
        '       sum(u.single_accuracy * u.n) / sum(u.n), '
        '       sum(u.single_log_loss * u.n) / sum(u.n), '
        '       sum(u.plural_accuracy * u.n) / sum(u.n), '
        '       sum(u.plural_log_loss * u.n) / sum(u.n), '
        '       avg((u.single_accuracy < 0.5)::int)::float8, '
        '       avg((u.plural_accuracy < 0.5)::int)::float8, '
        '       min(sim.cosine), min(sim.distance) '
        '  FROM u LEFT JOIN sim ON sim.g IS NOT DISTINCT FROM u.g '
        ' GROUP BY u.g ORDER BY u.g',
        per_user, group_column, chosen_column, rejected_column, l2,
        pluralrm.report_source(source, query), chosen_column,
        rejected_column)
    USING w;
END
$$;
COMMENT ON FUNCTION pluralrm.erasure_report(regclass, text, text, text, text, text, text, text, text) IS
'Per group: held-out accuracy and log-loss of a single and a pluralistic model, the share of users each serves worse than chance (erased), and how far the single model''s weights lie from the group''s own BTL fit (centroid cosine and distance)';

-- Whether more raters or more labels per rater would help more
CREATE FUNCTION pluralrm.rater_sufficiency(
    source regclass DEFAULT NULL,
    model text DEFAULT NULL,
    user_column text DEFAULT 'user_id',
    chosen_column text DEFAULT 'chosen',
    rejected_column text DEFAULT 'rejected',
    query text DEFAULT NULL)
RETURNS TABLE (raters bigint, comparisons bigint, per_rater_min bigint,
               per_rater_median float8, per_rater_mean float8,
               per_rater_max bigint, between_rater_variance float8,
               within_rater_variance float8, error_from_raters float8,
               error_from_labels float8, error_with_twice_the_raters float8,
               error_with_twice_the_labels float8, raters_at_balance float8,
               recommendation text, reasoning text)
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    src text;
    v pluralrm.model_versions;
    counts bigint[];
    ids text[];
    n bigint;
    between_var float8;
    within_var float8;
    posteriors bigint;
    locked integer[];
    mismatched bigint;
    twice_raters float8;
    twice_labels float8;
BEGIN
    src := pluralrm.report_source(source, query);
    v := pluralrm.report_model('model', model);
    IF v.kind NOT IN ('factor', 'mixture') THEN
        RAISE EXCEPTION 'model "%" is a % model, not a factor or mixture model',
                        model, v.kind
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'The spread of preferences between raters comes '
                           'from a model with per-user coefficients.';
    END IF;
    PERFORM pluralrm.report_column(src, source, 'user_column', user_column);
    PERFORM pluralrm.report_column(src, source, 'chosen_column',
                                   chosen_column);
    PERFORM pluralrm.report_column(src, source, 'rejected_column',
                                   rejected_column);

    -- comparisons per rater, counting the rows a fit would use
    EXECUTE format('SELECT array_agg(s.uid), array_agg(s.n) '
                   '  FROM (SELECT src.%I::text AS uid, count(*) AS n '
                   '          FROM %s AS src '
                   '         WHERE src.%I IS NOT NULL AND src.%I IS NOT NULL '
                   '           AND src.%I IS NOT NULL '
                   '         GROUP BY 1) s',
                   user_column, src, user_column, chosen_column,
                   rejected_column)
       INTO ids, counts;
    n := coalesce(cardinality(ids), 0);
    IF n = 0 THEN
        RAISE EXCEPTION 'the comparisons have no rows with a user, chosen and rejected value'
            USING ERRCODE = 'no_data_found';
    END IF;

    IF v.kind = 'factor' THEN
        -- the prior's covariance is the fitted spread of coefficients
        -- between raters; a rater's posterior covariance is what their
        -- labels leave unknown; locked components vary for no one
        SELECT p.locked INTO locked
          FROM pluralrm.model_priors p WHERE p.model_id = v.model_id;
        SELECT (SELECT sum(p.covariance[i][i])
                  FROM generate_series(1, v.k) i WHERE i <> ALL (locked))
          INTO between_var
          FROM pluralrm.model_priors p WHERE p.model_id = v.model_id;
        SELECT avg((SELECT sum(uc.covariance[i][i])
                      FROM generate_series(1, v.k) i WHERE i <> ALL (locked))),
               count(*)
          INTO within_var, posteriors
          FROM pluralrm.user_coefficients uc
          JOIN unnest(ids) r(uid) ON r.uid = uc.user_id
         WHERE uc.model_id = v.model_id AND uc.covariance IS NOT NULL;
    ELSE
        -- a mixture's raters differ by their component: spread of the
        -- components' weights under the mixing weights; a rater's
        -- posterior spread is the same under their responsibilities,
        -- sum_c p_c |B_c|^2 - |sum_c p_c B_c|^2 = p' diag(G) - p' G p
        WITH e AS (
            SELECT (e.i - 1) / v.d + 1 AS c, (e.i - 1) % v.d + 1 AS j, e.x
              FROM unnest(v.base_rewards) WITH ORDINALITY e(x, i)),
        g AS (
            SELECT e1.c AS c1, e2.c AS c2, sum(e1.x * e2.x) AS g
              FROM e e1 JOIN e e2 ON e2.j = e1.j
             GROUP BY 1, 2),
        -- responsibilities below 1e-100 are zero: their products underflow
        p AS (
            SELECT uc.user_id, r.c,
                   CASE WHEN r.x < 1e-100 THEN 0 ELSE r.x END AS x
              FROM pluralrm.user_coefficients uc
              JOIN unnest(ids) u(uid) ON u.uid = uc.user_id,
                   unnest(uc.coefficients) WITH ORDINALITY r(x, c)
             WHERE uc.model_id = v.model_id),
        spread AS (
            SELECT p1.user_id,
                   sum(CASE WHEN g.c1 = g.c2 THEN p1.x * g.g ELSE 0 END)
                   - sum(p1.x * p2.x * g.g) AS tr
              FROM p p1
              JOIN p p2 ON p2.user_id = p1.user_id
              JOIN g ON g.c1 = p1.c AND g.c2 = p2.c
             GROUP BY p1.user_id)
        SELECT (SELECT sum(CASE WHEN g.c1 = g.c2 THEN v.population[g.c1] * g.g
                                ELSE 0 END)
                       - sum(v.population[g.c1] * v.population[g.c2] * g.g)
                  FROM g),
               avg(greatest(spread.tr, 0)), count(*)
          INTO between_var, within_var, posteriors
          FROM spread;
    END IF;
    -- the posteriors belong to the comparisons the model was fitted on
    SELECT count(*) INTO mismatched
      FROM pluralrm.user_coefficients uc
      JOIN unnest(ids, counts) r(uid, n) ON r.uid = uc.user_id
     WHERE uc.model_id = v.model_id AND uc.n <> r.n;
    IF mismatched > 0 THEN
        RAISE NOTICE 'model "%" was fitted on other numbers of comparisons for % raters',
                     model, mismatched
            USING DETAIL = 'Comparisons per rater are counted in the '
                           'comparisons given, while the uncertainty left in '
                           'each rater comes from the model.',
                  HINT = 'Pass the comparisons the model was fitted on.';
    END IF;
    IF posteriors = 0 THEN
        RAISE EXCEPTION 'no rater of the comparisons has coefficients in model "%"',
                        model
            USING ERRCODE = 'no_data_found',
                  HINT = 'Pass the comparisons the model was fitted on.';
    ELSIF posteriors < n THEN
        RAISE NOTICE '% of % raters have no coefficients in model "%"',
                     n - posteriors, n, model
            USING DETAIL = 'The within-rater variance is their mean over the '
                           'raters the model has.';
    END IF;
    between_var := greatest(between_var, 0);

    raters := n;
    SELECT sum(x), min(x), percentile_cont(0.5) WITHIN GROUP (ORDER BY x),
           avg(x), max(x)
      INTO comparisons, per_rater_min, per_rater_median, per_rater_mean,
           per_rater_max
      FROM unnest(counts) x;
    between_rater_variance := between_var;
    within_rater_variance := within_var;

    -- error ~ A / raters + B / labels per rater, with A = between + within
    -- (the spread of one rater's estimate about the population) and
    -- B = within x labels (within-rater variance falls as 1 / labels)
    error_from_raters := (between_var + within_var) / n;
    error_from_labels := within_var;
    twice_raters := (between_var + within_var) / (2 * n) + within_var;
    twice_labels := (between_var + within_var / 2) / n + within_var / 2;
    error_with_twice_the_raters := twice_raters;
    error_with_twice_the_labels := twice_labels;
    raters_at_balance := between_var / nullif(within_var, 0);

    IF twice_raters < twice_labels THEN
        recommendation := 'collect more raters';
    ELSE
        recommendation := 'collect more labels per rater';
    END IF;
    reasoning := format(
        'Raters differ by %s (between-rater variance) and each rater''s own '
        'reward is still uncertain by %s (mean posterior variance after %s '
        'comparisons per rater). With %s raters, what they share is known to '
        'within (%s + %s) / %s = %s; the uncertainty of each rater is %s. '
        'Twice the raters would bring the total from %s to %s, twice the '
        'labels per rater to %s. %s',
        pluralrm.report_number(between_var),
        pluralrm.report_number(within_var),
        pluralrm.report_number(per_rater_mean), n,
        pluralrm.report_number(between_var),
        pluralrm.report_number(within_var), n,
        pluralrm.report_number(error_from_raters),
        pluralrm.report_number(within_var),
        pluralrm.report_number(error_from_raters + within_var),
        pluralrm.report_number(twice_raters),
        pluralrm.report_number(twice_labels),
        CASE WHEN raters_at_balance IS NULL
             THEN 'Every rater''s reward is already certain: only more '
                  'raters can help.'
             ELSE format('The two choices help equally at about %s raters.',
                         pluralrm.report_number(raters_at_balance)) END);
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION pluralrm.rater_sufficiency(regclass, text, text, text, text, text) IS
'Whether more raters or more labels per rater would reduce a personalized model''s error more: raters and comparisons per rater, the spread of preferences between raters and the uncertainty left within a rater (from a saved factor or mixture model), the two error terms and a recommendation with its reasoning';
