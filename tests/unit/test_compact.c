/* Compaction (ops_compact, store_compact.c): the file shrinks, every task and the
 * transaction count stay, a handle of another process follows the new file (on write,
 * or idle), a file of before or another store's newer file is still refused, a failure
 * changes nothing, a failed reopen recovers, the owner is kept; Meilisearch's size words. */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <lmdb.h>

#include "lmtasks/error.h"
#include "lmtasks/ops.h"
#include "lmtasks/query.h"
#include "lmtasks/report.h"
#include "lmtasks/store.h"
#include "tmpdb.h"

TestSuite(compact, .init = tmpdb_setup, .fini = tmpdb_teardown);

static off_t
file_size(const char *path)
{
	struct stat st;

	cr_assert_eq(stat(path, &st), 0, "stat %s", path);
	return st.st_size;
}

static size_t
last_txnid(store *st)
{
	MDB_envinfo info;

	cr_assert_eq(mdb_env_info(store_env(st), &info), 0);
	return info.me_last_txnid;
}

/* n tasks with 2 KiB of details each (uids 0 to n - 1), canceled (n) and deleted (n + 1):
 * free pages the file keeps. */
static void
fill_and_free(size_t n)
{
	static char details[2100];
	struct task t;
	struct ops_record_result r;
	struct query q;
	struct query_error why;

	memset(details, 'x', sizeof(details));
	memcpy(details, "{\"p\":\"", 6);
	memcpy(details + sizeof(details) - 2, "\"}", 2);
	for (size_t i = 0; i < n; i++) {
		task_init(&t, "movies", 6, "documentAddition", 16, details, sizeof(details));
		cr_assert_eq(ops_enqueue(s, &t, 1, NULL), 0);
	}
	query_init(&q);
	cr_assert_eq(query_parse("statuses=enqueued", &q, &why), 0);
	cr_assert_eq(ops_cancel_query(s, &q, "?statuses=enqueued", &r), 0);
	ops_task_free(&r.out);
	query_init(&q);
	cr_assert_eq(query_parse("statuses=canceled", &q, &why), 0);
	cr_assert_eq(ops_delete(s, &q, 0, "?statuses=canceled", &r), 0);
	ops_task_free(&r.out);
}

/* The store's tasks, uid by uid, as their records' checksums say: equal lists, equal tasks. */
static void
sums(uint32_t *out, size_t n)
{
	MDB_txn *txn;
	struct task t;

	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	for (size_t i = 0; i < n; i++)
		out[i] = store_get(s, txn, i, &t) == 0 ? t.record_sum : 0;
	mdb_txn_abort(txn);
}

Test(compact, shrinks_the_file_and_keeps_every_task_and_the_count)
{
	uint32_t before[1100], after[1100];
	const char *data = tmpstore_path("db/data.mdb");
	struct ops_compact_result r;

	fill_and_free(1000);
	sums(before, 1100);
	off_t pre = file_size(data);
	size_t id = last_txnid(s);
	cr_assert_eq(ops_compact(s, &r), 0);
	cr_assert_eq(r.swapped, 1);
	cr_assert_eq(r.pre_size, (uint64_t)pre);
	cr_assert_eq(r.post_size, (uint64_t)file_size(data), "postSize is the new file's size");
	cr_assert_lt(r.post_size * 4, r.pre_size, "%ju of %ju bytes", (uintmax_t)r.post_size,
	    (uintmax_t)r.pre_size);
	cr_assert_eq(last_txnid(s), id, "the copy carries the store's transaction count");
	cr_assert_eq(store_follows(s), 0, "the handle is on the new file");
	sums(after, 1100);
	cr_assert_arr_eq(before, after, sizeof(before));
	/* It writes on: the next uid, and the count goes on from where it was. */
	cr_assert_eq(tmpdb_add("books"), 1002);
	cr_assert_eq(last_txnid(s), id + 1);
	cr_assert(access(tmpstore_path("db/data.mdb.compact"), F_OK) != 0, "no copy is left");
}

/* Another process has the store open from before the compaction: its next write follows
 * the new file (nothing written to the old one), and so does its next read. */
