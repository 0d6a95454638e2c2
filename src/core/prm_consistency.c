/*
 * prm_consistency.c
 *	  Exact binomial and hypergeometric probabilities and the consistency
 *	  tests that classify a rater's answers to re-asked pairs.
 *
 * Binomial probabilities use Loader's saddle-point form ("Fast and accurate
 * computation of binomial probabilities", 2000): log P(X = k) is built from
 * Stirling-series remainders and a deviance term that is computed without
 * cancellation, so it keeps full relative accuracy for n up to 10^6 and
 * beyond, far into the tails where exp() would underflow. A tail is summed
 * outward from its largest term by the ratio of successive terms, in units
 * of that term, so the sum never underflows either.
 */
#include "prm_consistency.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* log(2 pi) */
#define LOG_2PI 1.837877066409345483560659472811

/* A tail sum stops when a term adds less than this share to it */
#define TAIL_EPS 1e-17

/* Loop iterations between interrupt checks */
#define CHECK_EVERY 65536

/*
 * log(n!) - log(sqrt(2 pi n) (n / e)^n) for n = 0..15; the unit tests
 * check these against lgamma
 */
static const double stirling_error_table[16] = {
	0.0,
	0.0810614667953272582196702,
	0.0413406959554092940938221,
	0.02767792568499833914878929,
	0.02079067210376509311152277,
	0.01664469118982119216319487,
	0.01387612882307074799874573,
	0.01189670994589177009505572,
	0.010411265261972096497478567,
	0.009255462182712732917728637,
	0.008330563433362871256469318,
	0.007573675487951840794972024,
	0.006942840107209529865664152,
	0.006408994188004207068439631,
	0.005951370112758847735624416,
	0.005554733551962801371038690
};

/* Remainder of Stirling's series for log(n!), n >= 0 an integer */
static double
StirlingError(double n)
{
	const double s0 = 1.0 / 12,
				s1 = 1.0 / 360,
				s2 = 1.0 / 1260,
				s3 = 1.0 / 1680,
				s4 = 1.0 / 1188;
	double		nn = n * n;

	if (n <= 15)
		return stirling_error_table[(int) n];
	if (n > 500)
		return (s0 - s1 / nn) / n;
	if (n > 80)
		return (s0 - (s1 - s2 / nn) / nn) / n;
	if (n > 35)
		return (s0 - (s1 - (s2 - s3 / nn) / nn) / nn) / n;
	return (s0 - (s1 - (s2 - (s3 - s4 / nn) / nn) / nn) / nn) / n;
}

/* Deviance x log(x / m) + m - x, without cancellation when x is near m */
static double
Deviance(double x, double m)
{
	if (fabs(x - m) < 0.1 * (x + m))
	{
		double		v = (x - m) / (x + m);
		double		s = (x - m) * v;
		double		ej = 2 * x * v;
		double		v2 = v * v;

		for (int j = 1; j < 1000; j++)
		{
			double		s1;

			ej *= v2;
			s1 = s + ej / (2 * j + 1);
			if (s1 == s)
				return s1;
			s = s1;
		}
		return s;
	}
	return x * log(x / m) + m - x;
}

/* log P(X = k) for X ~ Bin(n, p) */
double
PrmBinomialLogPmf(int64_t k, int64_t n, double p)
{
	double		q = 1.0 - p;
	double		x = (double) k,
				nn = (double) n;
	double		lc;

	if (k < 0 || k > n)
		return -INFINITY;
	if (p <= 0.0)
		return k == 0 ? 0.0 : -INFINITY;
	if (p >= 1.0)
		return k == n ? 0.0 : -INFINITY;
	if (k == 0)
		return p < 0.1 ? -Deviance(nn, nn * q) - nn * p : nn * log1p(-p);
	if (k == n)
		return q < 0.1 ? -Deviance(nn, nn * p) - nn * q : nn * log(p);

	lc = StirlingError(nn) - StirlingError(x) - StirlingError(nn - x)
		- Deviance(x, nn * p) - Deviance(nn - x, nn * q);
	return lc - 0.5 * (LOG_2PI + log(x) + log1p(-x / nn));
}

/*
 * log of the sum of P(X = i) for i from k away from the mode (step +1 or
 * -1), where the terms only decrease
 */
