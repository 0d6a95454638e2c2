/*
 * fuzz_input.h
 *	  Reading a fuzzer's bytes as the numbers of a problem.
 *
 * Every read succeeds: past the end of the input the reader returns zeros,
 * so any byte string is a valid problem. Numbers come either "tame" (small
 * integers scaled into a modest range, the shape of real data) or "raw"
 * (eight bytes taken as a double: NaN, Infinity, huge and subnormal values
 * included), chosen per problem by a flag byte.
 */
#ifndef FUZZ_INPUT_H
#define FUZZ_INPUT_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct FuzzInput
{
	const uint8_t *p;
	size_t		left;
	int			raw;			/* doubles are taken raw */
} FuzzInput;

/* Next byte, or 0 past the end */
static inline uint8_t
FuzzByte(FuzzInput *in)
{
	if (in->left == 0)
		return 0;
	in->left--;
	return *in->p++;
}

/* Next 16 bits, little-endian */
static inline uint16_t
FuzzU16(FuzzInput *in)
{
	uint16_t	lo = FuzzByte(in);

	return (uint16_t) (lo | (uint16_t) FuzzByte(in) << 8);
}

/* Next 64 bits */
static inline uint64_t
FuzzU64(FuzzInput *in)
{
	uint64_t	v = 0;

	for (int i = 0; i < 8; i++)
		v |= (uint64_t) FuzzByte(in) << (8 * i);
	return v;
}

/* An integer in [0, n) */
static inline int
FuzzBelow(FuzzInput *in, int n)
{
	return n > 256 ? (int) (FuzzU16(in) % n) : (int) (FuzzByte(in) % n);
}

/* A value: raw bits, or a tame number in [-8, 8) with 1/4096 steps */
static inline double
FuzzValue(FuzzInput *in)
{
	if (in->raw)
	{
		uint64_t	bits = FuzzU64(in);
		double		v;

		memcpy(&v, &bits, sizeof(v));
		return v;
	}
	return (int16_t) FuzzU16(in) / 4096.0;
}

/* A value meant to be >= 0: raw bits, or a tame number in [0, 16) */
static inline double
FuzzNonNegative(FuzzInput *in)
{
	if (in->raw)
		return FuzzValue(in);
	return FuzzU16(in) / 4096.0;
}

/* One of a few penalty strengths, including the invalid ones */
static inline double
FuzzPenalty(FuzzInput *in)
{
	static const double choices[] = {1.0, 0.0, 1e-6, 0.01, 100.0, 1e6,
	-1.0, NAN, INFINITY};

	return choices[FuzzByte(in) % (sizeof(choices) / sizeof(choices[0]))];
}

/* Whether every one of n values is finite */
static inline int
AllFinite(const double *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isfinite(v[i]))
			return 0;
	return 1;
}

/* Stop the fuzzer with a message: libFuzzer reports the input */
#define FUZZ_ASSERT(cond, msg) \
	do { \
		if (!(cond)) \
		{ \
			fprintf(stderr, "fuzz check failed: %s (%s:%d)\n", msg, \
					__FILE__, __LINE__); \
			abort(); \
		} \
	} while (0)

#endif							/* FUZZ_INPUT_H */
