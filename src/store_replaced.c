/* Whether the data file a process has open is still the store's: a data.mdb copied or
 * moved over a store under a running process is refused, never read or written.
 *
 * LMDB keeps the id of the last committed transaction twice: in the data file's two meta
 * pages, and in lock.mdb (mti_txnid), which every process that has the environment open
 * shares and which only the first process to open it sets from the file.  A reader takes
 * the meta page of the lock's id (metas[id & 1]) and a writer builds on it, so a data file
 * replaced under a running process is read at a meta page of the lock's choosing: a
 * backup of txn 4 copied over a store at txn 5 reads as txn 3, and the next commit (txn 6,
 * built on 3) overwrites txn 4's meta page.  Healthy, the lock's id is never past the
 * file's newest meta page (a commit writes its meta page before it moves the lock's id),
 * and inside a write transaction, which no commit can race, the two are equal.  These
 * checks compare them, and the file at the store's path with the one open.
 *
 * One file at the path that is not the one open is the store's all the same: the
 * compacted copy `lmtasks compact` renames over it, whose newest meta page carries
 * exactly the id the lock counts and the other one the id before (store_compact.c), as
 * do the commits made on it since.  A file with more transactions (a newer backup,
 * another store's file) or fewer is not followed.  A process
 * follows it (store_follows(), store_reopen()) instead of refusing it. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lmtasks/error.h"
#include "store_replaced.h"

static __thread char why[PATH_MAX + 200];

const char *
store_check_replaced_text(void)
{
	return why;
}

/* Says which file went which way; returns LMT_EREPLACED. */
static int
replaced(const char *dir, size_t lock_id, size_t file_id)
{

	if (lock_id > file_id)
		snprintf(why, sizeof(why), "%s/data.mdb holds transactions up to %zu, but the "
		    "store's lock file says %zu were committed: it went back in time", dir, file_id,
		    lock_id);
	else
		snprintf(why, sizeof(why), "%s/data.mdb holds transactions up to %zu, past the %zu "
		    "the store's lock file says were committed", dir, file_id, lock_id);
	return LMT_EREPLACED;
}

int
replaced_snapshot(MDB_env *env, const char *dir, MDB_txn *txn)
{
	MDB_envinfo info;
	/* The lock's id first (the transaction took it when it began), the file's metas
	 * after: a commit in between moves the file first, so it cannot look like a file
	 * that went back.  Read the other way round, a commit in between would. */
	size_t id = mdb_txn_id(txn);
	int rc = mdb_env_info(env, &info);

	if (rc != 0)
		return rc;
	return id > info.me_last_txnid ? replaced(dir, id, info.me_last_txnid) : 0;
}

int
replaced_data_file(MDB_env *env, const char *dir, char *data, size_t size,
    mdb_filehandle_t *fd)
{
	snprintf(data, size, "%s/data.mdb", dir);
	return env ? mdb_env_get_fd(env, fd) : EINVAL;
}

int
replaced_check(MDB_env *env, const char *dir)
{
	mdb_filehandle_t fd;
	struct stat open_st, path_st;
	char data[PATH_MAX];
	MDB_txn *txn;
	int rc;

	/* A file moved over data.mdb (or written anew) is not the one this process maps. */
	if ((rc = replaced_data_file(env, dir, data, sizeof(data), &fd)) != 0)
		return rc;
	if (fstat(fd, &open_st) != 0)
		return errno;
	if (stat(data, &path_st) == 0 &&
	    (path_st.st_dev != open_st.st_dev || path_st.st_ino != open_st.st_ino)) {
		snprintf(why, sizeof(why), "%s is another file than the one this process has "
		    "open", data);
		return LMT_EREPLACED;
	}
	/* A file copied over it in place: the same inode, its transactions gone back.  A map
	 * grown by another process is adopted by the next reader; the next check sees. */
	rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
	if (rc == MDB_MAP_RESIZED)
		return 0;
	if (rc != 0)
		return rc;
	rc = replaced_snapshot(env, dir, txn);
	mdb_txn_abort(txn);
	return rc;
}

int
replaced_check_write(MDB_env *env, const char *dir, MDB_txn *txn)
{
	MDB_envinfo info;
	/* No commit can race a write transaction: the lock's last id (this one's less one)
	 * is the file's newest meta page's, or the file is not the one the lock counts. */
	size_t id = mdb_txn_id(txn) - 1;
	int rc = mdb_env_info(env, &info);

	if (rc != 0)
		return rc;
	return id != info.me_last_txnid ? replaced(dir, id, info.me_last_txnid) : 0;
}

