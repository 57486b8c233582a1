/* The write operations: every change made to a store, each one write transaction, each
 * filling a result the caller renders.  In the write library (liblmtasks_write.a), linked
 * by the writers, lmtasks, lmtasks-writer and lmtasks-notify, never by lmtasks-fcgi. */
#ifndef LMTASKS_OPS_H
#define LMTASKS_OPS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lmtasks/auth.h"
#include "lmtasks/query.h"
#include "lmtasks/settings.h"
#include "lmtasks/store.h"
#include "lmtasks/task.h"
#include "lmtasks/webhook.h"

/*
 * Every operation returns 0, an LMDB code, an errno value (ENOSPC, EIO, ENOMEM, ...)
 * or an LMT_* code (lmt_strerror() explains each); on any nonzero result nothing was
 * written.  Before its own change each write of tasks, indexes, keys or settings ends the
 * leases that have expired and makes claimable the delayed tasks whose time came
 * (store_promote(), a bounded number a write; a claim makes every due one claimable
 * first), in the same transaction (or, when the operation refuses, in a
 * transaction of their own: see ops_reap()); the webhook operations and a restore do not.
 */

/* The due tasks the rules of one write promote at most: a million tasks of one time would
 * otherwise all move in the first write after it, a heartbeat's or a succeed's included
 * (one huge transaction, replayed as the map grows, a lease lost meanwhile). */
#define OPS_PROMOTE_MAX 1024

/* A task copied out of its transaction: t's strings point into buf (owned). */
struct ops_task {
	struct task t;
	char *buf;
};

/* Copies t (whose strings may live in a transaction) into ot, replacing what ot held;
 * 0 or ENOMEM. */
int ops_task_copy(struct ops_task *ot, const struct task *t);

/* Frees what an ops_task owns; a zeroed one is fine. */
void ops_task_free(struct ops_task *ot);

/* What an enqueue did besides adding, or why it refused. */
struct ops_enqueue_result {
	uint64_t live_bytes;		/* the store's pages after the enqueue (or before a refusal) */
	uint64_t max_bytes;		/* the store's maxBytes setting */
	uint64_t limit_bytes;		/* past this share of it new tasks are refused */
	uint64_t reserve_bytes;		/* the disk space kept free for finishing and deleting */
	uint64_t trimmed;		/* old finished tasks deleted for maxTasks */
	struct ops_task deletion;	/* the taskDeletion that records them (buf NULL: none) */
};

/*
 * Adds n new tasks (validated by the caller: task_*_valid, details a JSON object), all
 * with the same enqueuedAt, in one transaction; sets each task's uid and enqueued_at.
 * The tasks' strings must stay valid until it returns.  The store's limits apply:
 * past maxTasks the oldest finished tasks are deleted (down to SETTINGS_TRIM_PERCENT of
 * it), with the batches left with no task, in the same transaction and a taskDeletion
 * records it; past SETTINGS_ENQUEUE_PERCENT of maxBytes nothing is added and LMT_EFULL
 * returned; when the disk cannot hold the reserve (as much free space as the store's
 * pages), nothing is added and LMT_EDISKFULL returned.  r (may be NULL) says which; r->deletion is
 * freed with ops_task_free().
 */
int ops_enqueue(store *s, struct task *tasks, size_t n, struct ops_enqueue_result *r);

/* Sets one store setting (settings.h) and reads them all back into *out. */
int ops_config_set(store *s, enum setting_id id, uint64_t value, struct settings *out);

/* What ops_change() does to a task. */
enum ops_change_kind {
	OPS_START,	/* enqueued -> processing */
	OPS_CLAIM,	/* the oldest enqueued task matching index/type -> processing */
	OPS_HEARTBEAT,	/* a processing task's lease extended, its progress reported */
	OPS_SUCCEED,	/* processing -> succeeded, details merged */
	OPS_FAIL,	/* processing -> failed with an error object; a task with a retry
			 * policy and attempts left goes back to the queue instead (below) */
	OPS_RELEASE,	/* processing -> enqueued: handed back untouched (a worker stopping);
			 * the claim's attempt is given back */
};

