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
