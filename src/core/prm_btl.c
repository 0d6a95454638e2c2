/*
 * prm_btl.c
 *	  Newton and Newton-CG solvers for the penalized linear BTL model.
 *
 * Each iteration makes one pass over the difference vectors, in blocks small
 * enough to stay in cache: a block's margins, its share of the objective and
 * of the gradient are computed while it is in cache, so the data are read
 * from memory once per iteration.
 *
 * The gradient is always exact. The curvature (the Hessian for Newton,
 * Hessian-vector products for Newton-CG) comes from every row when the data
 * are small, and otherwise from a sample of PrmCurvatureSampleRows(d)
 * rows, at most a quarter of them, copied aside once and scaled up. A row is in the sample when a hash of its
 * values says so, so the sample, and with it every iterate, does not depend
 * on the order in which rows arrived (parallel plans deliver them in any
 * order). A sampled curvature only changes the search direction, never the
 * point the solver converges to, and it removes the O(n d^2) Hessian cost
 * that would otherwise dominate large fits. Large fits that start cold (at
 * w = 0) first solve the sample alone: its optimum lies close to the optimum
 * of all rows and leaves only a few passes over them.
 *
 * The line search is lazy: a trial step is taken and judged in the next
 * pass, which computes the objective and gradient there anyway. The step is
 * accepted when the Armijo condition holds, when the objective still
 * descends along the step (which, for a convex objective, means it has
 * decreased), or by the approximate Wolfe test, which stays reliable near
 * the optimum where the decrease is below the rounding error of the
 * objective.
 */
#include "prm_btl.h"

#include <math.h>
#include <string.h>

#include <cblas.h>

/* Bytes of difference vectors per block: fits in L2 with room to spare */
#define BLOCK_BYTES (256 * 1024)

/* Blocks between interrupt checks */
#define CHECK_BLOCKS 32

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
	int			block_rows;		/* rows per block */
	int64_t		sample_n;		/* rows in the curvature sample */
	double		scale;			/* n / sample_n */
	const double *zs;			/* sample_n x d sample rows */
	const double *ws;			/* sample_n weights, or NULL */
	double	   *zs_buf;			/* sample rows when copied aside */
	double	   *ws_buf;			/* sample weights when copied aside */
	double	   *g;				/* d gradient */
	double	   *p;				/* d search direction */
	double	   *wprev;			/* d last accepted point */
	double	   *mb;				/* block_rows margins of a block */
	double	   *rb;				/* block_rows residuals of a block */
	double	   *blk;			/* block_rows x d scaled rows (Newton) */
	double	   *hess;			/* d x d Hessian (Newton) */
	double	   *chol;			/* d x d Cholesky factor (Newton) */
	double	   *curv;			/* sample_n curvature weights (CG) */
	double	   *r;				/* d CG residual */
	double	   *s;				/* d CG direction */
	double	   *hs;				/* d Hessian times s */
	double	   *pre;			/* d diagonal preconditioner */
	double	   *y;				/* d preconditioned residual */
} BtlWork;

/* What one pass over the rows found at a point */
typedef struct PassResult
{
	double		f;				/* objective */
	double		loglik;
	double		right;			/* weighted count of correct orderings */
	double		weight_sum;
	double		max_abs_margin;
	int64_t		informative;	/* rows with nonzero weight and margin */
	int64_t		positive;		/* of those, rows with a positive margin */
} PassResult;

/* Choose Newton while a d x d Hessian is cheap next to the data pass */
PrmBtlMethod
PrmBtlChooseMethod(int64_t n, int d)
{
	if (d <= 256)
		return PRM_METHOD_NEWTON;
	return PRM_METHOD_NEWTON_CG;
}

/* Rows per block for dimension d */
static int
BlockRows(int d)
{
	int			rows = BLOCK_BYTES / (int) (sizeof(double) * d);

	if (rows < 8)
		rows = 8;
	if (rows > 1024)
		rows = 1024;
	return rows;
}

/*
 * Room for the curvature sample: every row when there are few, else the
 * hashed sample's expected size plus eight standard deviations (a binomial
 * count beyond that never happens in practice, and the sample would then
 * stop at the room). Bounding it spares a pass that counts the sample.
 */
