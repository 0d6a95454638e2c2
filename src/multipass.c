/*
 * multipass.c
 *	  Multi-pass fitting for tables larger than memory: each solver
 *	  iteration is one aggregate pass over the rows, whose state is a plain
 *	  float8[] that partial aggregates combine by addition.
 *
 * The in-memory aggregates (btl_fit, mixture_fit) keep every difference
 * vector in memory. The aggregates here keep only sums at a given point:
 *
 * - btl_pass(w, chosen, rejected [, weight]) sums the log-likelihood, the
 *	 gradient and the Hessian of the BTL objective at w;
 * - mixture_user_pass(base_rewards, ...), grouped by user, sums each user's
 *	 log-likelihood under every component (the E-step's input);
 * - mixture_estep(user_pass, mixing), over a group's users, sums the
 *	 log-likelihood and the responsibilities;
 * - mixture_pass(base_rewards, responsibilities, ...) sums every
 *	 component's responsibility-weighted gradient and Hessian (the M-step's
 *	 input).
 *
 * A state is a float8[] whose first value tags its kind, so a state handed
 * to the wrong function is refused. Partial states of parallel workers (or
 * of Citus shards) add up value by value, so every aggregate has a combine
 * function and needs no serialization.
 *
 * Drivers in plpgsql (sql/install/70_multipass.sql) run the passes until
 * convergence. Between passes they keep one "solver" array per group: the
 * current point, the last accepted point, the search direction and the
 * facts of the last pass. The functions below that advance a solver
 * (btl_multipass_update, mixture_multipass_judge, mixture_multipass_step)
 * make the same decisions as the in-memory solvers: Newton directions from
 * a Cholesky factor of the penalized Hessian, a backtracking line search on
 * the objective, and the stopping rules of prm_btl.c and prm_mixture.c.
 */
#include "postgres.h"

#include <math.h>
#include <string.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include <cblas.h>

#include "pluralrm.h"
#include "prm_core.h"

/* Tags in slot 0 of every state and solver array */
#define TAG_BTL_PASS 7101.0
#define TAG_BTL_SOLVER 7102.0
#define TAG_USER_PASS 7201.0
#define TAG_ESTEP 7202.0
#define TAG_MIX_PASS 7203.0
#define TAG_MIX_SOLVER 7204.0

/* Most values in a pass state: keeps partial states easy to ship */
#define MAX_STATE_VALUES (16 * 1024 * 1024)

/* Most components of a mixture, as in mixture_fit */
#define MAX_COMPONENTS 256

/* Line search constants of prm_btl.c */
#define ARMIJO_C 1e-4
#define MAX_HALVINGS 60

/* Larger |margin| means a fitted probability within 1e-11 of 0 or 1 */
#define SEPARATION_MARGIN 25.0

/* Rounding allowance and most halvings of a mixture step (prm_mixture.c) */
#define ROUNDING_REL 1e-12
#define MIX_MAX_HALVINGS 30

/* What a solver asks the driver to do next */
#define NEXT_PASS 1.0			/* BTL: a pass at the current point */
#define NEXT_ESTEP 2.0			/* mixture: an E-pass at the current point */
#define NEXT_MSTEP 3.0			/* mixture: an M-pass with the new posterior */
#define NEXT_DONE 4.0

/* How a solver ended */
#define END_RUNNING 0.0
#define END_CONVERGED 1.0
#define END_MAX_ITER 2.0
#define END_STALLED 3.0

/*
 * btl_pass state: header, then w (d), the gradient of the negative
 * log-likelihood (d), its Hessian (d x d, column-major, upper triangle) and
 * a block of up to BP_CAPACITY rows not yet added to the Hessian, each
 * scaled by the square root of its curvature. A full block is added with
 * one dsyrk, several times faster than a rank-one update per row; the final
 * function adds the rest and drops the block (BP_CAPACITY 0). Slot
 * BP_MAX_MARGIN combines by maximum, the other facts by sum.
 */
#define BP_TAG 0
#define BP_D 1
#define BP_N 2					/* comparisons added */
#define BP_SKIPPED 3			/* comparisons with a NULL input */
#define BP_WEIGHT 4				/* sum of weights */
#define BP_LOGLIK 5				/* sum a log sigmoid(w . z) */
#define BP_RIGHT 6				/* weighted count of correct orderings */
#define BP_NONZERO 7			/* rows with a > 0 and z != 0 */
#define BP_INFORMATIVE 8		/* rows with a > 0 and w . z != 0 */
#define BP_POSITIVE 9			/* of those, rows with w . z > 0 */
#define BP_MAX_MARGIN 10		/* largest |w . z| of those */
#define BP_CAPACITY 11			/* rows the block holds */
#define BP_BUFFERED 12			/* rows in the block */
#define BP_HEADER 13

/* btl solver: header, then w, wprev and the direction p (d each) */
#define BS_TAG 0
#define BS_D 1
#define BS_NEXT 2
#define BS_END 3
#define BS_L2 4
#define BS_TOL 5
#define BS_MAX_ITER 6
#define BS_ITER 7
#define BS_PASSES 8
#define BS_STEPPING 9			/* a trial step awaits judgement */
#define BS_HALVINGS 10
#define BS_ALPHA 11
#define BS_FPREV 12				/* objective at wprev */
#define BS_SLOPE 13				/* g . p at wprev */
#define BS_GSCALE 14			/* max(1, ||gradient at 0||) */
#define BS_F 15					/* facts of the last accepted pass */
#define BS_LOGLIK 16
#define BS_GNORM 17
#define BS_RIGHT 18
#define BS_WEIGHT 19
#define BS_N 20
#define BS_SKIPPED 21
#define BS_NONZERO 22
#define BS_INFORMATIVE 23
#define BS_POSITIVE 24
#define BS_MAX_MARGIN 25
#define BS_HEADER 26

/* mixture_user_pass state: header, then the k log-likelihoods */
#define UP_TAG 0
#define UP_K 1
#define UP_D 2
#define UP_N 3
#define UP_SKIPPED 4
#define UP_WEIGHT 5
#define UP_HEADER 6

/* mixture_estep state: header, then the k responsibility sums */
#define ES_TAG 0
#define ES_K 1
#define ES_USERS 2
#define ES_N 3
#define ES_SKIPPED 4
#define ES_WEIGHT 5
#define ES_LOGLIK 6
#define ES_HEADER 7

/*
 * mixture_pass state: header, then per component its gradient (d) and
 * Hessian (d x d, upper triangle), then per component a block of up to
 * MP_CAPACITY scaled rows not yet added to its Hessian (as for btl_pass)
 */
#define MP_TAG 0
#define MP_K 1
#define MP_D 2
#define MP_N 3
#define MP_SKIPPED 4
#define MP_CAPACITY 5
#define MP_BUFFERED 6
#define MP_HEADER 7

/*
 * mixture solver: header, then mixing (k), the mixing of the next point
 * (k), the base rewards W, the last accepted ones and the directions
 * (k x d each, row-major)
 */
#define MS_TAG 0
#define MS_K 1
#define MS_D 2
#define MS_NEXT 3
#define MS_END 4
#define MS_L2 5
#define MS_TOL 6
#define MS_MAX_ITER 7
#define MS_ITER 8
#define MS_PASSES 9
#define MS_STEPPING 10
#define MS_HALVINGS 11
#define MS_ALPHA 12
#define MS_STALLED 13
#define MS_OBJ 14				/* penalized log-likelihood, last accepted */
#define MS_LOGLIK 15
#define MS_GNORM 16				/* ||gradient of the objective in W|| */
#define MS_USERS 17
#define MS_N 18
#define MS_SKIPPED 19
#define MS_RESTARTS 20			/* facts of the start, for the result */
#define MS_AT_BEST 21
#define MS_SAMPLED 22
#define MS_GSCALE 23			/* max(1, ||gradient|| at the start) */
#define MS_SETTLED 24			/* the objective stopped changing */
#define MS_HEADER 25

PG_FUNCTION_INFO_V1(btl_pass_transfn);
PG_FUNCTION_INFO_V1(btl_pass_combinefn);
PG_FUNCTION_INFO_V1(btl_pass_final);
PG_FUNCTION_INFO_V1(btl_newton_step);
PG_FUNCTION_INFO_V1(btl_multipass_start);
PG_FUNCTION_INFO_V1(btl_multipass_update);
PG_FUNCTION_INFO_V1(btl_multipass_model);
PG_FUNCTION_INFO_V1(mixture_user_pass_transfn);
PG_FUNCTION_INFO_V1(mixture_user_pass_combinefn);
PG_FUNCTION_INFO_V1(mixture_posterior);
PG_FUNCTION_INFO_V1(mixture_estep_transfn);
PG_FUNCTION_INFO_V1(mixture_estep_combinefn);
PG_FUNCTION_INFO_V1(mixture_pass_transfn);
PG_FUNCTION_INFO_V1(mixture_pass_combinefn);
PG_FUNCTION_INFO_V1(mixture_pass_final);
PG_FUNCTION_INFO_V1(mixture_multipass_start);
PG_FUNCTION_INFO_V1(mixture_multipass_judge);
PG_FUNCTION_INFO_V1(mixture_multipass_step);
PG_FUNCTION_INFO_V1(mixture_multipass_model);
PG_FUNCTION_INFO_V1(multipass_next);
PG_FUNCTION_INFO_V1(multipass_point);
PG_FUNCTION_INFO_V1(multipass_mixing);

