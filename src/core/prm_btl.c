/*
 * prm_btl.c
 *	  Newton and Newton-CG solvers for the penalized linear BTL model.
 *
 * Rows are visited in blocks small enough to stay in cache, so that one
 * pass over the difference vectors computes a gradient together with the
 * Hessian (Newton) or a Hessian-vector product (Newton-CG). The margins
 * m_i = w . z_i are kept between iterations, and the line search moves along
 * q = Z p without touching z again.
 */
#include "prm_btl.h"

#include <math.h>
#include <string.h>

#include <cblas.h>

/* Rows per block of a fused pass; 256 x d doubles stay in L2 for d <= 512 */
#define BLOCK_ROWS 256

/* Rows between interrupt checks in the cheap per-row loops */
#define CHECK_EVERY 65536

/* Larger |margin| means a fitted probability within 1e-11 of 0 or 1 */
#define SEPARATION_MARGIN 25.0

/* Armijo sufficient-decrease constant and the most step halvings tried */
#define ARMIJO_C 1e-4
#define MAX_HALVINGS 60

/* Most conjugate gradient steps in one Newton-CG iteration */
#define MAX_CG_STEPS 250

/* Workspace carved into named arrays */
typedef struct BtlWork
{
	double	   *m;				/* n margins */
	double	   *q;				/* n values of Z p */
	double	   *curv;			/* n curvature weights (Newton-CG) */
	double	   *g;				/* d gradient */
	double	   *p;				/* d search direction */
	double	   *wt;				/* d trial point */
	double	   *blk;			/* BLOCK_ROWS x d scaled rows (Newton) */
	double	   *rb;				/* BLOCK_ROWS residuals */
	double	   *hess;			/* d x d Hessian (Newton) */
	double	   *chol;			/* d x d Cholesky factor (Newton) */
	double	   *r;				/* d CG residual (Newton-CG) */
	double	   *s;				/* d CG direction */
	double	   *hs;				/* d Hessian times s */
	double	   *pre;			/* d diagonal preconditioner */
	double	   *y;				/* d preconditioned residual */
} BtlWork;

/* Choose Newton while a d x d Hessian is cheap next to the data pass */
PrmBtlMethod
PrmBtlChooseMethod(int64_t n, int d)
{
	if (d <= 256)
		return PRM_METHOD_NEWTON;
	return PRM_METHOD_NEWTON_CG;
}

/* Lay the workspace out; with base NULL only the size is computed */
static size_t
BtlWorkLayout(int64_t n, int d, PrmBtlMethod method, char *base,
			  BtlWork *w)
{
	size_t		off = 0;
	size_t		dd = (size_t) d * d;

#define TAKE(field, count) \
	do { \
		if (base) \
			w->field = (double *) (base + off); \
		off += sizeof(double) * (size_t) (count); \
	} while (0)

	TAKE(m, n);
	TAKE(q, n);
	TAKE(g, d);
	TAKE(p, d);
	TAKE(wt, d);
	TAKE(rb, BLOCK_ROWS);
	if (method == PRM_METHOD_NEWTON)
	{
		TAKE(blk, (size_t) BLOCK_ROWS * d);
		TAKE(hess, dd);
		TAKE(chol, dd);
	}
	else
	{
		TAKE(curv, n);
		TAKE(r, d);
		TAKE(s, d);
		TAKE(hs, d);
		TAKE(pre, d);
		TAKE(y, d);
	}
#undef TAKE
	return off;
}

/* Bytes of workspace PrmBtlSolve needs */
size_t
PrmBtlWorkspaceSize(int64_t n, int d, PrmBtlMethod method)
{
	BtlWork		w;

	if (method == PRM_METHOD_AUTO)
		method = PrmBtlChooseMethod(n, d);
	return BtlWorkLayout(n, d, method, NULL, &w);
}

/* Weight of row i */
static inline double
RowWeight(const PrmBtlProblem *prob, int64_t i)
{
	return prob->weight ? prob->weight[i] : 1.0;
}

