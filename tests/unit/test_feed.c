/* The change feed on a real store: one entry per changed task in the write's own
 * transaction, sequences 1, 2, 3, ..., pruning by count and by age, a pruned resume
 * refused, a task's latest change, and a store made before the feed existed. */
#include "config.h"

#include <inttypes.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>
#include <lmdb.h>

#include "lmtasks/error.h"
#include "lmtasks/feed.h"
#include "lmtasks/ops.h"
#include "lmtasks/store.h"
#include "tmpdb.h"


TestSuite(feed, .init = tmpdb_setup, .fini = tmpdb_teardown);

/* Enqueues n tasks of index "movies" in one transaction; returns the first uid. */
static uint64_t
add(size_t n)
{
	struct task t[64];

	cr_assert(n <= 64);
	for (size_t i = 0; i < n; i++)
		task_init(&t[i], "movies", 6, "documentAddition", 16, "{}", 2);
	cr_assert_eq(ops_enqueue(s, t, n, NULL), 0);
	return t[0].uid;
}

static int
change(enum ops_change_kind kind, uint64_t uid)
{
	struct ops_change ch = { .kind = kind, .uid = uid, .code = "boom", .message = "broke",
	    .etype = TASK_ERR_INTERNAL };
	struct ops_change_result r = { 0 };
	int rc = ops_change(s, &ch, &r);

	ops_task_free(&r.out);
	return rc;
}

/* Reads up to max entries after `after` into e; returns feed_iter_open's error or 0 with
 * *n set. */
static int
read_after(uint64_t after, struct feed_entry *e, size_t max, size_t *n)
{
	MDB_txn *txn;
	feed_iter *it;
	int rc;

	*n = 0;
	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	if ((rc = feed_iter_open(s, txn, after, &it)) == 0) {
		while (*n < max && (rc = feed_iter_next(it, &e[*n])) == 0)
			(*n)++;
		cr_assert(rc == 0 || rc == MDB_NOTFOUND, "feed_iter_next: %s", lmt_strerror(rc));
		rc = 0;
		feed_iter_close(it);
	}
	mdb_txn_abort(txn);
	return rc;
}

static void
bounds(uint64_t *first, uint64_t *last)
{
	MDB_txn *txn;

	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	cr_assert_eq(feed_bounds(s, txn, first, last), 0);
	mdb_txn_abort(txn);
}

static int
set_retention(const char *text)
{
	struct feed_retention r;
	MDB_txn *txn;
	int rc;

	cr_assert_eq(feed_retention_parse(text, &r), 0, "%s", text);
	cr_assert_eq(store_txn_begin(s, 0, &txn), 0);
	if ((rc = feed_retention_write(s, txn, &r)) == 0)
		return mdb_txn_commit(txn);
	mdb_txn_abort(txn);
	return rc;
}

Test(feed, empty_store_has_an_empty_log)
{
	uint64_t first, last;
	struct feed_entry e[4];
	size_t n;

	bounds(&first, &last);
	cr_expect_eq(first, 1);
	cr_expect_eq(last, 0);
	cr_expect_eq(read_after(0, e, 4, &n), 0);
	cr_expect_eq(n, 0);
}

Test(feed, one_entry_per_changed_task_in_order)
{
	struct feed_entry e[16];
	size_t n;
	uint64_t a = add(3), first, last;

	cr_assert_eq(change(OPS_START, a + 1), 0);
	cr_assert_eq(change(OPS_SUCCEED, a + 1), 0);
	cr_assert_eq(change(OPS_START, a), 0);
	cr_assert_eq(change(OPS_FAIL, a), 0);
	cr_assert_eq(read_after(0, e, 16, &n), 0);
	cr_assert_eq(n, 7);
	for (size_t i = 0; i < n; i++)
		cr_expect_eq(e[i].seq, i + 1, "entry %zu has sequence %llu", i,
		    (unsigned long long)e[i].seq);
	cr_expect_eq(e[0].uid, a);
	cr_expect_eq(e[2].uid, a + 2);
	cr_expect_eq(e[2].status, TASK_ENQUEUED);
	cr_expect_eq(e[3].uid, a + 1);
	cr_expect_eq(e[3].status, TASK_PROCESSING);
	cr_expect_eq(e[4].status, TASK_SUCCEEDED);
	cr_expect_eq(e[6].uid, a);
	cr_expect_eq(e[6].status, TASK_FAILED);
	cr_expect(e[6].at >= e[0].at && e[0].at > 0);
	bounds(&first, &last);
	cr_expect_eq(first, 1);
	cr_expect_eq(last, 7);
	/* After S: only what followed. */
	cr_assert_eq(read_after(5, e, 16, &n), 0);
	cr_assert_eq(n, 2);
	cr_expect_eq(e[0].seq, 6);
	/* Past the end: nothing, and no error. */
	cr_assert_eq(read_after(7, e, 16, &n), 0);
	cr_expect_eq(n, 0);
	cr_assert_eq(read_after(1000, e, 16, &n), 0);
	cr_expect_eq(n, 0);
}

