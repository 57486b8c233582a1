/* The store's environment, one per process: opening it (the databases, the schema, the
 * map size, the lock file's mode), the damage check made before any page is read, and
 * what names the store (identity, path).  One transaction's reads are in store_read.c,
 * the iterator a worker keeps in store_iter.c, the key layout in store_key.c. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lmtasks/error.h"
#include "store_internal.h"

/* A new store's map: virtual address space only; it doubles when it fills. */
#define MAP_INITIAL (sizeof(size_t) >= 8 ? ((size_t)1 << 30) : ((size_t)64 << 20))

/* Opens one database and gives it store_cmp_uid where its keys (key) or its duplicates
 * (dup) are uids. */
static int
open_dbi(MDB_txn *txn, const char *name, unsigned flags, int key, int dup, MDB_dbi *dbi)
{
	int rc = mdb_dbi_open(txn, name, flags, dbi);

	if (rc == 0 && key)
		rc = mdb_set_compare(txn, *dbi, store_cmp_uid);
	if (rc == 0 && dup)
		rc = mdb_set_dupsort(txn, *dbi, store_cmp_uid);
	return rc;
}

static int
open_dbis(store *s, MDB_txn *txn, unsigned create)
{
	static const struct {
		const char *name;
		size_t off;
		unsigned flags;
	} dbs[] = {
		{ "meta", offsetof(store, meta), 0 },
		{ "tasks", offsetof(store, tasks), 0 },
		{ "by_index", offsetof(store, by_index), MDB_DUPSORT | MDB_DUPFIXED },
		{ "by_status", offsetof(store, by_status), MDB_DUPSORT | MDB_DUPFIXED },
		{ "by_type", offsetof(store, by_type), MDB_DUPSORT | MDB_DUPFIXED },
		{ "queue", offsetof(store, queue), MDB_DUPSORT | MDB_DUPFIXED },
		{ "counts", offsetof(store, counts), 0 },
		{ "indexes", offsetof(store, indexes), 0 },
		{ "leases", offsetof(store, leases), 0 },
		{ "keys", offsetof(store, keys), 0 },
	};
	int rc;

	for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
		MDB_dbi *dbi = (MDB_dbi *)((char *)s + dbs[i].off);
		/* No meta: no store.  Meta without the rest: another version's store. */
		if ((rc = open_dbi(txn, dbs[i].name, dbs[i].flags | create, dbi == &s->tasks,
		    (dbs[i].flags & MDB_DUPSORT) != 0, dbi)) != 0)
			return rc != MDB_NOTFOUND ? rc : i == 0 ? LMT_ENOSTORE : LMT_ESCHEMA;
	}
	return store_open_optional(s, txn, create);
}

int
store_open_optional(store *s, MDB_txn *txn, unsigned create)
{
	/* A store made by 0.1.0 has no change log and no batches until its first write
	 * makes them (empty); nor webhooks, which a writer makes when it opens the store.
	 * The schedule's two (delayed and ranked tasks) come with the first task that needs
	 * them (store_sched_make()): a store without them has every enqueued task due and of
	 * priority 0. */
	struct {
		const char *name;
		MDB_dbi *dbi;
		int *open, uids, sched;
		unsigned flags;
	} dbs[] = {
		{ "changes", &s->changes, &s->has_changes, 1, 0, 0 },
		{ "batches", &s->batches, &s->have_batches, 1, 0, 0 },
		{ "webhooks", &s->webhooks, &s->has_webhooks, 0, 0, 0 },
		{ "delayed", &s->delayed, &s->has_delayed, 0, 1, 0 },
		{ "ranked", &s->ranked, &s->has_ranked, 0, 1, MDB_DUPSORT | MDB_DUPFIXED },
	};
	int rc;

	for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
		if (*dbs[i].open || (dbs[i].sched && (s->flags & STORE_NOSCHED)))
			continue;
		rc = open_dbi(txn, dbs[i].name, dbs[i].flags | (dbs[i].sched ? 0 : create), dbs[i].uids,
		    (dbs[i].flags & MDB_DUPSORT) != 0, dbs[i].dbi);
		if (rc == 0)
			*dbs[i].open = 1;
		else if (rc != MDB_NOTFOUND)
			return rc;
	}
	return 0;
}

