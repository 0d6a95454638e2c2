/*
 * synthetic.c
 *	  synthetic_comparisons: comparisons drawn from known reward vectors,
 *	  with planted groups, label noise, re-asks and planted rater kinds.
 *
 * Every pair has its own random stream, selected by the seed and the
 * pair's number, so a row depends only on the arguments and its position:
 * the same call gives the same rows in any session, and changing a share
 * of rater kinds changes labels but not embeddings. Users are put in
 * groups and kinds through two seeded permutations of their numbers, which
 * gives exact counts (cumulative rounding of share x users) without
 * storing anything per user.
 *
 * The rows are produced one per call (value-per-call mode): a call in a
 * select list streams them and stops early under a LIMIT; a call in FROM
 * is materialized by the executor first.
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "funcapi.h"
#include "nodes/nodeFuncs.h"
#include "nodes/supportnodes.h"
#include "optimizer/optimizer.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "pluralrm.h"
#include "prm_core.h"
#include "prm_random.h"

/* Argument positions of synthetic_comparisons */
enum
{
	ARG_USERS,
	ARG_PER_USER,
	ARG_D,
	ARG_SHARES,
	ARG_WEIGHTS,
	ARG_AGREEMENT,
	ARG_SCALE,
	ARG_NOISE,
	ARG_SEED,
	ARG_REASKS,
	ARG_NON_ATTITUDE,
	ARG_CONSTRUCTED,
	NUM_ARGS
};

/* Kinds of planted raters */
typedef enum SynthKind
{
	KIND_STABLE,
	KIND_NON_ATTITUDE,
	KIND_CONSTRUCTED
} SynthKind;

static const char *const kind_names[] = {"stable", "non_attitude",
"constructed"};

/* How often a constructed rater picks the response shown first */
#define CONSTRUCTED_FIRST_RATE 0.9

/* Most groups accepted */
#define MAX_GROUPS 1000

/* Random streams: the true vectors, the permutation keys, then pairs */
#define STREAM_WEIGHTS 0
#define STREAM_KEYS 1
#define STREAM_FIRST_PAIR 2

/* Everything the rows are generated from */
typedef struct SynthSpec
{
	int64		users;
	int32		per_user;		/* pairs per user */
	int32		reasks;
	int32		d;
	int32		groups;
	double		noise;
	uint64		seed;
	double	   *weights;		/* groups x d true reward vectors */
	int64	   *group_end;		/* group g holds ranks below group_end[g] */
	int64		non_attitude_end;	/* kind ranks below are non-attitudes */
	int64		constructed_end;	/* then constructed up to here */
	uint64		group_key;
	uint64		kind_key;
	int64		rows;
} SynthSpec;

/* Multi-call state: the spec and the pair being asked */
typedef struct SynthState
{
	SynthSpec	spec;
	TupleDesc	tupdesc;
	Datum		kind_text[3];
	int64		pair;			/* index of the cached pair, or -1 */
	int32		group;
	SynthKind	kind;
	int			first_condition;	/* condition of the first ask */
	bool		stable_a;		/* a stable rater's answer: a beats b */
	PrmRandom	rng;			/* the pair's stream, after its setup */
	double	   *xa;
	double	   *xb;
} SynthState;

PG_FUNCTION_INFO_V1(synthetic_comparisons);
PG_FUNCTION_INFO_V1(synthetic_comparisons_support);

/* Fail when a required argument is NULL */
static void
RequireArg(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", name)));
}

/* Check that a float8 argument is finite and within [lo, hi] */
static double
CheckedReal(FunctionCallInfo fcinfo, int argno, const char *name,
			double lo, double hi)
{
	double		x;

	RequireArg(fcinfo, argno, name);
	x = PG_GETARG_FLOAT8(argno);
	if (!(x >= lo && x <= hi))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be between %g and %g, not %g",
						name, lo, hi, x)));
	return x;
}