/* Compute out = Z v for all rows */
static void
MultiplyRows(const PrmBtlProblem *prob, const double *v, double *out)
{
	int64_t		start;

	for (start = 0; start < prob->n; start += CHECK_EVERY)
	{
		int64_t		nb = prob->n - start;

		if (nb > CHECK_EVERY)
			nb = CHECK_EVERY;
		PrmCheckInterrupts();
		cblas_dgemv(CblasRowMajor, CblasNoTrans, (int) nb, prob->d, 1.0,
					prob->z + start * prob->d, prob->d, v, 1, 0.0,
					out + start, 1);
	}
}

/*
 * Objective at w + alpha p, from margins m and q = Z p. When deriv is not
 * NULL it receives the derivative of the objective along p at alpha.
 */
static double
ObjectiveAlong(const PrmBtlProblem *prob, const double *m, const double *q,
			   double alpha, const double *w, const double *p, double *deriv)
{
	double		loss = 0.0;
	double		slope = 0.0;
	double		pen = 0.0;
	double		pen_slope = 0.0;
	int64_t		i;

	for (i = 0; i < prob->n; i++)
	{
		double		mi = q ? m[i] + alpha * q[i] : m[i];
		double		a = RowWeight(prob, i);
		double		e = exp(-fabs(mi));

		if ((i & (CHECK_EVERY - 1)) == 0)
			PrmCheckInterrupts();
		/* softplus(-mi) and sigmoid(-mi) share exp(-|mi|) */
		loss += a * ((mi < 0 ? -mi : 0.0) + log1p(e));
		if (deriv)
			slope -= a * q[i] * (mi >= 0 ? e / (1.0 + e) : 1.0 / (1.0 + e));
	}
	for (int j = 0; j < prob->d; j++)
	{
		double		wj = p ? w[j] + alpha * p[j] : w[j];

		pen += wj * wj;
		if (deriv)
			pen_slope += wj * p[j];
	}
	if (deriv)
		*deriv = slope + prob->l2 * pen_slope;
	return loss + 0.5 * prob->l2 * pen;
}

/*
 * One pass: gradient into g and, for Newton, the Hessian into hess; for
 * Newton-CG the curvature weights into curv and the diagonal of the Hessian
 * into pre. g0 receives the gradient at w = 0 when not NULL.
 */
static void
GradientPass(const PrmBtlProblem *prob, const double *w, BtlWork *wk,
			 PrmBtlMethod method, double *g0)
{
	int			d = prob->d;
	int64_t		start;

	memset(wk->g, 0, sizeof(double) * d);
	if (g0)
		memset(g0, 0, sizeof(double) * d);
	if (method == PRM_METHOD_NEWTON)
		memset(wk->hess, 0, sizeof(double) * (size_t) d * d);
	else
		memset(wk->pre, 0, sizeof(double) * d);

	for (start = 0; start < prob->n; start += BLOCK_ROWS)
	{
		int			nb = (int) ((prob->n - start < BLOCK_ROWS) ?
								prob->n - start : BLOCK_ROWS);
		const double *zb = prob->z + start * d;

		if ((start & (CHECK_EVERY - 1)) == 0)
			PrmCheckInterrupts();

		for (int i = 0; i < nb; i++)
		{
			double		a = RowWeight(prob, start + i);
			double		sneg = PrmSigmoid(-wk->m[start + i]);
			double		c = a * sneg * (1.0 - sneg);

			wk->rb[i] = -a * sneg;
			if (method == PRM_METHOD_NEWTON)
			{
				double		sc = sqrt(c);
				double	   *dst = wk->blk + (size_t) i * d;

				for (int j = 0; j < d; j++)
					dst[j] = sc * zb[(size_t) i * d + j];
			}
			else
			{
				wk->curv[start + i] = c;
				for (int j = 0; j < d; j++)
				{
					double		zij = zb[(size_t) i * d + j];

					wk->pre[j] += c * zij * zij;
				}
			}
		}

		cblas_dgemv(CblasRowMajor, CblasTrans, nb, d, 1.0, zb, d,
					wk->rb, 1, 1.0, wk->g, 1);
		if (g0)
		{
			for (int i = 0; i < nb; i++)
				wk->rb[i] = -0.5 * RowWeight(prob, start + i);
			cblas_dgemv(CblasRowMajor, CblasTrans, nb, d, 1.0, zb, d,
						wk->rb, 1, 1.0, g0, 1);
		}
		if (method == PRM_METHOD_NEWTON)
			cblas_dsyrk(CblasColMajor, CblasUpper, CblasNoTrans, d, nb, 1.0,
						wk->blk, d, 1.0, wk->hess, d);
	}

	cblas_daxpy(d, prob->l2, w, 1, wk->g, 1);
	if (method == PRM_METHOD_NEWTON)
	{
		for (int j = 0; j < d; j++)
			wk->hess[(size_t) j * d + j] += prob->l2;
	}
	else
	{
		for (int j = 0; j < d; j++)
			wk->pre[j] += prob->l2;
	}
}