/* A change of one task's status or lease; unused fields zero. */
struct ops_change {
	enum ops_change_kind kind;
	uint64_t uid;				/* every kind but OPS_CLAIM */
	struct task_str claim_index, claim_type; /* OPS_CLAIM filters; ptr NULL: any */
	int64_t lease;				/* µs; 0: none (heartbeat: the task's own) */
	uint32_t progress_done, progress_total;	/* OPS_HEARTBEAT: the worker's progress
						 * (task_progress_valid()); total 0: none */
	const char *step;			/* with progress: its step (step_len bytes);
						 * NULL: the step last reported stays */
	size_t step_len;
	int requeue;				/* an expired lease requeues instead of failing */
	int64_t started_at;			/* the claim being finished; 0: any */
	const char *details;			/* OPS_SUCCEED: normalised object text to merge */
	size_t details_len;
	const char *code, *message;		/* OPS_FAIL, validated by the caller */
	enum task_error_type etype;
	int final;				/* OPS_FAIL: failed for good, whatever
						 * attempts are left */
};

/* What became of the task; out.buf NULL unless the change was made. */
struct ops_change_result {
	uint64_t uid;			/* the task (for OPS_CLAIM: the one found) */
	enum task_status was;		/* its status before */
	struct ops_task out;		/* the task after the change */
};

/*
 * Retries.  A task enqueued with max_attempts N (1 to TASK_ATTEMPTS_MAX; the store's
 * maxAttempts setting for one that gives none; 0: no policy, as before) counts an attempt
 * at each start or claim.  OPS_FAIL while attempts < N puts it back in the queue: status
 * enqueued, its start, lease and batch cleared, the error kept as its last attempt's, and
 * not_before now + retry_backoff_us(backoff_ms, attempts) (backoff_ms 0: the store's
 * retryBackoff); the failure of attempt N is final.  An expired lease counts the same way
 * (ops_reap()).  A task with no policy is failed, or requeued, exactly as before.
 */

/*
 * Applies ch.  Returns 0; MDB_NOTFOUND when the task does not exist (OPS_CLAIM: no
 * enqueued task matches); LMT_ETRANSITION when its status does not allow the change;
 * LMT_ELEASE when its lease expired (r->was says whether it went back to the queue,
 * TASK_ENQUEUED, or failed); LMT_ECLAIMED when started_at no longer matches (claimed
 * again); LMT_ENOLEASE for a heartbeat with no lease to extend and no progress;
 * LMT_EINVAL for progress that task_progress_valid() refuses; LMT_ECORRUPT.
 * A task that leaves `processing` loses its progress.  A heartbeat is logged in the
 * change log (feed.h) only when its progress moved (task_progress_moved()): a lease
 * extended alone changes nothing a reader sees.  r->out is freed with ops_task_free().
 */
int ops_change(store *s, const struct ops_change *ch, struct ops_change_result *r);

/*
 * Claims up to max (at most OPS_CLAIM_MAX) of the enqueued tasks that share the priority,
 * index and type of the first one matching ch (an OPS_CLAIM: the oldest due task of the
 * highest priority), the oldest first, in one transaction and one batch; out (max entries, each freed with ops_task_free()) gets them in uid order, *n
 * their number.  Returns 0, MDB_NOTFOUND when none matches, LMT_EINVAL for a bad max.
 */
#define OPS_CLAIM_MAX 10000
int ops_claim_batch(store *s, const struct ops_change *ch, size_t max, struct ops_task *out,
    size_t *n);

/* One worker's transaction: the changes of the tasks it holds (finishes, heartbeats,
 * releases), then a claim, together; each change is accepted or refused on its own. */
struct ops_step {
	const struct ops_change *changes;	/* n changes, none an OPS_CLAIM */
	size_t n;
	int *rcs;				/* n: each change's result, as ops_change()'s */
	struct ops_change_result *results;	/* n (may be NULL): the tasks after */
	const struct ops_change *claim;		/* an OPS_CLAIM; NULL: claim nothing */
	size_t claim_max;			/* 1 to OPS_CLAIM_MAX */
	struct ops_task *claimed;		/* claim_max entries, freed with ops_task_free() */
	size_t nclaimed;			/* how many were claimed */
};

/*
 * Applies st's changes in order, then claims up to st->claim_max tasks as
 * ops_claim_batch() does, all in one write transaction (one commit, none when nothing
 * changed).  A change that is refused (MDB_NOTFOUND, LMT_ETRANSITION, LMT_ELEASE,
 * LMT_ECLAIMED, LMT_ENOLEASE in st->rcs[i]) leaves the others to go on; nothing to claim
 * is st->nclaimed 0.  Returns 0, or the store's error (then nothing was written and every
 * rcs[i] is that error).
 */