int
store_sched_make(store *s, MDB_txn *txn)
{
	int rc;

	if ((s->flags & (STORE_RDONLY | STORE_NOSCHED)) != 0)
		return LMT_ESCHEMA;
	if (!s->has_delayed) {
		if ((rc = open_dbi(txn, "delayed", MDB_CREATE, 0, 0, &s->delayed)) != 0)
			return rc;
		s->has_delayed = 1;
		s->sched_made |= 1;
	}
	if (!s->has_ranked) {
		if ((rc = open_dbi(txn, "ranked", MDB_CREATE | MDB_DUPSORT | MDB_DUPFIXED, 0, 1,
		    &s->ranked)) != 0)
			return rc;
		s->has_ranked = 1;
		s->sched_made |= 2;
	}
	return 0;
}

int
store_sched_find(store *s, MDB_txn *txn)
{
	int rc;

	if ((s->has_delayed && s->has_ranked) || (s->flags & STORE_NOSCHED))
		return 0;
	/* store_sched_make() makes both at once: no delayed, no ranked either, and a store
	 * that never had a delayed or prioritised task pays one failed lookup a write. */
	if (!s->has_delayed) {
		if ((rc = open_dbi(txn, "delayed", 0, 0, 0, &s->delayed)) != 0)
			return rc == MDB_NOTFOUND ? 0 : rc;
		s->has_delayed = 1;
		s->sched_made |= 1;
	}
	if ((rc = open_dbi(txn, "ranked", MDB_DUPSORT | MDB_DUPFIXED, 0, 1, &s->ranked)) != 0)
		return rc == MDB_NOTFOUND ? 0 : rc;
	s->has_ranked = 1;
	s->sched_made |= 2;
	return 0;
}

int
store_sched_refresh(store *s)
{
	int *flags[] = { &s->has_changes, &s->have_batches, &s->has_webhooks, &s->has_delayed,
	    &s->has_ranked };
	int had[5];
	MDB_txn *txn;
	int rc;

	if ((s->has_delayed && s->has_ranked) || (s->flags & STORE_NOSCHED) || s->env == NULL)
		return 0;
	for (size_t i = 0; i < 5; i++)
		had[i] = *flags[i];
	if ((rc = store_txn_begin(s, MDB_RDONLY, &txn)) != 0)
		return rc;
	/* Committing, also a read-only transaction, keeps the handles it opened. */
	if ((rc = store_open_optional(s, txn, 0)) != 0)
		mdb_txn_abort(txn);
	else
		rc = mdb_txn_commit(txn);
	for (size_t i = 0; rc != 0 && i < 5; i++)
		*flags[i] = had[i];	/* the handles opened closed with the transaction */
	return rc;
}

/* Creates the databases and the meta entries of a new store, or checks an old one's. */
static int
setup(store *s, unsigned create)
{
	MDB_txn *txn;
	MDB_val key = { 6, "schema" }, val;
	int rc;

	if ((rc = store_txn_begin(s, create ? 0 : MDB_RDONLY, &txn)) != 0)
		return rc;
	if ((rc = open_dbis(s, txn, create)) != 0)
		goto fail;
	rc = mdb_get(txn, s->meta, &key, &val);
	if (rc == MDB_NOTFOUND && create) {
		unsigned char schema[4] = { STORE_SCHEMA, 0, 0, 0 }, next[8] = { 0 };
		MDB_val sv = { 4, schema }, nk = { 8, "next_uid" }, nv = { 8, next };
		if ((rc = mdb_put(txn, s->meta, &key, &sv, 0)) != 0 ||
		    (rc = mdb_put(txn, s->meta, &nk, &nv, 0)) != 0)
			goto fail;
	} else if (rc == MDB_NOTFOUND) {
		rc = LMT_ENOSTORE;
		goto fail;
	} else if (rc != 0) {
		goto fail;
	} else if (val.mv_size != 4) {
		rc = LMT_ENOSTORE;
		goto fail;
	} else if (((unsigned char *)val.mv_data)[0] > STORE_SCHEMA) {
		rc = LMT_ESCHEMA;
		goto fail;
	}
	/* Committing, also a read-only transaction, keeps the database handles open. */
	return mdb_txn_commit(txn);
fail:
	mdb_txn_abort(txn);
	return rc;
}

