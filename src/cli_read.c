/* The commands that only read: get, list, wait (the same JSON the HTTP API serves). */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "lmtasks/error.h"
#include "lmtasks/query.h"
#include "lmtasks/render.h"
#include "lmtasks/timefmt.h"

/* Renders task uid into pb; returns an exit status, with the message for a failure. */
static int
render_uid(store *s, MDB_txn *txn, uint64_t uid, struct printbuf *pb, int *terminal)
{
	struct task t;
	int rc = store_get(s, txn, uid, &t);

	if (rc == MDB_NOTFOUND)
		return cli_fail(EXIT_NOTFOUND, "task %" PRIu64 " not found", uid);
	if (rc == LMT_ECORRUPT)
		return cli_fail(EXIT_STORE, "task %" PRIu64 ": the stored record is corrupt and "
		    "cannot be shown; run `lmtasks check`", uid);
	if (rc)
		return cli_store_failure(rc, "reading");
	if (terminal)
		*terminal = task_status_terminal(t.status);
	printbuf_reset(pb);
	if (render_task_as(pb, &t, cli_v1) != 0)
		return cli_fail(EXIT_STORE, "out of memory");
	return EXIT_DONE;
}

/* The handler of its table entry below. */
static int
run_get(const struct cli_args *a)
{
	struct cli_reader r;
	uint64_t uid;
	int ret;

	if (a->argc != 1)
		return cli_usage(a->cmd, "it wants one UID");
	if ((ret = cli_parse_uid(a->argv[0], &uid)) != 0 || (ret = cli_reader_open(&r, "reading")) != 0)
		return ret;
	if ((ret = render_uid(r.s, r.txn, uid, r.pb, NULL)) == EXIT_DONE)
		ret = cli_emit(r.pb);
	cli_reader_close(&r);
	return ret;
}

const struct cli_command cli_cmd_get = { "get", NULL,
	"  get UID                             print a task as the HTTP API serves it\n",
	run_get };

/* The filter flags into q, with the HTTP API's own checks; an exit status. */
static int
list_parse(const struct cli_args *a, struct query *q)
{
	int ret = cli_filters(a, q);

	if (ret)
		return ret;
	if (a->argc)
		return cli_usage(a->cmd, "it takes no arguments, only filters");
	return 0;
}

/* The handler of its table entry below. */
static int
run_list(const struct cli_args *a)
{
	struct query *q = malloc(sizeof(*q));
	struct cli_reader r = { NULL, NULL, NULL };
	store_iter *it = NULL;
	uint64_t bad = 0;
	int rc, ret;

	if (q == NULL)
		return cli_fail(EXIT_STORE, "out of memory");
	query_init(q);
	if ((ret = cli_reader_open(&r, "reading")) != 0)
		goto out;
	/* The filters parse as the store's compat level has them (batchUids at v1). */
	q->v1 = cli_v1;
	if ((ret = list_parse(a, q)) != 0)
		goto out;
	if ((rc = store_iter_open(r.s, r.txn, &it)) == 0)
		rc = render_task_page(r.pb, r.s, r.txn, it, q, &bad);
	if (rc == LMT_ECORRUPT)
		ret = cli_fail(EXIT_STORE, "task %" PRIu64 ": the stored record is corrupt and "
		    "cannot be listed; run `lmtasks check`", bad);
	else if (rc)
		ret = cli_store_failure(rc, "reading");
	else
		ret = cli_emit(r.pb);
out:
	store_iter_close(it);
	cli_reader_close(&r);
	free(q);
	return ret;
}

static const struct option list_options[] = { CLI_FILTER_OPTIONS, { 0 } };
const struct cli_command cli_cmd_list = { "list", list_options,
	"  list [--limit N] [--from UID] [--reverse] [FILTERS]\n"
	"                                      a page of tasks, newest first; FILTERS are\n"
	"                                      --uids, --statuses, --types, --indexUids,\n"
	"                                      --canceledBy (comma lists, * for any) and\n"
	"                                      --beforeEnqueuedAt, --afterEnqueuedAt,\n"
	"                                      --beforeStartedAt, --afterStartedAt,\n"
	"                                      --beforeFinishedAt, --afterFinishedAt (RFC 3339\n"
	"                                      or YYYY-MM-DD), as the HTTP API's parameters\n",
	run_list };

/* What wait looks at each time the store may have changed. */
struct wait_ctx {
	store *s;
	uint64_t uid;
	struct printbuf *pb;
};

/* Renders the task into pb: EXIT_DONE once it has finished, CLI_AGAIN until then. */
static int
wait_look(void *ctx)
{
	struct wait_ctx *w = ctx;
	MDB_txn *txn;
	int ret, terminal = 0, rc = store_read_follow(w->s, &txn);

	if (rc)
		return cli_store_failure(rc, "reading");
	ret = render_uid(w->s, txn, w->uid, w->pb, &terminal);
	mdb_txn_abort(txn);
	return ret == EXIT_DONE && !terminal ? CLI_AGAIN : ret;
}

/* The handler of its table entry below. */
static int
run_wait(const struct cli_args *a)
{
	int64_t timeout = -1;
	struct wait_ctx w;
	int ret;

	for (size_t i = 0; i < a->nopts; i++)
		if ((ret = cli_parse_seconds("--timeout", a->opts[i].value, &timeout)) != 0)
			return ret;
	if (a->argc != 1)
		return cli_usage(a->cmd, "it wants one UID");
	if ((ret = cli_parse_uid(a->argv[0], &w.uid)) != 0 || (ret = cli_open_reader(&w.s, &w.pb)) != 0)
		return ret;
	ret = cli_wait_for(wait_look, &w, timeout);
	if (ret == CLI_AGAIN)
		ret = cli_fail(EXIT_TIMEOUT, "task %" PRIu64 " is not finished yet; the wait "
		    "timed out", w.uid);
	if (ret == EXIT_DONE)
		ret = cli_emit(w.pb);
	printbuf_free(w.pb);
	store_close(w.s);
	return ret;
}

static const struct option wait_options[] = {
	{ "timeout", required_argument, NULL, 't' },
	{ 0 }
};
const struct cli_command cli_cmd_wait = { "wait", wait_options,
	"  wait UID [--timeout SECONDS]        block until the task is finished; print it\n",
	run_wait };
