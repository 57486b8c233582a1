/* Task batches: the set of tasks one command moved out of `enqueued` together, with the
 * stats Meilisearch v1 shows for a batch; their record bytes and how a task's move
 * changes them.  No LMDB, no JSON parsing. */
#ifndef LMTASKS_TBATCH_H
#define LMTASKS_TBATCH_H

#include <stddef.h>
#include <stdint.h>

#include "lmtasks/task.h"

#define TBATCH_VERSION 2	/* 1: lmtasks 0.2.0's, without `kept` (still read) */
#define TBATCH_NAMES_MAX 4096	/* distinct types or indexes counted in one batch */

/* A name (a type or an index uid) and how many of the batch's tasks have it. */
struct tbatch_count {
	struct task_str name;
	uint32_t n;
};

/*
 * One batch.  Decoded, its strings point into the record (they live as long as it does);
 * types and indexes are arrays the caller gives (TBATCH_NAMES_MAX entries each), sorted
 * by name.
 */
struct tbatch {
	uint64_t uid;
	int64_t started_at;		/* µs */
	int64_t finished_at;		/* 0 until none of its tasks is enqueued or processing */
	int64_t enqueued_min, enqueued_max;	/* its tasks' enqueuedAt, oldest and newest */
	uint64_t first_uid, last_uid;	/* its tasks' uids lie in [first_uid, last_uid] */
	uint64_t canceled_by;		/* its taskCancelation's uid, or TASK_NO_UID */
	uint32_t total;			/* totalNbTasks */
	uint32_t kept;			/* of those, the tasks still stored (not deleted) */
	uint32_t status[TASK_NSTATUS];
	size_t ntypes, nindexes;
	struct tbatch_count *types, *indexes;
	struct task_str details;	/* a JSON object's text */
	struct task_str strategy;	/* batchStrategy, as Meilisearch words it */
};

/* Makes b an empty batch started at `started` (the arrays stay the caller's). */
void tbatch_init(struct tbatch *b, uint64_t uid, int64_t started, struct tbatch_count *types,
    struct tbatch_count *indexes);

/* Counts t (as it is now) in b.  Returns 0, or LMT_EINVAL past TBATCH_NAMES_MAX names. */
int tbatch_add(struct tbatch *b, const struct task *t);

/* Uncounts t (as it was) from b: a task that went back to the queue leaves its batch. */
void tbatch_remove(struct tbatch *b, const struct task *t);

/* A version-1 record does not say how many of its tasks are still stored. */
#define TBATCH_KEPT_UNKNOWN UINT32_MAX

/*
 * n of b's tasks were deleted: b's stats stay as they were (Meilisearch keeps a batch's
 * stats when some of its tasks are deleted), its kept count goes down.  Returns 1 when no
 * task of b is left (the batch is to be deleted too), 0 when some are, LMT_EINVAL when b's
 * record did not say (TBATCH_KEPT_UNKNOWN).
 */
int tbatch_forget(struct tbatch *b, uint32_t n);

/* A task of b moved from one status to another at `now`: its counts, and its end when it
 * was the last one enqueued or processing. */
void tbatch_move(struct tbatch *b, enum task_status from, enum task_status to, int64_t now);

/* Sets finished_at when none of b's tasks is enqueued or processing. */
void tbatch_settle(struct tbatch *b, int64_t now);

/*
 * A processing batch's progress in Meilisearch v1's shape: the outer step "processing
 * tasks" (the batch's tasks finished, of all of them), then the step the first of its
 * processing tasks that reports progress is at (by uid).  Its percentage counts each
 * finished task whole and each processing task by the share its worker reported, so that
 * with one task reporting it is Meilisearch's nested percentage.
 */
struct tbatch_progress {
	uint32_t finished, total;	/* the batch's tasks not processing any more; all */
	uint64_t reported;		/* the processing tasks' reported shares, in millionths
					 * of a task */
	int has_step;			/* a processing task reported a step: */
	struct task_str step;		/* its name (borrowed: the task's record's) */
	uint32_t step_done, step_total;
};

/* Starts p for b: its finished tasks counted, nothing reported yet. */
void tbatch_progress_init(struct tbatch_progress *p, const struct tbatch *b);

/* Counts t, one of the batch's processing tasks (visited in uid order), in p. */
void tbatch_progress_add(struct tbatch_progress *p, const struct task *t);

/* The percentage p stands at, in tenths (0 to 1000). */
uint32_t tbatch_progress_tenths(const struct tbatch_progress *p);

/* The number of bytes tbatch_encode() writes. */
size_t tbatch_size(const struct tbatch *b);

/* Writes b's record into buf (tbatch_size(b) bytes); returns the length.  A batch whose
 * kept count is TBATCH_KEPT_UNKNOWN is written as version 1, as it was read. */
size_t tbatch_encode(const struct tbatch *b, void *buf);

/* Decodes a record into b (uid left alone) with the caller's arrays; 0 or LMT_ECORRUPT. */
int tbatch_decode(const void *buf, size_t len, struct tbatch *b, struct tbatch_count *types,
    struct tbatch_count *indexes);

#endif
