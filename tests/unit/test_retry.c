/* Retries on a real store, the clock moved by the test (src/clock.c's seam, compiled into
 * this suite alone): the backoff's growth, cap and jitter, attempts counted at each claim,
 * a failure put back in the queue until the last attempt's, fail --final, a released task's
 * attempt given back, an expired lease counted as a failed attempt, the store's policy
 * applied at enqueue, and lmtasks retry by uid and by filter. */
#include "config.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <lmdb.h>

#include "lmtasks/clock.h"
#include "lmtasks/error.h"
#include "lmtasks/feed.h"
#include "lmtasks/ops.h"
#include "lmtasks/query.h"
#include "lmtasks/retry.h"
#include "lmtasks/settings.h"
#include "lmtasks/store.h"
#include "lmtasks/tbatch.h"
#include "tmpdb.h"

#define STR(s) ((struct task_str){ (s), sizeof(s) - 1 })
#define SEC INT64_C(1000000)


/* Points the clock seam at a file of the test's directory, the clock not moved yet. */
static void
setup(void)
{
	tmpdb_setup();
	cr_assert_eq(setenv("LMTASKS_TEST_CLOCK", tmpstore_path("clock"), 1), 0);
}

static void
teardown(void)
{
	unsetenv("LMTASKS_TEST_CLOCK");
	tmpdb_teardown();
}

TestSuite(retry, .init = setup, .fini = teardown);

/* Enqueues one task of index with max_attempts and backoff_ms (0, 0: a plain task). */
static uint64_t
add(const char *index, uint16_t max_attempts, uint32_t backoff_ms)
{
	struct task t;

	task_init(&t, index, strlen(index), "documentAddition", 16, "{}", 2);
	t.max_attempts = max_attempts;
	t.backoff_ms = backoff_ms;
	cr_assert_eq(ops_enqueue(s, &t, 1, NULL), 0);
	return t.uid;
}

/* Reads task uid into ot. */
static void
get(uint64_t uid, struct ops_task *ot)
{
	MDB_txn *txn;
	struct task t;

	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	cr_assert_eq(store_get(s, txn, uid, &t), 0);
	cr_assert_eq(ops_task_copy(ot, &t), 0);
	mdb_txn_abort(txn);
}

/* Applies a change of kind to uid; returns its result, the task after in r. */
static int
change(enum ops_change_kind kind, uint64_t uid, int64_t lease, int final,
    struct ops_change_result *r)
{
	struct ops_change ch = { .kind = kind, .uid = uid, .code = "boom",
	    .message = "it broke", .etype = TASK_ERR_INTERNAL, .lease = lease, .final = final };

	return ops_change(s, &ch, r);
}

/* Starts uid, then fails it; the task after is left in r (freed by the caller). */
static void
attempt_fails(uint64_t uid, int final, struct ops_change_result *r)
{
	cr_assert_eq(change(OPS_START, uid, 0, 0, r), 0);
	ops_task_free(&r->out);
	cr_assert_eq(change(OPS_FAIL, uid, 0, final, r), 0);
}

static int
is_code(const struct task *t, const char *code)
{
	return t->error_code.ptr && t->error_code.len == strlen(code) &&
	    memcmp(t->error_code.ptr, code, t->error_code.len) == 0;
}

