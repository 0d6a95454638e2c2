/*
 * consistency.c
 *	  The rater_consistency and pair_consistency aggregates: collect a
 *	  rater's asks, then classify them with the core's consistency tests.
 *
 * Used with GROUP BY rater, rater_consistency(pair_id, condition,
 * chose_first) summarises each rater over all their pairs; used with GROUP
 * BY rater, pair, pair_consistency(condition, chose_first) classifies each
 * (rater, pair) with the same tests restricted to that pair. The state is
 * a growing array of asks; parallel workers' partial states travel as bytea
 * and are appended by the combine function.
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "funcapi.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "pluralrm.h"

#include "prm_consistency.h"

/* Aggregate state: the asks of one group */
typedef struct ConsistencyState
{
	int64		n;
	int64		cap;
	int64		skipped;		/* asks with a NULL input */
	bool		has_options;
	double		alpha;
	double		tremble;
	PrmAsk	   *asks;
} ConsistencyState;

#define INITIAL_ASKS 16

PG_FUNCTION_INFO_V1(rater_consistency_transfn);
PG_FUNCTION_INFO_V1(pair_consistency_transfn);
PG_FUNCTION_INFO_V1(consistency_combinefn);
PG_FUNCTION_INFO_V1(consistency_serializefn);
PG_FUNCTION_INFO_V1(consistency_deserializefn);
PG_FUNCTION_INFO_V1(consistency_finalfn);

/* Return the aggregate memory context or fail when not called as one */
static MemoryContext
ConsistencyAggContext(FunctionCallInfo fcinfo, const char *fname)
{
	MemoryContext aggcontext;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		elog(ERROR, "%s called in non-aggregate context", fname);
	return aggcontext;
}

/* Create an empty state in the aggregate context */
static ConsistencyState *
ConsistencyStateCreate(MemoryContext aggcontext)
{
	ConsistencyState *state = MemoryContextAllocZero(aggcontext,
													 sizeof(ConsistencyState));

	state->alpha = PRM_CONSISTENCY_DEFAULT_ALPHA;
	state->tremble = PRM_CONSISTENCY_DEFAULT_TREMBLE;
	return state;
}

/* Make room for at least need asks */
static void
ConsistencyReserve(ConsistencyState *state, int64 need,
				   MemoryContext aggcontext)
{
	int64		cap;
	Size		bytes;

	if (need <= state->cap)
		return;
	cap = Max(state->cap * 2, Max(need, INITIAL_ASKS));
	bytes = mul_size((Size) cap, sizeof(PrmAsk));
	PrmFitMemoryCheck(MemoryContextMemAllocated(aggcontext, true), bytes,
					  "rater_consistency");
	if (state->asks == NULL)
		state->asks = MemoryContextAllocHuge(aggcontext, bytes);
	else
		state->asks = repalloc_huge(state->asks, bytes);
	state->cap = cap;
}

/* Check alpha and tremble and that they stay the same in a group */
static void
ConsistencySetOptions(ConsistencyState *state, double alpha, double tremble)
{
	if (!(alpha > 0.0 && alpha < 1.0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("alpha must be between 0 and 1, not %g", alpha)));
	if (!(tremble >= 0.0 && tremble < 0.5))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tremble must be at least 0 and below 0.5, not %g",
						tremble),
				 errdetail("The tremble is the share of asks on which a "
						   "stable rater gives the answer they do not "
						   "hold.")));
	if (state->has_options &&
		(state->alpha != alpha || state->tremble != tremble))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("alpha and tremble must be the same for every row of "
						"a group"),
				 errdetail("Saw alpha %g and tremble %g, then %g and %g.",
						   state->alpha, state->tremble, alpha, tremble)));
	state->alpha = alpha;
	state->tremble = tremble;
	state->has_options = true;
}

/*
 * Add one ask. pair_argno is the position of the pair id, or 0 when the
 * aggregate takes none (every ask of the group is of one pair); condition
 * and chose_first follow it, then optionally alpha and tremble.
 */
