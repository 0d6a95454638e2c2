/*
 * unit.h
 *	  A small TAP-style harness for the core's unit tests.
 */
#ifndef UNIT_H
#define UNIT_H

#include <stdint.h>

/* Record one check; prints "ok N - name" or "not ok N - name" */
void		UnitCheck(int ok, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));

/* Deterministic uniform (0, 1) and standard normal draws */
double		UnitUniform(uint64_t *seed);
double		UnitNormal(uint64_t *seed);

/* Largest |a_i - b_i| / max(1, |b_i|) */
double		UnitRelDiff(const double *a, const double *b, int n);

/* Test groups, one per core module */
void		TestBtl(void);
void		TestItems(void);
void		TestItemClasses(void);
void		TestMixture(void);
void		TestFactor(void);
void		TestConsistency(void);

#endif