Test(retry, the_delay_doubles_from_the_first_up_to_the_cap)
{
	/* The middle of the jitter's range (200 of 0..400) is the delay itself. */
	cr_assert_eq(retry_delay_us(1000, 1, 200), 1 * SEC);
	cr_assert_eq(retry_delay_us(1000, 2, 200), 2 * SEC);
	cr_assert_eq(retry_delay_us(1000, 3, 200), 4 * SEC);
	cr_assert_eq(retry_delay_us(1000, 11, 200), 1024 * SEC);
	cr_assert_eq(retry_delay_us(1000, 12, 200), 2048 * SEC);
	cr_assert_eq(retry_delay_us(1000, 13, 200), 3600 * SEC, "capped at an hour");
	cr_assert_eq(retry_delay_us(1000, TASK_ATTEMPTS_MAX, 200), 3600 * SEC);
	cr_assert_eq(retry_delay_us(1000, 0, 200), 1 * SEC, "attempt 0 reads as the first");
	/* A first delay past the cap is kept, never doubled. */
	cr_assert_eq(retry_delay_us(7200000, 1, 200), 7200 * SEC);
	cr_assert_eq(retry_delay_us(7200000, 5, 200), 7200 * SEC);
	cr_assert_eq(retry_delay_us(RETRY_BACKOFF_MAX_MS, TASK_ATTEMPTS_MAX, 400),
	    (int64_t)RETRY_BACKOFF_MAX_MS * 1200);
}

Test(retry, the_jitter_stays_within_20_percent_and_spreads)
{
	cr_assert_eq(retry_delay_us(10000, 1, 0), 8 * SEC);
	cr_assert_eq(retry_delay_us(10000, 1, 400), 12 * SEC);
	cr_assert_eq(retry_delay_us(10000, 1, 100000), 12 * SEC, "past the range: its top");
	cr_assert_eq(retry_delay_us(1000, 13, 0), 2880 * SEC);
	cr_assert_eq(retry_delay_us(1000, 13, 400), 4320 * SEC);

	int64_t lo = INT64_MAX, hi = 0;
	for (int i = 0; i < 2000; i++) {
		int64_t d = retry_backoff_us(10000, 3);	/* 40 s, ±20% */
		cr_assert_geq(d, 32 * SEC);
		cr_assert_leq(d, 48 * SEC);
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
	}
	/* 2000 uniform draws over 401 steps: both ends of the range are neared. */
	cr_assert_lt(lo, 33 * SEC, "lowest %" PRId64, lo);
	cr_assert_gt(hi, 47 * SEC, "highest %" PRId64, hi);
}

Test(retry, durations_read_as_the_cli_writes_them)
{
	static const struct {
		const char *text;
		uint32_t ms;
	} good[] = {
		{ "30", 30000 }, { "30s", 30000 }, { "1.5m", 90000 }, { "250ms", 250 },
		{ "2h", 7200000 }, { "1d", 86400000 }, { "0.5", 500 }, { "1ms", 1 },
	};
	static const char *const bad[] = {
		"", "s", "0", "0s", "-1", "1w", "10 s", "1.5.2", "25h", "86400001ms", "1e3",
		"99999999999999999999",
	};
	char text[RETRY_DURATION_BUFSZ];
	uint32_t ms;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		cr_assert_eq(retry_parse_duration(good[i].text, &ms), 0, "%s", good[i].text);
		cr_assert_eq(ms, good[i].ms, "%s: %u", good[i].text, ms);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(retry_parse_duration(bad[i], &ms), LMT_EINVAL, "%s taken", bad[i]);
	retry_format_duration(90000, text);
	cr_assert_str_eq(text, "90s");
	retry_format_duration(3600000, text);
	cr_assert_str_eq(text, "1h");
	retry_format_duration(1500, text);
	cr_assert_str_eq(text, "1500ms");
}

Test(retry, a_plain_task_counts_no_attempt_and_fails_at_once)
{
	struct ops_change_result r;
	uint64_t uid = add("movies", 0, 0);

	attempt_fails(uid, 0, &r);
	cr_assert_eq(r.out.t.status, TASK_FAILED);
	cr_assert_eq(r.out.t.attempts, 0);
	cr_assert_not(task_has_sched(&r.out.t), "its record stays a plain one");
	ops_task_free(&r.out);
}

