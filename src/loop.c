/* The FastCGI server loop (see loop.h), shared by the responder and the writer. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lmtasks/clock.h"
#include "lmtasks/conn.h"
#include "lmtasks/event.h"
#include "lmtasks/log.h"
#include "lmtasks/loop.h"

#define SWEEP_US 250000	/* how often deadlines are looked at */
#define ACCEPT_BACKOFF_US 100000	/* out of descriptors with none to shed: accept later */
/* Idle connections shut down at once when accept finds no descriptor left. */
#define SHED_AT_ONCE 16

struct worker;

/* A connection in the registry, which lets the timer find overdue ones and shutdown
 * close the rest.  swept: shut down already (by the timer, or shed); busy: a worker serves
 * it now; waiting: a whole request of it waits for its next turn; detached: a thread
 * of the program's holds it (a stream), so it is never idle; active: when a worker last
 * served it (monotonic µs), for the idle limit and for shedding the longest idle first.
 * owner: the worker whose loop it is in (the one that accepted it); back, back_st: its
 * place in the owner's list of connections given back, and what it waits for then. */
struct loop_client {
	conn *c;
	struct worker *owner;
	int swept;
	_Atomic int busy;
	_Atomic int waiting;
	_Atomic int detached;
	_Atomic int64_t active;
	struct loop_client *prev, *next;
	struct loop_client *back;
	enum conn_state back_st;
};

/* A worker thread and its own event loop: the listening socket (EPOLLEXCLUSIVE: a new
 * connection wakes one worker), the stop pipe, its wake-up for connections given back,
 * the deadline timer, and the connections it accepted. */
struct worker {
	event_loop *el;
	void *ctx;		/* the program's (ops->thread_init) */
	pthread_t tid;
	int wake;		/* an eventfd: connections wait in back */
	int stop;
	pthread_mutex_t mu;	/* guards back */
	struct loop_client *back;
};

static struct {
	int listen_fd;
	int stop[2];		/* a byte here wakes every worker to leave */
	pthread_mutex_t mu;	/* guards the registry */
	struct loop_client *all;
	_Atomic int64_t swept_at;	/* the last sweep, by whichever worker */
	int64_t sweep_every;	/* each worker's sweep timer: SWEEP_US times the workers */
	int64_t sweep_from;	/* when the timetable of sweeps starts (monotonic µs) */
	atomic_uint sweeps;
	struct worker *workers;	/* the ones running (nworkers; 0 until all started) */
	_Atomic int nworkers;
	atomic_uint next_worker;	/* the round of new connections */
} srv = { -1, { -1, -1 }, PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0, 0, 0, NULL, 0, 0 };

/* The program's callbacks, fixed by loop_run. */
static const struct loop_ops *ops;

#define logline(...) log_line(ops->name, __VA_ARGS__)

static struct loop_client *
client_new(int fd, struct worker *owner)
{
	struct loop_client *cl = calloc(1, sizeof(*cl));

	if (cl == NULL || conn_new(fd, clock_mono(), &cl->c) != 0) {
		free(cl);
		return NULL;
	}
	cl->owner = owner;
	atomic_store_explicit(&cl->active, clock_mono(), memory_order_relaxed);
	pthread_mutex_lock(&srv.mu);
	cl->next = srv.all;
	if (srv.all)
		srv.all->prev = cl;
	srv.all = cl;
	pthread_mutex_unlock(&srv.mu);
	return cl;
}

/* Leaves the registry first, so the timer never touches a closed descriptor.  cl is in
 * no event loop any more (drop() takes it out of its owner's). */
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

/* Closes a connection of the calling worker's loop. */
static void
drop(struct loop_client *cl)
{
	event_fd_del(cl->owner->el, conn_fd(cl->c));
	client_close(cl);
}

/* What the connection waits for next: reading, or writing while output is left.  A whole
 * request already read waits for writing too: the socket is writable at once, unless its
 * peer leaves answers untaken, and the event comes behind those of the connections ready
 * before. */
static unsigned
wanted(enum conn_state st)
{
	return st == CONN_FLUSH || st == CONN_REQUEST ? EVENT_WRITE : EVENT_READ;
}

static void on_conn(event_loop *el, int fd, unsigned what, void *arg);

