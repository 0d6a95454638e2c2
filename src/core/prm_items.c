/*
 * prm_items.c
 *	  Newton's method for item strengths under the BTL and Davidson models,
 *	  the comparison graph's components, standard errors and the bootstrap.
 *
 * Each pair of items adds a multinomial term in three linear predictors,
 * (s_i, s_j, theta + (s_i + s_j) / 2) for (i wins, j wins, tie), so the
 * negative log-likelihood is convex and its Hessian is the sum of small
 * 3 x 3 blocks: a weighted graph Laplacian in the strengths plus a row for
 * theta. One pass over the pairs gives the objective, gradient and
 * Hessian; a Cholesky factorization gives the step.
 *
 * Without a prior the Hessian is singular along u = (1, ..., 1, 0), the
 * direction that moves every strength together. The gradient is then
 * orthogonal to u, and solving with H + c u u^T instead of H gives the
 * step orthogonal to u: the mean strength stays where it started. The
 * same matrix inverted and projected away from u gives the covariance of
 * the identified strengths.
 */
#include "prm_items.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Pairs between interrupt checks */
#define CHECK_PAIRS 65536

/* Steps moving no parameter further than this skip the line search */
#define FULL_STEP_LIMIT 1e-3

/* Armijo sufficient-decrease constant and the most step halvings tried */
#define ARMIJO_C 1e-4
#define MAX_HALVINGS 60

/* Workspace carved into named arrays */
typedef struct ItemsWork
{
	double	   *hess;			/* p x p Hessian, upper, column-major */
	double	   *chol;			/* p x p factor or inverse */
	double	   *x;				/* p current point */
	double	   *trial;			/* p trial point */
	double	   *g;				/* p gradient */
	double	   *step;			/* p Newton step */
	double	   *rowsum;			/* p covariance row sums */
	double	   *ctotal;			/* p per-component totals */
	double	   *ccount;			/* p per-component sizes */
	int64_t    *offset;			/* n + 1 adjacency offsets */
	int32_t    *adj;			/* 2 n_pairs neighbours */
	int32_t    *queue;			/* n search queue */
	int32_t    *label;			/* n component labels (scratch) */
	uint8_t    *flag;			/* 2 n_pairs: bit 0 out-edge, bit 1 in */
	uint8_t    *seen;			/* n visited marks */
	double		fixed_theta;	/* theta when held fixed (NU_FIXED) */
} ItemsWork;

/* What the bootstrap carves from its workspace */
typedef struct BootWork
{
	double	   *win_i;
	double	   *win_j;
	double	   *tie;
	int64_t		n_cells;		/* cells (pair, outcome) with rows */
	double		n_rows;			/* rows in all */
	int64_t    *cell;			/* 3 n_pairs: 3 pair + outcome of a cell */
	double	   *keep;			/* 3 n_pairs: alias method probabilities */
	int64_t    *alias;			/* 3 n_pairs: alias method alternatives */
	int64_t    *stack;			/* 3 n_pairs: alias method work lists */
	double	   *mult;			/* n_raters draw counts */
	double	   *s;				/* n_items strengths of a resample */
	double	   *scratch;		/* 2 n_items for identification */
	void	   *solver;			/* PrmItemsWorkspaceSize bytes */
} BootWork;

/* Lay the workspace out; with base NULL only the size is computed */
static size_t
ItemsWorkLayout(int n, int64_t n_pairs, char *base, ItemsWork *w)
{
	size_t		off = 0;
	size_t		p = (size_t) n + 1;

#define TAKE(field, type, count) \
	do { \
		off = (off + 7) & ~(size_t) 7; \
		if (base) \
			w->field = (type *) (base + off); \
		off += sizeof(type) * (size_t) (count); \
	} while (0)

	TAKE(hess, double, p * p);
	TAKE(chol, double, p * p);
	TAKE(x, double, p);
	TAKE(trial, double, p);
	TAKE(g, double, p);
	TAKE(step, double, p);
	TAKE(rowsum, double, p);
	TAKE(ctotal, double, p);
	TAKE(ccount, double, p);
	TAKE(offset, int64_t, (size_t) n + 1);
	TAKE(adj, int32_t, 2 * (size_t) n_pairs);
	TAKE(queue, int32_t, n);
	TAKE(label, int32_t, n);
	TAKE(flag, uint8_t, 2 * (size_t) n_pairs);
	TAKE(seen, uint8_t, n);
#undef TAKE
	return off;
}