Test(retry, each_claim_counts_an_attempt_and_a_failure_comes_back_after_its_backoff)
{
	struct ops_change_result r;
	struct ops_change claim = { .kind = OPS_CLAIM };
	uint64_t uid = add("movies", 3, 10000);

	cr_assert_eq(ops_change(s, &claim, &r), 0);
	cr_assert_eq(r.out.t.attempts, 1);
	cr_assert_eq(r.out.t.max_attempts, 3);
	cr_assert(r.out.t.has_batch);
	ops_task_free(&r.out);

	int64_t before = clock_now();
	cr_assert_eq(change(OPS_FAIL, uid, 0, 0, &r), 0);
	int64_t after = clock_now();
	cr_assert_eq(r.was, TASK_PROCESSING);
	cr_assert_eq(r.out.t.status, TASK_ENQUEUED);
	cr_assert_eq(r.out.t.started_at, 0);
	cr_assert_eq(r.out.t.finished_at, 0);
	cr_assert_eq(r.out.t.lease_until, 0);
	cr_assert_not(r.out.t.has_batch, "it left the batch that claimed it");
	cr_assert(is_code(&r.out.t, "boom"), "the error is kept as the last attempt's");
	cr_assert_geq(r.out.t.not_before, before + 8 * SEC);
	cr_assert_leq(r.out.t.not_before, after + 12 * SEC);
	ops_task_free(&r.out);

	/* Attempt 2 fails: the backoff doubled, 20 s ± 20%. */
	tmpstore_clock_move(13 * SEC);
	before = clock_now();
	attempt_fails(uid, 0, &r);
	cr_assert_eq(r.out.t.status, TASK_ENQUEUED);
	cr_assert_eq(r.out.t.attempts, 2);
	cr_assert_geq(r.out.t.not_before, before + 16 * SEC);
	cr_assert_leq(r.out.t.not_before, clock_now() + 24 * SEC);
	ops_task_free(&r.out);

	/* Attempt 3, the last: its failure is final, with its own error. */
	tmpstore_clock_move(25 * SEC);
	cr_assert_eq(change(OPS_START, uid, 0, 0, &r), 0);
	cr_assert_eq(r.out.t.attempts, 3);
	ops_task_free(&r.out);
	struct ops_change last = { .kind = OPS_FAIL, .uid = uid, .code = "gone",
	    .message = "for good", .etype = TASK_ERR_INVALID_REQUEST };
	cr_assert_eq(ops_change(s, &last, &r), 0);
	cr_assert_eq(r.out.t.status, TASK_FAILED);
	cr_assert_gt(r.out.t.finished_at, 0);
	cr_assert(is_code(&r.out.t, "gone"));
	cr_assert_eq(r.out.t.error_type, TASK_ERR_INVALID_REQUEST);
	cr_assert_eq(r.out.t.attempts, 3);
	ops_task_free(&r.out);
	cr_assert_eq(change(OPS_START, uid, 0, 0, &r), LMT_ETRANSITION, "a failed task is final");
}

Test(retry, a_task_that_succeeds_on_a_retry_keeps_its_count_and_last_error)
{
	struct ops_change_result r;
	uint64_t uid = add("movies", 2, 1000);

	attempt_fails(uid, 0, &r);
	ops_task_free(&r.out);
	tmpstore_clock_move(2 * SEC);
	cr_assert_eq(change(OPS_START, uid, 0, 0, &r), 0);
	ops_task_free(&r.out);
	cr_assert_eq(change(OPS_SUCCEED, uid, 0, 0, &r), 0);
	cr_assert_eq(r.out.t.status, TASK_SUCCEEDED);
	cr_assert_eq(r.out.t.attempts, 2);
	cr_assert(is_code(&r.out.t, "boom"));
	ops_task_free(&r.out);
}

Test(retry, fail_final_ends_a_task_with_attempts_left)
{
	struct ops_change_result r;
	uint64_t uid = add("movies", 5, 1000);

	attempt_fails(uid, 1, &r);
	cr_assert_eq(r.out.t.status, TASK_FAILED);
	cr_assert_eq(r.out.t.attempts, 1);
	ops_task_free(&r.out);
}