/* Scratch rows of a pass, kept in fn_extra for the whole query */
typedef struct PassScratch
{
	int			cap;
	double	   *z;				/* cap values: the difference vector */
	double	   *r;				/* cap values: the rejected embedding */
	double	   *m;				/* MAX_COMPONENTS margins */
	double	   *g;				/* MAX_COMPONENTS responsibilities */
} PassScratch;


/* Values of a d x d matrix */
static inline Size
Square(int d)
{
	return (Size) d * d;
}

/* Rows in the block of a pass state for dimension d */
static int
BlockRows(int d)
{
	int			rows = 8192 / d;

	return rows < 8 ? 8 : (rows > 64 ? 64 : rows);
}

/* Add rows x d values of a block to the upper triangle of a Hessian */
static void
AddBlock(double *h, const double *block, int rows, int d)
{
	if (rows > 0)
		cblas_dsyrk(CblasColMajor, CblasUpper, CblasNoTrans, d, rows, 1.0,
					block, d, 1.0, h, d);
}

/* Fail unless a state of count values fits the limits */
static void
CheckStateSize(double count, const char *what)
{
	if (count > MAX_STATE_VALUES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a %s state would hold %.0f values, more than the "
						"limit of %d", what, count, MAX_STATE_VALUES),
				 errhint("Multi-pass Newton keeps a d x d Hessian per "
						 "component; use the in-memory fit for large d.")));
}

/* A zeroed 1-D float8[] of count values in memory context mcxt */
static ArrayType *
NewVector(MemoryContext mcxt, int count)
{
	Size		bytes = ARR_OVERHEAD_NONULLS(1) + sizeof(float8) * count;
	ArrayType  *a = MemoryContextAllocZero(mcxt, bytes);

	SET_VARSIZE(a, bytes);
	a->ndim = 1;
	a->dataoffset = 0;
	a->elemtype = FLOAT8OID;
	ARR_DIMS(a)[0] = count;
	ARR_LBOUND(a)[0] = 1;
	return a;
}

/* A float8[] of rows x cols values: 1-D when cols is 0 */
static ArrayType *
MakeArray(const double *values, int rows, int cols)
{
	int			count = rows * (cols > 0 ? cols : 1);
	int			dims[2] = {rows, cols};
	int			lbs[2] = {1, 1};
	Datum	   *elems = palloc(sizeof(Datum) * Max(count, 1));

	for (int i = 0; i < count; i++)
		elems[i] = Float8GetDatum(values[i]);
	return construct_md_array(elems, NULL, cols > 0 ? 2 : 1, dims, lbs,
							  FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL,
							  TYPALIGN_DOUBLE);
}

/* Values of a state or solver array, after checking its kind and length */
static double *
StateValues(ArrayType *a, double tag, const char *what, int *count)
{
	double	   *v;
	int			n;

	if (ARR_ELEMTYPE(a) != FLOAT8OID || ARR_NDIM(a) != 1 ||
		(ARR_HASNULL(a) && array_contains_nulls(a)) ||
		ARR_DIMS(a)[0] < 2)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a 1-D float8[] made by pluralrm", what)));
	v = (double *) ARR_DATA_PTR(a);
	n = ARR_DIMS(a)[0];
	if (v[0] != tag)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s is not the right kind of state", what),
				 errdetail("Its tag is %g, expected %g.", v[0], tag)));
	if (count)
		*count = n;
	return v;
}

/* Fail unless a state has exactly the length its header implies */
static void
CheckLength(int have, double want, const char *what)
{
	if ((double) have != want)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s has %d values, expected %.0f", what, have, want)));
}

/*
 * Values of a float8[] argument holding points (w, base rewards, mixing),
 * checked for NULLs and non-finite values; *count receives their number.
 */
static double *
PointValues(ArrayType *a, const char *what, int *count)
{
	double	   *v;
	int			n;

	if (ARR_HASNULL(a) && array_contains_nulls(a))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not contain NULL elements", what)));
	n = ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a));
	v = (double *) ARR_DATA_PTR(a);
	for (int i = 0; i < n; i++)
		if (!isfinite(v[i]))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("%s must not contain NaN or Infinity", what)));
	*count = n;
	return v;
}

/* The scratch rows of this call site, grown to hold d values */
static PassScratch *
Scratch(FunctionCallInfo fcinfo, int d)
{
	PassScratch *s = (PassScratch *) fcinfo->flinfo->fn_extra;
	MemoryContext mcxt = fcinfo->flinfo->fn_mcxt;

	if (s == NULL)
	{
		s = MemoryContextAllocZero(mcxt, sizeof(PassScratch));
		s->m = MemoryContextAlloc(mcxt, sizeof(double) * MAX_COMPONENTS);
		s->g = MemoryContextAlloc(mcxt, sizeof(double) * MAX_COMPONENTS);
		fcinfo->flinfo->fn_extra = s;
	}
	if (s->cap < d)
	{
		if (s->z)
		{
			pfree(s->z);
			pfree(s->r);
		}
		s->z = MemoryContextAlloc(mcxt, sizeof(double) * d);
		s->r = MemoryContextAlloc(mcxt, sizeof(double) * d);
		s->cap = d;
	}
	return s;
}

/*
 * Read the comparison of one call into the scratch row z = chosen -
 * rejected and its weight. Returns its dimension, or 0 when an input is
 * NULL (the comparison is skipped).
 */
static int
ReadComparison(FunctionCallInfo fcinfo, int chosen_arg, int weight_arg,
			   double *weight, PassScratch **scratch)
{
	ArrayType  *chosen,
			   *rejected;
	PassScratch *s;
	int			d;

	if (PG_ARGISNULL(chosen_arg) || PG_ARGISNULL(chosen_arg + 1) ||
		(weight_arg >= 0 && PG_ARGISNULL(weight_arg)))
		return 0;
	*weight = 1.0;
	if (weight_arg >= 0)
	{
		*weight = PG_GETARG_FLOAT8(weight_arg);
		if (!(*weight >= 0) || isinf(*weight))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("weight must be a finite number >= 0, not %g",
							*weight)));
	}
	chosen = PG_GETARG_ARRAYTYPE_P(chosen_arg);
	rejected = PG_GETARG_ARRAYTYPE_P(chosen_arg + 1);
	d = PrmEmbeddingDim(chosen, "chosen");
	if (PrmEmbeddingDim(rejected, "rejected") != d)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("chosen and rejected embeddings differ in dimension: "
						"%d and %d", d, ARR_DIMS(rejected)[0])));
	s = Scratch(fcinfo, d);
	PrmEmbeddingRead(chosen, d, s->z, "chosen");
	PrmEmbeddingRead(rejected, d, s->r, "rejected");
	for (int j = 0; j < d; j++)
		s->z[j] -= s->r[j];
	*scratch = s;
	return d;
}

/*
 * Newton direction p = -(H + l2 I)^-1 g for a Hessian H (upper triangle).
 * Returns false when even a ridge does not make the matrix positive
 * definite.
 */
static bool
NewtonDirection(const double *h, const double *g, int d, double l2,
				double *p)
{
	double	   *full = palloc0(sizeof(double) * d * d);
	double	   *chol = palloc(sizeof(double) * d * d);
	int			one = 1;
	int			info = 0;

	for (int j = 0; j < d; j++)
	{
		memcpy(full + (Size) j * d, h + (Size) j * d,
			   sizeof(double) * (j + 1));
		full[(Size) j * d + j] += l2;
	}
	if (PrmCholeskyRidge(chol, full, d, NULL) != 0)
		return false;
	for (int j = 0; j < d; j++)
		p[j] = -g[j];
	dpotrs_("U", &d, &one, chol, &d, p, &d, &info);
	pfree(full);
	pfree(chol);
	return info == 0;
}

/*
 * Fail unless a solver and the pass that advances it are both present: a
 * group that vanished between passes means the source changed.
 */
static void
CheckSolverArgs(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("solver must not be NULL")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("a pass found no comparison of a group that earlier "
						"passes found"),
				 errhint("Fit a source that does not change during the fit, "
						 "or fit in a REPEATABLE READ transaction.")));
}

/* Dot product of two vectors */
static double
Dot(const double *a, const double *b, int n)
{
	double		s = 0.0;

	for (int i = 0; i < n; i++)
		s += a[i] * b[i];
	return s;
}


/* ---------------------------------------------------------------------
 * Linear BTL
 * ---------------------------------------------------------------------
 */

/*
 * A btl_pass state for dimension d at point w (zeros when w is NULL), with
 * a block of capacity rows
 */
static ArrayType *
BtlPassCreate(MemoryContext mcxt, int d, const double *w, int capacity)
{
	double		count = BP_HEADER + 2.0 * d + (double) Square(d) +
		(double) capacity * d;
	ArrayType  *a;
	double	   *v;

	CheckStateSize(count, "btl_pass");
	a = NewVector(mcxt, (int) count);
	v = (double *) ARR_DATA_PTR(a);
	v[BP_TAG] = TAG_BTL_PASS;
	v[BP_D] = d;
	v[BP_CAPACITY] = capacity;
	if (w)
		memcpy(v + BP_HEADER, w, sizeof(double) * d);
	return a;
}

