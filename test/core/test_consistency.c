/*
 * test_consistency.c
 *	  Checks the binomial and hypergeometric probabilities against closed
 *	  forms and brute-force sums, the stratified exact test against full
 *	  enumeration, the rater classification on planted raters, and the
 *	  seeded generator it is tested with.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prm_consistency.h"
#include "prm_random.h"
#include "unit.h"

/* log P(X = k) in long double straight from the definition */
static long double
NaiveLogPmf(int64_t k, int64_t n, double p)
{
	return lgammal(n + 1.0L) - lgammal(k + 1.0L) - lgammal(n - k + 1.0L)
		+ k * logl((long double) p) + (n - k) * log1pl(-(long double) p);
}

/* log P(X >= k) by adding every term in long double, largest first */
static long double
NaiveLogUpper(int64_t k, int64_t n, double p)
{
	long double top = -INFINITY,
				sum = 0.0L;

	for (int64_t i = k; i <= n; i++)
	{
		long double l = NaiveLogPmf(i, n, p);

		if (l > top)
			top = l;
	}
	for (int64_t i = n; i >= k; i--)
		sum += expl(NaiveLogPmf(i, n, p) - top);
	return top + logl(sum);
}

/* log of the binomial coefficient as an exact count, for small n */
static double
ExactChoose(int n, int k)
{
	double		c = 1.0;

	if (k < 0 || k > n)
		return 0.0;
	for (int i = 1; i <= k; i++)
		c = c * (n - k + i) / i;
	return c;
}

/* Binomial probabilities against closed forms and brute-force sums */
static void
TestBinomial(void)
{
	static const double ps[] = {1e-6, 0.01, 0.3, 0.5, 0.9, 0.999};
	static const int64_t ns[] = {1, 2, 7, 15, 16, 50, 81, 501, 1000};
	double		worst = 0.0,
				total;
	long double lm,
				half;

	/* every term for small and moderate n, all six values of p */
	for (int a = 0; a < 9; a++)
		for (int b = 0; b < 6; b++)
			for (int64_t k = 0; k <= ns[a]; k++)
			{
				long double naive = NaiveLogPmf(k, ns[a], ps[b]);
				double		got = PrmBinomialLogPmf(k, ns[a], ps[b]);
				double		err = fabs((double) (got - naive))
					/ fmax(1.0, fabs((double) naive));

				if (err > worst)
					worst = err;
			}
	UnitCheck(worst < 1e-12,
			  "binomial log pmf matches lgammal for n <= 1000 (worst %.1e)",
			  worst);

	total = 0.0;
	for (int64_t k = 0; k <= 1000; k++)
		total += exp(PrmBinomialLogPmf(k, 1000, 0.3));
	UnitCheck(fabs(total - 1.0) < 1e-13,
			  "binomial pmf over 0..1000 sums to 1 (off by %.1e)",
			  fabs(total - 1.0));

	/* every upper tail against the brute-force sum */
	worst = 0.0;
	for (int a = 0; a < 9; a++)
		for (int b = 0; b < 6; b++)
			for (int64_t k = 1; k <= ns[a]; k++)
			{
				long double naive = NaiveLogUpper(k, ns[a], ps[b]);
				double		got = PrmBinomialLogUpper(k, ns[a], ps[b]);
				double		err = fabs((double) (got - naive))
					/ fmax(1.0, fabs((double) naive));

				if (err > worst)
					worst = err;
			}
	UnitCheck(worst < 1e-11,
			  "binomial log upper tail matches a brute-force sum (worst %.1e)",
			  worst);

	UnitCheck(PrmBinomialLogUpper(0, 10, 0.3) == 0.0 &&
			  PrmBinomialLogUpper(-3, 10, 0.3) == 0.0,
			  "P(X >= 0) = 1");
	UnitCheck(isinf(PrmBinomialLogUpper(11, 10, 0.3)) &&
			  PrmBinomialUpper(11, 10, 0.3) == 0.0,
			  "P(X >= n + 1) = 0");
	UnitCheck(PrmBinomialUpper(1, 10, 0.0) == 0.0 &&
			  PrmBinomialUpper(10, 10, 1.0) == 1.0,
			  "p = 0 and p = 1 are degenerate");
	UnitCheck(fabs(PrmBinomialUpper(1, 40, 0.05)
				   - (1.0 - pow(0.95, 40))) < 1e-15,
			  "P(X >= 1) = 1 - (1 - p)^n");

	/* n = 10^6: the far tail in logs, where exp() underflows */
	UnitCheck(fabs(PrmBinomialLogUpper(1000000, 1000000, 0.5)
				   - 1e6 * log(0.5)) < 1e-9 * 1e6 * log(2.0),
			  "n = 10^6: log P(X >= n) = n log p");
	UnitCheck(fabs(PrmBinomialLogUpper(999999, 1000000, 0.5)
				   - (log(1e6 + 1) + 1e6 * log(0.5))) < 1e-9 * 1e6,
			  "n = 10^6: log P(X >= n - 1) = log(n + 1) + n log p");
	{
		double		got = PrmBinomialLogUpper(700000, 1000000, 0.5);
		long double naive = NaiveLogUpper(700000, 1000000, 0.5);

		UnitCheck(fabs((double) (got - naive)) < 1e-10 * fabs((double) naive),
				  "n = 10^6: log P(X >= 700000) = %.6f matches %.6Lf",
				  got, naive);
	}

	/* n = 10^6, p = 1/2: the upper tail from k = n/2 is (1 + P(X = k)) / 2 */
	lm = NaiveLogPmf(500000, 1000000, 0.5);
	half = 0.5L + 0.5L * expl(lm);
	UnitCheck(fabs(PrmBinomialUpper(500000, 1000000, 0.5) - (double) half)
			  < 1e-12,
			  "n = 10^6: P(X >= n/2) = (1 + P(X = n/2)) / 2 = %.12Lf", half);
	UnitCheck(fabs(PrmBinomialUpper(500001, 1000000, 0.5)
				   - (double) (1.0L - half)) < 1e-12,
			  "n = 10^6: P(X > n/2) = (1 - P(X = n/2)) / 2");

	/* symmetry: P(X >= k; p) + P(X >= n - k + 1; 1 - p) = 1 */
	worst = 0.0;
	for (int64_t k = 299000; k <= 302000; k += 250)
	{
		double		s = PrmBinomialUpper(k, 1000000, 0.3)
			+ PrmBinomialUpper(1000000 - k + 1, 1000000, 0.7);

		if (fabs(s - 1.0) > worst)
			worst = fabs(s - 1.0);
	}
	UnitCheck(worst < 1e-11,
			  "n = 10^6: upper tails of p and 1 - p add up to 1 (off by %.1e)",
			  worst);
}

