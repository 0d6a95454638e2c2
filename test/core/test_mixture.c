/*
 * test_mixture.c
 *	  Checks the mixture EM: K = 1 against the BTL solver, recovery of
 *	  planted groups, monotone objective, determinism and bad arguments.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prm_btl.h"
#include "prm_mixture.h"
#include "unit.h"

/* Planted data: users in groups with their own true reward vectors */
typedef struct Planted
{
	PrmMixtureProblem prob;
	double	   *z;
	int32_t    *user;
	int		   *group;			/* per user */
} Planted;

/* Generate users x per comparisons; group g has true vector wtrue[g] */
static Planted
MakePlanted(int32_t users, int per, int d, int groups, const double *shares,
			const double *wtrue, uint64_t seed)
{
	Planted		pl;
	int64_t		n = (int64_t) users * per;

	pl.z = malloc(sizeof(double) * n * d);
	pl.user = malloc(sizeof(int32_t) * n);
	pl.group = malloc(sizeof(int) * users);
	for (int32_t u = 0; u < users; u++)
	{
		double		cum = 0.0;
		double		pos = (u + 0.5) / users;

		pl.group[u] = groups - 1;
		for (int g = 0; g < groups; g++)
		{
			cum += shares[g];
			if (pos < cum)
			{
				pl.group[u] = g;
				break;
			}
		}
	}
	for (int64_t i = 0; i < n; i++)
	{
		int32_t		u = (int32_t) (i / per);
		const double *wt = wtrue + (size_t) pl.group[u] * d;
		double	   *zi = pl.z + i * d;
		double		m = 0.0;

		pl.user[i] = u;
		for (int j = 0; j < d; j++)
		{
			zi[j] = UnitNormal(&seed);
			m += wt[j] * zi[j];
		}
		if (UnitUniform(&seed) > 1.0 / (1.0 + exp(-m)))
			for (int j = 0; j < d; j++)
				zi[j] = -zi[j];
	}
	pl.prob = (PrmMixtureProblem) {n, d, pl.z, NULL, pl.user, users, 1, 1.0};
	return pl;
}

/* Free planted data */
static void
FreePlanted(Planted *pl)
{
	free(pl->z);
	free(pl->user);
	free(pl->group);
}

/* Fit with options; returns the status */
static PrmStatus
Fit(const PrmMixtureProblem *p, PrmMixtureOptions *opt, double *base,
	double *mixing, double *resp, PrmMixtureResult *res)
{
	void	   *work = malloc(PrmMixtureWorkspaceSize(p, opt));
	PrmStatus	st = PrmMixtureFit(p, opt, base, mixing, resp, work, res);

	free(work);
	return st;
}

/* Cosine of two vectors */
static double
Cosine(const double *a, const double *b, int d)
{
	double		ab = 0,
				aa = 0,
				bb = 0;

	for (int j = 0; j < d; j++)
	{
		ab += a[j] * b[j];
		aa += a[j] * a[j];
		bb += b[j] * b[j];
	}
	return ab / sqrt(aa * bb);
}

/* K = 1 is the single BTL model */
static void
TestOneComponent(void)
{
	double		wtrue[4] = {1.0, -0.5, 0.3, 0.0};
	double		share[1] = {1.0};
	Planted		pl = MakePlanted(200, 15, 4, 1, share, wtrue, 3);
	PrmMixtureOptions opt = {3, 1, 1e-10, 200, 2000, NULL, NULL, NULL};
	double		base[4],
				mixing[1],
				w[4] = {0};
	double	   *resp = malloc(sizeof(double) * 200);
	PrmMixtureResult res;
	PrmBtlProblem bp = {pl.prob.n, 4, pl.z, NULL, 1.0};
	PrmBtlOptions bo = {PRM_METHOD_AUTO, 1e-10, 100};
	PrmBtlResult br;
	void	   *bw = malloc(PrmBtlWorkspaceSize(&bp, PRM_METHOD_AUTO));

	Fit(&pl.prob, &opt, base, mixing, resp, &res);
	PrmBtlSolve(&bp, &bo, w, bw, &br);
	UnitCheck(res.status == PRM_OK && UnitRelDiff(base, w, 4) < 1e-6,
			  "K = 1 equals the BTL fit (diff %.1e)",
			  UnitRelDiff(base, w, 4));
	UnitCheck(fabs(res.loglik - br.loglik) < 1e-6 * fabs(br.loglik),
			  "K = 1 log-likelihood equals the BTL one");
	free(resp);
	free(bw);
	FreePlanted(&pl);
}

