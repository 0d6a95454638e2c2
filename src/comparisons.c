/*
 * comparisons.c
 *	  Collecting comparisons in the fit aggregates, merging and serializing
 *	  partial states, and the users' keys.
 *
 * User ids of any type are kept by their text form, which is what the
 * per-user tables store and what joins back to a users table through a
 * cast. Users are numbered in order of arrival and renumbered in key order
 * before a fit, so a fit does not depend on the order rows arrived in.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "libpq/pqformat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "comparisons.h"
#include "pluralrm.h"

#define INITIAL_ROWS 1024
#define INITIAL_USERS 256

/* Return the aggregate memory context or fail when not called as one */
MemoryContext
PrmAggContext(FunctionCallInfo fcinfo, const char *fname)
{
	MemoryContext aggcontext;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		elog(ERROR, "%s called in non-aggregate context", fname);
	return aggcontext;
}

/* Create an empty state in the aggregate context */
PrmRows *
PrmRowsCreate(MemoryContext aggcontext, bool per_user, double default_l2)
{
	PrmRows    *rows = MemoryContextAllocZero(aggcontext, sizeof(PrmRows));

	rows->l2 = default_l2;
	if (per_user)
		rows->users = MemoryContextAllocZero(aggcontext, sizeof(PrmUsers));
	return rows;
}

/* Bytes of the row arrays of a state with room for cap rows */
static Size
RowBytes(const PrmRows *rows, int64 cap)
{
	Size		per_row = mul_size((Size) rows->d, sizeof(double)) +
		sizeof(double) + (rows->users ? sizeof(int32) : 0);

	return mul_size((Size) cap, per_row);
}

/* Make room for at least need rows; CurrentMemoryContext is aggcontext */
static void
RowsReserve(PrmRows *rows, int64 need)
{
	int64		cap;
	Size		zbytes;

	if (need <= rows->cap)
		return;
	cap = Max(rows->cap * 2, Max(need, INITIAL_ROWS));
	if (prm_max_fit_memory > 0)
	{
		/* grow no further than the limit allows; fail if need does not fit */
		Size		held = MemoryContextMemAllocated(CurrentMemoryContext,
													 true);
		Size		arrays = RowBytes(rows, rows->cap);
		Size		other = held > arrays ? held - arrays : 0;
		Size		limit = (Size) prm_max_fit_memory * 1024;
		int64		most = limit > other ?
			(int64) ((limit - other) / RowBytes(rows, 1)) : 0;

		PrmFitMemoryCheck(other, RowBytes(rows, need),
						  "collecting comparisons");
		cap = Min(cap, Max(most, need));
	}
	zbytes = mul_size(mul_size((Size) cap, (Size) rows->d), sizeof(double));
	if (rows->z == NULL)
	{
		rows->z = palloc_extended(zbytes, MCXT_ALLOC_HUGE);
		rows->weight = palloc_extended(mul_size(cap, sizeof(double)),
									   MCXT_ALLOC_HUGE);
		if (rows->users)
			rows->user = palloc_extended(mul_size(cap, sizeof(int32)),
										 MCXT_ALLOC_HUGE);
	}
	else
	{
		rows->z = repalloc_huge(rows->z, zbytes);
		rows->weight = repalloc_huge(rows->weight,
									 mul_size(cap, sizeof(double)));
		if (rows->users)
			rows->user = repalloc_huge(rows->user,
									   mul_size(cap, sizeof(int32)));
	}
	rows->cap = cap;
}

/* Rebuild the hash slots of a user table for its current size */
static void
UsersRehash(PrmUsers *users, int32 nslots)
{
	users->slots = repalloc_huge(users->slots, sizeof(int32) * nslots);
	memset(users->slots, 0, sizeof(int32) * nslots);
	users->nslots = nslots;
	for (int32 u = 0; u < users->count; u++)
	{
		uint32		h = hash_bytes((const unsigned char *) users->keys +
								   users->offset[u],
								   (int) (users->offset[u + 1] -
										  users->offset[u]));
		int32		slot = h & (nslots - 1);

		while (users->slots[slot] != 0)
			slot = (slot + 1) & (nslots - 1);
		users->slots[slot] = u + 1;
	}
}

/* Index of the user with this key, adding it if new */
static int32
UsersLookup(PrmUsers *users, const char *key, int len)
{
	return PrmUsersLookup(users, key, len, true);
}