/* A writer of a store made before the change log makes it, so every write can log.
 * Checked as every write is (store_check_write_follow()): *moved 1 (and an error) when a
 * compacted file was swapped in since the open, which is then to be opened instead. */
static int
make_optional(store *s, int *moved)
{
	MDB_txn *txn;
	int rc;

	if ((rc = store_txn_begin(s, 0, &txn)) != 0)
		return rc;
	if ((rc = store_check_write_follow(s, txn)) == 1) {
		*moved = 1;
		rc = LMT_EREPLACED;
	}
	if (rc != 0 || (rc = store_open_optional(s, txn, MDB_CREATE)) != 0) {
		mdb_txn_abort(txn);
		s->has_changes = s->have_batches = s->has_webhooks = 0;
		s->has_delayed = s->has_ranked = 0;
		return rc;
	}
	if ((rc = mdb_txn_commit(txn)) != 0) {
		s->has_changes = s->have_batches = s->has_webhooks = 0;
		s->has_delayed = s->has_ranked = 0;
	}
	return rc;
}

/* Whether PATH/lock.mdb exists before LMDB opens it (and creates it if not). */
static int
lock_exists(const char *path)
{
	char lock[PATH_MAX];
	struct stat st;

	if (snprintf(lock, sizeof(lock), "%s/lock.mdb", path) >= (int)sizeof(lock))
		return 1;
	return stat(lock, &st) == 0;
}

/* LMDB creates the lock file with MODE less the umask: give it MODE itself, or a web
 * server's user in the store's group could not write its reader slot.  Only the file's
 * owner may: should another process have made it meanwhile, its mode stays. */
static void
lock_set_mode(const char *path, unsigned mode)
{
	char lock[PATH_MAX];

	if (snprintf(lock, sizeof(lock), "%s/lock.mdb", path) < (int)sizeof(lock))
		(void)chmod(lock, (mode_t)mode);
}

