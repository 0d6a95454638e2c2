/*
 * test_items.c
 *	  Checks the item-strength solver against closed forms, a brute-force
 *	  maximisation of a naively written likelihood, numerical Hessians and
 *	  exact properties of the bootstrap.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prm_items.h"
#include "unit.h"

/* A problem with its own arrays */
typedef struct Data
{
	PrmItemsProblem prob;
	int32_t    *ii;
	int32_t    *jj;
	double	   *a;
	double	   *b;
	double	   *t;
} Data;

/* Allocate a problem of n items and np pairs, all weights zero */
static Data
DataNew(int n, int64_t np, double prior, PrmTieModel ties)
{
	Data		d;

	d.ii = calloc(np + 1, sizeof(int32_t));
	d.jj = calloc(np + 1, sizeof(int32_t));
	d.a = calloc(np + 1, sizeof(double));
	d.b = calloc(np + 1, sizeof(double));
	d.t = calloc(np + 1, sizeof(double));
	d.prob = (PrmItemsProblem) {n, np, d.ii, d.jj, d.a, d.b, d.t, prior,
	ties};
	return d;
}

/* Free a problem's arrays */
static void
DataFree(Data *d)
{
	free(d->ii);
	free(d->jj);
	free(d->a);
	free(d->b);
	free(d->t);
}

/*
 * Every pair of n items with counts drawn from true strengths sequentially
 * (i - n/2) / 2 and, when tie_share > 0, Davidson ties; some pairs left
 * out at random when keep < 1.
 */
static Data
DataRandom(int n, int per_pair, double nu, double keep, uint64_t seed,
		   double prior, PrmTieModel ties)
{
	Data		d = DataNew(n, (int64_t) n * (n - 1) / 2, prior, ties);
	int64_t		k = 0;

	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
		{
			double		pi = exp((i - n / 2.0) / 2.0);
			double		pj = exp((j - n / 2.0) / 2.0);
			double		tie = nu * sqrt(pi * pj);
			double		den = pi + pj + tie;

			if (UnitUniform(&seed) > keep)
				continue;
			d.ii[k] = i;
			d.jj[k] = j;
			for (int r = 0; r < per_pair; r++)
			{
				double		u = UnitUniform(&seed) * den;

				if (u < pi)
					d.a[k] += 1;
				else if (u < pi + pj)
					d.b[k] += 1;
				else
					d.t[k] += 1;
			}
			k++;
		}
	d.prob.n_pairs = k;
	return d;
}

/*
 * Log-likelihood written straight from the model's probabilities, with
 * theta = log nu ignored when nu is not modelled.
 */
static double
NaiveLoglik(const PrmItemsProblem *p, const double *s, double theta,
			int has_nu)
{
	double		ll = 0.0;

	for (int64_t k = 0; k < p->n_pairs; k++)
	{
		double		pi = exp(s[p->item_i[k]]);
		double		pj = exp(s[p->item_j[k]]);
		double		a = p->win_i[k],
					b = p->win_j[k],
					t = p->tie[k];

		if (p->ties == PRM_TIES_HALF)
		{
			a += t / 2;
			b += t / 2;
			t = 0;
		}
		else if (p->ties == PRM_TIES_DROP || !has_nu)
			t = 0;
		if (has_nu)
		{
			double		tp = exp(theta) * sqrt(pi * pj);
			double		den = pi + pj + tp;

			ll += a * log(pi / den) + b * log(pj / den);
			if (t > 0)
				ll += t * log(tp / den);
		}
		else
			ll += a * log(pi / (pi + pj)) + b * log(pj / (pi + pj));
	}
	return ll;
}

/* Negative penalized log-likelihood of a parameter vector (s, theta) */
static double
NaiveObjective(const PrmItemsProblem *p, const double *x, int has_nu)
{
	double		f = -NaiveLoglik(p, x, has_nu ? x[p->n_items] : 0, has_nu);

	for (int i = 0; i < p->n_items; i++)
		f += 0.5 * p->prior * x[i] * x[i];
	return f;
}

/* Derivative of the naive objective along coordinate c, by differences */
static double
Slope(const PrmItemsProblem *p, double *x, int has_nu, int c, double at)
{
	double		h = 1e-6,
				fp,
				fm;

	x[c] = at + h;
	fp = NaiveObjective(p, x, has_nu);
	x[c] = at - h;
	fm = NaiveObjective(p, x, has_nu);
	return (fp - fm) / (2 * h);
}

