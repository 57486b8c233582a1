/* The deliverer on a real store with a receiver in memory: a 2xx moves the cursor, any
 * other answer (4xx, 5xx, no answer) keeps it and is retried after a wait that doubles
 * from 0.1 s to a minute, --once ignores the wait, batches of --batch-size in order,
 * changes that match nothing passed over without a write until a thousand or the flush,
 * a webhook deleted during a POST, filters that do not parse, a stop between POSTs; each
 * webhook on its own (a receiver that never answers holds up no other, a deleted one's
 * POST abandoned, a cursor that another notify moved during a POST not moved back), a
 * POST that fails at once, the URL's password masked in what is kept and logged. */
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

/* The receiver: answers in turn (NULL: 2xx, else the failure's reason), then 2xx, when
 * the test drains the POSTs begun; a held webhook's POSTs are never answered. */
struct receiver {
	const char *answers[8];
	size_t calls;
	uint64_t uids[64];	/* every task posted, in order */
	size_t nuids;
	size_t sizes[16];	/* tasks per POST */
	uint64_t ids[16];	/* the webhook of each POST */
	int delete_during;	/* the webhook is deleted while the POST is under way */
	int fail_start;		/* start() fails at once */
	uint64_t hold;		/* this webhook's POSTs get no answer (0: none) */
	struct { uint64_t id; const char *answer; } open[16];	/* begun, not answered */
	size_t nopen;
	uint64_t cancelled[8];
	size_t ncancelled;
};

static struct receiver rx;
static char warned[8192];
static volatile sig_atomic_t stop_flag;

static int
fake_start(void *ctx, const struct webhook *w, const char *url, const void *body, size_t len,
    char *why, size_t whylen)
{
	struct receiver *r = ctx;
	const char *p = body, *end = p + len, *answer = r->calls < 8 ? r->answers[r->calls] : NULL;
	size_t n = 0;

	cr_assert_eq(strncmp(url, w->url.ptr, w->url.len), 0);
	if (r->fail_start) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	for (; p < end && (p = strstr(p, "{\"uid\":")) != NULL && p < end; p = strchr(p, '\n')) {
		if (r->nuids < 64)
			r->uids[r->nuids++] = strtoull(p + 7, NULL, 10);
		n++;
	}
	if (r->calls < 16) {
		r->sizes[r->calls] = n;
		r->ids[r->calls] = w->id;
	}
	r->calls++;
	if (r->delete_during)
		cr_assert_eq(ops_webhook_delete(s, w->id), 0);
	cr_assert_lt(r->nopen, 16);
	r->open[r->nopen].id = w->id;
	r->open[r->nopen++].answer = answer;
	return 0;
}