Test(feed, refused_change_logs_nothing)
{
	struct feed_entry e[4];
	size_t n;
	uint64_t a = add(1);

	cr_expect_eq(change(OPS_SUCCEED, a), LMT_ETRANSITION);
	cr_expect_eq(change(OPS_START, a + 100), MDB_NOTFOUND);
	cr_assert_eq(read_after(0, e, 4, &n), 0);
	cr_expect_eq(n, 1);
}

Test(feed, cancel_and_delete_are_logged)
{
	struct feed_entry e[16];
	struct ops_record_result r = { 0 };
	struct query q;
	size_t n;
	uint64_t a = add(2), last, first;

	cr_assert_eq(ops_cancel(s, &a, 1, "uids=0", &r), 0);
	ops_task_free(&r.out);
	bounds(&first, &last);
	/* 2 added, the cancelation task added, the canceled task changed. */
	cr_assert_eq(last, 4);
	cr_assert_eq(read_after(2, e, 16, &n), 0);
	cr_assert_eq(n, 2);
	cr_expect(e[0].uid == a || e[1].uid == a);
	for (size_t i = 0; i < n; i++) {
		if (e[i].uid == a)
			cr_expect_eq(e[i].status, TASK_CANCELED);
	}
	memset(&r, 0, sizeof(r));
	query_init(&q);
	q.uids[0] = a;
	q.nuids = 1;
	cr_assert_eq(ops_delete(s, &q, 0, "uids=0", &r), 0);
	cr_expect_eq(r.changed, 1);
	ops_task_free(&r.out);
	cr_assert_eq(read_after(4, e, 16, &n), 0);
	int removed = 0;
	for (size_t i = 0; i < n; i++)
		removed += e[i].uid == a && e[i].status == FEED_REMOVED;
	cr_expect_eq(removed, 1);
}

Test(feed, pruned_by_count)
{
	struct feed_entry e[64];
	size_t n;
	uint64_t first, last;

	cr_assert_eq(set_retention("5"), 0);
	for (int i = 0; i < 10; i++)
		add(1);
	bounds(&first, &last);
	cr_expect_eq(last, 10);
	cr_expect_eq(first, 6);
	cr_expect_eq(read_after(3, e, 64, &n), LMT_EPRUNED);
	cr_expect_eq(read_after(4, e, 64, &n), LMT_EPRUNED);
	cr_expect_eq(read_after(5, e, 64, &n), 0);
	cr_expect_eq(n, 5);
	/* A batch larger than the retention: its sequences all allocated, the newest kept. */
	add(20);
	bounds(&first, &last);
	cr_expect_eq(last, 30);
	cr_expect_eq(first, 26);
	cr_expect_eq(read_after(25, e, 64, &n), 0);
	cr_expect_eq(n, 5);
	cr_expect_eq(e[0].seq, 26);
	/* A smaller retention prunes at once. */
	cr_assert_eq(set_retention("2"), 0);
	bounds(&first, &last);
	cr_expect_eq(first, 29);
	cr_expect_eq(last, 30);
}

Test(feed, pruned_by_age_keeps_the_newest)
{
	uint64_t first, last;
	struct timespec ts = { 1, 200000000L };

	cr_assert_eq(set_retention("1s"), 0);
	add(3);
	bounds(&first, &last);
	cr_expect_eq(first, 1);
	nanosleep(&ts, NULL);
	add(1);
	bounds(&first, &last);
	cr_expect_eq(first, 4, "first %llu", (unsigned long long)first);
	cr_expect_eq(last, 4);
	/* Even an old newest entry stays: the sequence goes on from it. */
	nanosleep(&ts, NULL);
	cr_assert_eq(set_retention("1s"), 0);
	bounds(&first, &last);
	cr_expect_eq(first, 4);
	cr_expect_eq(last, 4);
	add(1);
	bounds(&first, &last);
	cr_expect_eq(first, 5);
	cr_expect_eq(last, 5);
}

Test(feed, latest_change_of_a_task)
{
	MDB_txn *txn;
	uint64_t a = add(3), uids[3], seqs[3];

	cr_assert_eq(change(OPS_START, a), 0);	/* seq 4 */
	cr_assert_eq(change(OPS_START, a + 2), 0);	/* seq 5 */
	uids[0] = a;
	uids[1] = a + 1;
	uids[2] = a + 2;
	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	cr_assert_eq(feed_latest(s, txn, uids, 3, seqs), 0);
	cr_expect_eq(seqs[0], 4);
	cr_expect_eq(seqs[1], 2);
	cr_expect_eq(seqs[2], 5);
	mdb_txn_abort(txn);
	/* Pruned: first - 1, so that resuming there is still allowed. */
	cr_assert_eq(set_retention("2"), 0);
	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	cr_assert_eq(feed_latest(s, txn, uids, 3, seqs), 0);
	cr_expect_eq(seqs[1], 3);
	cr_expect_eq(seqs[0], 4);
	mdb_txn_abort(txn);
}

