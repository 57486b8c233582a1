/* The guarded read path the servers share: opening when the store appears, one snapshot per
 * request, a SIGBUS turned into a damaged store, and the check that finds it whole again. */
#include "config.h"

#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "lmtasks/clock.h"
#include "lmtasks/error.h"
#include "lmtasks/reader.h"
#include "lmtasks/store.h"
#include "tmpdb.h"

/* Each test gets a store "db" with one task, closed again: the reader opens its own. */
static void
setup(void)
{
	tmpdb_setup();
	tmpdb_add("books");
	store_close(s);
	s = NULL;
}

TestSuite(reader, .init = setup, .fini = tmpdb_teardown);

static reader *
make(enum reader_mode mode, const char *path, void (*abort_write)(store *))
{
	struct reader_config cfg = { "test_reader", path, NULL, mode, abort_write };
	reader *r = NULL;

	cr_assert_eq(reader_new(&cfg, &r), 0);
	return r;
}

/* Begins and ends one request; returns what reader_begin said. */
static int
request(reader *r, const char *param)
{
	MDB_txn *txn = NULL;
	struct reader_view v;
	int rc = reader_begin(r, param, &txn, &v);

	reader_end(r, rc == 0 ? txn : NULL);
	if (txn)
		mdb_txn_abort(txn);
	return rc;
}

Test(reader, snapshot_renewed_per_request)
{
	reader *r = make(READER_SHARED, tmpstore_path("db"), NULL);
	MDB_txn *txn = NULL;
	struct reader_view v;

	reader_start(r);
	cr_assert_eq(reader_begin(r, NULL, &txn, &v), 0);
	cr_assert_not_null(v.s);
	cr_assert_not_null(txn);
	cr_assert_str_eq(v.path, tmpstore_path("db"));
	MDB_txn *first = txn;
	reader_end(r, txn);
	/* The worker's transaction is kept, reset, and renewed at the next request. */
	cr_assert_eq(reader_begin(r, NULL, &txn, &v), 0);
	cr_assert_eq(txn, first);
	reader_end(r, txn);
	mdb_txn_abort(txn);
	reader_free(r);
}

Test(reader, missing_store_opened_when_it_appears)
{
	const char *path = tmpstore_path("later");
	reader *r = make(READER_SHARED, path, NULL);
	store *w = NULL;

	/* The wall clock stands still (the seam), so that making the store may take as long as
	 * the machine likes: looked for again only after READER_RETRY_US, not a microsecond
	 * before. */
	int64_t t = clock_now();
	tmpstore_clock_freeze(t);
	reader_start(r);
	cr_assert_eq(request(r, NULL), LMT_ENOSTORE);
	cr_assert_eq(store_open(path, STORE_CREATE, 0600, &w), 0);
	store_close(w);
	cr_assert_eq(request(r, NULL), LMT_ENOSTORE);
	tmpstore_clock_freeze(t + READER_RETRY_US - 1);
	cr_assert_eq(request(r, NULL), LMT_ENOSTORE, "a microsecond early");
	tmpstore_clock_freeze(t + READER_RETRY_US);
	cr_assert_eq(request(r, NULL), 0);
	reader_free(r);
}

Test(reader, owner_looks_again_at_every_request)
{
	const char *path = tmpstore_path("later");
	reader *r = make(READER_OWNER, path, NULL);
	store *w = NULL;

	cr_assert_eq(request(r, NULL), LMT_ENOSTORE);
	cr_assert_eq(store_open(path, STORE_CREATE, 0600, &w), 0);
	store_close(w);
	cr_assert_eq(request(r, NULL), 0);
	reader_free(r);
}

Test(reader, first_request_names_the_store)
{
	reader *r = make(READER_SHARED, NULL, NULL);
	MDB_txn *txn = NULL;
	struct reader_view v;

	cr_assert_null(reader_path(r));
	cr_assert_eq(request(r, tmpstore_path("db")), 0);
	cr_assert_str_eq(reader_path(r), tmpstore_path("db"));
	/* One responder serves one store: another one named is refused, and named back. */
	cr_assert_eq(reader_begin(r, "/elsewhere", &txn, &v), LMT_EINVAL);
	cr_assert_str_eq(v.path, "/elsewhere");
	cr_assert_null(v.s);
	reader_end(r, NULL);
	reader_free(r);
}

Test(reader, a_store_that_cannot_be_opened_fixes_nothing)
{
	reader *r = make(READER_SHARED, NULL, NULL);
	MDB_txn *txn = NULL;
	struct reader_view v;

	cr_assert_eq(reader_begin(r, "/nowhere/store", &txn, &v), LMT_ENOSTORE);
	cr_assert_str_eq(v.path, "/nowhere/store", "the 503 names the store the request wanted");
	reader_end(r, NULL);
	cr_assert_null(reader_path(r), "a store that cannot be opened fixes nothing");
	cr_assert_eq(request(r, "/nowhere/store"), LMT_ENOSTORE);
	/* Tried at once, not after the retry delay of the one that failed. */
	cr_assert_eq(request(r, tmpstore_path("db")), 0);
	cr_assert_str_eq(reader_path(r), tmpstore_path("db"));
	cr_assert_eq(request(r, "/nowhere/store"), LMT_EINVAL, "fixed: another is refused");
	cr_assert_eq(request(r, NULL), 0, "a request naming none reads the store fixed");
	reader_free(r);
}

