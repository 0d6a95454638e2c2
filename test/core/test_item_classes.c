/*
 * test_item_classes.c
 *	  Checks EM for latent classes of raters over item strengths: the
 *	  objective never decreases, planted classes are recovered, one class
 *	  is the plain items fit, the order of a rater's cells does not
 *	  matter, and the gradient vanishes at the estimate.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prm_item_classes.h"
#include "unit.h"

/* Planted data with their own arrays */
typedef struct Planted
{
	PrmItemClassesProblem prob;
	int32_t    *ii;
	int32_t    *jj;
	int32_t    *rater;
	int64_t    *pair;
	double	   *a;
	double	   *b;
	double	   *t;
	int		   *truth;			/* class of each rater */
	double	   *s;				/* 2 x n planted strengths */
} Planted;

/*
 * n items, every pair compared per_pair times by each of n_raters
 * raters; the first majority raters prefer strengths (i - mean) * scale,
 * the others the reverse order. With tie_share > 0 that share of each
 * rater's comparisons of a pair are ties.
 */
static Planted
PlantedNew(int n, int n_raters, int majority, int per_pair, double scale,
		   double tie_share, uint64_t seed)
{
	Planted		d;
	int64_t		np = (int64_t) n * (n - 1) / 2;
	int64_t		nc = np * n_raters;
	int64_t		p = 0;

	d.ii = calloc(np, sizeof(int32_t));
	d.jj = calloc(np, sizeof(int32_t));
	d.rater = calloc(nc, sizeof(int32_t));
	d.pair = calloc(nc, sizeof(int64_t));
	d.a = calloc(nc, sizeof(double));
	d.b = calloc(nc, sizeof(double));
	d.t = calloc(nc, sizeof(double));
	d.truth = calloc(n_raters, sizeof(int));
	d.s = calloc(2 * n, sizeof(double));
	for (int i = 0; i < n; i++)
	{
		d.s[i] = (i - 0.5 * (n - 1)) * scale;
		d.s[n + i] = -d.s[i];
	}
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++, p++)
		{
			d.ii[p] = i;
			d.jj[p] = j;
		}
	for (int u = 0; u < n_raters; u++)
	{
		d.truth[u] = u < majority ? 0 : 1;
		for (int64_t q = 0; q < np; q++)
		{
			int64_t		e = (int64_t) u * np + q;
			const double *s = d.s + (size_t) d.truth[u] * n;
			double		pr = 1.0 / (1.0 + exp(-(s[d.ii[q]] - s[d.jj[q]])));

			d.rater[e] = u;
			d.pair[e] = q;
			for (int m = 0; m < per_pair; m++)
			{
				if (tie_share > 0 && UnitUniform(&seed) < tie_share)
					d.t[e] += 1;
				else if (UnitUniform(&seed) < pr)
					d.a[e] += 1;
				else
					d.b[e] += 1;
			}
		}
	}
	d.prob = (PrmItemClassesProblem) {
		n, np, d.ii, d.jj, n_raters, nc, d.rater, d.pair, d.a, d.b, d.t,
		0.01, PRM_TIES_DROP, 2
	};
	return d;
}

/*
 * Planted data as PlantedNew's, with the comparisons redrawn from
 * Davidson's model with tie parameter nu under each rater's class.
 */
static Planted
PlantedDavidson(int n, int n_raters, int majority, int per_pair,
				double scale, double nu, uint64_t seed)
{
	Planted		d = PlantedNew(n, n_raters, majority, 0, scale, 0.0, seed);
	int64_t		np = d.prob.n_pairs;

	for (int64_t e = 0; e < d.prob.n_cells; e++)
	{
		int			u = d.rater[e];
		int64_t		q = d.pair[e];
		const double *s = d.s + (size_t) d.truth[u] * n;
		double		h = 0.5 * (s[d.ii[q]] - s[d.jj[q]]);
		double		den = exp(h) + exp(-h) + nu;

		(void) np;
		for (int m = 0; m < per_pair; m++)
		{
			double		x = UnitUniform(&seed) * den;

			if (x < exp(h))
				d.a[e] += 1;
			else if (x < exp(h) + exp(-h))
				d.b[e] += 1;
			else
				d.t[e] += 1;
		}
	}
	d.prob.ties = PRM_TIES_DAVIDSON;
	return d;
}

/* Free planted data */
static void
PlantedFree(Planted *d)
{
	free(d->ii);
	free(d->jj);
	free(d->rater);
	free(d->pair);
	free(d->a);
	free(d->b);
	free(d->t);
	free(d->truth);
	free(d->s);
}

