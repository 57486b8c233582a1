/* One event loop, in the manner of redis's ae.c: descriptor events on epoll, timers in a
 * binary heap on the monotonic clock, and the store-change watch (watch.h).  The CLI's
 * waits (wait, claim --wait, watch, notify, work), each worker of the FastCGI loop, the
 * stream thread and a CGI stream run on it; nothing else polls or sleeps on its own.
 * A loop belongs to the thread that runs it: no call here may come from another thread.
 * Timers read clock_mono(), which the test builds move. */
#ifndef LMTASKS_EVENT_H
#define LMTASKS_EVENT_H

#include <stdint.h>

typedef struct event_loop event_loop;

enum event_what {
	EVENT_READ = 1,
	EVENT_WRITE = 2,
	/* event_fd_add only: when several loops (threads) watch one descriptor, a readiness
	 * wakes one of them, not all (EPOLLEXCLUSIVE: a listening socket's workers) */
	EVENT_EXCLUSIVE = 4,
};

/* A timer callback's answer: run again in so many µs, or this: no more. */
#define EVENT_NOMORE INT64_C(-1)

/* Called with what the descriptor is ready for (EVENT_READ | EVENT_WRITE, of what it
 * waits for; an error or a hang-up reads as both, so that the read or the write that
 * follows says what it is). */
typedef void event_fd_fn(event_loop *el, int fd, unsigned what, void *ctx);

/* Returns µs until the timer runs again, or EVENT_NOMORE (then it is removed). */
typedef int64_t event_timer_fn(event_loop *el, void *ctx);

/* The store may have changed: read it again. */
typedef void event_change_fn(event_loop *el, void *ctx);

/* A loop with nothing to wait for; freed with event_free().  0, or ENOMEM or
 * epoll_create1()'s errno (EMFILE). */
int event_new(event_loop **out);

/* Frees el and closes its watch; the descriptors added stay open (they are the caller's). */
void event_free(event_loop *el);

/* Calls fn when fd is ready for what (EVENT_READ, EVENT_WRITE, both, or 0: added but
 * waiting for nothing until event_fd_mod; EVENT_EXCLUSIVE may be added); one entry per
 * descriptor, removed before the descriptor is closed.  0, EEXIST, ENOMEM or epoll_ctl()'s
 * errno (EPERM: a regular file). */
int event_fd_add(event_loop *el, int fd, unsigned what, event_fd_fn *fn, void *ctx);

/* Makes fd wait for what instead (EVENT_READ, EVENT_WRITE, both, or 0: nothing); no
 * system call when that does not change.  0, ENOENT when fd has no entry, or
 * epoll_ctl()'s errno. */
int event_fd_mod(event_loop *el, int fd, unsigned what);

/* Stops watching fd (a callback may remove any descriptor, its own too). */
void event_fd_del(event_loop *el, int fd);

/* Calls fn after after_us (0: at the next turn); *id (may be NULL; never 0) names the
 * timer for event_timer_move() and event_timer_del().  0 or ENOMEM. */
int event_timer_add(event_loop *el, int64_t after_us, event_timer_fn *fn, void *ctx,
    uint64_t *id);

/* Moves timer id to after_us from now (from its own callback too: what the callback
 * returns then decides).  0, or ENOENT when it has ended. */
int event_timer_move(event_loop *el, uint64_t id, int64_t after_us);

/* Removes timer id (a callback may remove any timer, its own too). */
void event_timer_del(event_loop *el, uint64_t id);

/*
 * Calls fn whenever the store at path may have changed: at once on an inotify event on
 * its data file, then every WATCH_RECHECK_MS for a while (LMDB publishes a commit in
 * lock.mdb a moment later), and every WATCH_LOST_MS besides (a lost event costs no
 * more).  Where inotify says nothing (LMTASKS_NO_INOTIFY=1, some network file systems)
 * it calls fn every poll_us instead (0: never; the caller's timers look).  Watching
 * starts here: a commit after this call is seen, one before it may not be.  One watch
 * per loop.  0, EEXIST or ENOMEM.
 */
int event_watch(event_loop *el, const char *path, int64_t poll_us, event_change_fn *fn,
    void *ctx);

/* With inotify on, the watch looks again every us besides (WATCH_LOST_MS by default): for
 * a waiter whose lost event costs little, a longer net wakes it less.  Before or after
 * event_watch(). */
void event_watch_lost(event_loop *el, int64_t us);

/* Returns 1 when el's watch is on inotify, 0 when it polls (or there is none). */
int event_watch_notified(const event_loop *el);

/* Returns clock_mono() as read when this turn's descriptors were found ready: for a
 * callback, the time it was called, up to the callbacks before it in the turn. */
int64_t event_now(const event_loop *el);

/* Makes event_run() return once the callback running now returns; no other callback
 * of that turn runs. */
void event_stop(event_loop *el);

/* Waits for the first descriptor, timer or change due, and runs every callback due:
 * the descriptors ready, then the timers due when the turn's timers began (one added or
 * moved by a callback then waits for the next turn).  Returns 0, EINTR when a signal
 * came (the caller looks at what its handler set), or epoll_wait()'s errno. */
int event_once(event_loop *el);

/* Runs turns until event_stop(); returns 0, or as event_once() does (EINTR too). */
int event_run(event_loop *el);

#endif