/* Hypergeometric probabilities against exact counts */
static void
TestHypergeometric(void)
{
	double		worst = 0.0;

	for (int n = 1; n <= 12; n++)
		for (int succ = 0; succ <= n; succ++)
			for (int draws = 0; draws <= n; draws++)
				for (int x = 0; x <= draws; x++)
				{
					PrmStratum s = {n, succ, draws, x};
					double		want = ExactChoose(succ, x)
						* ExactChoose(n - succ, draws - x)
						/ ExactChoose(n, draws);
					double		got = exp(PrmHypergeometricLogPmf(x, &s));
					double		err = fabs(got - want) / fmax(want, 1e-300);

					if (want == 0.0)
						err = got;
					if (err > worst)
						worst = err;
				}
	UnitCheck(worst < 1e-12,
			  "hypergeometric pmf matches exact counts for n <= 12 (%.1e)",
			  worst);
}

/*
 * Two-sided p-value of the stratified test by enumeration: in each stratum
 * count the subsets of its asks that could have been the condition-0 asks,
 * by how many of them chose a, then run over every combination of strata
 */
static double
EnumeratedStratifiedP(const PrmStratum *strata, int count)
{
	double		ways[4][8] = {{0}};
	int			v[4] = {0};
	double		total = 0.0,
				upper = 0.0,
				lower = 0.0;
	int64_t		tobs = 0;

	/* the first `successes` asks of a stratum are those that chose a */
	for (int i = 0; i < count; i++)
	{
		tobs += strata[i].observed;
		for (int mask = 0; mask < (1 << strata[i].n); mask++)
			if (__builtin_popcount(mask) == strata[i].draws)
				ways[i][__builtin_popcount(mask &
										   ((1 << strata[i].successes) - 1))]
					+= 1.0;
	}

	/* odometer over the counts of every stratum */
	for (;;)
	{
		double		w = 1.0;
		int64_t		t = 0;
		int			i;

		for (i = 0; i < count; i++)
		{
			w *= ways[i][v[i]];
			t += v[i];
		}
		total += w;
		if (t >= tobs)
			upper += w;
		if (t <= tobs)
			lower += w;
		for (i = 0; i < count; i++)
		{
			if (++v[i] <= strata[i].n)
				break;
			v[i] = 0;
		}
		if (i == count)
			break;
	}
	return fmin(1.0, 2.0 * fmin(upper, lower) / total);
}

