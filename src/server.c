/* The servers' shared skeleton and request adapter (see server.h). */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lmtasks/auth.h"
#include "lmtasks/clock.h"
#include "lmtasks/conn.h"
#include "lmtasks/error.h"
#include "lmtasks/listen.h"
#include "lmtasks/log.h"
#include "lmtasks/server.h"

#define EXTRA_MAX 8	/* options of a program's own */
#define HEAD_MAX 256	/* api_headers(): always enough */

/* ---- the options ---- */

/* The options both programs take; a program's own follow, from 256 on. */
static const struct option common[] = {
	{ "db", required_argument, NULL, 'd' },
	{ "listen", required_argument, NULL, 'l' },
	{ "master-key-file", required_argument, NULL, 'k' },
	{ "socket-group", required_argument, NULL, 'g' },
	{ "socket-mode", required_argument, NULL, 'm' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
};
#define N_COMMON (sizeof(common) / sizeof(common[0]))

/* One option c with its argument arg: -1 to go on, else the exit status. */
static int
option(const struct server_app *app, const struct server_option *extra, int c,
    const char *arg, struct server_opts *o)
{
	switch (c) {
	case 'd':
		o->db = arg;
		return -1;
	case 'l':
		o->listen = arg;
		return -1;
	case 'k':
		o->key_file = arg;
		return -1;
	case 'g':
		o->sock_opts = 1;
		if (listen_group(arg, &o->sock_gid) == 0)
			return -1;
		fprintf(stderr, "%s: --socket-group: no group `%s`\n", app->name, arg);
		return 2;
	case 'm':
		o->sock_opts = 1;
		if (listen_mode(arg, &o->sock_mode) == 0)
			return -1;
		fprintf(stderr, "%s: --socket-mode wants an octal mode like 0660\n", app->name);
		return 2;
	case 'h':
		fputs(app->usage, stdout);
		return 0;
	case 'V':
		printf("%s %s\n", app->name, PACKAGE_VERSION);
		return 0;
	}
	if (c >= 256) {
		if (extra[c - 256].parse(arg) == 0)
			return -1;
		fprintf(stderr, "%s: %s\n", app->name, extra[c - 256].refused);
		return 2;
	}
	fprintf(stderr, "%s: see `%s --help`\n", app->name, app->name);
	return 2;
}

/* An empty value is none: the environment's is taken then. */
static const char *
or_env(const char *v, const char *name)
{
	return v && *v ? v : getenv(name);
}

int
server_options(const struct server_app *app, const struct server_option *extra,
    size_t n_extra, int argc, char **argv, struct server_opts *o)
{
	struct option opts[N_COMMON + EXTRA_MAX + 1] = { { 0 } };
	int c, rc;

	memset(o, 0, sizeof(*o));
	o->sock_mode = LISTEN_MODE_DEFAULT;
	o->sock_gid = getegid();
	memcpy(opts, common, sizeof(common));
	for (size_t i = 0; i < n_extra && i < EXTRA_MAX; i++)
		opts[N_COMMON + i] = (struct option){ extra[i].name, required_argument, NULL,
		    256 + (int)i };
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1)
		if ((rc = option(app, extra, c, optarg, o)) >= 0)
			return rc;
	if (optind != argc) {
		fprintf(stderr, "%s: unexpected argument `%s`; see `%s --help`\n", app->name,
		    argv[optind], app->name);
		return 2;
	}
	o->db = or_env(o->db, "LMTASKS_DB");
	o->key_file = or_env(o->key_file, "LMTASKS_MASTER_KEY_FILE");
	if (o->db && *o->db == '\0')
		o->db = NULL;
	if (o->key_file && *o->key_file == '\0')
		o->key_file = NULL;
	return -1;
}

int
server_master_key(const char *prog, const char *file, unsigned char *hash)
{
	int rc;

	/* libsodium is started only with a key: a CGI request without one starts faster. */
	if (auth_init() != 0) {
		log_line(prog, "cannot initialise libsodium");
		return 1;
	}
	/* A key that cannot be read never means an open API. */
	if ((rc = auth_master_load(file, hash)) != 0) {
		log_line(prog, "cannot use the master key file %s: %s", file, rc == LMT_EINVAL ?
		    "the key must be at least 16 bytes on its first line" : strerror(rc));
		return 1;
	}
	return 0;
}

int
server_listen(const char *prog, const struct server_opts *o, int *fd)
{
	char why[PATH_MAX + 160];

	signal(SIGPIPE, SIG_IGN);
	if (o->listen == NULL)
		return listen_inherited(fd) == 0 ? 0 : SERVER_CGI;
	if (listen_open(o->listen, o->sock_mode, o->sock_gid, fd, why, sizeof(why)) != 0) {
		log_line(prog, "%s", why);
		return 1;
	}
	return 0;
}

/* ---- the request adapter ---- */

/* The program being served: one a process. */
static const struct server_app *app;

/* A worker's (or the CGI request's) answer buffer and the program's own state. */
struct worker {
	struct printbuf *body;
	void *ctx;
};