/* Bytes of workspace the fit, component and error functions need */
size_t
PrmItemsWorkspaceSize(int n_items, int64_t n_pairs)
{
	ItemsWork	w;

	return ItemsWorkLayout(n_items, n_pairs, NULL, &w);
}

/* Point the named arrays into work */
static void
ItemsWorkInit(const PrmItemsProblem *prob, void *work, ItemsWork *w)
{
	ItemsWorkLayout(prob->n_items, prob->n_pairs, (char *) work, w);
}

/* Weights of pair k as the tie model counts them */
static inline void
PairWeights(const PrmItemsProblem *prob, int64_t k, double *a, double *b,
			double *t)
{
	*a = prob->win_i[k];
	*b = prob->win_j[k];
	*t = prob->tie[k];
	if (prob->ties == PRM_TIES_HALF)
	{
		*a += 0.5 * *t;
		*b += 0.5 * *t;
		*t = 0.0;
	}
	else if (prob->ties == PRM_TIES_DROP)
		*t = 0.0;
}

/*
 * Build the adjacency lists of the comparison graph: an edge for every
 * pair with a positive weight, flagged with who beat (or tied with) whom.
 */
static void
BuildGraph(const PrmItemsProblem *prob, ItemsWork *w)
{
	int			n = prob->n_items;

	memset(w->offset, 0, sizeof(int64_t) * ((size_t) n + 1));
	for (int64_t k = 0; k < prob->n_pairs; k++)
	{
		double		a,
					b,
					t;

		PairWeights(prob, k, &a, &b, &t);
		if (a + b + t > 0)
		{
			w->offset[prob->item_i[k] + 1]++;
			w->offset[prob->item_j[k] + 1]++;
		}
	}
	for (int i = 0; i < n; i++)
		w->offset[i + 1] += w->offset[i];

	/* fill, using queue as the next free slot of each item */
	for (int i = 0; i < n; i++)
		w->queue[i] = 0;
	for (int64_t k = 0; k < prob->n_pairs; k++)
	{
		double		a,
					b,
					t;
		int32_t		i = prob->item_i[k];
		int32_t		j = prob->item_j[k];
		int64_t		si,
					sj;

		PairWeights(prob, k, &a, &b, &t);
		if (!(a + b + t > 0))
			continue;
		si = w->offset[i] + w->queue[i]++;
		sj = w->offset[j] + w->queue[j]++;
		w->adj[si] = j;
		w->adj[sj] = i;
		w->flag[si] = (uint8_t) ((a > 0 || t > 0) | ((b > 0 || t > 0) << 1));
		w->flag[sj] = (uint8_t) ((b > 0 || t > 0) | ((a > 0 || t > 0) << 1));
	}
}

/*
 * Mark the items reachable from start along edges whose flag has bit mask
 * (0 for any edge); returns how many were reached.
 */
static int
Reach(const PrmItemsProblem *prob, ItemsWork *w, int start, int mask,
	  int32_t *label, int32_t value)
{
	int			head = 0,
				tail = 0;

	w->queue[tail++] = start;
	w->seen[start] = 1;
	if (label)
		label[start] = value;
	while (head < tail)
	{
		int			i = w->queue[head++];

		for (int64_t e = w->offset[i]; e < w->offset[i + 1]; e++)
		{
			int			j = w->adj[e];

			if (w->seen[j] || (mask && !(w->flag[e] & mask)))
				continue;
			w->seen[j] = 1;
			if (label)
				label[j] = value;
			w->queue[tail++] = j;
		}
	}
	return tail;
}

/* Label the connected components of the comparison graph */
int
PrmItemsComponents(const PrmItemsProblem *prob, int32_t *component,
				   void *work)
{
	ItemsWork	w;
	int			count = 0;

	ItemsWorkInit(prob, work, &w);
	BuildGraph(prob, &w);
	memset(w.seen, 0, prob->n_items);
	for (int i = 0; i < prob->n_items; i++)
		if (!w.seen[i])
			Reach(prob, &w, i, 0, component, count++);
	return count;
}

/* Whether every item reaches every other along beat-or-tied edges */
int
PrmItemsStronglyConnected(const PrmItemsProblem *prob, void *work)
{
	ItemsWork	w;
	int			n = prob->n_items;

	ItemsWorkInit(prob, work, &w);
	BuildGraph(prob, &w);
	memset(w.seen, 0, n);
	if (Reach(prob, &w, 0, 1, NULL, 0) < n)
		return 0;
	memset(w.seen, 0, n);
	return Reach(prob, &w, 0, 2, NULL, 0) == n;
}

