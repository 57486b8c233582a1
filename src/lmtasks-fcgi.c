/* lmtasks-fcgi: the tasks API over FastCGI (own socket or inherited) or CGI, read-only (SPEC §4).
 *
 * FastCGI: every worker thread waits on one epoll set holding the listening socket, a
 * timer, and every connection.  Sockets are non-blocking and each readiness event goes to
 * exactly one worker (EPOLLONESHOT), one event per epoll_wait: the worker reads what the
 * connection has (conn.c frames it), answers a request only once it is whole, writes the
 * answer without blocking, and re-arms the connection for reading, or for writing while
 * output is left.  So a slow or stalled peer costs no worker any waiting, a whole request
 * never queues behind another connection, and an idle kept connection (fastcgi_keep_conn)
 * holds no thread.  The timer closes connections past their deadline (a request not whole
 * in time, output not taken) and checks the store's size.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <setjmp.h>
#include <stdatomic.h>
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
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "lmtasks/api.h"
#include "lmtasks/auth.h"
#include "lmtasks/conn.h"
#include "lmtasks/error.h"
#include "lmtasks/feed.h"
#include "lmtasks/quote.h"
#include "lmtasks/route.h"
#include "lmtasks/store.h"
#include "lmtasks/stream.h"
#include "lmtasks/timefmt.h"
#include "stream_io.h"

#ifndef LMTASKS_DEFAULT_DB
#define LMTASKS_DEFAULT_DB "/var/lib/lmtasks"
#endif

#define RETRY_OPEN_US 200000	/* a missing store is looked for again after this */
#define SWEEP_NS 250000000	/* how often deadlines are looked at */

static const char usage_text[] =
"usage: lmtasks-fcgi [--db PATH] [--listen unix:PATH|HOST:PORT] [--threads N]\n"
"                    [--socket-group GROUP] [--socket-mode MODE] [--master-key-file FILE]\n"
"\n"
"Serves the Meilisearch tasks API (GET /tasks, /tasks/UID, /indexes/INDEX/tasks,\n"
"/indexes/INDEX/tasks/UID, /health, and /tasks/stream as server-sent events) from an\n"
"lmtasks store, read-only.  As CGI a stream lasts LMTASKS_STREAM_MAX_SECONDS (300) at most.\n"
"A store at `lmtasks config compat v1` answers as Meilisearch v1 (batchUid, canceledBy\n"
"and error on every task, GET /batches and /batches/UID, ?batchUids=); read per request.\n"
"\n"
"  --db PATH        the store; else $LMTASKS_DB, else the LMTASKS_DB request\n"
"                   parameter, else " LMTASKS_DEFAULT_DB "\n"
"  --listen ADDR    open a FastCGI socket: unix:/run/lmtasks/fcgi.sock or 127.0.0.1:9000\n"
"  --socket-group GROUP\n"
"                   the group (from /etc/group, or a number) of the unix: socket\n"
"                   (default: the process's group);\n"
"                   put the web server's user in it (nginx, Apache: www-data)\n"
"  --socket-mode MODE\n"
"                   the unix: socket's mode (default 0660: its owner and group connect)\n"
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
	int damaged;		/* the open store failed its size check since */
	char damage[PATH_MAX + 160];	/* what store_damage_text() said */
	atomic_int faulted;	/* a request met SIGBUS: damaged until the next check */
} db = { .lock = PTHREAD_RWLOCK_INITIALIZER };

/* SIGBUS (a page past the end of a data.mdb shrunk while mapped) fails the request that
 * reads it, not the process: the reading thread arms its jump buffer around the work. */
static __thread sigjmp_buf bus_jmp;
static __thread volatile sig_atomic_t bus_armed;

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

/* The master key's hash, when a key file is configured. */
static unsigned char master_hash[AUTH_HASH_BYTES];
static const unsigned char *master;

/* A connection in the registry, which lets the timer find overdue ones and shutdown
 * close the rest.  swept: the timer has shut it down already. */
struct client {
	conn *c;
	int swept;
	struct client *prev, *next;
};

static struct {
	int epfd;
	int listen_fd;
	int timer_fd;
	int stop[2];		/* a byte here wakes every worker to leave */
	pthread_mutex_t mu;	/* guards the registry */
	struct client *all;
} srv = { -1, -1, -1, { -1, -1 }, PTHREAD_MUTEX_INITIALIZER, NULL };

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
		if (rc == LMT_EDAMAGED)
			snprintf(db.damage, sizeof(db.damage), "%s", store_damage_text());
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
	rd->damage = db.damage;
	if (db.s == NULL)
		return;
	if (db.damaged || atomic_load_explicit(&db.faulted, memory_order_relaxed)) {
		rd->open_rc = LMT_EDAMAGED;
		return;
	}
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

