/* lmtasks-writer: POST /tasks/cancel and DELETE /tasks over FastCGI (own socket or inherited)
 * or CGI, for keys that carry the action; runs as the store's owner, apart from the
 * read-only public responder.  FastCGI is framed by conn.c and served by loop.c, as the
 * responder's is, with one worker: LMDB serialises writers anyway, and no connection waits
 * on another's slow peer. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lmtasks/api.h"
#include "lmtasks/auth.h"
#include "lmtasks/clock.h"
#include "lmtasks/conn.h"
#include "lmtasks/error.h"
#include "lmtasks/listen.h"
#include "lmtasks/log.h"
#include "lmtasks/loop.h"
#include "lmtasks/store.h"
#include "lmtasks/timefmt.h"
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
"DELETE /tasks (Meilisearch's filters, at least one), for the master key or an API\n"
"key made with `lmtasks key create --actions tasks.cancel,tasks.delete`.  Run it\n"
"as the store's owner and mount it for those two method+path pairs only; the\n"
"public responder, lmtasks-fcgi, stays read-only.\n"
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
static struct writer_store ws;
static char damage[PATH_MAX + 160];	/* ws.damage: the last damage found */
static unsigned char master_hash[AUTH_HASH_BYTES];

#define logline(...) log_line("lmtasks-writer", __VA_ARGS__)

/* SIGBUS (a page past the end of a data.mdb cut short while mapped) fails the request or
 * the check that reads it, not the process, as in lmtasks-fcgi. */
static sigjmp_buf bus_jmp;
static volatile sig_atomic_t bus_armed;

