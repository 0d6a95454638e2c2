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
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "comparisons.h"
#include "pluralrm.h"

PG_FUNCTION_INFO_V1(reward_score);
PG_FUNCTION_INFO_V1(reward_score_named);

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
		"WHERE model_id = $1";
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

/* Load the current version of a named model into mcxt */
PrmModel *
PrmModelLoad(const char *name, MemoryContext mcxt)
{
	static const char *query =
		"SELECT v.kind, v.k, v.d, v.base_rewards, v.population, v.model_id, "
		"EXISTS (SELECT 1 FROM pluralrm.user_coefficients c "
		"WHERE c.model_id = v.model_id) "
		"FROM pluralrm.models m JOIN pluralrm.model_versions v "
		"ON v.name = m.name AND v.version = m.current_version "
		"WHERE m.name = $1";
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
	if (SPI_execute_with_args(query, 1, argtypes, args, NULL, true, 1) !=
		SPI_OK_SELECT)
		elog(ERROR, "could not read model \"%s\"", name);
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

	if (DatumGetBool(vals[6]))
		LoadUserCoefficients(model, DatumGetInt64(vals[5]), mcxt);

	SPI_finish();
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

/* Find the model for this call in fn_extra, loading it on first use */
static PrmModel *
CachedModel(FunctionCallInfo fcinfo, const char *name)
{
	PrmModel   *model = (PrmModel *) fcinfo->flinfo->fn_extra;

	if (model == NULL || strcmp(model->name, name) != 0)
	{
		model = PrmModelLoad(name, fcinfo->flinfo->fn_mcxt);
		fcinfo->flinfo->fn_extra = model;
	}
	return model;
}

/* Reward of a response embedding under a loaded model */
static double
ScoreResponse(PrmModel *model, FunctionCallInfo fcinfo, int user_argno,
			  ArrayType *response)
{
	const double *w = PrmModelUserWeights(model, fcinfo, user_argno);
	int			d = PrmEmbeddingDim(response, "response");
	double		sum = 0.0;

	if (d != model->d)
		PrmDimensionMismatch(model->d, d);

	if (ARR_ELEMTYPE(response) == FLOAT8OID)
	{
		const double *x = (const double *) ARR_DATA_PTR(response);

		for (int j = 0; j < d; j++)
			sum += w[j] * x[j];
	}
	else
	{
		const float *x = (const float *) ARR_DATA_PTR(response);

		for (int j = 0; j < d; j++)
			sum += w[j] * x[j];
	}
	if (!isfinite(sum))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("response embedding must not contain NaN or "
						"Infinity")));
	return sum;
}

/*
 * reward_score(user_id, response): reward under the model named by
 * pluralrm.model
 */
Datum
reward_score(PG_FUNCTION_ARGS)
{
	PrmModel   *model = CachedModel(fcinfo, PrmDefaultModelName());

	PG_RETURN_FLOAT8(ScoreResponse(model, fcinfo, 0,
								   PG_GETARG_ARRAYTYPE_P(1)));
}

/* reward_score(model, user_id, response): reward under a named model */
Datum
reward_score_named(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	PrmModel   *model = CachedModel(fcinfo, name);

	PG_RETURN_FLOAT8(ScoreResponse(model, fcinfo, 1,
								   PG_GETARG_ARRAYTYPE_P(2)));
}