Test(retry, a_released_task_gets_its_attempt_back)
{
	struct ops_change_result r;
	uint64_t uid = add("movies", 2, 1000);

	cr_assert_eq(change(OPS_START, uid, 0, 0, &r), 0);
	cr_assert_eq(r.out.t.attempts, 1);
	ops_task_free(&r.out);
	cr_assert_eq(change(OPS_RELEASE, uid, 0, 0, &r), 0);
	cr_assert_eq(r.out.t.status, TASK_ENQUEUED);
	cr_assert_eq(r.out.t.attempts, 0);
	cr_assert_eq(r.out.t.not_before, 0, "handed back, not failed: no backoff");
	ops_task_free(&r.out);
}

Test(retry, an_expired_lease_counts_as_a_failed_attempt)
{
	struct ops_change_result r;
	struct ops_task t = { 0 };
	uint64_t uid = add("movies", 2, 5000), n = 0;

	/* Claimed with --requeue, as lmtasks work claims: the policy decides all the same. */
	struct ops_change claim = { .kind = OPS_CLAIM, .lease = 60 * SEC, .requeue = 1 };
	cr_assert_eq(ops_change(s, &claim, &r), 0);
	ops_task_free(&r.out);
	cr_assert_eq(ops_reap(s, &n), 0);
	cr_assert_eq(n, 0, "the lease holds until the clock passes it");

	tmpstore_clock_move(61 * SEC);
	int64_t now = clock_now();
	cr_assert_eq(ops_reap(s, &n), 0);
	cr_assert_eq(n, 1);
	get(uid, &t);
	cr_assert_eq(t.t.status, TASK_ENQUEUED);
	cr_assert_eq(t.t.attempts, 1);
	cr_assert_eq(t.t.lease_until, 0);
	cr_assert(is_code(&t.t, "task_lease_expired"), "the lease's end is the last error");
	cr_assert_geq(t.t.not_before, now + 4 * SEC);
	cr_assert_leq(t.t.not_before, clock_now() + 6 * SEC);
	cr_assert(ops_lease_ended(&t.t));
	ops_task_free(&t);
	/* The worker that lost it is refused, and told why. */
	cr_assert_eq(change(OPS_SUCCEED, uid, 0, 0, &r), LMT_ELEASE);
	cr_assert_eq(r.was, TASK_ENQUEUED);

	/* The last attempt's lease ends too: failed, saying so. */
	tmpstore_clock_move(7 * SEC);
	cr_assert_eq(ops_change(s, &claim, &r), 0);
	cr_assert_eq(r.out.t.attempts, 2);
	ops_task_free(&r.out);
	tmpstore_clock_move(61 * SEC);
	cr_assert_eq(ops_reap(s, &n), 0);
	cr_assert_eq(n, 1);
	get(uid, &t);
	cr_assert_eq(t.t.status, TASK_FAILED);
	cr_assert(is_code(&t.t, "task_lease_expired"));
	cr_assert_not_null(memmem(t.t.error_message.ptr, t.t.error_message.len,
	    "last attempt (2 of 2)", 21), "%.*s", (int)t.t.error_message.len,
	    t.t.error_message.ptr);
	cr_assert(ops_lease_ended(&t.t));
	ops_task_free(&t);
}

Test(retry, the_store_policy_applies_at_enqueue_to_tasks_that_give_none)
{
	struct settings set;
	struct ops_task t = { 0 };

	cr_assert_eq(ops_config_set(s, SETTING_MAX_ATTEMPTS, 4, &set), 0);
	cr_assert_eq(ops_config_set(s, SETTING_RETRY_BACKOFF, 1500, &set), 0);
	uint64_t plain = add("movies", 0, 0), own = add("movies", 2, 0);
	uint64_t both = add("movies", 7, 250);
	cr_assert_eq(ops_config_set(s, SETTING_MAX_ATTEMPTS, 0, &set), 0);
	uint64_t later = add("movies", 0, 3000);

	get(plain, &t);
	cr_assert_eq(t.t.max_attempts, 4);
	cr_assert_eq(t.t.backoff_ms, 1500);
	get(own, &t);
	cr_assert_eq(t.t.max_attempts, 2);
	cr_assert_eq(t.t.backoff_ms, 1500, "the store's backoff for one that gives none");
	get(both, &t);
	cr_assert_eq(t.t.max_attempts, 7);
	cr_assert_eq(t.t.backoff_ms, 250);
	get(later, &t);
	cr_assert_eq(t.t.max_attempts, 0, "fixed at enqueue: no policy once it is off");
	cr_assert_eq(t.t.backoff_ms, 0, "a backoff with no retry is dropped");
	cr_assert_not(task_has_sched(&t.t));
	ops_task_free(&t);
}

