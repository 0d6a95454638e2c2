/*
 * prm_random.c
 *	  xoshiro256** seeded through splitmix64, normal draws and a keyed
 *	  permutation.
 */
#include "prm_random.h"

#include <math.h>

/* Rounds of the keyed permutation; four mix every bit into every other */
#define PERMUTE_ROUNDS 4

/* Mix 64 bits (the splitmix64 finalizer) */
uint64_t
PrmHash64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* Start the sequence of (seed, stream) */
void
PrmRandomSeed(PrmRandom *r, uint64_t seed, uint64_t stream)
{
	uint64_t	z = PrmHash64(seed)
		^ PrmHash64(stream ^ 0x6a09e667f3bcc909ULL);

	/* successive splitmix64 outputs fill the state */
	for (int i = 0; i < 4; i++)
	{
		z += 0x9e3779b97f4a7c15ULL;
		r->s[i] = PrmHash64(z);
	}
	if ((r->s[0] | r->s[1] | r->s[2] | r->s[3]) == 0)
		r->s[0] = 1;
	r->has_spare = 0;
	r->spare = 0.0;
}

/* Rotate left */
static inline uint64_t
Rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* Next 64 bits of xoshiro256** */
uint64_t
PrmRandomNext(PrmRandom *r)
{
	uint64_t   *s = r->s;
	uint64_t	result = Rotl(s[1] * 5, 7) * 9;
	uint64_t	t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = Rotl(s[3], 45);
	return result;
}

/* Uniform in [0, 1): the top 53 bits scaled by 2^-53 */
double
PrmRandomUniform(PrmRandom *r)
{
	return (double) (PrmRandomNext(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* Standard normal draw; the polar method yields two, the second is kept */
double
PrmRandomNormal(PrmRandom *r)
{
	double		u,
				v,
				s,
				f;

	if (r->has_spare)
	{
		r->has_spare = 0;
		return r->spare;
	}
	do
	{
		u = 2.0 * PrmRandomUniform(r) - 1.0;
		v = 2.0 * PrmRandomUniform(r) - 1.0;
		s = u * u + v * v;
	} while (s >= 1.0 || s == 0.0);
	f = sqrt(-2.0 * log(s) / s);
	r->spare = v * f;
	r->has_spare = 1;
	return u * f;
}

/*
 * Keyed bijection of [0, n). Each round is a bijection of the integers
 * modulo 2^bits (multiplication by an odd number, a right xorshift, adding
 * a constant), with 2^bits the smallest power of two >= n; values that land
 * at or above n are mapped again until they fall inside ("cycle walking"),
 * which keeps the map a bijection of [0, n). Fewer than two walks are
 * needed on average.
 */
uint64_t
PrmPermute(uint64_t x, uint64_t n, uint64_t key)
{
	int			bits = 1;
	uint64_t	mask;
	int			shift;

	if (n <= 1)
		return 0;
	while (bits < 64 && (((uint64_t) 1) << bits) < n)
		bits++;
	mask = bits == 64 ? ~(uint64_t) 0 : (((uint64_t) 1) << bits) - 1;
	shift = bits / 2 + 1;

	do
	{
		for (int round = 0; round < PERMUTE_ROUNDS; round++)
		{
			uint64_t	k = PrmHash64(key + (uint64_t) round);

			x = (x * (k | 1)) & mask;
			x ^= x >> shift;
			x = (x + (k >> 32)) & mask;
			x ^= x >> shift;
		}
	} while (x >= n);
	return x;
}
