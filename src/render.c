/* JSON output built by hand into a json-c printbuf: keys in SPEC order, no re-parse. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lmtasks/query.h"
#include "lmtasks/render.h"
#include "lmtasks/tbatch.h"
#include "lmtasks/text.h"
#include "lmtasks/timefmt.h"

/*
 * Output goes straight into the printbuf: each render function first makes room for
 * the most it can write (reserve()), then copies with a plain pointer, and sets the
 * printbuf's position and terminating NUL once at the end (done()).
 */
struct out {
	struct printbuf *pb;
	char *p;
	int err;
};

/* Makes room for n more bytes and the NUL.  Growing goes through printbuf_memset(),
 * json-c's one public way to extend a buffer. */
static int
reserve(struct out *o, struct printbuf *pb, size_t n)
{
	int at = pb->bpos;

	o->pb = pb;
	o->err = 0;
	if ((size_t)(pb->size - at) <= n) {
		if (n > INT_MAX / 2 || printbuf_memset(pb, at, 0, (int)n + 1) < 0)
			o->err = ENOMEM;
		pb->bpos = at;
	}
	o->p = pb->buf + at;
	return o->err;
}

static int
done(struct out *o)
{
	if (o->err)
		return o->err;
	o->pb->bpos = (int)(o->p - o->pb->buf);
	*o->p = '\0';
	return 0;
}

static inline void
put(struct out *o, const char *s, size_t n)
{
	memcpy(o->p, s, n);
	o->p += n;
}

#define PUTS(o, lit) put((o), (lit), sizeof(lit) - 1)

static void
put_u64(struct out *o, uint64_t v)
{
	char buf[TEXT_U64_MAX], *end = buf + sizeof(buf), *p = text_u64(end, v);

	put(o, p, (size_t)(end - p));
}

/* A JSON string of any text: at most 6 bytes out per byte in, and the quotes. */
static void
put_string(struct out *o, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	char *p = o->p;

	*p++ = '"';
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c != '"' && c != '\\') {
			*p++ = (char)c;
			continue;
		}
		*p++ = '\\';
		switch (c) {
		case '"': *p++ = '"'; break;
		case '\\': *p++ = '\\'; break;
		case '\b': *p++ = 'b'; break;
		case '\f': *p++ = 'f'; break;
		case '\n': *p++ = 'n'; break;
		case '\r': *p++ = 'r'; break;
		case '\t': *p++ = 't'; break;
		default:
			memcpy(p, "u00", 3);
			p[3] = hex[c >> 4];
			p[4] = hex[c & 15];
			p += 5;
		}
	}
	*p++ = '"';
	o->p = p;
}

/* A string of an alphabet that JSON never escapes (an index uid, a type, an error code:
 * validated when written and again when decoded), or a name of ours. */
static inline void
put_plain(struct out *o, const char *s, size_t len)
{
	*o->p++ = '"';
	put(o, s, len);
	*o->p++ = '"';
}

static void
put_time(struct out *o, int64_t us)
{
	if (us == 0) {
		PUTS(o, "null");
		return;
	}
	*o->p++ = '"';
	o->p += timefmt_rfc3339(us, o->p);
	*o->p++ = '"';
}

/* The keys every task object starts with: uid, indexUid, status, type. */
static void
put_head(struct out *o, const struct task *t)
{
	static const char *const quoted[TASK_NSTATUS] = {
		"\"enqueued\"", "\"processing\"", "\"succeeded\"", "\"failed\"", "\"canceled\"",
	};
	static const unsigned char len[TASK_NSTATUS] = { 10, 12, 11, 8, 10 };

	PUTS(o, "{\"uid\":");
	put_u64(o, t->uid);
	PUTS(o, ",\"indexUid\":");
	if (t->index_uid.ptr == NULL)
		PUTS(o, "null");
	else
		put_plain(o, t->index_uid.ptr, t->index_uid.len);
	PUTS(o, ",\"status\":");
	if ((unsigned)t->status < TASK_NSTATUS)
		put(o, quoted[t->status], len[t->status]);
	else
		PUTS(o, "\"unknown\"");
	PUTS(o, ",\"type\":");
	put_plain(o, t->type.ptr, t->type.len);
}

