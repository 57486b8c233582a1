/* Opening the store, reads, counts and iteration: everything the read-only responder links. */
#include "config.h"

#include <endian.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lmtasks/codec.h"
#include "lmtasks/error.h"
#include "store_internal.h"

/* A new store's map: virtual address space only; it doubles when it fills. */
#define MAP_INITIAL (sizeof(size_t) >= 8 ? ((size_t)1 << 30) : ((size_t)64 << 20))

/* Union keys walked with a cursor each; a union of more keys seeks the rest again. */
#define ITER_SLOTS 8

/* How far (in uids) a fetch steps from the last one instead of searching. */
#define FETCH_STEPS 2

/* A cursor kept across requests: opened once, renewed on first use after a renew. */
struct slot {
	MDB_cursor *c;
	unsigned gen;
};

/*
 * Counts already taken in this snapshot.  A transaction id names one committed state of
 * the store, so a count found under it holds for as long as the snapshot is that one:
 * pollers asking the same page again before the next write get the planner's counts and
 * the total without reading them again.
 */
#define MEMO_N 16
#define MEMO_KEY 120

struct memo {
	size_t txnid;
	unsigned n, next;
	struct {
		uint64_t value;
		size_t len;
		unsigned char key[MEMO_KEY];
	} e[MEMO_N];
};

struct store_iter {
	store *s;
	MDB_txn *txn;
	unsigned gen;		/* bumped by each store_iter_renew() */
	struct slot all;	/* the walk over every task */
	struct slot fetch;	/* tasks by uid, near the last one */
	struct slot counts;
	struct memo memo;
	int memo_ok;		/* a renewed, so read-only, snapshot: counts cannot change */
	uint64_t fetch_at;	/* the uid the fetch cursor is on, or TASK_NO_UID */
	unsigned fetch_gen;
	struct slot seq[3][ITER_SLOTS + 1];	/* per sequence: the keys, then a spare */
	MDB_cursor *active;
	int dup;		/* walking the dups of one key */
	int descending;
};

void
store_key_uid(unsigned char out[8], uint64_t uid)
{
	for (int i = 7; i >= 0; i--) {
		out[i] = (unsigned char)uid;
		uid >>= 8;
	}
}

uint64_t
store_uid_key(const void *p)
{
	const unsigned char *b = p;
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | b[i];
	return v;
}

uint64_t
store_get_u64le(const void *p)
{
	const unsigned char *b = p;
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | b[i];
	return v;
}

void
store_put_u64le(void *p, uint64_t v)
{
	unsigned char *b = p;

	for (int i = 0; i < 8; i++, v >>= 8)
		b[i] = (unsigned char)v;
}

void
store_lease_key(unsigned char out[16], int64_t until, uint64_t uid)
{
	store_key_uid(out, (uint64_t)until);
	store_key_uid(out + 8, uid);
}

size_t
store_count_key(unsigned char *out, struct task_str index, enum task_status status,
    struct task_str type)
{
	size_t n = 0;

	if (index.ptr)
		memcpy(out, index.ptr, index.len), n = index.len;
	out[n++] = '\0';
	out[n++] = (unsigned char)status;
	memcpy(out + n, type.ptr, type.len);
	return n + type.len;
}

size_t
store_queue_key(unsigned char *out, struct task_str index, struct task_str type)
{
	size_t n = 0;

	if (index.ptr)
		memcpy(out, index.ptr, index.len), n = index.len;
	out[n++] = '\0';
	memcpy(out + n, type.ptr, type.len);
	return n + type.len;
}

/* Uids (task and batch keys, the indexes' duplicates) and sequences are 8-byte big-endian
 * numbers: compared as one number each, in a few instructions, instead of by LMDB's
 * default (mdb_cmp_memn, a call to memcmp).  The order is memcmp's for every input, 8
 * bytes or not, so stores are unchanged and a program comparing by memcmp (0.1.0, the
 * CLI's other builds, mdb_dump) sees the same order. */
static int
cmp_uid(const MDB_val *a, const MDB_val *b)
{
	if (a->mv_size == 8 && b->mv_size == 8) {
		uint64_t x, y;
		memcpy(&x, a->mv_data, 8);
		memcpy(&y, b->mv_data, 8);
		x = be64toh(x);
		y = be64toh(y);
		return (x > y) - (x < y);
	}
	size_t n = a->mv_size < b->mv_size ? a->mv_size : b->mv_size;
	int d = n ? memcmp(a->mv_data, b->mv_data, n) : 0;
	return d ? d : (a->mv_size > b->mv_size) - (a->mv_size < b->mv_size);
}

