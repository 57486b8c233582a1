/* lmtasks work's scheduling: the tasks held (waiting for a slot, running, done and not yet
 * recorded), when to commit and what, stops, new tasks and heartbeats, on one loop.  The
 * commands run through proc.h, which knows nothing of tasks: their exits come back here. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/printbuf.h>

#include "lmtasks/clock.h"
#include "lmtasks/details.h"
#include "lmtasks/error.h"
#include "lmtasks/event.h"
#include "lmtasks/ops.h"
#include "lmtasks/proc.h"
#include "lmtasks/render.h"
#include "lmtasks/timefmt.h"
#include "lmtasks/watch.h"
#include "lmtasks/work.h"
#include "work_fail.h"

#define RETRY_US 1000000	/* a commit that failed is tried again after this */

_Static_assert(WORK_STDERR_TAIL == PROC_STDERR_TAIL, "a failure quotes the stderr proc keeps");

enum job_state { JOB_FREE, JOB_WAITING, JOB_RUNNING, JOB_DONE };

/* One task held: claimed, maybe running, maybe done and waiting for its commit. */
struct job {
	struct worker *w;
	enum job_state state;
	struct ops_task task;		/* as claimed */
	int64_t lease_until;		/* as last written */
	struct proc proc;		/* its command; proc.status -1: it could not start */
	int stopped;			/* it ended after a stop: released unless it exited 0 */
	int abandoned;			/* the task is no longer ours: its result is dropped */
	int said;			/* why stdout is not the details was logged */
	char *details;			/* the change's strings, kept until the commit */
	size_t details_len;
	char message[WORK_STDERR_TAIL + 128];
	char env[4][TASK_INDEX_MAX + 32];
};

struct worker {
	store *s;
	const struct work_options *o;
	struct work_stats *st;
	event_loop *el;
	struct job *jobs;		/* cap slots */
	size_t cap, held, running;
	struct ops_change *changes;	/* cap each: one step's changes ... */
	int *rcs;
	struct ops_change_result *results;
	size_t *of;			/* ... and the job each is about */
	struct ops_task *claimed;	/* batch */
	struct ops_change claim;
	char env_db[4096];
	int sigfd, stopping, flush_due, empty, rc;
	int pidfds;			/* the kernel has pidfd_open(); else SIGCHLD */
	uint64_t lease_timer;		/* wakes an idle worker as the first lease ends */
	int lease_armed;
	uint64_t delay_timer;		/* ... and as the first delayed task comes due */
	int delay_armed;
};

static void flush_soon(struct worker *w);
static void stop(struct worker *w);
static int any_waiting(const struct worker *w);
static void start_waiting(struct worker *w);
static void look(struct worker *w);