static double
LogDecreasingSum(int64_t k, int64_t n, double p, int step)
{
	double		odds = p / (1.0 - p);
	double		term = 1.0;
	double		sum = 1.0;
	int64_t		i = k;

	while (step > 0 ? i < n : i > 0)
	{
		if (step > 0)
			term *= (double) (n - i) / (double) (i + 1) * odds;
		else
			term *= (double) i / (double) (n - i + 1) / odds;
		i += step;
		sum += term;
		if (term < TAIL_EPS * sum)
			break;
		if ((i & (CHECK_EVERY - 1)) == 0)
			PrmCheckInterrupts();
	}
	return PrmBinomialLogPmf(k, n, p) + log(sum);
}

/*
 * log P(X >= k). Above the mode the terms decrease from k upward and are
 * summed directly; at or below it the upper tail holds most of the mass
 * and is one minus the lower tail, whose terms decrease from k - 1 down.
 */
double
PrmBinomialLogUpper(int64_t k, int64_t n, double p)
{
	int64_t		mode;

	if (k <= 0)
		return 0.0;
	if (k > n || p <= 0.0)
		return -INFINITY;
	if (p >= 1.0)
		return 0.0;

	mode = (int64_t) floor(((double) n + 1.0) * p);
	if (mode > n)
		mode = n;
	if (k > mode)
		return LogDecreasingSum(k, n, p, +1);
	return log1p(-exp(LogDecreasingSum(k - 1, n, p, -1)));
}

/* P(X >= k) */
double
PrmBinomialUpper(int64_t k, int64_t n, double p)
{
	return exp(PrmBinomialLogUpper(k, n, p));
}

/*
 * log P(X = x) for the hypergeometric count in a stratum, as a ratio of
 * binomial probabilities with p = draws / n (the ratio does not depend on
 * p; this choice keeps every factor near its mode)
 */
double
PrmHypergeometricLogPmf(int64_t x, const PrmStratum *s)
{
	double		p;

	if (x < 0 || x > s->draws || x > s->successes ||
		s->draws - x > s->n - s->successes)
		return -INFINITY;
	if (s->draws == 0 || s->draws == s->n)
		return 0.0;
	p = (double) s->draws / (double) s->n;
	return PrmBinomialLogPmf(x, s->successes, p)
		+ PrmBinomialLogPmf(s->draws - x, s->n - s->successes, p)
		- PrmBinomialLogPmf(s->draws, s->n, p);
}

/* Smallest and largest possible counts of a stratum */
static void
StratumRange(const PrmStratum *s, int64_t *lo, int64_t *hi)
{
	int64_t		l = s->draws + s->successes - s->n;

	*lo = l > 0 ? l : 0;
	*hi = s->draws < s->successes ? s->draws : s->successes;
}

/* Workspace of the exact test: two distributions of the statistic */
size_t
PrmStratifiedWorkspaceSize(void)
{
	return 2 * (PRM_CONSISTENCY_EXACT_LIMIT + 1) * sizeof(double);
}

/* Two-sided p-value from the normal approximation, continuity corrected */
static double
StratifiedNormal(const PrmStratum *strata, int64_t count)
{
	double		mean = 0.0,
				var = 0.0,
				t = 0.0,
				dev;

	for (int64_t i = 0; i < count; i++)
	{
		const PrmStratum *s = &strata[i];
		double		n = (double) s->n;

		if (s->n < 2)
			continue;
		mean += (double) s->successes * s->draws / n;
		var += (double) s->successes * (n - s->successes) * s->draws
			* (n - s->draws) / (n * n * (n - 1));
		t += (double) s->observed;
	}
	dev = fabs(t - mean) - 0.5;
	if (var <= 0.0 || dev <= 0.0)
		return 1.0;
	return erfc(dev / sqrt(2.0 * var));
}

/*
 * Exact conditional test of no association within strata. Given each
 * stratum's margins, its count is hypergeometric under the null; the
 * distribution of their sum is the convolution of these, built one
 * informative stratum at a time. The two-sided p-value doubles the smaller
 * tail (capped at 1).
 */
