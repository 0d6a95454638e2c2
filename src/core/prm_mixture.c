/*
 * prm_mixture.c
 *	  EM for mixtures of linear BTL models with a latent class per user.
 */
#include "prm_mixture.h"

#include <math.h>
#include <string.h>

#include <cblas.h>

#include "prm_btl.h"

#define Min(a, b) ((a) < (b) ? (a) : (b))

/* Rows per block when computing margins for all components */
#define MIX_BLOCK_ROWS 256

/* Lloyd iterations of spherical k-means after k-means++ seeding */
#define KMEANS_ITER 10

/* Tolerance and iterations of the M-step solves inside EM */
#define MSTEP_TOL 1e-6
#define MSTEP_ITER 1

/* Tolerance of the final M-step that polishes the converged fit */
#define POLISH_TOL 1e-9

/* Restart runs stop earlier than the final run; only the best goes on */
#define RESTART_TOL 1e-6
#define RESTART_MAX_ITER 50

/* A run whose objective is this close to the best reached the best */
#define SAME_OPTIMUM_ABS 1e-2
#define SAME_OPTIMUM_REL 1e-5

/* Workspace carved into named arrays */
typedef struct MixWork
{
	double	   *logl;			/* users x k log-likelihoods */
	double	   *rowwt;			/* n M-step row weights */
	double	   *mblock;			/* MIX_BLOCK_ROWS x k margins */
	double	   *w;				/* k x d current base rewards */
	double	   *pi;				/* k current mixing weights */
	double	   *gamma;			/* users x k current responsibilities */
	double	   *bestw;			/* k x d best start */
	double	   *bestpi;			/* k */
	double	   *uvec;			/* sample users x d mean directions */
	double	   *centers;		/* k x d k-means centers */
	double	   *dist;			/* sample users: distance to a center */
	int32_t    *assign;			/* sample users: k-means cluster */
	double	   *objs;			/* restarts: final objective of each */
	double	   *s_z;			/* sample rows, when users are sampled */
	double	   *s_wt;
	int32_t    *s_user;
	int32_t    *s_map;			/* users: index in the sample or -1 */
	void	   *btlwork;
	PrmMixtureProblem sample;	/* the restart problem */
} MixWork;

