/* lmtasks work's loop: signals, new tasks (the store's watch, delays coming due), leases
 * and heartbeats, the start and the end of a run; the tasks held, their commands and
 * their commits are work_jobs.c's. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <json-c/printbuf.h>

#include "lmtasks/clock.h"
#include "lmtasks/error.h"
#include "lmtasks/event.h"
#include "lmtasks/ops.h"
#include "lmtasks/proc.h"
#include "lmtasks/render.h"
#include "lmtasks/timefmt.h"
#include "lmtasks/watch.h"
#include "lmtasks/work.h"
#include "work_fail.h"
#include "work_internal.h"

_Static_assert(WORK_STDERR_TAIL == PROC_STDERR_TAIL, "a failure quotes the stderr proc keeps");

static void look(struct worker *w);

/* Without pidfds a SIGCHLD says that some command ended: each running one is asked. */
static void
reap_children(struct worker *w)
{
	for (size_t i = 0; i < w->cap; i++)
		if (w->jobs[i].state == JOB_RUNNING)
			proc_reap(&w->jobs[i].proc);
}

/* ---- stops, new tasks, heartbeats ---- */

/* SIGTERM, SIGINT (a stop), and SIGCHLD where the exits are not pidfds. */
static void
on_signal(event_loop *el, int fd, unsigned what, void *ctx)
{
	struct signalfd_siginfo si;
	struct worker *w = ctx;

	(void)el;
	(void)what;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGCHLD) {
			reap_children(w);
			continue;
		}
		work_say(w, "%s: %s", strsignal((int)si.ssi_signo), w->stopping ? "killing the commands" :
		    "stopping: the running commands get SIGTERM, the other tasks go back to the queue");
		work_stop(w);
	}
}

/* The timer lease_watch() set: the first lease may have ended. */
static int64_t
lease_due(event_loop *el, void *ctx)
{
	struct worker *w = ctx;

	(void)el;
	w->lease_armed = 0;
	look(w);
	return EVENT_NOMORE;
}

/* 1 when a lease has ended (the next write reaps it, and a requeued task may be ours);
 * else the timer is set for the first lease's end, so that an idle worker wakes then. */
static int
lease_watch(struct worker *w, MDB_txn *txn)
{
	int64_t now = clock_now(), after;
	struct task t;
	uint64_t uid;

	if (store_lease_first(w->s, txn, now, &uid) == 0)
		return 1;
	if (store_lease_first(w->s, txn, INT64_MAX, &uid) != 0 ||
	    store_get(w->s, txn, uid, &t) != 0)
		return 0;
	after = t.lease_until - now + 1;
	if (after < 1)
		after = 1;
	if (w->lease_armed && event_timer_move(w->el, w->lease_timer, after) == 0)
		return 0;
	w->lease_armed = event_timer_add(w->el, after, lease_due, w, &w->lease_timer) == 0;
	return 0;
}

/* The timer delay_watch() set: the first delayed task's time came. */
static int64_t
delay_due(event_loop *el, void *ctx)
{
	struct worker *w = ctx;

	(void)el;
	w->delay_armed = 0;
	look(w);
	return EVENT_NOMORE;
}

/* 1 when a delayed task's time has come (the next write makes it claimable, and it may be
 * ours); else the timer is set for the first one's time, so that an idle worker wakes
 * then and not by polling.  A task due that is not ours costs one claim that finds
 * nothing: that write promotes it, and the timer moves on to the next. */
static int
delay_watch(struct worker *w, MDB_txn *txn)
{
	int64_t now = clock_now(), at, after;
	uint64_t uid;

	if (store_delayed_first(w->s, txn, &at, &uid) != 0)
		return 0;
	if (at <= now)
		return 1;
	after = at - now;
	if (w->delay_armed && event_timer_move(w->el, w->delay_timer, after) == 0)
		return 0;
	w->delay_armed = event_timer_add(w->el, after, delay_due, w, &w->delay_timer) == 0;
	return 0;
}

/* A claim when there is room and a task that matches, a lease that ended or a delayed task
 * come due (looked for in a read transaction, which costs no commit). */
static void
look(struct worker *w)
{
	MDB_txn *txn;
	uint64_t uid;

	if (w->stopping)
		return;
	if (w->running >= w->o->concurrency || work_any_waiting(w)) {
		w->empty = 0;	/* the claim that follows a free slot looks again */
		return;
	}
	/* Delayed or prioritised tasks another process wrote first: their databases opened. */
	if (store_sched_refresh(w->s) != 0 || store_read_follow(w->s, &txn) != 0) {
		work_flush_soon(w);	/* the claim will say what is wrong */
		return;
	}
	if (store_find_enqueued(w->s, txn, w->claim.claim_index, w->claim.claim_type,
	    &uid) == 0 || lease_watch(w, txn) || delay_watch(w, txn)) {
		w->empty = 0;
		work_flush_soon(w);
	}
	mdb_txn_abort(txn);
}

/* The store changed: look for a task to claim. */
static void
on_change(event_loop *el, void *ctx)
{
	(void)el;
	look(ctx);
}

