/* Compaction of a live store (lmtasks compact).  Write side: only the CLI and the write
 * daemon link it.
 *
 * LMDB never gives a data file's free pages back to the file system: deleting tasks
 * makes room for new ones, but data.mdb keeps its size.  LMDB's compacting copy writes
 * the pages in use, renumbered, into a new file; that file is swapped in here while
 * readers keep serving.
 *
 * The hard part is LMDB's lock file.  Every process that has the store open shares
 * lock.mdb, which counts the last committed transaction (N) and picks the meta page
 * (N & 1) every new snapshot reads; a compacted copy starts its own count at 1, which
 * the lock file would take for a file gone back in time (store_replaced.c).  So the copy
 * is given the store's count: its newest meta page is written again as meta page N & 1
 * with txnid N, and as the other one with txnid N - 1.  Both describe the same tree,
 * the one the store holds at N, so whichever a reader picks, it reads that.
 *
 * The swap, in one write transaction held from before the copy until after the rename
 * (no writer of any process can commit meanwhile, so the copy is the store's last state):
 *
 *   1. the copy is written to PATH/data.mdb.compact, with the mode and group of
 *      data.mdb, then given the count N and synced;
 *   2. it is renamed over PATH/data.mdb (atomic), and the directory synced;
 *   3. the transaction is aborted (nothing was written in it) and this process opens the
 *      new file (store_reopen()).
 *
 * Other processes keep the old file open and mapped (renamed over, it lives as long as
 * they hold it).  It holds exactly the new file's state N, so their snapshots stay
 * right.  Before their next write, writers see that the path holds another file that
 * follows theirs (store_follows(): its transactions reach the lock's count) and open it
 * (store_write()).  The first commit on the new file moves the lock's count to N + 1,
 * which the old file lacks: a reader still on it has its snapshot refused (the check
 * every snapshot makes, store_check_snapshot()) and opens the new file before it reads
 * (reader.c); its once-a-second check does the same when no commit comes.  A process
 * killed anywhere leaves the store whole: before the rename nothing changed (a leftover
 * data.mdb.compact is removed by the next compaction), after it the store is the copy.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lmtasks/error.h"
#include "store_internal.h"

/* Writes meta page i of the copy fd: the newest meta m with txnid id. */
static int
put_meta(int fd, size_t psize, const unsigned char *page, unsigned i, size_t id)
{
	unsigned char buf[512];
	struct lmdb_page_head h;
	struct lmdb_meta m;

	memcpy(buf, page, sizeof(buf));
	memcpy(&h, buf, sizeof(h));
	memcpy(&m, buf + LMDB_META_AT, sizeof(m));
	h.pgno = i;
	m.txnid = id;
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + LMDB_META_AT, &m, sizeof(m));
	if (pwrite(fd, buf, sizeof(buf), (off_t)(i * psize)) != (ssize_t)sizeof(buf))
		return errno ? errno : EIO;
	return 0;
}

/* Gives the copy fd (LMDB's compacting copy: meta page 1 the newest, txnid 1) the
 * store's count n: meta page n & 1 gets txnid n, the other n - 1, both the same tree. */
static int
give_count(int fd, size_t psize, size_t n)
{
	unsigned char page[2][512];
	struct lmdb_meta m[2];
	int rc;

	for (unsigned i = 0; i < 2; i++) {
		if (pread(fd, page[i], sizeof(page[i]), (off_t)(i * psize)) != (ssize_t)sizeof(page[i]))
			return errno ? errno : EIO;
		memcpy(&m[i], page[i] + LMDB_META_AT, sizeof(m[i]));
		if (m[i].magic != LMDB_MAGIC || m[i].version != LMDB_DATA_VERSION)
			return LMT_ECORRUPT;
	}
	unsigned newest = m[1].txnid >= m[0].txnid ? 1 : 0;
	if (n < 2)
		return 0;	/* a store is never this new after init; its copy is right as it is */
	if ((rc = put_meta(fd, psize, page[newest], (unsigned)(n & 1), n)) != 0 ||
	    (rc = put_meta(fd, psize, page[newest], (unsigned)((n - 1) & 1), n - 1)) != 0)
		return rc;
	return 0;
}

/* Writes the compacted copy of s into tmp (made anew, data.mdb's mode and group),
 * gives it the count n, syncs it; *size gets its size. */
static int
write_copy(store *s, const char *tmp, const struct stat *st, size_t n, uint64_t *size)
{
	MDB_stat ms;
	struct stat cs;
	int fd, rc;

	(void)unlink(tmp);	/* a copy a killed compaction left */
	if ((fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, st->st_mode & 0666)) < 0)
		return errno;
	/* The web server's group reads the store: the copy must be readable the same way,
	 * and keep its owner (root compacting a store that is another user's). */
	if (fstat(fd, &cs) != 0 || fchmod(fd, st->st_mode & 0666) != 0 ||
	    ((cs.st_gid != st->st_gid || cs.st_uid != st->st_uid) &&
	    fchown(fd, cs.st_uid != st->st_uid ? st->st_uid : (uid_t)-1, st->st_gid) != 0)) {
		rc = errno;
		goto out;
	}
	if ((rc = mdb_env_stat(s->env, &ms)) != 0 ||
	    (rc = mdb_env_copyfd2(s->env, fd, MDB_CP_COMPACT)) != 0 ||
	    (rc = give_count(fd, ms.ms_psize, n)) != 0)
		goto out;
	if (fsync(fd) != 0 || fstat(fd, &cs) != 0) {
		rc = errno;
		goto out;
	}
	*size = (uint64_t)cs.st_size;
out:
	close(fd);
	return rc;
}

int
store_compact(store *s, uint64_t *pre, uint64_t *post, int *swapped)
{
	char data[PATH_MAX], tmp[PATH_MAX], dir[PATH_MAX];
	mdb_filehandle_t fd;
	struct stat st;
	MDB_txn *txn;
	int rc;

	if ((rc = store_data_file(s, data, sizeof(data), &fd)) != 0)
		return rc;
	if (snprintf(tmp, sizeof(tmp), "%s.compact", data) >= (int)sizeof(tmp) ||
	    snprintf(dir, sizeof(dir), "%s", store_path(s)) >= (int)sizeof(dir))
		return ENAMETOOLONG;
	/* The write lock, held to the end: no commit between the copy and the swap. */
	if ((rc = store_txn_begin(s, 0, &txn)) != 0)
		return rc;
	if ((rc = store_check_write_follow(s, txn)) != 0) {
		/* A file swapped in by another compaction: its writers follow it first. */
		mdb_txn_abort(txn);
		if (rc != 1)
			return rc;
		if ((rc = store_reopen(s)) != 0)
			return rc;
		return store_compact(s, pre, post, swapped);
	}
	if (fstat(fd, &st) != 0) {
		rc = errno;
		goto fail;
	}
	/* Only root can give the copy another user's ownership. */
	if (geteuid() != 0 && geteuid() != st.st_uid) {
		rc = EPERM;
		goto fail;
	}
	*pre = (uint64_t)st.st_size;
	if ((rc = write_copy(s, tmp, &st, mdb_txn_id(txn) - 1, post)) != 0)
		goto fail;
	if (rename(tmp, data) != 0) {
		rc = errno;
		goto fail;
	}
	*swapped = 1;
	rc = store_file_sync(dir, O_RDONLY | O_DIRECTORY);
	mdb_txn_abort(txn);
	/* The swap is done: this process follows it as every other does. */
	int rc2 = store_reopen(s);
	return rc ? rc : rc2;
fail:
	(void)unlink(tmp);
	mdb_txn_abort(txn);
	return rc;
}
