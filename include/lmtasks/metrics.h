/*
 * GET /metrics for Prometheus.  Three parts, by tier:
 * - the store's numbers (domain): read in one read transaction from what the store
 *   maintains (counts, the first task of each status, the leases in the order they end,
 *   the change log's bounds, the webhooks' cursors, sizes, settings); no task list is
 *   walked, so a scrape costs the same whatever the number of tasks;
 * - the responder's own counters (requests by method, route and status, their latency,
 *   the page cache): one block per worker, written by that worker's thread alone without a
 *   lock or an atomic read-modify-write, read by a scrape on any thread and summed;
 * - the text exposition format (presentation): metrics_render().
 */
#ifndef LMTASKS_METRICS_H
#define LMTASKS_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/printbuf.h>
#include <lmdb.h>

#include "lmtasks/store.h"
#include "lmtasks/task.h"

/* Prometheus's text exposition format, version 0.0.4. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* What one scrape reads at most, whatever the store holds: the series past these are left
 * out (lmtasks_metrics_cut says which family was cut). */
#define METRICS_INDEXES_MAX 1000	/* indexes with a series of their own, by name */
#define METRICS_TYPES_MAX 200		/* task types, in the order the counts keep them */
#define METRICS_WEBHOOKS_MAX 100	/* webhooks, by id */
#define METRICS_LEASES_MAX 1000	/* leases read from each end of the leases database */

/* The responder's counters: routes by enum route_kind (those past the last, together), the
 * methods GET, HEAD and any other, and the latency buckets' upper bounds. */
#define METRICS_ROUTES 16
#define METRICS_METHODS 3
#define METRICS_STATUSES 15
#define METRICS_BUCKETS 16

/* ---- the responder's own counters ---- */

typedef struct metrics_worker metrics_worker;

/* Makes a worker's counters, counted by every later scrape of this process.  They live as
 * long as the process (a worker that stops keeps its requests counted).  0 or ENOMEM. */
int metrics_worker_new(metrics_worker **out);

/* Counts one request m's worker answered: its method (NULL: GET), route (enum route_kind),
 * status and how long it took (µs).  Only m's worker calls it. */
void metrics_note(metrics_worker *m, const char *method, int route, int status, int64_t us);

/* Counts one look into m's worker's page cache: hit 1 when the page was kept. */
void metrics_page(metrics_worker *m, int hit);

/* Shows the responder's own metrics from now on, with streams() the event streams it holds
 * open (NULL: none counted).  A FastCGI responder calls it once before it serves; a CGI
 * process, which answers one request and exits, does not, and shows none. */
void metrics_serve(size_t (*streams)(void));

/* ---- the store's numbers ---- */

struct metrics_index {
	struct task_str name;			/* borrowed from the read transaction */
	uint64_t by_status[TASK_NSTATUS];
};

struct metrics_type {
	struct task_str name;			/* borrowed from the read transaction */
	uint64_t n;
};

struct metrics_webhook {
	uint64_t id, cursor, delivered, missed;
	int failing;				/* its last attempt failed */
};

/* A store's numbers in one snapshot; strings live until that transaction ends. */
struct metrics_store {
	int64_t now;				/* µs, the wall clock the ages are taken at */
	struct store_stats st;			/* totals, by status, sizes (as `lmtasks stats`) */
	uint64_t live_bytes;			/* pages in use (`stats` liveBytes) */
	uint64_t max_bytes;			/* the maxBytes setting */
	uint64_t limit_bytes;			/* past it new tasks are refused */
	int64_t oldest_enqueued_at;		/* since when the oldest enqueued task that may be
						 * claimed has waited (its enqueuedAt, or notBefore
						 * when later); 0: none */
	int64_t oldest_waiting_at;		/* the same of enqueued or processing tasks */
	uint64_t leases, leases_expired;
	uint64_t log_first, log_last;		/* the change log's bounds (last 0: empty) */
	int64_t last_change_at;			/* µs of the newest change; 0: none */
	size_t ntypes, nindexes, nwebhooks;
	unsigned cut;				/* 1 << METRICS_CUT_*: a family left incomplete */
	struct metrics_index *indexes;		/* nindexes of them, by name; owned */
	size_t indexes_room;
	struct metrics_type types[METRICS_TYPES_MAX];
	struct metrics_webhook webhooks[METRICS_WEBHOOKS_MAX];
};

enum metrics_cut {
	METRICS_CUT_INDEXES,
	METRICS_CUT_TYPES,
	METRICS_CUT_WEBHOOKS,
	METRICS_CUT_LEASES,
	METRICS_NCUT
};

/*
 * Reads s's numbers in txn into *m (zeroed first), with it (NULL: one is opened for the
 * call) for the first task of a status.  Returns 0, or an LMDB, errno or LMT_* code (the
 * store could not be read); m->indexes is then freed already.  Free m with
 * metrics_store_free() once rendered.
 */
int metrics_read(store *s, MDB_txn *txn, store_iter *it, int64_t now, struct metrics_store *m);

/* Frees what metrics_read() allocated (m itself is the caller's). */
void metrics_store_free(struct metrics_store *m);

/* ---- the text ---- */

/*
 * Appends m and, in a process that called
 * metrics_serve(), the responder's own counters summed over its workers, in Prometheus's
 * text format.  paths[kind] is the route's path as the API spells it (NULL for a kind no
 * route has).  Returns 0 or ENOMEM.
 */
int metrics_render(struct printbuf *pb, const struct metrics_store *m,
    const char *const paths[METRICS_ROUTES]);

#endif
