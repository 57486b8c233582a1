/* What every write operation shares: the write transaction's wrapper (the lease rule,
 * then the change, then the disk reserve), task copies for results, and the record task
 * with the removal that cancel, delete and maxTasks make. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lmtasks/clock.h"
#include "lmtasks/error.h"
#include "lmtasks/progress.h"
#include "lmtasks/render.h"
#include "lmtasks/retry.h"
#include "lmtasks/timefmt.h"
#include "ops_internal.h"

#define LEASE_CODE "task_lease_expired"
#define LEASE_CODE_LEN (sizeof(LEASE_CODE) - 1)

/* Results own their copies: one free releases every string. */
void
ops_task_free(struct ops_task *ot)
{
	free(ot->buf);
	ot->buf = NULL;
}

/* One buffer for every string, so the copy is freed with one call. */
int
ops_task_copy(struct ops_task *ot, const struct task *t)
{
	const struct task_str *src[] = { &t->index_uid, &t->type, &t->details, &t->error_code,
	    &t->error_message, &t->custom_metadata, &t->progress_step };
	struct task_str *dst[] = { &ot->t.index_uid, &ot->t.type, &ot->t.details,
	    &ot->t.error_code, &ot->t.error_message, &ot->t.custom_metadata,
	    &ot->t.progress_step };
	enum { NSTR = sizeof(src) / sizeof(src[0]) };
	size_t need = 1;
	char *buf, *p;

	_Static_assert(sizeof(dst) / sizeof(dst[0]) == NSTR, "every string copied");
	for (size_t i = 0; i < NSTR; i++)
		need += src[i]->ptr ? src[i]->len : 0;
	if ((buf = malloc(need)) == NULL)
		return ENOMEM;
	free(ot->buf);
	ot->buf = p = buf;
	ot->t = *t;
	for (size_t i = 0; i < NSTR; i++) {
		if (src[i]->ptr == NULL)
			continue;
		memcpy(p, src[i]->ptr, src[i]->len);
		dst[i]->ptr = p;
		p += src[i]->len;
	}
	return 0;
}

int
ops_lease_ended(const struct task *t)
{
	/* The flag marks both outcomes; a store made before failed tasks carried it
	 * is recognised by the error code the lease rule gives. */
	if (t->lease_expired)
		return t->status == TASK_ENQUEUED || t->status == TASK_FAILED;
	return t->status == TASK_FAILED && t->error_code.len == LEASE_CODE_LEN &&
	    memcmp(t->error_code.ptr, LEASE_CODE, LEASE_CODE_LEN) == 0;
}

int
ops_retry_left(const struct task *t)
{
	return t->max_attempts != 0 && t->attempts < t->max_attempts;
}

/* The backoff is drawn in the transaction that writes it: a replay draws again, harmless. */
int
ops_retry_at(store *s, MDB_txn *txn, const struct task *t, int64_t now, int64_t *at)
{
	struct settings set;
	uint32_t first = t->backoff_ms;
	int rc;

	if (first == 0) {	/* a policy written without its backoff: the store's */
		if ((rc = settings_read(s, txn, &set)) != 0)
			return rc;
		first = (uint32_t)set.v[SETTING_RETRY_BACKOFF];
	}
	int64_t wait = retry_backoff_us(first, t->attempts ? t->attempts : 1);
	*at = ops_time_after(now, wait);	/* no later than a record holds */
	return 0;
}

void
ops_requeue(struct task *next)
{
	next->status = TASK_ENQUEUED;
	next->started_at = next->finished_at = 0;
	next->lease_until = 0;
	next->lease_ms = 0;
	next->requeue = 0;
	next->lease_expired = 0;
}

