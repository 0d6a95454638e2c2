/*
 * embedding.c
 *	  Checks and conversion of embedding arrays (float8[] or real[]).
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
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
