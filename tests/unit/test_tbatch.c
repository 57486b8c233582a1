/* Batches: the batch record, a task record with a batch uid (and one without, as 0.1.0
 * wrote it), the v1 task and batch objects, and the write library's batches. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "lmtasks/codec.h"
#include "lmtasks/compat.h"
#include "lmtasks/error.h"
#include "lmtasks/ops.h"
#include "lmtasks/query.h"
#include "lmtasks/render.h"
#include "lmtasks/tbatch.h"
#include "tmpdb.h"

#define STR(s) ((struct task_str){ (s), sizeof(s) - 1 })
#define T0 INT64_C(1628605757000000)
#define SEC INT64_C(1000000)

static struct tbatch_count names[2][TBATCH_NAMES_MAX], back[2][TBATCH_NAMES_MAX];

static struct task
task_of(uint64_t uid, const char *index, const char *type, enum task_status st)
{
	struct task t;

	task_init(&t, index, index ? strlen(index) : 0, type, strlen(type), "{}", 2);
	t.uid = uid;
	t.status = st;
	t.enqueued_at = T0 + (int64_t)uid;
	return t;
}

Test(tbatch, counts_round_trip_in_name_order)
{
	struct tbatch b, got;
	struct task a = task_of(4, "movies", "documentAddition", TASK_PROCESSING);
	struct task c = task_of(9, "books", "documentAddition", TASK_PROCESSING);
	struct task d = task_of(7, NULL, "taskCancelation", TASK_SUCCEEDED);

	tbatch_init(&b, 3, T0, names[0], names[1]);
	cr_assert_eq(tbatch_add(&b, &a), 0);
	cr_assert_eq(tbatch_add(&b, &c), 0);
	cr_assert_eq(tbatch_add(&b, &d), 0);
	cr_assert_eq(b.total, 3);
	cr_assert_eq(b.nindexes, 2, "the store's own task counts under no index");
	cr_assert_eq(b.indexes[0].name.len, 5, "books before movies");
	cr_assert_eq(b.types[0].n, 2);
	cr_assert_eq(b.first_uid, 4);
	cr_assert_eq(b.last_uid, 9);
	cr_assert_eq(b.enqueued_min, T0 + 4);
	cr_assert_eq(b.enqueued_max, T0 + 9);

	size_t len = tbatch_size(&b);
	unsigned char *buf = malloc(len);
	cr_assert_eq(tbatch_encode(&b, buf), len);
	got.uid = 3;
	cr_assert_eq(tbatch_decode(buf, len, &got, back[0], back[1]), 0);
	cr_assert_eq(got.total, 3);
	cr_assert_eq(got.status[TASK_PROCESSING], 2);
	cr_assert_eq(got.status[TASK_SUCCEEDED], 1);
	cr_assert_eq(got.ntypes, 2);
	cr_assert_eq(got.finished_at, 0);
	cr_assert_eq(got.canceled_by, TASK_NO_UID);
	cr_assert(got.strategy.len == 11 && memcmp(got.strategy.ptr, "unspecified", 11) == 0);

	/* Every shorter record, and a longer one, is refused. */
	for (size_t n = 0; n < len; n++)
		cr_expect_eq(tbatch_decode(buf, n, &got, back[0], back[1]), LMT_ECORRUPT, "len %zu", n);
	cr_assert_eq(got.kept, 3);
	buf[0] = 3;
	cr_assert_eq(tbatch_decode(buf, len, &got, back[0], back[1]), LMT_ECORRUPT);
	free(buf);
}

/* A record as lmtasks 0.2.0 wrote it: version 1, the names right after the 96-byte head,
 * no kept count. */
Test(tbatch, a_version_1_record_is_read_and_stays_version_1)
{
	struct tbatch b, got;
	struct task a = task_of(4, "movies", "documentAddition", TASK_PROCESSING);

	tbatch_init(&b, 3, T0, names[0], names[1]);
	cr_assert_eq(tbatch_add(&b, &a), 0);
	b.kept = TBATCH_KEPT_UNKNOWN;
	size_t len = tbatch_size(&b);
	unsigned char *buf = malloc(len);
	cr_assert_eq(tbatch_encode(&b, buf), len);
	cr_assert_eq(buf[0], 1);
	cr_assert_eq(len, 96 + 11 + 2 + 1 + 16 + 4 + 2 + 6 + 4, "0.2.0's layout");
	got.uid = 3;
	cr_assert_eq(tbatch_decode(buf, len, &got, back[0], back[1]), 0);
	cr_assert_eq(got.total, 1);
	cr_assert_eq(got.kept, TBATCH_KEPT_UNKNOWN);
	cr_assert_eq(tbatch_forget(&got, 1), LMT_EINVAL, "a version-1 record cannot count");
	cr_assert_eq(got.kept, TBATCH_KEPT_UNKNOWN);
	free(buf);
}

