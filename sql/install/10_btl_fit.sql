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