static void
fake_cancel(void *ctx, uint64_t id)
{
	struct receiver *r = ctx;

	for (size_t i = 0; i < r->nopen; i++) {
		if (r->open[i].id != id)
			continue;
		memmove(&r->open[i], &r->open[i + 1], (r->nopen - i - 1) * sizeof(r->open[0]));
		r->nopen--;
		if (r->ncancelled < 8)
			r->cancelled[r->ncancelled++] = id;
		return;
	}
	cr_assert_fail("cancel of webhook %llu, which has no POST under way", (unsigned long long)id);
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
	struct deliver_config c = { s, batch, once, { fake_start, fake_cancel, &rx }, warn,
	    &stop_flag };

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
add_hook_at(const char *url, const char *filter)
{
	struct webhook w = { 0 };

	w.url = (struct task_str){ url, strlen(url) };
	w.headers = (struct task_str){ "{}", 2 };
	w.filter = (struct task_str){ filter, strlen(filter) };
	cr_assert_eq(ops_webhook_add(s, &w), 0);
	return w.id;
}

static uint64_t
add_hook(const char *filter)
{
	return add_hook_at("http://127.0.0.1:9/x", filter);
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

/* Answers the POSTs begun, in order, but the held webhook's; those that a 2xx begins too. */
static void
drain(void)
{
	const char *doing;
	size_t i = 0;

	while (i < rx.nopen) {
		if (rx.open[i].id == rx.hold) {
			i++;
			continue;
		}
		uint64_t id = rx.open[i].id;
		const char *answer = rx.open[i].answer;
		memmove(&rx.open[i], &rx.open[i + 1], (rx.nopen - i - 1) * sizeof(rx.open[0]));
		rx.nopen--;
		cr_assert_eq(deliver_done(d, id, answer == NULL, answer, &doing), 0);
	}
}

/* One round at now, its POSTs answered; returns whether an attempt failed, asserting
 * no store failure.  *wake: when the next round is due, an hour later at the latest (far
 * past any backoff here, however long the round took on a busy machine). */
static int
round_at(int64_t now, int64_t *wake)
{
	const char *doing;
	unsigned long failures = deliver_failures(d);

	cr_assert_eq(deliver_round(d, now, &doing), 0);
	drain();
	if (wake)
		*wake = deliver_next(d, now, now + 3600000000);
	return deliver_failures(d) != failures;
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

/* The webhook's stored error (NUL-terminated into buf). */
static void
stored_error(uint64_t id, char *buf, size_t len)
{
	struct webhook w;
	MDB_txn *txn;

	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	cr_assert_eq(webhook_get(s, txn, id, &w), 0);
	snprintf(buf, len, "%.*s", (int)w.error.len, w.error.ptr ? w.error.ptr : "");
	mdb_txn_abort(txn);
}

Test(deliver, a_receiver_that_never_answers_holds_up_no_other)
{
	uint64_t silent = add_hook_at("http://127.0.0.1:9/silent", "");
	uint64_t good = add_hook_at("http://127.0.0.1:9/good", "");
	uint64_t start = log_end(), u[4], cursor, delivered;
	int erred;

	configure(1, 0);
	rx.hold = silent;
	for (int i = 0; i < 3; i++)
		u[i] = finished("movies");
	cr_assert_eq(round_at(clock_mono(), NULL), 0);
	cr_assert_eq(rx.ids[0], silent, "the silent one's POST is begun first");
	cr_assert_eq(rx.calls, 4, "then the good one's three, one after the other");
	cr_assert(rx.ids[1] == good && rx.ids[2] == good && rx.ids[3] == good);
	cr_assert(rx.uids[1] == u[0] && rx.uids[2] == u[1] && rx.uids[3] == u[2], "in order");
	cr_assert(rx.nopen == 1 && rx.open[0].id == silent, "the silent one's is still open");
	cr_assert_eq(deliver_busy(d), 1);
	stored(good, &cursor, &delivered, &erred);
	cr_assert(cursor == log_end() && delivered == 3 && !erred, "the good one's cursor moved");
	stored(silent, &cursor, &delivered, &erred);
	cr_assert(cursor == start && delivered == 0, "the silent one's waits");

	u[3] = finished("movies");
	cr_assert_eq(round_at(clock_mono(), NULL), 0);
	cr_assert_eq(rx.calls, 5, "a later task: the good one gets it, the silent one no new POST");
	cr_assert(rx.ids[4] == good && rx.uids[4] == u[3]);

	rx.hold = 0;	/* the silent one answers at last: its cursor moves, the rest follows */
	drain();
	cr_assert_eq(rx.calls, 8);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(rx.uids[i == 0 ? 0 : 4 + i], u[i], "the silent one's %d-th, in order", i);
	stored(silent, &cursor, &delivered, &erred);
	cr_assert(cursor == log_end() && delivered == 4);
	cr_assert_eq(deliver_busy(d), 0);
}

Test(deliver, a_post_under_way_to_a_deleted_webhook_is_abandoned)
{
	uint64_t id = add_hook(""), other = add_hook_at("http://127.0.0.1:9/other", "");

	rx.hold = id;
	finished("movies");
	cr_assert_eq(round_at(clock_mono(), NULL), 0);
	cr_assert_eq(deliver_busy(d), 1);
	cr_assert_eq(ops_webhook_delete(s, id), 0);
	cr_assert_eq(round_at(clock_mono(), NULL), 0);
	cr_assert(rx.ncancelled == 1 && rx.cancelled[0] == id, "cancelled when read deleted");
	cr_assert_eq(deliver_busy(d), 0);
	cr_assert(rx.nopen == 0 && rx.calls == 2 && rx.ids[1] == other);
}

Test(deliver, an_end_for_no_post_under_way_is_passed_over)
{
	const char *doing;
	uint64_t id = add_hook(""), cursor, delivered;
	int erred;

	finished("movies");
	cr_assert_eq(deliver_done(d, id, 1, NULL, &doing), 0, "no round yet: nothing under way");
	cr_assert_eq(deliver_done(d, 99, 0, "x", &doing), 0, "no such webhook");
	stored(id, &cursor, &delivered, &erred);
	cr_assert(delivered == 0 && !erred);
	cr_assert_eq(deliver_failures(d), 0);
}

Test(deliver, a_post_that_fails_at_once_waits_out_the_backoff)
{
	uint64_t id = add_hook(""), c;
	int64_t next_at, before = clock_mono();
	unsigned failures;
	char err[256];

	rx.fail_start = 1;
	finished("movies");
	cr_assert_eq(round_at(clock_mono(), NULL), 1);
	cr_assert_eq(deliver_busy(d), 0);
	cr_assert_eq(deliver_state(d, id, &c, &next_at, &failures), 0);
	cr_assert(failures == 1 && next_at - before >= deliver_backoff(1));
	stored_error(id, err, sizeof(err));
	cr_assert_str_eq(err, "out of memory");
}

Test(deliver, the_error_kept_and_logged_has_the_urls_password_masked)
{
	uint64_t id = add_hook_at("http://hook:s3cret@127.0.0.1:9/x", "");
	char err[256];

	rx.answers[0] = "POST http://hook:s3cret@127.0.0.1:9/x: HTTP status 500";
	finished("movies");
	cr_assert_eq(round_at(clock_mono(), NULL), 1);
	stored_error(id, err, sizeof(err));
	cr_assert_str_eq(err, "POST http://hook:***@127.0.0.1:9/x: HTTP status 500");
	cr_assert_null(strstr(warned, "s3cret"), "%s", warned);
	cr_assert_not_null(strstr(warned, "POST http://hook:***@127.0.0.1:9/x: HTTP status 500"),
	    "%s", warned);
}

Test(deliver, a_cursor_moved_by_another_notify_during_a_post_is_not_moved_back)
{
	uint64_t id = add_hook(""), start = log_end(), cursor, delivered;
	int erred;

	rx.hold = id;
	finished("movies");
	cr_assert_eq(round_at(clock_mono(), NULL), 0);
	finished("movies");
	uint64_t ahead = log_end();
	struct ops_webhook_step st = { id, start, ahead, 2, 0, NULL, clock_now() };
	cr_assert_eq(ops_webhook_record(s, &st), 0, "another notify delivers both");
	cr_assert_eq(round_at(clock_mono(), NULL), 0, "the webhooks read again");
	rx.hold = 0;
	drain();
	cr_assert_neq(strstr(warned, "moved by another notify"), NULL, "%s", warned);
	stored(id, &cursor, &delivered, &erred);
	cr_assert(cursor == ahead && delivered == 2, "not moved back: %llu",
	    (unsigned long long)cursor);
}
