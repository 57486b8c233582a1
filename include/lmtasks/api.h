/* One HTTP request of the tasks API answered from a read transaction: the responder's core,
 * shared by FastCGI and CGI, with no I/O of its own. */
#ifndef LMTASKS_API_H
#define LMTASKS_API_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/printbuf.h>

#include "lmtasks/pagecache.h"
#include "lmtasks/store.h"

#define API_QUERY_MAX 65536	/* a longer query string is refused (414) */

/* How long a cache may keep a finished task (seconds): such a task never changes; `delete`
 * may remove it, and a cache then shows it for at most this long (README, "Caches"). */
#define API_FINISHED_MAX_AGE 60

/* The CGI/FastCGI parameters the API reads; any may be NULL. */
struct api_request {
	const char *method;
	const char *request_uri;
	const char *script_name;
	const char *path_info;
	const char *query_string;
	const char *authorization;	/* HTTP_AUTHORIZATION */
	const char *if_none_match;	/* HTTP_IF_NONE_MATCH */
	const char *last_event_id;	/* HTTP_LAST_EVENT_ID (GET /tasks/stream) */
};

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
};

struct api_response {
	int status;
	int head;		/* HEAD: send the headers of GET, no body */
	const char *allow;	/* the Allow header's value, or NULL */
	const char *cache;	/* the Cache-Control header's value */
	char etag[40];		/* the ETag header's value (quoted), or "" */
	char log[800];		/* one line for the error log, or "" */
	/* GET /tasks/stream answered 200: the stream, for the transport to hold (or free
	 * with stream_sub_free); the body holds its first events.  NULL otherwise. */
	struct stream_sub *stream;
	int sse;		/* the answer is an event stream (also for HEAD) */
};

/* Answers rq: the body (always JSON) is appended to body, the rest goes to rs. */
void api_handle(const struct api_request *rq, struct api_reader *rd, struct printbuf *body,
    struct api_response *rs);

/* Writes the CGI header block (Status, Content-Type and Content-Length but on a 304,
 * ETag, Cache-Control, Allow, blank line) into buf (cap bytes, 256 is always enough);
 * returns its length.  For a stream: the event-stream headers, no length,
 * X-Accel-Buffering: no. */
size_t api_headers(const struct api_response *rs, size_t body_len, char *buf, size_t cap);

#endif
