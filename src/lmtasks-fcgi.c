/* lmtasks-fcgi: the tasks API over FastCGI (own socket or inherited) or CGI, read-only (SPEC §4).
 *
 * FastCGI: server.c's adapter hands each whole request of loop.c's workers to handle()
 * below with the worker's own reading state; a stream goes on to the stream thread
 * (stream_io.c); once a second the timer checks the store (reader_check).
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lmtasks/api.h"
#include "lmtasks/auth.h"
#include "lmtasks/clock.h"
#include "lmtasks/error.h"
#include "lmtasks/listen.h"
#include "lmtasks/log.h"
#include "lmtasks/metrics.h"
#include "lmtasks/pagecache.h"
#include "lmtasks/quote.h"
#include "lmtasks/reader.h"
#include "lmtasks/server.h"
#include "lmtasks/settings.h"
#include "lmtasks/store.h"
#include "lmtasks/stream.h"
#include "stream_io.h"

#ifndef LMTASKS_DEFAULT_DB
#define LMTASKS_DEFAULT_DB "/var/lib/lmtasks"
#endif

static const char usage_text[] =
"usage: lmtasks-fcgi [--db PATH] [--listen unix:PATH|HOST:PORT] [--threads N]\n"
"                    [--page-cache SIZE] [--socket-group GROUP] [--socket-mode MODE]\n"
"                    [--master-key-file FILE]\n"
"\n"
"Serves the Meilisearch tasks API (GET /tasks, /tasks/UID, /indexes/INDEX/tasks,\n"
"/indexes/INDEX/tasks/UID, /health, /metrics for Prometheus, and /tasks/stream as\n"
"server-sent events) from an lmtasks store, read-only.  As CGI a stream lasts\n"
"LMTASKS_STREAM_MAX_SECONDS (300) at most.\n"
"A store at `lmtasks config compat v1` answers as Meilisearch v1 (batchUid, canceledBy\n"
"and error on every task, GET /batches and /batches/UID, ?batchUids=); read per request.\n"
"\n"
"  --db PATH        the store; else $LMTASKS_DB, else the first store requests name\n"
"                   by their LMTASKS_DB parameter (else " LMTASKS_DEFAULT_DB ")\n"
"                   that can be read: one that cannot fixes nothing\n"
"  --listen ADDR    open a FastCGI socket: unix:/run/lmtasks/fcgi.sock or 127.0.0.1:9000\n"
"  --socket-group GROUP\n"
"                   the group (from /etc/group, or a number) of the unix: socket\n"
"                   (default: the process's group);\n"
"                   put the web server's user in it (nginx, Apache: www-data)\n"
"  --socket-mode MODE\n"
"                   the unix: socket's mode (default 0660: its owner and group connect)\n"
"  --threads N      requests served at once (default: half the CPUs, at least 1)\n"
"  --page-cache SIZE\n"
"                   bytes of list pages each thread keeps for the store's current\n"
"                   snapshot, with K or M (default 512K; 0: none)\n"
"  --master-key-file FILE\n"
"                   require `Authorization: Bearer KEY` with the master key in FILE\n"
"                   (its first line, 16 bytes at least) or an API key made by\n"
"                   `lmtasks key create`; else $LMTASKS_MASTER_KEY_FILE; without\n"
"                   either, every route is open\n"
"  --help, --version\n"
"\n"
"Without --listen it serves FastCGI on the socket it inherits as standard input\n"
"(spawn-fcgi, systemd socket activation, mod_fcgid), or, when standard input is\n"
"not a socket, answers one CGI request from its environment and exits.\n";

/* The store, opened on first use and shared by every worker (reader.h). */
static reader *db;

/* The master key's hash, when a key file is configured. */
static unsigned char master_hash[AUTH_HASH_BYTES];
static const unsigned char *master;

static size_t page_budget = PAGECACHE_DEFAULT;	/* --page-cache */
static long threads;	/* --threads; 0: half the CPUs, looked up only for FastCGI */

#define logline(...) log_line("lmtasks-fcgi", __VA_ARGS__)

/* ---- a worker's reading ---- */

/* Per-thread reading state: a reset transaction, an iterator, and in FastCGI the list
 * pages of the current snapshot. */
