/*
 * items.c
 *	  The btl_items aggregate: count paired comparisons of items per pair,
 *	  then fit item strengths with the core solver (prm_items.c).
 *
 * Item ids can be of any type with a hash opclass (bigint, text, uuid,
 * ...). The transition state maps each distinct item to a dense number
 * with a hash table using the type's own hash and equality functions, and
 * keeps, per unordered pair of items, the weight and the number of rows of
 * each outcome; with a rater column it also keeps each rater's counts per
 * pair, for resampling raters. A million comparisons of a thousand items
 * so take a few tens of megabytes, not a copy of the rows.
 *
 * The counts are kept as runs sorted by pair. New rows are appended to a
 * pending list, and when it is as long as the runs it is sorted (counting
 * sorts on the dense item numbers) and merged in: memory is read and
 * written in order, where a hash table of pairs would miss the cache on
 * almost every row. Combining partial states of parallel workers, which
 * travel as bytea with item and rater ids in text form, renumbers one
 * state's items into the other's and merges the runs the same way.
 *
 * The final function numbers items and pairs in a canonical order (the id
 * type's sort order, else the text form), so that a fit, and a seeded
 * bootstrap, do not depend on the order in which rows arrived.
 */
#include "postgres.h"

#include <math.h>
#include <time.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "funcapi.h"
#include "libpq/pqformat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/typcache.h"

#include "pluralrm.h"
#include "prm_item_classes.h"
#include "prm_items.h"
#include "items.h"


/* Hash of a key: integers directly, others by their type's hash function */
static inline uint32
KeyHash(KeyType *kt, Datum key)
{
	if (kt->integer)
		return hash_combine(murmurhash32((uint32) ((uint64) key >> 32)),
							murmurhash32((uint32) key));
	return DatumGetUInt32(FunctionCall1Coll(&kt->tc->hash_proc_finfo,
											kt->collation, key));
}

/* Equality of two keys by their type's equality operator */
static inline bool
KeyEqual(KeyType *kt, Datum a, Datum b)
{
	if (kt->integer)
		return a == b;
	return DatumGetBool(FunctionCall2Coll(&kt->tc->eq_opr_finfo,
										  kt->collation, a, b));
}

/* A distinct key and its dense number */
typedef struct KeyEntry
{
	Datum		key;
	uint32		hash;
	int32		index;
	char		status;
} KeyEntry;

#define SH_PREFIX keymap
#define SH_ELEMENT_TYPE KeyEntry
#define SH_KEY_TYPE Datum
#define SH_KEY key
#define SH_HASH_KEY(tb, k) KeyHash((KeyType *) (tb)->private_data, k)
#define SH_EQUAL(tb, a, b) KeyEqual((KeyType *) (tb)->private_data, a, b)
#define SH_SCOPE static inline
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a) a->hash
#define SH_DEFINE
#define SH_DECLARE
#include "lib/simplehash.h"

/* Outcomes of a row, seen from the pair's first item */
#define OUTCOME_LO 0			/* the first item (lower number) won */
#define OUTCOME_HI 1			/* the second item won */
#define OUTCOME_TIE 2



/* Fewest pending rows that are sorted and merged in one go */
#define MIN_PENDING 65536

/* Largest number of resamples accepted */
#define MAX_RESAMPLES 100000

/* Number of values in a pluralrm.items_options row */
#define OPTIONS_FIELDS 6

/* Number of values in a pluralrm.items_model row */
#define MODEL_FIELDS 31

PG_FUNCTION_INFO_V1(btl_items_transfn);
PG_FUNCTION_INFO_V1(btl_items_combinefn);
PG_FUNCTION_INFO_V1(btl_items_serializefn);
PG_FUNCTION_INFO_V1(btl_items_deserializefn);
PG_FUNCTION_INFO_V1(btl_items_finalfn);

/* Return the aggregate memory context or fail when not called as one */
static MemoryContext
AggContextOrError(FunctionCallInfo fcinfo, const char *fname)
{
	MemoryContext aggcontext;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		elog(ERROR, "%s called in non-aggregate context", fname);
	return aggcontext;
}

/* Look up how to hash, compare and sort values of a key type */
static void
KeyTypeInit(KeyType *kt, Oid type, Oid collation, const char *what)
{
	kt->type = type;
	kt->collation = collation;
	kt->integer = type == INT2OID || type == INT4OID || type == INT8OID;
	get_typlenbyval(type, &kt->typlen, &kt->typbyval);
	kt->tc = lookup_type_cache(type, TYPECACHE_HASH_PROC_FINFO |
							   TYPECACHE_EQ_OPR_FINFO |
							   TYPECACHE_CMP_PROC_FINFO);
	if (!OidIsValid(kt->tc->hash_proc) || !OidIsValid(kt->tc->eq_opr))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("could not identify a hash function for %s type %s",
						what, format_type_be(type)),
				 errhint("Cast the %s ids to a type with a hash operator "
						 "class, such as text.", what)));
}

/* An empty state in memory context mcxt */
static ItemsState *
ItemsStateNew(MemoryContext mcxt, Oid item_type, Oid item_coll,
			  Oid rater_type, Oid rater_coll)
{
	ItemsState *state = MemoryContextAllocZero(mcxt, sizeof(ItemsState));

	state->mcxt = mcxt;
	KeyTypeInit(&state->item_type, item_type, item_coll, "item");
	state->items = keymap_create(mcxt, 16, &state->item_type);
	if (OidIsValid(rater_type))
	{
		KeyTypeInit(&state->rater_type, rater_type, rater_coll, "rater");
		state->raters = keymap_create(mcxt, 16, &state->rater_type);
	}
	state->opt.prior = PRM_ITEMS_DEFAULT_PRIOR;
	state->opt.ties = PRM_TIES_DAVIDSON;
	state->opt.confidence = 0.95;
	return state;
}

/* Grow an array in mcxt of elements of size bytes to hold at least need */
static void *
GrowArray(MemoryContext mcxt, void *array, int64 *cap, int64 need, Size size)
{
	int64		newcap;

	if (need <= *cap)
		return array;
	newcap = Max(*cap * 2, Max(need, 64));
	PrmFitMemoryCheck(MemoryContextMemAllocated(mcxt, true),
					  mul_size((Size) newcap, size), "btl_items");
	*cap = newcap;
	if (array == NULL)
		return MemoryContextAllocHuge(mcxt, mul_size((Size) newcap, size));
	return repalloc_huge(array, mul_size((Size) newcap, size));
}

/* Grow an array field of a state to hold need entries */
#define GROW(state, field, cap, need) \
	((state)->field = GrowArray((state)->mcxt, (state)->field, \
								&(state)->cap, (need), \
								sizeof(*(state)->field)))

/* A copy of a key in mcxt, detoasted */
static Datum
KeyCopy(MemoryContext mcxt, const KeyType *kt, Datum key)
{
	MemoryContext old = MemoryContextSwitchTo(mcxt);
	Datum		copy;

	if (kt->typlen == -1)
		copy = PointerGetDatum(PG_DETOAST_DATUM_COPY(key));
	else
		copy = datumCopy(key, kt->typbyval, kt->typlen);
	MemoryContextSwitchTo(old);
	return copy;
}

/*
 * Dense number of a key, added when new; what names the key kind and
 * limit its most distinct values.
 */
static int32
KeyIndex(MemoryContext mcxt, keymap_hash *map, const KeyType *kt,
		 Datum **keys, int32 *n, int32 *cap, Datum key, int32 limit,
		 const char *what)
{
	bool		found;
	KeyEntry   *entry = keymap_insert(map, key, &found);

	if (!found)
	{
		int64		cap64 = *cap;

		if (*n >= limit)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("btl_items handles at most %d %ss, and this "
							"group has %d", limit, what, *n + 1),
					 errhint("Fit fewer %ss per group.", what)));
		*keys = GrowArray(mcxt, *keys, &cap64, (int64) *n + 1,
						  sizeof(Datum));
		*cap = (int32) cap64;
		entry->key = KeyCopy(mcxt, kt, key);
		entry->index = *n;
		(*keys)[*n] = entry->key;
		(*n)++;
	}
	return entry->index;
}