/* splitmix64: the next value of a seeded sequence */
static uint64_t
NextRandom(uint64_t *state)
{
	uint64_t	z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform draw in [0, 1) */
static double
UniformRandom(uint64_t *state)
{
	return (NextRandom(state) >> 11) * (1.0 / 9007199254740992.0);
}

/* Whether user u belongs to the restart sample of a run with this seed */
static int
UserSampled(const PrmMixtureProblem *prob, const PrmMixtureOptions *opt,
			int32_t u)
{
	uint64_t	state;

	if (prob->users <= opt->restart_users)
		return 1;
	state = opt->seed ^ ((uint64_t) u * 0xd1b54a32d192ed03ULL);
	return UniformRandom(&state) <
		(double) opt->restart_users / (double) prob->users;
}

/* Count the users and rows of the restart sample */
static void
SampleSize(const PrmMixtureProblem *prob, const PrmMixtureOptions *opt,
		   int32_t *users, int64_t *rows)
{
	*users = 0;
	*rows = 0;
	if (prob->users <= opt->restart_users)
	{
		*users = prob->users;
		*rows = prob->n;
		return;
	}
	for (int32_t u = 0; u < prob->users; u++)
		*users += UserSampled(prob, opt, u);
	for (int64_t i = 0; i < prob->n; i++)
		*rows += UserSampled(prob, opt, prob->user[i]);
}

/* Lay the workspace out; with base NULL only the size is computed */
static size_t
MixWorkLayout(const PrmMixtureProblem *prob, const PrmMixtureOptions *opt,
			  char *base, MixWork *w)
{
	size_t		off = 0;
	int			k = prob->k;
	int			d = prob->d;
	size_t		uk = (size_t) prob->users * k;
	int32_t		s_users;
	int64_t		s_rows;
	int			sampled;
	PrmBtlProblem bp = {prob->n, d, prob->z, prob->weight, prob->l2};

	SampleSize(prob, opt, &s_users, &s_rows);
	sampled = s_users < prob->users;

#define TAKE(field, type, count) \
	do { \
		if (base) \
			w->field = (type *) (base + off); \
		off += sizeof(type) * (size_t) (count); \
		off = (off + 15) & ~(size_t) 15; \
	} while (0)

	TAKE(logl, double, uk);
	TAKE(gamma, double, uk);
	TAKE(rowwt, double, prob->n);
	TAKE(mblock, double, (size_t) MIX_BLOCK_ROWS * k);
	TAKE(w, double, (size_t) k * d);
	TAKE(pi, double, k);
	TAKE(bestw, double, (size_t) k * d);
	TAKE(bestpi, double, k);
	TAKE(uvec, double, (size_t) s_users * d);
	TAKE(centers, double, (size_t) k * d);
	TAKE(dist, double, s_users);
	TAKE(assign, int32_t, s_users);
	TAKE(objs, double, opt->restarts > 0 ? opt->restarts : 1);
	if (sampled)
	{
		TAKE(s_z, double, (size_t) s_rows * d);
		TAKE(s_wt, double, s_rows);
		TAKE(s_user, int32_t, s_rows);
		TAKE(s_map, int32_t, prob->users);
	}
	TAKE(btlwork, char, PrmBtlWorkspaceSize(&bp, PRM_METHOD_AUTO));
#undef TAKE
	if (base)
	{
		w->sample = *prob;
		w->sample.users = s_users;
		w->sample.n = s_rows;
	}
	return off;
}

/* Bytes of workspace PrmMixtureFit needs */
size_t
PrmMixtureWorkspaceSize(const PrmMixtureProblem *prob,
						const PrmMixtureOptions *opt)
{
	MixWork		w;

	return MixWorkLayout(prob, opt, NULL, &w);
}

/* Number of free parameters: k base rewards and k - 1 mixing weights */
int64_t
PrmMixtureParameters(int k, int d)
{
	return (int64_t) k * d + (k - 1);
}

/* Copy the rows of the sampled users into the workspace */
static void
BuildSample(const PrmMixtureProblem *prob, const PrmMixtureOptions *opt,
			MixWork *wk)
{
	int32_t		next = 0;
	int64_t		row = 0;
	int			d = prob->d;

	if (wk->sample.users == prob->users)
		return;
	for (int32_t u = 0; u < prob->users; u++)
		wk->s_map[u] = UserSampled(prob, opt, u) ? next++ : -1;
	for (int64_t i = 0; i < prob->n; i++)
	{
		int32_t		su = wk->s_map[prob->user[i]];

		if (su < 0)
			continue;
		memcpy(wk->s_z + row * d, prob->z + i * d, sizeof(double) * d);
		wk->s_wt[row] = prob->weight ? prob->weight[i] : 1.0;
		wk->s_user[row] = su;
		row++;
	}
	wk->sample.z = wk->s_z;
	wk->sample.weight = wk->s_wt;
	wk->sample.user = wk->s_user;
}

/*
 * E-step: responsibilities of every user into gamma; returns the penalized
 * log-likelihood and puts the unpenalized one in *loglik.
 */
static double
EStep(const PrmMixtureProblem *p, MixWork *wk, const double *w,
	  const double *pi, double *gamma, double *loglik)
{
	int			k = p->k;
	int			d = p->d;
	double		ll = 0.0;
	double		pen = 0.0;

	memset(wk->logl, 0, sizeof(double) * (size_t) p->users * k);
	for (int64_t start = 0; start < p->n; start += MIX_BLOCK_ROWS)
	{
		int			nb = (int) (p->n - start < MIX_BLOCK_ROWS ?
								p->n - start : MIX_BLOCK_ROWS);

		if ((start / MIX_BLOCK_ROWS) % 64 == 0)
			PrmCheckInterrupts();
		/* margins of the block under every component: Z_b W^T */
		cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, k, d, 1.0,
					p->z + start * d, d, w, d, 0.0, wk->mblock, k);
		for (int i = 0; i < nb; i++)
		{
			double		a = p->weight ? p->weight[start + i] : 1.0;
			double	   *lu = wk->logl + (size_t) p->user[start + i] * k;

			for (int c = 0; c < k; c++)
				lu[c] -= a * PrmSoftplus(-wk->mblock[(size_t) i * k + c]);
		}
	}

	for (int32_t u = 0; u < p->users; u++)
	{
		double	   *lu = wk->logl + (size_t) u * k;
		double	   *gu = gamma + (size_t) u * k;
		double		top = -INFINITY;
		double		sum = 0.0;

		for (int c = 0; c < k; c++)
		{
			gu[c] = pi[c] > 0 ? log(pi[c]) + lu[c] : -INFINITY;
			if (gu[c] > top)
				top = gu[c];
		}
		for (int c = 0; c < k; c++)
		{
			gu[c] = exp(gu[c] - top);
			sum += gu[c];
		}
		for (int c = 0; c < k; c++)
			gu[c] /= sum;
		ll += top + log(sum);
	}

	for (int j = 0; j < k * d; j++)
		pen += w[j] * w[j];
	*loglik = ll;
	return ll - 0.5 * p->l2 * pen;
}

