/* Route, check, read, render: one request of the tasks API. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "lmtasks/api.h"
#include "lmtasks/auth.h"
#include "lmtasks/clock.h"
#include "lmtasks/compat.h"
#include "lmtasks/error.h"
#include "lmtasks/http.h"
#include "lmtasks/metrics.h"
#include "lmtasks/query.h"
#include "lmtasks/render.h"
#include "lmtasks/route.h"
#include "lmtasks/stream.h"
#include "lmtasks/timefmt.h"

/* Whether an If-None-Match value names tag (quoted): `*`, or a comma list of entity tags
 * compared weakly (W/ ignored), as RFC 9110 asks of If-None-Match. */
static int
none_match(const char *h, const char *tag)
{
	size_t tl = strlen(tag);

	if (h == NULL)
		return 0;
	while (*h) {
		while (*h == ' ' || *h == '\t' || *h == ',')
			h++;
		if (*h == '*')
			return 1;
		if (h[0] == 'W' && h[1] == '/')
			h += 2;
		const char *e = h;
		if (*e == '"') {
			e = strchr(e + 1, '"');
			e = e ? e + 1 : h + strlen(h);
		} else {
			e += strcspn(e, ", \t");
		}
		if ((size_t)(e - h) == tl && memcmp(h, tag, tl) == 0)
			return 1;
		if (e == h)
			h++;
		h = e;
	}
	return 0;
}

/* Sets the validator of a 200 answer; when the request's If-None-Match names it, the
 * answer becomes a 304 without a body.  Returns 1 for a 304. */
static int
validate(const struct api_request *rq, struct printbuf *body, struct api_response *rs,
    const char *etag, const char *cache)
{
	size_t n = strlen(etag);

	if (n >= sizeof(rs->etag))
		return 0;
	memcpy(rs->etag, etag, n + 1);
	rs->cache = cache;
	if (!none_match(rq->if_none_match, rs->etag))
		return 0;
	printbuf_reset(body);
	rs->status = 304;
	return 1;
}

/* Hex of v into p (16 digits at most); returns the end. */
static char *
hex(char *p, uint64_t v)
{
	static const char digits[] = "0123456789abcdef";
	char buf[16], *q = buf + sizeof(buf);

	do {
		*--q = digits[v & 15];
		v >>= 4;
	} while (v);
	memcpy(p, q, (size_t)(buf + sizeof(buf) - q));
	return p + (buf + sizeof(buf) - q);
}

/* What the reader's steps share for one request. */
struct read_ctx {
	struct api_reader *rd;
	int have_store;		/* rd->s and rd->txn: the store can be read */
	enum compat_level level;	/* in this request's snapshot (COMPAT_V025 unread) */
	int level_rc;		/* 0, or why the level could not be read */
	enum route_kind kind;	/* the route located (ROUTE_NONE: none) */
};

static void
unavailable(const struct api_reader *rd, struct printbuf *body, struct api_response *rs)
{
	const struct http_store_fault f = { rd->open_rc, rd->db_path, rd->damage, 0 };

	http_unavailable(body, rs, &f);
}

static void
read_failure(struct printbuf *body, struct api_response *rs, int rc, uint64_t uid)
{
	if (rc == LMT_ECORRUPT)
		http_answer_failure(body, rs, 500, "internal", "Task `%" PRIu64 "` cannot be read: "
		    "its stored record is corrupt. Run `lmtasks check` on the store.", uid);
	else
		http_answer_failure(body, rs, 500, "internal", "The task store could not be read: "
		    "%s.", lmt_strerror(rc));
}

#define STR(x) #x
#define XSTR(x) STR(x)
#define FINISHED_CACHE "max-age=" XSTR(API_FINISHED_MAX_AGE)