/* Minimise along coordinate c: bisection on the sign of the slope */
static void
LineMinimum(const PrmItemsProblem *p, double *x, int has_nu, int c)
{
	double		lo = x[c] - 1,
				hi = x[c] + 1;

	while (Slope(p, x, has_nu, c, lo) > 0)
		lo -= 2;
	while (Slope(p, x, has_nu, c, hi) < 0)
		hi += 2;
	while (hi - lo > 1e-12)
	{
		double		mid = (lo + hi) / 2;

		if (Slope(p, x, has_nu, c, mid) < 0)
			lo = mid;
		else
			hi = mid;
	}
	x[c] = (lo + hi) / 2;
}

/*
 * Brute force: cyclic coordinate descent with line minima over
 * strengths 1 .. n - 1 (strength 0 stays at its start) and theta.
 */
static void
BruteForce(const PrmItemsProblem *p, double *x, int has_nu, int from)
{
	int			np = p->n_items + (has_nu ? 1 : 0);

	for (int sweep = 0; sweep < 1000; sweep++)
	{
		double		moved = 0.0;

		for (int c = from; c < np; c++)
		{
			double		old = x[c];

			LineMinimum(p, x, has_nu, c);
			moved = fmax(moved, fabs(x[c] - old));
		}
		if (moved < 1e-9)
			break;
	}
}

/* Fit with a fresh workspace; strength and log_nu start cold */
static PrmStatus
Fit(const PrmItemsProblem *p, double *s, double *log_nu, PrmItemsResult *res)
{
	void	   *work = malloc(PrmItemsWorkspaceSize(p->n_items, p->n_pairs));
	PrmStatus	st;

	memset(s, 0, sizeof(double) * p->n_items);
	*log_nu = NAN;
	st = PrmItemsSolve(p, 100, s, log_nu, work, res);
	free(work);
	return st;
}

/* Standard errors with a fresh workspace */
static void
Errors(const PrmItemsProblem *p, const double *s, double log_nu,
	   const int32_t *comp, int ncomp, int ref, double *se, double *nu_se)
{
	void	   *work = malloc(PrmItemsWorkspaceSize(p->n_items, p->n_pairs));

	PrmItemsStandardErrors(p, s, log_nu, comp, ncomp, ref, se, nu_se, work);
	free(work);
}

/* Invert a small symmetric positive definite matrix by Gauss-Jordan */
static void
Invert(double *a, int n)
{
	double	   *inv = calloc((size_t) n * n, sizeof(double));

	for (int i = 0; i < n; i++)
		inv[i * n + i] = 1;
	for (int c = 0; c < n; c++)
	{
		double		piv = a[c * n + c];

		for (int k = 0; k < n; k++)
		{
			a[c * n + k] /= piv;
			inv[c * n + k] /= piv;
		}
		for (int r = 0; r < n; r++)
		{
			double		f = a[r * n + c];

			if (r == c)
				continue;
			for (int k = 0; k < n; k++)
			{
				a[r * n + k] -= f * a[c * n + k];
				inv[r * n + k] -= f * inv[c * n + k];
			}
		}
	}
	memcpy(a, inv, sizeof(double) * n * n);
	free(inv);
}

/*
 * Covariance of parameters from..np-1 by inverting a central-difference
 * Hessian of the naive objective (the others held fixed).
 */
static double *
NumericCovariance(const PrmItemsProblem *p, const double *x0, int has_nu,
				  int from)
{
	int			np = p->n_items + (has_nu ? 1 : 0);
	int			m = np - from;
	double	   *h = calloc((size_t) m * m, sizeof(double));
	double	   *x = malloc(sizeof(double) * np);
	double		e = 1e-4;

	for (int r = 0; r < m; r++)
		for (int c = 0; c < m; c++)
		{
			double		f[4];
			int			sr[4] = {1, 1, -1, -1},
						sc[4] = {1, -1, 1, -1};

			for (int k = 0; k < 4; k++)
			{
				memcpy(x, x0, sizeof(double) * np);
				x[from + r] += sr[k] * e;
				x[from + c] += sc[k] * e;
				f[k] = NaiveObjective(p, x, has_nu);
			}
			h[r * m + c] = (f[0] - f[1] - f[2] + f[3]) / (4 * e * e);
		}
	free(x);
	Invert(h, m);
	return h;
}

