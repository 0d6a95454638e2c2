/*
 * model.c
 *	  Loading stored models and scoring responses with them.
 *
 * A model is read once per query: the first call of a scoring or
 * evaluation function loads the current version through SPI into the
 * function's fn_mcxt, and later calls find it in fn_extra.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "funcapi.h"
#include "nodes/nodeFuncs.h"
#include "nodes/supportnodes.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "comparisons.h"
#include "pluralrm.h"
#include "prm_factor.h"

PG_FUNCTION_INFO_V1(reward_score);
PG_FUNCTION_INFO_V1(reward_score_support);
PG_FUNCTION_INFO_V1(reward_score_named);
PG_FUNCTION_INFO_V1(divergence);

/* Raise the error for a stored model that cannot be used */
static void
MalformedModel(const char *name, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("stored model \"%s\" is malformed", name),
			 errdetail_internal("%s", detail)));
}

/* Copy a stored float8[] with the expected number of finite values */
static double *
StoredArray(const char *name, const char *column, Datum datum, int ndim,
			int dim0, int dim1)
{
	ArrayType  *a = DatumGetArrayTypeP(datum);
	int			count = dim0 * (ndim == 2 ? dim1 : 1);
	double	   *out;
	const double *src;

	if (ARR_ELEMTYPE(a) != FLOAT8OID)
		MalformedModel(name, psprintf("%s is not a float8[].", column));
	if (ARR_NDIM(a) != ndim || ARR_DIMS(a)[0] != dim0 ||
		(ndim == 2 && ARR_DIMS(a)[1] != dim1))
		MalformedModel(name,
					   ndim == 2 ?
					   psprintf("%s must be a %d x %d array.", column, dim0,
								dim1) :
					   psprintf("%s must be a 1-D array of %d values.",
								column, dim0));
	if (ARR_HASNULL(a) && array_contains_nulls(a))
		MalformedModel(name, psprintf("%s contains NULL.", column));

	src = (const double *) ARR_DATA_PTR(a);
	out = palloc(sizeof(double) * count);
	for (int i = 0; i < count; i++)
	{
		if (!isfinite(src[i]))
			MalformedModel(name, psprintf("%s contains NaN or Infinity.",
										  column));
		out[i] = src[i];
	}
	return out;
}

/*
 * Read the per-user coefficients of model version model_id into the model,
 * in batches through a cursor.
 */
static void
LoadUserCoefficients(PrmModel *model, int64 model_id, MemoryContext mcxt)
{
	static const char *query =
		"SELECT user_id, coefficients FROM pluralrm.user_coefficients "
		"WHERE model_id OPERATOR(pg_catalog.=) $1";
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(model_id)};
	Portal		portal;
	int64		cap = 1024;
	MemoryContext old;

	old = MemoryContextSwitchTo(mcxt);
	model->users = palloc0(sizeof(PrmUsers));
	model->coef = palloc_extended(sizeof(double) * cap * model->k,
								  MCXT_ALLOC_HUGE);
	model->cache_user = palloc(sizeof(int32) * PRM_USER_CACHE);
	model->cache_w = palloc_extended(sizeof(double) * PRM_USER_CACHE *
									 model->d, MCXT_ALLOC_HUGE);
	for (int i = 0; i < PRM_USER_CACHE; i++)
		model->cache_user[i] = -1;
	MemoryContextSwitchTo(old);

	portal = SPI_cursor_open_with_args(NULL, query, 1, argtypes, args, NULL,
									   true, 0);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, 10000);
		if (SPI_processed == 0)
			break;
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			HeapTuple	tup = SPI_tuptable->vals[r];
			bool		n1,
						n2;
			Datum		id = SPI_getbinval(tup, SPI_tuptable->tupdesc, 1,
										   &n1);
			Datum		cf = SPI_getbinval(tup, SPI_tuptable->tupdesc, 2,
										   &n2);
			text	   *key;
			double	   *c;
			int32		u;

			if (n1 || n2)
				MalformedModel(model->name, "A user row has a NULL column.");
			key = DatumGetTextPP(id);
			c = StoredArray(model->name, "coefficients", cf, 1, model->k, 0);
			old = MemoryContextSwitchTo(mcxt);
			u = PrmUsersLookup(model->users, VARDATA_ANY(key),
							   VARSIZE_ANY_EXHDR(key), true);
			if (u >= cap)
			{
				cap *= 2;
				model->coef = repalloc_huge(model->coef,
											sizeof(double) * cap * model->k);
			}
			MemoryContextSwitchTo(old);
			memcpy(model->coef + (size_t) u * model->k, c,
				   sizeof(double) * model->k);
			pfree(c);
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
}

