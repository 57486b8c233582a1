/* The deliverer on a real store with a receiver in memory: a 2xx moves the cursor, any
 * other answer (4xx, 5xx, no answer) keeps it and is retried after a wait that doubles
 * from 0.1 s to a minute, --once ignores the wait, batches of --batch-size in order,
 * changes that match nothing passed over without a write until a thousand or the flush,
 * a webhook deleted during a POST, filters that do not parse, a stop between POSTs. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <lmdb.h>

#include "lmtasks/clock.h"
#include "lmtasks/deliver.h"
#include "lmtasks/feed.h"
#include "lmtasks/ops.h"
#include "lmtasks/store.h"
#include "lmtasks/webhook.h"
#include "tmpdb.h"

/* The receiver: answers in turn (NULL: 2xx, else the failure's reason), then 2xx. */
struct receiver {
	const char *answers[8];
	size_t calls;
	uint64_t uids[64];	/* every task posted, in order */
	size_t nuids;
	size_t sizes[16];	/* tasks per POST */
	int delete_during;	/* the webhook is deleted while the POST is under way */
};

static struct receiver rx;
static char warned[8192];
static volatile sig_atomic_t stop_flag;

static int
fake_post(void *ctx, const struct webhook *w, const char *url, const void *body, size_t len,
    char *why, size_t whylen)
{
	struct receiver *r = ctx;
	const char *p = body, *end = p + len, *answer = r->calls < 8 ? r->answers[r->calls] : NULL;
	size_t n = 0;

	cr_assert_str_eq(url, "http://127.0.0.1:9/x");
	for (; p < end && (p = strstr(p, "{\"uid\":")) != NULL && p < end; p = strchr(p, '\n')) {
		if (r->nuids < 64)
			r->uids[r->nuids++] = strtoull(p + 7, NULL, 10);
		n++;
	}
	if (r->calls < 16)
		r->sizes[r->calls] = n;
	r->calls++;
	if (r->delete_during)
		cr_assert_eq(ops_webhook_delete(s, w->id), 0);
	if (answer == NULL)
		return 0;
	snprintf(why, whylen, "%s", answer);
	return -1;
}

static void
warn(const char *fmt, ...)
{
	size_t at = strlen(warned);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(warned + at, sizeof(warned) - at, fmt, ap);
	va_end(ap);
	strncat(warned, "\n", sizeof(warned) - strlen(warned) - 1);
}

static deliverer *d;

/* A new deliverer on the test's store: batch tasks per POST, --once or not. */
static void
configure(size_t batch, int once)
{
	struct deliver_config c = { s, batch, once, fake_post, &rx, warn, &stop_flag };

	deliver_free(d);
	d = NULL;
	cr_assert_eq(deliver_new(&c, &d), 0);
}

static void
setup(void)
{
	tmpdb_setup();
	memset(&rx, 0, sizeof(rx));
	warned[0] = '\0';
	stop_flag = 0;
	configure(1000, 0);
}

static void
teardown(void)
{
	deliver_free(d);
	d = NULL;
	tmpdb_teardown();
}

TestSuite(deliver, .init = setup, .fini = teardown);

static uint64_t
add_hook(const char *filter)
{
	struct webhook w = { 0 };

	w.url = (struct task_str){ "http://127.0.0.1:9/x", 20 };
	w.headers = (struct task_str){ "{}", 2 };
	w.filter = (struct task_str){ filter, strlen(filter) };
	cr_assert_eq(ops_webhook_add(s, &w), 0);
	return w.id;
}

static uint64_t
finished(const char *index)
{
	uint64_t uid = tmpdb_add(index);

	tmpdb_change(OPS_START, uid);
	tmpdb_change(OPS_SUCCEED, uid);
	return uid;
}

static uint64_t
log_end(void)
{
	MDB_txn *txn;
	uint64_t first, last;

	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	cr_assert_eq(feed_bounds(s, txn, &first, &last), 0);
	mdb_txn_abort(txn);
	return last;
}

/* The stored webhook's cursor, delivered count and whether an error is kept. */
static void
stored(uint64_t id, uint64_t *cursor, uint64_t *delivered, int *erred)
{
	struct webhook w;
	MDB_txn *txn;

	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	cr_assert_eq(webhook_get(s, txn, id, &w), 0);
	*cursor = w.cursor;
	*delivered = w.delivered;
	*erred = w.error.ptr != NULL;
	mdb_txn_abort(txn);
}