/* Check that the point of a row is the point of its group's state */
static void
BtlPassCheckPoint(FunctionCallInfo fcinfo, const double *stored, int d)
{
	ArrayType  *wa;
	bool		same = true;

	if (PG_ARGISNULL(1))
	{
		for (int j = 0; j < d; j++)
			same &= stored[j] == 0.0;
	}
	else
	{
		wa = PG_GETARG_ARRAYTYPE_P(1);
		same = !ARR_HASNULL(wa) &&
			ArrayGetNItems(ARR_NDIM(wa), ARR_DIMS(wa)) == d &&
			memcmp(ARR_DATA_PTR(wa), stored, sizeof(double) * d) == 0;
	}
	if (!same)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("w must be the same for every row of a group")));
}

/*
 * Add one comparison at point w: btl_pass(w, chosen, rejected [, weight]).
 * A NULL w stands for the zero vector (a cold start).
 */
Datum
btl_pass_transfn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	ArrayType  *state = NULL;
	PassScratch *s = NULL;
	double	   *v;
	double	   *w,
			   *g,
			   *h,
			   *block,
			   *row;
	double		a = 1.0;
	double		m,
				sp,
				sn,
				scale;
	int			d;
	bool		nonzero = false;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		elog(ERROR, "btl_pass_transfn called in non-aggregate context");
	if (!PG_ARGISNULL(0))
		state = PG_GETARG_ARRAYTYPE_P(0);

	d = ReadComparison(fcinfo, 2, PG_NARGS() > 4 ? 4 : -1, &a, &s);
	if (d == 0)
	{
		if (state == NULL)
			state = BtlPassCreate(aggcontext, 0, NULL, 0);
		v = StateValues(state, TAG_BTL_PASS, "btl_pass state", NULL);
		v[BP_SKIPPED] += 1;
		PG_RETURN_ARRAYTYPE_P(state);
	}

	/* the first comparison fixes the dimension and the point */
	if (state == NULL ||
		StateValues(state, TAG_BTL_PASS, "btl_pass state", NULL)[BP_D] == 0)
	{
		double		skipped = state ? ((double *) ARR_DATA_PTR(state))
			[BP_SKIPPED] : 0;
		int			count;
		const double *w0 = NULL;

		if (!PG_ARGISNULL(1))
			w0 = PointValues(PG_GETARG_ARRAYTYPE_P(1), "w", &count);
		if (w0 && count != d)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("w has %d values but the embeddings have %d",
							count, d)));
		state = BtlPassCreate(aggcontext, d, w0, BlockRows(d));
		((double *) ARR_DATA_PTR(state))[BP_SKIPPED] = skipped;
	}
	v = (double *) ARR_DATA_PTR(state);
	if (v[BP_D] != d)
		PrmDimensionMismatch((int) v[BP_D], d);
	w = v + BP_HEADER;
	g = w + d;
	h = g + d;
	BtlPassCheckPoint(fcinfo, w, d);

	v[BP_N] += 1;
	v[BP_WEIGHT] += a;
	if (a == 0)
		PG_RETURN_ARRAYTYPE_P(state);
	m = Dot(w, s->z, d);
	sp = PrmSigmoid(m);
	sn = PrmSigmoid(-m);
	v[BP_LOGLIK] -= a * PrmSoftplus(-m);
	v[BP_RIGHT] += m > 0 ? a : (m == 0 ? 0.5 * a : 0.0);
	for (int j = 0; j < d && !nonzero; j++)
		nonzero = s->z[j] != 0.0;
	v[BP_NONZERO] += nonzero;
	if (m != 0)
	{
		v[BP_INFORMATIVE] += 1;
		v[BP_POSITIVE] += m > 0;
		v[BP_MAX_MARGIN] = Max(v[BP_MAX_MARGIN], fabs(m));
	}
	/* gradient of -log sigmoid(m) is -sigmoid(-m) z */
	for (int j = 0; j < d; j++)
		g[j] -= a * sn * s->z[j];

	/* the curvature a s(1 - s) z z^T goes to the block first */
	block = h + Square(d);
	row = block + (Size) v[BP_BUFFERED] * d;
	scale = sqrt(a * sp * sn);
	for (int j = 0; j < d; j++)
		row[j] = scale * s->z[j];
	if (++v[BP_BUFFERED] >= v[BP_CAPACITY])
	{
		AddBlock(h, block, (int) v[BP_BUFFERED], d);
		v[BP_BUFFERED] = 0;
	}
	PG_RETURN_ARRAYTYPE_P(state);
}

/* Add two btl_pass states made at the same point */
Datum
btl_pass_combinefn(PG_FUNCTION_ARGS)
{
	ArrayType  *s1 = PG_GETARG_ARRAYTYPE_P(0);
	ArrayType  *s2 = PG_GETARG_ARRAYTYPE_P(1);
	int			n1,
				n2;
	double	   *a = StateValues(s1, TAG_BTL_PASS, "btl_pass state", &n1);
	double	   *b = StateValues(s2, TAG_BTL_PASS, "btl_pass state", &n2);
	int			d;

	if (!AggCheckCallContext(fcinfo, NULL))
		elog(ERROR, "btl_pass_combinefn called in non-aggregate context");
	if (b[BP_D] == 0)
	{
		a[BP_SKIPPED] += b[BP_SKIPPED];
		PG_RETURN_ARRAYTYPE_P(s1);
	}
	if (a[BP_D] == 0)
	{
		/* the incoming state is read-only: return a copy */
		s2 = PG_GETARG_ARRAYTYPE_P_COPY(1);
		((double *) ARR_DATA_PTR(s2))[BP_SKIPPED] += a[BP_SKIPPED];
		PG_RETURN_ARRAYTYPE_P(s2);
	}
	if (a[BP_D] != b[BP_D])
		PrmDimensionMismatch((int) a[BP_D], (int) b[BP_D]);
	d = (int) a[BP_D];
	CheckLength(n1, BP_HEADER + 2.0 * d + Square(d) + a[BP_CAPACITY] * d,
				"btl_pass state");
	CheckLength(n2, BP_HEADER + 2.0 * d + Square(d) + b[BP_CAPACITY] * d,
				"btl_pass state");
	if (memcmp(a + BP_HEADER, b + BP_HEADER, sizeof(double) * d) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("w must be the same for every row of a group")));
	for (int i = BP_N; i <= BP_MAX_MARGIN; i++)
		a[i] = i == BP_MAX_MARGIN ? Max(a[i], b[i]) : a[i] + b[i];
	for (Size i = BP_HEADER + d; i < BP_HEADER + 2 * d + Square(d); i++)
		a[i] += b[i];

	/* b's waiting rows go straight into a's Hessian */
	AddBlock(a + BP_HEADER + 2 * d, b + BP_HEADER + 2 * d + Square(d),
			 (int) b[BP_BUFFERED], d);
	PG_RETURN_ARRAYTYPE_P(s1);
}

/*
 * btl_pass_final(state): the result of btl_pass, with every row added to
 * the Hessian and no block
 */
Datum
btl_pass_final(PG_FUNCTION_ARGS)
{
	int			count,
				d;
	double	   *v = StateValues(PG_GETARG_ARRAYTYPE_P(0), TAG_BTL_PASS,
								"btl_pass state", &count);
	Size		keep;
	ArrayType  *out;
	double	   *o;

	d = (int) v[BP_D];
	keep = BP_HEADER + 2 * (Size) d + Square(d);
	CheckLength(count, keep + v[BP_CAPACITY] * d, "btl_pass state");
	out = NewVector(CurrentMemoryContext, (int) keep);
	o = (double *) ARR_DATA_PTR(out);
	memcpy(o, v, sizeof(double) * keep);
	AddBlock(o + BP_HEADER + 2 * d, v + keep, (int) v[BP_BUFFERED], d);
	o[BP_CAPACITY] = 0;
	o[BP_BUFFERED] = 0;
	PG_RETURN_ARRAYTYPE_P(out);
}

/* Values of a btl_pass result; *d receives its dimension */
static double *
BtlPassValues(ArrayType *a, int *d)
{
	int			count;
	double	   *v = StateValues(a, TAG_BTL_PASS, "btl_pass state", &count);

	*d = (int) v[BP_D];
	if (v[BP_CAPACITY] != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("btl_pass state is a transition state, not the "
						"result of btl_pass")));
	CheckLength(count, BP_HEADER + 2.0 * *d + (double) Square(*d),
				"btl_pass state");
	return v;
}

/* Check an L2 strength argument */
static double
CheckL2(double l2)
{
	if (!(l2 >= 0) || isinf(l2))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("l2 must be a finite number >= 0, not %g", l2)));
	return l2;
}

/*
 * The penalized gradient g + l2 w of a pass into out; returns its norm.
 */
static double
BtlPenalizedGradient(const double *v, int d, double l2, double *out)
{
	const double *w = v + BP_HEADER;
	const double *g = w + d;

	for (int j = 0; j < d; j++)
		out[j] = g[j] + l2 * w[j];
	return sqrt(Dot(out, out, d));
}

/*
 * btl_newton_step(pass, l2): the Newton direction -(H + l2 I)^-1 (g + l2 w)
 * of the penalized objective at the pass's point
 */
Datum
btl_newton_step(PG_FUNCTION_ARGS)
{
	int			d;
	double	   *v = BtlPassValues(PG_GETARG_ARRAYTYPE_P(0), &d);
	double		l2 = CheckL2(PG_GETARG_FLOAT8(1));
	double	   *grad,
			   *p;

	if (d == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("the pass saw no comparison")));
	grad = palloc(sizeof(double) * d);
	p = palloc(sizeof(double) * d);
	BtlPenalizedGradient(v, d, l2, grad);
	if (!NewtonDirection(v + BP_HEADER + 2 * d, grad, d, l2, p))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not factor the Hessian of the pass")));
	PG_RETURN_ARRAYTYPE_P(MakeArray(p, d, 0));
}