/*
 * Run one of this file's fixed queries through a plan prepared once per
 * backend and kept. PostgreSQL's plan cache replans it when what it reads
 * changes; the caller is spared parsing and planning it on every call,
 * most of the cost of loading a small model.
 */
static int
ExecuteKept(SPIPlanPtr *plan, const char *query, int nargs, Oid *argtypes,
			Datum *args)
{
	if (*plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare(query, nargs, argtypes);

		if (p == NULL || SPI_keepplan(p) != 0)
			elog(ERROR, "could not prepare a query of pluralrm: %s",
				 SPI_result_code_string(SPI_result));
		*plan = p;
	}
	return SPI_execute_plan(*plan, args, NULL, true, 1);
}

/* Read the population prior of a factor model version */
static void
LoadPrior(PrmModel *model, MemoryContext mcxt)
{
	static const char *query =
		"SELECT covariance, strength, locked FROM pluralrm.model_priors "
		"WHERE model_id OPERATOR(pg_catalog.=) $1";
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(model->model_id)};
	bool		isnull[3];
	Datum		vals[3];
	MemoryContext old;
	ArrayType  *locked;
	Datum	   *elems;
	bool	   *nulls;
	int			count;

	if (ExecuteKept(&plan, query, 1, argtypes, args) != SPI_OK_SELECT)
		elog(ERROR, "could not read the prior of model \"%s\"",
			 model->name);
	if (SPI_processed == 0)
		MalformedModel(model->name, "A factor model has no prior row.");
	for (int i = 0; i < 3; i++)
	{
		vals[i] = SPI_getbinval(SPI_tuptable->vals[0],
								SPI_tuptable->tupdesc, i + 1, &isnull[i]);
		if (isnull[i])
			MalformedModel(model->name, "The prior has a NULL column.");
	}
	old = MemoryContextSwitchTo(mcxt);
	model->prior_cov = StoredArray(model->name, "prior covariance", vals[0],
								   2, model->k, model->k);
	model->prior_strength = DatumGetFloat8(vals[1]);
	if (!(model->prior_strength > 0) || isinf(model->prior_strength))
		MalformedModel(model->name, "The prior strength is not positive.");
	model->locked = palloc0(sizeof(int) * model->k);
	locked = DatumGetArrayTypeP(vals[2]);
	deconstruct_array(locked, INT4OID, sizeof(int32), true, TYPALIGN_INT,
					  &elems, &nulls, &count);
	for (int i = 0; i < count; i++)
	{
		int32		c = nulls[i] ? 0 : DatumGetInt32(elems[i]);

		if (c < 1 || c > model->k)
			MalformedModel(model->name, "A locked component is out of range.");
		model->locked[c - 1] = 1;
	}
	MemoryContextSwitchTo(old);
}

/*
 * Fail unless a stored covariance is symmetric and positive semidefinite
 * (locked components leave zero rows; a small ridge lets those pass).
 */
