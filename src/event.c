/* One event loop in the manner of redis's ae.c: epoll for the descriptors, a binary
 * min-heap of timers on the monotonic clock, and the store-change watch as one descriptor
 * plus one timer. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "lmtasks/clock.h"
#include "lmtasks/event.h"
#include "lmtasks/watch.h"

/* Events taken from the kernel in one turn: more wait for the next (epoll hands them out
 * in turn, so a busy descriptor does not starve the rest). */
#define BATCH 64

/* A descriptor's entry, at its number in fds[]. */
struct fd_entry {
	event_fd_fn *fn;	/* NULL: no entry */
	void *ctx;
	unsigned what;		/* EVENT_READ | EVENT_WRITE it waits for; 0: none, not in epoll */
	unsigned exclusive;	/* added with EPOLLEXCLUSIVE, which epoll cannot modify */
};

#define UNQUEUED SIZE_MAX

/* A timer, in a slot of timers[] that stays its own while it lives (the heap moves the
 * slot's number, not the timer).  Its id is (seq << 32 | slot): a slot used again has
 * another id, so an old id finds nothing. */
struct timer {
	uint64_t id;		/* 0: a free slot */
	uint64_t seq;		/* of timers due at once, the older runs first */
	int64_t at;		/* clock_mono() µs */
	event_timer_fn *fn;
	void *ctx;
	size_t pos;		/* its index in heap[]; UNQUEUED while due or running; for a
				 * free slot, the next free one */
};

struct event_loop {
	int epfd;
	struct fd_entry *fds;	/* by descriptor number */
	size_t nfds;
	struct epoll_event fired[BATCH];
	struct timer *timers;
	size_t *heap;		/* slots, soonest first (heap order) */
	uint64_t *due;		/* ids of the timers run this turn */
	size_t ntimers, nheap, free_slot;
	uint64_t seq;
	int64_t now;		/* clock_mono() when this turn's events were taken */
	int stop;
	/* The store-change watch. */
	struct watch w;
	event_change_fn *change;	/* NULL: no watch */
	void *change_ctx;
	int64_t poll_us;
	int64_t lost_us;	/* the safety net's period (event_watch_lost()) */
	uint64_t watch_timer;
};