/* out = H v = Z^T diag(curv) Z v + l2 v, in one blocked pass */
static void
HessianTimes(const PrmBtlProblem *prob, const BtlWork *wk, const double *v,
			 double *out, double *tmp)
{
	int			d = prob->d;
	int64_t		start;

	memset(out, 0, sizeof(double) * d);
	for (start = 0; start < prob->n; start += BLOCK_ROWS)
	{
		int			nb = (int) ((prob->n - start < BLOCK_ROWS) ?
								prob->n - start : BLOCK_ROWS);
		const double *zb = prob->z + start * d;

		if ((start & (CHECK_EVERY - 1)) == 0)
			PrmCheckInterrupts();
		cblas_dgemv(CblasRowMajor, CblasNoTrans, nb, d, 1.0, zb, d, v, 1,
					0.0, tmp, 1);
		for (int i = 0; i < nb; i++)
			tmp[i] *= wk->curv[start + i];
		cblas_dgemv(CblasRowMajor, CblasTrans, nb, d, 1.0, zb, d, tmp, 1,
					1.0, out, 1);
	}
	cblas_daxpy(d, prob->l2, v, 1, out, 1);
}

/*
 * Solve H p = -g approximately by preconditioned conjugate gradients,
 * stopping at a relative residual eta (truncated Newton).
 */
static void
NewtonCgDirection(const PrmBtlProblem *prob, BtlWork *wk, double eta)
{
	int			d = prob->d;
	double		gnorm = PrmNorm2(wk->g, d);
	double		rz;
	int			steps = MAX_CG_STEPS < 2 * d ? MAX_CG_STEPS : 2 * d;

	if (steps < 10)
		steps = 10;

	memset(wk->p, 0, sizeof(double) * d);
	for (int j = 0; j < d; j++)
	{
		wk->r[j] = -wk->g[j];
		wk->y[j] = wk->r[j] / (wk->pre[j] > 0 ? wk->pre[j] : 1.0);
	}
	memcpy(wk->s, wk->y, sizeof(double) * d);
	rz = cblas_ddot(d, wk->r, 1, wk->y, 1);

	for (int k = 0; k < steps; k++)
	{
		double		shs,
					alpha,
					rz_new;

		HessianTimes(prob, wk, wk->s, wk->hs, wk->rb);
		shs = cblas_ddot(d, wk->s, 1, wk->hs, 1);
		if (!(shs > 0.0))
		{
			/* no curvature left: keep what we have, or fall back */
			if (k == 0)
				memcpy(wk->p, wk->s, sizeof(double) * d);
			break;
		}
		alpha = rz / shs;
		cblas_daxpy(d, alpha, wk->s, 1, wk->p, 1);
		cblas_daxpy(d, -alpha, wk->hs, 1, wk->r, 1);
		if (PrmNorm2(wk->r, d) <= eta * gnorm)
			break;
		for (int j = 0; j < d; j++)
			wk->y[j] = wk->r[j] / (wk->pre[j] > 0 ? wk->pre[j] : 1.0);
		rz_new = cblas_ddot(d, wk->r, 1, wk->y, 1);
		for (int j = 0; j < d; j++)
			wk->s[j] = wk->y[j] + (rz_new / rz) * wk->s[j];
		rz = rz_new;
	}
}

