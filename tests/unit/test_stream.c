/* GET /tasks/stream's core on a real store: the first bytes of a stream, filters and keys
 * per event, one read fanned out, uids= ending by itself, Last-Event-ID resuming, 204 and
 * 410, a slow stream dropped without holding the others, a large commit paced to a client
 * that reads slowly, a stream far behind reading to the end without a commit. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <lmdb.h>

#include "lmtasks/error.h"
#include "lmtasks/feed.h"
#include "lmtasks/ops.h"
#include "lmtasks/store.h"
#include "lmtasks/stream.h"
#include "tmpdb.h"

static store *ro;	/* the reader's handle, as the responder opens it; s is the writer's */

static void
setup(void)
{
	tmpdb_setup();
	cr_assert_eq(store_open(tmpstore_path("db"), STORE_RDONLY, 0, &ro), 0);
}

static void
teardown(void)
{
	store_close(ro);
	tmpdb_teardown();
}

TestSuite(stream, .init = setup, .fini = teardown);

/* A client: what it was sent, whether it ended, whether its write fails. */
struct client {
	struct printbuf *got;
	int ended;
	int refuse;
	size_t window;		/* >0: STREAM_FULL once this much is unread (since) */
	size_t since, most;	/* bytes since the client last read; the most there were */
};

static int
client_write(void *ctx, const void *buf, size_t len)
{
	struct client *c = ctx;

	if (c->refuse)
		return 1;
	printbuf_memappend(c->got, buf, (int)len);
	c->since += len;
	if (c->since > c->most)
		c->most = c->since;
	return c->window && c->since >= c->window ? STREAM_FULL : 0;
}

static void
client_ended(void *ctx)
{
	((struct client *)ctx)->ended = 1;
}

/* Opens a stream; returns the status, the first bytes in c->got. */
static int
open_stream(const char *qs, const char *last_id, struct client *c, stream_sub **sub,
    struct api_error *err)
{
	struct stream_request rq = { qs, NULL, last_id, NULL };
	MDB_txn *txn;
	int status;

	c->got = printbuf_new();
	c->ended = c->refuse = 0;
	c->window = c->since = c->most = 0;
	cr_assert_eq(store_txn_begin(ro, MDB_RDONLY, &txn), 0);
	status = stream_open(ro, txn, &rq, c->got, sub, err);
	mdb_txn_abort(txn);
	return status;
}

/*
 * The number of events (lines "event: task") in text: each "event: task\n" in it, found
 * from the newline that ends it.  Line by line, not strstr() from each match on: that reads
 * the rest of the text again every time (AddressSanitizer's strstr measures it), which is
 * quadratic in a stream of thousands of events.
 */
static int
events(const char *text)
{
	static const char ev[] = "event: task";
	const size_t evlen = sizeof(ev) - 1;
	int n = 0;

	for (const char *p = text, *nl; (nl = strchr(p, '\n')) != NULL; p = nl + 1)
		if ((size_t)(nl - text) >= evlen && memcmp(nl - evlen, ev, evlen) == 0)
			n++;
	return n;
}

Test(stream, first_bytes_and_live_events)
{
	struct client c;
	struct api_error err;
	stream_sub *sub;
	stream_hub *h;
	uint64_t a = tmpdb_add("movies");

	cr_assert_eq(open_stream(NULL, NULL, &c, &sub, &err), 200);
	cr_expect_str_eq(c.got->buf, "retry: 10000\n\n");
	cr_expect_eq(stream_sub_cursor(sub), 1);
	cr_assert_eq(stream_hub_new(&h), 0);
	cr_assert_eq(stream_hub_add(h, sub, client_write, &c), 0);
	printbuf_reset(c.got);
	cr_assert_eq(stream_hub_poll(h, ro, client_ended), 0);
	cr_expect_eq(c.got->bpos, 0, "nothing changed: nothing sent");
	tmpdb_change(OPS_START, a);
	cr_assert_eq(stream_hub_poll(h, ro, client_ended), 0);
	cr_expect_eq(events(c.got->buf), 1);
	cr_expect(strncmp(c.got->buf, "id: 2\nevent: task\ndata: {\"uid\":0,", 31) == 0,
	    "got: %s", c.got->buf);
	cr_expect(strstr(c.got->buf, "\"status\":\"processing\"") != NULL);
	cr_expect(c.got->bpos > 2 && strcmp(c.got->buf + c.got->bpos - 2, "\n\n") == 0);
	stream_hub_keepalive(h, client_ended);
	cr_expect(strstr(c.got->buf, "\n: keep-alive\n\n") != NULL);
	cr_expect_eq(c.ended, 0);
	stream_hub_free(h);
	printbuf_free(c.got);
}

