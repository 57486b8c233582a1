/* POST /tasks/cancel, DELETE /tasks and POST /tasks/compact: the writer's route table, its
 * hooks and its handlers, which write through ops.h. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lmtasks/auth.h"
#include "lmtasks/clock.h"
#include "lmtasks/compat.h"
#include "lmtasks/error.h"
#include "lmtasks/http.h"
#include "lmtasks/ops.h"
#include "lmtasks/query.h"
#include "lmtasks/quote.h"
#include "lmtasks/render.h"
#include "lmtasks/report.h"
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

/* The key's index patterns, copied out of the read transaction that found them. */
struct patterns {
	size_t n;
	struct task_str list[AUTH_INDEXES_MAX];
	char text[AUTH_INDEXES_MAX * (TASK_INDEX_MAX + 2)];
};

/* What the writer's steps share for one request; the buffers are writer_handle()'s to free. */
struct write_ctx {
	struct writer_store *w;
	struct patterns *pt;
	struct query *q;
	char *filter;		/* the query string behind a '?', as Meilisearch keeps it */
};

static void
unavailable(const struct writer_store *w, struct printbuf *body, struct api_response *rs)
{
	const struct http_store_fault f = { w->open_rc, w->db_path, w->damage, 1 };

	http_unavailable(body, rs, &f);
}

/* The route of the decoded path, one trailing slash ignored; then the query's length. */
static const struct http_route *
write_locate(struct http_exchange *x)
{
	const struct api_request *rq = x->rq;
	char path[ROUTE_PATH_MAX], dec[ROUTE_PATH_MAX];
	const struct http_route *e;
	size_t len;
	int decoded;
	long n;

	if (route_path(rq->request_uri, rq->script_name, rq->path_info, path, &len, &decoded,
	    &x->route_err) != 0)
		return NULL;
	/* A malformed escape names no route: the path is quoted as it came. */
	if (!decoded && (n = text_unescape(path, len, 0, dec)) >= 0) {
		memcpy(path, dec, (size_t)n);
		len = (size_t)n;
	}
	if (len > 1 && path[len - 1] == '/')
		len--;
	if ((e = http_find_path(x->app, path, len)) == NULL) {
		quote_text(path, len, dec, 200);
		api_error_set(&x->route_err, 404, "not_found", "invalid_request", "Route `%s` not "
		    "found: lmtasks-writer serves only POST /tasks/cancel and DELETE /tasks.", dec);
		return NULL;
	}
	if (http_query_check(rq->query_string, &x->route_err) != 0)
		return NULL;
	x->route.kind = e->kind;
	return e;
}

/* Decides who asks, in a read transaction of its own (the patterns copied out of it); 0 or
 * the error's status. */