/* Dense number of an item */
static inline int32
ItemIndex(ItemsState *state, Datum key)
{
	return KeyIndex(state->mcxt, state->items, &state->item_type,
					&state->item_keys, &state->n_items, &state->item_cap,
					key, PRM_ITEMS_MAX, "item");
}

/* Dense number of a rater */
static inline int32
RaterIndex(ItemsState *state, Datum key)
{
	return KeyIndex(state->mcxt, state->raters, &state->rater_type,
					&state->rater_keys, &state->n_raters, &state->rater_cap,
					key, PG_INT32_MAX, "rater");
}

/*
 * Stable counting sort: out receives the record numbers in (0 .. m - 1
 * when in is NULL) ordered by key[record], keys in [0, range).
 */
static void
CountingSort(int64 m, const int32 *key, int64 range, const int64 *in,
			 int64 *out)
{
	int64	   *count = palloc0(sizeof(int64) * (range + 1));

	for (int64 r = 0; r < m; r++)
		count[key[in ? in[r] : r] + 1]++;
	for (int64 k = 0; k < range; k++)
		count[k + 1] += count[k];
	for (int64 r = 0; r < m; r++)
	{
		int64		rec = in ? in[r] : r;

		out[count[key[rec]]++] = rec;
	}
	pfree(count);
}

/*
 * Order of m records by (major, minor) keys in [0, range): a counting sort
 * by minor, then a stable one by major. Returns the record numbers.
 */
static int64 *
OrderByKeys(int64 m, const int32 *major, const int32 *minor, int64 range)
{
	int64	   *tmp = palloc(sizeof(int64) * Max(m, 1));
	int64	   *order = palloc(sizeof(int64) * Max(m, 1));

	CountingSort(m, minor, range, NULL, tmp);
	CountingSort(m, major, range, tmp, order);
	pfree(tmp);
	return order;
}

/* An array of n elements of size bytes in the current memory context */
static void *
TempArray(int64 n, Size size)
{
	return MemoryContextAllocHuge(CurrentMemoryContext,
								  mul_size((Size) Max(n, 1), size));
}

/* Sort n pair counts by (lo, hi); equal pairs end up adjacent */
static PairCount *
SortPairs(const PairCount *p, int64 n, int32 n_items)
{
	int32	   *lo = TempArray(n, sizeof(int32));
	int32	   *hi = TempArray(n, sizeof(int32));
	int64	   *order;
	PairCount  *out = TempArray(n, sizeof(PairCount));

	for (int64 r = 0; r < n; r++)
	{
		lo[r] = p[r].lo;
		hi[r] = p[r].hi;
	}
	order = OrderByKeys(n, lo, hi, n_items);
	for (int64 r = 0; r < n; r++)
		out[r] = p[order[r]];
	pfree(lo);
	pfree(hi);
	pfree(order);
	return out;
}

/* Sort n cell counts by (rater, lo, hi) */
static CellCount *
SortCells(const CellCount *c, int64 n, int32 n_items, int32 n_raters)
{
	int32	   *key = TempArray(n, sizeof(int32));
	int64	   *a = TempArray(n, sizeof(int64));
	int64	   *b = TempArray(n, sizeof(int64));
	CellCount  *out = TempArray(n, sizeof(CellCount));

	for (int64 r = 0; r < n; r++)
		key[r] = c[r].hi;
	CountingSort(n, key, n_items, NULL, a);
	for (int64 r = 0; r < n; r++)
		key[r] = c[r].lo;
	CountingSort(n, key, n_items, a, b);
	for (int64 r = 0; r < n; r++)
		key[r] = c[r].rater;
	CountingSort(n, key, n_raters, b, a);
	for (int64 r = 0; r < n; r++)
		out[r] = c[a[r]];
	pfree(key);
	pfree(a);
	pfree(b);
	return out;
}

/* Sort key of a pair */
static inline uint64
PairKey(const PairCount *p)
{
	return ((uint64) p->lo << 32) | (uint32) p->hi;
}

/* Order of two cells: negative, zero or positive */
static inline int
CellOrder(const CellCount *a, const CellCount *b)
{
	if (a->rater != b->rater)
		return a->rater < b->rater ? -1 : 1;
	if (a->lo != b->lo)
		return a->lo < b->lo ? -1 : 1;
	return a->hi < b->hi ? -1 : (a->hi > b->hi);
}

/*
 * Merge two runs of pair counts sorted by (lo, hi) into a new array in
 * mcxt, adding up equal pairs; *n receives its length.
 */
static PairCount *
MergePairs(MemoryContext mcxt, const PairCount *a, int64 na,
		   const PairCount *b, int64 nb, int64 *n)
{
	PairCount  *out = MemoryContextAllocHuge(mcxt,
											 mul_size(Max(na + nb, 1),
													  sizeof(PairCount)));
	int64		i = 0,
				j = 0,
				m = 0;

	while (i < na || j < nb)
	{
		const PairCount *next;

		if (j >= nb || (i < na && PairKey(&a[i]) <= PairKey(&b[j])))
			next = &a[i++];
		else
			next = &b[j++];
		if (m > 0 && PairKey(&out[m - 1]) == PairKey(next))
		{
			PairCount  *last = &out[m - 1];

			last->win_lo += next->win_lo;
			last->win_hi += next->win_hi;
			last->tie += next->tie;
			last->rows_lo += next->rows_lo;
			last->rows_hi += next->rows_hi;
			last->rows_tie += next->rows_tie;
		}
		else
			out[m++] = *next;
	}
	*n = m;
	return out;
}

/*
 * Merge two runs of cell counts sorted by (rater, lo, hi) into a new array
 * in mcxt, adding up equal cells; *n receives its length.
 */
static CellCount *
MergeCells(MemoryContext mcxt, const CellCount *a, int64 na,
		   const CellCount *b, int64 nb, int64 *n)
{
	CellCount  *out = MemoryContextAllocHuge(mcxt,
											 mul_size(Max(na + nb, 1),
													  sizeof(CellCount)));
	int64		i = 0,
				j = 0,
				m = 0;

	while (i < na || j < nb)
	{
		const CellCount *next;

		if (j >= nb || (i < na && CellOrder(&a[i], &b[j]) <= 0))
			next = &a[i++];
		else
			next = &b[j++];
		if (m > 0 && CellOrder(&out[m - 1], next) == 0)
		{
			out[m - 1].win_lo += next->win_lo;
			out[m - 1].win_hi += next->win_hi;
			out[m - 1].tie += next->tie;
		}
		else
			out[m++] = *next;
	}
	*n = m;
	return out;
}

/*
 * All pair counts of a state, sorted by (lo, hi), one per pair: the
 * state's own run when no row is pending, else a merged copy in mcxt.
 */
static PairCount *
StatePairs(const ItemsState *state, MemoryContext mcxt, int64 *n)
{
	PairCount  *rows;
	PairCount  *sorted;
	PairCount  *merged;

	*n = state->n_pairs;
	if (state->n_pending == 0)
		return state->pairs;
	rows = TempArray(state->n_pending, sizeof(PairCount));
	for (int64 r = 0; r < state->n_pending; r++)
	{
		const PendingRow *pr = &state->pending[r];
		PairCount  *pc = &rows[r];

		memset(pc, 0, sizeof(PairCount));
		pc->lo = pr->lo;
		pc->hi = pr->hi;
		if (pr->outcome == OUTCOME_LO)
			pc->win_lo = pr->weight, pc->rows_lo = 1;
		else if (pr->outcome == OUTCOME_HI)
			pc->win_hi = pr->weight, pc->rows_hi = 1;
		else
			pc->tie = pr->weight, pc->rows_tie = 1;
	}
	sorted = SortPairs(rows, state->n_pending, state->n_items);
	merged = MergePairs(mcxt, state->pairs, state->n_pairs, sorted,
						state->n_pending, n);
	pfree(rows);
	pfree(sorted);
	return merged;
}

