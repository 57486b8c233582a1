/* What the ops_*.c files share; not part of the API. */
#ifndef LMTASKS_OPS_INTERNAL_H
#define LMTASKS_OPS_INTERNAL_H

#include "lmtasks/ops.h"

/* store_write() after ending the expired leases in a transaction of their own. */
int ops_write(store *s, int (*fn)(store *s, MDB_txn *txn, void *ctx), void *ctx);

/*
 * Adds the store's own task of type (taskCancelation, taskDeletion) with details
 * {"matchedTasks":matched,"<what>":changed,"originalFilter":filter}, succeeded at now,
 * and copies it into out.
 */
int ops_record(store *s, MDB_txn *txn, const char *type, const char *what, uint64_t matched,
    uint64_t changed, const char *filter, int64_t now, struct ops_task *out);

/* Keeps as much disk room for the store as its pages take (at least OPS_RESERVE_MIN): its
 * file's free pages, and blocks allocated past its end for the rest; *reserve (may be
 * NULL) gets that size. */
#define OPS_RESERVE_MIN (UINT64_C(1) << 20)
int ops_keep_reserve(store *s, uint64_t *reserve);

#endif
