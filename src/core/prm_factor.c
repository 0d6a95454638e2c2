/*
 * prm_factor.c
 *	  Factorized reward models: fitting B, the population prior and every
 *	  user's coefficients; a new user's posterior; question selection.
 */
#include "prm_factor.h"

#include <math.h>
#include <string.h>

#include <cblas.h>

extern void dsyev_(const char *jobz, const char *uplo, const int *n,
				   double *a, const int *lda, double *w, double *work,
				   const int *lwork, int *info);

/*
 * Rows per block of a pass over the difference vectors, and per dsyrk call
 * when forming a Hessian of B
 */
#define SYRK_ROWS 2048

/* Newton iterations and tolerance of one user's posterior mode */
#define USER_MAX_ITER 50
#define USER_TOL 1e-10

/* Largest step of the extrapolation between rounds, in rounds */
#define SQUAREM_MAX_STEP 64.0

/* Relative change of the users' rewards below which a fit has converged */
#define REWARD_TOL 1e-4

/* Line search of the B step */
#define ARMIJO_C 1e-4
#define ROUNDING_REL 1e-12
#define MAX_HALVINGS 30

/*
 * Floor of the empirical-Bayes variances, relative to their mean: a base
 * reward along which users do not differ would otherwise see its variance
 * shrink forever, and the fit never converge.
 */
#define SIGMA_FLOOR 1e-3

/* Workspace of the full fit */
typedef struct FacWork
{
	double	   *v;				/* n x k features B z_i */
	double	   *vnew;			/* n x k features at a trial B */
	int64_t    *ustart;			/* users + 1 offsets into urows */
	int64_t    *urows;			/* rows grouped by user */
	double	   *gv;				/* rows of the largest user x k */
	double	   *gw;				/* their weights */
	void	   *uwork;			/* user posterior workspace */
	double	   *prec;			/* k x k prior precision */
	double	   *grad;			/* k x d gradient of B */
	double	   *dir;			/* k x d step of B */
	double	   *bold;			/* k x d B before the step */
	double	   *rblock;			/* SYRK_ROWS x k */
	double	   *blk;			/* SYRK_ROWS x d */
	double	   *hess;			/* d x d */
	double	   *chol;			/* k x d x d */
	double	   *cz;				/* curvature sample rows, when copied */
	double	   *cw;
	int32_t    *cu;
	double	   *csw;			/* c_n: sqrt(a s (1 - s)) of sampled rows */
	int64_t		c_n;
	const double *c_z;
	const double *c_w;
	const int32_t *c_u;
	double	   *mtmp;			/* d x d for the starting eigenvectors */
	double	   *eig;			/* d eigenvalues */
	double	   *lwork;			/* LAPACK work */
	double	   *ubuf;			/* users x d summed directions */
	double	   *cprev;			/* users x k coefficients of the last round */
	double	   *bprev;			/* k x d B of the last round */
	double	   *wtmp;			/* d */
	double	   *theta;			/* 4 x (k d + k + k k): the last three
								 * rounds' (B, mu, Sigma) and a spare */
	int			lwork_n;
	int64_t		max_rows;		/* rows of the largest user */
	double		step;			/* the step on B accepted last round */
} FacWork;

/* Invert a symmetric positive definite k x k matrix in place */
PrmStatus
PrmInvertSpd(double *a, int k)
{
	int			info;

	dpotrf_("U", &k, a, &k, &info);
	if (info != 0)
		return PRM_NOT_POSITIVE_DEFINITE;
	dpotri_("U", &k, a, &k, &info);
	if (info != 0)
		return PRM_NOT_POSITIVE_DEFINITE;
	/* column-major upper triangle: mirror into the lower one */
	for (int j = 0; j < k; j++)
		for (int i = j + 1; i < k; i++)
			a[(size_t) j * k + i] = a[(size_t) i * k + j];
	return PRM_OK;
}

/* Workspace of UserMap for n rows and k components */
static size_t
UserMapWorkSize(int64_t n, int k)
{
	/* margins, gradient, step, trial point, Hessian, factor, free index */
	return sizeof(double) * ((size_t) n + 3 * k + 2 * (size_t) k * k + k) +
		sizeof(int) * k + 64;
}

/* Bytes of workspace PrmUserPosterior needs */
size_t
PrmUserWorkspaceSize(int n, int k)
{
	return sizeof(double) * (size_t) n * k + UserMapWorkSize(n, k);
}

/* Penalized objective of one user at c from features v */
static double
UserObjective(int64_t n, int k, const double *v, const double *w,
			  const double *mu, const double *prec, const double *c,
			  double *m, double *loglik)
{
	double		f;
	double		quad = 0.0;
	double		prod = 1.0;
	double		sum = 0.0;

	for (int64_t i = 0; i < n; i++)
	{
		double		a = w ? w[i] : 1.0;
		double		e;

		m[i] = cblas_ddot(k, v + i * k, 1, c, 1);
		e = exp(-fabs(m[i]));
		PrmAddLogSigmoid(&prod, &sum, m[i], e, 1.0 / (1.0 + e), a);
	}
	f = -PrmLogSigmoidTotal(prod, sum);
	if (loglik)
		*loglik = -f;
	for (int a = 0; a < k; a++)
		for (int b = 0; b < k; b++)
			quad += (c[a] - mu[a]) * prec[(size_t) a * k + b] *
				(c[b] - mu[b]);
	return f + 0.5 * quad;
}

/*
 * Posterior mode and Laplace covariance of one user's coefficients from
 * the features v (n x k) of their rows. c holds the start on entry.
 */
