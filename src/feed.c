/* The change feed's read side: bounds, iteration after a sequence, a task's latest change,
 * and the retention setting.  The responder links it; the append is in feed_write.c. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lmtasks/error.h"
#include "lmtasks/feed.h"
#include "store_internal.h"

struct feed_iter {
	MDB_cursor *cur;
	uint64_t after;
	int started;
};

static const struct {
	char unit;
	int64_t us;
} units[] = {
	{ 'd', INT64_C(86400000000) },
	{ 'h', INT64_C(3600000000) },
	{ 'm', INT64_C(60000000) },
	{ 's', INT64_C(1000000) },
};

void
feed_retention_decode(uint64_t v, struct feed_retention *r)
{
	if (v & FEED_RETENTION_AGE_BIT) {
		r->count = 0;
		r->age = (int64_t)(v & ~FEED_RETENTION_AGE_BIT) * INT64_C(1000000);
	} else {
		r->count = v ? v : FEED_RETENTION_DEFAULT;
		r->age = 0;
	}
}

uint64_t
feed_retention_encode(const struct feed_retention *r)
{
	if (r->count)
		return r->count;
	return FEED_RETENTION_AGE_BIT | (uint64_t)(r->age / INT64_C(1000000));
}

int
feed_retention_parse(const char *text, struct feed_retention *r)
{
	uint64_t n = 0;
	const char *p = text;

	if (*p < '0' || *p > '9')
		return LMT_EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (n > (UINT64_MAX >> 2) / 10)
			return LMT_EINVAL;
		n = n * 10 + (uint64_t)(*p - '0');
	}
	if (n == 0)
		return LMT_EINVAL;
	if (*p == '\0') {
		r->count = n;
		r->age = 0;
		return 0;
	}
	if (p[1] != '\0')
		return LMT_EINVAL;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (*p != units[i].unit)
			continue;
		/* At most about 290 years in µs; and seconds must fit below the age bit. */
		if (n > (uint64_t)(INT64_MAX / units[i].us))
			return LMT_EINVAL;
		r->count = 0;
		r->age = (int64_t)n * units[i].us;
		return 0;
	}
	return LMT_EINVAL;
}

void
feed_retention_format(const struct feed_retention *r, char buf[32])
{
	if (r->count) {
		snprintf(buf, 32, "%" PRIu64, r->count);
		return;
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (r->age % units[i].us == 0) {
			snprintf(buf, 32, "%" PRId64 "%c", r->age / units[i].us, units[i].unit);
			return;
		}
	}
	snprintf(buf, 32, "%" PRId64 "s", r->age / INT64_C(1000000));
}

int
feed_retention_read(store *s, MDB_txn *txn, struct feed_retention *r)
{
	MDB_val k = { strlen(FEED_RETENTION_KEY), FEED_RETENTION_KEY }, v;
	int rc = mdb_get(txn, s->meta, &k, &v);

	if (rc == MDB_NOTFOUND) {
		feed_retention_decode(0, r);
		return 0;
	}
	if (rc != 0)
		return rc;
	if (v.mv_size != 8)
		return LMT_ECORRUPT;
	feed_retention_decode(bytes_get_u64le(v.mv_data), r);
	return 0;
}