/* The stratified exact test against enumeration and a textbook value */
static void
TestStratified(void)
{
	void	   *work = malloc(PrmStratifiedWorkspaceSize());
	uint64_t	seed = 12345;
	double		worst = 0.0;
	int			exact;

	/* Fisher's tea tasting: 3 of 4 cups right, two-sided p = 2 * 17/70 */
	{
		PrmStratum tea = {8, 4, 4, 3};
		double		p = PrmStratifiedTest(&tea, 1, work, &exact);

		UnitCheck(fabs(p - 34.0 / 70.0) < 1e-14 && exact,
				  "one stratum is Fisher's exact test: tea tasting p = %.6f",
				  p);
	}

	for (int trial = 0; trial < 200; trial++)
	{
		PrmStratum strata[4];
		int			count = 1 + trial % 4;
		double		got,
					want;

		for (int i = 0; i < count; i++)
		{
			int			n = 1 + (int) (UnitUniform(&seed) * 6);
			int			succ = (int) (UnitUniform(&seed) * (n + 1));
			int			draws = (int) (UnitUniform(&seed) * (n + 1));
			int			lo = draws + succ - n > 0 ? draws + succ - n : 0;
			int			hi = draws < succ ? draws : succ;

			strata[i].n = n;
			strata[i].successes = succ;
			strata[i].draws = draws;
			strata[i].observed = lo
				+ (int) (UnitUniform(&seed) * (hi - lo + 1));
		}
		got = PrmStratifiedTest(strata, count, work, &exact);
		want = EnumeratedStratifiedP(strata, count);
		if (fabs(got - want) > worst)
			worst = fabs(got - want);
	}
	UnitCheck(worst < 1e-12,
			  "stratified exact test matches enumeration in 200 cases (%.1e)",
			  worst);

	/* no informative stratum: no evidence */
	{
		PrmStratum flat[2] = {{5, 5, 3, 3}, {4, 2, 0, 0}};

		UnitCheck(PrmStratifiedTest(flat, 2, work, &exact) == 1.0,
				  "strata with fixed counts give p = 1");
	}

	/* beyond the exact limit the normal approximation stays close */
	{
		int			count = 3000;
		PrmStratum *many = malloc(sizeof(PrmStratum) * count);
		long double *dist = calloc(2 * count + 1, sizeof(long double));
		long double *next = calloc(2 * count + 1, sizeof(long double));
		long double upper = 0.0L;
		int64_t		tobs = 0;
		int			size = 0;
		double		p;

		/* strata of 4 asks, 2 chose a, 2 under condition 0: about 2 sd up */
		for (int i = 0; i < count; i++)
		{
			PrmStratum s = {4, 2, 2, i < 63 ? 2 : 1};

			many[i] = s;
			tobs += s.observed;
		}
		dist[0] = 1.0L;
		for (int i = 0; i < count; i++)
		{
			/* pmf of the count: 1/6, 4/6, 1/6 */
			memset(next, 0, sizeof(long double) * (size + 3));
			for (int t = 0; t <= size; t++)
			{
				next[t] += dist[t] / 6.0L;
				next[t + 1] += dist[t] * 4.0L / 6.0L;
				next[t + 2] += dist[t] / 6.0L;
			}
			size += 2;
			memcpy(dist, next, sizeof(long double) * (size + 1));
		}
		for (int t = size; t >= tobs; t--)
			upper += dist[t];
		p = PrmStratifiedTest(many, count, work, &exact);
		UnitCheck(!exact && fabs(p - 2.0 * (double) upper) < 0.02 * p,
				  "large problems use the normal approximation: %.5f vs "
				  "exact %.5f", p, 2.0 * (double) upper);
		free(many);
		free(dist);
		free(next);
	}
	free(work);
}

/*
 * The coin's minority count against enumeration of every answer pattern,
 * and its normal approximation against an exact convolution
 */
