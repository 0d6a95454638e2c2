/*
 * mixture_fit.c
 *	  The mixture_fit and mixture_select aggregates: mixtures of linear BTL
 *	  models with a latent class per user.
 *
 * The transition, combine, serialize and deserialize functions are those of
 * btl_fit with a user column (comparisons.c); the final functions renumber
 * the users in key order and run the core's EM (prm_mixture.c).
 */
#include "postgres.h"

#include <math.h>
#include <time.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "comparisons.h"
#include "pluralrm.h"
#include "prm_mixture.h"

#define DEFAULT_L2 1.0
#define MAX_COMPONENTS 256

PG_FUNCTION_INFO_V1(mixture_fit_transfn);
PG_FUNCTION_INFO_V1(mixture_fit_finalfn);
PG_FUNCTION_INFO_V1(mixture_select_finalfn);

/*
 * Add one comparison: mixture_fit(user_id, chosen, rejected, k [, weight
 * [, l2 [, restarts, seed]]]), and likewise mixture_select with k_max.
 */
Datum
mixture_fit_transfn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext = PrmAggContext(fcinfo, "mixture_fit_transfn");
	PrmRowArgs	args = {1, 2, 3, PG_NARGS() > 5 ? 5 : -1,
	PG_NARGS() > 6 ? 6 : -1};
	PrmRows    *rows;
	int32		k;
	PrmFitOptions options = {0};

	if (PG_ARGISNULL(0))
		rows = PrmRowsCreate(aggcontext, true, DEFAULT_L2);
	else
		rows = (PrmRows *) PG_GETARG_POINTER(0);

	if (PG_ARGISNULL(4) || (PG_NARGS() > 7 &&
							(PG_ARGISNULL(7) || PG_ARGISNULL(8))))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("k, restarts and seed must not be NULL")));
	k = PG_GETARG_INT32(4);
	if (k < 1 || k > MAX_COMPONENTS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k must be between 1 and %d, not %d",
						MAX_COMPONENTS, k)));
	options.k = k;
	options.restarts = PRM_MIXTURE_DEFAULT_RESTARTS;
	if (PG_NARGS() > 7)
	{
		options.restarts = PG_GETARG_INT32(7);
		options.seed = PG_GETARG_INT64(8);
		if (options.restarts < 1 || options.restarts > 1000)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("restarts must be between 1 and 1000, not %d",
							options.restarts)));
	}
	PrmRowsSetOptions(rows, &options);
	PrmRowsAdd(rows, fcinfo, &args, aggcontext);
	PG_RETURN_POINTER(rows);
}

/* Raise the error for a core status other than success */
static void
MixtureReportStatus(PrmStatus status)
{
	switch (status)
	{
		case PRM_OK:
		case PRM_NOT_CONVERGED:
			break;
		case PRM_NO_INFORMATION:
		case PRM_SEPARABLE:
		case PRM_BAD_INPUT:
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("mixture fit met a non-finite value"),
					 errhint("Check embeddings and weights for extreme "
							 "magnitudes, or raise l2.")));
			break;
		case PRM_NOT_POSITIVE_DEFINITE:
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("mixture fit could not factor a Hessian")));
			break;
	}
}

/* A fitted mixture and what the final function reports of it */
typedef struct MixtureFit
{
	int			k;
	double	   *base;
	double	   *mixing;
	double	   *resp;
	PrmMixtureResult res;
	double		solve_ms;
} MixtureFit;

/* Run EM for k components over the collected rows */
static void
FitMixture(PrmRows *rows, int k, MixtureFit *fit)
{
	PrmMixtureProblem prob;
	PrmMixtureOptions opt = {0};
	PrmModel   *warm;
	void	   *work;
	struct timespec t0,
				t1;

	prob.n = rows->n;
	prob.d = rows->d;
	prob.z = rows->z;
	prob.weight = rows->weight;
	prob.user = rows->user;
	prob.users = rows->users->count;
	prob.k = k;
	prob.l2 = rows->l2;
	opt.restarts = rows->options.restarts;
	opt.seed = (uint64_t) rows->options.seed;
	opt.tol = PRM_MIXTURE_DEFAULT_TOL;
	opt.max_iter = PRM_MIXTURE_DEFAULT_MAX_ITER;
	opt.restart_users = PRM_MIXTURE_DEFAULT_RESTART_USERS;
	opt.trace = NULL;
	/* a warm start of another k (mixture_select) is skipped quietly */
	warm = PrmWarmStart("mixture_fit", "mixture", 0, rows->d);
	if (warm && warm->k == k)
	{
		opt.start_base = warm->base;
		opt.start_mixing = warm->population;
	}

	PrmFitMemoryCheck(PrmHeldBytes(rows),
					  PrmMixtureWorkspaceSize(&prob, &opt) +
					  sizeof(double) * k * ((Size) prob.users + rows->d + 1),
					  "mixture_fit");
	fit->k = k;
	fit->base = palloc(sizeof(double) * k * rows->d);
	fit->mixing = palloc(sizeof(double) * k);
	fit->resp = palloc_extended(sizeof(double) * k * (Size) prob.users,
								MCXT_ALLOC_HUGE);
	work = palloc_extended(PrmMixtureWorkspaceSize(&prob, &opt),
						   MCXT_ALLOC_HUGE);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	PrmMixtureFit(&prob, &opt, fit->base, fit->mixing, fit->resp, work,
				  &fit->res);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	pfree(work);
	fit->solve_ms = PrmElapsedMs(&t0, &t1);
	MixtureReportStatus(fit->res.status);
	if (!fit->res.converged)
		ereport(NOTICE,
				(errmsg("mixture fit with k = %d did not converge in %d EM "
						"iterations", k, fit->res.iterations)));
}

