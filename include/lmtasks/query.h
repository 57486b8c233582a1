/* A page of tasks: which sequence to walk, from where, how many, and the envelope. */
#ifndef LMTASKS_QUERY_H
#define LMTASKS_QUERY_H

#include <stdint.h>

#include <json-c/printbuf.h>

#include "lmtasks/render.h"
#include "lmtasks/store.h"

#define QUERY_LIMIT_DEFAULT 20
#define QUERY_LIMIT_MAX 1000

struct query {
	unsigned limit;		/* 0 ... QUERY_LIMIT_MAX */
	uint64_t from;		/* first uid to consider; TASK_NO_UID: the newest (or oldest) */
	int reverse;		/* 1: oldest first */
	struct task_str index;	/* ptr NULL: every index */
};

/* Sets q to the defaults: limit 20, from the newest, every index. */
void query_init(struct query *q);

/*
 * Parses a query string (without '?', may be NULL) into q, which query_init()
 * prepared.  Returns 0, or 400 with err filled with Meilisearch's code for the
 * bad parameter, or bad_request for an unknown or repeated one.
 */
int query_parse(const char *qs, struct query *q, struct api_error *err);

/*
 * Appends the list envelope of SPEC §2 for q to pb, reading through it (an
 * iterator bound to the read transaction).  Returns 0, or LMT_ECORRUPT with *bad
 * the uid of a record that does not decode, or another store error.
 */
int query_run(store *s, MDB_txn *txn, store_iter *it, const struct query *q,
    struct printbuf *pb, uint64_t *bad);

#endif
