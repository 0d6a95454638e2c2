/*
 * prm_item_classes.c
 *	  EM for a mixture of item-level BTL models with a latent class per
 *	  rater.
 *
 * The E-step sums, per rater and class, the log-likelihood of the
 * rater's cells under the class's strengths and normalises
 * log pi_c + ll_uc by log-sum-exp. The M-step adds the cells up per pair
 * with weight r_uc and hands the pair counts to PrmItemsSolve, warm
 * started at the class's previous strengths: the same Newton solver, and
 * the same prior, as btl_items. Each M-step maximises its part of the
 * expected complete-data objective, so the penalized log-likelihood
 * never decreases (up to the solver's tolerance).
 *
 * Under Davidson's model with ties in the data, theta = log nu is one
 * parameter shared by all classes. The M-step then first fits each
 * class's strengths with theta held (PrmItemsSolveGivenNu), and then
 * theta with the strengths held: the expected complete-data
 * log-likelihood is a sum of multinomial log-likelihoods with theta in
 * the tie's linear predictor, so as a function of theta it is concave,
 * with derivative T - sum r m P(tie) decreasing from T > 0 to T - M < 0
 * (T the tie weight, M all weight). A Newton iteration safeguarded by
 * bisection on the bracket of that root finds its maximum. Both halves
 * raise the expected objective, so this is a generalized EM step and
 * the objective still never decreases.
 */
#include "prm_item_classes.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "prm_random.h"

/* Newton iterations allowed to one class's M-step */
#define MSTEP_MAX_ITER 100

/* A class whose total responsibility falls below this is lost */
#define EMPTY_CLASS 1e-10

/* Runs within this of the best objective count as reaching it */
#define SAME_OPTIMUM_REL 1e-6
#define SAME_OPTIMUM_ABS 1e-6

/* Workspace carved into named arrays */
typedef struct ClassesWork
{
	double	   *win_i;			/* n_pairs weighted counts of one class */
	double	   *win_j;
	double	   *tie;			/* n_pairs zeros */
	double	   *ca;				/* n_cells wins of item_i as counted */
	double	   *cb;				/* n_cells wins of item_j as counted */
	int64_t    *start;			/* n_raters + 1 first cell of each rater */
	double	   *ll;				/* n_raters x K log-likelihoods */
	double	   *prev_s;			/* K x n strengths before an M-step */
	double	   *prev_pi;		/* K */
	double	   *best_s;			/* K x n best run's strengths */
	double	   *best_pi;		/* K */
	double	   *best_resp;		/* n_raters x K */
	double	   *objs;			/* MAX_RESTARTS objectives */
	int		   *order;			/* K class order */
	void	   *solver;			/* PrmItemsWorkspaceSize bytes */
	int			davidson;		/* Davidson's model with theta estimated */
	double		weight_total;	/* weight of all cells */
	double		tie_total;		/* weight of their ties */
} ClassesWork;

/* Lay the workspace out; with base NULL only the size is computed */
static size_t
ClassesWorkLayout(const PrmItemClassesProblem *prob, char *base,
				  ClassesWork *w)
{
	size_t		off = 0;
	size_t		np = (size_t) prob->n_pairs;
	size_t		nc = (size_t) prob->n_cells;
	size_t		k = (size_t) (prob->k > 0 ? prob->k : 1);
	size_t		n = (size_t) (prob->n_items > 0 ? prob->n_items : 1);
	size_t		r = (size_t) (prob->n_raters > 0 ? prob->n_raters : 1);

#define TAKE(field, type, count) \
	do { \
		off = (off + 7) & ~(size_t) 7; \
		if (base) \
			w->field = (type *) (base + off); \
		off += sizeof(type) * (size_t) (count); \
	} while (0)

	TAKE(win_i, double, np);
	TAKE(win_j, double, np);
	TAKE(tie, double, np);
	TAKE(ca, double, nc);
	TAKE(cb, double, nc);
	TAKE(start, int64_t, r + 1);
	TAKE(ll, double, r * k);
	TAKE(prev_s, double, k * n);
	TAKE(prev_pi, double, k);
	TAKE(best_s, double, k * n);
	TAKE(best_pi, double, k);
	TAKE(best_resp, double, r * k);
	TAKE(objs, double, PRM_ITEM_CLASSES_MAX_RESTARTS);
	TAKE(order, int, k);
#undef TAKE
	off = (off + 7) & ~(size_t) 7;
	if (base)
		w->solver = base + off;
	return off + PrmItemsWorkspaceSize((int) n, prob->n_pairs);
}