/* Two items: the estimates have closed forms */
static void
TestTwoItems(void)
{
	Data		d = DataNew(2, 1, 0.0, PRM_TIES_DAVIDSON);
	double		s[2],
				se[2],
				ln,
				nu_se;
	int32_t		comp[2] = {0, 0};
	PrmItemsResult res;
	double		diff;

	/* no ties: s1 - s0 = log(b / a), se = sqrt(1/a + 1/b) */
	d.ii[0] = 0;
	d.jj[0] = 1;
	d.a[0] = 7;
	d.b[0] = 3;
	Fit(&d.prob, s, &ln, &res);
	diff = s[0] - s[1];
	UnitCheck(res.status == PRM_OK && fabs(diff - log(7.0 / 3)) < 1e-12 &&
			  fabs(s[0] + s[1]) < 1e-12 && !res.has_nu && isinf(ln),
			  "two items, no ties: s0 - s1 = log(7/3), sum 0, no nu "
			  "(diff %.3g)", diff - log(7.0 / 3));
	UnitCheck(fabs(res.loglik - (7 * log(0.7) + 3 * log(0.3))) < 1e-12,
			  "two items: log-likelihood 7 log .7 + 3 log .3");
	Errors(&d.prob, s, ln, comp, 1, 0, se, &nu_se);
	UnitCheck(se[0] == 0 && fabs(se[1] - sqrt(1 / 7.0 + 1 / 3.0)) < 1e-10,
			  "two items: se of s1 - s0 is sqrt(1/7 + 1/3) (got %.12f)",
			  se[1]);
	Errors(&d.prob, s, ln, comp, 1, -1, se, &nu_se);
	UnitCheck(fabs(se[0] - sqrt(1 / 7.0 + 1 / 3.0) / 2) < 1e-10 &&
			  fabs(se[1] - se[0]) < 1e-12,
			  "two items centred: se of s_i - mean is half of it");

	/* Davidson: p_i = a/m, p_j = b/m, p_tie = t/m, so nu = t / sqrt(ab) */
	d.t[0] = 5;
	Fit(&d.prob, s, &ln, &res);
	UnitCheck(res.status == PRM_OK && res.has_nu &&
			  fabs(s[0] - s[1] - log(7.0 / 3)) < 1e-12 &&
			  fabs(exp(ln) - 5 / sqrt(21.0)) < 1e-12,
			  "two items with ties: nu = t / sqrt(ab) = %.6f (got %.6f)",
			  5 / sqrt(21.0), exp(ln));
	UnitCheck(fabs(res.loglik - (7 * log(7 / 15.0) + 3 * log(3 / 15.0) +
								 5 * log(5 / 15.0))) < 1e-12,
			  "two items with ties: log-likelihood of the saturated model");

	/* the same ties counted as halves: s0 - s1 = log(9.5 / 5.5) */
	d.prob.ties = PRM_TIES_HALF;
	Fit(&d.prob, s, &ln, &res);
	UnitCheck(fabs(s[0] - s[1] - log(9.5 / 5.5)) < 1e-12 && !res.has_nu,
			  "two items, ties as halves: s0 - s1 = log(9.5 / 5.5)");
	d.prob.ties = PRM_TIES_DROP;
	Fit(&d.prob, s, &ln, &res);
	UnitCheck(fabs(s[0] - s[1] - log(7.0 / 3)) < 1e-12 && !res.has_nu,
			  "two items, ties dropped: s0 - s1 = log(7/3)");

	/* a prior: the optimum solves 7 sig(-d) - 3 sig(d) = prior d / 2 */
	d.prob.prior = 0.5;
	Fit(&d.prob, s, &ln, &res);
	diff = s[0] - s[1];
	UnitCheck(fabs(7 / (1 + exp(diff)) - 3 / (1 + exp(-diff)) -
				   0.5 * diff / 2) < 1e-10 && fabs(s[0] + s[1]) < 1e-12,
			  "two items with prior 0.5 satisfy the stationarity equation");
	DataFree(&d);
}