/* Newton direction p = -H^{-1} g by Cholesky, damped if H is singular */
static int
NewtonDirection(const PrmBtlProblem *prob, BtlWork *wk)
{
	int			d = prob->d;
	int			one = 1;
	int			info;

	if (PrmCholeskyRidge(wk->chol, wk->hess, d, NULL) != 0)
		return -1;
	for (int j = 0; j < d; j++)
		wk->p[j] = -wk->g[j];
	dpotrs_("U", &d, &one, wk->chol, &d, wk->p, &d, &info);
	return info == 0 ? 0 : -1;
}

/* Fill in loglik, accuracy and counts of res from the margins */
static void
Summarise(const PrmBtlProblem *prob, const double *m, PrmBtlResult *res)
{
	double		ll = 0.0;
	double		right = 0.0;
	double		wsum = 0.0;
	int64_t		informative = 0;

	for (int64_t i = 0; i < prob->n; i++)
	{
		double		a = RowWeight(prob, i);

		ll -= a * PrmSoftplus(-m[i]);
		wsum += a;
		if (m[i] > 0)
			right += a;
		else if (m[i] == 0)
			right += 0.5 * a;
	}
	for (int64_t i = 0; i < prob->n; i++)
	{
		const double *zi = prob->z + i * prob->d;

		if (RowWeight(prob, i) <= 0)
			continue;
		for (int j = 0; j < prob->d; j++)
		{
			if (zi[j] != 0.0)
			{
				informative++;
				break;
			}
		}
	}
	res->loglik = ll;
	res->weight_sum = wsum;
	res->accuracy = wsum > 0 ? right / wsum : 0.0;
	res->informative = informative;
}

/* Decide whether an unpenalized fit ran off to infinity */
static int
LooksSeparated(const PrmBtlProblem *prob, const double *m)
{
	int64_t		positive = 0;
	int64_t		used = 0;

	for (int64_t i = 0; i < prob->n; i++)
	{
		if (RowWeight(prob, i) <= 0 || m[i] == 0.0)
			continue;
		used++;
		if (fabs(m[i]) > SEPARATION_MARGIN)
			return 1;
		if (m[i] > 0)
			positive++;
	}
	return used > 0 && positive == used;
}

/* Objective, log-likelihood and accuracy of w */
void
PrmBtlEvaluate(const PrmBtlProblem *prob, const double *w, PrmBtlResult *res)
{
	double		mi;
	double		ll = 0.0,
				right = 0.0,
				wsum = 0.0,
				pen = 0.0;

	for (int64_t i = 0; i < prob->n; i++)
	{
		double		a = RowWeight(prob, i);

		if ((i & (CHECK_EVERY - 1)) == 0)
			PrmCheckInterrupts();
		mi = cblas_ddot(prob->d, prob->z + i * prob->d, 1, w, 1);
		ll -= a * PrmSoftplus(-mi);
		wsum += a;
		right += mi > 0 ? a : (mi == 0 ? 0.5 * a : 0.0);
	}
	for (int j = 0; j < prob->d; j++)
		pen += w[j] * w[j];
	res->loglik = ll;
	res->objective = -ll + 0.5 * prob->l2 * pen;
	res->weight_sum = wsum;
	res->accuracy = wsum > 0 ? right / wsum : 0.0;
}

