/*
 * The store a server shares between its threads, read through one guarded path: the
 * responder's workers, its stream thread and its once-a-second check, and lmtasks-writer's
 * worker.  The store is opened when it first appears (a missing one is looked for again);
 * a request holds a lock for reading while it uses the store, and adopting a map another
 * process grew takes it for writing; a SIGBUS from a data.mdb shrunk while mapped fails
 * the read that met it, not the process; the check finds a file shrunk or replaced.
 */
#ifndef LMTASKS_READER_H
#define LMTASKS_READER_H

#include <stdint.h>

#include "lmtasks/store.h"

/* A store that could not be opened is looked for again after this (READER_SHARED). */
#define READER_RETRY_US 200000

/* The shared store; opaque, made by reader_new, freed by reader_free. */
typedef struct reader reader;

enum reader_mode {
	/* lmtasks-fcgi: read-only, any number of threads; a store found damaged or replaced
	 * stays open and is answered 503 until it is whole again */
	READER_SHARED,
	/* lmtasks-writer: read-write, one thread; the size is checked before each request
	 * as well, and a damaged store is closed (its write aborted) and opened again once
	 * whole */
	READER_OWNER,
};

struct reader_config {
	const char *prog;	/* the log lines' prefix */
	/* the store (copied); NULL: the first store a request wants (reader_begin's
	 * param_path, else fallback) that can be opened, fixed from then on */
	const char *path;
	const char *fallback;
	enum reader_mode mode;
	/* READER_OWNER: aborts the write a fault left open (store_write_fault), before a
	 * damaged store is closed; the read-only responder links no write code, so it is lent */
	void (*abort_write)(store *s);
};

/* What reader_begin found; the strings live until reader_end. */
struct reader_view {
	store *s;		/* the store to read, or NULL with rc saying why */
	int rc;			/* 0, or why the store cannot be read */
	const char *path;	/* the store's path (the request's, when it names another) */
	const char *why;	/* rc LMT_EDAMAGED or LMT_EREPLACED: what is wrong with it */
};

/*
 * Makes the shared store of cfg (nothing opened yet) and installs the process's SIGBUS
 * handler, which turns a fault inside reader_guard or reader_read into an error and is
 * fatal anywhere else.  *out is freed with reader_free.
 * @return 0, or ENOMEM
 */
int reader_new(const struct reader_config *cfg, reader **out);

/* Closes the store and frees r; no thread may be using it.  NULL is allowed. */
void reader_free(reader *r);

/* At start: opens the store when its path is known, logging when it cannot be opened
 * ("no readable store at ... yet"); requests open it later when it appears. */
void reader_start(reader *r);

/* The store's path: NULL until it is known (READER_SHARED without cfg.path); owned by r. */
const char *reader_path(reader *r);

/*
 * Takes the read lock (held until reader_end) and says in *v what a request can read,
 * opening the store first when it is not open and its time has come.  With txn, begins
 * *txn at the newest snapshot (renews it when *txn is not NULL), adopting a map grown by
 * another process and refusing a snapshot of a data file copied over the store since.
 * param_path: the store a request names (LMTASKS_DB), used when the configuration named
 * none: a request whose store cannot be opened fixes nothing (v->path says which it
 * wanted); once one is fixed, a request naming another is refused (LMT_EINVAL).
 * @return v->rc: 0 with v->s (and *txn live), or why the store cannot be read
 */
int reader_begin(reader *r, const char *param_path, MDB_txn **txn, struct reader_view *v);

/* Ends what reader_begin began: resets txn when it is not NULL (the caller's transaction,
 * kept for the next renewal), then lets go of the lock.  A fault met by READER_OWNER is
 * dealt with here: the store closed, its write aborted, the damage logged. */
void reader_end(reader *r, MDB_txn *txn);

/*
 * Calls fn(arg) between reader_begin and reader_end with SIGBUS caught: a page past the
 * end of a data.mdb shrunk meanwhile jumps out of fn, which then must hold no lock and
 * leaves at worst a few allocations lost.  After a fault the store is damaged until the
 * next check finds it whole (READER_SHARED) or is closed by reader_end (READER_OWNER).
 * @return 0; or LMT_EDAMAGED after a fault, with v set to say so (s NULL)
 */
int reader_guard(reader *r, struct reader_view *v, void (*fn)(void *arg), void *arg);

/*
 * Calls fn in a read transaction of its own at the newest snapshot, under the lock and the
 * SIGBUS guard, the change log refreshed first (the stream thread).  fn's pointers into the
 * map live until it returns.
 * @return 0; LMT_EDAMAGED when the store is not open, damaged or replaced, or faulted in
 *         fn; or the error that began no transaction
 */
int reader_read(reader *r, void (*fn)(store *s, MDB_txn *txn, void *arg), void *arg);

/* Ends for good the transaction this thread kept (reader_begin's *txn): aborted when it
 * belongs to the store's open environment; one of an environment closed since (the
 * store followed a compacted file) is left as it is, never touched again. */
void reader_drop(reader *r, MDB_txn *txn);

/* Once a second: the size check (a data.mdb shrunk) and, for READER_SHARED, the data
 * file's identity (one copied over the store); each change is logged once. */
void reader_check(reader *r);

#endif
