/*
 * prm_core.h
 *	  Shared definitions of the numerical core: status codes, the interrupt
 *	  hook and the LAPACK routines the core calls.
 *
 * The core is plain C99 over OpenBLAS/LAPACK and knows nothing of
 * PostgreSQL: it never allocates (callers pass workspaces) and never
 * reports errors itself (it returns a status the caller turns into one).
 */
#ifndef PRM_CORE_H
#define PRM_CORE_H

#include <stddef.h>
#include <stdint.h>

/* Status codes returned by the solvers */
typedef enum PrmStatus
{
	PRM_OK = 0,
	PRM_NOT_CONVERGED,			/* iteration limit reached */
	PRM_SEPARABLE,				/* unpenalized MLE does not exist */
	PRM_NO_INFORMATION,			/* every difference vector is zero */
	PRM_NOT_POSITIVE_DEFINITE,	/* a matrix that must be PD is not */
	PRM_BAD_INPUT				/* non-finite or out-of-range argument */
} PrmStatus;

/*
 * Called by long loops every few thousand rows. The PostgreSQL layer points
 * it at a function that runs CHECK_FOR_INTERRUPTS(), which may longjmp out:
 * core code therefore holds no resources of its own across a call.
 */
extern void (*prm_interrupt_hook) (void);

static inline void
PrmCheckInterrupts(void)
{
	if (prm_interrupt_hook)
		prm_interrupt_hook();
}

/* Fortran LAPACK routines from libopenblas (Debian ships no LAPACKE) */
extern void dpotrf_(const char *uplo, const int *n, double *a,
					const int *lda, int *info);
extern void dpotrs_(const char *uplo, const int *n, const int *nrhs,
					const double *a, const int *lda, double *b,
					const int *ldb, int *info);
extern void dpotri_(const char *uplo, const int *n, double *a,
					const int *lda, int *info);

/* Numerically stable log(1 + exp(x)) */
double		PrmSoftplus(double x);

/* Numerically stable logistic function 1 / (1 + exp(-x)) */
double		PrmSigmoid(double x);

/* Euclidean norm of a vector */
double		PrmNorm2(const double *x, int n);

/* Rows in a curvature sample for dimension d; see prm_btl.c */
int64_t		PrmCurvatureSampleRows(int d);

/* Rows of the curvature sample of z, copied where outputs are given */
int64_t		PrmCurvatureSample(const double *z, int64_t n, int d,
							   const double *weight, const int32_t *user,
							   double *zs, double *ws, int32_t *us,
							   int64_t cap);

/* Hash of a row's values in [0, 1): its identity, not its position */
double		PrmRowHash(const double *row, int d);

/* Cholesky factor of a d x d matrix in place, adding ridge if needed */
int			PrmCholeskyRidge(double *a, const double *orig, int d,
							 double *ridge_out);

#endif							/* PRM_CORE_H */
