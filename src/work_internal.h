/* What the files of the work module share (work.c: the commits and the loop; work_proc.c:
 * the commands' processes and pipes); not part of the API. */
#ifndef LMTASKS_WORK_INTERNAL_H
#define LMTASKS_WORK_INTERNAL_H

#include <sys/types.h>

#include "lmtasks/event.h"
#include "lmtasks/ops.h"
#include "lmtasks/work.h"

enum job_state { JOB_FREE, JOB_WAITING, JOB_RUNNING, JOB_DONE };

/* One task held: claimed, maybe running, maybe done and waiting for its commit. */
struct job {
	struct worker *w;
	enum job_state state;
	struct ops_task task;		/* as claimed */
	int64_t lease_until;		/* as last written */
	pid_t pid;
	int pidfd, in, out, err;	/* -1: closed */
	char *input;			/* the task's JSON and a newline, for stdin */
	size_t inlen, inoff;
	char *output;			/* stdout, up to WORK_OUTPUT_MAX */
	size_t outlen, outcap;
	int output_over;
	char tail[WORK_STDERR_TAIL];	/* stderr's last bytes, a ring */
	size_t tailn;			/* bytes ever written to it */
	int status;			/* waitpid()'s */
	int stopped;			/* it ended after a stop: released unless it exited 0 */
	int abandoned;			/* the task is no longer ours: its result is dropped */
	char *details;			/* the change's strings, kept until the commit */
	size_t details_len;
	char message[WORK_STDERR_TAIL + 128];
	char env[3][TASK_INDEX_MAX + 32];
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
};

/* ---- work.c ---- */

/* Says one line through the caller's log. */
__attribute__((format(printf, 2, 3)))
void work_say(const struct worker *w, const char *fmt, ...);

/* Commits at the next turn of the loop: this turn's exits and output share the commit. */
void work_flush_soon(struct worker *w);

/* A stop (SIGTERM, SIGINT, or a command that cannot start): see work_run(). */
void work_stop(struct worker *w);

/* Whether some held task waits for a slot. */
int work_any_waiting(const struct worker *w);

/* ---- work_proc.c ---- */

/* Removes fd from the loop and closes it; -1 is left in *fd. */
void work_close_fd(struct worker *w, int *fd);

/* Lets j's slot go: what the job held is freed. */
void work_job_free(struct job *j);

/* Fills the free slots with the tasks waiting for one, oldest first. */
void work_start_waiting(struct worker *w);

/* Where there are no pidfds: a SIGCHLD came; each running command is waited for. */
void work_reap_children(struct worker *w);

#endif
