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
