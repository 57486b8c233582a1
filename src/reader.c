/* The store a server's threads share, read through one guarded path (see reader.h). */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lmtasks/clock.h"
#include "lmtasks/error.h"
#include "lmtasks/feed.h"
#include "lmtasks/log.h"
#include "lmtasks/reader.h"

#define FAULT_READ "its data.mdb shrank while it was read (a page past its end)"
#define FAULT_WRITTEN "its data.mdb shrank while it was written (a page past its end)"

/* Requests hold the lock for reading; opening the store, adopting a grown map and
 * recording what a check found take it for writing. */
struct reader {
	pthread_rwlock_t lock;
	const char *prog;
	enum reader_mode mode;
	void (*abort_write)(store *s);
	const char *fallback;
	store *s;
	char *path;		/* fixed by the configuration, or by the first request served */
	int fixed;		/* path came from the configuration */
	int open_rc;
	char *failed;		/* the store last found unopenable, tried again from next_try */
	int64_t next_try;
	int damaged;		/* the open store failed its size check since */
	char damage[PATH_MAX + 160];	/* what store_damage_text() said */
	atomic_int faulted;	/* a read met SIGBUS: damaged until the next check */
	int replaced;		/* its data file is not the one open (check_replaced) */
	char replaced_why[PATH_MAX + 200];	/* what store_check_replaced_text() said */
	unsigned gen;		/* bumped when s follows a compacted data file (follow) */
	int closed;		/* s could not open the file it followed: retried, 503 meanwhile */
};

/* The generation of the snapshot this thread keeps (reader_begin's *txn). */
static __thread unsigned txn_gen;

#define logline(r, ...) log_line((r)->prog, __VA_ARGS__)

/* ---- the SIGBUS guard ---- */

/* SIGBUS (a page past the end of a data.mdb shrunk while mapped) fails the read that meets
 * it, not the process: the reading thread arms its jump buffer around the work. */
static __thread sigjmp_buf bus_jmp;
static __thread volatile sig_atomic_t bus_armed;