/* Add v to entry (r, c) of a symmetric matrix stored as its upper part */
static inline void
AddSym(double *h, int p, int r, int c, double v)
{
	if (r <= c)
		h[(size_t) c * p + r] += v;
	else
		h[(size_t) r * p + c] += v;
}

/* Entry (r, c) of a symmetric matrix stored as its upper part */
static inline double
GetSym(const double *h, int p, int r, int c)
{
	return r <= c ? h[(size_t) c * p + r] : h[(size_t) r * p + c];
}

/* How theta enters an evaluation: absent, a parameter, or held fixed */
#define NU_NONE 0
#define NU_FREE 1
#define NU_FIXED 2

/* Parameters of an evaluation in the given mode */
#define NU_PARAMS(n, mode) ((n) + ((mode) == NU_FREE ? 1 : 0))

/*
 * Objective at x (strengths, then theta when has_nu is NU_FREE; with
 * NU_FIXED theta is w->fixed_theta and not a parameter). level 1 also
 * fills w->g with the gradient, level 2 also w->hess with the Hessian.
 */
static double
Evaluate(const PrmItemsProblem *prob, const double *x, int has_nu,
		 int level, ItemsWork *w, double *loglik_out)
{
	int			n = prob->n_items;
	int			p = NU_PARAMS(n, has_nu);
	int			free_nu = has_nu == NU_FREE;
	double		theta = has_nu == NU_FREE ? x[n] :
		has_nu == NU_FIXED ? w->fixed_theta : 0.0;
	double		loglik = 0.0;
	double		pen = 0.0;

	if (level >= 1)
		memset(w->g, 0, sizeof(double) * p);
	if (level >= 2)
		memset(w->hess, 0, sizeof(double) * (size_t) p * p);

	for (int64_t k = 0; k < prob->n_pairs; k++)
	{
		int			i = prob->item_i[k];
		int			j = prob->item_j[k];
		double		a,
					b,
					t,
					m,
					d;

		if (k % CHECK_PAIRS == CHECK_PAIRS - 1)
			PrmCheckInterrupts();
		PairWeights(prob, k, &a, &b, &t);
		m = a + b + t;
		if (!(m > 0))
			continue;
		d = x[i] - x[j];

		if (!has_nu)
		{
			/* softplus(+-d) and sigmoid(d) share exp(-|d|) */
			double		e = exp(-fabs(d));
			double		l = log1p(e);
			double		pr = d >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
			double		r,
						v;

			loglik -= a * (fmax(-d, 0.0) + l) + b * (fmax(d, 0.0) + l);
			if (level < 1)
				continue;
			r = a - m * pr;
			w->g[i] -= r;
			w->g[j] += r;
			if (level < 2)
				continue;
			v = m * pr * (1.0 - pr);
			AddSym(w->hess, p, i, i, v);
			AddSym(w->hess, p, j, j, v);
			AddSym(w->hess, p, i, j, -v);
		}
		else
		{
			double		h = 0.5 * d;
			double		top = fmax(fabs(h), theta);
			double		e1 = exp(h - top),
						e2 = exp(-h - top),
						e3 = exp(theta - top);
			double		lse = top + log(e1 + e2 + e3);
			double		p1 = e1 / (e1 + e2 + e3),
						p2 = e2 / (e1 + e2 + e3),
						p3 = e3 / (e1 + e2 + e3);
			double		r1,
						r2,
						r3;
			double		v11,
						v22,
						v33,
						v12,
						v13,
						v23;

			loglik += a * (h - lse) + b * (-h - lse) + t * (theta - lse);
			if (level < 1)
				continue;
			r1 = a - m * p1;
			r2 = b - m * p2;
			r3 = t - m * p3;
			w->g[i] -= r1 + 0.5 * r3;
			w->g[j] -= r2 + 0.5 * r3;
			if (free_nu)
				w->g[n] -= r3;
			if (level < 2)
				continue;

			/* V = m (diag p - p p^T), mapped through the predictors */
			v11 = m * p1 * (1.0 - p1);
			v22 = m * p2 * (1.0 - p2);
			v33 = m * p3 * (1.0 - p3);
			v12 = -m * p1 * p2;
			v13 = -m * p1 * p3;
			v23 = -m * p2 * p3;
			AddSym(w->hess, p, i, i, v11 + v13 + 0.25 * v33);
			AddSym(w->hess, p, j, j, v22 + v23 + 0.25 * v33);
			AddSym(w->hess, p, i, j,
				   v12 + 0.5 * v13 + 0.5 * v23 + 0.25 * v33);
			if (!free_nu)
				continue;
			AddSym(w->hess, p, i, n, v13 + 0.5 * v33);
			AddSym(w->hess, p, j, n, v23 + 0.5 * v33);
			AddSym(w->hess, p, n, n, v33);
		}
	}

	for (int i = 0; i < n; i++)
		pen += x[i] * x[i];
	if (level >= 1)
		for (int i = 0; i < n; i++)
			w->g[i] += prob->prior * x[i];
	if (level >= 2)
		for (int i = 0; i < n; i++)
			w->hess[(size_t) i * p + i] += prob->prior;
	if (loglik_out)
		*loglik_out = loglik;
	return -loglik + 0.5 * prob->prior * pen;
}

