/* Operations on many tasks or on the store itself: cancel, delete, indexes, keys, init,
 * settings. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "lmtasks/clock.h"
#include "lmtasks/error.h"
#include "lmtasks/feed.h"
#include "ops_internal.h"

/*
 * A cancelation or deletion that changes nothing adds a task and a batch and ends or
 * frees nothing: it is new data, refused where a new task would be (Meilisearch's
 * register() refuses a cancelation or deletion that matches no task past 40% of its task
 * database, and takes it below).  Measured after the record, as an enqueue is; tight:
 * the disk could not keep the store's reserve before the write.
 */
static int
room_for_nothing(store *s, MDB_txn *txn, int tight)
{
	struct settings set;
	uint64_t live;
	int rc;

	if (tight)
		return LMT_EDISKFULL;
	if ((rc = settings_read(s, txn, &set)) != 0 || (rc = store_live_bytes(s, txn, &live)) != 0)
		return rc;
	return live > set.v[SETTING_MAX_BYTES] / 100 * SETTINGS_ENQUEUE_PERCENT ? LMT_EFULL : 0;
}

/* 1 when the disk cannot keep the store's reserve now (ops_keep_reserve()). */
static int
disk_tight(store *s)
{
	int rc = ops_keep_reserve(s, NULL);

	return rc == ENOSPC || rc == EDQUOT;
}

struct cancel_ctx {
	const uint64_t *uids;
	size_t n;
	uint64_t matched;	/* the tasks asked for, finished ones too */
	int none_ok;		/* record a cancelation that cancels nothing, as Meilisearch does */
	int tight;		/* none_ok: the disk could not keep the reserve */
	const char *filter;
	struct ops_record_result *r;
};

/* Checks every uid before changing any: a cancel happens whole or not at all. */
static int
cancel_txn(store *s, MDB_txn *txn, void *ctx)
{
	struct cancel_ctx *c = ctx;
	struct ops_record_result *r = c->r;
	struct task old, next;
	struct ops_batch ob;
	int64_t now = clock_now();
	uint64_t cancel_uid;
	int rc;

	r->changed = 0;
	for (size_t i = 0; i < c->n; i++) {
		if ((rc = store_get(s, txn, c->uids[i], &old)) == MDB_NOTFOUND)
			r->missing = c->uids[i];
		if (rc)
			return rc;
		r->changed += !task_status_terminal(old.status);
	}
	if (r->changed == 0 && !c->none_ok)
		return LMT_ETRANSITION;
	/* The canceled tasks name the taskCancelation task added after them. */
	if ((rc = store_next_uid(s, txn, &cancel_uid)) != 0)
		return rc;
	/* The enqueued tasks it cancels leave the queue in its batch; processing ones stay in
	 * theirs. */
	if ((rc = ops_batch_begin(s, txn, now, &ob)) != 0)
		return rc;
	for (size_t i = 0; i < c->n; i++) {
		if ((rc = store_get(s, txn, c->uids[i], &old)) != 0)
			goto fail;
		if (task_status_terminal(old.status))
			continue;
		next = old;
		next.status = TASK_CANCELED;
		next.canceled_by = cancel_uid;
		next.lease_until = 0;	/* a finished task holds no lease */
		task_progress_clear(&next);
		if (next.started_at == 0)
			next.started_at = now;
		next.finished_at = now;
		rc = old.status == TASK_ENQUEUED ? ops_batch_add(&ob, &next)
		    : ops_batch_moved(s, txn, &old, &next, now, 0);
		if (rc != 0 || (rc = store_replace(s, txn, &old, &next)) != 0)
			goto fail;
	}
	if ((rc = ops_record(s, txn, "taskCancelation", "canceledTasks", c->matched, r->changed,
	    c->filter, now, &ob, &r->out)) != 0)
		return rc;
	if (r->changed == 0 && (rc = room_for_nothing(s, txn, c->tight)) != 0)
		return rc;
	return r->out.t.uid == cancel_uid ? 0 : LMT_ECORRUPT;
fail:
	ops_batch_free(&ob);
	return rc;
}

/* cancel UID...: every uid must exist; the filter is the caller's ?uids=... */
int
ops_cancel(store *s, const uint64_t *uids, size_t n, const char *filter,
    struct ops_record_result *r)
{
	struct cancel_ctx c = { uids, n, n, 0, 0, filter, r };
	int rc;

	memset(r, 0, sizeof(*r));
	r->matched = n;
	if (n == 0 || n > OPS_CANCEL_MAX)
		return LMT_EINVAL;
	if ((rc = ops_write(s, cancel_txn, &c)) != 0)
		ops_task_free(&r->out);
	return rc;
}

/* The matches of a query: counted, and the uids of the finished ones (delete) or of the
 * others (cancel). */
struct matches {
	int finished;		/* collect the finished matches, else the enqueued and processing */
	struct ops_uids uids;	/* newest first */
	uint64_t matched;
};

static int
collect(void *ctx, const struct task *t)
{
	struct matches *m = ctx;

	m->matched++;
	if ((task_status_terminal(t->status) != 0) != m->finished)
		return 0;
	return ops_uids_add(&m->uids, t->uid);
}