double
PrmStratifiedTest(const PrmStratum *strata, int64_t count, void *work,
				  int *exact)
{
	double	   *cur = (double *) work;
	double	   *next = cur + PRM_CONSISTENCY_EXACT_LIMIT + 1;
	int64_t		support = 0,
				size = 0,
				tobs = 0;
	double		upper = 0.0,
				lower = 0.0;

	*exact = 1;
	for (int64_t i = 0; i < count; i++)
	{
		int64_t		lo,
					hi;

		StratumRange(&strata[i], &lo, &hi);
		support += hi - lo;
		tobs += strata[i].observed - lo;
	}
	if (support == 0)
		return 1.0;
	if (support > PRM_CONSISTENCY_EXACT_LIMIT)
	{
		*exact = 0;
		return StratifiedNormal(strata, count);
	}

	cur[0] = 1.0;
	for (int64_t i = 0; i < count; i++)
	{
		int64_t		lo,
					hi;
		double	   *swap;

		StratumRange(&strata[i], &lo, &hi);
		if (hi == lo)
			continue;
		memset(next, 0, sizeof(double) * (size + hi - lo + 1));
		for (int64_t x = lo; x <= hi; x++)
		{
			double		px = exp(PrmHypergeometricLogPmf(x, &strata[i]));

			for (int64_t t = 0; t <= size; t++)
				next[t + x - lo] += cur[t] * px;
		}
		size += hi - lo;
		swap = cur;
		cur = next;
		next = swap;
		PrmCheckInterrupts();
	}

	/* each tail summed from its far end, smallest terms first */
	for (int64_t t = size; t >= tobs; t--)
		upper += cur[t];
	for (int64_t t = 0; t <= tobs; t++)
		lower += cur[t];
	return fmin(1.0, 2.0 * fmin(upper, lower));
}

/* P(min(K, n - K) = j) for K ~ Bin(n, 1/2) */
static double
CoinMinorityPmf(int64_t j, int64_t n)
{
	double		p = exp(PrmBinomialLogPmf(j, n, 0.5));

	return 2 * j == n ? p : 2.0 * p;
}

/* P(M <= observed) from the normal approximation, continuity corrected */
static double
CoinMinorityNormal(const PrmStratum *strata, int64_t count, int64_t observed)
{
	double		mean = 0.0,
				var = 0.0;

	for (int64_t i = 0; i < count; i++)
	{
		int64_t		n = strata[i].n;
		double		m1 = 0.0,
					m2 = 0.0;

		if (n < 2)
			continue;
		for (int64_t j = 0; 2 * j <= n; j++)
		{
			double		pj = CoinMinorityPmf(j, n);

			m1 += j * pj;
			m2 += (double) j * j * pj;
		}
		mean += m1;
		var += m2 - m1 * m1;
	}
	return 0.5 * erfc((mean - (double) observed - 0.5) / sqrt(2.0 * var));
}

/*
 * Lower tail of the coin's minority count: the convolution of each
 * re-asked pair's distribution of min(K, n - K), as in PrmStratifiedTest
 */
double
PrmCoinMinorityLower(const PrmStratum *strata, int64_t count,
					 int64_t observed, void *work, int *exact)
{
	double	   *cur = (double *) work;
	double	   *next = cur + PRM_CONSISTENCY_EXACT_LIMIT + 1;
	int64_t		support = 0,
				size = 0;
	double		lower = 0.0;

	*exact = 1;
	for (int64_t i = 0; i < count; i++)
		if (strata[i].n >= 2)
			support += strata[i].n / 2;
	if (support == 0 || observed >= support)
		return 1.0;
	if (observed < 0)
		return 0.0;
	if (support > PRM_CONSISTENCY_EXACT_LIMIT)
	{
		*exact = 0;
		return CoinMinorityNormal(strata, count, observed);
	}

	cur[0] = 1.0;
	for (int64_t i = 0; i < count; i++)
	{
		int64_t		n = strata[i].n;
		double	   *swap;

		if (n < 2)
			continue;
		memset(next, 0, sizeof(double) * (size + n / 2 + 1));
		for (int64_t j = 0; 2 * j <= n; j++)
		{
			double		pj = CoinMinorityPmf(j, n);

			for (int64_t t = 0; t <= size; t++)
				next[t + j] += cur[t] * pj;
		}
		size += n / 2;
		swap = cur;
		cur = next;
		next = swap;
		PrmCheckInterrupts();
	}
	for (int64_t t = 0; t <= observed; t++)
		lower += cur[t];
	return fmin(1.0, lower);
}

/* Order asks by pair */
static int
CompareAsks(const void *a, const void *b)
{
	int64_t		x = ((const PrmAsk *) a)->pair;
	int64_t		y = ((const PrmAsk *) b)->pair;

	return (x > y) - (x < y);
}

/* Workspace of PrmConsistencyClassify: one stratum per pair, then the test */
size_t
PrmConsistencyWorkspaceSize(int64_t n)
{
	return (size_t) (n > 0 ? n : 1) * sizeof(PrmStratum)
		+ PrmStratifiedWorkspaceSize();
}