/* Newton agrees with brute force on the naive likelihood */
static void
TestBruteForce(PrmTieModel ties, double prior, const char *label)
{
	Data		d = DataRandom(6, 12, ties == PRM_TIES_DAVIDSON ? 0.8 : 0.5,
							   0.8, 11 + (uint64_t) (prior * 100), prior,
							   ties);
	int			n = 6;
	double		s[7],
				x[7] = {0},
				se[6],
				ln,
				nu_se;
	int32_t		comp[6] = {0};
	PrmItemsResult res;
	int			has_nu;
	double		worst = 0.0;
	double	   *cov;
	int			from = prior > 0 ? 0 : 1;

	Fit(&d.prob, s, &ln, &res);
	has_nu = res.has_nu;
	UnitCheck(res.status == PRM_OK && res.converged,
			  "%s: Newton converges in %d iterations", label,
			  res.iterations);

	/* without a prior fix s_0 = 0 in both; with one nothing is fixed */
	if (has_nu)
		x[n] = 0.0;
	BruteForce(&d.prob, x, has_nu, from);
	if (from == 1)
		PrmItemsIdentify(n, s, comp, 1, 0, se);
	for (int i = 0; i < n; i++)
		worst = fmax(worst, fabs(s[i] - x[i]));
	if (has_nu)
		worst = fmax(worst, fabs(ln - x[n]));
	UnitCheck(worst < 1e-6, "%s: strengths%s match brute force (%.1e)",
			  label, has_nu ? " and log nu" : "", worst);
	UnitCheck(fabs(res.loglik - NaiveLoglik(&d.prob, x, x[n], has_nu))
			  < 1e-8, "%s: log-likelihood matches the naive one", label);

	/* standard errors from the inverse numerical Hessian */
	Errors(&d.prob, s, ln, comp, 1, from == 1 ? 0 : -1, se, &nu_se);
	cov = NumericCovariance(&d.prob, x, has_nu, from);
	worst = 0.0;
	if (from == 1)
	{
		int			m = n - 1 + has_nu;

		for (int i = 1; i < n; i++)
			worst = fmax(worst, fabs(se[i] - sqrt(cov[(i - 1) * m + i - 1]))
						 / se[i]);
		if (has_nu)
			worst = fmax(worst, fabs(nu_se - exp(ln) *
									 sqrt(cov[(m - 1) * m + m - 1])) /
						 nu_se);
	}
	else
	{
		int			m = n + has_nu;

		/* var(s_i - mean s) from the full covariance */
		for (int i = 0; i < n; i++)
		{
			double		v = cov[i * m + i];

			for (int j = 0; j < n; j++)
			{
				v -= 2.0 / n * cov[i * m + j];
				for (int k = 0; k < n; k++)
					v += cov[j * m + k] / ((double) n * n);
			}
			worst = fmax(worst, fabs(se[i] - sqrt(v)) / se[i]);
		}
	}
	UnitCheck(worst < 1e-5, "%s: standard errors match the numerical "
			  "Hessian (relative %.1e)", label, worst);
	free(cov);
	DataFree(&d);
}