static void
CheckCovariance(PrmModel *model, const char *user_id, const double *cov)
{
	int			k = model->k;
	double	   *copy = palloc(sizeof(double) * k * k);
	double		scale = 0.0;

	for (int a = 0; a < k; a++)
		scale = Max(scale, fabs(cov[a * k + a]));
	for (int a = 0; a < k; a++)
		for (int b = 0; b < a; b++)
			if (fabs(cov[a * k + b] - cov[b * k + a]) >
				1e-8 * Max(scale, 1e-300))
				MalformedModel(model->name,
							   psprintf("The covariance of user \"%s\" is "
										"not symmetric.", user_id));
	memcpy(copy, cov, sizeof(double) * k * k);
	for (int a = 0; a < k; a++)
		copy[a * k + a] += 1e-12 * Max(scale, 1.0);
	if (PrmInvertSpd(copy, k) != PRM_OK)
		MalformedModel(model->name,
					   psprintf("The covariance of user \"%s\" is not "
								"positive definite.", user_id));
	pfree(copy);
}

/* Read a user's stored coefficients and covariance; false if absent */
bool
PrmModelStoredUser(PrmModel *model, const char *user_id, double *coef,
				   double *cov)
{
	static const char *query =
		"SELECT coefficients, covariance FROM pluralrm.user_coefficients "
		"WHERE model_id OPERATOR(pg_catalog.=) $1 "
		"AND user_id OPERATOR(pg_catalog.=) $2";
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[2] = {INT8OID, TEXTOID};
	Datum		args[2] = {Int64GetDatum(model->model_id),
	CStringGetTextDatum(user_id)};
	bool		n1,
				n2;
	Datum		c,
				v;
	double	   *tmp;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (ExecuteKept(&plan, query, 2, argtypes, args) != SPI_OK_SELECT)
		elog(ERROR, "could not read user \"%s\" of model \"%s\"", user_id,
			 model->name);
	if (SPI_processed == 0)
	{
		SPI_finish();
		return false;
	}
	c = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &n1);
	v = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &n2);
	if (n1 || n2)
		MalformedModel(model->name,
					   psprintf("User \"%s\" has no coefficients or no "
								"covariance.", user_id));
	tmp = StoredArray(model->name, "coefficients", c, 1, model->k, 0);
	memcpy(coef, tmp, sizeof(double) * model->k);
	tmp = StoredArray(model->name, "covariance", v, 2, model->k, model->k);
	memcpy(cov, tmp, sizeof(double) * model->k * model->k);
	CheckCovariance(model, user_id, cov);
	SPI_finish();
	return true;
}

/*
 * Load the current version of a named model into mcxt, with every user's
 * coefficients when with_users is set; NULL if there is no such model and
 * missing_ok is set.
 */
static PrmModel *
ModelLoad(const char *name, MemoryContext mcxt, bool with_users,
		  bool missing_ok)
{
	static const char *query =
		"SELECT v.kind, v.k, v.d, v.base_rewards, v.population, v.model_id, "
		"EXISTS (SELECT 1 FROM pluralrm.user_coefficients c "
		"WHERE c.model_id OPERATOR(pg_catalog.=) v.model_id) "
		"FROM pluralrm.models m JOIN pluralrm.model_versions v "
		"ON v.name OPERATOR(pg_catalog.=) m.name "
		"AND v.version OPERATOR(pg_catalog.=) m.current_version "
		"WHERE m.name OPERATOR(pg_catalog.=) $1";
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	PrmModel   *model;
	MemoryContext old;
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull[7];
	Datum		vals[7];

	args[0] = CStringGetTextDatum(name);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (ExecuteKept(&plan, query, 1, argtypes, args) != SPI_OK_SELECT)
		elog(ERROR, "could not read model \"%s\"", name);
	if (SPI_processed == 0 && missing_ok)
	{
		SPI_finish();
		return NULL;
	}
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("model \"%s\" does not exist", name),
				 errhint("See pluralrm.model_list for saved models.")));

	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	for (int i = 0; i < 7; i++)
	{
		vals[i] = SPI_getbinval(tup, desc, i + 1, &isnull[i]);
		if (isnull[i])
			MalformedModel(name, psprintf("Column %s is NULL.",
										  SPI_fname(desc, i + 1)));
	}

	old = MemoryContextSwitchTo(mcxt);
	model = palloc0(sizeof(PrmModel));
	model->name = pstrdup(name);
	model->kind = TextDatumGetCString(vals[0]);
	model->k = DatumGetInt32(vals[1]);
	model->d = DatumGetInt32(vals[2]);
	if (model->k < 1 || model->d < 1 || model->d > PRM_MAX_DIM ||
		model->k > PRM_MAX_DIM)
		MalformedModel(name, psprintf("k = %d and d = %d are out of range.",
									  model->k, model->d));
	model->base = StoredArray(name, "base_rewards", vals[3], 2, model->k,
							  model->d);
	model->population = StoredArray(name, "population", vals[4], 1,
									model->k, 0);

	/* the population's weight vector, and the single BTL's only one */
	model->effective = palloc0(sizeof(double) * model->d);
	for (int c = 0; c < model->k; c++)
		for (int j = 0; j < model->d; j++)
			model->effective[j] += model->population[c] *
				model->base[c * model->d + j];
	MemoryContextSwitchTo(old);

	model->model_id = DatumGetInt64(vals[5]);
	if (strcmp(model->kind, "factor") == 0)
		LoadPrior(model, mcxt);
	if (with_users && DatumGetBool(vals[6]))
		LoadUserCoefficients(model, model->model_id, mcxt);

	SPI_finish();
	return model;
}