/*
 * Run EM on d with k classes for iters iterations from random
 * responsibilities (seeded); returns the largest drop of the objective
 * between iterations, with the result, log nu and the first objective in
 * res, ln and first.
 */
static double
LargestDrop(Planted *d, int raters, int k, int iters, uint64_t seed,
			PrmItemClassesResult *res, double *ln, double *first)
{
	int			n = d->prob.n_items;
	double	   *pi = calloc(k, sizeof(double));
	double	   *s = calloc((size_t) k * n, sizeof(double));
	double	   *resp = calloc((size_t) raters * k, sizeof(double));
	double	   *trace = calloc(iters, sizeof(double));
	double		worst = 0.0;
	void	   *work;

	d->prob.k = k;
	work = malloc(PrmItemClassesWorkspaceSize(&d->prob));
	for (int u = 0; u < raters; u++)
	{
		double		sum = 0.0;

		for (int c = 0; c < k; c++)
			sum += resp[u * k + c] = UnitUniform(&seed);
		for (int c = 0; c < k; c++)
			resp[u * k + c] /= sum;
	}
	*ln = NAN;
	PrmItemClassesEm(&d->prob, iters, 0.0, pi, s, ln, resp, trace, work,
					 res);
	for (int it = 1; it < res->iterations; it++)
		worst = fmax(worst, trace[it - 1] - trace[it]);
	*first = trace[0];

	free(pi);
	free(s);
	free(resp);
	free(trace);
	free(work);
	return worst;
}

/* The objective never decreases along an EM run from a random start */
static void
TestMonotone(void)
{
	Planted		d = PlantedNew(6, 30, 18, 2, 0.8, 0.0, 11);
	int			iters = 200;
	PrmItemClassesResult res;
	double		ln,
				first;
	double		worst = LargestDrop(&d, 30, 3, iters, 5, &res, &ln, &first);

	UnitCheck(res.iterations == iters && worst <= 1e-9 * fabs(first),
			  "item classes: EM objective never decreases over %d "
			  "iterations (largest drop %.3g)", res.iterations, worst);
	PlantedFree(&d);
}

/*
 * Largest error of two fitted classes' strengths s against d's planted
 * ones, and largest responsibility missing from a rater's true class
 */
static void
RecoveryErrors(const Planted *d, const double *s, const double *resp, int n,
			   int raters, double *worst_s, double *worst_r)
{
	*worst_s = 0.0;
	*worst_r = 0.0;
	for (int c = 0; c < 2; c++)
		for (int i = 0; i < n; i++)
			*worst_s = fmax(*worst_s, fabs(s[c * n + i] - d->s[c * n + i]));
	for (int u = 0; u < raters; u++)
		*worst_r = fmax(*worst_r, 1.0 - resp[u * 2 + d->truth[u]]);
}

/* Two planted classes of raters with opposite orders are recovered */
static void
TestRecovery(void)
{
	int			n = 6,
				raters = 40,
				majority = 25;
	Planted		d = PlantedNew(n, raters, majority, 3, 0.6, 0.0, 3);
	double		pi[2],
				s[12],
			   *resp = calloc((size_t) raters * 2, sizeof(double));
	void	   *work = malloc(PrmItemClassesWorkspaceSize(&d.prob));
	PrmItemClassesResult res;
	PrmStatus	st;
	double		worst_s = 0.0,
				worst_r = 0.0,
				ln;

	st = PrmItemClassesFit(&d.prob, 5, 42, 500, pi, s, &ln, resp, work,
						   &res);
	RecoveryErrors(&d, s, resp, n, raters, &worst_s, &worst_r);
	UnitCheck(st == PRM_OK && res.converged && pi[0] > pi[1] &&
			  fabs(pi[0] - (double) majority / raters) < 1e-3,
			  "item classes: planted mixing recovered (%.4f, %.4f), "
			  "status %d", pi[0], pi[1], (int) st);
	UnitCheck(worst_s < 0.35,
			  "item classes: planted strengths recovered (largest error "
			  "%.3f)", worst_s);
	UnitCheck(worst_r < 1e-3,
			  "item classes: every rater assigned to its class (largest "
			  "miss %.2g)", worst_r);
	UnitCheck(res.restarts == 5 && res.restarts_at_best >= 1 &&
			  res.parameters == 2 * (n - 1) + 1 &&
			  fabs(res.bic - (-2 * res.loglik + 11 * log(40.0))) < 1e-9,
			  "item classes: restarts, parameters and BIC reported");

	free(resp);
	free(work);
	PlantedFree(&d);
}

