/* GET /metrics's text: Prometheus's exposition format 0.0.4 (presentation), from a
 * metrics_read() snapshot and the workers' counters (metrics.h). */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "lmtasks/metrics.h"
#include "lmtasks/text.h"
#include "metrics_internal.h"

/* The text so far: gathered here and appended to pb a few kilobytes at a time (an append
 * per piece cost more than the rest of a scrape); rc stays ENOMEM once one failed. */
struct out {
	struct printbuf *pb;
	int rc;
	size_t n;
	char buf[8192];
};

static void
flush(struct out *o)
{
	/* No printbuf (route_labels()'s): what does not fit is a failure, never a write. */
	if (o->rc == 0 && o->n && (o->pb == NULL ||
	    printbuf_memappend(o->pb, o->buf, (int)o->n) < 0))
		o->rc = ENOMEM;
	o->n = 0;
}

static inline void
put(struct out *o, const char *s, size_t n)
{
	if (o->n + n > sizeof(o->buf)) {
		flush(o);
		if (n > sizeof(o->buf)) {
			if (o->rc == 0 && (o->pb == NULL || printbuf_memappend(o->pb, s, (int)n) < 0))
				o->rc = ENOMEM;
			return;
		}
	}
	memcpy(o->buf + o->n, s, n);
	o->n += n;
}

#define LIT(o, lit) put((o), (lit), sizeof(lit) - 1)

