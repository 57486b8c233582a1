/* GET /metrics: the store's numbers, the responder's counters, the text (see metrics.h). */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "lmtasks/error.h"
#include "lmtasks/feed.h"
#include "lmtasks/metrics.h"
#include "lmtasks/settings.h"
#include "lmtasks/webhook.h"

/* ---- the responder's own counters ---- */

/* One worker's: written by its thread alone (load, add, store: no lock, no locked
 * instruction), read by a scrape with relaxed loads, which may see a request's count
 * before its latency: a scrape is a sample, not a transaction. */
struct metrics_worker {
	struct metrics_worker *next;
	uint64_t requests[METRICS_METHODS][METRICS_ROUTES][METRICS_STATUSES];
	uint64_t buckets[METRICS_METHODS][METRICS_ROUTES][METRICS_BUCKETS + 1];
	uint64_t sum_us[METRICS_METHODS][METRICS_ROUTES];
	uint64_t page_hits, page_misses;
};

/* Every worker's block, newest first: added under the lock, never removed. */
static struct metrics_worker *workers;
static pthread_mutex_t workers_mu = PTHREAD_MUTEX_INITIALIZER;
static int serving;
static size_t (*open_streams)(void);

/* The statuses the responder answers (http.c), as labels; the last one is any other. */
static const char *const status_text[METRICS_STATUSES] = {
	"200", "204", "304", "400", "401", "403", "404", "405", "410", "414", "422", "431",
	"500", "503", "other",
};

/* The latency buckets' upper bounds, µs and as the le label says them. */
static const int64_t bound_us[METRICS_BUCKETS] = {
	100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000,
};
static const char *const bound_text[METRICS_BUCKETS + 1] = {
	"0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
	"0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
};
static const char *const method_text[METRICS_METHODS] = { "GET", "HEAD", "other" };

static inline void
bump(uint64_t *c, uint64_t by)
{
	__atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + by, __ATOMIC_RELAXED);
}

static inline uint64_t
peek(const uint64_t *c)
{
	return __atomic_load_n(c, __ATOMIC_RELAXED);
}

int
metrics_worker_new(metrics_worker **out)
{
	struct metrics_worker *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return ENOMEM;
	pthread_mutex_lock(&workers_mu);
	m->next = workers;
	__atomic_store_n(&workers, m, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&workers_mu);
	*out = m;
	return 0;
}

/* The status's slot in status_text. */
static unsigned
status_slot(int status)
{
	switch (status) {
	case 200: return 0;
	case 204: return 1;
	case 304: return 2;
	case 400: return 3;
	case 401: return 4;
	case 403: return 5;
	case 404: return 6;
	case 405: return 7;
	case 410: return 8;
	case 414: return 9;
	case 422: return 10;
	case 431: return 11;
	case 500: return 12;
	case 503: return 13;
	default: return METRICS_STATUSES - 1;
	}
}

void
metrics_note(metrics_worker *m, const char *method, int route, int status, int64_t us)
{
	unsigned mi = 0, ri, b = 0;

	if (m == NULL)
		return;
	if (method && !(method[0] == 'G' && method[1] == 'E' && method[2] == 'T' && !method[3]))
		mi = strcmp(method, "HEAD") == 0 ? 1 : 2;
	ri = route >= 0 && route < METRICS_ROUTES ? (unsigned)route : METRICS_ROUTES - 1;
	while (b < METRICS_BUCKETS && us > bound_us[b])
		b++;
	bump(&m->requests[mi][ri][status_slot(status)], 1);
	bump(&m->buckets[mi][ri][b], 1);
	bump(&m->sum_us[mi][ri], us > 0 ? (uint64_t)us : 0);
}

void
metrics_page(metrics_worker *m, int hit)
{
	if (m)
		bump(hit ? &m->page_hits : &m->page_misses, 1);
}

void
metrics_serve(size_t (*streams)(void))
{
	open_streams = streams;
	__atomic_store_n(&serving, 1, __ATOMIC_RELEASE);
}

/* ---- the store's numbers ---- */

