/*
 * prm_factor.h
 *	  Factorized rewards: K base reward functions shared by everyone and K
 *	  coefficients per user, with a Gaussian population prior.
 *
 * User u's reward of a response x is c_u . (B x), with B a k x d matrix of
 * base rewards and c_u ~ N(mu, Sigma). The fit works by blocks on the
 * Laplace approximation of the marginal likelihood
 *
 *	   sum_i a_i log sigmoid(c_u(i) . B z_i)
 *		 - 1/2 sum_u (c_u - mu)' P (c_u - mu) + users/2 log det P
 *		 - 1/2 sum_u log det H_u - (l2 / 2) ||B||^2,
 *	   P = prior_strength * Sigma^-1, H_u the posterior precision of c_u:
 *
 * every user's c_u (the posterior mode, a k-dimensional penalized logistic
 * regression on the features v_i = B z_i, solved by Newton), then mu and
 * Sigma by empirical Bayes from the users' Laplace posteriors, then a
 * projected Newton step on B that raises the joint likelihood of B and
 * the modes (it ignores log det H_u, so the objective is not monotone).
 * The rows of B of unlocked components have unit norm (their coefficients
 * carry the scale); a locked component's coefficient is 1 for every user
 * and its row carries the scale. A new user's posterior needs B and the
 * prior only.
 */
#ifndef PRM_FACTOR_H
#define PRM_FACTOR_H

#include "prm_core.h"

typedef struct PrmFactorProblem
{
	int64_t		n;
	int			d;
	const double *z;			/* n x d difference vectors */
	const double *weight;		/* n weights, or NULL */
	const int32_t *user;		/* n user indexes */
	int32_t		users;
	int			k;
	double		l2;				/* penalty on B */
	double		prior_strength; /* multiplier of the prior precision */
	const int  *locked;			/* k flags: coefficient fixed at mu, or NULL */
} PrmFactorProblem;

typedef struct PrmFactorOptions
{
	double		tol;			/* relative change of the objective; fits
								 * also stop when the users' rewards B' c_u
								 * change by less than 1e-4 relative */
	int			max_iter;
	double	   *trace;			/* objective per iteration (room for
								 * max_iter + 1 values), or NULL */
	const double *start_base;	/* k x d starting base rewards (a warm
								 * start), or NULL for the users' top
								 * directions */
	const double *start_mu;		/* with start_base: the starting prior's
								 * mean and k x k covariance, or NULL for
								 * N(0, I) (locked components: mean 1) */
	const double *start_sigma;
	int			plain;			/* no extrapolation between rounds (for
								 * checking the accelerated fit) */
} PrmFactorOptions;

typedef struct PrmFactorResult
{
	PrmStatus	status;
	double		objective;
	double		loglik;
	int			iterations;
	int			converged;
	int			trace_len;
} PrmFactorResult;

#define PRM_FACTOR_DEFAULT_TOL 1e-7
#define PRM_FACTOR_DEFAULT_MAX_ITER 300

/* Bytes of workspace PrmFactorFit needs */
size_t		PrmFactorWorkspaceSize(const PrmFactorProblem *prob);

/*
 * Fit B (k x d), mu (k), sigma (k x k), every user's coefficients coef
 * (users x k) and posterior covariance cov (users x k x k).
 */
PrmStatus	PrmFactorFit(const PrmFactorProblem *prob,
						 const PrmFactorOptions *opt, double *base,
						 double *mu, double *sigma, double *coef,
						 double *cov, void *work, PrmFactorResult *res);

/* One user's comparisons under a fixed B and prior */
typedef struct PrmUserProblem
{
	int			n;
	int			d;
	int			k;
	const double *z;			/* n x d difference vectors */
	const double *weight;		/* n weights, or NULL */
	const double *base;			/* k x d */
	const double *mu;			/* k prior mean */
	const double *prec;			/* k x k prior precision (scaled) */
	const int  *locked;			/* k flags, or NULL */
} PrmUserProblem;

/* Bytes of workspace PrmUserPosterior needs */
size_t		PrmUserWorkspaceSize(int n, int k);

/*
 * Posterior mode of a user's coefficients (into coef) and the Laplace
 * covariance (into cov, k x k; locked rows and columns are zero).
 */
PrmStatus	PrmUserPosterior(const PrmUserProblem *prob, double *coef,
							 double *cov, void *work, int *iterations);

/* Invert a symmetric positive definite k x k matrix in place */
PrmStatus	PrmInvertSpd(double *a, int k);

/*
 * Greedy question selection for a user with posterior mean coef and
 * covariance cov: from count candidate pairs (a_j, b_j), rows of the
 * count x d matrices cand_a and cand_b (cand_b NULL: cand_a holds the
 * differences a_j - b_j), pick nq in order, each maximising the Fisher
 * information s (1 - s) v' C v of its features v = B (a - b) under the
 * covariance C updated after every pick (Sherman-Morrison). order receives
 * the indexes, info the information of each pick when it was made.
 * PRM_BAD_INPUT: nq out of range, or a candidate whose features are not
 * finite (a NaN or Infinity in the candidates reaches them).
 */
size_t		PrmQuestionsWorkspaceSize(int count, int k);
PrmStatus	PrmNextQuestions(int count, int d, int k, const double *cand_a,
							 const double *cand_b, const double *base,
							 const double *coef, const double *cov, int nq,
							 int *order, double *info, void *work);

#endif							/* PRM_FACTOR_H */
