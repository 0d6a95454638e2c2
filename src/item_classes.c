/*
 * item_classes.c
 *	  The btl_item_classes aggregate: latent classes of raters over item
 *	  strengths, fitted by EM in the core (prm_item_classes.c).
 *
 * The aggregate counts comparisons exactly as btl_items does, per pair
 * and per rater and pair, in the same state (items.c), and shares its
 * combine, serialize and deserialize functions; the state also carries k
 * and the number of restarts. The final function lays the counts out in
 * canonical order (items and raters in their type's sort order), so a
 * seeded fit does not depend on the order in which rows arrived.
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

#include "items.h"
#include "pluralrm.h"
#include "prm_item_classes.h"

/* Restarts when none are given */
#define DEFAULT_RESTARTS 10

/* Number of values in a pluralrm.item_classes_model row */
#define MODEL_FIELDS 22

PG_FUNCTION_INFO_V1(btl_item_classes_transfn);
PG_FUNCTION_INFO_V1(btl_item_classes_finalfn);

/*
 * Add one comparison:
 *	 btl_item_classes(item_a, item_b, outcome, rater, k)
 *	 btl_item_classes(item_a, item_b, outcome, weight, rater, k, options
 *					  [, restarts])
 */
Datum
btl_item_classes_transfn(PG_FUNCTION_ARGS)
{
	ItemsArgs	args = {"btl_item_classes_transfn", -1, 4, 5, -1, -1};

	if (PG_NARGS() >= 8)
	{
		args.weight = 4;
		args.rater = 5;
		args.classes = 6;
		args.options = 7;
		if (PG_NARGS() >= 9)
			args.restarts = 8;
	}
	PG_RETURN_POINTER(ItemsTransition(fcinfo, &args));
}

/* Turn a failed fit into an error, or a notice when merely unconverged */
static void
ReportStatus(const PrmItemClassesResult *res, int k)
{
	switch (res->status)
	{
		case PRM_OK:
			break;
		case PRM_NOT_CONVERGED:
			ereport(NOTICE,
					(errmsg("btl_item_classes did not converge in %d EM "
							"iterations", res->iterations)));
			break;
		case PRM_NO_INFORMATION:
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("every EM run lost one of its %d classes", k),
					 errdetail("A class kept no responsibility from any "
							   "rater in all %d restarts.", res->restarts),
					 errhint("Fit fewer classes.")));
			break;
		case PRM_SEPARABLE:
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("the strengths of some class without a prior "
							"are infinite"),
					 errdetail("Some items won or lost every comparison "
							   "with the rest, as weighted by a class's "
							   "responsibilities."),
					 errhint("Pass a positive prior, for example "
							 "pluralrm.items_options(prior => 0.01).")));
			break;
		case PRM_NOT_POSITIVE_DEFINITE:
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("btl_item_classes could not factor a Hessian")));
			break;
		case PRM_BAD_INPUT:
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("btl_item_classes met a non-finite value while "
							"solving"),
					 errhint("Check the weights for extreme magnitudes.")));
			break;
	}
}

/* Check what the fit cannot do before any arithmetic */
static void
CheckFit(const ItemsState *state, const ItemsFit *fit, int n_components)
{
	const ItemsOptions *opt = &state->opt;
	int			k = state->classes;

	if (k > state->n_raters)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k must not exceed the number of raters: k is %d, "
						"and there are %d raters", k, state->n_raters)));
	if (opt->ties == PRM_TIES_DAVIDSON && fit->tie_total > 0 &&
		fit->tie_total >= fit->total)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("every comparison is a tie, so the Davidson tie "
						"parameter nu is infinite"),
				 errhint("Use pluralrm.items_options(ties => 'half').")));
	if (opt->bootstrap > 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("btl_item_classes has no bootstrap"),
				 errhint("Leave bootstrap at 0.")));
	if (n_components > 1 && (opt->prior == 0 || fit->reference >= 0))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("the comparison graph has %d connected components, "
						"so strengths %s are not identified", n_components,
						opt->prior == 0 ? "without a prior" :
						"relative to one reference item"),
				 errhint("Pass a positive prior and no reference.")));
}

/* A text[] of n strings */
static Datum
TextArray(char **s, int n)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		elems[i] = CStringGetTextDatum(s[i]);
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false,
										   TYPALIGN_INT));
}

/*
 * Fit the classes and return them as a pluralrm.item_classes_model row.
 */
