/* The FastCGI loop (loop.c) serving real sockets in this process: a connection that sends
 * many requests ahead (pipelined) is answered LOOP_TURN_REQUESTS at a time, so the single
 * request of another connection ready at the same moment is answered after at most that
 * many of the pipeliner's, not after all of them.  The order is recorded by the loop's own
 * answer callback, and one worker serves both, so it does not depend on how fast anything
 * runs (with more workers, which one a thread scheduled late holds is a matter of timing). */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <fastcgi.h>

#include "lmtasks/conn.h"
#include "lmtasks/loop.h"

/* The pipeliner's requests: more than one read of a buffer grown by a 64 KiB record holds. */
#define PIPELINED 400

/* The answers in the order the loop gave them: 'a' the pipeliner's, 'b' the other's. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char order[PIPELINED + 8];
static int answered;
static pthread_t answered_by[PIPELINED + 8];	/* the worker of each answer */

static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The program's answer: the first letter of the path, recorded, then sent back. */
static enum conn_state
answer(void *ctx, loop_client *cl, int *taken)
{
	static const char head[] = "Status: 200 OK\r\nContent-Type: text/plain\r\n\r\n";
	conn *c = loop_conn(cl);
	const char *uri = conn_param(c, CONN_REQUEST_URI);

	(void)ctx;
	(void)taken;
	pthread_mutex_lock(&mu);
	if (uri && answered < (int)sizeof(order)) {
		answered_by[answered] = pthread_self();
		order[answered++] = uri[1];
	}
	pthread_mutex_unlock(&mu);
	return conn_answer(c, head, sizeof(head) - 1, uri, uri ? strlen(uri) : 0, now_us());
}

static const struct loop_ops ops = { "test_loop", NULL, NULL, answer, NULL, NULL };

/* Bytes being built into records. */
struct buf {
	unsigned char *p;
	size_t len, cap;
};

static void
put(struct buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2;
		b->p = realloc(b->p, b->cap);
		cr_assert_not_null(b->p);
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void
rec(struct buf *b, int type, unsigned rid, const void *p, size_t n)
{
	unsigned char h[FCGI_HEADER_LEN] = {
		FCGI_VERSION_1, (unsigned char)type, (unsigned char)(rid >> 8), (unsigned char)rid,
		(unsigned char)(n >> 8), (unsigned char)n, 0, 0
	};

	put(b, h, sizeof(h));
	if (n > 0)
		put(b, p, n);
}

/* One kept GET of uri (REQUEST_METHOD and REQUEST_URI, short names and values). */
static void
request(struct buf *b, const char *uri)
{
	unsigned char begin[8] = { 0, FCGI_RESPONDER, FCGI_KEEP_CONN };
	unsigned char pairs[128];
	size_t n = 0, ul = strlen(uri);

	pairs[n++] = 14;
	pairs[n++] = 3;
	memcpy(pairs + n, "REQUEST_METHODGET", 17);
	n += 17;
	pairs[n++] = 11;
	pairs[n++] = (unsigned char)ul;
	memcpy(pairs + n, "REQUEST_URI", 11);
	memcpy(pairs + n + 11, uri, ul);
	n += 11 + ul;
	rec(b, FCGI_BEGIN_REQUEST, 1, begin, sizeof(begin));
	rec(b, FCGI_PARAMS, 1, pairs, n);
	rec(b, FCGI_PARAMS, 1, NULL, 0);
	rec(b, FCGI_STDIN, 1, NULL, 0);
}

/* Puts b into fd's socket whole while nothing reads it yet (its buffer made large enough). */
static void
preload(int fd, const struct buf *b)
{
	int size = 1 << 20;
	size_t done = 0;

	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	while (done < b->len) {
		ssize_t n = send(fd, b->p + done, b->len - done, MSG_DONTWAIT);
		cr_assert(n > 0 || errno == EINTR, "%zu of %zu bytes fit in the socket before the "
		    "loop started: %s", done, b->len, strerror(errno));
		if (n > 0)
			done += (size_t)n;
	}
}

/* Reads answers (FCGI_END_REQUEST records) from fd until want of them came. */
static void
read_answers(int fd, int want)
{
	unsigned char buf[65536];
	size_t have = 0;
	int ends = 0;

	while (ends < want) {
		ssize_t n = read(fd, buf + have, sizeof(buf) - have);
		cr_assert(n > 0, "the loop closed the connection after %d answers", ends);
		have += (size_t)n;
		size_t pos = 0;
		while (have - pos >= FCGI_HEADER_LEN) {
			size_t len = FCGI_HEADER_LEN + ((size_t)buf[pos + 4] << 8 | buf[pos + 5]) +
			    buf[pos + 6];
			if (have - pos < len)
				break;
			ends += buf[pos + 1] == FCGI_END_REQUEST;
			pos += len;
		}
		memmove(buf, buf + pos, have - pos);
		have -= pos;
	}
}

struct run {
	int fd, threads, rc;
};

static void *
run_loop(void *arg)
{
	struct run *r = arg;

	r->rc = loop_run(r->fd, r->threads, &ops);
	return NULL;
}

static int
connect_to(const struct sockaddr_un *sa)
{
	struct timeval hang = { 30, 0 };	/* a loop that never answers fails, not hangs */
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &hang, sizeof(hang));
	cr_assert_eq(connect(fd, (const struct sockaddr *)sa, sizeof(*sa)), 0);
	return fd;
}

