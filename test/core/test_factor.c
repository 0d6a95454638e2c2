/*
 * test_factor.c
 *	  Checks the factorized model: recovery of a planted subspace, a new
 *	  user's posterior against the full fit, locked coefficients, question
 *	  selection, and K = 1 against the BTL solver up to scale.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prm_btl.h"
#include "prm_factor.h"
#include "unit.h"

/* Planted factor data: users x per comparisons from c_u . B z */
typedef struct FactorData
{
	PrmFactorProblem prob;
	double	   *z;
	int32_t    *user;
	double	   *btrue;			/* k x d */
	double	   *ctrue;			/* users x k */
} FactorData;

/* Generate planted data with true B (orthogonal rows) and coefficients */
static FactorData
MakeFactorData(int32_t users, int per, int d, int k, uint64_t seed)
{
	FactorData	fd;
	int64_t		n = (int64_t) users * per;

	fd.z = malloc(sizeof(double) * n * d);
	fd.user = malloc(sizeof(int32_t) * n);
	fd.btrue = calloc((size_t) k * d, sizeof(double));
	fd.ctrue = malloc(sizeof(double) * users * k);
	for (int c = 0; c < k; c++)
		fd.btrue[(size_t) c * d + c] = 1.0;
	for (int32_t u = 0; u < users; u++)
		for (int c = 0; c < k; c++)
			fd.ctrue[u * k + c] = (c == 0 ? 1.5 : 0.0) + 1.5 * UnitNormal(&seed);
	for (int64_t i = 0; i < n; i++)
	{
		int32_t		u = (int32_t) (i / per);
		double		m = 0.0;

		fd.user[i] = u;
		for (int j = 0; j < d; j++)
			fd.z[i * d + j] = UnitNormal(&seed);
		for (int c = 0; c < k; c++)
			m += fd.ctrue[u * k + c] * fd.z[i * d + c];
		if (UnitUniform(&seed) > 1.0 / (1.0 + exp(-m)))
			for (int j = 0; j < d; j++)
				fd.z[i * d + j] = -fd.z[i * d + j];
	}
	fd.prob = (PrmFactorProblem) {n, d, fd.z, NULL, fd.user, users, k, 0.1,
		1.0, NULL};
	return fd;
}

/* Free planted data */
static void
FreeFactorData(FactorData *fd)
{
	free(fd->z);
	free(fd->user);
	free(fd->btrue);
	free(fd->ctrue);
}

/* Largest principal-angle sine between the row spaces of a and b (k x d) */
static double
SubspaceGap(const double *a, const double *b, int k, int d)
{
	/* project each row of a onto the span of b's rows (b orthonormal) */
	double		worst = 0.0;

	for (int r = 0; r < k; r++)
	{
		const double *ar = a + (size_t) r * d;
		double		norm2 = 0.0,
					proj2 = 0.0;

		for (int j = 0; j < d; j++)
			norm2 += ar[j] * ar[j];
		for (int c = 0; c < k; c++)
		{
			double		dot = 0.0;

			for (int j = 0; j < d; j++)
				dot += ar[j] * b[(size_t) c * d + j];
			proj2 += dot * dot;
		}
		if (norm2 > 0 && sqrt(fmax(0.0, 1.0 - proj2 / norm2)) > worst)
			worst = sqrt(fmax(0.0, 1.0 - proj2 / norm2));
	}
	return worst;
}

/* Fit; returns the status */
static PrmStatus
FactorFit(const PrmFactorProblem *p, double *trace, double *base, double *mu,
		  double *sigma, double *coef, double *cov, PrmFactorResult *res)
{
	PrmFactorOptions opt = {1e-9, 300, trace, NULL, NULL, NULL, 0};
	void	   *work = malloc(PrmFactorWorkspaceSize(p));
	PrmStatus	st = PrmFactorFit(p, &opt, base, mu, sigma, coef, cov, work,
								  res);

	free(work);
	return st;
}