struct worker {
	MDB_txn *txn;
	store_iter *it;
	pagecache *pages;
	struct api_memo memo;
	metrics_worker *metrics;	/* FastCGI: this worker's requests, for /metrics */
};

/* Takes the store's read lock and renews the worker's snapshot into rd; 1 when w->txn is
 * live (for reader_end to reset), 0 when rd says why there is nothing to read. */
static int
worker_begin(struct worker *w, const char *db_param, struct api_reader *rd)
{
	struct reader_view v;
	int rc = reader_begin(db, db_param, &w->txn, &v);

	if (rc == 0)
		rc = w->it ? store_iter_renew(w->it, w->txn) : store_iter_open(v.s, w->txn, &w->it);
	rd->db_path = v.path;
	rd->damage = v.why;
	rd->open_rc = rc;
	if (rc != 0 && v.s) {
		mdb_txn_reset(w->txn);	/* the iterator failed */
		v.s = NULL;
	}
	if (v.s == NULL)
		return 0;
	rd->s = v.s;
	rd->txn = w->txn;
	rd->it = w->it;
	rd->pages = w->pages;
	rd->memo = &w->memo;
	return 1;
}

/* api_handle's call, for reader_guard. */
struct call {
	const struct api_request *rq;
	struct api_reader *rd;
	struct printbuf *body;
	struct api_response *rs;
};

static void
call_api(void *arg)
{
	struct call *c = arg;

	api_handle(c->rq, c->rd, c->body, c->rs);
}

/* Answers rq from the worker's snapshot into body and rs (server_app.handle), a SIGBUS
 * from a damaged file answered as the damage it is; logs a failure. */
static void
handle(void *ctx, const struct api_request *rq, const char *db_param, struct printbuf *body,
    struct api_response *rs)
{
	struct worker *w = ctx;
	struct api_reader rd = { .master = master, .metrics = w->metrics, .route = -1 };
	struct call c = { rq, &rd, body, rs };
	struct reader_view v;
	int64_t t0 = w->metrics ? clock_mono() : 0;
	int live = worker_begin(w, db_param, &rd);

	/* A jump leaves the read transaction to be reset, the body to be rewritten, and at
	 * worst the few allocations of the request's render lost. */
	if (reader_guard(db, &v, call_api, &c) != 0) {
		printbuf_reset(body);
		rd.s = NULL;
		rd.open_rc = v.rc;
		rd.damage = v.why;
		api_handle(rq, &rd, body, rs);
	}
	reader_end(db, live ? w->txn : NULL);
	if (w->metrics)
		metrics_note(w->metrics, rq->method, rd.route, rs->status, clock_mono() - t0);
	if (rs->log[0]) {
		char qm[32], qp[160];
		const char *m = rq->method ? rq->method : "";
		const char *p = rq->request_uri ? rq->request_uri : rq->path_info ? rq->path_info : "";
		logline("%s (%s %s)", rs->log, quote_text(m, strlen(m), qm, sizeof(qm)),
		    quote_text(p, strcspn(p, "?"), qp, sizeof(qp)));
	}
}

/* A worker's reading state; list pages only in FastCGI, where a worker serves many. */
static int
worker_init(void **ctx, int cgi)
{
	struct worker *w = calloc(1, sizeof(*w));

	if (w == NULL || (!cgi && (pagecache_new(page_budget, &w->pages) != 0 ||
	    metrics_worker_new(&w->metrics) != 0))) {
		if (w)
			pagecache_free(w->pages);
		free(w);
		return ENOMEM;
	}
	*ctx = w;
	return 0;
}

static void
worker_free(void *ctx)
{
	struct worker *w = ctx;

	store_iter_close(w->it);
	pagecache_free(w->pages);
	reader_drop(db, w->txn);
	free(w);
}

/* ---- streams ---- */

static conn *
host_conn(void *client)
{
	return loop_conn(client);
}

static void
host_close(void *client)
{
	loop_close(client);
}

static void
host_give_back(void *client, enum conn_state st)
{
	loop_give_back(client, st);
}

/* The stream thread reads as a worker does, through the reader's guarded path. */
static int
host_read(void (*fn)(store *s, MDB_txn *txn, void *arg), void *arg)
{
	return reader_read(db, fn, arg);
}