int ops_step(store *s, struct ops_step *st);

/* Ends the leases that expired: such a task fails with task_lease_expired, or goes back
 * to the queue (its priority kept) when it was claimed with requeue; one with a retry
 * policy goes back with its backoff while it has attempts left (task_lease_expired its
 * last error), else fails.  *reaped gets their number.  Delayed tasks whose time came are
 * made claimable in the same write. */
int ops_reap(store *s, uint64_t *reaped);

/* Returns 1 when t's lease ended it: failed by the lease rule, or requeued by it. */
int ops_lease_ended(const struct task *t);

/* A manual retry (lmtasks retry): the failed tasks named, or matched, back in the queue. */
struct ops_retry {
	const uint64_t *uids;		/* the tasks named (n of them, at most OPS_RETRY_MAX); */
	size_t n;
	const struct query *q;		/* or, uids NULL: the failed tasks q matches */
	/* What became of them: */
	size_t nout;			/* uids: n, less those named twice; q: the failed
					 * tasks matched (in uid order) */
	struct ops_task *out;		/* nout (malloc'd): each task after, or as it is when
					 * refused (buf NULL when not found) */
	int *rcs;			/* nout: 0 retried; MDB_NOTFOUND; LMT_ETRANSITION (not
					 * failed); LMT_ETOOBIG (no attempt can be added) */
	uint64_t *out_uids;		/* nout: the uids, found or not */
	uint64_t retried;
	uint64_t bad;			/* q: the record that did not decode (LMT_ECORRUPT) */
};

/*
 * Re-enqueues failed tasks at once, in one transaction: status enqueued, start, finish
 * and batch cleared, not_before 0, the error kept as the last attempt's.  A task that
 * had no attempt left gets one more (max_attempts raised to attempts + 1; a task with no
 * policy counts the attempt it had: 1 of 2).  A task that is not failed is refused alone
 * (rcs), changing nothing for it.  Returns 0 (r->retried may be 0: nothing written), or
 * the store's error (nothing written); r is freed with ops_retry_free().
 */
#define OPS_RETRY_MAX 10000
int ops_retry(store *s, struct ops_retry *r);

/* Frees what ops_retry() left in r. */
void ops_retry_free(struct ops_retry *r);

/* The result of a cancelation or a deletion: the task that records it. */
struct ops_record_result {
	uint64_t matched;		/* tasks the request named or matched */
	uint64_t changed;		/* canceled or deleted */
	uint64_t missing;		/* cancel: the first uid that does not exist */
	uint64_t bad;			/* delete: the record that did not decode */
	struct ops_task out;		/* the taskCancelation / taskDeletion task */
};

/*
 * Cancels the enqueued and processing tasks among uids (n, at most OPS_CANCEL_MAX) and
 * records a taskCancelation task with filter as its originalFilter.  Returns 0;
 * MDB_NOTFOUND when a uid does not exist (r->missing); LMT_ETRANSITION when every one
 * has finished already.
 */
#define OPS_CANCEL_MAX 10000
int ops_cancel(store *s, const uint64_t *uids, size_t n, const char *filter,
    struct ops_record_result *r);

/*
 * Cancels the enqueued and processing tasks that q matches and records a taskCancelation
 * task with filter as its originalFilter, matchedTasks counting every task q matches, in
 * one transaction; as in Meilisearch, one that cancels nothing is recorded too, but only
 * while a new task would be taken: else LMT_EFULL (past SETTINGS_ENQUEUE_PERCENT of
 * maxBytes) or LMT_EDISKFULL (the disk cannot keep the reserve) and nothing is written.
 * Returns 0, those, or LMT_ECORRUPT with r->bad.
 */
int ops_cancel_query(store *s, const struct query *q, const char *filter,
    struct ops_record_result *r);

/*
 * Deletes the finished tasks that q matches, except the newest keep of them, with the
 * batches left with no task, and records a taskDeletion task with filter as its
 * originalFilter.  Enqueued and processing tasks are never deleted.  One that deletes
 * nothing is refused as ops_cancel_query() refuses one that cancels nothing (LMT_EFULL,
 * LMT_EDISKFULL).  Returns 0, those, or LMT_ECORRUPT with r->bad.
 */
