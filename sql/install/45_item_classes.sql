-- Latent classes of raters over item strengths, and item models stored
-- and served like the reward models

CREATE TYPE pluralrm.item_classes_model AS (
    comparisons bigint,
    skipped bigint,
    items integer,
    raters integer,
    k integer,
    prior float8,
    tie_model text,
    reference text,
    loglik float8,
    bic float8,
    iterations integer,
    converged boolean,
    restarts integer,
    restarts_at_best integer,
    seed bigint,
    solve_ms float8,
    item text[],
    mixing float8[],
    strengths float8[],
    rater_ids text[],
    responsibilities float8[],
    nu float8
);
COMMENT ON TYPE pluralrm.item_classes_model IS
'A fitted mixture of k item-level BTL models with a latent class per rater: mixing weights, k x items strengths (log scale, row c for class c, column i for item[i]), each rater''s responsibilities (row u for rater_ids[u]), and Davidson''s tie parameter nu shared by all classes (0 when not estimated); expand with item_class_strengths and item_class_raters';

CREATE FUNCTION pluralrm.btl_item_classes_transfn(internal, anycompatible,
                                                  anycompatible, float8,
                                                  anyelement, integer)
RETURNS internal AS 'MODULE_PATHNAME', 'btl_item_classes_transfn'
LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION pluralrm.btl_item_classes_transfn(internal, anycompatible,
                                                  anycompatible, float8,
                                                  float8, anyelement, integer,
                                                  pluralrm.items_options)
RETURNS internal AS 'MODULE_PATHNAME', 'btl_item_classes_transfn'
LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION pluralrm.btl_item_classes_transfn(internal, anycompatible,
                                                  anycompatible, float8,
                                                  float8, anyelement, integer,
                                                  pluralrm.items_options,
                                                  integer)
RETURNS internal AS 'MODULE_PATHNAME', 'btl_item_classes_transfn'
LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION pluralrm.btl_item_classes_finalfn(internal)
RETURNS pluralrm.item_classes_model
AS 'MODULE_PATHNAME', 'btl_item_classes_finalfn'
LANGUAGE C PARALLEL SAFE;

COMMENT ON FUNCTION pluralrm.btl_item_classes_transfn(internal, anycompatible, anycompatible, float8, anyelement, integer) IS
'Transition function of btl_item_classes: count one comparison of a rater';
COMMENT ON FUNCTION pluralrm.btl_item_classes_transfn(internal, anycompatible, anycompatible, float8, float8, anyelement, integer, pluralrm.items_options) IS
'Transition function of btl_item_classes: count one weighted comparison of a rater, with settings';
COMMENT ON FUNCTION pluralrm.btl_item_classes_transfn(internal, anycompatible, anycompatible, float8, float8, anyelement, integer, pluralrm.items_options, integer) IS
'Transition function of btl_item_classes: count one weighted comparison of a rater, with settings and a number of restarts';
COMMENT ON FUNCTION pluralrm.btl_item_classes_finalfn(internal) IS
'Final function of btl_item_classes: fit the classes by EM';

CREATE AGGREGATE pluralrm.btl_item_classes(item_a anycompatible,
                                           item_b anycompatible,
                                           outcome float8,
                                           rater anyelement,
                                           k integer) (
    SFUNC = pluralrm.btl_item_classes_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_items_combinefn,
    SERIALFUNC = pluralrm.btl_items_serializefn,
    DESERIALFUNC = pluralrm.btl_items_deserializefn,
    FINALFUNC = pluralrm.btl_item_classes_finalfn, PARALLEL = SAFE);
CREATE AGGREGATE pluralrm.btl_item_classes(item_a anycompatible,
                                           item_b anycompatible,
                                           outcome float8, weight float8,
                                           rater anyelement, k integer,
                                           options pluralrm.items_options) (
    SFUNC = pluralrm.btl_item_classes_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_items_combinefn,
    SERIALFUNC = pluralrm.btl_items_serializefn,
    DESERIALFUNC = pluralrm.btl_items_deserializefn,
    FINALFUNC = pluralrm.btl_item_classes_finalfn, PARALLEL = SAFE);
CREATE AGGREGATE pluralrm.btl_item_classes(item_a anycompatible,
                                           item_b anycompatible,
                                           outcome float8, weight float8,
                                           rater anyelement, k integer,
                                           options pluralrm.items_options,
                                           restarts integer) (
    SFUNC = pluralrm.btl_item_classes_transfn, STYPE = internal,
    COMBINEFUNC = pluralrm.btl_items_combinefn,
    SERIALFUNC = pluralrm.btl_items_serializefn,
    DESERIALFUNC = pluralrm.btl_items_deserializefn,
    FINALFUNC = pluralrm.btl_item_classes_finalfn, PARALLEL = SAFE);

