/* notify's deliverer, lmtasks-notify's one command: it POSTs finished tasks to each
 * webhook from its own cursor in the change log, at least once and in order.  It is the
 * only CLI code that links libcurl (and zlib, through notify.c). */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cli.h"
#include "lmtasks/clock.h"
#include "lmtasks/error.h"
#include "lmtasks/feed.h"
#include "lmtasks/notify.h"
#include "lmtasks/ops.h"

#define EXIT_UNDELIVERED 5	/* notify --once: a receiver did not take its tasks */
#define BACKOFF_FIRST INT64_C(100000)		/* µs: the first retry comes this soon ... */
#define BACKOFF_MAX INT64_C(60000000)		/* ... and the wait doubles up to a minute */
#define POST_TIMEOUT_MS 30000L			/* as Meilisearch's webhook client */
/* Changes that matched nothing are passed over in memory; the cursor kept in the store
 * follows at the next POST, at exit, or once this many changes were passed over. */
#define SKIP_PERSIST 1000

static volatile sig_atomic_t stopping;

static void
on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

/* A webhook copied out of its transaction, with its retry state. */
struct hook {
	struct webhook w;	/* w.cursor: where delivery stands (may be ahead of stored) */
	uint64_t stored;	/* the cursor as the store keeps it */
	unsigned char *rec;	/* w's strings point here */
	char *url, *filter;	/* NUL-terminated copies */
	int64_t next_at;	/* no attempt before (µs) */
	int64_t backoff;	/* the wait after the next failure */
	unsigned failures;	/* in a row */
};

struct hooks {
	struct hook *v;
	size_t n, cap;
	int oom;
};

static void
hook_free(struct hook *h)
{
	free(h->rec);
	free(h->url);
	free(h->filter);
}

/* Copies one webhook out of the read transaction. */
static int
keep_hook(void *ctx, const struct webhook *w)
{
	struct hooks *hs = ctx;
	struct hook h = { 0 };
	size_t len = webhook_encode(w, NULL);

	if (hs->n == hs->cap) {
		size_t cap = hs->cap ? hs->cap * 2 : 8;
		struct hook *v = realloc(hs->v, cap * sizeof(*v));
		if (v == NULL)
			return ENOMEM;
		hs->v = v;
		hs->cap = cap;
	}
	if ((h.rec = malloc(len)) == NULL ||
	    (h.url = strndup(w->url.ptr, w->url.len)) == NULL ||
	    (h.filter = strndup(w->filter.ptr, w->filter.len)) == NULL) {
		hook_free(&h);
		return ENOMEM;
	}
	webhook_encode(w, h.rec);
	webhook_decode(w->id, h.rec, len, &h.w);
	h.backoff = BACKOFF_FIRST;
	h.stored = w->cursor;
	hs->v[hs->n++] = h;
	return 0;
}

/* Reads the webhooks anew (added and deleted ones too), keeping the retry state of
 * those still there. */
static int
reload(store *s, struct hooks *hs)
{
	struct hooks old = *hs;
	MDB_txn *txn;
	int rc;

	hs->v = NULL;
	hs->n = hs->cap = 0;
	if ((rc = feed_refresh(s)) != 0 || (rc = store_txn_begin(s, MDB_RDONLY, &txn)) != 0)
		goto out;
	rc = webhook_walk(s, txn, keep_hook, hs);
	mdb_txn_abort(txn);
	for (size_t i = 0; rc == 0 && i < hs->n; i++) {
		for (size_t j = 0; j < old.n; j++) {
			if (old.v[j].w.id == hs->v[i].w.id) {
				hs->v[i].next_at = old.v[j].next_at;
				hs->v[i].backoff = old.v[j].backoff;
				hs->v[i].failures = old.v[j].failures;
				/* Changes passed over in memory stay passed over. */
				if (old.v[j].stored == hs->v[i].stored && old.v[j].w.cursor > hs->v[i].w.cursor)
					hs->v[i].w.cursor = old.v[j].w.cursor;
			}
		}
	}
out:
	for (size_t j = 0; j < old.n; j++)
		hook_free(&old.v[j]);
	free(old.v);
	return rc;
}

struct notifier {
	store *s;
	CURL *curl;
	struct query *q;
	struct notify_batch b;
	size_t batch;		/* tasks per POST */
	int once;
};