/* Adds one count to the types (index "*") or to its index's series. */
static int
add_count(void *ctx, struct task_str index, enum task_status status, struct task_str type,
    uint64_t n)
{
	struct metrics_store *m = ctx;
	size_t i;

	if (index.ptr == NULL)
		return 0;	/* the store's own tasks: in the totals, under no index */
	if (index.len == 1 && index.ptr[0] == '*') {
		for (i = 0; i < m->ntypes; i++) {
			if (m->types[i].name.len == type.len &&
			    memcmp(m->types[i].name.ptr, type.ptr, type.len) == 0)
				break;
		}
		if (i == m->ntypes && i == METRICS_TYPES_MAX) {
			m->cut |= 1u << METRICS_CUT_TYPES;
			return 0;
		}
		if (i == m->ntypes)
			m->types[m->ntypes++] = (struct metrics_type){ type, 0 };
		m->types[i].n += n;
		return 0;
	}
	/* The counts are in index order: a new name is a new index. */
	struct metrics_index *last = m->nindexes ? &m->indexes[m->nindexes - 1] : NULL;
	if (last == NULL || last->name.len != index.len ||
	    memcmp(last->name.ptr, index.ptr, index.len) != 0) {
		if (m->nindexes == METRICS_INDEXES_MAX) {
			m->cut |= 1u << METRICS_CUT_INDEXES;
			return 1;	/* the rest of the walk is more indexes */
		}
		if (m->nindexes == m->indexes_room) {
			size_t room = m->indexes_room ? m->indexes_room * 4 : 16;
			void *p = realloc(m->indexes, room * sizeof(*m->indexes));
			if (p == NULL)
				return ENOMEM;
			m->indexes = p;
			m->indexes_room = room;
		}
		last = &m->indexes[m->nindexes++];
		memset(last, 0, sizeof(*last));
		last->name = index;
	}
	last->by_status[status] += n;
	return 0;
}

static int
add_webhook(void *ctx, const struct webhook *w)
{
	struct metrics_store *m = ctx;

	if (m->nwebhooks == METRICS_WEBHOOKS_MAX) {
		m->cut |= 1u << METRICS_CUT_WEBHOOKS;
		return 1;
	}
	m->webhooks[m->nwebhooks++] = (struct metrics_webhook){ w->id, w->cursor, w->delivered,
	    w->missed, w->error.ptr != NULL };
	return 0;
}

/* The enqueuedAt of the first task of status (0: none). */
static int
first_enqueued_at(store *s, MDB_txn *txn, store_iter *it, enum task_status status,
    int64_t *at)
{
	unsigned char key = (unsigned char)status;
	struct task t;
	uint64_t uid;
	int rc = store_iter_seek(it, STORE_SEQ_STATUS, &key, 1, 0, 0, &uid);

	*at = 0;
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc == 0 && (rc = store_get(s, txn, uid, &t)) == 0)
		*at = t.enqueued_at;
	return rc;
}

/* The queue's head: its oldest enqueued task, and the oldest of those and the processing. */
static int
read_queue(store *s, MDB_txn *txn, store_iter *it, struct metrics_store *m)
{
	store_iter *own = NULL;
	int64_t processing_at;
	int rc;

	if (it == NULL && (rc = store_iter_open(s, txn, &own)) != 0)
		return rc;
	if ((rc = first_enqueued_at(s, txn, it ? it : own, TASK_ENQUEUED,
	    &m->oldest_enqueued_at)) == 0 &&
	    (rc = first_enqueued_at(s, txn, it ? it : own, TASK_PROCESSING, &processing_at)) == 0) {
		m->oldest_waiting_at = m->oldest_enqueued_at;
		if (processing_at && (m->oldest_waiting_at == 0 ||
		    processing_at < m->oldest_waiting_at))
			m->oldest_waiting_at = processing_at;
	}
	store_iter_close(own);
	return rc;
}