Test(reader, the_default_first_then_a_store_named_is_refused)
{
	struct reader_config cfg = { "test_reader", NULL, tmpstore_path("db"), READER_SHARED,
	    NULL };
	reader *r = NULL;

	cr_assert_eq(reader_new(&cfg, &r), 0);
	cr_assert_eq(request(r, NULL), 0, "no parameter: the default");
	cr_assert_str_eq(reader_path(r), tmpstore_path("db"));
	/* Never answered silently from the default instead of the store it names. */
	cr_assert_eq(request(r, "/elsewhere"), LMT_EINVAL);
	reader_free(r);
}

static void
fault(void *arg)
{
	*(int *)arg = 1;
	raise(SIGBUS);
	*(int *)arg = 2;	/* never reached: the guard jumps out */
}

Test(reader, sigbus_fails_the_read_until_the_check)
{
	reader *r = make(READER_SHARED, tmpstore_path("db"), NULL);
	MDB_txn *txn = NULL;
	struct reader_view v;
	int reached = 0;

	reader_start(r);
	cr_assert_eq(reader_begin(r, NULL, &txn, &v), 0);
	cr_assert_eq(reader_guard(r, &v, fault, &reached), LMT_EDAMAGED);
	cr_assert_eq(reached, 1);
	cr_assert_null(v.s);
	cr_assert_eq(v.rc, LMT_EDAMAGED);
	cr_assert(strstr(v.why, "shrank while it was read") != NULL, "%s", v.why);
	reader_end(r, txn);
	/* Damaged from then on, for the stream thread too, until the check finds it whole. */
	cr_assert_eq(request(r, NULL), LMT_EDAMAGED);
	cr_assert_eq(reader_read(r, NULL, NULL), LMT_EDAMAGED);
	reader_check(r);
	cr_assert_eq(request(r, NULL), 0);
	mdb_txn_abort(txn);
	reader_free(r);
}

static int aborted;

static void
count_abort(store *st)
{
	cr_assert_not_null(st);
	aborted++;
}

Test(reader, owner_closes_after_a_fault_and_reopens)
{
	reader *r = make(READER_OWNER, tmpstore_path("db"), count_abort);
	struct reader_view v;
	int reached = 0;

	reader_start(r);
	cr_assert_eq(reader_begin(r, NULL, NULL, &v), 0);
	cr_assert_eq(reader_guard(r, &v, fault, &reached), LMT_EDAMAGED);
	cr_assert(strstr(v.why, "shrank while it was written") != NULL, "%s", v.why);
	reader_end(r, NULL);
	cr_assert_eq(aborted, 1);
	/* Whole again: opened at the next request. */
	cr_assert_eq(request(r, NULL), 0);
	reader_free(r);
}

Test(reader, check_finds_a_data_file_cut_short)
{
	reader *r = make(READER_SHARED, tmpstore_path("db"), NULL);
	MDB_txn *txn = NULL;
	struct reader_view v;
	static char data[1 << 20];

	reader_start(r);
	cr_assert_eq(request(r, NULL), 0);
	/* Cut short, then given back its bytes. */
	FILE *f = fopen(tmpstore_path("db/data.mdb"), "r+b");
	cr_assert_not_null(f);
	size_t size = fread(data, 1, sizeof(data), f);
	cr_assert(size > 8192 && size < sizeof(data));
	cr_assert_eq(truncate(tmpstore_path("db/data.mdb"), 8192), 0);
	reader_check(r);
	cr_assert_eq(reader_begin(r, NULL, &txn, &v), LMT_EDAMAGED);
	cr_assert(strstr(v.why, "data.mdb") != NULL, "%s", v.why);
	reader_end(r, NULL);
	rewind(f);
	cr_assert_eq(fwrite(data, 1, size, f), size);
	cr_assert_eq(fclose(f), 0);
	reader_check(r);
	cr_assert_eq(request(r, NULL), 0);
	if (txn)
		mdb_txn_abort(txn);
	reader_free(r);
}

static void
count_read(store *st, MDB_txn *txn, void *arg)
{
	cr_assert_not_null(st);
	cr_assert_not_null(txn);
	(*(int *)arg)++;
}

Test(reader, read_for_the_stream_thread)
{
	reader *r = make(READER_SHARED, tmpstore_path("db"), NULL);
	int n = 0;

	/* Not open yet: nothing to read (the stream thread starts after a request opened it). */
	cr_assert_eq(reader_read(r, count_read, &n), LMT_EDAMAGED);
	reader_start(r);
	cr_assert_eq(reader_read(r, count_read, &n), 0);
	cr_assert_eq(n, 1);
	reader_free(r);
}