/*
 * Index of the user with this key, or -1 if absent and add is false. New
 * memory comes from CurrentMemoryContext.
 */
int32
PrmUsersLookup(PrmUsers *users, const char *key, int len, bool add)
{
	uint32		h = hash_bytes((const unsigned char *) key, len);
	int32		slot;

	if (users->slots == NULL && !add)
		return -1;
	if (users->slots == NULL)
	{
		users->slots = palloc0(sizeof(int32) * INITIAL_USERS * 2);
		users->nslots = INITIAL_USERS * 2;
		users->offset = palloc(sizeof(int64) * (INITIAL_USERS + 1));
		users->cap = INITIAL_USERS;
		users->offset[0] = 0;
		users->keys = palloc(1024);
		users->keys_cap = 1024;
	}

	for (slot = h & (users->nslots - 1); users->slots[slot] != 0;
		 slot = (slot + 1) & (users->nslots - 1))
	{
		int32		u = users->slots[slot] - 1;

		if (users->offset[u + 1] - users->offset[u] == len &&
			memcmp(users->keys + users->offset[u], key, len) == 0)
			return u;
	}
	if (!add)
		return -1;

	/* a new user */
	if (users->count == PG_INT32_MAX - 1)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many distinct users in one fit")));
	if (users->count + 1 >= users->cap)
	{
		users->cap *= 2;
		users->offset = repalloc_huge(users->offset,
									  sizeof(int64) * (users->cap + 1));
	}
	if (users->keys_len + len > users->keys_cap)
	{
		users->keys_cap = Max(users->keys_cap * 2, users->keys_len + len);
		users->keys = repalloc_huge(users->keys, users->keys_cap);
	}
	memcpy(users->keys + users->keys_len, key, len);
	users->keys_len += len;
	users->offset[users->count + 1] = users->keys_len;
	users->slots[slot] = users->count + 1;
	users->count++;
	if (users->count * 2 > users->nslots)
		UsersRehash(users, users->nslots * 2);
	return users->count - 1;
}

/* Check the L2 strength argument and that it stays the same in a group */
static void
RowsSetL2(PrmRows *rows, double l2)
{
	if (!(l2 >= 0) || isinf(l2))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("l2 must be a finite number >= 0, not %g", l2)));
	if (rows->has_l2 && rows->l2 != l2)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("l2 must be the same for every row of a group"),
				 errdetail("Saw %g, then %g.", rows->l2, l2)));
	rows->l2 = l2;
	rows->has_l2 = true;
}

/* Write chosen - rejected into row, checking both embeddings */
static void
ReadDifference(ArrayType *chosen, ArrayType *rejected, int d, double *row)
{
	bool		finite = true;

	PrmEmbeddingRead(chosen, d, row, "chosen");
	if (ARR_ELEMTYPE(rejected) == FLOAT8OID)
	{
		const double *r = (const double *) ARR_DATA_PTR(rejected);

		for (int j = 0; j < d; j++)
		{
			finite &= isfinite(r[j]);
			row[j] -= r[j];
		}
	}
	else
	{
		const float *r = (const float *) ARR_DATA_PTR(rejected);

		for (int j = 0; j < d; j++)
		{
			finite &= isfinite(r[j]);
			row[j] -= (double) r[j];
		}
	}
	if (!finite)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("rejected embedding must not contain NaN or "
						"Infinity")));
}

/*
 * Text form of the user id in argument argno: *type and out cache the
 * argument's type and output function (in mcxt) across calls.
 */
char *
PrmUserIdText(FunctionCallInfo fcinfo, int argno, Oid *type, FmgrInfo *out,
			  MemoryContext mcxt, int *len)
{
	Datum		value = PG_GETARG_DATUM(argno);
	char	   *key;

	if (*type == InvalidOid)
	{
		Oid			outfn;
		bool		varlena;

		*type = get_fn_expr_argtype(fcinfo->flinfo, argno);
		getTypeOutputInfo(*type, &outfn, &varlena);
		fmgr_info_cxt(outfn, out, mcxt);
	}
	if (*type == TEXTOID)
	{
		text	   *t = DatumGetTextPP(value);

		*len = VARSIZE_ANY_EXHDR(t);
		return VARDATA_ANY(t);
	}
	key = OutputFunctionCall(out, value);
	*len = strlen(key);
	return key;
}

