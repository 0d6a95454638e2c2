/*
 * embedding.c
 *	  Checks and conversion of embedding arrays (float8[] or real[]), and
 *	  the rows of stored matrices.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/array.h"

#include "pluralrm.h"

/* Check that an embedding is a 1-D float8[] or real[] and return its size */
int
PrmEmbeddingDim(ArrayType *a, const char *what)
{
	int			d;

	if (ARR_ELEMTYPE(a) != FLOAT8OID && ARR_ELEMTYPE(a) != FLOAT4OID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("%s embedding must be float8[] or real[]", what)));
	if (ARR_NDIM(a) != 1)
	{
		if (ARR_NDIM(a) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("%s embedding must not be empty", what)));
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("%s embedding must be a 1-D array, not %d-D",
						what, ARR_NDIM(a))));
	}
	if (ARR_HASNULL(a) && array_contains_nulls(a))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s embedding must not contain NULL elements", what)));

	d = ARR_DIMS(a)[0];
	if (d > PRM_MAX_DIM)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s embedding has %d dimensions, more than the "
						"limit of %d", what, d, PRM_MAX_DIM)));
	return d;
}

/* Raise the error for an embedding of the wrong dimension */
void
PrmDimensionMismatch(int expected, int got)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_EXCEPTION),
			 errmsg("expected %d dimensions, not %d", expected, got)));
}

/* Copy a checked embedding into out as doubles, rejecting NaN and Infinity */
void
PrmEmbeddingRead(ArrayType *a, int d, double *out, const char *what)
{
	bool		finite = true;

	if (ARR_ELEMTYPE(a) == FLOAT8OID)
	{
		const double *src = (const double *) ARR_DATA_PTR(a);

		for (int j = 0; j < d; j++)
		{
			out[j] = src[j];
			finite &= isfinite(src[j]);
		}
	}
	else
	{
		const float *src = (const float *) ARR_DATA_PTR(a);

		for (int j = 0; j < d; j++)
		{
			out[j] = src[j];
			finite &= isfinite(src[j]);
		}
	}

	if (!finite)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("%s embedding must not contain NaN or Infinity",
						what)));
}

/*
 * w . x for a checked embedding x of dimension d. Four running sums, so
 * the products do not wait on one another (one sum would make every
 * addition wait for the last, which at d = 64 costs more than reading the
 * row). A non-finite input makes the result non-finite: callers check the
 * result, not every element.
 */
double
PrmEmbeddingDot(ArrayType *x, const double *w, int d)
{
	double		s0 = 0.0,
				s1 = 0.0,
				s2 = 0.0,
				s3 = 0.0;
	int			j = 0;

	/* the same loop over either element type */
#define DOT_IN_FOUR_SUMS(type) \
	do { \
		const type *v = (const type *) ARR_DATA_PTR(x); \
		for (; j + 4 <= d; j += 4) \
		{ \
			s0 += w[j] * v[j]; \
			s1 += w[j + 1] * v[j + 1]; \
			s2 += w[j + 2] * v[j + 2]; \
			s3 += w[j + 3] * v[j + 3]; \
		} \
		for (; j < d; j++) \
			s0 += w[j] * v[j]; \
	} while (0)

	if (ARR_ELEMTYPE(x) == FLOAT8OID)
		DOT_IN_FOUR_SUMS(double);
	else
		DOT_IN_FOUR_SUMS(float);
#undef DOT_IN_FOUR_SUMS
	return (s0 + s1) + (s2 + s3);
}

PG_FUNCTION_INFO_V1(matrix_rows);

/* matrix_rows(float8[]): the rows of a 2-D array as 1-D arrays, in order */
Datum
matrix_rows(PG_FUNCTION_ARGS)
{
	FuncCallContext *funcctx;
	ArrayType  *m;
	int			cols;

	if (SRF_IS_FIRSTCALL())
	{
		MemoryContext old;

		funcctx = SRF_FIRSTCALL_INIT();
		old = MemoryContextSwitchTo(funcctx->multi_call_memory_ctx);
		m = PG_GETARG_ARRAYTYPE_P_COPY(0);
		if (ARR_ELEMTYPE(m) != FLOAT8OID || ARR_NDIM(m) != 2 ||
			(ARR_HASNULL(m) && array_contains_nulls(m)))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("matrix must be a 2-D float8[] without NULLs")));
		funcctx->user_fctx = m;
		funcctx->max_calls = ARR_DIMS(m)[0];
		MemoryContextSwitchTo(old);
	}
	funcctx = SRF_PERCALL_SETUP();
	m = (ArrayType *) funcctx->user_fctx;
	cols = ARR_DIMS(m)[1];
	if (funcctx->call_cntr < funcctx->max_calls)
	{
		const double *src = (const double *) ARR_DATA_PTR(m) +
			funcctx->call_cntr * cols;
		Datum	   *elems = palloc(sizeof(Datum) * Max(cols, 1));

		for (int j = 0; j < cols; j++)
			elems[j] = Float8GetDatum(src[j]);
		SRF_RETURN_NEXT(funcctx,
						PointerGetDatum(construct_array(elems, cols,
														FLOAT8OID,
														sizeof(float8),
														FLOAT8PASSBYVAL,
														TYPALIGN_DOUBLE)));
	}
	SRF_RETURN_DONE(funcctx);
}

/* A float8[] of values: 1-D with rows values when cols is 0, else 2-D */
Datum
PrmFloatArray(const double *values, int rows, int cols)
{
	Size		count = (Size) rows * (cols > 0 ? cols : 1);
	Datum	   *elems = palloc_extended(sizeof(Datum) * Max(count, 1),
										MCXT_ALLOC_HUGE);
	int			dims[2] = {rows, cols};
	int			lbs[2] = {1, 1};

	for (Size i = 0; i < count; i++)
		elems[i] = Float8GetDatum(values[i]);
	return PointerGetDatum(construct_md_array(elems, NULL, cols > 0 ? 2 : 1,
											  dims, lbs, FLOAT8OID,
											  sizeof(float8),
											  FLOAT8PASSBYVAL,
											  TYPALIGN_DOUBLE));
}
