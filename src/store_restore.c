/* Backups and restores of a live store (lmtasks backup / restore).  Write side: only the
 * CLI links it.
 *
 * A backup is LMDB's own copy (mdb_env_copy2), taken in one read transaction.  A restore
 * is one write transaction on the live store that empties its databases and fills them
 * from the backup's.  Being a commit like any other, it moves the store's transaction id
 * forward: every validator and cache keyed by (store identity, transaction id) — the list
 * ETag, the responder's page cache and count memos — names a state never seen before, and
 * readers switch to it at their next snapshot with no restart.  A data file copied over
 * the store instead would take its transaction ids back to ones already served (and LMDB's
 * lock file would pick its meta pages wrongly: store_replaced.c).  The store identity (the
 * data file's device and inode) stays: it is the same store, one commit later.  A restore
 * that fails (a full disk, a full map past what can grow) is an aborted transaction: the
 * store is as it was. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lmtasks/codec.h"
#include "lmtasks/error.h"
#include "lmtasks/feed.h"
#include "store_internal.h"

/* Makes dir with the store's directory mode, or accepts an empty directory. */
static int
backup_dir(store *s, const char *dir)
{
	struct stat st;
	struct dirent *e;
	DIR *d;
	int rc = 0;

	mode_t mode = stat(store_path(s), &st) == 0 ? (st.st_mode & 07777) : 0700;
	if (mkdir(dir, mode) == 0)
		return 0;
	if (errno != EEXIST)
		return errno;
	if ((d = opendir(dir)) == NULL)
		return errno;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
			rc = EEXIST;
			break;
		}
	closedir(d);
	return rc;
}

/* Flushes path (a file or a directory) to the disk. */
static int
sync_path(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return errno;
	if (fsync(fd) != 0)
		rc = errno;
	close(fd);
	return rc;
}

int
store_backup(store *s, const char *dir)
{
	char data[PATH_MAX];
	struct stat st;
	mdb_filehandle_t fd;
	int rc;

	if (snprintf(data, sizeof(data), "%s/data.mdb", dir) >= (int)sizeof(data))
		return ENAMETOOLONG;
	if ((rc = backup_dir(s, dir)) != 0)
		return rc;
	/* Compacted: the pages in use, renumbered, from one read transaction (no writer
	 * waits for it, and the free pages are left behind). */
	if ((rc = mdb_env_copy2(s->env, dir, MDB_CP_COMPACT)) != 0)
		return rc;
	/* The copy holds what the store holds (API keys' hashes too): the store's mode. */
	if (mdb_env_get_fd(s->env, &fd) == 0 && fstat(fd, &st) == 0 &&
	    chmod(data, st.st_mode & 0666) != 0)
		return errno;
	/* LMDB closes the copy unsynced: a backup is meant to outlive a crash. */
	if ((rc = sync_path(data, O_RDONLY)) != 0)
		return rc;
	return sync_path(dir, O_RDONLY | O_DIRECTORY);
}

/* The tasks whose state a restore changes, for the change log. */
struct diff {
	uint64_t *uids;
	unsigned char *statuses;
	size_t n, cap;
};

static int
diff_add(struct diff *d, uint64_t uid, unsigned status)
{
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 1024;
		uint64_t *u = realloc(d->uids, cap * sizeof(*u));
		if (u == NULL)
			return ENOMEM;
		d->uids = u;
		unsigned char *st = realloc(d->statuses, cap);
		if (st == NULL)
			return ENOMEM;
		d->statuses = st;
		d->cap = cap;
	}
	d->uids[d->n] = uid;
	d->statuses[d->n++] = (unsigned char)status;
	return 0;
}

/* The key of the task under c, or UINT64_MAX past the end (no uid is UINT64_MAX: the
 * uids allocated stop short of it). */
