/* A worker's writes on a real store: ops_step() (changes and a claim in one commit, each
 * change accepted or refused on its own), OPS_RELEASE, the lease rule riding in the
 * command's own transaction, and work_run() with real commands. */
#include "config.h"

#include <inttypes.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>
#include <lmdb.h>

#include "lmtasks/error.h"
#include "lmtasks/ops.h"
#include "lmtasks/store.h"
#include "lmtasks/work.h"
#include "tmpdb.h"

TestSuite(work, .init = tmpdb_setup, .fini = tmpdb_teardown);

/* The id of the store's last commit. */
static size_t
last_txn(void)
{
	MDB_envinfo info;

	cr_assert_eq(mdb_env_info(store_env(s), &info), 0);
	return info.me_last_txnid;
}

/* Task uid's status and started_at. */
static enum task_status
status_of(uint64_t uid, int64_t *started)
{
	MDB_txn *txn;
	struct task t;

	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	cr_assert_eq(store_get(s, txn, uid, &t), 0);
	if (started)
		*started = t.started_at;
	mdb_txn_abort(txn);
	return t.status;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

Test(work, a_step_finishes_several_tasks_and_claims_in_one_commit)
{
	struct ops_change claim = { .kind = OPS_CLAIM, .lease = 60000000, .requeue = 1 };
	struct ops_task got[4];
	size_t n;

	for (int i = 0; i < 6; i++)
		tmpdb_add("movies");
	cr_assert_eq(ops_claim_batch(s, &claim, 3, got, &n), 0);
	cr_assert_eq(n, 3);
	struct ops_change ch[3] = {
		{ .kind = OPS_SUCCEED, .uid = 0, .started_at = got[0].t.started_at,
		    .details = "{\"done\":1}", .details_len = 10 },
		{ .kind = OPS_FAIL, .uid = 1, .code = "work_command_failed", .message = "exit 3",
		    .etype = TASK_ERR_INTERNAL },
		{ .kind = OPS_HEARTBEAT, .uid = 2, .lease = 90000000 },
	};
	for (size_t i = 0; i < n; i++)
		ops_task_free(&got[i]);
	int rcs[3] = { -1, -1, -1 };
	struct ops_change_result res[3];
	struct ops_step st = { ch, 3, rcs, res, &claim, 4, got, 0 };
	size_t before = last_txn();

	cr_assert_eq(ops_step(s, &st), 0);
	cr_assert_eq(last_txn(), before + 1, "one commit for three changes and a claim");
	cr_assert(rcs[0] == 0 && rcs[1] == 0 && rcs[2] == 0);
	cr_assert_eq(status_of(0, NULL), TASK_SUCCEEDED);
	cr_assert_eq(status_of(1, NULL), TASK_FAILED);
	cr_assert_eq(status_of(2, NULL), TASK_PROCESSING);
	cr_assert_eq(res[2].out.t.lease_ms, 90000);
	cr_assert_eq(st.nclaimed, 3, "tasks 3, 4, 5: all that were left");
	cr_assert_eq(st.claimed[0].t.uid, 3);
	cr_assert_eq(status_of(5, NULL), TASK_PROCESSING);
	for (size_t i = 0; i < 3; i++)
		ops_task_free(&res[i].out);
	for (size_t i = 0; i < st.nclaimed; i++)
		ops_task_free(&got[i]);
}

Test(work, a_refused_change_leaves_the_others_and_nothing_writes_no_commit)
{
	for (int i = 0; i < 3; i++)
		tmpdb_add("movies");
	tmpdb_change(OPS_START, 0);
	tmpdb_change(OPS_START, 1);
	int64_t started;
	status_of(1, &started);
	struct ops_change ch[3] = {
		{ .kind = OPS_SUCCEED, .uid = 0, .started_at = 1 },	/* another claim's */
		{ .kind = OPS_SUCCEED, .uid = 1, .started_at = started },
		{ .kind = OPS_SUCCEED, .uid = 2 },			/* still enqueued */
	};
	int rcs[3];
	struct ops_step st = { ch, 3, rcs, NULL, NULL, 0, NULL, 0 };

	cr_assert_eq(ops_step(s, &st), 0);
	cr_assert_eq(rcs[0], LMT_ECLAIMED);
	cr_assert_eq(rcs[1], 0);
	cr_assert_eq(rcs[2], LMT_ETRANSITION);
	cr_assert_eq(status_of(0, NULL), TASK_PROCESSING);
	cr_assert_eq(status_of(1, NULL), TASK_SUCCEEDED);

	/* Every change refused and nothing to claim: no commit at all. */
	struct ops_change claim = { .kind = OPS_CLAIM, .claim_index = { "books", 5 } };
	struct ops_task got[1];
	struct ops_step none = { ch, 1, rcs, NULL, &claim, 1, got, 0 };
	size_t before = last_txn();
	cr_assert_eq(ops_step(s, &none), 0);
	cr_assert_eq(rcs[0], LMT_ECLAIMED);
	cr_assert_eq(none.nclaimed, 0);
	cr_assert_eq(last_txn(), before);
}

Test(work, a_release_hands_a_processing_task_back_to_the_queue)
{
	struct ops_change_result r;
	int64_t started;

	tmpdb_add("movies");
	tmpdb_change(OPS_START, 0);
	status_of(0, &started);
	struct ops_change rel = { .kind = OPS_RELEASE, .uid = 0, .started_at = started };
	cr_assert_eq(ops_change(s, &rel, &r), 0);
	cr_assert_eq(r.out.t.status, TASK_ENQUEUED);
	cr_assert_eq(r.out.t.started_at, 0);
	cr_assert_not(r.out.t.has_batch, "it left the batch of its claim");
	ops_task_free(&r.out);
	cr_assert_eq(ops_change(s, &rel, &r), LMT_ETRANSITION, "an enqueued task is not released");
	struct ops_change claim = { .kind = OPS_CLAIM };
	cr_assert_eq(ops_change(s, &claim, &r), 0, "a released task is claimed again");
	cr_assert_eq(r.uid, 0);
	ops_task_free(&r.out);
}

Test(work, the_lease_rule_rides_in_the_commands_transaction)
{
	struct ops_change start = { .kind = OPS_START, .uid = 0, .lease = 1000 };
	struct ops_change_result r;

	tmpdb_add("movies");
	tmpdb_add("movies");
	cr_assert_eq(ops_change(s, &start, &r), 0);
	ops_task_free(&r.out);
	sleep_ms(5);
	size_t before = last_txn();
	tmpdb_add("movies");
	cr_assert_eq(last_txn(), before + 1, "the reap and the enqueue: one commit");
	cr_assert_eq(status_of(0, NULL), TASK_FAILED);

	/* A refused command still ends the leases it found expired. */
	start.uid = 1;
	cr_assert_eq(ops_change(s, &start, &r), 0);
	ops_task_free(&r.out);
	sleep_ms(5);
	struct ops_change late = { .kind = OPS_SUCCEED, .uid = 1 };
	cr_assert_eq(ops_change(s, &late, &r), LMT_ELEASE);
	cr_assert_eq(status_of(1, NULL), TASK_FAILED);
}

Test(work, work_run_runs_each_task_once_and_records_exit_statuses)
{
	char *ok[] = { "sh", "-c", "read -r t; test \"$LMTASKS_TASK_UID\" != 2", NULL };
	struct work_options o = { .batch = 2, .concurrency = 2, .lease = 60000000,
	    .exit_when_empty = 1, .db = tmpstore_path("db"), .argv = ok };
	struct work_stats st;

	for (int i = 0; i < 5; i++)
		tmpdb_add("movies");
	cr_assert_eq(work_run(s, &o, &st), 0);
	cr_assert_eq(st.succeeded, 4);
	cr_assert_eq(st.failed, 1);
	cr_assert_eq(st.released + st.lost, 0);
	cr_assert_eq(status_of(2, NULL), TASK_FAILED);
	cr_assert_eq(status_of(4, NULL), TASK_SUCCEEDED);
	o.argv = (char *[]){ NULL };
	cr_assert_eq(work_run(s, &o, &st), LMT_EINVAL);
}
