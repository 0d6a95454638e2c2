/*
 * prm_mixture.c
 *	  EM for mixtures of linear BTL models with a latent class per user.
 */
#include "prm_mixture.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#include <cblas.h>

#include "prm_btl.h"

#define Min(a, b) ((a) < (b) ? (a) : (b))

/* Rows per block when computing margins for all components */
#define MIX_BLOCK_ROWS 256

/* Rows per call of dsyrk when forming a Hessian: fewer packing overheads */
#define SYRK_ROWS 2048

/* M-steps that reuse a Hessian before it is formed again */
#define HESSIAN_REUSE 5

/* Lloyd iterations of spherical k-means after k-means++ seeding */
#define KMEANS_ITER 10

/*
 * EM's M-steps that turn a k-means++ start into components: a start only
 * needs to point EM at the right optimum, and the restart's EM refines it
 */
#define START_MSTEPS 2

/* Armijo constant, rounding allowance and most halvings of a Newton M-step */
#define ARMIJO_C 1e-4
#define ROUNDING_REL 1e-12
#define MAX_HALVINGS 30

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
	double	   *key;			/* k sort keys of the components */
	double	   *cdist;			/* k x k distances to the start's */
	double	   *s_z;			/* sample rows, when users are sampled */
	double	   *s_wt;
	int32_t    *s_user;
	int32_t    *s_map;			/* users: index in the sample or -1 */
	void	   *btlwork;
	PrmMixtureProblem sample;	/* the restart problem */

	/* the fused Newton M-step */
	double	   *resid;			/* n x k sigmoid(margin) - 1 of every row */
	double	   *lprod;			/* users x k products of sigmoids */
	double	   *gamma_old;		/* users x k responsibilities of the step */
	double	   *grad;			/* k x d gradients */
	double	   *dir;			/* k x d Newton directions */
	double	   *wold;			/* k x d point the step starts from */
	double	   *rblock;			/* MIX_BLOCK_ROWS x k residuals */
	double	   *blk;			/* MIX_BLOCK_ROWS x d scaled rows */
	double	   *hess;			/* d x d Hessian of one component */
	double	   *chol;			/* k x d x d Cholesky factors */
	int			chol_age;		/* M-steps since the factors were made */
	double	   *fold;			/* k component objectives at wold */
	double	   *fnew;			/* k component objectives at w */
	double	   *slope;			/* k directional derivatives */
	double	   *alpha;			/* k step lengths */
	double	   *cz;				/* curvature sample rows, when copied */
	double	   *cw;
	int32_t    *cu;
	int64_t		c_cap;			/* rows cz has room for */
	int64_t		c_n;			/* rows of the curvature sample */
	const double *c_z;
	const double *c_w;
	const int32_t *c_u;
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
	if (*users < prob->k || *users < 1)
	{
		/* too few users drawn to start k components: use them all */
		*users = prob->users;
		*rows = prob->n;
		return;
	}
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
	TAKE(key, double, k);
	TAKE(cdist, double, (size_t) k * k);
	if (sampled)
	{
		TAKE(s_z, double, (size_t) s_rows * d);
		TAKE(s_wt, double, s_rows);
		TAKE(s_user, int32_t, s_rows);
		TAKE(s_map, int32_t, prob->users);
	}
	TAKE(btlwork, char, PrmBtlWorkspaceSize(&bp, PRM_METHOD_AUTO));
	TAKE(resid, double, (size_t) prob->n * k);
	TAKE(lprod, double, uk);
	TAKE(gamma_old, double, uk);
	TAKE(grad, double, (size_t) k * d);
	TAKE(dir, double, (size_t) k * d);
	TAKE(wold, double, (size_t) k * d);
	TAKE(rblock, double, (size_t) SYRK_ROWS * k);
	TAKE(blk, double, (size_t) SYRK_ROWS * d);
	TAKE(hess, double, (size_t) d * d);
	TAKE(chol, double, (size_t) k * d * d);
	TAKE(fold, double, k);
	TAKE(fnew, double, k);
	TAKE(slope, double, k);
	TAKE(alpha, double, k);
	if (prob->n > 4 * PrmCurvatureSampleRows(d))
	{
		int64_t		c_n = PrmCurvatureSample(prob->z, prob->n, d, NULL, NULL,
											 NULL, NULL, NULL, prob->n);

		if (base)
			w->c_cap = c_n;
		TAKE(cz, double, (size_t) c_n * d);
		TAKE(cw, double, c_n);
		TAKE(cu, int32_t, c_n);
	}
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

