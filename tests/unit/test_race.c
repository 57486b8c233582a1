/* The damage check against a writer in another process: store.c is compiled into this
 * test with LMTASKS_TEST_HOOKS, so a commit lands exactly between the check's two reads
 * (the meta page and the file's size) -- the race a busy host loses now and then, made
 * to happen every time.  The same for a write (store_write.c compiled in too): another
 * process makes the schedule's databases just before its transaction begins. */
#include "config.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "lmtasks/clock.h"
#include "lmtasks/error.h"
#include "lmtasks/ops.h"
#include "lmtasks/store.h"
#include "lmtasks/task.h"
#include "../src/store_internal.h"
#include "tmpdb.h"

TestSuite(race, .init = tmpdb_setup, .fini = tmpdb_teardown);

static int armed;	/* the next hook call commits in a child process */
static int child_rc = -1;

/* Enough tasks, each with a detail of 2 KiB, to grow data.mdb by many pages. */
#define GROW_TASKS 200

static int
grow_store(void)
{
	static char details[2100];
	struct task t[GROW_TASKS];
	store *w = NULL;
	int rc;

	memcpy(details, "{\"x\":\"", 6);
	memset(details + 6, 'a', 2048);
	memcpy(details + 6 + 2048, "\"}", 3);
	if ((rc = store_open(tmpstore_path("db"), 0, 0, &w)) != 0)
		return rc;
	for (int i = 0; i < GROW_TASKS; i++)
		task_init(&t[i], "books", 5, "documentAddition", 16, details, strlen(details));
	rc = ops_enqueue(w, t, GROW_TASKS, NULL);
	store_close(w);
	return rc;
}

/* Called by store_check_size between its two reads: another process commits there. */
void
store_test_hook(store *st)
{
	(void)st;
	if (!armed)
		return;
	armed = 0;
	pid_t pid = fork();
	if (pid == 0)
		_exit(grow_store() == 0 ? 0 : 1);
	int status = 0;
	if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status))
		child_rc = WEXITSTATUS(status);
}

static long long
data_size(void)
{
	struct stat st;
	char path[4096];

	snprintf(path, sizeof(path), "%s/data.mdb", tmpstore_path("db"));
	cr_assert_eq(stat(path, &st), 0);
	return (long long)st.st_size;
}

Test(race, a_commit_between_the_two_reads_is_no_damage)
{
	long long before = data_size();

	armed = 1;
	int rc = store_check_size(s);
	cr_assert_eq(child_rc, 0, "the other process's enqueue failed");
	cr_assert_gt(data_size(), before, "the other process's commit did not grow the file");
	cr_assert_eq(rc, 0, "a healthy store called damaged: %s", store_damage_text());
	/* The same check once more, and a new open, with nothing in between. */
	cr_assert_eq(store_check_size(s), 0);
}

Test(race, a_truncated_file_is_still_damaged)
{
	char path[4096];

	for (int i = 0; i < 20; i++)
		tmpdb_add("books");
	long long size = data_size();
	snprintf(path, sizeof(path), "%s/data.mdb", tmpstore_path("db"));
	cr_assert_eq(truncate(path, size - 4096), 0);
	cr_assert_eq(store_check_size(s), LMT_EDAMAGED);
	cr_assert(strstr(store_damage_text(), "shorter than") != NULL, "%s", store_damage_text());
}

static int write_armed;	/* the next write's hook enqueues in a child process */

/* A task an hour away, then a plain one, enqueued by another process (the first delayed
 * task: it makes the schedule's databases). */
static int
delay_store(void)
{
	struct task t[2];
	store *w = NULL;
	int rc;

	if ((rc = store_open(tmpstore_path("db"), 0, 0, &w)) != 0)
		return rc;
	task_init(&t[0], "books", 5, "documentAddition", 16, "{}", 2);
	t[0].not_before = clock_now() + 3600 * INT64_C(1000000);
	task_init(&t[1], "books", 5, "documentAddition", 16, "{}", 2);
	rc = ops_enqueue(w, t, 2, NULL);
	store_close(w);
	return rc;
}

/* Called by store_write just before its transaction begins. */
void
store_test_write_hook(store *st)
{
	(void)st;
	if (!write_armed)
		return;
	write_armed = 0;
	pid_t pid = fork();
	if (pid == 0)
		_exit(delay_store() == 0 ? 0 : 1);
	int status = 0;
	if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status))
		child_rc = WEXITSTATUS(status);
}

Test(race, a_schedule_made_just_before_a_write_is_seen_by_it)
{
	struct ops_change claim = { .kind = OPS_CLAIM };
	struct ops_change_result r;

	write_armed = 1;
	int rc = ops_change(s, &claim, &r);
	cr_assert_eq(child_rc, 0, "the other process's enqueue failed");
	cr_assert_eq(rc, 0, "claim: %s", lmt_strerror(rc));
	cr_assert_eq(r.out.t.uid, 1, "took %" PRIu64 ", an hour before its time", r.out.t.uid);
	ops_task_free(&r.out);
}

Test(race, a_task_delayed_just_before_a_cancel_is_canceled_where_it_waits)
{
	struct ops_record_result r = { 0 };
	uint64_t uid = 0;

	write_armed = 1;
	int rc = ops_cancel(s, &uid, 1, "uids=0", &r);
	cr_assert_eq(child_rc, 0, "the other process's enqueue failed");
	cr_assert_eq(rc, 0, "cancel: %s", lmt_strerror(rc));
	cr_assert_eq(r.changed, 1);
	ops_task_free(&r.out);
}