/*
 * A planted two-dimensional subspace is recovered. With 40 comparisons per
 * user the objective rises every round; that is not guaranteed in general
 * (the step on B ignores the posteriors' log-determinants), but a fall on
 * data this well determined would mean a broken block.
 */
static void
TestSubspace(void)
{
	int			d = 6,
				k = 2;
	int32_t		users = 400;
	FactorData	fd = MakeFactorData(users, 40, d, k, 5);
	double		base[12],
				mu[2],
				sigma[4];
	double	   *coef = malloc(sizeof(double) * users * k);
	double	   *cov = malloc(sizeof(double) * users * k * k);
	double	   *trace = malloc(sizeof(double) * 400);
	PrmFactorResult res;
	int			monotone = 1;
	double		gap;

	FactorFit(&fd.prob, trace, base, mu, sigma, coef, cov, &res);
	gap = SubspaceGap(base, fd.btrue, k, d);
	UnitCheck(res.status == PRM_OK && res.converged,
			  "factor fit converged in %d iterations", res.iterations);
	UnitCheck(gap < 0.15, "fitted B spans the planted subspace (largest "
			  "principal-angle sine %.3f)", gap);
	for (int t = 1; t < res.trace_len; t++)
		if (trace[t] < trace[t - 1] - 1e-9 * fabs(trace[t - 1]))
			monotone = 0;
	UnitCheck(monotone, "factor objective never decreases over %d "
			  "iterations of a well-determined fit", res.trace_len);

	/* a user's posterior under the fitted B and prior equals the fit's */
	{
		double		prec[4];
		double		c[2] = {0, 0},
					cv[4];
		int32_t		u = 17;
		PrmUserProblem up = {40, d, k, fd.z + (size_t) u * 40 * d, NULL,
		base, mu, prec, NULL};
		void	   *uw = malloc(PrmUserWorkspaceSize(40, k));

		memcpy(prec, sigma, sizeof(prec));
		PrmInvertSpd(prec, k);
		PrmUserPosterior(&up, c, cv, uw, NULL);
		UnitCheck(UnitRelDiff(c, coef + u * k, k) < 1e-6 &&
				  UnitRelDiff(cv, cov + (size_t) u * k * k, k * k) < 1e-6,
				  "a user's posterior from fit_user equals the full fit's "
				  "(diff %.1e)", UnitRelDiff(c, coef + u * k, k));
		free(uw);
	}
	free(coef);
	free(cov);
	free(trace);
	FreeFactorData(&fd);
}

/*
 * A fit warm-started at a fitted B on the same rows reaches the same
 * objective in fewer iterations; a warm start that is not finite is bad
 * input.
 */
static void
TestFactorWarmStart(void)
{
	int			d = 5,
				k = 2;
	int32_t		users = 300;
	FactorData	fd = MakeFactorData(users, 30, d, k, 11);
	double		base[10],
				wbase[10],
				mu[2],
				sigma[4],
				smu[2],
				ssigma[4];
	double	   *coef = malloc(sizeof(double) * users * k);
	double	   *cov = malloc(sizeof(double) * users * k * k);
	void	   *work = malloc(PrmFactorWorkspaceSize(&fd.prob));
	PrmFactorOptions opt = {1e-9, 300, NULL, NULL, NULL, NULL, 0};
	PrmFactorResult res,
				wres;

	PrmFactorFit(&fd.prob, &opt, base, mu, sigma, coef, cov, work, &res);
	memcpy(smu, mu, sizeof(mu));
	memcpy(ssigma, sigma, sizeof(sigma));
	opt.start_base = base;
	opt.start_mu = smu;
	opt.start_sigma = ssigma;
	PrmFactorFit(&fd.prob, &opt, wbase, mu, sigma, coef, cov, work, &wres);
	UnitCheck(res.status == PRM_OK && wres.status == PRM_OK &&
			  wres.objective >= res.objective - 1e-7 * fabs(res.objective) &&
			  wres.iterations < res.iterations &&
			  SubspaceGap(wbase, base, k, d) < 1e-3,
			  "a warm start at the fit: same objective (%.6f vs %.6f), "
			  "%d iterations instead of %d", wres.objective, res.objective,
			  wres.iterations, res.iterations);
	base[3] = NAN;
	UnitCheck(PrmFactorFit(&fd.prob, &opt, wbase, mu, sigma, coef, cov, work,
						   &wres) == PRM_BAD_INPUT,
			  "a warm start with a NaN is bad input");
	free(work);
	free(coef);
	free(cov);
	FreeFactorData(&fd);
}