/* Index of the user in argument argno, converting the id to its text */
static int32
ReadUser(PrmRows *rows, FunctionCallInfo fcinfo, int argno,
		 MemoryContext aggcontext)
{
	int			len;
	char	   *key = PrmUserIdText(fcinfo, argno, &rows->user_type,
									&rows->user_out, aggcontext, &len);

	return UsersLookup(rows->users, key, len);
}

/* Add the comparison of one aggregate call */
void
PrmRowsAdd(PrmRows *rows, FunctionCallInfo fcinfo, const PrmRowArgs *args,
		   MemoryContext aggcontext)
{
	ArrayType  *chosen,
			   *rejected;
	double		weight = 1.0;
	int			d;
	MemoryContext old;

	if (args->l2 >= 0)
	{
		if (PG_ARGISNULL(args->l2))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("l2 must not be NULL")));
		RowsSetL2(rows, PG_GETARG_FLOAT8(args->l2));
	}

	/* a comparison with a NULL input is skipped and counted */
	if (PG_ARGISNULL(args->chosen) || PG_ARGISNULL(args->rejected) ||
		(args->weight >= 0 && PG_ARGISNULL(args->weight)) ||
		(args->user >= 0 && PG_ARGISNULL(args->user)))
	{
		rows->skipped++;
		return;
	}

	if (args->weight >= 0)
	{
		weight = PG_GETARG_FLOAT8(args->weight);
		if (!(weight >= 0) || isinf(weight))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("weight must be a finite number >= 0, not %g",
							weight)));
	}

	chosen = PG_GETARG_ARRAYTYPE_P(args->chosen);
	rejected = PG_GETARG_ARRAYTYPE_P(args->rejected);
	d = PrmEmbeddingDim(chosen, "chosen");
	if (PrmEmbeddingDim(rejected, "rejected") != d)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("chosen and rejected embeddings differ in dimension: "
						"%d and %d", d, ARR_DIMS(rejected)[0])));
	if (rows->d == 0)
		rows->d = d;
	else if (rows->d != d)
		PrmDimensionMismatch(rows->d, d);

	old = MemoryContextSwitchTo(aggcontext);
	RowsReserve(rows, rows->n + 1);
	if (args->user >= 0)
		rows->user[rows->n] = ReadUser(rows, fcinfo, args->user, aggcontext);
	MemoryContextSwitchTo(old);

	ReadDifference(chosen, rejected, d, rows->z + rows->n * d);
	rows->weight[rows->n] = weight;
	rows->n++;
}

/* Record the model options of one call; they must not change in a group */
void
PrmRowsSetOptions(PrmRows *rows, const PrmFitOptions *options)
{
	if (rows->has_options &&
		memcmp(&rows->options, options, sizeof(PrmFitOptions)) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model options (k, restarts, seed, prior strength, "
						"locked components) must be the same for every row "
						"of a group")));
	rows->options = *options;
	rows->has_options = true;
}

/* Append the rows of src to dst (parallel combine) */
void
PrmRowsAppend(PrmRows *dst, const PrmRows *src, MemoryContext aggcontext)
{
	MemoryContext old = MemoryContextSwitchTo(aggcontext);

	if (src->n > 0)
	{
		if (dst->d == 0)
			dst->d = src->d;
		else if (dst->d != src->d)
			PrmDimensionMismatch(dst->d, src->d);
		RowsReserve(dst, dst->n + src->n);
		memcpy(dst->z + dst->n * dst->d, src->z,
			   sizeof(double) * src->n * src->d);
		memcpy(dst->weight + dst->n, src->weight, sizeof(double) * src->n);
		if (dst->users)
		{
			int32	   *map = palloc(sizeof(int32) * Max(src->users->count, 1));

			/* src's user numbers become dst's */
			for (int32 u = 0; u < src->users->count; u++)
				map[u] = UsersLookup(dst->users,
									 src->users->keys + src->users->offset[u],
									 (int) (src->users->offset[u + 1] -
											src->users->offset[u]));
			for (int64 i = 0; i < src->n; i++)
				dst->user[dst->n + i] = map[src->user[i]];
			pfree(map);
		}
		dst->n += src->n;
	}
	dst->skipped += src->skipped;
	if (src->has_l2)
		RowsSetL2(dst, src->l2);
	if (src->has_options)
		PrmRowsSetOptions(dst, &src->options);
	MemoryContextSwitchTo(old);
}