/* Point the curvature sample at the rows of problem p */
static void
UseCurvatureSample(const PrmMixtureProblem *p, MixWork *wk)
{
	wk->c_n = p->n <= 4 * PrmCurvatureSampleRows(p->d) ? p->n :
		PrmCurvatureSample(p->z, p->n, p->d, p->weight, p->user, wk->cz,
						   wk->cw, wk->cu, wk->c_cap);
	if (wk->c_n == p->n)
	{
		wk->c_z = p->z;
		wk->c_w = p->weight;
		wk->c_u = p->user;
	}
	else
	{
		wk->c_z = wk->cz;
		wk->c_w = wk->cw;
		wk->c_u = wk->cu;
	}
}

/* Penalty (l2 / 2) ||w_c||^2 of component c */
static double
Penalty(const PrmMixtureProblem *p, const double *w, int c)
{
	double		ss = 0.0;

	for (int j = 0; j < p->d; j++)
		ss += w[(size_t) c * p->d + j] * w[(size_t) c * p->d + j];
	return 0.5 * p->l2 * ss;
}

/*
 * Each component's M-step objective under responsibilities gamma, into out,
 * from the users' log-likelihoods logl: sum over users of gamma times logl
 * is the sum over rows of the weighted log sigmoid.
 */
static void
ComponentObjectives(const PrmMixtureProblem *p, const double *w,
					const double *gamma, const double *logl, double *out)
{
	int			k = p->k;

	memset(out, 0, sizeof(double) * k);
	for (int32_t u = 0; u < p->users; u++)
		for (int c = 0; c < k; c++)
			out[c] -= gamma[(size_t) u * k + c] * logl[(size_t) u * k + c];
	for (int c = 0; c < k; c++)
		out[c] += Penalty(p, w, c);
}

/*
 * One pass at w: the residual sigmoid(m) - 1 of every margin into resid and
 * each user's log-likelihood under each component into logl. With judge not
 * NULL, also each component's M-step objective under those
 * responsibilities into wk->fnew.
 */
static void
MarginPass(const PrmMixtureProblem *p, MixWork *wk, const double *w,
		   const double *judge)
{
	int			k = p->k;
	int			d = p->d;
	size_t		uk = (size_t) p->users * k;

	memset(wk->logl, 0, sizeof(double) * uk);
	for (size_t i = 0; i < uk; i++)
		wk->lprod[i] = 1.0;
	for (int64_t start = 0; start < p->n; start += MIX_BLOCK_ROWS)
	{
		int			nb = (int) (p->n - start < MIX_BLOCK_ROWS ?
								p->n - start : MIX_BLOCK_ROWS);
		double	   *rb = wk->resid + (size_t) start * k;

		if ((start / MIX_BLOCK_ROWS) % 64 == 0)
			PrmCheckInterrupts();
		/*
		 * Margins of the block under every component, Z_b W^T. One matrix
		 * vector product per component while the block is in cache: with
		 * few components dgemm spends its time packing.
		 */
		for (int c = 0; c < k; c++)
			cblas_dgemv(CblasRowMajor, CblasNoTrans, nb, d, 1.0,
						p->z + start * d, d, w + (size_t) c * d, 1, 0.0,
						rb + c, k);
		for (int i = 0; i < nb; i++)
		{
			double		a = p->weight ? p->weight[start + i] : 1.0;
			size_t		uc = (size_t) p->user[start + i] * k;

			for (int c = 0; c < k; c++)
			{
				double		m = rb[(size_t) i * k + c];
				double		e = exp(-fabs(m));
				double		q = 1.0 / (1.0 + e);

				rb[(size_t) i * k + c] = m >= 0 ? -e * q : -q;
				PrmAddLogSigmoid(&wk->lprod[uc + c], &wk->logl[uc + c], m,
								 e, q, a);
			}
		}
	}
	for (size_t i = 0; i < uk; i++)
		wk->logl[i] = PrmLogSigmoidTotal(wk->lprod[i], wk->logl[i]);
	if (judge)
		ComponentObjectives(p, w, judge, wk->logl, wk->fnew);
}

