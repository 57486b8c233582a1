/* The iterator a worker keeps from request to request: cursors opened once and renewed
 * with each snapshot, the uid walks of every sequence (one cursor per union key), fetches
 * near the last uid read, and counts remembered for as long as the snapshot is the same.
 * The responder links it; nothing here writes. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lmtasks/codec.h"
#include "lmtasks/error.h"
#include "store_internal.h"

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
	unsigned store_gen;	/* s->gen its cursors were opened under */
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

int
store_iter_open(store *s, MDB_txn *txn, store_iter **out)
{
	store_iter *it = calloc(1, sizeof(*it));

	if (it == NULL)
		return ENOMEM;
	it->s = s;
	it->store_gen = s->gen;
	it->txn = txn;
	*out = it;
	return 0;
}

static void close_cursors(store_iter *it);

/* The store was opened again (a compacted data file followed): the cursors belong to the
 * environment closed, so they are let go (a read-only cursor is its own memory only) and
 * opened anew, and the counts remembered are forgotten. */
__attribute__((noinline, cold)) static void
follow_store(store_iter *it)
{
	close_cursors(it);
	memset(&it->memo, 0, sizeof(it->memo));
	it->store_gen = it->s->gen;
}

int
store_iter_renew(store_iter *it, MDB_txn *txn)
{
	if (__builtin_expect(it->store_gen != it->s->gen, 0))
		follow_store(it);
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
	close_cursors(it);
	free(it);
}

/* Closes every cursor the iterator keeps; the slots are empty after. */
static void
close_cursors(store_iter *it)
{
	slot_close(&it->all);
	slot_close(&it->fetch);
	slot_close(&it->counts);
	for (int i = 0; i < 3; i++) {
		for (int j = 0; j <= ITER_SLOTS; j++)
			slot_close(&it->seq[i][j]);
	}
	memset(&it->all, 0, sizeof(it->all));
	memset(&it->fetch, 0, sizeof(it->fetch));
	memset(&it->counts, 0, sizeof(it->counts));
	memset(it->seq, 0, sizeof(it->seq));
	it->active = NULL;
	it->fetch_at = TASK_NO_UID;
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
	    store_seq_dbi(it->s, seq), out);
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
	rc = store_count_cursor(cur, indexes, nindexes, status_mask, types, ntypes, n);
	if (rc == 0 && keyed)
		memo_put(it, mk, ml, *n);
	return rc;
}
