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