int
store_file_txnid(const char *data, size_t psize, size_t *txnid, size_t *older)
{
	unsigned char page[2][512];
	size_t id[2] = { 0, 0 };
	int fd = open(data, O_RDONLY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return errno;
	/* Only the start of each page matters: the header and the meta after it. */
	for (int i = 0; i < 2 && rc == 0; i++) {
		ssize_t n = pread(fd, page[i], sizeof(page[i]), (off_t)(i * psize));
		struct lmdb_page_head h;
		struct lmdb_meta m;

		if (n < (ssize_t)(LMDB_META_AT + sizeof(m))) {
			rc = n < 0 ? errno : LMT_ENOSTORE;
			break;
		}
		memcpy(&h, page[i], sizeof(h));
		memcpy(&m, page[i] + LMDB_META_AT, sizeof(m));
		if (!(h.flags & LMDB_P_META) || m.magic != LMDB_MAGIC || m.version != LMDB_DATA_VERSION)
			rc = LMT_ENOSTORE;
		else
			id[i] = m.txnid;
	}
	close(fd);
	if (rc == 0) {
		*txnid = id[0] > id[1] ? id[0] : id[1];
		if (older)
			*older = id[0] > id[1] ? id[1] : id[0];
	}
	return rc;
}

/* Whether the file data is this store's compacted successor as far as its meta pages
 * tell: its newest transaction is exactly the one the lock counts (lock_id), kept at the
 * meta page of that parity (the one every snapshot reads), the other meta page the one
 * before (what store_compact() writes, and every commit on the copy since keeps).  A
 * backup, or another store's file, with more transactions or fewer is not: *is 1 when it
 * is, else 0; returns 0 or an error. */
static int
successor(MDB_env *env, const char *data, size_t psize, size_t *lock_id, int *is)
{
	MDB_txn *txn;
	size_t file_id, older;
	int rc;

	/* The lock's count first: a commit on the file at the path after it raises the
	 * file's count past it, which the next try sees settled. */
	if ((rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) != 0)
		return rc;
	*lock_id = mdb_txn_id(txn);
	mdb_txn_abort(txn);
	*is = 0;
	if ((rc = store_file_txnid(data, psize, &file_id, &older)) != 0)
		return rc == LMT_ENOSTORE ? 0 : rc;
	*is = file_id == *lock_id && older + 1 == file_id;
	return 0;
}

int
replaced_follows(MDB_env *env, const char *dir)
{
	mdb_filehandle_t fd;
	struct stat open_st, path_st;
	char data[PATH_MAX];
	MDB_envinfo info;
	MDB_stat ms;
	size_t lock_id = 0;
	int rc, is;

	if ((rc = replaced_data_file(env, dir, data, sizeof(data), &fd)) != 0)
		return rc;
	if (fstat(fd, &open_st) != 0)
		return errno;
	if (stat(data, &path_st) != 0)
		return errno;
	if (path_st.st_dev == open_st.st_dev && path_st.st_ino == open_st.st_ino)
		return 0;
	if ((rc = mdb_env_info(env, &info)) != 0 || (rc = mdb_env_stat(env, &ms)) != 0)
		return rc;
	/* A commit on the new file between the two reads: tried again, a few times. */
	for (int attempt = 0; attempt < 3; attempt++) {
		if ((rc = successor(env, data, ms.ms_psize, &lock_id, &is)) != 0)
			return rc;
		if (is && lock_id >= info.me_last_txnid)
			return 1;
	}
	snprintf(why, sizeof(why), "%s is another file than the one this process has open, and "
	    "not a compacted copy of it (its newest transaction is not the %zu the store's lock "
	    "file counts)", data, lock_id);
	return LMT_EREPLACED;
}

int
replaced_check_write_follow(MDB_env *env, const char *dir, MDB_txn *txn)
{
	int rc = replaced_check_write(env, dir, txn), f;

	/* The file open gone behind the lock (commits on a file swapped in) or not: the
	 * path decides whether there is a file to follow. */
	if (rc != 0 && rc != LMT_EREPLACED)
		return rc;
	if ((f = replaced_follows(env, dir)) == 1 || (rc == 0 && f != 0))
		return f;
	return rc;
}

int
store_file_sync(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return errno;
	if (fsync(fd) != 0)
		rc = errno;
	close(fd);
	return rc;
}