static const struct stream_io_host stream_host = {
	host_conn, host_close, host_give_back, host_read, "lmtasks-fcgi",
};

/* FastCGI: the stream thread holds it from now on. */
static int
hold_stream(loop_client *cl, stream_sub *sub)
{
	return stream_io_adopt(&stream_host, reader_path(db), cl, sub);
}

/* CGI: this process holds it, for a while at most. */
static int
cgi_stream(stream_sub *sub)
{
	return stream_io_cgi(sub, db, stream_io_cgi_max());
}

/* The loop's timer, once a second: the size check, then the data file's identity. */
static void
check_timer(void)
{
	reader_check(db);
}

/* ---- the program ---- */

/* CGI with a master key file that cannot be read: a 500, never an open answer. */
static int
cgi_refuse(void)
{
	static const char body[] = "{\"message\":\"The master key file cannot be read; see the "
	    "server's error log.\",\"code\":\"internal\",\"type\":\"internal\",\"link\":"
	    "\"https://docs.meilisearch.com/errors#internal\"}";

	printf("Status: 500 Internal Server Error\r\nContent-Type: application/json\r\n"
	    "Content-Length: %zu\r\n\r\n%s", sizeof(body) - 1, body);
	return fflush(stdout) == 0 ? 0 : 1;
}

/* --page-cache: a size as maxBytes takes it (settings.h), up to 1 GiB. */
static int
parse_budget(const char *text)
{
	uint64_t n;

	if (settings_parse_size(text, &n) != 0 || n > (1u << 30))
		return LMT_EINVAL;
	page_budget = (size_t)n;
	return 0;
}

/* --threads: each thread holds one of the store's 126 reader slots; the CLI needs some. */
static int
parse_threads(const char *text)
{
	char *end;

	threads = strtol(text, &end, 10);
	return *text == '\0' || *end || threads < 1 || threads > 100 ? LMT_EINVAL : 0;
}

static const struct server_option own_options[] = {
	{ "threads", parse_threads, "--threads wants a number from 1 to 100" },
	{ "page-cache", parse_budget, "--page-cache wants a size in bytes, with K or M, up to 1G "
	    "(0: none)" },
};

static const struct server_app responder = {
	"lmtasks-fcgi", usage_text, worker_init, worker_free, handle, hold_stream, cgi_stream,
	check_timer, stream_io_stop,
};

/* A key that cannot be read never means an open API: CGI answers 500, a server exits. */
static int
load_key(const struct server_opts *o)
{
	int fd;

	if (server_master_key(responder.name, o->key_file, master_hash) != 0)
		return listen_inherited(&fd) != 0 && o->listen == NULL ? cgi_refuse() : 1;
	master = master_hash;
	return -1;
}

int
main(int argc, char **argv)
{
	struct reader_config cfg = { responder.name, NULL, LMTASKS_DEFAULT_DB, READER_SHARED,
	    NULL };
	struct server_opts o;
	int fd, rc;

	if ((rc = server_options(&responder, own_options, 2, argc, argv, &o)) >= 0)
		return rc;
	cfg.path = o.db;
	if (reader_new(&cfg, &db) != 0)
		return 1;
	if (o.key_file && (rc = load_key(&o)) >= 0)
		goto out;
	if ((rc = server_listen(responder.name, &o, &fd)) == SERVER_CGI) {
		rc = server_cgi(&responder);
		goto out;
	}
	if (rc != 0)
		goto out;
	/* The web server in front shares the CPUs: on two, one thread served 8-11% more
	 * requests than two (bench/threads.sh). */
	if (threads == 0 && (threads = sysconf(_SC_NPROCESSORS_ONLN) / 2) < 1)
		threads = 1;
	if (threads > 100)
		threads = 100;
	reader_start(db);
	metrics_serve(stream_io_count);
	logline("serving %s with %ld threads, %zu bytes of list pages each", reader_path(db) ?
	    reader_path(db) : "the first store a request names by LMTASKS_DB (else "
	    LMTASKS_DEFAULT_DB ") that can be read,", threads, page_budget);
	rc = server_run(&responder, &o, fd, (int)threads);
out:
	reader_free(db);
	return rc;
}
