/* The store on a real LMDB environment, one temp directory per test: opening, adds,
 * status changes with their indexes and counts, iteration, pages, check, map growth,
 * and the details JSON the write side stores. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <json-c/json.h>
#include <lmdb.h>

#include "lmtasks/clock.h"
#include "lmtasks/details.h"
#include "lmtasks/error.h"
#include "lmtasks/query.h"
#include "lmtasks/render.h"
#include "lmtasks/store.h"
#include "lmtasks/task.h"
#include "tmpstore.h"

#define STR(s) ((struct task_str){ (s), sizeof(s) - 1 })
#define NOSTR ((struct task_str){ NULL, 0 })
#define T0 INT64_C(1628605757000000)
#define SEC INT64_C(1000000)

TestSuite(store, .init = tmpstore_setup, .fini = tmpstore_teardown);
TestSuite(details);

static store *
create_store(void)
{
	store *s = NULL;
	int rc = store_open(tmpstore_path("db"), STORE_CREATE, 0600, &s);

	cr_assert_eq(rc, 0, "store_open(CREATE): %s", lmt_strerror(rc));
	cr_assert_not_null(s);
	return s;
}

static struct task_str
cstr(const char *s)
{
	return (struct task_str){ s, s ? strlen(s) : 0 };
}

/* Adding one task through store_write. */
struct add_ctx {
	const char *index;	/* NULL: the store's own task */
	const char *type;
	const char *details;
	enum task_status status;
	uint64_t uid;
	int32_t priority;	/* the schedule: 0 and 0 for a plain task */
	int64_t not_before;
};

static int
add_fn(store *s, MDB_txn *txn, void *ctx)
{
	struct add_ctx *a = ctx;
	struct task t;

	memset(&t, 0, sizeof(t));
	t.status = a->status;
	t.enqueued_at = T0;
	if (a->status != TASK_ENQUEUED)
		t.started_at = t.finished_at = T0;
	t.canceled_by = TASK_NO_UID;
	t.index_uid = cstr(a->index);
	t.type = cstr(a->type);
	t.details = cstr(a->details ? a->details : "{}");
	t.priority = a->priority;
	t.not_before = a->not_before;
	int rc = store_add(s, txn, &t);
	a->uid = t.uid;
	return rc;
}

static uint64_t
add(store *s, const char *index, const char *type)
{
	struct add_ctx a = { index, type, NULL, TASK_ENQUEUED, TASK_NO_UID };
	int rc = store_write(s, add_fn, &a);

	cr_assert_eq(rc, 0, "store_add(%s, %s): %s", index, type, lmt_strerror(rc));
	return a.uid;
}

/* Moving one task to another status through store_write. */
struct move_ctx {
	uint64_t uid;
	enum task_status to;
	uint64_t canceled_by;
};

static int
move_fn(store *s, MDB_txn *txn, void *ctx)
{
	struct move_ctx *m = ctx;
	struct task old, next;
	int rc = store_get(s, txn, m->uid, &old);

	if (rc != 0)
		return rc;
	if (!task_transition_allowed(old.status, m->to))
		return LMT_ETRANSITION;
	next = old;
	next.status = m->to;
	if (m->to == TASK_PROCESSING)
		next.started_at = T0 + SEC;
	else
		next.finished_at = T0 + 2 * SEC;
	if (m->to == TASK_CANCELED)
		next.canceled_by = m->canceled_by;
	if (m->to == TASK_FAILED) {
		next.error_code = STR("internal");
		next.error_message = STR("it broke");
		next.error_type = TASK_ERR_INTERNAL;
	}
	if (m->to == TASK_SUCCEEDED)
		next.details = STR("{\"done\":true}");
	return store_replace(s, txn, &old, &next);
}

static int
move(store *s, uint64_t uid, enum task_status to)
{
	struct move_ctx m = { uid, to, 99 };

	return store_write(s, move_fn, &m);
}

static MDB_txn *
rtxn(store *s)
{
	MDB_txn *txn = NULL;
	int rc = store_txn_begin(s, MDB_RDONLY, &txn);

	cr_assert_eq(rc, 0, "store_txn_begin: %s", lmt_strerror(rc));
	return txn;
}

/* store_check's problem lines, kept for the assertions. */
struct problems {
	char lines[16][1024];
	int n;
};

static void
collect(void *ctx, const char *line)
{
	struct problems *p = ctx;

	if (p->n < 16)
		snprintf(p->lines[p->n], sizeof(p->lines[0]), "%s", line);
	p->n++;
}

static uint64_t
check(store *s, struct problems *p, uint64_t *checked)
{
	MDB_txn *txn = rtxn(s);
	uint64_t nchecked = 0, nproblems = UINT64_MAX;
	int rc = store_check(s, txn, collect, p, &nchecked, &nproblems);

	mdb_txn_abort(txn);
	cr_assert_eq(rc, 0, "store_check: %s", lmt_strerror(rc));
	cr_assert_eq(nproblems, (uint64_t)p->n, "the count and the callbacks agree");
	if (checked)
		*checked = nchecked;
	return nproblems;
}

static void
expect_clean(store *s, uint64_t want_checked)
{
	struct problems p = { .n = 0 };
	uint64_t checked = 0, n = check(s, &p, &checked);

	cr_assert_eq(n, 0, "store_check found %llu problems, first: %s", (unsigned long long)n,
	    p.lines[0]);
	cr_assert_eq(checked, want_checked, "checked %llu records", (unsigned long long)checked);
}

static int
find_line(const struct problems *p, const char *a, const char *b)
{
	for (int i = 0; i < p->n && i < 16; i++) {
		if (strstr(p->lines[i], a) && (b == NULL || strstr(p->lines[i], b)))
			return 1;
	}
	return 0;
}

/* Raw LMDB access to one of the store's databases, bypassing the store's API. */
static void
raw_begin(store *s, const char *db, MDB_txn **txn, MDB_dbi *dbi)
{
	int rc = mdb_txn_begin(store_env(s), NULL, 0, txn);

	cr_assert_eq(rc, 0, "mdb_txn_begin: %s", mdb_strerror(rc));
	rc = mdb_dbi_open(*txn, db, 0, dbi);
	cr_assert_eq(rc, 0, "mdb_dbi_open(%s): %s", db, mdb_strerror(rc));
}

static void
uid_key(unsigned char kb[8], uint64_t uid)
{
	for (int i = 7; i >= 0; i--, uid >>= 8)
		kb[i] = (unsigned char)uid;
}

/* Opening */

Test(store, open_missing_dir)
{
	store *s = NULL;
	struct stat st;

	cr_assert_eq(store_open(tmpstore_path("nope"), 0, 0, &s), LMT_ENOSTORE);
	cr_assert_eq(store_open(tmpstore_path("nope"), STORE_RDONLY, 0, &s), LMT_ENOSTORE);
	cr_assert_eq(stat(tmpstore_path("nope"), &st), -1, "opening must not create the directory");
	cr_assert_eq(store_open(tmpstore_path("nope/deeper"), STORE_RDONLY, 0, &s), LMT_ENOSTORE);
}

Test(store, open_empty_dir)
{
	store *s = NULL;

	cr_assert_eq(mkdir(tmpstore_path("empty"), 0700), 0);
	cr_assert_eq(store_open(tmpstore_path("empty"), 0, 0, &s), LMT_ENOSTORE);
	cr_assert_eq(store_open(tmpstore_path("empty"), STORE_RDONLY, 0, &s), LMT_ENOSTORE);
}

static void
write_file(const char *path, const char *text, size_t repeat)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	for (size_t i = 0; i < repeat; i++)
		fputs(text, f);
	cr_assert_eq(fclose(f), 0);
}

Test(store, open_non_lmdb_data)
{
	store *s = NULL;

	cr_assert_eq(mkdir(tmpstore_path("junk"), 0700), 0);
	write_file(tmpstore_path("junk/data.mdb"), "this is not an LMDB environment\n", 1000);
	cr_assert_eq(store_open(tmpstore_path("junk"), STORE_RDONLY, 0, &s), LMT_ENOSTORE);
	cr_assert_eq(store_open(tmpstore_path("junk"), 0, 0, &s), LMT_ENOSTORE);
}

Test(store, open_short_non_lmdb_data)
{
	store *s = NULL;

	cr_assert_eq(mkdir(tmpstore_path("junk"), 0700), 0);
	write_file(tmpstore_path("junk/data.mdb"), "hello\n", 1);
	cr_assert_eq(store_open(tmpstore_path("junk"), STORE_RDONLY, 0, &s), LMT_ENOSTORE);
	cr_assert_eq(store_open(tmpstore_path("junk"), 0, 0, &s), LMT_ENOSTORE);
}

/* A data.mdb cut short is damaged, found before a page is read, for readers and writers. */
Test(store, open_truncated_data_is_damaged)
{
	store *s = NULL;
	struct stat st;
	char want[300];

	cr_assert_eq(store_open(tmpstore_path("db"), STORE_CREATE, 0600, &s), 0);
	store_close(s);
	s = NULL;
	cr_assert_eq(stat(tmpstore_path("db/data.mdb"), &st), 0);
	cr_assert_gt(st.st_size, 8192);
	cr_assert_eq(truncate(tmpstore_path("db/data.mdb"), 8192), 0);
	cr_assert_eq(store_open(tmpstore_path("db"), STORE_RDONLY, 0, &s), LMT_EDAMAGED);
	snprintf(want, sizeof(want), "%s is 8192 bytes, shorter than the %lld bytes its meta "
	    "pages say it holds", tmpstore_path("db/data.mdb"), (long long)st.st_size);
	cr_assert_str_eq(store_damage_text(), want);
	cr_assert_eq(store_open(tmpstore_path("db"), 0, 0, &s), LMT_EDAMAGED);
	cr_assert_null(s);
	/* Cut inside its meta pages, LMDB's start still there: damaged, not "no store". */
	cr_assert_eq(truncate(tmpstore_path("db/data.mdb"), 100), 0);
	cr_assert_eq(store_open(tmpstore_path("db"), STORE_RDONLY, 0, &s), LMT_EDAMAGED);
	cr_assert_eq(truncate(tmpstore_path("db/data.mdb"), 0), 0);
	cr_assert_eq(store_open(tmpstore_path("db"), 0, 0, &s), LMT_EDAMAGED);
	snprintf(want, sizeof(want), "%s is 0 bytes, shorter than the 8192 bytes of its two meta "
	    "pages", tmpstore_path("db/data.mdb"));
	cr_assert_str_eq(store_damage_text(), want);
}