static void
on_sigbus(int sig)
{
	if (bus_armed) {
		bus_armed = 0;
		siglongjmp(bus_jmp, 1);
	}
	/* Not in a guarded read: a real fault, fatal as it would be without us. */
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Opens the store when it is not open yet; a missing or damaged store is looked for again
 * at the next request (store_open() checks data.mdb's size first). */
static void
store_try_open(void)
{
	if (ws.s == NULL) {
		int rc = store_open(ws.db_path, 0, 0, &ws.s);
		if (rc != 0)
			ws.s = NULL;
		if (rc == LMT_EDAMAGED && ws.open_rc != LMT_EDAMAGED) {
			snprintf(damage, sizeof(damage), "%s", store_damage_text());
			logline("the store at %s is damaged: %s; answering 503", ws.db_path, damage);
		} else if (rc == 0 && ws.open_rc != 0) {
			logline("the store at %s can be written again", ws.db_path);
		}
		ws.open_rc = rc;
	}
}

/* The store found damaged (why): closed, its write (if one was running) aborted first so
 * that no other writer waits on its lock; reopened once whole (store_try_open()). */
static void
store_damaged(const char *why)
{
	snprintf(damage, sizeof(damage), "%s", why);
	logline("the store at %s is damaged: %s; answering 503", ws.db_path, damage);
	store_write_fault(ws.s);
	store_close(ws.s);
	ws.s = NULL;
	ws.open_rc = LMT_EDAMAGED;
}

/* The quick size check (store_check_size()), itself guarded; 0 or LMT_EDAMAGED with
 * *why set. */
static int
check_size(const char **why)
{
	int rc;

	if (sigsetjmp(bus_jmp, 1) != 0) {
		*why = "its data.mdb shrank while it was read (a page past its end)";
		return LMT_EDAMAGED;
	}
	bus_armed = 1;
	rc = store_check_size(ws.s);
	bus_armed = 0;
	*why = store_damage_text();
	return rc;
}

/* Once a second: a data.mdb cut short is found before a write meets it. */
static void
check_store(void)
{
	const char *why;

	if (ws.s && check_size(&why) == LMT_EDAMAGED)
		store_damaged(why);
}

/* Answers rq into body and the CGI header block head (*head_len bytes), logging the write
 * or the failure. */
static void
answer(const struct api_request *rq, struct printbuf *body, char *head, size_t head_cap,
    size_t *head_len)
{
	struct api_response rs;
	const char *why;

	store_try_open();
	/* Checked again before each write: the timer's check may be up to a second old. */
	if (ws.s && check_size(&why) == LMT_EDAMAGED)
		store_damaged(why);
	/* The signal mask is saved: the jump may leave the handler before it returns. */
	if (sigsetjmp(bus_jmp, 1) == 0) {
		bus_armed = 1;
		writer_handle(rq, &ws, body, &rs);
		bus_armed = 0;
	} else {
		store_damaged("its data.mdb shrank while it was written (a page past its end)");
		printbuf_reset(body);
		writer_handle(rq, &ws, body, &rs);
	}
	if (rs.log[0])
		logline("%s", rs.log);
	else if (rs.status == 200)
		logline("%s ?%s: %.*s", rq->method, rq->query_string ? rq->query_string : "",
		    body->bpos, body->buf);
	*head_len = api_headers(&rs, (size_t)body->bpos, head, head_cap);
}

/* The one CGI request of this process; 0, or 1 when the answer could not be written. */
static int
serve_cgi(void)
{
	struct api_request rq = {
		getenv("REQUEST_METHOD"), getenv("REQUEST_URI"), getenv("SCRIPT_NAME"),
		getenv("PATH_INFO"), getenv("QUERY_STRING"), getenv("HTTP_AUTHORIZATION"),
	};
	struct printbuf *body = printbuf_new();
	char head[256];
	size_t hl;
	int ok;

	if (body == NULL)
		return 1;
	answer(&rq, body, head, sizeof(head), &hl);
	ok = fwrite(head, 1, hl, stdout) == hl &&
	    fwrite(body->buf, 1, (size_t)body->bpos, stdout) == (size_t)body->bpos;
	ok = fflush(stdout) == 0 && ok;
	printbuf_free(body);
	return ok ? 0 : 1;
}

/* The worker's answer buffer. */
static int
worker_init(void **ctx)
{
	return (*ctx = printbuf_new()) ? 0 : ENOMEM;
}

static void
worker_free(void *ctx)
{
	printbuf_free(ctx);
}

/* A whole FastCGI request from the loop: answered, the answer on its way. */
static enum conn_state
on_request(void *ctx, loop_client *cl, int *taken)
{
	conn *c = loop_conn(cl);
	struct api_request rq = {
		conn_param(c, CONN_METHOD), conn_param(c, CONN_REQUEST_URI),
		conn_param(c, CONN_SCRIPT_NAME), conn_param(c, CONN_PATH_INFO),
		conn_param(c, CONN_QUERY_STRING), conn_param(c, CONN_AUTHORIZATION),
	};
	struct printbuf *body = ctx;
	char head[256];
	size_t hl;

	(void)taken;
	printbuf_reset(body);
	answer(&rq, body, head, sizeof(head), &hl);
	return conn_answer(c, head, hl, body->buf, (size_t)body->bpos, clock_mono());
}

static const struct loop_ops writer_ops = {
	"lmtasks-writer", worker_init, worker_free, on_request, check_store, NULL,
};

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "db", required_argument, NULL, 'd' },
		{ "listen", required_argument, NULL, 'l' },
		{ "master-key-file", required_argument, NULL, 'k' },
		{ "socket-group", required_argument, NULL, 'g' },
		{ "socket-mode", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	const char *listen_spec = NULL, *key_file = NULL;
	unsigned sock_mode = LISTEN_MODE_DEFAULT;
	gid_t sock_gid = getegid();
	int c, fd, rc, sock_opts = 0;
	char why[PATH_MAX + 160];

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			ws.db_path = optarg;
			break;
		case 'l':
			listen_spec = optarg;
			break;
		case 'k':
			key_file = optarg;
			break;
		case 'g':
			if (listen_group(optarg, &sock_gid) != 0) {
				fprintf(stderr, "lmtasks-writer: --socket-group: no group `%s`\n", optarg);
				return 2;
			}
			sock_opts = 1;
			break;
		case 'm':
			if (listen_mode(optarg, &sock_mode) != 0) {
				fprintf(stderr, "lmtasks-writer: --socket-mode wants an octal mode like "
				    "0660\n");
				return 2;
			}
			sock_opts = 1;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		case 'V':
			printf("lmtasks-writer %s\n", PACKAGE_VERSION);
			return 0;
		default:
			fprintf(stderr, "lmtasks-writer: see `lmtasks-writer --help`\n");
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "lmtasks-writer: unexpected argument `%s`; see `lmtasks-writer "
		    "--help`\n", argv[optind]);
		return 2;
	}
	if (sock_opts && listen_spec && listen_unix_path(listen_spec) == NULL) {
		fprintf(stderr, "lmtasks-writer: --socket-group and --socket-mode are for "
		    "--listen unix:PATH\n");
		return 2;
	}
	if (ws.db_path == NULL || *ws.db_path == '\0')
		ws.db_path = getenv("LMTASKS_DB");
	if (ws.db_path == NULL || *ws.db_path == '\0')
		ws.db_path = LMTASKS_DEFAULT_DB;
	if (key_file == NULL || *key_file == '\0')
		key_file = getenv("LMTASKS_MASTER_KEY_FILE");
	/* Writes are never open to all: without a master key there are no keys to check. */
	if (key_file == NULL || *key_file == '\0') {
		logline("a master key is required: --master-key-file FILE or "
		    "LMTASKS_MASTER_KEY_FILE");
		return 2;
	}
	if (auth_init() != 0) {
		logline("cannot initialise libsodium");
		return 1;
	}
	if ((rc = auth_master_load(key_file, master_hash)) != 0) {
		logline("cannot use the master key file %s: %s", key_file, rc == LMT_EINVAL ?
		    "the key must be at least 16 bytes on its first line" : strerror(rc));
		return 1;
	}
	ws.master = master_hash;
	ws.damage = damage;
	signal(SIGPIPE, SIG_IGN);
	struct sigaction bus = { .sa_handler = on_sigbus, .sa_flags = SA_NODEFER };
	sigemptyset(&bus.sa_mask);
	sigaction(SIGBUS, &bus, NULL);
	if (listen_spec) {
		if (listen_open(listen_spec, sock_mode, sock_gid, &fd, why, sizeof(why)) != 0) {
			logline("%s", why);
			return 1;
		}
	} else if (listen_inherited(&fd) != 0) {
		return serve_cgi();
	}
	store_try_open();
	if (ws.s == NULL)
		logline("no writable store at %s yet (%s); answering 503 until there is",
		    ws.db_path, lmt_strerror(ws.open_rc));
	logline("serving %s", ws.db_path);
	/* SIGTERM: the request being served is finished, buffered answers flushed, then out. */
	rc = loop_run(fd, 1, &writer_ops);
	if (listen_spec && listen_unix_path(listen_spec))
		unlink(listen_unix_path(listen_spec));
	store_close(ws.s);
	return rc;
}
