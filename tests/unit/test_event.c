/* The event layer: timers (never early, repeated, moved, removed), descriptor events
 * (ready, removed, one entry each), event_stop() ending the turn, a signal ending a wait,
 * and the store-change watch on inotify and polling.  Waits are hang guards of seconds;
 * nothing asserts that the machine is fast. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "lmtasks/clock.h"
#include "lmtasks/event.h"
#include "lmtasks/watch.h"
#include "tmpstore.h"

static event_loop *el;

static void
setup(void)
{
	unsetenv("LMTASKS_NO_INOTIFY");
	tmpstore_setup();
	cr_assert_eq(event_new(&el), 0);
}

static void
teardown(void)
{
	event_free(el);
	el = NULL;
	tmpstore_teardown();
}

TestSuite(event, .init = setup, .fini = teardown);

static int64_t
stop_now(event_loop *l, void *ctx)
{
	(void)ctx;
	event_stop(l);
	return EVENT_NOMORE;
}

/* A timer that notes when it ran against when it was due. */
struct due {
	int64_t at, ran;
	int runs;
};

static int64_t
note(event_loop *l, void *ctx)
{
	struct due *d = ctx;

	(void)l;
	d->ran = clock_mono();
	d->runs++;
	return EVENT_NOMORE;
}

Test(event, timers_run_once_and_never_early)
{
	struct due d[3];
	int64_t now = clock_mono();

	for (int i = 0; i < 3; i++) {
		int64_t after = (3 - i) * 10000;
		d[i] = (struct due){ now + after, 0, 0 };
		cr_assert_eq(event_timer_add(el, after, note, &d[i], NULL), 0);
	}
	cr_assert_eq(event_timer_add(el, 50000, stop_now, NULL, NULL), 0);
	cr_assert_eq(event_run(el), 0);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(d[i].runs, 1, "timer %d ran %d times", i, d[i].runs);
		cr_assert_geq(d[i].ran, d[i].at, "timer %d ran early", i);
	}
}

static int64_t
three_more(event_loop *l, void *ctx)
{
	int *runs = ctx;

	if (++*runs < 4)
		return 1000;
	event_stop(l);
	return EVENT_NOMORE;
}

Test(event, a_timer_runs_again_until_it_says_no_more)
{
	int runs = 0;
	uint64_t id;

	cr_assert_eq(event_timer_add(el, 0, three_more, &runs, &id), 0);
	cr_assert_eq(event_run(el), 0);
	cr_assert_eq(runs, 4);
	cr_assert_eq(event_timer_move(el, id, 0), ENOENT, "an ended timer cannot be moved");
}

struct mover {
	uint64_t late, doomed;
};

static int64_t
move_and_delete(event_loop *l, void *ctx)
{
	struct mover *m = ctx;

	cr_assert_eq(event_timer_move(l, m->late, 1000), 0);
	event_timer_del(l, m->doomed);
	return EVENT_NOMORE;
}

Test(event, timers_moved_and_removed_by_another)
{
	struct due doomed = { 0 };
	struct mover m;

	cr_assert_eq(event_timer_add(el, 3600 * INT64_C(1000000), stop_now, NULL, &m.late), 0);
	cr_assert_eq(event_timer_add(el, 20000, note, &doomed, &m.doomed), 0);
	cr_assert_eq(event_timer_add(el, 0, move_and_delete, &m, NULL), 0);
	cr_assert_eq(event_run(el), 0, "the hour-long timer, moved, ends the run");
	cr_assert_eq(doomed.runs, 0, "a removed timer does not run");
}

/* Reads what is there; removes its descriptor when ctx says so. */
struct reader {
	int calls, once;
	unsigned what;
};

static void
on_read(event_loop *l, int fd, unsigned what, void *ctx)
{
	struct reader *r = ctx;
	char buf[16];

	r->calls++;
	r->what = what;
	cr_assert_geq(read(fd, buf, sizeof(buf)), 0);
	if (r->once)
		event_fd_del(l, fd);
	event_stop(l);
}

Test(event, descriptor_ready_then_removed)
{
	struct reader r = { 0, 1, 0 };
	int p[2];

	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(event_fd_add(el, p[0], EVENT_READ, on_read, &r), 0);
	cr_assert_eq(event_fd_add(el, p[0], EVENT_READ, on_read, &r), EEXIST);
	cr_assert_eq(write(p[1], "x", 1), 1);
	cr_assert_eq(event_run(el), 0);
	cr_assert_eq(r.calls, 1);
	cr_assert_eq(r.what, EVENT_READ);
	/* Removed: a byte written now wakes nobody. */
	cr_assert_eq(write(p[1], "y", 1), 1);
	cr_assert_eq(event_timer_add(el, 20000, stop_now, NULL, NULL), 0);
	cr_assert_eq(event_run(el), 0);
	cr_assert_eq(r.calls, 1);
	cr_assert_eq(event_fd_add(el, p[0], EVENT_READ, on_read, &r), 0, "it can come back");
	close(p[0]);
	close(p[1]);
}