Datum
btl_item_classes_finalfn(PG_FUNCTION_ARGS)
{
	ItemsState *state;
	const ItemsOptions *opt;
	ItemsFit	fit;
	PrmItemClassesProblem prob;
	PrmItemClassesResult res;
	int32	   *component;
	int			n_components;
	int			n,
				k,
				restarts;
	double	   *mixing,
			   *strength,
			   *resp,
			   *scratch,
				log_nu;
	void	   *work;
	struct timespec t0,
				t1;
	TupleDesc	tupdesc;
	Datum		values[MODEL_FIELDS];
	bool		nulls[MODEL_FIELDS] = {0};

	if (!AggCheckCallContext(fcinfo, NULL))
		elog(ERROR, "btl_item_classes_finalfn called in non-aggregate "
			 "context");
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	state = (ItemsState *) PG_GETARG_POINTER(0);
	opt = &state->opt;
	if (state->skipped_null > 0 || state->skipped_self > 0)
		ereport(NOTICE,
				(errmsg("btl_item_classes skipped %lld comparisons with a "
						"NULL input and %lld of an item with itself",
						(long long) state->skipped_null,
						(long long) state->skipped_self)));
	if (state->n_pairs == 0 && state->n_pending == 0)
		PG_RETURN_NULL();
	if (state->classes < 1 || !OidIsValid(state->rater_type.type))
		elog(ERROR, "btl_item_classes state without k or raters");
	k = state->classes;
	restarts = state->restarts > 0 ? state->restarts : DEFAULT_RESTARTS;

	/* the counts in canonical order, and the graph's components */
	memset(&fit, 0, sizeof(fit));
	ItemsFitData(state, &fit);
	n = fit.n_items;
	work = MemoryContextAllocHuge(CurrentMemoryContext,
								  PrmItemsWorkspaceSize(n,
														fit.prob.n_pairs));
	component = palloc(sizeof(int32) * n);
	n_components = PrmItemsComponents(&fit.prob, component, work);
	pfree(work);
	CheckFit(state, &fit, n_components);
	if (!(fit.total - (opt->ties == PRM_TIES_DROP ? fit.tie_total : 0) > 0))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("no comparison has a positive weight")));

	prob.n_items = n;
	prob.n_pairs = fit.prob.n_pairs;
	prob.item_i = fit.prob.item_i;
	prob.item_j = fit.prob.item_j;
	prob.n_raters = fit.rs.n_raters;
	prob.n_cells = fit.rs.n_cells;
	prob.cell_rater = fit.rs.cell_rater;
	prob.cell_pair = fit.rs.cell_pair;
	prob.cell_win_i = fit.rs.cell_win_i;
	prob.cell_win_j = fit.rs.cell_win_j;
	prob.cell_tie = fit.rs.cell_tie;
	prob.prior = opt->prior;
	prob.ties = opt->ties;
	prob.k = k;

	PrmFitMemoryCheck(MemoryContextMemAllocated(state->mcxt, true),
					  add_size(PrmItemClassesWorkspaceSize(&prob),
							   mul_size(sizeof(double),
										mul_size(k, (Size) n +
												 prob.n_raters + 1))),
					  "btl_item_classes");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	mixing = palloc(sizeof(double) * k);
	strength = MemoryContextAllocHuge(CurrentMemoryContext,
									  mul_size(sizeof(double),
											   mul_size(k, n)));
	resp = MemoryContextAllocHuge(CurrentMemoryContext,
								  mul_size(sizeof(double),
										   mul_size(k, prob.n_raters)));
	work = MemoryContextAllocHuge(CurrentMemoryContext,
								  PrmItemClassesWorkspaceSize(&prob));
	PrmItemClassesFit(&prob, restarts, (uint64) opt->seed,
					  PRM_ITEM_CLASSES_MAX_ITER, mixing, strength, &log_nu,
					  resp, work, &res);
	pfree(work);
	ReportStatus(&res, k);
	elog(DEBUG1, "btl_item_classes: %d items, %d raters, k = %d, "
		 "%d iterations, log-likelihood %.10g, nu %.10g", n, prob.n_raters,
		 k, res.iterations, res.loglik, res.has_nu ? exp(log_nu) : 0.0);

	/* the same identification as btl_items, class by class */
	scratch = palloc(sizeof(double) * 2 * n_components);
	for (int c = 0; c < k; c++)
		PrmItemsIdentify(n, strength + (size_t) c * n, component,
						 n_components, fit.reference, scratch);
	clock_gettime(CLOCK_MONOTONIC, &t1);

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "btl_item_classes_finalfn must return a composite type");
	if (tupdesc->natts != MODEL_FIELDS)
		elog(ERROR, "pluralrm.item_classes_model has %d fields, not %d",
			 tupdesc->natts, MODEL_FIELDS);
	tupdesc = BlessTupleDesc(tupdesc);

	values[0] = Int64GetDatum(state->rows);
	values[1] = Int64GetDatum(state->skipped_null + state->skipped_self);
	values[2] = Int32GetDatum(n);
	values[3] = Int32GetDatum(prob.n_raters);
	values[4] = Int32GetDatum(k);
	values[5] = Float8GetDatum(opt->prior);
	values[6] = CStringGetTextDatum(ItemsTieModelName(opt->ties));
	nulls[7] = fit.reference < 0;
	if (fit.reference >= 0)
		values[7] = CStringGetTextDatum(fit.item_text[fit.reference]);
	values[8] = Float8GetDatum(res.loglik);
	values[9] = Float8GetDatum(res.bic);
	values[10] = Int32GetDatum(res.iterations);
	values[11] = BoolGetDatum(res.converged);
	values[12] = Int32GetDatum(res.restarts);
	values[13] = Int32GetDatum(res.restarts_at_best);
	values[14] = Int64GetDatum(opt->seed);
	values[15] = Float8GetDatum(PrmElapsedMs(&t0, &t1));
	values[16] = TextArray(fit.item_text, n);
	values[17] = PrmFloatArray(mixing, k, 0);
	values[18] = PrmFloatArray(strength, k, n);
	values[19] = TextArray(fit.rater_text, prob.n_raters);
	values[20] = PrmFloatArray(resp, prob.n_raters, k);
	values[21] = Float8GetDatum(res.has_nu ? exp(log_nu) : 0.0);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values,
													  nulls)));
}
