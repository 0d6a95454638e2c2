/*
 * test_btl.c
 *	  Checks the BTL solvers against closed forms, brute-force gradients
 *	  and each other.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prm_btl.h"
#include "unit.h"

/* Objective computed naively, independent of the solver's code */
static double
NaiveObjective(const PrmBtlProblem *p, const double *w)
{
	double		f = 0.0;

	for (int64_t i = 0; i < p->n; i++)
	{
		double		m = 0.0;
		double		a = p->weight ? p->weight[i] : 1.0;

		for (int j = 0; j < p->d; j++)
			m += w[j] * p->z[i * p->d + j];
		f += a * log(1.0 + exp(-m));
	}
	for (int j = 0; j < p->d; j++)
		f += 0.5 * p->l2 * w[j] * w[j];
	return f;
}

/* Central finite-difference gradient norm of the naive objective */
static double
FiniteDifferenceGradNorm(const PrmBtlProblem *p, const double *w)
{
	double	   *x = malloc(sizeof(double) * p->d);
	double		norm = 0.0;

	memcpy(x, w, sizeof(double) * p->d);
	for (int j = 0; j < p->d; j++)
	{
		double		h = 1e-5 * (fabs(w[j]) > 1 ? fabs(w[j]) : 1);
		double		fp,
					fm;

		x[j] = w[j] + h;
		fp = NaiveObjective(p, x);
		x[j] = w[j] - h;
		fm = NaiveObjective(p, x);
		x[j] = w[j];
		norm += pow((fp - fm) / (2 * h), 2);
	}
	free(x);
	return sqrt(norm);
}

/* Generate n comparisons from a true w with logistic noise */
static double *
MakeComparisons(int64_t n, int d, const double *wtrue, uint64_t seed,
				double zero_share)
{
	double	   *z = malloc(sizeof(double) * n * d);

	for (int64_t i = 0; i < n; i++)
	{
		double		m = 0.0;
		double	   *zi = z + i * d;

		for (int j = 0; j < d; j++)
		{
			zi[j] = UnitNormal(&seed);
			m += wtrue[j] * zi[j];
		}
		if (UnitUniform(&seed) < zero_share)
			memset(zi, 0, sizeof(double) * d);
		else if (UnitUniform(&seed) > 1.0 / (1.0 + exp(-m)))
		{
			/* the rejected response won: the difference flips */
			for (int j = 0; j < d; j++)
				zi[j] = -zi[j];
		}
	}
	return z;
}

/* Solve with a method, returning the status; w starts at zero */
static PrmStatus
Solve(const PrmBtlProblem *p, PrmBtlMethod method, double *w,
	  PrmBtlResult *res)
{
	PrmBtlOptions opt = {method, 1e-10, 100};
	void	   *work = malloc(PrmBtlWorkspaceSize(p, method));
	PrmStatus	st;

	memset(w, 0, sizeof(double) * p->d);
	st = PrmBtlSolve(p, &opt, w, work, res);
	free(work);
	return st;
}

/* d = 1 with z = +1 or -1: the MLE is log(wins / losses) */
static void
TestClosedFormD1(void)
{
	double		z[10];
	double		weight[10];
	double		w[1];
	PrmBtlResult res;
	PrmBtlProblem p = {10, 1, z, NULL, 0.0};

	for (int i = 0; i < 10; i++)
		z[i] = i < 7 ? 1.0 : -1.0;
	Solve(&p, PRM_METHOD_NEWTON, w, &res);
	UnitCheck(res.status == PRM_OK && fabs(w[0] - log(7.0 / 3.0)) < 1e-10,
			  "d = 1 closed form log(7/3): got %.12f", w[0]);
	Solve(&p, PRM_METHOD_NEWTON_CG, w, &res);
	UnitCheck(res.status == PRM_OK && fabs(w[0] - log(7.0 / 3.0)) < 1e-10,
			  "d = 1 closed form with Newton-CG: got %.12f", w[0]);

	/* weights: wins weighted 2, losses 1 -> log(14 / 3) */
	for (int i = 0; i < 10; i++)
		weight[i] = i < 7 ? 2.0 : 1.0;
	p.weight = weight;
	Solve(&p, PRM_METHOD_NEWTON, w, &res);
	UnitCheck(fabs(w[0] - log(14.0 / 3.0)) < 1e-10,
			  "d = 1 weighted closed form log(14/3): got %.12f", w[0]);

	/* with l2 the optimum solves 7 s(-w) - 3 s(w) = l2 w; check residual */
	p.weight = NULL;
	p.l2 = 2.0;
	Solve(&p, PRM_METHOD_NEWTON, w, &res);
	UnitCheck(fabs(7.0 / (1 + exp(w[0])) - 3.0 / (1 + exp(-w[0])) -
				   2.0 * w[0]) < 1e-10,
			  "d = 1 with l2 = 2 satisfies the stationarity equation");
}