/* Values of a btl solver; *d receives its dimension */
static double *
BtlSolverValues(ArrayType *a, int *d)
{
	int			count;
	double	   *v = StateValues(a, TAG_BTL_SOLVER, "btl solver", &count);

	*d = (int) v[BS_D];
	CheckLength(count, BS_HEADER + 3.0 * *d, "btl solver");
	return v;
}

/*
 * Record the facts of an accepted pass and decide what comes next: stop at
 * the gradient test or the iteration limit, or take a Newton step whose
 * trial point the next pass judges.
 */
static void
BtlAccept(double *s, const double *v, int d, double f, const double *grad,
		  double gnorm)
{
	double	   *w = s + BS_HEADER;
	double	   *wprev = w + d;
	double	   *p = wprev + d;
	double		l2 = s[BS_L2];
	double		slope;

	s[BS_F] = f;
	s[BS_LOGLIK] = v[BP_LOGLIK];
	s[BS_GNORM] = gnorm;
	s[BS_RIGHT] = v[BP_RIGHT];
	s[BS_WEIGHT] = v[BP_WEIGHT];
	s[BS_N] = v[BP_N];
	s[BS_SKIPPED] = v[BP_SKIPPED];
	s[BS_NONZERO] = v[BP_NONZERO];
	s[BS_INFORMATIVE] = v[BP_INFORMATIVE];
	s[BS_POSITIVE] = v[BP_POSITIVE];
	s[BS_MAX_MARGIN] = v[BP_MAX_MARGIN];

	if (gnorm <= s[BS_TOL] * s[BS_GSCALE])
	{
		s[BS_NEXT] = NEXT_DONE;
		s[BS_END] = END_CONVERGED;
		return;
	}
	if (s[BS_ITER] >= s[BS_MAX_ITER])
	{
		s[BS_NEXT] = NEXT_DONE;
		s[BS_END] = END_MAX_ITER;
		return;
	}

	if (!NewtonDirection(v + BP_HEADER + 2 * d, grad, d, l2, p))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("btl_fit_multipass could not factor its Hessian")));
	slope = Dot(grad, p, d);
	if (!(slope < 0))
	{
		/* not a descent direction: fall back to steepest descent */
		for (int j = 0; j < d; j++)
			p[j] = -grad[j];
		slope = -gnorm * gnorm;
	}
	memcpy(wprev, w, sizeof(double) * d);
	for (int j = 0; j < d; j++)
		w[j] += p[j];
	s[BS_FPREV] = f;
	s[BS_SLOPE] = slope;
	s[BS_ALPHA] = 1.0;
	s[BS_HALVINGS] = 0;
	s[BS_STEPPING] = 1;
	s[BS_ITER] += 1;
	s[BS_NEXT] = NEXT_PASS;
}

/* Objective of a pass: -loglik + (l2 / 2) ||w||^2 */
static double
BtlObjective(const double *v, int d, double l2)
{
	const double *w = v + BP_HEADER;

	return -v[BP_LOGLIK] + 0.5 * l2 * Dot(w, w, d);
}

/* Fail on a pass whose objective or gradient is not finite */
static void
BtlCheckFinite(double f, double gnorm)
{
	if (!isfinite(f) || !isfinite(gnorm))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("btl_fit_multipass met a non-finite value while "
						"solving"),
				 errhint("Check embeddings and weights for extreme "
						 "magnitudes.")));
}

/*
 * btl_multipass_start(pass, l2, tol, max_iter): a solver from the first
 * pass, made at w = 0
 */
Datum
btl_multipass_start(PG_FUNCTION_ARGS)
{
	int			d;
	double	   *v = BtlPassValues(PG_GETARG_ARRAYTYPE_P(0), &d);
	double		l2 = CheckL2(PG_GETARG_FLOAT8(1));
	double		tol = PG_GETARG_FLOAT8(2);
	int32		max_iter = PG_GETARG_INT32(3);
	ArrayType  *solver;
	double	   *s;
	double	   *grad;
	double		f,
				gnorm;

	if (!(tol > 0 && tol < 1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tol must be between 0 and 1, not %g", tol)));
	if (max_iter < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_iter must be at least 1, not %d", max_iter)));
	for (int j = 0; j < d; j++)
		if (v[BP_HEADER + j] != 0.0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the first pass must be made at w = 0")));

	solver = NewVector(CurrentMemoryContext, BS_HEADER + 3 * d);
	s = (double *) ARR_DATA_PTR(solver);
	s[BS_TAG] = TAG_BTL_SOLVER;
	s[BS_D] = d;
	s[BS_L2] = l2;
	s[BS_TOL] = tol;
	s[BS_MAX_ITER] = max_iter;
	s[BS_PASSES] = 1;
	s[BS_SKIPPED] = v[BP_SKIPPED];
	s[BS_END] = END_RUNNING;
	if (d == 0 || v[BP_N] == 0)
	{
		/* nothing to fit: the model is NULL */
		s[BS_NEXT] = NEXT_DONE;
		PG_RETURN_ARRAYTYPE_P(solver);
	}

	grad = palloc(sizeof(double) * d);
	gnorm = BtlPenalizedGradient(v, d, l2, grad);
	f = BtlObjective(v, d, l2);
	BtlCheckFinite(f, gnorm);
	s[BS_GSCALE] = Max(1.0, gnorm);
	BtlAccept(s, v, d, f, grad, gnorm);
	PG_RETURN_ARRAYTYPE_P(solver);
}

/*
 * btl_multipass_update(solver, pass): judge the trial point the pass was
 * made at (accept it, or halve the step), then take the next step
 */
Datum
btl_multipass_update(PG_FUNCTION_ARGS)
{
	ArrayType  *solver = (CheckSolverArgs(fcinfo),
							 PG_GETARG_ARRAYTYPE_P_COPY(0));
	int			d,
				dp;
	double	   *s = BtlSolverValues(solver, &d);
	double	   *v = BtlPassValues(PG_GETARG_ARRAYTYPE_P(1), &dp);
	double	   *w = s + BS_HEADER;
	double	   *wprev = w + d;
	double	   *p = wprev + d;
	double	   *grad;
	double		f,
				gnorm;

	if (s[BS_NEXT] != NEXT_PASS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the solver does not wait for a pass")));
	if (dp != d || memcmp(v + BP_HEADER, w, sizeof(double) * d) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the pass was not made at the solver's point")));

	s[BS_PASSES] += 1;
	grad = palloc(sizeof(double) * d);
	gnorm = BtlPenalizedGradient(v, d, s[BS_L2], grad);
	f = BtlObjective(v, d, s[BS_L2]);
	BtlCheckFinite(f, gnorm);

	/* judge the trial step w = wprev + alpha p, as prm_btl.c does */
	if (s[BS_STEPPING] != 0)
	{
		double		fprev = s[BS_FPREV];
		double		slope = s[BS_SLOPE];
		double		alpha = s[BS_ALPHA];
		double		deriv = Dot(grad, p, d);
		bool		armijo = f <= fprev + ARMIJO_C * alpha * slope;
		bool		approx_wolfe = f <= fprev + 1e-10 * fabs(fprev) &&
			deriv <= (2 * ARMIJO_C - 1) * slope;

		if (!(armijo || approx_wolfe || deriv <= 0))
		{
			s[BS_HALVINGS] += 1;
			if (s[BS_HALVINGS] >= MAX_HALVINGS)
			{
				/* no progress is possible: keep the last accepted pass */
				memcpy(w, wprev, sizeof(double) * d);
				s[BS_NEXT] = NEXT_DONE;
				s[BS_END] = END_STALLED;
				PG_RETURN_ARRAYTYPE_P(solver);
			}
			s[BS_ALPHA] = alpha * 0.5;
			for (int j = 0; j < d; j++)
				w[j] = wprev[j] + s[BS_ALPHA] * p[j];
			PG_RETURN_ARRAYTYPE_P(solver);
		}
		s[BS_STEPPING] = 0;
	}
	BtlAccept(s, v, d, f, grad, gnorm);
	PG_RETURN_ARRAYTYPE_P(solver);
}

/*
 * btl_multipass_model(solver, solve_ms): the fitted model as a
 * pluralrm.btl_model, or NULL when the group had no comparison; raises the
 * errors btl_fit raises for data without a finite solution
 */
Datum
btl_multipass_model(PG_FUNCTION_ARGS)
{
	int			d;
	double	   *s = BtlSolverValues(PG_GETARG_ARRAYTYPE_P(0), &d);
	double		solve_ms = PG_ARGISNULL(1) ? 0.0 : PG_GETARG_FLOAT8(1);
	TupleDesc	tupdesc;
	Datum		values[12];
	bool		nulls[12] = {0};
	double	   *w = s + BS_HEADER;

	if (s[BS_NEXT] != NEXT_DONE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the solver has not finished")));
	if (d == 0 || s[BS_N] == 0)
		PG_RETURN_NULL();

	if (s[BS_NONZERO] == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("no comparison distinguishes its chosen and "
						"rejected responses"),
				 errdetail("Every comparison has identical chosen and "
						   "rejected embeddings or a zero weight.")));
	if (s[BS_L2] == 0 && s[BS_INFORMATIVE] > 0 &&
		(s[BS_MAX_MARGIN] > SEPARATION_MARGIN ||
		 s[BS_POSITIVE] == s[BS_INFORMATIVE]))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("comparisons are perfectly separable, so the "
						"unpenalized fit has no finite solution"),
				 errdetail("With l2 = 0 the likelihood keeps rising as the "
						   "weights grow without bound."),
				 errhint("Pass a positive l2.")));
	if (s[BS_END] != END_CONVERGED)
		ereport(NOTICE,
				(errmsg("btl_fit_multipass did not converge in %d "
						"iterations", (int) s[BS_ITER]),
				 errdetail("The gradient norm is %g.", s[BS_GNORM]),
				 errhint("Raise max_iter or l2.")));

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "btl_multipass_model must return a composite type");
	tupdesc = BlessTupleDesc(tupdesc);
	values[0] = Int64GetDatum((int64) s[BS_N]);
	values[1] = Int32GetDatum(d);
	values[2] = Float8GetDatum(s[BS_L2]);
	values[3] = Int32GetDatum((int32) s[BS_ITER]);
	values[4] = BoolGetDatum(s[BS_END] == END_CONVERGED);
	values[5] = Float8GetDatum(s[BS_LOGLIK]);
	values[6] = Float8GetDatum(s[BS_WEIGHT] > 0 ?
							   s[BS_RIGHT] / s[BS_WEIGHT] : 0.0);
	values[7] = Float8GetDatum(s[BS_GNORM]);
	values[8] = CStringGetTextDatum("multipass");
	values[9] = Float8GetDatum(solve_ms);
	values[10] = Int64GetDatum((int64) s[BS_SKIPPED]);
	values[11] = PointerGetDatum(MakeArray(w, d, 0));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values,
													  nulls)));
}