static PrmStatus
UserMap(int64_t n, int k, const double *v, const double *w,
		const double *mu, const double *prec, const int *locked, double *c,
		double *cov, void *work, int *iterations, double *loglik,
		double *logdet_post)
{
	double	   *m = (double *) work;
	double	   *g = m + n;
	double	   *p = g + k;
	double	   *ct = p + k;
	double	   *h = ct + k;
	double	   *hc = h + (size_t) k * k;
	int		   *fi = (int *) (hc + (size_t) k * k);
	int			kf = 0;
	double		f;
	double		g0 = 0.0;
	int			it;

	for (int a = 0; a < k; a++)
	{
		if (locked && locked[a])
			c[a] = mu[a];
		else
			fi[kf++] = a;
	}
	memset(cov, 0, sizeof(double) * (size_t) k * k);
	f = UserObjective(n, k, v, w, mu, prec, c, m, loglik);
	for (it = 0;; it++)
	{
		double		gn = 0.0;
		double		slope = 0.0;
		double		alpha = 1.0;
		int			one = 1;
		int			info;
		int			h_ok;

		/* gradient and Hessian over the free coefficients */
		memset(g, 0, sizeof(double) * k);
		memset(h, 0, sizeof(double) * (size_t) k * k);
		for (int64_t i = 0; i < n; i++)
		{
			double		a = w ? w[i] : 1.0;
			double		s = PrmSigmoid(m[i]);
			const double *vi = v + i * k;

			for (int x = 0; x < kf; x++)
			{
				g[x] += a * (s - 1.0) * vi[fi[x]];
				for (int y = 0; y <= x; y++)
					h[(size_t) x * kf + y] += a * s * (1.0 - s) *
						vi[fi[x]] * vi[fi[y]];
			}
		}
		for (int x = 0; x < kf; x++)
		{
			for (int y = 0; y < k; y++)
				g[x] += prec[(size_t) fi[x] * k + y] * (c[y] - mu[y]);
			for (int y = 0; y <= x; y++)
			{
				h[(size_t) x * kf + y] += prec[(size_t) fi[x] * k + fi[y]];
				h[(size_t) y * kf + x] = h[(size_t) x * kf + y];
			}
			gn += g[x] * g[x];
		}
		gn = sqrt(gn);
		if (it == 0)
			g0 = gn;

		h_ok = kf == 0 || PrmCholeskyRidge(hc, h, kf, NULL) == 0;
		if (!h_ok)
			return PRM_NOT_POSITIVE_DEFINITE;
		if (kf == 0 || gn <= USER_TOL * fmax(1.0, g0) ||
			it >= USER_MAX_ITER)
			break;

		for (int x = 0; x < kf; x++)
			p[x] = -g[x];
		dpotrs_("U", &kf, &one, hc, &kf, p, &kf, &info);
		for (int x = 0; x < kf; x++)
			slope += g[x] * p[x];
		if (!(slope < 0))
			break;

		/* backtracking on f; a step too small to register ends it */
		for (int halv = 0; halv < 40; halv++, alpha *= 0.5)
		{
			double		ft;

			memcpy(ct, c, sizeof(double) * k);
			for (int x = 0; x < kf; x++)
				ct[fi[x]] += alpha * p[x];
			ft = UserObjective(n, k, v, w, mu, prec, ct, m, NULL);
			if (ft <= f + ARMIJO_C * alpha * slope ||
				(ft <= f + ROUNDING_REL * fabs(f) && -alpha * slope <
				 1e-9 * fabs(f)))
			{
				memcpy(c, ct, sizeof(double) * k);
				f = ft;
				break;
			}
		}
		f = UserObjective(n, k, v, w, mu, prec, c, m, loglik);
	}
	if (iterations)
		*iterations = it;

	/* Laplace covariance: the inverse Hessian over the free coefficients */
	if (logdet_post)
	{
		*logdet_post = 0.0;
		for (int x = 0; x < kf; x++)
			*logdet_post += 2.0 * log(hc[(size_t) x * kf + x]);
	}
	if (kf > 0)
	{
		memcpy(hc, h, sizeof(double) * (size_t) kf * kf);
		if (PrmInvertSpd(hc, kf) != PRM_OK)
			return PRM_NOT_POSITIVE_DEFINITE;
		for (int x = 0; x < kf; x++)
			for (int y = 0; y < kf; y++)
				cov[(size_t) fi[x] * k + fi[y]] = hc[(size_t) x * kf + y];
	}
	return PRM_OK;
}

/* Posterior of a new user under a fixed B and prior */
PrmStatus
PrmUserPosterior(const PrmUserProblem *prob, double *coef, double *cov,
				 void *work, int *iterations)
{
	double	   *v = (double *) work;

	/* features v_i = B z_i */
	cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, prob->n, prob->k,
				prob->d, 1.0, prob->z, prob->d, prob->base, prob->d, 0.0, v,
				prob->k);
	for (int i = 0; i < prob->n * prob->k; i++)
		if (!isfinite(v[i]))
			return PRM_BAD_INPUT;
	return UserMap(prob->n, prob->k, v, prob->weight, prob->mu, prob->prec,
				   prob->locked, coef, cov, v + (size_t) prob->n * prob->k,
				   iterations, NULL, NULL);
}

/* Rows of the user with the most comparisons */
static int64_t
MaxUserRows(const PrmFactorProblem *p, int64_t *count)
{
	int64_t		most = 0;

	memset(count, 0, sizeof(int64_t) * (p->users + 1));
	for (int64_t i = 0; i < p->n; i++)
		count[p->user[i] + 1]++;
	for (int32_t u = 0; u < p->users; u++)
		if (count[u + 1] > most)
			most = count[u + 1];
	return most;
}

