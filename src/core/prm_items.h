/*
 * prm_items.h
 *	  Bradley-Terry-Luce strengths of items from paired comparisons, with
 *	  Davidson's model for ties, standard errors and bootstrap intervals.
 *
 * Items are numbered 0 .. n_items - 1 and the data are counted per pair:
 * for pair k the weights of comparisons item_i[k] won, item_j[k] won, and
 * ties. Item i has strength s_i and pi_i = exp(s_i). Under Davidson (1970)
 *
 *	   P(i beats j) = pi_i / D,  P(tie) = nu sqrt(pi_i pi_j) / D,
 *	   D = pi_i + pi_j + nu sqrt(pi_i pi_j),
 *
 * with nu > 0 estimated as theta = log nu. Ties can instead count as half
 * a win for each item, or be dropped; without ties in the data the model
 * is the plain BTL model. The solver minimises
 *
 *	   f(s, theta) = -loglik(s, theta) + (prior / 2) sum_i s_i^2,
 *
 * a normal prior with mean 0 and precision prior on each strength (theta
 * has none). The log-likelihood does not change when every strength moves
 * by the same amount, so a positive prior centres every connected
 * component of the comparison graph at mean 0; with prior = 0 the solver
 * fixes the mean at 0 itself and needs a connected graph in which every
 * item beat, and was beaten by, the rest (or tied with them): otherwise
 * the likelihood has no finite maximum.
 *
 * The method is Newton's with a dense (n_items + 1)^2 Hessian, a weighted
 * graph Laplacian plus the row of theta, factored by Cholesky; a few
 * iterations suffice. Standard errors come from the inverse of the same
 * Hessian at the estimate (the observed information, plus the prior).
 */
#ifndef PRM_ITEMS_H
#define PRM_ITEMS_H

#include "prm_core.h"

/* How ties count */
typedef enum PrmTieModel
{
	PRM_TIES_DAVIDSON = 0,		/* Davidson's model, nu estimated */
	PRM_TIES_HALF,				/* half a win for each item */
	PRM_TIES_DROP				/* ignored */
} PrmTieModel;

/* Most items in one fit: the Hessian is dense */
#define PRM_ITEMS_MAX 5000

/* Default precision of the normal prior on strengths (sd 10) */
#define PRM_ITEMS_DEFAULT_PRIOR 0.01

/* A fit has converged when a Newton step moves no parameter further */
#define PRM_ITEMS_STEP_TOL 1e-9

/* Comparison counts per pair of items */
typedef struct PrmItemsProblem
{
	int			n_items;
	int64_t		n_pairs;
	const int32_t *item_i;		/* first item of each pair */
	const int32_t *item_j;		/* second item, not item_i */
	const double *win_i;		/* weight of comparisons item_i won */
	const double *win_j;		/* weight of comparisons item_j won */
	const double *tie;			/* weight of ties */
	double		prior;			/* precision of the prior on strengths */
	PrmTieModel ties;
} PrmItemsProblem;

/* What a fit found */
typedef struct PrmItemsResult
{
	PrmStatus	status;
	int			iterations;
	int			converged;
	int			has_nu;			/* theta was estimated */
	double		loglik;			/* log-likelihood at the estimate */
	double		objective;		/* f at the estimate */
	double		grad_norm;		/* ||grad f|| at the estimate */
} PrmItemsResult;

/*
 * What a bootstrap resamples. For comparisons: the number of rows behind
 * each pair's wins of item_i, wins of item_j and ties (each row carries
 * its cell's mean weight). For raters (n_raters > 0): every rater's counts
 * per pair, as cells sorted or not; a resample draws n_raters raters with
 * replacement and adds up their cells.
 */
typedef struct PrmItemsResample
{
	const double *rows_i;
	const double *rows_j;
	const double *rows_tie;
	int			n_raters;
	int64_t		n_cells;
	const int32_t *cell_rater;
	const int64_t *cell_pair;	/* index into the problem's pairs */
	const double *cell_win_i;
	const double *cell_win_j;
	const double *cell_tie;
} PrmItemsResample;