/*
 * M-step: mixing weights from gamma, then penalized BTL steps for each
 * component with rows weighted by their user's responsibility.
 */
static PrmStatus
MStep(const PrmMixtureProblem *p, MixWork *wk, double *w, double *pi,
	  const double *gamma, double tol, int max_iter)
{
	int			k = p->k;
	PrmBtlOptions bo = {PRM_METHOD_AUTO, tol, max_iter};

	for (int c = 0; c < k; c++)
	{
		double		mass = 0.0;

		for (int32_t u = 0; u < p->users; u++)
			mass += gamma[(size_t) u * k + c];
		pi[c] = mass / p->users;
	}

	for (int c = 0; c < k; c++)
	{
		PrmBtlProblem bp = {p->n, p->d, p->z, wk->rowwt, p->l2};
		PrmBtlResult br;
		double		total = 0.0;
		PrmStatus	st;

		for (int64_t i = 0; i < p->n; i++)
		{
			double		a = p->weight ? p->weight[i] : 1.0;

			wk->rowwt[i] = a * gamma[(size_t) p->user[i] * k + c];
			total += wk->rowwt[i];
		}
		/* a component no user belongs to keeps its reward */
		if (!(total > 1e-12))
			continue;
		st = PrmBtlSolve(&bp, &bo, w + (size_t) c * p->d, wk->btlwork, &br);
		if (st == PRM_BAD_INPUT || st == PRM_NOT_POSITIVE_DEFINITE)
			return st;
	}
	return PRM_OK;
}

/*
 * Run EM on p from w and pi until the relative change of the penalized
 * log-likelihood is at most tol; gamma receives the final
 * responsibilities. trace, when not NULL, receives the objective of every
 * iteration.
 */
static PrmStatus
RunEm(const PrmMixtureProblem *p, MixWork *wk, double *w, double *pi,
	  double *gamma, double tol, int max_iter, double *trace,
	  PrmMixtureResult *res)
{
	double		prev = -INFINITY;
	double		obj = 0.0;
	double		ll = 0.0;
	int			it;
	PrmStatus	st;

	res->converged = 0;
	for (it = 0;; it++)
	{
		obj = EStep(p, wk, w, pi, gamma, &ll);
		if (!isfinite(obj))
			return PRM_BAD_INPUT;
		if (trace)
			trace[it] = obj;
		if (it > 0 && fabs(obj - prev) <= tol * fmax(1.0, fabs(obj)))
		{
			res->converged = 1;
			break;
		}
		if (it >= max_iter)
			break;
		prev = obj;
		st = MStep(p, wk, w, pi, gamma, MSTEP_TOL, MSTEP_ITER);
		if (st != PRM_OK)
			return st;
	}

	/* polish: solve every component to full precision for the final gamma */
	st = MStep(p, wk, w, pi, gamma, POLISH_TOL, PRM_BTL_DEFAULT_MAX_ITER);
	if (st != PRM_OK)
		return st;
	obj = EStep(p, wk, w, pi, gamma, &ll);
	if (trace)
		trace[++it] = obj;
	res->iterations = it;
	res->trace_len = trace ? it + 1 : 0;
	res->objective = obj;
	res->loglik = ll;
	return PRM_OK;
}

