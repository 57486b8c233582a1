/* The HTTP application both daemons share: what a request brings and what an answer carries,
 * one route table entry (path, methods, key action, handler), the pipeline that runs a table
 * (route, method, key, handler) and the answers every route may give.  No I/O and no store
 * access of its own: each daemon hands in its table and its hooks, so the reader's table
 * names no write code and lmtasks-fcgi links none. */
#ifndef LMTASKS_HTTP_H
#define LMTASKS_HTTP_H

#include <stddef.h>

#include <json-c/printbuf.h>

#include "lmtasks/api_error.h"
#include "lmtasks/auth.h"
#include "lmtasks/route.h"

/* The CGI/FastCGI parameters the daemons read; any may be NULL. */
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
	const char *type;	/* the Content-Type of a body that is not JSON, or NULL */
};

struct http_exchange;

/* The methods a route answers, as bits: resolved once a request, tested per route. */
enum http_method {
	HTTP_GET = 1,
	HTTP_HEAD = 2,
	HTTP_POST = 4,
	HTTP_DELETE = 8,
};

/* Answers a request the pipeline has routed, checked and authorized. */
typedef void http_handler(struct http_exchange *x);

/* One route of a daemon, in the manner of tmux's cmd_entry: the table is the routing. */
struct http_route {
	const char *path;	/* the pattern as the API spells it (/indexes/{indexUid}/tasks) */
	enum route_kind kind;	/* what the daemon's locate hook names the path */
	const char *methods;	/* the methods answered, as the Allow header lists them */
	unsigned method_bits;	/* the same methods, HTTP_* bits */
	const char *refusal;	/* why another method is refused: "<who> answers <what>" */
	unsigned action;	/* the AUTH_TASKS_* bit a key needs; 0: public, no key read */
	http_handler *handler;	/* NULL: the path only ever answers its route error */
};

/* A daemon: its table and the two steps that differ between the reader and the writer. */
struct http_app {
	const struct http_route *routes;
	size_t nroutes;
	int head;		/* HEAD is GET without the body (the reader) */
	/* Finds x's route: its entry, with x->route filled (and x->route_rc, x->route_err for
	 * a bad parameter); or NULL with x->route_err filled (404, 414), answered at once. */
	const struct http_route *(*locate)(struct http_exchange *x);
	/* Decides who asks, into x->grant, for a key that needs action: 0, or nonzero once it
	 * has answered. */
	int (*authorize)(struct http_exchange *x, unsigned action);
};

/* One request on its way through the pipeline: http_run() builds it, the hooks and the
 * handler read and fill it. */
struct http_exchange {
	const struct api_request *rq;
	struct printbuf *body;		/* the answer's body, appended to */
	struct api_response *rs;
	const char *method;		/* never NULL: GET when the request names none */
	const struct http_route *entry;	/* the route found */
	struct route route;		/* its parameters */
	int route_rc;			/* 0, or a bad parameter's 400: answered after the key */
	struct api_error route_err;
	struct auth_grant grant;	/* the authorize hook's; patterns live as long as it says */
	const struct http_app *app;	/* the daemon's, as http_run() was given it */
	void *ctx;			/* the daemon's own (its store, its request state) */
};

/*
 * Answers rq through app: resets rs, locates the route, refuses a method it does not answer
 * (405 with Allow), lets the key in (a route with an action), answers a bad parameter, then
 * calls the handler with ctx as x->ctx.  The body is appended to body, the rest goes to rs;
 * all four are the caller's, and nothing is freed.
 */
void http_run(const struct http_app *app, const struct api_request *rq, void *ctx,
    struct printbuf *body, struct api_response *rs);

/* The entry of app for kind (at once when the table is in enum route_kind's order); NULL
 * when app has none.  Inline: routing is on every request. */
static inline const struct http_route *
http_find(const struct http_app *app, enum route_kind kind)
{
	if ((size_t)kind < app->nroutes && app->routes[kind].kind == kind)
		return &app->routes[kind];
	for (size_t i = 0; i < app->nroutes; i++) {
		if (app->routes[i].kind == kind)
			return &app->routes[i];
	}
	return NULL;
}

/* The entry of app whose path is len bytes at path exactly; NULL when none. */
const struct http_route *http_find_path(const struct http_app *app, const char *path,
    size_t len);

/* Returns 0, or fills err with the 414 of a query string past CONN_QUERY_MAX. */
int http_query_check(const char *qs, struct api_error *err);

/* Replaces the answer with err (never kept by a cache); a 500 when it cannot be rendered. */
void http_answer_error(struct printbuf *body, struct api_response *rs,
    const struct api_error *err);

/* A failure of ours (status 500 or 503, code internal or store_unavailable): the answer,
 * and one line for the error log in rs->log. */
__attribute__((format(printf, 5, 6)))
void http_answer_failure(struct printbuf *body, struct api_response *rs, int status,
    const char *code, const char *fmt, ...);

/* What a daemon knows of a store it could not open. */
struct http_store_fault {
	int open_rc;		/* why: an errno, an LMDB or LMT_* code */
	const char *db_path;	/* NULL: unknown */
	const char *damage;	/* LMT_EDAMAGED, LMT_EREPLACED: what is wrong, or NULL */
	int write;		/* the writer's words (cannot be written), else the reader's */
};

/* Answers 503 store_unavailable for f, in the words the CLI uses for the same store. */
void http_unavailable(struct printbuf *body, struct api_response *rs,
    const struct http_store_fault *f);

/* Writes the CGI header block (Status, Content-Type and Content-Length but on a 304,
 * ETag, Cache-Control, Allow, blank line) into buf (cap bytes, 256 is always enough);
 * returns its length.  For a stream: the event-stream headers, no length,
 * X-Accel-Buffering: no. */
size_t api_headers(const struct api_response *rs, size_t body_len, char *buf, size_t cap);

#endif
