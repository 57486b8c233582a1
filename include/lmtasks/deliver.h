/* The webhook deliverer's logic, as `lmtasks notify` runs it: each webhook from its own
 * cursor in the change log, a batch per POST, the cursor moved only after a 2xx, a
 * failure retried after a wait that doubles, changes that match nothing passed over
 * without a write each.  The POST itself is the caller's (notify.h's, through libcurl;
 * a test's in memory), and so are the rounds' timing and the log lines' destination. */
#ifndef LMTASKS_DELIVER_H
#define LMTASKS_DELIVER_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "lmtasks/store.h"
#include "lmtasks/webhook.h"

#define DELIVER_BACKOFF_FIRST INT64_C(100000)	/* µs: the first retry comes this soon ... */
#define DELIVER_BACKOFF_MAX INT64_C(60000000)	/* ... and the wait doubles up to a minute */
/* Changes that matched nothing are passed over in memory; the cursor kept in the store
 * follows at the next POST, at deliver_flush(), or once this many were passed over. */
#define DELIVER_SKIP_PERSIST 1000

/*
 * POSTs body (len bytes of NDJSON, one task a line) to webhook w, whose url is also
 * NUL-terminated.  Returns 0 when the receiver answered 2xx; else -1 with the reason, one
 * line, in why (whylen bytes).
 */
typedef int deliver_post_fn(void *ctx, const struct webhook *w, const char *url,
    const void *body, size_t len, char *why, size_t whylen);

/* Where a deliverer's log lines go (printf-like, no newline). */
typedef void deliver_warn_fn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

struct deliver_config {
	store *s;			/* open for writing, the caller's */
	size_t batch;			/* tasks per POST, 1 to NOTIFY_BATCH_TASKS */
	int once;			/* every webhook now: none waits out its backoff */
	deliver_post_fn *post;
	void *post_ctx;
	deliver_warn_fn *warn;
	volatile sig_atomic_t *stopping;	/* may be NULL; set: no new POST is begun */
};

typedef struct deliverer deliverer;

/* A deliverer for c (copied; what it points to must outlive it).  0 or ENOMEM. */
int deliver_new(const struct deliver_config *c, deliverer **out);

/* Frees d (NULL: nothing); it writes nothing (see deliver_flush()). */
void deliver_free(deliverer *d);

/*
 * One round at time now (clock_mono() µs): reads the webhooks again (added and deleted
 * ones too, keeping the retry state of the others), and delivers to each one that is
 * not waiting out a backoff what is pending.  *wake gets the soonest retry that is due
 * before next_round (else next_round); *failed 1 when a POST failed this round.
 * Returns 0, or a store failure's code with what was being done in *doing (a static
 * string, for cli_store_failure()).
 */
int deliver_round(deliverer *d, int64_t now, int64_t next_round, int64_t *wake, int *failed,
    const char **doing);

/* Keeps in the store the cursors moved past changes that matched nothing (at exit).
 * Returns 0, or a store failure's code with *doing. */
int deliver_flush(deliverer *d, const char **doing);

/* The wait after the failures-th failure in a row (1, 2, ...): 0.1 s, doubling to 60 s. */
int64_t deliver_backoff(unsigned failures);

/* Webhook id's delivery state, for tests and logs: *cursor where delivery stands (ahead
 * of the stored one after changes passed over), *next_at no attempt before (µs, 0: now),
 * *failures in a row.  0, or MDB_NOTFOUND when d holds no such webhook. */
int deliver_state(const deliverer *d, uint64_t id, uint64_t *cursor, int64_t *next_at,
    unsigned *failures);

#endif