static void
TestCoinMinority(void)
{
	void	   *work = malloc(PrmStratifiedWorkspaceSize());
	static const int sizes[][4] = {{2, 0, 0, 0}, {5, 0, 0, 0}, {4, 4, 0, 0},
	{3, 2, 6, 1}, {5, 5, 5, 0}, {2, 3, 4, 7}};
	double		worst = 0.0;
	int			exact;

	for (int c = 0; c < 6; c++)
	{
		PrmStratum strata[4] = {{0}};
		int			total = 0;
		double		counts[64] = {0};

		for (int i = 0; i < 4; i++)
		{
			strata[i].n = sizes[c][i];
			total += sizes[c][i];
		}

		/* every pattern of answers, bit b = the answer of ask b */
		for (int mask = 0; mask < (1 << total); mask++)
		{
			int			m = 0,
						offset = 0;

			for (int i = 0; i < 4; i++)
			{
				int			n = sizes[c][i];
				int			k = __builtin_popcount((mask >> offset) &
												   ((1 << n) - 1));

				if (n >= 2)
					m += k < n - k ? k : n - k;
				offset += n;
			}
			counts[m] += 1.0;
		}
		for (int obs = 0; obs < 32; obs++)
		{
			double		want = 0.0,
						got = PrmCoinMinorityLower(strata, 4, obs, work,
												   &exact);

			for (int m = 0; m <= obs; m++)
				want += counts[m];
			want /= (double) (1 << total);
			if (fabs(got - want) > worst)
				worst = fabs(got - want);
		}
	}
	UnitCheck(worst < 1e-14,
			  "coin minority count matches enumeration of every answer "
			  "pattern (%.1e)", worst);

	/* 3000 pairs of 4 asks: support 6000, beyond the exact limit */
	{
		int			count = 3000;
		PrmStratum *many = calloc(count, sizeof(PrmStratum));
		long double *dist = calloc(2 * count + 1, sizeof(long double));
		long double *next = calloc(2 * count + 1, sizeof(long double));
		long double lower = 0.0L;
		int			size = 0,
					obs = 3750 - 60;
		double		p;

		/* min(K, 4 - K): 0 w.p. 2/16, 1 w.p. 8/16, 2 w.p. 6/16; mean 1.25 */
		for (int i = 0; i < count; i++)
			many[i].n = 4;
		dist[0] = 1.0L;
		for (int i = 0; i < count; i++)
		{
			memset(next, 0, sizeof(long double) * (size + 3));
			for (int t = 0; t <= size; t++)
			{
				next[t] += dist[t] * 2.0L / 16.0L;
				next[t + 1] += dist[t] * 8.0L / 16.0L;
				next[t + 2] += dist[t] * 6.0L / 16.0L;
			}
			size += 2;
			memcpy(dist, next, sizeof(long double) * (size + 1));
		}
		for (int t = 0; t <= obs; t++)
			lower += dist[t];
		p = PrmCoinMinorityLower(many, count, obs, work, &exact);
		UnitCheck(!exact && fabs(p - (double) lower) < 0.02 * p,
				  "large coin minority tails use the normal approximation: "
				  "%.5f vs exact %.5f", p, (double) lower);
		free(many);
		free(dist);
		free(next);
	}
	free(work);
}

/* Planted rater kinds */
enum
{
	PLANT_STABLE,
	PLANT_COIN,
	PLANT_FIRST,
	PLANT_SECOND
};

/*
 * Asks of a planted rater: pairs x asks, conditions alternating from a
 * random start; stable raters repeat a fixed answer (flipped with
 * probability tremble), coins toss at every ask, FIRST picks the first
 * shown with probability 0.9, SECOND the second shown always
 */
static void
PlantRater(PrmAsk *asks, int pairs, int reasks, int kind, double tremble,
		   PrmRandom *r)
{
	for (int p = 0; p < pairs; p++)
	{
		int			start = PrmRandomUniform(r) < 0.5;
		int			pref_a = PrmRandomUniform(r) < 0.5;

		for (int k = 0; k < reasks; k++)
		{
			PrmAsk	   *a = &asks[p * reasks + k];
			int			cond = (start + k) % 2;
			int			chose_a;

			if (kind == PLANT_STABLE)
				chose_a = PrmRandomUniform(r) < tremble ? !pref_a : pref_a;
			else if (kind == PLANT_COIN)
				chose_a = PrmRandomUniform(r) < 0.5;
			else if (kind == PLANT_FIRST)
				chose_a = (PrmRandomUniform(r) < 0.9) == (cond == 0);
			else
				chose_a = cond == 1;
			a->pair = 1000 + (p * 7919) % pairs;	/* out of order */
			a->condition = cond;
			a->chose_first = chose_a == (cond == 0);
		}
	}
}

