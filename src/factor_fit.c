/*
 * factor_fit.c
 *	  The factor_fit aggregate: K base rewards shared by everyone, K
 *	  coefficients per user under a Gaussian population prior; and
 *	  factor_users, which lists a fitted model's users.
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "comparisons.h"
#include "pluralrm.h"
#include "prm_factor.h"

#define DEFAULT_L2 1.0
#define MAX_FACTORS 64

PG_FUNCTION_INFO_V1(factor_fit_transfn);
PG_FUNCTION_INFO_V1(factor_fit_finalfn);
PG_FUNCTION_INFO_V1(factor_users);

/* Bit mask of the locked components listed in a 1-based int[] */
static int64
LockedMask(ArrayType *arr, int k)
{
	Datum	   *elems;
	bool	   *nulls;
	int			count;
	int64		mask = 0;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("locked must be a 1-D integer[]")));
	deconstruct_array(arr, INT4OID, sizeof(int32), true, TYPALIGN_INT,
					  &elems, &nulls, &count);
	for (int i = 0; i < count; i++)
	{
		int32		c;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("locked must not contain NULL")));
		c = DatumGetInt32(elems[i]);
		if (c < 1 || c > k)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("locked component %d is not between 1 and k = %d",
							c, k)));
		mask |= (int64) 1 << (c - 1);
	}
	return mask;
}

/*
 * Add one comparison: factor_fit(user_id, chosen, rejected, k [, weight
 * [, l2 [, prior_strength [, locked]]]])
 */
Datum
factor_fit_transfn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext = PrmAggContext(fcinfo, "factor_fit_transfn");
	PrmRowArgs	args = {1, 2, 3, PG_NARGS() > 5 ? 5 : -1,
	PG_NARGS() > 6 ? 6 : -1};
	PrmFitOptions options = {0};
	PrmRows    *rows;

	if (PG_ARGISNULL(0))
		rows = PrmRowsCreate(aggcontext, true, DEFAULT_L2);
	else
		rows = (PrmRows *) PG_GETARG_POINTER(0);

	for (int a = 4; a < PG_NARGS(); a++)
		if (a != 5 && PG_ARGISNULL(a))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("k, l2, prior_strength and locked must not be "
							"NULL")));
	options.k = PG_GETARG_INT32(4);
	if (options.k < 1 || options.k > MAX_FACTORS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k must be between 1 and %d, not %d", MAX_FACTORS,
						options.k)));
	options.prior_strength = 1.0;
	if (PG_NARGS() > 7)
	{
		options.prior_strength = PG_GETARG_FLOAT8(7);
		if (!(options.prior_strength > 0) || isinf(options.prior_strength))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("prior_strength must be a finite number > 0, "
							"not %g", options.prior_strength)));
	}
	if (PG_NARGS() > 8)
		options.locked = LockedMask(PG_GETARG_ARRAYTYPE_P(8), options.k);
	PrmRowsSetOptions(rows, &options);
	PrmRowsAdd(rows, fcinfo, &args, aggcontext);
	PG_RETURN_POINTER(rows);
}

/* Turn a core status into an error */
static void
FactorReportStatus(PrmStatus status)
{
	if (status == PRM_OK || status == PRM_NOT_CONVERGED)
		return;
	if (status == PRM_NOT_POSITIVE_DEFINITE)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("factor fit met a singular prior or Hessian"),
				 errhint("Use fewer base rewards (k), or raise l2.")));
	ereport(ERROR,
			(errcode(ERRCODE_DATA_EXCEPTION),
			 errmsg("factor fit met a non-finite value"),
			 errhint("Check embeddings and weights for extreme magnitudes, "
					 "or raise l2.")));
}

/* An int[] of the 1-based locked components in mask */
static Datum
LockedArray(int64 mask, int k)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(k, 1));
	int			count = 0;

	for (int c = 0; c < k; c++)
		if (mask & ((int64) 1 << c))
			elems[count++] = Int32GetDatum(c + 1);
	return PointerGetDatum(construct_array(elems, count, INT4OID,
										   sizeof(int32), true,
										   TYPALIGN_INT));
}

