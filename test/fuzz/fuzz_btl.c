/*
 * fuzz_btl.c
 *	  libFuzzer target: the linear BTL solver on small arbitrary problems.
 *
 * Input layout: n - 1, d - 1, method, flags (bit 0: weights, bit 1: raw
 * doubles, bit 2: warm start), l2 choice, max_iter, then the n x d
 * difference vectors, the n weights and the d starting values. Checks that
 * the solver returns a known status without touching memory outside its
 * workspace, and that a PRM_OK result is finite and meets the gradient
 * test.
 */
#include <stdio.h>
#include <stdlib.h>

#include "prm_btl.h"
#include "fuzz_input.h"

#define MAX_ROWS 64
#define MAX_DIM 8

/* Run one problem */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FuzzInput	in = {data, size, 0};
	PrmBtlProblem prob;
	PrmBtlOptions opt;
	PrmBtlResult res;
	double		z[MAX_ROWS * MAX_DIM];
	double		weight[MAX_ROWS];
	double		w[MAX_DIM];
	int			flags;
	size_t		bytes;
	void	   *work;
	PrmStatus	st;
	int			valid = 1;

	prob.n = 1 + FuzzBelow(&in, MAX_ROWS);
	prob.d = 1 + FuzzBelow(&in, MAX_DIM);
	opt.method = (PrmBtlMethod) FuzzBelow(&in, 3);
	flags = FuzzByte(&in);
	in.raw = (flags & 2) != 0;
	prob.l2 = FuzzPenalty(&in);
	opt.tol = 0;				/* the default, 1e-9 */
	opt.max_iter = 1 + FuzzBelow(&in, 100);

	for (int i = 0; i < prob.n * prob.d; i++)
	{
		z[i] = FuzzValue(&in);
		valid &= isfinite(z[i]);
	}
	for (int i = 0; i < prob.n; i++)
	{
		weight[i] = FuzzNonNegative(&in);
		valid &= weight[i] >= 0 && isfinite(weight[i]);
	}
	for (int j = 0; j < prob.d; j++)
		w[j] = (flags & 4) ? FuzzValue(&in) : 0.0;
	prob.z = z;
	prob.weight = (flags & 1) ? weight : NULL;
	if (!(flags & 1))
		valid = AllFinite(z, (size_t) prob.n * prob.d);

	/* an exact-size workspace, so ASan sees any write past it */
	bytes = PrmBtlWorkspaceSize(&prob, opt.method);
	work = malloc(bytes > 0 ? bytes : 1);
	FUZZ_ASSERT(work != NULL, "workspace allocation");
	st = PrmBtlSolve(&prob, &opt, w, work, &res);
	free(work);

	FUZZ_ASSERT(st >= PRM_OK && st <= PRM_BAD_INPUT, "unknown status");
	FUZZ_ASSERT(res.status == st, "status and result disagree");
	if (!(prob.l2 >= 0) || !isfinite(prob.l2))
		FUZZ_ASSERT(st == PRM_BAD_INPUT, "a bad l2 was accepted");
	if (st == PRM_OK)
	{
		FUZZ_ASSERT(AllFinite(w, prob.d), "PRM_OK with non-finite weights");
		FUZZ_ASSERT(isfinite(res.objective) && isfinite(res.loglik) &&
					isfinite(res.grad_norm), "PRM_OK with non-finite facts");
		FUZZ_ASSERT(res.converged, "PRM_OK but not converged");
		if (valid)
			FUZZ_ASSERT(res.grad_norm <= 1e-9 * fmax(1.0, res.grad_norm0),
						"PRM_OK without meeting the gradient test");
	}
	return 0;
}