/* ---------------------------------------------------------------------
 * Mixtures of BTL models
 * ---------------------------------------------------------------------
 */

/*
 * Base rewards argument: k x d values (any shape, row-major) for
 * embeddings of dimension d; *k receives the number of components.
 */
static const double *
BaseRewards(ArrayType *a, int d, int *k)
{
	int			count;
	const double *v = PointValues(a, "base_rewards", &count);

	if (count == 0 || count % d != 0 || count / d > MAX_COMPONENTS ||
		(ARR_NDIM(a) == 2 && ARR_DIMS(a)[1] != d))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("base_rewards has %d values, not k x %d for k "
						"between 1 and %d", count, d, MAX_COMPONENTS)));
	*k = count / d;
	return v;
}

/*
 * Add one comparison of a user: mixture_user_pass(base_rewards, chosen,
 * rejected [, weight]), the user's log-likelihood under every component
 */
Datum
mixture_user_pass_transfn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	ArrayType  *state = NULL;
	PassScratch *s = NULL;
	double	   *v;
	const double *base;
	double		a = 1.0;
	int			d,
				k;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		elog(ERROR, "mixture_user_pass_transfn called in non-aggregate "
			 "context");
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("base_rewards must not be NULL")));
	if (!PG_ARGISNULL(0))
		state = PG_GETARG_ARRAYTYPE_P(0);

	d = ReadComparison(fcinfo, 2, PG_NARGS() > 4 ? 4 : -1, &a, &s);
	if (d == 0)
	{
		if (state == NULL)
		{
			state = NewVector(aggcontext, UP_HEADER);
			((double *) ARR_DATA_PTR(state))[UP_TAG] = TAG_USER_PASS;
		}
		v = StateValues(state, TAG_USER_PASS, "mixture_user_pass state",
						NULL);
		v[UP_SKIPPED] += 1;
		PG_RETURN_ARRAYTYPE_P(state);
	}
	base = BaseRewards(PG_GETARG_ARRAYTYPE_P(1), d, &k);

	if (state == NULL || ((double *) ARR_DATA_PTR(state))[UP_K] == 0)
	{
		double		skipped = 0.0;

		if (state)
			skipped = StateValues(state, TAG_USER_PASS,
								  "mixture_user_pass state",
								  NULL)[UP_SKIPPED];
		state = NewVector(aggcontext, UP_HEADER + k);
		v = (double *) ARR_DATA_PTR(state);
		v[UP_TAG] = TAG_USER_PASS;
		v[UP_K] = k;
		v[UP_D] = d;
		v[UP_SKIPPED] = skipped;
	}
	v = StateValues(state, TAG_USER_PASS, "mixture_user_pass state", NULL);
	if (v[UP_D] != d)
		PrmDimensionMismatch((int) v[UP_D], d);
	if (v[UP_K] != k)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("base_rewards must be the same for every row of a "
						"group")));

	v[UP_N] += 1;
	v[UP_WEIGHT] += a;
	if (a > 0)
		for (int c = 0; c < k; c++)
			v[UP_HEADER + c] -= a * PrmSoftplus(-Dot(base + (Size) c * d,
													 s->z, d));
	PG_RETURN_ARRAYTYPE_P(state);
}

/* Add two mixture_user_pass states of one user */
Datum
mixture_user_pass_combinefn(PG_FUNCTION_ARGS)
{
	ArrayType  *s1 = PG_GETARG_ARRAYTYPE_P(0);
	ArrayType  *s2 = PG_GETARG_ARRAYTYPE_P(1);
	int			n1,
				n2;
	double	   *a = StateValues(s1, TAG_USER_PASS, "mixture_user_pass state",
								&n1);
	double	   *b = StateValues(s2, TAG_USER_PASS, "mixture_user_pass state",
								&n2);

	if (!AggCheckCallContext(fcinfo, NULL))
		elog(ERROR, "mixture_user_pass_combinefn called in non-aggregate "
			 "context");
	if (b[UP_K] == 0)
	{
		a[UP_SKIPPED] += b[UP_SKIPPED];
		PG_RETURN_ARRAYTYPE_P(s1);
	}
	if (a[UP_K] == 0)
	{
		/* the incoming state is read-only: return a copy */
		s2 = PG_GETARG_ARRAYTYPE_P_COPY(1);
		((double *) ARR_DATA_PTR(s2))[UP_SKIPPED] += a[UP_SKIPPED];
		PG_RETURN_ARRAYTYPE_P(s2);
	}
	if (a[UP_K] != b[UP_K] || a[UP_D] != b[UP_D] || n1 != n2)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("base_rewards must be the same for every row of a "
						"group")));
	for (int i = UP_N; i < n1; i++)
		a[i] += b[i];
	PG_RETURN_ARRAYTYPE_P(s1);
}

/* Values of a complete mixture_user_pass state; *k gets its components */
static double *
UserPassValues(ArrayType *a, int *k)
{
	int			count;
	double	   *v = StateValues(a, TAG_USER_PASS, "mixture_user_pass state",
								&count);

	*k = (int) v[UP_K];
	CheckLength(count, UP_HEADER + (double) *k, "mixture_user_pass state");
	return v;
}

/* Mixing weights argument for k components */
static const double *
MixingValues(ArrayType *a, int k)
{
	int			count;
	const double *pi = PointValues(a, "mixing", &count);

	if (count != k)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("expected %d mixing weights, one per component, not "
						"%d", k, count)));
	for (int c = 0; c < k; c++)
		if (pi[c] < 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("mixing weights must be >= 0, not %g", pi[c])));
	return pi;
}

/*
 * Posterior over components of a user with log-likelihoods l under mixing
 * weights pi, into gamma; returns the user's log-likelihood log sum_c pi_c
 * exp(l_c), computed as in prm_mixture.c.
 */
static double
Posterior(const double *l, const double *pi, int k, double *gamma)
{
	double		top = -INFINITY;
	double		sum = 0.0;

	for (int c = 0; c < k; c++)
	{
		gamma[c] = pi[c] > 0 ? log(pi[c]) + l[c] : -INFINITY;
		if (gamma[c] > top)
			top = gamma[c];
	}
	if (!isfinite(top))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("a user has zero likelihood under every component")));
	for (int c = 0; c < k; c++)
	{
		gamma[c] = exp(gamma[c] - top);
		sum += gamma[c];
	}
	for (int c = 0; c < k; c++)
		gamma[c] /= sum;
	return top + log(sum);
}

/*
 * mixture_posterior(user_pass, mixing): a user's responsibilities, the
 * posterior probability of each component given all of their comparisons
 */
Datum
mixture_posterior(PG_FUNCTION_ARGS)
{
	int			k;
	double	   *v = UserPassValues(PG_GETARG_ARRAYTYPE_P(0), &k);
	const double *pi;
	double	   *gamma;

	if (k == 0)
		PG_RETURN_NULL();
	pi = MixingValues(PG_GETARG_ARRAYTYPE_P(1), k);
	gamma = palloc(sizeof(double) * k);
	Posterior(v + UP_HEADER, pi, k, gamma);
	PG_RETURN_ARRAYTYPE_P(MakeArray(gamma, k, 0));
}

/*
 * Add one user: mixture_estep(user_pass, mixing) sums the users'
 * log-likelihoods and responsibilities of a group
 */