Test(stream, filters_apply_per_event_and_one_read_fans_out)
{
	struct client all, movies, failed;
	struct api_error err;
	stream_sub *s1, *s2, *s3;
	stream_hub *h;

	cr_assert_eq(open_stream(NULL, NULL, &all, &s1, &err), 200);
	cr_assert_eq(open_stream("indexUids=movies", NULL, &movies, &s2, &err), 200);
	cr_assert_eq(open_stream("statuses=failed&types=documentAddition", NULL, &failed, &s3,
	    &err), 200);
	cr_assert_eq(stream_hub_new(&h), 0);
	stream_hub_add(h, s1, client_write, &all);
	stream_hub_add(h, s2, client_write, &movies);
	stream_hub_add(h, s3, client_write, &failed);
	uint64_t a = tmpdb_add("movies"), b = tmpdb_add("books");
	tmpdb_change(OPS_START, b);
	tmpdb_change(OPS_FAIL, b);
	cr_assert_eq(stream_hub_poll(h, ro, client_ended), 0);
	/* b changed three times since the last read: it is sent once, as it is now. */
	cr_expect_eq(events(all.got->buf), 2, "all: %s", all.got->buf);
	cr_expect_eq(events(movies.got->buf), 1);
	cr_expect(strstr(movies.got->buf, "\"indexUid\":\"movies\"") != NULL);
	cr_expect_eq(events(failed.got->buf), 1);
	cr_expect(strstr(failed.got->buf, "id: 4\n") != NULL, "failed: %s", failed.got->buf);
	cr_expect(strstr(failed.got->buf, "\"status\":\"failed\"") != NULL);
	(void)a;
	stream_hub_free(h);
	printbuf_free(all.got);
	printbuf_free(movies.got);
	printbuf_free(failed.got);
}

Test(stream, uids_current_state_then_ends_when_finished)
{
	struct client c;
	struct api_error err;
	stream_sub *sub;
	stream_hub *h;
	uint64_t a = tmpdb_add("movies"), b = tmpdb_add("movies");
	char qs[64];

	tmpdb_change(OPS_START, a);	/* a's latest change: 3; b's: 2 */
	snprintf(qs, sizeof(qs), "uids=%llu,%llu", (unsigned long long)a, (unsigned long long)b);
	cr_assert_eq(open_stream(qs, NULL, &c, &sub, &err), 200);
	cr_expect_eq(events(c.got->buf), 2);
	const char *pb = strstr(c.got->buf, "id: 2\n"), *pa = strstr(c.got->buf, "id: 3\n");
	cr_expect(pb && pa && pb < pa, "current state in sequence order: %s", c.got->buf);
	cr_expect_eq(stream_sub_done(sub), 0);
	cr_assert_eq(stream_hub_new(&h), 0);
	stream_hub_add(h, sub, client_write, &c);
	tmpdb_add("movies");			/* not listed */
	tmpdb_change(OPS_START, b);
	tmpdb_change(OPS_SUCCEED, b);
	cr_assert_eq(stream_hub_poll(h, ro, client_ended), 0);
	cr_expect_eq(events(c.got->buf), 3);
	cr_expect_eq(c.ended, 0, "a is still processing");
	tmpdb_change(OPS_SUCCEED, a);
	cr_assert_eq(stream_hub_poll(h, ro, client_ended), 0);
	cr_expect_eq(events(c.got->buf), 4);
	cr_expect_eq(c.ended, 1, "every listed task finished: the stream ends");
	cr_expect_eq(stream_hub_count(h), 0);
	/* Listed tasks all finished at the start: the current state, then the end. */
	struct client d;
	cr_assert_eq(open_stream(qs, NULL, &d, &sub, &err), 200);
	cr_expect_eq(events(d.got->buf), 2);
	cr_expect_eq(stream_sub_done(sub), 1);
	stream_sub_free(sub);
	/* Resuming such a stream after its last event: 204, EventSource stops. */
	struct client e;
	char last[32];
	MDB_txn *txn;
	uint64_t first, lastseq;
	cr_assert_eq(store_txn_begin(ro, MDB_RDONLY, &txn), 0);
	cr_assert_eq(feed_bounds(ro, txn, &first, &lastseq), 0);
	mdb_txn_abort(txn);
	snprintf(last, sizeof(last), "%llu", (unsigned long long)lastseq);
	cr_expect_eq(open_stream(qs, last, &e, &sub, &err), 204);
	stream_hub_free(h);
	printbuf_free(c.got);
	printbuf_free(d.got);
	printbuf_free(e.got);
}