/* Collect first, change after: the walk must not see the store change under it. */
static int
find_matches(store *s, MDB_txn *txn, const struct query *q, struct matches *m, uint64_t *bad)
{
	store_iter *it;
	int rc;

	m->uids.n = 0;
	m->matched = 0;
	if ((rc = store_iter_open(s, txn, &it)) != 0)
		return rc;
	rc = query_walk(s, txn, it, q, collect, m, bad);
	store_iter_close(it);
	return rc;
}

struct cancel_query_ctx {
	const struct query *q;
	const char *filter;
	int tight;
	struct matches m;
	struct ops_record_result *r;
};

/* The matches are found in the transaction that cancels them, so none slips between. */
static int
cancel_query_txn(store *s, MDB_txn *txn, void *ctx)
{
	struct cancel_query_ctx *cq = ctx;
	int rc = find_matches(s, txn, cq->q, &cq->m, &cq->r->bad);

	if (rc)
		return rc;
	struct cancel_ctx c = { cq->m.uids.v, cq->m.uids.n, cq->m.matched, 1, cq->tight, cq->filter,
	    cq->r };
	return cancel_txn(s, txn, &c);
}

int
ops_cancel_query(store *s, const struct query *q, const char *filter,
    struct ops_record_result *r)
{
	struct cancel_query_ctx c = { q, filter, 0, { 0 }, r };
	int rc;

	memset(r, 0, sizeof(*r));
	c.tight = disk_tight(s);
	if ((rc = ops_write(s, cancel_query_txn, &c)) != 0)
		ops_task_free(&r->out);
	r->matched = c.m.matched;
	ops_uids_free(&c.m.uids);
	return rc;
}

struct delete_ctx {
	const struct query *q;
	uint64_t keep;
	const char *filter;
	int tight;		/* the disk could not keep the reserve */
	struct matches m;
	struct ops_record_result *r;
};

/* Walks, then removes, then records: all in the one transaction. */
static int
delete_txn(store *s, MDB_txn *txn, void *ctx)
{
	struct delete_ctx *d = ctx;
	struct ops_record_result *r = d->r;
	int rc = find_matches(s, txn, d->q, &d->m, &r->bad);

	r->matched = d->m.matched;
	r->changed = 0;
	if (rc)
		return rc;
	size_t n = d->m.uids.n, first = d->keep < n ? (size_t)d->keep : n;
	/* No match leaves the list unallocated (NULL): NULL + 0 is undefined behaviour. */
	uint64_t *rest = first < n ? d->m.uids.v + first : NULL;
	if ((rc = ops_remove_tasks(s, txn, rest, n - first, &r->changed)) != 0)
		return rc;
	if ((rc = ops_record(s, txn, "taskDeletion", "deletedTasks", r->matched, r->changed,
	    d->filter, clock_now(), NULL, &r->out)) != 0)
		return rc;
	return r->changed == 0 ? room_for_nothing(s, txn, d->tight) : 0;
}

/* Enqueued and processing tasks are never deleted, whatever the filter. */
int
ops_delete(store *s, const struct query *q, uint64_t keep, const char *filter,
    struct ops_record_result *r)
{
	struct delete_ctx d = { q, keep, filter, 0, { 1, { NULL, 0, 0 }, 0 }, r };
	int rc;

	memset(r, 0, sizeof(*r));
	d.tight = disk_tight(s);
	if ((rc = ops_write(s, delete_txn, &d)) != 0)
		ops_task_free(&r->out);
	ops_uids_free(&d.m.uids);
	return rc;
}

/* Only the index record goes: its tasks stay under /tasks. */
static int
index_delete_txn(store *s, MDB_txn *txn, void *ctx)
{
	return store_index_remove(s, txn, *(struct task_str *)ctx);
}

/* Removes an index the way Meilisearch forgets one, keeping its tasks. */
int
ops_index_delete(store *s, struct task_str index)
{
	return ops_write(s, index_delete_txn, &index);
}

struct key_new {
	unsigned char hash[AUTH_HASH_BYTES];
	unsigned char *rec;
	size_t len;
};

/* The record is stored under the key's hash, never the key. */
static int
key_create_txn(store *s, MDB_txn *txn, void *ctx)
{
	struct key_new *kn = ctx;

	return store_key_put(s, txn, kn->hash, sizeof(kn->hash), kn->rec, kn->len);
}

/* The secret is made here and shown once by the caller. */
int
ops_key_create(store *s, struct auth_key *k, char secret[AUTH_KEY_CHARS + 1])
{
	unsigned char raw[AUTH_KEY_CHARS / 2];
	struct key_new kn;
	int rc;

	if (auth_init() != 0)
		return LMT_EINVAL;
	randombytes_buf(raw, sizeof(raw));
	randombytes_buf(k->uid, sizeof(k->uid));
	sodium_bin2hex(secret, AUTH_KEY_CHARS + 1, raw, sizeof(raw));
	sodium_memzero(raw, sizeof(raw));
	k->created_at = clock_now();
	auth_hash(secret, AUTH_KEY_CHARS, kn.hash);
	kn.len = auth_key_encode(k, NULL);
	if ((kn.rec = malloc(kn.len)) == NULL)
		return ENOMEM;
	auth_key_encode(k, kn.rec);
	rc = ops_write(s, key_create_txn, &kn);
	free(kn.rec);
	return rc;
}