/* Minimise the penalized negative log-likelihood */
PrmStatus
PrmBtlSolve(const PrmBtlProblem *prob, const PrmBtlOptions *opt, double *w,
			void *work, PrmBtlResult *res)
{
	PrmBtlMethod method = opt->method;
	BtlWork		wk = {0};
	int			d = prob->d;
	double		f;
	double		tol = opt->tol > 0 ? opt->tol : PRM_BTL_DEFAULT_TOL;
	int			max_iter = opt->max_iter > 0 ? opt->max_iter :
		PRM_BTL_DEFAULT_MAX_ITER;
	double	   *g0vec;
	double		gscale = 1.0;
	int			it;

	memset(res, 0, sizeof(*res));
	if (method == PRM_METHOD_AUTO)
		method = PrmBtlChooseMethod(prob->n, d);
	res->method = method;
	if (prob->n <= 0 || d <= 0 || prob->l2 < 0 || !isfinite(prob->l2))
		return res->status = PRM_BAD_INPUT;

	BtlWorkLayout(prob->n, d, method, (char *) work, &wk);

	/* the gradient at zero goes into p, which is free until the first step */
	g0vec = wk.p;

	MultiplyRows(prob, w, wk.m);
	f = ObjectiveAlong(prob, wk.m, NULL, 0.0, w, NULL, NULL);

	for (it = 0;; it++)
	{
		double		slope,
					alpha,
					ftrial = f;
		int			h;

		GradientPass(prob, w, &wk, method, it == 0 ? g0vec : NULL);
		if (it == 0)
		{
			res->grad_norm0 = PrmNorm2(g0vec, d);
			gscale = res->grad_norm0 > 1.0 ? res->grad_norm0 : 1.0;
		}
		res->grad_norm = PrmNorm2(wk.g, d);
		if (!isfinite(res->grad_norm))
			return res->status = PRM_BAD_INPUT;
		if (res->grad_norm <= tol * gscale)
		{
			res->converged = 1;
			break;
		}
		if (it >= max_iter)
			break;

		/* search direction */
		if (method == PRM_METHOD_NEWTON)
		{
			if (NewtonDirection(prob, &wk) != 0)
				return res->status = PRM_NOT_POSITIVE_DEFINITE;
		}
		else
		{
			double		rel = res->grad_norm / gscale;
			double		eta = sqrt(rel) < 0.5 ? sqrt(rel) : 0.5;

			NewtonCgDirection(prob, &wk, eta);
		}
		slope = cblas_ddot(d, wk.g, 1, wk.p, 1);
		if (!(slope < 0))
		{
			/* not a descent direction: fall back to steepest descent */
			for (int j = 0; j < d; j++)
				wk.p[j] = -wk.g[j];
			slope = -res->grad_norm * res->grad_norm;
		}

		/*
		 * Backtracking line search along q = Z p. The objective is convex,
		 * so a step at which it still descends has lowered it: that test
		 * stays reliable near the optimum, where the decrease is below the
		 * rounding error of f and the Armijo test alone would stall.
		 */
		MultiplyRows(prob, wk.p, wk.q);
		alpha = 1.0;
		for (h = 0; h < MAX_HALVINGS; h++)
		{
			double		deriv;

			ftrial = ObjectiveAlong(prob, wk.m, wk.q, alpha, w, wk.p, &deriv);
			if (ftrial <= f + ARMIJO_C * alpha * slope || deriv <= 0)
				break;
			alpha *= 0.5;
		}
		if (h == MAX_HALVINGS)
			break;				/* no progress is possible in floating point */

		cblas_daxpy(d, alpha, wk.p, 1, w, 1);
		for (int64_t i = 0; i < prob->n; i++)
			wk.m[i] += alpha * wk.q[i];
		f = ftrial;
	}

	res->iterations = it;
	res->objective = f;
	Summarise(prob, wk.m, res);
	if (res->informative == 0)
		return res->status = PRM_NO_INFORMATION;
	if (prob->l2 == 0 && LooksSeparated(prob, wk.m))
		return res->status = PRM_SEPARABLE;
	return res->status = res->converged ? PRM_OK : PRM_NOT_CONVERGED;
}
