/*
 * btl_fit.c
 *	  The btl_fit aggregate: collect difference vectors, then fit the linear
 *	  BTL model with the core solver.
 *
 * The transition state (comparisons.c) keeps z = chosen - rejected for
 * every comparison in one growing array in the aggregate's memory context.
 * Partial states of parallel workers travel as bytea and are appended by
 * the combine function; the final function runs the solver once over all
 * rows.
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

#include "comparisons.h"
#include "pluralrm.h"
#include "prm_btl.h"

/* Default L2 strength when the aggregate is called without one */
#define DEFAULT_L2 1.0

PG_FUNCTION_INFO_V1(btl_fit_transfn);
PG_FUNCTION_INFO_V1(btl_fit_combinefn);
PG_FUNCTION_INFO_V1(btl_fit_serializefn);
PG_FUNCTION_INFO_V1(btl_fit_deserializefn);
PG_FUNCTION_INFO_V1(btl_fit_finalfn);

/*
 * Add one comparison: btl_fit(chosen, rejected [, weight [, l2]])
 */
Datum
btl_fit_transfn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext = PrmAggContext(fcinfo, "btl_fit_transfn");
	PrmRowArgs	args = {-1, 1, 2, PG_NARGS() > 3 ? 3 : -1,
	PG_NARGS() > 4 ? 4 : -1};
	PrmRows    *rows;

	if (PG_ARGISNULL(0))
		rows = PrmRowsCreate(aggcontext, false, DEFAULT_L2);
	else
		rows = (PrmRows *) PG_GETARG_POINTER(0);
	PrmRowsAdd(rows, fcinfo, &args, aggcontext);
	PG_RETURN_POINTER(rows);
}

/* Merge two partial states (parallel aggregation) */
Datum
btl_fit_combinefn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext = PrmAggContext(fcinfo, "btl_fit_combinefn");
	PrmRows    *s1 = PG_ARGISNULL(0) ? NULL : (PrmRows *) PG_GETARG_POINTER(0);
	PrmRows    *s2 = PG_ARGISNULL(1) ? NULL : (PrmRows *) PG_GETARG_POINTER(1);

	if (s2 == NULL)
	{
		if (s1 == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(s1);
	}
	if (s1 == NULL)
		s1 = PrmRowsCreate(aggcontext, s2->users != NULL, DEFAULT_L2);
	PrmRowsAppend(s1, s2, aggcontext);
	PG_RETURN_POINTER(s1);
}

/* Serialize a partial state for transfer between processes */
Datum
btl_fit_serializefn(PG_FUNCTION_ARGS)
{
	PrmAggContext(fcinfo, "btl_fit_serializefn");
	PG_RETURN_BYTEA_P(PrmRowsSerialize((PrmRows *) PG_GETARG_POINTER(0)));
}

/* Rebuild a partial state from its serialized form */
Datum
btl_fit_deserializefn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext = PrmAggContext(fcinfo,
											 "btl_fit_deserializefn");

	PG_RETURN_POINTER(PrmRowsDeserialize(PG_GETARG_BYTEA_PP(0), aggcontext));
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
	PrmRows    *state;
	PrmBtlProblem prob;
	PrmBtlOptions opt;
	PrmBtlResult res;
	TupleDesc	tupdesc;
	double	   *w;
	PrmModel   *warm;
	void	   *work;
	Datum		values[12];
	bool		nulls[12] = {0};
	Datum	   *welems;
	struct timespec t0,
				t1;

	PrmAggContext(fcinfo, "btl_fit_finalfn");
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	state = (PrmRows *) PG_GETARG_POINTER(0);
	PrmRowsNoticeSkipped(state, "btl_fit");
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

	PrmFitMemoryCheck(PrmHeldBytes(state),
					  PrmBtlWorkspaceSize(&prob, opt.method) +
					  sizeof(double) * prob.d, "btl_fit");
	w = palloc0(sizeof(double) * prob.d);
	warm = PrmWarmStart("btl_fit", NULL, 0, prob.d);
	if (warm)
		memcpy(w, warm->effective, sizeof(double) * prob.d);
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
	values[9] = Float8GetDatum(PrmElapsedMs(&t0, &t1));
	values[10] = Int64GetDatum(state->skipped);
	values[11] = PointerGetDatum(construct_array(welems, prob.d, FLOAT8OID,
												 sizeof(float8),
												 FLOAT8PASSBYVAL,
												 TYPALIGN_DOUBLE));

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values,
													  nulls)));
}