Test(store, open_lmdb_that_is_no_store)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = { 3, "key" }, v = { 5, "value" };
	store *s = NULL;

	cr_assert_eq(mkdir(tmpstore_path("other"), 0700), 0);
	cr_assert_eq(mdb_env_create(&env), 0);
	cr_assert_eq(mdb_env_open(env, tmpstore_path("other"), 0, 0600), 0);
	cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	cr_assert_eq(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
	cr_assert_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
	cr_assert_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	cr_assert_eq(store_open(tmpstore_path("other"), STORE_RDONLY, 0, &s), LMT_ENOSTORE);
	cr_assert_eq(store_open(tmpstore_path("other"), 0, 0, &s), LMT_ENOSTORE);
}

Test(store, create_then_reopen_read_only)
{
	store *s = create_store();
	MDB_txn *txn;
	struct task t;
	uint64_t next = 0;
	struct stat st;

	cr_assert_eq(add(s, "movies", "indexCreation"), 0);
	store_close(s);
	cr_assert_eq(stat(tmpstore_path("db/data.mdb"), &st), 0);

	s = NULL;
	cr_assert_eq(store_open(tmpstore_path("db"), STORE_RDONLY, 0, &s), 0);
	txn = rtxn(s);
	cr_assert_eq(store_get(s, txn, 0, &t), 0);
	cr_assert_eq(t.uid, 0);
	cr_assert_eq(t.type.len, 13);
	cr_assert(memcmp(t.type.ptr, "indexCreation", 13) == 0);
	cr_assert_eq(store_next_uid(s, txn, &next), 0);
	cr_assert_eq(next, 1);
	mdb_txn_abort(txn);
	/* A read-only store refuses a write transaction. */
	struct add_ctx a = { "movies", "indexUpdate", NULL, TASK_ENQUEUED, TASK_NO_UID };
	cr_assert_neq(store_write(s, add_fn, &a), 0);
	store_close(s);

	/* Reopened for writing without STORE_CREATE, the uids go on. */
	s = NULL;
	cr_assert_eq(store_open(tmpstore_path("db"), 0, 0, &s), 0);
	cr_assert_eq(add(s, "movies", "indexUpdate"), 1);
	store_close(s);
}

/* Adds and reads */

Test(store, add_allocates_uids_in_order)
{
	store *s = create_store();

	for (uint64_t i = 0; i < 5; i++) {
		MDB_txn *txn;
		uint64_t next = 0;
		cr_assert_eq(add(s, i % 2 ? "books" : "movies", "documentAddition"), i);
		txn = rtxn(s);
		cr_assert_eq(store_next_uid(s, txn, &next), 0);
		cr_assert_eq(next, i + 1);
		mdb_txn_abort(txn);
	}
	expect_clean(s, 5);
	store_close(s);
}

Test(store, fresh_store_is_empty)
{
	store *s = create_store();
	MDB_txn *txn = rtxn(s);
	uint64_t next = 99, n = 99, uid;
	struct task t;

	cr_assert_eq(store_next_uid(s, txn, &next), 0);
	cr_assert_eq(next, 0);
	cr_assert_eq(store_count(s, txn, STORE_SEQ_ALL, NULL, 0, &n), 0);
	cr_assert_eq(n, 0);
	cr_assert_eq(store_get(s, txn, 0, &t), MDB_NOTFOUND);
	cr_assert_eq(store_find_enqueued(s, txn, NOSTR, NOSTR, &uid), MDB_NOTFOUND);
	cr_assert_eq(store_index_exists(s, txn, STR("movies")), MDB_NOTFOUND);
	mdb_txn_abort(txn);
	expect_clean(s, 0);
	store_close(s);
}

Test(store, get_round_trip)
{
	store *s = create_store();
	struct add_ctx a = { "movies", "settingsUpdate", "{\"rankingRules\":[\"typo\"]}",
		TASK_ENQUEUED, TASK_NO_UID };
	MDB_txn *txn;
	struct task t;

	add(s, "other", "clearAll");
	cr_assert_eq(store_write(s, add_fn, &a), 0);
	cr_assert_eq(a.uid, 1);
	txn = rtxn(s);
	cr_assert_eq(store_get(s, txn, 1, &t), 0);
	cr_assert_eq(t.uid, 1);
	cr_assert_eq(t.status, TASK_ENQUEUED);
	cr_assert_eq(t.enqueued_at, T0);
	cr_assert_eq(t.started_at, 0);
	cr_assert_eq(t.finished_at, 0);
	cr_assert_eq(t.canceled_by, TASK_NO_UID);
	cr_assert_eq(t.index_uid.len, 6);
	cr_assert(memcmp(t.index_uid.ptr, "movies", 6) == 0);
	cr_assert_eq(t.type.len, 14);
	cr_assert(memcmp(t.type.ptr, "settingsUpdate", 14) == 0);
	cr_assert_eq(t.details.len, strlen("{\"rankingRules\":[\"typo\"]}"));
	cr_assert(memcmp(t.details.ptr, "{\"rankingRules\":[\"typo\"]}", t.details.len) == 0);
	cr_assert_eq(store_get(s, txn, 2, &t), MDB_NOTFOUND);
	cr_assert_eq(store_get(s, txn, TASK_NO_UID, &t), MDB_NOTFOUND);
	cr_assert_eq(store_index_exists(s, txn, STR("movies")), 0);
	cr_assert_eq(store_index_exists(s, txn, STR("other")), 0);
	cr_assert_eq(store_index_exists(s, txn, STR("movie")), MDB_NOTFOUND);
	mdb_txn_abort(txn);
	store_close(s);
}