int ops_delete(store *s, const struct query *q, uint64_t keep, const char *filter,
    struct ops_record_result *r);

/* Removes an index (its tasks stay); MDB_NOTFOUND when there is none. */
int ops_index_delete(store *s, struct task_str index);

/*
 * Makes an API key from k (indexes, description, expiry set by the caller): fills
 * k->uid, k->created_at and secret (AUTH_KEY_CHARS hex characters and a NUL; the caller
 * wipes it), and stores only the key's hash.  LMT_EINVAL: libsodium did not initialise.
 */
int ops_key_create(store *s, struct auth_key *k, char secret[AUTH_KEY_CHARS + 1]);

/* Revokes the key given by its secret or its uid; MDB_NOTFOUND when none matches. */
int ops_key_delete(store *s, const char *key_or_uid);

/*
 * Creates the store at path, or opens the one there, and gives it to a group of readers:
 * gid (-1: none) owns the files and the directory (setgid), data.mdb gets mode (0:
 * 0640 with a group, else 0600), lock.mdb the same plus group write.  An existing store
 * keeps its access unless gid or mode is given.  *shared_rc is the error of the group
 * or mode change when the store was made but could not be shared (then 0 is returned).
 */
int ops_init(const char *path, gid_t gid, unsigned mode, int *shared_rc);

/*
 * Adds webhook w (url, headers and filter checked by the caller; their strings must stay
 * valid until it returns): fills w->id (the next of 1, 2, 3, ... never reused),
 * w->created_at, and w->cursor, the current end of the change log, so that it gets the
 * tasks that finish from now on.
 */
int ops_webhook_add(store *s, struct webhook *w);

/* Removes webhook id; MDB_NOTFOUND when there is none. */
int ops_webhook_delete(store *s, uint64_t id);

/* One delivery attempt's outcome, as `lmtasks notify` records it. */
struct ops_webhook_step {
	uint64_t id;
	uint64_t from;		/* the cursor the attempt started from */
	uint64_t to;		/* success: the new cursor (>= from) */
	uint64_t delivered;	/* success: tasks the receiver took */
	uint64_t missed;	/* changes pruned from the log before the webhook got them */
	const char *error;	/* NULL: success (2xx, or nothing to send); else the failure */
	int64_t now;		/* µs */
};

/*
 * Records st in one small write transaction that changes no task (no lease is reaped):
 * on success the cursor moves to st->to and the error is cleared; on failure the cursor
 * stays and the error is kept.  Returns 0; MDB_NOTFOUND when the webhook was deleted;
 * LMT_ECLAIMED when its cursor is no longer st->from (another notify moved it).
 */
int ops_webhook_record(store *s, const struct ops_webhook_step *st);

/* What a restore did, or which store a failure was about. */
struct ops_restore_result {
	int backup_failed;	/* the failure was the backup's (opening it; LMT_EINVAL: it is
				 * the store itself) */
	uint64_t tasks;		/* the store's tasks now */
	uint64_t changed;	/* tasks whose state changed, each logged in the change log */
	uint64_t next_uid;	/* the uid the next task gets */
};

/*
 * Replaces the store's contents by those of the backup in dir (made by store_backup(), or
 * any store of this format), in one write transaction: see store_restore_txn().  A
 * responder serving the store answers from the restored state at its next request.
 * On failure nothing was written.
 */
int ops_restore(store *s, const char *dir, struct ops_restore_result *r);

/* The data file's size before and after a compaction, in bytes (Meilisearch's preSize
 * and postSize of POST /tasks/compact). */
struct ops_compact_result {
	uint64_t pre_size, post_size;
	int swapped;	/* 1 from the rename on: the store is the copy, even after an error */
};

/*
 * Compacts the store's data file: LMDB's compacting copy swapped in for it, holding the
 * write lock from the copy to the swap (store_compact()).  Running responders keep
 * serving: from the old file, which holds the same state, until they follow the new one
 * at their next snapshot after a commit or within a second.  s itself follows it.
 * Returns 0; on failure the store is as it was, unless r->swapped says that the copy
 * was renamed over data.mdb before the failure (syncing the directory, or s's reopen):
 * then the store is the copy, which holds every task.
 */
int ops_compact(store *s, struct ops_compact_result *r);

#endif