/* A pipeliner's PIPELINED requests (behind a 64 KiB record of no request when big: it grew
 * the read buffer of 0.2.0 for good) and another client's one request are all in their
 * sockets before the loop starts; threads workers serve them.  Returns how many of the
 * pipeliner's were answered before the other's. */
static int
before_other(int threads, int big)
{
	static unsigned char ignored[65535];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct buf a = { 0 }, b = { 0 };
	char dir[] = "/tmp/test_loop.XXXXXX", uri[32];
	struct run r = { -1, threads, -1 };
	pthread_t t;
	int lfd, fa, fb, i;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/s", dir);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert(lfd >= 0);
	cr_assert_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(lfd, 16), 0);
	fa = connect_to(&sa);
	fb = connect_to(&sa);
	if (big)
		rec(&a, FCGI_STDIN, 2, ignored, sizeof(ignored));
	for (i = 0; i < PIPELINED; i++) {
		snprintf(uri, sizeof(uri), "/a/%d", i);
		request(&a, uri);
	}
	request(&b, "/b");
	preload(fa, &a);
	preload(fb, &b);
	r.fd = lfd;
	cr_assert_eq(pthread_create(&t, NULL, run_loop, &r), 0);
	read_answers(fb, 1);
	read_answers(fa, PIPELINED);
	kill(getpid(), SIGTERM);	/* the loop's handler: the workers leave */
	pthread_join(t, NULL);
	cr_assert_eq(r.rc, 0);
	close(fa);
	close(fb);
	unlink(sa.sun_path);
	rmdir(dir);
	free(a.p);
	free(b.p);
	cr_assert_eq(answered, PIPELINED + 1);
	const char *other = memchr(order, 'b', (size_t)answered);
	cr_assert_not_null(other);
	return (int)(other - order);
}

Test(loop, a_pipeliner_yields_to_a_connection_ready_with_it)
{
	int n = before_other(1, 0);

	cr_log_info("one worker: %d of the pipelined requests before the other", n);
	cr_expect_leq(n, LOOP_TURN_REQUESTS, "one worker: %d of the %d pipelined requests were "
	    "answered before the other connection's (at most %d in a turn)", n, PIPELINED,
	    LOOP_TURN_REQUESTS);
}

Test(loop, a_pipeliner_behind_a_64k_record_yields)
{
	int n = before_other(1, 1);

	cr_log_info("one worker, a 64 KiB record first: %d before the other", n);
	cr_expect_leq(n, LOOP_TURN_REQUESTS, "one worker: %d of the %d pipelined requests sent "
	    "behind a 64 KiB record were answered before the other connection's", n, PIPELINED);
}

/* New connections are dealt to the workers in turn, not left to the one the kernel wakes
 * first: kept connections opened one after another, each asked once, are answered by
 * every worker.  (Bounded: all four are seen within the first connections once the loop
 * has started them all; nothing here waits on time.) */
Test(loop, new_connections_are_dealt_to_every_worker)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[] = "/tmp/test_loop.XXXXXX";
	struct run r = { -1, 4, -1 };
	int fds[64], n, lfd, seen = 0;
	pthread_t t, who[4];

	cr_assert_not_null(mkdtemp(dir));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/s", dir);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert(lfd >= 0);
	cr_assert_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(lfd, 64), 0);
	r.fd = lfd;
	cr_assert_eq(pthread_create(&t, NULL, run_loop, &r), 0);
	for (n = 0; n < 64 && seen < 4; n++) {
		struct buf b = { 0 };
		request(&b, "/c");
		fds[n] = connect_to(&sa);
		cr_assert_eq(write(fds[n], b.p, b.len), (ssize_t)b.len);
		free(b.p);
		read_answers(fds[n], 1);	/* kept open: the next connection is a new one */
		pthread_mutex_lock(&mu);
		pthread_t by = answered_by[answered - 1];
		pthread_mutex_unlock(&mu);
		int known = 0;
		for (int i = 0; i < seen; i++)
			known |= pthread_equal(who[i], by);
		if (!known)
			who[seen++] = by;
	}
	kill(getpid(), SIGTERM);
	pthread_join(t, NULL);
	cr_assert_eq(r.rc, 0);
	for (int i = 0; i < n; i++)
		close(fds[i]);
	unlink(sa.sun_path);
	rmdir(dir);
	cr_log_info("all four workers answered within %d connections", n);
	cr_assert_eq(seen, 4, "%d connections opened one after another were answered by %d of "
	    "the 4 workers", n, seen);
}