/*
 * Without a prior, add c u u^T to the Hessian so that it is positive
 * definite on a connected graph; c makes the added eigenvalue the mean
 * diagonal entry.
 */
static void
AddMeanDirection(const PrmItemsProblem *prob, int p, double *h)
{
	int			n = prob->n_items;
	double		trace = 0.0;
	double		c;

	if (prob->prior > 0)
		return;
	for (int i = 0; i < n; i++)
		trace += h[(size_t) i * p + i];
	c = trace > 0 ? trace / ((double) n * n) : 1.0;
	for (int col = 0; col < n; col++)
		for (int r = 0; r <= col; r++)
			h[(size_t) col * p + r] += c;
}

/* Check the problem's sizes and values before any arithmetic */
static int
ProblemValid(const PrmItemsProblem *prob)
{
	if (prob->n_items < 1 || prob->n_items > PRM_ITEMS_MAX ||
		prob->n_pairs < 0 || !(prob->prior >= 0) || isinf(prob->prior))
		return 0;
	for (int64_t k = 0; k < prob->n_pairs; k++)
	{
		int32_t		i = prob->item_i[k],
					j = prob->item_j[k];

		if (i < 0 || j < 0 || i >= prob->n_items || j >= prob->n_items ||
			i == j)
			return 0;
		if (!(prob->win_i[k] >= 0) || !(prob->win_j[k] >= 0) ||
			!(prob->tie[k] >= 0) || isinf(prob->win_i[k]) ||
			isinf(prob->win_j[k]) || isinf(prob->tie[k]))
			return 0;
	}
	return 1;
}

/* Total weight and tie weight as the tie model counts them */
static void
Totals(const PrmItemsProblem *prob, double *total, double *ties)
{
	*total = 0.0;
	*ties = 0.0;
	for (int64_t k = 0; k < prob->n_pairs; k++)
	{
		double		a,
					b,
					t;

		PairWeights(prob, k, &a, &b, &t);
		*total += a + b + t;
		*ties += t;
	}
}

/*
 * Backtracking line search along w->step from w->x; returns the step
 * length taken, or 0 when no decrease was found.
 */
static double
LineSearch(const PrmItemsProblem *prob, ItemsWork *w, int has_nu, double f,
		   double *f_new)
{
	int			p = NU_PARAMS(prob->n_items, has_nu);
	double		slope = 0.0;
	double		len = 1.0;

	for (int k = 0; k < p; k++)
		slope += w->g[k] * w->step[k];
	for (int h = 0; h < MAX_HALVINGS; h++, len *= 0.5)
	{
		double		ft;

		for (int k = 0; k < p; k++)
			w->trial[k] = w->x[k] + len * w->step[k];
		ft = Evaluate(prob, w->trial, has_nu, 0, w, NULL);
		if (isfinite(ft) && ft <= f + ARMIJO_C * len * slope)
		{
			*f_new = ft;
			return len;
		}
	}
	return 0.0;
}

/*
 * Newton's method for the strengths, and theta unless fixed; with fixed
 * set, *log_nu is held (Davidson's model when finite) and not written.
 */
