/* The batch commands: batch get, batch list (the objects GET /batches serves at compat v1;
 * the store keeps batches at every level). */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "lmtasks/error.h"
#include "lmtasks/query.h"
#include "lmtasks/render.h"

const struct cli_command cli_cmd_batch = { "batch", NULL,
	"it is `batch get UID` or `batch list [filters]`", NULL };

/* A batch record that does not decode is named, as `get` names a task's. */
static int
batch_failed(int rc, uint64_t uid)
{
	if (rc == LMT_ECORRUPT)
		return cli_fail(EXIT_STORE, "batch %" PRIu64 ": the stored record is corrupt", uid);
	return cli_store_failure(rc, "reading");
}

static int
run_batch_get(const struct cli_args *a)
{
	struct cli_reader r;
	uint64_t uid;
	int rc, ret;

	if (a->argc != 1)
		return cli_usage(a->cmd, "it wants one batch UID");
	if ((ret = cli_parse_uid(a->argv[0], &uid)) != 0 || (ret = cli_reader_open(&r, "reading")) != 0)
		return ret;
	rc = render_batch_uid(r.pb, r.s, r.txn, uid, NULL, 0);
	if (rc == MDB_NOTFOUND)
		ret = cli_fail(EXIT_NOTFOUND, "batch %" PRIu64 " not found", uid);
	else
		ret = rc ? batch_failed(rc, uid) : cli_emit(r.pb);
	cli_reader_close(&r);
	return ret;
}

const struct cli_command cli_cmd_batch_get = { "batch get", NULL,
	"  batch get UID                       print a batch as GET /batches/UID serves it\n",
	run_batch_get };

static int
run_batch_list(const struct cli_args *a)
{
	struct query *q = malloc(sizeof(*q));
	struct cli_reader r = { NULL, NULL, NULL };
	uint64_t bad = 0;
	int rc, ret;

	if (q == NULL)
		return cli_fail(EXIT_STORE, "out of memory");
	query_init(q);
	q->v1 = 1;
	ret = a->argc ? cli_usage(a->cmd, "it takes no arguments, only filters") : cli_filters(a, q);
	if (ret == 0 && (ret = cli_reader_open(&r, "reading")) == 0) {
		rc = render_batch_page(r.pb, r.s, r.txn, q, NULL, 0, &bad);
		ret = rc ? batch_failed(rc, bad) : cli_emit(r.pb);
	}
	cli_reader_close(&r);
	free(q);
	return ret;
}

static const struct option batch_list_options[] = { CLI_FILTER_OPTIONS, { 0 } };
const struct cli_command cli_cmd_batch_list = { "batch list", batch_list_options,
	"  batch list [filters as for list]    the batches, newest first, as GET /batches\n",
	run_batch_list };
