/*
 * comparisons.h
 *	  The transition state shared by the fit aggregates: difference vectors,
 *	  weights and, for per-user models, each comparison's user.
 */
#ifndef COMPARISONS_H
#define COMPARISONS_H

#include "postgres.h"

#include "fmgr.h"

/* Users seen by an aggregate: text keys with a hash index */
typedef struct PrmUsers
{
	int32		count;
	int32		cap;
	int64	   *offset;			/* count + 1 offsets into keys */
	char	   *keys;			/* concatenated key bytes */
	int64		keys_len;
	int64		keys_cap;
	int32	   *slots;			/* open addressing: user index + 1, or 0 */
	int32		nslots;
} PrmUsers;

/* Index of a user key, adding it when add is true; -1 if absent */
int32		PrmUsersLookup(PrmUsers *users, const char *key, int len,
						   bool add);

/* Text form of a user id argument, caching its output function */
char	   *PrmUserIdText(FunctionCallInfo fcinfo, int argno, Oid *type,
						  FmgrInfo *out, MemoryContext mcxt, int *len);

/* Options of a per-user model fit; the same on every row of a group */
typedef struct PrmFitOptions
{
	int32		k;				/* components or base rewards */
	int32		restarts;		/* mixture restarts */
	int64		seed;			/* mixture seed */
	double		prior_strength; /* factor prior precision multiplier */
	int64		locked;			/* factor: bit c set when c is locked */
} PrmFitOptions;

/* Comparisons collected by a fit aggregate */
typedef struct PrmRows
{
	int			d;				/* 0 until the first comparison */
	int64		n;
	int64		cap;
	int64		skipped;		/* comparisons with a NULL input */
	bool		has_l2;
	double		l2;
	double	   *z;				/* n x d difference vectors */
	double	   *weight;			/* n weights */
	int32	   *user;			/* n user indexes, or NULL */
	PrmUsers   *users;			/* NULL unless per-user */
	Oid			user_type;		/* type of the user ids, or InvalidOid */
	FmgrInfo	user_out;		/* its output function */
	bool		has_options;	/* options were given */
	PrmFitOptions options;
} PrmRows;

/* Argument positions of one aggregate call; -1 when absent */
typedef struct PrmRowArgs
{
	int			user;
	int			chosen;
	int			rejected;
	int			weight;
	int			l2;
} PrmRowArgs;

/* Create an empty state in the aggregate context */
PrmRows    *PrmRowsCreate(MemoryContext aggcontext, bool per_user,
						  double default_l2);

/* Add the comparison of one aggregate call */
void		PrmRowsAdd(PrmRows *rows, FunctionCallInfo fcinfo,
					   const PrmRowArgs *args, MemoryContext aggcontext);

/* Record the model options of one call; they must not change in a group */
void		PrmRowsSetOptions(PrmRows *rows, const PrmFitOptions *options);

/* Append the rows of src to dst (parallel combine) */
void		PrmRowsAppend(PrmRows *dst, const PrmRows *src,
						  MemoryContext aggcontext);

/* Serialize a state for transfer between processes */
bytea	   *PrmRowsSerialize(const PrmRows *rows);

/* Rebuild a serialized state in the aggregate context */
PrmRows    *PrmRowsDeserialize(bytea *bytes, MemoryContext aggcontext);

/* Renumber users in key order, so results do not depend on row order */
void		PrmRowsSortUsers(PrmRows *rows);

/* Key of user u as a text datum, of a fit or of a user table */
Datum		PrmUserKey(const PrmRows *rows, int32 u);
Datum		PrmUsersKey(const PrmUsers *users, int32 u);

/* Return the aggregate memory context or fail when not called as one */
MemoryContext PrmAggContext(FunctionCallInfo fcinfo, const char *fname);

/* Report skipped comparisons, the way every fit aggregate does */
void		PrmRowsNoticeSkipped(const PrmRows *rows, const char *fname);

#endif							/* COMPARISONS_H */
