/* The task store: one LMDB environment, its named databases, uids, indexes and counts. */
#ifndef LMTASKS_STORE_H
#define LMTASKS_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>

#include "lmtasks/task.h"

typedef struct store store;
typedef struct store_iter store_iter;

enum store_flags {
	STORE_RDONLY = 1 << 0,	/* open for reading only (the responder) */
	STORE_CREATE = 1 << 1,	/* create the directory and databases (init) */
	STORE_NOSCHED = 1 << 2,	/* leave the schedule's databases (delayed, ranked) closed:
				 * the responder never claims, and every database open costs
				 * each of its transactions a little */
};

/* The sequences a list can walk, each in uid order. */
enum store_seq {
	STORE_SEQ_ALL,		/* every task */
	STORE_SEQ_INDEX,	/* one index's tasks; key = index uid */
	STORE_SEQ_STATUS,	/* one status' tasks; key = 1 status byte */
	STORE_SEQ_TYPE,		/* one type's tasks; key = type */
};

/* Totals of the whole store, for `lmtasks stats`. */
struct store_stats {
	uint64_t tasks;
	uint64_t next_uid;
	uint64_t by_status[TASK_NSTATUS];
	uint64_t indexes;
	uint64_t map_size;
	uint64_t used_bytes;	/* pages in use times the page size */
	unsigned page_size;
};

/* Called by store_check() once per problem found, with one line of text. */
typedef void store_problem_fn(void *ctx, const char *line);

/* The environment, one per process (store.c, store_replaced.c). */

/*
 * Opens the store at path (a directory).  Without STORE_CREATE a path that is
 * missing, or a directory with no store in it, gives LMT_ENOSTORE; a store of a
 * newer format gives LMT_ESCHEMA.  Readers left by killed processes are cleared.
 * mode is used for files created with STORE_CREATE.  *out is freed with store_close().
 */
int store_open(const char *path, unsigned flags, unsigned mode, store **out);

#define STORE_MAP_MIN ((size_t)64 << 10)	/* LMTASKS_MAPSIZE: 64 KiB ... */
#define STORE_MAP_MAX ((uint64_t)1 << 40)	/* ... 1 TiB (the map grows from there) */

/*
 * Reads LMTASKS_MAPSIZE, the map size in bytes of a store made now: *size is left as
 * it is when the variable is unset or empty.  Returns LMT_EINVAL unless it is decimal
 * digits alone, from STORE_MAP_MIN to STORE_MAP_MAX (and fits a size_t).
 */
int store_map_size_env(size_t *size);

/* Closes the environment; every transaction and iterator must be gone. */
void store_close(store *s);

struct progress;
/* From now on store_add_many() and store_check() report to p (which must outlive its
 * use), every p->every tasks; NULL: to nobody (the default). */
void store_set_progress(store *s, const struct progress *p);

/* The progress listener set by store_set_progress(), or NULL (for the write library). */
const struct progress *store_progress(const store *s);

/* Tells this store from another made at the same path later (its data file's device and
 * inode): with a transaction id, it names one state of one store. */
uint64_t store_ident(store *s);

/* The store's directory, owned by the store. */
const char *store_path(store *s);

/* Returns the LMDB environment, owned by the store. */
MDB_env *store_env(store *s);

/* Opens the schedule's databases (delayed and prioritised tasks) when another process made
 * them since this one opened the store; nothing when they are open (or STORE_NOSCHED).
 * No transaction of this process may be live.  store_write() does it first. */
int store_sched_refresh(store *s);

/* 1 when the store's batches database was there when it was opened (a store made by
 * 0.1.0 gets one at its first write, which a reader opened before sees after a reopen). */
int store_has_batches(store *s);

/*
 * Begins a transaction (MDB_RDONLY for reads).  When another process has grown
 * the map it adopts the new size and retries; that is safe only while this
 * process has no other transaction, so a threaded reader uses store_refresh_map().
 */
int store_txn_begin(store *s, unsigned flags, MDB_txn **txn);

/* Adopts a map size grown by another process; no transaction of this process may be live. */
int store_refresh_map(store *s);

/* The quick check store_open also makes: data.mdb is at least as long as its meta pages
 * say (a shorter one faults on the first page read past its end).  Returns 0, or
 * LMT_EDAMAGED with store_damage_text() saying which file and what size it should have. */
