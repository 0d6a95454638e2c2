/*
 * prm_core.c
 *	  Small numerical helpers shared by the solvers.
 */
#include "prm_core.h"

#include <math.h>
#include <string.h>

#include <cblas.h>

void		(*prm_interrupt_hook) (void) = NULL;

/* Numerically stable log(1 + exp(x)) */
double
PrmSoftplus(double x)
{
	if (x > 0)
		return x + log1p(exp(-x));
	return log1p(exp(x));
}

/* Numerically stable logistic function */
double
PrmSigmoid(double x)
{
	if (x >= 0)
		return 1.0 / (1.0 + exp(-x));
	else
	{
		double		e = exp(x);

		return e / (1.0 + e);
	}
}

/* Euclidean norm of a vector */
double
PrmNorm2(const double *x, int n)
{
	return cblas_dnrm2(n, x, 1);
}

/*
 * Rows in a curvature sample for dimension d. The sample's Hessian must be
 * close to the full one for fast convergence, which takes many rows per
 * dimension; a sample is only taken from more than four times as many rows,
 * which also bounds the memory of its copy by a quarter of the data.
 */
int64_t
PrmCurvatureSampleRows(int d)
{
	int64_t		rows = (int64_t) 64 * d;

	return rows > 65536 ? rows : 65536;
}

/*
 * Hash of a row's values in [0, 1).
 *
 * Curvature samples pick rows by this hash of a few of their values, so a
 * sample is the same whatever order the rows arrived in (parallel plans
 * deliver them in any order). Weights are left out, so refits with new
 * weights (the M-steps of a mixture) keep the same sample.
 */
double
PrmRowHash(const double *row, int d)
{
	double		picks[3] = {row[0], row[d / 2], row[d - 1]};
	uint64_t	h = 0x9e3779b97f4a7c15ULL;

	for (int k = 0; k < 3; k++)
	{
		uint64_t	bits;

		memcpy(&bits, &picks[k], sizeof(bits));
		h ^= bits + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
		h ^= h >> 31;
		h *= 0xbf58476d1ce4e5b9ULL;
		h ^= h >> 29;
	}
	return (double) (h >> 11) * (1.0 / 9007199254740992.0);
}

/*
 * Rows of the curvature sample of n rows of z (n x d): all of them when
 * there are at most four times PrmCurvatureSampleRows(d), else those whose
 * hash falls below the sample's share. Copies the rows, their weights and
 * their users into zs, ws and us where those are not NULL, and returns how
 * many there are (all n, without copying, when the sample is every row),
 * at most cap.
 */
int64_t
PrmCurvatureSample(const double *z, int64_t n, int d, const double *weight,
				   const int32_t *user, double *zs, double *ws, int32_t *us,
				   int64_t cap)
{
	int64_t		target = PrmCurvatureSampleRows(d);
	double		share = (double) target / (double) n;
	int64_t		count = 0;

	if (n <= 4 * target)
		return n;
	for (int64_t i = 0; i < n; i++)
	{
		if ((i & 65535) == 0)
			PrmCheckInterrupts();
		if (PrmRowHash(z + i * d, d) >= share)
			continue;
		if (count == cap)
			break;				/* the caller's room is full */
		if (zs)
			memcpy(zs + count * d, z + i * d, sizeof(double) * d);
		if (ws)
			ws[count] = weight ? weight[i] : 1.0;
		if (us)
			us[count] = user[i];
		count++;
	}
	/* a degenerate hash would leave nothing: then use every row */
	return count > 0 ? count : n;
}

/*
 * Factor a symmetric d x d matrix (upper triangle, column-major) in place.
 *
 * When the matrix is singular or not quite positive definite, retry with a
 * growing multiple of the largest diagonal entry added to the diagonal, so a
 * Newton step becomes a damped one instead of a failure. orig holds the
 * unfactored matrix (a is overwritten on failure). Returns 0 on success.
 */
int
PrmCholeskyRidge(double *a, const double *orig, int d, double *ridge_out)
{
	double		maxdiag = 0.0;
	double		ridge = 0.0;
	int			info;
	int			attempt;

	for (int j = 0; j < d; j++)
		if (orig[(size_t) j * d + j] > maxdiag)
			maxdiag = orig[(size_t) j * d + j];
	if (!(maxdiag > 0.0) || !isfinite(maxdiag))
		maxdiag = 1.0;

	for (attempt = 0; attempt < 12; attempt++)
	{
		memcpy(a, orig, sizeof(double) * (size_t) d * d);
		for (int j = 0; j < d; j++)
			a[(size_t) j * d + j] += ridge;
		dpotrf_("U", &d, a, &d, &info);
		if (info == 0)
		{
			if (ridge_out)
				*ridge_out = ridge;
			return 0;
		}
		ridge = (ridge == 0.0) ? maxdiag * 1e-12 : ridge * 100.0;
	}
	return -1;
}