/* One round at now; returns whether a POST failed, asserting no store failure. */
static int
round_at(int64_t now, int64_t *wake)
{
	const char *doing;
	int64_t w;
	int failed;

	cr_assert_eq(deliver_round(d, now, now + 1000000, wake ? wake : &w, &failed, &doing), 0);
	return failed;
}

Test(deliver, backoff_doubles_from_a_tenth_of_a_second_to_a_minute)
{
	cr_assert_eq(deliver_backoff(1), 100000);
	cr_assert_eq(deliver_backoff(2), 200000);
	cr_assert_eq(deliver_backoff(3), 400000);
	cr_assert_eq(deliver_backoff(10), 51200000);
	cr_assert_eq(deliver_backoff(11), 60000000);
	cr_assert_eq(deliver_backoff(1000), 60000000);
}

Test(deliver, a_2xx_moves_the_cursor_past_the_finished_tasks)
{
	uint64_t id = add_hook(""), a, b, cursor, delivered;
	int erred;

	a = finished("movies");
	tmpdb_add("movies");	/* enqueued only: not sent */
	b = finished("books");
	cr_assert_eq(round_at(clock_mono(), NULL), 0);
	cr_assert_eq(rx.calls, 1, "one POST for both");
	cr_assert_eq(rx.nuids, 2);
	cr_assert(rx.uids[0] == a && rx.uids[1] == b, "in the order they finished");
	stored(id, &cursor, &delivered, &erred);
	cr_assert(cursor == log_end() && delivered == 2 && !erred);
	cr_assert_eq(round_at(clock_mono(), NULL), 0);
	cr_assert_eq(rx.calls, 1, "nothing new: no POST");
}

Test(deliver, other_answers_keep_the_cursor_and_are_retried_after_a_doubling_wait)
{
	uint64_t id = add_hook(""), start = log_end(), cursor, delivered, c;
	int64_t next_at, wake, before;
	unsigned failures;
	int erred;

	rx.answers[0] = "POST http://127.0.0.1:9/x: HTTP status 500";
	rx.answers[1] = "POST http://127.0.0.1:9/x: HTTP status 404";
	rx.answers[2] = "POST http://127.0.0.1:9/x: Operation timed out after 30000 milliseconds";
	uint64_t u = finished("movies");
	int64_t now = clock_mono();
	for (unsigned i = 1; i <= 3; i++) {
		before = clock_mono();
		cr_assert_eq(round_at(now, &wake), 1, "attempt %u fails", i);
		stored(id, &cursor, &delivered, &erred);
		cr_assert(cursor == start && delivered == 0 && erred, "the cursor stays");
		cr_assert_eq(deliver_state(d, id, &c, &next_at, &failures), 0);
		cr_assert_eq(failures, i);
		cr_assert_geq(next_at - before, deliver_backoff(i), "the wait follows the POST");
		cr_assert_eq(wake, next_at, "the next round comes when the retry is due");
		cr_assert_eq(round_at(next_at - 1, NULL), 0, "not before its time");
		cr_assert_eq(rx.calls, i);
		now = next_at;
	}
	cr_assert_eq(round_at(now, NULL), 0, "the fourth attempt is taken");
	cr_assert_eq(rx.calls, 4);
	cr_assert(rx.uids[0] == u && rx.uids[3] == u, "the same task each time");
	stored(id, &cursor, &delivered, &erred);
	cr_assert(cursor == log_end() && delivered == 1 && !erred);
	cr_assert_neq(strstr(warned, "HTTP status 404; its 1 tasks"), NULL, "%s", warned);
	cr_assert_neq(strstr(warned, "sent again in 0.4 s"), NULL, "%s", warned);
	cr_assert_neq(strstr(warned, "delivered after 3 failed attempts"), NULL, "%s", warned);
	cr_assert_eq(deliver_state(d, id, &c, &next_at, &failures), 0);
	cr_assert_eq(failures, 0);
}

