/* The webhook deliverer's logic: retry, backoff, cursors, changes passed over, each
 * webhook on its own.  It posts through the caller's transport, so that the tests drive
 * it with no network. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lmtasks/clock.h"
#include "lmtasks/deliver.h"
#include "lmtasks/error.h"
#include "lmtasks/feed.h"
#include "lmtasks/notify.h"
#include "lmtasks/ops.h"
#include "lmtasks/query.h"

#define WHY_MAX (WEBHOOK_URL_MAX + 512)	/* a POST's failure: the URL and curl's reason */

/* A webhook copied out of its transaction, with its retry state. */
struct hook {
	struct webhook w;	/* w.cursor: where delivery stands (may be ahead of stored) */
	uint64_t stored;	/* the cursor as the store keeps it */
	unsigned char *rec;	/* w's strings point here */
	char *url, *filter;	/* NUL-terminated copies */
	int64_t next_at;	/* no attempt before (clock_mono() µs) */
	unsigned failures;	/* in a row */
	int busy;		/* a POST under way, of the batch sent_* */
	int gone;		/* deleted, or moved by another notify: nothing until read again */
	uint64_t sent_base;	/* the stored cursor when it began: its 2xx moves it from there */
	uint64_t sent_from, sent_to;	/* the changes after sent_from up to sent_to ... */
	size_t sent_tasks;		/* ... holding so many tasks */
};

struct hooks {
	struct hook *v;
	size_t n, cap;
};

struct deliverer {
	struct deliver_config c;
	struct hooks hs;
	struct query *q;	/* a webhook's filters, parsed at each delivery */
	struct notify_batch b;
	const char *doing;	/* what a store failure was about */
	size_t busy;		/* POSTs under way */
	unsigned long failed;	/* attempts failed */
};

int64_t
deliver_backoff(unsigned failures)
{
	int64_t wait = DELIVER_BACKOFF_FIRST;

	for (unsigned i = 1; i < failures && wait < DELIVER_BACKOFF_MAX; i++)
		wait *= 2;
	return wait < DELIVER_BACKOFF_MAX ? wait : DELIVER_BACKOFF_MAX;
}

int
deliver_new(const struct deliver_config *c, deliverer **out)
{
	deliverer *d = calloc(1, sizeof(*d));

	if (d == NULL || (d->q = malloc(sizeof(*d->q))) == NULL ||
	    (d->b.body = printbuf_new()) == NULL) {
		deliver_free(d);
		return ENOMEM;
	}
	d->c = *c;
	*out = d;
	return 0;
}

static void
hooks_free(struct hooks *hs)
{
	for (size_t i = 0; i < hs->n; i++) {
		free(hs->v[i].rec);
		free(hs->v[i].url);
		free(hs->v[i].filter);
	}
	free(hs->v);
	hs->v = NULL;
	hs->n = hs->cap = 0;
}

void
deliver_free(deliverer *d)
{
	if (d == NULL)
		return;
	hooks_free(&d->hs);
	if (d->b.body)
		printbuf_free(d->b.body);
	free(d->q);
	free(d);
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
		free(h.rec);
		free(h.url);
		return ENOMEM;
	}
	webhook_encode(w, h.rec);
	webhook_decode(w->id, h.rec, len, &h.w);
	h.stored = w->cursor;
	hs->v[hs->n++] = h;
	return 0;
}

/* Webhook id in hs, or NULL. */
static struct hook *
find(const struct hooks *hs, uint64_t id)
{
	for (size_t i = 0; i < hs->n; i++)
		if (hs->v[i].w.id == id)
			return &hs->v[i];
	return NULL;
}

/* The delivery state of the webhooks still there goes over to their new copies; the
 * POST under way to one deleted is abandoned. */
static void
keep_state(deliverer *d, struct hooks *hs, const struct hooks *old)
{
	for (size_t i = 0; i < hs->n; i++) {
		struct hook *h = &hs->v[i];
		const struct hook *o = find(old, h->w.id);
		if (o == NULL)
			continue;
		h->next_at = o->next_at;
		h->failures = o->failures;
		h->busy = o->busy;
		h->sent_base = o->sent_base;
		h->sent_from = o->sent_from;
		h->sent_to = o->sent_to;
		h->sent_tasks = o->sent_tasks;
		/* Changes passed over in memory stay passed over. */
		if (o->stored == h->stored && o->w.cursor > h->w.cursor)
			h->w.cursor = o->w.cursor;
	}
	for (size_t j = 0; j < old->n; j++) {
		if (old->v[j].busy && find(hs, old->v[j].w.id) == NULL) {
			d->c.t.cancel(d->c.t.ctx, old->v[j].w.id);
			d->busy--;
		}
	}
}