/* Puts cl in its owner's loop, waiting for st (the calling thread is the owner). */
static int
arm(struct loop_client *cl, enum conn_state st)
{
	return event_fd_add(cl->owner->el, conn_fd(cl->c), wanted(st), on_conn, cl);
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

/* The listening socket waits for reading again after a back-off. */
static int64_t
accept_again(event_loop *el, void *arg)
{
	(void)arg;
	event_fd_mod(el, srv.listen_fd, EVENT_READ);
	return EVENT_NOMORE;
}

static void hand_to(struct worker *wk, struct loop_client *cl, enum conn_state st);

/* The worker a new connection goes to: the workers in turn.  The kernel wakes the first
 * worker waiting on the listening socket (EPOLLEXCLUSIVE), so the one that accepts is
 * most often the same; dealt in turn, nginx's kept connections spread over them all and
 * a slow answer holds up only its own worker's share. */
static struct worker *
next_worker(struct worker *self)
{
	int n = atomic_load_explicit(&srv.nworkers, memory_order_acquire);

	if (n <= 1)
		return self;
	return &srv.workers[atomic_fetch_add_explicit(&srv.next_worker, 1,
	    memory_order_relaxed) % (unsigned)n];
}

/* The listening socket is ready: every connection waiting is accepted and dealt to the
 * workers in turn, this one's into its loop, another's through its wake-up. */
static void
on_accept(event_loop *el, int lfd, unsigned what, void *arg)
{
	struct worker *wk = arg;
	int fd;

	(void)what;
	while ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
		struct worker *to = next_worker(wk);
		struct loop_client *cl = client_new(fd, to);
		if (cl == NULL) {
			close(fd);
			continue;
		}
		if (to != wk)
			hand_to(to, cl, CONN_MORE);
		else if (arm(cl, CONN_MORE) != 0)
			client_close(cl);
	}
	if (errno == EMFILE || errno == ENFILE) {
		int n = shed_idle();
		logline("accept: %s; %d idle connections closed to make room", strerror(errno), n);
		if (n > 0)
			return;
	}
	/* Nothing to shed: this worker backs off instead of spinning. */
	if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED &&
	    event_timer_add(el, ACCEPT_BACKOFF_US, accept_again, NULL, NULL) == 0)
		event_fd_mod(el, lfd, 0);
}

/* One readiness event of a connection: read (or write), answer what is whole, up to
 * LOOP_TURN_REQUESTS of them, and wait for what comes next. */
static void
on_conn(event_loop *el, int fd, unsigned what, void *arg)
{
	struct loop_client *cl = arg;

	/* The turn's time: deadlines and the idle limit count in seconds. */
	int64_t now = event_now(el);

	atomic_store_explicit(&cl->busy, 1, memory_order_relaxed);
	enum conn_state st = what & EVENT_WRITE ? conn_flush(cl->c, now) : conn_read(cl->c, now);

	for (int turn = 0; st == CONN_REQUEST && turn < LOOP_TURN_REQUESTS; turn++) {
		int taken = 0;
		st = ops->answer(cl->owner->ctx, cl, &taken);
		/* The program holds it from now on, and may have closed it already: cl is
		 * not touched again (loop_detach marked it not busy). */
		if (taken)
			return;
		if (st == CONN_MORE)	/* a request sent early, already read */
			st = conn_feed(cl->c, NULL, 0, clock_mono());
	}
	atomic_store_explicit(&cl->active, now, memory_order_relaxed);
	atomic_store_explicit(&cl->waiting, st == CONN_REQUEST, memory_order_relaxed);
	atomic_store_explicit(&cl->busy, 0, memory_order_relaxed);
	if (st == CONN_CLOSE || event_fd_mod(el, fd, wanted(st)) != 0)
		drop(cl);
}

/* Shuts down the connections past their deadline: the worker that gets the event that
 * follows closes them, so the timer never frees what a worker holds. */
static void
sweep(int64_t now)
{
	if (atomic_fetch_add(&srv.sweeps, 1) % 4 == 0 && ops->tick)
		ops->tick();

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
		/* A detached one's deadline is its holder's (a stream's: stream_io.c). */
		if (d == 0 || d > now || cl->swept ||
		    atomic_load_explicit(&cl->detached, memory_order_relaxed))
			continue;
		cl->swept = 1;
		shutdown(conn_fd(cl->c), SHUT_RDWR);
		logline("closed a FastCGI connection: its request was not whole within %d s, or "
		    "its answer not taken", CONN_DEADLINE_US / 1000000);
	}
	pthread_mutex_unlock(&srv.mu);
}

/* Every worker has this timer, their turns on one timetable: worker i's at sweep_from +
 * (i + 1) SWEEP_US + k sweep_every, so one sweeps for all each SWEEP_US, a busy worker
 * delays the others' turns not at all (one that comes late to its turn finds the sweep
 * done), and a late turn does not move the next (the turns never drift together). */