/* Records a delivery step; 0, or 1 when the webhook is gone or was moved by another
 * notify (it is read again next round), or an exit status after a store failure. */
static int
record(struct notifier *n, struct hook *h, struct ops_webhook_step *st)
{
	int rc = ops_webhook_record(n->s, st);

	if (rc == MDB_NOTFOUND || rc == LMT_ECLAIMED) {
		cli_warn("notify: webhook %" PRIu64 ": %s", h->w.id, rc == MDB_NOTFOUND ?
		    "deleted; its deliveries end" : "its cursor was moved by another notify; "
		    "reading it again");
		return 1;
	}
	if (rc)
		return -cli_store_failure(rc, "notify: recording a delivery in");
	if (st->error == NULL)
		h->stored = h->w.cursor = st->to;
	return 0;
}

/* One POST of the batch in n->b; 0 on a 2xx, else -1 with the reason in why. */
static int
post(struct notifier *n, struct hook *h, char *why, size_t whylen)
{
	struct curl_slist *headers = NULL;
	unsigned char *gz = NULL;
	size_t gzlen;
	char err[CURL_ERROR_SIZE];
	long status;
	int rc;

	if ((rc = notify_gzip(n->b.body->buf, (size_t)n->b.body->bpos, &gz, &gzlen)) != 0 ||
	    (rc = notify_headers(&h->w, &headers)) != 0) {
		snprintf(why, whylen, "%s", lmt_strerror(rc));
		free(gz);
		return -1;
	}
	rc = notify_post(n->curl, h->url, headers, gz, gzlen, POST_TIMEOUT_MS, &status, err);
	if (rc != 0 && status)
		snprintf(why, whylen, "POST %s: HTTP status %ld", h->url, status);
	else if (rc != 0)
		snprintf(why, whylen, "POST %s: %s", h->url, err);
	curl_slist_free_all(headers);
	free(gz);
	return rc;
}

/*
 * Delivers to h what is pending, a batch at a time, each POST's cursor move only after
 * its 2xx.  Returns 0 when caught up (or the webhook is gone), 1 after a failed POST
 * (h->next_at says when to try again), or an exit status (negated) on a store failure.
 */
static int
deliver(struct notifier *n, struct hook *h)
{
	struct query_error err;
	char why[CURL_ERROR_SIZE + WEBHOOK_URL_MAX + 64];
	int rc;

	query_init(n->q);
	if (query_parse(h->filter, n->q, &err) != 0) {
		cli_warn("notify: webhook %" PRIu64 ": its filters `%s` do not parse (%s); "
		    "delete it and add it again", h->w.id, h->filter, err.message);
		h->next_at = INT64_MAX;
		return 1;
	}
	while (!stopping) {
		if ((rc = notify_collect(n->s, &h->w, n->q, n->batch, NOTIFY_BATCH_BYTES, &n->b)) != 0)
			return -cli_store_failure(rc, "notify: reading the change log of");
		if (n->b.missed) {
			cli_warn("notify: webhook %" PRIu64 ": the change log was pruned past its cursor "
			    "%" PRIu64 " (feedRetention): the %" PRIu64 " changes after it are lost to "
			    "it; going on from change %" PRIu64, h->w.id, h->w.cursor, n->b.missed,
			    n->b.from + 1);
			struct ops_webhook_step st = { h->w.id, h->stored, n->b.from, 0,
			    n->b.missed, NULL, clock_now() };
			if ((rc = record(n, h, &st)) != 0)
				return rc < 0 ? rc : 0;
		}
		if (n->b.to == h->w.cursor)
			return 0;
		if (n->b.ntasks == 0) {
			/* Nothing to send: a write per change would double the store's commits. */
			h->w.cursor = n->b.to;
			if (n->b.to - h->stored < SKIP_PERSIST)
				continue;
			struct ops_webhook_step st = { h->w.id, h->stored, n->b.to, 0, 0, NULL,
			    clock_now() };
			if ((rc = record(n, h, &st)) != 0)
				return rc < 0 ? rc : 0;
			continue;
		}
		if (post(n, h, why, sizeof(why)) != 0) {
			h->failures++;
			cli_warn("notify: webhook %" PRIu64 ": %s; its %zu tasks (changes %" PRIu64
			    "-%" PRIu64 ") are sent again %s%.1f s", h->w.id, why, n->b.ntasks,
			    n->b.from + 1, n->b.to, n->once ? "by the next run; not before " : "in ",
			    (double)h->backoff / 1e6);
			struct ops_webhook_step st = { h->w.id, h->stored, h->stored, 0, 0, why,
			    clock_now() };
			if ((rc = record(n, h, &st)) < 0)
				return rc;
			h->next_at = clock_now() + h->backoff;
			h->backoff = h->backoff * 2 < BACKOFF_MAX ? h->backoff * 2 : BACKOFF_MAX;
			return 1;
		}
		if (h->failures)
			cli_warn("notify: webhook %" PRIu64 ": delivered after %u failed attempts",
			    h->w.id, h->failures);
		h->failures = 0;
		h->backoff = BACKOFF_FIRST;
		struct ops_webhook_step st = { h->w.id, h->stored, n->b.to, n->b.ntasks, 0, NULL,
		    clock_now() };
		if ((rc = record(n, h, &st)) != 0)
			return rc < 0 ? rc : 0;
	}
	return 0;
}