/* Bytes of workspace the functions need */
size_t
PrmItemClassesWorkspaceSize(const PrmItemClassesProblem *prob)
{
	ClassesWork w;

	return ClassesWorkLayout(prob, NULL, &w);
}

/* Check the problem's sizes and values before any arithmetic */
static int
ProblemValid(const PrmItemClassesProblem *prob)
{
	if (prob->n_items < 1 || prob->n_items > PRM_ITEMS_MAX ||
		prob->n_pairs < 0 || prob->n_raters < 1 || prob->n_cells < 0 ||
		prob->k < 1 || prob->k > PRM_ITEM_CLASSES_MAX ||
		prob->k > prob->n_raters ||
		!(prob->prior >= 0) || isinf(prob->prior))
		return 0;
	for (int64_t p = 0; p < prob->n_pairs; p++)
	{
		int32_t		i = prob->item_i[p],
					j = prob->item_j[p];

		if (i < 0 || j < 0 || i >= prob->n_items || j >= prob->n_items ||
			i == j)
			return 0;
	}
	for (int64_t c = 0; c < prob->n_cells; c++)
	{
		double		a = prob->cell_win_i[c],
					b = prob->cell_win_j[c],
					t = prob->cell_tie[c];

		if (prob->cell_rater[c] < 0 || prob->cell_rater[c] >= prob->n_raters ||
			(c > 0 && prob->cell_rater[c] < prob->cell_rater[c - 1]) ||
			prob->cell_pair[c] < 0 || prob->cell_pair[c] >= prob->n_pairs)
			return 0;
		if (!(a >= 0) || !(b >= 0) || !(t >= 0) || isinf(a) || isinf(b) ||
			isinf(t))
			return 0;
	}
	return 1;
}

/* Point the arrays into work and fill the counted cells and offsets */
static void
ClassesWorkInit(const PrmItemClassesProblem *prob, void *work,
				ClassesWork *w)
{
	int64_t		c = 0;

	ClassesWorkLayout(prob, (char *) work, w);
	w->weight_total = 0.0;
	w->tie_total = 0.0;
	for (int64_t e = 0; e < prob->n_cells; e++)
	{
		double		half = prob->ties == PRM_TIES_HALF ?
			0.5 * prob->cell_tie[e] : 0.0;

		w->ca[e] = prob->cell_win_i[e] + half;
		w->cb[e] = prob->cell_win_j[e] + half;
		w->weight_total += prob->cell_win_i[e] + prob->cell_win_j[e] +
			prob->cell_tie[e];
		w->tie_total += prob->cell_tie[e];
	}
	w->davidson = prob->ties == PRM_TIES_DAVIDSON && w->tie_total > 0;
	if (!w->davidson)
		w->tie_total = 0.0;
	for (int u = 0; u <= prob->n_raters; u++)
	{
		while (c < prob->n_cells && prob->cell_rater[c] < u)
			c++;
		w->start[u] = c;
	}
	memset(w->tie, 0, sizeof(double) * (size_t) prob->n_pairs);
}

/* log(sigmoid(x)) without overflow */
static inline double
LogSigmoid(double x)
{
	return x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x));
}

/*
 * Davidson's model for a difference d = s_i - s_j: the log-probabilities
 * of i winning, j winning and a tie share log(e^(d/2) + e^(-d/2) +
 * e^theta), returned; *tie_prob gets P(tie) when not NULL.
 */
static inline double
DavidsonLse(double d, double theta, double *tie_prob)
{
	double		h = 0.5 * d;
	double		top = fmax(fabs(h), theta);
	double		e1 = exp(h - top),
				e2 = exp(-h - top),
				e3 = exp(theta - top);

	if (tie_prob)
		*tie_prob = e3 / (e1 + e2 + e3);
	return top + log(e1 + e2 + e3);
}