Test(stream, last_event_id_resumes_and_pruned_is_410)
{
	struct client c;
	struct api_error err;
	stream_sub *sub;
	uint64_t a = tmpdb_add("movies");

	tmpdb_change(OPS_START, a);
	tmpdb_change(OPS_SUCCEED, a);
	tmpdb_add("books");
	cr_assert_eq(open_stream(NULL, "2", &c, &sub, &err), 200);
	cr_expect_eq(events(c.got->buf), 2, "changes 3 and 4: %s", c.got->buf);
	cr_expect(strstr(c.got->buf, "id: 3\n") && strstr(c.got->buf, "id: 4\n"));
	cr_expect_eq(stream_sub_cursor(sub), 4);
	stream_sub_free(sub);
	printbuf_free(c.got);
	cr_expect_eq(open_stream(NULL, "x", &c, &sub, &err), 400);
	cr_expect_str_eq(err.code, "bad_request");
	printbuf_free(c.got);
	cr_expect_eq(open_stream("limit=3", NULL, &c, &sub, &err), 400);
	printbuf_free(c.got);
	cr_expect_eq(open_stream("statuses=nope", NULL, &c, &sub, &err), 400);
	cr_expect_str_eq(err.code, "invalid_task_statuses");
	printbuf_free(c.got);
	cr_expect_eq(open_stream("uids=0,999", NULL, &c, &sub, &err), 200, "999: not yet");
	stream_sub_free(sub);
	printbuf_free(c.got);

	struct feed_retention r = { 2, 0 };
	MDB_txn *txn;
	cr_assert_eq(store_txn_begin(s, 0, &txn), 0);
	cr_assert_eq(feed_retention_write(s, txn, &r), 0);
	cr_assert_eq(mdb_txn_commit(txn), 0);
	cr_expect_eq(open_stream(NULL, "1", &c, &sub, &err), 410);
	cr_expect_str_eq(err.code, "task_stream_pruned");
	cr_expect(strstr(err.message, "`1`") != NULL, "%s", err.message);
	printbuf_free(c.got);
	cr_expect_eq(open_stream(NULL, "2", &c, &sub, &err), 200, "3 and 4 are kept");
	stream_sub_free(sub);
	printbuf_free(c.got);
}

Test(stream, a_failing_client_is_dropped_alone)
{
	struct client slow, fine;
	struct api_error err;
	stream_sub *s1, *s2;
	stream_hub *h;

	cr_assert_eq(open_stream(NULL, NULL, &slow, &s1, &err), 200);
	cr_assert_eq(open_stream(NULL, NULL, &fine, &s2, &err), 200);
	cr_assert_eq(stream_hub_new(&h), 0);
	stream_hub_add(h, s1, client_write, &slow);
	stream_hub_add(h, s2, client_write, &fine);
	slow.refuse = 1;
	tmpdb_add("movies");
	cr_assert_eq(stream_hub_poll(h, ro, client_ended), 0);
	cr_expect_eq(slow.ended, 1);
	cr_expect_eq(fine.ended, 0);
	cr_expect_eq(events(fine.got->buf), 1);
	cr_expect_eq(stream_hub_count(h), 1);
	tmpdb_add("movies");
	cr_assert_eq(stream_hub_poll(h, ro, client_ended), 0);
	cr_expect_eq(events(fine.got->buf), 2);
	stream_hub_free(h);
	printbuf_free(slow.got);
	printbuf_free(fine.got);
}

