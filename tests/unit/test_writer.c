/* The write routes on a real store in a temp directory: a request in, a status and a body
 * out, and the store as the CLI then reads it. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>
#include <lmdb.h>

#include "lmtasks/auth.h"
#include "lmtasks/compat.h"
#include "lmtasks/error.h"
#include "lmtasks/ops.h"
#include "lmtasks/render.h"
#include "lmtasks/store.h"
#include "lmtasks/writer.h"
#include "tmpdb.h"

#define MASTER "a-master-key-of-some-length"

static struct printbuf *body;
static struct api_response rs;
static unsigned char master[AUTH_HASH_BYTES];
static char read_key[AUTH_KEY_CHARS + 1], cancel_key[AUTH_KEY_CHARS + 1];
static char delete_key[AUTH_KEY_CHARS + 1], movies_key[AUTH_KEY_CHARS + 1];
static char star_key[AUTH_KEY_CHARS + 1];

/* 0 movies succeeded, 1 movies enqueued, 2 books enqueued, 3 books processing. */
static void
setup(void)
{
	struct task t[4];
	struct ops_change_result r;
	struct auth_key k = { .all = 1 };

	tmpdb_setup();
	task_init(&t[0], "movies", 6, "documentAddition", 16, "{}", 2);
	task_init(&t[1], "movies", 6, "settingsUpdate", 14, "{}", 2);
	task_init(&t[2], "books", 5, "indexCreation", 13, "{}", 2);
	task_init(&t[3], "books", 5, "documentAddition", 16, "{}", 2);
	cr_assert_eq(ops_enqueue(s, t, 4, NULL), 0);
	for (uint64_t u = 0; u < 4; u += 3) {
		struct ops_change ch = { .kind = OPS_START, .uid = u };
		cr_assert_eq(ops_change(s, &ch, &r), 0);
		ops_task_free(&r.out);
	}
	struct ops_change done = { .kind = OPS_SUCCEED, .uid = 0, .details = "{}", .details_len = 2 };
	cr_assert_eq(ops_change(s, &done, &r), 0);
	ops_task_free(&r.out);
	cr_assert_eq(auth_init(), 0);
	k.actions = 0;
	cr_assert_eq(ops_key_create(s, &k, read_key), 0);
	k.actions = AUTH_TASKS_CANCEL;
	cr_assert_eq(ops_key_create(s, &k, cancel_key), 0);
	k.actions = AUTH_TASKS_DELETE;
	cr_assert_eq(ops_key_create(s, &k, delete_key), 0);
	k.actions = AUTH_ALL;
	cr_assert_eq(ops_key_create(s, &k, star_key), 0);
	struct auth_key mk = { .all = 0, .nindexes = 1, .indexes = { { "movies", 6 } },
	    .actions = AUTH_TASKS_ALL };
	cr_assert_eq(ops_key_create(s, &mk, movies_key), 0);
	auth_hash(MASTER, strlen(MASTER), master);
	body = printbuf_new();
}

static void
teardown(void)
{
	printbuf_free(body);
	tmpdb_teardown();
}

TestSuite(writer, .init = setup, .fini = teardown);

/* Answers method uri with "Bearer key" (NULL: no header); returns the status. */
static int
ask(const char *method, const char *uri, const char *key)
{
	char path[512], header[128];
	const char *q = strchr(uri, '?');
	struct api_request rq = { method, uri, "", NULL, q ? q + 1 : "", NULL };
	struct writer_store w = { s, 0, tmpstore_path("db"), master };

	(void)path;
	if (key) {
		snprintf(header, sizeof(header), "Bearer %s", key);
		rq.authorization = header;
	}
	printbuf_reset(body);
	memset(&rs, 0, sizeof(rs));
	writer_handle(&rq, &w, body, &rs);
	return rs.status;
}

static void
body_has(const char *want)
{
	cr_assert_not_null(strstr(body->buf, want), "body %s\nwants %s", body->buf, want);
}

/* The task uid as the store holds it now. */
static struct task
task_of(uint64_t uid)
{
	static MDB_txn *txn;
	struct task t;

	if (txn)
		mdb_txn_abort(txn);
	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	cr_assert_eq(store_get(s, txn, uid, &t), 0, "task %llu", (unsigned long long)uid);
	return t;
}

static int
exists(uint64_t uid)
{
	MDB_txn *txn;
	struct task t;
	int rc;

	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	rc = store_get(s, txn, uid, &t);
	mdb_txn_abort(txn);
	return rc == 0;
}