/* Lines are cut at 511 bytes: they name a task and a reason. */
__attribute__((format(printf, 2, 3)))
static void
say(const struct worker *w, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (w->o->log == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	w->o->log(line);
}

/* ---- the commands ---- */

/* Nothing is left open or allocated; the slot is zeroed for the next task. */
static void
job_free(struct job *j)
{
	struct worker *w = j->w;

	proc_free(&j->proc);
	ops_task_free(&j->task);
	free(j->details);
	memset(j, 0, sizeof(*j));
	j->w = w;
	proc_init(&j->proc);
	w->held--;
}

/* j's command exited (its status in j->proc.status): its task waits for the commit. */
static void
job_exited(struct proc *p, void *ctx)
{
	struct job *j = ctx;
	struct worker *w = j->w;

	(void)p;
	j->stopped = w->stopping > 0;
	j->state = JOB_DONE;
	w->running--;
	if (j->abandoned) {
		/* Its slot is free: the next task may start, and a worker left with nothing
		 * may end (--exit-when-empty) at the commit that follows. */
		job_free(j);
		if (!w->stopping)
			start_waiting(w);
		flush_soon(w);
		return;
	}
	if (!w->stopping)
		start_waiting(w);
	/* Results wait while no slot is free for a claim: they share the commit that claims
	 * (or the next heartbeat's). */
	if (w->stopping || (w->running < w->o->concurrency && !any_waiting(w)))
		flush_soon(w);
}

/* Without pidfds a SIGCHLD says that some command ended: each running one is asked. */
static void
reap_children(struct worker *w)
{
	for (size_t i = 0; i < w->cap; i++)
		if (w->jobs[i].state == JOB_RUNNING)
			proc_reap(&w->jobs[i].proc);
}

/* Runs j's command: the task's JSON and a newline on its stdin; the task's uid, index,
 * type and startedAt and the store in its environment (a plain `lmtasks heartbeat
 * "$LMTASKS_TASK_UID" --progress ...` from the command reports on this claim). */
static int
job_start(struct worker *w, struct job *j)
{
	const struct task *t = &j->task.t;
	const char *env[] = { j->env[0], j->env[1], j->env[2], j->env[3], w->env_db, NULL };
	char started[TIMEFMT_BUFSZ];
	struct proc_spec spec = { .path = w->o->path, .argv = w->o->argv, .env = env,
	    .output_max = WORK_OUTPUT_MAX, .pidfd = w->pidfds };
	struct printbuf *pb = printbuf_new();
	int rc;

	if (pb == NULL)
		return ENOMEM;
	if ((rc = render_task_as(pb, t, w->o->v1)) != 0 ||
	    printbuf_memappend(pb, "\n", 1) < 0 || (spec.input = strdup(pb->buf)) == NULL) {
		printbuf_free(pb);
		return rc ? rc : ENOMEM;
	}
	spec.inlen = (size_t)pb->bpos;
	printbuf_free(pb);
	snprintf(j->env[0], sizeof(j->env[0]), "LMTASKS_TASK_UID=%" PRIu64, t->uid);
	snprintf(j->env[1], sizeof(j->env[1]), "LMTASKS_TASK_INDEX=%.*s", (int)t->index_uid.len,
	    t->index_uid.ptr ? t->index_uid.ptr : "");
	snprintf(j->env[2], sizeof(j->env[2]), "LMTASKS_TASK_TYPE=%.*s", (int)t->type.len,
	    t->type.ptr);
	timefmt_rfc3339(t->started_at, started);
	snprintf(j->env[3], sizeof(j->env[3]), "LMTASKS_TASK_STARTED_AT=%s", started);
	if ((rc = proc_start(&j->proc, w->el, &spec, job_exited, j)) == 0) {
		j->state = JOB_RUNNING;
		w->running++;
	}
	return rc;
}

/* A task whose command cannot start goes back to the queue, and the worker stops. */
static void
start_waiting(struct worker *w)
{
	for (size_t i = 0; i < w->cap && w->running < w->o->concurrency; i++) {
		struct job *j = &w->jobs[i];
		if (j->state != JOB_WAITING)
			continue;
		int rc = job_start(w, j);
		if (rc == 0)
			continue;
		/* The task goes back to the queue at the next commit, and the worker stops:
		 * a command that cannot start would only hand every task back. */
		say(w, "task %" PRIu64 ": the command could not be started: %s", j->task.t.uid,
		    strerror(rc));
		j->state = JOB_DONE;
		j->stopped = 1;
		j->proc.status = -1;
		if (w->rc == 0)
			w->rc = rc;
		/* One stop (a second would escalate to SIGKILL); the other tasks waiting go
		 * back with it. */
		if (!w->stopping)
			stop(w);
		break;
	}
	/* With a batch larger than the slots, the next one is claimed as the last task waiting
	 * starts: its commit overlaps the commands that run. */
	if (!w->stopping && w->o->batch > w->o->concurrency && !any_waiting(w))
		flush_soon(w);
}

/* ---- the commits ---- */

/* j's change: its outcome (exit 0: succeeded, stdout as details when it is a JSON
 * object; else failed), or back to the queue when a stop ended it. */
static void
outcome(struct job *j, struct ops_change *ch)
{
	const char *why;
	size_t len;

	*ch = (struct ops_change){ .uid = j->task.t.uid, .started_at = j->task.t.started_at };
	if (j->proc.status != -1 && !j->proc.status_unknown && WIFEXITED(j->proc.status) &&
	    WEXITSTATUS(j->proc.status) == 0) {
		ch->kind = OPS_SUCCEED;
		if (j->proc.output_over)
			why = "over 1 MiB";
		else if (j->details == NULL && details_normalize(j->proc.output ?
		    j->proc.output : "", j->proc.outlen, &j->details, &len, &why) == 0)
			j->details_len = len;
		if (j->details == NULL && !j->said && (j->proc.outlen > 0 || j->proc.output_over))
			say(j->w, "task %" PRIu64 ": its stdout is not taken as details: %s",
			    j->task.t.uid, why);
		j->said = 1;	/* once, though the commit may be tried again */
		ch->details = j->details;
		ch->details_len = j->details_len;
	} else if (j->stopped || j->proc.status == -1) {
		ch->kind = OPS_RELEASE;
	} else {
		ch->kind = OPS_FAIL;
		ch->code = WORK_ERROR_CODE;
		ch->etype = TASK_ERR_INTERNAL;
		work_fail_message(&j->proc, j->message, sizeof(j->message));
		ch->message = j->message;
	}
}

/* The step's changes: every result, the releases of a stop, the heartbeats due. */
static size_t
gather(struct worker *w)
{
	int64_t now = clock_now(), renew = w->o->lease - w->o->lease / 3;
	size_t n = 0;

	for (size_t i = 0; i < w->cap; i++) {
		struct job *j = &w->jobs[i];
		struct ops_change *ch = &w->changes[n];
		if (j->state == JOB_DONE) {
			outcome(j, ch);
		} else if (j->state == JOB_WAITING && w->stopping) {
			*ch = (struct ops_change){ .kind = OPS_RELEASE, .uid = j->task.t.uid,
			    .started_at = j->task.t.started_at };
		} else if (j->state != JOB_FREE && !j->abandoned && j->lease_until - now <= renew) {
			*ch = (struct ops_change){ .kind = OPS_HEARTBEAT, .uid = j->task.t.uid,
			    .started_at = j->task.t.started_at, .lease = w->o->lease };
		} else {
			continue;
		}
		w->of[n++] = i;
	}
	return n;
}

/* The task is no longer this worker's: its command is killed, its result dropped. */
static void
drop(struct worker *w, struct job *j)
{
	w->st->lost++;
	j->abandoned = 1;
	if (j->state == JOB_RUNNING)
		proc_signal(&j->proc, SIGKILL);
	else
		job_free(j);
}

/* An error of one record (undecodable, or a change it cannot take), not of the store. */
static int
record_error(int rc)
{
	return rc == LMT_ECORRUPT || rc == LMT_EINVAL || rc == LMT_ETOOBIG;
}

/* Change i's answer: a finished or released task leaves, a refused heartbeat means the
 * task is no longer this worker's (its command is killed, its result dropped). */
static void
settle(struct worker *w, size_t i)
{
	struct job *j = &w->jobs[w->of[i]];
	enum ops_change_kind kind = w->changes[i].kind;
	int rc = w->rcs[i];

	if (kind == OPS_HEARTBEAT && rc == 0) {
		j->lease_until = w->results[i].out.t.lease_until;
	} else if (kind == OPS_HEARTBEAT) {
		say(w, "task %" PRIu64 ": its heartbeat was refused (%s): %s; its command "
		    "is stopped and its result will not be recorded", j->task.t.uid,
		    lmt_strerror(rc), work_gone_why(rc));
		drop(w, j);
	} else {
		if (rc != 0) {
			say(w, "task %" PRIu64 ": its result was refused (%s): %s",
			    j->task.t.uid, lmt_strerror(rc), work_gone_why(rc));
			w->st->lost++;
		} else {
			const struct task *t = &w->results[i].out.t;
			int back = kind == OPS_FAIL && t->status == TASK_ENQUEUED;
			if (back) {
				char when[TIMEFMT_BUFSZ];
				timefmt_rfc3339(t->not_before, when);
				say(w, "task %" PRIu64 ": attempt %u of %u failed; it is tried again "
				    "from %s", t->uid, t->attempts, t->max_attempts, when);
			}
			w->st->succeeded += kind == OPS_SUCCEED;
			w->st->failed += kind == OPS_FAIL && !back;
			w->st->retried += back;
			w->st->released += kind == OPS_RELEASE;
		}
		job_free(j);
	}
	ops_task_free(&w->results[i].out);
}

/* After a step that failed for a record's sake (not the disk's): each change alone, so
 * that one task whose record cannot be written does not hold the others back; that task
 * is dropped (counted lost).  Returns 0 when every change was settled, or the error that
 * stopped it (the changes not settled go again with the next step). */
static int
isolate(struct worker *w, size_t n)
{
	struct ops_step none = { w->changes, 0, w->rcs, w->results, NULL, 0, NULL, 0 };
	int dropped = 0, rc;

	if ((rc = ops_step(w->s, &none)) != 0)
		return rc;	/* the lease rule's own reads fail: no one task's fault */
	for (size_t i = 0; i < n; i++) {
		struct job *j = &w->jobs[w->of[i]];
		struct ops_step one = { &w->changes[i], 1, &w->rcs[i], &w->results[i], NULL, 0,
		    NULL, 0 };
		if ((rc = ops_step(w->s, &one)) == 0) {
			settle(w, i);
			continue;
		}
		if (!record_error(rc))
			return rc;
		say(w, "task %" PRIu64 ": its change could not be written (%s): it is dropped, "
		    "its command stopped; `lmtasks check` says more", j->task.t.uid,
		    lmt_strerror(rc));
		drop(w, j);
		dropped = 1;
	}
	return dropped ? 0 : LMT_ECORRUPT;	/* each change went through: the claim failed */
}

/* The claimed tasks join the jobs as waiting, then start as slots allow. */
static void
adopt(struct worker *w, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < w->cap && k < n; i++) {
		struct job *j = &w->jobs[i];
		if (j->state != JOB_FREE)
			continue;
		j->task = w->claimed[k];
		memset(&w->claimed[k++], 0, sizeof(w->claimed[0]));
		j->lease_until = j->task.t.lease_until;
		j->state = JOB_WAITING;
		w->held++;
	}
	start_waiting(w);
}

