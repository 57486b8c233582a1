/* A CGI process holding one event stream: inotify (or a poll) wakes it, the hub writes. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "lmtasks/clock.h"
#include "lmtasks/timefmt.h"
#include "lmtasks/watch.h"
#include "stream_io.h"

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
	*(int *)ctx = 1;
}

/* One read of the log for a CGI stream's hub, through the reader's guarded path. */
struct cgi_poll {
	stream_hub *h;
	int rc;
};

static void
cgi_poll_in(store *s, MDB_txn *txn, void *arg)
{
	struct cgi_poll *p = arg;

	p->rc = stream_hub_poll_txn(p->h, s, txn, out_ended);
}

/* 0, or 1 when the store could not be read. */
static int
cgi_poll(reader *r, stream_hub *h)
{
	struct cgi_poll p = { h, 0 };

	return reader_read(r, cgi_poll_in, &p) != 0 || p.rc != 0;
}

int
stream_io_cgi(stream_sub *sub, reader *r, int64_t max_us)
{
	stream_hub *h;
	struct watch w;
	int ended = 0, rc = 0;
	int64_t start = clock_mono(), keep = start + stream_io_keepalive();

	/* A client that left shows as a failed write, not as a signal. */
	signal(SIGPIPE, SIG_IGN);
	if (stream_sub_done(sub)) {
		stream_sub_free(sub);
		return 0;
	}
	if (stream_hub_new(&h) != 0) {
		stream_sub_free(sub);
		return 1;
	}
	stream_hub_add(h, sub, out_write, &ended);
	watch_open(&w, reader_path(r));
	/* A commit between the stream's first read and the watch is not missed. */
	if (cgi_poll(r, h) != 0)
		ended = rc = 1;
	while (!ended) {
		int64_t now = clock_mono(), left = start + max_us - now;
		if (left <= 0)
			break;
		int64_t until_keep = keep - now;
		int cap = (int)((until_keep < left ? until_keep : left) / 1000) + 1;
		struct pollfd p = { w.fd, POLLIN, 0 };
		/* A stream far behind reads on at once, a bounded step at a time. */
		int n = poll(&p, w.fd >= 0 ? 1 : 0, stream_hub_behind(h) ? 0 : watch_timeout(&w, cap));
		if (n < 0 && errno != EINTR) {
			rc = 1;
			break;
		}
		if ((watch_drain(&w) || stream_hub_behind(h)) && (rc = cgi_poll(r, h)) != 0) {
			rc = 1;
			break;
		}
		if (!ended && clock_mono() >= keep) {
			stream_hub_keepalive(h, out_ended);
			keep = clock_mono() + stream_io_keepalive();
		}
	}
	watch_close(&w);
	stream_hub_free(h);
	return rc;
}

/* ---- FastCGI: the stream thread ---- */

/* One stream the thread holds: the hub's ctx for it. */
struct held {
	void *client;
	conn *c;
	stream_sub *sub;	/* the hub's, until it ends */
	uint32_t armed;		/* the events its descriptor waits for */
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
	int epfd, wake[2];
	struct inbox *inbox;
	const struct stream_io_host *host;
	char *path;
	_Atomic size_t count;
	/* the thread's own */
	struct held *held;
	stream_hub *hub;
	int poll;		/* a stream's output has gone, or one came: read the log */
	struct watch w;
} sio = { .mu = PTHREAD_MUTEX_INITIALIZER, .epfd = -1, .wake = { -1, -1 } };

static const char wake_tag = 'w', watch_tag = 'i';

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
 * the thread again and again; a peer that left shows as EPOLLHUP or a failed write. */
static uint32_t
wanted_events(const struct held *hd)
{
	return conn_pending(hd->c) ? EPOLLOUT : EPOLLIN | EPOLLRDHUP;
}

static void
rearm(struct held *hd)
{
	uint32_t want = wanted_events(hd);
	struct epoll_event ev = { .events = want, .data.ptr = hd };

	if (want != hd->armed && epoll_ctl(sio.epfd, EPOLL_CTL_MOD, conn_fd(hd->c), &ev) == 0)
		hd->armed = want;
}