static void
get_task(const struct api_request *rq, const struct route *r, const struct auth_grant *g,
    int v1, struct api_reader *rd,
    struct printbuf *body, struct api_response *rs)
{
	struct api_error err;
	struct task t;
	/* Through the reader's kept cursor when there is one: no cursor set up per request. */
	int rc = rd->it ? store_iter_fetch(rd->it, r->uid, &t) :
	    store_get(rd->s, rd->txn, r->uid, &t);

	if (rc == 0 && r->kind == ROUTE_INDEX_TASK &&
	    (t.index_uid.ptr == NULL || t.index_uid.len != r->index_len ||
	     memcmp(t.index_uid.ptr, r->index, r->index_len) != 0))
		rc = MDB_NOTFOUND;
	/* Another index's task is, for a restricted key, a task that does not exist. */
	if (rc == 0 && !auth_allows(g, t.index_uid))
		rc = MDB_NOTFOUND;
	if (rc == MDB_NOTFOUND) {
		api_error_set(&err, 404, "task_not_found", "invalid_request",
		    "Task `%" PRIu64 "` not found.", r->uid);
		http_answer_error(body, rs, &err);
		return;
	}
	if (rc != 0) {
		read_failure(body, rs, rc, r->uid);
		return;
	}
	/* The record names its state: its uid (never reused) and checksum tell one version of
	 * a task from another.  A finished task never changes: a cache may keep it. */
	char tag[40], *p = tag;
	*p++ = '"';
	p = hex(p, r->uid);
	*p++ = '.';
	p = hex(p, t.record_sum);
	/* The layout is part of the answer: a compat change must not revalidate old bytes. */
	if (v1) {
		*p++ = '.';
		*p++ = '1';
	}
	*p++ = '"';
	*p = '\0';
	rs->status = 200;
	if (validate(rq, body, rs, tag, task_status_terminal(t.status) ? FINISHED_CACHE : "no-cache"))
		return;
	if (render_task_as(body, &t, v1) != 0)
		read_failure(body, rs, ENOMEM, r->uid);
}

#define PAGE_QUERY_MAX 1024	/* a longer query string is answered, never kept */

static void
list_tasks(const struct api_request *rq, struct query *q, const struct route *r,
    const struct auth_grant *g, struct api_reader *rd, struct printbuf *body,
    struct api_response *rs)
{
	uint64_t bad = 0;
	int rc;

	if (r->kind == ROUTE_INDEX_TASKS)
		query_scope(q, r->index, r->index_len);
	if (!g->all)
		query_allow(q, g->patterns, g->n);
	/* A list changes with any write: its validator is the store's last committed
	 * transaction (and which store), and which key asked. */
	char tag[40], *p = tag;
	*p++ = '"';
	p = hex(p, store_ident(rd->s));
	*p++ = '.';
	p = hex(p, (uint64_t)mdb_txn_id(rd->txn));
	if (!g->all) {
		/* A restricted key sees fewer tasks: the indexes it may see are part of the tag. */
		uint64_t h = 14695981039346656037u;
		for (size_t i = 0; i < g->n; i++) {
			for (size_t j = 0; j < g->patterns[i].len; j++)
				h = (h ^ (unsigned char)g->patterns[i].ptr[j]) * 1099511628211u;
			h = (h ^ ',') * 1099511628211u;
		}
		*p++ = '.';
		p = hex(p, h);
	}
	*p++ = '"';
	*p = '\0';
	rs->status = 200;
	if (validate(rq, body, rs, tag, "no-cache"))
		return;
	/* The same page asked again in this snapshot: the tag names the snapshot and the key's
	 * indexes, the rest of the key the route and the query as sent. */
	char key[sizeof(tag) + TASK_INDEX_MAX + PAGE_QUERY_MAX + 3];
	size_t klen = 0;
	const char *qs = rq->query_string ? rq->query_string : "";
	size_t qlen = strlen(qs), plen;
	const char *page;
	if (rd->pages && qlen <= PAGE_QUERY_MAX && r->index_len <= TASK_INDEX_MAX) {
		klen = (size_t)(p - tag);
		memcpy(key, tag, klen);
		key[klen++] = r->kind == ROUTE_INDEX_TASKS ? 'i' : 't';
		memcpy(key + klen, r->index, r->index_len);
		klen += r->index_len;
		key[klen++] = '?';
		memcpy(key + klen, qs, qlen);
		klen += qlen;
		page = pagecache_get(rd->pages, (uint64_t)mdb_txn_id(rd->txn), key, klen, &plen);
		metrics_page(rd->metrics, page != NULL);
		if (page != NULL) {
			if (printbuf_memappend(body, page, (int)plen) < 0)
				read_failure(body, rs, ENOMEM, 0);
			return;
		}
	}
	if ((rc = render_task_page(body, rd->s, rd->txn, rd->it, q, &bad)) != 0) {
		printbuf_reset(body);
		read_failure(body, rs, rc, bad);
		return;
	}
	rs->status = 200;
	/* Not kept (out of memory) only costs the next ask a walk. */
	if (klen > 0)
		(void)pagecache_put(rd->pages, (uint64_t)mdb_txn_id(rd->txn), key, klen, body->buf,
		    (size_t)body->bpos);
}

