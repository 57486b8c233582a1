/* The change feed: every write transaction that changes tasks appends, in that same
 * transaction, one entry per changed task to the store's `changes` database, under a
 * sequence number allocated 1, 2, 3, ...  Readers (`lmtasks watch`, GET /tasks/stream,
 * webhook delivery) keep their own cursor, a sequence, and ask what changed after it. */
#ifndef LMTASKS_FEED_H
#define LMTASKS_FEED_H

#include <stdint.h>

#include "lmtasks/store.h"

/* The status an entry carries when its change removed the task (lmtasks delete). */
#define FEED_REMOVED 0xff

/* One change: the task uid as it was after the change, at the time of the write. */
struct feed_entry {
	uint64_t seq;		/* 1, 2, 3, ... in commit order */
	uint64_t uid;		/* the task */
	int64_t at;		/* when it was written (µs since the epoch) */
	unsigned status;	/* enum task_status after the change, or FEED_REMOVED */
};

/*
 * How much of the log the writer keeps: the newest `count` entries, or (count 0) the
 * entries younger than `age` µs.  The newest entry is always kept, so the next sequence
 * is never lost.  Kept in meta under "setting.feedRetention" (top bit set: an age in
 * seconds; else a count); the default is FEED_RETENTION_DEFAULT entries.
 */
struct feed_retention {
	uint64_t count;
	int64_t age;
};

#define FEED_RETENTION_DEFAULT 100000
#define FEED_RETENTION_KEY "setting.feedRetention"
#define FEED_RETENTION_AGE_BIT (UINT64_C(1) << 63)

/* Decodes a retention as meta keeps it (v) into *r. */
void feed_retention_decode(uint64_t v, struct feed_retention *r);

/* Encodes *r as meta keeps it. */
uint64_t feed_retention_encode(const struct feed_retention *r);

/*
 * Parses "100000" (a count, at least 1) or "7d", "12h", "30m", "90s" (an age, at least
 * one second) into *r; returns 0 or LMT_EINVAL.
 */
int feed_retention_parse(const char *text, struct feed_retention *r);

/* Writes "100000" or "7d" (the largest unit that divides it) into buf (32 bytes). */
void feed_retention_format(const struct feed_retention *r, char buf[32]);

/* Reads the store's retention, the default when the store keeps none. */
int feed_retention_read(store *s, MDB_txn *txn, struct feed_retention *r);

/*
 * The log's bounds in txn: *first the oldest sequence kept, *last the newest (0: no change
 * logged yet, then *first is 1).  A store made before the feed existed has no log until
 * its first write: it reads as empty.
 */
int feed_bounds(store *s, MDB_txn *txn, uint64_t *first, uint64_t *last);

typedef struct feed_iter feed_iter;

/*
 * Opens an iterator over the changes after sequence `after`, in txn.  Returns 0;
 * LMT_EPRUNED when changes after `after` were pruned already (after + 1 < first kept),
 * so a reader resuming there would miss some.  Freed with feed_iter_close() before txn
 * ends.
 */
int feed_iter_open(store *s, MDB_txn *txn, uint64_t after, feed_iter **out);

/* The next change; MDB_NOTFOUND past the newest one. */
int feed_iter_next(feed_iter *it, struct feed_entry *e);

/* Frees the iterator. */
void feed_iter_close(feed_iter *it);

/*
 * Reads up to max changes after *after into e (room for max) and moves *after past them.
 * A task changed more than once in this read keeps only its latest entry (readers show
 * a task as it is now), so *n may be less than the changes read.  Returns 0 (*n 0: none
 * yet), LMT_EPRUNED as feed_iter_open(), or ENOMEM.
 */
int feed_read(store *s, MDB_txn *txn, uint64_t *after, struct feed_entry *e, size_t max,
    size_t *n);

/*
 * For each of n uids, the sequence of its latest change kept in the log, or, when the
 * log holds none (pruned, or made before the feed), first - 1: resuming after that
 * replays every kept change.  Walks the log from its newest entry back until each uid
 * is found, so it costs at most the log's length.  seqs has room for n.
 */
int feed_latest(store *s, MDB_txn *txn, const uint64_t *uids, size_t n, uint64_t *seqs);

/* A task and the sequence of its latest change (see feed_latest()). */
struct feed_position {
	uint64_t seq, uid;
};

/*
 * The n uids each under the sequence of its latest change (feed_latest()), in out (room
 * for n), ordered by sequence, then uid: a reader that shows the tasks as they are now in
 * that order, then resumes after any one of them, replays exactly the changes that
 * followed it.  Returns 0, ENOMEM, or an LMDB code.
 */
int feed_current(store *s, MDB_txn *txn, const uint64_t *uids, size_t n,
    struct feed_position *out);

/*
 * Opens the changes database when it exists now but did not when the store was opened
 * (a long-running reader of a store that a writer has since upgraded).  No transaction
 * of this process may open a database at the same time.  Returns 0 also when it still
 * does not exist.
 */
int feed_refresh(store *s);

/* Writer side (store_write.c). */

/*
 * Appends one entry per task (uids[i], statuses[i]) to the log in txn, after passing over
 * skip sequences (changes the retention would drop at once: a huge batch), then prunes
 * the log to the store's retention.  Called by the store's own write functions (store_add_many,
 * store_replace, store_remove), so that no writer can change a task without it.
 */
int feed_append(store *s, MDB_txn *txn, uint64_t skip, const uint64_t *uids,
    const unsigned char *statuses, size_t n);

/* Keeps *r as the store's retention (in txn) and prunes the log to it at once; LMT_EINVAL
 * for an age under a second. */
int feed_retention_write(store *s, MDB_txn *txn, const struct feed_retention *r);

#endif
