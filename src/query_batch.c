/* The query's filters applied to batches, as Meilisearch applies them: a batch matches a
 * status, type or index when one of its tasks does. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lmtasks/error.h"
#include "lmtasks/query.h"
#include "lmtasks/tbatch.h"

struct bwalk {
	store *s;
	const struct query *q;
	const struct task_str *allow;
	size_t nallow;
	uint64_t by_task[QUERY_LIST_MAX], by_cancel[QUERY_LIST_MAX];
	size_t ntask, ncancel;
	struct tbatch_count *names;
	int (*fn)(void *ctx, const struct tbatch *b);
	void *ctx;
	uint64_t total, first, next, bad;
	unsigned shown;
};

static int
in_u64(const uint64_t *v, size_t n, uint64_t x)
{
	for (size_t i = 0; i < n; i++) {
		if (v[i] == x)
			return 1;
	}
	return 0;
}

/* Whether one of b's counted names is in set (exact, or as a key's pattern). */
static int
any_name(const struct tbatch_count *v, size_t n, const struct task_str *set, size_t nset,
    int patterns)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < nset; k++) {
			if (patterns ? task_index_match(set[k], v[i].name) :
			    (set[k].len == v[i].name.len &&
			     memcmp(set[k].ptr, v[i].name.ptr, set[k].len) == 0))
				return 1;
		}
	}
	return 0;
}

static int
in_range(int64_t t, int64_t after, int64_t before)
{
	return t != 0 && t > after && t < before;
}

int
query_batch_match(const struct query *q, const struct task_str *allow, size_t nallow,
    const struct tbatch *b)
{
	const int64_t *a = q->after, *bf = q->before;

	if (q->empty)
		return 0;
	if (nallow && !any_name(b->indexes, b->nindexes, allow, nallow, 1))
		return 0;
	if (q->nbatches && !in_u64(q->batches, q->nbatches, b->uid))
		return 0;
	if (q->statuses) {
		int any = 0;
		for (int i = 0; i < TASK_NSTATUS; i++)
			any |= (q->statuses & (1u << i)) && b->status[i];
		if (!any)
			return 0;
	}
	if (q->ntypes && !any_name(b->types, b->ntypes, q->types, q->ntypes, 0))
		return 0;
	if (q->nindexes && !any_name(b->indexes, b->nindexes, q->indexes, q->nindexes, 0))
		return 0;
	if ((a[QUERY_ENQUEUED] != INT64_MIN || bf[QUERY_ENQUEUED] != INT64_MAX) &&
	    !in_range(b->enqueued_min, a[QUERY_ENQUEUED], bf[QUERY_ENQUEUED]) &&
	    !in_range(b->enqueued_max, a[QUERY_ENQUEUED], bf[QUERY_ENQUEUED]))
		return 0;
	if ((a[QUERY_STARTED] != INT64_MIN || bf[QUERY_STARTED] != INT64_MAX) &&
	    !in_range(b->started_at, a[QUERY_STARTED], bf[QUERY_STARTED]))
		return 0;
	if ((a[QUERY_FINISHED] != INT64_MIN || bf[QUERY_FINISHED] != INT64_MAX) &&
	    !in_range(b->finished_at, a[QUERY_FINISHED], bf[QUERY_FINISHED]))
		return 0;
	return 1;
}

static int
visit(void *ctx, uint64_t uid, const void *rec, size_t len)
{
	struct bwalk *w = ctx;
	const struct query *q = w->q;
	struct tbatch b;

	b.uid = uid;
	if (tbatch_decode(rec, len, &b, w->names, w->names + TBATCH_NAMES_MAX) != 0) {
		w->bad = uid;
		return LMT_ECORRUPT;
	}
	if (q->nuids && !in_u64(w->by_task, w->ntask, uid))
		return 0;
	if (q->ncanceled && !in_u64(w->by_cancel, w->ncancel, uid))
		return 0;
	if (!query_batch_match(q, w->allow, w->nallow, &b))
		return 0;
	w->total++;
	if (q->from != TASK_NO_UID && (q->reverse ? uid < q->from : uid > q->from))
		return 0;
	if (w->shown == q->limit) {
		if (w->next == TASK_NO_UID)
			w->next = uid;
		return 0;
	}
	if (w->shown++ == 0)
		w->first = uid;
	return w->fn(w->ctx, &b);
}

