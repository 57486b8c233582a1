/* Request path -> route and validated parameters (SPEC §2); no I/O. */
#ifndef LMTASKS_ROUTE_H
#define LMTASKS_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "lmtasks/api_error.h"
#include "lmtasks/task.h"

#define ROUTE_PATH_MAX 4096

enum route_kind {
	ROUTE_TASKS,		/* /tasks */
	ROUTE_TASK,		/* /tasks/{uid} */
	ROUTE_INDEX_TASKS,	/* /indexes/{indexUid}/tasks */
	ROUTE_INDEX_TASK,	/* /indexes/{indexUid}/tasks/{uid} */
	ROUTE_HEALTH,		/* /health */
	ROUTE_TASKS_STREAM,	/* /tasks/stream: server-sent events (stream.h) */
	ROUTE_BATCHES,		/* /batches (compat v1) */
	ROUTE_BATCH,		/* /batches/{uid} (compat v1) */
	ROUTE_METRICS,		/* /metrics: Prometheus (metrics.h) */
	ROUTE_NONE,		/* none: route_parse() failed before it knew */
	ROUTE_TASKS_CANCEL,	/* /tasks/cancel: lmtasks-writer's, never route_parse()'s */
	ROUTE_TASKS_COMPACT,	/* /tasks/compact: lmtasks-writer's, never route_parse()'s */
};

struct route {
	enum route_kind kind;
	char index[TASK_INDEX_MAX + 1];	/* decoded and validated, NUL-terminated; "" if none */
	size_t index_len;
	uint64_t uid;
};

/*
 * Chooses the path to route from the CGI/FastCGI parameters (any may be NULL):
 * the raw REQUEST_URI without its query, less SCRIPT_NAME when the web server
 * split the path (PATH_INFO set); else PATH_INFO or SCRIPT_NAME, which the web
 * server has decoded already (*decoded = 1).  Writes a NUL-terminated path to
 * buf (ROUTE_PATH_MAX bytes).  Returns 0, or fills err (414) for a longer path.
 */
int route_path(const char *request_uri, const char *script_name, const char *path_info,
    char *buf, size_t *len, int *decoded, struct api_error *err);

/*
 * Parses a path into r: segments percent-decoded (unless decoded), one trailing
 * slash ignored.  Returns 0, or an HTTP status with err filled: 400
 * invalid_task_uids / invalid_batch_uids / invalid_index_uid / bad_request, 404 for an
 * unknown path.  r->kind is set as soon as the path's shape names a route (ROUTE_NONE
 * before), so a caller can tell a bad batch uid from other errors.
 */
int route_parse(const char *path, size_t len, int decoded, struct route *r,
    struct api_error *err);

/* Fills err with the 404 of an unknown path (a /batches route where the store shows no
 * batches); returns 404. */
int route_not_found(const char *path, size_t len, struct api_error *err);

#endif