static int
key_grant(const struct api_request *rq, struct writer_store *w, unsigned action,
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

/* What the write needs is taken first, then who asks and what they may do, before what is
 * asked, as in Meilisearch; 0, or nonzero once answered. */
static int
write_authorize(struct http_exchange *x, unsigned action)
{
	struct write_ctx *c = x->ctx;
	const char *qs = x->rq->query_string ? x->rq->query_string : "";
	struct api_error err;

	if ((c->pt = malloc(sizeof(*c->pt))) == NULL || (c->q = malloc(sizeof(*c->q))) == NULL ||
	    (c->filter = malloc(strlen(qs) + 2)) == NULL) {
		http_answer_failure(x->body, x->rs, 500, "internal", "Out of memory.");
		return -1;
	}
	if (key_grant(x->rq, c->w, action, &x->grant, c->pt, &err) == 0)
		return 0;
	if (err.status == 403 && c->w->s == NULL)
		unavailable(c->w, x->body, x->rs);
	else
		http_answer_error(x->body, x->rs, &err);
	return -1;
}

/* The filters into c->q, checked as Meilisearch checks them: 0, or the error's status. */
static int
write_filters(struct write_ctx *c, const char *qs, const char *verb, struct api_error *err)
{
	struct writer_store *w = c->w;
	struct query_error why;
	int given;

	query_init(c->q);
	/* The store's compat level says whether batchUids is a filter and which types are;
	 * read in a transaction of its own, like the key. */
	c->q->v1 = w->s == NULL || writer_v1(w->s);
	if (check_names(qs, c->q->v1, &given, err) != 0 ||
	    (query_parse(qs, c->q, &why) != 0 && api_error_query(err, &why) != 0) ||
	    (w->s && c->q->v1 && c->q->ntypes && writer_types(w->s, c->q, err) != 0))
		return err->status;
	if (!given)
		return api_error_set(err, 400, "missing_task_filters", "invalid_request", "Query "
		    "parameters to filter the tasks to %s are missing. Available query parameters "
		    "are: `uids`, `indexUids`, `statuses`, `types`, `canceledBy`, "
		    "`beforeEnqueuedAt`, `afterEnqueuedAt`, `beforeStartedAt`, `afterStartedAt`, "
		    "`beforeFinishedAt`, `afterFinishedAt`.", verb);
	return 0;
}

/* The answer to a cancelation or deletion that returned rc. */
static void
answer_write(struct http_exchange *x, int rc, const struct ops_record_result *r,
    const char *verb)
{
	const char *qs = x->rq->query_string ? x->rq->query_string : "";
	struct api_error err;

	if (rc == LMT_EFULL || rc == LMT_EDISKFULL) {
		/* Meilisearch's answer to a cancelation or deletion of no task past its limit. */
		api_error_set(&err, 422, "no_space_left_on_device", "system", "The task store "
		    "cannot take more tasks: %s, and this %s matches no task it could %s, so it "
		    "would only record itself. Delete finished tasks to continue.", rc == LMT_EFULL ?
		    "it is past its size limit" : "its disk is full", verb, verb);
		http_answer_error(x->body, x->rs, &err);
		snprintf(x->rs->log, sizeof(x->rs->log), "422 no_space_left_on_device: %s ?%.600s "
		    "refused, %s", x->rq->method, qs, lmt_strerror(rc));
	} else if (rc == LMT_ECORRUPT) {
		http_answer_failure(x->body, x->rs, 500, "internal", "Task `%" PRIu64 "` cannot be "
		    "read: its stored record is corrupt. Run `lmtasks check` on the store; nothing "
		    "was changed.", r->bad);
	} else if (rc != 0) {
		http_answer_failure(x->body, x->rs, 500, "internal", "The task store could not be "
		    "written: %s; nothing was changed.", lmt_strerror(rc));
	} else if (render_summary(x->body, &r->out.t) != 0) {
		http_answer_failure(x->body, x->rs, 500, "internal", "Out of memory.");
	} else {
		x->rs->status = 200;
	}
}

/* POST /tasks/cancel and DELETE /tasks: the filters, then one write through ops.h. */
static void
write_tasks(struct http_exchange *x)
{
	struct write_ctx *c = x->ctx;
	const char *qs = x->rq->query_string ? x->rq->query_string : "";
	int cancel = x->entry->action == AUTH_TASKS_CANCEL;
	const char *verb = cancel ? "cancel" : "delete";
	struct ops_record_result r;
	struct api_error err;
	int rc;

	if (write_filters(c, qs, verb, &err) != 0) {
		http_answer_error(x->body, x->rs, &err);
		return;
	}
	if (c->w->s == NULL) {
		unavailable(c->w, x->body, x->rs);
		return;
	}
	/* A key restricted to some indexes acts on their tasks only, as in Meilisearch. */
	if (!x->grant.all)
		query_allow(c->q, c->pt->list, c->pt->n);
	/* Meilisearch keeps the query string as it came, behind a '?'. */
	c->filter[0] = '?';
	strcpy(c->filter + 1, qs);
	if (cancel)
		rc = ops_cancel_query(c->w->s, c->q, c->filter, &r);
	else
		rc = ops_delete(c->w->s, c->q, 0, c->filter, &r);
	answer_write(x, rc, &r, verb);
	if (rc == 0)
		ops_task_free(&r.out);
}

/* POST /tasks/compact: Meilisearch's TaskCompactionSummary (with the sizes in bytes too),
 * 200; a failure 500 {"status":"failed","errorMessage"}, as there.  No restart is needed
 * after it here: readers and this writer follow the new file (store_compact.c). */
static void
write_compact(struct http_exchange *x)
{
	struct write_ctx *c = x->ctx;
	struct ops_compact_result r;
	char text[256];
	int rc;

	if (x->rq->query_string && *x->rq->query_string) {
		struct api_error err;
		api_error_set(&err, 400, "bad_request", "invalid_request", "POST /tasks/compact "
		    "takes no parameter");
		http_answer_error(x->body, x->rs, &err);
		return;
	}
	if (c->w->s == NULL) {
		unavailable(c->w, x->body, x->rs);
		return;
	}
	if ((rc = ops_compact(c->w->s, &r)) == 0) {
		if (report_compaction(x->body, r.pre_size, r.post_size) != 0)
			http_answer_failure(x->body, x->rs, 500, "internal", "Out of memory.");
		else
			x->rs->status = 200;
		snprintf(x->rs->log, sizeof(x->rs->log), "compacted: %" PRIu64 " -> %" PRIu64
		    " bytes", r.pre_size, r.post_size);
		return;
	}
	if (r.swapped)
		snprintf(text, sizeof(text), "The task store's data file is now its compacted copy, "
		    "which holds every task, but a step after the swap failed: %s.", lmt_strerror(rc));
	else
		snprintf(text, sizeof(text), "The task store could not be compacted: %s; it is as "
		    "it was.", lmt_strerror(rc));
	printbuf_reset(x->body);
	if (printbuf_strappend(x->body, "{\"status\":\"failed\",\"errorMessage\":") < 0 ||
	    render_string(x->body, text, strlen(text)) != 0 || printbuf_strappend(x->body, "}") < 0)
		http_answer_failure(x->body, x->rs, 500, "internal", "Out of memory.");
	x->rs->status = 500;
	snprintf(x->rs->log, sizeof(x->rs->log), "500 compaction failed: %s", lmt_strerror(rc));
}

/* The writer's routes; another method on either path is refused with its Allow. */
static const struct http_route write_routes[] = {
	{ "/tasks/cancel", ROUTE_TASKS_CANCEL, "POST", HTTP_POST,
	    "lmtasks-writer answers POST /tasks/cancel", AUTH_TASKS_CANCEL, write_tasks },
	{ "/tasks", ROUTE_TASKS, "DELETE", HTTP_DELETE, "lmtasks-writer answers DELETE /tasks",
	    AUTH_TASKS_DELETE, write_tasks },
	{ "/tasks/compact", ROUTE_TASKS_COMPACT, "POST", HTTP_POST,
	    "lmtasks-writer answers POST /tasks/compact", AUTH_TASKS_COMPACT, write_compact },
};

static const struct http_app writer = {
	write_routes, sizeof(write_routes) / sizeof(write_routes[0]), 0, write_locate,
	write_authorize,
};

void
writer_handle(const struct api_request *rq, struct writer_store *w, struct printbuf *body,
    struct api_response *rs)
{
	struct write_ctx c = { w, NULL, NULL, NULL };

	http_run(&writer, rq, &c, body, rs);
	free(c.pt);
	free(c.q);
	free(c.filter);
}