Test(tbatch, a_deleted_task_leaves_the_stats_and_the_last_one_empties_it)
{
	struct tbatch b;
	struct task a = task_of(1, "movies", "x", TASK_SUCCEEDED);
	struct task c = task_of(2, "movies", "x", TASK_FAILED);

	tbatch_init(&b, 0, T0, names[0], names[1]);
	tbatch_add(&b, &a);
	tbatch_add(&b, &c);
	cr_assert_eq(b.kept, 2);
	cr_assert_eq(tbatch_forget(&b, 1), 0, "one task is left");
	cr_assert_eq(b.total, 2, "the stats stay, as Meilisearch keeps them");
	cr_assert_eq(b.status[TASK_SUCCEEDED], 1);
	cr_assert_eq(tbatch_forget(&b, 1), 1, "none is left");
	cr_assert_eq(b.kept, 0);
}

Test(tbatch, finishes_when_its_last_task_does)
{
	struct tbatch b;
	struct task a = task_of(1, "movies", "x", TASK_PROCESSING);
	struct task c = task_of(2, "movies", "x", TASK_PROCESSING);

	tbatch_init(&b, 0, T0, names[0], names[1]);
	tbatch_add(&b, &a);
	tbatch_add(&b, &c);
	tbatch_move(&b, TASK_PROCESSING, TASK_SUCCEEDED, T0 + SEC);
	cr_assert_eq(b.finished_at, 0, "one task still processing");
	tbatch_move(&b, TASK_PROCESSING, TASK_FAILED, T0 + 2 * SEC);
	cr_assert_eq(b.finished_at, T0 + 2 * SEC);
	cr_assert_eq(b.status[TASK_SUCCEEDED], 1);
	cr_assert_eq(b.status[TASK_FAILED], 1);
	cr_assert_eq(b.status[TASK_PROCESSING], 0);
}

Test(tbatch, a_requeued_task_leaves)
{
	struct tbatch b;
	struct task a = task_of(1, "movies", "x", TASK_PROCESSING);

	tbatch_init(&b, 0, T0, names[0], names[1]);
	tbatch_add(&b, &a);
	tbatch_remove(&b, &a);
	cr_assert_eq(b.total, 0);
	cr_assert_eq(b.kept, 0);
	cr_assert_eq(b.ntypes, 0);
	cr_assert_eq(b.nindexes, 0);
	cr_assert_eq(b.status[TASK_PROCESSING], 0);
}

Test(codec, a_batch_uid_round_trips_as_version_2)
{
	struct task t = task_of(5, "movies", "documentAddition", TASK_PROCESSING), got;
	unsigned char buf[256];

	t.started_at = T0 + SEC;
	t.has_batch = 1;
	t.batch_uid = UINT64_C(1) << 40;
	size_t len = codec_encode(&t, buf);
	cr_assert_eq(len, codec_size(&t));
	cr_assert_eq(buf[0], CODEC_VERSION_BATCH);
	cr_assert_eq(codec_decode(buf, len, &got), 0);
	cr_assert(got.has_batch);
	cr_assert_eq(got.batch_uid, UINT64_C(1) << 40);
	cr_assert_eq(got.started_at, T0 + SEC);
	for (size_t n = 0; n < len; n++)
		cr_expect_eq(codec_decode(buf, n, &got), LMT_ECORRUPT, "len %zu", n);
}

Test(codec, no_batch_is_written_as_0_1_0_wrote_it)
{
	struct task t = task_of(5, "movies", "documentAddition", TASK_ENQUEUED), got;
	unsigned char buf[256];
	/* A record written by lmtasks 0.1.0 (tests/fixtures/store-0.1.0, task 4's shape):
	 * version 1, and it reads as a task of no batch. */
	size_t len = codec_encode(&t, buf);

	cr_assert_eq(buf[0], CODEC_VERSION);
	got.has_batch = 1;
	cr_assert_eq(codec_decode(buf, len, &got), 0);
	cr_assert(!got.has_batch);
}

static struct printbuf *pb;