/* All cell counts of a state, like StatePairs */
static CellCount *
StateCells(const ItemsState *state, MemoryContext mcxt, int64 *n)
{
	CellCount  *rows;
	CellCount  *sorted;
	CellCount  *merged;

	*n = state->n_cells;
	if (state->n_pending == 0 || !OidIsValid(state->rater_type.type))
		return state->cells;
	rows = TempArray(state->n_pending, sizeof(CellCount));
	for (int64 r = 0; r < state->n_pending; r++)
	{
		const PendingRow *pr = &state->pending[r];
		CellCount  *cc = &rows[r];

		memset(cc, 0, sizeof(CellCount));
		cc->rater = pr->rater;
		cc->lo = pr->lo;
		cc->hi = pr->hi;
		if (pr->outcome == OUTCOME_LO)
			cc->win_lo = pr->weight;
		else if (pr->outcome == OUTCOME_HI)
			cc->win_hi = pr->weight;
		else
			cc->tie = pr->weight;
	}
	sorted = SortCells(rows, state->n_pending, state->n_items,
					   state->n_raters);
	merged = MergeCells(mcxt, state->cells, state->n_cells, sorted,
						state->n_pending, n);
	pfree(rows);
	pfree(sorted);
	return merged;
}

/* Merge the pending rows into the state's runs */
static void
ItemsStateFlush(ItemsState *state)
{
	int64		n;
	PairCount  *pairs;
	CellCount  *cells;

	if (state->n_pending == 0)
		return;
	pairs = StatePairs(state, state->mcxt, &n);
	if (state->pairs)
		pfree(state->pairs);
	state->pairs = pairs;
	state->n_pairs = n;
	if (OidIsValid(state->rater_type.type))
	{
		cells = StateCells(state, state->mcxt, &n);
		if (state->cells)
			pfree(state->cells);
		state->cells = cells;
		state->n_cells = n;
	}
	state->n_pending = 0;
}

/* Append one comparison to the pending rows, merging them in when due */
static void
ItemsStateAdd(ItemsState *state, int32 ia, int32 ib, double outcome,
			  double weight, int32 rater)
{
	PendingRow *row;

	/* merging costs a pass over the runs: wait until it pays */
	if (state->n_pending >= Max(MIN_PENDING, state->n_pairs + state->n_cells))
		ItemsStateFlush(state);
	GROW(state, pending, pending_cap, state->n_pending + 1);
	row = &state->pending[state->n_pending++];
	row->lo = Min(ia, ib);
	row->hi = Max(ia, ib);
	row->rater = rater;
	row->weight = weight;
	if (outcome == 0.5)
		row->outcome = OUTCOME_TIE;
	else
		row->outcome = (outcome == 1.0) == (ia < ib) ? OUTCOME_LO :
			OUTCOME_HI;
}

/* Name of a tie model as shown in results and options */
const char *
ItemsTieModelName(PrmTieModel ties)
{
	switch (ties)
	{
		case PRM_TIES_HALF:
			return "half";
		case PRM_TIES_DROP:
			return "drop";
		default:
			return "davidson";
	}
}

/* Read and check a pluralrm.items_options value; NULL fields are defaults */
static void
OptionsRead(HeapTupleHeader rec, ItemsOptions *opt)
{
	TupleDesc	desc;
	HeapTupleData tuple;
	Datum		values[OPTIONS_FIELDS];
	bool		nulls[OPTIONS_FIELDS];

	desc = lookup_rowtype_tupdesc(HeapTupleHeaderGetTypeId(rec),
								  HeapTupleHeaderGetTypMod(rec));
	if (desc->natts != OPTIONS_FIELDS)
		elog(ERROR, "pluralrm.items_options has %d fields, not %d",
			 desc->natts, OPTIONS_FIELDS);
	tuple.t_len = HeapTupleHeaderGetDatumLength(rec);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = rec;
	heap_deform_tuple(&tuple, desc, values, nulls);
	ReleaseTupleDesc(desc);

	opt->prior = nulls[0] ? PRM_ITEMS_DEFAULT_PRIOR :
		DatumGetFloat8(values[0]);
	if (!(opt->prior >= 0) || isinf(opt->prior))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("prior must be a finite number >= 0, not %g",
						opt->prior)));

	opt->ties = PRM_TIES_DAVIDSON;
	if (!nulls[1])
	{
		char	   *t = TextDatumGetCString(values[1]);

		if (strcmp(t, "davidson") == 0)
			opt->ties = PRM_TIES_DAVIDSON;
		else if (strcmp(t, "half") == 0)
			opt->ties = PRM_TIES_HALF;
		else if (strcmp(t, "drop") == 0)
			opt->ties = PRM_TIES_DROP;
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("ties must be davidson, half or drop, not \"%s\"",
							t)));
	}

	opt->reference = nulls[2] ? NULL : TextDatumGetCString(values[2]);

	opt->bootstrap = nulls[3] ? 0 : DatumGetInt32(values[3]);
	if (opt->bootstrap < 0 || opt->bootstrap > MAX_RESAMPLES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("bootstrap must be between 0 and %d resamples, "
						"not %d", MAX_RESAMPLES, opt->bootstrap)));

	opt->seed = nulls[4] ? 0 : DatumGetInt64(values[4]);

	opt->confidence = nulls[5] ? 0.95 : DatumGetFloat8(values[5]);
	if (!(opt->confidence > 0 && opt->confidence < 1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("confidence must be between 0 and 1, not %g",
						opt->confidence)));
}

/* Whether two option sets are the same */
static bool
OptionsEqual(const ItemsOptions *a, const ItemsOptions *b)
{
	return a->prior == b->prior && a->ties == b->ties &&
		a->bootstrap == b->bootstrap && a->seed == b->seed &&
		a->confidence == b->confidence &&
		(a->reference == NULL) == (b->reference == NULL) &&
		(a->reference == NULL || strcmp(a->reference, b->reference) == 0);
}

/* Options as text, for messages */
static char *
OptionsText(const ItemsOptions *opt)
{
	return psprintf("prior %g, ties %s, reference %s, bootstrap %d, "
					"seed " INT64_FORMAT ", confidence %g", opt->prior,
					ItemsTieModelName(opt->ties),
					opt->reference ? opt->reference : "none",
					opt->bootstrap, opt->seed, opt->confidence);
}

/* Set the state's options, which must be the same for a whole group */
static void
ItemsStateSetOptions(ItemsState *state, const ItemsOptions *opt)
{
	if (state->has_options && !OptionsEqual(&state->opt, opt))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("options must be the same for every row of a group"),
				 errdetail("Saw (%s), then (%s).", OptionsText(&state->opt),
						   OptionsText(opt))));
	if (!state->has_options)
	{
		state->opt = *opt;
		if (opt->reference)
			state->opt.reference = MemoryContextStrdup(state->mcxt,
													   opt->reference);
		state->has_options = true;
	}
}

/* Take the options argument of a row; rereads it only when it changed */
static void
ItemsStateOptionsArg(ItemsState *state, Datum arg)
{
	struct varlena *v = (struct varlena *) PG_DETOAST_DATUM(arg);
	Size		len = VARSIZE(v);
	ItemsOptions opt;

	if (state->options_seen && VARSIZE(state->options_seen) == len &&
		memcmp(state->options_seen, v, len) == 0)
		return;
	OptionsRead((HeapTupleHeader) v, &opt);
	ItemsStateSetOptions(state, &opt);
	if (state->options_seen)
		pfree(state->options_seen);
	state->options_seen = MemoryContextAlloc(state->mcxt, len);
	memcpy(state->options_seen, v, len);
}

