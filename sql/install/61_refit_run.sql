-- The refit procedure. 0.2.0 replaced the one of 0.1.0 (warm starts), so
-- it lives in a part of its own that the upgrade script also runs.

-- Refit a model from its recipe: a new current version, old ones pruned
CREATE OR REPLACE PROCEDURE pluralrm.refit(name text, INOUT version integer DEFAULT NULL)
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
    warm integer;
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
    -- warm-started from the current version (the fits check its kind and
    -- shape and start cold, with a NOTICE, when they differ)
    SELECT m.current_version INTO warm FROM pluralrm.models m
     WHERE m.name = refit.name;
    saved := saved || jsonb_build_object(
        'warm_start', current_setting('pluralrm.warm_start'));
    PERFORM set_config('pluralrm.warm_start',
                       CASE WHEN warm IS NULL THEN '' ELSE name END, true);

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
       FROM unnest('{tolerance,max_iterations,solver,warm_start}'::text[]) s;

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
                                          - started) * 1000)::numeric, 1),
               'warm_start_version', warm)
     WHERE mv.name = refit.name AND mv.version = refit.version;

    keep := coalesce(r.keep_versions,
                     nullif(current_setting('pluralrm.keep_versions', true),
                            '')::integer,
                     5);
    PERFORM pluralrm.prune_versions(name, keep);
END
$$;
COMMENT ON PROCEDURE pluralrm.refit(text, integer) IS
'Refit a model from its recipe with the caller''s rights, warm-started from its current version, save the fit as the new current version in the same transaction, and delete versions beyond the newest keep_versions (never the current one); returns the new version';
