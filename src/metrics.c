/* GET /metrics: the responder's counters and the store's numbers (see metrics.h); the text
 * is metrics_text.c's. */
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
#include "metrics_internal.h"

/* ---- the responder's own counters ---- */

/* Every worker's block, newest first: added under the lock, never removed. */
static struct metrics_worker *workers;
static pthread_mutex_t workers_mu = PTHREAD_MUTEX_INITIALIZER;
static int serving;
static size_t (*open_streams)(void);

/* The statuses the responder answers (http.c), as labels; the last one is any other. */
const char *const metrics_status_text[METRICS_STATUSES] = {
	"200", "204", "304", "400", "401", "403", "404", "405", "410", "414", "422", "431",
	"500", "503", "other",
};

/* The latency buckets' upper bounds, µs and as the le label says them. */
static const int64_t bound_us[METRICS_BUCKETS] = {
	100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000,
};
const char *const metrics_bound_text[METRICS_BUCKETS + 1] = {
	"0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
	"0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
};
const char *const metrics_method_text[METRICS_METHODS] = { "GET", "HEAD", "other" };

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

/* The slot in metrics_status_text, plus one, of each status from 200 (0: any other): a
 * look-up, on every request. */
static const unsigned char status_slot1[304] = {
	[0] = 1, [4] = 2, [104] = 3, [200] = 4, [201] = 5, [203] = 6, [204] = 7, [205] = 8,
	[210] = 9, [214] = 10, [222] = 11, [231] = 12, [300] = 13, [303] = 14,
};

void
metrics_note(metrics_worker *m, const char *method, int route, int status, int64_t us)
{
	unsigned mi = 0, ri, si, b = 0;

	if (m == NULL)
		return;
	if (method && !(method[0] == 'G' && method[1] == 'E' && method[2] == 'T' && !method[3]))
		mi = strcmp(method, "HEAD") == 0 ? 1 : 2;
	ri = route >= 0 && route < METRICS_ROUTES ? (unsigned)route : METRICS_ROUTES - 1;
	si = (unsigned)(status - 200) < sizeof(status_slot1) ? status_slot1[status - 200] : 0;
	si = si ? si - 1 : METRICS_STATUSES - 1;
	while (b < METRICS_BUCKETS && us > bound_us[b])
		b++;
	__atomic_store_n(&m->used, m->used | UINT64_C(1) << (mi * METRICS_ROUTES + ri),
	    __ATOMIC_RELAXED);
	bump(&m->requests[mi][ri][si], 1);
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

/* What a walk's callback returns to end it at a bound: no errno, LMDB or LMT_* code. */
#define STOP (-1)

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
			return STOP;	/* the rest of the walk is more indexes */
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
		return STOP;
	}
	m->webhooks[m->nwebhooks++] = (struct metrics_webhook){ w->id, w->cursor, w->delivered,
	    w->missed, w->error.ptr != NULL };
	return 0;
}

/* Enqueued tasks not yet due passed over at the queue's head, at the most, looking for the
 * first that waits: a scrape reads a bounded number of records. */
#define METRICS_DELAYED_SCAN 1024

/*
 * When the first task of status began to wait (0: none): its enqueuedAt, or for a delayed
 * task its notBefore, since a task is not late before it may be claimed.  Enqueued tasks
 * still to come due are passed over (METRICS_DELAYED_SCAN of them at the most, the queue's
 * head then counted as not waiting), so that a delay never reads as latency.
 */
static int
first_waiting_at(store *s, MDB_txn *txn, store_iter *it, enum task_status status,
    int64_t now, int64_t *at)
{
	unsigned char key = (unsigned char)status;
	struct task t;
	uint64_t uid;
	int rc = store_iter_seek(it, STORE_SEQ_STATUS, &key, 1, 0, 0, &uid);

	*at = 0;
	for (int n = 0; rc == 0 && n < METRICS_DELAYED_SCAN; n++) {
		if ((rc = store_get(s, txn, uid, &t)) != 0)
			return rc;
		if (status != TASK_ENQUEUED || t.not_before <= now) {
			*at = t.not_before > t.enqueued_at ? t.not_before : t.enqueued_at;
			return 0;
		}
		rc = store_iter_next(it, &uid);
	}
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* The queue's head: its oldest enqueued task that may be claimed, and the oldest of those
 * and the processing. */
static int
read_queue(store *s, MDB_txn *txn, store_iter *it, struct metrics_store *m)
{
	store_iter *own = NULL;
	int64_t processing_at;
	int rc;

	if (it == NULL && (rc = store_iter_open(s, txn, &own)) != 0)
		return rc;
	if ((rc = first_waiting_at(s, txn, it ? it : own, TASK_ENQUEUED, m->now,
	    &m->oldest_enqueued_at)) == 0 &&
	    (rc = first_waiting_at(s, txn, it ? it : own, TASK_PROCESSING, m->now,
	    &processing_at)) == 0) {
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
	    ((rc = store_count_walk(s, txn, add_count, m)) != 0 && rc != STOP) ||
	    (rc = read_queue(s, txn, it, m)) != 0 ||
	    (rc = store_lease_count(s, txn, now, METRICS_LEASES_MAX, &m->leases,
	    &m->leases_expired)) != 0 ||
	    (rc = read_log(s, txn, m)) != 0 ||
	    ((rc = webhook_walk(s, txn, add_webhook, m)) != 0 && rc != STOP)) {
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

/* ---- the workers' counters summed, for the text (metrics_internal.h) ---- */

/* The workers' list, newest first. */
static const struct metrics_worker *
first_worker(void)
{
	return __atomic_load_n(&workers, __ATOMIC_ACQUIRE);
}

uint64_t
metrics_sum_requests(int a, int r, int s)
{
	uint64_t n = 0;

	for (const struct metrics_worker *w = first_worker(); w; w = w->next)
		n += peek(&w->requests[a][r][s]);
	return n;
}

uint64_t
metrics_sum_bucket(int a, int r, int b)
{
	uint64_t n = 0;

	for (const struct metrics_worker *w = first_worker(); w; w = w->next)
		n += peek(&w->buckets[a][r][b]);
	return n;
}

uint64_t
metrics_sum_us(int a, int r)
{
	uint64_t n = 0;

	for (const struct metrics_worker *w = first_worker(); w; w = w->next)
		n += peek(&w->sum_us[a][r]);
	return n;
}

uint64_t
metrics_sum_pages(int hit)
{
	uint64_t n = 0;

	for (const struct metrics_worker *w = first_worker(); w; w = w->next)
		n += peek(hit ? &w->page_hits : &w->page_misses);
	return n;
}

uint64_t
metrics_used(void)
{
	uint64_t bits = 0;

	for (const struct metrics_worker *w = first_worker(); w; w = w->next)
		bits |= peek(&w->used);
	return bits;
}

int
metrics_serving(size_t (**streams)(void))
{
	*streams = open_streams;
	return __atomic_load_n(&serving, __ATOMIC_ACQUIRE);
}
