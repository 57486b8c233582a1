/* What the ops_*.c files share; not part of the API. */
#ifndef LMTASKS_OPS_INTERNAL_H
#define LMTASKS_OPS_INTERNAL_H

#include "lmtasks/ops.h"

/* store_write() after ending the expired leases in a transaction of their own. */
int ops_write(store *s, int (*fn)(store *s, MDB_txn *txn, void *ctx), void *ctx);

#endif