static Datum
ConsistencyAdd(FunctionCallInfo fcinfo, int pair_argno, const char *fname)
{
	MemoryContext aggcontext = ConsistencyAggContext(fcinfo, fname);
	ConsistencyState *state;
	int			cond_argno = pair_argno + 1;
	int			alpha_argno = pair_argno + 3;
	PrmAsk	   *ask;
	int32		condition;

	if (PG_ARGISNULL(0))
		state = ConsistencyStateCreate(aggcontext);
	else
		state = (ConsistencyState *) PG_GETARG_POINTER(0);

	if (PG_NARGS() > alpha_argno + 1)
	{
		if (PG_ARGISNULL(alpha_argno) || PG_ARGISNULL(alpha_argno + 1))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("alpha and tremble must not be NULL")));
		ConsistencySetOptions(state, PG_GETARG_FLOAT8(alpha_argno),
							  PG_GETARG_FLOAT8(alpha_argno + 1));
	}

	if ((pair_argno > 0 && PG_ARGISNULL(pair_argno)) ||
		PG_ARGISNULL(cond_argno) || PG_ARGISNULL(cond_argno + 1))
	{
		state->skipped++;
		PG_RETURN_POINTER(state);
	}

	condition = PG_GETARG_INT32(cond_argno);
	if (condition != 0 && condition != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("condition must be 0 or 1, not %d", condition),
				 errdetail("Condition 0 means response a of the pair was "
						   "shown first, 1 that response b was.")));

	ConsistencyReserve(state, state->n + 1, aggcontext);
	ask = &state->asks[state->n++];
	ask->pair = pair_argno > 0 ? PG_GETARG_INT64(pair_argno) : 0;
	ask->condition = condition;
	ask->chose_first = PG_GETARG_BOOL(cond_argno + 1) ? 1 : 0;
	PG_RETURN_POINTER(state);
}

/*
 * rater_consistency(pair_id, condition, chose_first [, alpha, tremble])
 */
Datum
rater_consistency_transfn(PG_FUNCTION_ARGS)
{
	return ConsistencyAdd(fcinfo, 1, "rater_consistency_transfn");
}

/*
 * pair_consistency(condition, chose_first [, alpha, tremble])
 */
Datum
pair_consistency_transfn(PG_FUNCTION_ARGS)
{
	return ConsistencyAdd(fcinfo, 0, "pair_consistency_transfn");
}

/*
 * Merge two partial states (parallel aggregation)
 */
Datum
consistency_combinefn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext = ConsistencyAggContext(fcinfo,
													 "consistency_combinefn");
	ConsistencyState *dst,
			   *src;

	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_POINTER(PG_GETARG_POINTER(0));
	}
	src = (ConsistencyState *) PG_GETARG_POINTER(1);
	if (PG_ARGISNULL(0))
		dst = ConsistencyStateCreate(aggcontext);
	else
		dst = (ConsistencyState *) PG_GETARG_POINTER(0);

	if (src->has_options)
		ConsistencySetOptions(dst, src->alpha, src->tremble);
	dst->skipped += src->skipped;
	if (src->n > 0)
	{
		ConsistencyReserve(dst, dst->n + src->n, aggcontext);
		memcpy(dst->asks + dst->n, src->asks, sizeof(PrmAsk) * src->n);
		dst->n += src->n;
	}
	PG_RETURN_POINTER(dst);
}

/*
 * Serialize a state for transfer between processes
 */
Datum
consistency_serializefn(PG_FUNCTION_ARGS)
{
	ConsistencyState *state = (ConsistencyState *) PG_GETARG_POINTER(0);
	StringInfoData buf;
	Size		payload = add_size(mul_size(state->n, sizeof(PrmAsk)), 64);

	if (payload >= MaxAllocSize - VARHDRSZ)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("partial state of %lld asks is too large to pass "
						"between parallel workers", (long long) state->n),
				 errhint("Set max_parallel_workers_per_gather = 0 for this "
						 "query.")));

	pq_begintypsend(&buf);
	enlargeStringInfo(&buf, (int) payload);
	pq_sendint64(&buf, state->n);
	pq_sendint64(&buf, state->skipped);
	pq_sendbyte(&buf, state->has_options);
	pq_sendfloat8(&buf, state->alpha);
	pq_sendfloat8(&buf, state->tremble);
	if (state->n > 0)
		pq_sendbytes(&buf, (const char *) state->asks,
					 sizeof(PrmAsk) * state->n);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/*
 * Rebuild a state from its serialized form
 */
