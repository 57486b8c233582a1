/* Task queries: the list filters of SPEC §2, parsed from a query string or CLI flags by the
 * same code, planned on the smallest candidate sequence, walked a page at a time. */
#ifndef LMTASKS_QUERY_H
#define LMTASKS_QUERY_H

#include <stdint.h>

#include "lmtasks/store.h"

#define QUERY_LIMIT_DEFAULT 20
#define QUERY_LIMIT_MAX 1000
#define QUERY_LIST_MAX 256	/* values in one comma list */
#define QUERY_TEXT_MAX 16384	/* decoded bytes of the string lists together */

/* The three timestamps a date filter can test. */
enum query_time { QUERY_ENQUEUED, QUERY_STARTED, QUERY_FINISHED, QUERY_NTIME };

/*
 * A query.  Every list empty means "any"; a `*` anywhere in a list empties it.
 * Strings point into text, so a query is copied whole or not at all.
 */
struct query {
	unsigned limit;		/* 0 ... QUERY_LIMIT_MAX */
	uint64_t from;		/* first uid to consider; TASK_NO_UID: the newest (or oldest) */
	int reverse;		/* 1: oldest first */
	unsigned statuses;	/* bit 1 << status; 0: any */
	int v1;			/* compat v1: batchUids is a parameter (set before parsing) */
	size_t nuids, ncanceled, ntypes, nindexes, nbatches;
	uint64_t uids[QUERY_LIST_MAX];		/* sorted, no duplicates */
	uint64_t canceled[QUERY_LIST_MAX];
	uint64_t batches[QUERY_LIST_MAX];	/* batchUids, sorted */
	struct task_str types[QUERY_LIST_MAX];
	struct task_str indexes[QUERY_LIST_MAX];
	int64_t after[QUERY_NTIME];	/* the time must be > this (INT64_MIN: no filter) */
	int64_t before[QUERY_NTIME];	/* the time must be < this (INT64_MAX: no filter) */
	const struct task_str *patterns;	/* an API key's index patterns (borrowed) */
	size_t npatterns;		/* 0: no such restriction */
	unsigned given;			/* the parameters seen, to refuse repeats */
	int empty;			/* the filters exclude everything */
	size_t text_used;
	char text[QUERY_TEXT_MAX];
};

/*
 * Why a parameter was refused: Meilisearch's code for it ("invalid_task_limit"; "bad_request"
 * for an unknown or repeated one) and a message naming it and the bad value.  The caller
 * answers with them: the HTTP side as a 400, the CLI as a usage error.
 */
struct query_error {
	const char *code;	/* static */
	char message[1536];
};

/* Sets q to the defaults: limit 20, from the newest, no filter. */
void query_init(struct query *q);

/* Returns the comma list of accepted parameter names, for messages and --help. */
const char *query_param_names(void);

/*
 * Sets one parameter (its URL name: "limit", "statuses", "beforeEnqueuedAt", ...)
 * from a decoded value; the CLI's flags and the HTTP query string both come here.
 * Returns 0, or LMT_EINVAL with why filled.
 */
int query_set(struct query *q, const char *name, const char *value, size_t len,
    struct query_error *why);

/* Parses a query string (without '?', may be NULL) through query_set(): percent-escapes
 * decoded, '+' a space.  Returns 0, or LMT_EINVAL with why filled. */
int query_parse(const char *qs, struct query *q, struct query_error *why);

/* Restricts q to one index (the /indexes/{index}/tasks route), ANDed with its filters. */
void query_scope(struct query *q, const char *index, size_t len);

/* Restricts q to the n indexes of names (an API key's), ANDed with its filters.  The
 * names must outlive q's use. */
void query_restrict(struct query *q, const struct task_str *names, size_t n);

/* Restricts q to the tasks whose index matches one of the n patterns (an API key's:
 * `movies`, `mov*`), ANDed with its filters; tested on each task as it is walked, so
 * that a prefix covers every index it matches, whether it exists now or not.  The
 * patterns must outlive q's use. */
