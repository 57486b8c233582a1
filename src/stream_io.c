/* A CGI process holding one event stream: inotify (or a poll) wakes it, the hub writes. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lmtasks/clock.h"
#include "lmtasks/event.h"
#include "lmtasks/log.h"
#include "lmtasks/timefmt.h"
#include "lmtasks/watch.h"
#include "stream_io.h"

/* With inotify on, a stream looks at the log every 5 s besides: an event lost (a full
 * queue) costs a stream that much, where the CLI's waiters look every WATCH_LOST_MS; an
 * idle stream wakes no more often than that (each look is a read transaction). */
#define STREAM_LOST_US (5 * INT64_C(1000000))

int64_t
stream_io_cgi_max(void)
{
	const char *v = getenv("LMTASKS_STREAM_MAX_SECONDS");
	char *end;
	long n;

	if (v == NULL || *v == '\0')
		return (int64_t)STREAM_CGI_MAX_SECONDS * 1000000;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || *end || n < 1 || n > 86400)
		return (int64_t)STREAM_CGI_MAX_SECONDS * 1000000;
	return (int64_t)n * 1000000;
}

/* Tests shorten the keep-alive to see it cross a proxy: LMTASKS_STREAM_KEEPALIVE_MS,
 * honoured only when set to 10..3600000; else every 15 s. */
static int64_t
stream_io_keepalive(void)
{
	const char *v = getenv("LMTASKS_STREAM_KEEPALIVE_MS");
	char *end;
	long n;

	if (v == NULL || *v == '\0')
		return STREAM_KEEPALIVE_US;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || *end || n < 10 || n > 3600000)
		return STREAM_KEEPALIVE_US;
	return (int64_t)n * 1000;
}

/* A CGI stream: its loop, its hub, and how it ends (the hub ended it, its time is up,
 * or the store could not be read: rc 1). */
struct cgi_stream {
	event_loop *el;
	reader *r;
	stream_hub *h;
	int64_t max_us;
	uint64_t behind;	/* the timer that reads on while the stream is behind */
	int ended, over, rc;
};

/* Each event goes out at once: the web server passes it on as it comes. */
static int
out_write(void *ctx, const void *buf, size_t len)
{
	(void)ctx;
	return fwrite(buf, 1, len, stdout) != len || fflush(stdout) != 0;
}

static void
out_ended(void *ctx)
{
	struct cgi_stream *cs = ctx;

	cs->ended = 1;
	event_stop(cs->el);
}

static void
cgi_poll_in(store *s, MDB_txn *txn, void *arg)
{
	struct cgi_stream *cs = arg;

	cs->rc = stream_hub_poll_txn(cs->h, s, txn, out_ended);
}

/* One read of the log for the stream's hub, through the reader's guarded path.  A stream
 * far behind reads on at the next turn, a bounded step at a time. */
static void
cgi_poll(struct cgi_stream *cs)
{
	if (reader_read(cs->r, cgi_poll_in, cs) != 0 || cs->rc != 0) {
		cs->rc = 1;
		event_stop(cs->el);
	} else if (!cs->ended && stream_hub_behind(cs->h)) {
		event_timer_move(cs->el, cs->behind, 0);
	}
}

static void
cgi_change(event_loop *el, void *ctx)
{
	(void)el;
	cgi_poll(ctx);
}

static int64_t
cgi_behind(event_loop *el, void *ctx)
{
	struct cgi_stream *cs = ctx;

	(void)el;
	cgi_poll(cs);
	return stream_hub_behind(cs->h) ? 0 : cs->max_us;
}

static int64_t
cgi_keepalive(event_loop *el, void *ctx)
{
	struct cgi_stream *cs = ctx;

	(void)el;
	stream_hub_keepalive(cs->h, out_ended);
	return stream_io_keepalive();
}

static int64_t
cgi_over(event_loop *el, void *ctx)
{
	struct cgi_stream *cs = ctx;

	cs->over = 1;
	event_stop(el);
	return EVENT_NOMORE;
}

