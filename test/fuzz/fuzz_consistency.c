/*
 * fuzz_consistency.c
 *	  libFuzzer target: the rater consistency classification on arbitrary
 *	  asks, and the exact tests it is built on.
 *
 * Input layout: n - 1, flags, alpha choice, tremble choice, then per ask
 * its pair, condition and choice (conditions and choices other than 0 and
 * 1 must give PRM_BAD_INPUT), then the arguments of the binomial tails.
 * Checks statuses, that p-values are probabilities and that counts add up.
 */
#include <stdio.h>
#include <stdlib.h>

#include "prm_consistency.h"
#include "fuzz_input.h"

#define MAX_ASKS 200

/* Run one problem */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const double alphas[] = {0.01, 0.05, 0.5, 0.0, 1.0, -0.1, NAN};
	static const double trembles[] = {0.05, 0.0, 0.2, 0.49, 0.5, -0.1, NAN};
	FuzzInput	in = {data, size, 0};
	PrmConsistencyOptions opt;
	PrmConsistencyResult res;
	PrmAsk	   *asks;
	int64_t		n;
	int			flags,
				valid = 1;
	void	   *work;
	PrmStatus	st;

	n = 1 + FuzzBelow(&in, MAX_ASKS);
	flags = FuzzByte(&in);
	opt.alpha = alphas[FuzzBelow(&in, 7)];
	opt.tremble = trembles[FuzzBelow(&in, 7)];
	valid = opt.alpha > 0 && opt.alpha < 1 && opt.tremble >= 0 &&
		opt.tremble < 0.5;
	asks = malloc(sizeof(PrmAsk) * n);
	FUZZ_ASSERT(asks != NULL, "allocation");
	for (int64_t i = 0; i < n; i++)
	{
		int			b = FuzzByte(&in);

		asks[i].pair = FuzzBelow(&in, 1 + (flags & 7) * 8);
		asks[i].condition = (flags & 8) ? (b & 3) : (b & 1);
		asks[i].chose_first = (flags & 16) ? ((b >> 2) & 3) : ((b >> 2) & 1);
		valid &= asks[i].condition <= 1 && asks[i].chose_first <= 1;
	}

	work = malloc(PrmConsistencyWorkspaceSize(n));
	FUZZ_ASSERT(work != NULL, "allocation");
	st = PrmConsistencyClassify(asks, n, &opt, work, &res);
	free(work);
	FUZZ_ASSERT(st == (valid ? PRM_OK : PRM_BAD_INPUT),
				"wrong status for the asks");
	if (st == PRM_OK)
	{
		FUZZ_ASSERT(res.asks == n, "asks not all counted");
		FUZZ_ASSERT(res.pairs >= 1 && res.pairs <= n, "pair count");
		FUZZ_ASSERT(res.pairs_reasked <= res.pairs &&
					res.inconsistent <= res.pairs_reasked,
					"re-ask counts do not nest");
		FUZZ_ASSERT(res.first_shown >= 0 && res.first_shown <= n,
					"first-shown count");
		FUZZ_ASSERT(res.p_stable >= 0 && res.p_stable <= 1 &&
					res.p_non_attitude >= 0 && res.p_non_attitude <= 1 &&
					res.p_condition >= 0 && res.p_condition <= 1,
					"a p-value outside [0, 1]");
		FUZZ_ASSERT(res.kind >= PRM_KIND_INSUFFICIENT &&
					res.kind <= PRM_KIND_CONSTRUCTED, "unknown kind");
		FUZZ_ASSERT(PrmConsistencyKindName(res.kind) != NULL, "kind name");
	}

	/* the binomial tails on arbitrary counts and probabilities */
	{
		int64_t		bn = FuzzU16(&in);
		int64_t		bk = FuzzU16(&in) % (bn + 2);
		double		p = FuzzU16(&in) / 65535.0;
		double		up = PrmBinomialUpper(bk, bn, p);

		FUZZ_ASSERT(up >= 0 && up <= 1 + 1e-12,
					"binomial tail outside [0, 1]");
		FUZZ_ASSERT(PrmBinomialLogUpper(bk, bn, p) <= 1e-12,
					"log tail above 0");
	}
	free(asks);
	return 0;
}