/* Check the collected rows can be fitted with k components */
static void
CheckMixtureInput(PrmRows *rows, int k)
{
	if (!(rows->l2 > 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("mixture fits need l2 > 0"),
				 errdetail("Without a penalty a component that serves few "
						   "users can have infinite weights.")));
	if (rows->users->count < k)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k = %d is larger than the number of users, %d",
						k, rows->users->count)));
}

/* Build the pluralrm.mixture_model row of a fit */
static Datum
MixtureRow(FunctionCallInfo fcinfo, PrmRows *rows, MixtureFit *fit,
		   Datum bic_by_k, bool bic_null)
{
	TupleDesc	tupdesc;
	Datum		values[19];
	bool		nulls[19] = {0};
	int32		users = rows->users->count;
	Datum	   *ids;
	Size		bytes;

	/* the result is one value: keep it well under the 1 GB limit */
	bytes = add_size(mul_size(mul_size(users, fit->k + 2), sizeof(double)),
					 rows->users->keys_len);
	if (bytes > MaxAllocSize / 2)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a mixture over %d users is too large to return as "
						"one value", users),
				 errhint("Fit per segment with GROUP BY, or lower k.")));

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "mixture final function must return a composite type");
	tupdesc = BlessTupleDesc(tupdesc);

	ids = palloc_extended(sizeof(Datum) * Max(users, 1), MCXT_ALLOC_HUGE);
	for (int32 u = 0; u < users; u++)
		ids[u] = PrmUserKey(rows, u);

	values[0] = Int64GetDatum(rows->n);
	values[1] = Int64GetDatum(users);
	values[2] = Int32GetDatum(rows->d);
	values[3] = Int32GetDatum(fit->k);
	values[4] = Float8GetDatum(rows->l2);
	values[5] = Float8GetDatum(fit->res.loglik);
	values[6] = Float8GetDatum(fit->res.bic);
	values[7] = Int32GetDatum(fit->res.iterations);
	values[8] = BoolGetDatum(fit->res.converged);
	values[9] = Int32GetDatum(fit->res.restarts);
	values[10] = Int32GetDatum(fit->res.restarts_at_best);
	values[11] = Int32GetDatum(fit->res.sampled_users);
	values[12] = Float8GetDatum(fit->solve_ms);
	values[13] = Int64GetDatum(rows->skipped);
	values[14] = bic_by_k;
	nulls[14] = bic_null;
	values[15] = PrmFloatArray(fit->mixing, fit->k, 0);
	values[16] = PrmFloatArray(fit->base, fit->k, rows->d);
	values[17] = PointerGetDatum(construct_array(ids, users, TEXTOID, -1,
												 false, TYPALIGN_INT));
	values[18] = PrmFloatArray(fit->resp, users, fit->k);
	return HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls));
}

/* Fit a k-component mixture and return it as a pluralrm.mixture_model */
Datum
mixture_fit_finalfn(PG_FUNCTION_ARGS)
{
	PrmRows    *rows;
	MixtureFit	fit;

	PrmAggContext(fcinfo, "mixture_fit_finalfn");
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	rows = (PrmRows *) PG_GETARG_POINTER(0);
	PrmRowsNoticeSkipped(rows, "mixture_fit");
	if (rows->n == 0)
		PG_RETURN_NULL();
	CheckMixtureInput(rows, rows->options.k);
	PrmRowsSortUsers(rows);
	FitMixture(rows, rows->options.k, &fit);
	PG_RETURN_DATUM(MixtureRow(fcinfo, rows, &fit, (Datum) 0, true));
}

/*
 * Fit k = 1 .. k_max components and return the fit with the lowest BIC,
 * with every BIC in bic_by_k.
 */
Datum
mixture_select_finalfn(PG_FUNCTION_ARGS)
{
	PrmRows    *rows;
	MixtureFit	best = {0};
	double	   *bics;
	int			kmax;

	PrmAggContext(fcinfo, "mixture_select_finalfn");
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	rows = (PrmRows *) PG_GETARG_POINTER(0);
	PrmRowsNoticeSkipped(rows, "mixture_select");
	if (rows->n == 0)
		PG_RETURN_NULL();
	CheckMixtureInput(rows, 1);
	PrmRowsSortUsers(rows);

	kmax = Min(rows->options.k, rows->users->count);
	bics = palloc(sizeof(double) * kmax);
	for (int k = 1; k <= kmax; k++)
	{
		MixtureFit	fit;

		FitMixture(rows, k, &fit);
		bics[k - 1] = fit.res.bic;
		if (k == 1 || fit.res.bic < best.res.bic)
			best = fit;
	}
	PG_RETURN_DATUM(MixtureRow(fcinfo, rows, &best,
							   PrmFloatArray(bics, kmax, 0), false));
}
