/* `lmtasks check`: every record decodes, every index entry and count matches the records. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lmtasks/codec.h"
#include "lmtasks/error.h"
#include "store_internal.h"

/* Counts recomputed from the records: an open-addressing table keyed by count key. */
struct tally {
	struct slot {
		unsigned char *key;
		size_t len;
		uint64_t n;
	} *slots;
	size_t cap, used;
};

static uint64_t
hash(const unsigned char *p, size_t n)
{
	uint64_t h = 1469598103934665603u;

	while (n--)
		h = (h ^ *p++) * 1099511628211u;
	return h;
}

static struct slot *
tally_find(struct tally *t, const unsigned char *key, size_t len)
{
	size_t i = (size_t)hash(key, len) & (t->cap - 1);

	while (t->slots[i].key && !(t->slots[i].len == len && memcmp(t->slots[i].key, key, len) == 0))
		i = (i + 1) & (t->cap - 1);
	return &t->slots[i];
}

static int
tally_add(struct tally *t, const unsigned char *key, size_t len)
{
	if ((t->used + 1) * 2 > t->cap) {
		struct tally bigger = { calloc(t->cap ? t->cap * 2 : 64, sizeof(struct slot)),
			t->cap ? t->cap * 2 : 64, t->used };
		if (bigger.slots == NULL)
			return ENOMEM;
		for (size_t i = 0; i < t->cap; i++) {
			if (t->slots[i].key)
				*tally_find(&bigger, t->slots[i].key, t->slots[i].len) = t->slots[i];
		}
		free(t->slots);
		*t = bigger;
	}
	struct slot *sl = tally_find(t, key, len);
	if (sl->key == NULL) {
		if ((sl->key = malloc(len)) == NULL)
			return ENOMEM;
		memcpy(sl->key, key, len);
		sl->len = len;
		t->used++;
	}
	sl->n++;
	return 0;
}

static void
tally_free(struct tally *t)
{
	for (size_t i = 0; i < t->cap; i++)
		free(t->slots[i].key);
	free(t->slots);
}

struct checker {
	store *s;
	MDB_txn *txn;
	store_problem_fn *problem;
	void *ctx;
	uint64_t problems;
};

__attribute__((format(printf, 2, 3)))
static void
report(struct checker *c, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	c->problems++;
	c->problem(c->ctx, line);
}

/* Returns 0 when (key, uid) is in dbi, else reports it missing. */
static int
expect(struct checker *c, MDB_dbi dbi, const char *db, const void *key, size_t keylen,
    uint64_t uid)
{
	unsigned char ub[8];
	MDB_val k = { keylen, (void *)key }, v = { 8, ub };
	MDB_cursor *cur;
	int rc;

	store_key_uid(ub, uid);
	if ((rc = mdb_cursor_open(c->txn, dbi, &cur)) != 0)
		return rc;
	rc = mdb_cursor_get(cur, &k, &v, MDB_GET_BOTH);
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND) {
		report(c, "task %" PRIu64 ": missing from %s", uid, db);
		return 0;
	}
	return rc;
}

/* Returns 0 when key is in a plain database (leases), else reports it missing. */
static int
expect_key(struct checker *c, MDB_dbi dbi, const char *db, const void *key, size_t keylen,
    uint64_t uid)
{
	MDB_val k = { keylen, (void *)key }, v;
	int rc = mdb_get(c->txn, dbi, &k, &v);

	if (rc == MDB_NOTFOUND) {
		report(c, "task %" PRIu64 ": missing from %s", uid, db);
		return 0;
	}
	return rc;
}