/* Check that an integer argument is within [lo, hi] */
static int32
CheckedInt(FunctionCallInfo fcinfo, int argno, const char *name,
		   int32 lo, int32 hi)
{
	int32		x;

	RequireArg(fcinfo, argno, name);
	x = PG_GETARG_INT32(argno);
	if (x < lo || x > hi)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be between %d and %d, not %d",
						name, lo, hi, x)));
	return x;
}

/*
 * Values of a float8[] argument with no NULL and no NaN or Infinity; sets
 * *ndim and dims (two entries)
 */
static double *
CheckedArray(ArrayType *a, const char *name, int *ndim, int *dims)
{
	int			count;
	double	   *out;

	if (ARR_ELEMTYPE(a) != FLOAT8OID)
		elog(ERROR, "%s must be a float8[]", name);
	if (ARR_NDIM(a) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s must not be empty", name)));
	if (ARR_NDIM(a) > 2)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s must have 1 or 2 dimensions, not %d",
						name, ARR_NDIM(a))));
	if (ARR_HASNULL(a) && array_contains_nulls(a))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not contain NULL elements", name)));

	*ndim = ARR_NDIM(a);
	dims[0] = ARR_DIMS(a)[0];
	dims[1] = *ndim == 2 ? ARR_DIMS(a)[1] : 1;
	count = dims[0] * dims[1];
	out = palloc(sizeof(double) * count);
	memcpy(out, ARR_DATA_PTR(a), sizeof(double) * count);
	for (int i = 0; i < count; i++)
		if (!isfinite(out[i]))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("%s must not contain NaN or Infinity", name)));
	return out;
}

/* Group shares: positive, summing to 1 within 1e-9; returns the count */
static double *
ReadShares(FunctionCallInfo fcinfo, int *groups)
{
	int			ndim,
				dims[2];
	double	   *shares;
	double		sum = 0.0;

	RequireArg(fcinfo, ARG_SHARES, "group_shares");
	shares = CheckedArray(PG_GETARG_ARRAYTYPE_P(ARG_SHARES), "group_shares",
						  &ndim, dims);
	if (ndim != 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("group_shares must be a 1-D array, not %d-D", ndim)));
	if (dims[0] > MAX_GROUPS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("group_shares has %d groups, more than the limit "
						"of %d", dims[0], MAX_GROUPS)));
	for (int g = 0; g < dims[0]; g++)
	{
		if (!(shares[g] > 0.0))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("group share %d must be positive, not %g",
							g + 1, shares[g])));
		sum += shares[g];
	}
	if (fabs(sum - 1.0) > 1e-9)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("group_shares must sum to 1, not %.12g", sum)));
	for (int g = 0; g < dims[0]; g++)
		shares[g] /= sum;
	*groups = dims[0];
	return shares;
}

/*
 * The true reward vectors: given as a groups x d array, or group 0's drawn
 * with norm scale and the others equal to it times agreement elementwise
 */