/* Answers one request into head (the CGI header block, *head_len bytes) and w->body;
 * returns how many body bytes to send (none for HEAD) and logs a failure.  An event
 * stream that opened (GET /tasks/stream) is left in *stream for the caller to hold. */
static size_t
serve(struct reader *w, const struct api_request *rq, const char *db_param, char *head,
    size_t head_cap, size_t *head_len, stream_sub **stream)
{
	struct api_reader rd;
	struct api_response rs;

	reader_begin(w, db_param, &rd);
	rd.master = master;
	/* sigsetjmp without the signal mask (no system call per request): the handler runs
	 * with SA_NODEFER, so SIGBUS is not left blocked after the jump.  A jump leaves the
	 * read transaction to be reset, the body to be rewritten, and at worst the few
	 * allocations of the request's render lost; no lock is held by the reading code. */
	if (sigsetjmp(bus_jmp, 0) == 0) {
		bus_armed = 1;
		api_handle(rq, &rd, w->body, &rs);
		bus_armed = 0;
	} else {
		atomic_store(&db.faulted, 1);
		printbuf_reset(w->body);
		rd.s = NULL;
		rd.open_rc = LMT_EDAMAGED;
		rd.damage = "its data.mdb shrank while it was read (a page past its end)";
		api_handle(rq, &rd, w->body, &rs);
	}
	reader_end(w);
	*stream = rs.stream;
	*head_len = api_headers(&rs, (size_t)w->body->bpos, head, head_cap);
	if (rs.log[0]) {
		char qm[32], qp[160];
		const char *m = rq->method ? rq->method : "";
		const char *p = rq->request_uri ? rq->request_uri : rq->path_info ? rq->path_info : "";
		logline("%s (%s %s)", rs.log, quote_text(m, strlen(m), qm, sizeof(qm)),
		    quote_text(p, strcspn(p, "?"), qp, sizeof(qp)));
	}
	return rs.head ? 0 : (size_t)w->body->bpos;
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

	struct api_request rq = {
		getenv("REQUEST_METHOD"), getenv("REQUEST_URI"), getenv("SCRIPT_NAME"),
		getenv("PATH_INFO"), getenv("QUERY_STRING"), getenv("HTTP_AUTHORIZATION"),
		getenv("HTTP_IF_NONE_MATCH"), getenv("HTTP_LAST_EVENT_ID"),
	};
	stream_sub *stream = NULL;
	char head[256];
	size_t hl, bl;
	int ok;

	if (reader_init(&w) != 0)
		return 1;
	bl = serve(&w, &rq, getenv("LMTASKS_DB"), head, sizeof(head), &hl, &stream);
	ok = fwrite(head, 1, hl, stdout) == hl && fwrite(w.body->buf, 1, bl, stdout) == bl;
	reader_free(&w);
	ok = fflush(stdout) == 0 && ok;
	/* GET /tasks/stream: this process holds it, for a while at most. */
	if (stream && ok)
		return stream_io_cgi(stream, db.s, db.path, stream_io_cgi_max());
	stream_sub_free(stream);
	return ok ? 0 : 1;
}

/* ---- FastCGI ---- */

/* Deadlines run on the monotonic clock: a clock step must not close every connection. */
static int64_t
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static struct client *
client_new(int fd)
{
	struct client *cl = calloc(1, sizeof(*cl));

	if (cl == NULL || conn_new(fd, mono_us(), &cl->c) != 0) {
		free(cl);
		return NULL;
	}
	pthread_mutex_lock(&srv.mu);
	cl->next = srv.all;
	if (srv.all)
		srv.all->prev = cl;
	srv.all = cl;
	pthread_mutex_unlock(&srv.mu);
	return cl;
}

/* Leaves the registry first, so the timer never touches a closed descriptor. */
static void
client_close(struct client *cl)
{
	const char *why = conn_why(cl->c);

	pthread_mutex_lock(&srv.mu);
	if (cl->prev)
		cl->prev->next = cl->next;
	else
		srv.all = cl->next;
	if (cl->next)
		cl->next->prev = cl->prev;
	pthread_mutex_unlock(&srv.mu);
	if (*why)
		logline("closed a FastCGI connection: %s", why);
	conn_free(cl->c);
	free(cl);
}

