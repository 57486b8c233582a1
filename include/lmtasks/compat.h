/* The store's compatibility level: which Meilisearch its answers look like. */
#ifndef LMTASKS_COMPAT_H
#define LMTASKS_COMPAT_H

#include <stdint.h>

#include "lmtasks/store.h"

/* The levels, as kept in the store (meta, "setting.compat", u64). */
enum compat_level {
	COMPAT_V025 = 0,	/* Meilisearch v0.25's tasks API: the default */
	COMPAT_V1 = 1,		/* Meilisearch v1: batchUid, canceledBy, error always; /batches */
};

#define COMPAT_KEY "setting.compat"

/* The level's name ("v0.25", "v1"), or NULL out of range. */
const char *compat_name(uint64_t level);

/* Parses "v0.25" or "v1"; returns 0, or LMT_EINVAL. */
int compat_parse(const char *name, uint64_t *level);

/* Reads the store's level in txn: COMPAT_V025 when the store keeps none (a store made
 * before the setting). */
int compat_read(store *s, MDB_txn *txn, enum compat_level *level);

/*
 * Checks the `types` values of a query against what compat v1 accepts: a Meilisearch
 * type, or one the store holds.  Returns 0; LMT_EINVAL with why filled with Meilisearch's
 * invalid_task_types message listing both; or a store error or ENOMEM.
 */
struct query;
struct query_error;
int compat_check_types(store *s, MDB_txn *txn, const struct query *q, struct query_error *why);

#endif
