/* GET /tasks/stream without I/O: opening a stream (filters, key, Last-Event-ID, current
 * state), and the hub that reads the change log once per wake-up and fans it out. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lmtasks/auth.h"
#include "lmtasks/clock.h"
#include "lmtasks/compat.h"
#include "lmtasks/error.h"
#include "lmtasks/feed.h"
#include "lmtasks/query.h"
#include "lmtasks/render.h"
#include "lmtasks/stream.h"
#include "lmtasks/timefmt.h"

struct stream_sub {
	char *qs;			/* its filters as asked (parsed again when served: a
					 * struct query is 31 KB); NULL: none */
	char *auth;			/* the Authorization header, checked again likewise */
	const unsigned char *master;	/* borrowed: the process's master key hash */
	uint64_t cursor;		/* the last sequence this stream has been given */
	uint64_t *pending;		/* uids=: the listed tasks not finished yet */
	size_t npending;
	int uids;			/* the stream ends when pending empties */
	int done;
	int full;			/* its output is at STREAM_WINDOW: nothing until resumed */
	stream_write_fn *write;
	void *ctx;
	stream_sub *next;
};

/* One change read by the hub: the task as it is now and its event's bytes. */
struct change {
	uint64_t seq;
	struct task t;
	size_t off, len;	/* of the event in the hub's buffer; len 0: no event */
};

struct stream_hub {
	stream_sub *subs;
	size_t n;
	uint64_t seen;		/* the log read up to here for the streams caught up */
	int added;		/* a stream came since the last poll */
	struct printbuf *ev;	/* the events of one read, rendered once */
	struct feed_entry *e;
	struct change *c;
	struct query *q;	/* the filters of the stream being served */
	struct query all;	/* no filters */
};

static const char retry_line[] = "retry: 10000\n\n";
static const char keepalive[] = ": keep-alive\n\n";

/* Whether the store answers in Meilisearch v1's layout as txn sees it (compat). */
static int
layout_v1(store *s, MDB_txn *txn)
{
	enum compat_level level = COMPAT_V025;

	return compat_read(s, txn, &level) == 0 && level == COMPAT_V1;
}

/* Notes that t is finished, when it is one of the stream's listed tasks. */
static void
note_finished(stream_sub *sub, const struct task *t)
{
	if (!task_status_terminal(t->status))
		return;
	for (size_t i = 0; i < sub->npending; i++) {
		if (sub->pending[i] == t->uid) {
			sub->pending[i] = sub->pending[--sub->npending];
			break;
		}
	}
}

/* Whether the stream is to see t: its key's indexes, then its filters. */
static int
wanted(const struct auth_grant *g, const struct query *q, const struct task *t)
{
	return auth_allows(g, t->index_uid) && query_match(q, t);
}

/* The stream's key as it stands in txn (it may have been deleted or have expired since);
 * nonzero when it may no longer read. */
static int
prepare(store *s, MDB_txn *txn, const stream_sub *sub, struct auth_grant *g)
{
	struct api_error err;

	return auth_check(s, txn, sub->master, sub->auth, clock_now(), g, &err) != 0 ||
	    auth_permits(g, AUTH_TASKS_GET, &err) != 0;
}

void
stream_sub_free(stream_sub *sub)
{
	if (sub == NULL)
		return;
	free(sub->qs);
	free(sub->auth);
	free(sub->pending);
	free(sub);
}

uint64_t
stream_sub_cursor(const stream_sub *sub)
{
	return sub->cursor;
}

int
stream_sub_done(const stream_sub *sub)
{
	return sub->done;
}

int
stream_sub_full(const stream_sub *sub)
{
	return sub->full;
}

void
stream_sub_resume(stream_sub *sub)
{
	sub->full = 0;
}

/* Hands the stream bytes of events: 0 to go on; else it takes no more now (its output is
 * full, or it ended). */
static int
give(stream_sub *sub, const void *buf, size_t len)
{
	int w = sub->write(sub->ctx, buf, len);

	if (w == STREAM_FULL)
		sub->full = 1;
	else if (w != 0)
		sub->done = 1;
	return w;
}

/* Parses Last-Event-ID: decimal digits, no more than a u64. */
static int
parse_seq(const char *s, uint64_t *v)
{
	uint64_t n = 0;

	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (n > (UINT64_MAX - 9) / 10)
			return -1;
		n = n * 10 + (uint64_t)(*s - '0');
	}
	*v = n;
	return *s ? -1 : 0;
}