/* Solutions have a brute-force gradient of zero and beat perturbations */
static void
TestOptimality(int d, double l2, PrmBtlMethod method, const char *label)
{
	int64_t		n = 3000;
	double	   *wtrue = malloc(sizeof(double) * d);
	double	   *w = malloc(sizeof(double) * d);
	double	   *x = malloc(sizeof(double) * d);
	uint64_t	seed = 42 + d;
	double	   *z;
	PrmBtlResult res;
	PrmBtlProblem p;
	double		f,
				gnorm;
	int			worse = 1;

	for (int j = 0; j < d; j++)
		wtrue[j] = UnitNormal(&seed) / sqrt((double) d);
	z = MakeComparisons(n, d, wtrue, seed, 0.0);
	p = (PrmBtlProblem) {n, d, z, NULL, l2};
	Solve(&p, method, w, &res);
	f = NaiveObjective(&p, w);
	gnorm = FiniteDifferenceGradNorm(&p, w);
	for (int t = 0; t < 20 && worse; t++)
	{
		for (int j = 0; j < d; j++)
			x[j] = w[j] + 1e-4 * UnitNormal(&seed);
		worse = NaiveObjective(&p, x) >= f;
	}
	UnitCheck(res.status == PRM_OK && res.converged,
			  "%s d = %d l2 = %g converges (%d iterations)", label, d, l2,
			  res.iterations);
	UnitCheck(gnorm < 1e-5 * n / 1000.0,
			  "%s d = %d: finite-difference gradient %.2e is zero", label, d,
			  gnorm);
	UnitCheck(worse, "%s d = %d: random perturbations do not improve f",
			  label, d);
	UnitCheck(fabs(res.objective - f) < 1e-8 * f,
			  "%s d = %d: reported objective matches the naive one", label,
			  d);
	free(wtrue);
	free(w);
	free(x);
	free(z);
}

/* Newton and Newton-CG reach the same weights */
static void
TestMethodsAgree(int d, double l2, double zero_share)
{
	int64_t		n = 4000;
	double	   *wtrue = malloc(sizeof(double) * d);
	double	   *w1 = malloc(sizeof(double) * d);
	double	   *w2 = malloc(sizeof(double) * d);
	uint64_t	seed = 7 * d + 1;
	double	   *z;
	PrmBtlResult r1,
				r2;
	PrmBtlProblem p;

	for (int j = 0; j < d; j++)
		wtrue[j] = UnitNormal(&seed) / sqrt((double) d);
	z = MakeComparisons(n, d, wtrue, seed, zero_share);
	p = (PrmBtlProblem) {n, d, z, NULL, l2};
	Solve(&p, PRM_METHOD_NEWTON, w1, &r1);
	Solve(&p, PRM_METHOD_NEWTON_CG, w2, &r2);
	UnitCheck(r1.converged && r2.converged &&
			  UnitRelDiff(w1, w2, d) < 1e-7,
			  "Newton and Newton-CG agree at d = %d, l2 = %g, %.0f%% zero "
			  "rows (diff %.1e, %d and %d iterations)", d, l2,
			  zero_share * 100, UnitRelDiff(w1, w2, d), r1.iterations,
			  r2.iterations);
	free(wtrue);
	free(w1);
	free(w2);
	free(z);
}

