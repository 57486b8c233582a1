/* lmtasks-fcgi: the tasks API over FastCGI (own socket or inherited) or CGI, read-only (SPEC §4).
 *
 * FastCGI: every worker thread waits on one epoll set holding the listening
 * socket and every idle connection.  A connection with a request waiting goes,
 * with its FCGX_Request, to exactly one worker (EPOLLONESHOT), which answers it
 * and re-arms the connection when the web server keeps it (fastcgi_keep_conn
 * on).  So no worker ever sits on an idle kept connection while requests wait
 * elsewhere, and no request passes through a dispatcher thread.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "lmtasks/api.h"
#include "lmtasks/auth.h"
#include "lmtasks/error.h"
#include "lmtasks/quote.h"
#include "lmtasks/route.h"
#include "lmtasks/store.h"
#include "lmtasks/timefmt.h"

#ifndef LMTASKS_DEFAULT_DB
#define LMTASKS_DEFAULT_DB "/var/lib/lmtasks"
#endif

#define RETRY_OPEN_US 200000	/* a missing store is looked for again after this */
#define EVENTS 16		/* ready connections one worker takes at once */

static const char usage_text[] =
"usage: lmtasks-fcgi [--db PATH] [--listen unix:PATH|HOST:PORT] [--threads N]\n"
"                    [--master-key-file FILE]\n"
"\n"
"Serves the Meilisearch tasks API (GET /tasks, /tasks/UID, /indexes/INDEX/tasks,\n"
"/indexes/INDEX/tasks/UID, /health) from an lmtasks store, read-only.\n"
"\n"
"  --db PATH        the store; else $LMTASKS_DB, else the LMTASKS_DB request\n"
"                   parameter, else " LMTASKS_DEFAULT_DB "\n"
"  --listen ADDR    open a FastCGI socket: unix:/run/lmtasks/fcgi.sock or 127.0.0.1:9000\n"
"  --threads N      requests served at once (default: the number of CPUs)\n"
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

/* The store, opened on first use and shared by every worker. Requests hold the lock
 * for reading; opening the store and adopting a grown map take it for writing. */
static struct {
	pthread_rwlock_t lock;
	store *s;
	char *path;		/* fixed by --db, LMTASKS_DB, or the first request */
	int from_request;	/* path came from a request parameter */
	int open_rc;
	int64_t next_try;
} db = { .lock = PTHREAD_RWLOCK_INITIALIZER };

/* The master key's hash, when a key file is configured. */
static unsigned char master_hash[AUTH_HASH_BYTES];
static const unsigned char *master;

/* One connection from the web server and the libfcgi request that reads it; the
 * registry lets shutdown close the idle ones. */
struct conn {
	FCGX_Request req;
	int fd;
	struct conn *prev, *next;
};

static struct {
	int epfd;
	int listen_fd;
	int stop[2];		/* a byte here wakes every worker to leave */
	pthread_mutex_t mu;	/* guards the registry */
	struct conn *all;
} srv = { -1, -1, { -1, -1 }, PTHREAD_MUTEX_INITIALIZER, NULL };

