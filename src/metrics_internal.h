/* What metrics.c's counters lend metrics_text.c's rendering; not part of the API. */
#ifndef LMTASKS_METRICS_INTERNAL_H
#define LMTASKS_METRICS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "lmtasks/metrics.h"

/* One worker's: written by its thread alone (load, add, store: no lock, no locked
 * instruction), read by a scrape with relaxed loads, which may see a request's count
 * before its latency: a scrape is a sample, not a transaction. */
struct metrics_worker {
	struct metrics_worker *next;
	uint64_t requests[METRICS_METHODS][METRICS_ROUTES][METRICS_STATUSES];
	uint64_t buckets[METRICS_METHODS][METRICS_ROUTES][METRICS_BUCKETS + 1];
	uint64_t sum_us[METRICS_METHODS][METRICS_ROUTES];
	uint64_t page_hits, page_misses;
	uint64_t used;		/* bit method * METRICS_ROUTES + route: counted once at least */
};

_Static_assert(METRICS_METHODS * METRICS_ROUTES <= 64, "a bit of used for each route");

/* The labels of the counters' slots: statuses (the last: any other), the latency buckets'
 * upper bounds (the last: +Inf), methods. */
extern const char *const metrics_status_text[METRICS_STATUSES];
extern const char *const metrics_bound_text[METRICS_BUCKETS + 1];
extern const char *const metrics_method_text[METRICS_METHODS];

/* One cell of every worker's counters, summed (relaxed loads: a sample, not a snapshot). */
uint64_t metrics_sum_requests(int method, int route, int status);
uint64_t metrics_sum_bucket(int method, int route, int bucket);
uint64_t metrics_sum_us(int method, int route);
uint64_t metrics_sum_pages(int hit);

/* The used bits of every worker together: the method and route pairs with a count. */
uint64_t metrics_used(void);

/* 1 once metrics_serve() was called, with *streams its function (may be NULL). */
int metrics_serving(size_t (**streams)(void));

#endif