void query_allow(struct query *q, const struct task_str *patterns, size_t n);

/* Returns 1 when q was given a paging parameter (limit, from, reverse). */
int query_paged(const struct query *q);

/* Returns 1 when t passes every filter of q (not from/limit). */
int query_match(const struct query *q, const struct task *t);

/*
 * Counts the tasks that match q, whatever from and limit say: from the maintained
 * counts when the filters are only on index, status and type, else by walking the
 * smallest candidate sequence.  *bad as for query_walk().
 */
int query_total(store *s, MDB_txn *txn, store_iter *it, const struct query *q, uint64_t *total,
    uint64_t *bad);

/*
 * Calls fn for each matching task in q's order from q->from, until fn returns
 * nonzero (which is returned) or the tasks run out (0).  t lives until txn ends.
 * Returns LMT_ECORRUPT with *bad the uid of a record that does not decode.
 */
int query_walk(store *s, MDB_txn *txn, store_iter *it, const struct query *q,
    int (*fn)(void *ctx, const struct task *t), void *ctx, uint64_t *bad);

/* Where a page of a list starts and what follows it: the fields of SPEC §2's envelope that
 * the walk finds (first and next TASK_NO_UID for null). */
struct query_page {
	uint64_t total;		/* every match, whatever from and limit say */
	uint64_t first;		/* the page's first uid */
	uint64_t next;		/* the uid just past the page */
};

/*
 * Walks q's page: calls fn for each of its tasks (at most q->limit, in q's order from
 * q->from), then fills pg.  t lives until txn ends.  Returns 0, fn's nonzero return, or
 * LMT_ECORRUPT with *bad the uid of a record that does not decode, or a store error.
 */
int query_page(store *s, MDB_txn *txn, store_iter *it, const struct query *q,
    int (*fn)(void *ctx, const struct task *t), void *ctx, struct query_page *pg, uint64_t *bad);

struct tbatch;
/* Returns 1 when batch b passes q's filters as Meilisearch applies them to batches (a
 * status, type or index matches when one of its tasks has it; uids and canceledBy are
 * left to query_batch_page()), and, when nallow, has an index one of the key's patterns
 * allow. */
int query_batch_match(const struct query *q, const struct task_str *allow, size_t nallow,
    const struct tbatch *b);

/*
 * Walks the page of the batches q matches (newest first unless q->reverse), seen through
 * a key's index patterns allow (nallow 0: every batch): calls fn for each of the page's
 * batches, then fills pg.  b lives until fn returns.  Returns 0, fn's nonzero return,
 * LMT_ECORRUPT with *bad the batch uid whose record does not decode, or a store error.
 */
int query_batch_page(store *s, MDB_txn *txn, const struct query *q, const struct task_str *allow,
    size_t nallow, int (*fn)(void *ctx, const struct tbatch *b), void *ctx,
    struct query_page *pg, uint64_t *bad);

struct tbatch_progress;
/*
 * The progress of b, a batch still processing (finished_at 0), from its processing tasks'
 * reports (tbatch.h): their records are read in txn, found among the processing tasks
 * with uids in b's range, so it costs those tasks, not the store (a task whose record
 * does not decode reports nothing).  The step's name lives until txn ends.  Returns 0 or
 * a store error.
 */
int query_batch_progress(store *s, MDB_txn *txn, const struct tbatch *b,
    struct tbatch_progress *p);

/* Calls fn with batch uid (b lives until fn returns) and returns what fn does;
 * MDB_NOTFOUND when there is none or the key may not see it (none of its indexes allowed);
 * LMT_ECORRUPT for a record that does not decode. */
int query_batch_get(store *s, MDB_txn *txn, uint64_t uid, const struct task_str *allow,
    size_t nallow, int (*fn)(void *ctx, const struct tbatch *b), void *ctx);

#endif