/* One position, named in the failure (the list is in an order the test checks). */
static void
expect_at(const struct feed_position *p, uint64_t uid, uint64_t seq)
{
	cr_expect_eq(p->uid, uid, "uid %" PRIu64 ", not %" PRIu64, p->uid, uid);
	cr_expect_eq(p->seq, seq, "task %" PRIu64 " at %" PRIu64 ", not %" PRIu64, uid, p->seq, seq);
}

Test(feed, current_positions_in_change_order)
{
	MDB_txn *txn;
	struct feed_position p[3];
	uint64_t a = add(3), uids[3];

	cr_assert_eq(change(OPS_START, a + 2), 0);	/* seq 4 */
	cr_assert_eq(change(OPS_START, a), 0);	/* seq 5 */
	uids[0] = a;
	uids[1] = a + 1;
	uids[2] = a + 2;
	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	cr_assert_eq(feed_current(s, txn, uids, 3, p), 0);
	expect_at(&p[0], a + 1, 2);
	expect_at(&p[1], a + 2, 4);
	expect_at(&p[2], a, 5);
	mdb_txn_abort(txn);
	/* Pruned to the newest change: the other two share first - 1, then go by uid. */
	cr_assert_eq(set_retention("1"), 0);
	uids[0] = a + 2;
	uids[1] = a + 1;
	uids[2] = a;
	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	cr_assert_eq(feed_current(s, txn, uids, 3, p), 0);
	expect_at(&p[0], a + 1, 4);
	expect_at(&p[1], a + 2, 4);
	expect_at(&p[2], a, 5);
	cr_assert_eq(feed_current(s, txn, uids, 0, p), 0);
	mdb_txn_abort(txn);
}

Test(feed, retention_text)
{
	struct feed_retention r;
	char buf[32];
	const char *good[] = { "1", "100000", "7d", "12h", "30m", "90s" };
	const char *bad[] = { "", "0", "0d", "-1", "7w", "7dd", "d", "1.5h", " 5",
	    "99999999999999999999" };

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct feed_retention back;
		cr_assert_eq(feed_retention_parse(good[i], &r), 0, "%s", good[i]);
		feed_retention_format(&r, buf);
		cr_expect_str_eq(buf, good[i]);
		feed_retention_decode(feed_retention_encode(&r), &back);
		cr_expect_eq(back.count, r.count);
		cr_expect_eq(back.age, r.age);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(feed_retention_parse(bad[i], &r), LMT_EINVAL, "'%s'", bad[i]);
	cr_assert_eq(feed_retention_parse("120m", &r), 0);
	feed_retention_format(&r, buf);
	cr_expect_str_eq(buf, "2h");
	feed_retention_decode(0, &r);
	cr_expect_eq(r.count, FEED_RETENTION_DEFAULT);
}

/* Drops the changes database, as a store made before the feed has none. */
static void
drop_changes(void)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;

	store_close(s);
	s = NULL;
	cr_assert_eq(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 16);
	cr_assert_eq(mdb_env_open(env, tmpstore_path("db"), 0, 0600), 0);
	cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	cr_assert_eq(mdb_dbi_open(txn, "changes", 0, &dbi), 0);
	cr_assert_eq(mdb_drop(txn, dbi, 1), 0);
	cr_assert_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

Test(feed, store_without_a_log)
{
	store *ro;
	MDB_txn *txn;
	feed_iter *it;
	struct feed_entry e[8];
	uint64_t first, last, uid = 0, seq;
	size_t n;

	add(2);
	drop_changes();
	/* A reader opens it and reads an empty log. */
	cr_assert_eq(store_open(tmpstore_path("db"), STORE_RDONLY, 0, &ro), 0);
	cr_assert_eq(store_txn_begin(ro, MDB_RDONLY, &txn), 0);
	cr_assert_eq(feed_bounds(ro, txn, &first, &last), 0);
	cr_expect_eq(last, 0);
	cr_assert_eq(feed_iter_open(ro, txn, 0, &it), 0);
	cr_expect_eq(feed_iter_next(it, &e[0]), MDB_NOTFOUND);
	feed_iter_close(it);
	cr_assert_eq(feed_latest(ro, txn, &uid, 1, &seq), 0);
	cr_expect_eq(seq, 0);
	mdb_txn_abort(txn);
	cr_assert_eq(feed_refresh(ro), 0);	/* still none: no error */
	/* A writer makes it; its first change is sequence 1. */
	cr_assert_eq(store_open(tmpstore_path("db"), 0, 0, &s), 0);
	change(OPS_START, 0);
	cr_assert_eq(read_after(0, e, 8, &n), 0);
	cr_assert_eq(n, 1);
	cr_expect_eq(e[0].seq, 1);
	cr_expect_eq(e[0].uid, 0);
	/* The reader that opened before sees it after feed_refresh(). */
	cr_assert_eq(feed_refresh(ro), 0);
	cr_assert_eq(store_txn_begin(ro, MDB_RDONLY, &txn), 0);
	cr_assert_eq(feed_bounds(ro, txn, &first, &last), 0);
	cr_expect_eq(last, 1);
	mdb_txn_abort(txn);
	store_close(ro);
}