/* Opens one database and gives it cmp_uid where its keys (key) or its duplicates (dup)
 * are uids. */
static int
open_dbi(MDB_txn *txn, const char *name, unsigned flags, int key, int dup, MDB_dbi *dbi)
{
	int rc = mdb_dbi_open(txn, name, flags, dbi);

	if (rc == 0 && key)
		rc = mdb_set_compare(txn, *dbi, cmp_uid);
	if (rc == 0 && dup)
		rc = mdb_set_dupsort(txn, *dbi, cmp_uid);
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
	int rc;

	/* A store made by 0.1.0 has no change log and no batches until its first write
	 * makes them (empty). */
	if (!s->has_changes) {
		rc = open_dbi(txn, "changes", create, 1, 0, &s->changes);
		if (rc == 0)
			s->has_changes = 1;
		else if (rc != MDB_NOTFOUND)
			return rc;
	}
	if (!s->have_batches) {
		rc = open_dbi(txn, "batches", create, 1, 0, &s->batches);
		if (rc == 0)
			s->have_batches = 1;
		else if (rc != MDB_NOTFOUND)
			return rc;
	}
	/* Nor webhooks: a writer makes the database when it opens the store. */
	if (!s->has_webhooks) {
		rc = mdb_dbi_open(txn, "webhooks", create, &s->webhooks);
		if (rc == 0)
			s->has_webhooks = 1;
		else if (rc != MDB_NOTFOUND)
			return rc;
	}
	return 0;
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

/* A writer of a store made before the change log makes it, so every write can log. */
static int
make_optional(store *s)
{
	MDB_txn *txn;
	int rc;

	if ((rc = store_txn_begin(s, 0, &txn)) != 0)
		return rc;
	if ((rc = store_open_optional(s, txn, MDB_CREATE)) != 0) {
		mdb_txn_abort(txn);
		s->has_changes = s->have_batches = s->has_webhooks = 0;
		return rc;
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		s->has_changes = s->have_batches = s->has_webhooks = 0;
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
	const char *dir = "?";
	char data[PATH_MAX];
	int rc;

	mdb_env_get_path(s->env, &dir);
	snprintf(data, sizeof(data), "%s/data.mdb", dir);
	if ((rc = mdb_env_get_fd(s->env, &fd)) != 0)
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
	int rc, dead, had_lock;

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
	if ((rc = mdb_env_create(&s->env)) != 0)
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
	    (rc = make_optional(s)) != 0)
		goto fail_env;
	*out = s;
	return 0;
fail_env:
	mdb_env_close(s->env);
fail_free:
	free(s);
	return rc;
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
	mdb_env_close(s->env);
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

int
store_get(store *s, MDB_txn *txn, uint64_t uid, struct task *t)
{
	unsigned char kb[8];
	MDB_val key = { 8, kb }, val;
	int rc;

	store_key_uid(kb, uid);
	if ((rc = mdb_get(txn, s->tasks, &key, &val)) != 0)
		return rc;
	t->uid = uid;
	return codec_decode(val.mv_data, val.mv_size, t);
}

int
store_index_exists(store *s, MDB_txn *txn, struct task_str index)
{
	MDB_val key = { index.len, (void *)index.ptr }, val;

	if (index.ptr == NULL || index.len == 0 || index.len > TASK_INDEX_MAX)
		return MDB_NOTFOUND;
	return mdb_get(txn, s->indexes, &key, &val);
}

int
store_next_uid(store *s, MDB_txn *txn, uint64_t *uid)
{
	MDB_val key = { 8, "next_uid" }, val;
	int rc;

	if ((rc = mdb_get(txn, s->meta, &key, &val)) != 0)
		return rc == MDB_NOTFOUND ? LMT_ECORRUPT : rc;
	if (val.mv_size != 8)
		return LMT_ECORRUPT;
	*uid = store_get_u64le(val.mv_data);
	return 0;
}

static MDB_dbi
seq_dbi(store *s, enum store_seq seq)
{
	switch (seq) {
	case STORE_SEQ_INDEX: return s->by_index;
	case STORE_SEQ_STATUS: return s->by_status;
	case STORE_SEQ_TYPE: return s->by_type;
	default: return s->tasks;
	}
}

int
store_count(store *s, MDB_txn *txn, enum store_seq seq, const void *key, size_t keylen,
    uint64_t *n)
{
	MDB_cursor *cur;
	MDB_val k = { keylen, (void *)key }, v;
	size_t count = 0;
	int rc;

	if (seq == STORE_SEQ_ALL) {
		MDB_stat st;
		if ((rc = mdb_stat(txn, s->tasks, &st)) != 0)
			return rc;
		*n = st.ms_entries;
		return 0;
	}
	if (keylen == 0 || keylen > TASK_INDEX_MAX) {
		*n = 0;
		return 0;
	}
	if ((rc = mdb_cursor_open(txn, seq_dbi(s, seq), &cur)) != 0)
		return rc;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET);
	if (rc == 0)
		rc = mdb_cursor_count(cur, &count);
	else if (rc == MDB_NOTFOUND)
		rc = 0;
	mdb_cursor_close(cur);
	*n = count;
	return rc;
}

static int
str_eq(struct task_str a, const unsigned char *p, size_t len)
{
	return a.len == len && (len == 0 || memcmp(a.ptr, p, len) == 0);
}

static int
in_set(const struct task_str *set, size_t n, const unsigned char *p, size_t len)
{
	if (n == 0)
		return 1;
	for (size_t i = 0; i < n; i++) {
		if (str_eq(set[i], p, len))
			return 1;
	}
	return 0;
}

/* Adds up the counts under one index prefix (index \0) that pass the status and type sets. */
static int
sum_prefix(MDB_cursor *cur, struct task_str index, unsigned status_mask,
    const struct task_str *types, size_t ntypes, uint64_t *total)
{
	unsigned char kb[TASK_INDEX_MAX + 1];
	MDB_val k = { index.len + 1, kb }, v;
	int rc, op = MDB_SET_RANGE;

	memcpy(kb, index.ptr, index.len);
	kb[index.len] = '\0';
	while ((rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
		const unsigned char *p = k.mv_data;
		op = MDB_NEXT;
		if (k.mv_size < index.len + 2 || memcmp(p, kb, index.len + 1) != 0)
			break;
		if (v.mv_size != 8)
			return LMT_ECORRUPT;
		if (status_mask && !(status_mask & (1u << p[index.len + 1])))
			continue;
		if (!in_set(types, ntypes, p + index.len + 2, k.mv_size - index.len - 2))
			continue;
		*total += store_get_u64le(v.mv_data);
	}
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int
count_sets(MDB_cursor *cur, const struct task_str *indexes, size_t nindexes,
    unsigned status_mask, const struct task_str *types, size_t ntypes, uint64_t *n)
{
	uint64_t total = 0;
	int rc = 0;

	if (nindexes == 0)
		rc = sum_prefix(cur, STORE_ALL_INDEXES, status_mask, types, ntypes, &total);
	for (size_t i = 0; i < nindexes && rc == 0; i++) {
		/* The same index twice in a list counts once. */
		if (i > 0 && in_set(indexes, i, (const unsigned char *)indexes[i].ptr, indexes[i].len))
			continue;
		rc = sum_prefix(cur, indexes[i], status_mask, types, ntypes, &total);
	}
	if (rc == 0)
		*n = total;
	return rc;
}

int
store_count_sets(store *s, MDB_txn *txn, const struct task_str *indexes, size_t nindexes,
    unsigned status_mask, const struct task_str *types, size_t ntypes, uint64_t *n)
{
	MDB_cursor *cur;
	int rc;

	if ((rc = mdb_cursor_open(txn, s->counts, &cur)) != 0)
		return rc;
	rc = count_sets(cur, indexes, nindexes, status_mask, types, ntypes, n);
	mdb_cursor_close(cur);
	return rc;
}

int
store_count_match(store *s, MDB_txn *txn, struct task_str index, int status,
    struct task_str type, uint64_t *n)
{
	return store_count_sets(s, txn, &index, index.ptr ? 1 : 0,
	    status >= 0 ? 1u << status : 0, &type, type.ptr ? 1 : 0, n);
}

/* The first dup of one queue key, or MDB_NOTFOUND. */
static int
queue_first(MDB_cursor *cur, MDB_val *k, uint64_t *uid)
{
	MDB_val v;
	int rc = mdb_cursor_get(cur, k, &v, MDB_SET);

	if (rc == 0 && v.mv_size != 8)
		return LMT_ECORRUPT;
	if (rc == 0)
		*uid = store_uid_key(v.mv_data);
	return rc;
}

int
store_find_enqueued(store *s, MDB_txn *txn, struct task_str index, struct task_str type,
    uint64_t *uid)
{
	unsigned char kb[COUNT_KEY_MAX];
	MDB_cursor *cur;
	MDB_val k, v;
	uint64_t best = TASK_NO_UID;
	int rc;

	if (index.ptr && type.ptr) {
		k.mv_size = store_queue_key(kb, index, type);
		k.mv_data = kb;
		if ((rc = mdb_cursor_open(txn, s->queue, &cur)) != 0)
			return rc;
		rc = queue_first(cur, &k, uid);
		mdb_cursor_close(cur);
		return rc;
	}
	if (!index.ptr && !type.ptr) {
		unsigned char st = TASK_ENQUEUED;
		k.mv_size = 1;
		k.mv_data = &st;
		if ((rc = mdb_cursor_open(txn, s->by_status, &cur)) != 0)
			return rc;
		rc = queue_first(cur, &k, uid);
		mdb_cursor_close(cur);
		return rc;
	}
	/* One of the two: the smallest first dup over the matching queue keys. */
	if ((rc = mdb_cursor_open(txn, s->queue, &cur)) != 0)
		return rc;
	int op = MDB_FIRST;
	if (index.ptr) {
		memcpy(kb, index.ptr, index.len);
		kb[index.len] = '\0';
		k.mv_size = index.len + 1;
		k.mv_data = kb;
		op = MDB_SET_RANGE;
	}
	while ((rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
		const unsigned char *p = k.mv_data, *z = memchr(p, '\0', k.mv_size);
		op = MDB_NEXT_NODUP;
		if (z == NULL || v.mv_size != 8) {
			rc = LMT_ECORRUPT;
			break;
		}
		if (index.ptr && !str_eq(index, p, (size_t)(z - p)))
			break;
		if (type.ptr && !str_eq(type, z + 1, k.mv_size - (size_t)(z - p) - 1))
			continue;
		uint64_t u = store_uid_key(v.mv_data);
		if (u < best)
			best = u;
	}
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND && rc != 0)
		return rc;
	if (best == TASK_NO_UID)
		return MDB_NOTFOUND;
	*uid = best;
	return 0;
}

int
store_index_walk(store *s, MDB_txn *txn, int (*fn)(void *ctx, struct task_str index,
    int64_t created_at), void *ctx)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, op = MDB_FIRST;

	if ((rc = mdb_cursor_open(txn, s->indexes, &cur)) != 0)
		return rc;
	while ((rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
		op = MDB_NEXT;
		if (v.mv_size != 8 || k.mv_size > TASK_INDEX_MAX) {
			rc = LMT_ECORRUPT;
			break;
		}
		struct task_str idx = { k.mv_data, k.mv_size };
		if ((rc = fn(ctx, idx, (int64_t)store_get_u64le(v.mv_data))) != 0)
			break;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int
store_stats(store *s, MDB_txn *txn, struct store_stats *st)
{
	MDB_envinfo info;
	MDB_stat ms;
	int rc;

	memset(st, 0, sizeof(*st));
	if ((rc = mdb_stat(txn, s->tasks, &ms)) != 0)
		return rc;
	st->tasks = ms.ms_entries;
	st->page_size = ms.ms_psize;
	if ((rc = mdb_stat(txn, s->indexes, &ms)) != 0)
		return rc;
	st->indexes = ms.ms_entries;
	if ((rc = store_next_uid(s, txn, &st->next_uid)) != 0)
		return rc;
	for (int i = 0; i < TASK_NSTATUS; i++) {
		unsigned char b = (unsigned char)i;
		if ((rc = store_count(s, txn, STORE_SEQ_STATUS, &b, 1, &st->by_status[i])) != 0)
			return rc;
	}
	mdb_env_info(s->env, &info);
	st->map_size = info.me_mapsize;
	st->used_bytes = (uint64_t)(info.me_last_pgno + 1) * st->page_size;
	return 0;
}

int
store_iter_open(store *s, MDB_txn *txn, store_iter **out)
{
	store_iter *it = calloc(1, sizeof(*it));

	if (it == NULL)
		return ENOMEM;
	it->s = s;
	it->txn = txn;
	*out = it;
	return 0;
}

int
store_iter_renew(store_iter *it, MDB_txn *txn)
{
	it->txn = txn;
	it->active = NULL;
	it->gen++;
	it->memo_ok = 1;
	return 0;
}

static int
uid_of(const MDB_val *v, uint64_t *uid)
{
	if (v->mv_size != 8)
		return LMT_ECORRUPT;
	*uid = store_uid_key(v->mv_data);
	return 0;
}

/* The slot's cursor on dbi, opened or renewed for the iterator's transaction. */
static int
slot_cursor(store_iter *it, struct slot *sl, MDB_dbi dbi, MDB_cursor **out)
{
	int rc;

	if (sl->c == NULL) {
		if ((rc = mdb_cursor_open(it->txn, dbi, &sl->c)) != 0)
			return rc;
	} else if (sl->gen != it->gen && (rc = mdb_cursor_renew(it->txn, sl->c)) != 0) {
		return rc;
	}
	sl->gen = it->gen;
	*out = sl->c;
	return 0;
}

static void
slot_close(struct slot *sl)
{
	if (sl->c)
		mdb_cursor_close(sl->c);
}

int
store_iter_get(store_iter *it, struct task *t)
{
	MDB_val k, v;
	int rc;

	if (it->active == NULL || it->dup)
		return LMT_EINVAL;
	if ((rc = mdb_cursor_get(it->active, &k, &v, MDB_GET_CURRENT)) != 0)
		return rc;
	if (k.mv_size != 8)
		return LMT_ECORRUPT;
	t->uid = store_uid_key(k.mv_data);
	return codec_decode(v.mv_data, v.mv_size, t);
}

int
store_iter_fetch(store_iter *it, uint64_t uid, struct task *t)
{
	unsigned char kb[8];
	MDB_val k = { 8, kb }, v;
	MDB_cursor *cur;
	int rc;

	if ((rc = slot_cursor(it, &it->fetch, it->s->tasks, &cur)) != 0)
		return rc;
	if (it->fetch.gen != it->fetch_gen)
		it->fetch_at = TASK_NO_UID;	/* renewed: positioned nowhere */
	it->fetch_gen = it->fetch.gen;
	uint64_t at = it->fetch_at;
	it->fetch_at = TASK_NO_UID;
	/* A few uids away from where the cursor is: stepping is cheaper than a search. */
	if (at != TASK_NO_UID && at != uid && (at > uid ? at - uid : uid - at) <= FETCH_STEPS) {
		MDB_cursor_op op = at > uid ? MDB_PREV : MDB_NEXT;
		uint64_t got;
		do {
			if ((rc = mdb_cursor_get(cur, &k, &v, op)) != 0)
				return rc;
			if ((rc = uid_of(&k, &got)) != 0)
				return rc;
		} while (op == MDB_PREV ? got > uid : got < uid);
		it->fetch_at = got;
		if (got != uid)
			return MDB_NOTFOUND;
	} else {
		/* MDB_SET on a positioned cursor looks at its page first. */
		store_key_uid(kb, uid);
		if ((rc = mdb_cursor_get(cur, &k, &v, MDB_SET)) != 0)
			return rc;
		it->fetch_at = uid;
	}
	t->uid = uid;
	return codec_decode(v.mv_data, v.mv_size, t);
}

void
store_iter_close(store_iter *it)
{
	if (it == NULL)
		return;
	slot_close(&it->all);
	slot_close(&it->fetch);
	slot_close(&it->counts);
	for (int i = 0; i < 3; i++) {
		for (int j = 0; j <= ITER_SLOTS; j++)
			slot_close(&it->seq[i][j]);
	}
	free(it);
}

/* The cursor of seq for one key slot (ALL has one); slots past ITER_SLOTS share a spare. */
static int
seq_cursor(store_iter *it, enum store_seq seq, size_t slot, MDB_cursor **out)
{
	if ((unsigned)seq > STORE_SEQ_TYPE)
		return LMT_EINVAL;
	if (seq == STORE_SEQ_ALL)
		return slot_cursor(it, &it->all, it->s->tasks, out);
	return slot_cursor(it, &it->seq[seq - 1][slot < ITER_SLOTS ? slot : ITER_SLOTS],
	    seq_dbi(it->s, seq), out);
}

static int
seek(MDB_cursor *cur, int dup, const void *key, size_t keylen, uint64_t from, int descending,
    uint64_t *uid)
{
	unsigned char fb[8];
	MDB_val k, v;
	int rc;

	store_key_uid(fb, from);
	if (!dup) {
		k.mv_size = 8;
		k.mv_data = fb;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (descending) {
			if (rc == MDB_NOTFOUND)
				rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
			else if (rc == 0 && store_uid_key(k.mv_data) != from)
				rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
		}
		return rc ? rc : uid_of(&k, uid);
	}
	if (keylen == 0 || keylen > TASK_INDEX_MAX)
		return MDB_NOTFOUND;
	k.mv_size = keylen;
	k.mv_data = (void *)key;
	/* From the top (a list's first page, newest first): the key's last dup at once. */
	if (descending && from >= UINT64_MAX - 1) {
		if ((rc = mdb_cursor_get(cur, &k, &v, MDB_SET)) == 0)
			rc = mdb_cursor_get(cur, &k, &v, MDB_LAST_DUP);
		return rc ? rc : uid_of(&v, uid);
	}
	v.mv_size = 8;
	v.mv_data = fb;
	rc = mdb_cursor_get(cur, &k, &v, MDB_GET_BOTH_RANGE);
	if (descending) {
		if (rc == MDB_NOTFOUND) {
			k.mv_size = keylen;
			k.mv_data = (void *)key;
			if ((rc = mdb_cursor_get(cur, &k, &v, MDB_SET)) == 0)
				rc = mdb_cursor_get(cur, &k, &v, MDB_LAST_DUP);
		} else if (rc == 0 && v.mv_size == 8 && store_uid_key(v.mv_data) != from) {
			rc = mdb_cursor_get(cur, &k, &v, MDB_PREV_DUP);
		}
	}
	return rc ? rc : uid_of(&v, uid);
}

int
store_iter_seek(store_iter *it, enum store_seq seq, const void *key, size_t keylen,
    uint64_t from, int descending, uint64_t *uid)
{
	MDB_cursor *cur;
	int rc;

	if ((rc = seq_cursor(it, seq, 0, &cur)) != 0)
		return rc;
	it->active = cur;
	it->dup = seq != STORE_SEQ_ALL;
	it->descending = descending;
	return seek(cur, it->dup, key, keylen, from, descending, uid);
}

static int
step(MDB_cursor *cur, int dup, int descending, uint64_t *uid)
{
	MDB_val k, v;
	int rc;

	if (dup) {
		rc = mdb_cursor_get(cur, &k, &v, descending ? MDB_PREV_DUP : MDB_NEXT_DUP);
		return rc ? rc : uid_of(&v, uid);
	}
	rc = mdb_cursor_get(cur, &k, &v, descending ? MDB_PREV : MDB_NEXT);
	return rc ? rc : uid_of(&k, uid);
}

int
store_iter_next(store_iter *it, uint64_t *uid)
{
	if (it->active == NULL)
		return MDB_NOTFOUND;
	return step(it->active, it->dup, it->descending, uid);
}

int
store_iter_seek_key(store_iter *it, size_t slot, enum store_seq seq, const void *key,
    size_t keylen, uint64_t from, int descending, uint64_t *uid)
{
	MDB_cursor *cur;
	int rc;

	if (seq == STORE_SEQ_ALL)
		return LMT_EINVAL;
	if ((rc = seq_cursor(it, seq, slot, &cur)) != 0)
		return rc;
	return seek(cur, 1, key, keylen, from, descending, uid);
}

int
store_iter_next_key(store_iter *it, size_t slot, enum store_seq seq, int descending,
    uint64_t *uid)
{
	MDB_cursor *cur;
	int rc;

	if (seq == STORE_SEQ_ALL || slot >= ITER_SLOTS)
		return LMT_EINVAL;
	if ((rc = seq_cursor(it, seq, slot, &cur)) != 0)
		return rc;
	return step(cur, 1, descending, uid);
}

size_t
store_iter_slots(void)
{
	return ITER_SLOTS;
}

/* Looks key up in the memo of the iterator's snapshot; 1 when found (in *v). */
static int
memo_get(store_iter *it, const unsigned char *key, size_t len, uint64_t *v)
{
	struct memo *m = &it->memo;
	size_t id;

	if (!it->memo_ok)
		return 0;
	id = mdb_txn_id(it->txn);
	if (m->txnid != id) {
		m->txnid = id;
		m->n = m->next = 0;
		return 0;
	}
	for (unsigned i = 0; i < m->n; i++) {
		if (m->e[i].len == len && memcmp(m->e[i].key, key, len) == 0) {
			*v = m->e[i].value;
			return 1;
		}
	}
	return 0;
}

/* Remembers a count for the rest of this snapshot (memo_get() was called just before). */
static void
memo_put(store_iter *it, const unsigned char *key, size_t len, uint64_t v)
{
	struct memo *m = &it->memo;
	unsigned i = m->next;

	if (len > MEMO_KEY || !it->memo_ok)
		return;
	m->next = (m->next + 1) % MEMO_N;
	if (m->n < MEMO_N)
		m->n++;
	memcpy(m->e[i].key, key, len);
	m->e[i].len = len;
	m->e[i].value = v;
}

/* Appends n bytes to a memo key being built; fails (returns 0) when it would not fit. */
static int
key_add(unsigned char *key, size_t *len, const void *p, size_t n)
{
	if (*len + n > MEMO_KEY)
		return 0;
	if (n > 0)	/* a key of length 0 may be NULL, which memcpy may not be given */
		memcpy(key + *len, p, n);
	*len += n;
	return 1;
}

static int
count_seq(store_iter *it, enum store_seq seq, const void *key, size_t keylen, uint64_t *n);

int
store_iter_count(store_iter *it, enum store_seq seq, const void *key, size_t keylen,
    uint64_t *n)
{
	unsigned char mk[MEMO_KEY];
	size_t ml = 0;
	unsigned char kind = (unsigned char)seq;
	int rc, keyed = key_add(mk, &ml, &kind, 1) && key_add(mk, &ml, key, keylen);

	if (keyed && memo_get(it, mk, ml, n))
		return 0;
	if ((rc = count_seq(it, seq, key, keylen, n)) == 0 && keyed)
		memo_put(it, mk, ml, *n);
	return rc;
}

static int
count_seq(store_iter *it, enum store_seq seq, const void *key, size_t keylen, uint64_t *n)
{
	MDB_cursor *cur;
	MDB_val k = { keylen, (void *)key }, v;
	size_t count = 0;
	int rc;

	if (seq == STORE_SEQ_ALL)
		return store_count(it->s, it->txn, seq, key, keylen, n);
	*n = 0;
	if (keylen == 0 || keylen > TASK_INDEX_MAX)
		return 0;
	if ((rc = seq_cursor(it, seq, ITER_SLOTS, &cur)) != 0)
		return rc;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET);
	if (rc == 0 && (rc = mdb_cursor_count(cur, &count)) == 0)
		*n = count;
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int
store_iter_count_sets(store_iter *it, const struct task_str *indexes, size_t nindexes,
    unsigned status_mask, const struct task_str *types, size_t ntypes, uint64_t *n)
{
	unsigned char mk[MEMO_KEY], kind = 0xff, sep = 0;
	size_t ml = 0;
	MDB_cursor *cur;
	int rc, keyed = key_add(mk, &ml, &kind, 1) && key_add(mk, &ml, &status_mask,
	    sizeof(status_mask));

	/* The key: the mask, then each index and each type with a NUL after it (names hold
	 * no NUL), the two lists apart. */
	for (size_t i = 0; keyed && i < nindexes; i++)
		keyed = key_add(mk, &ml, indexes[i].ptr, indexes[i].len) && key_add(mk, &ml, &sep, 1);
	keyed = keyed && key_add(mk, &ml, "|", 1);
	for (size_t i = 0; keyed && i < ntypes; i++)
		keyed = key_add(mk, &ml, types[i].ptr, types[i].len) && key_add(mk, &ml, &sep, 1);
	if (keyed && memo_get(it, mk, ml, n))
		return 0;
	if ((rc = slot_cursor(it, &it->counts, it->s->counts, &cur)) != 0)
		return rc;
	rc = count_sets(cur, indexes, nindexes, status_mask, types, ntypes, n);
	if (rc == 0 && keyed)
		memo_put(it, mk, ml, *n);
	return rc;
}

int
store_key_get(store *s, MDB_txn *txn, const unsigned char *hash, size_t hashlen,
    const void **rec, size_t *reclen)
{
	MDB_val k = { hashlen, (void *)hash }, v;
	int rc = mdb_get(txn, s->keys, &k, &v);

	if (rc == 0) {
		*rec = v.mv_data;
		*reclen = v.mv_size;
	}
	return rc;
}

int
store_batch_get(store *s, MDB_txn *txn, uint64_t uid, const void **rec, size_t *len)
{
	unsigned char k[8];
	MDB_val key = { 8, k }, val;
	int rc;

	if (!s->have_batches)
		return MDB_NOTFOUND;
	store_key_uid(k, uid);
	if ((rc = mdb_get(txn, s->batches, &key, &val)) == 0) {
		*rec = val.mv_data;
		*len = val.mv_size;
	}
	return rc;
}

int
store_batch_walk(store *s, MDB_txn *txn, uint64_t from, int descending,
    int (*fn)(void *ctx, uint64_t uid, const void *rec, size_t len), void *ctx)
{
	unsigned char k[8];
	MDB_val key = { 8, k }, val;
	MDB_cursor *c;
	int rc;

	if (!s->have_batches)
		return 0;
	if ((rc = mdb_cursor_open(txn, s->batches, &c)) != 0)
		return rc;
	store_key_uid(k, from);
	rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
	if (descending) {
		if (rc == MDB_NOTFOUND)
			rc = mdb_cursor_get(c, &key, &val, MDB_LAST);
		else if (rc == 0 && store_uid_key(key.mv_data) > from)
			rc = mdb_cursor_get(c, &key, &val, MDB_PREV);
	}
	while (rc == 0) {
		if ((rc = fn(ctx, store_uid_key(key.mv_data), val.mv_data, val.mv_size)) != 0)
			break;
		rc = mdb_cursor_get(c, &key, &val, descending ? MDB_PREV : MDB_NEXT);
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int
store_type_walk(store *s, MDB_txn *txn, int (*fn)(void *ctx, struct task_str type), void *ctx)
{
	MDB_val key, val;
	MDB_cursor *c;
	int rc;

	if ((rc = mdb_cursor_open(txn, s->by_type, &c)) != 0)
		return rc;
	for (rc = mdb_cursor_get(c, &key, &val, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(c, &key, &val, MDB_NEXT_NODUP)) {
		if ((rc = fn(ctx, (struct task_str){ key.mv_data, key.mv_size })) != 0)
			break;
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int
store_meta_get(store *s, MDB_txn *txn, const char *key, uint64_t *v)
{
	MDB_val k = { strlen(key), (void *)key }, val;
	int rc = mdb_get(txn, s->meta, &k, &val);

	if (rc == 0 && val.mv_size != 8)
		return LMT_ECORRUPT;
	if (rc == 0)
		*v = store_get_u64le(val.mv_data);
	return rc;
}

/* Every named database's pages: what the store's data takes, not counting free pages. */
int
store_live_bytes(store *s, MDB_txn *txn, uint64_t *bytes)
{
	const MDB_dbi dbis[] = { s->meta, s->tasks, s->by_index, s->by_status, s->by_type, s->queue,
	    s->counts, s->indexes, s->keys, s->leases };
	MDB_stat ms;
	uint64_t pages = 0;
	int rc;

	for (size_t i = 0; i < sizeof(dbis) / sizeof(dbis[0]); i++) {
		if ((rc = mdb_stat(txn, dbis[i], &ms)) != 0)
			return rc;
		pages += ms.ms_branch_pages + ms.ms_leaf_pages + ms.ms_overflow_pages;
	}
	/* The optional databases too: the change log's pages are no free room for the reserve
	 * (a long log once filled a disk that the guard thought had room). */
	const struct { int open; MDB_dbi dbi; } opt[] = {
		{ s->have_batches, s->batches }, { s->has_changes, s->changes },
		{ s->has_webhooks, s->webhooks },
	};
	for (size_t i = 0; i < sizeof(opt) / sizeof(opt[0]); i++) {
		if (!opt[i].open)
			continue;
		if ((rc = mdb_stat(txn, opt[i].dbi, &ms)) != 0)
			return rc;
		pages += ms.ms_branch_pages + ms.ms_leaf_pages + ms.ms_overflow_pages;
	}
	*bytes = pages * ms.ms_psize;
	return 0;
}

const char *
store_path(store *s)
{
	const char *p = NULL;

	mdb_env_get_path(s->env, &p);
	return p;
}

int
store_has_batches(store *s)
{
	return s->have_batches;
}
