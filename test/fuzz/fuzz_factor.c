/*
 * fuzz_factor.c
 *	  libFuzzer target: factorized rewards on small arbitrary problems, then
 *	  what onboarding does with a fit: a new user's posterior and the next
 *	  questions to ask.
 *
 * Input layout: n - 1, d - 1, users - 1, k - 1, flags (bit 0: weights, bit
 * 1: raw doubles, bit 2: lock the first component), l2 choice, prior
 * strength choice, max_iter, then per row its user and difference vector,
 * the weights, a new user's rows and the candidate pairs. Checks known
 * statuses, finite results on PRM_OK, a symmetric prior covariance, and
 * questions that are distinct candidates.
 */
#include <stdio.h>
#include <stdlib.h>

#include "prm_factor.h"
#include "fuzz_input.h"

#define MAX_ROWS 48
#define MAX_DIM 6
#define MAX_USERS 10
#define MAX_K 3
#define NEW_ROWS 8
#define CANDIDATES 12

/* A buffer of exactly count doubles on the heap, so ASan sees overruns */
static double *
Doubles(size_t count)
{
	double	   *p = calloc(count > 0 ? count : 1, sizeof(double));

	FUZZ_ASSERT(p != NULL, "allocation");
	return p;
}

/* A new user's posterior and questions under a fitted model */
static void
Onboard(FuzzInput *in, const PrmFactorProblem *prob, const double *base,
		const double *mu, const double *sigma)
{
	int			k = prob->k,
				d = prob->d;
	double		z[NEW_ROWS * MAX_DIM],
				cand[CANDIDATES * MAX_DIM],
				info[CANDIDATES];
	int			order[CANDIDATES];
	double	   *prec = Doubles((size_t) k * k);
	double	   *coef = Doubles(k);
	double	   *cov = Doubles((size_t) k * k);
	PrmUserProblem up;
	void	   *work;
	int			iterations,
				nq,
				count;
	PrmStatus	st;

	/* the prior precision, as onboarding.c makes it */
	for (int i = 0; i < k * k; i++)
		prec[i] = sigma[i];
	if (PrmInvertSpd(prec, k) != PRM_OK)
		goto done;
	for (int i = 0; i < k * k; i++)
		prec[i] *= prob->prior_strength;

	up.n = 1 + FuzzBelow(in, NEW_ROWS);
	up.d = d;
	up.k = k;
	for (int i = 0; i < up.n * d; i++)
		z[i] = FuzzValue(in);
	up.z = z;
	up.weight = NULL;
	up.base = base;
	up.mu = mu;
	up.prec = prec;
	up.locked = prob->locked;
	for (int c = 0; c < k; c++)
		coef[c] = mu[c];
	work = malloc(PrmUserWorkspaceSize(up.n, k));
	FUZZ_ASSERT(work != NULL, "allocation");
	st = PrmUserPosterior(&up, coef, cov, work, &iterations);
	free(work);
	FUZZ_ASSERT(st >= PRM_OK && st <= PRM_BAD_INPUT, "unknown status");
	if (st != PRM_OK)
		goto done;
	FUZZ_ASSERT(AllFinite(coef, k) && AllFinite(cov, (size_t) k * k),
				"a posterior that is not finite");

	count = 1 + FuzzBelow(in, CANDIDATES);
	nq = FuzzBelow(in, count + 2) - 1;	/* -1 and count + 0 included */
	for (int i = 0; i < count * d; i++)
		cand[i] = FuzzValue(in);
	work = malloc(PrmQuestionsWorkspaceSize(count, k));
	FUZZ_ASSERT(work != NULL, "allocation");
	st = PrmNextQuestions(count, d, k, cand, NULL, base, coef, cov, nq, order,
						  info, work);
	free(work);
	if (nq < 0 || nq > count)
		FUZZ_ASSERT(st == PRM_BAD_INPUT, "a bad question count was accepted");
	if (st == PRM_OK)
		for (int q = 0; q < nq; q++)
		{
			FUZZ_ASSERT(order[q] >= 0 && order[q] < count,
						"a question outside the candidates");
			for (int r = 0; r < q; r++)
				FUZZ_ASSERT(order[r] != order[q], "a question asked twice");
		}
done:
	free(prec);
	free(coef);
	free(cov);
}