static double *
ReadWeights(FunctionCallInfo fcinfo, SynthSpec *spec)
{
	int			d = spec->d,
				groups = spec->groups;
	double	   *w = palloc(sizeof(double) * groups * d);
	double	   *agree = NULL;
	int			ndim,
				dims[2];

	if (!PG_ARGISNULL(ARG_AGREEMENT))
	{
		agree = CheckedArray(PG_GETARG_ARRAYTYPE_P(ARG_AGREEMENT),
							 "agreement", &ndim, dims);
		if (ndim != 1 || dims[0] != d)
			ereport(ERROR,
					(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
					 errmsg("agreement must have d = %d values, not %d",
							d, dims[0] * dims[1]),
					 errdetail("agreement holds one factor per dimension.")));
	}

	if (!PG_ARGISNULL(ARG_WEIGHTS))
	{
		double	   *given;

		if (agree)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("agreement applies only when group_weights is "
							"NULL"),
					 errhint("Pass the true vectors of every group in "
							 "group_weights, or agreement alone.")));
		given = CheckedArray(PG_GETARG_ARRAYTYPE_P(ARG_WEIGHTS),
							 "group_weights", &ndim, dims);
		if (ndim == 1 && groups == 1)
		{
			dims[1] = dims[0];
			dims[0] = 1;
		}
		else if (ndim == 1)
			ereport(ERROR,
					(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
					 errmsg("group_weights must be a %d x %d array, not 1-D",
							groups, d),
					 errhint("Write one row per group, e.g. "
							 "ARRAY[[1, 0], [-1, 0]].")));
		if (dims[0] != groups || dims[1] != d)
			ereport(ERROR,
					(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
					 errmsg("group_weights must be a %d x %d array, not "
							"%d x %d", groups, d, dims[0], dims[1]),
					 errdetail("One row per group share, one column per "
							   "dimension.")));
		memcpy(w, given, sizeof(double) * groups * d);
		return w;
	}

	/* group 0: a random direction with norm scale */
	{
		PrmRandom	r;
		double		norm;
		double		scale = CheckedReal(fcinfo, ARG_SCALE, "scale", 0.0,
										1e6);

		PrmRandomSeed(&r, spec->seed, STREAM_WEIGHTS);
		for (int j = 0; j < d; j++)
			w[j] = PrmRandomNormal(&r);
		norm = PrmNorm2(w, d);
		for (int j = 0; j < d; j++)
			w[j] *= norm > 0.0 ? scale / norm : 0.0;
	}
	for (int g = 1; g < groups; g++)
		for (int j = 0; j < d; j++)
			w[g * d + j] = w[j] * (agree ? agree[j] : -1.0);
	return w;
}

/* Round x to the nearest integer count */
static int64
RoundCount(double x)
{
	return (int64) floor(x + 0.5);
}

/* Check the arguments and build the spec in the current memory context */
static void
ReadSpec(FunctionCallInfo fcinfo, SynthSpec *spec)
{
	double	   *shares;
	double		na,
				cons,
				cum = 0.0;
	int64		pairs;
	PrmRandom	r;

	spec->users = CheckedInt(fcinfo, ARG_USERS, "users", 1, PG_INT32_MAX);
	spec->per_user = CheckedInt(fcinfo, ARG_PER_USER, "comparisons_per_user",
								1, PG_INT32_MAX);
	spec->d = CheckedInt(fcinfo, ARG_D, "d", 1, PG_INT32_MAX);
	if (spec->d > PRM_MAX_DIM)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("d = %d is more than the limit of %d dimensions",
						spec->d, PRM_MAX_DIM)));
	spec->reasks = CheckedInt(fcinfo, ARG_REASKS, "reasks", 1, 1000);
	spec->noise = CheckedReal(fcinfo, ARG_NOISE, "noise", 0.0, 1.0);
	na = CheckedReal(fcinfo, ARG_NON_ATTITUDE, "non_attitude_share", 0.0, 1.0);
	cons = CheckedReal(fcinfo, ARG_CONSTRUCTED, "constructed_share", 0.0, 1.0);
	if (na + cons > 1.0 + 1e-12)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("non_attitude_share and constructed_share must add "
						"up to at most 1, not %g", na + cons)));
	RequireArg(fcinfo, ARG_SEED, "seed");
	spec->seed = (uint64) PG_GETARG_INT64(ARG_SEED);

	if (pg_mul_s64_overflow(spec->users, spec->per_user, &pairs) ||
		pg_mul_s64_overflow(pairs, spec->reasks, &spec->rows))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("users x comparisons_per_user x reasks is too "
						"large")));

	shares = ReadShares(fcinfo, &spec->groups);
	spec->weights = ReadWeights(fcinfo, spec);

	/* cumulative rounding: counts differ from share x users by under 1 */
	spec->group_end = palloc(sizeof(int64) * spec->groups);
	for (int g = 0; g < spec->groups; g++)
	{
		cum += shares[g];
		spec->group_end[g] = g == spec->groups - 1 ? spec->users :
			Min(RoundCount(cum * spec->users), spec->users);
	}
	spec->non_attitude_end = RoundCount(na * spec->users);
	spec->constructed_end = Min(RoundCount((na + cons) * spec->users),
								spec->users);

	PrmRandomSeed(&r, spec->seed, STREAM_KEYS);
	spec->group_key = PrmRandomNext(&r);
	spec->kind_key = PrmRandomNext(&r);
}