static int
task_at(MDB_cursor *c, MDB_cursor_op op, MDB_val *k, MDB_val *v, uint64_t *uid)
{
	int rc = mdb_cursor_get(c, k, v, op);

	if (rc == MDB_NOTFOUND) {
		*uid = UINT64_MAX;
		return 0;
	}
	if (rc == 0 && k->mv_size != 8)
		return LMT_ECORRUPT;
	if (rc == 0)
		*uid = store_uid_key(k->mv_data);
	return rc;
}

/* Every task the restore changes: those of the backup the live store lacks or holds
 * otherwise (with the backup's status), and those only the live store has (removed). */
static int
diff_tasks(store *s, MDB_txn *txn, store *from, MDB_txn *ftxn, struct diff *d)
{
	MDB_cursor *lc = NULL, *bc = NULL;
	MDB_val lk, lv, bk, bv;
	uint64_t lu, bu;
	struct task t;
	int rc;

	if ((rc = mdb_cursor_open(txn, s->tasks, &lc)) != 0 ||
	    (rc = mdb_cursor_open(ftxn, from->tasks, &bc)) != 0)
		goto out;
	if ((rc = task_at(lc, MDB_FIRST, &lk, &lv, &lu)) != 0 ||
	    (rc = task_at(bc, MDB_FIRST, &bk, &bv, &bu)) != 0)
		goto out;
	while (lu != UINT64_MAX || bu != UINT64_MAX) {
		if (lu < bu) {
			if ((rc = diff_add(d, lu, FEED_REMOVED)) != 0 ||
			    (rc = task_at(lc, MDB_NEXT, &lk, &lv, &lu)) != 0)
				goto out;
			continue;
		}
		int same = lu == bu && lv.mv_size == bv.mv_size &&
		    memcmp(lv.mv_data, bv.mv_data, bv.mv_size) == 0;
		if (!same) {
			if ((rc = codec_decode(bv.mv_data, bv.mv_size, &t)) != 0 ||
			    (rc = diff_add(d, bu, t.status)) != 0)
				goto out;
		}
		if (lu == bu && (rc = task_at(lc, MDB_NEXT, &lk, &lv, &lu)) != 0)
			goto out;
		if ((rc = task_at(bc, MDB_NEXT, &bk, &bv, &bu)) != 0)
			goto out;
	}
out:
	mdb_cursor_close(bc);
	mdb_cursor_close(lc);
	return rc;
}

/* Empties to and fills it with from's entries, in order (appended, as mdb_load does). */
static int
copy_db(MDB_txn *txn, MDB_dbi to, MDB_txn *ftxn, MDB_dbi from, int have_from)
{
	MDB_cursor *tc = NULL, *fc = NULL;
	unsigned flags;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_drop(txn, to, 0)) != 0 || !have_from)
		return rc;
	if ((rc = mdb_dbi_flags(txn, to, &flags)) != 0 ||
	    (rc = mdb_cursor_open(txn, to, &tc)) != 0 ||
	    (rc = mdb_cursor_open(ftxn, from, &fc)) != 0)
		goto out;
	unsigned put = flags & MDB_DUPSORT ? MDB_APPENDDUP : MDB_APPEND;
	for (rc = mdb_cursor_get(fc, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(fc, &k, &v, MDB_NEXT))
		if ((rc = mdb_cursor_put(tc, &k, &v, put)) != 0)
			break;
	if (rc == MDB_NOTFOUND)
		rc = 0;
	else if (rc == MDB_KEYEXIST)
		rc = LMT_ECORRUPT;	/* the backup's order is not its own comparison's */
out:
	mdb_cursor_close(fc);
	mdb_cursor_close(tc);
	return rc;
}

/* meta's u64 under key, 0 when absent. */
static int
meta_u64(store *s, MDB_txn *txn, const char *key, uint64_t *v)
{
	int rc = store_meta_get(s, txn, key, v);

	if (rc == MDB_NOTFOUND) {
		*v = 0;
		rc = 0;
	}
	return rc;
}

/* meta's counter under key (u64, little-endian as store_meta_put() writes it) is kept at
 * least at was: a uid or batch uid handed out once is never handed out again. */