/* Check a row's outcome: 1, 0 or 0.5 */
static void
CheckOutcome(double outcome)
{
	if (outcome != 1.0 && outcome != 0.0 && outcome != 0.5)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("outcome must be 1 (item_a won), 0 (item_b won) or "
						"0.5 (a tie), not %g", outcome)));
}

/* Check and set the number of classes, the same for a whole group */
static void
ItemsStateSetClasses(ItemsState *state, int32 classes)
{
	if (classes < 1 || classes > PRM_ITEM_CLASSES_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k must be between 1 and %d classes, not %d",
						PRM_ITEM_CLASSES_MAX, classes)));
	if (state->classes != 0 && state->classes != classes)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k must be the same for every row of a group"),
				 errdetail("Saw %d, then %d.", state->classes, classes)));
	state->classes = classes;
}

/* Check and set the number of EM restarts, the same for a whole group */
static void
ItemsStateSetRestarts(ItemsState *state, int32 restarts)
{
	if (restarts < 1 || restarts > PRM_ITEM_CLASSES_MAX_RESTARTS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("restarts must be between 1 and %d, not %d",
						PRM_ITEM_CLASSES_MAX_RESTARTS, restarts)));
	if (state->restarts != 0 && state->restarts != restarts)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("restarts must be the same for every row of a group"),
				 errdetail("Saw %d, then %d.", state->restarts, restarts)));
	state->restarts = restarts;
}

/* Add one comparison to the state, arguments where args says */
ItemsState *
ItemsTransition(FunctionCallInfo fcinfo, const ItemsArgs *args)
{
	MemoryContext aggcontext = AggContextOrError(fcinfo, args->fname);
	ItemsState *state;
	bool		has_rater = args->rater > 0;
	double		outcome,
				weight = 1.0;
	int32		ia,
				ib;

	if (PG_ARGISNULL(0))
	{
		Oid			item_type = get_fn_expr_argtype(fcinfo->flinfo, 1);
		Oid			rater_type = has_rater ?
			get_fn_expr_argtype(fcinfo->flinfo, args->rater) : InvalidOid;

		if (!OidIsValid(item_type) || (has_rater && !OidIsValid(rater_type)))
			elog(ERROR, "could not determine the %s argument types",
				 args->fname);
		state = ItemsStateNew(aggcontext, item_type, PG_GET_COLLATION(),
							  rater_type, PG_GET_COLLATION());
	}
	else
		state = (ItemsState *) PG_GETARG_POINTER(0);

	if (args->options > 0 && !PG_ARGISNULL(args->options))
		ItemsStateOptionsArg(state, PG_GETARG_DATUM(args->options));

	/* latent classes need every comparison's rater, and k */
	if (args->classes > 0)
	{
		if (PG_ARGISNULL(args->classes))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("k must not be NULL")));
		ItemsStateSetClasses(state, PG_GETARG_INT32(args->classes));
		if (args->restarts > 0)
		{
			if (PG_ARGISNULL(args->restarts))
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("restarts must not be NULL")));
			ItemsStateSetRestarts(state, PG_GETARG_INT32(args->restarts));
		}
		if (PG_ARGISNULL(args->rater))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("rater must not be NULL"),
					 errdetail("Every comparison must belong to a rater, "
							   "whose class is estimated."),
					 errhint("Filter out comparisons without a rater.")));
	}

	/* a comparison with a NULL input is skipped and counted */
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3) ||
		(args->weight > 0 && PG_ARGISNULL(args->weight)) ||
		(has_rater && PG_ARGISNULL(args->rater)))
	{
		state->skipped_null++;
		return state;
	}

	outcome = PG_GETARG_FLOAT8(3);
	CheckOutcome(outcome);
	if (args->weight > 0)
	{
		weight = PG_GETARG_FLOAT8(args->weight);
		if (!(weight >= 0) || isinf(weight))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("weight must be a finite number >= 0, not %g",
							weight)));
	}

	/* an item compared with itself says nothing about strengths */
	if (KeyEqual(&state->item_type, PG_GETARG_DATUM(1), PG_GETARG_DATUM(2)))
	{
		state->skipped_self++;
		return state;
	}

	ia = ItemIndex(state, PG_GETARG_DATUM(1));
	ib = ItemIndex(state, PG_GETARG_DATUM(2));
	ItemsStateAdd(state, ia, ib, outcome, weight,
				  has_rater ? RaterIndex(state,
										 PG_GETARG_DATUM(args->rater)) : 0);
	state->rows++;
	return state;
}

/*
 * Add one comparison:
 *	 btl_items(item_a, item_b, outcome [, weight [, [rater,] options]])
 */
Datum
btl_items_transfn(PG_FUNCTION_ARGS)
{
	ItemsArgs	args = {"btl_items_transfn", -1, -1, -1, -1, -1};

	if (PG_NARGS() > 4)
		args.weight = 4;
	if (PG_NARGS() >= 7)
		args.rater = 5;
	if (PG_NARGS() >= 6)
		args.options = PG_NARGS() - 1;
	PG_RETURN_POINTER(ItemsTransition(fcinfo, &args));
}

/* Add the counts of src to dst, renumbering its items and raters */
static void
ItemsStateMerge(ItemsState *dst, const ItemsState *src)
{
	int32	   *item_map = TempArray(src->n_items, sizeof(int32));
	int64		np,
				n;
	PairCount  *pairs = StatePairs(src, CurrentMemoryContext, &np);
	PairCount  *renumbered = TempArray(np, sizeof(PairCount));
	PairCount  *sorted;
	PairCount  *merged;

	if (dst->item_type.type != src->item_type.type ||
		dst->rater_type.type != src->rater_type.type)
		elog(ERROR, "btl_items partial states of different types");

	for (int32 i = 0; i < src->n_items; i++)
		item_map[i] = ItemIndex(dst, src->item_keys[i]);
	for (int64 k = 0; k < np; k++)
	{
		const PairCount *s = &pairs[k];
		PairCount  *d = &renumbered[k];

		*d = *s;
		d->lo = item_map[s->lo];
		d->hi = item_map[s->hi];
		if (d->lo > d->hi)
		{
			d->lo = item_map[s->hi];
			d->hi = item_map[s->lo];
			d->win_lo = s->win_hi;
			d->win_hi = s->win_lo;
			d->rows_lo = s->rows_hi;
			d->rows_hi = s->rows_lo;
		}
	}
	sorted = SortPairs(renumbered, np, dst->n_items);
	merged = MergePairs(dst->mcxt, dst->pairs, dst->n_pairs, sorted, np, &n);
	if (dst->pairs)
		pfree(dst->pairs);
	dst->pairs = merged;
	dst->n_pairs = n;
	pfree(renumbered);
	pfree(sorted);

	if (OidIsValid(src->rater_type.type))
	{
		int32	   *rater_map = TempArray(src->n_raters, sizeof(int32));
		int64		nc;
		CellCount  *cells = StateCells(src, CurrentMemoryContext, &nc);
		CellCount  *renumbered_cells = TempArray(nc, sizeof(CellCount));
		CellCount  *sorted_cells;
		CellCount  *merged_cells;

		for (int32 r = 0; r < src->n_raters; r++)
			rater_map[r] = RaterIndex(dst, src->rater_keys[r]);
		for (int64 c = 0; c < nc; c++)
		{
			const CellCount *s = &cells[c];
			CellCount  *d = &renumbered_cells[c];

			*d = *s;
			d->rater = rater_map[s->rater];
			d->lo = item_map[s->lo];
			d->hi = item_map[s->hi];
			if (d->lo > d->hi)
			{
				d->lo = item_map[s->hi];
				d->hi = item_map[s->lo];
				d->win_lo = s->win_hi;
				d->win_hi = s->win_lo;
			}
		}
		sorted_cells = SortCells(renumbered_cells, nc, dst->n_items,
								 dst->n_raters);
		merged_cells = MergeCells(dst->mcxt, dst->cells, dst->n_cells,
								  sorted_cells, nc, &n);
		if (dst->cells)
			pfree(dst->cells);
		dst->cells = merged_cells;
		dst->n_cells = n;
		pfree(renumbered_cells);
		pfree(sorted_cells);
		pfree(rater_map);
	}
	if (src->has_options)
		ItemsStateSetOptions(dst, &src->opt);
	if (src->classes != 0)
		ItemsStateSetClasses(dst, src->classes);
	if (src->restarts != 0)
		ItemsStateSetRestarts(dst, src->restarts);
	dst->rows += src->rows;
	dst->skipped_null += src->skipped_null;
	dst->skipped_self += src->skipped_self;
	pfree(item_map);
}

