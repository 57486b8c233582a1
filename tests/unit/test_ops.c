/* The write operations on a real store, each test in its own temp directory: enqueue,
 * the transitions and the lease rule, cancel, delete, indexes, keys, init. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <criterion/criterion.h>
#include <lmdb.h>

#include "lmtasks/clock.h"
#include "lmtasks/error.h"
#include "lmtasks/feed.h"
#include "lmtasks/ops.h"
#include "lmtasks/query.h"
#include "lmtasks/settings.h"
#include "lmtasks/store.h"
#include "lmtasks/webhook.h"
#include "tmpdb.h"

#define STR(s) ((struct task_str){ (s), sizeof(s) - 1 })


TestSuite(ops, .init = tmpdb_setup, .fini = tmpdb_teardown);

/* Enqueues one task of index and type; returns its uid. */
static uint64_t
add(const char *index, const char *type)
{
	struct task t;

	task_init(&t, index, strlen(index), type, strlen(type), "{\"n\":1}", 7);
	cr_assert_eq(ops_enqueue(s, &t, 1, NULL), 0);
	return t.uid;
}

/* Reads task uid into *t (strings copied into ot) and returns store_get's result. */
static int
get(uint64_t uid, struct ops_task *ot)
{
	MDB_txn *txn;
	struct task t;
	int rc;

	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	if ((rc = store_get(s, txn, uid, &t)) == 0)
		rc = ops_task_copy(ot, &t);
	mdb_txn_abort(txn);
	return rc;
}

static int
change(enum ops_change_kind kind, uint64_t uid, struct ops_change_result *r)
{
	struct ops_change ch = { .kind = kind, .uid = uid, .code = "boom", .message = "it broke",
	    .etype = TASK_ERR_INTERNAL };

	return ops_change(s, &ch, r);
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

Test(ops, enqueue_gives_uids_in_order_and_one_enqueued_at)
{
	struct task t[3];

	for (int i = 0; i < 3; i++)
		task_init(&t[i], "movies", 6, "documentAddition", 16, "{}", 2);
	cr_assert_eq(ops_enqueue(s, t, 3, NULL), 0);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(t[i].uid, (uint64_t)i);
		cr_assert_eq(t[i].enqueued_at, t[0].enqueued_at);
		cr_assert_gt(t[i].enqueued_at, 0);
	}
	cr_assert_eq(add("books", "indexCreation"), 3);
}

Test(ops, start_then_succeed_merges_details)
{
	struct ops_change_result r;
	uint64_t uid = add("movies", "documentAddition");
	struct ops_change ch = { .kind = OPS_SUCCEED, .uid = uid, .details = "{\"m\":2}",
	    .details_len = 7 };

	cr_assert_eq(change(OPS_START, uid, &r), 0);
	cr_assert_eq(r.was, TASK_ENQUEUED);
	cr_assert_eq(r.out.t.status, TASK_PROCESSING);
	cr_assert_gt(r.out.t.started_at, 0);
	ops_task_free(&r.out);
	cr_assert_eq(ops_change(s, &ch, &r), 0);
	cr_assert_eq(r.out.t.status, TASK_SUCCEEDED);
	cr_assert_eq(r.out.t.details.len, 13);
	cr_assert_eq(memcmp(r.out.t.details.ptr, "{\"n\":1,\"m\":2}", 13), 0);
	cr_assert_geq(r.out.t.finished_at, r.out.t.started_at);
	ops_task_free(&r.out);
}

Test(ops, refused_transitions_change_nothing)
{
	struct ops_change_result r;
	struct ops_task before = { 0 }, after = { 0 };
	uint64_t uid = add("movies", "documentAddition");

	cr_assert_eq(change(OPS_SUCCEED, uid, &r), LMT_ETRANSITION);
	cr_assert_eq(r.was, TASK_ENQUEUED);
	cr_assert_null(r.out.buf);
	cr_assert_eq(change(OPS_START, uid, &r), 0);
	ops_task_free(&r.out);
	cr_assert_eq(change(OPS_FAIL, uid, &r), 0);
	cr_assert_eq(r.out.t.error_code.len, 4);
	ops_task_free(&r.out);
	cr_assert_eq(get(uid, &before), 0);
	cr_assert_eq(change(OPS_START, uid, &r), LMT_ETRANSITION);
	cr_assert_eq(r.was, TASK_FAILED);
	cr_assert_eq(change(OPS_HEARTBEAT, uid, &r), LMT_ETRANSITION);
	cr_assert_eq(get(uid, &after), 0);
	cr_assert_eq(after.t.finished_at, before.t.finished_at);
	cr_assert_eq(after.t.status, TASK_FAILED);
	cr_assert_eq(change(OPS_START, 99, &r), MDB_NOTFOUND);
	ops_task_free(&before);
	ops_task_free(&after);
}

Test(ops, claim_takes_the_oldest_match_once)
{
	struct ops_change_result r;
	struct ops_change ch = { .kind = OPS_CLAIM, .claim_index = STR("books") };

	add("movies", "documentAddition");
	add("books", "documentAddition");
	add("books", "settingsUpdate");
	cr_assert_eq(ops_change(s, &ch, &r), 0);
	cr_assert_eq(r.uid, 1);
	ops_task_free(&r.out);
	ch.claim_type = STR("settingsUpdate");
	cr_assert_eq(ops_change(s, &ch, &r), 0);
	cr_assert_eq(r.uid, 2);
	ops_task_free(&r.out);
	cr_assert_eq(ops_change(s, &ch, &r), MDB_NOTFOUND);
}

Test(ops, heartbeat_needs_a_lease_and_extends_it)
{
	struct ops_change_result r;
	uint64_t uid = add("movies", "documentAddition");
	struct ops_change start = { .kind = OPS_START, .uid = uid };
	struct ops_change hb = { .kind = OPS_HEARTBEAT, .uid = uid };

	cr_assert_eq(ops_change(s, &start, &r), 0);
	ops_task_free(&r.out);
	cr_assert_eq(ops_change(s, &hb, &r), LMT_ENOLEASE);
	hb.lease = 60 * INT64_C(1000000);
	cr_assert_eq(ops_change(s, &hb, &r), 0);
	int64_t first = r.out.t.lease_until;
	cr_assert_gt(first, r.out.t.started_at);
	cr_assert_eq(r.out.t.lease_ms, 60000);
	ops_task_free(&r.out);
	hb.lease = 0;	/* the task's own lease length */
	sleep_ms(2);
	cr_assert_eq(ops_change(s, &hb, &r), 0);
	cr_assert_gt(r.out.t.lease_until, first);
	ops_task_free(&r.out);
}