/* Without a prior, separation and disconnection have no finite fit */
static void
TestExistence(void)
{
	Data		d = DataNew(4, 4, 0.0, PRM_TIES_DAVIDSON);
	double		s[4],
				ln,
				se[4],
				nu_se;
	int32_t		comp[4];
	void	   *work = malloc(PrmItemsWorkspaceSize(4, 4));
	PrmItemsResult res;
	int			nc;

	/* a cycle 0 > 1 > 2 > 3 > 0 plus item 0 losing once to 2 */
	for (int k = 0; k < 4; k++)
	{
		d.ii[k] = k;
		d.jj[k] = (k + 1) % 4;
		d.a[k] = 3;
	}
	UnitCheck(PrmItemsStronglyConnected(&d.prob, work),
			  "a 4-cycle of wins is strongly connected");
	Fit(&d.prob, s, &ln, &res);
	UnitCheck(res.status == PRM_OK && fabs(s[0]) < 1e-9 &&
			  fabs(s[2]) < 1e-9,
			  "a cycle of equal wins gives equal strengths");

	/* item 0 never loses: break the 3 > 0 edge */
	d.a[3] = 0;
	d.b[3] = 3;
	UnitCheck(!PrmItemsStronglyConnected(&d.prob, work) &&
			  Fit(&d.prob, s, &ln, &res) == PRM_SEPARABLE,
			  "an item that never loses is separable without a prior");

	/* a tie between 3 and 0 reconnects it */
	d.t[3] = 1;
	UnitCheck(PrmItemsStronglyConnected(&d.prob, work) &&
			  Fit(&d.prob, s, &ln, &res) == PRM_OK,
			  "a tie counts both ways: the fit exists again");
	d.t[3] = 0;

	/* a prior keeps the all-wins item finite */
	d.prob.prior = 0.1;
	UnitCheck(Fit(&d.prob, s, &ln, &res) == PRM_OK && isfinite(s[0]) &&
			  s[0] > s[1] && s[0] > s[3],
			  "with a prior the all-wins item gets the largest finite "
			  "strength (%.3f)", s[0]);

	/* two components 0-1 and 2-3: each is centred on its own */
	d.prob.n_pairs = 3;
	d.a[0] = 3, d.b[0] = 1;
	d.a[1] = 0, d.b[1] = 0, d.t[1] = 0;
	d.ii[2] = 2, d.jj[2] = 3, d.a[2] = 1, d.b[2] = 4;
	nc = PrmItemsComponents(&d.prob, comp, work);
	UnitCheck(nc == 2 && comp[0] == 0 && comp[1] == 0 && comp[2] == 1 &&
			  comp[3] == 1, "zero-weight pairs are not edges: 2 components");
	Fit(&d.prob, s, &ln, &res);
	UnitCheck(res.status == PRM_OK && fabs(s[0] + s[1]) < 1e-10 &&
			  fabs(s[2] + s[3]) < 1e-10,
			  "with a prior each component sums to zero");
	Errors(&d.prob, s, ln, comp, nc, -1, se, &nu_se);
	UnitCheck(fabs(se[0] - se[1]) < 1e-12 && se[0] > 0 && se[2] > 0,
			  "centred errors are computed per component");
	d.prob.prior = 0;
	UnitCheck(Fit(&d.prob, s, &ln, &res) == PRM_SEPARABLE,
			  "without a prior a disconnected graph has no fit");

	/* every comparison a tie: nu has no finite estimate */
	d.prob.prior = 0.1;
	for (int k = 0; k < 3; k++)
	{
		d.t[k] = d.a[k] + d.b[k] + 1;
		d.a[k] = d.b[k] = 0;
	}
	UnitCheck(Fit(&d.prob, s, &ln, &res) == PRM_SEPARABLE,
			  "only ties: nu is infinite, reported as separable");
	d.prob.ties = PRM_TIES_HALF;
	UnitCheck(Fit(&d.prob, s, &ln, &res) == PRM_OK && fabs(s[0]) < 1e-12,
			  "only ties counted as halves: strengths 0");

	/* bad input */
	d.prob.ties = PRM_TIES_DAVIDSON;
	d.a[0] = -1;
	UnitCheck(Fit(&d.prob, s, &ln, &res) == PRM_BAD_INPUT,
			  "a negative weight is bad input");
	d.a[0] = NAN;
	UnitCheck(Fit(&d.prob, s, &ln, &res) == PRM_BAD_INPUT,
			  "a NaN weight is bad input");
	d.a[0] = 1;
	d.jj[0] = 0;
	UnitCheck(Fit(&d.prob, s, &ln, &res) == PRM_BAD_INPUT,
			  "an item compared with itself is bad input");
	d.jj[0] = 7;
	UnitCheck(Fit(&d.prob, s, &ln, &res) == PRM_BAD_INPUT,
			  "an item number out of range is bad input");
	d.jj[0] = 1;
	memset(d.a, 0, sizeof(double) * 3);
	memset(d.t, 0, sizeof(double) * 3);
	memset(d.b, 0, sizeof(double) * 3);
	UnitCheck(Fit(&d.prob, s, &ln, &res) == PRM_NO_INFORMATION,
			  "all weights zero: no information");
	free(work);
	DataFree(&d);
}

/*
 * Weights each finite but near the largest double (found by fuzz_items):
 * the fit must say bad input rather than return non-finite strengths
 */
