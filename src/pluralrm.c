/*
 * pluralrm.c
 *	  Module entry point: settings, the interrupt hook of the numerical core
 *	  and the BLAS thread count.
 */
#include "postgres.h"

#include <limits.h>

#include <float.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "pluralrm.h"
#include "prm_btl.h"

PG_MODULE_MAGIC;

extern void openblas_set_num_threads(int num_threads);

char	   *prm_model_setting = NULL;
double		prm_tolerance = PRM_BTL_DEFAULT_TOL;
int			prm_max_iterations = PRM_BTL_DEFAULT_MAX_ITER;
int			prm_solver = PRM_METHOD_AUTO;
int			prm_blas_threads = 1;
double		prm_consensus_blend = 0.0;
int			prm_max_fit_memory = 0;
int			prm_keep_versions = 5;
char	   *prm_warm_start = NULL;

static const struct config_enum_entry solver_options[] = {
	{"auto", PRM_METHOD_AUTO, false},
	{"newton", PRM_METHOD_NEWTON, false},
	{"newton_cg", PRM_METHOD_NEWTON_CG, false},
	{NULL, 0, false}
};

void		_PG_init(void);

/* Milliseconds between two CLOCK_MONOTONIC readings */
double
PrmElapsedMs(const struct timespec *a, const struct timespec *b)
{
	return (b->tv_sec - a->tv_sec) * 1000.0 +
		(b->tv_nsec - a->tv_nsec) / 1e6;
}

/* Bytes held by the memory context that holds ptr, children included */
Size
PrmHeldBytes(void *ptr)
{
	return MemoryContextMemAllocated(GetMemoryChunkContext(ptr), true);
}

/* Refuse an allocation that would take a fit over pluralrm.max_fit_memory */
void
PrmFitMemoryCheck(Size held, Size extra, const char *what)
{
	Size		limit = (Size) prm_max_fit_memory * 1024;

	if (prm_max_fit_memory <= 0 || add_size(held, extra) <= limit)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
			 errmsg("%s needs more than pluralrm.max_fit_memory (%d kB)",
					what, prm_max_fit_memory),
			 errdetail("It holds %zu kB and needs %zu kB more.",
					   held / 1024, (extra + 1023) / 1024),
			 errhint("Raise pluralrm.max_fit_memory, fit fewer rows (WHERE "
					 "or GROUP BY), or use the multi-pass functions, whose "
					 "memory does not grow with the rows.")));
}

/* Let the core's long loops honour cancel requests and timeouts */
static void
PrmInterruptHook(void)
{
	CHECK_FOR_INTERRUPTS();
}

/* Apply a new BLAS thread count */
static void
AssignBlasThreads(int newval, void *extra)
{
	openblas_set_num_threads(newval);
}

/* Register settings and hooks when the library is loaded */
void
_PG_init(void)
{
	prm_interrupt_hook = PrmInterruptHook;

	DefineCustomStringVariable("pluralrm.model",
							   "Model that reward_score uses when none is named.",
							   NULL, &prm_model_setting, NULL,
							   PGC_USERSET, 0, NULL, NULL, NULL);

	DefineCustomRealVariable("pluralrm.tolerance",
							 "Relative gradient norm at which a fit stops.",
							 "A fit stops when the gradient norm is at most "
							 "this times the norm of the gradient at zero.",
							 &prm_tolerance, PRM_BTL_DEFAULT_TOL, 1e-15, 1e-1,
							 PGC_USERSET, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("pluralrm.max_iterations",
							"Most Newton iterations in one fit.",
							NULL, &prm_max_iterations,
							PRM_BTL_DEFAULT_MAX_ITER, 1, 100000,
							PGC_USERSET, 0, NULL, NULL, NULL);

	DefineCustomEnumVariable("pluralrm.solver",
							 "Solver for BTL fits: auto, newton or newton_cg.",
							 NULL, &prm_solver, PRM_METHOD_AUTO,
							 solver_options, PGC_USERSET, 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("pluralrm.blas_threads",
							"Threads OpenBLAS may use in one backend.",
							NULL, &prm_blas_threads, 1, 1, 64,
							PGC_USERSET, 0, NULL, AssignBlasThreads, NULL);

	DefineCustomRealVariable("pluralrm.consensus_blend",
							 "Weight of the population reward in reward_score.",
							 "reward_score serves (1 - blend) times the user's "
							 "reward plus blend times the population's.",
							 &prm_consensus_blend, 0.0, 0.0, 1.0,
							 PGC_USERSET, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("pluralrm.max_fit_memory",
							"Most memory one fit may hold in a backend.",
							"Counts the rows a fitting aggregate collects and "
							"its solver's workspace, per backend (each "
							"parallel worker has its own). 0 means no limit.",
							&prm_max_fit_memory, 0, 0, INT_MAX,
							PGC_USERSET, GUC_UNIT_KB, NULL, NULL, NULL);

	DefineCustomIntVariable("pluralrm.keep_versions",
							"Versions of a model that a refit keeps.",
							"After a refit, versions beyond the newest this "
							"many are deleted (never the current one); a "
							"recipe's own keep_versions overrides it.",
							&prm_keep_versions, 5, 1, INT_MAX,
							PGC_USERSET, 0, NULL, NULL, NULL);

	DefineCustomStringVariable("pluralrm.warm_start",
							   "Model whose current version starts the fits.",
							   "btl_fit starts from its population reward; "
							   "mixture_fit and factor_fit from its base "
							   "rewards when kind, k and d match. refit sets "
							   "it to the model it refits. Empty: cold starts.",
							   &prm_warm_start, "", PGC_USERSET, 0,
							   NULL, NULL, NULL);

	MarkGUCPrefixReserved("pluralrm");

	openblas_set_num_threads(prm_blas_threads);
}
