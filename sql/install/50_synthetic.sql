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