/* Retries the n uids; checks each answer against want. */
static void
retry_uids(const uint64_t *uids, size_t n, const int *want, struct ops_retry *r)
{
	memset(r, 0, sizeof(*r));
	r->uids = uids;
	r->n = n;
	cr_assert_eq(ops_retry(s, r), 0);
	cr_assert_eq(r->nout, n);
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(r->out_uids[i], uids[i]);
		cr_assert_eq(r->rcs[i], want[i], "task %" PRIu64 ": %d", uids[i], r->rcs[i]);
	}
}

Test(retry, retry_puts_failed_tasks_back_at_once_and_refuses_the_others)
{
	struct ops_change_result r;
	struct ops_retry rr;
	struct ops_task t = { 0 };
	uint64_t spent = add("movies", 1, 1000), plain = add("movies", 0, 0);
	uint64_t left = add("movies", 3, 1000), ok = add("movies", 0, 0), waiting = add("books", 0, 0);

	attempt_fails(spent, 0, &r);
	ops_task_free(&r.out);
	attempt_fails(plain, 0, &r);
	ops_task_free(&r.out);
	attempt_fails(left, 1, &r);
	ops_task_free(&r.out);
	tmpdb_change(OPS_START, ok);
	tmpdb_change(OPS_SUCCEED, ok);
	get(ok, &t);
	uint32_t ok_sum = t.t.record_sum;

	uint64_t uids[] = { spent, plain, left, ok, waiting, 999 };
	int want[] = { 0, 0, 0, LMT_ETRANSITION, LMT_ETRANSITION, MDB_NOTFOUND };
	retry_uids(uids, 6, want, &rr);
	cr_assert_eq(rr.retried, 3);
	/* A policy with no attempt left gets one more. */
	cr_assert_eq(rr.out[0].t.status, TASK_ENQUEUED);
	cr_assert_eq(rr.out[0].t.attempts, 1);
	cr_assert_eq(rr.out[0].t.max_attempts, 2);
	cr_assert_eq(rr.out[0].t.not_before, 0, "at once");
	cr_assert_eq(rr.out[0].t.started_at, 0);
	cr_assert_eq(rr.out[0].t.finished_at, 0);
	cr_assert_not(rr.out[0].t.has_batch);
	cr_assert(is_code(&rr.out[0].t, "boom"));
	/* A plain task counts the attempt it had: attempt 2 of 2 comes. */
	cr_assert_eq(rr.out[1].t.attempts, 1);
	cr_assert_eq(rr.out[1].t.max_attempts, 2);
	cr_assert(is_code(&rr.out[1].t, "boom"));
	/* Failed with --final and attempts left: its policy stands. */
	cr_assert_eq(rr.out[2].t.attempts, 1);
	cr_assert_eq(rr.out[2].t.max_attempts, 3);
	/* The others are answered as they are, unchanged. */
	cr_assert_eq(rr.out[3].t.status, TASK_SUCCEEDED);
	cr_assert_eq(rr.out[4].t.status, TASK_ENQUEUED);
	cr_assert_null(rr.out[5].buf);
	ops_retry_free(&rr);
	get(ok, &t);
	cr_assert_eq(t.t.record_sum, ok_sum, "a refused task's record is untouched");

	/* The plain task's next failure is final. */
	attempt_fails(plain, 0, &r);
	cr_assert_eq(r.out.t.status, TASK_FAILED);
	cr_assert_eq(r.out.t.attempts, 2);
	ops_task_free(&r.out);
	ops_task_free(&t);

	/* Nothing to retry: every answer given, nothing written. */
	uint64_t none[] = { ok };
	int refused[] = { LMT_ETRANSITION };
	retry_uids(none, 1, refused, &rr);
	cr_assert_eq(rr.retried, 0);
	ops_retry_free(&rr);
}