/* GET /tasks/stream: its own filters and resumption (stream.h); HEAD gets the headers. */
static void
open_stream(const struct api_request *rq, struct api_reader *rd, struct printbuf *body,
    struct api_response *rs)
{
	struct stream_request sr = { rq->query_string, rq->authorization, rq->last_event_id,
	    rd->master };
	struct api_error err;
	stream_sub *sub;
	int status = stream_open(rd->s, rd->txn, &sr, body, &sub, &err);

	if (status == 200 && rs->head) {
		stream_sub_free(sub);
		sub = NULL;
	}
	if (status == 200) {
		rs->status = 200;
		rs->sse = 1;
		rs->stream = sub;
		/* HEAD: the stream's headers, no body. */
		if (sub == NULL)
			printbuf_reset(body);
		return;
	}
	if (status == 204) {
		rs->status = 204;
		printbuf_reset(body);
		return;
	}
	if (status == 500)
		snprintf(rs->log, sizeof(rs->log), "500 internal: %.700s", err.message);
	http_answer_error(body, rs, &err);
}

/* /batches and /batches/{uid}: a restricted key sees the batches that hold one of its
 * indexes' tasks, as in Meilisearch. */
static void
batches(struct query *q, const struct route *r, const struct auth_grant *g,
    struct api_reader *rd, struct printbuf *body, struct api_response *rs)
{
	const struct task_str *allow = g->all ? NULL : g->patterns;
	size_t nallow = g->all ? 0 : g->n;
	struct api_error err;
	uint64_t bad = 0;
	int rc;

	if (!store_has_batches(rd->s)) {
		/* A 0.1.0 store that a writer upgraded after this responder opened it. */
		http_answer_failure(body, rs, 503, "store_unavailable", "The batches of the task "
		    "store at `%s` were added after this responder opened it: restart lmtasks-fcgi.",
		    rd->db_path ? rd->db_path : "?");
		return;
	}
	if (!g->all && nallow == 0) {
		/* A key with no index sees no batch; an empty pattern list would allow all. */
		static const struct task_str none = { "", 0 };
		allow = &none;
		nallow = 1;
	}
	if (r->kind == ROUTE_BATCH) {
		rc = render_batch_uid(body, rd->s, rd->txn, r->uid, allow, nallow);
		if (rc == MDB_NOTFOUND) {
			api_error_set(&err, 404, "batch_not_found", "invalid_request",
			    "Batch `%" PRIu64 "` not found.", r->uid);
			http_answer_error(body, rs, &err);
			return;
		}
		bad = r->uid;
	} else {
		rc = render_batch_page(body, rd->s, rd->txn, q, allow, nallow, &bad);
	}
	if (rc != 0) {
		printbuf_reset(body);
		if (rc == LMT_ECORRUPT)
			http_answer_failure(body, rs, 500, "internal", "Batch `%" PRIu64 "` cannot be "
			    "read: its stored record is corrupt.", bad);
		else
			read_failure(body, rs, rc, 0);
		return;
	}
	rs->status = 200;
}