/* Classification of planted raters and the counts it reports */
static void
TestClassify(void)
{
	PrmConsistencyOptions opt = {PRM_CONSISTENCY_DEFAULT_ALPHA,
	PRM_CONSISTENCY_DEFAULT_TREMBLE};
	PrmConsistencyResult res;
	PrmAsk		asks[400];
	void	   *work = malloc(PrmConsistencyWorkspaceSize(400));
	PrmRandom	r;
	int			right[4] = {0},
				wrong_constructed = 0,
				trials = 500;

	PrmRandomSeed(&r, 7, 0);

	/* a stable rater without trembles: counts and p-values by hand */
	PlantRater(asks, 10, 4, PLANT_STABLE, 0.0, &r);
	PrmConsistencyClassify(asks, 40, &opt, work, &res);
	UnitCheck(res.asks == 40 && res.pairs == 10 && res.pairs_reasked == 10 &&
			  res.asks_reasked == 40 && res.inconsistent == 0 &&
			  res.minority == 0 && res.agreement == 1.0 &&
			  res.first_shown == 20,
			  "stable rater: 40 asks, 10 pairs, none inconsistent, "
			  "first shown chosen 20 times");
	UnitCheck(fabs(res.p_non_attitude - pow(1.0 / 8.0, 10)) < 1e-22 &&
			  res.p_stable == 1.0 && res.p_condition == 1.0 &&
			  res.kind == PRM_KIND_STABLE && res.weight == 1.0,
			  "stable rater: p_non_attitude = (1/8)^10, kind stable, "
			  "weight 1");

	/* one pair asked five times cannot beat alpha = 0.01: 1/16 > 0.01 */
	PlantRater(asks, 1, 5, PLANT_STABLE, 0.0, &r);
	PrmConsistencyClassify(asks, 5, &opt, work, &res);
	UnitCheck(res.kind == PRM_KIND_INSUFFICIENT && res.weight == 1.0 &&
			  fabs(res.p_non_attitude - 1.0 / 16.0) < 1e-15,
			  "one consistent pair of 5 asks: insufficient (p = 1/16)");

	/* always the second shown: the exact p-value from 10 Fisher strata */
	PlantRater(asks, 10, 4, PLANT_SECOND, 0.0, &r);
	PrmConsistencyClassify(asks, 40, &opt, work, &res);
	UnitCheck(res.kind == PRM_KIND_CONSTRUCTED && res.first_shown == 0 &&
			  res.inconsistent == 10 && res.minority == 20 &&
			  res.agreement == 2.0 / 6.0 &&
			  fabs(res.p_condition - 2.0 * pow(1.0 / 6.0, 10)) < 1e-20,
			  "always the second shown: constructed, p = 2 (1/6)^10");

	/* agreement of mixed answers: pair of 4 asks with 3 a and 1 b */
	{
		PrmAsk		mix[4] = {{1, 0, 1}, {1, 1, 0}, {1, 0, 1}, {1, 1, 1}};

		PrmConsistencyClassify(mix, 4, &opt, work, &res);
		UnitCheck(res.inconsistent == 1 && res.minority == 1 &&
				  fabs(res.agreement - 3.0 / 6.0) < 1e-15,
				  "3 answers a and 1 b: 1 minority answer, 3 of 6 couples "
				  "of asks agree");
	}

	/*
	 * one pair asked 12 times, 4 answers against the majority, unrelated to
	 * the condition: p_stable = P(Bin(12, 0.05) >= 4) by the closed form
	 */
	{
		PrmAsk		twelve[12];
		double		below = 0.0;

		for (int k = 0; k < 12; k++)
		{
			int			chose_a = k == 0 || k == 3 || k == 4 || k == 7;

			twelve[k].pair = 5;
			twelve[k].condition = k % 2;
			twelve[k].chose_first = chose_a == (k % 2 == 0);
		}
		for (int i = 0; i < 4; i++)
			below += ExactChoose(12, i) * pow(0.05, i) * pow(0.95, 12 - i);
		PrmConsistencyClassify(twelve, 12, &opt, work, &res);
		UnitCheck(res.minority == 4 && res.asks_reasked == 12 &&
				  fabs(res.p_stable - (1.0 - below)) < 1e-14 &&
				  res.kind == PRM_KIND_NON_ATTITUDE && res.weight == 0.0,
				  "12 asks with 4 minority answers: p_stable = %.6f = "
				  "P(Bin(12, 0.05) >= 4), non_attitude", res.p_stable);
	}

	/* many planted raters: 4 re-asks of 10 pairs, 2.5% trembles */
	for (int t = 0; t < trials; t++)
		for (int kind = 0; kind < 3; kind++)
		{
			PlantRater(asks, 10, 4, kind, 0.025, &r);
			PrmConsistencyClassify(asks, 40, &opt, work, &res);
			if ((kind == PLANT_STABLE && res.kind == PRM_KIND_STABLE) ||
				(kind == PLANT_COIN && res.kind == PRM_KIND_NON_ATTITUDE) ||
				(kind == PLANT_FIRST && res.kind == PRM_KIND_CONSTRUCTED))
				right[kind]++;
			if (kind == PLANT_COIN && res.kind == PRM_KIND_CONSTRUCTED)
				wrong_constructed++;
		}
	UnitCheck(right[0] >= 0.95 * trials && right[1] >= 0.95 * trials &&
			  right[2] >= 0.90 * trials,
			  "planted raters, 10 pairs x 4 asks: %d, %d, %d of %d stable, "
			  "non-attitude, constructed classified right",
			  right[0], right[1], right[2], trials);

	/*
	 * The condition test keeps its level for coin tossers: at most alpha in
	 * expectation, here with 3 standard errors of slack
	 */
	UnitCheck(wrong_constructed <= trials * 0.01 +
			  3 * sqrt(trials * 0.01 * 0.99),
			  "coin tossers called constructed %d of %d times (alpha 0.01)",
			  wrong_constructed, trials);

	/* bad input */
	{
		PrmAsk		bad[1] = {{1, 2, 1}};
		PrmConsistencyOptions badopt = {0.0, 0.05};

		UnitCheck(PrmConsistencyClassify(bad, 1, &opt, work, &res)
				  == PRM_BAD_INPUT &&
				  PrmConsistencyClassify(asks, 4, &badopt, work, &res)
				  == PRM_BAD_INPUT,
				  "a condition other than 0 or 1, or alpha = 0, is bad input");
	}
	free(work);
}