/* Two opposed groups of 51% and 49% are recovered */
static void
TestTwoGroups(void)
{
	int			d = 4;
	int32_t		users = 400;
	double		wtrue[8] = {2.0, -1.0, 1.0, 0.5, -2.0, 1.0, -1.0, -0.5};
	double		share[2] = {0.51, 0.49};
	Planted		pl = MakePlanted(users, 20, d, 2, share, wtrue, 17);
	PrmMixtureOptions opt = {10, 7, 1e-9, 500, 2000, NULL, NULL, NULL};
	double		base[8],
				mixing[2];
	double	   *resp = malloc(sizeof(double) * users * 2);
	double	   *trace = malloc(sizeof(double) * 1000);
	double	   *resp2 = malloc(sizeof(double) * users * 2);
	double		base2[8],
				mixing2[2];
	PrmMixtureResult res,
				res2;
	int			right = 0;

	pl.prob.k = 2;
	opt.trace = trace;
	Fit(&pl.prob, &opt, base, mixing, resp, &res);
	UnitCheck(res.status == PRM_OK && res.converged,
			  "two groups: converged in %d iterations", res.iterations);
	UnitCheck(Cosine(base, wtrue, d) > 0.95 &&
			  Cosine(base + d, wtrue + d, d) > 0.95,
			  "two groups: components match the true vectors (cos %.3f, "
			  "%.3f)", Cosine(base, wtrue, d), Cosine(base + d, wtrue + d,
													   d));
	UnitCheck(fabs(mixing[0] - 0.51) < 0.03 && fabs(mixing[1] - 0.49) < 0.03,
			  "two groups: mixing weights %.3f, %.3f", mixing[0], mixing[1]);
	for (int32_t u = 0; u < users; u++)
		right += (resp[u * 2 + pl.group[u]] > 0.5);
	UnitCheck(right >= 0.97 * users,
			  "two groups: %d of %d users assigned to their group", right,
			  users);
	UnitCheck(res.restarts == 10 && res.restarts_at_best >= 1 &&
			  res.restarts_at_best <= 10,
			  "restarts reported: %d of %d reached the best",
			  res.restarts_at_best, res.restarts);

	opt.trace = NULL;
	Fit(&pl.prob, &opt, base2, mixing2, resp2, &res2);
	UnitCheck(memcmp(base, base2, sizeof(base)) == 0 &&
			  memcmp(resp, resp2, sizeof(double) * users * 2) == 0,
			  "the same seed gives the same fit");
	free(resp);
	free(resp2);
	free(trace);
	FreePlanted(&pl);
}

/* With many users the restarts run on a sample of them */
static void
TestRestartSample(void)
{
	int			d = 3;
	int32_t		users = 3000;
	double		wtrue[6] = {1.5, 1.0, -1.0, 1.5, -1.0, 1.0};
	double		share[2] = {0.6, 0.4};
	Planted		pl = MakePlanted(users, 8, d, 2, share, wtrue, 23);
	double	   *trace = malloc(sizeof(double) * 1000);
	PrmMixtureOptions opt = {5, 3, 1e-12, 500, 500, trace, NULL, NULL};
	double		base[6],
				mixing[2];
	double	   *resp = malloc(sizeof(double) * users * 2);
	PrmMixtureResult res;
	int			monotone = 1;

	pl.prob.k = 2;
	Fit(&pl.prob, &opt, base, mixing, resp, &res);
	for (int t = 1; t < res.trace_len; t++)
		if (trace[t] < trace[t - 1] - 1e-12 * fabs(trace[t - 1]))
			monotone = 0;
	UnitCheck(monotone && res.trace_len > 5,
			  "EM objective never decreases over %d iterations",
			  res.trace_len);
	free(trace);
	UnitCheck(res.status == PRM_OK && res.sampled_users < users &&
			  res.sampled_users > 300,
			  "restarts ran on %d of %d users", res.sampled_users, users);
	UnitCheck(Cosine(base, wtrue, d) > 0.95 &&
			  Cosine(base + d, wtrue + d, d) > 0.95,
			  "sampled restarts still recover both groups");
	free(resp);
	FreePlanted(&pl);
}

