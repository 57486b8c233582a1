/* Batches in the write library: made when a command moves tasks out of `enqueued`,
 * kept up to date as their tasks finish. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lmtasks/error.h"
#include "ops_internal.h"

int
ops_batch_begin(store *s, MDB_txn *txn, int64_t now, struct ops_batch *ob)
{
	uint64_t uid;
	int rc;

	memset(ob, 0, sizeof(*ob));
	if ((rc = store_batch_next(s, txn, &uid)) != 0)
		return rc;
	if ((ob->names = malloc(2 * TBATCH_NAMES_MAX * sizeof(*ob->names))) == NULL)
		return ENOMEM;
	tbatch_init(&ob->b, uid, now, ob->names, ob->names + TBATCH_NAMES_MAX);
	return 0;
}

int
ops_batch_add(struct ops_batch *ob, struct task *t)
{
	t->has_batch = 1;
	t->batch_uid = ob->b.uid;
	return tbatch_add(&ob->b, t);
}

void
ops_batch_free(struct ops_batch *ob)
{
	free(ob->names);
	ob->names = NULL;
}

/* Encodes b and stores it under its uid. */
static int
put(store *s, MDB_txn *txn, const struct tbatch *b)
{
	size_t len = tbatch_size(b);
	void *buf = malloc(len);
	int rc;

	if (buf == NULL)
		return ENOMEM;
	len = tbatch_encode(b, buf);
	rc = store_batch_put(s, txn, b->uid, buf, len);
	free(buf);
	return rc;
}

int
ops_batch_put(store *s, MDB_txn *txn, struct ops_batch *ob, const char *strategy)
{
	int rc;

	if (strategy) {
		size_t n = strlen(strategy);
		if (n >= sizeof(ob->strategy))
			n = sizeof(ob->strategy) - 1;
		memcpy(ob->strategy, strategy, n);
		ob->b.strategy = (struct task_str){ ob->strategy, n };
	}
	tbatch_settle(&ob->b, ob->b.started_at);
	rc = put(s, txn, &ob->b);
	ops_batch_free(ob);
	return rc;
}

int
ops_batch_moved(store *s, MDB_txn *txn, const struct task *old, struct task *next,
    int64_t now)
{
	struct tbatch_count *names;
	struct tbatch b;
	const void *rec;
	size_t len;
	void *copy;
	int rc;

	if (!old->has_batch || old->status == next->status)
		return 0;
	if ((rc = store_batch_get(s, txn, old->batch_uid, &rec, &len)) != 0)
		return rc == MDB_NOTFOUND ? 0 : rc;	/* deleted with its tasks: nothing to count */
	/* The record is copied: putting it back may move the page it lies in. */
	names = malloc(2 * TBATCH_NAMES_MAX * sizeof(*names));
	copy = malloc(len);
	if (names == NULL || copy == NULL) {
		rc = ENOMEM;
		goto out;
	}
	memcpy(copy, rec, len);
	b.uid = old->batch_uid;
	if ((rc = tbatch_decode(copy, len, &b, names, names + TBATCH_NAMES_MAX)) != 0)
		goto out;
	if (next->status == TASK_ENQUEUED) {
		tbatch_remove(&b, old);
		tbatch_settle(&b, now);
		next->has_batch = 0;
		next->batch_uid = 0;
	} else {
		tbatch_move(&b, old->status, next->status, now);
	}
	rc = put(s, txn, &b);
out:
	free(copy);
	free(names);
	return rc;
}