/* Integer weights equal duplicated rows */
static void
TestWeightsEqualDuplicates(void)
{
	int			d = 4;
	int64_t		n = 500;
	double		wtrue[4] = {1, -1, 0.5, 0};
	double	   *z = MakeComparisons(n, d, wtrue, 99, 0.0);
	double	   *zdup = malloc(sizeof(double) * 2 * n * d);
	double	   *weight = malloc(sizeof(double) * n);
	double		w1[4],
				w2[4];
	PrmBtlResult res;
	PrmBtlProblem p1 = {n, d, z, weight, 0.5};
	PrmBtlProblem p2 = {0, d, zdup, NULL, 0.5};
	int64_t		m = 0;

	for (int64_t i = 0; i < n; i++)
	{
		weight[i] = (i % 3 == 0) ? 2.0 : 1.0;
		for (int c = 0; c < (int) weight[i]; c++)
			memcpy(zdup + (m++) * d, z + i * d, sizeof(double) * d);
	}
	p2.n = m;
	Solve(&p1, PRM_METHOD_NEWTON, w1, &res);
	Solve(&p2, PRM_METHOD_NEWTON, w2, &res);
	UnitCheck(UnitRelDiff(w1, w2, d) < 1e-9,
			  "weight 2 equals a duplicated comparison (diff %.1e)",
			  UnitRelDiff(w1, w2, d));
	free(z);
	free(zdup);
	free(weight);
}

/* Failure modes: separable data, no information, bad arguments */
static void
TestFailureModes(void)
{
	double		z[6] = {1, 0, 0.5, 1, 2, -0.1};
	double		zero[4] = {0};
	double		w[2];
	PrmBtlResult res;
	PrmBtlProblem sep = {3, 2, z, NULL, 0.0};
	PrmBtlProblem none = {2, 2, zero, NULL, 0.0};
	PrmBtlProblem neg = {3, 2, z, NULL, -1.0};

	UnitCheck(Solve(&sep, PRM_METHOD_NEWTON, w, &res) == PRM_SEPARABLE,
			  "separable data with l2 = 0 is reported");
	UnitCheck(Solve(&sep, PRM_METHOD_NEWTON_CG, w, &res) == PRM_SEPARABLE,
			  "separable data with l2 = 0 is reported by Newton-CG");
	sep.l2 = 1.0;
	UnitCheck(Solve(&sep, PRM_METHOD_NEWTON, w, &res) == PRM_OK,
			  "separable data with l2 = 1 has a finite optimum");
	UnitCheck(Solve(&none, PRM_METHOD_NEWTON, w, &res) == PRM_NO_INFORMATION,
			  "all-zero differences are reported as no information");
	UnitCheck(Solve(&neg, PRM_METHOD_NEWTON, w, &res) == PRM_BAD_INPUT,
			  "negative l2 is rejected");
}

static int	interrupt_calls = 0;

/* Count calls of the interrupt hook */
static void
CountInterrupt(void)
{
	interrupt_calls++;
}

/* Long solves call the interrupt hook */
static void
TestInterruptHook(void)
{
	double		wtrue[8] = {1, 2, 3, 4, -1, -2, -3, -4};
	double	   *z = MakeComparisons(200000, 8, wtrue, 5, 0.0);
	double		w[8];
	PrmBtlResult res;
	PrmBtlProblem p = {200000, 8, z, NULL, 1.0};

	prm_interrupt_hook = CountInterrupt;
	Solve(&p, PRM_METHOD_NEWTON, w, &res);
	prm_interrupt_hook = NULL;
	UnitCheck(interrupt_calls > 10, "the interrupt hook ran %d times",
			  interrupt_calls);
	free(z);
}

/*
 * Above 4 x 65536 rows the curvature comes from a hashed sample: the
 * optimum must not change, nor depend on the order of the rows.
 */
static void
TestSampledCurvature(void)
{
	int64_t		n = 300000;
	int			d = 6;
	double		wtrue[6] = {1.0, -0.5, 0.25, 0.0, 2.0, -1.0};
	double	   *z = MakeComparisons(n, d, wtrue, 11, 0.0);
	double	   *zrev = malloc(sizeof(double) * n * d);
	double		w1[6],
				w2[6],
				w3[6];
	PrmBtlResult r1,
				r2,
				r3;
	PrmBtlProblem p = {n, d, z, NULL, 1.0};
	PrmBtlProblem prev = {n, d, zrev, NULL, 1.0};
	double		gnorm;

	/* the same rows in reverse order */
	for (int64_t k = 0; k < n; k++)
		memcpy(zrev + k * d, z + (n - 1 - k) * d, sizeof(double) * d);
	Solve(&p, PRM_METHOD_NEWTON, w1, &r1);
	Solve(&prev, PRM_METHOD_NEWTON, w2, &r2);
	Solve(&p, PRM_METHOD_NEWTON_CG, w3, &r3);
	gnorm = FiniteDifferenceGradNorm(&p, w1);
	UnitCheck(r1.converged && gnorm < 1e-3,
			  "sampled curvature: converged, finite-difference gradient "
			  "%.1e is zero", gnorm);
	UnitCheck(UnitRelDiff(w1, w2, d) < 1e-12,
			  "sampled curvature: row order does not matter (diff %.1e)",
			  UnitRelDiff(w1, w2, d));
	UnitCheck(UnitRelDiff(w1, w3, d) < 1e-7,
			  "sampled curvature: Newton and Newton-CG agree (diff %.1e)",
			  UnitRelDiff(w1, w3, d));
	free(z);
	free(zrev);
}