/* Sends sub the changes after its cursor, reading at most STREAM_STEP of the log:
 * each event it is to see rendered into pb and written, or, while it opens (no write yet),
 * left in pb up to STREAM_WINDOW bytes.  Stops at the event that fills its output; its
 * cursor is then that event's. */
static int
catch_up(store *s, MDB_txn *txn, stream_sub *sub, const struct query *q,
    const struct auth_grant *g, struct feed_entry *e, struct printbuf *pb)
{
	uint64_t after = sub->cursor;
	size_t n;
	int rc = feed_read(s, txn, &after, e, STREAM_STEP, &n), v1;

	if (rc)
		return rc;
	v1 = layout_v1(s, txn);
	for (size_t i = 0; i < n; i++) {
		struct task t;
		if (e[i].status == FEED_REMOVED)
			continue;
		/* Gone, or a record that cannot be decoded: skipped, as removed. */
		if ((rc = store_get(s, txn, e[i].uid, &t)) == MDB_NOTFOUND || rc == LMT_ECORRUPT)
			continue;
		if (rc)
			return rc;
		note_finished(sub, &t);
		if (!wanted(g, q, &t))
			continue;
		if (sub->write)
			printbuf_reset(pb);
		if ((rc = render_event(pb, e[i].seq, &t, v1)) != 0)
			return rc;
		if (sub->write ? give(sub, pb->buf, (size_t)pb->bpos) == 0 :
		    (size_t)pb->bpos < STREAM_WINDOW)
			continue;
		sub->cursor = e[i].seq;
		return 0;
	}
	sub->cursor = after;
	return 0;
}

/* The listed tasks as they are now, each at its latest change, in that order. */
static int
current_state(store *s, MDB_txn *txn, const struct query *q, const struct auth_grant *g,
    struct printbuf *pb)
{
	struct feed_position st[QUERY_LIST_MAX];
	int rc;

	if ((rc = feed_current(s, txn, q->uids, q->nuids, st)) != 0)
		return rc;
	for (size_t i = 0; i < q->nuids; i++) {
		struct task t;
		if ((rc = store_get(s, txn, st[i].uid, &t)) == MDB_NOTFOUND)
			continue;	/* not enqueued yet */
		if (rc)
			return rc;
		if (wanted(g, q, &t) && (rc = render_event(pb, st[i].seq, &t, layout_v1(s, txn))) != 0)
			return rc;
	}
	return 0;
}

static int
read_error(struct api_error *err, int rc)
{
	return api_error_set(err, 500, "internal", "internal",
	    "The task store could not be read: %s.", lmt_strerror(rc));
}

/* Notes which of q's listed tasks are not finished yet; a listed task that exists but the
 * key may not see is a 404, as GET /tasks/UID says.  Returns 0 or the error's status. */
static int
note_pending(store *s, MDB_txn *txn, stream_sub *sub, const struct query *q,
    const struct auth_grant *g, uint64_t next, struct api_error *err)
{
	sub->uids = 1;
	if ((sub->pending = malloc(q->nuids * sizeof(uint64_t))) == NULL)
		return api_error_set(err, 500, "internal", "internal", "Out of memory.");
	for (size_t i = 0; i < q->nuids; i++) {
		struct task t;
		int rc = q->uids[i] < next ? store_get(s, txn, q->uids[i], &t) : MDB_NOTFOUND;
		if (rc == 0 && !auth_allows(g, t.index_uid))
			rc = MDB_NOTFOUND;
		if (rc == MDB_NOTFOUND && q->uids[i] < next)
			return api_error_set(err, 404, "task_not_found", "invalid_request",
			    "Task `%" PRIu64 "` not found.", q->uids[i]);
		if (rc != 0 && rc != MDB_NOTFOUND)
			return read_error(err, rc);
		if (rc == MDB_NOTFOUND || !task_status_terminal(t.status))
			sub->pending[sub->npending++] = q->uids[i];
	}
	return 0;
}

/* The stream's filters, parsed once: 0 or the error's status. */
static int
parse_filters(const char *qs, struct query *q, struct api_error *err)
{
	struct query_error why;

	query_init(q);
	if (query_parse(qs, q, &why) != 0)
		return api_error_query(err, &why);
	if (query_paged(q))
		return api_error_set(err, 400, "bad_request", "invalid_request", "`limit`, "
		    "`from` and `reverse` page a list: /tasks/stream takes only the filters.");
	return 0;
}

/* The stream's first events after the retry line: what it missed since Last-Event-ID
 * (resumed; up to STREAM_WINDOW bytes, the hub sends the rest), or its listed tasks as they
 * are now.  Returns 200; 204 when nothing is left to wait for; or the error's status. */