/* Values in the state (B, mu, Sigma) of a round */
static size_t
ThetaSize(int k, int d)
{
	return (size_t) k * d + k + (size_t) k * k;
}

/* Copy (B, mu, Sigma) into one vector, or back (unpack true) */
static void
ThetaCopy(int k, int d, double *theta, double *base, double *mu,
		  double *sigma, int unpack)
{
	double	   *parts[3] = {base, mu, sigma};
	size_t		sizes[3] = {(size_t) k * d, (size_t) k, (size_t) k * k};

	for (int i = 0; i < 3; i++)
	{
		if (unpack)
			memcpy(parts[i], theta, sizeof(double) * sizes[i]);
		else
			memcpy(theta, parts[i], sizeof(double) * sizes[i]);
		theta += sizes[i];
	}
}

/*
 * SQUAREM's step (Varadhan and Roland, 2008) from three successive states
 * t0, t1, t2: out = t0 - 2 a r + a^2 v with r = t1 - t0, v = t2 - 2 t1 +
 * t0 and a = -|r| / |v|, at most SQUAREM_MAX_STEP in size. Returns 0 when
 * the step would not go beyond t2 (a = -1 gives t2 itself).
 */
static int
Extrapolate(size_t m, const double *t0, const double *t1, const double *t2,
			double *out)
{
	double		rr = 0.0,
				vv = 0.0,
				a;

	for (size_t i = 0; i < m; i++)
	{
		double		r = t1[i] - t0[i],
					v = t2[i] - 2.0 * t1[i] + t0[i];

		rr += r * r;
		vv += v * v;
	}
	if (!(vv > 0) || !isfinite(rr) || !isfinite(vv))
		return 0;
	a = -sqrt(rr / vv);
	if (!(a < -1.0))
		return 0;
	a = fmax(a, -SQUAREM_MAX_STEP);
	for (size_t i = 0; i < m; i++)
	{
		double		r = t1[i] - t0[i],
					v = t2[i] - 2.0 * t1[i] + t0[i];

		out[i] = t0[i] - 2.0 * a * r + a * a * v;
	}
	return 1;
}

/* Lay out the workspace of the full fit; base NULL only sizes it */
static size_t
FacWorkLayout(const PrmFactorProblem *p, char *base, FacWork *w)
{
	size_t		off = 0;
	int			k = p->k;
	int			d = p->d;
	int64_t		c_n = PrmCurvatureSample(p->z, p->n, d, NULL, NULL, NULL,
											 NULL, NULL, p->n);
	int			lwork = 3 * d + 64 * d;

#define TAKE(field, type, count) \
	do { \
		if (base) \
			w->field = (type *) (base + off); \
		off += sizeof(type) * (size_t) (count); \
		off = (off + 15) & ~(size_t) 15; \
	} while (0)

	TAKE(v, double, (size_t) p->n * k);
	TAKE(vnew, double, (size_t) p->n * k);
	TAKE(ustart, int64_t, p->users + 1);
	TAKE(urows, int64_t, p->n);
	TAKE(prec, double, (size_t) k * k);
	TAKE(grad, double, (size_t) k * d);
	TAKE(dir, double, (size_t) k * d);
	TAKE(bold, double, (size_t) k * d);
	TAKE(rblock, double, (size_t) SYRK_ROWS * k);
	TAKE(blk, double, (size_t) SYRK_ROWS * d);
	TAKE(hess, double, (size_t) d * d);
	TAKE(chol, double, (size_t) k * d * d);
	TAKE(mtmp, double, (size_t) d * d);
	TAKE(eig, double, d);
	TAKE(lwork, double, lwork);
	TAKE(ubuf, double, (size_t) p->users * d);
	TAKE(cprev, double, (size_t) p->users * k);
	TAKE(bprev, double, (size_t) k * d);
	TAKE(wtmp, double, (size_t) 2 * d);
	TAKE(theta, double, 4 * ThetaSize(k, d));
	TAKE(csw, double, c_n);
	if (c_n < p->n)
	{
		TAKE(cz, double, (size_t) c_n * d);
		TAKE(cw, double, c_n);
		TAKE(cu, int32_t, c_n);
	}
	if (base)
	{
		w->lwork_n = lwork;
		w->c_n = c_n;
		w->max_rows = MaxUserRows(p, w->ustart);
	}
	else
	{
		/* sizes that depend on the largest user: bound by all rows */
		w->max_rows = p->n;
	}
	TAKE(gv, double, (size_t) w->max_rows * k);
	TAKE(gw, double, w->max_rows);
	TAKE(uwork, char, UserMapWorkSize(w->max_rows, k));
#undef TAKE
	return off;
}

/* Bytes of workspace PrmFactorFit needs */
size_t
PrmFactorWorkspaceSize(const PrmFactorProblem *prob)
{
	FacWork		w;

	return FacWorkLayout(prob, NULL, &w);
}

/* Features of every row at B: out = Z B^T (n x k), a block at a time */
static void
Features(const PrmFactorProblem *p, const double *b, double *out)
{
	for (int64_t start = 0; start < p->n; start += SYRK_ROWS)
	{
		int			nb = (int) (p->n - start < SYRK_ROWS ?
								p->n - start : SYRK_ROWS);

		PrmCheckInterrupts();
		cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, p->k, p->d,
					1.0, p->z + start * p->d, p->d, b, p->d, 0.0,
					out + start * p->k, p->k);
	}
}

