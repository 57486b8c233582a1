/* lmtasks-fcgi: the tasks API over FastCGI (own socket or inherited) or CGI, read-only (SPEC §4).
 *
 * FastCGI: loop.c's workers (see loop.h) hand each whole request to answer() below with the
 * worker's own reading state; a stream goes on to the stream thread (stream_io.c); once a
 * second the timer checks the store's size.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lmtasks/api.h"
#include "lmtasks/auth.h"
#include "lmtasks/clock.h"
#include "lmtasks/conn.h"
#include "lmtasks/error.h"
#include "lmtasks/feed.h"
#include "lmtasks/listen.h"
#include "lmtasks/log.h"
#include "lmtasks/loop.h"
#include "lmtasks/pagecache.h"
#include "lmtasks/settings.h"
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

static const char usage_text[] =
"usage: lmtasks-fcgi [--db PATH] [--listen unix:PATH|HOST:PORT] [--threads N]\n"
"                    [--page-cache SIZE] [--socket-group GROUP] [--socket-mode MODE]\n"
"                    [--master-key-file FILE]\n"
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
	int replaced;		/* its data file is not the one open (check_replaced) */
	char replaced_why[PATH_MAX + 200];	/* what store_check_replaced_text() said */
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

#define logline(...) log_line("lmtasks-fcgi", __VA_ARGS__)

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
	int64_t now = clock_now();
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

/* Per-thread reading state: a reset transaction, an iterator, a body buffer, and in
 * FastCGI the list pages of the current snapshot. */
struct reader {
	MDB_txn *txn;
	store_iter *it;
	struct printbuf *body;
	pagecache *pages;
	struct api_memo memo;
	int live;
};

static size_t page_budget = PAGECACHE_DEFAULT;	/* --page-cache */

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
	rd->pages = NULL;
	rd->memo = NULL;
	rd->db_path = db.path;
	rd->open_rc = db.open_rc;
	rd->damage = db.damage;
	if (db.s == NULL)
		return;
	if (db.damaged || atomic_load_explicit(&db.faulted, memory_order_relaxed)) {
		rd->open_rc = LMT_EDAMAGED;
		return;
	}
	if (db.replaced) {
		rd->open_rc = LMT_EREPLACED;
		rd->damage = db.replaced_why;
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
	/* Every snapshot, not only once a second: a data file copied over the store since
	 * the last check is read at a meta page the lock file picks, and must not be served
	 * (nor its pages kept under the lock's transaction id).  No system call. */
	if (rc == 0 && (rc = store_check_snapshot(db.s, w->txn)) == LMT_EREPLACED)
		rd->damage = store_check_replaced_text();
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
	rd->pages = w->pages;
	rd->memo = &w->memo;
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
	pagecache_free(w->pages);
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
		return conn_answer(c, head, hl, w->body->buf, bl, clock_mono());
	st = conn_stream_begin(c, head, hl, w->body->buf, bl, clock_mono());
	/* A uids= stream whose tasks have all finished ends after its current state. */
	if (st == CONN_CLOSE || stream_sub_done(*stream)) {
		stream_sub_free(*stream);
		*stream = NULL;
		if (st != CONN_CLOSE)
			st = conn_stream_end(c, clock_mono());
	}
	return st;
}

/* ---- the stream thread's view of the responder ---- */

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

/* The stream thread reads as a worker does: under the read lock, a grown map adopted,
 * SIGBUS from a damaged file caught. */
