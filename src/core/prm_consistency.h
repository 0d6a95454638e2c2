/*
 * prm_consistency.h
 *	  Tell genuine preferences from non-attitudes and constructed answers
 *	  when a rater judged the same pairs more than once.
 *
 * Each ask records the pair, the condition it was asked under (0: response
 * a of the pair was shown first, 1: response b was) and whether the rater
 * chose the response shown first. From these the rater's answer to the pair
 * (a or b) follows. Three tests, each at level alpha, classify a rater:
 *
 * - condition: within each pair, is the answer associated with the
 *	 condition? The exact conditional (stratified Fisher, or exact
 *	 Cochran-Mantel-Haenszel) test, pairs as strata, two-sided. Its null
 *	 holds for stable raters and non-attitudes alike, whatever the design.
 * - stable: are there more minority answers (answers that differ from the
 *	 majority answer to their pair) than a stable rater would give, who
 *	 gives the answer they do not hold at each ask with probability
 *	 tremble? A minority answer is always a contrary one, so the count is
 *	 at most Bin(asks of re-asked pairs, tremble) under this null: exact
 *	 binomial upper tail.
 * - non-attitude: are there fewer minority answers than a rater tossing a
 *	 fair coin at every ask would give? The exact lower tail of the sum,
 *	 over re-asked pairs, of min(K, n - K) with K ~ Bin(n, 1/2).
 *
 * The rater is constructed if the condition test rejects; otherwise a
 * non-attitude if the stable test rejects; otherwise stable if the
 * non-attitude test rejects; otherwise the evidence is insufficient.
 */
#ifndef PRM_CONSISTENCY_H
#define PRM_CONSISTENCY_H

#include "prm_core.h"

/* One ask of a pair */
typedef struct PrmAsk
{
	int64_t		pair;
	int32_t		condition;		/* 0: a shown first, 1: b shown first */
	int32_t		chose_first;	/* 1 when the first shown was chosen */
} PrmAsk;

/*
 * One pair as a stratum of the conditional test: of n asks, successes chose
 * response a and draws were asked under condition 0; observed of those
 * draws chose response a.
 */
typedef struct PrmStratum
{
	int64_t		n;
	int64_t		successes;
	int64_t		draws;
	int64_t		observed;
} PrmStratum;

typedef enum PrmConsistencyKind
{
	PRM_KIND_INSUFFICIENT = 0,
	PRM_KIND_STABLE,
	PRM_KIND_NON_ATTITUDE,
	PRM_KIND_CONSTRUCTED
} PrmConsistencyKind;

typedef struct PrmConsistencyOptions
{
	double		alpha;			/* level of each test, in (0, 1) */
	double		tremble;		/* a stable rater's error rate, [0, 0.5) */
} PrmConsistencyOptions;

typedef struct PrmConsistencyResult
{
	int64_t		asks;
	int64_t		pairs;
	int64_t		pairs_reasked;	/* pairs asked at least twice */
	int64_t		asks_reasked;	/* asks of those pairs */
	int64_t		inconsistent;	/* of those, pairs with both answers */
	int64_t		minority;		/* answers against their pair's majority */
	int64_t		first_shown;	/* asks where the first shown was chosen */
	double		agreement;		/* share of agreeing re-ask pairs, or NaN */
	double		first_shown_rate;
	double		p_stable;
	double		p_non_attitude;
	double		p_condition;
	int			condition_exact;	/* p_condition is exact, not normal */
	int			non_attitude_exact; /* likewise p_non_attitude */
	PrmConsistencyKind kind;
	double		weight;
} PrmConsistencyResult;

#define PRM_CONSISTENCY_DEFAULT_ALPHA 0.01
#define PRM_CONSISTENCY_DEFAULT_TREMBLE 0.05

/*
 * Largest support of the conditional test's statistic computed exactly;
 * larger problems use the normal approximation with continuity correction.
 */
#define PRM_CONSISTENCY_EXACT_LIMIT 4096

/* Log of the binomial probability P(X = k), X ~ Bin(n, p) */
double		PrmBinomialLogPmf(int64_t k, int64_t n, double p);

/* Log of the binomial upper tail P(X >= k), X ~ Bin(n, p) */
double		PrmBinomialLogUpper(int64_t k, int64_t n, double p);

/* Binomial upper tail P(X >= k) */
double		PrmBinomialUpper(int64_t k, int64_t n, double p);

/* Log of the hypergeometric probability of x in the stratum's margins */
double		PrmHypergeometricLogPmf(int64_t x, const PrmStratum *s);

/* Bytes of workspace PrmStratifiedTest needs */
size_t		PrmStratifiedWorkspaceSize(void);

/*
 * Two-sided p-value of the exact conditional test that the answer does not
 * depend on the condition within strata (statistic: sum of observed).
 * Sets *exact to 0 when the normal approximation was used.
 */
double		PrmStratifiedTest(const PrmStratum *strata, int64_t count,
							  void *work, int *exact);

/*
 * P(M <= observed) where M is the number of minority answers a fair coin
 * would give on the re-asked pairs (strata with n >= 2; the other fields
 * are ignored). Uses the workspace of PrmStratifiedTest; sets *exact to 0
 * when the normal approximation was used.
 */
double		PrmCoinMinorityLower(const PrmStratum *strata, int64_t count,
								 int64_t observed, void *work, int *exact);

/* Bytes of workspace PrmConsistencyClassify needs for n asks */
size_t		PrmConsistencyWorkspaceSize(int64_t n);

/*
 * Classify a rater from n asks. The asks are sorted by pair in place.
 * work must hold PrmConsistencyWorkspaceSize(n) bytes, aligned for double.
 */
PrmStatus	PrmConsistencyClassify(PrmAsk *asks, int64_t n,
								   const PrmConsistencyOptions *opt,
								   void *work, PrmConsistencyResult *res);

/* Name of a kind as shown in results */
const char *PrmConsistencyKindName(PrmConsistencyKind kind);

#endif							/* PRM_CONSISTENCY_H */