int
store_map_size_env(size_t *size)
{
	const char *env = getenv("LMTASKS_MAPSIZE");
	uint64_t v = 0;

	if (env == NULL || *env == '\0')
		return 0;
	for (const char *p = env; *p; p++) {
		if (*p < '0' || *p > '9' || v > STORE_MAP_MAX)
			return LMT_EINVAL;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (v < STORE_MAP_MIN || v > STORE_MAP_MAX || v > SIZE_MAX)
		return LMT_EINVAL;
	*size = (size_t)v;
	return 0;
}

/* LMDB's meta pages: the first two pages of data.mdb, 4096 bytes each on this platform. */
#define META_BYTES (2 * 4096)

static __thread char damage[PATH_MAX + 160];

const char *
store_damage_text(void)
{
	return damage;
}

/* Says what is wrong with the data file; returns LMT_EDAMAGED. */
static int
damaged(const char *data, long long have, unsigned long long want, const char *what)
{
	snprintf(damage, sizeof(damage), "%s is %lld bytes, shorter than the %llu bytes %s",
	    data, have, want, what);
	return LMT_EDAMAGED;
}

/* A data.mdb shorter than two pages: damaged when empty or when it starts as LMDB's do
 * (the meta page's magic number after the 16-byte page header); else no store at all. */
static int
short_file(const char *data, long long size)
{
	unsigned char head[20];
	uint32_t magic = 0;
	FILE *f;

	if (size > 0 && (f = fopen(data, "rb")) != NULL) {
		if (fread(head, 1, sizeof(head), f) == sizeof(head))
			memcpy(&magic, head + 16, 4);
		fclose(f);
		if (magic != 0xBEEFC0DE)
			return LMT_ENOSTORE;
	}
	return damaged(data, size, META_BYTES, "of its two meta pages");
}

/*
 * The file's size and the newest meta page are read at two moments, and a writer in
 * another process may commit between them.  LMDB writes a commit's pages (growing the
 * file) before the meta page that counts them, and never shrinks the file, so a size
 * taken after the meta is at least what that meta says on a healthy store, however many
 * commits come between.  Hence the order: a first fstat only to know the meta pages can
 * be read from the map, then the meta, then the size compared.  (The other order --
 * size, then meta -- took a commit in between for a truncation: an old size against a
 * new meta.)
 */
int
store_check_size(store *s)
{
	MDB_envinfo info;
	MDB_stat st;
	struct stat fs;
	mdb_filehandle_t fd;
	char data[PATH_MAX];
	int rc;

	if ((rc = store_data_file(s, data, sizeof(data), &fd)) != 0)
		return rc;
	if (fstat(fd, &fs) != 0)
		return errno;
	/* The meta pages are read from the map: they must be there first. */
	if (fs.st_size < META_BYTES)
		return damaged(data, (long long)fs.st_size, META_BYTES, "of its two meta pages");
	if ((rc = mdb_env_info(s->env, &info)) != 0 || (rc = mdb_env_stat(s->env, &st)) != 0)
		return rc;
	STORE_TEST_HOOK(s);
	if (fstat(fd, &fs) != 0)
		return errno;
	unsigned long long want = ((unsigned long long)info.me_last_pgno + 1) * st.ms_psize;
	if ((unsigned long long)fs.st_size < want)
		return damaged(data, (long long)fs.st_size, want, "its meta pages say it holds");
	return 0;
}

int
store_open(const char *path, unsigned flags, unsigned mode, store **out)
{
	char data[PATH_MAX];
	struct stat st;
	store *s;
	int rc, dead, had_lock, moved = 0;
	size_t map = MAP_INITIAL;

	if (snprintf(data, sizeof(data), "%s/data.mdb", path) >= (int)sizeof(data))
		return ENAMETOOLONG;
	/* A bad map size is refused before anything is made. */
	if ((flags & STORE_CREATE) && (rc = store_map_size_env(&map)) != 0)
		return rc;
	if (flags & STORE_CREATE) {
		/* Whoever may read the files may also enter the directory. */
		unsigned m = mode ? mode : 0644;
		mode_t dir = 0700 | (m & 0060 ? 0050 : 0) | (m & 0006 ? 0005 : 0);
		if (mkdir(path, dir) != 0 && errno != EEXIST)
			return errno;
	} else if (stat(data, &st) != 0) {
		return errno == ENOENT || errno == ENOTDIR ? LMT_ENOSTORE : errno;
	} else if (S_ISREG(st.st_mode) && st.st_size < META_BYTES) {
		/* LMDB would say "Bad file descriptor", or make a new store over it. */
		return short_file(data, (long long)st.st_size);
	}
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return ENOMEM;
	s->flags = flags;
	if ((rc = (s->path = strdup(path)) ? mdb_env_create(&s->env) : ENOMEM) != 0)
		goto fail_free;
	mdb_env_set_maxdbs(s->env, 16);
	/* LMDB's default: a small lock file, which a CGI request that is the store's only
	 * reader sets up anew each time. */
	mdb_env_set_maxreaders(s->env, 126);
	if ((flags & STORE_CREATE) && stat(data, &st) != 0)
		mdb_env_set_mapsize(s->env, map);
	/* A lock file made again later gets the data file's mode, with group write where
	 * the group may read (readers write their slot in it). */
	if (mode == 0 && stat(data, &st) == 0)
		mode = (st.st_mode & 0777) | (st.st_mode & 0040 ? 0020 : 0);
	if (mode == 0)
		mode = 0644;
	had_lock = lock_exists(path);
	rc = mdb_env_open(s->env, path, MDB_NOTLS | (flags & STORE_RDONLY ? MDB_RDONLY : 0),
	    (mdb_mode_t)mode);
	if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH)
		rc = LMT_ENOSTORE;
	if (rc != 0)
		goto fail_env;
	if (!had_lock)
		lock_set_mode(path, mode);
	/* Before any page is touched: a short file would fault (SIGBUS) on the first. */
	if ((rc = store_check_size(s)) != 0)
		goto fail_env;
	/* A data file copied over the store while another process has it open is read at
	 * the meta page the lock file picks: refused before anything is read or written. */
	if ((rc = store_check_replaced(s)) != 0)
		goto fail_env;
	mdb_reader_check(s->env, &dead);
	mdb_filehandle_t fd;
	if (mdb_env_get_fd(s->env, &fd) == 0 && fstat(fd, &st) == 0)
		s->ident = (uint64_t)st.st_dev << 40 ^ (uint64_t)st.st_ino;
	if ((rc = setup(s, flags & STORE_CREATE ? MDB_CREATE : 0)) != 0)
		goto fail_env;
	if (!(flags & STORE_RDONLY) && (!s->has_changes || !s->have_batches || !s->has_webhooks) &&
	    (rc = make_optional(s, &moved)) != 0)
		goto fail_env;
	*out = s;
	return 0;
fail_env:
	mdb_env_close(s->env);
fail_free:
	free(s->path);
	free(s);
	/* A compacted file swapped in while it opened: opened again, on that one. */
	return moved ? store_open(path, flags & ~STORE_CREATE, mode, out) : rc;
}