/* Lets go of a stream's connection: closed, or given back to the workers waiting for st. */
static void
release(struct held *hd, enum conn_state st)
{
	epoll_ctl(sio.epfd, EPOLL_CTL_DEL, conn_fd(hd->c), NULL);
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

static void held_after(struct held *hd, enum conn_state st);

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
			hd->armed = wanted_events(hd);
			struct epoll_event ev = { .events = hd->armed, .data.ptr = hd };
			hd->next = sio.held;
			if (sio.held)
				sio.held->prev = hd;
			sio.held = hd;
			stream_hub_add(sio.hub, in->sub, held_write, hd);
			if (epoll_ctl(sio.epfd, EPOLL_CTL_ADD, conn_fd(hd->c), &ev) != 0) {
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
	rearm(hd);
}

/* One event of a stream's connection: output taken, or records (an abort) or a close. */
static void
held_event(struct held *hd, uint32_t events)
{
	held_after(hd, events & EPOLLOUT ? conn_flush(hd->c, clock_mono()) :
	    conn_read(hd->c, clock_mono()));
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

/* Reads the log once and fans it out, then flushes; 0, or 1 when the store could not be
 * read (nothing more until it changes: a stream behind would have it read again at once). */
static int
fan_out(void)
{
	int rc = 0;

	sio.poll = 0;
	if (stream_hub_count(sio.hub) == 0)
		return 0;
	if (sio.host->read(poll_in, &rc) != 0)
		return 1;
	flush_all();
	return rc != 0;
}

static void *
stream_thread(void *arg)
{
	struct epoll_event ev[64];
	int64_t keep = clock_mono() + stream_io_keepalive();
	int stop = 0, stuck = 0;

	(void)arg;
	while (!stop) {
		int64_t until_keep = keep - clock_mono();
		/* A stream with room and more of the log to read goes on at once. */
		int busy = !stuck && (sio.poll || stream_hub_behind(sio.hub));
		int n = epoll_wait(sio.epfd, ev, 64, busy ? 0 :
		    watch_timeout(&sio.w, until_keep > 0 ? (int)(until_keep / 1000) + 1 : 0));
		int changed = sio.w.fd < 0 || sio.w.recheck > 0;
		for (int i = 0; i < n; i++) {
			if (ev[i].data.ptr == &wake_tag)
				take_inbox();
			else if (ev[i].data.ptr == &watch_tag)
				changed = 1;
			else
				held_event(ev[i].data.ptr, ev[i].events);
		}
		int go = changed && watch_drain(&sio.w);
		if (go)
			stuck = 0;
		if (go || (!stuck && (sio.poll || stream_hub_behind(sio.hub))))
			stuck = fan_out();
		if (clock_mono() >= keep) {
			stream_hub_keepalive(sio.hub, held_ended);
			flush_all();
			keep = clock_mono() + stream_io_keepalive();
		}
		pthread_mutex_lock(&sio.mu);
		stop = sio.stop;
		pthread_mutex_unlock(&sio.mu);
	}
	/* Every stream ends cleanly; the responder flushes and closes the connections. */
	take_inbox();
	while (sio.held) {
		struct held *hd = sio.held;
		stream_hub_remove(sio.hub, hd);
		conn_stream_end(hd->c, clock_mono());
		epoll_ctl(sio.epfd, EPOLL_CTL_DEL, conn_fd(hd->c), NULL);
		sio.held = hd->next;
		sio.count--;
		free(hd);
	}
	return NULL;
}

/* Starts the thread with its epoll set, wake pipe and watch; sio.mu held. */
static int
start(const struct stream_io_host *host, const char *path)
{
	struct epoll_event wev = { .events = EPOLLIN, .data.ptr = (void *)&wake_tag };
	struct epoll_event iev = { .events = EPOLLIN, .data.ptr = (void *)&watch_tag };

	sio.host = host;
	if ((sio.path = strdup(path)) == NULL || stream_hub_new(&sio.hub) != 0 ||
	    pipe2(sio.wake, O_CLOEXEC | O_NONBLOCK) != 0 ||
	    (sio.epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    epoll_ctl(sio.epfd, EPOLL_CTL_ADD, sio.wake[0], &wev) != 0)
		return errno ? errno : ENOMEM;
	watch_open(&sio.w, path);
	if (sio.w.fd >= 0 && epoll_ctl(sio.epfd, EPOLL_CTL_ADD, sio.w.fd, &iev) != 0)
		watch_close(&sio.w);
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
	watch_close(&sio.w);
	stream_hub_free(sio.hub);
	close(sio.epfd);
	close(sio.wake[0]);
	close(sio.wake[1]);
	free(sio.path);
}

size_t
stream_io_count(void)
{
	return sio.count;
}