Datum
mixture_estep_transfn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	ArrayType  *state;
	double	   *u,
			   *v;
	const double *pi;
	double		gamma[MAX_COMPONENTS];
	int			k;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		elog(ERROR, "mixture_estep_transfn called in non-aggregate context");
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("user_pass and mixing must not be NULL")));
	u = UserPassValues(PG_GETARG_ARRAYTYPE_P(1), &k);
	if (PG_ARGISNULL(0))
	{
		state = NewVector(aggcontext, ES_HEADER + Max(k, 1));
		v = (double *) ARR_DATA_PTR(state);
		v[ES_TAG] = TAG_ESTEP;
		v[ES_K] = k;
	}
	else
		state = PG_GETARG_ARRAYTYPE_P(0);
	v = StateValues(state, TAG_ESTEP, "mixture_estep state", NULL);

	/* a user whose comparisons were all skipped only counts as skipped */
	v[ES_SKIPPED] += u[UP_SKIPPED];
	if (k == 0)
		PG_RETURN_ARRAYTYPE_P(state);
	if (v[ES_K] == 0)
	{
		double		skipped = v[ES_SKIPPED];

		state = NewVector(aggcontext, ES_HEADER + k);
		v = (double *) ARR_DATA_PTR(state);
		v[ES_TAG] = TAG_ESTEP;
		v[ES_K] = k;
		v[ES_SKIPPED] = skipped;
	}
	if (v[ES_K] != k)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("every user of a group needs the same components")));
	pi = MixingValues(PG_GETARG_ARRAYTYPE_P(2), k);
	v[ES_LOGLIK] += Posterior(u + UP_HEADER, pi, k, gamma);
	v[ES_USERS] += 1;
	v[ES_N] += u[UP_N];
	v[ES_WEIGHT] += u[UP_WEIGHT];
	for (int c = 0; c < k; c++)
		v[ES_HEADER + c] += gamma[c];
	PG_RETURN_ARRAYTYPE_P(state);
}

/* Add two mixture_estep states */
Datum
mixture_estep_combinefn(PG_FUNCTION_ARGS)
{
	ArrayType  *s1 = PG_GETARG_ARRAYTYPE_P(0);
	ArrayType  *s2 = PG_GETARG_ARRAYTYPE_P(1);
	int			n1,
				n2;
	double	   *a = StateValues(s1, TAG_ESTEP, "mixture_estep state", &n1);
	double	   *b = StateValues(s2, TAG_ESTEP, "mixture_estep state", &n2);

	if (!AggCheckCallContext(fcinfo, NULL))
		elog(ERROR, "mixture_estep_combinefn called in non-aggregate "
			 "context");
	if (b[ES_K] == 0)
	{
		a[ES_SKIPPED] += b[ES_SKIPPED];
		PG_RETURN_ARRAYTYPE_P(s1);
	}
	if (a[ES_K] == 0)
	{
		/* the incoming state is read-only: return a copy */
		s2 = PG_GETARG_ARRAYTYPE_P_COPY(1);
		((double *) ARR_DATA_PTR(s2))[ES_SKIPPED] += a[ES_SKIPPED];
		PG_RETURN_ARRAYTYPE_P(s2);
	}
	if (a[ES_K] != b[ES_K] || n1 != n2)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("every user of a group needs the same components")));
	for (int i = ES_USERS; i < n1; i++)
		a[i] += b[i];
	PG_RETURN_ARRAYTYPE_P(s1);
}

/*
 * Add one comparison: mixture_pass(base_rewards, responsibilities, chosen,
 * rejected [, weight]) sums every component's responsibility-weighted
 * gradient and Hessian of the negative log-likelihood
 */
Datum
mixture_pass_transfn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	ArrayType  *state = NULL;
	PassScratch *s = NULL;
	double	   *v;
	const double *base;
	const double *gamma;
	double		a = 1.0;
	double	   *blocks;
	int			d,
				k,
				count,
				capacity;
	Size		per;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		elog(ERROR, "mixture_pass_transfn called in non-aggregate context");
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("base_rewards and responsibilities must not be "
						"NULL")));
	if (!PG_ARGISNULL(0))
		state = PG_GETARG_ARRAYTYPE_P(0);

	d = ReadComparison(fcinfo, 3, PG_NARGS() > 5 ? 5 : -1, &a, &s);
	if (d == 0)
	{
		if (state == NULL)
		{
			state = NewVector(aggcontext, MP_HEADER);
			((double *) ARR_DATA_PTR(state))[MP_TAG] = TAG_MIX_PASS;
		}
		v = StateValues(state, TAG_MIX_PASS, "mixture_pass state", NULL);
		v[MP_SKIPPED] += 1;
		PG_RETURN_ARRAYTYPE_P(state);
	}
	base = BaseRewards(PG_GETARG_ARRAYTYPE_P(1), d, &k);
	gamma = PointValues(PG_GETARG_ARRAYTYPE_P(2), "responsibilities",
						&count);
	if (count != k)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("expected %d responsibilities, one per component, "
						"not %d", k, count)));
	per = d + Square(d);

	if (state == NULL || ((double *) ARR_DATA_PTR(state))[MP_K] == 0)
	{
		double		skipped = 0.0;
		double		values = MP_HEADER +
			(double) k * (per + (double) BlockRows(d) * d);

		if (state)
			skipped = StateValues(state, TAG_MIX_PASS, "mixture_pass state",
								  NULL)[MP_SKIPPED];
		CheckStateSize(values, "mixture_pass");
		state = NewVector(aggcontext, (int) values);
		v = (double *) ARR_DATA_PTR(state);
		v[MP_TAG] = TAG_MIX_PASS;
		v[MP_K] = k;
		v[MP_D] = d;
		v[MP_SKIPPED] = skipped;
		v[MP_CAPACITY] = BlockRows(d);
	}
	v = StateValues(state, TAG_MIX_PASS, "mixture_pass state", NULL);
	if (v[MP_D] != d)
		PrmDimensionMismatch((int) v[MP_D], d);
	if (v[MP_K] != k)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("base_rewards must be the same for every row of a "
						"group")));

	v[MP_N] += 1;
	capacity = (int) v[MP_CAPACITY];
	blocks = v + MP_HEADER + k * per;
	for (int c = 0; c < k; c++)
	{
		double		ag = a * gamma[c];
		double	   *gc = v + MP_HEADER + c * per;
		double	   *row = blocks +
			((Size) c * capacity + (Size) v[MP_BUFFERED]) * d;
		double		m,
					sp,
					sn,
					scale;

		/* users certain to be elsewhere add nothing */
		if (ag == 0)
		{
			memset(row, 0, sizeof(double) * d);
			continue;
		}
		m = Dot(base + (Size) c * d, s->z, d);
		sp = PrmSigmoid(m);
		sn = PrmSigmoid(-m);
		scale = sqrt(ag * sp * sn);
		for (int j = 0; j < d; j++)
		{
			gc[j] -= ag * sn * s->z[j];
			row[j] = scale * s->z[j];
		}
	}
	if (++v[MP_BUFFERED] >= capacity)
	{
		for (int c = 0; c < k; c++)
			AddBlock(v + MP_HEADER + c * per + d,
					 blocks + (Size) c * capacity * d, capacity, d);
		v[MP_BUFFERED] = 0;
	}
	PG_RETURN_ARRAYTYPE_P(state);
}

/* Add two mixture_pass states */
Datum
mixture_pass_combinefn(PG_FUNCTION_ARGS)
{
	ArrayType  *s1 = PG_GETARG_ARRAYTYPE_P(0);
	ArrayType  *s2 = PG_GETARG_ARRAYTYPE_P(1);
	int			n1,
				n2;
	double	   *a = StateValues(s1, TAG_MIX_PASS, "mixture_pass state", &n1);
	double	   *b = StateValues(s2, TAG_MIX_PASS, "mixture_pass state", &n2);
	int			k,
				d;
	Size		per;

	if (!AggCheckCallContext(fcinfo, NULL))
		elog(ERROR, "mixture_pass_combinefn called in non-aggregate "
			 "context");
	if (b[MP_K] == 0)
	{
		a[MP_SKIPPED] += b[MP_SKIPPED];
		PG_RETURN_ARRAYTYPE_P(s1);
	}
	if (a[MP_K] == 0)
	{
		/* the incoming state is read-only: return a copy */
		s2 = PG_GETARG_ARRAYTYPE_P_COPY(1);
		((double *) ARR_DATA_PTR(s2))[MP_SKIPPED] += a[MP_SKIPPED];
		PG_RETURN_ARRAYTYPE_P(s2);
	}
	if (a[MP_K] != b[MP_K] || a[MP_D] != b[MP_D])
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("base_rewards must be the same for every row of a "
						"group")));
	k = (int) a[MP_K];
	d = (int) a[MP_D];
	per = d + Square(d);
	CheckLength(n1, MP_HEADER + k * (per + a[MP_CAPACITY] * d),
				"mixture_pass state");
	CheckLength(n2, MP_HEADER + k * (per + b[MP_CAPACITY] * d),
				"mixture_pass state");
	a[MP_N] += b[MP_N];
	a[MP_SKIPPED] += b[MP_SKIPPED];
	for (Size i = MP_HEADER; i < MP_HEADER + k * per; i++)
		a[i] += b[i];

	/* b's waiting rows go straight into a's Hessians */
	for (int c = 0; c < k; c++)
	{
		Size		block = (Size) c * (Size) b[MP_CAPACITY] * d;

		AddBlock(a + MP_HEADER + c * per + d, b + MP_HEADER + k * per + block,
				 (int) b[MP_BUFFERED], d);
	}
	PG_RETURN_ARRAYTYPE_P(s1);
}

/*
 * mixture_pass_final(state): the result of mixture_pass, with every row
 * added to the Hessians and no blocks
 */
