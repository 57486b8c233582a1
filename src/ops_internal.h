/*
 * What the ops_*.c files share; not part of the API.  The files form a tree that only
 * points down: ops_task.c, ops_retry.c, ops_admin.c, ops_restore.c and ops_webhook.c (the
 * operations of ops.h) over ops_core.c (the write wrapper, task copies, the record task) over
 * ops_batch.c (batch records), with ops_uids.c (ops_uids.h) under all of them.
 */
#ifndef LMTASKS_OPS_INTERNAL_H
#define LMTASKS_OPS_INTERNAL_H

#include "lmtasks/ops.h"
#include "lmtasks/tbatch.h"
#include "ops_uids.h"

/* ---- ops_batch.c ---- */

/* A batch being made in a write transaction: the tasks one command moves out of
 * `enqueued` together (tbatch.h). */
struct ops_batch {
	struct tbatch b;
	struct tbatch_count *names;	/* types, then indexes: 2 * TBATCH_NAMES_MAX */
	char strategy[160];
};

/* Allocates the next batch uid and starts an empty batch at now; freed by
 * ops_batch_put() or ops_batch_free(). */
int ops_batch_begin(store *s, MDB_txn *txn, int64_t now, struct ops_batch *ob);

/* Puts t (as it will be stored) in ob, setting its batch uid. */
int ops_batch_add(struct ops_batch *ob, struct task *t);

/* Stores ob with batchStrategy strategy (NULL: as set) and frees it. */
int ops_batch_put(store *s, MDB_txn *txn, struct ops_batch *ob, const char *strategy);

/* Frees what ob holds; a zeroed one is fine. */
void ops_batch_free(struct ops_batch *ob);

/* old (as read) becomes next at now: its batch's counts follow.  A task going back to the
 * queue (next's batch uid is cleared) leaves its batch as if never in it, unless its
 * attempt there failed (failed_attempt: a retry's; or old failed, for lmtasks retry): then
 * the batch keeps it counted as failed, and stays even when it holds no task any more.
 * No batch: nothing to do. */
int ops_batch_moved(store *s, MDB_txn *txn, const struct task *old, struct task *next,
    int64_t now, int failed_attempt);

/*
 * Deleted tasks leave their batches: each of the n batch uids (one per task deleted,
 * repeated as often as the batch lost a task; sorted here) counts one task fewer, and a
 * batch left with none is deleted, in txn.  A batch that has no record is passed over.
 */
int ops_batch_forget(store *s, MDB_txn *txn, uint64_t *batch_uids, size_t n);

/*
 * Batch records written by lmtasks 0.2.0 (version 1) do not count their stored tasks, and
 * 0.2.0 never deleted a batch: the first transaction that deletes tasks counts them once
 * (one walk of the tasks), deletes the batches left with no task (*dropped gets their
 * number) and rewrites the others as version 2; meta's OPS_BATCHES_KEPT then says it is
 * done.  Nothing to do once it is.
 */
#define OPS_BATCHES_KEPT "batches.kept"
int ops_batch_sweep(store *s, MDB_txn *txn, uint64_t *dropped);

/* ---- ops_task.c ---- */

/* ops_change()'s work inside the caller's write transaction; a refusal writes nothing. */
int ops_change_in(store *s, MDB_txn *txn, const struct ops_change *ch,
    struct ops_change_result *r);

/* ops_claim_batch()'s work inside the caller's write transaction (out already zeroed). */
int ops_claim_in(store *s, MDB_txn *txn, const struct ops_change *ch, size_t max,
    struct ops_task *out, size_t *n);

/* ---- ops_core.c ---- */

/* store_write() of fn after ending the expired leases in the same transaction (the lease
 * rule; when fn refuses, they end in a transaction of their own: ops_reap()), then the
 * reserve kept (ops_keep_reserve()). */
int ops_write(store *s, int (*fn)(store *s, MDB_txn *txn, void *ctx), void *ctx);

/* In a claim's transaction: every delayed task whose time came is promoted, so that the
 * claim never passes over a due task of a higher priority the rules left in delayed. */
int ops_promote_due(store *s, MDB_txn *txn, int64_t now);

/* 1 when t has a retry policy and attempts left: its failure puts it back in the queue. */
int ops_retry_left(const struct task *t);

/* The time a failed attempt of t (read in txn) is retried, at the earliest: now + its
 * backoff for that attempt (its own first delay, else the store's retryBackoff). */
int ops_retry_at(store *s, MDB_txn *txn, const struct task *t, int64_t now, int64_t *at);

/* Makes next (a processing or failed task) enqueued again: its start, finish and lease
 * cleared; the caller leaves its batch (ops_batch_moved()). */
void ops_requeue(struct task *next);

/* Keeps as much disk room for the store as its pages take (at least OPS_RESERVE_MIN): its
 * file's free pages, and blocks allocated past its end for the rest; *reserve (may be
 * NULL) gets that size. */
#define OPS_RESERVE_MIN (UINT64_C(1) << 20)
int ops_keep_reserve(store *s, uint64_t *reserve);

/*
 * Adds the store's own task of type (taskCancelation, taskDeletion) with details
 * {"matchedTasks":matched,"<what>":changed,"originalFilter":filter}, succeeded at now,
 * in ob (the batch of the tasks it canceled), and copies it into out.  ob is stored and
 * freed here; NULL: the task is a batch of its own, as in Meilisearch.
 */
int ops_record(store *s, MDB_txn *txn, const char *type, const char *what, uint64_t matched,
    uint64_t changed, const char *filter, int64_t now, struct ops_batch *ob,
    struct ops_task *out);

/* Removes the n tasks uids (read in txn), sweeping first, then their batches' share of
 * them (ops_batch_forget()); *removed counts the tasks removed.  LMT_ECORRUPT for a uid
 * that is not there. */
int ops_remove_tasks(store *s, MDB_txn *txn, const uint64_t *uids, size_t n, uint64_t *removed);

/* qsort/bsearch order of uint64_t (uids, batch uids): ascending. */
int ops_cmp_u64(const void *a, const void *b);

/* us after now, or the last time a record holds when that is later (a clock near the end
 * of time would otherwise write a lease or a backoff no read could decode). */
static inline int64_t
ops_time_after(int64_t now, int64_t us)
{
	return now > TASK_TIME_MAX - us ? TASK_TIME_MAX : now + us;
}

#endif