/* An upper bound of a task object's length: its strings, escaped at worst, and the rest
 * (keys, numbers, times and the link: under 400 bytes). */
static size_t
task_bound(const struct task *t)
{
	return 512 + t->index_uid.len + t->type.len + t->details.len +
	    6 * t->error_message.len + 2 * t->error_code.len +
	    (t->custom_metadata.ptr ? 20 + 6 * t->custom_metadata.len : 0) +
	    320 + 6 * t->progress_step.len;	/* details' queue keys (put_details) */
}

/* A failed task's error object. */
static void
put_error(struct out *o, const struct task *t)
{
	const char *et = task_error_type_name(t->error_type);

	PUTS(o, "{\"message\":");
	put_string(o, t->error_message.ptr, t->error_message.len);
	PUTS(o, ",\"code\":");
	put_plain(o, t->error_code.ptr, t->error_code.len);
	PUTS(o, ",\"type\":");
	et = et ? et : "internal";
	put_plain(o, et, strlen(et));
	PUTS(o, ",\"link\":\"https://docs.meilisearch.com/errors#");
	put(o, t->error_code.ptr, t->error_code.len);
	PUTS(o, "\"}");
}

/* finished - started as Meilisearch prints it, or null unless both are set. */
static void
put_duration(struct out *o, int64_t started, int64_t finished)
{
	if (started != 0 && finished != 0) {
		/* Without overflow whatever the times; a clock that went back gives PT0S. */
		uint64_t d = finished > started ? (uint64_t)finished - (uint64_t)started : 0;
		*o->p++ = '"';
		o->p += timefmt_duration(d > INT64_MAX ? INT64_MAX : (int64_t)d, o->p);
		*o->p++ = '"';
	} else {
		PUTS(o, "null");
	}
}

static void
put_i64(struct out *o, int64_t v)
{
	if (v < 0) {
		*o->p++ = '-';
		put_u64(o, (uint64_t)0 - (uint64_t)v);
	} else {
		put_u64(o, (uint64_t)v);
	}
}

/* A worker's progress in the shape of a Meilisearch batch's: one step, and its share done
 * as a percentage with one decimal (40.0). */
static void
put_progress(struct out *o, const struct task *t)
{
	uint64_t tenths = (uint64_t)t->progress_done * 1000 / t->progress_total;

	PUTS(o, "{\"steps\":[{\"currentStep\":");
	put_string(o, t->progress_step.ptr ? t->progress_step.ptr : "", t->progress_step.len);
	PUTS(o, ",\"finished\":");
	put_u64(o, t->progress_done);
	PUTS(o, ",\"total\":");
	put_u64(o, t->progress_total);
	PUTS(o, "}],\"percentage\":");
	put_u64(o, tenths / 10);
	*o->p++ = '.';
	*o->p++ = (char)('0' + tenths % 10);
	*o->p++ = '}';
}

/*
 * A task's details with what Meilisearch has no field for, where a client ignores it:
 * the queue's own keys appended to the details object (SPEC §6).  A plain task's details
 * are its stored text as it is.  The keys, each only when it says something:
 *   priority     a priority other than the default 0
 *   notBefore    an enqueued task's earliest claim (a delay, or a retry's backoff)
 *   attempts     claims so far, and maxAttempts, for a task with a retry policy
 *   lastError    the error of its last attempt, on a task put back to be retried
 *   progress     a processing task's progress, as its worker last reported it
 */
