/* A long-lived worker (lmtasks work): it claims tasks, runs a command once per task with
 * the task's JSON on its standard input, keeps the tasks' leases while the commands run,
 * and records each outcome, on one event loop (event.h): the commands' exits (pidfds, or
 * SIGCHLD through a signalfd where there are none) and pipes are descriptors, heartbeats
 * a timer, new tasks the store's change watch.  Its writes go
 * through ops_step(): the results of several tasks and the next claim in one commit.  In
 * the write library. */
#ifndef LMTASKS_WORK_H
#define LMTASKS_WORK_H

#include <stddef.h>
#include <stdint.h>

#include "lmtasks/store.h"
#include "lmtasks/task.h"

#define WORK_CONCURRENCY_MAX 1024
#define WORK_OUTPUT_MAX (1u << 20)	/* stdout beyond this is not taken as details */
#define WORK_ERROR_CODE "work_command_failed"

/* What to run and how (lmtasks work's options). */
struct work_options {
	struct task_str index, type;	/* claim filters; ptr NULL: any */
	size_t batch;			/* tasks claimed in one transaction: 1 to OPS_CLAIM_MAX;
					 * above concurrency, the next batch is claimed as the
					 * last one waiting starts */
	size_t concurrency;		/* commands at once: 1 to WORK_CONCURRENCY_MAX */
	int64_t lease;			/* µs; renewed every third of it while a task is held */
	int exit_when_empty;		/* return once nothing matches and nothing runs */
	int v1;				/* the task on stdin in Meilisearch v1's layout */
	const char *db;			/* the store's path: watched, and the commands' LMTASKS_DB */
	char *const *argv;		/* the command and its arguments, NULL-terminated */
	const char *path;		/* the file to run; NULL: argv[0] looked up in PATH */
	void (*log)(const char *line);	/* one line per event worth a person's eye; may be NULL */
};

/* What a run did. */
struct work_stats {
	uint64_t succeeded, failed;	/* results recorded (failed: for good) */
	uint64_t retried;		/* failed attempts their retry policy put back */
	uint64_t released;		/* handed back to the queue by a stop */
	uint64_t lost;			/* taken from this worker: its lease ended first */
};

/*
 * Runs the worker on s until SIGTERM or SIGINT (handled here while it runs) or, with
 * exit_when_empty, until no task matches and none is held.  A stop sends SIGTERM to the
 * running commands' process groups (a second stop: SIGKILL) and waits for them: a
 * command that exits 0 succeeds its task, any other end releases it to the queue, and the
 * tasks claimed but not started are released.  Returns 0, or a store error or errno
 * (the tasks held then come back when their leases end).
 */
int work_run(store *s, const struct work_options *o, struct work_stats *st);

#endif
