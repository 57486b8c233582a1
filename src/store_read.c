/* One transaction's reads: tasks, indexes, counts, the queue, batches, API keys, meta and
 * the store's totals.  Each function reads through the transaction it is given and keeps
 * nothing past it.  The responder links it; nothing here writes. */
#include "config.h"

#include <string.h>

#include "lmtasks/codec.h"
#include "lmtasks/error.h"
#include "store_internal.h"

int
store_get(store *s, MDB_txn *txn, uint64_t uid, struct task *t)
{
	MDB_val val;
	int rc;

	if ((rc = store_uid_get(txn, s->tasks, uid, &val)) != 0)
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
	*uid = bytes_get_u64le(val.mv_data);
	return 0;
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
	if ((rc = mdb_cursor_open(txn, store_seq_dbi(s, seq), &cur)) != 0)
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
		*total += bytes_get_u64le(v.mv_data);
	}
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int
store_count_cursor(MDB_cursor *cur, const struct task_str *indexes, size_t nindexes,
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
	rc = store_count_cursor(cur, indexes, nindexes, status_mask, types, ntypes, n);
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

/*
 * The smallest first dup over the keys of cur's database that begin with prefix (plen
 * bytes) followed by index \0 type, either name left out (ptr NULL) matching any; *best
 * gets it, or TASK_NO_UID when no key matches.  Both names given: one lookup; one: the
 * keys under the prefix walked (an index's types, or the prefix's whole range).
 */
static int
first_of(MDB_cursor *cur, const unsigned char *prefix, size_t plen, struct task_str index,
    struct task_str type, uint64_t *best)
{
	unsigned char kb[RANK_KEY_MAX];
	MDB_val k, v;
	size_t n = plen;
	int rc, op;

	*best = TASK_NO_UID;
	if (plen)	/* queue's keys have none (prefix NULL) */
		memcpy(kb, prefix, plen);
	if (index.ptr && type.ptr) {
		k.mv_size = plen + store_queue_key(kb + plen, index, type);
		k.mv_data = kb;
		rc = queue_first(cur, &k, best);
		return rc == MDB_NOTFOUND ? 0 : rc;
	}
	if (index.ptr) {
		memcpy(kb + n, index.ptr, index.len);
		n += index.len;
		kb[n++] = '\0';
	}
	k.mv_size = n;
	k.mv_data = kb;
	op = n ? MDB_SET_RANGE : MDB_FIRST;
	while ((rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
		op = MDB_NEXT_NODUP;
		if (k.mv_size < n || memcmp(k.mv_data, kb, n) != 0)
			break;
		const unsigned char *p = (const unsigned char *)k.mv_data + plen;
		size_t len = k.mv_size - plen;
		const unsigned char *z = memchr(p, '\0', len);
		if (z == NULL || v.mv_size != 8)
			return LMT_ECORRUPT;
		if (type.ptr && !str_eq(type, z + 1, len - (size_t)(z - p) - 1))
			continue;
		uint64_t u = store_uid_key(v.mv_data);
		if (u < *best)
			*best = u;
	}
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Whether dbi (an optional database: open says if it is there) holds anything. */
static int
used(MDB_txn *txn, int open, MDB_dbi dbi, int *yes)
{
	MDB_stat st;
	int rc;

	*yes = 0;
	if (!open)
		return 0;
	if ((rc = mdb_stat(txn, dbi, &st)) == 0)
		*yes = st.ms_entries > 0;
	return rc;
}

/* The oldest matching task of the highest priority that has one, among the ranks from
 * `from` up to (not including) `to`: one walk per priority present, from the highest. */
static int
ranked_first(store *s, MDB_txn *txn, uint64_t from, uint64_t to, struct task_str index,
    struct task_str type, uint64_t *uid)
{
	unsigned char rb[4];
	MDB_cursor *cur;
	MDB_val k, v;
	uint64_t best;
	int rc;

	if ((rc = mdb_cursor_open(txn, s->ranked, &cur)) != 0)
		return rc;
	for (uint64_t rank = from; rank < to; rank++) {
		bytes_put_u32be(rb, (uint32_t)rank);
		k.mv_size = 4;
		k.mv_data = rb;
		if ((rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)) != 0)
			break;
		if (k.mv_size < 4) {
			rc = LMT_ECORRUPT;
			break;
		}
		/* The next priority present: the ones between have no task at all. */
		rank = bytes_get_u32be(k.mv_data);
		rc = MDB_NOTFOUND;
		if (rank >= to)
			break;
		bytes_put_u32be(rb, (uint32_t)rank);
		if ((rc = first_of(cur, rb, 4, index, type, &best)) != 0)
			break;
		rc = MDB_NOTFOUND;
		if (best != TASK_NO_UID) {
			*uid = best;
			rc = 0;
			break;
		}
	}
	mdb_cursor_close(cur);
	return rc;
}

/*
 * Claim order: the highest priority first, then the oldest (the smallest uid).  Due tasks
 * of priority 0 are in queue, those of another in ranked, those not due yet in delayed
 * (store_promote() moves them once due).  A store that uses neither of the last two (every
 * store made by 0.2.0) has all its enqueued tasks in queue: with no filter, the first dup
 * of by_status' enqueued key is the answer, one lookup.
 */
int
store_find_enqueued(store *s, MDB_txn *txn, struct task_str index, struct task_str type,
    uint64_t *uid)
{
	MDB_cursor *cur;
	MDB_val k;
	uint64_t best;
	int rc, ranked, delayed;

	if ((rc = used(txn, s->has_ranked, s->ranked, &ranked)) != 0 ||
	    (rc = used(txn, s->has_delayed, s->delayed, &delayed)) != 0)
		return rc;
	if (!index.ptr && !type.ptr && !ranked && !delayed) {
		unsigned char st = TASK_ENQUEUED;
		k.mv_size = 1;
		k.mv_data = &st;
		if ((rc = mdb_cursor_open(txn, s->by_status, &cur)) != 0)
			return rc;
		rc = queue_first(cur, &k, uid);
		mdb_cursor_close(cur);
		return rc;
	}
	if (ranked && (rc = ranked_first(s, txn, 0, STORE_RANK_ZERO, index, type, uid)) !=
	    MDB_NOTFOUND)
		return rc;
	if ((rc = mdb_cursor_open(txn, s->queue, &cur)) != 0)
		return rc;
	rc = first_of(cur, NULL, 0, index, type, &best);
	mdb_cursor_close(cur);
	if (rc != 0)
		return rc;
	if (best != TASK_NO_UID) {
		*uid = best;
		return 0;
	}
	if (!ranked)
		return MDB_NOTFOUND;
	return ranked_first(s, txn, (uint64_t)STORE_RANK_ZERO + 1, UINT64_C(1) << 32, index, type,
	    uid);
}

int
store_find_enqueued_at(store *s, MDB_txn *txn, int32_t priority, struct task_str index,
    struct task_str type, uint64_t *uid)
{
	unsigned char kb[RANK_KEY_MAX];
	MDB_cursor *cur;
	MDB_val k = { 0, kb };
	int rc;

	if (!index.ptr || !type.ptr)
		return LMT_EINVAL;
	if (priority != 0 && !s->has_ranked)
		return MDB_NOTFOUND;
	k.mv_size = priority ? store_rank_key(kb, priority, index, type) :
	    store_queue_key(kb, index, type);
	if ((rc = mdb_cursor_open(txn, priority ? s->ranked : s->queue, &cur)) != 0)
		return rc;
	rc = queue_first(cur, &k, uid);
	mdb_cursor_close(cur);
	return rc;
}

/* The first key of a database of (time, uid) keys, both u64 big-endian: leases, delayed. */
static int
timed_first(MDB_txn *txn, MDB_dbi dbi, int64_t *at, uint64_t *uid)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0)
		return rc;
	rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	mdb_cursor_close(cur);
	if (rc != 0)
		return rc;
	if (k.mv_size != 16)
		return LMT_ECORRUPT;
	*at = (int64_t)store_uid_key(k.mv_data);
	*uid = store_uid_key((unsigned char *)k.mv_data + 8);
	return 0;
}