/* Mean difference direction of every user of p, normalized */
static void
UserDirections(const PrmMixtureProblem *p, MixWork *wk)
{
	int			d = p->d;

	memset(wk->uvec, 0, sizeof(double) * (size_t) p->users * d);
	for (int64_t i = 0; i < p->n; i++)
	{
		double		a = p->weight ? p->weight[i] : 1.0;

		cblas_daxpy(d, a, p->z + i * d, 1,
					wk->uvec + (size_t) p->user[i] * d, 1);
	}
	for (int32_t u = 0; u < p->users; u++)
	{
		double	   *v = wk->uvec + (size_t) u * d;
		double		norm = cblas_dnrm2(d, v, 1);

		if (norm > 0)
			cblas_dscal(d, 1.0 / norm, v, 1);
	}
}

/*
 * Start a run: spherical k-means++ on the user directions with this seed,
 * a few Lloyd iterations, then hard responsibilities and a full M-step.
 */
static PrmStatus
KMeansStart(const PrmMixtureProblem *p, MixWork *wk, uint64_t seed,
			double *w, double *pi, double *gamma)
{
	int			k = p->k;
	int			d = p->d;
	uint64_t	state = seed;
	int32_t		first = (int32_t) (NextRandom(&state) % (uint64_t) p->users);

	/* k-means++ seeding: next center with probability ~ squared distance */
	memcpy(wk->centers, wk->uvec + (size_t) first * d, sizeof(double) * d);
	for (int32_t u = 0; u < p->users; u++)
		wk->dist[u] = INFINITY;
	for (int c = 1; c <= k; c++)
	{
		double		total = 0.0;
		double		pick;
		int32_t		chosen = p->users - 1;

		for (int32_t u = 0; u < p->users; u++)
		{
			double		cs = cblas_ddot(d, wk->uvec + (size_t) u * d, 1,
										wk->centers + (size_t) (c - 1) * d,
										1);
			double		dist = 1.0 - cs;

			if (dist < wk->dist[u])
				wk->dist[u] = dist > 0 ? dist : 0;
			total += wk->dist[u] * wk->dist[u];
		}
		if (c == k)
			break;
		pick = UniformRandom(&state) * total;
		for (int32_t u = 0; u < p->users; u++)
		{
			pick -= wk->dist[u] * wk->dist[u];
			if (pick < 0)
			{
				chosen = u;
				break;
			}
		}
		memcpy(wk->centers + (size_t) c * d, wk->uvec + (size_t) chosen * d,
			   sizeof(double) * d);
	}

	/* Lloyd iterations on the unit sphere */
	for (int iter = 0; iter < KMEANS_ITER; iter++)
	{
		PrmCheckInterrupts();
		for (int32_t u = 0; u < p->users; u++)
		{
			double		best = -INFINITY;

			wk->assign[u] = 0;
			for (int c = 0; c < k; c++)
			{
				double		cs = cblas_ddot(d, wk->uvec + (size_t) u * d, 1,
											wk->centers + (size_t) c * d, 1);

				if (cs > best)
				{
					best = cs;
					wk->assign[u] = c;
				}
			}
		}
		memset(wk->centers, 0, sizeof(double) * (size_t) k * d);
		for (int32_t u = 0; u < p->users; u++)
			cblas_daxpy(d, 1.0, wk->uvec + (size_t) u * d, 1,
						wk->centers + (size_t) wk->assign[u] * d, 1);
		for (int c = 0; c < k; c++)
		{
			double	   *cv = wk->centers + (size_t) c * d;
			double		norm = cblas_dnrm2(d, cv, 1);

			if (norm > 0)
				cblas_dscal(d, 1.0 / norm, cv, 1);
			else
			{
				/* an empty cluster restarts at a random user */
				int32_t		u = (int32_t) (NextRandom(&state) %
										   (uint64_t) p->users);

				memcpy(cv, wk->uvec + (size_t) u * d, sizeof(double) * d);
			}
		}
	}

	for (int32_t u = 0; u < p->users; u++)
		for (int c = 0; c < k; c++)
			gamma[(size_t) u * k + c] = wk->assign[u] == c ? 1.0 : 0.0;
	memset(w, 0, sizeof(double) * (size_t) k * d);
	return MStep(p, wk, w, pi, gamma, MSTEP_TOL, PRM_BTL_DEFAULT_MAX_ITER);
}