static int
first_events(store *s, MDB_txn *txn, int resumed, stream_sub *sub, const struct query *q,
    const struct auth_grant *g, uint64_t resume, uint64_t last, struct printbuf *body,
    struct api_error *err)
{
	size_t before = (size_t)body->bpos;
	struct feed_entry *e;
	int rc;

	if (!resumed) {
		sub->cursor = last;
		if (q->nuids && (rc = current_state(s, txn, q, g, body)) != 0)
			return read_error(err, rc);
	} else {
		/* An id from a store made anew: from now on. */
		sub->cursor = resume > last ? last : resume;
		if ((e = malloc(STREAM_STEP * sizeof(*e))) == NULL)
			return api_error_set(err, 500, "internal", "internal", "Out of memory.");
		rc = catch_up(s, txn, sub, q, g, e, body);
		free(e);
		if (rc != 0)
			return rc == ENOMEM ? api_error_set(err, 500, "internal", "internal",
			    "Out of memory.") : read_error(err, rc);
		/* EventSource stops reconnecting on a 204: nothing is left to wait for. */
		if (sub->uids && sub->npending == 0 && (size_t)body->bpos == before &&
		    sub->cursor >= last)
			return 204;
	}
	sub->done = sub->uids && sub->npending == 0 && sub->cursor >= last;
	return 200;
}

int
stream_open(store *s, MDB_txn *txn, const struct stream_request *rq, struct printbuf *body,
    stream_sub **out, struct api_error *err)
{
	struct auth_grant g;
	struct query *q;
	stream_sub *sub;
	uint64_t first, last, next, resume = 0;
	int rc, status = 500;

	*out = NULL;
	/* The filters are parsed here for the first events, then kept as their text. */
	if ((q = malloc(sizeof(*q))) == NULL || (sub = calloc(1, sizeof(*sub))) == NULL) {
		free(q);
		return api_error_set(err, 500, "internal", "internal", "Out of memory.");
	}
	if ((status = parse_filters(rq->query_string, q, err)) != 0)
		goto fail;
	if (rq->last_event_id && parse_seq(rq->last_event_id, &resume) != 0) {
		status = api_error_set(err, 400, "bad_request", "invalid_request", "Last-Event-ID "
		    "must be the id of an event of this stream, a whole number.");
		goto fail;
	}
	if ((rc = auth_check(s, txn, rq->master, rq->authorization, clock_now(), &g, err)) != 0 ||
	    (rc = auth_permits(&g, AUTH_TASKS_GET, err)) != 0) {
		status = rc;
		goto fail;
	}
	if ((rc = feed_bounds(s, txn, &first, &last)) != 0 ||
	    (rc = store_next_uid(s, txn, &next)) != 0) {
		status = read_error(err, rc);
		goto fail;
	}
	if (rq->last_event_id && resume + 1 < first) {
		status = api_error_set(err, 410, "task_stream_pruned", "invalid_request", "The "
		    "changes after event `%" PRIu64 "` are no longer kept (the store keeps them per "
		    "its feedRetention setting). Read the tasks' current state, then open the "
		    "stream again without Last-Event-ID.", resume);
		goto fail;
	}
	if ((rq->authorization && (sub->auth = strdup(rq->authorization)) == NULL) ||
	    (q->given && (sub->qs = strdup(rq->query_string)) == NULL))
		goto nomem;
	sub->master = rq->master;
	if (q->nuids && (status = note_pending(s, txn, sub, q, &g, next, err)) != 0)
		goto fail;
	printbuf_reset(body);
	if (printbuf_memappend(body, retry_line, sizeof(retry_line) - 1) < 0)
		goto nomem;
	if ((status = first_events(s, txn, rq->last_event_id != NULL, sub, q, &g, resume, last,
	    body, err)) != 200)
		goto fail;
	free(q);
	*out = sub;
	return 200;
nomem:
	status = api_error_set(err, 500, "internal", "internal", "Out of memory.");
fail:
	free(q);
	stream_sub_free(sub);
	if (status == 204)
		printbuf_reset(body);
	return status;
}

int
stream_hub_new(stream_hub **out)
{
	stream_hub *h = calloc(1, sizeof(*h));

	if (h == NULL || (h->ev = printbuf_new()) == NULL ||
	    (h->e = malloc(STREAM_CATCHUP_MAX * sizeof(*h->e))) == NULL ||
	    (h->c = malloc(STREAM_CATCHUP_MAX * sizeof(*h->c))) == NULL ||
	    (h->q = malloc(sizeof(*h->q))) == NULL) {
		stream_hub_free(h);
		return ENOMEM;
	}
	query_init(&h->all);
	*out = h;
	return 0;
}