/* Enqueues n tasks of index in one commit (one `enqueue --batch`). */
static void
add_many(const char *index, size_t n)
{
	struct task *t = calloc(n, sizeof(*t));

	cr_assert_not_null(t);
	for (size_t i = 0; i < n; i++)
		task_init(&t[i], index, strlen(index), "documentAddition", 16, "{}", 2);
	cr_assert_eq(ops_enqueue(s, t, n, NULL), 0);
	free(t);
}

/* 1 when the ids of the events in text (lines "id: N") go up by one from first to last,
 * each once.  Line by line, as events() is. */
static int
ids_run(const char *text, uint64_t first, uint64_t last)
{
	uint64_t want = first;

	for (const char *p = text, *nl; p != NULL; p = nl ? nl + 1 : NULL) {
		nl = strchr(p, '\n');
		if (strncmp(p, "id: ", 4) != 0)
			continue;
		if (strtoull(p + 4, NULL, 10) != want++)
			return 0;
	}
	return want == last + 1;
}

Test(stream, a_large_commit_is_paced_to_a_client_that_reads_slowly)
{
	struct client slow, fast;
	struct api_error err;
	stream_sub *s1, *s2;
	stream_hub *h;
	int polls = 0;

	tmpdb_add("movies");
	cr_assert_eq(open_stream(NULL, NULL, &slow, &s1, &err), 200);
	cr_assert_eq(open_stream(NULL, NULL, &fast, &s2, &err), 200);
	printbuf_reset(slow.got);
	printbuf_reset(fast.got);
	cr_assert_eq(stream_hub_new(&h), 0);
	stream_hub_add(h, s1, client_write, &slow);
	stream_hub_add(h, s2, client_write, &fast);
	slow.window = 4096;
	add_many("movies", 3000);
	cr_assert_eq(stream_hub_poll(h, ro, client_ended), 0);
	cr_expect_eq(events(fast.got->buf), 3000, "a client that takes all gets all at once");
	cr_expect(events(slow.got->buf) < 3000);
	cr_expect_eq(stream_sub_full(s1), 1);
	cr_expect_eq(stream_hub_behind(h), 0, "a full stream waits for its client");
	cr_assert_eq(stream_hub_poll(h, ro, client_ended), 0);
	cr_expect(events(slow.got->buf) < 3000, "nothing more before it has read");
	/* The client reads what it was given; the stream reads on from its cursor. */
	while (stream_sub_full(s1) && polls++ < 10000) {
		slow.since = 0;
		stream_sub_resume(s1);
		cr_expect_eq(stream_hub_behind(h), stream_sub_cursor(s1) < 3001);
		cr_assert_eq(stream_hub_poll(h, ro, client_ended), 0);
	}
	cr_expect_eq(events(slow.got->buf), 3000);
	cr_expect(ids_run(slow.got->buf, 2, 3001), "every event once, in order");
	cr_expect(slow.most < 4096 + 1024, "at most the window and one event unread: %zu",
	    slow.most);
	cr_expect_eq(slow.ended + fast.ended, 0, "neither stream ended");
	cr_expect_eq(stream_sub_cursor(s1), 3001);
	stream_hub_free(h);
	printbuf_free(slow.got);
	printbuf_free(fast.got);
}