/* Smaller of two counts */
static inline int64_t
Min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

/* Number of unordered pairs of k things */
static double
Choose2(int64_t k)
{
	return 0.5 * (double) k * (double) (k - 1);
}

/* Turn counts and p-values into the kind and weight of the rater */
static void
Decide(const PrmConsistencyOptions *opt, PrmConsistencyResult *res)
{
	if (res->p_condition < opt->alpha)
		res->kind = PRM_KIND_CONSTRUCTED;
	else if (res->p_stable < opt->alpha)
		res->kind = PRM_KIND_NON_ATTITUDE;
	else if (res->p_non_attitude < opt->alpha)
		res->kind = PRM_KIND_STABLE;
	else
		res->kind = PRM_KIND_INSUFFICIENT;
	res->weight = (res->kind == PRM_KIND_STABLE ||
				   res->kind == PRM_KIND_INSUFFICIENT) ? 1.0 : 0.0;
}

/* Classify a rater from their asks */
PrmStatus
PrmConsistencyClassify(PrmAsk *asks, int64_t n,
					   const PrmConsistencyOptions *opt, void *work,
					   PrmConsistencyResult *res)
{
	PrmStratum *strata = (PrmStratum *) work;
	void	   *testwork = (char *) work
		+ (size_t) (n > 0 ? n : 1) * sizeof(PrmStratum);
	int64_t		count = 0;
	double		agree = 0.0,
				couples = 0.0,
				eps = opt->tremble;

	memset(res, 0, sizeof(*res));
	if (n < 1 || !(opt->alpha > 0.0 && opt->alpha < 1.0) ||
		!(eps >= 0.0 && eps < 0.5))
		return PRM_BAD_INPUT;
	for (int64_t i = 0; i < n; i++)
		if ((asks[i].condition != 0 && asks[i].condition != 1) ||
			(asks[i].chose_first != 0 && asks[i].chose_first != 1))
			return PRM_BAD_INPUT;

	qsort(asks, (size_t) n, sizeof(PrmAsk), CompareAsks);

	/* one stratum per pair: the answer is a when the first shown was a */
	for (int64_t i = 0; i < n;)
	{
		int64_t		n0 = 0,
					n1 = 0,
					f0 = 0,
					f1 = 0,
					j = i,
					size,
					chose_a;

		for (; j < n && asks[j].pair == asks[i].pair; j++)
		{
			if (asks[j].condition == 0)
			{
				n0++;
				f0 += asks[j].chose_first;
			}
			else
			{
				n1++;
				f1 += asks[j].chose_first;
			}
			if ((j & (CHECK_EVERY - 1)) == 0)
				PrmCheckInterrupts();
		}
		size = n0 + n1;
		chose_a = f0 + (n1 - f1);
		strata[count].n = size;
		strata[count].successes = chose_a;
		strata[count].draws = n0;
		strata[count].observed = f0;
		count++;
		res->first_shown += f0 + f1;

		if (size >= 2)
		{
			res->pairs_reasked++;
			res->asks_reasked += size;
			res->minority += Min64(chose_a, size - chose_a);
			if (chose_a > 0 && chose_a < size)
				res->inconsistent++;
			agree += Choose2(chose_a) + Choose2(size - chose_a);
			couples += Choose2(size);
		}
		i = j;
	}

	res->asks = n;
	res->pairs = count;
	res->agreement = couples > 0 ? agree / couples : NAN;
	res->first_shown_rate = (double) res->first_shown / (double) n;
	res->p_condition = PrmStratifiedTest(strata, count, testwork,
										 &res->condition_exact);
	res->p_stable = PrmBinomialUpper(res->minority, res->asks_reasked, eps);
	res->p_non_attitude = PrmCoinMinorityLower(strata, count, res->minority,
											   testwork,
											   &res->non_attitude_exact);
	Decide(opt, res);
	return PRM_OK;
}

/* Name of a kind */
const char *
PrmConsistencyKindName(PrmConsistencyKind kind)
{
	switch (kind)
	{
		case PRM_KIND_STABLE:
			return "stable";
		case PRM_KIND_NON_ATTITUDE:
			return "non_attitude";
		case PRM_KIND_CONSTRUCTED:
			return "constructed";
		case PRM_KIND_INSUFFICIENT:
			break;
	}
	return "insufficient";
}
