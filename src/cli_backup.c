/* The backup commands: backup DIR (LMDB's own copy of the live store), restore DIR (the
 * backup's contents made the store's in one commit, under running readers), compact (a
 * compacted copy swapped in for the data file, under running readers). */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "cli.h"
#include "lmtasks/error.h"
#include "lmtasks/ops.h"
#include "lmtasks/report.h"

struct backup_out {
	const char *dir;
	uint64_t tasks, next_uid, changed;
};

static int
render_backup(struct printbuf *pb, const void *ctx)
{
	const struct backup_out *o = ctx;

	return report_backup(pb, o->dir, o->tasks, o->next_uid);
}

static int
render_restore(struct printbuf *pb, const void *ctx)
{
	const struct backup_out *o = ctx;

	return report_restore(pb, o->dir, o->tasks, o->changed, o->next_uid);
}

/* The handler of its table entry below. */
static int
run_backup(const struct cli_args *a)
{
	struct backup_out o = { NULL, 0, 0, 0 };
	struct store_stats st;
	MDB_txn *txn;
	store *s, *b;
	int rc, ret;

	if (a->argc != 1)
		return cli_usage(a->cmd, "it wants the directory to copy the store into");
	o.dir = a->argv[0];
	if ((ret = cli_open(STORE_RDONLY, &s)) != 0)
		return ret;
	rc = store_backup(s, o.dir);
	store_close(s);
	if (rc == EEXIST)
		return cli_fail(EXIT_STORE, "backup: %s is not empty: a backup goes into a new "
		    "directory, or an empty one", o.dir);
	if (rc)
		return cli_fail(EXIT_STORE, "backup: copying %s into %s: %s", cli_db, o.dir,
		    lmt_strerror(rc));
	/* Read back from the copy: what it holds, and that it opens. */
	if ((rc = store_open(o.dir, STORE_RDONLY, 0, &b)) != 0)
		return cli_fail(EXIT_STORE, "backup: the copy in %s does not open: %s", o.dir,
		    lmt_strerror(rc));
	if ((rc = store_txn_begin(b, MDB_RDONLY, &txn)) == 0) {
		if ((rc = store_stats(b, txn, &st)) == 0) {
			o.tasks = st.tasks;
			o.next_uid = st.next_uid;
		}
		mdb_txn_abort(txn);
	}
	store_close(b);
	if (rc)
		return cli_fail(EXIT_STORE, "backup: reading the copy in %s: %s", o.dir,
		    lmt_strerror(rc));
	return cli_print(render_backup, &o);
}

const struct cli_command cli_cmd_backup = { "backup", NULL,
	"  backup DIR                          copy the store into DIR (new, or empty), in\n"
	"                                      one read transaction: writers go on\n",
	run_backup };

/* The handler of its table entry below. */
static int
run_restore(const struct cli_args *a)
{
	struct ops_restore_result r;
	struct backup_out o = { NULL, 0, 0, 0 };
	store *s;
	int rc, ret;

	if (a->argc != 1)
		return cli_usage(a->cmd, "it wants the directory of a backup (`lmtasks backup DIR`)");
	o.dir = a->argv[0];
	if ((ret = cli_open(0, &s)) != 0)
		return ret;
	rc = ops_restore(s, o.dir, &r);
	store_close(s);
	if (rc && r.backup_failed) {
		if (rc == LMT_EINVAL)
			return cli_fail(EXIT_USAGE, "restore: %s is the store itself, not a backup of "
			    "it", o.dir);
		if (rc == LMT_ENOSTORE)
			return cli_fail(EXIT_STORE, "restore: no lmtasks store in %s: give the "
			    "directory `lmtasks backup DIR` made; nothing was changed", o.dir);
		return cli_fail(EXIT_STORE, "restore: the backup in %s cannot be read: %s; nothing "
		    "was changed", o.dir, lmt_strerror(rc));
	}
	if (rc)
		return cli_store_failure(rc, "restore: nothing was changed; writing");
	o.tasks = r.tasks;
	o.changed = r.changed;
	o.next_uid = r.next_uid;
	return cli_print(render_restore, &o);
}

const struct cli_command cli_cmd_restore = { "restore", NULL,
	"  restore DIR                         make the store hold what the backup in DIR\n"
	"                                      holds, in one transaction: running responders\n"
	"                                      serve it at their next request; the change log\n"
	"                                      goes on and records what changed\n",
	run_restore };

static int
render_compaction(struct printbuf *pb, const void *ctx)
{
	const struct ops_compact_result *r = ctx;

	return report_compaction(pb, r->pre_size, r->post_size);
}

/* The handler of its table entry below. */
static int
run_compact(const struct cli_args *a)
{
	struct ops_compact_result r;
	store *s;
	int rc, ret;

	if (a->argc != 0)
		return cli_usage(a->cmd, "it takes no argument");
	if ((ret = cli_open(0, &s)) != 0)
		return ret;
	rc = ops_compact(s, &r);
	store_close(s);
	if (rc == EPERM && !r.swapped)
		return cli_fail(EXIT_STORE, "compact: the store is as it was: %s/data.mdb belongs to "
		    "another user, whose file the compacted copy must stay; compact as that user, or "
		    "as root", cli_db);
	if (rc && r.swapped)
		return cli_store_failure(rc, "compact: data.mdb is now its compacted copy, which "
		    "holds every task, but a step after the swap (the directory's sync, or opening "
		    "the new file) failed for the store at");
	if (rc)
		return cli_store_failure(rc, "compact: the store is as it was; compacting");
	return cli_print(render_compaction, &r);
}

const struct cli_command cli_cmd_compact = { "compact", NULL,
	"  compact                             shrink data.mdb to the pages in use: LMDB's\n"
	"                                      compacting copy, swapped in while the write\n"
	"                                      lock is held; running responders go on and\n"
	"                                      follow it; prints preSize and postSize\n",
	run_compact };