Test(render, v1_layout_keys_in_meilisearch_order)
{
	struct task t = task_of(2, "movies", "settingsUpdate", TASK_ENQUEUED);

	pb = printbuf_new();
	cr_assert_eq(render_task_v1(pb, &t), 0);
	cr_assert_str_eq(pb->buf, "{\"uid\":2,\"batchUid\":null,\"indexUid\":\"movies\","
	    "\"status\":\"enqueued\",\"type\":\"settingsUpdate\",\"canceledBy\":null,"
	    "\"details\":{},\"error\":null,\"duration\":null,"
	    "\"enqueuedAt\":\"2021-08-10T14:29:17.000002Z\",\"startedAt\":null,\"finishedAt\":null}");
	printbuf_reset(pb);
	t.status = TASK_FAILED;
	t.has_batch = 1;
	t.batch_uid = 7;
	t.started_at = T0 + SEC;
	t.finished_at = T0 + 2 * SEC;
	t.error_code = STR("boom");
	t.error_message = STR("Boom.");
	t.error_type = TASK_ERR_INTERNAL;
	cr_assert_eq(render_task_as(pb, &t, 1), 0);
	cr_assert_str_eq(pb->buf, "{\"uid\":2,\"batchUid\":7,\"indexUid\":\"movies\","
	    "\"status\":\"failed\",\"type\":\"settingsUpdate\",\"canceledBy\":null,"
	    "\"details\":{},\"error\":{\"message\":\"Boom.\",\"code\":\"boom\",\"type\":\"internal\","
	    "\"link\":\"https://docs.meilisearch.com/errors#boom\"},\"duration\":\"PT1S\","
	    "\"enqueuedAt\":\"2021-08-10T14:29:17.000002Z\",\"startedAt\":\"2021-08-10T14:29:18.000000Z\","
	    "\"finishedAt\":\"2021-08-10T14:29:19.000000Z\"}");
	printbuf_reset(pb);
	/* v0.25 leaves the batch out, byte for byte. */
	cr_assert_eq(render_task_as(pb, &t, 0), 0);
	cr_assert_null(strstr(pb->buf, "batchUid"));
	printbuf_free(pb);
}

Test(render, batch_object)
{
	struct tbatch b;
	struct task a = task_of(1, "movies", "documentAddition", TASK_SUCCEEDED);

	tbatch_init(&b, 4, T0, names[0], names[1]);
	tbatch_add(&b, &a);
	tbatch_settle(&b, T0 + SEC / 4);
	pb = printbuf_new();
	cr_assert_eq(render_tbatch(pb, &b, NULL), 0);
	cr_assert_str_eq(pb->buf, "{\"uid\":4,\"progress\":null,\"details\":{},\"stats\":"
	    "{\"totalNbTasks\":1,\"status\":{\"succeeded\":1},\"types\":{\"documentAddition\":1},"
	    "\"indexUids\":{\"movies\":1}},\"duration\":\"PT0.250S\","
	    "\"startedAt\":\"2021-08-10T14:29:17.000000Z\",\"finishedAt\":\"2021-08-10T14:29:17.250000Z\","
	    "\"batchStrategy\":\"unspecified\"}");
	printbuf_free(pb);
}


/* Reads batch uid from the store into *b (names in back). */
static void
batch_read(uint64_t uid, struct tbatch *b)
{
	MDB_txn *txn;
	const void *rec;
	size_t len;

	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	cr_assert_eq(store_batch_get(s, txn, uid, &rec, &len), 0, "batch %lu", (unsigned long)uid);
	void *copy = malloc(len);
	memcpy(copy, rec, len);
	mdb_txn_abort(txn);
	b->uid = uid;
	cr_assert_eq(tbatch_decode(copy, len, b, back[0], back[1]), 0);
	/* The names point into copy: kept for the test's life. */
}

TestSuite(batches, .init = tmpdb_setup, .fini = tmpdb_teardown);

Test(batches, claim_batch_takes_the_first_matchs_index_and_type)
{
	struct task t[5];
	const char *idx[] = { "a", "b", "a", "a", "a" };
	const char *typ[] = { "x", "x", "y", "x", "x" };
	struct ops_change ch = { .kind = OPS_CLAIM };
	struct ops_task out[10];
	struct tbatch b;
	size_t n;

	for (int i = 0; i < 5; i++)
		task_init(&t[i], idx[i], 1, typ[i], 1, "{}", 2);
	cr_assert_eq(ops_enqueue(s, t, 5, NULL), 0);
	cr_assert_eq(ops_claim_batch(s, &ch, 10, out, &n), 0);
	cr_assert_eq(n, 3, "a/x: tasks 0, 3 and 4");
	cr_assert_eq(out[0].t.uid, 0);
	cr_assert_eq(out[1].t.uid, 3);
	cr_assert_eq(out[2].t.uid, 4);
	for (size_t i = 0; i < n; i++) {
		cr_assert(out[i].t.has_batch && out[i].t.batch_uid == 0);
		cr_assert_eq(out[i].t.status, TASK_PROCESSING);
		ops_task_free(&out[i]);
	}
	batch_read(0, &b);
	cr_assert_eq(b.total, 3);
	cr_assert_eq(b.status[TASK_PROCESSING], 3);
	cr_assert_eq(b.first_uid, 0);
	cr_assert_eq(b.last_uid, 4);
	cr_assert_eq(ops_claim_batch(s, &ch, 1, out, &n), 0);
	cr_assert_eq(out[0].t.uid, 1, "then the oldest left");
	cr_assert_eq(out[0].t.batch_uid, 1, "in batch 1");
	ops_task_free(&out[0]);
	cr_assert_eq(ops_claim_batch(s, &ch, 0, out, &n), LMT_EINVAL);
}