Test(retry, retry_by_filter_takes_the_failed_tasks_it_matches)
{
	struct ops_change_result r;
	struct ops_retry rr = { 0 };
	struct query_error why;
	struct query *q = malloc(sizeof(*q));
	uint64_t a = add("movies", 0, 0), b = add("books", 0, 0), c = add("movies", 0, 0);

	add("movies", 0, 0);	/* enqueued: not matched */
	attempt_fails(a, 0, &r);
	ops_task_free(&r.out);
	attempt_fails(b, 0, &r);
	ops_task_free(&r.out);
	attempt_fails(c, 0, &r);
	ops_task_free(&r.out);
	cr_assert_not_null(q);
	query_init(q);
	cr_assert_eq(query_set(q, "indexUids", "movies", 6, &why), 0);
	cr_assert_eq(query_set(q, "statuses", "failed", 6, &why), 0);
	rr.q = q;
	cr_assert_eq(ops_retry(s, &rr), 0);
	cr_assert_eq(rr.nout, 2);
	cr_assert_eq(rr.retried, 2);
	for (size_t i = 0; i < rr.nout; i++) {
		cr_assert(rr.out_uids[i] == a || rr.out_uids[i] == c);
		cr_assert_eq(rr.out[i].t.status, TASK_ENQUEUED);
	}
	ops_retry_free(&rr);

	/* Again: none is failed now. */
	memset(&rr, 0, sizeof(rr));
	rr.q = q;
	cr_assert_eq(ops_retry(s, &rr), 0);
	cr_assert_eq(rr.nout, 0);
	ops_retry_free(&rr);
	free(q);
}

Test(retry, the_change_log_records_each_transition)
{
	struct ops_change_result r;
	struct feed_entry e;
	feed_iter *it;
	MDB_txn *txn;
	uint64_t uid = add("movies", 2, 1000), first, last;
	unsigned seen[8];
	size_t n = 0;

	attempt_fails(uid, 0, &r);
	ops_task_free(&r.out);
	tmpstore_clock_move(2 * SEC);
	attempt_fails(uid, 0, &r);
	ops_task_free(&r.out);
	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	cr_assert_eq(feed_bounds(s, txn, &first, &last), 0);
	cr_assert_eq(feed_iter_open(s, txn, first - 1, &it), 0);
	while (n < 8 && feed_iter_next(it, &e) == 0) {
		cr_assert_eq(e.uid, uid);
		seen[n++] = e.status;
	}
	feed_iter_close(it);
	mdb_txn_abort(txn);
	/* enqueued, processing, enqueued (retry), processing, failed (final) */
	cr_assert_eq(n, 5);
	cr_assert_eq(seen[0], TASK_ENQUEUED);
	cr_assert_eq(seen[1], TASK_PROCESSING);
	cr_assert_eq(seen[2], TASK_ENQUEUED);
	cr_assert_eq(seen[3], TASK_PROCESSING);
	cr_assert_eq(seen[4], TASK_FAILED);
}

