/* notify's deliverer, lmtasks-notify's one command: the deliverer (deliver.h) posting
 * through libcurl (notify.h), one round at each change of the store and at each retry
 * due, on the event layer.  It is the only CLI code that links libcurl (and zlib). */
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
	int64_t interval;	/* --interval: a round at least this often */
	uint64_t timer;		/* the next round at the latest */
	int ret;		/* EXIT_DONE while it runs */
};

/* One round of deliveries; returns µs until the next is due at the latest. */
static int64_t
round_run(event_loop *el, struct notifier *n)
{
	const char *doing;
	int64_t now = clock_mono(), wake;
	int failed, rc = deliver_round(n->d, now, now + n->interval, &wake, &failed, &doing);

	if (rc != 0) {
		n->ret = cli_store_failure(rc, doing);
		event_stop(el);
		return EVENT_NOMORE;
	}
	now = clock_mono();
	return wake > now ? wake - now : 0;
}

static void
on_change(event_loop *el, void *ctx)
{
	struct notifier *n = ctx;
	int64_t next = round_run(el, n);

	if (next != EVENT_NOMORE)
		event_timer_move(el, n->timer, next);
}

static int64_t
on_timer(event_loop *el, void *ctx)
{
	return round_run(el, ctx);
}

/* Rounds until SIGTERM or SIGINT; an exit status. */
static int
run_daemon(event_loop *el, struct notifier *n)
{
	int rc = 0;

	/* Watched before the first round, so that no commit falls between the two; where
	 * inotify says nothing the rounds' own timer looks, every --interval. */
	if (event_watch(el, cli_db, 0, on_change, n) != 0)
		return cli_fail(EXIT_STORE, "out of memory");
	int64_t next = round_run(el, n);
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

/* --once: one round, every webhook; an exit status. */
static int
run_once(struct notifier *n)
{
	const char *doing;
	int64_t now = clock_mono(), wake;
	int failed, rc = deliver_round(n->d, now, now + n->interval, &wake, &failed, &doing);

	if (rc != 0)
		return cli_store_failure(rc, doing);
	return failed ? EXIT_UNDELIVERED : EXIT_DONE;
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
	struct deliver_config c = { .batch = NOTIFY_BATCH_TASKS, .post = notify_send,
	    .warn = cli_warn, .stopping = &stopping };
	struct notifier n = { .interval = 1000000, .ret = EXIT_DONE };
	struct sigaction sa = { 0 };
	event_loop *el = NULL;
	const char *doing;
	int ret, rc;

	if ((ret = notify_parse(a, &n.interval, &c.batch, &c.once)) != 0)
		return ret;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
		return cli_fail(EXIT_STORE, "notify: libcurl cannot start");
	if ((c.post_ctx = curl_easy_init()) == NULL || event_new(&el) != 0) {
		ret = cli_fail(EXIT_STORE, "out of memory");
		goto out;
	}
	if ((ret = cli_open(0, &c.s)) != 0)
		goto out;
	if (deliver_new(&c, &n.d) != 0) {
		ret = cli_fail(EXIT_STORE, "out of memory");
		goto out;
	}
	sa.sa_handler = on_signal;	/* no SA_RESTART: a wait ends at once */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	ret = c.once ? run_once(&n) : run_daemon(el, &n);
	if ((ret == EXIT_DONE || ret == EXIT_UNDELIVERED) && (rc = deliver_flush(n.d, &doing)) != 0)
		ret = cli_store_failure(rc, doing);
out:
	deliver_free(n.d);
	event_free(el);
	store_close(c.s);
	if (c.post_ctx)
		curl_easy_cleanup(c.post_ctx);
	curl_global_cleanup();
	return ret;
}