static void
put_queue_details(struct out *o, const struct task *t)
{
	/* Only a processing task has progress; a record says so, this keeps it true. */
	int progress = t->progress_total != 0 && t->status == TASK_PROCESSING;

	if (!progress && !task_has_sched(t)) {
		put(o, t->details.ptr, t->details.len);
		return;
	}
	/* Compact JSON: "{}" is the only empty object. */
	int more = t->details.len > 2;
	put(o, t->details.ptr, t->details.len - 1);
#define KEY(lit) do { if (more) *o->p++ = ','; more = 1; PUTS(o, lit); } while (0)
	if (t->priority != 0) {
		KEY("\"priority\":");
		put_i64(o, t->priority);
	}
	if (t->status == TASK_ENQUEUED && t->not_before != 0) {
		KEY("\"notBefore\":");
		put_time(o, t->not_before);
	}
	if (t->max_attempts != 0) {
		KEY("\"attempts\":");
		put_u64(o, t->attempts);
		PUTS(o, ",\"maxAttempts\":");
		put_u64(o, t->max_attempts);
	}
	if (t->status != TASK_FAILED && t->error_code.ptr) {
		KEY("\"lastError\":");
		put_error(o, t);
	}
	if (progress) {
		KEY("\"progress\":");
		put_progress(o, t);
	}
#undef KEY
	*o->p++ = '}';
}

/* The details of every task answered: a plain task's stored text as it is, inline. */
static inline void
put_details(struct out *o, const struct task *t)
{
	if (t->progress_total || task_has_sched(t))
		put_queue_details(o, t);
	else
		put(o, t->details.ptr, t->details.len);
}

/* customMetadata where Meilisearch (1.26 on) puts it, when the task has some. */
static void
put_metadata(struct out *o, const struct task *t)
{
	if (t->custom_metadata.ptr) {
		PUTS(o, ",\"customMetadata\":");
		put_string(o, t->custom_metadata.ptr, t->custom_metadata.len);
	}
}

/* duration, enqueuedAt, startedAt, finishedAt (the closing brace is the caller's). */
static void
put_times(struct out *o, const struct task *t)
{
	PUTS(o, ",\"duration\":");
	put_duration(o, t->started_at, t->finished_at);
	PUTS(o, ",\"enqueuedAt\":");
	put_time(o, t->enqueued_at);
	PUTS(o, ",\"startedAt\":");
	put_time(o, t->started_at);
	PUTS(o, ",\"finishedAt\":");
	put_time(o, t->finished_at);
}

static void
put_u64_or_null(struct out *o, int set, uint64_t v)
{
	if (set)
		put_u64(o, v);
	else
		PUTS(o, "null");
}

int
render_task(struct printbuf *pb, const struct task *t)
{
	struct out o;

	if (reserve(&o, pb, task_bound(t)) != 0)
		return o.err;
	put_head(&o, t);
	if (t->status == TASK_CANCELED) {
		PUTS(&o, ",\"canceledBy\":");
		put_u64_or_null(&o, t->canceled_by != TASK_NO_UID, t->canceled_by);
	}
	PUTS(&o, ",\"details\":");
	put_details(&o, t);
	if (t->status == TASK_FAILED) {
		PUTS(&o, ",\"error\":");
		put_error(&o, t);
	}
	put_times(&o, t);
	PUTS(&o, "}");
	return done(&o);
}

int
render_task_v1(struct printbuf *pb, const struct task *t)
{
	const char *st = task_status_name(t->status);
	struct out o;

	/* batchUid, canceledBy and a null error: well under the 64 bytes added. */
	if (reserve(&o, pb, task_bound(t) + 64) != 0)
		return o.err;
	PUTS(&o, "{\"uid\":");
	put_u64(&o, t->uid);
	PUTS(&o, ",\"batchUid\":");
	put_u64_or_null(&o, t->has_batch, t->batch_uid);
	PUTS(&o, ",\"indexUid\":");
	if (t->index_uid.ptr == NULL)
		PUTS(&o, "null");
	else
		put_plain(&o, t->index_uid.ptr, t->index_uid.len);
	PUTS(&o, ",\"status\":");
	st = st ? st : "unknown";
	put_plain(&o, st, strlen(st));
	PUTS(&o, ",\"type\":");
	put_plain(&o, t->type.ptr, t->type.len);
	PUTS(&o, ",\"canceledBy\":");
	put_u64_or_null(&o, t->canceled_by != TASK_NO_UID, t->canceled_by);
	PUTS(&o, ",\"details\":");
	put_details(&o, t);
	PUTS(&o, ",\"error\":");
	if (t->status == TASK_FAILED)
		put_error(&o, t);
	else
		PUTS(&o, "null");
	put_times(&o, t);
	put_metadata(&o, t);
	PUTS(&o, "}");
	return done(&o);
}

