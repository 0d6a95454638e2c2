/*
 * items.h
 *	  The btl_items aggregate state and fit data, shared with the
 *	  btl_item_classes aggregate (item_classes.c), which counts comparisons
 *	  the same way and reuses the combine, serialize and deserialize
 *	  functions.
 */
#ifndef ITEMS_H
#define ITEMS_H

#include "postgres.h"

#include "fmgr.h"
#include "utils/typcache.h"

#include "prm_items.h"

/* How values of one key type (items or raters) are hashed and compared */
typedef struct KeyType
{
	Oid			type;
	Oid			collation;
	int16		typlen;
	bool		typbyval;
	bool		integer;		/* equal exactly when the Datums are */
	TypeCacheEntry *tc;
} KeyType;

struct keymap_hash;

/* One comparison not yet merged into the counts */
typedef struct PendingRow
{
	int32		lo;				/* items by dense number, lo < hi */
	int32		hi;
	int32		rater;			/* 0 without a rater column */
	int32		outcome;
	double		weight;
} PendingRow;

/* Counts of one unordered pair of items, lo < hi */
typedef struct PairCount
{
	int32		lo;
	int32		hi;
	double		win_lo;			/* weight of comparisons lo won */
	double		win_hi;
	double		tie;
	double		rows_lo;		/* rows behind each weight */
	double		rows_hi;
	double		rows_tie;
} PairCount;

/* Counts of one rater on one pair */
typedef struct CellCount
{
	int32		rater;
	int32		lo;
	int32		hi;
	double		win_lo;
	double		win_hi;
	double		tie;
} CellCount;

/* The settings of a fit, from a pluralrm.items_options value */
typedef struct ItemsOptions
{
	double		prior;
	PrmTieModel ties;
	char	   *reference;		/* text form of the reference, or NULL */
	int32		bootstrap;
	int64		seed;
	double		confidence;
} ItemsOptions;

/* Aggregate state of btl_items */
typedef struct ItemsState
{
	MemoryContext mcxt;			/* where the state and its arrays live */
	KeyType		item_type;
	KeyType		rater_type;		/* type InvalidOid without a rater column */
	struct keymap_hash *items;
	Datum	   *item_keys;		/* by dense number */
	int32		n_items;
	int32		item_cap;
	struct keymap_hash *raters;
	Datum	   *rater_keys;
	int32		n_raters;
	int32		rater_cap;
	PairCount  *pairs;			/* sorted by (lo, hi), one per pair */
	int64		n_pairs;
	CellCount  *cells;			/* sorted by (rater, lo, hi) */
	int64		n_cells;
	PendingRow *pending;		/* rows not yet in pairs and cells */
	int64		n_pending;
	int64		pending_cap;
	bool		has_options;
	ItemsOptions opt;
	struct varlena *options_seen;	/* last options value read, as bytes */
	int32		classes;		/* k of btl_item_classes, 0 for btl_items */
	int32		restarts;		/* EM restarts, 0 for the default */
	int64		rows;
	int64		skipped_null;
	int64		skipped_self;
} ItemsState;

/* Everything the final function computes */
typedef struct ItemsFit
{
	int32		n_items;
	char	  **item_text;		/* canonical order */
	char	  **rater_text;		/* canonical order, with a rater column */
	PrmItemsProblem prob;
	PrmItemsResample rs;
	int32	   *component;
	int			n_components;
	int			reference;		/* canonical number, or -1 */
	double		tie_total;
	double		total;
	double	   *strength;
	double	   *se;
	double	   *lower;			/* NULL without a bootstrap */
	double	   *upper;
	double	   *wins;
	double	   *losses;
	double	   *ties;
	double		log_nu;
	double		nu_se;
	double		nu_lower;
	double		nu_upper;
	int			boot_ok;
	PrmItemsResult res;
	double		solve_ms;
} ItemsFit;

/* Where the arguments of a transition call are; -1 when absent */
typedef struct ItemsArgs
{
	const char *fname;			/* aggregate name, for messages */
	int			weight;
	int			rater;
	int			classes;
	int			options;
	int			restarts;
} ItemsArgs;

/* Add one comparison to the state (the aggregate state is argument 0) */
ItemsState *ItemsTransition(FunctionCallInfo fcinfo, const ItemsArgs *args);

/* Lay a state's counts out for the core in canonical order */
void		ItemsFitData(const ItemsState *state, ItemsFit *fit);

/* Name of a tie model as shown in results and options */
const char *ItemsTieModelName(PrmTieModel ties);

#endif							/* ITEMS_H */