Test(retry, a_task_put_back_is_not_claimed_before_its_backoff_ends)
{
	struct ops_change_result r;
	struct ops_change claim = { .kind = OPS_CLAIM };
	uint64_t uid = add("movies", 2, 10000), other = add("movies", 0, 0);

	attempt_fails(uid, 0, &r);
	int64_t due = r.out.t.not_before;
	ops_task_free(&r.out);
	/* The plain task after it is claimed first: the retry waits. */
	cr_assert_eq(ops_change(s, &claim, &r), 0);
	cr_assert_eq(r.uid, other);
	ops_task_free(&r.out);
	cr_assert_eq(ops_change(s, &claim, &r), MDB_NOTFOUND);
	/* The wall clock stopped a microsecond before, then at the time: how slow the
	 * machine is cannot move either check. */
	tmpstore_clock_freeze(due - 1);
	cr_assert_eq(ops_change(s, &claim, &r), MDB_NOTFOUND, "a microsecond early");
	tmpstore_clock_freeze(due);
	cr_assert_eq(ops_change(s, &claim, &r), 0, "at its time");
	cr_assert_eq(r.uid, uid);
	cr_assert_eq(r.out.t.attempts, 2);
	ops_task_free(&r.out);
}

Test(retry, a_retried_task_is_claimable_at_once)
{
	struct ops_change_result r;
	struct ops_change claim = { .kind = OPS_CLAIM };
	struct ops_retry rr = { 0 };
	uint64_t uid = add("movies", 3, 60000);

	attempt_fails(uid, 0, &r);
	cr_assert_eq(r.out.t.status, TASK_ENQUEUED);
	ops_task_free(&r.out);
	/* Put back with a minute's backoff, then failed for good by hand, then retried. */
	cr_assert_eq(ops_change(s, &claim, &r), MDB_NOTFOUND);
	tmpstore_clock_move(80 * SEC);
	attempt_fails(uid, 1, &r);
	cr_assert_eq(r.out.t.status, TASK_FAILED);
	ops_task_free(&r.out);
	rr.uids = &uid;
	rr.n = 1;
	cr_assert_eq(ops_retry(s, &rr), 0);
	cr_assert_eq(rr.retried, 1);
	ops_retry_free(&rr);
	cr_assert_eq(ops_change(s, &claim, &r), 0);
	cr_assert_eq(r.uid, uid);
	cr_assert_eq(r.out.t.attempts, 3);
	ops_task_free(&r.out);
}

/* Batch uid as stored: 0 and its counts in b, or MDB_NOTFOUND. */
static int
batch_read(uint64_t uid, struct tbatch *b)
{
	struct tbatch_count types[TBATCH_NAMES_MAX], indexes[TBATCH_NAMES_MAX];
	const void *rec;
	size_t len;
	MDB_txn *txn;
	int rc;

	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	if ((rc = store_batch_get(s, txn, uid, &rec, &len)) == 0) {
		rc = tbatch_decode(rec, len, b, types, indexes);
		b->uid = uid;
	}
	mdb_txn_abort(txn);
	return rc;
}

/* A batch is the record of an attempt: one that failed and went back to the queue stays
 * counted there as failed, and lmtasks retry leaves a failed task's batch as it was; the
 * task itself, enqueued again, is in no batch until it is claimed again. */
Test(retry, a_failed_attempt_stays_in_its_batch)
{
	struct ops_change_result r;
	struct ops_task t = { 0 };
	struct tbatch b;
	uint64_t uid = add("movies", 2, 1000), first, second;

	attempt_fails(uid, 0, &r);
	cr_assert_eq(r.out.t.status, TASK_ENQUEUED);
	cr_assert_eq(r.out.t.has_batch, 0, "back in the queue, in no batch");
	ops_task_free(&r.out);
	/* The attempt's batch (the start made it): its task failed there. */
	first = 0;
	cr_assert_eq(batch_read(first, &b), 0, "the batch of the failed attempt is kept");
	cr_assert_eq(b.status[TASK_FAILED], 1);
	cr_assert_eq(b.status[TASK_PROCESSING], 0);
	cr_assert_neq(b.finished_at, 0, "it holds nothing running: it is finished");

	tmpstore_clock_move(2 * SEC);
	attempt_fails(uid, 0, &r);	/* the last attempt: final */
	cr_assert_eq(r.out.t.status, TASK_FAILED);
	second = r.out.t.batch_uid;
	cr_assert(r.out.t.has_batch && second != first);
	ops_task_free(&r.out);

	struct ops_retry rr = { .uids = &uid, .n = 1 };
	cr_assert_eq(ops_retry(s, &rr), 0);
	cr_assert_eq(rr.retried, 1);
	ops_retry_free(&rr);
	get(uid, &t);
	cr_assert_eq(t.t.status, TASK_ENQUEUED);
	cr_assert_eq(t.t.has_batch, 0);
	ops_task_free(&t);
	cr_assert_eq(batch_read(second, &b), 0, "lmtasks retry leaves the failed task's batch");
	cr_assert_eq(b.status[TASK_FAILED], 1);
	cr_assert_eq(batch_read(first, &b), 0);
	cr_assert_eq(b.status[TASK_FAILED], 1);
}