Test(stream, a_stream_resumed_far_behind_reads_to_the_end_without_a_commit)
{
	struct client c;
	struct api_error err;
	stream_sub *sub;
	stream_hub *h;
	int polls = 0;

	add_many("movies", 3 * STREAM_CATCHUP_MAX);
	cr_assert_eq(open_stream(NULL, "0", &c, &sub, &err), 200);
	cr_expect((size_t)c.got->bpos < STREAM_WINDOW + 1024, "the first bytes are bounded too");
	cr_expect(events(c.got->buf) > 0);
	cr_assert_eq(stream_hub_new(&h), 0);
	stream_hub_add(h, sub, client_write, &c);
	while (stream_hub_behind(h) && polls++ < 100)
		cr_assert_eq(stream_hub_poll(h, ro, client_ended), 0);
	cr_expect_eq(events(c.got->buf), 3 * STREAM_CATCHUP_MAX);
	cr_expect(ids_run(c.got->buf, 1, 3 * STREAM_CATCHUP_MAX));
	cr_expect_eq(stream_hub_behind(h), 0);
	cr_expect_eq(c.ended, 0);
	stream_hub_free(h);
	printbuf_free(c.got);
}

Test(stream, a_stream_removed_before_a_poll_leaves_nobody_behind)
{
	struct client c;
	struct api_error err;
	stream_sub *sub;
	stream_hub *h;

	cr_assert_eq(open_stream(NULL, NULL, &c, &sub, &err), 200);
	cr_assert_eq(stream_hub_new(&h), 0);
	stream_hub_add(h, sub, client_write, &c);
	cr_expect_eq(stream_hub_behind(h), 1, "a stream added waits for its first poll");
	cr_assert_eq(stream_hub_remove(h, &c), 0);
	cr_expect_eq(stream_hub_behind(h), 0, "its peer gone before the poll: nobody behind");
	stream_hub_free(h);
	printbuf_free(c.got);
}

Test(stream, a_full_stream_gets_no_keepalive)
{
	struct client c;
	struct api_error err;
	stream_sub *sub;
	stream_hub *h;

	cr_assert_eq(open_stream(NULL, NULL, &c, &sub, &err), 200);
	cr_assert_eq(stream_hub_new(&h), 0);
	stream_hub_add(h, sub, client_write, &c);
	c.window = 1;
	add_many("movies", 10);
	cr_assert_eq(stream_hub_poll(h, ro, client_ended), 0);
	cr_assert_eq(stream_sub_full(sub), 1);
	stream_hub_keepalive(h, client_ended);
	cr_expect(strstr(c.got->buf, "keep-alive") == NULL, "its output waits: it is not quiet");
	stream_sub_resume(sub);
	c.window = 0;
	stream_hub_keepalive(h, client_ended);
	cr_expect(strstr(c.got->buf, "keep-alive") != NULL);
	stream_hub_free(h);
	printbuf_free(c.got);
}

/* Flips one byte of task uid's record, as a bad disk would: store_get says LMT_ECORRUPT. */
static void
corrupt(uint64_t uid)
{
	unsigned char kb[8], *copy;
	MDB_val k = { 8, kb }, v;
	MDB_txn *txn;
	MDB_dbi dbi;

	for (int i = 7; i >= 0; i--, uid >>= 8)
		kb[i] = (unsigned char)uid;
	cr_assert_eq(mdb_txn_begin(store_env(s), NULL, 0, &txn), 0);
	cr_assert_eq(mdb_dbi_open(txn, "tasks", 0, &dbi), 0);
	cr_assert_eq(mdb_get(txn, dbi, &k, &v), 0);
	cr_assert_not_null(copy = malloc(v.mv_size));
	memcpy(copy, v.mv_data, v.mv_size);
	copy[20] ^= 0x04;
	v.mv_data = copy;
	cr_assert_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
	cr_assert_eq(mdb_txn_commit(txn), 0);
	free(copy);
}

/* An undecodable task record is skipped, as a removed one: the streams reading the shared
 * range and a stream behind it (read on its own) get the other events and stay caught up. */