int store_check_size(store *s);

/* Whether the data file open is still the store's (store_replaced.c): data.mdb at the
 * path is the file open, and the transactions it holds reach the last one the store's
 * lock file counts (a data file copied over a store under a running process goes back).
 * store_open makes it too.  Returns 0, or LMT_EREPLACED with
 * store_check_replaced_text(). */
int store_check_replaced(store *s);

/* The second half of store_check_replaced(), without a system call, for a read
 * transaction just begun or renewed: LMT_EREPLACED when its id is past the data file's. */
int store_check_snapshot(store *s, MDB_txn *txn);

/* Whether data.mdb at the store's path is another file than the one open that follows
 * it: a compacted copy `lmtasks compact` swapped in (store_compact()), whose
 * transactions reach the count the store's lock file keeps.  Returns 0 when the path
 * holds the file open, 1 when it holds a follower (store_reopen() opens it), LMT_EREPLACED
 * (store_check_replaced_text()) when it holds another file, or an error. */
int store_follows(store *s);

/* Opens the store's path again in s (the same handle): the environment closed first, as
 * LMDB wants (one environment per file and process), then opened with the same flags.
 * Every transaction and cursor of s must be ended or abandoned (never used again: they
 * belong to the closed environment); store_iter_renew() drops an iterator's by itself.
 * Returns 0, or the error of the open, after which s may be closed or opened again
 * (the path is kept: a later store_reopen() opens the file once it is there). */
int store_reopen(store *s);

/* A read transaction at the newest snapshot for a process's one thread (the CLI's wait
 * and watch loops): one of a file a compaction swapped in since is refused, the store
 * opened again on the new file (store_reopen()) and the transaction begun there.
 * Returns 0 with *txn live, LMT_EREPLACED for a file replaced otherwise, or an error. */
int store_read_follow(store *s, MDB_txn **txn);

/* Opens s again on a compacted file swapped in since (store_follows()), or on its path
 * when a reopen that failed left it closed, so that an idle writer keeps no old file
 * open.  No transaction of s may be live.  Returns 0, LMT_EREPLACED for a file replaced
 * otherwise, or an error. */
int store_follow(store *s);

/* This thread's last LMT_EREPLACED explained: a static per-thread string. */
const char *store_check_replaced_text(void);

/* This thread's last LMT_EDAMAGED explained: a static per-thread string, valid until the
 * thread's next check. */
const char *store_damage_text(void);

/* One transaction's reads (store_read.c). */

/*
 * Reads a task.  Returns 0, MDB_NOTFOUND, or LMT_ECORRUPT for a record that does
 * not decode.  t's strings point into the map: they live until txn ends.
 */
int store_get(store *s, MDB_txn *txn, uint64_t uid, struct task *t);

/* Returns 0 when the index exists, MDB_NOTFOUND when not. */
int store_index_exists(store *s, MDB_txn *txn, struct task_str index);

/* The uid the next enqueued task will get. */
int store_next_uid(store *s, MDB_txn *txn, uint64_t *uid);

/* Counts the tasks of a sequence (key as for store_iter_seek), without a scan. */
int store_count(store *s, MDB_txn *txn, enum store_seq seq, const void *key, size_t keylen,
    uint64_t *n);

/* Counts tasks with the given index (NULL ptr: any), status (-1: any) and type
 * (NULL ptr: any) from the maintained counts. */
int store_count_match(store *s, MDB_txn *txn, struct task_str index, int status,
    struct task_str type, uint64_t *n);

/*
 * Counts tasks whose index is one of indexes (nindexes 0: any), whose status is in
 * status_mask (bit 1 << status; 0: any) and whose type is one of types (ntypes 0:
 * any), from the maintained counts: no task is read.
 */
int store_count_sets(store *s, MDB_txn *txn, const struct task_str *indexes, size_t nindexes,
    unsigned status_mask, const struct task_str *types, size_t ntypes, uint64_t *n);

/* Finds the task a claim of the given index and type (NULL ptr: any) takes: of the
 * enqueued tasks that are due, the oldest of the highest priority; returns 0, or
 * MDB_NOTFOUND when there is none.  A task whose time came since the last write is due
 * only once store_promote() has moved it (every write does first, a bounded number: a
 * claim then moves the rest, ops). */