Test(event, stop_ends_the_turn_before_the_next_callback)
{
	struct reader a = { 0 }, b = { 0 };
	int p[2], q[2];

	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(pipe(q), 0);
	cr_assert_eq(event_fd_add(el, p[0], EVENT_READ, on_read, &a), 0);
	cr_assert_eq(event_fd_add(el, q[0], EVENT_READ, on_read, &b), 0);
	cr_assert_eq(write(p[1], "x", 1), 1);
	cr_assert_eq(write(q[1], "x", 1), 1);
	cr_assert_eq(event_run(el), 0);
	cr_assert_eq(a.calls + b.calls, 1, "one callback, then the stop");
	cr_assert_eq(event_run(el), 0);
	cr_assert_eq(a.calls + b.calls, 2, "the other at the next run");
	close(p[0]);
	close(p[1]);
	close(q[0]);
	close(q[1]);
}

static void
on_alarm(int sig)
{
	(void)sig;
}

Test(event, a_signal_ends_the_wait_with_eintr)
{
	struct sigaction sa = { 0 };
	struct itimerval it = { { 0, 0 }, { 0, 20000 } };

	sa.sa_handler = on_alarm;	/* no SA_RESTART */
	cr_assert_eq(sigaction(SIGALRM, &sa, NULL), 0);
	cr_assert_eq(event_timer_add(el, 3600 * INT64_C(1000000), stop_now, NULL, NULL), 0);
	cr_assert_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
	cr_assert_eq(event_once(el), EINTR);
}

/* ---- the store-change watch ---- */

static void
counted(event_loop *l, void *ctx)
{
	(void)l;
	++*(int *)ctx;
}

/* A store's data file to watch, in the test's directory. */
static const char *
store_dir(void)
{
	int fd = open(tmpstore_path("data.mdb"), O_CREAT | O_WRONLY, 0600);

	cr_assert_geq(fd, 0);
	close(fd);
	return tmpstore_path("");
}

static void
touch_store(void)
{
	int fd = open(tmpstore_path("data.mdb"), O_WRONLY | O_APPEND);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "x", 1), 1);
	close(fd);
}

Test(event, a_write_to_the_store_is_seen_then_rechecked)
{
	int changes = 0;

	cr_assert_eq(event_watch(el, store_dir(), 0, counted, &changes), 0);
	cr_assert_eq(event_watch(el, store_dir(), 0, counted, &changes), EEXIST);
	cr_assert_eq(event_watch_notified(el), 1, "inotify watches the data file");
	touch_store();
	cr_assert_eq(event_timer_add(el, 10 * INT64_C(1000000), stop_now, NULL, NULL), 0);
	while (changes == 0)
		cr_assert_eq(event_once(el), 0);
	/* After an event the store is read again every WATCH_RECHECK_MS, twenty times:
	 * 200 ms, where looks every WATCH_LOST_MS would take five seconds. */
	int64_t start = clock_mono();
	while (changes < 21)
		cr_assert_eq(event_once(el), 0);
	cr_assert_lt(clock_mono() - start, 20 * WATCH_LOST_MS * INT64_C(1000) / 2,
	    "the re-checks after an event are short");
}

Test(event, without_inotify_the_watch_polls)
{
	int changes = 0;

	setenv("LMTASKS_NO_INOTIFY", "1", 1);
	cr_assert_eq(event_watch(el, store_dir(), 5000, counted, &changes), 0);
	cr_assert_eq(event_watch_notified(el), 0);
	cr_assert_eq(event_timer_add(el, 10 * INT64_C(1000000), stop_now, NULL, NULL), 0);
	while (changes < 3)
		cr_assert_eq(event_once(el), 0);
}

Test(event, without_inotify_and_no_poll_the_watch_is_silent)
{
	int changes = 0;

	setenv("LMTASKS_NO_INOTIFY", "1", 1);
	cr_assert_eq(event_watch(el, store_dir(), 0, counted, &changes), 0);
	touch_store();
	cr_assert_eq(event_timer_add(el, 50000, stop_now, NULL, NULL), 0);
	cr_assert_eq(event_run(el), 0);
	cr_assert_eq(changes, 0, "the caller's own timers look");
}
