/* lmtasks retry: failed tasks back in the queue at once, named by uid or matched by a
 * filter, in one transaction. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lmtasks/clock.h"
#include "lmtasks/error.h"
#include "ops_internal.h"

/* The transaction changed no task: it is aborted rather than committed. */
#define NOTHING_WRITTEN MDB_NOTFOUND

/* Frees the results of a run: a replay (the map grew) or a failure starts clean. */
static void
results_clear(struct ops_retry *r)
{
	for (size_t i = 0; r->out && i < r->nout; i++)
		ops_task_free(&r->out[i]);
	free(r->out);
	free(r->rcs);
	free(r->out_uids);
	r->out = NULL;
	r->rcs = NULL;
	r->out_uids = NULL;
	r->nout = 0;
	r->retried = 0;
}

void
ops_retry_free(struct ops_retry *r)
{
	results_clear(r);
}

/* One task: failed -> enqueued, with one more attempt when it had none left; *why gets
 * the refusal of a task that cannot be retried (the run goes on without it). */
static int
retry_one(store *s, MDB_txn *txn, uint64_t uid, int64_t now, struct ops_task *out, int *why)
{
	struct task old, next;
	int rc;

	if ((rc = store_get(s, txn, uid, &old)) == MDB_NOTFOUND) {
		*why = MDB_NOTFOUND;
		return 0;
	}
	if (rc != 0)
		return rc;
	*why = old.status != TASK_FAILED ? LMT_ETRANSITION :
	    old.max_attempts && old.attempts >= TASK_ATTEMPTS_MAX ? LMT_ETOOBIG : 0;
	if (*why)
		return ops_task_copy(out, &old);
	next = old;
	ops_requeue(&next);
	next.not_before = 0;	/* at once */
	if (old.max_attempts == 0) {
		/* Its one attempt counts, so that its error is kept and its next failure is
		 * final: attempt 2 of 2. */
		next.attempts = 1;
		next.max_attempts = 2;
	} else if (old.attempts >= old.max_attempts) {
		next.max_attempts = (uint16_t)(old.attempts + 1);
	}
	if ((rc = ops_batch_moved(s, txn, &old, &next, now, 0)) != 0 ||
	    (rc = ops_task_copy(out, &next)) != 0)
		return rc;
	/* Written from the copy: the put may move the page next's strings lie in. */
	return store_replace(s, txn, &old, &out->t);
}

static int
collect_failed(void *ctx, const struct task *t)
{
	return t->status == TASK_FAILED ? ops_uids_add(ctx, t->uid) : 0;
}

/* The uids named, each once, in the order first named: named twice, a task retried by the
 * first would be refused by the second (enqueued by then). */
static int
named_once(const uint64_t *uids, size_t n, struct ops_uids *found)
{
	uint64_t *sorted = malloc(n * sizeof(*sorted));
	unsigned char *taken = calloc(n, 1);
	int rc = 0;

	if (sorted == NULL || taken == NULL) {
		rc = ENOMEM;
		goto out;
	}
	memcpy(sorted, uids, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), ops_cmp_u64);
	for (size_t i = 0; i < n && rc == 0; i++) {
		size_t lo = 0, hi = n;	/* the first place of uids[i] in sorted */
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (sorted[mid] < uids[i])
				lo = mid + 1;
			else
				hi = mid;
		}
		if (!taken[lo]) {
			taken[lo] = 1;
			rc = ops_uids_add(found, uids[i]);
		}
	}
out:
	free(sorted);
	free(taken);
	return rc;
}

/* The uids to retry: those named (each once), or the failed tasks q matches, oldest
 * first (whatever order q lists them in). */
static int
targets(store *s, MDB_txn *txn, struct ops_retry *r, struct ops_uids *found,
    const uint64_t **uids, size_t *n)
{
	store_iter *it;
	int rc;

	found->n = 0;
	if (r->uids) {
		rc = named_once(r->uids, r->n, found);
	} else if ((rc = store_iter_open(s, txn, &it)) == 0) {
		rc = query_walk(s, txn, it, r->q, collect_failed, found, &r->bad);
		store_iter_close(it);
		if (rc == 0 && found->n > 1)
			qsort(found->v, found->n, sizeof(*found->v), ops_cmp_u64);
	}
	*uids = found->v;
	*n = found->n;
	return rc;
}

struct retry_ctx {
	struct ops_retry *r;
	struct ops_uids found;
};

/* Found and changed in one transaction: no task fails or is retried in between. */
static int
retry_txn(store *s, MDB_txn *txn, void *ctx)
{
	struct retry_ctx *c = ctx;
	struct ops_retry *r = c->r;
	const uint64_t *uids;
	int64_t now = clock_now();
	size_t n;
	int rc;

	results_clear(r);
	if ((rc = targets(s, txn, r, &c->found, &uids, &n)) != 0)
		return rc;
	r->out = calloc(n ? n : 1, sizeof(*r->out));
	r->rcs = calloc(n ? n : 1, sizeof(*r->rcs));
	r->out_uids = calloc(n ? n : 1, sizeof(*r->out_uids));
	if (r->out == NULL || r->rcs == NULL || r->out_uids == NULL)
		return ENOMEM;
	r->nout = n;
	for (size_t i = 0; i < n; i++) {
		r->out_uids[i] = uids[i];
		if ((rc = retry_one(s, txn, uids[i], now, &r->out[i], &r->rcs[i])) != 0)
			return rc;
		r->retried += r->rcs[i] == 0;
	}
	return r->retried ? 0 : NOTHING_WRITTEN;
}

/* Every task named is answered for; the store's error alone fails the whole. */
int
ops_retry(store *s, struct ops_retry *r)
{
	struct retry_ctx c = { r, { 0 } };
	int rc;

	r->out = NULL;
	r->rcs = NULL;
	r->out_uids = NULL;
	r->nout = 0;
	r->retried = r->bad = 0;
	if (r->uids ? r->n == 0 || r->n > OPS_RETRY_MAX : r->q == NULL)
		return LMT_EINVAL;
	rc = ops_write(s, retry_txn, &c);
	if (rc == NOTHING_WRITTEN && r->retried == 0 && r->out)
		rc = 0;	/* nothing to retry: the answers stand, nothing was written */
	if (rc != 0)
		results_clear(r);
	ops_uids_free(&c.found);
	return rc;
}