/* A linear look: the slots are the concurrency plus a batch. */
static int
any_waiting(const struct worker *w)
{
	for (size_t i = 0; i < w->cap; i++)
		if (w->jobs[i].state == JOB_WAITING)
			return 1;
	return 0;
}

/* After a failed commit: the same commit again. */
static int64_t
retry(event_loop *el, void *ctx)
{
	(void)el;
	flush_soon(ctx);
	return EVENT_NOMORE;
}

/* One commit: the results, releases and heartbeats due, and a claim when there is room. */
static void
flush(struct worker *w)
{
	size_t n = gather(w);
	int claim = !w->stopping && !w->empty && !any_waiting(w) &&
	    (w->running < w->o->concurrency || w->o->batch > w->o->concurrency);
	struct ops_step st = { w->changes, n, w->rcs, w->results, claim ? &w->claim : NULL,
	    w->o->batch, w->claimed, 0 };
	int rc;

	if (n == 0 && !claim)
		goto done;
	if ((rc = ops_step(w->s, &st)) != 0 && record_error(rc) && n > 0 &&
	    (rc = isolate(w, n)) == 0) {
		flush_soon(w);	/* the claim, without the changes that failed */
		goto done;
	}
	if (rc != 0) {
		/* A full disk may clear; a store replaced, damaged or gone will not, nor a
		 * record that cannot be read. */
		int lasting = rc == LMT_EREPLACED || rc == LMT_EDAMAGED || rc == LMT_ESCHEMA ||
		    rc == LMT_ENOSTORE || record_error(rc);
		say(w, "writing the store: %s%s", lmt_strerror(rc), lasting ? "" :
		    "; trying again in a second");
		if (lasting || w->stopping > 1 ||
		    event_timer_add(w->el, RETRY_US, retry, w, NULL) != 0) {
			w->rc = rc;	/* the held tasks come back when their leases end */
			event_stop(w->el);
		}
		return;
	}
	for (size_t i = 0; i < n; i++)
		settle(w, i);
	if (claim && st.nclaimed == 0)
		w->empty = 1;	/* until the store says otherwise */
	adopt(w, st.nclaimed);
done:
	if (w->held == 0 && (w->stopping || (w->o->exit_when_empty && w->empty)))
		event_stop(w->el);
}

