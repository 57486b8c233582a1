/* lmtasks-writer: POST /tasks/cancel and DELETE /tasks over FastCGI (own socket or inherited)
 * or CGI, for keys that carry the action; runs as the store's owner, apart from the
 * read-only public responder.  One request at a time: LMDB serialises writers anyway. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "lmtasks/api.h"
#include "lmtasks/auth.h"
#include "lmtasks/error.h"
#include "lmtasks/store.h"
#include "lmtasks/timefmt.h"
#include "lmtasks/writer.h"

#ifndef LMTASKS_DEFAULT_DB
#define LMTASKS_DEFAULT_DB "/var/lib/lmtasks"
#endif

static const char usage_text[] =
"usage: lmtasks-writer --master-key-file FILE [--db PATH]\n"
"                      [--listen unix:PATH|HOST:PORT] [--socket-group GROUP]\n"
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
"  --listen ADDR    open a FastCGI socket: unix:/run/lmtasks/writer.sock (mode 0660)\n"
"                   or 127.0.0.1:9001\n"
"  --socket-group GROUP\n"
"                   the group of the unix socket (the web server's)\n"
"  --help, --version\n"
"\n"
"Without --listen it serves FastCGI on the socket it inherits as standard input\n"
"(spawn-fcgi, systemd socket activation, mod_fcgid), or, when standard input is\n"
"not a socket, answers one CGI request from its environment and exits.\n";

static struct writer_store ws;
static unsigned char master_hash[AUTH_HASH_BYTES];

__attribute__((format(printf, 1, 2)))
static void
logline(const char *fmt, ...)
{
	va_list ap;

	fputs("lmtasks-writer: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
}

/* Opens the store when it is not open yet; a missing store is looked for again later. */
static void
store_try_open(void)
{
	if (ws.s == NULL) {
		int rc = store_open(ws.db_path, 0, 0, &ws.s);
		if (rc != 0)
			ws.s = NULL;
		else if (ws.open_rc != 0)
			logline("the store at %s can be written again", ws.db_path);
		ws.open_rc = rc;
	}
}

/* Answers one request whose parameters come from get(ctx, name); 0, or -1 when the
 * answer could not be written. */
static int
serve(const char *(*get)(void *ctx, const char *name), void *gctx, FCGX_Stream *out)
{
	struct api_request rq = {
		get(gctx, "REQUEST_METHOD"), get(gctx, "REQUEST_URI"), get(gctx, "SCRIPT_NAME"),
		get(gctx, "PATH_INFO"), get(gctx, "QUERY_STRING"), get(gctx, "HTTP_AUTHORIZATION"),
	};
	struct printbuf *body = printbuf_new();
	struct api_response rs;
	char head[256];
	size_t hl;
	int rc = 0;

	if (body == NULL)
		return -1;
	store_try_open();
	writer_handle(&rq, &ws, body, &rs);
	if (rs.log[0])
		logline("%s", rs.log);
	else if (rs.status == 200)
		logline("%s ?%s: %.*s", rq.method, rq.query_string ? rq.query_string : "",
		    body->bpos, body->buf);
	hl = api_headers(&rs, (size_t)body->bpos, head, sizeof(head));
	if (out) {
		if (FCGX_PutStr(head, (int)hl, out) != (int)hl ||
		    FCGX_PutStr(body->buf, body->bpos, out) != body->bpos)
			rc = -1;
	} else if (fwrite(head, 1, hl, stdout) != hl ||
	    fwrite(body->buf, 1, (size_t)body->bpos, stdout) != (size_t)body->bpos ||
	    fflush(stdout) != 0) {
		rc = -1;
	}
	printbuf_free(body);
	return rc;
}

static const char *
env_get(void *ctx, const char *name)
{
	(void)ctx;
	return getenv(name);
}

static const char *
fcgi_get(void *ctx, const char *name)
{
	return FCGX_GetParam(name, ((FCGX_Request *)ctx)->envp);
}

static void
on_signal(int sig)
{
	(void)sig;
	/* accept() returns EINTR (no SA_RESTART) and libfcgi stops waiting. */
	FCGX_ShutdownPending();
}

/* Opens --listen: unix:PATH (mode 0660, group GROUP when given) or HOST:PORT. */
static int
open_listener(const char *spec, const char *group)
{
	if (strncmp(spec, "unix:", 5) == 0) {
		const char *path = spec + 5;
		struct stat st;
		if (*path == '\0' || strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
			logline("--listen %s: the socket path is empty or too long", spec);
			return -1;
		}
		/* A socket left by an earlier run is replaced; anything else is not touched. */
		if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
			unlink(path);
		mode_t old = umask(0177);
		int fd = FCGX_OpenSocket(path, 128);
		umask(old);
		if (fd < 0 || chmod(path, 0660) != 0) {
			logline("--listen %s: %s", spec, strerror(errno));
			return -1;
		}
		if (group) {
			struct group *g = getgrnam(group);
			if (g == NULL || chown(path, (uid_t)-1, g->gr_gid) != 0) {
				logline("--socket-group %s: %s", group, g ? strerror(errno) :
				    "no such group");
				return -1;
			}
		}
		return fd;
	}
	if (group) {
		logline("--socket-group is for a unix: socket");
		return -1;
	}
	int fd = FCGX_OpenSocket(spec, 128);
	if (fd < 0)
		logline("--listen %s: cannot listen there (expected unix:PATH or HOST:PORT)", spec);
	return fd;
}

/* The inherited listening socket (standard input), or -1 when there is none. */
static int
inherited_listener(void)
{
	int acc = 0;
	socklen_t len = sizeof(acc);

	return getsockopt(0, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) == 0 && acc ? 0 : -1;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "db", required_argument, NULL, 'd' },
		{ "listen", required_argument, NULL, 'l' },
		{ "master-key-file", required_argument, NULL, 'k' },
		{ "socket-group", required_argument, NULL, 'g' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	const char *listen_spec = NULL, *key_file = NULL, *group = NULL;
	FCGX_Request req;
	int c, fd, rc;

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
			group = optarg;
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
	signal(SIGPIPE, SIG_IGN);
	if (FCGX_Init() != 0) {
		logline("cannot initialise libfcgi");
		return 1;
	}
	if (listen_spec) {
		if ((fd = open_listener(listen_spec, group)) < 0)
			return 1;
	} else if ((fd = inherited_listener()) < 0) {
		return serve(env_get, NULL, NULL) == 0 ? 0 : 1;
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	store_try_open();
	if (ws.s == NULL)
		logline("no writable store at %s yet (%s); answering 503 until there is",
		    ws.db_path, lmt_strerror(ws.open_rc));
	logline("serving %s", ws.db_path);
	if (FCGX_InitRequest(&req, fd, FCGI_FAIL_ACCEPT_ON_INTR) != 0)
		return 1;
	/* SIGTERM: the request being served is finished, then the loop ends. */
	while (FCGX_Accept_r(&req) >= 0) {
		if (serve(fcgi_get, &req, req.out) != 0)
			logline("the answer could not be written: the web server closed the connection");
		FCGX_Finish_r(&req);
	}
	if (listen_spec && strncmp(listen_spec, "unix:", 5) == 0)
		unlink(listen_spec + 5);
	store_close(ws.s);
	return 0;
}