/* A cell's log-likelihood under strengths s and theta */
static inline double
CellLoglik(const PrmItemClassesProblem *prob, const ClassesWork *w,
		   int64_t e, const double *s, double theta)
{
	int64_t		p = prob->cell_pair[e];
	double		d = s[prob->item_i[p]] - s[prob->item_j[p]];
	double		acc = 0.0;

	if (w->davidson)
	{
		double		a = w->ca[e],
					b = w->cb[e],
					t = prob->cell_tie[e];
		double		lse;

		if (!(a + b + t > 0))
			return 0.0;
		lse = DavidsonLse(d, theta, NULL);
		if (a > 0)
			acc += a * (0.5 * d - lse);
		if (b > 0)
			acc += b * (-0.5 * d - lse);
		if (t > 0)
			acc += t * (theta - lse);
		return acc;
	}
	if (w->ca[e] > 0)
		acc += w->ca[e] * LogSigmoid(d);
	if (w->cb[e] > 0)
		acc += w->cb[e] * LogSigmoid(-d);
	return acc;
}

/*
 * E-step: the log-likelihood of every rater under every class into w->ll,
 * responsibilities into resp; returns the log-likelihood and sets
 * *objective to it minus the prior's penalty.
 */
static double
EStep(const PrmItemClassesProblem *prob, ClassesWork *w,
	  const double *mixing, const double *strength, double theta,
	  double *resp, double *objective)
{
	int			k = prob->k;
	int			n = prob->n_items;
	double		loglik = 0.0;
	double		pen = 0.0;

	for (int u = 0; u < prob->n_raters; u++)
	{
		double	   *l = w->ll + (size_t) u * k;
		double		top = -INFINITY;
		double		sum = 0.0;

		if (u % 256 == 255)
			PrmCheckInterrupts();
		for (int c = 0; c < k; c++)
		{
			const double *s = strength + (size_t) c * n;
			double		acc = 0.0;

			for (int64_t e = w->start[u]; e < w->start[u + 1]; e++)
				acc += CellLoglik(prob, w, e, s, theta);
			l[c] = (mixing[c] > 0 ? log(mixing[c]) : -INFINITY) + acc;
			top = fmax(top, l[c]);
		}
		for (int c = 0; c < k; c++)
			sum += exp(l[c] - top);
		loglik += top + log(sum);
		if (resp)
			for (int c = 0; c < k; c++)
				resp[(size_t) u * k + c] = exp(l[c] - top) / sum;
	}
	for (size_t i = 0; i < (size_t) k * n; i++)
		pen += strength[i] * strength[i];
	*objective = loglik - 0.5 * prob->prior * pen;
	return loglik;
}

/* Log-likelihood and objective at given parameters */
double
PrmItemClassesLoglik(const PrmItemClassesProblem *prob, const double *mixing,
					 const double *strength, double log_nu, double *resp,
					 double *objective, void *work)
{
	ClassesWork w;

	if (!ProblemValid(prob))
		return NAN;
	ClassesWorkInit(prob, work, &w);
	if (w.davidson && !isfinite(log_nu))
		return NAN;
	return EStep(prob, &w, mixing, strength, log_nu, resp, objective);
}

/*
 * The derivative and second derivative in theta of the expected
 * complete-data log-likelihood, sum_u sum_c r_uc ll_uc(s_c, theta).
 */
static void
ThetaDerivatives(const PrmItemClassesProblem *prob, ClassesWork *w,
				 const double *resp, const double *strength, double theta,
				 double *g, double *h)
{
	int			k = prob->k;
	int			n = prob->n_items;
	double		expected = 0.0,
				curv = 0.0;

	for (int u = 0; u < prob->n_raters; u++)
	{
		if (u % 256 == 255)
			PrmCheckInterrupts();
		for (int c = 0; c < k; c++)
		{
			const double *s = strength + (size_t) c * n;
			double		r = resp[(size_t) u * k + c];

			if (r == 0)
				continue;
			for (int64_t e = w->start[u]; e < w->start[u + 1]; e++)
			{
				int64_t		p = prob->cell_pair[e];
				double		m = w->ca[e] + w->cb[e] + prob->cell_tie[e];
				double		pt;

				if (!(m > 0))
					continue;
				DavidsonLse(s[prob->item_i[p]] - s[prob->item_j[p]], theta,
							&pt);
				expected += r * m * pt;
				curv += r * m * pt * (1.0 - pt);
			}
		}
	}
	*g = w->tie_total - expected;
	*h = -curv;
}

