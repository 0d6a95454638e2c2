/*
 * prm_random.h
 *	  A small seeded random number generator for the numerical core.
 *
 * The generator is xoshiro256** (Blackman and Vigna), seeded through
 * splitmix64. A seed and a stream number select an independent sequence,
 * so code can give every item (a pair, a user) its own stream and produce
 * the same values whatever order the items are visited in. The integer
 * sequence is the same on every platform; the floating-point draws are
 * computed from it with IEEE arithmetic and the C library's log and sqrt.
 */
#ifndef PRM_RANDOM_H
#define PRM_RANDOM_H

#include <stdint.h>

typedef struct PrmRandom
{
	uint64_t	s[4];			/* xoshiro256** state, never all zero */
	int			has_spare;		/* a second normal draw is waiting */
	double		spare;
} PrmRandom;

/* Mix 64 bits into 64 well-spread bits (the splitmix64 finalizer) */
uint64_t	PrmHash64(uint64_t x);

/* Start the sequence selected by a seed and a stream number */
void		PrmRandomSeed(PrmRandom *r, uint64_t seed, uint64_t stream);

/* Next 64 random bits */
uint64_t	PrmRandomNext(PrmRandom *r);

/* Uniform draw in [0, 1) with 53 random bits */
double		PrmRandomUniform(PrmRandom *r);

/* Standard normal draw (Marsaglia's polar method) */
double		PrmRandomNormal(PrmRandom *r);

/*
 * Image of x under a bijection of [0, n) chosen by key: a seeded
 * permutation that needs no memory. x must be below n.
 */
uint64_t	PrmPermute(uint64_t x, uint64_t n, uint64_t key);

#endif							/* PRM_RANDOM_H */