static void
put_str(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static void
put_u64(struct out *o, uint64_t v)
{
	char buf[TEXT_U64_MAX], *end = buf + sizeof(buf), *p = text_u64(end, v);

	put(o, p, (size_t)(end - p));
}

/* v and the line's end. */
static void
put_u64_line(struct out *o, uint64_t v)
{
	put_u64(o, v);
	LIT(o, "\n");
}

/* µs as seconds, with six decimals (no floating point: exact), and the line's end. */
static void
put_secs_line(struct out *o, int64_t us)
{
	char frac[7];

	if (us < 0)
		us = 0;
	put_u64(o, (uint64_t)us / 1000000);
	for (int i = 5, f = (int)(us % 1000000); i >= 0; i--, f /= 10)
		frac[i] = (char)('0' + f % 10);
	frac[6] = '\n';
	LIT(o, ".");
	put(o, frac, 7);
}

/* A label value: backslash, double quote and line feed escaped, as the format asks. */
static void
put_label(struct out *o, struct task_str v)
{
	size_t from = 0;

	for (size_t i = 0; i < v.len; i++) {
		/* Letters and digits need no look past the first test. */
		if ((unsigned char)v.ptr[i] >= '0' && v.ptr[i] != '\\')
			continue;
		const char *esc = v.ptr[i] == '\\' ? "\\\\" : v.ptr[i] == '"' ? "\\\"" :
		    v.ptr[i] == '\n' ? "\\n" : NULL;
		if (esc == NULL)
			continue;
		put(o, v.ptr + from, i - from);
		put_str(o, esc);
		from = i + 1;
	}
	put(o, v.ptr + from, v.len - from);
}

static void
family(struct out *o, const char *name, const char *type, const char *help)
{
	LIT(o, "# HELP ");
	put_str(o, name);
	LIT(o, " ");
	put_str(o, help);
	LIT(o, "\n# TYPE ");
	put_str(o, name);
	LIT(o, " ");
	put_str(o, type);
	LIT(o, "\n");
}

/* A family of one sample without labels. */
static void
single(struct out *o, const char *name, const char *type, const char *help, uint64_t v)
{
	family(o, name, type, help);
	put_str(o, name);
	LIT(o, " ");
	put_u64(o, v);
	LIT(o, "\n");
}

/* name{a="x"[,b="y"]} v */
static void
sample2(struct out *o, const char *name, const char *a, struct task_str x, const char *b,
    struct task_str y, uint64_t v)
{
	put_str(o, name);
	LIT(o, "{");
	put_str(o, a);
	LIT(o, "=\"");
	put_label(o, x);
	if (b) {
		LIT(o, "\",");
		put_str(o, b);
		LIT(o, "=\"");
		put_label(o, y);
	}
	LIT(o, "\"} ");
	put_u64(o, v);
	LIT(o, "\n");
}

static struct task_str
str(const char *s)
{
	return (struct task_str){ s, strlen(s) };
}

static struct task_str
num(char buf[24], uint64_t v)
{
	char *p = text_u64(buf + 24, v);
	size_t n = (size_t)(buf + 24 - p);

	memmove(buf, p, n);
	return (struct task_str){ buf, n };
}

/* Meilisearch's task metrics, with its names and labels. */
static void
render_meilisearch(struct out *o, const struct metrics_store *m)
{
	const uint64_t *st = m->st.by_status;

	family(o, "meilisearch_nb_tasks", "gauge", "Meilisearch Number of tasks");
	for (int i = 0; i < TASK_NSTATUS; i++) {
		LIT(o, "meilisearch_nb_tasks{kind=\"statuses\",value=\"");
		put_str(o, task_status_name((enum task_status)i));
		LIT(o, "\"} ");
		put_u64_line(o, st[i]);
	}
	for (size_t i = 0; i < m->ntypes; i++) {
		LIT(o, "meilisearch_nb_tasks{kind=\"types\",value=\"");
		put_label(o, m->types[i].name);
		LIT(o, "\"} ");
		put_u64_line(o, m->types[i].n);
	}
	for (size_t i = 0; i < m->nindexes; i++) {
		uint64_t n = 0;
		for (int j = 0; j < TASK_NSTATUS; j++)
			n += m->indexes[i].by_status[j];
		LIT(o, "meilisearch_nb_tasks{kind=\"indexes\",value=\"");
		put_label(o, m->indexes[i].name);
		LIT(o, "\"} ");
		put_u64_line(o, n);
	}
	single(o, "meilisearch_index_count", "gauge", "Meilisearch Index Count", m->st.indexes);
	single(o, "meilisearch_is_indexing", "gauge", "Meilisearch Is Indexing",
	    st[TASK_PROCESSING] > 0);
	family(o, "meilisearch_task_queue_latency_seconds", "gauge",
	    "Meilisearch Task Queue Latency in Seconds");
	LIT(o, "meilisearch_task_queue_latency_seconds ");
	put_secs_line(o, m->oldest_waiting_at ? m->now - m->oldest_waiting_at : 0);
	if (m->last_change_at)
		single(o, "meilisearch_last_update", "gauge", "Meilisearch Last Update",
		    (uint64_t)(m->last_change_at / 1000000));
	single(o, "meilisearch_db_size_bytes", "gauge", "Meilisearch DB Size In Bytes",
	    m->st.used_bytes);
	single(o, "meilisearch_used_db_size_bytes", "gauge", "Meilisearch Used DB Size In Bytes",
	    m->live_bytes);
	single(o, "meilisearch_task_queue_max_size", "gauge", "Meilisearch Task Queue Max Size",
	    m->max_bytes);
	single(o, "meilisearch_task_queue_used_size", "gauge", "Meilisearch Task Queue Used Size",
	    m->live_bytes);
	single(o, "meilisearch_task_queue_size_until_stop_registering", "gauge",
	    "Meilisearch Task Queue Size Until Stop Registering",
	    m->limit_bytes > m->live_bytes ? m->limit_bytes - m->live_bytes : 0);
}

/* The queue's own metrics, where Meilisearch has none. */
static void
render_queue(struct out *o, const struct metrics_store *m)
{
	const uint64_t *st = m->st.by_status;

	family(o, "lmtasks_tasks", "gauge", "Tasks kept, by index and status (the store's own "
	    "tasks, under no index, are left out)");
	for (size_t i = 0; i < m->nindexes; i++) {
		char name[TASK_INDEX_MAX * 2 + 32];
		struct out lo;
		/* The index's part of its five lines, escaped once. */
		lo.pb = NULL;
		lo.rc = 0;
		lo.n = 0;
		LIT(&lo, "lmtasks_tasks{index=\"");
		put_label(&lo, m->indexes[i].name);
		LIT(&lo, "\",status=\"");
		size_t nl = lo.n < sizeof(name) ? lo.n : 0;
		memcpy(name, lo.buf, nl);
		for (int j = 0; j < TASK_NSTATUS; j++) {
			put(o, name, nl);
			put_str(o, task_status_name((enum task_status)j));
			LIT(o, "\"} ");
			put_u64_line(o, m->indexes[i].by_status[j]);
		}
	}
	single(o, "lmtasks_tasks_enqueued_total", "counter", "Tasks ever enqueued (the next "
	    "task uid)", m->st.next_uid);
	single(o, "lmtasks_tasks_finished_total", "counter", "Tasks ever finished, deleted ones "
	    "included: uids handed out that are neither enqueued nor processing",
	    m->st.next_uid - st[TASK_ENQUEUED] - st[TASK_PROCESSING]);
	family(o, "lmtasks_queue_oldest_age_seconds", "gauge", "Age of the oldest enqueued task "
	    "(0: none)");
	LIT(o, "lmtasks_queue_oldest_age_seconds ");
	put_secs_line(o, m->oldest_enqueued_at ? m->now - m->oldest_enqueued_at : 0);
	single(o, "lmtasks_leases", "gauge", "Processing tasks that hold a lease", m->leases);
	single(o, "lmtasks_leases_expired", "gauge", "Leases past their end, not reaped yet",
	    m->leases_expired);
	single(o, "lmtasks_changes_total", "counter", "Changes ever logged: the change log's "
	    "newest sequence", m->log_last);
	single(o, "lmtasks_changes_first_sequence", "gauge", "The change log's oldest sequence "
	    "kept", m->log_first);
}

/* Each webhook's cursor against the log's head. */
static void
render_webhooks(struct out *o, const struct metrics_store *m)
{
	static const struct {
		const char *name, *type, *help;
	} fam[] = {
		{ "lmtasks_webhook_lag_changes", "gauge", "Changes logged after the webhook's cursor" },
		{ "lmtasks_webhook_delivered_total", "counter", "Tasks delivered to the webhook" },
		{ "lmtasks_webhook_missed_total", "counter", "Changes pruned before the webhook got "
		    "them" },
		{ "lmtasks_webhook_failing", "gauge", "1 when the webhook's last attempt failed" },
	};
	char id[24];

	for (size_t f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
		family(o, fam[f].name, fam[f].type, fam[f].help);
		for (size_t i = 0; i < m->nwebhooks; i++) {
			const struct metrics_webhook *w = &m->webhooks[i];
			uint64_t v = f == 0 ? (m->log_last > w->cursor ? m->log_last - w->cursor : 0) :
			    f == 1 ? w->delivered : f == 2 ? w->missed : (uint64_t)w->failing;
			sample2(o, fam[f].name, "webhook", num(id, w->id), NULL, str(""), v);
		}
	}
}

static void
render_store(struct out *o, const struct metrics_store *m)
{
	static const char *const cut_name[METRICS_NCUT] = {
		"indexes", "types", "webhooks", "leases",
	};

	single(o, "lmtasks_store_tasks", "gauge", "Tasks kept", m->st.tasks);
	single(o, "lmtasks_store_map_size_bytes", "gauge", "The LMDB map's size", m->st.map_size);
	single(o, "lmtasks_store_max_bytes", "gauge", "The maxBytes setting", m->max_bytes);
	single(o, "lmtasks_store_enqueue_limit_bytes", "gauge", "Used bytes past which new tasks "
	    "are refused", m->limit_bytes);
	family(o, "lmtasks_metrics_cut", "gauge", "1 when a family was cut to its bound this "
	    "scrape");
	for (int i = 0; i < METRICS_NCUT; i++)
		sample2(o, "lmtasks_metrics_cut", "family", str(cut_name[i]), NULL, str(""),
		    (m->cut >> i) & 1);
}

/* {method="…",path="…" into buf (room for 64 + 2 * the path): what every line of a route
 * repeats, escaped once.  Returns its length. */
static size_t
route_labels(char *buf, size_t cap, int a, const char *path)
{
	struct out o;
	size_t n;

	o.pb = NULL;
	o.rc = 0;
	o.n = 0;
	LIT(&o, "{method=\"");
	put_str(&o, metrics_method_text[a]);
	LIT(&o, "\",path=\"");
	put_label(&o, str(path));
	LIT(&o, "\"");
	n = o.n < cap ? o.n : cap;
	memcpy(buf, o.buf, n);
	return n;
}

/* One route's latency histogram, its buckets cumulated; labels are route_labels()'s. */
static void
histogram(struct out *o, int a, int r, const char *labels, size_t ll)
{
	uint64_t n = 0;

	for (int b = 0; b <= METRICS_BUCKETS; b++) {
		n += metrics_sum_bucket(a, r, b);
		LIT(o, "meilisearch_http_response_time_seconds_bucket");
		put(o, labels, ll);
		LIT(o, ",le=\"");
		put_str(o, metrics_bound_text[b]);
		LIT(o, "\"} ");
		put_u64(o, n);
		LIT(o, "\n");
	}
	LIT(o, "meilisearch_http_response_time_seconds_sum");
	put(o, labels, ll);
	LIT(o, "} ");
	put_secs_line(o, (int64_t)metrics_sum_us(a, r));
	LIT(o, "meilisearch_http_response_time_seconds_count");
	put(o, labels, ll);
	LIT(o, "} ");
	put_u64(o, n);
	LIT(o, "\n");
}

/* The responder's requests, latency, streams and page cache, summed over its workers. */
static void
render_responder(struct out *o, const char *const paths[METRICS_ROUTES],
    size_t (*streams)(void))
{
	uint64_t seen[METRICS_METHODS][METRICS_ROUTES], used = metrics_used();
	char labels[1024];
	size_t ll;

	family(o, "meilisearch_http_requests_total", "counter", "Meilisearch HTTP requests total");
	for (int a = 0; a < METRICS_METHODS; a++) {
		for (int r = 0; r < METRICS_ROUTES; r++) {
			const char *path = paths[r] && *paths[r] ? paths[r] : "unmatched";
			seen[a][r] = 0;
			ll = 0;
			if (!(used >> (a * METRICS_ROUTES + r) & 1))
				continue;
			for (int s = 0; s < METRICS_STATUSES; s++) {
				uint64_t n = metrics_sum_requests(a, r, s);
				if (n == 0)
					continue;
				if (ll == 0)
					ll = route_labels(labels, sizeof(labels), a, path);
				seen[a][r] += n;
				LIT(o, "meilisearch_http_requests_total");
				put(o, labels, ll);
				LIT(o, ",status=\"");
				put_str(o, metrics_status_text[s]);
				LIT(o, "\"} ");
				put_u64(o, n);
				LIT(o, "\n");
			}
		}
	}
	family(o, "meilisearch_http_response_time_seconds", "histogram",
	    "Meilisearch HTTP response times");
	for (int a = 0; a < METRICS_METHODS; a++) {
		for (int r = 0; r < METRICS_ROUTES; r++) {
			if (seen[a][r] == 0)
				continue;
			ll = route_labels(labels, sizeof(labels), a,
			    paths[r] && *paths[r] ? paths[r] : "unmatched");
			histogram(o, a, r, labels, ll);
		}
	}
	single(o, "lmtasks_streams_open", "gauge", "Event streams (GET /tasks/stream) held open",
	    streams ? streams() : 0);
	single(o, "lmtasks_page_cache_hits_total", "counter", "List pages served from a worker's "
	    "page cache", metrics_sum_pages(1));
	single(o, "lmtasks_page_cache_misses_total", "counter", "List pages rendered (not kept)",
	    metrics_sum_pages(0));
}

int
metrics_render(struct printbuf *pb, const struct metrics_store *m,
    const char *const paths[METRICS_ROUTES])
{
	size_t (*streams)(void);
	struct out o;

	o.pb = pb;
	o.rc = 0;
	o.n = 0;
	render_meilisearch(&o, m);
	render_queue(&o, m);
	render_webhooks(&o, m);
	render_store(&o, m);
	if (metrics_serving(&streams))
		render_responder(&o, paths, streams);
	flush(&o);
	return o.rc;
}