int
render_task_as(struct printbuf *pb, const struct task *t, int v1)
{
	return v1 ? render_task_v1(pb, t) : render_task(pb, t);
}

/* {"name":count,...} of a batch's stats; the names escaped (they come from a record). */
static void
put_counts(struct out *o, const struct tbatch_count *v, size_t n)
{
	PUTS(o, "{");
	for (size_t i = 0; i < n; i++) {
		if (i)
			PUTS(o, ",");
		put_string(o, v[i].name.ptr, v[i].name.len);
		PUTS(o, ":");
		put_u64(o, v[i].n);
	}
	PUTS(o, "}");
}

/* A processing batch's progress (tbatch.h) in Meilisearch v1's shape:
 * {"steps":[{"currentStep":"processing tasks","finished":1,"total":3},{...the reporting
 * task's step}],"percentage":33.3}. */
static void
put_batch_progress(struct out *o, const struct tbatch_progress *p)
{
	uint32_t tenths = tbatch_progress_tenths(p);

	PUTS(o, "{\"steps\":[{\"currentStep\":\"processing tasks\",\"finished\":");
	put_u64(o, p->finished);
	PUTS(o, ",\"total\":");
	put_u64(o, p->total);
	if (p->has_step) {
		PUTS(o, "},{\"currentStep\":");
		put_string(o, p->step.ptr ? p->step.ptr : "", p->step.len);
		PUTS(o, ",\"finished\":");
		put_u64(o, p->step_done);
		PUTS(o, ",\"total\":");
		put_u64(o, p->step_total);
	}
	PUTS(o, "}],\"percentage\":");
	put_u64(o, tenths / 10);
	*o->p++ = '.';
	*o->p++ = (char)('0' + tenths % 10);
	*o->p++ = '}';
}

int
render_tbatch(struct printbuf *pb, const struct tbatch *b, const struct tbatch_progress *p)
{
	size_t bound = 640 + b->details.len + 6 * b->strategy.len +
	    (p ? 200 + 6 * p->step.len : 0);
	struct out o;
	int first = 1;

	for (size_t i = 0; i < b->ntypes; i++)
		bound += 6 * b->types[i].name.len + 16;
	for (size_t i = 0; i < b->nindexes; i++)
		bound += 6 * b->indexes[i].name.len + 16;
	if (reserve(&o, pb, bound) != 0)
		return o.err;
	PUTS(&o, "{\"uid\":");
	put_u64(&o, b->uid);
	PUTS(&o, ",\"progress\":");
	if (p)
		put_batch_progress(&o, p);
	else
		PUTS(&o, "null");
	PUTS(&o, ",\"details\":");
	put(&o, b->details.ptr, b->details.len);
	PUTS(&o, ",\"stats\":{\"totalNbTasks\":");
	put_u64(&o, b->total);
	PUTS(&o, ",\"status\":{");
	for (int i = 0; i < TASK_NSTATUS; i++) {
		const char *st = task_status_name((enum task_status)i);
		if (b->status[i] == 0)
			continue;
		if (!first)
			PUTS(&o, ",");
		first = 0;
		put_plain(&o, st, strlen(st));
		PUTS(&o, ":");
		put_u64(&o, b->status[i]);
	}
	PUTS(&o, "},\"types\":");
	put_counts(&o, b->types, b->ntypes);
	PUTS(&o, ",\"indexUids\":");
	put_counts(&o, b->indexes, b->nindexes);
	PUTS(&o, "},\"duration\":");
	put_duration(&o, b->started_at, b->finished_at);
	PUTS(&o, ",\"startedAt\":");
	put_time(&o, b->started_at);
	PUTS(&o, ",\"finishedAt\":");
	put_time(&o, b->finished_at);
	PUTS(&o, ",\"batchStrategy\":");
	put_string(&o, b->strategy.ptr, b->strategy.len);
	PUTS(&o, "}");
	return done(&o);
}