/* Load the current version of a named model, optionally with its users */
PrmModel *
PrmModelLoad(const char *name, MemoryContext mcxt, bool with_users)
{
	return ModelLoad(name, mcxt, with_users, false);
}

/*
 * The warm start that pluralrm.warm_start names: the current version of
 * that model when it has kind kind (any when NULL), k components (any when
 * 0) and dimension d. NULL when the setting is empty or the model does not
 * exist yet (a first refit); a NOTICE says why a model that exists is not
 * used. A malformed stored model is an error, as everywhere.
 */
PrmModel *
PrmWarmStart(const char *fit, const char *kind, int k, int d)
{
	PrmModel   *model;

	if (prm_warm_start == NULL || prm_warm_start[0] == '\0')
		return NULL;
	model = ModelLoad(prm_warm_start, CurrentMemoryContext, false, true);
	if (model == NULL)
		return NULL;
	if ((kind && strcmp(model->kind, kind) != 0) ||
		(k > 0 && model->k != k) || model->d != d)
	{
		ereport(NOTICE,
				(errmsg("%s is not warm-started from model \"%s\"", fit,
						prm_warm_start),
				 errdetail("The model is a %s model with k = %d and d = %d; "
						   "the fit needs %s%s with k = %d and d = %d.",
						   model->kind, model->k, model->d,
						   kind ? "a " : "any model", kind ? kind : "",
						   k, d)));
		return NULL;
	}
	return model;
}

/* Name of the model to use when none is given */
const char *
PrmDefaultModelName(void)
{
	if (prm_model_setting == NULL || prm_model_setting[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("no model named and pluralrm.model is not set"),
				 errhint("SET pluralrm.model = 'name', or pass the model "
						 "name as the first argument.")));
	return prm_model_setting;
}

/*
 * Weight vector that serves a user: sum_c coefficients[c] * base[c] for a
 * user with coefficients of their own, the population's vector for anyone
 * else (and for every user of a single BTL model). A user's vector is
 * computed on first use and kept in a direct-mapped cache.
 */
const double *
PrmModelUserWeights(PrmModel *model, FunctionCallInfo fcinfo,
					int user_argno)
{
	int			len;
	char	   *key;
	int32		u;
	int			slot;
	double	   *w;

	if (model->users == NULL || user_argno < 0)
		return model->effective;
	key = PrmUserIdText(fcinfo, user_argno, &model->user_type,
						&model->user_out, fcinfo->flinfo->fn_mcxt, &len);
	u = PrmUsersLookup(model->users, key, len, false);
	if (u < 0)
		return model->effective;

	slot = u % PRM_USER_CACHE;
	w = model->cache_w + (size_t) slot * model->d;
	if (model->cache_user[slot] != u)
	{
		const double *c = model->coef + (size_t) u * model->k;

		memset(w, 0, sizeof(double) * model->d);
		for (int b = 0; b < model->k; b++)
			for (int j = 0; j < model->d; j++)
				w[j] += c[b] * model->base[b * model->d + j];
		model->cache_user[slot] = u;
	}
	return w;
}