/* Negative log-likelihood plus the B penalty, from features and coef */
static double
BObjective(const PrmFactorProblem *p, const double *v, const double *coef,
		   const double *b)
{
	double		prod = 1.0;
	double		sum = 0.0;
	double		ss = cblas_ddot(p->k * p->d, b, 1, b, 1);

	for (int64_t i = 0; i < p->n; i++)
	{
		double		a = p->weight ? p->weight[i] : 1.0;
		double		m = cblas_ddot(p->k, v + i * p->k, 1,
								   coef + (size_t) p->user[i] * p->k, 1);
		double		e = exp(-fabs(m));

		PrmAddLogSigmoid(&prod, &sum, m, e, 1.0 / (1.0 + e), a);
	}
	return -PrmLogSigmoidTotal(prod, sum) + 0.5 * p->l2 * ss;
}

/* Starting B: the top k eigenvectors of the users' summed differences */
static PrmStatus
StartingBase(const PrmFactorProblem *p, FacWork *wk, double *b,
			 double *ubuf)
{
	int			d = p->d;
	int			info;

	/* ubuf: users x d sums of each user's difference vectors */
	memset(ubuf, 0, sizeof(double) * (size_t) p->users * d);
	for (int64_t i = 0; i < p->n; i++)
		cblas_daxpy(d, p->weight ? p->weight[i] : 1.0, p->z + i * d, 1,
					ubuf + (size_t) p->user[i] * d, 1);
	for (int32_t u = 0; u < p->users; u++)
	{
		double		norm = cblas_dnrm2(d, ubuf + (size_t) u * d, 1);

		if (norm > 0)
			cblas_dscal(d, 1.0 / norm, ubuf + (size_t) u * d, 1);
	}
	memset(wk->mtmp, 0, sizeof(double) * (size_t) d * d);
	cblas_dsyrk(CblasColMajor, CblasUpper, CblasNoTrans, d, p->users, 1.0,
				ubuf, d, 0.0, wk->mtmp, d);
	dsyev_("V", "U", &d, wk->mtmp, &d, wk->eig, wk->lwork, &wk->lwork_n,
		   &info);
	if (info != 0)
		return PRM_NOT_POSITIVE_DEFINITE;
	/* eigenvalues ascend; column d - 1 - c is the c-th largest */
	for (int c = 0; c < p->k; c++)
		memcpy(b + (size_t) c * d, wk->mtmp + (size_t) (d - 1 - c) * d,
			   sizeof(double) * d);
	return PRM_OK;
}

/*
 * Every user's posterior mode and covariance at the features in wk->v;
 * returns the log-likelihood.
 */
static PrmStatus
UserStep(const PrmFactorProblem *p, FacWork *wk, const double *mu,
		 double *coef, double *cov, double *loglik, double *logdet_post)
{
	int			k = p->k;
	double		ll = 0.0;
	double		logdet = 0.0;

	for (int32_t u = 0; u < p->users; u++)
	{
		int64_t		rows = wk->ustart[u + 1] - wk->ustart[u];
		double		lu = 0.0;
		double		ld = 0.0;
		PrmStatus	st;

		if ((u & 1023) == 0)
			PrmCheckInterrupts();
		for (int64_t r = 0; r < rows; r++)
		{
			int64_t		i = wk->urows[wk->ustart[u] + r];

			memcpy(wk->gv + r * k, wk->v + i * k, sizeof(double) * k);
			wk->gw[r] = p->weight ? p->weight[i] : 1.0;
		}
		st = UserMap(rows, k, wk->gv, wk->gw, mu, wk->prec, p->locked,
					 coef + (size_t) u * k, cov + (size_t) u * k * k,
					 wk->uwork, NULL, &lu, &ld);
		if (st != PRM_OK)
			return st;
		ll += lu;
		logdet += ld;
	}
	*loglik = ll;
	*logdet_post = logdet;
	return PRM_OK;
}

static PrmStatus FinishPrior(const PrmFactorProblem *p, FacWork *wk,
							 double *sigma);

/*
 * Empirical Bayes: mu and sigma from the users' posterior means and
 * covariances, then the prior precision.
 */
static PrmStatus
PriorStep(const PrmFactorProblem *p, FacWork *wk, double *mu, double *sigma,
		  const double *coef, const double *cov)
{
	int			k = p->k;

	for (int a = 0; a < k; a++)
	{
		double		s = 0.0;

		if (p->locked && p->locked[a])
			continue;
		for (int32_t u = 0; u < p->users; u++)
			s += coef[(size_t) u * k + a];
		mu[a] = s / p->users;
	}
	memset(sigma, 0, sizeof(double) * (size_t) k * k);
	for (int32_t u = 0; u < p->users; u++)
		for (int a = 0; a < k; a++)
			for (int b = 0; b < k; b++)
				sigma[(size_t) a * k + b] +=
					(coef[(size_t) u * k + a] - mu[a]) *
					(coef[(size_t) u * k + b] - mu[b]) +
					cov[(size_t) u * k * k + (size_t) a * k + b];
	for (int a = 0; a < k * k; a++)
		sigma[a] /= p->users;
	return FinishPrior(p, wk, sigma);
}

/*
 * Symmetrize sigma, floor its variances and fix its locked rows and
 * columns, then set the prior precision from it.
 */
