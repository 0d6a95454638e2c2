/*
 * fuzz_mixture.c
 *	  libFuzzer target: EM for mixtures of BTL models on small arbitrary
 *	  problems.
 *
 * Input layout: n - 1, d - 1, users - 1, k - 1, restarts - 1, flags (bit 0:
 * weights, bit 1: raw doubles, bit 2: a trace, bit 3: restarts on a sample
 * of users), l2 choice, max_iter, restart users, seed (8 bytes), then per
 * row its user and difference vector, then the weights. Checks that the
 * fit returns a known status without touching memory outside its buffers
 * (the trace gets exactly the documented max_iter + 2 values), and that a
 * PRM_OK fit has finite base rewards, mixing weights summing to one and
 * responsibilities that are probabilities.
 */
#include <stdio.h>
#include <stdlib.h>

#include "prm_mixture.h"
#include "fuzz_input.h"

#define MAX_ROWS 64
#define MAX_DIM 6
#define MAX_USERS 16
#define MAX_K 4

/* A buffer of exactly count doubles on the heap, so ASan sees overruns */
static double *
Doubles(size_t count)
{
	double	   *p = malloc(sizeof(double) * (count > 0 ? count : 1));

	FUZZ_ASSERT(p != NULL, "allocation");
	return p;
}

/* Run one problem */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FuzzInput	in = {data, size, 0};
	PrmMixtureProblem prob;
	PrmMixtureOptions opt = {0};
	PrmMixtureResult res;
	double		z[MAX_ROWS * MAX_DIM];
	double		weight[MAX_ROWS];
	int32_t		user[MAX_ROWS];
	double	   *base,
			   *mixing,
			   *resp,
			   *trace = NULL;
	void	   *work;
	int			flags;
	PrmStatus	st;

	prob.n = 1 + FuzzBelow(&in, MAX_ROWS);
	prob.d = 1 + FuzzBelow(&in, MAX_DIM);
	prob.users = 1 + FuzzBelow(&in, MAX_USERS);
	prob.k = 1 + FuzzBelow(&in, MAX_K);
	opt.restarts = 1 + FuzzBelow(&in, 3);
	flags = FuzzByte(&in);
	in.raw = (flags & 2) != 0;
	prob.l2 = FuzzPenalty(&in);
	opt.tol = 0;				/* the default */
	opt.max_iter = 1 + FuzzBelow(&in, 40);
	/* sampled restarts, as with more users than restart_users */
	opt.restart_users = (flags & 8) ? 1 + FuzzBelow(&in, MAX_USERS) :
		PRM_MIXTURE_DEFAULT_RESTART_USERS;
	opt.seed = FuzzU64(&in);
	for (int i = 0; i < prob.n; i++)
	{
		user[i] = FuzzBelow(&in, prob.users);
		for (int j = 0; j < prob.d; j++)
			z[i * prob.d + j] = FuzzValue(&in);
	}
	for (int i = 0; i < prob.n; i++)
	{
		weight[i] = FuzzNonNegative(&in);
		/* the PostgreSQL layer refuses negative and non-finite weights */
		if (!(weight[i] >= 0) || !isfinite(weight[i]))
			weight[i] = 1.0;
	}
	prob.z = z;
	prob.weight = (flags & 1) ? weight : NULL;
	prob.user = user;

	/* the caller's buffers have exactly the documented sizes */
	if (flags & 4)
		trace = Doubles((size_t) opt.max_iter + 2);
	opt.trace = trace;
	base = Doubles((size_t) prob.k * prob.d);
	mixing = Doubles(prob.k);
	resp = Doubles((size_t) prob.users * prob.k);
	work = malloc(PrmMixtureWorkspaceSize(&prob, &opt));
	FUZZ_ASSERT(work != NULL, "workspace allocation");
	st = PrmMixtureFit(&prob, &opt, base, mixing, resp, work, &res);
	free(work);

	FUZZ_ASSERT(st >= PRM_OK && st <= PRM_BAD_INPUT, "unknown status");
	if (!(prob.l2 > 0) || !isfinite(prob.l2) || prob.users < prob.k)
		FUZZ_ASSERT(st == PRM_BAD_INPUT, "a bad problem was accepted");
	if (st == PRM_OK)
	{
		double		total = 0.0;

		FUZZ_ASSERT(AllFinite(base, (size_t) prob.k * prob.d),
					"PRM_OK with non-finite base rewards");
		FUZZ_ASSERT(isfinite(res.loglik) && isfinite(res.objective),
					"PRM_OK with a non-finite log-likelihood");
		for (int c = 0; c < prob.k; c++)
		{
			FUZZ_ASSERT(mixing[c] >= 0 && mixing[c] <= 1 + 1e-12,
						"a mixing weight outside [0, 1]");
			total += mixing[c];
		}
		FUZZ_ASSERT(fabs(total - 1.0) < 1e-9, "mixing does not sum to one");
		for (int u = 0; u < prob.users; u++)
		{
			double		row = 0.0;

			for (int c = 0; c < prob.k; c++)
			{
				double		g = resp[(size_t) u * prob.k + c];

				FUZZ_ASSERT(g >= 0 && g <= 1 + 1e-12,
							"a responsibility outside [0, 1]");
				row += g;
			}
			FUZZ_ASSERT(fabs(row - 1.0) < 1e-9,
						"responsibilities do not sum to one");
		}
		for (int c = 1; c < prob.k; c++)
			FUZZ_ASSERT(mixing[c] <= mixing[c - 1],
						"components not ordered by mixing weight");
	}
	free(base);
	free(mixing);
	free(resp);
	free(trace);
	return 0;
}
