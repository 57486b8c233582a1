/* The change feed's write side: the append every task-changing write makes, and pruning. */
#include "config.h"

#include "lmtasks/clock.h"
#include "lmtasks/error.h"
#include "lmtasks/feed.h"
#include "lmtasks/timefmt.h"
#include "store_internal.h"

/* Drops the oldest entries past the retention, always keeping the newest one. */
static int
prune(store *s, MDB_txn *txn, MDB_cursor *cur, int64_t now)
{
	struct feed_retention r;
	MDB_stat st;
	MDB_val k, v;
	int rc;

	if ((rc = feed_retention_read(s, txn, &r)) != 0 ||
	    (rc = mdb_stat(txn, s->changes, &st)) != 0)
		return rc;
	for (size_t left = st.ms_entries; left > 1; left--) {
		if (r.count && left <= r.count)
			break;
		if ((rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) != 0)
			return rc;
		if (r.count == 0 && (v.mv_size != 17 ||
		    (int64_t)bytes_get_u64le((unsigned char *)v.mv_data + 8) >= now - r.age))
			break;
		if ((rc = mdb_cursor_del(cur, 0)) != 0)
			return rc;
	}
	return 0;
}

int
feed_append(store *s, MDB_txn *txn, uint64_t skip, const uint64_t *uids,
    const unsigned char *statuses, size_t n)
{
	MDB_cursor *cur;
	unsigned char kb[8], vb[17];
	MDB_val k = { 8, kb }, v = { 17, vb };
	uint64_t seq = 1;
	int64_t now = clock_now();
	int rc;

	if (n == 0)
		return 0;
	/* store_open() makes the log for every writer (a handle made here would close if
	 * this transaction aborted). */
	if (!s->has_changes)
		return LMT_EINVAL;
	if ((rc = mdb_cursor_open(txn, s->changes, &cur)) != 0)
		return rc;
	rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	if (rc == 0 && k.mv_size == 8)
		seq = store_uid_key(k.mv_data) + 1;
	else if (rc == 0)
		rc = LMT_ECORRUPT;
	else if (rc == MDB_NOTFOUND)
		rc = 0;
	if (rc != 0)
		goto out;
	seq += skip;
	for (size_t i = 0; i < n; i++, seq++) {
		store_key_uid(kb, seq);
		store_key_uid(vb, uids[i]);
		bytes_put_u64le(vb + 8, (uint64_t)now);
		vb[16] = statuses[i];
		k.mv_size = 8;
		k.mv_data = kb;
		v.mv_size = 17;
		v.mv_data = vb;
		if ((rc = mdb_cursor_put(cur, &k, &v, MDB_APPEND)) != 0) {
			rc = rc == MDB_KEYEXIST ? LMT_ECORRUPT : rc;
			goto out;
		}
	}
	rc = prune(s, txn, cur, now);
out:
	mdb_cursor_close(cur);
	return rc;
}

int
feed_retention_write(store *s, MDB_txn *txn, const struct feed_retention *r)
{
	unsigned char vb[8];
	MDB_val k = { sizeof(FEED_RETENTION_KEY) - 1, FEED_RETENTION_KEY }, v = { 8, vb };
	MDB_cursor *cur;
	int rc;

	if (r->count == 0 && r->age < INT64_C(1000000))
		return LMT_EINVAL;
	bytes_put_u64le(vb, feed_retention_encode(r));
	if ((rc = mdb_put(txn, s->meta, &k, &v, 0)) != 0 || !s->has_changes)
		return rc;
	/* A smaller retention takes effect now, not at the next change. */
	if ((rc = mdb_cursor_open(txn, s->changes, &cur)) != 0)
		return rc;
	rc = prune(s, txn, cur, clock_now());
	mdb_cursor_close(cur);
	return rc;
}
