/*
 * prm_item_classes.h
 *	  Latent classes of raters over item strengths: a mixture of K
 *	  Bradley-Terry-Luce models fitted by EM.
 *
 * Rater u belongs to one of K classes; class c has item strengths s_c
 * (log scale, n_items of them) and mixing weight pi_c, and a rater's
 * comparisons are independent given the class. The EM algorithm
 * increases
 *
 *	   sum_u log sum_c pi_c prod_{comparisons of u} P(outcome | s_c)
 *		   - (prior / 2) sum_c sum_i s_ci^2,
 *
 * the E-step giving each rater's responsibilities r_uc in log space, the
 * M-step fitting pi_c as the mean responsibility and each s_c by the
 * items solver (prm_items.h) on the pair counts weighted by r_uc.
 *
 * The data come as cells: one per rater and pair of items, with the
 * weight of the comparisons the pair's first item won, its second item
 * won, and ties, sorted by rater. Ties count as half a win for each item
 * (PRM_TIES_HALF), are dropped (PRM_TIES_DROP), or follow Davidson's
 * model (PRM_TIES_DAVIDSON, prm_items.h) with one tie parameter
 * theta = log nu shared by all classes: classes differ in how they rank
 * items, not in how readily they call a pair even, and a shared nu adds
 * one parameter rather than K. Without ties in the data Davidson's model
 * is the plain BTL model and theta is not estimated (-Infinity).
 */
#ifndef PRM_ITEM_CLASSES_H
#define PRM_ITEM_CLASSES_H

#include "prm_core.h"
#include "prm_items.h"

/* Most classes in one fit */
#define PRM_ITEM_CLASSES_MAX 100

/* Most restarts in one fit */
#define PRM_ITEM_CLASSES_MAX_RESTARTS 1000

/* Default EM iterations, and the parameter change that ends them */
#define PRM_ITEM_CLASSES_MAX_ITER 1000
#define PRM_ITEM_CLASSES_TOL 1e-9

/* The comparisons of raters, per rater and pair */
typedef struct PrmItemClassesProblem
{
	int			n_items;
	int64_t		n_pairs;
	const int32_t *item_i;		/* first item of each pair */
	const int32_t *item_j;		/* second item, not item_i */
	int			n_raters;
	int64_t		n_cells;
	const int32_t *cell_rater;	/* nondecreasing, in [0, n_raters) */
	const int64_t *cell_pair;	/* index into the pairs */
	const double *cell_win_i;	/* weight of comparisons item_i won */
	const double *cell_win_j;
	const double *cell_tie;
	double		prior;			/* precision of the prior on strengths */
	PrmTieModel ties;
	int			k;				/* classes, 1 .. min(n_raters, MAX) */
} PrmItemClassesProblem;

/* What a fit found */
typedef struct PrmItemClassesResult
{
	PrmStatus	status;
	int			iterations;		/* EM iterations of the best run */
	int			converged;
	int			restarts;		/* runs started */
	int			restarts_failed;	/* runs that lost a class or failed */
	int			restarts_at_best;	/* runs that reached the best value */
	double		loglik;			/* log-likelihood at the estimate */
	double		objective;		/* loglik - prior penalty, what EM raises */
	double		bic;			/* -2 loglik + parameters log(raters) */
	int64_t		parameters;		/* K (n_items - 1) + K - 1 (+ 1: nu) */
	int			has_nu;			/* theta was estimated */
	double		log_nu;			/* theta, -Infinity when not estimated */
} PrmItemClassesResult;

/* Bytes of workspace the functions below need */
size_t		PrmItemClassesWorkspaceSize(const PrmItemClassesProblem *prob);

/*
 * Log-likelihood and penalized objective at (mixing, strength, log_nu),
 * with strength K x n_items row-major; fills resp (n_raters x K) with the
 * responsibilities when not NULL. log_nu is ignored unless the model is
 * Davidson's with ties in the data. Returns NaN on a bad problem.
 */
double		PrmItemClassesLoglik(const PrmItemClassesProblem *prob,
								 const double *mixing, const double *strength,
								 double log_nu, double *resp,
								 double *objective, void *work);

/*
 * Run EM from the responsibilities in resp (n_raters x K): an M-step
 * first, then E- and M-steps until no strength or mixing weight moves by
 * more than tol, or max_iter iterations. mixing, strength and resp hold
 * the estimate on return. strength holds the starting point of the first
 * M-step's solver (zeros for a cold start), *log_nu theta's start (NaN
 * or -Infinity for btl_items' start) and estimate. trace, when not NULL,
 * gets the objective after each iteration (max_iter values). Returns
 * PRM_NO_INFORMATION when a class lost all its weight, PRM_SEPARABLE
 * when every comparison is a Davidson tie (nu infinite).
 */
PrmStatus	PrmItemClassesEm(const PrmItemClassesProblem *prob, int max_iter,
							 double tol, double *mixing, double *strength,
							 double *log_nu, double *resp, double *trace,
							 void *work, PrmItemClassesResult *res);

/*
 * Fit by EM from restarts seeded starts (random responsibilities drawn
 * from stream r of the seed for run r), keep the run with the highest
 * objective, and order the classes by mixing weight, largest first.
 * Strengths are not shifted: with a positive prior each class is centred
 * on 0 within each component, without one each class keeps mean 0.
 * *log_nu gets the shared theta (-Infinity when not estimated).
 */
PrmStatus	PrmItemClassesFit(const PrmItemClassesProblem *prob,
							  int restarts, uint64_t seed, int max_iter,
							  double *mixing, double *strength,
							  double *log_nu, double *resp, void *work,
							  PrmItemClassesResult *res);

#endif							/* PRM_ITEM_CLASSES_H */
