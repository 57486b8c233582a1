/* The commands that send tasks back or end them: retry (failed tasks to the queue again)
 * and cancel.  Each parses its arguments, calls one write operation, renders. */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "lmtasks/error.h"
#include "lmtasks/ops.h"
#include "lmtasks/query.h"

/* ---- retry ---- */

/* retry's flags into q (failed tasks only); *given says whether any selects.  An exit
 * status. */
static int
retry_filters(const struct cli_args *a, struct query *q, int *given)
{
	struct query_error err;
	int ret = 0;

	*given = 0;
	for (size_t i = 0; i < a->nopts && ret == 0; i++) {
		int id = a->opts[i].id;
		const char *v = a->opts[i].value;
		if (id == 'A') {
			*given = 1;
			continue;
		}
		if (id == CLI_FILTER + 4)
			return cli_usage(a->cmd, "it retries failed tasks only: no --statuses");
		/* --index and --type are claim's and work's words for indexUids and types. */
		if (id == 'i')
			id = CLI_FILTER + 6;
		else if (id == 't')
			id = CLI_FILTER + 5;
		ret = cli_filter_set(a->cmd, q, id, v, NULL);
		*given = 1;
	}
	if (ret == 0 && query_set(q, "statuses", "failed", 6, &err) != 0)
		ret = cli_fail(EXIT_USAGE, "%s: %s", a->cmd, err.message);
	return ret;
}

/* Says why each task named was left as it was; returns the exit status of the whole. */
static int
retry_report(const struct ops_retry *r)
{
	int ret = EXIT_DONE, refused = 0, missing = 0;

	for (size_t i = 0; i < r->nout; i++) {
		const struct task *t = &r->out[i].t;
		switch (r->rcs[i]) {
		case 0:
			if (ret == EXIT_DONE)
				ret = cli_print(cli_render_task, &r->out[i]);
			break;
		case MDB_NOTFOUND:
			cli_warn("task %" PRIu64 " not found", r->out_uids[i]);
			missing = 1;
			break;
		case LMT_ETOOBIG:
			cli_warn("task %" PRIu64 " has had the most attempts a task may have (%d); it "
			    "was left failed", t->uid, TASK_ATTEMPTS_MAX);
			refused = 1;
			break;
		default:
			cli_warn("task %" PRIu64 " is %s: only a failed task can be retried; it was "
			    "left as it is", t->uid, task_status_name(t->status));
			refused = 1;
		}
	}
	/* As cancel: some retried, the others said (warnings), is done. */
	if (ret != EXIT_DONE || r->retried > 0)
		return ret;
	return refused ? EXIT_REFUSED : missing ? EXIT_NOTFOUND : EXIT_DONE;
}

/* The handler of its table entry below. */
static int
run_retry(const struct cli_args *a)
{
	struct ops_retry r = { 0 };
	struct query *q = malloc(sizeof(*q));
	uint64_t *uids = NULL;
	int given, rc, ret;
	store *s;

	if (q == NULL)
		return cli_fail(EXIT_STORE, "out of memory");
	query_init(q);
	if ((ret = retry_filters(a, q, &given)) != 0)
		goto out;
	if (given == (a->argc > 0)) {
		ret = cli_usage(a->cmd, given ? "give UID... or filters, not both" : "say which "
		    "tasks: UID..., filters such as --index I or --type T, or --all");
		goto out;
	}
	if (a->argc > OPS_RETRY_MAX) {
		ret = cli_usagef(a->cmd, "at most %d uids at once", OPS_RETRY_MAX);
		goto out;
	}
	if (a->argc && (uids = calloc((size_t)a->argc, sizeof(*uids))) == NULL) {
		ret = cli_fail(EXIT_STORE, "out of memory");
		goto out;
	}
	for (int i = 0; i < a->argc && ret == 0; i++)
		ret = cli_parse_uid(a->argv[i], &uids[i]);
	if (ret || (ret = cli_open(0, &s)) != 0)
		goto out;
	r.uids = uids;
	r.n = (size_t)a->argc;
	r.q = uids ? NULL : q;
	rc = ops_retry(s, &r);
	store_close(s);
	if (rc == LMT_ECORRUPT)
		ret = cli_fail(EXIT_STORE, "task %" PRIu64 ": the stored record is corrupt; run "
		    "`lmtasks check`; nothing was retried", r.bad);
	else if (rc)
		ret = cli_store_failure(rc, "nothing was retried; writing");
	else if (!uids && r.nout == 0)
		cli_warn("no failed task matches; nothing was changed");
	else
		ret = retry_report(&r);
	ops_retry_free(&r);
out:
	free(uids);
	free(q);
	return ret;
}