Test(batches, a_cancelation_batches_what_it_takes_from_the_queue)
{
	struct task t[2];
	struct ops_record_result r;
	uint64_t uids[] = { 0, 1 };
	struct ops_change st = { .kind = OPS_START, .uid = 1 };
	struct ops_change_result cr;
	struct tbatch b;

	task_init(&t[0], "a", 1, "x", 1, "{}", 2);
	task_init(&t[1], "a", 1, "x", 1, "{}", 2);
	cr_assert_eq(ops_enqueue(s, t, 2, NULL), 0);
	cr_assert_eq(ops_change(s, &st, &cr), 0);
	cr_assert_eq(cr.out.t.batch_uid, 0);
	ops_task_free(&cr.out);
	cr_assert_eq(ops_cancel(s, uids, 2, "?uids=0,1", &r), 0);
	cr_assert(r.out.t.has_batch && r.out.t.batch_uid == 1);
	ops_task_free(&r.out);
	batch_read(1, &b);
	cr_assert_eq(b.total, 2, "task 0 (enqueued) and the cancelation");
	cr_assert_eq(b.canceled_by, 2);
	cr_assert_neq(b.finished_at, 0);
	batch_read(0, &b);
	cr_assert_eq(b.status[TASK_CANCELED], 1, "task 1 stays in start's batch");
	cr_assert_neq(b.finished_at, 0);
}

/* A processing batch's progress, as render_tbatch() prints it. */
Test(render, batch_progress_object)
{
	struct tbatch b;
	struct tbatch_progress p;
	struct task a = task_of(1, "movies", "documentAddition", TASK_SUCCEEDED);
	struct task c = task_of(2, "movies", "documentAddition", TASK_PROCESSING);

	tbatch_init(&b, 4, T0, names[0], names[1]);
	tbatch_add(&b, &a);
	tbatch_add(&b, &c);
	tbatch_progress_init(&p, &b);
	cr_assert_eq(p.finished, 1);
	cr_assert_eq(p.total, 2);
	c.progress_done = 1;
	c.progress_total = 4;
	c.progress_step = STR("indexing \"x\"");
	tbatch_progress_add(&p, &c);
	pb = printbuf_new();
	cr_assert_eq(render_tbatch(pb, &b, &p), 0);
	cr_assert_str_eq(pb->buf, "{\"uid\":4,\"progress\":{\"steps\":[{\"currentStep\":"
	    "\"processing tasks\",\"finished\":1,\"total\":2},{\"currentStep\":\"indexing \\\"x\\\"\","
	    "\"finished\":1,\"total\":4}],\"percentage\":62.5},\"details\":{},\"stats\":"
	    "{\"totalNbTasks\":2,\"status\":{\"processing\":1,\"succeeded\":1},"
	    "\"types\":{\"documentAddition\":2},\"indexUids\":{\"movies\":2}},\"duration\":null,"
	    "\"startedAt\":\"2021-08-10T14:29:17.000000Z\",\"finishedAt\":null,"
	    "\"batchStrategy\":\"unspecified\"}");
	printbuf_free(pb);
}

/* Batch uid as GET /batches/uid answers it, into pb. */
static void
batch_json(uint64_t uid)
{
	MDB_txn *txn;

	printbuf_reset(pb);
	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	cr_assert_eq(render_batch_uid(pb, s, txn, uid, NULL, 0), 0);
	mdb_txn_abort(txn);
}

/* The part of pb from `"progress":` to `,"details"`. */
static void
expect_batch_progress(const char *want)
{
	const char *from = strstr(pb->buf, "\"progress\":"), *to = strstr(pb->buf, ",\"details\"");

	cr_assert(from && to && to > from, "%s", pb->buf);
	from += 11;
	cr_assert(strlen(want) == (size_t)(to - from) && memcmp(want, from, strlen(want)) == 0,
	    "want %s in %s", want, pb->buf);
}