int
render_task_summary(struct printbuf *pb, const struct task *t)
{
	struct out o;

	if (reserve(&o, pb, task_bound(t)) != 0)
		return o.err;
	put_head(&o, t);
	PUTS(&o, ",\"enqueuedAt\":");
	put_time(&o, t->enqueued_at);
	put_metadata(&o, t);
	PUTS(&o, "}");
	return done(&o);
}

int
render_error(struct printbuf *pb, const char *message, const char *code, const char *type)
{
	size_t ml = strlen(message), cl = strlen(code), tl = strlen(type);
	struct out o;

	if (reserve(&o, pb, 100 + 6 * (ml + cl + tl) + cl) != 0)
		return o.err;
	PUTS(&o, "{\"message\":");
	put_string(&o, message, ml);
	PUTS(&o, ",\"code\":");
	put_string(&o, code, cl);
	PUTS(&o, ",\"type\":");
	put_string(&o, type, tl);
	PUTS(&o, ",\"link\":\"https://docs.meilisearch.com/errors#");
	put(&o, code, cl);
	PUTS(&o, "\"}");
	return done(&o);
}

int
render_list_open(struct printbuf *pb)
{
	struct out o;

	if (reserve(&o, pb, 16) != 0)
		return o.err;
	PUTS(&o, "{\"results\":[");
	return done(&o);
}

int
render_comma(struct printbuf *pb)
{
	struct out o;

	if (reserve(&o, pb, 1) != 0)
		return o.err;
	PUTS(&o, ",");
	return done(&o);
}

int
render_list_close(struct printbuf *pb, uint64_t total, unsigned limit, uint64_t from,
    uint64_t next)
{
	struct out o;

	if (reserve(&o, pb, 160) != 0)
		return o.err;
	PUTS(&o, "],\"total\":");
	put_u64(&o, total);
	PUTS(&o, ",\"limit\":");
	put_u64(&o, limit);
	PUTS(&o, ",\"from\":");
	if (from == TASK_NO_UID)
		PUTS(&o, "null");
	else
		put_u64(&o, from);
	PUTS(&o, ",\"next\":");
	if (next == TASK_NO_UID)
		PUTS(&o, "null");
	else
		put_u64(&o, next);
	PUTS(&o, "}");
	return done(&o);
}

/* Appends a literal of ours, or a number between two of them, outside a task's object. */
static int
frame(struct printbuf *pb, const char *lit, size_t len)
{
	struct out o;

	if (reserve(&o, pb, len) != 0)
		return o.err;
	put(&o, lit, len);
	return done(&o);
}

static int
frame_u64(struct printbuf *pb, const char *head, size_t hlen, uint64_t v, const char *tail,
    size_t tlen)
{
	struct out o;

	if (reserve(&o, pb, hlen + 20 + tlen) != 0)
		return o.err;
	put(&o, head, hlen);
	put_u64(&o, v);
	put(&o, tail, tlen);
	return done(&o);
}

#define FRAME(pb, lit) frame((pb), (lit), sizeof(lit) - 1)
#define FRAME_U64(pb, head, v, tail) \
	frame_u64((pb), (head), sizeof(head) - 1, (v), (tail), sizeof(tail) - 1)

int
render_event(struct printbuf *pb, uint64_t seq, const struct task *t, int v1)
{
	int rc;

	if ((rc = FRAME_U64(pb, "id: ", seq, "\nevent: task\ndata: ")) != 0 ||
	    (rc = render_task_as(pb, t, v1)) != 0)
		return rc;
	return FRAME(pb, "\n\n");
}