/* Merge two partial states (parallel aggregation) */
Datum
btl_items_combinefn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext = AggContextOrError(fcinfo,
												 "btl_items_combinefn");
	ItemsState *s1 = PG_ARGISNULL(0) ? NULL :
		(ItemsState *) PG_GETARG_POINTER(0);
	ItemsState *s2 = PG_ARGISNULL(1) ? NULL :
		(ItemsState *) PG_GETARG_POINTER(1);

	if (s2 == NULL)
	{
		if (s1 == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(s1);
	}

	if (s1 == NULL)
		s1 = ItemsStateNew(aggcontext, s2->item_type.type,
						   s2->item_type.collation, s2->rater_type.type,
						   s2->rater_type.collation);
	ItemsStateMerge(s1, s2);

	PG_RETURN_POINTER(s1);
}

/* Raise the error for a partial state too large for a bytea */
static void
TooLargeToSend(int64 n_pairs)
{
	ereport(ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("btl_items partial state of %lld pairs is too large to "
					"pass between parallel workers", (long long) n_pairs),
			 errhint("Set max_parallel_workers_per_gather = 0 for this "
					 "query.")));
}

/* Append a string with its length to buf, bytes unconverted */
static void
SendText(StringInfo buf, const char *s)
{
	int			len = strlen(s);

	pq_sendint32(buf, len);
	pq_sendbytes(buf, s, len);
}

/* Read a string sent by SendText */
static char *
ReceiveText(StringInfo buf)
{
	int			len = pq_getmsgint(buf, 4);

	if (len < 0 || len > buf->len - buf->cursor)
		elog(ERROR, "malformed btl_items partial state");
	return pnstrdup(pq_getmsgbytes(buf, len), len);
}

/* Append the text forms of keys to buf */
static void
SendKeys(StringInfo buf, const KeyType *kt, const Datum *keys, int32 n)
{
	Oid			typoutput;
	bool		isvarlena;

	getTypeOutputInfo(kt->type, &typoutput, &isvarlena);
	pq_sendint32(buf, n);
	for (int32 i = 0; i < n; i++)
	{
		char	   *s = OidOutputFunctionCall(typoutput, keys[i]);

		SendText(buf, s);
		pfree(s);
	}
}

