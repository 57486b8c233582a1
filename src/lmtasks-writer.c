/* lmtasks-writer: POST /tasks/cancel, DELETE /tasks and POST /tasks/compact over FastCGI
 * (own socket or inherited) or CGI, for keys that carry the action; runs as the store's
 * owner, apart from the read-only public responder.  FastCGI is framed by conn.c, served
 * by loop.c and adapted
 * by server.c, as the responder's is, with one worker: LMDB serialises writers anyway, and
 * no connection waits on another's slow peer. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "lmtasks/api.h"
#include "lmtasks/auth.h"
#include "lmtasks/listen.h"
#include "lmtasks/log.h"
#include "lmtasks/reader.h"
#include "lmtasks/server.h"
#include "lmtasks/store.h"
#include "lmtasks/writer.h"

#ifndef LMTASKS_DEFAULT_DB
#define LMTASKS_DEFAULT_DB "/var/lib/lmtasks"
#endif

static const char usage_text[] =
"usage: lmtasks-writer --master-key-file FILE [--db PATH]\n"
"                      [--listen unix:PATH|HOST:PORT] [--socket-group GROUP]\n"
"                      [--socket-mode MODE]\n"
"\n"
"Serves the write routes of the Meilisearch tasks API, POST /tasks/cancel and\n"
"DELETE /tasks (Meilisearch's filters, at least one) and POST /tasks/compact\n"
"(lmtasks compact), for the master key or an API key made with `lmtasks key create\n"
"--actions tasks.cancel,tasks.delete,tasks.compact`.  Run it as the store's owner\n"
"and mount it for those method+path pairs only; the public responder,\n"
"lmtasks-fcgi, stays read-only.\n"
"\n"
"  --master-key-file FILE\n"
"                   the master key (its first line, 16 bytes at least); else\n"
"                   $LMTASKS_MASTER_KEY_FILE; required\n"
"  --db PATH        the store; else $LMTASKS_DB, else " LMTASKS_DEFAULT_DB "\n"
"  --listen ADDR    open a FastCGI socket: unix:/run/lmtasks/writer.sock or 127.0.0.1:9001\n"
"  --socket-group GROUP\n"
"                   the group (from /etc/group, or a number) of the unix: socket\n"
"                   (default: the process's group): the web server's\n"
"  --socket-mode MODE\n"
"                   the unix: socket's mode (default 0660: its owner and group connect)\n"
"  --help, --version\n"
"\n"
"Without --listen it serves FastCGI on the socket it inherits as standard input\n"
"(spawn-fcgi, systemd socket activation, mod_fcgid), or, when standard input is\n"
"not a socket, answers one CGI request from its environment and exits.\n"
"Over FastCGI a request must arrive whole within 5 s, its parameters within\n"
"192 KiB, its body (read and dropped) within 1 MiB; a connection that does not\n"
"keep to that is closed, and no connection waits on another.\n";

/* The store, used by the one worker alone: its requests and its once-a-second check run
 * on that thread, one after the other. */
static reader *db;
static unsigned char master_hash[AUTH_HASH_BYTES];

#define logline(...) log_line("lmtasks-writer", __VA_ARGS__)

/* writer_handle's call, for reader_guard. */
struct call {
	const struct api_request *rq;
	struct writer_store *ws;
	struct printbuf *body;
	struct api_response *rs;
};

static void
call_writer(void *arg)
{
	struct call *c = arg;

	writer_handle(c->rq, c->ws, c->body, c->rs);
}

/* Answers rq into body and rs (server_app.handle), a SIGBUS from a file cut short answered
 * as the damage it is; logs the write or the failure. */
static void
handle(void *ctx, const struct api_request *rq, const char *db_param, struct printbuf *body,
    struct api_response *rs)
{
	struct reader_view v;
	struct writer_store ws = { .master = master_hash };
	struct call c = { rq, &ws, body, rs };

	(void)ctx;
	(void)db_param;		/* the store is the one it was started for */
	printbuf_reset(body);
	reader_begin(db, NULL, NULL, &v);
	ws.s = v.s;
	ws.open_rc = v.rc;
	ws.db_path = v.path;
	ws.damage = v.why;
	if (reader_guard(db, &v, call_writer, &c) != 0) {
		printbuf_reset(body);
		ws.s = NULL;
		ws.open_rc = v.rc;
		ws.damage = v.why;
		writer_handle(rq, &ws, body, rs);
	}
	/* A fault's store is closed here, its write aborted first, and logged. */
	reader_end(db, NULL);
	if (rs->log[0])
		logline("%s", rs->log);
	else if (rs->status == 200)
		logline("%s ?%s: %.*s", rq->method, rq->query_string ? rq->query_string : "",
		    body->bpos, body->buf);
}

static void
check_timer(void)
{
	reader_check(db);
}

static const struct server_app writer_app = {
	"lmtasks-writer", usage_text, NULL, NULL, handle, NULL, NULL, check_timer, NULL,
};

/* What the options leave to check: sockets options only with a socket, a master key. */
static int
check_options(const struct server_opts *o)
{
	if (o->sock_opts && o->listen && listen_unix_path(o->listen) == NULL) {
		fprintf(stderr, "lmtasks-writer: --socket-group and --socket-mode are for "
		    "--listen unix:PATH\n");
		return 2;
	}
	/* Writes are never open to all: without a master key there are no keys to check. */
	if (o->key_file == NULL) {
		logline("a master key is required: --master-key-file FILE or "
		    "LMTASKS_MASTER_KEY_FILE");
		return 2;
	}
	return server_master_key(writer_app.name, o->key_file, master_hash) ? 1 : -1;
}

int
main(int argc, char **argv)
{
	struct reader_config cfg = { writer_app.name, NULL, NULL, READER_OWNER,
	    store_write_fault };
	struct server_opts o;
	int fd, rc;

	if ((rc = server_options(&writer_app, NULL, 0, argc, argv, &o)) >= 0 ||
	    (rc = check_options(&o)) >= 0)
		return rc;
	cfg.path = o.db ? o.db : LMTASKS_DEFAULT_DB;
	if (reader_new(&cfg, &db) != 0)
		return 1;
	if ((rc = server_listen(writer_app.name, &o, &fd)) == SERVER_CGI) {
		rc = server_cgi(&writer_app);
	} else if (rc == 0) {
		reader_start(db);
		logline("serving %s", reader_path(db));
		/* SIGTERM: the request being served is finished, buffered answers flushed, then
		 * out. */
		rc = server_run(&writer_app, &o, fd, 1);
	}
	reader_free(db);
	return rc;
}