int
render_change(struct printbuf *pb, uint64_t seq, const struct task *t, int v1)
{
	int rc;

	if ((rc = FRAME_U64(pb, "{\"seq\":", seq, ",\"task\":")) != 0 ||
	    (rc = render_task_as(pb, t, v1)) != 0)
		return rc;
	return FRAME(pb, "}\n");
}

int
render_filter_details(struct printbuf *pb, uint64_t matched, const char *what,
    uint64_t changed, const char *filter)
{
	size_t wl = strlen(what), fl = strlen(filter);
	struct out o;

	if (fl > INT_MAX / 8 || reserve(&o, pb, 80 + wl + 6 * fl) != 0)
		return ENOMEM;
	PUTS(&o, "{\"matchedTasks\":");
	put_u64(&o, matched);
	PUTS(&o, ",");
	put_plain(&o, what, wl);
	PUTS(&o, ":");
	put_u64(&o, changed);
	PUTS(&o, ",\"originalFilter\":");
	put_string(&o, filter, fl);
	PUTS(&o, "}");
	return done(&o);
}

int
render_string(struct printbuf *pb, const char *s, size_t len)
{
	struct out o;

	if (len > INT_MAX / 8 || reserve(&o, pb, 6 * len + 2) != 0)
		return ENOMEM;
	put_string(&o, s, len);
	return done(&o);
}

/* A list's items as a page walk gives them: the buffer, the task layout, whether an item
 * came before (the comma); for batches, where their tasks are read. */
struct list {
	struct printbuf *pb;
	int v1;
	int items;
	store *s;
	MDB_txn *txn;
};

static int
list_task(void *ctx, const struct task *t)
{
	struct list *l = ctx;
	int rc;

	if (l->items++ && (rc = render_comma(l->pb)) != 0)
		return rc;
	return render_task_as(l->pb, t, l->v1);
}

int
render_task_page(struct printbuf *pb, store *s, MDB_txn *txn, store_iter *it,
    const struct query *q, uint64_t *bad)
{
	struct list l = { pb, q->v1, 0 };
	struct query_page pg;
	int rc;

	if ((rc = render_list_open(pb)) != 0 ||
	    (rc = query_page(s, txn, it, q, list_task, &l, &pg, bad)) != 0)
		return rc;
	return render_list_close(pb, pg.total, q->limit, pg.first, pg.next);
}

/* A batch with its progress while it is processing (its tasks read), null after. */
static int
put_tbatch(struct list *l, const struct tbatch *b)
{
	struct tbatch_progress p;
	int rc;

	if (b->finished_at != 0)
		return render_tbatch(l->pb, b, NULL);
	if ((rc = query_batch_progress(l->s, l->txn, b, &p)) != 0)
		return rc;
	return render_tbatch(l->pb, b, &p);
}

static int
list_batch(void *ctx, const struct tbatch *b)
{
	struct list *l = ctx;
	int rc;

	if (l->items++ && (rc = render_comma(l->pb)) != 0)
		return rc;
	return put_tbatch(l, b);
}

int
render_batch_page(struct printbuf *pb, store *s, MDB_txn *txn, const struct query *q,
    const struct task_str *allow, size_t nallow, uint64_t *bad)
{
	struct list l = { pb, q->v1, 0, s, txn };
	struct query_page pg;
	int rc;

	if ((rc = render_list_open(pb)) != 0 ||
	    (rc = query_batch_page(s, txn, q, allow, nallow, list_batch, &l, &pg, bad)) != 0)
		return rc;
	return render_list_close(pb, pg.total, q->limit, pg.first, pg.next);
}

static int
one_batch(void *ctx, const struct tbatch *b)
{
	return put_tbatch(ctx, b);
}

int
render_batch_uid(struct printbuf *pb, store *s, MDB_txn *txn, uint64_t uid,
    const struct task_str *allow, size_t nallow)
{
	struct list l = { pb, 1, 0, s, txn };

	return query_batch_get(s, txn, uid, allow, nallow, one_batch, &l);
}
