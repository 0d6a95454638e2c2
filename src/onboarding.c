/*
 * onboarding.c
 *	  Serving a new user without refitting: fit_user, the posterior of a
 *	  user's coefficients from a few comparisons under a stored model, and
 *	  next_questions, the comparisons that would teach the model most about
 *	  a user.
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "comparisons.h"
#include "pluralrm.h"
#include "prm_factor.h"

PG_FUNCTION_INFO_V1(fit_user_transfn);
PG_FUNCTION_INFO_V1(fit_user_finalfn);
PG_FUNCTION_INFO_V1(next_questions);

/* State of fit_user: the user's comparisons and the model's name */
typedef struct FitUserState
{
	PrmRows    *rows;
	char	   *model;
	double		strength;		/* 0: the model's own */
} FitUserState;

/*
 * Add one comparison: fit_user(model, chosen, rejected [, prior_strength])
 */
Datum
fit_user_transfn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext = PrmAggContext(fcinfo, "fit_user_transfn");
	PrmRowArgs	args = {-1, 2, 3, -1, -1};
	FitUserState *st;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("model name must not be NULL")));
	if (PG_ARGISNULL(0))
	{
		st = MemoryContextAllocZero(aggcontext, sizeof(FitUserState));
		st->rows = PrmRowsCreate(aggcontext, false, 0.0);
		st->model = MemoryContextStrdup(aggcontext,
										text_to_cstring(PG_GETARG_TEXT_PP(1)));
		if (PG_NARGS() > 4)
		{
			if (PG_ARGISNULL(4) || !(PG_GETARG_FLOAT8(4) > 0) ||
				isinf(PG_GETARG_FLOAT8(4)))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("prior_strength must be a finite number "
								"> 0")));
			st->strength = PG_GETARG_FLOAT8(4);
		}
	}
	else
		st = (FitUserState *) PG_GETARG_POINTER(0);
	PrmRowsAdd(st->rows, fcinfo, &args, aggcontext);
	PG_RETURN_POINTER(st);
}

/* Prior precision of a factor model, with an optional strength */
static double *
PriorPrecision(PrmModel *model, double strength)
{
	int			k = model->k;
	double	   *prec = palloc(sizeof(double) * k * k);

	memcpy(prec, model->prior_cov, sizeof(double) * k * k);
	if (PrmInvertSpd(prec, k) != PRM_OK)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("stored model \"%s\" is malformed", model->name),
				 errdetail("Its prior covariance is not positive "
						   "definite.")));
	for (int i = 0; i < k * k; i++)
		prec[i] *= strength > 0 ? strength : model->prior_strength;
	return prec;
}

/* Posterior over the classes of a mixture for one user's rows */
static void
MixturePosterior(PrmModel *model, PrmRows *rows, double *coef)
{
	int			k = model->k;
	double		top = -INFINITY;
	double		sum = 0.0;

	for (int c = 0; c < k; c++)
	{
		double		l = model->population[c] > 0 ?
			log(model->population[c]) : -INFINITY;

		for (int64 i = 0; i < rows->n; i++)
		{
			double		m = 0.0;

			for (int j = 0; j < model->d; j++)
				m += model->base[c * model->d + j] * rows->z[i * rows->d + j];
			l -= rows->weight[i] * PrmSoftplus(-m);
		}
		coef[c] = l;
		top = Max(top, l);
	}
	for (int c = 0; c < k; c++)
	{
		coef[c] = exp(coef[c] - top);
		sum += coef[c];
	}
	for (int c = 0; c < k; c++)
		coef[c] /= sum;
}

/*
 * The user's posterior: for a factor model the mode and Laplace covariance
 * of the coefficients under the stored base rewards and prior; for a
 * mixture the posterior over classes.
 */
Datum
fit_user_finalfn(PG_FUNCTION_ARGS)
{
	FitUserState *st;
	PrmModel   *model;
	TupleDesc	tupdesc;
	Datum		values[6];
	bool		nulls[6] = {0};
	double	   *coef,
			   *cov;
	int			iterations = 0;
	struct timespec t0,
				t1;

	PrmAggContext(fcinfo, "fit_user_finalfn");
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	st = (FitUserState *) PG_GETARG_POINTER(0);
	PrmRowsNoticeSkipped(st->rows, "fit_user");
	if (st->rows->n == 0)
		PG_RETURN_NULL();
	model = PrmModelLoad(st->model, CurrentMemoryContext, false);
	if (st->rows->d != model->d)
		PrmDimensionMismatch(model->d, st->rows->d);
	coef = palloc0(sizeof(double) * model->k);
	cov = palloc0(sizeof(double) * model->k * model->k);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (strcmp(model->kind, "factor") == 0)
	{
		PrmUserProblem up;
		void	   *work;

		up.n = (int) st->rows->n;
		up.d = model->d;
		up.k = model->k;
		up.z = st->rows->z;
		up.weight = st->rows->weight;
		up.base = model->base;
		up.mu = model->population;
		up.prec = PriorPrecision(model, st->strength);
		up.locked = model->locked;
		memcpy(coef, model->population, sizeof(double) * model->k);
		work = palloc(PrmUserWorkspaceSize(up.n, up.k));
		if (PrmUserPosterior(&up, coef, cov, work, &iterations) != PRM_OK)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("fit_user met a non-finite value or a singular "
							"Hessian")));
	}
	else if (strcmp(model->kind, "mixture") == 0)
	{
		MixturePosterior(model, st->rows, coef);
		nulls[3] = true;
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("fit_user needs a factor or mixture model, and "
						"\"%s\" is a %s model", model->name, model->kind)));
	clock_gettime(CLOCK_MONOTONIC, &t1);

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "fit_user_finalfn must return a composite type");
	tupdesc = BlessTupleDesc(tupdesc);
	values[0] = CStringGetTextDatum(model->kind);
	values[1] = Int64GetDatum(st->rows->n);
	values[2] = PrmFloatArray(coef, model->k, 0);
	if (!nulls[3])
		values[3] = PrmFloatArray(cov, model->k, model->k);
	values[4] = Int32GetDatum(iterations);
	values[5] = Float8GetDatum(PrmElapsedMs(&t0, &t1));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values,
													  nulls)));
}