static PrmStatus
FinishPrior(const PrmFactorProblem *p, FacWork *wk, double *sigma)
{
	int			k = p->k;

	for (int a = 0; a < k; a++)
		for (int b = 0; b < a; b++)
			sigma[(size_t) a * k + b] = sigma[(size_t) b * k + a] =
				0.5 * (sigma[(size_t) a * k + b] + sigma[(size_t) b * k + a]);
	{
		double		mean_var = 0.0;
		int			kf = 0;

		for (int a = 0; a < k; a++)
			if (!(p->locked && p->locked[a]))
			{
				mean_var += sigma[(size_t) a * k + a];
				kf++;
			}
		mean_var = kf > 0 ? mean_var / kf : 1.0;
		for (int a = 0; a < k; a++)
		{
			if (p->locked && p->locked[a])
			{
				/* a locked coefficient does not vary: keep it out */
				for (int b = 0; b < k; b++)
					sigma[(size_t) a * k + b] = sigma[(size_t) b * k + a] = 0.0;
				sigma[(size_t) a * k + a] = 1.0;
			}
			else if (sigma[(size_t) a * k + a] < SIGMA_FLOOR * mean_var)
				sigma[(size_t) a * k + a] = SIGMA_FLOOR * mean_var;
			sigma[(size_t) a * k + a] += 1e-12;
		}
	}

	memcpy(wk->prec, sigma, sizeof(double) * (size_t) k * k);
	if (PrmInvertSpd(wk->prec, k) != PRM_OK)
		return PRM_NOT_POSITIVE_DEFINITE;
	for (int a = 0; a < k * k; a++)
		wk->prec[a] *= p->prior_strength;
	return PRM_OK;
}

/*
 * Scale the rows of B that belong to unlocked components to unit norm.
 *
 * c_u . (B x) is unchanged when a row of B is scaled and the matching
 * coefficients are divided by the same factor, so without a convention the
 * prior and B would trade scale forever. Unlocked rows are directions and
 * their coefficients carry the magnitude; a locked row keeps its magnitude,
 * since its coefficient is fixed at 1 for everyone.
 */
static void
NormalizeRows(const PrmFactorProblem *p, double *b)
{
	for (int c = 0; c < p->k; c++)
	{
		double		norm;

		if (p->locked && p->locked[c])
			continue;
		norm = cblas_dnrm2(p->d, b + (size_t) c * p->d, 1);
		if (norm > 0)
			cblas_dscal(p->d, 1.0 / norm, b + (size_t) c * p->d, 1);
	}
}

/* -1/2 sum_u (c_u - mu)' P (c_u - mu) + users/2 log det P, free part */
static double
PriorTerm(const PrmFactorProblem *p, FacWork *wk, const double *mu,
		  const double *coef)
{
	int			k = p->k;
	int			info;
	double		quad = 0.0;
	double		logdet = 0.0;

	memcpy(wk->mtmp, wk->prec, sizeof(double) * (size_t) k * k);
	dpotrf_("U", &k, wk->mtmp, &k, &info);
	for (int a = 0; a < k; a++)
		if (!(p->locked && p->locked[a]))
			logdet += 2.0 * log(wk->mtmp[(size_t) a * k + a]);
	for (int32_t u = 0; u < p->users; u++)
		for (int a = 0; a < k; a++)
			for (int b = 0; b < k; b++)
				quad += (coef[(size_t) u * k + a] - mu[a]) *
					wk->prec[(size_t) a * k + b] *
					(coef[(size_t) u * k + b] - mu[b]);
	return -0.5 * quad + 0.5 * p->users * logdet;
}

/*
 * One Newton step on B with the coefficients fixed: exact gradient, a
 * block-diagonal Hessian (one d x d block per base reward, from the
 * curvature sample), projected back to unit rows and halved until the
 * objective falls. Leaves the features at the new B in wk->v.
 */