/* Theta's iterations in one M-step, and the step that ends them */
#define THETA_MAX_ITER 100
#define THETA_TOL 1e-12
#define THETA_MAX_STEP 4.0

/*
 * The theta half of the M-step: the root of the decreasing derivative by
 * Newton's method, falling back to bisection whenever a step would leave
 * the bracket known to hold the root. Returns the new theta; the old one
 * when the derivative is not finite.
 */
static double
UpdateTheta(const PrmItemClassesProblem *prob, ClassesWork *w,
			const double *resp, const double *strength, double theta)
{
	double		lo = -INFINITY,
				hi = INFINITY;
	double		x = theta;

	for (int it = 0; it < THETA_MAX_ITER; it++)
	{
		double		g,
					h,
					next;

		ThetaDerivatives(prob, w, resp, strength, x, &g, &h);
		if (!isfinite(g) || !isfinite(h))
			return theta;
		if (g == 0)
			return x;
		if (g > 0)
			lo = x;
		else
			hi = x;
		next = h < 0 ? x - g / h : (g > 0 ? INFINITY : -INFINITY);
		next = fmin(fmax(next, x - THETA_MAX_STEP), x + THETA_MAX_STEP);
		if (!(next > lo && next < hi))
		{
			if (isfinite(lo) && isfinite(hi))
				next = 0.5 * (lo + hi);
			else
				next = g > 0 ? x + THETA_MAX_STEP : x - THETA_MAX_STEP;
		}
		if (fabs(next - x) <= THETA_TOL * fmax(1.0, fabs(x)))
			return next;
		x = next;
	}
	return x;
}

/*
 * M-step: mixing weights as mean responsibilities, each class's strengths
 * by the items solver on pair counts weighted by the responsibilities.
 */
static PrmStatus
MStep(const PrmItemClassesProblem *prob, ClassesWork *w, const double *resp,
	  double *mixing, double *strength, double *theta)
{
	int			k = prob->k;
	int			n = prob->n_items;
	PrmItemsProblem sub;

	sub.n_items = n;
	sub.n_pairs = prob->n_pairs;
	sub.item_i = prob->item_i;
	sub.item_j = prob->item_j;
	sub.win_i = w->win_i;
	sub.win_j = w->win_j;
	sub.tie = w->tie;
	sub.prior = prob->prior;
	sub.ties = w->davidson ? PRM_TIES_DAVIDSON : PRM_TIES_DROP;

	for (int c = 0; c < k; c++)
	{
		double		total = 0.0;
		PrmItemsResult ir;
		PrmStatus	st;

		for (int u = 0; u < prob->n_raters; u++)
			total += resp[(size_t) u * k + c];
		if (!(total > EMPTY_CLASS * prob->n_raters))
			return PRM_NO_INFORMATION;
		mixing[c] = total / prob->n_raters;

		memset(w->win_i, 0, sizeof(double) * (size_t) prob->n_pairs);
		memset(w->win_j, 0, sizeof(double) * (size_t) prob->n_pairs);
		if (w->davidson)
			memset(w->tie, 0, sizeof(double) * (size_t) prob->n_pairs);
		for (int u = 0; u < prob->n_raters; u++)
		{
			double		r = resp[(size_t) u * k + c];

			if (r == 0)
				continue;
			for (int64_t e = w->start[u]; e < w->start[u + 1]; e++)
			{
				w->win_i[prob->cell_pair[e]] += r * w->ca[e];
				w->win_j[prob->cell_pair[e]] += r * w->cb[e];
				if (w->davidson)
					w->tie[prob->cell_pair[e]] += r * prob->cell_tie[e];
			}
		}
		st = PrmItemsSolveGivenNu(&sub, MSTEP_MAX_ITER,
								  strength + (size_t) c * n,
								  w->davidson ? *theta : -INFINITY,
								  w->solver, &ir);
		if (st != PRM_OK && st != PRM_NOT_CONVERGED)
			return st;
	}
	if (w->davidson)
		*theta = UpdateTheta(prob, w, resp, strength, *theta);
	return PRM_OK;
}

/* Where theta starts: btl_items' start from the share of ties */
static double
StartTheta(const ClassesWork *w)
{
	if (!w->davidson)
		return -INFINITY;
	return log(2.0 * w->tie_total / (w->weight_total - w->tie_total));
}