Test(writer, cancel_by_filter_answers_the_summarized_task)
{
	cr_assert_eq(ask("POST", "/tasks/cancel?indexUids=books", cancel_key), 200, "%s", body->buf);
	body_has("{\"taskUid\":4,\"indexUid\":null,\"status\":\"succeeded\",\"type\":"
	    "\"taskCancelation\",\"enqueuedAt\":\"");
	cr_assert_eq(task_of(2).status, TASK_CANCELED);
	cr_assert_eq(task_of(3).status, TASK_CANCELED);
	cr_assert_eq(task_of(3).canceled_by, 4);
	cr_assert_eq(task_of(1).status, TASK_ENQUEUED, "another index's task stays");
	struct task c = task_of(4);
	cr_assert_eq(c.details.len, strlen("{\"matchedTasks\":2,\"canceledTasks\":2,"
	    "\"originalFilter\":\"?indexUids=books\"}"));
	cr_assert_eq(memcmp(c.details.ptr, "{\"matchedTasks\":2,\"canceledTasks\":2,"
	    "\"originalFilter\":\"?indexUids=books\"}", c.details.len), 0);
}

Test(writer, cancel_that_matches_only_finished_tasks_is_recorded)
{
	cr_assert_eq(ask("POST", "/tasks/cancel?uids=0", MASTER), 200, "%s", body->buf);
	struct task c = task_of(4);
	cr_assert_eq(memcmp(c.details.ptr, "{\"matchedTasks\":1,\"canceledTasks\":0,", 36), 0);
	cr_assert_eq(task_of(0).status, TASK_SUCCEEDED);
}

Test(writer, delete_by_filter_never_removes_unfinished_tasks)
{
	cr_assert_eq(ask("DELETE", "/tasks?uids=*", delete_key), 200, "%s", body->buf);
	body_has("\"type\":\"taskDeletion\"");
	cr_assert_not(exists(0), "the succeeded task is gone");
	cr_assert(exists(1) && exists(2) && exists(3));
	struct task d = task_of(4);
	cr_assert_eq(memcmp(d.details.ptr, "{\"matchedTasks\":4,\"deletedTasks\":1,"
	    "\"originalFilter\":\"?uids=*\"}", d.details.len), 0);
}

Test(writer, a_filter_is_required)
{
	cr_assert_eq(ask("POST", "/tasks/cancel", cancel_key), 400);
	cr_assert_str_eq(body->buf, "{\"message\":\"Query parameters to filter the tasks to cancel "
	    "are missing. Available query parameters are: `uids`, `indexUids`, `statuses`, `types`, "
	    "`canceledBy`, `beforeEnqueuedAt`, `afterEnqueuedAt`, `beforeStartedAt`, "
	    "`afterStartedAt`, `beforeFinishedAt`, `afterFinishedAt`.\",\"code\":"
	    "\"missing_task_filters\",\"type\":\"invalid_request\",\"link\":"
	    "\"https://docs.meilisearch.com/errors#missing_task_filters\"}");
	cr_assert_eq(ask("DELETE", "/tasks?", delete_key), 400);
	body_has("filter the tasks to delete are missing");
	cr_assert_not(exists(4), "nothing was recorded");
}

Test(writer, list_parameters_are_unknown_here)
{
	cr_assert_eq(ask("DELETE", "/tasks?limit=doggo", delete_key), 400);
	/* At compat v0.25 (the default) batchUids is no filter either, as for GET /tasks. */
	cr_assert_str_eq(body->buf, "{\"message\":\"Unknown parameter `limit`: expected one of "
	    "`uids`, `canceledBy`, `types`, `statuses`, `indexUids`, "
	    "`afterEnqueuedAt`, `beforeEnqueuedAt`, `afterStartedAt`, `beforeStartedAt`, "
	    "`afterFinishedAt`, `beforeFinishedAt`\",\"code\":\"bad_request\",\"type\":"
	    "\"invalid_request\",\"link\":\"https://docs.meilisearch.com/errors#bad_request\"}");
	cr_assert_eq(ask("POST", "/tasks/cancel?batchUids=0", cancel_key), 400);
	body_has("Unknown parameter `batchUids`: expected one of `uids`, `canceledBy`, ");
	cr_assert_null(strstr(body->buf, "`limit`"), "no parameter it refuses is listed");
	cr_assert_eq(ask("POST", "/tasks/cancel?uids=1&from=1", cancel_key), 400);
	cr_assert_eq(ask("POST", "/tasks/cancel?statuses=doggo", cancel_key), 400);
	body_has("\"code\":\"invalid_task_statuses\"");
	cr_assert_eq(task_of(1).status, TASK_ENQUEUED, "a refused request changes nothing");
	cr_assert_not(exists(4));
}