int
event_new(event_loop **out)
{
	event_loop *el = calloc(1, sizeof(*el));

	if (el == NULL)
		return ENOMEM;
	if ((el->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		int rc = errno;
		free(el);
		return rc;
	}
	el->free_slot = UNQUEUED;
	el->w.fd = -1;
	*out = el;
	return 0;
}

void
event_free(event_loop *el)
{
	if (el == NULL)
		return;
	watch_close(&el->w);
	close(el->epfd);
	free(el->fds);
	free(el->timers);
	free(el->heap);
	free(el->due);
	free(el);
}

/* ---- descriptors ---- */

static struct fd_entry *
fd_entry(const event_loop *el, int fd)
{
	return fd >= 0 && (size_t)fd < el->nfds && el->fds[fd].fn != NULL ? &el->fds[fd] : NULL;
}

/* Tells epoll that fe waits for what now, adding or removing it as need be. */
static int
fd_apply(event_loop *el, int fd, struct fd_entry *fe, unsigned what)
{
	struct epoll_event ev = { .events = (what & EVENT_READ ? EPOLLIN : 0) |
	    (what & EVENT_WRITE ? EPOLLOUT : 0) | (fe->exclusive ? EPOLLEXCLUSIVE : 0),
	    .data.fd = fd };
	int op = fe->what == 0 ? EPOLL_CTL_ADD : what == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;

	/* EPOLLEXCLUSIVE cannot be modified: removed and added again instead. */
	if (op == EPOLL_CTL_MOD && fe->exclusive) {
		if (epoll_ctl(el->epfd, EPOLL_CTL_DEL, fd, NULL) != 0)
			return errno;
		fe->what = 0;
		op = EPOLL_CTL_ADD;
	}
	if (epoll_ctl(el->epfd, op, fd, &ev) != 0)
		return errno;
	fe->what = what;
	return 0;
}

int
event_fd_add(event_loop *el, int fd, unsigned what, event_fd_fn *fn, void *ctx)
{
	struct fd_entry *fe;
	int rc;

	if (fd < 0)
		return EBADF;
	if (fd_entry(el, fd) != NULL)
		return EEXIST;
	if ((size_t)fd >= el->nfds) {
		size_t n = el->nfds ? el->nfds : 16;
		while (n <= (size_t)fd)
			n *= 2;
		fe = realloc(el->fds, n * sizeof(*fe));
		if (fe == NULL)
			return ENOMEM;
		memset(fe + el->nfds, 0, (n - el->nfds) * sizeof(*fe));
		el->fds = fe;
		el->nfds = n;
	}
	fe = &el->fds[fd];
	*fe = (struct fd_entry){ NULL, ctx, 0, (what & EVENT_EXCLUSIVE) != 0 };
	what &= EVENT_READ | EVENT_WRITE;
	if (what != 0 && (rc = fd_apply(el, fd, fe, what)) != 0)
		return rc;
	fe->fn = fn;
	return 0;
}

int
event_fd_mod(event_loop *el, int fd, unsigned what)
{
	struct fd_entry *fe = fd_entry(el, fd);

	if (fe == NULL)
		return ENOENT;
	what &= EVENT_READ | EVENT_WRITE;
	return what == fe->what ? 0 : fd_apply(el, fd, fe, what);
}

/* The turn running may still hold an event of fd: its entry is gone, so it is passed over. */
void
event_fd_del(event_loop *el, int fd)
{
	struct fd_entry *fe = fd_entry(el, fd);

	if (fe == NULL)
		return;
	if (fe->what != 0)
		epoll_ctl(el->epfd, EPOLL_CTL_DEL, fd, NULL);
	*fe = (struct fd_entry){ 0 };
}

/* ---- timers: a binary min-heap of slots ---- */

static int
sooner(const event_loop *el, size_t a, size_t b)
{
	const struct timer *x = &el->timers[a], *y = &el->timers[b];

	return x->at < y->at || (x->at == y->at && x->seq < y->seq);
}

static void
heap_put(event_loop *el, size_t i, size_t slot)
{
	el->heap[i] = slot;
	el->timers[slot].pos = i;
}

static void
sift_up(event_loop *el, size_t i)
{
	size_t slot = el->heap[i];

	while (i > 0 && sooner(el, slot, el->heap[(i - 1) / 2])) {
		heap_put(el, i, el->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_put(el, i, slot);
}

static void
sift_down(event_loop *el, size_t i)
{
	size_t slot = el->heap[i], c;

	while ((c = 2 * i + 1) < el->nheap) {
		if (c + 1 < el->nheap && sooner(el, el->heap[c + 1], el->heap[c]))
			c++;
		if (!sooner(el, el->heap[c], slot))
			break;
		heap_put(el, i, el->heap[c]);
		i = c;
	}
	heap_put(el, i, slot);
}

/* heap[] has room for every slot: a timer is in it once at most. */
static void
heap_push(event_loop *el, size_t slot)
{
	heap_put(el, el->nheap++, slot);
	sift_up(el, el->nheap - 1);
}

static void
heap_remove(event_loop *el, size_t slot)
{
	size_t i = el->timers[slot].pos, last = el->heap[--el->nheap];

	el->timers[slot].pos = UNQUEUED;
	if (i == el->nheap)
		return;
	heap_put(el, i, last);
	sift_up(el, i);
	sift_down(el, el->timers[last].pos);
}

/* Puts a live timer where its at says: in the heap, or moved in it. */
static void
heap_place(event_loop *el, size_t slot)
{
	if (el->timers[slot].pos == UNQUEUED) {
		heap_push(el, slot);
	} else {
		sift_up(el, el->timers[slot].pos);
		sift_down(el, el->timers[slot].pos);
	}
}

/* Doubles the slots (and the heap and due lists beside them). */
static int
timers_grow(event_loop *el)
{
	size_t n = el->ntimers ? el->ntimers * 2 : 8;
	struct timer *t = realloc(el->timers, n * sizeof(*t));

	if (t == NULL)
		return ENOMEM;
	el->timers = t;
	size_t *h = realloc(el->heap, n * sizeof(*h));
	if (h == NULL)
		return ENOMEM;
	el->heap = h;
	uint64_t *d = realloc(el->due, n * sizeof(*d));
	if (d == NULL)
		return ENOMEM;
	el->due = d;
	for (size_t i = n; i-- > el->ntimers;) {
		t[i] = (struct timer){ .pos = el->free_slot };
		el->free_slot = i;
	}
	el->ntimers = n;
	return 0;
}

/* Returns the slot of timer id, or UNQUEUED when it has ended. */
static size_t
timer_slot(const event_loop *el, uint64_t id)
{
	size_t slot = (size_t)(id & UINT32_MAX);

	return id != 0 && slot < el->ntimers && el->timers[slot].id == id ? slot : UNQUEUED;
}

static void
timer_free(event_loop *el, size_t slot)
{
	if (el->timers[slot].pos != UNQUEUED)
		heap_remove(el, slot);
	el->timers[slot] = (struct timer){ .pos = el->free_slot };
	el->free_slot = slot;
}

int
event_timer_add(event_loop *el, int64_t after_us, event_timer_fn *fn, void *ctx,
    uint64_t *id)
{
	size_t slot;

	if (el->free_slot == UNQUEUED && timers_grow(el) != 0)
		return ENOMEM;
	slot = el->free_slot;
	el->free_slot = el->timers[slot].pos;
	if (++el->seq << 32 == 0)
		el->seq++;	/* wrapped: no id is 0 */
	el->timers[slot] = (struct timer){ el->seq << 32 | slot, el->seq, clock_mono() + after_us,
	    fn, ctx, UNQUEUED };
	heap_push(el, slot);
	if (id)
		*id = el->timers[slot].id;
	return 0;
}

int
event_timer_move(event_loop *el, uint64_t id, int64_t after_us)
{
	size_t slot = timer_slot(el, id);

	if (slot == UNQUEUED)
		return ENOENT;
	el->timers[slot].at = clock_mono() + after_us;
	heap_place(el, slot);
	return 0;
}

void
event_timer_del(event_loop *el, uint64_t id)
{
	size_t slot = timer_slot(el, id);

	if (slot != UNQUEUED)
		timer_free(el, slot);
}

/* ---- the turn ---- */

int64_t
event_now(const event_loop *el)
{
	return el->now;
}

void
event_stop(event_loop *el)
{
	el->stop = 1;
}

/* epoll_wait()'s timeout: until the soonest timer, rounded up so that it is due on waking. */
static int
timeout_ms(const event_loop *el)
{
	int64_t now, ms;

	if (el->nheap == 0)
		return -1;
	if (el->timers[el->heap[0]].at <= (now = clock_mono()))
		return 0;
	ms = (el->timers[el->heap[0]].at - now + 999) / 1000;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

static void
run_fds(event_loop *el, int n)
{
	for (int i = 0; i < n && !el->stop; i++) {
		int fd = el->fired[i].data.fd;
		uint32_t re = el->fired[i].events;
		struct fd_entry *fe = fd_entry(el, fd);
		if (fe == NULL)
			continue;	/* removed by a callback of this turn */
		unsigned what = ((re & (EPOLLIN | EPOLLERR | EPOLLHUP) ? EVENT_READ : 0) |
		    (re & (EPOLLOUT | EPOLLERR | EPOLLHUP) ? EVENT_WRITE : 0)) & fe->what;
		if (what != 0)
			fe->fn(el, fd, what, fe->ctx);
	}
}

/* Runs the timers due now, taken out of the heap first: one that a callback adds or moves
 * goes back into it and waits for the next turn, so none runs twice in a turn. */
static void
run_timers(event_loop *el)
{
	size_t n = 0;

	while (el->nheap > 0 && el->timers[el->heap[0]].at <= el->now) {
		size_t slot = el->heap[0];
		el->due[n++] = el->timers[slot].id;
		heap_remove(el, slot);
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t id = el->due[i];
		size_t slot = timer_slot(el, id);
		/* Removed, or moved back into the heap, by a callback before it. */
		if (slot == UNQUEUED || el->timers[slot].pos != UNQUEUED)
			continue;
		if (el->stop) {
			heap_push(el, slot);	/* due still: first at the next turn */
			continue;
		}
		int64_t again = el->timers[slot].fn(el, el->timers[slot].ctx);
		if ((slot = timer_slot(el, id)) == UNQUEUED)
			continue;	/* it removed itself */
		if (again == EVENT_NOMORE) {
			timer_free(el, slot);
		} else {
			el->timers[slot].at = clock_mono() + again;
			heap_place(el, slot);
		}
	}
}

int
event_once(event_loop *el)
{
	int n = epoll_wait(el->epfd, el->fired, BATCH, timeout_ms(el));

	if (n < 0)
		return errno;
	/* One reading of the clock serves the turn: a timer that falls due while the
	 * descriptors' callbacks run waits for the next turn, which does not wait. */
	el->now = clock_mono();
	run_fds(el, n);
	if (!el->stop)
		run_timers(el);
	return 0;
}

int
event_run(event_loop *el)
{
	int rc = 0;

	el->stop = 0;
	while (!el->stop && (rc = event_once(el)) == 0)
		;
	return rc;
}
/* ---- the store-change watch ---- */

/* How soon to look again: shortly after an event, else a safety net or the poll. */
static int64_t
watch_next(const event_loop *el)
{
	if (el->w.fd < 0)
		return el->poll_us > 0 ? el->poll_us : EVENT_NOMORE;
	return el->w.recheck > 0 ? WATCH_RECHECK_MS * INT64_C(1000) : el->lost_us;
}

/* Every look reads the store again, an event or not: that is what the timer is for. */
static int64_t
watch_tick(event_loop *el, void *ctx)
{
	(void)ctx;
	watch_drain(&el->w);	/* counts a re-check down */
	el->change(el, el->change_ctx);
	return watch_next(el);
}

static void
watch_ready(event_loop *el, int fd, unsigned what, void *ctx)
{
	(void)fd;
	(void)what;
	(void)ctx;
	watch_drain(&el->w);	/* starts the re-checks */
	el->change(el, el->change_ctx);
	event_timer_move(el, el->watch_timer, watch_next(el));
}

int
event_watch(event_loop *el, const char *path, int64_t poll_us, event_change_fn *fn, void *ctx)
{
	int64_t first;
	int rc;

	if (el->change != NULL)
		return EEXIST;
	watch_open(&el->w, path);
	el->change = fn;
	el->change_ctx = ctx;
	el->poll_us = poll_us;
	if (el->lost_us == 0)
		el->lost_us = WATCH_LOST_MS * INT64_C(1000);
	if (el->w.fd >= 0 && (rc = event_fd_add(el, el->w.fd, EVENT_READ, watch_ready, NULL)) != 0)
		goto fail;
	if ((first = watch_next(el)) != EVENT_NOMORE &&
	    (rc = event_timer_add(el, first, watch_tick, NULL, &el->watch_timer)) != 0)
		goto fail;
	return 0;
fail:
	event_fd_del(el, el->w.fd);
	watch_close(&el->w);
	el->change = NULL;
	return rc;
}

void
event_watch_lost(event_loop *el, int64_t us)
{
	el->lost_us = us;
	if (el->change != NULL && el->w.fd >= 0 && el->w.recheck == 0)
		event_timer_move(el, el->watch_timer, us);
}

int
event_watch_notified(const event_loop *el)
{
	return el->w.fd >= 0;
}