/* Every third of the lease: the held tasks' heartbeats, with the results not yet written. */
static int64_t
tick(event_loop *el, void *ctx)
{
	struct worker *w = ctx;

	(void)el;
	if (w->held > 0) {
		work_flush_soon(w);
	} else {
		(void)store_follow(w->s);	/* idle: no old data file kept open (compact) */
		look(w);	/* an idle worker: a lease that ended, unseen by the watch */
	}
	return w->o->lease / 3;
}

/* ---- the run ---- */

/* Allocates the worker's slots and arrays. */
static int
worker_init(struct worker *w, store *s, const struct work_options *o, struct work_stats *st)
{
	memset(w, 0, sizeof(*w));
	memset(st, 0, sizeof(*st));
	w->s = s;
	w->o = o;
	w->st = st;
	w->sigfd = -1;
	w->cap = o->concurrency + o->batch;
	w->claim = (struct ops_change){ .kind = OPS_CLAIM, .claim_index = o->index,
	    .claim_type = o->type, .lease = o->lease, .requeue = 1 };
	snprintf(w->env_db, sizeof(w->env_db), "LMTASKS_DB=%s", store_path(s));
	if ((w->jobs = calloc(w->cap, sizeof(*w->jobs))) == NULL ||
	    (w->changes = calloc(w->cap, sizeof(*w->changes))) == NULL ||
	    (w->rcs = calloc(w->cap, sizeof(*w->rcs))) == NULL ||
	    (w->results = calloc(w->cap, sizeof(*w->results))) == NULL ||
	    (w->of = calloc(w->cap, sizeof(*w->of))) == NULL ||
	    (w->claimed = calloc(o->batch, sizeof(*w->claimed))) == NULL)
		return ENOMEM;
	for (size_t i = 0; i < w->cap; i++) {
		w->jobs[i].w = w;
		proc_init(&w->jobs[i].proc);
	}
	return event_new(&w->el);
}

/* Ends what is left after an error: the commands are killed, their tasks left to the
 * lease rule. */
static void
worker_free(struct worker *w)
{
	for (size_t i = 0; w->jobs && i < w->cap; i++) {
		struct job *j = &w->jobs[i];
		/* A command still running is killed and waited for. */
		if (j->state != JOB_FREE)
			work_job_free(j);
	}
	event_free(w->el);
	if (w->sigfd >= 0) {
		/* A signal that came late is taken here: once the mask is restored it would
		 * end the caller before it says what the run did. */
		struct signalfd_siginfo si;
		while (read(w->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
			;
		close(w->sigfd);
	}
	free(w->jobs);
	free(w->changes);
	free(w->rcs);
	free(w->results);
	free(w->of);
	free(w->claimed);
}

/* The loop's descriptors and timers: signals, the store's watch, the heartbeats. */
static int
worker_arm(struct worker *w, const sigset_t *sigs)
{
	int rc;

	if ((w->sigfd = signalfd(-1, sigs, SFD_NONBLOCK | SFD_CLOEXEC)) < 0)
		return errno;
	if ((rc = event_fd_add(w->el, w->sigfd, EVENT_READ, on_signal, w)) != 0 ||
	    (rc = event_watch(w->el, store_path(w->s), WATCH_POLL_MS * INT64_C(1000), on_change,
	    w)) != 0 ||
	    (rc = event_timer_add(w->el, w->o->lease / 3, tick, w, NULL)) != 0)
		return rc;
	work_flush_soon(w);	/* the first claim */
	if (!w->flush_due)
		return ENOMEM;
	look(w);	/* and the timer for the first lease that ends */
	return 0;
}

/* Signals are blocked and read from a signalfd while it runs; the mask is restored. */
int
work_run(store *s, const struct work_options *o, struct work_stats *st)
{
	struct sigaction ign = { .sa_handler = SIG_IGN }, dfl = { .sa_handler = SIG_DFL };
	struct sigaction old_pipe, old_chld;
	sigset_t sigs, old_mask;
	struct worker w;
	int rc;

	if (o->batch == 0 || o->batch > OPS_CLAIM_MAX || o->concurrency == 0 ||
	    o->concurrency > WORK_CONCURRENCY_MAX || o->lease < 3 || o->argv == NULL ||
	    o->argv[0] == NULL)
		return LMT_EINVAL;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	/* A kernel (or valgrind) without pidfd_open(): the commands' exits come as SIGCHLD. */
	int pidfds = proc_pidfds();
	if (!pidfds)
		sigaddset(&sigs, SIGCHLD);
	/* Signals come as a descriptor; a command that closes its stdin early is no SIGPIPE. */
	sigprocmask(SIG_BLOCK, &sigs, &old_mask);
	sigaction(SIGPIPE, &ign, &old_pipe);
	/* An ignored SIGCHLD (kept across exec from a parent) would have the system reap the
	 * commands before their statuses are read. */
	sigaction(SIGCHLD, &dfl, &old_chld);
	rc = worker_init(&w, s, o, st);
	w.pidfds = pidfds;
	if (rc == 0 && (rc = worker_arm(&w, &sigs)) == 0) {
		while ((rc = event_run(w.el)) == EINTR)
			;
		if (rc == 0)
			rc = w.rc;
	}
	worker_free(&w);
	sigaction(SIGCHLD, &old_chld, NULL);
	sigaction(SIGPIPE, &old_pipe, NULL);
	sigprocmask(SIG_SETMASK, &old_mask, NULL);
	return rc;
}