/* The batches that the uids and canceledBy filters name, through their tasks. */
static int
task_batches(struct bwalk *w, MDB_txn *txn)
{
	const struct query *q = w->q;
	struct task t;
	int rc;

	for (size_t i = 0; i < q->nuids; i++) {
		if ((rc = store_get(w->s, txn, q->uids[i], &t)) == MDB_NOTFOUND)
			continue;
		if (rc != 0)
			return rc;
		if (t.has_batch)
			w->by_task[w->ntask++] = t.batch_uid;
	}
	for (size_t i = 0; i < q->ncanceled; i++) {
		if ((rc = store_get(w->s, txn, q->canceled[i], &t)) == MDB_NOTFOUND)
			continue;
		if (rc != 0)
			return rc;
		if (t.has_batch && t.status == TASK_SUCCEEDED && t.type.len == 15 &&
		    memcmp(t.type.ptr, "taskCancelation", 15) == 0)
			w->by_cancel[w->ncancel++] = t.batch_uid;
	}
	return 0;
}

int
query_batch_page(store *s, MDB_txn *txn, const struct query *q, const struct task_str *allow,
    size_t nallow, int (*fn)(void *ctx, const struct tbatch *b), void *ctx,
    struct query_page *pg, uint64_t *bad)
{
	struct bwalk *w = calloc(1, sizeof(*w));
	int rc;

	if (w == NULL || (w->names = malloc(2 * TBATCH_NAMES_MAX * sizeof(*w->names))) == NULL) {
		free(w);
		return ENOMEM;
	}
	*w = (struct bwalk){ .s = s, .q = q, .allow = allow, .nallow = nallow, .fn = fn,
	    .ctx = ctx, .first = TASK_NO_UID, .next = TASK_NO_UID, .names = w->names };
	if ((rc = task_batches(w, txn)) == 0)
		rc = store_batch_walk(s, txn, q->reverse ? 0 : UINT64_MAX, !q->reverse, visit, w);
	*pg = (struct query_page){ w->total, w->first, w->next };
	*bad = w->bad;
	free(w->names);
	free(w);
	return rc;
}

int
query_batch_get(store *s, MDB_txn *txn, uint64_t uid, const struct task_str *allow,
    size_t nallow, int (*fn)(void *ctx, const struct tbatch *b), void *ctx)
{
	struct tbatch_count *names = malloc(2 * TBATCH_NAMES_MAX * sizeof(*names));
	struct tbatch b;
	struct query q;
	const void *rec;
	size_t len;
	int rc;

	if (names == NULL)
		return ENOMEM;
	query_init(&q);
	b.uid = uid;
	if ((rc = store_batch_get(s, txn, uid, &rec, &len)) == 0 &&
	    (rc = tbatch_decode(rec, len, &b, names, names + TBATCH_NAMES_MAX)) == 0)
		rc = query_batch_match(&q, allow, nallow, &b) ? fn(ctx, &b) : MDB_NOTFOUND;
	free(names);
	return rc;
}

struct pwalk {
	store *s;
	MDB_txn *txn;
	const struct tbatch *b;
	struct tbatch_progress *p;
	uint32_t left;		/* the batch's processing tasks not met yet */
};

static int
progress_visit(void *ctx, uint64_t uid)
{
	struct pwalk *w = ctx;
	struct task t;
	int rc;

	/* A record that does not decode is the task's answer to give (a 500 on its own
	 * route), not the batch's: it counts as reporting nothing. */
	if ((rc = store_get(w->s, w->txn, uid, &t)) == LMT_ECORRUPT || rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	if (!t.has_batch || t.batch_uid != w->b->uid)
		return 0;
	tbatch_progress_add(w->p, &t);
	/* Every one of the batch's processing tasks met: the rest are others'. */
	return --w->left == 0 ? MDB_NOTFOUND : 0;
}

int
query_batch_progress(store *s, MDB_txn *txn, const struct tbatch *b, struct tbatch_progress *p)
{
	struct pwalk w = { s, txn, b, p, b->status[TASK_PROCESSING] };
	int rc;

	tbatch_progress_init(p, b);
	if (w.left == 0)
		return 0;
	rc = store_status_walk(s, txn, TASK_PROCESSING, b->first_uid, b->last_uid,
	    progress_visit, &w);
	return rc == MDB_NOTFOUND ? 0 : rc;
}
