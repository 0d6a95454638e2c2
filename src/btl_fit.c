/*
 * btl_fit.c
 *	  The btl_fit aggregate: collect difference vectors, then fit the linear
 *	  BTL model with the core solver.
 *
 * The transition state keeps z = chosen - rejected for every comparison in
 * one growing array in the aggregate's memory context. Partial states of
 * parallel workers travel as bytea and are appended by the combine
 * function; the final function runs the solver once over all rows.
 */
#include "postgres.h"

#include <math.h>
#include <time.h>

#include "access/htup_details.h"
#include "funcapi.h"
#include "libpq/pqformat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "pluralrm.h"
#include "prm_btl.h"

/* Aggregate state of btl_fit */
typedef struct BtlFitState
{
	int			d;				/* 0 until the first comparison */
	int64		n;				/* comparisons kept */
	int64		cap;			/* rows z and weight have room for */
	int64		skipped;		/* comparisons with a NULL input */
	bool		has_l2;
	double		l2;
	double	   *z;				/* n x d difference vectors */
	double	   *weight;			/* n weights */
} BtlFitState;

#define INITIAL_ROWS 1024

/* Default L2 strength when the aggregate is called without one */
#define DEFAULT_L2 1.0

PG_FUNCTION_INFO_V1(btl_fit_transfn);
PG_FUNCTION_INFO_V1(btl_fit_combinefn);
PG_FUNCTION_INFO_V1(btl_fit_serializefn);
PG_FUNCTION_INFO_V1(btl_fit_deserializefn);
PG_FUNCTION_INFO_V1(btl_fit_finalfn);

/* Return the aggregate memory context or fail when not called as one */
static MemoryContext
AggContextOrError(FunctionCallInfo fcinfo, const char *fname)
{
	MemoryContext aggcontext;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		elog(ERROR, "%s called in non-aggregate context", fname);
	return aggcontext;
}

/* Make room for at least need rows */
static void
BtlStateReserve(BtlFitState *state, int64 need)
{
	int64		cap;
	Size		bytes;

	if (need <= state->cap)
		return;
	cap = Max(state->cap * 2, Max(need, INITIAL_ROWS));
	bytes = mul_size(mul_size((Size) cap, (Size) state->d), sizeof(double));
	if (state->z == NULL)
	{
		state->z = MemoryContextAllocHuge(CurrentMemoryContext, bytes);
		state->weight = MemoryContextAllocHuge(CurrentMemoryContext,
											   mul_size(cap, sizeof(double)));
	}
	else
	{
		state->z = repalloc_huge(state->z, bytes);
		state->weight = repalloc_huge(state->weight,
									  mul_size(cap, sizeof(double)));
	}
	state->cap = cap;
}

/* Check the L2 strength argument and that it stays the same in a group */
static void
BtlStateSetL2(BtlFitState *state, double l2)
{
	if (!(l2 >= 0) || isinf(l2))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("l2 must be a finite number >= 0, not %g", l2)));
	if (state->has_l2 && state->l2 != l2)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("l2 must be the same for every row of a group"),
				 errdetail("Saw %g, then %g.", state->l2, l2)));
	state->l2 = l2;
	state->has_l2 = true;
}

/*
 * Add one comparison: btl_fit(chosen, rejected [, weight [, l2]])
 */
Datum
btl_fit_transfn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext = AggContextOrError(fcinfo, "btl_fit_transfn");
	MemoryContext old;
	BtlFitState *state;
	ArrayType  *chosen,
			   *rejected;
	double		weight = 1.0;
	int			d;
	double	   *row;

	if (PG_ARGISNULL(0))
	{
		state = MemoryContextAllocZero(aggcontext, sizeof(BtlFitState));
		state->l2 = DEFAULT_L2;
	}
	else
		state = (BtlFitState *) PG_GETARG_POINTER(0);

	if (PG_NARGS() > 4)
	{
		if (PG_ARGISNULL(4))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("l2 must not be NULL")));
		BtlStateSetL2(state, PG_GETARG_FLOAT8(4));
	}

	/* a comparison with a NULL input is skipped and counted */
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2) ||
		(PG_NARGS() > 3 && PG_ARGISNULL(3)))
	{
		state->skipped++;
		PG_RETURN_POINTER(state);
	}

	if (PG_NARGS() > 3)
	{
		weight = PG_GETARG_FLOAT8(3);
		if (!(weight >= 0) || isinf(weight))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("weight must be a finite number >= 0, not %g",
							weight)));
	}

	chosen = PG_GETARG_ARRAYTYPE_P(1);
	rejected = PG_GETARG_ARRAYTYPE_P(2);
	d = PrmEmbeddingDim(chosen, "chosen");
	if (PrmEmbeddingDim(rejected, "rejected") != d)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("chosen and rejected embeddings differ in dimension: "
						"%d and %d", d, ARR_DIMS(rejected)[0])));
	if (state->d == 0)
		state->d = d;
	else if (state->d != d)
		PrmDimensionMismatch(state->d, d);

	old = MemoryContextSwitchTo(aggcontext);
	BtlStateReserve(state, state->n + 1);
	MemoryContextSwitchTo(old);

	/* z = chosen - rejected, with the rejected side read into the row end */
	row = state->z + state->n * d;
	PrmEmbeddingRead(chosen, d, row, "chosen");
	if (ARR_ELEMTYPE(rejected) == FLOAT8OID)
	{
		const double *r = (const double *) ARR_DATA_PTR(rejected);
		bool		finite = true;

		for (int j = 0; j < d; j++)
		{
			finite &= isfinite(r[j]);
			row[j] -= r[j];
		}
		if (!finite)
			PrmEmbeddingRead(rejected, d, row, "rejected");
	}
	else
	{
		const float *r = (const float *) ARR_DATA_PTR(rejected);
		bool		finite = true;

		for (int j = 0; j < d; j++)
		{
			finite &= isfinite(r[j]);
			row[j] -= (double) r[j];
		}
		if (!finite)
			PrmEmbeddingRead(rejected, d, row, "rejected");
	}
	state->weight[state->n] = weight;
	state->n++;

	PG_RETURN_POINTER(state);
}

