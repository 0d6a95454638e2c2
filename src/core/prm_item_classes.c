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
		if (prob->ties == PRM_TIES_DAVIDSON && t > 0)
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
	for (int64_t e = 0; e < prob->n_cells; e++)
	{
		double		half = prob->ties == PRM_TIES_HALF ?
			0.5 * prob->cell_tie[e] : 0.0;

		w->ca[e] = prob->cell_win_i[e] + half;
		w->cb[e] = prob->cell_win_j[e] + half;
	}
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
 * E-step: the log-likelihood of every rater under every class into w->ll,
 * responsibilities into resp; returns the log-likelihood and sets
 * *objective to it minus the prior's penalty.
 */
static double
EStep(const PrmItemClassesProblem *prob, ClassesWork *w,
	  const double *mixing, const double *strength, double *resp,
	  double *objective)
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
			{
				int64_t		p = prob->cell_pair[e];
				double		d = s[prob->item_i[p]] - s[prob->item_j[p]];

				if (w->ca[e] > 0)
					acc += w->ca[e] * LogSigmoid(d);
				if (w->cb[e] > 0)
					acc += w->cb[e] * LogSigmoid(-d);
			}
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
					 const double *strength, double *resp, double *objective,
					 void *work)
{
	ClassesWork w;

	if (!ProblemValid(prob))
		return NAN;
	ClassesWorkInit(prob, work, &w);
	return EStep(prob, &w, mixing, strength, resp, objective);
}

/*
 * M-step: mixing weights as mean responsibilities, each class's strengths
 * by the items solver on pair counts weighted by the responsibilities.
 */
static PrmStatus
MStep(const PrmItemClassesProblem *prob, ClassesWork *w, const double *resp,
	  double *mixing, double *strength)
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
	sub.ties = PRM_TIES_DROP;

	for (int c = 0; c < k; c++)
	{
		double		total = 0.0;
		double		log_nu = NAN;
		PrmItemsResult ir;
		PrmStatus	st;

		for (int u = 0; u < prob->n_raters; u++)
			total += resp[(size_t) u * k + c];
		if (!(total > EMPTY_CLASS * prob->n_raters))
			return PRM_NO_INFORMATION;
		mixing[c] = total / prob->n_raters;

		memset(w->win_i, 0, sizeof(double) * (size_t) prob->n_pairs);
		memset(w->win_j, 0, sizeof(double) * (size_t) prob->n_pairs);
		for (int u = 0; u < prob->n_raters; u++)
		{
			double		r = resp[(size_t) u * k + c];

			if (r == 0)
				continue;
			for (int64_t e = w->start[u]; e < w->start[u + 1]; e++)
			{
				w->win_i[prob->cell_pair[e]] += r * w->ca[e];
				w->win_j[prob->cell_pair[e]] += r * w->cb[e];
			}
		}
		st = PrmItemsSolve(&sub, MSTEP_MAX_ITER, strength + (size_t) c * n,
						   &log_nu, w->solver, &ir);
		if (st != PRM_OK && st != PRM_NOT_CONVERGED)
			return st;
	}
	return PRM_OK;
}

/* Run EM from given responsibilities */
static PrmStatus
RunEm(const PrmItemClassesProblem *prob, ClassesWork *w, int max_iter,
	  double tol, double *mixing, double *strength, double *resp,
	  double *trace, PrmItemClassesResult *res)
{
	int			k = prob->k;
	size_t		ks = (size_t) k * prob->n_items;
	PrmStatus	st;

	res->iterations = 0;
	res->converged = 0;
	for (int it = 0; it < max_iter; it++)
	{
		double		delta = 0.0;

		PrmCheckInterrupts();
		memcpy(w->prev_s, strength, sizeof(double) * ks);
		memcpy(w->prev_pi, mixing, sizeof(double) * k);
		st = MStep(prob, w, resp, mixing, strength);
		if (st != PRM_OK)
			return st;
		res->loglik = EStep(prob, w, mixing, strength, resp,
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
				 double *mixing, double *strength, double *resp,
				 double *trace, void *work, PrmItemClassesResult *res)
{
	ClassesWork w;
	PrmStatus	st;

	memset(res, 0, sizeof(*res));
	if (!ProblemValid(prob) || max_iter < 1 || !(tol >= 0))
		return res->status = PRM_BAD_INPUT;
	ClassesWorkInit(prob, work, &w);
	st = RunEm(prob, &w, max_iter, tol, mixing, strength, resp, trace, res);
	res->restarts = 1;
	res->parameters = (int64_t) prob->k * (prob->n_items - 1) + prob->k - 1;
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
				  double *strength, double *resp, void *work,
				  PrmItemClassesResult *res)
{
	ClassesWork w;
	PrmItemClassesResult run;
	PrmItemClassesResult best = {0};
	PrmStatus	last = PRM_NO_INFORMATION;
	int			k = prob->k;
	size_t		ks = (size_t) k * prob->n_items;
	size_t		rk = (size_t) prob->n_raters * k;
	int			have = 0;

	memset(res, 0, sizeof(*res));
	if (!ProblemValid(prob) || max_iter < 1 || restarts < 1 ||
		restarts > PRM_ITEM_CLASSES_MAX_RESTARTS)
		return res->status = PRM_BAD_INPUT;
	ClassesWorkInit(prob, work, &w);

	/* one class needs one run only: every start is the same */
	if (k == 1)
		restarts = 1;
	for (int r = 0; r < restarts; r++)
	{
		PrmStatus	st;

		memset(&run, 0, sizeof(run));
		memset(strength, 0, sizeof(double) * ks);
		RandomResponsibilities(prob, seed, r, resp);
		st = RunEm(prob, &w, max_iter, PRM_ITEM_CLASSES_TOL, mixing,
				   strength, resp, NULL, &run);
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
	SortClasses(prob, &w, mixing, strength, resp);

	for (int r = 0; r < restarts; r++)
		if (w.objs[r] >= best.objective -
			fmax(SAME_OPTIMUM_ABS, SAME_OPTIMUM_REL * fabs(best.objective)))
			res->restarts_at_best++;
	res->iterations = best.iterations;
	res->converged = best.converged;
	res->loglik = best.loglik;
	res->objective = best.objective;
	res->parameters = (int64_t) k * (prob->n_items - 1) + k - 1;
	res->bic = -2.0 * res->loglik +
		(double) res->parameters * log((double) prob->n_raters);
	return res->status = res->converged ? PRM_OK : PRM_NOT_CONVERGED;
}