/* Each lease must belong to a processing task with that lease end. */
static int
check_leases(struct checker *c)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, op = MDB_FIRST;

	if ((rc = mdb_cursor_open(c->txn, c->s->leases, &cur)) != 0)
		return rc;
	while ((rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
		struct task t;
		op = MDB_NEXT;
		if (k.mv_size != 16) {
			report(c, "leases: a key of %zu bytes where 16 belong", k.mv_size);
			continue;
		}
		uint64_t uid = store_uid_key((unsigned char *)k.mv_data + 8);
		int grc = store_get(c->s, c->txn, uid, &t);
		if (grc == MDB_NOTFOUND)
			report(c, "leases: entry for task %" PRIu64 ", which does not exist", uid);
		else if (grc == 0 && (t.status != TASK_PROCESSING ||
		    (uint64_t)t.lease_until != store_uid_key(k.mv_data)))
			report(c, "leases: entry for task %" PRIu64 " that its record does not have", uid);
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Each delayed entry must belong to an enqueued task with that time. */
static int
check_delayed(struct checker *c)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, op = MDB_FIRST;

	if (!c->s->has_delayed)
		return 0;
	if ((rc = mdb_cursor_open(c->txn, c->s->delayed, &cur)) != 0)
		return rc;
	while ((rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
		struct task t;
		op = MDB_NEXT;
		if (k.mv_size != 16) {
			report(c, "delayed: a key of %zu bytes where 16 belong", k.mv_size);
			continue;
		}
		uint64_t uid = store_uid_key((unsigned char *)k.mv_data + 8);
		int grc = store_get(c->s, c->txn, uid, &t);
		if (grc == MDB_NOTFOUND)
			report(c, "delayed: entry for task %" PRIu64 ", which does not exist", uid);
		else if (grc == 0 && (t.status != TASK_ENQUEUED || !t.index_uid.ptr ||
		    (uint64_t)t.not_before != store_uid_key(k.mv_data)))
			report(c, "delayed: entry for task %" PRIu64 " that its record does not have", uid);
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* An enqueued task waits in one place: delayed (its time not come when it was put there),
 * else queue (priority 0) or ranked. */
static int
expect_waiting(struct checker *c, const struct task *t)
{
	unsigned char kb[RANK_KEY_MAX], ub[8];
	MDB_val k = { 16, kb }, v;
	int rc, delayed = 0;

	if (t->not_before != 0 && c->s->has_delayed) {
		store_lease_key(kb, t->not_before, t->uid);
		if ((rc = mdb_get(c->txn, c->s->delayed, &k, &v)) != 0 && rc != MDB_NOTFOUND)
			return rc;
		delayed = rc == 0;
	}
	if (t->priority != 0 && !c->s->has_ranked) {
		if (!delayed)
			report(c, "task %" PRIu64 ": missing from ranked, which the store lacks", t->uid);
		return 0;
	}
	MDB_dbi dbi = t->priority ? c->s->ranked : c->s->queue;
	const char *db = t->priority ? "ranked" : "queue";
	k.mv_size = t->priority ? store_rank_key(kb, t->priority, t->index_uid, t->type) :
	    store_queue_key(kb, t->index_uid, t->type);
	if (!delayed)
		return expect(c, dbi, db, kb, k.mv_size, t->uid);
	/* Delayed, it must not be claimable too. */
	MDB_cursor *cur;
	store_key_uid(ub, t->uid);
	v = (MDB_val){ 8, ub };
	if ((rc = mdb_cursor_open(c->txn, dbi, &cur)) != 0)
		return rc;
	rc = mdb_cursor_get(cur, &k, &v, MDB_GET_BOTH);
	mdb_cursor_close(cur);
	if (rc == 0)
		report(c, "task %" PRIu64 ": in delayed and in %s both", t->uid, db);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Walks a secondary database: each (key, uid) must name a record that agrees. */
static int
reverse(struct checker *c, MDB_dbi dbi, const char *db)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, op = MDB_FIRST;

	if ((rc = mdb_cursor_open(c->txn, dbi, &cur)) != 0)
		return rc;
	while ((rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
		struct task t;
		op = MDB_NEXT;
		if (v.mv_size != 8) {
			report(c, "%s: an entry of %zu bytes where a uid of 8 belongs", db, v.mv_size);
			continue;
		}
		uint64_t uid = store_uid_key(v.mv_data);
		int grc = store_get(c->s, c->txn, uid, &t);
		if (grc == MDB_NOTFOUND) {
			report(c, "%s: entry for task %" PRIu64 ", which does not exist", db, uid);
			continue;
		}
		if (grc != 0)
			continue;	/* the record walk reports it */
		int ok;
		const unsigned char *kp = k.mv_data;
		if (dbi == c->s->by_index)
			ok = t.index_uid.ptr && t.index_uid.len == k.mv_size &&
			     memcmp(t.index_uid.ptr, kp, k.mv_size) == 0;
		else if (dbi == c->s->by_status)
			ok = k.mv_size == 1 && kp[0] == t.status;
		else if (dbi == c->s->by_type)
			ok = t.type.len == k.mv_size && memcmp(t.type.ptr, kp, k.mv_size) == 0;
		else if (dbi == c->s->queue) {
			unsigned char qb[COUNT_KEY_MAX];
			size_t ql = store_queue_key(qb, t.index_uid, t.type);
			ok = t.status == TASK_ENQUEUED && t.priority == 0 && ql == k.mv_size &&
			    memcmp(qb, kp, ql) == 0;
		} else {
			unsigned char rb[RANK_KEY_MAX];
			size_t rl = store_rank_key(rb, t.priority, t.index_uid, t.type);
			ok = t.status == TASK_ENQUEUED && t.priority != 0 && t.index_uid.ptr &&
			    rl == k.mv_size && memcmp(rb, kp, rl) == 0;
		}
		if (!ok)
			report(c, "%s: entry for task %" PRIu64 " under a key its record does not have",
			    db, uid);
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int
check_counts(struct checker *c, struct tally *tl)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, op = MDB_FIRST;
	size_t seen = 0;

	if ((rc = mdb_cursor_open(c->txn, c->s->counts, &cur)) != 0)
		return rc;
	while ((rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
		op = MDB_NEXT;
		uint64_t stored = v.mv_size == 8 ? bytes_get_u64le(v.mv_data) : UINT64_MAX;
		struct slot *sl = tl->cap ? tally_find(tl, k.mv_data, k.mv_size) : NULL;
		uint64_t real = sl && sl->key ? sl->n : 0;
		if (sl && sl->key)
			seen++;
		if (stored != real)
			report(c, "counts: a count of %" PRIu64 " where the records give %" PRIu64,
			    stored, real);
	}
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND)
		return rc;
	if (seen != tl->used)
		report(c, "counts: %zu combinations of index, status and type have no count",
		    tl->used - seen);
	return 0;
}

int
store_check(store *s, MDB_txn *txn, store_problem_fn *problem, void *ctx,
    uint64_t *checked, uint64_t *problems)
{
	struct checker c = { s, txn, problem, ctx, 0 };
	struct tally tl = { NULL, 0, 0 };
	MDB_cursor *cur;
	MDB_val k, v;
	MDB_stat st;
	uint64_t next_uid, n = 0, last = TASK_NO_UID;
	int rc, op = MDB_FIRST;

	if ((rc = store_next_uid(s, txn, &next_uid)) != 0) {
		report(&c, "meta: next_uid is missing or malformed");
		next_uid = TASK_NO_UID;
	}
	if ((rc = mdb_stat(txn, s->tasks, &st)) != 0 ||
	    (rc = mdb_cursor_open(txn, s->tasks, &cur)) != 0)
		return rc;
	while ((rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
		struct task t;
		op = MDB_NEXT;
		progress_report(s->progress, "checked", n++, st.ms_entries, 0);
		if (k.mv_size != 8) {
			report(&c, "tasks: a key of %zu bytes where a uid of 8 belongs", k.mv_size);
			continue;
		}
		t.uid = last = store_uid_key(k.mv_data);
		if (codec_decode(v.mv_data, v.mv_size, &t) != 0) {
			report(&c, "task %" PRIu64 ": record does not decode (%zu bytes)", t.uid,
			    v.mv_size);
			continue;
		}
		unsigned char sb = (unsigned char)t.status, kb[COUNT_KEY_MAX];
		if ((t.index_uid.ptr &&
		        (rc = expect(&c, s->by_index, "by_index", t.index_uid.ptr, t.index_uid.len, t.uid))) ||
		    (rc = expect(&c, s->by_status, "by_status", &sb, 1, t.uid)) ||
		    (rc = expect(&c, s->by_type, "by_type", t.type.ptr, t.type.len, t.uid)))
			break;
		if (t.status == TASK_ENQUEUED && t.index_uid.ptr && (rc = expect_waiting(&c, &t)))
			break;
		if (t.status == TASK_PROCESSING && t.lease_until &&
		    (store_lease_key(kb, t.lease_until, t.uid),
		     rc = expect_key(&c, s->leases, "leases", kb, 16, t.uid)))
			break;
		if ((rc = tally_add(&tl, kb, store_count_key(kb, t.index_uid, t.status, t.type))) != 0 ||
		    (rc = tally_add(&tl, kb, store_count_key(kb, STORE_ALL_INDEXES, t.status, t.type))) != 0)
			break;
	}
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND)
		goto out;
	progress_report(s->progress, "checked", n, st.ms_entries, 1);
	if (last != TASK_NO_UID && next_uid != TASK_NO_UID && last >= next_uid)
		report(&c, "meta: next_uid %" PRIu64 " is not past the last task %" PRIu64, next_uid, last);
	if ((rc = reverse(&c, s->by_index, "by_index")) != 0 ||
	    (rc = reverse(&c, s->by_status, "by_status")) != 0 ||
	    (rc = reverse(&c, s->by_type, "by_type")) != 0 ||
	    (rc = reverse(&c, s->queue, "queue")) != 0 ||
	    (s->has_ranked && (rc = reverse(&c, s->ranked, "ranked")) != 0) ||
	    (rc = check_delayed(&c)) != 0 ||
	    (rc = check_leases(&c)) != 0 ||
	    (rc = check_counts(&c, &tl)) != 0)
		goto out;
	*checked = n;
	*problems = c.problems;
out:
	tally_free(&tl);
	return rc;
}
