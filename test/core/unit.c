/*
 * unit.c
 *	  Runs every group of core unit tests and prints a TAP summary.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include "unit.h"

static int	checks = 0;
static int	failures = 0;

/* Record one check */
void
UnitCheck(int ok, const char *fmt,...)
{
	va_list		ap;

	checks++;
	if (!ok)
		failures++;
	printf("%s %d - ", ok ? "ok" : "not ok", checks);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

/* xorshift64* uniform draw in (0, 1) */
double
UnitUniform(uint64_t *seed)
{
	uint64_t	x = *seed;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*seed = x;
	return ((x * 2685821657736338717ULL) >> 11) * (1.0 / 9007199254740992.0)
		+ 1e-17;
}

/* Box-Muller standard normal draw */
double
UnitNormal(uint64_t *seed)
{
	double		u = UnitUniform(seed);
	double		v = UnitUniform(seed);

	return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

/* Largest relative difference of two vectors */
double
UnitRelDiff(const double *a, const double *b, int n)
{
	double		worst = 0.0;

	for (int i = 0; i < n; i++)
	{
		double		scale = fabs(b[i]) > 1.0 ? fabs(b[i]) : 1.0;
		double		diff = fabs(a[i] - b[i]) / scale;

		if (diff > worst || isnan(diff))
			worst = isnan(diff) ? INFINITY : diff;
	}
	return worst;
}

int
main(void)
{
	TestBtl();
	TestItems();
	TestItemClasses();
	TestMixture();
	TestFactor();
	TestConsistency();
	printf("1..%d\n", checks);
	printf("%d passed, %d failed\n", checks - failures, failures);
	return failures ? 1 : 0;
}