/* The change log: its bounds and when its newest change was written. */
static int
read_log(store *s, MDB_txn *txn, struct metrics_store *m)
{
	struct feed_entry e;
	feed_iter *fi;
	int rc;

	if ((rc = feed_bounds(s, txn, &m->log_first, &m->log_last)) != 0 || m->log_last == 0)
		return rc;
	if ((rc = feed_iter_open(s, txn, m->log_last - 1, &fi)) != 0)
		return rc == LMT_EPRUNED ? 0 : rc;
	if ((rc = feed_iter_next(fi, &e)) == 0)
		m->last_change_at = e.at;
	feed_iter_close(fi);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int
metrics_read(store *s, MDB_txn *txn, store_iter *it, int64_t now, struct metrics_store *m)
{
	struct settings set;
	int rc;

	memset(m, 0, offsetof(struct metrics_store, types));
	m->now = now;
	if ((rc = store_stats(s, txn, &m->st)) != 0 ||
	    (rc = store_live_bytes(s, txn, &m->live_bytes)) != 0 ||
	    (rc = settings_read(s, txn, &set)) != 0 ||
	    (rc = store_count_walk(s, txn, add_count, m)) != 0 ||
	    (rc = read_queue(s, txn, it, m)) != 0 ||
	    (rc = store_lease_count(s, txn, now, METRICS_LEASES_MAX, &m->leases,
	    &m->leases_expired)) != 0 ||
	    (rc = read_log(s, txn, m)) != 0 ||
	    (rc = webhook_walk(s, txn, add_webhook, m)) != 0) {
		metrics_store_free(m);
		return rc;
	}
	if (m->leases_expired == METRICS_LEASES_MAX && m->leases > 2 * METRICS_LEASES_MAX)
		m->cut |= 1u << METRICS_CUT_LEASES;
	m->max_bytes = set.v[SETTING_MAX_BYTES];
	m->limit_bytes = m->max_bytes / 100 * SETTINGS_ENQUEUE_PERCENT;
	return 0;
}

void
metrics_store_free(struct metrics_store *m)
{
	free(m->indexes);
	m->indexes = NULL;
	m->nindexes = m->indexes_room = 0;
}

/* ---- the text ---- */

/* The text so far; rc stays ENOMEM once an append failed. */
struct out {
	struct printbuf *pb;
	int rc;
};

static void
put(struct out *o, const char *s, size_t n)
{
	if (o->rc == 0 && printbuf_memappend(o->pb, s, (int)n) < 0)
		o->rc = ENOMEM;
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
	char buf[24], *q = buf + sizeof(buf);

	do {
		*--q = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	put(o, q, (size_t)(buf + sizeof(buf) - q));
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
	char *q = buf + 24;
	size_t n;

	do {
		*--q = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	n = (size_t)(buf + 24 - q);
	memmove(buf, q, n);
	return (struct task_str){ buf, n };
}

/* Meilisearch's task metrics, with its names and labels. */
static void
render_meilisearch(struct out *o, const struct metrics_store *m)
{
	const uint64_t *st = m->st.by_status;

	family(o, "meilisearch_nb_tasks", "gauge", "Meilisearch Number of tasks");
	for (int i = 0; i < TASK_NSTATUS; i++)
		sample2(o, "meilisearch_nb_tasks", "kind", str("statuses"), "value",
		    str(task_status_name((enum task_status)i)), st[i]);
	for (size_t i = 0; i < m->ntypes; i++)
		sample2(o, "meilisearch_nb_tasks", "kind", str("types"), "value",
		    m->types[i].name, m->types[i].n);
	for (size_t i = 0; i < m->nindexes; i++) {
		uint64_t n = 0;
		for (int j = 0; j < TASK_NSTATUS; j++)
			n += m->indexes[i].by_status[j];
		sample2(o, "meilisearch_nb_tasks", "kind", str("indexes"), "value",
		    m->indexes[i].name, n);
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
		for (int j = 0; j < TASK_NSTATUS; j++)
			sample2(o, "lmtasks_tasks", "index", m->indexes[i].name, "status",
			    str(task_status_name((enum task_status)j)), m->indexes[i].by_status[j]);
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

/* Every worker's counters, summed. */
struct totals {
	uint64_t requests[METRICS_METHODS][METRICS_ROUTES][METRICS_STATUSES];
	uint64_t buckets[METRICS_METHODS][METRICS_ROUTES][METRICS_BUCKETS + 1];
	uint64_t sum_us[METRICS_METHODS][METRICS_ROUTES];
	uint64_t page_hits, page_misses;
};

static void
sum_workers(struct totals *t)
{
	memset(t, 0, sizeof(*t));
	for (const struct metrics_worker *w = __atomic_load_n(&workers, __ATOMIC_ACQUIRE); w;
	    w = w->next) {
		for (int a = 0; a < METRICS_METHODS; a++) {
			for (int r = 0; r < METRICS_ROUTES; r++) {
				for (int s = 0; s < METRICS_STATUSES; s++)
					t->requests[a][r][s] += peek(&w->requests[a][r][s]);
				for (int b = 0; b <= METRICS_BUCKETS; b++)
					t->buckets[a][r][b] += peek(&w->buckets[a][r][b]);
				t->sum_us[a][r] += peek(&w->sum_us[a][r]);
			}
		}
		t->page_hits += peek(&w->page_hits);
		t->page_misses += peek(&w->page_misses);
	}
}

/* method="…",path="…" */
static void
route_labels(struct out *o, int a, const char *path)
{
	LIT(o, "{method=\"");
	put_str(o, method_text[a]);
	LIT(o, "\",path=\"");
	put_label(o, str(path));
	LIT(o, "\"");
}

/* One route's latency histogram, its buckets cumulated. */
static void
histogram(struct out *o, const struct totals *t, int a, int r, const char *path)
{
	uint64_t n = 0;

	for (int b = 0; b <= METRICS_BUCKETS; b++) {
		n += t->buckets[a][r][b];
		LIT(o, "meilisearch_http_response_time_seconds_bucket");
		route_labels(o, a, path);
		LIT(o, ",le=\"");
		put_str(o, bound_text[b]);
		LIT(o, "\"} ");
		put_u64(o, n);
		LIT(o, "\n");
	}
	LIT(o, "meilisearch_http_response_time_seconds_sum");
	route_labels(o, a, path);
	LIT(o, "} ");
	put_secs_line(o, (int64_t)t->sum_us[a][r]);
	LIT(o, "meilisearch_http_response_time_seconds_count");
	route_labels(o, a, path);
	LIT(o, "} ");
	put_u64(o, n);
	LIT(o, "\n");
}

/* The responder's requests, latency, streams and page cache. */
static void
render_responder(struct out *o, const char *const paths[METRICS_ROUTES])
{
	struct totals *t = malloc(sizeof(*t));
	size_t (*streams)(void) = open_streams;

	if (t == NULL) {
		o->rc = ENOMEM;
		return;
	}
	sum_workers(t);
	family(o, "meilisearch_http_requests_total", "counter", "Meilisearch HTTP requests total");
	for (int a = 0; a < METRICS_METHODS; a++) {
		for (int r = 0; r < METRICS_ROUTES; r++) {
			const char *path = paths[r] && *paths[r] ? paths[r] : "unmatched";
			for (int s = 0; s < METRICS_STATUSES; s++) {
				if (t->requests[a][r][s] == 0)
					continue;
				LIT(o, "meilisearch_http_requests_total");
				route_labels(o, a, path);
				LIT(o, ",status=\"");
				put_str(o, status_text[s]);
				LIT(o, "\"} ");
				put_u64(o, t->requests[a][r][s]);
				LIT(o, "\n");
			}
		}
	}
	family(o, "meilisearch_http_response_time_seconds", "histogram",
	    "Meilisearch HTTP response times");
	for (int a = 0; a < METRICS_METHODS; a++) {
		for (int r = 0; r < METRICS_ROUTES; r++) {
			uint64_t n = 0;
			for (int b = 0; b <= METRICS_BUCKETS; b++)
				n += t->buckets[a][r][b];
			if (n)
				histogram(o, t, a, r, paths[r] && *paths[r] ? paths[r] : "unmatched");
		}
	}
	single(o, "lmtasks_streams_open", "gauge", "Event streams (GET /tasks/stream) held open",
	    streams ? streams() : 0);
	single(o, "lmtasks_page_cache_hits_total", "counter", "List pages served from a worker's "
	    "page cache", t->page_hits);
	single(o, "lmtasks_page_cache_misses_total", "counter", "List pages rendered (not kept)",
	    t->page_misses);
	free(t);
}

int
metrics_render(struct printbuf *pb, const struct metrics_store *m,
    const char *const paths[METRICS_ROUTES])
{
	struct out o = { pb, 0 };

	render_meilisearch(&o, m);
	render_queue(&o, m);
	render_webhooks(&o, m);
	render_store(&o, m);
	if (__atomic_load_n(&serving, __ATOMIC_ACQUIRE))
		render_responder(&o, paths);
	return o.rc;
}