/* Run one problem */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const double strengths[] = {1.0, 0.1, 10.0, 0.0, -1.0, NAN};
	FuzzInput	in = {data, size, 0};
	PrmFactorProblem prob;
	PrmFactorOptions opt = {0};
	PrmFactorResult res;
	double		z[MAX_ROWS * MAX_DIM];
	double		weight[MAX_ROWS];
	int32_t		user[MAX_ROWS];
	int			locked[MAX_K] = {0};
	double	   *base,
			   *mu,
			   *sigma,
			   *coef,
			   *cov;
	void	   *work;
	int			flags,
				k,
				d;
	PrmStatus	st;

	prob.n = 1 + FuzzBelow(&in, MAX_ROWS);
	prob.d = d = 1 + FuzzBelow(&in, MAX_DIM);
	prob.users = 1 + FuzzBelow(&in, MAX_USERS);
	prob.k = k = 1 + FuzzBelow(&in, MAX_K);
	flags = FuzzByte(&in);
	in.raw = (flags & 2) != 0;
	prob.l2 = FuzzPenalty(&in);
	prob.prior_strength = strengths[FuzzBelow(&in, 6)];
	opt.max_iter = 1 + FuzzBelow(&in, 30);
	opt.trace = NULL;
	locked[0] = (flags & 4) != 0;
	prob.locked = locked;
	/*
	 * Users are numbered in order of first appearance, so every user has a
	 * row, as in the PostgreSQL layer, which finds users in the rows.
	 * (PrmFactorFit borrows n x k doubles for a users-long array.)
	 */
	{
		int			seen[MAX_USERS];
		int			users = 0;

		for (int u = 0; u < MAX_USERS; u++)
			seen[u] = -1;
		for (int i = 0; i < prob.n; i++)
		{
			int			raw = FuzzBelow(&in, prob.users);

			if (seen[raw] < 0)
				seen[raw] = users++;
			user[i] = seen[raw];
			for (int j = 0; j < d; j++)
				z[i * d + j] = FuzzValue(&in);
		}
		prob.users = users;
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

	base = Doubles((size_t) k * d);
	mu = Doubles(k);
	sigma = Doubles((size_t) k * k);
	coef = Doubles((size_t) prob.users * k);
	cov = Doubles((size_t) prob.users * k * k);
	work = malloc(PrmFactorWorkspaceSize(&prob));
	FUZZ_ASSERT(work != NULL, "allocation");
	st = PrmFactorFit(&prob, &opt, base, mu, sigma, coef, cov, work, &res);
	free(work);

	FUZZ_ASSERT(st >= PRM_OK && st <= PRM_BAD_INPUT, "unknown status");
	if (!(prob.l2 > 0) || !isfinite(prob.l2) || k > d ||
		!(prob.prior_strength > 0) || !isfinite(prob.prior_strength))
		FUZZ_ASSERT(st == PRM_BAD_INPUT, "a bad problem was accepted");
	if (st == PRM_OK)
	{
		FUZZ_ASSERT(AllFinite(base, (size_t) k * d) && AllFinite(mu, k) &&
					AllFinite(sigma, (size_t) k * k) &&
					AllFinite(coef, (size_t) prob.users * k) &&
					AllFinite(cov, (size_t) prob.users * k * k),
					"PRM_OK with non-finite values");
		for (int a = 0; a < k; a++)
			for (int b = 0; b < a; b++)
				FUZZ_ASSERT(fabs(sigma[a * k + b] - sigma[b * k + a]) <=
							1e-9 * (fabs(sigma[a * k + b]) + 1e-300),
							"a prior covariance that is not symmetric");
		Onboard(&in, &prob, base, mu, sigma);
	}
	free(base);
	free(mu);
	free(sigma);
	free(coef);
	free(cov);
	return 0;
}