/* The timer flush_soon() set. */
static int64_t
flush_now(event_loop *el, void *ctx)
{
	struct worker *w = ctx;

	(void)el;
	w->flush_due = 0;
	flush(w);
	return EVENT_NOMORE;
}

/* A timer of 0 µs runs at the next turn, after the descriptors ready then. */
static void
flush_soon(struct worker *w)
{
	if (w->flush_due)
		return;
	if (event_timer_add(w->el, 0, flush_now, w, NULL) == 0)
		w->flush_due = 1;
}

/* ---- stops, new tasks, heartbeats ---- */

/* A stop: no more claims; the running commands get SIGTERM (a second stop: SIGKILL), the
 * tasks waiting for a slot go back to the queue at the next commit. */
static void
stop(struct worker *w)
{
	w->stopping++;
	for (size_t i = 0; i < w->cap; i++)
		if (w->jobs[i].state == JOB_RUNNING)
			proc_signal(&w->jobs[i].proc, w->stopping > 1 ? SIGKILL : SIGTERM);
	if (w->held == 0)
		event_stop(w->el);
	else
		flush_soon(w);
}

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
		say(w, "%s: %s", strsignal((int)si.ssi_signo), w->stopping ? "killing the commands" :
		    "stopping: the running commands get SIGTERM, the other tasks go back to the queue");
		stop(w);
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
	if (w->running >= w->o->concurrency || any_waiting(w)) {
		w->empty = 0;	/* the claim that follows a free slot looks again */
		return;
	}
	/* Delayed or prioritised tasks another process wrote first: their databases opened. */
	if (store_sched_refresh(w->s) != 0 || store_read_follow(w->s, &txn) != 0) {
		flush_soon(w);	/* the claim will say what is wrong */
		return;
	}
	if (store_find_enqueued(w->s, txn, w->claim.claim_index, w->claim.claim_type,
	    &uid) == 0 || lease_watch(w, txn) || delay_watch(w, txn)) {
		w->empty = 0;
		flush_soon(w);
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
		flush_soon(w);
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
		if (j->state != JOB_FREE)
			job_free(j);	/* a command still running is killed and waited for */
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
	flush_soon(w);	/* the first claim */
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