static void
TestHugeWeights(void)
{
	const double wi[4] = {1.38242e306, 1.38242e306, 4.91502e307, 3.35998e304};
	const double wj[4] = {2.08328e-309, 1.38242e306, 1.71332e308, 2.22534e-308};
	const double wt[4] = {1.3661e306, 1.38241e306, 1.38242e306, 7.9e-323};
	Data		d = DataNew(2, 4, 0.0, PRM_TIES_HALF);
	PrmItemsResult res;
	double		s[2],
				ln;
	PrmStatus	st;

	for (int k = 0; k < 4; k++)
	{
		d.ii[k] = 0;
		d.jj[k] = 1;
		d.a[k] = wi[k];
		d.b[k] = wj[k];
		d.t[k] = wt[k];
	}
	st = Fit(&d.prob, s, &ln, &res);
	UnitCheck(st == PRM_BAD_INPUT ||
			  ((st == PRM_OK || st == PRM_NOT_CONVERGED) &&
			   isfinite(s[0]) && isfinite(s[1]) && isfinite(res.loglik)),
			  "weights near the largest double: bad input or a finite fit "
			  "(status %d)", (int) st);
	DataFree(&d);
}

/* Orientation and order of pairs do not change the fit */
static void
TestInvariance(void)
{
	Data		d = DataRandom(8, 9, 0.6, 0.7, 5, 0.0, PRM_TIES_DAVIDSON);
	Data		e = DataNew(8, d.prob.n_pairs, 0.0, PRM_TIES_DAVIDSON);
	double		s1[8],
				s2[8],
				l1,
				l2;
	PrmItemsResult r1,
				r2;
	int64_t		np = d.prob.n_pairs;

	/* reversed order, every pair flipped */
	for (int64_t k = 0; k < np; k++)
	{
		e.ii[k] = d.jj[np - 1 - k];
		e.jj[k] = d.ii[np - 1 - k];
		e.a[k] = d.b[np - 1 - k];
		e.b[k] = d.a[np - 1 - k];
		e.t[k] = d.t[np - 1 - k];
	}
	e.prob.n_pairs = np;
	Fit(&d.prob, s1, &l1, &r1);
	Fit(&e.prob, s2, &l2, &r2);
	UnitCheck(r1.status == PRM_OK && r2.status == PRM_OK &&
			  UnitRelDiff(s1, s2, 8) < 1e-10 && fabs(l1 - l2) < 1e-10,
			  "flipping and reversing the pairs leaves the fit unchanged");
	UnitCheck(fabs(r1.loglik - r2.loglik) < 1e-9 * fabs(r1.loglik),
			  "and the log-likelihood");

	/* integer weights equal repeated data: doubling the counts */
	for (int64_t k = 0; k < np; k++)
	{
		e.a[k] = 2 * d.a[k];
		e.b[k] = 2 * d.b[k];
		e.t[k] = 2 * d.t[k];
		e.ii[k] = d.ii[k];
		e.jj[k] = d.jj[k];
	}
	Fit(&e.prob, s2, &l2, &r2);
	UnitCheck(UnitRelDiff(s1, s2, 8) < 1e-10 &&
			  fabs(r2.loglik - 2 * r1.loglik) < 1e-8 * fabs(r1.loglik),
			  "doubling every count keeps the MLE, doubles the "
			  "log-likelihood");
	DataFree(&d);
	DataFree(&e);
}