/* Order components by decreasing mixing weight */
static void
SortComponents(int k, int d, int32_t users, double *w, double *pi,
			   double *gamma, double *tmp)
{
	for (int a = 0; a < k; a++)
	{
		int			top = a;

		for (int b = a + 1; b < k; b++)
			if (pi[b] > pi[top])
				top = b;
		if (top == a)
			continue;
		memcpy(tmp, w + (size_t) a * d, sizeof(double) * d);
		memcpy(w + (size_t) a * d, w + (size_t) top * d, sizeof(double) * d);
		memcpy(w + (size_t) top * d, tmp, sizeof(double) * d);
		{
			double		t = pi[a];

			pi[a] = pi[top];
			pi[top] = t;
		}
		for (int32_t u = 0; u < users; u++)
		{
			double		t = gamma[(size_t) u * k + a];

			gamma[(size_t) u * k + a] = gamma[(size_t) u * k + top];
			gamma[(size_t) u * k + top] = t;
		}
	}
}

/* Fit the mixture */
PrmStatus
PrmMixtureFit(const PrmMixtureProblem *prob, const PrmMixtureOptions *opt,
			  double *base, double *mixing, double *resp, void *work,
			  PrmMixtureResult *res)
{
	MixWork		wk = {0};
	int			k = prob->k;
	int			d = prob->d;
	int			restarts = opt->restarts > 0 ? opt->restarts : 1;
	double		tol = opt->tol > 0 ? opt->tol : PRM_MIXTURE_DEFAULT_TOL;
	int			max_iter = opt->max_iter > 0 ? opt->max_iter :
		PRM_MIXTURE_DEFAULT_MAX_ITER;
	double		best = -INFINITY;
	double	   *objs;
	PrmStatus	st;

	memset(res, 0, sizeof(*res));
	if (prob->n <= 0 || d <= 0 || k < 1 || prob->users < k ||
		!(prob->l2 > 0) || !isfinite(prob->l2))
		return res->status = PRM_BAD_INPUT;

	MixWorkLayout(prob, opt, (char *) work, &wk);
	BuildSample(prob, opt, &wk);
	res->sampled_users = wk.sample.users;
	UserDirections(&wk.sample, &wk);

	objs = wk.objs;
	for (int r = 0; r < restarts; r++)
	{
		PrmMixtureResult rr = {0};
		uint64_t	seed = opt->seed + 0x9e3779b97f4a7c15ULL * (uint64_t) r;

		st = KMeansStart(&wk.sample, &wk, seed, wk.w, wk.pi, wk.gamma);
		if (st != PRM_OK)
			return res->status = st;
		st = RunEm(&wk.sample, &wk, wk.w, wk.pi, wk.gamma,
				   fmax(tol, RESTART_TOL), Min(max_iter, RESTART_MAX_ITER),
				   NULL, &rr);
		if (st != PRM_OK)
			return res->status = st;
		objs[r] = rr.objective;
		if (rr.objective > best)
		{
			best = rr.objective;
			memcpy(wk.bestw, wk.w, sizeof(double) * (size_t) k * d);
			memcpy(wk.bestpi, wk.pi, sizeof(double) * k);
		}
	}
	res->restarts = restarts;
	for (int r = 0; r < restarts; r++)
		if (objs[r] >= best - fmax(SAME_OPTIMUM_ABS,
								   SAME_OPTIMUM_REL * fabs(best)))
			res->restarts_at_best++;

	/* the final run: from the best start, on every user */
	memcpy(base, wk.bestw, sizeof(double) * (size_t) k * d);
	memcpy(mixing, wk.bestpi, sizeof(double) * k);
	st = RunEm(prob, &wk, base, mixing, resp, tol, max_iter, opt->trace,
			   res);
	if (st != PRM_OK)
		return res->status = st;

	SortComponents(k, d, prob->users, base, mixing, resp, wk.w);
	res->bic = -2.0 * res->loglik +
		(double) PrmMixtureParameters(k, d) * log((double) prob->users);
	return res->status = PRM_OK;
}