/* One class is the plain items fit on the pooled counts */
static void
TestOneClass(PrmTieModel ties)
{
	int			n = 5,
				raters = 12;
	Planted		d = PlantedNew(n, raters, 8, 2, 0.5, 0.2, 17);
	int64_t		np = d.prob.n_pairs;
	double	   *wa = calloc(np, sizeof(double));
	double	   *wb = calloc(np, sizeof(double));
	double	   *wt = calloc(np, sizeof(double));
	PrmItemsProblem ip = {n, np, d.ii, d.jj, wa, wb, wt, 0.01, ties};
	double		s1[5] = {0},
				s2[5],
				pi,
				ln = NAN,
				ln2,
				diff = 0.0;
	double	   *resp = calloc(raters, sizeof(double));
	void	   *work;
	void	   *iw = malloc(PrmItemsWorkspaceSize(n, np));
	PrmItemsResult ir;
	PrmItemClassesResult res;

	d.prob.k = 1;
	d.prob.ties = ties;
	work = malloc(PrmItemClassesWorkspaceSize(&d.prob));
	for (int64_t e = 0; e < d.prob.n_cells; e++)
	{
		wa[d.pair[e]] += d.a[e];
		wb[d.pair[e]] += d.b[e];
		wt[d.pair[e]] += d.t[e];
	}
	PrmItemsSolve(&ip, 100, s1, &ln, iw, &ir);
	PrmItemClassesFit(&d.prob, 3, 1, 1000, &pi, s2, &ln2, resp, work, &res);
	for (int i = 0; i < n; i++)
		diff = fmax(diff, fabs(s1[i] - s2[i]));
	UnitCheck(res.status == PRM_OK && pi == 1.0 && diff < 1e-8 &&
			  fabs(res.loglik - ir.loglik) < 1e-8 * fabs(ir.loglik),
			  "item classes: K = 1 is the items fit with ties %s "
			  "(largest difference %.2g, loglik %.10g vs %.10g)",
			  ties == PRM_TIES_HALF ? "half" :
			  ties == PRM_TIES_DROP ? "drop" : "davidson", diff, res.loglik,
			  ir.loglik);
	if (ties == PRM_TIES_DAVIDSON)
		UnitCheck(ir.has_nu && res.has_nu && isfinite(ln) &&
				  fabs(exp(ln2) - exp(ln)) < 1e-8 &&
				  res.parameters == n,
				  "item classes: K = 1 estimates btl_items' Davidson nu "
				  "(%.12f vs %.12f, difference %.2g)", exp(ln2), exp(ln),
				  fabs(exp(ln2) - exp(ln)));
	else
		UnitCheck(!res.has_nu && ln2 == -INFINITY,
				  "item classes: no nu without Davidson's model");

	free(wa);
	free(wb);
	free(wt);
	free(resp);
	free(work);
	free(iw);
	PlantedFree(&d);
}

/* The order of each rater's cells does not change the fit */
static void
TestCellOrder(void)
{
	int			n = 5,
				raters = 20;
	Planted		d = PlantedNew(n, raters, 12, 2, 0.7, 0.0, 23);
	Planted		e = PlantedNew(n, raters, 12, 2, 0.7, 0.0, 23);
	int64_t		np = d.prob.n_pairs;
	double		pi1[2],
				pi2[2],
				s1[10],
				s2[10];
	double	   *r1 = calloc(raters * 2, sizeof(double));
	double	   *r2 = calloc(raters * 2, sizeof(double));
	void	   *work = malloc(PrmItemClassesWorkspaceSize(&d.prob));
	PrmItemClassesResult res1,
				res2;
	double		diff = 0.0,
				ln;

	/* reverse the cells within every rater */
	for (int u = 0; u < raters; u++)
		for (int64_t q = 0; q < np; q++)
		{
			int64_t		from = (int64_t) u * np + q;
			int64_t		to = (int64_t) u * np + (np - 1 - q);

			e.pair[to] = d.pair[from];
			e.a[to] = d.a[from];
			e.b[to] = d.b[from];
		}
	PrmItemClassesFit(&d.prob, 4, 9, 500, pi1, s1, &ln, r1, work, &res1);
	PrmItemClassesFit(&e.prob, 4, 9, 500, pi2, s2, &ln, r2, work, &res2);
	for (int i = 0; i < 10; i++)
		diff = fmax(diff, fabs(s1[i] - s2[i]));
	for (int i = 0; i < raters * 2; i++)
		diff = fmax(diff, fabs(r1[i] - r2[i]));
	UnitCheck(res1.status == PRM_OK && res2.status == PRM_OK &&
			  diff < 1e-9 && fabs(pi1[0] - pi2[0]) < 1e-12,
			  "item classes: the order of a rater's cells does not matter "
			  "(largest difference %.2g)", diff);

	free(r1);
	free(r2);
	free(work);
	PlantedFree(&d);
	PlantedFree(&e);
}