/* Ends every lease that expired before now (the lease rule's one home). */
static int
reap(store *s, MDB_txn *txn, int64_t now, uint64_t *reaped)
{
	char msg[200], when[TIMEFMT_BUFSZ];
	struct task old, next;
	int64_t again;
	uint64_t uid;
	int rc;

	*reaped = 0;
	while ((rc = store_lease_first(s, txn, now, &uid)) == 0) {
		if ((rc = store_get(s, txn, uid, &old)) != 0)
			return rc == MDB_NOTFOUND ? LMT_ECORRUPT : rc;
		next = old;
		next.lease_until = 0;
		next.lease_expired = 1;
		task_progress_clear(&next);
		timefmt_rfc3339(old.lease_until, when);
		int ml = old.max_attempts && !ops_retry_left(&old) ?
		    snprintf(msg, sizeof(msg), "The task's lease expired at %s without a heartbeat, "
		    "on its last attempt (%u of %u).", when, old.attempts, old.max_attempts) :
		    snprintf(msg, sizeof(msg), "The task's lease expired at %s without a heartbeat.",
		    when);
		/* A task with a retry policy counts the attempt as failed: its policy, not the
		 * claim's requeue, says whether it comes back. */
		if (ops_retry_left(&old) || (old.requeue && !old.max_attempts)) {
			next.status = TASK_ENQUEUED;
			next.started_at = 0;
		} else {
			next.status = TASK_FAILED;
			next.finished_at = now;
		}
		if (old.max_attempts || next.status == TASK_FAILED) {
			next.error_type = TASK_ERR_INTERNAL;
			next.error_code = (struct task_str){ LEASE_CODE, LEASE_CODE_LEN };
			next.error_message = (struct task_str){ msg, (size_t)ml };
		}
		if (next.status == TASK_ENQUEUED && old.max_attempts) {
			if ((rc = ops_retry_at(s, txn, &old, now, &again)) != 0)
				return rc;
			next.not_before = again;
			next.requeue = 0;
			next.lease_ms = 0;
		}
		/* An attempt of a retry policy failed; a plain requeue only goes back. */
		if ((rc = ops_batch_moved(s, txn, &old, &next, now,
		    next.status == TASK_ENQUEUED && old.max_attempts)) != 0 ||
		    (rc = store_replace(s, txn, &old, &next)) != 0)
			return rc;
		++*reaped;
	}
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* The rules every write applies first, in its own transaction: leases that expired end,
 * then tasks whose time came become claimable (the schedule rule, OPS_PROMOTE_MAX of them
 * a write; a claim promotes the rest, ops_promote_due()), so that a claim in the same
 * transaction sees a task its lease put back or its delay held. */
struct rules {
	uint64_t reaped, promoted;
};

static int
rules(store *s, MDB_txn *txn, struct rules *r)
{
	int64_t now = clock_now();
	int rc = reap(s, txn, now, &r->reaped);

	return rc ? rc : store_promote(s, txn, now, OPS_PROMOTE_MAX, &r->promoted);
}

int
ops_promote_due(store *s, MDB_txn *txn, int64_t now)
{
	uint64_t moved;

	return store_promote(s, txn, now, UINT64_MAX, &moved);
}

/* The rules alone, in their own transaction: aborted when they changed nothing. */
static int
rules_txn(store *s, MDB_txn *txn, void *ctx)
{
	struct rules *r = ctx;
	int rc = rules(s, txn, r);

	/* Nothing expired or came due: abort rather than commit an empty transaction. */
	return rc == 0 && r->reaped == 0 && r->promoted == 0 ? MDB_NOTFOUND : rc;
}

/* Leases end on the next write of any process; this is that write on demand. */
int
ops_reap(store *s, uint64_t *reaped)
{
	struct rules r = { 0, 0 };
	int rc = store_write(s, rules_txn, &r);

	*reaped = r.reaped;
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* The room that keeps finishing and deleting possible on a full disk. */
int
ops_keep_reserve(store *s, uint64_t *reserve)
{
	struct store_stats st;
	MDB_txn *txn;
	uint64_t live = 0, want, inside;
	int rc;

	if ((rc = store_txn_begin(s, MDB_RDONLY, &txn)) != 0)
		return rc;
	if ((rc = store_live_bytes(s, txn, &live)) == 0)
		rc = store_stats(s, txn, &st);
	mdb_txn_abort(txn);
	if (rc)
		return rc;
	want = live < OPS_RESERVE_MIN ? OPS_RESERVE_MIN : live;
	if (reserve)
		*reserve = want;
	/* The file's free pages count: LMDB writes there before it grows the file. */
	inside = st.used_bytes > live ? st.used_bytes - live : 0;
	return want > inside ? store_reserve(s, want - inside) : 0;
}

/* The command's transaction: the rules first, then the change. */
struct write_ctx {
	int (*fn)(store *s, MDB_txn *txn, void *ctx);
	void *ctx;
	struct rules r;
};

static int
rules_then(store *s, MDB_txn *txn, void *ctx)
{
	struct write_ctx *w = ctx;
	int rc = rules(s, txn, &w->r);

	return rc ? rc : w->fn(s, txn, w->ctx);
}

/* Expired leases end (and due tasks are promoted) in the command's own transaction, so that
 * a command writes once; when the command is refused they happen all the same, in a
 * transaction of their own: a late succeed sees its lease end, and a claim that found
 * nothing for its filter does not leave a due task of another to be promoted again at
 * every look.  After a write the reserve follows the store's size, where the disk has room
 * for it. */
int
ops_write(store *s, int (*fn)(store *s, MDB_txn *txn, void *ctx), void *ctx)
{
	struct write_ctx w = { fn, ctx, { 0, 0 } };
	uint64_t n;
	int rc = store_write(s, rules_then, &w);

	if (rc != 0 && (w.r.reaped > 0 || w.r.promoted > 0))
		ops_reap(s, &n);
	else if (rc == 0)
		ops_keep_reserve(s, NULL);
	return rc;
}

/* The details are built with the renderer's string quoting, like every JSON we make. */
int
ops_record(store *s, MDB_txn *txn, const char *type, const char *what, uint64_t matched,
    uint64_t changed, const char *filter, int64_t now, struct ops_batch *ob,
    struct ops_task *out)
{
	struct printbuf *pb = printbuf_new();
	struct ops_batch own;
	struct task t;
	char why[200];
	int rc;

	if (ob == NULL && (rc = ops_batch_begin(s, txn, now, ob = &own)) != 0) {
		printbuf_free(pb);
		return rc;
	}
	if (pb == NULL) {
		ops_batch_free(ob);
		return ENOMEM;
	}
	if ((rc = render_filter_details(pb, matched, what, changed, filter)) != 0)
		goto out;
	task_init(&t, NULL, 0, type, strlen(type), pb->buf, (size_t)pb->bpos);
	t.status = TASK_SUCCEEDED;
	t.enqueued_at = t.started_at = t.finished_at = now;
	if ((rc = store_next_uid(s, txn, &t.uid)) != 0 || (rc = ops_batch_add(ob, &t)) != 0 ||
	    (rc = store_add(s, txn, &t)) != 0 || (rc = ops_task_copy(out, &t)) != 0)
		goto out;
	/* The batch's details are its record task's, as Meilisearch shows them. */
	ob->b.details = out->t.details;
	if (strcmp(type, "taskCancelation") == 0)
		ob->b.canceled_by = t.uid;
	snprintf(why, sizeof(why), "created batch containing only task with id %" PRIu64 " of type "
	    "`%s` that cannot be batched with any other task.", t.uid, type);
	rc = ops_batch_put(s, txn, ob, why);
	ob = NULL;
out:
	if (ob)
		ops_batch_free(ob);
	printbuf_free(pb);
	return rc;
}

/* Removes the tasks uids[0..n) (finished ones, found in txn) and their batches' share of
 * them; *removed counts them as they go. */
int
ops_remove_tasks(store *s, MDB_txn *txn, const uint64_t *uids, size_t n, uint64_t *removed)
{
	uint64_t *batches, dropped;
	size_t nb = 0;
	struct task t;
	int rc;

	*removed = 0;
	if ((rc = ops_batch_sweep(s, txn, &dropped)) != 0)
		return rc;
	if ((batches = malloc((n ? n : 1) * sizeof(*batches))) == NULL)
		return ENOMEM;
	for (size_t i = 0; i < n; i++) {
		progress_report(store_progress(s), "deleted", i, n, 0);
		if ((rc = store_get(s, txn, uids[i], &t)) != 0)
			break;
		if (t.has_batch)
			batches[nb++] = t.batch_uid;
		if ((rc = store_remove(s, txn, &t)) != 0)
			break;
		++*removed;
	}
	if (rc == 0 && n > 0)
		progress_report(store_progress(s), "deleted", n, n, 1);
	if (rc == 0)
		rc = ops_batch_forget(s, txn, batches, nb);
	free(batches);
	return rc == MDB_NOTFOUND ? LMT_ECORRUPT : rc;
}