/* Fit the factorized model and return a pluralrm.factor_model */
Datum
factor_fit_finalfn(PG_FUNCTION_ARGS)
{
	PrmRows    *rows;
	PrmFactorProblem prob;
	PrmFactorOptions opt = {PRM_FACTOR_DEFAULT_TOL,
	PRM_FACTOR_DEFAULT_MAX_ITER, NULL};
	PrmModel   *warm;
	PrmFactorResult res;
	int			k,
				d;
	int32		users;
	int		   *locked;
	double	   *base,
			   *mu,
			   *sigma,
			   *coef,
			   *cov;
	int64	   *counts;
	Datum	   *ids,
			   *cnt;
	void	   *work;
	struct timespec t0,
				t1;
	TupleDesc	tupdesc;
	Datum		values[20];
	bool		nulls[20] = {0};
	int			dims[3];
	int			lbs[3] = {1, 1, 1};
	Datum	   *celems;

	PrmAggContext(fcinfo, "factor_fit_finalfn");
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	rows = (PrmRows *) PG_GETARG_POINTER(0);
	PrmRowsNoticeSkipped(rows, "factor_fit");
	if (rows->n == 0)
		PG_RETURN_NULL();
	k = rows->options.k;
	d = rows->d;
	users = rows->users->count;
	if (!(rows->l2 > 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("factor fits need l2 > 0")));
	if (k > d)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k = %d is larger than the embedding dimension %d",
						k, d)));
	if (mul_size(mul_size(users, k * (k + 1) + 2), sizeof(double)) >
		MaxAllocSize / 2)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a factor model over %d users is too large to return "
						"as one value", users),
				 errhint("Fit per segment with GROUP BY, or lower k.")));
	PrmRowsSortUsers(rows);

	locked = palloc0(sizeof(int) * k);
	for (int c = 0; c < k; c++)
		locked[c] = (rows->options.locked >> c) & 1;
	prob.n = rows->n;
	prob.d = d;
	prob.z = rows->z;
	prob.weight = rows->weight;
	prob.user = rows->user;
	prob.users = users;
	prob.k = k;
	prob.l2 = rows->l2;
	prob.prior_strength = rows->options.prior_strength;
	prob.locked = locked;

	PrmFitMemoryCheck(PrmHeldBytes(rows),
					  PrmFactorWorkspaceSize(&prob) +
					  sizeof(double) * k * (Size) users * (k + 1) +
					  sizeof(double) * k * (d + k + 1), "factor_fit");
	warm = PrmWarmStart("factor_fit", "factor", k, d);
	if (warm)
	{
		opt.start_base = warm->base;
		opt.start_mu = warm->population;
		opt.start_sigma = warm->prior_cov;
	}
	base = palloc(sizeof(double) * k * d);
	mu = palloc(sizeof(double) * k);
	sigma = palloc(sizeof(double) * k * k);
	coef = palloc_extended(sizeof(double) * k * (Size) users,
						   MCXT_ALLOC_HUGE);
	cov = palloc_extended(sizeof(double) * k * k * (Size) users,
						  MCXT_ALLOC_HUGE);
	work = palloc_extended(PrmFactorWorkspaceSize(&prob), MCXT_ALLOC_HUGE);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	PrmFactorFit(&prob, &opt, base, mu, sigma, coef, cov, work, &res);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	pfree(work);
	FactorReportStatus(res.status);
	if (!res.converged)
		ereport(NOTICE,
				(errmsg("factor fit did not converge in %d iterations",
						res.iterations)));

	counts = palloc0_array(int64, users);
	for (int64 i = 0; i < rows->n; i++)
		counts[rows->user[i]]++;
	ids = palloc_extended(sizeof(Datum) * Max(users, 1), MCXT_ALLOC_HUGE);
	cnt = palloc_extended(sizeof(Datum) * Max(users, 1), MCXT_ALLOC_HUGE);
	for (int32 u = 0; u < users; u++)
	{
		ids[u] = PrmUserKey(rows, u);
		cnt[u] = Int64GetDatum(counts[u]);
	}
	celems = palloc_extended(sizeof(Datum) * Max((Size) users * k * k, 1),
							 MCXT_ALLOC_HUGE);
	for (Size i = 0; i < (Size) users * k * k; i++)
		celems[i] = Float8GetDatum(cov[i]);
	dims[0] = users;
	dims[1] = k;
	dims[2] = k;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "factor_fit_finalfn must return a composite type");
	tupdesc = BlessTupleDesc(tupdesc);
	values[0] = Int64GetDatum(rows->n);
	values[1] = Int64GetDatum(users);
	values[2] = Int32GetDatum(d);
	values[3] = Int32GetDatum(k);
	values[4] = Float8GetDatum(rows->l2);
	values[5] = Float8GetDatum(rows->options.prior_strength);
	values[6] = LockedArray(rows->options.locked, k);
	values[7] = Float8GetDatum(res.loglik);
	values[8] = Float8GetDatum(res.objective);
	values[9] = Int32GetDatum(res.iterations);
	values[10] = BoolGetDatum(res.converged);
	values[11] = Float8GetDatum(PrmElapsedMs(&t0, &t1));
	values[12] = Int64GetDatum(rows->skipped);
	values[13] = PrmFloatArray(base, k, d);
	values[14] = PrmFloatArray(mu, k, 0);
	values[15] = PrmFloatArray(sigma, k, k);
	values[16] = PointerGetDatum(construct_array(ids, users, TEXTOID, -1,
												 false, TYPALIGN_INT));
	values[17] = PrmFloatArray(coef, users, k);
	values[18] = PointerGetDatum(construct_md_array(celems, NULL, 3, dims,
													lbs, FLOAT8OID,
													sizeof(float8),
													FLOAT8PASSBYVAL,
													TYPALIGN_DOUBLE));
	values[19] = PointerGetDatum(construct_array(cnt, users, INT8OID,
												 sizeof(int64),
												 FLOAT8PASSBYVAL,
												 TYPALIGN_DOUBLE));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values,
													  nulls)));
}