/* Append the rows of one state to another */
static void
BtlStateAppend(BtlFitState *dst, const BtlFitState *src)
{
	if (src->n > 0)
	{
		if (dst->d == 0)
			dst->d = src->d;
		else if (dst->d != src->d)
			PrmDimensionMismatch(dst->d, src->d);
		BtlStateReserve(dst, dst->n + src->n);
		memcpy(dst->z + dst->n * dst->d, src->z,
			   sizeof(double) * src->n * src->d);
		memcpy(dst->weight + dst->n, src->weight, sizeof(double) * src->n);
		dst->n += src->n;
	}
	dst->skipped += src->skipped;
	if (src->has_l2)
		BtlStateSetL2(dst, src->l2);
}

/* Merge two partial states (parallel aggregation) */
Datum
btl_fit_combinefn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext = AggContextOrError(fcinfo, "btl_fit_combinefn");
	MemoryContext old;
	BtlFitState *s1 = PG_ARGISNULL(0) ? NULL :
		(BtlFitState *) PG_GETARG_POINTER(0);
	BtlFitState *s2 = PG_ARGISNULL(1) ? NULL :
		(BtlFitState *) PG_GETARG_POINTER(1);

	if (s2 == NULL)
	{
		if (s1 == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(s1);
	}

	old = MemoryContextSwitchTo(aggcontext);
	if (s1 == NULL)
	{
		s1 = palloc0(sizeof(BtlFitState));
		s1->l2 = DEFAULT_L2;
	}
	BtlStateAppend(s1, s2);
	MemoryContextSwitchTo(old);

	PG_RETURN_POINTER(s1);
}

/* Serialize a partial state for transfer between processes */
Datum
btl_fit_serializefn(PG_FUNCTION_ARGS)
{
	BtlFitState *state = (BtlFitState *) PG_GETARG_POINTER(0);
	StringInfoData buf;
	Size		payload;

	AggContextOrError(fcinfo, "btl_fit_serializefn");
	payload = add_size(mul_size(mul_size(state->n, state->d + 1),
								sizeof(double)), 64);
	if (payload >= MaxAllocSize - VARHDRSZ)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("btl_fit partial state of %lld comparisons is too "
						"large to pass between parallel workers",
						(long long) state->n),
				 errhint("Set max_parallel_workers_per_gather = 0 for this "
						 "query, or use more workers.")));

	pq_begintypsend(&buf);
	enlargeStringInfo(&buf, (int) payload);
	pq_sendint32(&buf, state->d);
	pq_sendint64(&buf, state->n);
	pq_sendint64(&buf, state->skipped);
	pq_sendbyte(&buf, state->has_l2);
	pq_sendfloat8(&buf, state->l2);
	if (state->n > 0)
	{
		pq_sendbytes(&buf, (const char *) state->z,
					 sizeof(double) * state->n * state->d);
		pq_sendbytes(&buf, (const char *) state->weight,
					 sizeof(double) * state->n);
	}
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* Rebuild a partial state from its serialized form */
Datum
btl_fit_deserializefn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext = AggContextOrError(fcinfo,
												 "btl_fit_deserializefn");
	bytea	   *bytes = PG_GETARG_BYTEA_PP(0);
	StringInfoData buf;
	BtlFitState *state;
	MemoryContext old;
	int64		n;

	buf.data = VARDATA_ANY(bytes);
	buf.len = VARSIZE_ANY_EXHDR(bytes);
	buf.maxlen = buf.len;
	buf.cursor = 0;

	old = MemoryContextSwitchTo(aggcontext);
	state = palloc0(sizeof(BtlFitState));
	state->d = pq_getmsgint(&buf, 4);
	n = pq_getmsgint64(&buf);
	state->skipped = pq_getmsgint64(&buf);
	state->has_l2 = pq_getmsgbyte(&buf);
	state->l2 = pq_getmsgfloat8(&buf);
	if (state->d < 0 || state->d > PRM_MAX_DIM || n < 0 ||
		(n > 0 && state->d == 0) ||
		(Size) (buf.len - buf.cursor) !=
		(Size) n * (state->d + 1) * sizeof(double))
		elog(ERROR, "malformed btl_fit partial state");
	if (n > 0)
	{
		BtlStateReserve(state, n);
		pq_copymsgbytes(&buf, (char *) state->z,
						sizeof(double) * n * state->d);
		pq_copymsgbytes(&buf, (char *) state->weight, sizeof(double) * n);
		state->n = n;
	}
	pq_getmsgend(&buf);
	MemoryContextSwitchTo(old);

	PG_RETURN_POINTER(state);
}