struct key_del {
	const char *arg;
	unsigned char hash[AUTH_HASH_BYTES];
	int found;
};

/* Finds a key by its public uid, for `key delete UID`. */
static int
match_uid(void *ctx, const unsigned char *hash, const void *rec, size_t len)
{
	struct key_del *kd = ctx;
	struct auth_key k;
	char uid[37];

	if (auth_key_decode(rec, len, &k) != 0)
		return 0;
	auth_uid_format(k.uid, uid);
	if (strcmp(uid, kd->arg) != 0)
		return 0;
	memcpy(kd->hash, hash, AUTH_HASH_BYTES);
	kd->found = 1;
	return 1;
}

/* A key is revoked by its secret or by its uid. */
static int
key_delete_txn(store *s, MDB_txn *txn, void *ctx)
{
	struct key_del *kd = ctx;
	int rc;

	/* The key itself, or its uid. */
	auth_hash(kd->arg, strlen(kd->arg), kd->hash);
	kd->found = 0;
	if ((rc = store_key_delete(s, txn, kd->hash, AUTH_HASH_BYTES)) != MDB_NOTFOUND)
		return rc;
	if ((rc = store_key_walk(s, txn, match_uid, kd)) < 0)
		return rc;
	return kd->found ? store_key_delete(s, txn, kd->hash, AUTH_HASH_BYTES) : MDB_NOTFOUND;
}

/* Revocation takes effect on the responder's next request. */
int
ops_key_delete(store *s, const char *key_or_uid)
{
	struct key_del kd = { key_or_uid, { 0 }, 0 };
	int rc;

	if (auth_init() != 0)
		return LMT_EINVAL;
	rc = ops_write(s, key_delete_txn, &kd);
	sodium_memzero(kd.hash, sizeof(kd.hash));
	return rc;
}

/* Gives the files and the directory to gid with the modes ops_init() states. */
static int
share(const char *path, gid_t gid, unsigned mode)
{
	char data[PATH_MAX], lock[PATH_MAX];
	unsigned lock_mode = mode | (mode & 0040 ? 0020 : 0);
	mode_t dir = 0700 | (mode & 0040 ? 0050 : 0) | (mode & 0004 ? 0005 : 0) |
	    (gid != (gid_t)-1 ? S_ISGID : 0);

	snprintf(data, sizeof(data), "%s/data.mdb", path);
	snprintf(lock, sizeof(lock), "%s/lock.mdb", path);
	if (gid != (gid_t)-1 &&
	    (chown(path, (uid_t)-1, gid) != 0 || chown(data, (uid_t)-1, gid) != 0 ||
	     chown(lock, (uid_t)-1, gid) != 0))
		return errno;
	if (chmod(path, dir) != 0 || chmod(data, mode) != 0 || chmod(lock, lock_mode) != 0)
		return errno;
	return 0;
}

/* Making a store and sharing it with a reader group happen together. */
int
ops_init(const char *path, gid_t gid, unsigned mode, int *shared_rc)
{
	char data[PATH_MAX];
	struct stat st;
	store *s;
	int rc;

	snprintf(data, sizeof(data), "%s/data.mdb", path);
	int fresh = stat(data, &st) != 0, asked = gid != (gid_t)-1 || mode != 0;
	if (mode == 0)
		mode = gid != (gid_t)-1 ? 0640 : 0600;
	if ((rc = store_open(path, STORE_CREATE, mode, &s)) != 0)
		return rc;
	/* A new store's size limit comes from the disk it is made on. */
	if (fresh) {
		struct settings set;
		rc = ops_config_set(s, SETTING_MAX_BYTES, settings_default_max_bytes(path), &set);
		if (rc == 0)
			ops_keep_reserve(s, NULL);
	}
	store_close(s);
	if (rc)
		return rc;
	*shared_rc = fresh || asked ? share(path, gid, mode) : 0;
	return 0;
}

struct config_ctx {
	enum setting_id id;
	uint64_t value;
	struct settings *out;
};

/* Writes the setting and reads them all back in the same transaction. */
static int
config_txn(store *s, MDB_txn *txn, void *ctx)
{
	struct config_ctx *c = ctx;
	struct feed_retention r;
	int rc;

	/* A smaller feedRetention prunes the log at once. */
	if (c->id == SETTING_FEED_RETENTION) {
		feed_retention_decode(c->value, &r);
		rc = feed_retention_write(s, txn, &r);
	} else {
		rc = store_meta_put(s, txn, settings_key(c->id), c->value);
	}

	return rc ? rc : settings_read(s, txn, c->out);
}

/* Settings live in the store, so every program sees the same ones. */
int
ops_config_set(store *s, enum setting_id id, uint64_t value, struct settings *out)
{
	struct config_ctx c = { id, value, out };

	if (settings_key(id) == NULL)
		return LMT_EINVAL;
	return ops_write(s, config_txn, &c);
}