Test(batches, a_processing_batch_shows_its_tasks_progress_and_null_once_finished)
{
	struct task t[4];
	struct ops_change ch = { .kind = OPS_CLAIM }, other = { .kind = OPS_START, .uid = 1 };
	struct ops_change_result r;
	struct ops_task out[3];
	size_t n;

	pb = printbuf_new();
	task_init(&t[0], "a", 1, "x", 1, "{}", 2);
	task_init(&t[1], "b", 1, "x", 1, "{}", 2);	/* in another batch, inside the range */
	task_init(&t[2], "a", 1, "x", 1, "{}", 2);
	task_init(&t[3], "a", 1, "x", 1, "{}", 2);
	cr_assert_eq(ops_enqueue(s, t, 4, NULL), 0);
	cr_assert_eq(ops_claim_batch(s, &ch, 3, out, &n), 0);
	cr_assert_eq(n, 3, "tasks 0, 2 and 3 in batch 0");
	for (size_t i = 0; i < n; i++)
		ops_task_free(&out[i]);
	cr_assert_eq(ops_change(s, &other, &r), 0);
	ops_task_free(&r.out);

	/* Nothing reported yet: the outer step alone. */
	batch_json(0);
	expect_batch_progress("{\"steps\":[{\"currentStep\":\"processing tasks\",\"finished\":0,"
	    "\"total\":3}],\"percentage\":0.0}");

	/* Another batch's task reports: not this batch's.  Then tasks 3 and 2 report; the
	 * step shown is the first by uid. */
	struct ops_change hb = { .kind = OPS_HEARTBEAT, .uid = 1, .progress_done = 9,
	    .progress_total = 10, .step = "elsewhere", .step_len = 9 };
	cr_assert_eq(ops_change(s, &hb, &r), 0);
	ops_task_free(&r.out);
	hb = (struct ops_change){ .kind = OPS_HEARTBEAT, .uid = 3, .progress_done = 1,
	    .progress_total = 2 };
	cr_assert_eq(ops_change(s, &hb, &r), 0);
	ops_task_free(&r.out);
	hb = (struct ops_change){ .kind = OPS_HEARTBEAT, .uid = 2, .progress_done = 1,
	    .progress_total = 4, .step = "indexing", .step_len = 8 };
	cr_assert_eq(ops_change(s, &hb, &r), 0);
	ops_task_free(&r.out);
	batch_json(0);
	/* (0 + 1/4 + 1/2) / 3 tasks */
	expect_batch_progress("{\"steps\":[{\"currentStep\":\"processing tasks\",\"finished\":0,"
	    "\"total\":3},{\"currentStep\":\"indexing\",\"finished\":1,\"total\":4}],"
	    "\"percentage\":25.0}");

	/* Task 2 succeeds: it counts whole; task 3's step is shown now. */
	tmpdb_change(OPS_SUCCEED, 2);
	batch_json(0);
	expect_batch_progress("{\"steps\":[{\"currentStep\":\"processing tasks\",\"finished\":1,"
	    "\"total\":3},{\"currentStep\":\"\",\"finished\":1,\"total\":2}],"
	    "\"percentage\":50.0}");

	/* The list shows the same. */
	struct query q;
	uint64_t bad;
	MDB_txn *txn;
	query_init(&q);
	q.v1 = 1;
	printbuf_reset(pb);
	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	cr_assert_eq(render_batch_page(pb, s, txn, &q, NULL, 0, &bad), 0);
	mdb_txn_abort(txn);
	cr_assert(strstr(pb->buf, "{\"uid\":0,\"progress\":{\"steps\":[{\"currentStep\":"
	    "\"processing tasks\",\"finished\":1,\"total\":3},{\"currentStep\":\"\",\"finished\":1,"
	    "\"total\":2}],\"percentage\":50.0}") != NULL, "%s", pb->buf);
	cr_assert(strstr(pb->buf, "{\"uid\":1,\"progress\":{\"steps\":[{\"currentStep\":"
	    "\"processing tasks\",\"finished\":0,\"total\":1},{\"currentStep\":\"elsewhere\","
	    "\"finished\":9,\"total\":10}],\"percentage\":90.0}") != NULL, "%s", pb->buf);

	/* Finished: null, as Meilisearch shows a finished batch. */
	tmpdb_change(OPS_FAIL, 0);
	tmpdb_change(OPS_SUCCEED, 3);
	batch_json(0);
	expect_batch_progress("null");
	printbuf_free(pb);
}
