/* The write routes of the tasks API, POST /tasks/cancel and DELETE /tasks, answered through
 * the write library: the core of lmtasks-writer, shared by FastCGI and CGI, no I/O of its
 * own.  Linked only by lmtasks-writer, never by the public reader. */
#ifndef LMTASKS_WRITER_H
#define LMTASKS_WRITER_H

#include <json-c/printbuf.h>

#include "lmtasks/http.h"
#include "lmtasks/store.h"

/* What the caller opened: s (read-write) NULL with open_rc saying why when it cannot. */
struct writer_store {
	store *s;
	int open_rc;
	const char *db_path;
	const unsigned char *master;	/* the master key's hash; required (never NULL) */
	const char *damage;	/* open_rc LMT_EDAMAGED: what is wrong with data.mdb */
};

/*
 * Answers rq: POST /tasks/cancel or DELETE /tasks with Meilisearch's filters (at least
 * one), for the master key or an API key carrying tasks.cancel / tasks.delete, within
 * the key's indexes.  200 with {"taskUid","indexUid","status","type","enqueuedAt"} of
 * the taskCancelation / taskDeletion task made in one write transaction; else the error
 * Meilisearch gives, 405 with Allow for another method, 404 for another path.  The body
 * is appended to body, the rest goes to rs.
 */
void writer_handle(const struct api_request *rq, struct writer_store *w, struct printbuf *body,
    struct api_response *rs);

#endif