/* The seeded generator: reference values, moments and the permutation */
static void
TestRandom(void)
{
	PrmRandom	r = {{1, 2, 3, 4}, 0, 0.0};
	PrmRandom	r1,
				r2;
	double		mean = 0.0,
				var = 0.0;
	int			n = 200000,
				same = 1,
				bijective = 1;
	uint64_t	first = PrmRandomNext(&r);

	/* xoshiro256** from the state {1, 2, 3, 4}: rotl(2 * 5, 7) * 9 */
	UnitCheck(first == 11520 && PrmRandomNext(&r) == 0 &&
			  PrmRandomNext(&r) == 1509978240ULL,
			  "xoshiro256** from {1, 2, 3, 4} gives 11520, 0, 1509978240");

	PrmRandomSeed(&r1, 42, 9);
	PrmRandomSeed(&r2, 42, 9);
	for (int i = 0; i < 1000; i++)
		same &= PrmRandomNext(&r1) == PrmRandomNext(&r2);
	PrmRandomSeed(&r2, 42, 10);
	UnitCheck(same && PrmRandomNext(&r1) != PrmRandomNext(&r2),
			  "the same seed and stream repeat, another stream differs");

	PrmRandomSeed(&r, 1, 1);
	for (int i = 0; i < n; i++)
	{
		double		z = PrmRandomNormal(&r);

		mean += z;
		var += z * z;
	}
	mean /= n;
	var = var / n - mean * mean;
	UnitCheck(fabs(mean) < 4.0 / sqrt(n) &&
			  fabs(var - 1.0) < 4.0 * sqrt(2.0 / n),
			  "normal draws: mean %.4f, variance %.4f", mean, var);

	for (uint64_t size = 1; size <= 1000 && bijective; size += 37)
	{
		char	   *seen = calloc(size, 1);

		for (uint64_t x = 0; x < size; x++)
		{
			uint64_t	y = PrmPermute(x, size, size * 3 + 1);

			if (y >= size || seen[y])
				bijective = 0;
			else
				seen[y] = 1;
		}
		free(seen);
	}
	UnitCheck(bijective, "PrmPermute is a bijection of [0, n)");
}

/* Run the consistency tests */
void
TestConsistency(void)
{
	TestRandom();
	TestBinomial();
	TestHypergeometric();
	TestStratified();
	TestCoinMinority();
	TestClassify();
}
