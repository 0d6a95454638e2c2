/*
 * prm_mixture.h
 *	  Mixtures of linear BTL models with a latent class per user, fitted by
 *	  EM.
 *
 * User u belongs to component c with prior probability mixing[c]; all of
 * u's comparisons then follow the BTL model with base reward w_c. The
 * solver maximises the penalized log-likelihood
 *
 *	   sum_u log sum_c mixing[c] prod_{i in u} sigmoid(w_c . z_i)^a_i
 *		 - (l2 / 2) sum_c ||w_c||^2
 *
 * by EM. The E-step gives each user's responsibilities (the posterior over
 * components given all of that user's comparisons); the M-step improves
 * each w_c by weighted penalized BTL steps of the core solver and sets the
 * mixing weights to the mean responsibilities. Each M-step only lowers each
 * component's weighted objective, so the penalized log-likelihood never
 * decreases (generalized EM).
 *
 * Starts come from spherical k-means++ on the users' mean difference
 * vectors, from several seeds. With many users the restarts run on a
 * seeded sample of users and only the best start is refined on all of them.
 */
#ifndef PRM_MIXTURE_H
#define PRM_MIXTURE_H

#include "prm_core.h"

typedef struct PrmMixtureProblem
{
	int64_t		n;				/* comparisons */
	int			d;
	const double *z;			/* n x d difference vectors, row-major */
	const double *weight;		/* n weights, or NULL when all are 1 */
	const int32_t *user;		/* n user indexes in [0, users) */
	int32_t		users;
	int			k;				/* components */
	double		l2;
} PrmMixtureProblem;

typedef struct PrmMixtureOptions
{
	int			restarts;		/* starts tried; at least 1 */
	uint64_t	seed;
	double		tol;			/* relative change of the objective */
	int			max_iter;		/* EM iterations of one run */
	int			restart_users;	/* users in the restart sample */
	double	   *trace;			/* if not NULL, objective per iteration of
								 * the final run and after its polish
								 * (room for max_iter + 2 values) */
	const double *start_base;	/* a warm start: k x d base rewards, or
								 * NULL */
	const double *start_mixing; /* its k mixing weights (with start_base) */
} PrmMixtureOptions;

typedef struct PrmMixtureResult
{
	PrmStatus	status;
	double		loglik;			/* unpenalized log-likelihood */
	double		objective;		/* penalized log-likelihood, maximised */
	double		bic;			/* -2 loglik + params log(users) */
	int			iterations;		/* EM iterations of the final run */
	int			converged;
	int			restarts;
	int			restarts_at_best;	/* restarts ending at the best optimum */
	int			sampled_users;	/* users the restarts ran on */
	int			warm_start_won; /* the warm start was the best start */
	int			trace_len;
} PrmMixtureResult;

#define PRM_MIXTURE_DEFAULT_RESTARTS 10
#define PRM_MIXTURE_DEFAULT_TOL 1e-9
#define PRM_MIXTURE_DEFAULT_MAX_ITER 500
#define PRM_MIXTURE_DEFAULT_RESTART_USERS 2000

/* Bytes of workspace PrmMixtureFit needs */
size_t		PrmMixtureWorkspaceSize(const PrmMixtureProblem *prob,
									const PrmMixtureOptions *opt);

/*
 * Fit the mixture. base receives the k x d base rewards (row-major),
 * mixing the k mixing weights and resp the users x k responsibilities.
 * Components are ordered by decreasing mixing weight; with a warm start,
 * in the order of the start's components they lie closest to (so labels
 * stay put from one refit to the next). The warm start joins the restarts
 * as one more start on the restart sample, preferred on ties.
 */
PrmStatus	PrmMixtureFit(const PrmMixtureProblem *prob,
						  const PrmMixtureOptions *opt, double *base,
						  double *mixing, double *resp, void *work,
						  PrmMixtureResult *res);

/* Number of free parameters of a k-component mixture in d dimensions */
int64_t		PrmMixtureParameters(int k, int d);

#endif							/* PRM_MIXTURE_H */