Datum
mixture_pass_final(PG_FUNCTION_ARGS)
{
	int			count,
				k,
				d;
	double	   *v = StateValues(PG_GETARG_ARRAYTYPE_P(0), TAG_MIX_PASS,
								"mixture_pass state", &count);
	Size		per,
				keep;
	ArrayType  *out;
	double	   *o;

	k = (int) v[MP_K];
	d = (int) v[MP_D];
	per = d + Square(d);
	keep = MP_HEADER + k * per;
	CheckLength(count, keep + k * v[MP_CAPACITY] * d, "mixture_pass state");
	out = NewVector(CurrentMemoryContext, (int) keep);
	o = (double *) ARR_DATA_PTR(out);
	memcpy(o, v, sizeof(double) * keep);
	for (int c = 0; c < k; c++)
		AddBlock(o + MP_HEADER + c * per + d,
				 v + keep + (Size) c * (Size) v[MP_CAPACITY] * d,
				 (int) v[MP_BUFFERED], d);
	o[MP_CAPACITY] = 0;
	o[MP_BUFFERED] = 0;
	PG_RETURN_ARRAYTYPE_P(out);
}

/* Values of a mixture solver; *k and *d receive its shape */
static double *
MixSolverValues(ArrayType *a, int *k, int *d)
{
	int			count;
	double	   *v = StateValues(a, TAG_MIX_SOLVER, "mixture solver", &count);

	*k = (int) v[MS_K];
	*d = (int) v[MS_D];
	CheckLength(count, MS_HEADER + 2.0 * *k + 3.0 * *k * *d,
				"mixture solver");
	return v;
}

/* Penalty (l2 / 2) sum_c ||w_c||^2 of k x d base rewards */
static double
MixPenalty(const double *w, int k, int d, double l2)
{
	return 0.5 * l2 * Dot(w, w, k * d);
}

/*
 * mixture_multipass_start(base_rewards, mixing, l2, tol, max_iter,
 * restarts, restarts_at_best, sampled_users): a solver at a starting point,
 * waiting for its first E-pass
 */
Datum
mixture_multipass_start(PG_FUNCTION_ARGS)
{
	ArrayType  *ba = PG_GETARG_ARRAYTYPE_P(0);
	double		l2 = CheckL2(PG_GETARG_FLOAT8(2));
	double		tol = PG_GETARG_FLOAT8(3);
	int32		max_iter = PG_GETARG_INT32(4);
	const double *base,
			   *pi;
	ArrayType  *solver;
	double	   *s;
	double		total = 0.0;
	int			k,
				d,
				count;

	if (ARR_NDIM(ba) != 2)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("base_rewards must be a k x d array, not %d-D",
						ARR_NDIM(ba))));
	k = ARR_DIMS(ba)[0];
	d = ARR_DIMS(ba)[1];
	base = PointValues(ba, "base_rewards", &count);
	if (k < 1 || k > MAX_COMPONENTS || d < 1 || d > PRM_MAX_DIM)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("base_rewards must have 1 to %d rows and 1 to %d "
						"columns, not %d and %d", MAX_COMPONENTS,
						PRM_MAX_DIM, k, d)));
	pi = MixingValues(PG_GETARG_ARRAYTYPE_P(1), k);
	for (int c = 0; c < k; c++)
		total += pi[c];
	if (!(l2 > 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("mixture fits need l2 > 0"),
				 errdetail("Without a penalty a component that serves few "
						   "users can have infinite weights.")));
	if (!(tol > 0 && tol < 1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tol must be between 0 and 1, not %g", tol)));
	if (max_iter < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_iter must be at least 1, not %d", max_iter)));
	if (!(total > 0))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("mixing weights must not all be zero")));
	CheckStateSize(k * (d + (double) Square(d) + (double) BlockRows(d) * d),
				   "mixture_pass");

	solver = NewVector(CurrentMemoryContext, MS_HEADER + 2 * k + 3 * k * d);
	s = (double *) ARR_DATA_PTR(solver);
	s[MS_TAG] = TAG_MIX_SOLVER;
	s[MS_K] = k;
	s[MS_D] = d;
	s[MS_NEXT] = NEXT_ESTEP;
	s[MS_END] = END_RUNNING;
	s[MS_L2] = l2;
	s[MS_TOL] = tol;
	s[MS_MAX_ITER] = max_iter;
	s[MS_RESTARTS] = PG_ARGISNULL(5) ? 0 : PG_GETARG_INT32(5);
	s[MS_AT_BEST] = PG_ARGISNULL(6) ? 0 : PG_GETARG_INT32(6);
	s[MS_SAMPLED] = PG_ARGISNULL(7) ? 0 : PG_GETARG_INT32(7);
	for (int c = 0; c < k; c++)
		s[MS_HEADER + c] = pi[c] / total;
	memcpy(s + MS_HEADER + 2 * k, base, sizeof(double) * k * d);
	PG_RETURN_ARRAYTYPE_P(solver);
}

/*
 * mixture_multipass_judge(solver, estep): judge the point an E-pass was
 * made at. A step that lowered the penalized log-likelihood is halved and
 * the E-pass repeated; otherwise the solver stops (converged, iteration
 * limit, stalled) or waits for the M-pass.
 */
Datum
mixture_multipass_judge(PG_FUNCTION_ARGS)
{
	ArrayType  *solver = (CheckSolverArgs(fcinfo),
							 PG_GETARG_ARRAYTYPE_P_COPY(0));
	int			k,
				d,
				ke,
				count;
	double	   *s = MixSolverValues(solver, &k, &d);
	double	   *e = StateValues(PG_GETARG_ARRAYTYPE_P(1), TAG_ESTEP,
								"mixture_estep state", &count);
	double	   *pi = s + MS_HEADER;
	double	   *pinext = pi + k;
	double	   *w = pinext + k;
	double	   *wprev = w + k * d;
	double	   *p = wprev + k * d;
	double		obj,
				prev;

	ke = (int) e[ES_K];
	if (s[MS_NEXT] != NEXT_ESTEP)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the solver does not wait for an E-pass")));
	CheckLength(count, ES_HEADER + (double) Max(ke, 1), "mixture_estep state");
	if (ke != k)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the E-pass has %d components, the solver %d",
						ke, k)));
	if (e[ES_USERS] < k)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k = %d is larger than the number of users, %.0f",
						k, e[ES_USERS])));

	s[MS_PASSES] += 1;
	obj = e[ES_LOGLIK] - MixPenalty(w, k, d, s[MS_L2]);
	if (!isfinite(obj))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("mixture fit met a non-finite value")));

	prev = s[MS_OBJ];
	if (s[MS_STEPPING] != 0)
	{
		if (obj < prev - ROUNDING_REL * fabs(prev))
		{
			s[MS_HALVINGS] += 1;
			if (s[MS_HALVINGS] >= MIX_MAX_HALVINGS)
			{
				/* no ascent found: one more E-pass at the last point */
				memcpy(w, wprev, sizeof(double) * k * d);
				s[MS_STEPPING] = 0;
				s[MS_STALLED] = 1;
				PG_RETURN_ARRAYTYPE_P(solver);
			}
			s[MS_ALPHA] *= 0.5;
			for (int i = 0; i < k * d; i++)
				w[i] = wprev[i] + s[MS_ALPHA] * p[i];
			PG_RETURN_ARRAYTYPE_P(solver);
		}
		s[MS_STEPPING] = 0;
	}

	/* accepted: record the facts, and the mixing of the M-step */
	s[MS_OBJ] = obj;
	s[MS_LOGLIK] = e[ES_LOGLIK];
	s[MS_USERS] = e[ES_USERS];
	s[MS_N] = e[ES_N];
	s[MS_SKIPPED] = e[ES_SKIPPED];
	for (int c = 0; c < k; c++)
		pinext[c] = e[ES_HEADER + c] / e[ES_USERS];

	s[MS_SETTLED] = s[MS_ITER] > 0 &&
		fabs(obj - prev) <= s[MS_TOL] * Max(1.0, fabs(obj));
	if (s[MS_STALLED] != 0)
	{
		s[MS_NEXT] = NEXT_DONE;
		s[MS_END] = END_STALLED;
	}
	else if (s[MS_ITER] >= s[MS_MAX_ITER])
	{
		s[MS_NEXT] = NEXT_DONE;
		s[MS_END] = END_MAX_ITER;
	}
	else
		s[MS_NEXT] = NEXT_MSTEP;
	PG_RETURN_ARRAYTYPE_P(solver);
}

/*
 * mixture_multipass_step(solver, mpass): the M-step from an M-pass: the
 * mixing weights become the mean responsibilities and every component
 * takes one Newton step on its responsibility-weighted objective (a
 * generalized M-step, as in prm_mixture.c); the next E-pass judges it
 */