/*
 * Find the model named by the len bytes at name (not NUL-terminated) in
 * fn_extra, loading it on first use: a row costs no copy of the name.
 */
static PrmModel *
CachedModel(FunctionCallInfo fcinfo, const char *name, int len)
{
	PrmModel   *model = (PrmModel *) fcinfo->flinfo->fn_extra;

	if (model == NULL || strncmp(model->name, name, len) != 0 ||
		model->name[len] != '\0')
	{
		model = PrmModelLoad(pnstrdup(name, len), fcinfo->flinfo->fn_mcxt,
							 true);
		fcinfo->flinfo->fn_extra = model;
	}
	return model;
}

/* Reward of a response embedding under a loaded model */
static double
ScoreResponse(PrmModel *model, FunctionCallInfo fcinfo, int user_argno,
			  ArrayType *response, double alpha)
{
	const double *w = PrmModelUserWeights(model, fcinfo, user_argno);
	int			d = PrmEmbeddingDim(response, "response");
	double		sum;

	if (d != model->d)
		PrmDimensionMismatch(model->d, d);

	sum = PrmEmbeddingDot(response, w, d);
	if (alpha > 0 && w != model->effective)
		sum = (1.0 - alpha) * sum +
			alpha * PrmEmbeddingDot(response, model->effective, d);
	if (!isfinite(sum))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("response embedding must not contain NaN or "
						"Infinity")));
	return sum;
}

/* Check a consensus blend weight */
static double
CheckBlend(double alpha)
{
	if (!(alpha >= 0 && alpha <= 1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("consensus blend must be between 0 and 1, not %g",
						alpha)));
	return alpha;
}

/*
 * reward_score(user_id, response): reward under the model named by
 * pluralrm.model, blended with the population by pluralrm.consensus_blend
 */
Datum
reward_score(PG_FUNCTION_ARGS)
{
	const char *name = PrmDefaultModelName();
	PrmModel   *model = CachedModel(fcinfo, name, strlen(name));

	PG_RETURN_FLOAT8(ScoreResponse(model, fcinfo, 0,
								   PG_GETARG_ARRAYTYPE_P(1),
								   prm_consensus_blend));
}

/*
 * reward_score(model, user_id, response [, alpha]): reward under a named
 * model, (1 - alpha) times the user's plus alpha times the population's
 */
Datum
reward_score_named(PG_FUNCTION_ARGS)
{
	text	   *name = PG_GETARG_TEXT_PP(0);
	PrmModel   *model = CachedModel(fcinfo, VARDATA_ANY(name),
									VARSIZE_ANY_EXHDR(name));
	double		alpha = PG_NARGS() > 3 ? CheckBlend(PG_GETARG_FLOAT8(3)) :
		prm_consensus_blend;

	PG_RETURN_FLOAT8(ScoreResponse(model, fcinfo, 1,
								   PG_GETARG_ARRAYTYPE_P(2), alpha));
}

/*
 * divergence(model, probes_a, probes_b [, alpha]): for every user with
 * coefficients, the share of probe pairs that user's (blended) reward
 * orders differently from the population reward.
 */
