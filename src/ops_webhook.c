/* The webhook operations: add, delete, and the cursor's move after a delivery. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lmtasks/clock.h"
#include "lmtasks/error.h"
#include "lmtasks/feed.h"
#include "lmtasks/ops.h"
#include "lmtasks/timefmt.h"

/* The new webhook starts at the log's end, read in the transaction that adds it. */
static int
add_txn(store *s, MDB_txn *txn, void *ctx)
{
	struct webhook *w = ctx;
	uint64_t next = 1, first, last;
	int rc = store_meta_get(s, txn, WEBHOOK_NEXT_ID_KEY, &next);

	if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	if ((rc = feed_bounds(s, txn, &first, &last)) != 0)
		return rc;
	w->id = next;
	w->cursor = last;
	w->created_at = clock_now();
	if ((rc = webhook_put(s, txn, w)) != 0)
		return rc;
	return store_meta_put(s, txn, WEBHOOK_NEXT_ID_KEY, next + 1);
}

/* A webhook is configuration, not a task: no lease is reaped on its account. */
int
ops_webhook_add(store *s, struct webhook *w)
{
	w->delivered = w->missed = 0;
	w->delivered_at = w->missed_at = w->failing_since = 0;
	w->error = (struct task_str){ NULL, 0 };
	return store_write(s, add_txn, w);
}

static int
delete_txn(store *s, MDB_txn *txn, void *ctx)
{
	return webhook_del(s, txn, *(const uint64_t *)ctx);
}

/* Deleting a webhook ends its deliveries at notify's next round. */
int
ops_webhook_delete(store *s, uint64_t id)
{
	return store_write(s, delete_txn, &id);
}

/* Compares and moves the cursor, in one transaction. */
static int
record_txn(store *s, MDB_txn *txn, void *ctx)
{
	const struct ops_webhook_step *st = ctx;
	struct webhook w;
	unsigned char *copy;
	int rc = webhook_get(s, txn, st->id, &w);

	if (rc != 0)
		return rc;
	if (w.cursor != st->from)
		return LMT_ECLAIMED;
	/* The record is rewritten in place: its strings must not point into it meanwhile. */
	size_t len = webhook_encode(&w, NULL);
	if ((copy = malloc(len)) == NULL)
		return ENOMEM;
	webhook_encode(&w, copy);
	webhook_decode(st->id, copy, len, &w);
	if (st->error) {
		size_t n = strlen(st->error);
		w.error = (struct task_str){ st->error, n < WEBHOOK_ERROR_MAX ? n : WEBHOOK_ERROR_MAX };
		if (w.failing_since == 0)
			w.failing_since = st->now;
	} else {
		w.cursor = st->to;
		w.delivered += st->delivered;
		if (st->delivered)
			w.delivered_at = st->now;
		w.error = (struct task_str){ NULL, 0 };
		w.failing_since = 0;
	}
	if (st->missed) {
		w.missed += st->missed;
		w.missed_at = st->now;
	}
	rc = webhook_put(s, txn, &w);
	free(copy);
	return rc;
}

/* Only a 2xx moves the cursor: what it passes over was delivered at least once. */
int
ops_webhook_record(store *s, const struct ops_webhook_step *st)
{
	return store_write(s, record_txn, (void *)st);
}