static int64_t
on_sweep(event_loop *el, void *arg)
{
	int64_t now = clock_mono(), last = atomic_load(&srv.swept_at);
	int64_t at = srv.sweep_from + ((int64_t)(intptr_t)arg + 1) * SWEEP_US;

	(void)el;
	if (now - last >= SWEEP_US / 2 &&
	    atomic_compare_exchange_strong(&srv.swept_at, &last, now))
		sweep(now);
	/* The next turn of this worker's after now. */
	if (now < at)
		return at - now;
	return at + ((now - at) / srv.sweep_every + 1) * srv.sweep_every - now;
}

/* The stop pipe has a byte: it stays there, and wakes every worker. */
static void
on_stop(event_loop *el, int fd, unsigned what, void *arg)
{
	struct worker *wk = arg;

	(void)fd;
	(void)what;
	wk->stop = 1;
	event_stop(el);
}

/* Connections the program gave back (loop_give_back, from its own thread) go back into
 * this worker's loop. */
static void
on_wake(event_loop *el, int fd, unsigned what, void *arg)
{
	struct worker *wk = arg;
	struct loop_client *cl;
	uint64_t n;

	(void)el;
	(void)what;
	if (read(fd, &n, sizeof(n)) < 0) {
		/* Another wake-up took it: the list is what counts. */
	}
	pthread_mutex_lock(&wk->mu);
	cl = wk->back;
	wk->back = NULL;
	pthread_mutex_unlock(&wk->mu);
	while (cl) {
		struct loop_client *next = cl->back;
		if (arm(cl, cl->back_st) != 0)
			client_close(cl);
		cl = next;
	}
}

static void on_signal(int sig);

