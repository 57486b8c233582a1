/* Webhook delivery, the parts `lmtasks notify` is made of: a batch of finished tasks read
 * from the change log after a webhook's cursor, gzip-compressed NDJSON, and the POSTs
 * through libcurl's multi interface on the event loop, every webhook's under way at once.
 * Retries, cursors and backoff are the deliverer's (deliver.h); the loop and its waits
 * are lmtasks-notify's (cli_notify.c). */
#ifndef LMTASKS_NOTIFY_H
#define LMTASKS_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <json-c/printbuf.h>

#include "lmtasks/event.h"
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
 * url as a person or a log may see it: as libcurl reads it (curl_url()), its password
 * "***"; a URL that libcurl refuses (it sends nothing there) masked by webhook_mask().
 * *out is malloc'd, the caller frees it.  0 or ENOMEM.
 */
int notify_url_mask(const char *url, char **out);

/* The POSTs under way, on libcurl's multi interface. */
typedef struct notify_multi notify_multi;

/* A POST to webhook id ended: ok (a 2xx), else the reason in why, one line, its URL's
 * password masked (notify_url_mask()). */
typedef void notify_done_fn(void *ctx, uint64_t id, int ok, const char *why);

/*
 * POSTs on el: libcurl's sockets and timeouts are el's descriptors and timers, and done
 * (ctx) is called from el's callbacks as each POST ends.  0 or ENOMEM.  Call
 * curl_global_init() first.
 */
int notify_multi_new(event_loop *el, notify_done_fn *done, void *ctx, notify_multi **out);

/* Abandons the POSTs under way (no done() for them) and frees m (NULL: nothing); el
 * must still be there. */
void notify_multi_free(notify_multi *m);

/*
 * The deliverer's start (struct deliver_transport, deliver.h): begins a POST of body
 * gzip'd to url, w's headers after our own, on an easy handle of its own that takes at
 * most NOTIFY_POST_TIMEOUT_MS; m is a notify_multi.  0, or -1 with the reason in why.
 */
int notify_multi_start(void *m, const struct webhook *w, const char *url, const void *body,
    size_t len, char *why, size_t whylen);

/* The deliverer's cancel: abandons the POST under way to webhook id, if any. */
void notify_multi_cancel(void *m, uint64_t id);

#endif