/* Serialize a state for transfer between processes */
bytea *
PrmRowsSerialize(const PrmRows *rows)
{
	StringInfoData buf;
	Size		payload;
	int32		nusers = rows->users ? rows->users->count : -1;

	payload = mul_size(mul_size(rows->n, rows->d + 1), sizeof(double));
	if (rows->users)
		payload = add_size(payload,
						   add_size(mul_size(rows->n, sizeof(int32)),
									add_size(rows->users->keys_len,
											 mul_size(nusers + 1,
													  sizeof(int64)))));
	payload = add_size(payload, 64);
	if (payload >= MaxAllocSize - VARHDRSZ)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("partial state of %lld comparisons is too large to "
						"pass between parallel workers",
						(long long) rows->n),
				 errhint("Set max_parallel_workers_per_gather = 0 for this "
						 "query.")));

	pq_begintypsend(&buf);
	enlargeStringInfo(&buf, (int) payload);
	pq_sendint32(&buf, rows->d);
	pq_sendint64(&buf, rows->n);
	pq_sendint64(&buf, rows->skipped);
	pq_sendbyte(&buf, rows->has_l2);
	pq_sendfloat8(&buf, rows->l2);
	pq_sendint32(&buf, nusers);
	pq_sendbyte(&buf, rows->has_options);
	pq_sendint32(&buf, rows->options.k);
	pq_sendint32(&buf, rows->options.restarts);
	pq_sendint64(&buf, rows->options.seed);
	pq_sendfloat8(&buf, rows->options.prior_strength);
	pq_sendint64(&buf, rows->options.locked);
	if (rows->n > 0)
	{
		pq_sendbytes(&buf, (const char *) rows->z,
					 sizeof(double) * rows->n * rows->d);
		pq_sendbytes(&buf, (const char *) rows->weight,
					 sizeof(double) * rows->n);
	}
	if (rows->users)
	{
		if (rows->n > 0)
			pq_sendbytes(&buf, (const char *) rows->user,
						 sizeof(int32) * rows->n);
		for (int32 u = 0; u <= nusers; u++)
			pq_sendint64(&buf, nusers > 0 ? rows->users->offset[u] : 0);
		pq_sendbytes(&buf, rows->users->keys, rows->users->keys_len);
	}
	return pq_endtypsend(&buf);
}

/* Fail on a serialized state that does not hold together */
static void
MalformedState(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("malformed partial state of a fit aggregate")));
}

/* Rebuild a serialized state in the aggregate context */
PrmRows *
PrmRowsDeserialize(bytea *bytes, MemoryContext aggcontext)
{
	StringInfoData buf;
	PrmRows    *rows;
	MemoryContext old;
	int64		n;
	int32		nusers;

	buf.data = VARDATA_ANY(bytes);
	buf.len = VARSIZE_ANY_EXHDR(bytes);
	buf.maxlen = buf.len;
	buf.cursor = 0;

	old = MemoryContextSwitchTo(aggcontext);
	rows = palloc0(sizeof(PrmRows));
	rows->d = pq_getmsgint(&buf, 4);
	n = pq_getmsgint64(&buf);
	rows->skipped = pq_getmsgint64(&buf);
	rows->has_l2 = pq_getmsgbyte(&buf);
	rows->l2 = pq_getmsgfloat8(&buf);
	nusers = pq_getmsgint(&buf, 4);
	rows->has_options = pq_getmsgbyte(&buf);
	rows->options.k = pq_getmsgint(&buf, 4);
	rows->options.restarts = pq_getmsgint(&buf, 4);
	rows->options.seed = pq_getmsgint64(&buf);
	rows->options.prior_strength = pq_getmsgfloat8(&buf);
	rows->options.locked = pq_getmsgint64(&buf);
	if (rows->d < 0 || rows->d > PRM_MAX_DIM || n < 0 ||
		(n > 0 && rows->d == 0) || nusers < -1 ||
		(Size) (buf.len - buf.cursor) <
		(Size) n * (rows->d + 1) * sizeof(double))
		MalformedState();
	if (nusers >= 0)
		rows->users = palloc0(sizeof(PrmUsers));
	if (n > 0)
	{
		RowsReserve(rows, n);
		pq_copymsgbytes(&buf, (char *) rows->z,
						sizeof(double) * n * rows->d);
		pq_copymsgbytes(&buf, (char *) rows->weight, sizeof(double) * n);
		if (rows->users)
			pq_copymsgbytes(&buf, (char *) rows->user, sizeof(int32) * n);
		rows->n = n;
	}
	if (rows->users)
	{
		int64	   *offset = palloc(sizeof(int64) * (nusers + 1));
		char	   *keys;
		int64		len;

		for (int32 u = 0; u <= nusers; u++)
			offset[u] = pq_getmsgint64(&buf);
		len = nusers > 0 ? offset[nusers] : 0;
		if (len < 0 || len != buf.len - buf.cursor)
			MalformedState();
		keys = palloc(len + 1);
		pq_copymsgbytes(&buf, keys, len);
		for (int32 u = 0; u < nusers; u++)
		{
			if (offset[u] < 0 || offset[u] > offset[u + 1])
				MalformedState();
			if (UsersLookup(rows->users, keys + offset[u],
							(int) (offset[u + 1] - offset[u])) != u)
				MalformedState();
		}
		for (int64 i = 0; i < n; i++)
			if (rows->user[i] < 0 || rows->user[i] >= nusers)
				MalformedState();
		pfree(offset);
		pfree(keys);
	}
	pq_getmsgend(&buf);
	MemoryContextSwitchTo(old);
	return rows;
}

