/* What the store's files share; not part of the API.  By lifetime: the environment
 * (store.c: struct store, opened once per process), one transaction's reads
 * (store_read.c), the iterator a worker keeps (store_iter.c), and the key layout every
 * side encodes with (store_key.c).  The write side (store_write.c, store_check.c,
 * store_restore.c) is linked by the CLI and the write daemon alone. */
#ifndef LMTASKS_STORE_INTERNAL_H
#define LMTASKS_STORE_INTERNAL_H

#include "lmtasks/bytes.h"
#include "lmtasks/progress.h"
#include "lmtasks/store.h"
#include "store_replaced.h"

#define STORE_SCHEMA 1
#define COUNT_KEY_MAX (TASK_INDEX_MAX + 2 + TASK_TYPE_MAX)

struct store {
	MDB_env *env;
	MDB_dbi meta;		/* "schema" -> u32, "next_uid" -> u64 */
	MDB_dbi tasks;		/* uid (u64 BE) -> record */
	MDB_dbi by_index;	/* index -> uids (dupsort, u64 BE) */
	MDB_dbi by_status;	/* status byte -> uids */
	MDB_dbi by_type;	/* type -> uids */
	MDB_dbi queue;		/* index \0 type -> enqueued uids */
	MDB_dbi counts;		/* index \0 status type -> u64; index "*": every index */
	MDB_dbi indexes;	/* index -> created at (i64 µs) */
	MDB_dbi keys;		/* hash of an API key -> its record (auth.c) */
	MDB_dbi leases;		/* lease end (u64 BE µs) uid (u64 BE) -> nothing */
	MDB_dbi changes;	/* sequence (u64 BE) -> uid (u64 BE) at (i64 LE µs) status (u8) */
	int has_changes;	/* changes is open: absent from a store made by 0.1.0 until written */
	MDB_dbi batches;	/* batch uid (u64 BE) -> its record (tbatch.c); "next_batch" in meta */
	int have_batches;	/* 0: a store made before batches, opened read-only: none yet */
	MDB_dbi webhooks;	/* webhook id (u64 BE) -> its record (webhook.c) */
	int has_webhooks;	/* webhooks is open: absent from older stores until written */
	/* The schedule: queue keeps the due enqueued tasks of priority 0, these the others.
	 * Absent (as from every store made by 0.2.0) until the first delayed or prioritised
	 * task is written: a store that never has one keeps the databases it had. */
	MDB_dbi delayed;	/* not before (u64 BE µs) uid (u64 BE) -> nothing: not yet due */
	int has_delayed;
	MDB_dbi ranked;		/* rank (u32 BE) index \0 type -> due enqueued uids of a priority
				 * other than 0; rank 0 is the highest priority */
	int has_ranked;
	int sched_made;		/* 1 delayed, 2 ranked: made in the write transaction running,
				 * gone if it aborts */
	unsigned flags;
	const struct progress *progress;	/* told how long operations go; may be NULL */
	uint64_t ident;		/* the data file's device and inode */
	unsigned gen;		/* bumped by store_reopen(): handles of before are stale */
	char *path;		/* the store's directory, kept for store_reopen() when env is gone */
	MDB_txn *wtxn;		/* store_write()'s transaction while it runs, for a fault */
};

/* The key layout (store_key.c).  A uid's key: 8 bytes big-endian, in uid order. */
static inline void
store_key_uid(unsigned char out[8], uint64_t uid)
{
	bytes_put_u64be(out, uid);
}

static inline uint64_t
store_uid_key(const void *p)
{
	return bytes_get_u64be(p);
}

/* The value under uid's key in dbi (tasks, batches, webhooks): mdb_get(), mdb_put() and
 * mdb_del() with the key made here. */
static inline int
store_uid_get(MDB_txn *txn, MDB_dbi dbi, uint64_t uid, MDB_val *val)
{
	unsigned char kb[8];
	MDB_val k = { 8, kb };

	store_key_uid(kb, uid);
	return mdb_get(txn, dbi, &k, val);
}

static inline int
store_uid_put(MDB_txn *txn, MDB_dbi dbi, uint64_t uid, MDB_val *val, unsigned flags)
{
	unsigned char kb[8];
	MDB_val k = { 8, kb };

	store_key_uid(kb, uid);
	return mdb_put(txn, dbi, &k, val, flags);
}

static inline int
store_uid_del(MDB_txn *txn, MDB_dbi dbi, uint64_t uid)
{
	unsigned char kb[8];
	MDB_val k = { 8, kb };

	store_key_uid(kb, uid);
	return mdb_del(txn, dbi, &k, NULL);
}

/* LMDB's comparison for keys and duplicates that are uids: memcmp's order, faster. */
int store_cmp_uid(const MDB_val *a, const MDB_val *b);

/* The counts key of every index together: '*' is no index uid character. */
#define STORE_ALL_INDEXES ((struct task_str){ "*", 1 })