Test(stream, an_undecodable_record_is_skipped_not_a_stalled_poll)
{
	struct client now, behind;
	struct api_error err;
	stream_sub *s1, *s2;
	stream_hub *h;
	struct task t;
	MDB_txn *txn;

	tmpdb_add("movies");
	cr_assert_eq(open_stream(NULL, NULL, &behind, &s2, &err), 200);
	add_many("movies", 3);		/* uids 1..3, changes 2..4 */
	corrupt(2);
	cr_assert_eq(store_txn_begin(ro, MDB_RDONLY, &txn), 0);
	cr_assert_eq(store_get(ro, txn, 2, &t), LMT_ECORRUPT);
	mdb_txn_abort(txn);
	cr_assert_eq(open_stream(NULL, NULL, &now, &s1, &err), 200);
	cr_assert_eq(stream_hub_new(&h), 0);
	stream_hub_add(h, s1, client_write, &now);	/* the shared read starts at 4 */
	stream_hub_add(h, s2, client_write, &behind);	/* at 1: behind */
	printbuf_reset(now.got);
	printbuf_reset(behind.got);
	cr_expect_eq(stream_hub_behind(h), 1);
	cr_assert_eq(stream_hub_poll(h, ro, client_ended), 0);
	cr_expect_eq(events(behind.got->buf), 2, "changes 2 and 4: %s", behind.got->buf);
	cr_expect(strstr(behind.got->buf, "id: 2\n") && strstr(behind.got->buf, "id: 4\n"));
	cr_expect_eq(stream_sub_cursor(s2), 4);
	cr_expect_eq(stream_hub_behind(h), 0, "no stream left behind");
	/* The same in the shared range. */
	add_many("movies", 3);		/* uids 4..6, changes 5..7 */
	corrupt(5);
	cr_assert_eq(stream_hub_poll(h, ro, client_ended), 0);
	cr_expect_eq(events(now.got->buf), 2, "changes 5 and 7: %s", now.got->buf);
	cr_expect(strstr(now.got->buf, "id: 5\n") && strstr(now.got->buf, "id: 7\n"));
	cr_expect_eq(stream_sub_cursor(s1), 7);
	cr_expect_eq(stream_sub_cursor(s2), 7);
	cr_expect_eq(stream_hub_behind(h), 0);
	cr_expect_eq(now.ended + behind.ended, 0);
	stream_hub_free(h);
	printbuf_free(now.got);
	printbuf_free(behind.got);
}

/* A store made anew whose log ends below what the streams read: they end (resuming, they
 * read from now on) and the hub is not left behind. */
Test(stream, a_store_replaced_with_a_shorter_log_ends_the_streams_past_it)
{
	struct client a, b;
	struct api_error err;
	stream_sub *s1, *s2;
	stream_hub *h;
	store *other, *other_ro;
	struct task t;

	tmpdb_add("movies");
	tmpdb_add("movies");
	cr_assert_eq(open_stream(NULL, NULL, &b, &s2, &err), 200);	/* at 2 */
	add_many("movies", 2);
	cr_assert_eq(open_stream(NULL, NULL, &a, &s1, &err), 200);	/* at 4 */
	cr_assert_eq(stream_hub_new(&h), 0);
	stream_hub_add(h, s1, client_write, &a);
	stream_hub_add(h, s2, client_write, &b);
	cr_expect_eq(stream_hub_behind(h), 1);
	/* The other store: one change. */
	cr_assert_eq(store_open(tmpstore_path("db2"), STORE_CREATE, 0600, &other), 0);
	task_init(&t, "movies", 6, "documentAddition", 16, "{}", 2);
	cr_assert_eq(ops_enqueue(other, &t, 1, NULL), 0);
	cr_assert_eq(store_open(tmpstore_path("db2"), STORE_RDONLY, 0, &other_ro), 0);
	cr_assert_eq(stream_hub_poll(h, other_ro, client_ended), 0);
	cr_expect_eq(a.ended + b.ended, 2, "both streams are past its log's head");
	cr_expect_eq(stream_hub_count(h), 0);
	cr_expect_eq(stream_hub_behind(h), 0);
	stream_hub_free(h);
	store_close(other_ro);
	store_close(other);
	printbuf_free(a.got);
	printbuf_free(b.got);
}