/* The bootstrap: reproducible, exact in degenerate cases, sensible */
static void
TestBootstrap(void)
{
	Data		d = DataRandom(5, 40, 0.5, 1.0, 21, 0.0, PRM_TIES_DAVIDSON);
	int			n = 5;
	int64_t		np = d.prob.n_pairs;
	int			b = 400;
	double		s[5],
				ln,
				se[5],
				nu_se;
	int32_t		comp[5] = {0};
	double	   *rows_i = malloc(sizeof(double) * np);
	double	   *rows_j = malloc(sizeof(double) * np);
	double	   *rows_t = malloc(sizeof(double) * np);
	double	   *draws1 = malloc(sizeof(double) * b * (n + 1));
	double	   *draws2 = malloc(sizeof(double) * b * (n + 1));
	double		lower[6],
				upper[6],
				scratch[400];
	PrmItemsResample rs = {rows_i, rows_j, rows_t, 0, 0, NULL, NULL,
	NULL, NULL, NULL};
	PrmItemsResult res;
	void	   *work;
	int			ok1,
				ok2;
	double		worst = 0.0;

	Fit(&d.prob, s, &ln, &res);
	PrmItemsIdentify(n, s, comp, 1, -1, scratch);
	Errors(&d.prob, s, ln, comp, 1, -1, se, &nu_se);
	for (int64_t k = 0; k < np; k++)
	{
		rows_i[k] = d.a[k];
		rows_j[k] = d.b[k];
		rows_t[k] = d.t[k];
	}
	work = malloc(PrmItemsBootstrapWorkspaceSize(&d.prob, &rs));
	ok1 = PrmItemsBootstrap(&d.prob, &rs, b, 7, 100, s, ln, comp, 1, -1,
							draws1, work);
	ok2 = PrmItemsBootstrap(&d.prob, &rs, b, 7, 100, s, ln, comp, 1, -1,
							draws2, work);
	UnitCheck(ok1 == b && ok2 == b &&
			  memcmp(draws1, draws2, sizeof(double) * b * (n + 1)) == 0,
			  "the same seed gives the same %d draws", b);
	ok2 = PrmItemsBootstrap(&d.prob, &rs, b, 8, 100, s, ln, comp, 1, -1,
							draws2, work);
	UnitCheck(memcmp(draws1, draws2, sizeof(double) * b * (n + 1)) != 0,
			  "another seed gives other draws");

	/* bootstrap standard deviations near the analytic errors */
	for (int i = 0; i < n; i++)
	{
		double		m = 0,
					v = 0;

		for (int r = 0; r < b; r++)
			m += draws1[r * (n + 1) + i] / b;
		for (int r = 0; r < b; r++)
			v += pow(draws1[r * (n + 1) + i] - m, 2) / (b - 1);
		worst = fmax(worst, fabs(sqrt(v) / se[i] - 1));
	}
	UnitCheck(worst < 0.2, "bootstrap sd within 20%% of the standard errors "
			  "(worst %.2f)", worst);
	PrmItemsPercentiles(draws1, b, n + 1, 0.95, lower, upper, scratch);
	UnitCheck(lower[n] < exp(ln) && exp(ln) < upper[n] && lower[0] < s[0] &&
			  s[0] < upper[0], "the intervals contain the estimates");
	free(work);

	/* raters with identical data: every resample is the data itself */
	{
		int			nr = 4;
		int64_t		nc = nr * np;
		int32_t    *cr = malloc(sizeof(int32_t) * nc);
		int64_t    *cp = malloc(sizeof(int64_t) * nc);
		double	   *ca = malloc(sizeof(double) * nc);
		double	   *cb = malloc(sizeof(double) * nc);
		double	   *ct = malloc(sizeof(double) * nc);
		PrmItemsResample rr = {NULL, NULL, NULL, nr, nc, cr, cp, ca, cb,
		ct};

		for (int64_t c = 0; c < nc; c++)
		{
			cr[c] = (int32_t) (c / np);
			cp[c] = c % np;
			ca[c] = d.a[c % np] / nr;
			cb[c] = d.b[c % np] / nr;
			ct[c] = d.t[c % np] / nr;
		}
		work = malloc(PrmItemsBootstrapWorkspaceSize(&d.prob, &rr));
		ok1 = PrmItemsBootstrap(&d.prob, &rr, 20, 3, 100, s, ln, comp, 1,
								-1, draws1, work);
		worst = 0.0;
		for (int r = 0; r < ok1; r++)
		{
			for (int i = 0; i < n; i++)
				worst = fmax(worst, fabs(draws1[r * (n + 1) + i] - s[i]));
			worst = fmax(worst, fabs(draws1[r * (n + 1) + n] - exp(ln)));
		}
		UnitCheck(ok1 == 20 && worst < 1e-9,
				  "identical raters: every rater resample equals the fit "
				  "(%.1e)", worst);
		free(work);
		free(cr);
		free(cp);
		free(ca);
		free(cb);
		free(ct);
	}

	/* one pair, no ties, 10 rows each way: wins ~ Binomial(20, 1/2) */
	{
		Data		e = DataNew(2, 1, 0.0, PRM_TIES_DAVIDSON);
		double		one_i = 10,
					one_j = 10,
					one_t = 0;
		PrmItemsResample r1 = {&one_i, &one_j, &one_t, 0, 0, NULL, NULL,
		NULL, NULL, NULL};
		double		s2[2] = {0, 0};
		int32_t		c2[2] = {0, 0};
		int			bad = 0;
		double		mean = 0,
					var = 0;
		double	   *draws3 = malloc(sizeof(double) * 2000 * 3);

		e.ii[0] = 0;
		e.jj[0] = 1;
		e.a[0] = 10;
		e.b[0] = 10;
		work = malloc(PrmItemsBootstrapWorkspaceSize(&e.prob, &r1));
		ok1 = PrmItemsBootstrap(&e.prob, &r1, 2000, 1, 100, s2, -INFINITY,
								c2, 1, 0, draws3, work);
		/* s1 - s0 is log(w / (20 - w)) for an integer w in 1..19 */
		for (int r = 0; r < ok1; r++)
		{
			double		w = 20 / (1 + exp(-draws3[r * 3 + 1]));

			bad += fabs(w - round(w)) > 1e-8 || draws3[r * 3] != 0 ||
				draws3[r * 3 + 2] != 0;
			mean += w / ok1;
			var += w * w / ok1;
		}
		var -= mean * mean;
		/* tolerances: 4 standard errors, 0.05 for the mean, 0.16 the var */
		UnitCheck(ok1 > 1990 && bad == 0,
				  "one pair: every draw of s1 - s0 is log(w / (20 - w)) "
				  "for a resampled integer w (%d of 2000 kept)", ok1);
		UnitCheck(fabs(mean - 10) < 0.2 && fabs(var - 5) < 0.65,
				  "and w has the binomial(20, 1/2) mean 10 and variance 5 "
				  "(%.2f, %.2f)", mean, var);
		free(work);
		free(draws3);
		DataFree(&e);
	}

	free(rows_i);
	free(rows_j);
	free(rows_t);
	free(draws1);
	free(draws2);
	DataFree(&d);
}