/*
 * Largest central-difference slope (step h) of the objective in any of the
 * k x n strengths s, at mixing pi and log nu ln; s is left as it was
 */
static double
StrengthSlope(const PrmItemClassesProblem *prob, const double *pi, double *s,
			  double ln, double h, void *work)
{
	double		worst = 0.0,
				fp,
				fm;

	for (int i = 0; i < prob->k * prob->n_items; i++)
	{
		double		keep = s[i];

		s[i] = keep + h;
		PrmItemClassesLoglik(prob, pi, s, ln, NULL, &fp, work);
		s[i] = keep - h;
		PrmItemClassesLoglik(prob, pi, s, ln, NULL, &fm, work);
		s[i] = keep;
		worst = fmax(worst, fabs(fp - fm) / (2 * h));
	}
	return worst;
}

/*
 * The gradient of the objective vanishes at the estimate: central
 * differences in every strength, and in the mixing weights along the
 * simplex.
 */
static void
TestGradient(void)
{
	int			n = 5,
				raters = 24;
	Planted		d = PlantedNew(n, raters, 15, 2, 0.6, 0.0, 31);
	double		pi[2],
				s[10],
				resp[48];
	void	   *work;
	PrmItemClassesResult res;
	double		h = 1e-5,
				worst = 0.0,
				ln,
				fp,
				fm;

	d.prob.prior = 0.05;
	work = malloc(PrmItemClassesWorkspaceSize(&d.prob));
	PrmItemClassesFit(&d.prob, 4, 3, 1000, pi, s, &ln, resp, work, &res);
	worst = StrengthSlope(&d.prob, pi, s, ln, h, work);
	pi[0] += h;
	pi[1] -= h;
	PrmItemClassesLoglik(&d.prob, pi, s, ln, NULL, &fp, work);
	pi[0] -= 2 * h;
	pi[1] += 2 * h;
	PrmItemClassesLoglik(&d.prob, pi, s, ln, NULL, &fm, work);
	pi[0] += h;
	pi[1] -= h;
	worst = fmax(worst, fabs(fp - fm) / (2 * h));
	UnitCheck(res.status == PRM_OK && worst < 1e-4,
			  "item classes: gradient at the estimate is ~0 (largest "
			  "component %.2g)", worst);

	free(work);
	PlantedFree(&d);
}

/* With Davidson ties, the objective never decreases along EM either */
static void
TestMonotoneDavidson(void)
{
	Planted		d = PlantedDavidson(6, 30, 18, 3, 0.8, 0.7, 13);
	int			iters = 150;
	PrmItemClassesResult res;
	double		ln,
				first;
	double		worst = LargestDrop(&d, 30, 3, iters, 8, &res, &ln, &first);

	UnitCheck(res.iterations == iters && res.has_nu && isfinite(ln) &&
			  worst <= 1e-9 * fabs(first),
			  "item classes: EM objective never decreases with Davidson "
			  "ties over %d iterations (largest drop %.3g, nu %.4f)",
			  res.iterations, worst, exp(ln));
	PlantedFree(&d);
}

/*
 * Two planted classes under Davidson's model with nu = 0.6: the classes,
 * their strengths and nu are recovered, and the gradient of the
 * objective in log nu (and in every strength) vanishes at the estimate.
 */
