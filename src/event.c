/* One event loop for the CLI's waits: poll() over a few descriptors, timers on the
 * monotonic clock, and the store-change watch as one descriptor plus one timer. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>

#include "lmtasks/clock.h"
#include "lmtasks/event.h"
#include "lmtasks/watch.h"

struct fd_entry {
	event_fd_fn *fn;	/* NULL: removed, its slot freed at the next turn */
	void *ctx;
};

struct timer {
	uint64_t id;
	int64_t at;		/* clock_mono() µs */
	event_timer_fn *fn;	/* NULL: removed, freed at the next turn */
	void *ctx;
	struct timer *next;
};

struct event_loop {
	struct pollfd *pfds;	/* poll()'s array, and beside it ... */
	struct fd_entry *fds;	/* ... each descriptor's callback, at the same index */
	size_t nfds, cap;
	struct timer *timers;
	uint64_t next_id;
	int stop;
	/* The store-change watch. */
	struct watch w;
	event_change_fn *change;	/* NULL: no watch */
	void *change_ctx;
	int64_t poll_us;
	uint64_t watch_timer;
};

int
event_new(event_loop **out)
{
	event_loop *el = calloc(1, sizeof(*el));

	if (el == NULL)
		return ENOMEM;
	el->next_id = 1;
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
	for (struct timer *t = el->timers, *next; t; t = next) {
		next = t->next;
		free(t);
	}
	free(el->pfds);
	free(el->fds);
	free(el);
}

/* Returns fd's index, or nfds when it has no live entry. */
static size_t
fd_index(const event_loop *el, int fd)
{
	size_t i;

	for (i = 0; i < el->nfds; i++)
		if (el->pfds[i].fd == fd && el->fds[i].fn != NULL)
			break;
	return i;
}

int
event_fd_add(event_loop *el, int fd, unsigned what, event_fd_fn *fn, void *ctx)
{
	if (fd_index(el, fd) < el->nfds)
		return EEXIST;
	if (el->nfds == el->cap) {
		size_t cap = el->cap ? el->cap * 2 : 4;
		struct pollfd *p = realloc(el->pfds, cap * sizeof(*p));
		if (p == NULL)
			return ENOMEM;
		el->pfds = p;
		struct fd_entry *f = realloc(el->fds, cap * sizeof(*f));
		if (f == NULL)
			return ENOMEM;
		el->fds = f;
		el->cap = cap;
	}
	el->pfds[el->nfds] = (struct pollfd){ fd, (short)((what & EVENT_READ ? POLLIN : 0) |
	    (what & EVENT_WRITE ? POLLOUT : 0)), 0 };
	el->fds[el->nfds++] = (struct fd_entry){ fn, ctx };
	return 0;
}

/* Marked only: the turn running may still hold the index; poll() passes over fd -1. */
void
event_fd_del(event_loop *el, int fd)
{
	size_t i = fd_index(el, fd);

	if (i < el->nfds) {
		el->fds[i].fn = NULL;
		el->pfds[i].fd = -1;
	}
}

int
event_timer_add(event_loop *el, int64_t after_us, event_timer_fn *fn, void *ctx,
    uint64_t *id)
{
	struct timer *t = malloc(sizeof(*t));

	if (t == NULL)
		return ENOMEM;
	*t = (struct timer){ el->next_id++, clock_mono() + after_us, fn, ctx, el->timers };
	el->timers = t;
	if (id)
		*id = t->id;
	return 0;
}

static struct timer *
timer_find(event_loop *el, uint64_t id)
{
	for (struct timer *t = el->timers; t; t = t->next)
		if (t->id == id && t->fn != NULL)
			return t;
	return NULL;
}

int
event_timer_move(event_loop *el, uint64_t id, int64_t after_us)
{
	struct timer *t = timer_find(el, id);

	if (t == NULL)
		return ENOENT;
	t->at = clock_mono() + after_us;
	return 0;
}

void
event_timer_del(event_loop *el, uint64_t id)
{
	struct timer *t = timer_find(el, id);

	if (t)
		t->fn = NULL;
}

void
event_stop(event_loop *el)
{
	el->stop = 1;
}

/* Frees what callbacks removed: only between turns, when no index or pointer is held. */
static void
sweep(event_loop *el)
{
	size_t j = 0;

	for (struct timer **tp = &el->timers; *tp;) {
		struct timer *t = *tp;
		if (t->fn == NULL) {
			*tp = t->next;
			free(t);
		} else {
			tp = &t->next;
		}
	}
	for (size_t i = 0; i < el->nfds; i++) {
		if (el->fds[i].fn == NULL)
			continue;
		el->pfds[j] = el->pfds[i];
		el->fds[j++] = el->fds[i];
	}
	el->nfds = j;
}

/* poll()'s timeout: until the soonest timer, rounded up so that it is due on waking. */
static int
timeout_ms(const event_loop *el)
{
	int64_t soonest = INT64_MAX, now, ms;

	for (const struct timer *t = el->timers; t; t = t->next)
		if (t->fn != NULL && t->at < soonest)
			soonest = t->at;
	if (soonest == INT64_MAX)
		return -1;
	if (soonest <= (now = clock_mono()))
		return 0;
	ms = (soonest - now + 999) / 1000;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

static void
run_fds(event_loop *el)
{
	for (size_t i = 0; i < el->nfds && !el->stop; i++) {
		short re = el->pfds[i].revents;
		if (re == 0 || el->fds[i].fn == NULL)
			continue;
		el->pfds[i].revents = 0;
		unsigned what = (re & (POLLIN | POLLERR | POLLHUP | POLLNVAL) ? EVENT_READ : 0) |
		    (re & (POLLOUT | POLLERR | POLLHUP | POLLNVAL) ? EVENT_WRITE : 0);
		unsigned want = (el->pfds[i].events & POLLIN ? EVENT_READ : 0) |
		    (el->pfds[i].events & POLLOUT ? EVENT_WRITE : 0);
		el->fds[i].fn(el, el->pfds[i].fd, what & want, el->fds[i].ctx);
	}
}

/* Runs the timers due; one added by a callback waits for the next turn. */
static void
run_timers(event_loop *el)
{
	uint64_t newest = el->next_id;
	int64_t now = clock_mono();

	for (struct timer *t = el->timers; t && !el->stop; t = t->next) {
		if (t->fn == NULL || t->id >= newest || t->at > now)
			continue;
		int64_t again = t->fn(el, t->ctx);
		if (t->fn == NULL)
			continue;	/* it removed itself */
		if (again == EVENT_NOMORE)
			t->fn = NULL;
		else
			t->at = clock_mono() + again;
	}
}

int
event_once(event_loop *el)
{
	sweep(el);
	if (poll(el->pfds, (nfds_t)el->nfds, timeout_ms(el)) < 0)
		return errno;
	run_fds(el);
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
	return (el->w.recheck > 0 ? WATCH_RECHECK_MS : WATCH_LOST_MS) * INT64_C(1000);
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

int
event_watch_notified(const event_loop *el)
{
	return el->w.fd >= 0;
}