Test(compact, another_process_follows_the_new_file)
{
	int go[2], done[2];
	char c;
	struct ops_compact_result r;

	fill_and_free(300);
	cr_assert_eq(pipe(go), 0);
	cr_assert_eq(pipe(done), 0);
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		store *o;
		struct task t;
		int ok = store_open(tmpstore_path("db"), 0, 0, &o) == 0;
		ok = ok && write(done[1], "o", 1) == 1 && read(go[0], &c, 1) == 1;
		/* The compaction is done: the path holds a file that follows this one. */
		ok = ok && store_follows(o) == 1;
		task_init(&t, "child", 5, "documentAddition", 16, "{}", 2);
		ok = ok && ops_enqueue(o, &t, 1, NULL) == 0 && store_follows(o) == 0;
		store_close(o);
		_exit(ok ? 0 : 1);
	}
	cr_assert_eq(read(done[0], &c, 1), 1);
	size_t id = last_txnid(s);
	cr_assert_eq(ops_compact(s, &r), 0);
	cr_assert_eq(write(go[1], "g", 1), 1);
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child could not follow");
	/* The child's task is in the file at the path, one commit after the compaction. */
	MDB_txn *txn;
	struct task t;
	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	cr_assert_eq(mdb_txn_id(txn), id + 1);
	cr_assert_eq(store_get(s, txn, 302, &t), 0);
	cr_assert(t.index_uid.len == 5 && memcmp(t.index_uid.ptr, "child", 5) == 0);
	mdb_txn_abort(txn);
}

/* A data file of before moved over the store does not follow it: refused, as ever. */
Test(compact, a_file_of_before_is_still_refused)
{
	char cmd[3 * PATH_MAX];

	tmpdb_add("movies");
	snprintf(cmd, sizeof(cmd), "cp %s %s", tmpstore_path("db/data.mdb"), tmpstore_path("old.mdb"));
	cr_assert_eq(system(cmd), 0);
	tmpdb_add("movies");
	cr_assert_eq(rename(tmpstore_path("old.mdb"), tmpstore_path("db/data.mdb")), 0);
	cr_assert_eq(store_follows(s), LMT_EREPLACED);
	cr_assert(strstr(store_check_replaced_text(), "not a compacted copy") != NULL, "%s",
	    store_check_replaced_text());
	struct task t;
	task_init(&t, "movies", 6, "documentAddition", 16, "{}", 2);
	cr_assert_eq(ops_enqueue(s, &t, 1, NULL), LMT_EREPLACED, "no write on either file");
}

/* A compaction that fails (here its copy cannot be made) leaves the store as it was. */
Test(compact, a_failure_changes_nothing)
{
	struct stat st0, st1;
	struct ops_compact_result r;

	fill_and_free(50);
	cr_assert_eq(mkdir(tmpstore_path("db/data.mdb.compact"), 0700), 0);
	cr_assert_eq(mkdir(tmpstore_path("db/data.mdb.compact/x"), 0700), 0);
	cr_assert_eq(stat(tmpstore_path("db/data.mdb"), &st0), 0);
	size_t id = last_txnid(s);
	cr_assert_neq(ops_compact(s, &r), 0);
	cr_assert_eq(r.swapped, 0, "not swapped: the store is as it was");
	cr_assert_eq(stat(tmpstore_path("db/data.mdb"), &st1), 0);
	cr_assert(st0.st_ino == st1.st_ino && st0.st_size == st1.st_size, "the same file");
	cr_assert_eq(last_txnid(s), id);
	cr_assert_eq(tmpdb_add("books"), 52, "the store writes on");
}

/* Sizes as Meilisearch's preSize/postSize print them (the byte-unit crate's "{:#}"). */
Test(compact, sizes_in_meilisearch_words)
{
	static const struct {
		uint64_t n;
		const char *text;
	} cases[] = {
		{ 0, "0 B" }, { 999, "999 B" }, { 1000, "1 KB" }, { 1024, "1 KiB" },
		{ 3211776, "3136.5 KiB" }, { 437500, "437.5 KB" }, { 1048576, "1 MiB" },
		{ 3276800, "3.125 MiB" }, { 405504, "396 KiB" }, { 1001, "1.001 KB" },
		{ 1500000000, "1.5 GB" }, { UINT64_C(1) << 40, "1 TiB" },
		{ UINT64_MAX, "18446744073709551.615 KB" },
	};
	char out[32];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = report_size_text(cases[i].n, out);
		cr_expect_str_eq(out, cases[i].text, "%ju", (uintmax_t)cases[i].n);
		cr_expect_eq(n, strlen(cases[i].text));
	}
}

