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
