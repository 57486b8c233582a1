/* The FastCGI server loop (see loop.h), shared by the responder and the writer. */
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "lmtasks/clock.h"
#include "lmtasks/conn.h"
#include "lmtasks/log.h"
#include "lmtasks/loop.h"

#define SWEEP_NS 250000000	/* how often deadlines are looked at */
/* Idle connections shut down at once when accept finds no descriptor left. */
#define SHED_AT_ONCE 16

/* A connection in the registry, which lets the timer find overdue ones and shutdown
 * close the rest.  swept: shut down already (by the timer, or shed); busy: a worker serves
 * it now; waiting: a whole request of it waits for its next turn; detached: a thread
 * of the program's holds it (a stream), so it is never idle; active: when a worker last
 * served it (monotonic µs), for the idle limit and for shedding the longest idle first. */
struct loop_client {
	conn *c;
	int swept;
	_Atomic int busy;
	_Atomic int waiting;
	_Atomic int detached;
	_Atomic int64_t active;
	struct loop_client *prev, *next;
};

static struct {
	int epfd;
	int listen_fd;
	int timer_fd;
	int stop[2];		/* a byte here wakes every worker to leave */
	pthread_mutex_t mu;	/* guards the registry */
	struct loop_client *all;
} srv = { -1, -1, -1, { -1, -1 }, PTHREAD_MUTEX_INITIALIZER, NULL };

/* The program's callbacks, fixed by loop_run. */
static const struct loop_ops *ops;

#define logline(...) log_line(ops->name, __VA_ARGS__)