/* Serialize a partial state for transfer between processes */
Datum
btl_items_serializefn(PG_FUNCTION_ARGS)
{
	ItemsState *state = (ItemsState *) PG_GETARG_POINTER(0);
	const ItemsOptions *opt = &state->opt;
	bool		has_rater = OidIsValid(state->rater_type.type);
	StringInfoData buf;
	PairCount  *pairs;
	CellCount  *cells = NULL;
	int64		np,
				nc = 0;
	Size		payload;

	AggContextOrError(fcinfo, "btl_items_serializefn");
	pairs = StatePairs(state, CurrentMemoryContext, &np);
	if (has_rater)
		cells = StateCells(state, CurrentMemoryContext, &nc);
	payload = add_size(mul_size(np, sizeof(PairCount)),
					   mul_size(nc, sizeof(CellCount)));
	if (payload >= MaxAllocSize / 2)
		TooLargeToSend(np);

	pq_begintypsend(&buf);
	enlargeStringInfo(&buf, (int) payload + 128);
	pq_sendint32(&buf, state->item_type.type);
	pq_sendint32(&buf, state->item_type.collation);
	pq_sendint32(&buf, state->rater_type.type);
	pq_sendint32(&buf, state->rater_type.collation);
	pq_sendint32(&buf, state->classes);
	pq_sendint32(&buf, state->restarts);
	pq_sendint64(&buf, state->rows);
	pq_sendint64(&buf, state->skipped_null);
	pq_sendint64(&buf, state->skipped_self);
	pq_sendbyte(&buf, state->has_options);
	pq_sendfloat8(&buf, opt->prior);
	pq_sendint32(&buf, opt->ties);
	pq_sendbyte(&buf, opt->reference != NULL);
	if (opt->reference)
		SendText(&buf, opt->reference);
	pq_sendint32(&buf, opt->bootstrap);
	pq_sendint64(&buf, opt->seed);
	pq_sendfloat8(&buf, opt->confidence);

	SendKeys(&buf, &state->item_type, state->item_keys, state->n_items);
	pq_sendint64(&buf, np);
	pq_sendbytes(&buf, (const char *) pairs, sizeof(PairCount) * np);
	if (has_rater)
	{
		SendKeys(&buf, &state->rater_type, state->rater_keys,
				 state->n_raters);
		pq_sendint64(&buf, nc);
		pq_sendbytes(&buf, (const char *) cells, sizeof(CellCount) * nc);
	}
	if (buf.len >= MaxAllocSize - VARHDRSZ)
		TooLargeToSend(np);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* Read keys sent by SendKeys into a state's map, in the same numbering */
static void
ReceiveKeys(StringInfo buf, ItemsState *state, bool raters)
{
	const KeyType *kt = raters ? &state->rater_type : &state->item_type;
	Oid			typinput,
				typioparam;
	int32		n = pq_getmsgint(buf, 4);

	getTypeInputInfo(kt->type, &typinput, &typioparam);
	for (int32 i = 0; i < n; i++)
	{
		char	   *s = ReceiveText(buf);
		Datum		key = OidInputFunctionCall(typinput, s, typioparam, -1);
		int32		got = raters ? RaterIndex(state, key) :
			ItemIndex(state, key);

		if (got != i)
			elog(ERROR, "malformed btl_items partial state: repeated key");
		pfree(s);
	}
}

/* Number of records of size bytes the rest of buf announces and holds */
static int64
ReceiveCount(StringInfo buf, Size size)
{
	int64		n = pq_getmsgint64(buf);

	if (n < 0 || n > (int64) (buf->len - buf->cursor) / (int64) size)
		elog(ERROR, "malformed btl_items partial state");
	return n;
}

/*
 * Rebuild a partial state from its serialized form, in the current
 * (per-input-tuple) memory context: the combine function copies what it
 * keeps.
 */
Datum
btl_items_deserializefn(PG_FUNCTION_ARGS)
{
	bytea	   *bytes = PG_GETARG_BYTEA_PP(0);
	StringInfoData buf;
	ItemsState *state;
	ItemsOptions *opt;
	Oid			types[4];
	int64		n;

	AggContextOrError(fcinfo, "btl_items_deserializefn");
	buf.data = VARDATA_ANY(bytes);
	buf.len = VARSIZE_ANY_EXHDR(bytes);
	buf.maxlen = buf.len;
	buf.cursor = 0;

	for (int i = 0; i < 4; i++)
		types[i] = pq_getmsgint(&buf, 4);
	state = ItemsStateNew(CurrentMemoryContext, types[0], types[1],
						  types[2], types[3]);
	opt = &state->opt;
	state->classes = pq_getmsgint(&buf, 4);
	state->restarts = pq_getmsgint(&buf, 4);
	if (state->classes < 0 || state->classes > PRM_ITEM_CLASSES_MAX ||
		state->restarts < 0 ||
		state->restarts > PRM_ITEM_CLASSES_MAX_RESTARTS)
		elog(ERROR, "malformed btl_items partial state");
	state->rows = pq_getmsgint64(&buf);
	state->skipped_null = pq_getmsgint64(&buf);
	state->skipped_self = pq_getmsgint64(&buf);
	state->has_options = pq_getmsgbyte(&buf);
	opt->prior = pq_getmsgfloat8(&buf);
	opt->ties = (PrmTieModel) pq_getmsgint(&buf, 4);
	opt->reference = pq_getmsgbyte(&buf) ? ReceiveText(&buf) : NULL;
	opt->bootstrap = pq_getmsgint(&buf, 4);
	opt->seed = pq_getmsgint64(&buf);
	opt->confidence = pq_getmsgfloat8(&buf);

	/* the runs must be sorted, one record per key, numbers in range */
	ReceiveKeys(&buf, state, false);
	n = ReceiveCount(&buf, sizeof(PairCount));
	state->pairs = TempArray(n, sizeof(PairCount));
	pq_copymsgbytes(&buf, (char *) state->pairs, sizeof(PairCount) * n);
	for (int64 k = 0; k < n; k++)
	{
		const PairCount *pc = &state->pairs[k];

		if (pc->lo < 0 || pc->hi >= state->n_items || pc->lo >= pc->hi ||
			(k > 0 && PairKey(&state->pairs[k - 1]) >= PairKey(pc)))
			elog(ERROR, "malformed btl_items partial state");
	}
	state->n_pairs = n;

	if (OidIsValid(state->rater_type.type))
	{
		ReceiveKeys(&buf, state, true);
		n = ReceiveCount(&buf, sizeof(CellCount));
		state->cells = TempArray(n, sizeof(CellCount));
		pq_copymsgbytes(&buf, (char *) state->cells, sizeof(CellCount) * n);
		for (int64 c = 0; c < n; c++)
		{
			const CellCount *cc = &state->cells[c];

			if (cc->rater < 0 || cc->rater >= state->n_raters ||
				cc->lo < 0 || cc->hi >= state->n_items ||
				cc->lo >= cc->hi ||
				(c > 0 && CellOrder(&state->cells[c - 1], cc) >= 0))
				elog(ERROR, "malformed btl_items partial state");
		}
		state->n_cells = n;
	}
	pq_getmsgend(&buf);

	PG_RETURN_POINTER(state);
}

/* Keys in canonical order, for sorting */
typedef struct KeySortCtx
{
	const KeyType *kt;
	const Datum *keys;
	char	  **text;
	bool		by_type;
} KeySortCtx;

/* Order two key numbers by the type's sort order, else by text */
static int
CompareKeys(const void *a, const void *b, void *arg)
{
	const KeySortCtx *ctx = (const KeySortCtx *) arg;
	int32		i = *(const int32 *) a,
				j = *(const int32 *) b;

	if (ctx->by_type)
		return DatumGetInt32(FunctionCall2Coll(&ctx->kt->tc->cmp_proc_finfo,
											   ctx->kt->collation,
											   ctx->keys[i], ctx->keys[j]));
	return strcmp(ctx->text[i], ctx->text[j]);
}

/*
 * Text forms of keys, and their canonical numbering: rank[i] is the new
 * number of key i, order[r] the key with new number r.
 */
static void
CanonicalKeys(const KeyType *kt, const Datum *keys, int32 n, char ***text,
			  int32 **rank, int32 **order)
{
	Oid			typoutput;
	bool		isvarlena;
	KeySortCtx	ctx;

	getTypeOutputInfo(kt->type, &typoutput, &isvarlena);
	*text = palloc(sizeof(char *) * Max(n, 1));
	*rank = palloc(sizeof(int32) * Max(n, 1));
	*order = palloc(sizeof(int32) * Max(n, 1));
	for (int32 i = 0; i < n; i++)
	{
		(*text)[i] = OidOutputFunctionCall(typoutput, keys[i]);
		(*order)[i] = i;
	}
	ctx.kt = kt;
	ctx.keys = keys;
	ctx.text = *text;
	ctx.by_type = OidIsValid(kt->tc->cmp_proc);
	qsort_arg(*order, n, sizeof(int32), CompareKeys, &ctx);
	for (int32 r = 0; r < n; r++)
		(*rank)[(*order)[r]] = r;
}


/* Number of the pair (lo, hi) in a sorted run of n pairs */
static int64
FindPair(const PairCount *pairs, int64 n, int32 lo, int32 hi)
{
	uint64		key = ((uint64) lo << 32) | (uint32) hi;
	int64		a = 0,
				b = n - 1;

	while (a < b)
	{
		int64		mid = a + (b - a) / 2;

		if (PairKey(&pairs[mid]) < key)
			a = mid + 1;
		else
			b = mid;
	}
	if (n == 0 || PairKey(&pairs[a]) != key)
		elog(ERROR, "btl_items rater counts of a pair never compared");
	return a;
}

/*
 * Lay the rater cells out for the resampling of raters, in canonical
 * order: by rater, then by pair (pairs is the state's run, pos the
 * canonical number of each of its pairs, rank of each item).
 */
static void
ItemsFitCells(const ItemsState *state, const PairCount *pairs, int64 np,
			  const int32 *rank, const int32 *pos, ItemsFit *fit)
{
	int64		nc;
	CellCount  *cells = StateCells(state, CurrentMemoryContext, &nc);
	char	  **rtext;
	int32	   *rrank,
			   *rorder;
	int32	   *major = TempArray(nc, sizeof(int32));
	int32	   *minor = TempArray(nc, sizeof(int32));
	int64	   *order;
	int32	   *cr = TempArray(nc, sizeof(int32));
	int64	   *cp = TempArray(nc, sizeof(int64));
	double	   *cw = TempArray(3 * nc, sizeof(double));

	CanonicalKeys(&state->rater_type, state->rater_keys, state->n_raters,
				  &rtext, &rrank, &rorder);
	for (int64 c = 0; c < nc; c++)
	{
		major[c] = rrank[cells[c].rater];
		minor[c] = pos[FindPair(pairs, np, cells[c].lo, cells[c].hi)];
	}
	order = OrderByKeys(nc, major, minor, Max((int64) state->n_raters, np));
	for (int64 r = 0; r < nc; r++)
	{
		const CellCount *cc = &cells[order[r]];
		bool		swap = rank[cc->lo] > rank[cc->hi];

		cr[r] = major[order[r]];
		cp[r] = minor[order[r]];
		cw[r] = swap ? cc->win_hi : cc->win_lo;
		cw[nc + r] = swap ? cc->win_lo : cc->win_hi;
		cw[2 * nc + r] = cc->tie;
	}
	fit->rater_text = TempArray(state->n_raters, sizeof(char *));
	for (int32 r = 0; r < state->n_raters; r++)
		fit->rater_text[r] = rtext[rorder[r]];
	fit->rs.n_raters = state->n_raters;
	fit->rs.n_cells = nc;
	fit->rs.cell_rater = cr;
	fit->rs.cell_pair = cp;
	fit->rs.cell_win_i = cw;
	fit->rs.cell_win_j = cw + nc;
	fit->rs.cell_tie = cw + 2 * nc;
}

/* Canonical number of the reference item, or -1 without one */
static int
ItemsFitReference(const ItemsState *state, const int32 *rank)
{
	Oid			typinput,
				typioparam;
	Datum		key;
	KeyEntry   *entry;

	if (state->opt.reference == NULL)
		return -1;
	getTypeInputInfo(state->item_type.type, &typinput, &typioparam);
	key = OidInputFunctionCall(typinput, state->opt.reference, typioparam,
							   -1);
	entry = keymap_lookup(state->items, key);
	if (entry == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("reference item \"%s\" is not among the %d items "
						"compared", state->opt.reference, state->n_items)));
	return rank[entry->index];
}