int store_find_enqueued(store *s, MDB_txn *txn, struct task_str index, struct task_str type,
    uint64_t *uid);

/* The oldest due enqueued task of exactly this priority, index and type (both given:
 * LMT_EINVAL else), for a claim of several that keeps to one; MDB_NOTFOUND when none. */
int store_find_enqueued_at(store *s, MDB_txn *txn, int32_t priority, struct task_str index,
    struct task_str type, uint64_t *uid);

/* The enqueued task whose time comes first among those not promoted yet (store_promote()),
 * with that time in *at (µs, maybe past already); MDB_NOTFOUND when there is none. */
int store_delayed_first(store *s, MDB_txn *txn, int64_t *at, uint64_t *uid);

/* Fills *st. */
int store_stats(store *s, MDB_txn *txn, struct store_stats *st);

/* Calls fn for each index in name order until it returns nonzero (returned). */
int store_index_walk(store *s, MDB_txn *txn, int (*fn)(void *ctx, struct task_str index,
    int64_t created_at), void *ctx);

/* Reads the API key record stored under hash; MDB_NOTFOUND when there is none.  *rec
 * points into the map and lives until txn ends. */
int store_key_get(store *s, MDB_txn *txn, const unsigned char *hash, size_t hashlen,
    const void **rec, size_t *reclen);

/* Calls fn(ctx, hash, record, length) for each API key until it returns nonzero
 * (returned); the pointers live until txn ends. */
int store_key_walk(store *s, MDB_txn *txn,
    int (*fn)(void *ctx, const unsigned char *hash, const void *rec, size_t len), void *ctx);

/* Reads batch uid's record (tbatch.h); MDB_NOTFOUND when there is none.  *rec points
 * into the map and lives until txn ends. */
int store_batch_get(store *s, MDB_txn *txn, uint64_t uid, const void **rec, size_t *len);

/* Calls fn for each batch from uid `from` on (<= from descending, >= from ascending) until
 * it returns nonzero (returned); rec lives until txn ends. */
int store_batch_walk(store *s, MDB_txn *txn, uint64_t from, int descending,
    int (*fn)(void *ctx, uint64_t uid, const void *rec, size_t len), void *ctx);

/* Calls fn for each uid of status st from `from` to `to` (both included), in uid order,
 * until it returns nonzero (returned); 0 when the walk ends. */
int store_status_walk(store *s, MDB_txn *txn, enum task_status st, uint64_t from, uint64_t to,
    int (*fn)(void *ctx, uint64_t uid), void *ctx);

/* Calls fn for each type some task of the store has, in name order, until it returns
 * nonzero (returned). */
int store_type_walk(store *s, MDB_txn *txn, int (*fn)(void *ctx, struct task_str type),
    void *ctx);

/* Reads the u64 kept in meta under key (a store setting); MDB_NOTFOUND when absent, as
 * in a store made before that setting existed. */
int store_meta_get(store *s, MDB_txn *txn, const char *key, uint64_t *v);

/* The bytes of the pages every database uses (the change log, batches and webhooks
 * included), free pages not counted. */
int store_live_bytes(store *s, MDB_txn *txn, uint64_t *bytes);

/* The uid of the task whose lease ends first, when it ends before before; MDB_NOTFOUND
 * when none does.  (The lease rule itself is the write library's: ops_reap().) */
int store_lease_first(store *s, MDB_txn *txn, int64_t before, uint64_t *uid);

/* Calls fn for each maintained count in key order (the store's own tasks, index NULL;
 * then every index together, index "*"; then each index by name), status and type within,
 * until fn returns nonzero (returned): no task is read.  The strings live until txn ends. */
int store_count_walk(store *s, MDB_txn *txn, int (*fn)(void *ctx, struct task_str index,
    enum task_status status, struct task_str type, uint64_t n), void *ctx);

/* How many tasks hold a lease (*total) and how many of those ended before `before`
 * (*expired), reading at most 2 * max leases: exact unless both the expired and the live
 * ones number max or more, when *expired is max (at least that many). */
int store_lease_count(store *s, MDB_txn *txn, int64_t before, uint64_t max, uint64_t *total,
    uint64_t *expired);

/* The iterator a worker keeps across requests (store_iter.c). */