/* A copy a killed compaction left beside data.mdb is replaced, and none is left after. */
Test(compact, a_copy_left_by_a_killed_compaction_goes)
{
	struct ops_compact_result r;
	FILE *f = fopen(tmpstore_path("db/data.mdb.compact"), "w");

	cr_assert_not_null(f);
	fputs("half a copy", f);
	fclose(f);
	fill_and_free(20);
	cr_assert_eq(ops_compact(s, &r), 0);
	cr_assert(access(tmpstore_path("db/data.mdb.compact"), F_OK) != 0, "no copy is left");
	cr_assert_eq(r.post_size, (uint64_t)file_size(tmpstore_path("db/data.mdb")));
	cr_assert_eq(tmpdb_add("books"), 22);
}

/* Another store's data file with more transactions than the lock counts (or a backup
 * newer than the store) moved over it is not its compacted copy: refused, not followed. */
Test(compact, a_newer_file_of_another_store_is_refused)
{
	store *o;
	struct task t;

	tmpdb_add("movies");
	cr_assert_eq(store_open(tmpstore_path("other"), STORE_CREATE, 0600, &o), 0);
	task_init(&t, "other", 5, "documentAddition", 16, "{}", 2);
	for (int i = 0; i < 6; i++)
		cr_assert_eq(ops_enqueue(o, &t, 1, NULL), 0);
	store_close(o);
	cr_assert_eq(rename(tmpstore_path("other/data.mdb"), tmpstore_path("db/data.mdb")), 0);
	cr_assert_eq(store_follows(s), LMT_EREPLACED);
	cr_assert(strstr(store_check_replaced_text(), "not a compacted copy") != NULL, "%s",
	    store_check_replaced_text());
	cr_assert_eq(store_check_replaced(s), LMT_EREPLACED);
	task_init(&t, "movies", 6, "documentAddition", 16, "{}", 2);
	cr_assert_eq(ops_enqueue(s, &t, 1, NULL), LMT_EREPLACED, "no write on either file");
}

/* A reopen that fails (no data file at the path for a moment) leaves the handle closed;
 * the next one, the file back, opens it again. */
Test(compact, a_failed_reopen_recovers)
{
	tmpdb_add("movies");
	cr_assert_eq(rename(tmpstore_path("db/data.mdb"), tmpstore_path("away.mdb")), 0);
	cr_assert_neq(store_reopen(s), 0, "no file: the reopen fails");
	cr_assert_str_eq(store_path(s), tmpstore_path("db"), "the path is kept");
	cr_assert_neq(store_reopen(s), 0, "still none");
	cr_assert_eq(rename(tmpstore_path("away.mdb"), tmpstore_path("db/data.mdb")), 0);
	MDB_txn *txn;
	cr_assert_eq(store_read_follow(s, &txn), 0, "the file back: a read opens it again");
	mdb_txn_abort(txn);
	cr_assert_eq(tmpdb_add("books"), 1, "and written");
}

/* An idle process (lmtasks work's tick) follows a compaction made by another one with
 * no commit since, and then has the file at the path open. */
Test(compact, an_idle_process_follows_with_no_commit)
{
	struct ops_compact_result r;

	fill_and_free(30);
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		store *o;
		int ok = store_open(tmpstore_path("db"), 0, 0, &o) == 0 && ops_compact(o, &r) == 0;
		store_close(o);
		_exit(ok ? 0 : 1);
	}
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child could not compact");
	cr_assert_eq(store_follows(s), 1, "the path holds the compacted copy");
	cr_assert_eq(store_follow(s), 0);
	cr_assert_eq(store_follows(s), 0, "it is the file open now");
	cr_assert_eq(store_follow(s), 0, "nothing more to follow");
	cr_assert_eq(tmpdb_add("books"), 32);
}

/* Root compacting another user's store: the copy keeps data.mdb's owner and group. */
Test(compact, the_copy_keeps_the_owner_of_the_file)
{
	struct ops_compact_result r;
	struct stat st;

	if (geteuid() != 0)
		cr_skip_test("only root can give a file to another user");
	fill_and_free(20);
	cr_assert_eq(chown(tmpstore_path("db/data.mdb"), 4321, 4322), 0);
	cr_assert_eq(ops_compact(s, &r), 0);
	cr_assert_eq(stat(tmpstore_path("db/data.mdb"), &st), 0);
	cr_assert(st.st_uid == 4321 && st.st_gid == 4322, "owner %u:%u", (unsigned)st.st_uid,
	    (unsigned)st.st_gid);
	cr_assert_eq(tmpdb_add("books"), 22);
}
