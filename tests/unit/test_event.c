/* The event layer: timers (never early, repeated, moved, removed; many in soonest-first
 * order; changed from callbacks), descriptor events (ready, removed, one entry each, the
 * interest changed; one loop of several woken by an exclusive one), event_stop() ending
 * the turn, a signal ending a wait, and the store-change watch on inotify and polling.  Waits are hang guards of seconds;
 * nothing asserts that the machine is fast. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
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

Test(event, a_write_to_the_store_is_seen_then_rechecked, .timeout = 300)
{
	int changes = 0;

	cr_assert_eq(event_watch(el, store_dir(), 0, counted, &changes), 0);
	/* The safety net an hour apart: twenty looks of its would take twenty hours. */
	event_watch_lost(el, 3600 * INT64_C(1000000));
	cr_assert_eq(event_watch(el, store_dir(), 0, counted, &changes), EEXIST);
	cr_assert_eq(event_watch_notified(el), 1, "inotify watches the data file");
	touch_store();
	cr_assert_eq(event_timer_add(el, 10 * INT64_C(1000000), stop_now, NULL, NULL), 0);
	while (changes == 0)
		cr_assert_eq(event_once(el), 0);
	/* After an event the store is read again every WATCH_RECHECK_MS, twenty times:
	 * 200 ms, where the net's looks would take twenty hours (the bound, a minute, holds
	 * on the busiest machine). */
	int64_t start = clock_mono();
	while (changes < 21)
		cr_assert_eq(event_once(el), 0);
	cr_assert_lt(clock_mono() - start, 60 * INT64_C(1000000),
	    "the re-checks after an event are short");
}

/* The safety net's period: WATCH_LOST_MS unless the loop asks for longer (streams: an idle
 * one wakes no more often than that).  Timers due run soonest first; the stop is set half
 * a period from the nearest look, so a moment between adding the two cannot reorder
 * them. */
