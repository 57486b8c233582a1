/* POST /tasks/cancel and DELETE /tasks: route, check, write through ops.h, answer. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lmtasks/auth.h"
#include "lmtasks/clock.h"
#include "lmtasks/compat.h"
#include "lmtasks/error.h"
#include "lmtasks/ops.h"
#include "lmtasks/query.h"
#include "lmtasks/quote.h"
#include "lmtasks/render.h"
#include "lmtasks/route.h"
#include "lmtasks/text.h"
#include "lmtasks/timefmt.h"
#include "lmtasks/writer.h"

/* The parameters Meilisearch takes on these routes, in the order its message lists them. */
static const char *const filter_names[] = {
	"uids", "batchUids", "canceledBy", "types", "statuses", "indexUids",
	"afterEnqueuedAt", "beforeEnqueuedAt", "afterStartedAt", "beforeStartedAt",
	"afterFinishedAt", "beforeFinishedAt",
};
#define NFILTERS (sizeof(filter_names) / sizeof(filter_names[0]))
#define FILTERS_AFTER_BATCHES "`canceledBy`, `types`, `statuses`, `indexUids`, " \
    "`afterEnqueuedAt`, `beforeEnqueuedAt`, `afterStartedAt`, `beforeStartedAt`, " \
    "`afterFinishedAt`, `beforeFinishedAt`"
/* batchUids only where batches are shown (compat v1), as for GET /tasks. */
static const char filter_list_v1[] = "`uids`, `batchUids`, " FILTERS_AFTER_BATCHES;
static const char filter_list[] = "`uids`, " FILTERS_AFTER_BATCHES;

/* The two routes and what each needs. */
struct wroute {
	const char *path, *method, *type, *verb;
	unsigned action;
};
static const struct wroute routes[] = {
	{ "/tasks/cancel", "POST", "taskCancelation", "cancel", AUTH_TASKS_CANCEL },
	{ "/tasks", "DELETE", "taskDeletion", "delete", AUTH_TASKS_DELETE },
};

static void
answer_error(struct printbuf *body, struct api_response *rs, const struct api_error *err)
{
	printbuf_reset(body);
	rs->status = err->status;
	if (api_error_render(body, err) != 0)
		rs->status = 500;
}

/* A failure of ours: the answer and one log line. */
__attribute__((format(printf, 5, 6)))
static void
answer_failure(struct printbuf *body, struct api_response *rs, int status, const char *code,
    const char *fmt, ...)
{
	struct api_error err = { .status = status, .code = code, .type = "internal" };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err.message, sizeof(err.message), fmt, ap);
	va_end(ap);
	snprintf(rs->log, sizeof(rs->log), "%d %s: %.700s", status, code, err.message);
	answer_error(body, rs, &err);
}

static void
store_unavailable(const struct writer_store *w, struct printbuf *body, struct api_response *rs)
{
	if (w->open_rc == LMT_EDAMAGED)
		answer_failure(body, rs, 503, "store_unavailable", "The task store at `%s` cannot "
		    "be written: the store is damaged: %s; nothing was written. Restore it from a "
		    "backup.", w->db_path ? w->db_path : "?", w->damage ? w->damage : "?");
	else
		answer_failure(body, rs, 503, "store_unavailable", "The task store at `%s` cannot "
		    "be written: %s.", w->db_path ? w->db_path : "?", w->open_rc == LMT_ENOSTORE ?
		    "there is no lmtasks store there yet" : lmt_strerror(w->open_rc));
}

/* Finds the route of path (either method); NULL for a path that is neither. */
static const struct wroute *
find_route(const struct api_request *rq, struct api_error *err)
{
	char path[ROUTE_PATH_MAX], dec[ROUTE_PATH_MAX];
	size_t len;
	int decoded;

	if (route_path(rq->request_uri, rq->script_name, rq->path_info, path, &len, &decoded,
	    err) != 0)
		return NULL;
	if (!decoded) {
		long n = text_unescape(path, len, 0, dec);
		if (n < 0)
			return NULL;
		memcpy(path, dec, (size_t)n);
		len = (size_t)n;
	}
	if (len > 1 && path[len - 1] == '/')
		len--;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (strlen(routes[i].path) == len && memcmp(routes[i].path, path, len) == 0)
			return &routes[i];
	}
	quote_text(path, len, dec, 200);
	api_error_set(err, 404, "not_found", "invalid_request", "Route `%s` not found: "
	    "lmtasks-writer serves only POST /tasks/cancel and DELETE /tasks.", dec);
	return NULL;
}

/* Checks every parameter's name against the routes' filters (batchUids at v1 only), as
 * Meilisearch refuses any other (limit, from, ...); *given says whether there was at
 * least one. */