__attribute__((format(printf, 1, 2)))
static void
logline(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	/* One write per line, so threads' lines do not interleave. */
	if (write(STDERR_FILENO, "lmtasks-fcgi: ", 14) < 0 || write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

/* ---- the store ---- */

/* Opens the store if it is not open yet and its retry time has come; takes the write lock. */
static void
store_try_open(const char *param_path)
{
	pthread_rwlock_wrlock(&db.lock);
	if (db.path == NULL && param_path && *param_path) {
		db.path = strdup(param_path);
		db.from_request = 1;
	}
	if (db.path == NULL)
		db.path = strdup(LMTASKS_DEFAULT_DB);
	int64_t now = timefmt_now();
	if (db.s == NULL && db.path && now >= db.next_try) {
		int rc = store_open(db.path, STORE_RDONLY, 0, &db.s);
		if (rc != 0) {
			db.s = NULL;
			db.next_try = now + RETRY_OPEN_US;
		} else if (db.open_rc != 0) {
			logline("the store at %s can be read again", db.path);
		}
		db.open_rc = rc;
	}
	pthread_rwlock_unlock(&db.lock);
}

/* Per-thread reading state: a reset transaction, an iterator, a body buffer. */
struct reader {
	MDB_txn *txn;
	store_iter *it;
	struct printbuf *body;
	int live;
};

/* Takes the read lock and renews the thread's transaction; rd says what is there. */
static void
reader_begin(struct reader *w, const char *param_path, struct api_reader *rd)
{
	int rc;

	pthread_rwlock_rdlock(&db.lock);
	if (db.s == NULL) {
		pthread_rwlock_unlock(&db.lock);
		store_try_open(param_path);
		pthread_rwlock_rdlock(&db.lock);
	}
	rd->s = NULL;
	rd->txn = NULL;
	rd->it = NULL;
	rd->db_path = db.path;
	rd->open_rc = db.open_rc;
	if (db.s == NULL)
		return;
	if (db.from_request && param_path && strcmp(param_path, db.path) != 0) {
		rd->db_path = param_path;
		rd->open_rc = LMT_EINVAL;	/* one responder serves one store */
		return;
	}
	for (int attempt = 0;; attempt++) {
		rc = w->txn ? mdb_txn_renew(w->txn)
		    : mdb_txn_begin(store_env(db.s), NULL, MDB_RDONLY, &w->txn);
		if (rc != MDB_MAP_RESIZED || attempt > 0)
			break;
		/* A writer grew the map: adopt the size with no transaction live here. */
		pthread_rwlock_unlock(&db.lock);
		pthread_rwlock_wrlock(&db.lock);
		store_refresh_map(db.s);
		pthread_rwlock_unlock(&db.lock);
		pthread_rwlock_rdlock(&db.lock);
	}
	if (rc == 0 && w->it == NULL)
		rc = store_iter_open(db.s, w->txn, &w->it);
	else if (rc == 0)
		rc = store_iter_renew(w->it, w->txn);
	if (rc != 0) {
		rd->open_rc = rc;
		if (w->txn && rc != MDB_MAP_RESIZED)
			mdb_txn_reset(w->txn);
		return;
	}
	w->live = 1;
	rd->s = db.s;
	rd->txn = w->txn;
	rd->it = w->it;
}

/* Ends the snapshot: nothing is held between requests. */
static void
reader_end(struct reader *w)
{
	if (w->live)
		mdb_txn_reset(w->txn);
	w->live = 0;
	pthread_rwlock_unlock(&db.lock);
}

/* Answers one request: params from get(ctx, name); output through put(ctx, buf, len). */
static void
serve(struct reader *w, const char *(*get)(void *, const char *), void *gctx,
    int (*put)(void *, const char *, size_t), void *pctx)
{
	struct api_request rq = {
		get(gctx, "REQUEST_METHOD"), get(gctx, "REQUEST_URI"), get(gctx, "SCRIPT_NAME"),
		get(gctx, "PATH_INFO"), get(gctx, "QUERY_STRING"), get(gctx, "HTTP_AUTHORIZATION"),
		get(gctx, "HTTP_IF_NONE_MATCH"),
	};
	struct api_reader rd;
	struct api_response rs;
	char head[256];

	reader_begin(w, get(gctx, "LMTASKS_DB"), &rd);
	rd.master = master;
	api_handle(&rq, &rd, w->body, &rs);
	reader_end(w);
	size_t hl = api_headers(&rs, (size_t)w->body->bpos, head, sizeof(head));
	if (put(pctx, head, hl) == 0 && !rs.head)
		put(pctx, w->body->buf, (size_t)w->body->bpos);
	if (rs.log[0]) {
		char qm[32], qp[160];
		const char *m = rq.method ? rq.method : "";
		const char *p = rq.request_uri ? rq.request_uri : rq.path_info ? rq.path_info : "";
		logline("%s (%s %s)", rs.log, quote_text(m, strlen(m), qm, sizeof(qm)),
		    quote_text(p, strcspn(p, "?"), qp, sizeof(qp)));
	}
}

static int
reader_init(struct reader *w)
{
	memset(w, 0, sizeof(*w));
	return (w->body = printbuf_new()) ? 0 : ENOMEM;
}

static void
reader_free(struct reader *w)
{
	store_iter_close(w->it);
	if (w->txn)
		mdb_txn_abort(w->txn);
	printbuf_free(w->body);
}

/* ---- CGI ---- */

static const char *
env_get(void *ctx, const char *name)
{
	(void)ctx;
	return getenv(name);
}

static int
stdout_put(void *ctx, const char *buf, size_t len)
{
	(void)ctx;
	return fwrite(buf, 1, len, stdout) == len ? 0 : -1;
}

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

static int
serve_cgi(void)
{
	struct reader w;

	if (reader_init(&w) != 0)
		return 1;
	serve(&w, env_get, NULL, stdout_put, NULL);
	reader_free(&w);
	return fflush(stdout) == 0 ? 0 : 1;
}

/* ---- FastCGI ---- */

static const char *
fcgi_get(void *ctx, const char *name)
{
	return FCGX_GetParam(name, ((FCGX_Request *)ctx)->envp);
}

static int
fcgi_put(void *ctx, const char *buf, size_t len)
{
	return FCGX_PutStr(buf, (int)len, ((FCGX_Request *)ctx)->out) == (int)len ? 0 : -1;
}

static struct conn *
conn_new(int fd)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	/* No listening socket: a request that ends its connection makes FCGX_Accept_r fail
	 * fast instead of blocking in accept(). */
	FCGX_InitRequest(&c->req, -1, FCGI_FAIL_ACCEPT_ON_INTR);
	c->fd = fd;
	c->req.ipcFd = fd;
	pthread_mutex_lock(&srv.mu);
	c->next = srv.all;
	if (srv.all)
		srv.all->prev = c;
	srv.all = c;
	pthread_mutex_unlock(&srv.mu);
	return c;
}

static void
conn_close(struct conn *c)
{
	pthread_mutex_lock(&srv.mu);
	if (c->prev)
		c->prev->next = c->next;
	else
		srv.all = c->next;
	if (c->next)
		c->next->prev = c->prev;
	pthread_mutex_unlock(&srv.mu);
	FCGX_Free(&c->req, 0);
	/* libfcgi sets ipcFd to -1 once it has closed the connection itself. */
	if (c->req.ipcFd >= 0)
		close(c->req.ipcFd);
	free(c);
}

/* Watches fd for one readiness event; the worker that gets it owns the connection. */
static int
arm(struct conn *c, int op)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT, .data.ptr = c };

	return epoll_ctl(srv.epfd, op, c->fd, &ev);
}