Test(writer, keys_need_the_action)
{
	static const char e403[] = "{\"message\":\"The provided API key is invalid.\",\"code\":"
	    "\"invalid_api_key\",\"type\":\"auth\",\"link\":"
	    "\"https://docs.meilisearch.com/errors#invalid_api_key\"}";

	cr_assert_eq(ask("POST", "/tasks/cancel?uids=1", read_key), 403);
	cr_assert_str_eq(body->buf, e403);
	cr_assert_eq(ask("POST", "/tasks/cancel?uids=1", delete_key), 403, "delete is not cancel");
	cr_assert_eq(ask("DELETE", "/tasks?uids=0", cancel_key), 403, "cancel is not delete");
	cr_assert_eq(ask("DELETE", "/tasks?uids=0", "wrong-key"), 403);
	cr_assert_eq(ask("DELETE", "/tasks?uids=0", NULL), 401);
	body_has("missing_authorization_header");
	cr_assert(exists(0));
	cr_assert_eq(task_of(1).status, TASK_ENQUEUED);
	/* The key comes before the parameters, as in Meilisearch. */
	cr_assert_eq(ask("POST", "/tasks/cancel?limit=1", read_key), 403);
	cr_assert_eq(ask("POST", "/tasks/cancel?uids=1", star_key), 200, "`*` may do everything");
	cr_assert_eq(ask("DELETE", "/tasks?uids=0", star_key), 200);
}

Test(writer, a_key_acts_within_its_indexes)
{
	cr_assert_eq(ask("POST", "/tasks/cancel?statuses=enqueued,processing", movies_key), 200);
	cr_assert_eq(task_of(1).status, TASK_CANCELED, "its index's task");
	cr_assert_eq(task_of(2).status, TASK_ENQUEUED, "not another index's");
	cr_assert_eq(task_of(3).status, TASK_PROCESSING);
	cr_assert_eq(ask("DELETE", "/tasks?statuses=*", movies_key), 200);
	cr_assert_not(exists(0));
	cr_assert_not(exists(1));
	cr_assert(exists(4), "the store's own taskCancelation is not the key's to delete");
}

Test(writer, only_the_two_routes)
{
	cr_assert_eq(ask("GET", "/tasks/cancel?uids=1", cancel_key), 405);
	cr_assert_str_eq(rs.allow, "POST");
	cr_assert_eq(ask("POST", "/tasks?uids=1", cancel_key), 405);
	cr_assert_str_eq(rs.allow, "DELETE");
	cr_assert_eq(ask("DELETE", "/tasks/1", MASTER), 404);
	body_has("\"code\":\"not_found\"");
	cr_assert_eq(ask("POST", "/tasks/cancel/?uids=1", cancel_key), 200, "one trailing slash");
}

Test(writer, no_store_is_a_503_after_the_checks)
{
	struct api_request rq = { "POST", "/tasks/cancel?uids=1", "", NULL, "uids=1",
	    "Bearer " MASTER };
	struct writer_store w = { NULL, LMT_ENOSTORE, "/nowhere", master };

	writer_handle(&rq, &w, body, &rs);
	cr_assert_eq(rs.status, 503);
	body_has("store_unavailable");
	rq.query_string = "";
	writer_handle(&rq, &w, body, &rs);
	cr_assert_eq(rs.status, 400, "the filters are checked first");
}

/* Compat v1: batchUids is a filter, and types are checked as the list routes check them. */
Test(writer, compat_v1_batches_and_types)
{
	struct settings st;
	struct task t;
	MDB_txn *txn;

	cr_assert_eq(ask("POST", "/tasks/cancel?batchUids=0", cancel_key), 400, "v0.25: no batches");
	body_has("\"code\":\"bad_request\"");
	cr_assert_eq(ask("POST", "/tasks/cancel?types=doggo", cancel_key), 200, "v0.25: types open");
	cr_assert_eq(ops_config_set(s, SETTING_COMPAT, COMPAT_V1, &st), 0);
	cr_assert_eq(ask("DELETE", "/tasks?types=doggo", delete_key), 400);
	body_has("\"code\":\"invalid_task_types\"");
	/* Task 3 was started alone: its batch is canceled by its batch uid. */
	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	cr_assert_eq(store_get(s, txn, 3, &t), 0);
	char uri[64];
	snprintf(uri, sizeof(uri), "/tasks/cancel?batchUids=%llu", (unsigned long long)t.batch_uid);
	mdb_txn_abort(txn);
	cr_assert_eq(ask("POST", uri, cancel_key), 200, "%s", body->buf);
	cr_assert_eq(task_of(3).status, TASK_CANCELED);
	cr_assert_eq(task_of(1).status, TASK_ENQUEUED);
}