/* Locked components keep the population value for every user */
static void
TestLocked(void)
{
	int			d = 5,
				k = 2;
	int32_t		users = 200;
	FactorData	fd = MakeFactorData(users, 20, d, k, 9);
	int			locked[2] = {1, 0};
	double		base[10],
				mu[2],
				sigma[4];
	double	   *coef = malloc(sizeof(double) * users * k);
	double	   *cov = malloc(sizeof(double) * users * k * k);
	PrmFactorResult res;
	int			same = 1;

	fd.prob.locked = locked;
	FactorFit(&fd.prob, NULL, base, mu, sigma, coef, cov, &res);
	for (int32_t u = 0; u < users; u++)
		if (coef[u * k] != mu[0] || cov[(size_t) u * k * k] != 0.0)
			same = 0;
	UnitCheck(res.status == PRM_OK && same,
			  "locked coefficients equal the population value exactly");
	free(coef);
	free(cov);
	FreeFactorData(&fd);
}

/* K = 1 with a flat prior is the BTL fit up to the scale of B */
static void
TestOneFactor(void)
{
	int			d = 4;
	int32_t		users = 100;
	FactorData	fd = MakeFactorData(users, 30, d, 1, 21);
	int			locked[1] = {1};
	double		base[4],
				mu[1],
				sigma[1],
				w[4] = {0};
	double	   *coef = malloc(sizeof(double) * users);
	double	   *cov = malloc(sizeof(double) * users);
	PrmFactorResult res;
	PrmBtlProblem bp = {fd.prob.n, d, fd.z, NULL, 0.1};
	PrmBtlOptions bo = {PRM_METHOD_AUTO, 1e-10, 100};
	PrmBtlResult br;
	void	   *bw = malloc(PrmBtlWorkspaceSize(&bp, PRM_METHOD_AUTO));

	/* a locked single coefficient of 1 is the flat prior: r = B x */
	fd.prob.locked = locked;
	FactorFit(&fd.prob, NULL, base, mu, sigma, coef, cov, &res);
	PrmBtlSolve(&bp, &bo, w, bw, &br);
	UnitCheck(res.status == PRM_OK && UnitRelDiff(base, w, d) < 1e-5,
			  "K = 1, coefficient fixed at 1: B equals the BTL weights "
			  "(diff %.1e)", UnitRelDiff(base, w, d));
	free(coef);
	free(cov);
	free(bw);
	FreeFactorData(&fd);
}

/* Question selection: order, no repeats, Sherman-Morrison information */
static void
TestQuestions(void)
{
	int			count = 50,
				d = 3,
				k = 2,
				nq = 5;
	double		base[6] = {1, 0, 0, 0, 1, 0};
	double		coef[2] = {0.5, -0.5};
	double		cov[4] = {1, 0, 0, 1};
	double	   *cand = malloc(sizeof(double) * count * d);
	int			order[5];
	double		info[5];
	uint64_t	seed = 3;
	void	   *work = malloc(PrmQuestionsWorkspaceSize(count, k));
	int			distinct = 1,
				decreasing = 1;
	double		best = 0.0;

	for (int i = 0; i < count * d; i++)
		cand[i] = UnitNormal(&seed);
	UnitCheck(PrmNextQuestions(count, d, k, cand, NULL, base, coef, cov, nq,
							   order, info, work) == PRM_OK,
			  "questions are chosen");
	for (int a = 0; a < nq; a++)
	{
		for (int b = 0; b < a; b++)
			distinct &= order[a] != order[b];
		if (a > 0)
			decreasing &= info[a] <= info[a - 1] + 1e-12;
	}
	/* the first pick is the brute-force maximum of s v' C v */
	for (int j = 0; j < count; j++)
	{
		double		v0 = cand[j * d],
					v1 = cand[j * d + 1];
		double		m = coef[0] * v0 + coef[1] * v1;
		double		s = 1.0 / (1.0 + exp(-m));
		double		sc = s * (1 - s) * (v0 * v0 + v1 * v1);

		if (sc > best)
			best = sc;
	}
	UnitCheck(distinct && fabs(info[0] - best) < 1e-12,
			  "first question maximises the information, picks are distinct");
	UnitCheck(decreasing, "information of later picks does not increase");
	UnitCheck(PrmNextQuestions(count, d, k, cand, NULL, base, coef, cov,
							   count + 1, order, info, work) == PRM_BAD_INPUT,
			  "asking for more questions than candidates is refused");
	free(cand);
	free(work);
}