/* The store's level in this request's snapshot: the worker's memo when it is of this
 * snapshot, else read (a write in between gives the snapshot a new id). */
static int
level_of(struct api_reader *rd, enum compat_level *level)
{
	struct api_memo *m = rd->memo;
	uint64_t id;
	int rc;

	if (m == NULL)
		return compat_read(rd->s, rd->txn, level);
	id = (uint64_t)mdb_txn_id(rd->txn);
	if (m->txn_id == id && m->ident == store_ident(rd->s) && id != 0) {
		*level = (enum compat_level)m->level;
		return 0;
	}
	if ((rc = compat_read(rd->s, rd->txn, level)) == 0)
		*m = (struct api_memo){ store_ident(rd->s), id, (int)*level };
	return rc;
}

/* The path's route: /batches only where the store shows batches; a bad parameter's 400 is
 * kept for after the key (http_run), a 404 or 414 answered at once. */
static const struct http_route *
read_locate(struct http_exchange *x)
{
	struct read_ctx *c = x->ctx;
	const struct api_request *rq = x->rq;
	char path[ROUTE_PATH_MAX];
	size_t len;
	int decoded, rc;

	x->route.kind = ROUTE_NONE;
	rc = route_path(rq->request_uri, rq->script_name, rq->path_info, path, &len, &decoded,
	    &x->route_err);
	if (rc == 0)
		rc = http_query_check(rq->query_string, &x->route_err);
	if (rc == 0)
		rc = route_parse(path, len, decoded, &x->route, &x->route_err);
	/* The store's level, read in this request's transaction: a change shows at once. */
	if ((x->route.kind == ROUTE_BATCHES || x->route.kind == ROUTE_BATCH) && c->have_store &&
	    c->level != COMPAT_V1)
		rc = route_not_found(path, len, &x->route_err);
	if (rc == 404 || rc == 414)
		return NULL;
	x->route_rc = rc;
	c->kind = x->route.kind;
	return http_find(x->app, x->route.kind);
}

/* Who asks, from the keys in this request's snapshot: 0, or nonzero once answered. */
static int
read_authorize(struct http_exchange *x, unsigned action)
{
	const struct read_ctx *c = x->ctx;
	const struct api_reader *rd = c->rd;
	struct api_error err;

	if (auth_check(c->have_store ? rd->s : NULL, c->have_store ? rd->txn : NULL, rd->master,
	    x->rq->authorization, clock_now(), &x->grant, &err) != 0) {
		if (err.status == 403 && !c->have_store)
			unavailable(rd, x->body, x->rs);
		else
			http_answer_error(x->body, x->rs, &err);
		return -1;
	}
	if (auth_permits(&x->grant, action, &err) != 0) {
		http_answer_error(x->body, x->rs, &err);
		return -1;
	}
	return 0;
}

/* The store and the route's index in this snapshot; 0, or nonzero once answered. */
static int
read_store(struct http_exchange *x, struct query *query)
{
	const struct read_ctx *c = x->ctx;
	struct api_reader *rd = c->rd;
	const struct route *r = &x->route;
	struct query_error why;
	struct api_error err;
	int rc;

	if (!c->have_store) {
		unavailable(rd, x->body, x->rs);
		return -1;
	}
	if (c->level_rc != 0) {
		read_failure(x->body, x->rs, c->level_rc, 0);
		return -1;
	}
	query->v1 = c->level == COMPAT_V1;
	if (query->v1 && query->ntypes &&
	    (rc = compat_check_types(rd->s, rd->txn, query, &why)) != 0) {
		if (rc == LMT_EINVAL) {
			api_error_query(&err, &why);
			http_answer_error(x->body, x->rs, &err);
		} else {
			read_failure(x->body, x->rs, rc, 0);
		}
		return -1;
	}
	if ((r->kind == ROUTE_INDEX_TASKS || r->kind == ROUTE_INDEX_TASK) &&
	    (rc = store_index_exists(rd->s, rd->txn, (struct task_str){ r->index, r->index_len }))
	    != 0) {
		if (rc != MDB_NOTFOUND) {
			read_failure(x->body, x->rs, rc, 0);
			return -1;
		}
		api_error_set(&err, 404, "index_not_found", "invalid_request",
		    "Index `%s` not found.", r->index);
		http_answer_error(x->body, x->rs, &err);
		return -1;
	}
	return 0;
}