static void
accept_all(void)
{
	int fd;

	while ((fd = accept4(srv.listen_fd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		struct conn *c = conn_new(fd);
		if (c == NULL) {
			close(fd);
			continue;
		}
		if (arm(c, EPOLL_CTL_ADD) != 0)
			conn_close(c);
	}
	if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED) {
		logline("accept: %s", strerror(errno));
		poll(NULL, 0, 100);	/* out of descriptors: back off instead of spinning */
	}
}

/* Answers every request of a ready connection's; gives it back to epoll when kept. */
static void
serve_conn(struct reader *w, struct conn *c)
{
	/* A kept connection: libfcgi reads the next request from it, not from a listener. */
	c->req.ipcFd = c->fd;
	c->req.keepConnection = 1;
	if (FCGX_Accept_r(&c->req) < 0) {
		conn_close(c);
		return;
	}
	serve(w, fcgi_get, &c->req, fcgi_put, &c->req);
	FCGX_Finish_r(&c->req);
	if (c->req.ipcFd < 0 || arm(c, EPOLL_CTL_MOD) != 0)
		conn_close(c);
}

/* Each worker waits on the shared epoll set: the listener, the stop pipe, every idle
 * connection.  EPOLLONESHOT hands a ready connection to exactly one worker. */
static void *
worker(void *arg)
{
	struct reader w;
	struct epoll_event ev[EVENTS];
	int stop = 0;

	(void)arg;
	if (reader_init(&w) != 0) {
		logline("out of memory starting a worker");
		return NULL;
	}
	while (!stop) {
		int n = epoll_wait(srv.epfd, ev, EVENTS, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			logline("epoll_wait: %s", strerror(errno));
			break;
		}
		/* Each connection here is this worker's until it re-arms it (EPOLLONESHOT). */
		for (int i = 0; i < n; i++) {
			if (ev[i].data.ptr == &srv.stop)
				stop = 1;
			else if (ev[i].data.ptr == &srv.listen_fd)
				accept_all();
			else
				serve_conn(&w, ev[i].data.ptr);
		}
	}
	reader_free(&w);
	return NULL;
}

static void
on_signal(int sig)
{
	int saved = errno;
	char b = 0;

	(void)sig;
	if (write(srv.stop[1], &b, 1) < 0) {
		/* The pipe is full: a stop is pending already. */
	}
	errno = saved;
}

static int
serve_fcgi(int listen_fd, int threads)
{
	struct epoll_event lev = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &srv.listen_fd };
	struct epoll_event sev = { .events = EPOLLIN, .data.ptr = &srv.stop };
	pthread_t *tids;
	int started = 0;

	srv.listen_fd = listen_fd;
	fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK);
	fcntl(listen_fd, F_SETFD, FD_CLOEXEC);
	if (FCGX_Init() != 0 || pipe2(srv.stop, O_CLOEXEC | O_NONBLOCK) != 0 ||
	    (srv.epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    epoll_ctl(srv.epfd, EPOLL_CTL_ADD, listen_fd, &lev) != 0 ||
	    epoll_ctl(srv.epfd, EPOLL_CTL_ADD, srv.stop[0], &sev) != 0) {
		logline("cannot start: %s", strerror(errno));
		return 1;
	}
	/* SIGTERM and SIGINT write to the stop pipe, so it exists before they are caught. */
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if ((tids = calloc((size_t)threads, sizeof(*tids))) == NULL)
		return 1;
	for (; started < threads; started++) {
		if (pthread_create(&tids[started], NULL, worker, NULL) != 0)
			break;
	}
	if (started == 0) {
		logline("cannot start a worker thread");
		free(tids);
		return 1;
	}
	/* SIGTERM: each worker finishes the request it is serving, sees the stop pipe, and
	 * leaves; then the idle connections are closed. */
	for (int i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	while (srv.all)
		conn_close(srv.all);
	close(srv.epfd);
	free(tids);
	return 0;
}

/* Opens --listen: unix:PATH (mode 0666: the web server's user connects) or HOST:PORT. */
static int
open_listener(const char *spec)
{
	int fd;

	if (strncmp(spec, "unix:", 5) == 0) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		struct stat st;
		const char *path = spec + 5;
		if (strlen(path) >= sizeof(sa.sun_path) || *path == '\0') {
			logline("--listen %s: the socket path is empty or too long", spec);
			return -1;
		}
		strcpy(sa.sun_path, path);
		/* A socket left by an earlier run is replaced; anything else is not touched. */
		if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
			unlink(path);
		if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
		    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || chmod(path, 0666) != 0 ||
		    listen(fd, 1024) != 0) {
			logline("--listen %s: %s", spec, strerror(errno));
			return -1;
		}
		return fd;
	}

	char host[256];
	const char *colon = strrchr(spec, ':');
	if (colon == NULL || colon == spec || (size_t)(colon - spec) >= sizeof(host) || !colon[1]) {
		logline("--listen %s: expected unix:PATH or HOST:PORT (like 127.0.0.1:9000)", spec);
		return -1;
	}
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = '\0';
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *ai;
	int gai = getaddrinfo(host, colon + 1, &hints, &ai);
	if (gai != 0) {
		logline("--listen %s: %s", spec, gai_strerror(gai));
		return -1;
	}
	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
		logline("--listen %s: %s", spec, strerror(errno));
		freeaddrinfo(ai);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	freeaddrinfo(ai);
	return fd;
}