/*
 * Responsibilities of every user from logl and the mixing weights; returns
 * the penalized log-likelihood and puts the unpenalized one in *loglik.
 */
static double
Responsibilities(const PrmMixtureProblem *p, MixWork *wk, const double *w,
				 const double *pi, double *gamma, double *loglik)
{
	int			k = p->k;
	double		ll = 0.0;
	double		pen = 0.0;

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
	for (int c = 0; c < k; c++)
		pen += Penalty(p, w, c);
	*loglik = ll;
	return ll - pen;
}

/* E-step at w: responsibilities into gamma; returns the objective */
static double
EStep(const PrmMixtureProblem *p, MixWork *wk, const double *w,
	  const double *pi, double *gamma, double *loglik)
{
	MarginPass(p, wk, w, NULL);
	return Responsibilities(p, wk, w, pi, gamma, loglik);
}

/* Form component c's Hessian at w from the curvature sample and factor it */
static void
FactorHessian(const PrmMixtureProblem *p, MixWork *wk, const double *w,
			  const double *gamma, int c)
{
	int			k = p->k;
	int			d = p->d;
	const double *wc = w + (size_t) c * d;
	double		scale = (double) p->n / (double) wk->c_n;

	memset(wk->hess, 0, sizeof(double) * (size_t) d * d);
	for (int64_t start = 0; start < wk->c_n; start += SYRK_ROWS)
	{
		int			nb = (int) (wk->c_n - start < SYRK_ROWS ?
								wk->c_n - start : SYRK_ROWS);
		const double *zb = wk->c_z + start * d;

		PrmCheckInterrupts();
		/*
		 * sigmoid(m) (1 - sigmoid(m)) is -r (1 + r) for the residual r =
		 * sigmoid(m) - 1 of the last pass, which was at w: rows of the
		 * problem itself need no margins here, copied sample rows do
		 */
		if (wk->c_z == p->z)
			for (int i = 0; i < nb; i++)
			{
				double		r = wk->resid[(size_t) (start + i) * k + c];

				wk->rblock[i] = -r * (1.0 + r);
			}
		else
		{
			cblas_dgemv(CblasRowMajor, CblasNoTrans, nb, d, 1.0, zb, d, wc,
						1, 0.0, wk->rblock, 1);
			for (int i = 0; i < nb; i++)
			{
				double		sp = PrmSigmoid(wk->rblock[i]);

				wk->rblock[i] = sp * (1.0 - sp);
			}
		}
		for (int i = 0; i < nb; i++)
		{
			double		a = wk->c_w ? wk->c_w[start + i] : 1.0;
			double		sc = sqrt(a * gamma[(size_t) wk->c_u[start + i] * k +
										c] * wk->rblock[i]);

			for (int j = 0; j < d; j++)
				wk->blk[(size_t) i * d + j] = sc * zb[(size_t) i * d + j];
		}
		cblas_dsyrk(CblasColMajor, CblasUpper, CblasNoTrans, d, nb, 1.0,
					wk->blk, d, 1.0, wk->hess, d);
	}
	for (int j = 0; j < d; j++)
	{
		cblas_dscal(j + 1, scale, wk->hess + (size_t) j * d, 1);
		wk->hess[(size_t) j * d + j] += p->l2;
	}
	if (PrmCholeskyRidge(wk->chol + (size_t) c * d * d, wk->hess, d,
						 NULL) != 0)
	{
		/* fall back to the penalty alone: a scaled gradient step */
		memset(wk->chol + (size_t) c * d * d, 0,
			   sizeof(double) * (size_t) d * d);
		for (int j = 0; j < d; j++)
			wk->chol[(size_t) c * d * d + (size_t) j * d + j] =
				sqrt(p->l2 + 1.0);
	}
}

/*
 * Newton directions of every component's M-step objective at w: the
 * gradients from one pass over all rows (using the residuals in resid), the
 * Hessians from the curvature sample, formed again only when refresh is
 * set (a generalized M-step only needs descent, and EM's own rate, not the
 * M-step's, limits convergence).
 */