/* Watches the connection for one event (reading, or writing while output is left); the
 * worker that gets it owns the connection until it arms it again. */
static int
arm(struct client *cl, int op, enum conn_state st)
{
	struct epoll_event ev = { .events = (st == CONN_FLUSH ? EPOLLOUT : EPOLLIN) | EPOLLRDHUP |
	    EPOLLONESHOT, .data.ptr = cl };

	return epoll_ctl(srv.epfd, op, conn_fd(cl->c), &ev);
}

static void
accept_all(void)
{
	int fd;

	while ((fd = accept4(srv.listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
		struct client *cl = client_new(fd);
		if (cl == NULL) {
			close(fd);
			continue;
		}
		if (arm(cl, EPOLL_CTL_ADD, CONN_MORE) != 0)
			client_close(cl);
	}
	if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED) {
		logline("accept: %s", strerror(errno));
		poll(NULL, 0, 100);	/* out of descriptors: back off instead of spinning */
	}
}

/* Answers the whole request conn c holds; returns the connection's next state.  A stream
 * that goes on is left in *stream, its first bytes on their way. */
static enum conn_state
answer(struct reader *w, conn *c, stream_sub **stream)
{
	struct api_request rq = {
		conn_param(c, CONN_METHOD), conn_param(c, CONN_REQUEST_URI),
		conn_param(c, CONN_SCRIPT_NAME), conn_param(c, CONN_PATH_INFO),
		conn_param(c, CONN_QUERY_STRING), conn_param(c, CONN_AUTHORIZATION),
		conn_param(c, CONN_IF_NONE_MATCH), conn_param(c, CONN_LAST_EVENT_ID),
	};
	enum conn_state st;
	char head[256];
	size_t hl, bl;

	bl = serve(w, &rq, conn_param(c, CONN_LMTASKS_DB), head, sizeof(head), &hl, stream);
	if (*stream == NULL)
		return conn_answer(c, head, hl, w->body->buf, bl, mono_us());
	st = conn_stream_begin(c, head, hl, w->body->buf, bl, mono_us());
	/* A uids= stream whose tasks have all finished ends after its current state. */
	if (st == CONN_CLOSE || stream_sub_done(*stream)) {
		stream_sub_free(*stream);
		*stream = NULL;
		if (st != CONN_CLOSE)
			st = conn_stream_end(c, mono_us());
	}
	return st;
}

/* ---- the stream thread's view of the responder ---- */

static conn *
host_conn(void *client)
{
	return ((struct client *)client)->c;
}

static void
host_close(void *client)
{
	client_close(client);
}

static void
host_give_back(void *client, enum conn_state st)
{
	if (arm(client, EPOLL_CTL_ADD, st) != 0)
		client_close(client);
}

/* The stream thread reads as a worker does: under the read lock, a grown map adopted,
 * SIGBUS from a damaged file caught. */
static int
host_read(void (*fn)(store *s, MDB_txn *txn, void *arg), void *arg)
{
	MDB_txn *txn = NULL;
	int rc;

	pthread_rwlock_rdlock(&db.lock);
	if (db.s == NULL || db.damaged || atomic_load(&db.faulted)) {
		pthread_rwlock_unlock(&db.lock);
		return LMT_EDAMAGED;
	}
	if ((rc = feed_refresh(db.s)) == 0)
		rc = mdb_txn_begin(store_env(db.s), NULL, MDB_RDONLY, &txn);
	if (rc == MDB_MAP_RESIZED) {
		pthread_rwlock_unlock(&db.lock);
		pthread_rwlock_wrlock(&db.lock);
		store_refresh_map(db.s);
		pthread_rwlock_unlock(&db.lock);
		pthread_rwlock_rdlock(&db.lock);
		rc = mdb_txn_begin(store_env(db.s), NULL, MDB_RDONLY, &txn);
	}
	if (rc == 0) {
		if (sigsetjmp(bus_jmp, 0) == 0) {
			bus_armed = 1;
			fn(db.s, txn, arg);
			bus_armed = 0;
		} else {
			atomic_store(&db.faulted, 1);
			rc = LMT_EDAMAGED;
		}
		mdb_txn_abort(txn);
	}
	pthread_rwlock_unlock(&db.lock);
	return rc;
}

static const struct stream_io_host stream_host = {
	host_conn, host_close, host_give_back, host_read,
};

/* One readiness event of a connection: read (or write), answer what is whole, re-arm. */
static void
serve_conn(struct reader *w, struct client *cl, uint32_t events)
{
	enum conn_state st = events & EPOLLOUT ? conn_flush(cl->c, mono_us()) :
	    conn_read(cl->c, mono_us());

	while (st == CONN_REQUEST) {
		stream_sub *stream = NULL;
		st = answer(w, cl->c, &stream);
		if (stream) {
			/* The stream thread holds it from now on: out of the workers' set. */
			if (st == CONN_CLOSE ||
			    epoll_ctl(srv.epfd, EPOLL_CTL_DEL, conn_fd(cl->c), NULL) != 0 ||
			    stream_io_adopt(&stream_host, db.path, cl, stream) != 0) {
				stream_sub_free(stream);
				client_close(cl);
			}
			return;
		}
		if (st == CONN_MORE)	/* a request sent early, already read */
			st = conn_feed(cl->c, NULL, 0, mono_us());
	}
	if (st == CONN_CLOSE || arm(cl, EPOLL_CTL_MOD, st) != 0)
		client_close(cl);
}

/* The store's quick check, once a second from the timer: a data.mdb shrunk while open is
 * answered 503 at once, and served again once it is whole (restored in place). */
static void
check_store(void)
{
	const char *volatile why = NULL;
	int rc = 0;

	pthread_rwlock_rdlock(&db.lock);
	if (db.s == NULL) {
		pthread_rwlock_unlock(&db.lock);
		return;
	}
	if (sigsetjmp(bus_jmp, 0) == 0) {
		bus_armed = 1;
		rc = store_check_size(db.s);
		bus_armed = 0;
		why = store_damage_text();
	} else {
		rc = LMT_EDAMAGED;
		why = "its data.mdb shrank while it was read";
	}
	int bad = rc == LMT_EDAMAGED;
	int change = bad != db.damaged || atomic_load(&db.faulted);
	pthread_rwlock_unlock(&db.lock);
	if (!change)
		return;
	pthread_rwlock_wrlock(&db.lock);
	if (bad && !db.damaged) {
		snprintf(db.damage, sizeof(db.damage), "%s", why);
		logline("the store at %s is damaged: %s; answering 503", db.path, db.damage);
	} else if (!bad && (db.damaged || atomic_load(&db.faulted))) {
		logline("the store at %s can be read again", db.path);
	}
	db.damaged = bad;
	atomic_store(&db.faulted, 0);
	pthread_rwlock_unlock(&db.lock);
}

/* Shuts down the connections past their deadline: the worker that gets the event that
 * follows closes them, so the timer never frees what a worker holds. */
static void
sweep(void)
{
	static atomic_uint tick;
	int64_t now = mono_us();
	uint64_t ticks;

	if (atomic_fetch_add(&tick, 1) % 4 == 0)
		check_store();

	if (read(srv.timer_fd, &ticks, sizeof(ticks)) < 0) {
		/* Another worker took the tick: nothing to do twice. */
	}
	pthread_mutex_lock(&srv.mu);
	for (struct client *cl = srv.all; cl; cl = cl->next) {
		int64_t d = conn_deadline(cl->c);
		if (d == 0 || d > now || cl->swept)
			continue;
		cl->swept = 1;
		shutdown(conn_fd(cl->c), SHUT_RDWR);
		logline("closed a FastCGI connection: its request was not whole within %d s, or "
		    "its answer not taken", CONN_DEADLINE_US / 1000000);
	}
	pthread_mutex_unlock(&srv.mu);
}

/* Each worker waits on the shared epoll set: the listener, the stop pipe, the timer, every
 * connection.  One event at a time, so no ready connection waits behind another. */
static void *
worker(void *arg)
{
	struct reader w;
	struct epoll_event ev;
	int stop = 0;

	(void)arg;
	if (reader_init(&w) != 0) {
		logline("out of memory starting a worker");
		return NULL;
	}
	while (!stop) {
		int n = epoll_wait(srv.epfd, &ev, 1, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			logline("epoll_wait: %s", strerror(errno));
			break;
		}
		if (n == 0)
			continue;
		if (ev.data.ptr == &srv.stop) {
			stop = 1;
		} else if (ev.data.ptr == &srv.listen_fd) {
			accept_all();
		} else if (ev.data.ptr == &srv.timer_fd) {
			struct epoll_event tev = { .events = EPOLLIN | EPOLLONESHOT,
			    .data.ptr = &srv.timer_fd };
			sweep();
			epoll_ctl(srv.epfd, EPOLL_CTL_MOD, srv.timer_fd, &tev);
		} else {
			serve_conn(&w, ev.data.ptr, ev.events);
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
	struct epoll_event tev = { .events = EPOLLIN | EPOLLONESHOT, .data.ptr = &srv.timer_fd };
	struct itimerspec its = { { 0, SWEEP_NS }, { 0, SWEEP_NS } };

	if (pipe2(srv.stop, O_CLOEXEC | O_NONBLOCK) != 0 ||
	    (srv.epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    (srv.timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK)) < 0 ||
	    timerfd_settime(srv.timer_fd, 0, &its, NULL) != 0 ||
	    epoll_ctl(srv.epfd, EPOLL_CTL_ADD, listen_fd, &lev) != 0 ||
	    epoll_ctl(srv.epfd, EPOLL_CTL_ADD, srv.timer_fd, &tev) != 0 ||
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
	/* The streams end (their end records queued) and are flushed with the rest. */
	stream_io_stop();
	/* Answers still buffered get one more second, all together, to be taken. */
	int64_t until = mono_us() + 1000000;
	while (srv.all) {
		struct client *cl = srv.all;
		struct pollfd pfd = { conn_fd(cl->c), POLLOUT, 0 };
		while (!cl->swept && conn_pending(cl->c) > 0 && mono_us() < until &&
		    poll(&pfd, 1, (int)((until - mono_us()) / 1000) + 1) > 0 &&
		    conn_flush(cl->c, mono_us()) == CONN_FLUSH)
			;
		client_close(cl);
	}
	close(srv.timer_fd);
	close(srv.epfd);
	free(tids);
	return 0;
}

/* Opens --listen: unix:PATH (mode sock_mode, group sock_gid: the web server's user must be
 * in that group) or HOST:PORT. */
static int
open_listener(const char *spec, unsigned sock_mode, gid_t sock_gid)
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
		/* Made 0600, so nobody else can connect before its group and mode are set. */
		mode_t um = umask(0177);
		int rc = (fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ? -1 :
		    bind(fd, (struct sockaddr *)&sa, sizeof(sa));
		umask(um);
		if (rc != 0 || chown(path, (uid_t)-1, sock_gid) != 0 || chmod(path, sock_mode) != 0 ||
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

/* Looks a group name up in /etc/group itself: the responder is linked statically, where
 * glibc's getgrnam (NSS) cannot be relied on.  Returns 0 and the gid, or -1. */
static int
group_gid(const char *name, gid_t *gid)
{
	FILE *f = fopen("/etc/group", "re");
	struct group *gr;
	int rc = -1;

	if (f == NULL)
		return -1;
	while ((gr = fgetgrent(f)) != NULL) {
		if (strcmp(gr->gr_name, name) == 0) {
			*gid = gr->gr_gid;
			rc = 0;
			break;
		}
	}
	fclose(f);
	return rc;
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
		{ "socket-group", required_argument, NULL, 'g' },
		{ "socket-mode", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	const char *listen_spec = NULL, *path = NULL, *key_file = NULL;
	long threads = 0;	/* 0: the number of CPUs, looked up only for FastCGI */
	unsigned sock_mode = 0660;
	gid_t sock_gid = getegid();
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
		case 'g': {
			char *end;
			unsigned long g = strtoul(optarg, &end, 10);
			if (group_gid(optarg, &sock_gid) == 0)
				;
			else if (*optarg && *end == '\0' && g < (gid_t)-1)
				sock_gid = (gid_t)g;
			else {
				fprintf(stderr, "lmtasks-fcgi: --socket-group: no group `%s`\n", optarg);
				return 2;
			}
			break;
		}
		case 'm': {
			char *end;
			unsigned long m = strtoul(optarg, &end, 8);
			if (*optarg == '\0' || *end || m > 0777) {
				fprintf(stderr, "lmtasks-fcgi: --socket-mode wants an octal mode like 0660\n");
				return 2;
			}
			sock_mode = (unsigned)m;
			break;
		}
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
	struct sigaction bus = { .sa_handler = on_sigbus, .sa_flags = SA_NODEFER };
	sigemptyset(&bus.sa_mask);
	sigaction(SIGBUS, &bus, NULL);
	if (listen_spec) {
		if ((fd = open_listener(listen_spec, sock_mode, sock_gid)) < 0)
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