/* Rows of a count x d float8[] of candidate embeddings, checked */
static const double *
CandidateMatrix(ArrayType *a, int d, int *count, const char *what)
{
	if (ARR_ELEMTYPE(a) != FLOAT8OID || ARR_NDIM(a) != 2)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("%s must be a 2-D float8[] with one candidate per "
						"row", what)));
	if (ARR_HASNULL(a) && array_contains_nulls(a))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not contain NULL", what)));
	if (ARR_DIMS(a)[1] != d)
		PrmDimensionMismatch(d, ARR_DIMS(a)[1]);
	*count = ARR_DIMS(a)[0];
	return (const double *) ARR_DATA_PTR(a);
}

/*
 * The selection found features that are not finite: name the candidate
 * matrix holding a NaN or Infinity, or else the overflow. The values are
 * checked only then, which spares a pass over every candidate on each call.
 */
static void
CandidatesNotFinite(const double *ca, const double *cb, Size values)
{
	for (Size i = 0; i < values; i++)
		if (!isfinite(ca[i]) || !isfinite(cb[i]))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("%s must not contain NaN or Infinity",
							isfinite(ca[i]) ? "candidates_b" :
							"candidates_a")));
	ereport(ERROR,
			(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
			 errmsg("the candidates' features under the model's base "
					"rewards are too large to represent")));
}

/* A user's coefficients and covariance given as a float8[] argument */
static void
PosteriorArgument(PrmModel *model, ArrayType *arr, int ndim, double *out,
				  const char *what)
{
	int			count = model->k * (ndim == 2 ? model->k : 1);

	if (ARR_ELEMTYPE(arr) != FLOAT8OID || ARR_NDIM(arr) != ndim ||
		ARR_DIMS(arr)[0] != model->k ||
		(ndim == 2 && ARR_DIMS(arr)[1] != model->k) ||
		(ARR_HASNULL(arr) && array_contains_nulls(arr)))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("%s must be a %s float8[] of %d without NULLs",
						what, ndim == 2 ? "k x k" : "1-D", model->k)));
	memcpy(out, ARR_DATA_PTR(arr), sizeof(double) * count);
	for (int i = 0; i < count; i++)
		if (!isfinite(out[i]))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("%s must not contain NaN or Infinity", what)));
}

/*
 * next_questions(model, user_id | coefficients + covariance, candidates_a,
 * candidates_b, n): the n candidate pairs to ask next, in order.
 */
Datum
next_questions(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	bool		explicit = PG_NARGS() == 6;
	int			arg = explicit ? 3 : 2;
	PrmModel   *model;
	const double *ca,
			   *cb;
	double	   *coef,
			   *cov;
	int			count,
				countb,
				nq,
				k,
				d;
	int		   *order;
	double	   *info;

	InitMaterializedSRF(fcinfo, 0);
	model = PrmModelLoad(name, CurrentMemoryContext, false);
	if (strcmp(model->kind, "factor") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("next_questions needs a factor model, and \"%s\" is "
						"a %s model", name, model->kind)));
	k = model->k;
	d = model->d;
	coef = palloc(sizeof(double) * k);
	cov = palloc(sizeof(double) * k * k);

	/* the user's posterior: given, stored, or the prior for a new user */
	if (explicit)
	{
		PosteriorArgument(model, PG_GETARG_ARRAYTYPE_P(1), 1, coef,
						  "coefficients");
		PosteriorArgument(model, PG_GETARG_ARRAYTYPE_P(2), 2, cov,
						  "covariance");
	}
	else if (!PrmModelStoredUser(model, text_to_cstring(PG_GETARG_TEXT_PP(1)),
								 coef, cov))
	{
		memcpy(coef, model->population, sizeof(double) * k);
		for (int i = 0; i < k * k; i++)
			cov[i] = model->prior_cov[i] / model->prior_strength;
	}

	ca = CandidateMatrix(PG_GETARG_ARRAYTYPE_P(arg), d, &count,
						 "candidates_a");
	cb = CandidateMatrix(PG_GETARG_ARRAYTYPE_P(arg + 1), d, &countb,
						 "candidates_b");
	if (count != countb)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("candidates_a has %d rows and candidates_b %d",
						count, countb)));
	nq = PG_GETARG_INT32(arg + 2);
	if (nq < 0 || nq > count)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot choose %d questions from %d candidates",
						nq, count)));
	order = palloc(sizeof(int) * Max(nq, 1));
	info = palloc(sizeof(double) * Max(nq, 1));
	if (PrmNextQuestions(count, d, k, ca, cb, model->base, coef, cov, nq,
						 order, info,
						 palloc_extended(PrmQuestionsWorkspaceSize(count, k),
										 MCXT_ALLOC_HUGE)) != PRM_OK)
		CandidatesNotFinite(ca, cb, (Size) count * d);

	for (int q = 0; q < nq; q++)
	{
		Datum		values[3];
		bool		nulls[3] = {0};

		values[0] = Int32GetDatum(q + 1);
		values[1] = Int32GetDatum(order[q] + 1);
		values[2] = Float8GetDatum(info[q]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values,
							 nulls);
	}
	return (Datum) 0;
}
