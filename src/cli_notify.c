/* notify's deliverer, lmtasks-notify's one command: the deliverer (deliver.h) posting
 * through libcurl's multi interface (notify.h), every webhook's POST under way at once,
 * on one event loop: a round at each change of the store and at each retry due, and
 * each POST's end as libcurl's sockets say.  It is the only CLI code that links libcurl
 * (and zlib). */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "cli.h"
#include "lmtasks/clock.h"
#include "lmtasks/deliver.h"
#include "lmtasks/event.h"
#include "lmtasks/notify.h"

#define EXIT_UNDELIVERED 5	/* notify --once: a receiver did not take its tasks */

static volatile sig_atomic_t stopping;

static void
on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

/* The daemon's state on its loop. */
struct notifier {
	deliverer *d;
	event_loop *el;
	int64_t interval;	/* --interval: a round at least this often */
	uint64_t timer;		/* the next round at the latest ... */
	int64_t due;		/* ... due then (clock_mono() µs); 0: no timer yet */
	int ret;		/* EXIT_DONE while it runs */
};

/* A store failure ends the run. */
static void
store_failed(struct notifier *n, int rc, const char *doing)
{
	n->ret = cli_store_failure(rc, doing);
	event_stop(n->el);
}

/* One round of deliveries begun; returns µs until the next is due at the latest. */
static int64_t
round_run(struct notifier *n)
{
	const char *doing;
	int64_t now = clock_mono();
	int rc = deliver_round(n->d, now, &doing);

	if (rc != 0) {
		store_failed(n, rc, doing);
		return EVENT_NOMORE;
	}
	now = clock_mono();
	n->due = deliver_next(n->d, now, now + n->interval);
	return n->due > now ? n->due - now : 0;
}

/* The store changed: a round now, and the round timer moved to what it says. */
static void
on_change(event_loop *el, void *ctx)
{
	struct notifier *n = ctx;
	int64_t next = round_run(n);

	if (next != EVENT_NOMORE && n->timer)
		event_timer_move(el, n->timer, next);
}

/* The round timer: a round at least every --interval, and when a retry is due. */
static int64_t
on_timer(event_loop *el, void *ctx)
{
	(void)el;
	return round_run(ctx);
}

/* A POST ended (notify_done_fn): the deliverer records it and may begin the next; the
 * round timer comes sooner when a retry is due before it. */
static void
on_done(void *ctx, uint64_t id, int ok, const char *why)
{
	struct notifier *n = ctx;
	const char *doing;
	int rc;

	if (n->ret != EXIT_DONE)
		return;
	if ((rc = deliver_done(n->d, id, ok, why, &doing)) != 0) {
		store_failed(n, rc, doing);
		return;
	}
	int64_t now = clock_mono(), wake = n->due ? deliver_next(n->d, now, n->due) : 0;
	if (n->timer && wake < n->due) {
		event_timer_move(n->el, n->timer, wake > now ? wake - now : 0);
		n->due = wake;
	}
}

/* Rounds until SIGTERM or SIGINT; an exit status.  POSTs under way are abandoned: their
 * cursors stay, and the next run sends those batches again. */
static int
run_daemon(struct notifier *n)
{
	event_loop *el = n->el;
	int rc = 0;

	/* Watched before the first round, so that no commit falls between the two; where
	 * inotify says nothing the rounds' own timer looks, every --interval. */
	if (event_watch(el, cli_db, 0, on_change, n) != 0)
		return cli_fail(EXIT_STORE, "out of memory");
	int64_t next = round_run(n);
	if (n->ret != EXIT_DONE)
		return n->ret;
	if (event_timer_add(el, next, on_timer, n, &n->timer) != 0)
		return cli_fail(EXIT_STORE, "out of memory");
	while (n->ret == EXIT_DONE && !stopping && ((rc = event_once(el)) == 0 || rc == EINTR))
		;
	if (n->ret == EXIT_DONE && rc != 0 && rc != EINTR)
		return cli_fail(EXIT_STORE, "notify: waiting for the store to change: %s",
		    strerror(rc));
	return n->ret;
}