static struct loop_client *
client_new(int fd)
{
	struct loop_client *cl = calloc(1, sizeof(*cl));

	if (cl == NULL || conn_new(fd, clock_mono(), &cl->c) != 0) {
		free(cl);
		return NULL;
	}
	atomic_store_explicit(&cl->active, clock_mono(), memory_order_relaxed);
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
client_close(struct loop_client *cl)
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
 * worker that gets it owns the connection until it arms it again.  A whole request already
 * read waits for writing too: the socket is writable at once, unless its peer leaves
 * answers untaken, and the event queues behind those of the connections ready before. */
static int
arm(struct loop_client *cl, int op, enum conn_state st)
{
	struct epoll_event ev = { .events = (st == CONN_FLUSH || st == CONN_REQUEST ? EPOLLOUT :
	    EPOLLIN) | EPOLLRDHUP | EPOLLONESHOT, .data.ptr = cl };

	return epoll_ctl(srv.epfd, op, conn_fd(cl->c), &ev);
}

/* An idle connection: a kept one between requests (no request begun, no output kept:
 * either sets a deadline), served by no worker, held by no thread of the program. */
static int
idle(struct loop_client *cl)
{
	return !cl->swept && conn_deadline(cl->c) == 0 &&
	    !atomic_load_explicit(&cl->busy, memory_order_relaxed) &&
	    !atomic_load_explicit(&cl->waiting, memory_order_relaxed) &&
	    !atomic_load_explicit(&cl->detached, memory_order_relaxed);
}

/* Out of descriptors: the connections idle the longest are shut down (their workers
 * close them at the event that follows), so that a client with a request is accepted
 * rather than one that holds a connection doing nothing.  Returns how many. */
static int
shed_idle(void)
{
	struct loop_client *pick[SHED_AT_ONCE];
	int n = 0;

	pthread_mutex_lock(&srv.mu);
	for (struct loop_client *cl = srv.all; cl; cl = cl->next) {
		if (!idle(cl))
			continue;
		int64_t a = atomic_load_explicit(&cl->active, memory_order_relaxed);
		/* pick[] is kept in order, idle the longest first. */
		if (n == SHED_AT_ONCE &&
		    atomic_load_explicit(&pick[n - 1]->active, memory_order_relaxed) <= a)
			continue;
		int i = n < SHED_AT_ONCE ? n++ : SHED_AT_ONCE - 1;
		while (i > 0 && atomic_load_explicit(&pick[i - 1]->active, memory_order_relaxed) > a) {
			pick[i] = pick[i - 1];
			i--;
		}
		pick[i] = cl;
	}
	for (int i = 0; i < n; i++) {
		pick[i]->swept = 1;
		shutdown(conn_fd(pick[i]->c), SHUT_RDWR);
	}
	pthread_mutex_unlock(&srv.mu);
	return n;
}

static void
accept_all(void)
{
	int fd;

	while ((fd = accept4(srv.listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
		struct loop_client *cl = client_new(fd);
		if (cl == NULL) {
			close(fd);
			continue;
		}
		if (arm(cl, EPOLL_CTL_ADD, CONN_MORE) != 0)
			client_close(cl);
	}
	if (errno == EMFILE || errno == ENFILE) {
		int n = shed_idle();
		logline("accept: %s; %d idle connections closed to make room", strerror(errno), n);
		if (n > 0)
			return;
	}
	if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
		poll(NULL, 0, 100);	/* nothing to shed: back off instead of spinning */
}
/* One readiness event of a connection: read (or write), answer what is whole, up to
 * LOOP_TURN_REQUESTS of them, re-arm. */
static void
serve_conn(void *w, struct loop_client *cl, uint32_t events)
{
	atomic_store_explicit(&cl->busy, 1, memory_order_relaxed);
	enum conn_state st = events & EPOLLOUT ? conn_flush(cl->c, clock_mono()) :
	    conn_read(cl->c, clock_mono());

	for (int turn = 0; st == CONN_REQUEST && turn < LOOP_TURN_REQUESTS; turn++) {
		int taken = 0;
		st = ops->answer(w, cl, &taken);
		/* The program holds it from now on, and may have closed it already: cl is
		 * not touched again (loop_detach marked it not busy). */
		if (taken)
			return;
		if (st == CONN_MORE)	/* a request sent early, already read */
			st = conn_feed(cl->c, NULL, 0, clock_mono());
	}
	atomic_store_explicit(&cl->active, clock_mono(), memory_order_relaxed);
	atomic_store_explicit(&cl->waiting, st == CONN_REQUEST, memory_order_relaxed);
	atomic_store_explicit(&cl->busy, 0, memory_order_relaxed);
	if (st == CONN_CLOSE || arm(cl, EPOLL_CTL_MOD, st) != 0)
		client_close(cl);
}

/* Shuts down the connections past their deadline: the worker that gets the event that
 * follows closes them, so the timer never frees what a worker holds. */
static void
sweep(void)
{
	static atomic_uint tick;
	int64_t now = clock_mono();
	uint64_t ticks;

	if (atomic_fetch_add(&tick, 1) % 4 == 0 && ops->tick)
		ops->tick();

	if (read(srv.timer_fd, &ticks, sizeof(ticks)) < 0) {
		/* Another worker took the tick: nothing to do twice. */
	}
	pthread_mutex_lock(&srv.mu);
	for (struct loop_client *cl = srv.all; cl; cl = cl->next) {
		int64_t d = conn_deadline(cl->c);
		if (idle(cl) && now - atomic_load_explicit(&cl->active, memory_order_relaxed) >=
		    LOOP_IDLE_US) {
			/* Longer than web servers keep an idle upstream connection (nginx: 60 s),
			 * so it is they who close theirs; a client that only holds one goes. */
			cl->swept = 1;
			shutdown(conn_fd(cl->c), SHUT_RDWR);
			continue;
		}
		if (atomic_load_explicit(&cl->waiting, memory_order_relaxed) && !cl->swept &&
		    !atomic_load_explicit(&cl->busy, memory_order_relaxed) &&
		    !atomic_load_explicit(&cl->detached, memory_order_relaxed) &&
		    now - atomic_load_explicit(&cl->active, memory_order_relaxed) >=
		    CONN_WRITE_DEADLINE_US) {
			/* Its socket was full when its turn ended, and no answer is taken since. */
			cl->swept = 1;
			shutdown(conn_fd(cl->c), SHUT_RDWR);
			logline("closed a FastCGI connection: it sent requests ahead and took no "
			    "answer for %d s", CONN_WRITE_DEADLINE_US / 1000000);
			continue;
		}
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
	void *w = NULL;
	struct epoll_event ev;
	int stop = 0;

	(void)arg;
	if (ops->thread_init && ops->thread_init(&w) != 0) {
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
			serve_conn(w, ev.data.ptr, ev.events);
		}
	}
	if (ops->thread_free)
		ops->thread_free(w);
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

static int raise_nofile(void);

/* The epoll set, the timer and the stop pipe; the workers; then the orderly end. */
int
loop_run(int listen_fd, int threads, const struct loop_ops *o)
{
	struct epoll_event lev = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &srv.listen_fd };
	struct epoll_event sev = { .events = EPOLLIN, .data.ptr = &srv.stop };
	pthread_t *tids;
	int started = 0;

	ops = o;
	srv.listen_fd = listen_fd;
	if (raise_nofile() != 0)
		logline("cannot raise the limit of open files: %s", strerror(errno));
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
	/* The program's own holders end (a stream's end record queued): flushed with the rest. */
	if (ops->stopping)
		ops->stopping();
	/* Answers still buffered get one more second, all together, to be taken. */
	int64_t until = clock_mono() + 1000000;
	while (srv.all) {
		struct loop_client *cl = srv.all;
		struct pollfd pfd = { conn_fd(cl->c), POLLOUT, 0 };
		while (!cl->swept && conn_pending(cl->c) > 0 && clock_mono() < until &&
		    poll(&pfd, 1, (int)((until - clock_mono()) / 1000) + 1) > 0 &&
		    conn_flush(cl->c, clock_mono()) == CONN_FLUSH)
			;
		client_close(cl);
	}
	close(srv.timer_fd);
	close(srv.epfd);
	free(tids);
	return 0;
}

/* The connection, for the program to answer on. */
conn *
loop_conn(struct loop_client *cl)
{
	return cl->c;
}

/* Out of the epoll set, still in the registry (the sweep and shutdown find it). */
int
loop_detach(struct loop_client *cl)
{
	atomic_store_explicit(&cl->detached, 1, memory_order_relaxed);
	/* A stream begun by a pipelined request waits on nothing of the loop's. */
	atomic_store_explicit(&cl->waiting, 0, memory_order_relaxed);
	atomic_store_explicit(&cl->busy, 0, memory_order_relaxed);
	return epoll_ctl(srv.epfd, EPOLL_CTL_DEL, conn_fd(cl->c), NULL) == 0 ? 0 : errno;
}

/* Back in the epoll set, waiting for st. */
void
loop_give_back(struct loop_client *cl, enum conn_state st)
{
	atomic_store_explicit(&cl->active, clock_mono(), memory_order_relaxed);
	atomic_store_explicit(&cl->waiting, st == CONN_REQUEST, memory_order_relaxed);
	atomic_store_explicit(&cl->detached, 0, memory_order_relaxed);
	if (arm(cl, EPOLL_CTL_ADD, st) != 0)
		client_close(cl);
}

/* As many descriptors as the hard limit allows: each connection holds one. */
static int
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return errno;
	if (rl.rlim_cur == rl.rlim_max)
		return 0;
	rl.rlim_cur = rl.rlim_max;
	return setrlimit(RLIMIT_NOFILE, &rl) == 0 ? 0 : errno;
}

/* The program closes what it holds as the workers do. */
void
loop_close(struct loop_client *cl)
{
	client_close(cl);
}