/* Run EM from given responsibilities */
static PrmStatus
RunEm(const PrmItemClassesProblem *prob, ClassesWork *w, int max_iter,
	  double tol, double *mixing, double *strength, double *theta,
	  double *resp, double *trace, PrmItemClassesResult *res)
{
	int			k = prob->k;
	size_t		ks = (size_t) k * prob->n_items;
	PrmStatus	st;

	res->iterations = 0;
	res->converged = 0;
	for (int it = 0; it < max_iter; it++)
	{
		double		delta = 0.0;
		double		prev_theta = *theta;

		PrmCheckInterrupts();
		memcpy(w->prev_s, strength, sizeof(double) * ks);
		memcpy(w->prev_pi, mixing, sizeof(double) * k);
		st = MStep(prob, w, resp, mixing, strength, theta);
		if (st != PRM_OK)
			return st;
		res->log_nu = *theta;
		res->loglik = EStep(prob, w, mixing, strength, *theta, resp,
							&res->objective);
		if (!isfinite(res->objective))
			return PRM_BAD_INPUT;
		if (trace)
			trace[it] = res->objective;
		res->iterations = it + 1;

		/* the first M-step starts from nothing: never stop after it */
		if (it == 0)
			continue;
		for (size_t i = 0; i < ks; i++)
			delta = fmax(delta, fabs(strength[i] - w->prev_s[i]));
		for (int c = 0; c < k; c++)
			delta = fmax(delta, fabs(mixing[c] - w->prev_pi[c]));
		if (w->davidson)
			delta = fmax(delta, fabs(*theta - prev_theta));
		if (delta <= tol)
		{
			res->converged = 1;
			break;
		}
	}
	return PRM_OK;
}

/* Run EM from given responsibilities */
PrmStatus
PrmItemClassesEm(const PrmItemClassesProblem *prob, int max_iter, double tol,
				 double *mixing, double *strength, double *log_nu,
				 double *resp, double *trace, void *work,
				 PrmItemClassesResult *res)
{
	ClassesWork w;
	PrmStatus	st;

	memset(res, 0, sizeof(*res));
	res->log_nu = -INFINITY;
	if (!ProblemValid(prob) || max_iter < 1 || !(tol >= 0))
		return res->status = PRM_BAD_INPUT;
	ClassesWorkInit(prob, work, &w);
	if (w.davidson && w.tie_total >= w.weight_total)
		return res->status = PRM_SEPARABLE;	/* nu would be infinite */
	if (!w.davidson)
		*log_nu = -INFINITY;
	else if (!isfinite(*log_nu))
		*log_nu = StartTheta(&w);
	res->has_nu = w.davidson;
	st = RunEm(prob, &w, max_iter, tol, mixing, strength, log_nu, resp,
			   trace, res);
	res->restarts = 1;
	res->parameters = (int64_t) prob->k * (prob->n_items - 1) + prob->k -
		1 + w.davidson;
	res->bic = -2.0 * res->loglik +
		(double) res->parameters * log((double) prob->n_raters);
	if (st != PRM_OK)
		return res->status = st;
	return res->status = res->converged ? PRM_OK : PRM_NOT_CONVERGED;
}

/* Draw starting responsibilities: a flat Dirichlet row per rater */
static void
RandomResponsibilities(const PrmItemClassesProblem *prob, uint64_t seed,
					   int run, double *resp)
{
	PrmRandom	rng;
	int			k = prob->k;

	PrmRandomSeed(&rng, seed, (uint64_t) run);
	for (int u = 0; u < prob->n_raters; u++)
	{
		double	   *r = resp + (size_t) u * k;
		double		sum = 0.0;

		for (int c = 0; c < k; c++)
		{
			r[c] = -log(1.0 - PrmRandomUniform(&rng));
			sum += r[c];
		}
		for (int c = 0; c < k; c++)
			r[c] /= sum;
	}
}