/* index \0 status type; returns the length. */
size_t store_count_key(unsigned char *out, struct task_str index, enum task_status status,
    struct task_str type);

/* lease end (u64 BE) uid (u64 BE): 16 bytes, ordered by expiry. */
void store_lease_key(unsigned char out[16], int64_t until, uint64_t uid);

/* index \0 type; returns the length. */
size_t store_queue_key(unsigned char *out, struct task_str index, struct task_str type);

/* A priority as the 4 bytes that lead a ranked key: big-endian, the highest priority the
 * smallest, so that LMDB's order is the claim's.  Priority 0 maps to STORE_RANK_ZERO, which
 * no ranked key has (those tasks are in queue). */
#define STORE_RANK_ZERO UINT32_C(0x7fffffff)
static inline uint32_t
store_rank(int32_t priority)
{
	return STORE_RANK_ZERO - (uint32_t)priority;
}

static inline int32_t
store_rank_priority(uint32_t rank)
{
	return (int32_t)(STORE_RANK_ZERO - rank);
}

/* rank (u32 BE) index \0 type; returns the length (at most RANK_KEY_MAX). */
#define RANK_KEY_MAX (4 + COUNT_KEY_MAX)
size_t store_rank_key(unsigned char *out, int32_t priority, struct task_str index,
    struct task_str type);

/* The database holding a sequence's uids (tasks for STORE_SEQ_ALL). */
static inline MDB_dbi
store_seq_dbi(store *s, enum store_seq seq)
{
	switch (seq) {
	case STORE_SEQ_INDEX: return s->by_index;
	case STORE_SEQ_STATUS: return s->by_status;
	case STORE_SEQ_TYPE: return s->by_type;
	default: return s->tasks;
	}
}

/* store_count_sets() through a cursor on the counts database, positioned anywhere
 * (store_read.c; the iterator passes the one it keeps). */
int store_count_cursor(MDB_cursor *cur, const struct task_str *indexes, size_t nindexes,
    unsigned status_mask, const struct task_str *types, size_t ntypes, uint64_t *n);

/* The open store's data file: its path (PATH/data.mdb, cut to size bytes) in data and
 * its descriptor in *fd (store.c, on store_replaced.c). */
int store_data_file(store *s, char *data, size_t size, mdb_filehandle_t *fd);

/* Opens the optional databases (changes, batches, webhooks; the schedule's unless
 * STORE_NOSCHED) that exist in txn; create: makes the first three. */
int store_open_optional(store *s, MDB_txn *txn, unsigned create);

/* Makes the schedule's databases (delayed, ranked) in the write transaction txn, for its
 * first delayed or prioritised task; store_write() forgets them if txn aborts. */
int store_sched_make(store *s, MDB_txn *txn);

/* Opens, in the write transaction txn, the schedule's databases another process made
 * since this one last looked: the handles and what txn reads are then the same snapshot
 * (a look before txn began could miss databases made, and tasks put there, in between).
 * Opened in txn, they close if it aborts (store_write() forgets them, as it forgets those
 * store_sched_make() made). */
int store_sched_find(store *s, MDB_txn *txn);

#ifdef LMTASKS_TEST_HOOKS
/* Test builds that compile store.c themselves (tests/unit/test_race.c): called by
 * store_check_size between its read of the meta page and its read of the file's size,
 * where a commit by another process is the race the order there is chosen for. */
void store_test_hook(store *s);
#define STORE_TEST_HOOK(s) store_test_hook(s)
/* Called by store_write() just before its transaction begins: where a commit by another
 * process is the race the schedule's lookup in that transaction is for. */
void store_test_write_hook(store *s);
#define STORE_TEST_WRITE_HOOK(s) store_test_write_hook(s)
#else
#define STORE_TEST_HOOK(s) ((void)0)
#define STORE_TEST_WRITE_HOOK(s) ((void)0)
#endif

/* Changes logged in one feed_append() call at most (store_write.c, store_restore.c). */
#define STORE_LOG_CHUNK 1024

/* Of n changes about to be logged, how many the feed's retention would drop at once:
 * those get their sequences all the same, passed over (feed_append()'s skip), and are
 * not written.  The write side's (store_write.c). */
int store_log_skip(store *s, MDB_txn *txn, size_t n, size_t *skip);

/* In a write transaction just begun: LMT_EREPLACED unless the data file's newest
 * transaction is the one the lock file counts (store.c, on store_replaced.c). */
int store_check_write(store *s, MDB_txn *txn);

/* store_check_write(), and whether the path holds a file that follows the one open
 * (store_follows()): 0 to write, 1 when the store is to be opened again (a compacted
 * copy swapped in) and the write made there, else an error (store.c, on store_replaced.c). */
int store_check_write_follow(store *s, MDB_txn *txn);


#endif