int
stream_io_cgi(stream_sub *sub, reader *r, int64_t max_us)
{
	struct cgi_stream cs = { .r = r, .max_us = max_us };
	int rc;

	/* A client that left shows as a failed write, not as a signal. */
	signal(SIGPIPE, SIG_IGN);
	if (stream_sub_done(sub)) {
		stream_sub_free(sub);
		return 0;
	}
	if (stream_hub_new(&cs.h) != 0) {
		stream_sub_free(sub);
		return 1;
	}
	stream_hub_add(cs.h, sub, out_write, &cs);
	if (event_new(&cs.el) != 0 || (event_watch_lost(cs.el, STREAM_LOST_US),
	    event_watch(cs.el, reader_path(r), WATCH_POLL_MS * INT64_C(1000), cgi_change, &cs)) != 0 ||
	    event_timer_add(cs.el, max_us, cgi_over, &cs, NULL) != 0 ||
	    event_timer_add(cs.el, stream_io_keepalive(), cgi_keepalive, &cs, NULL) != 0 ||
	    event_timer_add(cs.el, max_us, cgi_behind, &cs, &cs.behind) != 0) {
		cs.rc = 1;
		goto out;
	}
	/* A commit between the stream's first read and the watch is not missed. */
	cgi_poll(&cs);
	while (!cs.ended && !cs.over && cs.rc == 0)
		if ((rc = event_run(cs.el)) != 0 && rc != EINTR)
			cs.rc = 1;
out:
	event_free(cs.el);
	stream_hub_free(cs.h);
	return cs.rc;
}

/* ---- FastCGI: the stream thread ---- */

/* One stream the thread holds: the hub's ctx for it. */
struct held {
	void *client;
	conn *c;
	stream_sub *sub;	/* the hub's, until it ends */
	uint64_t overdue;	/* the timer at its write deadline (conn_deadline) */
	int kill;		/* its peer broke the protocol or left: close, do not end */
	struct held *prev, *next;
};

struct inbox {
	void *client;
	stream_sub *sub;
	struct inbox *next;
};

static struct {
	pthread_mutex_t mu;	/* guards inbox, started, stop */
	int started, stop;
	pthread_t tid;
	int wake[2];
	struct inbox *inbox;
	const struct stream_io_host *host;
	char *path;
	_Atomic size_t count;
	/* the thread's own */
	event_loop *el;
	struct held *held;
	stream_hub *hub;
	int poll;		/* a stream's output has gone, or one came: read the log */
	int stuck;		/* the store could not be read: nothing until it changes */
	uint64_t fan;		/* the timer that reads the log at the next turn */
} sio = { .mu = PTHREAD_MUTEX_INITIALIZER, .wake = { -1, -1 } };

/* Where a timer waits that is not due (moved before then, as it is). */
#define LATER_US (3600 * INT64_C(1000000))

static int
held_write(void *ctx, const void *buf, size_t len)
{
	struct held *hd = ctx;

	if (conn_stream_write(hd->c, buf, len) != 0)
		return 1;
	/* Paced: the hub sends more once this has gone (held_event). */
	return conn_pending(hd->c) >= STREAM_WINDOW ? STREAM_FULL : 0;
}

/* What the connection waits for next: its output to go, else the peer's records.  Never
 * both: while output waits, conn_read reads nothing, and a byte left unread would wake
 * the thread again and again; a peer that left shows as a hang-up or a failed write. */
static unsigned
wanted_events(const struct held *hd)
{
	return conn_pending(hd->c) ? EVENT_WRITE : EVENT_READ;
}

/* A stream with room and more of the log to read goes on at the next turn, at once. */
static void
kick(void)
{
	if (!sio.stuck && (sio.poll || stream_hub_behind(sio.hub)))
		event_timer_move(sio.el, sio.fan, 0);
}

/* Lets go of a stream's connection: closed, or given back to the workers waiting for st. */
static void
release(struct held *hd, enum conn_state st)
{
	event_fd_del(sio.el, conn_fd(hd->c));
	event_timer_del(sio.el, hd->overdue);
	if (hd->prev)
		hd->prev->next = hd->next;
	else
		sio.held = hd->next;
	if (hd->next)
		hd->next->prev = hd->prev;
	sio.count--;
	if (st == CONN_CLOSE || hd->kill)
		sio.host->close(hd->client);
	else
		sio.host->give_back(hd->client, st);
	free(hd);
}

/* The hub ended a stream (done, its key gone, or its client behind). */
static void
held_ended(void *ctx)
{
	struct held *hd = ctx;

	release(hd, hd->kill ? CONN_CLOSE : conn_stream_end(hd->c, clock_mono()));
}

/* After output went or records came: the stream ends when its peer left or aborted it,
 * or sent a request's end again (a record after the end of the request it streams, which
 * would stop all reading: the connection is closed); with its output gone, the hub sends
 * it more. */