/* What every read route checks past the key, in Meilisearch's order: the key's indexes,
 * the parameters, then the store.  0, or nonzero once answered. */
static int
ready(struct http_exchange *x, struct query *query)
{
	const struct read_ctx *c = x->ctx;
	const struct route *r = &x->route;
	struct query_error why;
	struct api_error err;

	if ((r->kind == ROUTE_INDEX_TASKS || r->kind == ROUTE_INDEX_TASK) &&
	    !auth_allows(&x->grant, (struct task_str){ r->index, r->index_len })) {
		api_error_set(&err, 403, "invalid_api_key", "auth", "The provided API key is invalid.");
		http_answer_error(x->body, x->rs, &err);
		return -1;
	}
	/* Parameters are checked before the store is, as Meilisearch does. */
	query_init(query);
	query->v1 = c->level == COMPAT_V1 || !c->have_store;
	if ((r->kind == ROUTE_TASKS || r->kind == ROUTE_INDEX_TASKS || r->kind == ROUTE_BATCHES) &&
	    query_parse(x->rq->query_string, query, &why) != 0) {
		api_error_query(&err, &why);
		http_answer_error(x->body, x->rs, &err);
		return -1;
	}
	return read_store(x, query);
}

/* Public, as in Meilisearch: it says whether the store can be read. */
static void
answer_health(struct http_exchange *x)
{
	const struct read_ctx *c = x->ctx;

	if (!c->have_store)
		unavailable(c->rd, x->body, x->rs);
	else if (printbuf_memappend(x->body, "{\"status\":\"available\"}", 22) >= 0)
		x->rs->status = 200;
}

static void
answer_task(struct http_exchange *x)
{
	const struct read_ctx *c = x->ctx;
	struct query query;

	if (ready(x, &query) == 0)
		get_task(x->rq, &x->route, &x->grant, c->level == COMPAT_V1, c->rd, x->body, x->rs);
}

static void
answer_list(struct http_exchange *x)
{
	const struct read_ctx *c = x->ctx;
	struct query query;

	if (ready(x, &query) == 0)
		list_tasks(x->rq, &query, &x->route, &x->grant, c->rd, x->body, x->rs);
}

static void
answer_stream(struct http_exchange *x)
{
	const struct read_ctx *c = x->ctx;
	struct query query;

	if (ready(x, &query) == 0)
		open_stream(x->rq, c->rd, x->body, x->rs);
}

static void
answer_batches(struct http_exchange *x)
{
	const struct read_ctx *c = x->ctx;
	struct query query;

	if (ready(x, &query) == 0)
		batches(&query, &x->route, &x->grant, c->rd, x->body, x->rs);
}

_Static_assert(ROUTE_TASKS_CANCEL < METRICS_ROUTES, "every route kind has its counters");

/* Prometheus's text (metrics.h), as Meilisearch serves it: the key needs metrics.get and
 * every index. */