/* --once: one round, every webhook, until no POST is under way; an exit status. */
static int
run_once(struct notifier *n)
{
	const char *doing;
	int rc = deliver_round(n->d, clock_mono(), &doing);

	if (rc != 0)
		return cli_store_failure(rc, doing);
	while (n->ret == EXIT_DONE && deliver_busy(n->d) > 0 && !stopping &&
	    ((rc = event_once(n->el)) == 0 || rc == EINTR))
		;
	if (n->ret == EXIT_DONE && rc != 0 && rc != EINTR)
		return cli_fail(EXIT_STORE, "notify: waiting for the receivers: %s", strerror(rc));
	if (n->ret != EXIT_DONE)
		return n->ret;
	return deliver_failures(n->d) || deliver_busy(n->d) ? EXIT_UNDELIVERED : EXIT_DONE;
}

/* --interval, --batch-size, --once; an exit status. */
static int
notify_parse(const struct cli_args *a, int64_t *interval, size_t *batch, int *once)
{
	for (size_t i = 0; i < a->nopts; i++) {
		const char *v = a->opts[i].value;
		int ret;
		char *end;
		unsigned long u;
		if (a->opts[i].id == CLI_NOTIFY_ONCE) {
			*once = 1;
		} else if (a->opts[i].id == CLI_NOTIFY_INTERVAL) {
			if ((ret = cli_parse_seconds("--interval", v, interval)) != 0)
				return ret;
			if (*interval < 10000)
				return cli_usage(a->cmd, "--interval is at least 0.01 seconds");
		} else {
			errno = 0;
			u = strtoul(v, &end, 10);
			if (*v < '0' || *v > '9' || *end || errno || u < 1 || u > NOTIFY_BATCH_TASKS)
				return cli_usage(a->cmd, "--batch-size is a number of tasks from 1 to 1000");
			*batch = (size_t)u;
		}
	}
	return a->argc ? cli_usage(a->cmd, "it takes no arguments") : 0;
}

/* lmtasks-notify's handler of the notify entry (cli_webhook.c). */
int
cli_notify_deliver(const struct cli_args *a)
{
	struct deliver_config c = { .batch = NOTIFY_BATCH_TASKS, .warn = cli_warn,
	    .stopping = &stopping };
	struct notifier n = { .interval = 1000000, .ret = EXIT_DONE };
	struct sigaction sa = { 0 };
	notify_multi *m = NULL;
	const char *doing;
	int ret, rc;

	if ((ret = notify_parse(a, &n.interval, &c.batch, &c.once)) != 0)
		return ret;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
		return cli_fail(EXIT_STORE, "notify: libcurl cannot start");
	if (event_new(&n.el) != 0 || notify_multi_new(n.el, on_done, &n, &m) != 0) {
		ret = cli_fail(EXIT_STORE, "out of memory");
		goto out;
	}
	c.t = (struct deliver_transport){ notify_multi_start, notify_multi_cancel, m };
	if ((ret = cli_open(0, &c.s)) != 0)
		goto out;
	if (deliver_new(&c, &n.d) != 0) {
		ret = cli_fail(EXIT_STORE, "out of memory");
		goto out;
	}
	sa.sa_handler = on_signal;	/* no SA_RESTART: a wait ends at once */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	ret = c.once ? run_once(&n) : run_daemon(&n);
	if ((ret == EXIT_DONE || ret == EXIT_UNDELIVERED) && (rc = deliver_flush(n.d, &doing)) != 0)
		ret = cli_store_failure(rc, doing);
out:
	deliver_free(n.d);
	notify_multi_free(m);	/* before the loop its sockets and timer are on */
	event_free(n.el);
	store_close(c.s);
	curl_global_cleanup();
	return ret;
}