/* State of factor_users between calls */
typedef struct FactorUsersState
{
	ArrayType  *ids;
	ArrayType  *coef;
	ArrayType  *cov;
	ArrayType  *counts;
	int			k;
	TupleDesc	tupdesc;
} FactorUsersState;

/*
 * factor_users(model): (user_id, coefficients, covariance, comparisons)
 * for each user of a fitted factor model
 */
Datum
factor_users(PG_FUNCTION_ARGS)
{
	FuncCallContext *funcctx;
	FactorUsersState *st;

	if (SRF_IS_FIRSTCALL())
	{
		MemoryContext old;
		HeapTupleHeader model = PG_GETARG_HEAPTUPLEHEADER(0);
		bool		isnull[4];
		Datum		fields[4];
		TupleDesc	tupdesc;

		funcctx = SRF_FIRSTCALL_INIT();
		old = MemoryContextSwitchTo(funcctx->multi_call_memory_ctx);
		st = palloc0(sizeof(FactorUsersState));
		fields[0] = GetAttributeByName(model, "user_ids", &isnull[0]);
		fields[1] = GetAttributeByName(model, "coefficients", &isnull[1]);
		fields[2] = GetAttributeByName(model, "covariances", &isnull[2]);
		fields[3] = GetAttributeByName(model, "comparisons", &isnull[3]);
		for (int i = 0; i < 4; i++)
			if (isnull[i])
				ereport(ERROR,
						(errcode(ERRCODE_DATA_EXCEPTION),
						 errmsg("factor model has NULL per-user arrays")));
		st->ids = DatumGetArrayTypePCopy(fields[0]);
		st->coef = DatumGetArrayTypePCopy(fields[1]);
		st->cov = DatumGetArrayTypePCopy(fields[2]);
		st->counts = DatumGetArrayTypePCopy(fields[3]);
		if (ARR_NDIM(st->coef) != 2 || ARR_NDIM(st->cov) != 3 ||
			ARR_HASNULL(st->coef) || ARR_HASNULL(st->cov) ||
			ARR_NDIM(st->ids) != 1 ||
			ARR_DIMS(st->ids)[0] != ARR_DIMS(st->coef)[0] ||
			ARR_DIMS(st->cov)[0] != ARR_DIMS(st->coef)[0] ||
			ARR_DIMS(st->cov)[1] != ARR_DIMS(st->coef)[1] ||
			ARR_DIMS(st->cov)[2] != ARR_DIMS(st->coef)[1] ||
			ARR_DIMS(st->counts)[0] != ARR_DIMS(st->coef)[0])
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("factor model's per-user arrays do not fit "
							"together")));
		st->k = ARR_DIMS(st->coef)[1];
		if (get_call_result_type(fcinfo, NULL, &tupdesc) !=
			TYPEFUNC_COMPOSITE)
			elog(ERROR, "factor_users must return a composite type");
		st->tupdesc = BlessTupleDesc(tupdesc);
		funcctx->max_calls = ARR_DIMS(st->ids)[0];
		funcctx->user_fctx = st;
		MemoryContextSwitchTo(old);
	}
	funcctx = SRF_PERCALL_SETUP();
	st = (FactorUsersState *) funcctx->user_fctx;
	if (funcctx->call_cntr < funcctx->max_calls)
	{
		int			u = (int) funcctx->call_cntr;
		int			k = st->k;
		Datum		values[4];
		bool		nulls[4] = {0};
		bool		isnull;
		int			idx = u + 1;

		values[0] = array_get_element(PointerGetDatum(st->ids), 1, &idx, -1,
									  -1, false, TYPALIGN_INT, &isnull);
		values[1] = PrmFloatArray((const double *) ARR_DATA_PTR(st->coef) +
								  (Size) u * k, k, 0);
		values[2] = PrmFloatArray((const double *) ARR_DATA_PTR(st->cov) +
								  (Size) u * k * k, k, k);
		values[3] = Int64GetDatum(((const int64 *)
								   ARR_DATA_PTR(st->counts))[u]);
		SRF_RETURN_NEXT(funcctx,
						HeapTupleGetDatum(heap_form_tuple(st->tupdesc,
														  values, nulls)));
	}
	SRF_RETURN_DONE(funcctx);
}