/* Order classes by mixing weight, largest first, ties by number */
static void
SortClasses(const PrmItemClassesProblem *prob, ClassesWork *w,
			double *mixing, double *strength, double *resp)
{
	int			k = prob->k;
	int			n = prob->n_items;

	for (int c = 0; c < k; c++)
		w->order[c] = c;
	for (int a = 1; a < k; a++)
	{
		int			x = w->order[a];
		int			b = a;

		while (b > 0 && mixing[w->order[b - 1]] < mixing[x])
		{
			w->order[b] = w->order[b - 1];
			b--;
		}
		w->order[b] = x;
	}

	/* permute through the scratch copies */
	memcpy(w->prev_pi, mixing, sizeof(double) * k);
	memcpy(w->prev_s, strength, sizeof(double) * (size_t) k * n);
	for (int c = 0; c < k; c++)
	{
		mixing[c] = w->prev_pi[w->order[c]];
		memcpy(strength + (size_t) c * n,
			   w->prev_s + (size_t) w->order[c] * n, sizeof(double) * n);
	}
	for (int u = 0; u < prob->n_raters; u++)
	{
		double	   *r = resp + (size_t) u * k;

		memcpy(w->prev_pi, r, sizeof(double) * k);
		for (int c = 0; c < k; c++)
			r[c] = w->prev_pi[w->order[c]];
	}
}

/* Fit from seeded starts and keep the best run */
PrmStatus
PrmItemClassesFit(const PrmItemClassesProblem *prob, int restarts,
				  uint64_t seed, int max_iter, double *mixing,
				  double *strength, double *log_nu, double *resp,
				  void *work, PrmItemClassesResult *res)
{
	ClassesWork w;
	PrmItemClassesResult run;
	PrmItemClassesResult best = {0};
	PrmStatus	last = PRM_NO_INFORMATION;
	int			k = prob->k;
	size_t		ks = (size_t) k * prob->n_items;
	size_t		rk = (size_t) prob->n_raters * k;
	int			have = 0;
	double		theta,
				best_theta = -INFINITY;

	memset(res, 0, sizeof(*res));
	res->log_nu = *log_nu = -INFINITY;
	if (!ProblemValid(prob) || max_iter < 1 || restarts < 1 ||
		restarts > PRM_ITEM_CLASSES_MAX_RESTARTS)
		return res->status = PRM_BAD_INPUT;
	ClassesWorkInit(prob, work, &w);
	if (w.davidson && w.tie_total >= w.weight_total)
		return res->status = PRM_SEPARABLE;	/* nu would be infinite */
	res->has_nu = w.davidson;

	/* one class needs one run only: every start is the same */
	if (k == 1)
		restarts = 1;
	for (int r = 0; r < restarts; r++)
	{
		PrmStatus	st;

		memset(&run, 0, sizeof(run));
		memset(strength, 0, sizeof(double) * ks);
		theta = StartTheta(&w);
		RandomResponsibilities(prob, seed, r, resp);
		st = RunEm(prob, &w, max_iter, PRM_ITEM_CLASSES_TOL, mixing,
				   strength, &theta, resp, NULL, &run);
		w.objs[r] = -INFINITY;
		if (st != PRM_OK)
		{
			res->restarts_failed++;
			last = st;
			continue;
		}
		w.objs[r] = run.objective;
		if (!have || run.objective > best.objective)
		{
			best = run;
			best_theta = theta;
			have = 1;
			memcpy(w.best_pi, mixing, sizeof(double) * k);
			memcpy(w.best_s, strength, sizeof(double) * ks);
			memcpy(w.best_resp, resp, sizeof(double) * rk);
		}
	}
	res->restarts = restarts;
	if (!have)
		return res->status = last;

	memcpy(mixing, w.best_pi, sizeof(double) * k);
	memcpy(strength, w.best_s, sizeof(double) * ks);
	memcpy(resp, w.best_resp, sizeof(double) * rk);
	*log_nu = best_theta;
	SortClasses(prob, &w, mixing, strength, resp);

	for (int r = 0; r < restarts; r++)
		if (w.objs[r] >= best.objective -
			fmax(SAME_OPTIMUM_ABS, SAME_OPTIMUM_REL * fabs(best.objective)))
			res->restarts_at_best++;
	res->iterations = best.iterations;
	res->converged = best.converged;
	res->loglik = best.loglik;
	res->objective = best.objective;
	res->log_nu = best_theta;
	res->parameters = (int64_t) k * (prob->n_items - 1) + k - 1 +
		w.davidson;
	res->bic = -2.0 * res->loglik +
		(double) res->parameters * log((double) prob->n_raters);
	return res->status = res->converged ? PRM_OK : PRM_NOT_CONVERGED;
}