static void
NewtonDirections(const PrmMixtureProblem *p, MixWork *wk, const double *w,
				 const double *gamma, int refresh)
{
	int			k = p->k;
	int			d = p->d;
	int			one = 1;

	memset(wk->grad, 0, sizeof(double) * (size_t) k * d);
	for (int64_t start = 0; start < p->n; start += MIX_BLOCK_ROWS)
	{
		int			nb = (int) (p->n - start < MIX_BLOCK_ROWS ?
								p->n - start : MIX_BLOCK_ROWS);

		if ((start / MIX_BLOCK_ROWS) % 64 == 0)
			PrmCheckInterrupts();
		for (int i = 0; i < nb; i++)
		{
			double		a = p->weight ? p->weight[start + i] : 1.0;
			const double *g = gamma + (size_t) p->user[start + i] * k;
			const double *r = wk->resid + (size_t) (start + i) * k;

			/* d/dw of -log sigmoid(m) is (sigmoid(m) - 1) z */
			for (int c = 0; c < k; c++)
				wk->rblock[(size_t) i * k + c] = a * g[c] * r[c];
		}
		for (int c = 0; c < k; c++)
			cblas_dgemv(CblasRowMajor, CblasTrans, nb, d, 1.0,
						p->z + start * d, d, wk->rblock + c, k, 1.0,
						wk->grad + (size_t) c * d, 1);
	}

	for (int c = 0; c < k; c++)
	{
		double	   *gc = wk->grad + (size_t) c * d;
		double	   *pc = wk->dir + (size_t) c * d;
		int			info;

		cblas_daxpy(d, p->l2, w + (size_t) c * d, 1, gc, 1);
		if (refresh)
			FactorHessian(p, wk, w, gamma, c);
		for (int j = 0; j < d; j++)
			pc[j] = -gc[j];
		dpotrs_("U", &d, &one, wk->chol + (size_t) c * d * d, &d, pc, &d,
				&info);
		wk->slope[c] = cblas_ddot(d, gc, 1, pc, 1);
		if (!(wk->slope[c] < 0))
		{
			/* not a descent direction: fall back to steepest descent */
			for (int j = 0; j < d; j++)
				pc[j] = -gc[j];
			wk->slope[c] = -cblas_ddot(d, gc, 1, gc, 1);
		}
	}
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
 * One generalized M-step: mixing weights from gamma, then a Newton step for
 * every component at once, each halved until it lowers that component's
 * objective (within rounding). Leaves the pass at the new w in resid and
 * logl, ready for the next E-step.
 */
static void
NewtonMStep(const PrmMixtureProblem *p, MixWork *wk, double *w, double *pi,
			const double *gamma)
{
	int			k = p->k;
	int			d = p->d;
	int			refresh;

	for (int c = 0; c < k; c++)
	{
		double		mass = 0.0;

		for (int32_t u = 0; u < p->users; u++)
			mass += gamma[(size_t) u * k + c];
		pi[c] = mass / p->users;
	}

	/* logl and resid hold the pass at w: objectives and directions there */
	ComponentObjectives(p, w, gamma, wk->logl, wk->fold);
	refresh = wk->chol_age == 0 || wk->chol_age >= HESSIAN_REUSE;
	NewtonDirections(p, wk, w, gamma, refresh);
	wk->chol_age = refresh ? 1 : wk->chol_age + 1;
	memcpy(wk->gamma_old, gamma, sizeof(double) * (size_t) p->users * k);
	memcpy(wk->wold, w, sizeof(double) * (size_t) k * d);
	for (int c = 0; c < k; c++)
	{
		wk->alpha[c] = 1.0;
		cblas_daxpy(d, 1.0, wk->dir + (size_t) c * d, 1, w + (size_t) c * d,
					1);
	}

	for (int halvings = 0;; halvings++)
	{
		int			all_ok = 1;

		MarginPass(p, wk, w, wk->gamma_old);
		for (int c = 0; c < k; c++)
		{
			double		allowed = wk->fold[c] +
				ARMIJO_C * wk->alpha[c] * wk->slope[c] +
				ROUNDING_REL * fabs(wk->fold[c]);

			if (wk->alpha[c] == 0.0 || wk->fnew[c] <= allowed)
				continue;
			all_ok = 0;
			wk->alpha[c] = halvings + 1 < MAX_HALVINGS ?
				wk->alpha[c] * 0.5 : 0.0;
			for (int j = 0; j < d; j++)
				w[(size_t) c * d + j] = wk->wold[(size_t) c * d + j] +
					wk->alpha[c] * wk->dir[(size_t) c * d + j];
		}
		if (all_ok)
			break;
		/* a step that had to be shortened asks for fresh Hessians */
		wk->chol_age = 0;
	}
}

/*
 * Get ready to run EM on p from w: the curvature sample, fresh Hessians at
 * the first M-step, and the pass at w that the first E-step reads
 */
static void
BeginRun(const PrmMixtureProblem *p, MixWork *wk, const double *w)
{
	UseCurvatureSample(p, wk);
	wk->chol_age = 0;
	MarginPass(p, wk, w, NULL);
}

/*
 * Run EM on p from w and pi until the relative change of the penalized
 * log-likelihood is at most tol; gamma receives the final
 * responsibilities. trace, when not NULL, receives the objective of every
 * iteration. With goes_on set, the run goes on from KMeansStart on the same
 * p: the workspace already holds the curvature sample and the pass at w.
 */
static PrmStatus
RunEm(const PrmMixtureProblem *p, MixWork *wk, double *w, double *pi,
	  double *gamma, double tol, int max_iter, bool polish, bool goes_on,
	  double *trace, PrmMixtureResult *res)
{
	double		prev = -INFINITY;
	double		obj = 0.0;
	double		ll = 0.0;
	int			it;
	PrmStatus	st;

	res->converged = 0;
	if (goes_on)
		wk->chol_age = 0;
	else
		BeginRun(p, wk, w);
	for (it = 0;; it++)
	{
		obj = Responsibilities(p, wk, w, pi, gamma, &ll);
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
		NewtonMStep(p, wk, w, pi, gamma);
	}

	/*
	 * Polish the final run (restarts only compare objectives): solve every
	 * component to full precision for the final responsibilities.
	 */
	if (polish)
	{
		st = MStep(p, wk, w, pi, gamma, POLISH_TOL,
				   PRM_BTL_DEFAULT_MAX_ITER);
		if (st != PRM_OK)
			return st;
		obj = EStep(p, wk, w, pi, gamma, &ll);
		if (trace)
			trace[++it] = obj;
	}
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
 * a few Lloyd iterations, then hard responsibilities and START_MSTEPS of
 * EM's M-steps from w = 0.
 */
static void
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
	BeginRun(p, wk, w);
	for (int s = 0; s < START_MSTEPS; s++)
		NewtonMStep(p, wk, w, pi, gamma);
}

/* Order components by decreasing key (which is reordered with them) */
static void
SortComponents(int k, int d, int32_t users, double *w, double *pi,
			   double *gamma, double *tmp, double *key)
{
	for (int a = 0; a < k; a++)
	{
		int			top = a;

		for (int b = a + 1; b < k; b++)
			if (key[b] > key[top])
				top = b;
		if (top == a)
			continue;
		{
			double		t = key[a];

			key[a] = key[top];
			key[top] = t;
		}
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

/*
 * Sort keys that put each component where the start's closest component
 * is: greedily pair the closest (component, start component) pair left.
 */
static void
MatchStart(int k, int d, const double *w, const double *start, double *dist,
		   double *key)
{
	for (int a = 0; a < k; a++)
		for (int s = 0; s < k; s++)
		{
			double		sum = 0.0;

			for (int j = 0; j < d; j++)
			{
				double		t = w[(size_t) a * d + j] -
					start[(size_t) s * d + j];

				sum += t * t;
			}
			dist[(size_t) a * k + s] = sum;
		}
	for (int a = 0; a < k; a++)
		key[a] = NAN;
	for (int step = 0; step < k; step++)
	{
		int			ba = -1,
					bs = -1;

		for (int a = 0; a < k; a++)
		{
			if (!isnan(key[a]))
				continue;
			for (int s = 0; s < k; s++)
			{
				if (dist[(size_t) a * k + s] == INFINITY)
					continue;
				if (ba < 0 || dist[(size_t) a * k + s] <
					dist[(size_t) ba * k + bs])
					ba = a, bs = s;
			}
		}
		if (ba < 0)
			break;				/* only NaN distances left */
		key[ba] = -(double) bs;
		for (int a = 0; a < k; a++)
			dist[(size_t) a * k + bs] = INFINITY;
	}
	for (int a = 0; a < k; a++)		/* unmatched (NaN input): last */
		if (isnan(key[a]))
			key[a] = -(double) k - a;
}

/*
 * Run EM on the restart sample from the start in wk->w and wk->pi, to the
 * restarts' looser tolerance; keep it as the best start when its objective
 * beats *best (so an earlier start wins ties). goes_on as in RunEm.
 */
static PrmStatus
RunStart(MixWork *wk, double tol, int max_iter, bool goes_on, double *best,
		 double *objective, bool *kept)
{
	PrmMixtureResult rr = {0};
	int			k = wk->sample.k;
	int			d = wk->sample.d;
	PrmStatus	st;

	st = RunEm(&wk->sample, wk, wk->w, wk->pi, wk->gamma,
			   fmax(tol, RESTART_TOL), Min(max_iter, RESTART_MAX_ITER),
			   false, goes_on, NULL, &rr);
	*kept = false;
	if (st != PRM_OK)
		return st;
	*objective = rr.objective;
	if (rr.objective > *best)
	{
		*best = rr.objective;
		memcpy(wk->bestw, wk->w, sizeof(double) * (size_t) k * d);
		memcpy(wk->bestpi, wk->pi, sizeof(double) * k);
		*kept = true;
	}
	return PRM_OK;
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
	double		obj;
	bool		kept;
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
	if (opt->start_base)
	{
		double		total = 0.0;

		memcpy(wk.w, opt->start_base, sizeof(double) * (size_t) k * d);
		for (int c = 0; c < k; c++)
		{
			double		m = opt->start_mixing ? opt->start_mixing[c] : 1.0;

			wk.pi[c] = isfinite(m) && m > 1e-6 ? m : 1e-6;
			total += wk.pi[c];
		}
		for (int c = 0; c < k; c++)
			wk.pi[c] /= total;
		for (size_t i = 0; i < (size_t) k * d; i++)
			if (!isfinite(wk.w[i]))
				return res->status = PRM_BAD_INPUT;
		st = RunStart(&wk, tol, max_iter, false, &best, &obj, &kept);
		if (st != PRM_OK)
			return res->status = st;
		res->warm_start_won = 1;
	}
	for (int r = 0; r < restarts; r++)
	{
		uint64_t	seed = opt->seed + 0x9e3779b97f4a7c15ULL * (uint64_t) r;

		KMeansStart(&wk.sample, &wk, seed, wk.w, wk.pi, wk.gamma);
		st = RunStart(&wk, tol, max_iter, true, &best, &objs[r], &kept);
		if (st != PRM_OK)
			return res->status = st;
		if (kept)
			res->warm_start_won = 0;
	}
	res->restarts = restarts;
	for (int r = 0; r < restarts; r++)
		if (objs[r] >= best - fmax(SAME_OPTIMUM_ABS,
								   SAME_OPTIMUM_REL * fabs(best)))
			res->restarts_at_best++;

	/* the final run: from the best start, on every user */
	memcpy(base, wk.bestw, sizeof(double) * (size_t) k * d);
	memcpy(mixing, wk.bestpi, sizeof(double) * k);
	st = RunEm(prob, &wk, base, mixing, resp, tol, max_iter, true, false,
			   opt->trace, res);
	if (st != PRM_OK)
		return res->status = st;

	if (opt->start_base)
		MatchStart(k, d, base, opt->start_base, wk.cdist, wk.key);
	else
		memcpy(wk.key, mixing, sizeof(double) * k);
	SortComponents(k, d, prob->users, base, mixing, resp, wk.w, wk.key);
	res->bic = -2.0 * res->loglik +
		(double) PrmMixtureParameters(k, d) * log((double) prob->users);
	return res->status = PRM_OK;
}