/* Compare two users by key bytes, then length */
static int
CompareUserKeys(const PrmUsers *users, int32 a, int32 b)
{
	int64		la = users->offset[a + 1] - users->offset[a];
	int64		lb = users->offset[b + 1] - users->offset[b];
	int			c = memcmp(users->keys + users->offset[a],
						   users->keys + users->offset[b], Min(la, lb));

	if (c != 0)
		return c;
	return (la > lb) - (la < lb);
}

static const PrmUsers *sort_users;

/* qsort comparator over user indexes */
static int
UserOrder(const void *a, const void *b)
{
	return CompareUserKeys(sort_users, *(const int32 *) a,
						   *(const int32 *) b);
}

/* Renumber users in key order, so results do not depend on row order */
void
PrmRowsSortUsers(PrmRows *rows)
{
	PrmUsers   *users = rows->users;
	int32		count = users->count;
	int32	   *order;
	int32	   *rank;
	int64	   *offset;
	char	   *keys;
	int64		pos = 0;

	if (count == 0)
		return;
	order = palloc_extended(sizeof(int32) * count, MCXT_ALLOC_HUGE);
	rank = palloc_extended(sizeof(int32) * count, MCXT_ALLOC_HUGE);
	for (int32 u = 0; u < count; u++)
		order[u] = u;
	sort_users = users;
	qsort(order, count, sizeof(int32), UserOrder);
	sort_users = NULL;

	offset = MemoryContextAllocHuge(GetMemoryChunkContext(users->offset),
									sizeof(int64) * (count + 1));
	keys = MemoryContextAllocHuge(GetMemoryChunkContext(users->keys),
								  Max(users->keys_len, 1));
	for (int32 r = 0; r < count; r++)
	{
		int32		u = order[r];
		int64		len = users->offset[u + 1] - users->offset[u];

		rank[u] = r;
		offset[r] = pos;
		memcpy(keys + pos, users->keys + users->offset[u], len);
		pos += len;
	}
	offset[count] = pos;
	for (int64 i = 0; i < rows->n; i++)
		rows->user[i] = rank[rows->user[i]];

	pfree(users->offset);
	pfree(users->keys);
	users->offset = offset;
	users->keys = keys;
	users->cap = count;
	users->keys_cap = Max(users->keys_len, 1);
	UsersRehash(users, users->nslots);
	pfree(order);
	pfree(rank);
}

/* Key of user u of a fit as a text datum */
Datum
PrmUserKey(const PrmRows *rows, int32 u)
{
	return PrmUsersKey(rows->users, u);
}

/* Key of user u of a user table as a text datum */
Datum
PrmUsersKey(const PrmUsers *users, int32 u)
{
	return PointerGetDatum(cstring_to_text_with_len(users->keys +
													users->offset[u],
													(int) (users->offset[u + 1] -
														   users->offset[u])));
}

/* Report skipped comparisons, the way every fit aggregate does */
void
PrmRowsNoticeSkipped(const PrmRows *rows, const char *fname)
{
	if (rows->skipped > 0)
		ereport(NOTICE,
				(errmsg("%s skipped %lld comparisons with a NULL input",
						fname, (long long) rows->skipped)));
}
