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