/* A 1-D float8[] holding x */
static ArrayType *
Float8Array(const double *x, int d)
{
	Size		bytes = ARR_OVERHEAD_NONULLS(1) + sizeof(double) * d;
	ArrayType  *a = palloc(bytes);

	SET_VARSIZE(a, bytes);
	a->ndim = 1;
	a->dataoffset = 0;
	a->elemtype = FLOAT8OID;
	ARR_DIMS(a)[0] = d;
	ARR_LBOUND(a)[0] = 1;
	memcpy(ARR_DATA_PTR(a), x, sizeof(double) * d);
	return a;
}

/* Whether x sorts before y as float8[] (they never compare equal here) */
static bool
SortsBefore(const double *x, const double *y, int d)
{
	for (int j = 0; j < d; j++)
		if (x[j] != y[j])
			return x[j] < y[j];
	return false;
}

/*
 * Set up pair p of the cached user: draw its two embeddings (response a is
 * the one that sorts first, so chosen < rejected says a was chosen), the
 * condition of its first ask and a stable rater's answer
 */
static void
SetUpPair(SynthState *st, int64 p, int64 user)
{
	SynthSpec  *spec = &st->spec;
	int			d = spec->d;
	uint64		group_rank = PrmPermute((uint64) user, (uint64) spec->users,
										spec->group_key);
	uint64		kind_rank = PrmPermute((uint64) user, (uint64) spec->users,
									   spec->kind_key);
	double		margin = 0.0;
	const double *w;

	st->group = 0;
	while ((int64) group_rank >= spec->group_end[st->group])
		st->group++;
	if ((int64) kind_rank < spec->non_attitude_end)
		st->kind = KIND_NON_ATTITUDE;
	else if ((int64) kind_rank < spec->constructed_end)
		st->kind = KIND_CONSTRUCTED;
	else
		st->kind = KIND_STABLE;

	PrmRandomSeed(&st->rng, spec->seed, STREAM_FIRST_PAIR + (uint64) p);
	for (int j = 0; j < d; j++)
		st->xa[j] = PrmRandomNormal(&st->rng);
	for (int j = 0; j < d; j++)
		st->xb[j] = PrmRandomNormal(&st->rng);
	if (SortsBefore(st->xb, st->xa, d))
	{
		double	   *swap = st->xa;

		st->xa = st->xb;
		st->xb = swap;
	}
	st->first_condition = PrmRandomUniform(&st->rng) < 0.5 ? 1 : 0;

	w = spec->weights + (Size) st->group * d;
	for (int j = 0; j < d; j++)
		margin += w[j] * (st->xa[j] - st->xb[j]);
	st->stable_a = PrmRandomUniform(&st->rng) < PrmSigmoid(margin);
	st->pair = p;
}

/* Whether the rater chose response a at an ask under condition */
static bool
AnswerAsk(SynthState *st, int condition)
{
	double		u_noise = PrmRandomUniform(&st->rng);
	double		u_coin = PrmRandomUniform(&st->rng);
	double		u_kind = PrmRandomUniform(&st->rng);
	bool		chose_a;

	if (st->kind == KIND_STABLE)
		chose_a = st->stable_a;
	else if (st->kind == KIND_NON_ATTITUDE)
		chose_a = u_kind < 0.5;
	else
		chose_a = (u_kind < CONSTRUCTED_FIRST_RATE) == (condition == 0);

	if (u_noise < st->spec.noise)
		chose_a = u_coin < 0.5;
	return chose_a;
}

/*
 * synthetic_comparisons(users, comparisons_per_user, d, group_shares,
 * group_weights, agreement, scale, noise, seed, reasks, non_attitude_share,
 * constructed_share): one row per ask
 */