/*
 * Lay the state's counts out for the core in canonical order: items in
 * sort order, pairs by (first, second) item, rater cells by rater.
 */
void
ItemsFitData(const ItemsState *state, ItemsFit *fit)
{
	int64		np;
	PairCount  *pairs = StatePairs(state, CurrentMemoryContext, &np);
	int32	   *rank,
			   *order;
	char	  **text;
	int32	   *first = TempArray(np, sizeof(int32));
	int32	   *second = TempArray(np, sizeof(int32));
	int64	   *sorted;
	int32	   *pos = TempArray(np, sizeof(int32));
	int32	   *ii = TempArray(np, sizeof(int32));
	int32	   *jj = TempArray(np, sizeof(int32));
	double	   *w = TempArray(6 * np, sizeof(double));
	PrmItemsProblem *prob = &fit->prob;

	fit->n_items = state->n_items;
	CanonicalKeys(&state->item_type, state->item_keys, state->n_items,
				  &text, &rank, &order);
	fit->item_text = TempArray(state->n_items, sizeof(char *));
	for (int32 r = 0; r < state->n_items; r++)
		fit->item_text[r] = text[order[r]];
	for (int64 k = 0; k < np; k++)
	{
		first[k] = Min(rank[pairs[k].lo], rank[pairs[k].hi]);
		second[k] = Max(rank[pairs[k].lo], rank[pairs[k].hi]);
	}
	sorted = OrderByKeys(np, first, second, state->n_items);

	/* the core's arrays: weights, then the rows behind them */
	fit->total = fit->tie_total = 0.0;
	for (int64 r = 0; r < np; r++)
	{
		int64		k = sorted[r];
		const PairCount *pc = &pairs[k];
		bool		swap = rank[pc->lo] > rank[pc->hi];

		pos[k] = (int32) r;
		ii[r] = first[k];
		jj[r] = second[k];
		w[r] = swap ? pc->win_hi : pc->win_lo;
		w[np + r] = swap ? pc->win_lo : pc->win_hi;
		w[2 * np + r] = pc->tie;
		w[3 * np + r] = swap ? pc->rows_hi : pc->rows_lo;
		w[4 * np + r] = swap ? pc->rows_lo : pc->rows_hi;
		w[5 * np + r] = pc->rows_tie;
		fit->total += pc->win_lo + pc->win_hi + pc->tie;
		fit->tie_total += pc->tie;
	}
	prob->n_items = state->n_items;
	prob->n_pairs = np;
	prob->item_i = ii;
	prob->item_j = jj;
	prob->win_i = w;
	prob->win_j = w + np;
	prob->tie = w + 2 * np;
	prob->prior = state->opt.prior;
	prob->ties = state->opt.ties;
	memset(&fit->rs, 0, sizeof(PrmItemsResample));
	fit->rs.rows_i = w + 3 * np;
	fit->rs.rows_j = w + 4 * np;
	fit->rs.rows_tie = w + 5 * np;

	if (OidIsValid(state->rater_type.type) && state->n_raters > 0)
		ItemsFitCells(state, pairs, np, rank, pos, fit);
	fit->reference = ItemsFitReference(state, rank);
}

/* Turn a solver status into an error, or a notice when merely unconverged */
static void
ItemsReportStatus(const ItemsFit *fit)
{
	switch (fit->res.status)
	{
		case PRM_OK:
			break;
		case PRM_NOT_CONVERGED:
			ereport(NOTICE,
					(errmsg("btl_items did not converge in %d iterations",
							fit->res.iterations),
					 errdetail("The gradient norm is %g.",
							   fit->res.grad_norm),
					 errhint("Raise pluralrm.max_iterations or the prior.")));
			break;
		case PRM_NO_INFORMATION:
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("no comparison has a positive weight")));
			break;
		case PRM_SEPARABLE:
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("some items won or lost every comparison with "
							"the rest, so their strengths without a prior "
							"are infinite"),
					 errdetail("Finite strengths without a prior need every "
							   "item to have beaten, and been beaten by, the "
							   "others through a chain of comparisons (ties "
							   "count both ways)."),
					 errhint("Pass a positive prior, for example "
							 "pluralrm.items_options(prior => 0.01).")));
			break;
		case PRM_NOT_POSITIVE_DEFINITE:
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("btl_items could not factor its Hessian")));
			break;
		case PRM_BAD_INPUT:
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("btl_items met a non-finite value while solving"),
					 errhint("Check the weights for extreme magnitudes.")));
			break;
	}
}

/* Milliseconds between two clock readings */
static double
ElapsedMs(const struct timespec *a, const struct timespec *b)
{
	return (b->tv_sec - a->tv_sec) * 1000.0 +
		(b->tv_nsec - a->tv_nsec) / 1e6;
}

/* Wins, losses and ties of every item, as recorded (weights) */
static void
ItemsFitRecord(ItemsFit *fit)
{
	const PrmItemsProblem *p = &fit->prob;

	fit->wins = palloc0(sizeof(double) * p->n_items);
	fit->losses = palloc0(sizeof(double) * p->n_items);
	fit->ties = palloc0(sizeof(double) * p->n_items);
	for (int64 k = 0; k < p->n_pairs; k++)
	{
		fit->wins[p->item_i[k]] += p->win_i[k];
		fit->losses[p->item_i[k]] += p->win_j[k];
		fit->wins[p->item_j[k]] += p->win_j[k];
		fit->losses[p->item_j[k]] += p->win_i[k];
		fit->ties[p->item_i[k]] += p->tie[k];
		fit->ties[p->item_j[k]] += p->tie[k];
	}
}

/* Resample, refit and take percentile intervals */
static void
ItemsFitBootstrap(const ItemsState *state, ItemsFit *fit)
{
	const PrmItemsProblem *p = &fit->prob;
	int			n = p->n_items;
	int			b = state->opt.bootstrap;
	double	   *draws;
	double	   *lo,
			   *hi;
	void	   *work;

	work = MemoryContextAllocHuge(CurrentMemoryContext,
								  PrmItemsBootstrapWorkspaceSize(p,
																 &fit->rs));
	draws = MemoryContextAllocHuge(CurrentMemoryContext,
								   mul_size(mul_size(b, n + 1),
											sizeof(double)));
	fit->boot_ok = PrmItemsBootstrap(p, &fit->rs, b, (uint64) state->opt.seed,
									 prm_max_iterations, fit->strength,
									 fit->log_nu, fit->component,
									 fit->n_components, fit->reference,
									 draws, work);
	pfree(work);
	if (fit->boot_ok < b)
		ereport(NOTICE,
				(errmsg("btl_items dropped %d of %d bootstrap resamples "
						"without a finite fit", b - fit->boot_ok, b),
				 errhint("A positive prior keeps every resample finite.")));
	if (fit->boot_ok == 0)
		return;

	lo = palloc(sizeof(double) * (n + 1));
	hi = palloc(sizeof(double) * (n + 1));
	PrmItemsPercentiles(draws, fit->boot_ok, n + 1, state->opt.confidence,
						lo, hi, (double *) palloc(sizeof(double) * b));
	fit->lower = lo;
	fit->upper = hi;
	fit->nu_lower = lo[n];
	fit->nu_upper = hi[n];
	pfree(draws);
}

