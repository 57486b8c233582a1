/* JSON output built by hand into a json-c printbuf: keys in SPEC order, no re-parse.  Tasks,
 * errors, lists and their pages, the event stream's frames here; batches in render_batch.c. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lmtasks/query.h"
#include "lmtasks/render.h"
#include "lmtasks/text.h"
#include "lmtasks/timefmt.h"
#include "render_out.h"

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

	PUTS(o, "{\"steps\":[");
	put_step(o, t->progress_step, t->progress_done, t->progress_total);
	put_percentage(o, tenths);
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