static PrmStatus
Solve(const PrmItemsProblem *prob, int max_iter, double *strength,
	  double *log_nu, int fixed, void *work, PrmItemsResult *res)
{
	ItemsWork	w;
	int			n = prob->n_items;
	int			has_nu;
	int			p;
	int			one = 1;
	int			info;
	double		total,
				ties,
				f;

	memset(res, 0, sizeof(*res));
	if (!ProblemValid(prob) || max_iter < 1)
		return res->status = PRM_BAD_INPUT;
	Totals(prob, &total, &ties);
	if (isinf(total))
		return res->status = PRM_BAD_INPUT; /* weights too large to add */
	if (!(total > 0))
		return res->status = PRM_NO_INFORMATION;

	/* without a prior, finite strengths need a strongly connected graph */
	if (prob->prior == 0 && !PrmItemsStronglyConnected(prob, work))
		return res->status = PRM_SEPARABLE;
	ItemsWorkInit(prob, work, &w);
	if (fixed)
	{
		if (isnan(*log_nu) || *log_nu == INFINITY)
			return res->status = PRM_BAD_INPUT;
		has_nu = prob->ties == PRM_TIES_DAVIDSON && isfinite(*log_nu) ?
			NU_FIXED : NU_NONE;
		w.fixed_theta = has_nu ? *log_nu : 0.0;
	}
	else
	{
		has_nu = prob->ties == PRM_TIES_DAVIDSON && ties > 0 ?
			NU_FREE : NU_NONE;
		if (has_nu && ties >= total)
			return res->status = PRM_SEPARABLE;	/* nu would be infinite */
	}

	p = NU_PARAMS(n, has_nu);
	memcpy(w.x, strength, sizeof(double) * n);
	if (has_nu == NU_FREE)
		w.x[n] = isfinite(*log_nu) ? *log_nu :
			log(2.0 * ties / (total - ties));
	res->has_nu = has_nu != NU_NONE;

	for (res->iterations = 0; res->iterations < max_iter;)
	{
		double		maxstep = 0.0;
		double		len = 1.0;
		double		f_new;

		f = Evaluate(prob, w.x, has_nu, 2, &w, NULL);
		if (!isfinite(f))
			return res->status = PRM_BAD_INPUT;
		AddMeanDirection(prob, p, w.hess);
		if (PrmCholeskyRidge(w.chol, w.hess, p, NULL) != 0)
			return res->status = PRM_NOT_POSITIVE_DEFINITE;
		for (int k = 0; k < p; k++)
			w.step[k] = -w.g[k];
		dpotrs_("U", &p, &one, w.chol, &p, w.step, &p, &info);
		if (info != 0)
			return res->status = PRM_NOT_POSITIVE_DEFINITE;
		for (int k = 0; k < p; k++)
			maxstep = fmax(maxstep, fabs(w.step[k]));
		if (!isfinite(maxstep))
			return res->status = PRM_BAD_INPUT;
		res->iterations++;

		/* near the optimum f is quadratic to rounding: take full steps */
		if (maxstep > FULL_STEP_LIMIT)
		{
			len = LineSearch(prob, &w, has_nu, f, &f_new);
			if (len == 0.0)
				break;
		}
		for (int k = 0; k < p; k++)
			w.x[k] += len * w.step[k];
		if (len * maxstep <= PRM_ITEMS_STEP_TOL)
		{
			res->converged = 1;
			break;
		}
	}

	/* the facts at the point reached */
	f = Evaluate(prob, w.x, has_nu, 1, &w, &res->loglik);
	res->objective = f;
	res->grad_norm = PrmNorm2(w.g, p);
	/* extreme weights can overflow on the way without any one being bad */
	for (int k = 0; k < p; k++)
		if (!isfinite(w.x[k]))
			return res->status = PRM_BAD_INPUT;
	if (!isfinite(f) || !isfinite(res->loglik))
		return res->status = PRM_BAD_INPUT;
	memcpy(strength, w.x, sizeof(double) * n);
	if (!fixed)
		*log_nu = has_nu ? w.x[n] : -INFINITY;
	res->status = res->converged ? PRM_OK : PRM_NOT_CONVERGED;
	return res->status;
}

/* Fit strengths and theta by Newton's method */
PrmStatus
PrmItemsSolve(const PrmItemsProblem *prob, int max_iter, double *strength,
			  double *log_nu, void *work, PrmItemsResult *res)
{
	return Solve(prob, max_iter, strength, log_nu, 0, work, res);
}

/* Fit strengths with theta held at log_nu */
PrmStatus
PrmItemsSolveGivenNu(const PrmItemsProblem *prob, int max_iter,
					 double *strength, double log_nu, void *work,
					 PrmItemsResult *res)
{
	return Solve(prob, max_iter, strength, &log_nu, 1, work, res);
}

