/* lmtasks watch: the change feed as NDJSON, one {"seq":N,"task":{...}} line per change of a
 * task that matches the list filters, woken by the store's data file changing. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "lmtasks/error.h"
#include "lmtasks/feed.h"
#include "lmtasks/query.h"
#include "lmtasks/render.h"
#include "lmtasks/timefmt.h"

#define READ_MAX 4096	/* changes read per transaction */

enum { OPT_SINCE = 1, OPT_UNTIL, OPT_TIMEOUT };

struct watch {
	store *s;
	struct query *q;
	struct printbuf *pb;
	uint64_t *pending;	/* --until-finished: the listed tasks not finished yet */
	size_t npending;
	struct feed_entry *e;	/* READ_MAX of them, read into */
	uint64_t since;		/* --since; UINT64_MAX: none */
	uint64_t cursor;	/* the last change printed or passed over */
	int until;		/* --until-finished */
	int looked;		/* the first look is done */
};

/* Prints one line for t at seq unless the filters exclude it; notes a finished listed
 * task.  Returns an exit status. */
static int
emit(struct watch *w, uint64_t seq, const struct task *t)
{
	if (task_status_terminal(t->status)) {
		for (size_t i = 0; i < w->npending; i++) {
			if (w->pending[i] == t->uid) {
				w->pending[i] = w->pending[--w->npending];
				break;
			}
		}
	}
	if (!query_match(w->q, t))
		return EXIT_DONE;
	printbuf_reset(w->pb);
	if (render_change(w->pb, seq, t, cli_v1) != 0)
		return cli_fail(EXIT_STORE, "out of memory");
	if (fwrite(w->pb->buf, 1, (size_t)w->pb->bpos, stdout) != (size_t)w->pb->bpos)
		return cli_fail(EXIT_STORE, "writing the output: %s", strerror(errno));
	return EXIT_DONE;
}

/* Reads task uid in txn and emits it; a task deleted since is passed over. */
static int
emit_uid(struct watch *w, MDB_txn *txn, uint64_t seq, uint64_t uid)
{
	struct task t;
	int rc = store_get(w->s, txn, uid, &t);

	if (rc == MDB_NOTFOUND)
		return EXIT_DONE;
	if (rc == LMT_ECORRUPT)
		return cli_fail(EXIT_STORE, "task %" PRIu64 ": the stored record is corrupt and "
		    "cannot be shown; run `lmtasks check`", uid);
	if (rc)
		return cli_store_failure(rc, "reading");
	return emit(w, seq, &t);
}

/*
 * The listed tasks as they are now, each under the sequence of its latest change, in
 * that order: resuming after any line replays exactly the changes that followed it.
 * *cursor gets the newest sequence of the same snapshot.
 */
static int
current_state(struct watch *w, MDB_txn *txn, uint64_t *cursor)
{
	const struct query *q = w->q;
	struct feed_position st[QUERY_LIST_MAX];
	uint64_t first, next;
	int rc, ret = EXIT_DONE;

	if ((rc = feed_bounds(w->s, txn, &first, cursor)) != 0 ||
	    (rc = feed_current(w->s, txn, q->uids, q->nuids, st)) != 0 ||
	    (rc = store_next_uid(w->s, txn, &next)) != 0)
		return cli_store_failure(rc, "reading");
	for (size_t i = 0; i < q->nuids; i++) {
		struct task t;
		if (q->uids[i] >= next)
			continue;	/* not enqueued yet: its changes will come */
		if ((rc = store_get(w->s, txn, q->uids[i], &t)) == MDB_NOTFOUND)
			return cli_fail(EXIT_NOTFOUND, "task %" PRIu64 " not found", q->uids[i]);
		if (rc)
			return cli_store_failure(rc, "reading");
	}
	for (size_t i = 0; i < q->nuids && ret == EXIT_DONE; i++)
		ret = emit_uid(w, txn, st[i].seq, st[i].uid);
	return ret;
}

/* Prints the changes after *cursor until none are left; an exit status. */
static int
drain(struct watch *w, MDB_txn *txn, uint64_t *cursor, struct feed_entry *e)
{
	size_t n;
	int rc, ret = EXIT_DONE;

	do {
		uint64_t was = *cursor;
		rc = feed_read(w->s, txn, cursor, e, READ_MAX, &n);
		if (rc == LMT_EPRUNED)
			return cli_fail(EXIT_NOTFOUND, "the change log no longer holds the changes "
			    "after sequence %" PRIu64 " (pruned past feedRetention); watch again "
			    "without --since, after reading the tasks' current state", was);
		if (rc)
			return cli_store_failure(rc, "reading");
		for (size_t i = 0; i < n && ret == EXIT_DONE; i++) {
			if (e[i].status != FEED_REMOVED)
				ret = emit_uid(w, txn, e[i].seq, e[i].uid);
		}
		if (*cursor == was)
			break;
	} while (ret == EXIT_DONE);
	return ret;
}