/* Opens an iterator in txn; freed with store_iter_close() before txn ends or is reset. */
int store_iter_open(store *s, MDB_txn *txn, store_iter **out);

/* Rebinds an iterator to a renewed read-only transaction; its cursors are renewed as
 * they are next used. */
int store_iter_renew(store_iter *it, MDB_txn *txn);

/*
 * Positions the iterator on the first uid of seq (key selects the index, status
 * or type) that is <= from when descending, >= from when ascending, and returns it
 * in *uid.  Returns 0, or MDB_NOTFOUND when there is none.
 */
int store_iter_seek(store_iter *it, enum store_seq seq, const void *key, size_t keylen,
    uint64_t from, int descending, uint64_t *uid);

/* Moves to the next uid in the direction of the last seek; MDB_NOTFOUND at the end. */
int store_iter_next(store_iter *it, uint64_t *uid);

/* Decodes the task under an iterator walking STORE_SEQ_ALL, without a second lookup;
 * returns as store_get() does (LMT_EINVAL on another sequence). */
int store_iter_get(store_iter *it, struct task *t);

/* Reads the task uid as store_get() does, through a cursor of the iterator's that stays
 * near the last uid read: cheaper for uids read in order. */
int store_iter_fetch(store_iter *it, uint64_t uid, struct task *t);

/*
 * A union of keys of one sequence walks each key with a cursor of its own, numbered
 * by slot (0, 1, ...): store_iter_seek_key() positions slot's cursor as
 * store_iter_seek() does, store_iter_next_key() steps it (LMT_EINVAL for a slot of
 * store_iter_slots() or more: seek such a key again instead).  seq is not STORE_SEQ_ALL.
 */
int store_iter_seek_key(store_iter *it, size_t slot, enum store_seq seq, const void *key,
    size_t keylen, uint64_t from, int descending, uint64_t *uid);
int store_iter_next_key(store_iter *it, size_t slot, enum store_seq seq, int descending,
    uint64_t *uid);

/* How many union keys have a cursor of their own. */
size_t store_iter_slots(void);

/* store_count() and store_count_sets() through the iterator's kept cursors. */
int store_iter_count(store_iter *it, enum store_seq seq, const void *key, size_t keylen,
    uint64_t *n);
int store_iter_count_sets(store_iter *it, const struct task_str *indexes, size_t nindexes,
    unsigned status_mask, const struct task_str *types, size_t ntypes, uint64_t *n);

/* Frees the iterator. */
void store_iter_close(store_iter *it);

/* Writer side (store_write.c, store_check.c, store_restore.c): linked by the CLI and the
 * write daemon, never by the responder. */

/*
 * Runs fn inside one write transaction and commits it.  When the map fills, the
 * transaction is aborted, the map grown and fn run again from the start, so fn
 * must not consume input it cannot replay.  Returns fn's nonzero result (after
 * aborting) or the commit's result.
 */
int store_write(store *s, int (*fn)(store *s, MDB_txn *txn, void *ctx), void *ctx);

/* After a fault (SIGBUS on a data.mdb cut short) jumped out of store_write(): aborts the
 * write transaction it left open, so that nothing of it is written and the store's write
 * lock is released for other writers.  Nothing when no write was running. */
void store_write_fault(store *s);

/* Sets meta's u64 under key (a store setting). */
int store_meta_put(store *s, MDB_txn *txn, const char *key, uint64_t v);

/*
 * Allocates bytes of disk past the data file's last page without changing its size, so
 * that later commits (a delete, a finish) have room when the disk fills.  Returns 0
 * (also where the file system cannot preallocate), or ENOSPC / EDQUOT when the disk
 * has not that much free.
 */
int store_reserve(store *s, uint64_t bytes);

/*
 * Decodes every record and checks every secondary-index entry and count
 * against the records, calling problem() once per inconsistency.  *problems
 * gets their number; the return value is 0 unless the check itself failed.
 */
int store_check(store *s, MDB_txn *txn, store_problem_fn *problem, void *ctx,
    uint64_t *checked, uint64_t *problems);

/*
 * Adds a new task: allocates t->uid, stores the record, its index entries and
 * counts, and creates its index when it is new.  The task's strings must be
 * validated by the caller (task_*_valid and JSON object text for details).
 * An enqueued task whose not_before is later than now (clock_now()) is not claimable
 * until then (store_promote()); a due one is claimable in order of priority, then uid.
 * store_replace() does the same with next, wherever old waited.
 */