COMMENT ON AGGREGATE pluralrm.btl_item_classes(anycompatible, anycompatible, float8, anyelement, integer) IS
'Fit k latent classes of raters, each with its own item strengths, to comparisons by raters (prior 0.01, 10 restarts, seed 0)';
COMMENT ON AGGREGATE pluralrm.btl_item_classes(anycompatible, anycompatible, float8, float8, anyelement, integer, pluralrm.items_options) IS
'Fit k latent classes of raters to weighted comparisons with the given settings (10 restarts)';
COMMENT ON AGGREGATE pluralrm.btl_item_classes(anycompatible, anycompatible, float8, float8, anyelement, integer, pluralrm.items_options, integer) IS
'Fit k latent classes of raters to weighted comparisons with the given settings and number of restarts';

CREATE FUNCTION pluralrm.item_class_strengths(model pluralrm.item_classes_model)
RETURNS TABLE (class integer, item text, strength float8, rank integer)
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.c, s.item, s.strength,
           (rank() OVER (PARTITION BY s.c ORDER BY s.strength DESC))::integer
      FROM (SELECT c.c, model.item[i.i] AS item,
                   model.strengths[c.c][i.i] AS strength, i.i
              FROM pg_catalog.generate_series(1, model.k) AS c(c),
                   pg_catalog.generate_series(1, model.items) AS i(i)) s
     ORDER BY s.c, s.i
$$;
COMMENT ON FUNCTION pluralrm.item_class_strengths(pluralrm.item_classes_model) IS
'One row per class and item of a btl_item_classes fit: the strength on the log scale and its rank within the class (1 = strongest)';

CREATE FUNCTION pluralrm.item_class_raters(model pluralrm.item_classes_model)
RETURNS TABLE (rater text, class integer, responsibility float8)
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT model.rater_ids[u.u], c.c, model.responsibilities[u.u][c.c]
      FROM pg_catalog.generate_series(1, model.raters) AS u(u),
           pg_catalog.generate_series(1, model.k) AS c(c)
     ORDER BY u.u, c.c
$$;
COMMENT ON FUNCTION pluralrm.item_class_raters(pluralrm.item_classes_model) IS
'One row per rater and class of a btl_item_classes fit: the posterior probability (responsibility) that the rater belongs to the class';

-- Stored item models: one-hot embeddings over the version's items
ALTER TABLE pluralrm.model_versions ADD COLUMN items text[];
COMMENT ON COLUMN pluralrm.model_versions.items IS
'For an item model, the item ids (text form) behind the d columns of base_rewards: item_embedding gives item items[i] the one-hot vector e_i; NULL for models over embeddings';