/*
 * Few comparisons per user (4 here, for 4 coefficients) make the rounds
 * crawl; the extrapolation between rounds must reach the fixed point of the
 * plain rounds in clearly fewer of them, at an objective no lower. Both
 * stop when the rewards change by less than 1e-4 in a round, which on so
 * slow a path leaves them about 1e-2 from the fixed point: the rewards are
 * compared to that precision.
 */
static void
TestAcceleration(void)
{
	int			d = 8,
				k = 4;
	int32_t		users = 800;
	FactorData	fd = MakeFactorData(users, 4, d, k, 23);
	double		base[2][32],
				mu[2][4],
				sigma[2][16],
				diff = 0.0,
				size = 0.0;
	double	   *coef[2],
			   *cov = malloc(sizeof(double) * users * k * k);
	void	   *work = malloc(PrmFactorWorkspaceSize(&fd.prob));
	PrmFactorResult res[2];

	for (int plain = 0; plain < 2; plain++)
	{
		PrmFactorOptions opt = {1e-12, 5000, NULL, NULL, NULL, NULL, plain};

		coef[plain] = malloc(sizeof(double) * users * k);
		PrmFactorFit(&fd.prob, &opt, base[plain], mu[plain], sigma[plain],
					 coef[plain], cov, work, &res[plain]);
	}
	/* the users' weight vectors B' c_u of both fits */
	for (int32_t u = 0; u < users; u++)
		for (int j = 0; j < d; j++)
		{
			double		w[2] = {0.0, 0.0};

			for (int plain = 0; plain < 2; plain++)
				for (int c = 0; c < k; c++)
					w[plain] += base[plain][c * d + j] *
						coef[plain][(size_t) u * k + c];
			diff += (w[0] - w[1]) * (w[0] - w[1]);
			size += w[1] * w[1];
		}
	UnitCheck(res[0].status == PRM_OK && res[0].converged &&
			  res[1].status == PRM_OK && res[1].converged,
			  "a sparse factor fit converges with and without extrapolation "
			  "(%d and %d rounds)", res[0].iterations, res[1].iterations);
	UnitCheck(res[0].iterations < 0.75 * res[1].iterations,
			  "the extrapolation takes at most 3/4 of the plain rounds");
	UnitCheck(res[0].objective >= res[1].objective -
			  1e-5 * fabs(res[1].objective),
			  "its objective is no lower (%.6f against %.6f)",
			  res[0].objective, res[1].objective);
	UnitCheck(sqrt(diff / size) < 5e-2,
			  "both serve the same rewards (relative difference %.1e)",
			  sqrt(diff / size));
	free(coef[0]);
	free(coef[1]);
	free(cov);
	free(work);
	FreeFactorData(&fd);
}

/*
 * Every pick of the incremental selection equals a brute-force one: with
 * the covariance updated explicitly after each pick and the information of
 * every remaining candidate recomputed from it. Candidates given as two
 * matrices pick as their differences do; a NaN in either is refused.
 */