static void
held_after(struct held *hd, enum conn_state st)
{
	/* Once the stream was aborted, the next request is the connection's to serve. */
	if (st == CONN_REQUEST && conn_streaming(hd->c))
		hd->kill = 1;
	if (st == CONN_CLOSE || st == CONN_REQUEST || !conn_streaming(hd->c)) {
		stream_hub_remove(sio.hub, hd);
		release(hd, st);
		return;
	}
	if (conn_pending(hd->c) == 0 && stream_sub_full(hd->sub)) {
		stream_sub_resume(hd->sub);
		sio.poll = 1;
	}
	event_fd_mod(sio.el, conn_fd(hd->c), wanted_events(hd));
	/* Output taken moves the deadline on; output written does not. */
	int64_t d = conn_deadline(hd->c);
	event_timer_move(sio.el, hd->overdue, d == 0 ? LATER_US : d - clock_mono());
}

/* Its client took nothing for CONN_WRITE_DEADLINE_US (keep-alives written or not). */
static int64_t
held_overdue(event_loop *el, void *ctx)
{
	struct held *hd = ctx;

	(void)el;
	log_line(sio.host->name, "closed a FastCGI connection: its stream's events were not "
	    "taken for %d s", CONN_WRITE_DEADLINE_US / 1000000);
	stream_hub_remove(sio.hub, hd);
	hd->kill = 1;
	release(hd, CONN_CLOSE);
	return EVENT_NOMORE;
}

/* One event of a stream's connection: output taken, or records (an abort) or a close. */
static void
held_event(event_loop *el, int fd, unsigned what, void *ctx)
{
	struct held *hd = ctx;

	(void)el;
	(void)fd;
	held_after(hd, what & EVENT_WRITE ? conn_flush(hd->c, clock_mono()) :
	    conn_read(hd->c, clock_mono()));
	kick();
}