static void
on_sigbus(int sig)
{
	if (bus_armed) {
		bus_armed = 0;
		siglongjmp(bus_jmp, 1);
	}
	/* Not in a guarded read: a real fault, fatal as it would be without us. */
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Runs fn(arg); 1 after a fault (r then marked), else 0.  sigsetjmp without the signal
 * mask, so no system call per request: the handler runs with SA_NODEFER, so SIGBUS is
 * not left blocked after the jump. */
static int
guarded(reader *r, void (*fn)(void *arg), void *arg)
{
	if (sigsetjmp(bus_jmp, 0) != 0) {
		atomic_store(&r->faulted, 1);
		return 1;
	}
	bus_armed = 1;
	fn(arg);
	bus_armed = 0;
	return 0;
}

/* One of store_check_size() or store_check_replaced(), for guarded(). */
struct check_call {
	int (*fn)(store *s);
	store *s;
	int rc;
};

static void
check_call(void *arg)
{
	struct check_call *c = arg;

	c->rc = c->fn(c->s);
}

/* fn(r->s) under the guard: its result, with *why store_damage_text(); or LMT_EDAMAGED
 * after a fault, with *why saying so. */
static int
guarded_check(reader *r, int (*fn)(store *s), const char **why)
{
	struct check_call c = { fn, r->s, 0 };

	if (guarded(r, check_call, &c)) {
		*why = FAULT_READ;
		return LMT_EDAMAGED;
	}
	*why = store_damage_text();
	return c.rc;
}

/* ---- opening ---- */

int
reader_new(const struct reader_config *cfg, reader **out)
{
	reader *r = calloc(1, sizeof(*r));

	if (r == NULL || (cfg->path && (r->path = strdup(cfg->path)) == NULL)) {
		free(r);
		return ENOMEM;
	}
	r->fixed = cfg->path != NULL;
	pthread_rwlock_init(&r->lock, NULL);
	r->prog = cfg->prog;
	r->mode = cfg->mode;
	r->abort_write = cfg->abort_write;
	r->fallback = cfg->fallback;
	struct sigaction bus = { .sa_handler = on_sigbus, .sa_flags = SA_NODEFER };
	sigemptyset(&bus.sa_mask);
	sigaction(SIGBUS, &bus, NULL);
	*out = r;
	return 0;
}

void
reader_free(reader *r)
{
	if (r == NULL)
		return;
	store_close(r->s);
	pthread_rwlock_destroy(&r->lock);
	free(r->path);
	free(r->failed);
	free(r);
}

const char *
reader_path(reader *r)
{
	return r->path;
}

/* The store a request wants: the one fixed, else its LMTASKS_DB parameter, else the
 * default (NULL: none). */
static const char *
wanted(reader *r, const char *param_path)
{
	if (r->path)
		return r->path;
	return param_path && *param_path ? param_path : r->fallback;
}

/* Opens path if no store is open and its retry time has come; the write lock held.  The
 * writer looks again at every request, the responder every READER_RETRY_US (for the same
 * path: a request naming another is tried at once).  The store opened is fixed from then
 * on; one that cannot be opened fixes nothing.  Returns 0, or why path cannot be read. */
static int
try_open(reader *r, const char *path)
{
	int64_t now = clock_now();
	int owner = r->mode == READER_OWNER, rc;

	if (r->s || path == NULL)
		return r->s ? 0 : LMT_ENOSTORE;
	if (r->failed && strcmp(r->failed, path) == 0 && now < r->next_try)
		return r->open_rc;
	rc = store_open(path, owner ? 0 : STORE_RDONLY | STORE_NOSCHED, 0, &r->s);
	if (rc == LMT_EDAMAGED) {
		snprintf(r->damage, sizeof(r->damage), "%s", store_damage_text());
		if (owner && r->open_rc != LMT_EDAMAGED)
			logline(r, "the store at %s is damaged: %s; answering 503", path, r->damage);
	}
	if (rc == 0 && r->path == NULL) {
		if ((r->path = strdup(path)) == NULL) {
			store_close(r->s);
			rc = ENOMEM;
		} else {
			logline(r, "serving the store at %s, the first a request named that could be "
			    "read", path);
		}
	}
	if (rc != 0) {
		r->s = NULL;
		r->next_try = owner ? 0 : now + READER_RETRY_US;
		if (r->failed == NULL || strcmp(r->failed, path) != 0) {
			free(r->failed);
			r->failed = strdup(path);
		}
	} else if (r->open_rc != 0 && r->failed && strcmp(r->failed, path) == 0) {
		logline(r, "the store at %s can be %s again", path, owner ? "written" : "read");
	}
	r->open_rc = rc;
	return rc;
}

void
reader_start(reader *r)
{
	if (r->path == NULL)
		return;
	pthread_rwlock_wrlock(&r->lock);
	try_open(r, r->path);
	pthread_rwlock_unlock(&r->lock);
	if (r->s == NULL)
		logline(r, "no %s store at %s yet (%s); answering 503 until there is",
		    r->mode == READER_OWNER ? "writable" : "readable", r->path,
		    lmt_strerror(r->open_rc));
}

/* The writer's store found damaged (why): closed, its write (if one was running) aborted
 * first so that no other writer waits on its lock; opened again once whole (try_open).
 * The write lock held, or the one thread. */
static void
owner_damaged(reader *r, const char *why)
{
	snprintf(r->damage, sizeof(r->damage), "%s", why);
	logline(r, "the store at %s is damaged: %s; answering 503", r->path, r->damage);
	if (r->abort_write)
		r->abort_write(r->s);
	store_close(r->s);
	r->s = NULL;
	r->open_rc = LMT_EDAMAGED;
	atomic_store(&r->faulted, 0);
}

/* The writer follows a compacted file swapped in since it last looked, so that it never
 * keeps the old one open for long (its lock recovery after a crash would count that
 * file's transactions); the write lock held. */
static void
owner_follow(reader *r)
{
	/* A write that followed a compacted file and could not open it left the store
	 * closed: let go of, and opened anew. */
	if (r->s && store_env(r->s) == NULL) {
		store_close(r->s);
		r->s = NULL;
		r->gen++;
	}
	/* Read (keys, compat) and written there.  One stat. */
	if (r->s && store_follows(r->s) == 1) {
		r->gen++;
		if (store_reopen(r->s) != 0) {
			store_close(r->s);
			r->s = NULL;
		}
	}
}

/* The writer, before each request: opened when it is not, and its size checked again, as
 * the timer's check may be up to a second old. */
static void
owner_prepare(reader *r)
{
	const char *why;

	pthread_rwlock_wrlock(&r->lock);
	owner_follow(r);
	try_open(r, r->path);
	if (r->s && guarded_check(r, store_check_size, &why) == LMT_EDAMAGED)
		owner_damaged(r, why);
	pthread_rwlock_unlock(&r->lock);
}

/* ---- reading ---- */

/* Begins *txn (renews it when there is one) at the newest snapshot, adopting a map another
 * process grew, with no transaction of this thread live; the read lock held.  0 with *txn
 * live, else an error with it not. */
static inline __attribute__((always_inline)) int
snapshot(reader *r, MDB_txn **txn)
{
	int rc;

	/* A snapshot of the environment closed when the store followed a compacted file:
	 * abandoned, never touched again (its environment, and with it its reader slot, is
	 * gone; what is left is one small allocation per thread and compaction). */
	if (__builtin_expect(*txn && txn_gen != r->gen, 0))
		*txn = NULL;
	for (int attempt = 0;; attempt++) {
		if (*txn) {
			rc = mdb_txn_renew(*txn);
		} else if ((rc = mdb_txn_begin(store_env(r->s), NULL, MDB_RDONLY, txn)) == 0) {
			txn_gen = r->gen;
		}
		if (rc != MDB_MAP_RESIZED || attempt > 0)
			break;
		pthread_rwlock_unlock(&r->lock);
		pthread_rwlock_wrlock(&r->lock);
		if (r->s && !r->closed)
			store_refresh_map(r->s);
		pthread_rwlock_unlock(&r->lock);
		pthread_rwlock_rdlock(&r->lock);
		/* The lock was let go: another thread may have followed a compacted file. */
		if (*txn && txn_gen != r->gen)
			*txn = NULL;
		if (r->s == NULL || r->closed)
			return r->closed ? r->open_rc : LMT_ENOSTORE;
	}
	/* Every snapshot, not only once a second: a data file copied over the store since the
	 * last check is read at a meta page the lock file picks, and must not be served (nor
	 * pages kept under the lock's transaction id).  No system call. */
	if (rc == 0)
		rc = store_check_snapshot(r->s, *txn);
	if (rc != 0 && rc != MDB_MAP_RESIZED && *txn)
		mdb_txn_reset(*txn);
	return rc;
}

/* Why a store closed by a failed follow answers 503, for reader_begin's v->why. */
static void
closed_why(reader *r, int rc)
{
	snprintf(r->damage, sizeof(r->damage), "its new data file (lmtasks compact) cannot be "
	    "opened: %s", lmt_strerror(rc));
}

/* The data file at the store's path follows the open one (lmtasks compact swapped in a
 * compacted copy): the store is opened again on it, with the write lock held.  Returns 1
 * when it was (r->gen bumped; r->closed when the open failed), else 0. */
__attribute__((noinline, cold)) static int
follow(reader *r)
{
	if (r->s == NULL || r->closed || store_follows(r->s) != 1)
		return 0;
	int rc = store_reopen(r->s);
	r->gen++;
	if (rc != 0) {
		/* The handle stays (iterators point at it), closed until it opens. */
		r->closed = 1;
		r->open_rc = rc;
		r->next_try = clock_now() + READER_RETRY_US;
		closed_why(r, rc);
		logline(r, "the store at %s has a new data file (lmtasks compact) that cannot be "
		    "opened (%s); answering 503 until it can", r->path, lmt_strerror(rc));
		return 1;
	}
	r->replaced = 0;
	logline(r, "the store at %s has a new data file that holds its state (lmtasks compact): "
	    "reading it", r->path);
	return 1;
}

/* follow() from under the read lock, which is let go meanwhile; 1 when the store moved
 * (here or in another thread) since the caller's snapshot was refused. */
__attribute__((noinline, cold)) static int
follow_now(reader *r, unsigned gen)
{
	pthread_rwlock_unlock(&r->lock);
	pthread_rwlock_wrlock(&r->lock);
	if (r->gen == gen)
		follow(r);
	int moved = r->gen != gen;
	pthread_rwlock_unlock(&r->lock);
	pthread_rwlock_rdlock(&r->lock);
	return moved;
}

/* A store closed by a failed follow: opened again once its time has come, the write lock
 * held. */
__attribute__((noinline, cold)) static void
reopen_closed(reader *r)
{
	int64_t now = clock_now();

	if (!r->closed || now < r->next_try)
		return;
	if ((r->open_rc = store_reopen(r->s)) != 0) {
		r->next_try = now + READER_RETRY_US;
		closed_why(r, r->open_rc);
		return;
	}
	r->closed = 0;
	r->gen++;
	logline(r, "the store at %s can be read again", r->path);
}

/* What stands in the way of reading an open store, with v->why; 0 when nothing.  Inline:
 * it is on every request's path. */
static inline __attribute__((always_inline)) int
refusal(reader *r, const char *param_path, struct reader_view *v)
{
	if (r->damaged || atomic_load_explicit(&r->faulted, memory_order_relaxed))
		return LMT_EDAMAGED;
	if (r->replaced) {
		v->why = r->replaced_why;
		return LMT_EREPLACED;
	}
	if (!r->fixed && param_path && *param_path && strcmp(param_path, r->path) != 0) {
		v->path = param_path;
		return LMT_EINVAL;	/* one responder serves one store */
	}
	return 0;
}

int
reader_begin(reader *r, const char *param_path, MDB_txn **txn, struct reader_view *v)
{
	if (r->mode == READER_OWNER)
		owner_prepare(r);
	pthread_rwlock_rdlock(&r->lock);
	v->s = NULL;
	v->rc = r->open_rc;
	v->path = r->path;
	v->why = r->damage;
	if (__builtin_expect(r->s == NULL || r->closed, 0) && r->mode == READER_SHARED) {
		pthread_rwlock_unlock(&r->lock);
		pthread_rwlock_wrlock(&r->lock);
		if (r->s == NULL) {
			v->path = wanted(r, param_path);
			v->rc = try_open(r, v->path);
		} else {
			reopen_closed(r);
			v->rc = r->open_rc;
		}
		pthread_rwlock_unlock(&r->lock);
		pthread_rwlock_rdlock(&r->lock);
	}
	if (r->s == NULL || r->closed)
		return v->rc;
	v->path = r->path;
	if ((v->rc = refusal(r, param_path, v)) != 0)
		return v->rc;
	unsigned gen = r->gen;
	if (txn && __builtin_expect((v->rc = snapshot(r, txn)) == LMT_EREPLACED, 0) &&
	    follow_now(r, gen)) {
		/* A compacted file was followed: the snapshot again, on it. */
		v->rc = r->closed ? r->open_rc : (v->rc = refusal(r, param_path, v)) != 0 ? v->rc :
		    snapshot(r, txn);
	}
	if (txn && v->rc != 0) {
		if (v->rc == LMT_EREPLACED)
			v->why = store_check_replaced_text();
		return v->rc;
	}
	v->s = r->s;
	return 0;
}

void
reader_end(reader *r, MDB_txn *txn)
{
	if (txn)
		mdb_txn_reset(txn);
	pthread_rwlock_unlock(&r->lock);
	if (r->mode == READER_OWNER && atomic_load(&r->faulted) && r->s) {
		pthread_rwlock_wrlock(&r->lock);
		owner_damaged(r, FAULT_WRITTEN);
		pthread_rwlock_unlock(&r->lock);
	}
}

/* guarded(), set up here rather than called: it is on every request's path. */
int
reader_guard(reader *r, struct reader_view *v, void (*fn)(void *arg), void *arg)
{
	if (sigsetjmp(bus_jmp, 0) == 0) {
		bus_armed = 1;
		fn(arg);
		bus_armed = 0;
		return 0;
	}
	atomic_store(&r->faulted, 1);
	v->s = NULL;
	v->rc = LMT_EDAMAGED;
	v->why = r->mode == READER_OWNER ? FAULT_WRITTEN : FAULT_READ;
	return LMT_EDAMAGED;
}

/* fn's call in reader_read, for guarded(). */
struct read_call {
	void (*fn)(store *s, MDB_txn *txn, void *arg);
	store *s;
	MDB_txn *txn;
	void *arg;
};

static void
read_call(void *arg)
{
	struct read_call *c = arg;

	c->fn(c->s, c->txn, c->arg);
}

int
reader_read(reader *r, void (*fn)(store *s, MDB_txn *txn, void *arg), void *arg)
{
	struct read_call c = { fn, NULL, NULL, arg };
	int rc;

	/* txn_gen is the kept snapshot's (reader_begin's): this one is not kept. */
	unsigned kept_gen = txn_gen;

	pthread_rwlock_rdlock(&r->lock);
	unsigned gen = r->gen;
	if (r->s == NULL || r->closed || r->damaged || r->replaced || atomic_load(&r->faulted)) {
		pthread_rwlock_unlock(&r->lock);
		return LMT_EDAMAGED;
	}
	c.s = r->s;
	if ((rc = feed_refresh(r->s)) == 0 && (rc = snapshot(r, &c.txn)) == LMT_EREPLACED &&
	    follow_now(r, gen)) {
		rc = r->closed || r->replaced ? LMT_EDAMAGED : snapshot(r, &c.txn);
	}
	if (rc == 0) {
		if (guarded(r, read_call, &c))
			rc = LMT_EDAMAGED;
	}
	if (c.txn)
		mdb_txn_abort(c.txn);
	txn_gen = kept_gen;
	pthread_rwlock_unlock(&r->lock);
	return rc;
}

/* ---- the check ---- */

/* A data.mdb shrunk while open is answered 503 at once, and served again once whole. */
static void
check_size(reader *r)
{
	pthread_rwlock_rdlock(&r->lock);
	if (r->s == NULL || r->closed) {
		pthread_rwlock_unlock(&r->lock);
		return;
	}
	const char *why;
	int bad = guarded_check(r, store_check_size, &why) == LMT_EDAMAGED;
	int change = bad != r->damaged || atomic_load(&r->faulted);
	pthread_rwlock_unlock(&r->lock);
	if (!change)
		return;
	pthread_rwlock_wrlock(&r->lock);
	if (bad && !r->damaged) {
		snprintf(r->damage, sizeof(r->damage), "%s", why);
		logline(r, "the store at %s is damaged: %s; answering 503", r->path, r->damage);
	} else if (!bad && (r->damaged || atomic_load(&r->faulted))) {
		logline(r, "the store at %s can be read again", r->path);
	}
	r->damaged = bad;
	atomic_store(&r->faulted, 0);
	pthread_rwlock_unlock(&r->lock);
}

/*
 * A data file copied or moved over the store while this process has it open: answered 503
 * (store_check_replaced()) while it is so.  LMDB's lock file keeps counting the
 * transactions of the file it was set up from until every process that has the store open
 * closes it, so this lasts until they all are stopped, this one too; `lmtasks restore` is
 * the way that needs no stop.
 */
static void
check_replaced(reader *r)
{
	char text[sizeof(r->replaced_why)] = "";

	pthread_rwlock_rdlock(&r->lock);
	if (r->s == NULL || r->closed || r->damaged || atomic_load(&r->faulted)) {
		pthread_rwlock_unlock(&r->lock);
		return;
	}
	/* The meta pages are read from the map: a file shrunk meanwhile faults here too. */
	const char *why;
	int rc = guarded_check(r, store_check_replaced, &why);
	if (rc == LMT_EREPLACED)
		snprintf(text, sizeof(text), "%s", store_check_replaced_text());
	int bad = rc == LMT_EREPLACED;
	int change = bad != r->replaced;
	unsigned gen = r->gen;
	pthread_rwlock_unlock(&r->lock);
	if (!change && !bad)
		return;
	pthread_rwlock_wrlock(&r->lock);
	/* Another file at the path that follows this one (a compaction): read from now on,
	 * not refused.  Asked again at every check while refused, as commits on the new file
	 * under load can hide it from one look, never from every one. */
	if (bad && (r->gen != gen || follow(r))) {
		pthread_rwlock_unlock(&r->lock);
		return;
	}
	if (!change) {
		pthread_rwlock_unlock(&r->lock);
		return;
	}
	if (bad) {
		snprintf(r->replaced_why, sizeof(r->replaced_why), "%s", text);
		logline(r, "the store at %s was replaced while open: %s; answering 503 until every "
		    "process that has it open is stopped (restore with `lmtasks restore`)", r->path,
		    text);
	} else {
		logline(r, "the store at %s can be read again", r->path);
	}
	r->replaced = bad;
	pthread_rwlock_unlock(&r->lock);
}

void
reader_check(reader *r)
{
	const char *why;

	if (r->mode == READER_OWNER) {
		pthread_rwlock_wrlock(&r->lock);
		owner_follow(r);
		if (r->s && guarded_check(r, store_check_size, &why) == LMT_EDAMAGED)
			owner_damaged(r, why);
		pthread_rwlock_unlock(&r->lock);
		return;
	}
	pthread_rwlock_wrlock(&r->lock);
	reopen_closed(r);
	pthread_rwlock_unlock(&r->lock);
	check_size(r);
	check_replaced(r);
}

void
reader_drop(reader *r, MDB_txn *txn)
{
	if (txn == NULL)
		return;
	pthread_rwlock_rdlock(&r->lock);
	/* One of an environment closed by a follow is abandoned, as snapshot() does. */
	if (txn_gen == r->gen && r->s && !r->closed)
		mdb_txn_abort(txn);
	pthread_rwlock_unlock(&r->lock);
}
