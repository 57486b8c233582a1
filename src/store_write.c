/* The write side of the store: new tasks and status changes, with their indexes and counts.
 * Only the CLI links it; the responder has no code that could write. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lmtasks/clock.h"
#include "lmtasks/codec.h"
#include "lmtasks/error.h"
#include "lmtasks/feed.h"
#include "lmtasks/timefmt.h"
#include "store_internal.h"

/* Adds delta to one count, dropping zeros. */
static int
count_add1(store *s, MDB_txn *txn, struct task_str index, const struct task *t, int64_t delta)
{
	unsigned char kb[COUNT_KEY_MAX], vb[8];
	MDB_val k = { store_count_key(kb, index, t->status, t->type), kb }, v;
	uint64_t n = 0;
	int rc = mdb_get(txn, s->counts, &k, &v);

	if (rc == 0 && v.mv_size == 8)
		n = bytes_get_u64le(v.mv_data);
	else if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	if (delta < 0 && n < (uint64_t)-delta)
		return LMT_ECORRUPT;
	n += (uint64_t)delta;
	if (n == 0)
		return mdb_del(txn, s->counts, &k, NULL);
	bytes_put_u64le(vb, n);
	v.mv_size = 8;
	v.mv_data = vb;
	return mdb_put(txn, s->counts, &k, &v, 0);
}

/* Counts t under its own index and under every index together. */
static int
count_add(store *s, MDB_txn *txn, const struct task *t, int64_t delta)
{
	int rc = count_add1(s, txn, t->index_uid, t, delta);

	return rc ? rc : count_add1(s, txn, STORE_ALL_INDEXES, t, delta);
}

/* A due enqueued task's claim entry: queue for priority 0 (as 0.2.0 kept every enqueued
 * task), ranked for any other. */
static int
due_entry(store *s, MDB_txn *txn, const struct task *t, MDB_val *uv, int add)
{
	unsigned char kb[RANK_KEY_MAX];
	MDB_val k = { 0, kb };
	MDB_dbi dbi = s->queue;
	int rc;

	if (t->priority == 0) {
		k.mv_size = store_queue_key(kb, t->index_uid, t->type);
	} else if (!s->has_ranked && (!add || (rc = store_sched_make(s, txn)) != 0)) {
		return add ? rc : LMT_ECORRUPT;
	} else {
		k.mv_size = store_rank_key(kb, t->priority, t->index_uid, t->type);
		dbi = s->ranked;
	}
	rc = add ? mdb_put(txn, dbi, &k, uv, MDB_NODUPDATA) : mdb_del(txn, dbi, &k, uv);
	return rc == MDB_KEYEXIST || (!add && rc == MDB_NOTFOUND) ? LMT_ECORRUPT : rc;
}

/* Where an enqueued task waits: in delayed until its time (not_before later than now when
 * it is put there), then (store_promote(), or a put after its time) claimable.  Removed,
 * it is looked for in delayed first: its time may have come without a promotion since. */
static int
wait_entry(store *s, MDB_txn *txn, const struct task *t, MDB_val *uv, int add)
{
	unsigned char kb[16];
	MDB_val k = { 16, kb }, none = { 0, "" };
	int rc;

	store_lease_key(kb, t->not_before, t->uid);
	if (add && t->not_before != 0 && t->not_before > clock_now()) {
		if (!s->has_delayed && (rc = store_sched_make(s, txn)) != 0)
			return rc;
		rc = mdb_put(txn, s->delayed, &k, &none, MDB_NOOVERWRITE);
		return rc == MDB_KEYEXIST ? LMT_ECORRUPT : rc;
	}
	if (!add && t->not_before != 0 && s->has_delayed &&
	    (rc = mdb_del(txn, s->delayed, &k, NULL)) != MDB_NOTFOUND)
		return rc;
	return due_entry(s, txn, t, uv, add);
}