/* The inherited listening socket: systemd's LISTEN_FDS (fd 3), else standard input. */
static int
inherited_listener(void)
{
	const char *fds = getenv("LISTEN_FDS"), *pid = getenv("LISTEN_PID");
	int fd = 0, acc = 0;
	socklen_t len = sizeof(acc);

	if (fds && pid && atoi(fds) >= 1 && (pid_t)atol(pid) == getpid())
		fd = 3;
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) == 0 && acc)
		return fd;
	return -1;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "db", required_argument, NULL, 'd' },
		{ "listen", required_argument, NULL, 'l' },
		{ "threads", required_argument, NULL, 't' },
		{ "master-key-file", required_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	const char *listen_spec = NULL, *path = NULL, *key_file = NULL;
	long threads = 0;	/* 0: the number of CPUs, looked up only for FastCGI */
	int c, fd;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			path = optarg;
			break;
		case 'l':
			listen_spec = optarg;
			break;
		case 'k':
			key_file = optarg;
			break;
		case 't': {
			char *end;
			threads = strtol(optarg, &end, 10);
			/* Each thread holds one of the store's 126 reader slots; the CLI needs some. */
			if (*optarg == '\0' || *end || threads < 1 || threads > 100) {
				fprintf(stderr, "lmtasks-fcgi: --threads wants a number from 1 to 100\n");
				return 2;
			}
			break;
		}
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		case 'V':
			printf("lmtasks-fcgi %s\n", PACKAGE_VERSION);
			return 0;
		default:
			fprintf(stderr, "lmtasks-fcgi: see `lmtasks-fcgi --help`\n");
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "lmtasks-fcgi: unexpected argument `%s`; see `lmtasks-fcgi --help`\n",
		    argv[optind]);
		return 2;
	}
	if (path == NULL || *path == '\0')
		path = getenv("LMTASKS_DB");
	if (path && *path && (db.path = strdup(path)) == NULL)
		return 1;

	if (key_file == NULL || *key_file == '\0')
		key_file = getenv("LMTASKS_MASTER_KEY_FILE");
	if (key_file && *key_file) {
		/* libsodium is started only with a key: a CGI request without one starts faster. */
		if (auth_init() != 0) {
			logline("cannot initialise libsodium");
			return 1;
		}
		/* A key that cannot be read never means an open API. */
		int rc = auth_master_load(key_file, master_hash);
		if (rc != 0) {
			logline("cannot use the master key file %s: %s", key_file, rc == LMT_EINVAL ?
			    "the key must be at least 16 bytes on its first line" : strerror(rc));
			if (inherited_listener() < 0 && listen_spec == NULL)
				return cgi_refuse();
			return 1;
		}
		master = master_hash;
	}

	signal(SIGPIPE, SIG_IGN);
	if (listen_spec) {
		if ((fd = open_listener(listen_spec)) < 0)
			return 1;
	} else if ((fd = inherited_listener()) < 0) {
		return serve_cgi();
	}
	if (threads == 0 && (threads = sysconf(_SC_NPROCESSORS_ONLN)) < 1)
		threads = 1;
	if (threads > 100)
		threads = 100;
	if (db.path) {
		store_try_open(NULL);
		if (db.s == NULL)
			logline("no readable store at %s yet (%s); answering 503 until there is",
			    db.path, lmt_strerror(db.open_rc));
	}
	logline("serving %s with %ld threads", db.path ? db.path : "the store named by the "
	    "first request's LMTASKS_DB, or " LMTASKS_DEFAULT_DB ",", threads);
	int rc = serve_fcgi(fd, (int)threads);
	if (listen_spec && strncmp(listen_spec, "unix:", 5) == 0)
		unlink(listen_spec + 5);
	store_close(db.s);
	free(db.path);
	return rc;
}