static int
check_names(const char *qs, int v1, int *given, struct api_error *err)
{
	char name[64], quoted[128];

	*given = 0;
	for (const char *p = qs ? qs : ""; *p;) {
		size_t pl = strcspn(p, "&"), nl = strcspn(p, "=&"), i = NFILTERS;
		long dn = -1;

		if (pl == 0) {
			p++;
			continue;
		}
		if (nl < sizeof(name) && (dn = text_unescape(p, nl, 1, name)) >= 0) {
			for (i = 0; i < NFILTERS; i++) {
				if (strlen(filter_names[i]) == (size_t)dn &&
				    memcmp(filter_names[i], name, (size_t)dn) == 0)
					break;
			}
			if (!v1 && i < NFILTERS && strcmp(filter_names[i], "batchUids") == 0)
				i = NFILTERS;
		}
		if (i == NFILTERS)
			return api_error_set(err, 400, "bad_request", "invalid_request",
			    "Unknown parameter `%s`: expected one of %s",
			    dn >= 0 ? quote_text(name, (size_t)dn, quoted, sizeof(quoted)) :
			    quote_text(p, nl, quoted, sizeof(quoted)), v1 ? filter_list_v1 : filter_list);
		*given = 1;
		p += pl + (p[pl] == '&');
	}
	return 0;
}

/* 1 when the store is at compat v1 (0 also when its level cannot be read: the stricter
 * parameters). */
static int
writer_v1(store *s)
{
	enum compat_level level = COMPAT_V025;
	MDB_txn *txn;

	if (store_txn_begin(s, MDB_RDONLY, &txn) != 0)
		return 0;
	if (compat_read(s, txn, &level) != 0)
		level = COMPAT_V025;
	mdb_txn_abort(txn);
	return level == COMPAT_V1;
}

/* Compat v1's types check (compat_check_types()) in a read transaction; 0 or 400 with
 * err filled (a store that cannot be read is left to the write that follows). */
static int
writer_types(store *s, const struct query *q, struct api_error *err)
{
	struct query_error why;
	MDB_txn *txn;
	int rc;

	if (store_txn_begin(s, MDB_RDONLY, &txn) != 0)
		return 0;
	rc = compat_check_types(s, txn, q, &why);
	mdb_txn_abort(txn);
	return rc == LMT_EINVAL ? api_error_query(err, &why) : 0;
}

/* The key's index patterns, copied out of the read transaction that found them. */
struct patterns {
	size_t n;
	struct task_str list[AUTH_INDEXES_MAX];
	char text[AUTH_INDEXES_MAX * (TASK_INDEX_MAX + 2)];
};

/* Decides who asks, in a read transaction of its own; 0 or the error's status. */
static int
authorize(const struct api_request *rq, struct writer_store *w, unsigned action,
    struct auth_grant *g, struct patterns *pt, struct api_error *err)
{
	MDB_txn *txn = NULL;
	int rc;

	if (w->s && store_txn_begin(w->s, MDB_RDONLY, &txn) != 0)
		txn = NULL;
	rc = auth_check(txn ? w->s : NULL, txn, w->master, rq->authorization, clock_now(), g,
	    err);
	if (rc == 0)
		rc = auth_permits(g, action, err);
	pt->n = 0;
	if (rc == 0 && !g->all) {
		size_t used = 0;
		for (size_t i = 0; i < g->n; i++) {
			memcpy(pt->text + used, g->patterns[i].ptr, g->patterns[i].len);
			pt->list[pt->n++] = (struct task_str){ pt->text + used, g->patterns[i].len };
			used += g->patterns[i].len;
		}
	}
	if (txn)
		mdb_txn_abort(txn);
	return rc;
}

/* Meilisearch's SummarizedTaskView. */
static int
render_summary(struct printbuf *pb, const struct task *t)
{
	char at[TIMEFMT_BUFSZ], head[160];
	int n;

	timefmt_rfc3339(t->enqueued_at, at);
	n = snprintf(head, sizeof(head), "{\"taskUid\":%" PRIu64 ",\"indexUid\":null,\"status\":"
	    "\"%s\",\"type\":", t->uid, task_status_name(t->status));
	if (printbuf_memappend(pb, head, n) < 0 ||
	    render_string(pb, t->type.ptr, t->type.len) != 0)
		return ENOMEM;
	n = snprintf(head, sizeof(head), ",\"enqueuedAt\":\"%s\"}", at);
	return printbuf_memappend(pb, head, n) < 0 ? ENOMEM : 0;
}

void
writer_handle(const struct api_request *rq, struct writer_store *w, struct printbuf *body,
    struct api_response *rs)
{
	const char *m = rq->method ? rq->method : "GET";
	const char *qs = rq->query_string ? rq->query_string : "";
	const struct wroute *route;
	struct ops_record_result r;
	struct api_error err;
	struct query_error why;
	struct auth_grant grant;
	struct patterns *pt = NULL;
	struct query *q = NULL;
	char *filter = NULL, quoted[128];
	int given, rc;