static void
TestDavidsonPlanted(void)
{
	int			n = 6,
				raters = 60,
				majority = 36;
	double		nu = 0.6;
	Planted		d = PlantedDavidson(n, raters, majority, 4, 0.6, nu, 5);
	double		pi[2],
				s[12],
				ln,
				f0,
				fp,
				fm,
				h = 1e-5,
				worst_s,
				worst_r,
				grad_s = 0.0,
				grad_nu;
	double	   *resp = calloc((size_t) raters * 2, sizeof(double));
	void	   *work = malloc(PrmItemClassesWorkspaceSize(&d.prob));
	PrmItemClassesResult res;
	PrmStatus	st;

	st = PrmItemClassesFit(&d.prob, 5, 7, 1000, pi, s, &ln, resp, work,
						   &res);
	RecoveryErrors(&d, s, resp, n, raters, &worst_s, &worst_r);
	UnitCheck(st == PRM_OK && res.has_nu &&
			  fabs(pi[0] - (double) majority / raters) < 1e-3 &&
			  worst_r < 1e-3 && worst_s < 0.35,
			  "item classes: planted Davidson classes recovered (mixing "
			  "%.4f, largest strength error %.3f, largest miss %.2g)",
			  pi[0], worst_s, worst_r);
	UnitCheck(fabs(exp(ln) - nu) < 0.1 &&
			  res.parameters == 2 * (n - 1) + 1 + 1 &&
			  fabs(res.bic - (-2 * res.loglik + 12 * log(60.0))) < 1e-9,
			  "item classes: planted nu %.2f recovered as %.4f, counted "
			  "once in BIC", nu, exp(ln));

	/* the objective's slope in log nu and the strengths at the estimate */
	PrmItemClassesLoglik(&d.prob, pi, s, ln, NULL, &f0, work);
	PrmItemClassesLoglik(&d.prob, pi, s, ln + h, NULL, &fp, work);
	PrmItemClassesLoglik(&d.prob, pi, s, ln - h, NULL, &fm, work);
	grad_nu = (fp - fm) / (2 * h);
	grad_s = StrengthSlope(&d.prob, pi, s, ln, h, work);
	UnitCheck(fabs(grad_nu) < 1e-5 && grad_s < 1e-4 &&
			  fabs(f0 - res.objective) < 1e-9 * fabs(f0),
			  "item classes: gradient at the Davidson estimate is ~0 "
			  "(d/dlog nu %.2g, strengths %.2g)", grad_nu, grad_s);

	free(resp);
	free(work);
	PlantedFree(&d);
}

/* Bad problems are refused before any arithmetic */
static void
TestBadInput(void)
{
	Planted		d = PlantedNew(4, 5, 3, 1, 0.5, 0.3, 7);
	double		pi[6],
				s[24],
				resp[30];
	void	   *work;
	PrmItemClassesResult res;
	PrmStatus	st1,
				st2,
				st3,
				st4;
	double		ln;

	d.prob.k = 6;
	work = malloc(PrmItemClassesWorkspaceSize(&d.prob));
	st1 = PrmItemClassesFit(&d.prob, 1, 0, 10, pi, s, &ln, resp, work, &res);
	d.prob.k = 2;
	d.prob.ties = PRM_TIES_DAVIDSON;
	d.b[0] = NAN;
	st2 = PrmItemClassesFit(&d.prob, 1, 0, 10, pi, s, &ln, resp, work, &res);
	d.b[0] = 0;
	UnitCheck(st1 == PRM_BAD_INPUT && st2 == PRM_BAD_INPUT,
			  "item classes: more classes than raters, and a NaN weight, "
			  "are refused");

	/* every comparison a tie: nu is infinite */
	for (int64_t e = 0; e < d.prob.n_cells; e++)
	{
		d.t[e] += d.a[e] + d.b[e];
		d.a[e] = d.b[e] = 0;
	}
	st3 = PrmItemClassesFit(&d.prob, 2, 0, 50, pi, s, &ln, resp, work, &res);
	d.prob.ties = PRM_TIES_HALF;
	st4 = PrmItemClassesFit(&d.prob, 2, 0, 50, pi, s, &ln, resp, work, &res);
	UnitCheck(st3 == PRM_SEPARABLE && (st4 == PRM_OK ||
									   st4 == PRM_NOT_CONVERGED ||
									   st4 == PRM_NO_INFORMATION),
			  "item classes: all ties are separable under Davidson and "
			  "fit as half wins (status %d, %d)", (int) st3, (int) st4);

	/* zero weights everywhere but one cell */
	for (int64_t e = 0; e < d.prob.n_cells; e++)
		d.a[e] = d.b[e] = d.t[e] = 0;
	d.t[0] = 1;
	d.a[1] = 1;
	d.prob.ties = PRM_TIES_DAVIDSON;
	st3 = PrmItemClassesFit(&d.prob, 2, 0, 50, pi, s, &ln, resp, work, &res);
	UnitCheck(st3 == PRM_OK || st3 == PRM_NOT_CONVERGED ||
			  st3 == PRM_NO_INFORMATION,
			  "item classes: nearly empty Davidson data do not crash "
			  "(status %d)", (int) st3);
	free(work);
	PlantedFree(&d);
}

/* All the checks of this group */
void
TestItemClasses(void)
{
	TestMonotone();
	TestRecovery();
	TestOneClass(PRM_TIES_DROP);
	TestOneClass(PRM_TIES_HALF);
	TestOneClass(PRM_TIES_DAVIDSON);
	TestMonotoneDavidson();
	TestDavidsonPlanted();
	TestCellOrder();
	TestGradient();
	TestBadInput();
}
