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

/* A batch record read and decoded into b, in copy (the record is copied: putting it back
 * may move the page it lies in), with names for its counts; both freed by the caller. */
static int
load(store *s, MDB_txn *txn, uint64_t uid, struct tbatch *b, struct tbatch_count **names,
    void **copy)
{
	const void *rec;
	size_t len;
	int rc;

	*names = NULL;
	*copy = NULL;
	if ((rc = store_batch_get(s, txn, uid, &rec, &len)) != 0)
		return rc;
	*names = malloc(2 * TBATCH_NAMES_MAX * sizeof(**names));
	*copy = malloc(len);
	if (*names == NULL || *copy == NULL)
		return ENOMEM;
	memcpy(*copy, rec, len);
	b->uid = uid;
	return tbatch_decode(*copy, len, b, *names, *names + TBATCH_NAMES_MAX);
}

/* Puts b back, or deletes it when it holds no task any more. */
static int
keep_or_drop(store *s, MDB_txn *txn, const struct tbatch *b)
{
	return b->kept == 0 ? store_batch_del(s, txn, b->uid) : put(s, txn, b);
}

int
ops_batch_moved(store *s, MDB_txn *txn, const struct task *old, struct task *next,
    int64_t now, int failed_attempt)
{
	struct tbatch_count *names;
	struct tbatch b;
	void *copy;
	int rc;

	if (!old->has_batch || old->status == next->status)
		return 0;
	if (next->status == TASK_ENQUEUED) {
		/* Back in the queue, in no batch until it is claimed again. */
		next->has_batch = 0;
		next->batch_uid = 0;
	}
	if ((rc = load(s, txn, old->batch_uid, &b, &names, &copy)) != 0) {
		if (rc == MDB_NOTFOUND)
			rc = 0;	/* deleted with its tasks: nothing to count */
		goto out;
	}
	if (next->status == TASK_ENQUEUED && (failed_attempt || old->status == TASK_FAILED)) {
		/* The batch is the record of an attempt that failed: it keeps it as failed (a
		 * failed task's batch says so already), and the task no longer among those it
		 * holds.  Kept though it holds none then: a client may still ask for it. */
		if (old->status != TASK_FAILED)
			tbatch_move(&b, old->status, TASK_FAILED, now);
		if (b.kept != TBATCH_KEPT_UNKNOWN && b.kept > 0)
			b.kept--;
		rc = put(s, txn, &b);
	} else if (next->status == TASK_ENQUEUED) {
		tbatch_remove(&b, old);
		tbatch_settle(&b, now);
		/* Its last task gone back to the queue, the batch holds none. */
		rc = keep_or_drop(s, txn, &b);
	} else {
		tbatch_move(&b, old->status, next->status, now);
		rc = put(s, txn, &b);
	}
out:
	free(copy);
	free(names);
	return rc;
}

int
ops_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

int
ops_batch_forget(store *s, MDB_txn *txn, uint64_t *batch_uids, size_t n)
{
	struct tbatch_count *names;
	struct tbatch b;
	void *copy;
	int rc = 0;

	/* One read and one write per batch, however many of its tasks went. */
	qsort(batch_uids, n, sizeof(*batch_uids), ops_cmp_u64);
	for (size_t i = 0, j; i < n && rc == 0; i = j) {
		for (j = i + 1; j < n && batch_uids[j] == batch_uids[i]; j++)
			;
		if ((rc = load(s, txn, batch_uids[i], &b, &names, &copy)) == 0) {
			rc = tbatch_forget(&b, (uint32_t)(j - i));
			if (rc == LMT_EINVAL)
				/* Written by 0.2.0 since the sweep: the next delete sweeps again. */
				rc = store_meta_del(s, txn, OPS_BATCHES_KEPT);
			else
				rc = keep_or_drop(s, txn, &b);
		} else if (rc == MDB_NOTFOUND) {
			rc = 0;
		}
		free(copy);
		free(names);
	}
	return rc;
}

/* The sweep's state: the version-1 batches, in uid order, and their tasks counted. */
struct sweep {
	struct ops_uids v1;
	uint32_t *kept;
};

static int
find_v1(void *ctx, uint64_t uid, const void *rec, size_t len)
{
	struct sweep *sw = ctx;

	if (len == 0 || *(const unsigned char *)rec != 1)
		return 0;
	return ops_uids_add(&sw->v1, uid);
}

/* Counts every stored task under its batch, when that batch is one of sw's. */
static int
count_tasks(store *s, MDB_txn *txn, struct sweep *sw)
{
	store_iter *it;
	struct task t;
	uint64_t uid;
	int rc;

	if ((sw->kept = calloc(sw->v1.n, sizeof(*sw->kept))) == NULL)
		return ENOMEM;
	if ((rc = store_iter_open(s, txn, &it)) != 0)
		return rc;
	for (rc = store_iter_seek(it, STORE_SEQ_ALL, NULL, 0, 0, 0, &uid); rc == 0;
	    rc = store_iter_next(it, &uid)) {
		if ((rc = store_iter_get(it, &t)) != 0)
			break;
		if (!t.has_batch)
			continue;
		uint64_t *at = bsearch(&t.batch_uid, sw->v1.v, sw->v1.n, sizeof(*sw->v1.v), ops_cmp_u64);
		if (at)
			sw->kept[at - sw->v1.v]++;
	}
	store_iter_close(it);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int
ops_batch_sweep(store *s, MDB_txn *txn, uint64_t *dropped)
{
	struct sweep sw = { { NULL, 0, 0 }, NULL };
	struct tbatch_count *names;
	struct tbatch b;
	uint64_t done;
	void *copy;
	int rc;

	*dropped = 0;
	if ((rc = store_meta_get(s, txn, OPS_BATCHES_KEPT, &done)) != MDB_NOTFOUND)
		return rc;
	/* Collect first, change after: the walk must not see the batches change under it. */
	if ((rc = store_batch_walk(s, txn, 0, 0, find_v1, &sw)) != 0 ||
	    (sw.v1.n && (rc = count_tasks(s, txn, &sw)) != 0))
		goto out;
	for (size_t i = 0; i < sw.v1.n && rc == 0; i++) {
		if ((rc = load(s, txn, sw.v1.v[i], &b, &names, &copy)) == 0) {
			b.kept = sw.kept[i];
			*dropped += b.kept == 0;
			rc = keep_or_drop(s, txn, &b);
		}
		free(copy);
		free(names);
	}
	if (rc == 0)
		rc = store_meta_put(s, txn, OPS_BATCHES_KEPT, 1);
out:
	ops_uids_free(&sw.v1);
	free(sw.kept);
	return rc;
}
