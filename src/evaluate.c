/*
 * evaluate.c
 *	  The evaluate aggregate: accuracy and mean log-loss of a stored model
 *	  on a set of comparisons.
 *
 * The state is a plain float8[] of {weight sum, weighted correct, weighted
 * log-loss, count}, so partial states combine by addition and parallel
 * plans need no serialization.
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "pluralrm.h"
#include "prm_core.h"

#define EVAL_SLOTS 4

PG_FUNCTION_INFO_V1(evaluate_transfn);
PG_FUNCTION_INFO_V1(evaluate_combinefn);
PG_FUNCTION_INFO_V1(evaluate_finalfn);

/* Check an evaluate state array and return its values */
static double *
EvalStateValues(ArrayType *state)
{
	if (ARR_NDIM(state) != 1 || ARR_DIMS(state)[0] != EVAL_SLOTS ||
		ARR_HASNULL(state) || ARR_ELEMTYPE(state) != FLOAT8OID)
		elog(ERROR, "evaluate: malformed state array");
	return (double *) ARR_DATA_PTR(state);
}

/* Margin w . (chosen - rejected) of one comparison */
static double
ComparisonMargin(const double *w, int d, ArrayType *chosen,
				 ArrayType *rejected, double *buf)
{
	double		m = 0.0;
	int			dc = PrmEmbeddingDim(chosen, "chosen");
	int			dr = PrmEmbeddingDim(rejected, "rejected");

	if (dc != d)
		PrmDimensionMismatch(d, dc);
	if (dr != d)
		PrmDimensionMismatch(d, dr);
	PrmEmbeddingRead(chosen, d, buf, "chosen");
	for (int j = 0; j < d; j++)
		m += w[j] * buf[j];
	PrmEmbeddingRead(rejected, d, buf, "rejected");
	for (int j = 0; j < d; j++)
		m -= w[j] * buf[j];
	return m;
}

/*
 * Add one comparison: evaluate(model, [user_id,] chosen, rejected)
 */
Datum
evaluate_transfn(PG_FUNCTION_ARGS)
{
	ArrayType  *state = PG_GETARG_ARRAYTYPE_P(0);
	int			userarg = PG_NARGS() == 5 ? 2 : -1;
	int			chosenarg = PG_NARGS() == 5 ? 3 : 2;
	double	   *acc;
	PrmModel   *model;
	double	   *buf;
	const double *w;
	double		m;
	char	   *name;

	if (!AggCheckCallContext(fcinfo, NULL))
		elog(ERROR, "evaluate_transfn called in non-aggregate context");
	acc = EvalStateValues(state);

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("model name must not be NULL")));
	if (PG_ARGISNULL(chosenarg) || PG_ARGISNULL(chosenarg + 1) ||
		(userarg >= 0 && PG_ARGISNULL(userarg)))
		PG_RETURN_ARRAYTYPE_P(state);

	/* the model and a row buffer live as long as the query */
	name = text_to_cstring(PG_GETARG_TEXT_PP(1));
	model = (PrmModel *) fcinfo->flinfo->fn_extra;
	if (model == NULL || strcmp(model->name, name) != 0)
	{
		model = PrmModelLoad(name, fcinfo->flinfo->fn_mcxt, true);
		fcinfo->flinfo->fn_extra = model;
	}
	buf = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt,
							 sizeof(double) * model->d);

	w = PrmModelUserWeights(model, fcinfo, userarg);
	m = ComparisonMargin(w, model->d, PG_GETARG_ARRAYTYPE_P(chosenarg),
						 PG_GETARG_ARRAYTYPE_P(chosenarg + 1), buf);
	pfree(buf);

	acc[0] += 1.0;
	acc[1] += m > 0 ? 1.0 : (m == 0 ? 0.5 : 0.0);
	acc[2] += PrmSoftplus(-m);
	acc[3] += 1.0;

	PG_RETURN_ARRAYTYPE_P(state);
}

/* Add two partial states */
Datum
evaluate_combinefn(PG_FUNCTION_ARGS)
{
	ArrayType  *s1 = PG_GETARG_ARRAYTYPE_P(0);
	ArrayType  *s2 = PG_GETARG_ARRAYTYPE_P(1);
	double	   *a,
			   *b;

	if (!AggCheckCallContext(fcinfo, NULL))
		elog(ERROR, "evaluate_combinefn called in non-aggregate context");
	a = EvalStateValues(s1);
	b = EvalStateValues(s2);
	for (int i = 0; i < EVAL_SLOTS; i++)
		a[i] += b[i];
	PG_RETURN_ARRAYTYPE_P(s1);
}

/* Return (n, accuracy, log_loss), or NULL for no comparisons */
Datum
evaluate_finalfn(PG_FUNCTION_ARGS)
{
	double	   *acc = EvalStateValues(PG_GETARG_ARRAYTYPE_P(0));
	TupleDesc	tupdesc;
	Datum		values[3];
	bool		nulls[3] = {0};

	if (acc[3] == 0)
		PG_RETURN_NULL();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "evaluate_finalfn must return a composite type");
	tupdesc = BlessTupleDesc(tupdesc);

	values[0] = Int64GetDatum((int64) acc[3]);
	values[1] = Float8GetDatum(acc[1] / acc[0]);
	values[2] = Float8GetDatum(acc[2] / acc[0]);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values,
													  nulls)));
}