static int
worker_new(int cgi, struct worker **out)
{
	struct worker *w = calloc(1, sizeof(*w));

	if (w == NULL || (w->body = printbuf_new()) == NULL ||
	    (app->init && app->init(&w->ctx, cgi) != 0)) {
		if (w)
			printbuf_free(w->body);
		free(w);
		return ENOMEM;
	}
	*out = w;
	return 0;
}

static void
worker_free(void *arg)
{
	struct worker *w = arg;

	if (w == NULL)
		return;
	if (app->free)
		app->free(w->ctx);
	printbuf_free(w->body);
	free(w);
}

static int
thread_init(void **ctx)
{
	return worker_new(0, (struct worker **)ctx);
}

/* Answers rq into head (*head_len bytes) and w->body; returns how many body bytes to send
 * (none for HEAD).  An event stream that opened is left in *stream.  Inlined into both
 * callers: one call less on every request. */
static inline __attribute__((always_inline)) size_t
answer(struct worker *w, const struct api_request *rq, const char *db_param, char *head,
    size_t *head_len, stream_sub **stream)
{
	struct api_response rs;

	app->handle(w->ctx, rq, db_param, w->body, &rs);
	*stream = rs.stream;
	*head_len = api_headers(&rs, (size_t)w->body->bpos, head, HEAD_MAX);
	return rs.head ? 0 : (size_t)w->body->bpos;
}

/* A stream's first bytes on their way, then the stream handed to the program; returns the
 * connection's state, *taken set when the program holds cl from now on. */
static enum conn_state
stream_begin(struct worker *w, loop_client *cl, const char *head, size_t hl, size_t bl,
    stream_sub *stream, int *taken)
{
	conn *c = loop_conn(cl);
	enum conn_state st = conn_stream_begin(c, head, hl, w->body->buf, bl, clock_mono());

	/* A uids= stream whose tasks have all finished ends after its current state. */
	if (st == CONN_CLOSE || stream_sub_done(stream)) {
		stream_sub_free(stream);
		return st == CONN_CLOSE ? st : conn_stream_end(c, clock_mono());
	}
	*taken = 1;
	/* The program holds it from now on: out of the workers' set. */
	if (app->stream == NULL || loop_detach(cl) != 0 || app->stream(cl, stream) != 0) {
		stream_sub_free(stream);
		loop_close(cl);
	}
	return st;
}

/* A whole request from the loop: answered, or its stream handed to the program. */
static enum conn_state
on_request(void *ctx, loop_client *cl, int *taken)
{
	conn *c = loop_conn(cl);
	struct api_request rq = {
		conn_param(c, CONN_METHOD), conn_param(c, CONN_REQUEST_URI),
		conn_param(c, CONN_SCRIPT_NAME), conn_param(c, CONN_PATH_INFO),
		conn_param(c, CONN_QUERY_STRING), conn_param(c, CONN_AUTHORIZATION),
		conn_param(c, CONN_IF_NONE_MATCH), conn_param(c, CONN_LAST_EVENT_ID),
	};
	struct worker *w = ctx;
	stream_sub *stream;
	char head[HEAD_MAX];
	size_t hl, bl;

	bl = answer(w, &rq, conn_param(c, CONN_LMTASKS_DB), head, &hl, &stream);
	if (stream == NULL)
		return conn_answer(c, head, hl, w->body->buf, bl, clock_mono());
	return stream_begin(w, cl, head, hl, bl, stream, taken);
}

int
server_run(const struct server_app *a, const struct server_opts *o, int fd, int threads)
{
	struct loop_ops ops = {
		a->name, thread_init, worker_free, on_request, a->tick, a->stopping,
	};
	int rc;

	app = a;
	rc = loop_run(fd, threads, &ops);
	if (o->listen && listen_unix_path(o->listen))
		unlink(listen_unix_path(o->listen));
	return rc;
}

int
server_cgi(const struct server_app *a)
{
	struct api_request rq = {
		getenv("REQUEST_METHOD"), getenv("REQUEST_URI"), getenv("SCRIPT_NAME"),
		getenv("PATH_INFO"), getenv("QUERY_STRING"), getenv("HTTP_AUTHORIZATION"),
		getenv("HTTP_IF_NONE_MATCH"), getenv("HTTP_LAST_EVENT_ID"),
	};
	struct worker *w;
	stream_sub *stream;
	char head[HEAD_MAX];
	size_t hl, bl;
	int ok;

	app = a;
	if (worker_new(1, &w) != 0)
		return 1;
	bl = answer(w, &rq, getenv("LMTASKS_DB"), head, &hl, &stream);
	ok = fwrite(head, 1, hl, stdout) == hl && fwrite(w->body->buf, 1, bl, stdout) == bl;
	worker_free(w);
	ok = fflush(stdout) == 0 && ok;
	/* GET /tasks/stream: this process holds it, for a while at most. */
	if (stream && ok && app->cgi_stream)
		return app->cgi_stream(stream);
	stream_sub_free(stream);
	return ok ? 0 : 1;
}