	rs->status = 500;
	rs->stream = NULL;
	rs->sse = 0;
	rs->allow = NULL;
	rs->log[0] = '\0';
	rs->head = 0;
	rs->etag[0] = '\0';
	rs->cache = "no-store";	/* an answer to a write is never to be kept */
	printbuf_reset(body);

	if ((route = find_route(rq, &err)) == NULL) {
		answer_error(body, rs, &err);
		return;
	}
	if (strlen(qs) > API_QUERY_MAX) {
		api_error_set(&err, 414, "bad_request", "invalid_request",
		    "The query string is longer than %d bytes.", API_QUERY_MAX);
		answer_error(body, rs, &err);
		return;
	}
	if (strcmp(m, route->method) != 0) {
		api_error_set(&err, 405, "method_not_allowed", "invalid_request",
		    "Method `%s` is not allowed here: lmtasks-writer answers %s %s.",
		    quote_text(m, strlen(m), quoted, sizeof(quoted)), route->method, route->path);
		answer_error(body, rs, &err);
		rs->allow = route->method;
		return;
	}
	if ((pt = malloc(sizeof(*pt))) == NULL || (q = malloc(sizeof(*q))) == NULL ||
	    (filter = malloc(strlen(qs) + 2)) == NULL) {
		answer_failure(body, rs, 500, "internal", "Out of memory.");
		goto out;
	}
	/* Who asks and what they may do, before what is asked, as in Meilisearch. */
	if (authorize(rq, w, route->action, &grant, pt, &err) != 0) {
		if (err.status == 403 && w->s == NULL)
			store_unavailable(w, body, rs);
		else
			answer_error(body, rs, &err);
		goto out;
	}
	query_init(q);
	/* The store's compat level says whether batchUids is a filter and which types are;
	 * read in a transaction of its own, like the key. */
	q->v1 = w->s == NULL || writer_v1(w->s);
	if (check_names(qs, q->v1, &given, &err) != 0 ||
	    (query_parse(qs, q, &why) != 0 && api_error_query(&err, &why) != 0) ||
	    (w->s && q->v1 && q->ntypes && writer_types(w->s, q, &err) != 0)) {
		answer_error(body, rs, &err);
		goto out;
	}
	if (!given) {
		api_error_set(&err, 400, "missing_task_filters", "invalid_request", "Query "
		    "parameters to filter the tasks to %s are missing. Available query parameters "
		    "are: `uids`, `indexUids`, `statuses`, `types`, `canceledBy`, "
		    "`beforeEnqueuedAt`, `afterEnqueuedAt`, `beforeStartedAt`, `afterStartedAt`, "
		    "`beforeFinishedAt`, `afterFinishedAt`.", route->verb);
		answer_error(body, rs, &err);
		goto out;
	}
	if (w->s == NULL) {
		store_unavailable(w, body, rs);
		goto out;
	}
	/* A key restricted to some indexes acts on their tasks only, as in Meilisearch. */
	if (!grant.all)
		query_allow(q, pt->list, pt->n);
	/* Meilisearch keeps the query string as it came, behind a '?'. */
	filter[0] = '?';
	strcpy(filter + 1, qs);
	if (route->action == AUTH_TASKS_CANCEL)
		rc = ops_cancel_query(w->s, q, filter, &r);
	else
		rc = ops_delete(w->s, q, 0, filter, &r);
	if (rc == LMT_EFULL || rc == LMT_EDISKFULL) {
		/* Meilisearch's answer to a cancelation or deletion of no task past its limit. */
		api_error_set(&err, 422, "no_space_left_on_device", "system", "The task store "
		    "cannot take more tasks: %s, and this %s matches no task it could %s, so it "
		    "would only record itself. Delete finished tasks to continue.", rc == LMT_EFULL ?
		    "it is past its size limit" : "its disk is full", route->verb,
		    route->action == AUTH_TASKS_CANCEL ? "cancel" : "delete");
		answer_error(body, rs, &err);
		snprintf(rs->log, sizeof(rs->log), "422 no_space_left_on_device: %s ?%.600s "
		    "refused, %s", rq->method, qs, lmt_strerror(rc));
	} else if (rc == LMT_ECORRUPT) {
		answer_failure(body, rs, 500, "internal", "Task `%" PRIu64 "` cannot be read: its "
		    "stored record is corrupt. Run `lmtasks check` on the store; nothing was "
		    "changed.", r.bad);
	} else if (rc != 0) {
		answer_failure(body, rs, 500, "internal", "The task store could not be written: %s; "
		    "nothing was changed.", lmt_strerror(rc));
	} else if (render_summary(body, &r.out.t) != 0) {
		answer_failure(body, rs, 500, "internal", "Out of memory.");
	} else {
		rs->status = 200;
	}
	if (rc == 0)
		ops_task_free(&r.out);
out:
	free(pt);
	free(q);
	free(filter);
}
