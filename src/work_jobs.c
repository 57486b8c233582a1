/* lmtasks work's tasks held: their commands (started as slots allow, through proc.h, which
 * knows nothing of tasks: their exits come back here), stops, and their commits: what
 * each task's change is (its outcome, a release, a heartbeat), one ops_step() for them
 * and the next claim, what each answer means for the task, and when the next commit runs
 * (work_flush_soon()).  Commands and commits call each other, so they live together. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <json-c/printbuf.h>

#include "lmtasks/clock.h"
#include "lmtasks/details.h"
#include "lmtasks/error.h"
#include "lmtasks/event.h"
#include "lmtasks/ops.h"
#include "lmtasks/proc.h"
#include "lmtasks/render.h"
#include "lmtasks/timefmt.h"
#include "lmtasks/work.h"
#include "work_fail.h"
#include "work_internal.h"

#define RETRY_US 1000000	/* a commit that failed is tried again after this */

/* ---- the commands ---- */

/* Lines are cut at 511 bytes: they name a task and a reason. */
__attribute__((format(printf, 2, 3)))
void
work_say(const struct worker *w, const char *fmt, ...)
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

/* Nothing is left open or allocated; the slot is zeroed for the next task. */
void
work_job_free(struct job *j)
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
		work_job_free(j);
		if (!w->stopping)
			work_start_waiting(w);
		work_flush_soon(w);
		return;
	}
	if (!w->stopping)
		work_start_waiting(w);
	/* Results wait while no slot is free for a claim: they share the commit that claims
	 * (or the next heartbeat's). */
	if (w->stopping || (w->running < w->o->concurrency && !work_any_waiting(w)))
		work_flush_soon(w);
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
void
work_start_waiting(struct worker *w)
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
		work_say(w, "task %" PRIu64 ": the command could not be started: %s", j->task.t.uid,
		    strerror(rc));
		j->state = JOB_DONE;
		j->stopped = 1;
		j->proc.status = -1;
		if (w->rc == 0)
			w->rc = rc;
		/* One stop (a second would escalate to SIGKILL); the other tasks waiting go
		 * back with it. */
		if (!w->stopping)
			work_stop(w);
		break;
	}
	/* With a batch larger than the slots, the next one is claimed as the last task waiting
	 * starts: its commit overlaps the commands that run. */
	if (!w->stopping && w->o->batch > w->o->concurrency && !work_any_waiting(w))
		work_flush_soon(w);
}

/* A stop: no more claims; the running commands get SIGTERM (a second stop: SIGKILL), the
 * tasks waiting for a slot go back to the queue at the next commit. */
void
work_stop(struct worker *w)
{
	w->stopping++;
	for (size_t i = 0; i < w->cap; i++)
		if (w->jobs[i].state == JOB_RUNNING)
			proc_signal(&w->jobs[i].proc, w->stopping > 1 ? SIGKILL : SIGTERM);
	if (w->held == 0)
		event_stop(w->el);
	else
		work_flush_soon(w);
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
			work_say(j->w, "task %" PRIu64 ": its stdout is not taken as details: %s",
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
		work_job_free(j);
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
		work_say(w, "task %" PRIu64 ": its heartbeat was refused (%s): %s; its command "
		    "is stopped and its result will not be recorded", j->task.t.uid,
		    lmt_strerror(rc), work_gone_why(rc));
		drop(w, j);
	} else {
		if (rc != 0) {
			work_say(w, "task %" PRIu64 ": its result was refused (%s): %s",
			    j->task.t.uid, lmt_strerror(rc), work_gone_why(rc));
			w->st->lost++;
		} else {
			const struct task *t = &w->results[i].out.t;
			int back = kind == OPS_FAIL && t->status == TASK_ENQUEUED;
			if (back) {
				char when[TIMEFMT_BUFSZ];
				timefmt_rfc3339(t->not_before, when);
				work_say(w, "task %" PRIu64 ": attempt %u of %u failed; it is tried again "
				    "from %s", t->uid, t->attempts, t->max_attempts, when);
			}
			w->st->succeeded += kind == OPS_SUCCEED;
			w->st->failed += kind == OPS_FAIL && !back;
			w->st->retried += back;
			w->st->released += kind == OPS_RELEASE;
		}
		work_job_free(j);
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
		work_say(w, "task %" PRIu64 ": its change could not be written (%s): it is "
		    "dropped, its command stopped; `lmtasks check` says more", j->task.t.uid,
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
	work_start_waiting(w);
}

/* A linear look: the slots are the concurrency plus a batch. */
int
work_any_waiting(const struct worker *w)
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
	work_flush_soon(ctx);
	return EVENT_NOMORE;
}

/* One commit: the results, releases and heartbeats due, and a claim when there is room. */
static void
flush(struct worker *w)
{
	size_t n = gather(w);
	int claim = !w->stopping && !w->empty && !work_any_waiting(w) &&
	    (w->running < w->o->concurrency || w->o->batch > w->o->concurrency);
	struct ops_step st = { w->changes, n, w->rcs, w->results, claim ? &w->claim : NULL,
	    w->o->batch, w->claimed, 0 };
	int rc;

	if (n == 0 && !claim)
		goto done;
	if ((rc = ops_step(w->s, &st)) != 0 && record_error(rc) && n > 0 &&
	    (rc = isolate(w, n)) == 0) {
		work_flush_soon(w);	/* the claim, without the changes that failed */
		goto done;
	}
	if (rc != 0) {
		/* A full disk may clear; a store replaced, damaged or gone will not, nor a
		 * record that cannot be read. */
		int lasting = rc == LMT_EREPLACED || rc == LMT_EDAMAGED || rc == LMT_ESCHEMA ||
		    rc == LMT_ENOSTORE || record_error(rc);
		work_say(w, "writing the store: %s%s", lmt_strerror(rc), lasting ? "" :
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

/* The timer work_flush_soon() set. */
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
void
work_flush_soon(struct worker *w)
{
	if (w->flush_due)
		return;
	if (event_timer_add(w->el, 0, flush_now, w, NULL) == 0)
		w->flush_due = 1;
}
