/* The progress module: when the library calls back (every N items and at the end, never
 * for a store without a listener), and what store_add_many, store_check and ops_delete
 * report on a real store; the meter stays silent off a terminal. */
#include "config.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <lmdb.h>

#include "lmtasks/ops.h"
#include "lmtasks/progress.h"
#include "lmtasks/query.h"
#include "lmtasks/store.h"
#include "tmpdb.h"

/* What the listener heard: every call, the last one's values. */
struct heard {
	unsigned calls, finals;
	uint64_t done, total;
	char what[16];
	int in_order;
};

static void
listen(void *ctx, const char *what, uint64_t done, uint64_t total, int final)
{
	struct heard *h = ctx;

	if (h->calls && done < h->done)
		h->in_order = 0;
	h->calls++;
	h->finals += final != 0;
	h->done = done;
	h->total = total;
	snprintf(h->what, sizeof(h->what), "%s", what);
}

Test(progress, report_every_n_and_the_last)
{
	struct heard h = { .in_order = 1 };
	struct progress p = { listen, &h, 10 };

	for (uint64_t i = 0; i < 35; i++)
		progress_report(&p, "stored", i, 35, 0);
	cr_assert_eq(h.calls, 3, "10, 20, 30: %u calls", h.calls);	/* not at 0 */
	progress_report(&p, "stored", 35, 35, 1);
	cr_assert_eq(h.calls, 4);
	cr_assert_eq(h.finals, 1);
	cr_assert_eq(h.done, 35);
	cr_assert(h.in_order);
	progress_report(NULL, "stored", 10, 35, 1);		/* no listener: nothing */
	struct progress none = { NULL, NULL, 10 };
	progress_report(&none, "stored", 10, 35, 1);
	cr_assert_eq(h.calls, 4);
}

Test(progress, meter_off_a_terminal_writes_nothing)
{
	struct progress_meter m;
	struct progress p;
	int fds[2];

	cr_assert_eq(pipe(fds), 0);
	cr_assert_eq(progress_meter_open(&m, &p, fds[1], "tasks", 1), 0);
	cr_assert_null(p.fn);
	progress_report(&p, "stored", 1, 2, 0);
	progress_meter_close(&m);
	close(fds[1]);
	char buf[8];
	cr_assert_eq(read(fds[0], buf, sizeof(buf)), 0);
	close(fds[0]);
}


TestSuite(progress_store, .init = tmpdb_setup, .fini = tmpdb_teardown);

#define N 1000

Test(progress_store, enqueue_check_delete_report_to_the_store_listener)
{
	static struct task t[N];
	struct heard h = { .in_order = 1 };
	struct progress p = { listen, &h, 100 };
	struct ops_record_result r;
	uint64_t uids[N], checked, problems;
	struct query q;
	MDB_txn *txn;

	for (int i = 0; i < N; i++)
		task_init(&t[i], "movies", 6, "x", 1, "{}", 2);
	cr_assert_eq(ops_enqueue(s, t, N, NULL), 0);		/* no listener yet */
	store_set_progress(s, &p);
	cr_assert_eq(ops_enqueue(s, t, N, NULL), 0);
	cr_assert_str_eq(h.what, "stored");
	cr_assert_eq(h.calls, N / 100 - 1 + 1, "%u calls", h.calls);	/* 100..900, then 1000 */
	cr_assert(h.finals == 1 && h.done == N && h.total == N && h.in_order);

	memset(&h, 0, sizeof(h));
	h.in_order = 1;
	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	cr_assert_eq(store_check(s, txn, NULL, NULL, &checked, &problems), 0);
	cr_assert_eq(problems, 0, "%" PRIu64 " problems", problems);
	mdb_txn_abort(txn);
	cr_assert_str_eq(h.what, "checked");
	cr_assert(h.finals == 1 && h.done == 2 * N && h.total == 2 * N && h.in_order,
	    "%" PRIu64 "/%" PRIu64, h.done, h.total);

	for (int i = 0; i < N; i++)
		uids[i] = (uint64_t)i;
	cr_assert_eq(ops_cancel(s, uids, N, "?uids=…", &r), 0);
	ops_task_free(&r.out);
	memset(&h, 0, sizeof(h));
	h.in_order = 1;
	query_init(&q);
	cr_assert_eq(ops_delete(s, &q, 1, "?keep=1", &r), 0);
	ops_task_free(&r.out);
	/* Finished: the N canceled and the taskCancelation; the newest kept. */
	cr_assert_str_eq(h.what, "deleted");
	cr_assert(h.finals == 1 && h.done == N && h.total == N && h.in_order);

	store_set_progress(s, NULL);
	memset(&h, 0, sizeof(h));
	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	cr_assert_eq(store_check(s, txn, NULL, NULL, &checked, &problems), 0);
	cr_assert_eq(problems, 0, "%" PRIu64 " problems", problems);
	mdb_txn_abort(txn);
	cr_assert_eq(h.calls, 0);
}