Test(deliver, once_does_not_wait_out_the_backoff)
{
	configure(1000, 1);
	add_hook("");
	rx.answers[0] = "HTTP status 503";
	finished("movies");
	cr_assert_eq(round_at(clock_mono(), NULL), 1);
	cr_assert_neq(strstr(warned, "sent again by the next run; not before 0.1 s"), NULL, "%s",
	    warned);
	cr_assert_eq(round_at(clock_mono(), NULL), 0);
	cr_assert_eq(rx.calls, 2);
}

Test(deliver, batches_of_the_batch_size_in_order)
{
	uint64_t u[5];

	configure(2, 0);
	add_hook("");
	for (int i = 0; i < 5; i++)
		u[i] = finished("movies");
	cr_assert_eq(round_at(clock_mono(), NULL), 0);
	cr_assert_eq(rx.calls, 3);
	cr_assert(rx.sizes[0] == 2 && rx.sizes[1] == 2 && rx.sizes[2] == 1);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(rx.uids[i], u[i]);
}

Test(deliver, changes_that_match_nothing_cost_no_write_until_the_flush)
{
	uint64_t id = add_hook("indexUids=books"), start = log_end(), cursor, delivered, c;
	int64_t next_at;
	unsigned failures;
	const char *doing;
	int erred;

	finished("movies");
	cr_assert_eq(round_at(clock_mono(), NULL), 0);
	cr_assert_eq(rx.calls, 0);
	stored(id, &cursor, &delivered, &erred);
	cr_assert_eq(cursor, start, "the stored cursor waits");
	cr_assert_eq(deliver_state(d, id, &c, &next_at, &failures), 0);
	cr_assert_eq(c, log_end(), "delivery stands past the changes");
	cr_assert_eq(round_at(clock_mono(), NULL), 0);
	cr_assert_eq(deliver_state(d, id, &c, &next_at, &failures), 0);
	cr_assert_eq(c, log_end(), "passed over still, after the webhooks are read again");
	cr_assert_eq(deliver_flush(d, &doing), 0);
	stored(id, &cursor, &delivered, &erred);
	cr_assert_eq(cursor, log_end(), "kept at the flush");
}

Test(deliver, a_thousand_changes_passed_over_are_kept_without_the_flush)
{
	struct task *t = calloc(DELIVER_SKIP_PERSIST, sizeof(*t));
	uint64_t id = add_hook("indexUids=books"), cursor, delivered;
	int erred;

	cr_assert_not_null(t);
	for (size_t i = 0; i < DELIVER_SKIP_PERSIST; i++)
		task_init(&t[i], "movies", 6, "documentAddition", 16, "{}", 2);
	cr_assert_eq(ops_enqueue(s, t, DELIVER_SKIP_PERSIST, NULL), 0);
	free(t);
	cr_assert_eq(round_at(clock_mono(), NULL), 0);
	stored(id, &cursor, &delivered, &erred);
	cr_assert_eq(cursor, log_end());
	cr_assert_eq(rx.calls, 0);
}

Test(deliver, a_webhook_deleted_during_its_post_gets_nothing_more)
{
	configure(1, 0);
	add_hook("");
	finished("movies");
	finished("movies");
	rx.delete_during = 1;
	cr_assert_eq(round_at(clock_mono(), NULL), 0);
	cr_assert_eq(rx.calls, 1, "the batch in flight only");
	cr_assert_neq(strstr(warned, "deleted; its deliveries end"), NULL, "%s", warned);
	rx.delete_during = 0;
	cr_assert_eq(round_at(clock_mono(), NULL), 0);
	cr_assert_eq(rx.calls, 1);
}

Test(deliver, filters_that_do_not_parse_are_a_failure_said_once)
{
	add_hook("statuses=bogus");
	finished("movies");
	cr_assert_eq(round_at(clock_mono(), NULL), 1);
	cr_assert_eq(rx.calls, 0);
	cr_assert_neq(strstr(warned, "do not parse"), NULL, "%s", warned);
	warned[0] = '\0';
	cr_assert_eq(round_at(clock_mono(), NULL), 0, "it waits for ever: no new attempt");
	cr_assert_eq(warned[0], '\0');
}

Test(deliver, a_stop_begins_no_post)
{
	add_hook("");
	finished("movies");
	stop_flag = 1;
	cr_assert_eq(round_at(clock_mono(), NULL), 0);
	cr_assert_eq(rx.calls, 0);
}