/* log sigmoid(m) in long double, the reference of the products below */
static long double
RefLogSigmoid(double m)
{
	long double e = expl(-fabsl((long double) m));

	return (m < 0 ? (long double) m : 0.0L) - log1pl(e);
}

/*
 * PrmAddLogSigmoid keeps sums of log sigmoids as products: every branch
 * (series near q = 1, products, renormalization, tiny factors, weights)
 * against a long double sum, term by term and over many rows.
 */
static void
TestLogSigmoidSums(void)
{
	const double margins[] = {0.0, 1e-12, -1e-12, 0.3, -0.3, 2.0, -2.0,
		8.3, 8.4, -8.3, 20.0, 40.0, 700.0, -30.0, -230.0, -231.0, -700.0,
	-800.0};
	const double weights[] = {1.0, 0.37, 2.5};
	int			nm = (int) (sizeof(margins) / sizeof(margins[0]));
	double		worst_term = 0.0;
	double		worst_sum = 0.0;
	uint64_t	seed = 11;

	for (int wi = 0; wi < 3; wi++)
		for (int i = 0; i < nm; i++)
		{
			double		m = margins[i];
			double		a = weights[wi];
			double		e = exp(-fabs(m));
			double		prod = 1.0,
						sum = 0.0,
						got;
			long double ref = a * RefLogSigmoid(m);

			PrmAddLogSigmoid(&prod, &sum, m, e, 1.0 / (1.0 + e), a);
			got = PrmLogSigmoidTotal(prod, sum);
			if (ref != 0.0L)
				worst_term = fmax(worst_term,
								  (double) fabsl((got - ref) / ref));
			else if (got != 0.0)
				worst_term = INFINITY;
		}
	UnitCheck(worst_term < 1e-12,
			  "single log sigmoid terms match long double (%.1e)",
			  worst_term);

	/* 100,000 rows: products renormalize many times on the way */
	for (int wi = 0; wi < 2; wi++)
	{
		double		prod = 1.0,
					sum = 0.0,
					got;
		long double ref = 0.0L;

		for (int i = 0; i < 100000; i++)
		{
			double		m = 12.0 * UnitNormal(&seed) - 3.0;
			double		a = wi == 0 ? 1.0 : 0.5 + UnitUniform(&seed);
			double		e = exp(-fabs(m));

			PrmAddLogSigmoid(&prod, &sum, m, e, 1.0 / (1.0 + e), a);
			ref += a * RefLogSigmoid(m);
		}
		got = PrmLogSigmoidTotal(prod, sum);
		worst_sum = fmax(worst_sum, (double) fabsl((got - ref) / ref));
	}
	UnitCheck(worst_sum < 1e-13,
			  "sums of 100,000 log sigmoids match long double (%.1e)",
			  worst_sum);
}

void
TestBtl(void)
{
	TestLogSigmoidSums();
	TestClosedFormD1();
	TestOptimality(5, 0.0, PRM_METHOD_NEWTON, "Newton");
	TestOptimality(5, 1.0, PRM_METHOD_NEWTON_CG, "Newton-CG");
	TestOptimality(40, 0.1, PRM_METHOD_NEWTON, "Newton");
	TestOptimality(40, 0.1, PRM_METHOD_NEWTON_CG, "Newton-CG");
	TestMethodsAgree(3, 0.0, 0.4);
	TestMethodsAgree(64, 1.0, 0.0);
	TestMethodsAgree(300, 1.0, 0.1);
	TestWeightsEqualDuplicates();
	TestFailureModes();
	TestInterruptHook();
	TestSampledCurvature();
}
