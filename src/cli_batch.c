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

static int
run_batch_get(const struct cli_args *a)
{
	struct printbuf *pb = NULL;
	MDB_txn *txn;
	uint64_t uid;
	store *s;
	int rc, ret;

	if (a->argc != 1)
		return cli_usage(a->cmd, "it wants one batch UID");
	if ((ret = cli_parse_uid(a->argv[0], &uid)) != 0 || (ret = cli_open_reader(&s, &pb)) != 0)
		return ret;
	if ((rc = store_txn_begin(s, MDB_RDONLY, &txn)) != 0) {
		ret = cli_store_failure(rc, "reading");
	} else {
		rc = render_batch_uid(pb, s, txn, uid, NULL, 0);
		mdb_txn_abort(txn);
		if (rc == MDB_NOTFOUND)
			ret = cli_fail(EXIT_NOTFOUND, "batch %" PRIu64 " not found", uid);
		else if (rc == LMT_ECORRUPT)
			ret = cli_fail(EXIT_STORE, "batch %" PRIu64 ": the stored record is corrupt",
			    uid);
		else if (rc)
			ret = cli_store_failure(rc, "reading");
		else
			ret = cli_emit(pb);
	}
	printbuf_free(pb);
	store_close(s);
	return ret;
}

const struct cli_command cli_cmd_batch_get = { "batch get", NULL,
	"  batch get UID                       print a batch as GET /batches/UID serves it\n",
	run_batch_get };

static int
run_batch_list(const struct cli_args *a)
{
	struct query *q = malloc(sizeof(*q));
	struct printbuf *pb = NULL;
	MDB_txn *txn = NULL;
	store *s = NULL;
	uint64_t bad = 0;
	int rc, ret;

	if (q == NULL)
		return cli_fail(EXIT_STORE, "out of memory");
	query_init(q);
	q->v1 = 1;
	ret = a->argc ? cli_usage(a->cmd, "it takes no arguments, only filters") : cli_filters(a, q);
	if (ret || (ret = cli_open_reader(&s, &pb)) != 0)
		goto out;
	if ((rc = store_txn_begin(s, MDB_RDONLY, &txn)) != 0) {
		ret = cli_store_failure(rc, "reading");
		goto out;
	}
	rc = render_batch_page(pb, s, txn, q, NULL, 0, &bad);
	if (rc == LMT_ECORRUPT)
		ret = cli_fail(EXIT_STORE, "batch %" PRIu64 ": the stored record is corrupt", bad);
	else if (rc)
		ret = cli_store_failure(rc, "reading");
	else
		ret = cli_emit(pb);
out:
	if (txn)
		mdb_txn_abort(txn);
	printbuf_free(pb);
	store_close(s);
	free(q);
	return ret;
}

static const struct option batch_list_options[] = { CLI_FILTER_OPTIONS, { 0 } };
const struct cli_command cli_cmd_batch_list = { "batch list", batch_list_options,
	"  batch list [filters as for list]    the batches, newest first, as GET /batches\n",
	run_batch_list };