/* Reads the webhooks anew; on a failure the old ones stay. */
static int
reload(deliverer *d)
{
	struct hooks hs = { 0 };
	MDB_txn *txn;
	int rc;

	d->doing = "notify: reading the webhooks of";
	if ((rc = feed_refresh(d->c.s)) != 0 || (rc = store_read_follow(d->c.s, &txn)) != 0)
		return rc;
	rc = webhook_walk(d->c.s, txn, keep_hook, &hs);
	mdb_txn_abort(txn);
	if (rc != 0) {
		hooks_free(&hs);
		return rc;
	}
	keep_state(d, &hs, &d->hs);
	hooks_free(&d->hs);
	d->hs = hs;
	return 0;
}

/*
 * Records a delivery step.  Returns 0 with *gone 1 (and h->gone) when the webhook was
 * deleted or its cursor moved by another notify (it is read again next round), else 0
 * or a store failure's code.
 */
static int
record(deliverer *d, struct hook *h, struct ops_webhook_step *st, int *gone)
{
	int rc = ops_webhook_record(d->c.s, st);

	*gone = rc == MDB_NOTFOUND || rc == LMT_ECLAIMED;
	if (*gone) {
		h->gone = 1;
		d->c.warn("notify: webhook %" PRIu64 ": %s", h->w.id, rc == MDB_NOTFOUND ?
		    "deleted; its deliveries end" : "its cursor was moved by another notify; "
		    "reading it again");
		return 0;
	}
	d->doing = "notify: recording a delivery in";
	if (rc == 0 && st->error == NULL)
		h->stored = h->w.cursor = st->to;
	return rc;
}

/* Moves the cursor to st->to (no failure); 0 with *stop 1 when the webhook went away. */
static int
advance(deliverer *d, struct hook *h, uint64_t to, uint64_t delivered, uint64_t missed,
    int *stop)
{
	struct ops_webhook_step st = { h->w.id, h->stored, to, delivered, missed, NULL,
	    clock_now() };

	return record(d, h, &st, stop);
}

/* What the collected batch says before anything is sent: a gap in the log (recorded),
 * or nothing new.  0 with *stop 1 when the webhook is done for this round. */
static int
before_post(deliverer *d, struct hook *h, int *stop)
{
	struct notify_batch *b = &d->b;
	int rc;

	*stop = 0;
	if (b->missed) {
		d->c.warn("notify: webhook %" PRIu64 ": the change log was pruned past its cursor "
		    "%" PRIu64 " (feedRetention): the %" PRIu64 " changes after it are lost to "
		    "it; going on from change %" PRIu64, h->w.id, h->w.cursor, b->missed,
		    b->from + 1);
		if ((rc = advance(d, h, b->from, 0, b->missed, stop)) != 0 || *stop)
			return rc;
	}
	*stop = b->to == h->w.cursor;
	return 0;
}

/* A failed POST: the error kept (its password masked, whatever the transport wrote),
 * the next attempt after the backoff. */
static int
post_failed(deliverer *d, struct hook *h, const char *why)
{
	char *shown = NULL;
	size_t n;

	if (webhook_mask(h->w.url.ptr, h->w.url.len, why, strlen(why), &shown, &n) != 0)
		shown = NULL;
	const char *text = shown ? shown : "(the reason is not shown: out of memory)";
	struct ops_webhook_step st = { h->w.id, h->stored, h->stored, 0, 0, text, clock_now() };
	int64_t wait = deliver_backoff(++h->failures);
	int gone, rc;

	d->failed++;
	d->c.warn("notify: webhook %" PRIu64 ": %s; its %zu tasks (changes %" PRIu64 "-%" PRIu64
	    ") are sent again %s%.1f s", h->w.id, text, h->sent_tasks, h->sent_from + 1,
	    h->sent_to, d->c.once ? "by the next run; not before " : "in ", (double)wait / 1e6);
	h->next_at = clock_mono() + wait;	/* after the POST, which may have taken long */
	rc = record(d, h, &st, &gone);
	free(shown);
	return rc;
}

/* Begins the POST of the collected batch; 0 with *stop 1 when it failed at once. */
static int
send_batch(deliverer *d, struct hook *h, int *stop)
{
	char why[WHY_MAX];
	struct notify_batch *b = &d->b;

	h->sent_base = h->stored;
	h->sent_from = b->from;
	h->sent_to = b->to;
	h->sent_tasks = b->ntasks;
	if (d->c.t.start(d->c.t.ctx, &h->w, h->url, b->body->buf, (size_t)b->body->bpos, why,
	    sizeof(why)) != 0) {
		*stop = 1;
		return post_failed(d, h, why);
	}
	h->busy = 1;
	d->busy++;
	return 0;
}