static int
host_read(void (*fn)(store *s, MDB_txn *txn, void *arg), void *arg)
{
	MDB_txn *txn = NULL;
	int rc;

	pthread_rwlock_rdlock(&db.lock);
	if (db.s == NULL || db.damaged || db.replaced || atomic_load(&db.faulted)) {
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
	if (rc == 0 && (rc = store_check_snapshot(db.s, txn)) != 0)
		mdb_txn_abort(txn);
	else if (rc == 0) {
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

/* A whole request from the loop: answered, or its stream handed to the stream thread. */
static enum conn_state
on_request(void *ctx, loop_client *cl, int *taken)
{
	stream_sub *stream = NULL;
	enum conn_state st = answer(ctx, loop_conn(cl), &stream);

	if (stream) {
		*taken = 1;
		/* The stream thread holds it from now on: out of the workers' set. */
		if (st == CONN_CLOSE || loop_detach(cl) != 0 ||
		    stream_io_adopt(&stream_host, db.path, cl, stream) != 0) {
			stream_sub_free(stream);
			loop_close(cl);
		}
	}
	return st;
}


/*
 * A data file copied or moved over the store while this process has it open: answered 503
 * (store_check_replaced()) while it is so.  LMDB's lock file keeps counting the
 * transactions of the file it was set up from until every process that has the store open
 * closes it, so this lasts until they all are stopped, this one too; `lmtasks restore` is
 * the way that needs no stop.  Called from check_timer(), once a second.
 */
static void
check_replaced(void)
{
	char text[sizeof(db.replaced_why)] = "";
	volatile int rc = 0;	/* read after a jump from the SIGBUS handler */

	pthread_rwlock_rdlock(&db.lock);
	if (db.s == NULL || db.damaged || atomic_load(&db.faulted)) {
		pthread_rwlock_unlock(&db.lock);
		return;
	}
	/* The meta pages are read from the map: a file shrunk meanwhile faults here too. */
	if (sigsetjmp(bus_jmp, 0) == 0) {
		bus_armed = 1;
		rc = store_check_replaced(db.s);
		bus_armed = 0;
	} else {
		atomic_store(&db.faulted, 1);
	}
	if (rc == LMT_EREPLACED)
		snprintf(text, sizeof(text), "%s", store_check_replaced_text());
	int bad = rc == LMT_EREPLACED;
	int change = bad != db.replaced;
	pthread_rwlock_unlock(&db.lock);
	if (!change)
		return;
	pthread_rwlock_wrlock(&db.lock);
	if (bad) {
		snprintf(db.replaced_why, sizeof(db.replaced_why), "%s", text);
		logline("the store at %s was replaced while open: %s; answering 503 until every "
		    "process that has it open is stopped (restore with `lmtasks restore`)", db.path,
		    text);
	} else {
		logline("the store at %s can be read again", db.path);
	}
	db.replaced = bad;
	pthread_rwlock_unlock(&db.lock);
}

/* The store's quick check, once a second from the timer: a data.mdb shrunk while open is
 * answered 503 at once, and served again once it is whole. */
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

/* The loop's timer, once a second: the size check, then the data file's identity. */
static void
check_timer(void)
{
	check_store();
	check_replaced();
}

/* A worker's reading state, for the loop to hold. */
static int
worker_init(void **ctx)
{
	struct reader *w = malloc(sizeof(*w));

	if (w == NULL || reader_init(w) != 0) {
		free(w);
		return ENOMEM;
	}
	if (pagecache_new(page_budget, &w->pages) != 0) {
		reader_free(w);
		free(w);
		return ENOMEM;
	}
	*ctx = w;
	return 0;
}

static void
worker_free(void *ctx)
{
	reader_free(ctx);
	free(ctx);
}

/* --page-cache: a size as maxBytes takes it (settings.h), up to 1 GiB. */
static int
parse_budget(const char *text, size_t *v)
{
	uint64_t n;

	if (settings_parse_size(text, &n) != 0 || n > (1u << 30))
		return LMT_EINVAL;
	*v = (size_t)n;
	return 0;
}

static const struct loop_ops responder_ops = {
	"lmtasks-fcgi", worker_init, worker_free, on_request, check_timer, stream_io_stop,
};

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "db", required_argument, NULL, 'd' },
		{ "listen", required_argument, NULL, 'l' },
		{ "threads", required_argument, NULL, 't' },
		{ "page-cache", required_argument, NULL, 'p' },
		{ "master-key-file", required_argument, NULL, 'k' },
		{ "socket-group", required_argument, NULL, 'g' },
		{ "socket-mode", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	const char *listen_spec = NULL, *path = NULL, *key_file = NULL;
	long threads = 0;	/* 0: half the CPUs, looked up only for FastCGI */
	unsigned sock_mode = LISTEN_MODE_DEFAULT;
	gid_t sock_gid = getegid();
	int c, fd;
	char why[PATH_MAX + 160];

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
		case 'g':
			if (listen_group(optarg, &sock_gid) != 0) {
				fprintf(stderr, "lmtasks-fcgi: --socket-group: no group `%s`\n", optarg);
				return 2;
			}
			break;
		case 'm':
			if (listen_mode(optarg, &sock_mode) != 0) {
				fprintf(stderr, "lmtasks-fcgi: --socket-mode wants an octal mode like 0660\n");
				return 2;
			}
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
		case 'p':
			if (parse_budget(optarg, &page_budget) != 0) {
				fprintf(stderr, "lmtasks-fcgi: --page-cache wants a size in bytes, with K "
				    "or M, up to 1G (0: none)\n");
				return 2;
			}
			break;
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
			if (listen_inherited(&fd) != 0 && listen_spec == NULL)
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
		if (listen_open(listen_spec, sock_mode, sock_gid, &fd, why, sizeof(why)) != 0) {
			logline("%s", why);
			return 1;
		}
	} else if (listen_inherited(&fd) != 0) {
		return serve_cgi();
	}
	/* The web server in front shares the CPUs: on two, one thread served 8-11% more
	 * requests than two (bench/threads.sh). */
	if (threads == 0 && (threads = sysconf(_SC_NPROCESSORS_ONLN) / 2) < 1)
		threads = 1;
	if (threads > 100)
		threads = 100;
	if (db.path) {
		store_try_open(NULL);
		if (db.s == NULL)
			logline("no readable store at %s yet (%s); answering 503 until there is",
			    db.path, lmt_strerror(db.open_rc));
	}
	logline("serving %s with %ld threads, %zu bytes of list pages each", db.path ? db.path :
	    "the store named by the first request's LMTASKS_DB, or " LMTASKS_DEFAULT_DB ",",
	    threads, page_budget);
	int rc = loop_run(fd, (int)threads, &responder_ops);
	if (listen_spec && listen_unix_path(listen_spec))
		unlink(listen_unix_path(listen_spec));
	store_close(db.s);
	free(db.path);
	return rc;
}
