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