/* Milliseconds between two clock readings */
static double
ElapsedMs(const struct timespec *a, const struct timespec *b)
{
	return (b->tv_sec - a->tv_sec) * 1000.0 +
		(b->tv_nsec - a->tv_nsec) / 1e6;
}

/* Turn a solver status into an error, or a notice when merely unconverged */
static void
BtlReportStatus(const PrmBtlResult *res, double l2, int max_iter)
{
	switch (res->status)
	{
		case PRM_OK:
			break;
		case PRM_NOT_CONVERGED:
			ereport(NOTICE,
					(errmsg("btl_fit did not converge in %d iterations",
							max_iter),
					 errdetail("The gradient norm is %g.", res->grad_norm),
					 errhint("Raise pluralrm.max_iterations or l2.")));
			break;
		case PRM_NO_INFORMATION:
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("no comparison distinguishes its chosen and "
							"rejected responses"),
					 errdetail("Every comparison has identical chosen and "
							   "rejected embeddings or a zero weight.")));
			break;
		case PRM_SEPARABLE:
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("comparisons are perfectly separable, so the "
							"unpenalized fit has no finite solution"),
					 errdetail("With l2 = %g the likelihood keeps rising as "
							   "the weights grow without bound.", l2),
					 errhint("Pass a positive l2.")));
			break;
		case PRM_NOT_POSITIVE_DEFINITE:
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("btl_fit could not factor its Hessian")));
			break;
		case PRM_BAD_INPUT:
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("btl_fit met a non-finite value while solving"),
					 errhint("Check embeddings and weights for extreme "
							 "magnitudes.")));
			break;
	}
}

/* Name of a solver method as shown in results */
static const char *
MethodName(PrmBtlMethod m)
{
	return m == PRM_METHOD_NEWTON_CG ? "newton_cg" : "newton";
}

/*
 * Fit the model and return it as a pluralrm.btl_model row.
 */
Datum
btl_fit_finalfn(PG_FUNCTION_ARGS)
{
	BtlFitState *state;
	PrmBtlProblem prob;
	PrmBtlOptions opt;
	PrmBtlResult res;
	TupleDesc	tupdesc;
	double	   *w;
	void	   *work;
	Datum		values[12];
	bool		nulls[12] = {0};
	Datum	   *welems;
	struct timespec t0,
				t1;

	AggContextOrError(fcinfo, "btl_fit_finalfn");
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	state = (BtlFitState *) PG_GETARG_POINTER(0);
	if (state->skipped > 0)
		ereport(NOTICE,
				(errmsg("btl_fit skipped %lld comparisons with a NULL input",
						(long long) state->skipped)));
	if (state->n == 0)
		PG_RETURN_NULL();

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "btl_fit_finalfn must return a composite type");
	tupdesc = BlessTupleDesc(tupdesc);

	prob.n = state->n;
	prob.d = state->d;
	prob.z = state->z;
	prob.weight = state->weight;
	prob.l2 = state->l2;
	opt.method = (PrmBtlMethod) prm_solver;
	opt.tol = prm_tolerance;
	opt.max_iter = prm_max_iterations;

	w = palloc0(sizeof(double) * prob.d);
	work = MemoryContextAllocHuge(CurrentMemoryContext,
								  PrmBtlWorkspaceSize(&prob, opt.method));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	PrmBtlSolve(&prob, &opt, w, work, &res);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	pfree(work);
	BtlReportStatus(&res, prob.l2, opt.max_iter);

	welems = palloc(sizeof(Datum) * prob.d);
	for (int j = 0; j < prob.d; j++)
		welems[j] = Float8GetDatum(w[j]);

	values[0] = Int64GetDatum(state->n);
	values[1] = Int32GetDatum(state->d);
	values[2] = Float8GetDatum(prob.l2);
	values[3] = Int32GetDatum(res.iterations);
	values[4] = BoolGetDatum(res.converged);
	values[5] = Float8GetDatum(res.loglik);
	values[6] = Float8GetDatum(res.accuracy);
	values[7] = Float8GetDatum(res.grad_norm);
	values[8] = CStringGetTextDatum(MethodName(res.method));
	values[9] = Float8GetDatum(ElapsedMs(&t0, &t1));
	values[10] = Int64GetDatum(state->skipped);
	values[11] = PointerGetDatum(construct_array(welems, prob.d, FLOAT8OID,
												 sizeof(float8),
												 FLOAT8PASSBYVAL,
												 TYPALIGN_DOUBLE));

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values,
													  nulls)));
}