/* Each worker runs its own loop until the stop pipe says to leave. */
static void *
worker(void *arg)
{
	struct worker *wk = arg;
	int rc;

	if (ops->thread_init && ops->thread_init(&wk->ctx) != 0) {
		logline("out of memory starting a worker");
		return NULL;
	}
	while (!wk->stop) {
		if ((rc = event_once(wk->el)) != 0 && rc != EINTR) {
			/* Its connections are in no other loop: the whole server stops in order
			 * (as at SIGTERM) rather than leave them unserved. */
			logline("event loop: %s; stopping", strerror(rc));
			on_signal(SIGTERM);
			break;
		}
	}
	if (ops->thread_free)
		ops->thread_free(wk->ctx);
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

/* A worker's loop and its wake-up, the listening socket, stop pipe and timer in it (the
 * i-th worker's first sweep at i + 1 SWEEP_US). */
static int
worker_init(struct worker *wk, int i)
{
	int rc;

	*wk = (struct worker){ .wake = -1 };
	pthread_mutex_init(&wk->mu, NULL);
	if ((rc = event_new(&wk->el)) != 0)
		return rc;
	if ((wk->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
		return errno;
	if ((rc = event_fd_add(wk->el, srv.listen_fd, EVENT_READ | EVENT_EXCLUSIVE, on_accept,
	    wk)) != 0 || (rc = event_fd_add(wk->el, srv.stop[0], EVENT_READ, on_stop, wk)) != 0 ||
	    (rc = event_fd_add(wk->el, wk->wake, EVENT_READ, on_wake, wk)) != 0 ||
	    (rc = event_timer_add(wk->el, SWEEP_US * (i + 1), on_sweep, (void *)(intptr_t)i,
	    NULL)) != 0)
		return rc;
	return 0;
}

static void
worker_free(struct worker *wk)
{
	event_free(wk->el);
	if (wk->wake >= 0)
		close(wk->wake);
	pthread_mutex_destroy(&wk->mu);
}

/* The last answers' flush: each connection's output goes as its socket takes it; the
 * loop ends when none is left (flushing counts them). */
static size_t flushing;

static void
on_last_flush(event_loop *el, int fd, unsigned what, void *arg)
{
	struct loop_client *cl = arg;

	(void)what;
	if (conn_flush(cl->c, clock_mono()) == CONN_FLUSH)
		return;
	event_fd_del(el, fd);
	if (--flushing == 0)
		event_stop(el);
}

static int64_t
stop_now(event_loop *el, void *arg)
{
	(void)arg;
	event_stop(el);
	return EVENT_NOMORE;
}

/* Answers still buffered get until_us more, all together, to be taken; then every
 * connection is closed.  The workers have left: this thread alone holds them. */
static void
close_all(int64_t until_us)
{
	event_loop *el = NULL;

	flushing = 0;
	if (event_new(&el) == 0 && event_timer_add(el, until_us, stop_now, NULL, NULL) == 0) {
		for (struct loop_client *cl = srv.all; cl; cl = cl->next)
			if (!cl->swept && conn_pending(cl->c) > 0 &&
			    event_fd_add(el, conn_fd(cl->c), EVENT_WRITE, on_last_flush, cl) == 0)
				flushing++;
		if (flushing > 0)
			event_run(el);
	}
	event_free(el);
	while (srv.all)
		client_close(srv.all);
}

static int raise_nofile(void);

/* The workers, each with its loop, and the stop pipe; then the orderly end. */
int
loop_run(int listen_fd, int threads, const struct loop_ops *o)
{
	struct worker *wks;
	int made = 0, started = 0, rc = 0;

	ops = o;
	srv.listen_fd = listen_fd;
	atomic_store(&srv.swept_at, clock_mono());
	srv.sweep_from = clock_mono();
	srv.sweep_every = SWEEP_US * threads;
	if (raise_nofile() != 0)
		logline("cannot raise the limit of open files: %s", strerror(errno));
	fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK);
	fcntl(listen_fd, F_SETFD, FD_CLOEXEC);
	if ((wks = calloc((size_t)threads, sizeof(*wks))) == NULL)
		return 1;
	if (pipe2(srv.stop, O_CLOEXEC | O_NONBLOCK) != 0) {
		rc = errno;
	} else {
		for (; made < threads; made++)
			if ((rc = worker_init(&wks[made], made)) != 0) {
				worker_free(&wks[made]);
				break;
			}
	}
	if (rc != 0) {
		logline("cannot start: %s", strerror(rc));
		goto out;
	}
	/* SIGTERM and SIGINT write to the stop pipe, so it exists before they are caught. */
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	for (; started < threads; started++) {
		if (pthread_create(&wks[started].tid, NULL, worker, &wks[started]) != 0)
			break;
	}
	if (started == 0) {
		logline("cannot start a worker thread");
		rc = 1;
		goto out;
	}
	/* New connections are dealt to the workers that run (until now, each kept its own). */
	srv.workers = wks;
	atomic_store_explicit(&srv.nworkers, started, memory_order_release);
	/* SIGTERM: each worker finishes the request it is serving, sees the stop pipe, and
	 * leaves; then the idle connections are closed. */
	for (int i = 0; i < started; i++)
		pthread_join(wks[i].tid, NULL);
	atomic_store(&srv.nworkers, 0);
	/* The program's own holders end (a stream's end record queued): flushed with the rest. */
	if (ops->stopping)
		ops->stopping();
	close_all(1000000);
out:
	for (int i = 0; i < made; i++)
		worker_free(&wks[i]);
	free(wks);
	if (srv.stop[0] >= 0) {
		close(srv.stop[0]);
		close(srv.stop[1]);
		srv.stop[0] = srv.stop[1] = -1;
	}
	return rc != 0;
}

/* The connection, for the program to answer on. */
conn *
loop_conn(struct loop_client *cl)
{
	return cl->c;
}

/* Out of its worker's loop (the calling thread is that worker), still in the registry
 * (the sweep and shutdown find it). */
int
loop_detach(struct loop_client *cl)
{
	atomic_store_explicit(&cl->detached, 1, memory_order_relaxed);
	/* A stream begun by a pipelined request waits on nothing of the loop's. */
	atomic_store_explicit(&cl->waiting, 0, memory_order_relaxed);
	atomic_store_explicit(&cl->busy, 0, memory_order_relaxed);
	event_fd_del(cl->owner->el, conn_fd(cl->c));
	return 0;
}

/* Back to the worker it came from, waiting for st: that worker's loop takes it at its
 * wake-up (the calling thread is the program's own). */
void
loop_give_back(struct loop_client *cl, enum conn_state st)
{
	atomic_store_explicit(&cl->active, clock_mono(), memory_order_relaxed);
	atomic_store_explicit(&cl->waiting, st == CONN_REQUEST, memory_order_relaxed);
	atomic_store_explicit(&cl->detached, 0, memory_order_relaxed);
	hand_to(cl->owner, cl, st);
}

/* Puts cl (in no loop) in wk's list of connections to take, waiting for st, and wakes wk:
 * its loop arms it at its wake-up.  Any thread. */
static void
hand_to(struct worker *wk, struct loop_client *cl, enum conn_state st)
{
	uint64_t one = 1;

	pthread_mutex_lock(&wk->mu);
	cl->back_st = st;
	cl->back = wk->back;
	wk->back = cl;
	pthread_mutex_unlock(&wk->mu);
	if (write(wk->wake, &one, sizeof(one)) < 0) {
		/* The count is full: a wake-up is pending already. */
	}
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

/* The program closes what it holds as the workers do: a worker one of its own loop
 * (detached: the program's thread, the connection in no loop). */
void
loop_close(struct loop_client *cl)
{
	if (!atomic_load_explicit(&cl->detached, memory_order_relaxed))
		drop(cl);
	else
		client_close(cl);
}