/* Shift strengths to the identification */
void
PrmItemsIdentify(int n_items, double *strength, const int32_t *component,
				 int n_components, int reference, double *scratch)
{
	double	   *sum = scratch;
	double	   *count = scratch + n_components;

	if (reference >= 0)
	{
		double		shift = strength[reference];

		for (int i = 0; i < n_items; i++)
			strength[i] -= shift;
		return;
	}
	memset(scratch, 0, sizeof(double) * 2 * (size_t) n_components);
	for (int i = 0; i < n_items; i++)
	{
		sum[component[i]] += strength[i];
		count[component[i]] += 1.0;
	}
	for (int i = 0; i < n_items; i++)
		strength[i] -= sum[component[i]] / count[component[i]];
}

/* Standard errors of the identified strengths and of nu */
PrmStatus
PrmItemsStandardErrors(const PrmItemsProblem *prob, const double *strength,
					   double log_nu, const int32_t *component,
					   int n_components, int reference, double *se,
					   double *nu_se, void *work)
{
	ItemsWork	w;
	int			n = prob->n_items;
	int			has_nu = prob->ties == PRM_TIES_DAVIDSON && isfinite(log_nu) ?
		NU_FREE : NU_NONE;
	int			p = NU_PARAMS(n, has_nu);
	int			info;
	const double *cov;

	if (!ProblemValid(prob))
		return PRM_BAD_INPUT;
	ItemsWorkInit(prob, work, &w);
	memcpy(w.x, strength, sizeof(double) * n);
	if (has_nu)
		w.x[n] = log_nu;

	/* the inverse of the Hessian used for the last Newton step */
	Evaluate(prob, w.x, has_nu, 2, &w, NULL);
	AddMeanDirection(prob, p, w.hess);
	if (PrmCholeskyRidge(w.chol, w.hess, p, NULL) != 0)
		return PRM_NOT_POSITIVE_DEFINITE;
	dpotri_("U", &p, w.chol, &p, &info);
	if (info != 0)
		return PRM_NOT_POSITIVE_DEFINITE;
	cov = w.chol;

	*nu_se = has_nu ? exp(log_nu) * sqrt(GetSym(cov, p, n, n)) : 0.0;
	if (reference >= 0)
	{
		double		vr = GetSym(cov, p, reference, reference);

		for (int i = 0; i < n; i++)
		{
			double		v = GetSym(cov, p, i, i) + vr -
				2.0 * GetSym(cov, p, i, reference);

			se[i] = i == reference ? 0.0 : sqrt(fmax(v, 0.0));
		}
		return PRM_OK;
	}

	/* var(s_i - mean_c s) = S_ii - 2 mean_j S_ij + mean_jk S_jk, j, k in c */
	memset(w.rowsum, 0, sizeof(double) * n);
	memset(w.ctotal, 0, sizeof(double) * n_components);
	memset(w.ccount, 0, sizeof(double) * n_components);
	for (int c = 0; c < n; c++)
	{
		const double *col = cov + (size_t) c * p;

		if (c % 256 == 255)
			PrmCheckInterrupts();
		for (int r = 0; r < c; r++)
			if (component[r] == component[c])
			{
				w.rowsum[r] += col[r];
				w.rowsum[c] += col[r];
			}
		w.rowsum[c] += col[c];
	}
	for (int i = 0; i < n; i++)
	{
		w.ctotal[component[i]] += w.rowsum[i];
		w.ccount[component[i]] += 1.0;
	}
	for (int i = 0; i < n; i++)
	{
		double		nc = w.ccount[component[i]];
		double		v = GetSym(cov, p, i, i) - 2.0 * w.rowsum[i] / nc +
			w.ctotal[component[i]] / (nc * nc);

		se[i] = sqrt(fmax(v, 0.0));
	}
	return PRM_OK;
}