/* Bytes of workspace the fit, component and error functions need */
size_t		PrmItemsWorkspaceSize(int n_items, int64_t n_pairs);

/*
 * Label the connected components of the comparison graph (pairs with a
 * positive weight are edges) 0, 1, ... in order of their smallest item;
 * returns the number of components.
 */
int			PrmItemsComponents(const PrmItemsProblem *prob,
							   int32_t *component, void *work);

/*
 * Whether every item can be reached from every other along "beat or tied
 * with" edges, the condition for finite strengths without a prior.
 */
int			PrmItemsStronglyConnected(const PrmItemsProblem *prob,
									  void *work);

/*
 * Fit strengths and, under Davidson's model with ties in the data, theta.
 * strength (n_items) and *log_nu hold the starting point (zeros and NaN
 * for a cold start) and the estimate on return; *log_nu is -Infinity when
 * nu was not estimated. Returns PRM_SEPARABLE when there is no finite
 * estimate, PRM_NO_INFORMATION when every weight is zero.
 */
PrmStatus	PrmItemsSolve(const PrmItemsProblem *prob, int max_iter,
						  double *strength, double *log_nu, void *work,
						  PrmItemsResult *res);

/*
 * Fit the strengths with theta held at log_nu: Davidson's model with
 * nu = exp(log_nu) when ties are PRM_TIES_DAVIDSON and log_nu is finite
 * (whether or not the data have ties), the plain model when log_nu is
 * -Infinity or ties are half or drop. strength holds the starting point
 * and the estimate; res->loglik and res->objective are those of the
 * fixed-theta model, res->has_nu whether Davidson's model was used.
 */
PrmStatus	PrmItemsSolveGivenNu(const PrmItemsProblem *prob, int max_iter,
								 double *strength, double log_nu, void *work,
								 PrmItemsResult *res);

/*
 * Shift strengths to the identification: reference >= 0 makes that item's
 * strength 0 (the graph must be connected), reference < 0 makes each
 * component's strengths sum to zero. scratch holds 2 n_components
 * doubles.
 */
void		PrmItemsIdentify(int n_items, double *strength,
							 const int32_t *component, int n_components,
							 int reference, double *scratch);

/*
 * Standard errors of the identified strengths at an estimate, from the
 * inverse Hessian of f: of s_i - s_reference, or of s_i minus the mean of
 * its component. *nu_se is the delta-method error of nu (0 without nu).
 */
PrmStatus	PrmItemsStandardErrors(const PrmItemsProblem *prob,
								   const double *strength, double log_nu,
								   const int32_t *component,
								   int n_components, int reference,
								   double *se, double *nu_se, void *work);

/* Bytes of workspace PrmItemsBootstrap needs, on top of nothing else */
size_t		PrmItemsBootstrapWorkspaceSize(const PrmItemsProblem *prob,
										   const PrmItemsResample *rs);

/*
 * Refit resamples of the data, warm-started at the estimate (strength,
 * log_nu), and write each successful draw as a row of n_items + 1 values
 * into draws: the identified strengths and nu (0 when not estimated).
 * Returns the number of successful draws (packed at the top); resamples
 * without a finite estimate or that did not converge are skipped.
 */
int			PrmItemsBootstrap(const PrmItemsProblem *prob,
							  const PrmItemsResample *rs, int resamples,
							  uint64_t seed, int max_iter,
							  const double *strength, double log_nu,
							  const int32_t *component, int n_components,
							  int reference, double *draws, void *work);

/*
 * Percentile intervals at level (e.g. 0.95) of each column of draws
 * (rows x cols, row-major), interpolated as R's quantile type 7. scratch
 * holds rows doubles.
 */
void		PrmItemsPercentiles(const double *draws, int rows, int cols,
								double level, double *lower, double *upper,
								double *scratch);

#endif							/* PRM_ITEMS_H */