Datum
divergence(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	ArrayType  *pa = PG_GETARG_ARRAYTYPE_P(1);
	ArrayType  *pb = PG_GETARG_ARRAYTYPE_P(2);
	double		alpha = CheckBlend(PG_GETARG_FLOAT8(3));
	PrmModel   *model;
	int			d,
				count;
	double	   *diff,
			   *popm,
			   *w;

	InitMaterializedSRF(fcinfo, 0);
	model = PrmModelLoad(name, CurrentMemoryContext, true);
	d = model->d;
	if (ARR_ELEMTYPE(pa) != FLOAT8OID || ARR_NDIM(pa) != 2 ||
		ARR_ELEMTYPE(pb) != FLOAT8OID || ARR_NDIM(pb) != 2 ||
		ARR_DIMS(pa)[0] != ARR_DIMS(pb)[0] ||
		(ARR_HASNULL(pa) && array_contains_nulls(pa)) ||
		(ARR_HASNULL(pb) && array_contains_nulls(pb)))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("probes must be two 2-D float8[] with one response "
						"per row, the same number of rows and no NULLs")));
	if (ARR_DIMS(pa)[1] != d || ARR_DIMS(pb)[1] != d)
		PrmDimensionMismatch(d, ARR_DIMS(pa)[1] != d ? ARR_DIMS(pa)[1] :
							 ARR_DIMS(pb)[1]);
	count = ARR_DIMS(pa)[0];
	diff = palloc_extended(sizeof(double) * (Size) count * d,
						   MCXT_ALLOC_HUGE);
	popm = palloc(sizeof(double) * Max(count, 1));
	w = palloc(sizeof(double) * d);
	for (Size i = 0; i < (Size) count * d; i++)
	{
		diff[i] = ((const double *) ARR_DATA_PTR(pa))[i] -
			((const double *) ARR_DATA_PTR(pb))[i];
		if (!isfinite(diff[i]))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("probes must not contain NaN or Infinity")));
	}
	for (int p = 0; p < count; p++)
	{
		popm[p] = 0.0;
		for (int j = 0; j < d; j++)
			popm[p] += model->effective[j] * diff[(Size) p * d + j];
	}

	for (int32 u = 0; model->users && u < model->users->count; u++)
	{
		const double *c = model->coef + (size_t) u * model->k;
		int			differ = 0;
		Datum		values[3];
		bool		nulls[3] = {0};

		CHECK_FOR_INTERRUPTS();
		for (int j = 0; j < d; j++)
		{
			w[j] = 0.0;
			for (int b = 0; b < model->k; b++)
				w[j] += c[b] * model->base[b * d + j];
			w[j] = (1.0 - alpha) * w[j] + alpha * model->effective[j];
		}
		for (int p = 0; p < count; p++)
		{
			double		m = 0.0;

			for (int j = 0; j < d; j++)
				m += w[j] * diff[(Size) p * d + j];
			differ += (m > 0 && popm[p] < 0) || (m < 0 && popm[p] > 0);
		}
		values[0] = PrmUsersKey(model->users, u);
		values[1] = Float8GetDatum(count > 0 ? (double) differ / count : 0);
		values[2] = Int32GetDatum(count);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values,
							 nulls);
	}
	return (Datum) 0;
}

/*
 * Planner support of reward_score: a real[] response reaches the float8[]
 * parameter through the implicit cast, which builds a float8[] copy of
 * every row's array. reward_score reads real[] itself, so the call is
 * simplified to pass the real[] array as it is.
 */
Datum
reward_score_support(PG_FUNCTION_ARGS)
{
	Node	   *rawreq = (Node *) PG_GETARG_POINTER(0);
	SupportRequestSimplify *req;
	FuncExpr   *call;
	List	   *args = NIL;
	ListCell   *lc;
	bool		changed = false;

	if (!IsA(rawreq, SupportRequestSimplify))
		PG_RETURN_POINTER(NULL);
	req = (SupportRequestSimplify *) rawreq;
	foreach(lc, req->fcall->args)
	{
		Node	   *arg = (Node *) lfirst(lc);

		if (IsA(arg, ArrayCoerceExpr))
		{
			ArrayCoerceExpr *coerce = (ArrayCoerceExpr *) arg;

			if (coerce->resulttype == FLOAT8ARRAYOID &&
				exprType((Node *) coerce->arg) == FLOAT4ARRAYOID)
			{
				arg = (Node *) coerce->arg;
				changed = true;
			}
		}
		args = lappend(args, arg);
	}
	if (!changed)
		PG_RETURN_POINTER(NULL);
	call = makeNode(FuncExpr);
	memcpy(call, req->fcall, sizeof(FuncExpr));
	call->args = args;
	PG_RETURN_POINTER(call);
}