static void
TestQuestionsBruteForce(void)
{
	enum
	{
		count = 300, d = 7, k = 4, nq = 12
	};
	double		base[k * d],
				coef[k],
				cov[k * k],
				c[k * k];
	double	   *ca = malloc(sizeof(double) * count * d);
	double	   *cb = malloc(sizeof(double) * count * d);
	double	   *z = malloc(sizeof(double) * count * d);
	double	   *v = malloc(sizeof(double) * count * k);
	void	   *work = malloc(PrmQuestionsWorkspaceSize(count, k));
	int			order[nq],
				order2[nq],
				taken[count];
	double		info[nq],
				info2[nq],
				worst = 0.0;
	int			same = 1;
	uint64_t	seed = 19;

	for (int i = 0; i < k * d; i++)
		base[i] = UnitNormal(&seed);
	for (int a = 0; a < k; a++)
		coef[a] = 0.5 * UnitNormal(&seed);
	/* a full covariance: L L' + I/2 */
	for (int a = 0; a < k; a++)
		for (int b = 0; b <= a; b++)
		{
			double		sum = a == b ? 0.5 : 0.0;

			for (int t = 0; t < k; t++)
				sum += (double) ((a + 1) * (t + 2) % 5) *
					((b + 1) * (t + 2) % 5) / 5.0;
			cov[a * k + b] = cov[b * k + a] = sum;
		}
	for (int i = 0; i < count * d; i++)
	{
		ca[i] = UnitNormal(&seed);
		cb[i] = UnitNormal(&seed);
		z[i] = ca[i] - cb[i];
	}
	for (int j = 0; j < count; j++)
	{
		taken[j] = 0;
		for (int a = 0; a < k; a++)
		{
			v[j * k + a] = 0.0;
			for (int t = 0; t < d; t++)
				v[j * k + a] += base[a * d + t] * z[j * d + t];
		}
	}
	UnitCheck(PrmNextQuestions(count, d, k, ca, cb, base, coef, cov, nq,
							   order, info, work) == PRM_OK,
			  "questions are chosen from two candidate matrices");

	memcpy(c, cov, sizeof(c));
	for (int n = 0; n < nq; n++)
	{
		int			best = -1;
		double		bestscore = -1.0,
					sbest = 0.0,
					u[k];

		for (int j = 0; j < count; j++)
		{
			double		m = 0.0,
						q = 0.0,
						p,
						score;

			if (taken[j])
				continue;
			for (int a = 0; a < k; a++)
			{
				m += coef[a] * v[j * k + a];
				for (int b = 0; b < k; b++)
					q += v[j * k + a] * c[a * k + b] * v[j * k + b];
			}
			p = 1.0 / (1.0 + exp(-m));
			score = p * (1.0 - p) * q;
			if (score > bestscore)
			{
				bestscore = score;
				best = j;
				sbest = p * (1.0 - p);
			}
		}
		same &= order[n] == best;
		worst = fmax(worst, fabs(info[n] - bestscore) / bestscore);
		taken[best] = 1;
		for (int a = 0; a < k; a++)
		{
			u[a] = 0.0;
			for (int b = 0; b < k; b++)
				u[a] += c[a * k + b] * v[best * k + b];
		}
		for (int a = 0; a < k; a++)
			for (int b = 0; b < k; b++)
				c[a * k + b] -= sbest / (1.0 + bestscore) * u[a] * u[b];
	}
	UnitCheck(same && worst < 1e-10,
			  "every pick and its information equal the brute force "
			  "(largest relative difference %.1e)", worst);

	UnitCheck(PrmNextQuestions(count, d, k, z, NULL, base, coef, cov, nq,
							   order2, info2, work) == PRM_OK &&
			  memcmp(order, order2, sizeof(order)) == 0,
			  "differences given as one matrix pick the same questions");
	cb[5 * d + 3] = NAN;
	UnitCheck(PrmNextQuestions(count, d, k, ca, cb, base, coef, cov, 0,
							   order2, info2, work) == PRM_BAD_INPUT,
			  "a NaN among the candidates is refused, even for no pick");
	ca[0] = INFINITY;
	cb[5 * d + 3] = 0.0;
	UnitCheck(PrmNextQuestions(count, d, k, ca, cb, base, coef, cov, 1,
							   order2, info2, work) == PRM_BAD_INPUT,
			  "an Infinity among the candidates is refused");
	free(ca);
	free(cb);
	free(z);
	free(v);
	free(work);
}