/* Fit strengths, their errors and intervals for a state */
static void
ItemsFitRun(const ItemsState *state, ItemsFit *fit)
{
	const ItemsOptions *opt = &state->opt;
	PrmItemsProblem *p = &fit->prob;
	void	   *work;
	double	   *scratch;
	struct timespec t0,
				t1;

	memset(fit, 0, sizeof(ItemsFit));
	ItemsFitData(state, fit);
	ItemsFitRecord(fit);
	clock_gettime(CLOCK_MONOTONIC, &t0);

	PrmFitMemoryCheck(MemoryContextMemAllocated(state->mcxt, true),
					  PrmItemsWorkspaceSize(p->n_items, p->n_pairs),
					  "btl_items");
	work = MemoryContextAllocHuge(CurrentMemoryContext,
								  PrmItemsWorkspaceSize(p->n_items,
														p->n_pairs));
	fit->component = palloc(sizeof(int32) * p->n_items);
	fit->n_components = PrmItemsComponents(p, fit->component, work);
	if (fit->n_components > 1 && (opt->prior == 0 || fit->reference >= 0))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("the comparison graph has %d connected components, "
						"so strengths %s are not identified",
						fit->n_components,
						opt->prior == 0 ? "without a prior" :
						"relative to one reference item"),
				 errdetail("Items in different components were never "
						   "compared, directly or through other items."),
				 errhint("Pass a positive prior and no reference: each "
						 "component is then centred on its own, and "
						 "item_strengths reports its component.")));
	if (opt->ties == PRM_TIES_DAVIDSON && fit->tie_total > 0 &&
		fit->tie_total >= fit->total)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("every comparison is a tie, so the Davidson tie "
						"parameter nu is infinite"),
				 errhint("Use pluralrm.items_options(ties => 'half').")));

	fit->strength = palloc0(sizeof(double) * p->n_items);
	fit->log_nu = NAN;
	PrmItemsSolve(p, prm_max_iterations, fit->strength, &fit->log_nu, work,
				  &fit->res);
	ItemsReportStatus(fit);
	elog(DEBUG1, "btl_items: %d items, %lld pairs, %d iterations, "
		 "log-likelihood %.10g", p->n_items, (long long) p->n_pairs,
		 fit->res.iterations, fit->res.loglik);

	scratch = palloc(sizeof(double) * 2 * fit->n_components);
	PrmItemsIdentify(p->n_items, fit->strength, fit->component,
					 fit->n_components, fit->reference, scratch);
	fit->se = palloc(sizeof(double) * p->n_items);
	if (PrmItemsStandardErrors(p, fit->strength, fit->log_nu,
							   fit->component, fit->n_components,
							   fit->reference, fit->se, &fit->nu_se,
							   work) != PRM_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("btl_items could not invert its Hessian")));
	pfree(work);

	if (opt->bootstrap > 0)
		ItemsFitBootstrap(state, fit);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	fit->solve_ms = ElapsedMs(&t0, &t1);
}

/* A float8[] of n values */
static Datum
Float8Array(const double *v, int n)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		elems[i] = Float8GetDatum(v[i]);
	return PointerGetDatum(construct_array(elems, n, FLOAT8OID,
										   sizeof(float8), FLOAT8PASSBYVAL,
										   TYPALIGN_DOUBLE));
}

/* The pluralrm.items_model row of a fit */
static Datum
ItemsFitTuple(FunctionCallInfo fcinfo, const ItemsState *state,
			  const ItemsFit *fit)
{
	const ItemsOptions *opt = &state->opt;
	TupleDesc	tupdesc;
	Datum		values[MODEL_FIELDS];
	bool		nulls[MODEL_FIELDS] = {0};
	int			n = fit->n_items;
	bool		davidson = opt->ties == PRM_TIES_DAVIDSON;
	bool		boot = opt->bootstrap > 0 && fit->lower != NULL;
	Datum	   *elems;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "btl_items_finalfn must return a composite type");
	if (tupdesc->natts != MODEL_FIELDS)
		elog(ERROR, "pluralrm.items_model has %d fields, not %d",
			 tupdesc->natts, MODEL_FIELDS);
	tupdesc = BlessTupleDesc(tupdesc);

	values[0] = Int64GetDatum(state->rows);
	values[1] = Int64GetDatum(state->skipped_null + state->skipped_self);
	values[2] = Int32GetDatum(n);
	values[3] = Int64GetDatum(fit->prob.n_pairs);
	values[4] = Int32GetDatum(state->n_raters);
	nulls[4] = !OidIsValid(state->rater_type.type);
	values[5] = Int32GetDatum(fit->n_components);
	values[6] = Float8GetDatum(opt->prior);
	values[7] = CStringGetTextDatum(ItemsTieModelName(opt->ties));
	nulls[8] = fit->reference < 0;
	if (fit->reference >= 0)
		values[8] = CStringGetTextDatum(fit->item_text[fit->reference]);
	values[9] = Float8GetDatum(fit->res.has_nu ? exp(fit->log_nu) : 0.0);
	nulls[9] = !davidson;
	values[10] = Float8GetDatum(fit->nu_se);
	nulls[10] = !fit->res.has_nu;
	values[11] = Float8GetDatum(fit->nu_lower);
	values[12] = Float8GetDatum(fit->nu_upper);
	nulls[11] = nulls[12] = !davidson || !boot;
	values[13] = Float8GetDatum(fit->res.loglik);
	values[14] = Int32GetDatum(fit->res.iterations);
	values[15] = BoolGetDatum(fit->res.converged);
	values[16] = Int32GetDatum(opt->bootstrap);
	values[17] = Int32GetDatum(opt->bootstrap - fit->boot_ok);
	values[18] = CStringGetTextDatum(fit->rs.n_raters > 0 ? "raters" :
									 "comparisons");
	nulls[18] = opt->bootstrap == 0;
	values[19] = Int64GetDatum(opt->seed);
	values[20] = Float8GetDatum(opt->confidence);
	nulls[19] = nulls[20] = opt->bootstrap == 0;
	values[21] = Float8GetDatum(fit->solve_ms);

	elems = palloc(sizeof(Datum) * Max(n, 1));
	for (int i = 0; i < n; i++)
		elems[i] = CStringGetTextDatum(fit->item_text[i]);
	values[22] = PointerGetDatum(construct_array(elems, n, TEXTOID, -1,
												 false, TYPALIGN_INT));
	values[23] = Float8Array(fit->strength, n);
	values[24] = Float8Array(fit->se, n);
	nulls[25] = nulls[26] = !boot;
	if (boot)
	{
		values[25] = Float8Array(fit->lower, n);
		values[26] = Float8Array(fit->upper, n);
	}
	values[27] = Float8Array(fit->wins, n);
	values[28] = Float8Array(fit->losses, n);
	values[29] = Float8Array(fit->ties, n);
	elems = palloc(sizeof(Datum) * Max(n, 1));
	for (int i = 0; i < n; i++)
		elems[i] = Int32GetDatum(fit->component[i] + 1);
	values[30] = PointerGetDatum(construct_array(elems, n, INT4OID,
												 sizeof(int32), true,
												 TYPALIGN_INT));
	return HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls));
}

/*
 * Fit the strengths and return them as a pluralrm.items_model row.
 */
Datum
btl_items_finalfn(PG_FUNCTION_ARGS)
{
	ItemsState *state;
	ItemsFit	fit;

	AggContextOrError(fcinfo, "btl_items_finalfn");
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	state = (ItemsState *) PG_GETARG_POINTER(0);
	if (state->skipped_null > 0 || state->skipped_self > 0)
		ereport(NOTICE,
				(errmsg("btl_items skipped %lld comparisons with a NULL "
						"input and %lld of an item with itself",
						(long long) state->skipped_null,
						(long long) state->skipped_self)));
	if (state->n_pairs == 0 && state->n_pending == 0)
		PG_RETURN_NULL();

	ItemsFitRun(state, &fit);
	PG_RETURN_DATUM(ItemsFitTuple(fcinfo, state, &fit));
}
