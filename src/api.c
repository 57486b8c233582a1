/* Route, check, read, render: one request of the tasks API. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lmtasks/api.h"
#include "lmtasks/auth.h"
#include "lmtasks/clock.h"
#include "lmtasks/compat.h"
#include "lmtasks/error.h"
#include "lmtasks/query.h"
#include "lmtasks/quote.h"
#include "lmtasks/render.h"
#include "lmtasks/route.h"
#include "lmtasks/stream.h"
#include "lmtasks/timefmt.h"

static const char *
reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 204: return "No Content";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 410: return "Gone";
	case 414: return "URI Too Long";
	case 422: return "Unprocessable Entity";
	case 431: return "Request Header Fields Too Large";
	case 503: return "Service Unavailable";
	default: return "Internal Server Error";
	}
}

/* Appends n bytes if they fit (one byte stays free); returns the new end. */
static char *
add(char *p, const char *end, const char *s, size_t n)
{
	if ((size_t)(end - p) <= n)
		return p;
	memcpy(p, s, n);
	return p + n;
}

#define ADD(p, end, lit) add((p), (end), (lit), sizeof(lit) - 1)

static char *
add_u64(char *p, const char *end, uint64_t v)
{
	char buf[24], *q = buf + sizeof(buf);

	do {
		*--q = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return add(p, end, q, (size_t)(buf + sizeof(buf) - q));
}

size_t
api_headers(const struct api_response *rs, size_t body_len, char *buf, size_t cap)
{
	const char *why = reason(rs->status), *end = buf + cap;
	char *p = buf;

	if (cap == 0)
		return 0;
	/* A proxy must pass events on as they come: nginx reads X-Accel-Buffering. */
	if (rs->sse) {
		p = ADD(p, end, "Status: 200 OK\r\nContent-Type: text/event-stream\r\n"
		    "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n\r\n");
		*p = '\0';
		return (size_t)(p - buf);
	}
	p = ADD(p, end, "Status: ");
	p = add_u64(p, end, (uint64_t)rs->status);
	p = ADD(p, end, " ");
	p = add(p, end, why, strlen(why));
	if (rs->status != 304) {
		p = ADD(p, end, "\r\nContent-Type: application/json\r\nContent-Length: ");
		p = add_u64(p, end, body_len);
	}
	if (rs->etag[0]) {
		p = ADD(p, end, "\r\nETag: ");
		p = add(p, end, rs->etag, strlen(rs->etag));
	}
	if (rs->cache) {
		p = ADD(p, end, "\r\nCache-Control: ");
		p = add(p, end, rs->cache, strlen(rs->cache));
	}
	if (rs->allow) {
		p = ADD(p, end, "\r\nAllow: ");
		p = add(p, end, rs->allow, strlen(rs->allow));
	}
	p = ADD(p, end, "\r\n\r\n");
	*p = '\0';
	return (size_t)(p - buf);
}

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

/* Sends err as the answer. */
static void
answer_error(struct printbuf *body, struct api_response *rs, const struct api_error *err)
{
	printbuf_reset(body);
	rs->status = err->status;
	rs->etag[0] = '\0';
	rs->cache = "no-store";
	if (api_error_render(body, err) != 0)
		rs->status = 500;
}

/* A failure of ours: a 500 or 503 answer and one log line. */
__attribute__((format(printf, 5, 6)))
static void
answer_failure(struct printbuf *body, struct api_response *rs, int status, const char *code,
    const char *fmt, ...)
{
	struct api_error err;
	va_list ap;

	err.status = status;
	err.code = code;
	err.type = "internal";
	va_start(ap, fmt);
	vsnprintf(err.message, sizeof(err.message), fmt, ap);
	va_end(ap);
	snprintf(rs->log, sizeof(rs->log), "%d %s: %.700s", status, code, err.message);
	answer_error(body, rs, &err);
}

static void
store_unavailable(struct api_reader *rd, struct printbuf *body, struct api_response *rs)
{
	const char *why = rd->open_rc == LMT_ENOSTORE ? "there is no lmtasks store there yet" :
	    rd->open_rc == LMT_EINVAL ? "this responder already serves another store; run one "
	    "responder per store" : rd->open_rc == LMT_EDAMAGED && rd->damage ? rd->damage :
	    lmt_strerror(rd->open_rc);

	if (rd->open_rc == EACCES || rd->open_rc == EPERM) {
		/* What the CLI says for the same store (readers write their slot in lock.mdb). */
		answer_failure(body, rs, 503, "store_unavailable", "The task store at `%s` cannot "
		    "be read: %s (readers need write access to %s/lock.mdb and read access to "
		    "data.mdb).", rd->db_path ? rd->db_path : "?", why, rd->db_path ? rd->db_path : "?");
		return;
	}
	if (rd->open_rc == LMT_EREPLACED) {
		answer_failure(body, rs, 503, "store_unavailable", "The task store at `%s` was "
		    "replaced while it was open: %s. Restore backups with `lmtasks restore`, never "
		    "by copying data.mdb; to serve the copied file, stop every process that has the "
		    "store open, this responder too, and start them again.",
		    rd->db_path ? rd->db_path : "?", rd->damage ? rd->damage : why);
		return;
	}
	if (rd->open_rc == LMT_EDAMAGED) {
		answer_failure(body, rs, 503, "store_unavailable", "The task store at `%s` is "
		    "damaged: %s. Restore it from a backup.", rd->db_path ? rd->db_path : "?", why);
		return;
	}

	answer_failure(body, rs, 503, "store_unavailable",
	    "The task store at `%s` cannot be read: %s.", rd->db_path ? rd->db_path : "?", why);
}

static void
read_failure(struct printbuf *body, struct api_response *rs, int rc, uint64_t uid)
{
	if (rc == LMT_ECORRUPT)
		answer_failure(body, rs, 500, "internal", "Task `%" PRIu64 "` cannot be read: its "
		    "stored record is corrupt. Run `lmtasks check` on the store.", uid);
	else
		answer_failure(body, rs, 500, "internal", "The task store could not be read: %s.",
		    lmt_strerror(rc));
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
		answer_error(body, rs, &err);
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
		if ((page = pagecache_get(rd->pages, (uint64_t)mdb_txn_id(rd->txn), key, klen,
		    &plen)) != NULL) {
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
	answer_error(body, rs, &err);
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
		answer_failure(body, rs, 503, "store_unavailable", "The batches of the task store "
		    "at `%s` were added after this responder opened it: restart lmtasks-fcgi.",
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
			answer_error(body, rs, &err);
			return;
		}
		bad = r->uid;
	} else {
		rc = render_batch_page(body, rd->s, rd->txn, q, allow, nallow, &bad);
	}
	if (rc != 0) {
		printbuf_reset(body);
		if (rc == LMT_ECORRUPT)
			answer_failure(body, rs, 500, "internal", "Batch `%" PRIu64 "` cannot be read: "
			    "its stored record is corrupt.", bad);
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

void
api_handle(const struct api_request *rq, struct api_reader *rd, struct printbuf *body,
    struct api_response *rs)
{
	char path[ROUTE_PATH_MAX], q[128];
	struct api_error err, route_err;
	struct auth_grant grant;
	struct query_error why;
	struct query query;
	struct route r;
	size_t len;
	int decoded, routed;
	const char *m = rq->method ? rq->method : "GET";
	int have_store = rd->s != NULL && rd->txn != NULL;
	enum compat_level level = COMPAT_V025;
	int v1, level_rc = have_store ? level_of(rd, &level) : 0;

	rs->status = 500;
	rs->stream = NULL;
	rs->sse = 0;
	rs->allow = NULL;
	rs->cache = "no-store";	/* errors: never kept; a 200 says otherwise */
	rs->etag[0] = '\0';
	rs->log[0] = '\0';
	rs->head = strcmp(m, "HEAD") == 0;
	printbuf_reset(body);

	routed = route_path(rq->request_uri, rq->script_name, rq->path_info, path, &len, &decoded,
	    &route_err);
	if (routed == 0 && rq->query_string && strlen(rq->query_string) > API_QUERY_MAX)
		routed = api_error_set(&route_err, 414, "bad_request", "invalid_request",
		    "The query string is longer than %d bytes.", API_QUERY_MAX);
	r.kind = ROUTE_NONE;
	if (routed == 0)
		routed = route_parse(path, len, decoded, &r, &route_err);
	/* The store's level, read in this request's transaction: a change shows at once.  A
	 * store that shows no batches has no /batches routes at all. */
	v1 = level == COMPAT_V1;
	if ((r.kind == ROUTE_BATCHES || r.kind == ROUTE_BATCH) && have_store && !v1)
		routed = route_not_found(path, len, &route_err);
	if (routed == 404 || routed == 414) {
		answer_error(body, rs, &route_err);
		return;
	}
	if (strcmp(m, "GET") != 0 && !rs->head) {
		api_error_set(&err, 405, "method_not_allowed", "invalid_request",
		    "Method `%s` is not allowed here: the tasks API answers GET and HEAD.",
		    quote_text(m, strlen(m), q, sizeof(q)));
		answer_error(body, rs, &err);
		rs->allow = "GET, HEAD";
		return;
	}
	if (routed == 0 && r.kind == ROUTE_HEALTH) {
		/* Public, as in Meilisearch: it says whether the store can be read. */
		if (!have_store)
			store_unavailable(rd, body, rs);
		else if (printbuf_memappend(body, "{\"status\":\"available\"}", 22) >= 0)
			rs->status = 200;
		return;
	}
	/* Who asks comes before what is asked. API keys live in the store. */
	if (auth_check(have_store ? rd->s : NULL, have_store ? rd->txn : NULL, rd->master,
	    rq->authorization, clock_now(), &grant, &err) != 0) {
		if (err.status == 403 && !have_store)
			store_unavailable(rd, body, rs);
		else
			answer_error(body, rs, &err);
		return;
	}
	/* Every route past /health reads tasks: a key needs tasks.get, as in Meilisearch. */
	if (auth_permits(&grant, AUTH_TASKS_GET, &err) != 0) {
		answer_error(body, rs, &err);
		return;
	}
	if (routed != 0) {
		answer_error(body, rs, &route_err);
		return;
	}
	if ((r.kind == ROUTE_INDEX_TASKS || r.kind == ROUTE_INDEX_TASK) &&
	    !auth_allows(&grant, (struct task_str){ r.index, r.index_len })) {
		api_error_set(&err, 403, "invalid_api_key", "auth", "The provided API key is invalid.");
		answer_error(body, rs, &err);
		return;
	}
	/* Parameters are checked before the store is, as Meilisearch does. */
	query_init(&query);
	query.v1 = v1 || !have_store;
	if ((r.kind == ROUTE_TASKS || r.kind == ROUTE_INDEX_TASKS || r.kind == ROUTE_BATCHES) &&
	    query_parse(rq->query_string, &query, &why) != 0) {
		api_error_query(&err, &why);
		answer_error(body, rs, &err);
		return;
	}
	if (!have_store) {
		store_unavailable(rd, body, rs);
		return;
	}
	if (level_rc != 0) {
		read_failure(body, rs, level_rc, 0);
		return;
	}
	query.v1 = v1;
	if (v1 && query.ntypes) {
		int rc = compat_check_types(rd->s, rd->txn, &query, &why);
		if (rc == LMT_EINVAL) {
			api_error_query(&err, &why);
			answer_error(body, rs, &err);
			return;
		}
		if (rc != 0) {
			read_failure(body, rs, rc, 0);
			return;
		}
	}
	if (r.kind == ROUTE_INDEX_TASKS || r.kind == ROUTE_INDEX_TASK) {
		struct task_str idx = { r.index, r.index_len };
		int rc = store_index_exists(rd->s, rd->txn, idx);
		if (rc == MDB_NOTFOUND) {
			api_error_set(&err, 404, "index_not_found", "invalid_request",
			    "Index `%s` not found.", r.index);
			answer_error(body, rs, &err);
			return;
		}
		if (rc != 0) {
			read_failure(body, rs, rc, 0);
			return;
		}
	}
	if (r.kind == ROUTE_TASKS_STREAM)
		open_stream(rq, rd, body, rs);
	else if (r.kind == ROUTE_TASK || r.kind == ROUTE_INDEX_TASK)
		get_task(rq, &r, &grant, v1, rd, body, rs);
	else if (r.kind == ROUTE_BATCH || r.kind == ROUTE_BATCHES)
		batches(&query, &r, &grant, rd, body, rs);
	else
		list_tasks(rq, &query, &r, &grant, rd, body, rs);
}
