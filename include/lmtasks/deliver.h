/* The webhook deliverer's logic, as `lmtasks notify` runs it: each webhook from its own
 * cursor in the change log, a batch per POST, the cursor moved only after a 2xx, a
 * failure retried after a wait that doubles, changes that match nothing passed over
 * without a write each.  Each webhook is delivered on its own: one POST at a time per
 * webhook, the webhooks' POSTs under way together, so that a receiver that answers late
 * or never holds up no other.  The POSTs are the caller's transport (notify.h's, through
 * libcurl's multi interface; a test's in memory), which reports each one's end through
 * deliver_done(); the rounds' timing and the log lines' destination are the caller's too. */
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
 * How the deliverer sends.  start() begins POSTing body (len bytes of NDJSON, one task a
 * line; the transport copies what it keeps) to webhook w, whose url is NUL-terminated
 * and may hold a password: returns 0, the POST's end to come through deliver_done(); or
 * -1 with the reason, one line, in why (whylen bytes): it failed at once.  cancel()
 * abandons the POST under way to webhook id, if any, with no deliver_done() for it.
 */
struct deliver_transport {
	int (*start)(void *ctx, const struct webhook *w, const char *url, const void *body,
	    size_t len, char *why, size_t whylen);
	void (*cancel)(void *ctx, uint64_t id);
	void *ctx;
};

/* Where a deliverer's log lines go (printf-like, no newline). */
typedef void deliver_warn_fn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

struct deliver_config {
	store *s;			/* open for writing, the caller's */
	size_t batch;			/* tasks per POST, 1 to NOTIFY_BATCH_TASKS */
	int once;			/* every webhook now: none waits out its backoff */
	struct deliver_transport t;
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
 * ones too, keeping the delivery state of the others; a deleted one's POST under way is
 * cancelled), and begins a POST to each webhook that has something pending, has none
 * under way and is not waiting out a backoff.  Returns 0, or a store failure's code with
 * what was being done in *doing (a static string, for cli_store_failure()).
 */
int deliver_round(deliverer *d, int64_t now, const char **doing);

/*
 * The transport's word that the POST under way to webhook id ended: ok (a 2xx) moves
 * its cursor past the batch and begins the next one; else why (one line) is kept as the
 * webhook's last error and the batch is sent again after the backoff.  An id with no
 * POST under way is passed over.  Returns 0, or a store failure's code with *doing.
 */
int deliver_done(deliverer *d, uint64_t id, int ok, const char *why, const char **doing);

/* The soonest retry due after now and before until (µs, clock_mono()), else until. */
int64_t deliver_next(const deliverer *d, int64_t now, int64_t until);

/* The POSTs under way. */
size_t deliver_busy(const deliverer *d);

/* The failed attempts (POSTs, filters that do not parse) since d was made. */
unsigned long deliver_failures(const deliverer *d);

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
