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

#include <math.h>
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

/*
 * Sums of a * log sigmoid(m) over many rows, kept as *sum + log(*prod) with
 * *prod starting at 1 and *sum at 0: a row of weight 1 costs a
 * multiplication instead of a logarithm, and the logarithm is taken when the
 * product nears underflow and once at the end (PrmLogSigmoidTotal). The
 * caller passes e = exp(-|m|) and q = 1 / (1 + e), which it needs anyway
 * for the gradient; log sigmoid(m) is log q, plus m when m < 0.
 *
 * A factor close to 1 has lost the digits of log sigmoid(m) that matter, so
 * margins with e below LOGSIG_SERIES_BELOW take the series of -log1p(e)
 * (its first omitted term is below 1e-19 of the value). Weighted rows and
 * factors too small to multiply take the logarithm of q: q is at least 1/2,
 * and with the series taking the margins where q is within 2^-12 of 1, log
 * q keeps all but about 12 bits; log1p would cost twice as much.
 */
#define LOGSIG_SERIES_BELOW 2.44140625e-4	/* 2^-12 */
#define LOGSIG_TINY_FACTOR 1e-100
#define LOGSIG_RENORMALIZE 1e-200

static inline void
PrmAddLogSigmoid(double *prod, double *sum, double m, double e, double q,
				 double a)
{
	if (m >= 0 && e < LOGSIG_SERIES_BELOW)
	{
		*sum -= a * e * (1.0 - e * (1.0 / 2 - e * (1.0 / 3 -
												   e * (1.0 / 4 - e / 5))));
		return;
	}
	if (a == 1.0)
	{
		double		s = m >= 0 ? q : e * q;

		if (s >= LOGSIG_TINY_FACTOR)
		{
			*prod *= s;
			if (*prod < LOGSIG_RENORMALIZE)
			{
				*sum += log(*prod);
				*prod = 1.0;
			}
			return;
		}
	}
	*sum += a * ((m < 0 ? m : 0.0) + log(q));
}

/* The total of a sum kept by PrmAddLogSigmoid */
static inline double
PrmLogSigmoidTotal(double prod, double sum)
{
	return sum + log(prod);
}

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