Datum
mixture_multipass_step(PG_FUNCTION_ARGS)
{
	ArrayType  *solver = (CheckSolverArgs(fcinfo),
							 PG_GETARG_ARRAYTYPE_P_COPY(0));
	int			k,
				d,
				count;
	double	   *s = MixSolverValues(solver, &k, &d);
	double	   *v = StateValues(PG_GETARG_ARRAYTYPE_P(1), TAG_MIX_PASS,
								"mixture_pass state", &count);
	double	   *pi = s + MS_HEADER;
	double	   *pinext = pi + k;
	double	   *w = pinext + k;
	double	   *wprev = w + k * d;
	double	   *p = wprev + k * d;
	double		l2 = s[MS_L2];
	Size		per = d + Square(d);
	double	   *grad = palloc(sizeof(double) * d);
	double		gnorm2 = 0.0;

	if (s[MS_NEXT] != NEXT_MSTEP)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the solver does not wait for an M-pass")));
	if (v[MP_K] != k || v[MP_D] != d)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the M-pass has %g components of dimension %g, the "
						"solver %d of %d", v[MP_K], v[MP_D], k, d)));
	if (v[MP_CAPACITY] != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("mixture_pass state is a transition state, not the "
						"result of mixture_pass")));
	CheckLength(count, MP_HEADER + (double) k * per, "mixture_pass state");

	s[MS_PASSES] += 1;
	for (int c = 0; c < k; c++)
	{
		const double *gc = v + MP_HEADER + c * per;
		double	   *wc = w + (Size) c * d;
		double	   *pc = p + (Size) c * d;
		double		slope;

		for (int j = 0; j < d; j++)
			grad[j] = gc[j] + l2 * wc[j];
		gnorm2 += Dot(grad, grad, d);

		/* a component no user belongs to keeps its reward */
		if (!(pinext[c] * s[MS_USERS] > 1e-12))
		{
			memset(pc, 0, sizeof(double) * d);
			continue;
		}
		if (!NewtonDirection(gc + d, grad, d, l2, pc))
		{
			/* fall back to a scaled gradient step, as prm_mixture.c */
			for (int j = 0; j < d; j++)
				pc[j] = -grad[j] / (l2 + 1.0);
		}
		slope = Dot(grad, pc, d);
		if (!(slope < 0))
			for (int j = 0; j < d; j++)
				pc[j] = -grad[j];
	}
	s[MS_GNORM] = sqrt(gnorm2);
	if (s[MS_ITER] == 0)
		s[MS_GSCALE] = Max(1.0, s[MS_GNORM]);

	/*
	 * Converged when the objective has stopped changing and its gradient
	 * is at most sqrt(tol) times the gradient at the start: the objective
	 * test alone stops EM while the base rewards are still some way off
	 * (prm_mixture.c polishes them with a full M-step instead), and EM,
	 * whose convergence is linear, would take long to meet the gradient
	 * test of the BTL solver.
	 */
	if (s[MS_SETTLED] != 0 &&
		s[MS_GNORM] <= sqrt(s[MS_TOL]) * s[MS_GSCALE])
	{
		s[MS_NEXT] = NEXT_DONE;
		s[MS_END] = END_CONVERGED;
		PG_RETURN_ARRAYTYPE_P(solver);
	}

	memcpy(wprev, w, sizeof(double) * k * d);
	for (int i = 0; i < k * d; i++)
		w[i] += p[i];
	memcpy(pi, pinext, sizeof(double) * k);
	s[MS_ALPHA] = 1.0;
	s[MS_HALVINGS] = 0;
	s[MS_STEPPING] = 1;
	s[MS_ITER] += 1;
	s[MS_NEXT] = NEXT_ESTEP;
	PG_RETURN_ARRAYTYPE_P(solver);
}

/*
 * mixture_multipass_model(solver, user_ids, responsibilities, solve_ms):
 * the fitted mixture as a pluralrm.mixture_model, components ordered by
 * decreasing mixing weight as mixture_fit orders them
 */
Datum
mixture_multipass_model(PG_FUNCTION_ARGS)
{
	int			k,
				d,
				users;
	double	   *s = MixSolverValues(PG_GETARG_ARRAYTYPE_P(0), &k, &d);
	ArrayType  *ids = PG_GETARG_ARRAYTYPE_P(1);
	ArrayType  *ra = PG_GETARG_ARRAYTYPE_P(2);
	double		solve_ms = PG_ARGISNULL(3) ? 0.0 : PG_GETARG_FLOAT8(3);
	double	   *pi = s + MS_HEADER;
	double	   *w = pi + 2 * k;
	const double *resp;
	double	   *sw,
			   *spi,
			   *sresp;
	int		   *order;
	int			count;
	TupleDesc	tupdesc;
	Datum		values[19];
	bool		nulls[19] = {0};

	if (s[MS_NEXT] != NEXT_DONE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the solver has not finished")));
	users = ArrayGetNItems(ARR_NDIM(ids), ARR_DIMS(ids));
	resp = PointValues(ra, "responsibilities", &count);
	if (ARR_NDIM(ids) != 1 || users != s[MS_USERS] || count != users * k)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("expected responsibilities of %.0f users",
						s[MS_USERS])));
	if (s[MS_END] != END_CONVERGED)
		ereport(NOTICE,
				(errmsg("mixture_fit_multipass with k = %d did not converge "
						"in %d EM iterations", k, (int) s[MS_ITER])));

	/* components by decreasing mixing weight; ties keep their order */
	order = palloc(sizeof(int) * k);
	for (int c = 0; c < k; c++)
		order[c] = c;
	for (int a = 1; a < k; a++)
		for (int b = a; b > 0 && pi[order[b]] > pi[order[b - 1]]; b--)
		{
			int			t = order[b];

			order[b] = order[b - 1];
			order[b - 1] = t;
		}
	sw = palloc(sizeof(double) * k * d);
	spi = palloc(sizeof(double) * k);
	sresp = palloc(sizeof(double) * Max(users, 1) * k);
	for (int c = 0; c < k; c++)
	{
		spi[c] = pi[order[c]];
		memcpy(sw + (Size) c * d, w + (Size) order[c] * d,
			   sizeof(double) * d);
		for (int u = 0; u < users; u++)
			sresp[(Size) u * k + c] = resp[(Size) u * k + order[c]];
	}

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "mixture_multipass_model must return a composite type");
	tupdesc = BlessTupleDesc(tupdesc);
	values[0] = Int64GetDatum((int64) s[MS_N]);
	values[1] = Int64GetDatum(users);
	values[2] = Int32GetDatum(d);
	values[3] = Int32GetDatum(k);
	values[4] = Float8GetDatum(s[MS_L2]);
	values[5] = Float8GetDatum(s[MS_LOGLIK]);
	values[6] = Float8GetDatum(-2.0 * s[MS_LOGLIK] +
							   ((double) k * d + k - 1) * log((double) users));
	values[7] = Int32GetDatum((int32) s[MS_ITER]);
	values[8] = BoolGetDatum(s[MS_END] == END_CONVERGED);
	values[9] = Int32GetDatum((int32) s[MS_RESTARTS]);
	values[10] = Int32GetDatum((int32) s[MS_AT_BEST]);
	values[11] = Int32GetDatum((int32) s[MS_SAMPLED]);
	values[12] = Float8GetDatum(solve_ms);
	values[13] = Int64GetDatum((int64) s[MS_SKIPPED]);
	nulls[14] = true;
	values[15] = PointerGetDatum(MakeArray(spi, k, 0));
	values[16] = PointerGetDatum(MakeArray(sw, k, d));
	values[17] = PointerGetDatum(ids);
	values[18] = PointerGetDatum(MakeArray(sresp, users, k));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values,
													  nulls)));
}


/* ---------------------------------------------------------------------
 * Solver facts the drivers read
 * ---------------------------------------------------------------------
 */

/* The slot of a solver that says what it waits for */
static double
SolverNext(ArrayType *a)
{
	double	   *v;

	if (ARR_ELEMTYPE(a) == FLOAT8OID && ARR_NDIM(a) == 1 &&
		ARR_DIMS(a)[0] > MS_NEXT && !ARR_HASNULL(a))
	{
		v = (double *) ARR_DATA_PTR(a);
		if (v[0] == TAG_BTL_SOLVER)
			return v[BS_NEXT];
		if (v[0] == TAG_MIX_SOLVER)
			return v[MS_NEXT];
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("solver must be a float8[] made by a multi-pass "
					"driver")));
	return 0;
}

/*
 * multipass_next(solver): what the solver waits for: 'pass' (BTL),
 * 'estep' or 'mstep' (mixtures), or 'done'
 */
Datum
multipass_next(PG_FUNCTION_ARGS)
{
	double		next = SolverNext(PG_GETARG_ARRAYTYPE_P(0));
	const char *name = next == NEXT_PASS ? "pass" :
		next == NEXT_ESTEP ? "estep" :
		next == NEXT_MSTEP ? "mstep" : "done";

	PG_RETURN_TEXT_P(cstring_to_text(name));
}

/*
 * multipass_point(solver): the point of the next pass: w for BTL, the
 * k x d base rewards for mixtures
 */
Datum
multipass_point(PG_FUNCTION_ARGS)
{
	ArrayType  *a = PG_GETARG_ARRAYTYPE_P(0);
	int			k,
				d;

	SolverNext(a);
	if (((double *) ARR_DATA_PTR(a))[0] == TAG_BTL_SOLVER)
	{
		double	   *s = BtlSolverValues(a, &d);

		PG_RETURN_ARRAYTYPE_P(MakeArray(s + BS_HEADER, d, 0));
	}
	else
	{
		double	   *s = MixSolverValues(a, &k, &d);

		PG_RETURN_ARRAYTYPE_P(MakeArray(s + MS_HEADER + 2 * k, k, d));
	}
}

/* multipass_mixing(solver): the mixing weights of a mixture solver */
Datum
multipass_mixing(PG_FUNCTION_ARGS)
{
	int			k,
				d;
	double	   *s = MixSolverValues(PG_GETARG_ARRAYTYPE_P(0), &k, &d);

	PG_RETURN_ARRAYTYPE_P(MakeArray(s + MS_HEADER, k, 0));
}