/* Keeps in the store the cursors moved past changes that matched nothing; an exit
 * status. */
static int
flush_skips(struct notifier *n, struct hooks *hs)
{
	for (size_t i = 0; i < hs->n; i++) {
		struct hook *h = &hs->v[i];
		if (h->w.cursor == h->stored)
			continue;
		struct ops_webhook_step st = { h->w.id, h->stored, h->w.cursor, 0, 0, NULL,
		    clock_now() };
		int rc = record(n, h, &st);
		if (rc < 0)
			return -rc;
	}
	return EXIT_DONE;
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
	struct notifier n = { 0 };
	struct hooks hs = { 0 };
	int64_t interval = 1000000;
	int ret, fd = -1, recheck = 0, failed;
	struct sigaction sa = { 0 };

	n.batch = NOTIFY_BATCH_TASKS;
	if ((ret = notify_parse(a, &interval, &n.batch, &n.once)) != 0)
		return ret;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
		return cli_fail(EXIT_STORE, "notify: libcurl cannot start");
	n.q = malloc(sizeof(*n.q));
	n.b.body = printbuf_new();
	n.curl = curl_easy_init();
	if (n.q == NULL || n.b.body == NULL || n.curl == NULL) {
		ret = cli_fail(EXIT_STORE, "out of memory");
		goto out;
	}
	if ((ret = cli_open(0, &n.s)) != 0)
		goto out;
	sa.sa_handler = on_signal;	/* no SA_RESTART: a wait ends at once */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	/* Watched before the first read, so that no commit falls between the two. */
	fd = n.once ? -1 : cli_watch_open();
	while (!stopping) {
		int rc = reload(n.s, &hs);
		if (rc) {
			ret = cli_store_failure(rc, "notify: reading the webhooks of");
			break;
		}
		int64_t now = clock_now(), wake = now + interval;
		failed = 0;
		for (size_t i = 0; i < hs.n && !stopping; i++) {
			struct hook *h = &hs.v[i];
			if (h->next_at > now && !n.once) {
				wake = h->next_at < wake ? h->next_at : wake;
				continue;
			}
			if ((rc = deliver(&n, h)) < 0) {
				ret = -rc;
				goto out;
			}
			if (rc == 1) {
				failed = 1;
				wake = h->next_at < wake ? h->next_at : wake;
			}
		}
		if (n.once) {
			ret = failed ? EXIT_UNDELIVERED : EXIT_DONE;
			break;
		}
		if (stopping)
			break;
		now = clock_now();
		if (wake <= now)
			continue;
		if (fd >= 0)
			cli_watch_wait(fd, wake - now, &recheck);
		else
			poll(NULL, 0, (int)((wake - now) / 1000 + 1));
	}
	if (ret == EXIT_DONE || ret == EXIT_UNDELIVERED) {
		int r = flush_skips(&n, &hs);
		ret = r != EXIT_DONE ? r : ret;
	}
out:
	if (fd >= 0)
		close(fd);
	for (size_t i = 0; i < hs.n; i++)
		hook_free(&hs.v[i]);
	free(hs.v);
	store_close(n.s);
	if (n.curl)
		curl_easy_cleanup(n.curl);
	if (n.b.body)
		printbuf_free(n.b.body);
	free(n.q);
	curl_global_cleanup();
	return ret;
}