/*
 * Chosen questions teach more than random ones: over many simulated new
 * users, the held-out accuracy after 10 greedy questions beats 10 random.
 */
static void
TestActiveBeatsRandom(void)
{
	int			d = 8,
				k = 4,
				pool = 400,
				nq = 10,
				users = 300,
				test = 200;
	double		base[32] = {0};
	double		mu[4] = {1.0, 0.0, 0.0, 0.0};
	double		prec[16] = {0};
	double		prior_cov[16] = {0};
	double	   *cand = malloc(sizeof(double) * pool * d);
	double	   *ztest = malloc(sizeof(double) * test * d);
	double	   *zask = malloc(sizeof(double) * nq * d);
	void	   *qw = malloc(PrmQuestionsWorkspaceSize(pool, k));
	void	   *uw = malloc(PrmUserWorkspaceSize(nq, k));
	uint64_t	seed = 77;
	double		acc_active = 0.0,
				acc_random = 0.0;

	for (int c = 0; c < k; c++)
	{
		base[c * d + c] = 1.0;
		prec[c * k + c] = 1.0 / 4.0;	/* prior sd 2 */
		prior_cov[c * k + c] = 4.0;
	}
	for (int i = 0; i < pool * d; i++)
		cand[i] = UnitNormal(&seed);
	for (int i = 0; i < test * d; i++)
		ztest[i] = UnitNormal(&seed);

	for (int u = 0; u < users; u++)
	{
		double		ctrue[4];

		for (int c = 0; c < k; c++)
			ctrue[c] = mu[c] + 2.0 * UnitNormal(&seed);
		for (int mode = 0; mode < 2; mode++)
		{
			double		coef[4],
						cov[16];
			int			order[10];
			double		info[10];
			int			right = 0;
			PrmUserProblem up = {nq, d, k, zask, NULL, base, mu, prec, NULL};

			memcpy(coef, mu, sizeof(coef));
			memcpy(cov, prior_cov, sizeof(cov));
			if (mode == 0)
				PrmNextQuestions(pool, d, k, cand, NULL, base, coef, cov, nq,
								 order, info, qw);
			else
				for (int q = 0; q < nq; q++)
					order[q] = (int) (UnitUniform(&seed) * pool);

			/* the user answers from their true reward, with BTL noise */
			for (int q = 0; q < nq; q++)
			{
				const double *zq = cand + (size_t) order[q] * d;
				double		m = 0.0;
				int			flip;

				for (int c = 0; c < k; c++)
					m += ctrue[c] * zq[c];
				flip = UnitUniform(&seed) > 1.0 / (1.0 + exp(-m));
				for (int j = 0; j < d; j++)
					zask[q * d + j] = flip ? -zq[j] : zq[j];
			}
			PrmUserPosterior(&up, coef, cov, uw, NULL);
			for (int t = 0; t < test; t++)
			{
				double		mt = 0.0,
							mf = 0.0;

				for (int c = 0; c < k; c++)
				{
					mt += ctrue[c] * ztest[t * d + c];
					mf += coef[c] * ztest[t * d + c];
				}
				right += (mt > 0) == (mf > 0);
			}
			if (mode == 0)
				acc_active += (double) right / test / users;
			else
				acc_random += (double) right / test / users;
		}
	}
	UnitCheck(acc_active > acc_random + 0.01,
			  "after 10 questions, chosen questions give held-out accuracy "
			  "%.3f and random ones %.3f", acc_active, acc_random);
	free(cand);
	free(ztest);
	free(zask);
	free(qw);
	free(uw);
}

void
TestFactor(void)
{
	TestSubspace();
	TestFactorWarmStart();
	TestLocked();
	TestOneFactor();
	TestQuestions();
	TestQuestionsBruteForce();
	TestAcceleration();
	TestActiveBeatsRandom();
}