Datum
consistency_deserializefn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext =
		ConsistencyAggContext(fcinfo, "consistency_deserializefn");
	bytea	   *bytes = PG_GETARG_BYTEA_PP(0);
	ConsistencyState *state = ConsistencyStateCreate(aggcontext);
	StringInfoData buf;
	int64		n;

	buf.data = VARDATA_ANY(bytes);
	buf.len = VARSIZE_ANY_EXHDR(bytes);
	buf.maxlen = buf.len;
	buf.cursor = 0;

	n = pq_getmsgint64(&buf);
	state->skipped = pq_getmsgint64(&buf);
	state->has_options = pq_getmsgbyte(&buf);
	state->alpha = pq_getmsgfloat8(&buf);
	state->tremble = pq_getmsgfloat8(&buf);
	if (n < 0 || (Size) (buf.len - buf.cursor) < (Size) n * sizeof(PrmAsk))
		elog(ERROR, "malformed consistency aggregate state");
	if (n > 0)
	{
		ConsistencyReserve(state, n, aggcontext);
		pq_copymsgbytes(&buf, (char *) state->asks, sizeof(PrmAsk) * n);
		state->n = n;
	}
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(state);
}

/* A float8 Datum, or NULL for NaN (a statistic that is not defined) */
static Datum
Float8OrNull(double x, bool *isnull)
{
	*isnull = isnan(x);
	return Float8GetDatum(isnan(x) ? 0.0 : x);
}

/*
 * Classify the group's asks and return a pluralrm.consistency row
 */
Datum
consistency_finalfn(PG_FUNCTION_ARGS)
{
	ConsistencyState *state;
	PrmConsistencyOptions opt;
	PrmConsistencyResult res;
	TupleDesc	tupdesc;
	PrmAsk	   *asks;
	void	   *work;
	Datum		values[13];
	bool		nulls[13] = {0};

	ConsistencyAggContext(fcinfo, "consistency_finalfn");
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	state = (ConsistencyState *) PG_GETARG_POINTER(0);
	if (state->n == 0)
		PG_RETURN_NULL();

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "consistency_finalfn must return a composite type");
	tupdesc = BlessTupleDesc(tupdesc);

	/* the core sorts its input: work on a copy, the state may be reused */
	asks = MemoryContextAllocHuge(CurrentMemoryContext,
								  mul_size(state->n, sizeof(PrmAsk)));
	memcpy(asks, state->asks, sizeof(PrmAsk) * state->n);
	work = MemoryContextAllocHuge(CurrentMemoryContext,
								  PrmConsistencyWorkspaceSize(state->n));
	opt.alpha = state->alpha;
	opt.tremble = state->tremble;
	if (PrmConsistencyClassify(asks, state->n, &opt, work, &res) != PRM_OK)
		elog(ERROR, "consistency tests rejected checked input");
	pfree(work);
	pfree(asks);

	values[0] = Int64GetDatum(res.asks);
	values[1] = Int64GetDatum(res.pairs);
	values[2] = Int64GetDatum(res.pairs_reasked);
	values[3] = Int64GetDatum(res.inconsistent);
	values[4] = Int64GetDatum(res.minority);
	values[5] = Float8OrNull(res.agreement, &nulls[5]);
	values[6] = Float8GetDatum(res.first_shown_rate);
	values[7] = Float8GetDatum(res.p_condition);
	values[8] = Float8GetDatum(res.p_stable);
	values[9] = Float8GetDatum(res.p_non_attitude);
	values[10] = CStringGetTextDatum(PrmConsistencyKindName(res.kind));
	values[11] = Float8GetDatum(res.weight);
	values[12] = Int64GetDatum(state->skipped);

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values,
													  nulls)));
}