static const struct option retry_options[] = {
	CLI_FILTER_OPTIONS,
	{ "index", required_argument, NULL, 'i' },
	{ "type", required_argument, NULL, 't' },
	{ "all", no_argument, NULL, 'A' },
	{ 0 }
};
const struct cli_command cli_cmd_retry = { "retry", retry_options,
	"  retry UID... | --all | [--index I] [--type T] [FILTERS]\n"
	"                                      put failed tasks back in the queue at once, one\n"
	"                                      more attempt for those that had none left; prints\n"
	"                                      them one JSON a line; other tasks are refused\n",
	run_retry };

/* ---- cancel ---- */

/* ?uids=1,2,3: the originalFilter of the taskCancelation task. */
static char *
uids_filter(const uint64_t *uids, size_t n)
{
	char *f = malloc(8 + 21 * n);
	size_t fl;

	if (f == NULL)
		return NULL;
	fl = (size_t)sprintf(f, "?uids=");
	for (size_t i = 0; i < n; i++)
		fl += (size_t)sprintf(f + fl, "%s%" PRIu64, i ? "," : "", uids[i]);
	return f;
}

/* The handler of its table entry below. */
static int
run_cancel(const struct cli_args *a)
{
	struct ops_record_result r;
	uint64_t *uids = NULL;
	char *filter = NULL;
	size_t n = (size_t)a->argc;
	store *s;
	int rc, ret = EXIT_DONE;

	if (n == 0)
		return cli_usage(a->cmd, "it wants one UID or more");
	if (n > OPS_CANCEL_MAX)
		return cli_usagef(a->cmd, "at most %d uids at once", OPS_CANCEL_MAX);
	if ((uids = calloc(n, sizeof(*uids))) == NULL)
		return cli_fail(EXIT_STORE, "out of memory");
	for (size_t i = 0; i < n && ret == 0; i++)
		ret = cli_parse_uid(a->argv[i], &uids[i]);
	if (ret)
		goto out;
	if ((filter = uids_filter(uids, n)) == NULL) {
		ret = cli_fail(EXIT_STORE, "out of memory");
		goto out;
	}
	if ((ret = cli_open(0, &s)) != 0)
		goto out;
	rc = ops_cancel(s, uids, n, filter, &r);
	store_close(s);
	if (rc == MDB_NOTFOUND) {
		ret = cli_fail(EXIT_NOTFOUND, "task %" PRIu64 " not found; nothing was canceled",
		    r.missing);
	} else if (rc == LMT_ETRANSITION) {
		ret = cli_fail(EXIT_REFUSED, "%s already finished; only enqueued or processing "
		    "tasks can be canceled; nothing was changed",
		    n == 1 ? "the task has" : "every task given has");
	} else if (rc) {
		ret = cli_store_failure(rc, "nothing was canceled; writing");
	} else {
		if (r.changed < n)
			cli_warn("%zu of %zu tasks had already finished and were left as they are",
			    n - (size_t)r.changed, n);
		ret = cli_print(cli_render_task, &r.out);
		ops_task_free(&r.out);
	}
out:
	free(uids);
	free(filter);
	return ret;
}

const struct cli_command cli_cmd_cancel = { "cancel", NULL,
	"  cancel UID...                       cancel enqueued or processing tasks\n",
	run_cancel };