int store_add(store *s, MDB_txn *txn, struct task *t);

/* Makes the delayed tasks whose time is at or before now claimable (store_find_enqueued()),
 * in order of time, max of them at most (the rest wait for the next call); *moved gets
 * their number.  Their records are unchanged. */
int store_promote(store *s, MDB_txn *txn, int64_t now, uint64_t max, uint64_t *moved);

/* Adds n new tasks as store_add() does, with uids in their order, writing counts and
 * indexes once for the batch (the pointers in tasks must stay valid until it returns). */
int store_add_many(store *s, MDB_txn *txn, struct task *tasks, size_t n);

/* Replaces old (as read in txn) by next, same uid, keeping indexes and counts right.
 * next's strings may point into old's record: they are copied before anything moves. */
int store_replace(store *s, MDB_txn *txn, const struct task *old, const struct task *next);

/* store_replace() without an entry in the change log (feed.h): for a change no reader
 * sees (a lease extended) or one the caller logs only now and then (a worker's progress
 * within the same percentage point). */
int store_replace_quiet(store *s, MDB_txn *txn, const struct task *old,
    const struct task *next);

/* Removes t (as read in txn) with its index entries, counts and lease; its uid is never
 * given again.  t's strings are invalid afterwards. */
int store_remove(store *s, MDB_txn *txn, const struct task *t);

/*
 * Copies the store into dir (made with the store directory's mode, or an empty directory:
 * EEXIST when it holds anything), compacted, through LMDB's own copy in one read
 * transaction; the copy is synced to the disk.  (store_restore.c)
 */
int store_backup(store *s, const char *dir);

/*
 * Compacts the store's data file in place of the running store (store_compact.c): in a
 * write transaction held throughout, so no other writer can commit meanwhile, LMDB's
 * compacting copy (mdb_env_copyfd2, MDB_CP_COMPACT) is written beside data.mdb, given
 * the id of the store's last transaction, synced, and renamed over data.mdb; s then
 * follows it (store_reopen()).  *pre and *post get the file's size before and after.
 * The copy gets data.mdb's owner (as root), else data.mdb must be the caller's (EPERM).
 * Returns 0; or an error with the store as it was (the copy removed), unless *swapped is
 * 1: the copy was renamed over data.mdb before the error (the directory's sync or s's
 * reopen failed), and the store is the copy.
 */
int store_compact(store *s, uint64_t *pre, uint64_t *post, int *swapped);

/*
 * In the write transaction txn, replaces every database of the store but the change log
 * and the webhooks by from's (read in ftxn): tasks, indexes, counts, batches, API keys,
 * settings.  The next uid and batch uid stay at least what they were (never handed out
 * twice); each task whose state changes is logged after the log's newest change (the
 * backup's status, or FEED_REMOVED), and *changed gets their number.
 */
int store_restore_txn(store *s, MDB_txn *txn, store *from, MDB_txn *ftxn, uint64_t *changed);

/* Allocates the next batch uid (0, 1, 2, ...). */
int store_batch_next(store *s, MDB_txn *txn, uint64_t *uid);

/* Stores batch uid's record. */
int store_batch_put(store *s, MDB_txn *txn, uint64_t uid, const void *rec, size_t len);

/* Removes batch uid's record; MDB_NOTFOUND when there is none. */
int store_batch_del(store *s, MDB_txn *txn, uint64_t uid);

/* Removes meta's key (0 also when it is absent). */
int store_meta_del(store *s, MDB_txn *txn, const char *key);

/* Removes an index (its tasks stay); MDB_NOTFOUND when there is none. */
int store_index_remove(store *s, MDB_txn *txn, struct task_str index);

/* Stores an API key's record under the hash of its secret (AUTH_HASH_BYTES bytes). */
int store_key_put(store *s, MDB_txn *txn, const unsigned char *hash, size_t hashlen,
    const void *rec, size_t reclen);

/* Removes the API key stored under hash; MDB_NOTFOUND when there is none. */
int store_key_delete(store *s, MDB_txn *txn, const unsigned char *hash, size_t hashlen);

#endif
