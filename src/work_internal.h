/* What work_loop.c and work_jobs.c share: the tasks a worker holds, the worker, and the
 * functions each calls of the other.  Private to lmtasks work (work.h is its API). */
#ifndef LMTASKS_WORK_INTERNAL_H
#define LMTASKS_WORK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "lmtasks/event.h"
#include "lmtasks/ops.h"
#include "lmtasks/proc.h"
#include "lmtasks/work.h"
#include "work_fail.h"

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

/* ---- work_jobs.c: the commands ---- */

/* One line to the run's log (o->log), if it has one; cut at 511 bytes. */
__attribute__((format(printf, 2, 3)))
void work_say(const struct worker *w, const char *fmt, ...);

/* Ends j's command and frees what j holds; the slot is zeroed for the next task. */
void work_job_free(struct job *j);

/* Starts the waiting tasks' commands as slots allow; one that cannot start stops the worker. */
void work_start_waiting(struct worker *w);

/* A stop: no more claims; the running commands get SIGTERM (a second stop: SIGKILL), the
 * tasks waiting for a slot go back to the queue at the next commit. */
void work_stop(struct worker *w);

/* ---- work_jobs.c: the commits ---- */

/* A commit at the next turn of the loop, after the descriptors ready then (once). */
void work_flush_soon(struct worker *w);

/* 1 when a claimed task waits for a slot. */
int work_any_waiting(const struct worker *w);

#endif