static void
answer_metrics(struct http_exchange *x)
{
	const struct read_ctx *c = x->ctx;
	struct api_reader *rd = c->rd;
	const char *paths[METRICS_ROUTES] = { NULL };
	struct metrics_store m;
	struct api_error err;
	int rc;

	if (!x->grant.all) {
		api_error_set(&err, 403, "invalid_api_key", "auth", "The provided API key is "
		    "invalid. The API key for the `/metrics` route must allow access to all "
		    "indexes.");
		http_answer_error(x->body, x->rs, &err);
		return;
	}
	if (!c->have_store) {
		unavailable(rd, x->body, x->rs);
		return;
	}
	if ((rc = metrics_read(rd->s, rd->txn, rd->it, clock_now(), &m)) != 0) {
		read_failure(x->body, x->rs, rc, 0);
		return;
	}
	for (size_t i = 0; i < x->app->nroutes; i++) {
		if (x->app->routes[i].kind < METRICS_ROUTES)
			paths[x->app->routes[i].kind] = x->app->routes[i].path;
	}
	rc = metrics_render(x->body, &m, paths);
	metrics_store_free(&m);
	if (rc != 0) {
		printbuf_reset(x->body);
		read_failure(x->body, x->rs, rc, 0);
		return;
	}
	x->rs->status = 200;
	x->rs->type = METRICS_CONTENT_TYPE;
}

#define READS "GET, HEAD", HTTP_GET | HTTP_HEAD
#define READS_ONLY "the tasks API answers GET and HEAD"

/* The responder's routes, in enum route_kind's order (found by kind at once).  Every route
 * past /health reads tasks: a key needs tasks.get, as in Meilisearch; /metrics needs
 * metrics.get. */
static const struct http_route read_routes[] = {
	[ROUTE_TASKS] = { "/tasks", ROUTE_TASKS, READS, READS_ONLY, AUTH_TASKS_GET,
	    answer_list },
	[ROUTE_TASK] = { "/tasks/{taskUid}", ROUTE_TASK, READS, READS_ONLY, AUTH_TASKS_GET,
	    answer_task },
	[ROUTE_INDEX_TASKS] = { "/indexes/{indexUid}/tasks", ROUTE_INDEX_TASKS, READS,
	    READS_ONLY, AUTH_TASKS_GET, answer_list },
	[ROUTE_INDEX_TASK] = { "/indexes/{indexUid}/tasks/{taskUid}", ROUTE_INDEX_TASK, READS,
	    READS_ONLY, AUTH_TASKS_GET, answer_task },
	[ROUTE_HEALTH] = { "/health", ROUTE_HEALTH, READS, READS_ONLY, 0, answer_health },
	[ROUTE_TASKS_STREAM] = { "/tasks/stream", ROUTE_TASKS_STREAM, READS, READS_ONLY,
	    AUTH_TASKS_GET, answer_stream },
	[ROUTE_BATCHES] = { "/batches", ROUTE_BATCHES, READS, READS_ONLY, AUTH_TASKS_GET,
	    answer_batches },
	[ROUTE_BATCH] = { "/batches/{batchUid}", ROUTE_BATCH, READS, READS_ONLY, AUTH_TASKS_GET,
	    answer_batches },
	[ROUTE_METRICS] = { "/metrics", ROUTE_METRICS, READS, READS_ONLY, AUTH_METRICS_GET,
	    answer_metrics },
	/* A path whose shape was not made out (a malformed escape): its 400 after the key. */
	[ROUTE_NONE] = { "", ROUTE_NONE, READS, READS_ONLY, AUTH_TASKS_GET, NULL },
};

static const struct http_app reader = {
	read_routes, sizeof(read_routes) / sizeof(read_routes[0]), 1, read_locate,
	read_authorize,
};

void
api_handle(const struct api_request *rq, struct api_reader *rd, struct printbuf *body,
    struct api_response *rs)
{
	struct read_ctx c = { rd, rd->s != NULL && rd->txn != NULL, COMPAT_V025, 0, ROUTE_NONE };

	if (c.have_store)
		c.level_rc = level_of(rd, &c.level);
	http_run(&reader, rq, &c, body, rs);
	rd->route = c.kind;
}