int
store_reopen(store *s)
{
	char path[PATH_MAX];
	const struct progress *p = s->progress;
	unsigned gen = s->gen;
	store *n;
	int rc;

	/* The path kept, not the environment's: a reopen that failed left none. */
	if (snprintf(path, sizeof(path), "%s", s->path) >= (int)sizeof(path))
		return ENAMETOOLONG;
	/* Closed before the other is opened: closing an environment lets go of the process's
	 * locks on lock.mdb, which the other would then hold without knowing. */
	if (s->env)
		mdb_env_close(s->env);
	s->env = NULL;
	if ((rc = store_open(path, s->flags & ~STORE_CREATE, 0, &n)) != 0)
		return rc;
	free(s->path);
	*s = *n;
	free(n);
	s->progress = p;
	s->gen = gen + 1;
	return 0;
}

int
store_read_follow(store *s, MDB_txn **txn)
{
	int rc;

	/* A follow that could not open the new file left none: tried again. */
	if (s->env == NULL && (rc = store_reopen(s)) != 0)
		return rc;
	for (int attempt = 0;; attempt++) {
		if ((rc = store_txn_begin(s, MDB_RDONLY, txn)) != 0)
			return rc;
		if ((rc = store_check_snapshot(s, *txn)) == 0)
			return 0;
		mdb_txn_abort(*txn);
		/* Commits on a compacted file swapped in since: read there. */
		if (attempt > 0 || store_follows(s) != 1 || store_reopen(s) != 0)
			return rc;
	}
}

int
store_follow(store *s)
{
	int rc;

	if (s->env == NULL)
		return store_reopen(s);
	rc = store_follows(s);
	return rc == 1 ? store_reopen(s) : rc;
}

void
store_set_progress(store *s, const struct progress *p)
{
	s->progress = p;
}

const struct progress *
store_progress(const store *s)
{
	return s->progress;
}

void
store_close(store *s)
{
	if (s == NULL)
		return;
	if (s->env)
		mdb_env_close(s->env);
	free(s->path);
	free(s);
}

uint64_t
store_ident(store *s)
{
	return s->ident;
}

MDB_env *
store_env(store *s)
{
	return s->env;
}

int
store_refresh_map(store *s)
{
	return mdb_env_set_mapsize(s->env, 0);
}

int
store_txn_begin(store *s, unsigned flags, MDB_txn **txn)
{
	int rc = mdb_txn_begin(s->env, NULL, flags, txn);

	if (rc == MDB_MAP_RESIZED) {
		if ((rc = store_refresh_map(s)) != 0)
			return rc;
		rc = mdb_txn_begin(s->env, NULL, flags, txn);
	}
	return rc;
}

const char *
store_path(store *s)
{
	return s->path;
}

int
store_has_batches(store *s)
{
	return s->have_batches;
}

/* The data file's checks (store_replaced.c) on this store's environment and path. */
int
store_check_snapshot(store *s, MDB_txn *txn)
{
	return replaced_snapshot(s->env, s->path, txn);
}

int
store_check_replaced(store *s)
{
	return replaced_check(s->env, s->path);
}

int
store_check_write(store *s, MDB_txn *txn)
{
	return replaced_check_write(s->env, s->path, txn);
}

int
store_follows(store *s)
{
	return replaced_follows(s->env, s->path);
}

int
store_check_write_follow(store *s, MDB_txn *txn)
{
	return replaced_check_write_follow(s->env, s->path, txn);
}

int
store_data_file(store *s, char *data, size_t size, mdb_filehandle_t *fd)
{
	return replaced_data_file(s->env, s->path, data, size, fd);
}