void
stream_hub_free(stream_hub *h)
{
	if (h == NULL)
		return;
	while (h->subs) {
		stream_sub *next = h->subs->next;
		stream_sub_free(h->subs);
		h->subs = next;
	}
	if (h->ev)
		printbuf_free(h->ev);
	free(h->e);
	free(h->c);
	free(h->q);
	free(h);
}

int
stream_hub_add(stream_hub *h, stream_sub *sub, stream_write_fn *write, void *ctx)
{
	/* The first stream sets where the shared read starts. */
	if (h->subs == NULL)
		h->seen = sub->cursor;
	sub->write = write;
	sub->ctx = ctx;
	h->added = 1;
	sub->next = h->subs;
	h->subs = sub;
	h->n++;
	return 0;
}

int
stream_hub_remove(stream_hub *h, void *ctx)
{
	for (stream_sub **p = &h->subs; *p; p = &(*p)->next) {
		if ((*p)->ctx == ctx) {
			stream_sub *sub = *p;
			*p = sub->next;
			stream_sub_free(sub);
			h->n--;
			return 0;
		}
	}
	return MDB_NOTFOUND;
}

size_t
stream_hub_count(const stream_hub *h)
{
	return h->n;
}

/* Ends (and frees) every stream marked done, telling the transport. */
static void
reap(stream_hub *h, void (*ended)(void *ctx))
{
	for (stream_sub **p = &h->subs; *p;) {
		stream_sub *sub = *p;
		if (!sub->done) {
			p = &sub->next;
			continue;
		}
		*p = sub->next;
		h->n--;
		if (ended)
			ended(sub->ctx);
		stream_sub_free(sub);
	}
}

/* The filters of sub, parsed again from their text into the hub's (NULL: they no longer
 * parse, which cannot be as they did when it opened). */
static const struct query *
filters(stream_hub *h, const stream_sub *sub)
{
	struct query_error why;

	if (sub->qs == NULL)
		return &h->all;
	query_init(h->q);
	return query_parse(sub->qs, h->q, &why) == 0 ? h->q : NULL;
}

/* Whether a stream is caught up to the shared read and has room for output. */
static int
any_current(const stream_hub *h)
{
	for (const stream_sub *sub = h->subs; sub; sub = sub->next)
		if (!sub->done && !sub->full && sub->cursor >= h->seen)
			return 1;
	return 0;
}

/* Renders the changes h->e[*i, n) once each, into h->ev and h->c (*m of them), until
 * STREAM_RENDER_MAX bytes; *i is where it stopped. */
static int
render_slice(stream_hub *h, store *s, MDB_txn *txn, size_t *i, size_t n, size_t *m)
{
	int v1 = layout_v1(s, txn), rc;

	printbuf_reset(h->ev);
	*m = 0;
	while (*i < n && (size_t)h->ev->bpos < STREAM_RENDER_MAX) {
		const struct feed_entry *e = &h->e[(*i)++];
		struct change *c = &h->c[*m];
		if (e->status == FEED_REMOVED)
			continue;
		if ((rc = store_get(s, txn, e->uid, &c->t)) == MDB_NOTFOUND || rc == LMT_ECORRUPT)
			continue;	/* gone, or undecodable: skipped, as removed */
		if (rc)
			return rc;
		c->seq = e->seq;
		c->off = (size_t)h->ev->bpos;
		if ((rc = render_event(h->ev, c->seq, &c->t, v1)) != 0)
			return rc;
		c->len = (size_t)h->ev->bpos - c->off;
		(*m)++;
	}
	return 0;
}

/* Gives each stream caught up to from (with room) its events among the m rendered, up to
 * the one that fills its output; the others move on to end. */
static void
deliver(stream_hub *h, store *s, MDB_txn *txn, uint64_t from, size_t m, uint64_t end)
{
	const struct query *q = NULL;
	struct auth_grant g;

	for (stream_sub *sub = h->subs; sub; sub = sub->next) {
		if (sub->done || sub->full || sub->cursor < from)
			continue;	/* behind: served on its own */
		if (m && (prepare(s, txn, sub, &g) != 0 || (q = filters(h, sub)) == NULL)) {
			sub->done = 1;
			continue;
		}
		for (size_t i = 0; i < m; i++) {
			struct change *c = &h->c[i];
			if (c->seq <= sub->cursor)
				continue;
			note_finished(sub, &c->t);
			if (wanted(&g, q, &c->t) && give(sub, h->ev->buf + c->off, c->len) != 0) {
				sub->cursor = c->seq;
				break;
			}
		}
		if (!sub->done && !sub->full && sub->cursor < end)
			sub->cursor = end;
		if (sub->uids && sub->npending == 0)
			sub->done = 1;
	}
}