/* Lay the bootstrap workspace out; with base NULL only the size */
static size_t
BootWorkLayout(const PrmItemsProblem *prob, const PrmItemsResample *rs,
			   char *base, BootWork *w)
{
	size_t		off = 0;
	size_t		np = (size_t) prob->n_pairs;
	size_t		cells = rs->n_raters > 0 ? 0 : 3 * np;

	/* every type taken is 8 bytes wide, so all stay aligned */
#define TAKE(field, type, count) \
	do { \
		if (base) \
			w->field = (type *) (base + off); \
		off += sizeof(type) * (size_t) (count); \
	} while (0)

	TAKE(win_i, double, np);
	TAKE(win_j, double, np);
	TAKE(tie, double, np);
	TAKE(cell, int64_t, cells);
	TAKE(keep, double, cells);
	TAKE(alias, int64_t, cells);
	TAKE(stack, int64_t, cells);
	TAKE(mult, double, rs->n_raters);
	TAKE(s, double, prob->n_items);
	TAKE(scratch, double, 2 * (size_t) prob->n_items);
#undef TAKE
	if (base)
		w->solver = base + off;
	return off + PrmItemsWorkspaceSize(prob->n_items, prob->n_pairs);
}

/* Bytes of workspace PrmItemsBootstrap needs */
size_t
PrmItemsBootstrapWorkspaceSize(const PrmItemsProblem *prob,
							   const PrmItemsResample *rs)
{
	BootWork	w;

	return BootWorkLayout(prob, rs, NULL, &w);
}

/*
 * Next value of a splitmix64 stream.
 *
 * TODO: use the core's shared generator (prm_random.h) once it is in.
 */