static void
BaseStep(const PrmFactorProblem *p, FacWork *wk, double *b,
		 const double *coef)
{
	int			k = p->k;
	int			d = p->d;
	double		scale = (double) p->n / (double) wk->c_n;
	double		slope = 0.0;
	double		fold = BObjective(p, wk->v, coef, b);
	/*
	 * The block-diagonal Hessian misses the coupling between base rewards,
	 * so the accepted step is often well below 1 and about the same from
	 * one round to the next: start at twice the last one, which spares
	 * the passes of the halvings that would only get back there.
	 */
	double		alpha = fmin(1.0, 2.0 * wk->step);
	int			one = 1;

	/* gradient: sum_i a_i (sigmoid(m_i) - 1) c_u z_i' + l2 B */
	memset(wk->grad, 0, sizeof(double) * (size_t) k * d);
	for (int64_t start = 0; start < p->n; start += SYRK_ROWS)
	{
		int			nb = (int) (p->n - start < SYRK_ROWS ?
								p->n - start : SYRK_ROWS);

		PrmCheckInterrupts();
		for (int i = 0; i < nb; i++)
		{
			int64_t		row = start + i;
			const double *cu = coef + (size_t) p->user[row] * k;
			double		a = p->weight ? p->weight[row] : 1.0;
			double		m = cblas_ddot(k, wk->v + row * k, 1, cu, 1);
			double		r = a * (PrmSigmoid(m) - 1.0);

			for (int c = 0; c < k; c++)
				wk->rblock[(size_t) i * k + c] = r * cu[c];
		}
		/* grad += R' Z over the block, R the nb x k residuals r c_u */
		cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, d, nb, 1.0,
					wk->rblock, k, p->z + start * d, d, 1.0, wk->grad, d);
	}
	cblas_daxpy(k * d, p->l2, b, 1, wk->grad, 1);

	/* every sampled row's sqrt(a s (1 - s)), from its features at B */
	for (int64_t start = 0; start < wk->c_n; start += SYRK_ROWS)
	{
		int			nb = (int) (wk->c_n - start < SYRK_ROWS ?
								wk->c_n - start : SYRK_ROWS);
		const double *vb = wk->v + start * k;

		PrmCheckInterrupts();
		if (wk->c_z != p->z)
		{
			/* a sample: its rows' features are not in wk->v */
			cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, k, d,
						1.0, wk->c_z + start * d, d, b, d, 0.0, wk->rblock,
						k);
			vb = wk->rblock;
		}
		for (int i = 0; i < nb; i++)
		{
			const double *cu = coef + (size_t) wk->c_u[start + i] * k;
			double		a = wk->c_w ? wk->c_w[start + i] : 1.0;
			double		s = PrmSigmoid(cblas_ddot(k, vb + (size_t) i * k, 1,
												  cu, 1));

			wk->csw[start + i] = sqrt(a * s * (1.0 - s));
		}
	}

	/* block c of the Hessian: sum a s (1 - s) c_uc^2 z z' + l2 I */
	for (int c = 0; c < k; c++)
	{
		double	   *gc = wk->grad + (size_t) c * d;
		double	   *pc = wk->dir + (size_t) c * d;
		int			info;

		memset(wk->hess, 0, sizeof(double) * (size_t) d * d);
		for (int64_t start = 0; start < wk->c_n; start += SYRK_ROWS)
		{
			int			nb = (int) (wk->c_n - start < SYRK_ROWS ?
									wk->c_n - start : SYRK_ROWS);
			const double *zb = wk->c_z + start * d;

			PrmCheckInterrupts();
			for (int i = 0; i < nb; i++)
			{
				double		sc = fabs(coef[(size_t) wk->c_u[start + i] * k +
										   c]) * wk->csw[start + i];

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
		for (int j = 0; j < d; j++)
			pc[j] = -gc[j];
		if (PrmCholeskyRidge(wk->chol, wk->hess, d, NULL) == 0)
			dpotrs_("U", &d, &one, wk->chol, &d, pc, &d, &info);
	}
	slope = cblas_ddot(k * d, wk->grad, 1, wk->dir, 1);
	if (!(slope < 0))
	{
		for (int j = 0; j < k * d; j++)
			wk->dir[j] = -wk->grad[j];
		slope = -cblas_ddot(k * d, wk->grad, 1, wk->grad, 1);
	}

	memcpy(wk->bold, b, sizeof(double) * (size_t) k * d);
	for (int h = 0; h < MAX_HALVINGS; h++, alpha *= 0.5)
	{
		double		fnew;

		for (int j = 0; j < k * d; j++)
			b[j] = wk->bold[j] + alpha * wk->dir[j];
		NormalizeRows(p, b);
		Features(p, b, wk->vnew);
		fnew = BObjective(p, wk->vnew, coef, b);
		if (fnew <= fold + ARMIJO_C * alpha * slope +
			ROUNDING_REL * fabs(fold))
		{
			double	   *t = wk->v;

			wk->v = wk->vnew;
			wk->vnew = t;
			wk->step = alpha;
			return;
		}
	}
	/* no decrease found: keep B */
	memcpy(b, wk->bold, sizeof(double) * (size_t) k * d);
	wk->step = 1.0;
}

/*
 * The objective of a round: the Laplace approximation of the marginal
 * likelihood from the user step's log-likelihood and posteriors, under the
 * prior that step used.
 */
static double
RoundObjective(const PrmFactorProblem *p, FacWork *wk, const double *base,
			   const double *mu, const double *coef, double loglik,
			   double logdet_post)
{
	return loglik + PriorTerm(p, wk, mu, coef) - 0.5 * logdet_post -
		0.5 * p->l2 * cblas_ddot(p->k * p->d, base, 1, base, 1);
}

/*
 * Go back from an extrapolated state to the last round's, the third of the
 * states kept in wk->theta, with its prior precision.
 */
static PrmStatus
BackToLastRound(const PrmFactorProblem *p, FacWork *wk, double *base,
				double *mu, double *sigma)
{
	ThetaCopy(p->k, p->d, wk->theta + 2 * ThetaSize(p->k, p->d), base, mu,
			  sigma, 1);
	return FinishPrior(p, wk, sigma);
}

/*
 * Relative change of the users' weight vectors B' c_u since the last
 * round: the rewards the model serves, which settle long before B and the
 * coefficients stop trading rotations along flat directions.
 */
static double
RewardChange(const PrmFactorProblem *p, FacWork *wk, const double *base,
			 const double *coef)
{
	int			k = p->k;
	int			d = p->d;
	double		diff = 0.0;
	double		size = 0.0;

	for (int32_t u = 0; u < p->users; u++)
	{
		double	   *now = wk->wtmp;
		double	   *before = wk->wtmp + d;

		cblas_dgemv(CblasRowMajor, CblasTrans, k, d, 1.0, base, d,
					coef + (size_t) u * k, 1, 0.0, now, 1);
		cblas_dgemv(CblasRowMajor, CblasTrans, k, d, 1.0, wk->bprev, d,
					wk->cprev + (size_t) u * k, 1, 0.0, before, 1);
		for (int j = 0; j < d; j++)
		{
			diff += (now[j] - before[j]) * (now[j] - before[j]);
			size += now[j] * now[j];
		}
	}
	return size > 0 ? sqrt(diff / size) : 0.0;
}

/* Fit the factorized model */
PrmStatus
PrmFactorFit(const PrmFactorProblem *prob, const PrmFactorOptions *opt,
			 double *base, double *mu, double *sigma, double *coef,
			 double *cov, void *work, PrmFactorResult *res)
{
	FacWork		wk = {0};
	int			k = prob->k;
	double		tol = opt->tol > 0 ? opt->tol : PRM_FACTOR_DEFAULT_TOL;
	int			max_iter = opt->max_iter > 0 ? opt->max_iter :
		PRM_FACTOR_DEFAULT_MAX_ITER;
	double		prev = -INFINITY;
	int			calm = 0;		/* rounds in a row of a tiny change */
	size_t		m = ThetaSize(k, prob->d);
	int			hist = 0;		/* rounds stored in wk.theta since a jump */
	int			trial = 0;		/* this round starts from a jump */
	double		trial_ref = 0.0;	/* the objective the jump must beat */
	double		obj = 0.0;
	double		ll = 0.0;
	PrmStatus	st;
	int			it;

	memset(res, 0, sizeof(*res));
	if (prob->n <= 0 || prob->d <= 0 || k < 1 || k > prob->d ||
		prob->users < 1 || !(prob->l2 > 0) || !isfinite(prob->l2) ||
		!(prob->prior_strength > 0) || !isfinite(prob->prior_strength))
		return res->status = PRM_BAD_INPUT;

	FacWorkLayout(prob, (char *) work, &wk);
	wk.step = 1.0;

	/* rows grouped by user */
	for (int32_t u = 0; u < prob->users; u++)
		wk.ustart[u + 1] += wk.ustart[u];
	{
		int64_t    *fill = (int64_t *) wk.v;	/* free until Features */

		memcpy(fill, wk.ustart, sizeof(int64_t) * prob->users);
		for (int64_t i = 0; i < prob->n; i++)
			wk.urows[fill[prob->user[i]]++] = i;
	}

	/* the curvature sample of B */
	if (wk.c_n < prob->n)
	{
		PrmCurvatureSample(prob->z, prob->n, prob->d, prob->weight,
						   prob->user, wk.cz, wk.cw, wk.cu, wk.c_n);
		wk.c_z = wk.cz;
		wk.c_w = wk.cw;
		wk.c_u = wk.cu;
	}
	else
	{
		wk.c_z = prob->z;
		wk.c_w = prob->weight;
		wk.c_u = prob->user;
	}

	/* start: B given or from the users' directions, prior N(0 or 1, I) */
	if (opt->start_base)
	{
		for (size_t i = 0; i < (size_t) k * prob->d; i++)
			if (!isfinite(opt->start_base[i]))
				return res->status = PRM_BAD_INPUT;
		for (int a = 0; opt->start_mu && a < k; a++)
			if (!isfinite(opt->start_mu[a]))
				return res->status = PRM_BAD_INPUT;
		memcpy(base, opt->start_base, sizeof(double) * (size_t) k * prob->d);
	}
	else
	{
		st = StartingBase(prob, &wk, base, wk.ubuf);
		if (st != PRM_OK)
			return res->status = st;
	}
	memset(sigma, 0, sizeof(double) * (size_t) k * k);
	memset(wk.prec, 0, sizeof(double) * (size_t) k * k);
	for (int a = 0; a < k; a++)
	{
		mu[a] = (prob->locked && prob->locked[a]) ? 1.0 : 0.0;
		sigma[(size_t) a * k + a] = 1.0;
		wk.prec[(size_t) a * k + a] = prob->prior_strength;
	}
	if (opt->start_base && opt->start_mu && opt->start_sigma)
	{
		/* the warm start's prior, unless it is not a usable covariance */
		memcpy(wk.prec, opt->start_sigma, sizeof(double) * (size_t) k * k);
		if (PrmInvertSpd(wk.prec, k) == PRM_OK)
		{
			memcpy(sigma, opt->start_sigma, sizeof(double) * (size_t) k * k);
			for (int a = 0; a < k; a++)
				if (!(prob->locked && prob->locked[a]))
					mu[a] = opt->start_mu[a];
			for (int a = 0; a < k * k; a++)
				wk.prec[a] *= prob->prior_strength;
		}
		else
		{
			memset(wk.prec, 0, sizeof(double) * (size_t) k * k);
			for (int a = 0; a < k; a++)
				wk.prec[(size_t) a * k + a] = prob->prior_strength;
		}
	}
	for (int32_t u = 0; u < prob->users; u++)
		memcpy(coef + (size_t) u * k, mu, sizeof(double) * k);
	Features(prob, base, wk.v);

	for (it = 0;; it++)
	{
		double		logdet_post;

		st = UserStep(prob, &wk, mu, coef, cov, &ll, &logdet_post);
		if (st != PRM_OK)
			return res->status = st;

		/*
		 * The objective is the Laplace approximation of the marginal
		 * likelihood, evaluated under the prior the user step used. The
		 * empirical-Bayes update of the prior climbs it; the step on B
		 * climbs the joint likelihood of B and the coefficients instead,
		 * so the objective can fall for some rounds.
		 */
		obj = RoundObjective(prob, &wk, base, mu, coef, ll, logdet_post);
		if (trial && !(obj >= trial_ref))
		{
			/* the extrapolated state lost: back to the last round's */
			st = BackToLastRound(prob, &wk, base, mu, sigma);
			if (st == PRM_OK)
			{
				Features(prob, base, wk.v);
				st = UserStep(prob, &wk, mu, coef, cov, &ll, &logdet_post);
			}
			if (st != PRM_OK)
				return res->status = st;
			obj = RoundObjective(prob, &wk, base, mu, coef, ll, logdet_post);
		}
		trial = 0;
		st = PriorStep(prob, &wk, mu, sigma, coef, cov);
		if (st != PRM_OK)
			return res->status = st;
		if (!isfinite(obj))
			return res->status = PRM_BAD_INPUT;
		if (opt->trace)
			opt->trace[it] = obj;
		/*
		 * The objective need not rise every round (the step on B does not
		 * see the posteriors' log-determinants), so a small change at one
		 * round can be a turning point: it must stay small for two rounds.
		 */
		calm = it > 0 && fabs(obj - prev) <= tol * fmax(1.0, fabs(obj)) ?
			calm + 1 : 0;
		if (it > 0 && (calm >= 2 ||
					   RewardChange(prob, &wk, base, coef) <= REWARD_TOL))
		{
			res->converged = 1;
			break;
		}
		if (it >= max_iter)
			break;
		prev = obj;
		memcpy(wk.cprev, coef, sizeof(double) * (size_t) prob->users * k);
		memcpy(wk.bprev, base, sizeof(double) * (size_t) k * prob->d);
		BaseStep(prob, &wk, base, coef);

		/*
		 * Rounds crawl when users have few comparisons each (the blocks are
		 * strongly coupled). Every third round, jump along the path of the
		 * last three; the next round keeps the jump only if its objective
		 * beats this round's.
		 */
		if (opt->plain)
			continue;
		ThetaCopy(k, prob->d, wk.theta + hist * m, base, mu, sigma, 0);
		if (++hist < 3)
			continue;
		hist = 0;
		if (!Extrapolate(m, wk.theta, wk.theta + m, wk.theta + 2 * m,
						 wk.theta + 3 * m))
			continue;
		ThetaCopy(k, prob->d, wk.theta + 3 * m, base, mu, sigma, 1);
		NormalizeRows(prob, base);
		if (FinishPrior(prob, &wk, sigma) == PRM_OK)
		{
			Features(prob, base, wk.v);
			trial = 1;
			trial_ref = obj;
		}
		else if ((st = BackToLastRound(prob, &wk, base, mu, sigma)) != PRM_OK)
			return res->status = st;
	}

	/* the final posteriors under the final prior */
	{
		double		logdet_post;

		st = UserStep(prob, &wk, mu, coef, cov, &ll, &logdet_post);
	}
	if (st != PRM_OK)
		return res->status = st;
	res->iterations = it;
	res->trace_len = opt->trace ? it + 1 : 0;
	res->objective = obj;
	res->loglik = ll;
	return res->status = PRM_OK;
}

/* Bytes of workspace PrmNextQuestions needs */
size_t
PrmQuestionsWorkspaceSize(int count, int k)
{
	return sizeof(double) * (2 * (size_t) count * k + 2 * (size_t) count +
							 (size_t) k * k + k) + sizeof(char) * count + 64;
}

/*
 * Greedy selection of the most informative questions.
 *
 * The features V = (A - B_) B' come from one matrix product per candidate
 * matrix, without forming the differences. Each candidate's quadratic form
 * q_j = v_j' C v_j is computed once; when a pick with features v updates
 * C to C - g u u' (u = C v, g = s / (1 + s v' C v)), every q_j drops by
 * g (v_j . u)^2, so a later pick costs one matrix-vector product.
 */
PrmStatus
PrmNextQuestions(int count, int d, int k, const double *cand_a,
				 const double *cand_b, const double *base, const double *coef,
				 const double *cov, int nq, int *order, double *info,
				 void *work)
{
	double	   *v = (double *) work;	/* count x k features */
	double	   *w = v + (size_t) count * k; /* count x k scratch */
	double	   *s = w + (size_t) count * k; /* count s (1 - s) */
	double	   *quad = s + count;	/* count v' C v */
	double	   *c = quad + count;	/* k x k covariance being updated */
	double	   *u = c + (size_t) k * k; /* k: C v of the last pick */
	char	   *taken = (char *) (u + k);

	if (nq > count || nq < 0)
		return PRM_BAD_INPUT;
	if (count == 0)
		return PRM_OK;
	cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, count, k, d, 1.0,
				cand_a, d, base, d, 0.0, v, k);
	if (cand_b != NULL)
		cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, count, k, d,
					-1.0, cand_b, d, base, d, 1.0, v, k);
	memcpy(c, cov, sizeof(double) * (size_t) k * k);
	/* W = V C, then q_j = v_j . w_j */
	cblas_dsymm(CblasRowMajor, CblasRight, CblasUpper, count, k, 1.0, c, k,
				v, k, 0.0, w, k);
	for (int j = 0; j < count; j++)
	{
		const double *vj = v + (size_t) j * k;
		const double *wj = w + (size_t) j * k;
		double		m = 0.0,
					q = 0.0,
					p;

		for (int a = 0; a < k; a++)
		{
			m += vj[a] * coef[a];
			q += vj[a] * wj[a];
		}
		if (!isfinite(m) || !isfinite(q))
			return PRM_BAD_INPUT;
		p = PrmSigmoid(m);
		s[j] = p * (1.0 - p);
		quad[j] = q;
		taken[j] = 0;
	}

	for (int n = 0; n < nq; n++)
	{
		int			best = -1;
		double		bestscore = -1.0,
					g;

		if (n % 16 == 0)
			PrmCheckInterrupts();
		for (int j = 0; j < count; j++)
		{
			/* rounding can leave a tiny negative form: it is zero */
			double		score = s[j] * fmax(quad[j], 0.0);

			if (!taken[j] && score > bestscore)
			{
				bestscore = score;
				best = j;
			}
		}
		order[n] = best;
		info[n] = bestscore;
		taken[best] = 1;
		if (n + 1 == nq)
			break;

		/* C <- C - g u u', and every q_j with it */
		cblas_dsymv(CblasRowMajor, CblasUpper, k, 1.0, c, k,
					v + (size_t) best * k, 1, 0.0, u, 1);
		g = s[best] / (1.0 + bestscore);
		cblas_dsyr(CblasRowMajor, CblasUpper, k, -g, u, 1, c, k);
		cblas_dgemv(CblasRowMajor, CblasNoTrans, count, k, 1.0, v, k, u, 1,
					0.0, w, 1);
		for (int j = 0; j < count; j++)
			quad[j] -= g * w[j] * w[j];
	}
	return PRM_OK;
}