Test(store, null_index_task)
{
	store *s = create_store();
	struct add_ctx a = { NULL, "taskCancelation", "{\"matchedTasks\":0}", TASK_SUCCEEDED,
		TASK_NO_UID };
	MDB_txn *txn;
	struct task t;
	uint64_t n = 99;

	add(s, "movies", "documentAddition");
	cr_assert_eq(store_write(s, add_fn, &a), 0);
	cr_assert_eq(a.uid, 1);
	txn = rtxn(s);
	cr_assert_eq(store_get(s, txn, 1, &t), 0);
	cr_assert_null(t.index_uid.ptr);
	cr_assert_eq(t.status, TASK_SUCCEEDED);
	cr_assert_eq(store_count(s, txn, STORE_SEQ_ALL, NULL, 0, &n), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(store_count(s, txn, STORE_SEQ_INDEX, "movies", 6, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert_eq(store_count_match(s, txn, NOSTR, TASK_SUCCEEDED, NOSTR, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert_eq(store_count_match(s, txn, NOSTR, -1, STR("taskCancelation"), &n), 0);
	cr_assert_eq(n, 1);
	mdb_txn_abort(txn);
	expect_clean(s, 2);
	store_close(s);
}

/* Status changes: records, indexes, queue and counts stay in step */

static uint64_t
count_status(store *s, MDB_txn *txn, enum task_status st)
{
	unsigned char b = (unsigned char)st;
	uint64_t n = 0;

	cr_assert_eq(store_count(s, txn, STORE_SEQ_STATUS, &b, 1, &n), 0);
	return n;
}

static uint64_t
count_match(store *s, MDB_txn *txn, const char *index, int status, const char *type)
{
	uint64_t n = 0;

	cr_assert_eq(store_count_match(s, txn, cstr(index), status, cstr(type), &n), 0);
	return n;
}

/* The oldest enqueued task for index and type (NULL: any), or TASK_NO_UID for none. */
static uint64_t
oldest(store *s, MDB_txn *txn, const char *index, const char *type)
{
	uint64_t uid = 12345;
	int rc = store_find_enqueued(s, txn, cstr(index), cstr(type), &uid);

	if (rc == MDB_NOTFOUND)
		return TASK_NO_UID;
	cr_assert_eq(rc, 0, "store_find_enqueued: %s", lmt_strerror(rc));
	return uid;
}

Test(store, replace_keeps_indexes_and_counts)
{
	store *s = create_store();
	MDB_txn *txn;
	struct task t;

	cr_assert_eq(add(s, "movies", "documentAddition"), 0);
	cr_assert_eq(add(s, "movies", "documentAddition"), 1);
	cr_assert_eq(add(s, "books", "settingsUpdate"), 2);
	cr_assert_eq(add(s, "movies", "settingsUpdate"), 3);

	txn = rtxn(s);
	cr_assert_eq(count_status(s, txn, TASK_ENQUEUED), 4);
	cr_assert_eq(count_status(s, txn, TASK_PROCESSING), 0);
	cr_assert_eq(oldest(s, txn, NULL, NULL), 0);
	cr_assert_eq(oldest(s, txn, "movies", NULL), 0);
	cr_assert_eq(oldest(s, txn, "books", NULL), 2);
	cr_assert_eq(oldest(s, txn, NULL, "settingsUpdate"), 2);
	cr_assert_eq(oldest(s, txn, "movies", "settingsUpdate"), 3);
	cr_assert_eq(oldest(s, txn, "movies", "documentAddition"), 0);
	cr_assert_eq(oldest(s, txn, "books", "documentAddition"), TASK_NO_UID);
	cr_assert_eq(oldest(s, txn, "nope", NULL), TASK_NO_UID);
	cr_assert_eq(oldest(s, txn, "movie", NULL), TASK_NO_UID, "an index prefix is no match");
	cr_assert_eq(oldest(s, txn, NULL, "clearAll"), TASK_NO_UID);
	cr_assert_eq(count_match(s, txn, "movies", -1, NULL), 3);
	cr_assert_eq(count_match(s, txn, "movies", TASK_ENQUEUED, "documentAddition"), 2);
	cr_assert_eq(count_match(s, txn, NULL, -1, "settingsUpdate"), 2);
	mdb_txn_abort(txn);

	cr_assert_eq(move(s, 0, TASK_PROCESSING), 0);
	txn = rtxn(s);
	cr_assert_eq(store_get(s, txn, 0, &t), 0);
	cr_assert_eq(t.status, TASK_PROCESSING);
	cr_assert_eq(t.started_at, T0 + SEC);
	cr_assert_eq(count_status(s, txn, TASK_ENQUEUED), 3);
	cr_assert_eq(count_status(s, txn, TASK_PROCESSING), 1);
	cr_assert_eq(oldest(s, txn, NULL, NULL), 1);
	cr_assert_eq(oldest(s, txn, "movies", NULL), 1);
	cr_assert_eq(oldest(s, txn, NULL, "documentAddition"), 1);
	cr_assert_eq(oldest(s, txn, "movies", "documentAddition"), 1);
	cr_assert_eq(count_match(s, txn, "movies", TASK_PROCESSING, NULL), 1);
	cr_assert_eq(count_match(s, txn, "movies", TASK_ENQUEUED, NULL), 2);
	mdb_txn_abort(txn);
	expect_clean(s, 4);

	cr_assert_eq(move(s, 1, TASK_PROCESSING), 0);
	cr_assert_eq(move(s, 2, TASK_CANCELED), 0);
	txn = rtxn(s);
	cr_assert_eq(oldest(s, txn, NULL, NULL), 3);
	cr_assert_eq(oldest(s, txn, "movies", NULL), 3);
	cr_assert_eq(oldest(s, txn, "movies", "documentAddition"), TASK_NO_UID);
	cr_assert_eq(oldest(s, txn, "books", NULL), TASK_NO_UID);
	cr_assert_eq(oldest(s, txn, NULL, "settingsUpdate"), 3);
	cr_assert_eq(store_get(s, txn, 2, &t), 0);
	cr_assert_eq(t.status, TASK_CANCELED);
	cr_assert_eq(t.canceled_by, 99);
	mdb_txn_abort(txn);
	expect_clean(s, 4);

	cr_assert_eq(move(s, 0, TASK_SUCCEEDED), 0);
	cr_assert_eq(move(s, 1, TASK_FAILED), 0);
	cr_assert_eq(move(s, 3, TASK_PROCESSING), 0);
	cr_assert_eq(move(s, 3, TASK_CANCELED), 0);
	txn = rtxn(s);
	cr_assert_eq(oldest(s, txn, NULL, NULL), TASK_NO_UID);
	cr_assert_eq(oldest(s, txn, "movies", NULL), TASK_NO_UID);
	cr_assert_eq(count_status(s, txn, TASK_ENQUEUED), 0);
	cr_assert_eq(count_status(s, txn, TASK_PROCESSING), 0);
	cr_assert_eq(count_status(s, txn, TASK_SUCCEEDED), 1);
	cr_assert_eq(count_status(s, txn, TASK_FAILED), 1);
	cr_assert_eq(count_status(s, txn, TASK_CANCELED), 2);
	cr_assert_eq(count_match(s, txn, NULL, -1, NULL), 4);
	cr_assert_eq(count_match(s, txn, "movies", -1, NULL), 3);
	cr_assert_eq(count_match(s, txn, "movies", TASK_CANCELED, NULL), 1);
	cr_assert_eq(count_match(s, txn, NULL, TASK_CANCELED, NULL), 2);
	cr_assert_eq(count_match(s, txn, NULL, TASK_CANCELED, "settingsUpdate"), 2);
	cr_assert_eq(count_match(s, txn, "books", TASK_CANCELED, "settingsUpdate"), 1);
	cr_assert_eq(count_match(s, txn, "movies", TASK_ENQUEUED, NULL), 0);
	cr_assert_eq(store_get(s, txn, 0, &t), 0);
	cr_assert_eq(t.status, TASK_SUCCEEDED);
	cr_assert_eq(t.details.len, 13);
	cr_assert(memcmp(t.details.ptr, "{\"done\":true}", 13) == 0);
	cr_assert_eq(store_get(s, txn, 1, &t), 0);
	cr_assert_eq(t.status, TASK_FAILED);
	cr_assert_eq(t.error_code.len, 8);
	cr_assert(memcmp(t.error_code.ptr, "internal", 8) == 0);
	cr_assert_eq(t.error_message.len, 8);
	cr_assert(memcmp(t.error_message.ptr, "it broke", 8) == 0);
	struct store_stats st;
	cr_assert_eq(store_stats(s, txn, &st), 0);
	cr_assert_eq(st.tasks, 4);
	cr_assert_eq(st.next_uid, 4);
	cr_assert_eq(st.indexes, 2);
	cr_assert_eq(st.by_status[TASK_CANCELED], 2);
	cr_assert_eq(st.by_status[TASK_ENQUEUED], 0);
	mdb_txn_abort(txn);
	expect_clean(s, 4);
	store_close(s);
}

Test(store, refused_transition_changes_nothing)
{
	store *s = create_store();
	MDB_txn *txn;
	struct task t;

	add(s, "movies", "documentAddition");
	cr_assert_eq(move(s, 0, TASK_SUCCEEDED), LMT_ETRANSITION);
	cr_assert_eq(move(s, 0, TASK_CANCELED), 0);
	cr_assert_eq(move(s, 0, TASK_PROCESSING), LMT_ETRANSITION);
	txn = rtxn(s);
	cr_assert_eq(store_get(s, txn, 0, &t), 0);
	cr_assert_eq(t.status, TASK_CANCELED);
	mdb_txn_abort(txn);
	expect_clean(s, 1);
	store_close(s);
}

static int
replace_other_uid_fn(store *s, MDB_txn *txn, void *ctx)
{
	struct task old, next;
	int rc;

	(void)ctx;
	if ((rc = store_get(s, txn, 0, &old)) != 0)
		return rc;
	next = old;
	next.uid = 1;
	return store_replace(s, txn, &old, &next);
}

Test(store, replace_refuses_another_uid)
{
	store *s = create_store();

	add(s, "movies", "documentAddition");
	add(s, "movies", "documentAddition");
	cr_assert_eq(store_write(s, replace_other_uid_fn, NULL), LMT_EINVAL);
	expect_clean(s, 2);
	store_close(s);
}

/* Iteration */

/* Walks seq from `from` and returns the number of uids written to out. */
static size_t
walk(store_iter *it, enum store_seq seq, const char *key, uint64_t from, int descending,
    uint64_t *out, size_t max)
{
	size_t n = 0, keylen = key ? strlen(key) : 0;
	uint64_t uid = 0;
	int rc = store_iter_seek(it, seq, key, keylen, from, descending, &uid);

	while (rc == 0) {
		cr_assert(n < max, "the walk goes on past %zu uids", max);
		out[n++] = uid;
		rc = store_iter_next(it, &uid);
	}
	cr_assert_eq(rc, MDB_NOTFOUND, "walk ended with %s", lmt_strerror(rc));
	return n;
}

static void
expect_walk(store_iter *it, enum store_seq seq, const char *key, uint64_t from, int descending,
    const uint64_t *want, size_t nwant)
{
	uint64_t got[64];
	size_t n = walk(it, seq, key, from, descending, got, 64);
	char gs[512] = "", ws[512] = "";

	for (size_t i = 0; i < n; i++)
		snprintf(gs + strlen(gs), sizeof(gs) - strlen(gs), " %llu", (unsigned long long)got[i]);
	for (size_t i = 0; i < nwant; i++)
		snprintf(ws + strlen(ws), sizeof(ws) - strlen(ws), " %llu", (unsigned long long)want[i]);
	cr_assert(n == nwant && (n == 0 || memcmp(got, want, n * sizeof(*got)) == 0),
	    "seq %d key %s from %llu %s: got [%s ], want [%s ]", (int)seq, key ? key : "-",
	    (unsigned long long)from, descending ? "desc" : "asc", gs, ws);
}

#define WALK(it, seq, key, from, desc, ...) do {				\
		static const uint64_t want_[] = { __VA_ARGS__ };		\
		expect_walk((it), (seq), (key), (from), (desc), want_ + 1,	\
		    sizeof(want_) / sizeof(want_[0]) - 1);			\
	} while (0)
/* The first element of __VA_ARGS__ is a placeholder (so an empty walk is `WALK(..., 0)`). */

Test(store, iter_all_with_gaps)
{
	store *s = create_store();
	MDB_txn *txn;
	MDB_dbi dbi;
	store_iter *it;

	for (int i = 0; i < 10; i++)
		add(s, "movies", "documentAddition");
	/* Punch holes in the uid sequence: tasks holds 1 2 5 6 8 9. */
	raw_begin(s, "tasks", &txn, &dbi);
	static const uint64_t gone[] = { 0, 3, 4, 7 };
	for (size_t i = 0; i < 4; i++) {
		unsigned char kb[8];
		MDB_val k = { 8, kb };
		uid_key(kb, gone[i]);
		cr_assert_eq(mdb_del(txn, dbi, &k, NULL), 0);
	}
	cr_assert_eq(mdb_txn_commit(txn), 0);

	txn = rtxn(s);
	cr_assert_eq(store_iter_open(s, txn, &it), 0);
	/* From past the end. */
	WALK(it, STORE_SEQ_ALL, NULL, TASK_NO_UID, 1, 0, 9, 8, 6, 5, 2, 1);
	WALK(it, STORE_SEQ_ALL, NULL, 100, 1, 0, 9, 8, 6, 5, 2, 1);
	WALK(it, STORE_SEQ_ALL, NULL, 100, 0, 0);
	WALK(it, STORE_SEQ_ALL, NULL, 10, 0, 0);
	/* From an existing uid: included. */
	WALK(it, STORE_SEQ_ALL, NULL, 5, 1, 0, 5, 2, 1);
	WALK(it, STORE_SEQ_ALL, NULL, 5, 0, 0, 5, 6, 8, 9);
	WALK(it, STORE_SEQ_ALL, NULL, 9, 1, 0, 9, 8, 6, 5, 2, 1);
	WALK(it, STORE_SEQ_ALL, NULL, 9, 0, 0, 9);
	WALK(it, STORE_SEQ_ALL, NULL, 1, 1, 0, 1);
	WALK(it, STORE_SEQ_ALL, NULL, 1, 0, 0, 1, 2, 5, 6, 8, 9);
	/* From a uid between two existing ones. */
	WALK(it, STORE_SEQ_ALL, NULL, 4, 1, 0, 2, 1);
	WALK(it, STORE_SEQ_ALL, NULL, 3, 0, 0, 5, 6, 8, 9);
	WALK(it, STORE_SEQ_ALL, NULL, 7, 1, 0, 6, 5, 2, 1);
	WALK(it, STORE_SEQ_ALL, NULL, 7, 0, 0, 8, 9);
	/* From before the first. */
	WALK(it, STORE_SEQ_ALL, NULL, 0, 1, 0);
	WALK(it, STORE_SEQ_ALL, NULL, 0, 0, 0, 1, 2, 5, 6, 8, 9);
	store_iter_close(it);
	mdb_txn_abort(txn);
	store_close(s);
}

Test(store, iter_index_both_directions)
{
	store *s = create_store();
	MDB_txn *txn;
	store_iter *it;

	/* movies: 0 2 4 6 8; books: 1 3 5 7; moviesX: 9 (a key that extends "movies") */
	for (int i = 0; i < 9; i++)
		add(s, i % 2 ? "books" : "movies", "documentAddition");
	add(s, "moviesX", "documentAddition");

	txn = rtxn(s);
	cr_assert_eq(store_iter_open(s, txn, &it), 0);
	WALK(it, STORE_SEQ_INDEX, "movies", TASK_NO_UID, 1, 0, 8, 6, 4, 2, 0);
	WALK(it, STORE_SEQ_INDEX, "movies", 0, 0, 0, 0, 2, 4, 6, 8);
	WALK(it, STORE_SEQ_INDEX, "books", TASK_NO_UID, 1, 0, 7, 5, 3, 1);
	WALK(it, STORE_SEQ_INDEX, "books", 0, 0, 0, 1, 3, 5, 7);
	WALK(it, STORE_SEQ_INDEX, "moviesX", TASK_NO_UID, 1, 0, 9);
	/* From an existing uid. */
	WALK(it, STORE_SEQ_INDEX, "movies", 4, 1, 0, 4, 2, 0);
	WALK(it, STORE_SEQ_INDEX, "movies", 4, 0, 0, 4, 6, 8);
	/* From between: 5 is a books uid. */
	WALK(it, STORE_SEQ_INDEX, "movies", 5, 1, 0, 4, 2, 0);
	WALK(it, STORE_SEQ_INDEX, "movies", 5, 0, 0, 6, 8);
	WALK(it, STORE_SEQ_INDEX, "books", 4, 1, 0, 3, 1);
	WALK(it, STORE_SEQ_INDEX, "books", 4, 0, 0, 5, 7);
	/* From past the end: 9 and 100. */
	WALK(it, STORE_SEQ_INDEX, "movies", 9, 1, 0, 8, 6, 4, 2, 0);
	WALK(it, STORE_SEQ_INDEX, "movies", 100, 1, 0, 8, 6, 4, 2, 0);
	WALK(it, STORE_SEQ_INDEX, "movies", 9, 0, 0);
	WALK(it, STORE_SEQ_INDEX, "books", 8, 0, 0);
	/* From before the first. */
	WALK(it, STORE_SEQ_INDEX, "books", 0, 1, 0);
	WALK(it, STORE_SEQ_INDEX, "books", 0, 0, 0, 1, 3, 5, 7);
	WALK(it, STORE_SEQ_INDEX, "movies", 0, 1, 0, 0);
	/* Unknown indexes, and prefixes of known ones. */
	WALK(it, STORE_SEQ_INDEX, "nope", TASK_NO_UID, 1, 0);
	WALK(it, STORE_SEQ_INDEX, "nope", 0, 0, 0);
	WALK(it, STORE_SEQ_INDEX, "movie", TASK_NO_UID, 1, 0);
	WALK(it, STORE_SEQ_INDEX, "a", 0, 0, 0);
	WALK(it, STORE_SEQ_INDEX, "zzz", TASK_NO_UID, 1, 0);
	/* Switching back to the whole sequence with the same iterator. */
	WALK(it, STORE_SEQ_ALL, NULL, 3, 1, 0, 3, 2, 1, 0);
	WALK(it, STORE_SEQ_INDEX, "books", 6, 1, 0, 5, 3, 1);
	store_iter_close(it);
	mdb_txn_abort(txn);
	store_close(s);
}

Test(store, iter_status_and_type)
{
	store *s = create_store();
	MDB_txn *txn;
	store_iter *it;
	unsigned char enq = TASK_ENQUEUED, proc = TASK_PROCESSING, done = TASK_SUCCEEDED;

	for (int i = 0; i < 6; i++)
		add(s, "movies", i % 3 ? "documentAddition" : "settingsUpdate");
	cr_assert_eq(move(s, 1, TASK_PROCESSING), 0);
	cr_assert_eq(move(s, 4, TASK_PROCESSING), 0);

	txn = rtxn(s);
	cr_assert_eq(store_iter_open(s, txn, &it), 0);
	uint64_t got[8];
	size_t n;
	n = walk(it, STORE_SEQ_STATUS, NULL, 0, 0, got, 8);
	cr_assert_eq(n, 0, "an empty key is no sequence");
	/* The status keys are one byte; use store_iter_seek directly. */
	uint64_t uid;
	cr_assert_eq(store_iter_seek(it, STORE_SEQ_STATUS, &enq, 1, 0, 0, &uid), 0);
	cr_assert_eq(uid, 0);
	cr_assert_eq(store_iter_next(it, &uid), 0);
	cr_assert_eq(uid, 2);
	cr_assert_eq(store_iter_next(it, &uid), 0);
	cr_assert_eq(uid, 3);
	cr_assert_eq(store_iter_next(it, &uid), 0);
	cr_assert_eq(uid, 5);
	cr_assert_eq(store_iter_next(it, &uid), MDB_NOTFOUND);
	cr_assert_eq(store_iter_seek(it, STORE_SEQ_STATUS, &proc, 1, TASK_NO_UID, 1, &uid), 0);
	cr_assert_eq(uid, 4);
	cr_assert_eq(store_iter_next(it, &uid), 0);
	cr_assert_eq(uid, 1);
	cr_assert_eq(store_iter_next(it, &uid), MDB_NOTFOUND);
	cr_assert_eq(store_iter_seek(it, STORE_SEQ_STATUS, &done, 1, TASK_NO_UID, 1, &uid),
	    MDB_NOTFOUND);
	WALK(it, STORE_SEQ_TYPE, "settingsUpdate", TASK_NO_UID, 1, 0, 3, 0);
	WALK(it, STORE_SEQ_TYPE, "documentAddition", 3, 0, 0, 4, 5);
	WALK(it, STORE_SEQ_TYPE, "clearAll", 0, 0, 0);
	store_iter_close(it);
	mdb_txn_abort(txn);
	store_close(s);
}

/* render_task_page: pages */

struct page {
	uint64_t uids[QUERY_LIMIT_MAX];
	size_t n;
	uint64_t total, limit, from, next;	/* TASK_NO_UID for null */
};

static uint64_t
json_u64_or_null(json_object *obj, const char *key)
{
	json_object *v;

	cr_assert(json_object_object_get_ex(obj, key, &v), "no key %s", key);
	if (v == NULL)
		return TASK_NO_UID;
	cr_assert(json_object_is_type(v, json_type_int), "%s is no integer", key);
	return json_object_get_uint64(v);
}

static void
run_page(store *s, struct query *q, struct page *p)
{
	MDB_txn *txn = rtxn(s);
	store_iter *it;
	struct printbuf *pb = printbuf_new();
	uint64_t bad = TASK_NO_UID;
	json_object *obj, *results;
	static const char *const keys[] = { "results", "total", "limit", "from", "next" };
	size_t i = 0;

	cr_assert_not_null(pb);
	cr_assert_eq(store_iter_open(s, txn, &it), 0);
	int rc = render_task_page(pb, s, txn, it, q, &bad);
	cr_assert_eq(rc, 0, "render_task_page: %s", lmt_strerror(rc));
	store_iter_close(it);
	mdb_txn_abort(txn);

	obj = json_tokener_parse(pb->buf);
	cr_assert_not_null(obj, "not JSON: %s", pb->buf);
	json_object_object_foreach(obj, key, val) {
		(void)val;
		cr_assert(i < 5 && strcmp(key, keys[i]) == 0, "envelope key %zu is %s", i, key);
		i++;
	}
	cr_assert_eq(i, 5, "envelope has %zu keys", i);
	cr_assert(json_object_object_get_ex(obj, "results", &results));
	p->n = json_object_array_length(results);
	cr_assert(p->n <= QUERY_LIMIT_MAX);
	for (size_t j = 0; j < p->n; j++) {
		json_object *task = json_object_array_get_idx(results, j), *uid;
		cr_assert(json_object_object_get_ex(task, "uid", &uid));
		p->uids[j] = json_object_get_uint64(uid);
	}
	p->total = json_u64_or_null(obj, "total");
	p->limit = json_u64_or_null(obj, "limit");
	p->from = json_u64_or_null(obj, "from");
	p->next = json_u64_or_null(obj, "next");
	json_object_put(obj);
	printbuf_free(pb);
}

/* Pages through q until next is null; every uid in want must come exactly once, in order. */
static void
expect_pages(store *s, const char *index, int reverse, unsigned limit, const uint64_t *want,
    size_t nwant)
{
	struct query q;
	struct page *p = malloc(sizeof(*p));
	size_t seen = 0;
	unsigned pages = 0;

	cr_assert_not_null(p);
	query_init(&q);
	q.limit = limit;
	q.reverse = reverse;
	if (index)
		query_scope(&q, index, strlen(index));
	for (;;) {
		cr_assert(pages++ <= nwant + 1, "paging does not end");
		run_page(s, &q, p);
		cr_assert_eq(p->total, nwant, "total %llu, want %zu", (unsigned long long)p->total, nwant);
		cr_assert_eq(p->limit, limit);
		cr_assert(p->n <= limit, "a page of %zu over a limit of %u", p->n, limit);
		for (size_t j = 0; j < p->n; j++) {
			cr_assert(seen < nwant, "more tasks than there are");
			cr_assert_eq(p->uids[j], want[seen], "index %s %s limit %u: item %zu is %llu, want %llu",
			    index ? index : "-", reverse ? "asc" : "desc", limit, seen,
			    (unsigned long long)p->uids[j], (unsigned long long)want[seen]);
			seen++;
		}
		cr_assert_eq(p->from, p->n ? p->uids[0] : TASK_NO_UID, "from is the first uid shown");
		if (p->next == TASK_NO_UID)
			break;
		cr_assert_eq(p->n, limit, "only a full page has a next");
		cr_assert(seen < nwant, "next on a page after the last task");
		cr_assert_eq(p->next, want[seen], "next is the following uid");
		q.from = p->next;
	}
	cr_assert_eq(seen, nwant, "saw %zu of %zu tasks", seen, nwant);
	free(p);
}

Test(store, query_pages_both_orders)
{
	store *s = create_store();
	static const uint64_t all_desc[] = { 9, 8, 7, 6, 5, 4, 3, 2, 1, 0 };
	static const uint64_t all_asc[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 };
	static const uint64_t movies_desc[] = { 9, 6, 3, 0 };
	static const uint64_t movies_asc[] = { 0, 3, 6, 9 };
	static const unsigned limits[] = { 1, 2, 3, 4, 9, 10, 11, 20 };

	for (int i = 0; i < 10; i++)
		add(s, i % 3 ? "books" : "movies", "documentAddition");
	for (size_t l = 0; l < sizeof(limits) / sizeof(limits[0]); l++) {
		expect_pages(s, NULL, 0, limits[l], all_desc, 10);
		expect_pages(s, NULL, 1, limits[l], all_asc, 10);
		expect_pages(s, "movies", 0, limits[l], movies_desc, 4);
		expect_pages(s, "movies", 1, limits[l], movies_asc, 4);
	}
	store_close(s);
}

Test(store, query_page_envelope)
{
	store *s = create_store();
	struct query q;
	struct page p;

	for (int i = 0; i < 5; i++)
		add(s, "movies", "documentAddition");
	query_init(&q);
	cr_assert_eq(q.limit, 20);
	cr_assert_eq(q.from, TASK_NO_UID);
	cr_assert_eq(q.reverse, 0);
	q.limit = 2;
	run_page(s, &q, &p);
	cr_assert_eq(p.n, 2);
	cr_assert_eq(p.uids[0], 4);
	cr_assert_eq(p.uids[1], 3);
	cr_assert_eq(p.total, 5);
	cr_assert_eq(p.from, 4);
	cr_assert_eq(p.next, 2);
	/* from between pages, and from past the end */
	q.from = 2;
	run_page(s, &q, &p);
	cr_assert_eq(p.from, 2);
	cr_assert_eq(p.next, 0);
	q.from = 1000;
	run_page(s, &q, &p);
	cr_assert_eq(p.from, 4);
	q.reverse = 1;
	run_page(s, &q, &p);
	cr_assert_eq(p.n, 0);
	cr_assert_eq(p.total, 5, "total counts every match, not the page");
	cr_assert_eq(p.from, TASK_NO_UID);
	cr_assert_eq(p.next, TASK_NO_UID);
	/* an index with no tasks */
	query_init(&q);
	query_scope(&q, "nope", 4);
	run_page(s, &q, &p);
	cr_assert_eq(p.n, 0);
	cr_assert_eq(p.total, 0);
	cr_assert_eq(p.from, TASK_NO_UID);
	cr_assert_eq(p.next, TASK_NO_UID);
	store_close(s);
}

Test(store, query_empty_store)
{
	store *s = create_store();
	MDB_txn *txn = rtxn(s);
	store_iter *it;
	struct printbuf *pb = printbuf_new();
	struct query q;
	uint64_t bad;

	query_init(&q);
	cr_assert_eq(store_iter_open(s, txn, &it), 0);
	cr_assert_eq(render_task_page(pb, s, txn, it, &q, &bad), 0);
	cr_assert_str_eq(pb->buf, "{\"results\":[],\"total\":0,\"limit\":20,\"from\":null,\"next\":null}");
	store_iter_close(it);
	mdb_txn_abort(txn);
	printbuf_free(pb);
	store_close(s);
}

Test(store, query_renders_stored_task)
{
	store *s = create_store();
	MDB_txn *txn;
	store_iter *it;
	struct printbuf *pb = printbuf_new(), *one = printbuf_new();
	struct query q;
	struct task t;
	uint64_t bad;
	char want[2048];

	add(s, "movies", "documentAddition");
	add(s, "movies", "settingsUpdate");
	txn = rtxn(s);
	cr_assert_eq(store_get(s, txn, 1, &t), 0);
	cr_assert_eq(render_task(one, &t), 0);
	query_init(&q);
	q.limit = 1;
	cr_assert_eq(store_iter_open(s, txn, &it), 0);
	cr_assert_eq(render_task_page(pb, s, txn, it, &q, &bad), 0);
	snprintf(want, sizeof(want), "{\"results\":[%s],\"total\":2,\"limit\":1,\"from\":1,\"next\":0}",
	    one->buf);
	cr_assert_str_eq(pb->buf, want, "\n got: %s\nwant: %s", pb->buf, want);
	store_iter_close(it);
	mdb_txn_abort(txn);
	printbuf_free(pb);
	printbuf_free(one);
	store_close(s);
}

Test(store, query_reports_corrupt_record)
{
	store *s = create_store();
	MDB_txn *txn;
	MDB_dbi dbi;
	unsigned char kb[8];
	MDB_val k = { 8, kb }, v = { 7, "garbage" };
	store_iter *it;
	struct printbuf *pb = printbuf_new();
	struct query q;
	uint64_t bad = TASK_NO_UID;

	for (int i = 0; i < 3; i++)
		add(s, "movies", "documentAddition");
	raw_begin(s, "tasks", &txn, &dbi);
	uid_key(kb, 1);
	cr_assert_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
	cr_assert_eq(mdb_txn_commit(txn), 0);
	txn = rtxn(s);
	query_init(&q);
	cr_assert_eq(store_iter_open(s, txn, &it), 0);
	cr_assert_eq(render_task_page(pb, s, txn, it, &q, &bad), LMT_ECORRUPT);
	cr_assert_eq(bad, 1);
	store_iter_close(it);
	mdb_txn_abort(txn);
	printbuf_free(pb);
	store_close(s);
}

/* store_check */

Test(store, check_clean_store)
{
	store *s = create_store();

	for (int i = 0; i < 20; i++)
		add(s, i % 4 ? "books" : "movies", i % 2 ? "documentAddition" : "indexUpdate");
	cr_assert_eq(move(s, 3, TASK_PROCESSING), 0);
	cr_assert_eq(move(s, 3, TASK_FAILED), 0);
	cr_assert_eq(move(s, 4, TASK_CANCELED), 0);
	expect_clean(s, 20);
	store_close(s);
}

Test(store, check_detects_corrupt_record)
{
	store *s = create_store();
	MDB_txn *txn;
	MDB_dbi dbi;
	unsigned char kb[8], *copy;
	MDB_val k = { 8, kb }, v;
	struct problems p = { .n = 0 };

	for (int i = 0; i < 3; i++)
		add(s, "movies", "documentAddition");
	/* Flip one byte of task 1's record, as a bad disk would. */
	raw_begin(s, "tasks", &txn, &dbi);
	uid_key(kb, 1);
	cr_assert_eq(mdb_get(txn, dbi, &k, &v), 0);
	copy = malloc(v.mv_size);
	cr_assert_not_null(copy);
	memcpy(copy, v.mv_data, v.mv_size);
	copy[20] ^= 0x04;
	v.mv_data = copy;
	cr_assert_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
	cr_assert_eq(mdb_txn_commit(txn), 0);
	free(copy);

	cr_assert_geq(check(s, &p, NULL), 1);
	cr_assert(find_line(&p, "task 1:", "decode"), "no line names task 1; first: %s", p.lines[0]);
	cr_assert_not(find_line(&p, "task 0:", NULL), "task 0 is fine");
	cr_assert_not(find_line(&p, "task 2:", NULL), "task 2 is fine");

	/* store_get says so too, instead of handing out garbage. */
	struct task t;
	txn = rtxn(s);
	cr_assert_eq(store_get(s, txn, 1, &t), LMT_ECORRUPT);
	cr_assert_eq(store_get(s, txn, 2, &t), 0);
	mdb_txn_abort(txn);
	store_close(s);
}

static void
del_entry(store *s, const char *db, const void *key, size_t keylen, uint64_t uid)
{
	MDB_txn *txn;
	MDB_dbi dbi;
	unsigned char ub[8];
	MDB_val k = { keylen, (void *)key }, v = { 8, ub };

	uid_key(ub, uid);
	raw_begin(s, db, &txn, &dbi);
	cr_assert_eq(mdb_del(txn, dbi, &k, &v), 0, "no (key, %llu) in %s", (unsigned long long)uid, db);
	cr_assert_eq(mdb_txn_commit(txn), 0);
}

Test(store, check_detects_missing_index_entry)
{
	store *s = create_store();
	struct problems p = { .n = 0 };

	for (int i = 0; i < 3; i++)
		add(s, "movies", "documentAddition");
	del_entry(s, "by_index", "movies", 6, 1);
	cr_assert_eq(check(s, &p, NULL), 1, "first: %s", p.lines[0]);
	cr_assert(find_line(&p, "task 1:", "by_index"), "got: %s", p.lines[0]);
	store_close(s);
}

Test(store, check_detects_missing_status_type_and_queue_entries)
{
	store *s = create_store();
	struct problems p = { .n = 0 };
	unsigned char enq = TASK_ENQUEUED;

	for (int i = 0; i < 4; i++)
		add(s, "movies", "documentAddition");
	del_entry(s, "by_status", &enq, 1, 0);
	del_entry(s, "by_type", "documentAddition", 16, 2);
	del_entry(s, "queue", "movies\0documentAddition", 23, 3);
	cr_assert_eq(check(s, &p, NULL), 3, "first: %s", p.lines[0]);
	cr_assert(find_line(&p, "task 0:", "by_status"));
	cr_assert(find_line(&p, "task 2:", "by_type"));
	cr_assert(find_line(&p, "task 3:", "queue"));
	store_close(s);
}

Test(store, check_detects_stale_entry_and_bad_count)
{
	store *s = create_store();
	struct problems p = { .n = 0 };
	MDB_txn *txn;
	MDB_dbi dbi;
	unsigned char ub[8], cnt[8] = { 7 };
	MDB_val k = { 6, "movies" }, v = { 8, ub };
	MDB_val ck = { 0, NULL }, cv = { 8, cnt };

	for (int i = 0; i < 2; i++)
		add(s, "movies", "documentAddition");
	/* An index entry for a task that does not exist. */
	raw_begin(s, "by_index", &txn, &dbi);
	uid_key(ub, 42);
	cr_assert_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
	cr_assert_eq(mdb_txn_commit(txn), 0);
	cr_assert_eq(check(s, &p, NULL), 1, "first: %s", p.lines[0]);
	cr_assert(find_line(&p, "42", "by_index"), "got: %s", p.lines[0]);

	/* A count that disagrees with the records: movies \0 enqueued documentAddition = 7. */
	unsigned char key[6 + 2 + 16];
	memcpy(key, "movies", 6);
	key[6] = '\0';
	key[7] = TASK_ENQUEUED;
	memcpy(key + 8, "documentAddition", 16);
	ck.mv_size = sizeof(key);
	ck.mv_data = key;
	raw_begin(s, "counts", &txn, &dbi);
	cr_assert_eq(mdb_put(txn, dbi, &ck, &cv, 0), 0);
	cr_assert_eq(mdb_txn_commit(txn), 0);
	p.n = 0;
	cr_assert_eq(check(s, &p, NULL), 2);
	cr_assert(find_line(&p, "counts", NULL), "no counts line");
	store_close(s);
}

/* Map growth */

struct batch_ctx {
	uint64_t start, n;
};

static int
batch_fn(store *s, MDB_txn *txn, void *ctx)
{
	struct batch_ctx *b = ctx;
	char details[128];

	for (uint64_t i = 0; i < b->n; i++) {
		struct task t;
		int rc, len = snprintf(details, sizeof(details),
		    "{\"n\":%llu,\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}",
		    (unsigned long long)(b->start + i));
		memset(&t, 0, sizeof(t));
		t.status = TASK_ENQUEUED;
		t.enqueued_at = T0 + (int64_t)(b->start + i);
		t.canceled_by = TASK_NO_UID;
		t.index_uid = (b->start + i) % 2 ? STR("movies") : STR("books");
		t.type = STR("documentAddition");
		t.details = (struct task_str){ details, (size_t)len };
		if ((rc = store_add(s, txn, &t)) != 0)
			return rc;
		/* The uid follows from what was committed before; a replay must start over. */
		if (t.uid != b->start + i)
			return LMT_ECORRUPT;
	}
	return 0;
}

Test(store, map_grows_when_full)
{
	store *s;
	MDB_txn *txn;
	struct store_stats st;
	uint64_t total = 3000;

	cr_assert_eq(setenv("LMTASKS_MAPSIZE", "65536", 1), 0);
	s = create_store();
	txn = rtxn(s);
	cr_assert_eq(store_stats(s, txn, &st), 0);
	mdb_txn_abort(txn);
	cr_assert_eq(st.map_size, 65536, "LMTASKS_MAPSIZE sets a new store's map");

	for (uint64_t start = 0; start < total; start += 100) {
		struct batch_ctx b = { start, 100 };
		int rc = store_write(s, batch_fn, &b);
		cr_assert_eq(rc, 0, "batch at %llu: %s", (unsigned long long)start, lmt_strerror(rc));
	}
	txn = rtxn(s);
	cr_assert_eq(store_stats(s, txn, &st), 0);
	mdb_txn_abort(txn);
	cr_assert_eq(st.tasks, total);
	cr_assert_eq(st.next_uid, total);
	cr_assert_gt(st.map_size, 65536, "the map grew");
	cr_assert_eq(st.map_size & (st.map_size - 1), 0, "the map doubled (%llu)",
	    (unsigned long long)st.map_size);
	expect_clean(s, total);
	store_close(s);

	/* A reader opened afterwards sees everything. */
	cr_assert_eq(unsetenv("LMTASKS_MAPSIZE"), 0);
	cr_assert_eq(store_open(tmpstore_path("db"), STORE_RDONLY, 0, &s), 0);
	txn = rtxn(s);
	struct task t;
	cr_assert_eq(store_get(s, txn, total - 1, &t), 0);
	cr_assert_eq(t.enqueued_at, T0 + (int64_t)total - 1);
	uint64_t n = 0;
	cr_assert_eq(store_count(s, txn, STORE_SEQ_INDEX, "movies", 6, &n), 0);
	cr_assert_eq(n, total / 2);
	mdb_txn_abort(txn);
	store_close(s);
}

/* details_normalize / details_merge */

static void
expect_normalized(const char *in, const char *want)
{
	char *out = NULL;
	size_t len = 0;
	const char *why = NULL;
	int rc = details_normalize(in, strlen(in), &out, &len, &why);

	cr_assert_eq(rc, 0, "'%s' refused: %s", in, why ? why : "?");
	cr_assert_str_eq(out, want, "'%s' gave '%s', want '%s'", in, out, want);
	cr_assert_eq(len, strlen(want));
	free(out);
}

static void
expect_refused(const char *in, size_t len)
{
	char *out = NULL;
	size_t outlen = 0;
	const char *why = NULL;

	cr_expect_eq(details_normalize(in, len, &out, &outlen, &why), LMT_EINVAL, "'%s' must be refused",
	    in);
	cr_expect_not_null(why, "'%s': no reason given", in);
	cr_expect_null(out, "'%s' gave '%s'", in, out);
	free(out);
}

Test(details, normalize_compacts)
{
	expect_normalized("{}", "{}");
	expect_normalized(" { } ", "{}");
	expect_normalized("{ \"a\" : [1, 2] ,\n \"b\" : \"x/y\" }\n", "{\"a\":[1,2],\"b\":\"x/y\"}");
	expect_normalized("{\"s\":\"caf\xc3\xa9\"}", "{\"s\":\"caf\xc3\xa9\"}");
	expect_normalized("{\"nested\":{\"k\":null,\"t\":true}}", "{\"nested\":{\"k\":null,\"t\":true}}");
}

Test(details, normalize_requires_object)
{
	expect_refused("[1,2]", 5);
	expect_refused("1", 1);
	expect_refused("\"s\"", 3);
	expect_refused("null", 4);
	expect_refused("true", 4);
}

Test(details, normalize_refuses_garbage)
{
	expect_refused("", 0);
	expect_refused("{", 1);
	expect_refused("{\"a\":}", 6);
	expect_refused("{} x", 4);
	expect_refused("{}{}", 4);
	expect_refused("{\"a\":1},", 8);
	expect_refused("{\"a\":\"\xff\"}", 8);
	expect_refused("{\"a\":01}", 8);
	expect_refused("{\"a\":[1,]}", 10);
	expect_refused("{\"a\":'x'}", 9);
}

/* NaN and Infinity are no JSON: stored verbatim, they would break every response that
 * renders the task. */
Test(details, normalize_refuses_nan_and_infinity)
{
	expect_refused("{\"a\":NaN}", 9);
	expect_refused("{\"a\":Infinity}", 14);
	expect_refused("{\"a\":-Infinity}", 15);
}

/* A single-quoted key is no JSON either, even if the stored form would be. */
Test(details, normalize_refuses_single_quoted_key)
{
	expect_refused("{'a':1}", 7);
}

/* Only white space may follow the value; a NUL byte is none. */
Test(details, normalize_refuses_trailing_nul)
{
	expect_refused("{\"a\":1}\0", 8);
	expect_refused("{\"a\":1} \0\n", 10);
}

Test(details, merge_overrides_keys)
{
	char *out = NULL;
	size_t len = 0;
	const char *why = NULL;
	const char *base = "{\"a\":1,\"b\":2}", *add = "{ \"b\" : 3, \"c\" : [4] }";

	cr_assert_eq(details_merge(base, strlen(base), add, strlen(add), &out, &len, &why), 0, "%s",
	    why ? why : "?");
	cr_assert_str_eq(out, "{\"a\":1,\"b\":3,\"c\":[4]}", "got %s", out);
	cr_assert_eq(len, strlen(out));
	free(out);
}

Test(details, merge_is_shallow_and_keeps_base)
{
	char *out = NULL;
	size_t len = 0;
	const char *why = NULL;
	const char *base = "{\"receivedDocuments\":10,\"o\":{\"x\":1}}",
	    *add = "{\"indexedDocuments\":9,\"o\":{\"y\":2}}";

	cr_assert_eq(details_merge(base, strlen(base), add, strlen(add), &out, &len, &why), 0);
	cr_assert_str_eq(out, "{\"receivedDocuments\":10,\"o\":{\"y\":2},\"indexedDocuments\":9}",
	    "got %s", out);
	free(out);
	cr_assert_eq(details_merge("{}", 2, "{\"k\":1}", 7, &out, &len, &why), 0);
	cr_assert_str_eq(out, "{\"k\":1}");
	free(out);
	cr_assert_eq(details_merge("{\"k\":1}", 7, "{}", 2, &out, &len, &why), 0);
	cr_assert_str_eq(out, "{\"k\":1}");
	free(out);
}

Test(details, merge_refuses_bad_input)
{
	char *out = NULL;
	size_t len = 0;
	const char *why = NULL;

	cr_assert_eq(details_merge("{}", 2, "[1]", 3, &out, &len, &why), LMT_EINVAL);
	cr_assert_not_null(why);
	why = NULL;
	cr_assert_eq(details_merge("[1]", 3, "{}", 2, &out, &len, &why), LMT_EINVAL);
	cr_assert_not_null(why);
	why = NULL;
	cr_assert_eq(details_merge("{}", 2, "{} x", 4, &out, &len, &why), LMT_EINVAL);
	cr_assert_not_null(why);
	why = NULL;
	cr_assert_eq(details_merge("{", 1, "{}", 2, &out, &len, &why), LMT_EINVAL);
	cr_assert_not_null(why);
	cr_assert_null(out);
}

/* A renewed iterator (the responder's, kept across requests): its kept cursors and the
 * counts it remembers per snapshot follow every write, and a page walked through a
 * union of several keys matches the tasks. */
static int
count_walk(void *ctx, const struct task *t)
{
	(void)t;
	++*(uint64_t *)ctx;
	return 0;
}

Test(store, renewed_iterator_follows_writes)
{
	store *s = create_store();
	MDB_txn *txn;
	store_iter *it;
	struct query q;
	struct query_error err;
	uint64_t total = 0, bad = 0, n = 0;
	unsigned char st = TASK_ENQUEUED;

	for (int i = 0; i < 30; i++)
		add(s, i % 3 ? "movies" : "books", i % 2 ? "documentAddition" : "indexCreation");
	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	cr_assert_eq(store_iter_open(s, txn, &it), 0);
	mdb_txn_reset(txn);
	for (int round = 0; round < 3; round++) {
		cr_assert_eq(mdb_txn_renew(txn), 0);
		cr_assert_eq(store_iter_renew(it, txn), 0);
		/* Twice in one snapshot: the second answer comes from the memo. */
		for (int again = 0; again < 2; again++) {
			query_init(&q);
			cr_assert_eq(query_parse("indexUids=movies,books&types=indexCreation", &q, &err), 0);
			cr_assert_eq(query_total(s, txn, it, &q, &total, &bad), 0);
			cr_assert_eq(total, 15 + 2 * (uint64_t)round, "round %d: total %" PRIu64, round, total);
			cr_assert_eq(store_iter_count(it, STORE_SEQ_STATUS, &st, 1, &n), 0);
			cr_assert_eq(n, 30 + 2 * (uint64_t)round);
			cr_assert_eq(store_iter_count(it, STORE_SEQ_INDEX, "books", 5, &n), 0);
			cr_assert_eq(n, 10 + (uint64_t)round);
			/* The walk (two keys, each with its own cursor) finds as many. */
			uint64_t walked = 0;
			cr_assert_eq(query_walk(s, txn, it, &q, count_walk, &walked, &bad), 0);
			cr_assert_eq(walked, total);
		}
		mdb_txn_reset(txn);
		add(s, "books", "indexCreation");
		add(s, "movies", "indexCreation");
	}
	store_iter_close(it);
	mdb_txn_abort(txn);
	store_close(s);
}

/* Uids are compared as numbers in the store (cmp_uid), in memcmp's order: a program that
 * compares by memcmp, LMDB's default (0.1.0, mdb_dump), opens the same file and finds every
 * task, in order, across uids that carry into another byte (255/256, 65535/65536). */
Test(store, uid_order_is_memcmp_order)
{
	store *s = create_store();
	enum { N = 70000 };
	static struct task t[N];
	MDB_txn *txn;

	for (size_t i = 0; i < N; i++)
		task_init(&t[i], "movies", 6, "documentAddition", 16, "{}", 2);
	cr_assert_eq(store_txn_begin(s, 0, &txn), 0);
	cr_assert_eq(store_add_many(s, txn, t, N), 0);
	cr_assert_eq(mdb_txn_commit(txn), 0);
	store_close(s);

	/* The file with LMDB's own comparison: no cmp_uid. */
	MDB_env *env;
	MDB_dbi tasks, by_index;
	MDB_cursor *cur;
	MDB_val k, v;
	uint64_t want = 0;
	cr_assert_eq(mdb_env_create(&env), 0);
	cr_assert_eq(mdb_env_set_maxdbs(env, 32), 0);
	cr_assert_eq(mdb_env_open(env, tmpstore_path("db"), MDB_RDONLY, 0600), 0);
	cr_assert_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	cr_assert_eq(mdb_dbi_open(txn, "tasks", 0, &tasks), 0);
	cr_assert_eq(mdb_dbi_open(txn, "by_index", MDB_DUPSORT | MDB_DUPFIXED, &by_index), 0);
	cr_assert_eq(mdb_cursor_open(txn, tasks, &cur), 0);
	for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT), want++) {
		unsigned char be[8];
		for (int b = 0; b < 8; b++)
			be[b] = (unsigned char)(want >> (56 - 8 * b));
		cr_assert_eq(k.mv_size, 8);
		cr_assert_eq(memcmp(k.mv_data, be, 8), 0, "task %" PRIu64 " out of order", want);
	}
	cr_assert_eq(want, N);
	mdb_cursor_close(cur);
	/* Lookups by memcmp find the tasks and the index's uids at the byte carries. */
	static const uint64_t probe[] = { 0, 255, 256, 65535, 65536, N - 1 };
	cr_assert_eq(mdb_cursor_open(txn, by_index, &cur), 0);
	for (size_t i = 0; i < sizeof(probe) / sizeof(probe[0]); i++) {
		unsigned char be[8];
		for (int b = 0; b < 8; b++)
			be[b] = (unsigned char)(probe[i] >> (56 - 8 * b));
		MDB_val key = { 8, be }, ix = { 6, "movies" }, uid = { 8, be };
		cr_assert_eq(mdb_get(txn, tasks, &key, &v), 0, "task %" PRIu64, probe[i]);
		cr_assert_eq(mdb_cursor_get(cur, &ix, &uid, MDB_GET_BOTH), 0, "index uid %" PRIu64,
		    probe[i]);
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	mdb_env_close(env);
}

/* The schedule: priorities, delays, and their entries kept right through every change */

/* An enqueued task with a priority and a time (0: none). */
static uint64_t
add_sched(store *s, const char *index, const char *type, int32_t priority, int64_t not_before)
{
	struct add_ctx a = { index, type, NULL, TASK_ENQUEUED, TASK_NO_UID, priority, not_before };
	int rc = store_write(s, add_fn, &a);

	cr_assert_eq(rc, 0, "store_add(%s, %s): %s", index, type, lmt_strerror(rc));
	return a.uid;
}

static int
promote_fn(store *s, MDB_txn *txn, void *ctx)
{
	int64_t *now = ctx;
	uint64_t moved;
	int rc = store_promote(s, txn, *now, UINT64_MAX, &moved);

	*now = (int64_t)moved;
	return rc;
}

/* store_promote() at now in a write of its own; returns how many it moved. */
static uint64_t
promote(store *s, int64_t now)
{
	int rc = store_write(s, promote_fn, &now);

	cr_assert_eq(rc, 0, "store_promote: %s", lmt_strerror(rc));
	return (uint64_t)now;
}

/* A task put back as enqueued with a priority and a time, as a retry does. */
struct requeue_ctx {
	uint64_t uid;
	int32_t priority;
	int64_t not_before;
};

static int
requeue_fn(store *s, MDB_txn *txn, void *ctx)
{
	struct requeue_ctx *r = ctx;
	struct task old, next;
	int rc = store_get(s, txn, r->uid, &old);

	if (rc != 0)
		return rc;
	next = old;
	next.status = TASK_ENQUEUED;
	next.started_at = 0;
	next.priority = r->priority;
	next.not_before = r->not_before;
	return store_replace(s, txn, &old, &next);
}

Test(store, claims_take_the_highest_priority_then_the_oldest_under_every_filter)
{
	store *s = create_store();
	MDB_txn *txn;
	uint64_t uid = 0;

	cr_assert_eq(add_sched(s, "movies", "documentAddition", 0, 0), 0);
	cr_assert_eq(add_sched(s, "movies", "documentAddition", 5, 0), 1);
	cr_assert_eq(add_sched(s, "books", "documentAddition", 5, 0), 2);
	cr_assert_eq(add_sched(s, "movies", "settingsUpdate", 10, 0), 3);
	cr_assert_eq(add_sched(s, "movies", "documentAddition", -3, 0), 4);
	cr_assert_eq(add_sched(s, "books", "indexCreation", 0, 0), 5);
	cr_assert_eq(add_sched(s, "books", "indexCreation", 1000000, 0), 6);
	cr_assert_eq(add_sched(s, "books", "indexCreation", -1000000, 0), 7);

	txn = rtxn(s);
	cr_assert_eq(oldest(s, txn, NULL, NULL), 6);
	cr_assert_eq(oldest(s, txn, "movies", NULL), 3);
	cr_assert_eq(oldest(s, txn, NULL, "documentAddition"), 1, "priority 5: uid 1 before 2");
	cr_assert_eq(oldest(s, txn, "books", "documentAddition"), 2);
	cr_assert_eq(oldest(s, txn, "movies", "documentAddition"), 1);
	cr_assert_eq(oldest(s, txn, "books", "indexCreation"), 6);
	cr_assert_eq(oldest(s, txn, "films", NULL), TASK_NO_UID);
	cr_assert_eq(oldest(s, txn, NULL, "dumpCreation"), TASK_NO_UID);
	/* The exact key of a batch that keeps to one priority. */
	cr_assert_eq(store_find_enqueued_at(s, txn, 5, STR("movies"), STR("documentAddition"),
	    &uid), 0);
	cr_assert_eq(uid, 1);
	cr_assert_eq(store_find_enqueued_at(s, txn, 0, STR("movies"), STR("documentAddition"),
	    &uid), 0);
	cr_assert_eq(uid, 0);
	cr_assert_eq(store_find_enqueued_at(s, txn, 7, STR("movies"), STR("documentAddition"),
	    &uid), MDB_NOTFOUND);
	cr_assert_eq(store_find_enqueued_at(s, txn, 0, NOSTR, STR("documentAddition"), &uid),
	    LMT_EINVAL);
	mdb_txn_abort(txn);
	expect_clean(s, 8);

	/* Claimed one after another, the whole order: priority down, then uid up. */
	static const uint64_t order[] = { 6, 3, 1, 2, 0, 5, 4, 7 };
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		txn = rtxn(s);
		uint64_t got = oldest(s, txn, NULL, NULL);
		mdb_txn_abort(txn);
		cr_assert_eq(got, order[i], "claim %zu took %" PRIu64 ", not %" PRIu64, i, got,
		    order[i]);
		cr_assert_eq(move(s, got, TASK_PROCESSING), 0);
	}
	txn = rtxn(s);
	cr_assert_eq(oldest(s, txn, NULL, NULL), TASK_NO_UID);
	mdb_txn_abort(txn);
	expect_clean(s, 8);
	store_close(s);
}

Test(store, a_delayed_task_is_enqueued_but_not_claimable_before_its_time)
{
	store *s = create_store();
	int64_t now = clock_now(), later = now + 3600 * SEC, at;
	MDB_txn *txn;
	struct task t;
	uint64_t uid;

	cr_assert_eq(add_sched(s, "movies", "documentAddition", 0, later), 0);
	cr_assert_eq(add_sched(s, "movies", "documentAddition", 7, later + SEC), 1);
	cr_assert_eq(add_sched(s, "movies", "documentAddition", 0, now - SEC), 2, "due already");
	txn = rtxn(s);
	cr_assert_eq(store_get(s, txn, 0, &t), 0);
	cr_assert_eq(t.status, TASK_ENQUEUED, "clients see it enqueued");
	cr_assert_eq(count_match(s, txn, "movies", TASK_ENQUEUED, NULL), 3);
	cr_assert_eq(oldest(s, txn, NULL, NULL), 2, "only the due one");
	cr_assert_eq(oldest(s, txn, "movies", "documentAddition"), 2);
	cr_assert_eq(store_delayed_first(s, txn, &at, &uid), 0);
	cr_assert_eq(at, later);
	cr_assert_eq(uid, 0);
	mdb_txn_abort(txn);
	expect_clean(s, 3);

	cr_assert_eq(promote(s, later - 1), 0, "not before its time");
	cr_assert_eq(promote(s, later), 1, "at its time");
	txn = rtxn(s);
	cr_assert_eq(oldest(s, txn, NULL, NULL), 0, "due now, and older than 2");
	cr_assert_eq(store_delayed_first(s, txn, &at, &uid), 0);
	cr_assert_eq(uid, 1);
	mdb_txn_abort(txn);
	expect_clean(s, 3);
	cr_assert_eq(promote(s, later + 2 * SEC), 1);
	txn = rtxn(s);
	cr_assert_eq(oldest(s, txn, NULL, NULL), 1, "its priority 7 comes first once due");
	cr_assert_eq(store_delayed_first(s, txn, &at, &uid), MDB_NOTFOUND);
	mdb_txn_abort(txn);
	expect_clean(s, 3);
	store_close(s);
}

Test(store, a_task_leaves_the_schedule_from_wherever_it_waits)
{
	store *s = create_store();
	int64_t later = clock_now() + 3600 * SEC;
	MDB_txn *txn;
	int64_t at;
	uint64_t uid;

	/* Canceled while delayed; canceled once due but not promoted; promoted then claimed. */
	cr_assert_eq(add_sched(s, "movies", "documentAddition", 3, later), 0);
	cr_assert_eq(add_sched(s, "movies", "documentAddition", 0, later), 1);
	cr_assert_eq(add_sched(s, "movies", "documentAddition", -2, later + SEC), 2);
	cr_assert_eq(move(s, 0, TASK_CANCELED), 0);
	expect_clean(s, 3);
	/* 1's time passes; a store write does not promote (ops' rules do): still delayed. */
	tmpstore_clock_move(later - clock_now() + 1);
	cr_assert_gt(clock_now(), later);
	txn = rtxn(s);
	cr_assert_eq(store_delayed_first(s, txn, &at, &uid), 0);
	cr_assert_eq(uid, 1, "1 is due but waits in delayed");
	mdb_txn_abort(txn);
	cr_assert_eq(move(s, 1, TASK_CANCELED), 0);
	expect_clean(s, 3);
	cr_assert_eq(promote(s, later + SEC), 1);
	cr_assert_eq(move(s, 2, TASK_PROCESSING), 0);
	expect_clean(s, 3);
	txn = rtxn(s);
	cr_assert_eq(store_delayed_first(s, txn, &at, &uid), MDB_NOTFOUND);
	cr_assert_eq(oldest(s, txn, NULL, NULL), TASK_NO_UID);
	mdb_txn_abort(txn);
	store_close(s);
}

Test(store, a_task_put_back_with_a_backoff_waits_for_it_and_keeps_its_priority)
{
	store *s = create_store();
	int64_t later = clock_now() + 60 * SEC;
	struct requeue_ctx r = { 1, 4, later };
	MDB_txn *txn;
	int64_t at;
	uint64_t uid;

	cr_assert_eq(add_sched(s, "movies", "documentAddition", 0, 0), 0);
	cr_assert_eq(add_sched(s, "movies", "documentAddition", 4, 0), 1);
	cr_assert_eq(move(s, 1, TASK_PROCESSING), 0);
	/* The retry's contract: enqueued again through store_replace with a time to wait. */
	cr_assert_eq(store_write(s, requeue_fn, &r), 0);
	txn = rtxn(s);
	cr_assert_eq(oldest(s, txn, NULL, NULL), 0, "1 is not claimable before its backoff");
	cr_assert_eq(store_delayed_first(s, txn, &at, &uid), 0);
	cr_assert_eq(at, later);
	cr_assert_eq(uid, 1);
	mdb_txn_abort(txn);
	expect_clean(s, 2);
	cr_assert_eq(promote(s, later), 1);
	txn = rtxn(s);
	cr_assert_eq(oldest(s, txn, NULL, NULL), 1, "due, its priority 4 first");
	mdb_txn_abort(txn);
	/* Put back with no wait (a lease that expired): claimable at once, priority kept. */
	cr_assert_eq(move(s, 1, TASK_PROCESSING), 0);
	r.not_before = 0;
	cr_assert_eq(store_write(s, requeue_fn, &r), 0);
	txn = rtxn(s);
	cr_assert_eq(oldest(s, txn, NULL, NULL), 1);
	mdb_txn_abort(txn);
	expect_clean(s, 2);
	store_close(s);
}

Test(store, a_batch_puts_each_task_where_it_waits)
{
	store *s = create_store();
	int64_t later = clock_now() + 3600 * SEC;
	struct task t[4];
	MDB_txn *txn;
	int64_t at;
	uint64_t uid;

	for (int i = 0; i < 4; i++) {
		task_init(&t[i], "movies", 6, "documentAddition", 16, "{}", 2);
		t[i].enqueued_at = T0;
	}
	t[1].priority = 2;
	t[2].not_before = later;
	t[3].priority = -1;
	t[3].not_before = T0;	/* long past: due at once */
	cr_assert_eq(mdb_txn_begin(store_env(s), NULL, 0, &txn), 0);
	cr_assert_eq(store_add_many(s, txn, t, 4), 0);
	cr_assert_eq(mdb_txn_commit(txn), 0);
	txn = rtxn(s);
	cr_assert_eq(oldest(s, txn, NULL, NULL), 1);
	cr_assert_eq(store_delayed_first(s, txn, &at, &uid), 0);
	cr_assert_eq(uid, 2);
	mdb_txn_abort(txn);
	expect_clean(s, 4);
	store_close(s);
}

Test(store, check_sees_the_schedules_entries)
{
	store *s = create_store();
	int64_t later = clock_now() + 3600 * SEC;
	struct problems p = { .n = 0 };
	unsigned char kb[16], rk[64];
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = { 16, kb }, none = { 0, "" };

	cr_assert_eq(add_sched(s, "movies", "documentAddition", 0, later), 0);
	cr_assert_eq(add_sched(s, "movies", "documentAddition", 9, 0), 1);
	cr_assert_eq(add_sched(s, "movies", "documentAddition", 0, T0), 2);
	expect_clean(s, 3);
	/* Task 0 no longer delayed: then it belongs in queue, where it is not. */
	uid_key(kb, (uint64_t)later);
	uid_key(kb + 8, 0);
	raw_begin(s, "delayed", &txn, &dbi);
	cr_assert_eq(mdb_del(txn, dbi, &k, NULL), 0);
	cr_assert_eq(mdb_txn_commit(txn), 0);
	/* Task 1 taken out of ranked and given a time it has not; task 2 put in delayed
	 * besides queue. */
	rk[0] = 0x7f, rk[1] = 0xff, rk[2] = 0xff, rk[3] = 0xff - 9;
	memcpy(rk + 4, "movies\0documentAddition", 23);
	del_entry(s, "ranked", rk, 27, 1);
	raw_begin(s, "delayed", &txn, &dbi);
	uid_key(kb, (uint64_t)T0);
	uid_key(kb + 8, 2);
	cr_assert_eq(mdb_put(txn, dbi, &k, &none, 0), 0);
	uid_key(kb + 8, 1);	/* task 1 has no time at all */
	cr_assert_eq(mdb_put(txn, dbi, &k, &none, 0), 0);
	cr_assert_eq(mdb_txn_commit(txn), 0);
	cr_assert_eq(check(s, &p, NULL), 4, "%s | %s | %s | %s | %s", p.lines[0], p.lines[1],
	    p.lines[2], p.lines[3], p.lines[4]);
	cr_assert(find_line(&p, "task 0:", "queue"), "got: %s", p.lines[0]);
	cr_assert(find_line(&p, "task 1:", "ranked"));
	cr_assert(find_line(&p, "task 2:", "delayed and in queue"));
	cr_assert(find_line(&p, "delayed: entry for task 1", "does not have"));
	store_close(s);
}

/* Whether the store's file has the named database (raw LMDB, read-only). */
static int
has_db(store *s, const char *db)
{
	MDB_txn *txn;
	MDB_dbi dbi;
	int rc;

	cr_assert_eq(mdb_txn_begin(store_env(s), NULL, MDB_RDONLY, &txn), 0);
	rc = mdb_dbi_open(txn, db, 0, &dbi);
	mdb_txn_abort(txn);
	cr_assert(rc == 0 || rc == MDB_NOTFOUND, "mdb_dbi_open(%s): %s", db, mdb_strerror(rc));
	return rc == 0;
}

/* Adds a prioritised task, then refuses: the transaction aborts. */
static int
add_then_refuse_fn(store *s, MDB_txn *txn, void *ctx)
{
	int rc = add_fn(s, txn, ctx);

	return rc ? rc : LMT_ETRANSITION;
}

Test(store, the_schedules_databases_come_with_the_first_task_that_needs_them)
{
	store *s = create_store();
	struct add_ctx a = { "movies", "x", NULL, TASK_ENQUEUED, TASK_NO_UID, 3, 0 };
	MDB_txn *txn;

	add_sched(s, "movies", "x", 0, 0);
	add_sched(s, "movies", "x", 0, T0);	/* a time long past: due, in queue */
	cr_assert_not(has_db(s, "delayed"), "plain tasks need no schedule");
	cr_assert_not(has_db(s, "ranked"));
	/* Made by a transaction that aborts: gone with it, and made again by the next. */
	cr_assert_eq(store_write(s, add_then_refuse_fn, &a), LMT_ETRANSITION);
	cr_assert_not(has_db(s, "ranked"));
	cr_assert_eq(add_sched(s, "movies", "x", 3, 0), 2);
	cr_assert(has_db(s, "delayed") && has_db(s, "ranked"));
	txn = rtxn(s);
	cr_assert_eq(oldest(s, txn, NULL, NULL), 2);
	mdb_txn_abort(txn);
	expect_clean(s, 3);
	store_close(s);
}