static uint64_t
NextRandom(uint64_t *state)
{
	uint64_t	z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* A uniform draw in [0, 1) */
static inline double
RandomUniform(uint64_t *state)
{
	return (double) (NextRandom(state) >> 11) * (1.0 / 9007199254740992.0);
}

/* A uniform integer in [0, n) */
static inline uint64_t
RandomBelow(uint64_t *state, uint64_t n)
{
	return (uint64_t) (RandomUniform(state) * (double) n);
}

/* Rows behind cell 3 k + o: wins of item_i, of item_j, ties of pair k */
static inline double
CellRows(const PrmItemsResample *rs, int64_t cell)
{
	int64_t		k = cell / 3;

	return cell % 3 == 0 ? rs->rows_i[k] :
		cell % 3 == 1 ? rs->rows_j[k] : rs->rows_tie[k];
}

/*
 * Prepare to draw rows uniformly, by Vose's alias method over the cells
 * (pair, outcome) that have rows: a draw picks one of them uniformly and
 * keeps it with probability keep, else takes its alias. Each draw then
 * costs O(1), where a search of cumulative counts costs O(log cells).
 */
static void
AliasSetup(const PrmItemsProblem *prob, const PrmItemsResample *rs,
		   BootWork *w)
{
	int64_t		k = 0,
				small = 0,
				large = 0;

	w->n_rows = 0.0;
	for (int64_t c = 0; c < 3 * prob->n_pairs; c++)
	{
		double		r = CellRows(rs, c);

		if (!(r > 0))
			continue;
		w->cell[k] = c;
		w->keep[k++] = r;
		w->n_rows += r;
	}
	w->n_cells = k;

	/* scaled to mean 1; small ones fill the front of stack, large the back */
	for (int64_t i = 0; i < k; i++)
	{
		w->keep[i] *= (double) k / w->n_rows;
		w->alias[i] = i;
		if (w->keep[i] < 1.0)
			w->stack[small++] = i;
		else
			w->stack[k - 1 - large++] = i;
	}
	while (small > 0 && large > 0)
	{
		int64_t		s = w->stack[--small];
		int64_t		l = w->stack[k - large];

		w->alias[s] = l;
		w->keep[l] -= 1.0 - w->keep[s];
		if (w->keep[l] < 1.0)
		{
			large--;
			w->stack[small++] = l;
		}
	}
	/* what is left is 1 up to rounding */
	while (large > 0)
		w->keep[w->stack[k - large--]] = 1.0;
	while (small > 0)
		w->keep[w->stack[--small]] = 1.0;
}

/*
 * Draw comparisons with replacement, as many as the data have rows; a
 * drawn row carries the mean weight of its cell.
 */
static void
ResampleComparisons(const PrmItemsProblem *prob, const PrmItemsResample *rs,
					BootWork *w, uint64_t *rng)
{
	int64_t		draws = (int64_t) w->n_rows;

	memset(w->win_i, 0, sizeof(double) * prob->n_pairs);
	memset(w->win_j, 0, sizeof(double) * prob->n_pairs);
	memset(w->tie, 0, sizeof(double) * prob->n_pairs);
	for (int64_t r = 0; r < draws; r++)
	{
		int64_t		i = (int64_t) RandomBelow(rng, (uint64_t) w->n_cells);
		int64_t		c = w->cell[RandomUniform(rng) < w->keep[i] ? i :
								w->alias[i]];
		int64_t		k = c / 3;

		if (r % CHECK_PAIRS == CHECK_PAIRS - 1)
			PrmCheckInterrupts();
		switch (c % 3)
		{
			case 0:
				w->win_i[k] += prob->win_i[k] / rs->rows_i[k];
				break;
			case 1:
				w->win_j[k] += prob->win_j[k] / rs->rows_j[k];
				break;
			default:
				w->tie[k] += prob->tie[k] / rs->rows_tie[k];
				break;
		}
	}
}

/* Draw raters with replacement and add up their counts */
static void
ResampleRaters(const PrmItemsProblem *prob, const PrmItemsResample *rs,
			   BootWork *w, uint64_t *rng)
{
	memset(w->mult, 0, sizeof(double) * rs->n_raters);
	for (int r = 0; r < rs->n_raters; r++)
		w->mult[RandomBelow(rng, (uint64_t) rs->n_raters)] += 1.0;
	memset(w->win_i, 0, sizeof(double) * prob->n_pairs);
	memset(w->win_j, 0, sizeof(double) * prob->n_pairs);
	memset(w->tie, 0, sizeof(double) * prob->n_pairs);
	for (int64_t c = 0; c < rs->n_cells; c++)
	{
		double		k = w->mult[rs->cell_rater[c]];
		int64_t		pair = rs->cell_pair[c];

		if (k == 0)
			continue;
		w->win_i[pair] += k * rs->cell_win_i[c];
		w->win_j[pair] += k * rs->cell_win_j[c];
		w->tie[pair] += k * rs->cell_tie[c];
	}
}

/* Refit resamples of the data and keep the identified estimates */
int
PrmItemsBootstrap(const PrmItemsProblem *prob, const PrmItemsResample *rs,
				  int resamples, uint64_t seed, int max_iter,
				  const double *strength, double log_nu,
				  const int32_t *component, int n_components, int reference,
				  double *draws, void *work)
{
	BootWork	w = {0};
	PrmItemsProblem sub = *prob;
	uint64_t	rng = seed;
	int			n = prob->n_items;
	int			ok = 0;

	BootWorkLayout(prob, rs, (char *) work, &w);
	sub.win_i = w.win_i;
	sub.win_j = w.win_j;
	sub.tie = w.tie;
	if (rs->n_raters == 0)
		AliasSetup(prob, rs, &w);

	for (int b = 0; b < resamples; b++)
	{
		PrmItemsResult res;
		double		ln = log_nu;
		double	   *row = draws + (size_t) ok * (n + 1);

		PrmCheckInterrupts();
		if (rs->n_raters > 0)
			ResampleRaters(prob, rs, &w, &rng);
		else
			ResampleComparisons(prob, rs, &w, &rng);

		memcpy(w.s, strength, sizeof(double) * n);
		if (PrmItemsSolve(&sub, max_iter, w.s, &ln, w.solver, &res) != PRM_OK)
			continue;
		PrmItemsIdentify(n, w.s, component, n_components, reference,
						 w.scratch);
		memcpy(row, w.s, sizeof(double) * n);
		row[n] = res.has_nu ? exp(ln) : 0.0;
		ok++;
	}
	return ok;
}

/* Order doubles for qsort */
static int
CompareDoubles(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return (x > y) - (x < y);
}

/* Quantile q of sorted values, interpolated as R's type 7 */
static double
Quantile(const double *sorted, int n, double q)
{
	double		h = (n - 1) * q;
	int			lo = (int) floor(h);

	if (lo >= n - 1)
		return sorted[n - 1];
	return sorted[lo] + (h - lo) * (sorted[lo + 1] - sorted[lo]);
}

/* Percentile intervals of each column of draws */
void
PrmItemsPercentiles(const double *draws, int rows, int cols, double level,
					double *lower, double *upper, double *scratch)
{
	for (int c = 0; c < cols; c++)
	{
		if (rows < 1)
		{
			lower[c] = upper[c] = NAN;
			continue;
		}
		for (int r = 0; r < rows; r++)
			scratch[r] = draws[(size_t) r * cols + c];
		qsort(scratch, rows, sizeof(double), CompareDoubles);
		lower[c] = Quantile(scratch, rows, 0.5 * (1.0 - level));
		upper[c] = Quantile(scratch, rows, 0.5 * (1.0 + level));
	}
}
