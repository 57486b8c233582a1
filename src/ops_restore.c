/* lmtasks restore: a backup's contents made the live store's in one commit. */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "lmtasks/error.h"
#include "lmtasks/feed.h"
#include "ops_internal.h"

struct restore_ctx {
	store *from;
	MDB_txn *ftxn;
	uint64_t changed;
};

static int
restore_txn(store *s, MDB_txn *txn, void *ctx)
{
	struct restore_ctx *c = ctx;

	return store_restore_txn(s, txn, c->from, c->ftxn, &c->changed);
}

/* 1 when dir's data.mdb is the store's own file. */
static int
same_file(store *s, const char *dir)
{
	char a[PATH_MAX], b[PATH_MAX];
	struct stat sa, sb;

	snprintf(a, sizeof(a), "%s/data.mdb", dir);
	snprintf(b, sizeof(b), "%s/data.mdb", store_path(s));
	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	    sa.st_ino == sb.st_ino;
}

int
ops_restore(store *s, const char *dir, struct ops_restore_result *r)
{
	struct restore_ctx c = { NULL, NULL, 0 };
	struct store_stats st;
	MDB_txn *txn;
	int rc;

	memset(r, 0, sizeof(*r));
	r->backup_failed = 1;
	/* One process must not open one environment twice: closing the second copy would
	 * drop the locks the first holds. */
	if (same_file(s, dir))
		return LMT_EINVAL;
	if ((rc = store_open(dir, STORE_RDONLY, 0, &c.from)) != 0)
		return rc;
	if ((rc = store_txn_begin(c.from, MDB_RDONLY, &c.ftxn)) != 0)
		goto out;
	r->backup_failed = 0;
	if ((rc = store_write(s, restore_txn, &c)) != 0)
		goto out;
	r->changed = c.changed;
	if ((rc = store_txn_begin(s, MDB_RDONLY, &txn)) == 0) {
		if ((rc = store_stats(s, txn, &st)) == 0) {
			r->tasks = st.tasks;
			r->next_uid = st.next_uid;
		}
		mdb_txn_abort(txn);
	}
	/* The disk room kept for finishing and deleting, as after any write that grows. */
	(void)ops_keep_reserve(s, NULL);
out:
	if (c.ftxn)
		mdb_txn_abort(c.ftxn);
	store_close(c.from);
	return rc;
}