static int64_t
SampleRoom(const PrmBtlProblem *prob)
{
	int64_t		target = PrmCurvatureSampleRows(prob->d);
	int64_t		room = target + 8 * (int64_t) ceil(sqrt((double) target)) + 64;

	if (prob->n <= 4 * target)
		return prob->n;
	return room < prob->n ? room : prob->n;
}

/* Rows of the curvature sample, copied to zs and ws (room rows at most) */
static int64_t
SampleRows(const PrmBtlProblem *prob, double *zs, double *ws, int64_t room)
{
	return PrmCurvatureSample(prob->z, prob->n, prob->d, prob->weight, NULL,
							  zs, ws, NULL, room);
}

/* Lay the workspace out; with base NULL only the size is computed */
static size_t
BtlWorkLayout(const PrmBtlProblem *prob, int64_t sample_n,
			  PrmBtlMethod method, char *base, BtlWork *w)
{
	size_t		off = 0;
	int			d = prob->d;
	size_t		dd = (size_t) d * d;
	int			copied = sample_n < prob->n;

	w->block_rows = BlockRows(d);
	w->sample_n = sample_n;

#define TAKE(field, count) \
	do { \
		if (base) \
			w->field = (double *) (base + off); \
		off += sizeof(double) * (size_t) (count); \
	} while (0)

	if (copied)
	{
		TAKE(zs_buf, (size_t) sample_n * d);
		TAKE(ws_buf, sample_n);
	}
	TAKE(g, d);
	TAKE(p, d);
	TAKE(wprev, d);
	TAKE(mb, w->block_rows);
	TAKE(rb, w->block_rows);
	if (method == PRM_METHOD_NEWTON)
	{
		TAKE(blk, (size_t) w->block_rows * d);
		TAKE(hess, dd);
		TAKE(chol, dd);
	}
	else
	{
		TAKE(curv, sample_n);
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
PrmBtlWorkspaceSize(const PrmBtlProblem *prob, PrmBtlMethod method)
{
	BtlWork		w;

	if (method == PRM_METHOD_AUTO)
		method = PrmBtlChooseMethod(prob->n, prob->d);
	return BtlWorkLayout(prob, SampleRoom(prob), method, NULL,
						 &w);
}

/* Weight of row i */
static inline double
RowWeight(const PrmBtlProblem *prob, int64_t i)
{
	return prob->weight ? prob->weight[i] : 1.0;
}

/*
 * One pass at w over all rows: objective, gradient into wk->g and the facts
 * in res. When g0 is not NULL it receives the gradient at w = 0.
 */
static void
Pass(const PrmBtlProblem *prob, const double *w, BtlWork *wk, double *g0,
	 PassResult *res)
{
	int			d = prob->d;
	double		pen = 0.0;
	double		lprod = 1.0;
	double		lsum = 0.0;

	memset(res, 0, sizeof(*res));
	memset(wk->g, 0, sizeof(double) * d);
	if (g0)
		memset(g0, 0, sizeof(double) * d);

	for (int64_t start = 0, b = 0; start < prob->n;
		 start += wk->block_rows, b++)
	{
		int			nb = (int) ((prob->n - start < wk->block_rows) ?
								prob->n - start : wk->block_rows);
		const double *zb = prob->z + start * d;

		if (b % CHECK_BLOCKS == 0)
			PrmCheckInterrupts();

		cblas_dgemv(CblasRowMajor, CblasNoTrans, nb, d, 1.0, zb, d, w, 1,
					0.0, wk->mb, 1);
		for (int i = 0; i < nb; i++)
		{
			double		a = RowWeight(prob, start + i);
			double		m = wk->mb[i];
			double		e = exp(-fabs(m));
			double		q = 1.0 / (1.0 + e);

			/* log sigmoid(m) and sigmoid(-m) share exp(-|m|) */
			PrmAddLogSigmoid(&lprod, &lsum, m, e, q, a);
			res->weight_sum += a;
			if (m > 0)
				res->right += a;
			else if (m == 0)
				res->right += 0.5 * a;
			if (a > 0 && m != 0)
			{
				res->informative++;
				res->positive += m > 0;
				if (fabs(m) > res->max_abs_margin)
					res->max_abs_margin = fabs(m);
			}
			wk->rb[i] = -a * (m >= 0 ? e * q : q);
		}
		cblas_dgemv(CblasRowMajor, CblasTrans, nb, d, 1.0, zb, d, wk->rb, 1,
					1.0, wk->g, 1);
		if (g0)
		{
			for (int i = 0; i < nb; i++)
				wk->rb[i] = -0.5 * RowWeight(prob, start + i);
			cblas_dgemv(CblasRowMajor, CblasTrans, nb, d, 1.0, zb, d,
						wk->rb, 1, 1.0, g0, 1);
		}
	}

	for (int j = 0; j < d; j++)
		pen += w[j] * w[j];
	res->loglik = PrmLogSigmoidTotal(lprod, lsum);
	res->f = -res->loglik + 0.5 * prob->l2 * pen;
	cblas_daxpy(d, prob->l2, w, 1, wk->g, 1);
}

/*
 * Curvature at w from the sample rows, scaled to all rows: the Hessian into
 * wk->hess for Newton, or the curvature weights into wk->curv and the
 * diagonal preconditioner into wk->pre for Newton-CG.
 */
static void
Curvature(const PrmBtlProblem *prob, const double *w, BtlWork *wk,
		  PrmBtlMethod method)
{
	int			d = prob->d;

	if (method == PRM_METHOD_NEWTON)
		memset(wk->hess, 0, sizeof(double) * (size_t) d * d);
	else
		memset(wk->pre, 0, sizeof(double) * d);

	for (int64_t start = 0, b = 0; start < wk->sample_n;
		 start += wk->block_rows, b++)
	{
		int			nb = (int) ((wk->sample_n - start < wk->block_rows) ?
								wk->sample_n - start : wk->block_rows);
		const double *zb = wk->zs + start * d;

		if (b % CHECK_BLOCKS == 0)
			PrmCheckInterrupts();
		cblas_dgemv(CblasRowMajor, CblasNoTrans, nb, d, 1.0, zb, d, w, 1,
					0.0, wk->mb, 1);
		for (int i = 0; i < nb; i++)
		{
			double		a = wk->ws ? wk->ws[start + i] : 1.0;
			double		sp = PrmSigmoid(wk->mb[i]);

			wk->mb[i] = a * sp * (1.0 - sp);
		}
		if (method == PRM_METHOD_NEWTON)
		{
			for (int i = 0; i < nb; i++)
			{
				double		sc = sqrt(wk->mb[i]);

				for (int j = 0; j < d; j++)
					wk->blk[(size_t) i * d + j] = sc * zb[(size_t) i * d + j];
			}
			cblas_dsyrk(CblasColMajor, CblasUpper, CblasNoTrans, d, nb, 1.0,
						wk->blk, d, 1.0, wk->hess, d);
		}
		else
		{
			for (int i = 0; i < nb; i++)
			{
				wk->curv[start + i] = wk->mb[i];
				for (int j = 0; j < d; j++)
				{
					double		zij = zb[(size_t) i * d + j];

					wk->pre[j] += wk->mb[i] * zij * zij;
				}
			}
		}
	}

	if (method == PRM_METHOD_NEWTON)
	{
		if (wk->scale != 1.0)
			for (int j = 0; j < d; j++)
				cblas_dscal(j + 1, wk->scale, wk->hess + (size_t) j * d, 1);
		for (int j = 0; j < d; j++)
			wk->hess[(size_t) j * d + j] += prob->l2;
	}
	else
	{
		for (int j = 0; j < d; j++)
			wk->pre[j] = wk->scale * wk->pre[j] + prob->l2;
	}
}

/* out = H v from the sample's curvature weights */
static void
HessianTimes(const PrmBtlProblem *prob, const BtlWork *wk, const double *v,
			 double *out)
{
	int			d = prob->d;

	memset(out, 0, sizeof(double) * d);
	for (int64_t start = 0, b = 0; start < wk->sample_n;
		 start += wk->block_rows, b++)
	{
		int			nb = (int) ((wk->sample_n - start < wk->block_rows) ?
								wk->sample_n - start : wk->block_rows);
		const double *zb = wk->zs + start * d;

		if (b % CHECK_BLOCKS == 0)
			PrmCheckInterrupts();
		cblas_dgemv(CblasRowMajor, CblasNoTrans, nb, d, 1.0, zb, d, v, 1,
					0.0, wk->rb, 1);
		for (int i = 0; i < nb; i++)
			wk->rb[i] *= wk->curv[start + i];
		cblas_dgemv(CblasRowMajor, CblasTrans, nb, d, wk->scale, zb, d,
					wk->rb, 1, 1.0, out, 1);
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

		HessianTimes(prob, wk, wk->s, wk->hs);
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

/*
 * Newton iterations on prob from w, with curvature from wk's sample. Returns
 * PRM_OK when the gradient test was met, with the last pass in pr.
 */
static PrmStatus
Iterate(const PrmBtlProblem *prob, BtlWork *wk, PrmBtlMethod method,
		double tol, int max_iter, double *w, PassResult *pr,
		PrmBtlResult *res)
{
	int			d = prob->d;
	double		gscale = 1.0;
	double		fprev = 0.0;
	double		slope = 0.0;
	double		alpha = 1.0;
	int			stepping = 0;	/* a trial step awaits judgement */
	int			halvings = 0;
	int			it = 0;
	PrmStatus	status = PRM_NOT_CONVERGED;

	for (;;)
	{
		/* the gradient at zero goes into p, which is free until a step */
		Pass(prob, w, wk, it == 0 && !stepping ? wk->p : NULL, pr);
		if (it == 0 && !stepping)
		{
			res->grad_norm0 = PrmNorm2(wk->p, d);
			gscale = res->grad_norm0 > 1.0 ? res->grad_norm0 : 1.0;
		}
		res->grad_norm = PrmNorm2(wk->g, d);
		if (!isfinite(res->grad_norm) || !isfinite(pr->f))
			return PRM_BAD_INPUT;

		/* judge the trial step w = wprev + alpha p */
		if (stepping)
		{
			double		deriv = cblas_ddot(d, wk->g, 1, wk->p, 1);
			int			armijo = pr->f <= fprev + ARMIJO_C * alpha * slope;

			/*
			 * Near the optimum the decrease drowns in the rounding error of
			 * f; there the approximate Wolfe test of Hager and Zhang judges
			 * the step by the directional derivative instead.
			 */
			int			approx_wolfe =
				pr->f <= fprev + 1e-10 * fabs(fprev) &&
				deriv <= (2 * ARMIJO_C - 1) * slope;

			if (!(armijo || approx_wolfe || deriv <= 0))
			{
				if (++halvings >= MAX_HALVINGS)
				{
					/* no progress is possible in floating point */
					memcpy(w, wk->wprev, sizeof(double) * d);
					Pass(prob, w, wk, NULL, pr);
					res->grad_norm = PrmNorm2(wk->g, d);
					break;
				}
				alpha *= 0.5;
				for (int j = 0; j < d; j++)
					w[j] = wk->wprev[j] + alpha * wk->p[j];
				continue;
			}
			stepping = 0;
		}

		if (res->grad_norm <= tol * gscale)
		{
			status = PRM_OK;
			break;
		}
		if (it >= max_iter)
			break;

		/* search direction */
		Curvature(prob, w, wk, method);
		if (method == PRM_METHOD_NEWTON)
		{
			if (NewtonDirection(prob, wk) != 0)
				return PRM_NOT_POSITIVE_DEFINITE;
		}
		else
		{
			double		rel = res->grad_norm / gscale;

			NewtonCgDirection(prob, wk, sqrt(rel) < 0.5 ? sqrt(rel) : 0.5);
		}
		slope = cblas_ddot(d, wk->g, 1, wk->p, 1);
		if (!(slope < 0))
		{
			/* not a descent direction: fall back to steepest descent */
			for (int j = 0; j < d; j++)
				wk->p[j] = -wk->g[j];
			slope = -res->grad_norm * res->grad_norm;
		}

		/* take the full step; the next pass judges it */
		memcpy(wk->wprev, w, sizeof(double) * d);
		fprev = pr->f;
		alpha = 1.0;
		halvings = 0;
		stepping = 1;
		cblas_daxpy(d, 1.0, wk->p, 1, w, 1);
		it++;
	}
	res->iterations = it;
	return status;
}

/* Copy the facts of a pass into a result */
static void
FillResult(const PassResult *pr, PrmBtlResult *res)
{
	res->objective = pr->f;
	res->loglik = pr->loglik;
	res->weight_sum = pr->weight_sum;
	res->accuracy = pr->weight_sum > 0 ? pr->right / pr->weight_sum : 0.0;
}

/* Count rows with a nonzero weight and a nonzero difference vector */
static int64_t
CountInformative(const PrmBtlProblem *prob)
{
	int64_t		count = 0;

	for (int64_t i = 0; i < prob->n; i++)
	{
		const double *zi = prob->z + i * prob->d;

		if ((i & 65535) == 0)
			PrmCheckInterrupts();
		if (!(RowWeight(prob, i) > 0))
			continue;
		for (int j = 0; j < prob->d; j++)
		{
			if (zi[j] != 0.0)
			{
				count++;
				break;
			}
		}
	}
	return count;
}

/* Minimise the penalized negative log-likelihood */
PrmStatus
PrmBtlSolve(const PrmBtlProblem *prob, const PrmBtlOptions *opt, double *w,
			void *work, PrmBtlResult *res)
{
	PrmBtlMethod method = opt->method;
	BtlWork		wk = {0};
	PassResult	pr;
	double		tol = opt->tol > 0 ? opt->tol : PRM_BTL_DEFAULT_TOL;
	int			max_iter = opt->max_iter > 0 ? opt->max_iter :
		PRM_BTL_DEFAULT_MAX_ITER;
	int64_t		sample_n;
	PrmStatus	status;

	memset(res, 0, sizeof(*res));
	if (method == PRM_METHOD_AUTO)
		method = PrmBtlChooseMethod(prob->n, prob->d);
	res->method = method;
	if (prob->n <= 0 || prob->d <= 0 || prob->l2 < 0 || !isfinite(prob->l2))
		return res->status = PRM_BAD_INPUT;

	/* the curvature sample: all rows, or a hashed subset copied aside */
	sample_n = SampleRoom(prob);
	BtlWorkLayout(prob, sample_n, method, (char *) work, &wk);
	if (sample_n < prob->n)
		sample_n = SampleRows(prob, wk.zs_buf, wk.ws_buf, sample_n);
	wk.sample_n = sample_n;
	if (sample_n < prob->n)
	{
		int			cold = 1;
		PrmBtlProblem sub;
		PrmBtlResult subres = {0};

		wk.zs = wk.zs_buf;
		wk.ws = wk.ws_buf;

		/*
		 * Start from the sample's own optimum, with the penalty scaled to
		 * the sample's share of the rows: it lies close to the optimum of
		 * all rows, and reaching it costs no pass over them.
		 */
		sub.n = sample_n;
		sub.d = prob->d;
		sub.z = wk.zs;
		sub.weight = wk.ws;
		sub.l2 = prob->l2 * (double) sample_n / (double) prob->n;
		wk.scale = 1.0;
		for (int j = 0; j < prob->d; j++)
			cold &= w[j] == 0.0;
		if (cold)
		{
			Iterate(&sub, &wk, method, 1e-6, max_iter, w, &pr, &subres);
			for (int j = 0; j < prob->d; j++)
				if (!isfinite(w[j]))
					memset(w, 0, sizeof(double) * prob->d);
		}
	}
	else
	{
		wk.zs = prob->z;
		wk.ws = prob->weight;
	}
	wk.scale = (double) prob->n / (double) sample_n;

	status = Iterate(prob, &wk, method, tol, max_iter, w, &pr, res);
	if (status != PRM_OK && status != PRM_NOT_CONVERGED)
		return res->status = status;

	/* a gradient of zero at once may mean there is nothing to learn */
	if (res->iterations == 0 && res->grad_norm == 0.0)
	{
		res->informative = CountInformative(prob);
		if (res->informative == 0)
			return res->status = PRM_NO_INFORMATION;
	}
	else
		res->informative = pr.informative;
	res->converged = status == PRM_OK;
	FillResult(&pr, res);
	if (prob->l2 == 0 && pr.informative > 0 &&
		(pr.max_abs_margin > SEPARATION_MARGIN ||
		 pr.positive == pr.informative))
		return res->status = PRM_SEPARABLE;
	return res->status = status;
}