/* Percentiles interpolate as R's quantile type 7 */
static void
TestPercentiles(void)
{
	double		x[5] = {5, 1, 4, 2, 3};
	double		lo,
				hi,
				scratch[5];

	PrmItemsPercentiles(x, 5, 1, 0.5, &lo, &hi, scratch);
	UnitCheck(lo == 2 && hi == 4, "quartiles of 1..5 are 2 and 4");
	PrmItemsPercentiles(x, 5, 1, 0.9, &lo, &hi, scratch);
	UnitCheck(fabs(lo - 1.2) < 1e-12 && fabs(hi - 4.8) < 1e-12,
			  "5%% and 95%% quantiles of 1..5 are 1.2 and 4.8");
}

/* A larger problem: a prior matches its stationarity equations */
static void
TestLarger(void)
{
	Data		d = DataRandom(60, 3, 0.3, 0.5, 77, 0.01, PRM_TIES_DAVIDSON);
	double		s[60],
				ln,
				gmax = 0.0,
				sum = 0.0;
	double		x[61];
	PrmItemsResult res;

	Fit(&d.prob, s, &ln, &res);
	memcpy(x, s, sizeof(s));
	x[60] = ln;
	for (int c = 0; c < 61; c++)
	{
		double		h = 1e-5,
					fp,
					fm,
					old = x[c];

		x[c] = old + h;
		fp = NaiveObjective(&d.prob, x, 1);
		x[c] = old - h;
		fm = NaiveObjective(&d.prob, x, 1);
		x[c] = old;
		gmax = fmax(gmax, fabs(fp - fm) / (2 * h));
	}
	for (int i = 0; i < 60; i++)
		sum += s[i];
	UnitCheck(res.status == PRM_OK && res.iterations < 15 && gmax < 1e-5 &&
			  fabs(sum) < 1e-9,
			  "60 items with ties and a prior: %d iterations, "
			  "finite-difference gradient %.1e, sum of strengths %.1e",
			  res.iterations, gmax, sum);
	DataFree(&d);
}

/* Item strengths: every group */
void
TestItems(void)
{
	TestTwoItems();
	TestHugeWeights();
	TestBruteForce(PRM_TIES_DAVIDSON, 0.0, "Davidson, no prior");
	TestBruteForce(PRM_TIES_DAVIDSON, 0.3, "Davidson, prior 0.3");
	TestBruteForce(PRM_TIES_HALF, 0.0, "ties as halves, no prior");
	TestBruteForce(PRM_TIES_DROP, 0.05, "ties dropped, prior 0.05");
	TestExistence();
	TestInvariance();
	TestBootstrap();
	TestPercentiles();
	TestLarger();
}
