/*
 * prm_btl.h
 *	  Penalized maximum likelihood for the linear Bradley-Terry-Luce model.
 *
 * A comparison i has a difference vector z_i = x_chosen - x_rejected and a
 * weight a_i >= 0. The model says P(chosen beats rejected) = sigmoid(w . z_i)
 * and the solvers minimise
 *
 *	   f(w) = sum_i a_i log(1 + exp(-w . z_i)) + (l2 / 2) ||w||^2
 *
 * which is logistic regression on the difference vectors with every label
 * equal to one and no intercept. Two methods are offered: Newton's method
 * with a d x d Hessian (Cholesky) and truncated Newton-CG, which only needs
 * Hessian-vector products. Both use a backtracking line search on f and stop
 * when the exact gradient satisfies ||grad f(w)|| <= tol * max(1,
 * ||grad f(0)||).
 */
#ifndef PRM_BTL_H
#define PRM_BTL_H

#include "prm_core.h"

typedef enum PrmBtlMethod
{
	PRM_METHOD_AUTO = 0,
	PRM_METHOD_NEWTON,
	PRM_METHOD_NEWTON_CG
} PrmBtlMethod;

/* The data of one fit; z is row-major, n rows of d values */
typedef struct PrmBtlProblem
{
	int64_t		n;
	int			d;
	const double *z;
	const double *weight;		/* n weights, or NULL when all are 1 */
	double		l2;
} PrmBtlProblem;

typedef struct PrmBtlOptions
{
	PrmBtlMethod method;
	double		tol;
	int			max_iter;
} PrmBtlOptions;

typedef struct PrmBtlResult
{
	PrmStatus	status;
	PrmBtlMethod method;		/* the method that ran */
	int			iterations;
	int			converged;
	double		objective;		/* f(w) */
	double		loglik;			/* sum_i a_i log sigmoid(w . z_i) */
	double		grad_norm;
	double		grad_norm0;		/* ||grad f(0)||, the tolerance scale */
	double		accuracy;		/* weighted share with w . z_i > 0 */
	double		weight_sum;
	int64_t		informative;	/* weighted rows with a nonzero margin */
} PrmBtlResult;

/* Default stopping rule and iteration limit */
#define PRM_BTL_DEFAULT_TOL 1e-9
#define PRM_BTL_DEFAULT_MAX_ITER 100


/* Pick the method that is cheaper for this shape of problem */
PrmBtlMethod PrmBtlChooseMethod(int64_t n, int d);

/* Bytes of workspace PrmBtlSolve needs for this problem and method */
size_t		PrmBtlWorkspaceSize(const PrmBtlProblem *prob,
								PrmBtlMethod method);

/*
 * Minimise f. w holds the starting point on entry (zeros for a cold start)
 * and the solution on return. work must hold PrmBtlWorkspaceSize() bytes,
 * aligned for double.
 */
PrmStatus	PrmBtlSolve(const PrmBtlProblem *prob, const PrmBtlOptions *opt,
						double *w, void *work, PrmBtlResult *res);

#endif							/* PRM_BTL_H */