/* Reads the changes after h->seen up to what txn holds, STREAM_CATCHUP_MAX at a time,
 * each task rendered once, and gives them to the streams caught up; once none is left
 * with room, the others read on their own. */
static int
fan_out(stream_hub *h, store *s, MDB_txn *txn, uint64_t last)
{
	int rc;

	while (h->seen < last) {
		uint64_t from = h->seen, after = from;
		size_t n, m, i = 0;
		if ((rc = feed_read(s, txn, &after, h->e, STREAM_CATCHUP_MAX, &n)) != 0)
			return rc;
		if (after == from)
			break;
		do {
			if (!any_current(h)) {
				h->seen = last;
				return 0;
			}
			if ((rc = render_slice(h, s, txn, &i, n, &m)) != 0)
				return rc;
			deliver(h, s, txn, from, m, i < n ? h->e[i - 1].seq : after);
		} while (i < n);
		h->seen = after;
	}
	return 0;
}

int
stream_hub_poll(stream_hub *h, store *s, void (*ended)(void *ctx))
{
	MDB_txn *txn;
	int rc;

	if (h->subs == NULL)
		return 0;
	/* A store made by 0.1.0 gets its log at its first write. */
	if ((rc = feed_refresh(s)) != 0 || (rc = store_txn_begin(s, MDB_RDONLY, &txn)) != 0)
		return rc;
	rc = stream_hub_poll_txn(h, s, txn, ended);
	mdb_txn_abort(txn);
	return rc;
}

/* Streams behind the shared read (resumed from an old Last-Event-ID, or paced) read on
 * from their own cursors, STREAM_STEP entries of the log each at most.  A stream that
 * cannot read on (its changes pruned, a read error, no progress: the log is not the one
 * it read) ends alone; resuming tells it what it missed, or 410. */
static void
catch_up_all(stream_hub *h, store *s, MDB_txn *txn)
{
	const struct query *q;
	struct auth_grant g;

	for (stream_sub *sub = h->subs; sub; sub = sub->next) {
		uint64_t was = sub->cursor;
		if (sub->done || sub->full || sub->cursor >= h->seen)
			continue;
		if (prepare(s, txn, sub, &g) != 0 || (q = filters(h, sub)) == NULL ||
		    catch_up(s, txn, sub, q, &g, h->e, h->ev) != 0 ||
		    (!sub->done && !sub->full && sub->cursor == was) ||
		    (sub->uids && sub->npending == 0))
			sub->done = 1;
	}
}

int
stream_hub_poll_txn(stream_hub *h, store *s, MDB_txn *txn, void (*ended)(void *ctx))
{
	uint64_t first, last;
	int rc;

	if (h->subs == NULL)
		return 0;
	h->added = 0;
	if ((rc = feed_bounds(s, txn, &first, &last)) != 0)
		goto out;
	/* A store made anew, its log shorter than what was read: the streams past its head
	 * end (resuming, they read from now on). */
	for (stream_sub *sub = h->subs; sub; sub = sub->next)
		if (sub->cursor > last)
			sub->done = 1;
	if (h->seen > last)
		h->seen = last;
	rc = fan_out(h, s, txn, last);
	if (rc == LMT_EPRUNED) {
		/* More changed between two wake-ups than the log keeps: the streams that
		 * missed some end, and resuming tells them so. */
		for (stream_sub *sub = h->subs; sub; sub = sub->next)
			if (sub->cursor + 1 < first)
				sub->done = 1;
		h->seen = last;
		rc = 0;
	}
	if (rc == 0)
		catch_up_all(h, s, txn);
out:
	reap(h, ended);
	return rc;
}

int
stream_hub_behind(const stream_hub *h)
{
	/* One added and removed again before a poll (its peer left at once) leaves nobody
	 * behind: with no stream, no poll clears the mark, and the thread would spin. */
	if (h->added && h->subs != NULL)
		return 1;
	for (const stream_sub *sub = h->subs; sub; sub = sub->next)
		if (!sub->done && !sub->full && sub->cursor < h->seen)
			return 1;
	return 0;
}

void
stream_hub_keepalive(stream_hub *h, void (*ended)(void *ctx))
{
	for (stream_sub *sub = h->subs; sub; sub = sub->next) {
		if (!sub->done && !sub->full)
			give(sub, keepalive, sizeof(keepalive) - 1);
	}
	reap(h, ended);
}
