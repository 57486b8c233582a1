/* The HTTP application of both daemons: the pipeline over a route table, and the answers
 * (errors, failures, headers) every route gives alike. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lmtasks/conn.h"
#include "lmtasks/error.h"
#include "lmtasks/http.h"
#include "lmtasks/quote.h"
#include "lmtasks/text.h"

/* The header's first line for status, without its end, as one literal: *len its length;
 * NULL for a status without a reason of its own (Internal Server Error). */
static const char *
status_line(int status, size_t *len)
{
#define LINE(code, text) \
	case code: \
		*len = sizeof("Status: " #code " " text) - 1; \
		return "Status: " #code " " text
	switch (status) {
	LINE(200, "OK");
	LINE(204, "No Content");
	LINE(304, "Not Modified");
	LINE(400, "Bad Request");
	LINE(401, "Unauthorized");
	LINE(403, "Forbidden");
	LINE(404, "Not Found");
	LINE(405, "Method Not Allowed");
	LINE(410, "Gone");
	LINE(414, "URI Too Long");
	LINE(422, "Unprocessable Entity");
	LINE(431, "Request Header Fields Too Large");
	LINE(500, "Internal Server Error");
	LINE(503, "Service Unavailable");
	default:
		return NULL;
	}
#undef LINE
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
	char buf[TEXT_U64_MAX], *q = text_u64(buf + sizeof(buf), v);

	return add(p, end, q, (size_t)(buf + sizeof(buf) - q));
}

size_t
api_headers(const struct api_response *rs, size_t body_len, char *buf, size_t cap)
{
	const char *end = buf + cap, *line;
	char *p = buf;
	size_t n;

	if (cap == 0)
		return 0;
	/* A proxy must pass events on as they come: nginx reads X-Accel-Buffering. */
	if (rs->sse) {
		p = ADD(p, end, "Status: 200 OK\r\nContent-Type: text/event-stream\r\n"
		    "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n\r\n");
		*p = '\0';
		return (size_t)(p - buf);
	}
	if ((line = status_line(rs->status, &n)) != NULL) {
		p = add(p, end, line, n);
	} else {
		p = ADD(p, end, "Status: ");
		p = add_u64(p, end, (uint64_t)rs->status);
		p = ADD(p, end, " Internal Server Error");
	}
	if (rs->status != 304 && rs->type) {
		p = ADD(p, end, "\r\nContent-Type: ");
		p = add(p, end, rs->type, strlen(rs->type));
		p = ADD(p, end, "\r\nContent-Length: ");
		p = add_u64(p, end, body_len);
	} else if (rs->status != 304) {
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

void
http_answer_error(struct printbuf *body, struct api_response *rs, const struct api_error *err)
{
	printbuf_reset(body);
	rs->status = err->status;
	rs->type = NULL;
	rs->etag[0] = '\0';
	rs->cache = "no-store";
	if (api_error_render(body, err) != 0)
		rs->status = 500;
}

void
http_answer_failure(struct printbuf *body, struct api_response *rs, int status,
    const char *code, const char *fmt, ...)
{
	struct api_error err = { .status = status, .code = code, .type = "internal" };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err.message, sizeof(err.message), fmt, ap);
	va_end(ap);
	snprintf(rs->log, sizeof(rs->log), "%d %s: %.700s", status, code, err.message);
	http_answer_error(body, rs, &err);
}

/* The reader's words: it needs read access (and its slot in lock.mdb). */
static void
read_unavailable(struct printbuf *body, struct api_response *rs,
    const struct http_store_fault *f)
{
	const char *path = f->db_path ? f->db_path : "?";
	const char *why = f->open_rc == LMT_ENOSTORE ? "there is no lmtasks store there yet" :
	    f->open_rc == LMT_EINVAL ? "this responder already serves another store; run one "
	    "responder per store" : f->open_rc == LMT_EDAMAGED && f->damage ? f->damage :
	    lmt_strerror(f->open_rc);

	if (f->open_rc == EACCES || f->open_rc == EPERM)
		/* What the CLI says for the same store (readers write their slot in lock.mdb). */
		http_answer_failure(body, rs, 503, "store_unavailable", "The task store at `%s` "
		    "cannot be read: %s (readers need write access to %s/lock.mdb and read access "
		    "to data.mdb).", path, why, path);
	else if (f->open_rc == LMT_EREPLACED)
		http_answer_failure(body, rs, 503, "store_unavailable", "The task store at `%s` was "
		    "replaced while it was open: %s. Restore backups with `lmtasks restore`, never "
		    "by copying data.mdb; to serve the copied file, stop every process that has the "
		    "store open, this responder too, and start them again.", path,
		    f->damage ? f->damage : why);
	else if (f->open_rc == LMT_EDAMAGED)
		http_answer_failure(body, rs, 503, "store_unavailable", "The task store at `%s` is "
		    "damaged: %s. Restore it from a backup.", path, why);
	else
		http_answer_failure(body, rs, 503, "store_unavailable",
		    "The task store at `%s` cannot be read: %s.", path, why);
}

void
http_unavailable(struct printbuf *body, struct api_response *rs,
    const struct http_store_fault *f)
{
	const char *path = f->db_path ? f->db_path : "?";

	if (!f->write)
		read_unavailable(body, rs, f);
	else if (f->open_rc == LMT_EDAMAGED)
		http_answer_failure(body, rs, 503, "store_unavailable", "The task store at `%s` "
		    "cannot be written: the store is damaged: %s; nothing was written. Restore it "
		    "from a backup.", path, f->damage ? f->damage : "?");
	else
		http_answer_failure(body, rs, 503, "store_unavailable", "The task store at `%s` "
		    "cannot be written: %s.", path, f->open_rc == LMT_ENOSTORE ?
		    "there is no lmtasks store there yet" : lmt_strerror(f->open_rc));
}

int
http_query_check(const char *qs, struct api_error *err)
{
	if (qs == NULL || strlen(qs) <= CONN_QUERY_MAX)
		return 0;
	return api_error_set(err, 414, "bad_request", "invalid_request",
	    "The query string is longer than %d bytes.", CONN_QUERY_MAX);
}

const struct http_route *
http_find_path(const struct http_app *app, const char *path, size_t len)
{
	for (size_t i = 0; i < app->nroutes; i++) {
		const char *p = app->routes[i].path;
		if (strlen(p) == len && memcmp(p, path, len) == 0)
			return &app->routes[i];
	}
	return NULL;
}

/* The HTTP_* bit of method m; 0 for one no route answers.  Byte by byte: it runs on
 * every request, and strcmp's call costs more than the compare. */
static unsigned
method_bit(const char *m)
{
	switch (m[0]) {
	case 'G':
		return m[1] == 'E' && m[2] == 'T' && m[3] == '\0' ? HTTP_GET : 0;
	case 'H':
		return m[1] == 'E' && m[2] == 'A' && m[3] == 'D' && m[4] == '\0' ? HTTP_HEAD : 0;
	case 'P':
		return strcmp(m, "POST") == 0 ? HTTP_POST : 0;
	case 'D':
		return strcmp(m, "DELETE") == 0 ? HTTP_DELETE : 0;
	default:
		return 0;
	}
}

/* Every answer starts as a 500 that no cache keeps; a 200 says otherwise. */
static void
begin(struct http_exchange *x, int head)
{
	struct api_response *rs = x->rs;

	rs->status = 500;
	rs->stream = NULL;
	rs->sse = 0;
	rs->allow = NULL;
	rs->type = NULL;
	rs->cache = "no-store";
	rs->etag[0] = '\0';
	rs->log[0] = '\0';
	rs->head = head;
	printbuf_reset(x->body);
	x->route_rc = 0;
}

/* Locates x's route and refuses another method: its entry, or NULL once answered. */
static const struct http_route *
locate(const struct http_app *app, struct http_exchange *x, unsigned method)
{
	const struct http_route *e;
	struct api_error err;
	char q[128];

	if ((e = app->locate(x)) == NULL) {
		http_answer_error(x->body, x->rs, &x->route_err);
		return NULL;
	}
	if ((e->method_bits & method) == 0) {
		api_error_set(&err, 405, "method_not_allowed", "invalid_request",
		    "Method `%s` is not allowed here: %s.",
		    quote_text(x->method, strlen(x->method), q, sizeof(q)), e->refusal);
		http_answer_error(x->body, x->rs, &err);
		x->rs->allow = e->methods;
		return NULL;
	}
	return e;
}

void
http_run(const struct http_app *app, const struct api_request *rq, void *ctx,
    struct printbuf *body, struct api_response *rs)
{
	struct http_exchange x;
	unsigned method;

	x.rq = rq;
	x.body = body;
	x.rs = rs;
	x.app = app;
	x.ctx = ctx;
	x.method = rq->method ? rq->method : "GET";
	method = method_bit(x.method);
	begin(&x, app->head && method == HTTP_HEAD);
	if ((x.entry = locate(app, &x, method)) == NULL)
		return;
	/* Who asks comes before what is asked, as in Meilisearch. */
	if (x.entry->action != 0 && app->authorize(&x, x.entry->action) != 0)
		return;
	if (x.route_rc != 0 || x.entry->handler == NULL) {
		http_answer_error(body, rs, &x.route_err);
		return;
	}
	x.entry->handler(&x);
}