int
store_promote(store *s, MDB_txn *txn, int64_t now, uint64_t max, uint64_t *moved)
{
	unsigned char ub[8];
	MDB_val k, v, uv = { 8, ub };
	MDB_cursor *cur;
	struct task t;
	int rc;

	*moved = 0;
	if (!s->has_delayed)
		return 0;
	if ((rc = mdb_cursor_open(txn, s->delayed, &cur)) != 0)
		return rc;
	while (*moved < max && (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) == 0) {
		if (k.mv_size != 16) {
			rc = LMT_ECORRUPT;
			break;
		}
		int64_t at = (int64_t)store_uid_key(k.mv_data);
		if (at > now)
			break;
		uint64_t uid = store_uid_key((unsigned char *)k.mv_data + 8);
		if ((rc = store_get(s, txn, uid, &t)) != 0) {
			rc = rc == MDB_NOTFOUND ? LMT_ECORRUPT : rc;
			break;
		}
		if (t.status != TASK_ENQUEUED || !t.index_uid.ptr || t.not_before != at) {
			rc = LMT_ECORRUPT;
			break;
		}
		store_key_uid(ub, uid);
		/* Its claim entry first: t's names point into a page a delete may spill. */
		if ((rc = due_entry(s, txn, &t, &uv, 1)) != 0 || (rc = mdb_cursor_del(cur, 0)) != 0)
			break;
		++*moved;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Puts or deletes (index, status, type, where it waits, lease) entries for t. */
static int
entries(store *s, MDB_txn *txn, const struct task *t, int add)
{
	unsigned char ub[8], sb = (unsigned char)t->status, qb[COUNT_KEY_MAX];
	MDB_val uv = { 8, ub }, k;
	int rc;

	store_key_uid(ub, t->uid);
#define ENTRY(dbi, kp, kl) do {						\
		k.mv_size = (kl);					\
		k.mv_data = (void *)(kp);				\
		rc = add ? mdb_put(txn, (dbi), &k, &uv, MDB_NODUPDATA)	\
		         : mdb_del(txn, (dbi), &k, &uv);			\
		if (rc == MDB_KEYEXIST || (!add && rc == MDB_NOTFOUND))	\
			rc = LMT_ECORRUPT;				\
		if (rc != 0)						\
			return rc;					\
	} while (0)
	if (t->index_uid.ptr)
		ENTRY(s->by_index, t->index_uid.ptr, t->index_uid.len);
	ENTRY(s->by_status, &sb, 1);
	ENTRY(s->by_type, t->type.ptr, t->type.len);
#undef ENTRY
	if (t->status == TASK_ENQUEUED && t->index_uid.ptr &&
	    (rc = wait_entry(s, txn, t, &uv, add)) != 0)
		return rc;
	if (t->status == TASK_PROCESSING && t->lease_until) {
		MDB_val none = { 0, "" };
		store_lease_key(qb, t->lease_until, t->uid);
		k.mv_size = 16;
		k.mv_data = qb;
		rc = add ? mdb_put(txn, s->leases, &k, &none, MDB_NOOVERWRITE)
		         : mdb_del(txn, s->leases, &k, NULL);
		if (rc == MDB_KEYEXIST || (!add && rc == MDB_NOTFOUND))
			return LMT_ECORRUPT;
		if (rc != 0)
			return rc;
	}
	return count_add(s, txn, t, add ? 1 : -1);
}

/*
 * What a batch adds to the counts and to the indexes, kept in memory and written once
 * per distinct (index, status, type) rather than once per task.
 */
#define PENDING_MAX 64

struct pending {
	size_t n;
	struct {
		struct task t;		/* the first task of its kind: index, status, type */
		uint64_t count;
	} v[PENDING_MAX];
};

static int
pending_flush(store *s, MDB_txn *txn, struct pending *p)
{
	int rc;

	for (size_t i = 0; i < p->n; i++) {
		const struct task *t = &p->v[i].t;
		if ((rc = count_add(s, txn, t, (int64_t)p->v[i].count)) != 0)
			return rc;
		if (t->index_uid.ptr) {
			unsigned char cb[8];
			MDB_val ik = { t->index_uid.len, (void *)t->index_uid.ptr }, iv = { 8, cb };
			bytes_put_u64le(cb, (uint64_t)t->enqueued_at);
			rc = mdb_put(txn, s->indexes, &ik, &iv, MDB_NOOVERWRITE);
			if (rc != 0 && rc != MDB_KEYEXIST)
				return rc;
		}
	}
	p->n = 0;
	return 0;
}

static int
pending_add(store *s, MDB_txn *txn, struct pending *p, const struct task *t)
{
	for (size_t i = 0; i < p->n; i++) {
		const struct task *o = &p->v[i].t;
		if (o->status == t->status && o->index_uid.len == t->index_uid.len &&
		    (o->index_uid.ptr == NULL) == (t->index_uid.ptr == NULL) &&
		    o->type.len == t->type.len && memcmp(o->type.ptr, t->type.ptr, t->type.len) == 0 &&
		    (t->index_uid.len == 0 ||
		     memcmp(o->index_uid.ptr, t->index_uid.ptr, t->index_uid.len) == 0)) {
			p->v[i].count++;
			return 0;
		}
	}
	if (p->n == PENDING_MAX) {
		int rc = pending_flush(s, txn, p);
		if (rc)
			return rc;
	}
	p->v[p->n].t = *t;
	p->v[p->n++].count = 1;
	return 0;
}

int
store_log_skip(store *s, MDB_txn *txn, size_t n, size_t *skip)
{
	struct feed_retention r;
	int rc = feed_retention_read(s, txn, &r);

	*skip = rc == 0 && r.count && n > r.count ? n - r.count : 0;
	return rc;
}

/* Logs the new tasks in the change feed, in chunks (a batch may hold millions). */
static int
log_added(store *s, MDB_txn *txn, const struct task *tasks, size_t n)
{
	uint64_t uids[STORE_LOG_CHUNK];
	unsigned char st[STORE_LOG_CHUNK];
	size_t i;
	int rc;

	if ((rc = store_log_skip(s, txn, n, &i)) != 0)
		return rc;
	for (uint64_t skip = i; i < n; i += STORE_LOG_CHUNK, skip = 0) {
		size_t m = n - i < STORE_LOG_CHUNK ? n - i : STORE_LOG_CHUNK;
		for (size_t j = 0; j < m; j++) {
			uids[j] = tasks[i + j].uid;
			st[j] = (unsigned char)tasks[i + j].status;
		}
		if ((rc = feed_append(s, txn, skip, uids, st, m)) != 0)
			return rc;
	}
	return 0;
}

/* One dup entry at the end of its key's list: every new uid is past all others. */
static int
append_dup(MDB_cursor *cur, const void *key, size_t keylen, MDB_val *uv)
{
	MDB_val k = { keylen, (void *)key };
	int rc = mdb_cursor_put(cur, &k, uv, MDB_APPENDDUP);

	return rc == MDB_KEYEXIST ? LMT_ECORRUPT : rc;
}

int
store_add_many(store *s, MDB_txn *txn, struct task *tasks, size_t n)
{
	MDB_dbi dbis[5] = { s->tasks, s->by_index, s->by_status, s->by_type, s->queue };
	MDB_cursor *cur[5] = { NULL };
	struct pending *p = NULL;
	unsigned char nb[8];
	MDB_val nk = { 8, "next_uid" }, nv = { 8, nb };
	uint64_t uid;
	int rc;

	if ((rc = store_next_uid(s, txn, &uid)) != 0)
		return rc;
	if (n > TASK_NO_UID - uid)
		return LMT_ETOOBIG;
	if ((p = malloc(sizeof(*p))) == NULL)
		return ENOMEM;
	p->n = 0;
	for (int i = 0; i < 5; i++) {
		if ((rc = mdb_cursor_open(txn, dbis[i], &cur[i])) != 0)
			goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct task *t = &tasks[i];
		unsigned char ub[8], sb, qb[COUNT_KEY_MAX];
		MDB_val k = { 8, ub }, v = { codec_size(t), NULL }, uv = { 8, ub };

		progress_report(s->progress, "stored", i, n, 0);
		t->uid = uid++;
		store_key_uid(ub, t->uid);
		rc = mdb_cursor_put(cur[0], &k, &v, MDB_APPEND | MDB_RESERVE);
		if (rc != 0) {
			rc = rc == MDB_KEYEXIST ? LMT_ECORRUPT : rc;
			goto out;
		}
		codec_encode(t, v.mv_data);
		sb = (unsigned char)t->status;
		if ((t->index_uid.ptr &&
		        (rc = append_dup(cur[1], t->index_uid.ptr, t->index_uid.len, &uv)) != 0) ||
		    (rc = append_dup(cur[2], &sb, 1, &uv)) != 0 ||
		    (rc = append_dup(cur[3], t->type.ptr, t->type.len, &uv)) != 0)
			goto out;
		/* A plain task is appended to its queue key; one with a time or a priority is
		 * put where it waits. */
		if (t->status == TASK_ENQUEUED && t->index_uid.ptr &&
		    (rc = t->not_before == 0 && t->priority == 0 ?
		    append_dup(cur[4], qb, store_queue_key(qb, t->index_uid, t->type), &uv) :
		    wait_entry(s, txn, t, &uv, 1)) != 0)
			goto out;
		if ((rc = pending_add(s, txn, p, t)) != 0)
			goto out;
	}
	if ((rc = pending_flush(s, txn, p)) != 0 || (rc = log_added(s, txn, tasks, n)) != 0)
		goto out;
	if (n > 1)	/* one task (store_add) is no long operation */
		progress_report(s->progress, "stored", n, n, 1);
	bytes_put_u64le(nb, uid);
	rc = mdb_put(txn, s->meta, &nk, &nv, 0);
out:
	for (int i = 0; i < 5; i++) {
		if (cur[i])
			mdb_cursor_close(cur[i]);
	}
	free(p);
	return rc;
}

int
store_add(store *s, MDB_txn *txn, struct task *t)
{
	return store_add_many(s, txn, t, 1);
}

/* The record, its entries and counts, and (logged) its change. */
static int
replace(store *s, MDB_txn *txn, const struct task *old, const struct task *next, int logged)
{
	struct task clean;
	size_t len;
	unsigned char *buf;
	MDB_val v;
	int rc;

	if (old->uid != next->uid)
		return LMT_EINVAL;
	/* Progress belongs to a processing task, whichever path moved it out. */
	if (next->status != TASK_PROCESSING && next->progress_total) {
		clean = *next;
		task_progress_clear(&clean);
		next = &clean;
	}
	len = codec_size(next);
	v.mv_size = len;
	/* next may borrow old's strings, which live in the page the put rewrites. */
	if ((buf = malloc(len)) == NULL)
		return ENOMEM;
	codec_encode(next, buf);
	if ((rc = entries(s, txn, old, 0)) != 0 || (rc = entries(s, txn, next, 1)) != 0)
		goto out;
	v.mv_data = buf;
	if ((rc = store_uid_put(txn, s->tasks, next->uid, &v, 0)) == 0 && logged) {
		unsigned char st = (unsigned char)next->status;
		rc = feed_append(s, txn, 0, &next->uid, &st, 1);
	}
out:
	free(buf);
	return rc;
}

int
store_replace(store *s, MDB_txn *txn, const struct task *old, const struct task *next)
{
	return replace(s, txn, old, next, 1);
}

int
store_replace_quiet(store *s, MDB_txn *txn, const struct task *old, const struct task *next)
{
	return replace(s, txn, old, next, 0);
}

int
store_remove(store *s, MDB_txn *txn, const struct task *t)
{
	unsigned char st = FEED_REMOVED;
	uint64_t uid = t->uid;
	int rc;

	if ((rc = entries(s, txn, t, 0)) != 0 || (rc = store_uid_del(txn, s->tasks, uid)) != 0)
		return rc;
	return feed_append(s, txn, 0, &uid, &st, 1);
}

int
store_index_remove(store *s, MDB_txn *txn, struct task_str index)
{
	MDB_val k = { index.len, (void *)index.ptr };

	if (index.ptr == NULL || index.len == 0 || index.len > TASK_INDEX_MAX)
		return MDB_NOTFOUND;
	return mdb_del(txn, s->indexes, &k, NULL);
}

int
store_key_put(store *s, MDB_txn *txn, const unsigned char *hash, size_t hashlen,
    const void *rec, size_t reclen)
{
	MDB_val k = { hashlen, (void *)hash }, v = { reclen, (void *)rec };

	return mdb_put(txn, s->keys, &k, &v, MDB_NOOVERWRITE);
}

int
store_key_delete(store *s, MDB_txn *txn, const unsigned char *hash, size_t hashlen)
{
	MDB_val k = { hashlen, (void *)hash };

	return mdb_del(txn, s->keys, &k, NULL);
}

#ifdef LMTASKS_FAULT_INJECTION
/*
 * The test builds' fault seam: LMTASKS_FAULT=enospc:N or eio:N makes the Nth commit of
 * this process fail with that error, its transaction aborted as a failed write leaves it;
 * sigbus:N raises SIGBUS there instead, as a data.mdb cut short under a write would.
 */
static int
fault(void)
{
	static long commits;
	const char *f = getenv("LMTASKS_FAULT");
	const char *colon = f ? strchr(f, ':') : NULL;

	++commits;
	if (colon == NULL || strtol(colon + 1, NULL, 10) != commits)
		return 0;
	if (strncmp(f, "sigbus:", 7) == 0)
		raise(SIGBUS);
	return strncmp(f, "enospc:", 7) == 0 ? ENOSPC : strncmp(f, "eio:", 4) == 0 ? EIO : 0;
}
#else
#define fault() 0
#endif

/* Commits txn, or aborts it when the fault seam says this write fails. */
static int
commit(MDB_txn *txn)
{
	int rc = fault();

	if (rc) {
		mdb_txn_abort(txn);
		return rc;
	}
	return mdb_txn_commit(txn);
}

/* Databases made by a write transaction (store_sched_make()) that did not commit closed
 * with it. */
static void
sched_made_end(store *s, int committed)
{
	if (!committed && (s->sched_made & 1))
		s->has_delayed = 0;
	if (!committed && (s->sched_made & 2))
		s->has_ranked = 0;
	s->sched_made = 0;
}

int
store_write(store *s, int (*fn)(store *s, MDB_txn *txn, void *ctx), void *ctx)
{
	MDB_envinfo info;
	MDB_txn *txn;
	int rc;

	for (;;) {
		STORE_TEST_WRITE_HOOK(s);
		if ((rc = store_txn_begin(s, 0, &txn)) != 0)
			return rc;
		/* Never a commit on a data file replaced under this process: it would build on
		 * the meta page the lock file picks and overwrite the file's newest one. */
		if ((rc = store_check_write_follow(s, txn)) != 0) {
			mdb_txn_abort(txn);
			/* A compacted copy swapped in since this process opened the store (the
			 * one write lock shows it before anything is written): written instead. */
			if (rc != 1 || (rc = store_reopen(s)) != 0)
				return rc;
			continue;
		}
		s->wtxn = txn;
		/* The schedule's databases another process made since, looked for in txn: then
		 * promotions and claims see them, and the tasks put there. */
		if ((rc = store_sched_find(s, txn)) == 0 && (rc = fn(s, txn, ctx)) == 0)
			rc = commit(txn);
		else
			mdb_txn_abort(txn);
		s->wtxn = NULL;
		sched_made_end(s, rc == 0);
		if (rc != MDB_MAP_FULL)
			return rc;
		/* Grow and replay: the aborted transaction left nothing behind. */
		mdb_env_info(s->env, &info);
		if ((rc = mdb_env_set_mapsize(s->env, info.me_mapsize * 2)) != 0)
			return rc;
	}
}

void
store_write_fault(store *s)
{
	if (s && s->wtxn) {
		mdb_txn_abort(s->wtxn);
		s->wtxn = NULL;
		sched_made_end(s, 0);
	}
}

int
store_meta_put(store *s, MDB_txn *txn, const char *key, uint64_t v)
{
	unsigned char b[8];
	MDB_val k = { strlen(key), (void *)key }, val = { 8, b };

	bytes_put_u64le(b, v);
	return mdb_put(txn, s->meta, &k, &val, 0);
}

int
store_reserve(store *s, uint64_t bytes)
{
	MDB_envinfo info;
	MDB_stat ms;
	mdb_filehandle_t fd;
	int rc;

	if ((rc = mdb_env_info(s->env, &info)) != 0 || (rc = mdb_env_stat(s->env, &ms)) != 0 ||
	    (rc = mdb_env_get_fd(s->env, &fd)) != 0)
		return rc;
	off_t end = (off_t)(info.me_last_pgno + 1) * ms.ms_psize;
	/* Blocks past the end of the file, the file's size unchanged: LMDB's next pages
	 * land on them without asking the file system for space. */
	if (fallocate(fd, FALLOC_FL_KEEP_SIZE, end, (off_t)bytes) == 0)
		return 0;
	rc = errno;
	return rc == EOPNOTSUPP || rc == ENOSYS ? 0 : rc;
}

int
store_batch_next(store *s, MDB_txn *txn, uint64_t *uid)
{
	MDB_val key = { 10, "next_batch" }, val;
	unsigned char next[8];
	int rc = mdb_get(txn, s->meta, &key, &val);

	if (rc == 0 && val.mv_size != 8)
		return LMT_ECORRUPT;
	if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	*uid = rc == 0 ? bytes_get_u64le(val.mv_data) : 0;
	bytes_put_u64le(next, *uid + 1);
	val = (MDB_val){ 8, next };
	return mdb_put(txn, s->meta, &key, &val, 0);
}

int
store_batch_put(store *s, MDB_txn *txn, uint64_t uid, const void *rec, size_t len)
{
	MDB_val val = { len, (void *)rec };

	if (!s->have_batches)
		return LMT_ESCHEMA;
	return store_uid_put(txn, s->batches, uid, &val, 0);
}

int
store_batch_del(store *s, MDB_txn *txn, uint64_t uid)
{
	if (!s->have_batches)
		return MDB_NOTFOUND;
	return store_uid_del(txn, s->batches, uid);
}

int
store_meta_del(store *s, MDB_txn *txn, const char *key)
{
	MDB_val k = { strlen(key), (void *)key };
	int rc = mdb_del(txn, s->meta, &k, NULL);

	return rc == MDB_NOTFOUND ? 0 : rc;
}