/* The options into w and the watch's own settings; an exit status. */
static int
parse(const struct cli_args *a, struct watch *w, uint64_t *since, int *until, int64_t *timeout)
{
	for (size_t i = 0; i < a->nopts; i++) {
		const char *v = a->opts[i].value;
		int id = a->opts[i].id, ret;
		if (id == OPT_SINCE) {
			if ((ret = cli_parse_uid(v, since)) != 0)
				return ret;
		} else if (id == OPT_UNTIL) {
			*until = 1;
		} else if (id == OPT_TIMEOUT) {
			if ((ret = cli_parse_seconds("--timeout", v, timeout)) != 0)
				return ret;
		} else if ((ret = cli_filter_set(a->cmd, w->q, id, v, NULL)) != 0) {
			return ret;
		}
	}
	if (a->argc)
		return cli_usage(a->cmd, "it takes no arguments, only filters");
	if (*until && w->q->nuids == 0)
		return cli_usage(a->cmd, "--until-finished wants --uids: the tasks to wait for");
	return 0;
}

/* The first look: the listed tasks as they are, the changes after --since, or only
 * where the log ends; an exit status. */
static int
first_look(struct watch *w, uint64_t since)
{
	uint64_t first;
	MDB_txn *txn;
	int rc, ret = EXIT_DONE;

	if ((rc = store_read_follow(w->s, &txn)) != 0)
		return cli_store_failure(rc, "reading");
	if (since != UINT64_MAX) {
		w->cursor = since;
		ret = drain(w, txn, &w->cursor, w->e);
	} else if (w->q->nuids) {
		ret = current_state(w, txn, &w->cursor);
	} else if ((rc = feed_bounds(w->s, txn, &first, &w->cursor)) != 0) {
		ret = cli_store_failure(rc, "reading");
	}
	mdb_txn_abort(txn);
	return ret;
}

/* Prints what changed since the last look; CLI_AGAIN while there is more to watch. */
static int
look(void *ctx)
{
	struct watch *w = ctx;
	MDB_txn *txn;
	int rc, ret;

	if (w->looked) {
		/* A store made by 0.1.0 gets its log at its first write. */
		if ((rc = feed_refresh(w->s)) != 0 || (rc = store_read_follow(w->s, &txn)) != 0)
			return cli_store_failure(rc, "reading");
		ret = drain(w, txn, &w->cursor, w->e);
		mdb_txn_abort(txn);
	} else {
		ret = first_look(w, w->since);
		w->looked = 1;
	}
	if (ret != EXIT_DONE || (w->until && w->npending == 0))
		return ret;
	if (fflush(stdout) != 0)
		return cli_fail(EXIT_STORE, "writing the output: %s", strerror(errno));
	return CLI_AGAIN;
}

/* The watch's buffers and the store; an exit status. */
static int
setup(const struct cli_args *a, struct watch *w, int64_t *timeout)
{
	int ret;

	w->q = malloc(sizeof(*w->q));
	w->e = malloc(READ_MAX * sizeof(*w->e));
	if (w->q == NULL || w->e == NULL)
		return cli_fail(EXIT_STORE, "out of memory");
	query_init(w->q);
	if ((ret = parse(a, w, &w->since, &w->until, timeout)) != 0 ||
	    (ret = cli_open(STORE_RDONLY, &w->s)) != 0)
		return ret;
	if ((w->pb = printbuf_new()) == NULL ||
	    (w->until && (w->pending = malloc(w->q->nuids * sizeof(uint64_t))) == NULL))
		return cli_fail(EXIT_STORE, "out of memory");
	if (w->until) {
		memcpy(w->pending, w->q->uids, w->q->nuids * sizeof(uint64_t));
		w->npending = w->q->nuids;
	}
	return EXIT_DONE;
}

static int
run_watch(const struct cli_args *a)
{
	struct watch w = { .since = UINT64_MAX };
	int64_t timeout = -1;
	int ret;

	if ((ret = setup(a, &w, &timeout)) == EXIT_DONE) {
		ret = cli_wait_for(look, &w, timeout);
		if (ret == CLI_AGAIN)
			ret = cli_fail(EXIT_TIMEOUT, "the watch timed out");
		if (fflush(stdout) != 0 && ret == EXIT_DONE)
			ret = cli_fail(EXIT_STORE, "writing the output: %s", strerror(errno));
	}
	free(w.pending);
	if (w.pb)
		printbuf_free(w.pb);
	store_close(w.s);
	free(w.q);
	free(w.e);
	return ret;
}

static const struct option watch_options[] = {
	CLI_FILTER_OPTIONS,
	{ "since", required_argument, NULL, OPT_SINCE },
	{ "until-finished", no_argument, NULL, OPT_UNTIL },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ 0 }
};
const struct cli_command cli_cmd_watch = { "watch", watch_options,
	"  watch [FILTERS] [--since SEQ] [--until-finished] [--timeout SECONDS]\n"
	"                                      print each change of a task that matches\n"
	"                                      (FILTERS as for list) as it is committed, one\n"
	"                                      {\"seq\":N,\"task\":{...}} line each (the task as\n"
	"                                      get prints it); --since resumes after a seq;\n"
	"                                      with --uids first the tasks as they are (seq:\n"
	"                                      their latest change), and --until-finished\n"
	"                                      ends when all of them have finished\n",
	run_watch };