Datum
synthetic_comparisons(PG_FUNCTION_ARGS)
{
	FuncCallContext *funcctx;
	SynthState *st;
	SynthSpec  *spec;
	int64		row,
				user,
				pair;
	int			ask,
				condition;
	bool		chose_a;
	Datum		values[9];
	bool		nulls[9] = {0};

	if (SRF_IS_FIRSTCALL())
	{
		MemoryContext old;
		TupleDesc	tupdesc;

		funcctx = SRF_FIRSTCALL_INIT();
		old = MemoryContextSwitchTo(funcctx->multi_call_memory_ctx);

		st = palloc0(sizeof(SynthState));
		ReadSpec(fcinfo, &st->spec);
		if (get_call_result_type(fcinfo, NULL, &tupdesc) !=
			TYPEFUNC_COMPOSITE)
			elog(ERROR, "synthetic_comparisons must return a composite type");
		st->tupdesc = BlessTupleDesc(tupdesc);
		for (int k = 0; k < 3; k++)
			st->kind_text[k] = CStringGetTextDatum(kind_names[k]);
		st->xa = palloc(sizeof(double) * st->spec.d);
		st->xb = palloc(sizeof(double) * st->spec.d);
		st->pair = -1;

		funcctx->user_fctx = st;
		MemoryContextSwitchTo(old);
	}

	funcctx = SRF_PERCALL_SETUP();
	st = (SynthState *) funcctx->user_fctx;
	spec = &st->spec;
	row = (int64) funcctx->call_cntr;
	if (row >= spec->rows)
		SRF_RETURN_DONE(funcctx);

	/* rows run over users, then their pairs, then the asks of a pair */
	user = row / ((int64) spec->per_user * spec->reasks);
	pair = row / spec->reasks;
	ask = (int) (row % spec->reasks);
	if (pair != st->pair)
		SetUpPair(st, pair, user);

	condition = (st->first_condition + ask) % 2;
	chose_a = AnswerAsk(st, condition);

	values[0] = Int64GetDatum(row + 1);
	values[1] = Int64GetDatum(user + 1);
	values[2] = Int32GetDatum(st->group);
	values[3] = Int64GetDatum(pair + 1);
	values[4] = Int32GetDatum(ask + 1);
	values[5] = Int32GetDatum(condition);
	values[6] = PointerGetDatum(Float8Array(chose_a ? st->xa : st->xb,
											spec->d));
	values[7] = PointerGetDatum(Float8Array(chose_a ? st->xb : st->xa,
											spec->d));
	values[8] = st->kind_text[st->kind];

	SRF_RETURN_NEXT(funcctx,
					HeapTupleGetDatum(heap_form_tuple(st->tupdesc, values,
													  nulls)));
}

/* A constant positive integer argument, or 0 when not known at plan time */
static double
PlannedCount(SupportRequestRows *req, List *args, int argno)
{
	Node	   *arg;

	if (list_length(args) <= argno)
		return 0.0;
	arg = estimate_expression_value(req->root, (Node *) list_nth(args, argno));
	if (!IsA(arg, Const) || ((Const *) arg)->constisnull ||
		((Const *) arg)->consttype != INT4OID)
		return 0.0;
	return Max(DatumGetInt32(((Const *) arg)->constvalue), 0);
}

/*
 * Planner support: the number of rows is users x comparisons_per_user x
 * reasks when those are known
 */
Datum
synthetic_comparisons_support(PG_FUNCTION_ARGS)
{
	Node	   *rawreq = (Node *) PG_GETARG_POINTER(0);
	SupportRequestRows *req;
	List	   *args;
	double		rows;

	if (!IsA(rawreq, SupportRequestRows))
		PG_RETURN_POINTER(NULL);
	req = (SupportRequestRows *) rawreq;
	if (!is_funcclause(req->node))
		PG_RETURN_POINTER(NULL);

	args = ((FuncExpr *) req->node)->args;
	rows = PlannedCount(req, args, ARG_USERS)
		* PlannedCount(req, args, ARG_PER_USER)
		* PlannedCount(req, args, ARG_REASKS);
	if (rows <= 0.0)
		PG_RETURN_POINTER(NULL);
	req->rows = rows;
	PG_RETURN_POINTER(req);
}