/* Takes the streams the workers handed over. */
static void
take_inbox(void)
{
	struct inbox *in;
	char buf[64];

	while (read(sio.wake[0], buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&sio.mu);
	in = sio.inbox;
	sio.inbox = NULL;
	pthread_mutex_unlock(&sio.mu);
	while (in) {
		struct inbox *next = in->next;
		struct held *hd = calloc(1, sizeof(*hd));
		if (hd == NULL) {
			stream_sub_free(in->sub);
			sio.host->close(in->client);
			sio.count--;
		} else {
			hd->client = in->client;
			hd->c = sio.host->conn_of(in->client);
			hd->sub = in->sub;
			hd->next = sio.held;
			if (sio.held)
				sio.held->prev = hd;
			sio.held = hd;
			stream_hub_add(sio.hub, in->sub, held_write, hd);
			if (event_timer_add(sio.el, LATER_US, held_overdue, hd,
			    &hd->overdue) != 0 || event_fd_add(sio.el, conn_fd(hd->c),
			    wanted_events(hd), held_event, hd) != 0) {
				stream_hub_remove(sio.hub, hd);
				hd->kill = 1;
				release(hd, CONN_CLOSE);
			} else {
				/* What the worker read after the stream began (its flush reads
				 * on) is framed now: no event will come for it. */
				held_after(hd, conn_feed(hd->c, NULL, 0, clock_mono()));
			}
		}
		free(in);
		in = next;
		/* It may be behind, or a commit came since it opened. */
		sio.poll = 1;
	}
}

/* Polls the hub in the reader's txn; its rc in *arg. */
static void
poll_in(store *s, MDB_txn *txn, void *arg)
{
	*(int *)arg = stream_hub_poll_txn(sio.hub, s, txn, held_ended);
}

/* Sends what each socket takes of the streams' output. */
static void
flush_all(void)
{
	for (struct held *hd = sio.held, *next; hd; hd = next) {
		next = hd->next;
		if (conn_pending(hd->c) > 0)
			held_after(hd, conn_flush(hd->c, clock_mono()));
	}
}

/* Reads the log once and fans it out, then flushes; stuck when the store could not be
 * read (nothing more until it changes: a stream behind would have it read again at once). */
static void
fan_out(void)
{
	int rc = 0;

	sio.poll = 0;
	sio.stuck = 0;
	if (stream_hub_count(sio.hub) == 0)
		return;
	if (sio.host->read(poll_in, &rc) != 0) {
		sio.stuck = 1;
		return;
	}
	flush_all();
	sio.stuck = rc != 0;
}

/* The store may have changed: every stream reads on. */
static void
on_change(event_loop *el, void *ctx)
{
	(void)el;
	(void)ctx;
	fan_out();
	kick();
}

/* Reads on while a stream has room and more of the log (kick() makes it due). */
static int64_t
on_fan(event_loop *el, void *ctx)
{
	(void)el;
	(void)ctx;
	if (!sio.stuck && (sio.poll || stream_hub_behind(sio.hub)))
		fan_out();
	return !sio.stuck && (sio.poll || stream_hub_behind(sio.hub)) ? 0 : LATER_US;
}

static int64_t
on_keepalive(event_loop *el, void *ctx)
{
	(void)el;
	(void)ctx;
	stream_hub_keepalive(sio.hub, held_ended);
	flush_all();
	kick();
	return stream_io_keepalive();
}

/* Streams handed over, or the stop. */
static void
on_wake(event_loop *el, int fd, unsigned what, void *ctx)
{
	int stop;

	(void)fd;
	(void)what;
	(void)ctx;
	take_inbox();
	kick();
	pthread_mutex_lock(&sio.mu);
	stop = sio.stop;
	pthread_mutex_unlock(&sio.mu);
	if (stop)
		event_stop(el);
}

static void *
stream_thread(void *arg)
{
	int rc;

	(void)arg;
	while ((rc = event_run(sio.el)) == EINTR)
		;
	if (rc != 0) {
		/* The loop failed: no stream is taken any more, and each one held ends, its
		 * connection given back to the workers to flush the end and go on. */
		log_line(sio.host->name, "the stream thread stops: %s", strerror(rc));
		pthread_mutex_lock(&sio.mu);
		sio.stop = 1;
		pthread_mutex_unlock(&sio.mu);
		take_inbox();
		while (sio.held) {
			stream_hub_remove(sio.hub, sio.held);
			release(sio.held, conn_stream_end(sio.held->c, clock_mono()));
		}
		return NULL;
	}
	/* Every stream ends cleanly; the responder flushes and closes the connections. */
	take_inbox();
	while (sio.held) {
		struct held *hd = sio.held;
		stream_hub_remove(sio.hub, hd);
		conn_stream_end(hd->c, clock_mono());
		event_fd_del(sio.el, conn_fd(hd->c));
		event_timer_del(sio.el, hd->overdue);
		sio.held = hd->next;
		sio.count--;
		free(hd);
	}
	return NULL;
}

/* Starts the thread with its loop: the wake pipe, the store's watch, the timers; sio.mu
 * held. */
static int
start(const struct stream_io_host *host, const char *path)
{
	int rc;

	sio.host = host;
	if ((sio.path = strdup(path)) == NULL || stream_hub_new(&sio.hub) != 0)
		return ENOMEM;
	if (pipe2(sio.wake, O_CLOEXEC | O_NONBLOCK) != 0)
		return errno;
	if ((rc = event_new(&sio.el)) != 0 ||
	    (rc = event_fd_add(sio.el, sio.wake[0], EVENT_READ, on_wake, NULL)) != 0 ||
	    (event_watch_lost(sio.el, STREAM_LOST_US),
	    rc = event_watch(sio.el, path, WATCH_POLL_MS * INT64_C(1000), on_change, NULL)) != 0 ||
	    (rc = event_timer_add(sio.el, LATER_US, on_fan, NULL, &sio.fan)) != 0 ||
	    (rc = event_timer_add(sio.el, stream_io_keepalive(), on_keepalive, NULL, NULL)) != 0)
		return rc;
	if (pthread_create(&sio.tid, NULL, stream_thread, NULL) != 0)
		return EAGAIN;
	sio.started = 1;
	return 0;
}

int
stream_io_adopt(const struct stream_io_host *host, const char *path, void *client,
    stream_sub *sub)
{
	struct inbox *in = malloc(sizeof(*in));
	int rc = 0;

	if (in == NULL)
		return ENOMEM;
	in->client = client;
	in->sub = sub;
	pthread_mutex_lock(&sio.mu);
	if (sio.stop)
		rc = ESHUTDOWN;
	else if (!sio.started)
		rc = start(host, path);
	if (rc == 0) {
		in->next = sio.inbox;
		sio.inbox = in;
		sio.count++;
	}
	pthread_mutex_unlock(&sio.mu);
	if (rc != 0) {
		free(in);
		return rc;
	}
	if (write(sio.wake[1], "", 1) < 0) {
		/* The pipe is full: the thread has a wake-up pending already. */
	}
	return 0;
}

void
stream_io_stop(void)
{
	pthread_mutex_lock(&sio.mu);
	int started = sio.started;
	sio.stop = 1;
	pthread_mutex_unlock(&sio.mu);
	if (!started)
		return;
	if (write(sio.wake[1], "", 1) < 0) {
		/* A wake-up is pending already. */
	}
	pthread_join(sio.tid, NULL);
	event_free(sio.el);
	stream_hub_free(sio.hub);
	close(sio.wake[0]);
	close(sio.wake[1]);
	free(sio.path);
}

size_t
stream_io_count(void)
{
	return sio.count;
}