/* Begins h's next POST, passing over the changes that match nothing; 0 (a POST under
 * way, nothing pending, or a failure: h->next_at says when to try again), or a store
 * failure's code. */
static int
pump(deliverer *d, struct hook *h)
{
	struct query_error err;
	int rc = 0, stop = 0;

	if (h->busy || h->gone)
		return 0;
	query_init(d->q);
	if (query_parse(h->filter, d->q, &err) != 0) {
		d->c.warn("notify: webhook %" PRIu64 ": its filters `%s` do not parse (%s); "
		    "delete it and add it again", h->w.id, h->filter, err.message);
		h->next_at = INT64_MAX;
		d->failed++;
		return 0;
	}
	while (rc == 0 && !stop && !h->busy && !(d->c.stopping && *d->c.stopping)) {
		d->doing = "notify: reading the change log of";
		if ((rc = notify_collect(d->c.s, &h->w, d->q, d->c.batch, NOTIFY_BATCH_BYTES,
		    &d->b)) != 0 || (rc = before_post(d, h, &stop)) != 0 || stop)
			break;
		if (d->b.ntasks > 0) {
			rc = send_batch(d, h, &stop);
			continue;
		}
		/* Nothing to send: a write per change would double the store's commits. */
		h->w.cursor = d->b.to;
		if (d->b.to - h->stored >= DELIVER_SKIP_PERSIST)
			rc = advance(d, h, d->b.to, 0, 0, &stop);
	}
	return rc;
}

int
deliver_round(deliverer *d, int64_t now, const char **doing)
{
	int rc;

	if ((rc = reload(d)) != 0)
		goto out;
	for (size_t i = 0; i < d->hs.n && !(d->c.stopping && *d->c.stopping); i++) {
		struct hook *h = &d->hs.v[i];
		if ((h->next_at <= now || d->c.once) && (rc = pump(d, h)) != 0)
			break;
	}
out:
	*doing = d->doing;
	return rc;
}

int
deliver_done(deliverer *d, uint64_t id, int ok, const char *why, const char **doing)
{
	struct hook *h = find(&d->hs, id);
	int rc = 0, gone = 0;

	if (h == NULL || !h->busy)
		goto out;
	/* From the cursor it began at: moved meanwhile by another notify, it is not moved back. */
	struct ops_webhook_step st = { id, h->sent_base, h->sent_to, h->sent_tasks, 0, NULL,
	    clock_now() };
	h->busy = 0;
	d->busy--;
	if (!ok) {
		rc = post_failed(d, h, why);
		goto out;
	}
	if (h->failures)
		d->c.warn("notify: webhook %" PRIu64 ": delivered after %u failed attempts",
		    h->w.id, h->failures);
	h->failures = 0;
	if ((rc = record(d, h, &st, &gone)) == 0 && !gone)
		rc = pump(d, h);	/* the next batch, at once */
out:
	*doing = d->doing;
	return rc;
}

int64_t
deliver_next(const deliverer *d, int64_t now, int64_t until)
{
	for (size_t i = 0; i < d->hs.n; i++) {
		const struct hook *h = &d->hs.v[i];
		if (!h->busy && !h->gone && h->next_at > now && h->next_at < until)
			until = h->next_at;
	}
	return until;
}

size_t
deliver_busy(const deliverer *d)
{
	return d->busy;
}

unsigned long
deliver_failures(const deliverer *d)
{
	return d->failed;
}

int
deliver_flush(deliverer *d, const char **doing)
{
	int rc = 0, gone;

	for (size_t i = 0; rc == 0 && i < d->hs.n; i++) {
		struct hook *h = &d->hs.v[i];
		if (h->w.cursor != h->stored && !h->gone)
			rc = advance(d, h, h->w.cursor, 0, 0, &gone);
	}
	*doing = d->doing;
	return rc;
}

int
deliver_state(const deliverer *d, uint64_t id, uint64_t *cursor, int64_t *next_at,
    unsigned *failures)
{
	for (size_t i = 0; i < d->hs.n; i++) {
		const struct hook *h = &d->hs.v[i];
		if (h->w.id != id)
			continue;
		*cursor = h->w.cursor;
		*next_at = h->next_at;
		*failures = h->failures;
		return 0;
	}
	return MDB_NOTFOUND;
}