static int
keep_counter(store *s, MDB_txn *txn, const char *key, uint64_t was)
{
	uint64_t now;
	int rc = meta_u64(s, txn, key, &now);

	return rc ? rc : now < was ? store_meta_put(s, txn, key, was) : 0;
}

/* Logs the restore's changes after the live log's newest, in chunks, as log_added() in
 * store_write.c does. */
static int
log_diff(store *s, MDB_txn *txn, const struct diff *d)
{
	size_t i;
	int rc;

	if ((rc = store_log_skip(s, txn, d->n, &i)) != 0)
		return rc;
	for (uint64_t skip = i; i < d->n; i += STORE_LOG_CHUNK, skip = 0) {
		size_t m = d->n - i < STORE_LOG_CHUNK ? d->n - i : STORE_LOG_CHUNK;
		if ((rc = feed_append(s, txn, skip, d->uids + i, d->statuses + i, m)) != 0)
			return rc;
	}
	return 0;
}

int
store_restore_txn(store *s, MDB_txn *txn, store *from, MDB_txn *ftxn, uint64_t *changed)
{
	/* What the backup holds replaces what the store holds.  The change log and the
	 * webhooks (whose cursors count in it) stay the store's: subscribers (watch,
	 * /tasks/stream, webhooks) have read its sequences, which must not go back; the
	 * restore is logged after them as the changes it makes to each task. */
	const struct {
		size_t off, have;
	} dbs[] = {
		{ offsetof(store, meta), 0 },
		{ offsetof(store, tasks), 0 },
		{ offsetof(store, by_index), 0 },
		{ offsetof(store, by_status), 0 },
		{ offsetof(store, by_type), 0 },
		{ offsetof(store, queue), 0 },
		{ offsetof(store, counts), 0 },
		{ offsetof(store, indexes), 0 },
		{ offsetof(store, leases), 0 },
		{ offsetof(store, keys), 0 },
		{ offsetof(store, batches), offsetof(store, have_batches) },
		{ offsetof(store, delayed), offsetof(store, has_delayed) },	/* the schedule: */
		{ offsetof(store, ranked), offsetof(store, has_ranked) },	/* sched_from on */
	};
	const size_t sched_from = sizeof(dbs) / sizeof(dbs[0]) - 2;
	struct diff d = { 0 };
	uint64_t next_uid, next_batch;
	int rc;

	if (!s->has_changes || !s->have_batches)
		return LMT_EINVAL;	/* store_open() makes both for a writer */
	/* A backup with delayed or prioritised tasks brings the schedule's databases; one
	 * without them leaves the store's empty, or absent. */
	if ((from->has_delayed || from->has_ranked) && (rc = store_sched_make(s, txn)) != 0)
		return rc;
	if ((rc = meta_u64(s, txn, "next_uid", &next_uid)) != 0 ||
	    (rc = meta_u64(s, txn, "next_batch", &next_batch)) != 0 ||
	    (rc = diff_tasks(s, txn, from, ftxn, &d)) != 0)
		goto out;
	for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
		MDB_dbi to = *(MDB_dbi *)((char *)s + dbs[i].off);
		MDB_dbi fr = *(MDB_dbi *)((char *)from + dbs[i].off);
		int have = dbs[i].have ? *(int *)((char *)from + dbs[i].have) : 1;
		if (i >= sched_from && !*(int *)((char *)s + dbs[i].have))
			continue;	/* neither has it */
		if ((rc = copy_db(txn, to, ftxn, fr, have)) != 0)
			goto out;
	}
	if ((rc = keep_counter(s, txn, "next_uid", next_uid)) != 0 ||
	    (rc = keep_counter(s, txn, "next_batch", next_batch)) != 0 ||
	    (rc = log_diff(s, txn, &d)) != 0)
		goto out;
	*changed = d.n;
out:
	free(d.uids);
	free(d.statuses);
	return rc;
}