int
store_delayed_first(store *s, MDB_txn *txn, int64_t *at, uint64_t *uid)
{
	return s->has_delayed ? timed_first(txn, s->delayed, at, uid) : MDB_NOTFOUND;
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
		if ((rc = fn(ctx, idx, (int64_t)bytes_get_u64le(v.mv_data))) != 0)
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
	MDB_val val;
	int rc;

	if (!s->have_batches)
		return MDB_NOTFOUND;
	if ((rc = store_uid_get(txn, s->batches, uid, &val)) == 0) {
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
store_status_walk(store *s, MDB_txn *txn, enum task_status st, uint64_t from, uint64_t to,
    int (*fn)(void *ctx, uint64_t uid), void *ctx)
{
	unsigned char sb = (unsigned char)st, ub[8];
	MDB_val k = { 1, &sb }, v = { 8, ub };
	MDB_cursor *cur;
	int rc, op = MDB_GET_BOTH_RANGE;

	if ((rc = mdb_cursor_open(txn, s->by_status, &cur)) != 0)
		return rc;
	store_key_uid(ub, from);
	while ((rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
		op = MDB_NEXT_DUP;
		if (v.mv_size != 8) {
			rc = LMT_ECORRUPT;
			break;
		}
		uint64_t uid = store_uid_key(v.mv_data);
		if (uid > to || (rc = fn(ctx, uid)) != 0)
			break;
	}
	mdb_cursor_close(cur);
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
		*v = bytes_get_u64le(val.mv_data);
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
	/* The schedule's, where this handle has them (the responder never: STORE_NOSCHED, so
	 * its /metrics leaves them out and costs what it did). */
	if (s->has_delayed && s->has_ranked) {
		if ((rc = mdb_stat(txn, s->delayed, &ms)) != 0)
			return rc;
		pages += ms.ms_branch_pages + ms.ms_leaf_pages + ms.ms_overflow_pages;
		if ((rc = mdb_stat(txn, s->ranked, &ms)) != 0)
			return rc;
		pages += ms.ms_branch_pages + ms.ms_leaf_pages + ms.ms_overflow_pages;
	}
	*bytes = pages * ms.ms_psize;
	return 0;
}

int
store_key_walk(store *s, MDB_txn *txn,
    int (*fn)(void *ctx, const unsigned char *hash, const void *rec, size_t len), void *ctx)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, op = MDB_FIRST;

	if ((rc = mdb_cursor_open(txn, s->keys, &cur)) != 0)
		return rc;
	while ((rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
		op = MDB_NEXT;
		if ((rc = fn(ctx, k.mv_data, v.mv_data, v.mv_size)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int
store_lease_first(store *s, MDB_txn *txn, int64_t before, uint64_t *uid)
{
	int64_t at;
	uint64_t u;
	int rc = timed_first(txn, s->leases, &at, &u);

	if (rc == 0 && at >= before)
		return MDB_NOTFOUND;
	if (rc == 0)
		*uid = u;
	return rc;
}

int
store_count_walk(store *s, MDB_txn *txn, int (*fn)(void *ctx, struct task_str index,
    enum task_status status, struct task_str type, uint64_t n), void *ctx)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, op = MDB_FIRST;

	if ((rc = mdb_cursor_open(txn, s->counts, &cur)) != 0)
		return rc;
	while ((rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
		const unsigned char *p = k.mv_data, *z = memchr(p, '\0', k.mv_size);
		op = MDB_NEXT;
		if (z == NULL || (size_t)(z - p) + 2 > k.mv_size || z[1] >= TASK_NSTATUS ||
		    v.mv_size != 8) {
			rc = LMT_ECORRUPT;
			break;
		}
		struct task_str index = { z == p ? NULL : (const char *)p, (size_t)(z - p) };
		struct task_str type = { (const char *)z + 2, k.mv_size - (size_t)(z - p) - 2 };
		if ((rc = fn(ctx, index, (enum task_status)z[1], type,
		    bytes_get_u64le(v.mv_data))) != 0)
			break;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Steps from the first (or last) lease while they end before (or not before) `before`,
 * max at most; *n gets how many, and max means there may be more. */
static int
lease_run(MDB_cursor *cur, int from_end, int64_t before, uint64_t max, uint64_t *n)
{
	MDB_val k, v;
	int rc = mdb_cursor_get(cur, &k, &v, from_end ? MDB_LAST : MDB_FIRST);

	*n = 0;
	while (rc == 0 && *n < max) {
		if (k.mv_size != 16)
			return LMT_ECORRUPT;
		if (((int64_t)store_uid_key(k.mv_data) < before) == from_end)
			break;
		(*n)++;
		rc = mdb_cursor_get(cur, &k, &v, from_end ? MDB_PREV : MDB_NEXT);
	}
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int
store_lease_count(store *s, MDB_txn *txn, int64_t before, uint64_t max, uint64_t *total,
    uint64_t *expired)
{
	MDB_cursor *cur;
	MDB_stat st;
	uint64_t live = 0;
	int rc;

	if ((rc = mdb_stat(txn, s->leases, &st)) != 0 ||
	    (rc = mdb_cursor_open(txn, s->leases, &cur)) != 0)
		return rc;
	*total = st.ms_entries;
	/* The leases are in the order they end: the shorter side is counted, the other is
	 * the rest. */
	rc = lease_run(cur, 0, before, max, expired);
	if (rc == 0 && *expired == max && (rc = lease_run(cur, 1, before, max, &live)) == 0 &&
	    live < max)
		*expired = *total - live;
	mdb_cursor_close(cur);
	return rc;
}