-- The checks before saving an item fit: it exists and it converged (or the
-- caller accepts that it did not)
CREATE FUNCTION pluralrm.item_fit_savable(name text, missing boolean,
                                          converged boolean,
                                          allow_unconverged boolean,
                                          aggregate text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF missing IS NOT false THEN
        RAISE EXCEPTION 'cannot save a NULL model'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = format('%s returns NULL when it saw no comparisons.',
                                aggregate);
    END IF;
    IF NOT converged AND NOT allow_unconverged THEN
        RAISE EXCEPTION 'model "%" did not converge', name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass allow_unconverged => true to save it anyway.';
    END IF;
END
$$;
COMMENT ON FUNCTION pluralrm.item_fit_savable(text, boolean, boolean, boolean, text) IS
'Internal to save_model for item fits: raises unless the fit exists and converged or allow_unconverged is set';

CREATE FUNCTION pluralrm.save_model(name text, model pluralrm.items_model,
                                    allow_unconverged boolean DEFAULT false)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v integer;
BEGIN
    PERFORM pluralrm.item_fit_savable(name, model.strength IS NULL,
                                      model.converged, allow_unconverged,
                                      'btl_items');
    v := pluralrm.save_version(
        name, 'btl', 1, model.items, ARRAY[model.strength],
        ARRAY[1.0::float8], model.comparisons,
        jsonb_build_object('prior', model.prior, 'ties', model.tie_model,
                           'reference', model.reference),
        jsonb_build_object('loglik', model.loglik, 'nu', model.nu,
                           'iterations', model.iterations,
                           'converged', model.converged,
                           'components', model.components,
                           'skipped', model.skipped));
    UPDATE pluralrm.model_versions mv SET items = model.item
     WHERE mv.name = save_model.name AND mv.version = v;
    RETURN v;
END
$$;
COMMENT ON FUNCTION pluralrm.save_model(text, pluralrm.items_model, boolean) IS
'Save a btl_items fit under a name as a new current version: a btl model over the one-hot embeddings of its items (weights = strengths); returns the version number';

CREATE FUNCTION pluralrm.save_model(name text,
                                    model pluralrm.item_classes_model,
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
    PERFORM pluralrm.item_fit_savable(name, model.strengths IS NULL,
                                      model.converged, allow_unconverged,
                                      'btl_item_classes');
    v := pluralrm.save_version(
        name, 'mixture', model.k, model.items, model.strengths, model.mixing,
        model.comparisons,
        jsonb_build_object('prior', model.prior, 'ties', model.tie_model,
                           'reference', model.reference,
                           'restarts', model.restarts, 'seed', model.seed),
        jsonb_build_object('loglik', model.loglik, 'bic', model.bic,
                           'nu', model.nu,
                           'users', model.raters,
                           'iterations', model.iterations,
                           'converged', model.converged,
                           'restarts_at_best', model.restarts_at_best,
                           'skipped', model.skipped));
    UPDATE pluralrm.model_versions mv SET items = model.item
     WHERE mv.name = save_model.name AND mv.version = v
    RETURNING mv.model_id INTO mid;
    INSERT INTO pluralrm.user_coefficients (model_id, user_id, coefficients)
    SELECT mid, model.rater_ids[u.u],
           ARRAY(SELECT model.responsibilities[u.u][c.c]
                   FROM pg_catalog.generate_series(1, model.k) AS c(c)
                  ORDER BY c.c)
      FROM pg_catalog.generate_series(1, model.raters) AS u(u);
    RETURN v;
END
$$;
COMMENT ON FUNCTION pluralrm.save_model(text, pluralrm.item_classes_model, boolean) IS
'Save a btl_item_classes fit under a name as a new current version: a mixture over the one-hot embeddings of its items, with one row of coefficients (responsibilities) per rater; returns the version number';

CREATE FUNCTION pluralrm.item_embedding(model text, item anyelement)
RETURNS float8[]
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ids text[];
    pos integer;
    e float8[];
BEGIN
    SELECT mv.items INTO ids
      FROM pluralrm.models m
      JOIN pluralrm.model_versions mv
        ON mv.name = m.name AND mv.version = m.current_version
     WHERE m.name = item_embedding.model;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model "%" does not exist', model
            USING ERRCODE = 'undefined_object',
                  HINT = 'Saved models are listed in pluralrm.model_list.';
    END IF;
    IF ids IS NULL THEN
        RAISE EXCEPTION 'model "%" is not an item model', model
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Its current version has no item ids.';
    END IF;
    pos := pg_catalog.array_position(ids, item::text);
    IF pos IS NULL THEN
        RAISE EXCEPTION 'item "%" is not in model "%"', item, model
            USING ERRCODE = 'undefined_object',
                  DETAIL = format('The model has %s items.',
                                  pg_catalog.cardinality(ids));
    END IF;
    e := pg_catalog.array_fill(0::float8,
                               ARRAY[pg_catalog.cardinality(ids)]);
    e[pos] := 1;
    RETURN e;
END
$$;
COMMENT ON FUNCTION pluralrm.item_embedding(text, anyelement) IS
'The one-hot vector of an item in the current version of an item model, to pass as a response embedding to reward_score, evaluate and the reports';

CREATE FUNCTION pluralrm.item_score(model text, rater bigint, item anyelement)
RETURNS float8
LANGUAGE sql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pluralrm.reward_score(model, rater,
                                 pluralrm.item_embedding(model, item))
$$;
COMMENT ON FUNCTION pluralrm.item_score(text, bigint, anyelement) IS
'Strength of an item for a rater under a stored item model: the rater''s responsibilities times the class strengths, or the population''s for an unseen rater';
CREATE FUNCTION pluralrm.item_score(model text, rater text, item anyelement)
RETURNS float8
LANGUAGE sql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pluralrm.reward_score(model, rater,
                                 pluralrm.item_embedding(model, item))
$$;
COMMENT ON FUNCTION pluralrm.item_score(text, text, anyelement) IS
'Strength of an item for a rater under a stored item model: the rater''s responsibilities times the class strengths, or the population''s for an unseen rater';
CREATE FUNCTION pluralrm.item_score(model text, rater uuid, item anyelement)
RETURNS float8
LANGUAGE sql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pluralrm.reward_score(model, rater,
                                 pluralrm.item_embedding(model, item))
$$;
COMMENT ON FUNCTION pluralrm.item_score(text, uuid, anyelement) IS
'Strength of an item for a rater under a stored item model: the rater''s responsibilities times the class strengths, or the population''s for an unseen rater';
