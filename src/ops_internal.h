/* What the ops_*.c files share; not part of the API. */
#ifndef LMTASKS_OPS_INTERNAL_H
#define LMTASKS_OPS_INTERNAL_H

#include "lmtasks/ops.h"

/* store_write() after ending the expired leases in a transaction of their own. */
int ops_write(store *s, int (*fn)(store *s, MDB_txn *txn, void *ctx), void *ctx);

/* Copies t (whose strings may live in a transaction) into ot, replacing what ot held. */
int ops_task_copy(struct ops_task *ot, const struct task *t);

#endif