Test(event, the_safety_net_runs_at_its_period)
{
	int changes = 0;

	cr_assert_eq(event_watch(el, store_dir(), 0, counted, &changes), 0);
	/* Stopped halfway between the second look and the third: the two timers are added a
	 * moment apart, so a stop a millisecond before the third could come after it. */
	cr_assert_eq(event_timer_add(el, 5 * WATCH_LOST_MS * INT64_C(1000) / 2, stop_now, NULL,
	    NULL), 0);
	cr_assert_eq(event_run(el), 0);
	/* At 250 and 500 ms; a turn held up past 500 ms (a busy machine) leaves one. */
	cr_assert(changes >= 1 && changes <= 2, "%d looks within %d ms, each %d ms", changes,
	    5 * WATCH_LOST_MS / 2, WATCH_LOST_MS);

	changes = 0;
	event_watch_lost(el, 60 * INT64_C(1000000));
	cr_assert_eq(event_timer_add(el, 3 * WATCH_LOST_MS * INT64_C(1000), stop_now, NULL, NULL), 0);
	cr_assert_eq(event_run(el), 0);
	cr_assert_eq(changes, 0, "a net of 60 s does not look within %d ms", 3 * WATCH_LOST_MS);
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

/* ---- the epoll backend: interest changed, the heap, the exclusive wake ---- */

/* One turn that waits for nothing: the descriptors ready now, then the timers due. */
static void
one_turn(void)
{
	cr_assert_eq(event_timer_add(el, 0, stop_now, NULL, NULL), 0);
	cr_assert_eq(event_run(el), 0);
}

/* Counts its calls and what they said, without reading or writing. */
static void
on_ready(event_loop *l, int fd, unsigned what, void *ctx)
{
	struct reader *r = ctx;

	(void)l;
	(void)fd;
	r->calls++;
	r->what |= what;
}

Test(event, fd_mod_changes_what_a_descriptor_waits_for)
{
	struct reader w = { 0 };
	int sv[2], p[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	cr_assert_eq(event_fd_add(el, sv[0], 0, on_ready, &w), 0);
	one_turn();
	cr_assert_eq(w.calls, 0, "added waiting for nothing: not called, writable as it is");
	cr_assert_eq(event_fd_mod(el, sv[0], EVENT_WRITE), 0);
	one_turn();
	cr_assert_eq(w.calls, 1);
	cr_assert_eq(w.what, EVENT_WRITE, "only what it waits for is said");
	cr_assert_eq(write(sv[1], "x", 1), 1);
	w = (struct reader){ 0 };
	cr_assert_eq(event_fd_mod(el, sv[0], EVENT_READ | EVENT_WRITE), 0);
	one_turn();
	cr_assert_eq(w.what, EVENT_READ | EVENT_WRITE);
	w = (struct reader){ 0 };
	cr_assert_eq(event_fd_mod(el, sv[0], 0), 0);
	one_turn();
	cr_assert_eq(w.calls, 0, "waiting for nothing again");
	cr_assert_eq(event_fd_mod(el, sv[1], EVENT_READ), ENOENT, "no entry, nothing to change");
	event_fd_del(el, sv[0]);
	cr_assert_eq(event_fd_mod(el, sv[0], EVENT_READ), ENOENT, "removed");

	/* The same interest again costs no system call: a descriptor closed behind the
	 * loop's back (epoll forgets it) is told nothing until the interest changes. */
	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(event_fd_add(el, p[1], EVENT_WRITE, on_ready, &w), 0);
	close(p[1]);
	cr_assert_eq(event_fd_mod(el, p[1], EVENT_WRITE), 0, "unchanged: epoll not asked");
	cr_assert_neq(event_fd_mod(el, p[1], EVENT_READ), 0, "changed: epoll asked, and refuses");
	event_fd_del(el, p[1]);
	close(p[0]);
	close(sv[0]);
	close(sv[1]);
}

/* The timers' order, as they ran: each records its number (ctx). */
#define MANY 2000
static int ran[MANY + 16], nran;

static int64_t
record(event_loop *l, void *ctx)
{
	(void)l;
	cr_assert_lt(nran, MANY + 16);
	ran[nran++] = (int)(intptr_t)ctx;
	return EVENT_NOMORE;
}

Test(event, many_timers_run_soonest_first)
{
	static int perm[MANY];
	static uint64_t id[MANY];
	uint32_t seed = 12345;
	int expect = 0;

	/* Timer i falls due perm[i] seconds before the others' next: all are due in the past,
	 * a second apart (far more than adding them takes), added in shuffled order. */
	for (int i = 0; i < MANY; i++)
		perm[i] = i;
	for (int i = MANY - 1; i > 0; i--) {
		seed = seed * 1103515245 + 12345;
		int j = (int)((seed >> 8) % (uint32_t)(i + 1)), t = perm[i];
		perm[i] = perm[j];
		perm[j] = t;
	}
	nran = 0;
	for (int i = 0; i < MANY; i++)
		cr_assert_eq(event_timer_add(el, -(int64_t)(perm[i] + 1) * 1000000, record,
		    (void *)(intptr_t)perm[i], &id[i]), 0);
	/* Every fifth removed, every seventh left moved an hour on. */
	for (int i = 0; i < MANY; i++) {
		if (perm[i] % 5 == 0)
			event_timer_del(el, id[i]);
		else if (perm[i] % 7 == 0)
			cr_assert_eq(event_timer_move(el, id[i], 3600 * INT64_C(1000000)), 0);
	}
	cr_assert_eq(event_once(el), 0, "one turn: every timer is due");
	for (int k = MANY - 1; k >= 0; k--) {
		if (k % 5 == 0 || k % 7 == 0)
			continue;
		cr_assert_lt(expect, nran, "timer %d did not run", k);
		cr_assert_eq(ran[expect], k, "the %dth to run was %d, not %d", expect, ran[expect], k);
		expect++;
	}
	cr_assert_eq(nran, expect, "a removed or moved timer ran");
	for (int i = 0; i < MANY; i++) {
		int alive = perm[i] % 5 != 0 && perm[i] % 7 == 0;
		cr_assert_eq(event_timer_move(el, id[i], 0), alive ? 0 : ENOENT);
		event_timer_del(el, id[i]);
	}
	one_turn();
	cr_assert_eq(nran, expect, "all removed");
}

/* A turn's timers, each changing others from its callback. */
static struct {
	uint64_t a, b, c, d, e, h, s;
	int s_runs;
} turn;

static int64_t
timer_a(event_loop *l, void *ctx)
{
	record(l, ctx);
	event_timer_del(l, turn.b);	/* due this turn, after it */
	cr_assert_eq(event_timer_move(l, turn.c, 3600 * INT64_C(1000000)), 0);
	/* Due already, but added in the turn: it waits for the next. */
	cr_assert_eq(event_timer_add(l, -10 * INT64_C(1000000), record, (void *)'h', &turn.h), 0);
	return EVENT_NOMORE;
}

static int64_t
timer_d(event_loop *l, void *ctx)
{
	record(l, ctx);
	event_timer_del(l, turn.d);
	cr_assert_eq(event_timer_add(l, -5 * INT64_C(1000000), record, (void *)'e', &turn.e), 0);
	return 5;	/* removed: unheard */
}

/* Moves itself an hour on, then says: again at once (what it returns decides). */
static int64_t
timer_s(event_loop *l, void *ctx)
{
	record(l, ctx);
	cr_assert_eq(event_timer_move(l, turn.s, 3600 * INT64_C(1000000)), 0);
	return ++turn.s_runs < 2 ? 0 : EVENT_NOMORE;
}

Test(event, timers_moved_and_removed_from_callbacks_in_a_turn)
{
	nran = 0;
	cr_assert_eq(event_timer_add(el, -4000000, timer_a, (void *)'a', &turn.a), 0);
	cr_assert_eq(event_timer_add(el, -3000000, record, (void *)'b', &turn.b), 0);
	cr_assert_eq(event_timer_add(el, -2000000, record, (void *)'c', &turn.c), 0);
	cr_assert_eq(event_timer_add(el, -1000000, timer_d, (void *)'d', &turn.d), 0);
	cr_assert_eq(event_timer_add(el, -500000, timer_s, (void *)'s', &turn.s), 0);
	cr_assert_eq(event_once(el), 0);
	cr_assert_eq(nran, 3);
	cr_assert(ran[0] == 'a' && ran[1] == 'd' && ran[2] == 's', "b removed, c moved away");
	cr_assert_eq(event_once(el), 0, "due at once: no wait");
	cr_assert_eq(nran, 6);
	cr_assert(ran[3] == 'h' && ran[4] == 'e' && ran[5] == 's', "added in the turn, then run "
	    "in the next, soonest first; s again at once, though it moved itself");
	cr_assert_eq(event_timer_move(el, turn.b, 0), ENOENT);
	cr_assert_eq(event_timer_move(el, turn.d, 0), ENOENT, "its slot has another timer's id");
	cr_assert_eq(event_timer_move(el, turn.s, 0), ENOENT);
	cr_assert_eq(event_timer_move(el, turn.c, 0), 0, "c still waits");
	one_turn();
	cr_assert_eq(nran, 7);
	cr_assert_eq(ran[6], 'c');
}

/* Two threads, each with its own loop on one pipe: how many are woken by one byte. */
struct waker {
	event_loop *l;
	int fd, stop_fd;
	unsigned what;
	pid_t tid;
	_Atomic int *woken;
	pthread_t t;
};

static void
on_wake_once(event_loop *l, int fd, unsigned what, void *ctx)
{
	struct waker *w = ctx;

	(void)what;
	atomic_fetch_add(w->woken, 1);
	event_fd_del(l, fd);	/* the byte stays: the other loop could still see it */
}

static void
on_stop_fd(event_loop *l, int fd, unsigned what, void *ctx)
{
	(void)fd;
	(void)what;
	(void)ctx;
	event_stop(l);
}

static void *
waker_run(void *arg)
{
	struct waker *w = arg;

	w->tid = (pid_t)syscall(SYS_gettid);
	cr_assert_eq(event_run(w->l), 0);
	return NULL;
}

/* Whether thread tid sleeps in epoll_wait now. */
static int
in_epoll(pid_t tid)
{
	char path[64], buf[64] = "";
	FILE *f;

	if (tid == 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/self/task/%d/wchan", (int)tid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	if (fgets(buf, sizeof(buf), f) == NULL)
		buf[0] = '\0';
	fclose(f);
	return strstr(buf, "epoll") != NULL || strstr(buf, "ep_poll") != NULL;
}

/* Returns how many of two loops waiting on one pipe its one byte woke. */
static int
woken_by_one_byte(unsigned what)
{
	struct waker w[2];
	_Atomic int woken = 0;
	int p[2], s[2];
	struct timespec tick = { 0, 1000000 };

	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(pipe(s), 0);
	for (int i = 0; i < 2; i++) {
		w[i] = (struct waker){ NULL, p[0], s[0], what, 0, &woken, 0 };
		cr_assert_eq(event_new(&w[i].l), 0);
		cr_assert_eq(event_fd_add(w[i].l, p[0], what, on_wake_once, &w[i]), 0);
		cr_assert_eq(event_fd_add(w[i].l, s[0], EVENT_READ, on_stop_fd, NULL), 0);
		cr_assert_eq(pthread_create(&w[i].t, NULL, waker_run, &w[i]), 0);
	}
	/* Both asleep in epoll_wait (a hang guard of 10 s, no timing asserted). */
	for (int i = 0; i < 10000 && !(in_epoll(w[0].tid) && in_epoll(w[1].tid)); i++)
		nanosleep(&tick, NULL);
	cr_assert(in_epoll(w[0].tid) && in_epoll(w[1].tid));
	cr_assert_eq(write(p[1], "x", 1), 1);
	for (int i = 0; i < 10000 && atomic_load(&woken) == 0; i++)
		nanosleep(&tick, NULL);
	/* The stop wakes both: one not woken by the byte does not see it then either (its
	 * loop was not told; the byte is still there). */
	cr_assert_eq(write(s[1], "s", 1), 1);
	for (int i = 0; i < 2; i++) {
		pthread_join(w[i].t, NULL);
		event_free(w[i].l);
	}
	close(p[0]);
	close(p[1]);
	close(s[0]);
	close(s[1]);
	return atomic_load(&woken);
}

Test(event, an_exclusive_descriptor_wakes_one_loop)
{
	cr_assert_eq(woken_by_one_byte(EVENT_READ | EVENT_EXCLUSIVE), 1);
}

Test(event, a_shared_descriptor_wakes_every_loop)
{
	cr_assert_eq(woken_by_one_byte(EVENT_READ), 2);
}
