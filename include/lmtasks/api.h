/* One HTTP request of the tasks API answered from a read transaction: the responder's route
 * table run through http_run(), shared by FastCGI and CGI, with no I/O of its own. */
#ifndef LMTASKS_API_H
#define LMTASKS_API_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/printbuf.h>

#include "lmtasks/http.h"
#include "lmtasks/metrics.h"
#include "lmtasks/pagecache.h"
#include "lmtasks/store.h"

/* How long a cache may keep a finished task (seconds): such a task never changes; `delete`
 * may remove it, and a cache then shows it for at most this long (README, "Caches"). */
#define API_FINISHED_MAX_AGE 60

/* What a worker remembers of the read snapshot it last served, under that snapshot's
 * transaction id: the store's compatibility level, which every request needs and which
 * changes only with a write (a new id). */
struct api_memo {
	uint64_t ident;		/* store_ident(): which store */
	uint64_t txn_id;	/* 0: nothing remembered */
	int level;		/* enum compat_level */
};

/* What the caller opened for the request; s NULL (with open_rc saying why) when the
 * store cannot be read, txn and it live for the request only. */
struct api_reader {
	store *s;
	int open_rc;
	const char *db_path;
	MDB_txn *txn;
	store_iter *it;
	const unsigned char *master;	/* the master key's hash; NULL: no key, all open */
	const char *damage;	/* open_rc LMT_EDAMAGED: what is wrong with the file */
	pagecache *pages;	/* the worker's list pages of this snapshot; NULL: none kept */
	struct api_memo *memo;	/* read-only transactions only; NULL: nothing remembered */
	metrics_worker *metrics;	/* the worker's counters (page cache); NULL: none kept */
	int route;		/* out: the route answered (enum route_kind), for the counters */
};

/* Answers rq: the body (JSON, or /metrics's text with rs->type) is appended to body, the
 * rest goes to rs. */
void api_handle(const struct api_request *rq, struct api_reader *rd, struct printbuf *body,
    struct api_response *rs);

#endif