/*
 * A warm start at a fitted mixture, with its components swapped, ends at
 * the same optimum with the components in the start's order; a warm start
 * far from every optimum loses to the restarts.
 */
static void
TestWarmStart(void)
{
	int			d = 4;
	int32_t		users = 300;
	double		wtrue[8] = {2.0, -1.0, 1.0, 0.5, -2.0, 1.0, -1.0, -0.5};
	double		share[2] = {0.6, 0.4};
	Planted		pl = MakePlanted(users, 20, d, 2, share, wtrue, 23);
	PrmMixtureOptions opt = {6, 5, 1e-10, 500, 2000, NULL, NULL, NULL};
	double		base[8],
				mixing[2],
				swapped[8],
				smix[2],
				wbase[8],
				wmix[2],
				far[8] = {0};
	double	   *resp = malloc(sizeof(double) * users * 2);
	double	   *wresp = malloc(sizeof(double) * users * 2);
	PrmMixtureResult res,
				wres;
	double		diff = 0.0;

	pl.prob.k = 2;
	Fit(&pl.prob, &opt, base, mixing, resp, &res);
	memcpy(swapped, base + d, sizeof(double) * d);
	memcpy(swapped + d, base, sizeof(double) * d);
	smix[0] = mixing[1];
	smix[1] = mixing[0];
	opt.start_base = swapped;
	opt.start_mixing = smix;
	Fit(&pl.prob, &opt, wbase, wmix, wresp, &wres);
	for (int j = 0; j < d; j++)
		diff = fmax(diff, fmax(fabs(wbase[j] - base[d + j]),
							   fabs(wbase[d + j] - base[j])));
	for (int32_t u = 0; u < users; u++)
		diff = fmax(diff, fabs(wresp[u * 2] - resp[u * 2 + 1]));
	UnitCheck(wres.status == PRM_OK && wres.warm_start_won &&
			  fabs(wres.objective - res.objective) <=
			  1e-8 * fabs(res.objective) && diff < 1e-5,
			  "a warm start at the optimum, components swapped, keeps the "
			  "swap and the optimum (largest difference %.2g)", diff);
	UnitCheck(wmix[0] < wmix[1],
			  "warm-started components follow the start, not the mixing "
			  "weights (%.3f, %.3f)", wmix[0], wmix[1]);

	/* a start at zero: EM from there cannot separate the groups */
	opt.start_base = far;
	opt.start_mixing = NULL;
	Fit(&pl.prob, &opt, wbase, wmix, wresp, &wres);
	UnitCheck(wres.status == PRM_OK && !wres.warm_start_won &&
			  fabs(wres.objective - res.objective) <=
			  1e-8 * fabs(res.objective),
			  "a start at zero loses to the restarts (objective %.6f vs "
			  "%.6f)", wres.objective, res.objective);
	free(resp);
	free(wresp);
	FreePlanted(&pl);
}

/* Bad arguments are refused */
static void
TestMixtureBadInput(void)
{
	double		wtrue[2] = {1.0, 0.0};
	double		share[1] = {1.0};
	Planted		pl = MakePlanted(3, 2, 2, 1, share, wtrue, 1);
	PrmMixtureOptions opt = {2, 1, 1e-9, 50, 100, NULL, NULL, NULL};
	double		base[8],
				mixing[4],
				resp[12];
	PrmMixtureResult res;

	pl.prob.k = 4;
	UnitCheck(Fit(&pl.prob, &opt, base, mixing, resp, &res) ==
			  PRM_BAD_INPUT, "more components than users is refused");
	pl.prob.k = 1;
	pl.prob.l2 = 0.0;
	UnitCheck(Fit(&pl.prob, &opt, base, mixing, resp, &res) ==
			  PRM_BAD_INPUT, "l2 = 0 is refused for mixtures");
	FreePlanted(&pl);
}

void
TestMixture(void)
{
	TestOneComponent();
	TestTwoGroups();
	TestRestartSample();
	TestWarmStart();
	TestMixtureBadInput();
}
