/* Walks one sequence in uid order and renders a page with its total and next. */
#include "config.h"

#include "lmtasks/error.h"
#include "lmtasks/query.h"
#include "lmtasks/render.h"

void
query_init(struct query *q)
{
	q->limit = QUERY_LIMIT_DEFAULT;
	q->from = TASK_NO_UID;
	q->reverse = 0;
	q->index.ptr = NULL;
	q->index.len = 0;
}

int
query_run(store *s, MDB_txn *txn, store_iter *it, const struct query *q,
    struct printbuf *pb, uint64_t *bad)
{
	enum store_seq seq = q->index.ptr ? STORE_SEQ_INDEX : STORE_SEQ_ALL;
	uint64_t total, uid, first = TASK_NO_UID, next = TASK_NO_UID;
	uint64_t from = q->from != TASK_NO_UID ? q->from : q->reverse ? 0 : UINT64_MAX;
	unsigned n = 0;
	int rc;

	if ((rc = store_count(s, txn, seq, q->index.ptr, q->index.len, &total)) != 0)
		return rc;
	if ((rc = render_list_open(pb)) != 0)
		return rc;
	rc = store_iter_seek(it, seq, q->index.ptr, q->index.len, from, !q->reverse, &uid);
	while (rc == 0) {
		struct task t;
		if (n == q->limit) {
			next = uid;
			break;
		}
		if ((rc = store_get(s, txn, uid, &t)) != 0) {
			*bad = uid;
			return rc == MDB_NOTFOUND ? LMT_ECORRUPT : rc;
		}
		if (n == 0)
			first = uid;
		else if ((rc = render_comma(pb)) != 0)
			return rc;
		if ((rc = render_task(pb, &t)) != 0)
			return rc;
		n++;
		rc = store_iter_next(it, &uid);
	}
	if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	return render_list_close(pb, total, q->limit, first, next);
}
