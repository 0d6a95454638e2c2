/*
 * pluralrm.h
 *	  Declarations shared by the PostgreSQL layer of pluralrm: settings,
 *	  embedding input checks and stored-model loading.
 */
#ifndef PLURALRM_H
#define PLURALRM_H

#include "postgres.h"

#include <time.h>

#include "fmgr.h"
#include "utils/array.h"

/* Largest embedding dimension accepted */
#define PRM_MAX_DIM 16000

/* Settings (GUCs), defined in pluralrm.c */
extern char *prm_model_setting;
extern double prm_tolerance;
extern int	prm_max_iterations;
extern int	prm_solver;
extern int	prm_blas_threads;
extern double prm_consensus_blend;
extern int	prm_max_fit_memory;
extern int	prm_keep_versions;
extern char *prm_warm_start;

/*
 * Raise an error if a fit that holds held bytes and is about to allocate
 * extra more would exceed pluralrm.max_fit_memory (0 = no limit).
 */
void		PrmFitMemoryCheck(Size held, Size extra, const char *what);

/* Bytes held by the memory context that holds ptr, children included */
Size		PrmHeldBytes(void *ptr);

/* Check an embedding array and return its dimension */
int			PrmEmbeddingDim(ArrayType *a, const char *what);

/* Copy a checked float8[] or real[] embedding into out as doubles */
void		PrmEmbeddingRead(ArrayType *a, int d, double *out,
							 const char *what);

/* w . x for a checked float8[] or real[] embedding x of dimension d */
double		PrmEmbeddingDot(ArrayType *x, const double *w, int d);

/* A float8[] of values: 1-D with rows values when cols is 0, else 2-D */
Datum		PrmFloatArray(const double *values, int rows, int cols);

/* Milliseconds between two CLOCK_MONOTONIC readings */
double		PrmElapsedMs(const struct timespec *a, const struct timespec *b);

/* Raise the standard error for an embedding of the wrong dimension */
void		PrmDimensionMismatch(int expected, int got) pg_attribute_noreturn();

struct PrmUsers;

/* Users whose effective weight vectors are cached while scoring */
#define PRM_USER_CACHE 4096

/* A stored model loaded into memory for scoring and evaluation */
typedef struct PrmModel
{
	char	   *name;
	char	   *kind;
	int			k;
	int			d;
	double	   *base;			/* k x d base rewards, row-major */
	double	   *population;		/* k coefficients for users not seen */
	double	   *effective;		/* d weights: population . base */
	struct PrmUsers *users;		/* users with coefficients, or NULL */
	double	   *coef;			/* users x k coefficients */
	Oid			user_type;		/* type of the user id argument */
	FmgrInfo	user_out;		/* its output function */
	int32	   *cache_user;		/* PRM_USER_CACHE cached user indexes */
	double	   *cache_w;		/* PRM_USER_CACHE x d their weights */
	int64		model_id;		/* the version loaded */
	double	   *prior_cov;		/* factor models: k x k prior covariance */
	double		prior_strength;
	int		   *locked;			/* factor models: k flags */
} PrmModel;

/* Load the current version of a named model, optionally with its users */
PrmModel   *PrmModelLoad(const char *name, MemoryContext mcxt,
						 bool with_users);

/* The model pluralrm.warm_start names, if it fits; see model.c */
PrmModel   *PrmWarmStart(const char *fit, const char *kind, int k, int d);

/* Read a user's stored coefficients and covariance; false if absent */
bool		PrmModelStoredUser(PrmModel *model, const char *user_id,
							   double *coef, double *cov);

/* Name of the model to use when none is given, from pluralrm.model */
const char *PrmDefaultModelName(void);

/* Weight vector serving a user: cached per query in fn_extra */
const double *PrmModelUserWeights(PrmModel *model, FunctionCallInfo fcinfo,
								  int user_argno);

#endif							/* PLURALRM_H */