Test(retry, a_backoff_past_the_end_of_time_waits_until_the_last_time_a_record_holds)
{
	struct ops_change_result r;
	struct ops_change claim = { .kind = OPS_CLAIM, .lease = 1 * SEC };
	struct ops_task t = { 0 };
	uint64_t n = 0;

	/* 30 s before 9999-12-31T23:59:59.999999Z, the wall clock stopped there (however long
	 * a step takes, the 1 s lease ends only when the test says); a backoff of a minute
	 * (±20%) goes past. */
	tmpstore_clock_freeze(TASK_TIME_MAX - 30 * SEC);
	uint64_t failed = add("movies", 3, 60000), expired = add("movies", 3, 60000);

	cr_assert_eq(ops_change(s, &claim, &r), 0);
	cr_assert_eq(r.out.t.uid, failed);
	ops_task_free(&r.out);
	cr_assert_eq(change(OPS_FAIL, failed, 0, 0, &r), 0);
	cr_assert_eq(r.out.t.status, TASK_ENQUEUED);
	cr_assert_eq(r.out.t.not_before, TASK_TIME_MAX);
	ops_task_free(&r.out);
	get(failed, &t);	/* the record decodes */
	cr_assert_eq(t.t.not_before, TASK_TIME_MAX);
	ops_task_free(&t);

	/* The reaper's retry the same. */
	cr_assert_eq(ops_change(s, &claim, &r), 0);
	cr_assert_eq(r.out.t.uid, expired);
	ops_task_free(&r.out);
	tmpstore_clock_freeze(TASK_TIME_MAX - 28 * SEC);
	cr_assert_eq(ops_reap(s, &n), 0);
	cr_assert_eq(n, 1);
	get(expired, &t);
	cr_assert_eq(t.t.status, TASK_ENQUEUED);
	cr_assert_eq(t.t.not_before, TASK_TIME_MAX);
	ops_task_free(&t);
}

/* A lease that would end past the last time a record holds ends at that time: the claim and
 * the heartbeat write a record that decodes. */
Test(retry, a_lease_past_the_end_of_time_ends_at_the_last_time_a_record_holds)
{
	struct ops_change_result r;
	struct ops_change claim = { .kind = OPS_CLAIM, .lease = 3600 * SEC };
	struct ops_change beat = { .kind = OPS_HEARTBEAT, .lease = 3600 * SEC };
	struct ops_task t = { 0 };

	tmpstore_clock_move(TASK_TIME_MAX - 30 * SEC - clock_now());
	uint64_t uid = add("movies", 0, 0);

	cr_assert_eq(ops_change(s, &claim, &r), 0);
	cr_assert_eq(r.out.t.lease_until, TASK_TIME_MAX);
	ops_task_free(&r.out);
	get(uid, &t);	/* the record decodes */
	cr_assert_eq(t.t.lease_until, TASK_TIME_MAX);
	ops_task_free(&t);
	beat.uid = uid;
	cr_assert_eq(ops_change(s, &beat, &r), 0);
	cr_assert_eq(r.out.t.lease_until, TASK_TIME_MAX);
	ops_task_free(&r.out);
	get(uid, &t);
	cr_assert_eq(t.t.lease_until, TASK_TIME_MAX);
	ops_task_free(&t);
}