Test(ops, an_expired_lease_fails_the_task_and_later_finishes_are_refused)
{
	struct ops_change_result r;
	struct ops_task t = { 0 };
	uint64_t uid = add("movies", "documentAddition"), n = 0;
	struct ops_change start = { .kind = OPS_START, .uid = uid, .lease = 1000 };

	cr_assert_eq(ops_change(s, &start, &r), 0);
	ops_task_free(&r.out);
	sleep_ms(5);
	cr_assert_eq(ops_reap(s, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert_eq(get(uid, &t), 0);
	cr_assert_eq(t.t.status, TASK_FAILED);
	cr_assert_eq(t.t.lease_until, 0);
	cr_assert(t.t.error_code.len == 18 && memcmp(t.t.error_code.ptr, "task_lease_expired", 18) == 0);
	cr_assert(ops_lease_ended(&t.t));
	ops_task_free(&t);
	cr_assert_eq(change(OPS_SUCCEED, uid, &r), LMT_ELEASE);
	cr_assert_eq(r.was, TASK_FAILED);
	cr_assert_eq(ops_reap(s, &n), 0);
	cr_assert_eq(n, 0);
}

Test(ops, a_requeued_task_goes_back_to_the_queue_and_the_old_claim_is_refused)
{
	struct ops_change_result r;
	uint64_t uid = add("movies", "documentAddition");
	struct ops_change start = { .kind = OPS_START, .uid = uid, .lease = 1000, .requeue = 1 };

	cr_assert_eq(ops_change(s, &start, &r), 0);
	int64_t started = r.out.t.started_at;
	ops_task_free(&r.out);
	sleep_ms(5);
	/* Any write reaps first: the succeed finds the task back in the queue. */
	cr_assert_eq(change(OPS_SUCCEED, uid, &r), LMT_ELEASE);
	cr_assert_eq(r.was, TASK_ENQUEUED);
	start.lease = 0;
	start.requeue = 0;
	cr_assert_eq(ops_change(s, &start, &r), 0);
	ops_task_free(&r.out);
	struct ops_change late = { .kind = OPS_SUCCEED, .uid = uid, .started_at = started };
	cr_assert_eq(ops_change(s, &late, &r), LMT_ECLAIMED);
}

Test(ops, the_lease_rule_knows_failed_tasks_of_older_stores)
{
	struct task t;

	task_init(&t, "m", 1, "x", 1, "{}", 2);
	t.status = TASK_FAILED;
	t.error_code = STR("task_lease_expired");
	cr_assert(ops_lease_ended(&t));
	t.error_code = STR("other");
	cr_assert_not(ops_lease_ended(&t));
	t.status = TASK_CANCELED;
	t.lease_expired = 1;
	cr_assert_not(ops_lease_ended(&t));
}

Test(ops, cancel_records_a_task_cancelation)
{
	struct ops_record_result r;
	struct ops_task t = { 0 };
	uint64_t a = add("movies", "x"), b = add("movies", "y"), uids[] = { a, b };

	cr_assert_eq(ops_cancel(s, uids, 2, "?uids=0,1", &r), 0);
	cr_assert_eq(r.changed, 2);
	cr_assert_eq(r.out.t.uid, 2);
	cr_assert_null(r.out.t.index_uid.ptr);
	cr_assert_eq(r.out.t.status, TASK_SUCCEEDED);
	const char want[] = "{\"matchedTasks\":2,\"canceledTasks\":2,\"originalFilter\":\"?uids=0,1\"}";
	cr_assert_eq(r.out.t.details.len, sizeof(want) - 1);
	cr_assert_eq(memcmp(r.out.t.details.ptr, want, sizeof(want) - 1), 0);
	ops_task_free(&r.out);
	cr_assert_eq(get(a, &t), 0);
	cr_assert_eq(t.t.status, TASK_CANCELED);
	cr_assert_eq(t.t.canceled_by, 2);
	ops_task_free(&t);
	cr_assert_eq(ops_cancel(s, uids, 2, "?uids=0,1", &r), LMT_ETRANSITION);
	uids[1] = 42;
	cr_assert_eq(ops_cancel(s, uids, 2, "?uids=0,42", &r), MDB_NOTFOUND);
	cr_assert_eq(r.missing, 42);
}

Test(ops, delete_removes_finished_tasks_only_and_keeps_the_newest)
{
	struct ops_record_result r;
	struct ops_change_result cr;
	struct ops_task t = { 0 };
	struct query q;
	uint64_t uids[4];

	for (int i = 0; i < 4; i++)
		uids[i] = add("movies", "x");
	cr_assert_eq(ops_cancel(s, uids, 3, "?uids=0,1,2", &r), 0);	/* uid 4 records it */
	ops_task_free(&r.out);
	query_init(&q);
	cr_assert_eq(ops_delete(s, &q, 1, "?keep=1", &r), 0);
	/* Matched: 0-3 and the taskCancelation; finished: 0, 1, 2, 4; the newest (4) kept. */
	cr_assert_eq(r.matched, 5);
	cr_assert_eq(r.changed, 3);
	cr_assert(r.out.t.type.len == 12 && memcmp(r.out.t.type.ptr, "taskDeletion", 12) == 0);
	ops_task_free(&r.out);
	cr_assert_eq(get(0, &t), MDB_NOTFOUND);
	cr_assert_eq(get(3, &t), 0);
	ops_task_free(&t);
	cr_assert_eq(get(4, &t), 0);
	ops_task_free(&t);
	cr_assert_eq(change(OPS_START, 3, &cr), 0);	/* the enqueued one is untouched */
	ops_task_free(&cr.out);
}

Test(ops, index_delete_keeps_the_tasks)
{
	struct ops_task t = { 0 };
	MDB_txn *txn;

	add("movies", "x");
	cr_assert_eq(ops_index_delete(s, STR("movies")), 0);
	cr_assert_eq(ops_index_delete(s, STR("movies")), MDB_NOTFOUND);
	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	cr_assert_eq(store_index_exists(s, txn, STR("movies")), MDB_NOTFOUND);
	mdb_txn_abort(txn);
	cr_assert_eq(get(0, &t), 0);
	ops_task_free(&t);
}

Test(ops, keys_are_stored_hashed_and_revoked_by_secret_or_uid)
{
	struct auth_key k = { .all = 1 }, k2 = { .all = 0, .nindexes = 1,
	    .indexes = { STR("mov*") } };
	char secret[AUTH_KEY_CHARS + 1], secret2[AUTH_KEY_CHARS + 1], uid[37];
	unsigned char h[AUTH_HASH_BYTES];
	const void *rec;
	size_t len;
	MDB_txn *txn;

	cr_assert_eq(ops_key_create(s, &k, secret), 0);
	cr_assert_eq(strlen(secret), AUTH_KEY_CHARS);
	cr_assert_eq(ops_key_create(s, &k2, secret2), 0);
	auth_hash(secret, AUTH_KEY_CHARS, h);
	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	cr_assert_eq(store_key_get(s, txn, h, sizeof(h), &rec, &len), 0);
	cr_assert_null(memmem(rec, len, secret, AUTH_KEY_CHARS), "the secret itself is stored");
	mdb_txn_abort(txn);
	cr_assert_eq(ops_key_delete(s, secret), 0);
	cr_assert_eq(ops_key_delete(s, secret), MDB_NOTFOUND);
	auth_uid_format(k2.uid, uid);
	cr_assert_eq(ops_key_delete(s, uid), 0);
	cr_assert_eq(ops_key_delete(s, uid), MDB_NOTFOUND);
}

Test(ops, init_creates_a_private_store_and_reopens_one)
{
	struct stat st;
	int shared = -1;

	cr_assert_eq(ops_init(tmpstore_path("fresh"), (gid_t)-1, 0, &shared), 0);
	cr_assert_eq(shared, 0);
	cr_assert_eq(stat(tmpstore_path("fresh/data.mdb"), &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600);
	cr_assert_eq(ops_init(tmpstore_path("fresh"), (gid_t)-1, 0, &shared), 0);
	cr_assert_eq(ops_init(tmpstore_path("fresh/data.mdb"), (gid_t)-1, 0, &shared) != 0, 1);
}

Test(ops, settings_read_as_defaults_until_set)
{
	struct settings set;
	MDB_txn *txn;

	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	cr_assert_eq(settings_read(s, txn, &set), 0);
	mdb_txn_abort(txn);
	cr_assert_eq(set.stored, 0);
	cr_assert_eq(set.v[SETTING_MAX_TASKS], SETTINGS_MAX_TASKS_DEFAULT);
	cr_assert_geq(set.v[SETTING_MAX_BYTES], UINT64_C(1) << 20);
	cr_assert_eq(ops_config_set(s, SETTING_MAX_TASKS, 7, &set), 0);
	cr_assert_eq(set.v[SETTING_MAX_TASKS], 7);
	cr_assert_eq(set.stored, 1u << SETTING_MAX_TASKS);
}

Test(ops, settings_parse_sizes_and_counts)
{
	enum setting_id id;
	const char *why;
	uint64_t v;

	cr_assert_eq(settings_find("maxBytes", &id), 0);
	cr_assert_eq(id, SETTING_MAX_BYTES);
	cr_assert_eq(settings_find("colour", &id), LMT_EINVAL);
	cr_assert_eq(settings_find("compat", &id), 0);
	cr_assert_eq(id, SETTING_COMPAT);
	cr_assert_eq(settings_parse(SETTING_COMPAT, "v1", &v, &why), 0);
	cr_assert_eq(v, 1);
	cr_assert_eq(settings_parse(SETTING_COMPAT, "v0.25", &v, &why), 0);
	cr_assert_eq(v, 0);
	cr_assert_eq(settings_parse(SETTING_COMPAT, "v2", &v, &why), LMT_EINVAL);
	cr_assert_eq(settings_parse(SETTING_MAX_BYTES, "512MiB", &v, &why), 0);
	cr_assert_eq(v, UINT64_C(512) << 20);
	cr_assert_eq(settings_parse(SETTING_MAX_BYTES, "2G", &v, &why), 0);
	cr_assert_eq(v, UINT64_C(2) << 30);
	cr_assert_eq(settings_parse(SETTING_MAX_BYTES, "1048576", &v, &why), 0);
	cr_assert_eq(settings_parse(SETTING_MAX_BYTES, "1000", &v, &why), LMT_EINVAL, "under 1 MiB");
	cr_assert_eq(settings_parse(SETTING_MAX_BYTES, "5X", &v, &why), LMT_EINVAL);
	cr_assert_eq(settings_parse(SETTING_MAX_BYTES, "99999999999T", &v, &why), LMT_EINVAL);
	cr_assert_eq(settings_parse(SETTING_MAX_TASKS, "0", &v, &why), 0);
	cr_assert_eq(v, 0);
	cr_assert_eq(settings_parse(SETTING_MAX_TASKS, "-1", &v, &why), LMT_EINVAL);
	cr_assert_eq(settings_parse(SETTING_MAX_TASKS, "12a", &v, &why), LMT_EINVAL);
}

Test(ops, past_max_tasks_the_oldest_finished_go_in_the_same_transaction)
{
	struct ops_enqueue_result r;
	struct ops_change_result cr;
	struct ops_task t = { 0 };
	struct settings set;
	struct task nt;

	cr_assert_eq(ops_config_set(s, SETTING_MAX_TASKS, 10, &set), 0);
	for (int i = 0; i < 10; i++)
		add("movies", "x");
	for (uint64_t u = 0; u < 6; u++) {
		cr_assert_eq(change(OPS_START, u, &cr), 0);
		ops_task_free(&cr.out);
		cr_assert_eq(change(u % 2 ? OPS_FAIL : OPS_SUCCEED, u, &cr), 0);
		ops_task_free(&cr.out);
	}
	task_init(&nt, "movies", 6, "y", 1, "{}", 2);
	cr_assert_eq(ops_enqueue(s, &nt, 1, &r), 0);
	cr_assert_eq(nt.uid, 10);
	/* 11 tasks: down to 9 (90% of 10), the taskDeletion included: 3 finished deleted. */
	cr_assert_eq(r.trimmed, 3);
	cr_assert_eq(r.deletion.t.uid, 11);
	const char want[] = "{\"matchedTasks\":3,\"deletedTasks\":3,\"originalFilter\":\"?maxTasks=10\"}";
	cr_assert(r.deletion.t.details.len == sizeof(want) - 1 &&
	    memcmp(r.deletion.t.details.ptr, want, sizeof(want) - 1) == 0);
	ops_task_free(&r.deletion);
	cr_assert_eq(get(2, &t), MDB_NOTFOUND);
	cr_assert_eq(get(3, &t), 0, "the fourth oldest finished task stays");
	ops_task_free(&t);
	cr_assert_eq(get(6, &t), 0, "enqueued tasks are never deleted");
	ops_task_free(&t);
	cr_assert_eq(ops_config_set(s, SETTING_MAX_TASKS, 0, &set), 0);
	cr_assert_eq(ops_enqueue(s, &nt, 1, &r), 0);
	cr_assert_eq(r.trimmed, 0, "0 turns the limit off");
}

Test(ops, past_the_share_of_max_bytes_new_tasks_are_refused_and_nothing_is_added)
{
	struct ops_enqueue_result r;
	struct ops_record_result rr;
	struct settings set;
	struct task t[200];
	static char details[3000];
	uint64_t before, after;
	MDB_txn *txn;
	int rc = 0, rounds = 0;

	memset(details, 'x', sizeof(details));
	memcpy(details, "{\"p\":\"", 6);
	memcpy(details + sizeof(details) - 2, "\"}", 2);
	cr_assert_eq(ops_config_set(s, SETTING_MAX_BYTES, UINT64_C(1) << 20, &set), 0);
	for (int i = 0; i < 200; i++)
		task_init(&t[i], "movies", 6, "x", 1, details, sizeof(details));
	while (rounds < 100 && (rc = ops_enqueue(s, t, 20, &r)) == 0)
		rounds++;
	cr_assert_eq(rc, LMT_EFULL);
	cr_assert_gt(r.live_bytes, r.limit_bytes);
	cr_assert_eq(r.limit_bytes, (UINT64_C(1) << 20) / 100 * SETTINGS_ENQUEUE_PERCENT);
	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	cr_assert_eq(store_count(s, txn, STORE_SEQ_ALL, NULL, 0, &before), 0);
	cr_assert_eq(store_live_bytes(s, txn, &after), 0);
	mdb_txn_abort(txn);
	cr_assert_eq(before, (uint64_t)rounds * 20, "the refused batch added nothing");
	cr_assert_leq(after, r.limit_bytes);
	/* Canceling and deleting still work; then there is room again. */
	uint64_t uids[20];
	for (int i = 0; i < 20; i++)
		uids[i] = (uint64_t)i;
	cr_assert_eq(ops_cancel(s, uids, 20, "?uids=0..19", &rr), 0);
	ops_task_free(&rr.out);
	struct query q;
	query_init(&q);
	cr_assert_eq(ops_delete(s, &q, 0, "?statuses=canceled", &rr), 0);
	ops_task_free(&rr.out);
	cr_assert_eq(ops_enqueue(s, t, 1, &r), 0);
}

/* 1 when batch uid has a record. */
static int
batch_exists(uint64_t uid)
{
	const void *rec;
	size_t len;
	MDB_txn *txn;
	int rc;

	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	rc = store_batch_get(s, txn, uid, &rec, &len);
	mdb_txn_abort(txn);
	cr_assert(rc == 0 || rc == MDB_NOTFOUND);
	return rc == 0;
}

/* Deletes the tasks q's filter string names (?uids=...) through ops_delete. */
static uint64_t
delete_uids(const char *uids)
{
	struct ops_record_result rr;
	struct query_error err;
	struct query q;

	query_init(&q);
	cr_assert_eq(query_set(&q, "uids", uids, strlen(uids), &err), 0);
	cr_assert_eq(ops_delete(s, &q, 0, uids, &rr), 0);
	uint64_t changed = rr.changed;
	ops_task_free(&rr.out);
	return changed;
}

Test(ops, a_batch_goes_with_its_last_task)
{
	struct ops_change ch = { .kind = OPS_CLAIM };
	struct ops_change_result r;
	struct ops_task out[2];
	size_t n;

	for (int i = 0; i < 3; i++)
		add("movies", "x");
	cr_assert_eq(ops_claim_batch(s, &ch, 2, out, &n), 0);	/* batch 0: tasks 0, 1 */
	cr_assert_eq(n, 2);
	ops_task_free(&out[0]);
	ops_task_free(&out[1]);
	cr_assert_eq(change(OPS_SUCCEED, 0, &r), 0);
	ops_task_free(&r.out);
	cr_assert_eq(change(OPS_SUCCEED, 1, &r), 0);
	ops_task_free(&r.out);
	cr_assert_eq(change(OPS_START, 2, &r), 0);		/* batch 1: task 2 */
	ops_task_free(&r.out);
	cr_assert_eq(change(OPS_SUCCEED, 2, &r), 0);
	ops_task_free(&r.out);
	cr_assert_eq(delete_uids("0"), 1);			/* task 3, batch 2 */
	cr_assert(batch_exists(0), "task 1 is still in batch 0");
	cr_assert(batch_exists(2), "the taskDeletion's own batch");
	cr_assert_eq(delete_uids("1,2"), 2);			/* task 4, batch 3 */
	cr_assert_not(batch_exists(0), "its last task deleted, batch 0 is deleted too");
	cr_assert_not(batch_exists(1));
	cr_assert_eq(delete_uids("3"), 1);
	cr_assert_not(batch_exists(2), "a taskDeletion's batch goes with it");
	cr_assert(batch_exists(3));
}

Test(ops, max_tasks_deletes_the_batches_of_the_tasks_it_deletes)
{
	struct ops_change_result r;
	struct ops_enqueue_result er;
	struct settings set;
	struct task nt;

	cr_assert_eq(ops_config_set(s, SETTING_MAX_TASKS, 10, &set), 0);
	for (uint64_t i = 0; i < 10; i++) {
		add("movies", "x");
		cr_assert_eq(change(OPS_START, i, &r), 0);	/* batch i */
		ops_task_free(&r.out);
		cr_assert_eq(change(OPS_SUCCEED, i, &r), 0);
		ops_task_free(&r.out);
	}
	task_init(&nt, "movies", 6, "x", 1, "{}", 2);
	cr_assert_eq(ops_enqueue(s, &nt, 1, &er), 0);
	cr_assert_eq(er.trimmed, 3);
	ops_task_free(&er.deletion);
	for (uint64_t b = 0; b < 3; b++)
		cr_assert_not(batch_exists(b), "batch %" PRIu64 " went with its task", b);
	cr_assert(batch_exists(3));
	cr_assert(batch_exists(10), "the taskDeletion's batch");
}

Test(ops, a_batch_left_with_no_task_by_a_requeue_is_deleted)
{
	struct ops_change ch = { .kind = OPS_CLAIM, .lease = 1000, .requeue = 1 };
	struct ops_change_result r;
	uint64_t reaped;

	add("movies", "x");
	cr_assert_eq(ops_change(s, &ch, &r), 0);		/* batch 0 */
	ops_task_free(&r.out);
	cr_assert(batch_exists(0));
	sleep_ms(5);
	cr_assert_eq(ops_reap(s, &reaped), 0);
	cr_assert_eq(reaped, 1);
	cr_assert_not(batch_exists(0), "its only task went back to the queue");
}

/* A key that may only cancel, sending cancelations that match nothing: each is recorded
 * (as in Meilisearch) until the store is full for new tasks, then refused; deleting the
 * finished tasks frees the records and their batches, and new tasks are taken again. */
Test(ops, cancelations_of_nothing_stop_at_the_limit_and_a_delete_frees_them)
{
	struct ops_record_result rr;
	struct settings set;
	struct query_error err;
	struct query q;
	uint64_t next_before, next_after;
	MDB_txn *txn;
	int rc = 0, n = 0;

	cr_assert_eq(ops_config_set(s, SETTING_MAX_BYTES, UINT64_C(256) << 10, &set), 0);
	query_init(&q);
	cr_assert_eq(query_set(&q, "uids", "999999", 6, &err), 0);
	while (n < 2000 && (rc = ops_cancel_query(s, &q, "?uids=999999", &rr)) == 0) {
		ops_task_free(&rr.out);
		n++;
	}
	cr_assert_eq(rc, LMT_EFULL, "refused past the limit after %d, not %d", n, rc);
	cr_assert_gt(n, 10, "recorded below the limit, as Meilisearch does");
	cr_assert_null(rr.out.buf);
	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	cr_assert_eq(store_next_uid(s, txn, &next_before), 0);
	mdb_txn_abort(txn);
	cr_assert_eq(next_before, (uint64_t)n, "the refused one recorded nothing");
	struct query none;
	query_init(&none);
	cr_assert_eq(query_set(&none, "uids", "999999", 6, &err), 0);
	cr_assert_eq(ops_delete(s, &none, 0, "?uids=999999", &rr), LMT_EFULL,
	    "a delete of nothing is refused alike");
	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	cr_assert_eq(store_next_uid(s, txn, &next_after), 0);
	mdb_txn_abort(txn);
	cr_assert_eq(next_after, next_before);

	/* The operator deletes every finished task: the records and their batches go. */
	struct query all;
	query_init(&all);
	cr_assert_eq(query_set(&all, "statuses", "*", 1, &err), 0);
	cr_assert_eq(ops_delete(s, &all, 0, "?statuses=*", &rr), 0);
	cr_assert_eq(rr.changed, (uint64_t)n);
	ops_task_free(&rr.out);
	for (uint64_t b = 0; b < (uint64_t)n; b++)
		cr_assert_not(batch_exists(b), "batch %" PRIu64 " went with its task", b);
	add("movies", "x");
}

/* Reads the whole file at path into a malloc'd buffer; *len its size. */
static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;

	cr_assert_not_null(f);
	cr_assert_eq(fseek(f, 0, SEEK_END), 0);
	*len = (size_t)ftell(f);
	rewind(f);
	cr_assert_not_null(buf = malloc(*len));
	cr_assert_eq(fread(buf, 1, *len, f), *len);
	fclose(f);
	return buf;
}

/* Writes len bytes over the file at path, in place (the same inode, as cp does). */
static void
spill(const char *path, const char *buf, size_t len)
{
	FILE *f = fopen(path, "wb");

	cr_assert_not_null(f);
	cr_assert_eq(fwrite(buf, 1, len, f), len);
	cr_assert_eq(fclose(f), 0);
}

/* The case: a copy of txn N put over the store at txn N + 1 while it is open is
 * read at the meta page lock.mdb picks, and the next commit overwrites the copy's newest. */
Test(ops, a_data_file_copied_over_the_open_store_is_refused_for_reads_and_writes)
{
	size_t len, now_len;
	struct stat a, b;

	add("movies", "documentAddition");
	add("movies", "documentAddition");
	cr_assert_eq(store_check_replaced(s), 0);
	char *copy = slurp(tmpstore_path("db/data.mdb"), &len);
	add("books", "documentAddition");
	cr_assert_eq(stat(tmpstore_path("db/data.mdb"), &a), 0);
	spill(tmpstore_path("db/data.mdb"), copy, len);
	cr_assert_eq(stat(tmpstore_path("db/data.mdb"), &b), 0);
	cr_assert_eq(a.st_ino, b.st_ino);
	cr_assert_eq(store_check_replaced(s), LMT_EREPLACED);
	cr_assert(strstr(store_check_replaced_text(), "went back in time"), "%s",
	    store_check_replaced_text());
	MDB_txn *txn;
	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	cr_assert_eq(store_check_snapshot(s, txn), LMT_EREPLACED);
	mdb_txn_abort(txn);
	/* No write builds on the meta page the lock file picks. */
	struct task t;
	task_init(&t, "movies", 6, "documentAddition", 16, "{}", 2);
	cr_assert_eq(ops_enqueue(s, &t, 1, NULL), LMT_EREPLACED);
	char *now = slurp(tmpstore_path("db/data.mdb"), &now_len);
	cr_assert(now_len == len && memcmp(now, copy, len) == 0, "the copy was written on");
	free(now);
	free(copy);
}

Test(ops, a_data_file_moved_over_the_open_store_is_another_file)
{
	size_t len;

	add("movies", "documentAddition");
	char *copy = slurp(tmpstore_path("db/data.mdb"), &len);
	spill(tmpstore_path("moved.mdb"), copy, len);
	free(copy);
	cr_assert_eq(rename(tmpstore_path("moved.mdb"), tmpstore_path("db/data.mdb")), 0);
	cr_assert_eq(store_check_replaced(s), LMT_EREPLACED);
	cr_assert(strstr(store_check_replaced_text(), "is another file"), "%s",
	    store_check_replaced_text());
}

/* The uids of the store's tasks, newest first, as "4,3,..." in buf. */
static const char *
uids_of(char *buf, size_t cap)
{
	MDB_txn *txn;
	store_iter *it;
	uint64_t uid;
	size_t n = 0;

	buf[0] = '\0';
	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	cr_assert_eq(store_iter_open(s, txn, &it), 0);
	for (int rc = store_iter_seek(it, STORE_SEQ_ALL, NULL, 0, UINT64_MAX, 1, &uid); rc == 0;
	    rc = store_iter_next(it, &uid))
		n += (size_t)snprintf(buf + n, cap - n, "%s%llu", n ? "," : "",
		    (unsigned long long)uid);
	store_iter_close(it);
	mdb_txn_abort(txn);
	return buf;
}

static void
no_problem(void *ctx, const char *line)
{
	(void)ctx;
	cr_log_error("check: %s", line);
}

Test(ops, restore_replaces_the_tasks_keeps_uids_and_logs_after_the_newest_change)
{
	struct ops_restore_result r;
	struct ops_change_result cr;
	struct feed_entry e[8];
	uint64_t first, last, after, problems, checked;
	MDB_txn *txn;
	size_t n;
	char buf[64];

	add("movies", "documentAddition");	/* 0 */
	add("books", "documentAddition");	/* 1 */
	cr_assert_eq(store_backup(s, tmpstore_path("b")), 0);
	cr_assert_eq(store_backup(s, tmpstore_path("b")), EEXIST);
	add("movies", "documentAddition");	/* 2 */
	/* A webhook made after the backup: its cursor counts in the store's log, which stays. */
	struct webhook w = { 0 }, got;
	w.url = (struct task_str){ "http://127.0.0.1:9/x", 20 };
	w.headers = (struct task_str){ "{}", 2 };
	w.filter = (struct task_str){ "", 0 };
	cr_assert_eq(ops_webhook_add(s, &w), 0);
	cr_assert_eq(change(OPS_START, 0, &cr), 0);
	ops_task_free(&cr.out);
	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	cr_assert_eq(feed_bounds(s, txn, &first, &last), 0);
	size_t id_before = mdb_txn_id(txn);
	mdb_txn_abort(txn);

	cr_assert_eq(ops_restore(s, tmpstore_path("db"), &r), LMT_EINVAL);
	cr_assert(r.backup_failed);
	cr_assert_eq(ops_restore(s, tmpstore_path("b"), &r), 0);
	cr_assert_eq(r.tasks, 2);
	cr_assert_eq(r.changed, 2);	/* 0 enqueued again, 2 gone */
	cr_assert_eq(r.next_uid, 3);
	cr_assert_str_eq(uids_of(buf, sizeof(buf)), "1,0");

	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	/* One commit on the live store: its id, and every key made of it, moved forward. */
	cr_assert_gt(mdb_txn_id(txn), id_before);
	after = last;
	cr_assert_eq(feed_read(s, txn, &after, e, 8, &n), 0);
	cr_assert_eq(n, 2);
	cr_assert_gt(e[0].seq, last);
	cr_assert_eq(e[0].uid, 0);
	cr_assert_eq(e[0].status, TASK_ENQUEUED);
	cr_assert_eq(e[1].uid, 2);
	cr_assert_eq(e[1].status, FEED_REMOVED);
	cr_assert_eq(store_check(s, txn, no_problem, NULL, &checked, &problems), 0);
	cr_assert_eq(problems, 0);
	cr_assert_eq(webhook_get(s, txn, w.id, &got), 0);
	cr_assert_eq(got.cursor, w.cursor);
	mdb_txn_abort(txn);

	/* Uids handed out before the restore are never handed out again. */
	cr_assert_eq(add("movies", "documentAddition"), 3);
	cr_assert_str_eq(uids_of(buf, sizeof(buf)), "3,1,0");
}

/* ---- a worker's progress ---- */

/* A heartbeat of uid reporting done of total (step NULL: the last one stays). */
static int
report(uint64_t uid, uint32_t done, uint32_t total, const char *step,
    struct ops_change_result *r)
{
	struct ops_change ch = { .kind = OPS_HEARTBEAT, .uid = uid, .progress_done = done,
	    .progress_total = total, .step = step, .step_len = step ? strlen(step) : 0 };

	return ops_change(s, &ch, r);
}

/* The newest sequence of the change log. */
static uint64_t
log_last(void)
{
	uint64_t first, last;
	MDB_txn *txn;

	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	cr_assert_eq(feed_bounds(s, txn, &first, &last), 0);
	mdb_txn_abort(txn);
	return last;
}

/* Asserts that task uid's record carries no progress. */
static void
expect_no_progress(uint64_t uid, const char *why)
{
	struct ops_task t = { 0 };

	cr_assert_eq(get(uid, &t), 0);
	cr_assert_eq(t.t.progress_total, 0, "%s", why);
	cr_assert_eq(t.t.progress_done, 0, "%s", why);
	cr_assert_null(t.t.progress_step.ptr, "%s", why);
	ops_task_free(&t);
}

Test(ops, a_heartbeat_reports_progress_and_refuses_bad_values_changing_nothing)
{
	struct ops_change_result r;
	struct ops_task t = { 0 };
	uint64_t uid = add("movies", "documentAddition");
	struct ops_change start = { .kind = OPS_START, .uid = uid, .lease = 60000000 };
	char long_step[TASK_STEP_MAX + 2];

	/* Only a processing task takes progress. */
	cr_assert_eq(report(uid, 1, 2, "x", &r), LMT_ETRANSITION);
	cr_assert_eq(r.was, TASK_ENQUEUED);
	cr_assert_eq(ops_change(s, &start, &r), 0);
	int64_t started = r.out.t.started_at, lease = r.out.t.lease_until;
	ops_task_free(&r.out);

	tmpstore_clock_move(1000000);	/* a second on */
	cr_assert_eq(report(uid, 40, 100, "indexing \xc3\xa9", &r), 0);
	/* The result owns its strings: the step outlives the transaction. */
	cr_assert_eq(r.out.t.progress_done, 40);
	cr_assert_eq(r.out.t.progress_total, 100);
	cr_assert_eq(r.out.t.progress_step.len, 11);
	cr_assert(memcmp(r.out.t.progress_step.ptr, "indexing \xc3\xa9", 11) == 0);
	cr_assert_geq(r.out.t.lease_until, lease + 1000000, "the heartbeat, a second on, extends the lease too");
	ops_task_free(&r.out);

	/* No step given: the last one stays; an empty one clears it. */
	cr_assert_eq(report(uid, 50, 100, NULL, &r), 0);
	cr_assert_eq(r.out.t.progress_step.len, 11);
	ops_task_free(&r.out);

	/* Refused, and the record is as it was. */
	memset(long_step, 'a', sizeof(long_step) - 1);
	long_step[sizeof(long_step) - 1] = '\0';
	cr_assert_eq(report(uid, 11, 10, NULL, &r), LMT_EINVAL, "done past the total");
	/* A heartbeat without progress keeps the last report. */
	cr_assert_eq(report(uid, 0, 0, NULL, &r), 0);
	cr_assert_eq(r.out.t.progress_done, 50);
	ops_task_free(&r.out);
	cr_assert_eq(report(uid, 1, 10, "\xff", &r), LMT_EINVAL, "a step that is not UTF-8");
	cr_assert_eq(report(uid, 1, 10, long_step, &r), LMT_EINVAL, "a step too long");
	struct ops_change nul = { .kind = OPS_HEARTBEAT, .uid = uid, .progress_done = 1,
	    .progress_total = 10, .step = "a\0b", .step_len = 3 };
	cr_assert_eq(ops_change(s, &nul, &r), LMT_EINVAL, "a NUL in the step");
	cr_assert_eq(get(uid, &t), 0);
	cr_assert_eq(t.t.progress_done, 50);
	cr_assert_eq(t.t.progress_total, 100);
	cr_assert_eq(t.t.progress_step.len, 11);
	ops_task_free(&t);

	/* The claim it belongs to, as for any heartbeat. */
	struct ops_change other = { .kind = OPS_HEARTBEAT, .uid = uid, .progress_done = 1,
	    .progress_total = 2, .started_at = started + 1 };
	cr_assert_eq(ops_change(s, &other, &r), LMT_ECLAIMED);
	other.started_at = started;
	cr_assert_eq(ops_change(s, &other, &r), 0);
	ops_task_free(&r.out);

	cr_assert_eq(report(uid, 2, 2, "", &r), 0);
	cr_assert_eq(r.out.t.progress_step.len, 0);
	ops_task_free(&r.out);
}

Test(ops, a_task_started_without_a_lease_reports_progress_and_keeps_no_lease)
{
	struct ops_change_result r;
	uint64_t uid = add("movies", "documentAddition");

	tmpdb_change(OPS_START, uid);
	cr_assert_eq(report(uid, 0, 0, NULL, &r), LMT_ENOLEASE);
	cr_assert_eq(report(uid, 3, 4, "copying", &r), 0);
	cr_assert_eq(r.out.t.lease_until, 0);
	cr_assert_eq(r.out.t.progress_done, 3);
	ops_task_free(&r.out);
}

/* Starts uid with a lease (us; requeue as said) and reports 1 of 3 on it. */
static void
start_reporting(uint64_t uid, int64_t lease, int requeue)
{
	struct ops_change start = { .kind = OPS_START, .uid = uid, .lease = lease,
	    .requeue = requeue };
	struct ops_change_result r;

	cr_assert_eq(ops_change(s, &start, &r), 0);
	ops_task_free(&r.out);
	cr_assert_eq(report(uid, 1, 3, "indexing", &r), 0);
	ops_task_free(&r.out);
}

Test(ops, progress_is_cleared_whenever_the_task_leaves_processing)
{
	static const enum ops_change_kind kinds[] = { OPS_SUCCEED, OPS_FAIL, OPS_RELEASE };
	struct ops_change_result r;
	struct ops_record_result cr;
	uint64_t uid, n;

	for (size_t i = 0; i < 3; i++) {
		uid = add("movies", "documentAddition");
		start_reporting(uid, 60000000, 0);
		cr_assert_eq(change(kinds[i], uid, &r), 0);
		cr_assert_eq(r.out.t.progress_total, 0, "kind %d: the result", kinds[i]);
		ops_task_free(&r.out);
		expect_no_progress(uid, "succeed, fail, release");
	}
	/* Claimed again after a release: it starts with none. */
	struct ops_change claim = { .kind = OPS_CLAIM };
	cr_assert_eq(ops_change(s, &claim, &r), 0);
	cr_assert_eq(r.uid, uid);
	cr_assert_eq(r.out.t.progress_total, 0);
	ops_task_free(&r.out);

	uid = add("movies", "documentAddition");
	start_reporting(uid, 60000000, 0);
	cr_assert_eq(ops_cancel(s, &uid, 1, "?uids=x", &cr), 0);
	ops_task_free(&cr.out);
	expect_no_progress(uid, "cancel");

	/* The lease rule, both ways. */
	uint64_t failed = add("movies", "documentAddition");
	uint64_t requeued = add("movies", "documentAddition");
	start_reporting(failed, 60000000, 0);
	start_reporting(requeued, 60000000, 1);
	tmpstore_clock_move(61000000);
	cr_assert_eq(ops_reap(s, &n), 0);
	cr_assert_eq(n, 2);
	expect_no_progress(failed, "lease expired");
	expect_no_progress(requeued, "lease expired, requeued");
}

Test(ops, a_heartbeat_logs_a_change_only_when_its_progress_moves_a_point_or_a_step)
{
	struct ops_change_result r;
	uint64_t uid = add("movies", "documentAddition");
	struct ops_change start = { .kind = OPS_START, .uid = uid, .lease = 60000000 };
	struct ops_change hb = { .kind = OPS_HEARTBEAT, .uid = uid };

	cr_assert_eq(ops_change(s, &start, &r), 0);
	ops_task_free(&r.out);
	uint64_t before = log_last();
	/* A lease extended alone changes nothing a reader sees. */
	cr_assert_eq(ops_change(s, &hb, &r), 0);
	ops_task_free(&r.out);
	cr_assert_eq(log_last(), before);

	/* Three hundred reports, one per item of 300: the first, then one per whole point. */
	for (uint32_t i = 1; i <= 300; i++) {
		cr_assert_eq(report(uid, i, 300, i == 1 ? "indexing" : NULL, &r), 0);
		ops_task_free(&r.out);
	}
	cr_assert_eq(log_last() - before, 101);
	before = log_last();
	/* The same report again; then another step (its first report is logged). */
	cr_assert_eq(report(uid, 300, 300, NULL, &r), 0);
	ops_task_free(&r.out);
	cr_assert_eq(log_last(), before);
	cr_assert_eq(report(uid, 0, 5, "merging", &r), 0);
	ops_task_free(&r.out);
	cr_assert_eq(log_last(), before + 1);
	cr_assert_eq(report(uid, 0, 5, "merged", &r), 0);
	ops_task_free(&r.out);
	cr_assert_eq(log_last(), before + 2, "another step of the same length");
	/* Within the same point (0/5 and 2/1000 are both 0%): the record keeps the latest
	 * report though the log skips it. */
	cr_assert_eq(report(uid, 2, 1000, NULL, &r), 0);
	ops_task_free(&r.out);
	cr_assert_eq(log_last(), before + 2);
	struct ops_task t = { 0 };
	cr_assert_eq(get(uid, &t), 0);
	cr_assert_eq(t.t.progress_done, 2);
	cr_assert_eq(t.t.progress_total, 1000);
	ops_task_free(&t);
	/* Finishing is always logged. */
	tmpdb_change(OPS_SUCCEED, uid);
	cr_assert_eq(log_last(), before + 3);
}
/* The schedule: claims in priority order, delays, and what the rules of every write keep */

/* Enqueues one task of index and type with a priority and a delay (µs from now, 0: none). */
static uint64_t
add_sched(const char *index, const char *type, int32_t priority, int64_t delay)
{
	struct task t;

	task_init(&t, index, strlen(index), type, strlen(type), "{}", 2);
	t.priority = priority;
	t.not_before = delay ? clock_now() + delay : 0;
	cr_assert_eq(ops_enqueue(s, &t, 1, NULL), 0);
	return t.uid;
}

Test(ops, a_claim_of_several_keeps_to_one_priority)
{
	struct ops_change ch = { .kind = OPS_CLAIM };
	struct ops_task out[10];
	size_t n;

	add_sched("movies", "x", 0, 0);		/* 0 */
	add_sched("movies", "x", 5, 0);		/* 1 */
	add_sched("movies", "x", 0, 0);		/* 2 */
	add_sched("movies", "x", 5, 0);		/* 3 */
	add_sched("movies", "y", 5, 0);		/* 4: another type */
	add_sched("movies", "x", -1, 0);	/* 5 */
	static const uint64_t want[][3] = { { 1, 3 }, { 4 }, { 0, 2 }, { 5 } };
	static const size_t wantn[] = { 2, 1, 2, 1 };
	for (size_t b = 0; b < 4; b++) {
		cr_assert_eq(ops_claim_batch(s, &ch, 10, out, &n), 0);
		cr_assert_eq(n, wantn[b], "claim %zu took %zu tasks", b, n);
		for (size_t i = 0; i < n; i++) {
			cr_assert_eq(out[i].t.uid, want[b][i], "claim %zu, task %zu", b, i);
			ops_task_free(&out[i]);
		}
	}
	cr_assert_eq(ops_claim_batch(s, &ch, 10, out, &n), MDB_NOTFOUND);
}

Test(ops, a_delayed_task_is_claimed_once_due_and_a_claim_that_finds_nothing_promotes)
{
	struct ops_change ch = { .kind = OPS_CLAIM }, books = { .kind = OPS_CLAIM,
	    .claim_index = STR("books") };
	struct ops_change_result r;
	MDB_txn *txn;
	int64_t at;
	uint64_t uid, later = add_sched("movies", "x", 0, 3600 * INT64_C(1000000));

	cr_assert_eq(ops_change(s, &ch, &r), MDB_NOTFOUND, "an hour to wait");
	uint64_t soon = add_sched("movies", "x", 9, 1000);
	sleep_ms(5);	/* past its time: a slower machine only makes it later */
	/* A claim for another index finds nothing, but the write moved the due task. */
	cr_assert_eq(ops_change(s, &books, &r), MDB_NOTFOUND);
	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	cr_assert_eq(store_delayed_first(s, txn, &at, &uid), 0);
	cr_assert_eq(uid, later, "only the task an hour away is left to promote");
	cr_assert_eq(store_find_enqueued(s, txn, STR("movies"), (struct task_str){ NULL, 0 }, &uid),
	    0);
	cr_assert_eq(uid, soon);
	mdb_txn_abort(txn);
	cr_assert_eq(ops_change(s, &ch, &r), 0);
	cr_assert_eq(r.out.t.uid, soon);
	cr_assert_eq(r.out.t.priority, 9);
	ops_task_free(&r.out);
	cr_assert_eq(ops_change(s, &ch, &r), MDB_NOTFOUND);
}

Test(ops, a_task_put_back_by_its_lease_keeps_its_priority)
{
	struct ops_change ch = { .kind = OPS_CLAIM, .lease = 1000, .requeue = 1 };
	struct ops_change_result r;
	uint64_t reaped = 0;

	add_sched("movies", "x", 0, 0);
	uint64_t high = add_sched("movies", "x", 7, 0);
	cr_assert_eq(ops_change(s, &ch, &r), 0);
	cr_assert_eq(r.out.t.uid, high);
	ops_task_free(&r.out);
	sleep_ms(5);	/* past the 1 ms lease */
	cr_assert_eq(ops_reap(s, &reaped), 0);
	cr_assert_eq(reaped, 1);
	cr_assert_eq(ops_change(s, &ch, &r), 0);
	cr_assert_eq(r.out.t.uid, high, "back in the queue with priority 7, ahead of task 0");
	cr_assert_eq(r.out.t.priority, 7);
	ops_task_free(&r.out);
}

/* N of priority 0 (uids 0..N-1), then one of priority 7 (uid N), all due at the same time,
 * which has come; then a write that is no claim (a reap, as a heartbeat or a succeed): it promotes
 * OPS_PROMOTE_MAX of them, no more, in order.  More than twice that: the claim's own rules
 * promote as many again, and the task of priority 7 is still left waiting. */
#define N_DUE (2 * OPS_PROMOTE_MAX + 1)
static void
due_at_once(void)
{
	static struct task t[N_DUE + 1];
	MDB_txn *txn;
	int64_t at, hour = 3600 * INT64_C(1000000), then = clock_now() + hour;
	uint64_t uid, n;

	for (size_t i = 0; i <= N_DUE; i++) {
		task_init(&t[i], "movies", 6, "x", 1, "{}", 2);
		t[i].not_before = then;
	}
	t[N_DUE].priority = 7;
	cr_assert_eq(ops_enqueue(s, t, N_DUE + 1, NULL), 0);
	tmpstore_clock_move(hour + 1);
	cr_assert_eq(ops_reap(s, &n), 0);
	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	cr_assert_eq(store_delayed_first(s, txn, &at, &uid), 0, "every due task moved at once");
	cr_assert_eq(uid, OPS_PROMOTE_MAX, "the first %d moved, in order", OPS_PROMOTE_MAX);
	mdb_txn_abort(txn);
}

static void
expect_none_delayed(void)
{
	MDB_txn *txn;
	int64_t at;
	uint64_t uid;

	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	cr_assert_eq(store_delayed_first(s, txn, &at, &uid), MDB_NOTFOUND);
	mdb_txn_abort(txn);
}

Test(ops, a_write_promotes_a_bounded_number_and_a_claim_still_takes_the_highest_priority)
{
	struct ops_change ch = { .kind = OPS_CLAIM };
	struct ops_change_result r;

	due_at_once();
	/* The claim does not pass over the due task of priority 7 still waiting. */
	cr_assert_eq(ops_change(s, &ch, &r), 0);
	cr_assert_eq(r.out.t.uid, N_DUE, "claimed %" PRIu64, r.out.t.uid);
	cr_assert_eq(r.out.t.priority, 7);
	ops_task_free(&r.out);
	expect_none_delayed();
}

Test(ops, a_claim_of_several_takes_the_highest_priority_the_rules_left_waiting)
{
	struct ops_change ch = { .kind = OPS_CLAIM };
	struct ops_task out[4];
	size_t n;

	due_at_once();
	cr_assert_eq(ops_claim_batch(s, &ch, 4, out, &n), 0);
	cr_assert_eq(n, 1, "one priority a claim");
	cr_assert_eq(out[0].t.uid, N_DUE, "claimed %" PRIu64, out[0].t.uid);
	ops_task_free(&out[0]);
	expect_none_delayed();
	/* Then the rest of priority 0, from the oldest. */
	cr_assert_eq(ops_claim_batch(s, &ch, 4, out, &n), 0);
	cr_assert_eq(n, 4);
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(out[i].t.uid, i);
		ops_task_free(&out[i]);
	}
}
