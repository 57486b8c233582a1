/* A Meilisearch batch as JSON (its stats, and its progress while it is processing), and the
 * batch pages and single batches the API answers: render.c's way, through render_out.h. */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lmtasks/query.h"
#include "lmtasks/render.h"
#include "lmtasks/tbatch.h"
#include "render_out.h"

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

	static const char processing[] = "processing tasks";

	PUTS(o, "{\"steps\":[");
	put_step(o, (struct task_str){ processing, sizeof(processing) - 1 }, p->finished, p->total);
	if (p->has_step) {
		*o->p++ = ',';
		put_step(o, p->step, p->step_done, p->step_total);
	}
	put_percentage(o, tenths);
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