int
feed_bounds(store *s, MDB_txn *txn, uint64_t *first, uint64_t *last)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	*first = 1;
	*last = 0;
	if (!s->has_changes)
		return 0;
	if ((rc = mdb_cursor_open(txn, s->changes, &cur)) != 0)
		return rc;
	if ((rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) == 0 && k.mv_size == 8) {
		*first = store_uid_key(k.mv_data);
		rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
		if (rc == 0 && k.mv_size == 8)
			*last = store_uid_key(k.mv_data);
		else if (rc == 0)
			rc = LMT_ECORRUPT;
	} else if (rc == 0) {
		rc = LMT_ECORRUPT;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Decodes the entry at k, v. */
static int
decode(const MDB_val *k, const MDB_val *v, struct feed_entry *e)
{
	const unsigned char *b = v->mv_data;

	if (k->mv_size != 8 || v->mv_size != 17)
		return LMT_ECORRUPT;
	e->seq = store_uid_key(k->mv_data);
	e->uid = store_uid_key(b);
	e->at = (int64_t)bytes_get_u64le(b + 8);
	e->status = b[16];
	return 0;
}

int
feed_iter_open(store *s, MDB_txn *txn, uint64_t after, feed_iter **out)
{
	feed_iter *it;
	uint64_t first, last;
	int rc;

	if ((rc = feed_bounds(s, txn, &first, &last)) != 0)
		return rc;
	/* Resuming after `after` needs every change from after + 1 on. */
	if (after + 1 < first && after < last)
		return LMT_EPRUNED;
	if ((it = calloc(1, sizeof(*it))) == NULL)
		return ENOMEM;
	it->after = after;
	if (s->has_changes && (rc = mdb_cursor_open(txn, s->changes, &it->cur)) != 0) {
		free(it);
		return rc;
	}
	*out = it;
	return 0;
}

int
feed_iter_next(feed_iter *it, struct feed_entry *e)
{
	unsigned char kb[8];
	MDB_val k = { 8, kb }, v;
	int rc;

	if (it->cur == NULL)
		return MDB_NOTFOUND;
	if (!it->started) {
		if (it->after == UINT64_MAX)
			return MDB_NOTFOUND;
		store_key_uid(kb, it->after + 1);
		rc = mdb_cursor_get(it->cur, &k, &v, MDB_SET_RANGE);
		it->started = 1;
	} else {
		rc = mdb_cursor_get(it->cur, &k, &v, MDB_NEXT);
	}
	return rc ? rc : decode(&k, &v, e);
}

void
feed_iter_close(feed_iter *it)
{
	if (it == NULL)
		return;
	if (it->cur)
		mdb_cursor_close(it->cur);
	free(it);
}

int
feed_latest(store *s, MDB_txn *txn, const uint64_t *uids, size_t n, uint64_t *seqs)
{
	MDB_cursor *cur;
	MDB_val k, v;
	struct feed_entry e;
	uint64_t first, last;
	size_t left = n;
	int rc, op = MDB_LAST;

	if ((rc = feed_bounds(s, txn, &first, &last)) != 0)
		return rc;
	for (size_t i = 0; i < n; i++)
		seqs[i] = 0;
	if (s->has_changes && last) {
		if ((rc = mdb_cursor_open(txn, s->changes, &cur)) != 0)
			return rc;
		while (left && (rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
			op = MDB_PREV;
			if ((rc = decode(&k, &v, &e)) != 0)
				break;
			for (size_t i = 0; i < n; i++) {
				if (uids[i] == e.uid && seqs[i] == 0) {
					seqs[i] = e.seq;
					left--;
				}
			}
		}
		mdb_cursor_close(cur);
		if (rc != 0 && rc != MDB_NOTFOUND)
			return rc;
	}
	for (size_t i = 0; i < n; i++) {
		if (seqs[i] == 0)
			seqs[i] = first - 1;
	}
	return 0;
}

/* Orders by sequence, then uid (two tasks a write changed together share nothing else). */
static int
by_seq(const void *a, const void *b)
{
	const struct feed_position *x = a, *y = b;

	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

int
feed_current(store *s, MDB_txn *txn, const uint64_t *uids, size_t n, struct feed_position *out)
{
	uint64_t *seqs = n ? malloc(n * sizeof(*seqs)) : NULL;
	int rc;

	if (n && seqs == NULL)
		return ENOMEM;
	if ((rc = feed_latest(s, txn, uids, n, seqs)) == 0) {
		for (size_t i = 0; i < n; i++) {
			out[i].seq = seqs[i];
			out[i].uid = uids[i];
		}
		qsort(out, n, sizeof(out[0]), by_seq);
	}
	free(seqs);
	return rc;
}

int
feed_refresh(store *s)
{
	MDB_txn *txn;
	int rc, had_webhooks = s->has_webhooks, had_delayed = s->has_delayed;
	int had_ranked = s->has_ranked;

	if (s->has_changes)
		return 0;
	if ((rc = store_txn_begin(s, MDB_RDONLY, &txn)) != 0)
		return rc;
	if ((rc = store_open_optional(s, txn, 0)) != 0 || !s->has_changes) {
		mdb_txn_abort(txn);	/* it closes the handles it opened */
		s->has_changes = 0;
		s->has_webhooks = had_webhooks;
		s->has_delayed = had_delayed;
		s->has_ranked = had_ranked;
		return rc;
	}
	/* Committing, also a read-only transaction, keeps the handle open. */
	if ((rc = mdb_txn_commit(txn)) != 0) {
		s->has_changes = 0;
		s->has_webhooks = had_webhooks;
		s->has_delayed = had_delayed;
		s->has_ranked = had_ranked;
	}
	return rc;
}

/* Orders entry indexes by uid, then by sequence. */
static int
by_uid_seq(const void *a, const void *b)
{
	const struct feed_entry *x = *(const struct feed_entry *const *)a;
	const struct feed_entry *y = *(const struct feed_entry *const *)b;

	if (x->uid != y->uid)
		return x->uid < y->uid ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int
feed_read(store *s, MDB_txn *txn, uint64_t *after, struct feed_entry *e, size_t max,
    size_t *n)
{
	struct feed_entry **idx = NULL;
	feed_iter *it;
	size_t got = 0, kept = 0;
	int rc;

	*n = 0;
	if ((rc = feed_iter_open(s, txn, *after, &it)) != 0)
		return rc;
	while (got < max && (rc = feed_iter_next(it, &e[got])) == 0)
		got++;
	feed_iter_close(it);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	if (got == 0)
		return 0;
	*after = e[got - 1].seq;
	/* A task changed twice in one read is shown once, at its later change: the reader
	 * renders the task as it is now, so the earlier entry would say the same. */
	if ((idx = malloc(got * sizeof(*idx))) == NULL)
		return ENOMEM;
	for (size_t i = 0; i < got; i++)
		idx[i] = &e[i];
	qsort(idx, got, sizeof(*idx), by_uid_seq);
	for (size_t i = 0; i + 1 < got; i++) {
		if (idx[i]->uid == idx[i + 1]->uid)
			idx[i]->seq = 0;
	}
	free(idx);
	for (size_t i = 0; i < got; i++) {
		if (e[i].seq != 0)
			e[kept++] = e[i];
	}
	*n = kept;
	return 0;
}
