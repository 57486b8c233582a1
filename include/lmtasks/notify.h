/* Webhook delivery, the parts `lmtasks notify` is made of: a batch of finished tasks read
 * from the change log after a webhook's cursor, gzip-compressed NDJSON, and one POST
 * through libcurl.  Retries, cursors and backoff are the deliverer's (deliver.h); the
 * loop and its waits are lmtasks-notify's (cli_notify.c). */
#ifndef LMTASKS_NOTIFY_H
#define LMTASKS_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <json-c/printbuf.h>

#include "lmtasks/query.h"
#include "lmtasks/store.h"
#include "lmtasks/webhook.h"

#define NOTIFY_BATCH_TASKS 1000		/* tasks in one POST at most ... */
#define NOTIFY_BATCH_BYTES (1 << 20)	/* ... and about this many bytes of NDJSON before gzip */
#define NOTIFY_SCAN_MAX 100000		/* changes read in one transaction */
#define NOTIFY_POST_TIMEOUT_MS 30000L	/* a POST's whole exchange, as Meilisearch's client */

/* What to send next to one webhook. */
struct notify_batch {
	uint64_t from;		/* the sequence the batch starts after: the cursor, or past a gap */
	uint64_t to;		/* the last sequence read: the cursor once the receiver took it */
	uint64_t missed;	/* changes pruned from the log between the cursor and from */
	size_t ntasks;		/* the tasks in body */
	struct printbuf *body;	/* one task object a line, as GET /tasks/UID serves it */
};

/*
 * Reads, in one read transaction, the changes after w->cursor and puts the tasks they
 * finished (succeeded, failed, canceled) that q matches into b->body (emptied first; the
 * caller owns b->body), up to max_tasks tasks or past max_bytes bytes, at most
 * NOTIFY_SCAN_MAX changes.  When the log no longer holds the change after the cursor it
 * starts from the oldest one kept and says so in b->missed.  A task deleted since it
 * finished is passed over.  b->to == b->from: nothing new.  Returns 0, an LMDB code,
 * LMT_ECORRUPT or ENOMEM.
 */
int notify_collect(store *s, const struct webhook *w, const struct query *q, size_t max_tasks,
    size_t max_bytes, struct notify_batch *b);

/* Compresses in as one gzip member into *out (malloc'd, the caller frees).  0 or ENOMEM. */
int notify_gzip(const void *in, size_t len, unsigned char **out, size_t *outlen);

/*
 * Turns w's headers (a JSON object of strings) into a header list for libcurl, after
 * Content-Type: application/x-ndjson and Content-Encoding: gzip.  *out is freed with
 * curl_slist_free_all().  0, LMT_ECORRUPT or ENOMEM.
 */
int notify_headers(const struct webhook *w, struct curl_slist **out);

/*
 * POSTs body (len bytes, gzip) to url with headers on the easy handle c, waiting at most
 * timeout_ms for the whole exchange.  *status gets the HTTP status (0: no answer), and
 * err (CURL_ERROR_SIZE bytes) the reason when there was no answer.  Returns 0 when the
 * receiver answered 2xx, else -1.
 */
int notify_post(CURL *c, const char *url, struct curl_slist *headers, const void *body,
    size_t len, long timeout_ms, long *status, char *err);

/*
 * The deliverer's POST (deliver_post_fn, deliver.h) through libcurl: body gzip'd, w's
 * headers after our own, on the easy handle curl, at most NOTIFY_POST_TIMEOUT_MS.  0 on
 * a 2xx, else -1 with the reason in why.
 */
int notify_send(void *curl, const struct webhook *w, const char *url, const void *body,
    size_t len, char *why, size_t whylen);

#endif
